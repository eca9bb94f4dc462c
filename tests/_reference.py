"""Float64 reference implementations of the skstruct losses.

Written straight from the formulas of SPEC.md with dense matrices and
per-sample loops: slow and obviously correct, for the tests only.
"""

# --- HACE ---
import numpy as _np_hace
import torch as _torch_hace


def hace_dense_matrices(hierarchy, d):
    """Dense reachability R (N, C) and d-scheme target W (N, C), nodes x leaves.

    ``R[a, l] = 1`` if leaf ``l`` (column in ``hierarchy.classes`` order) lies
    under node ``a`` (a leaf lies under itself). ``W[a, l]`` is the target mass
    of node ``a`` for true leaf ``l``: ``d (1 - d)^k`` for the ancestor ``k``
    steps above ``l`` (``k = 0`` is ``l``), except the root of ``l``'s tree,
    which keeps ``(1 - d)^h`` (``h`` = depth of ``l``).
    """
    nodes = list(hierarchy.nodes)
    row = {node: i for i, node in enumerate(nodes)}
    classes = hierarchy.classes.tolist()
    R = _np_hace.zeros((len(nodes), len(classes)))
    W = _np_hace.zeros((len(nodes), len(classes)))
    for j, leaf in enumerate(classes):
        path = [leaf, *hierarchy.ancestors(leaf)]  # k = 0 .. h
        h = len(path) - 1
        for k, node in enumerate(path):
            R[row[node], j] = 1.0
            W[row[node], j] = (1.0 - d) ** h if k == h else d * (1.0 - d) ** k
    return R, W


def hace_smoothing_matrix(n_classes, eps):
    """Dense (C, C) leaf smoothing: column y is the smoothed target of label y."""
    if n_classes == 1:
        return _np_hace.ones((1, 1))
    S = _np_hace.full((n_classes, n_classes), eps / (n_classes - 1))
    _np_hace.fill_diagonal(S, 1.0 - eps)
    return S


def hace_node_reachability(hierarchy):
    """Dense (N, N) reachability between nodes: ``A[a, b] = 1`` if b is under a (or a)."""
    nodes = list(hierarchy.nodes)
    row = {node: i for i, node in enumerate(nodes)}
    A = _np_hace.zeros((len(nodes), len(nodes)))
    for b, node in enumerate(nodes):
        for a in [node, *hierarchy.ancestors(node)]:
            A[row[a], b] = 1.0
    return A


def hace_loss_reference(logits, target, hierarchy, *, d=0.7, eps=0.0, node_logits=False):
    """Per-sample HACE loss, (B,) float64, differentiable through autograd.

    ``loss_b = - sum_a target_a log q_a`` with ``q = R softmax(z_b)`` and
    ``target = W S[:, y_b]``. With ``node_logits``, the logits are one per node
    (columns in ``hierarchy.nodes`` order, i.e. depth-first) and ``R`` is the
    (N, N) node reachability, so ``q_a`` includes the internal nodes' own mass.
    ``log q_a = logsumexp(z over the columns under a) - logsumexp(z)`` in log
    space (``R`` is 0/1), so the reference stays exact at any logit scale.
    """
    R, W = hace_dense_matrices(hierarchy, d)
    S = hace_smoothing_matrix(hierarchy.n_classes, eps)
    if node_logits:
        R = hace_node_reachability(hierarchy)
    R = _torch_hace.tensor(R, dtype=_torch_hace.float64)
    T = _torch_hace.tensor(W @ S, dtype=_torch_hace.float64)  # (N, C) node targets
    z = logits.to(_torch_hace.float64)
    losses = []
    log_R = _torch_hace.where(R > 0, 0.0, -_torch_hace.inf)
    for b in range(z.shape[0]):
        log_q = _torch_hace.logsumexp(z[b][None, :] + log_R, dim=1) - _torch_hace.logsumexp(z[b], 0)
        t = T[:, int(target[b])]
        losses.append(-(t * log_q).sum())
    if not losses:
        return z.new_zeros(0)
    return _torch_hace.stack(losses)


# --- Conveyance ---
import torch as _torch_cv


def conveyance_loss_reference(logits, target, plausible, *, alpha=0.1, beta=10.0):
    """Per-sample Conveyance loss, (B,) float64, differentiable through autograd.

    ``log(1 + alpha (1 - p_t) / p_t + beta (1 - p_S) / p_S)`` with
    ``S = {t} ∪ {s : plausible[s, t]}``, one sample at a time.
    """
    z = logits.to(_torch_cv.float64)
    plausible = _torch_cv.as_tensor(plausible).to("cpu")
    losses = []
    for b in range(z.shape[0]):
        p = _torch_cv.softmax(z[b], dim=0)
        t = int(target[b])
        in_s = [s == t or bool(plausible[s, t]) for s in range(z.shape[1])]
        p_t = p[t]
        p_s = sum(p[s] for s in range(z.shape[1]) if in_s[s])
        losses.append(
            _torch_cv.log(1 + alpha * (1 - p_t) / p_t + beta * (1 - p_s) / p_s)
        )
    return _torch_cv.stack(losses)


