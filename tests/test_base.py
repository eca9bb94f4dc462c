"""Behaviour shared by every estimator, exercised through ConveyanceClassifier."""

import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import load_iris, make_blobs
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline as sk_make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import nn

from skstruct import ConveyanceClassifier, predict_set
from skstruct.exceptions import StructureError, TrainingError
from skstruct.pipeline import make_pipeline
from skstruct.structures import ClassGraph, Ordinal

FAST = dict(hidden_layer_sizes=(16,), max_epochs=15, batch_size=32, lr=1e-2, random_state=0)


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return StandardScaler().fit_transform(X), y


@pytest.fixture(scope="module")
def fitted(iris):
    """One fit shared by many cheap assertions (cf. skorch's net_fit)."""
    X, y = iris
    return ConveyanceClassifier(set_size=1.5, **FAST).fit(X, y)


def test_fitted_attributes(fitted, iris):
    """Check that fit sets the documented attributes."""
    X, _ = iris
    assert fitted.n_features_in_ == X.shape[1]
    assert list(fitted.classes_) == [0, 1, 2]
    assert fitted.structure_ is None
    assert fitted.n_iter_ == FAST["max_epochs"]
    assert len(fitted.loss_curve_) == fitted.n_iter_
    assert fitted.loss_curve_[-1] < fitted.loss_curve_[0]
    assert fitted.net_.module_ is not None


def test_predict_returns_labels_and_proba_sums_to_one(fitted, iris):
    """Check that predict gives labels of classes_ and predict_proba rows sum to 1."""
    X, y = iris
    proba = fitted.predict_proba(X)
    assert proba.shape == (len(X), 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(fitted.predict(X), fitted.classes_[proba.argmax(1)])
    assert fitted.score(X, y) > 0.85


def test_string_labels(iris):
    """Check that string labels come back as strings (skorch returns indices)."""
    X, y = iris
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    clf = ConveyanceClassifier(**FAST).fit(X, names)
    assert set(clf.predict(X)) <= set(names)
    assert clf.predict(X).dtype.kind in "UO"


def test_structure_defines_classes_when_a_fold_lacks_a_class():
    """Check that classes_ comes from the structure, so a missing class keeps its column."""
    rng = np.random.RandomState(0)
    X = rng.randn(60, 3)
    y = np.array([0, 1, 2] * 20)
    clf = ConveyanceClassifier(class_structure=Ordinal([0, 1, 2, 3]), **FAST)
    clf.fit(X, y)
    assert list(clf.classes_) == [0, 1, 2, 3]
    assert clf.predict_proba(X).shape == (60, 4)


def test_cross_val_score_fold_lacking_a_class():
    """Check that cross_val_score works when a training fold lacks a class."""
    rng = np.random.RandomState(0)
    X = rng.randn(40, 3)
    y = np.array([0] * 18 + [1] * 18 + [2] * 4)
    X[y == 1] += 2
    # Class 2 only lives in the first 4 of 40 samples after sorting: a plain
    # KFold without shuffling puts all of it in one test fold.
    order = np.argsort(y == 2)[::-1]
    X, y = X[order], y[order]
    structure = ClassGraph([[1, 0, 0], [0, 1, 0], [0, 1, 1]], classes=[0, 1, 2])
    clf = ConveyanceClassifier(class_structure=structure, **FAST)
    from sklearn.model_selection import KFold

    scores = cross_val_score(clf, X, y, cv=KFold(4))
    assert scores.shape == (4,)
    assert np.all(np.isfinite(scores))
    scores = cross_val_score(clf, X, y, cv=StratifiedKFold(4), scoring="neg_log_loss")
    assert np.all(np.isfinite(scores))


def test_pipeline_and_grid_search(iris):
    """Check Pipeline(StandardScaler, clf) inside GridSearchCV over alpha and beta."""
    X, y = iris
    pipe = sk_make_pipeline(
        StandardScaler(),
        ConveyanceClassifier(class_structure=Ordinal([0, 1, 2]), **FAST),
    )
    grid = GridSearchCV(
        pipe, {"conveyanceclassifier__alpha": [0.1, 1.0], "conveyanceclassifier__beta": [1.0, 10.0]},
        cv=3,
    )
    grid.fit(X, y)
    assert grid.best_score_ > 0.8
    assert grid.predict(X[:5]).shape == (5,)


def test_pickle_round_trip_identical_predictions(fitted, iris):
    """Check that a pickled estimator predicts exactly the same."""
    X, _ = iris
    clone_ = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(clone_.predict_proba(X), fitted.predict_proba(X))
    np.testing.assert_array_equal(clone_.predict_set(X), fitted.predict_set(X))


def test_same_random_state_same_predictions(iris):
    """Check that random_state makes CPU training reproducible."""
    X, y = iris
    a = ConveyanceClassifier(**FAST).fit(X, y).predict_proba(X)
    b = ConveyanceClassifier(**FAST).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)
    c = ConveyanceClassifier(**{**FAST, "random_state": 1}).fit(X, y).predict_proba(X)
    assert not np.array_equal(a, c)


