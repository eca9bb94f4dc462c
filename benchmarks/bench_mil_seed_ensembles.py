"""Seed ensembles of the vote's members, from the fits of two ``bench_mil_vote.py`` runs.

``bench_mil_vote.py`` keeps every member's prediction (and each network's
probability) for every test bag. Two of its runs on the same stored 5 x 10
folds differ only in ``--seed`` (0 and 1), so averaging a network over the
two seeds costs no new fit. The combinations below were written here before
this script was first run, and are all reported (none is picked on the test
folds):

* ``MI-Net, two seeds`` (and the same for ``defaults`` and ``defaults on
  arcsinh``): the mean ``predict_proba`` of the member's two fits;
* ``majority of the five, networks over two seeds``: the majority of the
  five members of ``mil_vote()``, each network replaced by its two-seed
  mean probability, the SVMs from seed 0 (``mil_vote()``'s default);
* ``majority of the ten fits``: all five members of both seeds; a 5-5 tie
  goes to the mean probability of the six network fits.

Each is paired fold by fold with the mean of the two seeds' ``majority of
the five`` (what ``mil_vote()`` scores with ``random_state=0`` and ``1``),
which costs half the network fits of a two-seed ensemble.

Usage::

    python benchmarks/bench_mil_seed_ensembles.py \\
        benchmarks/results_committed/mil_vote_7members_5x10.json \\
        benchmarks/results_committed/mil_vote_seed1_7members_5x10.json \\
        --output benchmarks/results_committed/mil_seed_ensembles_5x10.json
"""

import argparse
import json
import os

import numpy as np

from _mil_common import run_header, write_results

HERE = os.path.dirname(os.path.abspath(__file__))
FIVE = ("defaults", "MI-Net", "set-kernel SVM", "defaults on arcsinh", "set-kernel SVM on arcsinh")
NETWORKS = ("defaults", "MI-Net", "defaults on arcsinh")
DATASETS = ("musk1", "musk2", "elephant", "fox", "tiger")


def fold_predictions(runs, name, k):
    """Per member and seed: the test predictions and (networks) P(y = 1) of fold ``k``."""
    pred, proba = {}, {}
    for seed, run in enumerate(runs):
        fits = run["datasets"][name]["fits"]
        for member in FIVE:
            fit = fits[f"{k}/{member}"]
            pred[member, seed] = np.asarray(fit["pred"])
            if member in NETWORKS:
                proba[member, seed] = np.asarray(fit["proba1"])
    return pred, proba


def combinations(pred, proba):
    """Test labels of every combination (and of the baseline) for one fold."""
    out = {}
    two_seed = {m: (proba[m, 0] + proba[m, 1]) / 2 for m in NETWORKS}
    for m in NETWORKS:
        out[f"{m}, two seeds"] = (two_seed[m] > 0.5).astype(int)
    votes = sum((two_seed[m] > 0.5).astype(int) for m in NETWORKS)
    votes = votes + pred["set-kernel SVM", 0] + pred["set-kernel SVM on arcsinh", 0]
    out["majority of the five, networks over two seeds"] = (votes >= 3).astype(int)
    ten = sum(pred[m, s] for m in FIVE for s in (0, 1))
    mean_p = sum(proba[m, s] for m in NETWORKS for s in (0, 1)) / 6
    out["majority of the ten fits"] = np.where(ten == 5, mean_p > 0.5, ten > 5).astype(int)
    for s in (0, 1):
        out[f"majority of the five, seed {s}"] = (
            sum(pred[m, s] for m in FIVE) >= 3).astype(int)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("seed0", help="bench_mil_vote.py results with --seed 0")
    parser.add_argument("seed1", help="the same with --seed 1, on the same folds")
    parser.add_argument("--output",
                        default=os.path.join(HERE, "results", "mil_seed_ensembles.json"))
    args = parser.parse_args()
    runs = []
    for path, seed in ((args.seed0, 0), (args.seed1, 1)):
        with open(path) as fh:
            run = json.load(fh)
        if run.get("seed", 0) != seed:
            raise SystemExit(f"{path}: its fits have seed {run.get('seed', 0)}, not {seed}")
        runs.append(run)
    results = run_header(inputs=[args.seed0, args.seed1], datasets={})
    for name in DATASETS:
        entries = [run["datasets"][name] for run in runs]
        first, second = entries
        if first["folds"] != second["folds"] or first["target"] != second["target"]:
            raise SystemExit(f"{name}: the two runs have different folds or labels")
        y, folds = np.asarray(entries[0]["target"]), entries[0]["folds"]
        per_fold = {}
        for k, test in enumerate(folds):
            labels = combinations(*fold_predictions(runs, name, k))
            for combo, pred in labels.items():
                per_fold.setdefault(combo, []).append(float((pred == y[test]).mean()))
        baseline = (np.asarray(per_fold["majority of the five, seed 0"])
                    + np.asarray(per_fold["majority of the five, seed 1"])) / 2
        summary = {}
        for combo, accs in per_fold.items():
            diff = 100 * (np.asarray(accs) - baseline)
            summary[combo] = {"accuracy": 100 * float(np.mean(accs)),
                              "vs_majority_of_five_two_seed_mean": float(diff.mean()),
                              "se": float(diff.std(ddof=1) / np.sqrt(len(diff)))}
        results["datasets"][name] = {"folds": len(folds), "summary": summary, "per_fold": per_fold}
        print(name, "; ".join(
            f"{c} {v['accuracy']:.1f} ({v['vs_majority_of_five_two_seed_mean']:+.1f}"
            f" ± {v['se']:.1f})" for c, v in summary.items()))
    write_results(results, args.output)
    print(f"written to {args.output}")


if __name__ == "__main__":
    main()
