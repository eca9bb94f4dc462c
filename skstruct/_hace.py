"""HACEClassifier: a neural classifier trained with hierarchy-aware cross-entropy."""

import numbers

import numpy as np
import torch
from sklearn.utils.multiclass import check_classification_targets
from skorch.callbacks import Callback

from ._base import _BaseStructuredClassifier
from .exceptions import StructureError
from .losses import HACELoss
from .structures import check_structure
from .utils._docstring import fill_doc
from .utils._sklearn_compat import Interval, StrOptions
from .utils.validation import check_structure_kind

__all__ = ["HACEClassifier"]


class _ScaleLR(Callback):
    """Multiply the learning rate of every parameter group when training starts.

    skorch builds the optimizer with ``lr`` before ``on_train_begin``; this
    callback rescales it once, so the history, ``net_.lr`` and the
    estimator's ``lr`` keep the value the user gave.

    Parameters
    ----------
    factor : float
        The multiplier (``1 / d`` for HACE's scaling).
    """

    def __init__(self, factor):
        self.factor = factor

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        for group in net.optimizer_.param_groups:
            group["lr"] = net.lr * self.factor


@fill_doc
class HACEClassifier(_BaseStructuredClassifier):
    """Neural classifier trained with hierarchy-aware cross-entropy (HACE).

    The classes are the leaves of a tree (or forest). HACE (Chan, D'Ascenzo
    and Cultrera di Montesano, 2026) compares the probability mass of every
    subtree on the path of the true leaf with a target that decays
    geometrically up the path: the true leaf gets ``d``, its parent
    ``d * (1 - d)``, ..., the root the rest. A mistake inside the right
    subtree thus costs less than one in a distant branch. See
    :func:`~skstruct.losses.hace_loss` for the formula.

    ``y`` holds leaf labels; ``classes_`` are the leaves of the hierarchy
    (sorted), also those absent from ``y``. The hierarchy is used in
    training; prediction is ``decision_rule`` on the leaf probabilities
    (``'min_expected_cost'`` minimises the expected height of the lowest
    common ancestor, i.e. the expected mistake severity).

    Parameters
    ----------
    class_structure : Hierarchy, dict or list of label paths
        The class hierarchy (required): a
        :class:`~skstruct.structures.Hierarchy`, a child -> parent ``dict``
        or a list of label paths, root first (hiclass style). Its leaves are
        the classes; every label of ``y`` must be a leaf.
    d : float, default=0.7
        Dilution in ``(0, 1]``: share of the target mass kept by each node
        of the path, the rest moving up. ``d=1`` with ``eps=0`` is plain
        cross-entropy on the leaves. The reference code uses 0.7 (also 0.2
        and 0.5).
    eps : float, default=0.0
        Leaf label smoothing in ``[0, 1)``: ``eps / (n_classes - 1)`` goes to
        every other leaf before the mass is propagated up the tree (the
        reference code uses 0.1 for linear probes, 0 end to end).
    node_logits : bool, default=False
        ``False``: one logit per leaf, softmax over the leaves (the natural
        library default). ``True``: the reference code's variant with one
        logit per node of the hierarchy (internal nodes included), a softmax
        over all nodes and subtree masses that include the internal nodes'
        own mass. Prediction then uses the leaves' own logits: the
        probability of a leaf is its own mass renormalised over the leaves
        (the softmax of the leaf logits), so ``predict`` returns leaves only
        and never an internal node.
    lr_scale : {'none', 'inverse_d'}, default='none'
        ``'inverse_d'`` trains with learning rate ``lr / d``, as the
        reference code does to make up for the target mass that ``d < 1``
        moves to coarser nodes. Applied by a skorch callback when training
        starts; ``lr`` keeps the value given.
    {module}
    {hidden_layer_sizes}
    {activation}
    {dropout}
    {max_epochs}
    {batch_size}
    {lr}
    {optimizer}
    {weight_decay}
    {early_stopping}
    {validation_fraction}
    {n_iter_no_change}
    {class_weight}
    {optimizer_kwargs}
    {lr_schedule}
    {callbacks}
    {warm_start}
    {decision_rule}
    {decision_power}
    {set_rule}
    {set_size}
    {confidence_level}
    {calibration_cv}
    {device}
    {precision}
    {n_threads}
    {accelerator}
    {random_state}
    {verbose}

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The leaves of the hierarchy, sorted.
    structure_ : Hierarchy
        The resolved hierarchy.
    n_features_in_ : int
        Number of features seen during ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during ``fit``, when X has string column names.
    net_ : skorch.NeuralNet
        The trained skorch network. With ``node_logits=True`` its module has
        one output per node, in ``structure_.dfs_nodes`` order.
    n_iter_ : int
        Number of epochs run.
    loss_curve_ : list of float
        Mean training loss per epoch.
    set_threshold_ : float
        Score threshold of ``predict_set``.

    See Also
    --------
    skstruct.losses.hace_loss : The loss function.
    skstruct.structures.Hierarchy : The class hierarchy.
    ConveyanceClassifier : Structure-aware training with sibling plausibility.
    skstruct.metrics.mistake_severity : Mean LCA height over the mistakes.

    Notes
    -----
    ``predict_level_proba(X, depth)`` sums ``predict_proba`` over the leaves
    under each node at ``depth``; map predicted leaves to a level with
    ``structure_.ancestor_at_depth(clf.predict(X), depth)``.

    References
    ----------
    .. [1] Chan, D'Ascenzo and Cultrera di Montesano, "When Labels Have
       Structure: Improving Image Classification with Hierarchy-Aware
       Cross-Entropy", arXiv:2605.06274 (2026).

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from skstruct import HACEClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> tree = {0: "setosa-like", 1: "other", 2: "other"}
    >>> clf = HACEClassifier(tree, max_epochs=2, random_state=0).fit(X, y)
    >>> clf.predict_proba(X[:1]).shape
    (1, 3)
    >>> clf.predict_level_proba(X[:1], depth=0).shape
    (1, 2)
    """

    _parameter_constraints = {
        **_BaseStructuredClassifier._parameter_constraints,
        "d": [Interval(numbers.Real, 0, 1, closed="right")],
        "eps": [Interval(numbers.Real, 0, 1, closed="left")],
        "node_logits": ["boolean"],
        "lr_scale": [StrOptions({"none", "inverse_d"})],
    }

    def __init__(
        self,
        class_structure,
        *,
        d=0.7,
        eps=0.0,
        node_logits=False,
        lr_scale="none",
        module=None,
        hidden_layer_sizes=(100,),
        activation="relu",
        dropout=0.0,
        max_epochs=50,
        batch_size=64,
        lr=1e-3,
        optimizer="adam",
        weight_decay=0.0,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
        class_weight=None,
        optimizer_kwargs=None,
        lr_schedule=None,
        callbacks=None,
        warm_start=False,
        decision_rule="argmax",
        decision_power=1.0,
        set_rule="average_k",
        set_size=1.0,
        confidence_level=0.9,
        calibration_cv=None,
        device="cpu",
        precision="fp32",
        n_threads=None,
        accelerator=None,
        random_state=None,
        verbose=0,
    ):
        self.class_structure = class_structure
        self.d = d
        self.eps = eps
        self.node_logits = node_logits
        self.lr_scale = lr_scale
        self.module = module
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.dropout = dropout
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.optimizer = optimizer
        self.weight_decay = weight_decay
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.class_weight = class_weight
        self.optimizer_kwargs = optimizer_kwargs
        self.lr_schedule = lr_schedule
        self.callbacks = callbacks
        self.warm_start = warm_start
        self.decision_rule = decision_rule
        self.decision_power = decision_power
        self.set_rule = set_rule
        self.set_size = set_size
        self.confidence_level = confidence_level
        self.calibration_cv = calibration_cv
        self.device = device
        self.precision = precision
        self.n_threads = n_threads
        self.accelerator = accelerator
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ hooks

    def _check_structure(self, y):
        hint = (
            "Pass a Hierarchy, a child -> parent dict or a list of label paths "
            "such as [['animal', 'cat'], ['animal', 'dog']]"
        )
        structure = None if self.class_structure is None else check_structure(self.class_structure)
        if structure is not None and structure.kind == "ordinal":
            hint = "A flat list of labels is read as an ordinal scale. " + hint
        check_structure_kind(
            structure, ("hierarchy",), "HACEClassifier", hint=hint + "; its leaves are the classes."
        )
        check_classification_targets(y)
        _check_leaf_labels(structure, y)
        return structure

    def _n_outputs(self):
        if self.node_logits:
            return self.structure_.n_nodes
        return len(self.classes_)

    def _make_criterion(self):
        return HACELoss(
            self.structure_, d=self.d, eps=self.eps, node_logits=self.node_logits
        )

    def _output_to_logits(self, output):
        logits = super()._output_to_logits(output)
        if not self.node_logits:
            return logits
        # Node logits are in dfs_nodes order: keep the leaves' own logits, in
        # classes_ order (softmax over them = leaf masses renormalised).
        return logits[:, torch.as_tensor(self._leaf_columns(), device=logits.device)]

    def _leaf_columns(self):
        """Column of each class (``classes_`` order) among the node outputs."""
        position = {node: i for i, node in enumerate(self.structure_.dfs_nodes.tolist())}
        return np.array([position[c] for c in self.classes_.tolist()], dtype=np.int64)

    def _callbacks(self):
        if self.lr_scale == "inverse_d" and self.d != 1:
            return [("lr_scale", _ScaleLR(1.0 / self.d))]
        return []


def _check_leaf_labels(hierarchy, y):
    """Raise a clear error for labels of ``y`` that are internal nodes."""
    y = np.asarray(y)
    try:
        values = np.unique(y)
    except TypeError:
        values = list(dict.fromkeys(y.tolist()))
    internal = []
    for value in np.asarray(values, dtype=object).tolist():
        try:
            if not hierarchy.is_leaf(value):
                internal.append(value)
        except StructureError:
            continue  # unknown labels: reported by structure.encode in fit
    if internal:
        shown = ", ".join(repr(x) for x in internal[:5])
        raise StructureError(
            f"y contains internal nodes of the hierarchy ({shown}); "
            "HACEClassifier is trained on leaf labels. Label each sample with "
            "its finest class (a leaf), or add a leaf under that node for "
            "samples known only at the coarse level."
        )
