"""Property-based checks of the losses and structures (hypothesis), shared by
tests/test_fuzz.py (fast CI profile) and benchmarks/fuzz_stress.py (stress).

Each ``check_*`` draws one example and asserts, for logits of up to +-1e4 in
float32 / bfloat16 / float16: a finite loss and gradient, equal to the float64
result within ``TOL``. Tolerances (stated): the inputs are first rounded to the
dtype, so the float64 result is computed from the same numbers; the losses
compute in float32, so values agree to ``rtol=1e-4, atol=1e-4 * (1 + |loss|)``
and gradients to ``atol=1e-3`` (each gradient entry is at most about 1);
MIL with float16/bfloat16 inputs to 1e-2 (``HALF_TOL``: its bag term is
torch's cross-entropy in the input dtype). HACE and Average-K are checked
against the per-sample references of tests/_reference.py (written from the
formulas, in log space) at every scale; for the other losses the reference is
used at moderate logits (|z| <= 20) and, at large logits, where those naive
formulas overflow in float64 too, the loss's own float64 path, which the unit
tests check against the reference.
"""

import pickle

import numpy as np
import torch
from hypothesis import HealthCheck, assume, settings
from hypothesis import strategies as st

from skstruct.losses import (
    MILConveyanceLoss,
    average_k_loss,
    conveyance_loss,
    emd2_loss,
    hace_loss,
)
from skstruct.losses._average_k import (
    _n_pseudo_positives,
    _pseudo_positive_cells,
    _ranking_lse,
)
from skstruct.losses._reduction import softmax_lse
from skstruct.structures import ClassGraph, Hierarchy, Ordinal

from . import _reference as ref

settings.register_profile(
    "ci", max_examples=25, deadline=None, derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "stress", max_examples=10_000, deadline=None, derandomize=False,
    suppress_health_check=list(HealthCheck),
)

DTYPES = (torch.float32, torch.bfloat16, torch.float16)
TOL = dict(rtol=1e-4, atol=1e-4, grad_atol=1e-3)
HALF_TOL = dict(rtol=1e-2, atol=1e-2, grad_atol=1e-2)


@st.composite
def logits_and_target(draw, n_classes=None, min_classes=1, max_scale=1e4):
    """(logits float64 rounded to dtype, dtype, target, moderate) with scale up to 1e4."""
    n = draw(st.integers(1, 6))
    c = n_classes if n_classes is not None else draw(st.integers(min_classes, 7))
    dtype = draw(st.sampled_from(DTYPES))
    scale = draw(st.sampled_from([s for s in (0.0, 1.0, 5.0, 20.0, 300.0, 1e4) if s <= max_scale]))
    seed = draw(st.integers(0, 2**31 - 1))
    g = torch.Generator().manual_seed(seed)
    z = (torch.randn(n, c, generator=g, dtype=torch.float64) * scale).clamp(-1e4, 1e4)
    z = z.to(dtype).to(torch.float64)  # the exact numbers the low-precision call sees
    target = torch.randint(0, c, (n,), generator=g)
    return z, dtype, target, scale <= 20.0


def _compare(fn, z, dtype, reference=None, tol=TOL):
    """Run ``fn`` (per-sample losses) in ``dtype`` and float64; compare value and gradient."""
    x = z.to(dtype).requires_grad_(True)
    loss = fn(x)
    loss.sum().backward()
    assert torch.isfinite(loss).all(), f"non-finite loss {loss}"
    assert torch.isfinite(x.grad).all(), f"non-finite gradient {x.grad}"
    x64 = z.clone().requires_grad_(True)
    expected = (reference or fn)(x64)
    expected.sum().backward()
    scale = 1.0 + expected.detach().abs()
    err = (loss.detach().double() - expected.detach()).abs()
    assert bool((err <= tol["atol"] * scale + tol["rtol"] * expected.detach().abs()).all()), (
        f"loss {loss} vs float64 {expected}"
    )
    # The gradient arrives in ``dtype``: beyond the stated tolerance it may
    # carry the rounding of that dtype (half an ulp, within eps * |g|), which
    # no computation can avoid (bfloat16's eps is 2^-7).
    if z.numel():
        gerr = (x.grad.double() - x64.grad).abs()
        bound = tol["grad_atol"] * float(scale.max()) + torch.finfo(dtype).eps * x64.grad.abs()
        assert bool((gerr <= bound).all()), f"gradient error {float(gerr.max())}"


