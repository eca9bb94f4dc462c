"""Shared helpers of the loss functions: reductions, shape and target checks."""

import torch

_REDUCTIONS = ("none", "mean", "sum")


def check_reduction(reduction):
    """Return ``reduction`` if it is one of torch's names, else raise."""
    if reduction not in _REDUCTIONS:
        raise ValueError(
            f"reduction={reduction!r} is not a valid value for reduction; "
            f"expected one of {_REDUCTIONS}."
        )
    return reduction


def reduce_loss(per_sample, reduction):
    """Reduce a (B,) tensor of per-sample losses as torch does.

    ``'mean'`` of an empty batch is NaN in torch; we keep that convention.
    """
    if reduction == "none":
        return per_sample
    if reduction == "sum":
        return per_sample.sum()
    return per_sample.mean()


def check_logits_target(logits, target, *, name="logits"):
    """O(1) shape checks shared by every loss (no device sync)."""
    if not isinstance(logits, torch.Tensor) or not isinstance(target, torch.Tensor):
        raise TypeError(
            f"{name} and target must be torch tensors, got "
            f"{type(logits).__name__} and {type(target).__name__}."
        )
    if logits.ndim != 2:
        raise ValueError(
            f"{name} must have shape (n_samples, n_classes), got shape "
            f"{tuple(logits.shape)}."
        )
    if not logits.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got {logits.dtype}.")
    if target.ndim != 1 or target.shape[0] != logits.shape[0]:
        raise ValueError(
            f"target must have shape ({logits.shape[0]},) to match {name}, got "
            f"shape {tuple(target.shape)}."
        )
    if target.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8):
        raise TypeError(
            f"target must hold integer class indices, got dtype {target.dtype}."
        )


def weighted_mean(per_sample, sample_weight):
    """``sum(w * loss) / sum(w)``: the loss of rows repeated ``w`` times.

    With integer weights this equals the plain mean over the batch in which
    row ``i`` appears ``w_i`` times (the sum of the weights plays the batch
    size). The weights are cast to the loss dtype; rows of weight 0 do not
    count.
    """
    weight = sample_weight.to(per_sample.dtype)
    return (per_sample * weight).sum() / weight.sum()


class SampleWeightedLoss(torch.nn.Module):
    """Per-sample weights for any loss module that offers ``reduction='none'``.

    ``criterion`` is switched to ``reduction='none'``; ``forward(output,
    target)`` takes ``target`` either as a tensor (plain mean over the batch)
    or as a pair ``(target, sample_weight)`` (the :func:`weighted_mean`). The
    loss itself stays a pure torch function of logits and targets: the
    weighting is this wrapper's only job. The estimators use it when
    ``fit`` gets non-uniform ``sample_weight`` or a ``class_weight``.

    Parameters
    ----------
    criterion : torch.nn.Module
        A loss module with a ``reduction`` attribute read at each forward
        (every loss of :mod:`skstruct.losses`, and torch's).

    Examples
    --------
    >>> import torch
    >>> from skstruct.losses import ConveyanceLoss, SampleWeightedLoss
    >>> loss = SampleWeightedLoss(ConveyanceLoss(torch.eye(3, dtype=torch.bool)))
    >>> z, t = torch.zeros(2, 3), torch.tensor([0, 1])
    >>> bool(torch.isclose(loss(z, (t, torch.tensor([2.0, 0.0]))), loss(z[:1], t[:1])))
    True
    """

    def __init__(self, criterion):
        super().__init__()
        if not hasattr(criterion, "reduction"):
            raise TypeError(
                f"{type(criterion).__name__} has no 'reduction' attribute; "
                "sample weights need a loss that returns one value per sample "
                "with reduction='none'."
            )
        criterion.reduction = "none"
        self.criterion = criterion

    def forward(self, output, target):
        """Return the (weighted) mean of the per-sample losses.

        Parameters
        ----------
        output : torch.Tensor or tuple of torch.Tensor
            What the wrapped criterion takes.
        target : torch.Tensor or tuple of (torch.Tensor, torch.Tensor)
            Targets, or ``(targets, sample_weight)``.

        Returns
        -------
        loss : torch.Tensor
            A scalar.
        """
        if isinstance(target, (tuple, list)):
            target, sample_weight = target
            return weighted_mean(self.criterion(output, target), sample_weight)
        return self.criterion(output, target).mean()
