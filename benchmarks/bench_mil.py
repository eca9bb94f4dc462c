"""MILConveyance against a faithful one-bag-per-step PyTorch loop of the reference design.

The 10-fold protocol of the classical MIL benchmarks (stored folds), equal
epochs, on MUSK1 and FOX by default. For every fold, in the same process
and one torch thread each:

* ``reference``: a hand-written training loop of the design of the
  Conveyance paper's public MIL code (written here, not copied): gated
  attention MIL (instance MLP d-512-512, attention 128, dropout on the gated
  attention, instance head 512-512-2), one bag per step, bag CE + instance
  Conveyance (alpha = beta = 1, Q = [[1, 1], [0, 1]]), torch's default Adam
  (lr 1e-3, weight decay 1e-4), gradient norm clipping at 1.0; after every
  epoch the test fold is evaluated one bag at a time (and the training
  folds when the test accuracy improves), as the reference does;
* ``skstruct bs=B``: ``MILConveyance`` with the same setup and
  ``batch_size=B`` (learning rate ``1e-3 * sqrt(B)``, the default of
  ``python -m skstruct reproduce mil``; ``--same-lr`` keeps 1e-3), with the
  per-epoch test accuracy recorded by the callback that the command uses.

Reported per data set: median fold time (wall and CPU), the ratio of the
summed times (reference / skstruct), and bag accuracy (%) after the last
epoch (honest) and at the best epoch on the test fold (the paper's
optimistic protocol), mean over folds. The runs of a fold are interleaved,
so machine load affects all of them alike; CPU time is less sensitive to
other processes on a shared machine than wall time.

Usage::

    python benchmarks/bench_mil.py --batch-sizes 1,8,32  # musk1, fox, 10 folds, 40 epochs
    python benchmarks/bench_mil.py --folds 3 --epochs 5  # a quick look
    python benchmarks/bench_mil.py --profile-step        # where a one-bag step goes
    python benchmarks/bench_mil.py --device cuda --folds 3 --epochs 20   # both loops on a GPU

``--profile-step`` trains MUSK1's first training fold for 10 epochs with
one bag per step, under :mod:`torch.profiler`, for skstruct and for the
reference loop, and splits the time of a step into the matrix products,
the Adam update, gradient clipping and everything else (the other small
operators, autograd and Python). The products and the Adam update do the
same work in any exact one-bag-per-step implementation of this network, so
``reference step / (products + Adam)`` bounds the speed-up any such
implementation can reach on this machine.
"""

import argparse
import json
import os
import random
import sys
import time

import numpy as np
import torch
from torch import nn

from skstruct.reproduce import REFERENCE_DROPOUT, MILWithTestCurve, reference_params
from skstruct.datasets import load_mil_benchmark
from skstruct.model_selection import MILBenchmarkCV

# --------------------------------------------------------------- reference


