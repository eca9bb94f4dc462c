"""Forward + backward time and peak memory of every structured loss against ``F.cross_entropy``.

Same logits and targets for all: B=512 rows, C in {10, 100, 1000, 10000}.
Each structured loss runs in its module form and in its functional form (the
functional forms cache the prepared structure, so after the first call the
two should cost the same):

* Conveyance: a random plausibility matrix Q with about 5 plausible classes
  per label (the sparse-index path) and, at the largest C, a dense Q (about
  half the classes plausible; the dense-mask path);
* HACE: a hierarchy of fan-out 10 over the C leaves (depth log10 C);
* EMD2 (ordinal scale, a random rank permutation) and EMD2-ground (a random
  ground distance, ``ce_weight=1``);
* Average-K (k=3): two heads of C logits each. It is reported against
  cross-entropy of one head *and* against the two-head floor
  ``cross_entropy(z) + binary_cross_entropy_with_logits(f)``.

All runs are interleaved, one call each per repeat, in a new (seeded
random) order every repeat, so load from other processes and the position
in a round hit them alike; the tables give the median over ``--repeats``
repeats after a warm-up and the ratio of medians to cross-entropy. Peak
memory is measured once per run with a ``TorchDispatchMode`` that counts the
bytes of every tensor storage allocated during forward + backward (the
gradient of the logits included) and frees them when their storage dies; it
is reported in units of one (B, C) float32 tensor. ``--clock cpu`` (process
CPU time) is less disturbed by other processes than wall time on a loaded
machine. The results go to ``--output`` as JSON::

    OMP_NUM_THREADS=1 python benchmarks/bench_losses.py --repeats 20 --threads 1 \\
        --clock cpu --output benchmarks/results_committed/bench_losses.json

``--eager`` adds each loss's eager torch path (numba's fused CPU kernels
switched off with ``skstruct.losses._numba.eager_only``) as rows
``eager:<loss>`` in the same rounds, with ``time_ratio_vs_eager`` on each
fused row; ``--losses conveyance hace ...`` times only those losses.

``--rev REV`` adds, in the same process and the same interleaved rounds, the
losses of the package as it was at git revision ``REV`` (extracted with
``git archive`` and imported as ``skstruct_before``), as rows
``before:<loss>`` with the same data; each current row then also gets
``time_ratio_vs_before``. This is the fair before/after: both sides see the
same load.
"""

import argparse
import importlib.util
import io
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import weakref

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

import skstruct.losses
import skstruct.structures


class PeakMemory(TorchDispatchMode):
    """Peak bytes of the tensor storages allocated by the ops run inside the block."""

    # It only watches real tensors: the losses' fused CPU kernels may run.
    allows_fused_kernels = True

    def __init__(self):
        super().__init__()
        self.live = self.peak = 0
        self._seen = set()

    def _free(self, key, nbytes):
        self._seen.discard(key)
        self.live -= nbytes

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        # An output on an input's storage (a view, an in-place or out= result)
        # allocates nothing. Without this check a view of a tensor made before
        # the block (a prepared structure such as Q.T) would count as new.
        inputs = {t.untyped_storage().data_ptr() for t in tree_flatten((args, kwargs))[0]
                  if isinstance(t, torch.Tensor)}
        for tensor in tree_flatten(out)[0]:
            if isinstance(tensor, torch.Tensor):
                storage = tensor.untyped_storage()
                key, nbytes = storage.data_ptr(), storage.nbytes()
                if nbytes == 0 or key in self._seen or key in inputs:
                    continue  # already counted, or memory the op did not allocate
                self._seen.add(key)
                self.live += nbytes
                self.peak = max(self.peak, self.live)
                weakref.finalize(storage, self._free, key, nbytes)
        return out


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _random_plausible(n_classes, per_label, generator):
    density = min(1.0, per_label / n_classes)
    return torch.rand(n_classes, n_classes, generator=generator) < density


def _fanout_hierarchy(Hierarchy, n_classes, fanout=10):
    """Leaves ``L0..L{C-1}`` grouped ``fanout`` at a time, level by level."""
    parents = {}
    level = [f"L{i}" for i in range(n_classes)]
    depth = 1
    while len(level) > fanout:
        groups = [f"N{depth}_{i // fanout}" for i in range(len(level))]
        parents.update(zip(level, groups))
        level = list(dict.fromkeys(groups))
        depth += 1
    if len(level) > 1:
        parents.update((node, "root") for node in level)
    return Hierarchy(parents)


