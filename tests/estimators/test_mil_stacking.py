"""MILConveyance's default: prototype models stacked on out-of-fold predictions, or an SVM.

The stacking network (:class:`skstruct.modules.PrototypeStackMIL`) is checked
against its formula in float64; the estimator for what ``stacking='auto'``
resolves to, for members that are the single models of their options, for
an inner cross-validation that keeps validation bags out of the prototypes,
and for stacking weights fitted as a non-negative logistic regression. The
SVM member (:class:`skstruct.modules.PrototypeSVMMIL`) is checked against
sklearn's SVC, and the choice between it and the stack on synthetic
out-of-fold predictions.
"""

import numpy as np
import pytest
import torch
from sklearn.model_selection import StratifiedKFold, cross_val_score

from skstruct import MILConveyance
from skstruct._mil import _STACK_MEMBERS, _fit_stacking, _stack_or_svm
from skstruct.modules import PrototypeMIL, PrototypeStackMIL, PrototypeSVMMIL

from .test_mil import _synthetic_bags
from .test_mil_prototypes import _padded


def _members(seed=0):
    torch.manual_seed(seed)
    prototypes = torch.randn(7, 3)
    members = [
        (PrototypeSVMMIL if "svm_C" in o else PrototypeMIL)(
            prototypes, learn_gamma=False, gamma_scale=o["gamma_scale"], kernel=o["kernel"],
            pooling=o["prototype_pooling"])
        for o in _STACK_MEMBERS
    ]
    for m in members:
        m.feature_scale.uniform_(0.5, 2.0)
        if isinstance(m, PrototypeSVMMIL):
            m.set_svm(torch.rand(5, 7), torch.randn(5, 1), torch.randn(1), 0.3)
        else:
            torch.nn.init.normal_(m.head.weight)
            torch.nn.init.normal_(m.head.bias)
    return members


