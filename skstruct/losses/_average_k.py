"""Average-K two-head loss: softmax CE plus pseudo-labelled BCE (Garcin et al., WACV 2025)."""

import math
from numbers import Real

import torch
import torch.nn.functional as F
from torch import nn

from ..utils.validation import check_positive_scalar
from ._conveyance import _upcast
from ._reduction import (
    check_logits_target,
    check_reduction,
    reduce_loss,
    softmax_lse,
    target_range_checked,
)

__all__ = ["AverageKLoss", "average_k_loss"]


def _check_k(k):
    """Return ``k`` as a float if it is a finite real number >= 1, else raise."""
    if isinstance(k, bool) or not isinstance(k, Real):
        raise TypeError(f"k must be a real number with 1 <= k < n_classes, got {k!r}.")
    k = float(k)
    if not (math.isfinite(k) and k >= 1):
        raise ValueError(
            f"k must satisfy 1 <= k < n_classes (the average set size), got k={k!r}."
        )
    return k


def _n_pseudo_positives(k, n_samples):
    """``floor((k - 1) * n_samples)``, robust to rounding (k=1.15, 100 -> 15)."""
    return int(math.floor((k - 1.0) * n_samples + 1e-9))


def _first_top_m(scores, m):
    """Flat indices of the ``m`` largest ``scores``; ties go to the lowest index.

    ``topk`` gives the m-th largest value ``v``. Usually exactly ``m`` scores
    are ``>= v`` (no tie at the boundary): then topk's own indices are the
    answer, sorted (one comparison pass and one host read). Otherwise every
    score above ``v`` is taken, and of the scores equal to ``v`` the first
    ones (a cumulative count) fill the remaining places. Unlike ``topk``'s
    own choice among ties, this does not depend on the kernel, the device or
    the dtype. Returns the indices in increasing order; O(n) besides
    ``topk``.
    """
    values, indices = scores.topk(m, sorted=False)
    kth = values.min()
    if int((scores >= kth).sum()) == m:
        return indices.sort().values
    chosen = scores > kth
    tied = scores == kth
    chosen |= tied & (tied.cumsum(0) <= m - chosen.sum())
    return chosen.nonzero()[:, 0]


def _pseudo_positive_cells(z, lse, t, n_pseudo):
    """Flat indices of the ``n_pseudo`` most probable cells off the true labels.

    Ranked by ``log p = z - LSE`` (``p`` underflows; ``log p`` does not), the
    true cells set to ``-inf``; ties go to the first cells (``_first_top_m``).
    """
    log_p = (z - lse).scatter_(1, t, -math.inf)
    return _first_top_m(log_p.view(-1), n_pseudo)


class _AverageKFunction(torch.autograd.Function):
    """Per-sample Average-K terms of both heads with a hand-written backward.

    Softmax head: cross-entropy, ``LSE - z_t`` with its gradient ``p - e_t``
    (``LSE`` from the fused softmax, see ``_reduction.softmax_lse``). The top-m
    pseudo-positive cells are picked on ``log p = z - LSE``, the true cells
    set to ``-inf``: ``p`` itself underflows to 0 in float32 from
    ``log p < -104`` (float64: ``-745``), which would tie cells of very
    different probability and make the choice depend on the dtype (found by
    benchmarks/fuzz_stress.py). Ties of ``log p`` (equal logits) go to the
    first cells in row-major order (``_first_top_m``). Multi-label head: weight
    1 on the true cell, ``w_p = alpha / (k - 1)`` on a pseudo-positive,
    ``w_n = alpha / (C - k)`` on a negative; the positives' terms
    ``softplus(-f)`` are gathered (B + m cells), the negatives' ``softplus(f)``
    are summed after zeroing the positive cells (no cancellation). Gradient:
    ``w (sigmoid(f) - y)``, i.e. ``w_n sigmoid(f)`` everywhere, then the
    positive cells overwritten with ``-w sigmoid(-f)``. Saved: ``p`` and the
    selected cells (``f`` is an input).
    """

    @staticmethod
    def forward(ctx, z, f, target, n_pseudo, w_n, w_p):
        t = target[:, None]
        n_classes = z.shape[1]
        p, lse = softmax_lse(z)
        per_sample = lse[:, 0] - z.gather(1, t)[:, 0]
        top = rows = None
        if n_pseudo > 0:
            top = _pseudo_positive_cells(z, lse, t, n_pseudo)
            rows = torch.div(top, n_classes, rounding_mode="floor")
        f_t = f.gather(1, t)
        per_sample = per_sample + F.softplus(-f_t)[:, 0]
        negative = F.softplus(f)  # -log(1 - sigmoid(f)), a temporary
        negative.scatter_(1, t, 0.0)
        if n_pseudo > 0:
            f_p = f.reshape(-1).index_select(0, top)
            pseudo = F.softplus(-f_p) * w_p
            per_sample = per_sample.index_add(0, rows, pseudo)
            negative.view(-1).index_fill_(0, top, 0.0)
        per_sample = per_sample + w_n * negative.sum(1)
        del negative
        ctx.save_for_backward(p, f, t, top, rows)
        ctx.n_pseudo, ctx.w_n, ctx.w_p = n_pseudo, w_n, w_p
        return per_sample

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_loss):
        p, f, t, top, rows = ctx.saved_tensors
        g = grad_loss[:, None]
        grad_z = grad_f = None
        if ctx.needs_input_grad[0]:
            grad_z = torch.mul(p, g).scatter_add_(1, t, -g)
        if ctx.needs_input_grad[1]:
            grad_f = torch.sigmoid(f).mul_(g * ctx.w_n)
            grad_f.scatter_(1, t, -torch.sigmoid(-f.gather(1, t)) * g)
            if ctx.n_pseudo > 0:
                f_p = f.reshape(-1).index_select(0, top)
                values = -ctx.w_p * torch.sigmoid(-f_p) * grad_loss.index_select(0, rows)
                grad_f.view(-1).index_copy_(0, top, values)
        return grad_z, grad_f, None, None, None, None


