"""EMDOrdinalRegressor: decision rules, interval sets, model selection, bad input."""

import pickle
import warnings

import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score, cross_validate
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skstruct import EMDOrdinalRegressor, Hierarchy, Ordinal, predict_set
from skstruct.exceptions import SkstructWarning, StructureError
from skstruct.metrics import mean_absolute_rank_error, mean_absolute_rank_error_scorer

# A scale whose alphabetical order differs from its own order.
ORDER = ["poor", "fair", "good", "very good", "excellent"]
SCALE = Ordinal(ORDER)
FAST = dict(hidden_layer_sizes=(16,), max_epochs=30, batch_size=32, lr=1e-2, random_state=0)
# For tests that fit many times and only check the plumbing.
QUICK = dict(FAST, max_epochs=5)


def _ordinal_data(seed, n=240, labels=ORDER):
    """Features with a latent score cut into ordered levels."""
    rng = np.random.RandomState(seed)
    X = rng.randn(n, 3)
    latent = X @ np.array([1.5, -1.0, 0.5]) + 0.3 * rng.randn(n)
    ranks = np.digitize(latent, np.quantile(latent, [0.15, 0.4, 0.65, 0.85]))
    return X, np.asarray(labels)[ranks], ranks


@pytest.fixture(scope="module")
def data():
    return _ordinal_data(0)


@pytest.fixture(scope="module")
def fitted(data):
    """One fit shared by many cheap assertions."""
    X, y, _ = data
    return EMDOrdinalRegressor(class_structure=SCALE, **FAST).fit(X, y)


def _in_class_order(est, proba_by_rank):
    """Turn rank-ordered probabilities into columns in classes_ order."""
    return np.asarray(proba_by_rank)[:, np.asarray(est.structure_.ranks)]


def _decide(fitted, proba_by_rank, rule, power=1.0):
    """Labels predicted by ``rule`` for hand-made distributions (in rank order)."""
    est = pickle.loads(pickle.dumps(fitted))
    est.set_params(decision_rule=rule, decision_power=power)
    proba = _in_class_order(est, proba_by_rank)
    est.predict_proba = lambda X: proba
    return list(est.predict(np.zeros((len(proba), 3))))


def test_fit_learns_the_scale(fitted, data):
    """Check that fit uses the given scale and learns a low rank error."""
    X, y, _ = data
    assert list(fitted.classes_) == sorted(ORDER)
    assert fitted.structure_ == SCALE
    assert fitted.loss_curve_[-1] < fitted.loss_curve_[0]
    mae = mean_absolute_rank_error(y, fitted.predict(X), structure=SCALE)
    assert mae < 0.5
    proba = fitted.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)


def test_decision_rules_on_hand_made_distributions(fitted):
    """Check median, expected, argmax and min_expected_cost where they differ."""
    P = [
        [0.42, 0.10, 0.00, 0.00, 0.48],  # argmax 4, median 1, mean 2.02
        [0.00, 0.30, 0.25, 0.00, 0.45],  # argmax 4, median 2, mean 2.6
        [0.50, 0.00, 0.00, 0.50, 0.00],  # median tie -> lower (0); mean 1.5 -> up (2)
        [0.10, 0.20, 0.40, 0.20, 0.10],  # symmetric: all rules give 2
    ]
    order = np.array(ORDER)
    assert _decide(fitted, P[:2], "argmax") == list(order[[4, 4]])
    assert _decide(fitted, P, "median") == list(order[[1, 2, 0, 2]])
    assert _decide(fitted, P, "expected") == list(order[[2, 3, 2, 2]])
    # Power 1 expected cost is minimised by a median; power 2 by the mean.
    assert _decide(fitted, P[:2], "min_expected_cost") == list(order[[1, 2]])
    assert _decide(fitted, P[:2], "min_expected_cost", power=2.0) == list(order[[2, 3]])
    assert _decide(fitted, P[3:], "argmax") == [order[2]]


def test_median_minimises_expected_absolute_rank_error(fitted):
    """Check that the median rule attains the smallest expected |rank error|."""
    rng = np.random.RandomState(4)
    P = rng.dirichlet(0.3 * np.ones(5), size=200)
    chosen = SCALE.encode(_decide(fitted, P, "median"))
    chosen_rank = np.asarray(SCALE.ranks)[chosen]
    cost = np.abs(np.arange(5)[:, None] - np.arange(5)[None, :])  # [y, k]
    expected_cost = P @ cost.T
    np.testing.assert_allclose(
        expected_cost[np.arange(200), chosen_rank], expected_cost.min(axis=1), atol=1e-9
    )


