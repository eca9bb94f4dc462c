"""The one import site of scikit-learn's private API.

Every private sklearn name skstruct needs is imported or used here and
nowhere else, so a change in sklearn has exactly one place to fix:
``sklearn.base._fit_context``, ``sklearn.utils._param_validation``,
``sklearn.metrics._scorer._Scorer`` (skstruct subclasses it; its fields are
read through :func:`scorer_fields`), and ``Pipeline._iter`` /
``Pipeline._final_estimator`` (through :func:`pipeline_transformers` and
:func:`final_estimator`). ``tests/test_compat.py`` checks each against the
installed sklearn and fails naming it.
"""

from sklearn.base import _fit_context  # noqa: F401
from sklearn.utils._param_validation import (  # noqa: F401
    HasMethods,
    Hidden,
    Interval,
    InvalidParameterError,
    Options,
    StrOptions,
    validate_params,
)
from sklearn.utils.validation import validate_data  # noqa: F401

__all__ = [
    "_fit_context",
    "HasMethods",
    "Hidden",
    "Interval",
    "InvalidParameterError",
    "Options",
    "StrOptions",
    "validate_params",
    "validate_data",
]

from sklearn.metrics._scorer import _Scorer  # noqa: E402,F401

__all__ += ["_Scorer"]


def scorer_fields(scorer):
    """``(score_func, sign, kwargs, response_method)`` of an sklearn ``_Scorer``."""
    return scorer._score_func, scorer._sign, scorer._kwargs, scorer._response_method


def pipeline_transformers(pipeline):
    """The fitted steps of ``pipeline`` before its last, passthrough steps left out."""
    return [step for _, _, step in pipeline._iter(with_final=False, filter_passthrough=True)]


def final_estimator(pipeline):
    """The last step of ``pipeline`` (``'passthrough'`` for ``None``, as sklearn gives it)."""
    return pipeline._final_estimator


__all__ += ["final_estimator", "pipeline_transformers", "scorer_fields"]
