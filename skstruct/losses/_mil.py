"""Bag cross-entropy plus the Conveyance loss on instances, for padded bag batches."""


import torch
from torch import nn
from torch.nn import functional as F

from ..utils.validation import check_positive_scalar
from ._conveyance import _check_alpha_beta, _conveyance, _log_weight, _prepared, conveyance_loss
from ._reduction import check_logits_target, check_reduction, check_target_range, reduce_loss

__all__ = ["MILConveyanceLoss"]


class MILConveyanceLoss(nn.Module):
    """Bag cross-entropy plus the instance Conveyance loss, averaged per bag.

    The criterion of :class:`~skstruct.MILConveyance`. For a batch of ``B``
    bags with bag labels ``y_b`` and ``n_b`` real instances each::

        loss = mean_b CE(bag_logits_b, y_b)
               + instance_weight * mean_b mean_{k <= n_b} conveyance(z_bk, y_b, Q)

    Every instance inherits its bag's label; ``Q`` says which true instance
    classes may sit in a bag of a given label. Under the standard MIL
    assumption ``Q = [[1, 1], [0, 1]]`` over (negative, positive): a negative
    instance may be in a positive bag, not the reverse. Padded instances are
    excluded; with one bag per batch this is exactly the loss of the
    reference implementation.

    Parameters
    ----------
    plausible : array-like or torch.Tensor of shape (n_classes, n_classes)
        Plausibility matrix ``Q`` (``plausible[s, t]`` True when true class
        ``s`` may appear under bag label ``t``); stored as a buffer with the
        diagonal set.
    alpha : float, default=1.0
        Weight (>= 0) of the target odds of the instance Conveyance loss.
    beta : float, default=1.0
        Weight (>= 0) of the plausible-set odds of the instance Conveyance
        loss; alpha and beta cannot both be 0.
    instance_weight : float, default=1.0
        Weight of the instance term; ``0`` trains the bag head only.
    reduction : {'mean', 'sum', 'none'}, default='mean'
        ``'none'`` returns one loss per bag, ``CE(bag_b) + instance_weight *
        mean_k conveyance(z_bk)`` (what :class:`SampleWeightedLoss` weighs
        with per-bag sample weights); ``'mean'`` is their mean.

    See Also
    --------
    skstruct.losses.conveyance_loss : The instance loss.

    Examples
    --------
    >>> import torch
    >>> from skstruct.losses import MILConveyanceLoss
    >>> criterion = MILConveyanceLoss([[1, 1], [0, 1]])
    >>> output = (torch.tensor([[1.0, -1.0]]),               # bag logits
    ...           torch.tensor([[[2.0, 0.0], [0.0, 1.0]]]),  # instance logits
    ...           torch.tensor([[0.5, 0.5]]),                # attention
    ...           torch.tensor([[False, False]]))            # padding mask
    >>> criterion(output, torch.tensor([1]))
    tensor(3.3470)
    """

    def __init__(self, plausible, *, alpha=1.0, beta=1.0, instance_weight=1.0, reduction="mean"):
        super().__init__()
        self.reduction = check_reduction(reduction)
        self.alpha, self.beta = _check_alpha_beta(alpha, beta)
        self.instance_weight = check_positive_scalar(instance_weight, "instance_weight", allow_zero=True)
        if not isinstance(plausible, torch.Tensor):
            plausible = torch.tensor(plausible)  # a copy: read-only arrays are fine
        if plausible.ndim != 2 or plausible.shape[0] != plausible.shape[1]:
            raise ValueError(
                "plausible must be a square (n_classes, n_classes) matrix, got "
                f"shape {tuple(plausible.shape)}."
            )
        plausible = (plausible != 0) | torch.eye(plausible.shape[0], dtype=torch.bool)
        # Column-major, as ConveyanceLoss stores it: the per-batch gather is a row copy.
        self.register_buffer("plausible", plausible.T.contiguous().T)

    def extra_repr(self):
        return (
            f"n_classes={self.plausible.shape[0]}, alpha={self.alpha}, "
            f"beta={self.beta}, instance_weight={self.instance_weight}"
            + ("" if self.reduction == "mean" else f", reduction={self.reduction!r}")
        )

    def forward(self, output, target):
        """Return the scalar loss of a batch of bags.

        Parameters
        ----------
        output : tuple of torch.Tensor
            The output of :class:`~skstruct.modules.GatedAttentionMIL`,
            ``(bag_logits, instance_logits, attention, padding_mask)`` with
            shapes ``(B, C)``, ``(B, n_max, C)``, ``(B, n_max)``, ``(B, n_max)``.
        target : torch.Tensor of shape (B,)
            Bag labels, integer indices into the classes.

        Returns
        -------
        loss : torch.Tensor
            A scalar, or shape (B,) when ``reduction='none'``.
        """
        if not isinstance(output, (tuple, list)) or len(output) not in (4, 6):
            raise TypeError(
                "output must be the 4-tuple (bag_logits, instance_logits, attention, "
                "padding_mask) of GatedAttentionMIL or the 6-tuple of "
                f"GatedAttentionMILEnsemble, got {type(output).__name__}"
                + (f" of length {len(output)}." if isinstance(output, (tuple, list)) else ".")
            )
        if len(output) == 6:
            return self._ensemble_loss(output, target)
        bag_logits, instance_logits, _, padding_mask = output
        check_logits_target(bag_logits, target, name="bag_logits")
        if (
            self.reduction == "mean"
            and target.shape[0] == 1
            and target.device.type == "cpu"
            and instance_logits.ndim == 3
            and not bool(padding_mask.any())
        ):
            return self._one_bag(bag_logits, instance_logits, target)
        check_target_range(target, bag_logits.shape[1])
        target = target.long()
        if self.reduction != "mean":
            return reduce_loss(self._per_bag(bag_logits, instance_logits, padding_mask, target),
                               self.reduction)
        loss = F.cross_entropy(bag_logits, target)
        if self.instance_weight == 0:
            return loss
        n_bags, n_max, n_classes = instance_logits.shape
        kwargs = dict(alpha=self.alpha, beta=self.beta, reduction="none")
        if not bool(padding_mask.any()):
            # Equal bag sizes: the per-bag mean is a plain mean.
            per_instance = conveyance_loss(
                instance_logits.reshape(n_bags * n_max, n_classes),
                target.repeat_interleave(n_max),
                self.plausible,
                **kwargs,
            )
            instance_loss = per_instance.mean()
        else:
            valid = ~padding_mask
            counts = valid.sum(1)
            per_instance = conveyance_loss(
                instance_logits[valid],
                target.repeat_interleave(counts),
                self.plausible,
                **kwargs,
            )
            # Each instance weighs 1 / (n_b * B): the mean over bags of per-bag means.
            weights = (1.0 / (counts.to(per_instance.dtype) * n_bags)).repeat_interleave(counts)
            instance_loss = (per_instance * weights).sum()
        return loss + self.instance_weight * instance_loss

    def _one_bag(self, bag_logits, instance_logits, target):
        """The ``'mean'`` loss of one bag without padding, on the CPU (one bag per step).

        The operations of the general path (cross-entropy, the Conveyance
        loss per instance, their mean), so the same values and gradients bit
        for bit, without its per-call work that one bag does not need: the
        target range is one host read of the single label (no ``aminmax``),
        Q comes prepared from the cache without re-validating alpha and
        beta, and a weight of 1 skips its multiplication (exact either way).
        """
        n_classes = bag_logits.shape[1]
        label = int(target[0])
        if not 0 <= label < n_classes:
            check_target_range(target, n_classes)  # raises the ValueError
        target = target.long()
        loss = F.cross_entropy(bag_logits, target)
        if self.instance_weight == 0:
            return loss
        _, n_max, n_logits = instance_logits.shape
        plausible, others = _prepared(self.plausible, n_logits, instance_logits.device)
        per_instance = _conveyance(
            instance_logits.reshape(n_max, n_logits),
            target.expand(n_max),
            plausible,
            others,
            _log_weight(self.alpha),
            _log_weight(self.beta),
            "none",
        )
        instance_loss = per_instance.mean()
        if self.instance_weight != 1.0:
            instance_loss = self.instance_weight * instance_loss
        return loss + instance_loss

    def _ensemble_loss(self, output, target):
        """The sum over members of each member's loss on its own outputs.

        Member ``m`` of bag ``b`` counts as a bag of its own: the member
        outputs ``(B, k, C)`` and ``(B, n_max, k, C)`` become ``B * k`` bags,
        whose mean loss times ``k`` is the sum over members of their mean
        loss per bag. Summing (not averaging) keeps each member's gradient
        what it would be if it were trained alone, so weight decay and
        ``lr`` mean the same for one network and for ``k``.
        """
        _, _, _, padding_mask, member_bag, member_instance = output
        n_bags, n_members, n_classes = member_bag.shape
        n_max = member_instance.shape[1]
        pair_logits = member_bag.reshape(n_bags * n_members, n_classes)
        pair_instances = member_instance.transpose(1, 2).reshape(
            n_bags * n_members, n_max, n_classes
        )
        pair_mask = padding_mask.repeat_interleave(n_members, dim=0)
        pair_target = target.repeat_interleave(n_members)
        if self.reduction == "mean":
            # The 4-tuple path (with its checks) on the B * k pseudo-bags.
            return n_members * self.forward(
                (pair_logits, pair_instances, None, pair_mask), pair_target
            )
        check_logits_target(pair_logits, pair_target, name="member_bag_logits")
        check_target_range(pair_target, n_classes)
        per_pair = self._per_bag(pair_logits, pair_instances, pair_mask, pair_target.long())
        return reduce_loss(per_pair.reshape(n_bags, n_members).sum(1), self.reduction)

    def _per_bag(self, bag_logits, instance_logits, padding_mask, target):
        """Loss of each bag: its CE plus the mean instance loss of its real instances."""
        loss = F.cross_entropy(bag_logits, target, reduction="none")
        if self.instance_weight == 0:
            return loss
        n_bags, n_max, n_classes = instance_logits.shape
        valid = ~padding_mask
        counts = valid.sum(1)
        per_instance = conveyance_loss(
            instance_logits[valid],
            target.repeat_interleave(counts),
            self.plausible,
            alpha=self.alpha,
            beta=self.beta,
            reduction="none",
        )
        bag_of = torch.arange(n_bags, device=target.device).repeat_interleave(counts)
        sums = torch.zeros(n_bags, dtype=per_instance.dtype, device=per_instance.device)
        sums = sums.index_add(0, bag_of, per_instance)
        return loss + self.instance_weight * sums / counts.to(per_instance.dtype)
