"""Interval-valued prediction on an ordinal scale.

Every array here is in **rank order**: column ``k`` of ``proba`` is the
probability of the class of rank ``k`` (lowest first), and a prediction or a
true label is a rank. An interval is a pair of ranks ``(lo, hi)``, both
included.

For a sample with predicted rank ``r`` and a size ``s``, the *best interval
of size s* is the interval of ``s`` consecutive ranks that contains ``r`` and
holds the most probability mass (ties: the lowest start). Its mass ``M(s)``
never decreases with ``s`` (a best interval can be extended by one rank), and
``M(n_classes) = 1``. The interval of a sample at a *mass level* ``m`` is its
best interval of size

    size(m) = 1 + #{s < n_classes : M(s) < m},

that is the shortest interval containing the prediction whose mass reaches
``m``. Sizes grow with ``m``; the intervals of two levels need not be nested
(the best interval of size 3 may drop a rank of the best interval of size 2).

Two calibrations share this family:

* :func:`calibrate_interval_level` picks one level so that the *mean* size on
  calibration data equals a target (the average-K rule of
  :func:`~skstruct.sets.calibrate_average_size`, with intervals);
* :func:`conformal_interval_level` picks the split-conformal level for a
  coverage target. The score of a true rank ``y`` is the level above which
  every interval contains ``y``; as the interval at a level contains every
  rank whose score is below it, coverage holds even though intervals are not
  nested.

Everything is vectorised over samples; the cost is ``O(n_samples *
n_classes ** 2)`` time and ``O(n_samples * n_classes)`` memory.
"""

import numpy as np

__all__ = [
    "best_intervals",
    "calibrate_interval_level",
    "conformal_interval_level",
    "interval_sizes",
    "intervals_at_level",
    "intervals_to_mask",
]


def _check_proba_pred(proba, predicted):
    proba = np.asarray(proba, dtype=np.float64)
    if proba.ndim != 2:
        raise ValueError(
            f"proba must have shape (n_samples, n_classes), got shape {proba.shape}."
        )
    predicted = np.asarray(predicted)
    if predicted.shape != (proba.shape[0],):
        raise ValueError(
            f"predicted must have shape ({proba.shape[0]},) to match proba, got "
            f"shape {predicted.shape}."
        )
    predicted = predicted.astype(np.int64)
    n_classes = proba.shape[1]
    if predicted.size and (predicted.min() < 0 or predicted.max() >= n_classes):
        raise ValueError(
            f"predicted must hold ranks in [0, {n_classes - 1}], got values in "
            f"[{predicted.min()}, {predicted.max()}]."
        )
    return proba, predicted


def best_intervals(proba, predicted):
    """Best interval of every size containing the prediction.

    Parameters
    ----------
    proba : array-like of shape (n_samples, n_classes)
        Probabilities in rank order.
    predicted : array-like of shape (n_samples,)
        Predicted rank of each sample.

    Returns
    -------
    mass : ndarray of shape (n_samples, n_classes)
        ``mass[i, s - 1]`` is ``M(s)``, the largest mass of an interval of
        ``s`` consecutive ranks containing ``predicted[i]``; non-decreasing
        along each row.
    start : ndarray of shape (n_samples, n_classes), dtype=int64
        ``start[i, s - 1]`` is the lowest rank of that interval (the lowest
        such start when several tie).

    Examples
    --------
    >>> import numpy as np
    >>> mass, start = best_intervals(np.array([[0.1, 0.5, 0.1, 0.3]]), [1])
    >>> mass
    array([[0.5, 0.6, 0.9, 1. ]])
    >>> start
    array([[1, 0, 1, 0]])
    """
    proba, predicted = _check_proba_pred(proba, predicted)
    n_samples, n_classes = proba.shape
    cumsum = np.zeros((n_samples, n_classes + 1))
    np.cumsum(proba, axis=1, out=cumsum[:, 1:])
    mass = np.empty((n_samples, n_classes))
    start = np.empty((n_samples, n_classes), dtype=np.int64)
    rows = np.arange(n_samples)
    for size in range(1, n_classes + 1):
        # Windows starting at a = 0 .. C - size; valid if a <= r <= a + size - 1.
        window = cumsum[:, size:] - cumsum[:, : n_classes - size + 1]
        starts = np.arange(n_classes - size + 1)
        valid = (starts[None, :] <= predicted[:, None]) & (
            starts[None, :] + size - 1 >= predicted[:, None]
        )
        window = np.where(valid, window, -np.inf)
        best = np.argmax(window, axis=1)
        start[:, size - 1] = best
        mass[:, size - 1] = window[rows, best]
    # Rounding can make a longer window's sum a hair smaller: keep M monotone.
    np.maximum.accumulate(mass, axis=1, out=mass)
    return mass, start


