"""Mixed precision, thread control and the CUDA path.

The CUDA tests carry the ``gpu`` marker and skip cleanly without a GPU
(``pytest -m gpu`` runs only them on a GPU machine).
"""

import inspect
import io
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch
from sklearn.datasets import load_iris
from sklearn.preprocessing import StandardScaler

from skstruct import ConveyanceClassifier
from skstruct.utils.discovery import all_estimators

from ._instances import FLAT_PARAMS

FAST = dict(hidden_layer_sizes=(16,), max_epochs=15, batch_size=32, lr=1e-2, random_state=0)

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def _torch_estimators():
    """``(name, class)`` of every discovered estimator that trains a torch network.

    The others (SetKernelSVC, an SVM) hold no tensor and have no torch settings.
    """
    from skstruct._base import _BaseStructuredClassifier

    return [(name, cls) for name, cls in all_estimators()
            if issubclass(cls, _BaseStructuredClassifier)]


def test_every_estimator_has_precision_and_n_threads():
    """Check that every torch estimator exposes the shared precision and n_threads parameters."""
    for name, cls in _torch_estimators():
        params = inspect.signature(cls.__init__).parameters
        assert params["precision"].default == "fp32", name
        assert params["n_threads"].default is None, name


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_on_cpu_trains(iris, precision):
    """Check that autocast training gives finite float32 losses and a useful model."""
    X, y = iris
    clf = ConveyanceClassifier(precision=precision, **{**FAST, "max_epochs": 30}).fit(X, y)
    assert np.all(np.isfinite(clf.loss_curve_))
    assert clf.score(X, y) > 0.8
    proba = clf.predict_proba(X)
    assert proba.dtype == np.float64
    np.testing.assert_allclose(proba.sum(1), 1.0)


def test_unknown_precision_rejected(iris):
    """Check that an unknown precision string is rejected with the options."""
    X, y = iris
    with pytest.raises(ValueError, match="precision"):
        ConveyanceClassifier(precision="int8", **FAST).fit(X, y)


def test_n_threads_applies_during_fit_and_is_restored(iris):
    """Check that n_threads sets torch's threads inside fit/predict and restores them."""
    X, y = iris
    before = torch.get_num_threads()
    seen = []

    class Probe(torch.nn.Module):
        def forward(self, X):
            seen.append(torch.get_num_threads())
            return X

    clf = ConveyanceClassifier(module=Probe(), n_threads=1, **{**FAST, "max_epochs": 1})
    clf.fit(X, y)
    clf.predict(X)
    assert set(seen) == {1}
    assert torch.get_num_threads() == before


def test_n_threads_rejects_zero(iris):
    """Check that n_threads must be a positive integer."""
    X, y = iris
    with pytest.raises(ValueError, match="n_threads"):
        ConveyanceClassifier(n_threads=0, **FAST).fit(X, y)


@pytest.mark.gpu
@needs_cuda
@pytest.mark.parametrize("name", [name for name, _ in _torch_estimators()])
def test_cuda_training_matches_api(iris, name):
    """Check that every torch estimator trains and predicts on CUDA (MILConveyance on bags)."""
    X, y = iris
    cls = dict(all_estimators())[name]
    params = {**FLAT_PARAMS[name], "device": "cuda"}
    if name == "MILConveyance":
        # MIL takes a sequence of bags: setosa (0) vs versicolor (1), bags of 5
        # instances of one species, labelled by it.
        X, y = _iris_bags(X, y)
        params["max_epochs"] = 20
    clf = cls(**params).fit(X, y)
    assert next(clf.net_.module_.parameters()).is_cuda
    assert clf.score(X, y) > 0.8


def _iris_bags(X, y, size=5):
    """Bags of ``size`` same-species iris rows (classes 0 and 1), labelled by the species."""
    bags, labels = [], []
    for label in (0, 1):
        rows = X[y == label]
        for start in range(0, len(rows), size):
            bags.append(rows[start : start + size])
            labels.append(label)
    return bags, np.array(labels)


def test_iris_bags_fit_mil_on_cpu(iris):
    """Check the bags of the CUDA test on CPU: MILConveyance separates them."""
    bags, labels = _iris_bags(*iris)
    assert len(bags) == 20 and all(b.shape == (5, 4) for b in bags)
    clf = dict(all_estimators())["MILConveyance"](**{**FLAT_PARAMS["MILConveyance"], "max_epochs": 20})
    assert clf.fit(bags, labels).score(bags, labels) > 0.8


@pytest.mark.gpu
@needs_cuda
@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_cuda_mixed_precision(iris, precision):
    """Check bf16/fp16 autocast training on CUDA."""
    X, y = iris
    clf = ConveyanceClassifier(device="cuda", precision=precision, **{**FAST, "max_epochs": 30})
    clf.fit(X, y)
    assert np.all(np.isfinite(clf.loss_curve_))
    assert clf.score(X, y) > 0.8


