"""MILConveyance(embedding='prototypes', stacking=False): one prototype network, its estimator.

The network (:class:`skstruct.modules.PrototypeMIL`) is checked against a
float64 reference written from its formula; the estimator for what it
learns from the training bags (standardisation, prototypes, the cached
training distances) and for its parameter checks.
"""

import pickle

import numpy as np
import pytest
import torch
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_score

from skstruct import MILConveyance
from skstruct._lbfgs import PenalisedLBFGS
from skstruct.losses import conveyance_loss
from skstruct._mil import _BagDataset, _DistanceBagDataset
from skstruct.modules import GatedAttentionMIL, PrototypeMIL
from skstruct.modules._mil import _RBFLinear

from .test_mil import _synthetic_bags

FAST = dict(stacking=False, max_epochs=60, random_state=0)


def _reference_forward(net, bags_list, W=None, b=None):
    """Bag and instance logits of ``net`` in float64, one bag at a time, from the formula.

    ``W`` and ``b`` replace the network's head (float64 tensors, which may
    require gradients).
    """
    P = net.prototypes.double()
    center, scale = net.center.double(), net.scale.double()
    gamma = float(net.gamma.detach())
    if W is None:
        W, b = net.head.weight.detach().double(), net.head.bias.detach().double()
    c = net.feature_scale.double()
    bag_logits, instance_logits = [], []
    for bag in bags_list:
        z = (torch.as_tensor(bag, dtype=torch.float64) - center) / scale
        diff = z[:, None, :] - P[None, :, :]  # (n, K, d)
        d = diff.abs().sum(-1) if net.kernel == "laplacian" else (diff ** 2).sum(-1)
        s = torch.exp(-gamma * d)
        if net.pooling == "max":
            bag_features, instance_features = s.max(0).values, s
        else:  # an instance alone: best match and mean similarity both equal s
            bag_features = torch.cat([s.max(0).values, s.mean(0)])
            instance_features = torch.cat([s, s], 1)
        bag_logits.append((bag_features / c) @ W.T + b)
        instance_logits.append((instance_features / c) @ W.T + b)
    return torch.stack(bag_logits), instance_logits


def _padded(bags_list):
    n_max = max(len(b) for b in bags_list)
    out = torch.zeros(len(bags_list), n_max, bags_list[0].shape[1])
    mask = torch.ones(len(bags_list), n_max, dtype=torch.bool)
    for i, b in enumerate(bags_list):
        out[i, : len(b)] = torch.as_tensor(b, dtype=torch.float32)
        mask[i, : len(b)] = False
    return out, mask


@pytest.fixture()
def network():
    torch.manual_seed(0)
    rng = np.random.RandomState(0)
    prototypes = rng.randn(7, 4) * [1.0, 10.0, 0.1, 1.0] + [0.0, 5.0, 0.0, 1.0]
    net = PrototypeMIL(prototypes, n_classes=3, center=prototypes.mean(0),
                       scale=prototypes.std(0))
    with torch.no_grad():
        net.head.weight.normal_()
        net.head.bias.normal_()
        net.log_gamma.fill_(0.3)
    return net


# ---------------------------------------------------------------- network


def test_forward_matches_the_formula_on_padded_bags(network):
    """Check bag and instance logits against a float64 per-bag reference, padding included."""
    rng = np.random.RandomState(1)
    bags_list = [rng.randn(n, 4) * [1.0, 10.0, 0.1, 1.0] for n in (1, 4, 2)]
    bags, mask = _padded(bags_list)
    with torch.no_grad():
        bag_logits, instance_logits, attention, out_mask = network.eval()(bags, mask)
    ref_bag, ref_inst = _reference_forward(network, bags_list)
    np.testing.assert_allclose(bag_logits.double(), ref_bag, rtol=1e-4, atol=1e-5)
    for i, ref in enumerate(ref_inst):
        n = len(bags_list[i])
        np.testing.assert_allclose(instance_logits[i, :n].double(), ref, rtol=1e-4, atol=1e-5)
        assert torch.all(instance_logits[i, n:] == 0)
        assert torch.all(attention[i, n:] == 0)
        assert torch.all(attention[i, :n] >= 0)
    np.testing.assert_allclose(attention.sum(1), 1.0, rtol=1e-6)
    assert torch.equal(out_mask, mask)