def interval_sizes(mass, level):
    """Interval size of each sample at a mass level.

    Parameters
    ----------
    mass : ndarray of shape (n_samples, n_classes)
        From :func:`best_intervals`.
    level : float
        Mass level; ``-inf`` (or any level at most the predicted probability)
        gives singletons, ``inf`` the whole scale.

    Returns
    -------
    sizes : ndarray of shape (n_samples,), dtype=int64
        ``1 + #{s < n_classes : M(s) < level}``.

    Examples
    --------
    >>> import numpy as np
    >>> interval_sizes(np.array([[0.5, 0.6, 0.9, 1.0]]), 0.8)
    array([3])
    """
    mass = np.asarray(mass, dtype=np.float64)
    return 1 + np.sum(mass[:, :-1] < level, axis=1).astype(np.int64)


def intervals_at_level(proba, predicted, level):
    """Shortest interval containing the prediction whose mass reaches ``level``.

    Parameters
    ----------
    proba : array-like of shape (n_samples, n_classes)
        Probabilities in rank order.
    predicted : array-like of shape (n_samples,)
        Predicted rank of each sample; always inside its interval.
    level : float
        Mass level (see :func:`interval_sizes`).

    Returns
    -------
    lo, hi : ndarray of shape (n_samples,), dtype=int64
        Lowest and highest rank of each interval, both included.

    Examples
    --------
    >>> import numpy as np
    >>> lo, hi = intervals_at_level(np.array([[0.1, 0.5, 0.1, 0.3]]), [1], 0.55)
    >>> lo, hi
    (array([0]), array([1]))
    """
    mass, start = best_intervals(proba, predicted)
    sizes = interval_sizes(mass, level)
    lo = start[np.arange(len(sizes)), sizes - 1]
    return lo, lo + sizes - 1


def intervals_to_mask(lo, hi, n_classes):
    """Boolean ``(n_samples, n_classes)`` mask of intervals, in rank order.

    Parameters
    ----------
    lo, hi : array-like of int of shape (n_samples,)
        Lowest and highest rank of each interval (both included).
    n_classes : int
        Number of ranks of the scale.

    Returns
    -------
    mask : ndarray of shape (n_samples, n_classes), dtype=bool
        ``mask[i, r]`` is True when ``lo[i] <= r <= hi[i]``.

    Examples
    --------
    >>> import numpy as np
    >>> intervals_to_mask(np.array([1]), np.array([2]), 4)
    array([[False,  True,  True, False]])
    """
    if np.any(np.asarray(lo) > np.asarray(hi)):
        raise ValueError("lo must be <= hi for every interval (lowest rank first).")
    ranks = np.arange(n_classes)[None, :]
    return (ranks >= np.asarray(lo)[:, None]) & (ranks <= np.asarray(hi)[:, None])


