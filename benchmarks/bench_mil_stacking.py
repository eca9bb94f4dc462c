"""Three convex prototype models stacked by an inner CV on the training bags.

A development study for issue 11. ``benchmarks/bench_mil_convex.py`` showed
that the MIL data sets want different convex prototype models: MUSK the bag
term alone on standardised bag features, the Corel sets the Conveyance
instance term. Development runs on the stored folds (see the README) added
two more: an L1 (Laplacian) kernel for ELEPHANT and mean pooling next to max
pooling for TIGER. No single one of them is ahead on every set. This script
trains the three candidates below on each outer training set and combines
them by *stacking*, fitted on the training bags alone:

* ``A: bag term, standardised bag features``: squared-Euclidean RBF kernel at
  the median-heuristic width, max pooling (MILES), every bag feature
  standardised on the training bags, ``instance_weight=0``.
* ``B: Conveyance term, L1 kernel``: ``exp(-gamma * ||z - p||_1)`` with half
  the median-heuristic gamma of the L1 distances, max pooling, raw bag
  features, bag term plus the Conveyance instance term (MIL structure,
  ``alpha = beta = 1``).
* ``C: bag term, max and mean pooling``: squared-Euclidean kernel at half the
  median-heuristic gamma, each prototype's best match *and* mean similarity
  over the bag, raw bag features, ``instance_weight=0``.

Every candidate is the optimum of a convex problem (L2 weight 1e-3 on the
head, not the bias; L-BFGS with a strong-Wolfe line search, at most 500
iterations). Instances are standardised on the training instances; the
prototypes are the distinct training instances, at most 1,000 of them drawn
under a seeded generator, as ``MILConveyance`` draws them.

Combinations (all fitted on the outer training bags only):

* ``mean probability of A, B, C``: no fitting.
* ``inner-CV accuracy selection``: the candidate with the best out-of-fold
  accuracy on the training bags (ties to the lower out-of-fold log-loss).
* ``stacking``: a logistic regression on the candidates' logits with
  non-negative weights (a softplus of free parameters) and a bias, fitted on
  out-of-fold predictions of the training bags, applied to the candidates
  refitted on all training bags.
* ``stacking of A and C (no Conveyance term)``: the same on A and C alone,
  from the same fits: what the one candidate with the Conveyance instance
  term (B) adds to the stack.

With ``--citation-knn`` (issue 11, a candidate tried for MUSK1 and kept
out of the default), a fourth candidate and two combinations are added:

* ``K: citation-kNN``: Wang and Zucker's citation-kNN (2000) on the raw
  instances, with the average Hausdorff distance between bags (the mean
  over one bag's instances of the squared distance to the nearest instance
  of the other, summed both ways); a test bag gets the labels of its ``R``
  nearest training bags (references) and of the training bags that have it
  among their ``C`` nearest (citers), and its class probabilities are the
  Laplace-smoothed vote shares. ``(R, C)`` is chosen from ``CITATION_GRID``
  by leave-one-out accuracy on the training bags (the first best in grid
  order).
* ``stacking with K``: the stacking above on A, B, C and K.
* ``stacking of A and K``: A and K alone.

With ``--svm`` (issue 11, the fourth member of ``MILConveyance``'s
default), a candidate and three combinations are added:

* ``D: RBF SVM on A's features``: sklearn's ``SVC(C=10, gamma='scale')``
  on A's standardised bag features; its decision function is its logit.
* ``stacking of A, B, C and D``: the stacking above on the four.
* ``stacking of A, B, C, or D by inner CV``: what ``MILConveyance`` does.
  D's out-of-fold accuracy against the stacking's, cross-validated on the
  same out-of-fold predictions (a stratified 5-fold split of the training
  bags: the stacking fitted on the rows of four parts, scored on the
  fifth); D when strictly more accurate, else the stacking of A, B, C.
* ``inner-CV accuracy selection of A, B, C, D``: the selection above with
  D among the candidates.

The out-of-fold predictions come from ``--inner-repeats`` repetitions of a
stratified 5-fold split of the training bags. Inside that inner CV a
validation bag must not be a prototype, so the prototype columns that come
from its instances are dropped; the kernel widths and the instance
standardisation are those of the outer training set. Nothing of the outer
test bags reaches any of this, so every score is honest. The candidates
themselves, however, were chosen in development runs on these same folds,
so their differences carry a selection bias; the stacking result does not
choose on the test folds, but its menu was.

Run from the repository root::

    python benchmarks/bench_mil_stacking.py --n-jobs 2 \\
        --output benchmarks/results_committed/mil_stacking_5x10.json
    python benchmarks/bench_mil_stacking.py --n-jobs 2 --citation-knn \\
        --output benchmarks/results_committed/mil_stacking_citation_knn_5x10.json
    python benchmarks/bench_mil_stacking.py --n-jobs 2 --svm \\
        --output benchmarks/results_committed/mil_stacking_svm_5x10.json
"""

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F
from joblib import Parallel, delayed
from scipy.spatial.distance import cdist
from sklearn.model_selection import StratifiedKFold
from sklearn.svm import SVC

