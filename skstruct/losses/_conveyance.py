"""Conveyance loss: a target margin plus a plausible-set margin (arXiv 2605.28420)."""

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..utils.validation import check_positive_scalar
from ._cache import cached_prepare
from ._numba import fused_available, fused_loss, jit, kernel_exp
from ._reduction import (
    check_logits_target,
    check_reduction,
    reduce_loss,
    softmax,
    target_range_checked,
)

__all__ = ["ConveyanceLoss", "conveyance_loss"]


def _check_alpha_beta(alpha, beta):
    """Return ``(alpha, beta)`` as floats >= 0, not both zero, else raise.

    ``alpha = 0`` is a pure set (partial-label) loss; ``alpha = 1, beta = 0``
    is exactly cross-entropy. Both zero would leave no loss at all.
    """
    alpha = check_positive_scalar(alpha, "alpha", allow_zero=True)
    beta = check_positive_scalar(beta, "beta", allow_zero=True)
    if alpha == 0 and beta == 0:
        raise ValueError(
            "alpha and beta cannot both be 0 (the loss would be identically 0); "
            "got alpha=0.0, beta=0.0. Pass for example alpha=1.0, beta=0.0 for "
            "cross-entropy or alpha=0.0, beta=1.0 for a pure set loss."
        )
    return alpha, beta


def _log_weight(value):
    """``log(value)``, with ``log(0) = -inf`` (the term then drops out exactly)."""
    return math.log(value) if value > 0 else -math.inf


def _upcast(logits):
    """Compute in float32 at least: upcast float16 / bfloat16 logits."""
    return logits if logits.dtype in (torch.float32, torch.float64) else logits.float()


def _outside_rows(plausible, target, dtype):
    """Return the (B, C) float mask, 1.0 where ``plausible[s, t_b]`` is False.

    ``plausible.T[target]`` gathers one column of Q per sample: a fast row copy
    when ``plausible`` is stored column-major (``Q.T.contiguous().T``), as
    :class:`ConveyanceLoss` stores its buffer; a row-major Q works too, only
    more slowly for large C. The entry of t itself does not matter: the loss
    always counts t in S (the diagonal of Q is forced on). A float mask keeps
    every later step branch-free arithmetic.
    """
    in_s = plausible.T.index_select(0, target)  # a fresh (B, C) tensor
    not_s = torch.empty(in_s.shape, dtype=dtype, device=in_s.device)
    return not_s.copy_(in_s.logical_not_().view(torch.uint8))


def _plausible_index(plausible, max_fraction=0.125):
    """(C, K) int64 table of ``S(t) - {t}`` per label t, padded with t itself.

    Returns ``None`` when some label has more than ``max_fraction * C``
    plausible classes besides itself: the dense mask is then cheaper.
    """
    n_classes = plausible.shape[0]
    off_diagonal = plausible.T & ~torch.eye(n_classes, dtype=torch.bool, device=plausible.device)
    counts = off_diagonal.sum(1)
    width = max(1, int(counts.max())) if n_classes else 1
    if width > max(1, int(max_fraction * n_classes)):
        return None
    labels, members = off_diagonal.nonzero(as_tuple=True)  # sorted by label
    starts = torch.cumsum(counts, 0) - counts
    table = torch.arange(n_classes, device=plausible.device)[:, None].repeat(1, width)
    table[labels, torch.arange(labels.shape[0], device=labels.device) - starts[labels]] = members
    return table


# A batch in which some p_t is below sqrt(tiny) leaves probability space:
# the log-space form (per-group shifts) computes it, and the fused kernel
# declines it. One threshold per computing dtype (the logits are upcast to
# float32 at least).
_P_T_THRESHOLD = {dtype: torch.finfo(dtype).tiny ** 0.5 for dtype in (torch.float32, torch.float64)}