def test_stack_forward_matches_the_formula_and_the_features_path():
    """Check sum_m w_m log_softmax(z_m) + b in float64, and bags vs precomputed features."""
    members = _members()
    weights, intercept = [0.7, 0.0, 1.3, 0.4], [0.2, -0.1]
    net = PrototypeStackMIL(members, weights=weights, intercept=intercept).eval()
    bags = [torch.randn(n, 3) for n in (1, 4, 2)]
    padded, mask = _padded(bags)
    bag_logits, instance_logits, attention, out_mask, per_member = net(padded, mask)
    assert torch.equal(out_mask, mask) and len(per_member) == 4
    expected = torch.as_tensor(intercept, dtype=torch.float64)
    expected_instances = torch.as_tensor(intercept, dtype=torch.float64)
    for w, output in zip(weights, per_member):
        expected = expected + w * torch.log_softmax(output[0].double(), -1)
        expected_instances = expected_instances + w * torch.log_softmax(
            output[1][~mask].double(), -1)
    torch.testing.assert_close(bag_logits.double(), expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(instance_logits[~mask].double(), expected_instances,
                               rtol=1e-5, atol=1e-5)
    assert torch.all(instance_logits[mask] == 0)
    # Attention: the members' attention averaged with weights w / sum(w).
    shares = torch.tensor(weights) / sum(weights)
    torch.testing.assert_close(attention, sum(s * o[2] for s, o in zip(shares, per_member)))
    torch.testing.assert_close(attention.sum(1), torch.ones(3))
    # Training on features computed once gives the same logits.
    instances = padded[~mask]
    member_inputs = []
    for m in members:
        d = m.distances(instances)
        member_inputs.append({"bag_features": m.bag_features(distances=d, padding_mask=mask),
                              "similarities": m.similarities(d)})
    again = net(member_inputs=member_inputs, padding_mask=mask)
    torch.testing.assert_close(again[0], bag_logits, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(again[1], instance_logits, rtol=1e-5, atol=1e-5)


def test_stack_gradients_reach_every_member_through_the_features_path():
    members = _members()
    net = PrototypeStackMIL(members).train()
    bags = [torch.randn(n, 3) for n in (2, 3)]
    padded, mask = _padded(bags)
    instances = padded[~mask]
    inputs = []
    for m in members:
        d = m.distances(instances)
        inputs.append({"bag_features": m.bag_features(distances=d, padding_mask=mask)})
    output = net(member_inputs=inputs, padding_mask=mask)
    assert output[1] is None and output[2] is None  # no similarities, training mode
    sum(o[0].sum() for o in output[4][:3]).backward()
    for m in members[:3]:
        assert m.head.weight.grad is not None and m.head.weight.grad.abs().sum() > 0


def test_select_prototypes_keeps_columns_width_and_scale():
    member = _members()[2]  # max+mean: two feature blocks
    sub = member.select_prototypes([4, 1])
    assert sub.n_prototypes == 2 and float(sub.gamma) == pytest.approx(float(member.gamma))
    torch.testing.assert_close(sub.prototypes, member.prototypes[[4, 1]], rtol=0, atol=0)
    torch.testing.assert_close(sub.feature_scale, member.feature_scale[[4, 1, 11, 8]])
    assert torch.all(sub.head.weight == 0) and "log_gamma" not in dict(sub.named_parameters())
    x = torch.randn(5, 3)
    torch.testing.assert_close(sub.distances(x), member.distances(x)[:, [4, 1]])


def test_stack_network_bad_input():
    members = _members()
    with pytest.raises(TypeError, match="non-empty sequence of PrototypeMIL"):
        PrototypeStackMIL([])
    with pytest.raises(ValueError, match="non-negative"):
        PrototypeStackMIL(members, weights=[1.0, -1.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="intercept must have 2"):
        PrototypeStackMIL(members, intercept=[0.0])
    net = PrototypeStackMIL(members)
    with pytest.raises(ValueError, match="exactly one of bags and member_inputs"):
        net()
    with pytest.raises(ValueError, match="one dict per member"):
        net(member_inputs=[{}], padding_mask=torch.zeros(1, 1, dtype=torch.bool))
    learned = PrototypeMIL(torch.randn(4, 3))
    with pytest.raises(ValueError, match="fixed kernel width"):
        learned(bag_features=torch.zeros(1, 4), padding_mask=torch.zeros(1, 1, dtype=torch.bool))
    with pytest.raises(ValueError, match="needs bag_features"):
        members[0](torch.randn(1, 2, 3), similarities=torch.zeros(2, 7))
    with pytest.raises(ValueError, match="at least one prototype"):
        members[0].select_prototypes([])


def test_fit_stacking_recovers_weights_and_drops_an_uninformative_member():
    """Check the non-negative logistic regression on out-of-fold log-probabilities."""
    rng = np.random.RandomState(0)
    n = 4000
    informative = rng.randn(n)
    noise = rng.randn(n)
    y = (rng.rand(n) < 1 / (1 + np.exp(-(2.0 * informative + 0.5)))).astype(int)
    def log_proba(score):  # log-probabilities whose log-odds are the score
        return np.stack([-np.logaddexp(0, score), -np.logaddexp(0, -score)], -1)
    z = torch.as_tensor(np.stack([log_proba(informative), log_proba(noise)], 1)[None])
    weights, intercept = _fit_stacking(z, y, None)
    assert weights[0] == pytest.approx(2.0, abs=0.2)
    assert weights[1] < 0.1  # cannot go negative
    assert float(intercept[1] - intercept[0]) == pytest.approx(0.5, abs=0.15)
    # Integer sample weights count like repeated bags.
    w = rng.randint(1, 3, n).astype(float)
    weighted = _fit_stacking(z, y, w)
    repeated = _fit_stacking(z[:, np.repeat(np.arange(n), w.astype(int))],
                             np.repeat(y, w.astype(int)), None)
    torch.testing.assert_close(weighted[0], repeated[0], rtol=1e-3, atol=1e-4)


def test_default_is_the_stack_and_options_ask_for_one_model():
    bags, y = _synthetic_bags(0, n_bags=30)
    clf = MILConveyance(random_state=0).fit(bags, y)
    net = clf.net_.module_
    assert isinstance(net, PrototypeStackMIL) and len(net.members) == 4
    assert [m.kernel for m in net.members] == ["rbf", "laplacian", "rbf", "rbf"]
    assert [m.pooling for m in net.members] == ["max", "max", "max+mean", "max"]
    assert [type(m) for m in net.members] == [PrototypeMIL] * 3 + [PrototypeSVMMIL]
    assert clf.stacking_weights_.shape == (4,) and np.all(clf.stacking_weights_ >= 0)
    np.testing.assert_allclose(net.stack_weights.numpy(), clf.stacking_weights_)
    assert clf.stacking_choice_ in ("stack", "svm")
    assert set(clf.stacking_cv_accuracy_) == {"stack", "svm"}
    if clf.stacking_choice_ == "stack":
        assert clf.stacking_weights_[3] == 0
    else:
        np.testing.assert_array_equal(clf.stacking_weights_, [0, 0, 0, 1])
    # The members share the prototypes and the standardisation.
    for m in net.members[1:]:
        assert torch.equal(m.prototypes, net.members[0].prototypes)
    proba = clf.predict_proba(bags)
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-6)
    assert clf.score(bags, y) >= 0.9
    instance = clf.predict_instance_proba(bags[:3])
    attention = clf.attention_weights(bags[:3])
    for p, a, bag in zip(instance, attention, bags[:3]):
        assert p.shape == (len(bag), 2) and a.shape == (len(bag),)
        np.testing.assert_allclose(a.sum(), 1.0, rtol=1e-5)
    # Setting an option of one model trains that model; stacking=False too.
    for params in ({"kernel": "laplacian"}, {"instance_weight": 0.0}, {"gamma_scale": 1.0},
                   {"stacking": False}, {"optimizer": "adam", "max_epochs": 2}):
        single = MILConveyance(random_state=0, **params).fit(bags, y)
        assert isinstance(single.net_.module_, PrototypeMIL), params
        assert not hasattr(single, "stacking_weights_")
    # A refit without stacking forgets the stacking weights and choice.
    clf.set_params(stacking=False).fit(bags, y)
    assert not hasattr(clf, "stacking_weights_") and not hasattr(clf, "stacking_choice_")


def test_members_are_the_single_models_of_their_options():
    """Check each member against MILConveyance(stacking=False, **its options) on the same seed."""
    bags, y = _synthetic_bags(1, n_bags=24)
    tight = {"optimizer_kwargs": {"tolerance_grad": 1e-7}, "random_state": 3}
    stack = MILConveyance(**tight).fit(bags, y).net_.module_
    padded, mask = _padded(bags)
    with torch.no_grad():
        member_logits = [o[0] for o in stack(padded, mask)[4]]
        for options, logits in zip(_STACK_MEMBERS, member_logits):  # MILConveyance parameters
            if "svm_C" in options:
                continue  # test_svm_member_is_sklearns_svc
            single = MILConveyance(stacking=False, **options, **tight).fit(bags, y)
            torch.testing.assert_close(single.net_.module_.prototypes, stack.members[0].prototypes)
            expected = single.net_.module_(padded, mask)[0]
            torch.testing.assert_close(logits, expected, rtol=1e-3, atol=2e-3)


def test_inner_cross_validation_leaves_validation_bags_out_of_the_prototypes(monkeypatch):
    """Check every inner fit: its prototypes are the instances of its own training bags."""
    bags, y = _synthetic_bags(2, n_bags=20)  # all instances distinct, all prototypes
    calls = []
    original = MILConveyance._fit_member

    def spy(self, network, options, bag_features, similarities, lengths, *args):
        calls.append((network, similarities, lengths))
        return original(self, network, options, bag_features, similarities, lengths, *args)

    monkeypatch.setattr(MILConveyance, "_fit_member", spy)
    clf = MILConveyance(max_epochs=2, random_state=0).fit(bags, y)
    n_instances = sum(len(b) for b in bags)
    # 3 repeats x 5 folds x 4 members, then the 4 members on all bags.
    assert len(calls) == 3 * 5 * 4 + 4
    for network, similarities, lengths in calls[:-4]:
        n_train = int(np.sum(lengths))
        assert n_train < n_instances
        assert network.n_prototypes == n_train  # the validation instances are left out
        if similarities is not None:  # each training instance is one kept prototype
            assert similarities.shape == (n_train, n_train)
            assert torch.all(similarities.max(1).values > 0.999)
    for network, _, lengths in calls[-4:]:
        assert network.n_prototypes == n_instances == int(np.sum(lengths))
    assert clf.net_.module_.members[0].n_prototypes == n_instances


def test_tiny_data_falls_back_to_equal_weights():
    bags, y = _synthetic_bags(0, n_bags=4)
    bags, y = bags[:3], y[:3]  # one positive bag: no stratified split
    clf = MILConveyance(max_epochs=2, random_state=0).fit(bags, y)
    np.testing.assert_allclose(clf.stacking_weights_, 1 / 4, rtol=1e-6)
    assert clf.stacking_choice_ == "equal weights" and clf.stacking_cv_accuracy_ == {}
    assert clf.predict(bags).shape == (3,)


def test_sample_weights_zero_weight_bags_leave_the_stack():
    bags, y = _synthetic_bags(0, n_bags=24)
    weight = np.ones(24)
    weight[:4] = 0.0
    clf = MILConveyance(max_epochs=3, random_state=0).fit(bags, y, sample_weight=weight)
    net = clf.net_.module_
    assert net.members[0].n_prototypes == sum(len(b) for b in bags[4:])
    weighted = MILConveyance(max_epochs=3, random_state=0).fit(
        bags, y, sample_weight=np.where(np.arange(24) % 2, 2.0, 1.0))
    assert np.all(np.isfinite(weighted.stacking_weights_))


def test_stacking_in_cross_val_score_is_deterministic():
    bags, y = _synthetic_bags(0, n_bags=30)
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    a = cross_val_score(MILConveyance(max_epochs=5, random_state=0), bags, y, cv=cv)
    b = cross_val_score(MILConveyance(max_epochs=5, random_state=0), bags, y, cv=cv)
    np.testing.assert_array_equal(a, b)
    assert a.mean() >= 0.8


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(stacking=True, kernel="laplacian"), "kernel='laplacian' configures one"),
        (dict(stacking=True, instance_weight=0.0), "instance_weight=0.0 configures one"),
        (dict(stacking=True, embedding="mlp"), "needs embedding='prototypes'"),
        (dict(stacking=True, optimizer="adam"), "needs embedding='prototypes'"),
        (dict(stacking="yes"), "stacking"),
    ],
)
def test_bad_stacking_parameters(params, match):
    bags, y = _synthetic_bags(0, n_bags=8)
    with pytest.raises(ValueError, match=match):
        MILConveyance(**params).fit(bags, y)


