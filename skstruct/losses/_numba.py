"""Fused CPU kernels for the losses, compiled by numba when it is installed.

On the CPU, eager PyTorch runs each loss as a chain of torch calls: a
softmax, then gathers, scatters and a dozen small (B, 1) operations, each
costing a few microseconds of dispatch, and then as many again in the hand
written backward. Cross-entropy is one fused kernel per direction. A loss
whose gradient is a per-row coefficient times the softmax (plus a few
corrections) can do better than that chain: one compiled loop per row that
computes the loss *and* its gradient while the row is in cache. This module
holds the shared machinery of such kernels; each loss module writes its own
kernel next to its eager form (the two are tested against each other and
against the float64 formula).

* :func:`jit` compiles a kernel with numba on its first call (``nogil``,
  ``cache=True``, IEEE division (``error_model='numpy'``: x / 0 is inf or
  NaN, as in torch, not a ZeroDivisionError) and only the fast-math flags
  that keep infinities and NaNs exact: reassociation, for vectorised sums,
  and contraction to fused multiply-adds).
* :func:`fused_available` says whether a batch can take a kernel: numba
  importable and not switched off (``SKSTRUCT_NUMBA=0`` in the
  environment), CPU float32 / float64 logits, no tracing or compiling and
  no torch function or dispatch mode in use (a kernel works on the tensors'
  memory, so fake or functional tensors must take the eager path; a mode
  that only watches real tensors may set ``allows_fused_kernels``), no
  torch.func wrapper, and not inside :func:`eager_only`.
* :func:`kernel_exp` gives the kernels their softmax: ``e`` and ``inverse``
  with ``softmax(z) = e * inverse[:, None]``; for float32 rows of 500
  classes or more in batches of 32,768 cells or more ``e = exp(z - max z)``
  by a vectorised polynomial (faster than torch's softmax there, and the
  kernels fold ``inverse`` into their own passes).
* :func:`fused_loss` runs a kernel and builds the autograd node,
  :class:`FusedLoss`. The kernel writes d loss_b / d z into a fresh (B, C)
  buffer (``e``, updated in place; for ``reduction='mean'`` already divided
  by B), and the node hands that buffer over as the gradient in its first
  backward (scaled in place by the incoming gradient, a no-op for the usual
  ``loss.backward()``), so forward + backward allocate one (B, C) tensor
  where cross-entropy allocates three. A second backward through the same
  graph (``retain_graph=True``) recomputes the buffer from the saved logits.

numba is an optional dependency (``pip install skstruct[fast]``): without
it, and on every other device, the eager torch forms run, with the same
values and gradients to rounding.
"""

import contextlib
import functools
import math
import os
import threading

import numpy as np
import torch
from torch.utils._python_dispatch import _get_current_dispatch_mode

from ._reduction import softmax

__all__ = [
    "FusedLoss",
    "eager_only",
    "fused_available",
    "fused_loss",
    "jit",
    "kernel_exp",
    "numba_available",
]

# reassoc: sums may be vectorised; contract: a * b + c may be one FMA.
# Not 'nnan' / 'ninf' / 'fast': the kernels must keep inf and NaN exact.
_FASTMATH = {"reassoc", "contract"}


@functools.lru_cache(maxsize=1)
def _numba():
    """The numba module, or None when it is missing, broken or switched off."""
    if os.environ.get("SKSTRUCT_NUMBA", "1").strip().lower() in ("0", "false", "no", "off"):
        return None
    try:
        import numba
    except Exception:  # ImportError, or numba refusing this NumPy version
        return None
    return numba


_state = threading.local()


@contextlib.contextmanager
def eager_only():
    """Within the block (this thread), every loss takes its eager torch path.

    For tests and benchmarks that compare the two paths in one process.
    """
    previous = getattr(_state, "eager", False)
    _state.eager = True
    try:
        yield
    finally:
        _state.eager = previous


def numba_available():
    """Whether the fused CPU kernels can run (numba importable, not switched off)."""
    return _numba() is not None


def jit(function):
    """Compile ``function`` with numba on first call; the plain function without numba."""
    compiled = None

    @functools.wraps(function)
    def call(*args):
        nonlocal compiled
        if compiled is None:
            numba = _numba()
            compiled = (
                function
                if numba is None
                else numba.njit(
                    nogil=True, cache=True, fastmath=_FASTMATH, error_model="numpy"
                )(function)
            )
        return compiled(*args)

    call.py_func = function
    return call


def fused_available(z):
    """Whether logits ``z`` can take a fused CPU kernel (see the module docstring)."""
    if (
        z.device.type != "cpu"
        or z.dtype not in (torch.float32, torch.float64)
        or z.shape[0] == 0
        or z.shape[1] == 0
        or not numba_available()
        or getattr(_state, "eager", False)
    ):
        return False
    if torch.compiler.is_compiling() or torch.jit.is_tracing() or _is_wrapped(z):
        return False
    # A mode (FakeTensorMode, functionalisation, a device context) must see
    # every op; a kernel's writes through NumPy bypass it. A dispatch mode
    # that only watches real tensors (a memory meter) may say so with a true
    # ``allows_fused_kernels`` attribute.
    if torch._C._is_torch_function_mode_enabled():
        return False
    mode = _get_current_dispatch_mode()
    return mode is None or getattr(mode, "allows_fused_kernels", False)


