"""Average-K two-head loss: softmax CE plus pseudo-labelled BCE (Garcin et al., WACV 2025)."""

import math
from numbers import Real

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..utils.validation import check_positive_scalar
from ._conveyance import _upcast
from ._numba import FusedLoss, fused_available, jit
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


def _ranking_lse(z, lse):
    """The LSE the cells are ranked by: for float32, logsumexp in float64 rounded to float32.

    The fused kernel sums its LSE in float64 and rounds it to the logits'
    dtype. ``lse`` here (``z_max - log p_max`` in float32) can differ from it
    by an ulp, and scores of different rows that tie to an ulp (float32
    integer logits) would then be ranked differently on the two paths: other
    pseudo-positives, a loss 1.1 apart at B = 100, C = 12. Rounded from
    float64, both paths give the same LSE but for a sum within 1e-16 of a
    float32 rounding boundary.
    """
    if z.dtype == torch.float64 or z.device.type == "mps":  # MPS has no float64
        return lse
    return torch.logsumexp(z.double(), 1, keepdim=True).to(z.dtype)


def _pseudo_positive_cells(z, lse, t, n_pseudo):
    """Flat indices of the ``n_pseudo`` most probable cells off the true labels.

    Ranked by ``log p = z - LSE`` (``p`` underflows; ``log p`` does not), the
    true cells set to ``-inf``; ties go to the first cells (``_first_top_m``).
    """
    log_p = (z - lse).scatter_(1, t, -math.inf)
    return _first_top_m(log_p.view(-1), n_pseudo)


# The fused CPU kernel (numba; see ``_numba.py``). Derivation, per row b with
# target t, ``LSE = log sum_j exp(z_j)`` and the positive cells (t and the
# pseudo-positives P) fixed (no gradient through the selection):
#
#   loss_b  = (LSE - z_t) + softplus(-f_t) + w_p sum_{j in P_b} softplus(-f_j)
#             + w_n sum_{j in N_b} softplus(f_j)
#   dz_j    = p_j - [j = t]                                  (cross-entropy)
#   df_j    = -sigmoid(-f_t) at t, -w_p sigmoid(-f_j) on P, w_n sigmoid(f_j) on N
#
# (d softplus(x) / dx = sigmoid(x)). With a = exp(-|x|) in [0, 1], never an
# overflow: softplus(x) = max(x, 0) + log1p(a), and sigmoid(x) = 1 / (1 + a)
# for x >= 0, a / (1 + a) otherwise (sigmoid(-x) the other one), so one exp
# and one log1p per cell give the term and both sigmoids. The cells are
# ranked as the eager path ranks them: score = z_j - LSE computed in the
# logits' dtype (LSE rounded to it first), the true cells left out, ties to
# the first cell in row-major order. The top m are kept in a binary min-heap
# of size m on the key (score, -flat index), compared lexicographically (a
# total order: equal scores rank by cell, the first cell highest): a cell
# enters when its key beats the heap's smallest. When m > n / 2
# (n = B (C - 1) candidate cells) the heap keeps the n - m cells left out
# instead, on the key (-score, flat index), so that it never holds more than
# n / 2 cells. The heap's final minimum (A, I) then decides any cell in one
# comparison: kept iff key >= (A, I). The gradients are written already
# multiplied by ``scale`` (1 / B for 'mean'), as FusedLoss expects.
#
# Prefilter. A heap of m cells among n costs about m log(n / m) sift-downs
# of log m steps, most of the selection's time when m << n. So when
# n >= 16 m, a first heap takes the top ``rank`` keys of a sample (every
# stride-th column, about 8 cells sampled per kept one, and rank = 2 m /
# stride + 16), whose smallest key tau is below the m-th largest key with
# overwhelming probability; the heap then sees only the cells with key >=
# tau - margin, found by blocks of 64 columns with a vectorised count (a
# block without one is skipped), tested as sign z_j >= tau - margin + sign
# LSE. The margin, 2^-20 (|tau| + |LSE|), covers the roundings of the two
# forms, so these cells include every cell whose key reaches tau; when they
# are m cells or more they hold the top m, and the heap's final minimum is
# the one without the prefilter, whatever the sample (else every cell is
# offered again).


