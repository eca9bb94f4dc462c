"""Squared Earth Mover's Distance losses for ordered classes (arXiv 1611.05916)."""

import numpy as np
import torch
from torch import nn

from ..utils.validation import check_positive_scalar
from ._cache import cached_prepare
from ._conveyance import _upcast
from ._numba import fused_available, fused_loss, jit, kernel_exp
from ._reduction import (
    check_logits_target,
    check_reduction,
    reduce_loss,
    softmax_lse,
    target_range_checked,
)

__all__ = ["EMD2GroundLoss", "EMD2Loss", "emd2_ground_loss", "emd2_loss"]


def _check_rank(rank, n_classes):
    """O(1) checks of a rank vector; return it as int64 (no permutation check)."""
    if not isinstance(rank, torch.Tensor):
        raise TypeError(
            f"rank must be a torch tensor of shape ({n_classes},), got "
            f"{type(rank).__name__}; use torch.as_tensor(rank)."
        )
    if rank.shape != (n_classes,):
        raise ValueError(
            f"rank must have shape ({n_classes},) to match logits with {n_classes} "
            f"classes, got shape {tuple(rank.shape)}."
        )
    if rank.is_floating_point() or rank.is_complex() or rank.dtype == torch.bool:
        raise TypeError(f"rank must hold integer ranks 0..n_classes-1, got {rank.dtype}.")
    return rank


def _prepared_rank(rank, n_classes, device):
    """``(rank, order)`` as int64 on ``device``, ``order`` the inverse permutation.

    Cached by the identity and version of ``rank`` (see ``_cache.py``), so
    the functional form and the module run the same code at the same cost.
    """
    rank = _check_rank(rank, n_classes)

    def prepare():
        r = _check_permutation(rank).long().to(device)
        # order[r] = the column of rank r (the inverse permutation).
        order = torch.empty_like(r).scatter_(0, r, torch.arange(n_classes, device=device))
        return r, order

    return cached_prepare(rank, ("emd2_rank", str(device)), prepare)


def _prepared_cost(distance, omega, mu, dtype):
    """``D**omega + mu`` in ``dtype``, column-major (a row copy per target), cached."""

    def prepare():
        cost = distance.to(dtype).pow(omega).add_(mu)
        return cost.T.contiguous()  # row t = column t of the cost

    return cached_prepare(distance, ("emd2_ground", omega, mu, dtype), prepare)


def _check_permutation(rank):
    """Return ``rank`` as a 1-D int64 tensor if it is a permutation of 0..C-1."""
    rank = torch.as_tensor(rank)
    if rank.ndim != 1 or rank.is_floating_point() or rank.dtype == torch.bool:
        raise ValueError(
            "rank must be a 1-D integer array giving each column's rank, got "
            f"dtype {rank.dtype} and shape {tuple(rank.shape)}."
        )
    rank = rank.long()
    expected = torch.arange(rank.shape[0], device=rank.device)
    if not torch.equal(torch.sort(rank).values, expected):
        raise ValueError(
            f"rank must be a permutation of 0..{rank.shape[0] - 1} (each rank "
            "exactly once); pass e.g. Ordinal(...).ranks."
        )
    return rank


