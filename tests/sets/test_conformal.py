"""Conformal set strategies: LAC / APS / RAPS scores, Mondrian calibration, estimator wiring."""

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.model_selection import train_test_split

from skstruct import CrossEntropyClassifier, EMDOrdinalRegressor
from skstruct.sets import APS, LAC, RAPS, SplitConformal, calibrate_conformal
from skstruct.sets._conformal import conformal_quantile

FAST = dict(hidden_layer_sizes=(16,), max_epochs=10, batch_size=32, lr=1e-2, random_state=0)


def _calibrated_proba(n, n_classes=6, seed=0):
    """Dirichlet probabilities and labels drawn from them (a calibrated model)."""
    rng = np.random.RandomState(seed)
    proba = rng.dirichlet(np.full(n_classes, 0.5), size=n)
    y = np.argmax(np.cumsum(proba, axis=1) > rng.uniform(size=(n, 1)), axis=1)
    return proba, y


def test_lac_strategy_equals_the_legacy_conformal_threshold():
    """Check that SplitConformal(LAC()) keeps exactly the classes of calibrate_conformal."""
    proba, y = _calibrated_proba(500, seed=1)
    test, _ = _calibrated_proba(300, seed=2)
    for level in (0.5, 0.8, 0.9):
        threshold = calibrate_conformal(proba, y, level)
        rule = SplitConformal(LAC()).calibrate(proba, y, level)
        np.testing.assert_array_equal(rule.predict_sets(test), test >= threshold)


def test_aps_and_raps_scores_by_hand():
    """Check APS (cumulative mass), its randomized form and the RAPS penalty on one row."""
    proba = np.array([[0.2, 0.5, 0.3]])
    np.testing.assert_allclose(APS().nonconformity(proba), [[1.0, 0.5, 0.8]])
    np.testing.assert_allclose(
        APS(randomized=True).nonconformity(proba, u=np.array([0.5])), [[0.9, 0.25, 0.65]]
    )
    np.testing.assert_allclose(
        RAPS(lambda_reg=0.1, k_reg=1).nonconformity(proba), [[1.2, 0.5, 0.9]]
    )
    with pytest.raises(ValueError, match="uniform"):
        APS(randomized=True).nonconformity(proba)


def test_conformal_quantile_rank_and_too_few_rows():
    """Check the ceil((n + 1) level)-th smallest score and inf when n is too small."""
    assert conformal_quantile([0.4, 0.1, 0.3, 0.2], 0.6) == 0.3  # rank ceil(3) = 3
    assert conformal_quantile([0.1, 0.2], 0.9) == np.inf


@pytest.mark.parametrize(
    "score", [LAC(), APS(), APS(randomized=True), RAPS(), RAPS(randomized=True)],
    ids=repr,
)
def test_marginal_coverage_of_each_score(score):
    """Check marginal coverage within [level - 1.5, level + 4] points on 20 draws of 400 + 2000 rows."""
    level, coverages = 0.8, []
    for seed in range(20):
        proba, y = _calibrated_proba(2400, seed=seed)
        rule = SplitConformal(score, random_state=seed).calibrate(proba[:400], y[:400], level)
        sets = rule.predict_sets(proba[400:])
        coverages.append(sets[np.arange(2000), y[400:]].mean())
    assert level - 0.015 <= np.mean(coverages) <= level + 0.04


def test_randomized_aps_sets_are_smaller_than_plain_aps():
    """Check that randomization removes APS's conservativeness (smaller mean size)."""
    proba, y = _calibrated_proba(4000, seed=3)
    sizes = {}
    for randomized in (False, True):
        rule = SplitConformal(APS(randomized=randomized)).calibrate(proba[:1000], y[:1000], 0.8)
        sizes[randomized] = rule.predict_sets(proba[1000:]).sum(axis=1).mean()
    assert sizes[True] < sizes[False]


