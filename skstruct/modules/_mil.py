"""Gated attention multiple-instance network with a bag head and an instance head."""

import torch
from torch import nn

from ._mlp import MLP, activation_class

__all__ = [
    "GatedAttentionMIL",
    "GatedAttentionMILEnsemble",
    "PrototypeMIL",
    "PrototypeStackMIL",
]


class GatedAttentionMIL(nn.Module):
    """Gated attention MIL network (Ilse et al., 2018) with two heads.

    Every instance goes through a shared body (by default an MLP); a gated
    attention pools the instance features into one bag representation, which
    a linear bag head classifies; an instance head classifies each instance
    from the same features. The network takes a padded batch of bags and a
    mask, so several bags of different sizes share one forward pass; padded
    positions get no attention and no instance logits.

    Parameters
    ----------
    n_features : int
        Number of features of an instance.
    n_classes : int, default=2
        Number of logits of both heads.
    hidden_layer_sizes : tuple of int, default=(512, 512)
        Widths of the shared MLP body (ignored when ``backbone`` is given).
    attention_size : int, default=128
        Width of the gated attention (the ``tanh`` and ``sigmoid`` branches).
    instance_head_sizes : tuple of int, default=(512,)
        Hidden widths of the instance head before its output layer; ``()``
        makes it a single linear layer.
    activation : {'relu', 'gelu', 'tanh', 'elu', 'leaky_relu'}, default='relu'
        Non-linearity of the MLP body and of the instance head.
    dropout : float, default=0.1
        Dropout on the gated attention features (before the attention
        scores), as in the reference implementation of the Conveyance paper;
        with ``pooling='max'``, dropout on the instance features before the
        max (as in MI-Net).
    pooling : {'attention', 'max'}, default='attention'
        How the bag representation is formed from the instance features
        ``h_k``: ``'attention'``, the gated attention mean ``sum_k a_k h_k``;
        ``'max'``, the feature-wise maximum ``max_k h_k`` over the bag's real
        instances (MI-Net, Wang et al. 2018), which has no attention
        parameters (``attention_size`` is then unused).
    backbone : torch.nn.Module or None, default=None
        A user network mapping ``(n_instances, n_features)`` to
        ``(n_instances, backbone_width)``; replaces the MLP body.
    backbone_width : int or None, default=None
        Output width of ``backbone`` (required with it).

    See Also
    --------
    skstruct.MILConveyance : The estimator that trains this network.

    Notes
    -----
    For a bag with instance features ``h_k`` (the body's output), the
    attention score is ``w^T (tanh(V h_k) * sigmoid(U h_k))``, the weights are
    the softmax of the scores over the bag's real instances and the bag
    representation is ``sum_k a_k h_k``. The forward pass is vectorised over
    bags: padded instances are dropped before the body, the attention
    softmax is masked, and nothing loops over bags in Python.

    With ``pooling='max'`` the returned "attention" of instance ``k`` is the
    share of the pooled features that it supplies, ``#{j : k = argmax_i
    h_ij} / width``: it also sums to one over the bag's real instances and
    is zero at padded positions.

    References
    ----------
    .. [1] Ilse, Tomczak and Welling, "Attention-based deep multiple instance
       learning", ICML 2018, arXiv:1802.04712.
    .. [2] Wang, Yan, Tang, Bai and Liu, "Revisiting multiple instance neural
       networks", Pattern Recognition 74 (2018), arXiv:1610.02501.

    Examples
    --------
    >>> import torch
    >>> from skstruct.modules import GatedAttentionMIL
    >>> net = GatedAttentionMIL(4, hidden_layer_sizes=(8,), attention_size=4,
    ...                         instance_head_sizes=()).eval()  # no dropout
    >>> bags = torch.zeros(2, 3, 4)
    >>> padding_mask = torch.tensor([[False, False, True], [False, False, False]])
    >>> bag_logits, instance_logits, attention, _ = net(bags, padding_mask)
    >>> bag_logits.shape, instance_logits.shape
    (torch.Size([2, 2]), torch.Size([2, 3, 2]))
    >>> attention[0]  # no weight on the padded position
    tensor([0.5000, 0.5000, 0.0000], grad_fn=<SelectBackward0>)
    """

    def __init__(
        self,
        n_features,
        n_classes=2,
        *,
        hidden_layer_sizes=(512, 512),
        attention_size=128,
        instance_head_sizes=(512,),
        activation="relu",
        dropout=0.1,
        pooling="attention",
        backbone=None,
        backbone_width=None,
    ):
        super().__init__()
        if pooling not in ("attention", "max"):
            raise ValueError(
                f"pooling must be 'attention' or 'max', got {pooling!r}."
            )
        act = activation_class(activation)
        if backbone is None:
            self.body = MLP(n_features, tuple(hidden_layer_sizes), activation=activation)
            width = self.body.n_outputs
        else:
            if backbone_width is None:
                raise ValueError(
                    "backbone_width is required with a backbone: pass the width "
                    "of the features the backbone returns per instance."
                )
            self.body = backbone
            width = int(backbone_width)
        self.n_features = int(n_features)
        self.n_classes = int(n_classes)
        self.width = width
        self.pooling = pooling
        self.attention_size = int(attention_size)
        if pooling == "attention":
            self.attention_V = nn.Linear(width, self.attention_size)
            self.attention_U = nn.Linear(width, self.attention_size)
            self.attention_dropout = nn.Dropout(dropout)
            self.attention_w = nn.Linear(self.attention_size, 1, bias=False)
        else:
            self.feature_dropout = nn.Dropout(dropout)
        self.bag_head = nn.Linear(width, self.n_classes)
        layers = []
        in_width = width
        for size in instance_head_sizes:
            layers += [nn.Linear(in_width, int(size)), act()]
            in_width = int(size)
        layers.append(nn.Linear(in_width, self.n_classes))
        self.instance_head = nn.Sequential(*layers)

    def extra_repr(self):
        return f"n_features={self.n_features}, n_classes={self.n_classes}, pooling={self.pooling!r}"

    def forward(self, bags, padding_mask=None):
        """Logits of a padded batch of bags.

        Parameters
        ----------
        bags : torch.Tensor of shape (n_bags, n_max, n_features)
            Instances of each bag, padded to the largest bag of the batch.
        padding_mask : torch.Tensor of shape (n_bags, n_max), dtype=bool, default=None
            ``True`` at padded positions (torch's ``key_padding_mask``
            convention); ``None`` means no padding.

        Returns
        -------
        bag_logits : torch.Tensor of shape (n_bags, n_classes)
            Logits of the bag head.
        instance_logits : torch.Tensor of shape (n_bags, n_max, n_classes)
            Logits of the instance head; zero at padded positions.
        attention : torch.Tensor of shape (n_bags, n_max)
            Attention weights: each bag's sum to one over its instances and
            are zero at padded positions.
        padding_mask : torch.Tensor of shape (n_bags, n_max), dtype=bool
            The mask of the batch (all False when ``None`` was passed),
            echoed so that a criterion can average over real instances only.
            The four come as a plain tuple, which skorch can move between
            devices.
        """
        if bags.ndim != 3:
            raise ValueError(
                "bags must have shape (n_bags, n_max, n_features), got shape "
                f"{tuple(bags.shape)}."
            )
        n_bags, n_max, _ = bags.shape
        if self.pooling == "max":
            return self._forward_max(bags, padding_mask)
        if padding_mask is None or not bool(padding_mask.any()):
            # No padding (always the case for one bag per step): a plain
            # reshape, no gather or scatter.
            if padding_mask is None:
                padding_mask = torch.zeros(n_bags, n_max, dtype=torch.bool, device=bags.device)
            hidden = self.body(bags.reshape(n_bags * n_max, -1))
            if n_bags == 1 and hidden.is_contiguous():
                return self._forward_one(hidden, padding_mask)
            hidden = hidden.reshape(n_bags, n_max, -1)
            scores = self._attention_scores(hidden)
            instance_logits = self.instance_head(hidden)
        else:
            # Only real instances go through the body, the attention branches
            # and the instance head; padded positions are filled in after.
            valid = ~padding_mask
            flat_hidden = self.body(bags[valid])
            hidden = self._scatter(flat_hidden, valid, 0.0)
            scores = self._scatter(self._attention_scores(flat_hidden), valid, float("-inf"))
            instance_logits = self._scatter(self.instance_head(flat_hidden), valid, 0.0)
        attention = torch.softmax(scores, dim=1)
        bag_repr = torch.bmm(attention.unsqueeze(1), hidden).squeeze(1)
        return self.bag_head(bag_repr), instance_logits, attention, padding_mask

    def _forward_one(self, hidden, padding_mask):
        """The rest of the forward pass of one bag without padding, in 2-D.

        ``hidden`` (n, width), contiguous: the body's output. The same
        products and elementwise operations as the batch path below (a
        contiguous 3-D ``Linear`` input is flattened to these very ``addmm``
        calls; the pooling stays a ``bmm``), so the same values bit for bit,
        with fewer view, reshape and squeeze nodes for autograd to record and
        walk back at every step of one-bag-per-step training.
        """
        n_max = hidden.shape[0]
        scores = self._attention_scores(hidden)  # (n,)
        instance_logits = self.instance_head(hidden)
        attention = torch.softmax(scores.reshape(1, n_max), dim=1)
        bag_repr = torch.bmm(attention.reshape(1, 1, n_max), hidden.reshape(1, n_max, -1))
        return (
            self.bag_head(bag_repr.reshape(1, -1)),
            instance_logits.reshape(1, n_max, -1),
            attention,
            padding_mask,
        )

    def _forward_max(self, bags, padding_mask):
        """MI-Net pooling: the feature-wise max of the (dropped-out) instance features."""
        n_bags, n_max, _ = bags.shape
        if padding_mask is None:
            padding_mask = torch.zeros(n_bags, n_max, dtype=torch.bool, device=bags.device)
        valid = ~padding_mask
        flat_hidden = self.feature_dropout(self.body(bags[valid]))
        hidden = self._scatter(flat_hidden, valid, float("-inf"))
        bag_repr, winner = hidden.max(dim=1)  # (n_bags, width): value and instance index
        instance_logits = self._scatter(self.instance_head(flat_hidden), valid, 0.0)
        # Share of the pooled features each instance supplies (sums to one per bag).
        share = torch.zeros(n_bags, n_max, dtype=bag_repr.dtype, device=bags.device)
        share = share.scatter_add_(1, winner, torch.ones_like(bag_repr)) / bag_repr.shape[1]
        return self.bag_head(bag_repr), instance_logits, share, padding_mask

    @staticmethod
    def _scatter(flat, valid, fill):
        """Rows of ``flat`` (one per real instance) into a padded ``(n_bags, n_max, ...)`` tensor."""
        out = flat.new_full((*valid.shape, *flat.shape[1:]), fill)
        mask = valid.reshape(*valid.shape, *([1] * (flat.ndim - 1)))
        return out.masked_scatter(mask, flat)

    def _attention_scores(self, hidden):
        """Gated attention scores ``w^T (tanh(V h) * sigmoid(U h))``, shape ``hidden.shape[:-1]``."""
        gated = torch.tanh(self.attention_V(hidden)) * torch.sigmoid(self.attention_U(hidden))
        return self.attention_w(self.attention_dropout(gated)).squeeze(-1)


