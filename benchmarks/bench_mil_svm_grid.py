"""How member D of ``MILConveyance``'s default depends on its two settings.

A development study for issue 11. Member D is an RBF-kernel SVM
(:class:`sklearn.svm.SVC`) on member A's standardised MILES bag features,
with ``C = 10`` and ``gamma='scale'`` (one over the number of features
times their variance). Both were fixed in one development session on the
stored folds, so this script shows what the other nearby settings give on
the same folds: D alone (no stacking, no choice), for ``C`` in 1, 10, 100
and the width ``gamma='scale'`` times 0.5, 1 and 2, honest on the stored
5 x 10 folds (everything is fitted on the training bags of each fold; the
features are those of ``bench_mil_stacking.py``).

Run from the repository root::

    python benchmarks/bench_mil_svm_grid.py --n-jobs 2 \\
        --output benchmarks/results_committed/mil_svm_grid_5x10.json
"""

import argparse
import time

import numpy as np
import torch
from joblib import Parallel, delayed
from sklearn.svm import SVC

from _mil_common import run_header, stored_folds, write_results
from bench_mil_convex import DATASETS
from bench_mil_stacking import CANDIDATES, _features, prepare_fold

C_GRID = (1.0, 10.0, 100.0)
GAMMA_FACTORS = (0.5, 1.0, 2.0)


def run_fold(name, index, train, test):
    torch.set_num_threads(1)
    fold = prepare_fold(name, index, train, test)
    a = CANDIDATES["A: bag term, standardised bag features"]
    gamma = fold["train"]["gammas"][a["metric"]] * a["gamma_factor"]
    x_train = _features(fold["train"], gamma, a)[0].double()
    x_test = _features(fold["test"], gamma, a)[0].double()
    mean, std = x_train.mean(0), x_train.std(0).clamp_min(1e-3)
    x_train, x_test = ((x_train - mean) / std).numpy(), ((x_test - mean) / std).numpy()
    scale = 1.0 / (x_train.shape[1] * x_train.var())  # gamma='scale'
    accuracy = {}
    for c in C_GRID:
        for factor in GAMMA_FACTORS:
            svm = SVC(C=c, gamma=factor * scale).fit(x_train, fold["y_train"])
            accuracy[f"C={c:g}, gamma=scale x {factor:g}"] = float(
                (svm.predict(x_test) == fold["y_test"]).mean())
    return index, accuracy


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS))
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--n-jobs", type=int, default=1)
    parser.add_argument("--output", default="benchmarks/results/mil_svm_grid_5x10.json")
    args = parser.parse_args(argv)
    report = run_header(settings={"C": C_GRID, "gamma_factors": GAMMA_FACTORS,
                                  "repetitions": args.repetitions})
    start = time.perf_counter()
    summary = {}
    for name in args.datasets:
        folds = stored_folds(name, args.repetitions)
        rows = sorted(Parallel(n_jobs=args.n_jobs)(
            delayed(run_fold)(name, i, tr, te) for i, (tr, te) in enumerate(folds)))
        summary[name] = {
            setting: {"mean": round(100 * float(np.mean([r[1][setting] for r in rows])), 2),
                      "per_fold": [r[1][setting] for r in rows]}
            for setting in rows[0][1]
        }
    report["wall_seconds"] = round(time.perf_counter() - start, 1)
    report["summary"] = summary
    names = list(summary)
    print(f"| D alone, 5 x 10 folds, honest | {' | '.join(n.upper() for n in names)} |")
    print(f"|---|{'---|' * len(names)}")
    for setting in summary[names[0]]:
        print(f"| {setting} | " + " | ".join(f"{summary[n][setting]['mean']:.1f}"
                                             for n in names) + " |")
    write_results(report, args.output)
    print("wrote", args.output, f"({report['wall_seconds']} s)")


if __name__ == "__main__":
    main()