def make_runs(n_classes, *, batch_size, device, dtype, seed=0, dense_q=False, package=skstruct):
    """name -> (zero-argument forward+backward callable, baseline name).

    ``package`` is the skstruct package whose losses run (another revision's
    for ``--rev``); the same ``seed`` gives the same data for every package.
    """
    L = package.losses
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(batch_size, n_classes, generator=gen).to(device, dtype).requires_grad_(True)
    f = torch.randn(batch_size, n_classes, generator=gen).to(device, dtype).requires_grad_(True)
    target = torch.randint(n_classes, (batch_size,), generator=gen).to(device)
    per_label = n_classes // 2 if dense_q else 5
    Q = _random_plausible(n_classes, per_label, gen).to(device)
    hierarchy = _fanout_hierarchy(package.structures.Hierarchy, n_classes)
    hace_target = target  # leaves L0.. are hierarchy.classes in sorted order: remap
    order = {c: i for i, c in enumerate(hierarchy.classes.tolist())}
    hace_cols = torch.tensor([order[f"L{i}"] for i in range(n_classes)], device=device)
    hace_target = hace_cols[target]
    rank = torch.randperm(n_classes, generator=gen).to(device)
    distance = torch.rand(n_classes, n_classes, generator=gen)
    distance = ((distance + distance.T) / 2).fill_diagonal_(0.0).to(device)
    modules = {
        "conveyance": L.ConveyanceLoss(Q).to(device),
        "hace": L.HACELoss(hierarchy).to(device),
        "emd2": L.EMD2Loss(rank=rank).to(device),
        "emd2_ground": L.EMD2GroundLoss(distance).to(device),
        "average_k": L.AverageKLoss(k=3),
    }
    k = min(3.0, n_classes - 0.5)
    modules["average_k"] = L.AverageKLoss(k=k)

    def step(loss_fn, *inputs):
        def run():
            loss_fn().backward()
            for x in inputs:
                x.grad = None
        return run

    runs = {
        "cross_entropy": (step(lambda: F.cross_entropy(z, target), z), None),
        "two_head_floor": (
            step(lambda: F.cross_entropy(z, target)
                 + F.binary_cross_entropy_with_logits(f, F.one_hot(target, n_classes).to(f.dtype)),
                 z, f),
            None,
        ),
    }
    if dense_q:
        return {
            "cross_entropy": runs["cross_entropy"],
            "conveyance/module": (step(lambda: modules["conveyance"](z, target), z), "cross_entropy"),
            "conveyance/functional": (step(lambda: L.conveyance_loss(z, target, Q), z), "cross_entropy"),
        }
    runs.update({
        "conveyance/module": (step(lambda: modules["conveyance"](z, target), z), "cross_entropy"),
        "conveyance/functional": (step(lambda: L.conveyance_loss(z, target, Q), z), "cross_entropy"),
        "hace/module": (step(lambda: modules["hace"](z, hace_target), z), "cross_entropy"),
        "hace/functional": (step(lambda: L.hace_loss(z, hace_target, hierarchy), z), "cross_entropy"),
        "emd2/module": (step(lambda: modules["emd2"](z, target), z), "cross_entropy"),
        "emd2/functional": (step(lambda: L.emd2_loss(z, target, rank=rank), z), "cross_entropy"),
        "emd2_ground/module": (step(lambda: modules["emd2_ground"](z, target), z), "cross_entropy"),
        "emd2_ground/functional": (
            step(lambda: L.emd2_ground_loss(z, target, distance), z), "cross_entropy"),
        "average_k/module": (step(lambda: modules["average_k"]((z, f), target), z, f),
                             "two_head_floor"),
        "average_k/functional": (step(lambda: L.average_k_loss(z, f, target, k=k), z, f),
                                 "two_head_floor"),
    })
    return runs


def _eager(run):
    """``run`` with the fused CPU kernels switched off (the eager torch path)."""
    from skstruct.losses._numba import eager_only

    def eager_run():
        with eager_only():
            run()
    return eager_run


def load_revision(rev):
    """The ``skstruct`` package of git revision ``rev``, imported as ``skstruct_before``."""
    archive = subprocess.run(["git", "archive", rev, "skstruct"], check=True,
                             capture_output=True).stdout
    root = os.path.join(tempfile.mkdtemp(prefix="skstruct_rev_"), "skstruct")
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(os.path.dirname(root), filter="data")
    name = "skstruct_before"
    spec = importlib.util.spec_from_file_location(
        name, os.path.join(root, "__init__.py"), submodule_search_locations=[root])
    package = importlib.util.module_from_spec(spec)
    sys.modules[name] = package
    spec.loader.exec_module(package)
    for sub in ("losses", "structures"):
        importlib.import_module(f"{name}.{sub}")
    return package


