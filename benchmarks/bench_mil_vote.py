"""Do MIL models of different kinds, voting, beat each of them? Honest, on the stored folds.

The members of ``skstruct.reproduce.mil_vote()``, each fitted on the
training bags of a fold only (the honest protocol: nothing is chosen on a
test fold), all seeded by ``--seed`` (default 0):

* ``defaults``: ``MILConveyance(embedding='mlp')`` (gated attention and
  the Conveyance instance term, raw features; the default model of
  ``MILConveyance`` when these members were chosen, hence the name);
* ``MI-Net``: ``skstruct.reproduce.minet_pipeline(instance_weight=0)``, MI-Net
  (Wang et al. 2018) trained by ``MILConveyance`` behind a ``StandardScaler``
  fitted on the training instances;
* ``set-kernel SVM``: ``skstruct.svm.SetKernelSVC()`` (its
  ``gamma`` and ``C`` chosen by an inner CV on the training bags);
* ``defaults on arcsinh``: ``MILConveyance(embedding='mlp')`` behind
  ``BagTransformer(FunctionTransformer(np.arcsinh))`` (the defaults' best
  FOX lever, ``mil_levers_arcsinh_5x10.json``);
* ``set-kernel SVM on arcsinh``: the same SVM behind the same arcsinh;
* ``miGraph SVM`` and ``miGraph SVM on arcsinh``: the same two SVMs with
  ``instance_weighting="clique"`` (miGraph's instance weights, Zhou et al.
  2009); not members of ``mil_vote()``;
* ``miFV``: Fisher vectors of the standardised instances under a diagonal
  Gaussian mixture and a linear SVM (Wei, Wu and Zhou 2017; written in
  ``_mil_fisher.py``, components and ``C`` by inner CV on the training
  bags); not a member of ``mil_vote()``.

and combinations fixed before any run that has their members (so they are
not chosen on the test folds either):

* ``majority of the three``: each test bag gets the label that at least two
  of the first three members predict;
* ``mean probability of the two networks``: the mean of the first two
  networks' ``predict_proba``;
* ``majority with defaults on arcsinh``: the majority of ``defaults on
  arcsinh``, ``MI-Net`` and ``set-kernel SVM``;
* ``majority of the four``: at least three of the four first members; a
  2-2 tie goes to the mean ``predict_proba`` of the three networks;
* ``majority of the five``: at least three of all five members (what
  ``mil_vote()`` and ``python -m skstruct reproduce mil --model vote``
  predict);
* ``majority of the five with miGraph SVMs``: the same five with both SVMs
  replaced by their miGraph versions;
* ``majority of the seven``: at least four of the seven members above miFV;
* ``majority of the five, miFV in place of the set-kernel SVM`` and
  ``majority with defaults on arcsinh and miFV`` (with MI-Net): fixed with
  the miFV member, before any run that had it.

Every (data set, fold, member) is one task, run ``--n-jobs`` at a time; the
networks train on ``--device`` (one torch thread per task), the SVM on the
CPU. Each member's test predictions are kept per bag, so the combinations
are computed from the same fits. Results go to ``--output`` after every
finished task, so a run stopped early keeps what it finished.

Usage::

    python benchmarks/bench_mil_vote.py                      # repetition 1, all five sets
    python benchmarks/bench_mil_vote.py --device cuda --n-jobs 16
    # one more member, the others' fits read from an earlier run on the same folds
    python benchmarks/bench_mil_vote.py --repetitions 5 --members "defaults on arcsinh" \
        --reuse benchmarks/results_committed/mil_vote_5x10.json
    # every member again with another seed (random_state=1)
    python benchmarks/bench_mil_vote.py --repetitions 5 --seed 1
"""

import argparse
import json
import os
import time

import numpy as np
import torch
from joblib import Parallel, delayed
from sklearn.base import clone
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from skstruct.datasets import MIL_BENCHMARKS, load_mil_benchmark
from skstruct.preprocessing import BagTransformer
from skstruct.reproduce import benchmark_folds, mil_vote
from skstruct.svm import SetKernelSVC

