"""Display objects in scikit-learn's style: plot what skstruct predicts.

Each display is built with ``from_estimator`` (a fitted estimator or a
pipeline ending in one, and data) or ``from_predictions`` (labels, sets or
scores you already have), carries the numbers it draws as attributes, and
``plot(ax=...)`` returns the display with ``ax_`` and ``figure_`` set.
matplotlib is needed only to plot (``pip install matplotlib``).
"""

from ._hierarchy import HierarchicalDistanceDisplay
from ._mil import MILAttentionDisplay
from ._ordinal import OrdinalConfusionMatrixDisplay
from ._sets import SetSizeDisplay

__all__ = [
    "HierarchicalDistanceDisplay",
    "MILAttentionDisplay",
    "OrdinalConfusionMatrixDisplay",
    "SetSizeDisplay",
]
