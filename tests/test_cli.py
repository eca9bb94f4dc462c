"""``python -m skstruct reproduce mil``: protocols, the table, exit codes and bad options."""

import io
import json
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
from sklearn.utils import Bunch

from skstruct import MILConveyance
from skstruct._cli import main, reproduce_mil
from skstruct.datasets import load_mil_benchmark
from skstruct.reproduce import (
    benchmark_folds,
    honest_scores,
    mil_vote,
    paper_protocol_fold,
    reference_params,
)

TINY = dict(embedding="mlp", hidden_layer_sizes=(8,), attention_size=4, instance_head_sizes=(),
            max_epochs=2, batch_size=8, random_state=0, n_threads=1)


@pytest.fixture(scope="module")
def musk1():
    return load_mil_benchmark("musk1")


def _args(**kwargs):
    defaults = dict(
        datasets=["musk1"], protocol="honest", repetitions=1, folds=2, epochs=2,
        batch_size=8, lr=None, hidden=[8], embedding="mlp", device="cpu", n_jobs=1, threads=1,
        cv="stored", seed=0, data_home=None, output=None, quiet=True, scheduler=None,
        model="milconveyance",
    )
    return SimpleNamespace(**{**defaults, **kwargs})


def test_paper_protocol_fold_records_the_test_curve(musk1):
    """Check that the last point of the per-epoch test curve is the final model's score."""
    (train, test), = benchmark_folds(musk1)[0][:1]
    params = reference_params("musk1", **{k: v for k, v in TINY.items() if k != "batch_size"},
                              batch_size=8)
    params["max_epochs"] = 3
    result = paper_protocol_fold(musk1.data, musk1.target, train, test, params)
    assert result["n_epochs"] == 3
    assert result["best"] >= result["last"]
    est = MILConveyance(**params).fit([musk1.data[i] for i in train], musk1.target[train])
    assert est.score([musk1.data[i] for i in test], musk1.target[test]) == result["last"]


@pytest.mark.parametrize(
    "params",
    [TINY, dict(max_epochs=10, random_state=0, n_threads=1)],
    ids=["mlp", "prototypes"],
)
def test_honest_scores_never_see_the_test_labels(musk1, params):
    """Check that permuting the labels of the test bags leaves every test prediction unchanged."""
    folds, how = benchmark_folds(musk1)
    assert how == "stored folds" and len(folds) == 10
    fold = folds[3]
    clf = MILConveyance(**params)
    first = honest_scores(clf, musk1, [fold], return_estimator=True)
    y = musk1.target.copy()
    rng = np.random.RandomState(0)
    y[fold[1]] = 1 - y[fold[1]][rng.permutation(len(fold[1]))]
    assert not np.array_equal(y, musk1.target)
    permuted = Bunch(**{**musk1, "target": y})
    second = honest_scores(clf, permuted, [fold], return_estimator=True)
    test_bags = [musk1.data[i] for i in fold[1]]
    np.testing.assert_array_equal(
        first["estimator"][0].predict_proba(test_bags),
        second["estimator"][0].predict_proba(test_bags),
    )


def test_reproduce_prints_the_labelled_table(musk1, tmp_path):
    """Check the honest and optimistic columns, the published bars and the JSON file."""
    out = io.StringIO()
    outcome = reproduce_mil(_args(protocol="both", output=str(tmp_path / "r.json")),
                            out=out, progress=out)
    text = out.getvalue()
    res = outcome["results"]["musk1"]
    assert len(res["honest"]) == 2 and len(res["best"]) == 2
    assert "honest (MILConveyance defaults, cross_validate)" in text
    assert "best epoch on test (optimistic)" in text
    assert "90.0" in text and "91.7" in text  # honest: gated attention 2018, Loss-Attention
    assert "95.2" in text and "95.6 / 80.1" in text  # paper, public code (SPEC section 4)
    saved = json.loads((tmp_path / "r.json").read_text())
    assert saved["results"]["musk1"]["honest"] == res["honest"]
    assert outcome["missing"] == []


def test_missing_data_set_exits_non_zero(tmp_path, capsys):
    """Check that a requested data set that is not found makes the command fail."""
    status = main(["reproduce", "mil", "--datasets", "tiger", "--data-home", str(tmp_path),
                   "--folds", "2", "--epochs", "1", "--quiet", "--n-jobs", "1"])
    assert status == 1
    assert "not found" in capsys.readouterr().out