class _EMD2Function(torch.autograd.Function):
    """Per-sample squared EMD (+ CE) with a hand-written backward.

    With ``p`` in scale order and ``r`` the target's rank, the CDF difference
    is ``diff_k = CDF_k(p) - [k >= r] = cumsum(p')_k`` where ``p'`` is ``p``
    with ``p'_r = p_r - 1`` computed as ``-(sum of the other p)``: below r the
    running sum is the CDF, from r on it is minus the mass above k, so a
    confident correct prediction keeps its relative accuracy (exactly 0 at a
    one-hot prediction) and one cumsum gives both sides. The loss
    ``sum_k diff_k^2`` is read as the squared row norm (one reduction pass).

    Backward. ``dloss/dp_j = 2 sum_{k >= j} diff_k``, or, up to a constant
    that the softmax Jacobian removes, ``-2 X_j`` with
    ``X_j = sum_{k < j} diff_k = cumsum(diff)_j - diff_j`` (a forward cumsum
    again). With ``D = <p, -2 X> = -2 (<p', X> + X_r)`` (the true
    ``p = p' + e_r``), the softmax Jacobian gives ``p_j (-2 X_j - D)``, and
    the CE term adds ``w (p - e_r) = w p'``. Times the incoming gradient
    ``g``, with ``A_j = -2 g X_j + g (w - D)``::

        dz_j = p'_j A_j + [j = r] (A_r - w g)

    so the (B, C) work is ``X * (-2 g) + g (w - D)``, times ``p'``, in place
    on the buffer of X, and one scatter at r. Saved: ``p'`` only (one (B, C)
    tensor, as cross-entropy saves its log-softmax).
    """

    @staticmethod
    def forward(ctx, z, target, target_rank, order, rank, ce_weight):
        zz = z if order is None else z.index_select(1, order)
        r = (target if target_rank is None else target_rank)[:, None]
        p, lse = softmax_lse(zz)
        del zz
        p.scatter_(1, r, 0.0)
        p.scatter_(1, r, -p.sum(1, keepdim=True))  # p' (p_r - 1, without cancellation)
        per_sample = torch.linalg.vector_norm(p.cumsum(1), dim=1).square_()
        if ce_weight > 0:
            per_sample = per_sample + ce_weight * (lse[:, 0] - z.gather(1, target[:, None])[:, 0])
        ctx.save_for_backward(p, r, rank)
        ctx.ce_weight = ce_weight
        return per_sample

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_loss):
        p, r, rank = ctx.saved_tensors  # p is p' (see the class docstring)
        diff = p.cumsum(1)
        x = diff.cumsum(1).sub_(diff)  # X_j = sum_{k < j} diff_k
        del diff
        x_r = x.gather(1, r)
        g = grad_loss[:, None]
        wg = ctx.ce_weight * g
        # g (w - D) with D = -2 (<p', X> + X_r)
        offset = torch.linalg.vecdot(p, x, dim=1)[:, None].add_(x_r).mul_(2.0 * g).add_(wg)
        a_r = torch.addcmul(offset, x_r, g, value=-2.0)  # A_r
        grad = x.mul_(-2.0 * g).add_(offset).mul_(p)  # p' A
        grad.scatter_add_(1, r, a_r.sub_(wg))
        if rank is not None:
            grad = grad.index_select(1, rank)  # back to the column order
        return grad, None, None, None, None, None


class _EMD2GroundFunction(torch.autograd.Function):
    """Per-sample ``CE + sum_i p_i^2 cost_i`` with a hand-written backward.

    With ``L = sum_i p_i^2 cost_i``, ``dL/dp_i = 2 p_i cost_i`` and the softmax
    Jacobian give ``dz_i = 2 p_i (p_i cost_i - L)``; cross-entropy adds
    ``w (p_i - [i = t])``. Times the incoming gradient ``g``::

        dz_i = p_i (2 g pc_i + g (w - 2 L)) - [i = t] w g,   pc_i = p_i cost_i

    Saved: ``p``, ``L`` and ``pc`` (the forward's product), so the backward
    is three passes over (B, C) and no second gather of the cost rows. The
    saved tensors are never written (``retain_graph`` and gradcheck call the
    backward more than once).
    """

    @staticmethod
    def forward(ctx, z, target, cost, ce_weight):
        t = target[:, None]
        p, lse = softmax_lse(z)
        pc = cost.index_select(0, target).mul_(p)
        emd = torch.linalg.vecdot(pc, p, dim=1)
        per_sample = emd
        if ce_weight > 0:
            per_sample = emd + ce_weight * (lse[:, 0] - z.gather(1, t)[:, 0])
        ctx.save_for_backward(p, pc, emd, t)
        ctx.ce_weight = ce_weight
        return per_sample

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_loss):
        p, pc, emd, t = ctx.saved_tensors
        w = ctx.ce_weight
        g = grad_loss[:, None]
        grad = torch.mul(pc, 2.0 * g).add_((w - 2.0 * emd[:, None]) * g).mul_(p)
        if w > 0:
            grad.scatter_add_(1, t, -w * g)
        return grad, None, None, None


