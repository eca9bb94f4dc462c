"""skstruct's conformal sets against MAPIE and crepes on the same fitted model and rows."""

import copy

import numpy as np
import pytest
from sklearn.datasets import make_classification

from skstruct import CrossEntropyClassifier
from skstruct.sets import APS, LAC, SplitConformal

mapie_classification = pytest.importorskip("mapie.classification", reason="needs mapie (test extra)")
crepes = pytest.importorskip("crepes", reason="needs crepes (test extra)")


@pytest.fixture(scope="module")
def model_and_rows():
    X, y = make_classification(
        n_samples=900, n_features=8, n_informative=6, n_classes=5, random_state=0
    )
    clf = CrossEntropyClassifier(hidden_layer_sizes=(16,), max_epochs=10, random_state=0)
    clf.fit(X[:300], y[:300])
    return clf, X[300:600], y[300:600], X[600:]


def _ours(clf, X_cal, y_cal, X_test, score, class_conditional=False):
    rule = SplitConformal(score, class_conditional=class_conditional)
    rule.calibrate(clf.predict_proba(X_cal), y_cal, 0.9)
    return rule.predict_sets(clf.predict_proba(X_test))


def _mapie_sets(clf, X_cal, y_cal, X_test, score):
    mapie = mapie_classification.SplitConformalClassifier(
        clf, confidence_level=0.9, conformity_score=score, prefit=True
    ).conformalize(X_cal, y_cal)
    return mapie.predict_set(X_test)[1][:, :, 0]


def test_lac_equals_mapie_split_conformal(model_and_rows):
    """Check that LAC sets equal MAPIE's SplitConformalClassifier(prefit=True) sets."""
    clf, X_cal, y_cal, X_test = model_and_rows
    ours = _ours(clf, X_cal, y_cal, X_test, LAC())
    np.testing.assert_array_equal(ours, _mapie_sets(clf, X_cal, y_cal, X_test, "lac"))
    # ...and so do the estimator's own set_rule='conformal' sets on those rows.
    legacy = copy.deepcopy(clf).set_params(set_rule="conformal", confidence_level=0.9)
    np.testing.assert_array_equal(legacy.calibrate(X_cal, y_cal).predict_set(X_test), ours)


def _train(model_and_rows):
    X, y = make_classification(
        n_samples=900, n_features=8, n_informative=6, n_classes=5, random_state=0
    )
    return X[:300], y[:300]


def test_aps_differs_from_mapie_only_by_the_label_crossing_the_quantile(model_and_rows):
    """Check the documented APS rule: MAPIE adds the label whose cumulative mass crosses q.

    skstruct keeps ``{j : s_j <= q}`` (the set the coverage proof is about);
    MAPIE's non-randomized APS also includes the last label, so its sets are
    supersets by at most one label per row.
    """
    clf, X_cal, y_cal, X_test = model_and_rows
    ours = _ours(clf, X_cal, y_cal, X_test, APS())
    theirs = _mapie_sets(clf, X_cal, y_cal, X_test, "aps")
    assert np.all(ours <= theirs)
    extra = theirs.sum(axis=1) - ours.sum(axis=1)
    assert set(np.unique(extra)) <= {0, 1} and extra.any()


@pytest.mark.parametrize("class_cond", [False, True])
def test_lac_equals_crepes(model_and_rows, class_cond):
    """Check marginal and class-conditional (Mondrian) LAC sets equal crepes' (smoothing=False)."""
    clf, X_cal, y_cal, X_test = model_and_rows
    wrapped = crepes.WrapClassifier(clf)
    wrapped.calibrate(X_cal, y_cal, class_cond=class_cond)
    theirs = wrapped.predict_set(X_test, confidence=0.9, labels=False, smoothing=False)
    ours = _ours(clf, X_cal, y_cal, X_test, LAC(), class_conditional=class_cond)
    np.testing.assert_array_equal(ours, np.asarray(theirs).astype(bool))


def test_mapie_and_crepes_wrap_an_unfitted_skstruct_estimator(model_and_rows):
    """Check that MAPIE (prefit=False) and crepes fit a skstruct estimator themselves."""
    _, X_cal, y_cal, X_test = model_and_rows
    X_train, y_train = _train(model_and_rows)
    est = CrossEntropyClassifier(hidden_layer_sizes=(16,), max_epochs=5, random_state=0)
    mapie = mapie_classification.SplitConformalClassifier(
        est, confidence_level=0.9, prefit=False
    ).fit(X_train, y_train).conformalize(X_cal, y_cal)
    assert mapie.predict_set(X_test)[1].shape == (len(X_test), 5, 1)
    wrapped = crepes.WrapClassifier(
        CrossEntropyClassifier(hidden_layer_sizes=(16,), max_epochs=5, random_state=0)
    )
    wrapped.fit(X_train, y_train)
    wrapped.calibrate(X_cal, y_cal)
    assert np.asarray(wrapped.predict_set(X_test, labels=False)).shape == (len(X_test), 5)
