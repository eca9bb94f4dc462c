"""HACE: hierarchy-aware cross-entropy (arXiv 2605.06274)."""

from numbers import Real

import numpy as np
import torch
from torch import nn
from torch.autograd.function import once_differentiable

from ..structures import Hierarchy
from ._numba import fused_available, fused_loss, jit, kernel_exp
from ._reduction import (
    check_logits_target,
    check_reduction,
    reduce_loss,
    target_range_checked,
)

__all__ = ["HACELoss", "hace_loss"]

# Derivation of the efficient form
# --------------------------------
# Notation: leaves l (= classes) with softmax p_l = e_l / E, where
# e_l = exp(z_l - max z) and E = sum_l e_l; nodes a with
# q_a = sum_{l under a} p_l = X_a / E, X_a = sum_{l under a} e_l; delta_x the
# depth of node x (roots 0). For a leaf l and an ancestor-or-self a of l, the
# d-scheme weight is
#     w(a, l) = d (1 - d)^(delta_l - delta_a)   if a is not a root,
#     w(a, l) = (1 - d)^delta_l                  if a is the root of l's tree,
# so that sum_a w(a, l) = 1 (a leaf that is a root gets 1).
# Leaf smoothing: pi = (1 - eps) e_y + eps' (1 - e_y), eps' = eps / (n - 1),
# i.e. pi = c e_y + eps' 1 with c = 1 - eps - eps', and the node target is
#     t_a = sum_l pi_l w(a, l) = c w(a, y) + eps' kappa_a,
#     kappa_a = sum_{l under a} w(a, l)        (a per-node constant),
# hence
#     loss = -c sum_{a on path(y)} w(a, y) log q_a - eps' sum_a kappa_a log q_a:
# a (B, height) gather plus, when eps > 0, a (B, N) weighted sum; no dense
# (N, C) matrix. Leaf terms use log p_l = z_l - max z - log E (exact at logits
# of 1e4, where e_l underflows). The internal sums X are built without any
# cancellation: one scatter-add of e into the leaves' parents, then one
# scatter-add per level from the deepest level up (sums of non-negative
# numbers only; no column permutation is needed, so no depth-first order
# either).
#
# Anchors (exact at any logit scale). X_a is a sum relative to the row's top
# logit m, so it underflows once every logit under a is ~87 below m in
# float32 (~708 in float64), and log q_a would be lost. Any per-node anchor
# A_a works in its place: log q_a = A_a + log S_a - logsumexp(z) with
# S_a = sum_{l under a} exp(z_l - A_a). The fast path takes A_a = m (S = X);
# when a subtree the loss needs (the true leaf's path, every node if eps > 0)
# has X_a < 2^24 * tiny (~e^-70 in float32), the batch is redone with
# A_a = M_a, the largest logit under a, so that 1 <= S_a <= n_leaves: M by a
# scatter-max from the leaves' parents up, S by a scatter-add of
# exp(z_l - M_parent(l)) and, per level, S_parent += S_a exp(M_a - M_parent).
# (The exact path costs a scatter-max per level, about 10x the fast path on
# the CPU, so it runs only when needed: a subtree of the true path at e^-70
# of the top logit is a confidently wrong prediction.) Path nodes contain y,
# so log q_a >= log p_y is enforced against rounding.
#
# Gradient. With sum_a t_a = 1,
#     dloss/dz_j = p_j - sum_{a containing j} t_a p_j / q_a         - t_j
#                = p_j - sum_{internal a containing j} t_a exp(z_j - A_a) / S_a
#                  - t_j                                   (leaf term).
# From the roots down (one gather per level),
#     y_a = t_a / S_a + exp(A_a - A_parent(a)) y_parent(a)
#         = sum_{internal b containing a} t_b exp(A_a - A_b) / S_b,
# so the sum is e_j y_parent(j) with e_j = exp(z_j - A_parent(j)): one (B, C)
# gather. Every exponent is <= 0 (M_b >= M_a >= z_j under b, or all A = m)
# and y_a <= sum_b t_b <= 1 (S_b >= e_j), so the gradient is bounded. For the
# true leaf, p_y / q_a = exp(log p_y - log q_a) is computed in log space, so
# its gradient stays exact when p_y underflows.
# Cost: O(B C + B N) time, O(B C) memory (e), no (N, C) or (C, C) matrix.
#
# Node logits (node_logits=True): one logit per node, p = softmax over the N
# nodes, q_a = sum of p over the subtree of a, a itself included. Each
# internal node's own e is added to its own X (it is its own "leaf child"),
# and every formula above holds with "leaves" read as "columns": the gradient
# of the column of internal node a reads x at a itself instead of at a parent.
#
# Fused CPU kernel (numba, see _numba.py). After the softmax (``kernel_exp``:
# p = e / sum, with e = exp(z - max z) and the division folded into the
# passes below for float32 batches of many cells), one compiled loop per
# row, sums in float64:
#   1. q: one pass over the columns adds p_j to its parent's sum (four
#      interleaved partial sums per node, so that neighbouring columns with
#      one parent do not wait on each other), then the internal nodes,
#      deepest first, add q_a to their parent's. Sums of non-negative numbers
#      only (never prefix-sum differences over the depth-first leaf ranges,
#      which cancel for a small subtree); O(C + N), in any column order.
#   2. loss = -c (w(y, y) log p_y + sum_{a on path(y)} w(a, y) log q_a)
#             - eps' (sum_l w_l log p_l + sum_a kappa_a log q_a),
#      with log p_l = (z_l - z_y) + log p_y (exact when p_l underflows, since
#      p_y does not: see 4). O(H), and O(N) more when eps > 0.
#   3. The gradient, with sum_a t_a = 1 (t the node targets above, w_l the
#      leaf weights w_col), is
#          dloss/dz_j = p_j (1 - Y_parent(j)) - t_j,
#          Y_a = sum_{internal b containing a} t_b / q_b
#              = t_a / q_a + Y_parent(a)          (roots down, O(N)),
#      t_j = c w(y, y) [j = y] + eps' w_j the leaf term (0 for an internal
#      node's own column, whose "parent" is the node itself; Y = 0 above a
#      root leaf). One pass over the row writes scale * dloss/dz_j over p_j.
#   4. Decline (status 2, the eager path runs): when p_y or a q_a with
#      t_a > 0 is below 2^24 * tiny or NaN (NaN or inf logits). Since
#      q_a <= X_a (E >= 1), this covers every batch in which the eager path
#      switches to its per-subtree anchors; below it p and q lose accuracy
#      in probability space. Nodes with t_a = 0 add nothing
#      (Y_a = Y_parent(a)) and are never divided by. Above the threshold
#      every p_j and q_a keeps its relative precision, and the gradient is
#      bounded as in the eager form: p_j Y_parent(j) = sum_b t_b p_j / q_b
#      <= sum_b t_b <= 1, since p_j <= q_b for every b containing j.
#   5. Without smoothing (eps = 0, the default) only the nodes on the true
#      path have t_a > 0, so steps 1 and 3 need no tree walk: for each path
#      node a (one per depth m), q_a is the sum of p_j over the columns j
#      with col_anc[m, j] == a (the depth-m ancestor of j's parent is a), and
#      scale (1 - Y_parent(j)) = scale - sum over those a of scale t_a / q_a
#      [col_anc[m, j] == a]. These are masked passes over contiguous rows
#      (compare, select, add: they vectorise, where the scatter of 1. and the
#      gather of 3. run one column at a time), two depths to a pass; the
#      root of a single tree without root leaves covers every column (a plain
#      sum, and its term is part of the factor common to all columns).
#      O(C H) per row; the sums are the same non-negative terms as in 1., in
#      another order.
# Two passes over the row after the softmax (about H + 1 without smoothing),
# plus the (B,) loss: no (B, N) intermediate and one (B, C) buffer (the
# softmax, then the gradient).


