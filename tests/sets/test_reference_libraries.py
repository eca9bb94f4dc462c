"""skstruct's conformal sets against MAPIE and crepes on the same fitted model and rows."""

import copy

import numpy as np
import pytest
from sklearn.datasets import load_digits, make_classification
from sklearn.model_selection import StratifiedShuffleSplit

from skstruct import CrossEntropyClassifier
from skstruct.sets import APS, LAC, RAPS, SplitConformal
from skstruct.sets._conformal import conformal_quantile

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


@pytest.fixture(scope="module")
def digits_model_and_rows():
    """A weak digits model (3 epochs), so that MAPIE picks a small k_star and the RAPS penalty acts."""
    X, y = load_digits(return_X_y=True)
    order = np.random.RandomState(0).permutation(len(y))
    X, y = X[order] / 16.0, y[order]
    clf = CrossEntropyClassifier(hidden_layer_sizes=(16,), max_epochs=3, lr=1e-2, random_state=0)
    clf.fit(X[:600], y[:600])
    return clf, X[600:1200], y[600:1200], X[1200:]


def _ours(clf, X_cal, y_cal, X_test, score, class_conditional=False):
    rule = SplitConformal(score, class_conditional=class_conditional)
    rule.calibrate(clf.predict_proba(X_cal), y_cal, 0.9)
    return rule.predict_sets(clf.predict_proba(X_test))


def _mapie(clf, X_cal, y_cal, score, seed=0):
    return mapie_classification.SplitConformalClassifier(
        clf, confidence_level=0.9, conformity_score=score, prefit=True, random_state=seed
    ).conformalize(X_cal, y_cal)


def _mapie_sets(clf, X_cal, y_cal, X_test, score, seed=0, include_last_label=True):
    mapie = _mapie(clf, X_cal, y_cal, score, seed)
    params = {"include_last_label": include_last_label}
    return mapie.predict_set(X_test, conformity_score_params=params)[1][:, :, 0]


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


def _mapie_uniforms(seed, n):
    """MAPIE's uniforms ``u`` in our convention: its randomized score is ``s - u p_y``, ours ``s - (1 - u) p_y``."""
    return 1.0 - np.random.RandomState(seed).uniform(size=n)


def _check_adaptive_sets(clf, X_cal, y_cal, X_test, name, seed):
    """Compare one MAPIE APS / RAPS fit with skstruct's scores on the same rows and uniforms."""
    mapie = _mapie(clf, X_cal, y_cal, name, seed)
    sets = {
        rule: mapie.predict_set(X_test, conformity_score_params={"include_last_label": rule})[1][:, :, 0]
        for rule in (False, True, "randomized")
    }
    cs = mapie._mapie_classifier.conformity_score_function_
    if name == "raps":
        # MAPIE keeps size_raps (None: 10 %) of the rows, stratified and seeded,
        # to choose k_star and lambda_star, and calibrates on the rest, in that order.
        cal, _ = next(StratifiedShuffleSplit(n_splits=1, test_size=None, random_state=seed).split(X_cal, y_cal))
        k, lam = int(np.ravel(cs.k_star)[0]), float(np.ravel(cs.lambda_star)[0])
        make = lambda randomized: RAPS(lambda_reg=lam, k_reg=k, randomized=randomized)  # noqa: E731
    else:
        cal = np.arange(len(y_cal))
        make = lambda randomized: APS(randomized=randomized)  # noqa: E731
    p_cal, p_test = clf.predict_proba(X_cal[cal]), clf.predict_proba(X_test)
    y_idx = np.searchsorted(clf.classes_, y_cal[cal])
    # MAPIE randomizes every calibration score: same uniforms, same quantile.
    true_scores = make(True).nonconformity(p_cal, _mapie_uniforms(seed, len(cal)))
    q = conformal_quantile(true_scores[np.arange(len(cal)), y_idx], 0.9)
    np.testing.assert_allclose(q, np.ravel(cs.quantiles_)[0], rtol=0, atol=1e-12)
    # include_last_label=False is our deterministic rule {j : s_j <= q}, except
    # that MAPIE puts the top label into a set that would be empty ...
    ours = make(False).nonconformity(p_test) <= q
    empty = ~ours.any(axis=1)
    top = p_test == p_test.max(axis=1, keepdims=True)
    np.testing.assert_array_equal(ours | (empty[:, None] & top), sets[False])
    # ... 'randomized' our randomized rule with MAPIE's prediction uniforms ...
    ours_rand = make(True).nonconformity(p_test, _mapie_uniforms(seed, len(X_test))) <= q
    np.testing.assert_array_equal(ours_rand, sets["randomized"])
    # ... and True (MAPIE's default) adds the label whose score crosses q to every row.
    assert np.all(ours <= sets[True])
    np.testing.assert_array_equal(sets[True].sum(axis=1) - ours.sum(axis=1), 1)
    # Our randomize_sets=False rule (u = 0 at prediction) contains the randomized
    # sets; for APS it is MAPIE's default rule exactly.
    at_zero = make(True).nonconformity(p_test, np.zeros(len(X_test))) <= q
    assert np.all(ours_rand <= at_zero) and np.all(at_zero <= sets[True])
    if name == "aps":
        np.testing.assert_array_equal(at_zero, sets[True])
    return ours, q


@pytest.mark.parametrize("seed", [0, 1])
def test_aps_equals_mapie_up_to_the_last_label_rule(model_and_rows, seed):
    """Check APS against MAPIE: equal scores, quantile and sets; MAPIE's default adds one label.

    MAPIE draws the calibration uniforms itself (``random_state``) and
    writes the randomized score ``s - u p_y``, ours ``s - (1 - u) p_y`` (the
    same law); with its uniforms mapped ``u -> 1 - u`` the quantiles are
    equal, ``include_last_label=False`` gives our non-randomized sets and
    ``'randomized'`` our randomized ones, exactly; ``include_last_label=False``
    equals our non-randomized sets except that MAPIE puts the top label
    into a set that would be empty, and ``True`` (its default) adds the label
    whose score crosses ``q``.
    """
    clf, X_cal, y_cal, X_test = model_and_rows
    ours, q = _check_adaptive_sets(clf, X_cal, y_cal, X_test, "aps", seed)
    assert 1 < ours.sum(axis=1).mean() < 5


@pytest.mark.parametrize("seed", [0, 1])
def test_raps_equals_mapie_up_to_the_last_label_rule(digits_model_and_rows, seed):
    """Check RAPS against MAPIE with its k_star, lambda_star and calibration rows, with and without randomization."""
    clf, X_cal, y_cal, X_test = digits_model_and_rows
    ours, q = _check_adaptive_sets(clf, X_cal, y_cal, X_test, "raps", seed)
    assert (~ours.any(axis=1)).any()  # the empty-set rule of MAPIE is exercised
    # The penalty is in play: without it the same quantile keeps more labels.
    plain = APS().nonconformity(clf.predict_proba(X_test)) <= q
    assert np.all(ours <= plain) and plain.sum() > ours.sum()


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
