"""Faults during training and use (issue 15).

* a ``KeyboardInterrupt`` during ``fit`` (Ctrl-C, or a callback raising it)
  leaves a fitted, predicting estimator and a ``TrainingInterruptedWarning``;
* NaN or infinity in X at prediction time is a ``ValueError`` naming X, for
  every estimator and every prediction method;
* ``predict_proba`` on 10^6 rows runs in batches: its peak extra memory is a
  small multiple of the output, never a full-size hidden layer;
* concurrent predictions from 4 threads on one fitted model equal the serial
  ones, bit for bit;
* a pickle records the skstruct version, and loading one from another
  version warns (``InconsistentVersionWarning``), as sklearn does.
"""

import copy
import os
import pickle
import sys
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from skorch.callbacks import Callback

import skstruct
from skstruct import (
    AverageKClassifier,
    ConveyanceClassifier,
    CrossEntropyClassifier,
    EMDOrdinalRegressor,
    HACEClassifier,
    MILConveyance,
)
from skstruct.exceptions import InconsistentVersionWarning, TrainingInterruptedWarning

FAST = dict(hidden_layer_sizes=(16,), max_epochs=3, batch_size=16, lr=1e-2, random_state=0)
HIERARCHY = {0: "a", 1: "a", 2: "b", 3: "b"}


def _data(seed=0, n=80):
    rng = np.random.RandomState(seed)
    y = np.arange(n) % 4
    X = (rng.randn(n, 4) + y[:, None]).astype(np.float32)
    return X, y


def _bags(seed=0, n=24):
    rng = np.random.RandomState(seed)
    y = np.arange(n) % 2
    bags = [rng.randn(rng.randint(1, 5), 4) + 2.0 * label for label in y]
    return bags, y


# name -> (estimator, prediction methods taking X)
ESTIMATORS = {
    "ConveyanceClassifier": (
        lambda: ConveyanceClassifier(set_size=2, **FAST),
        ("predict", "predict_proba", "predict_set"),
    ),
    "CrossEntropyClassifier": (
        lambda: CrossEntropyClassifier(set_size=2, **FAST),
        ("predict", "predict_proba", "predict_set"),
    ),
    "HACEClassifier": (
        lambda: HACEClassifier(class_structure=HIERARCHY, set_size=2, **FAST),
        ("predict", "predict_proba", "predict_set"),
    ),
    "EMDOrdinalRegressor": (
        lambda: EMDOrdinalRegressor(set_size=2, **FAST),
        ("predict", "predict_proba", "predict_set", "predict_interval"),
    ),
    "AverageKClassifier": (
        lambda: AverageKClassifier(k=2, **FAST),
        ("predict", "predict_proba", "predict_set"),
    ),
    "MILConveyance": (
        lambda: MILConveyance(max_epochs=2, random_state=0),
        ("predict", "predict_proba", "predict_set", "decision_function"),
    ),
}


def _fit_data(name):
    return _bags() if name == "MILConveyance" else _data()


@pytest.fixture(scope="module")
def fitted():
    """Each estimator fitted once on small data (shared by the tests below)."""
    return {name: make().fit(*_fit_data(name)) for name, (make, _) in ESTIMATORS.items()}


def _methods():
    return [(name, m) for name, (_, methods) in ESTIMATORS.items() for m in methods]


# ---------------------------------------------------------------- interrupt


class _Interrupt(Callback):
    """Raise KeyboardInterrupt once, at batch ``batch`` of epoch ``epoch`` (or at its end)."""

    def __init__(self, epoch, batch=None):
        self.epoch = epoch
        self.batch = batch
        self.fired = False

    def _fire(self):
        self.fired = True
        raise KeyboardInterrupt

    def on_batch_end(self, net, training=None, **kwargs):
        row = net.history[-1]
        if training and not self.fired and self.batch is not None and len(net.history) == self.epoch:
            if len(row["batches"]) == self.batch:
                self._fire()

    def on_epoch_end(self, net, **kwargs):
        if not self.fired and self.batch is None and len(net.history) == self.epoch:
            self._fire()


