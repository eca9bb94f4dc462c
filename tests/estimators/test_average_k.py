"""Tests of AverageKClassifier: calibration, set rules, sklearn integration, errors."""

import pickle

import numpy as np
import pytest
import torch
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import make_pipeline as sk_make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import check_random_state

from skstruct import AverageKClassifier, CrossEntropyClassifier, predict_set
from skstruct.metrics import (
    average_k_accuracy,
    empty_rate,
    get_scorer,
    mean_set_size,
    set_coverage,
)
from skstruct.pipeline import make_pipeline
from skstruct.utils._sklearn_compat import InvalidParameterError

FAST = dict(hidden_layer_sizes=(32,), max_epochs=8, batch_size=64, lr=1e-2, random_state=0)


def _ambiguous(n_samples, n_classes=8, seed=0):
    """Overlapping classes on a circle (neighbours are confused) plus noise features."""
    rng = np.random.RandomState(seed)
    y = rng.randint(n_classes, size=n_samples)
    angle = 2 * np.pi * y / n_classes
    X = np.c_[2.0 * np.cos(angle), 2.0 * np.sin(angle)] + rng.randn(n_samples, 2) * 0.9
    X = np.c_[X, rng.randn(n_samples, 2)]
    return X.astype(np.float32), y


@pytest.fixture(scope="module")
def data():
    X, y = _ambiguous(2400, seed=0)
    X_fit, X_rest, y_fit, y_rest = train_test_split(X, y, train_size=1200, random_state=0)
    X_cal, X_test, y_cal, y_test = train_test_split(X_rest, y_rest, train_size=600, random_state=0)
    return X_fit, y_fit, X_cal, y_cal, X_test, y_test


@pytest.fixture(scope="module")
def two_head(data):
    X_fit, y_fit = data[:2]
    return AverageKClassifier(k=2, alpha=1.0, **FAST).fit(X_fit, y_fit)


@pytest.fixture(scope="module")
def softmax_head(data):
    X_fit, y_fit = data[:2]
    return AverageKClassifier(k=2, head="softmax", **FAST).fit(X_fit, y_fit)


@pytest.mark.parametrize("head", ["multilabel", "softmax"])
@pytest.mark.parametrize("k", [1, 1.5, 2, 3.25])
def test_mean_set_size_on_calibration_data_is_k(head, k, two_head, softmax_head, data):
    """Check that floor(k * n_cal) scores reach the threshold on the calibration data."""
    clf = pickle.loads(pickle.dumps(two_head if head == "multilabel" else softmax_head))
    X_cal = data[2]
    clf.set_params(k=k).calibrate(X_cal)
    sets = clf.predict_set(X_cal)
    # Continuous scores have no ties: the count is exact.
    assert sets.sum() == int(np.floor(k * len(X_cal)))
    assert abs(mean_set_size(None, sets) - k) < 1.0 / len(X_cal)


def test_threshold_is_midpoint_of_kept_and_dropped_scores(two_head, data):
    """Check that lambda is the midpoint of the (k n)-th and next largest score."""
    X_cal = data[2]
    scores, _ = two_head._set_scores(X_cal)
    flat = np.sort(scores.ravel())[::-1]
    m = 2 * len(X_cal)
    clf = pickle.loads(pickle.dumps(two_head)).calibrate(X_cal)
    assert clf.set_threshold_ == pytest.approx((flat[m - 1] + flat[m]) / 2)


def test_fit_calibrates_on_the_validation_split(data):
    """Check that fit calibrates on its held-out split (mean size k there)."""
    X_fit, y_fit = data[:2]
    clf = AverageKClassifier(k=3, validation_fraction=0.25, **FAST).fit(X_fit, y_fit)
    assert len(clf.validation_loss_curve_) == clf.n_iter_
    # Rebuild the split fit used (same seed derivation as the base class).
    seed = int(check_random_state(FAST["random_state"]).randint(np.iinfo(np.int32).max))
    train_idx, stop_idx, cal_idx = clf._holdout_indices(y_fit, seed)
    assert stop_idx is None and len(cal_idx) == 300 and len(train_idx) == 900
    assert clf.predict_set(X_fit[cal_idx]).sum() == 3 * 300


def test_early_stopping_and_calibration_splits_are_disjoint(data):
    """Check that with early stopping the calibration rows differ from the stopping rows."""
    X_fit, y_fit = data[:2]
    clf = AverageKClassifier(
        k=3, validation_fraction=0.2, early_stopping=True, n_iter_no_change=2, **FAST
    ).fit(X_fit, y_fit)
    seed = int(check_random_state(FAST["random_state"]).randint(np.iinfo(np.int32).max))
    train_idx, stop_idx, cal_idx = clf._holdout_indices(y_fit, seed)
    assert len(stop_idx) == len(cal_idx) == 240 and len(train_idx) == 720
    assert not set(stop_idx) & set(cal_idx)
    assert not set(train_idx) & (set(stop_idx) | set(cal_idx))
    # Mean size k on the calibration rows, not on the stopping rows.
    assert clf.predict_set(X_fit[cal_idx]).sum() == 3 * 240
    assert clf.predict_set(X_fit[stop_idx]).sum() != 3 * 240


