"""BagTransformer: instance-level transformers inside bag pipelines."""

import numpy as np
import pytest
from sklearn.decomposition import PCA
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skstruct import MILConveyance
from skstruct.preprocessing import BagTransformer

TINY = dict(embedding="mlp", hidden_layer_sizes=(8,), attention_size=4, instance_head_sizes=(),
            max_epochs=3, batch_size=4, random_state=0, n_threads=1)


def _bags(n=24, seed=0):
    rng = np.random.RandomState(seed)
    bags = [rng.randn(rng.randint(1, 5), 3) * [100.0, 1.0, 0.01] + [300, 0, 0] for _ in range(n)]
    y = np.array([0, 1] * (n // 2))
    for bag, label in zip(bags, y):
        bag[0, 1] += 4 * label
    return bags, y


def test_statistics_come_from_the_instances_of_the_fitted_bags():
    """Check that the scaler is fitted on all stacked instances, then applied bag by bag."""
    bags, _ = _bags()
    bt = BagTransformer(StandardScaler()).fit(bags)
    stacked = np.concatenate(bags)
    np.testing.assert_allclose(bt.transformer_.mean_, stacked.mean(axis=0))
    out = bt.transform(bags[:3])
    assert [b.shape for b in out] == [b.shape for b in bags[:3]]
    for raw, scaled in zip(bags[:3], out):
        np.testing.assert_allclose(scaled, (raw - stacked.mean(0)) / stacked.std(0))
    assert bt.n_features_in_ == 3
    # The transformer given is cloned, never fitted itself.
    assert not hasattr(bt.transformer, "mean_")


def test_transformer_changing_the_width():
    """Check a transformer that changes the number of features (PCA)."""
    bags, _ = _bags()
    out = BagTransformer(PCA(n_components=2)).fit_transform(bags)
    assert {b.shape[1] for b in out} == {2}


def test_pipeline_in_cross_val_score_and_grid_search():
    """Check make_pipeline(BagTransformer(...), MILConveyance()) in sklearn's CV tools."""
    bags, y = _bags()
    pipe = make_pipeline(BagTransformer(StandardScaler()), MILConveyance(**TINY))
    scores = cross_val_score(pipe, bags, y, cv=StratifiedKFold(3))
    assert scores.shape == (3,) and np.all((0 <= scores) & (scores <= 1))
    search = GridSearchCV(
        pipe,
        {"bagtransformer__transformer": [StandardScaler(), StandardScaler(with_std=False)],
         "milconveyance__lr": [1e-3, 1e-2]},
        cv=StratifiedKFold(2),
    ).fit(bags, y)
    assert len(search.cv_results_["params"]) == 4
    assert search.predict(bags[:5]).shape == (5,)


def test_bad_input():
    """Check the errors: not a transformer, 2-D X, a width that differs from fit."""
    bags, _ = _bags()
    with pytest.raises((TypeError, ValueError), match="transformer"):
        BagTransformer("scale").fit(bags)
    with pytest.raises(ValueError, match="sequence of bags"):
        BagTransformer(StandardScaler()).fit(np.zeros((4, 3)))
    bt = BagTransformer(StandardScaler()).fit(bags)
    with pytest.raises(ValueError, match="fitted with 3 features"):
        bt.transform([np.zeros((2, 4))])
