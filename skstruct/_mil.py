"""MILConveyance: multiple-instance classification with the Conveyance instance loss."""

import copy
import inspect
import numbers

import numpy as np
import torch
from sklearn.model_selection import RepeatedStratifiedKFold, StratifiedKFold
from sklearn.svm import SVC
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted
from skorch.callbacks import Callback

from ._base import ForwardResult, _BaseStructuredClassifier
from ._lbfgs import PenalisedLBFGS
from .callbacks import NonFiniteLossGuard
from .losses import SampleWeightedLoss
from .losses._mil import MILConveyanceLoss
from .modules._mil import (
    GatedAttentionMIL,
    GatedAttentionMILEnsemble,
    PrototypeMIL,
    PrototypeStackMIL,
    PrototypeSVMMIL,
    glorot_init_,
)
from .modules._mlp import infer_output_width, reset_parameters
from .structures import ClassGraph, check_structure
from .utils._torch import WeightedDataset
from .utils._docstring import fill_doc
from .utils._sklearn_compat import Interval, StrOptions

__all__ = ["MILConveyance"]

# What the 'auto' training parameters resolve to (batch size None: all
# training bags in one step). 'prototypes' trains by
# full-batch L-BFGS to the optimum of a convex problem (fixed RBF width);
# 'prototypes-adam' is that embedding under a first-order optimizer (the
# default before L-BFGS: 600 Adam steps with a learned width).
_AUTO_TRAINING = {
    "prototypes": {
        "max_epochs": 25, "batch_size": None, "lr": 1.0, "optimizer": "lbfgs",
        "weight_decay": 1e-3, "max_grad_norm": None, "gamma_scale": 0.5,
    },
    "prototypes-adam": {
        "max_epochs": 600, "batch_size": None, "lr": 1e-2, "optimizer": "adam",
        "weight_decay": 1e-4, "max_grad_norm": 1.0, "gamma_scale": 1.0,
    },
    "mlp": {
        "max_epochs": 40, "batch_size": 8, "lr": 3e-3, "optimizer": "adam",
        "weight_decay": 1e-4, "max_grad_norm": 1.0, "gamma_scale": 1.0,
    },
}
# The members of stacking (bench_mil_stacking.py, issue 11), each a convex
# prototype model: A the bag term on standardised bag features (MILES with an
# L2 logistic regression), B the Conveyance instance term with the L1 kernel,
# C the bag term on each prototype's best match and mean similarity, and D an
# RBF-kernel SVM (sklearn's SVC, C = "svm_C", gamma='scale') on A's features.
# A, B and C are PrototypeMIL models trained by the estimator's L-BFGS path;
# D is a PrototypeSVMMIL, fitted by libsvm.
_STACK_MEMBERS = (
    {"kernel": "rbf", "prototype_pooling": "max", "scale_bag_features": True,
     "instance_weight": 0.0, "gamma_scale": 1.0},
    {"kernel": "laplacian", "prototype_pooling": "max", "scale_bag_features": False,
     "instance_weight": 1.0, "gamma_scale": 0.5},
    {"kernel": "rbf", "prototype_pooling": "max+mean", "scale_bag_features": False,
     "instance_weight": 0.0, "gamma_scale": 0.5},
    {"kernel": "rbf", "prototype_pooling": "max", "scale_bag_features": True,
     "instance_weight": 0.0, "gamma_scale": 1.0, "svm_C": 10.0},
)
# The options of one prototype model, at their defaults; setting any of them
# asks for that one model, which stacking='auto' then trains.
_SINGLE_MODEL_DEFAULTS = {
    "kernel": "rbf", "prototype_pooling": "max", "scale_bag_features": False,
    "instance_weight": 1.0, "gamma_scale": "auto",
}
# The inner cross-validation of the stacking: repeats x stratified folds.
_STACK_INNER_SPLITS, _STACK_INNER_REPEATS = 5, 3
# The L-BFGS gradient tolerance of the stack's fits.
_STACK_TOLERANCE_GRAD = 1e-4
# Bags per inference batch when all training bags share one training step.
_PROTOTYPE_INFERENCE_BATCH = 64


def _mean_and_std(values, weights):
    """Column means and standard deviations of ``values``, rows weighted by ``weights``.

    ``weights=None``: all rows weigh the same. The deviation is the
    population one (``ddof=0``), so a row of weight 2 counts as the row twice.
    """
    if weights is None:
        return values.mean(axis=0), values.std(axis=0)
    mean = np.average(values, axis=0, weights=weights)
    return mean, np.sqrt(np.average((values - mean) ** 2, axis=0, weights=weights))


def _same(value, default):
    """Whether a parameter is at its default (``1`` equals ``1.0``, ``True`` is not ``1``)."""
    if isinstance(default, str) or isinstance(value, str):
        return isinstance(value, str) and value == default
    if isinstance(default, bool) or isinstance(value, bool):
        return value is default
    return value == default


def _check_bags(X, *, name="X", estimator="MILConveyance"):
    """Return ``X`` as a list of 2-D float arrays of one width, or raise.

    Accepts a list/tuple of ``(n_i, n_features)`` arrays, a 1-D object array
    of them, or a 3-D numeric array of equal-size bags. ``estimator`` names
    the class in the messages.
    """
    if hasattr(X, "iloc") or hasattr(X, "columns"):
        raise TypeError(
            f"{name} must be a sequence of bags (a list of (n_instances, "
            f"n_features) arrays), got a {type(X).__name__}. Group the rows "
            "into bags first, e.g. [df.loc[df.bag == b, features].to_numpy() "
            "for b in bag_ids]."
        )
    if isinstance(X, np.ndarray) and X.dtype != object:
        if X.ndim == 3:
            X = list(X)
        elif X.ndim == 2:
            raise ValueError(
                f"{name} must be a sequence of bags, got a 2-D numeric array of "
                f"shape {X.shape}. {estimator} takes one (n_instances, "
                "n_features) array per bag: group the instance rows into bags, "
                "e.g. [X[bag_index == b] for b in np.unique(bag_index)], or pass "
                "list(X[:, None, :]) for bags of one instance each."
            )
        else:
            raise ValueError(
                f"{name} must be a sequence of bags, got a numeric array of shape "
                f"{X.shape}; pass a list of (n_instances, n_features) arrays."
            )
    elif isinstance(X, np.ndarray) and X.ndim != 1:
        raise ValueError(
            f"{name} must be a list or a 1-D object array of bags, got an object "
            f"array of shape {X.shape}."
        )
    elif not isinstance(X, (list, tuple, np.ndarray)):
        raise TypeError(
            f"{name} must be a sequence of bags (a list of (n_instances, "
            f"n_features) arrays), got {type(X).__name__}."
        )
    if len(X) == 0:
        raise ValueError(f"{name} contains no bags; pass at least one bag.")
    bags = []
    n_features = None
    for i, bag in enumerate(X):
        if hasattr(bag, "to_numpy"):
            bag = bag.to_numpy()
        try:
            arr = np.asarray(bag)
            if arr.dtype.kind not in "fc":
                arr = arr.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"Bag {i} of {name} is not a numeric (n_instances, n_features) "
                f"array: {exc}"
            ) from exc
        if arr.dtype.kind == "c":
            raise ValueError(f"Bag {i} of {name} holds complex numbers; real features expected.")
        if arr.ndim != 2:
            raise ValueError(
                f"Bag {i} of {name} must be a 2-D (n_instances, n_features) array, "
                f"got shape {arr.shape}. A bag of one instance is "
                "x.reshape(1, -1); a bag of instances with one feature is "
                "x.reshape(-1, 1). Each element of X is one bag."
            )
        if arr.shape[0] == 0:
            raise ValueError(
                f"Bag {i} of {name} is empty (0 instances); every bag needs at "
                "least one instance. Drop empty bags before fitting."
            )
        if n_features is None:
            n_features = arr.shape[1]
        elif arr.shape[1] != n_features:
            raise ValueError(
                f"Bag {i} of {name} has {arr.shape[1]} features but bag 0 has "
                f"{n_features}; every instance of every bag needs the same "
                "number of features."
            )
        if arr.dtype not in (np.float32, np.float64):
            arr = arr.astype(np.float64)
        if not np.isfinite(arr).all():
            raise ValueError(
                f"Bag {i} of {name} contains NaN or infinity; {estimator} "
                "does not accept missing values. Impute or drop those "
                "instances first."
            )
        bags.append(arr)
    if n_features == 0:
        raise ValueError(f"The bags of {name} have 0 features; at least one is required.")
    return bags


def _check_bag_width(bags, estimator, *, reset):
    """Record (``reset``) or check ``estimator.n_features_in_`` against validated ``bags``."""
    n_features = bags[0].shape[1]
    if reset:
        estimator.n_features_in_ = n_features
    elif n_features != estimator.n_features_in_:
        raise ValueError(
            f"X has bags with {n_features} features, but {type(estimator).__name__} "
            f"was fitted with {estimator.n_features_in_} features per instance."
        )