def _shifted_exp(z, t, not_s, others):
    """Exponentials of the logits, shifted per group and split into S and N.

    The plausible sets come either as ``not_s`` (B, C), a float mask equal to
    1.0 on N, or as ``others`` (B, K), the indices of ``S(t) - {t}`` padded
    with t. Returns ``e_s``, ``e_n``, ``zt`` and ``gap`` such that, for one
    reference ``r`` per row, ``e_s`` holds ``exp(z_k - r)`` on ``S - {t}``
    ((B, C) with zeros elsewhere, or (B, K) aligned with ``others`` with zeros
    on the padding), ``e_n`` (B, C) holds ``exp(z_k - r - gap)`` on N and zeros
    elsewhere, and ``zt = z_t - r``.

    Usually ``e = softmax(z)``: ``r = LSE_all``, ``zt = log p_t``, ``gap = 0``
    (returned as ``None``), one fused pass. If some p_t underflows (below
    sqrt(tiny): z_t more than ~40 nats under the row max), the batch takes
    ``r = max over S`` and ``r + gap = max over the row`` instead: the sum over
    S is then at least 1, and nothing underflows or overflows even at logits of
    +-1e4.
    """
    p = torch.softmax(z, 1)
    p_t = p.gather(1, t)
    if p_t.numel() == 0 or float(p_t.amin()) >= _P_T_THRESHOLD[z.dtype]:
        e, zt, gap = p, torch.log(p_t), None
    else:
        z_t = z.gather(1, t)
        m_all = z.amax(1, keepdim=True)
        if others is None:
            # Max over S: push N members down by the largest float (exact on S).
            e = torch.add(z, not_s, alpha=-torch.finfo(z.dtype).max)
            m_s = torch.maximum(e.amax(1, keepdim=True), z_t)
            gap = m_all - m_s
            torch.sub(z, m_s, out=e).addcmul_(not_s, gap, value=-1.0).exp_()
        else:
            m_s = torch.maximum(z.gather(1, others).amax(1, keepdim=True), z_t)
            gap = m_all - m_s
            e = torch.sub(z, m_all).exp_()  # e_n relative to m_S + gap ...
            e_s = torch.exp(z.gather(1, others) - m_s)  # ... e_s relative to m_S
        zt = z_t - m_s
    e.scatter_(1, t, 0.0)  # t belongs to neither sum
    if others is None:
        e_n = torch.mul(e, not_s, out=not_s)  # exact split of e into N ...
        e_s = e.sub_(e_n)  # ... and S - {t}
    else:
        if gap is None:
            e_s = e.gather(1, others)
        e_s.masked_fill_(others == t, 0.0)
        e_n = e.scatter_(1, others, 0.0)
    return e_s, e_n, zt, gap


