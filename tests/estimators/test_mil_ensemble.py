"""MILConveyance(n_estimators > 1): members trained in one batched pass."""

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import cross_val_score
from torch import nn

from skstruct import MILConveyance
from skstruct._mil import _GradientNormClipping
from skstruct.losses import MILConveyanceLoss
from skstruct.modules import GatedAttentionMIL, GatedAttentionMILEnsemble

from .test_mil import FAST as MIL_FAST
from .test_mil import _synthetic_bags as _bags

# The MIL suite's tiny network and synthetic bags (one shifted instance per
# positive bag), trained a little longer.
FAST = dict(MIL_FAST, max_epochs=5)


def _member(ensemble, m):
    """Member ``m`` of an ensemble as a standalone GatedAttentionMIL."""
    widths = [layer.out_features for layer in ensemble.body]
    heads = [layer.out_features for layer in ensemble.instance_head][:-1]
    net = GatedAttentionMIL(
        ensemble.n_features,
        ensemble.n_classes,
        hidden_layer_sizes=tuple(widths),
        attention_size=ensemble.attention_V.out_features,
        instance_head_sizes=tuple(heads),
    )
    linears = [mod for mod in net.body.modules() if isinstance(mod, nn.Linear)]
    pairs = list(zip(linears, ensemble.body))
    pairs += [(net.attention_V, ensemble.attention_V), (net.attention_U, ensemble.attention_U)]
    pairs += [(net.attention_w, ensemble.attention_w), (net.bag_head, ensemble.bag_head)]
    head_linears = [mod for mod in net.instance_head.modules() if isinstance(mod, nn.Linear)]
    pairs += list(zip(head_linears, ensemble.instance_head))
    with torch.no_grad():
        for linear, stacked in pairs:
            linear.weight.copy_(stacked.weight[m].T)
            if linear.bias is not None:
                linear.bias.copy_(stacked.bias[m, 0])
    return net.eval()


def test_each_member_is_a_gated_attention_network():
    """Check that every member's outputs equal a GatedAttentionMIL with its weights."""
    torch.manual_seed(0)
    ensemble = GatedAttentionMILEnsemble(
        4, n_members=3, hidden_layer_sizes=(8, 6), attention_size=5, instance_head_sizes=(7,)
    ).eval()
    bags = torch.randn(3, 5, 4)
    mask = torch.tensor([[0, 0, 1, 1, 1], [0, 0, 0, 0, 0], [0, 1, 1, 1, 1]], dtype=torch.bool)
    bag, inst, att, _, member_bag, member_inst = ensemble(bags, mask)
    probs = []
    for m in range(3):
        ref_bag, ref_inst, ref_att, _ = _member(ensemble, m)(bags, mask)
        torch.testing.assert_close(member_bag[:, m], ref_bag)
        torch.testing.assert_close(member_inst[:, :, m], ref_inst)
        probs.append(torch.softmax(ref_bag, -1))
    # The ensemble's logits are the log of the members' mean probability.
    torch.testing.assert_close(torch.softmax(bag, -1), torch.stack(probs).mean(0))
    assert torch.all(att[mask] == 0)
    torch.testing.assert_close(att.sum(1), torch.ones(3))
    assert torch.all(inst[mask] == 0)


def test_ensemble_loss_is_the_sum_of_member_losses():
    """Check the criterion of an ensemble output against one criterion call per member."""
    torch.manual_seed(1)
    ensemble = GatedAttentionMILEnsemble(4, n_members=4, hidden_layer_sizes=(8,))
    bags = torch.randn(3, 6, 4)
    mask = torch.zeros(3, 6, dtype=torch.bool)
    mask[0, 2:] = True
    target = torch.tensor([1, 0, 1])
    output = ensemble(bags, mask)
    for reduction in ("mean", "sum", "none"):
        criterion = MILConveyanceLoss([[1, 1], [0, 1]], alpha=0.5, reduction=reduction)
        per_member = [
            criterion((output[4][:, m], output[5][:, :, m], output[2], mask), target)
            for m in range(4)
        ]
        torch.testing.assert_close(criterion(output, target), sum(per_member))


