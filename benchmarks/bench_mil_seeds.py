"""Seed sensitivity of MILConveyance under the honest protocol.

The same stored 10 folds (one repetition), the same estimator, several
``random_state`` values: how far does the 10-fold mean move with the seed
alone? Scored by sklearn's ``cross_validate`` (through
:func:`skstruct.reproduce.honest_scores`), so nothing is chosen on a test
fold. Compares the default single network with the ensembles of
``n_estimators`` (see ``bench_mil_levers.py`` for the variants).

Usage::

    python benchmarks/bench_mil_seeds.py --datasets fox --seeds 0 1 2 3

Writes ``benchmarks/results_committed/mil_seeds.json`` (``--output``) and
prints, per variant and data set, the 10-fold mean for every seed and their
range.
"""

import argparse
import json
import os
import sys
import time

import numpy as np

from skstruct import MILConveyance
from skstruct.datasets import load_mil_benchmark
from skstruct.reproduce import benchmark_folds, honest_scores

HERE = os.path.dirname(os.path.abspath(__file__))
MEDIUM = dict(hidden_layer_sizes=(256, 256), attention_size=128, instance_head_sizes=(256,))
# The gated attention network (embedding='mlp', the defaults when this was measured).
VARIANTS = {
    "defaults (one 512-512 network)": dict(embedding="mlp"),
    "n_estimators=3 medium networks": dict(embedding="mlp", n_estimators=3, **MEDIUM),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["fox"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS))
    parser.add_argument("--n-jobs", type=int, default=-1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output", default=os.path.join(HERE, "results_committed", "mil_seeds.json"))
    args = parser.parse_args()
    results = {"command": "python " + " ".join(sys.argv),
               "machine": f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start",
               "variants": {}}
    start = time.perf_counter()
    for variant in args.variants:
        per_set = {}
        for name in args.datasets:
            data = load_mil_benchmark(name)
            folds, _ = benchmark_folds(data, repetitions=1)
            means = {}
            for seed in args.seeds:
                clf = MILConveyance(random_state=seed, n_threads=args.threads, **VARIANTS[variant])
                scores = honest_scores(clf, data, folds, n_jobs=args.n_jobs)
                means[str(seed)] = 100 * float(np.mean(scores["test_score"]))
                print(f"{variant:34s} {name:8s} seed {seed}: {means[str(seed)]:5.1f}", flush=True)
            values = list(means.values())
            per_set[name] = dict(means=means, mean=float(np.mean(values)),
                                 range=float(np.max(values) - np.min(values)))
            results["variants"][variant] = per_set
            results["wall_seconds"] = time.perf_counter() - start
            with open(args.output, "w") as fh:
                json.dump(results, fh, indent=1)
    for variant, per_set in results["variants"].items():
        for name, r in per_set.items():
            print(f"{variant:34s} {name:8s} mean {r['mean']:5.1f}, range {r['range']:4.1f} "
                  f"over seeds {list(r['means'])}")
    print(f"\n{results['wall_seconds']:.0f} s; written to {args.output}")


if __name__ == "__main__":
    main()
