"""The fused CPU kernels' machinery (skstruct.losses._numba) and the Conveyance kernel.

The numeric agreement of every loss with its float64 reference runs on both
paths through ``tests/losses/conftest.py``; here: the hand-over of the
gradient buffer, a second backward, the reductions, when a kernel is used
or declined, and the kernel's error statuses.
"""

import contextlib
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from skstruct.losses import ConveyanceLoss, conveyance_loss
from skstruct.losses import _conveyance, _numba
from skstruct.losses._numba import eager_only, fused_available, numba_available

from ._kernel_forms import assert_kernel_forms_agree

pytestmark = pytest.mark.skipif(
    not numba_available(),
    reason="numba is not installed (or SKSTRUCT_NUMBA=0): the fused CPU kernels are off",
)


@pytest.fixture(autouse=True)
def loss_path():
    """Override the two-path fixture of conftest.py: these tests choose their path."""
    yield "fused"


def _problem(seed=0, n_samples=24, n_classes=30, dtype=torch.float64, scale=3.0):
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(n_samples, n_classes, generator=generator, dtype=dtype) * scale
    target = torch.randint(0, n_classes, (n_samples,), generator=generator)
    plausible = torch.rand(n_classes, n_classes, generator=generator) < 0.2
    return logits, target, plausible


def _value_and_grad(logits, target, plausible, **kwargs):
    x = logits.clone().requires_grad_(True)
    loss = conveyance_loss(x, target, plausible, **kwargs)
    weights = torch.linspace(0.5, 2.0, loss.numel(), dtype=loss.dtype).reshape(loss.shape)
    (loss * weights).sum().backward()
    return loss.detach(), x.grad, loss.grad_fn


_SMALL, _LARGE = 24, 2500


