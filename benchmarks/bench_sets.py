"""Set-valued prediction on new data: mean size of average-K sets, coverage of conformal sets.

Checks the promise of ``predict_set`` on rows the model never saw, before
and after calibrating on a held-out split (issue 12).

Data (offline): sklearn's ``load_digits`` (1797 rows, 10 classes) and a
26-class tabular set from ``make_classification`` (3000 rows, 20 features,
16 informative, one cluster per class, ``class_sep=1.5``; a stand-in for
UCI letter, which cannot be fetched offline).

Protocol: ``--n-splits`` stratified 50/50 splits (``StratifiedShuffleSplit``,
seeded); features standardised inside a ``Pipeline``; one fixed network
(:class:`skstruct.CrossEntropyClassifier`, an MLP with ``--hidden`` ReLU
units, Adam, ``--epochs`` epochs, ``random_state`` = split index). Nothing
is tuned on test rows. Per split and data set:

* ``average_k_before``: the old behaviour, reproduced exactly: the network
  trains on every training row and the ``set_size`` threshold is calibrated
  on those same rows (``fit`` with ``set_size=1``, then
  ``set_params(set_size=...).calibrate(X_train)``);
* ``average_k``: ``set_rule='average_k', set_size=--set-size``; ``fit``
  calibrates on its held-out split;
* ``conformal``: ``set_rule='conformal', confidence_level=--level``;
* ``conformal_es``: the same with ``early_stopping=True`` (the stopping split
  and the calibration split are disjoint);
* ``average_k_es``: average-K with early stopping.

Reported: mean test set size (average-K: relative error to ``set_size``),
marginal test coverage (conformal), each as the mean over splits and its
standard deviation, plus the goals of the issue (size within 3 % of
``set_size``; coverage at least ``level - 0.005``). Writes
``benchmarks/results_committed/sets.json``.

``--coverage``: only ``conformal`` and ``conformal_es``, for as many splits
as ``--n-splits`` (e.g. 200), with the coverage expected from the number of
calibration rows ``n`` (mean ``ceil((n + 1) level) / (n + 1)`` and its
standard deviation per split and over the splits, for continuous scores).
Writes ``benchmarks/results_committed/sets_coverage.json``.

``--strategies``: per split, one network trained on 80 % of the training
half, the other 20 % calibrating, on the same rows: skstruct's
``SplitConformal`` with LAC, APS, RAPS (plain, randomized, and
``-rand-calibration``: randomized calibration with ``randomize_sets=False``,
MAPIE's default rule; RAPS with its
defaults ``lambda_reg=0.01, k_reg=1`` and with MAPIE's tuned ``k_star``,
``lambda_star`` on MAPIE's calibration rows) and class-conditional LAC / APS,
MAPIE's ``SplitConformalClassifier(prefit=True)`` (LAC; APS and RAPS with its
default ``include_last_label=True`` and ``'randomized'``) and crepes'
``WrapClassifier`` (marginal and ``class_cond=True``, ``smoothing=False``);
plus Average-K (mean size ``--set-size``, no coverage target): the softmax
threshold of the same network (prediction forced in) and
``AverageKClassifier`` (two heads, trained on the same 80 %), both
calibrated on the same 20 %. Reported per method: marginal coverage, mean
size, empty-set rate, mean absolute gap between per-class coverage and the
level, worst class coverage, size-stratified coverage (sizes 0, 1, 2, 3+)
and its worst non-empty group of at least 10 rows. Writes
``benchmarks/results_committed/sets_strategies.json``; ``--table FILE``
prints its markdown table (the README's).

Not compared: TorchCP (on PyPI, but it needs torchvision, transformers,
torch_geometric and the compiled torchsort), Fashion-MNIST (no offline copy:
torchvision and openml download it).

    OMP_NUM_THREADS=1 nice -n 19 python benchmarks/bench_sets.py
    OMP_NUM_THREADS=1 nice -n 19 python benchmarks/bench_sets.py --strategies
    python benchmarks/bench_sets.py --table benchmarks/results_committed/sets_strategies.json
"""