class _ConveyanceFunction(torch.autograd.Function):
    """Per-sample Conveyance loss with a hand-written backward.

    Forward, in the notation of :func:`conveyance_loss`::

        a    = log(alpha) + LSE_{j != t} z_j - z_t              (target log-odds)
        b    = log(beta)  + LSE_{n in N} z_n - LSE_{s in S} z_s  (set log-odds)
        loss = LSE(0, a, b) = softplus(LSE(a, b))

    The log-sum-exps are taken relative to one reference ``r`` per row (see
    ``_shifted_exp``), each from a sum over its own members: ``LSE_{j != t}``
    adds the S and N sums and never computes ``log(exp(LSE_all) - exp(z_t))``
    (no cancellation when p_t ~ 1). An empty N gives ``LSE_N = log(0) =
    -inf``, so ``b = -inf`` and ``exp(b - loss) = 0``: the beta term drops out
    exactly, without NaN.

    Backward. With w_A = exp(a - loss), w_B = exp(b - loss) (the softmax
    weights of the outer LSE)::

        dloss/dz_k = w_A * da/dz_k + w_B * db/dz_k
        da/dz_k    = softmax_{j != t}(z)_k - [k = t]
        db/dz_k    = softmax_N(z)_k [k in N] - softmax_S(z)_k [k in S]

    and multiplying out the normalisers leaves one coefficient per group::

        k in N      : exp(z_k) * (alpha e^{-z_t - loss} + beta e^{-LSE_S - loss})
        k in S, != t: exp(z_k) * (alpha e^{-z_t - loss} - e^{b - LSE_S - loss})
        k = t       : -w_A - w_B exp(z_t - LSE_S)

    Each coefficient times its shifted exp(z_k) is at most about 1, so the
    gradient stays finite at logits of +-1e4.
    """

    @staticmethod
    def forward(ctx, z, target, not_s, others, log_alpha, log_beta):
        t = target[:, None]
        e_s, e_n, zt, gap = _shifted_exp(z, t, not_s, others)
        sum_n = e_n.sum(1, keepdim=True)
        sum_s = e_s.sum(1, keepdim=True)

        # Log-sum-exps minus the reference r of the row.
        lse_s = torch.log(sum_s + torch.exp(zt))
        if gap is None:
            lse_n = torch.log(sum_n)  # -inf when N is empty
            lse_not_t = torch.log(sum_n + sum_s)
        else:
            lse_n = gap + torch.log(sum_n)
            lse_not_t = gap + torch.log(torch.addcmul(sum_n, sum_s, torch.exp(-gap)))
        a = log_alpha + lse_not_t - zt
        b = log_beta + lse_n - lse_s
        loss = F.softplus(torch.logaddexp(a, b))

        ctx.save_for_backward(e_s, e_n, t, others, zt, gap, lse_s, a, b, loss)
        ctx.log_alpha, ctx.log_beta = log_alpha, log_beta
        return loss[:, 0]

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_loss):
        e_s, e_n, t, others, zt, gap, lse_s, a, b, loss = ctx.saved_tensors
        # e_s = exp(z_k - r) on S - {t}; e_n = exp(z_k - r - gap) on N.
        log_w_alpha = ctx.log_alpha - zt - loss  # log(alpha e^{-z_t - loss})
        log_w_beta = ctx.log_beta - lse_s - loss  # log(beta e^{-LSE_S - loss})
        w_alpha = torch.exp(log_w_alpha)
        if gap is None:
            coef_n = w_alpha + torch.exp(log_w_beta)
        else:
            coef_n = torch.exp(gap + log_w_alpha) + torch.exp(gap + log_w_beta)
        coef_s = w_alpha - torch.exp(b - lse_s - loss)
        grad_t = -torch.exp(a - loss) - torch.exp(b + zt - lse_s - loss)
        g = grad_loss[:, None]
        grad = torch.mul(e_n, g * coef_n)  # zero off N
        if others is None:
            grad.addcmul_(e_s, g * coef_s)
        else:
            grad.scatter_(1, others, e_s * (g * coef_s))  # padding writes 0 at t
        return grad.scatter_(1, t, g * grad_t), None, None, None, None, None


# Largest C for which the plausible sums come from one (B, C) x (C, 2C) matmul
# against a prepared 0/1 table (the sums of every label's S and N at once);
# beyond it the matmul costs more than the gathers it replaces.
_TABLE_MAX_CLASSES = 32