def test_datasets_space_or_comma_separated():
    """Check that --datasets takes space-separated names, commas, or both."""
    from skstruct._cli import _dataset_names, _parser

    args = _parser().parse_args(["reproduce", "mil", "--datasets", "musk1", "FOX,tiger"])
    assert _dataset_names(args.datasets) == ["musk1", "fox", "tiger"]
    assert _dataset_names("musk1,musk2") == ["musk1", "musk2"]


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
    with pytest.raises(SystemExit, match="--repetitions must be <= 5"):
        main(["reproduce", "mil", "--repetitions", "6"])


def test_command_runs_from_another_directory(tmp_path):
    """Check the installed command from an unrelated directory (packaged data, exit 0)."""
    proc = subprocess.run(
        [sys.executable, "-m", "skstruct", "reproduce", "mil", "--datasets", "musk1",
         "--folds", "2", "--epochs", "5", "--n-jobs", "1", "--quiet"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "MUSK1" in proc.stdout and "skstruct" in proc.stdout


def _tiny_vote(**kwargs):
    """``mil_vote`` with one-epoch small networks and a one-point SVM grid (plumbing only)."""
    small = dict(max_epochs=1, hidden_layer_sizes=(8,))
    params = {"milconveyance__attention_size": 4, "milconveyance__instance_head_sizes": ()}
    for prefix in ("milconveyance", "milconveyance_arcsinh__milconveyance",
                   "minet__milconveyance"):
        params.update({f"{prefix}__{k}": v for k, v in small.items()})
    for prefix in ("set_kernel_svm", "set_kernel_svm_arcsinh__setkernelsvc"):
        params.update({f"{prefix}__gammas": (1.0,), f"{prefix}__Cs": (1.0,)})
    return mil_vote(**kwargs).set_params(**params)


def test_mil_vote_is_the_majority_of_its_five_members(musk1):
    """Check the members, their seeds, and that predict is the majority of their predictions."""
    vote = mil_vote(random_state=3, n_threads=1)
    assert [name for name, _ in vote.estimators] == [
        "milconveyance", "milconveyance_arcsinh", "minet", "set_kernel_svm",
        "set_kernel_svm_arcsinh"]
    seeds = {k: v for k, v in vote.get_params().items() if k.endswith("random_state")}
    assert len(seeds) == 5 and set(seeds.values()) == {3}
    assert vote.get_params()["minet__milconveyance__instance_weight"] == 0.0
    (train, test), = benchmark_folds(musk1)[0][:1]
    bags = list(musk1.data)
    vote = _tiny_vote(n_threads=1).fit([bags[i] for i in train], musk1.target[train])
    test_bags = [bags[i] for i in test]
    members = np.array([est.predict(test_bags) for est in vote.estimators_])
    np.testing.assert_array_equal(vote.predict(test_bags), (members.sum(0) >= 3).astype(int))


def test_reproduce_model_vote(musk1, monkeypatch):
    """Check that --model vote scores the vote by cross_validate and labels the table."""
    monkeypatch.setattr("skstruct._cli.mil_vote", _tiny_vote)
    out = io.StringIO()
    args = _args(model="vote", epochs=None, batch_size=None, hidden=None, embedding=None)
    outcome = reproduce_mil(args, out=out, progress=out)
    text = out.getvalue()
    assert len(outcome["results"]["musk1"]["honest"]) == 2
    assert "cross_validate(VotingClassifier(majority of milconveyance, " in text
    assert "honest (majority vote of five, cross_validate)" in text


def test_model_vote_refuses_network_flags():
    """Check that the vote does not silently ignore the flags of a single network."""
    with pytest.raises(SystemExit, match="--model vote trains each member with its own "
                                         "settings; --epochs, --hidden apply"):
        main(["reproduce", "mil", "--model", "vote", "--epochs", "2", "--hidden", "8",
              "--quiet"])


def test_hidden_needs_the_mlp_embedding():
    """Check that --hidden is refused for the default embedding, which has no MLP."""
    with pytest.raises(SystemExit, match="--hidden sets the instance MLP of --embedding mlp"):
        main(["reproduce", "mil", "--hidden", "8", "--quiet"])


def test_default_command_names_the_prototype_embedding(musk1):
    """Check that the honest line shows the default estimator's embedding and its values."""
    out = io.StringIO()
    args = _args(epochs=3, batch_size=None, hidden=None, embedding=None)
    reproduce_mil(args, out=out, progress=out)
    text = out.getvalue()
    assert ("MILConveyance(embedding='prototypes', n_prototypes=1000, stacking='auto' "
            "(3 models stacked, or an SVM), max_epochs=3, "
            "batch_size='auto' (all bags), lr='auto' (1.0), optimizer='auto' (lbfgs), "
            "...)") in text