def _is_wrapped(z):
    """Whether ``z`` is a torch.func (vmap / grad) wrapper, which has no NumPy view."""
    check = getattr(torch._C._functorch, "is_functorch_wrapped_tensor", None)
    return check is not None and check(z)


@jit
def _softmax_kernel(z, p):
    """``p = softmax(z)`` row by row (scalar ``exp``: for small batches only)."""
    n_rows, n_classes = z.shape
    for b in range(n_rows):
        m = z[b, 0]
        for k in range(1, n_classes):
            m = max(m, z[b, k])
        total = 0.0
        for k in range(n_classes):
            e = np.exp(z[b, k] - m)
            p[b, k] = e
            total += e
        inverse = 1.0 / total
        for k in range(n_classes):
            p[b, k] *= inverse


# numba's exp is scalar here (no vector math library): about 5 ns a logit,
# against torch's vectorised exp at about 1 ns but 4 calls of a few
# microseconds each below 16 classes (skstruct.losses._reduction.softmax).
# So the kernel's softmax pays for small batches of few classes only.
_KERNEL_SOFTMAX_MAX_CLASSES = 15
_KERNEL_SOFTMAX_MAX_CELLS = 4096


# Cody-Waite split of log(2) for float32 (the high part has 12 significant
# bits, so n * _LN2_HI_F32 is exact for |n| < 2^12) and the minimax
# polynomial of exp on [-log(2) / 2, log(2) / 2] (Cephes' expf, relative error
# below 2e-7).
_LN2_HI_F32 = np.float32(0.693359375)
_LN2_LO_F32 = np.float32(-2.12194440e-4)
_LOG2E_F32 = np.float32(1.44269504)
_EXPF_POLY = tuple(np.float32(c) for c in (
    1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1,
    5.0000001201e-1,
))
# Below this argument exp is left 0 (torch keeps subnormals down to about
# -103.9: the difference is below 1.2e-38, an absolute error).
_EXPF_FLOOR = np.float32(-87.0)


@jit
def _exp_rows_f32(z, high, e, inverse):
    """``e = exp(z - high)`` and ``inverse = 1 / e.sum(1)`` for float32 ``z`` (B, C).

    ``high`` (B,) holds the row maxima, so that ``softmax(z) = e * inverse``.
    ``exp(x)``, ``x <= 0``, as ``2^n exp(r)`` with ``n = round(x / log 2)``
    and ``|r| <= log(2) / 2``: the polynomial of ``_EXPF_POLY`` times ``2^n``
    built in the exponent bits, branch-free so that the row loop vectorises
    (about 0.3 ns a logit, where torch's softmax takes 0.6 to 1 ns for its
    three passes at C = 100 to 1,000). A row whose maximum is NaN or infinite
    gets NaN, as from torch's softmax (every ``x`` is then NaN, or -inf and
    one NaN: ``e`` is 0 and ``inverse`` is set to NaN); a ``-inf`` logit
    gets 0.
    """
    n_rows, n_classes = z.shape
    c0, c1, c2, c3, c4, c5 = _EXPF_POLY
    for b in range(n_rows):
        row = z[b]
        out = e[b]
        top = high[b]
        total = np.float32(0.0)
        for k in range(n_classes):
            x = row[k] - top
            v = x if x > _EXPF_FLOOR else _EXPF_FLOOR
            n = np.float32(np.int32(v * _LOG2E_F32 - np.float32(0.5)))  # round, v <= 0
            r = (v - n * _LN2_HI_F32) - n * _LN2_LO_F32
            y = ((((c0 * r + c1) * r + c2) * r + c3) * r + c4) * r + c5
            y = y * r * r + r + np.float32(1.0)
            value = y * np.int32((np.int32(n) + np.int32(127)) << np.int32(23)).view(np.float32)
            value = value if x > _EXPF_FLOOR else np.float32(0.0)
            out[k] = value
            total += value
        inverse[b] = 1.0 / np.float64(total)
        if not total > 0.0:  # NaN (or an empty sum): NaN, as torch's softmax
            inverse[b] = math.nan


# The kernel's exponential pays for long rows in large batches: a whole loss
# (forward + backward, one thread) took 0.96-0.98 of the time with torch's
# softmax at B = 64, C = 1,000, about 0.85 at B = 512, C = 1,000, the same at
# B = 512, C = 100 and 1.02-1.05 at B = 128, C = 100 to 300.
_KERNEL_EXP_MIN_CLASSES = 500
_KERNEL_EXP_MIN_CELLS = 32768