def _check_d(d):
    if isinstance(d, bool) or not isinstance(d, Real) or not (0.0 < float(d) <= 1.0):
        raise ValueError(
            f"d must be a number in (0, 1], got d={d!r}. d is the target mass of "
            "the true leaf; d=1 gives cross-entropy, the paper uses d=0.7."
        )
    return float(d)


def _check_eps(eps):
    if isinstance(eps, bool) or not isinstance(eps, Real) or not (0.0 <= float(eps) < 1.0):
        raise ValueError(
            f"eps must be a number in [0, 1), got eps={eps!r}. eps is the leaf "
            "label smoothing; 0 turns it off."
        )
    return float(eps)


def _check_hierarchy(hierarchy):
    if not isinstance(hierarchy, Hierarchy):
        raise TypeError(
            "hierarchy must be a skstruct.structures.Hierarchy, got "
            f"{type(hierarchy).__name__}."
        )
    return hierarchy


_INDEX_NAMES = (
    "col_parent",  # (n_cols,) internal index whose X receives the column's e:
    #                the parent of a leaf (n_int for a root leaf), an internal
    #                node itself (node logits)
    "class_col",  # (C,) column of each class among the logits
    "int_parent",  # (N_int,) internal index of the parent (0 for roots, unused)
    "path_node",  # (C, H) internal index of the class's ancestor at depth m < depth
)
# Float tables, stored once per working dtype (suffixes 32 and 64) so that no
# conversion runs per call.
_FLOAT_NAMES = (
    # (C, 2H + 1): [w(ancestor at depth m, class) for m < H (0 beyond the class's
    # depth) | kappa of that ancestor (0 beyond) | w(class, class)]
    "class_w",
    "w_col",  # (n_cols,) kappa of the column's leaf (d, or 1 for a root); 0 if internal
    "kappa_int",  # (N_int,) sum of w(a, l) over the leaves l under a
)
_TENSOR_NAMES = (
    *_INDEX_NAMES,
    *(name + "32" for name in _FLOAT_NAMES),
    *(name + "64" for name in _FLOAT_NAMES),
)