from _mil_common import run_header, stored_folds, write_results
from bench_mil_convex import (
    DATASETS, MAX_ITER, N_PROTOTYPES, WEIGHT_DECAY, _nearest, solve_head,
)
from skstruct.datasets import load_mil_benchmark

N_INNER_FOLDS = 5
# metric: "sq" (squared Euclidean) or "l1"; pools: bag features per prototype;
# gamma_factor: times one over the median training-instance-to-prototype distance;
# standardise: bag features divided by their std on the training bags.
CANDIDATES = {
    "A: bag term, standardised bag features": dict(
        metric="sq", pools=("max",), gamma_factor=1.0, standardise=True, instance_weight=0.0
    ),
    "B: Conveyance term, L1 kernel": dict(
        metric="l1", pools=("max",), gamma_factor=0.5, standardise=False, instance_weight=1.0
    ),
    "C: bag term, max and mean pooling": dict(
        metric="sq", pools=("max", "mean"), gamma_factor=0.5, standardise=False,
        instance_weight=0.0,
    ),
}
COMBINATIONS = ("mean probability of A, B, C", "inner-CV accuracy selection", "stacking",
                "stacking of A and C (no Conveyance term)")
SVM = "D: RBF SVM on A's features"
SVM_C = 10.0
SVM_COMBINATIONS = ("stacking of A, B, C and D", "stacking of A, B, C, or D by inner CV",
                    "inner-CV accuracy selection of A, B, C, D")
CITATION_KNN = "K: citation-kNN"
CITATION_COMBINATIONS = ("stacking with K", "stacking of A and K")
# (references R, citers C), in the order that breaks leave-one-out ties.
CITATION_GRID = ((1, 1), (1, 2), (2, 2), (2, 4), (4, 4), (4, 8))
# The members of the ablation row: the candidates without the instance term.
WITHOUT_CONVEYANCE = tuple(k for k, c in CANDIDATES.items() if c["instance_weight"] == 0)


def _bag_mean(values, owner, n_bags):
    """Per-bag mean of per-instance rows."""
    total = values.new_zeros(n_bags, values.shape[1]).index_add_(0, owner, values)
    return total / torch.bincount(owner, minlength=n_bags)[:, None]


def _features(part, gamma, candidate):
    """Bag features and per-instance similarities of one part (train or test)."""
    distances = part["distances"][candidate["metric"]]
    similarity = torch.exp(-gamma * distances)
    bag = []
    for pool in candidate["pools"]:
        if pool == "max":  # exp is decreasing: the best match is the nearest instance
            bag.append(torch.exp(-gamma * _nearest(distances, part["owner"], part["n_bags"])))
        else:
            bag.append(_bag_mean(similarity, part["owner"], part["n_bags"]))
    return torch.cat(bag, 1), similarity.repeat(1, len(candidate["pools"]))


def fit_predict(train, test, y, candidate, svm=False):
    """Solve one candidate's convex problem on ``train``; positive-class probability on ``test``.

    ``svm``: instead, sklearn's RBF SVC on the candidate's standardised bag
    features, whose decision function is taken as the logit.
    """
    gamma = train["gammas"][candidate["metric"]] * candidate["gamma_factor"]
    x_train, instances = _features(train, gamma, candidate)
    x_test, _ = _features(test, gamma, candidate)
    mean = x_train.mean(0)
    std = x_train.std(0).clamp_min(1e-3) if candidate["standardise"] else torch.ones_like(mean)
    x_train, x_test, instances = ((x - mean) / std for x in (x_train, x_test, instances))
    if svm:
        machine = SVC(C=SVM_C, gamma="scale").fit(x_train.numpy(), y.numpy())
        return 1.0 / (1.0 + np.exp(-machine.decision_function(x_test.numpy())))
    weight, bias = solve_head(
        x_train, instances, train["owner"], y, candidate["instance_weight"]
    )
    with torch.no_grad():
        return torch.softmax(x_test @ weight.T + bias, 1)[:, 1].numpy()


