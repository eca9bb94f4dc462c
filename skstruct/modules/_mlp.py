"""Feed-forward networks for feature vectors."""

import numbers

import torch
from torch import nn

_ACTIVATIONS = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
    "elu": nn.ELU,
    "leaky_relu": nn.LeakyReLU,
}


def activation_class(activation):
    """The ``nn.Module`` class of a named activation, or a ValueError naming it."""
    if activation not in _ACTIVATIONS:
        raise ValueError(
            f"activation={activation!r} is not supported; expected one of "
            f"{sorted(_ACTIVATIONS)}."
        )
    return _ACTIVATIONS[activation]


class MLP(nn.Module):
    """Multi-layer perceptron body: ``Linear -> activation -> dropout`` blocks.

    The body has no output layer; :class:`ClassifierNetwork` adds the head.
    With ``hidden_layer_sizes=()`` the body is the identity.

    Parameters
    ----------
    n_features : int
        Number of input features.
    hidden_layer_sizes : tuple of int, default=(100,)
        Width of each hidden layer.
    activation : {'relu', 'gelu', 'tanh', 'elu', 'leaky_relu'}, default='relu'
        Non-linearity after each hidden layer.
    dropout : float, default=0.0
        Dropout probability after each hidden layer.

    Attributes
    ----------
    n_outputs : int
        Width of the representation the body emits.

    Examples
    --------
    >>> import torch
    >>> from skstruct.modules import MLP
    >>> body = MLP(4, hidden_layer_sizes=(8,))
    >>> body(torch.zeros(2, 4)).shape
    torch.Size([2, 8])
    """

    def __init__(self, n_features, hidden_layer_sizes=(100,), activation="relu", dropout=0.0):
        super().__init__()
        act = activation_class(activation)
        sizes = tuple(hidden_layer_sizes)
        if not all(
            isinstance(s, numbers.Integral) and not isinstance(s, bool) and s >= 1 for s in sizes
        ):
            raise ValueError(
                f"hidden_layer_sizes must be a tuple of positive integers, got {sizes!r}; "
                "pass for example hidden_layer_sizes=(100,)."
            )
        layers = []
        width = int(n_features)
        for size in sizes:
            layers.append(nn.Linear(width, int(size)))
            layers.append(act())
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = int(size)
        self.layers = nn.Sequential(*layers)
        self.n_outputs = width

    def forward(self, X):
        return self.layers(X)


class ClassifierNetwork(nn.Module):
    """A body followed by one or more linear heads; returns logits.

    Parameters
    ----------
    body : torch.nn.Module
        Maps a batch of inputs to a ``(batch, n_hidden)`` representation.
    n_hidden : int
        Width of the body's output.
    n_outputs : int or tuple of int
        Number of logits of the head; a tuple builds one head per entry and the
        forward pass returns a tuple of logits tensors.

    Examples
    --------
    >>> import torch
    >>> from skstruct.modules import MLP, ClassifierNetwork
    >>> net = ClassifierNetwork(MLP(4, (8,)), 8, 3)
    >>> net(torch.zeros(2, 4)).shape
    torch.Size([2, 3])
    """

    def __init__(self, body, n_hidden, n_outputs):
        super().__init__()
        self.body = body
        self._multi_head = isinstance(n_outputs, (tuple, list))
        sizes = tuple(n_outputs) if self._multi_head else (n_outputs,)
        self.heads = nn.ModuleList(nn.Linear(int(n_hidden), int(k)) for k in sizes)

    def forward(self, X):
        hidden = self.body(X)
        if hidden.ndim > 2:
            hidden = hidden.flatten(1)
        if self._multi_head:
            return tuple(head(hidden) for head in self.heads)
        return self.heads[0](hidden)


def reset_parameters(module):
    """Re-initialise every submodule that defines ``reset_parameters``."""
    for submodule in module.modules():
        reset = getattr(submodule, "reset_parameters", None)
        if callable(reset):
            reset()
    return module


@torch.no_grad()
def infer_output_width(body, example):
    """Width of ``body``'s flattened output on an example batch."""
    was_training = body.training
    body.eval()
    try:
        out = body(example)
    finally:
        body.train(was_training)
    if isinstance(out, (tuple, list)):
        raise TypeError(
            "module must return a single tensor of features, got a "
            f"{type(out).__name__}; wrap it so that forward returns one tensor."
        )
    return int(out[0].numel()) if out.ndim >= 2 else 1
