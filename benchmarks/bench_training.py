"""Training overhead: skstruct's ``fit`` against hand-written PyTorch loops.

Four measurements, each a ratio of medians of interleaved runs in one process
(so that load from other processes hits both sides alike):

1. ``fit_vs_hand`` / ``fit_vs_hand_fused``: ``ConveyanceClassifier(module=...)``
   against a hand-written loop with Adam's default implementation / with
   ``fused=True`` (what ``fit`` uses by default) (tensor slicing, forward,
   ``ConveyanceLoss`` with the same alpha and beta, backward, Adam step,
   nothing else) on the same model and data: the
   issue's setup, a 50-128-10 MLP (``module=`` a 50-128 backbone; skstruct
   adds the 128-10 output layer), batch 64, 8,000 rows, 4 epochs, 1 thread;
2. ``optimizer_variants``: the hand-written loop with Adam's default,
   ``foreach=True`` and ``fused=True`` implementations (which one to default
   to);
3. ``conveyance_vs_cross_entropy``: ``ConveyanceClassifier.fit`` against
   ``CrossEntropyClassifier.fit`` on digits (C=10) and on a synthetic
   1,000-class set (an ordinal structure over the classes); with numba
   installed also the same fit on the loss's eager torch path (``*_eager``,
   the fused CPU kernel switched off), in the same rounds;
4. ``predict_proba_vs_forward``: ``predict_proba`` throughput against a raw
   ``torch.no_grad`` forward + softmax loop over the same batches.

Sections 1 and 2 also time every training step (the main thread's CPU time
between the ends of consecutive steps) and report the ratio of the median
step times (``per_step``): a step is about 1.5 ms, so most steps escape the
preemptions that a shared machine adds to whole runs. ``--before REV`` adds
``skstruct_fit_before``: the same ``fit`` with the training engine
(``skstruct/_net.py`` and ``ArrayDataset`` of ``skstruct/utils/_torch.py``)
as it was at git revision ``REV``, interleaved in the same process
(``fit_vs_before``).

Run (results to ``--output`` as JSON)::

    OMP_NUM_THREADS=1 python benchmarks/bench_training.py --repeats 3 --threads 1 --clock cpu \\
        --output benchmarks/results_committed/bench_training.json
    python benchmarks/bench_training.py --device cuda --repeats 3   # on a GPU (wall clock)
"""

import argparse
import contextlib
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import time

import numpy as np
import torch
from skorch.callbacks import Callback
from sklearn.datasets import load_digits, make_classification
from torch import nn

import skstruct._base
from skstruct import ConveyanceClassifier, CrossEntropyClassifier
from skstruct.losses import ConveyanceLoss
from skstruct.losses._numba import eager_only, numba_available
from skstruct.structures import Ordinal


def backbone(n_features, width=128):
    return nn.Sequential(nn.Linear(n_features, width), nn.ReLU())


# Loss weights of both sides of sections 1 and 2 (the estimator would pick
# beta=0.1 for an ordinal structure by itself).
ALPHA, BETA = 0.1, 10.0

# Per-step timer: the end time of every step (thread CPU time), for the run
# being timed. A module-level list: the estimator deep-copies its callbacks.
_STEP_ENDS = []


class StepEnd(Callback):
    """Records the end time of every training step of ``fit``."""

    def on_batch_end(self, net, training=False, **kwargs):
        if training:
            _STEP_ENDS.append(time.thread_time())