def test_fit_leaves_global_torch_rng_alone(iris):
    """Check that fit does not change torch's global RNG state."""
    X, y = iris
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    ConveyanceClassifier(**FAST).fit(X, y)
    np.testing.assert_array_equal(torch.rand(3), expected)


def test_user_module_is_copied_and_reset(iris):
    """Check that a user backbone is used, never trained in place, and reset per fit."""
    X, y = iris
    backbone = nn.Sequential(nn.Linear(4, 8), nn.Tanh())
    before = [p.detach().clone() for p in backbone.parameters()]
    clf = ConveyanceClassifier(module=backbone, **FAST).fit(X, y)
    for p, q in zip(backbone.parameters(), before):
        assert torch.equal(p, q)
    assert clf.predict_proba(X).shape == (150, 3)
    assert clf.net_.module_.body is not backbone
    # Two fits with the same seed start from the same weights.
    other = ConveyanceClassifier(module=backbone, **FAST).fit(X, y)
    np.testing.assert_array_equal(other.predict_proba(X), clf.predict_proba(X))


def test_early_stopping_restores_best(iris):
    """Check that early stopping holds out data and stops before max_epochs."""
    X, y = iris
    clf = ConveyanceClassifier(
        **{**FAST, "max_epochs": 300}, early_stopping=True, n_iter_no_change=3
    ).fit(X, y)
    assert clf.n_iter_ < 300
    assert len(clf.validation_loss_curve_) == clf.n_iter_


def test_verbose_prints_epoch_log(iris, capsys):
    """Check that verbose=1 prints a per-epoch log and verbose=0 prints nothing."""
    X, y = iris
    ConveyanceClassifier(**{**FAST, "max_epochs": 2}).fit(X, y)
    assert capsys.readouterr().out == ""
    ConveyanceClassifier(**{**FAST, "max_epochs": 2}, verbose=1).fit(X, y)
    assert "train_loss" in capsys.readouterr().out


def test_l1_penalty_shrinks_weights(iris):
    """Check that the L1 penalty callback drives weights towards zero."""
    X, y = iris
    plain = ConveyanceClassifier(**FAST).fit(X, y)
    sparse = ConveyanceClassifier(l1_penalty=0.05, **FAST).fit(X, y)

    def l1(clf):
        return sum(p.abs().sum().item() for n, p in clf.net_.module_.named_parameters() if "weight" in n)

    assert l1(sparse) < 0.7 * l1(plain)


def test_nonfinite_loss_stops_with_clear_error(iris):
    """Check that a diverging fit raises TrainingError, not a silent NaN model."""
    X, y = iris
    clf = ConveyanceClassifier(**{**FAST, "lr": 1e30}, optimizer="sgd")
    with pytest.raises(TrainingError, match="lower `lr`"):
        clf.fit(X * 1e10, y)


# ---------------------------------------------------------------- decisions


def test_min_expected_cost_equals_argmax_when_flat(fitted, iris):
    """Check that the expected-cost rule reduces to argmax for flat classes."""
    X, _ = iris
    proba = fitted.predict_proba(X)
    rule = fitted._decision_rules()["min_expected_cost"]
    np.testing.assert_array_equal(rule(proba), proba.argmax(1))


