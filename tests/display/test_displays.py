"""Display objects: they draw (Agg backend) and carry the right numbers."""

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from sklearn.datasets import load_iris  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from skstruct import (  # noqa: E402
    ConveyanceClassifier,
    EMDOrdinalRegressor,
    Hierarchy,
    MILConveyance,
    Ordinal,
    predict_set,
)
from skstruct.display import (  # noqa: E402
    HierarchicalDistanceDisplay,
    MILAttentionDisplay,
    OrdinalConfusionMatrixDisplay,
    SetSizeDisplay,
)
from skstruct.metrics import (  # noqa: E402
    average_hierarchical_distance_top_k,
    mean_absolute_rank_error,
    mean_set_size,
    set_coverage,
)
from skstruct.pipeline import make_pipeline  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def test_set_size_from_predictions_counts_and_coverage():
    """Check the histogram counts and the coverage of each set size."""
    sets = np.array([[1, 0, 0], [1, 1, 0], [0, 1, 1], [0, 0, 1], [1, 1, 1]], dtype=bool)
    y = ["a", "b", "a", "c", "b"]
    disp = SetSizeDisplay.from_predictions(y, sets, classes=["a", "b", "c"])
    np.testing.assert_array_equal(disp.sizes, [1, 2, 3])
    np.testing.assert_array_equal(disp.counts, [2, 2, 1])
    np.testing.assert_allclose(disp.coverage_by_size, [1.0, 0.5, 1.0])
    assert disp.coverage == pytest.approx(0.8)
    assert disp.mean_size == pytest.approx(9 / 5)
    heights = [p.get_height() for p in disp.ax_.patches]
    assert heights == [2, 2, 1]
    assert disp.figure_ is disp.ax_.figure


def test_set_size_from_estimator_through_a_pipeline(iris):
    """Check that from_estimator predicts sets through a pipeline and draws on ax."""
    X, y = iris
    pipe = make_pipeline(StandardScaler(), ConveyanceClassifier(
        max_epochs=3, set_size=2, random_state=0)).fit(X, y)
    fig, ax = plt.subplots()
    disp = SetSizeDisplay.from_estimator(pipe, X, y, ax=ax)
    sets = predict_set(pipe, X)
    assert disp.ax_ is ax
    assert disp.coverage == pytest.approx(set_coverage(y, sets, classes=[0, 1, 2]))
    assert disp.mean_size == pytest.approx(mean_set_size(y, sets))
    assert disp.counts.sum() == len(y)
    assert "ConveyanceClassifier" in ax.get_title()


def test_ordinal_confusion_uses_the_scale_order_not_the_sorted_labels():
    """Check that rows and columns follow the scale (lowest first), not sorting."""
    scale = Ordinal(["poor", "fair", "good"])   # sorted order would be fair, good, poor
    y_true = ["poor", "poor", "fair", "good", "good"]
    y_pred = ["poor", "good", "fair", "fair", "good"]
    disp = OrdinalConfusionMatrixDisplay.from_predictions(y_true, y_pred, structure=scale,
                                                          normalize=None)
    assert disp.levels.tolist() == ["poor", "fair", "good"]
    np.testing.assert_array_equal(disp.confusion_matrix, [[1, 0, 1], [0, 1, 0], [0, 1, 1]])
    assert disp.mean_absolute_rank_error == pytest.approx(
        mean_absolute_rank_error(y_true, y_pred, structure=scale))
    assert [t.get_text() for t in disp.ax_.get_xticklabels()] == ["poor", "fair", "good"]
    rows = OrdinalConfusionMatrixDisplay.from_predictions(y_true, y_pred, structure=scale,
                                                          plot=False)
    np.testing.assert_allclose(rows.confusion_matrix.sum(axis=1), 1.0)
    with pytest.raises(ValueError, match="normalize"):
        OrdinalConfusionMatrixDisplay.from_predictions(y_true, y_pred, structure=scale,
                                                       normalize="rows")


def test_ordinal_confusion_from_estimator(iris):
    """Check from_estimator on an EMD regressor and the error for a flat estimator."""
    X, y = iris
    scale = Ordinal([2, 0, 1])
    est = EMDOrdinalRegressor(scale, max_epochs=3, random_state=0).fit(X, y)
    disp = OrdinalConfusionMatrixDisplay.from_estimator(est, X, y, normalize=None)
    assert disp.levels.tolist() == [2, 0, 1]
    assert disp.counts.sum() == len(y)
    assert disp.mean_absolute_rank_error == pytest.approx(
        mean_absolute_rank_error(y, est.predict(X), structure=scale))
    flat = ConveyanceClassifier(max_epochs=1, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="Ordinal"):
        OrdinalConfusionMatrixDisplay.from_estimator(flat, X, y)


def test_hierarchical_distance_bars_match_the_metric(iris):
    """Check the distance at each k against the metric, and the severity in the title."""
    X, y = iris
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    tree = Hierarchy({"setosa": "a", "versicolor": "b", "virginica": "b"})
    est = ConveyanceClassifier(tree, max_epochs=3, random_state=0).fit(X, names)
    disp = HierarchicalDistanceDisplay.from_estimator(est, X, names, ks=[1, 2, 3, 9])
    proba = est.predict_proba(X)
    np.testing.assert_array_equal(disp.ks, [1, 2, 3])   # k above the leaf count is dropped
    for k, d in zip(disp.ks, disp.distances):
        assert d == pytest.approx(average_hierarchical_distance_top_k(
            names, proba, hierarchy=tree, k=int(k)))
    assert disp.accuracy == pytest.approx(est.score(X, names))
    assert [b.get_height() for b in disp.bars_] == pytest.approx(list(disp.distances))
    assert "severity" in disp.ax_.get_legend().get_texts()[0].get_text()


def test_mil_attention_from_estimator_matches_attention_weights():
    """Check that the bars are the estimator's attention weights for the bag."""
    rng = np.random.RandomState(0)
    bags = [rng.normal(size=(rng.randint(2, 6), 4)) + (i % 2) for i in range(16)]
    y = np.array([i % 2 for i in range(16)])
    est = MILConveyance(embedding="mlp", hidden_layer_sizes=(8,), attention_size=4,
                        instance_head_sizes=(), max_epochs=2, batch_size=4,
                        random_state=0).fit(bags, y)
    disp = MILAttentionDisplay.from_estimator(est, bags[3], y[3])
    np.testing.assert_allclose(disp.attention, est.attention_weights([bags[3]])[0])
    np.testing.assert_allclose(disp.instance_scores,
                               est.predict_instance_proba([bags[3]])[0][:, 1])
    assert disp.bag_proba == pytest.approx(est.predict_proba([bags[3]])[0, 1])
    assert disp.attention.sum() == pytest.approx(1.0)
    assert [p.get_height() for p in disp.ax_.patches] == pytest.approx(list(disp.attention))
    assert disp.score_ax_ is not None
    with pytest.raises(ValueError, match="positive_label"):
        MILAttentionDisplay.from_estimator(est, bags[3], positive_label="x")


def test_mil_attention_rejects_bad_weights():
    """Check the messages for negative weights and mismatched scores."""
    with pytest.raises(ValueError, match="non-negative"):
        MILAttentionDisplay.from_predictions([0.5, -0.1])
    with pytest.raises(ValueError, match="one score per instance"):
        MILAttentionDisplay.from_predictions([0.5, 0.5], [0.1])