def _svm_features(net, bags):
    """The scaled bag features ``u = f / c`` of a PrototypeSVMMIL on a list of bags."""
    padded, mask = _padded([torch.as_tensor(b, dtype=torch.float32) for b in bags])
    with torch.no_grad():
        return (net.bag_features(padded, mask) / net.feature_scale).double().numpy()


def test_svm_member_is_sklearns_svc():
    """Check member D against sklearn's SVC(C=10, gamma='scale') on A's scaled features."""
    from sklearn.svm import SVC

    bags, y = _synthetic_bags(3, n_bags=30)
    clf = MILConveyance(random_state=0).fit(bags, y)
    a, d = clf.net_.module_.members[0], clf.net_.module_.members[3]
    torch.testing.assert_close(d.feature_scale, a.feature_scale)  # A's standardisation
    u_train = _svm_features(d, bags)
    svc = SVC(C=10.0, gamma="scale").fit(u_train, y)
    assert float(d.svm_gamma) == pytest.approx(svc._gamma, rel=1e-6)
    test_bags, _ = _synthetic_bags(4, n_bags=12)
    padded, mask = _padded([torch.as_tensor(b, dtype=torch.float32) for b in test_bags])
    with torch.no_grad():
        logits, instance_logits = d.eval()(padded, mask)[:2]
    score = (logits[:, 1] - logits[:, 0]).double().numpy()
    np.testing.assert_allclose(score, svc.decision_function(_svm_features(d, test_bags)),
                               rtol=1e-4, atol=1e-4)
    # An instance alone is a bag of one.
    alone = [b[i:i + 1] for b in test_bags for i in range(len(b))]
    expected = svc.decision_function(_svm_features(d, alone))
    got = (instance_logits[..., 1] - instance_logits[..., 0])[~mask].double().numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_svm_member_one_vs_rest_and_sample_weights():
    """Check more classes (one SVC per class) and weights that count like repeated bags."""
    from sklearn.svm import SVC

    from skstruct._mil import _fit_svm_member

    rng = np.random.RandomState(0)
    prototypes = torch.as_tensor(rng.randn(9, 3), dtype=torch.float32)
    bags = [rng.randn(rng.randint(1, 4), 3) + k for k in range(3) for _ in range(8)]
    y = np.repeat(np.arange(3), 8)
    net = PrototypeSVMMIL(prototypes, n_classes=3)
    padded, mask = _padded([torch.as_tensor(b, dtype=torch.float32) for b in bags])
    features = net.bag_features(padded, mask)
    net.feature_scale.copy_(features.std(0).clamp_min(1e-3))
    _fit_svm_member(net, features, y, None, 10.0)
    u = (features.double() / net.feature_scale.double()).numpy()  # as the fit divides
    with torch.no_grad():
        logits = net.eval()(padded, mask)[0].double().numpy()
    for k in range(3):
        svc = SVC(C=10.0, gamma="scale").fit(u, y == k)
        np.testing.assert_allclose(logits[:, k], svc.decision_function(u), rtol=1e-4, atol=1e-4)
    # Weight 2 = the bag twice (libsvm's C per sample, and the weighted width).
    weights = np.where(np.arange(24) % 3 == 0, 2.0, 1.0)
    weighted = _fit_svm_member(PrototypeSVMMIL(prototypes, n_classes=3), features, y,
                               weights, 10.0)
    twice = np.repeat(np.arange(24), weights.astype(int))
    repeated = _fit_svm_member(PrototypeSVMMIL(prototypes, n_classes=3), features[twice],
                               y[twice], None, 10.0)
    assert float(weighted.svm_gamma) == pytest.approx(float(repeated.svm_gamma), rel=1e-6)
    with torch.no_grad():
        # libsvm stops at a tolerance of 1e-3: the two solutions agree to it
        torch.testing.assert_close(weighted(padded, mask)[0], repeated(padded, mask)[0],
                                   rtol=0, atol=3e-3)
    # A class without positive weight: its machine is the constant -1.
    lonely = _fit_svm_member(PrototypeSVMMIL(prototypes, n_classes=3), features, y,
                             np.where(y == 2, 0.0, 1.0), 10.0)
    assert float(lonely.svm_intercept[2]) == -1.0 and torch.all(lonely.dual_coef[:, 2] == 0)