# --- Fused CPU kernels (numba; see _numba.py) ---
#
# Both kernels take ``p`` (B, C) and ``inverse`` (B,) from ``kernel_exp``
# (``p * inverse`` the softmax: torch's, or ``exp(z - max z)`` by numba's
# vectorised polynomial with 1 / its sum) and overwrite ``p``, row by row,
# with ``scale * dloss_b / dz_b``; all sums run in float64.
#
# EMD2. In rank order (q_k the probability of rank k, r the target's rank),
# ``S_o = sum_{k != r} q_k`` is summed directly (never ``1 - q_r``) and
# ``q'`` is q with ``q'_r = -S_o``, as in :class:`_EMD2Function`. Then
#
#     P_k = q'_0 + ... + q'_k = CDF_k(p) - [k >= r],     L = sum_k P_k^2,
#
# below r a sum of probabilities, from r on ``P_{r-1} - S_o + ...`` with an
# error of a few float64 ulps of S_o: small relative to the loss when the
# prediction is confident, and exactly 0 at a one-hot prediction. With
# ``X_j = P_0 + ... + P_{j-1}``, ``dL/dq_j = 2 sum_{k >= j} P_k`` differs
# from its value at r by ``2 (X_r - X_j)``, and the softmax Jacobian (which
# removes constants) needs the mean ``sum_j q_j (dL/dq_j - dL/dq_r)``,
# which is ``2 L`` (split at r and exchange the double sums:
# ``sum_{j<r} q_j sum_{k=j}^{r-1} P_k = sum_{k<r} P_k^2``, likewise above).
# With the cross-entropy's ``w (q - e_r)`` and ``q_r - 1 = -S_o``::
#
#     dz_j = q_j (2 X_r - 2 X_j - 2 L + w)   (j != r),
#     dz_r = -2 L q_r - w S_o.
#
# The cross-entropy is ``log1p(S_o / q_r)`` (relative accuracy as q_r -> 1),
# or, for q_r below the dtype's tiny (an underflowed softmax), ``z_m -
# log(p_m) - z_t`` with m the most probable class (``p_m >= 1/C``; the
# eager path's ``LSE - z_t``). P and X are scans: chains of dependent
# additions, so the kernel runs them for four rows at once (independent
# chains in flight; rows taken in the order of their r, so that only the
# group's own ranks need the ``k == r`` test), reading the columns in rank
# order through ``order`` (a gather within rows that are in cache, no
# permuted copy). The pass that sums S_o also writes q = p * inverse in
# float64 to a (4, C) scratch (vectorised), which the scans read and
# overwrite in place with X: the float32-to-float64 conversions then stay
# off the scans, which run 8-15 % faster at C = 100 to 1,000 and about 20 %
# with a rank order at C = 10,000 (about 5 % slower without one there, where
# the scratch outgrows the cache). S_o and the gradient are passes without
# a chain.
#
# EMD2-ground. With ``c`` the prepared cost row of the target, ``L = sum_i
# p_i^2 c_i`` and ``dz_i = p_i (2 p_i c_i - 2 L + w) - [i = t] w``; at t the
# ``w (p_t - 1)`` is written ``-w S_o`` (S_o summed as above). Both passes
# vectorise.


