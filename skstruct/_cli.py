"""Command line of skstruct: ``python -m skstruct reproduce mil``.

``reproduce mil`` runs the classical MIL protocol (10-fold cross-validation
on MUSK1, MUSK2, ELEPHANT, FOX and TIGER, on the stored folds that ship with
the data) and prints, per data set, the honest bag accuracy of
``MILConveyance()`` with its defaults, measured by sklearn's
``cross_validate`` (nothing is chosen on a test fold), beside the published
honest results, the numbers the paper reports and those of the authors'
public code. ``--protocol paper`` (or ``both``) also runs the paper's
reference setup with the best epoch chosen on the test fold, an optimistic
estimate labelled so. The harness lives in :mod:`skstruct.reproduce`.
"""

import argparse
import contextlib
import os
import sys
import time

import numpy as np
import torch

from ._mil import MILConveyance
from .datasets._mil import MIL_BENCHMARKS, load_mil_benchmark
from .reproduce import (
    PAPER_REPORTED,
    PUBLIC_CODE,
    PUBLIC_CODE_SECONDS,
    PUBLISHED_HONEST,
    benchmark_folds,
    honest_scores,
    mil_vote,
    paper_protocol_fold,
    reference_params,
)


def _dataset_names(values):
    """Data set names from ``--datasets`` (space- and/or comma-separated)."""
    if isinstance(values, str):
        values = [values]
    names = [n.strip().lower() for v in values for n in v.split(",") if n.strip()]
    unknown = [n for n in names if n not in MIL_BENCHMARKS]
    if unknown:
        raise SystemExit(
            f"error: unknown data set(s) {unknown}; choose from {list(MIL_BENCHMARKS)}."
        )
    if not names:
        raise SystemExit(f"error: --datasets is empty; choose from {list(MIL_BENCHMARKS)}.")
    return list(dict.fromkeys(names))


def _fmt(values):
    values = np.asarray(values, dtype=float) * 100
    if len(values) == 0:
        return "-"
    return f"{values.mean():5.1f} ± {values.std():4.1f}"


def _print_table(rows_by_name, names, missing, out, *, protocols,
                 honest_label="MILConveyance defaults"):
    baselines = [v for k, v in PUBLISHED_HONEST.items() if "2018" in k]
    best_2018 = {name: max(v[name] for v in baselines) for name in names}
    loss_attention = next(v for k, v in PUBLISHED_HONEST.items() if "Loss-Attention" in k)
    header = ["data set"]
    if "honest" in protocols:
        header.append(f"honest ({honest_label}, cross_validate)")
    if "paper" in protocols:
        header += ["paper setup, last epoch", "paper setup, best epoch on test (optimistic)"]
    header += ["best honest 2018 (mi-Net, gated attention)", "Loss-Attention 2020",
               "paper reported", "public code best / last",
               "folds", "time"]
    rows = []
    for name in names:
        row = [name.upper()]
        if name in missing:
            row += ["not found"] * (len(header) - 6)
            row += [f"{best_2018[name]:.1f}", f"{loss_attention[name]:.1f}",
                    f"{PAPER_REPORTED[name]:.1f}",
                    "{:.1f} / {:.1f}".format(*PUBLIC_CODE[name]), "0", "-"]
            rows.append(row)
            continue
        res = rows_by_name[name]
        if "honest" in protocols:
            row.append(_fmt(res["honest"]))
        if "paper" in protocols:
            row += [_fmt(res["last"]), _fmt(res["best"])]
        n_folds = max(len(res.get("honest", [])), len(res.get("last", [])))
        wall = f"{res['seconds']:.0f} s (fits {res['cpu_seconds']:.0f} s)"
        public_time = PUBLIC_CODE_SECONDS.get(name)
        if public_time is not None and "paper" in protocols:
            wall += f" (public code {public_time:.0f} s)"
        row += [f"{best_2018[name]:.1f}", f"{loss_attention[name]:.1f}",
                f"{PAPER_REPORTED[name]:.1f}",
                "{:.1f} / {:.1f}".format(*PUBLIC_CODE[name]), str(n_folds), wall]
        rows.append(row)
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    print(" | ".join(h.ljust(w) for h, w in zip(header, widths)), file=out)
    print("-|-".join("-" * w for w in widths), file=out)
    for row in rows:
        print(" | ".join(c.ljust(w) for c, w in zip(row, widths)), file=out)