def _check_bag_labels(bags, y, *, estimator="MILConveyance"):
    """Return ``y`` as an array of one label per bag of the validated ``bags``, or raise."""
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(
            f"y must be 1-D with one label per bag, got shape {y.shape}."
        )
    if len(y) != len(bags):
        n_instances = sum(len(b) for b in bags)
        hint = ""
        if len(y) == n_instances:
            hint = (
                f" y has one label per instance: {estimator} needs one "
                "label per bag (e.g. y_bag = [y[bag_index == b].max() for b "
                "in bags] under the standard MIL assumption)."
            )
        raise ValueError(
            f"X has {len(bags)} bags but y has {len(y)} labels; expected one "
            f"label per bag.{hint}"
        )
    return y


class _BagDataset(torch.utils.data.Dataset):
    """Bags held as one float32 tensor of instances, served as padded batches.

    All instances are concatenated once (plus one zero row used as padding),
    so that ``get_batch`` costs one gather per batch and no Python loop over
    bags; a single bag is a view into that tensor, with no copy at all.
    ``get_batch(indices)`` returns ``({"bags": (B, n_max, d) tensor,
    "padding_mask": (B, n_max) bool tensor, True = padding}, y)``; skorch
    passes the dict to the module as keyword arguments.
    """

    def __init__(self, bags, y=None):
        lengths = np.fromiter((len(b) for b in bags), dtype=np.int64, count=len(bags))
        n_features = bags[0].shape[1]
        flat = np.empty((int(lengths.sum()) + 1, n_features), dtype=np.float32)
        np.concatenate(bags, axis=0, out=flat[:-1])
        flat[-1] = 0.0
        offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        self.flat = torch.from_numpy(flat)
        self.lengths = torch.from_numpy(lengths)
        self.offsets = torch.from_numpy(offsets)
        self._bounds = list(zip(offsets.tolist(), lengths.tolist()))
        self._pad_row = flat.shape[0] - 1
        self.y = None if y is None else torch.as_tensor(np.asarray(y, dtype=np.int64))

    def __len__(self):
        return len(self._bounds)

    def __getitem__(self, i):
        return self.get_batch(torch.as_tensor([i]))

    def get_batch(self, indices):
        if len(indices) == 1:
            k = int(indices[0])
            start, n = self._bounds[k]
            bags = self.flat[start : start + n].unsqueeze(0)
            mask = torch.zeros((1, n), dtype=torch.bool)
            y = self.y[k : k + 1] if self.y is not None else torch.zeros(1, dtype=torch.int64)
        else:
            indices = torch.as_tensor(indices, dtype=torch.int64)
            lengths = self.lengths[indices]
            positions = torch.arange(int(lengths.max()))
            mask = positions[None, :] >= lengths[:, None]
            rows = (self.offsets[indices][:, None] + positions[None, :]).masked_fill_(
                mask, self._pad_row
            )
            bags = self.flat[rows]
            y = (
                self.y[indices]
                if self.y is not None
                else torch.zeros(len(indices), dtype=torch.int64)
            )
        return {"bags": bags, "padding_mask": mask}, y


# Instances per distance product when training distances or features are computed.
_DISTANCE_CHUNK = 4096


def _chunked_distances(network, instances):
    """``network.distances(instances)``, a chunk at a time where the network is, on the CPU."""
    device = network.prototypes.device
    with torch.no_grad():
        return torch.cat([
            network.distances(chunk.to(device)).cpu()
            for chunk in instances.split(_DISTANCE_CHUNK)
        ])


def _set_feature_scale(network, bag_features, weights):
    """Set ``network.feature_scale`` to the (weighted) std of ``bag_features`` over the bags."""
    _, std = _mean_and_std(bag_features.double().numpy(), weights)
    # A feature (nearly) constant over the bags is left (nearly) as it is.
    network.feature_scale.copy_(torch.as_tensor(np.maximum(std, 1e-3)))


def _fit_svm_member(network, bag_features, y, weights, C):
    """Fit the machines of a :class:`PrototypeSVMMIL` by libsvm; the network, on the CPU.

    ``bag_features`` (before ``feature_scale``, which is set already) of the
    training bags, ``y`` their class indices, ``weights`` their sample
    weights or ``None``. Each machine is :class:`sklearn.svm.SVC` with the
    RBF kernel, ``C`` and ``gamma='scale'`` (one over the number of features
    times the variance of all scaled features, here weighted by the sample
    weights, so that a bag of weight 2 counts as the bag twice): one machine
    for two classes, one per class against the rest for more. A machine
    whose labels have a single class (of positive weight) is the constant
    +-1.
    """
    network = network.cpu()
    u = (bag_features.double() / network.feature_scale.double()).numpy()
    w = np.ones(len(u)) if weights is None else np.asarray(weights, dtype=np.float64)
    mean = np.average(u, axis=0, weights=w).mean()
    variance = float(np.average(np.square(u - mean).mean(1), weights=w))
    gamma = 1.0 / (u.shape[1] * variance) if variance > 0 else 1.0
    n_machines = network.svm_intercept.numel()
    targets = [y == 1] if n_machines == 1 else [y == k for k in range(n_machines)]
    coef = np.zeros((len(u), n_machines))
    intercept = np.zeros(n_machines)
    for k, positive in enumerate(targets):
        present = np.unique(positive[w > 0])
        if len(present) < 2:
            intercept[k] = 1.0 if present.size and present[0] else -1.0
            continue
        svm = SVC(C=C, kernel="rbf", gamma=gamma).fit(u, positive, sample_weight=weights)
        # decision_function = dual_coef_ @ K(support_vectors_, x) + intercept_, > 0 for True
        coef[svm.support_, k] = svm.dual_coef_[0]
        intercept[k] = svm.intercept_[0]
    rows = np.flatnonzero(np.any(coef != 0, axis=1))
    network.set_svm(u[rows], coef[rows], intercept, gamma)
    return network


def _instance_rows(offsets, lengths, indices):
    """The instance rows of bags ``indices`` (stored bag after bag), in their order.

    Every bag in the stored order gives ``slice(None)``: a view, no copy.
    """
    if len(indices) == len(lengths) and bool((indices == torch.arange(len(lengths))).all()):
        return slice(None)
    starts, counts = offsets[indices], lengths[indices]
    within = torch.arange(int(counts.sum())) - torch.repeat_interleave(
        torch.cumsum(counts, 0) - counts, counts
    )
    return torch.repeat_interleave(starts, counts) + within


class _DistanceBagDataset(_BagDataset):
    """Training bags served as their instances' distances to the prototypes.

    For ``embedding='prototypes'``: the distances of every training instance
    to the prototypes do not change during training, so they are computed
    once (``distances``, float32, one row per instance, bag after bag)
    instead of at every step. ``get_batch(indices)`` returns
    ``({"distances": (n_instances, n_prototypes) tensor,
    "padding_mask": (B, n_max) bool tensor}, y)``, the keyword arguments of
    :meth:`PrototypeMIL.forward <skstruct.modules.PrototypeMIL.forward>`.
    A batch of all bags in the stored order (what training on all bags at
    every step asks for: :class:`MILConveyance` does not shuffle a single
    batch) is a view, with no copy.
    """

    def __init__(self, bags, y, network):
        super().__init__(bags, y)
        # Computed where the network is, kept on the CPU.
        self.distances = _chunked_distances(network, self.flat[:-1])
        self.flat = None  # the raw instances are not needed any more

    def get_batch(self, indices):
        indices = torch.as_tensor(indices, dtype=torch.int64)
        rows = _instance_rows(self.offsets, self.lengths, indices)
        lengths = self.lengths[indices]
        mask = torch.arange(int(lengths.max()))[None, :] >= lengths[:, None]
        y = self.y[indices] if self.y is not None else torch.zeros(len(indices), dtype=torch.int64)
        return {"distances": self.distances[rows], "padding_mask": mask}, y


class _FeatureBagDataset(torch.utils.data.Dataset):
    """Training bags served as precomputed prototype features, for fixed kernel widths.

    ``members`` holds one ``(bag_features, similarities)`` pair per
    :class:`PrototypeMIL` (``similarities`` of the instances, bag after bag,
    or ``None`` when the member's loss has no instance term).
    ``get_batch(indices)`` returns the keyword arguments of
    :meth:`PrototypeMIL.forward` (one member, ``stacked=False``) or of
    :meth:`PrototypeStackMIL.forward` (``member_inputs``), and the labels.
    """

    def __init__(self, lengths, y, members, *, stacked):
        self.lengths = torch.as_tensor(np.asarray(lengths, dtype=np.int64))
        self.offsets = torch.cumsum(self.lengths, 0) - self.lengths
        self.y = torch.as_tensor(np.asarray(y, dtype=np.int64))
        self.members, self.stacked = members, stacked

    def __len__(self):
        return len(self.lengths)

    def __getitem__(self, i):
        return self.get_batch(torch.as_tensor([i]))

    def get_batch(self, indices):
        indices = torch.as_tensor(indices, dtype=torch.int64)
        rows = _instance_rows(self.offsets, self.lengths, indices)
        every = isinstance(rows, slice)
        counts = self.lengths[indices]
        mask = torch.arange(int(counts.max()))[None, :] >= counts[:, None]
        inputs = []
        for bag_features, similarities in self.members:
            member = {"bag_features": bag_features if every else bag_features[indices]}
            if similarities is not None:
                member["similarities"] = similarities[rows]
            inputs.append(member)
        if self.stacked:
            return {"member_inputs": inputs, "padding_mask": mask}, self.y[indices]
        return {**inputs[0], "padding_mask": mask}, self.y[indices]


