"""Torch networks used by the skstruct estimators. Every module returns logits."""

from ._mil import (
    GatedAttentionMIL, GatedAttentionMILEnsemble, PrototypeMIL,
    PrototypeStackMIL, PrototypeSVMMIL, glorot_init_,
)
from ._mlp import MLP, ClassifierNetwork

__all__ = [
    "ClassifierNetwork",
    "GatedAttentionMIL",
    "GatedAttentionMILEnsemble",
    "MLP",
    "PrototypeMIL",
    "PrototypeStackMIL",
    "PrototypeSVMMIL",
    "glorot_init_",
]
