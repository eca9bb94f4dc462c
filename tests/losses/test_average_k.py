"""Tests of the Average-K two-head loss: pseudo-labels, reference values, API."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from skstruct.losses import AverageKLoss, average_k_loss
from skstruct.losses._numba import eager_only, numba_available
from tests._reference import average_k_loss_reference


def _random_heads(seed, n_samples, n_classes, *, dtype=torch.float64):
    rng = np.random.RandomState(seed)
    logits_softmax = torch.tensor(rng.normal(scale=2.0, size=(n_samples, n_classes)), dtype=dtype)
    logits_multilabel = torch.tensor(rng.normal(size=(n_samples, n_classes)), dtype=dtype)
    target = torch.tensor(rng.randint(n_classes, size=n_samples), dtype=torch.int64)
    return logits_softmax, logits_multilabel, target


def _multilabel_grad(k, n_samples=10, n_classes=6, seed=0, alpha=1.0):
    z, f, target = _random_heads(seed, n_samples, n_classes)
    f.requires_grad_(True)
    average_k_loss(z, f, target, k=k, alpha=alpha, reduction="sum").backward()
    return f.grad, target


@pytest.mark.parametrize("k", [1.0, 1.5, 2.0, 3.7])
@pytest.mark.parametrize("alpha", [0.3, 1.0, 4.0])
def test_matches_reference_values_and_gradients(k, alpha):
    """Check values and the gradients of both heads against explicit loops."""
    z, f, target = _random_heads(1, 9, 6)
    z.requires_grad_(True)
    f.requires_grad_(True)
    loss = average_k_loss(z, f, target, k=k, alpha=alpha, reduction="none")
    grad_z, grad_f = torch.autograd.grad(loss.sum(), (z, f))

    z_ref = z.detach().clone().requires_grad_(True)
    f_ref = f.detach().clone().requires_grad_(True)
    ref = average_k_loss_reference(z_ref, f_ref, target, k=k, alpha=alpha)
    ref_grad_z, ref_grad_f = torch.autograd.grad(ref.sum(), (z_ref, f_ref))

    torch.testing.assert_close(loss, ref, rtol=1e-5, atol=1e-12)
    torch.testing.assert_close(grad_z, ref_grad_z, rtol=1e-5, atol=1e-12)
    torch.testing.assert_close(grad_f, ref_grad_f, rtol=1e-5, atol=1e-12)


@pytest.mark.parametrize("k, n_samples", [(1.0, 10), (1.5, 10), (1.15, 100), (2.0, 7), (4.99, 10)])
def test_pseudo_positive_count(k, n_samples):
    """Check that exactly floor((k-1)|B|) cells besides the true labels are positive.

    A positive cell's BCE gradient is negative, a negative cell's positive.
    """
    grad, target = _multilabel_grad(k, n_samples=n_samples)
    n_pseudo = math.floor(round((k - 1) * n_samples, 9))
    assert int((grad < 0).sum()) == n_samples + n_pseudo
    assert (grad[torch.arange(n_samples), target] < 0).all()  # true labels always positive


def test_pseudo_positives_are_the_most_probable_cells():
    """Check that the pseudo-positives are the batch's top softmax cells off the labels."""
    z, f, target = _random_heads(2, 8, 5)
    f.requires_grad_(True)
    average_k_loss(z, f, target, k=2.0, reduction="sum").backward()
    proba = torch.softmax(z, 1)
    proba[torch.arange(8), target] = -1.0
    expected = torch.zeros(8, 5, dtype=torch.bool)
    expected.view(-1)[proba.view(-1).argsort(descending=True)[:8]] = True
    expected[torch.arange(8), target] = True
    assert torch.equal(f.grad < 0, expected)


def test_k_one_has_no_pseudo_term():
    """Check that k = 1 gives CE + true-label BCE + negatives weighted alpha / (C - 1)."""
    z, f, target = _random_heads(3, 12, 5)
    loss = average_k_loss(z, f, target, k=1, alpha=2.0)
    positive = F.one_hot(target, 5).bool()
    expected = (
        F.cross_entropy(z, target)
        + F.softplus(-f)[positive].mean()
        + 2.0 / 4 * F.softplus(f)[~positive].sum() / 12
    )
    torch.testing.assert_close(loss, expected)