def _real_instances(bags, padding_mask):
    """``(instances, padding_mask)``: the real instances of a padded batch, bag after bag.

    ``padding_mask=None`` means no padding (an all-False mask is returned).
    """
    if bags.ndim != 3:
        raise ValueError(
            f"bags must have shape (n_bags, n_max, n_features), got shape {tuple(bags.shape)}."
        )
    n_bags, n_max, _ = bags.shape
    if padding_mask is None:
        padding_mask = torch.zeros(n_bags, n_max, dtype=torch.bool, device=bags.device)
    valid = ~padding_mask
    instances = bags.reshape(n_bags * n_max, -1) if bool(valid.all()) else bags[valid]
    return instances, padding_mask


class _RBFLinear(torch.autograd.Function):
    """``exp(-gamma * d2) @ weight.T + bias`` with a hand-written backward.

    With ``S = exp(-gamma D)`` (``D`` the distances, which need no
    gradient) and ``out = S W^T + b``::

        d out_ic / d W_cj  = S_ij
        d out_ic / d b_c   = 1
        d out_ic / d gamma = sum_j W_cj (-D_ij S_ij) = -((S * D) W^T)_ic

    so, for the incoming gradient ``G``, ``grad_W = G^T S``, ``grad_b =
    sum_i G_i`` and ``grad_gamma = -sum_ic G_ic T_ic`` with ``T = (S * D)
    W^T``, a product with the few output columns formed in the forward.
    Autograd would keep ``D``, ``S`` and ``-gamma D`` and take several more
    passes over the ``(instances, prototypes)`` matrix in the backward; this
    keeps ``S`` and the thin ``T`` only.
    """

    @staticmethod
    def forward(ctx, d2, gamma, weight, bias):
        s = torch.mul(d2, -gamma).exp_()
        out = torch.addmm(bias, s, weight.T)
        t = torch.mul(s, d2) @ weight.T if ctx.needs_input_grad[1] else None
        ctx.save_for_backward(s, t)
        return out

    @staticmethod
    def backward(ctx, grad):
        s, t = ctx.saved_tensors
        grad_gamma = -(grad * t).sum() if ctx.needs_input_grad[1] else None
        grad_weight = grad.T @ s if ctx.needs_input_grad[2] else None
        grad_bias = grad.sum(0) if ctx.needs_input_grad[3] else None
        return None, grad_gamma, grad_weight, grad_bias


