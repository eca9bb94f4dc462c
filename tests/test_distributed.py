"""Many fits on a Dask cluster through joblib: same results as the default backend.

Needs the optional extra ``skstruct[distributed]`` (CI installs it). The
cluster runs on the loopback interface only, with 2 worker processes of one
thread each; Dask's nanny starts workers with OMP_NUM_THREADS=1, so torch
uses one thread per worker and 2 workers on 2 cores do not oversubscribe.
"""

import logging

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_score
from sklearn.preprocessing import StandardScaler

from skstruct import ConveyanceClassifier, MILConveyance
from skstruct.structures import Ordinal

distributed = pytest.importorskip(
    "distributed", reason="the Dask test needs the extra: pip install 'skstruct[distributed]'"
)
joblib = pytest.importorskip("joblib")


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        silence_logs=logging.ERROR,
    )
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


def _grid():
    X, y = load_iris(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    clf = ConveyanceClassifier(
        class_structure=Ordinal([0, 1, 2]), hidden_layer_sizes=(16,), max_epochs=10,
        batch_size=32, lr=1e-2, random_state=0,
    )
    grid = GridSearchCV(clf, {"alpha": [0.1, 1.0], "beta": [1.0, 10.0]}, cv=3, n_jobs=2)
    return grid, X, y


def _mil_data():
    rng = np.random.RandomState(0)
    bags, y = [], []
    for i in range(40):
        bag = rng.randn(rng.randint(1, 6), 4)
        if i % 2:
            bag[0] += 3.0
        bags.append(bag)
        y.append(i % 2)
    return bags, np.array(y)


def _mil_estimator():
    return MILConveyance(max_epochs=20, random_state=0)


def test_grid_search_and_mil_cv_on_dask_equal_default_backend(client):
    """Check that GridSearchCV and a 10-fold MIL CV give identical results on Dask."""
    grid, X, y = _grid()
    grid.fit(X, y)
    expected = grid.cv_results_["mean_test_score"]
    bags, y_bags = _mil_data()
    cv = StratifiedKFold(10, shuffle=True, random_state=0)
    expected_mil = cross_val_score(_mil_estimator(), bags, y_bags, cv=cv, n_jobs=2)

    with joblib.parallel_backend("dask"):
        grid_dask, _, _ = _grid()
        grid_dask.fit(X, y)
        mil_dask = cross_val_score(_mil_estimator(), bags, y_bags, cv=cv, n_jobs=2)
    np.testing.assert_array_equal(grid_dask.cv_results_["mean_test_score"], expected)
    np.testing.assert_array_equal(mil_dask, expected_mil)
    assert grid_dask.best_params_ == grid.best_params_
    # The workers really did the fits.
    assert sum(client.run(lambda: 1).values()) == 2