class _ConveyanceProbFunction(torch.autograd.Function):
    """The Conveyance loss from the softmax, when no p_t underflows (the usual case).

    Takes ``p = softmax(z)`` and ``p_t`` (computed without autograd by the
    caller, who checked ``p_t >= sqrt(tiny)``) and works in probability
    space, which needs far fewer torch operations than the log-space form of
    :class:`_ConveyanceFunction` (the torch-call count, not the arithmetic,
    is the cost at C <= 100)::

        e     = p with e_t = 0
        s_s   = sum of e over S - {t},  s_n = sum of e over N  (direct sums:
                1 - p_t and 1 - p_S are never formed by subtraction)
        x     = alpha (s_s + s_n) / p_t + beta s_n / (p_t + s_s)
        loss  = log1p(x)

    ``p_t >= sqrt(tiny)`` bounds ``x`` by about ``(alpha + beta) / sqrt(tiny)``
    (finite in float32). With ``L = 1 + x``, ``p_S = p_t + s_s`` and
    ``K = (alpha / p_t + beta / p_S) / L``, the gradient is
    ``p_k K`` on N, ``p_k (alpha / p_t - beta s_n / p_S^2) / L`` on S - {t}
    and ``-(alpha (1 - p_t) / p_t + beta p_t s_n / p_S^2) / L`` at t (the
    coefficients of :class:`_ConveyanceFunction`, in probability space).

    The plausible sets come as ``table`` (C, 2C), a 0/1 float table with
    columns ``t`` (S(t) - {t}) and ``C + t`` (N(t)) read with one matmul, as
    ``others`` (the sparse index of :func:`_plausible_index`, rows gathered
    per sample, padded with t), or as ``not_s`` (the (B, C) float mask of N).
    """

    @staticmethod
    def forward(ctx, z, p, p_t, t, tables, others, not_s, alpha, beta):
        e = p.scatter_(1, t, 0.0)  # p is the caller's fresh softmax: reuse it
        if tables is not None:
            table, n_rows = tables
            sums = torch.mm(e, table)  # (B, 2C): [S - {t} sums | N sums] per label t
            s_s = sums.gather(1, t)
            s_n = sums[:, e.shape[1]:].gather(1, t)
            first, second = e, n_rows  # e, and the (C, C) bool rows of N
        elif others is not None:
            e_s = e.gather(1, others)  # (B, K); the padding reads e_t = 0
            s_s = e_s.sum(1, keepdim=True)
            e_n = e.scatter_(1, others, 0.0)
            s_n = e_n.sum(1, keepdim=True)
            first, second = e_n, e_s
        else:
            e_n = torch.mul(e, not_s, out=not_s)
            e_s = e.sub_(e_n)
            s_n = e_n.sum(1, keepdim=True)
            s_s = e_s.sum(1, keepdim=True)
            first, second = e_n, e_s
        u = s_s + s_n
        p_s = p_t + s_s
        x = torch.div(u, p_t).mul_(alpha).addcdiv_(s_n, p_s, value=beta)
        ctx.save_for_backward(first, second, t, others, p_t, p_s, s_n, u, x)
        ctx.alpha, ctx.beta, ctx.table = alpha, beta, tables is not None
        return torch.log1p(x)[:, 0]

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_loss):
        first, second, t, others, p_t, p_s, s_n, u, x = ctx.saved_tensors
        w = grad_loss[:, None] / (x + 1.0)
        a = torch.reciprocal(p_t).mul_(ctx.alpha)  # alpha / p_t
        b = torch.reciprocal(p_s).mul_(ctx.beta)  # beta / p_S
        # rw = w beta s_n / p_S^2, formed as (beta s_n / p_S) * (w / p_S): each
        # factor stays below 1 / sqrt(tiny) and so does the product (it is at
        # most grad / p_S, since (x + 1) p_S >= beta s_n). Forming
        # beta s_n / p_S^2 first overflows once p_S^2 nears tiny (p_t just
        # above the sqrt(tiny) switch, S = {t}: an inf gradient).
        rw = (b * s_n).mul_(w / p_s)
        aw = a * w
        coef_s = aw - rw
        coef_n = (a + b).mul_(w)
        grad_t = torch.addcmul(aw * u, rw, p_t).neg_()
        # Each group gets its own coefficient (never coef_s + (coef_n -
        # coef_s), which cancels when both are large).
        if ctx.table:
            e, n_rows = first, second
            grad = torch.where(n_rows.index_select(0, t[:, 0]), coef_n, coef_s).mul_(e)
        elif others is not None:
            e_n, e_s = first, second
            grad = torch.mul(e_n, coef_n).scatter_(1, others, e_s * coef_s)  # 0 at t
        else:
            e_n, e_s = first, second
            grad = torch.mul(e_s, coef_s).addcmul_(e_n, coef_n)
        return grad.scatter_(1, t, grad_t), None, None, None, None, None, None, None, None


@jit
def _conveyance_kernel(p, inverse, target, in_s, alpha, beta, scale, threshold, loss):
    """The fused CPU kernel: per-row loss, and ``p`` overwritten by ``scale * dloss/dz``.

    ``p`` (B, C) times ``inverse`` (B,) is the softmax (``kernel_exp``: ``p``
    may hold ``exp(z - max z)``, normalised here on the fly), ``in_s[t]``
    (C,) the boolean row S(t) (its diagonal set), ``loss`` (B,) the output.
    The arithmetic is :class:`_ConveyanceProbFunction`'s (its docstring
    derives it), in float64 per row: ``s_s`` and ``s_n`` are direct sums over
    S - {t} and N (one pass, no subtraction), then one pass writes ``coef_n
    p_k`` on N, ``coef_s p_k`` on S - {t} and ``grad_t`` at t. Returns ``(status,
    total)``: ``total`` the sum of the losses, ``status`` 0, or, before
    anything is written, 1 when a target is outside ``[0, C)`` and 2 when
    some p_t is below ``threshold`` or NaN (the caller then takes the
    log-space path).
    """
    n_rows, n_classes = p.shape
    for b in range(n_rows):
        t = target[b]
        if t < 0 or t >= n_classes:
            return 1, 0.0
    for b in range(n_rows):
        if not p[b, target[b]] * inverse[b] >= threshold:
            return 2, 0.0
    total = 0.0
    for b in range(n_rows):
        row = p[b]
        t = target[b]
        member = in_s[t]
        inv = inverse[b]
        s_s = 0.0
        s_n = 0.0
        for k in range(n_classes):
            value = row[k]
            s_s += value if member[k] and k != t else 0.0
            s_n += 0.0 if member[k] else value
        s_s *= inv
        s_n *= inv
        p_t = float(row[t]) * inv
        u = s_s + s_n
        p_s = p_t + s_s
        x = alpha * u / p_t + beta * s_n / p_s
        loss[b] = np.log1p(x)
        total += loss[b]
        w = scale / (1.0 + x)
        a = alpha / p_t
        b_ = beta / p_s
        rw = b_ * s_n * (w / p_s)
        aw = a * w
        coef_s = aw - rw
        coef_n = (a + b_) * w
        coef_s *= inv  # the row holds p / inv
        coef_n *= inv
        for k in range(n_classes):
            row[k] *= coef_s if member[k] else coef_n
        row[t] = -(aw * u + rw * p_t)
    return 0, total


