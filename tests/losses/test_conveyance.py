"""Tests of the Conveyance loss: reference values, identities, gradients, API."""

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from skstruct.losses import ConveyanceLoss, conveyance_loss
from skstruct.losses._cache import clear_cache
from skstruct.losses._conveyance import _conveyance
from skstruct.structures import ClassGraph
from tests._reference import conveyance_loss_reference


def _random_problem(seed, n_samples, n_classes, *, density=0.3, scale=3.0, dtype=torch.float64):
    rng = np.random.RandomState(seed)
    logits = torch.tensor(rng.normal(scale=scale, size=(n_samples, n_classes)), dtype=dtype)
    target = torch.tensor(rng.randint(n_classes, size=n_samples), dtype=torch.int64)
    plausible = torch.tensor(rng.uniform(size=(n_classes, n_classes)) < density)
    return logits, target, plausible


def _autograd_conveyance(logits, target, plausible, alpha, beta):
    """The three-term log-sum-exp written with masked logsumexp and autograd."""
    n_samples, n_classes = logits.shape
    rows = torch.arange(n_samples)
    in_s = (plausible | torch.eye(n_classes, dtype=torch.bool)).T[target]
    not_t = torch.ones_like(in_s)
    not_t[rows, target] = False
    z_t = logits[rows, target]

    def masked_lse(mask):
        lse = torch.where(mask, logits, -math.inf).logsumexp(1)
        # an empty set: -inf, with a zero (not NaN) gradient
        return torch.where(mask.any(1), lse, -math.inf)

    lse_not_t = masked_lse(not_t)
    a = math.log(alpha) + lse_not_t - z_t
    b = math.log(beta) + masked_lse(~in_s) - masked_lse(in_s)
    return torch.stack([torch.zeros_like(a), a, b], 1).logsumexp(1)


@pytest.mark.parametrize(
    "n_samples, n_classes, density",
    [(9, 1, 0.5), (13, 2, 0.5), (17, 5, 0.3), (11, 37, 0.1), (5, 1000, 0.005), (4, 1000, 0.6)],
)
def test_matches_reference_values_and_gradients(n_samples, n_classes, density):
    """Check values and gradients against the float64 probability-space reference."""
    logits, target, plausible = _random_problem(0, n_samples, n_classes, density=density)
    alpha, beta = 0.3, 4.0
    logits.requires_grad_(True)
    loss = conveyance_loss(logits, target, plausible, alpha=alpha, beta=beta, reduction="none")
    (grad,) = torch.autograd.grad(loss.sum(), logits)

    ref_logits = logits.detach().clone().requires_grad_(True)
    ref = conveyance_loss_reference(ref_logits, target, plausible, alpha=alpha, beta=beta)
    (ref_grad,) = torch.autograd.grad(ref.sum(), ref_logits)

    torch.testing.assert_close(loss, ref, rtol=1e-5, atol=1e-12)
    torch.testing.assert_close(grad, ref_grad, rtol=1e-5, atol=1e-12)


