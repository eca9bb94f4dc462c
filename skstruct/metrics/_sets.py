"""Metrics of set-valued predictions (``predict_set``) and their scorers.

Every metric takes the true labels ``y_true`` and a boolean array ``y_sets``
of shape ``(n_samples, n_classes)`` whose columns follow ``classes`` (the
``classes_`` of the estimator that made the sets). ``classes=None`` means the
labels are the column indices ``0 .. n_classes - 1``. Scalars come back as
Python floats, per-group results as dicts of Python floats.

The registered scorers (``skstruct.metrics.get_scorer(name)``) call
``predict_set`` on the final step of the estimator, through pipelines, and
pass the fitted ``classes_``:

========================  =============================================
name                      metric
========================  =============================================
``'set_coverage'``        :func:`set_coverage`
``'average_k_accuracy'``  :func:`average_k_accuracy` (same value)
``'neg_mean_set_size'``   minus :func:`mean_set_size`
``'singleton_rate'``      :func:`singleton_rate`
``'neg_empty_rate'``      minus :func:`empty_rate`
========================  =============================================
"""

import warnings

import numpy as np

from ..utils.validation import check_sample_weight
from ._scorer import _register, make_structure_scorer

__all__ = [
    "average_k_accuracy",
    "coverage_per_class",
    "empty_rate",
    "mean_set_size",
    "set_coverage",
    "singleton_rate",
    "size_stratified_coverage",
]


def _check_sets(y_sets):
    sets = np.asarray(y_sets)
    if sets.ndim != 2:
        raise ValueError(
            "y_sets must be a 2-D boolean array of shape (n_samples, n_classes), "
            f"as returned by predict_set; got an array of shape {sets.shape}."
        )
    if sets.dtype != bool:
        if not np.all(np.isin(sets, (0, 1))):
            raise ValueError(
                "y_sets must be boolean (or 0/1) membership indicators, as "
                f"returned by predict_set; got values of dtype {sets.dtype} "
                "other than 0 and 1."
            )
        sets = sets.astype(bool)
    return sets


def _weights(sample_weight, n):
    w = check_sample_weight(sample_weight, n)
    return np.ones(n) if w is None else w


def _average(values, sample_weight):
    """Weighted mean of ``values`` (plain mean when ``sample_weight`` is None)."""
    values = np.asarray(values, dtype=np.float64)
    if sample_weight is None:
        return float(np.mean(values))
    return float(np.average(values, weights=_weights(sample_weight, len(values))))


def _check_sets_and_labels(y_true, y_sets, classes):
    """Validate inputs; return ``(sets, column index of each true label)``."""
    sets = _check_sets(y_sets)
    y_true = np.asarray(y_true)
    if y_true.ndim != 1:
        raise ValueError(
            f"y_true must be 1-D with one label per sample, got shape {y_true.shape}."
        )
    if len(y_true) != sets.shape[0]:
        raise ValueError(
            f"y_true has {len(y_true)} samples but y_sets has {sets.shape[0]} "
            "rows; pass the sets predicted for the same samples."
        )
    n_classes = sets.shape[1]
    if classes is None:
        classes = np.arange(n_classes)
        what = "column indices (classes=None)"
    else:
        classes = np.asarray(classes)
        what = "classes"
    if classes.ndim != 1 or len(classes) != n_classes:
        raise ValueError(
            f"classes must be 1-D with one label per column of y_sets "
            f"({n_classes}), got shape {classes.shape}; pass the estimator's "
            "classes_."
        )
    order = np.argsort(classes, kind="stable")
    sorted_classes = classes[order]
    try:
        pos = np.clip(np.searchsorted(sorted_classes, y_true), 0, n_classes - 1)
        with warnings.catch_warnings():  # numpy < 1.25 warns for str vs int
            warnings.simplefilter("ignore", (FutureWarning, DeprecationWarning))
            unknown = np.asarray(sorted_classes[pos] != y_true)
        if unknown.shape != y_true.shape:  # numpy < 1.25: one scalar for str vs int
            raise TypeError
    except TypeError:  # labels not comparable with classes (e.g. str vs int)
        pos = np.zeros(len(y_true), dtype=np.intp)
        unknown = np.ones(len(y_true), dtype=bool)
    if np.any(unknown):
        bad = list(dict.fromkeys(y_true[unknown].tolist()))[:5]
        raise ValueError(
            f"y_true contains labels that are not {what}: {bad}; y_sets has "
            f"{n_classes} columns. Pass classes=estimator.classes_."
        )
    return sets, order[pos], classes


