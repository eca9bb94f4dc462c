"""The shared base of every skstruct estimator: the only module that builds a skorch net.

``_BaseStructuredClassifier.fit`` validates parameters and data, resolves the
class structure, encodes labels against it, seeds torch, builds the module and
the criterion through subclass hooks, trains a skorch ``NeuralNet`` and
calibrates ``predict_set``. Subclasses implement ``_make_criterion`` (and
optionally the other hooks below); they never write ``fit`` or an epoch loop.
"""

import copy
import inspect
import numbers
import warnings
from abc import abstractmethod
from dataclasses import dataclass, field

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.model_selection import (
    ShuffleSplit,
    StratifiedKFold,
    StratifiedShuffleSplit,
    check_cv,
)
from sklearn.utils import check_random_state
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted
from skorch.callbacks import Callback, EarlyStopping, LRScheduler, ProgressBar
from skorch.helper import predefined_split
from skorch.utils import to_device
from torch import nn

from ._net import _AcceleratedNet, _cast_float32, _SkstructNet
from .callbacks import NonFiniteLossGuard
from .exceptions import TrainingInterruptedWarning
from .losses import SampleWeightedLoss
from .modules._mlp import MLP, ClassifierNetwork, infer_output_width, reset_parameters
from .sets import LAC, AverageK, SplitConformal, ThresholdSets, shape_for_structure
from .structures import check_structure
from .utils._persistence import VersionedPickleMixin
from .utils._skorch_compat import is_initialized
from .utils._sklearn_compat import (
    HasMethods,
    Interval,
    StrOptions,
    _fit_context,
    validate_data,
)
from .utils._torch import (
    ArrayDataset,
    BatchIterator,
    WeightedDataset,
    check_device,
    seeded,
    torch_threads,
)
from .utils.validation import (
    check_class_weight,
    check_sample_weight,
    encode_labels,
)

_OPTIMIZERS = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "sgd": torch.optim.SGD,
}


@dataclass(frozen=True)
class ForwardResult:
    """What ``_forward`` returns: the network's outputs on every sample, on the CPU.

    Attributes
    ----------
    logits : torch.Tensor of shape (n_samples, n_classes)
        Class logits in ``classes_`` order (float32), the input of
        ``_proba_from_logits``.
    extras : dict of str to tensor or ndarray
        Other named outputs of the estimator's network, rows aligned with
        the samples unless the estimator documents otherwise (multi-head
        modules: ``'outputs'``, every head; MIL: instance logits,
        attention and bag sizes).
    """

    logits: torch.Tensor
    extras: dict = field(default_factory=dict)


def _is_optimizer_class(obj):
    return isinstance(obj, type) and issubclass(obj, torch.optim.Optimizer)


