"""The cross-validation protocol of the classical multiple-instance benchmarks."""

import numbers

import numpy as np
from sklearn.model_selection import BaseCrossValidator, StratifiedKFold
from sklearn.utils import check_random_state

__all__ = ["MILBenchmarkCV", "TrainMaskSplit"]


def _check_masks(train_masks):
    masks = np.asarray(train_masks)
    if masks.dtype != bool:
        raise ValueError(
            f"train_masks must be a boolean array, got dtype {masks.dtype}; "
            "True marks the training samples of a fold."
        )
    if masks.ndim == 3:
        masks = masks.reshape(-1, masks.shape[-1])
    if masks.ndim != 2 or masks.shape[0] == 0:
        raise ValueError(
            "train_masks must have shape (n_splits, n_samples) or (n_repeats, "
            f"n_splits, n_samples), got shape {np.shape(train_masks)}."
        )
    empty = np.flatnonzero(~masks.any(axis=1) | masks.all(axis=1))
    if len(empty):
        raise ValueError(
            f"train_masks row {int(empty[0])} leaves an empty training or test "
            "part; every fold needs both."
        )
    return masks


class TrainMaskSplit(BaseCrossValidator):
    """Splits given as boolean training masks, one per fold.

    Stored folds make results comparable across papers: the MIL benchmark
    files hold 5 repetitions of 10-fold cross-validation as
    ``train_masks[r, k]`` (True = training bag). The test part of a fold is
    the complement of its training mask.

    Parameters
    ----------
    train_masks : array-like of bool, of shape (n_splits, n_samples) or (n_repeats, n_folds, n_samples)
        Training masks; a 3-D array is read repetition by repetition.

    See Also
    --------
    MILBenchmarkCV : The classical protocol, with or without stored masks.

    Examples
    --------
    >>> import numpy as np
    >>> from skstruct.model_selection import TrainMaskSplit
    >>> masks = np.array([[True, True, False, False], [False, False, True, True]])
    >>> for train, test in TrainMaskSplit(masks).split(np.zeros(4)):
    ...     print(train, test)
    [0 1] [2 3]
    [2 3] [0 1]
    """

    def __init__(self, train_masks):
        self.train_masks = train_masks

    def get_n_splits(self, X=None, y=None, groups=None):
        """Number of splits (rows of the masks).

        Parameters
        ----------
        X, y, groups : object, default=None
            Ignored; present for the sklearn splitter API.

        Returns
        -------
        n_splits : int
            The number of rows of ``train_masks``.
        """
        return _check_masks(self.train_masks).shape[0]

    def split(self, X, y=None, groups=None):
        """Yield ``(train, test)`` index arrays, one pair per mask.

        Parameters
        ----------
        X : sequence of length n_samples
            Samples (bags); only their number is used.
        y : array-like of shape (n_samples,), default=None
            Ignored.
        groups : None
            Ignored.

        Yields
        ------
        train : ndarray
            Indices of the training samples.
        test : ndarray
            Indices of the test samples.
        """
        masks = _check_masks(self.train_masks)
        n_samples = len(X)
        if masks.shape[1] != n_samples:
            raise ValueError(
                f"train_masks cover {masks.shape[1]} samples but X has "
                f"{n_samples}; use the masks that came with these data."
            )
        for mask in masks:
            yield np.flatnonzero(mask), np.flatnonzero(~mask)

    def _iter_test_masks(self, X=None, y=None, groups=None):  # pragma: no cover
        for mask in _check_masks(self.train_masks):
            yield ~mask

    def __repr__(self):
        shape = np.shape(self.train_masks)
        return f"TrainMaskSplit(train_masks=<bool array of shape {shape}>)"


