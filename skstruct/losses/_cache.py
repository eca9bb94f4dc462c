"""A small identity cache for the structure tensors the functional losses take.

The functional losses (:func:`~skstruct.losses.conveyance_loss`,
:func:`~skstruct.losses.emd2_ground_loss`, ...) take a structure tensor (Q, a
distance matrix, a rank vector) on every call and must turn it into the form
their kernels read (column-major, diagonal set, a sparse index, a powered
cost table). Doing that per call would cost more than the loss itself at
large C, so the prepared form is cached here, keyed by

* the tensor's identity (``id`` plus a weak reference that must still point
  to the same object), and
* its version counter ``tensor._version``, which every in-place torch
  operation on the tensor (or on a view sharing its storage) increments,
  plus its data pointer, shape, strides, dtype and device,
* and the options that change the prepared form (e.g. ``omega``).

So an edited tensor is prepared again, and a dead tensor's entry can never be
returned for a new tensor that reuses its ``id``. One exception torch cannot
see: writes through a NumPy array that shares memory with the tensor
(``torch.from_numpy``) do not bump the version counter; build a new tensor
after such an edit. The cache holds at most ``_MAX_ENTRIES`` entries (least
recently used first out) and never holds the user's tensor itself, only a
weak reference to it.
"""

import threading
import weakref
from collections import OrderedDict

_MAX_ENTRIES = 32
_lock = threading.Lock()
_entries = OrderedDict()


def _fingerprint(tensor):
    return (
        tensor._version,
        tensor.data_ptr(),
        tuple(tensor.shape),
        tensor.stride(),
        tensor.dtype,
        tensor.device,
    )


def cached_prepare(tensor, options, prepare):
    """Return ``prepare()`` for ``tensor`` and ``options``, cached as described above.

    ``options`` must be hashable. Tensors without a version counter
    (inference-mode tensors) are prepared on every call.
    """
    try:
        fingerprint = _fingerprint(tensor)
        ref = weakref.ref(tensor)
    except (RuntimeError, TypeError):  # inference tensors track no version
        return prepare()
    key = (id(tensor), options)
    with _lock:
        hit = _entries.get(key)
        if hit is not None and hit[0]() is tensor and hit[1] == fingerprint:
            _entries.move_to_end(key)
            return hit[2]
    value = prepare()
    with _lock:
        _entries[key] = (ref, fingerprint, value)
        _entries.move_to_end(key)
        while len(_entries) > _MAX_ENTRIES:
            _entries.popitem(last=False)
    return value


def clear_cache():
    """Drop every cached entry (used by the tests)."""
    with _lock:
        _entries.clear()