@pytest.mark.parametrize("kernel", ["rbf", "laplacian"])
@pytest.mark.parametrize("pooling", ["max", "max+mean"])
def test_kernels_and_poolings_match_the_formula(kernel, pooling):
    """Check both kernels and poolings, with a feature scale, against the float64 reference."""
    torch.manual_seed(0)
    rng = np.random.RandomState(3)
    prototypes = rng.randn(6, 3) * [1.0, 5.0, 0.2]
    net = PrototypeMIL(prototypes, n_classes=2, center=prototypes.mean(0),
                       scale=prototypes.std(0), kernel=kernel, pooling=pooling)
    assert net.head.in_features == (12 if pooling == "max+mean" else 6)
    with torch.no_grad():
        net.head.weight.normal_()
        net.head.bias.normal_()
        net.log_gamma.fill_(-0.2)
        net.feature_scale.uniform_(0.2, 2.0)
    bags_list = [rng.randn(n, 3) * [1.0, 5.0, 0.2] for n in (2, 5, 1)]
    bags, mask = _padded(bags_list)
    with torch.no_grad():
        bag_logits, instance_logits, attention, _ = net.eval()(bags, mask)
        features = net.bag_features(bags, mask)
    ref_bag, ref_inst = _reference_forward(net, bags_list)
    np.testing.assert_allclose(bag_logits.double(), ref_bag, rtol=1e-4, atol=1e-5)
    for i, ref in enumerate(ref_inst):
        n = len(bags_list[i])
        np.testing.assert_allclose(instance_logits[i, :n].double(), ref, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(attention[i, :n].sum(), 1.0, rtol=1e-6)
    # bag_features is what the head sees before the scale.
    head = net.head.weight.detach() / net.feature_scale
    np.testing.assert_allclose(features @ head.T + net.head.bias.detach(), bag_logits,
                               rtol=1e-4, atol=1e-5)
    # The hand-written backward with mean pooling: gradients of W, b and the width.
    net.train()
    params = [net.head.weight, net.head.bias, net.log_gamma]
    net.log_gamma.requires_grad_(True)
    ours = torch.autograd.grad(net(bags, mask)[0].sum() + net(bags, mask)[1].sum(), params)
    W, b = net.head.weight.double(), net.head.bias.double()
    ref_bag, ref_inst = _reference_forward(net, bags_list, W, b)
    ref = torch.autograd.grad(ref_bag.sum() + sum(r.sum() for r in ref_inst), [W, b])
    for a, r in zip(ours[:2], ref):
        np.testing.assert_allclose(a.double(), r, rtol=1e-4, atol=1e-5)
    assert torch.isfinite(ours[2])


def test_forward_without_a_mask_returns_an_all_false_mask(network):
    bags = torch.randn(2, 3, 4)
    out = network.eval()(bags)
    assert torch.equal(out[3], torch.zeros(2, 3, dtype=torch.bool))
    torch.testing.assert_close(out[0], network(bags, torch.zeros(2, 3, dtype=torch.bool))[0])


def test_laplacian_width_is_the_median_l1_distance():
    prototypes = np.array([[0.0, 0.0], [1.0, 2.0], [3.0, 0.0]])
    net = PrototypeMIL(prototypes, kernel="laplacian")
    l1 = [3.0, 3.0, 4.0]  # pairs (0,1) (0,2) (1,2)
    assert float(net.gamma.detach()) == pytest.approx(1.0 / np.median(l1))


def test_precomputed_distances_give_the_same_outputs(network):
    """Check that forward(distances=...) equals forward(bags) on the same batch."""
    rng = np.random.RandomState(2)
    bags_list = [rng.randn(n, 4) for n in (3, 1, 5)]
    bags, mask = _padded(bags_list)
    network.eval()
    with torch.no_grad():
        direct = network(bags, mask)
        d2 = network.distances(
            torch.as_tensor(np.concatenate(bags_list), dtype=torch.float32)
        )
        cached = network(distances=d2, padding_mask=mask)
    for a, b in zip(direct, cached):
        torch.testing.assert_close(a, b)


def test_attention_is_none_in_training_mode(network):
    bags, mask = _padded([np.zeros((2, 4)), np.ones((3, 4))])
    assert network.train()(bags, mask)[2] is None


def test_initial_width_is_the_median_heuristic_and_constant_features_are_kept():
    """Check gamma = 1 / median squared prototype distance, and scale 0 treated as 1.

    torch's median of an even count is the lower of the two middle values.
    """
    prototypes = np.array([[0.0, 1.0], [3.0, 1.0], [0.0, 1.0], [1.0, 1.0]])
    net = PrototypeMIL(prototypes, center=[0.0, 1.0], scale=[1.0, 0.0])
    d2 = [9.0, 0.0, 1.0, 9.0, 4.0, 1.0]  # pairs (0,1) (0,2) (0,3) (1,2) (1,3) (2,3)
    assert float(net.gamma.detach()) == pytest.approx(1.0 / np.sort(d2)[(len(d2) - 1) // 2])
    assert torch.equal(net.scale, torch.tensor([1.0, 1.0]))
    assert torch.all(net.head.weight == 0) and torch.all(net.head.bias == 0)


def test_rbf_linear_gradients_match_autograd():
    """Check the hand-written backward against gradcheck and against autograd of the formula."""
    torch.manual_seed(0)
    d2 = torch.rand(6, 5, dtype=torch.float64) * 4
    gamma = torch.tensor(0.6, dtype=torch.float64, requires_grad=True)
    W = torch.randn(3, 5, dtype=torch.float64, requires_grad=True)
    b = torch.randn(3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(_RBFLinear.apply, (d2, gamma, W, b))
    grad = torch.randn(6, 3, dtype=torch.float64)
    ours = torch.autograd.grad(_RBFLinear.apply(d2, gamma, W, b), (gamma, W, b), grad)
    ref = torch.autograd.grad(torch.exp(-gamma * d2) @ W.T + b, (gamma, W, b), grad)
    for a, r in zip(ours, ref):
        torch.testing.assert_close(a, r)


def test_rbf_linear_without_width_gradient():
    """Check that a fixed width skips its gradient and the extra product."""
    d2 = torch.rand(4, 3)
    W = torch.randn(2, 3, requires_grad=True)
    out = _RBFLinear.apply(d2, torch.tensor(1.0), W, torch.zeros(2))
    (grad_W,) = torch.autograd.grad(out.sum(), (W,))
    torch.testing.assert_close(grad_W, torch.exp(-d2).sum(0).expand(2, 3))


def test_network_bad_input(network):
    with pytest.raises(ValueError, match="prototypes"):
        PrototypeMIL(np.zeros((0, 3)))
    with pytest.raises(ValueError, match="gamma"):
        PrototypeMIL(np.zeros((2, 3)), gamma=0.0)
    with pytest.raises(ValueError, match="kernel must be 'rbf' or 'laplacian'"):
        PrototypeMIL(np.zeros((2, 3)), kernel="cosine")
    with pytest.raises(ValueError, match="pooling must be 'max' or 'max\\+mean'"):
        PrototypeMIL(np.zeros((2, 3)), pooling="mean")
    with pytest.raises(ValueError, match="bags must have shape"):
        network(torch.zeros(3, 4))
    with pytest.raises(ValueError, match="exactly one"):
        network()
    with pytest.raises(ValueError, match="padding_mask"):
        network(distances=torch.zeros(2, 7))
    with pytest.raises(ValueError, match="distances must have shape"):
        network(distances=torch.zeros(2, 7), padding_mask=torch.zeros(1, 3, dtype=bool))


# -------------------------------------------------------------- estimator


def test_default_embedding_learns_a_shifted_instance():
    """Check the defaults: a PrototypeMIL, full-batch training, and a good held-out accuracy."""
    bags, y = _synthetic_bags(0, n_bags=60, scale=50.0)  # unscaled features are standardised
    test_bags, test_y = _synthetic_bags(1, n_bags=40, scale=50.0)
    clf = MILConveyance(stacking=False, random_state=0).fit(bags, y)
    assert isinstance(clf.net_.module_, PrototypeMIL)
    assert clf.n_iter_ == 25
    assert clf.net_.lr == 1.0 and clf.net_.batch_size == -1
    assert clf.net_.optimizer is PenalisedLBFGS
    assert clf.loss_curve_[-1] < 0.5 * clf.loss_curve_[0]
    assert clf.score(test_bags, test_y) >= 0.8
    att = clf.attention_weights(test_bags[:4])
    for a, bag in zip(att, test_bags[:4]):
        assert a.shape == (len(bag),)
        np.testing.assert_allclose(a.sum(), 1.0, rtol=1e-6)


def test_auto_training_values_of_the_mlp_embedding():
    bags, y = _synthetic_bags(0, n_bags=16)
    clf = MILConveyance(embedding="mlp", hidden_layer_sizes=(4,), attention_size=2,
                        instance_head_sizes=(), max_epochs=1, random_state=0).fit(bags, y)
    assert isinstance(clf.net_.module_, GatedAttentionMIL)
    assert clf.net_.lr == 3e-3 and clf.net_.batch_size == 8 and clf.n_iter_ == 1


def test_standardisation_and_prototypes_come_from_the_training_bags():
    """Check center/scale of the training instances and prototypes drawn among them."""
    bags, y = _synthetic_bags(0, n_bags=30)
    instances = np.concatenate(bags)
    clf = MILConveyance(stacking=False, n_prototypes=20, max_epochs=2, random_state=0).fit(bags, y)
    net = clf.net_.module_
    np.testing.assert_allclose(net.center, instances.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(net.scale, instances.std(0), rtol=1e-5)
    raw = (net.prototypes * net.scale + net.center).numpy()
    assert raw.shape == (20, 5)
    distance = np.abs(raw[:, None, :] - instances[None, :, :]).max(-1).min(1)
    assert distance.max() < 1e-4
    assert len(np.unique(raw.round(4), axis=0)) == 20
    # The draw is seeded by random_state.
    single = dict(stacking=False, n_prototypes=20, max_epochs=2)
    again = MILConveyance(**single, random_state=0).fit(bags, y)
    torch.testing.assert_close(again.net_.module_.prototypes, net.prototypes)
    other = MILConveyance(**single, random_state=1).fit(bags, y)
    assert not torch.equal(other.net_.module_.prototypes, net.prototypes)


@pytest.mark.parametrize("weighted", [False, True])
def test_bag_features_are_scaled_by_their_std_over_the_training_bags(weighted):
    """Check feature_scale against the (weighted) std of the bag features, and weight 2 = twice."""
    bags, y = _synthetic_bags(0, n_bags=20)
    weight = np.where(np.arange(20) % 3 == 0, 2.0, 1.0) if weighted else None
    clf = MILConveyance(prototype_pooling="max+mean", scale_bag_features=True, max_epochs=1,
                        random_state=0).fit(bags, y, sample_weight=weight)
    net = clf.net_.module_
    with torch.no_grad():
        features = torch.cat([net.bag_features(*_padded([b])) for b in bags]).double().numpy()
    w = np.ones(20) if weight is None else weight
    mean = np.average(features, axis=0, weights=w)
    std = np.sqrt(np.average((features - mean) ** 2, axis=0, weights=w))
    np.testing.assert_allclose(net.feature_scale, np.maximum(std, 1e-3), rtol=1e-4, atol=1e-6)
    assert net.feature_scale.shape == (2 * net.n_prototypes,)
    if weighted:  # a bag of weight 2 counts as the bag twice
        twice = [bags[i] for i in range(20) for _ in range(int(w[i]))]
        y_twice = np.repeat(y, w.astype(int))
        again = MILConveyance(prototype_pooling="max+mean", scale_bag_features=True,
                              max_epochs=1, random_state=0).fit(twice, y_twice)
        torch.testing.assert_close(again.net_.module_.feature_scale, net.feature_scale)
    # Unscaled: ones.
    plain = MILConveyance(stacking=False, max_epochs=1, random_state=0).fit(bags, y)
    assert torch.all(plain.net_.module_.feature_scale == 1)


def test_every_training_instance_is_a_prototype_when_they_are_few():
    bags, y = _synthetic_bags(0, n_bags=10)
    clf = MILConveyance(stacking=False, max_epochs=1, random_state=0).fit(bags, y)
    assert clf.net_.module_.n_prototypes == sum(len(b) for b in bags)


def test_zero_weight_bags_give_no_prototype():
    """Check that bags of sample weight 0 are left out of the prototypes and the standardisation."""
    bags, y = _synthetic_bags(0, n_bags=20)
    weight = np.ones(20)
    weight[:4] = 0
    clf = MILConveyance(stacking=False, max_epochs=1, random_state=0)
    clf.fit(bags, y, sample_weight=weight)
    kept = np.concatenate(bags[4:])
    assert clf.net_.module_.n_prototypes == len(kept)
    np.testing.assert_allclose(clf.net_.module_.center, kept.mean(0), rtol=1e-5, atol=1e-6)


def test_held_out_calibration_bags_give_no_prototype():
    """Check that the conformal calibration split is not among the prototypes."""
    bags, y = _synthetic_bags(0, n_bags=20)
    clf = MILConveyance(stacking=False, set_rule="conformal", validation_fraction=0.25,
                        max_epochs=1, random_state=0).fit(bags, y)
    n_train = sum(len(bags[i]) for i in range(20)) - clf.net_.module_.n_prototypes
    assert n_train > 0  # the held-out bags' instances are missing


def test_cached_training_set_serves_the_same_batches():
    """Check that the distance dataset's batches give the module's outputs on raw bags."""
    bags, y = _synthetic_bags(3, n_bags=12)
    net = PrototypeMIL(np.concatenate(bags[:3])).eval()
    raw = _BagDataset(bags, y)
    cached = _DistanceBagDataset(bags, y, net)
    everything = torch.tensor([11, 3, 2, 1, 0, 4, 5, 6, 7, 8, 9, 10])
    for indices in (torch.tensor([5, 0, 7]), torch.arange(12), everything):
        (cached_x, cached_y) = cached.get_batch(indices)
        raw_x, raw_y = raw.get_batch(indices)
        with torch.no_grad():
            raw_out, cached_out = net(**raw_x), net(**cached_x)
        torch.testing.assert_close(raw_out[0], cached_out[0])
        torch.testing.assert_close(raw_out[1], cached_out[1])
        assert torch.equal(raw_y, cached_y)


def test_all_bags_in_one_unshuffled_batch_and_weights_stay_aligned():
    """Check that a step on all bags is one batch in the stored order, weights aligned."""
    bags, y = _synthetic_bags(0, n_bags=20)
    clf = MILConveyance(stacking=False, max_epochs=2, random_state=0).fit(bags, y)
    assert clf.net_.iterator_train__shuffle is False
    assert clf.net_.history[-1, "batches", -1, "train_batch_size"] == 20
    # Weight 1000 on the negative bags: the bag classifier leans to them.
    w = np.where(y == 0, 1000.0, 1e-4)
    heavy = MILConveyance(stacking=False, max_epochs=100, random_state=0)
    heavy.fit(bags, y, sample_weight=w)
    assert np.mean(heavy.predict(bags) == 0) > 0.9


def test_mini_batches_partial_fit_and_warm_start_keep_the_prototypes():
    bags, y = _synthetic_bags(0, n_bags=20)
    clf = MILConveyance(optimizer="adam", batch_size=4, lr=1e-2, max_epochs=3,
                        random_state=0).fit(bags, y)
    prototypes = clf.net_.module_.prototypes.clone()
    clf.partial_fit(bags[:10], y[:10])
    assert torch.equal(clf.net_.module_.prototypes, prototypes)
    clf.set_params(warm_start=True).fit(bags[10:], y[10:])
    assert torch.equal(clf.net_.module_.prototypes, prototypes)
    assert clf.n_iter_ == 3 + 1 + 3  # the history goes on


def test_pickle_and_model_selection():
    bags, y = _synthetic_bags(0, n_bags=30)
    clf = MILConveyance(stacking=False, max_epochs=30, random_state=0).fit(bags, y)
    again = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(again.predict_proba(bags), clf.predict_proba(bags))
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    scores = cross_val_score(MILConveyance(**FAST), bags, y, cv=cv)
    assert scores.shape == (3,) and np.all(scores > 0.5)
    search = GridSearchCV(MILConveyance(**FAST), {"n_prototypes": [10, 1000]}, cv=cv).fit(bags, y)
    assert search.best_params_["n_prototypes"] in (10, 1000)


def test_stacking_classifier_over_the_prototype_options():
    """Check the README's recipe: sklearn's StackingClassifier over three options, on bags."""
    from sklearn.ensemble import StackingClassifier

    bags, y = _synthetic_bags(0, n_bags=30)
    test_bags, test_y = _synthetic_bags(1, n_bags=20)
    fast = dict(max_epochs=5, random_state=0)
    stacked = StackingClassifier([
        ("laplacian", MILConveyance(kernel="laplacian", **fast)),
        ("max+mean", MILConveyance(prototype_pooling="max+mean", instance_weight=0.0, **fast)),
        ("scaled", MILConveyance(scale_bag_features=True, instance_weight=0.0, gamma_scale=1.0,
                                 **fast)),
    ], cv=3).fit(bags, y)
    kinds = [(m.net_.module_.kernel, m.net_.module_.pooling,
              bool((m.net_.module_.feature_scale != 1).any())) for m in stacked.estimators_]
    assert kinds == [("laplacian", "max", False), ("rbf", "max+mean", False),
                     ("rbf", "max", True)]
    assert stacked.final_estimator_.coef_.shape == (1, 3)
    assert stacked.score(test_bags, test_y) >= 0.8


def test_seed_only_matters_through_the_prototype_draw():
    """Check that with every training instance a prototype the fit does not depend on the seed."""
    bags, y = _synthetic_bags(0, n_bags=20)
    a = MILConveyance(stacking=False, max_epochs=20, random_state=0).fit(bags, y)
    b = MILConveyance(stacking=False, max_epochs=20, random_state=5).fit(bags, y)
    np.testing.assert_allclose(a.predict_proba(bags), b.predict_proba(bags), rtol=1e-6)


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(module=torch.nn.Linear(5, 4)), "module"),
        (dict(n_estimators=2), "n_estimators"),
        (dict(pooling="max"), "pooling"),
    ],
)
def test_mlp_only_parameters_are_refused(params, match):
    bags, y = _synthetic_bags(0, n_bags=8)
    with pytest.raises(ValueError, match=f"{match}.*embedding='mlp'"):
        MILConveyance(stacking=False, **params).fit(bags, y)


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(embedding="kernel"), "embedding"),
        (dict(n_prototypes=0), "n_prototypes"),
        (dict(max_epochs="many"), "max_epochs"),
        (dict(batch_size="all"), "batch_size"),
        (dict(lr="fast"), "lr"),
        (dict(gamma_scale=0.0), "gamma_scale"),
        (dict(gamma_scale="wide"), "gamma_scale"),
        (dict(kernel="cosine"), "kernel"),
        (dict(prototype_pooling="mean"), "prototype_pooling"),
        (dict(scale_bag_features="yes"), "scale_bag_features"),
        (dict(weight_decay="some"), "weight_decay"),
        (dict(optimizer="newton"), "optimizer"),
        (dict(batch_size=4), "batch_size=4 cannot be used with L-BFGS"),
        (dict(optimizer="lbfgs", max_grad_norm=1.0), "max_grad_norm=1.0 cannot be used"),
        (dict(embedding="mlp", optimizer="lbfgs"), "optimizer='lbfgs' trains the convex"),
        (dict(lr_schedule="cosine"), "lr_schedule='cosine' cannot be used with L-BFGS"),
    ],
)
def test_bad_parameters(params, match):
    bags, y = _synthetic_bags(0, n_bags=8)
    with pytest.raises(ValueError, match=match):
        MILConveyance(stacking=False, **params).fit(bags, y)