def _restrict(part, bags, columns):
    """The rows of ``part`` that belong to ``bags`` (renumbered), prototype ``columns`` only."""
    bags = torch.as_tensor(bags)
    keep = torch.isin(part["owner"], bags)
    renumber = torch.full((part["n_bags"],), -1, dtype=torch.long)
    renumber[bags] = torch.arange(len(bags))
    return {
        "distances": {m: d[keep][:, columns] for m, d in part["distances"].items()},
        "owner": renumber[part["owner"][keep]],
        "n_bags": len(bags),
        "gammas": part.get("gammas"),
    }


def _logit(p):
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def _stack(out_of_fold, y, test_proba):
    """Non-negative logistic combination of candidate logits, fitted out of fold."""
    names = list(out_of_fold)
    z = torch.as_tensor(np.stack([_logit(out_of_fold[k]).ravel() for k in names], 1),
                        dtype=torch.float64)
    target = torch.as_tensor(np.tile(y, out_of_fold[names[0]].shape[0]), dtype=torch.float64)
    free = torch.zeros(len(names), dtype=torch.float64, requires_grad=True)
    bias = torch.zeros((), dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([free, bias], max_iter=200, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = F.binary_cross_entropy_with_logits(z @ F.softplus(free) + bias, target)
        loss.backward()
        return loss

    optimizer.step(closure)
    z_test = torch.as_tensor(np.stack([_logit(test_proba[k]) for k in names], 1),
                             dtype=torch.float64)
    with torch.no_grad():
        weights = F.softplus(free)
        return torch.sigmoid(z_test @ weights + bias).numpy(), weights.tolist()


def average_hausdorff(bags):
    """``H[i, j]``: mean over bag i's instances of the squared distance to bag j's nearest
    instance, plus the same from j to i (raw features, float64)."""
    instances = np.concatenate(bags).astype(np.float64)
    owner = np.repeat(np.arange(len(bags)), [len(b) for b in bags])
    counts = np.bincount(owner)
    directed = np.empty((len(bags), len(bags)))
    for j, bag in enumerate(bags):
        nearest = cdist(instances, np.asarray(bag, dtype=np.float64), "sqeuclidean").min(1)
        directed[:, j] = np.bincount(owner, nearest, minlength=len(bags)) / counts
    return directed + directed.T


def _citation_votes(d_query, kth, y, references):
    """Per-class votes ``(n_query, 2)`` of citation-kNN.

    ``d_query`` (n_query, n_train): distances from the query bags to the
    training bags, labelled ``y``. The ``references`` nearest training bags
    vote, and so does every training bag that cites the query: the query is
    no farther than ``kth``, that bag's distance to its ``C``-th nearest
    other training bag (:func:`_kth_other`).
    """
    order = np.argsort(d_query, axis=1, kind="stable")[:, :references]
    votes = np.zeros((len(d_query), 2))
    for c in (0, 1):
        votes[:, c] = (y[order] == c).sum(1) + ((d_query <= kth[None, :]) & (y == c)[None]).sum(1)
    return votes


def _kth_other(h_train, citers):
    """Each training bag's ``citers``-th smallest distance to another training bag."""
    others = h_train + np.diag(np.full(len(h_train), np.inf))
    return np.sort(others, 1)[:, min(citers, len(h_train) - 1) - 1]


def citation_knn(h, train, query, y):
    """Laplace-smoothed citation-kNN probabilities of the positive class for ``query``.

    ``train`` and ``query`` index the rows of ``h``; only ``y[train]`` is
    read. ``(R, C)`` by leave-one-out accuracy on ``train``; returns
    ``(proba, (R, C))``.
    """
    labels = y[train]
    h_train = h[np.ix_(train, train)]

    def loo_accuracy(references, citers):
        right = 0
        for i in range(len(train)):
            rest = np.delete(np.arange(len(train)), i)
            kth = _kth_other(h_train[np.ix_(rest, rest)], citers)
            votes = _citation_votes(h_train[i, rest][None], kth, labels[rest], references)
            right += int(np.argmax(votes[0]) == labels[i] and votes[0, 0] != votes[0, 1])
        return right

    best = max(CITATION_GRID, key=lambda g: loo_accuracy(*g))  # first best in grid order
    kth = _kth_other(h_train, best[1])
    votes = _citation_votes(h[np.ix_(query, train)], kth, labels, best[0])
    return (votes[:, 1] + 1.0) / (votes.sum(1) + 2.0), best


def _stack_cv_accuracy(out_of_fold, y, seed):
    """Accuracy of the stacking cross-validated on its own out-of-fold inputs (5 parts)."""
    right = 0
    for fit, score in StratifiedKFold(N_INNER_FOLDS, shuffle=True, random_state=seed).split(y, y):
        proba, _ = _stack({k: p[:, fit] for k, p in out_of_fold.items()}, y[fit],
                          {k: p[:, score].ravel() for k, p in out_of_fold.items()})
        repeats = len(proba) // len(score)
        right += int(((proba > 0.5) == np.tile(y[score], repeats)).sum())
    return right / (len(y) * next(iter(out_of_fold.values())).shape[0])


def prepare_fold(name, index, train, test):
    """The outer training and test parts of one fold, as the candidates read them.

    Instances standardised on the training instances, the prototypes (at
    most ``N_PROTOTYPES`` distinct training instances, drawn under the
    fold's seed), each part's distances to them (squared Euclidean and L1)
    and the training part's median-heuristic gammas. ``sources`` holds the
    training bags (positions in ``train``) whose instances each prototype
    is, for the inner CV.
    """
    data = load_mil_benchmark(name)
    bags, target = data.data, data.target
    instances = np.concatenate([bags[i] for i in train]).astype(np.float64)
    center, scale = instances.mean(0), instances.std(0)
    scale[scale == 0] = 1.0
    distinct, which = np.unique(instances, axis=0, return_inverse=True)
    chosen = np.arange(len(distinct))
    if len(distinct) > N_PROTOTYPES:
        generator = torch.Generator().manual_seed(index)
        chosen = np.sort(torch.randperm(len(distinct), generator=generator)[:N_PROTOTYPES].numpy())
    column_of = np.full(len(distinct), -1)
    column_of[chosen] = np.arange(len(chosen))
    # the training bags (positions in ``train``) whose instances each prototype is
    bag_of_instance = np.concatenate([np.full(len(bags[i]), j) for j, i in enumerate(train)])
    sources = [set() for _ in chosen]
    for instance, row in enumerate(np.asarray(which).ravel()):
        if column_of[row] >= 0:
            sources[column_of[row]].add(int(bag_of_instance[instance]))
    prototypes = torch.as_tensor((distinct[chosen] - center) / scale, dtype=torch.float32)

    def part(indices):
        x = torch.cat([
            torch.as_tensor((np.asarray(bags[i], dtype=np.float64) - center) / scale,
                            dtype=torch.float32)
            for i in indices
        ])
        owner = torch.cat([torch.full((len(bags[i]),), j) for j, i in enumerate(indices)])
        distances = {"sq": torch.cdist(x, prototypes).square(),
                     "l1": torch.cdist(x, prototypes, p=1)}
        return {"distances": distances, "owner": owner, "n_bags": len(indices)}

    outer_train, outer_test = part(train), part(test)
    outer_train["gammas"] = {m: float(1.0 / d.median()) for m, d in
                             outer_train["distances"].items()}
    return {"train": outer_train, "test": outer_test, "sources": sources, "bags": bags,
            "y_train": target[train], "y_test": target[test]}


def run_fold(name, index, train, test, inner_repeats, citation=False, svm=False):
    torch.set_num_threads(1)
    fold = prepare_fold(name, index, train, test)
    outer_train, outer_test, sources = fold["train"], fold["test"], fold["sources"]
    bags, y_train, y_test = fold["bags"], fold["y_train"], fold["y_test"]
    y = torch.as_tensor(y_train)
    start = time.process_time()
    test_proba = {k: fit_predict(outer_train, outer_test, y, c) for k, c in CANDIDATES.items()}
    out_of_fold = {k: np.zeros((inner_repeats, len(train))) for k in CANDIDATES}
    a = next(iter(CANDIDATES))  # D reads A's features
    if svm:
        test_proba[SVM] = fit_predict(outer_train, outer_test, y, CANDIDATES[a], svm=True)
        svm_oof = np.zeros((inner_repeats, len(train)))
    for repeat in range(inner_repeats):
        splitter = StratifiedKFold(N_INNER_FOLDS, shuffle=True, random_state=1000 * index + repeat)
        for inner_train, inner_valid in splitter.split(y_train, y_train):
            valid = set(inner_valid.tolist())
            columns = torch.as_tensor([j for j, s in enumerate(sources) if not s & valid])
            fit_part = _restrict(outer_train, inner_train, columns)
            valid_part = _restrict(outer_train, inner_valid, columns)
            for k, candidate in CANDIDATES.items():
                out_of_fold[k][repeat, inner_valid] = fit_predict(
                    fit_part, valid_part, y[torch.as_tensor(inner_train)], candidate
                )
            if svm:
                svm_oof[repeat, inner_valid] = fit_predict(
                    fit_part, valid_part, y[torch.as_tensor(inner_train)], CANDIDATES[a],
                    svm=True)
    inner_accuracy = {k: float(((p > 0.5) == y_train).mean()) for k, p in out_of_fold.items()}
    inner_log_loss = {
        k: float(-np.mean(y_train * np.log(np.clip(p, 1e-6, 1))
                          + (1 - y_train) * np.log(np.clip(1 - p, 1e-6, 1))))
        for k, p in out_of_fold.items()
    }
    if citation:
        # citation-kNN: no prototypes, so the inner CV needs no column dropping
        train, test = np.asarray(train), np.asarray(test)
        h = average_hausdorff([bags[i] for i in np.concatenate([train, test])])
        positions = np.arange(len(train))
        unknown = np.full(len(test), -1)  # the test labels are not used
        k_test, k_choice = citation_knn(h, positions, len(train) + np.arange(len(test)),
                                        np.concatenate([y_train, unknown]))
        k_oof = np.zeros((inner_repeats, len(train)))
        for repeat in range(inner_repeats):
            splitter = StratifiedKFold(N_INNER_FOLDS, shuffle=True,
                                       random_state=1000 * index + repeat)
            for inner_train, inner_valid in splitter.split(y_train, y_train):
                k_oof[repeat, inner_valid] = citation_knn(
                    h, positions[inner_train], positions[inner_valid], y_train)[0]
    selected = max(CANDIDATES, key=lambda k: (inner_accuracy[k], -inner_log_loss[k]))
    stacked, weights = _stack(out_of_fold, y_train, test_proba)
    stacked_without, _ = _stack({k: out_of_fold[k] for k in WITHOUT_CONVEYANCE}, y_train,
                                {k: test_proba[k] for k in WITHOUT_CONVEYANCE})
    seconds = time.process_time() - start
    proba = dict(test_proba)
    proba["mean probability of A, B, C"] = np.mean([test_proba[k] for k in CANDIDATES], 0)
    proba["inner-CV accuracy selection"] = test_proba[selected]
    proba["stacking"] = stacked
    proba["stacking of A and C (no Conveyance term)"] = stacked_without
    extra = {}
    if svm:
        linear = dict(out_of_fold)
        out_of_fold[SVM] = svm_oof
        proba[SVM] = test_proba[SVM]
        proba["stacking of A, B, C and D"], extra["weights with D"] = _stack(
            out_of_fold, y_train, test_proba)
        extra["inner accuracy"] = {
            "stacking of A, B, C": _stack_cv_accuracy(linear, y_train, 1000 * index + 99),
            SVM: float(((svm_oof > 0.5) == y_train).mean()),
        }
        use_svm = extra["inner accuracy"][SVM] > extra["inner accuracy"]["stacking of A, B, C"]
        extra["choice"] = "D" if use_svm else "stacking"
        proba["stacking of A, B, C, or D by inner CV"] = test_proba[SVM] if use_svm else stacked
        inner_accuracy[SVM] = extra["inner accuracy"][SVM]
        inner_log_loss[SVM] = float(-np.mean(
            y_train * np.log(np.clip(svm_oof, 1e-6, 1))
            + (1 - y_train) * np.log(np.clip(1 - svm_oof, 1e-6, 1))))
        pick = max([*CANDIDATES, SVM], key=lambda k: (inner_accuracy[k], -inner_log_loss[k]))
        proba["inner-CV accuracy selection of A, B, C, D"] = test_proba[pick]
    if citation:
        out_of_fold[CITATION_KNN], test_proba[CITATION_KNN] = k_oof, k_test
        proba[CITATION_KNN] = k_test
        with_k = [*CANDIDATES, CITATION_KNN]  # A, B, C and K
        proba["stacking with K"], extra["weights with K"] = _stack(
            {k: out_of_fold[k] for k in with_k}, y_train, {k: test_proba[k] for k in with_k})
        proba["stacking of A and K"], _ = _stack(
            {k: out_of_fold[k] for k in (a, CITATION_KNN)}, y_train,
            {k: test_proba[k] for k in (a, CITATION_KNN)})
        extra["citation (R, C)"] = list(k_choice)
    accuracy = {k: float(((p > 0.5) == y_test).mean()) for k, p in proba.items()}
    return name, index, accuracy, selected, weights, seconds, extra


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS))
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--inner-repeats", type=int, default=3)
    parser.add_argument("--n-jobs", type=int, default=1)
    parser.add_argument("--citation-knn", action="store_true",
                        help="add citation-kNN as a fourth candidate and its stackings")
    parser.add_argument("--svm", action="store_true",
                        help="add the RBF SVM on A's features (D) and its combinations")
    parser.add_argument("--output", default="benchmarks/results/mil_stacking_5x10.json")
    args = parser.parse_args(argv)
    report = run_header(
        settings={
            "n_prototypes": N_PROTOTYPES, "weight_decay": WEIGHT_DECAY,
            "lbfgs_max_iter": MAX_ITER, "inner_folds": N_INNER_FOLDS,
            "inner_repeats": args.inner_repeats, "candidates": CANDIDATES,
            "citation_knn": args.citation_knn, "svm": args.svm,
            "svm_C": SVM_C if args.svm else None,
            "citation_grid": CITATION_GRID if args.citation_knn else None,
            "repetitions": args.repetitions, "torch": torch.__version__,
        }
    )
    start = time.perf_counter()
    summary = {}
    for name in args.datasets:
        folds = stored_folds(name, args.repetitions)
        rows = Parallel(n_jobs=args.n_jobs)(
            delayed(run_fold)(name, i, tr, te, args.inner_repeats, args.citation_knn, args.svm)
            for i, (tr, te) in enumerate(folds)
        )
        rows.sort(key=lambda r: r[1])
        entry = {}
        variants = list(CANDIDATES) + list(COMBINATIONS)
        if args.svm:
            variants += [SVM, *SVM_COMBINATIONS]
        if args.citation_knn:
            variants += [CITATION_KNN, *CITATION_COMBINATIONS]
        for variant in variants:
            per_fold = np.array([r[2][variant] for r in rows])
            per_rep = per_fold.reshape(args.repetitions, -1).mean(1) * 100
            entry[variant] = {
                "mean": round(float(per_fold.mean() * 100), 2),
                "std_over_folds": round(float(per_fold.std() * 100), 2),
                "per_repetition": [round(float(a), 2) for a in per_rep],
                "per_fold": per_fold.tolist(),
            }
        entry["selected_per_fold"] = [r[3] for r in rows]
        entry["stacking_weights_per_fold"] = [[round(w, 3) for w in r[4]] for r in rows]
        if args.svm:
            entry["stacking_weights_with_d_per_fold"] = [
                [round(w, 3) for w in r[6]["weights with D"]] for r in rows]
            entry["choice_per_fold"] = [r[6]["choice"] for r in rows]
            entry["inner_accuracy_per_fold"] = [
                {k: round(v, 4) for k, v in r[6]["inner accuracy"].items()} for r in rows]
        if args.citation_knn:
            entry["stacking_weights_with_k_per_fold"] = [
                [round(w, 3) for w in r[6]["weights with K"]] for r in rows]
            entry["citation_choice_per_fold"] = [r[6]["citation (R, C)"] for r in rows]
        entry["fit_cpu_seconds_all"] = round(sum(r[5] for r in rows), 1)
        summary[name] = entry
        print(name, {v: entry[v]["mean"] for v in variants},
              flush=True)
    report["wall_seconds"] = round(time.perf_counter() - start, 1)
    report["summary"] = summary
    write_results(report, args.output)
    print("wrote", args.output, f"({report['wall_seconds']} s)")


if __name__ == "__main__":
    main()
