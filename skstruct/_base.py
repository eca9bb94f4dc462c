"""The shared base of every skstruct estimator: the only module that builds a skorch net.

``_BaseStructuredClassifier.fit`` validates parameters and data, resolves the
class structure, encodes labels against it, seeds torch, builds the module and
the criterion through subclass hooks, trains a skorch ``NeuralNet`` and
calibrates ``predict_set``. Subclasses implement ``_make_criterion`` (and
optionally the other hooks below); they never write ``fit`` or an epoch loop.
"""

import copy
import numbers
from abc import abstractmethod

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import ShuffleSplit, StratifiedShuffleSplit
from sklearn.utils import check_random_state
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted
from skorch.callbacks import EarlyStopping, ProgressBar
from skorch.helper import predefined_split
from skorch.utils import to_device
from torch import nn

from ._net import _AcceleratedNet, _SkstructNet
from .callbacks import NonFiniteLossGuard
from .exceptions import StructureError
from .modules._mlp import MLP, ClassifierNetwork, infer_output_width, reset_parameters
from .sets import calibrate_average_size, calibrate_conformal, sets_from_threshold
from .sets._structured import structured_conformal_level, structured_sets
from .structures import check_structure
from .utils._sklearn_compat import (
    HasMethods,
    Interval,
    StrOptions,
    _fit_context,
    validate_data,
)
from .utils._torch import ArrayDataset, BatchIterator, check_device, seeded, torch_threads

_OPTIMIZERS = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "sgd": torch.optim.SGD,
}


def _is_optimizer_class(obj):
    return isinstance(obj, type) and issubclass(obj, torch.optim.Optimizer)