def _build_tables(hierarchy, d, node_logits):
    """Index and weight tables of ``hierarchy`` for the d-scheme.

    Internal nodes are numbered level by level (breadth-first), so that each
    depth is a contiguous slice ``levels`` of the internal-node axis. The
    logit columns are the classes, or with ``node_logits`` the nodes in
    ``hierarchy.dfs_nodes`` order.
    """
    ranges = np.asarray(hierarchy.dfs_ranges)
    depths = np.asarray(hierarchy.dfs_depths)
    n_nodes, n_leaves, height = len(depths), hierarchy.n_classes, hierarchy.height
    is_leaf = np.ones(n_nodes, dtype=bool)
    is_leaf[:-1] = depths[1:] <= depths[:-1]  # preorder: next node is not a child

    anc = np.zeros((n_leaves, height + 1), dtype=np.int64)  # by DFS position, depth
    leaf_depth = np.zeros(n_leaves, dtype=np.int64)
    leaf_node = np.zeros(n_leaves, dtype=np.int64)  # preorder index of each leaf
    parent = np.full(n_nodes, -1, dtype=np.int64)
    stack = [0] * (height + 1)
    for i, (dep, leaf) in enumerate(zip(depths.tolist(), is_leaf.tolist())):
        stack[dep] = i
        if dep > 0:
            parent[i] = stack[dep - 1]
        if leaf:
            pos = ranges[i, 0]
            anc[pos, : dep + 1] = stack[: dep + 1]
            leaf_depth[pos] = dep
            leaf_node[pos] = i
    # reorder the per-leaf rows from depth-first positions to class indices
    by_class = np.empty(n_leaves, dtype=np.int64)
    by_class[np.asarray(hierarchy.dfs_leaf_order)] = np.arange(n_leaves)
    anc, leaf_depth, leaf_node = anc[by_class], leaf_depth[by_class], leaf_node[by_class]

    internal = np.flatnonzero(~is_leaf)
    internal = internal[np.lexsort((internal, depths[internal]))]  # by depth
    n_int = len(internal)
    int_index = np.full(n_nodes, -1, dtype=np.int64)
    int_index[internal] = np.arange(n_int)
    bounds = (np.flatnonzero(np.diff(depths[internal])) + 1).tolist()
    levels = tuple(zip([0, *bounds], [*bounds, n_int]))[1:] if n_int else ()
    int_parent = np.where(parent[internal] >= 0, int_index[parent[internal]], 0)

    cols = np.arange(height)[None, :]
    valid = cols < leaf_depth[:, None]  # internal ancestors: depth m < depth(leaf)
    r = 1.0 - d
    steps = np.maximum(leaf_depth[:, None] - cols, 0)
    path_w = np.where(cols == 0, r ** leaf_depth[:, None], d * r**steps)
    path_w = np.where(valid, path_w, 0.0)
    path_node = np.where(valid, int_index[anc[:, :height]], 0)
    w_leaf = np.where(leaf_depth > 0, d, 1.0)
    kappa_int = np.bincount(path_node[valid], weights=path_w[valid], minlength=n_int)
    path_kappa = np.where(valid, kappa_int[path_node], 0.0)
    parent_row = anc[np.arange(n_leaves), np.maximum(leaf_depth - 1, 0)]
    leaf_parent = np.where(leaf_depth > 0, int_index[parent_row], n_int)
    # each internal node's ancestor-or-self at every depth (-1 below its depth),
    # and one row of -1 for "above a root leaf" (n_int)
    int_anc = np.full((n_int + 1, height), -1, dtype=np.int64)
    int_depth = depths[internal]
    for a in range(n_int):
        node = a
        for m in range(int(int_depth[a]), -1, -1):
            int_anc[a, m] = node
            node = int_parent[node]
    if node_logits:  # columns = nodes in preorder
        col_parent = np.where(is_leaf, n_int, int_index)
        col_parent[leaf_node] = leaf_parent
        class_col = leaf_node
        w_col = np.zeros(n_nodes)
        w_col[leaf_node] = w_leaf
    else:
        col_parent, class_col, w_col = leaf_parent, np.arange(n_leaves), w_leaf
    arrays = {
        "col_parent": col_parent,
        "class_col": class_col,
        "int_parent": int_parent,
        "path_node": path_node,
        # (H, n_cols), the fused kernel's only (not a buffer): the internal
        # index of the depth-m ancestor-or-self of col_parent[j], -1 where
        # there is none (a root leaf, or m below the node's depth)
        "col_anc": int_anc[col_parent].T,
    }
    floats = {
        "class_w": np.concatenate([path_w, path_kappa, w_leaf[:, None]], axis=1),
        "w_col": w_col,
        "kappa_int": kappa_int,
    }
    for name, value in floats.items():
        arrays[name + "64"] = value.astype(np.float64)
        arrays[name + "32"] = value.astype(np.float32)
    tensors = {
        name: torch.tensor(np.ascontiguousarray(arrays[name])) for name in _TENSOR_NAMES
    }
    meta = {
        "levels": levels,
        "n_int": n_int,
        "n_leaves": n_leaves,
        "n_cols": len(col_parent),
        "node_logits": bool(node_logits),
        "fused": _fused_tables(arrays, levels, n_int),
    }
    return tensors, meta


def _fused_tables(arrays, levels, n_int):
    """The NumPy tables of :func:`_hace_kernel`: float weights in float64.

    ``col_parent`` is stored as uint32 (an unsigned index needs no
    negative-index wraparound in the compiled loops), ``col_anc`` as int32
    (compared, never indexed with: 16 lanes to a vector); ``n_top`` is the
    number of internal roots (the first internal indices).
    """
    tables = {
        "col_parent": np.ascontiguousarray(arrays["col_parent"], dtype=np.uint32),
        "col_anc": _pad_rows(arrays["col_anc"], 2),
        "int_parent": np.ascontiguousarray(arrays["int_parent"], dtype=np.int64),
        "class_col": np.ascontiguousarray(arrays["class_col"], dtype=np.int64),
        "path_node": np.ascontiguousarray(arrays["path_node"], dtype=np.int64),
        "n_top": np.array([levels[0][0] if levels else n_int], dtype=np.int64),
    }
    for name in _FLOAT_NAMES:
        tables[name] = np.ascontiguousarray(arrays[name + "64"], dtype=np.float64)
    return tables


def _pad_rows(table, n_extra):
    """``table`` as int32 with ``n_extra`` rows of -1 added at the end."""
    padded = np.full((table.shape[0] + n_extra, table.shape[1]), -1, dtype=np.int32)
    padded[: table.shape[0]] = table
    return padded


