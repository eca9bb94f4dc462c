"""Valid limits of the Conveyance weights: alpha = 0 and beta = 0 (issue 15).

``alpha = 1, beta = 0`` is exactly cross-entropy, since
``log(1 + (1 - p_t) / p_t) = -log p_t``; ``alpha = 0, beta = 1`` is the pure
set (partial-label) loss ``-log p_S``. Only both zero is refused.
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from skstruct import ConveyanceClassifier, MILConveyance
from skstruct.losses import ConveyanceLoss, MILConveyanceLoss, conveyance_loss
from tests._reference import conveyance_loss_reference


def _problem(seed, n=24, c=6, scale=3.0, density=0.3):
    g = torch.Generator().manual_seed(seed)
    logits = scale * torch.randn(n, c, generator=g, dtype=torch.float64)
    target = torch.randint(0, c, (n,), generator=g)
    plausible = torch.rand(c, c, generator=g) < density
    return logits, target, plausible


def _grad(fn, logits):
    x = logits.detach().clone().requires_grad_(True)
    fn(x).sum().backward()
    return x.grad


@pytest.mark.parametrize("scale", [1.0, 30.0, 1e4])
@pytest.mark.parametrize("dense", [True, False])
def test_alpha_one_beta_zero_is_cross_entropy(scale, dense):
    """Check that alpha=1, beta=0 equals cross-entropy, values and gradients, float64."""
    logits, target, plausible = _problem(0, scale=scale)
    if dense:
        loss_fn = lambda x: conveyance_loss(x, target, plausible, alpha=1.0, beta=0.0, reduction="none")
    else:  # the module's sparse plausible-set index
        criterion = ConveyanceLoss(torch.zeros(6, 6), alpha=1.0, beta=0.0, reduction="none")
        assert criterion._others is not None
        loss_fn = lambda x: criterion(x, target)
    ce = lambda x: F.cross_entropy(x, target, reduction="none")
    torch.testing.assert_close(loss_fn(logits), ce(logits), rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(_grad(loss_fn, logits), _grad(ce, logits), rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("scale", [1.0, 30.0, 1e4])
def test_alpha_zero_is_set_loss(scale):
    """Check that alpha=0, beta=1 equals -log p_S, values and gradients, float64."""
    logits, target, plausible = _problem(1, scale=scale)
    in_s = plausible.T[target] | F.one_hot(target, 6).bool()

    def set_loss(x):
        log_p = torch.log_softmax(x, 1)
        return -torch.logsumexp(log_p.masked_fill(~in_s, -torch.inf), 1)

    loss_fn = lambda x: conveyance_loss(x, target, plausible, alpha=0.0, beta=1.0, reduction="none")
    torch.testing.assert_close(loss_fn(logits), set_loss(logits), rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(_grad(loss_fn, logits), _grad(set_loss, logits), rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("alpha, beta", [(0.0, 3.0), (2.5, 0.0)])
def test_zero_weight_matches_reference(alpha, beta):
    """Check alpha=0 / beta=0 against the float64 reference, with gradients, at moderate logits."""
    logits, target, plausible = _problem(2, n=12, scale=2.0)
    fn = lambda x: conveyance_loss(x, target, plausible, alpha=alpha, beta=beta, reduction="none")
    ref = lambda x: conveyance_loss_reference(x, target, plausible, alpha=alpha, beta=beta)
    torch.testing.assert_close(fn(logits), ref(logits), rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(_grad(fn, logits), _grad(ref, logits), rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_zero_weight_low_precision_finite(dtype):
    """Check that alpha=0 and beta=0 stay finite in low precision, empty N included."""
    logits, target, plausible = _problem(3, scale=50.0)
    everything = torch.ones(6, 6, dtype=torch.bool)
    for q in (plausible, everything):
        for alpha, beta in ((0.0, 1.0), (1.0, 0.0)):
            x = logits.to(dtype).requires_grad_(True)
            loss = conveyance_loss(x, target, q, alpha=alpha, beta=beta, reduction="none")
            loss.sum().backward()
            assert torch.isfinite(loss).all() and torch.isfinite(x.grad).all()
    # S = every class and alpha = 0: nothing to pay, exactly 0 and a zero gradient.
    x = logits.float().requires_grad_(True)
    loss = conveyance_loss(x, target, everything, alpha=0.0, beta=1.0, reduction="sum")
    loss.backward()
    assert loss.item() == 0.0 and (x.grad == 0).all()


def test_both_zero_refused():
    """Check that alpha=0 and beta=0 together raise a ValueError naming both."""
    logits, target, plausible = _problem(4)
    for make in (
        lambda: conveyance_loss(logits, target, plausible, alpha=0.0, beta=0.0),
        lambda: ConveyanceLoss(plausible, alpha=0, beta=0),
        lambda: MILConveyanceLoss([[1, 1], [0, 1]], alpha=0.0, beta=0.0),
    ):
        with pytest.raises(ValueError, match="alpha and beta"):
            make()


def test_mil_loss_zero_weights():
    """Check that MILConveyanceLoss with alpha=1, beta=0 adds instance cross-entropy."""
    g = torch.Generator().manual_seed(5)
    bag, inst = torch.randn(3, 2, generator=g), torch.randn(3, 4, 2, generator=g)
    mask = torch.zeros(3, 4, dtype=torch.bool)
    target = torch.tensor([0, 1, 1])
    out = (bag, inst, torch.full((3, 4), 0.25), mask)
    got = MILConveyanceLoss([[1, 1], [0, 1]], alpha=1.0, beta=0.0)(out, target)
    expected = F.cross_entropy(bag, target) + F.cross_entropy(
        inst.reshape(12, 2), target.repeat_interleave(4)
    )
    torch.testing.assert_close(got, expected)
    assert torch.isfinite(MILConveyanceLoss([[1, 1], [0, 1]], alpha=0.0)(out, target))


def test_estimators_accept_zero_weights():
    """Check that the estimators fit with alpha=0 or beta=0 and refuse both zero in fit."""
    rng = np.random.RandomState(0)
    X, y = rng.randn(30, 3), np.arange(30) % 3
    for alpha, beta in ((0.0, 1.0), (1.0, 0.0)):
        clf = ConveyanceClassifier(alpha=alpha, beta=beta, hidden_layer_sizes=(4,), max_epochs=1, random_state=0)
        assert clf.fit(X, y).predict(X).shape == (30,)
    with pytest.raises(ValueError, match="alpha and beta"):
        ConveyanceClassifier(alpha=0.0, beta=0.0, max_epochs=1).fit(X, y)
    bags = [rng.randn(3, 2) for _ in range(6)]
    with pytest.raises(ValueError, match="alpha and beta"):
        MILConveyance(alpha=0, beta=0, max_epochs=1).fit(bags, np.arange(6) % 2)
    clf = MILConveyance(alpha=0.0, max_epochs=1, random_state=0)
    assert clf.fit(bags, np.arange(6) % 2).predict(bags).shape == (6,)


@pytest.mark.parametrize(
    "call",
    [
        "conveyance", "module", "hace", "emd2", "emd2_ground", "average_k", "mil",
    ],
)
@pytest.mark.parametrize("bad", [-1, 4])
def test_target_out_of_range(call, bad):
    """Check that every loss refuses a target outside [0, C) with a ValueError naming target."""
    from skstruct.losses import AverageKLoss, emd2_ground_loss, emd2_loss, hace_loss
    from skstruct.structures import Hierarchy

    logits = torch.randn(3, 4)
    target = torch.tensor([0, bad, 1])
    q = torch.eye(4, dtype=torch.bool)
    h = Hierarchy.from_paths([["r", "a"], ["r", "b"], ["r", "c"], ["r", "d"]])
    fns = {
        "conveyance": lambda: conveyance_loss(logits, target, q),
        "module": lambda: ConveyanceLoss(q)(logits, target),
        "hace": lambda: hace_loss(logits, target, h),
        "emd2": lambda: emd2_loss(logits, target),
        "emd2_ground": lambda: emd2_ground_loss(logits, target, torch.ones(4, 4) - torch.eye(4)),
        "average_k": lambda: AverageKLoss(k=1.5)((logits, logits), target),
        "mil": lambda: MILConveyanceLoss(q)(
            (logits, logits[:, None], torch.ones(3, 1), torch.zeros(3, 1, dtype=torch.bool)), target
        ),
    }
    with pytest.raises(ValueError, match="target"):
        fns[call]()


def test_negative_hidden_layer_size():
    """Check that a negative hidden layer size gives a ValueError naming hidden_layer_sizes in fit."""
    X, y = np.random.RandomState(0).randn(10, 2), np.arange(10) % 2
    with pytest.raises(ValueError, match="hidden_layer_sizes"):
        ConveyanceClassifier(hidden_layer_sizes=(8, -2), max_epochs=1).fit(X, y)


@pytest.mark.parametrize("call", ["sparse", "dense", "emd2_rank", "emd2_ground", "average_k"])
@pytest.mark.parametrize("bad", [-3, 40, 10**6])
def test_target_out_of_range_large_c(call, bad):
    """Check the ValueError on the paths used at larger C (index, mask, permutation).

    On the CPU the range is read only after torch's own indexing fails, so
    each path must index with the target before it could read past a row.
    """
    from skstruct.losses import average_k_loss, emd2_ground_loss, emd2_loss

    c = 40
    g = torch.Generator().manual_seed(3)
    logits = torch.randn(5, c, generator=g)
    target = torch.tensor([0, 1, bad, 2, 3])
    sparse = torch.eye(c, dtype=torch.bool).roll(1, 0) | torch.eye(c, dtype=torch.bool)
    dense = torch.rand(c, c, generator=g) < 0.5
    fns = {
        "sparse": lambda: conveyance_loss(logits, target, sparse),
        "dense": lambda: ConveyanceLoss(dense)(logits, target),
        "emd2_rank": lambda: emd2_loss(logits, target, rank=torch.randperm(c, generator=g)),
        "emd2_ground": lambda: emd2_ground_loss(logits, target, torch.ones(c, c)),
        "average_k": lambda: average_k_loss(logits, logits, target, k=2.0),
    }
    with pytest.raises(ValueError, match=f"got target value {bad}"):
        fns[call]()