class PrototypeMIL(nn.Module):
    """MIL network on the similarities of instances to prototype instances.

    Every instance ``x`` is standardised, ``z = (x - center) / scale``, and
    represented by its similarities to ``K`` prototypes ``p_j`` (instances of
    the training bags, standardised the same way)::

        s_j(x) = exp(-gamma * d(z, p_j))

    with ``d`` the squared Euclidean distance (``kernel='rbf'``) or the L1
    distance (``kernel='laplacian'``, as in
    :func:`sklearn.metrics.pairwise.laplacian_kernel`). A bag is represented
    by the best match of each prototype among its instances, ``f_j = max_k
    s_j(x_k)`` (the embedding of MILES, Chen, Bi and Wang 2006), and with
    ``pooling='max+mean'`` also by each prototype's mean similarity over the
    bag, ``m_j = mean_k s_j(x_k)``. One linear layer ``W (f / c) + b`` gives
    the bag logits, where ``c`` is the buffer ``feature_scale`` (ones unless
    set, e.g. to the standard deviation of each bag feature over the
    training bags). The same layer applied to an instance's own similarities
    (the features of a bag of that instance alone), gives the instance
    logits, so a loss on the instances (the Conveyance term of
    :class:`~skstruct.MILConveyance`) trains the bag classifier too.
    ``gamma`` starts at ``gamma_scale / median d(p_i, p_j)`` and is learned
    on a log scale around it, or kept fixed (``learn_gamma=False``), which
    makes a loss that is convex in the logits convex in the network's
    parameters.

    Parameters
    ----------
    prototypes : array-like or torch.Tensor of shape (n_prototypes, n_features)
        Prototype instances, in the raw feature space of the bags.
    n_classes : int, default=2
        Number of logits of the bag and instance outputs.
    center : array-like or torch.Tensor of shape (n_features,) or None, default=None
        Feature means subtracted before the distances (``None``: zeros).
    scale : array-like or torch.Tensor of shape (n_features,) or None, default=None
        Feature scales dividing the centred features (``None``: ones); zeros
        are treated as ones.
    gamma : float or None, default=None
        Initial RBF width in the standardised space; ``None`` is the median
        heuristic, one over the median squared distance between two
        prototypes.
    gamma_scale : float, default=1.0
        Factor on the initial ``gamma`` (below 1: a wider kernel).
    learn_gamma : bool, default=True
        Learn ``gamma`` (a parameter ``log_gamma``) or keep it fixed (a
        buffer).
    kernel : {'rbf', 'laplacian'}, default='rbf'
        The similarity, ``exp(-gamma ||z - p||^2)`` or ``exp(-gamma ||z -
        p||_1)``.
    pooling : {'max', 'max+mean'}, default='max'
        The bag features: each prototype's best match (``K`` features), or
        its best match and its mean similarity over the bag (``2 K``).

    Attributes
    ----------
    gamma : torch.Tensor
        The current kernel width (a scalar, ``exp`` of the log-width).
    feature_scale : torch.Tensor of shape (n_bag_features,)
        Divides the bag features (and an instance's features) before the
        linear layer; ones at construction. Setting it to the standard
        deviation of :meth:`bag_features` over the training bags makes an
        L2 penalty on the layer's weights act on standardised features.

    See Also
    --------
    GatedAttentionMIL : The gated attention network (``embedding='mlp'``).
    skstruct.MILConveyance : The estimator that builds and trains this network.

    Notes
    -----
    Since ``exp(-gamma d)`` decreases in ``d``, the bag feature is
    ``f_j = exp(-gamma * min_k d(z_k, p_j))``: the minimum over the bag
    is taken on the distances, which need no gradient (prototypes and
    standardisation are fixed), and the gradient reaches ``gamma`` and the
    linear layer only. The distances are computed in float32 even under
    autocast. The returned "attention" of instance ``k`` is the share of the
    ``K`` best-match features it supplies (the instance nearest to each
    prototype), as for the max pooling of :class:`GatedAttentionMIL`.

    References
    ----------
    .. [1] Chen, Bi and Wang, "MILES: Multiple-instance learning via embedded
       instance selection", IEEE TPAMI 28(12), 2006.

    Examples
    --------
    >>> import torch
    >>> from skstruct.modules import PrototypeMIL
    >>> net = PrototypeMIL(torch.randn(6, 3))
    >>> bags = torch.randn(2, 4, 3)
    >>> padding_mask = torch.tensor([[False, False, True, True], [False] * 4])
    >>> bag_logits, instance_logits, attention, _ = net.eval()(bags, padding_mask)
    >>> bag_logits.shape, instance_logits.shape
    (torch.Size([2, 2]), torch.Size([2, 4, 2]))
    >>> attention.sum(1)
    tensor([1., 1.])
    """

    def __init__(
        self,
        prototypes,
        n_classes=2,
        *,
        center=None,
        scale=None,
        gamma=None,
        gamma_scale=1.0,
        learn_gamma=True,
        kernel="rbf",
        pooling="max",
    ):
        super().__init__()
        if kernel not in ("rbf", "laplacian"):
            raise ValueError(f"kernel must be 'rbf' or 'laplacian', got {kernel!r}.")
        if pooling not in ("max", "max+mean"):
            raise ValueError(f"pooling must be 'max' or 'max+mean', got {pooling!r}.")
        self.kernel, self.pooling = kernel, pooling
        prototypes = torch.as_tensor(prototypes, dtype=torch.float32)
        if prototypes.ndim != 2 or prototypes.shape[0] < 1:
            raise ValueError(
                "prototypes must be a non-empty (n_prototypes, n_features) array, "
                f"got shape {tuple(prototypes.shape)}."
            )
        n_features = prototypes.shape[1]
        center = torch.zeros(n_features) if center is None else torch.as_tensor(center)
        scale = torch.ones(n_features) if scale is None else torch.as_tensor(scale)
        scale = scale.to(torch.float32)
        scale = torch.where(scale > 0, scale, torch.ones_like(scale))
        self.n_features, self.n_classes = int(n_features), int(n_classes)
        self.n_prototypes = int(prototypes.shape[0])
        self.register_buffer("center", center.to(torch.float32).reshape(-1).clone())
        self.register_buffer("scale", scale.reshape(-1).clone())
        standardised = (prototypes - self.center) / self.scale
        self.register_buffer("prototypes", standardised)
        self.register_buffer("prototype_sq_norms", standardised.square().sum(1))
        if gamma is None:
            if self.n_prototypes > 1:
                between = torch.pdist(standardised, p=1 if kernel == "laplacian" else 2)
                median = (between if kernel == "laplacian" else between.square()).median()
            else:
                median = torch.tensor(1.0)
            gamma = 1.0 / float(median) if float(median) > 0 else 1.0  # lower median
        if not gamma > 0:
            raise ValueError(f"gamma must be positive, got {gamma!r}.")
        if not gamma_scale > 0:
            raise ValueError(f"gamma_scale must be positive, got {gamma_scale!r}.")
        gamma = gamma * gamma_scale
        # gamma = exp(log_gamma_init + log_gamma): weight decay on log_gamma
        # pulls the width towards its initial value, not towards 1.
        self.register_buffer("log_gamma_init", torch.tensor(float(gamma)).log())
        if learn_gamma:
            self.log_gamma = nn.Parameter(torch.zeros(()))
        else:
            self.register_buffer("log_gamma", torch.zeros(()))
        n_bag_features = self.n_prototypes * (2 if pooling == "max+mean" else 1)
        self.register_buffer("feature_scale", torch.ones(n_bag_features))
        self.head = nn.Linear(n_bag_features, self.n_classes)
        self.reset_parameters()

    def reset_parameters(self):
        """The initial state: the median-heuristic width and a zero linear layer."""
        with torch.no_grad():
            self.log_gamma.zero_()
            self.head.weight.zero_()
            self.head.bias.zero_()

    @property
    def gamma(self):
        return (self.log_gamma_init + self.log_gamma).exp()

    def extra_repr(self):
        return (
            f"n_features={self.n_features}, n_prototypes={self.n_prototypes}, "
            f"n_classes={self.n_classes}, kernel={self.kernel!r}, pooling={self.pooling!r}"
        )

    def distances(self, instances):
        """Distances of instances to the prototypes, in the standardised space.

        Parameters
        ----------
        instances : torch.Tensor of shape (n_instances, n_features)
            Instances in the raw feature space.

        Returns
        -------
        distances : torch.Tensor of shape (n_instances, n_prototypes)
            ``||(x - center) / scale - p_j||^2`` (``kernel='rbf'``, clipped
            at 0) or ``||(x - center) / scale - p_j||_1``
            (``kernel='laplacian'``), float32.
        """
        with torch.autocast(device_type=instances.device.type, enabled=False):
            z = (instances.float() - self.center) / self.scale
            if self.kernel == "laplacian":
                return torch.cdist(z, self.prototypes, p=1)
            d2 = z.square().sum(1, keepdim=True) + self.prototype_sq_norms - 2.0 * (
                z @ self.prototypes.T
            )
            return d2.clamp_min_(0.0)

    def _batch_distances(self, bags, padding_mask, distances):
        """``(distances, padding_mask, bag_of, nearest)`` of a padded batch or of given distances.

        ``bag_of`` is the bag of each real instance (bag after bag) and
        ``nearest`` each bag's smallest distance to each prototype.
        """
        if (bags is None) == (distances is None):
            raise ValueError("Pass exactly one of bags and distances.")
        if distances is None:
            instances, padding_mask = _real_instances(bags, padding_mask)
            n_bags, valid = padding_mask.shape[0], ~padding_mask
            d = self.distances(instances)  # no gradient: inputs and buffers are fixed
        else:
            if padding_mask is None:
                raise ValueError("distances needs the padding_mask of its bags.")
            n_bags = padding_mask.shape[0]
            valid = ~padding_mask
            d = distances.float()
        bag_of = valid.nonzero()[:, 0]  # row-major: the instances bag after bag
        if d.shape != (len(bag_of), self.n_prototypes):
            raise ValueError(
                f"distances must have shape ({len(bag_of)}, {self.n_prototypes}) "
                f"for this padding_mask, got {tuple(d.shape)}."
            )
        nearest = d.new_full((n_bags, self.n_prototypes), float("inf"))
        nearest = nearest.scatter_reduce(0, bag_of[:, None].expand_as(d), d, "amin")
        return d, padding_mask, bag_of, nearest

    def bag_features(self, bags=None, padding_mask=None, distances=None):
        """The bag features before ``feature_scale``: best matches (and mean similarities).

        Takes the batch as :meth:`forward` does.

        Returns
        -------
        features : torch.Tensor of shape (n_bags, n_bag_features)
            ``f`` (and ``m`` with ``pooling='max+mean'``), float32.
        """
        with torch.no_grad():
            d, padding_mask, bag_of, nearest = self._batch_distances(
                bags, padding_mask, distances
            )
            # the mean similarities only with 'max+mean' (an exp per instance and prototype)
            similarities = self.similarities(d) if self.pooling == "max+mean" else None
            return self._pool(similarities, padding_mask, bag_of, nearest)

    def _pool(self, similarities, padding_mask, bag_of, nearest):
        """:meth:`bag_features` from a batch's similarities and nearest distances.

        ``similarities`` is read only with ``pooling='max+mean'`` (``None`` otherwise).
        """
        features = [torch.exp(-self.gamma * nearest)]
        if self.pooling == "max+mean":
            total = torch.zeros_like(nearest).index_add_(0, bag_of, similarities)
            features.append(total / (~padding_mask).sum(1, keepdim=True).to(total.dtype))
        return torch.cat(features, 1)

    def similarities(self, distances):
        """``exp(-gamma * distances)``: the instances' similarities to the prototypes.

        Parameters
        ----------
        distances : torch.Tensor of shape (n_instances, n_prototypes)
            :meth:`distances` of some instances.

        Returns
        -------
        similarities : torch.Tensor of shape (n_instances, n_prototypes)
            Float32, without gradient.
        """
        with torch.no_grad():
            return torch.exp(-self.gamma * distances.float())

    def select_prototypes(self, columns):
        """A copy of this network with the prototypes ``columns`` only.

        The standardisation and the kernel width are this network's (the
        width is kept fixed), the linear layer starts at zero and
        ``feature_scale`` keeps the entries of the kept features.
        :class:`~skstruct.MILConveyance` fits such copies inside its inner
        cross-validation, where the prototypes that come from a validation
        bag must be left out.

        Parameters
        ----------
        columns : array-like of int
            Indices of the prototypes to keep, in the order to keep them.

        Returns
        -------
        network : PrototypeMIL
            A new network of this network's class; this one is not changed
            (a :class:`PrototypeSVMMIL` copy holds no support vectors).
        """
        columns = torch.as_tensor(columns, dtype=torch.long).reshape(-1)
        if len(columns) == 0:
            raise ValueError("columns must keep at least one prototype.")
        copy = type(self)(
            self.prototypes[columns] * self.scale + self.center,
            n_classes=self.n_classes,
            center=self.center,
            scale=self.scale,
            gamma=float(self.gamma),
            learn_gamma=False,
            kernel=self.kernel,
            pooling=self.pooling,
        )
        with torch.no_grad():
            copy.prototypes.copy_(self.prototypes[columns])  # exactly, not re-standardised
            copy.prototype_sq_norms.copy_(self.prototype_sq_norms[columns])
            blocks = 2 if self.pooling == "max+mean" else 1
            kept = torch.cat([columns + b * self.n_prototypes for b in range(blocks)])
            copy.feature_scale.copy_(self.feature_scale[kept])
        return copy

    def _forward_features(self, bag_features, similarities, padding_mask):
        """The training forward on precomputed :meth:`bag_features` and :meth:`similarities`."""
        if isinstance(self.log_gamma, nn.Parameter):
            raise ValueError(
                "bag_features= needs a fixed kernel width (learn_gamma=False): "
                "features computed before training would not follow a learned width."
            )
        if padding_mask is None:
            raise ValueError("bag_features needs the padding_mask of its bags.")
        weight = self.head.weight / self.feature_scale  # W (f / c) = (W / c) f
        bias = self.head.bias
        bag_logits = nn.functional.linear(bag_features.float(), weight, bias)
        instance_logits = None
        if similarities is not None:
            if self.pooling == "max+mean":  # an instance alone: max and mean are s
                k = self.n_prototypes
                weight = weight[:, :k] + weight[:, k:]
            flat = nn.functional.linear(similarities.float(), weight, bias)
            instance_logits = GatedAttentionMIL._scatter(flat, ~padding_mask, 0.0)
        return bag_logits, instance_logits, None, padding_mask

    def forward(
        self, bags=None, padding_mask=None, distances=None, *, bag_features=None,
        similarities=None,
    ):
        """Bag logits, instance logits, instance shares and the mask of a padded batch.

        Parameters
        ----------
        bags : torch.Tensor of shape (n_bags, n_max, n_features) or None
            Instances of each bag, padded to the largest bag of the batch.
        padding_mask : torch.Tensor of shape (n_bags, n_max), dtype=bool, default=None
            ``True`` at padded positions; ``None`` means no padding (required
            with ``distances``).
        distances : torch.Tensor of shape (n_instances, n_prototypes) or None
            Instead of ``bags``: :meth:`distances` of the batch's real
            instances, bag after bag (what a training set whose distances
            were computed once passes at every step).
        bag_features : torch.Tensor of shape (n_bags, n_bag_features) or None
            Instead of ``bags`` or ``distances``, with a fixed width only:
            the batch's :meth:`bag_features` (before ``feature_scale``), for
            training on features computed once. The attention is then
            ``None``.
        similarities : torch.Tensor of shape (n_instances, n_prototypes) or None
            With ``bag_features``: the :meth:`similarities` of the batch's
            real instances, bag after bag; ``None`` returns ``None`` as the
            instance logits (enough for a loss without the instance term).

        Returns
        -------
        bag_logits : torch.Tensor of shape (n_bags, n_classes)
        instance_logits : torch.Tensor of shape (n_bags, n_max, n_classes)
            Zero at padded positions.
        attention : torch.Tensor of shape (n_bags, n_max) or None
            Each instance's share of the bag features, summing to one per
            bag; ``None`` in training mode, where no loss uses it.
        padding_mask : torch.Tensor of shape (n_bags, n_max), dtype=bool
            The mask of the batch (all False when ``None`` was passed).
        """
        if bag_features is not None:
            if bags is not None or distances is not None:
                raise ValueError("Pass exactly one of bags, distances and bag_features.")
            return self._forward_features(bag_features, similarities, padding_mask)
        if similarities is not None:
            raise ValueError("similarities needs bag_features.")
        return self._forward_distances(
            *self._batch_distances(bags, padding_mask, distances))

    def _forward_distances(self, d, padding_mask, bag_of, nearest):
        """The forward on a batch's distances (see :meth:`_batch_distances`)."""
        valid, n_bags = ~padding_mask, padding_mask.shape[0]
        gamma, bias = self.gamma, self.head.bias
        weight = self.head.weight / self.feature_scale  # W (f / c) = (W / c) f
        if self.pooling == "max":
            bag_logits = _RBFLinear.apply(nearest, gamma, weight, bias)
            flat_instance_logits = _RBFLinear.apply(d, gamma, weight, bias)
        else:
            # An instance alone is a bag whose best match and mean similarity
            # are both its own similarity s, so its logits are (W_max + W_mean) s
            # + b; one pass over the distances gives them and the per-instance
            # terms W_mean s whose bag means are the mean-pooling part.
            k, c = self.n_prototypes, self.n_classes
            on_max, on_mean = weight[:, :k], weight[:, k:]
            both = _RBFLinear.apply(
                d, gamma, torch.cat([on_max + on_mean, on_mean]),
                torch.cat([bias, torch.zeros_like(bias)]),
            )
            flat_instance_logits = both[:, :c]
            mean_part = both.new_zeros(n_bags, c).index_add_(0, bag_of, both[:, c:])
            counts = valid.sum(1, keepdim=True).to(mean_part.dtype)
            bag_logits = _RBFLinear.apply(nearest, gamma, on_max, bias) + mean_part / counts
        instance_logits = GatedAttentionMIL._scatter(flat_instance_logits, valid, 0.0)
        attention = None
        if not self.training:
            attention = self._attention(d, nearest, bag_of, valid, bag_logits.dtype)
        return bag_logits, instance_logits, attention, padding_mask

    @staticmethod
    def _attention(d, nearest, bag_of, valid, dtype):
        """Each instance's share of its bag's best-match features (ties shared)."""
        wins = (d == nearest[bag_of]).sum(1).to(dtype)
        per_bag = wins.new_zeros(valid.shape[0]).index_add_(0, bag_of, wins)
        return GatedAttentionMIL._scatter(wins / per_bag[bag_of], valid, 0.0)


