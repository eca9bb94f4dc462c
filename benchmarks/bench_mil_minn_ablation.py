"""What separates MI-Net from MILConveyance on MUSK: one choice at a time, honestly.

``bench_mil_minns.py`` shows the standalone MI-Net (Wang et al. 2018) 7 points
ahead of ``MILConveyance(embedding='mlp')`` on MUSK2 under the same honest protocol, while
MI-Net's recipe copied into ``MILConveyance``'s training path did not close
the gap. This script starts from MI-Net as published and changes one of the
choices ``MILConveyance`` makes differently at a time, then all of them
together, each scored by sklearn's ``cross_validate`` on the stored folds
(:func:`skstruct.reproduce.honest_scores`):

* ``max_grad_norm=1.0``: gradient clipping at 1.0 (``MILConveyance``'s
  default; MI-Net does not clip);
* ``init='torch'``: PyTorch's default initialisation of every linear layer
  in place of Glorot uniform weights and zero biases;
* ``pooling='attention'``: gated attention (128) over the instance features
  in place of their maximum;
* ``optimizer='adam', lr=1e-3``: Adam with weight decay 1e-4 on every
  parameter and no learning-rate decay (``MILConveyance``'s optimiser at its
  one-bag-per-step learning rate) in place of SGD with Nesterov momentum;
* ``standardize=False``: the instance features as given (``MILConveyance``
  does not scale them) in place of standardised on the training instances;
* ``all but standardize``: the four network and training choices together.

Usage::

    python benchmarks/bench_mil_minn_ablation.py                  # MUSK2, 5 x 10 folds
    python benchmarks/bench_mil_minn_ablation.py --datasets musk1 musk2 --repetitions 1

Writes ``benchmarks/results_committed/mil_minn_ablation.json`` (``--output``)
with every fold's accuracy, and prints bag accuracy (%) per step and its
paired difference from MI-Net as published (± standard error over folds).
"""

import argparse
import os
import time

import numpy as np

from skstruct.datasets import load_mil_benchmark
from skstruct.reproduce import benchmark_folds

from _mil_common import honest_accuracy, run_header, write_results
from bench_mil_minns import MINNClassifier

HERE = os.path.dirname(os.path.abspath(__file__))
ADAM = dict(optimizer="adam", lr=1e-3)
STEPS = {
    "MI-Net as published": {},
    "max_grad_norm=1.0": dict(max_grad_norm=1.0),
    "init='torch'": dict(init="torch"),
    "pooling='attention'": dict(pooling="attention"),
    "optimizer='adam', lr=1e-3": ADAM,
    "standardize=False": dict(standardize=False),
    "all but standardize": dict(max_grad_norm=1.0, init="torch", pooling="attention", **ADAM),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", nargs="+", default=list(STEPS), choices=list(STEPS))
    parser.add_argument("--datasets", nargs="+", default=["musk2"])
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--output", default=os.path.join(HERE, "results_committed", "mil_minn_ablation.json"))
    args = parser.parse_args()
    results = run_header(repetitions=args.repetitions,
                         protocol="sklearn cross_validate on the stored folds; last of 50 epochs",
                         steps={k: STEPS[k] for k in args.steps}, results={})
    start = time.perf_counter()
    for name in args.datasets:
        data = load_mil_benchmark(name)
        folds, how = benchmark_folds(data, repetitions=args.repetitions)
        reference = None
        for step in args.steps:
            t0 = time.perf_counter()
            scores, mean, std, per_rep = honest_accuracy(
                MINNClassifier("MI-Net", **STEPS[step]), data, folds, args.repetitions, args.n_jobs)
            row = dict(folds=how, honest=scores, mean=mean, std=std, repetition_means=per_rep,
                       wall_seconds=time.perf_counter() - t0)
            if step == "MI-Net as published":
                reference = np.asarray(scores)
            elif reference is not None:
                diff = 100 * (np.asarray(scores) - reference)
                row["difference"] = float(diff.mean())
                row["difference_se"] = float(diff.std(ddof=1) / np.sqrt(len(diff)))
            results["results"].setdefault(name, {})[step] = row
            extra = (f"  {row['difference']:+5.1f} +- {row['difference_se']:.1f}"
                     if "difference" in row else "")
            print(f"{name:8s} {step:28s} {mean:5.1f} +- {std:4.1f}{extra} "
                  f"({row['wall_seconds']:.0f} s)", flush=True)
            results["wall_seconds"] = time.perf_counter() - start
            write_results(results, args.output)
    print(f"\n{results['wall_seconds']:.0f} s; written to {args.output}")


if __name__ == "__main__":
    main()