def _tables(hierarchy, d, node_logits=False):
    """(tensors on CPU, metadata), cached on the immutable hierarchy."""
    key = ("hace_tables", d, bool(node_logits))
    return hierarchy._cached(key, lambda: _build_tables(hierarchy, d, node_logits))


def _subtree_max_sums(z, t, meta):
    """Exact anchors: ``M[:, a]``, the largest logit under internal node a, and
    ``S[:, a] = sum_{l under a} exp(z_l - M_a)`` (>= 1), with ``e`` (B, C) the
    terms ``exp(z_l - M_parent(l))``. Column n_int gathers the root leaves."""
    col_parent, int_parent, levels = t["col_parent"], t["int_parent"], meta["levels"]
    B, n_int = z.shape[0], meta["n_int"]
    M = z.new_full((B, n_int + 1), -torch.inf)
    M.scatter_reduce_(1, col_parent.expand(B, -1), z, "amax")
    for start, stop in reversed(levels):
        parent = int_parent[start:stop]
        M.scatter_reduce_(1, parent.expand(B, -1), M[:, start:stop].clone(), "amax")
    e = (z - M.index_select(1, col_parent)).exp_()
    S = z.new_zeros((B, n_int + 1))
    S.index_add_(1, col_parent, e)
    for start, stop in reversed(levels):
        parent = int_parent[start:stop]
        S.index_add_(1, parent, S[:, start:stop] * (M[:, start:stop] - M[:, parent]).exp_())
    return M, S, e


class _HACEFunction(torch.autograd.Function):
    """Per-sample HACE loss with the hand-written backward derived above."""

    @staticmethod
    def forward(ctx, z, target, c, eps_o, meta, t):
        n_int, dtype = meta["n_int"], z.dtype
        bits = "64" if dtype == torch.float64 else "32"
        height = (t["class_w" + bits].shape[1] - 1) // 2
        # fast path: every anchor is the row's top logit m (A = m, S = X)
        A = z.amax(dim=1, keepdim=True)
        top = A  # the row's top logit m, kept if the anchors change below
        e = (z - A).exp_()
        # log E, E = sum exp(z - m) >= 1, so that logsumexp(z) = m + log E. Every
        # log-probability below is formed from z - m and log E, never from
        # logsumexp(z) itself: at |z| ~ 1e4 in float32, z_y - logsumexp(z)
        # loses ~5e-4 to the rounding of logsumexp (an ulp of 1e4).
        log_sum = e.sum(dim=1).log()
        S = e.new_zeros((e.shape[0], n_int + 1))
        S.index_add_(1, t["col_parent"], e)
        int_parent = t["int_parent"]
        for start, stop in reversed(meta["levels"]):
            S.index_add_(1, int_parent[start:stop], S[:, start:stop].clone())

        col_y = t["class_col"].index_select(0, target)  # raises if out of range
        logp_y = (z.gather(1, col_y[:, None])[:, 0] - top[:, 0]) - log_sum
        w = t["class_w" + bits].index_select(0, target)  # (B, 2H + 1)
        node = t["path_node"].index_select(0, target) if n_int else None
        if n_int:
            needed = S[:, :n_int] if eps_o > 0 else S.gather(1, node)
            if bool((needed < torch.finfo(dtype).tiny * 2**24).any()):
                A, S, e = _subtree_max_sums(z, t, meta)  # exact anchors
        log_q = S.log().add_(A - top).sub_(log_sum[:, None])  # log q_a

        loss = w[:, -1] * logp_y
        log_q_path = None
        if n_int:
            log_q_path = torch.maximum(log_q.gather(1, node), logp_y[:, None])
            loss += (w[:, :height] * log_q_path).sum(dim=1)
        loss *= -c
        if eps_o > 0:
            w_col = t["w_col" + bits]
            # sum_l w_l log p_l over the leaf columns only: with node logits
            # an internal column has w = 0, and its logit may be -inf (0 * -inf
            # would be NaN; the fused kernel skips those columns too)
            shifted = z - top  # log p_l = (z_l - m) - log E
            if meta["node_logits"]:
                shifted = shifted.masked_fill_(w_col == 0, 0.0)
            loss -= eps_o * (shifted @ w_col - log_sum * w_col.sum())
            if n_int:
                loss -= eps_o * (log_q[:, :n_int] @ t["kappa_int" + bits])
        # the constant tables ride on ctx (they never require grad)
        ctx.c, ctx.eps_o, ctx.meta, ctx.height, ctx.bits, ctx.t = c, eps_o, meta, height, bits, t
        ctx.save_for_backward(z, e, A, S, top, log_sum, col_y, logp_y, w, node, log_q_path)
        return loss

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):
        z, e, A, S, top, log_sum, col_y, logp_y, w, node, log_q_path = ctx.saved_tensors
        c, eps_o, meta, height, bits, t = ctx.c, ctx.eps_o, ctx.meta, ctx.height, ctx.bits, ctx.t
        n_int, col_parent, int_parent = meta["n_int"], t["col_parent"], t["int_parent"]
        uniform = A.shape[1] == 1  # the fast path: every anchor is the row max
        g = grad_output

        # y_a = sum_{internal b containing a} t_b exp(A_a - A_b) / S_b, from the roots down
        y = e.new_zeros((e.shape[0], n_int + 1))
        if n_int:
            y.scatter_add_(1, node, c * w[:, :height])
            # in-place methods on the slices (``y[:, a:b] += x`` would add a
            # setitem copy per statement)
            y_int = y[:, :n_int]
            if eps_o > 0:
                y_int.add_(t["kappa_int" + bits], alpha=eps_o)
            # S_a >= the e_j under a, so y stays <= 1; a subtree off the path
            # (t_a = 0) may have S_a = 0 on the fast path: 0 / tiny = 0
            y_int.div_(S[:, :n_int].clamp_min(torch.finfo(S.dtype).tiny))
            for start, stop in meta["levels"]:
                parent = int_parent[start:stop]
                if uniform:
                    y[:, start:stop].add_(y.index_select(1, parent))
                else:
                    shift = (A[:, start:stop] - A[:, parent]).exp_()
                    y[:, start:stop].addcmul_(shift, y[:, parent])
        # column n_int (the root leaves) keeps y = 0
        if uniform:  # p_j = e_j / E, so dz_j = e_j (1 / E - y_parent(j))
            y.neg_().add_(torch.exp(-log_sum)[:, None]).mul_(g[:, None])  # 1 / E
            grad = y.index_select(1, col_parent).mul_(e)
        else:
            p = (z - top).sub_(log_sum[:, None]).exp_()
            grad = p.sub_(y.index_select(1, col_parent).mul_(e))
            grad.mul_(g[:, None])
        if eps_o > 0:
            grad.addr_(g, t["w_col" + bits], alpha=-eps_o)

        # exact gradient of the true leaf: p_y / q_a = exp(log p_y - log q_a)
        grad_y = logp_y.exp() - (c + eps_o) * w[:, -1]
        if n_int:
            t_path = c * w[:, :height]
            if eps_o > 0:
                t_path += eps_o * w[:, height:-1]
            grad_y -= (t_path * torch.exp(logp_y[:, None] - log_q_path)).sum(dim=1)
        grad.scatter_(1, col_y[:, None], (grad_y * g)[:, None])
        return grad, None, None, None, None, None