class MILBenchmarkCV(BaseCrossValidator):
    """The classical MIL protocol: stratified 10-fold CV, optionally repeated.

    Without ``train_masks``, ``n_repeats`` repetitions of stratified
    ``n_splits``-fold cross-validation on the bag labels, each repetition
    shuffled with its own seed (repetition ``r`` uses ``random_state + r``
    when ``random_state`` is an int). With ``train_masks`` (the folds stored
    with the benchmark files, see
    :func:`~skstruct.datasets.load_mil_benchmark`), the first ``n_repeats``
    repetitions of those folds. Usable as ``cv=`` of ``cross_val_score``,
    ``cross_validate`` and ``GridSearchCV``.

    Parameters
    ----------
    n_splits : int, default=10
        Folds per repetition. With ``train_masks``, must equal their number
        of folds.
    n_repeats : int, default=1
        Number of repetitions.
    train_masks : array-like of bool of shape (n_repeats_stored, n_folds, n_bags), default=None
        Stored training masks.
    random_state : int, RandomState instance or None, default=0
        Seed of the shuffled folds (ignored with ``train_masks``).

    See Also
    --------
    TrainMaskSplit : Any stored masks.
    sklearn.model_selection.StratifiedKFold : The fold generator.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.model_selection import cross_val_score
    >>> from skstruct.model_selection import MILBenchmarkCV
    >>> y = np.array([0, 1] * 10)
    >>> cv = MILBenchmarkCV(n_splits=5, n_repeats=2, random_state=0)
    >>> cv.get_n_splits()
    10
    >>> [len(test) for _, test in cv.split(list(range(20)), y)][:5]
    [4, 4, 4, 4, 4]
    """

    def __init__(self, n_splits=10, n_repeats=1, *, train_masks=None, random_state=0):
        self.n_splits = n_splits
        self.n_repeats = n_repeats
        self.train_masks = train_masks
        self.random_state = random_state

    def _check(self):
        for name in ("n_splits", "n_repeats"):
            value = getattr(self, name)
            low = 2 if name == "n_splits" else 1
            if (
                not isinstance(value, numbers.Integral)
                or isinstance(value, bool)
                or value < low
            ):
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}.")
        if self.train_masks is None:
            return None
        masks = np.asarray(self.train_masks)
        if masks.ndim == 2:
            masks = masks[None]
        if masks.ndim != 3:
            raise ValueError(
                "train_masks must have shape (n_repeats, n_folds, n_bags), got "
                f"shape {masks.shape}."
            )
        if masks.shape[1] != self.n_splits:
            raise ValueError(
                f"train_masks hold {masks.shape[1]} folds per repetition but "
                f"n_splits={self.n_splits}; set n_splits={masks.shape[1]}."
            )
        if self.n_repeats > masks.shape[0]:
            raise ValueError(
                f"n_repeats={self.n_repeats} but train_masks hold only "
                f"{masks.shape[0]} repetitions."
            )
        return masks[: self.n_repeats]

    def get_n_splits(self, X=None, y=None, groups=None):
        """Number of splits, ``n_splits * n_repeats``.

        Parameters
        ----------
        X, y, groups : object, default=None
            Ignored; present for the sklearn splitter API.

        Returns
        -------
        n_splits : int
            ``n_splits * n_repeats``.
        """
        self._check()
        return self.n_splits * self.n_repeats

    def split(self, X, y=None, groups=None):
        """Yield ``(train, test)`` index arrays, repetition by repetition.

        Parameters
        ----------
        X : sequence of length n_bags
            Bags; only their number is used.
        y : array-like of shape (n_bags,)
            Bag labels, for stratification (not needed with ``train_masks``).
        groups : None
            Ignored.

        Yields
        ------
        train : ndarray
            Indices of the training bags.
        test : ndarray
            Indices of the test bags.
        """
        masks = self._check()
        if masks is not None:
            yield from TrainMaskSplit(masks).split(X)
            return
        if y is None:
            raise ValueError(
                "MILBenchmarkCV.split needs y (the bag labels) to stratify the "
                "folds."
            )
        rng = self.random_state
        for r in range(self.n_repeats):
            seed = rng + r if isinstance(rng, numbers.Integral) else check_random_state(rng)
            cv = StratifiedKFold(n_splits=self.n_splits, shuffle=True, random_state=seed)
            yield from cv.split(np.zeros(len(X)), y)

    def _iter_test_masks(self, X=None, y=None, groups=None):  # pragma: no cover
        for _, test in self.split(X, y, groups):
            mask = np.zeros(len(X), dtype=bool)
            mask[test] = True
            yield mask

    def __repr__(self):
        masks = "None" if self.train_masks is None else f"<bool array of shape {np.shape(self.train_masks)}>"
        return (
            f"MILBenchmarkCV(n_splits={self.n_splits}, n_repeats={self.n_repeats}, "
            f"train_masks={masks}, random_state={self.random_state})"
        )