class ReferenceGatedAttentionMIL(nn.Module):
    """The reference design, one bag ``(n_instances, d)`` per forward call."""

    def __init__(self, n_features, width=512, attention=128, dropout=0.1):
        super().__init__()
        self.backbone = nn.Sequential(
            nn.Linear(n_features, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU()
        )
        self.attention_V = nn.Sequential(nn.Linear(width, attention), nn.Tanh())
        self.attention_U = nn.Sequential(nn.Linear(width, attention), nn.Sigmoid())
        self.attention_dropout = nn.Dropout(dropout)
        self.attention_w = nn.Linear(attention, 1, bias=False)
        self.bag_classifier = nn.Linear(width, 2)
        self.instance_classifier = nn.Sequential(
            nn.Linear(width, width), nn.ReLU(), nn.Linear(width, 2)
        )

    def forward(self, bag):
        h = self.backbone(bag)
        gated = self.attention_dropout(self.attention_V(h) * self.attention_U(h))
        weights = torch.softmax(self.attention_w(gated).squeeze(1), dim=0)
        bag_repr = torch.sum(weights.unsqueeze(1) * h, dim=0, keepdim=True)
        return self.bag_classifier(bag_repr), self.instance_classifier(h)


def reference_conveyance(logits, target, off_diagonal, alpha=1.0, beta=1.0):
    """Conveyance loss written from the formula with masked log-sum-exps."""
    rows = torch.arange(len(target), device=logits.device)
    n_classes = logits.shape[1]
    in_s = off_diagonal[:, target].T.clone()
    in_s[rows, target] = True
    neg_inf = float("-inf")
    lse_n = torch.logsumexp(logits.masked_fill(in_s, neg_inf), dim=1)
    lse_s = torch.logsumexp(logits.masked_fill(~in_s, neg_inf), dim=1)
    is_t = torch.arange(n_classes, device=logits.device)[None, :] == target[:, None]
    lse_not_t = torch.logsumexp(logits.masked_fill(is_t, neg_inf), dim=1)
    z_t = logits[rows, target]
    terms = torch.stack(
        [torch.zeros_like(z_t), np.log(beta) + lse_n - lse_s, np.log(alpha) + lse_not_t - z_t],
        dim=1,
    )
    return torch.logsumexp(terms, dim=1).mean()


def _evaluate(model, bags, labels):
    model.eval()
    correct = 0
    with torch.no_grad():
        for bag, label in zip(bags, labels):
            bag_logits, _ = model(bag)
            correct += int(bag_logits.argmax(dim=1).item() == label)
    return correct / len(bags)


def reference_fold(train_bags, train_y, test_bags, test_y, *, epochs, seed, dropout,
                   device="cpu"):
    """One fold of the reference loop; returns (last-epoch acc, best-epoch acc).

    On another device the bags are moved there once, before training.
    """
    torch.manual_seed(seed)
    rng = random.Random(seed)
    train_bags = [torch.as_tensor(np.asarray(b, dtype=np.float32), device=device) for b in train_bags]
    test_bags = [torch.as_tensor(np.asarray(b, dtype=np.float32), device=device) for b in test_bags]
    train_y, test_y = [int(v) for v in train_y], [int(v) for v in test_y]
    model = ReferenceGatedAttentionMIL(train_bags[0].shape[1], dropout=dropout).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-4)
    bag_loss = nn.CrossEntropyLoss()
    off_diagonal = torch.tensor([[False, True], [False, False]], device=device)
    order = list(range(len(train_bags)))
    best, acc = 0.0, 0.0
    for _ in range(epochs):
        rng.shuffle(order)
        model.train()
        for i in order:
            x = train_bags[i]
            y = torch.tensor(train_y[i], dtype=torch.long, device=device).unsqueeze(0)
            bag_logits, instance_logits = model(x)
            loss = bag_loss(bag_logits, y) + reference_conveyance(
                instance_logits, y.expand(instance_logits.shape[0]), off_diagonal
            )
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            loss.item()
        acc = _evaluate(model, test_bags, test_y)
        if acc > best:
            best = acc
            _evaluate(model, train_bags, train_y)  # the reference logs it
    return acc, best


# ----------------------------------------------------------------- folds


def _folds(data):
    """The stored 10 folds of a data set, or stratified ones where it has none."""
    if data.train_masks is not None:
        cv = MILBenchmarkCV(train_masks=data.train_masks)
    else:
        cv = MILBenchmarkCV(random_state=0)
    return cv.split(data.data, data.target)


def _fold_data(bags, y, train, test):
    return dict(train_bags=[bags[i] for i in train], train_y=y[train],
                test_bags=[bags[i] for i in test], test_y=y[test])


# ------------------------------------------------------------ step profile

_PROFILE_GROUPS = {
    "matrix products": ("aten::mm", "aten::addmm", "aten::bmm"),
    # The fused kernel, or the single-tensor loop's own kernels (its mul_ and
    # add_ share names with other operators and stay in "everything else").
    "Adam update": ("aten::_fused_adam_", "aten::lerp_", "aten::addcmul_",
                    "aten::sqrt", "aten::addcdiv_"),
    "gradient clipping": ("aten::_foreach_norm", "aten::linalg_vector_norm",
                          "aten::_foreach_mul_"),
}