def set_coverage(y_true, y_sets, *, classes=None, sample_weight=None):
    """Fraction of samples whose true label is in the predicted set.

    Called average-K accuracy when the sets come from an average-K rule and
    empirical coverage for conformal sets.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels.
    y_sets : array-like of shape (n_samples, n_classes), dtype=bool
        Predicted sets, columns aligned with ``classes``.
    classes : array-like of shape (n_classes,), default=None
        Label of each column (the estimator's ``classes_``); ``None`` means
        the labels are column indices.
    sample_weight : array-like of shape (n_samples,), default=None
        Weights of the samples (a weighted mean; ``None``: equal weights).

    Returns
    -------
    coverage : float
        In ``[0, 1]``.

    Examples
    --------
    >>> import numpy as np
    >>> from skstruct.metrics import set_coverage
    >>> sets = np.array([[True, True, False], [False, False, True]])
    >>> set_coverage(["b", "a"], sets, classes=["a", "b", "c"])
    0.5
    """
    sets, idx, _ = _check_sets_and_labels(y_true, y_sets, classes)
    return _average(sets[np.arange(len(idx)), idx], sample_weight)


def average_k_accuracy(y_true, y_sets, *, classes=None, sample_weight=None):
    """Average-K accuracy: the fraction of samples whose label is in its set.

    The metric of average-K classification (Garcin et al., 2025), reported
    with the realised :func:`mean_set_size`. Same value as
    :func:`set_coverage`.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels.
    y_sets : array-like of shape (n_samples, n_classes), dtype=bool
        Predicted sets, columns aligned with ``classes``.
    classes : array-like of shape (n_classes,), default=None
        Label of each column; ``None`` means the labels are column indices.
    sample_weight : array-like of shape (n_samples,), default=None
        Weights of the samples (a weighted mean; ``None``: equal weights).

    Returns
    -------
    accuracy : float
        In ``[0, 1]``.

    Examples
    --------
    >>> import numpy as np
    >>> from skstruct.metrics import average_k_accuracy
    >>> average_k_accuracy([0, 2], np.array([[1, 1, 0], [0, 0, 1]]))
    1.0
    """
    return set_coverage(y_true, y_sets, classes=classes, sample_weight=sample_weight)


def mean_set_size(y_true, y_sets, *, classes=None, sample_weight=None):
    """Mean number of classes per predicted set.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,) or None
        Ignored (present for the scorer protocol).
    y_sets : array-like of shape (n_samples, n_classes), dtype=bool
        Predicted sets.
    classes : array-like of shape (n_classes,), default=None
        Ignored (present for the scorer protocol).
    sample_weight : array-like of shape (n_samples,), default=None
        Weights of the samples (a weighted mean; ``None``: equal weights).

    Returns
    -------
    size : float
        Between 0 and ``n_classes``.

    Examples
    --------
    >>> import numpy as np
    >>> from skstruct.metrics import mean_set_size
    >>> mean_set_size(None, np.array([[True, True, False], [False, False, True]]))
    1.5
    """
    sets = _check_sets(y_sets)
    return _average(sets.sum(axis=1), sample_weight)


def singleton_rate(y_true, y_sets, *, classes=None, sample_weight=None):
    """Fraction of sets with exactly one class.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,) or None
        Ignored (present for the scorer protocol).
    y_sets : array-like of shape (n_samples, n_classes), dtype=bool
        Predicted sets.
    classes : array-like of shape (n_classes,), default=None
        Ignored (present for the scorer protocol).
    sample_weight : array-like of shape (n_samples,), default=None
        Weights of the samples (a weighted mean; ``None``: equal weights).

    Returns
    -------
    rate : float
        In ``[0, 1]``.

    Examples
    --------
    >>> import numpy as np
    >>> from skstruct.metrics import singleton_rate
    >>> singleton_rate(None, np.array([[True, True], [False, True]]))
    0.5
    """
    sets = _check_sets(y_sets)
    return _average(sets.sum(axis=1) == 1, sample_weight)


def empty_rate(y_true, y_sets, *, classes=None, sample_weight=None):
    """Fraction of empty sets (possible with a plain score threshold).

    Parameters
    ----------
    y_true : array-like of shape (n_samples,) or None
        Ignored (present for the scorer protocol).
    y_sets : array-like of shape (n_samples, n_classes), dtype=bool
        Predicted sets.
    classes : array-like of shape (n_classes,), default=None
        Ignored (present for the scorer protocol).
    sample_weight : array-like of shape (n_samples,), default=None
        Weights of the samples (a weighted mean; ``None``: equal weights).

    Returns
    -------
    rate : float
        In ``[0, 1]``.

    Examples
    --------
    >>> import numpy as np
    >>> from skstruct.metrics import empty_rate
    >>> empty_rate(None, np.array([[False, False], [False, True]]))
    0.5
    """
    sets = _check_sets(y_sets)
    return _average(sets.sum(axis=1) == 0, sample_weight)


