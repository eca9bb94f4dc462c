"""callbacks, optimizer_kwargs, lr_schedule, warm_start and partial_fit."""

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import make_classification
from sklearn.model_selection import GridSearchCV
from skorch.callbacks import Callback, Checkpoint, LRScheduler

from skstruct import ConveyanceClassifier, CrossEntropyClassifier, MILConveyance
from skstruct.structures import Ordinal

FAST = dict(hidden_layer_sizes=(8,), max_epochs=4, batch_size=32, random_state=0)


def _data():
    return make_classification(n_samples=80, n_features=5, n_informative=3,
                               n_redundant=0, n_classes=3, random_state=0)


class EpochCounter(Callback):
    """Counts epochs (state ends in ``_``, as skorch's callbacks keep it)."""

    def initialize(self):
        self.epochs_ = 0
        return self

    def on_epoch_end(self, net, **kwargs):
        self.epochs_ += 1


def test_user_callbacks_run_on_copies(tmp_path):
    """Check that user callbacks run, the objects passed stay unchanged, names clash clearly."""
    X, y = _data()
    counter = EpochCounter()
    checkpoint = Checkpoint(dirname=str(tmp_path), monitor="train_loss_best")
    clf = CrossEntropyClassifier(callbacks=[counter, ("ckpt", checkpoint)], **FAST).fit(X, y)
    fitted = dict(clf.net_.callbacks_)
    assert fitted["EpochCounter"].epochs_ == 4
    assert not hasattr(counter, "epochs_")  # a deep copy ran
    assert (tmp_path / "params.pt").exists()
    assert clone(clf).callbacks[0] is not counter
    with pytest.raises(ValueError, match="named 'early_stopping'"):
        CrossEntropyClassifier(
            callbacks=[("early_stopping", EpochCounter())], early_stopping=True, **FAST
        ).fit(X, y)
    with pytest.raises(TypeError, match=r"callbacks\[0\]"):
        CrossEntropyClassifier(callbacks=["print"], **FAST).fit(X, y)


def test_optimizer_kwargs_reach_the_optimizer_and_are_grid_searchable():
    """Check optimizer_kwargs: passed to torch, seen by clone and GridSearchCV, checked."""
    X, y = _data()
    clf = CrossEntropyClassifier(optimizer="sgd", optimizer_kwargs={"momentum": 0.9,
                                                                    "nesterov": True}, **FAST)
    clf.fit(X, y)
    group = clf.net_.optimizer_.param_groups[0]
    assert group["momentum"] == 0.9 and group["nesterov"] is True
    grid = GridSearchCV(
        CrossEntropyClassifier(optimizer="sgd", lr=0.05, **FAST),
        {"optimizer_kwargs": [{"momentum": 0.0}, {"momentum": 0.9}]}, cv=2,
    ).fit(X, y)
    assert len(grid.cv_results_["params"]) == 2
    assert grid.best_estimator_.net_.optimizer_.param_groups[0]["momentum"] in (0.0, 0.9)
    with pytest.raises(ValueError, match=r"does not take: \['momentum'\]"):
        CrossEntropyClassifier(optimizer_kwargs={"momentum": 0.9}, **FAST).fit(X, y)
    with pytest.raises(ValueError, match="estimator's lr= parameter"):
        CrossEntropyClassifier(optimizer_kwargs={"lr": 0.1}, **FAST).fit(X, y)


def test_optimizer_without_weight_decay():
    """Check an optimizer class without weight decay (LBFGS): it trains; weight_decay > 0 raises."""
    X, y = _data()
    clf = CrossEntropyClassifier(optimizer=torch.optim.LBFGS, lr=0.5, **FAST).fit(X, y)
    assert type(clf.net_.optimizer_) is torch.optim.LBFGS
    assert "weight_decay" not in clf.net_.optimizer_.param_groups[0]
    assert np.all(np.isfinite(clf.loss_curve_))
    with pytest.raises(ValueError, match=r"weight_decay=0.01, but LBFGS takes no weight decay"):
        CrossEntropyClassifier(optimizer=torch.optim.LBFGS, weight_decay=0.01, **FAST).fit(X, y)


