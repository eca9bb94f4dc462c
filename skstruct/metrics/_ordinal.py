"""Ordinal metrics, computed on the ranks that an ordinal structure gives the labels.

Every metric maps labels to ranks through an
:class:`~skstruct.structures.Ordinal` (``structure=``, or ``order=`` the
labels from lowest to highest), never through their position in a sorted
label list or a confusion matrix: ``['low', 'mid', 'high']`` sorts as
``['high', 'low', 'mid']``, and a scale with a level absent from the data
keeps its true rank distances. Without either argument, the distinct numeric
labels found in ``y_true`` and ``y_pred``, sorted numerically, are the scale
(a level absent from both is then unknown and does not count in distances:
pass ``order=`` to keep it).

Each metric has a registered scorer in :func:`skstruct.metrics.get_scorer`
that reads the fitted ``structure_`` of the estimator (through pipelines):
``'neg_mean_absolute_rank_error'``, ``'neg_mean_zero_one_error'``,
``'off_by_one_accuracy'``, ``'neg_amae'``, ``'neg_mmae'``,
``'quadratic_weighted_kappa'``, ``'neg_ranked_probability_score'`` and
``'kendall_tau'``.
"""

import warnings

import numpy as np
from scipy.stats import kendalltau
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.utils.validation import check_consistent_length

from ..structures import Ordinal
from ..utils.validation import check_sample_weight
from ._scorer import _register, make_structure_scorer

__all__ = [
    "amae",
    "kendall_tau",
    "mean_absolute_rank_error",
    "mean_absolute_rank_error_scorer",
    "mean_zero_one_error",
    "mmae",
    "off_by_one_accuracy",
    "quadratic_weighted_kappa",
    "ranked_probability_score",
]


def _as_1d(y, name):
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"{name} must be 1-D with one label per sample, got shape {y.shape}.")
    return y


def _resolve(structure, order, *labels):
    """The Ordinal defining the ranks (from structure, order, or numeric labels)."""
    if structure is not None and order is not None:
        raise ValueError(
            "Pass either structure= (an Ordinal) or order= (labels from lowest "
            "to highest), not both."
        )
    if order is not None:
        return Ordinal(order)
    if structure is not None:
        if getattr(structure, "kind", None) != "ordinal":
            raise ValueError(
                "structure must be an Ordinal structure (the ranks of the "
                f"labels), got {structure!r}. Pass an Ordinal or order=[...]."
            )
        return structure
    values = np.concatenate([np.asarray(y).ravel() for y in labels])
    if values.dtype.kind not in "iuf":
        raise ValueError(
            "Without structure= or order=, the labels must be numbers (their "
            f"numeric order is the scale); got labels of dtype {values.dtype}. "
            "Pass order=[lowest, ..., highest] or structure=Ordinal([...])."
        )
    return Ordinal(np.unique(values))


def _ranks_of(structure, y):
    return np.asarray(structure.ranks)[structure.encode(y)]


def _true_pred_ranks(y_true, y_pred, structure, order):
    y_true = _as_1d(y_true, "y_true")
    y_pred = _as_1d(y_pred, "y_pred")
    check_consistent_length(y_true, y_pred)
    structure = _resolve(structure, order, y_true, y_pred)
    return _ranks_of(structure, y_true), _ranks_of(structure, y_pred), structure


def _weights(sample_weight, n):
    w = check_sample_weight(sample_weight, n)
    return np.ones(n) if w is None else w


