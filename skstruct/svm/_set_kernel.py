"""SetKernelSVC: the set-kernel SVM of multiple-instance learning (Gaertner et al. 2002)."""

import numbers

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import StratifiedKFold, check_cv
from sklearn.svm import SVC
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted

from .._mil import _check_bag_labels, _check_bag_width, _check_bags
from ..utils._persistence import VersionedPickleMixin
from ..utils._sklearn_compat import Interval, StrOptions, _fit_context
from ..utils.validation import check_sample_weight

__all__ = ["SetKernelSVC", "clique_weights", "set_kernel"]

# Instances per block of the instance-pair matrix (8 MB in float64 per row of
# 1,000 instances of the other side): the kernel of large bag sets is summed
# block by block instead of holding every instance pair at once.
_BLOCK_PAIRS = 2**22


def _stack(bags):
    """All instances of ``bags`` in one array and the start row of each bag."""
    lengths = np.fromiter((len(b) for b in bags), dtype=np.int64, count=len(bags))
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    return np.concatenate(bags, axis=0), starts, lengths


def _sq_dists(a, b):
    """Squared Euclidean distances between the rows of ``a`` and those of ``b``."""
    sq = (a**2).sum(1)[:, None] + (b**2).sum(1)[None] - 2.0 * (a @ b.T)
    return np.maximum(sq, 0.0, out=sq)


def _self_similarity(bags, gammas, weights=None):
    """``k(A, A)`` of every bag, one row per ``gamma``: shape (n_gammas, n_bags).

    ``mean_{x, x' in A} exp(-gamma ||x - x'||^2)``, or with instance weights
    (summing to one per bag) ``sum_{x, x'} w_x w_x' exp(-gamma ||x - x'||^2)``.
    """
    out = np.empty((len(gammas), len(bags)))
    for i, bag in enumerate(bags):
        sq = _sq_dists(bag, bag)
        pair_weights = None if weights is None else np.outer(weights[i], weights[i])
        for g, gamma in enumerate(gammas):
            pairs = np.exp(-gamma * sq)
            out[g, i] = pairs.mean() if pair_weights is None else (pairs * pair_weights).sum()
    return out


def clique_weights(bags):
    """Instance weights of miGraph: one over the size of each instance's neighbourhood.

    Zhou, Sun and Li (2009) treat a bag as a graph: two of its instances are
    neighbours when their Euclidean distance is below the mean distance
    between the bag's instances (``delta``), and an instance weighs one over
    its number of neighbours, itself included. Instances of a dense clump
    share one unit of weight between them, so a bag's many near-copies of
    one instance count about as much as a single distinct instance. The
    weights of a bag are normalised to sum to one; they depend on that bag
    alone (no labels, no other bags).

    Parameters
    ----------
    bags : sequence of array-like of shape (n_instances_i, n_features)
        Bags.

    Returns
    -------
    weights : list of ndarray of shape (n_instances_i,)
        Non-negative weights summing to one per bag; equal weights for bags
        of one instance and for bags whose instances are all equal.

    Examples
    --------
    >>> import numpy as np
    >>> from skstruct.svm import clique_weights
    >>> bag = np.array([[0.0], [0.1], [5.0]])  # a pair of near-copies and one other
    >>> np.round(clique_weights([bag])[0], 3)
    array([0.25, 0.25, 0.5 ])
    """
    bags = _check_bags(bags, name="bags", estimator="clique_weights")
    return [_clique_weights_unchecked(b.astype(np.float64, copy=False)) for b in bags]


def _clique_weights_unchecked(bag):
    n = len(bag)
    if n == 1:
        return np.ones(1)
    dist = np.sqrt(_sq_dists(bag, bag))
    delta = dist[~np.eye(n, dtype=bool)].mean()  # mean distance between distinct instances
    neighbours = (dist < delta) | np.eye(n, dtype=bool)
    inverse = 1.0 / neighbours.sum(1)
    return inverse / inverse.sum()


