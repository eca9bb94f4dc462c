"""SetKernelSVC and set_kernel: the set-kernel SVM on bags."""

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import VotingClassifier
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.svm import SVC
from sklearn.utils.estimator_checks import parametrize_with_checks

from skstruct import MILConveyance
from skstruct.preprocessing import BagTransformer
from skstruct.svm import SetKernelSVC, clique_weights, set_kernel
from skstruct.svm import _set_kernel
from skstruct.utils._sklearn_compat import InvalidParameterError, validate_data


def _bags(n=30, seed=0, n_features=3):
    """Bags of 1-5 instances; a positive bag holds one shifted instance."""
    rng = np.random.RandomState(seed)
    y = np.arange(n) % 2
    bags = []
    for label in y:
        bag = rng.randn(rng.randint(1, 6), n_features)
        bag[0, 0] += 3.0 * label
        bags.append(bag)
    return bags, y


def _reference_kernel(bags_a, bags_b, gamma):
    """The normalised set kernel from its definition, pair by pair, in float64."""
    def k(a, b):
        return np.mean([[np.exp(-gamma * np.sum((x - z) ** 2)) for z in b] for x in a])

    return np.array([[k(a, b) / np.sqrt(k(a, a) * k(b, b)) for b in bags_b] for a in bags_a])


def test_kernel_matches_its_definition():
    """Check set_kernel against the pairwise formula, for several gammas."""
    bags_a, _ = _bags(7, seed=1)
    bags_b, _ = _bags(5, seed=2)
    kernels = set_kernel(bags_a, bags_b, [0.1, 1.0])
    for gamma, kernel in zip([0.1, 1.0], kernels):
        np.testing.assert_allclose(kernel, _reference_kernel(bags_a, bags_b, gamma), rtol=1e-12)


def test_kernel_properties():
    """Check unit diagonal, symmetry, positive semi-definiteness; RBF for 1-instance bags."""
    bags, _ = _bags(12)
    (kernel,) = set_kernel(bags, bags, [0.5])
    np.testing.assert_allclose(np.diag(kernel), 1.0, rtol=1e-12)
    np.testing.assert_allclose(kernel, kernel.T, rtol=1e-12)
    assert np.linalg.eigvalsh(kernel).min() > -1e-10
    points = np.random.RandomState(0).randn(6, 2)
    (single,) = set_kernel(list(points[:, None]), list(points[:, None]), [0.3])
    sq = ((points[:, None] - points[None]) ** 2).sum(-1)
    np.testing.assert_allclose(single, np.exp(-0.3 * sq), rtol=1e-12)


def test_kernel_in_blocks_equals_in_one_piece(monkeypatch):
    """Check that summing the instance pairs block by block changes nothing."""
    bags_a, _ = _bags(9, seed=3)
    bags_b, _ = _bags(4, seed=4)
    whole = set_kernel(bags_a, bags_b, [0.7])[0]
    monkeypatch.setattr(_set_kernel, "_BLOCK_PAIRS", 7)  # blocks of one or two bags
    np.testing.assert_allclose(set_kernel(bags_a, bags_b, [0.7])[0], whole, rtol=1e-12)


def test_kernel_bad_input():
    """Check that set_kernel names the bad argument."""
    with pytest.raises(ValueError, match="bags_a has 2 features per instance but bags_b has 3"):
        set_kernel([np.zeros((1, 2))], [np.zeros((1, 3))], [1.0])
    with pytest.raises(ValueError, match="Bag 0 of bags_b is empty"):
        set_kernel([np.zeros((1, 2))], [np.zeros((0, 2))], [1.0])


