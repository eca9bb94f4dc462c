"""The one inference path of the base: ``_forward`` -> ``ForwardResult``."""

import numpy as np
import pytest
import torch
from sklearn.datasets import make_classification

from skstruct import (
    AverageKClassifier,
    ConveyanceClassifier,
    CrossEntropyClassifier,
    EMDOrdinalRegressor,
    HACEClassifier,
)
from skstruct._base import ForwardResult, _inference_batches
from skstruct.utils._torch import ArrayDataset

FAST = dict(hidden_layer_sizes=(16,), max_epochs=2, batch_size=8, random_state=0)


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(
        n_samples=61, n_features=6, n_informative=4, n_classes=4, random_state=0
    )
    return X.astype(np.float32), y


class _GatherOnly:
    """An ArrayDataset seen only through ``get_batch`` (the generic path)."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self):
        return len(self.dataset)

    def get_batch(self, indices):
        return self.dataset.get_batch(indices)


@pytest.mark.parametrize("n", [1, 7, 8, 9, 24, 61])
def test_array_batches_equal_the_generic_get_batch_path(n):
    X = np.random.default_rng(n).normal(size=(n, 3)).astype(np.float32)
    ds = ArrayDataset(X)
    fast = list(_inference_batches(ds, 8))
    slow = list(_inference_batches(_GatherOnly(ds), 8))
    assert len(fast) == len(slow) == -(-n // 8)
    for (xf, nf), (xs, ns) in zip(fast, slow):
        assert nf == ns
        assert xf.shape == (8, 3)  # every batch has batch_size rows
        torch.testing.assert_close(xf, xs, rtol=0, atol=0)
    assert sum(nf for _, nf in fast) == n


def _estimators():
    hierarchy = {0: "a", 1: "a", 2: "b", 3: "b"}
    return [
        ConveyanceClassifier(**FAST),
        CrossEntropyClassifier(**FAST),
        EMDOrdinalRegressor(**FAST),
        HACEClassifier(class_structure=hierarchy, **FAST),
        HACEClassifier(class_structure=hierarchy, node_logits=True, **FAST),
        AverageKClassifier(k=2, head="multilabel", **FAST),
    ]


@pytest.mark.parametrize("est", _estimators(), ids=lambda e: type(e).__name__)
def test_forward_returns_one_result_type(est, data):
    X, y = data
    est.fit(X, y)
    result = est._forward(est._validate_X(X, reset=False))
    assert isinstance(result, ForwardResult)
    assert result.logits.shape == (len(X), len(est.classes_))
    assert result.logits.dtype == torch.float32
    assert not result.logits.requires_grad
    assert result.logits.device.type == "cpu"
    # predict_proba is the softmax of exactly these logits.
    expected = torch.softmax(result.logits, dim=1).double().numpy()
    np.testing.assert_allclose(est.predict_proba(X), expected, rtol=1e-6, atol=1e-7)


def test_forward_matches_a_plain_module_call(data):
    X, y = data
    est = AverageKClassifier(k=2, head="multilabel", **FAST).fit(X, y)
    result = est._forward(X)
    module = est.net_.module_.eval()
    with torch.no_grad():
        soft, multi = module(torch.as_tensor(X))
    torch.testing.assert_close(result.logits, soft)
    torch.testing.assert_close(result.extras["outputs"][1], multi)
    assert len(result.extras["outputs"]) == 2


@pytest.mark.parametrize("batch_size", [1, 8, 100])
def test_predict_proba_of_a_subset_is_the_subset(batch_size, data):
    X, y = data
    est = ConveyanceClassifier(**dict(FAST, batch_size=batch_size)).fit(X, y)
    full = est.predict_proba(X)
    rows = np.array([60, 3, 17, 17, 0, 41, 9])
    np.testing.assert_array_equal(est.predict_proba(X[rows]), full[rows])


def test_forward_leaves_autograd_and_training_working(data):
    X, y = data
    est = ConveyanceClassifier(**dict(FAST, warm_start=True)).fit(X, y)
    before = est.predict_proba(X)
    est.fit(X, y)  # trains again after an inference pass
    assert not np.array_equal(before, est.predict_proba(X))


@pytest.mark.parametrize("n_classes", [2, 10, 15, 16, 40])
def test_probabilities_equal_a_float64_softmax(n_classes):
    """Check _proba_from_logits on both of its paths (< 16 classes: three passes; else torch.softmax)."""
    est = CrossEntropyClassifier()
    rng = np.random.RandomState(n_classes)
    logits = rng.randn(300, n_classes) * np.array([[1.0], [30.0], [1e4]]).repeat(100, axis=0)
    logits[0] = 0.0  # a uniform row
    logits[1, 1:] = -np.inf  # one possible class
    proba = est._proba_from_logits(torch.as_tensor(logits, dtype=torch.float32))
    ref = torch.softmax(torch.as_tensor(logits, dtype=torch.float32).double(), dim=1).numpy()
    assert proba.dtype == np.float64 and proba.shape == logits.shape
    np.testing.assert_allclose(proba, ref, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(proba[1], np.eye(n_classes)[0])