def kernel_exp(z):
    """``(e, inverse)`` with ``softmax(z, 1) = e * inverse[:, None]``: the kernels' softmax.

    ``e`` is a fresh (B, C) tensor of the logits' dtype (the kernels overwrite
    it with their gradient), ``inverse`` a float64 ndarray (B,). Unnormalised
    (``exp(z - max z)``, ``inverse = 1 / sum``) from :func:`_exp_rows_f32` for
    float32 rows of ``_KERNEL_EXP_MIN_CLASSES`` classes or more in batches of
    ``_KERNEL_EXP_MIN_CELLS`` cells or more (the kernels fold ``inverse``
    into their own passes: no normalising pass); otherwise the softmax itself
    (numba's scalar loop for few classes and cells, else torch's) with
    ``inverse`` all ones (a shared array: read it, never write it).
    """
    n_rows, n_classes = z.shape
    if n_classes <= _KERNEL_SOFTMAX_MAX_CLASSES and n_rows * n_classes <= _KERNEL_SOFTMAX_MAX_CELLS:
        z = z.contiguous()
        p = torch.empty_like(z)
        _softmax_kernel(z.numpy(), p.numpy())
        return p, _ones(n_rows)
    if (
        z.dtype == torch.float32
        and n_classes >= _KERNEL_EXP_MIN_CLASSES
        and n_rows * n_classes >= _KERNEL_EXP_MIN_CELLS
    ):
        z = z.contiguous()
        e = torch.empty_like(z)
        inverse = np.empty(n_rows)
        _exp_rows_f32(z.numpy(), z.amax(1).numpy(), e.numpy(), inverse)
        return e, inverse
    return softmax(z), _ones(n_rows)


_ONES = np.ones(1024)


def _ones(n):
    """A float64 array of ``n`` ones, shared (read only by the kernels: never write to it)."""
    global _ONES
    if _ONES.shape[0] < n:
        _ONES = np.ones(n)
    return _ONES[:n]


def fused_loss(z, run, reduction):
    """The reduced loss of ``run``'s kernel, or ``None`` when the kernel declines.

    ``run(z, scale)`` (``z`` detached) returns ``(per_sample, total, grad)`` as
    :class:`FusedLoss` describes, or ``None`` when the batch must take the
    eager path (for example a probability that underflows); it runs once
    here, and again only for a second backward.
    """
    scale = 1.0 / z.shape[0] if reduction == "mean" else 1.0
    result = run(z.detach(), scale)
    if result is None:
        return None
    return FusedLoss.apply(run, reduction, scale, result, z)


def _hand_over(ctx, grad_output):
    """:meth:`FusedLoss.backward`: the kernel's gradients, times ``grad_output``."""
    run, reduction, scale = ctx.fused
    grads = ctx.grads
    if grads is None:  # a second backward through a retained graph
        grads = run(*(x.detach() for x in ctx.saved_tensors), scale)[2:]
    ctx.grads = None  # handed over: the caller may now own and edit them
    # float(): a 0-d CPU tensor, no device sync; 1.0 for the usual loss.backward()
    if reduction == "none" or float(grad_output) != 1.0:
        factor = grad_output[:, None] if reduction == "none" else grad_output
        needed = ctx.needs_input_grad[4:]
        grads = [grad.mul_(factor) if need else None for grad, need in zip(grads, needed)]
    # (autograd ignores a gradient for an input that does not require one)
    return (None, None, None, None, *grads)


_hand_over_once = torch.autograd.function.once_differentiable(_hand_over)


class FusedLoss(torch.autograd.Function):
    """The reduced loss of a fused kernel, with the kernel's gradients handed to backward.

    ``FusedLoss.apply(run, reduction, scale, result, *inputs)``, called
    through :func:`fused_loss` for the logits alone (Average-K passes its
    two heads). ``run(*inputs, scale)`` returns ``result = (per_sample,
    total, *grads)`` with ``per_sample`` (B,), ``total`` its sum (a float,
    summed by the kernel in float64) and one gradient per input holding
    ``scale * d per_sample[b] / d input[b]``; the tensors are fresh and
    nobody else holds them. The reduction (``'mean'``, ``'sum'`` or
    ``'none'``) is applied here; for ``'mean'`` the kernel scales its
    gradients by 1 / B as it writes them, so that the usual
    ``loss.backward()`` costs no pass at all.
    """

    @staticmethod
    def forward(ctx, run, reduction, scale, result, *inputs):
        # A Function costs about 35 us a forward + backward in Python, so
        # this one does little: one tuple on ctx, the inputs saved (version
        # checked, released after backward), no once_differentiable wrapper
        # unless the backward builds a graph (below): 11-22 us less than the
        # general form, and about as fast as torch's own dot node, which the
        # smallest batches used to take (torch 2.13, one thread).
        ctx.fused = (run, reduction, scale)
        ctx.grads = result[2:]
        ctx.save_for_backward(*inputs)
        if reduction == "none":
            return result[0]
        # A 0-d tensor from the kernel's sum: cheaper than a torch reduction.
        return torch.scalar_tensor(result[1] * scale, dtype=result[0].dtype)

    @staticmethod
    def backward(ctx, grad_output):
        if torch.is_grad_enabled():
            # create_graph=True: the handed-over gradients have no graph of
            # their own, so differentiating them must raise, as
            # once_differentiable makes it.
            return _hand_over_once(ctx, grad_output)
        return _hand_over(ctx, grad_output)
