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


# ------------------------------------------------------------ the plain step


def _generic_step(monkeypatch):
    """Make every net take skorch's own train step (closure, train_step_single)."""
    monkeypatch.setattr("skstruct._net._SkstructNet._plain_step", lambda self: False)


def _count_plain_steps(monkeypatch):
    from skstruct._net import _SkstructNet

    calls = []
    plain = _SkstructNet._plain_train_step

    def spy(self, batch, fit_params):
        calls.append(1)
        return plain(self, batch, fit_params)

    monkeypatch.setattr(_SkstructNet, "_plain_train_step", spy)
    return calls


_STEP_CASES = {
    "default": {},
    "sgd": {"optimizer": "sgd", "lr": 0.05},
    "adamw": {"optimizer": "adamw", "weight_decay": 0.01},
    "foreach": {"optimizer_kwargs": {"foreach": True}},
    "grad_listener": {"callbacks": "l1"},  # an on_grad_computed callback
    "early_stopping": {"early_stopping": True, "n_iter_no_change": 2},
    "bf16": {"precision": "bf16"},
}


@pytest.mark.parametrize("case", sorted(_STEP_CASES))
def test_plain_step_equals_skorchs_step(case, data, monkeypatch):
    # The plain step makes skorch's calls in skorch's order: the same losses,
    # the same weights, bit for bit.
    X, y = data
    params = dict(hidden_layer_sizes=(8,), max_epochs=3, batch_size=32, random_state=0)
    params.update(_STEP_CASES[case])
    if params.get("callbacks") == "l1":
        from skstruct.callbacks import L1Penalty

        params["callbacks"] = [L1Penalty(1e-2)]
    with monkeypatch.context() as patch:
        calls = _count_plain_steps(patch)
        plain = CrossEntropyClassifier(**params).fit(X, y)
    assert len(calls) == sum(e["train_batch_count"] for e in plain.net_.history)
    with monkeypatch.context() as patch:
        _generic_step(patch)
        calls = _count_plain_steps(patch)
        generic = CrossEntropyClassifier(**params).fit(X, y)
    assert calls == []
    assert plain.loss_curve_ == generic.loss_curve_
    for a, b in zip(plain.net_.history, generic.net_.history):
        assert a["batches"] == b["batches"]  # train (and valid) losses and sizes
        assert a.get("valid_loss") == b.get("valid_loss")
    np.testing.assert_array_equal(plain.predict_proba(X), generic.predict_proba(X))


def test_plain_step_with_weighted_targets_equals_skorchs_step(data, monkeypatch):
    # Non-uniform weights: the targets are (y, weight) pairs, which go
    # through get_loss as in skorch.
    X, y = data
    weights = np.where(y == 0, 3.0, 1.0)
    params = dict(hidden_layer_sizes=(8,), max_epochs=2, batch_size=32, random_state=1)
    plain = CrossEntropyClassifier(**params).fit(X, y)
    with monkeypatch.context() as patch:
        _generic_step(patch)
        generic = CrossEntropyClassifier(**params).fit(X, y)
    assert plain.loss_curve_ == generic.loss_curve_
    np.testing.assert_array_equal(plain.predict_proba(X), generic.predict_proba(X))


def test_plain_step_is_deterministic(data):
    X, y = data
    params = dict(hidden_layer_sizes=(8,), max_epochs=2, batch_size=16)
    a = CrossEntropyClassifier(random_state=3, **params).fit(X, y)
    b = CrossEntropyClassifier(random_state=3, **params).fit(X, y)
    c = CrossEntropyClassifier(random_state=4, **params).fit(X, y)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    assert a.loss_curve_ == b.loss_curve_
    assert a.loss_curve_ != c.loss_curve_


def test_overridden_step_methods_take_skorchs_step(data):
    # A method of skorch's step replaced on the instance (or in a subclass,
    # as the accelerated net does) is called: the plain step steps aside.
    from skstruct._net import _AcceleratedNet

    X, y = data
    clf = CrossEntropyClassifier(hidden_layer_sizes=(8,), max_epochs=1, batch_size=32,
                                 random_state=0).fit(X, y)
    net = clf.net_
    assert net._plain_step()
    seen = []
    get_loss = net.get_loss
    net.get_loss = lambda *args, **kwargs: seen.append(1) or get_loss(*args, **kwargs)
    assert not net._plain_step()
    clf.partial_fit(X, y)
    assert len(seen) == 3
    del net.get_loss
    assert net._plain_step()
    # A closure optimizer, or a subclass overriding train_step_single.
    net.optimizer_ = torch.optim.LBFGS(net.module_.parameters())
    assert not net._plain_step()
    assert _AcceleratedNet.train_step_single is not type(net).train_step_single


def test_notify_skips_only_skorchs_no_op_hooks(data):
    from skorch import NeuralNet

    from skstruct.callbacks import NonFiniteLossGuard

    X, y = data
    net = CrossEntropyClassifier(hidden_layer_sizes=(8,), max_epochs=1,
                                 random_state=0).fit(X, y).net_
    end = net._listeners_of("on_batch_end")
    assert [type(getattr(c, "__self__", None)) for c in end] == [NonFiniteLossGuard]
    assert net._listeners_of("on_grad_computed") == []
    # The net's own hooks that keep the history stay.
    begin = net._listeners_of("on_batch_begin")
    assert any(getattr(c, "__self__", None) is net for c in begin)
    epoch = net._listeners_of("on_epoch_begin")
    assert any(getattr(c, "__func__", None) is NeuralNet.on_epoch_begin for c in epoch)


# ------------------------------------------------------------ batch gather


def test_array_dataset_get_batch_equals_indexing():
    from skstruct.utils._torch import ArrayDataset, BatchIterator

    rng = np.random.RandomState(0)
    X, y = rng.randn(50, 4), rng.randint(0, 3, 50)
    for ds in (ArrayDataset(X, y), ArrayDataset(X)):
        idx = torch.randperm(50, generator=torch.Generator().manual_seed(0))[:17]
        Xb, yb = ds.get_batch(idx)
        Xi, yi = ds._index(idx)
        assert torch.equal(Xb, Xi) and torch.equal(yb, yi) and Xb.is_contiguous()
        assert torch.equal(ds.get_batch(idx.numpy())[0], Xi)  # not a tensor: indexing
    ds = ArrayDataset(X, y)
    assert torch.equal(ds[-1][0], ds.X[-1:])  # __getitem__ keeps negative indices
    # The iterator's batches: the seeded permutation, gathered.
    order = torch.randperm(50, generator=torch.Generator().manual_seed(5))
    batches = list(BatchIterator(ds, 16, shuffle=True, generator=torch.Generator().manual_seed(5)))
    assert [len(b[0]) for b in batches] == [16, 16, 16, 2]
    assert torch.equal(torch.cat([b[0] for b in batches]), ds.X[order])
    assert torch.equal(torch.cat([b[1] for b in batches]), ds.y[order])
