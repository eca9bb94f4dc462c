"""Tests of the squared-EMD losses: reference values, invariances, API."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from skstruct.losses import EMD2GroundLoss, EMD2Loss, emd2_ground_loss, emd2_loss
from tests._reference import emd2_ground_loss_reference, emd2_loss_reference

from ._kernel_forms import assert_kernel_forms_agree


def _random_problem(seed, n_samples, n_classes, *, scale=2.0, dtype=torch.float64):
    rng = np.random.RandomState(seed)
    logits = torch.tensor(rng.normal(scale=scale, size=(n_samples, n_classes)), dtype=dtype)
    target = torch.tensor(rng.randint(n_classes, size=n_samples), dtype=torch.int64)
    rank = torch.tensor(rng.permutation(n_classes), dtype=torch.int64)
    return logits, target, rank


def _values_and_grads(fn, logits):
    x = logits.detach().clone().requires_grad_(True)
    values = fn(x)
    (grad,) = torch.autograd.grad(values.sum(), x)
    return values, grad


@pytest.mark.parametrize("n_classes", [1, 2, 5, 11, 40])  # 40: the fused softmax
@pytest.mark.parametrize("use_rank", [False, True])
@pytest.mark.parametrize("ce_weight", [0.0, 0.7])
def test_emd2_matches_reference(n_classes, use_rank, ce_weight):
    """Check values and gradients against CDFs accumulated along the rank order."""
    logits, target, rank = _random_problem(0, 12, n_classes)
    rank = rank if use_rank else None
    got = _values_and_grads(
        lambda x: emd2_loss(x, target, rank=rank, ce_weight=ce_weight, reduction="none"), logits
    )
    expected = _values_and_grads(
        lambda x: emd2_loss_reference(x, target, rank=rank, ce_weight=ce_weight), logits
    )
    torch.testing.assert_close(got[0], expected[0], rtol=1e-5, atol=1e-12)
    torch.testing.assert_close(got[1], expected[1], rtol=1e-5, atol=1e-12)


def test_emd2_float32_matches_reference():
    """Check float32 logits against the float64 reference."""
    logits, target, rank = _random_problem(1, 20, 9, dtype=torch.float32)
    loss = emd2_loss(logits, target, rank=rank, reduction="none")
    assert loss.dtype == torch.float32
    expected = emd2_loss_reference(logits.double(), target, rank=rank)
    torch.testing.assert_close(loss.double(), expected, rtol=1e-5, atol=1e-7)


def test_emd2_zero_at_one_hot():
    """Check that a (numerically) one-hot prediction on the target gives exactly 0."""
    target = torch.tensor([0, 3, 5, 2])
    logits = torch.full((4, 6), -1e4)
    logits[torch.arange(4), target] = 1e4
    assert torch.equal(emd2_loss(logits, target, reduction="none"), torch.zeros(4))
    rank = torch.tensor([5, 1, 0, 2, 4, 3])
    assert torch.equal(emd2_loss(logits, target, rank=rank, reduction="none"), torch.zeros(4))


def test_emd2_small_loss_is_accurate():
    """Check that a confident correct prediction keeps its relative accuracy."""
    logits = torch.tensor([[0.0, 20.0, 0.0, -3.0]])
    target = torch.tensor([1])
    loss = emd2_loss(logits, target)
    expected = emd2_loss_reference(logits.double(), target)
    assert 0 < loss < 1e-16
    torch.testing.assert_close(loss.double(), expected[0], rtol=1e-5, atol=0)


def test_emd2_symmetric_under_reversal():
    """Check that reversing the scale (columns and targets) leaves the loss unchanged."""
    logits, target, _ = _random_problem(2, 30, 7)
    flipped = emd2_loss(logits.flip(1), 6 - target, reduction="none")
    torch.testing.assert_close(flipped, emd2_loss(logits, target, reduction="none"))


def test_emd2_grows_with_rank_distance():
    """Check that a point mass costs more the farther it lies from the target rank."""
    n_classes = 8
    logits = torch.full((n_classes, n_classes), -30.0)
    logits[torch.arange(n_classes), torch.arange(n_classes)] = 30.0  # row j: mass on j
    target = torch.full((n_classes,), 2)
    loss = emd2_loss(logits, target, reduction="none")
    distance = (torch.arange(n_classes) - 2).abs()
    torch.testing.assert_close(loss, distance.double().float(), rtol=1e-5, atol=1e-6)
    for d in range(1, 6):
        assert loss[distance == d].min() > loss[distance == d - 1].max()


def test_emd2_rank_permutation_equivalence():
    """Check that permuting the columns together with rank gives the ordered loss."""
    logits, target, columns = _random_problem(3, 25, 6)
    # column c of the permuted logits holds scale position columns[c] ...
    permuted = logits[:, columns]
    # ... so the target at position y sits in column argsort(columns)[y]
    got = emd2_loss(permuted, torch.argsort(columns)[target], rank=columns, reduction="none")
    torch.testing.assert_close(got, emd2_loss(logits, target, reduction="none"))


def test_emd2_ce_weight_adds_cross_entropy():
    """Check that ce_weight adds exactly ce_weight * cross-entropy."""
    logits, target, rank = _random_problem(4, 16, 5)
    base = emd2_loss(logits, target, rank=rank)
    mixed = emd2_loss(logits, target, rank=rank, ce_weight=0.4)
    torch.testing.assert_close(mixed - base, 0.4 * F.cross_entropy(logits, target))


def test_emd2_gradcheck():
    """Check the gradient with gradcheck in float64."""
    logits, target, rank = _random_problem(5, 5, 4)
    logits.requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda x: emd2_loss(x, target, rank=rank, ce_weight=0.3, reduction="none"), (logits,)
    )


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_emd2_extreme_logits_are_finite(dtype):
    """Check finite values and gradients at logits of +-1e4."""
    rng = np.random.RandomState(6)
    logits = torch.tensor(rng.choice([-1e4, 1e4], size=(32, 7)), dtype=dtype, requires_grad=True)
    target = torch.tensor(rng.randint(7, size=32))
    loss = emd2_loss(logits, target, ce_weight=0.5)
    loss.backward()
    assert loss.dtype == torch.float32
    assert torch.isfinite(loss) and torch.isfinite(logits.grad.float()).all()


def test_emd2_reductions():
    """Check 'none', 'mean' and 'sum' against each other."""
    logits, target, rank = _random_problem(7, 9, 4)
    per_sample = emd2_loss(logits, target, rank=rank, reduction="none")
    torch.testing.assert_close(emd2_loss(logits, target, rank=rank), per_sample.mean())
    torch.testing.assert_close(
        emd2_loss(logits, target, rank=rank, reduction="sum"), per_sample.sum()
    )
    with pytest.raises(ValueError, match="reduction"):
        emd2_loss(logits, target, reduction="max")


def test_emd2_invalid_arguments():
    """Check errors naming ce_weight, rank, target and logits."""
    logits, target, rank = _random_problem(8, 6, 4)
    with pytest.raises(ValueError, match="ce_weight"):
        emd2_loss(logits, target, ce_weight=-0.1)
    with pytest.raises(ValueError, match="rank"):
        emd2_loss(logits, target, rank=torch.arange(5))
    with pytest.raises(TypeError, match="rank"):
        emd2_loss(logits, target, rank=torch.arange(4.0))
    with pytest.raises(TypeError, match="rank"):
        emd2_loss(logits, target, rank=[0, 1, 2, 3])
    with pytest.raises(ValueError, match="target"):
        emd2_loss(logits, target[:2])
    with pytest.raises(ValueError, match="logits"):
        emd2_loss(logits[None], target)


def test_emd2_module():
    """Check EMD2Loss: agrees with the function, rank buffer, permutation check."""
    logits, target, rank = _random_problem(9, 10, 5)
    criterion = EMD2Loss(rank.numpy(), ce_weight=0.2, reduction="sum")
    torch.testing.assert_close(
        criterion(logits, target),
        emd2_loss(logits, target, rank=rank, ce_weight=0.2, reduction="sum"),
    )
    assert torch.equal(criterion.rank, rank)
    assert "rank" in criterion.state_dict()
    assert criterion.to(torch.device("cpu")).rank.dtype == torch.int64
    unranked = EMD2Loss()
    assert unranked.rank is None
    torch.testing.assert_close(unranked(logits, target), emd2_loss(logits, target))
    with pytest.raises(ValueError, match="permutation"):
        EMD2Loss([0, 1, 1])
    with pytest.raises(ValueError, match="permutation"):
        EMD2Loss([1, 2, 3])
    with pytest.raises(ValueError, match="rank"):
        EMD2Loss([[0, 1]])
    with pytest.raises(ValueError, match="ce_weight"):
        EMD2Loss(ce_weight=-1)


# --- ground-distance variant ---


def _ordinal_distance(n_classes):
    idx = torch.arange(n_classes, dtype=torch.float64)
    return (idx[:, None] - idx[None, :]).abs()


@pytest.mark.parametrize(
    "omega, mu, ce_weight", [(2.0, 0.0, 1.0), (1.0, 0.5, 0.0), (1.5, 0.1, 2.0)]
)
@pytest.mark.parametrize("n_classes", [6, 40])  # 40: the fused softmax
def test_emd2_ground_matches_reference(omega, mu, ce_weight, n_classes):
    """Check values and gradients against the per-sample reference."""
    logits, target, _ = _random_problem(10, 14, n_classes)
    rng = np.random.RandomState(10)
    distance = torch.tensor(rng.uniform(0, 3, size=(n_classes, n_classes)))
    distance.fill_diagonal_(0.0)
    kwargs = dict(omega=omega, mu=mu, ce_weight=ce_weight)
    got = _values_and_grads(
        lambda x: emd2_ground_loss(x, target, distance, reduction="none", **kwargs), logits
    )
    expected = _values_and_grads(
        lambda x: emd2_ground_loss_reference(x, target, distance, **kwargs), logits
    )
    torch.testing.assert_close(got[0], expected[0], rtol=1e-5, atol=1e-12)
    torch.testing.assert_close(got[1], expected[1], rtol=1e-5, atol=1e-12)


def test_emd2_ground_zero_at_one_hot_without_ce():
    """Check that a one-hot prediction costs 0 when ce_weight = mu = 0."""
    target = torch.tensor([0, 4, 2])
    logits = torch.full((3, 5), -1e4)
    logits[torch.arange(3), target] = 1e4
    loss = emd2_ground_loss(logits, target, _ordinal_distance(5), ce_weight=0.0)
    assert loss == 0


def test_emd2_ground_grows_with_distance():
    """Check that a point mass farther from the target costs more."""
    logits = torch.full((5, 5), -30.0)
    logits[torch.arange(5), torch.arange(5)] = 30.0
    target = torch.zeros(5, dtype=torch.int64)
    loss = emd2_ground_loss(
        logits, target, _ordinal_distance(5), ce_weight=0.0, reduction="none"
    )
    assert (loss.diff() > 0).all()


def test_emd2_ground_invalid_arguments():
    """Check errors naming omega, mu, ce_weight and distance."""
    logits, target, _ = _random_problem(11, 4, 3)
    distance = _ordinal_distance(3)
    with pytest.raises(ValueError, match="omega"):
        emd2_ground_loss(logits, target, distance, omega=0.0)
    with pytest.raises(ValueError, match="mu"):
        emd2_ground_loss(logits, target, distance, mu=-1.0)
    with pytest.raises(ValueError, match="ce_weight"):
        emd2_ground_loss(logits, target, distance, ce_weight=-1.0)
    with pytest.raises(ValueError, match="distance"):
        emd2_ground_loss(logits, target, _ordinal_distance(4))
    with pytest.raises(TypeError, match="distance"):
        emd2_ground_loss(logits, target, distance.numpy())
    with pytest.raises(ValueError, match="distance"):
        EMD2GroundLoss(np.ones((2, 3)))
    with pytest.raises(ValueError, match="distance"):
        EMD2GroundLoss(-np.ones((3, 3)))


def test_emd2_ground_module():
    """Check EMD2GroundLoss: agrees with the function; the distance is a buffer."""
    logits, target, _ = _random_problem(12, 8, 4, dtype=torch.float32)
    distance = _ordinal_distance(4)
    criterion = EMD2GroundLoss(distance.numpy(), omega=1.0, mu=0.2, ce_weight=0.5)
    torch.testing.assert_close(
        criterion(logits, target),
        emd2_ground_loss(logits, target, distance.float(), omega=1.0, mu=0.2, ce_weight=0.5),
    )
    assert "distance" in criterion.state_dict()
    assert criterion.distance.T.is_contiguous()
    assert "omega=1.0" in repr(criterion)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_emd_modules_on_cuda():
    """Check that the buffers follow the modules to the GPU."""
    logits, target, rank = _random_problem(13, 8, 4, dtype=torch.float32)
    criterion = EMD2Loss(rank).to("cuda")
    torch.testing.assert_close(
        criterion(logits.cuda(), target.cuda()).cpu(), emd2_loss(logits, target, rank=rank)
    )
    ground = EMD2GroundLoss(_ordinal_distance(4)).to("cuda")
    assert ground.distance.is_cuda
    ground(logits.cuda(), target.cuda())


def _value_and_grad(fn, logits):
    x = logits.detach().clone().requires_grad_(True)
    value = fn(x)
    weights = torch.linspace(0.5, 1.5, value.numel(), dtype=value.dtype)
    (grad,) = torch.autograd.grad((value * weights).sum(), x)
    return value.detach(), grad


def test_functional_and_module_identical_and_cached(monkeypatch):
    """Check bit-identical values and gradients of both forms, and one preparation per tensor."""
    import skstruct.losses._emd as module
    from skstruct.losses._cache import clear_cache

    clear_cache()
    logits, target, rank = _random_problem(40, 14, 6, dtype=torch.float32)
    distance = torch.tensor(np.random.RandomState(40).uniform(size=(6, 6)), dtype=torch.float32)
    distance.fill_diagonal_(0.0)
    emd = EMD2Loss(rank=rank, ce_weight=0.3, reduction="none")
    ground = EMD2GroundLoss(distance, omega=1.5, mu=0.1, ce_weight=0.5, reduction="none")
    pairs = [
        (lambda x: emd(x, target),
         lambda x: emd2_loss(x, target, rank=rank, ce_weight=0.3, reduction="none")),
        (lambda x: ground(x, target),
         lambda x: emd2_ground_loss(x, target, distance, omega=1.5, mu=0.1, ce_weight=0.5,
                                    reduction="none")),
    ]
    for module_form, functional_form in pairs:
        got, expected = _value_and_grad(module_form, logits), _value_and_grad(functional_form, logits)
        assert torch.equal(got[0], expected[0]) and torch.equal(got[1], expected[1])
    calls = []
    prepare = module.cached_prepare
    monkeypatch.setattr(
        module, "cached_prepare", lambda t, o, f: prepare(t, o, lambda: calls.append(o) or f())
    )
    before = emd2_ground_loss(logits, target, distance, reduction="none")
    for _ in range(3):
        emd2_ground_loss(logits, target, distance, reduction="none")
    assert len(calls) == 1
    distance.mul_(2.0)  # an in-place edit is seen
    after = emd2_ground_loss(logits, target, distance, reduction="none")
    assert len(calls) == 2 and not torch.allclose(before, after)


@pytest.mark.parametrize("n_classes", [5, 20])
def test_emd2_ground_gradcheck(n_classes):
    """Check the in-place backward of the ground variant with gradcheck in float64."""
    logits, target, _ = _random_problem(12, 6, n_classes)
    distance = torch.tensor(np.random.RandomState(12).uniform(0, 2, size=(n_classes, n_classes)))
    logits.requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda x: emd2_ground_loss(x, target, distance, mu=0.2, ce_weight=0.5, reduction="none"),
        (logits,),
    )


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_emd2_ground_extreme_logits_and_reductions(reduction):
    """Check finite values and gradients at logits of +-1e4 under every reduction."""
    rng = np.random.RandomState(13)
    logits = torch.tensor(rng.choice([-1e4, 1e4], size=(16, 20)), dtype=torch.float32)
    logits.requires_grad_(True)
    target = torch.tensor(rng.randint(20, size=16))
    distance = torch.tensor(rng.uniform(0, 2, size=(20, 20)), dtype=torch.float32)
    loss = emd2_ground_loss(logits, target, distance, reduction=reduction)
    loss.sum().backward()
    assert torch.isfinite(loss).all() and torch.isfinite(logits.grad).all()


# --- fused CPU kernels (numba) ---


def _fused_only(loss_path):
    if loss_path != "fused":
        pytest.skip("a test of the fused kernels: runs on the fused path only")


def _fused_problem(seed, n_samples, n_classes, dtype):
    logits, target, rank = _random_problem(seed, n_samples, n_classes, scale=3.0, dtype=dtype)
    rng = np.random.RandomState(seed)
    distance = torch.tensor(rng.uniform(0, 3, size=(n_classes, n_classes)), dtype=dtype)
    return logits, target, rank, distance.fill_diagonal_(0.0)


def _weighted_value_and_grad(fn, logits):
    """Value and gradient of ``fn``; per-sample weights for reduction='none'."""
    x = logits.detach().clone().requires_grad_(True)
    value = fn(x)
    weights = torch.linspace(0.5, 2.0, value.numel(), dtype=value.dtype).reshape(value.shape)
    (grad,) = torch.autograd.grad((value * weights).sum(), x)
    return value.detach(), grad, type(value.grad_fn).__name__


def _fused_and_eager(fn, logits):
    from skstruct.losses._numba import eager_only

    fused = _weighted_value_and_grad(fn, logits)
    with eager_only():
        eager = _weighted_value_and_grad(fn, logits)
    assert fused[2] == "FusedLossBackward"
    assert eager[2] != "FusedLossBackward"
    return fused, eager


@pytest.mark.parametrize("n_samples", [23, 400])  # 23: rows not a multiple of 4
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("use_rank", [False, True])
def test_fused_emd2_equals_eager(loss_path, n_samples, reduction, dtype, use_rank):
    """Check that the EMD2 kernel gives the eager path's values and gradients."""
    _fused_only(loss_path)
    logits, target, rank, _ = _fused_problem(20, n_samples, 30, dtype)
    rank = rank if use_rank else None
    for ce_weight in (0.0, 0.4):
        fused, eager = _fused_and_eager(
            lambda x: emd2_loss(x, target, rank=rank, ce_weight=ce_weight, reduction=reduction),
            logits,
        )
        # float32: the eager float32 cumsum is off by a few 1e-6 at gradients of about 3
        tol = dict(rtol=2e-5, atol=1e-5) if dtype == torch.float32 else dict(rtol=1e-11, atol=1e-13)
        torch.testing.assert_close(fused[0], eager[0], **tol)
        torch.testing.assert_close(fused[1], eager[1], **tol)


