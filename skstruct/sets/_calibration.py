"""Set-valued prediction: calibrate a score threshold, then threshold scores.

Two rules share one data layout: ``scores`` is an ``(n_samples, n_classes)``
array (higher = more plausible) and a set is a boolean array of that shape.

* ``"average_k"``: one global threshold chosen so that the *mean* set size
  on calibration data equals a target ``set_size`` (Garcin et al. 2025). The
  predicted label is always in its set, and the threshold is calibrated on the
  remaining scores, so ``set_size=1`` gives the singleton of the prediction.
* ``"conformal"``: split conformal prediction with the least-ambiguous-set
  score ``1 - score[y]`` (Sadinle et al. 2019); coverage is at least
  ``confidence_level`` in expectation over exchangeable data.
"""

import numpy as np


def calibrate_average_size(scores, predicted, set_size):
    """Threshold so that ``{predicted} ∪ {j : scores[j] >= threshold}`` has mean size ``set_size``.

    With ``predicted=None`` no label is forced in: the threshold keeps exactly
    ``floor(set_size * n_samples)`` scores (the rule of Garcin et al. 2025,
    whose sets may be empty).

    Parameters
    ----------
    scores : ndarray of shape (n_samples, n_classes)
        Calibration scores.
    predicted : ndarray of shape (n_samples,) or None
        Column index of each sample's prediction (always in its set), or
        ``None`` to threshold all scores alike.
    set_size : float
        Target mean set size, ``1 <= set_size <= n_classes``.

    Returns
    -------
    threshold : float
        Midpoint between the last score kept and the first one dropped
        (``inf`` when only the predictions are kept).

    Examples
    --------
    >>> import numpy as np
    >>> scores = np.array([[0.6, 0.3, 0.1], [0.2, 0.5, 0.25]])
    >>> float(calibrate_average_size(scores, np.array([0, 1]), set_size=1.5))
    0.275
    >>> float(calibrate_average_size(scores, None, set_size=1.0))
    0.4
    """
    if not (np.isfinite(set_size) and set_size >= (0 if predicted is None else 1)):
        raise ValueError(
            f"set_size must be a finite number >= {0 if predicted is None else 1} "
            f"(the target mean set size), got set_size={set_size!r}."
        )
    scores = np.asarray(scores, dtype=np.float64)
    n_samples, n_classes = scores.shape
    others = scores.copy()
    if predicted is None:
        n_free, n_forced = n_classes, 0.0
    else:
        others[np.arange(n_samples), predicted] = -np.inf
        n_free, n_forced = n_classes - 1, 1.0
    n_extra = int(np.floor((set_size - n_forced) * n_samples + 1e-9))
    if n_extra <= 0:
        return np.inf
    flat = np.sort(others.ravel())[::-1]
    n_extra = min(n_extra, n_samples * n_free)
    last_kept = flat[n_extra - 1]
    first_dropped = flat[n_extra] if n_extra < flat.size else -np.inf
    if not np.isfinite(first_dropped):
        return float(last_kept)
    return (last_kept + first_dropped) / 2.0


def sets_from_threshold(scores, predicted, threshold, *, include_predicted=True):
    """Boolean sets ``{j : scores[j] >= threshold}``, plus the prediction if asked.

    Parameters
    ----------
    scores : array-like of shape (n_samples, n_classes)
        Class scores (probabilities).
    predicted : array-like of shape (n_samples,)
        Column index of each sample's prediction.
    threshold : float
        Classes scored at least this much enter the set; NaN raises.
    include_predicted : bool, default=True
        Whether the predicted class is always in the set.

    Returns
    -------
    sets : ndarray of shape (n_samples, n_classes), dtype=bool
        ``sets[i, j]`` is True when class ``j`` is in the set of sample ``i``.

    Examples
    --------
    >>> import numpy as np
    >>> sets_from_threshold(np.array([[0.6, 0.3, 0.1]]), np.array([0]), 0.25)
    array([[ True,  True, False]])
    """
    if np.isnan(threshold):
        raise ValueError("threshold must be a number, got threshold=nan.")
    sets = np.asarray(scores) >= threshold
    if include_predicted:
        sets[np.arange(sets.shape[0]), predicted] = True
    return sets


def calibrate_conformal(scores, y_index, confidence_level):
    """Split-conformal threshold on the least-ambiguous-set score ``1 - score[y]``.

    Parameters
    ----------
    scores : ndarray of shape (n_samples, n_classes)
        Calibration scores (probabilities).
    y_index : ndarray of shape (n_samples,)
        Column index of each sample's true label.
    confidence_level : float in (0, 1)
        Target coverage.

    Returns
    -------
    threshold : float
        Sets are ``{j : scores[j] >= threshold}``. With too few calibration
        samples for the level (``n < 1/(1 - confidence_level) - 1``) the
        threshold is ``-inf``: every class is in every set.

    Examples
    --------
    >>> import numpy as np
    >>> scores = np.array([[0.7, 0.3], [0.4, 0.6], [0.9, 0.1], [0.2, 0.8]])
    >>> float(calibrate_conformal(scores, np.array([0, 1, 0, 0]), 0.5))
    0.6
    """
    if not 0 < confidence_level < 1:
        raise ValueError(
            f"confidence_level must lie in (0, 1), got confidence_level={confidence_level!r}."
        )
    scores = np.asarray(scores, dtype=np.float64)
    n_samples = scores.shape[0]
    y_index = np.asarray(y_index)
    if y_index.size and (y_index.min() < 0 or y_index.max() >= scores.shape[1]):
        raise ValueError(
            f"y_index must hold column indices in [0, {scores.shape[1]}), got "
            f"values from {y_index.min()} to {y_index.max()}."
        )
    nonconformity = 1.0 - scores[np.arange(n_samples), y_index]
    rank = int(np.ceil((n_samples + 1) * confidence_level))
    if rank > n_samples:
        return -np.inf
    qhat = np.sort(nonconformity)[rank - 1]
    return 1.0 - qhat