@jit
def _hace_kernel(p, inverse, z, target, col_parent, int_parent, n_top, class_col, path_node,
                 class_w, w_col, kappa_int, col_anc, weights, loss):
    """The fused CPU kernel: per-row loss, and ``p`` overwritten by ``scale * dloss/dz``.

    The derivation, and when the kernel declines, are in the comment at the
    top of the module.

    Parameters
    ----------
    p : ndarray of shape (B, n_cols)
        The softmax of ``z`` divided by ``inverse`` (``kernel_exp``),
        overwritten by the gradient.
    inverse : ndarray of shape (B,)
        float64: ``p[b] * inverse[b]`` is the softmax of row b.
    z : ndarray of shape (B, n_cols)
        The logits (read only when ``eps' > 0``, for the leaves' log p).
    target : ndarray of shape (B,)
        int64 class indices.
    col_parent, int_parent, n_top, class_col, path_node, class_w, w_col, kappa_int, col_anc
        The tables of :func:`_fused_tables` (ndarrays).
    weights : ndarray of shape (4,)
        float64 ``[c, eps', scale, threshold]``.
    loss : ndarray of shape (B,)
        Output: the per-sample losses.

    Returns
    -------
    status : int
        0; 1 when a target is outside ``[0, n_classes)`` (nothing written);
        2 when the kernel declines the batch (``p`` and ``loss`` are then
        partly overwritten: discard them).
    total : float
        The sum of the losses (float64); 0.0 unless ``status`` is 0.
    """
    n_rows, n_cols = p.shape
    n_classes, height = path_node.shape
    n_int = int_parent.shape[0]
    top = n_top[0]
    c, eps_o, scale, threshold = weights[0], weights[1], weights[2], weights[3]
    for b in range(n_rows):
        if target[b] < 0 or target[b] >= n_classes:
            return 1, 0.0
    if eps_o == 0.0:  # only the true path has weight: see 5. in the comment above
        # One tree without root leaves (col_anc[0] all 0): depth 0 spans every
        # column, so its q is the row's sum and its term joins the base factor.
        first = 0
        if top == 1 and height > 0:
            first = 1
            for j in range(n_cols):
                if col_anc[0, j] != 0:
                    first = 0
        path = np.full(height + 2, -2, np.int32)  # the path node per depth; -2: none
        deltas = np.zeros(height + 2)  # -scale t_a / q_a per depth
        n_pairs = (height - first + 1) // 2  # the other depths, two to a pass
        coef_col = np.empty(n_cols if n_pairs > 1 else 0, p.dtype)  # scale (1 - Y)
        zero = p.dtype.type(0.0)
        total = 0.0
        for b in range(n_rows):
            row = p[b]
            inv = inverse[b]
            y = target[b]
            col_y = class_col[y]
            p_y = float(row[col_y]) * inv
            if not p_y >= threshold:
                return 2, 0.0
            on_path = class_w[y, 2 * height] * np.log(p_y)
            for m in range(height):
                path[m] = path_node[y, m] if class_w[y, m] > 0.0 else -2
            base = scale
            if first == 1 and path[0] >= 0:
                q_a = 0.0
                for j in range(n_cols):
                    q_a += float(row[j])
                q_a *= inv
                if not q_a >= threshold:
                    return 2, 0.0
                on_path += class_w[y, 0] * np.log(q_a)
                base -= scale * c * class_w[y, 0] / q_a
            for m in range(first, height, 2):
                a0, a1 = path[m], path[m + 1]
                in0, in1 = col_anc[m], col_anc[m + 1]  # in0[j] == a0: column j is under a0
                q0 = q1 = 0.0
                for j in range(n_cols):
                    v = float(row[j])
                    q0 += v if in0[j] == a0 else 0.0
                    q1 += v if in1[j] == a1 else 0.0
                for i, q_a in ((0, q0 * inv), (1, q1 * inv)):
                    deltas[m + i] = 0.0
                    if path[m + i] >= 0:
                        if not q_a >= threshold:
                            return 2, 0.0
                        w_a = class_w[y, m + i]
                        on_path += w_a * np.log(q_a)
                        deltas[m + i] = -scale * c * w_a / q_a
            k = p.dtype.type(base * inv)  # the row holds p / inv
            if n_pairs == 0:
                for j in range(n_cols):
                    row[j] *= k
            for g in range(n_pairs):
                m = first + 2 * g
                a0, a1 = path[m], path[m + 1]
                in0, in1 = col_anc[m], col_anc[m + 1]
                d0, d1 = p.dtype.type(deltas[m] * inv), p.dtype.type(deltas[m + 1] * inv)
                if n_pairs == 1:  # the usual case (height <= 3): no coefficient buffer
                    for j in range(n_cols):
                        row[j] *= k + (d0 if in0[j] == a0 else zero) + (
                            d1 if in1[j] == a1 else zero)
                    continue
                if g == 0:
                    for j in range(n_cols):
                        coef_col[j] = k
                for j in range(n_cols):
                    coef_col[j] += (d0 if in0[j] == a0 else zero) + (
                        d1 if in1[j] == a1 else zero)
                if g == n_pairs - 1:
                    for j in range(n_cols):
                        row[j] *= coef_col[j]
            row[col_y] -= scale * c * class_w[y, 2 * height]
            value = -c * on_path
            loss[b] = value
            total += value
        return 0, total
    # four interleaved partial sums per node: consecutive columns (and
    # consecutive internal siblings) with one parent would otherwise wait on
    # each other's read-modify-write of the parent's sum
    lanes = np.zeros((n_int + 1) * 4)
    n_quad = n_cols - n_cols % 4
    q = np.empty(n_int + 1)
    coef = np.empty(n_int + 1)
    w_sum = 0.0  # sum_l w_l
    for j in range(n_cols):
        w_sum += w_col[j]
    total = 0.0
    for b in range(n_rows):
        inv = inverse[b]
        if inv != 1.0:  # normalised here (1.0: the softmax already)
            for j in range(n_cols):
                p[b, j] *= inv
        y = target[b]
        col_y = class_col[y]
        p_y = float(p[b, col_y])
        if not p_y >= threshold:
            return 2, 0.0
        # 1. subtree masses q: the columns into their parents' lanes, then the
        # internal nodes deepest first (children have larger indices)
        for j in range(0, n_quad, 4):
            lanes[4 * col_parent[j]] += p[b, j]
            lanes[4 * col_parent[j + 1] + 1] += p[b, j + 1]
            lanes[4 * col_parent[j + 2] + 2] += p[b, j + 2]
            lanes[4 * col_parent[j + 3] + 3] += p[b, j + 3]
        for j in range(n_quad, n_cols):
            lanes[4 * col_parent[j]] += p[b, j]
        for a in range(n_int - 1, -1, -1):
            k = 4 * a
            q_a = (lanes[k] + lanes[k + 1]) + (lanes[k + 2] + lanes[k + 3])
            lanes[k] = 0.0  # ready for the next row
            lanes[k + 1] = 0.0
            lanes[k + 2] = 0.0
            lanes[k + 3] = 0.0
            q[a] = q_a
            if a >= top:
                lanes[4 * int_parent[a] + (a & 3)] += q_a
        for k in range(4 * n_int, 4 * n_int + 4):
            lanes[k] = 0.0  # the root leaves' slot
        # 2. the loss, and -scale t_a / q_a into coef
        log_py = np.log(p_y)
        smooth = 0.0
        if eps_o > 0.0:
            for a in range(n_int):
                kappa = kappa_int[a]
                if kappa > 0.0:
                    q_a = q[a]
                    if not q_a >= threshold:
                        return 2, 0.0
                    smooth += kappa * np.log(q_a)
                    coef[a] = -scale * eps_o * kappa / q_a
                else:
                    coef[a] = 0.0
        else:
            for a in range(n_int):
                coef[a] = 0.0
        on_path = class_w[y, 2 * height] * log_py
        for m in range(height):
            w_a = class_w[y, m]
            if w_a > 0.0:
                a = path_node[y, m]
                q_a = q[a]
                if not q_a >= threshold:
                    return 2, 0.0
                on_path += w_a * np.log(q_a)
                coef[a] -= scale * c * w_a / q_a
        # 3. scale (1 - Y_a) = scale (1 - Y_parent(a)) - scale t_a / q_a, roots down
        for a in range(top):
            coef[a] += scale
        for a in range(top, n_int):
            coef[a] += coef[int_parent[a]]
        coef[n_int] = scale  # above a root leaf: Y = 0
        value = -c * on_path
        if eps_o > 0.0:
            z_y = float(z[b, col_y])
            shift = scale * eps_o
            dot = 0.0
            for j in range(n_cols):
                w_j = w_col[j]
                # log p_j = (z_j - z_y) + log p_y; internal columns (w_j = 0)
                # are skipped, so that an internal logit of -inf adds nothing
                dot += w_j * (z[b, j] - z_y) if w_j != 0.0 else 0.0
                p[b, j] = p[b, j] * coef[col_parent[j]] - shift * w_j
            value -= eps_o * (dot + w_sum * log_py + smooth)
        else:
            for j in range(n_cols):
                p[b, j] *= coef[col_parent[j]]
        p[b, col_y] -= scale * c * class_w[y, 2 * height]
        loss[b] = value
        total += value
    return 0, total


