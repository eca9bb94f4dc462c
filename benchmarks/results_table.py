"""Print the Markdown tables of ``benchmarks/README.md`` from the results files.

    python benchmarks/results_table.py losses benchmarks/results_committed/bench_losses.json
    python benchmarks/results_table.py training benchmarks/results_committed/bench_training.json

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


if __name__ == "__main__":
    {"losses": losses, "training": training}[sys.argv[1]](sys.argv[2])
