"""Confusion matrix with rows and columns in the order of an ordinal scale."""

from __future__ import annotations

import numpy as np

from ..structures import Ordinal
from ._common import _final, _get_ax, _name


class OrdinalConfusionMatrixDisplay:
    """Confusion matrix of ordinal predictions, levels in the scale's order.

    Rows are the true levels and columns the predicted ones, both from the
    lowest to the highest level of the :class:`~skstruct.Ordinal` scale (never
    the sorted label order), so misses far from the diagonal are misses by
    many levels. Build it with :meth:`from_estimator` or
    :meth:`from_predictions`.

    Parameters
    ----------
    confusion_matrix : ndarray of shape (n_levels, n_levels)
        Counts (or normalised counts), rows true level, columns predicted
        level, in scale order.
    levels : ndarray of shape (n_levels,)
        The labels from lowest to highest.
    counts : ndarray of shape (n_levels, n_levels)
        The raw counts behind ``confusion_matrix``.
    estimator_name : str, default=None
        Name shown in the title.

    Attributes
    ----------
    mean_absolute_rank_error : float
        Mean ``|rank(true) - rank(predicted)|`` of the counts.
    ax_ : matplotlib Axes
        Axes of the matrix.
    im_ : matplotlib AxesImage
        The image of the matrix.
    figure_ : matplotlib Figure
        Figure holding the axes.

    See Also
    --------
    sklearn.metrics.ConfusionMatrixDisplay : The flat confusion matrix.
    skstruct.metrics.mean_absolute_rank_error : The MAE on the ranks of a scale.

    Examples
    --------
    >>> from skstruct import Ordinal
    >>> from skstruct.display import OrdinalConfusionMatrixDisplay
    >>> scale = Ordinal(["low", "mid", "high"])
    >>> disp = OrdinalConfusionMatrixDisplay.from_predictions(
    ...     ["low", "high", "mid"], ["mid", "high", "mid"], structure=scale,
    ...     normalize=None, plot=False)
    >>> disp.levels.tolist()
    ['low', 'mid', 'high']
    >>> disp.confusion_matrix.tolist()
    [[0, 1, 0], [0, 1, 0], [0, 0, 1]]
    """

    def __init__(self, *, confusion_matrix, levels, counts, estimator_name=None):
        self.confusion_matrix = confusion_matrix
        self.levels = levels
        self.counts = counts
        self.estimator_name = estimator_name
        n = len(levels)
        offsets = np.abs(np.subtract.outer(np.arange(n), np.arange(n)))
        total = counts.sum()
        self.mean_absolute_rank_error = float((counts * offsets).sum() / total) if total else np.nan

    @classmethod
    def from_estimator(cls, estimator, X, y, *, normalize: str | None = "true",
                       name: str | None = None, ax=None,
                       plot: bool = True) -> "OrdinalConfusionMatrixDisplay":
        """Predict with a fitted estimator whose ``structure_`` is a scale.

        Parameters
        ----------
        estimator : estimator or Pipeline
            A fitted skstruct estimator (or a pipeline ending in one) fitted
            with an :class:`~skstruct.Ordinal` structure.
        X : array-like
            Input data.
        y : array-like of shape (n_samples,)
            True labels.
        normalize : {'true', 'pred', 'all'} or None, default='true'
            Normalise over true levels (rows), predicted levels (columns), all
            samples, or not at all.
        name : str, default=None
            Name in the title; the estimator's class name by default.
        ax : matplotlib Axes, default=None
            Axes to draw on; a new figure when None.
        plot : bool, default=True
            Draw at once; ``False`` only computes the numbers.

        Returns
        -------
        display : OrdinalConfusionMatrixDisplay
            The display, with the numbers as attributes.
        """
        final, Xt = _final(estimator, X, "OrdinalConfusionMatrixDisplay.from_estimator")
        structure = getattr(final, "structure_", None)
        if not isinstance(structure, Ordinal):
            raise ValueError(
                "OrdinalConfusionMatrixDisplay.from_estimator needs an estimator fitted "
                f"with an Ordinal class_structure; {type(final).__name__}.structure_ is "
                f"{type(structure).__name__}. Use from_predictions(..., structure=scale)."
            )
        y_pred = final.predict(Xt)
        return cls.from_predictions(y, y_pred, structure=structure, normalize=normalize,
                                    name=_name(final, name), ax=ax, plot=plot)

    @classmethod
    def from_predictions(cls, y_true, y_pred, *, structure, normalize: str | None = "true",
                         name: str | None = None, ax=None,
                         plot: bool = True) -> "OrdinalConfusionMatrixDisplay":
        """Build the display from true and predicted labels.

        Parameters
        ----------
        y_true : array-like of shape (n_samples,)
            True labels.
        y_pred : array-like of shape (n_samples,)
            Predicted labels.
        structure : Ordinal or list
            The scale, or its labels from lowest to highest.
        normalize : {'true', 'pred', 'all'} or None, default='true'
            Normalise over true levels (rows), predicted levels (columns), all
            samples, or not at all.
        name : str, default=None
            Name in the title.
        ax : matplotlib Axes, default=None
            Axes to draw on; a new figure when None.
        plot : bool, default=True
            Draw at once; ``False`` only computes the numbers.

        Returns
        -------
        display : OrdinalConfusionMatrixDisplay
            The display, with the numbers as attributes.
        """
        if normalize not in ("true", "pred", "all", None):
            raise ValueError(
                f"normalize must be 'true', 'pred', 'all' or None, got {normalize!r}."
            )
        scale = structure if isinstance(structure, Ordinal) else Ordinal(list(structure))
        ranks = np.asarray(scale.ranks)
        rank_true = ranks[scale.encode(np.asarray(y_true))]
        rank_pred = ranks[scale.encode(np.asarray(y_pred))]
        n = scale.n_classes
        counts = np.zeros((n, n), dtype=np.int64)
        np.add.at(counts, (rank_true, rank_pred), 1)
        with np.errstate(invalid="ignore", divide="ignore"):
            if normalize == "true":
                cm = np.nan_to_num(counts / counts.sum(axis=1, keepdims=True))
            elif normalize == "pred":
                cm = np.nan_to_num(counts / counts.sum(axis=0, keepdims=True))
            elif normalize == "all":
                cm = counts / counts.sum()
            else:
                cm = counts
        disp = cls(confusion_matrix=cm, levels=np.asarray(scale.order, dtype=object),
                   counts=counts, estimator_name=name)
        return disp.plot(ax=ax) if plot else disp

    def plot(self, ax=None, *, cmap: str = "Blues",
             values_format: str | None = None) -> "OrdinalConfusionMatrixDisplay":
        """Draw the matrix with its values.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Axes to draw on; a new figure when None.
        cmap : str, default='Blues'
            Colormap.
        values_format : str, default=None
            Format of the cell values; ``'.2f'`` for fractions, ``'d'`` for
            counts when None.

        Returns
        -------
        display : OrdinalConfusionMatrixDisplay
            This display, with ``ax_``, ``im_`` and ``figure_`` set.
        """
        fig, ax = _get_ax(ax, "OrdinalConfusionMatrixDisplay.plot")
        cm = self.confusion_matrix
        integer = np.issubdtype(np.asarray(cm).dtype, np.integer)
        fmt = values_format or ("d" if integer else ".2f")
        top = cm.max() if cm.size and cm.max() > 0 else 1
        self.im_ = ax.imshow(cm, cmap=cmap, vmin=0, vmax=top)
        n = len(self.levels)
        for i in range(n):
            for j in range(n):
                if self.counts[i, j]:
                    ax.text(j, i, format(cm[i, j], fmt), ha="center", va="center", fontsize=7,
                            color="white" if cm[i, j] > top / 2 else "black")
        labels = [str(v) for v in self.levels]
        ax.set_xticks(range(n), labels)
        ax.set_yticks(range(n), labels)
        ax.set_xlabel("predicted level")
        ax.set_ylabel("true level")
        title = f"MAE {self.mean_absolute_rank_error:.3f}"
        ax.set_title(f"{self.estimator_name}: {title}" if self.estimator_name else title)
        self.ax_, self.figure_ = ax, fig
        return self
