"""Mistake severity and hierarchical distance at k as bars."""

from __future__ import annotations

import numpy as np

from ..metrics import average_hierarchical_distance_top_k, mistake_severity
from ..metrics._hierarchy import _check_hierarchy
from ._common import _final, _get_ax, _name


class HierarchicalDistanceDisplay:
    """Bars of the mean tree distance of the top-k predictions, k = 1, 2, ...

    For each ``k`` the bar is
    :func:`~skstruct.metrics.average_hierarchical_distance_top_k`: the mean
    distance (lowest-common-ancestor height by default) between the true leaf
    and the ``k`` top-scored leaves. The mistake severity (the mean distance
    over the mistakes of the top prediction) and the top-1 accuracy are in the
    title, since severity alone rewards losing accuracy. Build it with
    :meth:`from_estimator` or :meth:`from_predictions`.

    Parameters
    ----------
    ks : ndarray of shape (n_ks,)
        The values of k.
    distances : ndarray of shape (n_ks,)
        Mean distance at each k.
    mistake_severity : float
        Mean distance over the mistakes of the top prediction (NaN without
        mistakes).
    accuracy : float
        Top-1 accuracy.
    metric : {'lca', 'hops'}
        The tree distance.
    estimator_name : str, default=None
        Name shown in the title and the legend.

    Attributes
    ----------
    ax_ : matplotlib Axes
        Axes of the bars.
    bars_ : matplotlib BarContainer
        The bars.
    figure_ : matplotlib Figure
        Figure holding the axes.

    See Also
    --------
    skstruct.metrics.mistake_severity : Mean distance over the mistakes.

    Examples
    --------
    >>> import numpy as np
    >>> from skstruct import Hierarchy
    >>> from skstruct.display import HierarchicalDistanceDisplay
    >>> tree = Hierarchy({"cat": "mammal", "dog": "mammal", "trout": "fish"})
    >>> scores = np.array([[0.6, 0.3, 0.1], [0.2, 0.7, 0.1]])  # cat, dog, trout
    >>> disp = HierarchicalDistanceDisplay.from_predictions(
    ...     ["cat", "trout"], scores, hierarchy=tree, ks=[1, 2], plot=False)
    >>> disp.distances.tolist(), disp.mistake_severity, disp.accuracy
    ([1.0, 1.25], 2.0, 0.5)
    """

    def __init__(self, *, ks, distances, mistake_severity, accuracy, metric="lca",
                 estimator_name=None):
        self.ks = ks
        self.distances = distances
        self.mistake_severity = mistake_severity
        self.accuracy = accuracy
        self.metric = metric
        self.estimator_name = estimator_name

    @classmethod
    def from_estimator(cls, estimator, X, y, *, ks=(1, 2, 3, 4, 5), metric: str = "lca",
                       name: str | None = None, ax=None,
                       plot: bool = True) -> "HierarchicalDistanceDisplay":
        """Score with ``predict_proba`` of an estimator fitted with a hierarchy.

        Parameters
        ----------
        estimator : estimator or Pipeline
            A fitted skstruct estimator (or a pipeline ending in one) fitted
            with a :class:`~skstruct.Hierarchy`.
        X : array-like
            Input data.
        y : array-like of shape (n_samples,)
            True leaf labels.
        ks : sequence of int, default=(1, 2, 3, 4, 5)
            The values of k (each at most the number of leaves).
        metric : {'lca', 'hops'}, default='lca'
            Tree distance.
        name : str, default=None
            Name in the title; the estimator's class name by default.
        ax : matplotlib Axes, default=None
            Axes to draw on; a new figure when None.
        plot : bool, default=True
            Draw at once; ``False`` only computes the numbers.

        Returns
        -------
        display : HierarchicalDistanceDisplay
            The display, with the numbers as attributes.
        """
        from ..structures import Hierarchy

        final, Xt = _final(estimator, X, "HierarchicalDistanceDisplay.from_estimator")
        structure = getattr(final, "structure_", None)
        if not isinstance(structure, Hierarchy):
            raise ValueError(
                "HierarchicalDistanceDisplay.from_estimator needs an estimator fitted "
                f"with a Hierarchy class_structure; {type(final).__name__}.structure_ is "
                f"{type(structure).__name__}. Use from_predictions(..., hierarchy=tree)."
            )
        return cls.from_predictions(y, final.predict_proba(Xt), hierarchy=structure, ks=ks,
                                    metric=metric, name=_name(final, name), ax=ax, plot=plot)

    @classmethod
    def from_predictions(cls, y_true, y_score, *, hierarchy, ks=(1, 2, 3, 4, 5),
                         metric: str = "lca", name: str | None = None, ax=None,
                         plot: bool = True) -> "HierarchicalDistanceDisplay":
        """Build the display from true leaves and class scores.

        Parameters
        ----------
        y_true : array-like of shape (n_samples,)
            True leaf labels.
        y_score : array-like of shape (n_samples, n_classes)
            Scores or probabilities, columns in ``hierarchy.classes`` order
            (the ``classes_`` order of a fitted estimator).
        hierarchy : Hierarchy, dict or list of label paths
            The class hierarchy.
        ks : sequence of int, default=(1, 2, 3, 4, 5)
            The values of k (each at most the number of leaves).
        metric : {'lca', 'hops'}, default='lca'
            Tree distance.
        name : str, default=None
            Name in the title.
        ax : matplotlib Axes, default=None
            Axes to draw on; a new figure when None.
        plot : bool, default=True
            Draw at once; ``False`` only computes the numbers.

        Returns
        -------
        display : HierarchicalDistanceDisplay
            The display, with the numbers as attributes.
        """
        tree = _check_hierarchy(hierarchy)
        y_true = np.asarray(y_true)
        y_score = np.asarray(y_score)
        ks = np.asarray([int(k) for k in ks if k <= tree.n_classes])
        distances = np.array([
            average_hierarchical_distance_top_k(y_true, y_score, hierarchy=tree, k=int(k),
                                                metric=metric)
            for k in ks
        ])
        y_pred = np.asarray(tree.classes)[np.argmax(y_score, axis=1)]
        accuracy = float(np.mean(y_pred == y_true))
        severity = (mistake_severity(y_true, y_pred, hierarchy=tree, metric=metric)
                    if accuracy < 1 else float("nan"))
        disp = cls(ks=ks, distances=distances, mistake_severity=float(severity),
                   accuracy=accuracy, metric=metric, estimator_name=name)
        return disp.plot(ax=ax) if plot else disp

    def plot(self, ax=None, *, offset: float = 0.0, width: float = 0.8,
             **bar_kwargs) -> "HierarchicalDistanceDisplay":
        """Draw one bar per k.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Axes to draw on; a new figure when None.
        offset : float, default=0.0
            Shift of the bars along x, to place several displays side by side
            on one axes.
        width : float, default=0.8
            Bar width.
        **bar_kwargs : dict
            Passed to ``ax.bar`` (e.g. ``color``).

        Returns
        -------
        display : HierarchicalDistanceDisplay
            This display, with ``ax_``, ``bars_`` and ``figure_`` set.
        """
        fig, ax = _get_ax(ax, "HierarchicalDistanceDisplay.plot")
        label = (f"{self.estimator_name + ': ' if self.estimator_name else ''}"
                 f"top-1 {self.accuracy:.3f}, severity {self.mistake_severity:.3f}")
        self.bars_ = ax.bar(np.arange(len(self.ks)) + offset, self.distances, width=width,
                            label=label, **bar_kwargs)
        ax.set_xticks(range(len(self.ks)), [str(k) for k in self.ks])
        ax.set_xlabel("k (top-scored leaves)")
        ax.set_ylabel(f"mean tree distance ({self.metric}) at k")
        ax.legend(fontsize=8)
        self.ax_, self.figure_ = ax, fig
        return self