def test_min_expected_cost_on_ordinal_picks_median():
    """Check that with |rank| cost the rule picks the median, not the mode."""
    rng = np.random.RandomState(0)
    X = rng.randn(30, 2)
    y = np.arange(30) % 3
    clf = ConveyanceClassifier(
        class_structure=Ordinal([0, 1, 2]), decision_rule="min_expected_cost", **FAST
    ).fit(X, y)
    proba = np.array([[0.45, 0.1, 0.45 - 1e-3], [0.4, 0.0, 0.6]])
    np.testing.assert_array_equal(clf._min_expected_cost(proba), [1, 2])
    assert set(clf.predict(X)) <= {0, 1, 2}


# --------------------------------------------------------------------- sets


def test_predict_set_invariants(iris):
    """Check the predict_set invariants: shape, prediction inside, growth, calibrated size."""
    X, y = iris
    sizes = {}
    previous = None
    for set_size in (1.0, 1.5, 2.0, 2.5):
        clf = ConveyanceClassifier(set_size=set_size, **FAST).fit(X, y)
        sets = clf.predict_set(X)
        assert sets.shape == (150, 3) and sets.dtype == bool
        pred_idx = np.searchsorted(clf.classes_, clf.predict(X))
        assert sets[np.arange(150), pred_idx].all()
        if set_size > 1:
            # calibrated on the held-out rows, never trained on: mean size
            # equals set_size there (same seed, so the same rows every time)
            seed = int(np.random.RandomState(FAST["random_state"]).randint(np.iinfo(np.int32).max))
            train_idx, stop_idx, cal_idx = clf._holdout_indices(clf._encode(y, name="y"), seed)
            assert stop_idx is None and len(cal_idx) == 15 and len(train_idx) == 135
            cal_sizes = sets[cal_idx].sum(1)
            assert abs(cal_sizes.mean() - set_size) <= 1.0 / 15 + 1e-12
            # the same network for every set_size > 1: sets grow with it
            if previous is not None:
                assert np.all(sets >= previous)
            previous = sets
        sizes[set_size] = sets.sum(1).mean()
    assert sizes[1.0] == 1.0


def test_calibrate_on_new_data(fitted, iris):
    """Check that calibrate(X) moves the mean set size on that data to set_size."""
    X, _ = iris
    rng = np.random.RandomState(0)
    X_cal = X + 0.3 * rng.randn(*X.shape)
    fitted.calibrate(X_cal)
    assert abs(fitted.predict_set(X_cal).sum(1).mean() - 1.5) <= 1 / 150 + 1e-12


def test_conformal_sets_cover():
    """Check that conformal sets reach the coverage level on fresh data."""
    X, y = make_blobs(n_samples=3000, centers=4, cluster_std=3.0, random_state=0)
    X_train, y_train, X_test, y_test = X[:1500], y[:1500], X[1500:], y[1500:]
    clf = ConveyanceClassifier(
        set_rule="conformal", confidence_level=0.9, validation_fraction=0.3, **FAST
    ).fit(X_train, y_train)
    sets = clf.predict_set(X_test)
    coverage = sets[np.arange(len(y_test)), y_test].mean()
    assert 0.87 <= coverage <= 0.95


def test_predict_set_through_pipelines(iris):
    """Check the predict_set helper and skstruct's Pipeline on a fitted pipeline."""
    X, y = iris
    sk_pipe = sk_make_pipeline(StandardScaler(), ConveyanceClassifier(set_size=2, **FAST)).fit(X, y)
    sets = predict_set(sk_pipe, X)
    np.testing.assert_array_equal(sets, sk_pipe[-1].predict_set(sk_pipe[0].transform(X)))
    pipe = make_pipeline(StandardScaler(), ConveyanceClassifier(set_size=2, **FAST)).fit(X, y)
    np.testing.assert_array_equal(pipe.predict_set(X), sets)
    with pytest.raises(TypeError, match="no predict_set"):
        predict_set(sk_make_pipeline(StandardScaler()).fit(X), X)


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_nonfinite_X_rejected(iris, value):
    """Check that NaN or inf in X gives a ValueError naming X."""
    X, y = iris
    X = X.copy()
    X[3, 1] = value
    with pytest.raises(ValueError, match="Input X contains"):
        ConveyanceClassifier(**FAST).fit(X, y)


