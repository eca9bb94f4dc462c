"""Hierarchical classification metrics and their registered scorers.

Every metric takes labels (never column indices) and the hierarchy explicitly
(``hierarchy=``), and returns a Python float. The scorers registered at the
bottom read ``structure_`` from the fitted estimator (also at the end of a
:class:`~sklearn.pipeline.Pipeline`) through
:func:`~skstruct.metrics.make_structure_scorer`.

Shared steps: :func:`_check_hierarchy` resolves the structure,
:func:`_encode` turns labels into indices into ``hierarchy.classes``, and
:func:`_path_table` lists, for every leaf, the node at each depth of its path
(as integer node ids) so that the augmented-set, LCA and level metrics are all
vectorised gathers over ``(n_samples, height + 1)`` arrays.
"""

import numbers

import numpy as np

from ..exceptions import StructureError
from ..structures import check_structure
from ..utils._sklearn_compat import Interval, StrOptions, validate_params
from ..utils.validation import check_sample_weight
from ._scorer import _register, make_structure_scorer

__all__ = [
    "average_hierarchical_distance_top_k",
    "hierarchical_f1_score",
    "hierarchical_precision_score",
    "hierarchical_recall_score",
    "level_accuracy_score",
    "mistake_severity",
    "per_level_accuracy",
]

_HIERARCHY_FORMS = "no_validation"  # resolved by _check_hierarchy


# --------------------------------------------------------------- validation


def _check_hierarchy(hierarchy):
    """Resolve ``hierarchy`` (a Hierarchy or a plain form) or raise TypeError."""
    try:
        structure = check_structure(hierarchy)
    except TypeError:
        structure = None
    if structure is None or structure.kind != "hierarchy":
        got = (
            type(hierarchy).__name__
            if structure is None
            else f"a {structure.kind} structure ({structure!r})"
        )
        raise TypeError(
            "hierarchy must be a skstruct.structures.Hierarchy, a child -> parent "
            f"dict or a list of label paths; got {got}. Build one with "
            "Hierarchy(parents), Hierarchy.from_edges or Hierarchy.from_paths."
        )
    return structure


def _encode(hierarchy, labels, name):
    """Indices of ``labels`` into ``hierarchy.classes``, naming the argument on error."""
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(
            f"{name} must be a 1-D array of leaf labels, got shape {labels.shape}."
        )
    try:
        return hierarchy.encode(labels)
    except StructureError as exc:
        raise StructureError(
            f"{name} holds labels that are not leaves of the hierarchy. {exc}"
        ) from None


def _check_pair(y_true, y_pred, hierarchy, sample_weight):
    t = _encode(hierarchy, y_true, "y_true")
    p = _encode(hierarchy, y_pred, "y_pred")
    if len(t) != len(p):
        raise ValueError(
            f"y_true and y_pred have different lengths ({len(t)} and {len(p)}); "
            "pass one prediction per sample."
        )
    return t, p, _check_weight(sample_weight, len(t))


def _check_weight(sample_weight, n):
    if n == 0:
        raise ValueError("y_true is empty; the metric needs at least one sample.")
    w = check_sample_weight(sample_weight, n)
    return np.ones(n) if w is None else w


def _mean(values, weight):
    return float(np.dot(values, weight) / weight.sum())


# ----------------------------------------------------------- path tables


def _path_table(hierarchy):
    """(n_classes, height + 1) int node ids of each leaf's path, -1 below the leaf.

    Column ``k`` holds the ancestor at depth ``k`` (roots at depth 0). Two
    leaves share the ancestor at depth ``k`` exactly when their column-``k``
    ids are equal and not -1; paths agree on a prefix.
    """
    classes = hierarchy.classes
    node_id = {node: i for i, node in enumerate(hierarchy.dfs_nodes.tolist())}
    depth = np.array([hierarchy.depth(c) for c in classes.tolist()], dtype=np.int64)
    table = np.full((len(classes), hierarchy.height + 1), -1, dtype=np.int64)
    for k in range(hierarchy.height + 1):
        nodes = hierarchy.ancestor_at_depth(classes, k).tolist()
        ids = np.array([node_id[x] for x in nodes], dtype=np.int64)
        table[:, k] = np.where(depth >= k, ids, -1)
    return table