@pytest.mark.parametrize(
    "epoch, batch, complete",
    [(1, 2, 0), (3, 2, 2), (3, None, 3)],
    ids=["first-epoch-batch", "mid-epoch-batch", "epoch-end"],
)
@pytest.mark.parametrize("early_stopping", [False, True])
def test_keyboard_interrupt_leaves_a_fitted_model(epoch, batch, complete, early_stopping):
    """Check that Ctrl-C in fit warns, keeps whole epochs and leaves a predicting model."""
    X, y = _data()
    clf = ConveyanceClassifier(
        **{**FAST, "max_epochs": 10}, early_stopping=early_stopping,
        callbacks=[_Interrupt(epoch, batch)],
    )
    with pytest.warns(TrainingInterruptedWarning, match=f"after {complete} complete epoch"):
        clf.fit(X, y)
    assert clf.n_iter_ == complete == len(clf.net_.history)
    assert len(clf.loss_curve_) == complete and np.all(np.isfinite(clf.loss_curve_))
    if early_stopping:
        assert len(clf.validation_loss_curve_) == complete
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), 4) and np.allclose(proba.sum(axis=1), 1.0)
    assert set(clf.predict(X)) <= set(clf.classes_)
    assert clf.predict_set(X).shape == (len(X), 4)
    # the interrupted model pickles and continues training
    clone = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(clone.predict_proba(X), proba)
    if early_stopping:
        return  # partial_fit after an early-stopped fit: see the issue 15 notes
    with warnings.catch_warnings():
        warnings.simplefilter("error", TrainingInterruptedWarning)
        clf.partial_fit(X, y)
    assert clf.n_iter_ == complete + 1


def test_interrupt_warns_for_every_estimator(fitted):
    """Check that each estimator (MIL included) survives an interrupt in its first epoch."""
    for name, (make, methods) in ESTIMATORS.items():
        X, y = _fit_data(name)
        clf = make().set_params(callbacks=[_Interrupt(1, 1)])
        with pytest.warns(TrainingInterruptedWarning, match=name):
            clf.fit(X, y)
        assert clf.n_iter_ == 0, name
        for method in methods:
            out = getattr(clf, method)(X)
            assert len(out if not isinstance(out, tuple) else out[0]) == len(y), (name, method)


def test_early_stopping_is_not_an_interrupt():
    """Check that EarlyStopping (which stops by raising KeyboardInterrupt) does not warn."""
    X, y = _data()
    clf = ConveyanceClassifier(**{**FAST, "max_epochs": 500}, early_stopping=True, n_iter_no_change=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error", TrainingInterruptedWarning)
        clf.fit(X, y)
    assert clf.n_iter_ < 500


# ---------------------------------------------------------------- NaN / inf


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf], ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize("name, method", _methods())
def test_non_finite_X_at_predict(fitted, name, method, bad):
    """Check that NaN/inf in X at prediction time is a ValueError naming X."""
    clf = fitted[name]
    X, _ = _fit_data(name)
    if name == "MILConveyance":
        X = [bag.copy() for bag in X]
        X[3][0, 1] = bad
    else:
        X = X.copy()
        X[5, 2] = bad
    with pytest.raises(ValueError, match=r"\bX\b.*(NaN|infinity)|(NaN|infinity).*\bX\b"):
        getattr(clf, method)(X)


# ------------------------------------------------------------ bounded memory


def _rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _peak_extra_rss(fn):
    """(result, peak RSS above the start while ``fn`` ran), sampled every 0.2 ms."""
    start = _rss_bytes()
    peak = [start]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], _rss_bytes())
            time.sleep(0.0002)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        result = fn()
    finally:
        done.set()
        sampler.join()
    return result, max(peak[0], _rss_bytes()) - start


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm")
def test_predict_proba_on_a_million_rows_in_bounded_memory():
    """Check that predict_proba on 10^6 x 4 float32 rows needs no full-size hidden layer.

    The hidden layer (64 units) of all rows at once would be 256 MB; the
    output (10^6 x 4 float64) is 32 MB. Batched inference keeps the peak
    extra memory within 4x the output. The control (one batch of all rows)
    shows that the measurement sees a full-size intermediate.
    """
    X, y = _data()
    clf = ConveyanceClassifier(
        hidden_layer_sizes=(64,), max_epochs=1, batch_size=1024, random_state=0
    ).fit(X, y)
    big = np.random.RandomState(1).randn(10**6, 4).astype(np.float32)
    clf.predict_proba(big[:2048])  # warm up kernels and allocator
    proba, extra = _peak_extra_rss(lambda: clf.predict_proba(big))
    assert proba.shape == (10**6, 4)
    bound = 4 * proba.nbytes
    assert extra < bound, f"peak extra memory {extra / 1e6:.0f} MB >= {bound / 1e6:.0f} MB"
    del proba
    clf.batch_size = len(big)  # control: one batch, a (10^6, 64) hidden layer
    _, extra_full = _peak_extra_rss(lambda: clf.predict_proba(big))
    assert extra_full > bound, "the measurement cannot see a full-size intermediate"


