"""The fused kernels' two input forms, checked against each other in one place.

``kernel_exp`` hands a kernel either the softmax with ``inverse`` all ones or
``exp(z - max z)`` with ``inverse = 1 / its sum``; the kernel must give the
same loss and gradient from both, compiled and as plain Python.
"""

import numpy as np
import pytest
import torch


def assert_kernel_forms_agree(kernel, logits, call):
    """Run ``kernel`` and ``kernel.py_func`` on both forms of ``softmax(logits)``.

    ``call(version, p, inverse, loss)`` runs one version on the (B, C) tensor
    ``p`` and the float64 ndarray ``inverse``, writing per-row losses into
    ``loss``, and returns ``(status, total)``. Asserts status 0 and that the
    four runs agree (losses and gradients to 1e-12); returns the first run's
    ``(loss, total, gradient)``.
    """
    outputs = []
    for version in (kernel, kernel.py_func):
        for unnormalised in (False, True):
            p = torch.softmax(logits, 1)
            inverse = np.ones(logits.shape[0])
            if unnormalised:
                p = torch.exp(logits - logits.amax(1, keepdim=True))
                inverse = 1.0 / p.sum(1).numpy()
            loss = torch.empty(logits.shape[0], dtype=logits.dtype)
            status, total = call(version, p, inverse, loss)
            assert status == 0
            outputs.append((loss, total, p))
    for other in outputs[1:]:
        torch.testing.assert_close(outputs[0][0], other[0], rtol=1e-13, atol=0)
        assert outputs[0][1] == pytest.approx(other[1], rel=1e-13)
        torch.testing.assert_close(outputs[0][2], other[2], rtol=1e-12, atol=1e-15)
    return outputs[0]