from _mil_common import run_header, write_results
from _mil_fisher import FisherVectorSVC

HERE = os.path.dirname(os.path.abspath(__file__))
# Member name here -> its name in mil_vote().
MIL_VOTE_NAMES = {"defaults": "milconveyance", "MI-Net": "minet",
                  "set-kernel SVM": "set_kernel_svm",
                  "defaults on arcsinh": "milconveyance_arcsinh",
                  "set-kernel SVM on arcsinh": "set_kernel_svm_arcsinh"}
# Members outside mil_vote(), by name -> a builder taking the seed.
EXTRA_MEMBERS = {
    "miGraph SVM": lambda seed: SetKernelSVC(random_state=seed, instance_weighting="clique"),
    "miGraph SVM on arcsinh": lambda seed: make_pipeline(
        BagTransformer(FunctionTransformer(np.arcsinh)),
        SetKernelSVC(random_state=seed, instance_weighting="clique")),
    "miFV": lambda seed: FisherVectorSVC(random_state=seed),
}
MEMBERS = tuple(MIL_VOTE_NAMES) + tuple(EXTRA_MEMBERS)
FIVE = MEMBERS[:5]  # the members of mil_vote()
NETWORKS = ("defaults", "MI-Net", "defaults on arcsinh")
# name -> (members, rule); every rule is fixed here, before any run.
COMBINATIONS = {
    "majority of the three": (("defaults", "MI-Net", "set-kernel SVM"), "majority"),
    "mean probability of the two networks": (("defaults", "MI-Net"), "mean probability"),
    "majority with defaults on arcsinh": (
        ("defaults on arcsinh", "MI-Net", "set-kernel SVM"), "majority"),
    "majority of the four": (MEMBERS[:4], "majority, ties by the networks' mean probability"),
    "majority of the five": (FIVE, "majority"),
    # Added with the two miGraph members, before any run that had them.
    "majority of the five with miGraph SVMs": (
        ("defaults", "MI-Net", "defaults on arcsinh", "miGraph SVM", "miGraph SVM on arcsinh"),
        "majority"),
    "majority of the seven": (MEMBERS[:7], "majority"),
    # Added with the miFV member, before any run that had it.
    "majority of the five, miFV in place of the set-kernel SVM": (
        ("defaults", "MI-Net", "miFV", "defaults on arcsinh", "set-kernel SVM on arcsinh"),
        "majority"),
    "majority with defaults on arcsinh and miFV": (
        ("defaults on arcsinh", "MI-Net", "miFV"), "majority"),
}


def make_member(name, device, seed=0):
    """The member ``name`` of ``mil_vote(random_state=seed)`` (or an extra one), unfitted."""
    if name in EXTRA_MEMBERS:
        return EXTRA_MEMBERS[name](seed)
    vote = mil_vote(random_state=seed, n_threads=1, device=device)
    return clone(vote.named_estimators[MIL_VOTE_NAMES[name]])


def run_task(dataset, fold, member, train, test, device, seed=0):
    """Fit one member on one fold's training bags; its test predictions (and probabilities)."""
    torch.set_num_threads(1)
    data = load_mil_benchmark(dataset)
    bags, y = list(data.data), np.asarray(data.target)
    start = time.perf_counter()
    model = make_member(member, device, seed).fit([bags[i] for i in train], y[train])
    test_bags = [bags[i] for i in test]
    out = dict(dataset=dataset, fold=fold, member=member,
               pred=[int(v) for v in model.predict(test_bags)])
    if hasattr(model, "predict_proba"):
        out["proba1"] = [float(v) for v in model.predict_proba(test_bags)[:, 1]]
    out["seconds"] = time.perf_counter() - start
    return out


