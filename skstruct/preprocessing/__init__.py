"""Preprocessing for bags of instances."""

from ._bags import BagTransformer

__all__ = ["BagTransformer"]
