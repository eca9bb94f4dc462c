"""Pieces shared by the MIL benchmark scripts (run as ``python benchmarks/<script>.py``)."""

import json
import os
import sys

import numpy as np

from skstruct.datasets import load_mil_benchmark
from skstruct.reproduce import benchmark_folds, honest_scores


def honest_accuracy(estimator, data, folds, repetitions, n_jobs):
    """Honest accuracy of ``estimator`` on ``folds``, per fold and summarised.

    Returns ``(scores, mean, std, repetition_means)``: the test accuracy of
    every fold (from :func:`skstruct.reproduce.honest_scores`, i.e. sklearn's
    ``cross_validate``), and their mean, standard deviation and per-repetition
    means in %. ``folds`` holds ``repetitions`` blocks of equally many folds.
    """
    scores = [float(v) for v in honest_scores(estimator, data, folds, n_jobs=n_jobs)["test_score"]]
    per_rep = np.asarray(scores).reshape(repetitions, -1).mean(1)
    return (scores, 100 * float(np.mean(scores)), 100 * float(np.std(scores)),
            [100 * float(v) for v in per_rep])


def stored_folds(name, repetitions):
    """The stored (train, test) folds of data set ``name``; exits if it has none.

    The development studies compare their rows fold for fold with the
    estimator's results files, which use the stored folds.
    """
    folds, how = benchmark_folds(load_mil_benchmark(name), repetitions=repetitions)
    if how != "stored folds":
        raise SystemExit(f"{name}: no stored folds ({how}); this study needs them.")
    return folds


def run_header(**fields):
    """The head of a results file: the command line, the machine's load, then ``fields``."""
    return {"command": "python " + " ".join(sys.argv),
            "machine": f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start",
            **fields}


def write_results(results, path):
    """Write ``results`` as JSON to ``path``, creating its folder."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w") as fh:
        json.dump(results, fh, indent=1)
