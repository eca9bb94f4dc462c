"""Print the Markdown tables of ``benchmarks/README.md`` from the results files.

    python benchmarks/results_table.py losses benchmarks/results_committed/bench_losses.json
    python benchmarks/results_table.py training benchmarks/results_committed/bench_training.json
    python benchmarks/results_table.py mil NEW.json OLD.json
    python benchmarks/results_table.py stacking STUDY.json DEFAULT.json

``mil``: two honest MIL results files of ``python -m skstruct reproduce mil``
(same folds): the mean and std over the folds of each, the spread of the
repetition means of the first, and the difference first - second paired
fold by fold (mean +- standard error over the folds) with the summed fit
times;

``stacking``: every row of a ``bench_mil_stacking.py`` file (mean +- std
over the folds), the mean of a ``reproduce mil`` file on the same folds,
and the stacking row minus that file, paired fold by fold (+- SE);

``losses``: one row per loss, one column per C (``time ratio / peak-memory
ratio`` against the row's baseline, as ``bench_losses.py`` computes them),
and for a file written with ``--rev`` the time of each loss over its own
time at that revision;
``training``: every ratio of ``bench_training.py`` (ratio of medians, and
the ratio of minima computed from the runs stored in the file), then the
per-step table (median step times and their ratio) where the file has one.
"""

import json
import sys


def losses(path):
    rows = json.load(open(path))["results"]
    by_case = {}
    for r in rows:
        if r["baseline"] is None:
            continue
        col = f"C={r['n_classes']}" + (" dense Q" if r["dense_q"] else "")
        by_case.setdefault(r["loss"], {})[col] = r
    base = {(r["n_classes"], r["dense_q"], r["loss"]): r for r in rows}
    cols = []
    for r in rows:
        col = f"C={r['n_classes']}" + (" dense Q" if r["dense_q"] else "")
        if col not in cols:
            cols.append(col)
    print("| loss (time / peak memory vs baseline) | " + " | ".join(cols) + " |")
    print("|---" * (len(cols) + 1) + "|")
    for loss, cells in by_case.items():
        out = []
        for col in cols:
            r = cells.get(col)
            if r is None:
                out.append("-")
                continue
            b = base[(r["n_classes"], r["dense_q"], r["baseline"])]
            out.append(f"{r['median_ms'] / b['median_ms']:.2f} / {r['peak_bytes'] / b['peak_bytes']:.2f}")
        print(f"| {loss} | " + " | ".join(out) + " |")
    # bench_losses.py --rev: each loss against the other revision, same rounds
    if not any("time_ratio_vs_before" in r for r in rows):
        return
    print()
    print("| loss (time now / time at --rev) | " + " | ".join(cols) + " |")
    print("|---" * (len(cols) + 1) + "|")
    for loss, cells in by_case.items():
        if loss.startswith("before:"):
            continue
        out = [f"{cells[c]['time_ratio_vs_before']:.2f}" if c in cells else "-" for c in cols]
        print(f"| {loss} | " + " | ".join(out) + " |")