@pytest.mark.parametrize("n_samples", [_SMALL, _LARGE])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fused_equals_eager(reduction, dtype, n_samples):
    logits, target, plausible = _problem(dtype=dtype, n_samples=n_samples)
    value, grad, node = _value_and_grad(logits, target, plausible, reduction=reduction)
    assert type(node).__name__ == "FusedLossBackward"
    with eager_only():
        expected, expected_grad, eager_node = _value_and_grad(
            logits, target, plausible, reduction=reduction
        )
    assert type(eager_node).__name__ != "FusedLossBackward"
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == torch.float32 else dict(rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(value, expected, **tol)
    torch.testing.assert_close(grad, expected_grad, **tol)


@pytest.mark.parametrize("n_samples", [_SMALL, _LARGE])
def test_gradient_buffer_is_handed_over_and_a_second_backward_recomputes_it(n_samples):
    logits, target, plausible = _problem(n_samples=n_samples)
    x = logits.clone().requires_grad_(True)
    loss = conveyance_loss(x, target, plausible)
    loss.backward(retain_graph=True)
    first = x.grad.clone()
    x.grad.mul_(0.0)  # the caller owns the handed-over buffer and may edit it
    loss.backward()
    torch.testing.assert_close(x.grad, first)
    with eager_only():
        y = logits.clone().requires_grad_(True)
        conveyance_loss(y, target, plausible).backward()
    torch.testing.assert_close(first, y.grad)


@pytest.mark.parametrize("n_samples", [_SMALL, _LARGE])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_scaled_backward_and_non_leaf_logits(n_samples, reduction):
    logits, target, plausible = _problem(n_samples=n_samples)
    x = logits.clone().requires_grad_(True)
    (3.0 * conveyance_loss(2.0 * x, target, plausible, reduction=reduction)).backward()
    with eager_only():
        y = logits.clone().requires_grad_(True)
        (3.0 * conveyance_loss(2.0 * y, target, plausible, reduction=reduction)).backward()
    torch.testing.assert_close(x.grad, y.grad, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_create_graph_gives_the_gradient_and_refuses_a_second_derivative(reduction):
    # The handed-over gradient has no graph: with create_graph=True the first
    # derivative is right and differentiating it again raises (as
    # torch.autograd.function.once_differentiable makes it), also when the
    # incoming gradient itself requires grad (torch's dot node, which small
    # batches once took, then left the loss's second-order term out silently).
    logits, target, plausible = _problem()
    with eager_only():
        y = logits.clone().requires_grad_(True)
        conveyance_loss(y, target, plausible, reduction=reduction).sum().backward()
    x = logits.clone().requires_grad_(True)
    loss = conveyance_loss(x, target, plausible, reduction=reduction)
    (grad,) = torch.autograd.grad(loss.sum(), x, create_graph=True, retain_graph=True)
    torch.testing.assert_close(grad, y.grad, rtol=1e-12, atol=1e-14)
    with pytest.raises(RuntimeError, match="does not require grad"):
        grad.sum().backward()
    weight = torch.ones_like(loss, requires_grad=True)
    (grad,) = torch.autograd.grad(loss, x, grad_outputs=weight, create_graph=True)
    torch.testing.assert_close(grad, y.grad, rtol=1e-12, atol=1e-14)
    with pytest.raises(RuntimeError, match="once_differentiable"):
        grad.sum().backward()


def test_second_backward_sees_logits_edited_in_place():
    # The logits are saved with their version: a retained graph whose logits
    # were edited in place refuses to recompute from them.
    logits, target, plausible = _problem(n_samples=_LARGE)
    x = logits.clone().requires_grad_(True)
    z = x * 1.0
    loss = conveyance_loss(z, target, plausible)
    loss.backward(retain_graph=True)
    with torch.no_grad():
        z.add_(1.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()


@pytest.mark.parametrize("n_samples", [_SMALL, _LARGE])
def test_no_grad_and_logits_without_grad(n_samples):
    logits, target, plausible = _problem(n_samples=n_samples)
    with torch.no_grad():
        value = conveyance_loss(logits, target, plausible)
    with eager_only():
        expected = conveyance_loss(logits, target, plausible)
    torch.testing.assert_close(value, expected, rtol=1e-12, atol=1e-14)
    assert not value.requires_grad
    value = conveyance_loss(logits, target, plausible)  # grad mode on, logits without grad
    torch.testing.assert_close(value, expected, rtol=1e-12, atol=1e-14)
    assert not value.requires_grad


def _kernel_softmax(z):
    e, inverse = _numba.kernel_exp(z)
    return e * torch.from_numpy(inverse).to(e.dtype)[:, None]


@pytest.mark.parametrize(
    "shape", [(1, 1), (3, 2), (64, 10), (40, 15), (20, 16), (64, 600), (40, 1000)]
)
def test_kernel_exp_is_the_softmax(shape):
    z = torch.randn(*shape, dtype=torch.float64) * 30
    torch.testing.assert_close(_kernel_softmax(z), torch.softmax(z, 1))
    torch.testing.assert_close(
        _kernel_softmax(z.float()), torch.softmax(z.float(), 1), rtol=2e-6, atol=1e-7
    )
    t = z.T  # a non-contiguous input
    torch.testing.assert_close(_kernel_softmax(t), torch.softmax(t, 1))


def test_kernel_exp_float32_polynomial():
    """The float32 rows (numba's polynomial exp): accuracy, -inf, NaN and inf rows."""
    g = torch.Generator().manual_seed(3)
    z = torch.randn(64, 700, generator=g) * 20
    z[1, :5] = -math.inf
    z[2, 3] = -100.0 + z[2].max()  # below the polynomial's floor: 0
    z[3, 7] = math.nan
    z[4, 8] = math.inf
    e, inverse = _numba.kernel_exp(z)
    assert not np.all(inverse == 1.0)  # the unnormalised kernel path
    p = e.double() * torch.from_numpy(inverse)[:, None]
    expected = torch.softmax(z.double(), 1)
    rows = [0, 1, 2] + list(range(5, 64))
    # as close as torch's own float32 softmax (rounding of e and of the sum),
    # relative in the normal float32 range; below it (exp flushed to 0 under
    # -87) an absolute error below exp(-87) = 1.6e-38
    normal = expected[rows] > 1e-37
    ours = ((p[rows] - expected[rows]).abs() / expected[rows])[normal].max()
    theirs = torch.softmax(z, 1).double()[rows]
    theirs = ((theirs - expected[rows]).abs() / expected[rows])[normal].max()
    assert ours <= 2 * theirs and ours < 5e-6, (ours, theirs)
    assert (p[rows] - expected[rows]).abs()[~normal].max() < 1.7e-38
    assert torch.equal(e[1, :5], torch.zeros(5)) and e[2, 3] == 0.0
    assert torch.isnan(p[3]).all() and torch.isnan(p[4]).all()
    assert torch.isnan(expected[3]).all() and torch.isnan(expected[4]).all()


def _fanout_hierarchy(n_classes, fanout=6):
    from skstruct.structures import Hierarchy

    parents = {f"c{i:03d}": f"g{i // fanout}" for i in range(n_classes)}
    parents.update({f"g{i}": "root" for i in range(-(-n_classes // fanout))})
    return Hierarchy(parents)


@pytest.mark.parametrize("name", ["conveyance", "hace", "hace_eps", "emd2", "emd2_ground"])
def test_float32_batches_of_many_cells_take_the_polynomial_exp(name):
    """Long float32 rows, many cells: kernel_exp's unnormalised rows, folded into each kernel."""
    from skstruct import losses

    n_samples, n_classes = 60, 600
    assert n_samples * n_classes >= _numba._KERNEL_EXP_MIN_CELLS
    assert n_classes >= _numba._KERNEL_EXP_MIN_CLASSES
    generator = torch.Generator().manual_seed(8)
    logits = torch.randn(n_samples, n_classes, generator=generator) * 4
    target = torch.randint(0, n_classes, (n_samples,), generator=generator)
    distance = torch.rand(n_classes, n_classes, generator=generator)
    criteria = {
        "conveyance": losses.ConveyanceLoss(torch.rand(n_classes, n_classes) < 0.1),
        "hace": losses.HACELoss(_fanout_hierarchy(n_classes)),
        "hace_eps": losses.HACELoss(_fanout_hierarchy(n_classes), eps=0.1),
        "emd2": losses.EMD2Loss(rank=torch.randperm(n_classes, generator=generator),
                                ce_weight=0.5),
        "emd2_ground": losses.EMD2GroundLoss((distance + distance.T) / 2, ce_weight=0.5),
    }
    criterion = criteria[name]
    calls = []
    real = _numba._exp_rows_f32

    def counted(*args):
        calls.append(args[0].shape)
        return real(*args)

    results = []
    for eager in (False, True):
        z = logits.clone().requires_grad_()
        _numba._exp_rows_f32 = counted
        try:
            with eager_only() if eager else contextlib.nullcontext():
                loss = criterion(z, target)
        finally:
            _numba._exp_rows_f32 = real
        loss.backward()
        results.append((loss.detach(), z.grad))
    assert calls == [(n_samples, n_classes)]  # the fused run took the polynomial rows
    torch.testing.assert_close(results[0][0], results[1][0], rtol=2e-5, atol=1e-6)
    # float32 gradients: EMD2's cancel (2 X_r - 2 X_j - 2 L + w, terms of order
    # C), where both paths are off by about 1e-5 of the largest entry
    scale = float(results[1][1].abs().max())
    torch.testing.assert_close(results[0][1], results[1][1], rtol=2e-5, atol=5e-5 * scale)


def test_underflowing_target_probability_takes_the_log_space_path():
    logits, target, plausible = _problem()
    logits[0] = -1e4
    logits[0, (target[0] + 1) % logits.shape[1]] = 1e4
    value, grad, node = _value_and_grad(logits, target, plausible, reduction="none")
    assert type(node).__name__ != "FusedLossBackward"
    assert torch.isfinite(value).all() and torch.isfinite(grad).all()


def test_nan_logits_give_what_the_eager_path_gives():
    logits, target, plausible = _problem()
    logits[3, 2] = float("nan")
    value = conveyance_loss(logits, target, plausible, reduction="none")
    with eager_only():
        expected = conveyance_loss(logits, target, plausible, reduction="none")
    torch.testing.assert_close(value, expected, equal_nan=True)


@pytest.mark.parametrize("bad", [-1, 30, 1000])
def test_out_of_range_target_is_a_value_error(bad):
    logits, target, plausible = _problem()
    target[5] = bad
    with pytest.raises(ValueError, match="target must hold class indices in"):
        conveyance_loss(logits.requires_grad_(True), target, plausible)
    with pytest.raises(ValueError, match="target must hold class indices in"):
        ConveyanceLoss(plausible)(logits, target)


def test_kernel_declines_without_writing():
    logits, target, plausible = _problem(dtype=torch.float32)
    p = torch.softmax(logits, 1)
    before = p.clone()
    loss = torch.empty(p.shape[0])
    in_s = _conveyance._prepare(plausible)[0].T.contiguous()
    target[0] = 99
    ones = np.ones(p.shape[0])
    status, _ = _conveyance._conveyance_kernel(
        p.numpy(), ones, target.numpy(), in_s.numpy(), 0.1, 10.0, 1.0, 1e-19, loss.numpy()
    )
    assert status == 1 and torch.equal(p, before)
    target[0] = 0
    status, _ = _conveyance._conveyance_kernel(
        p.numpy(), ones, target.numpy(), in_s.numpy(), 0.1, 10.0, 1.0, 2.0, loss.numpy()
    )
    assert status == 2 and torch.equal(p, before)


def test_compiled_kernel_equals_its_python_source():
    """The kernel as plain Python (what runs without numba's compiler) gives the same."""
    logits, target, plausible = _problem(n_samples=5, n_classes=7)
    in_s = _conveyance._prepare(plausible)[0].T.contiguous()
    assert_kernel_forms_agree(
        _conveyance._conveyance_kernel, logits,
        lambda version, p, inverse, loss: version(
            p.numpy(), inverse, target.numpy(), in_s.numpy(), 0.3, 2.0, 0.5, 1e-150,
            loss.numpy(),
        ),
    )


class _Mode(TorchDispatchMode):
    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        return func(*args, **(kwargs or {}))


class _WatchingMode(_Mode):
    allows_fused_kernels = True


def test_when_a_kernel_is_used():
    z = torch.zeros(3, 4)
    assert fused_available(z)
    assert fused_available(z.double())
    assert not fused_available(z.half())
    assert not fused_available(torch.zeros(0, 4))
    assert not fused_available(torch.zeros(3, 0))
    with eager_only():
        assert not fused_available(z)
    assert fused_available(z)
    with _Mode():
        assert not fused_available(z)
    with _WatchingMode():
        assert fused_available(z)
    with torch.device("cpu"):  # a TorchFunctionMode
        assert not fused_available(z)
    seen = []

    def record(block):
        seen.append(fused_available(block))
        return block

    torch.func.vmap(record)(torch.zeros(2, 3, 4))
    assert seen == [False]


def test_switched_off_by_the_environment():
    code = (
        "from skstruct.losses._numba import numba_available, fused_available; import torch; "
        "print(numba_available(), fused_available(torch.zeros(2, 2)))"
    )
    env = dict(os.environ, SKSTRUCT_NUMBA="0")
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["False", "False"]
