"""Find the public estimators of skstruct (drives the common tests)."""

import inspect
import pkgutil
from importlib import import_module
from operator import itemgetter

from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.pipeline import Pipeline

__all__ = ["all_estimators"]

# reproduce: the experiment harness (MILWithTestCurve records test curves).
_SKIP_MODULES = {"tests", "benchmarks", "__main__", "_cli", "reproduce"}


def all_estimators():
    """Public classifiers of skstruct, as sorted ``(name, class)`` pairs.

    A class counts when it subclasses :class:`~sklearn.base.BaseEstimator`
    and :class:`~sklearn.base.ClassifierMixin`, is not abstract, its name
    does not start with ``_``, it is defined in skstruct and it is not a
    pipeline (``skstruct.pipeline.Pipeline`` only adds a method to sklearn's).

    Returns
    -------
    estimators : list of (str, type)
        ``(class name, class)`` pairs, sorted by name.

    Examples
    --------
    >>> from skstruct.utils.discovery import all_estimators
    >>> "ConveyanceClassifier" in dict(all_estimators())
    True
    """
    import skstruct

    root = skstruct.__path__
    found = set()
    for _, module_name, _ in pkgutil.walk_packages(root, prefix="skstruct."):
        if set(module_name.split(".")) & _SKIP_MODULES:
            continue
        module = import_module(module_name)
        for name, cls in inspect.getmembers(module, inspect.isclass):
            if (
                issubclass(cls, BaseEstimator)
                and not name.startswith("_")
                and cls.__module__.startswith("skstruct")
                and not inspect.isabstract(cls)
                and not issubclass(cls, Pipeline)
                # Classifiers only: the bag transformer of skstruct.preprocessing
                # takes bags, not arrays, and has its own tests.
                and issubclass(cls, ClassifierMixin)
            ):
                found.add((name, cls))
    return sorted(found, key=itemgetter(0))