@jit
def _emd2_kernel(p, inverse, z, target, order, rank, ce_weight, scale, tiny, loss):
    """The fused EMD2 kernel: per-row loss, and ``p`` overwritten by ``scale * dloss/dz``.

    Parameters
    ----------
    p : ndarray of shape (n_samples, n_classes)
        The softmax of ``z`` divided by ``inverse`` (``kernel_exp``), float32
        or float64; overwritten by the gradient.
    inverse : ndarray of shape (n_samples,)
        float64: ``p[b] * inverse[b]`` is the softmax of row b.
    z : ndarray of shape (n_samples, n_classes)
        The logits (read only for a target probability below ``tiny``).
    target : ndarray of shape (n_samples,)
        int64 column of each target.
    order, rank : ndarray of shape (n_classes,) or (0,)
        int64: ``order[k]`` the column of rank k, ``rank[c]`` the rank of
        column c; both empty when the columns are in rank order.
    ce_weight, scale, tiny : float
        Weight of the cross-entropy, factor of the gradient (1 / B for the
        mean), and the dtype's smallest normal number.
    loss : ndarray of shape (n_samples,)
        Output: the per-sample losses.

    Returns
    -------
    status : int
        0; or, before anything is written, 1 when a target is outside
        ``[0, C)`` and 2 when some target probability is NaN (the caller
        then takes the eager path).
    total : float
        The sum of the losses (float64).
    """
    n_rows, n_classes = p.shape
    ranked = order.shape[0] != 0
    for b in range(n_rows):
        t = target[b]
        if t < 0 or t >= n_classes:
            return 1, 0.0
    for b in range(n_rows):
        if not p[b, target[b]] * inverse[b] == p[b, target[b]] * inverse[b]:  # NaN
            return 2, 0.0
    w = ce_weight
    # The rows in the order of their target's rank: the four rows of a group
    # then have nearly the same r, and the scan tests k == r only at the
    # group's own (at most four) ranks.
    target_ranks = np.empty(n_rows, np.int64)
    for b in range(n_rows):
        target_ranks[b] = rank[target[b]] if ranked else target[b]
    # a counting sort (ranks are in [0, C)): stable, O(B + C)
    starts = np.zeros(n_classes + 1, np.int64)
    for b in range(n_rows):
        starts[target_ranks[b] + 1] += 1
    for k in range(n_classes):
        starts[k + 1] += starts[k]
    by_rank = np.empty(n_rows, np.int64)
    for b in range(n_rows):
        r = target_ranks[b]
        by_rank[starts[r]] = b
        starts[r] += 1
    x = np.empty((4, n_classes))  # q, then X_k, of four rows at the column of rank k
    rows = np.empty(4, np.int64)
    others = np.empty(4)  # S_o
    total = 0.0
    for start in range(0, n_rows, 4):
        for i in range(4):  # past the last row: repeat it (computed, not written)
            b = by_rank[min(start + i, n_rows - 1)]
            rows[i] = b
            t = target[b]
            row = p[b]
            v = inverse[b]
            q = x[i]
            s_o = 0.0
            for c in range(n_classes):  # vectorised: q in float64, and S_o
                q_c = float(row[c]) * v
                q[c] = q_c
                s_o += q_c if c != t else 0.0
            others[i] = s_o
        r0, r1 = target_ranks[rows[0]], target_ranks[rows[1]]
        r2, r3 = target_ranks[rows[2]], target_ranks[rows[3]]
        m0, m1, m2, m3 = -others[0], -others[1], -others[2], -others[3]
        x0, x1, x2, x3 = x[0], x[1], x[2], x[3]
        c0 = c1 = c2 = c3 = 0.0  # P_k
        a0 = a1 = a2 = a3 = 0.0  # X_k
        e0 = e1 = e2 = e3 = 0.0  # L
        k = 0
        for stop in (r0, r1, r2, r3, n_classes):  # r0 <= r1 <= r2 <= r3
            for j in range(k, stop):  # no target rank in [k, stop)
                # unsigned: numba then indexes without the wraparound test of
                # a negative index (3-5 % of the kernel)
                col = np.uint64(order[j]) if ranked else np.uint64(j)
                c0 += x0[col]  # q, then X in its place
                c1 += x1[col]
                c2 += x2[col]
                c3 += x3[col]
                x0[col] = a0
                x1[col] = a1
                x2[col] = a2
                x3[col] = a3
                a0 += c0
                a1 += c1
                a2 += c2
                a3 += c3
                e0 += c0 * c0
                e1 += c1 * c1
                e2 += c2 * c2
                e3 += c3 * c3
            k = max(k, stop)
            if k == stop and k < n_classes:  # the rank of a target: q'_r = -S_o there
                col = np.uint64(order[k]) if ranked else np.uint64(k)
                c0 += m0 if k == r0 else x0[col]
                c1 += m1 if k == r1 else x1[col]
                c2 += m2 if k == r2 else x2[col]
                c3 += m3 if k == r3 else x3[col]
                x0[col] = a0
                x1[col] = a1
                x2[col] = a2
                x3[col] = a3
                a0 += c0
                a1 += c1
                a2 += c2
                a3 += c3
                e0 += c0 * c0
                e1 += c1 * c1
                e2 += c2 * c2
                e3 += c3 * c3
                k += 1
        emds = (e0, e1, e2, e3)
        for i in range(min(4, n_rows - start)):
            b = rows[i]
            row = p[b]
            xs = x[i]
            t = target[b]
            emd = emds[i]
            s_o = others[i]
            inv = inverse[b]
            q_r = float(row[t]) * inv
            value = emd
            if w > 0:
                if q_r >= tiny:
                    ce = np.log1p(s_o / q_r)
                else:  # the softmax underflowed at t: LSE - z_t from the top class
                    m = 0
                    for c in range(n_classes):
                        if row[c] > row[m]:
                            m = c
                    ce = (float(z[b, m]) - float(z[b, t])) - np.log(float(row[m]) * inv)
                value += w * ce
            loss[b] = value
            total += value
            base = 2.0 * (xs[t] - emd) + w  # xs[t] = X_r
            factor = scale * inv  # the row holds p / inv
            for c in range(n_classes):
                row[c] = factor * row[c] * (base - 2.0 * xs[c])
            row[t] = -scale * (2.0 * emd * q_r + w * s_o)
    return 0, total