def hand_written_fit(X, y, Q, *, epochs, batch_size, lr, seed, optimizer_kwargs=None,
                     device="cpu"):
    """The floor: slice, forward, loss, backward, step.

    On CUDA the data are moved to the device once, as ``fit`` does with its
    dataset, and the loop reads each step's loss (``loss.item()``), as
    ``fit`` does to record it.
    """
    torch.manual_seed(seed)
    Xt = torch.as_tensor(X, dtype=torch.float32, device=device)
    yt = torch.as_tensor(y, dtype=torch.int64, device=device)
    model = nn.Sequential(backbone(X.shape[1]), nn.Linear(128, Q.shape[0])).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, **(optimizer_kwargs or {}))
    # The criterion fit uses (the functional conveyance_loss costs a few per
    # cent more per call at this size; that is the loss's cost, not fit's).
    criterion = ConveyanceLoss(Q, alpha=ALPHA, beta=BETA).to(device)
    read_loss = torch.device(device).type != "cpu"
    generator = torch.Generator().manual_seed(seed)
    n = len(Xt)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(n, generator=generator).to(device)
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            xb, yb = Xt[idx], yt[idx]
            optimizer.zero_grad()
            loss = criterion(model(xb), yb)
            loss.backward()
            optimizer.step()
            if read_loss:
                loss.item()
            _STEP_ENDS.append(time.thread_time())
    return model


def load_engine(rev):
    """``_SkstructNet`` and ``ArrayDataset`` as they were at git revision ``rev``.

    Each file is loaded under a new name inside the installed package (its
    relative imports resolve against the working tree's modules).
    """
    def load(path, name, package):
        source = subprocess.run(["git", "show", f"{rev}:{path}"], check=True,
                                capture_output=True, text=True).stdout
        spec = importlib.util.spec_from_loader(name, loader=None)
        module = importlib.util.module_from_spec(spec)
        module.__package__ = package
        sys.modules[name] = module
        exec(compile(source, f"{rev}:{path}", "exec"), module.__dict__)
        return module

    net = load("skstruct/_net.py", "skstruct._net_before", "skstruct")
    torch_utils = load("skstruct/utils/_torch.py", "skstruct.utils._torch_before", "skstruct.utils")
    return net._SkstructNet, torch_utils.ArrayDataset


@contextlib.contextmanager
def engine(net_class, dataset_class):
    """Train with these classes (``fit`` builds its net and dataset from them)."""
    saved = skstruct._base._SkstructNet, skstruct._base.ArrayDataset
    skstruct._base._SkstructNet, skstruct._base.ArrayDataset = net_class, dataset_class
    try:
        yield
    finally:
        skstruct._base._SkstructNet, skstruct._base.ArrayDataset = saved


_CLOCK = [time.perf_counter]


_SYNC = [lambda: None]


def _timed(fn):
    clock = _CLOCK[0]
    _SYNC[0]()
    start = clock()
    out = fn()
    _SYNC[0]()  # on CUDA: until the device has finished the run's work
    return clock() - start, out


def _interleave(runs, repeats, steps=None):
    """name -> list of seconds; one warm-up round, then ``repeats`` rounds.

    ``steps``, a dict, receives name -> the per-step times (seconds) of the
    timed rounds, from the step ends the run records in ``_STEP_ENDS``.
    """
    times = {name: [] for name in runs}
    for r in range(repeats + 1):
        for name, run in runs.items():
            _STEP_ENDS.clear()
            seconds, _ = _timed(lambda: run(r))
            if r > 0:
                times[name].append(seconds)
                if steps is not None:
                    ends = np.asarray(_STEP_ENDS)
                    steps.setdefault(name, []).extend(np.diff(ends).tolist())
    return times


def _step_summary(steps, numerator, denominator):
    num, den = statistics.median(steps[numerator]), statistics.median(steps[denominator])
    return {
        "numerator": numerator, "denominator": denominator,
        "median_step_us": {numerator: num * 1e6, denominator: den * 1e6},
        "quartiles_step_us": {k: (np.percentile(steps[k], [25, 75]) * 1e6).tolist()
                              for k in (numerator, denominator)},
        "n_steps": {k: len(steps[k]) for k in (numerator, denominator)},
        "ratio": num / den,
    }


