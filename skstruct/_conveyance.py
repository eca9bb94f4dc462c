"""ConveyanceClassifier: a neural classifier trained with the Conveyance loss."""

import numbers

import numpy as np
import torch

from ._base import _BaseStructuredClassifier
from .callbacks import L1Penalty
from .losses import ConveyanceLoss
from .utils._docstring import fill_doc
from .utils._sklearn_compat import Interval


@fill_doc
class ConveyanceClassifier(_BaseStructuredClassifier):
    """Neural classifier trained with the Conveyance loss.

    The Conveyance loss (Taha, Montavon and Körber, 2026) lets the
    probability of a sample flow to the classes that are *plausible* under its
    observed label: ``beta`` pushes the mass into the plausible set ``S(t)``,
    ``alpha`` gently prefers the observed label inside it. The plausible sets
    come from ``class_structure``: a :class:`~skstruct.structures.ClassGraph`
    as given (e.g. a noise transition matrix), the siblings of a
    :class:`~skstruct.structures.Hierarchy`, the band of an
    :class:`~skstruct.structures.Ordinal` scale, or only the label itself for
    flat classes. The structure is used in training only; prediction is the
    ``decision_rule`` on the softmax probabilities.

    Parameters
    ----------
    {class_structure}
    alpha : float, default=0.1
        Weight of the target log-odds term (prefers the observed label).
    beta : float, default=10.0
        Weight of the plausible-set log-odds term (keeps mass inside ``S``).
    l1_penalty : float, default=0.0
        Strength of an L1 penalty on the weights, applied to the gradients by
        a callback (the training recipe of the paper's noise experiments).
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
    {decision_rule}
    {decision_power}
    {set_rule}
    {set_size}
    {confidence_level}
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
        The trained skorch network (``net_.module_`` is the torch module).
    n_iter_ : int
        Number of epochs run.
    loss_curve_ : list of float
        Mean training loss per epoch.
    set_threshold_ : float
        Score threshold of ``predict_set``.

    See Also
    --------
    skstruct.losses.conveyance_loss : The loss function.
    skstruct.structures.ClassGraph : Plausibility from a noise transition matrix.

    References
    ----------
    .. [1] Taha, Montavon and Körber, "Conveyance", arXiv:2605.28420 (2026).

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from skstruct import ConveyanceClassifier
    >>> from skstruct.structures import Ordinal
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = ConveyanceClassifier(class_structure=Ordinal([0, 1, 2]),
    ...                            max_epochs=2, random_state=0).fit(X, y)
    >>> clf.predict_proba(X[:1]).shape
    (1, 3)
    """

    _parameter_constraints = {
        **_BaseStructuredClassifier._parameter_constraints,
        "alpha": [Interval(numbers.Real, 0, None, closed="neither")],
        "beta": [Interval(numbers.Real, 0, None, closed="neither")],
        "l1_penalty": [Interval(numbers.Real, 0, None, closed="left")],
    }

    def __init__(
        self,
        class_structure=None,
        *,
        alpha=0.1,
        beta=10.0,
        l1_penalty=0.0,
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
        decision_rule="argmax",
        decision_power=1.0,
        set_rule="average_k",
        set_size=1.0,
        confidence_level=0.9,
        device="cpu",
        precision="fp32",
        n_threads=None,
        accelerator=None,
        random_state=None,
        verbose=0,
    ):
        self.class_structure = class_structure
        self.alpha = alpha
        self.beta = beta
        self.l1_penalty = l1_penalty
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
        self.decision_rule = decision_rule
        self.decision_power = decision_power
        self.set_rule = set_rule
        self.set_size = set_size
        self.confidence_level = confidence_level
        self.device = device
        self.precision = precision
        self.n_threads = n_threads
        self.accelerator = accelerator
        self.random_state = random_state
        self.verbose = verbose

    def _plausibility(self):
        """Q in ``classes_`` order: the structure's, or the identity if flat."""
        if self.structure_ is None:
            return np.eye(len(self.classes_), dtype=bool)
        return np.asarray(self.structure_.plausibility_matrix(), dtype=bool)

    def _make_criterion(self):
        plausible = torch.tensor(self._plausibility())
        return ConveyanceLoss(plausible, alpha=self.alpha, beta=self.beta)

    def _callbacks(self):
        if self.l1_penalty > 0:
            return [("l1_penalty", L1Penalty(self.l1_penalty))]
        return []