def _fused_conveyance(z, target, plausible, alpha, beta, reduction):
    """The loss by :func:`_conveyance_kernel`, or ``None`` when it declines the batch."""
    in_s = plausible.T  # row t = S(t); contiguous for the prepared column-major Q
    if not in_s.is_contiguous():
        in_s = in_s.contiguous()
    target = target.contiguous()
    threshold = _P_T_THRESHOLD[z.dtype]

    def run(z, scale):
        p, inverse = kernel_exp(z)
        loss = torch.empty(z.shape[0], dtype=z.dtype)
        status, total = _conveyance_kernel(
            p.numpy(), inverse, target.numpy(), in_s.numpy(), alpha, beta, scale, threshold,
            loss.numpy(),
        )
        if status == 1:
            raise IndexError("target out of range")  # target_range_checked: a ValueError
        return (loss, total, p) if status == 0 else None

    return fused_loss(z, run, reduction)


def _class_tables(plausible, dtype):
    """``(table, n_rows)`` for the small-C path of :class:`_ConveyanceProbFunction`.

    ``table`` (C, 2C): column t marks S(t) - {t}, column C + t marks N(t);
    ``n_rows`` (C, C): row t marks N(t). ``table`` is 0/1 in ``dtype``,
    ``n_rows`` boolean.
    """
    n_classes = plausible.shape[0]
    plausible = plausible | torch.eye(n_classes, dtype=torch.bool, device=plausible.device)
    in_s = plausible & ~torch.eye(n_classes, dtype=torch.bool, device=plausible.device)
    table = torch.cat([in_s, ~plausible], dim=1)
    return table.to(dtype), (~plausible).T.contiguous()


def _prepare(plausible):
    """Q as the loss reads it: boolean, diagonal set, column-major, plus its index.

    Returns ``(plausible, others)``: ``plausible.T`` (one row per observed
    label) is contiguous, so the per-batch gather is a row copy; ``others`` is
    the (C, K) table of :func:`_plausible_index`, or ``None`` for a dense Q.
    """
    if plausible.dtype != torch.bool:
        plausible = plausible != 0
    plausible = plausible | torch.eye(
        plausible.shape[0], dtype=torch.bool, device=plausible.device
    )
    plausible = plausible.T.contiguous().T
    return plausible, _plausible_index(plausible)


def _prepared(plausible, n_classes, device):
    """Validate ``plausible`` and return its prepared form, cached.

    A tensor is prepared once per (tensor, version) and stays on its device; a
    :class:`~skstruct.structures.ClassStructure` (anything with a
    ``plausibility_matrix()``) is prepared once per device, cached on the
    structure, and moved to ``device`` (the logits').
    """
    if not isinstance(plausible, torch.Tensor):
        if callable(getattr(plausible, "plausibility_matrix", None)) and callable(
            getattr(plausible, "_cached", None)
        ):
            structure = plausible
            if structure.n_classes != n_classes:
                raise ValueError(
                    f"plausible is a structure with {structure.n_classes} classes, but "
                    f"logits have {n_classes} columns."
                )

            def compute():
                q = torch.tensor(np.asarray(structure.plausibility_matrix(), dtype=bool))
                return _prepare(q.to(device))

            return structure._cached(("conveyance_prepared", str(device)), compute)
        raise TypeError(
            f"plausible must be a torch tensor or a class structure, got "
            f"{type(plausible).__name__}; use torch.as_tensor(Q, dtype=torch.bool)."
        )
    if plausible.shape != (n_classes, n_classes):
        raise ValueError(
            f"plausible must have shape ({n_classes}, {n_classes}) to match "
            f"logits with {n_classes} classes, got shape {tuple(plausible.shape)}."
        )
    return cached_prepare(plausible, "conveyance", lambda: _prepare(plausible))