def _honest_estimator(args, threads):
    """``MILConveyance()`` with its defaults (only explicit flags override them), or the vote."""
    if getattr(args, "model", "milconveyance") == "vote":
        given = [f"--{flag.replace('_', '-')}"
                 for flag in ("epochs", "batch_size", "lr", "hidden", "embedding")
                 if getattr(args, flag, None)]
        if given:
            raise SystemExit(
                f"error: --model vote trains each member with its own settings; "
                f"{', '.join(given)} apply to --model milconveyance only."
            )
        return mil_vote(random_state=args.seed, n_threads=threads, device=args.device)
    params = dict(random_state=args.seed, n_threads=threads, device=args.device)
    for flag, param in (("epochs", "max_epochs"), ("batch_size", "batch_size"), ("lr", "lr"),
                        ("embedding", "embedding")):
        value = getattr(args, flag, None)
        if value is not None:
            params[param] = value
    if getattr(args, "hidden", None):
        params["hidden_layer_sizes"] = tuple(args.hidden)
    return MILConveyance(**params)


def _shown_params(estimator):
    """The parameters of ``estimator`` that the table's header names, ``'auto'`` resolved."""
    names = ["embedding"]
    names += ["n_prototypes", "stacking"] if estimator.embedding == "prototypes" else [
        "hidden_layer_sizes", "dropout"]
    names += ["max_epochs", "batch_size", "lr", "optimizer"]
    shown = []
    for name in names:
        value = getattr(estimator, name)
        text = f"{name}={value!r}"
        if name == "stacking":
            text += " (3 models stacked, or an SVM)" if estimator._stacks() else " (one model)"
        elif isinstance(value, str) and value == "auto":
            used = estimator._training_value(name)
            if isinstance(used, type):  # an optimizer class
                used = "lbfgs" if issubclass(used, torch.optim.LBFGS) else used.__name__.lower()
            text += " (all bags)" if name == "batch_size" and used == -1 else f" ({used})"
        shown.append(text)
    return ", ".join(shown)