class _MemberLosses(torch.nn.Module):
    """The sum of the stack members' losses, each on its own outputs.

    Takes the output of :class:`PrototypeStackMIL`; summing keeps each
    member's gradient what it would be if it were trained alone. A member
    whose loss is ``None`` has no parameters (:class:`PrototypeSVMMIL`) and
    adds nothing.
    """

    def __init__(self, losses):
        super().__init__()
        # None: a member that no loss trains (the SVM member).
        self.trained = [i for i, loss in enumerate(losses) if loss is not None]
        self.losses = torch.nn.ModuleList(loss for loss in losses if loss is not None)

    @property
    def reduction(self):
        return self.losses[0].reduction

    @reduction.setter
    def reduction(self, value):  # SampleWeightedLoss asks for 'none'
        for loss in self.losses:
            loss.reduction = value

    def forward(self, output, target):
        return sum(loss(output[4][i], target) for loss, i in zip(self.losses, self.trained))


class _GradientNormClipping(Callback):
    """Clip the global gradient norm of the module's parameters after backward.

    Like skorch's ``GradientNormClipping`` (L2 norm), but the parameter list
    is collected once per ``fit`` instead of walking the modules at every
    step, which matters with one bag per step.
    """

    def __init__(self, max_norm):
        self.max_norm = max_norm

    def on_train_begin(self, net, **kwargs):
        self.params_ = [p for p in net.module_.parameters() if p.requires_grad]
        # One device and dtype: the per-step grouping of clip_grad_norm_'s
        # helpers is the identity (see _clip_one).
        self._one_group_ = len({(p.device, p.dtype) for p in self.params_}) == 1
        # An ensemble's parameters are stacked over members (first axis):
        # each member's gradient is clipped on its own, as if trained alone.
        self.n_members_ = getattr(net.module_, "n_members", None)

    def on_grad_computed(self, net, named_parameters=None, **kwargs):
        grads = [p.grad for p in self.params_ if p.grad is not None]
        if not grads:
            return
        if self.n_members_ is None:
            self._clip_one(grads)
            return
        sq = sum(g.reshape(self.n_members_, -1).square().sum(1) for g in grads)
        scale = (self.max_norm / (sq.sqrt() + 1e-6)).clamp(max=1.0)
        for g in grads:
            g.mul_(scale.reshape(-1, *([1] * (g.ndim - 1))))

    def _clip_one(self, grads):
        """``clip_grad_norm_`` of one network, with fewer torch calls on CPU.

        The same scale as ``torch.nn.utils.clip_grad_norm_``, ``max_norm /
        (norm + 1e-6)`` when below 1. On CPU the norms come from one
        ``foreach`` call and the gradients are only rescaled when the norm is
        above the limit (reading the norm costs no device synchronisation
        there): 0.23-0.31 against 0.50-0.58 ms per step for the default network,
        where one bag per step takes about 8 ms. Elsewhere, and on torch
        before 2.6 (no ``get_total_norm``), ``clip_grad_norm_`` itself; a
        non-finite norm is rescaled as ``clip_grad_norm_`` does.
        """
        utils = torch.nn.utils
        if not hasattr(utils, "get_total_norm") or grads[0].device.type != "cpu":
            utils.clip_grad_norm_(self.params_, self.max_norm)
            return
        if not getattr(self, "_one_group_", False):
            total = utils.get_total_norm(grads, foreach=True)
            if not float(total) <= self.max_norm:  # also rescales (to NaN) a non-finite norm
                utils.clip_grads_with_norm_(self.params_, self.max_norm, total, foreach=True)
            return
        # The calls get_total_norm and clip_grads_with_norm_ make for one
        # device and dtype (per-gradient norms in one foreach call, the norm
        # of their stack; then the clamped coefficient), without their
        # grouping and list building: the same values bit for bit.
        with torch.no_grad():
            total = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads, 2.0)), 2.0)
            max_norm = float(self.max_norm)
            if not float(total) <= max_norm:  # also rescales (to NaN) a non-finite norm
                torch._foreach_mul_(grads, torch.clamp(max_norm / (total + 1e-6), max=1.0))


def _supports_fused(optimizer, device):
    """Whether ``optimizer`` (a class) takes ``fused=True`` on ``device``."""
    if optimizer not in (torch.optim.Adam, torch.optim.AdamW):
        return False
    if device.type not in ("cpu", "cuda"):
        return False
    return "fused" in inspect.signature(optimizer.__init__).parameters


def _split_by_length(values, lengths):
    """Split the concatenated per-instance rows of ``values`` into one array per bag."""
    return np.split(values, np.cumsum(lengths)[:-1])


