"""Helpers shared by the displays: matplotlib import, final estimator."""

from sklearn.utils.validation import check_is_fitted

from ..pipeline import _final_estimator_and_X


def _check_matplotlib(caller):
    """Import and return ``matplotlib.pyplot`` or raise a clear ImportError."""
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            f"{caller} requires matplotlib, which is not installed. Install it with "
            "`pip install matplotlib` (or `pip install 'skstruct[doc]'`)."
        ) from exc
    return plt


def _get_ax(ax, caller):
    """Return ``(figure, ax)``, creating a new figure when ``ax`` is None."""
    plt = _check_matplotlib(caller)
    if ax is None:
        _, ax = plt.subplots()
    return ax.figure, ax


def _final(estimator, X, caller):
    """The fitted final estimator of a (nested) pipeline and X transformed for it."""
    final, Xt = _final_estimator_and_X(estimator, X)
    check_is_fitted(final)
    return final, Xt


def _name(estimator, name):
    return type(estimator).__name__ if name is None else name
