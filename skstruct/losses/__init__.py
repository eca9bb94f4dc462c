"""skstruct.losses."""

from ._average_k import AverageKLoss, average_k_loss
from ._conveyance import ConveyanceLoss, conveyance_loss
from ._emd import EMD2GroundLoss, EMD2Loss, emd2_ground_loss, emd2_loss
from ._hace import HACELoss, hace_loss
from ._mil import MILConveyanceLoss
from ._reduction import SampleWeightedLoss

__all__ = [
    "SampleWeightedLoss",
    "AverageKLoss",
    "ConveyanceLoss",
    "EMD2GroundLoss",
    "EMD2Loss",
    "HACELoss",
    "MILConveyanceLoss",
    "average_k_loss",
    "conveyance_loss",
    "emd2_ground_loss",
    "emd2_loss",
    "hace_loss",
]