@jit
def _emd2_ground_kernel(p, inverse, z, target, cost, ce_weight, scale, tiny, loss):
    """The fused EMD2-ground kernel: per-row loss, ``p`` overwritten by ``scale * dloss/dz``.

    Parameters
    ----------
    p : ndarray of shape (n_samples, n_classes)
        The softmax of ``z`` divided by ``inverse`` (``kernel_exp``), float32
        or float64; overwritten by the gradient.
    inverse : ndarray of shape (n_samples,)
        float64: ``p[b] * inverse[b]`` is the softmax of row b.
    z : ndarray of shape (n_samples, n_classes)
        The logits (read only for a target probability below ``tiny``).
    target : ndarray of shape (n_samples,)
        int64 column of each target.
    cost : ndarray of shape (n_classes, n_classes)
        Row t: the cost ``D[i, t]**omega + mu`` of each class i.
    ce_weight, scale, tiny : float
        Weight of the cross-entropy, factor of the gradient (1 / B for the
        mean), and the dtype's smallest normal number.
    loss : ndarray of shape (n_samples,)
        Output: the per-sample losses.

    Returns
    -------
    status : int
        0; or, before anything is written, 1 when a target is outside
        ``[0, C)`` and 2 when some target probability is NaN.
    total : float
        The sum of the losses (float64).
    """
    n_rows, n_classes = p.shape
    for b in range(n_rows):
        t = target[b]
        if t < 0 or t >= n_classes:
            return 1, 0.0
    for b in range(n_rows):
        if not p[b, target[b]] * inverse[b] == p[b, target[b]] * inverse[b]:  # NaN
            return 2, 0.0
    w = ce_weight
    total = 0.0
    for b in range(n_rows):
        row = p[b]
        t = target[b]
        c = cost[t]
        inv = inverse[b]
        emd = 0.0
        s_o = 0.0
        for i in range(n_classes):
            v = float(row[i])
            emd += v * v * c[i]
            s_o += v if i != t else 0.0
        emd *= inv * inv  # the row holds p / inv
        s_o *= inv
        p_t = float(row[t]) * inv
        value = emd
        if w > 0:
            if p_t >= tiny:
                ce = np.log1p(s_o / p_t)
            else:  # the softmax underflowed at t: LSE - z_t from the top class
                m = 0
                for k in range(n_classes):
                    if row[k] > row[m]:
                        m = k
                ce = (float(z[b, m]) - float(z[b, t])) - np.log(float(row[m]) * inv)
            value += w * ce
        loss[b] = value
        total += value
        # scale p (2 p c + w - 2 L) with p = v inv, in the logits' precision (a
        # float32 pass vectorises twice as wide; the sums above stay float64)
        twice = row.dtype.type(2.0 * scale * inv * inv)
        shift = row.dtype.type(scale * inv * (w - 2.0 * emd))
        for i in range(n_classes):
            v = row[i]
            row[i] = v * (twice * v * c[i] + shift)
        row[t] = scale * (p_t * (2.0 * p_t * c[t] - 2.0 * emd) - w * s_o)
    return 0, total


_NO_RANK = torch.empty(0, dtype=torch.int64)


def _fused_emd2(z, target, rank, order, ce_weight, reduction):
    """The loss by :func:`_emd2_kernel`, or ``None`` when it declines the batch."""
    if rank is None:
        rank = order = _NO_RANK
    target = target.contiguous()
    tiny = torch.finfo(z.dtype).tiny

    def run(z, scale):
        p, inverse = kernel_exp(z)
        loss = torch.empty(z.shape[0], dtype=z.dtype)
        status, total = _emd2_kernel(
            p.numpy(), inverse, z.numpy(), target.numpy(), order.numpy(), rank.numpy(),
            ce_weight, scale, tiny, loss.numpy(),
        )
        if status == 1:
            raise IndexError("target out of range")  # target_range_checked: a ValueError
        return (loss, total, p) if status == 0 else None

    return fused_loss(z, run, reduction)