def calibrate_interval_level(proba, predicted, set_size):
    """Mass level whose intervals have mean size ``set_size`` on these data.

    The number of ranks added to the predictions, ``floor((set_size - 1) *
    n_samples)``, is matched exactly unless calibration masses tie.

    Parameters
    ----------
    proba : array-like of shape (n_samples, n_classes)
        Calibration probabilities in rank order.
    predicted : array-like of shape (n_samples,)
        Predicted ranks.
    set_size : float
        Target mean interval size, ``1 <= set_size <= n_classes``.

    Returns
    -------
    level : float
        ``-inf`` gives singletons (``set_size`` 1), ``inf`` the whole scale.
        Otherwise the midpoint between the largest mass that is exceeded and
        the next one.

    Examples
    --------
    >>> import numpy as np
    >>> proba = np.array([[0.6, 0.3, 0.1], [0.2, 0.5, 0.3]])
    >>> level = calibrate_interval_level(proba, [0, 1], set_size=2)
    >>> float(level)
    0.7
    >>> interval_sizes(best_intervals(proba, [0, 1])[0], level)
    array([2, 2])
    """
    proba, predicted = _check_proba_pred(proba, predicted)
    n_samples, n_classes = proba.shape
    if not 1 <= set_size <= n_classes:
        raise ValueError(
            f"set_size={set_size} must be in [1, n_classes={n_classes}]."
        )
    n_extra = int(np.floor((set_size - 1.0) * n_samples + 1e-9))
    if n_extra <= 0:
        return -np.inf
    if n_extra >= n_samples * (n_classes - 1):
        return np.inf
    mass, _ = best_intervals(proba, predicted)
    values = np.sort(mass[:, :-1].ravel())
    # Exactly n_extra values lie strictly below the midpoint.
    return float((values[n_extra - 1] + values[n_extra]) / 2.0)


def conformal_interval_level(proba, predicted, y_true, confidence_level):
    """Split-conformal mass level: intervals cover the true rank with probability >= ``confidence_level``.

    The score of a calibration sample is the level above which every
    interval contains its true rank (``-inf`` when the prediction is right).
    The returned level lies just above the ``ceil((n + 1) *
    confidence_level)``-th smallest score, so on exchangeable data the
    interval of a new sample contains its rank with probability at least
    ``confidence_level``.

    Parameters
    ----------
    proba : array-like of shape (n_samples, n_classes)
        Calibration probabilities in rank order.
    predicted : array-like of shape (n_samples,)
        Predicted ranks.
    y_true : array-like of shape (n_samples,)
        True ranks.
    confidence_level : float in (0, 1)
        Target coverage.

    Returns
    -------
    level : float
        ``inf`` (the whole scale) when there are too few calibration samples
        for the level.

    Examples
    --------
    >>> import numpy as np
    >>> proba = np.array([[0.6, 0.3, 0.1], [0.2, 0.5, 0.3], [0.1, 0.2, 0.7]])
    >>> level = conformal_interval_level(proba, [0, 1, 2], [1, 1, 2], 0.75)
    >>> intervals_at_level(proba, [0, 1, 2], level)
    (array([0, 1, 2]), array([1, 2, 2]))
    """
    proba, predicted = _check_proba_pred(proba, predicted)
    y_true = np.asarray(y_true, dtype=np.int64)
    n_samples, n_classes = proba.shape
    mass, start = best_intervals(proba, predicted)
    sizes = np.arange(1, n_classes + 1)[None, :]
    contains = (start <= y_true[:, None]) & (y_true[:, None] <= start + sizes - 1)
    # Smallest size from which every best interval contains y (size C always does).
    missing = ~contains
    last_missing = np.where(
        missing.any(axis=1), n_classes - 1 - np.argmax(missing[:, ::-1], axis=1), -1
    )
    # Sizes >= last_missing + 2 contain y; size(m) >= s iff M(s - 1) < m.
    scores = np.full(n_samples, -np.inf)
    has = last_missing >= 0
    scores[has] = mass[has, last_missing[has]]
    rank = int(np.ceil((n_samples + 1) * confidence_level))
    if rank > n_samples:
        return np.inf
    qhat = np.sort(scores)[rank - 1]
    return float(np.nextafter(qhat, np.inf))
