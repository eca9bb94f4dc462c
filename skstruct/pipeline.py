"""Set prediction through scikit-learn pipelines.

sklearn's :class:`~sklearn.pipeline.Pipeline` does not forward custom
methods, so ``pipe.predict_set`` does not exist. Two ways around it:

* :func:`predict_set` works on an estimator *or* any fitted pipeline;
* :class:`Pipeline` / :func:`make_pipeline` are sklearn's, plus a
  ``predict_set`` method (so set scorers can call it).
"""

from sklearn import pipeline as _sk_pipeline
from sklearn.utils.metaestimators import available_if

from .utils._sklearn_compat import final_estimator, pipeline_transformers

__all__ = ["Pipeline", "make_pipeline", "predict_set"]


def _final_estimator_and_X(estimator, X):
    """Transform X through all but the last step of (nested) pipelines."""
    while isinstance(estimator, _sk_pipeline.Pipeline):
        for transformer in pipeline_transformers(estimator):
            X = transformer.transform(X)
        estimator = final_estimator(estimator)
    return estimator, X


def predict_set(estimator, X):
    """Set-valued prediction from an skstruct estimator or a pipeline ending in one.

    Parameters
    ----------
    estimator : estimator or Pipeline
        A fitted skstruct estimator, or a fitted sklearn ``Pipeline`` (possibly
        nested) whose final step has ``predict_set``.
    X : array-like
        Input data, as the first step of ``estimator`` expects it.

    Returns
    -------
    sets : ndarray of shape (n_samples, n_classes), dtype=bool
        Aligned with ``classes_`` of the final estimator.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from skstruct import ConveyanceClassifier, predict_set
    >>> X, y = load_iris(return_X_y=True)
    >>> pipe = make_pipeline(StandardScaler(), ConveyanceClassifier(
    ...     max_epochs=2, set_size=2, random_state=0)).fit(X, y)
    >>> predict_set(pipe, X[:2]).shape
    (2, 3)
    """
    final, Xt = _final_estimator_and_X(estimator, X)
    if not hasattr(final, "predict_set"):
        raise TypeError(
            f"The final estimator {type(final).__name__} has no predict_set "
            "method; use an skstruct estimator as the last step."
        )
    return final.predict_set(Xt)


class Pipeline(_sk_pipeline.Pipeline):
    """Scikit-learn's Pipeline with a ``predict_set`` method.

    Identical to :class:`sklearn.pipeline.Pipeline` otherwise; use it when a
    scorer needs ``predict_set`` on a pipeline.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.preprocessing import StandardScaler
    >>> from skstruct import ConveyanceClassifier
    >>> from skstruct.pipeline import make_pipeline
    >>> X, y = load_iris(return_X_y=True)
    >>> pipe = make_pipeline(StandardScaler(), ConveyanceClassifier(
    ...     max_epochs=2, random_state=0)).fit(X, y)
    >>> pipe.predict_set(X[:2]).sum(axis=1)
    array([1, 1])
    """

    @available_if(lambda self: hasattr(final_estimator(self), "predict_set"))
    def predict_set(self, X):
        """Transform X through the steps, then call the final ``predict_set``."""
        return predict_set(self, X)


def make_pipeline(*steps, memory=None, verbose=False):
    """Build a :class:`Pipeline` (with ``predict_set``) from steps, like sklearn's.

    Parameters
    ----------
    *steps : list of estimators
        The steps, named automatically from their lowercased class names.
    memory : str or object with the joblib.Memory interface, default=None
        Passed to :class:`Pipeline`.
    verbose : bool, default=False
        Passed to :class:`Pipeline`.

    Returns
    -------
    pipeline : Pipeline
        A skstruct :class:`Pipeline` with the same steps as
        :func:`sklearn.pipeline.make_pipeline` would build.
    """
    sk = _sk_pipeline.make_pipeline(*steps, memory=memory, verbose=verbose)
    return Pipeline(sk.steps, memory=memory, verbose=verbose)