def _check_conveyance_args(logits, target, alpha, beta, reduction):
    check_logits_target(logits, target)
    check_reduction(reduction)
    alpha, beta = _check_alpha_beta(alpha, beta)
    if logits.shape[1] == 0:
        raise ValueError("logits must have at least one class, got shape (n, 0).")
    return _log_weight(alpha), _log_weight(beta)


def _conveyance(logits, target, plausible, others, log_alpha, log_beta, reduction):
    """The loss from a prepared Q (see :func:`_prepare`): the one path of both forms.

    ``others`` is the plausible-set index, or ``None`` for the dense rows of
    ``plausible`` (any layout; column-major is fastest). Usually the
    probability-space :class:`_ConveyanceProbFunction` computes it (few torch
    calls); a batch in which some p_t falls below sqrt(tiny) takes the
    log-space :class:`_ConveyanceFunction` with its per-group shift.
    """
    z = _upcast(logits)
    if target.dtype != torch.int64:
        target = target.long()
    if fused_available(z):
        loss = _fused_conveyance(
            z, target, plausible, math.exp(log_alpha), math.exp(log_beta), reduction
        )
        if loss is not None:
            return loss
    t = target[:, None]
    n_classes = z.shape[1]
    with torch.no_grad():
        p = softmax(z)
        p_t = p.gather(1, t)
    if p_t.numel() == 0 or float(p_t.amin()) >= _P_T_THRESHOLD[z.dtype]:
        tables, not_s, index = None, None, None
        if n_classes <= _TABLE_MAX_CLASSES:
            tables = cached_prepare(
                plausible, ("conveyance_tables", z.dtype, z.device),
                lambda: _class_tables(plausible.to(z.device), z.dtype),
            )
        elif others is not None:
            index = others.index_select(0, target)
        else:
            not_s = _outside_rows(plausible, target, z.dtype)
        per_sample = _ConveyanceProbFunction.apply(
            z, p, p_t, t, tables, index, not_s, math.exp(log_alpha), math.exp(log_beta)
        )
        return reduce_loss(per_sample, reduction)
    if others is None:
        not_s = _outside_rows(plausible, target, z.dtype)
    else:
        not_s, others = None, others.index_select(0, target)
    per_sample = _ConveyanceFunction.apply(z, target, not_s, others, log_alpha, log_beta)
    return reduce_loss(per_sample, reduction)