def _fused_hace(z, target, meta, c, eps_o, reduction):
    """The loss by :func:`_hace_kernel`, or ``None`` when it declines the batch."""
    f = meta["fused"]
    target = target.contiguous()
    tables = (
        f["col_parent"], f["int_parent"], f["n_top"], f["class_col"], f["path_node"],
        f["class_w"], f["w_col"], f["kappa_int"], f["col_anc"],
    )
    threshold = torch.finfo(z.dtype).tiny * 2.0**24  # the eager path's anchor switch

    def run(z, scale):
        p, inverse = kernel_exp(z)
        loss = torch.empty(z.shape[0], dtype=z.dtype)
        weights = np.array([c, eps_o, scale, threshold])
        status, total = _hace_kernel(
            p.numpy(), inverse, z.numpy(), target.numpy(), *tables, weights, loss.numpy()
        )
        if status == 1:
            raise IndexError("target out of range")  # target_range_checked: a ValueError
        return (loss, total, p) if status == 0 else None

    return fused_loss(z, run, reduction)


def _hace(logits, target, tensors, meta, d, eps, reduction):
    """Shared body of :func:`hace_loss` and :class:`HACELoss`."""
    check_logits_target(logits, target)
    if logits.shape[1] != meta["n_cols"]:
        if meta["node_logits"]:
            expected = f"{meta['n_cols']} nodes; the columns must follow hierarchy.dfs_nodes"
        else:
            expected = f"{meta['n_cols']} leaves; the columns must follow hierarchy.classes"
        raise ValueError(
            f"logits has {logits.shape[1]} columns but the hierarchy has {expected}."
        )
    eps = _check_eps(eps)
    check_reduction(reduction)
    z = logits if logits.dtype == torch.float64 else logits.to(torch.float32)
    n = meta["n_leaves"]
    eps_o = eps / (n - 1) if n > 1 else 0.0
    c = 1.0 - eps - eps_o if n > 1 else 1.0
    target = target.long()
    with target_range_checked(target, meta["n_leaves"]):
        # The kernel's torch call (the softmax) stays in float32 under
        # autocast; the eager path's matrix products would not.
        if fused_available(z):
            loss = _fused_hace(z, target, meta, c, eps_o, reduction)
            if loss is not None:
                return loss
        if torch.is_autocast_enabled(z.device.type):  # the context costs ~8 us a call
            with torch.autocast(device_type=z.device.type, enabled=False):
                per_sample = _HACEFunction.apply(z, target, c, eps_o, meta, tensors)
        else:
            per_sample = _HACEFunction.apply(z, target, c, eps_o, meta, tensors)
    return reduce_loss(per_sample, reduction)