def test_softmax_head_gradient_is_cross_entropy():
    """Check that no gradient flows through the pseudo-label selection."""
    z, f, target = _random_heads(4, 16, 7)
    z.requires_grad_(True)
    f.requires_grad_(True)
    (grad,) = torch.autograd.grad(average_k_loss(z, f, target, k=2.5), z)
    (ce_grad,) = torch.autograd.grad(F.cross_entropy(z, target), z)
    torch.testing.assert_close(grad, ce_grad, rtol=1e-12, atol=1e-15)


def test_gradcheck():
    """Check both heads' gradients with gradcheck in float64."""
    z, f, target = _random_heads(5, 6, 4)
    z.requires_grad_(True)
    f.requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda a, b: average_k_loss(a, b, target, k=1.8, alpha=0.5, reduction="none"), (z, f)
    )


def test_reductions():
    """Check that 'none' averages to 'mean' and 'sum' is |B| times 'mean'."""
    z, f, target = _random_heads(6, 11, 5)
    per_sample = average_k_loss(z, f, target, k=2.2, reduction="none")
    mean = average_k_loss(z, f, target, k=2.2)
    assert per_sample.shape == (11,)
    torch.testing.assert_close(per_sample.mean(), mean)
    torch.testing.assert_close(average_k_loss(z, f, target, k=2.2, reduction="sum"), 11 * mean)
    with pytest.raises(ValueError, match="reduction"):
        average_k_loss(z, f, target, k=2, reduction="batchmean")


@pytest.mark.parametrize("k", [0.5, 0.999, 5, 7.5, math.nan, math.inf])
def test_invalid_k(k):
    """Check that k outside [1, n_classes) raises a ValueError naming k."""
    z, f, target = _random_heads(7, 4, 5)
    with pytest.raises(ValueError, match="k"):
        average_k_loss(z, f, target, k=k)


def test_k_type_and_module_check():
    """Check the type of k and the module's early check of k >= 1."""
    z, f, target = _random_heads(8, 4, 5)
    with pytest.raises(TypeError, match="k"):
        average_k_loss(z, f, target, k="2")
    with pytest.raises(TypeError, match="k"):
        average_k_loss(z, f, target, k=None)
    with pytest.raises(ValueError, match="k"):
        AverageKLoss(k=0.5)
    with pytest.raises(ValueError, match="k"):
        AverageKLoss(k=5)((z, f), target)


def test_invalid_alpha_and_shapes():
    """Check errors naming alpha, logits_multilabel and target."""
    z, f, target = _random_heads(9, 4, 5)
    with pytest.raises(ValueError, match="alpha"):
        average_k_loss(z, f, target, k=2, alpha=0.0)
    with pytest.raises(ValueError, match="logits_multilabel"):
        average_k_loss(z, f[:, :4], target, k=2)
    with pytest.raises(ValueError, match="target"):
        average_k_loss(z, f, target[:2], k=2)
    with pytest.raises(ValueError, match="logits_softmax"):
        average_k_loss(z[0], f, target, k=2)


def test_module_takes_the_two_head_tuple():
    """Check that AverageKLoss takes (logits_softmax, logits_multilabel) and agrees."""
    z, f, target = _random_heads(10, 8, 6)
    criterion = AverageKLoss(k=2.5, alpha=0.7, reduction="sum")
    expected = average_k_loss(z, f, target, k=2.5, alpha=0.7, reduction="sum")
    torch.testing.assert_close(criterion((z, f), target), expected)
    torch.testing.assert_close(criterion([z, f], target), expected)
    with pytest.raises(TypeError, match="output"):
        criterion(z, target)
    with pytest.raises(TypeError, match="output"):
        criterion((z, f, f), target)
    assert repr(criterion) == "AverageKLoss(k=2.5, alpha=0.7, reduction='sum')"


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_low_precision_and_extreme_logits(dtype):
    """Check float32 output and finite gradients for bf16 input and logits of +-1e4."""
    rng = np.random.RandomState(11)
    z = torch.tensor(rng.choice([-1e4, 1e4], size=(16, 6)), dtype=dtype, requires_grad=True)
    f = torch.tensor(rng.choice([-1e4, 1e4], size=(16, 6)), dtype=dtype, requires_grad=True)
    target = torch.tensor(rng.randint(6, size=16))
    loss = average_k_loss(z, f, target, k=2)
    loss.backward()
    assert loss.dtype == torch.float32
    assert torch.isfinite(loss)
    assert torch.isfinite(z.grad.float()).all() and torch.isfinite(f.grad.float()).all()