class PrototypeSVMMIL(PrototypeMIL):
    """MILES bag features classified by an RBF-kernel support vector machine.

    The bag features are those of :class:`PrototypeMIL` (each prototype's
    best match, and with ``pooling='max+mean'`` its mean similarity),
    divided by ``feature_scale``: ``u = f / c``. Instead of a linear layer,
    the scores are the decision functions of support vector machines with
    the RBF kernel on ``u``::

        score_k(u) = sum_i a_ik exp(-svm_gamma ||u - u_i||^2) + b_k

    over the support vectors ``u_i`` (``support``), with dual coefficients
    ``a_ik`` (``dual_coef``, the labels' signs included) and intercepts
    ``b_k`` (``svm_intercept``). With two classes one machine separates
    them and the logits are ``(-score / 2, score / 2)``, so that
    ``softmax`` gives ``sigmoid(score)`` to the second class; with more,
    one machine per class (one-vs-rest) gives that class's logit. An
    instance alone is a bag whose features are its own similarities, so
    the same machines score the instances. :meth:`forward` takes and
    returns what :meth:`PrototypeMIL.forward` does.

    The machines are not trained by gradients: the network has no
    parameters, and :meth:`set_svm` stores what a solver found (as
    :class:`~skstruct.MILConveyance` does with :class:`sklearn.svm.SVC`).
    Until then every logit is zero.

    Parameters
    ----------
    prototypes : array-like or torch.Tensor of shape (n_prototypes, n_features)
        Prototype instances, in the raw feature space of the bags.
    n_classes : int, default=2
        Number of logits of the bag and instance outputs.
    center : array-like or torch.Tensor of shape (n_features,) or None, default=None
        Feature means subtracted before the distances (``None``: zeros).
    scale : array-like or torch.Tensor of shape (n_features,) or None, default=None
        Feature scales dividing the centred features (``None``: ones).
    gamma : float or None, default=None
        Width of the prototype kernel (``None``: the median heuristic), as
        for :class:`PrototypeMIL`.
    gamma_scale : float, default=1.0
        Factor on ``gamma``.
    learn_gamma : False, default=False
        The width of the prototype kernel is fixed: the machines are fitted
        on features computed once.
    kernel : {'rbf', 'laplacian'}, default='rbf'
        The similarity to the prototypes, as for :class:`PrototypeMIL`.
    pooling : {'max', 'max+mean'}, default='max'
        The bag features, as for :class:`PrototypeMIL`.

    Attributes
    ----------
    support : torch.Tensor of shape (n_support, n_bag_features)
        The support vectors, scaled bag features ``u_i``.
    dual_coef : torch.Tensor of shape (n_support, n_machines)
        Dual coefficients ``a_ik`` (one column per machine, zero where a
        vector supports another machine only).
    svm_intercept : torch.Tensor of shape (n_machines,)
    svm_gamma : torch.Tensor
        The width of the kernel on the bag features (a scalar).

    See Also
    --------
    PrototypeMIL : The same features with a linear layer.
    PrototypeStackMIL : Stacks this network with :class:`PrototypeMIL` members.

    Examples
    --------
    >>> import torch
    >>> from skstruct.modules import PrototypeSVMMIL
    >>> net = PrototypeSVMMIL(torch.randn(6, 3)).eval()
    >>> net.set_svm(support=torch.randn(2, 6), dual_coef=[[1.0], [-1.0]],
    ...             intercept=[0.5], gamma=0.1)
    >>> bag_logits, instance_logits, attention, _ = net(torch.randn(2, 4, 3))
    >>> bag_logits.shape, instance_logits.shape
    (torch.Size([2, 2]), torch.Size([2, 4, 2]))
    """

    def __init__(
        self,
        prototypes,
        n_classes=2,
        *,
        center=None,
        scale=None,
        gamma=None,
        gamma_scale=1.0,
        learn_gamma=False,
        kernel="rbf",
        pooling="max",
    ):
        if learn_gamma:
            raise ValueError(
                "PrototypeSVMMIL needs learn_gamma=False: its machines are fitted on "
                "bag features computed with a fixed width."
            )
        super().__init__(prototypes, n_classes, center=center, scale=scale, gamma=gamma,
                         gamma_scale=gamma_scale, learn_gamma=False, kernel=kernel,
                         pooling=pooling)
        del self.head  # the machines replace the linear layer
        n_machines = 1 if self.n_classes == 2 else self.n_classes
        self.register_buffer("support", torch.zeros(0, self.feature_scale.numel()))
        self.register_buffer("dual_coef", torch.zeros(0, n_machines))
        self.register_buffer("svm_intercept", torch.zeros(n_machines))
        self.register_buffer("svm_gamma", torch.tensor(1.0))

    def reset_parameters(self):
        """No support vectors: every logit zero (the prototypes' width is kept)."""
        if hasattr(self, "dual_coef"):
            self.set_svm(self.support[:0], self.dual_coef[:0], torch.zeros_like(
                self.svm_intercept), 1.0)

    def set_svm(self, support, dual_coef, intercept, gamma):
        """Store the machines: support vectors, dual coefficients, intercepts, width.

        Parameters
        ----------
        support : array-like of shape (n_support, n_bag_features)
            Support vectors in the scaled feature space (bag features
            divided by ``feature_scale``).
        dual_coef : array-like of shape (n_support, n_machines)
            Signed dual coefficients; ``n_machines`` is 1 for two classes,
            else ``n_classes``.
        intercept : array-like of shape (n_machines,)
            The machines' intercepts.
        gamma : float
            Positive width of the RBF kernel on the scaled features.
        """
        n_machines = self.svm_intercept.numel()
        device = self.feature_scale.device
        support = torch.as_tensor(support, dtype=torch.float32, device=device).reshape(
            -1, self.feature_scale.numel())
        dual_coef = torch.as_tensor(dual_coef, dtype=torch.float32, device=device).reshape(
            len(support), n_machines)
        intercept = torch.as_tensor(intercept, dtype=torch.float32, device=device).reshape(
            n_machines)
        if not float(gamma) > 0:
            raise ValueError(f"gamma must be positive, got {gamma!r}.")
        self.support = support.clone()
        self.dual_coef = dual_coef.clone()
        self.svm_intercept = intercept.clone()
        self.svm_gamma = torch.tensor(float(gamma), device=device)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # The number of support vectors is the fit's: take the stored shapes.
        for name in ("support", "dual_coef"):
            if prefix + name in state_dict:
                setattr(self, name, torch.empty_like(state_dict[prefix + name],
                                                     device=self.feature_scale.device))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def _scores(self, features):
        """Logits of rows of bag features (before ``feature_scale``)."""
        with torch.autocast(device_type=features.device.type, enabled=False):
            u = features.float() / self.feature_scale
            d2 = (u.square().sum(1, keepdim=True) + self.support.square().sum(1)
                  - 2.0 * u @ self.support.T).clamp_min_(0.0)
            score = torch.exp(-self.svm_gamma * d2) @ self.dual_coef + self.svm_intercept
        if self.n_classes == 2:
            return torch.cat([-0.5 * score, 0.5 * score], 1)
        return score

    def _instance_features(self, similarities):
        """The bag features of each instance alone: its similarities, once per block."""
        return similarities.repeat(1, self.feature_scale.numel() // self.n_prototypes)

    def _forward_features(self, bag_features, similarities, padding_mask):
        if padding_mask is None:
            raise ValueError("bag_features needs the padding_mask of its bags.")
        instance_logits = None
        if similarities is not None:
            flat = self._scores(self._instance_features(similarities))
            instance_logits = GatedAttentionMIL._scatter(flat, ~padding_mask, 0.0)
        return self._scores(bag_features), instance_logits, None, padding_mask

    def _forward_distances(self, d, padding_mask, bag_of, nearest):
        valid = ~padding_mask
        similarities = self.similarities(d)
        bag_logits = self._scores(self._pool(similarities, padding_mask, bag_of, nearest))
        instance_logits = GatedAttentionMIL._scatter(
            self._scores(self._instance_features(similarities)), valid, 0.0)
        attention = None
        if not self.training:
            attention = self._attention(d, nearest, bag_of, valid, bag_logits.dtype)
        return bag_logits, instance_logits, attention, padding_mask


class PrototypeStackMIL(nn.Module):
    """Prototype networks combined by a non-negative stacking layer.

    Each member is a :class:`PrototypeMIL` (or a :class:`PrototypeSVMMIL`)
    over the same prototypes and standardisation (each with its own kernel,
    width, pooling and feature scale). The stacked logits of a bag (and of an instance) are::

        sum_m w_m log_softmax(z_m) + b,   w_m >= 0

    a logistic regression on the members' log-probabilities with
    non-negative weights ``w`` (``stack_weights``) and an intercept ``b``
    (``stack_intercept``), both buffers: the members are trained, each on
    its own loss, and the combination is fitted elsewhere (by
    :class:`~skstruct.MILConveyance`, on out-of-fold predictions). For two
    classes, ``log_softmax`` differences are the members' log-odds, so the
    stacked log-odds are ``sum_m w_m logit_m + (b_1 - b_0)``.

    Parameters
    ----------
    members : sequence of PrototypeMIL
        The member networks, with the same number of classes.
    weights : array-like of shape (n_members,) or None, default=None
        Non-negative stacking weights; ``None``: ``1 / n_members`` each.
    intercept : array-like of shape (n_classes,) or None, default=None
        The stacking intercept; ``None``: zeros.

    See Also
    --------
    PrototypeMIL : One member.

    Notes
    -----
    ``forward`` returns the four outputs of :class:`PrototypeMIL` for the
    stack (the attention is the members' attention averaged with weights
    ``w``), followed by the tuple of the members' own outputs, which the
    training loss of :class:`~skstruct.MILConveyance` uses. Members that
    share a kernel share one distance computation.

    Examples
    --------
    >>> import torch
    >>> from skstruct.modules import PrototypeMIL, PrototypeStackMIL
    >>> prototypes = torch.randn(6, 3)
    >>> members = [PrototypeMIL(prototypes), PrototypeMIL(prototypes, kernel="laplacian")]
    >>> net = PrototypeStackMIL(members, weights=[1.0, 0.5]).eval()
    >>> bag_logits, instance_logits, attention, _, per_member = net(torch.randn(2, 4, 3))
    >>> bag_logits.shape, len(per_member)
    (torch.Size([2, 2]), 2)
    """

    def __init__(self, members, weights=None, intercept=None):
        super().__init__()
        members = list(members)
        if not members or not all(isinstance(m, PrototypeMIL) for m in members):
            raise TypeError("members must be a non-empty sequence of PrototypeMIL networks.")
        n_classes = {m.n_classes for m in members}
        if len(n_classes) != 1:
            raise ValueError(f"members must have the same n_classes, got {sorted(n_classes)}.")
        self.members = nn.ModuleList(members)
        self.n_classes = n_classes.pop()
        n = len(members)
        weights = torch.full((n,), 1.0 / n) if weights is None else torch.as_tensor(
            weights, dtype=torch.float32).reshape(-1)
        if weights.shape != (n,) or not bool((weights >= 0).all()):
            raise ValueError(
                f"weights must be {n} non-negative numbers, got {weights.tolist()}."
            )
        intercept = torch.zeros(self.n_classes) if intercept is None else torch.as_tensor(
            intercept, dtype=torch.float32).reshape(-1)
        if intercept.shape != (self.n_classes,):
            raise ValueError(
                f"intercept must have {self.n_classes} entries, got {intercept.numel()}."
            )
        self.register_buffer("stack_weights", weights.float().clone())
        self.register_buffer("stack_intercept", intercept.float().clone())

    def extra_repr(self):
        return f"n_members={len(self.members)}, n_classes={self.n_classes}"

    def _combine(self, logits):
        """``sum_m w_m log_softmax(logits_m) + b`` over the members' logits."""
        total = self.stack_intercept
        for w, z in zip(self.stack_weights, logits):
            total = total + w * torch.log_softmax(z, -1)
        return total

    def forward(self, bags=None, padding_mask=None, *, member_inputs=None):
        """Stacked bag logits, instance logits, attention, the mask and the members' outputs.

        Parameters
        ----------
        bags : torch.Tensor of shape (n_bags, n_max, n_features) or None
            Instances of each bag, padded to the largest bag of the batch.
        padding_mask : torch.Tensor of shape (n_bags, n_max), dtype=bool, default=None
            ``True`` at padded positions; ``None``: no padding (required
            with ``member_inputs``).
        member_inputs : sequence of dict or None
            Instead of ``bags``: one dict of keyword arguments per member
            (``bag_features`` and ``similarities``, see
            :meth:`PrototypeMIL.forward`), for training on features computed
            once.

        Returns
        -------
        bag_logits : torch.Tensor of shape (n_bags, n_classes)
        instance_logits : torch.Tensor of shape (n_bags, n_max, n_classes) or None
            Zero at padded positions; ``None`` when a member returned none.
        attention : torch.Tensor of shape (n_bags, n_max) or None
            ``None`` in training mode.
        padding_mask : torch.Tensor of shape (n_bags, n_max), dtype=bool
        member_outputs : tuple
            Each member's four outputs.
        """
        if (bags is None) == (member_inputs is None):
            raise ValueError("Pass exactly one of bags and member_inputs.")
        if member_inputs is not None:
            if len(member_inputs) != len(self.members):
                raise ValueError(
                    f"member_inputs must hold one dict per member ({len(self.members)}), "
                    f"got {len(member_inputs)}."
                )
            outputs = tuple(
                m(padding_mask=padding_mask, **kw) for m, kw in zip(self.members, member_inputs)
            )
        else:
            instances, padding_mask = _real_instances(bags, padding_mask)
            distances = {}  # the members share prototypes: one computation per kernel
            outputs = []
            for m in self.members:
                if m.kernel not in distances:
                    distances[m.kernel] = m.distances(instances)
                outputs.append(m(distances=distances[m.kernel], padding_mask=padding_mask))
            outputs = tuple(outputs)
        padding_mask = outputs[0][3]
        bag_logits = self._combine([o[0] for o in outputs])
        instance_logits = None
        if all(o[1] is not None for o in outputs):
            instance_logits = self._combine([o[1] for o in outputs]).masked_fill(
                padding_mask[..., None], 0.0
            )
        attention = None
        if all(o[2] is not None for o in outputs):
            total = self.stack_weights.sum()
            shares = (self.stack_weights / total if total > 0
                      else torch.full_like(self.stack_weights, 1.0 / len(self.members)))
            attention = sum(w * o[2] for w, o in zip(shares, outputs))
        return bag_logits, instance_logits, attention, padding_mask, outputs


def glorot_init_(network):
    """Glorot (Xavier) uniform weights and zero biases for every linear layer of ``network``.

    ``U(-b, b)`` with ``b = sqrt(6 / (fan_in + fan_out))`` (Glorot and Bengio,
    2010; Keras' default, used by the MI-Net family), for
    :class:`torch.nn.Linear` layers and each member of a batched ensemble
    layer alike; :class:`~skstruct.MILConveyance` applies it with
    ``weight_init='glorot'``.

    Parameters
    ----------
    network : torch.nn.Module
        Network whose linear layers are re-initialised in place.

    Returns
    -------
    network : torch.nn.Module
        The same network.

    Examples
    --------
    >>> import torch
    >>> from skstruct.modules import GatedAttentionMIL, glorot_init_
    >>> net = glorot_init_(GatedAttentionMIL(4, hidden_layer_sizes=(8,)))
    >>> bool(net.bag_head.bias.eq(0).all())
    True
    >>> bool(net.bag_head.weight.abs().max() <= (6 / (8 + 2)) ** 0.5)
    True
    """
    with torch.no_grad():
        for layer in network.modules():
            if isinstance(layer, (nn.Linear, _MemberLinear)):
                bound = (6.0 / (layer.in_features + layer.out_features)) ** 0.5
                layer.weight.uniform_(-bound, bound)
                if layer.bias is not None:
                    layer.bias.zero_()
    return network


class _MemberLinear(nn.Module):
    """``n_members`` independent linear layers applied in one batched product.

    Weights have shape ``(n_members, in_features, out_features)``; each
    member's slice is initialised like :class:`torch.nn.Linear`. Input of
    shape ``(M, in_features)`` is shared by all members, input of shape
    ``(n_members, M, in_features)`` gives each member its own rows; the
    output is ``(n_members, M, out_features)``.
    """

    def __init__(self, n_members, in_features, out_features, bias=True):
        super().__init__()
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.weight = nn.Parameter(torch.empty(n_members, self.in_features, self.out_features))
        self.bias = nn.Parameter(torch.empty(n_members, 1, self.out_features)) if bias else None
        self.reset_parameters()

    def reset_parameters(self):
        # torch.nn.Linear's default: U(-1/sqrt(in), 1/sqrt(in)) for weight and bias.
        bound = 1.0 / self.in_features**0.5
        nn.init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x):
        if x.ndim == 2:
            out = torch.matmul(x, self.weight)
        else:
            out = torch.bmm(x, self.weight)
        return out if self.bias is None else out + self.bias

    def extra_repr(self):
        return (
            f"n_members={self.weight.shape[0]}, in_features={self.in_features}, "
            f"out_features={self.out_features}, bias={self.bias is not None}"
        )


