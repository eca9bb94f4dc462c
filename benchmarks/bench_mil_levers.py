"""Ablation of MILConveyance's levers under the honest protocol.

Every variant is scored by sklearn's ``cross_validate`` (through
:func:`skstruct.reproduce.honest_scores`) on the stored 10-fold splits of
the classical MIL benchmarks, so nothing is chosen on a test fold.

The levers of the default embedding, ``embedding='prototypes'``, trained
by Adam (``optimizer='adam'``, the default until full-batch L-BFGS; the
names keep those of the committed results, where ``defaults`` is this
training):

* ``prototypes (defaults)``: ``MILConveyance(optimizer='adam', random_state=0)``;
* ``prototypes, instance_weight=0``: the same without the Conveyance
  instance term (the bag cross-entropy alone: MILES' embedding with a
  logistic bag classifier);
* ``prototypes, n_prototypes=2000``: twice the prototypes (all training
  instances on the Corel sets).

and under today's defaults (L-BFGS to the optimum of the convex problem):

* ``L-BFGS prototypes (defaults)``: ``MILConveyance(random_state=0)``;
* ``L-BFGS prototypes, instance_weight=0``: without the Conveyance term;
* ``L-BFGS prototypes, kernel='laplacian'``: the L1 (Laplacian) kernel
  (candidate B of ``bench_mil_stacking.py``);
* ``L-BFGS prototypes, max+mean pooling, instance_weight=0``: each
  prototype's best match and mean similarity, bag term only (candidate C);
* ``L-BFGS prototypes, scaled bag features, instance_weight=0,
  gamma_scale=1``: MILES with an L2 logistic regression on standardised bag
  features (candidate A).
* ``StackingClassifier of the three L-BFGS options``: scikit-learn's
  :class:`~sklearn.ensemble.StackingClassifier` over the last three (its
  defaults: a logistic regression on their positive-class probabilities,
  out of fold from a 5-fold stratified CV of the training bags), the
  stacking of ``bench_mil_stacking.py`` done with scikit-learn's own
  meta-estimator and every inner fit drawing its own prototypes.

The levers of the gated attention network of the Conveyance paper,
``embedding='mlp'`` (the defaults of ``MILConveyance`` before the prototype
embedding; the names below keep the names of the committed results, where
``defaults`` is this network), each differing from it in one lever:

* ``defaults``: ``MILConveyance(embedding='mlp', random_state=0)``;
* ``instance_weight=0``: plain gated-attention MIL, without the Conveyance
  instance term (does the Conveyance term help?);
* ``BagTransformer(StandardScaler())``: instance features standardised on
  the training instances of each fold (MUSK features span about +-300);
* ``weight_decay=5e-3``: 50 times the default weight decay;
* ``paper training``: one bag per step at lr 1e-3, the paper's exact setup
  (``--levers`` must name it: it is about 3x slower);
* ``small network``: one 128-64 network (attention 64, a linear instance
  head), the member size of the ensemble levers;
* ``n_estimators=5 small networks``: five such networks trained in one
  batched pass, probabilities averaged, with and without the Conveyance
  instance term;
* ``n_estimators=3 medium networks``: three 256-256 networks, about the
  cost of one default network;
* ``EMA of the weights``: the returned network holds an exponential moving
  average (decay 0.98 per step) of the weights over training (the
  :class:`WeightEMA` callback below);
* ``arcsinh of the instance features``: ``BagTransformer(FunctionTransformer(np.arcsinh))``
  in front, which compresses the +-300 range of the MUSK features without
  fitting anything;
* ``weight_decay=1e-2, dropout=0.25``: stronger regularisation of both kinds;
* ``Glorot initialisation, max_grad_norm=None``: the two training choices of
  MI-Net that cost it most when changed to ``MILConveyance``'s
  (``bench_mil_minn_ablation.py``), Glorot uniform weights with zero biases
  (``weight_init='glorot'``) and no gradient clipping, both at once;
* ``MI-Net recipe``: MI-Net (Wang et al. 2018) trained by ``MILConveyance``
  itself: instances standardised on the training instances, a 256-128-64
  body, dropout 0.5, the feature-wise max over the bag
  (``pooling='max'``), Glorot initialisation, SGD with Nesterov momentum at
  lr 5e-4, weight decay 1e-2, one bag per step, 50 epochs, no clipping;
  with ``instance_weight=0`` (MI-Net itself) and with the Conveyance
  instance term (a linear instance head on the same features);
* ``MI-Net recipe on arcsinh features``: the same, with ``arcsinh`` applied
  to the instance features before the standardisation (the long-tailed
  Corel features, where ``arcsinh`` helped the defaults on FOX).

Usage::

    python benchmarks/bench_mil_levers.py                       # repetition 1, all five sets
    python benchmarks/bench_mil_levers.py --repetitions 5 --levers defaults instance_weight=0

Writes ``benchmarks/results_committed/mil_levers.json`` (``--output``) and
prints bag accuracy (%) per lever and data set, mean over folds.
"""

