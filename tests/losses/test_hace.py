"""Tests of skstruct.losses.hace_loss and HACELoss."""

import pickle

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from skstruct.losses import HACELoss, hace_loss
from skstruct.structures import Hierarchy

from .._reference import hace_dense_matrices, hace_loss_reference
from ._kernel_forms import assert_kernel_forms_agree


def balanced_tree(branching=3, depth=3):
    """Balanced tree with integer leaves named in a shuffled order."""
    n_leaves = branching**depth
    names = np.random.RandomState(depth).permutation(n_leaves)
    parents = {}
    for i in range(n_leaves):
        node = int(names[i])
        for level in range(depth, 0, -1):
            parent = f"n{level - 1}_{i // branching ** (depth - level + 1)}"
            parents[node] = parent
            node = parent
    return Hierarchy(parents)


def unbalanced_tree():
    """One tree with leaves at depths 1 to 4 and nodes with one child."""
    return Hierarchy(
        {
            "a": "r", "b": "a", "c": "b", "x": "c", "y": "c", "z": "b",
            "w": "a", "v": "r", "u": "t", "t": "r",
        }
    )  # fmt: skip


def random_forest(seed, n_nodes=40):
    """Random forest of integer nodes with root leaves and chains."""
    rng = np.random.RandomState(seed)
    parents = {0: None}
    for i in range(1, n_nodes):
        parents[i] = None if rng.rand() < 0.1 else int(rng.randint(0, i))
    return Hierarchy(parents)


def flat_forest():
    """Every leaf is a root: HACE is cross-entropy (with label smoothing)."""
    return Hierarchy({label: None for label in "abcde"})


HIERARCHIES = {
    "balanced": balanced_tree,
    "unbalanced": unbalanced_tree,
    "forest": lambda: random_forest(0),
    "forest2": lambda: random_forest(1, n_nodes=25),
    "fashion": lambda: Hierarchy.from_paths(
        [["tops", "tshirt"], ["tops", "coat"], ["bottoms", "trouser"], ["bag"]]
    ),
    "flat": flat_forest,
}


def random_batch(h, rng, n_samples=12, scale=3.0, dtype=torch.float64):
    logits = torch.tensor(rng.randn(n_samples, h.n_classes) * scale, dtype=dtype)
    target = torch.tensor(rng.randint(0, h.n_classes, n_samples))
    return logits, target


def value_and_grad(fn, logits, target, **kwargs):
    z = logits.detach().clone().requires_grad_()
    loss = fn(z, target, **kwargs)
    (grad,) = torch.autograd.grad(loss.sum(), z)
    return loss.detach(), grad


def test_reference_targets_sum_to_one():
    """Check that the reference d-scheme puts mass 1 on every leaf's path."""
    for make in HIERARCHIES.values():
        R, W = hace_dense_matrices(make(), 0.7)
        np.testing.assert_allclose(W.sum(axis=0), 1.0)
        assert np.all((W > 0) <= (R > 0))


@pytest.mark.parametrize("name", sorted(HIERARCHIES))
@pytest.mark.parametrize("d", [0.7, 0.2, 1.0])
@pytest.mark.parametrize("eps", [0.0, 0.1])
def test_matches_dense_reference(name, d, eps):
    """Check values and gradients against the dense float64 reference."""
    rng = np.random.RandomState(0)
    h = HIERARCHIES[name]()
    logits, target = random_batch(h, rng)
    loss, grad = value_and_grad(hace_loss, logits, target, hierarchy=h, d=d, eps=eps,
                                reduction="none")
    ref_loss, ref_grad = value_and_grad(hace_loss_reference, logits, target, hierarchy=h,
                                        d=d, eps=eps)
    assert loss.dtype == torch.float64
    torch.testing.assert_close(loss, ref_loss, rtol=1e-5, atol=1e-10)
    torch.testing.assert_close(grad, ref_grad, rtol=1e-5, atol=1e-10)