def test_member_gradients_are_clipped_one_by_one():
    """Check that clipping an ensemble clips each member's gradient norm separately."""
    torch.manual_seed(2)
    ensemble = GatedAttentionMILEnsemble(3, n_members=2, hidden_layer_sizes=(4,))
    for p in ensemble.parameters():
        p.grad = torch.randn_like(p)
    with torch.no_grad():
        for p in ensemble.parameters():
            p.grad[1] *= 1e-3  # member 1 stays below the limit
    before = [p.grad.clone() for p in ensemble.parameters()]
    clip = _GradientNormClipping(1.0)
    clip.on_train_begin(type("Net", (), {"module_": ensemble})())
    clip.on_grad_computed(None)
    norm = lambda grads, m: torch.sqrt(sum(g[m].square().sum() for g in grads))  # noqa: E731
    after = [p.grad for p in ensemble.parameters()]
    assert norm(after, 0) == pytest.approx(1.0, rel=1e-4)
    torch.testing.assert_close(after[0][1], before[0][1])
    assert norm(after, 1) == pytest.approx(float(norm(before, 1)), rel=1e-6)


def test_fit_predict_and_cross_val_score():
    """Check an ensemble estimator end to end: fit, probabilities, attention, CV."""
    bags, y = _bags(0)
    clf = MILConveyance(n_estimators=3, **dict(FAST, max_epochs=15)).fit(bags, y)
    assert isinstance(clf.net_.module_, GatedAttentionMILEnsemble)
    assert clf.net_.module_.n_members == 3
    proba = clf.predict_proba(bags)
    np.testing.assert_allclose(proba.sum(1), 1.0)
    assert clf.score(bags, y) >= 0.8
    for weights, bag in zip(clf.attention_weights(bags[:5]), bags[:5]):
        assert weights.shape == (len(bag),)
        assert weights.sum() == pytest.approx(1.0, abs=1e-5)
    inst = clf.predict_instance_proba(bags[:5])
    assert [p.shape for p in inst] == [(len(b), 2) for b in bags[:5]]
    scores = cross_val_score(clone(clf).set_params(max_epochs=3), bags, y, cv=3)
    assert scores.shape == (3,)


def test_same_random_state_same_ensemble():
    bags, y = _bags(1)
    a = MILConveyance(n_estimators=2, **FAST).fit(bags, y).predict_proba(bags)
    b = MILConveyance(n_estimators=2, **FAST).fit(bags, y).predict_proba(bags)
    np.testing.assert_array_equal(a, b)


def test_members_differ():
    """Check that members start from different weights (an ensemble, not k copies)."""
    bags, y = _bags(2)
    clf = MILConveyance(n_estimators=3, **FAST).fit(bags, y)
    weight = clf.net_.module_.body[0].weight
    assert not torch.allclose(weight[0], weight[1])


def test_ensemble_with_user_module_is_an_error():
    bags, y = _bags(3)
    clf = MILConveyance(n_estimators=2, module=nn.Linear(5, 4), **FAST)
    with pytest.raises(ValueError, match="n_estimators=2 .* module=None"):
        clf.fit(bags, y)


@pytest.mark.parametrize("bad", [0, -1, 1.5])
def test_bad_n_estimators(bad):
    bags, y = _bags(4)
    with pytest.raises((ValueError, TypeError), match="n_estimators"):
        MILConveyance(n_estimators=bad, **FAST).fit(bags, y)


@pytest.mark.parametrize("scale", [1e-3, 10.0])
def test_single_network_clipping_equals_clip_grad_norm(scale):
    """Check that one network's clipping is torch's clip_grad_norm_, below and above the limit."""
    torch.manual_seed(3)
    net = GatedAttentionMIL(4, hidden_layer_sizes=(6,), attention_size=3)
    params = list(net.parameters())
    grads = [torch.randn_like(p) * scale for p in params]
    grads[-1] = None  # a parameter without a gradient is skipped
    for p, g in zip(params, grads):
        p.grad = None if g is None else g.clone()
    clip = _GradientNormClipping(1.0)
    clip.on_train_begin(type("Net", (), {"module_": net})())
    clip.on_grad_computed(None)
    ours = [p.grad for p in params]
    for p, g in zip(params, grads):
        p.grad = None if g is None else g.clone()
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    for a, b in zip(ours, (p.grad for p in params)):
        if b is None:
            assert a is None
        else:
            torch.testing.assert_close(a, b, rtol=1e-6, atol=0)
