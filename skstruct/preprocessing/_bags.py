"""BagTransformer: apply an instance-level sklearn transformer to every bag."""

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.utils.validation import check_is_fitted

from ..utils._persistence import VersionedPickleMixin
from ..utils._sklearn_compat import HasMethods, _fit_context

__all__ = ["BagTransformer"]


class BagTransformer(VersionedPickleMixin, TransformerMixin, BaseEstimator):
    """Fit a transformer on the instances of the training bags, apply it per bag.

    Multiple-instance data are a sequence of bags, each an ``(n_instances,
    n_features)`` array, which sklearn's transformers cannot take directly.
    ``BagTransformer(StandardScaler())`` fits a clone of the transformer on
    all instances of the bags passed to ``fit`` (stacked into one array) and
    transforms each bag on its own, so that
    ``make_pipeline(BagTransformer(StandardScaler()), MILConveyance())``
    works in ``cross_val_score`` and ``GridSearchCV``: statistics come from
    the training bags of each fold only.

    Parameters
    ----------
    transformer : estimator object
        An sklearn transformer (``fit`` and ``transform``) of instance rows,
        e.g. :class:`~sklearn.preprocessing.StandardScaler` or
        :class:`~sklearn.decomposition.PCA`. It is cloned at ``fit``.

    Attributes
    ----------
    transformer_ : estimator object
        The fitted clone of ``transformer``.
    n_features_in_ : int
        Number of features of an instance seen in ``fit``.

    See Also
    --------
    skstruct.MILConveyance : A classifier of bags.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.preprocessing import StandardScaler
    >>> from skstruct.preprocessing import BagTransformer
    >>> bags = [np.array([[0.0, 10.0], [2.0, 30.0]]), np.array([[4.0, 20.0]])]
    >>> scaled = BagTransformer(StandardScaler()).fit_transform(bags)
    >>> [bag.shape for bag in scaled]
    [(2, 2), (1, 2)]
    >>> np.concatenate(scaled).mean(axis=0)
    array([0., 0.])
    """

    _parameter_constraints = {"transformer": [HasMethods(["fit", "transform"])]}

    def __init__(self, transformer):
        self.transformer = transformer

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y=None):
        """Fit the transformer on the instances of all bags of ``X``.

        Parameters
        ----------
        X : sequence of array-like of shape (n_instances, n_features)
            Bags.
        y : None
            Ignored (instance labels are unknown in MIL).

        Returns
        -------
        self : object
            The fitted transformer.
        """
        from .._mil import _check_bag_width, _check_bags

        bags = _check_bags(X, estimator="BagTransformer")
        _check_bag_width(bags, self, reset=True)
        self.transformer_ = clone(self.transformer).fit(np.concatenate(bags, axis=0))
        return self

    def transform(self, X):
        """Transform every bag with the fitted transformer.

        Parameters
        ----------
        X : sequence of array-like of shape (n_instances, n_features)
            Bags.

        Returns
        -------
        bags : list of ndarray of shape (n_instances_i, n_features_out)
            The transformed bags, in the order of ``X``.
        """
        from .._mil import _check_bag_width, _check_bags, _split_by_length

        check_is_fitted(self)
        bags = _check_bags(X, estimator="BagTransformer")
        _check_bag_width(bags, self, reset=False)
        out = np.asarray(self.transformer_.transform(np.concatenate(bags, axis=0)))
        return _split_by_length(out, [len(b) for b in bags])

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.three_d_array = True
        tags.requires_fit = True
        return tags
