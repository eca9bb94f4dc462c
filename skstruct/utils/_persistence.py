"""Pickles that record the skstruct version, as sklearn's record its own.

sklearn's ``BaseEstimator.__getstate__`` stores ``_sklearn_version`` for
sklearn's own estimators only (it checks the class's module), so third-party
estimators get nothing. :class:`VersionedPickleMixin` stores
``_skstruct_version`` and warns with
:class:`~skstruct.exceptions.InconsistentVersionWarning` when a pickle from
another skstruct version is loaded, the way sklearn warns.
"""

import warnings

from ..exceptions import InconsistentVersionWarning

_STATE_KEY = "_skstruct_version"


def _current_version():
    from .. import __version__  # late: skstruct/__init__.py imports the estimators

    return __version__


class VersionedPickleMixin:
    """Record ``_skstruct_version`` in the pickle; warn on load from another version.

    Put it before ``BaseEstimator`` among the bases.
    """

    def __getstate__(self):
        state = super().__getstate__()
        return dict(state.items(), **{_STATE_KEY: _current_version()})

    def __setstate__(self, state):
        state = dict(state)
        original = state.pop(_STATE_KEY, "unknown")
        current = _current_version()
        if original != current:
            warnings.warn(
                InconsistentVersionWarning(
                    estimator_name=type(self).__name__,
                    current_version=current,
                    original_version=original,
                ),
                stacklevel=2,
            )
        super().__setstate__(state)
