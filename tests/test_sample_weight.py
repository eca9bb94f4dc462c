"""sample_weight and class_weight: in the losses, in fit, in the metrics."""

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.datasets import make_classification
from sklearn.metrics import recall_score
from torch import nn

from skstruct import (
    AverageKClassifier,
    ConveyanceClassifier,
    CrossEntropyClassifier,
    EMDOrdinalRegressor,
    HACEClassifier,
    MILConveyance,
)
from skstruct.losses import (
    ConveyanceLoss,
    EMD2Loss,
    HACELoss,
    MILConveyanceLoss,
    SampleWeightedLoss,
)
from skstruct.metrics import (
    coverage_per_class,
    mean_set_size,
    set_coverage,
    singleton_rate,
    size_stratified_coverage,
)
from skstruct.structures import Hierarchy

HIER = Hierarchy({0: "a", 1: "a", 2: "b", 3: "b"})


def _criteria():
    eye = torch.eye(4, dtype=torch.bool)
    eye[0, 1] = True
    return {
        "conveyance": ConveyanceLoss(eye),
        "hace": HACELoss(HIER),
        "emd": EMD2Loss(ce_weight=0.5),
        "cross_entropy": nn.CrossEntropyLoss(label_smoothing=0.1),
    }


@pytest.mark.parametrize("name", ["conveyance", "hace", "emd", "cross_entropy"])
def test_integer_weights_equal_repeated_rows_in_the_loss(name):
    """Check that integer weights give the loss of the batch with repeated rows."""
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(9, 4, generator=gen, dtype=torch.float64)
    t = torch.randint(0, 4, (9,), generator=gen)
    w = torch.tensor([0, 1, 2, 3, 1, 0, 4, 1, 2])
    weighted = SampleWeightedLoss(_criteria()[name])(z, (t, w))
    plain = _criteria()[name]  # reduction='mean' on the repeated batch
    repeated = plain(z.repeat_interleave(w, dim=0), t.repeat_interleave(w))
    assert_allclose(weighted.item(), repeated.item(), rtol=1e-12)
    # Unit weights and no weights give the plain mean.
    unit = SampleWeightedLoss(_criteria()[name])
    assert_allclose(unit(z, (t, torch.ones(9))).item(), plain(z, t).item(), rtol=1e-12)
    assert_allclose(unit(z, t).item(), plain(z, t).item(), rtol=1e-12)


def test_mil_per_bag_weights_equal_repeated_bags():
    """Check that per-bag weights of the MIL loss equal repeating the bags."""
    gen = torch.Generator().manual_seed(0)
    bags, n_max = 5, 4
    lengths = torch.tensor([4, 2, 1, 3, 4])
    mask = torch.arange(n_max)[None, :] >= lengths[:, None]
    out = (
        torch.randn(bags, 2, generator=gen, dtype=torch.float64),
        torch.randn(bags, n_max, 2, generator=gen, dtype=torch.float64),
        torch.rand(bags, n_max, generator=gen),
        mask,
    )
    t = torch.tensor([0, 1, 1, 0, 1])
    w = torch.tensor([2, 0, 1, 3, 1])
    weighted = SampleWeightedLoss(MILConveyanceLoss([[1, 1], [0, 1]]))(out, (t, w))
    repeated_out = tuple(o.repeat_interleave(w, dim=0) for o in out)
    repeated = MILConveyanceLoss([[1, 1], [0, 1]])(repeated_out, t.repeat_interleave(w))
    assert_allclose(weighted.item(), repeated.item(), rtol=1e-12)
    per_bag = MILConveyanceLoss([[1, 1], [0, 1]], reduction="none")(out, t)
    assert per_bag.shape == (bags,)
    assert_allclose(per_bag.mean().item(), MILConveyanceLoss([[1, 1], [0, 1]])(out, t).item())


def test_sample_weighted_loss_needs_a_reduction():
    """Check the error for a criterion without a per-sample reduction."""
    with pytest.raises(TypeError, match="reduction='none'"):
        SampleWeightedLoss(nn.Identity())


def _data(n=40, seed=0):
    X, y = make_classification(
        n_samples=n, n_features=5, n_informative=4, n_redundant=0, n_classes=4,
        n_clusters_per_class=1, random_state=seed,
    )
    return X, y