def bench(runs, *, repeats, warmup, device, clock):
    times = {name: [] for name in runs}
    names = list(runs)
    order = random.Random(0)
    for i in range(warmup + repeats):
        # A new order every round (seeded): in a fixed order the first runs
        # of a round read a few per cent slower (unchanged losses read 1.06 x
        # their "before:" twins when they always ran first), and alternating
        # the order runs the first and last entries twice in a row.
        order.shuffle(names)
        for name in names:
            run = runs[name][0]
            _sync(device)
            start = clock()
            run()
            _sync(device)
            if i >= warmup:
                times[name].append(clock() - start)
    peaks = {}
    for name, (run, _) in runs.items():
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
            base = torch.cuda.memory_allocated(device)
            run()
            peaks[name] = torch.cuda.max_memory_allocated(device) - base
        else:
            meter = PeakMemory()
            with meter:
                run()
            peaks[name] = meter.peak
    return times, peaks


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--classes", type=int, nargs="+", default=[10, 100, 1000, 10000])
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--clock", default="wall", choices=["wall", "cpu"])
    parser.add_argument("--output", default="benchmarks/results/bench_losses.json")
    parser.add_argument("--note", default="", help="free text stored in the JSON (e.g. load)")
    parser.add_argument("--rev", default=None,
                        help="also time the losses of this git revision (rows before:<loss>)")
    parser.add_argument("--losses", nargs="+", default=None,
                        help="only these losses (e.g. conveyance hace), besides the baselines")
    parser.add_argument("--eager", action="store_true",
                        help="also time the eager torch path of each loss in the same rounds "
                             "(rows eager:<loss>, numba's fused kernels switched off for them)")
    args = parser.parse_args(argv)
    if args.clock == "cpu" and args.device != "cpu":
        parser.error("--clock cpu measures host CPU time: use it with --device cpu")
    clock = time.perf_counter if args.clock == "wall" else time.process_time
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    dtype = getattr(torch, args.dtype)
    unit = args.batch_size * 4  # bytes of one float32 (B, 1) column; x C below
    meta = {
        "device": str(device), "dtype": args.dtype, "batch_size": args.batch_size,
        "repeats": args.repeats, "threads": torch.get_num_threads(), "clock": args.clock,
        "torch": torch.__version__, "python": platform.python_version(), "note": args.note,
        "rev": args.rev,
    }
    before = load_revision(args.rev) if args.rev else None
    print(" ".join(f"{k}={v}" for k, v in meta.items()))
    results = []
    configs = [(c, False) for c in args.classes] + [(max(args.classes), True)]
    for n_classes, dense_q in configs:
        runs = make_runs(n_classes, batch_size=args.batch_size, device=device, dtype=dtype,
                         dense_q=dense_q)
        if args.losses is not None:
            runs = {name: run for name, run in runs.items()
                    if run[1] is None or name.split("/")[0] in args.losses}
        if args.eager:
            runs.update({f"eager:{name}": (_eager(run[0]), run[1])
                         for name, run in list(runs.items()) if run[1] is not None})
        if before is not None:
            old = make_runs(n_classes, batch_size=args.batch_size, device=device, dtype=dtype,
                            dense_q=dense_q, package=before)
            runs.update({f"before:{name}": run for name, run in old.items()
                         if run[1] is not None and (args.losses is None
                                                    or name.split("/")[0] in args.losses)})
        times, peaks = bench(runs, repeats=args.repeats, warmup=args.warmup, device=device,
                             clock=clock)
        label = f"C={n_classes}" + (" (dense Q)" if dense_q else "")
        print(f"\n{label}\n{'loss':>24} {'ms':>9} {'ratio':>6} {'vs':>15} {'peak/BC':>8} "
              f"{'mem ratio':>9}")
        for name, (_, baseline) in runs.items():
            ms = statistics.median(times[name]) * 1e3
            row = {"n_classes": n_classes, "dense_q": dense_q, "loss": name, "median_ms": ms,
                   "min_ms": min(times[name]) * 1e3, "peak_bytes": peaks[name],
                   "peak_in_BC": peaks[name] / (unit * n_classes), "baseline": baseline}
            if baseline is not None:
                row["time_ratio"] = ms / (statistics.median(times[baseline]) * 1e3)
                row["memory_ratio"] = peaks[name] / peaks[baseline]
                if baseline != "cross_entropy":
                    row["time_ratio_vs_cross_entropy"] = statistics.median(times[name]) / (
                        statistics.median(times["cross_entropy"]))
                if f"before:{name}" in times:
                    row["time_ratio_vs_before"] = ms / (
                        statistics.median(times[f"before:{name}"]) * 1e3)
                if f"eager:{name}" in times:
                    row["time_ratio_vs_eager"] = ms / (
                        statistics.median(times[f"eager:{name}"]) * 1e3)
            results.append(row)
            print(f"{name:>24} {ms:>9.3f} {row.get('time_ratio', 1.0):>6.2f} "
                  f"{baseline or '-':>15} {row['peak_in_BC']:>8.2f} "
                  f"{row.get('memory_ratio', 1.0):>9.2f}")
    out = {"benchmark": "bench_losses", "meta": meta, "results": results}
    if args.output:
        os.makedirs(os.path.dirname(args.output) or ".", exist_ok=True)
        with open(args.output, "w") as fh:
            json.dump(out, fh, indent=1)
        print(f"\nwrote {args.output}")


if __name__ == "__main__":
    main()
