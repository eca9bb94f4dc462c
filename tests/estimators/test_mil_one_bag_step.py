"""The one-bag-per-step fast paths of MILConveyance give the general paths' numbers bit for bit.

Issue 16: with one bag per step the network's single-bag forward, the loss's
single-bag path, the gradient clipping and the fused Adam step skip per-step
work, never arithmetic; each is compared here with the path it replaces
(``torch.equal``, not a tolerance).
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from skstruct import MILConveyance
from skstruct._mil import _GradientNormClipping
from skstruct._net import _fused_adam_step
from skstruct.losses import MILConveyanceLoss, conveyance_loss
from skstruct.modules import GatedAttentionMIL


def _network(seed=0, **kwargs):
    torch.manual_seed(seed)
    options = dict(hidden_layer_sizes=(32, 16), attention_size=8, instance_head_sizes=(16,))
    options.update(kwargs)
    return GatedAttentionMIL(5, **options)


def _grads(network):
    return [p.grad.clone() for p in network.parameters()]


def _batch_path(network, bags):
    """The batch path of ``GatedAttentionMIL.forward`` without padding (3-D tensors)."""
    n_bags, n_max, _ = bags.shape
    hidden = network.body(bags.reshape(n_bags * n_max, -1)).reshape(n_bags, n_max, -1)
    scores = network._attention_scores(hidden)
    instance_logits = network.instance_head(hidden)
    attention = torch.softmax(scores, dim=1)
    bag_repr = torch.bmm(attention.unsqueeze(1), hidden).squeeze(1)
    return network.bag_head(bag_repr), instance_logits, attention


@pytest.mark.parametrize("n_instances", [1, 4, 9])
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("with_mask", [True, False])
def test_one_bag_forward_matches_batch_path(n_instances, training, with_mask):
    network = _network().train(training)
    bag = torch.randn(1, n_instances, 5)
    mask = torch.zeros(1, n_instances, dtype=torch.bool) if with_mask else None
    outputs = []
    for forward in (lambda: network(bag, mask)[:3], lambda: _batch_path(network, bag)):
        network.zero_grad(set_to_none=True)
        torch.manual_seed(1)  # the same dropout draws
        bag_logits, instance_logits, attention = forward()
        (bag_logits.square().sum() + instance_logits.sin().sum()).backward()
        outputs.append(([bag_logits, instance_logits, attention], _grads(network)))
    (fast, fast_grads), (batch, batch_grads) = outputs
    for a, b in zip(fast, batch):
        assert a.shape == b.shape and torch.equal(a, b)
    assert all(torch.equal(a, b) for a, b in zip(fast_grads, batch_grads))
    if with_mask:
        assert network(bag, mask)[3] is mask


def test_one_bag_forward_all_padding_takes_general_path():
    network = _network().eval()
    bag = torch.randn(1, 3, 5)
    mask = torch.ones(1, 3, dtype=torch.bool)  # degenerate, but the general path's result
    _, instance_logits, _, _ = network(bag, mask)
    assert torch.equal(instance_logits, torch.zeros_like(instance_logits))


@pytest.mark.parametrize("instance_weight", [1.0, 0.5, 0.0])
@pytest.mark.parametrize("plausible", [[[1, 1], [0, 1]], [[1, 0, 1], [1, 1, 0], [0, 0, 1]]])
@pytest.mark.parametrize("scale", [1.0, 60.0])
def test_one_bag_loss_matches_formula(instance_weight, plausible, scale):
    n_classes = len(plausible)
    criterion = MILConveyanceLoss(plausible, alpha=0.7, beta=2.0, instance_weight=instance_weight)
    torch.manual_seed(0)
    for n_instances in (1, 3, 7):
        bag_logits0 = torch.randn(1, n_classes) * scale
        instance_logits0 = torch.randn(1, n_instances, n_classes) * scale
        target = torch.randint(0, n_classes, (1,))
        mask = torch.zeros(1, n_instances, dtype=torch.bool)

        def run(loss_fn):
            bag_logits = bag_logits0.clone().requires_grad_()
            instance_logits = instance_logits0.clone().requires_grad_()
            loss = loss_fn(bag_logits, instance_logits)
            loss.backward()
            return loss.detach(), bag_logits.grad, instance_logits.grad

        def formula(bag_logits, instance_logits):
            # The general path's operations for one bag without padding.
            loss = F.cross_entropy(bag_logits, target)
            if instance_weight == 0:
                return loss
            per_instance = conveyance_loss(
                instance_logits.reshape(n_instances, n_classes),
                target.repeat_interleave(n_instances),
                criterion.plausible, alpha=0.7, beta=2.0, reduction="none",
            )
            return loss + instance_weight * per_instance.mean()

        fast = run(lambda b, i: criterion((b, i, None, mask), target))
        expected = run(formula)
        for a, b in zip(fast, expected):
            assert (a is None and b is None) or torch.equal(a, b)


def test_one_bag_loss_target_out_of_range():
    criterion = MILConveyanceLoss([[1, 1], [0, 1]])
    output = (torch.zeros(1, 2), torch.zeros(1, 3, 2), None, torch.zeros(1, 3, dtype=torch.bool))
    for bad in (2, -1):
        with pytest.raises(ValueError, match="class indices"):
            criterion(output, torch.tensor([bad]))


def _clip_reference(params, max_norm):
    torch.nn.utils.clip_grad_norm_(params, max_norm)


@pytest.mark.parametrize("max_norm", [1e-3, 1.0, 1e3])
def test_clip_matches_clip_grad_norm(max_norm):
    network = _network()
    params = list(network.parameters())
    clip = _GradientNormClipping(max_norm)

    class _Net:
        module_ = network

    clip.on_train_begin(_Net())
    assert clip._one_group_
    torch.manual_seed(3)
    grads = [torch.randn_like(p) for p in params]
    for p, g in zip(params, grads):
        p.grad = g.clone()
    clip._clip_one([p.grad for p in params])
    fast = _grads(network)
    for p, g in zip(params, grads):
        p.grad = g.clone()
    _clip_reference(params, max_norm)
    assert all(torch.equal(a, b) for a, b in zip(fast, _grads(network)))


@pytest.mark.parametrize("optimizer", [torch.optim.Adam, torch.optim.AdamW])
def test_fused_adam_step_matches_step(optimizer):
    runs = []
    for fast in (True, False):
        network = _network()
        opt = optimizer(network.parameters(), lr=1e-2, weight_decay=1e-3, fused=True)
        torch.manual_seed(4)
        taken = []
        for _ in range(4):
            for p in network.parameters():
                p.grad = torch.randn_like(p)
            taken.append(fast and _fused_adam_step(opt))
            if not taken[-1]:
                opt.step()
        runs.append((taken, [p.detach().clone() for p in network.parameters()],
                     [opt.state[p]["exp_avg_sq"].clone() for p in network.parameters()]))
    (taken, params, states), (_, params_ref, states_ref) = runs
    assert taken == [False, True, True, True]  # the first step creates the state
    assert all(torch.equal(a, b) for a, b in zip(params, params_ref))
    assert all(torch.equal(a, b) for a, b in zip(states, states_ref))


def test_fused_adam_step_declines():
    network = _network()
    params = list(network.parameters())
    for p in params:
        p.grad = torch.ones_like(p)
    plain = torch.optim.Adam(params, fused=True)
    plain.step()
    assert _fused_adam_step(plain)
    assert not _fused_adam_step(torch.optim.Adam(params))  # not fused
    scheduled = torch.optim.Adam(params, fused=True)
    scheduled.step()
    torch.optim.lr_scheduler.StepLR(scheduled, 1)  # patches step() on the instance
    assert not _fused_adam_step(scheduled)
    hooked = torch.optim.Adam(params, fused=True)
    hooked.step()
    hooked.register_step_post_hook(lambda *args: None)
    assert not _fused_adam_step(hooked)
    assert not _fused_adam_step(torch.optim.SGD(params))


def test_one_bag_training_is_deterministic_and_learns():
    rng = np.random.default_rng(0)
    bags = [rng.normal(size=(int(rng.integers(1, 6)), 5)) for _ in range(24)]
    y = np.array([int(b[:, 0].max() > 0.5) for b in bags])
    options = dict(embedding="mlp", hidden_layer_sizes=(16,), attention_size=8,
                   instance_head_sizes=(8,), max_epochs=4, batch_size=1, lr=1e-2,
                   optimizer="adam", max_grad_norm=1.0, random_state=0)
    first = MILConveyance(**options).fit(bags, y)
    second = MILConveyance(**options).fit(bags, y)
    assert np.array_equal(first.predict_proba(bags), second.predict_proba(bags))
    losses = list(first.net_.history[:, "train_loss"])
    assert np.all(np.isfinite(losses)) and losses[-1] < losses[0]
