"""Split-conformal set strategies: conformity scores (LAC, APS, RAPS) and Mondrian calibration.

A strategy is passed as ``set_rule=`` to any skstruct estimator, e.g.
``set_rule=SplitConformal(APS(randomized=True), class_conditional=True)``.
The estimator only provides probabilities (``predict_proba``); the strategy
turns them into a nonconformity score for every class, calibrates a
quantile of the true-label scores on held-out rows and keeps the classes
whose score is at most that quantile:

* :class:`LAC` (least ambiguous set-valued classifier, Sadinle et al. 2019):
  ``s_j = 1 - p_j``;
* :class:`APS` (adaptive prediction sets, Romano et al. 2020): the mass of
  the classes ranked at or above ``j``; randomized, the mass ranked strictly
  above plus ``u * p_j`` with ``u ~ U(0, 1)`` drawn per sample;
* :class:`RAPS` (regularized APS, Angelopoulos et al. 2021): APS plus
  ``lambda_reg * max(rank_j - k_reg, 0)``, ranks from 1.

:class:`SplitConformal` computes the quantile ``q`` as the ``ceil((n + 1) *
confidence_level)``-th smallest calibration score (``inf`` when that rank
exceeds ``n``); then ``P(y in set) >= confidence_level`` on exchangeable
data, marginally. With ``class_conditional=True`` (Mondrian conformal
prediction, Vovk et al. 2005) one quantile is computed per class from the
calibration rows of that class and class ``j`` enters a set when ``s_j <=
q_j``: the coverage holds within every class.

A set is ``{j : s_j <= q}`` exactly, so it may be empty (when even the top
class scores above ``q``) and, with APS, need not hold the top class; the
coverage guarantee is that of this rule. These sets are plain subsets of
the classes. They do not follow an ordinal
or hierarchical structure. For intervals of ranks or tree nodes pass a
structured shape, ``SplitConformal(shape=IntervalSets(ordinal))`` or
``NodeSets(hierarchy)`` (what ``set_rule='conformal'`` builds for an Ordinal
or a Hierarchy structure): those shapes have their own nested-set score (the
level at which the set starts to hold the true label), so they take
``score=None`` or ``LAC()`` only and no ``class_conditional``; APS, RAPS and
Mondrian calibration give plain subsets.

Ties: a class enters a set when its score is *at most* the quantile, so
classes whose score ties the quantile are all kept (the conservative side of
the coverage bound).

Against the reference libraries (``tests/sets/test_reference_libraries.py``,
same fitted model, same calibration rows): LAC sets, marginal and
class-conditional, equal MAPIE's ``SplitConformalClassifier(prefit=True)``
and crepes' ``WrapClassifier`` (``class_cond=True``, ``smoothing=False``)
sets. MAPIE's APS and RAPS always randomize the calibration scores, as
``s - u p_y`` where ours is ``s - (1 - u) p_y`` (the same law); with its
uniforms mapped ``u -> 1 - u`` (and, for RAPS, its ``k_star``,
``lambda_star`` and the calibration rows it keeps after its tuning split) the
quantiles are equal, its ``include_last_label='randomized'`` sets equal our
randomized sets, its ``include_last_label=False`` sets equal our
non-randomized sets except that MAPIE puts the top class into a set that
would be empty, and its default ``include_last_label=True`` adds the class
whose score crosses the quantile to every set: for APS that is our
``randomize_sets=False`` rule. Our rule is ``{j : s_j <=
q}`` throughout, the set the coverage bound is about.
"""

import numpy as np
from sklearn.utils import check_random_state

__all__ = ["APS", "LAC", "RAPS", "SplitConformal"]


