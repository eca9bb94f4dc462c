"""Kernel methods for bags: the set-kernel SVM, a classical MIL baseline."""

from ._set_kernel import SetKernelSVC, clique_weights, set_kernel

__all__ = ["SetKernelSVC", "clique_weights", "set_kernel"]