def _summary(times, numerator, denominator):
    num, den = statistics.median(times[numerator]), statistics.median(times[denominator])
    return {
        "numerator": numerator, "denominator": denominator,
        "median_s": {numerator: num, denominator: den},
        "ratio": num / den,
        # The minima are the least disturbed runs (load only adds time): a
        # second estimate, reported next to the ratio of medians.
        "ratio_of_minima": min(times[numerator]) / min(times[denominator]),
        "all_s": times,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--output", default="benchmarks/results/bench_training.json")
    parser.add_argument("--note", default="")
    parser.add_argument("--clock", default="cpu", choices=["wall", "cpu"],
                        help="cpu: process CPU time (robust on a loaded machine, 1 thread)")
    parser.add_argument("--skip", nargs="*", default=[], help="sections to skip (1-4)")
    parser.add_argument("--before", default=None, metavar="REV",
                        help="also time fit with the training engine of this git revision")
    parser.add_argument("--device", default="cpu",
                        help="torch device of every run (cuda: wall clock, synchronised)")
    args = parser.parse_args(argv)
    device = args.device
    if torch.device(device).type == "cuda":
        if args.clock == "cpu":
            args.clock = "wall"  # the device's time is not the process's CPU time
        _SYNC[0] = torch.cuda.synchronize
    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    _CLOCK[0] = time.process_time if args.clock == "cpu" else time.perf_counter
    results = {}
    meta = {"device": device, "clock": args.clock, "threads": threads, "repeats": args.repeats, "torch": torch.__version__,
            "python": platform.python_version(), "note": args.note, "before": args.before,
            "loss_weights": {"alpha": ALPHA, "beta": BETA}}
    print(" ".join(f"{k}={v}" for k, v in meta.items()))

    # 1 + 2: the setup
    X, y = make_classification(n_samples=8000, n_features=50, n_informative=20,
                               n_classes=10, random_state=0)
    X = X.astype(np.float32)
    structure = Ordinal(list(range(10)))
    Q = torch.tensor(structure.plausibility_matrix())
    common = dict(epochs=4, batch_size=64, lr=1e-3, device=device)

    def skstruct_fit(r, callbacks=None):
        return ConveyanceClassifier(
            class_structure=structure, module=backbone(50), max_epochs=4, batch_size=64,
            lr=1e-3, alpha=ALPHA, beta=BETA, random_state=r, n_threads=threads,
            callbacks=callbacks, device=device,
        ).fit(X, y)

    if "1" not in args.skip or "2" not in args.skip:
        runs = {
            "hand_written": lambda r: hand_written_fit(X, y, Q, seed=r, **common),
            "skstruct_fit": lambda r: skstruct_fit(r, [StepEnd()]),
        }
        if args.before:
            before = load_engine(args.before)

            def skstruct_fit_before(r):
                with engine(*before):
                    return skstruct_fit(r, [StepEnd()])

            runs["skstruct_fit_before"] = skstruct_fit_before
        if "2" not in args.skip:
            runs["hand_written_foreach"] = lambda r: hand_written_fit(
                X, y, Q, seed=r, optimizer_kwargs={"foreach": True}, **common)
            runs["hand_written_fused"] = lambda r: hand_written_fit(
                X, y, Q, seed=r, optimizer_kwargs={"fused": True}, **common)
        steps = {}
        times = _interleave(runs, args.repeats, steps)
        results["fit_vs_hand"] = _summary(times, "skstruct_fit", "hand_written")
        per_step = {"fit_vs_hand": _step_summary(steps, "skstruct_fit", "hand_written")}
        if args.before:
            results["fit_vs_before"] = _summary(times, "skstruct_fit", "skstruct_fit_before")
            results["before_vs_hand"] = _summary(times, "skstruct_fit_before", "hand_written")
            per_step["fit_vs_before"] = _step_summary(steps, "skstruct_fit", "skstruct_fit_before")
            per_step["before_vs_hand"] = _step_summary(steps, "skstruct_fit_before", "hand_written")
        if "2" not in args.skip:
            # fit uses fused Adam by default: the like-for-like floor.
            results["fit_vs_hand_fused"] = _summary(times, "skstruct_fit", "hand_written_fused")
            per_step["fit_vs_hand_fused"] = _step_summary(steps, "skstruct_fit", "hand_written_fused")
            if args.before:
                results["before_vs_hand_fused"] = _summary(
                    times, "skstruct_fit_before", "hand_written_fused")
                per_step["before_vs_hand_fused"] = _step_summary(
                    steps, "skstruct_fit_before", "hand_written_fused")
            results["optimizer_variants"] = {
                "foreach_vs_default": _summary(times, "hand_written_foreach", "hand_written"),
                "fused_vs_default": _summary(times, "hand_written_fused", "hand_written"),
            }
        results["per_step"] = per_step

    # 3: Conveyance vs cross-entropy estimators
    if "3" not in args.skip:
        Xd, yd = load_digits(return_X_y=True)
        Xs, ys = make_classification(n_samples=8000, n_features=64, n_informative=40,
                                     n_classes=1000, n_clusters_per_class=1, random_state=0)
        sets = {"digits": (Xd.astype(np.float32), yd, 10),
                "synthetic_1000": (Xs.astype(np.float32), ys, 1000)}
        results["conveyance_vs_cross_entropy"] = {}
        for name, (Xc, yc, n_classes) in sets.items():
            ordinal = Ordinal(list(range(n_classes)))
            est = dict(hidden_layer_sizes=(128,), max_epochs=4, batch_size=64, lr=1e-3,
                       n_threads=threads, device=device)
            runs = {
                "conveyance_fit": lambda r: ConveyanceClassifier(
                    class_structure=ordinal, random_state=r, **est).fit(Xc, yc),
                "cross_entropy_fit": lambda r: CrossEntropyClassifier(
                    random_state=r, **est).fit(Xc, yc),
            }
            if numba_available():
                # The loss's eager torch path (numba's fused kernel off), same rounds.
                def eager_fit(r):
                    with eager_only():
                        return runs["conveyance_fit"](r)
                runs["conveyance_fit_eager"] = eager_fit
            times = _interleave(runs, args.repeats)
            results["conveyance_vs_cross_entropy"][name] = _summary(
                times, "conveyance_fit", "cross_entropy_fit")
            if "conveyance_fit_eager" in times:
                results["conveyance_vs_cross_entropy"][f"{name}_eager"] = _summary(
                    times, "conveyance_fit_eager", "cross_entropy_fit")

    # 4: predict_proba throughput
    if "4" not in args.skip:
        clf = skstruct_fit(0)
        Xp = np.tile(X, (4, 1))
        module = clf.net_.module_
        batch = clf.net_.batch_size

        def raw(_):
            Xt = torch.as_tensor(Xp, device=device)
            module.eval()
            with torch.no_grad():
                return torch.cat([torch.softmax(module(Xt[i : i + batch]), 1)
                                  for i in range(0, len(Xt), batch)]).cpu().numpy()

        runs = {"raw_forward": raw, "predict_proba": lambda _: clf.predict_proba(Xp)}
        times = _interleave(runs, max(args.repeats, 5))
        s = _summary(times, "predict_proba", "raw_forward")
        s["throughput_ratio"] = 1.0 / s["ratio"]  # predict_proba rows/s over raw rows/s
        results["predict_proba_vs_forward"] = s

    for name, value in results.items():
        items = value.items() if "ratio" not in value else [(name, value)]
        for sub, v in items:
            extra = f" (throughput ratio {v['throughput_ratio']:.3f})" if "throughput_ratio" in v else ""
            minima = f" (minima {v['ratio_of_minima']:.3f})" if "ratio_of_minima" in v else ""
            print(f"{name}/{sub}: {v['numerator']} / {v['denominator']} = {v['ratio']:.3f}"
                  f"{minima}{extra}")
    if args.output:
        os.makedirs(os.path.dirname(args.output) or ".", exist_ok=True)
        with open(args.output, "w") as fh:
            json.dump({"benchmark": "bench_training", "meta": meta, "results": results},
                      fh, indent=1)
        print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