def mean_absolute_rank_error(y_true, y_pred, *, structure=None, order=None, sample_weight=None):
    """Mean absolute difference of the ranks of true and predicted labels (MAE).

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels.
    y_pred : array-like of shape (n_samples,)
        Predicted labels.
    structure : Ordinal, default=None
        The scale; its ``ranks`` are used. Scorers pass the fitted
        ``structure_``.
    order : sequence of labels, default=None
        The labels from lowest to highest (instead of ``structure``). With
        neither, the distinct numeric labels of ``y_true`` and ``y_pred``,
        sorted, are the scale.
    sample_weight : array-like of shape (n_samples,), default=None
        Sample weights.

    Returns
    -------
    mae : float
        0 is perfect; in rank steps.

    See Also
    --------
    amae : The per-class version, robust to imbalanced scales.

    Examples
    --------
    >>> from skstruct.metrics import mean_absolute_rank_error
    >>> mean_absolute_rank_error(["low", "high"], ["mid", "low"],
    ...                          order=["low", "mid", "high"])
    1.5
    """
    r_true, r_pred, _ = _true_pred_ranks(y_true, y_pred, structure, order)
    w = _weights(sample_weight, len(r_true))
    return float(np.average(np.abs(r_true - r_pred), weights=w))


def mean_zero_one_error(y_true, y_pred, *, structure=None, order=None, sample_weight=None):
    """Fraction of wrong predictions (``1 - accuracy``), labels checked against the scale.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
        True and predicted labels.
    structure : Ordinal, default=None
        The scale (labels outside it raise).
    order : sequence of labels, default=None
        The labels from lowest to highest (instead of ``structure``).
    sample_weight : array-like of shape (n_samples,), default=None
        Sample weights.

    Returns
    -------
    error : float
        In [0, 1]; 0 is perfect.

    Examples
    --------
    >>> from skstruct.metrics import mean_zero_one_error
    >>> mean_zero_one_error([1, 2, 3, 3], [1, 2, 2, 1])
    0.5
    """
    r_true, r_pred, _ = _true_pred_ranks(y_true, y_pred, structure, order)
    w = _weights(sample_weight, len(r_true))
    return float(np.average(r_true != r_pred, weights=w))


def off_by_one_accuracy(y_true, y_pred, *, structure=None, order=None, sample_weight=None):
    """Fraction of predictions at most one rank away from the truth.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
        True and predicted labels.
    structure : Ordinal, default=None
        The scale.
    order : sequence of labels, default=None
        The labels from lowest to highest (instead of ``structure``).
    sample_weight : array-like of shape (n_samples,), default=None
        Sample weights.

    Returns
    -------
    accuracy : float
        In [0, 1]; 1 when every prediction is the true label or a neighbour
        on the scale.

    Examples
    --------
    >>> from skstruct.metrics import off_by_one_accuracy
    >>> off_by_one_accuracy([1, 2, 3, 3], [1, 3, 2, 1])
    0.75
    """
    r_true, r_pred, _ = _true_pred_ranks(y_true, y_pred, structure, order)
    w = _weights(sample_weight, len(r_true))
    return float(np.average(np.abs(r_true - r_pred) <= 1, weights=w))


def _per_class_mae(y_true, y_pred, structure, order, sample_weight):
    r_true, r_pred, structure = _true_pred_ranks(y_true, y_pred, structure, order)
    w = _weights(sample_weight, len(r_true))
    n_classes = structure.n_classes
    total = np.bincount(r_true, weights=w, minlength=n_classes)
    err = np.bincount(r_true, weights=w * np.abs(r_true - r_pred), minlength=n_classes)
    present = total > 0
    if not np.any(present):
        raise ValueError("y_true is empty (or has zero total weight); AMAE/MMAE are undefined.")
    return err[present] / total[present]


def amae(y_true, y_pred, *, structure=None, order=None, sample_weight=None):
    """Average over the true classes of their mean absolute rank error (AMAE).

    Each level of the scale present in ``y_true`` counts once, whatever its
    size, so a model that always predicts the majority level scores badly.
    Levels absent from ``y_true`` are left out of the average.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
        True and predicted labels.
    structure : Ordinal, default=None
        The scale.
    order : sequence of labels, default=None
        The labels from lowest to highest (instead of ``structure``).
    sample_weight : array-like of shape (n_samples,), default=None
        Sample weights.

    Returns
    -------
    amae : float
        0 is perfect; in rank steps.

    See Also
    --------
    mmae : The maximum instead of the mean over classes.

    References
    ----------
    .. [1] Baccianella, Esuli and Sebastiani, "Evaluation measures for ordinal
       regression", ISDA (2009).

    Examples
    --------
    >>> from skstruct.metrics import amae
    >>> amae([0, 0, 0, 2], [0, 0, 0, 0], order=[0, 1, 2])
    1.0
    """
    return float(np.mean(_per_class_mae(y_true, y_pred, structure, order, sample_weight)))


