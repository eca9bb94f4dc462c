"""L-BFGS with an L2 penalty, for full-batch convex training.

torch's :class:`torch.optim.LBFGS` takes no ``weight_decay``. Adam's
(coupled) weight decay adds ``weight_decay * p`` to every gradient, which is
the gradient of ``weight_decay / 2 * ||p||^2``. Here the same penalty is
added inside the closure, to the loss *and* to the gradients, so that the
line search sees one consistent objective::

    f(p) = closure(p) + weight_decay / 2 * sum ||W||^2

over the weight matrices ``W`` (the parameters of two or more dimensions):
biases, scalars such as a kernel width and other vectors are not
penalised, as scikit-learn's logistic regression leaves its intercept
unpenalised (a penalised bias shifts the decision threshold of a model
trained on few samples).

Adding it to the gradients alone (as a callback would) would break the
strong-Wolfe line search, which compares loss values.
"""

import torch


class PenalisedLBFGS(torch.optim.LBFGS):
    """torch's L-BFGS on ``loss + weight_decay / 2 * ||weights||^2``.

    The defaults differ from torch's in one place: the strong-Wolfe line
    search is on (``line_search_fn='strong_wolfe'``), so that ``lr=1.0``
    is safe on any problem scale.

    Parameters
    ----------
    params : iterable
        Parameters to optimise (one parameter group, as for torch's L-BFGS).
    lr : float, default=1.0
        Step length of the line search's first trial step.
    max_iter : int, default=20
        L-BFGS iterations per :meth:`step` (an epoch of the estimator).
    max_eval : int or None, default=None
        Closure evaluations per step (``None``: ``max_iter * 1.25``).
    tolerance_grad : float, default=1e-6
        A step stops when the largest absolute gradient entry falls below this.
    tolerance_change : float, default=1e-9
        A step stops when the loss or the parameters change less than this.
    history_size : int, default=20
        Curvature pairs kept.
    line_search_fn : {'strong_wolfe'} or None, default='strong_wolfe'
        The line search.
    weight_decay : float, default=0.0
        Weight of the L2 penalty ``weight_decay / 2 * ||W||^2`` on every
        parameter ``W`` of two or more dimensions (the penalty whose gradient
        Adam's ``weight_decay`` adds); biases and other vectors are not
        penalised.

    Examples
    --------
    >>> import torch
    >>> from skstruct._lbfgs import PenalisedLBFGS
    >>> w = torch.zeros(1, 3, requires_grad=True)
    >>> b = torch.zeros(1, requires_grad=True)
    >>> opt = PenalisedLBFGS([w, b], weight_decay=1.0)
    >>> def closure():
    ...     opt.zero_grad()
    ...     loss = ((w - 1).square().sum() + (b - 1).square().sum()) / 2
    ...     loss.backward()
    ...     return loss
    >>> _ = opt.step(closure)
    >>> w.detach(), b.detach()  # argmin of (w - 1)^2 / 2 + w^2 / 2; b unpenalised
    (tensor([[0.5000, 0.5000, 0.5000]]), tensor([1.0000]))
    """

    def __init__(
        self,
        params,
        lr=1.0,
        max_iter=20,
        max_eval=None,
        tolerance_grad=1e-6,
        tolerance_change=1e-9,
        history_size=20,
        line_search_fn="strong_wolfe",
        weight_decay=0.0,
    ):
        if not weight_decay >= 0:
            raise ValueError(f"weight_decay must be >= 0, got {weight_decay!r}.")
        super().__init__(
            params,
            lr=lr,
            max_iter=max_iter,
            max_eval=max_eval,
            tolerance_grad=tolerance_grad,
            tolerance_change=tolerance_change,
            history_size=history_size,
            line_search_fn=line_search_fn,
        )
        self.weight_decay = float(weight_decay)

    def step(self, closure):
        """One L-BFGS step (up to ``max_iter`` iterations) on the penalised loss.

        Parameters
        ----------
        closure : callable
            Clears the gradients, computes the loss, calls ``backward`` and
            returns the loss (without the penalty).

        Returns
        -------
        loss : torch.Tensor
            The penalised loss at the start of the step.
        """
        decay = self.weight_decay
        if not decay:
            return super().step(closure)
        params = [p for p in self._params if p.ndim >= 2]

        def penalised():
            loss = closure()
            with torch.no_grad():
                penalty = sum(p.square().sum() for p in params) * (decay / 2)
                for p in params:
                    if p.grad is not None:
                        p.grad.add_(p, alpha=decay)
            return loss + penalty

        return super().step(penalised)