def test_one_instance_bags_are_an_rbf_svc():
    """Check that with one instance per bag it is SVC(kernel='rbf') on standardised rows."""
    rng = np.random.RandomState(0)
    X = rng.randn(40, 3) * [10.0, 1.0, 0.1]
    y = (X[:, 0] + 10 * X[:, 1] > 0).astype(int)
    clf = SetKernelSVC(gammas=[2.0], Cs=[10.0]).fit(list(X[:, None]), y)
    scaled = (X - X.mean(0)) / (X.std(0) + 1e-6)
    ref = SVC(kernel="rbf", gamma=2.0 / 3, C=10.0).fit(scaled, y)
    np.testing.assert_allclose(clf.decision_function(list(X[:, None])),
                               ref.decision_function(scaled), rtol=1e-6, atol=1e-8)
    assert clf.cv_scores_ is None and np.isnan(clf.best_score_)
    assert clf.gamma_ == pytest.approx(2.0 / 3) and clf.C_ == 10.0


def test_inner_selection_is_the_best_mean_inner_accuracy():
    """Check cv_scores_ against an inner CV written out, and the chosen pair."""
    bags, y = _bags(40)
    gammas, Cs = [0.1, 1.0, 10.0], [0.1, 10.0]
    clf = SetKernelSVC(gammas=gammas, Cs=Cs, cv=4, random_state=0).fit(bags, y)
    stacked = np.concatenate(bags)
    mean, scale = stacked.mean(0), stacked.std(0) + 1e-6
    scaled = [(b - mean) / scale for b in bags]
    splits = list(StratifiedKFold(4, shuffle=True, random_state=0).split(np.zeros(40), y))
    expected = np.zeros((3, 2))
    for g, gamma in enumerate(gammas):
        (kernel,) = set_kernel(scaled, scaled, [gamma / 3])
        for c, C in enumerate(Cs):
            expected[g, c] = np.mean([
                (SVC(kernel="precomputed", C=C).fit(kernel[np.ix_(a, a)], y[a])
                 .predict(kernel[np.ix_(b, a)]) == y[b]).mean() for a, b in splits])
    np.testing.assert_allclose(clf.cv_scores_, expected)
    g, c = np.unravel_index(np.argmax(expected), expected.shape)
    assert clf.gamma_ == pytest.approx(gammas[g] / 3) and clf.C_ == Cs[c]
    assert clf.best_score_ == pytest.approx(expected.max())
    assert clf.score(bags, y) > 0.8


def test_string_labels_and_test_labels_never_reach_fit():
    """Check labels of any kind, and that test labels cannot change test predictions."""
    bags, y = _bags(30)
    names = np.array(["neg", "pos"])[y]
    train, test = np.arange(20), np.arange(20, 30)
    clf = SetKernelSVC(cv=3, random_state=0).fit([bags[i] for i in train], names[train])
    assert list(clf.classes_) == ["neg", "pos"]
    assert set(clf.predict([bags[i] for i in test])) <= {"neg", "pos"}
    shuffled = names.copy()
    shuffled[test] = shuffled[test][::-1]
    again = SetKernelSVC(cv=3, random_state=0).fit([bags[i] for i in train], shuffled[train])
    np.testing.assert_array_equal(again.predict([bags[i] for i in test]),
                                  clf.predict([bags[i] for i in test]))


def test_sample_weight_of_two_is_a_repeated_bag():
    """Check that weight 2 on a bag fits the same SVM as the bag twice."""
    bags, y = _bags(20)
    weight = np.ones(20)
    weight[:5] = 2.0
    weighted = SetKernelSVC(gammas=[1.0], Cs=[1.0]).fit(bags, y, sample_weight=weight)
    repeated = SetKernelSVC(gammas=[1.0], Cs=[1.0]).fit(bags + bags[:5], np.r_[y, y[:5]])
    np.testing.assert_allclose(weighted.mean_, repeated.mean_)
    # Equal up to libsvm's stopping tolerance (SVC's tol=1e-3): the two
    # problems have the same optimum but are solved from different sizes.
    np.testing.assert_allclose(weighted.decision_function(bags),
                               repeated.decision_function(bags), atol=3e-3)
    np.testing.assert_array_equal(weighted.predict(bags), repeated.predict(bags))