@pytest.mark.parametrize("scale", [3.0, 25.0])
@pytest.mark.parametrize("n_classes", [2, 10, 300])
def test_float32_matches_reference(n_classes, scale):
    """Check float32 logits against the float64 reference at float32 precision.

    At scale 25 some targets lie more than 44 nats below their row max, where
    float32 switches from the softmax to the per-group shift.
    """
    logits, target, plausible = _random_problem(
        1, 32, n_classes, scale=scale, dtype=torch.float32
    )
    logits.requires_grad_(True)
    loss = conveyance_loss(logits, target, plausible, reduction="none")
    (grad,) = torch.autograd.grad(loss.sum(), logits)
    ref_logits = logits.detach().double().requires_grad_(True)
    ref = conveyance_loss_reference(ref_logits, target, plausible)
    (ref_grad,) = torch.autograd.grad(ref.sum(), ref_logits)
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss.double(), ref, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(grad.double(), ref_grad, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("scale", [1.0, 30.0, 400.0])
def test_custom_backward_matches_autograd(scale):
    """Check the hand-written backward against autograd of the masked-LSE formula.

    A scale of 400 in float64 sends some targets below p_t = sqrt(tiny), which
    exercises the per-group shift used for very unlikely targets.
    """
    logits, target, plausible = _random_problem(2, 24, 12, density=0.25, scale=scale)
    logits[0] = torch.linspace(-3 * scale, 3 * scale, 12, dtype=torch.float64)
    target[0] = 0
    for alpha, beta in [(0.1, 10.0), (1.0, 1.0), (2.5, 0.2)]:
        x = logits.clone().requires_grad_(True)
        loss = conveyance_loss(x, target, plausible, alpha=alpha, beta=beta, reduction="none")
        weights = torch.linspace(0.5, 1.5, len(loss), dtype=torch.float64)
        (grad,) = torch.autograd.grad((loss * weights).sum(), x)
        y = logits.clone().requires_grad_(True)
        expected = _autograd_conveyance(y, target, plausible, alpha, beta)
        (expected_grad,) = torch.autograd.grad((expected * weights).sum(), y)
        torch.testing.assert_close(loss, expected, rtol=1e-10, atol=1e-10)
        torch.testing.assert_close(grad, expected_grad, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("scale", [1.0, 400.0])
def test_gradcheck(scale):
    """Check the backward with torch.autograd.gradcheck in float64 (both paths)."""
    logits, target, plausible = _random_problem(3, 6, 5, density=0.4, scale=scale)
    logits[0] = torch.linspace(-2 * scale, 2 * scale, 5, dtype=torch.float64)
    target[0] = 0
    logits.requires_grad_(True)

    def fn(x):
        return conveyance_loss(x, target, plausible, alpha=0.7, beta=3.0, reduction="none")

    assert torch.autograd.gradcheck(fn, (logits,))


def test_empty_n_drops_beta_term():
    """Check that S = all classes gives log(1 + alpha odds_t), beta-free."""
    logits, target, _ = _random_problem(4, 20, 6)
    everything = torch.ones(6, 6, dtype=torch.bool)
    p_t = torch.softmax(logits, 1)[torch.arange(20), target]
    expected = torch.log(1 + 0.4 * (1 - p_t) / p_t)
    for beta in [1e-3, 10.0, 1e3]:
        loss = conveyance_loss(logits, target, everything, alpha=0.4, beta=beta, reduction="none")
        torch.testing.assert_close(loss, expected, rtol=1e-12, atol=1e-12)


def test_alpha_one_with_all_plausible_is_cross_entropy():
    """Check that alpha = 1 and S = all classes give cross-entropy."""
    logits, target, _ = _random_problem(5, 30, 7)
    everything = torch.ones(7, 7, dtype=torch.bool)
    logits.requires_grad_(True)
    loss = conveyance_loss(logits, target, everything, alpha=1.0, beta=10.0)
    ce = F.cross_entropy(logits, target)
    torch.testing.assert_close(loss, ce, rtol=1e-12, atol=1e-12)
    (grad,) = torch.autograd.grad(loss, logits)
    (ce_grad,) = torch.autograd.grad(ce, logits)
    assert torch.isfinite(grad).all()
    torch.testing.assert_close(grad, ce_grad, rtol=1e-10, atol=1e-12)


def test_singleton_set_is_scaled_target_odds():
    """Check that S = {t} gives log(1 + (alpha + beta) odds_t)."""
    logits, target, _ = _random_problem(6, 25, 5)
    nothing = torch.zeros(5, 5, dtype=torch.bool)
    p_t = torch.softmax(logits, 1)[torch.arange(25), target]
    loss = conveyance_loss(logits, target, nothing, alpha=0.3, beta=2.0, reduction="none")
    torch.testing.assert_close(loss, torch.log(1 + 2.3 * (1 - p_t) / p_t), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("alpha", [0.1, 0.5, 0.9])
def test_singleton_set_with_unit_weights_is_cross_entropy(alpha):
    """Check that alpha + beta = 1 with S = {t} gives cross-entropy and its gradient."""
    logits, target, _ = _random_problem(7, 25, 5)
    nothing = torch.zeros(5, 5, dtype=torch.bool)
    logits.requires_grad_(True)
    loss = conveyance_loss(logits, target, nothing, alpha=alpha, beta=1 - alpha)
    ce = F.cross_entropy(logits, target)
    torch.testing.assert_close(loss, ce, rtol=1e-12, atol=1e-12)
    (grad,) = torch.autograd.grad(loss, logits)
    (ce_grad,) = torch.autograd.grad(ce, logits)
    torch.testing.assert_close(grad, ce_grad, rtol=1e-10, atol=1e-12)


def test_single_class_is_zero():
    """Check that one class gives a zero loss and a zero gradient, no NaN."""
    logits = torch.tensor([[3.0], [-1e4], [0.0]], requires_grad=True)
    target = torch.zeros(3, dtype=torch.int64)
    loss = conveyance_loss(logits, target, torch.ones(1, 1, dtype=torch.bool), reduction="none")
    loss.sum().backward()
    assert torch.equal(loss, torch.zeros(3))
    assert torch.equal(logits.grad, torch.zeros(3, 1))


def test_diagonal_is_forced():
    """Check that Q with and without its diagonal give the same loss."""
    logits, target, plausible = _random_problem(8, 40, 6, density=0.3)
    off = plausible & ~torch.eye(6, dtype=torch.bool)
    on = plausible | torch.eye(6, dtype=torch.bool)
    torch.testing.assert_close(
        conveyance_loss(logits, target, off, reduction="none"),
        conveyance_loss(logits, target, on, reduction="none"),
    )


def test_orientation_of_plausible():
    """Check that plausible[s, t] means class s is plausible under label t."""
    logits = torch.tensor([[0.0, 5.0, 0.0]])
    target = torch.tensor([0])
    q_column = torch.zeros(3, 3, dtype=torch.bool)
    q_column[1, 0] = True  # class 1 may appear under label 0
    q_row = q_column.T.contiguous()
    forgiving = conveyance_loss(logits, target, q_column)
    strict = conveyance_loss(logits, target, q_row)
    assert forgiving < strict


@pytest.mark.parametrize("seed", range(3))
def test_gradient_signs(seed):
    """Check the sign structure: negative in z_t, positive in every z_n with n in N."""
    logits, target, plausible = _random_problem(seed, 30, 9, density=0.3, dtype=torch.float32)
    logits.requires_grad_(True)
    conveyance_loss(logits, target, plausible, reduction="sum").backward()
    in_s = (plausible | torch.eye(9, dtype=torch.bool)).T[target]
    rows = torch.arange(30)
    assert (logits.grad[rows, target] < 0).all()
    assert (logits.grad[~in_s] > 0).all()
    torch.testing.assert_close(logits.grad.sum(1), torch.zeros(30), atol=1e-5, rtol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_extreme_logits_are_finite(dtype):
    """Check value and gradient are finite at logits of +-1e4 (float32, bf16, fp16 input)."""
    rng = np.random.RandomState(9)
    big = 1e4
    logits = torch.tensor(rng.choice([-big, big], size=(64, 12)), dtype=dtype)
    logits[:8] = torch.tensor(rng.uniform(-big, big, size=(8, 12)), dtype=dtype)
    target = torch.tensor(rng.randint(12, size=64))
    for plausible in [
        torch.tensor(rng.uniform(size=(12, 12)) < 0.3),
        torch.ones(12, 12, dtype=torch.bool),
        torch.zeros(12, 12, dtype=torch.bool),
    ]:
        x = logits.clone().requires_grad_(True)
        loss = conveyance_loss(x, target, plausible, reduction="none")
        loss.sum().backward()
        assert loss.dtype == torch.float32
        assert x.grad.dtype == dtype
        assert torch.isfinite(loss).all()
        assert torch.isfinite(x.grad.float()).all()
        y = logits.double().requires_grad_(True)
        expected = _autograd_conveyance(y, target, plausible, 0.1, 10.0)
        torch.testing.assert_close(loss.double(), expected, rtol=1e-5, atol=1e-2)


def test_bfloat16_close_to_float32():
    """Check that bfloat16 logits are computed in float32 from the rounded values."""
    logits, target, plausible = _random_problem(10, 16, 8, dtype=torch.float32)
    low = logits.bfloat16()
    torch.testing.assert_close(
        conveyance_loss(low, target, plausible),
        conveyance_loss(low.float(), target, plausible),
    )


def test_float64_stays_float64():
    """Check that float64 logits give a float64 loss."""
    logits, target, plausible = _random_problem(11, 4, 3)
    assert conveyance_loss(logits, target, plausible).dtype == torch.float64


def test_reductions():
    """Check 'none', 'mean' and 'sum' against each other."""
    logits, target, plausible = _random_problem(12, 10, 4)
    per_sample = conveyance_loss(logits, target, plausible, reduction="none")
    assert per_sample.shape == (10,)
    torch.testing.assert_close(conveyance_loss(logits, target, plausible), per_sample.mean())
    torch.testing.assert_close(
        conveyance_loss(logits, target, plausible, reduction="sum"), per_sample.sum()
    )


def test_empty_batch():
    """Check an empty batch: empty 'none', zero 'sum'."""
    logits = torch.zeros(0, 3)
    target = torch.zeros(0, dtype=torch.int64)
    plausible = torch.eye(3, dtype=torch.bool)
    assert conveyance_loss(logits, target, plausible, reduction="none").shape == (0,)
    assert conveyance_loss(logits, target, plausible, reduction="sum") == 0


def test_invalid_reduction():
    """Check that an unknown reduction raises a ValueError naming it."""
    logits, target, plausible = _random_problem(13, 3, 3)
    with pytest.raises(ValueError, match="reduction"):
        conveyance_loss(logits, target, plausible, reduction="avg")
    with pytest.raises(ValueError, match="reduction"):
        ConveyanceLoss(plausible, reduction=None)


@pytest.mark.parametrize("name", ["alpha", "beta"])
@pytest.mark.parametrize("value", [-1.0, math.nan, math.inf])
def test_invalid_weights(name, value):
    """Check that alpha and beta must be finite and >= 0 (0 is tested in test_limits.py)."""
    logits, target, plausible = _random_problem(14, 3, 3)
    with pytest.raises(ValueError, match=name):
        conveyance_loss(logits, target, plausible, **{name: value})
    with pytest.raises(ValueError, match=name):
        ConveyanceLoss(plausible, **{name: value})


def test_non_numeric_weight():
    """Check that a non-numeric alpha raises a TypeError naming it."""
    logits, target, plausible = _random_problem(15, 3, 3)
    with pytest.raises(TypeError, match="alpha"):
        conveyance_loss(logits, target, plausible, alpha="0.1")


def test_wrong_shapes():
    """Check that mismatched shapes raise a ValueError naming the argument."""
    logits, target, plausible = _random_problem(16, 5, 4)
    with pytest.raises(ValueError, match="plausible"):
        conveyance_loss(logits, target, torch.ones(4, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match="plausible"):
        conveyance_loss(logits, target, torch.ones(3, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="target"):
        conveyance_loss(logits, target[:3], plausible)
    with pytest.raises(ValueError, match="logits"):
        conveyance_loss(logits[0], target, plausible)
    with pytest.raises(TypeError, match="plausible"):
        conveyance_loss(logits, target, plausible.numpy())
    with pytest.raises(ValueError, match="plausible"):
        ConveyanceLoss(np.ones((4, 3)))


def test_non_boolean_plausible():
    """Check that a 0/1 float matrix is read as plausible != 0."""
    logits, target, plausible = _random_problem(17, 12, 5)
    torch.testing.assert_close(
        conveyance_loss(logits, target, plausible.double()),
        conveyance_loss(logits, target, plausible),
    )


def test_row_major_and_column_major_agree():
    """Check that the memory layout of Q does not change the result."""
    logits, target, plausible = _random_problem(18, 12, 7)
    column_major = plausible.T.contiguous().T
    assert not column_major.is_contiguous()
    torch.testing.assert_close(
        conveyance_loss(logits, target, plausible),
        conveyance_loss(logits, target, column_major),
    )


def test_function_and_module_agree():
    """Check that ConveyanceLoss gives the same values as conveyance_loss."""
    logits, target, plausible = _random_problem(19, 15, 6)
    for reduction in ["none", "mean", "sum"]:
        criterion = ConveyanceLoss(plausible.numpy(), alpha=0.2, beta=5.0, reduction=reduction)
        torch.testing.assert_close(
            criterion(logits, target),
            conveyance_loss(logits, target, plausible, alpha=0.2, beta=5.0, reduction=reduction),
        )


def test_module_buffer():
    """Check the buffer: boolean, diagonal on, in state_dict, moved by .to(), copied."""
    _, _, plausible = _random_problem(20, 1, 5)
    criterion = ConveyanceLoss(plausible)
    assert criterion.plausible.dtype == torch.bool
    assert criterion.plausible.diagonal().all()
    assert torch.equal(criterion.plausible, plausible | torch.eye(5, dtype=torch.bool))
    assert "plausible" in criterion.state_dict()
    assert criterion.plausible.T.is_contiguous()  # column-major: fast row gather
    moved = criterion.to(torch.device("cpu"))
    assert moved.plausible.T.is_contiguous()
    assert copy.deepcopy(criterion).plausible.T.is_contiguous()
    other = ConveyanceLoss(torch.zeros(5, 5))
    other.load_state_dict(criterion.state_dict())
    assert torch.equal(other.plausible, criterion.plausible)
    assert "n_classes=5" in repr(criterion)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_module_on_cuda():
    """Check that the buffer follows the module to the GPU and the loss matches CPU."""
    logits, target, plausible = _random_problem(21, 20, 40, dtype=torch.float32)
    for q in [plausible, _sparse_plausible(21, 40, 3)]:
        criterion = ConveyanceLoss(q)
        expected = criterion(logits, target)
        criterion = criterion.to("cuda")
        assert criterion.plausible.is_cuda
        torch.testing.assert_close(criterion(logits.cuda(), target.cuda()).cpu(), expected)


def _sparse_plausible(seed, n_classes, per_label):
    """Q with at most ``per_label`` plausible classes per label besides itself."""
    rng = np.random.RandomState(seed)
    plausible = torch.zeros(n_classes, n_classes, dtype=torch.bool)
    for t in range(n_classes):
        count = rng.randint(per_label + 1)  # some labels keep S = {t}
        plausible[rng.choice(n_classes, size=count, replace=False), t] = True
    return plausible


@pytest.mark.parametrize("scale", [3.0, 400.0])
def test_sparse_index_path_matches_dense(scale):
    """Check that the module's plausible-set index gives the dense path's values and gradients.

    At scale 400 (float64) some targets take the per-group shift.
    """
    n_classes = 48
    plausible = _sparse_plausible(22, n_classes, 4)
    criterion = ConveyanceLoss(plausible, alpha=0.5, beta=3.0, reduction="none")
    assert criterion._others is not None
    logits, target, _ = _random_problem(23, 40, n_classes, scale=scale)
    logits[0] = torch.linspace(-scale, scale, n_classes, dtype=torch.float64)
    x = logits.clone().requires_grad_(True)
    y = logits.clone().requires_grad_(True)
    got = criterion(x, target)
    # the dense path, which conveyance_loss would not take for this sparse Q
    expected = _conveyance(
        y, target, criterion.plausible, None, math.log(0.5), math.log(3.0), "none"
    )
    weights = torch.linspace(0.5, 1.5, 40, dtype=torch.float64)
    (grad,) = torch.autograd.grad((got * weights).sum(), x)
    (expected_grad,) = torch.autograd.grad((expected * weights).sum(), y)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(grad, expected_grad, rtol=1e-12, atol=1e-14)
    ref = conveyance_loss_reference(logits[:8], target[:8], plausible, alpha=0.5, beta=3.0)
    if scale < 10:
        torch.testing.assert_close(got[:8].detach(), ref, rtol=1e-5, atol=1e-12)


def test_sparse_index_path_extreme_and_gradcheck():
    """Check the index path: finite at +-1e4 in float32, gradcheck in float64."""
    plausible = _sparse_plausible(24, 30, 3)
    criterion = ConveyanceLoss(plausible, reduction="sum")
    assert criterion._others is not None
    rng = np.random.RandomState(24)
    logits = torch.tensor(rng.choice([-1e4, 1e4], size=(32, 30)), dtype=torch.float32)
    logits.requires_grad_(True)
    target = torch.tensor(rng.randint(30, size=32))
    loss = criterion(logits, target)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()
    small, small_target, _ = _random_problem(25, 5, 30, scale=2.0)
    small.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: criterion(x, small_target), (small,))


def test_index_follows_the_buffer():
    """Check the derived index: None for a dense Q, not saved, rebuilt on load."""
    dense = ConveyanceLoss(torch.rand(20, 20, generator=torch.Generator().manual_seed(0)) < 0.5)
    assert dense._others is None
    sparse_q = _sparse_plausible(26, 20, 2)
    sparse = ConveyanceLoss(sparse_q)
    assert sparse._others is not None
    assert "_others" not in sparse.state_dict()
    logits, target, _ = _random_problem(27, 16, 20, dtype=torch.float32)
    sparse.load_state_dict(dense.state_dict())
    assert sparse._others is None
    torch.testing.assert_close(sparse(logits, target), dense(logits, target))
    dense.load_state_dict(ConveyanceLoss(sparse_q).state_dict())
    assert dense._others is not None
    torch.testing.assert_close(
        dense(logits, target), conveyance_loss(logits, target, sparse_q)
    )
    assert copy.deepcopy(dense)._others is not None


def _values_and_grad(fn, logits):
    x = logits.detach().clone().requires_grad_(True)
    value = fn(x)
    weights = torch.linspace(0.5, 1.5, value.numel(), dtype=value.dtype).reshape(value.shape)
    (grad,) = torch.autograd.grad((value * weights).sum(), x)
    return value.detach(), grad


@pytest.mark.parametrize("sparse", [False, True])
def test_function_and_module_give_identical_values_and_gradients(sparse):
    """Check that both forms run the same code: bit-identical values and gradients."""
    n_classes = 40
    plausible = _sparse_plausible(30, n_classes, 3) if sparse else _random_problem(30, 1, n_classes)[2]
    logits, target, _ = _random_problem(31, 25, n_classes, dtype=torch.float32)
    criterion = ConveyanceLoss(plausible, alpha=0.3, beta=4.0, reduction="none")
    assert (criterion._others is not None) == sparse
    got = _values_and_grad(lambda x: criterion(x, target), logits)
    for q in [plausible, plausible.T.contiguous().T, plausible.int()]:
        expected = _values_and_grad(
            lambda x: conveyance_loss(x, target, q, alpha=0.3, beta=4.0, reduction="none"),
            logits,
        )
        assert torch.equal(got[0], expected[0]) and torch.equal(got[1], expected[1])


def test_functional_prepares_q_once_and_sees_edits(monkeypatch):
    """Check the cache: one preparation per tensor, redone after an in-place edit."""
    import skstruct.losses._conveyance as module

    clear_cache()
    calls = []
    prepare = module._prepare
    monkeypatch.setattr(module, "_prepare", lambda q: calls.append(1) or prepare(q))
    logits, target, plausible = _random_problem(32, 10, 8)
    first = conveyance_loss(logits, target, plausible, reduction="none")
    for _ in range(3):
        torch.testing.assert_close(conveyance_loss(logits, target, plausible, reduction="none"), first)
    assert len(calls) == 1
    plausible.fill_(False)  # in place: bumps the version counter
    edited = conveyance_loss(logits, target, plausible, reduction="none")
    assert len(calls) == 2
    fresh = conveyance_loss(logits, target, torch.zeros(8, 8, dtype=torch.bool), reduction="none")
    torch.testing.assert_close(edited, fresh)
    assert not torch.allclose(edited, first)


def test_functional_accepts_a_structure():
    """Check that a ClassGraph stands for its plausibility matrix, prepared once."""
    rng = np.random.RandomState(33)
    weights = (rng.uniform(size=(6, 6)) < 0.3).astype(float)
    graph = ClassGraph(weights, list("abcdef"))
    logits, target, _ = _random_problem(34, 9, 6)
    Q = torch.tensor(graph.plausibility_matrix())
    torch.testing.assert_close(
        conveyance_loss(logits, target, graph), conveyance_loss(logits, target, Q)
    )
    assert conveyance_loss(logits, target, graph) is not None
    assert graph._cached(("conveyance_prepared", "cpu"), None) is not None
    with pytest.raises(ValueError, match="structure with 6 classes"):
        conveyance_loss(logits[:, :5], target % 5, graph)
    with pytest.raises(TypeError, match="class structure"):
        conveyance_loss(logits, target, [[True]])


@pytest.mark.parametrize("scale", [1.0, 30.0, 400.0])
@pytest.mark.parametrize("path", ["table", "sparse", "dense"])
def test_every_path_matches_the_masked_lse_reference(path, scale, monkeypatch):
    """Check each probability-space path (and the log-space fallback at scale 400).

    float64 values and gradients against autograd of the masked log-sum-exp
    formula, with large logits (scale 30: p_t ~ e^-90, where subtracting two
    large gradient coefficients would cancel) and weights per sample.
    """
    import skstruct.losses._conveyance as module

    n_classes = 40
    monkeypatch.setattr(module, "_TABLE_MAX_CLASSES", 64 if path == "table" else 0)
    plausible = _sparse_plausible(31, n_classes, 3)
    criterion = ConveyanceLoss(plausible, alpha=0.3, beta=5.0, reduction="none")
    if path == "dense":
        criterion._others = None
    assert (criterion._others is not None) == (path != "dense")
    logits, target, _ = _random_problem(32, 30, n_classes, scale=scale)
    logits[0] = torch.linspace(-2 * scale, 2 * scale, n_classes, dtype=torch.float64)
    x = logits.clone().requires_grad_(True)
    got = criterion(x, target)
    weights = torch.linspace(0.5, 1.5, 30, dtype=torch.float64)
    (grad,) = torch.autograd.grad((got * weights).sum(), x)
    y = logits.clone().requires_grad_(True)
    expected = _autograd_conveyance(y, target, criterion.plausible, 0.3, 5.0)
    (expected_grad,) = torch.autograd.grad((expected * weights).sum(), y)
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(grad, expected_grad, rtol=1e-9, atol=1e-12)


def test_probability_path_is_taken_for_ordinary_logits(monkeypatch):
    """Ordinary logits never reach the log-space Function (it is the fallback)."""
    import skstruct.losses._conveyance as module

    def fail(*args):
        raise AssertionError("log-space path taken")

    monkeypatch.setattr(module._ConveyanceFunction, "apply", fail)
    logits, target, plausible = _random_problem(33, 16, 20, scale=3.0, dtype=torch.float32)
    conveyance_loss(logits.requires_grad_(True), target, plausible).backward()
    assert torch.isfinite(logits.grad).all()


def test_module_weights_reassigned_after_construction():
    """The module validates alpha/beta once, and again when they are reassigned."""
    logits, target, plausible = _random_problem(34, 8, 6)
    criterion = ConveyanceLoss(plausible, alpha=0.1, beta=10.0)
    before = criterion(logits, target)
    criterion.alpha = 0.5
    torch.testing.assert_close(
        criterion(logits, target), conveyance_loss(logits, target, plausible, alpha=0.5)
    )
    assert not torch.equal(before, criterion(logits, target))
    criterion.alpha = -1.0
    with pytest.raises(ValueError, match="alpha"):
        criterion(logits, target)
