"""The one import site of skorch's private API.

The training engine (``skstruct/_net.py``, ``skstruct/_base.py``) reaches
into a few skorch internals: the attribute lists ``_optimizers``,
``_modules`` and ``_criteria`` that ``initialize`` fills, the
``_zero_grad_optimizer`` and ``_set_training`` methods, the ``initialized_``
flag, and helpers that skorch does not document (``TeeGenerator``,
``unpack_data``). Every use goes through this module, so a skorch release
that changes one has exactly one place to fix; ``tests/test_compat.py``
checks each name against the installed skorch and fails naming it.

``_SkstructNet`` also overrides ``_set_training`` (skorch calls it on every
batch), ``fit_loop`` and ``notify``; the test checks that skorch still calls
them that way.
"""

from skorch import NeuralNet
from skorch.dataset import unpack_data  # noqa: F401
from skorch.utils import TeeGenerator  # noqa: F401

__all__ = [
    "TeeGenerator",
    "is_initialized",
    "optimizers",
    "set_training_all",
    "training_modules",
    "unpack_data",
    "zero_grad_optimizers",
]


def zero_grad_optimizers(net):
    """Zero the gradients of every optimizer of ``net`` (skorch's ``_zero_grad_optimizer``)."""
    net._zero_grad_optimizer()


def optimizers(net):
    """The initialised optimizers of ``net`` (``net.<name>_`` for ``net._optimizers``)."""
    return [getattr(net, name + "_") for name in net._optimizers]


def training_modules(net):
    """The initialised modules and criteria of ``net`` (``_modules + _criteria``)."""
    return [getattr(net, name + "_") for name in net._modules + net._criteria]


def set_training_all(net, training):
    """skorch's own ``_set_training``: ``train(training)`` on every module and criterion."""
    NeuralNet._set_training(net, training)


def is_initialized(net):
    """Whether ``net.initialize()`` has run (skorch's ``initialized_`` flag)."""
    return bool(getattr(net, "initialized_", False))