@pytest.mark.parametrize("head", ["multilabel", "softmax"])
def test_sets_nested_as_k_grows(head, two_head, softmax_head, data):
    """Check that recalibrating one network with a larger k only adds classes."""
    clf = pickle.loads(pickle.dumps(two_head if head == "multilabel" else softmax_head))
    X_cal, X_test = data[2], data[4]
    previous, previous_threshold = None, np.inf
    for k in [1, 1.5, 2, 3, 5, 7.5]:
        clf.set_params(k=k).calibrate(X_cal)
        sets = clf.predict_set(X_test)
        assert clf.set_threshold_ <= previous_threshold
        if previous is not None:
            assert np.all(sets >= previous)
        previous, previous_threshold = sets, clf.set_threshold_


def test_softmax_head_sets_nested_across_refits(data):
    """Check that head='softmax' trains independently of k, so refits stay nested."""
    X_fit, y_fit, X_cal, _, X_test, _ = data
    sizes, previous = [], None
    for k in [1, 2, 4]:
        clf = AverageKClassifier(k=k, head="softmax", **FAST).fit(X_fit, y_fit)
        sets = clf.calibrate(X_cal).predict_set(X_test)
        if previous is not None:
            assert np.all(sets >= previous)
        previous = sets
        sizes.append(sets.sum(axis=1).mean())
    assert sizes == sorted(sizes)


def test_softmax_head_non_empty_sets_hold_the_prediction(softmax_head, data):
    """Check that with head='softmax' every non-empty set contains predict's label."""
    X_test = data[4]
    clf = pickle.loads(pickle.dumps(softmax_head)).set_params(k=1.2).calibrate(data[2])
    sets = clf.predict_set(X_test)
    pred_idx = np.searchsorted(clf.classes_, clf.predict(X_test))
    non_empty = sets.any(axis=1)
    assert non_empty.any()
    assert np.all(sets[non_empty, pred_idx[non_empty]])
    # No forced inclusion: the empty sets stay empty.
    assert empty_rate(None, sets) == pytest.approx(1 - non_empty.mean())