class _BaseStructuredClassifier(ClassifierMixin, BaseEstimator):
    """Base class of the skstruct estimators (not for direct use).

    Subclasses define ``__init__`` listing every parameter, extend
    ``_parameter_constraints`` and implement :meth:`_make_criterion`.
    """

    _parameter_constraints = {
        "class_structure": [None, "array-like", dict, tuple, str, HasMethods(["plausibility_matrix"])],
        "module": [None, nn.Module],
        "hidden_layer_sizes": ["array-like"],
        "activation": [StrOptions({"relu", "gelu", "tanh", "elu", "leaky_relu"})],
        "dropout": [Interval(numbers.Real, 0, 1, closed="left")],
        "max_epochs": [Interval(numbers.Integral, 1, None, closed="left")],
        "batch_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "lr": [Interval(numbers.Real, 0, None, closed="neither")],
        "optimizer": [StrOptions(set(_OPTIMIZERS)), callable],
        "weight_decay": [Interval(numbers.Real, 0, None, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(numbers.Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(numbers.Integral, 1, None, closed="left")],
        "decision_rule": [StrOptions({"argmax", "min_expected_cost"})],
        "decision_power": [Interval(numbers.Real, 0, None, closed="neither")],
        "set_rule": [
            StrOptions({"average_k", "conformal"}),
            HasMethods(["calibrate", "predict_sets"]),
        ],
        "set_size": [Interval(numbers.Real, 1, None, closed="left")],
        "confidence_level": [Interval(numbers.Real, 0, 1, closed="neither")],
        "device": [str, torch.device],
        "precision": [StrOptions({"fp32", "bf16", "fp16"})],
        "n_threads": [None, Interval(numbers.Integral, 1, None, closed="left")],
        "accelerator": [None, HasMethods(["prepare", "backward"])],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    # Sets always contain the prediction (the invariant of SPEC section 3).
    _sets_include_prediction = True

    # ------------------------------------------------------------------ hooks

    @abstractmethod
    def _make_criterion(self):
        """Return an ``nn.Module`` mapping ``(module_output, target)`` to a scalar loss."""

    def _check_structure(self, y):
        """Resolve ``class_structure`` (hook: estimators may require a kind)."""
        return check_structure(self.class_structure, y)

    def _check_params(self):
        """Cross-parameter checks run right after the constraint table (hook)."""

    def _n_outputs(self):
        """Size of the output layer(s); a tuple builds several heads."""
        return len(self.classes_)

    def _make_body(self, n_features, example):
        """Return ``(body, width)``: the user's module (copied, reset) or the MLP."""
        if self.module is None:
            body = MLP(
                n_features,
                hidden_layer_sizes=tuple(self.hidden_layer_sizes),
                activation=self.activation,
                dropout=self.dropout,
            )
            return body, body.n_outputs
        body = reset_parameters(copy.deepcopy(self.module))
        return body, infer_output_width(body, example)

    def _make_module(self, n_features, example):
        """The full network: body plus output head(s); returns logits."""
        body, width = self._make_body(n_features, example)
        return ClassifierNetwork(body, width, self._n_outputs())

    def _callbacks(self):
        """Extra skorch callbacks (hook), as ``(name, callback)`` pairs."""
        return []

    def _output_to_logits(self, output):
        """Class logits from the module output (hook for multi-head modules)."""
        return output[0] if isinstance(output, (tuple, list)) else output

    def _validate_X(self, X, *, reset):
        """Validate and convert X (hook: MIL takes bags)."""
        return validate_data(
            self, X, reset=reset, dtype=[np.float32, np.float64], ensure_min_samples=1
        )

    def _validate_X_y(self, X, y):
        X, y = validate_data(
            self, X, y, dtype=[np.float32, np.float64], ensure_min_samples=2
        )
        return X, y

    def _make_dataset(self, X, y=None):
        """A dataset with ``get_batch(indices)`` (hook: MIL pads bags)."""
        return ArrayDataset(X, y)

    def _take(self, X, indices):
        """Rows ``indices`` of validated X (hook for non-array X)."""
        return X[indices]

    def _conformal_set_kind(self):
        """Family of ``set_rule='conformal'`` sets (hook).

        ``'interval'`` (consecutive ranks around the prediction) for an
        Ordinal structure, ``'node'`` (the leaves under the lowest ancestor of
        the prediction whose probability reaches the level) for a Hierarchy,
        ``'threshold'`` (``{j : p_j >= threshold}``) otherwise. The first two
        need probability scores from ``_set_scores``.
        """
        kind = getattr(self.structure_, "kind", None)
        return {"ordinal": "interval", "hierarchy": "node"}.get(kind, "threshold")

    def _needs_calibration_rows(self):
        """Whether ``predict_set`` needs calibration rows held out at fit (hook).

        Conformal sets always do. Average-K sets do unless the threshold does
        not depend on data (``set_size=1`` with the prediction forced in).
        """
        if not isinstance(self.set_rule, str) or self.set_rule == "conformal":
            return True
        return bool(self.set_size > 1 or not self._sets_include_prediction)

    def _needs_holdout(self):
        """Whether fit holds out any rows (early stopping or calibration)."""
        return bool(self.early_stopping or self._needs_calibration_rows())

    def _decision_rules(self):
        """Named decision rules: each maps probabilities to column indices."""
        return {
            "argmax": lambda proba: np.argmax(proba, axis=1),
            "min_expected_cost": self._min_expected_cost,
        }

    # ------------------------------------------------------------------- fit

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Fit the network.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,)
            Target labels. With a ``class_structure``, every label must be one
            of the structure's classes.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        with torch_threads(self.n_threads):
            return self._fit(X, y)

    def _fit(self, X, y):
        self._check_params()
        if self.accelerator is not None:
            if self.precision != "fp32":
                raise ValueError(
                    f"precision={self.precision!r} cannot be combined with an "
                    "accelerator: set mixed precision on the Accelerator "
                    "(Accelerator(mixed_precision='bf16')) and leave precision='fp32'."
                )
            device = torch.device(self.accelerator.device)
        else:
            device = check_device(self.device)
        X, y = self._validate_X_y(X, y)
        y = np.asarray(y)
        if y.ndim != 1:
            raise ValueError(
                f"y must be 1-D with one label per sample, got shape {y.shape}."
            )
        self.structure_ = self._check_structure(y)
        if self.structure_ is None:
            check_classification_targets(y)
            self.classes_, y_enc = np.unique(y, return_inverse=True)
            if len(self.classes_) < 2:
                raise ValueError(
                    "y contains a single class "
                    f"({self.classes_[0]!r}); a classifier needs samples of at "
                    "least 2 classes, or a class_structure that defines them."
                )
        else:
            self.classes_ = np.asarray(self.structure_.classes)
            y_enc = self.structure_.encode(y)

        rng = check_random_state(self.random_state)
        seed = int(rng.randint(np.iinfo(np.int32).max))
        train_idx, valid_idx, cal_idx = self._holdout_indices(y_enc, seed)
        # skorch reports a validation loss on the early-stopping split or, if
        # there is none, on the calibration split (monitoring only: nothing
        # is chosen from it, so the calibration rows stay unseen).
        monitor_idx = valid_idx if valid_idx is not None else cal_idx

        with seeded(seed, device):
            example = self._make_dataset(self._take(X, train_idx[:2])).get_batch(
                torch.arange(min(2, len(train_idx)))
            )[0]
            module = self._make_module(self.n_features_in_, example)
            criterion = self._make_criterion()
            train_ds = self._make_dataset(self._take(X, train_idx), y_enc[train_idx])
            valid_ds = None
            if monitor_idx is not None:
                valid_ds = self._make_dataset(self._take(X, monitor_idx), y_enc[monitor_idx])
            generator = torch.Generator().manual_seed(seed)
            self.net_ = self._make_net(module, criterion, device, valid_ds, generator)
            self.net_.fit(train_ds, None)
        # Keep no data after fit: the validation split would otherwise travel
        # with every pickle of the estimator.
        self.net_.train_split = None

        history = self.net_.history
        self.n_iter_ = len(history)
        self.loss_curve_ = [float(v) for v in history[:, "train_loss"]]
        if valid_ds is not None:
            self.validation_loss_curve_ = [float(v) for v in history[:, "valid_loss"]]
        # Calibrate on rows the network neither trained on nor stopped on;
        # without calibration rows the threshold does not depend on data.
        cal_rows = cal_idx if cal_idx is not None else train_idx
        self._calibrate_sets(self._take(X, cal_rows), y_enc[cal_rows])
        return self

    def _holdout_indices(self, y_enc, seed):
        """Disjoint ``(train, early_stopping, calibration)`` row indices.

        Each held-out part has ``ceil(validation_fraction * n)`` rows, drawn
        stratified and seeded; a part that is not needed is ``None``. The
        early-stopping split is drawn first (the same rows as without
        calibration), the calibration split from the remaining rows, so the
        rows that calibrate ``predict_set`` are never trained on nor used to
        pick the epoch.
        """
        n = len(y_enc)
        rest = np.arange(n)
        n_held = int(np.ceil(self.validation_fraction * n))
        parts = []
        for needed in (self.early_stopping, self._needs_calibration_rows()):
            if not needed:
                parts.append(None)
                continue
            if n_held < 1 or len(rest) - n_held < 1:
                raise ValueError(
                    f"validation_fraction={self.validation_fraction} leaves an "
                    f"empty training, validation or calibration set with {n} "
                    "samples; use more data, a different validation_fraction or "
                    "set early_stopping=False."
                )
            rest, held = _split_off(rest, y_enc, n_held, seed)
            parts.append(held)
        return rest, parts[0], parts[1]

    def _make_net(self, module, criterion, device, valid_ds, generator):
        optimizer = self.optimizer
        if isinstance(optimizer, str):
            optimizer = _OPTIMIZERS[optimizer]
        elif not _is_optimizer_class(optimizer):
            raise TypeError(
                f"optimizer must be one of {sorted(_OPTIMIZERS)} or a "
                f"torch.optim.Optimizer subclass, got {optimizer!r}."
            )
        callbacks = [("nonfinite_guard", NonFiniteLossGuard())]
        if self.early_stopping:
            callbacks.append(
                (
                    "early_stopping",
                    EarlyStopping(
                        monitor="valid_loss",
                        patience=self.n_iter_no_change,
                        load_best=True,
                        sink=print if self.verbose else _silent,
                    ),
                )
            )
        if self.verbose >= 2:
            callbacks.append(("progress_bar", ProgressBar()))
        callbacks.extend(self._callbacks())
        extra = dict(device=str(device), precision=self.precision)
        net_class = _SkstructNet
        if self.accelerator is not None:
            net_class = _AcceleratedNet
            acc = self.accelerator
            extra = dict(
                accelerator=acc,
                iterator_train__shard=(acc.process_index, acc.num_processes),
                iterator_train__device=acc.device,
                iterator_valid__device=acc.device,
                callbacks__print_log__sink=acc.print if self.verbose else _silent,
            )
        return net_class(
            module=module,
            criterion=criterion,
            optimizer=optimizer,
            optimizer__weight_decay=self.weight_decay,
            lr=self.lr,
            max_epochs=self.max_epochs,
            batch_size=self.batch_size,
            iterator_train=BatchIterator,
            iterator_train__shuffle=True,
            iterator_train__generator=generator,
            iterator_valid=BatchIterator,
            train_split=None if valid_ds is None else predefined_split(valid_ds),
            callbacks=callbacks,
            predict_nonlinearity=None,
            verbose=int(self.verbose >= 1),
            **extra,
        )

    # ------------------------------------------------------------ prediction

    def _forward(self, X):
        """Module output (tensor or tuple of tensors) on the CPU, in eval mode.

        Every inference batch has exactly ``batch_size`` rows: the last one is
        filled up with copies of its first sample, whose outputs are dropped.
        BLAS picks its kernels by matrix shape, so a fixed shape makes each
        sample's output independent of which other samples share its batch
        (``predict_proba`` of a subset equals the subset of ``predict_proba``,
        bit for bit).
        """
        with torch_threads(self.n_threads):
            return self._forward_batches(self._make_dataset(X))

    def _forward_batches(self, dataset):
        n = len(dataset)
        outputs = []
        for start in range(0, n, self.batch_size):
            idx = torch.arange(start, min(start + self.batch_size, n))
            n_real = len(idx)
            if n_real < self.batch_size:
                idx = torch.cat([idx, idx[:1].expand(self.batch_size - n_real)])
            Xb, yb = dataset.get_batch(idx)
            if self.accelerator is not None:
                # Every process predicts all samples itself with the unwrapped
                # module (no gather across processes).
                Xb = to_device(Xb, self.accelerator.device)
                out = _SkstructNet.evaluation_step(self.net_, (Xb, yb), training=False)
            else:
                out = self.net_.evaluation_step((Xb, yb), training=False)
            outputs.append(_to_cpu_rows(out, n_real))
        if isinstance(outputs[0], tuple):
            return tuple(torch.cat(parts) for parts in zip(*outputs))
        return torch.cat(outputs)

    def _proba_from_logits(self, logits):
        """The one place where logits become probabilities (softmax)."""
        proba = torch.softmax(logits.detach().float(), dim=1).numpy().astype(np.float64)
        proba /= proba.sum(axis=1, keepdims=True)
        return proba

    def predict_proba(self, X):
        """Class probabilities, columns in ``classes_`` order.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input data.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Rows sum to 1.
        """
        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        return self._proba_from_logits(self._output_to_logits(self._forward(X)))

    def _decide(self, proba):
        return self._decision_rules()[self.decision_rule](proba)

    def predict(self, X):
        """Predict labels with ``decision_rule``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input data.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            Labels from ``classes_``.
        """
        proba = self.predict_proba(X)
        return self.classes_[self._decide(proba)]

    def _structure_is_hierarchy(self):
        # Before fit the method is listed (calling it raises NotFittedError);
        # after fit only when the fitted structure is a hierarchy.
        if not hasattr(self, "classes_"):
            return True
        structure = getattr(self, "structure_", None)
        return structure is not None and structure.kind == "hierarchy"

    @available_if(_structure_is_hierarchy)
    def predict_level_proba(self, X, depth):
        """Probabilities of the nodes at ``depth`` of the hierarchy.

        Only available when ``structure_`` is a
        :class:`~skstruct.structures.Hierarchy`: each column sums
        ``predict_proba`` over the leaves under one node at ``depth``
        (roots at depth 0; a leaf shallower than ``depth`` stands for itself).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input data.
        depth : int
            Level of the hierarchy, roots at 0.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_level_nodes)
            Rows sum to 1. Columns follow the sorted labels of the nodes at
            that depth, ``np.unique(structure_.ancestor_at_depth(classes_,
            depth))`` (numbers before strings if the labels are mixed).
        """
        check_is_fitted(self)
        ancestors = self.structure_.ancestor_at_depth(self.classes_, depth)
        level = sorted(set(ancestors.tolist()), key=lambda x: (isinstance(x, str), x))
        column = {node: j for j, node in enumerate(level)}
        onehot = np.zeros((len(self.classes_), len(level)))
        onehot[np.arange(len(self.classes_)), [column[a] for a in ancestors.tolist()]] = 1.0
        return self.predict_proba(X) @ onehot

    def _distance(self):
        """Ground distance in ``classes_`` order (0/1 for flat classes)."""
        if self.structure_ is None:
            n = len(self.classes_)
            return 1.0 - np.eye(n)
        return np.asarray(self.structure_.distance_matrix(), dtype=np.float64)

    def _min_expected_cost(self, proba):
        # expected_cost[i, y] = sum_k proba[i, k] * D[y, k] ** power
        cost = proba @ (self._distance() ** self.decision_power).T
        return np.argmin(cost, axis=1)

    # ------------------------------------------------------------------ sets

    def _set_scores(self, X):
        """Scores thresholded by ``predict_set`` and the prediction indices."""
        proba = self.predict_proba(X)
        return proba, self._decide(proba)

    def _calibrate_strategy(self, X, y_enc):
        """Calibrate a ``set_rule`` strategy object on ``predict_proba`` of X."""
        if y_enc is None:
            raise ValueError(
                f"set_rule={self.set_rule!r} needs the true labels of the "
                "calibration data: call calibrate(X, y)."
            )
        proba = self._proba_from_logits(self._output_to_logits(self._forward(X)))
        if len(y_enc) != len(proba):
            raise ValueError(
                f"y has {len(y_enc)} labels but X has {len(proba)} samples; "
                "pass the labels of the calibration samples."
            )
        self.set_calibrator_ = copy.deepcopy(self.set_rule).calibrate(
            proba, y_enc, self.confidence_level
        )
        q = np.asarray(self.set_calibrator_.quantiles_, dtype=np.float64)
        self.set_threshold_ = float(q[0]) if np.all(q == q[0]) else q

    def _calibrate_sets(self, X, y_enc):
        if not isinstance(self.set_rule, str):
            self._calibrate_strategy(X, y_enc)
        elif self.set_rule == "average_k":
            if self.set_size > len(self.classes_):
                raise ValueError(
                    f"set_size={self.set_size} exceeds the number of classes "
                    f"({len(self.classes_)}); choose 1 <= set_size <= n_classes."
                )
            if self.set_size == 1 and self._sets_include_prediction:
                self.set_threshold_ = np.inf
                return
            scores, predicted = self._set_scores(X)
            self.set_threshold_ = float(
                calibrate_average_size(scores, predicted, self.set_size)
            )
        else:
            if y_enc is None:
                raise ValueError(
                    "set_rule='conformal' needs the true labels of the "
                    "calibration data: call calibrate(X, y)."
                )
            scores, predicted = self._set_scores(X)
            if len(y_enc) != len(scores):
                raise ValueError(
                    f"y has {len(y_enc)} labels but X has {len(scores)} samples; "
                    "pass the labels of the calibration samples."
                )
            kind = self._conformal_set_kind()
            if kind == "threshold":
                level = calibrate_conformal(scores, y_enc, self.confidence_level)
            else:
                level = structured_conformal_level(
                    kind, self.structure_, scores, predicted, y_enc, self.confidence_level
                )
            self.set_threshold_ = float(level)

    def calibrate(self, X, y=None):
        """Recalibrate the ``predict_set`` threshold on new data.

        Uses the current ``set_rule``, ``set_size`` and ``confidence_level``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Calibration data, ideally not seen in training.
        y : array-like of shape (n_samples,), default=None
            Its labels; required by ``set_rule='conformal'``.

        Returns
        -------
        self : object
            The estimator, with ``set_threshold_`` updated.
        """
        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        y_enc = None
        if y is not None:
            y_enc = self._encode(y, name="y")
        self._calibrate_sets(X, y_enc)
        return self

    def _encode(self, y, *, name):
        y = np.asarray(y)
        if self.structure_ is not None:
            return self.structure_.encode(y)
        try:
            idx = np.searchsorted(self.classes_, y)
            idx = np.clip(idx, 0, len(self.classes_) - 1)
            unknown = self.classes_[idx] != y
        except TypeError:  # labels not comparable with classes_ (str vs int)
            idx = np.zeros(len(y), dtype=np.intp)
            unknown = np.ones(len(y), dtype=bool)
        if np.any(unknown):
            bad = list(dict.fromkeys(y[unknown].tolist()))[:5]
            raise ValueError(
                f"{name} contains labels unknown to the fitted model: {bad}; "
                f"the model knows {len(self.classes_)} classes."
            )
        return idx

    def predict_set(self, X):
        """Set-valued prediction, a boolean mask aligned with ``classes_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input data.

        Returns
        -------
        sets : ndarray of shape (n_samples, n_classes), dtype=bool
            ``sets[i, j]`` is True when ``classes_[j]`` is in the set of
            sample ``i``. With ``set_rule='average_k'`` the prediction of
            ``predict`` is always in its set. With ``set_rule='conformal'``,
            an Ordinal structure gives intervals of consecutive ranks and a
            Hierarchy the leaves under one node, both around the prediction.
        """
        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        if not isinstance(self.set_rule, str):
            proba = self._proba_from_logits(self._output_to_logits(self._forward(X)))
            return self.set_calibrator_.predict_sets(proba)
        scores, predicted = self._set_scores(X)
        if self.set_rule == "conformal" and self._conformal_set_kind() != "threshold":
            return structured_sets(
                self._conformal_set_kind(), self.structure_, scores, predicted,
                self.set_threshold_,
            )
        include = self._sets_include_prediction and self.set_rule == "average_k"
        return sets_from_threshold(
            scores, predicted, self.set_threshold_, include_predicted=include
        )

    # ------------------------------------------------------------------ tags

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = True
        tags.non_deterministic = False
        return tags


def _split_off(idx, y_enc, n_held, seed):
    """Split ``n_held`` of the rows ``idx`` off, stratified by ``y_enc`` when possible."""
    try:
        splitter = StratifiedShuffleSplit(n_splits=1, test_size=n_held, random_state=seed)
        keep, held = next(splitter.split(idx, y_enc[idx]))
    except ValueError:
        # A class with one member, or fewer held-out slots than classes.
        splitter = ShuffleSplit(n_splits=1, test_size=n_held, random_state=seed)
        keep, held = next(splitter.split(idx))
    return np.sort(idx[keep]), np.sort(idx[held])


def _silent(*args, **kwargs):
    """A picklable do-nothing sink for skorch's messages."""


def _to_cpu_rows(output, n_rows):
    """First ``n_rows`` rows of a module output (tensor or tuple), on the CPU."""
    if isinstance(output, (tuple, list)):
        return tuple(part[:n_rows].detach().cpu() for part in output)
    return output[:n_rows].detach().cpu()


def _check_structure_kind(structure, kinds, estimator_name):
    """Raise if a resolved structure is not one of ``kinds``."""
    if structure is None or structure.kind not in kinds:
        got = "None" if structure is None else f"a {structure.kind} structure"
        raise StructureError(
            f"{estimator_name} needs class_structure to be a {' or '.join(kinds)} "
            f"structure, got {got}."
        )
    return structure
