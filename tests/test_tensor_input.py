"""Any tensor input the module accepts: images, sequences (sklearn's allow_nd)."""

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.model_selection import cross_val_score
from torch import nn

from skstruct import CrossEntropyClassifier, HACEClassifier, MILConveyance
from skstruct.structures import Hierarchy


def _small_cnn():
    return nn.Sequential(
        nn.Conv2d(1, 4, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
    )


def _digits(n=300):
    digits = load_digits()
    X = (digits.images[:n] / 16.0).astype(np.float32)[:, None, :, :]  # (n, 1, 8, 8)
    return X, digits.target[:n]


def test_cnn_on_images_learns_and_predicts():
    """Check a CNN on (n, 1, 8, 8) images through fit, predict_proba, score and CV."""
    X, y = _digits(200)
    clf = CrossEntropyClassifier(module=_small_cnn(), max_epochs=8, lr=1e-2, random_state=0)
    clf.fit(X, y)
    assert clf.n_features_in_ == 1  # sklearn counts X.shape[1] (the channels)
    proba = clf.predict_proba(X[:5])
    assert proba.shape == (5, 10)
    assert clf.score(X, y) > 0.8
    scores = cross_val_score(clone(clf).set_params(max_epochs=2), X, y, cv=2)
    assert scores.shape == (2,)


def test_hierarchy_over_digit_images():
    """Check HACE with a CNN backbone on images and a hierarchy over the digits."""
    X, y = _digits(200)
    hierarchy = Hierarchy({d: ("even" if d % 2 == 0 else "odd") for d in range(10)})
    clf = HACEClassifier(hierarchy, module=_small_cnn(), max_epochs=3, random_state=0)
    clf.fit(X, y)
    assert clf.predict_level_proba(X[:3], depth=0).shape == (3, 2)


def test_sequences_with_a_per_step_module():
    """Check (n, T, d) sequences with a module applied per time step, then pooled."""

    class MeanOverSteps(nn.Module):
        def __init__(self):
            super().__init__()
            self.step = nn.Sequential(nn.Linear(2, 8), nn.ReLU())

        def forward(self, X):
            return self.step(X).mean(dim=1)

    rng = np.random.RandomState(0)
    X = rng.randn(80, 5, 2)
    y = (X[:, :, 0].sum(axis=1) > 0).astype(int)
    clf = CrossEntropyClassifier(module=MeanOverSteps(), max_epochs=40, lr=3e-2, random_state=0)
    assert clf.fit(X, y).score(X, y) > 0.85
    assert clf.predict_proba(X[:4]).shape == (4, 2)


def test_default_mlp_needs_2d_and_says_so():
    """Check the error of the default MLP on 4-D input."""
    X, y = _digits(20)
    with pytest.raises(ValueError, match=r"default MLP takes 2-D.*module="):
        CrossEntropyClassifier(max_epochs=1).fit(X, y)


def test_predict_checks_the_sample_shape():
    """Check that prediction refuses samples of another shape than in fit."""
    X, y = _digits(40)
    clf = CrossEntropyClassifier(module=_small_cnn(), max_epochs=1, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match=r"shape \(1, 4, 4\).*\(1, 8, 8\)"):
        clf.predict(X[:, :, :4, :4])
    torch_X = torch.as_tensor(X[:3])
    assert clf.predict(torch_X.numpy()).shape == (3,)


def test_mil_bags_unchanged():
    """Check that MIL still takes its bags (not the allow_nd path)."""
    bags = [np.ones((2, 3)), np.zeros((3, 3))] * 3
    y = [1, 0] * 3
    clf = MILConveyance(embedding="mlp", hidden_layer_sizes=(4,), attention_size=2,
                        instance_head_sizes=(), max_epochs=1, random_state=0)
    assert clf.fit(bags, y).predict(bags).shape == (6,)