def coverage_per_class(y_true, y_sets, *, classes=None, sample_weight=None):
    """Coverage computed separately on the samples of each true class.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels.
    y_sets : array-like of shape (n_samples, n_classes), dtype=bool
        Predicted sets, columns aligned with ``classes``.
    classes : array-like of shape (n_classes,), default=None
        Label of each column; ``None`` means the labels are column indices.
    sample_weight : array-like of shape (n_samples,), default=None
        Weights of the samples (a weighted mean; ``None``: equal weights).

    Returns
    -------
    coverage : dict
        ``{label: coverage}`` for every class, in ``classes`` order; a class
        with no sample in ``y_true`` gets ``nan``.

    Examples
    --------
    >>> import numpy as np
    >>> from skstruct.metrics import coverage_per_class
    >>> sets = np.array([[True, False], [False, True], [True, False]])
    >>> coverage_per_class(["a", "b", "b"], sets, classes=["a", "b"])
    {'a': 1.0, 'b': 0.5}
    """
    sets, idx, classes = _check_sets_and_labels(y_true, y_sets, classes)
    hit = sets[np.arange(len(idx)), idx]
    n_classes = sets.shape[1]
    w = _weights(sample_weight, len(idx))
    counts = np.bincount(idx, weights=w, minlength=n_classes)
    hits = np.bincount(idx, weights=hit * w, minlength=n_classes)
    out = {}
    for j, label in enumerate(classes.tolist()):
        out[label] = float(hits[j] / counts[j]) if counts[j] else float("nan")
    return out


def size_stratified_coverage(y_true, y_sets, *, classes=None, bins=None, sample_weight=None):
    """Coverage grouped by the size of the predicted set.

    Large sets cover easily; a rule can reach its overall coverage while
    small sets under-cover. Grouping by size shows it (the size-stratified
    coverage of Angelopoulos et al., 2021; its worst group is a common
    summary).

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels.
    y_sets : array-like of shape (n_samples, n_classes), dtype=bool
        Predicted sets, columns aligned with ``classes``.
    classes : array-like of shape (n_classes,), default=None
        Label of each column; ``None`` means the labels are column indices.
    bins : array-like of int, default=None
        ``None`` groups by exact size (keys are ints). Otherwise increasing
        bin edges ``e_0 < e_1 < ...``; group ``(e_i, e_{i+1})`` holds the
        sizes ``e_i <= size < e_{i+1}`` (keys are such tuples; sizes outside
        every bin are dropped).
    sample_weight : array-like of shape (n_samples,), default=None
        Weights of the samples (a weighted mean; ``None``: equal weights).

    Returns
    -------
    coverage : dict
        ``{size or (low, high): coverage}`` for every non-empty group, in
        increasing size order.

    Examples
    --------
    >>> import numpy as np
    >>> from skstruct.metrics import size_stratified_coverage
    >>> sets = np.array([[1, 0, 0], [0, 1, 0], [1, 1, 0], [0, 1, 1]], dtype=bool)
    >>> size_stratified_coverage([0, 0, 1, 0], sets)
    {1: 0.5, 2: 0.5}
    >>> size_stratified_coverage([0, 0, 1, 0], sets, bins=[0, 2, 4])
    {(0, 2): 0.5, (2, 4): 0.5}
    """
    sets, idx, _ = _check_sets_and_labels(y_true, y_sets, classes)
    hit = sets[np.arange(len(idx)), idx]
    sizes = sets.sum(axis=1)
    w = _weights(sample_weight, len(idx))
    out = {}
    if bins is None:
        for size in np.unique(sizes):
            mask = (sizes == size) & (w > 0)
            if np.any(mask):
                out[int(size)] = _average(hit[mask], w[mask])
        return out
    edges = np.asarray(bins)
    if edges.ndim != 1 or len(edges) < 2 or np.any(np.diff(edges) <= 0):
        raise ValueError(
            "bins must be at least two strictly increasing set sizes, e.g. "
            f"[0, 2, 5, n_classes + 1]; got {bins!r}."
        )
    for low, high in zip(edges[:-1].tolist(), edges[1:].tolist()):
        mask = (sizes >= low) & (sizes < high) & (w > 0)
        if np.any(mask):
            out[(low, high)] = _average(hit[mask], w[mask])
    return out


def _set_scorer(func, greater_is_better=True):
    return make_structure_scorer(
        func,
        greater_is_better=greater_is_better,
        response_method=["predict_set"],
        structure_kwarg=None,
        classes_kwarg="classes",
    )


_register("set_coverage", _set_scorer(set_coverage))
_register("average_k_accuracy", _set_scorer(average_k_accuracy))
_register("neg_mean_set_size", _set_scorer(mean_set_size, greater_is_better=False))
_register("singleton_rate", _set_scorer(singleton_rate))
_register("neg_empty_rate", _set_scorer(empty_rate, greater_is_better=False))
