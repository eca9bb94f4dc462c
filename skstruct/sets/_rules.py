"""The Average-K set strategy: one level so that sets have a target mean size.

A set strategy is what ``set_rule=`` resolves to: an object with
``calibrate(scores, y_index, confidence_level, *, predicted=None)`` and
``predict_sets(scores, *, predicted=None)``. The estimator provides the
scores (its ``_set_scores`` hook: probabilities and predictions by default)
and calls the strategy through its ``_set_strategy`` hook; the strategy owns
the set logic. ``set_rule='average_k'`` is :class:`AverageK`;
``set_rule='conformal'`` is :class:`~skstruct.sets.SplitConformal` with
``LAC()`` and the shape of the class structure.
"""

import numpy as np

from ._shapes import ThresholdSets

__all__ = ["AverageK"]


class AverageK:
    """Sets of a given shape whose mean size on the calibration rows is ``set_size``.

    The level is calibrated on held-out rows (Garcin et al. 2025 with
    :class:`~skstruct.sets.ThresholdSets`; intervals of an ordinal scale with
    :class:`~skstruct.sets.IntervalSets`), so the mean size on new rows from
    the same distribution is ``set_size`` up to sampling noise. No coverage
    guarantee: use :class:`~skstruct.sets.SplitConformal` for that.

    Parameters
    ----------
    set_size : float, default=1.0
        Target mean set size, ``1 <= set_size <= n_classes`` (``>= 0`` when
        the shape forces no prediction in).
    shape : ThresholdSets or IntervalSets, default=None
        The set family; ``None`` means ``ThresholdSets()`` (the prediction
        forced into its set).

    Attributes
    ----------
    level_ : float
        The calibrated level of the shape (``set_threshold_`` of the estimator).

    Examples
    --------
    >>> import numpy as np
    >>> scores = np.array([[0.6, 0.3, 0.1], [0.2, 0.5, 0.25]])
    >>> rule = AverageK(1.5).calibrate(scores, predicted=np.array([0, 1]))
    >>> rule.level_
    0.275
    >>> rule.predict_sets(scores, predicted=np.array([0, 1])).sum(axis=1)
    array([2, 1])
    """

    needs_labels = False
    needs_probabilities = False

    def __init__(self, set_size=1.0, shape=None):
        self.set_size = set_size
        self.shape = shape

    def _shape(self):
        return ThresholdSets() if self.shape is None else self.shape

    @property
    def needs_rows(self):
        """Whether the level depends on calibration rows (not for size 1 with the prediction in)."""
        return not (self.set_size == 1 and self._shape().contains_prediction)

    def calibrate(self, scores, y_index=None, confidence_level=None, *, predicted=None):
        """Calibrate ``level_`` on held-out scores; labels are not used.

        Parameters
        ----------
        scores : ndarray of shape (n_samples, n_classes) or None
            Calibration scores; may be ``None`` when :attr:`needs_rows` is False.
        y_index : ignored
            Accepted for the common strategy signature.
        confidence_level : ignored
            Accepted for the common strategy signature.
        predicted : ndarray of shape (n_samples,), default=None
            Column index of each prediction.

        Returns
        -------
        self : AverageK
            With ``level_`` set.
        """
        shape = self._shape()
        if scores is not None:
            n_classes = np.shape(scores)[1]
            if self.set_size > n_classes:
                raise ValueError(
                    f"set_size={self.set_size} exceeds the number of classes "
                    f"({n_classes}); choose 1 <= set_size <= n_classes."
                )
        if not self.needs_rows:
            self.level_ = float(shape.singleton_level)
            return self
        self.level_ = float(shape.average_size_level(scores, predicted, self.set_size))
        return self

    def predict_sets(self, scores, *, predicted=None):
        """Boolean sets at the calibrated level.

        Parameters
        ----------
        scores : ndarray of shape (n_samples, n_classes)
            Scores of the estimator.
        predicted : ndarray of shape (n_samples,), default=None
            Column index of each prediction.

        Returns
        -------
        sets : ndarray of shape (n_samples, n_classes), dtype=bool
            True where a class is in the sample's set.
        """
        return self._shape().sets(scores, predicted, self.level_)

    def __repr__(self):
        return f"AverageK(set_size={self.set_size!r}, shape={self._shape()!r})"