import argparse
import os
import time

import numpy as np
import torch
from sklearn.ensemble import StackingClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from skorch.callbacks import Callback

from skstruct import MILConveyance
from skstruct.datasets import MIL_BENCHMARKS, load_mil_benchmark
from skstruct.preprocessing import BagTransformer
from skstruct.reproduce import benchmark_folds, honest_scores, minet_pipeline

from _mil_common import run_header, write_results

HERE = os.path.dirname(os.path.abspath(__file__))
# The member size of the ensemble levers: about a tenth of the default
# network's operations per instance, so five of them cost half of one.
SMALL = dict(hidden_layer_sizes=(128, 64), attention_size=64, instance_head_sizes=())
# Three of these cost about as much as one default network (512-512, head 512).
MEDIUM = dict(hidden_layer_sizes=(256, 256), attention_size=128, instance_head_sizes=(256,))


class WeightEMA(Callback):
    """Replace the trained weights by their exponential moving average over the steps.

    After every training step ``ema = decay * ema + (1 - decay) * weights``
    (parameters only; the network has no buffers); at the end of training the
    average is copied into the network, so ``predict`` uses it.
    """

    def __init__(self, decay=0.98):
        self.decay = decay

    def on_train_begin(self, net, **kwargs):
        self.average_ = [p.detach().clone() for p in net.module_.parameters()]

    def on_batch_end(self, net, training=False, **kwargs):
        if training:
            with torch.no_grad():
                for avg, p in zip(self.average_, net.module_.parameters()):
                    avg.lerp_(p, 1.0 - self.decay)

    def on_train_end(self, net, **kwargs):
        with torch.no_grad():
            for avg, p in zip(self.average_, net.module_.parameters()):
                p.copy_(avg)