def _root_excluded(hierarchy):
    """Whether the augmented sets drop the root: only for a single-rooted tree."""
    return len(hierarchy.roots) == 1 and hierarchy.n_nodes > 1


def _augmented_counts(hierarchy, t, p):
    """Per-sample ``|A(t) & A(p)|``, ``|A(t)|`` and ``|A(p)|``."""
    table = _path_table(hierarchy)
    a, b = table[t], table[p]
    common = ((a == b) & (a >= 0)).sum(axis=1)
    size_t = (a >= 0).sum(axis=1)
    size_p = (b >= 0).sum(axis=1)
    if _root_excluded(hierarchy):
        common, size_t, size_p = common - 1, size_t - 1, size_p - 1
    return common, size_t, size_p


def _hierarchical_prf(y_true, y_pred, hierarchy, sample_weight):
    hierarchy = _check_hierarchy(hierarchy)
    t, p, w = _check_pair(y_true, y_pred, hierarchy, sample_weight)
    common, size_t, size_p = _augmented_counts(hierarchy, t, p)
    common_sum = float(np.dot(common, w))
    precision = common_sum / float(np.dot(size_p, w))
    recall = common_sum / float(np.dot(size_t, w))
    f1 = 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
    return precision, recall, f1


# ------------------------------------------------------------ public metrics

_PRF_CONSTRAINTS = {
    "y_true": ["array-like"],
    "y_pred": ["array-like"],
    "hierarchy": _HIERARCHY_FORMS,
    "average": [StrOptions({"micro"})],
    "sample_weight": ["array-like", None],
}

_PRF_NOTES = """
    Notes
    -----
    Each label is augmented with its ancestors, ``A(y) = {y} | ancestors(y)``
    (Kiritchenko et al., 2005). The root of a single-rooted tree is left out,
    since every label shares it; the roots of a forest are real labels and
    stay in. Micro-averaging sums over samples:
    ``hP = sum |A(t) & A(p)| / sum |A(p)|``,
    ``hR = sum |A(t) & A(p)| / sum |A(t)|`` and ``hF = 2 hP hR / (hP + hR)``.
    On a flat hierarchy (every leaf a root, or all leaves under one root) the
    three scores equal the accuracy.
"""


@validate_params(_PRF_CONSTRAINTS, prefer_skip_nested_validation=True)
def hierarchical_precision_score(
    y_true, y_pred, *, hierarchy, average="micro", sample_weight=None
):
    """Hierarchical precision: the share of predicted ancestors that are right.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True leaf labels.
    y_pred : array-like of shape (n_samples,)
        Predicted leaf labels.
    hierarchy : Hierarchy, dict or list of label paths
        The class hierarchy (plain forms as for ``class_structure``).
    average : {'micro'}, default='micro'
        Only micro-averaging over samples is offered.
    sample_weight : array-like of shape (n_samples,), default=None
        Sample weights.

    Returns
    -------
    score : float
        Between 0 and 1, higher is better.

    See Also
    --------
    hierarchical_recall_score : Share of the true labels and ancestors that are predicted.
    hierarchical_f1_score : Harmonic mean of hierarchical precision and recall.
    {notes}
    Examples
    --------
    >>> from skstruct.metrics import hierarchical_precision_score
    >>> tree = {"cat": "animal", "dog": "animal", "car": "vehicle"}
    >>> hierarchical_precision_score(["cat", "car"], ["dog", "car"], hierarchy=tree)
    0.75
    """
    return _hierarchical_prf(y_true, y_pred, hierarchy, sample_weight)[0]


