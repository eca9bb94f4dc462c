"""Set-valued prediction: threshold calibration, conformal sets and ordinal intervals."""

from ._conformal import APS, LAC, RAPS, SplitConformal
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
    "LAC",
    "RAPS",
    "SplitConformal",
    "best_intervals",
    "calibrate_average_size",
    "calibrate_conformal",
    "calibrate_interval_level",
    "conformal_interval_level",
    "interval_sizes",
    "intervals_at_level",
    "intervals_to_mask",
    "sets_from_threshold",
]
