"""Tests of the Average-K two-head loss: pseudo-labels, reference values, API."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from skstruct.losses import AverageKLoss, average_k_loss
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