def combine(members, rule, preds, probas):
    """The label of every test bag under one combination ``rule`` of ``members``."""
    votes = sum(preds[m] for m in members)
    if rule == "majority":
        return (2 * votes > len(members)).astype(int)
    nets = [m for m in members if m in NETWORKS]
    mean_p = sum(probas[m] for m in nets) / len(nets)
    if rule == "mean probability":
        return (mean_p > 0.5).astype(int)
    tie = 2 * votes == len(members)
    return np.where(tie, mean_p > 0.5, 2 * votes > len(members)).astype(int)


def summarise(results):
    """Accuracy (%) of every member and combination, per data set (folds finished by all)."""
    table = {}
    for name, entry in results["datasets"].items():
        y, folds, fits = np.asarray(entry["target"]), entry["folds"], entry["fits"]
        members = [m for m in MEMBERS if any(key.endswith(f"/{m}") for key in fits)]
        done = [k for k in range(len(folds)) if all(f"{k}/{m}" in fits for m in members)]
        if not done:
            continue
        combinations = {c: v for c, v in COMBINATIONS.items() if set(v[0]) <= set(members)}
        scores = {m: [] for m in [*members, *combinations]}
        for k in done:
            truth = y[folds[k]]
            preds = {m: np.asarray(fits[f"{k}/{m}"]["pred"]) for m in members}
            probas = {m: np.asarray(fits[f"{k}/{m}"]["proba1"]) for m in members
                      if m in NETWORKS}
            for m in members:
                scores[m].append(float((preds[m] == truth).mean()))
            for c, (subset, rule) in combinations.items():
                scores[c].append(float((combine(subset, rule, preds, probas) == truth).mean()))
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
    parser.add_argument("--device", default="cpu", help="torch device of the networks")
    parser.add_argument("--seed", type=int, default=0,
                        help="random_state of every member (the SVM's: its inner folds)")
    parser.add_argument("--members", nargs="+", default=list(MEMBERS), choices=MEMBERS,
                        help="members to fit (default: all)")
    parser.add_argument("--reuse", default=None,
                        help="an earlier results file on the same folds: its fits of the "
                             "other members are copied, not refitted")
    parser.add_argument("--output", default=os.path.join(HERE, "results", "mil_vote.json"))
    args = parser.parse_args()
    earlier = None
    if args.reuse:
        with open(args.reuse) as fh:
            earlier = json.load(fh)
        if earlier.get("seed", 0) != args.seed:
            raise SystemExit(f"--reuse {args.reuse}: its fits have seed "
                             f"{earlier.get('seed', 0)}, not --seed {args.seed}")
        earlier = earlier["datasets"]
    results = run_header(repetitions=args.repetitions, device=args.device,
                         torch=torch.__version__, members=list(args.members), seed=args.seed,
                         reused_from=args.reuse, datasets={})
    tasks = []
    for name in args.datasets:
        data = load_mil_benchmark(name)
        folds, how = benchmark_folds(data, repetitions=args.repetitions)
        folds = list(folds)[: args.folds]
        y = np.asarray(data.target)
        # Labels are 0/1 here (the majority vote adds predictions).
        assert set(np.unique(y)) <= {0, 1}, f"{name}: labels {np.unique(y)} are not 0/1"
        entry = dict(folds_source=how, target=y.tolist(),
                     folds=[test.tolist() for _, test in folds], fits={})
        if earlier is not None and name in earlier:
            if earlier[name]["folds"][: len(folds)] != entry["folds"]:
                raise SystemExit(f"--reuse {args.reuse}: its {name} folds are not these folds")
            entry["fits"] = {key: fit for key, fit in earlier[name]["fits"].items()
                             if fit["member"] not in args.members
                             and fit["fold"] < len(folds)}
        results["datasets"][name] = entry
        tasks += [(name, k, member, train, test) for k, (train, test) in enumerate(folds)
                  for member in args.members]
    # Fold by fold over the data sets: a run stopped early has finished whole
    # repetitions of every set rather than every repetition of a few sets.
    tasks.sort(key=lambda task: task[1])
    start = time.perf_counter()
    jobs = (delayed(run_task)(*task, args.device, args.seed) for task in tasks)
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
