"""Structured label noise: transition matrices and noisy labels drawn from them.

A transition matrix ``T`` has ``T[i, j] = P(observed label j | true class i)``
(rows sum to 1), in the order of ``classes``. Its support ``T > 0`` is exactly
the plausibility ``Q[s, t]`` of :class:`~skstruct.structures.ClassGraph`
(true class ``s`` may appear under observed label ``t``), so
``ClassGraph.from_transition_matrix(T, classes)`` gives the structure that
matches the noise.
"""

import numpy as np
from sklearn.utils import check_random_state

__all__ = ["block_flip_transition", "make_noisy_labels", "pair_flip_transition"]


def _index(classes):
    classes = np.asarray(classes)
    return classes, {c: i for i, c in enumerate(classes.tolist())}


def pair_flip_transition(classes, pairs, rate):
    """Directed pair flips: a sample of ``src`` is labelled ``dst`` with probability ``rate``.

    Parameters
    ----------
    classes : array-like of shape (n_classes,)
        Labels in the order of the matrix.
    pairs : iterable of (src, dst)
        Directed flips, e.g. ``[(7, 1), (3, 8)]``.
    rate : float in [0, 1)
        Flip probability.

    Returns
    -------
    T : ndarray of shape (n_classes, n_classes)
        Row-stochastic transition matrix, ``T[i, j] = P(observed classes[j] |
        true classes[i])``; the identity outside the flipped pairs.

    Examples
    --------
    >>> pair_flip_transition([0, 1, 2], [(2, 1)], 0.4)
    array([[1. , 0. , 0. ],
           [0. , 1. , 0. ],
           [0. , 0.4, 0.6]])
    """
    classes, index = _index(classes)
    if not 0 <= rate < 1:
        raise ValueError(f"rate must be in [0, 1), got {rate}.")
    T = np.eye(len(classes))
    for src, dst in pairs:
        if src not in index or dst not in index:
            raise ValueError(f"pair ({src!r}, {dst!r}) names a label not in classes.")
        i, j = index[src], index[dst]
        T[i, i] -= rate
        T[i, j] += rate
    if np.any(T < 0):
        raise ValueError("the flips of one class add up to more than 1.")
    return T


def block_flip_transition(classes, groups, rate):
    """Flips inside groups: with probability ``rate`` a label moves uniformly to another member.

    Parameters
    ----------
    classes : array-like of shape (n_classes,)
        Labels in the order of the matrix.
    groups : iterable of iterables
        Disjoint groups of labels; labels in no group are never flipped.
    rate : float in [0, 1)
        Flip probability.

    Returns
    -------
    T : ndarray of shape (n_classes, n_classes)
        Row-stochastic transition matrix, ``T[i, j] = P(observed classes[j] |
        true classes[i])``; block diagonal over the groups.

    Examples
    --------
    >>> block_flip_transition([0, 1, 2], [[0, 1]], 0.2)
    array([[0.8, 0.2, 0. ],
           [0.2, 0.8, 0. ],
           [0. , 0. , 1. ]])
    """
    classes, index = _index(classes)
    if not 0 <= rate < 1:
        raise ValueError(f"rate must be in [0, 1), got {rate}.")
    T = np.eye(len(classes))
    seen = set()
    for group in groups:
        members = [index[g] for g in group]
        if seen & set(members):
            raise ValueError("groups must be disjoint.")
        seen |= set(members)
        if len(members) < 2:
            continue
        for i in members:
            T[i, i] = 1 - rate
            for j in members:
                if j != i:
                    T[i, j] = rate / (len(members) - 1)
    return T


def make_noisy_labels(y, transition, classes=None, random_state=None):
    """Draw an observed label for each true label from a transition matrix.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        True labels.
    transition : ndarray of shape (n_classes, n_classes)
        ``T[i, j] = P(observed classes[j] | true classes[i])``.
    classes : array-like, default=None
        Labels in the order of ``transition``; default ``np.unique(y)``.
    random_state : int, RandomState instance or None, default=None
        Seed of the draw.

    Returns
    -------
    y_noisy : ndarray of shape (n_samples,)
        One observed label per sample, drawn from the row of ``transition``
        of its true label.

    Examples
    --------
    >>> import numpy as np
    >>> y = np.zeros(1000, dtype=int)
    >>> T = np.array([[0.6, 0.4], [0.0, 1.0]])
    >>> noisy = make_noisy_labels(y, T, classes=[0, 1], random_state=0)
    >>> bool(0.35 < noisy.mean() < 0.45)
    True
    """
    y = np.asarray(y)
    classes = np.unique(y) if classes is None else np.asarray(classes)
    T = np.asarray(transition, dtype=float)
    if T.shape != (len(classes), len(classes)):
        raise ValueError(
            f"transition must have shape ({len(classes)}, {len(classes)}), got {T.shape}."
        )
    if np.any(T < 0) or not np.allclose(T.sum(axis=1), 1.0):
        raise ValueError("transition rows must be probability vectors (>= 0, sum 1).")
    rng = check_random_state(random_state)
    _, index = _index(classes)
    true_idx = np.array([index[v] for v in y.tolist()])
    cum = np.cumsum(T, axis=1)[true_idx]
    u = rng.random_sample(len(y))[:, None]
    observed = np.minimum((u > cum).sum(axis=1), len(classes) - 1)
    return classes[observed]