@validate_params(_PRF_CONSTRAINTS, prefer_skip_nested_validation=True)
def hierarchical_recall_score(
    y_true, y_pred, *, hierarchy, average="micro", sample_weight=None
):
    """Hierarchical recall: the share of true ancestors that are predicted.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True leaf labels.
    y_pred : array-like of shape (n_samples,)
        Predicted leaf labels.
    hierarchy : Hierarchy, dict or list of label paths
        The class hierarchy (plain forms as for ``class_structure``).
    average : {'micro'}, default='micro'
        Only micro-averaging over samples is offered.
    sample_weight : array-like of shape (n_samples,), default=None
        Sample weights.

    Returns
    -------
    score : float
        Between 0 and 1, higher is better.

    See Also
    --------
    hierarchical_precision_score : Share of the predicted labels and ancestors that are right.
    hierarchical_f1_score : Harmonic mean of hierarchical precision and recall.
    {notes}
    Examples
    --------
    >>> from skstruct.metrics import hierarchical_recall_score
    >>> paths = [["animal", "cat"], ["animal", "dog"], ["vehicle", "car"]]
    >>> hierarchical_recall_score(["cat", "car"], ["dog", "car"], hierarchy=paths)
    0.75
    """
    return _hierarchical_prf(y_true, y_pred, hierarchy, sample_weight)[1]


@validate_params(_PRF_CONSTRAINTS, prefer_skip_nested_validation=True)
def hierarchical_f1_score(
    y_true, y_pred, *, hierarchy, average="micro", sample_weight=None
):
    """Hierarchical F1: the harmonic mean of hierarchical precision and recall.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True leaf labels.
    y_pred : array-like of shape (n_samples,)
        Predicted leaf labels.
    hierarchy : Hierarchy, dict or list of label paths
        The class hierarchy (plain forms as for ``class_structure``).
    average : {'micro'}, default='micro'
        Only micro-averaging over samples is offered.
    sample_weight : array-like of shape (n_samples,), default=None
        Sample weights.

    Returns
    -------
    score : float
        Between 0 and 1, higher is better.

    See Also
    --------
    hierarchical_precision_score : Share of the predicted labels and ancestors that are right.
    hierarchical_recall_score : Share of the true labels and ancestors that are predicted.
    {notes}
    References
    ----------
    .. [1] Kiritchenko, Matwin and Famili, "Functional annotation of genes
       using hierarchical text categorization", BioLINK SIG (2005).

    Examples
    --------
    >>> from skstruct.metrics import hierarchical_f1_score
    >>> tree = {"cat": "animal", "dog": "animal", "car": "vehicle"}
    >>> hierarchical_f1_score(["cat", "car"], ["dog", "car"], hierarchy=tree)
    0.75
    """
    return _hierarchical_prf(y_true, y_pred, hierarchy, sample_weight)[2]


for _f in (hierarchical_precision_score, hierarchical_recall_score, hierarchical_f1_score):
    _f.__doc__ = _f.__doc__.replace("    {notes}\n", _PRF_NOTES + "\n")


@validate_params(
    {
        "y_true": ["array-like"],
        "y_pred": ["array-like"],
        "hierarchy": _HIERARCHY_FORMS,
        "metric": [StrOptions({"lca", "hops"})],
        "sample_weight": ["array-like", None],
    },
    prefer_skip_nested_validation=True,
)
def mistake_severity(y_true, y_pred, *, hierarchy, metric="lca", sample_weight=None):
    """Mean tree distance between true and predicted leaves, over the mistakes.

    With ``metric='lca'`` this is the *mistake severity* of Bertinetto et al.
    (2020): the mean height of the lowest common ancestor of the true and the
    predicted leaf, counted only on misclassified samples.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True leaf labels.
    y_pred : array-like of shape (n_samples,)
        Predicted leaf labels.
    hierarchy : Hierarchy, dict or list of label paths
        The class hierarchy.
    metric : {'lca', 'hops'}, default='lca'
        Tree distance, see :meth:`Hierarchy.distance_matrix
        <skstruct.structures.Hierarchy.distance_matrix>` (``'lca'``: height
        of the lowest common ancestor; leaves of different trees of a forest
        are ``height + 1`` apart).
    sample_weight : array-like of shape (n_samples,), default=None
        Sample weights.

    Returns
    -------
    severity : float
        Lower is better; ``0.0`` when there is no mistake.

    See Also
    --------
    average_hierarchical_distance_top_k : The distance averaged over all
        samples and the top-k predictions.

    References
    ----------
    .. [1] Bertinetto, Mueller, Tertikas, Samangooei and Lord, "Making Better
       Mistakes: Leveraging Class Hierarchies with Deep Networks", CVPR 2020.

    Examples
    --------
    >>> from skstruct.metrics import mistake_severity
    >>> tree = {"cat": "animal", "dog": "animal", "car": "vehicle"}
    >>> mistake_severity(["cat", "cat", "car"], ["dog", "car", "car"], hierarchy=tree)
    1.5
    """
    hierarchy = _check_hierarchy(hierarchy)
    t, p, w = _check_pair(y_true, y_pred, hierarchy, sample_weight)
    wrong = t != p
    if not np.any(wrong & (w > 0)):
        return 0.0
    distance = np.asarray(hierarchy.distance_matrix(metric=metric))
    return _mean(distance[t[wrong], p[wrong]], w[wrong])