class _TorchObjectFinder(pickle.Pickler):
    """A pickler that records every tensor or module it pickles itself.

    skorch pickles its device-dependent attributes in an inner pickle that it
    loads with torch's ``map_location``: objects found here are outside it.
    """

    def __init__(self, file):
        super().__init__(file)
        self.found = []

    def reducer_override(self, obj):
        if isinstance(obj, (torch.Tensor, torch.nn.Module, torch.optim.Optimizer)):
            self.found.append(type(obj).__name__)
        return NotImplemented


_PICKLE_CASES = [(name, {}) for name, _ in _torch_estimators()] + [
    ("ConveyanceClassifier", {"early_stopping": True}),
    ("MILConveyance", {"early_stopping": True}),
    ("MILConveyance", {"embedding": "mlp"}),
    ("MILConveyance", {"embedding": "mlp", "n_estimators": 2}),
    ("MILConveyance", {"embedding": "mlp", "pooling": "max"}),
]


@pytest.mark.parametrize("name, extra", _PICKLE_CASES)
def test_every_tensor_is_pickled_device_aware(iris, name, extra):
    """Check that a fitted estimator pickles no tensor outside skorch's device-aware part.

    What a model trained on CUDA needs to load on a CPU-only machine (the
    CUDA test below loads one): a tensor pickled outside skorch's inner
    pickle keeps its CUDA storage, which torch cannot load without CUDA.
    """
    X, y = iris
    params = {**FLAT_PARAMS[name], **extra}
    if name == "MILConveyance":
        X, y = _iris_bags(X, y)
    clf = dict(all_estimators())[name](**params).fit(X, y)
    finder = _TorchObjectFinder(io.BytesIO())
    finder.dump(clf)
    assert finder.found == []
    clone_ = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(clone_.predict(X), clf.predict(X))


@pytest.mark.gpu
@needs_cuda
def test_gpu_model_loads_and_predicts_on_cpu_only_process(iris, tmp_path):
    """Check that a model trained on CUDA unpickles in a CPU-only process and predicts the same."""
    X, y = iris
    clf = ConveyanceClassifier(device="cuda", **FAST).fit(X, y)
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(clf))
    np.save(tmp_path / "X.npy", X)
    expected = clf.predict_proba(X)
    code = (
        "import pickle, numpy as np, torch; assert not torch.cuda.is_available();"
        f"clf = pickle.loads(open({str(path)!r}, 'rb').read());"
        f"np.save({str(tmp_path / 'p.npy')!r}, clf.predict_proba(np.load({str(tmp_path / 'X.npy')!r})))"
    )
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)
    np.testing.assert_allclose(np.load(tmp_path / "p.npy"), expected, atol=1e-5)


def test_accelerator_single_process_matches_plain_fit(iris):
    """Check that training through skorch's accelerate integration equals the plain path.

    One CPU process: the shard is the whole epoch, so results must agree.
    """
    accelerate = pytest.importorskip("accelerate", reason="needs pip install 'skstruct[accelerate]'")
    X, y = iris
    acc = accelerate.Accelerator(cpu=True)
    clf = ConveyanceClassifier(accelerator=acc, **FAST).fit(X, y)
    ref = ConveyanceClassifier(**FAST).fit(X, y)
    np.testing.assert_allclose(clf.predict_proba(X), ref.predict_proba(X), atol=1e-6)
    assert pickle.loads(pickle.dumps(clf)).score(X, y) == clf.score(X, y)
    with pytest.raises(ValueError, match="mixed precision on the Accelerator"):
        ConveyanceClassifier(accelerator=acc, precision="bf16", **FAST).fit(X, y)


def test_batch_iterator_shards_partition_each_epoch():
    """Check that data-parallel shards of one seeded permutation partition the samples."""
    from skstruct.utils._torch import ArrayDataset, BatchIterator

    ds = ArrayDataset(np.arange(23, dtype=float)[:, None], np.zeros(23))
    seen = []
    for index in range(3):
        it = BatchIterator(ds, batch_size=4, shuffle=True,
                           generator=torch.Generator().manual_seed(5), shard=(index, 3))
        rows = torch.cat([xb[:, 0] for xb, _ in it])
        assert len(it) == int(np.ceil(len(rows) / 4))
        seen.append(rows)
    np.testing.assert_array_equal(np.sort(torch.cat(seen).numpy()), np.arange(23))


def test_every_cuda_test_is_marked_gpu():
    """Check that each test skipped without CUDA carries the gpu marker (pytest -m gpu runs it).

    benchmarks/gpu_check.sh runs ``pytest -m gpu``: a CUDA test without the
    marker would never run on the GPU machine.
    """
    import ast
    import pathlib

    unmarked = []
    for path in sorted(pathlib.Path(__file__).parent.rglob("test_*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if not isinstance(node, ast.FunctionDef) or not node.name.startswith("test_"):
                continue
            decorators = [ast.unparse(d) for d in node.decorator_list]
            needs_gpu = any(
                "cuda.is_available" in d or d == "needs_cuda" for d in decorators
            )
            if needs_gpu and "pytest.mark.gpu" not in decorators:
                unmarked.append(f"{path.name}::{node.name}")
    assert not unmarked, f"CUDA tests without @pytest.mark.gpu: {unmarked}"