def conveyance_loss(logits, target, plausible, *, alpha=0.1, beta=10.0, reduction="mean"):
    r"""Conveyance loss: push mass into the plausible set, then onto the target.

    For each sample with observed label ``t``, the plausible set is
    ``S = {t} ∪ {s : plausible[s, t]}`` and ``N`` the other classes. The loss
    adds two odds to one: how far the target is from certain, weighted by
    ``alpha``, and how much mass lies outside the plausible set, weighted by
    ``beta``. A large ``beta`` with a small ``alpha`` tolerates confusions
    inside S (label noise, ambiguous classes) while punishing implausible ones.

    Parameters
    ----------
    logits : torch.Tensor of shape (n_samples, n_classes)
        Unnormalised scores. float16 and bfloat16 are computed in float32.
    target : torch.Tensor of shape (n_samples,)
        Integer indices of the observed labels, in ``[0, n_classes)``.
    plausible : torch.Tensor of shape (n_classes, n_classes) or ClassStructure
        Boolean plausibility matrix Q: ``plausible[s, t]`` is True when true
        class ``s`` may appear under observed label ``t``. Non-boolean
        tensors are read as ``plausible != 0``. The diagonal is always treated
        as True. A class structure (e.g. a
        :class:`~skstruct.structures.ClassGraph`) stands for its
        ``plausibility_matrix()``, moved to the logits' device. Q is prepared
        once, as :class:`ConveyanceLoss` prepares it (column-major, and each
        label's plausible set when Q is sparse), and the preparation is cached
        by tensor identity and version counter (on the structure for a
        structure), so repeated calls with the same Q cost what the module
        costs; an in-place edit of Q is seen (writes through a NumPy array
        sharing its memory are not: pass a new tensor then).
    alpha : float, default=0.1
        Weight (>= 0) of the target odds ``(1 - p_t) / p_t``. ``alpha=0``
        gives a pure set (partial-label) loss ``-log p_S`` for beta = 1.
    beta : float, default=10.0
        Weight (>= 0) of the plausible-set odds ``(1 - p_S) / p_S``;
        ``alpha=1, beta=0`` is exactly cross-entropy. alpha and beta cannot
        both be 0.
    reduction : {'mean', 'sum', 'none'}, default='mean'
        How to reduce the per-sample losses, as in torch.

    Returns
    -------
    loss : torch.Tensor
        A scalar, or shape (n_samples,) when ``reduction='none'``; float32
        (float64 for float64 logits).

    See Also
    --------
    ConveyanceLoss : The module form, holding Q as a buffer.

    Notes
    -----
    With ``p = softmax(z)`` and ``p_S = sum_{s in S} p_s``:

    .. math::

        \ell = \log\left(1 + \alpha \frac{1 - p_t}{p_t}
                           + \beta \frac{1 - p_S}{p_S}\right)

    Since ``(1 - p_t)/p_t = exp(LSE_{j != t} z_j - z_t)`` and
    ``(1 - p_S)/p_S = exp(LSE_{n in N} z_n - LSE_{s in S} z_s)``, this is the
    three-term log-sum-exp computed here:

    .. math::

        \ell = \mathrm{LSE}\left(0,\ \log\alpha + \mathrm{LSE}_{j \ne t} z_j - z_t,
               \ \log\beta + \mathrm{LSE}_{n \in N} z_n - \mathrm{LSE}_{s \in S} z_s\right)

    Exact special cases: an empty ``N`` drops the beta term; ``S = {t}`` gives
    ``log(1 + (alpha + beta)(1 - p_t)/p_t)``, which is cross-entropy when
    ``alpha + beta = 1``; ``alpha = 1`` with ``S`` = all classes is also
    cross-entropy. The gradient is negative in ``z_t`` and positive in every
    ``z_n``, ``n in N``. Cost: O(n_samples * n_classes), one ``exp`` per
    logit; the backward pass is hand-written (first derivatives only). One
    host sync per call reads the smallest p_t, to pick the shift (see the
    source). Targets must lie in ``[0, n_classes)`` (else ValueError): on
    the CPU the indexing itself catches an out-of-range target, elsewhere
    one more host sync reads the smallest and largest target.

    References
    ----------
    .. [1] Taha, Montavon, Körber. "Conveyance". arXiv:2605.28420, 2026.

    Examples
    --------
    >>> import torch
    >>> from skstruct.losses import conveyance_loss
    >>> logits = torch.tensor([[2.0, 1.0, -1.0], [0.5, 0.0, 3.0]])
    >>> target = torch.tensor([0, 1])
    >>> plausible = torch.tensor([[True, True, False],
    ...                           [True, True, False],
    ...                           [False, False, True]])
    >>> conveyance_loss(logits, target, plausible)
    tensor(2.3550)
    """
    log_alpha, log_beta = _check_conveyance_args(logits, target, alpha, beta, reduction)
    plausible, others = _prepared(plausible, logits.shape[1], logits.device)
    with target_range_checked(target, logits.shape[1]):
        return _conveyance(logits, target, plausible, others, log_alpha, log_beta, reduction)


def _rebuild_index(module, incompatible_keys):
    """Recompute the plausible-set index of a ConveyanceLoss from its new Q."""
    module._others = _plausible_index(module.plausible)


