"""Loaders of the classical multiple-instance benchmarks (never downloading).

The five data sets (MUSK1, MUSK2, ELEPHANT, FOX, TIGER) ship inside the
package (``skstruct/datasets/data/mil/<name>.npz``, MIT licensed, provenance
and licence in ``LICENSE.md`` beside them), with their stored 5 x 10 folds.
A user copy in ``<data_home>/mil/<name>.npz`` is read instead when a data
home is given (``data_home=`` or the ``SKSTRUCT_DATA`` environment variable).
"""

import os
from importlib import resources
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch

from ..structures import ClassGraph

__all__ = ["MIL_BENCHMARKS", "get_data_home", "load_mil_benchmark"]

MIL_BENCHMARKS = ("musk1", "musk2", "elephant", "fox", "tiger")

_DESCR = {
    "musk1": "MUSK1 (Dietterich, Lathrop and Lozano-Pérez, 1997): 92 molecules "
    "(47 musk, 45 not), each a bag of its low-energy conformations; 166 "
    "features per conformation.",
    "musk2": "MUSK2 (Dietterich, Lathrop and Lozano-Pérez, 1997): 102 molecules "
    "(39 musk, 63 not), bags of 1 to 1044 conformations; 166 features.",
    "elephant": "ELEPHANT (Andrews, Tsochantaridis and Hofmann, 2002): 200 images "
    "(100 with an elephant), each a bag of image segments; 230 features.",
    "fox": "FOX (Andrews, Tsochantaridis and Hofmann, 2002): 200 images (100 "
    "with a fox), each a bag of image segments; 230 features.",
    "tiger": "TIGER (Andrews, Tsochantaridis and Hofmann, 2002): 200 images (100 "
    "with a tiger), each a bag of image segments; 230 features.",
}


def get_data_home(data_home=None):
    """Return the folder skstruct reads user-provided data sets from.

    The first of: the ``data_home`` argument; the environment variable
    ``SKSTRUCT_DATA``; ``~/skstruct_data``. The folder is not created and
    nothing is downloaded. The five MIL benchmarks ship inside the package
    and need no data home (:func:`load_mil_benchmark` reads a data home only
    when one is given).

    Parameters
    ----------
    data_home : str or path-like, default=None
        An explicit folder; ``~`` is expanded.

    Returns
    -------
    data_home : str
        The folder's path.

    Examples
    --------
    >>> from skstruct.datasets import get_data_home
    >>> get_data_home("/tmp/my_data")
    '/tmp/my_data'
    """
    if data_home is not None:
        return os.path.expanduser(os.fspath(data_home))
    env = os.environ.get("SKSTRUCT_DATA")
    if env:
        return os.path.expanduser(env)
    return os.path.join(os.path.expanduser("~"), "skstruct_data")


def _npz_candidates(home, name):
    return [os.path.join(home, "mil", f"{name}.npz"), os.path.join(home, f"{name}.npz")]


def _read_npz(path):
    with np.load(path, allow_pickle=False) as data:
        instances = np.asarray(data["instances"], dtype=np.float64)
        bag_index = np.asarray(data["bag_index"], dtype=np.int64)
        target = np.asarray(data["bag_labels"], dtype=np.int64)
        masks = np.asarray(data["train_masks"], dtype=bool) if "train_masks" in data else None
    n_bags = len(target)
    order = np.argsort(bag_index, kind="stable")
    counts = np.bincount(bag_index, minlength=n_bags)
    bags = np.split(instances[order], np.cumsum(counts)[:-1])
    return bags, target, masks


def _packaged(name):
    """The copy of ``name`` that ships inside the package (a path-like)."""
    return resources.files("skstruct.datasets") / "data" / "mil" / f"{name}.npz"