# --- EMD ---
import torch as _torch_emd


def emd2_loss_reference(logits, target, *, rank=None, ce_weight=0.0):
    """Per-sample squared EMD (+ ce_weight * CE), (B,) float64, with autograd.

    CDFs are accumulated along the rank order: column ``c`` sits at position
    ``rank[c]`` of the scale (``rank=None``: position ``c``).
    """
    z = logits.to(_torch_emd.float64)
    n_classes = z.shape[1]
    rank = list(range(n_classes)) if rank is None else [int(r) for r in rank]
    column_at = {r: c for c, r in enumerate(rank)}
    losses = []
    for b in range(z.shape[0]):
        p = _torch_emd.softmax(z[b], dim=0)
        t = int(target[b])
        cdf_p = 0.0
        cdf_onehot = 0.0
        loss = 0.0
        for position in range(n_classes):
            column = column_at[position]
            cdf_p = cdf_p + p[column]
            cdf_onehot = cdf_onehot + (1.0 if column == t else 0.0)
            loss = loss + (cdf_p - cdf_onehot) ** 2
        loss = loss - ce_weight * _torch_emd.log(p[t])
        losses.append(_torch_emd.as_tensor(loss, dtype=_torch_emd.float64))
    return _torch_emd.stack(losses)


def emd2_ground_loss_reference(logits, target, distance, *, omega=2.0, mu=0.0, ce_weight=1.0):
    """Per-sample ``ce_weight * CE + sum_i p_i^2 (D[i, t]^omega + mu)``, float64."""
    z = logits.to(_torch_emd.float64)
    distance = _torch_emd.as_tensor(distance, dtype=_torch_emd.float64)
    losses = []
    for b in range(z.shape[0]):
        p = _torch_emd.softmax(z[b], dim=0)
        t = int(target[b])
        loss = -ce_weight * _torch_emd.log(p[t])
        for i in range(z.shape[1]):
            loss = loss + p[i] ** 2 * (float(distance[i, t]) ** omega + mu)
        losses.append(loss)
    return _torch_emd.stack(losses)


# --- Average-K ---
import math as _math_ak

import torch as _torch_ak


def average_k_pseudo_labels_reference(logits_softmax, target, k):
    """(B, C) bool: true labels plus the floor((k-1)B) most probable other cells.

    Ranked by log-probability; among equal ones the first in row-major order wins.
    """
    z = logits_softmax.detach().to(_torch_ak.float64)
    n_samples, n_classes = z.shape
    proba = _torch_ak.log_softmax(z, dim=1)
    positive = _torch_ak.zeros(n_samples, n_classes, dtype=_torch_ak.bool)
    candidates = []
    for i in range(n_samples):
        positive[i, int(target[i])] = True
        for j in range(n_classes):
            if j != int(target[i]):
                candidates.append((float(proba[i, j]), i, j))
    candidates.sort(key=lambda c: (-c[0], c[1], c[2]))
    n_pseudo = int(_math_ak.floor((k - 1) * n_samples + 1e-9))
    for _, i, j in candidates[:n_pseudo]:
        positive[i, j] = True
    return positive


def average_k_loss_reference(
    logits_softmax, logits_multilabel, target, *, k, alpha=1.0, positive=None
):
    """Per-sample Average-K terms, (B,) float64, whose mean is the batch loss.

    ``positive`` (B, C) bool fixes the pseudo-labels (default: chosen from the
    float64 probabilities).
    """
    z = logits_softmax.to(_torch_ak.float64)
    f = logits_multilabel.to(_torch_ak.float64)
    n_samples, n_classes = z.shape
    if positive is None:
        positive = average_k_pseudo_labels_reference(logits_softmax, target, k)
    losses = []
    for i in range(n_samples):
        y = int(target[i])
        loss = -_torch_ak.log_softmax(z[i], dim=0)[y]
        loss = loss - _torch_ak.log(_torch_ak.sigmoid(f[i, y]))
        for j in range(n_classes):
            if j == y:
                continue
            if positive[i, j]:
                loss = loss - alpha / (k - 1) * _torch_ak.log(_torch_ak.sigmoid(f[i, j]))
            else:
                loss = loss - alpha / (n_classes - k) * _torch_ak.log(
                    1 - _torch_ak.sigmoid(f[i, j])
                )
        losses.append(loss)
    return _torch_ak.stack(losses)