@pytest.mark.parametrize("n_samples", [23, 400])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fused_emd2_ground_equals_eager(loss_path, n_samples, reduction, dtype):
    """Check that the EMD2-ground kernel gives the eager path's values and gradients."""
    _fused_only(loss_path)
    logits, target, _, distance = _fused_problem(21, n_samples, 30, dtype)
    for kwargs in (dict(omega=2.0, mu=0.0, ce_weight=1.0), dict(omega=1.5, mu=0.2, ce_weight=0.0)):
        fused, eager = _fused_and_eager(
            lambda x: emd2_ground_loss(x, target, distance, reduction=reduction, **kwargs), logits
        )
        tol = dict(rtol=1e-5, atol=1e-6) if dtype == torch.float32 else dict(rtol=1e-12, atol=1e-14)
        torch.testing.assert_close(fused[0], eager[0], **tol)
        torch.testing.assert_close(fused[1], eager[1], **tol)


def test_fused_modules_equal_eager(loss_path):
    """Check the module forms on the fused path (a large batch: the FusedLoss node)."""
    _fused_only(loss_path)
    logits, target, rank, distance = _fused_problem(22, 300, 50, torch.float32)
    for criterion in (EMD2Loss(rank, ce_weight=0.3), EMD2GroundLoss(distance, mu=0.1)):
        fused, eager = _fused_and_eager(lambda x: criterion(x, target), logits)
        assert fused[2] == "FusedLossBackward"
        torch.testing.assert_close(fused[0], eager[0], rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(fused[1], eager[1], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fused_underflowed_target_probability(loss_path, dtype):
    """Check the cross-entropy of a target whose softmax underflows (the LSE form)."""
    _fused_only(loss_path)
    logits, target, rank, distance = _fused_problem(23, 12, 9, dtype)
    logits[:4] = -1e4
    logits[torch.arange(4), (target[:4] + 1) % 9] = 1e4
    for fn in (
        lambda x: emd2_loss(x, target, rank=rank, ce_weight=0.5, reduction="none"),
        lambda x: emd2_ground_loss(x, target, distance, reduction="none"),
    ):
        fused, eager = _fused_and_eager(fn, logits)
        assert torch.isfinite(fused[0]).all() and torch.isfinite(fused[1]).all()
        assert fused[0][0] > 1e4  # CE = 2e4 nats
        tol = dict(rtol=1e-5, atol=1e-5) if dtype == torch.float32 else dict(rtol=1e-12, atol=1e-13)
        torch.testing.assert_close(fused[0], eager[0], **tol)
        torch.testing.assert_close(fused[1], eager[1], **tol)


def _kernel_inputs(seed, n_samples, n_classes, use_rank):
    logits, target, rank, distance = _fused_problem(seed, n_samples, n_classes, torch.float64)
    logits[0, target[0]] = -800.0  # an underflowed target probability
    order = torch.argsort(rank)
    if not use_rank:
        rank = order = torch.empty(0, dtype=torch.int64)
    cost = distance.T.contiguous()
    return logits, target, rank, order, cost


@pytest.mark.parametrize("use_rank", [False, True])
def test_compiled_kernels_equal_their_python_source(loss_path, use_rank):
    """Check each kernel against its plain-Python source (what runs without numba)."""
    import skstruct.losses._emd as module

    _fused_only(loss_path)
    logits, target, rank, order, cost = _kernel_inputs(30, 7, 6, use_rank)
    tiny = torch.finfo(torch.float64).tiny
    calls = [
        (module._emd2_kernel, lambda p: (order.numpy(), rank.numpy())),
        (module._emd2_ground_kernel, lambda p: (cost.numpy(),)),
    ]
    for kernel, extra in calls:
        assert_kernel_forms_agree(
            kernel, logits,
            lambda version, p, inverse, loss, extra=extra: version(
                p.numpy(), inverse, logits.numpy(), target.numpy(), *extra(p), 0.4, 0.5,
                tiny, loss.numpy(),
            ),
        )


@pytest.mark.parametrize("use_rank", [False, True])
def test_kernels_decline_without_writing(loss_path, use_rank):
    """Check statuses 1 (target out of range) and 2 (NaN) leave the softmax untouched."""
    import skstruct.losses._emd as module

    _fused_only(loss_path)
    logits, target, rank, order, cost = _kernel_inputs(31, 9, 5, use_rank)
    for kernel, extra in (
        (module._emd2_kernel, (order.numpy(), rank.numpy())),
        (module._emd2_ground_kernel, (cost.numpy(),)),
    ):
        for bad, status in ((5, 1), (-1, 1), (None, 2)):
            z, t = logits.clone(), target.clone()
            if bad is None:
                z[3, 1] = float("nan")
            else:
                t[4] = bad
            p = torch.softmax(z, 1)
            before = p.clone()
            loss = torch.empty(9, dtype=torch.float64)
            got, _ = kernel(p.numpy(), np.ones(9), z.numpy(), t.numpy(), *extra, 0.4, 1.0, 1e-300,
                            loss.numpy())
            assert got == status
            torch.testing.assert_close(p, before, rtol=0, atol=0, equal_nan=True)


def test_nan_logits_give_what_the_eager_path_gives():
    """Check that a NaN logit takes the eager path (same values) on both paths."""
    from skstruct.losses._numba import eager_only

    logits, target, rank, distance = _fused_problem(32, 10, 6, torch.float32)
    logits[3, 2] = float("nan")
    for fn in (
        lambda x: emd2_loss(x, target, rank=rank, ce_weight=0.2, reduction="none"),
        lambda x: emd2_ground_loss(x, target, distance, reduction="none"),
    ):
        value = fn(logits)
        with eager_only():
            expected = fn(logits)
        torch.testing.assert_close(value, expected, equal_nan=True)


@pytest.mark.parametrize("bad", [-1, 6, 1000])
def test_out_of_range_target_is_a_value_error(bad):
    """Check the ValueError naming the target range, on both paths and all forms."""
    logits, target, rank, distance = _fused_problem(33, 8, 6, torch.float32)
    target[5] = bad
    logits.requires_grad_(True)
    match = "target must hold class indices in"
    with pytest.raises(ValueError, match=match):
        emd2_loss(logits, target)
    with pytest.raises(ValueError, match=match):
        emd2_loss(logits, target, rank=rank, ce_weight=0.5, reduction="none")
    with pytest.raises(ValueError, match=match):
        EMD2Loss(rank)(logits, target)
    with pytest.raises(ValueError, match=match):
        emd2_ground_loss(logits, target, distance)
    with pytest.raises(ValueError, match=match):
        EMD2GroundLoss(distance)(logits, target)
