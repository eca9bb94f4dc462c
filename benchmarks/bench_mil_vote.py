"""Do three different MIL models, voting, beat each of them? Honest, on the stored folds.

Three members of different kinds, each fitted on the training bags of a
fold only (the honest protocol: nothing is chosen on a test fold):

* ``defaults``: ``MILConveyance(random_state=0)`` (gated attention and the
  Conveyance instance term, raw features);
* ``MI-Net``: ``bench_mil_levers.minet_recipe(instance_weight=0)``, MI-Net
  (Wang et al. 2018) trained by ``MILConveyance`` behind a ``StandardScaler``
  fitted on the training instances;
* ``set-kernel SVM``: ``bench_mil_baselines.SetKernelSVC`` (its ``gamma``
  and ``C`` chosen by an inner CV on the training bags).

and two combinations fixed before any run (so they are not chosen on the
test folds either):

* ``majority of the three``: each test bag gets the label that at least two
  members predict;
* ``mean probability of the two networks``: the mean of the two networks'
  ``predict_proba``.

Every (data set, fold, member) is one task, run ``--n-jobs`` at a time; the
networks train on ``--device`` (one torch thread per task), the SVM on the
CPU. Each member's test predictions are kept per bag, so the combinations
are computed from the same fits. Results go to ``--output`` after every
finished task, so a run stopped early keeps what it finished.

Usage::

    python benchmarks/bench_mil_vote.py                      # repetition 1, all five sets
    python benchmarks/bench_mil_vote.py --device cuda --n-jobs 16
"""

import argparse
import os
import time

import numpy as np
import torch
from joblib import Parallel, delayed

from skstruct import MILConveyance
from skstruct.datasets import MIL_BENCHMARKS, load_mil_benchmark
from skstruct.reproduce import benchmark_folds

from _mil_common import run_header, write_results
from bench_mil_baselines import SetKernelSVC
from bench_mil_levers import minet_recipe

HERE = os.path.dirname(os.path.abspath(__file__))
MEMBERS = ("defaults", "MI-Net", "set-kernel SVM")


def make_member(name, device):
    common = dict(random_state=0, n_threads=1, device=device)
    if name == "defaults":
        return MILConveyance(**common)
    if name == "MI-Net":
        return minet_recipe(instance_weight=0.0, **common)
    return SetKernelSVC()


def run_task(dataset, fold, member, train, test, device):
    """Fit one member on one fold's training bags; its test predictions (and probabilities)."""
    torch.set_num_threads(1)
    data = load_mil_benchmark(dataset)
    bags, y = list(data.data), np.asarray(data.target)
    start = time.perf_counter()
    model = make_member(member, device).fit([bags[i] for i in train], y[train])
    test_bags = [bags[i] for i in test]
    out = dict(dataset=dataset, fold=fold, member=member,
               pred=[int(v) for v in model.predict(test_bags)])
    if hasattr(model, "predict_proba"):
        out["proba1"] = [float(v) for v in model.predict_proba(test_bags)[:, 1]]
    out["seconds"] = time.perf_counter() - start
    return out


def summarise(results):
    """Accuracy (%) of every member and combination, per data set (folds finished by all)."""
    table = {}
    for name, entry in results["datasets"].items():
        y, folds, fits = np.asarray(entry["target"]), entry["folds"], entry["fits"]
        done = [k for k in range(len(folds))
                if all(f"{k}/{m}" in fits for m in MEMBERS)]
        if not done:
            continue
        scores = {m: [] for m in MEMBERS}
        scores["majority of the three"] = []
        scores["mean probability of the two networks"] = []
        for k in done:
            truth = y[folds[k]]
            preds = {m: np.asarray(fits[f"{k}/{m}"]["pred"]) for m in MEMBERS}
            for m in MEMBERS:
                scores[m].append(float((preds[m] == truth).mean()))
            votes = sum(preds[m] for m in MEMBERS)
            scores["majority of the three"].append(float(((votes >= 2) == truth).mean()))
            mean_p = (np.asarray(fits[f"{k}/defaults"]["proba1"])
                      + np.asarray(fits[f"{k}/MI-Net"]["proba1"])) / 2
            scores["mean probability of the two networks"].append(
                float(((mean_p > 0.5) == truth).mean()))
        table[name] = {"folds_done": len(done),
                       "accuracy": {m: 100 * float(np.mean(v)) for m, v in scores.items()},
                       "per_fold": scores}
    return table


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(MIL_BENCHMARKS))
    parser.add_argument("--repetitions", type=int, default=1)
    parser.add_argument("--folds", type=int, default=None, help="first N folds only (a quick look)")
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--device", default="cpu", help="torch device of the two networks")
    parser.add_argument("--output", default=os.path.join(HERE, "results", "mil_vote.json"))
    args = parser.parse_args()
    results = run_header(repetitions=args.repetitions, device=args.device,
                         torch=torch.__version__, members=list(MEMBERS), datasets={})
    tasks = []
    for name in args.datasets:
        data = load_mil_benchmark(name)
        folds, how = benchmark_folds(data, repetitions=args.repetitions)
        folds = list(folds)[: args.folds]
        y = np.asarray(data.target)
        # Labels are 0/1 here (the majority vote adds predictions).
        assert set(np.unique(y)) <= {0, 1}, f"{name}: labels {np.unique(y)} are not 0/1"
        results["datasets"][name] = dict(folds_source=how, target=y.tolist(),
                                         folds=[test.tolist() for _, test in folds], fits={})
        tasks += [(name, k, member, train, test) for k, (train, test) in enumerate(folds)
                  for member in MEMBERS]
    # Fold by fold over the data sets: a run stopped early has finished whole
    # repetitions of every set rather than every repetition of a few sets.
    tasks.sort(key=lambda task: task[1])
    start = time.perf_counter()
    jobs = (delayed(run_task)(*task, args.device) for task in tasks)
    for out in Parallel(n_jobs=args.n_jobs, return_as="generator_unordered")(jobs):
        results["datasets"][out["dataset"]]["fits"][f"{out['fold']}/{out['member']}"] = out
        results["wall_seconds"] = time.perf_counter() - start
        results["summary"] = summarise(results)
        write_results(results, args.output)
    for name, entry in results["summary"].items():
        print(f"{name} ({entry['folds_done']} folds): " + ", ".join(
            f"{m} {v:.1f}" for m, v in entry["accuracy"].items()), flush=True)
    print(f"{results['wall_seconds']:.0f} s; written to {args.output}")


if __name__ == "__main__":
    main()
