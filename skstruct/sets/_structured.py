"""Conformal sets that follow the class structure.

A plain conformal set ``{j : p_j >= threshold}`` may be any subset of the
classes. With a structure, sets can be made to mean something:

* **Ordinal scale** (``kind='interval'``): the interval of consecutive ranks
  around the prediction (the functions of :mod:`skstruct.sets._intervals`,
  applied in rank order and mapped back to ``classes`` order).
* **Hierarchy** (``kind='node'``): the leaves under the lowest ancestor of
  the predicted leaf whose aggregated probability reaches a level ``m``
  (the predicted leaf itself when ``p_pred >= m``; all classes when no
  ancestor does, e.g. across the trees of a forest). As ``m`` grows the node
  climbs the path to the root, so sets are nested and always hold the
  prediction.

In both cases the conformal score of a calibration sample is the level above
which its set contains the true label; the level returned lies just above
the ``ceil((n + 1) * confidence_level)``-th smallest score, so on
exchangeable data a new set contains the true label with probability at
least ``confidence_level`` (split conformal prediction).
"""

import numpy as np


__all__ = [
    "conformal_node_level",
    "node_masks",
    "node_sets_at_level",
    "structured_conformal_level",
    "structured_sets",
]


def node_masks(hierarchy):
    """Leaves under each node of the path from every leaf to its root.

    Parameters
    ----------
    hierarchy : Hierarchy
        The class hierarchy; its ``classes`` are the leaves.

    Returns
    -------
    masks : ndarray of shape (n_classes, height + 2, n_classes), dtype=bool
        ``masks[j, d]`` marks the leaves under the ``d``-th node of the path
        from leaf ``classes[j]`` upwards (``d=0`` is the leaf itself). After
        the root the path ends with a virtual node holding every class,
        repeated up to the common length.

    Examples
    --------
    >>> from skstruct.structures import Hierarchy
    >>> h = Hierarchy({"a": "x", "b": "x", "c": None})
    >>> node_masks(h)[0].astype(int)
    array([[1, 0, 0],
           [1, 1, 0],
           [1, 1, 1]])
    """
    classes = np.asarray(hierarchy.classes)
    n_classes = len(classes)
    index = {label: j for j, label in enumerate(classes.tolist())}
    chains = [
        (label,) + tuple(hierarchy.ancestors(label)) for label in classes.tolist()
    ]
    length = max(len(chain) for chain in chains) + 1
    masks = np.ones((n_classes, length, n_classes), dtype=bool)
    for j, chain in enumerate(chains):
        for d, node in enumerate(chain):
            masks[j, d] = False
            masks[j, d, [index[leaf] for leaf in hierarchy.leaves_under(node).tolist()]] = True
    return masks


def _chain_mass(proba, predicted, masks):
    """Aggregated probability along each predicted leaf's path; the virtual top is inf."""
    chain = masks[predicted]  # (n, L, C)
    mass = np.einsum("nlc,nc->nl", chain.astype(np.float64), proba)
    mass[chain.all(axis=2)] = np.inf
    # Rounding could make a parent's sum a hair smaller than its child's.
    np.maximum.accumulate(mass, axis=1, out=mass)
    return chain, mass


def node_sets_at_level(proba, predicted, masks, level):
    """Leaves under the lowest ancestor of the prediction whose mass reaches ``level``.

    Parameters
    ----------
    proba : ndarray of shape (n_samples, n_classes)
        Probabilities in ``classes`` order.
    predicted : ndarray of shape (n_samples,)
        Column index of the predicted leaf.
    masks : ndarray
        From :func:`node_masks`.
    level : float
        Mass level; at most ``proba[i, predicted[i]]`` gives the singleton
        of the prediction, ``inf`` every class.

    Returns
    -------
    sets : ndarray of shape (n_samples, n_classes), dtype=bool
        The leaves under the chosen node of each sample.

    Examples
    --------
    >>> import numpy as np
    >>> from skstruct.structures import Hierarchy
    >>> masks = node_masks(Hierarchy({"a": "x", "b": "x", "c": None}))
    >>> proba = np.array([[0.5, 0.3, 0.2]])
    >>> node_sets_at_level(proba, np.array([0]), masks, 0.7)
    array([[ True,  True, False]])
    """
    proba = np.asarray(proba, dtype=np.float64)
    predicted = np.asarray(predicted, dtype=np.int64)
    chain, mass = _chain_mass(proba, predicted, masks)
    depth = np.argmax(mass >= level, axis=1)
    return chain[np.arange(len(predicted)), depth]