@st.composite
def plausibility(draw, c):
    kind = draw(st.sampled_from(["random", "identity", "all"]))
    if kind == "identity":
        return torch.eye(c, dtype=torch.bool)
    if kind == "all":
        return torch.ones(c, c, dtype=torch.bool)
    bits = draw(st.lists(st.booleans(), min_size=c * c, max_size=c * c))
    return torch.tensor(bits, dtype=torch.bool).reshape(c, c)


def check_conveyance(data):
    z, dtype, target, moderate = data.draw(logits_and_target())
    q = data.draw(plausibility(z.shape[1]))
    alpha = data.draw(st.sampled_from([0.0, 0.1, 1.0]))
    beta = data.draw(st.sampled_from([0.0, 1.0, 10.0]))
    assume(alpha + beta > 0)
    fn = lambda x: conveyance_loss(x, target, q, alpha=alpha, beta=beta, reduction="none")
    reference = (lambda x: ref.conveyance_loss_reference(x, target, q, alpha=alpha, beta=beta)) if moderate else None
    _compare(fn, z, dtype, reference)


@st.composite
def forests(draw, max_nodes=9):
    """A random forest over nodes n0..n{k-1}: each node's parent is an earlier node or none."""
    k = draw(st.integers(1, max_nodes))
    parents = {"n0": None}
    for i in range(1, k):
        p = draw(st.integers(-1, i - 1))
        parents[f"n{i}"] = None if p < 0 else f"n{p}"
    return Hierarchy(parents)


def check_hace(data):
    """HACE at every logit scale against the log-space float64 reference (its
    subtree masses are exact at gaps of 1e4, where float32's, before the exact
    anchors of skstruct/losses/_hace.py, were floored: 1115.7 vs 1125.0)."""
    h = data.draw(forests())
    z, dtype, target, _ = data.draw(logits_and_target(n_classes=h.n_leaves))
    d = data.draw(st.sampled_from([0.3, 0.7, 1.0]))
    eps = data.draw(st.sampled_from([0.0, 0.1]))
    fn = lambda x: hace_loss(x, target, h, d=d, eps=eps, reduction="none")
    reference = lambda x: ref.hace_loss_reference(x, target, h, d=d, eps=eps)
    _compare(fn, z, dtype, reference)


def check_emd(data):
    z, dtype, target, moderate = data.draw(logits_and_target(min_classes=1))
    c = z.shape[1]
    perm = data.draw(st.permutations(range(c)))
    rank = torch.tensor(perm) if data.draw(st.booleans()) else None
    ce = data.draw(st.sampled_from([0.0, 0.5]))
    fn = lambda x: emd2_loss(x, target, rank=rank, ce_weight=ce, reduction="none")
    reference = (lambda x: ref.emd2_loss_reference(x, target, rank=rank, ce_weight=ce)) if moderate else None
    _compare(fn, z, dtype, reference)


def _average_k_selection(z, target, k, dtype):
    """(B, C) bool pseudo-positives as the loss picks them, computing in ``dtype``."""
    n, c = z.shape
    m = _n_pseudo_positives(k, n)
    mask = torch.zeros(n * c, dtype=torch.bool)
    if m > 0:
        zd = z.to(dtype)
        _, lse = softmax_lse(zd)  # ranked as the loss ranks them
        mask[_pseudo_positive_cells(zd, _ranking_lse(zd, lse), target[:, None], m)] = True
    return mask.reshape(n, c)


def check_average_k(data):
    """The pseudo-positives are a top-m selection, so the loss jumps where two
    cells' probabilities cross. Where float32 and float64 pick different cells,
    the cells must be a near-tie (float64 log-probabilities within float32
    rounding, 1e-6 (1 + max |z|)); the float32 loss is then checked against
    the float64 reference with float32's selection. The reference (log-softmax
    and log-sigmoid, exact at any scale) is used at every logit scale."""
    z, dtype, target, _ = data.draw(logits_and_target(min_classes=2))
    n, c = z.shape
    k = data.draw(st.floats(1.0, c - 1e-3, allow_nan=False)) if c > 1 else 1.0
    assume(k < c)
    g = torch.Generator().manual_seed(data.draw(st.integers(0, 2**31 - 1)))
    f = (torch.randn(n, c, generator=g, dtype=torch.float64) * 3).to(dtype).to(torch.float64)
    positive = _average_k_selection(z, target, k, torch.float32)
    exact = _average_k_selection(z, target, k, torch.float64)
    if not torch.equal(positive, exact):
        log_p = torch.log_softmax(z, dim=1)
        gap = log_p[exact & ~positive].max() - log_p[positive & ~exact].min()
        assert gap <= 1e-6 * (1 + float(z.abs().max())), (
            f"float32 picks cells {gap} below float64's in log-probability"
        )
    positive = positive | torch.nn.functional.one_hot(target, c).bool()
    fn = lambda x: average_k_loss(x, f.to(x.dtype), target, k=k, reduction="none")
    reference = lambda x: ref.average_k_loss_reference(x, f, target, k=k, positive=positive)
    _compare(fn, z, dtype, reference)