class _BaseStructuredClassifier(VersionedPickleMixin, ClassifierMixin, BaseEstimator):
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
        "class_weight": [None, StrOptions({"balanced"}), dict],
        "optimizer_kwargs": [None, dict],
        "lr_schedule": [None, StrOptions({"cosine", "step"})],
        "callbacks": [None, list],
        "warm_start": ["boolean"],
        "decision_rule": [StrOptions({"argmax", "min_expected_cost"})],
        "decision_power": [Interval(numbers.Real, 0, None, closed="neither")],
        "set_rule": [
            StrOptions({"average_k", "conformal"}),
            HasMethods(["calibrate", "predict_sets"]),
        ],
        "set_size": [Interval(numbers.Real, 1, None, closed="left")],
        "confidence_level": [Interval(numbers.Real, 0, 1, closed="neither")],
        "calibration_cv": [None, "cv_object"],
        "device": [str, torch.device],
        "precision": [StrOptions({"fp32", "bf16", "fp16"})],
        "n_threads": [None, Interval(numbers.Integral, 1, None, closed="left")],
        "accelerator": [None, HasMethods(["prepare", "backward"])],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

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

    def _prepare_module(self, X, y_enc, train_idx, sample_weight):
        """Learn from the training samples what the network is built from (hook).

        Runs on a fresh fit, before the training set is made and before
        :meth:`_make_module`, with the validated ``X``, the encoded labels of
        all rows, the indices of the training rows (no held-out row among
        them) and their weights (``None`` when all weigh the same); nothing
        by default.
        """

    def _training_value(self, name):
        """The value of a training parameter that training uses (hook).

        ``lr``, ``max_epochs``, ``batch_size``, ``optimizer`` and
        ``weight_decay`` are read through this hook.

        The parameter itself by default; an estimator with ``'auto'``
        defaults resolves them here.
        """
        return getattr(self, name)

    def _inference_batch_size(self):
        """Samples per batch at prediction (hook; the training batch size by default)."""
        return self._training_value("batch_size")

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
        """Validate and convert X (hook: MIL takes bags).

        With a user ``module`` X may have any number of dimensions (sklearn's
        ``allow_nd``): images ``(n, C, H, W)``, sequences ``(n, T, d)``; the
        default MLP needs 2-D ``(n_samples, n_features)``.
        """
        self._check_X_ndim(X)
        X = validate_data(
            self, X, reset=reset, dtype=[np.float32, np.float64], ensure_min_samples=1,
            allow_nd=self.module is not None,
        )
        if not reset:
            self._check_input_shape(X)
        return X

    def _validate_X_y(self, X, y, reset=True):
        self._check_X_ndim(X)
        X, y = validate_data(
            self, X, y, reset=reset, dtype=[np.float32, np.float64], ensure_min_samples=2,
            allow_nd=self.module is not None,
        )
        if not reset:
            self._check_input_shape(X)
        return X, y

    def _check_X_ndim(self, X):
        ndim = getattr(X, "ndim", None)
        if self.module is None and ndim is not None and ndim > 2:
            raise ValueError(
                f"X has shape {tuple(X.shape)} but the default MLP takes 2-D "
                "(n_samples, n_features) arrays. Flatten the samples "
                "(X.reshape(len(X), -1)) or pass module= a torch network that "
                f"takes inputs of shape (batch, {', '.join(map(str, X.shape[1:]))})."
            )

    def _check_input_shape(self, X):
        expected = getattr(self, "_input_shape_", None)
        if expected is not None and len(expected) > 1 and tuple(X.shape[1:]) != expected:
            raise ValueError(
                f"X has samples of shape {tuple(X.shape[1:])}, but "
                f"{type(self).__name__} was fitted on samples of shape {expected}."
            )

    def _make_dataset(self, X, y=None):
        """A dataset with ``get_batch(indices)`` (hook: MIL pads bags)."""
        return ArrayDataset(X, y)

    def _take(self, X, indices):
        """Rows ``indices`` of validated X (hook for non-array X)."""
        return X[indices]

    def _set_strategy(self):
        """The unfitted set strategy that ``set_rule`` names (hook).

        A strategy object passed as ``set_rule`` is returned as is.
        ``'average_k'``: :class:`~skstruct.sets.AverageK` with ``set_size``
        and plain threshold sets holding the prediction. ``'conformal'``:
        :class:`~skstruct.sets.SplitConformal` with ``LAC()`` and the shape of
        the structure (intervals for an Ordinal, tree nodes for a Hierarchy,
        plain thresholds otherwise). The strategy owns all set logic; the
        estimator only provides scores (``_set_scores``).
        """
        if not isinstance(self.set_rule, str):
            return self.set_rule
        if self.set_rule == "average_k":
            return AverageK(self.set_size, shape=ThresholdSets(include_prediction=True))
        return SplitConformal(LAC(), shape=shape_for_structure(self.structure_))

    def _needs_calibration_rows(self):
        """Whether ``predict_set`` needs calibration rows held out at fit (hook).

        Asks the set strategy (``needs_rows``): conformal sets always do;
        Average-K sets do unless the level does not depend on data
        (``set_size=1`` with the prediction forced in).
        """
        if getattr(self, "_out_of_fold_member", False):
            return False
        return bool(getattr(self._set_strategy(), "needs_rows", True))

    def _cross_fits(self):
        """Whether ``fit`` calibrates the sets on out-of-fold scores (``calibration_cv``)."""
        # (The parameter constraint "cv_object" already refuses ints below 2.)
        return self.calibration_cv is not None and self._needs_calibration_rows()

    def _decision_rules(self):
        """Named decision rules: each maps probabilities to column indices."""
        return {
            "argmax": lambda proba: np.argmax(proba, axis=1),
            "min_expected_cost": self._min_expected_cost,
        }

    # ------------------------------------------------------------------- fit

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the network.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_samples, ...)
            Training data. The default MLP takes 2-D arrays; with a
            ``module`` any array whose trailing shape the module accepts
            (e.g. ``(n_samples, channels, height, width)`` images for a CNN).
        y : array-like of shape (n_samples,)
            Target labels. With a ``class_structure``, every label must be one
            of the structure's classes.
        sample_weight : array-like of shape (n_samples,), default=None
            Per-sample weights of the training loss (multiplied by
            ``class_weight``). The loss of a batch is ``sum(w * loss) /
            sum(w)``: an integer weight counts like repeated rows. A weight
            of 0 drops the sample from training, the validation split and
            the set calibration. The validation loss is weighted the same
            way; the set calibration repeats samples of integer weight (other
            weights only decide which samples it uses).

        Returns
        -------
        self : object
            The fitted estimator.
        """
        with torch_threads(self.n_threads):
            return self._fit(X, y, sample_weight=sample_weight)

    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """Train for one epoch on ``(X, y)``, continuing from the current network.

        The first call builds the network; the classes are fixed then, by
        the ``class_structure`` or by ``classes``. Early stopping and the
        hold-out split are not used; the ``predict_set`` threshold is
        recalibrated on the data of each call (call :meth:`calibrate` on
        held-out data afterwards for ``set_rule='conformal'``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_samples, ...)
            Training data.
        y : array-like of shape (n_samples,)
            Target labels.
        classes : array-like of shape (n_classes,), default=None
            Every label of the problem. Required on the first call without a
            ``class_structure``; with one, the structure's labels are the
            classes and ``classes`` may only name some of them. Ignored by
            later calls.
        sample_weight : array-like of shape (n_samples,), default=None
            Per-sample loss weights, as in :meth:`fit`.

        Returns
        -------
        self : object
            The estimator.
        """
        if not hasattr(self, "net_"):
            self._validate_params()
            if classes is None and self.class_structure is None:
                raise ValueError(
                    "classes must be passed on the first call to partial_fit "
                    "(every label of the problem, e.g. classes=np.unique(y_all)), "
                    "or give a class_structure that defines them."
                )
        with torch_threads(self.n_threads):
            return self._fit(
                X, y, sample_weight=sample_weight, classes=classes, partial=True
            )

    # The steps of ``_fit``, in order (doc/architecture.md, "Training engine";
    # tests/test_engine.py checks that table against this tuple).
    _FIT_STEPS = (
        "_check_params",
        "_resolve_device",
        "_validate_X_y",
        "_resolve_classes",
        "_check_classes",
        "_training_weights",
        "_holdout_indices",
        "_build_or_reuse_net",
        "_train",
        "_record_history",
        "_calibrate_sets",
    )

    def _fit(self, X, y, *, sample_weight=None, classes=None, partial=False):
        # 1. Cross-parameter checks and the device.
        self._check_params()
        device = self._resolve_device()
        warm = hasattr(self, "net_") and (partial or self.warm_start)
        # 2. Data: X and y validated; n_features_in_ set on a fresh fit only.
        X, y = self._validate_X_y(X, y, reset=not warm)
        y = np.asarray(y)
        if y.ndim != 1:
            raise ValueError(
                f"y must be 1-D with one label per sample, got shape {y.shape}."
            )
        sample_weight = check_sample_weight(sample_weight, len(y))
        # 3. Classes: from the structure, ``classes=`` or y; y encoded.
        if warm:
            y_enc = encode_labels(y, self.classes_, structure=self.structure_)
        else:
            self.structure_, self.classes_, y_enc = self._resolve_classes(y, classes)
            # 4. The hook that runs once classes_ is known.
            self._check_classes()
        # 5. Per-sample weights; rows of weight 0 leave the training data.
        kept, weight = self._training_weights(y, y_enc, sample_weight)

        rng = check_random_state(self.random_state)
        seed = int(rng.randint(np.iinfo(np.int32).max))
        # 6. The hold-out split (early stopping, conformal sets), among kept rows.
        # Three disjoint parts: training, early stopping, set calibration.
        if partial:
            train_pos, valid_pos, held_cal_pos = np.arange(len(kept)), None, None
        else:
            train_pos, valid_pos, held_cal_pos = self._holdout_indices(y_enc[kept], seed)
        train_idx = kept[train_pos]
        # skorch reports a validation loss on the early-stopping split or, if
        # there is none, on the calibration split (monitoring only: nothing
        # is chosen from it, so the calibration rows stay unseen).
        if valid_pos is None:
            valid_pos = held_cal_pos
        valid_idx = None if valid_pos is None else kept[valid_pos]

        with seeded(seed, device):
            # 7. Network: a new one, or the fitted one (warm start, partial_fit).
            if not warm:
                self._prepare_module(
                    X, y_enc, train_idx, None if weight is None else weight[train_pos]
                )
            train_ds = self._weighted_dataset(X, y_enc, train_idx, weight, train_pos)
            valid_ds = None
            if valid_idx is not None:
                valid_ds = self._weighted_dataset(X, y_enc, valid_idx, weight, valid_pos)
            generator = torch.Generator().manual_seed(seed)
            self._build_or_reuse_net(
                X, train_idx, device, valid_ds, generator,
                weighted=weight is not None, warm=warm,
            )
            # 8. Training: skorch's loop.
            self._train(
                train_ds, epochs=1 if partial else self._training_value("max_epochs"), warm=warm
            )
        # Keep no data after fit: the validation split would otherwise travel
        # with every pickle of the estimator.
        self.net_.train_split = None
        # 9. History.
        self._record_history(valid_ds is not None)
        # 10. Sets, calibrated on rows the network neither trained on nor
        # stopped on; a rule that needs no calibration rows (average_k with
        # set_size=1) gets the training rows, on which it does not depend.
        if getattr(self, "_out_of_fold_member", False):
            return self  # a fold model of calibration_cv: its parent calibrates
        if self._cross_fits() and not partial:
            self._calibrate_sets(None, None, inputs=self._out_of_fold_inputs(
                X, y_enc, kept, weight, sample_weight, seed))
            return self
        cal_pos = held_cal_pos if held_cal_pos is not None else train_pos
        cal_idx = kept[cal_pos][_weight_repeats(weight, cal_pos)]
        if len(cal_idx) == len(y) and np.all(cal_idx == np.arange(len(y))):
            cal_X = X
        else:
            cal_X = self._take(X, cal_idx)
        self._calibrate_sets(cal_X, y_enc[cal_idx])
        return self

    def _resolve_device(self):
        """The torch device of training (the accelerator's, if one is given)."""
        if self.accelerator is not None:
            if self.precision != "fp32":
                raise ValueError(
                    f"precision={self.precision!r} cannot be combined with an "
                    "accelerator: set mixed precision on the Accelerator "
                    "(Accelerator(mixed_precision='bf16')) and leave precision='fp32'."
                )
            return torch.device(self.accelerator.device)
        return check_device(self.device)

    def _resolve_classes(self, y, classes=None):
        """``(structure_, classes_, y_enc)``: the one label-encoding path of fit."""
        if classes is not None:
            classes = np.asarray(classes)
            if classes.ndim != 1 or len(classes) == 0:
                raise ValueError(
                    f"classes must be a non-empty 1-D array of labels, got shape "
                    f"{classes.shape}."
                )
        # A structure built from labels (e.g. 'ordinal') takes them from classes=.
        structure = self._check_structure(y if classes is None else classes)
        if structure is not None:
            fitted = np.asarray(structure.classes)
            if classes is not None:
                # The structure fixes classes_; classes= may only name its labels.
                encode_labels(np.unique(classes), fitted, name="classes", structure=structure)
            return structure, fitted, structure.encode(y)
        check_classification_targets(y)
        if classes is not None:
            fitted = np.unique(classes)
        else:
            fitted = np.unique(y)
        if len(fitted) < 2:
            raise ValueError(
                "y contains a single class "
                f"({fitted[0]!r}); a classifier needs samples of at "
                "least 2 classes, or a class_structure that defines them."
            )
        return None, fitted, encode_labels(y, fitted, name="y")

    def _check_classes(self):
        """Checks that need ``classes_`` and ``structure_`` (hook; runs once they are set)."""

    def _training_weights(self, y, y_enc, sample_weight):
        """``(kept, weight)``: rows with positive weight, and their weights.

        ``weight`` is ``None`` when every kept row weighs the same (then the
        loss is the plain mean, exactly as without weights).
        """
        class_w = check_class_weight(self.class_weight, y, self.classes_)
        if sample_weight is None and class_w is None:
            return np.arange(len(y)), None
        w = np.ones(len(y)) if sample_weight is None else sample_weight
        if class_w is not None:
            w = w * class_w
        kept = np.flatnonzero(w > 0)
        if len(kept) == 0:
            raise ValueError(
                "sample_weight times class_weight is zero for every sample; at "
                "least one sample needs a positive weight."
            )
        w = w[kept]
        if np.all(w == w[0]):
            return kept, None
        return kept, w

    def _weighted_dataset(self, X, y_enc, idx, weight, pos):
        """The dataset of rows ``idx``, with their weights when there are any."""
        dataset = self._make_dataset(self._take(X, idx), y_enc[idx])
        if weight is None:
            return dataset
        return WeightedDataset(dataset, weight[pos])

    def _build_or_reuse_net(self, X, train_idx, device, valid_ds, generator, *, weighted, warm):
        criterion = self._make_criterion()
        if weighted:
            criterion = SampleWeightedLoss(criterion)
        if warm:
            # Same network and optimizer state; new data, criterion and split.
            self.net_.criterion_ = to_device(criterion, self.net_.device)
            self.net_.train_split = None if valid_ds is None else predefined_split(valid_ds)
            self.net_.iterator_train__generator = generator
            return
        example = self._make_dataset(self._take(X, train_idx[:2])).get_batch(
            torch.arange(min(2, len(train_idx)))
        )[0]
        if isinstance(example, torch.Tensor):
            self._input_shape_ = tuple(example.shape[1:])
        module = self._make_module(self.n_features_in_, example)
        self.net_ = self._make_net(module, criterion, device, valid_ds, generator)

    def _early_stopping_callback(self):
        """skorch's EarlyStopping on the validation loss, restoring the best epoch."""
        return _ValidatedEarlyStopping(
            monitor="valid_loss",
            patience=self.n_iter_no_change,
            load_best=True,
            sink=print if self.verbose else _silent,
        )

    def _train(self, train_ds, *, epochs, warm):
        if warm or not is_initialized(self.net_):
            if not is_initialized(self.net_):
                self.net_.initialize()
            self.net_.partial_fit(train_ds, None, epochs=epochs)
        else:
            self.net_.fit(train_ds, None)

    def _record_history(self, validated):
        history = self.net_.history
        keys = ("train_loss", "valid_loss") if validated else ("train_loss",)
        interrupted = getattr(self.net_, "interrupted_", False)
        if interrupted and len(history) and not all(k in history[-1] for k in keys):
            # A KeyboardInterrupt inside an epoch: drop the incomplete row, so
            # that n_iter_, loss_curve_ and the history count whole epochs.
            del history[-1]
        self.n_iter_ = len(history)
        self.loss_curve_ = [float(row["train_loss"]) for row in history]
        if validated or any("valid_loss" in row for row in history):
            # NaN for epochs trained without the split (partial_fit).
            self.validation_loss_curve_ = [
                float(row.get("valid_loss", np.nan)) for row in history
            ]
        elif hasattr(self, "validation_loss_curve_"):
            del self.validation_loss_curve_  # from an earlier fit with a split
        if interrupted:
            warnings.warn(
                f"Training of {type(self).__name__} was interrupted "
                f"(KeyboardInterrupt) after {self.n_iter_} complete epoch(s) of "
                f"max_epochs={self._training_value('max_epochs')}. The estimator is "
                "fitted with the network as it was when interrupted; fit again to "
                "train it fully, or call partial_fit to continue.",
                TrainingInterruptedWarning,
                stacklevel=5,  # _record_history, _fit, fit, sklearn's _fit_context, user
            )

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
        calibration = self._needs_calibration_rows() and self.calibration_cv is None
        for needed in (self.early_stopping, calibration):
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
        optimizer = self._training_value("optimizer")
        if isinstance(optimizer, str):
            optimizer = _OPTIMIZERS[optimizer]
        elif not _is_optimizer_class(optimizer):
            raise TypeError(
                f"optimizer must be one of {sorted(_OPTIMIZERS)} or a "
                f"torch.optim.Optimizer subclass, got {optimizer!r}."
            )
        callbacks = [("nonfinite_guard", NonFiniteLossGuard())]
        if self.early_stopping:
            callbacks.append(("early_stopping", self._early_stopping_callback()))
        if self.verbose >= 2:
            callbacks.append(("progress_bar", ProgressBar()))
        callbacks.extend(self._callbacks())
        # After the estimator's own callbacks (HACE rescales the lr when
        # training begins; a scheduler must start from the rescaled value).
        callbacks.extend(self._lr_schedule_callbacks())
        callbacks.extend(self._user_callbacks(callbacks))
        optimizer_kwargs = self._check_optimizer_kwargs(optimizer)
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
            **{f"optimizer__{k}": v for k, v in optimizer_kwargs.items()},
            lr=self._training_value("lr"),
            max_epochs=self._training_value("max_epochs"),
            batch_size=self._training_value("batch_size"),
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

    def _check_optimizer_kwargs(self, optimizer):
        kwargs = {} if self.optimizer_kwargs is None else dict(self.optimizer_kwargs)
        for key in ("lr", "weight_decay", "params"):
            if key in kwargs:
                raise ValueError(
                    f"optimizer_kwargs must not contain {key!r}: set the "
                    f"estimator's {key}= parameter instead."
                    if key != "params"
                    else "optimizer_kwargs must not contain 'params': the "
                    "estimator passes the network's parameters."
                )
        signature = inspect.signature(optimizer.__init__).parameters
        takes_any = any(p.kind is p.VAR_KEYWORD for p in signature.values())
        unknown = [k for k in kwargs if k not in signature]
        if unknown and not takes_any:
            accepted = sorted(set(signature) - {"self", "params", "lr", "weight_decay"})
            raise ValueError(
                f"optimizer_kwargs has keys that {optimizer.__name__} does not "
                f"take: {unknown}; it accepts {accepted}."
            )
        weight_decay = self._training_value("weight_decay")
        if "weight_decay" in signature or takes_any:
            kwargs["weight_decay"] = weight_decay
        elif weight_decay:
            raise ValueError(
                f"weight_decay={weight_decay!r}, but {optimizer.__name__} "
                "takes no weight decay; set weight_decay=0 (or use an optimizer "
                "that has one)."
            )
        return kwargs

    def _lr_schedule_callbacks(self):
        if self.lr_schedule is None:
            return []
        if self.lr_schedule == "cosine":
            policy = dict(policy=torch.optim.lr_scheduler.CosineAnnealingLR,
                          T_max=self._training_value("max_epochs"))
        else:  # "step": divide the lr by 10 after each third of the epochs
            policy = dict(policy=torch.optim.lr_scheduler.StepLR,
                          step_size=max(1, self._training_value("max_epochs") // 3),
                          gamma=0.1)
        return [("lr_schedule", LRScheduler(monitor=None, step_every="epoch", **policy))]

    def _user_callbacks(self, internal):
        """The user's ``callbacks``: deep copies (the objects passed are never changed)."""
        if self.callbacks is None:
            return []
        taken = {name for name, _ in internal}
        out = []
        for i, item in enumerate(self.callbacks):
            if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
                name, cb = item
            else:
                name, cb = None, item
            if not isinstance(cb, Callback):
                raise TypeError(
                    f"callbacks[{i}] must be a skorch Callback or a (name, Callback) "
                    f"pair, got {item!r}."
                )
            if name is None:
                name = type(cb).__name__
            if name in taken:
                raise ValueError(
                    f"callbacks[{i}] is named {name!r}, which is taken by "
                    f"{sorted(taken)}; pass it as a ('my_name', callback) pair."
                )
            taken.add(name)
            out.append((name, copy.deepcopy(cb)))
        return out

    # ------------------------------------------------------------ prediction

    def _forward(self, X):
        """The network's outputs on every sample of validated X, as a :class:`ForwardResult`.

        One batched path for every estimator: the dataset of ``_make_dataset``
        serves the batches (``inference_batches(batch_size)`` when it has one:
        ``ArrayDataset`` slices its float32 tensor without a gather; any other
        dataset is served through ``get_batch``), the module runs under
        ``torch.no_grad`` in eval mode with the estimator's precision, device
        and ``n_threads``, :meth:`_batch_outputs` keeps the rows of each batch
        and :meth:`_forward_result` assembles the result, on the CPU.

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
        net = self.net_
        module = net.module_
        if self.accelerator is not None:
            # Every process predicts all samples itself with the unwrapped
            # module (no gather across processes).
            device = torch.device(self.accelerator.device)
        else:
            device = torch.device(net.device)
        move = device.type != "cpu"
        net._set_training(False)
        collector = _RowCollector(len(dataset))
        with torch.no_grad(), net._autocast():
            for inputs, n_real in _inference_batches(dataset, self._inference_batch_size()):
                if move:
                    inputs = to_device(inputs, device)
                if isinstance(inputs, dict):
                    output = module(**inputs)
                else:
                    output = module(inputs)
                collector.add(self._batch_outputs(_cast_float32(output), n_real), n_real)
        return self._forward_result(collector.result(), dataset)

    def _batch_outputs(self, output, n_real):
        """What to keep of one inference batch (hook).

        ``output`` is the module output of a padded batch (tensor, tuple or
        dict of tensors), ``n_real`` the number of its real rows. Returns a
        tensor, tuple or dict of tensors; the base concatenates the batches'
        values along the first dimension (entry by entry) and passes them to
        :meth:`_forward_result`. The default keeps the first ``n_real`` rows
        of every output.
        """
        return _rows(output, n_real)

    def _forward_result(self, outputs, dataset):
        """The :class:`ForwardResult` of the concatenated batch outputs (hook).

        The default takes the class logits with :meth:`_output_to_logits`
        and keeps the module's other outputs (a tuple) as ``extras['outputs']``.
        """
        extras = {"outputs": outputs} if isinstance(outputs, (tuple, list)) else {}
        return ForwardResult(logits=self._output_to_logits(outputs), extras=extras)

    def _logits(self, X):
        """Class logits of validated X, ``(n_samples, n_classes)`` on the CPU."""
        return self._forward(X).logits


    def _proba_from_logits(self, logits):
        """The one place where logits become probabilities (softmax)."""
        logits = logits.detach().float()
        if logits.ndim == 2 and logits.shape[1] < 16:
            # torch's CPU softmax vectorises along the class axis and is
            # several times slower than these three passes when a row has
            # fewer than 16 classes (18 against 2 ms for 32,000 x 10 logits,
            # one thread; benchmarks/README.md, "predict_proba throughput");
            # same formula, exp(z - max z) / sum.
            proba = logits - logits.amax(dim=1, keepdim=True)
            proba = proba.exp_().numpy().astype(np.float64)
        else:
            proba = torch.softmax(logits, dim=1).numpy().astype(np.float64)
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
        return self._proba_from_logits(self._logits(X))

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
        """Scores a set strategy turns into sets, and the prediction indices (hook)."""
        proba = self.predict_proba(X)
        return proba, self._decide(proba)

    def _strategy_inputs(self, strategy, X):
        """``(scores, predicted)`` for ``strategy``: probabilities or ``_set_scores``."""
        if getattr(strategy, "needs_probabilities", True):
            return self._proba_from_logits(self._logits(X)), None
        return self._set_scores(X)

    def _out_of_fold_inputs(self, X, y_enc, kept, weight, sample_weight, seed):
        """``(scores, predicted, y_enc)`` of every kept row, each from a model that did not train on it.

        One clone per fold of ``calibration_cv`` (stratified, seeded by
        ``seed``), fitted on the other folds with the same parameters but no
        set calibration of its own (``sample_weight`` goes to the fold
        models); integer weights (``weight`` of the kept rows) repeat rows,
        as in the held-out calibration.
        """
        cv = self.calibration_cv
        if isinstance(cv, numbers.Integral):
            cv = StratifiedKFold(int(cv), shuffle=True, random_state=seed)
        cv = check_cv(cv, y_enc[kept], classifier=True)
        strategy = self._set_strategy()
        labels = self.classes_[y_enc]
        parts = []
        for fold, (train_pos, test_pos) in enumerate(cv.split(np.zeros(len(kept)), y_enc[kept])):
            train_idx, test_idx = kept[train_pos], kept[test_pos]
            model = clone(self).set_params(calibration_cv=None, verbose=0)
            model._out_of_fold_member = True  # trains on all its rows, calibrates nothing
            fold_weight = None if sample_weight is None else np.asarray(sample_weight)[train_idx]
            model.fit(self._take(X, train_idx), labels[train_idx], sample_weight=fold_weight)
            if not np.array_equal(model.classes_, self.classes_):
                given = self.calibration_cv
                given = given if isinstance(given, numbers.Integral) else type(given).__name__
                raise ValueError(
                    f"calibration_cv ({given}): the training rows of fold {fold} hold "
                    f"only the classes {model.classes_.tolist()} of "
                    f"{self.classes_.tolist()}; use fewer folds or give a class_structure."
                )
            scores, predicted = model._strategy_inputs(strategy, self._take(X, test_idx))
            rows = _weight_repeats(weight, test_pos)
            parts.append((scores[rows], None if predicted is None else predicted[rows],
                          y_enc[test_idx][rows]))
        scores = np.concatenate([p[0] for p in parts])
        predicted = None if parts[0][1] is None else np.concatenate([p[1] for p in parts])
        return scores, predicted, np.concatenate([p[2] for p in parts])

    def _calibrate_sets(self, X, y_enc, *, inputs=None):
        """Calibrate the ``set_rule`` strategy on rows X (labels ``y_enc``) into ``set_calibrator_``.

        ``inputs=(scores, predicted, y_enc)`` gives scores computed elsewhere
        (the out-of-fold scores of ``calibration_cv``) instead of rows.
        """
        strategy = copy.deepcopy(self._set_strategy())
        if inputs is not None:
            scores, predicted, y_enc = inputs
        else:
            scores, predicted = self._calibration_inputs(strategy, X, y_enc)
        extra = {} if predicted is None else {"predicted": predicted}
        self.set_calibrator_ = strategy.calibrate(scores, y_enc, self.confidence_level, **extra)
        level = getattr(self.set_calibrator_, "level_", None)
        if level is None:  # a user strategy with quantiles_ only
            level = np.asarray(self.set_calibrator_.quantiles_, dtype=np.float64)
            level = float(level[0]) if np.all(level == level[0]) else level
        self.set_threshold_ = level if isinstance(level, np.ndarray) else float(level)

    def _calibration_inputs(self, strategy, X, y_enc):
        """``(scores, predicted)`` of calibration rows X for ``strategy``, after checking the labels."""
        needs_labels = getattr(strategy, "needs_labels", True)
        if needs_labels and y_enc is None:
            raise ValueError(
                f"set_rule={self.set_rule!r} needs the true labels of the "
                "calibration data: call calibrate(X, y)."
            )
        if not getattr(strategy, "needs_rows", True):
            return None, None
        scores, predicted = self._strategy_inputs(strategy, X)
        if needs_labels and y_enc is not None and len(y_enc) != len(scores):
            raise ValueError(
                f"y has {len(y_enc)} labels but X has {len(scores)} samples; "
                "pass the labels of the calibration samples."
            )
        return scores, predicted

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
        return encode_labels(y, self.classes_, name=name, structure=self.structure_)

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
        scores, predicted = self._strategy_inputs(self.set_calibrator_, X)
        if predicted is None:
            return self.set_calibrator_.predict_sets(scores)
        return self.set_calibrator_.predict_sets(scores, predicted=predicted)

    # ------------------------------------------------------------------ tags

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = True
        tags.non_deterministic = False
        return tags


def _weight_repeats(weight, pos):
    """Row indices into ``pos`` with integer weights counted as repeated rows.

    ``weight`` holds the kept rows' weights (``None``: all equal); rows with
    non-integer weights are each taken once.
    """
    rows = np.arange(len(pos))
    if weight is None or not np.all(weight[pos] == np.round(weight[pos])):
        return rows
    return np.repeat(rows, weight[pos].astype(np.int64))


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


class _ValidatedEarlyStopping(EarlyStopping):
    """skorch's EarlyStopping, idle in epochs that have no validation loss.

    ``partial_fit`` trains without the early-stopping split; there the
    callback records nothing, so it neither raises on the missing
    ``valid_loss`` nor restores the weights of an earlier ``fit``.
    """

    def on_epoch_end(self, net, **kwargs):
        if self.monitor in net.history[-1]:
            super().on_epoch_end(net, **kwargs)


def _silent(*args, **kwargs):
    """A picklable do-nothing sink for skorch's messages."""


def _rows(output, n_rows):
    """First ``n_rows`` rows of a module output (tensor, tuple/list or dict)."""
    if isinstance(output, dict):
        return {key: _rows(value, n_rows) for key, value in output.items()}
    if isinstance(output, (tuple, list)):
        return tuple(_rows(part, n_rows) for part in output)
    return output if output.shape[0] == n_rows else output[:n_rows]


class _RowCollector:
    """Per-batch outputs written into buffers of the full output size, on the CPU.

    Each tensor entry of the batches' outputs (same structure every batch:
    tensor, tuple/list or dict) gets one buffer, allocated at the first batch
    for all ``n_samples`` (rows per sample as in that batch: exact for the
    default one row per sample, an estimate for entries such as MIL's
    instance rows, grown by doubling if exceeded). No list of per-batch
    tensors and no final concatenation (a second full-size copy), and no
    small long-lived tensors between the batch temporaries, which fragmented
    the heap (10^6 rows through a 64-unit layer grew the resident memory by
    270 MB; tests/test_faults.py).
    """

    def __init__(self, n_samples):
        self.n_samples = n_samples
        self.structure = None
        self.buffers = []
        self.used = []

    @staticmethod
    def _leaves(output):
        if isinstance(output, dict):
            return [leaf for value in output.values() for leaf in _RowCollector._leaves(value)]
        if isinstance(output, (tuple, list)):
            return [leaf for part in output for leaf in _RowCollector._leaves(part)]
        return [output]

    def _rebuild(self, template, leaves):
        if isinstance(template, dict):
            return {key: self._rebuild(value, leaves) for key, value in template.items()}
        if isinstance(template, (tuple, list)):
            return tuple(self._rebuild(part, leaves) for part in template)
        return next(leaves)

    def add(self, output, n_real):
        leaves = self._leaves(output)
        if self.structure is None:
            self.structure = output
            for leaf in leaves:
                if isinstance(leaf, torch.Tensor):
                    per_sample = leaf.shape[0] / max(n_real, 1)
                    capacity = max(int(np.ceil(per_sample * self.n_samples)), leaf.shape[0])
                    self.buffers.append(torch.empty((capacity, *leaf.shape[1:]), dtype=leaf.dtype))
                else:
                    self.buffers.append([])
                self.used.append(0)
        for i, leaf in enumerate(leaves):
            buffer = self.buffers[i]
            if not isinstance(buffer, torch.Tensor):
                buffer.append(leaf)
                continue
            start, rows = self.used[i], leaf.shape[0]
            if start + rows > buffer.shape[0]:
                grown = torch.empty(
                    (max(2 * buffer.shape[0], start + rows), *buffer.shape[1:]), dtype=buffer.dtype
                )
                grown[:start] = buffer[:start]
                self.buffers[i] = buffer = grown
            buffer[start : start + rows] = leaf.detach()
            self.used[i] = start + rows

    def result(self):
        leaves = []
        for buffer, used in zip(self.buffers, self.used):
            if isinstance(buffer, torch.Tensor):
                leaves.append(buffer if used == buffer.shape[0] else buffer[:used])
            else:
                leaves.append(buffer)
        return self._rebuild(self.structure, iter(leaves))


def _inference_batches(dataset, batch_size):
    """``(inputs, n_real)`` batches of exactly ``batch_size`` rows over ``dataset``, in order.

    The dataset's own ``inference_batches`` when it has one; otherwise
    ``get_batch`` on index ranges, the last one filled up with copies of its
    first index.
    """
    own = getattr(dataset, "inference_batches", None)
    if own is not None:
        yield from own(batch_size)
        return
    n = len(dataset)
    for start in range(0, n, batch_size):
        idx = torch.arange(start, min(start + batch_size, n))
        n_real = len(idx)
        if n_real < batch_size:
            idx = torch.cat([idx, idx[:1].expand(batch_size - n_real)])
        yield dataset.get_batch(idx)[0], n_real
