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