class ConveyanceLoss(nn.Module):
    """Conveyance loss as a module holding the plausibility matrix.

    See :func:`conveyance_loss` for the formula and shapes. The module
    expects logits, not probabilities.

    Parameters
    ----------
    plausible : array-like or torch.Tensor of shape (n_classes, n_classes)
        Plausibility matrix Q, ``plausible[s, t]`` True when true class ``s``
        may appear under observed label ``t`` (non-zero means True). Stored,
        with its diagonal set, as the boolean buffer ``plausible``, so
        ``.to(device)`` and ``state_dict`` carry it. The buffer is kept
        column-major, which makes the per-batch gather a row copy; when every
        label has at most C / 8 plausible classes, the module also keeps each
        label's list (rebuilt by ``load_state_dict``), so that a batch costs
        little more than cross-entropy. Treat the buffer as read-only: build
        a new module to change Q.
    alpha : float, default=0.1
        Weight (>= 0) of the target odds.
    beta : float, default=10.0
        Weight (>= 0) of the plausible-set odds; not both 0.
    reduction : {'mean', 'sum', 'none'}, default='mean'
        Reduction over the batch.

    See Also
    --------
    conveyance_loss : The functional form.

    Examples
    --------
    >>> import torch
    >>> from skstruct.losses import ConveyanceLoss
    >>> criterion = ConveyanceLoss([[1, 1, 0], [1, 1, 0], [0, 0, 1]])
    >>> criterion
    ConveyanceLoss(n_classes=3, alpha=0.1, beta=10.0, reduction='mean')
    >>> logits = torch.tensor([[2.0, 1.0, -1.0], [0.5, 0.0, 3.0]])
    >>> criterion(logits, torch.tensor([0, 1]))
    tensor(2.3550)
    """

    def __init__(self, plausible, *, alpha=0.1, beta=10.0, reduction="mean"):
        super().__init__()
        self.alpha, self.beta = _check_alpha_beta(alpha, beta)
        self.reduction = check_reduction(reduction)
        plausible = torch.as_tensor(plausible)
        if plausible.ndim != 2 or plausible.shape[0] != plausible.shape[1]:
            raise ValueError(
                "plausible must be a square (n_classes, n_classes) matrix, got "
                f"shape {tuple(plausible.shape)}."
            )
        # The functional form's preparation (the same code path): boolean,
        # diagonal set, column-major (plausible.T, one row per observed label,
        # is contiguous), and each label's plausible classes when Q is sparse
        # (else None: dense rows of Q), rebuilt after load_state_dict.
        plausible, others = _prepare(plausible)
        self.register_buffer("plausible", plausible)
        self.register_buffer("_others", others, persistent=False)
        self.register_load_state_dict_post_hook(_rebuild_index)

    def extra_repr(self):
        return (
            f"n_classes={self.plausible.shape[0]}, alpha={self.alpha}, "
            f"beta={self.beta}, reduction={self.reduction!r}"
        )

    def forward(self, logits, target):
        """Return the loss of ``logits`` against ``target``.

        Parameters
        ----------
        logits : torch.Tensor of shape (n_samples, n_classes)
            Unnormalised scores.
        target : torch.Tensor of shape (n_samples,)
            Integer class indices.

        Returns
        -------
        loss : torch.Tensor
            A scalar, or shape (n_samples,) when ``reduction='none'``.
        """
        check_logits_target(logits, target)
        # alpha and beta as validated once (again if they were reassigned).
        weights = getattr(self, "_weights", None)
        if weights is None or weights[0] != self.alpha or weights[1] != self.beta:
            alpha, beta = _check_alpha_beta(self.alpha, self.beta)
            weights = (self.alpha, self.beta, _log_weight(alpha), _log_weight(beta))
            self._weights = weights
        log_alpha, log_beta = weights[2], weights[3]
        check_reduction(self.reduction)
        if logits.shape[1] == 0:
            raise ValueError("logits must have at least one class, got shape (n, 0).")
        n_classes = logits.shape[1]
        buffers = self._buffers  # nn.Module.__getattr__ costs about 0.5 us a buffer
        plausible = buffers["plausible"]
        if plausible.shape[0] != n_classes:
            raise ValueError(
                f"logits have {n_classes} columns but this ConveyanceLoss holds a "
                f"({plausible.shape[0]}, {plausible.shape[0]}) plausibility matrix."
            )
        with target_range_checked(target, n_classes):
            return _conveyance(
                logits, target, plausible, buffers["_others"], log_alpha, log_beta,
                self.reduction,
            )
