"""Set strategies: set_rule strings resolve to AverageK / SplitConformal objects with a shape."""

import numpy as np
import pytest

from skstruct import AverageKClassifier, CrossEntropyClassifier, EMDOrdinalRegressor
from skstruct.sets import (
    APS,
    LAC,
    AverageK,
    IntervalSets,
    NodeSets,
    SplitConformal,
    ThresholdSets,
    shape_for_structure,
)
from skstruct.structures import Hierarchy, Ordinal

FAST = dict(hidden_layer_sizes=(16,), max_epochs=4, lr=1e-2, random_state=0)


def _data(n_classes=4, n=240, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.randn(n, 5)
    y = np.digitize(X[:, 0] + 0.5 * rng.randn(n), np.linspace(-1, 1, n_classes - 1))
    return X, y


@pytest.mark.parametrize("size", [1.0, 2.5])
def test_average_k_string_equals_the_strategy_object(size):
    """Check set_rule='average_k' gives the sets of set_rule=AverageK(set_size) (same holdout)."""
    X, y = _data()
    named = CrossEntropyClassifier(set_size=size, **FAST).fit(X, y)
    obj = CrossEntropyClassifier(set_rule=AverageK(size), **FAST).fit(X, y)
    np.testing.assert_array_equal(named.predict_set(X), obj.predict_set(X))
    assert named.set_threshold_ == obj.set_threshold_
    assert named.predict_set(X).sum(axis=1).min() >= 1


@pytest.mark.parametrize(
    "structure, shape_type",
    [(Ordinal([0, 1, 2, 3]), IntervalSets),
     (Hierarchy({0: "x", 1: "x", 2: "z", 3: "z"}), NodeSets),
     (None, ThresholdSets)],
)
def test_conformal_string_uses_the_shape_of_the_structure(structure, shape_type):
    """Check set_rule='conformal' equals SplitConformal(LAC(), shape=shape of the structure)."""
    X, y = _data()
    shape = shape_for_structure(structure)
    assert type(shape) is shape_type
    named = CrossEntropyClassifier(structure, set_rule="conformal", **FAST).fit(X, y)
    obj = CrossEntropyClassifier(
        structure, set_rule=SplitConformal(LAC(), shape=shape), **FAST
    ).fit(X, y)
    sets = named.predict_set(X)
    np.testing.assert_array_equal(sets, obj.predict_set(X))
    assert type(named.set_calibrator_.shape) is shape_type
    if structure is not None:
        # Structured sets always hold the prediction; plain LAC sets need not.
        assert sets[np.arange(len(X)), np.searchsorted(named.classes_, named.predict(X))].all()


def test_emd_average_k_gives_intervals_of_the_requested_mean_size():
    """Check EMD's Average-K strategy calibrates intervals to set_size on its calibration rows."""
    X, y = _data(n_classes=5, n=400)
    reg = EMDOrdinalRegressor(set_size=2.0, **FAST).fit(X, y)
    assert isinstance(reg.set_calibrator_, AverageK)
    assert isinstance(reg.set_calibrator_.shape, IntervalSets)
    sets = reg.predict_set(X)[:, np.asarray(reg.structure_.rank_order)]
    # Every set is one run of consecutive ranks, and predict_interval reads its ends.
    runs = np.sum(np.diff(sets.astype(int), axis=1) == 1, axis=1) + sets[:, 0]
    assert np.all(runs == 1)
    bounds = reg.predict_interval(X)
    by_rank = reg.classes_[np.asarray(reg.structure_.rank_order)]
    np.testing.assert_array_equal(by_rank[np.argmax(sets, axis=1)], bounds[:, 0])
    assert 1.6 < sets.sum(axis=1).mean() < 2.4


def test_no_estimator_overrides_the_set_logic():
    """Check EMD and AverageK provide scores and a strategy only (no set logic of their own)."""
    for cls in (EMDOrdinalRegressor, AverageKClassifier):
        assert not {"predict_set", "_calibrate_sets", "_conformal_set_kind"} & set(vars(cls))
    assert "_set_strategy" in vars(EMDOrdinalRegressor)


def test_average_k_classifier_strategy_forces_no_label_in():
    """Check AverageKClassifier resolves both rules to plain thresholds on its head scores."""
    X, y = _data(n_classes=6, n=300)
    clf = AverageKClassifier(k=2, **FAST).fit(X, y)
    assert isinstance(clf.set_calibrator_, AverageK) and clf.set_calibrator_.set_size == 2
    assert clf.set_calibrator_.shape.include_prediction is False
    clf.set_params(set_rule="conformal").calibrate(X, y)
    assert isinstance(clf.set_calibrator_, SplitConformal)
    with pytest.raises(ValueError, match="k=7 must be smaller"):
        clf.set_params(k=7).calibrate(X, y)


def test_structured_shapes_reject_other_scores_and_mondrian():
    """Check the shapes say clearly what they do not support."""
    proba = np.full((4, 3), 1 / 3)
    pred, y = np.zeros(4, int), np.arange(4) % 3
    shape = IntervalSets(Ordinal([0, 1, 2]))
    with pytest.raises(ValueError, match="score must be None or LAC"):
        SplitConformal(APS(), shape=shape).calibrate(proba, y, 0.5, predicted=pred)
    with pytest.raises(ValueError, match="class_conditional=True is not defined"):
        SplitConformal(class_conditional=True, shape=shape).calibrate(proba, y, 0.5, predicted=pred)
    with pytest.raises(ValueError, match="needs predicted="):
        SplitConformal(shape=shape).calibrate(proba, y, 0.5)
    with pytest.raises(ValueError, match="not defined for NodeSets"):
        AverageK(2, shape=NodeSets(Hierarchy({0: "x", 1: "x", 2: None}))).calibrate(
            proba, predicted=pred
        )
    with pytest.raises(ValueError, match="set_size=4 exceeds the number of classes"):
        AverageK(4).calibrate(proba, predicted=pred)


def test_node_shape_survives_pickling_without_its_cache():
    """Check NodeSets drops its cached masks when pickled and rebuilds them."""
    import pickle

    shape = NodeSets(Hierarchy({0: "x", 1: "x", 2: None}))
    proba, pred = np.array([[0.5, 0.3, 0.2]]), np.array([0])
    before = shape.sets(proba, pred, 0.7)
    clone = pickle.loads(pickle.dumps(shape))
    assert "_masks_cache" not in vars(clone)
    np.testing.assert_array_equal(clone.sets(proba, pred, 0.7), before)
    np.testing.assert_array_equal(before, [[True, True, False]])


def test_emd_takes_interval_strategy_objects():
    """Check EMD accepts SplitConformal / AverageK with IntervalSets of its scale, equal to the strings."""
    X, y = _data(n_classes=4, n=300)
    scale = Ordinal([0, 1, 2, 3])
    named = EMDOrdinalRegressor(scale, set_rule="conformal", **FAST).fit(X, y)
    obj = EMDOrdinalRegressor(
        scale, set_rule=SplitConformal(LAC(), shape=IntervalSets(scale)), **FAST
    ).fit(X, y)
    np.testing.assert_array_equal(named.predict_set(X), obj.predict_set(X))
    sized = EMDOrdinalRegressor(scale, set_size=2.0, **FAST).fit(X, y)
    sized_obj = EMDOrdinalRegressor(
        scale, set_rule=AverageK(2.0, shape=IntervalSets(scale)), **FAST
    ).fit(X, y)
    np.testing.assert_array_equal(sized.predict_set(X), sized_obj.predict_set(X))
    # A shape over another scale, or plain subsets, is refused with the fix.
    other = IntervalSets(Ordinal([3, 2, 1, 0]))
    with pytest.raises(ValueError, match="IntervalSets.*class_structure"):
        EMDOrdinalRegressor(scale, set_rule=SplitConformal(LAC(), shape=other), **FAST).fit(X, y)
    with pytest.raises(ValueError, match="shape=IntervalSets"):
        EMDOrdinalRegressor(scale, set_rule=SplitConformal(LAC()), **FAST).fit(X, y)