def hace_loss(
    logits, target, hierarchy, *, d=0.7, eps=0.0, reduction="mean", node_logits=False
):
    """Hierarchy-aware cross-entropy (HACE) over the leaves of a hierarchy.

    The leaf softmax ``p`` is aggregated over every subtree,
    ``q_a = sum of p over the leaves under node a``, and compared with a target
    spread along the path from the true leaf up to its root.

    Parameters
    ----------
    logits : Tensor of shape (n_samples, n_classes) or (n_samples, n_nodes)
        Leaf logits, columns in ``hierarchy.classes`` order; with
        ``node_logits=True``, one logit per node in ``hierarchy.dfs_nodes``
        order. bfloat16 and float16 are computed in float32.
    target : Tensor of shape (n_samples,)
        Integer indices into ``hierarchy.classes``.
    hierarchy : Hierarchy
        Tree or forest whose leaves are the classes.
    d : float, default=0.7
        Target mass of the true leaf, in (0, 1]. The ancestor ``k`` steps above
        the leaf gets ``d * (1 - d)**k`` and the root keeps the remainder.
        ``d=1`` gives cross-entropy.
    eps : float, default=0.0
        Leaf label smoothing in [0, 1): the leaf target is ``1 - eps`` on the
        true leaf and ``eps / (n_classes - 1)`` on every other leaf, then
        propagated up the tree with the same d-scheme.
    reduction : {'mean', 'sum', 'none'}, default='mean'
        Reduction over the batch; ``'none'`` returns one loss per sample.
    node_logits : bool, default=False
        ``False``: softmax over the leaves (the library default). ``True``:
        the reference code's variant with one logit per node, a softmax over
        all nodes and ``q_a`` the mass of the whole subtree of ``a``, ``a``
        itself included. The target is the same.

    Returns
    -------
    loss : Tensor
        Scalar, or shape (n_samples,) with ``reduction='none'``; float32
        (float64 for float64 logits).

    Raises
    ------
    ValueError
        If ``d`` is outside (0, 1], ``eps`` outside [0, 1), ``reduction`` is
        unknown, or the number of columns is not the number of leaves (of
        nodes with ``node_logits=True``).

    See Also
    --------
    HACELoss : Module wrapper that keeps the hierarchy's tables as buffers.

    Notes
    -----
    For a true leaf ``y`` at depth ``h`` with ancestors ``a_k`` (``k`` steps
    above ``y``, ``a_0 = y``, ``a_h`` its root), the target is
    ``t_{a_k} = d (1 - d)^k`` for ``k < h`` and ``t_{a_h} = (1 - d)^h``, and

    .. math::

        \\ell(z, y) = - \\sum_a t_a \\log q_a, \\qquad
        q_a = \\sum_{l \\in \\mathrm{leaves}(a)} \\mathrm{softmax}(z)_l.

    In a forest each tree's root keeps the remainder for its own leaves. With
    ``eps > 0`` the target is the smoothed mixture of the leaves' targets.
    The subtree sums are accumulated level by level from the leaves' parents
    up (sums of non-negative numbers, no cancellation), with a hand-written
    backward: the cost is O(n_samples * (n_classes + n_nodes)), never a dense
    (n_nodes, n_classes) product. Leaf terms use ``log_softmax`` directly, so
    logits of +-1e4 give finite losses and gradients. Subtree masses are
    summed relative to the top logit; when a subtree the loss needs falls
    below about ``e**-70`` of it (float32), the batch is recomputed with each
    subtree's own largest logit as reference, so the loss and its gradient
    stay exact at any logit scale.

    References
    ----------
    .. [1] Hierarchy-aware cross-entropy, arXiv:2605.06274.

    Examples
    --------
    >>> import torch
    >>> from skstruct.structures import Hierarchy
    >>> from skstruct.losses import hace_loss
    >>> h = Hierarchy({"cat": "animal", "dog": "animal", "bus": "vehicle", "car": "vehicle"})
    >>> h.classes
    array(['bus', 'car', 'cat', 'dog'], dtype='<U3')
    >>> logits = torch.tensor([[0.0, 0.0, 2.0, 1.0]])
    >>> hace_loss(logits, torch.tensor([2]), h)
    tensor(0.3998)
    >>> hace_loss(logits, torch.tensor([2]), h, d=1.0)  # cross-entropy
    tensor(0.4938)
    """
    d = _check_d(d)
    hierarchy = _check_hierarchy(hierarchy)
    tensors, meta = _tables(hierarchy, d, node_logits)
    device = logits.device if isinstance(logits, torch.Tensor) else None
    if device is not None and device.type != "cpu":
        # moved once per device and cached on the (immutable) hierarchy, so the
        # functional form costs what HACELoss costs
        key = ("hace_tables", d, bool(node_logits), str(device))
        tensors = hierarchy._cached(
            key, lambda: {name: x.to(device) for name, x in tensors.items()}
        )
    return _hace(logits, target, tensors, meta, d, eps, reduction)