class GatedAttentionMILEnsemble(nn.Module):
    """``n_members`` gated attention MIL networks trained in one batched pass.

    Every member is a :class:`GatedAttentionMIL` with an MLP body (its own
    weights, initialisation and dropout masks); all members see the same
    batches and their layers run as batched matrix products, so a step of
    ``n_members`` small networks costs about as many operations as a step of
    one network of the combined width, not ``n_members`` steps.

    Parameters
    ----------
    n_features : int
        Number of features of an instance.
    n_members : int, default=5
        Number of member networks.
    n_classes : int, default=2
        Number of logits of both heads.
    hidden_layer_sizes : tuple of int, default=(128, 64)
        Widths of each member's MLP body.
    attention_size : int, default=64
        Width of each member's gated attention.
    instance_head_sizes : tuple of int, default=()
        Hidden widths of each member's instance head before its output layer.
    activation : {'relu', 'gelu', 'tanh', 'elu', 'leaky_relu'}, default='relu'
        Non-linearity of the bodies and instance heads.
    dropout : float, default=0.1
        Dropout on the gated attention features.

    See Also
    --------
    GatedAttentionMIL : One member.
    skstruct.MILConveyance : Trains this network when ``n_estimators > 1``.

    Notes
    -----
    ``forward`` returns the four outputs of :class:`GatedAttentionMIL` for
    the *ensemble* (logits ``log(mean_m softmax(z_m))``, so that a softmax of
    them is the members' mean probability, and the mean attention), followed
    by the members' own bag logits ``(n_bags, n_members, n_classes)`` and
    instance logits ``(n_bags, n_max, n_members, n_classes)``, which the
    training loss uses (each member is trained on its own outputs).

    Examples
    --------
    >>> import torch
    >>> from skstruct.modules import GatedAttentionMILEnsemble
    >>> net = GatedAttentionMILEnsemble(4, n_members=3, hidden_layer_sizes=(8,)).eval()
    >>> out = net(torch.zeros(2, 5, 4))
    >>> [tuple(t.shape) for t in out]
    [(2, 2), (2, 5, 2), (2, 5), (2, 5), (2, 3, 2), (2, 5, 3, 2)]
    """

    def __init__(
        self,
        n_features,
        n_members=5,
        n_classes=2,
        *,
        hidden_layer_sizes=(128, 64),
        attention_size=64,
        instance_head_sizes=(),
        activation="relu",
        dropout=0.1,
    ):
        super().__init__()
        k = int(n_members)
        self.n_features, self.n_members, self.n_classes = int(n_features), k, int(n_classes)
        widths = [self.n_features, *[int(s) for s in hidden_layer_sizes]]
        self.body = nn.ModuleList(_MemberLinear(k, a, b) for a, b in zip(widths, widths[1:]))
        self.activation = activation_class(activation)()
        width = widths[-1]
        self.attention_V = _MemberLinear(k, width, attention_size)
        self.attention_U = _MemberLinear(k, width, attention_size)
        self.attention_dropout = nn.Dropout(dropout)
        self.attention_w = _MemberLinear(k, attention_size, 1, bias=False)
        self.bag_head = _MemberLinear(k, width, self.n_classes)
        head = [width, *[int(s) for s in instance_head_sizes], self.n_classes]
        self.instance_head = nn.ModuleList(_MemberLinear(k, a, b) for a, b in zip(head, head[1:]))

    def extra_repr(self):
        return (
            f"n_features={self.n_features}, n_members={self.n_members}, "
            f"n_classes={self.n_classes}"
        )

    def forward(self, bags, padding_mask=None):
        """Ensemble and member logits of a padded batch of bags.

        Parameters
        ----------
        bags : torch.Tensor of shape (n_bags, n_max, n_features)
            Instances of each bag, padded to the largest bag of the batch.
        padding_mask : torch.Tensor of shape (n_bags, n_max), dtype=bool, default=None
            ``True`` at padded positions; ``None`` means no padding.

        Returns
        -------
        output : tuple of torch.Tensor
            ``(bag_logits, instance_logits, attention, padding_mask,
            member_bag_logits, member_instance_logits)``, see the class
            notes; padded positions hold zeros (and no attention).
        """
        if bags.ndim != 3:
            raise ValueError(
                "bags must have shape (n_bags, n_max, n_features), got shape "
                f"{tuple(bags.shape)}."
            )
        n_bags, n_max, _ = bags.shape
        k = self.n_members
        if padding_mask is None:
            padding_mask = torch.zeros(n_bags, n_max, dtype=torch.bool, device=bags.device)
        valid = ~padding_mask
        # Only real instances go through the members: (M, d) -> (k, M, width).
        hidden = bags[valid]
        for layer in self.body:
            hidden = self.activation(layer(hidden))
        gated = torch.tanh(self.attention_V(hidden)) * torch.sigmoid(self.attention_U(hidden))
        flat_scores = self.attention_w(self.attention_dropout(gated)).squeeze(-1)  # (k, M)
        scores = flat_scores.new_full((k, n_bags, n_max), float("-inf"))
        scores = scores.masked_scatter(valid.expand(k, -1, -1), flat_scores)
        attention = torch.softmax(scores, dim=-1)  # (k, B, n_max)
        padded = hidden.new_zeros(k, n_bags, n_max, hidden.shape[-1])
        padded = padded.masked_scatter(valid[None, ..., None], hidden)
        bag_repr = torch.einsum("kbn,kbnh->kbh", attention, padded)
        member_bag = self.bag_head(bag_repr.reshape(k, n_bags, -1))  # (k, B, C)
        instance = hidden
        for i, layer in enumerate(self.instance_head):
            instance = layer(instance)
            if i < len(self.instance_head) - 1:
                instance = self.activation(instance)
        member_instance = instance.new_zeros(k, n_bags, n_max, self.n_classes)
        member_instance = member_instance.masked_scatter(valid[None, ..., None], instance)
        member_bag = member_bag.transpose(0, 1)  # (B, k, C)
        member_instance = member_instance.permute(1, 2, 0, 3)  # (B, n_max, k, C)
        log_k = torch.log(torch.tensor(float(k), dtype=member_bag.dtype, device=bags.device))
        bag_logits = torch.logsumexp(torch.log_softmax(member_bag, -1), dim=-2) - log_k
        instance_logits = torch.logsumexp(torch.log_softmax(member_instance, -1), dim=-2) - log_k
        instance_logits = instance_logits.masked_fill(padding_mask[..., None], 0.0)
        return (
            bag_logits,
            instance_logits,
            attention.mean(0),
            padding_mask,
            member_bag,
            member_instance,
        )
