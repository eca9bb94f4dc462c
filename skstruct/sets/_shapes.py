"""Set shapes: nested families of sets indexed by one level, calibrated by a set strategy.

A *shape* turns an estimator's scores and predictions into a set at a given
level, and knows two calibrations of that level on held-out rows:

* ``average_size_level(scores, predicted, set_size)``: the level whose sets
  have mean size ``set_size`` (used by :class:`~skstruct.sets.AverageK`);
* ``conformal_level(scores, predicted, y_index, confidence_level)``: the
  split-conformal level, so that a new set holds the true label with
  probability at least ``confidence_level`` (used by
  :class:`~skstruct.sets.SplitConformal` with ``shape=``).

Three shapes ship:

* :class:`ThresholdSets`: ``{j : s_j >= level}``, optionally with the
  prediction forced in (plain subsets; a larger level gives smaller sets);
* :class:`IntervalSets`: intervals of consecutive ranks of an
  :class:`~skstruct.structures.Ordinal` scale around the prediction
  (:mod:`skstruct.sets._intervals`; a larger mass level gives longer intervals);
* :class:`NodeSets`: the leaves under one node of a
  :class:`~skstruct.structures.Hierarchy` on the path from the predicted leaf
  to its root (:mod:`skstruct.sets._structured`).

Scores are in the estimator's ``classes_`` order; ``predicted`` holds column
indices. Interval and node sets need probabilities and always contain the
prediction.
"""

import numpy as np

from ._calibration import calibrate_average_size, calibrate_conformal, sets_from_threshold
from ._intervals import (
    calibrate_interval_level,
    conformal_interval_level,
    intervals_at_level,
    intervals_to_mask,
)

__all__ = ["IntervalSets", "NodeSets", "ThresholdSets", "shape_for_structure"]


class ThresholdSets:
    """Plain sets ``{j : s_j >= level}``, plus the prediction when ``include_prediction``.

    Parameters
    ----------
    include_prediction : bool, default=True
        Force the predicted class into every set. Average-K calibration then
        counts only the other classes (``set_size=1`` gives the singleton of
        the prediction); conformal calibration ignores the forced label (the
        sets only grow, so coverage still holds).

    Examples
    --------
    >>> import numpy as np
    >>> shape = ThresholdSets()
    >>> shape.sets(np.array([[0.6, 0.3, 0.1]]), np.array([0]), 0.25)
    array([[ True,  True, False]])
    """

    def __init__(self, include_prediction=True):
        self.include_prediction = include_prediction

    @property
    def contains_prediction(self):
        """Whether every set holds the prediction."""
        return bool(self.include_prediction)

    singleton_level = np.inf

    def sets(self, scores, predicted, level):
        """Boolean sets at ``level``, shape ``(n_samples, n_classes)``.

        Parameters
        ----------
        scores : ndarray of shape (n_samples, n_classes)
            Scores, higher = more plausible.
        predicted : ndarray of shape (n_samples,)
            Column index of each prediction.
        level : float
            Score threshold.

        Returns
        -------
        sets : ndarray of shape (n_samples, n_classes), dtype=bool
            True where a class is in the sample's set.
        """
        return sets_from_threshold(
            scores, predicted, level, include_predicted=self.include_prediction
        )

    def average_size_level(self, scores, predicted, set_size):
        """Threshold whose sets have mean size ``set_size`` on these rows (Average-K).

        Returns
        -------
        level : float
            The level to pass to :meth:`sets`.
        """
        return float(calibrate_average_size(
            scores, predicted if self.include_prediction else None, set_size
        ))

    def conformal_level(self, scores, predicted, y_index, confidence_level):
        """Split-conformal threshold of the score ``1 - s_y`` (LAC).

        Returns
        -------
        level : float
            The level to pass to :meth:`sets` (``inf`` or ``-inf`` for all
            classes when there are too few rows for the level).
        """
        return float(calibrate_conformal(scores, y_index, confidence_level))

    def __repr__(self):
        return f"ThresholdSets(include_prediction={self.include_prediction!r})"