def training(path):
    results = json.load(open(path))["results"]
    print("| measurement | ratio of medians | ratio of minima |")
    print("|---|---|---|")

    def row(name, v):
        extra = ""
        if "throughput_ratio" in v:
            extra = f" (throughput {v['throughput_ratio']:.3f})"
        times = v["all_s"]
        minima = f"{min(times[v['numerator']]) / min(times[v['denominator']]):.3f}"
        print(f"| {name}: {v['numerator']} / {v['denominator']} | {v['ratio']:.3f}{extra} | {minima} |")

    fit = results.get("fit_vs_hand")
    if fit is not None and "fit_vs_hand_fused" not in results and "hand_written_fused" in fit["all_s"]:
        # Files written before bench_training reported it: same runs.
        times = fit["all_s"]
        median = sorted(times["skstruct_fit"])[len(times["skstruct_fit"]) // 2]
        fused = sorted(times["hand_written_fused"])[len(times["hand_written_fused"]) // 2]
        results = dict(results, fit_vs_hand_fused=dict(
            numerator="skstruct_fit", denominator="hand_written_fused",
            ratio=median / fused, all_s=times))
    per_step = results.pop("per_step", None)
    for name, value in results.items():
        if "ratio" in value:
            row(name, value)
        else:
            for sub, v in value.items():
                row(f"{name}/{sub}", v)
    if per_step:
        # Median CPU time of one training step (files from bench_training.py
        # after the per-step timer was added).
        print()
        print("| per step | median step (us) | ratio of median steps |")
        print("|---|---|---|")
        for name, v in per_step.items():
            us = v["median_step_us"]
            print(f"| {name}: {v['numerator']} / {v['denominator']} | "
                  f"{us[v['numerator']]:.0f} / {us[v['denominator']]:.0f} | {v['ratio']:.3f} |")


def mil(path, other):
    import numpy as np

    new, old = (json.load(open(p))["results"] for p in (path, other))
    print(f"| | {' | '.join(name.upper() for name in new)} |")
    print(f"|---|{'---|' * len(new)}")

    def cells(fn):
        return " | ".join(fn(name) for name in new)

    def stats(results, name):
        a = 100 * np.asarray(results[name]["honest"])
        return f"{a.mean():.1f} ± {a.std():.1f}"

    def spread(name):
        a = 100 * np.asarray(new[name]["honest"])
        reps = a.reshape(-1, 10).mean(1)
        return f"{reps.min():.1f}-{reps.max():.1f}"

    def paired(name):
        d = 100 * (np.asarray(new[name]["honest"]) - np.asarray(old[name]["honest"]))
        return f"{d.mean():+.1f} ± {d.std(ddof=1) / np.sqrt(len(d)):.1f}"

    def seconds(name):
        return f"{new[name]['cpu_seconds']:,.0f} / {old[name]['cpu_seconds']:,.0f}"

    print(f"| {path} | {cells(lambda n: stats(new, n))} |")
    print(f"| its repetition means | {cells(spread)} |")
    print(f"| {other} | {cells(lambda n: stats(old, n))} |")
    print(f"| first - second, paired (± SE) | {cells(paired)} |")
    print(f"| summed fit time, first / second (s) | {cells(seconds)} |")


def stacking(path, default):
    """Rows of a ``bench_mil_stacking.py`` file; its stacking paired with a ``reproduce mil`` file."""
    import numpy as np

    study = json.load(open(path))["summary"]
    base = json.load(open(default))["results"]
    names = list(study)
    print(f"| 5 x 10 folds, honest | {' | '.join(name.upper() for name in names)} |")
    print(f"|---|{'---|' * len(names)}")
    variants = [k for k in study[names[0]] if isinstance(study[names[0]][k], dict)]
    for variant in variants:
        row = " | ".join(
            f"{study[n][variant]['mean']:.1f} ± {study[n][variant]['std_over_folds']:.1f}"
            for n in names
        )
        print(f"| {variant} | {row} |")
    row = " | ".join(f"{100 * np.mean(base[n]['honest']):.1f}" for n in names)
    print(f"| {default} | {row} |")

    def paired(name):
        stacked = np.asarray(study[name]["stacking"]["per_fold"])
        d = 100 * (stacked - np.asarray(base[name]["honest"]))
        return f"{d.mean():+.1f} ± {d.std(ddof=1) / np.sqrt(len(d)):.1f}"

    print(f"| stacking - {default}, paired (± SE) | {' | '.join(paired(n) for n in names)} |")


if __name__ == "__main__":
    if sys.argv[1] == "mil":
        mil(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "stacking":
        stacking(sys.argv[2], sys.argv[3])
    else:
        {"losses": losses, "training": training}[sys.argv[1]](sys.argv[2])