import argparse
import copy
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits, make_classification
from sklearn.model_selection import StratifiedShuffleSplit
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import skstruct
from skstruct import CrossEntropyClassifier


def load_datasets():
    """``{name: (X, y)}`` of the two data sets."""
    X_d, y_d = load_digits(return_X_y=True)
    X_c, y_c = make_classification(
        n_samples=3000, n_features=20, n_informative=16, n_redundant=2,
        n_classes=26, n_clusters_per_class=1, class_sep=1.5, random_state=0,
    )
    return {"digits": (X_d, y_d), "classification26": (X_c, y_c)}


def _fit(X, y, seed, args, **params):
    clf = CrossEntropyClassifier(
        hidden_layer_sizes=(args.hidden,), max_epochs=args.epochs, lr=1e-3,
        batch_size=64, random_state=seed, n_iter_no_change=5, **params,
    )
    return make_pipeline(StandardScaler(), clf).fit(X, y)


def _size(pipe, X):
    return float(skstruct.predict_set(pipe, X).sum(axis=1).mean())


def _coverage(pipe, X, y):
    sets = skstruct.predict_set(pipe, X)
    idx = np.searchsorted(pipe[-1].classes_, y)
    return float(sets[np.arange(len(y)), idx].mean())


def run_split(X, y, train, test, seed, args):
    Xtr, ytr, Xte, yte = X[train], y[train], X[test], y[test]
    out = {}
    # Old behaviour: train on all rows, calibrate the threshold on them.
    pipe = _fit(Xtr, ytr, seed, args, set_size=1.0)
    pipe[-1].set_params(set_size=args.set_size).calibrate(pipe[0].transform(Xtr))
    out["average_k_before"] = {"size": _size(pipe, Xte), "size_train": _size(pipe, Xtr)}
    for name, params in [
        ("average_k", dict(set_size=args.set_size)),
        ("average_k_es", dict(set_size=args.set_size, early_stopping=True)),
    ]:
        pipe = _fit(Xtr, ytr, seed, args, **params)
        out[name] = {"size": _size(pipe, Xte)}
    for name, params in [
        ("conformal", dict(set_rule="conformal", confidence_level=args.level)),
        ("conformal_es", dict(set_rule="conformal", confidence_level=args.level,
                              early_stopping=True)),
    ]:
        pipe = _fit(Xtr, ytr, seed, args, **params)
        out[name] = {"size": _size(pipe, Xte), "coverage": _coverage(pipe, Xte, yte)}
    return out


SIZE_GROUPS = ((0, 1, "0"), (1, 2, "1"), (2, 3, "2"), (3, 10**9, "3+"))


def _set_metrics(S, yt_i, n_classes, level):
    """Coverage, size, class-conditional gap and size-stratified coverage of boolean sets."""
    hit = S[np.arange(len(yt_i)), yt_i]
    per_class = [hit[yt_i == k].mean() for k in range(n_classes) if np.any(yt_i == k)]
    sizes = S.sum(axis=1)
    strata = {}
    for lo, hi, name in SIZE_GROUPS:
        rows = (sizes >= lo) & (sizes < hi)
        if rows.any():
            strata[name] = {"n": int(rows.sum()), "coverage": float(hit[rows].mean())}
    # Empty sets never cover: they are counted by empty_rate, not as a size group.
    big = [g["coverage"] for name, g in strata.items() if g["n"] >= 10 and name != "0"]
    return {
        "coverage": float(hit.mean()),
        "size": float(sizes.mean()),
        "empty_rate": float(np.mean(sizes == 0)),
        "class_coverage_gap": float(np.mean(np.abs(np.array(per_class) - level))),
        "worst_class_coverage": float(np.min(per_class)),
        # Worst coverage over the non-empty set-size groups (1, 2, 3+) of at
        # least 10 test rows (size-stratified coverage, Angelopoulos et al. 2021).
        "worst_size_group_coverage": float(min(big)) if big else float("nan"),
        "size_stratified": strata,
    }