def test_wrong_n_features_at_predict(fitted, iris):
    """Check that predict with a different number of features is a clear error."""
    X, _ = iris
    with pytest.raises(ValueError, match="features"):
        fitted.predict(X[:, :2])


def test_label_unknown_to_structure(iris):
    """Check that a y label the structure does not know is a clear error."""
    X, y = iris
    clf = ConveyanceClassifier(class_structure=Ordinal([0, 1]), **FAST)
    with pytest.raises(StructureError, match="2"):
        clf.fit(X, y)


@pytest.mark.parametrize("param", ["alpha", "beta"])
@pytest.mark.parametrize("value", [-1.0, -1e-3])
def test_nonpositive_alpha_beta(iris, param, value):
    """Check that alpha/beta < 0 are rejected, naming the parameter (0 is valid alone)."""
    X, y = iris
    with pytest.raises(ValueError, match=f"'{param}' parameter"):
        ConveyanceClassifier(**{param: value}, **FAST).fit(X, y)


def test_plausibility_of_wrong_shape(iris):
    """Check that a plausibility matrix of the wrong shape is a clear error."""
    X, y = iris
    with pytest.raises(ValueError, match="shape|square"):
        ConveyanceClassifier(class_structure=(np.ones((3, 2)), [0, 1, 2]), **FAST).fit(X, y)


def test_single_class_rejected(iris):
    """Check that y with one class and no structure is rejected."""
    X, _ = iris
    with pytest.raises(ValueError, match="single class"):
        ConveyanceClassifier(**FAST).fit(X, np.zeros(len(X)))


def test_set_size_larger_than_classes(iris):
    """Check that set_size above the number of classes is a clear error."""
    X, y = iris
    with pytest.raises(ValueError, match="set_size=5"):
        ConveyanceClassifier(set_size=5, **FAST).fit(X, y)


def test_cuda_without_cuda(iris):
    """Check that device='cuda' on a CPU-only machine names the device."""
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    X, y = iris
    with pytest.raises(ValueError, match="device='cuda'"):
        ConveyanceClassifier(device="cuda", **FAST).fit(X, y)


def test_bad_optimizer(iris):
    """Check that an unknown optimizer string is rejected with the options."""
    X, y = iris
    with pytest.raises(ValueError, match="optimizer"):
        ConveyanceClassifier(optimizer="lbfgsx", **FAST).fit(X, y)


def test_conformal_calibrate_needs_labels(fitted, iris):
    """Check that conformal recalibration without y is a clear error."""
    X, _ = iris
    clf = clone(fitted).set_params(set_rule="conformal", validation_fraction=0.3).fit(*iris)
    with pytest.raises(ValueError, match="needs the true labels"):
        clf.calibrate(X)
    with pytest.raises(ValueError, match="unknown"):
        ConveyanceClassifier(**FAST).fit(*iris).calibrate(X, np.full(len(X), 7))


@pytest.mark.parametrize("early_stopping", [False, True])
def test_pickle_is_small_and_holds_no_training_data(early_stopping):
    """Check that a fitted estimator pickles small and references no training data.

    Bound: 3x the parameter bytes (weights + Adam's two moments) plus 64 kB of
    skorch history and bookkeeping.
    """
    rng = np.random.RandomState(0)
    X = rng.randn(600, 8)
    y = rng.randint(0, 3, size=600)
    clf = ConveyanceClassifier(early_stopping=early_stopping, **FAST).fit(X, y)
    blob = pickle.dumps(clf)
    n_param_bytes = sum(p.numel() * 4 for p in clf.net_.module_.parameters())
    assert len(blob) < 3 * n_param_bytes + 64_000
    for row in (X[0], X[-1], X[300]):
        assert row.astype(np.float32).tobytes() not in blob
        assert row.astype(np.float64).tobytes() not in blob
