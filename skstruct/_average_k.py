"""AverageKClassifier: two-head network for average-K set-valued classification."""

import numbers

import torch
from torch import nn

from ._base import _BaseStructuredClassifier
from .losses import AverageKLoss
from .sets import LAC, AverageK, SplitConformal, ThresholdSets
from .utils._docstring import fill_doc
from .utils._sklearn_compat import Interval, StrOptions

_BASE_CONSTRAINTS = {
    name: constraint
    for name, constraint in _BaseStructuredClassifier._parameter_constraints.items()
    # ``k`` is both the loss's set size and the calibration target.
    if name != "set_size"
}


@fill_doc
class AverageKClassifier(_BaseStructuredClassifier):
    """Two-head neural classifier for average-K set-valued prediction.

    Average-K classification (Garcin, Servajean, Joly and Salmon, 2025)
    returns for each sample a set of classes whose size adapts to the
    sample's ambiguity, with a mean size of ``k`` over the data: confident
    samples get small sets, ambiguous ones large sets. The network has a
    shared body and two linear heads. The softmax head is trained with
    cross-entropy and gives ``predict`` and ``predict_proba``. The
    multi-label head is trained with binary cross-entropy against the true
    label plus, in each batch of size ``B``, the ``(k - 1) B`` largest
    softmax probabilities of the batch taken as pseudo-positives (no gradient
    through them; see :func:`skstruct.losses.average_k_loss`).

    ``predict_set`` thresholds the scores of the head chosen by ``head``: one
    global threshold ``lambda`` is calibrated on held-out data so that exactly
    ``floor(k * n_cal)`` of the ``n_cal * n_classes`` calibration scores lie
    above it (midpoint of the last kept and the first dropped score). The
    calibration data is a stratified split of ``validation_fraction`` of the
    training data, always held out by this estimator and never trained on,
    or whatever :meth:`calibrate` is given later.

    Parameters
    ----------
    {class_structure}
    k : float, default=5
        Target mean set size, and the ``K`` of the two-head loss (one
        parameter for both). Must satisfy ``1 <= k < n_classes`` (checked in
        ``fit``); fractional values are allowed.
    alpha : float, default=1.0
        Weight of the pseudo-positive and negative terms of the multi-label
        loss; the paper tunes it in ``[0.1, 10]``. Ignored when
        ``head='softmax'``.
    head : {'multilabel', 'softmax'}, default='multilabel'
        Scores thresholded by ``predict_set``. ``'multilabel'``: the two-head
        network, sets from the multi-label head. ``'softmax'``: the paper's
        cross-entropy baseline, a single softmax head trained with plain
        cross-entropy (the network of
        :class:`~skstruct.CrossEntropyClassifier`), whose probabilities go
        through the very same calibration, for a fair comparison.
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
    validation_fraction : float, default=0.1
        Fraction of the training data held out (stratified, seeded) to
        calibrate ``predict_set``; this estimator always holds it out. With
        ``early_stopping=True`` a second, disjoint split of the same size
        picks the epoch.
    {n_iter_no_change}
    {class_weight}
    {optimizer_kwargs}
    {lr_schedule}
    {callbacks}
    {warm_start}
    {decision_rule}
    {decision_power}
    set_rule : {'average_k', 'conformal'}, default='average_k'
        How ``predict_set`` chooses its threshold on the ``head`` scores.
        ``'average_k'``: mean set size ``k`` on the calibration data.
        ``'conformal'``: split conformal prediction with the
        least-ambiguous-set score ``-score[y]`` on the same head, so that
        coverage is at least ``confidence_level`` in expectation (valid for
        any score; ``k`` then only shapes training). In both rules no label is
        forced into a set, and sets are plain thresholds whatever the
        ``class_structure`` (no ordinal intervals: the head scores are not
        probabilities).
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
        The resolved class structure (used for ``classes_`` and
        ``decision_rule``; the loss ignores it).
    n_features_in_ : int
        Number of features seen during ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during ``fit``, when X has string column names.
    net_ : skorch.NeuralNet
        The trained skorch network; its module returns ``(softmax_logits,
        multilabel_logits)`` for ``head='multilabel'`` and the softmax logits
        alone for ``head='softmax'``.
    n_iter_ : int
        Number of epochs run.
    loss_curve_ : list of float
        Mean training loss per epoch.
    validation_loss_curve_ : list of float
        Mean loss per epoch on the early-stopping split, or (without early
        stopping) on the calibration split, which is then only monitored;
        NaN for epochs of ``partial_fit``, which has no split.
    set_threshold_ : float
        Threshold of ``predict_set``, on the scale of the raw scores: the
        multi-label logits (``head='multilabel'``; the sigmoid threshold is
        ``1 / (1 + exp(-set_threshold_))``) or the log-probabilities
        (``head='softmax'``; the probability threshold is
        ``exp(set_threshold_)``). Thresholding these scales, rather than
        sigmoid or softmax outputs, avoids ties from saturated floats.

    See Also
    --------
    skstruct.losses.average_k_loss : The two-head loss.
    skstruct.metrics.average_k_accuracy : Coverage of the sets.
    skstruct.metrics.mean_set_size : Realised mean set size.
    CrossEntropyClassifier : ``set_size`` sets that always hold the prediction.

    Notes
    -----
    The sets follow the paper's rule ``{j : score_j(x) >= lambda}`` without
    forcing the predicted label in. Consequences: a set may be **empty** (all
    scores of an easy-to-reject or out-of-distribution sample below
    ``lambda``), and with ``head='multilabel'`` the ``predict`` label (argmax
    of the softmax head) need not be in its set, since two heads score it.
    With ``head='softmax'`` and ``decision_rule='argmax'`` every non-empty set
    contains the prediction. What the rule guarantees: the mean size on the
    calibration data is ``floor(k * n_cal) / n_cal`` up to tied scores, and
    for a fixed network the sets are nested in ``k`` (recalibrating with a
    larger ``k`` only lowers ``lambda``). :func:`skstruct.metrics.empty_rate`
    measures the empty sets.

    ``fit`` calibrates the sets on a held-out split of ``validation_fraction``
    of the rows that the network never trains on; with early stopping a
    second, disjoint split picks the epoch (the paper uses one split for
    both, which biases the sizes). :meth:`calibrate` recalibrates on other
    data.

    References
    ----------
    .. [1] Garcin, Servajean, Joly and Salmon, "A two-head loss function for
       deep Average-K classification", WACV 2025, arXiv:2303.18118.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skstruct import AverageKClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = AverageKClassifier(k=2, max_epochs=2, random_state=0).fit(X / 16, y)
    >>> clf.predict_set(X[:3] / 16).shape
    (3, 10)
    """

    _parameter_constraints = {
        **_BASE_CONSTRAINTS,
        "k": [Interval(numbers.Real, 1, None, closed="left")],
        "alpha": [Interval(numbers.Real, 0, None, closed="neither")],
        "head": [StrOptions({"multilabel", "softmax"})],
    }

    def __init__(
        self,
        class_structure=None,
        *,
        k=5,
        alpha=1.0,
        head="multilabel",
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
        self.k = k
        self.alpha = alpha
        self.head = head
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
        self.confidence_level = confidence_level
        self.calibration_cv = calibration_cv
        self.device = device
        self.precision = precision
        self.n_threads = n_threads
        self.accelerator = accelerator
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ hooks

    def _check_k(self):
        n_classes = len(self.classes_)
        if not self.k < n_classes:
            raise ValueError(
                f"k={self.k} must be smaller than the number of classes "
                f"({n_classes}): a mean set size of {n_classes} or more keeps "
                f"every class. Choose 1 <= k < {n_classes}."
            )

    def _set_strategy(self):
        # The paper's rule: plain thresholds on the head scores (logits or
        # log-probabilities), no label forced in, for both named rules; the
        # target mean size is ``k``, the loss's K.
        self._check_k()
        shape = ThresholdSets(include_prediction=False)
        if self.set_rule == "average_k":
            return AverageK(self.k, shape=shape)
        if self.set_rule == "conformal":
            return SplitConformal(LAC(), shape=shape)
        return self.set_rule

    def _check_classes(self):
        self._check_k()

    def _n_outputs(self):
        n_classes = len(self.classes_)
        if self.head == "multilabel":
            return (n_classes, n_classes)
        return n_classes

    def _make_criterion(self):
        if self.head == "multilabel":
            return AverageKLoss(k=float(self.k), alpha=float(self.alpha))
        return nn.CrossEntropyLoss()

    def _set_scores(self, X):
        """Scores of the ``head`` (logits or log-probabilities, float64) and predictions."""
        result = self._forward(X)
        predicted = self._decide(self._proba_from_logits(result.logits))
        if self.head == "multilabel":
            # The heads (softmax, multi-label) of the module output.
            scores = result.extras["outputs"][1].double().numpy()
        else:
            scores = torch.log_softmax(result.logits.double(), dim=1).numpy()
        return scores, predicted

    # ------------------------------------------------------------ public API

    def calibrate(self, X, y=None):
        """Recalibrate the ``predict_set`` threshold on new data.

        Uses the current ``k``, ``set_rule`` and ``confidence_level``; the
        network is not retrained (so ``set_params(k=...)`` then
        ``calibrate`` changes only the threshold).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Calibration data, ideally not seen in training.
        y : array-like of shape (n_samples,), default=None
            Its labels: required by ``set_rule='conformal'``, otherwise only
            checked (labels unknown to the model raise an error).

        Returns
        -------
        self : object
            The estimator, with ``set_threshold_`` updated.
        """
        return super().calibrate(X, y)