def test_vote_with_milconveyance_in_cross_val_score_and_grid_search():
    """Check sklearn's VotingClassifier and GridSearchCV on bags."""
    bags, y = _bags(24)
    net = MILConveyance(max_epochs=30, random_state=0, n_threads=1)
    vote = VotingClassifier([
        ("net", net),
        ("svm", SetKernelSVC(cv=3, random_state=0)),
        ("svm_arcsinh", make_pipeline(BagTransformer(FunctionTransformer(np.arcsinh)),
                                      SetKernelSVC(gammas=[1.0], Cs=[1.0]))),
    ])
    scores = cross_val_score(vote, bags, y, cv=StratifiedKFold(3))
    assert scores.shape == (3,) and np.all((0 <= scores) & (scores <= 1))
    search = GridSearchCV(SetKernelSVC(gammas=[1.0]), {"Cs": [[0.1], [10.0]]},
                          cv=StratifiedKFold(3)).fit(bags, y)
    assert len(search.cv_results_["params"]) == 2


def test_probabilities_through_calibrated_classifier_cv():
    """Check the documented way to probabilities: CalibratedClassifierCV on bags."""
    bags, y = _bags(30)
    assert not hasattr(SetKernelSVC(), "predict_proba")
    calibrated = CalibratedClassifierCV(SetKernelSVC(gammas=[1.0], Cs=[1.0]), cv=3)
    proba = calibrated.fit(bags, y).predict_proba(bags)
    assert proba.shape == (30, 2)
    np.testing.assert_allclose(proba.sum(1), 1.0)
    assert np.mean(proba.argmax(1) == y) > 0.8


def test_pickle_round_trip():
    """Check that a fitted model predicts the same after pickling."""
    bags, y = _bags(20)
    clf = SetKernelSVC(cv=3, random_state=0).fit(bags, y)
    loaded = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(loaded.decision_function(bags), clf.decision_function(bags))


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(gammas=[]), "gammas must hold at least one positive"),
        (dict(gammas=[1.0, 0.0]), "gammas must hold at least one positive"),
        (dict(Cs=[np.inf]), "Cs must hold at least one positive"),
        (dict(cv=20), "cv=20 inner folds need at least 20 training bags of every class"),
    ],
)
def test_bad_parameters(params, match):
    """Check the ValueError of every bad grid and of too many inner folds."""
    bags, y = _bags(20)
    with pytest.raises(ValueError, match=match):
        SetKernelSVC(**params).fit(bags, y)


def test_bad_parameter_types():
    """Check sklearn's parameter validation of cv and random_state."""
    bags, y = _bags(20)
    with pytest.raises(InvalidParameterError, match="cv"):
        SetKernelSVC(cv=1).fit(bags, y)
    with pytest.raises(InvalidParameterError, match="random_state"):
        SetKernelSVC(random_state="seed").fit(bags, y)


def test_bad_input():
    """Check the errors for bad bags and labels, naming the problem."""
    bags, y = _bags(20)
    with pytest.raises(ValueError, match="expected one label per bag"):
        SetKernelSVC().fit(bags, y[:-1])
    with pytest.raises(ValueError, match="y contains 1 class"):
        SetKernelSVC().fit(bags, np.zeros(20, dtype=int))
    with pytest.raises(ValueError, match="1-D"):
        SetKernelSVC().fit(bags, y[:, None])
    with pytest.raises(ValueError, match="2-D numeric array.*SetKernelSVC takes one"):
        SetKernelSVC().fit(np.zeros((20, 3)), y)
    nan_bags = [b.copy() for b in bags]
    nan_bags[3][0, 0] = np.nan
    with pytest.raises(ValueError, match="Bag 3 of X contains NaN.*SetKernelSVC"):
        SetKernelSVC().fit(nan_bags, y)
    with pytest.raises(ValueError, match="sample_weight"):
        SetKernelSVC().fit(bags, y, sample_weight=-np.ones(20))
    fitted = SetKernelSVC(cv=3, random_state=0).fit(bags, y)
    with pytest.raises(ValueError, match="fitted with 3 features"):
        fitted.predict([np.zeros((2, 4))])
    with pytest.raises(Exception, match="not fitted"):
        clone(fitted).predict(bags)


# -------------------------------------------- sklearn checks via an adapter