def test_multilabel_sets_threshold_the_sigmoid_of_the_second_head(two_head, data):
    """Check that sets are {j : sigmoid(g_j) >= sigmoid(lambda)} and predict uses the softmax head."""
    X_test = data[4]
    with torch.no_grad():
        soft, multi = two_head.net_.module_(torch.as_tensor(X_test))
    proba = torch.softmax(soft.double(), dim=1).numpy()
    np.testing.assert_allclose(two_head.predict_proba(X_test), proba, rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(
        two_head.predict(X_test), two_head.classes_[two_head.predict_proba(X_test).argmax(1)]
    )
    sigmoid = torch.sigmoid(multi.double()).numpy()
    expected = sigmoid >= 1.0 / (1.0 + np.exp(-two_head.set_threshold_))
    np.testing.assert_array_equal(two_head.predict_set(X_test), expected)


def test_two_heads_and_paper_rule_differ_from_prediction_inclusion(two_head, data):
    """Check what the rule guarantees with two heads: a threshold, not the prediction."""
    X_test, y_test = data[4], data[5]
    sets = two_head.predict_set(X_test)
    pred_idx = np.searchsorted(two_head.classes_, two_head.predict(X_test))
    in_set = sets[np.arange(len(X_test)), pred_idx]
    # The sets are useful: they cover far more than the top-1 accuracy...
    assert average_k_accuracy(y_test, sets, classes=two_head.classes_) > two_head.score(
        X_test, y_test
    )
    # ...and contain the prediction for most (not necessarily all) samples.
    assert in_set.mean() > 0.9


def test_head_softmax_is_the_cross_entropy_network(data):
    """Check that head='softmax' trains exactly CrossEntropyClassifier's network."""
    X_fit, y_fit, X_cal = data[:3]
    ak = AverageKClassifier(k=2, head="softmax", **FAST).fit(X_fit, y_fit)
    # set_rule='conformal' makes CrossEntropyClassifier hold out the same split.
    ce = CrossEntropyClassifier(set_rule="conformal", **FAST).fit(X_fit, y_fit)
    np.testing.assert_array_equal(ak.predict_proba(X_cal), ce.predict_proba(X_cal))
    assert ak.loss_curve_ == ce.loss_curve_


@pytest.mark.parametrize("head", ["multilabel", "softmax"])
def test_conformal_coverage_on_a_large_test_set(head):
    """Check that set_rule='conformal' covers confidence_level +- 2 points on 20k samples."""
    X, y = _ambiguous(25000, seed=1)
    X_fit, y_fit = X[:2000], y[:2000]
    X_cal, y_cal = X[2000:5000], y[2000:5000]
    X_test, y_test = X[5000:], y[5000:]
    clf = AverageKClassifier(k=2, head=head, set_rule="conformal", confidence_level=0.8, **FAST)
    clf.fit(X_fit, y_fit).calibrate(X_cal, y_cal)
    sets = clf.predict_set(X_test)
    coverage = set_coverage(y_test, sets, classes=clf.classes_)
    assert abs(coverage - 0.8) <= 0.02
    assert 1.0 < mean_set_size(None, sets) < 8.0


def test_conformal_needs_labels(two_head, data):
    """Check that conformal calibration without labels says how to fix it."""
    clf = pickle.loads(pickle.dumps(two_head)).set_params(set_rule="conformal")
    with pytest.raises(ValueError, match=r"needs the true labels .* calibrate\(X, y\)"):
        clf.calibrate(data[2])


def test_grid_search_over_k_and_alpha_with_average_k_scorer(data):
    """Check GridSearchCV over k and alpha scored by average-K accuracy."""
    X_fit, y_fit = data[:2]
    grid = GridSearchCV(
        AverageKClassifier(**{**FAST, "max_epochs": 3}),
        {"k": [1.5, 3], "alpha": [0.3, 3.0]},
        scoring={"avg_k": get_scorer("average_k_accuracy"), "size": get_scorer("neg_mean_set_size")},
        refit="avg_k",
        cv=2,
    )
    grid.fit(X_fit[:600], y_fit[:600])
    results = grid.cv_results_
    assert np.all(np.isfinite(results["mean_test_avg_k"]))
    # Larger k gives larger sets on held-out folds, hence larger coverage.
    big = np.asarray(results["param_k"], dtype=float) == 3
    assert results["mean_test_size"][big].max() < results["mean_test_size"][~big].min()
    assert grid.best_params_["k"] == 3
    assert grid.best_estimator_.predict_set(X_fit[:5]).shape == (5, 8)


def test_pipeline_and_predict_set_helper(data):
    """Check that predict_set works through a Pipeline (helper and skstruct's Pipeline)."""
    X_fit, y_fit, X_cal = data[:3]
    labels = np.array([f"c{i}" for i in range(8)])
    sk_pipe = sk_make_pipeline(StandardScaler(), AverageKClassifier(k=2, **FAST))
    sk_pipe.fit(X_fit, labels[y_fit])
    expected = sk_pipe[-1].predict_set(sk_pipe[0].transform(X_cal))
    np.testing.assert_array_equal(predict_set(sk_pipe, X_cal), expected)
    pipe = make_pipeline(StandardScaler(), AverageKClassifier(k=2, **FAST))
    pipe.fit(X_fit, labels[y_fit])
    np.testing.assert_array_equal(pipe.predict_set(X_cal), expected)
    score = get_scorer("average_k_accuracy")(sk_pipe, X_cal, labels[data[3]])
    assert score == pytest.approx(set_coverage(labels[data[3]], expected, classes=labels))


def test_string_labels_and_pickle(data):
    """Check string labels and that a pickled model gives the same sets."""
    X_fit, y_fit, X_cal = data[:3]
    labels = np.array(list("abcdefgh"))
    clf = AverageKClassifier(k=2, **FAST).fit(X_fit, labels[y_fit])
    assert set(clf.predict(X_cal)) <= set(labels)
    clone = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(clone.predict_set(X_cal), clf.predict_set(X_cal))


@pytest.mark.parametrize(
    "params, error, match",
    [
        (dict(k=0.5), InvalidParameterError, "'k' parameter of AverageKClassifier"),
        (dict(k=8), ValueError, r"k=8 must be smaller than the number of classes \(8\)"),
        (dict(k=11.5), ValueError, r"Choose 1 <= k < 8"),
        (dict(alpha=0.0), InvalidParameterError, "'alpha' parameter"),
        (dict(head="sigmoid"), InvalidParameterError, "'head' parameter"),
        (dict(confidence_level=1.0), InvalidParameterError, "'confidence_level' parameter"),
        (dict(confidence_level=0.0), InvalidParameterError, "'confidence_level' parameter"),
        (dict(set_size=2), TypeError, "set_size"),
    ],
)
def test_bad_parameters(params, error, match, data):
    """Check that bad k, alpha, head or confidence_level give clear errors in fit."""
    X_fit, y_fit = data[:2]
    with pytest.raises(error, match=match):
        AverageKClassifier(**{**FAST, "max_epochs": 1, **params}).fit(X_fit[:100], y_fit[:100])


def test_k_checked_again_at_calibration(two_head, data):
    """Check that calibrate rejects a k set too large after fit."""
    clf = pickle.loads(pickle.dumps(two_head)).set_params(k=9)
    with pytest.raises(ValueError, match="must be smaller than the number of classes"):
        clf.calibrate(data[2])


@pytest.mark.parametrize("set_rule", ["average_k", "conformal"])
def test_calibration_labels_unknown_to_the_model(set_rule, two_head, data):
    """Check that calibration labels the model does not know raise a clear error."""
    clf = pickle.loads(pickle.dumps(two_head)).set_params(set_rule=set_rule)
    X_cal, y_cal = data[2], data[3].copy()
    y_cal[:3] = 99
    with pytest.raises(ValueError, match=r"unknown to the fitted model: \[99\]"):
        clf.calibrate(X_cal, y_cal)
    with pytest.raises(ValueError, match=r"unknown to the fitted model: \['x'\]"):
        clf.calibrate(X_cal[:2], np.array(["x", "x"]))