def set_kernel(bags_a, bags_b, gammas, *, self_a=None, self_b=None, weights_a=None,
               weights_b=None):
    """Normalised set kernels between two sequences of bags, one per ``gamma``.

    The set kernel of two bags is the mean RBF kernel over all pairs of their
    instances, normalised so that every bag has unit norm::

        k(A, B) = 1/(|A| |B|) sum_{x in A} sum_{y in B} exp(-gamma ||x - y||^2)
        K(A, B) = k(A, B) / sqrt(k(A, A) k(B, B))

    ``K`` is a positive semi-definite kernel on bags (a mean of a PSD kernel
    over instances, then a cosine normalisation), with ``K(A, A) = 1``; for
    bags of one instance it is the RBF kernel itself. With instance weights
    (for example :func:`clique_weights`), the means become weighted means,
    ``k(A, B) = sum_x sum_y w_x w_y exp(-gamma ||x - y||^2)`` with each bag's
    weights scaled to sum to one: still PSD (the inner product of weighted
    mean embeddings), still unit on the diagonal.

    Parameters
    ----------
    bags_a, bags_b : sequence of array-like of shape (n_instances_i, n_features)
        Bags, all with the same number of features.
    gammas : sequence of float
        RBF widths; one kernel matrix is returned for each.
    self_a, self_b : ndarray of shape (n_gammas, n_bags), default=None
        ``k(A, A)`` of the bags of each side, when already known (with the
        same weights).
    weights_a, weights_b : sequence of array-like of shape (n_instances_i,), default=None
        Non-negative instance weights of each bag of that side, not all zero
        in a bag; ``None`` weighs the instances of a bag equally.

    Returns
    -------
    kernels : list of ndarray of shape (len(bags_a), len(bags_b))
        ``kernels[g][i, j] = K(bags_a[i], bags_b[j])`` for ``gammas[g]``.

    Examples
    --------
    >>> import numpy as np
    >>> from skstruct.svm import set_kernel
    >>> bags = [np.zeros((2, 1)), np.ones((1, 1))]
    >>> (K,) = set_kernel(bags, bags, [1.0])
    >>> np.round(K, 4)
    array([[1.    , 0.3679],
           [0.3679, 1.    ]])
    """
    bags_a = _check_bags(bags_a, name="bags_a", estimator="set_kernel")
    bags_b = _check_bags(bags_b, name="bags_b", estimator="set_kernel")
    if bags_a[0].shape[1] != bags_b[0].shape[1]:
        raise ValueError(
            f"bags_a has {bags_a[0].shape[1]} features per instance but bags_b has "
            f"{bags_b[0].shape[1]}; both need the same features."
        )
    weights_a = _check_instance_weights(weights_a, bags_a, "weights_a", "bags_a")
    weights_b = _check_instance_weights(weights_b, bags_b, "weights_b", "bags_b")
    return _set_kernel_unchecked(bags_a, bags_b, gammas, self_a=self_a, self_b=self_b,
                                 weights_a=weights_a, weights_b=weights_b)


def _check_instance_weights(weights, bags, name, bags_name):
    """Per-bag instance weights as float arrays summing to one, or ``None``."""
    if weights is None:
        return None
    if len(weights) != len(bags):
        raise ValueError(
            f"{name} has {len(weights)} entries but {bags_name} has {len(bags)} bags; "
            "pass one weight array per bag."
        )
    out = []
    for i, (w, bag) in enumerate(zip(weights, bags)):
        w = np.asarray(w, dtype=np.float64)
        if w.shape != (len(bag),):
            raise ValueError(
                f"{name}[{i}] has shape {w.shape} but bag {i} of {bags_name} has "
                f"{len(bag)} instances; pass one weight per instance."
            )
        if not np.all(np.isfinite(w) & (w >= 0)) or w.sum() <= 0:
            raise ValueError(
                f"{name}[{i}] must hold finite, non-negative weights with a positive "
                f"sum, got {w!r}."
            )
        out.append(w / w.sum())
    return out


