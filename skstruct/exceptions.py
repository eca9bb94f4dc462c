"""Exceptions and warnings raised by skstruct.

Each exception also subclasses the builtin a user would naturally catch, so
``except ValueError`` keeps working; each warning subclasses ``UserWarning``.
"""

__all__ = [
    "InconsistentVersionWarning",
    "SkstructError",
    "SkstructWarning",
    "StructureError",
    "TrainingError",
    "TrainingInterruptedWarning",
]


class SkstructError(Exception):
    """Base class of every error raised by skstruct."""


class StructureError(SkstructError, ValueError):
    """A class structure is malformed or does not match the labels."""


class TrainingError(SkstructError, RuntimeError):
    """Training diverged, for example the loss became NaN or infinite."""


class SkstructWarning(UserWarning):
    """Base class of every warning issued by skstruct."""


class TrainingInterruptedWarning(SkstructWarning):
    """``fit`` was interrupted (``KeyboardInterrupt``) and kept the network so far.

    The estimator is fitted and predicts with the weights of the last batch
    trained; ``n_iter_`` counts the epochs that completed.
    """


class InconsistentVersionWarning(SkstructWarning):
    """An estimator is unpickled with a skstruct version other than the one that saved it.

    skstruct's counterpart of :class:`sklearn.exceptions.InconsistentVersionWarning`.

    Parameters
    ----------
    estimator_name : str
        Class name of the unpickled estimator.
    current_version : str
        The skstruct version running now.
    original_version : str
        The skstruct version recorded in the pickle (``'unknown'`` when the
        pickle records none).

    Examples
    --------
    >>> from skstruct.exceptions import InconsistentVersionWarning
    >>> w = InconsistentVersionWarning(
    ...     estimator_name="ConveyanceClassifier", current_version="0.2",
    ...     original_version="0.1")
    >>> isinstance(w, UserWarning)
    True
    """

    def __init__(self, *, estimator_name, current_version, original_version):
        super().__init__(estimator_name, current_version, original_version)
        self.estimator_name = estimator_name
        self.current_version = current_version
        self.original_version = original_version

    def __str__(self):
        return (
            f"Trying to unpickle estimator {self.estimator_name} saved with skstruct "
            f"{self.original_version} when using skstruct {self.current_version}. "
            "This might lead to breaking code or invalid results. Refit the "
            f"estimator with skstruct {self.current_version}, or pin "
            f"skstruct=={self.original_version} to load this pickle."
        )