@pytest.mark.parametrize("rule", ["median", "argmax", "expected"])
@pytest.mark.parametrize("set_size", [1.0, 1.7, 2.5, 5.0])
def test_predict_set_intervals_contiguous_and_contain_prediction(fitted, data, rule, set_size):
    """Check that sets are intervals of the scale holding the prediction, mean size = set_size."""
    X, y, _ = data
    est = pickle.loads(pickle.dumps(fitted)).set_params(decision_rule=rule, set_size=set_size)
    est.calibrate(X)
    sets = est.predict_set(X)
    assert sets.shape == (len(X), 5) and sets.dtype == bool
    by_rank = sets[:, np.asarray(SCALE.rank_order)]
    for row in by_rank:
        idx = np.flatnonzero(row)
        assert idx.size >= 1 and idx[-1] - idx[0] + 1 == idx.size  # contiguous
    pred = SCALE.encode(est.predict(X))
    assert np.all(sets[np.arange(len(X)), pred])
    # Calibrated on these data: the mean size matches the target.
    assert sets.sum(axis=1).mean() == pytest.approx(set_size, abs=1.0 / len(X) + 1e-9)
    bounds = est.predict_interval(X)
    lo, hi = SCALE.encode(bounds[:, 0]), SCALE.encode(bounds[:, 1])
    ranks = np.asarray(SCALE.ranks)
    np.testing.assert_array_equal(by_rank.sum(axis=1), ranks[hi] - ranks[lo] + 1)


def test_interval_sizes_grow_with_set_size(fitted, data):
    """Check that every interval grows (in size) with set_size."""
    X, _, _ = data
    est = pickle.loads(pickle.dumps(fitted))
    sizes = []
    for k in (1.0, 1.5, 2.0, 3.0):
        sizes.append(est.set_params(set_size=k).calibrate(X).predict_set(X).sum(axis=1))
    assert np.all(np.diff(np.array(sizes), axis=0) >= 0)


def test_conformal_intervals_cover(data):
    """Check that conformal intervals are contiguous and reach the coverage on new data."""
    X, y, _ = data
    X_new, y_new, _ = _ordinal_data(1, n=400)
    est = EMDOrdinalRegressor(
        class_structure=SCALE, set_rule="conformal", confidence_level=0.9,
        validation_fraction=0.3, **FAST,
    ).fit(X, y)
    sets = est.predict_set(X_new)
    covered = sets[np.arange(len(X_new)), SCALE.encode(y_new)].mean()
    assert covered >= 0.8
    by_rank = sets[:, np.asarray(SCALE.rank_order)]
    first = np.argmax(by_rank, axis=1)
    last = 4 - np.argmax(by_rank[:, ::-1], axis=1)
    np.testing.assert_array_equal(by_rank.sum(axis=1), last - first + 1)


def test_predict_set_through_pipeline(data):
    """Check that skstruct.predict_set works on a Pipeline ending in the regressor."""
    X, y, _ = data
    pipe = make_pipeline(
        StandardScaler(), EMDOrdinalRegressor(class_structure=ORDER, set_size=2, **QUICK)
    ).fit(X, y)
    assert predict_set(pipe, X[:5]).shape == (5, 5)


def test_gridsearch_with_mae_scorer(data):
    """Check GridSearchCV with the shipped MAE scorer, through a Pipeline."""
    X, y, _ = data
    pipe = make_pipeline(StandardScaler(), EMDOrdinalRegressor(class_structure=SCALE, **QUICK))
    search = GridSearchCV(
        pipe,
        {"emdordinalregressor__decision_rule": ["argmax", "median"]},
        scoring=mean_absolute_rank_error_scorer,
        cv=2,
    ).fit(X, y)
    assert -1.5 < search.best_score_ <= 0.0
    assert search.best_params_["emdordinalregressor__decision_rule"] in {"argmax", "median"}


def test_cross_val_score_with_fold_missing_a_level():
    """Check that a training fold lacking a level still gets all levels in predict_proba."""
    X, y, ranks = _ordinal_data(2, n=150)
    # Put every 'excellent' sample in the first fold: that fold's training set lacks it.
    order = np.argsort(-ranks, kind="stable")
    X, y = X[order], y[order]
    cv = KFold(n_splits=3, shuffle=False)
    est = EMDOrdinalRegressor(class_structure=SCALE, **QUICK)
    result = cross_validate(
        est, X, y, cv=cv, scoring=mean_absolute_rank_error_scorer, return_estimator=True
    )
    train_first = y[next(cv.split(X))[0]]
    assert "excellent" not in set(train_first)
    for fold in result["estimator"]:
        assert list(fold.classes_) == sorted(ORDER)
        assert fold.predict_proba(X[:3]).shape == (3, 5)
    assert np.all(np.isfinite(result["test_score"]))
    scores = cross_val_score(est.set_params(max_epochs=1), X, y, cv=cv)
    assert scores.shape == (3,)