def _fused_emd2_ground(z, target, cost, ce_weight, reduction):
    """The loss by :func:`_emd2_ground_kernel`, or ``None`` when it declines the batch."""
    if cost.device.type != "cpu":
        return None  # the eager path reports the device mismatch
    target = target.contiguous()
    tiny = torch.finfo(z.dtype).tiny

    def run(z, scale):
        p, inverse = kernel_exp(z)
        loss = torch.empty(z.shape[0], dtype=z.dtype)
        status, total = _emd2_ground_kernel(
            p.numpy(), inverse, z.numpy(), target.numpy(), cost.numpy(), ce_weight, scale, tiny,
            loss.numpy(),
        )
        if status == 1:
            raise IndexError("target out of range")  # target_range_checked: a ValueError
        return (loss, total, p) if status == 0 else None

    return fused_loss(z, run, reduction)


def emd2_loss(logits, target, *, rank=None, ce_weight=0.0, reduction="mean"):
    r"""Squared Earth Mover's Distance between softmax(logits) and the target.

    For classes on an ordinal scale, the squared EMD between the predicted
    distribution and a point mass on the target is the squared distance
    between their cumulative distribution functions along the scale (the
    ranked probability score). Unlike cross-entropy, it charges more for mass
    placed far from the target rank than for mass placed next to it.

    Parameters
    ----------
    logits : torch.Tensor of shape (n_samples, n_classes)
        Unnormalised scores, columns in the estimator's ``classes_`` order.
        float16 and bfloat16 are computed in float32.
    target : torch.Tensor of shape (n_samples,)
        Integer column indices of the true labels.
    rank : torch.Tensor of shape (n_classes,), default=None
        Integer rank 0..n_classes-1 of each column on the ordinal scale (a
        permutation; only its shape is checked here). ``None`` means the
        columns are already in scale order.
    ce_weight : float, default=0.0
        Weight (>= 0) of an added cross-entropy term.
    reduction : {'mean', 'sum', 'none'}, default='mean'
        How to reduce the per-sample losses, as in torch.

    Returns
    -------
    loss : torch.Tensor
        A scalar, or shape (n_samples,) when ``reduction='none'``; float32
        (float64 for float64 logits).

    See Also
    --------
    EMD2Loss : The module form, holding ``rank`` as a buffer.
    emd2_ground_loss : The variant for a general ground distance.

    Notes
    -----
    With ``p = softmax(z)`` reordered along the scale and ``r`` the rank of
    the target:

    .. math::

        \ell = \sum_{k=0}^{C-1} \left(\mathrm{CDF}_k(p) - [k \ge r]\right)^2
               + \lambda_{CE} \, \mathrm{CE}(z, t)

    Below ``r`` the difference is ``CDF_k(p)``; from ``r`` on it is minus the
    mass above ``k``, summed from the top of the scale rather than as
    ``CDF_k(p) - 1``, so a confident correct prediction gives a loss that is
    small relative to its size (exactly 0 at a one-hot prediction) and not a
    rounding error. The loss is symmetric under reversing the scale. Cost:
    O(n_samples * n_classes).

    References
    ----------
    .. [1] Hou, Yu, Samaras. "Squared Earth Mover's Distance-based Loss for
       Training Deep Neural Networks". arXiv:1611.05916, 2016.

    Examples
    --------
    >>> import torch
    >>> from skstruct.losses import emd2_loss
    >>> logits = torch.tensor([[2.0, 1.0, 0.0, -1.0]])
    >>> emd2_loss(logits, torch.tensor([0]))
    tensor(0.1420)
    >>> emd2_loss(logits, torch.tensor([3]))  # far from the mode: larger
    tensor(2.1273)
    """
    check_logits_target(logits, target)
    check_reduction(reduction)
    ce_weight = check_positive_scalar(ce_weight, "ce_weight", allow_zero=True)
    z = _upcast(logits)
    n_classes = z.shape[1]
    order = target_rank = None
    if rank is not None:
        rank, order = _prepared_rank(rank, n_classes, z.device)
    with target_range_checked(target, n_classes):
        target = target.long()
        if fused_available(z):
            loss = _fused_emd2(z, target, rank, order, ce_weight, reduction)
            if loss is not None:
                return loss
        if rank is not None:
            target_rank = rank.index_select(0, target)
        per_sample = _EMD2Function.apply(z, target, target_rank, order, rank, ce_weight)
    return reduce_loss(per_sample, reduction)