def _fit_stacking(log_proba, y, weights):
    """Non-negative weights ``w`` and intercept ``b`` of ``sum_m w_m log_proba_m + b``.

    ``log_proba`` of shape ``(n_repeats, n_bags, n_members, n_classes)``
    (out-of-fold), ``y`` the bags' class indices, ``weights`` their sample
    weights or ``None``. Minimises the weighted mean cross-entropy over all
    repeats by L-BFGS in float64, with ``w = softplus(v)``; returns float32
    tensors.
    """
    n_repeats, n_bags, n_members, n_classes = log_proba.shape
    z = log_proba.reshape(n_repeats * n_bags, n_members, n_classes)
    target = torch.as_tensor(np.tile(y, n_repeats), dtype=torch.long)
    sample = torch.ones(n_bags, dtype=torch.float64) if weights is None else torch.as_tensor(
        weights, dtype=torch.float64)
    sample = sample.repeat(n_repeats)
    free = torch.zeros(n_members, dtype=torch.float64, requires_grad=True)
    intercept = torch.zeros(n_classes, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([free, intercept], max_iter=200,
                                  line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        logits = (torch.nn.functional.softplus(free)[:, None] * z).sum(1) + intercept
        per_bag = torch.nn.functional.cross_entropy(logits, target, reduction="none")
        loss = (per_bag * sample).sum() / sample.sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    with torch.no_grad():
        return torch.nn.functional.softplus(free).float(), intercept.float()


def _stack_or_svm(log_proba, y, weights, n_splits, seed):
    """The stack of the linear members, or the SVM member alone, by cross-validated accuracy.

    ``log_proba`` of shape ``(n_repeats, n_bags, n_members, n_classes)``
    holds the members' out-of-fold log-probabilities (members in the order
    of ``_STACK_MEMBERS``), ``y`` the bags' class indices and ``weights``
    their sample weights or ``None``. The accuracy of the SVM member is that
    of its out-of-fold predictions. The stack's (:func:`_fit_stacking` on the
    linear members) is cross-validated on the same predictions: a
    stratified ``n_splits``-fold split of the bags (the inner CV's number
    of folds, seeded by ``seed``) fits the stacking on the out-of-fold rows of some bags and
    scores it on the others. Both accuracies are sample-weighted means over
    all repeats. The SVM member is chosen only when it is strictly more
    accurate; then its weight is 1, every other weight and the intercept 0.

    Returns ``(weights, intercept, choice, scores)``: float32 tensors of
    shapes ``(n_members,)`` and ``(n_classes,)``, ``'stack'`` or ``'svm'``,
    and ``{'stack': accuracy, 'svm': accuracy}``.
    """
    n_repeats, n_bags, n_members, n_classes = log_proba.shape
    svm = [i for i, o in enumerate(_STACK_MEMBERS) if "svm_C" in o]
    linear = [i for i, o in enumerate(_STACK_MEMBERS) if "svm_C" not in o]
    sample = np.ones(n_bags) if weights is None else np.asarray(weights, dtype=np.float64)
    total = n_repeats * sample.sum()
    y_t = torch.as_tensor(y)

    def accuracy(logits, bags):  # logits (n_repeats, len(bags), n_classes)
        right = (logits.argmax(-1) == y_t[bags]).double().numpy()
        return float((right * sample[bags]).sum())

    svm_accuracy = accuracy(log_proba[:, :, svm[0]], np.arange(n_bags)) / total
    splitter = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    stack_right = 0.0
    for fit_bags, score_bags in splitter.split(np.zeros(n_bags), y):
        w, b = _fit_stacking(log_proba[:, fit_bags][:, :, linear], y[fit_bags],
                             None if weights is None else sample[fit_bags])
        logits = (w.double()[:, None] * log_proba[:, score_bags][:, :, linear]).sum(2) + b
        stack_right += accuracy(logits, score_bags)
    scores = {"stack": stack_right / total, "svm": svm_accuracy}
    stack_weights = torch.zeros(n_members)
    if scores["svm"] > scores["stack"]:
        stack_weights[svm] = 1.0
        return stack_weights, torch.zeros(n_classes), "svm", scores
    w, b = _fit_stacking(log_proba[:, :, linear], y, weights)
    stack_weights[linear] = w
    return stack_weights, b, "stack", scores


@fill_doc
class MILConveyance(_BaseStructuredClassifier):
    """Multiple-instance classifier trained with bag CE plus instance Conveyance.

    Each sample is a *bag*: a set of instances of which only the bag carries
    a label. One linear classifier scores the bag from a bag representation
    and every instance from its own representation; the instance scores are
    trained with the Conveyance loss against the bag's label. The class
    structure says which instance classes a bag of a given label may hold:
    under the standard MIL assumption (the default) a positive bag may hold
    negative instances, a negative bag only negative ones, i.e. ``Q = [[1,
    1], [0, 1]]`` over (negative, positive). The training loss per batch of
    bags is::

        mean_b CE(bag_b) + instance_weight * mean_b mean_{k in bag b} Conveyance(instance_bk)

    Two representations (``embedding``):

    * ``'prototypes'`` (the default): an instance is represented by its
      similarities to prototype instances of the training bags, in features
      standardised on the training instances, and a bag by the best match
      of each prototype among its instances (the MILES embedding, Chen et
      al. 2006). The bag head and the instance head are the same linear
      layer, so the Conveyance term on the instances trains the bag
      classifier too (:class:`~skstruct.modules.PrototypeMIL`). With the
      kernel width fixed the training loss plus an L2 penalty on the head
      (``weight_decay=1e-3``) is convex in the head, and full-batch L-BFGS
      solves it to its optimum (``optimizer='auto'``: at most 25 epochs of
      20 iterations), so the fit does not depend on a learning rate or a
      number of steps. By default (``stacking='auto'``) three such models
      with different kernels and bag features are trained on the same
      prototypes and stacked: a non-negative logistic regression on their
      log-probabilities, fitted on out-of-fold predictions of an inner
      cross-validation of the training bags
      (:class:`~skstruct.modules.PrototypeStackMIL`); an RBF-kernel SVM on
      the first model's features replaces the stack when the same inner
      cross-validation finds it more accurate
      (:class:`~skstruct.modules.PrototypeSVMMIL`); setting ``kernel``,
      ``prototype_pooling``, ``scale_bag_features``, ``instance_weight`` or
      ``gamma_scale`` (or ``stacking=False``) trains that one model, with
      an RBF width of half the median heuristic's by default.
      ``optimizer='adam'`` trains one model as before L-BFGS was the
      default: 600 Adam steps at ``lr=1e-2`` with a learned width.
    * ``'mlp'``: the network of the Conveyance paper, gated attention
      (Ilse et al., 2018) over the features of an MLP body, with a bag head
      and an instance head (:class:`~skstruct.modules.GatedAttentionMIL`),
      on the features as given; 8 bags per step at ``lr=3e-3`` for 40
      epochs by default. ``batch_size=1, lr=1e-3`` is the paper's exact
      setup (:func:`skstruct.reproduce.reference_params`).

    On the five classical MIL benchmarks, scored honestly (the README's
    MIL section), ``'prototypes'`` is ahead of ``'mlp'`` on all five, and
    many times faster.

    X is a sequence of bags, so every sklearn splitter splits bags and
    ``cross_val_score``, ``GridSearchCV`` and the scorers work unchanged.
    Several bags share a training step through padding with a mask.

    Parameters
    ----------
    class_structure : ClassStructure or None, default=None
        Which instance classes may appear in a bag of each label (used by
        the instance loss only). ``None``: y must hold exactly two labels and
        the MIL assumption is used, ``ClassGraph([[1, 1], [0, 1]],
        classes=[negative, positive])``. A
        :class:`~skstruct.structures.ClassGraph` (or another structure) over
        more labels gives multi-class MIL; its labels define ``classes_``.
    positive_label : object or None, default=None
        The positive label of the default structure; ``None`` means the
        larger of the two sorted labels (``classes_[1]``). Ignored when a
        ``class_structure`` is given.
    alpha : float, default=1.0
        Weight of the target odds of the instance Conveyance loss.
    beta : float, default=1.0
        Weight of the plausible-set odds of the instance Conveyance loss.
        Both are >= 0 and not both 0.
    instance_weight : float, default=1.0
        Weight of the instance loss relative to the bag cross-entropy;
        ``0`` trains the bag classifier alone (for ``embedding='mlp'``, a
        plain gated attention MIL model).
    embedding : {'prototypes', 'mlp'}, default='prototypes'
        How instances and bags are represented, see above. The parameters
        ``module``, ``n_estimators``, ``hidden_layer_sizes``,
        ``attention_size``, ``instance_head_sizes``, ``activation``,
        ``dropout``, ``pooling`` and ``weight_init`` describe the network of
        ``'mlp'``; with ``'prototypes'`` the last six are unused and a
        ``module``, ``n_estimators > 1`` or ``pooling='max'`` is an error.
    n_prototypes : int, default=1000
        With ``embedding='prototypes'``: the most prototypes. The prototypes
        are the distinct instances of the training bags or, when there are
        more, this many of them drawn at random (seeded by
        ``random_state``). The cost of a training step grows with
        instances times prototypes, and so does memory: a fit keeps the
        float32 distances of all training instances to the prototypes (4
        bytes each, e.g. 26 MB for MUSK2's 6,598 instances and 1,000
        prototypes) and each step holds about two more arrays of that size.
    gamma_scale : float or 'auto', default='auto'
        With ``embedding='prototypes'``: the factor on the median-heuristic
        kernel ``gamma`` (one over the median distance between two
        prototypes, squared for ``kernel='rbf'``); below 1 is a wider
        kernel. ``'auto'``: 0.5 with L-BFGS (the width stays fixed), 1.0
        with another optimizer (the width is learned from there).
    kernel : {'rbf', 'laplacian'}, default='rbf'
        With ``embedding='prototypes'``: the similarity of an instance to a
        prototype in the standardised space, ``exp(-gamma ||z - p||^2)`` or
        ``exp(-gamma ||z - p||_1)``.
    prototype_pooling : {'max', 'max+mean'}, default='max'
        With ``embedding='prototypes'``: the bag features, each prototype's
        best match among the bag's instances (MILES), or its best match and
        its mean similarity over the bag.
    scale_bag_features : bool, default=False
        With ``embedding='prototypes'``: divide every bag feature by its
        standard deviation over the training bags (each weighing as its
        sample weight), so that the L2 penalty of ``weight_decay`` acts on
        standardised bag features (MILES with an L2 logistic regression
        when ``instance_weight=0``).
    stacking : 'auto' or bool, default='auto'
        With ``embedding='prototypes'`` and L-BFGS: train three convex
        prototype models and combine them by stacking, fitted on the
        training bags alone. The members share the prototypes: (A) the bag
        term on standardised bag features (``scale_bag_features=True,
        instance_weight=0, gamma_scale=1``), (B) the Conveyance term with
        the L1 kernel (``kernel='laplacian'``), (C) the bag term on each
        prototype's best match and mean similarity (``prototype_pooling=
        'max+mean', instance_weight=0``). The stacked log-probabilities are
        ``sum_m w_m log p_m + b`` with ``w_m >= 0`` (a logistic regression
        on the members' log-probabilities), fitted on out-of-fold
        predictions of a 3 x 5-fold stratified cross-validation of the
        training bags, in which the prototypes that are instances of a
        validation bag are left out; the members are then trained on all
        training bags, each alone on its own loss. A fourth member (D) is
        an SVM with the RBF kernel on A's standardised bag features
        (:class:`sklearn.svm.SVC` with ``C=10`` and ``gamma='scale'``,
        one machine per class against the rest for more than two classes),
        fitted in the same inner cross-validation. D alone replaces the
        stack of A, B and C (``stacking_choice_='svm'``: weights 0, 0, 0, 1)
        when its out-of-fold accuracy is strictly above the stack's, which
        a 5-fold cross-validation of the stacking on the same out-of-fold
        predictions gives (``stacking_cv_accuracy_``). A fit costs about 16
        fits of one model, on features computed once.
        ``'auto'``: stack unless one of the options of a single model
        (``kernel``, ``prototype_pooling``, ``scale_bag_features``,
        ``instance_weight``, ``gamma_scale``) is set, or the training is not
        L-BFGS on prototypes, or an ``accelerator`` is given. ``False``: one
        model with those options.
    n_estimators : int, default=1
        With ``embedding='mlp'``: the number of networks trained together
        in one batched pass (each with its own initialisation and dropout,
        all on the same batches, each on its own loss); bag and instance
        probabilities are the members' mean. Needs the default MLP body
        (``module=None``). A step of ``k`` members costs the operations of
        the ``k`` networks but only the Python and dispatch overhead of one
        (batched matrix products), so e.g. three 256-256 members cost about
        one default 512-512 network.
        On the MIL benchmarks ensembles narrowed the spread between seeds
        a little and did not raise the mean accuracy beyond noise (README,
        ``benchmarks/bench_mil_levers.py``), hence the default of 1.
    module : torch.nn.Module or None, default=None
        With ``embedding='mlp'``: the instance backbone mapping
        ``(n_instances, n_features)`` to ``(n_instances, width)``. ``None`` builds an MLP with
        ``hidden_layer_sizes``. A user module is deep-copied and
        re-initialised at every ``fit``; attention and heads go on top.
    hidden_layer_sizes : tuple of int, default=(512, 512)
        ``'mlp'``: widths of the default MLP backbone (ReLU after each layer).
    attention_size : int, default=128
        ``'mlp'``: width of the gated attention.
    instance_head_sizes : tuple of int, default=(512,)
        ``'mlp'``: hidden widths of the instance head before its output layer.
    activation : {'relu', 'gelu', 'tanh', 'elu', 'leaky_relu'}, default='relu'
        ``'mlp'``: non-linearity of the MLP backbone and the instance head.
    dropout : float, default=0.1
        ``'mlp'``: dropout on the gated attention features (the reference setup uses
        0.1, and 0.25 for TIGER); with ``pooling='max'``, on the instance
        features before the max.
    pooling : {'attention', 'max'}, default='attention'
        ``'mlp'``: the bag representation, the gated attention mean of the instance
        features, or their feature-wise maximum over the bag (MI-Net, Wang
        et al. 2018; ``attention_size`` is then unused and
        :meth:`attention_weights` gives each instance's share of the pooled
        features). ``'max'`` needs ``n_estimators=1``. See the README's MIL
        section for the MI-Net recipe (``pooling='max'``,
        ``hidden_layer_sizes=(256, 128, 64)``, ``weight_init='glorot'``,
        SGD, standardised instances) and what it gives on the benchmarks.
    weight_init : {'torch', 'glorot'}, default='torch'
        ``'mlp'``: initialisation of every linear layer (a user ``module`` included):
        PyTorch's default, or Glorot uniform weights with zero biases
        (Keras' default, which the MI-Net networks use).
    max_epochs : int or 'auto', default='auto'
        Number of passes over the training bags; ``'auto'``: 25 for
        ``embedding='prototypes'`` (one L-BFGS step of up to 20 iterations
        each; a converged fit stops moving), 600 for it with another
        optimizer (one step each), 40 for ``'mlp'``.
    batch_size : int or 'auto', default='auto'
        Bags per training step (padded with a mask), also used at
        prediction. ``'auto'``: all training bags in one step for
        ``embedding='prototypes'`` (64 bags per batch at prediction), 8 for
        ``'mlp'``. ``1`` is the paper's one-bag-per-step training (with
        ``lr=1e-3``). With ``B`` bags per step, ``lr=1e-3 * B ** 0.5`` kept
        the accuracy of the 10-fold MUSK1 and FOX benchmarks within 2 points
        of one bag per step at 6x the speed for ``B = 8`` and the ``'mlp'``
        embedding (``benchmarks/bench_mil.py``).
    lr : float or 'auto', default='auto'
        Learning rate of the optimizer; ``'auto'``: ``1.0`` for
        ``embedding='prototypes'`` (the first trial step of L-BFGS's
        strong-Wolfe line search), ``1e-2`` for it with another optimizer,
        ``3e-3`` for ``'mlp'`` (about ``1e-3 * sqrt(batch_size)`` for its 8
        bags per step).
    optimizer : {'auto', 'lbfgs', 'adam', 'adamw', 'sgd'} or torch.optim.Optimizer \
subclass, default='auto'
        ``'auto'``: ``'lbfgs'`` for ``embedding='prototypes'`` (full-batch
        L-BFGS on the loss plus ``weight_decay / 2`` times the squared
        weights, biases unpenalised, with a fixed RBF width), ``'adam'``
        for ``'mlp'``. ``'lbfgs'`` needs ``embedding='prototypes'``,
        ``batch_size='auto'`` and no gradient clipping.
    weight_decay : float or 'auto', default='auto'
        Weight decay (L2); ``'auto'``: ``1e-3`` with L-BFGS, ``1e-4``
        otherwise (passed to the optimizer).
    max_grad_norm : float, 'auto' or None, default='auto'
        Clip the gradient norm of every step to this value; ``None`` turns
        clipping off. ``'auto'``: 1.0, and no clipping with L-BFGS (whose
        line search needs the exact gradient).
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
        Bag labels, sorted.
    structure_ : ClassStructure
        The resolved class structure (the MIL ClassGraph by default).
    n_features_in_ : int
        Number of features of an instance.
    net_ : skorch.NeuralNet
        The trained skorch network; ``net_.module_`` is the
        :class:`~skstruct.modules.PrototypeStackMIL`, the
        :class:`~skstruct.modules.PrototypeMIL` or the
        :class:`~skstruct.modules.GatedAttentionMIL`.
    stacking_weights_ : ndarray of shape (4,)
        With stacking: the non-negative weights of the members A, B, C and
        D (see ``stacking``), fitted out of fold: D's is 0 unless D was
        chosen, and then the others are 0 and D's is 1.
    stacking_intercept_ : ndarray of shape (n_classes,)
        With stacking: the intercept of the stacked log-probabilities.
    stacking_choice_ : {'stack', 'svm', 'equal weights'}
        With stacking: the stack of A, B and C, or the SVM member D alone,
        whichever was more accurate in the inner cross-validation (the
        stack on a tie); ``'equal weights'`` when a class has fewer than two
        training bags, so that no inner split exists and every member
        weighs 1/4.
    stacking_cv_accuracy_ : dict
        With stacking: ``{'stack': ..., 'svm': ...}``, the (sample-weighted)
        inner cross-validated accuracies that made the choice (empty with
        ``'equal weights'``).
    n_iter_ : int
        Number of epochs run (with stacking: of the final joint training of
        the members, which starts at their separately trained optimum).
    loss_curve_ : list of float
        Mean training loss per epoch (with stacking: the sum of the
        members' losses).
    set_threshold_ : float
        Score threshold of ``predict_set``.

    See Also
    --------
    skstruct.modules.PrototypeStackMIL : The network of the default.
    skstruct.modules.PrototypeSVMMIL : Its SVM member.
    skstruct.modules.PrototypeMIL : One prototype model (``stacking=False``).
    skstruct.modules.GatedAttentionMIL : The network of ``embedding='mlp'``.
    skstruct.losses.MILConveyanceLoss : The training loss.
    skstruct.datasets.load_mil_benchmark : The classical MIL benchmarks.
    skstruct.model_selection.MILBenchmarkCV : Their 10-fold protocol.

    Notes
    -----
    With ``embedding='mlp'`` the features are used as given (the reference
    setup does not scale them); ``'prototypes'`` standardises them on the
    training instances. ``predict_proba`` is the softmax of the bag head;
    :meth:`predict_instance_proba` gives the instance head's probabilities
    and :meth:`attention_weights` the attention of each bag.

    References
    ----------
    .. [1] Taha, Montavon and Körber, "Conveyance", arXiv:2605.28420 (2026).
    .. [2] Ilse, Tomczak and Welling, "Attention-based deep multiple instance
       learning", ICML 2018, arXiv:1802.04712.
    .. [3] Chen, Bi and Wang, "MILES: Multiple-instance learning via embedded
       instance selection", IEEE TPAMI 28(12), 2006.

    Examples
    --------
    >>> import numpy as np
    >>> from skstruct import MILConveyance
    >>> rng = np.random.RandomState(0)
    >>> bags = [rng.randn(rng.randint(2, 6), 3) for _ in range(20)]
    >>> y = np.array([0, 1] * 10)
    >>> for bag, label in zip(bags, y):
    ...     bag[0] += 3 * label          # a positive bag holds one shifted instance
    >>> clf = MILConveyance(random_state=0).fit(bags, y)
    >>> clf.score(bags, y)
    1.0
    >>> clf.predict_proba(bags[:2]).shape
    (2, 2)
    >>> [p.shape for p in clf.predict_instance_proba(bags[:2])] == [(bags[0].shape[0], 2),
    ...                                                            (bags[1].shape[0], 2)]
    True
    >>> mlp = MILConveyance(embedding="mlp", hidden_layer_sizes=(16,), attention_size=8,
    ...                     instance_head_sizes=(), max_epochs=2, random_state=0).fit(bags, y)
    >>> type(mlp.net_.module_).__name__
    'GatedAttentionMIL'
    """

    _parameter_constraints = {
        **_BaseStructuredClassifier._parameter_constraints,
        "positive_label": "no_validation",
        "alpha": [Interval(numbers.Real, 0, None, closed="left")],
        "beta": [Interval(numbers.Real, 0, None, closed="left")],
        "instance_weight": [Interval(numbers.Real, 0, None, closed="left")],
        "n_estimators": [Interval(numbers.Integral, 1, None, closed="left")],
        "attention_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "instance_head_sizes": ["array-like"],
        "max_grad_norm": [
            None, StrOptions({"auto"}), Interval(numbers.Real, 0, None, closed="neither")
        ],
        "optimizer": [StrOptions({"auto", "adam", "adamw", "sgd", "lbfgs"}), callable],
        "weight_decay": [StrOptions({"auto"}), Interval(numbers.Real, 0, None, closed="left")],
        "gamma_scale": [StrOptions({"auto"}), Interval(numbers.Real, 0, None, closed="neither")],
        "kernel": [StrOptions({"rbf", "laplacian"})],
        "prototype_pooling": [StrOptions({"max", "max+mean"})],
        "scale_bag_features": ["boolean"],
        "stacking": ["boolean", StrOptions({"auto"})],
        "pooling": [StrOptions({"attention", "max"})],
        "weight_init": [StrOptions({"torch", "glorot"})],
        "embedding": [StrOptions({"prototypes", "mlp"})],
        "n_prototypes": [Interval(numbers.Integral, 1, None, closed="left")],
        "max_epochs": [StrOptions({"auto"}), Interval(numbers.Integral, 1, None, closed="left")],
        "batch_size": [StrOptions({"auto"}), Interval(numbers.Integral, 1, None, closed="left")],
        "lr": [StrOptions({"auto"}), Interval(numbers.Real, 0, None, closed="neither")],
    }

    def __init__(
        self,
        class_structure=None,
        *,
        positive_label=None,
        alpha=1.0,
        beta=1.0,
        instance_weight=1.0,
        embedding="prototypes",
        n_prototypes=1000,
        gamma_scale="auto",
        kernel="rbf",
        prototype_pooling="max",
        scale_bag_features=False,
        stacking="auto",
        n_estimators=1,
        module=None,
        hidden_layer_sizes=(512, 512),
        attention_size=128,
        instance_head_sizes=(512,),
        activation="relu",
        dropout=0.1,
        pooling="attention",
        weight_init="torch",
        max_epochs="auto",
        batch_size="auto",
        lr="auto",
        optimizer="auto",
        weight_decay="auto",
        max_grad_norm="auto",
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
        self.positive_label = positive_label
        self.alpha = alpha
        self.beta = beta
        self.instance_weight = instance_weight
        self.embedding = embedding
        self.n_prototypes = n_prototypes
        self.gamma_scale = gamma_scale
        self.kernel = kernel
        self.prototype_pooling = prototype_pooling
        self.scale_bag_features = scale_bag_features
        self.stacking = stacking
        self.n_estimators = n_estimators
        self.module = module
        self.hidden_layer_sizes = hidden_layer_sizes
        self.attention_size = attention_size
        self.instance_head_sizes = instance_head_sizes
        self.activation = activation
        self.dropout = dropout
        self.pooling = pooling
        self.weight_init = weight_init
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.optimizer = optimizer
        self.weight_decay = weight_decay
        self.max_grad_norm = max_grad_norm
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

    # ------------------------------------------------------------ validation

    def _check_params(self):
        if self.alpha == 0 and self.beta == 0:
            raise ValueError(
                "alpha and beta cannot both be 0 (the loss would be identically 0); "
                "pass alpha=1.0, beta=0.0 for cross-entropy or alpha=0.0 for a set loss."
            )
        for name in ("hidden_layer_sizes", "instance_head_sizes"):
            sizes = getattr(self, name)
            if not all(
                isinstance(s, numbers.Integral) and not isinstance(s, bool) and s >= 1
                for s in sizes
            ):
                raise ValueError(
                    f"{name} must be a tuple of positive integers, got {sizes!r}."
                )
        if self.embedding == "prototypes":
            conflicts = {
                "module": self.module is not None,
                "n_estimators": self.n_estimators != 1,
                "pooling": self.pooling != "attention",
            }
            for name, conflict in conflicts.items():
                if conflict:
                    raise ValueError(
                        f"{name}={getattr(self, name)!r} configures the instance "
                        "network of embedding='mlp', but embedding='prototypes' (the "
                        "default) builds no such network; pass embedding='mlp' with it."
                    )
        if self.n_estimators > 1 and self.module is not None:
            raise ValueError(
                f"n_estimators={self.n_estimators} trains an ensemble of MLP bodies "
                "in one batched pass and cannot use a user module; pass "
                "module=None (and hidden_layer_sizes) or n_estimators=1."
            )
        if self.n_estimators > 1 and self.pooling != "attention":
            raise ValueError(
                f"pooling={self.pooling!r} is available for one network only, "
                f"got n_estimators={self.n_estimators}; pass n_estimators=1 or "
                "pooling='attention'."
            )
        if self._uses_lbfgs():
            if self.embedding != "prototypes":
                raise ValueError(
                    "optimizer='lbfgs' trains the convex full-batch problem of "
                    "embedding='prototypes'; the network of embedding='mlp' trains "
                    "on batches of bags with a first-order optimizer: pass "
                    "optimizer='auto' (Adam) or embedding='prototypes'."
                )
            for name in ("batch_size", "max_grad_norm"):
                value = getattr(self, name)
                if not (isinstance(value, str) and value == "auto") and value is not None:
                    raise ValueError(
                        f"{name}={value!r} cannot be used with L-BFGS (the default "
                        "optimizer of embedding='prototypes'), which takes all "
                        "training bags at every step and needs the exact gradient "
                        f"for its line search; leave {name}='auto' or pass "
                        "optimizer='adam'."
                    )
            if self.lr_schedule is not None:
                raise ValueError(
                    f"lr_schedule={self.lr_schedule!r} cannot be used with L-BFGS (the "
                    "default optimizer of embedding='prototypes'), whose line search "
                    "sets the step length; pass lr_schedule=None or optimizer='adam'."
                )
        if self.stacking is True:
            if self.embedding != "prototypes" or not self._uses_lbfgs():
                raise ValueError(
                    "stacking=True combines convex prototype models trained by "
                    "L-BFGS; it needs embedding='prototypes' and optimizer='auto' "
                    "(or 'lbfgs'), or pass stacking='auto' or False."
                )
            if self.accelerator is not None:
                raise ValueError(
                    "stacking=True cannot be used with an accelerator (its inner "
                    "cross-validation trains on one process); pass stacking=False."
                )
            chosen = [k for k, v in _SINGLE_MODEL_DEFAULTS.items()
                      if not _same(getattr(self, k), v)]
            if chosen:
                raise ValueError(
                    f"{', '.join(f'{k}={getattr(self, k)!r}' for k in chosen)} "
                    "configures one prototype model, but stacking=True trains "
                    "its own members; pass stacking=False (or 'auto') to "
                    "train the model with these options."
                )
        if self.embedding == "mlp" and self.module is None and len(self.hidden_layer_sizes) == 0:
            raise ValueError(
                "hidden_layer_sizes=() leaves the default backbone without "
                "layers; give at least one width, e.g. (512, 512)."
            )

    def _validate_X(self, X, *, reset):
        bags = _check_bags(X)
        _check_bag_width(bags, self, reset=reset)
        return bags

    def _validate_X_y(self, X, y, reset=True):
        bags = self._validate_X(X, reset=reset)
        y = _check_bag_labels(bags, y)
        if len(bags) < 2:
            raise ValueError(
                f"MILConveyance needs at least 2 bags to fit, got {len(bags)}."
            )
        return bags, y

    def _check_structure(self, y):
        if self.class_structure is not None:
            return check_structure(self.class_structure, y)
        check_classification_targets(y)
        classes = np.unique(y)
        if len(classes) < 2:
            raise ValueError(
                f"y contains a single class ({classes.tolist()[0]!r}); MILConveyance needs "
                "negative and positive bags (two labels in y)."
            )
        if len(classes) > 2:
            raise ValueError(
                "Only binary classification is supported without a class_structure: "
                f"y has {len(classes)} labels ({classes[:5].tolist()}) but the "
                "default structure is the binary MIL assumption. Pass a ClassGraph "
                "over all labels as class_structure for multi-class MIL."
            )
        if self.positive_label is None:
            negative, positive = classes
        else:
            matches = np.array([c == self.positive_label for c in classes.tolist()])
            if not matches.any():
                raise ValueError(
                    f"positive_label={self.positive_label!r} is not one of the "
                    f"labels in y, {classes.tolist()}; pass one of them or None."
                )
            positive = classes[matches][0]
            negative = classes[~matches][0]
        # Q[s, t]: a negative instance may sit in a positive bag, not the reverse.
        return ClassGraph([[True, True], [False, True]], classes=[negative, positive])

    def _take(self, X, indices):
        return [X[i] for i in indices]

    def _make_dataset(self, X, y=None):
        # Training data (with labels) of embedding='prototypes': distances
        # to the prototypes computed once, not at every step.
        if y is not None and self.embedding == "prototypes":
            module = self.__dict__.get("_prototype_module")
            if module is None and hasattr(self, "net_"):
                module = self.net_.module_
            if isinstance(module, PrototypeStackMIL):
                # The features _prepare_module computed, when these are its bags.
                cached = self.__dict__.pop("_stack_training_set", None)
                if cached is not None and len(cached[0]) == len(X) and all(
                    a is b for a, b in zip(cached[0], X)
                ):
                    features, lengths = cached[1], cached[2]
                else:
                    features, lengths = self._member_features(
                        module.members, [np.asarray(b, dtype=np.float32) for b in X])
                return _FeatureBagDataset(lengths, y, features, stacked=True)
            if isinstance(module, PrototypeMIL):
                return _DistanceBagDataset(X, y, module)
        return _BagDataset(X, y)

    # ---------------------------------------------------------------- model

    def _stacks(self):
        """Whether ``fit`` trains the stack of prototype models (``stacking``)."""
        if self.stacking != "auto":
            return bool(self.stacking)
        return (
            self.embedding == "prototypes"
            and self._uses_lbfgs()
            and self.accelerator is None
            and all(_same(getattr(self, k), v) for k, v in _SINGLE_MODEL_DEFAULTS.items())
        )

    def _uses_lbfgs(self):
        """Whether training runs L-BFGS (the default of embedding='prototypes')."""
        optimizer = self.optimizer
        if isinstance(optimizer, str):
            if optimizer == "auto":
                return self.embedding == "prototypes"
            return optimizer == "lbfgs"
        return isinstance(optimizer, type) and issubclass(optimizer, torch.optim.LBFGS)

    def _training_regime(self):
        if self.embedding == "prototypes" and not self._uses_lbfgs():
            return "prototypes-adam"
        return self.embedding

    def _training_value(self, name):
        value = getattr(self, name)
        if isinstance(value, str) and value == "auto":
            value = _AUTO_TRAINING[self._training_regime()][name]
        if name == "optimizer" and isinstance(value, str) and value == "lbfgs":
            return PenalisedLBFGS
        if name == "batch_size" and value is None:
            return -1  # skorch: the whole training set in one batch
        return value

    def _inference_batch_size(self):
        size = self._training_value("batch_size")
        return _PROTOTYPE_INFERENCE_BATCH if size == -1 else size

    def _prepare_module(self, X, y_enc, train_idx, sample_weight):
        """Build the network of ``embedding='prototypes'`` from the training bags.

        The standardisation (the mean and standard deviation of the training
        instances, each weighing as its bag) and the prototypes (the
        distinct training instances, or ``n_prototypes`` of them drawn at
        random) are learned here, before the training set is made, so that
        the training set can hold its distances to the prototypes. A bag of
        weight 2 thus gives the same network as the bag repeated. With
        stacking, the members' features, the inner cross-validation and the
        stacking weights are computed here too.
        """
        self.__dict__.pop("_stack_training_set", None)
        for name in ("stacking_weights_", "stacking_intercept_", "stacking_choice_",
                     "stacking_cv_accuracy_"):
            self.__dict__.pop(name, None)  # from an earlier fit with stacking
        if self.embedding != "prototypes":
            return
        bags = [np.asarray(X[i], dtype=np.float64) for i in train_idx]
        instances = np.concatenate(bags)
        center, scale = _mean_and_std(instances, None if sample_weight is None else np.repeat(
            np.asarray(sample_weight, dtype=np.float64), [len(b) for b in bags]
        ))
        distinct, which = np.unique(instances, axis=0, return_inverse=True)
        chosen = np.arange(len(distinct))
        if len(distinct) > self.n_prototypes:
            # Seeded: _fit runs this under the fit's torch seed.
            chosen = torch.randperm(len(distinct))[: self.n_prototypes].sort().values.numpy()
            distinct = distinct[chosen]
        if self._stacks():
            # The prototype (column) that each training instance is, or -1.
            column = np.full(int(np.max(which)) + 1, -1)
            column[chosen] = np.arange(len(chosen))
            self._prototype_module = self._prepare_stack(
                X, train_idx, y_enc[train_idx], sample_weight, distinct, center, scale,
                column[np.asarray(which).reshape(-1)],
            )
            return
        network = PrototypeMIL(
            distinct,
            n_classes=len(self.classes_),
            center=center,
            scale=scale,
            gamma_scale=self._training_value("gamma_scale"),
            # A fixed width keeps the L-BFGS problem convex.
            learn_gamma=not self._uses_lbfgs(),
            kernel=self.kernel,
            pooling=self.prototype_pooling,
        )
        if self.scale_bag_features:
            self._scale_bag_features(network, bags, sample_weight)
        self._prototype_module = network

    @staticmethod
    def _member_features(members, bags):
        """``[(bag_features, similarities or None)]`` of each member on ``bags``, and the lengths.

        Members with the same kernel share one distance computation (they
        share the prototypes and the standardisation), and members with the
        same features (A and the SVM member D) share them.
        """
        lengths = np.fromiter((len(b) for b in bags), dtype=np.int64, count=len(bags))
        mask = torch.arange(int(lengths.max()))[None, :] >= torch.as_tensor(lengths)[:, None]
        instances = torch.as_tensor(np.concatenate(bags), dtype=torch.float32)
        distances, features, done = {}, [], {}
        for member, options in zip(members, _STACK_MEMBERS):
            # The SVM member D reads A's features: computed once.
            key = (member.kernel, member.pooling, float(member.gamma),
                   options["instance_weight"] > 0)
            if key not in done:
                if member.kernel not in distances:
                    distances[member.kernel] = _chunked_distances(member, instances)
                d = distances[member.kernel]
                similarities = member.similarities(d) if key[3] else None
                done[key] = (member.bag_features(distances=d, padding_mask=mask), similarities)
            features.append(done[key])
        return features, lengths

    def _prepare_stack(self, X, train_idx, y, sample_weight, prototypes, center, scale,
                       column_of_instance):
        """The :class:`PrototypeStackMIL` of the training bags, its weights fitted out of fold.

        ``column_of_instance``: the prototype that each training instance is
        (-1: none), which the inner cross-validation uses to leave out the
        prototypes of its validation bags.
        """
        n_classes = len(self.classes_)
        members = [
            (PrototypeSVMMIL if "svm_C" in options else PrototypeMIL)(
                prototypes, n_classes=n_classes, center=center, scale=scale,
                gamma_scale=options["gamma_scale"], learn_gamma=False,
                kernel=options["kernel"], pooling=options["prototype_pooling"])
            for options in _STACK_MEMBERS
        ]
        bags = [X[i] for i in train_idx]
        features, lengths = self._member_features(
            members, [np.asarray(b, dtype=np.float32) for b in bags]
        )
        weights = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        device = self._resolve_device()
        stack_weights, intercept, seed, choice, scores = self._stack_out_of_fold(
            members, features, lengths, y, weights, column_of_instance, device
        )
        # Each member trained alone on all training bags (L-BFGS converges on
        # one convex problem in far fewer steps than on their sum); the
        # estimator's training of the stack then starts at their optimum.
        members = [
            self._fit_member(member, options, bag_features, similarities, lengths, y, weights,
                             device, seed).train()
            for member, options, (bag_features, similarities)
            in zip(members, _STACK_MEMBERS, features)
        ]
        self.stacking_weights_ = stack_weights.numpy().astype(np.float64)
        self.stacking_intercept_ = intercept.numpy().astype(np.float64)
        self.stacking_choice_ = choice
        self.stacking_cv_accuracy_ = scores
        # The training set of the joint fit, served from these features.
        self._stack_training_set = (bags, features, lengths)
        return PrototypeStackMIL(members, weights=stack_weights, intercept=intercept)

    def _member_criterion(self, options, weighted):
        if "svm_C" in options:
            return None  # fitted by libsvm, not by a loss
        plausible = np.asarray(self.structure_.plausibility_matrix(), dtype=bool)
        loss = MILConveyanceLoss(plausible, alpha=self.alpha, beta=self.beta,
                                 instance_weight=options["instance_weight"])
        return SampleWeightedLoss(loss) if weighted else loss

    def _fit_member(self, network, options, bag_features, similarities, lengths, y, weights,
                    device, seed):
        """Train one stack member on precomputed features; the trained network, on the CPU.

        The SVM member (``svm_C`` in ``options``) is fitted by
        :func:`_fit_svm_member` instead.

        The estimator's training path (its optimizer, ``max_epochs`` and
        penalty, the member's loss) without the user's callbacks, early
        stopping or log. ``bag_features`` are before ``feature_scale``; with
        ``scale_bag_features`` the member's scale is set here, to their
        (weighted) standard deviation.
        """
        if options["scale_bag_features"]:
            _set_feature_scale(network, bag_features, weights)
        if "svm_C" in options:
            return _fit_svm_member(network, bag_features, y, weights, options["svm_C"]).eval()
        dataset = _FeatureBagDataset(lengths, y, [(bag_features, similarities)], stacked=False)
        if weights is not None:
            dataset = WeightedDataset(dataset, weights)
        net = self._make_net(network, self._member_criterion(options, weights is not None),
                             device, None, torch.Generator().manual_seed(seed))
        net.set_params(callbacks=[("nonfinite_guard", NonFiniteLossGuard())], verbose=0)
        net.fit(dataset, None)
        return net.module_.eval().cpu()

    def _stack_out_of_fold(self, members, features, lengths, y, weights, column_of_instance,
                           device):
        """Stacking weights and intercept from out-of-fold member log-probabilities.

        Each member is refitted on the training part of every split of a
        repeated stratified K-fold of the training bags, on its features
        with the prototypes of the validation bags left out, through the
        estimator's training path (L-BFGS, the same loss and penalty; the
        SVM member by libsvm). Then :func:`_stack_or_svm` chooses between
        the stack of the linear members and the SVM member alone. Returns
        the weights, the intercept, the seed of the member fits, the choice
        and the cross-validated accuracies of both. With fewer than two bags
        in a class, no split is possible and every member gets weight ``1 /
        n_members``.
        """
        n_members, n_classes = len(members), len(self.classes_)
        counts = np.bincount(y, minlength=n_classes)
        n_splits = min(_STACK_INNER_SPLITS, int(counts[counts > 0].min()))
        seed = int(torch.randint(np.iinfo(np.int32).max, ()))  # under the fit's seed
        if n_splits < 2 or np.count_nonzero(counts) < 2:
            return (torch.full((n_members,), 1.0 / n_members), torch.zeros(n_classes), seed,
                    "equal weights", {})
        splitter = RepeatedStratifiedKFold(
            n_splits=n_splits, n_repeats=_STACK_INNER_REPEATS, random_state=seed
        )
        n_bags = len(y)
        bag_of_instance = np.repeat(np.arange(n_bags), lengths)
        offsets = torch.as_tensor(np.cumsum(lengths) - lengths)
        out_of_fold = torch.zeros(_STACK_INNER_REPEATS, n_bags, n_members, n_classes,
                                  dtype=torch.float64)
        for split, (inner_train, inner_valid) in enumerate(splitter.split(np.zeros(n_bags), y)):
            repeat = split // n_splits
            # No validation bag may be a prototype of the members it is scored by.
            left_out = column_of_instance[np.isin(bag_of_instance, inner_valid)]
            keep = np.setdiff1d(np.arange(members[0].n_prototypes), left_out)
            if len(keep) == 0:  # every prototype is a validation instance
                prior = np.bincount(y[inner_train], minlength=n_classes) + 1.0
                out_of_fold[repeat, inner_valid] = torch.as_tensor(np.log(prior / prior.sum()))
                continue
            rows = _instance_rows(offsets, torch.as_tensor(lengths), torch.as_tensor(inner_train))
            part = None if weights is None else weights[inner_train]
            for m, (member, options, (bag_features, similarities)) in enumerate(
                zip(members, _STACK_MEMBERS, features)
            ):
                blocks = bag_features.shape[1] // member.n_prototypes
                columns = torch.as_tensor(np.concatenate(
                    [keep + b * member.n_prototypes for b in range(blocks)]
                ))
                network = self._fit_member(
                    member.select_prototypes(keep), options,
                    bag_features[torch.as_tensor(inner_train)][:, columns],
                    None if similarities is None
                    else similarities[rows][:, torch.as_tensor(keep)],
                    lengths[inner_train], y[inner_train], part, device, seed,
                )
                with torch.no_grad():
                    logits = network(
                        bag_features=bag_features[torch.as_tensor(inner_valid)][:, columns],
                        padding_mask=torch.zeros(len(inner_valid), 1, dtype=torch.bool),
                    )[0]
                out_of_fold[repeat, inner_valid, m] = torch.log_softmax(logits.double(), -1)
        stack_weights, intercept, choice, scores = _stack_or_svm(
            out_of_fold, y, weights, n_splits, seed)
        return stack_weights, intercept, seed, choice, scores

    @staticmethod
    def _scale_bag_features(network, bags, sample_weight):
        """Set ``network.feature_scale`` to each bag feature's std over the training bags."""
        lengths = torch.as_tensor([len(b) for b in bags])
        mask = torch.arange(int(lengths.max()))[None, :] >= lengths[:, None]
        instances = torch.as_tensor(np.concatenate(bags), dtype=torch.float32)
        features = network.bag_features(
            distances=_chunked_distances(network, instances), padding_mask=mask
        )
        weights = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        _set_feature_scale(network, features, weights)

    def _make_module(self, n_features, example):
        if self.embedding == "prototypes":
            return self.__dict__.pop("_prototype_module")
        module = self._build_module(n_features, example)
        return glorot_init_(module) if self.weight_init == "glorot" else module

    def _build_module(self, n_features, example):
        options = dict(
            n_classes=len(self.classes_),
            attention_size=self.attention_size,
            instance_head_sizes=tuple(self.instance_head_sizes),
            activation=self.activation,
            dropout=self.dropout,
        )
        if self.n_estimators > 1:
            return GatedAttentionMILEnsemble(
                n_features,
                n_members=self.n_estimators,
                hidden_layer_sizes=tuple(self.hidden_layer_sizes),
                **options,
            )
        options["pooling"] = self.pooling
        if self.module is None:
            return GatedAttentionMIL(
                n_features, hidden_layer_sizes=tuple(self.hidden_layer_sizes), **options
            )
        backbone = reset_parameters(copy.deepcopy(self.module))
        instances = example["bags"][0]
        width = infer_output_width(backbone, instances)
        return GatedAttentionMIL(
            n_features, backbone=backbone, backbone_width=width, **options
        )

    def _make_criterion(self):
        if self._stacks():
            return _MemberLosses([self._member_criterion(o, False) for o in _STACK_MEMBERS])
        plausible = np.asarray(self.structure_.plausibility_matrix(), dtype=bool)
        return MILConveyanceLoss(
            plausible,
            alpha=self.alpha,
            beta=self.beta,
            instance_weight=self.instance_weight,
        )

    def _callbacks(self):
        max_grad_norm = self._training_value("max_grad_norm")
        if max_grad_norm is None:
            return []
        return [("gradient_clipping", _GradientNormClipping(max_grad_norm))]

    def _make_net(self, module, criterion, device, valid_ds, generator):
        net = super()._make_net(module, criterion, device, valid_ds, generator)
        # The fused Adam kernel updates all parameters in one pass; with one
        # bag per step the per-parameter loop of the default implementation
        # would take most of the step time on a CPU.
        if _supports_fused(net.optimizer, device):
            net.set_params(optimizer__fused=True)
        given = self.optimizer_kwargs or {}
        if self._stacks() and "tolerance_grad" not in given:
            # The stack trains 16 convex models per fit: they stop, as
            # sklearn's LogisticRegression (tol=1e-4), once no gradient
            # entry exceeds 1e-4 (same accuracy, a third less time).
            net.set_params(optimizer__tolerance_grad=_STACK_TOLERANCE_GRAD)
        if self._training_value("batch_size") == -1:
            # One batch of all bags per step: its order does not matter, and
            # the stored order lets the training set serve it without a copy.
            net.set_params(iterator_train__shuffle=False)
        return net

    def _batch_outputs(self, output, n_real):
        """Bag logits, and the instance logits and attention of real instances only.

        The base's ``_forward`` runs the fixed-shape inference batches (the
        last one filled up with copies of its first bag, dropped here) and
        concatenates these entries over the batches: instance rows of all
        bags one after the other, padding dropped, in the order of the bags.
        """
        bag_logits, instance_logits, attention, padding_mask = (
            part[:n_real] for part in output[:4]
        )
        valid = ~padding_mask
        return {
            "bag_logits": bag_logits,
            "instance_logits": instance_logits[valid],
            "attention": attention[valid],
        }

    def _forward_result(self, outputs, dataset):
        return ForwardResult(
            logits=outputs["bag_logits"],
            extras={
                "instance_logits": outputs["instance_logits"],
                "attention": outputs["attention"],
                "lengths": dataset.lengths.numpy(),
            },
        )

    # ----------------------------------------------------------- prediction

    def decision_function(self, X):
        """Bag scores: the log-odds of ``classes_[1]`` for two classes.

        With the default structure and ``positive_label=None``, ``classes_[1]``
        is the positive label, so ``roc_auc`` and other threshold scorers
        rank bags by how positive they look.

        Parameters
        ----------
        X : sequence of array-like of shape (n_instances, n_features)
            Bags.

        Returns
        -------
        scores : ndarray of shape (n_bags,) or (n_bags, n_classes), dtype=float32
            ``logit[classes_[1]] - logit[classes_[0]]`` with two classes, the
            bag logits otherwise, in the network's float32 precision.
        """
        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        logits = self._forward(X).logits.float().numpy()
        if logits.shape[1] == 2:
            return logits[:, 1] - logits[:, 0]
        return logits

    def predict_instance_proba(self, X):
        """Instance-head class probabilities, one array per bag.

        Parameters
        ----------
        X : sequence of array-like of shape (n_instances, n_features)
            Bags.

        Returns
        -------
        proba : list of ndarray of shape (n_instances_i, n_classes)
            Row ``k`` of array ``i``: the probabilities of instance ``k`` of
            bag ``i``, columns in ``classes_`` order. Under the MIL default
            the column of the positive label scores how positive an instance
            is.
        """
        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        extras = self._forward(X).extras
        return _split_by_length(
            self._proba_from_logits(extras["instance_logits"]), extras["lengths"]
        )

    def attention_weights(self, X):
        """Attention of the bag head over the instances of each bag.

        Parameters
        ----------
        X : sequence of array-like of shape (n_instances, n_features)
            Bags.

        Returns
        -------
        weights : list of ndarray of shape (n_instances_i,)
            Non-negative weights summing to one per bag (dropout is off at
            prediction).
        """
        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        extras = self._forward(X).extras
        return _split_by_length(extras["attention"].double().numpy(), extras["lengths"])

    # ------------------------------------------------------------------ tags

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # X is a sequence of bags, never a 2-D array: sklearn's common checks
        # do not apply (tests/estimators/test_mil.py has its own suite).
        tags.input_tags.two_d_array = False
        tags.input_tags.three_d_array = True
        tags.input_tags.allow_nan = False
        # More than two labels need a class_structure (the default is binary MIL).
        tags.classifier_tags.multi_class = self.class_structure is not None
        return tags
