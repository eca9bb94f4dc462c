"""Set-valued prediction: set strategies (Average-K, split conformal), set shapes, calibration.

``set_rule=`` of every estimator resolves to a strategy object
(:class:`AverageK`, :class:`SplitConformal`) that calibrates a level on
held-out rows and turns the estimator's scores into sets of a shape
(:class:`ThresholdSets`, :class:`IntervalSets`, :class:`NodeSets`).
"""

from ._conformal import APS, LAC, RAPS, SplitConformal
from ._rules import AverageK
from ._shapes import IntervalSets, NodeSets, ThresholdSets, shape_for_structure
from ._calibration import calibrate_average_size, calibrate_conformal, sets_from_threshold
from ._intervals import (
    best_intervals,
    calibrate_interval_level,
    conformal_interval_level,
    interval_sizes,
    intervals_at_level,
    intervals_to_mask,
)

__all__ = [
    "APS",
    "AverageK",
    "IntervalSets",
    "LAC",
    "NodeSets",
    "RAPS",
    "SplitConformal",
    "ThresholdSets",
    "best_intervals",
    "calibrate_average_size",
    "calibrate_conformal",
    "calibrate_interval_level",
    "conformal_interval_level",
    "interval_sizes",
    "intervals_at_level",
    "intervals_to_mask",
    "sets_from_threshold",
    "shape_for_structure",
]