def reproduce_mil(args, out=None, progress=None):
    """Run ``reproduce mil`` with parsed ``args``.

    Returns
    -------
    results : dict
        ``{name: {"honest": [...], "last": [...], "best": [...], ...}}`` per
        data set found, and ``missing``: the data sets that were not found.
    """
    from joblib import Parallel, delayed, effective_n_jobs, parallel_backend

    out = sys.stdout if out is None else out
    progress = sys.stderr if progress is None else progress
    names = _dataset_names(args.datasets)
    protocols = {"honest": ["honest"], "paper": ["paper"], "both": ["honest", "paper"]}[
        args.protocol
    ]
    backend = contextlib.nullcontext()
    if getattr(args, "scheduler", None):
        # Folds run on a Dask cluster through joblib's dask backend.
        try:
            from distributed import Client
        except ImportError:
            raise SystemExit(
                "error: --scheduler needs the distributed extra: "
                "pip install 'skstruct[distributed]'."
            ) from None
        client = Client(args.scheduler)
        backend = parallel_backend("dask")
        n_jobs = max(1, sum(client.nthreads().values()))
        threads = args.threads or 1
        print(f"Dask scheduler {args.scheduler}: {n_jobs} worker threads", file=out)
    else:
        n_jobs = effective_n_jobs(args.n_jobs)
        threads = args.threads or max(1, (os.cpu_count() or 1) // n_jobs)
    honest_est = _honest_estimator(args, threads)
    vote = not isinstance(honest_est, MILConveyance)
    if "honest" in protocols:
        if not vote:
            what = f"MILConveyance({_shown_params(honest_est)}, ...)"
        else:
            what = ("VotingClassifier(majority of "
                    f"{', '.join(name for name, _ in honest_est.estimators)})")
        print(f"skstruct reproduce mil: honest protocol = cross_validate({what}); "
              f"{args.repetitions} x 10 folds, n_jobs={n_jobs}, torch threads per job={threads}",
              file=out)
    if "paper" in protocols:
        paper_bs = args.batch_size or 1
        paper_epochs = args.epochs or 40
        print(f"paper protocol: the reference setup of the paper's code ({paper_epochs} epochs, "
              f"batch_size={paper_bs}, no feature scaling, one model), best epoch chosen on the "
              "test fold (optimistic)", file=out)
    results, missing = {}, []
    start = time.perf_counter()
    with backend:
        for name in names:
            try:
                data = load_mil_benchmark(name, data_home=args.data_home)
            except FileNotFoundError as exc:
                missing.append(name)
                print(f"error: {name}: {exc}", file=out)
                continue
            folds, how = benchmark_folds(
                data, repetitions=args.repetitions, n_folds=args.folds, cv=args.cv,
                seed=args.seed,
            )
            print(f"  {name}: {len(data.data)} bags, {sum(len(b) for b in data.data)} "
                  f"instances, from {data.source}; {how}", file=out, flush=True)
            res = {"seconds": 0.0, "cpu_seconds": 0.0}
            t0 = time.perf_counter()
            if "honest" in protocols:
                scores = honest_scores(honest_est, data, folds, n_jobs=n_jobs)
                res["honest"] = [float(v) for v in scores["test_score"]]
                res["fit_time"] = [float(v) for v in scores["fit_time"]]
                res["cpu_seconds"] += float(np.sum(scores["fit_time"]) + np.sum(scores["score_time"]))
                if not args.quiet:
                    print(f"  {name}: honest {_fmt(res['honest'])} over {len(folds)} folds "
                          f"({time.perf_counter() - t0:.0f} s)", file=progress, flush=True)
            if "paper" in protocols:
                params = reference_params(name, batch_size=paper_bs, lr=args.lr,
                                          max_epochs=paper_epochs, device=args.device)
                jobs = (
                    delayed(paper_protocol_fold)(
                        data.data, data.target, train, test,
                        {**params, "random_state": args.seed + 1000 * (i // args.folds) + i % args.folds + 1},
                        threads=threads,
                    )
                    for i, (train, test) in enumerate(folds)
                )
                folds_out = Parallel(n_jobs=n_jobs)(jobs)
                for key in ("last", "best", "best_epoch"):
                    res[key] = [r[key] for r in folds_out]
                res["cpu_seconds"] += sum(r["cpu_seconds"] for r in folds_out)
                if not args.quiet:
                    print(f"  {name}: paper setup last epoch {_fmt(res['last'])}, best epoch on "
                          f"test {_fmt(res['best'])} (optimistic)", file=progress, flush=True)
            res["seconds"] = time.perf_counter() - t0
            results[name] = res
    wall = time.perf_counter() - start
    honest_name = ("the majority vote of five models (skstruct.reproduce.mil_vote)" if vote
                   else "MILConveyance() with its defaults")
    print("", file=out)
    print(
        "Bag accuracy (%), mean ± std over folds. Honest: sklearn's cross_validate on "
        f"{honest_name}; fit sees only the training bags of a fold. "
        "Published honest results (no selection on the test fold): the best of "
        "mi-Net/MI-Net and gated-attention MIL (2018), and Loss-Attention (2020). Paper protocol: the "
        "best epoch chosen on the test fold itself, an optimistic estimate (what the "
        "paper reports). Time: wall time of the data set's folds (run n_jobs at a time) "
        "and, in brackets, the sum of their fit times (as if run one after another).",
        file=out,
    )
    _print_table(results, names, missing, out, protocols=protocols,
                 honest_label="majority vote of five" if vote else "MILConveyance defaults")
    print(f"\nTotal wall time: {wall:.0f} s (n_jobs={n_jobs}).", file=out)
    if args.output:
        import json

        with open(args.output, "w") as fh:
            json.dump(
                {"args": vars(args), "wall_seconds": wall, "missing": missing,
                 "estimator": repr(honest_est) if "honest" in protocols else None,
                 "results": results},
                fh, indent=1, default=str,
            )
        print(f"Results written to {args.output}.", file=out)
    if missing:
        print(f"error: data set(s) not found: {missing}", file=out)
    return {"results": results, "missing": missing}


def _parser():
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="python -m skstruct",
        description="skstruct command line.",
    )
    parser.add_argument("--version", action="version", version=f"skstruct {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    reproduce = sub.add_parser("reproduce", help="reproduce a paper's experiment")
    which = reproduce.add_subparsers(dest="experiment", required=True)
    mil = which.add_parser(
        "mil",
        help="10-fold CV of MILConveyance on the classical MIL benchmarks",
        description=(
            "Honest 10-fold cross-validation (sklearn's cross_validate) of "
            "MILConveyance() with its defaults on MUSK1, MUSK2, ELEPHANT, FOX and "
            "TIGER, on the stored folds that ship with skstruct; --protocol paper "
            "adds the paper's optimistic protocol (best epoch on the test fold)."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    mil.add_argument("--datasets", nargs="+", default=list(MIL_BENCHMARKS),
                     help="data sets, space- or comma-separated")
    mil.add_argument("--protocol", choices=["honest", "paper", "both"], default="honest",
                     help="honest: cross_validate on MILConveyance(); paper: the paper's "
                     "reference setup with the best epoch on the test fold (optimistic)")
    mil.add_argument("--repetitions", type=int, default=1,
                     help="repetitions of the 10-fold CV (up to 5 stored)")
    mil.add_argument("--folds", type=int, default=10,
                     help="folds per repetition (10 uses the stored folds; other counts "
                     "new stratified folds)")
    mil.add_argument("--epochs", type=int, default=None,
                     help="training epochs (default: the estimator's; 40 in the paper setup)")
    mil.add_argument("--batch-size", type=int, default=None,
                     help="bags per training step (default: the estimator's; 1 in the paper setup)")
    mil.add_argument("--lr", type=float, default=None,
                     help="learning rate (default: the estimator's; 1e-3 * sqrt(batch size) "
                     "in the paper setup)")
    mil.add_argument("--embedding", choices=["prototypes", "mlp"], default=None,
                     help="MILConveyance's embedding (default: the estimator's, 'prototypes'); "
                          "'mlp' is the gated attention network of the paper")
    mil.add_argument("--hidden", type=int, nargs="+", default=None,
                     help="widths of the instance MLP of --embedding mlp (default: the "
                          "estimator's)")
    mil.add_argument("--device", default="cpu", help="torch device, e.g. cuda")
    mil.add_argument("--scheduler", default=None, metavar="ADDRESS",
                     help="run the folds on this Dask scheduler (e.g. tcp://host:8786) "
                          "through joblib's dask backend; needs skstruct[distributed]")
    mil.add_argument("--n-jobs", type=int, default=-1,
                     help="folds run in parallel (joblib); -1: one per CPU core")
    mil.add_argument("--threads", type=int, default=None,
                     help="torch threads per job (default: CPU cores / parallel jobs)")
    mil.add_argument("--cv", choices=["stored", "stratified"], default="stored",
                     help="the folds stored with the data, or new stratified folds")
    mil.add_argument("--model", choices=["milconveyance", "vote"], default="milconveyance",
                     help="honest protocol's estimator: MILConveyance() with its defaults, or "
                          "skstruct.reproduce.mil_vote(), the majority of five bag "
                          "classifiers (MILConveyance, MI-Net, set-kernel SVM; about 3x "
                          "the fit time)")
    mil.add_argument("--seed", type=int, default=0, help="random_state of the estimator")
    mil.add_argument("--data-home", default=None,
                     help="folder holding mil/<name>.npz to use instead of the packaged files")
    mil.add_argument("--output", default=None, help="write the results to this JSON file")
    mil.add_argument("--quiet", action="store_true", help="no progress lines")
    return parser


def main(argv=None):
    """Entry point of ``python -m skstruct`` and of the ``skstruct`` command.

    Returns
    -------
    status : int
        0 on success, 1 when a requested data set was not found.
    """
    args = _parser().parse_args(argv)
    if args.command == "reproduce" and args.experiment == "mil":
        for name, low in (("repetitions", 1), ("folds", 2), ("epochs", 1), ("batch_size", 1)):
            value = getattr(args, name)
            if value is not None and value < low:
                raise SystemExit(f"error: --{name.replace('_', '-')} must be >= {low}.")
        if args.repetitions > 5 and args.cv == "stored":
            raise SystemExit("error: --repetitions must be <= 5 with --cv stored "
                             "(5 repetitions are stored); use --cv stratified for more.")
        if args.n_jobs == 0:
            raise SystemExit("error: --n-jobs must be a positive number, or -1 for all cores.")
        if args.lr is not None and not args.lr > 0:
            raise SystemExit(f"error: --lr must be > 0, got {args.lr}.")
        if args.hidden is not None and any(width < 1 for width in args.hidden):
            raise SystemExit(f"error: --hidden widths must be >= 1, got {args.hidden}.")
        if args.hidden is not None and args.embedding != "mlp" and args.model != "vote":
            raise SystemExit("error: --hidden sets the instance MLP of --embedding mlp; "
                             "add --embedding mlp (the default embedding has no MLP).")
        if args.threads is not None and args.threads < 1:
            raise SystemExit(f"error: --threads must be >= 1, got {args.threads}.")
        _dataset_names(args.datasets)
        outcome = reproduce_mil(args)
        return 1 if outcome["missing"] else 0
    return 0
