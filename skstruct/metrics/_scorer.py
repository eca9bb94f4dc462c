"""Scorers that read the fitted structure, and skstruct's scorer registry.

sklearn's ``make_scorer`` fixes every metric argument when the scorer is
built. Structure-aware metrics need the *fitted* ``structure_`` (and
``classes_``) of the estimator being scored, which differ between folds and
grid points, so :func:`make_structure_scorer` builds an sklearn ``_Scorer``
whose ``_score`` looks them up on the final step (through pipelines) and
passes them as keyword arguments. Set metrics call ``predict_set`` through
pipelines the same way. skstruct never writes into sklearn's scorer registry:
:func:`get_scorer` looks up skstruct's names first, then sklearn's.
"""

import copy

from sklearn.metrics import get_scorer as _sk_get_scorer
from sklearn.metrics import get_scorer_names as _sk_get_scorer_names

from ..pipeline import _final_estimator_and_X
from ..utils._sklearn_compat import _Scorer, scorer_fields

__all__ = ["get_scorer", "get_scorer_names", "make_structure_scorer"]

_SCORERS = {}


class _StructureScorer(_Scorer):
    def __init__(self, score_func, sign, kwargs, response_method, structure_kwarg, classes_kwarg):
        super().__init__(score_func, sign, kwargs, response_method)
        self._structure_kwarg = structure_kwarg
        self._classes_kwarg = classes_kwarg

    def _score(self, method_caller, estimator, X, y_true, **kwargs):
        score_func, sign, fixed_kwargs, response_method = scorer_fields(self)
        final, Xt = _final_estimator_and_X(estimator, X)
        methods = (
            [response_method] if isinstance(response_method, str) else list(response_method)
        )
        available = [m for m in methods if hasattr(final, m)]
        if not available:
            raise AttributeError(
                f"{type(final).__name__} has none of the methods {methods} that "
                f"this scorer needs."
            )
        y_pred = getattr(final, available[0])(Xt)
        fitted = {}
        if self._structure_kwarg is not None:
            structure = getattr(final, "structure_", None)
            if structure is None:
                raise ValueError(
                    f"{self!r} needs a fitted class structure, but "
                    f"{type(final).__name__}.structure_ is None; fit with a "
                    "class_structure."
                )
            fitted[self._structure_kwarg] = structure
        if self._classes_kwarg is not None:
            fitted[self._classes_kwarg] = final.classes_
        return sign * score_func(y_true, y_pred, **{**fixed_kwargs, **fitted, **kwargs})

    def __repr__(self):
        base = super().__repr__().replace("make_scorer(", "make_structure_scorer(", 1)
        return base


def make_structure_scorer(
    score_func,
    *,
    greater_is_better=True,
    response_method="predict",
    structure_kwarg="structure",
    classes_kwarg=None,
    **kwargs,
):
    """Make a scorer that passes the fitted ``structure_``/``classes_`` to a metric.

    Parameters
    ----------
    score_func : callable
        ``score_func(y_true, y_pred, **kwargs)``.
    greater_is_better : bool, default=True
        Whether higher is better; loss-like metrics become ``neg_`` scorers.
    response_method : str or list of str, default='predict'
        Method(s) of the final estimator to call, first available wins; e.g.
        ``'predict_proba'`` or ``['predict_set']``.
    structure_kwarg : str or None, default='structure'
        Keyword under which ``structure_`` is passed; ``None`` passes none.
    classes_kwarg : str or None, default=None
        Keyword under which ``classes_`` is passed; ``None`` passes none.
    **kwargs
        Fixed keyword arguments of ``score_func``.

    Returns
    -------
    scorer : callable
        ``scorer(estimator, X, y)``, usable wherever sklearn takes ``scoring``.

    Examples
    --------
    >>> import numpy as np
    >>> from skstruct.metrics import make_structure_scorer
    >>> def size(y_true, sets, *, classes):
    ...     return float(np.mean(sets.sum(axis=1)))
    >>> make_structure_scorer(size, response_method=["predict_set"],
    ...                       structure_kwarg=None, classes_kwarg="classes")
    make_structure_scorer(size, response_method=['predict_set'])
    """
    sign = 1 if greater_is_better else -1
    return _StructureScorer(
        score_func, sign, kwargs, response_method, structure_kwarg, classes_kwarg
    )


def _register(name, scorer):
    """Add a scorer to skstruct's registry (metric modules call this at import)."""
    if name in _SCORERS:
        raise ValueError(f"scorer {name!r} is registered twice.")
    _SCORERS[name] = scorer
    return scorer


def get_scorer_names():
    """Names accepted by :func:`get_scorer`: skstruct's, then sklearn's.

    Returns
    -------
    names : list of str
        Sorted names.
    """
    return sorted(set(_SCORERS) | set(_sk_get_scorer_names()))


def get_scorer(scoring):
    """A fresh copy of the scorer called ``scoring`` (skstruct's or sklearn's).

    Parameters
    ----------
    scoring : str or callable
        A registered name; a callable is returned as is.

    Returns
    -------
    scorer : callable
        ``scorer(estimator, X, y)``. For a name, a fresh copy, so changing
        it leaves the registered scorer alone.

    Examples
    --------
    >>> from skstruct.metrics import get_scorer
    >>> get_scorer("accuracy")
    make_scorer(accuracy_score, response_method='predict')
    """
    if callable(scoring):
        return scoring
    if scoring in _SCORERS:
        return copy.deepcopy(_SCORERS[scoring])
    try:
        return _sk_get_scorer(scoring)
    except ValueError:
        raise ValueError(
            f"{scoring!r} is not a valid scoring value. Use "
            "skstruct.metrics.get_scorer_names() to get valid options."
        ) from None
