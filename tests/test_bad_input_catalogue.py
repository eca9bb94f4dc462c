"""Bad-input catalogue: one table of wrong calls and the error each must raise (issue 15).

Every case calls the public API with one wrong argument and expects a
``ValueError`` or ``TypeError`` (or a skstruct exception subclassing one; for
the command line, argparse's usage error, ``SystemExit``) whose message names
the argument. A torch or numpy traceback from deep inside, a silent NaN or a
silent answer fails the case. ``CASES`` is the single source of the published
table: ``python tests/test_bad_input_catalogue.py`` (or the test
``test_catalogue_doc_is_current``) writes ``doc/bad_input_catalogue.md``.
"""

import contextlib
import io
import math
import pathlib
import re
import sys
from dataclasses import dataclass

import numpy as np
import pytest
import torch

import skstruct
from skstruct import (
    AverageKClassifier,
    ClassGraph,
    ConveyanceClassifier,
    CrossEntropyClassifier,
    EMDOrdinalRegressor,
    HACEClassifier,
    Hierarchy,
    MILConveyance,
    Ordinal,
)
from skstruct import losses, metrics, sets
from skstruct.pipeline import predict_set
from skstruct.svm import SetKernelSVC, clique_weights, set_kernel

DOC = pathlib.Path(__file__).resolve().parents[1] / "doc" / "bad_input_catalogue.md"
FAST = dict(hidden_layer_sizes=(4,), max_epochs=1, random_state=0)


@dataclass(frozen=True)
class Case:
    group: str
    name: str
    call: object  # a callable taking no arguments
    error: type
    match: str  # a regular expression the message must contain (the argument's name)


RNG = np.random.RandomState(0)
X = RNG.randn(30, 3)
Y = np.arange(30) % 3
BAGS = [RNG.randn(3, 2) for _ in range(8)]
BAG_Y = np.arange(8) % 2
TREE = Hierarchy.from_paths([["r", "a", "a1"], ["r", "a", "a2"], ["r", "b"]])
ORD = Ordinal([0, 1, 2])
LOGITS = torch.randn(4, 3)
TARGET = torch.tensor([0, 1, 2, 1])
Q = torch.eye(3, dtype=torch.bool)


def _fitted():
    """A tiny fitted classifier, shared by the predict-time cases."""
    if not hasattr(_fitted, "clf"):
        _fitted.clf = CrossEntropyClassifier(**FAST).fit(X, Y)
    return _fitted.clf


def _fit(estimator, X=X, y=Y):
    return lambda: estimator.fit(X, y)


def _cli(*argv):
    """Run the command line; argparse's usage errors go to stderr, which the message keeps."""

    def call():
        from skstruct._cli import main

        err = io.StringIO()
        try:
            with contextlib.redirect_stderr(err):
                main(["reproduce", "mil", *argv])
        except SystemExit as exc:
            raise SystemExit(f"{exc.code}: {err.getvalue()}") from None

    return call


def _avgk_output():
    return (LOGITS, LOGITS.clone())


def _mil_output(bag=LOGITS[:, :2]):
    return (bag, torch.randn(4, 2, 2), torch.full((4, 2), 0.5), torch.zeros(4, 2, dtype=torch.bool))


V, T, S = ValueError, TypeError, SystemExit