def _profile(run, n_steps):
    """Milliseconds per step: each group of operators, the rest, the whole step.

    The step time comes from a run without the profiler (which adds a fixed
    cost to every operator); the groups' self CPU times from a profiled run.
    """
    from torch.profiler import ProfilerActivity, profile

    start = time.process_time()
    run()
    step = (time.process_time() - start) / n_steps * 1e3
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        run()
    groups = dict.fromkeys(_PROFILE_GROUPS, 0.0)
    for event in prof.key_averages():
        for group, names in _PROFILE_GROUPS.items():
            if event.key in names:
                groups[group] += event.self_cpu_time_total / 1e3 / n_steps
    groups["everything else"] = step - sum(groups.values())
    groups["step"] = step
    return groups


def profile_step(args):
    """Print where the time of one training step goes, skstruct and reference (ms)."""
    torch.set_num_threads(1)
    data = load_mil_benchmark("musk1", data_home=args.data_home)
    train, test = next(iter(_folds(data)))
    common = dict(_fold_data(data.data, data.target, train, test), seed=1, dropout=0.1)
    epochs = 10
    n_steps = epochs * len(train)
    # Warm up both paths (allocator, lazy imports), then profile.
    reference_fold(epochs=1, **common)
    skstruct_fold(epochs=1, batch_size=1, lr=args.lr, **common)
    rows = {
        "reference": _profile(lambda: reference_fold(epochs=epochs, **common), n_steps),
        "skstruct bs=1": _profile(
            lambda: skstruct_fold(epochs=epochs, batch_size=1, lr=args.lr, **common), n_steps
        ),
    }
    print(f"MUSK1 fold 1, {len(train)} bags x {epochs} epochs, one bag per step, 1 thread, "
          "ms per step (CPU time; the parts are self CPU times under torch.profiler; "
          "the epoch-end test-fold evaluation is in 'everything else'):")
    names = list(rows["reference"])
    print("part".ljust(20) + "".join(label.rjust(16) for label in rows))
    for name in names:
        print(name.ljust(20) + "".join(f"{rows[label][name]:16.2f}" for label in rows))
    floor = rows["skstruct bs=1"]["matrix products"] + rows["skstruct bs=1"]["Adam update"]
    print(f"\nreference step / (products + Adam of skstruct) = "
          f"{rows['reference']['step'] / floor:.1f}x: the most an exact one-bag-per-step "
          "implementation could gain with zero other cost.")


# ----------------------------------------------------------------- skstruct


def skstruct_fold(train_bags, train_y, test_bags, test_y, *, epochs, seed, dropout, batch_size, lr,
                  device="cpu"):
    # The paper's reference setup (whatever MILConveyance's defaults are).
    est = MILWithTestCurve(**reference_params(
        "musk1", dropout=dropout, max_epochs=epochs, batch_size=batch_size, lr=lr,
        random_state=seed, device=device,
    ))
    est._eval_set = (test_bags, test_y)
    est.fit(train_bags, train_y)
    curve = list(est.net_.history[:, "test_acc"])
    return float(est.score(test_bags, test_y)), float(max(curve))


def _timed(fn, **kwargs):
    wall, cpu = time.perf_counter(), time.process_time()
    last, best = fn(**kwargs)
    if torch.device(kwargs.get("device", "cpu")).type == "cuda":
        torch.cuda.synchronize()
    return dict(
        wall=time.perf_counter() - wall, cpu=time.process_time() - cpu, last=last, best=best
    )


