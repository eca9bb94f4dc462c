"""The per-step fast paths of ``_SkstructNet`` keep skorch's records and semantics."""

import numpy as np
import pytest
import torch
from sklearn.datasets import make_classification

from skstruct import CrossEntropyClassifier


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(n_samples=90, n_features=5, n_classes=3,
                               n_informative=3, random_state=0)
    return X.astype(np.float32), y


def test_history_has_skorchs_batch_records(data):
    X, y = data
    clf = CrossEntropyClassifier(hidden_layer_sizes=(8,), max_epochs=2, batch_size=32,
                                 random_state=0).fit(X, y)
    history = clf.net_.history
    assert len(history) == 2
    for epoch in history:
        sizes = [b["train_batch_size"] for b in epoch["batches"]]
        assert sizes == [32, 32, 26]
        assert epoch["train_batch_count"] == 3
        losses = [b["train_loss"] for b in epoch["batches"]]
        assert all(isinstance(v, float) and np.isfinite(v) for v in losses)
        # skorch's epoch loss: the batch-size weighted mean of the batch losses.
        np.testing.assert_allclose(epoch["train_loss"], np.average(losses, weights=sizes))
    assert clf.loss_curve_ == [e["train_loss"] for e in history]


class _ClosureSGD(torch.optim.SGD):
    """An optimizer that needs the closure (as LBFGS does) and counts its calls."""

    calls = 0

    def step(self, closure=None):
        assert closure is not None, "optimizers outside Adam/AdamW/SGD get skorch's closure"
        type(self).calls += 1
        with torch.enable_grad():
            closure()
        return super().step()


def test_other_optimizers_get_the_closure(data):
    X, y = data
    _ClosureSGD.calls = 0
    CrossEntropyClassifier(hidden_layer_sizes=(8,), max_epochs=2, batch_size=32,
                           optimizer=_ClosureSGD, random_state=0).fit(X, y)
    assert _ClosureSGD.calls == 6


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "sgd", torch.optim.Adagrad, _ClosureSGD])
def test_every_optimizer_trains(optimizer, data):
    # Adam/AdamW/SGD step without a closure, the others through skorch's.
    X, y = data
    clf = CrossEntropyClassifier(hidden_layer_sizes=(8,), max_epochs=3, batch_size=32,
                                 optimizer=optimizer, lr=0.1, random_state=0).fit(X, y)
    assert clf.loss_curve_[-1] < clf.loss_curve_[0]