def emd2_ground_loss(
    logits, target, distance, *, omega=2.0, mu=0.0, ce_weight=1.0, reduction="mean"
):
    r"""Cross-entropy plus an EMD-style penalty under a general ground distance.

    Each class ``i`` is charged its squared predicted probability times its
    distance to the target raised to ``omega`` (plus ``mu``), so mass on
    classes far from the target in the structure costs more. This is the form
    used for hierarchies and graphs, where no single order exists.

    Parameters
    ----------
    logits : torch.Tensor of shape (n_samples, n_classes)
        Unnormalised scores. float16 and bfloat16 are computed in float32.
    target : torch.Tensor of shape (n_samples,)
        Integer column indices of the true labels.
    distance : torch.Tensor of shape (n_classes, n_classes)
        Ground distance ``D[i, t] >= 0`` between class ``i`` and the target
        ``t`` (e.g. ``structure.distance_matrix()``), zero on the diagonal.
    omega : float, default=2.0
        Exponent (> 0) applied to the distance.
    mu : float, default=0.0
        Offset (>= 0) added to every class's cost, the target's included.
    ce_weight : float, default=1.0
        Weight (>= 0) of the cross-entropy term.
    reduction : {'mean', 'sum', 'none'}, default='mean'
        How to reduce the per-sample losses, as in torch.

    Returns
    -------
    loss : torch.Tensor
        A scalar, or shape (n_samples,) when ``reduction='none'``; float32
        (float64 for float64 logits).

    See Also
    --------
    EMD2GroundLoss : The module form, holding ``distance`` as a buffer.
    emd2_loss : The exact squared EMD on an ordinal scale.

    Notes
    -----
    With ``p = softmax(z)``:

    .. math::

        \ell = \lambda_{CE} \, \mathrm{CE}(z, t)
               + \sum_i p_i^2 \left(D_{i t}^{\omega} + \mu\right)

    The gather ``distance.T[target]`` is a row copy when ``distance`` is
    stored column-major, as :class:`EMD2GroundLoss` stores it. Cost:
    O(n_samples * n_classes).

    References
    ----------
    .. [1] Hou, Yu, Samaras. "Squared Earth Mover's Distance-based Loss for
       Training Deep Neural Networks". arXiv:1611.05916, 2016.

    Examples
    --------
    >>> import torch
    >>> from skstruct.losses import emd2_ground_loss
    >>> distance = torch.tensor([[0.0, 1.0, 2.0], [1.0, 0.0, 1.0], [2.0, 1.0, 0.0]])
    >>> logits = torch.tensor([[2.0, 1.0, -1.0]])
    >>> emd2_ground_loss(logits, torch.tensor([0]), distance)
    tensor(0.4213)
    """
    check_logits_target(logits, target)
    check_reduction(reduction)
    omega = check_positive_scalar(omega, "omega")
    mu = check_positive_scalar(mu, "mu", allow_zero=True)
    ce_weight = check_positive_scalar(ce_weight, "ce_weight", allow_zero=True)
    z = _upcast(logits)
    n_classes = z.shape[1]
    if not isinstance(distance, torch.Tensor):
        raise TypeError(
            f"distance must be a torch tensor, got {type(distance).__name__}; "
            "use torch.as_tensor(D)."
        )
    if distance.shape != (n_classes, n_classes):
        raise ValueError(
            f"distance must have shape ({n_classes}, {n_classes}) to match logits "
            f"with {n_classes} classes, got shape {tuple(distance.shape)}."
        )
    cost = _prepared_cost(distance, omega, mu, z.dtype)  # row t: D[:, t]**omega + mu
    with target_range_checked(target, n_classes):
        target = target.long()
        if fused_available(z):
            loss = _fused_emd2_ground(z, target, cost, ce_weight, reduction)
            if loss is not None:
                return loss
        per_sample = _EMD2GroundFunction.apply(z, target, cost, ce_weight)
    return reduce_loss(per_sample, reduction)