@pytest.mark.parametrize("name", ["balanced", "unbalanced", "forest"])
def test_float32_matches_reference(name):
    """Check float32 logits against the float64 reference."""
    rng = np.random.RandomState(1)
    h = HIERARCHIES[name]()
    logits, target = random_batch(h, rng)
    logits32 = logits.float()
    loss, grad = value_and_grad(hace_loss, logits32, target, hierarchy=h, eps=0.1,
                                reduction="none")
    ref_loss, ref_grad = value_and_grad(hace_loss_reference, logits32.double(), target,
                                        hierarchy=h, eps=0.1)
    assert loss.dtype == torch.float32 and grad.dtype == torch.float32
    torch.testing.assert_close(loss.double(), ref_loss, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(grad.double(), ref_grad, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["balanced", "unbalanced", "forest", "flat"])
@pytest.mark.parametrize("eps", [0.0, 0.2])
def test_gradcheck(name, eps):
    """Check the hand-written backward with torch.autograd.gradcheck in float64."""
    rng = np.random.RandomState(2)
    h = HIERARCHIES[name]()
    logits, target = random_batch(h, rng, n_samples=4, scale=1.0)
    z = logits.clone().requires_grad_()
    assert torch.autograd.gradcheck(
        lambda x: hace_loss(x, target, h, d=0.6, eps=eps, reduction="none"), (z,)
    )


@pytest.mark.parametrize("name", sorted(HIERARCHIES))
@pytest.mark.parametrize("eps", [0.0, 0.1])
def test_node_logits_match_reference(name, eps):
    """Check the one-logit-per-node variant against the dense (N, N) reference."""
    rng = np.random.RandomState(12)
    h = HIERARCHIES[name]()
    logits = torch.tensor(rng.randn(10, h.n_nodes) * 3)
    target = torch.tensor(rng.randint(0, h.n_classes, 10))
    kwargs = dict(hierarchy=h, d=0.6, eps=eps, node_logits=True)
    loss, grad = value_and_grad(hace_loss, logits, target, reduction="none", **kwargs)
    ref_loss, ref_grad = value_and_grad(hace_loss_reference, logits, target, **kwargs)
    torch.testing.assert_close(loss, ref_loss, rtol=1e-5, atol=1e-10)
    torch.testing.assert_close(grad, ref_grad, rtol=1e-5, atol=1e-10)
    z = logits[:3].clone().requires_grad_()
    assert torch.autograd.gradcheck(
        lambda x: hace_loss(x, target[:3], h, d=0.6, eps=eps, node_logits=True), (z,)
    )


def test_node_logits_module_and_errors():
    """Check HACELoss(node_logits=True) and the column-count message."""
    h = HIERARCHIES["unbalanced"]()
    rng = np.random.RandomState(13)
    logits = torch.tensor(rng.randn(5, h.n_nodes), dtype=torch.float32)
    target = torch.tensor(rng.randint(0, h.n_classes, 5))
    module = HACELoss(h, d=0.5, node_logits=True)
    torch.testing.assert_close(
        module(logits, target), hace_loss(logits, target, h, d=0.5, node_logits=True)
    )
    assert "node_logits=True" in repr(module)
    with pytest.raises(ValueError, match=r"has 11 nodes; the columns must follow .*dfs_nodes"):
        module(logits[:, :-1], target)
    # leaf columns only, with every internal logit at -inf: the leaves-only loss
    leaf_logits = torch.tensor(rng.randn(5, h.n_classes))
    node_logits = torch.full((5, h.n_nodes), -torch.inf, dtype=torch.float64)
    columns = [h.dfs_nodes.tolist().index(c) for c in h.classes.tolist()]
    node_logits[:, columns] = leaf_logits
    torch.testing.assert_close(
        hace_loss(node_logits, target, h, node_logits=True), hace_loss(leaf_logits, target, h)
    )
    # with the smoothing term too (it weighs the leaf columns only: an internal
    # logit of -inf must add 0, not 0 * -inf)
    for eps in (0.1, 0.5):
        torch.testing.assert_close(
            hace_loss(node_logits, target, h, eps=eps, node_logits=True),
            hace_loss(leaf_logits, target, h, eps=eps),
        )


@pytest.mark.parametrize("name", sorted(HIERARCHIES))
def test_d_one_is_cross_entropy(name):
    """Check that d=1 and eps=0 give torch's cross-entropy."""
    rng = np.random.RandomState(3)
    h = HIERARCHIES[name]()
    logits, target = random_batch(h, rng)
    loss, grad = value_and_grad(hace_loss, logits, target, hierarchy=h, d=1.0)
    ce, ce_grad = value_and_grad(F.cross_entropy, logits, target)
    torch.testing.assert_close(loss, ce, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(grad, ce_grad, rtol=1e-10, atol=1e-12)


def test_flat_forest_is_label_smoothed_cross_entropy():
    """Check that a forest of root leaves gives cross-entropy with label smoothing."""
    rng = np.random.RandomState(4)
    h = flat_forest()
    logits, target = random_batch(h, rng)
    n = h.n_classes
    eps = 0.2
    # torch spreads label_smoothing / n on every class, we spread eps / (n - 1)
    # on the others: same target with label_smoothing = eps * n / (n - 1)
    loss = hace_loss(logits, target, h, d=0.3, eps=eps)
    ce = F.cross_entropy(logits, target, label_smoothing=eps * n / (n - 1))
    torch.testing.assert_close(loss, ce, rtol=1e-10, atol=1e-12)


def test_hand_computed_value():
    """Check one loss value worked out by hand on a two-level tree."""
    h = Hierarchy({"cat": "animal", "dog": "animal", "bus": "vehicle", "car": "vehicle"})
    logits = torch.tensor([[0.0, 0.0, 2.0, 1.0]], dtype=torch.float64)  # bus car cat dog
    p = torch.softmax(logits[0], 0)
    d = 0.7
    expected = -(d * torch.log(p[2]) + (1 - d) * torch.log(p[2] + p[3]))
    loss = hace_loss(logits, torch.tensor([2]), h, d=d)
    torch.testing.assert_close(loss, expected)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("eps", [0.0, 0.1])
def test_extreme_logits_are_finite(dtype, eps):
    """Check that logits of +-1e4 give finite losses and gradients, no NaN."""
    rng = np.random.RandomState(5)
    h = balanced_tree()
    sign = torch.tensor(rng.choice([-1.0, 1.0], size=(8, h.n_classes)))
    logits = (sign * 1e4).to(dtype)
    if dtype == torch.float16:
        logits = (sign * 6e4).to(dtype)  # float16 tops out at 65504
    target = torch.tensor(rng.randint(0, h.n_classes, 8))
    z = logits.clone().requires_grad_()
    loss = hace_loss(z, target, h, eps=eps)
    loss.backward()
    assert loss.dtype == torch.float32
    assert torch.isfinite(loss)
    assert z.grad.dtype == dtype
    assert torch.isfinite(z.grad).all()
    assert z.grad.float().abs().max() <= 2.0


def test_extreme_logits_value_and_gradient_sign():
    """Check that a confidently wrong prediction costs at least d times its gap."""
    h = balanced_tree()
    n = h.n_classes
    logits = torch.zeros(1, n, dtype=torch.float64)
    logits[0, 0] = 1e4
    leaf0, leaf_y = h.classes[0], h.classes[n - 1]
    target = torch.tensor([n - 1])  # p_y = exp(-1e4)
    z = logits.clone().requires_grad_()
    loss = hace_loss(z, target, h, d=0.7)
    loss.backward()
    # the leaf term is exact; the subtree sums of y's ancestors underflow and
    # are floored (at log p_y or the tiny float), so the loss is a lower bound
    path = [leaf_y, *h.ancestors(leaf_y)]
    weights = [0.7 * 0.3**k for k in range(len(path) - 1)] + [0.3 ** (len(path) - 1)]
    far = sum(w for w, a in zip(weights, path) if leaf0 not in h.leaves_under(a))
    assert 0.7 * 1e4 <= loss.item() <= far * 1e4 + 1
    assert torch.isfinite(z.grad).all()
    assert z.grad[0, n - 1] <= -0.7  # the true leaf is pushed up
    # the wrong winner is pushed down by the target mass outside its subtrees
    assert z.grad[0, 0].item() == pytest.approx(far)
    torch.testing.assert_close(z.grad.sum(), torch.tensor(0.0, dtype=torch.float64), atol=0.5,
                               rtol=0)


def test_large_gap_exact_while_no_underflow():
    """Check exactness for logit gaps of 500 in float64 (no subtree underflows)."""
    rng = np.random.RandomState(11)
    h = unbalanced_tree()
    logits = torch.tensor(rng.randn(6, h.n_classes) * 150, dtype=torch.float64)
    target = torch.tensor(rng.randint(0, h.n_classes, 6))
    loss, grad = value_and_grad(hace_loss, logits, target, hierarchy=h, eps=0.1,
                                reduction="none")
    ref_loss, ref_grad = value_and_grad(hace_loss_reference, logits, target, hierarchy=h,
                                        eps=0.1)
    torch.testing.assert_close(loss, ref_loss, rtol=1e-7, atol=1e-8)
    torch.testing.assert_close(grad, ref_grad, rtol=1e-7, atol=1e-8)


@pytest.mark.parametrize("eps", [0.0, 0.1])
@pytest.mark.parametrize("node_logits", [False, True])
def test_float32_logits_near_1e4_keep_their_log_probabilities(eps, node_logits):
    """Found by benchmarks/fuzz_stress.py: at |z| ~ 1e4 in float32, z_y - logsumexp(z)
    lost ~5e-4 to the rounding of logsumexp (an ulp of 1e4): log 2 read 0.69346."""
    h = HIERARCHIES["forest"]()
    rng = np.random.RandomState(12)
    n_cols = h.n_nodes if node_logits else h.n_classes
    logits = torch.tensor(rng.choice([-9984.0, -9983.5, 9984.0], size=(8, n_cols)))
    logits[:2] = -9984.0  # uniform rows: log p = -log(n_cols)
    target = torch.tensor(rng.randint(0, h.n_classes, 8))
    kwargs = dict(hierarchy=h, eps=eps, node_logits=node_logits)
    loss, grad = value_and_grad(hace_loss, logits.float(), target, reduction="none", **kwargs)
    ref_loss, ref_grad = value_and_grad(hace_loss_reference, logits, target, **kwargs)
    torch.testing.assert_close(loss.double(), ref_loss, rtol=1e-6, atol=1e-5)
    # the gradient's float32 cancellation (p_j against sum_b t_b p_j / q_b)
    torch.testing.assert_close(grad.double(), ref_grad, rtol=1e-4, atol=5e-5)


def test_function_and_module_agree():
    """Check that HACELoss gives hace_loss, for every reduction."""
    rng = np.random.RandomState(6)
    h = HIERARCHIES["forest"]()
    logits, target = random_batch(h, rng, dtype=torch.float32)
    for reduction in ("mean", "sum", "none"):
        module = HACELoss(h, d=0.5, eps=0.05, reduction=reduction)
        expected, expected_grad = value_and_grad(
            hace_loss, logits, target, hierarchy=h, d=0.5, eps=0.05, reduction=reduction
        )
        got, got_grad = value_and_grad(module, logits, target)
        torch.testing.assert_close(got, expected)
        torch.testing.assert_close(got_grad, expected_grad)


@pytest.mark.parametrize("eps", [0.0, 0.1])
def test_autocast_computes_in_float32(eps):
    """Under CPU autocast (bfloat16) the loss is the float32 one, on both paths."""
    rng = np.random.RandomState(7)
    h = HIERARCHIES["balanced"]()
    logits, target = random_batch(h, rng, n_samples=40, dtype=torch.float32)
    expected, expected_grad = value_and_grad(hace_loss, logits, target, hierarchy=h, eps=eps)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got, got_grad = value_and_grad(hace_loss, logits, target, hierarchy=h, eps=eps)
    assert got.dtype == torch.float32 and got_grad.dtype == torch.float32
    torch.testing.assert_close(got, expected)
    torch.testing.assert_close(got_grad, expected_grad)


def test_reductions():
    """Check 'none', 'mean', 'sum' and an empty batch."""
    rng = np.random.RandomState(7)
    h = HIERARCHIES["unbalanced"]()
    logits, target = random_batch(h, rng)
    per_sample = hace_loss(logits, target, h, reduction="none")
    assert per_sample.shape == (12,)
    torch.testing.assert_close(hace_loss(logits, target, h), per_sample.mean())
    torch.testing.assert_close(hace_loss(logits, target, h, reduction="sum"), per_sample.sum())
    empty = hace_loss(logits[:0], target[:0], h, reduction="none")
    assert empty.shape == (0,)
    assert hace_loss(logits[:0], target[:0], h, reduction="sum") == 0


@pytest.mark.parametrize("d", [0.0, -0.1, 1.5, "0.7", None, True])
def test_invalid_d(d):
    """Check that d outside (0, 1] is rejected, by the function and the Module."""
    h = HIERARCHIES["fashion"]()
    logits, target = random_batch(h, np.random.RandomState(0))
    with pytest.raises(ValueError, match="d must be a number in \\(0, 1\\]"):
        hace_loss(logits, target, h, d=d)
    with pytest.raises(ValueError, match="d must be a number in \\(0, 1\\]"):
        HACELoss(h, d=d)


@pytest.mark.parametrize("eps", [-0.1, 1.0, 2.0, "0.1", None])
def test_invalid_eps(eps):
    """Check that eps outside [0, 1) is rejected."""
    h = HIERARCHIES["fashion"]()
    logits, target = random_batch(h, np.random.RandomState(0))
    with pytest.raises(ValueError, match="eps must be a number in \\[0, 1\\)"):
        hace_loss(logits, target, h, eps=eps)
    with pytest.raises(ValueError, match="eps must be a number in \\[0, 1\\)"):
        HACELoss(h, eps=eps)


def test_invalid_reduction_and_inputs():
    """Check the errors for a bad reduction, hierarchy, shapes and dtypes."""
    h = HIERARCHIES["fashion"]()
    logits, target = random_batch(h, np.random.RandomState(0))
    with pytest.raises(ValueError, match="reduction='avg' is not a valid value"):
        hace_loss(logits, target, h, reduction="avg")
    with pytest.raises(ValueError, match="reduction=None is not a valid value"):
        HACELoss(h, reduction=None)
    with pytest.raises(TypeError, match="hierarchy must be a skstruct.structures.Hierarchy"):
        hace_loss(logits, target, {"a": "b"})
    with pytest.raises(ValueError, match="logits has 3 columns but the hierarchy has 4 leaves"):
        hace_loss(logits[:, :3], target, h)
    with pytest.raises(ValueError, match="target must have shape"):
        hace_loss(logits, target[:2], h)
    with pytest.raises(TypeError, match="floating-point"):
        hace_loss(target[:, None].expand(-1, 4), target, h)


def test_module_buffers_and_d_setter():
    """Check that the Module's tables are buffers and that setting d rebuilds them."""
    h = HIERARCHIES["balanced"]()
    module = HACELoss(h)
    buffers = dict(module.named_buffers())
    assert {"col_parent", "path_node", "class_w32", "class_w64", "kappa_int64"} <= set(buffers)
    assert "col_parent" in module.state_dict()
    logits, target = random_batch(h, np.random.RandomState(8), dtype=torch.float32)
    module.d = 0.3
    assert module.d == 0.3
    torch.testing.assert_close(module(logits, target), hace_loss(logits, target, h, d=0.3))
    with pytest.raises(ValueError, match="d must be"):
        module.d = 2.0
    assert "d=0.3" in repr(module) and "Hierarchy(n_nodes=" in repr(module)


def test_module_pickle_and_to():
    """Check that the Module pickles and moves with .to()."""
    h = HIERARCHIES["unbalanced"]()
    module = HACELoss(h, d=0.4, eps=0.1, reduction="sum")
    clone = pickle.loads(pickle.dumps(module)).to("cpu")
    logits, target = random_batch(h, np.random.RandomState(9), dtype=torch.float32)
    torch.testing.assert_close(clone(logits, target), module(logits, target))
    assert clone.hierarchy == h and clone.eps == 0.1 and clone.reduction == "sum"


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    """Check that the loss and its gradient on CUDA match the CPU."""
    h = HIERARCHIES["forest"]()
    logits, target = random_batch(h, np.random.RandomState(10), dtype=torch.float32)
    module = HACELoss(h, eps=0.1)
    cpu_loss, cpu_grad = value_and_grad(module, logits, target)
    module = module.to("cuda")
    gpu_loss, gpu_grad = value_and_grad(module, logits.cuda(), target.cuda())
    torch.testing.assert_close(gpu_loss.cpu(), cpu_loss, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(gpu_grad.cpu(), cpu_grad, rtol=1e-5, atol=1e-6)
    func_loss = hace_loss(logits.cuda(), target.cuda(), h, eps=0.1)
    torch.testing.assert_close(func_loss.cpu(), cpu_loss, rtol=1e-5, atol=1e-6)


def test_large_hierarchy_runs():
    """Check a 10,000-leaf tree end to end (tables are built once and cached)."""
    h = balanced_tree(branching=10, depth=4)
    logits = torch.randn(16, h.n_classes, generator=torch.Generator().manual_seed(0))
    target = torch.randint(h.n_classes, (16,), generator=torch.Generator().manual_seed(1))
    z = logits.clone().requires_grad_()
    loss = hace_loss(z, target, h, eps=0.1)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(z.grad).all()
    torch.testing.assert_close(z.grad.sum(dim=1), torch.zeros(16), atol=1e-5, rtol=0)


@pytest.mark.parametrize("eps", [0.0, 0.1])
def test_node_logits_extreme_logits_are_finite(eps):
    """Check node_logits at logits of +-1e4: finite loss and gradient, true leaf pushed up."""
    rng = np.random.RandomState(14)
    h = HIERARCHIES["unbalanced"]()
    logits = torch.tensor(rng.choice([-1e4, 1e4], size=(6, h.n_nodes)), dtype=torch.float32)
    target = torch.tensor(rng.randint(0, h.n_classes, 6))
    z = logits.clone().requires_grad_()
    loss = hace_loss(z, target, h, eps=eps, node_logits=True, reduction="none")
    loss.sum().backward()
    assert torch.isfinite(loss).all() and torch.isfinite(z.grad).all()
    columns = [h.dfs_nodes.tolist().index(c) for c in h.classes.tolist()]
    true_col = torch.tensor(columns)[target]
    assert torch.all(z.grad[torch.arange(6), true_col] <= 0)


def test_node_logits_match_stable_log_subtree_reference():
    """Check node_logits against a float64 log-space reference at logit gaps of 300.

    The dense reference ``log(R softmax(z))`` loses the small subtrees at such
    gaps; here ``log q_a = logsumexp(z over the subtree of a) - logsumexp(z)``
    is computed node by node, which stays exact.
    """
    rng = np.random.RandomState(15)
    h = HIERARCHIES["forest2"]()
    nodes = h.dfs_nodes.tolist()
    logits = torch.tensor(rng.randn(4, h.n_nodes) * 100, dtype=torch.float64)
    target = torch.tensor(rng.randint(0, h.n_classes, 4))
    d = 0.6
    log_norm = torch.logsumexp(logits, dim=1)
    expected = []
    for b in range(4):
        leaf = h.classes[int(target[b])]
        path = [leaf, *h.ancestors(leaf)]
        loss = 0.0
        for k, node in enumerate(path):
            weight = (1 - d) ** k if k == len(path) - 1 else d * (1 - d) ** k
            subtree = [nodes.index(x) for x in nodes if x == node or node in h.ancestors(x)]
            log_q = torch.logsumexp(logits[b, subtree], dim=0) - log_norm[b]
            loss = loss - weight * log_q
        expected.append(loss)
    got = hace_loss(logits, target, h, d=d, node_logits=True, reduction="none")
    torch.testing.assert_close(got, torch.stack(expected), rtol=1e-9, atol=1e-9)


def test_functional_and_module_give_identical_gradients():
    """Check that both forms run the same code: bit-identical values and gradients."""
    hierarchy = Hierarchy({"cat": "animal", "dog": "animal", "bus": "vehicle", "car": "vehicle",
                           "animal": "thing", "vehicle": "thing"})
    rng = np.random.RandomState(41)
    logits = torch.tensor(rng.normal(size=(12, 4)), dtype=torch.float32)
    target = torch.tensor(rng.randint(4, size=12))
    criterion = HACELoss(hierarchy, d=0.6, eps=0.1, reduction="none")
    results = []
    for fn in [lambda x: criterion(x, target),
               lambda x: hace_loss(x, target, hierarchy, d=0.6, eps=0.1, reduction="none")]:
        x = logits.clone().requires_grad_(True)
        value = fn(x)
        (grad,) = torch.autograd.grad((value * torch.linspace(0.5, 1.5, 12)).sum(), x)
        results.append((value.detach(), grad))
    assert torch.equal(results[0][0], results[1][0])
    assert torch.equal(results[0][1], results[1][1])


# --- the fused CPU kernel (skstruct.losses._hace._hace_kernel) ---

from skstruct.losses import _hace  # noqa: E402
from skstruct.losses._numba import eager_only, numba_available  # noqa: E402

FUSED_HIERARCHIES = ["balanced", "unbalanced", "forest", "flat"]


def _weighted_value_and_grad(logits, target, **kwargs):
    """Loss, gradient of ``sum(loss * weights)`` (per-sample weights on 'none') and
    whether the kernel computed them."""
    calls = []
    kernel = _hace._hace_kernel

    def counted(*args):
        result = kernel(*args)
        calls.append(result[0])
        return result

    z = logits.detach().clone().requires_grad_()
    _hace._hace_kernel = counted
    try:
        loss = hace_loss(z, target, **kwargs)
    finally:
        _hace._hace_kernel = kernel
    weights = torch.linspace(0.5, 2.0, loss.numel(), dtype=loss.dtype).reshape(loss.shape)
    (grad,) = torch.autograd.grad((loss * weights).sum(), z)
    return loss.detach(), grad, calls == [0]


@pytest.mark.skipif(
    not numba_available(),
    reason="numba is not installed (or SKSTRUCT_NUMBA=0): the fused CPU kernels are off",
)
class TestFusedKernel:
    """The fused kernel against the eager path and its own pure-Python source."""

    @pytest.fixture(autouse=True)
    def loss_path(self):
        """Override the two-path fixture of conftest.py: these tests choose their path."""
        yield "fused"

    @pytest.mark.parametrize("name", FUSED_HIERARCHIES)
    @pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
    @pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
    @pytest.mark.parametrize("eps", [0.0, 0.1])
    @pytest.mark.parametrize("node_logits", [False, True])
    @pytest.mark.parametrize("n_samples", [16, 600])
    def test_fused_equals_eager(self, name, reduction, dtype, eps, node_logits, n_samples):
        h = HIERARCHIES[name]()
        rng = np.random.RandomState(20)
        n_cols = h.n_nodes if node_logits else h.n_classes
        logits = torch.tensor(rng.randn(n_samples, n_cols) * 4, dtype=dtype)
        target = torch.tensor(rng.randint(0, h.n_classes, n_samples))
        kwargs = dict(hierarchy=h, d=0.6, eps=eps, reduction=reduction, node_logits=node_logits)
        value, grad, fused = _weighted_value_and_grad(logits, target, **kwargs)
        assert fused
        with eager_only():
            expected, expected_grad, eager = _weighted_value_and_grad(logits, target, **kwargs)
        assert not eager
        assert value.dtype == dtype and grad.dtype == dtype
        # float32: the eager leaf term z_y - logsumexp(z) is off by ~1e-6 (the
        # rounding of a logsumexp near 10) where the kernel's log p_y is exact
        tol = dict(rtol=1e-5, atol=3e-6) if dtype == torch.float32 else dict(rtol=1e-12,
                                                                              atol=1e-14)
        torch.testing.assert_close(value, expected, **tol)
        torch.testing.assert_close(grad, expected_grad, **tol)

    def test_module_and_half_precision_take_the_kernel(self):
        h = HIERARCHIES["forest"]()
        logits, target = random_batch(h, np.random.RandomState(21), dtype=torch.float16)
        z = logits.clone().requires_grad_()
        loss = HACELoss(h, eps=0.1)(z, target)
        loss.backward()
        with eager_only():
            y = logits.clone().requires_grad_()
            expected = HACELoss(h, eps=0.1)(y, target)
            expected.backward()
        assert z.grad.dtype == torch.float16
        torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(z.grad, y.grad)

    @pytest.mark.parametrize("eps", [0.0, 0.1])
    def test_underflow_declines_to_the_exact_eager_path(self, eps):
        """A true leaf (or, with eps, any subtree) below 2^24 tiny takes the anchored path."""
        h = HIERARCHIES["balanced"]()
        logits, target = random_batch(h, np.random.RandomState(22))
        logits = logits.float()
        logits[0, :] = 0.0
        logits[0, (target[0] + 1) % h.n_classes] = 100.0  # p_y = e^-100 in float32
        value, grad, fused = _weighted_value_and_grad(
            logits, target, hierarchy=h, eps=eps, reduction="none"
        )
        assert not fused
        ref, ref_grad = value_and_grad(hace_loss_reference, logits.double(), target,
                                       hierarchy=h, eps=eps)
        assert torch.isfinite(value).all() and torch.isfinite(grad).all()
        torch.testing.assert_close(value.double(), ref, rtol=1e-5, atol=1e-4)

    def test_off_path_underflow_keeps_the_kernel_without_smoothing(self):
        """Subtrees off the true path do not matter with eps=0: the kernel keeps the batch."""
        h = HIERARCHIES["balanced"]()
        logits, target = random_batch(h, np.random.RandomState(23), dtype=torch.float32)
        far = [c for c in range(h.n_classes) if c // 9 != int(target[0]) // 9]
        logits[0, far] = -200.0  # far-away subtrees (none on the path of y) underflow
        value, grad, fused = _weighted_value_and_grad(logits, target, hierarchy=h,
                                                      reduction="none")
        with eager_only():
            expected, expected_grad, _ = _weighted_value_and_grad(
                logits, target, hierarchy=h, reduction="none"
            )
        assert fused
        torch.testing.assert_close(value, expected, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(grad, expected_grad, rtol=1e-5, atol=1e-6)

    def test_nan_logits_give_what_the_eager_path_gives(self):
        h = HIERARCHIES["unbalanced"]()
        logits, target = random_batch(h, np.random.RandomState(24))
        logits[3, 2] = float("nan")
        value = hace_loss(logits, target, h, reduction="none")
        with eager_only():
            expected = hace_loss(logits, target, h, reduction="none")
        torch.testing.assert_close(value, expected, equal_nan=True)
        assert torch.isnan(value[3])

    @pytest.mark.parametrize("bad", [-1, 6, 1000])
    def test_out_of_range_target_is_a_value_error(self, bad):
        h = HIERARCHIES["unbalanced"]()  # 6 leaves
        logits, target = random_batch(h, np.random.RandomState(25), dtype=torch.float32)
        target[5] = bad
        with pytest.raises(ValueError, match="target must hold class indices in"):
            hace_loss(logits.requires_grad_(True), target, h)
        with pytest.raises(ValueError, match="target must hold class indices in"):
            HACELoss(h, eps=0.1)(logits, target)

    @staticmethod
    def _kernel_args(h, logits, target, *, eps=0.1, scale=0.5, threshold=1e-300):
        _, meta = _hace._tables(h, 0.6)
        f = meta["fused"]
        n = h.n_classes
        eps_o = eps / (n - 1)
        weights = np.array([1.0 - eps - eps_o, eps_o, scale, threshold])
        tables = (
            f["col_parent"], f["int_parent"], f["n_top"], f["class_col"], f["path_node"],
            f["class_w"], f["w_col"], f["kappa_int"], f["col_anc"],
        )
        return (logits.numpy(), target.numpy(), *tables, weights)

    def test_kernel_statuses(self):
        h = HIERARCHIES["forest"]()
        logits, target = random_batch(h, np.random.RandomState(26))
        p = torch.softmax(logits, 1)
        before = p.clone()
        loss = torch.empty(p.shape[0], dtype=p.dtype)
        z, t, *rest = self._kernel_args(h, logits, target)
        t[3] = h.n_classes
        status, total = _hace._hace_kernel(p.numpy(), np.ones(len(t)), z, t, *rest,
                                           loss.numpy())
        assert (status, total) == (1, 0.0) and torch.equal(p, before)
        t[3] = 0
        z, t, *rest = self._kernel_args(h, logits, target, threshold=2.0)
        status, total = _hace._hace_kernel(p.numpy(), np.ones(len(t)), z, t, *rest,
                                           loss.numpy())
        assert (status, total) == (2, 0.0)

    @pytest.mark.parametrize("eps", [0.0, 0.1])
    def test_compiled_kernel_equals_its_python_source(self, eps):
        """The kernel as plain Python (what runs without numba's compiler) gives the same."""
        h = HIERARCHIES["forest2"]()
        logits, target = random_batch(h, np.random.RandomState(27), n_samples=5)
        _, _, grad = assert_kernel_forms_agree(
            _hace._hace_kernel, logits,
            lambda version, p, inverse, loss: version(
                p.numpy(), inverse, *self._kernel_args(h, logits, target, eps=eps), loss.numpy()
            ),
        )
        # and the kernel's gradient is the eager one (scale 0.5, reduction='sum')
        with eager_only():
            _, expected_grad = value_and_grad(hace_loss, logits, target, hierarchy=h, d=0.6,
                                              eps=eps, reduction="sum")
        torch.testing.assert_close(grad, 0.5 * expected_grad, rtol=1e-12,
                                   atol=1e-15)