CASES = [
    # ------------------------------------------------------------ estimators: X, y
    Case("estimator", "X with NaN", _fit(CrossEntropyClassifier(**FAST), np.where(X > 1.5, np.nan, X)), V, "NaN|X"),
    Case("estimator", "X with inf", _fit(ConveyanceClassifier(**FAST), np.where(X > 1.5, np.inf, X)), V, "infinity|X"),
    Case("estimator", "X 1-D", _fit(CrossEntropyClassifier(**FAST), X[:, 0]), V, "2D array|X"),
    Case("estimator", "X 3-D", _fit(CrossEntropyClassifier(**FAST), X[:, :, None]), V, "X|dim"),
    Case("estimator", "X strings", _fit(CrossEntropyClassifier(**FAST), np.full((30, 3), "a")), V, "X|convert|string"),
    Case("estimator", "X empty", _fit(CrossEntropyClassifier(**FAST), X[:0], Y[:0]), V, "sample"),
    Case("estimator", "X zero features", _fit(CrossEntropyClassifier(**FAST), X[:, :0]), V, "feature"),
    Case("estimator", "y length mismatch", _fit(CrossEntropyClassifier(**FAST), X, Y[:-1]), V, "samples|y"),
    Case("estimator", "y 2-D", _fit(CrossEntropyClassifier(**FAST), X, np.c_[Y, Y]), V, "y"),
    Case("estimator", "y one class", _fit(CrossEntropyClassifier(**FAST), X, np.zeros(30)), V, "class"),
    Case("estimator", "y with NaN", _fit(CrossEntropyClassifier(**FAST), X, np.where(Y == 0, np.nan, Y)), V, "NaN|y"),
    Case("estimator", "y continuous", _fit(CrossEntropyClassifier(**FAST), X, RNG.randn(30)), V, "continuous|y|label"),
    Case("estimator", "y label unknown to structure", _fit(ConveyanceClassifier(class_structure=Ordinal([0, 1]), **FAST)), V, "class|structure|label"),
    Case("estimator", "y unknown to hierarchy", _fit(HACEClassifier(class_structure=TREE, **FAST)), V, "hierarchy|leaf|label|class"),
    Case("estimator", "predict with wrong n_features", lambda: _fitted().predict(X[:, :2]), V, "features"),
    Case("estimator", "predict with NaN", lambda: _fitted().predict(np.full((2, 3), np.nan)), V, "NaN|X"),
    Case("estimator", "predict with inf", lambda: _fitted().predict_proba(np.full((2, 3), np.inf)), V, "infinity|X"),
    Case("estimator", "predict_set unfitted", lambda: CrossEntropyClassifier().predict_set(X), V, "fitted|fit"),
    Case("estimator", "predict unfitted", lambda: ConveyanceClassifier().predict(X), V, "fitted|fit"),
    # ------------------------------------------------------------ estimators: parameters
    Case("parameter", "hidden_layer_sizes negative", _fit(ConveyanceClassifier(hidden_layer_sizes=(8, -2), max_epochs=1)), V, "hidden_layer_sizes"),
    Case("parameter", "hidden_layer_sizes zero", _fit(CrossEntropyClassifier(hidden_layer_sizes=(0,), max_epochs=1)), V, "hidden_layer_sizes"),
    Case("parameter", "hidden_layer_sizes float", _fit(CrossEntropyClassifier(hidden_layer_sizes=(2.5,), max_epochs=1)), V, "hidden_layer_sizes"),
    Case("parameter", "hidden_layer_sizes a string", _fit(CrossEntropyClassifier(hidden_layer_sizes="big", max_epochs=1)), V, "hidden_layer_sizes"),
    Case("parameter", "alpha negative", _fit(ConveyanceClassifier(alpha=-1.0, **FAST)), V, "alpha"),
    Case("parameter", "beta negative", _fit(ConveyanceClassifier(beta=-0.5, **FAST)), V, "beta"),
    Case("parameter", "alpha and beta both 0", _fit(ConveyanceClassifier(alpha=0.0, beta=0.0, **FAST)), V, "alpha and beta"),
    Case("parameter", "alpha a string", _fit(ConveyanceClassifier(alpha="big", **FAST)), V, "alpha"),
    Case("parameter", "max_epochs 0", _fit(CrossEntropyClassifier(max_epochs=0)), V, "max_epochs"),
    Case("parameter", "batch_size 0", _fit(CrossEntropyClassifier(batch_size=0, max_epochs=1)), V, "batch_size"),
    Case("parameter", "lr negative", _fit(CrossEntropyClassifier(lr=-1e-3, max_epochs=1)), V, "lr"),
    Case("parameter", "lr NaN", _fit(CrossEntropyClassifier(lr=math.nan, max_epochs=1)), V, "lr"),
    Case("parameter", "dropout 1", _fit(CrossEntropyClassifier(dropout=1.0, max_epochs=1)), V, "dropout"),
    Case("parameter", "activation unknown", _fit(CrossEntropyClassifier(activation="swish", max_epochs=1)), V, "activation"),
    Case("parameter", "optimizer unknown", _fit(CrossEntropyClassifier(optimizer="lbfgs2", max_epochs=1)), V, "optimizer"),
    Case("parameter", "weight_decay with an optimizer that has none", _fit(CrossEntropyClassifier(optimizer=torch.optim.LBFGS, weight_decay=0.01, max_epochs=1)), V, "weight_decay"),
    Case("parameter", "weight_decay negative", _fit(CrossEntropyClassifier(weight_decay=-1.0, max_epochs=1)), V, "weight_decay"),
    Case("parameter", "validation_fraction 1", _fit(CrossEntropyClassifier(validation_fraction=1.0, early_stopping=True, max_epochs=1)), V, "validation_fraction"),
    Case("parameter", "precision unknown", _fit(CrossEntropyClassifier(precision="fp8", max_epochs=1)), V, "precision"),
    Case("parameter", "device unknown", _fit(CrossEntropyClassifier(device="tpu9", max_epochs=1)), V, "device"),
    Case("parameter", "n_threads 0", _fit(CrossEntropyClassifier(n_threads=0, max_epochs=1)), V, "n_threads"),
    Case("parameter", "set_rule unknown", _fit(CrossEntropyClassifier(set_rule="top_k", max_epochs=1)), V, "set_rule"),
    Case("parameter", "set_size < 1", _fit(CrossEntropyClassifier(set_size=0.5, max_epochs=1)), V, "set_size"),
    Case("parameter", "confidence_level 1", _fit(CrossEntropyClassifier(confidence_level=1.0, max_epochs=1)), V, "confidence_level"),
    Case("parameter", "decision_rule unknown", _fit(CrossEntropyClassifier(decision_rule="vote", max_epochs=1)), V, "decision_rule"),
    Case("parameter", "class_structure an int", _fit(CrossEntropyClassifier(class_structure=3, max_epochs=1)), V, "class_structure"),
    Case("parameter", "module not a Module", _fit(CrossEntropyClassifier(module="mlp", max_epochs=1)), V, "module"),
    Case("parameter", "random_state a string", _fit(CrossEntropyClassifier(random_state="seed", max_epochs=1)), V, "random_state"),
    Case("parameter", "AverageK k < 1", _fit(AverageKClassifier(k=0.5, **FAST)), V, r"\bk\b"),
    Case("parameter", "HACE without hierarchy", _fit(HACEClassifier(None, **FAST)), V, "class_structure|hierarchy|Hierarchy"),
    Case("parameter", "EMD with a hierarchy", _fit(EMDOrdinalRegressor(class_structure=TREE, **FAST)), V, "structure|Ordinal|ordinal"),
    # ------------------------------------------------------------ MIL estimator: bags
    Case("mil", "bags a 2-D array", _fit(MILConveyance(**FAST), X, Y % 2), V, "bag|X"),
    Case("mil", "bags of different widths", _fit(MILConveyance(**FAST), [RNG.randn(2, 2), RNG.randn(2, 3)] * 4, BAG_Y), V, "bag|feature"),
    Case("mil", "an empty bag", _fit(MILConveyance(**FAST), [np.zeros((0, 2))] + BAGS[1:], BAG_Y), V, "bag|empty|instance"),
    Case("mil", "a bag with NaN", _fit(MILConveyance(**FAST), [np.full((3, 2), np.nan)] + BAGS[1:], BAG_Y), V, "NaN|bag|X"),
    Case("mil", "no bags", _fit(MILConveyance(**FAST), [], []), V, "bag|sample|empty"),
    Case("mil", "y length mismatch", _fit(MILConveyance(**FAST), BAGS, BAG_Y[:-1]), V, "bags|samples|y"),
    Case("mil", "three bag labels", _fit(MILConveyance(**FAST), BAGS, np.arange(8) % 3), V, "label|class|positive"),
    Case("mil", "positive_label unknown", _fit(MILConveyance(positive_label="pos", **FAST), BAGS, BAG_Y), V, "positive_label"),
    Case("mil", "instance_head_sizes negative", _fit(MILConveyance(instance_head_sizes=(-1,), **FAST), BAGS, BAG_Y), V, "instance_head_sizes"),
    Case("mil", "hidden_layer_sizes ()", _fit(MILConveyance(embedding="mlp", hidden_layer_sizes=(), max_epochs=1), BAGS, BAG_Y), V, "hidden_layer_sizes"),
    Case("mil", "embedding unknown", _fit(MILConveyance(embedding="kernel", max_epochs=1), BAGS, BAG_Y), V, "embedding"),
    Case("mil", "n_prototypes 0", _fit(MILConveyance(n_prototypes=0, max_epochs=1), BAGS, BAG_Y), V, "n_prototypes"),
    Case("mil", "module with prototypes", _fit(MILConveyance(module=torch.nn.Linear(2, 4), max_epochs=1), BAGS, BAG_Y), V, "module"),
    Case("mil", "n_estimators with prototypes", _fit(MILConveyance(n_estimators=3, max_epochs=1), BAGS, BAG_Y), V, "n_estimators"),
    Case("mil", "max_epochs a word", _fit(MILConveyance(max_epochs="long"), BAGS, BAG_Y), V, "max_epochs"),
    Case("mil", "batch_size with L-BFGS", _fit(MILConveyance(batch_size=2, max_epochs=1), BAGS, BAG_Y), V, "batch_size=2 cannot be used with L-BFGS"),
    Case("mil", "clipping with L-BFGS", _fit(MILConveyance(optimizer="lbfgs", max_grad_norm=0.5, max_epochs=1), BAGS, BAG_Y), V, "max_grad_norm=0.5"),
    Case("mil", "lr_schedule with L-BFGS", _fit(MILConveyance(lr_schedule="step", max_epochs=1), BAGS, BAG_Y), V, "lr_schedule='step'"),
    Case("mil", "L-BFGS with the attention network", _fit(MILConveyance(embedding="mlp", optimizer="lbfgs", max_epochs=1), BAGS, BAG_Y), V, "optimizer='lbfgs'"),
    Case("mil", "gamma_scale 0", _fit(MILConveyance(gamma_scale=0.0, max_epochs=1), BAGS, BAG_Y), V, "gamma_scale"),
    Case("mil", "kernel unknown", _fit(MILConveyance(kernel="cosine", max_epochs=1), BAGS, BAG_Y), V, "kernel"),
    Case("mil", "prototype_pooling unknown", _fit(MILConveyance(prototype_pooling="mean", max_epochs=1), BAGS, BAG_Y), V, "prototype_pooling"),
    Case("mil", "scale_bag_features a word", _fit(MILConveyance(scale_bag_features="yes", max_epochs=1), BAGS, BAG_Y), V, "scale_bag_features"),
    Case("mil", "stacking a word", _fit(MILConveyance(stacking="yes", max_epochs=1), BAGS, BAG_Y), V, "stacking"),
    Case("mil", "stacking=True with an option of one model", _fit(MILConveyance(stacking=True, kernel="laplacian", max_epochs=1), BAGS, BAG_Y), V, "configures one prototype model"),
    Case("mil", "stacking=True without L-BFGS prototypes", _fit(MILConveyance(stacking=True, embedding="mlp", max_epochs=1), BAGS, BAG_Y), V, "needs embedding='prototypes'"),
    Case("mil", "alpha and beta both 0", _fit(MILConveyance(alpha=0.0, beta=0.0, **FAST), BAGS, BAG_Y), V, "alpha and beta"),
    Case("svm", "bags a 2-D array", _fit(SetKernelSVC(), X, Y % 2), V, "bag|X"),
    Case("svm", "a bag with NaN", _fit(SetKernelSVC(), [np.full((3, 2), np.nan)] + BAGS[1:], BAG_Y), V, "NaN|bag|X"),
    Case("svm", "y length mismatch", _fit(SetKernelSVC(), BAGS, BAG_Y[:-1]), V, "bags|y"),
    Case("svm", "one class", _fit(SetKernelSVC(), BAGS, np.zeros(8)), V, "class"),
    Case("svm", "gammas empty", _fit(SetKernelSVC(gammas=[]), BAGS, BAG_Y), V, "gammas"),
    Case("svm", "Cs negative", _fit(SetKernelSVC(Cs=[-1.0]), BAGS, BAG_Y), V, "Cs"),
    Case("svm", "cv more folds than bags of a class", _fit(SetKernelSVC(cv=5), BAGS, BAG_Y), V, "cv"),
    Case("svm", "cv 1", _fit(SetKernelSVC(cv=1), BAGS, BAG_Y), V, "cv"),
    Case("svm", "predict with other features", lambda: SetKernelSVC(gammas=[1.0], Cs=[1.0]).fit(BAGS, BAG_Y).predict([np.zeros((2, 5))]), V, "features"),
    Case("svm", "set_kernel widths differ", lambda: set_kernel(BAGS, [np.zeros((1, 3))], [1.0]), V, "bags_a|bags_b"),
    Case("svm", "set_kernel weights per bag missing", lambda: set_kernel(BAGS, BAGS, [1.0], weights_a=[np.ones(3)]), V, "weights_a"),
    Case("svm", "set_kernel negative weights", lambda: set_kernel(BAGS, BAGS, [1.0], weights_b=[-np.ones(len(b)) for b in BAGS]), V, "weights_b"),
    Case("svm", "instance_weighting unknown", _fit(SetKernelSVC(instance_weighting="graph"), BAGS, BAG_Y), V, "instance_weighting"),
    Case("svm", "clique_weights of an empty bag", lambda: clique_weights([np.zeros((0, 2))]), V, "bag|empty"),
    # ------------------------------------------------------------ structures
    Case("structure", "hierarchy with a cycle", lambda: Hierarchy.from_edges([("a", "b"), ("b", "c"), ("c", "a")]), V, "cycle"),
    Case("structure", "hierarchy self loop", lambda: Hierarchy({"a": "a", "b": None}), V, "cycle|a"),
    Case("structure", "hierarchy two parents", lambda: Hierarchy.from_edges([("r", "a"), ("s", "a")]), V, "parent|a"),
    Case("structure", "hierarchy parents not a mapping", lambda: Hierarchy([("a", "r")]), T, "parents"),
    Case("structure", "hierarchy empty", lambda: Hierarchy({}), V, "empty|node|parents"),
    Case("structure", "from_paths empty path", lambda: Hierarchy.from_paths([["r", "a"], []]), V, "Path|path"),
    Case("structure", "from_paths a string", lambda: Hierarchy.from_paths("r/a"), T, "paths"),
    Case("structure", "from_paths conflicting parent", lambda: Hierarchy.from_paths([["r", "a", "x"], ["r", "b", "x"]]), V, "parent|x"),
    Case("structure", "ordinal duplicate levels", lambda: Ordinal([0, 1, 1, 2]), V, "duplicate|order"),
    Case("structure", "ordinal empty order", lambda: Ordinal([]), V, "order|empty"),
    Case("structure", "ordinal width negative", lambda: Ordinal([0, 1, 2], width=-1), V, "width"),
    Case("structure", "ordinal width a float", lambda: Ordinal([0, 1, 2], width=1.5), T, "width"),
    Case("structure", "graph non-square matrix", lambda: ClassGraph(np.ones((2, 3), bool), ["a", "b"]), V, "matrix|square"),
    Case("structure", "graph 3-D matrix", lambda: ClassGraph(np.ones((2, 2, 2), bool), ["a", "b"]), V, "matrix"),
    Case("structure", "graph classes length mismatch", lambda: ClassGraph(np.eye(3, dtype=bool), ["a", "b"]), V, "classes"),
    Case("structure", "graph duplicate classes", lambda: ClassGraph(np.eye(2, dtype=bool), ["a", "a"]), V, "duplicate|classes"),
    Case("structure", "graph edge to an unknown class", lambda: ClassGraph.from_edges([("a", "z")], classes=["a", "b"]), V, "z|classes|unknown"),
    Case("structure", "graph NaN transition matrix", lambda: ClassGraph.from_transition_matrix(np.full((2, 2), np.nan), ["a", "b"]), V, "transition"),
    Case("structure", "structure a float", lambda: skstruct.structures.check_structure(0.5, Y), T, "class_structure"),
    # ------------------------------------------------------------ losses
    Case("loss", "conveyance logits 1-D", lambda: losses.conveyance_loss(LOGITS[0], TARGET[:1], Q), V, "logits"),
    Case("loss", "conveyance logits integer", lambda: losses.conveyance_loss(LOGITS.long(), TARGET, Q), T, "logits"),
    Case("loss", "conveyance logits a list", lambda: losses.conveyance_loss(LOGITS.tolist(), TARGET, Q), T, "logits"),
    Case("loss", "conveyance target float", lambda: losses.conveyance_loss(LOGITS, TARGET.float(), Q), T, "target"),
    Case("loss", "conveyance target length", lambda: losses.conveyance_loss(LOGITS, TARGET[:2], Q), V, "target"),
    Case("loss", "conveyance target >= C", lambda: losses.conveyance_loss(LOGITS, TARGET + 1, Q), V, "target"),
    Case("loss", "conveyance target negative", lambda: losses.conveyance_loss(LOGITS, TARGET - 1, Q), V, "target"),
    Case("loss", "conveyance plausible shape", lambda: losses.conveyance_loss(LOGITS, TARGET, torch.eye(4, dtype=torch.bool)), V, "plausible"),
    Case("loss", "conveyance plausible numpy", lambda: losses.conveyance_loss(LOGITS, TARGET, np.eye(3)), T, "plausible"),
    Case("loss", "conveyance alpha NaN", lambda: losses.conveyance_loss(LOGITS, TARGET, Q, alpha=math.nan), V, "alpha"),
    Case("loss", "conveyance both weights 0", lambda: losses.conveyance_loss(LOGITS, TARGET, Q, alpha=0, beta=0), V, "alpha and beta"),
    Case("loss", "conveyance reduction unknown", lambda: losses.conveyance_loss(LOGITS, TARGET, Q, reduction="avg"), V, "reduction"),
    Case("loss", "ConveyanceLoss non-square Q", lambda: losses.ConveyanceLoss(np.ones((2, 3))), V, "plausible"),
    Case("loss", "hace target >= C", lambda: losses.hace_loss(LOGITS, TARGET + 1, TREE), V, "target"),
    Case("loss", "hace wrong columns", lambda: losses.hace_loss(torch.randn(4, 5), TARGET, TREE), V, "logits"),
    Case("loss", "hace d outside (0, 1]", lambda: losses.hace_loss(LOGITS, TARGET, TREE, d=1.5), V, r"\bd\b"),
    Case("loss", "hace eps negative", lambda: losses.hace_loss(LOGITS, TARGET, TREE, eps=-0.1), V, "eps"),
    Case("loss", "hace hierarchy not a Hierarchy", lambda: losses.hace_loss(LOGITS, TARGET, {"a": None}), T, "hierarchy"),
    Case("loss", "emd2 target >= C", lambda: losses.emd2_loss(LOGITS, TARGET + 1), V, "target"),
    Case("loss", "emd2 target negative", lambda: losses.emd2_loss(LOGITS, TARGET - 1), V, "target"),
    Case("loss", "emd2 rank not a permutation", lambda: losses.emd2_loss(LOGITS, TARGET, rank=torch.tensor([0, 0, 1])), V, "rank"),
    Case("loss", "emd2 ce_weight negative", lambda: losses.emd2_loss(LOGITS, TARGET, ce_weight=-1.0), V, "ce_weight"),
    Case("loss", "emd2_ground target >= C", lambda: losses.emd2_ground_loss(LOGITS, TARGET + 1, torch.ones(3, 3)), V, "target"),
    Case("loss", "emd2_ground distance shape", lambda: losses.emd2_ground_loss(LOGITS, TARGET, torch.ones(2, 2)), V, "distance"),
    Case("loss", "emd2_ground omega 0", lambda: losses.emd2_ground_loss(LOGITS, TARGET, torch.ones(3, 3), omega=0.0), V, "omega"),
    Case("loss", "average_k target >= C", lambda: losses.average_k_loss(LOGITS, LOGITS, TARGET + 1, k=1.5), V, "target"),
    Case("loss", "average_k k >= C", lambda: losses.average_k_loss(LOGITS, LOGITS, TARGET, k=3), V, r"\bk\b"),
    Case("loss", "average_k shapes differ", lambda: losses.average_k_loss(LOGITS, LOGITS[:, :2], TARGET, k=1.5), V, "logits_multilabel"),
    Case("loss", "AverageKLoss output not a pair", lambda: losses.AverageKLoss(k=1.5)(LOGITS, TARGET), T, "output"),
    Case("loss", "MIL target >= C", lambda: losses.MILConveyanceLoss(np.eye(2))(_mil_output(), torch.tensor([0, 1, 2, 1])), V, "target"),
    Case("loss", "MIL output not a 4-tuple", lambda: losses.MILConveyanceLoss(np.eye(2))(LOGITS, TARGET), T, "output"),
    Case("loss", "MIL bag_logits 1-D", lambda: losses.MILConveyanceLoss(np.eye(2))(_mil_output(LOGITS[:, 0]), TARGET), V, "bag_logits"),
    Case("loss", "MIL instance_weight negative", lambda: losses.MILConveyanceLoss(np.eye(2), instance_weight=-1), V, "instance_weight"),
    # ------------------------------------------------------------ metrics
    Case("metric", "hierarchical f1 unknown label", lambda: metrics.hierarchical_f1_score(["a1", "zz"], ["a1", "b"], hierarchy=TREE), V, "y_true|zz|label"),
    Case("metric", "hierarchical f1 length mismatch", lambda: metrics.hierarchical_f1_score(["a1"], ["a1", "b"], hierarchy=TREE), V, "y_true|y_pred|length|samples"),
    Case("metric", "hierarchical f1 negative sample_weight", lambda: metrics.hierarchical_f1_score(["a1", "b"], ["a1", "b"], hierarchy=TREE, sample_weight=[1, -1]), V, "sample_weight"),
    Case("metric", "hierarchical no hierarchy", lambda: metrics.hierarchical_f1_score(["a1"], ["a1"], hierarchy=ORD), T, "hierarchy"),
    Case("metric", "mistake_severity metric unknown", lambda: metrics.mistake_severity(["a1"], ["b"], hierarchy=TREE, metric="foo"), V, "metric"),
    Case("metric", "level_accuracy depth negative", lambda: metrics.level_accuracy_score(["a1"], ["b"], hierarchy=TREE, depth=-1), V, "depth"),
    Case("metric", "MAE unknown label", lambda: metrics.mean_absolute_rank_error([0, 1], [0, 7], structure=ORD), V, "y_pred|7|label"),
    Case("metric", "MAE sample_weight length", lambda: metrics.mean_absolute_rank_error([0, 1], [0, 1], structure=ORD, sample_weight=[1.0]), V, "sample_weight"),
    Case("metric", "MAE sample_weight NaN", lambda: metrics.mean_absolute_rank_error([0, 1], [0, 1], structure=ORD, sample_weight=[1.0, np.nan]), V, "sample_weight"),
    Case("metric", "RPS proba wrong width", lambda: metrics.ranked_probability_score([0, 1], np.full((2, 2), 0.5), structure=ORD), V, "y_proba"),
    Case("metric", "RPS proba NaN", lambda: metrics.ranked_probability_score([0, 1], np.full((2, 3), np.nan), structure=ORD), V, "y_proba"),
    Case("metric", "set_coverage sets not boolean width", lambda: metrics.set_coverage([0, 1], np.ones((2, 5), bool), classes=[0, 1, 2]), V, "y_sets"),
    Case("metric", "set_coverage length mismatch", lambda: metrics.set_coverage([0, 1, 2], np.ones((2, 3), bool), classes=[0, 1, 2]), V, "y_sets|y_true|samples"),
    Case("metric", "set_coverage unknown label", lambda: metrics.set_coverage([0, 9], np.ones((2, 3), bool), classes=[0, 1, 2]), V, "y_true|9|label"),
    Case("metric", "get_scorer unknown name", lambda: metrics.get_scorer("no_such_metric"), V, "no_such_metric|scor"),
    # ------------------------------------------------------------ set rules
    Case("sets", "average size < 1", lambda: sets.calibrate_average_size(np.random.RandomState(0).rand(5, 3), np.zeros(5, int), 0.5), V, "set_size"),
    Case("sets", "threshold NaN", lambda: sets.sets_from_threshold(np.random.RandomState(0).rand(5, 3), np.zeros(5, int), math.nan), V, "threshold"),
    Case("sets", "conformal level 1", lambda: sets.calibrate_conformal(np.random.RandomState(0).rand(5, 3), np.zeros(5, int), 1.0), V, "confidence_level"),
    Case("sets", "conformal y_index out of range", lambda: sets.calibrate_conformal(np.random.RandomState(0).rand(5, 3), np.full(5, 7), 0.9), V, "y_index"),
    Case("sets", "intervals proba rows", lambda: sets.best_intervals(np.full((3, 3), 1 / 3), np.zeros(2, int)), V, "predicted|proba"),
    Case("sets", "intervals predicted out of range", lambda: sets.best_intervals(np.full((3, 3), 1 / 3), np.full(3, 5)), V, "predicted"),
    Case("sets", "intervals_to_mask lo > hi", lambda: sets.intervals_to_mask(np.array([2]), np.array([1]), 3), V, "lo|hi"),
    Case("sets", "predict_set on a plain sklearn model", lambda: predict_set(__import__("sklearn.linear_model", fromlist=["x"]).LogisticRegression().fit(X, Y), X), T, "estimator|predict_set"),
    # ------------------------------------------------------------ command line
    Case("cli", "--epochs 0", _cli("--epochs", "0"), S, "--epochs"),
    Case("cli", "--folds 1", _cli("--folds", "1"), S, "--folds"),
    Case("cli", "--repetitions 0", _cli("--repetitions", "0"), S, "--repetitions"),
    Case("cli", "--batch-size 0", _cli("--batch-size", "0"), S, "--batch-size"),
    Case("cli", "--n-jobs 0", _cli("--n-jobs", "0"), S, "--n-jobs"),
    Case("cli", "--lr 0", _cli("--lr", "0"), S, "--lr"),
    Case("cli", "--lr nan", _cli("--lr", "nan"), S, "--lr"),
    Case("cli", "--epochs not a number", _cli("--epochs", "ten"), S, "--epochs"),
    Case("cli", "--cv unknown", _cli("--cv", "loo"), S, "--cv"),
    Case("cli", "--datasets unknown", _cli("--datasets", "musk3", "--quiet"), S, "musk3|data set"),
    Case("cli", "--hidden negative", _cli("--hidden", "-4", "--quiet"), S, "--hidden"),
    Case("cli", "--threads 0", _cli("--threads", "0", "--quiet"), S, "--threads"),
    Case("cli", "unknown flag", _cli("--frobnicate"), S, "--frobnicate"),
    Case("cli", "--model unknown", _cli("--model", "svm"), S, "--model"),
    Case("cli", "--model vote with --epochs", _cli("--model", "vote", "--epochs", "3", "--quiet"), S, "--epochs"),
]