class OneInstanceBagSVC(SetKernelSVC):
    """Test adapter: each row of a 2-D X is a bag of one instance (sklearn's validation)."""

    def _validate_X(self, X, *, reset):
        X = validate_data(self, X, reset=reset, dtype=np.float64)
        return list(X[:, None, :])

    def _validate_X_y(self, X, y):
        X, y = validate_data(self, X, y, dtype=np.float64)
        return list(X[:, None, :]), y

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = True
        tags.input_tags.three_d_array = False
        return tags


# One candidate: sklearn's check data has classes too small for inner folds.
ADAPTER = OneInstanceBagSVC(gammas=[1.0], Cs=[1.0])


# The one expected failure is sklearn's own for SVC (its PER_ESTIMATOR_XFAIL_CHECKS).
ADAPTER_XFAIL = {
    "check_sample_weight_equivalence_on_dense_data": "as for sklearn's SVC: libsvm's "
    "per-sample C is not equivalent to removing/repeating samples",
}


@parametrize_with_checks([ADAPTER], expected_failed_checks=lambda est: ADAPTER_XFAIL)
def test_sklearn_checks_on_one_instance_bags(estimator, check):
    """Check that sklearn's common checks pass on one-instance bags."""
    check(estimator)


# ------------------------------------------------ miGraph (clique) weighting


def _reference_clique_weights(bag):
    """miGraph's weights written out instance by instance, in float64."""
    n = len(bag)
    if n == 1:
        return np.ones(1)
    dist = [[np.sqrt(np.sum((bag[a] - bag[u]) ** 2)) for u in range(n)] for a in range(n)]
    delta = np.mean([dist[a][u] for a in range(n) for u in range(n) if a != u])
    inverse = [1.0 / sum(1 for u in range(n) if u == a or dist[a][u] < delta) for a in range(n)]
    return np.array(inverse) / np.sum(inverse)


def _reference_weighted_kernel(bags_a, bags_b, weights_a, weights_b, gamma):
    """The weighted, normalised set kernel from its definition, pair by pair."""
    def k(a, wa, b, wb):
        return sum(wa[i] * wb[j] * np.exp(-gamma * np.sum((x - z) ** 2))
                   for i, x in enumerate(a) for j, z in enumerate(b))

    return np.array([[k(a, wa, b, wb) / np.sqrt(k(a, wa, a, wa) * k(b, wb, b, wb))
                      for b, wb in zip(bags_b, weights_b)]
                     for a, wa in zip(bags_a, weights_a)])


def test_clique_weights_match_their_definition():
    """Check clique_weights against the neighbourhood rule; degenerate bags equal."""
    bags, _ = _bags(10, seed=5)
    for bag, weights in zip(bags, clique_weights(bags)):
        np.testing.assert_allclose(weights, _reference_clique_weights(bag), rtol=1e-12)
        assert weights.sum() == pytest.approx(1.0)
    same = clique_weights([np.ones((4, 2)), np.zeros((1, 2))])
    np.testing.assert_allclose(same[0], 0.25)
    np.testing.assert_allclose(same[1], 1.0)
    # A clump of near-copies shares one unit of weight: 2 x 1/4 next to 1/2.
    clump = np.array([[0.0, 0.0], [0.0, 0.01], [3.0, 0.0]])
    np.testing.assert_allclose(clique_weights([clump])[0], [0.25, 0.25, 0.5])


