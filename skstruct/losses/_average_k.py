"""Average-K two-head loss: softmax CE plus pseudo-labelled BCE (Garcin et al., WACV 2025)."""

import math
from numbers import Real

import torch
import torch.nn.functional as F
from torch import nn

from ._conveyance import _check_weight, _upcast
from ._reduction import check_logits_target, check_reduction, check_target_range, reduce_loss

__all__ = ["AverageKLoss", "average_k_loss"]


def _check_k(k):
    """Return ``k`` as a float if it is a finite real number >= 1, else raise."""
    if isinstance(k, bool) or not isinstance(k, Real):
        raise TypeError(f"k must be a real number with 1 <= k < n_classes, got {k!r}.")
    k = float(k)
    if not (math.isfinite(k) and k >= 1):
        raise ValueError(
            f"k must satisfy 1 <= k < n_classes (the average set size), got k={k!r}."
        )
    return k


def _n_pseudo_positives(k, n_samples):
    """``floor((k - 1) * n_samples)``, robust to rounding (k=1.15, 100 -> 15)."""
    return int(math.floor((k - 1.0) * n_samples + 1e-9))


def average_k_loss(
    logits_softmax, logits_multilabel, target, *, k, alpha=1.0, reduction="mean"
):
    r"""Average-K loss of a two-head network: softmax CE plus pseudo-labelled BCE.

    The softmax head is trained with cross-entropy. The multi-label head is
    trained with binary cross-entropy against pseudo-labels built from the
    whole batch: every true label is positive, and so are the
    ``m = floor((k - 1) * n_samples)`` cells of the batch with the largest
    (detached) softmax probabilities among the non-true cells, so that the
    positive sets have size ``k`` on average. Calibrating a threshold on the
    multi-label scores then yields sets of average size ``k``.

    Parameters
    ----------
    logits_softmax : torch.Tensor of shape (n_samples, n_classes)
        Logits of the softmax head. float16 and bfloat16 are computed in
        float32.
    logits_multilabel : torch.Tensor of shape (n_samples, n_classes)
        Logits of the multi-label (sigmoid) head.
    target : torch.Tensor of shape (n_samples,)
        Integer column indices of the true labels.
    k : float
        Average set size, ``1 <= k < n_classes``; may be fractional. ``k = 1``
        selects no pseudo-positives.
    alpha : float, default=1.0
        Weight (> 0) of the pseudo-positive and negative BCE terms (tuned in
        [0.1, 10] in the paper).
    reduction : {'mean', 'sum', 'none'}, default='mean'
        ``'mean'`` gives the loss below; ``'sum'`` is ``n_samples`` times it;
        ``'none'`` returns the (n_samples,) per-sample terms whose mean is the
        ``'mean'`` result. The pseudo-labels depend on the whole batch, so a
        per-sample term is not the loss of that sample alone.

    Returns
    -------
    loss : torch.Tensor
        A scalar, or shape (n_samples,) when ``reduction='none'``; float32
        (float64 for float64 logits).

    Raises
    ------
    ValueError
        If ``k`` is not in ``[1, n_classes)``, or the two heads' shapes differ.

    See Also
    --------
    AverageKLoss : The module form, taking the two heads as one tuple.

    Notes
    -----
    With ``B`` the batch, ``P`` the pseudo-positive cells (no gradient flows
    through their selection), ``N`` every other cell off the true labels,
    ``f`` the multi-label logits and ``sigma`` the sigmoid:

    .. math::

        \ell = \frac{1}{|B|}\sum_i \mathrm{CE}(z_i, y_i)
             - \frac{1}{|B|}\sum_i \log\sigma(f_{i y_i})
             - \frac{\alpha}{(k-1)|B|}\sum_{(i,j) \in P} \log\sigma(f_{ij})
             - \frac{\alpha}{(C-k)|B|}\sum_{(i,j) \in N} \log(1 - \sigma(f_{ij}))

    computed with ``softplus(-f) = -log sigma(f)`` and
    ``softplus(f) = -log(1 - sigma(f))``. The softmax head's gradient is
    exactly the cross-entropy gradient. Ties among equal probabilities are
    broken by ``torch.topk``. Cost: O(n_samples * n_classes) plus a top-m
    selection over the batch.

    References
    ----------
    .. [1] Garcin, Servajean, Joly, Salmon. "A two-head loss function for deep
       Average-K classification". WACV 2025.

    Examples
    --------
    >>> import torch
    >>> from skstruct.losses import average_k_loss
    >>> logits_softmax = torch.tensor([[2.0, 1.0, 0.0], [0.0, 1.5, 1.0]])
    >>> logits_multilabel = torch.tensor([[1.0, 0.5, -1.0], [-1.0, 1.0, 0.5]])
    >>> average_k_loss(logits_softmax, logits_multilabel, torch.tensor([0, 1]), k=1.5)
    tensor(1.8267)
    """
    check_logits_target(logits_softmax, target, name="logits_softmax")
    check_logits_target(logits_multilabel, target, name="logits_multilabel")
    if logits_multilabel.shape != logits_softmax.shape:
        raise ValueError(
            "logits_multilabel must have the shape of logits_softmax "
            f"{tuple(logits_softmax.shape)}, got {tuple(logits_multilabel.shape)}."
        )
    check_reduction(reduction)
    alpha = _check_weight(alpha, "alpha")
    k = _check_k(k)
    n_samples, n_classes = logits_softmax.shape
    if not k < n_classes:
        raise ValueError(
            f"k must satisfy 1 <= k < n_classes={n_classes}, got k={k!r}; an "
            "average set of every class is trivial."
        )
    check_target_range(target, n_classes)
    n_pseudo = _n_pseudo_positives(k, n_samples)
    if n_pseudo > n_samples * (n_classes - 1):  # unreachable when k < n_classes
        raise ValueError(
            f"k={k!r} asks for {n_pseudo} pseudo-positive cells but the batch "
            f"has only {n_samples * (n_classes - 1)} cells off the true labels."
        )

    z = _upcast(logits_softmax)
    f = _upcast(logits_multilabel)
    target = target.long()
    t = target[:, None]

    true_cell = torch.zeros(z.shape, dtype=torch.bool, device=z.device).scatter_(1, t, True)
    pseudo = torch.zeros_like(true_cell)
    if n_pseudo > 0:
        with torch.no_grad():
            # probabilities >= 0, so -1 keeps the true cells out of the top m
            proba = torch.softmax(z.detach(), 1).scatter_(1, t, -1.0)
            top = proba.view(-1).topk(n_pseudo, sorted=False).indices
        pseudo.view(-1)[top] = True
    negative = ~(true_cell | pseudo)

    minus_log_sigmoid = F.softplus(-f)  # -log sigmoid(f)
    minus_log_one_minus_sigmoid = F.softplus(f)  # -log(1 - sigmoid(f))
    per_sample = (
        F.cross_entropy(z, target, reduction="none")
        + minus_log_sigmoid.gather(1, t)[:, 0]
        + alpha / (n_classes - k)
        * torch.where(negative, minus_log_one_minus_sigmoid, 0.0).sum(1)
    )
    if n_pseudo > 0:
        per_sample = per_sample + alpha / (k - 1.0) * torch.where(
            pseudo, minus_log_sigmoid, 0.0
        ).sum(1)
    return reduce_loss(per_sample, reduction)