class HACELoss(nn.Module):
    """Hierarchy-aware cross-entropy loss module; see :func:`hace_loss`.

    The parent indices, ancestor paths and d-scheme weights of ``hierarchy``
    are registered as buffers, so ``.to(device)`` and ``state_dict`` carry
    them. Setting ``d`` rebuilds the buffers.

    Parameters
    ----------
    hierarchy : Hierarchy
        Tree or forest whose leaves are the classes.
    d : float, default=0.7
        Target mass of the true leaf, in (0, 1].
    eps : float, default=0.0
        Leaf label smoothing, in [0, 1).
    reduction : {'mean', 'sum', 'none'}, default='mean'
        Reduction over the batch.
    node_logits : bool, default=False
        One logit per node (``hierarchy.dfs_nodes`` order) instead of one per
        leaf; see :func:`hace_loss`.

    Notes
    -----
    Shapes: logits ``(n_samples, n_classes)`` in ``hierarchy.classes`` order
    (``(n_samples, n_nodes)`` in ``hierarchy.dfs_nodes`` order with
    ``node_logits=True``); target ``(n_samples,)`` int64 class indices; output
    a scalar, or ``(n_samples,)`` with ``reduction='none'``.

    Examples
    --------
    >>> import torch
    >>> from skstruct.structures import Hierarchy
    >>> from skstruct.losses import HACELoss
    >>> h = Hierarchy({"cat": "animal", "dog": "animal", "bus": "vehicle", "car": "vehicle"})
    >>> criterion = HACELoss(h, d=0.7)
    >>> criterion(torch.tensor([[0.0, 0.0, 2.0, 1.0]]), torch.tensor([2]))
    tensor(0.3998)
    """

    def __init__(self, hierarchy, *, d=0.7, eps=0.0, reduction="mean", node_logits=False):
        super().__init__()
        self.hierarchy = _check_hierarchy(hierarchy)
        self.node_logits = bool(node_logits)
        self.eps = _check_eps(eps)
        self.reduction = check_reduction(reduction)
        self.d = d

    @property
    def d(self):
        """Target mass of the true leaf; setting it rebuilds the weight buffers."""
        return self._d

    @d.setter
    def d(self, value):
        value = _check_d(value)
        tensors, meta = _tables(self.hierarchy, value, self.node_logits)
        device = None
        if "col_parent" in self._buffers:
            device = self._buffers["col_parent"].device
        for name, tensor in tensors.items():
            tensor = tensor.clone() if device is None else tensor.to(device, copy=True)
            if name in self._buffers:
                self._buffers[name] = tensor
            else:
                self.register_buffer(name, tensor)
        self._meta = meta
        self._d = value

    def forward(self, logits, target):
        """Return :func:`hace_loss` of ``logits`` and ``target``."""
        tensors = {name: self._buffers[name] for name in _TENSOR_NAMES}
        return _hace(logits, target, tensors, self._meta, self._d, self.eps, self.reduction)

    def extra_repr(self):
        nodes = ", node_logits=True" if self.node_logits else ""
        return (
            f"{self.hierarchy!r}, d={self._d}, eps={self.eps}, "
            f"reduction={self.reduction!r}{nodes}"
        )
