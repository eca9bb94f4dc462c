"""calibration_cv: set rules calibrated on out-of-fold scores of every training row."""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, StratifiedKFold

from skstruct import (
    AverageKClassifier,
    ConveyanceClassifier,
    CrossEntropyClassifier,
    EMDOrdinalRegressor,
    MILConveyance,
)
from skstruct.sets import APS, SplitConformal
from skstruct.sets._calibration import calibrate_conformal

FAST = dict(hidden_layer_sizes=(16,), max_epochs=4, lr=1e-2, random_state=0, n_threads=1)


def _data(n_classes=3, n=180, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.randn(n, 5)
    y = np.digitize(X[:, 0] + 0.5 * rng.randn(n), np.linspace(-1, 1, n_classes - 1))
    return X, y


def test_out_of_fold_scores_equal_hand_fitted_fold_models():
    """Check the threshold is the conformal quantile of hand-built out-of-fold probabilities."""
    X, y = _data()
    folds = StratifiedKFold(3, shuffle=True, random_state=0)
    clf = CrossEntropyClassifier(set_rule="conformal", calibration_cv=folds, **FAST).fit(X, y)
    scores, labels = [], []
    for train, test in folds.split(X, y):
        # A fold model trains on all its rows: set_size=1 needs no calibration rows.
        member = CrossEntropyClassifier(set_size=1.0, **FAST).fit(X[train], y[train])
        scores.append(member.predict_proba(X[test]))
        labels.append(y[test])
    expected = calibrate_conformal(np.concatenate(scores), np.concatenate(labels), 0.9)
    assert clf.set_threshold_ == pytest.approx(expected, abs=1e-6)
    # The returned model trained on every row (no calibration split held out).
    full = CrossEntropyClassifier(set_size=1.0, **FAST).fit(X, y)
    np.testing.assert_allclose(clf.predict_proba(X), full.predict_proba(X), atol=1e-6)


def test_held_out_split_is_unchanged_without_calibration_cv():
    """Check calibration_cv=None keeps the held-out split (and differs from cross-fitting)."""
    X, y = _data()
    split = CrossEntropyClassifier(set_rule="conformal", **FAST).fit(X, y)
    cross = CrossEntropyClassifier(set_rule="conformal", calibration_cv=3, **FAST).fit(X, y)
    assert split.set_threshold_ != cross.set_threshold_
    assert cross.get_params()["calibration_cv"] == 3


@pytest.mark.parametrize("early_stopping", [False, True])
def test_cross_fitted_conformal_covers_on_new_rows(early_stopping):
    """Check cross-fitted LAC and APS sets reach about the level on new rows."""
    X, y = _data(n=900, seed=1)
    X_test, y_test = _data(n=2000, seed=2)
    for rule in ("conformal", SplitConformal(APS(), randomize_sets=False)):
        clf = CrossEntropyClassifier(
            set_rule=rule, calibration_cv=4, early_stopping=early_stopping,
            **dict(FAST, max_epochs=15),
        ).fit(X, y)
        sets = clf.predict_set(X_test)
        coverage = sets[np.arange(len(y_test)), y_test].mean()
        assert 0.86 <= coverage <= 0.97, (rule, coverage)


def test_average_k_size_from_out_of_fold_scores():
    """Check Average-K sets calibrated out of fold keep about set_size on new rows."""
    X, y = _data(n_classes=5, n=900, seed=3)
    X_test, _ = _data(n_classes=5, n=2000, seed=4)
    clf = ConveyanceClassifier(set_size=2.0, calibration_cv=3, **dict(FAST, max_epochs=15))
    size = clf.fit(X, y).predict_set(X_test).sum(axis=1).mean()
    assert 1.8 <= size <= 2.2
    head = AverageKClassifier(k=2, calibration_cv=3, **dict(FAST, max_epochs=15)).fit(X, y)
    assert head.predict_set(X_test).shape == (2000, 5)


def test_sample_weight_reaches_fold_models_and_calibration():
    """Check integer weights count as repeated rows in the out-of-fold calibration."""
    X, y = _data()
    weight = np.ones(len(y))
    weight[::7] = 0.0
    clf = CrossEntropyClassifier(set_rule="conformal", calibration_cv=3, **FAST)
    clf.fit(X, y, sample_weight=weight)
    dropped = CrossEntropyClassifier(set_rule="conformal", calibration_cv=3, **FAST)
    dropped.fit(X[weight > 0], y[weight > 0])
    assert clf.set_threshold_ == pytest.approx(dropped.set_threshold_, abs=1e-6)


def test_calibration_cv_in_grid_search_and_other_estimators():
    """Check calibration_cv is a parameter like any other (clone, GridSearchCV, EMD, MIL)."""
    X, y = _data()
    grid = GridSearchCV(
        CrossEntropyClassifier(set_rule="conformal", **FAST),
        {"calibration_cv": [None, 2]}, cv=2,
    ).fit(X, y)
    assert grid.best_params_["calibration_cv"] in (None, 2)
    assert clone(CrossEntropyClassifier(calibration_cv=4)).calibration_cv == 4
    emd = EMDOrdinalRegressor(set_rule="conformal", calibration_cv=2, **FAST).fit(X, y)
    assert emd.predict_set(X[:5]).shape == (5, 3)
    rng = np.random.RandomState(0)
    bags = [rng.randn(rng.randint(1, 4), 3) for _ in range(24)]
    labels = np.array([0, 1] * 12)
    mil = MILConveyance(
        max_epochs=2,
        set_rule="conformal", calibration_cv=2, random_state=0, n_threads=1,
    ).fit(bags, labels)
    assert mil.predict_set(bags[:3]).shape == (3, 2)


def test_partial_fit_and_rules_without_rows_ignore_calibration_cv():
    """Check partial_fit and set_size=1 need no fold models."""
    X, y = _data()
    clf = CrossEntropyClassifier(set_rule="conformal", calibration_cv=3, **FAST)
    clf.partial_fit(X, y, classes=[0, 1, 2])
    assert clf.n_iter_ == 1
    plain = CrossEntropyClassifier(calibration_cv=3, **FAST).fit(X, y)
    assert np.isinf(plain.set_threshold_)


@pytest.mark.parametrize("bad, match", [
    (1, "calibration_cv"),
    (0, "calibration_cv"),
    ("folds", "calibration_cv"),
])
def test_bad_calibration_cv(bad, match):
    """Check a wrong calibration_cv names the argument."""
    X, y = _data()
    with pytest.raises(ValueError, match=match):
        CrossEntropyClassifier(set_rule="conformal", calibration_cv=bad, **FAST).fit(X, y)


def test_fold_without_a_class_raises():
    """Check a splitter whose training rows miss a class gives a clear error."""
    X, y = _data()
    missing = np.flatnonzero(y != 2)
    rest = np.flatnonzero(y == 2)
    folds = [(missing, rest), (rest, missing)]
    with pytest.raises(ValueError, match="calibration_cv.*fold 0 hold only the classes"):
        CrossEntropyClassifier(set_rule="conformal", calibration_cv=folds, **FAST).fit(X, y)
