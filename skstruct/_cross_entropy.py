"""CrossEntropyClassifier: the same network and API, trained with plain cross-entropy."""

import numbers

from torch import nn

from ._base import _BaseStructuredClassifier
from .utils._docstring import fill_doc
from .utils._sklearn_compat import Interval


@fill_doc
class CrossEntropyClassifier(_BaseStructuredClassifier):
    """Neural classifier trained with plain cross-entropy: the fair baseline.

    Same network, training loop, decision rules and set prediction as every
    skstruct estimator; only the loss ignores the class structure. The
    structure, when given, still defines ``classes_`` and the ground distance
    used by ``decision_rule='min_expected_cost'``.

    Parameters
    ----------
    {class_structure}
    label_smoothing : float, default=0.0
        Label smoothing of :class:`torch.nn.CrossEntropyLoss`.
    {module}
    {hidden_layer_sizes}
    {activation}
    {dropout}
    {max_epochs}
    {batch_size}
    {lr}
    {optimizer}
    {weight_decay}
    {early_stopping}
    {validation_fraction}
    {n_iter_no_change}
    {class_weight}
    {optimizer_kwargs}
    {lr_schedule}
    {callbacks}
    {warm_start}
    {decision_rule}
    {decision_power}
    {set_rule}
    {set_size}
    {confidence_level}
    {calibration_cv}
    {device}
    {precision}
    {n_threads}
    {accelerator}
    {random_state}
    {verbose}

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels, from the structure when one is given.
    structure_ : ClassStructure or None
        The resolved class structure.
    n_features_in_ : int
        Number of features seen during ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during ``fit``, when X has string column names.
    net_ : skorch.NeuralNet
        The trained skorch network.
    n_iter_ : int
        Number of epochs run.
    loss_curve_ : list of float
        Mean training loss per epoch.
    set_threshold_ : float
        Score threshold of ``predict_set``.

    See Also
    --------
    ConveyanceClassifier : The structure-aware counterpart.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from skstruct import CrossEntropyClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = CrossEntropyClassifier(max_epochs=2, random_state=0).fit(X, y)
    >>> clf.predict(X[:2]).shape
    (2,)
    """

    _parameter_constraints = {
        **_BaseStructuredClassifier._parameter_constraints,
        "label_smoothing": [Interval(numbers.Real, 0, 1, closed="left")],
    }

    def __init__(
        self,
        class_structure=None,
        *,
        label_smoothing=0.0,
        module=None,
        hidden_layer_sizes=(100,),
        activation="relu",
        dropout=0.0,
        max_epochs=50,
        batch_size=64,
        lr=1e-3,
        optimizer="adam",
        weight_decay=0.0,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
        class_weight=None,
        optimizer_kwargs=None,
        lr_schedule=None,
        callbacks=None,
        warm_start=False,
        decision_rule="argmax",
        decision_power=1.0,
        set_rule="average_k",
        set_size=1.0,
        confidence_level=0.9,
        calibration_cv=None,
        device="cpu",
        precision="fp32",
        n_threads=None,
        accelerator=None,
        random_state=None,
        verbose=0,
    ):
        self.class_structure = class_structure
        self.label_smoothing = label_smoothing
        self.module = module
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.dropout = dropout
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.optimizer = optimizer
        self.weight_decay = weight_decay
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.class_weight = class_weight
        self.optimizer_kwargs = optimizer_kwargs
        self.lr_schedule = lr_schedule
        self.callbacks = callbacks
        self.warm_start = warm_start
        self.decision_rule = decision_rule
        self.decision_power = decision_power
        self.set_rule = set_rule
        self.set_size = set_size
        self.confidence_level = confidence_level
        self.calibration_cv = calibration_cv
        self.device = device
        self.precision = precision
        self.n_threads = n_threads
        self.accelerator = accelerator
        self.random_state = random_state
        self.verbose = verbose

    def _make_criterion(self):
        return nn.CrossEntropyLoss(label_smoothing=float(self.label_smoothing))