def run_fold(name, fold, train, test, bags, y, args):
    torch.set_num_threads(1)
    common = dict(
        _fold_data(bags, y, train, test),
        epochs=args.epochs,
        seed=fold + 1,
        dropout=REFERENCE_DROPOUT.get(name, 0.1),
        device=args.device,
    )
    runs = [("reference", lambda: _timed(reference_fold, **common))]
    for bs in args.batch_sizes:
        lr = args.lr * (1.0 if args.same_lr else bs ** 0.5)
        runs.append(
            (f"skstruct bs={bs}", lambda bs=bs, lr=lr: _timed(skstruct_fold, batch_size=bs, lr=lr, **common))
        )
    # Rotate the order from fold to fold so that no variant always runs first.
    k = fold % len(runs)
    runs = runs[k:] + runs[:k]
    out = {}
    for label, run in runs:
        out[label] = run()
    return name, fold, out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", default="musk1,fox")
    parser.add_argument("--folds", type=int, default=10, help="first N of the 10 stored folds")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--batch-sizes", type=lambda s: [int(v) for v in s.split(",")], default=[1, 8])
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--same-lr", action="store_true",
                        help="every batch size B uses --lr (default: lr * sqrt(B), as "
                        "python -m skstruct reproduce mil does)")
    parser.add_argument("--n-jobs", type=int, default=1, help="folds in parallel (1 thread each)")
    parser.add_argument("--data-home", default=None)
    parser.add_argument("--device", default="cpu", help="torch device of both loops (e.g. cuda)")
    parser.add_argument("--output", default=os.path.join("benchmarks", "results", "bench_mil.json"))
    parser.add_argument("--profile-step", action="store_true",
                        help="only profile a one-bag training step (skstruct and reference)")
    args = parser.parse_args(argv)
    if args.profile_step:
        profile_step(args)
        return
    from joblib import Parallel, delayed

    tasks = []
    for name in args.datasets.split(","):
        data = load_mil_benchmark(name, data_home=args.data_home)
        for fold, (train, test) in enumerate(_folds(data)):
            if fold < args.folds:
                tasks.append((name, fold, train, test, data.data, data.target))
    print(
        f"bench_mil: {len(tasks)} folds, {args.epochs} epochs, skstruct batch sizes "
        f"{args.batch_sizes}, n_jobs={args.n_jobs}, torch {torch.__version__}, 1 thread per run",
        flush=True,
    )
    start = time.perf_counter()
    results = []
    for name, fold, out in Parallel(n_jobs=args.n_jobs, return_as="generator_unordered")(
        delayed(run_fold)(*task, args) for task in tasks
    ):
        results.append((name, fold, out))
        line = ", ".join(f"{k} {v['cpu']:.0f}s cpu {v['last']:.2f}/{v['best']:.2f}" for k, v in out.items())
        print(f"  {name} fold {fold + 1}: {line}", file=sys.stderr, flush=True)
    total = time.perf_counter() - start

    print(f"\nTotal wall time {total:.0f} s. Accuracy (%): last epoch / best epoch on test (optimistic).")
    header = ["data set", "variant", "folds", "median wall s", "median cpu s",
              "speedup wall", "speedup cpu", "acc last", "acc best"]
    rows = []
    for name in args.datasets.split(","):
        res = [out for n, _, out in results if n == name]
        if not res:
            continue
        ref_wall = sum(o["reference"]["wall"] for o in res)
        ref_cpu = sum(o["reference"]["cpu"] for o in res)
        for label in res[0]:
            vals = [o[label] for o in res]
            wall = sum(v["wall"] for v in vals)
            cpu = sum(v["cpu"] for v in vals)
            rows.append([
                name, label, str(len(vals)),
                f"{np.median([v['wall'] for v in vals]):.1f}",
                f"{np.median([v['cpu'] for v in vals]):.1f}",
                f"{ref_wall / wall:.2f}x", f"{ref_cpu / cpu:.2f}x",
                f"{100 * np.mean([v['last'] for v in vals]):.1f}",
                f"{100 * np.mean([v['best'] for v in vals]):.1f}",
            ])
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    print(" | ".join(h.ljust(w) for h, w in zip(header, widths)))
    print("-|-".join("-" * w for w in widths))
    for row in sorted(rows, key=lambda r: (r[0], r[1] != "reference", r[1])):
        print(" | ".join(c.ljust(w) for c, w in zip(row, widths)))
    os.makedirs(os.path.dirname(args.output) or ".", exist_ok=True)
    with open(args.output, "w") as fh:
        json.dump({"args": vars(args), "total_wall": total,
                   "folds": [{"name": n, "fold": f, **o} for n, f, o in results]}, fh, indent=1)
    print(f"\nPer-fold results: {args.output}")


if __name__ == "__main__":
    main()