class LAC:
    """Least-ambiguous-set score ``1 - p_j`` (the score of ``set_rule='conformal'``).

    Examples
    --------
    >>> import numpy as np
    >>> LAC().nonconformity(np.array([[0.7, 0.2, 0.1]]))
    array([[0.3, 0.8, 0.9]])
    """

    randomized = False

    def nonconformity(self, proba, u=None):
        """Score of every class, shape ``(n_samples, n_classes)``; lower = more conforming.

        Parameters
        ----------
        proba : array-like of shape (n_samples, n_classes)
            Class probabilities.
        u : ndarray of shape (n_samples,) or None, default=None
            One uniform draw per sample; used by randomized scores only.

        Returns
        -------
        scores : ndarray of shape (n_samples, n_classes)
            Nonconformity of every class; lower is more conforming.
        """
        return 1.0 - np.asarray(proba, dtype=np.float64)

    def __repr__(self):
        return f"{type(self).__name__}()"


class APS:
    """Adaptive-prediction-set score: cumulative mass of the classes ranked at or above.

    Parameters
    ----------
    randomized : bool, default=False
        Replace the mass of the class itself by ``u * p_j``, ``u ~ U(0, 1)``
        per sample (exact coverage in expectation instead of at least).

    Examples
    --------
    >>> import numpy as np
    >>> APS().nonconformity(np.array([[0.2, 0.7, 0.1]]))
    array([[0.9, 0.7, 1. ]])
    """

    def __init__(self, randomized=False):
        self.randomized = randomized

    def _penalty(self, n_classes):
        return np.zeros(n_classes)

    def nonconformity(self, proba, u=None):
        """Score of every class; ``u`` (one uniform per sample) when randomized.

        Parameters
        ----------
        proba : array-like of shape (n_samples, n_classes)
            Class probabilities.
        u : ndarray of shape (n_samples,) or None, default=None
            One uniform draw per sample; used by randomized scores only.

        Returns
        -------
        scores : ndarray of shape (n_samples, n_classes)
            Nonconformity of every class; lower is more conforming.
        """
        proba = np.asarray(proba, dtype=np.float64)
        order = np.argsort(-proba, axis=1, kind="stable")
        ranked = np.take_along_axis(proba, order, axis=1)
        cum = np.cumsum(ranked, axis=1)
        if self.randomized:
            if u is None:
                raise ValueError("a randomized score needs one uniform u per sample.")
            ranked_scores = cum - ranked + np.asarray(u)[:, None] * ranked
        else:
            ranked_scores = cum
        ranked_scores = ranked_scores + self._penalty(proba.shape[1])[None, :]
        scores = np.empty_like(ranked_scores)
        np.put_along_axis(scores, order, ranked_scores, axis=1)
        return scores

    def __repr__(self):
        return f"{type(self).__name__}(randomized={self.randomized!r})"


class RAPS(APS):
    """Regularized APS: APS plus ``lambda_reg * max(rank - k_reg, 0)`` (ranks from 1).

    Parameters
    ----------
    lambda_reg : float, default=0.01
        Penalty per rank beyond ``k_reg``.
    k_reg : int, default=1
        Number of top classes without penalty.
    randomized : bool, default=False
        As in :class:`APS`.

    Examples
    --------
    >>> import numpy as np
    >>> RAPS(lambda_reg=0.1, k_reg=1).nonconformity(np.array([[0.2, 0.7, 0.1]]))
    array([[1. , 0.7, 1.2]])
    """

    def __init__(self, lambda_reg=0.01, k_reg=1, randomized=False):
        self.lambda_reg = lambda_reg
        self.k_reg = k_reg
        self.randomized = randomized

    def _penalty(self, n_classes):
        ranks = np.arange(1, n_classes + 1)
        return self.lambda_reg * np.maximum(ranks - self.k_reg, 0)

    def __repr__(self):
        return (
            f"RAPS(lambda_reg={self.lambda_reg!r}, k_reg={self.k_reg!r}, "
            f"randomized={self.randomized!r})"
        )