# Full-batch, dropout-free training: integer weights and repeated rows then
# see the same loss in every step (up to float32 rounding).
FULL_BATCH = dict(hidden_layer_sizes=(8,), max_epochs=15, batch_size=512, lr=1e-2,
                  random_state=0)


@pytest.mark.parametrize(
    "estimator",
    [
        CrossEntropyClassifier(**FULL_BATCH),
        ConveyanceClassifier(class_structure=HIER, **FULL_BATCH),
        HACEClassifier(class_structure=HIER, **FULL_BATCH),
        EMDOrdinalRegressor(**FULL_BATCH),
        # AverageKClassifier always holds out a split, in which repeated rows
        # and a weighted row fall differently: only weight 0 is checked there.
    ],
    ids=lambda est: type(est).__name__,
)
def test_fit_with_integer_weights_equals_fit_on_repeated_rows(estimator):
    """Check fit(X, y, w) against fit on rows repeated w times (zeros dropped)."""
    X, y = _data()
    w = np.random.RandomState(1).randint(0, 4, len(y))
    weighted = estimator.__class__(**estimator.get_params()).fit(X, y, sample_weight=w)
    repeated = estimator.__class__(**estimator.get_params()).fit(
        np.repeat(X, w, axis=0), np.repeat(y, w)
    )
    assert_allclose(weighted.predict_proba(X), repeated.predict_proba(X), atol=2e-5)
    assert_allclose(weighted.loss_curve_, repeated.loss_curve_, rtol=1e-5)
    # A flat (non-integer-valued) rescaling of every weight changes nothing.
    scaled = estimator.__class__(**estimator.get_params()).fit(X, y, sample_weight=w * 0.5)
    assert_allclose(scaled.predict_proba(X), weighted.predict_proba(X), atol=2e-5)


def test_zero_weight_rows_do_not_count():
    """Check that rows of weight 0 leave fit exactly as if they were removed."""
    X, y = _data()
    w = np.ones(len(y))
    w[::3] = 0
    params = dict(hidden_layer_sizes=(8,), max_epochs=5, batch_size=8, random_state=0,
                  early_stopping=True, validation_fraction=0.25, n_iter_no_change=2)
    a = CrossEntropyClassifier(**params).fit(X, y, sample_weight=w)
    b = CrossEntropyClassifier(**params).fit(X[w > 0], y[w > 0])
    assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    assert a.validation_loss_curve_ == b.validation_loss_curve_
    assert a.set_threshold_ == b.set_threshold_
    params.pop("early_stopping")
    a = AverageKClassifier(k=1.5, **params).fit(X, y, sample_weight=w)
    b = AverageKClassifier(k=1.5, **params).fit(X[w > 0], y[w > 0])
    assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    assert a.set_threshold_ == b.set_threshold_


def test_mil_fit_with_bag_weights_equals_repeated_bags():
    """Check per-bag sample_weight of MILConveyance against repeated bags."""
    rng = np.random.RandomState(0)
    bags = [rng.randn(rng.randint(1, 4), 3) for _ in range(16)]
    y = np.array([0, 1] * 8)
    for bag, label in zip(bags, y):
        bag[0] += 2 * label
    w = rng.randint(0, 3, len(y))
    params = dict(embedding="mlp", hidden_layer_sizes=(8,), attention_size=4,
                  instance_head_sizes=(), max_epochs=5, batch_size=64, dropout=0.0,
                  random_state=0)
    a = MILConveyance(**params).fit(bags, y, sample_weight=w)
    rep = [bags[i] for i in np.repeat(np.arange(len(y)), w)]
    b = MILConveyance(**params).fit(rep, np.repeat(y, w))
    assert_allclose(a.predict_proba(bags), b.predict_proba(bags), atol=2e-5)


