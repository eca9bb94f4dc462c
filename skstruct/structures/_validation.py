"""Resolve the ``class_structure`` parameter of the estimators."""

import warnings
from collections.abc import Mapping

import numpy as np

from ..exceptions import SkstructWarning
from ._base import ClassStructure
from ._graph import ClassGraph
from ._hierarchy import Hierarchy
from ._ordinal import Ordinal

__all__ = ["check_structure"]


def _is_path(item):
    return not isinstance(item, (str, bytes)) and (
        isinstance(item, (list, tuple)) or (isinstance(item, np.ndarray) and item.ndim == 1)
    )


def check_structure(class_structure, y=None):
    """Resolve a ``class_structure`` parameter into a structure object.

    Parameters
    ----------
    class_structure : None, ClassStructure, dict, list, tuple, ndarray or str
        - ``None``: flat classes, returns ``None``;
        - a :class:`ClassStructure`: returned as is;
        - a dict (child -> parent): :class:`Hierarchy`;
        - a sequence of label paths (sequences, root first) or a 2-D array of
          string/object paths: :meth:`Hierarchy.from_paths`;
        - a ``(matrix, classes)`` tuple with a 2-D ``matrix``:
          :class:`ClassGraph`;
        - a flat list, tuple or 1-D array of labels (lowest first):
          :class:`Ordinal`;
        - the string ``"ordinal"``: ``Ordinal(np.unique(y))``.
    y : array-like of shape (n_samples,), default=None
        Target labels. When given, every label must be a class of the
        structure.

    Returns
    -------
    structure : ClassStructure or None
        The resolved structure, or ``None`` for flat classes.

    Raises
    ------
    TypeError
        If ``class_structure`` has none of the forms above.
    StructureError
        If the structure is malformed, or if ``y`` holds labels the structure
        does not know (the message names up to five of them).

    Examples
    --------
    >>> from skstruct.structures import check_structure
    >>> check_structure({"cat": "animal", "dog": "animal"})
    Hierarchy(n_nodes=3, n_leaves=2, height=1)
    >>> check_structure("ordinal", y=[3, 1, 2, 1])
    Ordinal([1, 2, 3], width=1)
    >>> check_structure(None) is None
    True
    """
    structure = _resolve(class_structure, y)
    if structure is not None and y is not None:
        y = np.asarray(y)
        if y.size:
            try:
                values = np.unique(y)
            except TypeError:
                values = y.ravel()
            structure.encode(values)
    return structure


def warn_alphabetical_order(values, class_structure):
    """Warn that sorted non-numeric labels were taken as an ordinal scale."""
    values = np.asarray(values)
    if values.dtype.kind in "biuf":
        return
    order = " < ".join(repr(v) for v in values.tolist()[:6])
    more = " < ..." if len(values) > 6 else ""
    warnings.warn(
        f"class_structure={class_structure!r} with non-numeric labels: the "
        f"ordinal scale is their sorted (alphabetical) order, {order}{more}, "
        "which may not be the order you mean. Pass the scale explicitly, "
        "class_structure=Ordinal([lowest, ..., highest]) (e.g. "
        "Ordinal(['poor', 'fair', 'good'])), to fix the order and silence "
        "this warning.",
        SkstructWarning,
        stacklevel=2,
    )


def _resolve(class_structure, y):
    if class_structure is None or isinstance(class_structure, ClassStructure):
        return class_structure
    if isinstance(class_structure, str):
        if class_structure == "ordinal":
            if y is None:
                raise ValueError(
                    "class_structure='ordinal' takes the sorted labels of y as "
                    "the order, but y was not given."
                )
            values = np.unique(np.asarray(y))
            warn_alphabetical_order(values, class_structure)
            return Ordinal(values)
        raise TypeError(
            f"class_structure={class_structure!r} is not understood; the only "
            "string accepted is 'ordinal'. Pass a Hierarchy, Ordinal or "
            "ClassGraph, a dict, label paths, a list of labels or a "
            "(matrix, classes) tuple."
        )
    if isinstance(class_structure, Mapping):
        return Hierarchy(class_structure)
    if (
        isinstance(class_structure, tuple)
        and len(class_structure) == 2
        and np.ndim(class_structure[0]) == 2
    ):
        matrix, classes = class_structure
        return ClassGraph(matrix, classes)
    if isinstance(class_structure, np.ndarray):
        if class_structure.ndim == 1:
            return Ordinal(class_structure)
        if class_structure.ndim == 2 and class_structure.dtype.kind in "OUS":
            return Hierarchy.from_paths(class_structure)
        raise TypeError(
            f"class_structure is a {class_structure.ndim}-D array of dtype "
            f"{class_structure.dtype}; a matrix needs its labels: pass "
            "(matrix, classes) or ClassGraph(matrix, classes)."
        )
    if isinstance(class_structure, (list, tuple)):
        items = list(class_structure)
        if items and all(_is_path(item) for item in items):
            return Hierarchy.from_paths(items)
        if any(_is_path(item) for item in items):
            raise TypeError(
                "class_structure mixes label paths and plain labels; pass either "
                "a list of paths (Hierarchy) or a flat list of labels (Ordinal)."
            )
        return Ordinal(items)
    raise TypeError(
        "class_structure must be None, a Hierarchy, Ordinal or ClassGraph, a "
        "dict (child -> parent), a list of label paths, a list of labels or a "
        f"(matrix, classes) tuple; got {type(class_structure).__name__}."
    )