def test_none_and_ordinal_take_sorted_labels_numerically():
    """Check that class_structure=None/'ordinal' sorts numeric labels numerically."""
    X, _, ranks = _ordinal_data(3, n=90)
    y = np.array([9, 10, 100, 1000, 20000])[ranks]
    for cs in (None, "ordinal"):
        est = EMDOrdinalRegressor(class_structure=cs, **dict(FAST, max_epochs=2)).fit(X, y)
        assert est.structure_.order == (9, 10, 100, 1000, 20000)
        assert list(est.classes_) == [9, 10, 100, 1000, 20000]


def test_bad_input_errors():
    """Check clear errors: duplicate order labels, unknown y, non-orderable y, wrong kind."""
    X, y, _ = _ordinal_data(5, n=40)
    quick = dict(FAST, max_epochs=1)
    with pytest.raises(StructureError, match="duplicate labels: 'good'"):
        EMDOrdinalRegressor(class_structure=ORDER + ["good"], **quick).fit(X, y)
    with pytest.raises(StructureError, match="excellent"):
        EMDOrdinalRegressor(class_structure=ORDER[:-1], **quick).fit(X, y)
    mixed = np.empty(len(y), dtype=object)
    mixed[:] = [("a" if i % 2 else 1) for i in range(len(y))]
    with pytest.raises(ValueError, match="cannot be sorted together"):
        EMDOrdinalRegressor(class_structure=None, **quick).fit(X, mixed)
    with pytest.raises(StructureError, match="ordinal"):
        EMDOrdinalRegressor(
            class_structure=Hierarchy({"poor": "low", "fair": "low", "good": "high",
                                       "very good": "high", "excellent": "high"}),
            **quick,
        ).fit(X, y)
    with pytest.raises(ValueError, match="not understood"):
        EMDOrdinalRegressor(class_structure="ranked", **quick).fit(X, y)
    with pytest.raises(ValueError, match="single class"):
        EMDOrdinalRegressor(**quick).fit(X, np.zeros(len(X), dtype=int))
    with pytest.raises(ValueError, match="set_size=6"):
        EMDOrdinalRegressor(class_structure=SCALE, set_size=6, **quick).fit(X, y)


def test_ce_weight_changes_the_loss(data):
    """Check that ce_weight adds cross-entropy (a larger first-epoch loss)."""
    X, y, _ = data
    quick = dict(FAST, max_epochs=1)
    plain = EMDOrdinalRegressor(class_structure=SCALE, **quick).fit(X, y)
    mixed = EMDOrdinalRegressor(class_structure=SCALE, ce_weight=1.0, **quick).fit(X, y)
    assert mixed.loss_curve_[0] > plain.loss_curve_[0]


def test_string_labels_without_a_scale_warn_with_the_order_used():
    """Check that sorted string labels as the scale warn, naming the order and the fix."""
    X, y, _ = _ordinal_data(0, n=60, labels=["poor", "fair", "good", "good", "good"])
    with pytest.warns(SkstructWarning, match=r"'fair' < 'good' < 'poor'.*Ordinal\(\["):
        reg = EMDOrdinalRegressor(**QUICK).fit(X, y)
    assert reg.structure_.order == ("fair", "good", "poor")


@pytest.mark.parametrize("class_structure", [SCALE, ORDER])
def test_explicit_scale_or_numbers_do_not_warn(class_structure):
    """Check that an explicit scale, or numeric labels, fit without a SkstructWarning."""
    X, y, ranks = _ordinal_data(0, n=60)
    with warnings.catch_warnings():
        warnings.simplefilter("error", SkstructWarning)
        EMDOrdinalRegressor(class_structure, **QUICK).fit(X, y)
        EMDOrdinalRegressor(**QUICK).fit(X, ranks)


def test_check_structure_ordinal_string_warns_for_strings():
    """Check that check_structure('ordinal', y) warns for string labels too."""
    from skstruct.structures import check_structure

    with pytest.warns(SkstructWarning, match="alphabetical"):
        check_structure("ordinal", np.array(["low", "high", "mid"]))
