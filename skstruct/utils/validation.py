"""Input checks shared by the estimators, the losses and the metrics.

Each check exists once, here: a positive (or non-negative) scalar, a
sample-weight vector, class weights turned into per-sample weights, a
structure of a required kind, and the encoding of labels against the fitted
classes. The losses import only :func:`check_positive_scalar` (pure Python:
``skstruct.losses`` stays free of sklearn).
"""

import math
import numbers
import warnings

import numpy as np

__all__ = [
    "check_class_weight",
    "check_positive_scalar",
    "check_sample_weight",
    "check_structure_kind",
    "encode_labels",
]


def check_positive_scalar(value, name, *, allow_zero=False):
    """Return ``value`` as a float if it is finite and > 0 (>= 0), else raise.

    Parameters
    ----------
    value : object
        The value to check.
    name : str
        Its name, used in the error message.
    allow_zero : bool, default=False
        Accept 0 as well.

    Returns
    -------
    value : float

    Raises
    ------
    TypeError
        If ``value`` is not a real number (booleans are refused).
    ValueError
        If it is not finite or out of range.

    Examples
    --------
    >>> from skstruct.utils.validation import check_positive_scalar
    >>> check_positive_scalar(2, "alpha")
    2.0
    """
    bound = ">= 0" if allow_zero else "> 0"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number {bound}, got {value!r}.")
    value = float(value)
    if not (math.isfinite(value) and (value >= 0 if allow_zero else value > 0)):
        raise ValueError(
            f"{name} must be a finite number {bound}, got {name}={value!r}; "
            f"pass for example {name}=1.0."
        )
    return value


def check_sample_weight(sample_weight, n_samples, *, name="sample_weight"):
    """Validate per-sample weights: one finite, non-negative value per sample.

    Parameters
    ----------
    sample_weight : array-like of shape (n_samples,) or None
        The weights; ``None`` means unit weights.
    n_samples : int
        Number of samples the weights must match.
    name : str, default="sample_weight"
        Name used in the error messages.

    Returns
    -------
    sample_weight : ndarray of shape (n_samples,), dtype=float64, or None
        A new array (the input is never modified), or ``None`` for ``None``.

    Raises
    ------
    ValueError
        If the length differs from ``n_samples``, a weight is negative, NaN
        or infinite, or all weights are zero.

    Examples
    --------
    >>> from skstruct.utils.validation import check_sample_weight
    >>> check_sample_weight([1, 2, 0], 3)
    array([1., 2., 0.])
    """
    if sample_weight is None:
        return None
    if isinstance(sample_weight, numbers.Number) and not isinstance(sample_weight, bool):
        sample_weight = np.full(n_samples, sample_weight, dtype=np.float64)
    try:
        w = np.array(sample_weight, dtype=np.float64)  # a copy, never a view
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"{name} must be an array of numbers, one per sample: {exc}"
        ) from exc
    if w.ndim != 1 or w.shape[0] != n_samples:
        raise ValueError(
            f"{name} must have shape ({n_samples},), one weight per sample, "
            f"got shape {w.shape}."
        )
    if not np.all(np.isfinite(w)):
        raise ValueError(
            f"{name} contains NaN or infinity; every weight must be a finite "
            "number >= 0."
        )
    if np.any(w < 0):
        bad = np.flatnonzero(w < 0)[:5].tolist()
        raise ValueError(
            f"{name} contains negative weights (at positions {bad}); weights "
            "must be >= 0 (0 drops a sample)."
        )
    if n_samples and not np.any(w > 0):
        raise ValueError(
            f"{name} is zero for every sample; at least one sample needs a "
            "positive weight."
        )
    return w