def mmae(y_true, y_pred, *, structure=None, order=None, sample_weight=None):
    """Largest per-class mean absolute rank error (MMAE) over the true classes.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
        True and predicted labels.
    structure : Ordinal, default=None
        The scale.
    order : sequence of labels, default=None
        The labels from lowest to highest (instead of ``structure``).
    sample_weight : array-like of shape (n_samples,), default=None
        Sample weights.

    Returns
    -------
    mmae : float
        0 is perfect; in rank steps, the error of the worst-served class.

    Examples
    --------
    >>> from skstruct.metrics import mmae
    >>> mmae([0, 0, 0, 2], [0, 0, 0, 0], order=[0, 1, 2])
    2.0
    """
    return float(np.max(_per_class_mae(y_true, y_pred, structure, order, sample_weight)))


def quadratic_weighted_kappa(
    y_true,
    y_pred,
    *,
    structure=None,
    order=None,
    sample_weight=None,
    replace_undefined_by=np.nan,
):
    """Cohen's kappa with quadratic weights ``(rank_i - rank_j) ** 2`` (QWK).

    The weights use the ranks of the scale: a level absent from the data
    still counts in the distance between the levels around it (sklearn's
    :func:`~sklearn.metrics.cohen_kappa_score` weights positions among the
    labels it sees; it agrees with this function when given the ranks and
    ``labels=range(n_classes)``).

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
        True and predicted labels.
    structure : Ordinal, default=None
        The scale.
    order : sequence of labels, default=None
        The labels from lowest to highest (instead of ``structure``).
    sample_weight : array-like of shape (n_samples,), default=None
        Sample weights.
    replace_undefined_by : float, default=np.nan
        Returned, with an ``UndefinedMetricWarning``, when kappa is undefined
        (e.g. every true and predicted label is the same level).

    Returns
    -------
    kappa : float
        1 is perfect agreement, 0 chance level.

    Examples
    --------
    >>> from skstruct.metrics import quadratic_weighted_kappa
    >>> round(quadratic_weighted_kappa([0, 1, 2, 3], [0, 1, 3, 3]), 4)
    0.9167
    """
    r_true, r_pred, structure = _true_pred_ranks(y_true, y_pred, structure, order)
    w = _weights(sample_weight, len(r_true))
    n_classes = structure.n_classes
    confusion = np.bincount(
        r_true * n_classes + r_pred, weights=w, minlength=n_classes * n_classes
    ).reshape(n_classes, n_classes)
    total = confusion.sum()
    levels = np.arange(n_classes, dtype=np.float64)
    weight = (levels[:, None] - levels[None, :]) ** 2
    if total > 0:
        expected = np.outer(confusion.sum(axis=1), confusion.sum(axis=0)) / total
        denominator = np.sum(weight * expected)
    else:
        denominator = 0.0
    if denominator == 0:
        warnings.warn(
            "quadratic_weighted_kappa is undefined when y_true and y_pred hold a "
            f"single level between them (or no sample); returning {replace_undefined_by}.",
            UndefinedMetricWarning,
            stacklevel=2,
        )
        return replace_undefined_by
    return float(1.0 - np.sum(weight * confusion) / denominator)