def test_svm_network_paths_state_dict_and_errors():
    torch.manual_seed(0)
    net = PrototypeSVMMIL(torch.randn(5, 3), pooling="max+mean").eval()
    bags = [torch.randn(n, 3) for n in (1, 3, 2)]
    padded, mask = _padded(bags)
    with torch.no_grad():
        assert torch.all(net(padded, mask)[0] == 0)  # no machine yet
    net.set_svm(torch.rand(4, 10), torch.randn(4, 1), [0.3], 0.2)
    with torch.no_grad():
        bag_logits, instance_logits, attention, _ = net(padded, mask)
        d = net.distances(padded[~mask])
        again = net(bag_features=net.bag_features(distances=d, padding_mask=mask),
                    similarities=net.similarities(d), padding_mask=mask)
    torch.testing.assert_close(again[0], bag_logits)
    torch.testing.assert_close(again[1], instance_logits)
    torch.testing.assert_close(attention.sum(1), torch.ones(3))
    torch.testing.assert_close(bag_logits.sum(1), torch.zeros(3))  # (-s/2, s/2)
    assert list(net.parameters()) == []
    # A fresh network loads a fitted one's state, whatever its number of support vectors.
    fresh = PrototypeSVMMIL(torch.randn(5, 3), pooling="max+mean").eval()
    fresh.load_state_dict(net.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(fresh(padded, mask)[0], bag_logits)
    sub = net.select_prototypes([3, 0])
    assert isinstance(sub, PrototypeSVMMIL) and len(sub.support) == 0
    with pytest.raises(ValueError, match="learn_gamma=False"):
        PrototypeSVMMIL(torch.randn(5, 3), learn_gamma=True)
    with pytest.raises(ValueError, match="gamma must be positive"):
        net.set_svm(torch.rand(1, 10), [[1.0]], [0.0], 0.0)
    with pytest.raises(ValueError, match="exactly one of bags, distances and bag_features"):
        net(padded, mask, bag_features=torch.zeros(3, 10))
    with pytest.raises(ValueError, match="needs bag_features"):
        net(padded, mask, similarities=torch.zeros(6, 5))
    with pytest.raises(ValueError, match="needs the padding_mask"):
        net(bag_features=torch.zeros(3, 10))


def _log_proba(score):
    """Two-class log-probabilities whose log-odds are ``score``."""
    return np.stack([-np.logaddexp(0, score), -np.logaddexp(0, -score)], -1)


def test_stack_or_svm_picks_the_more_accurate_candidate():
    """Check the choice between the stack of A, B, C and member D by cross-validated accuracy."""
    rng = np.random.RandomState(0)
    n, repeats = 60, 3
    y = np.tile([0, 1], n // 2)
    sign = 2.0 * y - 1.0
    good = sign + 0.3 * rng.randn(repeats, n)      # right on every bag
    weak = 0.5 * sign[:, None] + rng.randn(repeats, n, 3)  # right on about two thirds
    members = np.concatenate([weak, good[..., None]], 2)  # A, B, C weak; D good
    weights, intercept, choice, scores = _stack_or_svm(
        torch.as_tensor(_log_proba(members)), y, None, 5, seed=0)
    assert choice == "svm" and scores["svm"] == 1.0 and scores["stack"] < 0.95
    np.testing.assert_array_equal(weights.numpy(), [0, 0, 0, 1])
    assert torch.all(intercept == 0)
    # D weak, A good: the stack, fitted on all bags, with D's weight 0.
    members = np.concatenate([good[..., None], weak], 2)
    weights, intercept, choice, scores = _stack_or_svm(
        torch.as_tensor(_log_proba(members)), y, None, 5, seed=0)
    assert choice == "stack" and scores["stack"] > scores["svm"]
    expected = _fit_stacking(torch.as_tensor(_log_proba(members[:, :, :3])), y, None)
    torch.testing.assert_close(weights[:3], expected[0])
    torch.testing.assert_close(intercept, expected[1])
    assert weights[3] == 0
    # A tie goes to the stack; sample weights weigh the accuracies.
    tied = np.concatenate([good[..., None]] * 4, 2)
    assert _stack_or_svm(torch.as_tensor(_log_proba(tied)), y, None, 5, seed=0)[2] == "stack"
    flip = good.copy()
    flip[:, :10] *= -1  # D wrong on the first ten bags
    members = np.concatenate([weak, flip[..., None]], 2)
    w = np.ones(n)
    w[:10] = 0.0  # ... which weigh nothing
    assert _stack_or_svm(torch.as_tensor(_log_proba(members)), y, w, 5, seed=0)[3]["svm"] == 1.0
