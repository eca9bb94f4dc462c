"""EMDOrdinalRegressor: ordinal prediction with the squared Earth Mover's Distance loss."""

import numbers

import numpy as np
import torch
from sklearn.utils.multiclass import check_classification_targets

from ._base import _BaseStructuredClassifier
from .exceptions import StructureError
from .losses import EMD2Loss
from .sets import AverageK, IntervalSets
from .structures import Ordinal, check_structure
from .structures._validation import warn_alphabetical_order
from .utils._docstring import fill_doc
from .utils._sklearn_compat import Interval, StrOptions
from .utils.validation import check_structure_kind

# Cumulative probabilities within this distance below 1/2 count as reaching it,
# so that a median exactly between two levels resolves to the lower one
# whatever the rounding of the cumulative sum.
_MEDIAN_TOL = 1e-10


def _ordinal_from_labels(y, class_structure):
    """``Ordinal`` of the sorted distinct labels of ``y`` (numbers sort numerically)."""
    y = np.asarray(y)
    try:
        values = np.unique(y)
    except TypeError:
        values = None
    kinds = {type(v) for v in (y.tolist() if y.dtype == object else [])}
    has_str = any(issubclass(k, str) for k in kinds)
    has_other = any(not issubclass(k, str) for k in kinds)
    if values is None or (has_str and has_other):
        shown = list(dict.fromkeys(y.tolist()))[:5]
        raise ValueError(
            f"class_structure={class_structure!r} takes the sorted labels of y as "
            "the ordinal scale, but the labels of y cannot be sorted together "
            f"(a mix of types, e.g. {shown}). Pass the order explicitly, "
            "class_structure=Ordinal([lowest, ..., highest]), or convert the "
            "labels to one type."
        )
    check_classification_targets(y)
    if len(values) < 2:
        raise ValueError(
            f"y contains a single class ({values[0]!r}); an ordinal scale needs "
            "at least 2 levels: add samples of other levels, or pass "
            "class_structure=Ordinal([...]) with the whole scale."
        )
    warn_alphabetical_order(values, class_structure)
    return Ordinal(values)