def check_class_weight(class_weight, y, classes):
    """Per-sample weights from ``class_weight``, as sklearn's classifiers do.

    Parameters
    ----------
    class_weight : None, 'balanced' or dict
        ``None``: unit weights. ``'balanced'``: ``n_samples / (n_classes *
        count(c))`` over the classes present in ``y``. A dict maps labels of
        ``classes`` to weights; labels it omits weigh 1.
    y : ndarray of shape (n_samples,)
        The labels (not encoded).
    classes : ndarray of shape (n_classes,)
        Every label the estimator knows (``classes_``).

    Returns
    -------
    weight : ndarray of shape (n_samples,) or None
        ``None`` when ``class_weight`` is ``None``.

    Examples
    --------
    >>> import numpy as np
    >>> from skstruct.utils.validation import check_class_weight
    >>> check_class_weight("balanced", np.array([0, 0, 0, 1]), np.array([0, 1]))
    array([0.66666667, 0.66666667, 0.66666667, 2.        ])
    """
    from sklearn.utils.class_weight import compute_sample_weight

    if class_weight is None:
        return None
    if isinstance(class_weight, dict):
        known = set(np.asarray(classes).tolist())
        unknown = [k for k in class_weight if k not in known][:5]
        if unknown:
            raise ValueError(
                f"class_weight has keys that are not classes: {unknown}; the "
                f"classes are {np.asarray(classes).tolist()[:10]}."
            )
        for label, value in class_weight.items():
            check_positive_scalar(value, f"class_weight[{label!r}]", allow_zero=True)
        present = set(np.unique(y).tolist())
        # compute_sample_weight wants only the labels that occur in y.
        class_weight = {k: float(v) for k, v in class_weight.items() if k in present}
    return compute_sample_weight(class_weight, y)


def check_structure_kind(structure, kinds, estimator_name, *, hint=""):
    """Return ``structure`` if its ``kind`` is one of ``kinds``, else raise.

    Parameters
    ----------
    structure : ClassStructure or None
        A resolved structure.
    kinds : tuple of str
        The accepted kinds (``'hierarchy'``, ``'ordinal'``, ``'graph'``).
    estimator_name : str
        Named in the message.
    hint : str, default=""
        Appended to the message (how to fix it).

    Returns
    -------
    structure : ClassStructure

    Raises
    ------
    StructureError
        If ``structure`` is ``None`` or of another kind.
    """
    from ..exceptions import StructureError

    if structure is None or structure.kind not in kinds:
        got = "None" if structure is None else f"a {structure.kind} structure ({structure!r})"
        raise StructureError(
            f"{estimator_name} needs class_structure to be a {' or '.join(kinds)} "
            f"structure, got {got}.{' ' + hint if hint else ''}"
        )
    return structure


def encode_labels(y, classes, *, name="y", structure=None):
    """Indices of the labels ``y`` into ``classes``; unknown labels raise.

    The one label-encoding path of the estimators: with a ``structure`` its
    ``encode`` is used (its classes are ``classes``), otherwise a search in
    the sorted ``classes``.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Labels.
    classes : ndarray of shape (n_classes,)
        Sorted known labels (``classes_``).
    name : str, default="y"
        Named in the error message.
    structure : ClassStructure or None, default=None
        The fitted structure, if any.

    Returns
    -------
    y_enc : ndarray of shape (n_samples,), dtype=intp

    Examples
    --------
    >>> import numpy as np
    >>> from skstruct.utils.validation import encode_labels
    >>> encode_labels(["b", "a"], np.array(["a", "b"]))
    array([1, 0])
    """
    y = np.asarray(y)
    if structure is not None:
        return structure.encode(y)
    try:
        idx = np.searchsorted(classes, y)
        idx = np.clip(idx, 0, len(classes) - 1)
        with warnings.catch_warnings():  # numpy < 1.25 warns for str vs int
            warnings.simplefilter("ignore", (FutureWarning, DeprecationWarning))
            unknown = np.asarray(classes[idx] != y)
        if unknown.shape != y.shape:  # numpy < 1.25: one scalar for str vs int
            raise TypeError
    except TypeError:  # labels not comparable with classes (str vs int)
        idx = np.zeros(len(y), dtype=np.intp)
        unknown = np.ones(len(y), dtype=bool)
    if np.any(unknown):
        bad = list(dict.fromkeys(y[unknown].tolist()))[:5]
        raise ValueError(
            f"{name} contains labels unknown to the fitted model: {bad}; "
            f"the model knows {len(classes)} classes."
        )
    return idx