def test_class_conditional_covers_every_class():
    """Check that Mondrian calibration covers a hard class that marginal calibration misses."""
    rng = np.random.RandomState(0)
    n, level = 6000, 0.9
    y = rng.randint(3, size=n)
    # Class 2 is badly underestimated by the "model".
    proba = np.where(np.eye(3, dtype=bool)[y], 0.8, 0.1)
    proba[y == 2] = rng.dirichlet([5, 5, 1], size=np.sum(y == 2))
    proba[y != 2] = 0.7 * proba[y != 2] + 0.3 * rng.dirichlet([1, 1, 1], size=np.sum(y != 2))
    cal, test = slice(0, 3000), slice(3000, None)
    covered = {}
    for cc in (False, True):
        rule = SplitConformal(LAC(), class_conditional=cc).calibrate(proba[cal], y[cal], level)
        sets = rule.predict_sets(proba[test])
        hit = sets[np.arange(len(y[test])), y[test]]
        covered[cc] = [hit[y[test] == k].mean() for k in range(3)]
        assert rule.quantiles_.shape == (3,)
    assert min(covered[False]) < level - 0.1
    assert min(covered[True]) >= level - 0.03


def test_estimator_with_a_strategy_set_rule():
    """Check fit/calibrate/predict_set of an estimator given set_rule=SplitConformal(...)."""
    X, y = make_classification(
        n_samples=1200, n_features=8, n_informative=6, n_classes=4, random_state=0
    )
    X_fit, X_test, y_fit, y_test = train_test_split(X, y, test_size=0.5, random_state=0)
    clf = CrossEntropyClassifier(
        set_rule=SplitConformal(APS(randomized=True), random_state=0),
        confidence_level=0.85, validation_fraction=0.3, **FAST,
    ).fit(X_fit, y_fit)
    assert isinstance(clf.set_threshold_, float)
    sets = clf.predict_set(X_test)
    np.testing.assert_array_equal(sets, clf.predict_set(X_test))  # deterministic
    assert 0.8 <= sets[np.arange(len(y_test)), y_test].mean() <= 0.92
    # The strategy given is not modified by fit (sklearn's contract).
    assert not hasattr(clf.set_rule, "quantiles_")
    clf.set_params(set_rule=SplitConformal(LAC(), class_conditional=True))
    clf.calibrate(X_test, y_test)
    assert clf.set_threshold_.shape == (4,)
    with pytest.raises(ValueError, match="true labels"):
        clf.calibrate(X_test)


def test_emd_rejects_a_plain_set_strategy():
    """Check that EMDOrdinalRegressor (interval sets) says a strategy object does not apply."""
    X = np.random.RandomState(0).randn(40, 2)
    y = np.digitize(X[:, 0], [-0.5, 0.5])
    with pytest.raises(ValueError, match="intervals of the scale"):
        EMDOrdinalRegressor(set_rule=SplitConformal(APS()), max_epochs=1).fit(X, y)


@pytest.mark.parametrize("score", [APS(randomized=True), RAPS(lambda_reg=0.05, k_reg=2, randomized=True)])
def test_unrandomized_sets_contain_the_randomized_ones(score):
    """Check randomize_sets=False: deterministic, never empty, a superset of the randomized sets."""
    rng = np.random.RandomState(3)
    proba = rng.dirichlet(np.full(6, 0.4), size=400)
    y = np.array([rng.choice(6, p=p) for p in proba])
    rand = SplitConformal(score, random_state=1).calibrate(proba[:200], y[:200], 0.8)
    det = SplitConformal(score, random_state=1, randomize_sets=False)
    det.calibrate(proba[:200], y[:200], 0.8)
    assert det.quantiles_[0] == rand.quantiles_[0]
    r, d = rand.predict_sets(proba[200:]), det.predict_sets(proba[200:])
    assert np.all(r <= d) and (d.sum() > r.sum())
    assert d.any(axis=1).all()
    np.testing.assert_array_equal(d, det.predict_sets(proba[200:]))
    assert "randomize_sets=False" in repr(det)