def check_target_range(target, n_classes, *, name="target"):
    """Raise a ValueError unless every entry of ``target`` lies in ``[0, n_classes)``.

    One ``aminmax`` and one host read per call (a device sync on CUDA); an
    out-of-range index would otherwise end in an ``IndexError`` or a CUDA
    device-side assert deep inside torch, or be read silently.
    """
    if target.numel() == 0:
        return
    low, high = (int(v) for v in torch.stack(torch.aminmax(target.long())).tolist())
    if low < 0 or high >= n_classes:
        bad = low if low < 0 else high
        raise ValueError(
            f"{name} must hold class indices in [0, {n_classes}) for {n_classes} "
            f"classes, got {name} value {bad}; encode the labels with "
            "sklearn.preprocessing.LabelEncoder (or the estimator's classes_)."
        )


class target_range_checked:
    """Context manager: the :func:`check_target_range` error, at no cost on the CPU.

    On the CPU every loss indexes with ``target`` (``gather``,
    ``index_select``, ``scatter``), and torch raises ``IndexError`` or
    ``RuntimeError`` for an index outside ``[0, n_classes)``, negative ones
    included; only then is the range read, to raise the ValueError that
    names the argument (the torch error chained as its context). A batch of
    valid targets pays no reduction and no host read. On other devices an
    out-of-range index is a device-side assert, so the range is checked up
    front.
    """

    __slots__ = ("target", "n_classes", "name")

    def __init__(self, target, n_classes, *, name="target"):
        self.target, self.n_classes, self.name = target, n_classes, name
        if target.device.type != "cpu":
            check_target_range(target, n_classes, name=name)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None and issubclass(exc_type, (IndexError, RuntimeError)):
            check_target_range(self.target, self.n_classes, name=self.name)
        return False


# torch's CPU softmax kernel vectorises along the class axis and drops to a
# scalar path when a row is shorter than one float32 vector (16 columns):
# at B=512, C=10 it costs about 3x an explicit max, exp, sum and divide
# (0.15 ms against 0.05 ms, one thread). From 16 columns on the fused kernel
# is the faster one.
_FUSED_SOFTMAX_MIN_CLASSES = 16


def _explicit_softmax(z):
    """``(exp(z - m), sum, m)`` with ``m`` the row max: the explicit softmax's parts."""
    m = z.amax(1, keepdim=True)
    e = torch.sub(z, m).exp_()
    return e, e.sum(1, keepdim=True), m


def softmax(z):
    """``softmax(z, 1)`` as a fresh tensor, by the faster kernel for the shape."""
    if z.device.type == "cpu" and 0 < z.shape[1] < _FUSED_SOFTMAX_MIN_CLASSES:
        e, s, _ = _explicit_softmax(z)
        return e.div_(s)
    return torch.softmax(z, 1)


def softmax_lse(z):
    """``softmax(z, 1)`` (a fresh tensor) and ``logsumexp(z, 1)`` of shape (B, 1).

    The explicit form gives ``LSE = m + log(sum)`` directly. From the fused
    softmax, ``LSE = z_max - log p_max`` with ``p_max >= 1/C`` the probability
    of the top logit: exact to rounding and never an underflow, with two cheap
    reductions (``amax``) instead of a second pass of ``exp``.
    """
    if z.device.type == "cpu" and 0 < z.shape[1] < _FUSED_SOFTMAX_MIN_CLASSES:
        e, s, m = _explicit_softmax(z)
        return e.div_(s), s.log_().add_(m)
    p = torch.softmax(z, 1)
    return p, z.amax(1, keepdim=True) - torch.log(p.amax(1, keepdim=True))