def run_coverage(X, y, train, test, seed, args):
    """Conformal coverage only (with and without early stopping), for many splits."""
    out = {}
    variants = [
        ("conformal", dict(set_rule="conformal", confidence_level=args.level)),
        ("conformal_es", dict(set_rule="conformal", confidence_level=args.level,
                              early_stopping=True)),
    ]
    if args.calibration_cv:
        # Cross-fitted calibration: out-of-fold scores of every training row.
        variants += [(f"{name}_cv{args.calibration_cv}",
                      dict(params, calibration_cv=args.calibration_cv))
                     for name, params in variants]
    for name, params in variants:
        pipe = _fit(X[train], y[train], seed, args, **params)
        n_cal = (len(train) if params.get("calibration_cv")
                 else int(np.ceil(pipe[-1].validation_fraction * len(train))))
        out[name] = {"size": _size(pipe, X[test]), "coverage": _coverage(pipe, X[test], y[test]),
                     "n_calibration": n_cal}
    return out


def expected_coverage(n, level):
    """Mean and standard deviation of split-conformal coverage with n calibration rows.

    Coverage given the calibration rows is Beta(k, n + 1 - k) with
    k = ceil((n + 1) level) for continuous scores (Vovk 2012).
    """
    k = int(np.ceil((n + 1) * level))
    return k / (n + 1), float(np.sqrt(k * (n + 1 - k) / ((n + 1) ** 2 * (n + 2))))


def run_strategies(X, y, train, test, seed, args):
    """LAC / APS / RAPS / Mondrian / Average-K sets of skstruct, MAPIE and crepes on one fitted model.

    The network trains on 80 % of the training half; the other 20 % are the
    calibration rows of every library, the test half is scored. MAPIE's RAPS
    keeps 10 % of them to tune ``k_star`` and ``lambda_star``; skstruct's
    ``RAPS (MAPIE k, lambda)`` uses those values and MAPIE's remaining rows.
    """
    from crepes import WrapClassifier
    from mapie.classification import SplitConformalClassifier

    from skstruct import AverageKClassifier
    from skstruct.sets import APS, LAC, RAPS, SplitConformal

    fit_rows, cal_rows = next(
        StratifiedShuffleSplit(n_splits=1, test_size=0.2, random_state=seed).split(
            X[train], y[train]
        )
    )
    Xf, yf = X[train][fit_rows], y[train][fit_rows]
    Xc, yc = X[train][cal_rows], y[train][cal_rows]
    Xt, yt = X[test], y[test]
    pipe = _fit(Xf, yf, seed, args, set_size=1.0)
    pc, pt = pipe.predict_proba(Xc), pipe.predict_proba(Xt)
    yc_i, yt_i = np.searchsorted(pipe.classes_, yc), np.searchsorted(pipe.classes_, yt)
    sets = {}
    for name, score, cc in [
        ("LAC", LAC(), False), ("APS", APS(), False),
        ("APS-rand", APS(randomized=True), False),
        ("APS-rand-calibration", APS(randomized=True), False), ("RAPS", RAPS(), False),
        ("RAPS-rand", RAPS(randomized=True), False), ("LAC-mondrian", LAC(), True),
        ("APS-mondrian", APS(), True),
    ]:
        rule = SplitConformal(score, class_conditional=cc, random_state=seed,
                              randomize_sets=not name.endswith("-calibration"))
        sets["skstruct " + name] = rule.calibrate(pc, yc_i, args.level).predict_sets(pt)
    for name in ("lac", "aps", "raps"):
        mapie = SplitConformalClassifier(
            pipe, confidence_level=args.level, conformity_score=name, prefit=True,
            random_state=seed,
        ).conformalize(Xc, yc)
        sets["MAPIE " + name.upper()] = mapie.predict_set(Xt)[1][:, :, 0]
        if name != "lac":
            sets["MAPIE " + name.upper() + "-rand"] = mapie.predict_set(
                Xt, conformity_score_params={"include_last_label": "randomized"}
            )[1][:, :, 0]
        if name == "raps":
            cs = mapie._mapie_classifier.conformity_score_function_
            k, lam = int(np.ravel(cs.k_star)[0]), float(np.ravel(cs.lambda_star)[0])
            kept, _ = next(StratifiedShuffleSplit(
                n_splits=1, test_size=None, random_state=seed).split(Xc, yc))
            for suffix, randomized, rand_sets in (
                ("", False, True), ("-rand", True, True), ("-rand-calibration", True, False)
            ):
                rule = SplitConformal(RAPS(lambda_reg=lam, k_reg=k, randomized=randomized),
                                      random_state=seed, randomize_sets=rand_sets)
                rule.calibrate(pc[kept], yc_i[kept], args.level)
                sets["skstruct RAPS (MAPIE k, lambda)" + suffix] = rule.predict_sets(pt)
    for cc in (False, True):
        wrapped = WrapClassifier(pipe)
        wrapped.calibrate(Xc, yc, class_cond=cc)
        sets["crepes LAC" + ("-mondrian" if cc else "")] = np.asarray(
            wrapped.predict_set(Xt, confidence=args.level, labels=False, smoothing=False)
        ).astype(bool)
    # Average-K (mean size k on the calibration rows, no coverage target): the
    # softmax threshold of the fitted network vs the two-head network.
    ce_k = copy.deepcopy(pipe[-1]).set_params(set_size=args.set_size)
    ce_k.calibrate(pipe[0].transform(Xc))
    sets["skstruct Average-K softmax threshold"] = ce_k.predict_set(pipe[0].transform(Xt))
    two = make_pipeline(StandardScaler(), AverageKClassifier(
        k=args.set_size, hidden_layer_sizes=(args.hidden,), max_epochs=args.epochs,
        lr=1e-3, batch_size=64, random_state=seed,
    )).fit(Xf, yf)
    two[-1].calibrate(two[0].transform(Xc))
    sets["skstruct Average-K two-head"] = two[-1].predict_set(two[0].transform(Xt))
    return {name: _set_metrics(S, yt_i, len(pipe.classes_), args.level) for name, S in sets.items()}


