"""skorch callbacks used by the skstruct estimators.

Settings live in the constructor; state learnt during training ends in ``_``
and is reset in ``on_train_begin``, as skorch's own callbacks do.
"""

import math

from skorch.callbacks import Callback
from skorch.history import History

from .exceptions import TrainingError

__all__ = ["L1Penalty", "NonFiniteLossGuard"]


class NonFiniteLossGuard(Callback):
    """Stop training with a clear error as soon as a batch loss is NaN or inf.

    skorch has already turned the batch loss into a Python float for its
    history, so this check adds no device synchronisation.
    """

    def on_batch_end(self, net, batch=None, training=None, **kwargs):
        key = "train_loss" if training else "valid_loss"
        history = net.history
        if type(history) is History:  # the record just written, without index parsing
            value = list.__getitem__(history, -1)["batches"][-1][key]
        else:
            value = history[-1, "batches", -1, key]
        if not math.isfinite(value):
            epoch = len(net.history)
            raise TrainingError(
                f"The {'training' if training else 'validation'} loss became "
                f"{value} in epoch {epoch}. Training diverged: lower `lr`, scale "
                "the features (e.g. StandardScaler), or lower `beta`/`alpha` of "
                "the loss."
            )


class L1Penalty(Callback):
    """Add ``strength * sign(w)`` to the gradient of every weight matrix.

    This is the subgradient of ``strength * sum |w|`` over the weights
    (biases excluded), i.e. an L1 penalty applied without touching the loss
    function, so the reported loss stays the structure-aware loss alone.

    Parameters
    ----------
    strength : float
        Penalty coefficient (``0`` disables it).
    """

    def __init__(self, strength):
        self.strength = strength

    def on_grad_computed(self, net, named_parameters, **kwargs):
        if self.strength == 0:
            return
        for _, param in named_parameters:
            if param.grad is not None and param.ndim > 1:
                param.grad.add_(param.detach().sign(), alpha=self.strength)
