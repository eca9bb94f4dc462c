"""Attention of a MIL bag head over the instances of one bag."""

from __future__ import annotations

import numpy as np

from ._common import _final, _get_ax, _name


class MILAttentionDisplay:
    """Attention weights over the instances of one bag, as bars.

    Each bar is the weight the bag head gives an instance (the weights of a
    bag sum to one; the dotted line is the uniform weight ``1 / n_instances``).
    With ``instance_scores`` the instance head's probability of the positive
    class is drawn as a line on a twin axis, so one sees whether attention
    goes to the instances the instance head finds positive. Build it with
    :meth:`from_estimator` (a fitted :class:`~skstruct.MILConveyance`, via its
    ``attention_weights`` and ``predict_instance_proba``) or
    :meth:`from_predictions`.

    Parameters
    ----------
    attention : ndarray of shape (n_instances,)
        Attention weight of each instance.
    instance_scores : ndarray of shape (n_instances,), default=None
        Instance-head probability of the positive class.
    bag_label : object, default=None
        The bag's true label, shown in the title.
    bag_proba : float, default=None
        Predicted probability that the bag is positive.
    estimator_name : str, default=None
        Name shown in the title.

    Attributes
    ----------
    ax_ : matplotlib Axes
        Axes of the bars.
    score_ax_ : matplotlib Axes or None
        Twin axes of the instance scores (None without them).
    figure_ : matplotlib Figure
        Figure holding the axes.

    See Also
    --------
    skstruct.MILConveyance.attention_weights : The weights this display draws.

    Examples
    --------
    >>> from skstruct.display import MILAttentionDisplay
    >>> disp = MILAttentionDisplay.from_predictions([0.1, 0.7, 0.2], plot=False)
    >>> int(disp.attention.argmax()), disp.n_instances
    (1, 3)
    """

    def __init__(self, *, attention, instance_scores=None, bag_label=None, bag_proba=None,
                 estimator_name=None):
        self.attention = attention
        self.instance_scores = instance_scores
        self.bag_label = bag_label
        self.bag_proba = bag_proba
        self.estimator_name = estimator_name

    @property
    def n_instances(self) -> int:
        """Number of instances in the bag."""
        return len(self.attention)

    @classmethod
    def from_estimator(cls, estimator, bag, y=None, *, positive_label=None,
                       name: str | None = None, ax=None,
                       plot: bool = True) -> "MILAttentionDisplay":
        """Compute the attention and instance scores of one bag.

        Parameters
        ----------
        estimator : MILConveyance
            A fitted bag classifier with ``attention_weights`` and
            ``predict_instance_proba``.
        bag : array-like of shape (n_instances, n_features)
            One bag.
        y : object, default=None
            The bag's true label, for the title.
        positive_label : object, default=None
            The class whose probability is drawn; ``classes_[-1]`` when None
            (the positive label of a binary MIL problem).
        name : str, default=None
            Name in the title; the estimator's class name by default.
        ax : matplotlib Axes, default=None
            Axes to draw on; a new figure when None.
        plot : bool, default=True
            Draw at once; ``False`` only computes the numbers.

        Returns
        -------
        display : MILAttentionDisplay
            The display, with the numbers as attributes.
        """
        final, bags = _final(estimator, [np.asarray(bag)], "MILAttentionDisplay.from_estimator")
        if not hasattr(final, "attention_weights"):
            raise TypeError(
                f"{type(final).__name__} has no attention_weights method; pass a fitted "
                "skstruct.MILConveyance, or use MILAttentionDisplay.from_predictions."
            )
        classes = list(final.classes_)
        positive = classes[-1] if positive_label is None else positive_label
        if positive not in classes:
            raise ValueError(
                f"positive_label={positive!r} is not one of the estimator's classes_ "
                f"{classes}."
            )
        col = classes.index(positive)
        attention = final.attention_weights(bags)[0]
        scores = final.predict_instance_proba(bags)[0][:, col]
        bag_proba = float(final.predict_proba(bags)[0, col])
        return cls.from_predictions(attention, scores, bag_label=y, bag_proba=bag_proba,
                                    name=_name(final, name), ax=ax, plot=plot)

    @classmethod
    def from_predictions(cls, attention, instance_scores=None, *, bag_label=None,
                         bag_proba=None, name: str | None = None, ax=None,
                         plot: bool = True) -> "MILAttentionDisplay":
        """Build the display from one bag's attention weights.

        Parameters
        ----------
        attention : array-like of shape (n_instances,)
            Non-negative attention weights of the bag's instances.
        instance_scores : array-like of shape (n_instances,), default=None
            Instance-head probability of the positive class.
        bag_label : object, default=None
            The bag's true label.
        bag_proba : float, default=None
            Predicted probability that the bag is positive.
        name : str, default=None
            Name in the title.
        ax : matplotlib Axes, default=None
            Axes to draw on; a new figure when None.
        plot : bool, default=True
            Draw at once; ``False`` only computes the numbers.

        Returns
        -------
        display : MILAttentionDisplay
            The display, with the numbers as attributes.
        """
        attention = np.asarray(attention, dtype=np.float64)
        if attention.ndim != 1 or len(attention) == 0 or np.any(attention < 0):
            raise ValueError(
                "attention must be a non-empty 1-D array of non-negative weights, one per "
                f"instance of the bag; got shape {attention.shape}."
            )
        if instance_scores is not None:
            instance_scores = np.asarray(instance_scores, dtype=np.float64)
            if instance_scores.shape != attention.shape:
                raise ValueError(
                    f"instance_scores has shape {instance_scores.shape} but attention has "
                    f"{attention.shape}; pass one score per instance."
                )
        disp = cls(attention=attention, instance_scores=instance_scores, bag_label=bag_label,
                   bag_proba=bag_proba, estimator_name=name)
        return disp.plot(ax=ax) if plot else disp

    def plot(self, ax=None) -> "MILAttentionDisplay":
        """Draw the attention bars (and the instance scores).

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Axes to draw on; a new figure when None.

        Returns
        -------
        display : MILAttentionDisplay
            This display, with ``ax_``, ``score_ax_`` and ``figure_`` set.
        """
        fig, ax = _get_ax(ax, "MILAttentionDisplay.plot")
        idx = np.arange(self.n_instances)
        ax.bar(idx, self.attention, color="tab:blue", alpha=0.8, label="attention")
        ax.axhline(1.0 / self.n_instances, color="grey", lw=0.8, ls=":")
        ax.set_xlabel("instance")
        ax.set_ylabel("attention weight")
        self.score_ax_ = None
        if self.instance_scores is not None:
            twin = ax.twinx()
            twin.plot(idx, self.instance_scores, "o", color="tab:red", ms=4)
            twin.set_ylim(0, 1.05)
            twin.set_ylabel("instance head: P(positive)", color="tab:red")
            self.score_ax_ = twin
        parts = [self.estimator_name] if self.estimator_name else []
        if self.bag_label is not None:
            parts.append(f"bag label {self.bag_label}")
        if self.bag_proba is not None:
            parts.append(f"P(positive bag) {self.bag_proba:.2f}")
        ax.set_title(", ".join(parts) if parts else f"{self.n_instances} instances")
        self.ax_, self.figure_ = ax, fig
        return self