def ranked_probability_score(y_true, y_proba, *, structure=None, order=None, sample_weight=None):
    """Ranked probability score: squared distance between predicted and true CDFs.

    ``RPS = mean_i sum_k (F_ik - 1[rank(y_i) <= k]) ** 2`` with ``F_i`` the
    cumulative predicted probability over the ranks, lowest first (the
    squared EMD that :func:`skstruct.losses.emd2_loss` trains on; no division
    by ``n_classes - 1``).

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels.
    y_proba : array-like of shape (n_samples, n_classes)
        Probabilities with columns in the structure's ``classes`` order (the
        sorted labels, i.e. an estimator's ``classes_``), as
        ``predict_proba`` returns them.
    structure : Ordinal, default=None
        The scale. One of ``structure`` and ``order`` is required.
    order : sequence of labels, default=None
        The labels from lowest to highest (instead of ``structure``).
    sample_weight : array-like of shape (n_samples,), default=None
        Sample weights.

    Returns
    -------
    rps : float
        0 for a point mass on the true label; at most ``n_classes - 1``.

    Examples
    --------
    >>> from skstruct.metrics import ranked_probability_score
    >>> ranked_probability_score(["b"], [[0.5, 0.5, 0.0]], order=["a", "b", "c"])
    0.25
    """
    if structure is None and order is None:
        raise ValueError(
            "ranked_probability_score needs the scale to align the columns of "
            "y_proba: pass structure=Ordinal([...]) or order=[lowest, ..., highest]."
        )
    structure = _resolve(structure, order)
    y_true = _as_1d(y_true, "y_true")
    y_proba = np.asarray(y_proba, dtype=np.float64)
    if not np.all(np.isfinite(y_proba)):
        raise ValueError("y_proba must hold finite probabilities (found NaN or inf).")
    if y_proba.ndim != 2 or y_proba.shape[1] != structure.n_classes:
        raise ValueError(
            f"y_proba must have shape (n_samples, {structure.n_classes}) with "
            f"columns in the structure's classes order, got shape {y_proba.shape}."
        )
    check_consistent_length(y_true, y_proba)
    w = _weights(sample_weight, len(y_true))
    r_true = _ranks_of(structure, y_true)
    cdf = np.cumsum(y_proba[:, np.asarray(structure.rank_order)], axis=1)
    target = np.arange(structure.n_classes)[None, :] >= r_true[:, None]
    return float(np.average(np.sum((cdf - target) ** 2, axis=1), weights=w))


def kendall_tau(y_true, y_pred, *, structure=None, order=None):
    """Kendall's tau-b rank correlation between true and predicted ranks.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
        True and predicted labels.
    structure : Ordinal, default=None
        The scale.
    order : sequence of labels, default=None
        The labels from lowest to highest (instead of ``structure``).

    Returns
    -------
    tau : float
        In [-1, 1]; NaN when either side is constant.

    Examples
    --------
    >>> from skstruct.metrics import kendall_tau
    >>> kendall_tau(["low", "mid", "high"], ["low", "high", "high"],
    ...             order=["low", "mid", "high"])
    0.8164...
    """
    r_true, r_pred, _ = _true_pred_ranks(y_true, y_pred, structure, order)
    return float(kendalltau(r_true, r_pred).statistic)


mean_absolute_rank_error_scorer = make_structure_scorer(
    mean_absolute_rank_error, greater_is_better=False
)
"""Scorer ``'neg_mean_absolute_rank_error'`` for ``GridSearchCV`` and ``cross_val_score``."""

_register("neg_mean_absolute_rank_error", mean_absolute_rank_error_scorer)
_register(
    "neg_mean_zero_one_error",
    make_structure_scorer(mean_zero_one_error, greater_is_better=False),
)
_register("off_by_one_accuracy", make_structure_scorer(off_by_one_accuracy))
_register("neg_amae", make_structure_scorer(amae, greater_is_better=False))
_register("neg_mmae", make_structure_scorer(mmae, greater_is_better=False))
_register("quadratic_weighted_kappa", make_structure_scorer(quadratic_weighted_kappa))
_register(
    "neg_ranked_probability_score",
    make_structure_scorer(
        ranked_probability_score, greater_is_better=False, response_method="predict_proba"
    ),
)
_register("kendall_tau", make_structure_scorer(kendall_tau))