def levers(threads):
    lbfgs = dict(random_state=0, n_threads=threads)
    prototypes = dict(optimizer="adam", **lbfgs)
    common = dict(embedding="mlp", **lbfgs)
    return {
        "L-BFGS prototypes (defaults)": MILConveyance(**lbfgs),
        "L-BFGS prototypes, instance_weight=0": MILConveyance(instance_weight=0.0, **lbfgs),
        "L-BFGS prototypes, kernel='laplacian'": MILConveyance(kernel="laplacian", **lbfgs),
        "L-BFGS prototypes, max+mean pooling, instance_weight=0": MILConveyance(
            prototype_pooling="max+mean", instance_weight=0.0, **lbfgs
        ),
        "L-BFGS prototypes, scaled bag features, instance_weight=0, gamma_scale=1": (
            MILConveyance(scale_bag_features=True, instance_weight=0.0, gamma_scale=1.0, **lbfgs)
        ),
        "StackingClassifier of the three L-BFGS options": StackingClassifier([
            ("laplacian", MILConveyance(kernel="laplacian", **lbfgs)),
            ("max+mean", MILConveyance(
                prototype_pooling="max+mean", instance_weight=0.0, **lbfgs)),
            ("scaled", MILConveyance(
                scale_bag_features=True, instance_weight=0.0, gamma_scale=1.0, **lbfgs)),
        ]),
        "prototypes (defaults)": MILConveyance(**prototypes),
        "prototypes, instance_weight=0": MILConveyance(instance_weight=0.0, **prototypes),
        "prototypes, n_prototypes=2000": MILConveyance(n_prototypes=2000, **prototypes),
        "defaults": MILConveyance(**common),
        "instance_weight=0": MILConveyance(instance_weight=0.0, **common),
        "BagTransformer(StandardScaler())": make_pipeline(
            BagTransformer(StandardScaler()), MILConveyance(**common)
        ),
        "weight_decay=5e-3": MILConveyance(weight_decay=5e-3, **common),
        "paper training (batch_size=1, lr=1e-3)": MILConveyance(batch_size=1, lr=1e-3, **common),
        "small network (128-64, attention 64, linear instance head)": MILConveyance(
            **SMALL, **common
        ),
        "n_estimators=5 small networks": MILConveyance(n_estimators=5, **SMALL, **common),
        "n_estimators=3 medium networks (256-256, attention 128, instance head 256)":
            MILConveyance(n_estimators=3, **MEDIUM, **common),
        "n_estimators=5 small networks, instance_weight=0": MILConveyance(
            n_estimators=5, instance_weight=0.0, **SMALL, **common
        ),
        "EMA of the weights (decay 0.98 per step)": MILConveyance(
            callbacks=[WeightEMA(0.98)], **common
        ),
        "arcsinh of the instance features": make_pipeline(
            BagTransformer(FunctionTransformer(np.arcsinh)), MILConveyance(**common)
        ),
        "weight_decay=1e-2, dropout=0.25": MILConveyance(weight_decay=1e-2, dropout=0.25, **common),
        "Glorot initialisation, max_grad_norm=None": MILConveyance(
            weight_init="glorot", max_grad_norm=None, **common
        ),
        "MI-Net recipe, instance_weight=0": minet_pipeline(instance_weight=0.0, **common),
        "MI-Net recipe with the Conveyance instance term": minet_pipeline(**common),
        "MI-Net recipe on arcsinh features, instance_weight=0": make_pipeline(
            BagTransformer(FunctionTransformer(np.arcsinh)),
            minet_pipeline(instance_weight=0.0, **common),
        ),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(MIL_BENCHMARKS))
    parser.add_argument("--levers", nargs="+", default=None,
                        help="lever names (default: all but the two defaults, of which reproduce "
                        "mil measures the prototype one, and the slow paper training)")
    parser.add_argument("--repetitions", type=int, default=1)
    parser.add_argument("--n-jobs", type=int, default=-1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output", default=os.path.join(HERE, "results_committed", "mil_levers.json"))
    args = parser.parse_args()

    table = levers(args.threads)
    # By default the levers only: "defaults" is repetition 1 of
    # ``python -m skstruct reproduce mil`` (same estimator, seed and folds).
    chosen = args.levers or [k for k in table if "defaults" not in k and not k.startswith("paper")]
    unknown = [k for k in chosen if k not in table]
    if unknown:
        raise SystemExit(f"unknown lever(s) {unknown}; choose from {list(table)}")
    results = run_header(repetitions=args.repetitions, levers={})
    start = time.perf_counter()
    for lever in chosen:
        per_set = {}
        for name in args.datasets:
            data = load_mil_benchmark(name)
            folds, _ = benchmark_folds(data, repetitions=args.repetitions)
            t0 = time.perf_counter()
            scores = honest_scores(table[lever], data, folds, n_jobs=args.n_jobs)
            acc = [float(v) for v in scores["test_score"]]
            per_set[name] = dict(
                accuracy=acc, mean=100 * float(np.mean(acc)), std=100 * float(np.std(acc)),
                fit_seconds=float(np.sum(scores["fit_time"])), wall_seconds=time.perf_counter() - t0,
            )
            print(f"{lever:40s} {name:8s} {per_set[name]['mean']:5.1f} ± {per_set[name]['std']:4.1f} "
                  f"({per_set[name]['wall_seconds']:.0f} s)", flush=True)
            results["levers"][lever] = per_set
            results["wall_seconds"] = time.perf_counter() - start
            write_results(results, args.output)  # after every data set: a stopped run keeps its part
    print()
    print("| lever | " + " | ".join(n.upper() for n in args.datasets) + " |")
    print("|---|" + "---|" * len(args.datasets))
    for lever, per_set in results["levers"].items():
        print(f"| {lever} | " + " | ".join(
            f"{per_set[n]['mean']:.1f}" if n in per_set else "-" for n in args.datasets) + " |")
    print(f"\n{results['wall_seconds']:.0f} s; written to {args.output}")


if __name__ == "__main__":
    main()