def conformal_quantile(scores, confidence_level):
    """The ``ceil((n + 1) * level)``-th smallest score, ``inf`` when the rank exceeds ``n``.

    Examples
    --------
    >>> float(conformal_quantile([0.1, 0.4, 0.2, 0.3], 0.5))
    0.3
    """
    scores = np.sort(np.asarray(scores, dtype=np.float64))
    rank = int(np.ceil((len(scores) + 1) * confidence_level))
    if rank > len(scores) or rank < 1:
        return np.inf
    return float(scores[rank - 1])


class SplitConformal:
    """Split-conformal sets with a chosen conformity score, marginal or class-conditional.

    Pass it as ``set_rule=`` to a skstruct estimator; ``fit`` calibrates it
    on the held-out calibration split, :meth:`calibrate` of the estimator on
    your rows. The estimator's ``confidence_level`` is the target coverage.

    Parameters
    ----------
    score : LAC, APS or RAPS instance, default=None
        Conformity score; ``None`` means :class:`LAC`.
    class_conditional : bool, default=False
        Mondrian calibration: one quantile per class, computed on the
        calibration rows of that class (coverage within every class).
    random_state : int or None, default=0
        Seeds the uniforms of a randomized score: calibration draws one per
        calibration row; ``predict_set`` draws one per row from the same
        seed at every call, so it is deterministic.
    randomize_sets : bool, default=True
        With a randomized score (``APS(randomized=True)``, ``RAPS(...,
        randomized=True)``), whether ``predict_set`` draws uniforms too.
        ``False`` calibrates with the randomized score but predicts with
        ``u = 0``: a class enters when the mass ranked strictly above it
        (plus the RAPS penalty) is at most the quantile. These sets contain
        the randomized ones, so coverage still holds; they are deterministic,
        never empty, and smaller than non-randomized APS sets (MAPIE's default
        APS rule, ``include_last_label=True``). Ignored for other scores.
    shape : IntervalSets, NodeSets, ThresholdSets or None, default=None
        ``None``: plain subsets ``{j : s_j <= q}`` of the score. A shape
        object: the sets of that shape at the split-conformal level of its
        own nested-set score (``score`` must then be ``None`` or ``LAC()``
        and ``class_conditional=False``); the shape needs the estimator's
        predictions, which ``set_rule=`` passes in.

    Attributes
    ----------
    quantiles_ : ndarray of shape (n_classes,)
        Class ``j`` enters a set when its score is at most ``quantiles_[j]``
        (one value repeated unless ``class_conditional``). Not set with a
        ``shape``.
    level_ : float or ndarray of shape (n_classes,)
        What the estimator reports as ``set_threshold_``: the quantile (one
        float, or one per class when ``class_conditional``), or the level of
        the ``shape``.

    Examples
    --------
    >>> import numpy as np
    >>> proba = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.3, 0.3, 0.4]])
    >>> rule = SplitConformal(APS()).calibrate(proba, np.array([0, 1, 2]), 0.5)
    >>> rule.quantiles_
    array([0.7, 0.7, 0.7])
    >>> rule.predict_sets(proba).astype(int)
    array([[1, 0, 0],
           [0, 0, 0],
           [1, 0, 1]])
    """

    needs_labels = True
    needs_rows = True

    def __init__(self, score=None, *, class_conditional=False, random_state=0,
                 randomize_sets=True, shape=None):
        self.score = score
        self.class_conditional = class_conditional
        self.random_state = random_state
        self.randomize_sets = randomize_sets
        self.shape = shape

    @property
    def needs_probabilities(self):
        """Whether the estimator must pass probabilities (plain sets) or its set scores (a shape)."""
        return self.shape is None

    def _check_shape(self):
        if self.shape is None:
            return None
        if not (self.score is None or type(self.score) is LAC):
            raise ValueError(
                f"SplitConformal(shape={self.shape!r}) calibrates the nested-set "
                f"score of its shape, so score must be None or LAC(), got "
                f"score={self.score!r}. For APS or RAPS sets drop the shape "
                "(plain subsets of the classes)."
            )
        if self.class_conditional:
            raise ValueError(
                f"class_conditional=True is not defined with shape={self.shape!r}: "
                "use shape=None for Mondrian (per-class) plain subsets."
            )
        return self.shape

    def _score(self):
        score = LAC() if self.score is None else self.score
        if not hasattr(score, "nonconformity"):
            raise TypeError(
                f"score must be LAC(), APS() or RAPS() (an object with a "
                f"nonconformity method), got {score!r}."
            )
        return score

    def _uniforms(self, n, offset):
        if not self._score().randomized:
            return None
        rng = check_random_state(None if self.random_state is None else self.random_state + offset)
        return rng.uniform(size=n)

    def calibrate(self, proba, y_index, confidence_level, *, predicted=None):
        """Compute ``quantiles_`` from calibration probabilities and true column indices.

        Parameters
        ----------
        proba : array-like of shape (n_samples, n_classes)
            Probabilities of the calibration samples (with a ``shape``: the
            estimator's set scores).
        y_index : array-like of shape (n_samples,)
            Column index of each sample's true class.
        confidence_level : float
            Target coverage, in (0, 1).
        predicted : array-like of shape (n_samples,), default=None
            Column index of each prediction; needed by a ``shape`` only.

        Returns
        -------
        self : SplitConformal
            With ``quantiles_`` (one per class) or, with a shape, ``level_`` set.
        """
        shape = self._check_shape()
        if shape is not None:
            if predicted is None:
                raise ValueError(
                    f"SplitConformal(shape={shape!r}) needs predicted= (the "
                    "column index of each prediction)."
                )
            self.level_ = shape.conformal_level(
                proba, np.asarray(predicted, dtype=np.int64), y_index, confidence_level
            )
            return self
        proba = np.asarray(proba, dtype=np.float64)
        y_index = np.asarray(y_index, dtype=np.int64)
        n, n_classes = proba.shape
        scores = self._score().nonconformity(proba, self._uniforms(n, 0))
        true_scores = scores[np.arange(n), y_index]
        if self.class_conditional:
            self.quantiles_ = np.array(
                [conformal_quantile(true_scores[y_index == k], confidence_level)
                 for k in range(n_classes)]
            )
        else:
            self.quantiles_ = np.full(n_classes, conformal_quantile(true_scores, confidence_level))
        q = self.quantiles_
        self.level_ = float(q[0]) if np.all(q == q[0]) else q.copy()
        return self

    def predict_sets(self, proba, *, predicted=None):
        """Boolean sets ``{j : score_j <= quantiles_[j]}`` (with a ``shape``: its sets at ``level_``).

        Parameters
        ----------
        proba : array-like of shape (n_samples, n_classes)
            Class probabilities (with a ``shape``: the estimator's set scores).
        predicted : array-like of shape (n_samples,), default=None
            Column index of each prediction; needed by a ``shape`` only.

        Returns
        -------
        sets : ndarray of shape (n_samples, n_classes), dtype=bool
            True where a class is in the sample's set.
        """
        shape = self._check_shape()
        if shape is not None:
            return shape.sets(proba, np.asarray(predicted, dtype=np.int64), self.level_)
        proba = np.asarray(proba, dtype=np.float64)
        u = self._uniforms(len(proba), 1)
        if u is not None and not self.randomize_sets:
            u = np.zeros(len(proba))
        scores = self._score().nonconformity(proba, u)
        return scores <= self.quantiles_[None, :]

    def __repr__(self):
        extra = "" if self.randomize_sets else ", randomize_sets=False"
        extra += "" if self.shape is None else f", shape={self.shape!r}"
        return (
            f"SplitConformal({self._score()!r}, class_conditional="
            f"{self.class_conditional!r}, random_state={self.random_state!r}{extra})"
        )
