"""MILConveyance: multiple-instance classification with the Conveyance instance loss."""

import copy
import inspect
import numbers

import numpy as np
import torch
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted
from skorch.callbacks import Callback

from ._base import ForwardResult, _BaseStructuredClassifier
from ._lbfgs import PenalisedLBFGS
from .losses._mil import MILConveyanceLoss
from .modules._mil import (
    GatedAttentionMIL,
    GatedAttentionMILEnsemble,
    PrototypeMIL,
    glorot_init_,
)
from .modules._mlp import infer_output_width, reset_parameters
from .structures import ClassGraph, check_structure
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

    _CHUNK = 4096  # instances per distance product when the dataset is built

    def __init__(self, bags, y, network):
        super().__init__(bags, y)
        device = network.prototypes.device  # computed where the network is, kept on the CPU
        with torch.no_grad():
            self.distances = torch.cat([
                network.distances(chunk.to(device)).cpu()
                for chunk in self.flat[:-1].split(self._CHUNK)
            ])
        self.flat = None  # the raw instances are not needed any more

    def get_batch(self, indices):
        indices = torch.as_tensor(indices, dtype=torch.int64)
        if len(indices) == len(self) and bool((indices == torch.arange(len(self))).all()):
            rows = slice(None)  # every bag in the stored order: a view, no copy
        else:
            starts, counts = self.offsets[indices], self.lengths[indices]
            within = torch.arange(int(counts.sum())) - torch.repeat_interleave(
                torch.cumsum(counts, 0) - counts, counts
            )
            rows = torch.repeat_interleave(starts, counts) + within
        lengths = self.lengths[indices]
        mask = torch.arange(int(lengths.max()))[None, :] >= lengths[:, None]
        y = self.y[indices] if self.y is not None else torch.zeros(len(indices), dtype=torch.int64)
        return {"distances": self.distances[rows], "padding_mask": mask}, y


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
        total = utils.get_total_norm(grads, foreach=True)
        if not float(total) <= self.max_norm:  # also rescales (to NaN) a non-finite norm
            utils.clip_grads_with_norm_(self.params_, self.max_norm, total, foreach=True)


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

    * ``'prototypes'`` (the default): an instance is represented by its RBF
      similarities to prototype instances of the training bags, in features
      standardised on the training instances, and a bag by the best match
      of each prototype among its instances (the MILES embedding, Chen et
      al. 2006), with an RBF width of half the median heuristic's. The bag
      head and the instance head are the same linear layer, so the
      Conveyance term on the instances trains the bag classifier too
      (:class:`~skstruct.modules.PrototypeMIL`). With the width fixed the
      training loss plus an L2 penalty on the head (``weight_decay=1e-3``)
      is convex in the head, and full-batch L-BFGS solves it to its
      optimum (``optimizer='auto'``: at most 25 epochs of 20 iterations),
      so the fit does not depend on a learning rate or a number of steps;
      the distances of the training instances to the prototypes are
      computed once per fit. ``optimizer='adam'`` trains it as before
      L-BFGS was the default: 600 Adam steps at ``lr=1e-2`` with a learned
      width.
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
        :class:`~skstruct.modules.PrototypeMIL` or the
        :class:`~skstruct.modules.GatedAttentionMIL`.
    n_iter_ : int
        Number of epochs run.
    loss_curve_ : list of float
        Mean training loss per epoch.
    set_threshold_ : float
        Score threshold of ``predict_set``.

    See Also
    --------
    skstruct.modules.PrototypeMIL : The network of ``embedding='prototypes'``.
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
            if isinstance(module, PrototypeMIL):
                return _DistanceBagDataset(X, y, module)
        return _BagDataset(X, y)

    # ---------------------------------------------------------------- model

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

    def _prepare_module(self, X, train_idx, sample_weight):
        """Build the network of ``embedding='prototypes'`` from the training bags.

        The standardisation (the mean and standard deviation of the training
        instances, each weighing as its bag) and the prototypes (the
        distinct training instances, or ``n_prototypes`` of them drawn at
        random) are learned here, before the training set is made, so that
        the training set can hold its distances to the prototypes. A bag of
        weight 2 thus gives the same network as the bag repeated.
        """
        if self.embedding != "prototypes":
            return
        bags = [np.asarray(X[i], dtype=np.float64) for i in train_idx]
        instances = np.concatenate(bags)
        center, scale = _mean_and_std(instances, None if sample_weight is None else np.repeat(
            np.asarray(sample_weight, dtype=np.float64), [len(b) for b in bags]
        ))
        distinct = np.unique(instances, axis=0)
        if len(distinct) > self.n_prototypes:
            # Seeded: _fit runs this under the fit's torch seed.
            chosen = torch.randperm(len(distinct))[: self.n_prototypes].sort().values
            distinct = distinct[chosen.numpy()]
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
    def _scale_bag_features(network, bags, sample_weight):
        """Set ``network.feature_scale`` to each bag feature's std over the training bags."""
        lengths = torch.as_tensor([len(b) for b in bags])
        mask = torch.arange(int(lengths.max()))[None, :] >= lengths[:, None]
        with torch.no_grad():
            instances = torch.as_tensor(np.concatenate(bags), dtype=torch.float32)
            distances = torch.cat([
                network.distances(chunk)
                for chunk in instances.split(_DistanceBagDataset._CHUNK)
            ])
            features = network.bag_features(distances=distances, padding_mask=mask)
        weights = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        _, std = _mean_and_std(features.double().numpy(), weights)
        # A feature (nearly) constant over the bags is left (nearly) as it is.
        network.feature_scale.copy_(torch.as_tensor(np.maximum(std, 1e-3)))

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