class AverageKLoss(nn.Module):
    """Average-K two-head loss as a module.

    See :func:`average_k_loss` for the formula and shapes. ``forward`` takes
    the two-head network's output, a ``(logits_softmax, logits_multilabel)``
    tuple, so the module can serve as a criterion directly.

    Parameters
    ----------
    k : float
        Average set size, ``1 <= k < n_classes`` (the upper bound is checked
        on the first call, when the number of classes is known).
    alpha : float, default=1.0
        Weight (> 0) of the pseudo-positive and negative BCE terms.
    reduction : {'mean', 'sum', 'none'}, default='mean'
        Reduction over the batch.

    See Also
    --------
    average_k_loss : The functional form.

    Examples
    --------
    >>> import torch
    >>> from skstruct.losses import AverageKLoss
    >>> criterion = AverageKLoss(k=1.5)
    >>> criterion
    AverageKLoss(k=1.5, alpha=1.0, reduction='mean')
    >>> output = (torch.tensor([[2.0, 1.0, 0.0], [0.0, 1.5, 1.0]]),
    ...           torch.tensor([[1.0, 0.5, -1.0], [-1.0, 1.0, 0.5]]))
    >>> criterion(output, torch.tensor([0, 1]))
    tensor(1.8267)
    """

    def __init__(self, k, *, alpha=1.0, reduction="mean"):
        super().__init__()
        self.k = _check_k(k)
        self.alpha = _check_weight(alpha, "alpha")
        self.reduction = check_reduction(reduction)

    def extra_repr(self):
        return f"k={self.k}, alpha={self.alpha}, reduction={self.reduction!r}"

    def forward(self, output, target):
        """Return the loss of a two-head output against ``target``.

        Parameters
        ----------
        output : tuple of torch.Tensor
            ``(logits_softmax, logits_multilabel)``, each of shape
            (n_samples, n_classes).
        target : torch.Tensor of shape (n_samples,)
            Integer class indices.

        Returns
        -------
        loss : torch.Tensor
            A scalar, or shape (n_samples,) when ``reduction='none'``.
        """
        if not isinstance(output, (tuple, list)) or len(output) != 2:
            raise TypeError(
                "output must be the (logits_softmax, logits_multilabel) pair of a "
                f"two-head network, got {type(output).__name__}."
            )
        logits_softmax, logits_multilabel = output
        return average_k_loss(
            logits_softmax,
            logits_multilabel,
            target,
            k=self.k,
            alpha=self.alpha,
            reduction=self.reduction,
        )