def average_k_loss(
    logits_softmax, logits_multilabel, target, *, k, alpha=1.0, reduction="mean"
):
    r"""Average-K loss of a two-head network: softmax CE plus pseudo-labelled BCE.

    The softmax head is trained with cross-entropy. The multi-label head is
    trained with binary cross-entropy against pseudo-labels built from the
    whole batch: every true label is positive, and so are the
    ``m = floor((k - 1) * n_samples)`` cells of the batch with the largest
    (detached) softmax probabilities among the non-true cells, so that the
    positive sets have size ``k`` on average. Calibrating a threshold on the
    multi-label scores then yields sets of average size ``k``.

    Parameters
    ----------
    logits_softmax : torch.Tensor of shape (n_samples, n_classes)
        Logits of the softmax head. float16 and bfloat16 are computed in
        float32.
    logits_multilabel : torch.Tensor of shape (n_samples, n_classes)
        Logits of the multi-label (sigmoid) head.
    target : torch.Tensor of shape (n_samples,)
        Integer column indices of the true labels.
    k : float
        Average set size, ``1 <= k < n_classes``; may be fractional. ``k = 1``
        selects no pseudo-positives.
    alpha : float, default=1.0
        Weight (> 0) of the pseudo-positive and negative BCE terms (tuned in
        [0.1, 10] in the paper).
    reduction : {'mean', 'sum', 'none'}, default='mean'
        ``'mean'`` gives the loss below; ``'sum'`` is ``n_samples`` times it;
        ``'none'`` returns the (n_samples,) per-sample terms whose mean is the
        ``'mean'`` result. The pseudo-labels depend on the whole batch, so a
        per-sample term is not the loss of that sample alone.

    Returns
    -------
    loss : torch.Tensor
        A scalar, or shape (n_samples,) when ``reduction='none'``; float32
        (float64 for float64 logits).

    Raises
    ------
    ValueError
        If ``k`` is not in ``[1, n_classes)``, or the two heads' shapes differ.

    See Also
    --------
    AverageKLoss : The module form, taking the two heads as one tuple.

    Notes
    -----
    With ``B`` the batch, ``P`` the pseudo-positive cells (no gradient flows
    through their selection), ``N`` every other cell off the true labels,
    ``f`` the multi-label logits and ``sigma`` the sigmoid:

    .. math::

        \ell = \frac{1}{|B|}\sum_i \mathrm{CE}(z_i, y_i)
             - \frac{1}{|B|}\sum_i \log\sigma(f_{i y_i})
             - \frac{\alpha}{(k-1)|B|}\sum_{(i,j) \in P} \log\sigma(f_{ij})
             - \frac{\alpha}{(C-k)|B|}\sum_{(i,j) \in N} \log(1 - \sigma(f_{ij}))

    computed with ``softplus(-f) = -log sigma(f)`` and
    ``softplus(f) = -log(1 - sigma(f))``. The softmax head's gradient is
    exactly the cross-entropy gradient. The cells are ranked by log-probability
    (no underflow), and ties among equal probabilities go to the first cells
    in row-major order (sample, then class). Cost: O(n_samples * n_classes) plus a top-m
    selection over the batch.

    References
    ----------
    .. [1] Garcin, Servajean, Joly, Salmon. "A two-head loss function for deep
       Average-K classification". WACV 2025.

    Examples
    --------
    >>> import torch
    >>> from skstruct.losses import average_k_loss
    >>> logits_softmax = torch.tensor([[2.0, 1.0, 0.0], [0.0, 1.5, 1.0]])
    >>> logits_multilabel = torch.tensor([[1.0, 0.5, -1.0], [-1.0, 1.0, 0.5]])
    >>> average_k_loss(logits_softmax, logits_multilabel, torch.tensor([0, 1]), k=1.5)
    tensor(1.8267)
    """
    check_logits_target(logits_softmax, target, name="logits_softmax")
    check_logits_target(logits_multilabel, target, name="logits_multilabel")
    if logits_multilabel.shape != logits_softmax.shape:
        raise ValueError(
            "logits_multilabel must have the shape of logits_softmax "
            f"{tuple(logits_softmax.shape)}, got {tuple(logits_multilabel.shape)}."
        )
    check_reduction(reduction)
    alpha = check_positive_scalar(alpha, "alpha")
    k = _check_k(k)
    n_samples, n_classes = logits_softmax.shape
    if not k < n_classes:
        raise ValueError(
            f"k must satisfy 1 <= k < n_classes={n_classes}, got k={k!r}; an "
            "average set of every class is trivial."
        )
    n_pseudo = _n_pseudo_positives(k, n_samples)
    if n_pseudo > n_samples * (n_classes - 1):  # unreachable when k < n_classes
        raise ValueError(
            f"k={k!r} asks for {n_pseudo} pseudo-positive cells but the batch "
            f"has only {n_samples * (n_classes - 1)} cells off the true labels."
        )

    z = _upcast(logits_softmax)
    f = _upcast(logits_multilabel)
    with target_range_checked(target, n_classes):
        per_sample = _AverageKFunction.apply(
            z, f, target.long(), n_pseudo, alpha / (n_classes - k), alpha / max(k - 1.0, 1e-300)
        )
    return reduce_loss(per_sample, reduction)