# ------------------------------------------------------------------ threads


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_concurrent_predict_equals_serial(fitted, name):
    """Check that 4 threads predicting with one fitted model agree with a serial call."""
    clf = fitted[name]
    _, methods = ESTIMATORS[name]
    if name == "MILConveyance":
        X, _ = _bags(seed=1, n=40)
    else:
        X = np.random.RandomState(1).randn(3000, 4).astype(np.float32)
    serial = {m: getattr(clf, m)(X) for m in methods}
    jobs = [m for m in methods for _ in range(4)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda m: (m, getattr(clf, m)(X)), jobs))
    for method, out in results:
        expected = serial[method]
        if isinstance(expected, tuple):
            for a, b in zip(out, expected):
                np.testing.assert_array_equal(a, b, err_msg=f"{name}.{method}")
        else:
            np.testing.assert_array_equal(out, expected, err_msg=f"{name}.{method}")


# ------------------------------------------------------------------ pickles


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_pickle_records_the_skstruct_version(fitted, name):
    """Check that a pickle stores skstruct.__version__ and loads silently with it."""
    clf = fitted[name]
    assert clf.__getstate__()["_skstruct_version"] == skstruct.__version__
    with warnings.catch_warnings():
        warnings.simplefilter("error", InconsistentVersionWarning)
        loaded = pickle.loads(pickle.dumps(clf))
    assert "_skstruct_version" not in vars(loaded)
    X, _ = _fit_data(name)
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))


@pytest.mark.parametrize("original", ["0.0.1", None], ids=["other", "unrecorded"])
def test_unpickling_another_version_warns(fitted, original):
    """Check that loading a pickle of another skstruct version warns, naming both."""
    clf = fitted["ConveyanceClassifier"]
    state = clf.__getstate__()
    if original is None:
        del state["_skstruct_version"]
    else:
        state["_skstruct_version"] = original
    loaded = ConveyanceClassifier.__new__(ConveyanceClassifier)
    with pytest.warns(InconsistentVersionWarning) as record:
        loaded.__setstate__(state)
    (warning,) = [w.message for w in record if isinstance(w.message, InconsistentVersionWarning)]
    assert warning.original_version == (original or "unknown")
    assert warning.current_version == skstruct.__version__
    message = str(warning)
    assert skstruct.__version__ in message and (original or "unknown") in message
    assert "Refit" in message and "pin" in message
    X, _ = _data()
    np.testing.assert_array_equal(loaded.predict(X), clf.predict(X))


def test_bag_transformer_pickle_records_the_version():
    """Check that BagTransformer (the other skstruct estimator) records the version too."""
    from sklearn.preprocessing import StandardScaler

    from skstruct.preprocessing import BagTransformer

    bags, _ = _bags()
    transformer = BagTransformer(StandardScaler()).fit(bags)
    state = transformer.__getstate__()
    assert state["_skstruct_version"] == skstruct.__version__
    state["_skstruct_version"] = "0.0.1"
    with pytest.warns(InconsistentVersionWarning, match="BagTransformer"):
        BagTransformer.__new__(BagTransformer).__setstate__(state)


def test_torch_threads_restored_after_concurrent_predict(fitted):
    """Check that concurrent predictions with n_threads leave torch's thread count as it was."""
    clf = copy.deepcopy(fitted["ConveyanceClassifier"]).set_params(n_threads=2)
    X = np.random.RandomState(2).randn(2000, 4).astype(np.float32)
    expected = clf.predict_proba(X)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        with ThreadPoolExecutor(max_workers=4) as pool:
            results = list(pool.map(lambda _: clf.predict_proba(X), range(16)))
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    for out in results:
        np.testing.assert_array_equal(out, expected)