class IntervalSets:
    """Intervals of consecutive ranks of an ordinal scale around the prediction.

    The set at a mass level ``m`` is the shortest interval containing the
    prediction whose probability mass reaches ``m`` (see
    :mod:`skstruct.sets._intervals`). Needs probabilities.

    Parameters
    ----------
    ordinal : Ordinal
        The scale; its ``classes`` are the score columns.

    Examples
    --------
    >>> import numpy as np
    >>> from skstruct.structures import Ordinal
    >>> shape = IntervalSets(Ordinal(["low", "mid", "high"]))  # classes: high, low, mid
    >>> shape.sets(np.array([[0.1, 0.5, 0.4]]), np.array([1]), 0.8)
    array([[False,  True,  True]])
    """

    contains_prediction = True
    singleton_level = -np.inf

    def __init__(self, ordinal):
        self.ordinal = ordinal

    def _view(self, scores, predicted):
        ranks = np.asarray(self.ordinal.ranks)
        order = np.asarray(self.ordinal.rank_order)
        proba = np.asarray(scores, dtype=np.float64)[:, order]
        return ranks, proba, ranks[np.asarray(predicted, dtype=np.int64)]

    def sets(self, scores, predicted, level):
        """Boolean interval masks at mass ``level``, in ``classes`` order.

        Returns
        -------
        sets : ndarray of shape (n_samples, n_classes), dtype=bool
            True where a class is in the sample's set.
        """
        ranks, proba, pred = self._view(scores, predicted)
        lo, hi = intervals_at_level(proba, pred, level)
        return intervals_to_mask(lo, hi, proba.shape[1])[:, ranks]

    def average_size_level(self, scores, predicted, set_size):
        """Mass level whose intervals have mean size ``set_size`` on these rows.

        Returns
        -------
        level : float
            The level to pass to :meth:`sets`.
        """
        _, proba, pred = self._view(scores, predicted)
        return float(calibrate_interval_level(proba, pred, set_size))

    def conformal_level(self, scores, predicted, y_index, confidence_level):
        """Split-conformal mass level (:func:`~skstruct.sets.conformal_interval_level`).

        Returns
        -------
        level : float
            The level to pass to :meth:`sets` (``inf`` or ``-inf`` for all
            classes when there are too few rows for the level).
        """
        ranks, proba, pred = self._view(scores, predicted)
        return float(conformal_interval_level(
            proba, pred, ranks[np.asarray(y_index, dtype=np.int64)], confidence_level
        ))

    def __repr__(self):
        return f"IntervalSets({self.ordinal!r})"


class NodeSets:
    """The leaves under the lowest ancestor of the predicted leaf whose mass reaches the level.

    Sets are nested along the path to the root and always hold the
    prediction (see :mod:`skstruct.sets._structured`). Needs probabilities.
    Average-K calibration is not defined for this shape (a node's size jumps
    by whole subtrees); use :class:`ThresholdSets` for Average-K.

    Parameters
    ----------
    hierarchy : Hierarchy
        The class hierarchy; its leaves are the score columns.

    Examples
    --------
    >>> import numpy as np
    >>> from skstruct.structures import Hierarchy
    >>> shape = NodeSets(Hierarchy({"a": "x", "b": "x", "c": None}))
    >>> shape.sets(np.array([[0.5, 0.3, 0.2]]), np.array([0]), 0.7)
    array([[ True,  True, False]])
    """

    contains_prediction = True
    singleton_level = -np.inf

    def __init__(self, hierarchy):
        self.hierarchy = hierarchy

    def _masks(self):
        from ._structured import node_masks

        masks = getattr(self, "_masks_cache", None)
        if masks is None:
            masks = self._masks_cache = node_masks(self.hierarchy)
        return masks

    def sets(self, scores, predicted, level):
        """Boolean node masks at mass ``level``, in ``classes`` order.

        Returns
        -------
        sets : ndarray of shape (n_samples, n_classes), dtype=bool
            True where a class is in the sample's set.
        """
        from ._structured import node_sets_at_level

        return node_sets_at_level(scores, predicted, self._masks(), level)

    def average_size_level(self, scores, predicted, set_size):
        """Not defined for node sets: raises ``ValueError``.

        Returns
        -------
        level : float
            The level to pass to :meth:`sets`.
        """
        raise ValueError(
            "Average-K calibration (a target mean set_size) is not defined for "
            "NodeSets: node sizes jump by whole subtrees. Use "
            "AverageK(shape=ThresholdSets()) or a conformal strategy."
        )

    def conformal_level(self, scores, predicted, y_index, confidence_level):
        """Split-conformal mass level (:func:`~skstruct.sets._structured.conformal_node_level`).

        Returns
        -------
        level : float
            The level to pass to :meth:`sets` (``inf`` or ``-inf`` for all
            classes when there are too few rows for the level).
        """
        from ._structured import conformal_node_level

        return conformal_node_level(scores, predicted, y_index, self._masks(), confidence_level)

    def __getstate__(self):
        state = dict(self.__dict__)
        state.pop("_masks_cache", None)
        return state

    def __repr__(self):
        return f"NodeSets({self.hierarchy!r})"


def shape_for_structure(structure, *, include_prediction=False):
    """The conformal set shape of a class structure.

    Parameters
    ----------
    structure : Ordinal, Hierarchy, ClassGraph or None
        The fitted structure of an estimator.
    include_prediction : bool, default=False
        For plain threshold sets (no Ordinal, no Hierarchy): force the
        prediction in.

    Returns
    -------
    shape : IntervalSets, NodeSets or ThresholdSets
        Intervals for an Ordinal scale, tree nodes for a Hierarchy, plain
        thresholds otherwise.

    Examples
    --------
    >>> from skstruct.structures import Ordinal
    >>> shape_for_structure(Ordinal([1, 2, 3]))
    IntervalSets(Ordinal([1, 2, 3], width=1))
    >>> shape_for_structure(None)
    ThresholdSets(include_prediction=False)
    """
    kind = getattr(structure, "kind", None)
    if kind == "ordinal":
        return IntervalSets(structure)
    if kind == "hierarchy":
        return NodeSets(structure)
    return ThresholdSets(include_prediction=include_prediction)
