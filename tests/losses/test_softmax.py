"""Tests of the shared softmax helpers of the losses (explicit and fused kernels)."""

import pytest
import torch

from skstruct.losses._reduction import _FUSED_SOFTMAX_MIN_CLASSES, softmax, softmax_lse


@pytest.mark.parametrize("n_classes", [1, 3, _FUSED_SOFTMAX_MIN_CLASSES - 1,
                                       _FUSED_SOFTMAX_MIN_CLASSES, 40])
@pytest.mark.parametrize("scale", [1.0, 1e4])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_softmax_helpers_match_torch(n_classes, scale, dtype):
    """Check both kernels against torch.softmax / logsumexp, at logits of +-1e4 too."""
    g = torch.Generator().manual_seed(n_classes)
    z = (scale * torch.randn(64, n_classes, generator=g)).to(dtype)
    p, lse = softmax_lse(z)
    torch.testing.assert_close(p, torch.softmax(z, 1))
    torch.testing.assert_close(lse, torch.logsumexp(z, 1, keepdim=True))
    torch.testing.assert_close(softmax(z), torch.softmax(z, 1))
    assert p.data_ptr() != z.data_ptr()  # a fresh tensor the losses may overwrite
