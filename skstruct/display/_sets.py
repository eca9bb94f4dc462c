"""Histogram of set sizes with the coverage at each size."""

from __future__ import annotations

import numpy as np

from ..metrics import mean_set_size, set_coverage
from ..metrics._sets import _check_sets_and_labels
from ._common import _final, _get_ax, _name


class SetSizeDisplay:
    """Set-size histogram of set-valued predictions, with coverage per size.

    Bars count the samples whose predicted set has each size; the line (right
    axis) is the fraction of those samples whose true label is in the set.
    Build it with :meth:`from_estimator` or :meth:`from_predictions`.

    Parameters
    ----------
    sizes : ndarray of shape (n_sizes,)
        The set sizes that occur, increasing.
    counts : ndarray of shape (n_sizes,)
        Number of samples with each size.
    coverage_by_size : ndarray of shape (n_sizes,)
        Coverage (true label in the set) among the samples of each size.
    coverage : float
        Overall coverage.
    mean_size : float
        Mean set size.
    estimator_name : str, default=None
        Name shown in the title.

    Attributes
    ----------
    ax_ : matplotlib Axes
        Axes of the bars.
    coverage_ax_ : matplotlib Axes
        Twin axes of the coverage line.
    figure_ : matplotlib Figure
        Figure holding the axes.

    See Also
    --------
    skstruct.predict_set : Set-valued prediction of an estimator or pipeline.
    skstruct.metrics.size_stratified_coverage : Coverage per set-size bin.

    Examples
    --------
    >>> import numpy as np
    >>> from skstruct.display import SetSizeDisplay
    >>> sets = np.array([[1, 0, 0], [1, 1, 0], [0, 1, 1], [0, 0, 1]], dtype=bool)
    >>> disp = SetSizeDisplay.from_predictions([0, 1, 0, 2], sets, classes=[0, 1, 2],
    ...                                        plot=False)
    >>> disp.sizes, disp.counts, disp.coverage
    (array([1, 2]), array([2, 2]), 0.75)
    """

    def __init__(self, *, sizes, counts, coverage_by_size, coverage, mean_size,
                 estimator_name=None):
        self.sizes = sizes
        self.counts = counts
        self.coverage_by_size = coverage_by_size
        self.coverage = coverage
        self.mean_size = mean_size
        self.estimator_name = estimator_name

    @classmethod
    def from_estimator(cls, estimator, X, y, *, name: str | None = None, ax=None,
                       plot: bool = True) -> "SetSizeDisplay":
        """Predict sets with ``predict_set`` and build the display.

        Parameters
        ----------
        estimator : estimator or Pipeline
            A fitted skstruct estimator, or a pipeline ending in one.
        X : array-like
            Input data.
        y : array-like of shape (n_samples,)
            True labels.
        name : str, default=None
            Name in the title; the estimator's class name by default.
        ax : matplotlib Axes, default=None
            Axes to draw on; a new figure when None.
        plot : bool, default=True
            Draw at once; ``False`` only computes the numbers.

        Returns
        -------
        display : SetSizeDisplay
            The display, with the numbers as attributes.
        """
        final, Xt = _final(estimator, X, "SetSizeDisplay.from_estimator")
        sets = final.predict_set(Xt)
        return cls.from_predictions(y, sets, classes=final.classes_,
                                    name=_name(final, name), ax=ax, plot=plot)

    @classmethod
    def from_predictions(cls, y_true, y_sets, *, classes=None, name: str | None = None,
                         ax=None, plot: bool = True) -> "SetSizeDisplay":
        """Build the display from true labels and boolean sets.

        Parameters
        ----------
        y_true : array-like of shape (n_samples,)
            True labels.
        y_sets : array-like of shape (n_samples, n_classes), dtype=bool
            Predicted sets, columns in ``classes`` order.
        classes : array-like of shape (n_classes,), default=None
            Labels of the columns; when None, ``y_true`` holds column indices.
        name : str, default=None
            Name in the title.
        ax : matplotlib Axes, default=None
            Axes to draw on; a new figure when None.
        plot : bool, default=True
            Draw at once; ``False`` only computes the numbers.

        Returns
        -------
        display : SetSizeDisplay
            The display, with the numbers as attributes.
        """
        sets, t, _ = _check_sets_and_labels(y_true, y_sets, classes)
        size = sets.sum(axis=1)
        hit = sets[np.arange(len(t)), t]
        sizes, inverse, counts = np.unique(size, return_inverse=True, return_counts=True)
        covered = np.bincount(inverse, weights=hit, minlength=len(sizes))
        disp = cls(
            sizes=sizes,
            counts=counts,
            coverage_by_size=covered / counts,
            coverage=set_coverage(y_true, y_sets, classes=classes),
            mean_size=mean_set_size(y_true, y_sets, classes=classes),
            estimator_name=name,
        )
        return disp.plot(ax=ax) if plot else disp

    def plot(self, ax=None) -> "SetSizeDisplay":
        """Draw the histogram and the coverage line.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Axes to draw on; a new figure when None.

        Returns
        -------
        display : SetSizeDisplay
            This display, with ``ax_``, ``coverage_ax_`` and ``figure_`` set.
        """
        fig, ax = _get_ax(ax, "SetSizeDisplay.plot")
        ax.bar(self.sizes, self.counts, color="tab:blue", alpha=0.8, label="samples")
        ax.set_xlabel("set size")
        ax.set_ylabel("samples")
        ax.set_xticks(self.sizes)
        twin = ax.twinx()
        twin.plot(self.sizes, self.coverage_by_size, "o-", color="tab:red", label="coverage")
        twin.set_ylim(0, 1.05)
        twin.set_ylabel("coverage at this size", color="tab:red")
        title = f"mean size {self.mean_size:.2f}, coverage {self.coverage:.3f}"
        if self.estimator_name:
            title = f"{self.estimator_name}: {title}"
        ax.set_title(title)
        self.ax_, self.coverage_ax_, self.figure_ = ax, twin, fig
        return self