@validate_params(
    {
        "y_true": ["array-like"],
        "y_score": ["array-like"],
        "hierarchy": _HIERARCHY_FORMS,
        "k": [Interval(numbers.Integral, 1, None, closed="left")],
        "metric": [StrOptions({"lca", "hops"})],
        "sample_weight": ["array-like", None],
    },
    prefer_skip_nested_validation=True,
)
def average_hierarchical_distance_top_k(
    y_true, y_score, *, hierarchy, k=5, metric="lca", sample_weight=None
):
    """Mean tree distance between the true leaf and each of the k top-scored leaves.

    For every sample, the ``k`` classes with the highest scores are taken
    (ties broken by column order) and their distances to the true leaf are
    averaged; the result is averaged over samples (Bertinetto et al., 2020).
    With ``k=1`` it is the mean distance of the top prediction, correct
    predictions counting 0.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True leaf labels.
    y_score : array-like of shape (n_samples, n_classes)
        Scores or probabilities, columns in ``hierarchy.classes`` order (the
        ``classes_`` order of a fitted skstruct estimator, e.g. the output of
        ``predict_proba``).
    hierarchy : Hierarchy, dict or list of label paths
        The class hierarchy.
    k : int, default=5
        Number of top-scored classes; at most ``n_classes``.
    metric : {'lca', 'hops'}, default='lca'
        Tree distance, as in :func:`mistake_severity`.
    sample_weight : array-like of shape (n_samples,), default=None
        Sample weights.

    Returns
    -------
    distance : float
        Lower is better.

    See Also
    --------
    mistake_severity : The distance over the mistakes of the top prediction.

    Examples
    --------
    >>> from skstruct.metrics import average_hierarchical_distance_top_k
    >>> tree = {"cat": "animal", "dog": "animal", "car": "vehicle"}
    >>> proba = [[0.1, 0.7, 0.2]]  # columns: car, cat, dog
    >>> average_hierarchical_distance_top_k(["cat"], proba, hierarchy=tree, k=2)
    0.5
    """
    hierarchy = _check_hierarchy(hierarchy)
    t = _encode(hierarchy, y_true, "y_true")
    score = np.asarray(y_score, dtype=np.float64)
    n_classes = hierarchy.n_classes
    if score.ndim != 2 or score.shape != (len(t), n_classes):
        raise ValueError(
            f"y_score must have shape (n_samples, n_classes) = ({len(t)}, "
            f"{n_classes}), columns in hierarchy.classes order; got shape "
            f"{score.shape}."
        )
    if k > n_classes:
        raise ValueError(
            f"k={k} exceeds the number of classes ({n_classes}); choose "
            f"1 <= k <= {n_classes}."
        )
    w = _check_weight(sample_weight, len(t))
    top = np.argsort(-score, axis=1, kind="stable")[:, :k]
    distance = np.asarray(hierarchy.distance_matrix(metric=metric))
    per_sample = distance[t[:, None], top].mean(axis=1)
    return _mean(per_sample, w)