def load_mil_benchmark(name, *, data_home=None, return_X_y=False):
    """Load one of the five classical multiple-instance benchmarks.

    MUSK1, MUSK2, ELEPHANT, FOX and TIGER: bags of feature vectors with one
    binary label per bag (1 = positive), with the stored 5 x 10 folds of the
    classical protocol. The five files ship inside the package (about
    2.1 MB; MIT licensed, provenance and licence in
    ``skstruct/datasets/data/mil/LICENSE.md``), so this works from any
    directory with nothing to download. A data home (``data_home=`` or the
    ``SKSTRUCT_DATA`` environment variable) holding ``mil/<name>.npz`` (or
    ``<name>.npz``) is read instead: the format of ``numpy.savez`` with keys
    ``instances``, ``bag_index``, ``bag_labels`` and optionally
    ``train_masks``. Nothing is ever downloaded.

    Parameters
    ----------
    name : {'musk1', 'musk2', 'elephant', 'fox', 'tiger'}
        The data set (case-insensitive).
    data_home : str or path-like, default=None
        Folder holding ``mil/<name>.npz``; the file must exist there.
        ``None``: the folder of the ``SKSTRUCT_DATA`` environment variable
        when it is set and holds the file, otherwise the packaged copy.
    return_X_y : bool, default=False
        Return ``(bags, target)`` instead of a Bunch.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        ``data``: list of float64 arrays of shape (n_instances_i,
        n_features), one per bag; ``target``: int64 array of shape
        (n_bags,); ``train_masks``: bool array of shape (n_repeats, n_folds,
        n_bags), True for the training bags of each fold, or None when the
        file has no stored folds; ``structure``: the MIL
        :class:`~skstruct.structures.ClassGraph` over (0, 1); ``source``: the
        file read; ``name``; ``DESCR``.
    (bags, target) : tuple
        With ``return_X_y=True``.

    Raises
    ------
    ValueError
        If ``name`` is not one of the five benchmarks.
    FileNotFoundError
        If ``data_home`` is given and holds no such file; the message lists
        the paths searched.

    See Also
    --------
    skstruct.model_selection.MILBenchmarkCV : The 10-fold protocol, with the
        stored folds.
    skstruct.MILConveyance : A classifier of bags.

    Examples
    --------
    >>> from skstruct.datasets import load_mil_benchmark
    >>> musk1 = load_mil_benchmark("musk1")
    >>> len(musk1.data), musk1.data[0].shape[1], musk1.train_masks.shape
    (92, 166, (5, 10, 92))
    """
    if not isinstance(name, str) or name.lower() not in MIL_BENCHMARKS:
        raise ValueError(
            f"name must be one of {list(MIL_BENCHMARKS)}, got {name!r}."
        )
    name = name.lower()
    source = None
    if data_home is not None or os.environ.get("SKSTRUCT_DATA"):
        home = get_data_home(data_home)
        searched = _npz_candidates(home, name)
        source = next((path for path in searched if os.path.isfile(path)), None)
        if source is None and data_home is not None:
            raise FileNotFoundError(
                f"MIL benchmark {name!r} not found in data_home={os.fspath(data_home)!r}. "
                f"Searched: {searched}. Put {name}.npz (keys instances, bag_index, "
                f"bag_labels, train_masks) in {os.path.join(home, 'mil')}, or pass "
                "data_home=None to read the copy that ships with skstruct (the "
                "SKSTRUCT_DATA environment variable, when set, is searched first)."
            )
    if source is None:
        packaged = _packaged(name)
        if not packaged.is_file():
            raise FileNotFoundError(
                f"The packaged copy of MIL benchmark {name!r} is missing from this "
                f"installation ({packaged}); reinstall skstruct, or put {name}.npz in "
                "<data home>/mil/ and pass data_home= (or set SKSTRUCT_DATA)."
            )
        with resources.as_file(packaged) as path:
            bags, target, masks = _read_npz(path)
        source = str(packaged)
    else:
        bags, target, masks = _read_npz(source)
    if return_X_y:
        return bags, target
    return Bunch(
        data=bags,
        target=target,
        train_masks=masks,
        structure=ClassGraph([[True, True], [False, True]], classes=[0, 1]),
        source=source,
        name=name,
        DESCR=_DESCR[name],
    )