def check_mil(data):
    z, dtype, target, moderate = data.draw(logits_and_target(n_classes=2))
    n = z.shape[0]
    n_max = data.draw(st.integers(1, 4))
    g = torch.Generator().manual_seed(data.draw(st.integers(0, 2**31 - 1)))
    inst = (torch.randn(n, n_max, 2, generator=g, dtype=torch.float64) * float(z.abs().max() + 1)).clamp(-1e4, 1e4)
    inst = inst.to(dtype).to(torch.float64)
    sizes = torch.randint(1, n_max + 1, (n,), generator=g)
    mask = torch.arange(n_max)[None, :] >= sizes[:, None]
    q = torch.tensor([[1, 1], [0, 1]])
    criterion = MILConveyanceLoss(q, alpha=1.0, beta=1.0)
    # Per-sample view for _compare: the bag logits carry the gradient checked.
    fn = lambda x: criterion((x, inst.to(x.dtype), torch.ones(n, n_max), mask), target)[None]
    # The bag term is torch's cross_entropy in the input dtype (under autocast
    # torch runs it in float32): float16/bfloat16 inputs get the half tolerance.
    _compare(fn, z, dtype, tol=TOL if dtype == torch.float32 else HALF_TOL)


LOSS_CHECKS = {
    "conveyance": check_conveyance,
    "hace": check_hace,
    "emd": check_emd,
    "average_k": check_average_k,
    "mil": check_mil,
}


# ------------------------------------------------------------------ structures


def _assert_metric(D, symmetric):
    D = np.asarray(D, dtype=np.float64)
    n = D.shape[0]
    assert D.shape == (n, n)
    assert np.all(np.diag(D) == 0) and np.all(D >= 0)
    off = ~np.eye(n, dtype=bool)
    assert np.all(D[off] > 0), "distinct classes at distance 0"
    if symmetric:
        assert np.array_equal(D, D.T)
    # triangle inequality D[i, k] <= D[i, j] + D[j, k] (inf allowed)
    assert np.all(D[:, None, :] <= D[:, :, None] + D[None, :, :] + 1e-9)


def check_hierarchy(data):
    h = data.draw(forests())
    edges = [(p, c) for c, p in h.parents.items() if p is not None]
    paths = [[*reversed(h.ancestors(leaf)), leaf] for leaf in h.classes.tolist()]
    for other in (Hierarchy.from_paths(paths), pickle.loads(pickle.dumps(h))):
        assert other.parents == h.parents
        assert np.array_equal(other.plausibility_matrix(), h.plausibility_matrix())
    if edges and all(h.parent(r) is None for r in h.roots) and len(h.roots) == 1:
        assert Hierarchy.from_edges(edges).parents == h.parents
    _assert_metric(h.distance_matrix(), symmetric=True)


def check_ordinal(data):
    n = data.draw(st.integers(1, 8))
    labels = data.draw(st.permutations([f"l{i}" for i in range(n)]))
    o = Ordinal(labels, width=data.draw(st.integers(0, 3)))
    other = pickle.loads(pickle.dumps(o))
    assert list(other.order) == list(o.order) and other.width == o.width
    _assert_metric(o.distance_matrix(), symmetric=True)


def check_graph(data):
    n = data.draw(st.integers(1, 6))
    classes = [f"c{i}" for i in range(n)]
    pairs = data.draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=12))
    edges = [(classes[a], classes[b]) for a, b in pairs if a != b]
    g = ClassGraph.from_edges(edges, classes=classes)
    other = pickle.loads(pickle.dumps(g))
    assert np.array_equal(other.plausibility_matrix(), g.plausibility_matrix())
    again = ClassGraph(g.weights, classes=g.classes.tolist())
    assert np.array_equal(again.distance_matrix(), g.distance_matrix())
    _assert_metric(g.distance_matrix(), symmetric=False)


STRUCTURE_CHECKS = {"hierarchy": check_hierarchy, "ordinal": check_ordinal, "graph": check_graph}