def _id(case):
    return f"{case.group}: {case.name}"


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("case", CASES, ids=_id)
def test_bad_input(case):
    """Check that a wrong call raises the expected error, naming the argument."""
    with pytest.raises(case.error) as info:
        case.call()
    message = str(info.value)
    assert re.search(case.match, message), f"message does not name the argument: {message!r}"
    # A builtin error the user can catch: not a torch/numpy exception from deep inside.
    assert type(info.value).__module__.split(".")[0] in ("builtins", "skstruct", "sklearn", "argparse"), type(info.value)


def test_catalogue_size():
    """Check that the catalogue holds at least 80 cases with unique names."""
    assert len(CASES) >= 80
    assert len({_id(c) for c in CASES}) == len(CASES)


def render_markdown():
    """The published table, generated from ``CASES``."""
    lines = [
        "# Bad-input catalogue",
        "",
        "Generated from `tests/test_bad_input_catalogue.py` (the table `CASES`) by",
        "`python tests/test_bad_input_catalogue.py`; do not edit by hand. Each row is",
        "one test: the call must raise the error named, with a message matching the",
        "pattern (the argument's name). Command-line errors are usage errors",
        "(`SystemExit`, exit status 2 for argparse, a message naming the flag).",
        "",
        f"{len(CASES)} cases.",
        "",
        "| group | case | expected error | message names |",
        "|---|---|---|---|",
    ]
    for c in CASES:
        pattern = c.match.replace("|", " or ")
        lines.append(f"| {c.group} | {c.name} | `{c.error.__name__}` | `{pattern}` |")
    return "\n".join(lines) + "\n"


def test_catalogue_doc_is_current():
    """Check that doc/bad_input_catalogue.md is the table generated from CASES."""
    assert DOC.read_text(encoding="utf-8") == render_markdown(), (
        "doc/bad_input_catalogue.md is stale: run python tests/test_bad_input_catalogue.py"
    )


if __name__ == "__main__":
    DOC.write_text(render_markdown(), encoding="utf-8")
    print(f"wrote {DOC} ({len(CASES)} cases)", file=sys.stderr)