def test_class_weight_balanced_raises_minority_recall():
    """Check that class_weight='balanced' recovers a rare class that plain fit misses."""
    X, y = make_classification(
        n_samples=400, n_features=6, n_informative=3, n_redundant=0,
        weights=[0.92, 0.08], class_sep=0.6, flip_y=0.0, random_state=3,
    )
    params = dict(hidden_layer_sizes=(16,), max_epochs=15, batch_size=64, random_state=0)
    plain = CrossEntropyClassifier(**params).fit(X, y)
    balanced = CrossEntropyClassifier(class_weight="balanced", **params).fit(X, y)
    recall_plain = recall_score(y, plain.predict(X), pos_label=1)
    recall_balanced = recall_score(y, balanced.predict(X), pos_label=1)
    assert recall_balanced > recall_plain + 0.2, (recall_plain, recall_balanced)
    # The dict form equal to 'balanced' gives the same model.
    counts = np.bincount(y)
    as_dict = {c: len(y) / (2 * counts[c]) for c in (0, 1)}
    same = CrossEntropyClassifier(class_weight=as_dict, **params).fit(X, y)
    assert_allclose(same.predict_proba(X), balanced.predict_proba(X), atol=1e-6)


@pytest.mark.parametrize(
    "sample_weight, message",
    [
        (np.ones(5), r"shape \(40,\)"),
        (-np.ones(40), "negative"),
        (np.r_[np.nan, np.ones(39)], "NaN"),
        (np.zeros(40), "every sample"),
        (np.ones((40, 2)), r"shape \(40,\)"),
        (["a"] * 40, "numbers"),
    ],
)
def test_bad_sample_weight_errors(sample_weight, message):
    """Check that invalid sample_weight raises a ValueError naming it."""
    X, y = _data()
    with pytest.raises(ValueError, match=message) as info:
        CrossEntropyClassifier(max_epochs=1).fit(X, y, sample_weight=sample_weight)
    assert "sample_weight" in str(info.value)


def test_bad_class_weight_errors():
    """Check class_weight errors: unknown label, negative weight, bad string."""
    X, y = _data()
    with pytest.raises(ValueError, match="not classes: \\[7\\]"):
        CrossEntropyClassifier(max_epochs=1, class_weight={7: 1.0}).fit(X, y)
    with pytest.raises(ValueError, match="class_weight\\[0\\]"):
        CrossEntropyClassifier(max_epochs=1, class_weight={0: -1.0}).fit(X, y)
    with pytest.raises(ValueError, match="class_weight"):
        CrossEntropyClassifier(max_epochs=1, class_weight="balance").fit(X, y)


def test_set_metrics_take_sample_weight():
    """Check the weighted set metrics against repeated samples."""
    sets = np.array([[1, 0, 0], [1, 1, 0], [0, 0, 1], [0, 1, 1]], dtype=bool)
    y = np.array([0, 2, 2, 1])
    w = np.array([2, 0, 1, 3])
    rep_sets, rep_y = np.repeat(sets, w, axis=0), np.repeat(y, w)
    for metric in (set_coverage, mean_set_size, singleton_rate):
        assert metric(y, sets, sample_weight=w) == pytest.approx(metric(rep_y, rep_sets))
    assert coverage_per_class(y, sets, sample_weight=w) == coverage_per_class(rep_y, rep_sets)
    assert size_stratified_coverage(y, sets, sample_weight=w) == size_stratified_coverage(
        rep_y, rep_sets
    )
    with pytest.raises(ValueError, match="sample_weight"):
        set_coverage(y, sets, sample_weight=[1, 2])


def test_set_scorer_passes_sample_weight():
    """Check that a registered set scorer forwards sample_weight to its metric."""
    from skstruct.metrics import get_scorer

    X, y = _data()
    clf = CrossEntropyClassifier(hidden_layer_sizes=(8,), max_epochs=3, set_size=2,
                                 random_state=0).fit(X, y)
    w = np.random.RandomState(0).randint(0, 3, len(y))
    sets = clf.predict_set(X)
    scorer = get_scorer("set_coverage")
    expected = set_coverage(y, sets, classes=clf.classes_, sample_weight=w)
    assert expected != set_coverage(y, sets, classes=clf.classes_)  # the weights matter
    assert scorer(clf, X, y, sample_weight=w) == pytest.approx(expected)
    assert scorer(clf, X, y) == pytest.approx(set_coverage(y, sets, classes=clf.classes_))
