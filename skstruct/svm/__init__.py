"""Kernel methods for bags: the set-kernel SVM, a classical MIL baseline."""

from ._set_kernel import SetKernelSVC, set_kernel

__all__ = ["SetKernelSVC", "set_kernel"]