class EMD2Loss(nn.Module):
    """Squared EMD loss on an ordinal scale, as a module.

    See :func:`emd2_loss` for the formula and shapes. The module expects
    logits, not probabilities.

    Parameters
    ----------
    rank : array-like of shape (n_classes,), default=None
        Rank 0..n_classes-1 of each column on the scale; must be a
        permutation. Stored as the int64 buffer ``rank``. ``None`` means the
        columns are in scale order.
    ce_weight : float, default=0.0
        Weight (>= 0) of an added cross-entropy term.
    reduction : {'mean', 'sum', 'none'}, default='mean'
        Reduction over the batch.

    See Also
    --------
    emd2_loss : The functional form.

    Examples
    --------
    >>> import torch
    >>> from skstruct.losses import EMD2Loss
    >>> criterion = EMD2Loss(rank=[2, 0, 1])  # columns: 'high', 'low', 'mid'
    >>> criterion
    EMD2Loss(n_classes=3, ce_weight=0.0, reduction='mean')
    >>> criterion(torch.tensor([[0.0, 2.0, 1.0]]), torch.tensor([1]))
    tensor(0.1202)
    """

    def __init__(self, rank=None, *, ce_weight=0.0, reduction="mean"):
        super().__init__()
        self.ce_weight = check_positive_scalar(ce_weight, "ce_weight", allow_zero=True)
        self.reduction = check_reduction(reduction)
        self.register_buffer("rank", None if rank is None else _check_permutation(rank))

    def extra_repr(self):
        n_classes = "None" if self.rank is None else self.rank.shape[0]
        return (
            f"n_classes={n_classes}, ce_weight={self.ce_weight}, "
            f"reduction={self.reduction!r}"
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
        return emd2_loss(
            logits,
            target,
            rank=self.rank,
            ce_weight=self.ce_weight,
            reduction=self.reduction,
        )


class EMD2GroundLoss(nn.Module):
    """Cross-entropy plus a ground-distance EMD penalty, as a module.

    See :func:`emd2_ground_loss` for the formula and shapes. The module
    expects logits, not probabilities.

    Parameters
    ----------
    distance : array-like of shape (n_classes, n_classes)
        Ground distance, finite and >= 0. Stored as the float32 buffer
        ``distance`` (column-major, which makes the per-batch gather a row
        copy), so ``.to(device)`` and ``state_dict`` carry it.
    omega : float, default=2.0
        Exponent (> 0) applied to the distance.
    mu : float, default=0.0
        Offset (>= 0) added to every class's cost.
    ce_weight : float, default=1.0
        Weight (>= 0) of the cross-entropy term.
    reduction : {'mean', 'sum', 'none'}, default='mean'
        Reduction over the batch.

    See Also
    --------
    emd2_ground_loss : The functional form.

    Examples
    --------
    >>> import torch
    >>> from skstruct.losses import EMD2GroundLoss
    >>> criterion = EMD2GroundLoss([[0, 1, 2], [1, 0, 1], [2, 1, 0]])
    >>> criterion
    EMD2GroundLoss(n_classes=3, omega=2.0, mu=0.0, ce_weight=1.0, reduction='mean')
    >>> criterion(torch.tensor([[2.0, 1.0, -1.0]]), torch.tensor([0]))
    tensor(0.4213)
    """

    def __init__(self, distance, *, omega=2.0, mu=0.0, ce_weight=1.0, reduction="mean"):
        super().__init__()
        self.omega = check_positive_scalar(omega, "omega")
        self.mu = check_positive_scalar(mu, "mu", allow_zero=True)
        self.ce_weight = check_positive_scalar(ce_weight, "ce_weight", allow_zero=True)
        self.reduction = check_reduction(reduction)
        distance = torch.as_tensor(distance, dtype=torch.float32)
        if distance.ndim != 2 or distance.shape[0] != distance.shape[1]:
            raise ValueError(
                "distance must be a square (n_classes, n_classes) matrix, got "
                f"shape {tuple(distance.shape)}."
            )
        if not bool(torch.isfinite(distance).all()) or bool((distance < 0).any()):
            raise ValueError("distance must hold finite values >= 0.")
        self.register_buffer("distance", distance.T.contiguous().T)

    def extra_repr(self):
        return (
            f"n_classes={self.distance.shape[0]}, omega={self.omega}, mu={self.mu}, "
            f"ce_weight={self.ce_weight}, reduction={self.reduction!r}"
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
        return emd2_ground_loss(
            logits,
            target,
            self.distance,
            omega=self.omega,
            mu=self.mu,
            ce_weight=self.ce_weight,
            reduction=self.reduction,
        )