class AverageKLoss(nn.Module):
    """Average-K two-head loss as a module.

    See :func:`average_k_loss` for the formula and shapes. ``forward`` takes
    the two-head network's output, a ``(logits_softmax, logits_multilabel)``
    tuple, so the module can serve as a criterion directly.

    Parameters
    ----------
    k : float
        Average set size, ``1 <= k < n_classes`` (the upper bound is checked
        on the first call, when the number of classes is known).
    alpha : float, default=1.0
        Weight (> 0) of the pseudo-positive and negative BCE terms.
    reduction : {'mean', 'sum', 'none'}, default='mean'
        Reduction over the batch.

    See Also
    --------
    average_k_loss : The functional form.

    Examples
    --------
    >>> import torch
    >>> from skstruct.losses import AverageKLoss
    >>> criterion = AverageKLoss(k=1.5)
    >>> criterion
    AverageKLoss(k=1.5, alpha=1.0, reduction='mean')
    >>> output = (torch.tensor([[2.0, 1.0, 0.0], [0.0, 1.5, 1.0]]),
    ...           torch.tensor([[1.0, 0.5, -1.0], [-1.0, 1.0, 0.5]]))
    >>> criterion(output, torch.tensor([0, 1]))
    tensor(1.8267)
    """

    def __init__(self, k, *, alpha=1.0, reduction="mean"):
        super().__init__()
        self.k = _check_k(k)
        self.alpha = check_positive_scalar(alpha, "alpha")
        self.reduction = check_reduction(reduction)

    def extra_repr(self):
        return f"k={self.k}, alpha={self.alpha}, reduction={self.reduction!r}"

    def forward(self, output, target):
        """Return the loss of a two-head output against ``target``.

        Parameters
        ----------
        output : tuple of torch.Tensor
            ``(logits_softmax, logits_multilabel)``, each of shape
            (n_samples, n_classes).
        target : torch.Tensor of shape (n_samples,)
            Integer class indices.

        Returns
        -------
        loss : torch.Tensor
            A scalar, or shape (n_samples,) when ``reduction='none'``.
        """
        if not isinstance(output, (tuple, list)) or len(output) != 2:
            raise TypeError(
                "output must be the (logits_softmax, logits_multilabel) pair of a "
                f"two-head network, got {type(output).__name__}."
            )
        logits_softmax, logits_multilabel = output
        return average_k_loss(
            logits_softmax,
            logits_multilabel,
            target,
            k=self.k,
            alpha=self.alpha,
            reduction=self.reduction,
        )