@validate_params(
    {
        "y_true": ["array-like"],
        "y_pred": ["array-like"],
        "hierarchy": _HIERARCHY_FORMS,
        "depth": [Interval(numbers.Integral, 0, None, closed="left")],
        "sample_weight": ["array-like", None],
    },
    prefer_skip_nested_validation=True,
)
def level_accuracy_score(y_true, y_pred, *, hierarchy, depth, sample_weight=None):
    """Accuracy after mapping true and predicted leaves to their ancestors at ``depth``.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True leaf labels.
    y_pred : array-like of shape (n_samples,)
        Predicted leaf labels.
    hierarchy : Hierarchy, dict or list of label paths
        The class hierarchy.
    depth : int
        Level, roots at depth 0 (see :meth:`Hierarchy.ancestor_at_depth
        <skstruct.structures.Hierarchy.ancestor_at_depth>`). A leaf shallower
        than ``depth`` stands for itself, so ``depth >= hierarchy.height``
        gives the plain leaf accuracy.
    sample_weight : array-like of shape (n_samples,), default=None
        Sample weights.

    Returns
    -------
    accuracy : float
        Between 0 and 1.

    See Also
    --------
    per_level_accuracy : The accuracy at every depth.

    Examples
    --------
    >>> from skstruct.metrics import level_accuracy_score
    >>> tree = {"cat": "animal", "dog": "animal", "car": "vehicle"}
    >>> level_accuracy_score(["cat", "car"], ["dog", "cat"], hierarchy=tree, depth=0)
    0.5
    """
    hierarchy = _check_hierarchy(hierarchy)
    t, p, w = _check_pair(y_true, y_pred, hierarchy, sample_weight)
    return _level_accuracies(hierarchy, t, p, w, [depth])[0]


@validate_params(
    {
        "y_true": ["array-like"],
        "y_pred": ["array-like"],
        "hierarchy": _HIERARCHY_FORMS,
        "sample_weight": ["array-like", None],
    },
    prefer_skip_nested_validation=True,
)
def per_level_accuracy(y_true, y_pred, *, hierarchy, sample_weight=None):
    """Accuracy at every level of the hierarchy, from the roots to the leaves.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True leaf labels.
    y_pred : array-like of shape (n_samples,)
        Predicted leaf labels.
    hierarchy : Hierarchy, dict or list of label paths
        The class hierarchy.
    sample_weight : array-like of shape (n_samples,), default=None
        Sample weights.

    Returns
    -------
    accuracies : dict of int to float
        ``{depth: level_accuracy_score(..., depth=depth)}`` for depths 0 to
        ``hierarchy.height``; the last one is the leaf accuracy.

    See Also
    --------
    level_accuracy_score : The accuracy at one depth.

    Examples
    --------
    >>> from skstruct.metrics import per_level_accuracy
    >>> tree = {"cat": "animal", "dog": "animal", "car": "vehicle"}
    >>> per_level_accuracy(["cat", "car"], ["dog", "car"], hierarchy=tree)
    {0: 1.0, 1: 0.5}
    """
    hierarchy = _check_hierarchy(hierarchy)
    t, p, w = _check_pair(y_true, y_pred, hierarchy, sample_weight)
    depths = list(range(hierarchy.height + 1))
    return dict(zip(depths, _level_accuracies(hierarchy, t, p, w, depths)))


def _level_accuracies(hierarchy, t, p, w, depths):
    table = _path_table(hierarchy)
    # Below its own depth a leaf stands for itself: fill -1 cells with a
    # per-leaf id that no internal node uses.
    leaf_ids = table.max() + 1 + np.arange(len(table))
    table = np.where(table >= 0, table, leaf_ids[:, None])
    out = []
    for depth in depths:
        col = min(int(depth), table.shape[1] - 1)
        out.append(_mean((table[t, col] == table[p, col]).astype(np.float64), w))
    return out


# ------------------------------------------------------------------ scorers


def _structure_scorer(func, *, greater_is_better=True, response_method="predict", **kwargs):
    return make_structure_scorer(
        func,
        greater_is_better=greater_is_better,
        response_method=response_method,
        structure_kwarg="hierarchy",
        **kwargs,
    )


_register("hierarchical_precision", _structure_scorer(hierarchical_precision_score))
_register("hierarchical_recall", _structure_scorer(hierarchical_recall_score))
_register("hierarchical_f1", _structure_scorer(hierarchical_f1_score))
_register("neg_mistake_severity", _structure_scorer(mistake_severity, greater_is_better=False))
for _k in (1, 5):
    _register(
        f"neg_average_hierarchical_distance_top_{_k}",
        _structure_scorer(
            average_hierarchical_distance_top_k,
            greater_is_better=False,
            response_method="predict_proba",
            k=_k,
        ),
    )
for _depth in range(4):
    _register(
        f"level_accuracy_{_depth}",
        _structure_scorer(level_accuracy_score, depth=_depth),
    )