def conformal_node_level(proba, predicted, y_true, masks, confidence_level):
    """Split-conformal level for :func:`node_sets_at_level`.

    Parameters
    ----------
    proba : ndarray of shape (n_samples, n_classes)
        Calibration probabilities in ``classes`` order.
    predicted : ndarray of shape (n_samples,)
        Column index of the predicted leaf.
    y_true : ndarray of shape (n_samples,)
        Column index of the true leaf.
    masks : ndarray
        From :func:`node_masks`.
    confidence_level : float in (0, 1)
        Target coverage.

    Returns
    -------
    level : float
        ``inf`` (every class) with too few calibration samples for the level.

    Examples
    --------
    >>> import numpy as np
    >>> from skstruct.structures import Hierarchy
    >>> masks = node_masks(Hierarchy({"a": "x", "b": "x", "c": None}))
    >>> proba = np.array([[0.5, 0.3, 0.2], [0.6, 0.1, 0.3], [0.2, 0.2, 0.6]])
    >>> level = conformal_node_level(proba, np.array([0, 0, 2]),
    ...                              np.array([1, 0, 2]), masks, 0.7)
    >>> node_sets_at_level(proba, np.array([0, 0, 2]), masks, level).astype(int)
    array([[1, 1, 0],
           [1, 0, 0],
           [0, 0, 1]])
    """
    proba = np.asarray(proba, dtype=np.float64)
    predicted = np.asarray(predicted, dtype=np.int64)
    y_true = np.asarray(y_true, dtype=np.int64)
    n_samples = len(y_true)
    chain, mass = _chain_mass(proba, predicted, masks)
    rows = np.arange(n_samples)
    contains = chain[rows, :, y_true]  # (n, L); the virtual top always contains y
    first = np.argmax(contains, axis=1)
    scores = np.full(n_samples, -np.inf)
    up = first > 0
    # The set contains y exactly when the level exceeds the mass of the node
    # just below the first ancestor holding y.
    scores[up] = mass[rows[up], first[up] - 1]
    rank = int(np.ceil((n_samples + 1) * confidence_level))
    if rank > n_samples:
        return np.inf
    qhat = np.sort(scores)[rank - 1]
    return float(np.nextafter(qhat, np.inf))


def _shape(kind, structure):
    from ._shapes import IntervalSets, NodeSets

    if kind == "interval":
        return IntervalSets(structure)
    if kind == "node":
        return NodeSets(structure)
    raise ValueError(f"kind must be 'interval' or 'node', got {kind!r}.")


def structured_conformal_level(kind, structure, proba, predicted, y_true, confidence_level):
    """Conformal level of the ``'interval'`` (ordinal) or ``'node'`` (hierarchy) sets.

    A functional shortcut for ``IntervalSets(structure).conformal_level`` or
    ``NodeSets(structure).conformal_level`` (:mod:`skstruct.sets._shapes`).

    Parameters
    ----------
    kind : {'interval', 'node'}
        Set family.
    structure : Ordinal or Hierarchy
        The fitted structure (its ``classes`` are the columns of ``proba``).
    proba : ndarray of shape (n_samples, n_classes)
        Calibration probabilities in ``classes`` order.
    predicted, y_true : ndarray of shape (n_samples,)
        Column indices of the predictions and of the true labels.
    confidence_level : float in (0, 1)
        Target coverage.

    Returns
    -------
    level : float
        A mass level for :func:`structured_sets`.
    """
    return float(_shape(kind, structure).conformal_level(proba, predicted, y_true, confidence_level))


def structured_sets(kind, structure, proba, predicted, level):
    """Sets of the ``'interval'`` or ``'node'`` family at a mass ``level``, in ``classes`` order.

    Parameters
    ----------
    kind : {'interval', 'node'}
        Set family.
    structure : Ordinal or Hierarchy
        The fitted structure.
    proba : ndarray of shape (n_samples, n_classes)
        Probabilities in ``classes`` order.
    predicted : ndarray of shape (n_samples,)
        Column indices of the predictions (always in their sets).
    level : float
        From :func:`structured_conformal_level`.

    Returns
    -------
    sets : ndarray of shape (n_samples, n_classes), dtype=bool
        Each row holds the prediction.

    Examples
    --------
    >>> import numpy as np
    >>> from skstruct.structures import Ordinal
    >>> scale = Ordinal(["low", "mid", "high"])  # classes: high, low, mid
    >>> proba = np.array([[0.1, 0.5, 0.4]])
    >>> structured_sets("interval", scale, proba, np.array([1]), 0.8)
    array([[False,  True,  True]])
    """
    return _shape(kind, structure).sets(proba, predicted, level)
