"""Conveyance before/after in one process: the loss of a git revision against the working tree.

Loads ``skstruct/losses/_conveyance.py`` as it was at ``--rev`` (``git show``)
next to the current one and times, interleaved, forward + backward of
``ConveyanceLoss`` (old, new) and ``F.cross_entropy`` on the same logits and
targets, for each (B, C): alone (leaf logits) and behind a 64-128-C MLP (the
training step's shape). Q: an ordinal band of width 1 (what
``bench_training.py`` uses). Ratios of medians over ``--repeats``
interleaved rounds (a new seeded random order every round); results to
``--output`` as JSON::

    OMP_NUM_THREADS=1 python benchmarks/bench_conveyance_ab.py --rev c2f6412 --repeats 200 \\
        --output benchmarks/results_committed/bench_conveyance_ab.json
"""

import argparse
import importlib.util
import json
import os
import random
import statistics
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

import skstruct.losses
from skstruct.losses import ConveyanceLoss
from skstruct.structures import Ordinal


def load_old(rev):
    source = subprocess.run(
        ["git", "show", f"{rev}:skstruct/losses/_conveyance.py"],
        check=True, capture_output=True, text=True,
    ).stdout
    name = "skstruct.losses._conveyance_before"
    spec = importlib.util.spec_from_loader(name, loader=None)
    module = importlib.util.module_from_spec(spec)
    module.__package__ = "skstruct.losses"
    sys.modules[name] = module
    exec(compile(source, f"{rev}:skstruct/losses/_conveyance.py", "exec"), module.__dict__)
    return module


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rev", default="c2f6412")
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--cases", default="64x10,512x10,512x100,512x1000")
    parser.add_argument("--output", default="benchmarks/results/bench_conveyance_ab.json")
    parser.add_argument("--note", default="")
    parser.add_argument("--order", default="random", choices=["random", "fixed"],
                        help="run order within a round: a new seeded random order every round "
                             "(default), or always before, after, cross-entropy (the old "
                             "behaviour, kept to measure its bias)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    old = load_old(args.rev)
    assert skstruct.losses.ConveyanceLoss is ConveyanceLoss
    results = []
    for case in args.cases.split(","):
        batch, n_classes = (int(v) for v in case.split("x"))
        gen = torch.Generator().manual_seed(0)
        Q = torch.tensor(Ordinal(list(range(n_classes))).plausibility_matrix())
        losses = {"before": old.ConveyanceLoss(Q), "after": ConveyanceLoss(Q),
                  "cross_entropy": F.cross_entropy}
        z = torch.randn(batch, n_classes, generator=gen).requires_grad_(True)
        x = torch.randn(batch, 64, generator=gen)
        t = torch.randint(n_classes, (batch,), generator=gen)
        model = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(),
                                    torch.nn.Linear(128, n_classes))
        runs = {}
        for name, loss in losses.items():
            def alone(loss=loss):
                loss(z, t).backward()
                z.grad = None

            def behind_mlp(loss=loss):
                model.zero_grad(set_to_none=True)
                loss(model(x), t).backward()

            runs[f"{name}/alone"] = alone
            runs[f"{name}/mlp"] = behind_mlp
        with torch.no_grad():
            torch.testing.assert_close(losses["before"](z, t), losses["after"](z, t))
        times = {k: [] for k in runs}
        names = list(runs)
        order = random.Random(0)
        for r in range(args.repeats + 5):
            # A new (seeded) order every round, so that no run always comes
            # first, or right after itself.
            if args.order == "random":
                order.shuffle(names)
            for name in names:
                run = runs[name]
                start = time.process_time()
                run()
                if r >= 5:
                    times[name].append(time.process_time() - start)
        med = {k: statistics.median(v) for k, v in times.items()}
        row = {"batch": batch, "n_classes": n_classes, "median_us": {k: v * 1e6 for k, v in med.items()}}
        for where in ("alone", "mlp"):
            ce = med[f"cross_entropy/{where}"]
            row[f"{where}/before_vs_ce"] = med[f"before/{where}"] / ce
            row[f"{where}/after_vs_ce"] = med[f"after/{where}"] / ce
            row[f"{where}/after_vs_before"] = med[f"after/{where}"] / med[f"before/{where}"]
        results.append(row)
        print(f"B={batch} C={n_classes}: " + "  ".join(
            f"{k}={v:.2f}" for k, v in row.items() if "/" in k))
    if args.output:
        os.makedirs(os.path.dirname(args.output) or ".", exist_ok=True)
        with open(args.output, "w") as fh:
            json.dump({"benchmark": "bench_conveyance_ab", "rev": args.rev, "repeats": args.repeats,
                       "clock": "cpu", "order": args.order, "torch": torch.__version__,
                       "note": args.note,
                       "results": results}, fh, indent=1)
        print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