# ------------------------------------------------------ L-BFGS (the default)


def _objective64(clf, bags, y, weight, bias):
    """The default's training objective in float64, from the formula of the docstring."""
    bag_logits, instance_logits = _reference_forward(clf.net_.module_, bags, weight, bias)
    q = torch.tensor([[True, True], [False, True]])
    instance_terms = [
        conveyance_loss(inst, torch.full((len(inst),), int(label)), q, alpha=1.0, beta=1.0)
        for inst, label in zip(instance_logits, y)
    ]
    loss = torch.nn.functional.cross_entropy(bag_logits, torch.as_tensor(y))
    loss = loss + torch.stack(instance_terms).mean()
    return loss + 0.5 * 1e-3 * weight.square().sum()  # the bias is not penalised


@pytest.mark.parametrize(
    "options, tolerance",
    [
        ({}, 1e-4),
        (dict(kernel="laplacian"), 1e-4),
        # Features divided by stds down to 0.1: float32 training stops at a
        # larger gradient (2e-3 after the default 25 epochs, 5e-4 after 100,
        # against 1.08 at the zero head).
        (dict(prototype_pooling="max+mean", scale_bag_features=True), 3e-3),
    ],
    ids=["default", "laplacian", "max+mean scaled"],
)
def test_default_reaches_the_optimum_of_the_convex_objective(options, tolerance):
    """Check that the default fit (and with other kernels and bag features) is a stationary point.

    With the RBF width fixed, the objective (bag CE + Conveyance instance
    term + L2 on the head's weights) is convex in the head, so a zero
    gradient means the global optimum, whatever the optimizer's path.
    """
    bags, y = _synthetic_bags(0, n_bags=24)
    clf = MILConveyance(stacking=False, random_state=0, **options).fit(bags, y)
    net = clf.net_.module_
    assert "log_gamma" not in dict(net.named_parameters())  # a fixed width
    between = torch.pdist(net.prototypes, p=1 if net.kernel == "laplacian" else 2)
    if net.kernel == "rbf":
        between = between.square()
    heuristic = 1.0 / float(between.median())
    np.testing.assert_allclose(float(net.gamma), 0.5 * heuristic, rtol=1e-5)
    assert "gradient_clipping" not in dict(clf.net_.callbacks_)
    weight = net.head.weight.detach().double().requires_grad_()
    bias = net.head.bias.detach().double().requires_grad_()
    _objective64(clf, bags, y, weight, bias).backward()
    assert float(weight.grad.abs().max()) < tolerance
    assert float(bias.grad.abs().max()) < tolerance
    # ... and not at the start: the zero head has a large gradient.
    zero_w = torch.zeros_like(weight, requires_grad=True)
    zero_b = torch.zeros_like(bias, requires_grad=True)
    _objective64(clf, bags, y, zero_w, zero_b).backward()
    assert float(zero_w.grad.abs().max()) > 100 * tolerance