@pytest.mark.parametrize("schedule", ["cosine", "step"])
def test_lr_schedule(schedule):
    """Check that the learning rate follows the schedule epoch by epoch."""
    X, y = _data()
    clf = CrossEntropyClassifier(lr_schedule=schedule, lr=0.01, **dict(FAST, max_epochs=6))
    clf.fit(X, y)
    lrs = clf.net_.history[:, "event_lr"]
    if schedule == "cosine":
        expected = [0.01 * (1 + np.cos(np.pi * e / 6)) / 2 for e in range(6)]
    else:
        expected = [0.01 * 0.1 ** (e // 2) for e in range(6)]
    np.testing.assert_allclose(lrs, expected, rtol=1e-6)
    # A user's scheduler through callbacks works the same way.
    import torch

    own = CrossEntropyClassifier(
        callbacks=[LRScheduler(torch.optim.lr_scheduler.ExponentialLR, gamma=0.5)],
        lr=0.01, **FAST,
    ).fit(X, y)
    np.testing.assert_allclose(own.net_.history[:, "event_lr"], [0.01, 0.005, 0.0025, 0.00125])


def test_warm_start_continues_training():
    """Check warm_start: the second fit starts from the first one's weights."""
    X, y = _data()
    cold = CrossEntropyClassifier(**FAST).fit(X, y)
    warm = CrossEntropyClassifier(warm_start=True, **FAST).fit(X, y)
    module = warm.net_.module_
    warm.fit(X, y)
    assert warm.net_.module_ is module
    assert warm.n_iter_ == 8 and len(warm.loss_curve_) == 8
    assert warm.loss_curve_[4] < cold.loss_curve_[0]
    # Without warm_start a second fit starts again.
    cold.fit(X, y)
    assert cold.n_iter_ == 4
    with pytest.raises(ValueError, match="unknown to the fitted model"):
        warm.fit(X, np.where(y == 2, 5, y))
    with pytest.raises(ValueError, match="features"):
        warm.fit(X[:, :3], y)


def test_partial_fit():
    """Check partial_fit: one epoch per call, classes fixed on the first call."""
    X, y = _data()
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        CrossEntropyClassifier(**FAST).partial_fit(X, y)
    clf = CrossEntropyClassifier(**FAST)
    clf.partial_fit(X[y != 2], y[y != 2], classes=[0, 1, 2])  # a batch without class 2
    assert clf.n_iter_ == 1 and clf.predict_proba(X).shape == (80, 3)
    for _ in range(5):
        clf.partial_fit(X, y)
    assert clf.n_iter_ == 6
    assert clf.loss_curve_[-1] < clf.loss_curve_[1]
    # A structure fixes the classes: no classes= needed.
    conv = ConveyanceClassifier(Ordinal([0, 1, 2]), **FAST).partial_fit(X[:10], y[:10])
    assert list(conv.classes_) == [0, 1, 2]
    with pytest.raises(ValueError, match="classes"):
        ConveyanceClassifier(Ordinal([0, 1, 2]), **FAST).partial_fit(X, y, classes=[0, 7])
    # Weights work in partial_fit too.
    clf.partial_fit(X, y, sample_weight=np.arange(80) % 3)



def test_partial_fit_after_early_stopping():
    """Check partial_fit after fit(early_stopping=True): it trains one epoch, restores nothing."""
    X, y = _data()
    clf = CrossEntropyClassifier(early_stopping=True, n_iter_no_change=1, **FAST).fit(X, y)
    fitted = clf.n_iter_
    before = [p.detach().clone() for p in clf.net_.module_.parameters()]
    clf.partial_fit(X, y)  # no split: the early-stopping callback stays idle
    assert clf.n_iter_ == fitted + 1
    after = list(clf.net_.module_.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, after))
    assert np.isnan(clf.validation_loss_curve_[-1])
    # A warm fit afterwards has its split and early stopping again.
    clf.set_params(warm_start=True).fit(X, y)
    assert np.isfinite(clf.validation_loss_curve_[-1])
    assert len(clf.validation_loss_curve_) == clf.n_iter_

def test_mil_takes_the_new_parameters():
    """Check warm_start and partial_fit of MILConveyance on bags."""
    rng = np.random.RandomState(0)
    bags = [rng.randn(rng.randint(1, 4), 3) for _ in range(12)]
    y = np.array([0, 1] * 6)
    params = dict(max_epochs=2, random_state=0)
    clf = MILConveyance(warm_start=True, lr_schedule="cosine", optimizer="adam",
                        **params).fit(bags, y)
    clf.fit(bags, y)
    assert clf.n_iter_ == 4
    part = MILConveyance(**params).partial_fit(bags, y, classes=[0, 1])
    assert part.n_iter_ == 1