def summarise(splits, args):
    summary = {}
    for method in splits[0]:
        row = {}
        for key in splits[0][method]:
            if isinstance(splits[0][method][key], dict):
                # size_stratified: per size group, the mean over the splits where it occurs.
                groups = {}
                for _, _, name in SIZE_GROUPS:
                    got = [s[method][key][name] for s in splits if name in s[method][key]]
                    if got:
                        groups[name] = {
                            "splits": len(got),
                            "mean_n": float(np.mean([g["n"] for g in got])),
                            "coverage": float(np.mean([g["coverage"] for g in got])),
                        }
                row[key] = groups
                continue
            values = np.array([s[method][key] for s in splits], dtype=np.float64)
            row[key] = {"mean": float(np.nanmean(values)), "std": float(np.nanstd(values, ddof=1))}
        if "coverage" not in row or "Average-K" in method or method.startswith("average_k"):
            rel = row["size"]["mean"] / args.set_size - 1.0
            row["size_relative_error"] = float(rel)
            row["goal_size_within_3pct"] = bool(abs(rel) <= 0.03)
        else:
            row["coverage_at_least_level_minus_half_point"] = bool(
                row["coverage"]["mean"] >= args.level - 0.005
            )
        summary[method] = row
    return summary


def records(dataset, splits):
    """One flat record per split and method (read by doc/benchmark_results.py)."""
    out = []
    for seed, split in enumerate(splits):
        for method, values in split.items():
            rec = {"name": f"{dataset}: {method}", "seed": seed}
            rec.update({k: v for k, v in values.items() if isinstance(v, (int, float))})
            out.append(rec)
    return out