@fill_doc
class EMDOrdinalRegressor(_BaseStructuredClassifier):
    """Ordinal prediction with a neural network trained on the squared EMD loss.

    The network outputs one logit per level of an ordinal scale and is
    trained with the squared Earth Mover's Distance between the softmax
    distribution and the one-hot target, taken along the scale (Hou, Yu and
    Samaras, 2016): the sum over the levels of the squared difference of the
    two cumulative distributions, i.e. the ranked probability score. Mass
    put far from the true level costs more than mass put next to it, so
    errors stay close to the diagonal. ``ce_weight`` adds cross-entropy.

    The scale lives in ``class_structure`` (an
    :class:`~skstruct.structures.Ordinal`), never in the column order of
    ``predict_proba``, whose columns follow the sorted ``classes_`` as in
    every sklearn classifier.

    Despite its name the estimator is **classifier-typed**
    (``ClassifierMixin``, ``predict_proba``, ``classes_``): ordinal levels
    are discrete labels, so ``cross_val_score`` stratifies folds by level,
    ``predict`` returns labels (strings work) and ``predict_proba`` gives a
    distribution over the levels. ``score`` is accuracy as for any
    classifier; for the ordinal error use
    ``scoring=skstruct.metrics.mean_absolute_rank_error_scorer`` (or
    ``skstruct.metrics.get_scorer('neg_mean_absolute_rank_error')``).

    Parameters
    ----------
    class_structure : 'ordinal', Ordinal, list of labels or None, default='ordinal'
        The ordinal scale. ``'ordinal'`` or ``None``: the sorted distinct
        labels of ``y`` (numbers sort numerically; strings alphabetically,
        with a :class:`~skstruct.exceptions.SkstructWarning` naming the order
        used, since ``['poor', 'fair', 'good']`` would become fair < good <
        poor; labels that cannot be sorted together raise). An
        :class:`~skstruct.structures.Ordinal` or a flat list of labels from
        lowest to highest fixes the scale and ``classes_``, so a CV fold that
        lacks a level still gets its column; a label of ``y`` outside the
        scale raises.
    ce_weight : float, default=0.0
        Weight of the cross-entropy added to the squared EMD.
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
    decision_rule : {'median', 'argmax', 'expected', 'min_expected_cost'}, default='median'
        How ``predict`` turns the distribution over the scale into a level.
        ``'median'``: the lowest level whose cumulative probability reaches
        1/2, which minimises the expected absolute rank error.
        ``'argmax'``: the most probable level (minimises the zero-one error).
        ``'expected'``: the expected rank rounded to the nearest level, a
        half rounding up to the higher level.
        ``'min_expected_cost'``: ``argmin_y sum_k p_k |rank(y) - rank(k)| **
        decision_power``; power 1 is a median (ties may resolve differently),
        power 2 minimises the expected squared rank error.
    {decision_power}
    set_rule : {'average_k', 'conformal'}, AverageK or SplitConformal, default='average_k'
        How ``predict_set`` builds its intervals of the scale (always
        contiguous, always containing the prediction): the shortest interval
        around the prediction holding a probability mass level, calibrated
        by ``'average_k'`` so that the mean interval size equals
        ``set_size``, or by ``'conformal'`` (split conformal on a held-out
        split) so that intervals contain the true level with probability
        ``confidence_level``. A strategy object must have
        ``shape=IntervalSets(class_structure)`` (the strings are
        ``AverageK(set_size, shape=...)`` and ``SplitConformal(LAC(),
        shape=...)``); plain subsets are refused.
    set_size : float, default=1.0
        Target mean interval size of ``set_rule='average_k'``, in levels
        (``1`` gives the prediction alone).
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
        The levels, sorted (the columns of ``predict_proba``).
    structure_ : Ordinal
        The resolved scale; ``structure_.rank_order`` indexes ``classes_``
        from the lowest to the highest level.
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
        Probability mass level of the ``predict_set`` intervals (``-inf``:
        the prediction alone, ``inf``: the whole scale).

    See Also
    --------
    skstruct.losses.emd2_loss : The loss function.
    skstruct.metrics.mean_absolute_rank_error : MAE on the ranks of the scale.
    ConveyanceClassifier : Structure-aware classifier; with an ``Ordinal``
        it keeps the mass within a band of levels.

    Notes
    -----
    ``predict_set`` sets are intervals of the scale: for a sample with
    predicted level ``r`` the best interval of size ``s`` is the run of ``s``
    consecutive levels containing ``r`` with the largest probability mass,
    and the set is the shortest such interval whose mass reaches
    ``set_threshold_``. Interval sizes grow with the level; the intervals
    themselves need not be nested. Use :meth:`predict_interval` for the
    lowest and highest label of each interval.

    References
    ----------
    .. [1] Hou, Yu and Samaras, "Squared Earth Mover's Distance-based Loss for
       Training Deep Neural Networks", arXiv:1611.05916 (2016).

    Examples
    --------
    >>> import numpy as np
    >>> from skstruct import EMDOrdinalRegressor
    >>> rng = np.random.RandomState(0)
    >>> X = rng.randn(60, 2)
    >>> y = np.digitize(X[:, 0], [-0.5, 0.5])  # levels 0 < 1 < 2
    >>> reg = EMDOrdinalRegressor(max_epochs=2, random_state=0).fit(X, y)
    >>> reg.structure_
    Ordinal([0, 1, 2], width=1)
    >>> reg.predict_proba(X[:1]).shape
    (1, 3)
    """

    _parameter_constraints = {
        **_BaseStructuredClassifier._parameter_constraints,
        "ce_weight": [Interval(numbers.Real, 0, None, closed="left")],
        "decision_rule": [StrOptions({"argmax", "median", "expected", "min_expected_cost"})],
    }

    def __init__(
        self,
        class_structure="ordinal",
        *,
        ce_weight=0.0,
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
        decision_rule="median",
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
        self.ce_weight = ce_weight
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

    # ------------------------------------------------------------------ hooks

    def _check_structure(self, y):
        cs = self.class_structure
        if cs is None or (isinstance(cs, str) and cs == "ordinal"):
            return _ordinal_from_labels(y, cs)
        if isinstance(cs, str):
            raise ValueError(
                f"class_structure={cs!r} is not understood by EMDOrdinalRegressor; "
                "use 'ordinal', None, an Ordinal or a list of labels from lowest "
                "to highest."
            )
        structure = check_structure(cs, y)
        try:
            return check_structure_kind(structure, ("ordinal",), type(self).__name__)
        except StructureError as exc:
            raise StructureError(
                f"{exc} Pass an Ordinal, a flat list of labels from lowest to "
                "highest, or 'ordinal' (the sorted labels of y)."
            ) from None

    def _check_params(self):
        if not isinstance(self.set_rule, str) and not isinstance(
            getattr(self.set_rule, "shape", None), IntervalSets
        ):
            raise ValueError(
                f"set_rule={self.set_rule!r} builds plain subsets of the levels, "
                "but EMDOrdinalRegressor's sets are intervals of the scale: use "
                "set_rule='conformal' (conformal intervals), 'average_k', or a "
                "strategy with shape=IntervalSets(scale), e.g. "
                "SplitConformal(LAC(), shape=IntervalSets(scale)). For "
                "unstructured conformal sets on an ordinal scale use "
                "ConveyanceClassifier or CrossEntropyClassifier with this set_rule."
            )

    def _make_criterion(self):
        rank = torch.tensor(np.array(self.structure_.ranks), dtype=torch.int64)
        return EMD2Loss(rank=rank, ce_weight=float(self.ce_weight))

    def _decision_rules(self):
        rules = super()._decision_rules()
        rules["median"] = self._median
        rules["expected"] = self._expected
        return rules

    # -------------------------------------------------------- decision rules

    def _ranked(self, proba):
        """Probabilities with columns from the lowest to the highest level."""
        return proba[:, np.asarray(self.structure_.rank_order)]

    def _median(self, proba):
        cdf = np.cumsum(self._ranked(proba), axis=1)
        rank = np.argmax(cdf >= 0.5 - _MEDIAN_TOL, axis=1)
        return np.asarray(self.structure_.rank_order)[rank]

    def _expected(self, proba):
        ranks = np.asarray(self.structure_.ranks, dtype=np.float64)
        expected = proba @ ranks
        rank = np.clip(np.floor(expected + 0.5), 0, len(ranks) - 1).astype(np.int64)
        return np.asarray(self.structure_.rank_order)[rank]

    # ------------------------------------------------------------- intervals

    def _set_strategy(self):
        # Both rules give intervals of the scale: Average-K calibrates the
        # interval mass level to a mean size; 'conformal' gets IntervalSets
        # from the base (the shape of an Ordinal structure).
        if isinstance(self.set_rule, str):
            if self.set_rule == "average_k":
                return AverageK(self.set_size, shape=IntervalSets(self.structure_))
            return super()._set_strategy()
        scale = self.set_rule.shape.ordinal
        if not (np.array_equal(np.asarray(scale.classes), np.asarray(self.structure_.classes))
                and np.array_equal(scale.ranks, self.structure_.ranks)):
            raise ValueError(
                f"set_rule's IntervalSets is over the scale {list(scale.order)} "
                "but the estimator's is "
                f"{list(self.structure_.order)}: build the shape from the "
                "estimator's class_structure, IntervalSets(class_structure)."
            )
        return self.set_rule

    def predict_interval(self, X):
        """Lowest and highest level of each ``predict_set`` interval.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input data.

        Returns
        -------
        bounds : ndarray of shape (n_samples, 2)
            Labels from ``classes_``: column 0 the lowest, column 1 the
            highest level of the interval (equal for a single level).
        """
        ranked = self.predict_set(X)[:, np.asarray(self.structure_.rank_order)]
        lo = np.argmax(ranked, axis=1)
        hi = ranked.shape[1] - 1 - np.argmax(ranked[:, ::-1], axis=1)
        by_rank = self.classes_[np.asarray(self.structure_.rank_order)]
        return np.stack([by_rank[lo], by_rank[hi]], axis=1)