def test_weighted_kernel_matches_its_definition(monkeypatch):
    """Check weighted set_kernel against the weighted pairwise formula, blocked too."""
    bags_a, _ = _bags(6, seed=6)
    bags_b, _ = _bags(5, seed=7)
    rng = np.random.RandomState(0)
    weights_a = [rng.rand(len(b)) + 0.1 for b in bags_a]
    weights_b = clique_weights(bags_b)
    norm_a = [w / w.sum() for w in weights_a]
    kernels = set_kernel(bags_a, bags_b, [0.2, 2.0], weights_a=weights_a, weights_b=weights_b)
    for gamma, kernel in zip([0.2, 2.0], kernels):
        np.testing.assert_allclose(
            kernel, _reference_weighted_kernel(bags_a, bags_b, norm_a, weights_b, gamma),
            rtol=1e-12)
    monkeypatch.setattr(_set_kernel, "_BLOCK_PAIRS", 7)
    blocked = set_kernel(bags_a, bags_b, [2.0], weights_a=weights_a, weights_b=weights_b)[0]
    np.testing.assert_allclose(blocked, kernels[1], rtol=1e-12)
    # Equal weights are the unweighted kernel; weights on one side only too.
    equal = [np.ones(len(b)) for b in bags_b]
    np.testing.assert_allclose(set_kernel(bags_a, bags_b, [0.2], weights_b=equal)[0],
                               set_kernel(bags_a, bags_b, [0.2])[0], rtol=1e-12)
    (square,) = set_kernel(bags_a, bags_a, [0.5], weights_a=weights_a, weights_b=weights_a)
    np.testing.assert_allclose(np.diag(square), 1.0, rtol=1e-12)
    assert np.linalg.eigvalsh(square).min() > -1e-10


def test_clique_svm_is_an_svc_on_the_miGraph_kernel():
    """Check SetKernelSVC(instance_weighting='clique') against a precomputed SVC by hand."""
    bags, y = _bags(30, seed=8)
    clf = SetKernelSVC(gammas=[0.5], Cs=[10.0], instance_weighting="clique").fit(bags, y)
    stacked = np.concatenate(bags)
    mean, scale = stacked.mean(0), stacked.std(0) + 1e-6
    scaled = [(b - mean) / scale for b in bags]
    weights = [_reference_clique_weights(b) for b in scaled]
    kernel = _reference_weighted_kernel(scaled, scaled, weights, weights, 0.5 / 3)
    ref = SVC(kernel="precomputed", C=10.0).fit(kernel, y)
    test_bags, _ = _bags(8, seed=9)
    scaled_test = [(b - mean) / scale for b in test_bags]
    test_kernel = _reference_weighted_kernel(
        scaled_test, scaled, [_reference_clique_weights(b) for b in scaled_test], weights,
        0.5 / 3)
    np.testing.assert_allclose(clf._kernel(test_bags), test_kernel, rtol=1e-12)
    # Kernels equal to rounding can take libsvm (tol=1e-3) along another path.
    np.testing.assert_allclose(clf.decision_function(test_bags),
                               ref.decision_function(test_kernel), atol=3e-3)
    np.testing.assert_array_equal(clf.predict(test_bags), ref.predict(test_kernel))
    for w, ref_w in zip(clf.instance_weights_, weights):
        np.testing.assert_allclose(w, ref_w, rtol=1e-12)
    assert SetKernelSVC(gammas=[0.5], Cs=[10.0]).fit(bags, y).instance_weights_ is None


def test_weighted_kernel_bad_input():
    """Check that bad instance weights and a bad weighting name the argument."""
    bags, y = _bags(6)
    with pytest.raises(ValueError, match="weights_a has 2 entries but bags_a has 6 bags"):
        set_kernel(bags, bags, [1.0], weights_a=[np.ones(1)] * 2)
    with pytest.raises(ValueError, match=r"weights_b\[0\] has shape \(9,\) but bag 0"):
        set_kernel(bags, bags, [1.0], weights_b=[np.ones(9)] + [np.ones(len(b)) for b in bags[1:]])
    bad = [np.ones(len(b)) for b in bags]
    bad[2] = -bad[2]
    with pytest.raises(ValueError, match=r"weights_a\[2\] must hold finite, non-negative"):
        set_kernel(bags, bags, [1.0], weights_a=bad)
    bad[2] = np.zeros(len(bags[2]))
    with pytest.raises(ValueError, match=r"weights_a\[2\] must hold .* positive sum"):
        set_kernel(bags, bags, [1.0], weights_a=bad)
    with pytest.raises(ValueError, match="Bag 0 of bags is empty"):
        clique_weights([np.zeros((0, 2))])
    with pytest.raises(InvalidParameterError, match="instance_weighting"):
        SetKernelSVC(instance_weighting="graph").fit(bags, y)