def markdown_table(path, level):
    """The README table of a ``--strategies`` results file (means over splits)."""
    data = json.loads(Path(path).read_text())
    lines = [
        "| data set | method | coverage | mean size | empty | class gap | worst class | worst size group |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for dataset, block in data["datasets"].items():
        for method, row in block["summary"].items():
            cells = [dataset, method] + [
                f"{row[k]['mean']:.3f}" for k in (
                    "coverage", "size", "empty_rate", "class_coverage_gap", "worst_class_coverage",
                    "worst_size_group_coverage")
            ]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _command_line(argv):
    """The command as it was run: OMP_NUM_THREADS and the niceness when set."""
    parts = []
    if os.environ.get("OMP_NUM_THREADS"):
        parts.append(f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}")
    niceness = os.nice(0)
    if niceness:
        parts.append(f"nice -n {niceness}")
    parts.append("python benchmarks/bench_sets.py")
    parts.extend(argv if argv is not None else sys.argv[1:])
    return " ".join(parts)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-splits", type=int, default=20)
    parser.add_argument("--set-size", type=float, default=2.0)
    parser.add_argument("--level", type=float, default=0.9)
    parser.add_argument("--hidden", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument(
        "--out", default=str(Path(__file__).parent / "results_committed" / "sets.json")
    )
    parser.add_argument(
        "--datasets", nargs="+", default=["digits", "classification26"],
        choices=["digits", "classification26"],
    )
    parser.add_argument(
        "--calibration-cv", type=int, default=0,
        help="with --coverage: also run every variant with calibration_cv=K "
        "(cross-fitted calibration on out-of-fold scores)")
    parser.add_argument(
        "--coverage", action="store_true",
        help="conformal coverage only, with and without early stopping (writes "
        "results_committed/sets_coverage.json unless --out); use many --n-splits",
    )
    parser.add_argument(
        "--table", metavar="JSON",
        help="print the markdown table of a --strategies results file and exit",
    )
    parser.add_argument(
        "--strategies", action="store_true",
        help="compare LAC/APS/RAPS/Mondrian with MAPIE and crepes instead "
        "(writes results_committed/sets_strategies.json unless --out)",
    )
    args = parser.parse_args(argv)
    if args.coverage and args.out.endswith("sets.json"):
        args.out = args.out[: -len("sets.json")] + "sets_coverage.json"
    if args.table:
        print(markdown_table(args.table, args.level))
        return
    if args.strategies and args.out.endswith("sets.json"):
        args.out = args.out[: -len("sets.json")] + "sets_strategies.json"
    run = run_strategies if args.strategies else run_coverage if args.coverage else run_split
    results = {
        "command": _command_line(argv),
        "args": vars(args),
        "machine": (f"{platform.machine()}, {os.cpu_count()} CPUs, load average "
                    + " ".join(f"{x:.2f}" for x in os.getloadavg()) + " at start"),
        "datasets": {},
        "rows": [],
    }
    t_start = time.perf_counter()
    for name, (X, y) in load_datasets().items():
        if name not in args.datasets:
            continue
        t0 = time.perf_counter()
        splitter = StratifiedShuffleSplit(n_splits=args.n_splits, test_size=0.5, random_state=0)
        splits = []
        for seed, (train, test) in enumerate(splitter.split(X, y)):
            splits.append(run(X, y, train, test, seed, args))
            print(f"{name} split {seed}: " + ", ".join(
                f"{m} size={v['size']:.3f}" + (f" cov={v['coverage']:.3f}" if "coverage" in v else "")
                for m, v in splits[-1].items()), flush=True)
        results["datasets"][name] = {
            "n_samples": int(len(y)), "n_classes": int(len(np.unique(y))),
            "seconds": time.perf_counter() - t0,
            "summary": summarise(splits, args),
        }
        if not args.strategies:  # the strategies' per-split numbers are in "rows"
            results["datasets"][name]["splits"] = splits
        results["rows"] += records(name, splits)
        if args.coverage:
            for method, row in results["datasets"][name]["summary"].items():
                n_cal = splits[0][method]["n_calibration"]
                mean, sd = expected_coverage(n_cal, args.level)
                row["expected_coverage"] = {"mean": mean, "std_per_split": sd,
                                            "std_of_the_mean": sd / np.sqrt(len(splits))}
        for method, row in results["datasets"][name]["summary"].items():
            print(name, method, json.dumps({k: v for k, v in row.items()}))
    results["wall_seconds"] = time.perf_counter() - t_start
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=1) + "\n")
    print("wrote", args.out)


if __name__ == "__main__":
    main()