def _set_kernel_unchecked(bags_a, bags_b, gammas, *, self_a=None, self_b=None,
                          weights_a=None, weights_b=None):
    """:func:`set_kernel` on bags already validated (float arrays of one width).

    Weights, when given, are one array per bag summing to one (both sides
    weighted or neither).
    """
    if (weights_a is None) != (weights_b is None):  # one side weighted: the other uniform
        def uniform(bags):
            return [np.full(len(b), 1.0 / len(b)) for b in bags]

        weights_a = uniform(bags_a) if weights_a is None else weights_a
        weights_b = uniform(bags_b) if weights_b is None else weights_b
    weighted = weights_a is not None
    gammas = [float(g) for g in gammas]
    xb, starts_b, lengths_b = _stack(bags_b)
    wb = np.concatenate(weights_b) if weighted else None
    sums = np.empty((len(gammas), len(bags_a), len(bags_b)))
    # Blocks of whole bags of A, so that a block times all instances of B
    # stays near _BLOCK_PAIRS pairs.
    budget = max(1, _BLOCK_PAIRS // len(xb))
    first = 0
    while first < len(bags_a):
        last, rows = first, 0
        while last < len(bags_a) and (last == first or rows + len(bags_a[last]) <= budget):
            rows += len(bags_a[last])
            last += 1
        xa, starts_a, _ = _stack(bags_a[first:last])
        sq = _sq_dists(xa, xb)
        pair_weights = np.outer(np.concatenate(weights_a[first:last]), wb) if weighted else None
        for g, gamma in enumerate(gammas):
            pairs = np.exp(-gamma * sq)
            if weighted:
                pairs *= pair_weights
            by_bag_a = np.add.reduceat(pairs, starts_a, axis=0)
            sums[g, first:last] = np.add.reduceat(by_bag_a, starts_b, axis=1)
        first = last
    if weighted:
        means = sums
    else:
        lengths_a = np.fromiter((len(b) for b in bags_a), dtype=np.float64, count=len(bags_a))
        means = sums / np.outer(lengths_a, lengths_b)
    self_a = _self_similarity(bags_a, gammas, weights_a) if self_a is None else self_a
    self_b = _self_similarity(bags_b, gammas, weights_b) if self_b is None else self_b
    return [means[g] / np.sqrt(np.outer(self_a[g], self_b[g])) for g in range(len(gammas))]


class SetKernelSVC(VersionedPickleMixin, ClassifierMixin, BaseEstimator):
    """Set-kernel SVM for bags, with ``gamma`` and ``C`` chosen on the training bags.

    A classical multiple-instance baseline (Gaertner et al. 2002): an
    :class:`~sklearn.svm.SVC` on the normalised set kernel of
    :func:`set_kernel`, the mean RBF kernel over all instance pairs of two
    bags. Instances are standardised with the mean and standard deviation of
    the training instances first. When more than one ``gamma`` or ``C`` is
    given, the pair with the best mean accuracy in an inner stratified
    cross-validation on the training bags is chosen and the SVM is refitted
    on all of them, so ``fit`` never sees a test bag: inside
    ``cross_validate`` the selection is honest. Each kernel is computed once
    for all folds and ``C`` values.

    Its errors are unlike a neural network's, which makes it a useful member
    of a vote with :class:`~skstruct.MILConveyance`:
    ``sklearn.ensemble.VotingClassifier`` takes bags as they are. It has no
    ``predict_proba``; for probabilities, wrap it in
    ``sklearn.calibration.CalibratedClassifierCV``, which calibrates its
    ``decision_function`` on bags too.

    Parameters
    ----------
    gammas : array-like of float, default=(0.25, 0.5, 1.0, 2.0, 4.0)
        RBF widths to choose from, in units of ``1 / n_features`` (the width
        sklearn's ``gamma='scale'`` gives standardised features).
    Cs : array-like of float, default=(1.0, 10.0, 100.0)
        SVM regularisation strengths to choose from.
    cv : int or cross-validation generator, default=5
        The inner cross-validation over the training bags. An int is the
        number of folds of a shuffled :class:`~sklearn.model_selection.StratifiedKFold`
        seeded by ``random_state``. Not used when ``gammas`` and ``Cs`` hold
        one value each.
    random_state : int, RandomState instance or None, default=None
        Seed of the shuffled inner folds when ``cv`` is an int.
    instance_weighting : {'uniform', 'clique'}, default='uniform'
        How the instances of a bag weigh in its mean embedding. ``'uniform'``:
        equally (Gaertner et al.'s set kernel). ``'clique'``: by
        :func:`clique_weights`, computed on the standardised instances of
        each bag alone, which is the kernel of miGraph (Zhou et al. 2009),
        here with the same unit-norm normalisation.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    n_features_in_ : int
        Number of features of an instance seen in ``fit``.
    mean_ : ndarray of shape (n_features,)
        Mean of the training instances, subtracted before the kernel.
    scale_ : ndarray of shape (n_features,)
        Standard deviation of the training instances plus ``1e-6``, divided
        out before the kernel.
    gamma_ : float
        The chosen RBF width, on the standardised features
        (``gammas[i] / n_features_in_``).
    C_ : float
        The chosen regularisation strength.
    cv_scores_ : ndarray of shape (len(gammas), len(Cs))
        Mean inner-CV accuracy of every pair; ``None`` when nothing was chosen.
    best_score_ : float
        ``cv_scores_`` of the chosen pair (``nan`` when nothing was chosen).
    svc_ : sklearn.svm.SVC
        The SVM on the precomputed kernel, fitted on all training bags.
    bags_ : list of ndarray
        The standardised training bags: prediction needs their kernel.
    instance_weights_ : list of ndarray or None
        The training bags' instance weights (``None`` for ``'uniform'``).

    See Also
    --------
    skstruct.MILConveyance : Attention-based MIL network with the Conveyance instance loss.
    sklearn.ensemble.VotingClassifier : Majority vote of both (bags pass through).

    Examples
    --------
    >>> import numpy as np
    >>> from skstruct.svm import SetKernelSVC
    >>> rng = np.random.RandomState(0)
    >>> bags = [rng.randn(3, 2) + [3 * (i % 2), 0] for i in range(20)]
    >>> y = np.arange(20) % 2
    >>> clf = SetKernelSVC(cv=4, random_state=0).fit(bags, y)
    >>> clf.predict(bags[:4])
    array([0, 1, 0, 1])
    >>> clf.cv_scores_.shape
    (5, 3)
    """

    _parameter_constraints = {
        "gammas": ["array-like"],
        "Cs": ["array-like"],
        "cv": [Interval(numbers.Integral, 2, None, closed="left"), "cv_object"],
        "random_state": ["random_state"],
        "instance_weighting": [StrOptions({"uniform", "clique"})],
    }

    def __init__(self, gammas=(0.25, 0.5, 1.0, 2.0, 4.0), Cs=(1.0, 10.0, 100.0), cv=5,
                 random_state=None, instance_weighting="uniform"):
        self.gammas = gammas
        self.Cs = Cs
        self.cv = cv
        self.random_state = random_state
        self.instance_weighting = instance_weighting

    # --------------------------------------------------------------- validation

    def _validate_X(self, X, *, reset):
        bags = [b.astype(np.float64, copy=False)
                for b in _check_bags(X, estimator="SetKernelSVC")]
        _check_bag_width(bags, self, reset=reset)
        return bags

    def _validate_X_y(self, X, y):
        bags = self._validate_X(X, reset=True)
        return bags, _check_bag_labels(bags, y, estimator="SetKernelSVC")

    @staticmethod
    def _positive_grid(values, name):
        grid = np.asarray(values, dtype=np.float64).ravel()
        if grid.size == 0 or not np.all(np.isfinite(grid) & (grid > 0)):
            raise ValueError(
                f"{name} must hold at least one positive, finite number, got {values!r}."
            )
        return grid

    def _inner_cv(self, y):
        if isinstance(self.cv, numbers.Integral):
            counts = np.unique(y, return_counts=True)[1]
            if counts.min() < self.cv:
                raise ValueError(
                    f"cv={self.cv} inner folds need at least {self.cv} training bags of "
                    f"every class, but the rarest class has {counts.min()}. Pass a "
                    "smaller cv, or a single value in gammas and in Cs to skip the "
                    "inner selection."
                )
            return StratifiedKFold(self.cv, shuffle=True, random_state=self.random_state)
        return check_cv(self.cv, y, classifier=True)

    # ------------------------------------------------------------------- fitting

    def _scale(self, bags):
        return [(b - self.mean_) / self.scale_ for b in bags]

    def _weights(self, bags):
        if self.instance_weighting == "uniform":
            return None
        return [_clique_weights_unchecked(b) for b in bags]

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Standardise, choose ``gamma`` and ``C`` by inner CV, fit the SVM.

        Parameters
        ----------
        X : sequence of array-like of shape (n_instances, n_features)
            Training bags.
        y : array-like of shape (n_bags,)
            One label per bag.
        sample_weight : array-like of shape (n_bags,), default=None
            Bag weights: they weight the standardisation (each instance by its
            bag's weight), the SVM's ``C`` per bag and the inner accuracy.

        Returns
        -------
        self : object
            The fitted classifier.
        """
        bags, y = self._validate_X_y(X, y)
        check_classification_targets(y)
        self.classes_ = np.unique(y)
        if len(self.classes_) < 2:
            raise ValueError(
                f"y contains 1 class ({self.classes_[0]!r}); SetKernelSVC needs at "
                "least 2 classes."
            )
        gammas = self._positive_grid(self.gammas, "gammas")
        Cs = self._positive_grid(self.Cs, "Cs")
        sample_weight = check_sample_weight(sample_weight, len(bags))
        if sample_weight is None:
            sample_weight = np.ones(len(bags))

        lengths = np.fromiter((len(b) for b in bags), dtype=np.int64, count=len(bags))
        instances = np.concatenate(bags, axis=0)
        instance_weight = np.repeat(sample_weight, lengths)
        self.mean_ = np.average(instances, axis=0, weights=instance_weight)
        variance = np.average((instances - self.mean_) ** 2, axis=0, weights=instance_weight)
        self.scale_ = np.sqrt(variance) + 1e-6
        self.bags_ = self._scale(bags)
        self.instance_weights_ = self._weights(self.bags_)

        widths = gammas / self.n_features_in_
        self_sim = _self_similarity(self.bags_, widths, self.instance_weights_)
        kernels = _set_kernel_unchecked(
            self.bags_, self.bags_, widths, self_a=self_sim, self_b=self_sim,
            weights_a=self.instance_weights_, weights_b=self.instance_weights_)
        self.cv_scores_ = None
        self.best_score_ = float("nan")
        best = (0, 0)
        if len(gammas) * len(Cs) > 1:
            splits = list(self._inner_cv(y).split(np.zeros((len(y), 1)), y))
            scores = np.zeros((len(gammas), len(Cs)))
            for g, kernel in enumerate(kernels):
                for c, C in enumerate(Cs):
                    for train, test in splits:
                        svc = SVC(kernel="precomputed", C=C).fit(
                            kernel[np.ix_(train, train)], y[train],
                            sample_weight=sample_weight[train])
                        hit = svc.predict(kernel[np.ix_(test, train)]) == y[test]
                        scores[g, c] += np.average(hit, weights=sample_weight[test])
            self.cv_scores_ = scores / len(splits)
            # The first best pair in (gamma, C) order.
            best = np.unravel_index(np.argmax(self.cv_scores_), self.cv_scores_.shape)
            self.best_score_ = float(self.cv_scores_[best])
        self.gamma_ = float(widths[best[0]])
        self.C_ = float(Cs[best[1]])
        self._self_similarity_ = self_sim[best[0]]
        self.svc_ = SVC(kernel="precomputed", C=self.C_).fit(
            kernels[best[0]], y, sample_weight=sample_weight)
        return self

    # ---------------------------------------------------------------- prediction

    def _kernel(self, X):
        check_is_fitted(self)
        bags = self._scale(self._validate_X(X, reset=False))
        (kernel,) = _set_kernel_unchecked(
            bags, self.bags_, [self.gamma_], self_b=self._self_similarity_[None],
            weights_a=self._weights(bags), weights_b=self.instance_weights_)
        return kernel

    def decision_function(self, X):
        """The SVM's decision values of each bag.

        Parameters
        ----------
        X : sequence of array-like of shape (n_instances, n_features)
            Bags.

        Returns
        -------
        scores : ndarray of shape (n_bags,) or (n_bags, n_classes)
            :meth:`sklearn.svm.SVC.decision_function` on the set kernel: for
            two classes, positive values favour ``classes_[1]``.
        """
        kernel = self._kernel(X)
        return self.svc_.decision_function(kernel)

    def predict(self, X):
        """Predict the label of each bag.

        Parameters
        ----------
        X : sequence of array-like of shape (n_instances, n_features)
            Bags.

        Returns
        -------
        y_pred : ndarray of shape (n_bags,)
            Predicted labels, from ``classes_``.
        """
        kernel = self._kernel(X)
        return self.svc_.predict(kernel)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.three_d_array = True
        return tags