def test_adam_keeps_the_previous_training_of_the_prototypes():
    """Check that optimizer='adam' resolves the 'auto' values of the Adam regime."""
    bags, y = _synthetic_bags(0, n_bags=16)
    clf = MILConveyance(optimizer="adam", max_epochs=3, random_state=0).fit(bags, y)
    values = {name: clf._training_value(name) for name in (
        "lr", "weight_decay", "max_grad_norm", "gamma_scale", "batch_size")}
    assert values == dict(lr=1e-2, weight_decay=1e-4, max_grad_norm=1.0,
                          gamma_scale=1.0, batch_size=-1)
    assert clf.net_.optimizer is torch.optim.Adam
    assert "log_gamma" in dict(clf.net_.module_.named_parameters())  # a learned width
    assert "gradient_clipping" in dict(clf.net_.callbacks_)
    assert MILConveyance(optimizer="adam")._training_value("max_epochs") == 600


def test_penalised_lbfgs_solves_ridge_and_leaves_biases_alone():
    """Check the L2 penalty against the closed-form ridge solution, intercept unpenalised."""
    rng = np.random.RandomState(0)
    X = torch.as_tensor(rng.randn(50, 4))
    t = X @ torch.tensor([1.0, -2.0, 0.5, 0.0], dtype=torch.float64) + 3.0
    w = torch.zeros(1, 4, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    lam = 0.7
    opt = PenalisedLBFGS([w, b], max_iter=200, weight_decay=lam)

    def closure():
        opt.zero_grad()
        loss = 0.5 * ((X @ w.T).squeeze(1) + b - t).square().sum()
        loss.backward()
        return loss

    opt.step(closure)
    Xc, tc = X - X.mean(0), t - t.mean()
    ridge = torch.linalg.solve(Xc.T @ Xc + lam * torch.eye(4, dtype=torch.float64), Xc.T @ tc)
    torch.testing.assert_close(w.detach()[0], ridge, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(b.detach()[0], t.mean() - X.mean(0) @ ridge, rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="weight_decay"):
        PenalisedLBFGS([w], weight_decay=-1.0)


def test_fixed_width_and_gamma_scale_of_the_network():
    prototypes = np.random.RandomState(0).randn(6, 3)
    learned = PrototypeMIL(prototypes)
    fixed = PrototypeMIL(prototypes, gamma_scale=0.25, learn_gamma=False)
    assert "log_gamma" in dict(learned.named_parameters())
    assert "log_gamma" not in dict(fixed.named_parameters())
    assert "log_gamma" in dict(fixed.named_buffers())
    torch.testing.assert_close(fixed.gamma, 0.25 * learned.gamma.detach())
    with pytest.raises(ValueError, match="gamma_scale"):
        PrototypeMIL(prototypes, gamma_scale=-1.0)
