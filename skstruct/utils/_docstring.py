"""Parameter descriptions shared by every estimator, written once.

Estimator docstrings hold ``{placeholders}`` that :func:`fill_doc` fills in
with ``str.format``-free substitution (literal braces elsewhere are safe).
"""

_SHARED = {
    "class_structure": """class_structure : ClassStructure, dict, list, tuple or None, default=None
        How the classes relate. ``None`` means flat classes (``classes_`` is
        ``np.unique(y)``). Otherwise a :class:`~skstruct.structures.Hierarchy`,
        :class:`~skstruct.structures.Ordinal` or
        :class:`~skstruct.structures.ClassGraph`, or a plain form converted at
        ``fit``: a child -> parent ``dict`` (hierarchy), a list of label paths
        (hierarchy), a flat list of labels from lowest to highest (ordinal), a
        ``(matrix, labels)`` tuple (graph). When given, its labels define
        ``classes_``, so a CV fold that lacks a class still gets its column.""",
    "module": """module : torch.nn.Module or None, default=None
        Backbone network mapping a batch of inputs to features. ``None`` builds
        an MLP from ``hidden_layer_sizes``. A user module is deep-copied and
        re-initialised at every ``fit`` (the object passed is never trained),
        and a linear output layer sized from ``classes_`` is added on top.""",
    "hidden_layer_sizes": """hidden_layer_sizes : tuple of int, default=(100,)
        Hidden layer widths of the default MLP (ignored when ``module`` is
        given).""",
    "activation": """activation : {'relu', 'gelu', 'tanh', 'elu', 'leaky_relu'}, default='relu'
        Non-linearity of the default MLP.""",
    "dropout": """dropout : float, default=0.0
        Dropout probability after each hidden layer of the default MLP.""",
    "max_epochs": """max_epochs : int, default=50
        Number of passes over the training data.""",
    "batch_size": """batch_size : int, default=64
        Mini-batch size for training and inference.""",
    "lr": """lr : float, default=1e-3
        Learning rate of the optimizer.""",
    "optimizer": """optimizer : {'adam', 'adamw', 'sgd'} or torch.optim.Optimizer subclass, default='adam'
        Optimizer class.""",
    "weight_decay": """weight_decay : float, default=0.0
        Weight decay (L2) passed to the optimizer.""",
    "early_stopping": """early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the training data (stratified,
        seeded) and stop when the validation loss has not improved for
        ``n_iter_no_change`` epochs, restoring the best weights.""",
    "validation_fraction": """validation_fraction : float, default=0.1
        Size of each held-out split, as a fraction of the training data
        (stratified, seeded): the early-stopping split (``early_stopping=True``)
        and the calibration split of ``predict_set`` (``set_rule='conformal'``,
        or ``'average_k'`` with ``set_size > 1``). The two are disjoint, and the
        network never trains on either.""",
    "n_iter_no_change": """n_iter_no_change : int, default=10
        Patience of early stopping, in epochs.""",
    "class_weight": """class_weight : dict, 'balanced' or None, default=None
        Weights of the classes in the training loss, as in sklearn's
        classifiers: a dict ``{label: weight}`` (labels it omits weigh 1),
        ``'balanced'`` (``n_samples / (n_classes * count(label))`` over the
        labels in y, :func:`sklearn.utils.class_weight.compute_sample_weight`)
        or ``None``. Multiplies ``sample_weight`` of ``fit``.""",
    "optimizer_kwargs": """optimizer_kwargs : dict or None, default=None
        Further keyword arguments of the optimizer, e.g. ``{'momentum': 0.9,
        'nesterov': True}`` for ``'sgd'`` or ``{'betas': (0.9, 0.99)}`` for
        Adam (``lr`` and ``weight_decay`` have their own parameters). One
        parameter, so ``GridSearchCV`` can search
        ``optimizer_kwargs=[{'momentum': 0.0}, {'momentum': 0.9}]``.""",
    "lr_schedule": """lr_schedule : {'cosine', 'step'} or None, default=None
        Learning-rate schedule over the ``max_epochs`` epochs, stepped once
        per epoch: ``'cosine'`` anneals from ``lr`` to 0
        (``CosineAnnealingLR(T_max=max_epochs)``), ``'step'`` divides it by 10
        after every third of the epochs (``StepLR(max_epochs // 3,
        gamma=0.1)``). Other schedules: pass a
        ``skorch.callbacks.LRScheduler`` in ``callbacks``.""",
    "callbacks": """callbacks : list of skorch callbacks or None, default=None
        Extra skorch callbacks (``Checkpoint``, ``LRScheduler``,
        ``EpochTimer``, loggers, ...), as objects or ``(name, callback)``
        pairs. Each ``fit`` uses deep copies (the objects passed are never
        changed); the fitted ones are in ``net_.callbacks_``. They run after
        the estimator's own callbacks.""",
    "warm_start": """warm_start : bool, default=False
        When True and the estimator is fitted, ``fit`` continues training
        the current network (weights and optimizer state) for ``max_epochs``
        more epochs on the new data instead of starting afresh; the classes
        and the input shape must not change. ``loss_curve_`` then holds every
        epoch so far.""",
    "decision_rule": """decision_rule : {'argmax', 'min_expected_cost'}, default='argmax'
        How ``predict`` turns probabilities into a label. ``'min_expected_cost'``
        returns ``argmin_y sum_k p_k D[y, k] ** decision_power`` with ``D`` the
        structure's ground distance (0/1 loss for flat classes, where it equals
        ``'argmax'``).""",
    "decision_power": """decision_power : float, default=1.0
        Exponent of the ground distance in ``'min_expected_cost'``.""",
    "set_rule": """set_rule : {'average_k', 'conformal'} or SplitConformal, default='average_k'
        How ``predict_set`` builds sets. ``'average_k'``: one score threshold
        calibrated so that the mean set size equals ``set_size``; the
        prediction is always in its set. ``'conformal'``: split conformal
        sets (least-ambiguous-set score) with coverage ``confidence_level``.
        Both are calibrated at ``fit`` on a held-out split
        (``validation_fraction`` of the rows) that the network never trains
        on and, with early stopping, disjoint from the split that picks the
        epoch. We chose a split over cross-fitted (out-of-fold) scores
        because it costs one fit, not one per fold, and keeps the guarantee
        exact: the calibration rows are exchangeable with new rows, so the
        mean set size of ``'average_k'`` on new data equals ``set_size`` up
        to sampling error, and ``'conformal'`` sets contain the true label
        with probability at least ``confidence_level`` (marginally, over the
        draw of calibration and test rows). With an Ordinal structure the sets
        are intervals of consecutive ranks around the prediction, with a
        Hierarchy the leaves under the lowest ancestor of the prediction
        whose probability reaches the calibrated level. A
        :class:`~skstruct.sets.SplitConformal` strategy chooses the
        conformity score (:class:`~skstruct.sets.LAC`,
        :class:`~skstruct.sets.APS`, :class:`~skstruct.sets.RAPS`, randomized
        or not) and class-conditional (Mondrian) calibration, on
        ``predict_proba``; its sets are plain subsets of the classes
        whatever the structure, and ``set_threshold_`` holds its quantile
        (one per class when class-conditional).""",
    "set_size": """set_size : float, default=1.0
        Target mean set size of ``set_rule='average_k'`` (``1`` gives the
        singleton of the prediction).""",
    "confidence_level": """confidence_level : float, default=0.9
        Target coverage of ``set_rule='conformal'``.""",
    "calibration_cv": """calibration_cv : int, cross-validation generator or None, default=None
        Which rows calibrate ``predict_set`` at ``fit``. ``None``: a held-out
        split of ``validation_fraction`` of the rows, never trained on (exact
        split-conformal guarantee, see ``set_rule``). An int ``k >= 2`` (a
        stratified k-fold, seeded by ``random_state``) or a splitter:
        cross-fitted calibration. For each fold a clone of the estimator is
        fitted on the other folds (with its own early stopping, if on) and
        scores the fold's rows; the set rule is calibrated on these
        out-of-fold scores of *every* training row, and the returned model
        is fitted on all rows (less the early-stopping split), so ``fit``
        costs ``k + 1`` fits. The threshold then comes from ``k`` times more
        rows, so it varies much less from one training set to the next; but
        it is calibrated on the fold models and applied to the final one,
        which has seen more data: a heuristic without the finite-sample
        guarantee (like the cross-fitting of
        :class:`~sklearn.calibration.CalibratedClassifierCV` with
        ``ensemble=False``). Its coverage is measured in
        ``benchmarks/bench_sets.py --coverage``. Ignored by ``partial_fit``
        and by a set rule that needs no calibration rows.""",
    "device": """device : str, default='cpu'
        Torch device for training and inference, e.g. ``'cuda'``.""",
    "precision": """precision : {'fp32', 'bf16', 'fp16'}, default='fp32'
        Training precision. ``'bf16'``/``'fp16'`` run the forward pass under
        :func:`torch.autocast` (``'fp16'`` with a gradient scaler); losses
        and probabilities are always computed in float32.""",
    "n_threads": """n_threads : int or None, default=None
        Torch intra-op threads used during ``fit`` and prediction, restored
        afterwards. ``None`` keeps torch's setting; in joblib (loky) and Dask
        workers that is already limited (``OMP_NUM_THREADS``) so parallel
        fits do not oversubscribe the cores.""",
    "accelerator": """accelerator : accelerate.Accelerator or None, default=None
        Train through skorch's Hugging Face ``accelerate`` integration
        (multi-GPU data parallelism: each process trains on its shard of every
        epoch). Device placement and mixed precision are then the
        accelerator's (leave ``precision='fp32'``); see
        ``examples/accelerate_data_parallel.py``.""",
    "random_state": """random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation, shuffling and every hold-out split.
        Training leaves torch's global RNG state untouched.""",
    "verbose": """verbose : int, default=0
        ``0`` silent, ``1`` one log line per epoch, ``2`` also a progress bar.""",
}


def fill_doc(obj):
    """Replace ``{name}`` placeholders in ``obj.__doc__`` by the shared text."""
    doc = obj.__doc__
    if doc:
        for key, text in _SHARED.items():
            doc = doc.replace("{" + key + "}", text)
        obj.__doc__ = doc
    return obj