def test_float32_matches_reference():
    """Check float32 heads against the float64 reference."""
    z, f, target = _random_heads(12, 10, 7, dtype=torch.float32)
    loss = average_k_loss(z, f, target, k=3.0, reduction="none")
    expected = average_k_loss_reference(z.double(), f.double(), target, k=3.0)
    torch.testing.assert_close(loss.double(), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("seed", range(6))
def test_first_top_m_matches_stable_sort(seed):
    """Check the top-m selection against a stable descending sort, with and without ties.

    Seeds 0-2 draw distinct scores (topk's own indices are returned); 3-5
    draw from 4 values, so the m-th largest is tied and the first tied cells
    must be taken.
    """
    from skstruct.losses._average_k import _first_top_m

    g = torch.Generator().manual_seed(seed)
    if seed < 3:
        scores = torch.randn(200, generator=g)
    else:
        scores = torch.randint(4, (200,), generator=g).float()
    for m in (1, 7, 50, 199):
        expected = torch.sort(-scores, stable=True).indices[:m].sort().values
        torch.testing.assert_close(_first_top_m(scores, m), expected)


@pytest.mark.skipif(not numba_available(), reason="numba is not installed (or SKSTRUCT_NUMBA=0)")
class TestFusedKernel:
    """The fused CPU kernel of Average-K (numba) against its Python source and the eager path."""

    @pytest.fixture(autouse=True)
    def loss_path(self):
        """Override the two-path fixture of conftest.py: these tests choose their path."""
        yield "fused"

    @staticmethod
    def _value_and_grads(z, f, target, **kwargs):
        z = z.clone().requires_grad_(True)
        f = f.clone().requires_grad_(True)
        loss = average_k_loss(z, f, target, **kwargs)
        weights = torch.linspace(0.5, 2.0, loss.numel(), dtype=loss.dtype).reshape(loss.shape)
        (loss * weights).sum().backward()
        return loss.detach(), z.grad, f.grad, type(loss.grad_fn).__name__

    def _compare(self, z, f, target, tol=None, fused=True, **kwargs):
        value, grad_z, grad_f, node = self._value_and_grads(z, f, target, **kwargs)
        assert (node == "FusedLossBackward") == fused, node
        with eager_only():
            expected = self._value_and_grads(z, f, target, **kwargs)
        assert expected[3] != "FusedLossBackward"
        if tol is None:
            tol = (
                dict(rtol=1e-5, atol=1e-6) if z.dtype == torch.float32
                else dict(rtol=1e-12, atol=1e-14)
            )
        for actual, wanted in zip((value, grad_z, grad_f), expected[:3]):
            torch.testing.assert_close(actual, wanted, equal_nan=True, **tol)

    @pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
    @pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
    @pytest.mark.parametrize("k", [1.0, 2.5, 5.5])
    def test_fused_equals_eager(self, reduction, dtype, k):
        """k = 5.5 of C = 7 keeps the heap of the cells left out (m > n / 2)."""
        z, f, target = _random_heads(20, 33, 7, dtype=dtype)
        self._compare(z, f, target, k=k, alpha=0.7, reduction=reduction)

    @pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
    def test_fused_equals_eager_larger(self, dtype):
        z, f, target = _random_heads(21, 64, 300, dtype=dtype)
        self._compare(z, f, target, k=4.2, alpha=2.0, reduction="mean")

    @pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
    @pytest.mark.parametrize("k", [1.1, 1.9])
    def test_prefiltered_heap_equals_eager(self, dtype, k):
        """Few pseudo-positives among many cells (n >= 16 m): the sampled prefilter runs."""
        from skstruct.losses import _average_k

        z, f, target = _random_heads(30, 96, 200, dtype=dtype)
        n_pseudo = _average_k._n_pseudo_positives(k, 96)
        assert 96 * 199 >= _average_k._PREFILTER_MIN_RATIO * n_pseudo
        self._compare(z, f, target, k=k, reduction="mean")
        # integer logits: many cells tie with the sample's smallest kept key
        g = torch.Generator().manual_seed(6)
        z_int = torch.randint(4, (96, 200), generator=g).to(dtype)
        self._compare(z_int, f, target, k=k, reduction="sum")

    def test_float32_ties_across_rows_rank_alike_on_both_paths(self):
        """Integer float32 logits: scores of different rows tie to an ulp; the LSE they
        are ranked by must be the kernel's (two of these 40 batches differed)."""
        for seed in range(40):
            g = torch.Generator().manual_seed(seed)
            z = torch.randint(0, 3, (100, 12), generator=g).float()
            f = torch.randn(100, 12, generator=g)
            target = torch.randint(0, 12, (100,), generator=g)
            self._compare(z, f, target, k=3.28, reduction="sum")

    def test_prefilter_falls_back_when_the_sample_misleads(self):
        """Sampled cells far above the rest: fewer than m cells reach tau, every cell is offered."""
        from skstruct.losses import _average_k

        n_samples, n_classes, k = 128, 64, 1.8
        n_pseudo = _average_k._n_pseudo_positives(k, n_samples)  # 102
        n_cells = n_samples * (n_classes - 1)
        stride = max(_average_k._SAMPLE_STRIDE,
                     n_cells // (_average_k._SAMPLE_STRIDE * n_pseudo))
        rank = (2 * n_pseudo) // stride + 16
        assert n_cells >= _average_k._PREFILTER_MIN_RATIO * n_pseudo and rank < n_pseudo
        g = torch.Generator().manual_seed(7)
        z = torch.rand(n_samples, n_classes, generator=g, dtype=torch.float64)
        target = torch.zeros(n_samples, dtype=torch.int64)  # column 0: never sampled first
        rows = torch.arange(n_samples)
        rows = rows[rows % stride != 0][:rank]  # rank rows; their sampled column b % stride
        z[rows, rows % stride] = 10.0  # is far above every other cell
        f = torch.randn(n_samples, n_classes, generator=g, dtype=torch.float64)
        self._compare(z, f, target, k=k, reduction="sum")

    @pytest.mark.parametrize("k", [1.5, 2.0, 3.5])
    def test_ties_go_to_the_first_cells(self, k):
        """Integer logits (many equal scores) choose the same cells on both paths."""
        g = torch.Generator().manual_seed(5)
        z = torch.randint(3, (12, 5), generator=g).double()
        z[4] = z[1]  # whole equal rows too
        f = torch.randn(12, 5, generator=g, dtype=torch.float64)
        target = torch.randint(5, (12,), generator=g)
        target[4] = target[1]
        self._compare(z, f, target, k=k, reduction="sum")
        self._compare(z.float(), f.float(), target, k=k, reduction="sum")

    def test_extreme_multilabel_logits(self):
        z, f, target = _random_heads(22, 16, 6)
        f[0, :3] = torch.tensor([1e4, -1e4, 800.0])
        f[1, :3] = torch.tensor([math.inf, -math.inf, 0.0])
        f[2] = 1e-20
        self._compare(z, f, target, k=2.0, reduction="none")

    def test_compiled_kernel_equals_its_python_source(self):
        """The kernel as plain Python (what runs without numba's compiler) gives the same."""
        from skstruct.losses._average_k import _average_k_kernel

        z, f, target = _random_heads(23, 6, 5)
        outputs = []
        for kernel in (_average_k_kernel, _average_k_kernel.py_func):
            for n_pseudo in (0, 4, 20, 24):  # no heap, top cells, cells left out, all cells
                buffers = [
                    torch.empty(6, dtype=torch.float64),  # lse
                    torch.empty(6, dtype=torch.float64),  # cross_entropy
                    torch.empty(min(n_pseudo, 24 - n_pseudo), dtype=torch.float64),  # keys
                    torch.empty(min(n_pseudo, 24 - n_pseudo), dtype=torch.int64),  # index
                    torch.empty(6, dtype=torch.float64),  # loss
                    torch.empty(6, 5, dtype=torch.float64),  # grad_z
                    torch.empty(6, 5, dtype=torch.float64),  # grad_f
                ]
                status, total = kernel(
                    z.numpy(), f.numpy(), target.numpy(), z.amax(1).numpy(), n_pseudo, 0.3,
                    2.0, 0.5, 1e300, *(b.numpy() for b in buffers)
                )
                assert status == 0
                outputs.append((total, buffers[4], buffers[5], buffers[6]))
        for compiled, python in zip(outputs[:4], outputs[4:]):
            assert compiled[0] == pytest.approx(python[0], rel=1e-13)
            for a, b in zip(compiled[1:], python[1:]):
                torch.testing.assert_close(a, b, rtol=1e-13, atol=1e-15)

    def test_gradients_are_handed_over_and_a_second_backward_recomputes_them(self):
        z, f, target = _random_heads(24, 10, 6)
        z.requires_grad_(True)
        f.requires_grad_(True)
        loss = average_k_loss(z, f, target, k=2.0)
        assert type(loss.grad_fn).__name__ == "FusedLossBackward"
        loss.backward(retain_graph=True)
        first = z.grad.clone(), f.grad.clone()
        z.grad.mul_(0.0)  # the caller owns the handed-over buffers and may edit them
        f.grad.mul_(0.0)
        (2.0 * loss).backward()
        torch.testing.assert_close(z.grad, 2.0 * first[0])
        torch.testing.assert_close(f.grad, 2.0 * first[1])

    def test_one_head_without_gradient_and_no_grad(self):
        z, f, target = _random_heads(25, 10, 6)
        f.requires_grad_(True)
        average_k_loss(z, f, target, k=2.0, reduction="sum").backward()
        with eager_only():
            g = f.detach().clone().requires_grad_(True)
            average_k_loss(z, g, target, k=2.0, reduction="sum").backward()
        torch.testing.assert_close(f.grad, g.grad, rtol=1e-12, atol=1e-14)
        for reduction in ("mean", "sum", "none"):
            with torch.no_grad():
                value = average_k_loss(z, f, target, k=2.0, reduction=reduction)
            assert not value.requires_grad
            with eager_only():
                expected = average_k_loss(z, f.detach(), target, k=2.0, reduction=reduction)
            torch.testing.assert_close(value, expected, rtol=1e-12, atol=1e-14)

    @pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, 1e38])
    def test_declines_non_finite_or_huge_softmax_logits(self, bad):
        z, f, target = _random_heads(26, 8, 5, dtype=torch.float32)
        z[3, 1] = bad
        self._compare(z, f, target, fused=False, k=2.0, reduction="none")

    def test_declines_heads_of_different_dtypes(self):
        from skstruct.losses._average_k import _fused_average_k

        z, f, target = _random_heads(27, 8, 5)
        assert _fused_average_k(z, f.float(), target, 8, 0.3, 1.0, "mean") is None
        assert _fused_average_k(z, f, target, 8, 0.3, 1.0, "mean") is not None

    def test_kernel_status_on_a_bad_target_or_logit(self):
        from skstruct.losses._average_k import _average_k_kernel

        z, f, target = _random_heads(28, 4, 5)
        grad = torch.full((4, 5), 7.0, dtype=torch.float64)
        buffers = [torch.empty(4, dtype=torch.float64), torch.empty(4, dtype=torch.float64),
                   torch.empty(2, dtype=torch.float64), torch.empty(2, dtype=torch.int64),
                   torch.empty(4, dtype=torch.float64), grad, grad.clone()]

        def status(z, target):
            return _average_k_kernel(
                z.numpy(), f.numpy(), target.numpy(), z.amax(1).numpy(), 2, 0.5, 1.0, 1.0,
                1e300, *(b.numpy() for b in buffers)
            )[0]

        assert status(z, torch.tensor([0, 1, 5, 2])) == 1
        assert status(z, torch.tensor([0, -1, 1, 2])) == 1
        assert torch.equal(grad, torch.full((4, 5), 7.0, dtype=torch.float64))  # not written
        z[2, 2] = math.nan
        assert status(z, target) == 2

    @pytest.mark.parametrize("bad", [-1, 7, 10**6])
    def test_out_of_range_target_is_a_value_error(self, bad):
        z, f, target = _random_heads(29, 8, 7, dtype=torch.float32)
        target[5] = bad
        with pytest.raises(ValueError, match=f"got target value {bad}"):
            average_k_loss(z.requires_grad_(True), f, target, k=2.0)
        with pytest.raises(ValueError, match=f"got target value {bad}"):
            AverageKLoss(k=2.0)((z, f), target)