# Cody-Waite split of log(2) (the high part has 21 trailing zero bits, so
# n * _LN2_HI is exact) and 1 / log(2), for the exponential of the kernel.
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
_LOG2E = 1.4426950408889634


# The prefilter of the heap: when it keeps at most one cell in
# _PREFILTER_MIN_RATIO, from a sample of about _SAMPLE_STRIDE cells per kept one
# (one column in _SAMPLE_STRIDE at least).
_PREFILTER_MIN_RATIO = 16
_SAMPLE_STRIDE = 8


@jit
def _average_k_kernel(
    z, f, target, high, n_pseudo, w_n, w_p, scale, limit, lse, cross_entropy, keys, index, loss,
    grad_z, grad_f,
):
    """The fused CPU kernel: per-row losses, and ``scale`` times both heads' gradients.

    ``z`` and ``f`` (B, C) are the two heads, ``target`` (B,) int64, ``high``
    (B,) the row maxima of ``z``, ``n_pseudo`` the number m of
    pseudo-positive cells, ``w_n`` and ``w_p`` the BCE weights of the
    negatives and pseudo-positives, ``limit`` the largest logit magnitude
    taken (a quarter of the dtype's largest float, so that ``z - LSE`` cannot
    overflow). Outputs: ``lse`` (B,) in the logits' dtype, ``cross_entropy``
    (B,) float64 (the first head's terms), ``keys`` / ``index`` the heap (size
    ``min(m, n - m)``, see the comment above), ``loss`` (B,), and ``grad_z``
    / ``grad_f`` (B, C); with one row only, they are scratch rows (no
    gradient wanted). Returns ``(status, total)``: ``total`` the sum of the
    losses, ``status`` 0, or 1 when a target is outside ``[0, C)`` (before
    anything is written) and 2 when a logit of ``z`` is not finite or beyond
    ``limit`` (the caller then takes the eager path).

    The cell functions are computed in float64 for both dtypes, without
    branches, so that LLVM vectorises the row loops: ``exp(y)`` for ``y <= 0``
    by ``y = n log 2 + r``, ``|r| <= log(2) / 2``, the Taylor polynomial of
    degree 13 in ``r`` (truncation below 2e-16) times ``2^n`` built in the
    exponent bits (0 below ``y = -708``, where 2^n would leave the normal
    range: an error below 1e-307); ``log1p(a)`` for ``0 <= a <= 1`` as
    ``2 atanh(q)``, ``q = a / (2 + a) <= 1/3``, by its odd series to ``q^31``
    (truncation below 1e-16, and no cancellation for small ``a``). Divisions
    are ``np.divide``, which vectorises (``/`` checks for a zero divisor).
    """
    n_rows, n_classes = z.shape
    for b in range(n_rows):
        t = target[b]
        if t < 0 or t >= n_classes:
            return 1, 0.0
    write = grad_z.shape[0] == n_rows
    n_cells = n_rows * (n_classes - 1)
    top = n_pseudo <= n_cells - n_pseudo
    size = n_pseudo if top else n_cells - n_pseudo
    for b in range(n_rows):
        row = z[b]
        t = target[b]
        out = grad_z[b if write else 0]
        shift = np.float64(high[b])
        s = 0.0
        bad = 0
        for k in range(n_classes):  # exp(z - max), vectorised
            value = row[k]
            bad += 0 if abs(value) <= limit else 1  # NaN, +-inf or too large
            y = np.float64(value) - shift
            n = math.floor(y * _LOG2E + 0.5)
            r = (y - n * _LN2_HI) - n * _LN2_LO
            e = 1.0 / 6227020800.0
            e = e * r + 1.0 / 479001600.0
            e = e * r + 1.0 / 39916800.0
            e = e * r + 1.0 / 3628800.0
            e = e * r + 1.0 / 362880.0
            e = e * r + 1.0 / 40320.0
            e = e * r + 1.0 / 5040.0
            e = e * r + 1.0 / 720.0
            e = e * r + 1.0 / 120.0
            e = e * r + 1.0 / 24.0
            e = e * r + 1.0 / 6.0
            e = e * r + 0.5
            e = e * r + 1.0
            e = e * r + 1.0
            e = e * np.int64((np.int64(n) + 1023) << 52).view(np.float64)
            e = 0.0 if y < -708.0 else e
            s += e
            out[k] = e
        if bad > 0:
            return 2, 0.0
        lse_b = shift + math.log(s)
        lse[b] = lse_b
        cross_entropy[b] = lse_b - row[t]
        if write:
            coef = scale / s
            for k in range(n_classes):
                out[k] = out[k] * coef
            out[t] = out[t] - scale
    # The selection (see the comments above): phase 0 the sample's heap, phase
    # 1 the heap of the cells with key >= tau - margin (every cell when tau is
    # -inf), again with tau = -inf if those were fewer than ``size``.
    cells = np.empty(n_classes, np.int64)  # one row's cells to offer
    sign = z.dtype.type(1.0 if top else -1.0)  # key = sign * score
    tau = -math.inf
    stride = max(_SAMPLE_STRIDE, n_cells // (_SAMPLE_STRIDE * max(size, 1)))
    rank = (2 * size) // stride + 16
    prefilter = size > 0 and n_cells >= _PREFILTER_MIN_RATIO * size
    sample_keys = np.empty(rank if prefilter else 0, keys.dtype)
    sample_index = np.empty(rank if prefilter else 0, np.int64)
    phase = 0 if prefilter else 1
    while size > 0:
        heap_keys = sample_keys if phase == 0 else keys
        heap_index = sample_index if phase == 0 else index
        heap_size = rank if phase == 0 else size
        filled = 0
        for b in range(n_rows):
            row = z[b]
            t = target[b]
            lse_d = lse[b]  # rounded to the logits' dtype, as the eager ranking's LSE
            n_list = 0
            if phase == 0:
                for k in range(b % stride, n_classes, stride):
                    cells[n_list] = k
                    n_list += 0 if k == t else 1
            elif tau == -math.inf:
                for k in range(n_classes):
                    cells[n_list] = k
                    n_list += 0 if k == t else 1
            else:
                # key >= bar as sign * z_j >= bar + sign * LSE, in the logits'
                # dtype (their roundings are far below the margin)
                bar = tau - (abs(tau) + abs(float(lse_d))) * 2.0**-20
                bar_z = z.dtype.type(bar + float(sign) * float(lse_d))
                for start in range(0, n_classes, 64):
                    stop = min(start + 64, n_classes)
                    if stop - start == 64:  # count first (vectorised): most blocks have none
                        block = row[start:stop]
                        hits = 0
                        for k in range(64):
                            hits += 1 if sign * block[k] >= bar_z else 0
                        if hits == 0:
                            continue
                    for k in range(start, stop):
                        if sign * row[k] >= bar_z and k != t:
                            cells[n_list] = k
                            n_list += 1
            for i in range(n_list):
                k = cells[i]
                score = row[k] - lse_d
                key = score if top else -score
                cell = b * n_classes + k
                idx = -cell if top else cell
                if filled < heap_size:  # fill: sift up
                    position = filled
                    filled += 1
                    while position > 0:
                        parent = (position - 1) // 2
                        if heap_keys[parent] < key or (
                            heap_keys[parent] == key and heap_index[parent] < idx
                        ):
                            break
                        heap_keys[position] = heap_keys[parent]
                        heap_index[position] = heap_index[parent]
                        position = parent
                    heap_keys[position], heap_index[position] = key, idx
                elif key > heap_keys[0] or (key == heap_keys[0] and idx > heap_index[0]):
                    position = 0  # replace the minimum: sift down
                    while True:
                        child = 2 * position + 1
                        if child >= heap_size:
                            break
                        other = child + 1
                        if other < heap_size and (
                            heap_keys[other] < heap_keys[child]
                            or (heap_keys[other] == heap_keys[child]
                                and heap_index[other] < heap_index[child])
                        ):
                            child = other
                        if heap_keys[child] > key or (
                            heap_keys[child] == key and heap_index[child] > idx
                        ):
                            break
                        heap_keys[position] = heap_keys[child]
                        heap_index[position] = heap_index[child]
                        position = child
                    heap_keys[position], heap_index[position] = key, idx
        if phase == 0:
            tau = float(sample_keys[0]) if filled == rank else -math.inf
            phase = 1
        elif filled < size and tau != -math.inf:
            tau = -math.inf  # the sample's tau was too high: offer every cell
        else:
            break
    # The heap's minimum decides every cell; with no heap no key reaches +inf.
    kept_key = np.float64(keys[0]) if size > 0 else math.inf
    kept_index = index[0] if size > 0 else 0
    coef_n = scale * w_n
    coef_p = scale * w_p
    total = 0.0
    for b in range(n_rows):
        row = z[b]
        x_row = f[b]
        t = target[b]
        out = grad_f[b if write else 0]
        lse_d = lse[b]
        negative = 0.0
        pseudo = 0.0
        for k in range(n_classes):  # the BCE cells, vectorised
            score = row[k] - lse_d
            key = np.float64(score if top else -score)
            cell = b * n_classes + k
            idx = -cell if top else cell
            kept = (key > kept_key) | ((key == kept_key) & (idx >= kept_index))
            chosen = (kept == top) & (k != t)
            x = np.float64(x_row[k])
            y = -abs(x)
            n = math.floor(y * _LOG2E + 0.5)
            r = (y - n * _LN2_HI) - n * _LN2_LO
            a = 1.0 / 6227020800.0
            a = a * r + 1.0 / 479001600.0
            a = a * r + 1.0 / 39916800.0
            a = a * r + 1.0 / 3628800.0
            a = a * r + 1.0 / 362880.0
            a = a * r + 1.0 / 40320.0
            a = a * r + 1.0 / 5040.0
            a = a * r + 1.0 / 720.0
            a = a * r + 1.0 / 120.0
            a = a * r + 1.0 / 24.0
            a = a * r + 1.0 / 6.0
            a = a * r + 0.5
            a = a * r + 1.0
            a = a * r + 1.0
            a = a * np.int64((np.int64(n) + 1023) << 52).view(np.float64)
            a = 0.0 if y < -708.0 else a  # exp(-|x|)
            q = np.divide(a, 2.0 + a)
            w = q * q
            log_term = 1.0 / 31.0
            log_term = log_term * w + 1.0 / 29.0
            log_term = log_term * w + 1.0 / 27.0
            log_term = log_term * w + 1.0 / 25.0
            log_term = log_term * w + 1.0 / 23.0
            log_term = log_term * w + 1.0 / 21.0
            log_term = log_term * w + 1.0 / 19.0
            log_term = log_term * w + 1.0 / 17.0
            log_term = log_term * w + 1.0 / 15.0
            log_term = log_term * w + 1.0 / 13.0
            log_term = log_term * w + 1.0 / 11.0
            log_term = log_term * w + 1.0 / 9.0
            log_term = log_term * w + 1.0 / 7.0
            log_term = log_term * w + 1.0 / 5.0
            log_term = log_term * w + 1.0 / 3.0
            log_term = log_term * w + 1.0
            log_term = 2.0 * q * log_term  # log1p(a)
            inverse = np.divide(1.0, 1.0 + a)
            sigmoid = inverse if x >= 0.0 else a * inverse  # sigmoid(x)
            sigmoid_neg = a * inverse if x >= 0.0 else inverse  # sigmoid(-x)
            negative += 0.0 if chosen or k == t else (x if x > 0.0 else 0.0) + log_term
            pseudo += (0.0 if x > 0.0 else -x) + log_term if chosen else 0.0
            out[k] = -coef_p * sigmoid_neg if chosen else coef_n * sigmoid
        # The true cell: softplus(-f_t) and -sigmoid(-f_t), by the same formulas.
        x = np.float64(x_row[t])
        a = math.exp(-abs(x))
        inverse = 1.0 / (1.0 + a)
        positive = (0.0 if x > 0.0 else -x) + math.log1p(a)
        out[t] = -scale * (a * inverse if x >= 0.0 else inverse)
        value = cross_entropy[b] + positive + w_n * negative
        if n_pseudo > 0:  # w_p may be huge when k = 1 (then no pseudo term)
            value += w_p * pseudo
        loss[b] = value
        total += value
    return 0, total

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
            top = _pseudo_positive_cells(z, _ranking_lse(z, lse), t, n_pseudo)
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


def _fused_average_k(z, f, target, n_pseudo, w_n, w_p, reduction):
    """The loss by :func:`_average_k_kernel`, or ``None`` when it declines the batch.

    Declined: heads of different dtypes, a head that cannot take a kernel
    (see :func:`~skstruct.losses._numba.fused_available`), and a ``z`` with a
    non-finite or huge logit (the kernel's status 2). Without a gradient to
    compute (``torch.no_grad()``, or neither head requiring one) the kernel
    skips the gradient buffers and no autograd node is made.
    """
    if f.dtype != z.dtype or not fused_available(f):
        return None
    target = target.contiguous()
    limit = torch.finfo(z.dtype).max / 4

    def run(z, f, scale, write=True):
        n_rows, n_classes = z.shape
        n_cells = n_rows * (n_classes - 1)
        size = min(n_pseudo, n_cells - n_pseudo)
        lse = torch.empty(n_rows, dtype=z.dtype)
        cross_entropy = torch.empty(n_rows, dtype=torch.float64)
        keys = torch.empty(size, dtype=z.dtype)
        index = torch.empty(size, dtype=torch.int64)
        loss = torch.empty(n_rows, dtype=z.dtype)
        shape = (n_rows if write else 1, n_classes)  # one scratch row without gradient
        grad_z = torch.empty(shape, dtype=z.dtype)
        grad_f = torch.empty(shape, dtype=z.dtype)
        high = z.amax(1)
        status, total = _average_k_kernel(
            z.numpy(), f.numpy(), target.numpy(), high.numpy(), n_pseudo, w_n, w_p, scale, limit,
            lse.numpy(), cross_entropy.numpy(), keys.numpy(), index.numpy(), loss.numpy(),
            grad_z.numpy(), grad_f.numpy(),
        )
        if status == 1:
            raise IndexError("target out of range")  # target_range_checked: a ValueError
        return (loss, total, grad_z, grad_f) if status == 0 else None

    scale = 1.0 / z.shape[0] if reduction == "mean" else 1.0
    write = torch.is_grad_enabled() and (z.requires_grad or f.requires_grad)
    result = run(z.detach(), f.detach(), scale, write)
    if result is None:
        return None
    if not write:
        loss, total = result[:2]
        return loss if reduction == "none" else torch.tensor(total * scale, dtype=z.dtype)
    return FusedLoss.apply(run, reduction, scale, result, z, f)


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
    target = target.long()
    w_n, w_p = alpha / (n_classes - k), alpha / max(k - 1.0, 1e-300)
    with target_range_checked(target, n_classes):
        if fused_available(z):
            loss = _fused_average_k(z, f, target, n_pseudo, w_n, w_p, reduction)
            if loss is not None:
                return loss
        per_sample = _AverageKFunction.apply(z, f, target, n_pseudo, w_n, w_p)
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
