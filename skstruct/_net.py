"""The skorch network every skstruct estimator builds in ``fit``.

``_SkstructNet`` is skorch's :class:`~skorch.NeuralNet` with these changes,
all inside one training step or one batch of the epoch loop, none changing
what is computed or recorded:

* mixed precision: the forward pass runs under :func:`torch.autocast`
  (``'bf16'`` or ``'fp16'``) and its output is cast back to float32, so every
  loss is computed in float32; ``'fp16'`` scales the loss with a
  :class:`torch.amp.GradScaler` and unscales the gradients before the
  ``on_grad_computed`` callbacks (gradient clipping, L1) see them;
* ``_set_training`` walks the module tree only when a top-level train/eval
  flag differs (skorch walks it on every batch);
* ``notify`` calls only the hooks that do something: the callbacks that
  override the event, and the net's own hook unless it is one of skorch's
  no-ops (skorch calls every one for every batch event);
* the plain train step: with Adam, AdamW or SGD (which evaluate a closure
  once) and none of skorch's step methods overridden, skorch's
  ``train_step`` -> ``_step_optimizer`` -> closure -> ``train_step_single``
  -> ``infer``/``get_loss`` chain runs as one method making the same calls in
  the same order: gradients set to None directly (what
  ``optimizer.zero_grad()`` does, without its profiler record and dynamo
  guard, about 20 us a step), a tensor batch used as is when it is already
  on the device (skorch's ``to_tensor`` walks its type checks and calls
  ``.to(device)`` twice a step), ``on_grad_computed`` notified only when a
  callback listens; other optimizers (LBFGS) still get skorch's closure;
* the batch records go straight into the current epoch's dict of a plain
  ``History``;
* per-batch fast paths measured with cProfile on a 50-128-10 MLP at batch
  64 (``benchmarks/bench_training.py``): ``evaluation_step`` checks
  ``initialized_`` instead of running skorch's attribute-walking
  ``check_is_fitted`` on every batch, fp32 reuses one null context instead
  of building a ``torch.device`` per batch, and a float32 output is returned
  as is without walking containers.

The estimators compose this net (``net_``); users never subclass it.
"""

import contextlib
import functools
import inspect
import sys

import torch
import torch.optim.adam  # noqa: F401  (torch.optim.adam is the module, not the class)
from skorch import NeuralNet
from skorch.callbacks import Callback, EarlyStopping
from skorch.dataset import get_len
from skorch.history import History
from skorch.hf import AccelerateMixin

from .utils._skorch_compat import (
    TeeGenerator,
    is_initialized,
    optimizers,
    set_training_all,
    training_modules,
    unpack_data,
    zero_grad_optimizers,
)

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
_NO_AUTOCAST = contextlib.nullcontext()  # reusable: enters and exits as a no-op


def _cast_float32(output):
    if type(output) is torch.Tensor and output.dtype == torch.float32:
        return output  # the common case, without the container walk
    if isinstance(output, (tuple, list)):
        return type(output)(_cast_float32(o) for o in output)
    if isinstance(output, torch.Tensor) and output.is_floating_point():
        return output.float()
    return output


# Optimizers whose fused kernel is used by default (measured 0.89x the time of
# the default implementation for a 50-128-10 MLP at batch 64, 1 thread, in
# benchmarks/bench_training.py); an explicit optimizer__fused / __foreach wins.
_FUSED_BY_DEFAULT = (torch.optim.Adam, torch.optim.AdamW)

# Optimizers that evaluate a closure exactly once per step: for them the step
# runs forward/backward first and then ``step()`` without a closure (skorch
# passes one, which cost about 3 % of a step of that MLP; LBFGS and other
# optimizers still get it).
_CLOSURE_FREE = (torch.optim.Adam, torch.optim.AdamW, torch.optim.SGD)


# The fused Adam step without torch's per-step Python (the profiler record,
# hooks, ``_init_group`` and ``adam()`` dispatch): ``torch.optim.adam``'s own
# ``_fused_adam``, called with the lists ``Adam.step`` would build, only where
# that is all ``step()`` would do (see ``_fused_adam_step``). About 0.1 ms of
# a 4 ms one-bag MIL step; the update is the same kernel, bit for bit.
_ADAM_MODULE = sys.modules["torch.optim.adam"]
_OPTIMIZER_MODULE = sys.modules["torch.optim.optimizer"]
_FUSED_ADAM = getattr(_ADAM_MODULE, "_fused_adam", None)
_FUSED_ADAM_KEYWORDS = {
    "amsgrad", "has_complex", "beta1", "beta2", "lr", "weight_decay", "eps",
    "maximize", "capturable", "differentiable", "decoupled_weight_decay",
}
if _FUSED_ADAM is not None and not _FUSED_ADAM_KEYWORDS <= set(
    inspect.signature(_FUSED_ADAM).parameters
):
    _FUSED_ADAM = None  # another torch: its own step() runs


def _fused_adam_step(optimizer):
    """``optimizer.step()`` for a fused Adam / AdamW past its first step; False when declined.

    Taken only when ``step()`` would reach ``_fused_adam`` with nothing else
    to do: exactly ``Adam`` or ``AdamW`` (no subclass, no ``step`` patched on
    the instance, as LR schedulers do), no step hooks (the optimizer's or
    global), no AMP ``grad_scale`` / ``found_inf``, every group fused with
    float hyper-parameters and neither amsgrad, capturable nor
    differentiable, every parameter with a gradient has its state already
    (the first step creates it: declined). Then the call is the one
    ``Adam.step`` makes, under ``no_grad`` as there. Nothing is updated
    before every group is checked.
    """
    if (
        _FUSED_ADAM is None
        or type(optimizer) not in (torch.optim.Adam, torch.optim.AdamW)
        or "step" in optimizer.__dict__
        or optimizer._optimizer_step_pre_hooks
        or optimizer._optimizer_step_post_hooks
        or _OPTIMIZER_MODULE._global_optimizer_pre_hooks
        or _OPTIMIZER_MODULE._global_optimizer_post_hooks
        or getattr(optimizer, "grad_scale", None) is not None
        or getattr(optimizer, "found_inf", None) is not None
    ):
        return False
    state = optimizer.state
    calls = []
    for group in optimizer.param_groups:
        if (
            group.get("fused") is not True
            or group["amsgrad"]
            or group["capturable"]
            or group["differentiable"]
            or "decoupled_weight_decay" not in group
            or isinstance(group["lr"], torch.Tensor)
        ):
            return False
        params, grads, exp_avgs, exp_avg_sqs, steps = [], [], [], [], []
        for param in group["params"]:
            grad = param.grad
            if grad is None:
                continue
            param_state = state.get(param)
            if not param_state or grad.is_sparse:
                return False
            params.append(param)
            grads.append(grad)
            exp_avgs.append(param_state["exp_avg"])
            exp_avg_sqs.append(param_state["exp_avg_sq"])
            steps.append(param_state["step"])
        calls.append((group, params, grads, exp_avgs, exp_avg_sqs, steps))
    with torch.no_grad():
        for group, params, grads, exp_avgs, exp_avg_sqs, steps in calls:
            beta1, beta2 = group["betas"]
            _FUSED_ADAM(
                params, grads, exp_avgs, exp_avg_sqs, [], steps, None, None,
                amsgrad=False, has_complex=False, beta1=beta1, beta2=beta2,
                lr=group["lr"], weight_decay=group["weight_decay"], eps=group["eps"],
                maximize=group["maximize"], capturable=False, differentiable=False,
                decoupled_weight_decay=group["decoupled_weight_decay"],
            )
    return True


# The methods skorch's train step goes through; the plain step (one frame, the
# same calls) runs only while none of them is overridden, by a subclass (the
# accelerated net overrides train_step_single) or on the instance.
_STEP_METHODS = (
    "train_step_single", "get_loss", "_zero_grad_optimizer", "get_train_step_accumulator",
    "infer", "_step_optimizer", "_set_training", "notify",
)
_PLAIN_CLASSES = {}  # class -> whether it keeps every method of _STEP_METHODS

# NeuralNet's own hooks whose body is ``pass``: notify skips them
# (tests/test_compat.py checks that they still are no-ops).
_NET_NO_OP_HOOKS = frozenset(
    {"on_train_begin", "on_train_end", "on_epoch_end", "on_batch_end", "on_grad_computed"}
)


class _SkstructNet(NeuralNet):
    # skorch pickles the attributes named by these prefixes in one inner
    # pickle that it loads with torch's map_location, so that a net trained on
    # CUDA loads on a CPU-only machine. skorch registers module_, criterion_
    # and optimizer_; but fit builds the net from module and criterion
    # *instances* (the same objects as module_ and criterion_), and the
    # gradient-clipping callback of MILConveyance holds the parameters.
    # Outside that inner pickle their tensors would be plain CUDA storages,
    # which torch refuses to load without CUDA (and stored a second time).
    # The shuffling generator (a CPU one) goes there too, so that every
    # tensor of a fitted net takes the one device-aware path.
    cuda_dependent_attributes_ = ["module", "criterion", "callbacks", "iterator_train__generator"]

    def __init__(self, *args, precision="fp32", **kwargs):
        optimizer = kwargs.get("optimizer")
        if (
            optimizer in _FUSED_BY_DEFAULT
            and "optimizer__fused" not in kwargs
            and "optimizer__foreach" not in kwargs
        ):
            kwargs["optimizer__fused"] = True
        super().__init__(*args, **kwargs)
        self.precision = precision

    # ------------------------------------------------------------ precision

    def _autocast(self):
        if self.precision == "fp32":
            return _NO_AUTOCAST
        dtype = PRECISIONS[self.precision]
        if dtype is None:
            return contextlib.nullcontext()
        device_type = torch.device(self.device).type
        return torch.autocast(device_type=device_type, dtype=dtype)

    def initialize(self):
        super().initialize()
        self.grad_scaler_ = None
        if self.precision == "fp16":
            self.grad_scaler_ = torch.amp.GradScaler(torch.device(self.device).type)
        return self

    def infer(self, x, **fit_params):
        with self._autocast():
            if type(x) is torch.Tensor and not fit_params:
                # skorch's infer for a tensor, without its container checks:
                # to_tensor(x, device) is x.to(device), a no-op when x is there.
                output = self.module_(_on_device(x, self.device))
            elif type(x) is dict and not fit_params and all(
                type(v) is torch.Tensor for v in x.values()
            ):
                # The same for a dict of tensors (MIL's bags and mask):
                # skorch moves each value and passes them as keyword arguments.
                device = self.device
                output = self.module_(**{k: _on_device(v, device) for k, v in x.items()})
            else:
                output = super().infer(x, **fit_params)
        return _cast_float32(output)

    def evaluation_step(self, batch, training=False):
        # skorch's version runs check_is_fitted (an attribute walk through
        # sklearn's validation) on every batch; one flag test is enough once
        # the net is initialised, and the full check still runs otherwise.
        if not is_initialized(self):
            self.check_is_fitted()
        Xi, _ = unpack_data(batch)
        with torch.set_grad_enabled(training):
            self._set_training(training)
            return self.infer(Xi)

    def train_step(self, batch, **fit_params):
        if self.grad_scaler_ is None:
            if self._plain_step():
                return self._plain_train_step(batch, fit_params)
            return super().train_step(batch, **fit_params)
        # fp16: scale the loss, unscale before callbacks look at gradients,
        # and let the scaler skip steps with inf/NaN gradients.
        zero_grad_optimizers(self)
        self._set_training(True)
        Xi, yi = unpack_data(batch)
        y_pred = self.infer(Xi, **fit_params)
        loss = self.get_loss(y_pred, yi, X=Xi, training=True)
        self.grad_scaler_.scale(loss).backward()
        net_optimizers = optimizers(self)
        for optimizer in net_optimizers:
            self.grad_scaler_.unscale_(optimizer)
        self._notify_grad_computed(batch)
        for optimizer in net_optimizers:
            self.grad_scaler_.step(optimizer)
        self.grad_scaler_.update()
        return {"loss": loss, "y_pred": y_pred}

    # ------------------------------------------------------------ interrupts

    def fit_loop(self, X, y=None, epochs=None, **fit_params):
        # skorch's partial_fit swallows a KeyboardInterrupt raised in this loop:
        # Ctrl-C, a callback that stops training, or EarlyStopping (which stops
        # by raising it). ``interrupted_`` records whether it was anything but
        # an early stop, so the estimator can warn.
        self.interrupted_ = False
        try:
            return super().fit_loop(X, y, epochs=epochs, **fit_params)
        except KeyboardInterrupt:
            self.interrupted_ = not any(
                isinstance(cb, EarlyStopping) and cb.misses_ >= cb.patience
                for _, cb in self.callbacks_
            )
            raise

    # ------------------------------------------------------------- overhead

    def _plain_step(self):
        """Whether a train step may run as :meth:`_plain_train_step`.

        True when every optimizer is a closure-free one (Adam, AdamW, SGD,
        exactly) and none of the methods skorch's step goes through is
        overridden (by a subclass such as the accelerated net, or on the
        instance); then the plain step does what skorch's does.
        """
        cls = type(self)
        plain = _PLAIN_CLASSES.get(cls)
        if plain is None:
            plain = all(getattr(cls, name) is getattr(_SkstructNet, name) for name in _STEP_METHODS)
            _PLAIN_CLASSES[cls] = plain
        if not plain or getattr(self, "_listeners", None) is None:
            return False
        if not self.__dict__.keys().isdisjoint(_STEP_METHODS):
            return False
        return all(type(opt) in _CLOSURE_FREE for opt in optimizers(self))

    def _notify_grad_computed(self, batch):
        """skorch's ``on_grad_computed`` notification, as its train step sends it."""
        self.notify(
            "on_grad_computed",
            named_parameters=TeeGenerator(self.get_all_learnable_params()),
            batch=batch,
            training=True,
        )

    def _plain_train_step(self, batch, fit_params):
        # skorch's train_step -> _step_optimizer -> step_fn ->
        # train_step_single, in one frame and with the same calls in the same
        # order: zero the gradients (zero_grad(set_to_none=True), the default,
        # without its profiler record), forward, loss, backward,
        # on_grad_computed (only when a callback listens: the net's own hook
        # is a no-op), step.
        net_optimizers = optimizers(self)
        for optimizer in net_optimizers:
            for group in optimizer.param_groups:
                for param in group["params"]:
                    param.grad = None
        self._set_training(True)
        Xi, yi = unpack_data(batch)
        y_pred = self.infer(Xi, **fit_params)
        if type(yi) is torch.Tensor:
            # get_loss: to_tensor(y, device), a no-op for a tensor already there.
            loss = self.criterion_(y_pred, _on_device(yi, self.device))
        else:
            loss = self.get_loss(y_pred, yi, X=Xi, training=True)
        loss.backward()
        if self._listeners_of("on_grad_computed"):
            self._notify_grad_computed(batch)
        for optimizer in net_optimizers:
            if not _fused_adam_step(optimizer):
                optimizer.step()
        return {"loss": loss, "y_pred": y_pred}

    def _step_optimizer(self, step_fn):
        opts = optimizers(self)
        if not all(type(opt) in _CLOSURE_FREE for opt in opts):
            return super()._step_optimizer(step_fn)
        step_fn()
        for optimizer in opts:
            optimizer.step()

    def _set_training(self, training=True):
        # Walk the module trees only when a top-level flag differs.
        for module in training_modules(self):
            if isinstance(module, torch.nn.Module) and module.training != training:
                set_training_all(self, training)
                return

    def on_batch_begin(self, net, batch=None, training=False, **kwargs):
        rows = _batch_rows(self.history)
        if rows is None:
            return super().on_batch_begin(net, batch=batch, training=training, **kwargs)
        rows.append({})

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        # skorch's loop, event for event and record for record, with the
        # batch records written straight into the current epoch's dict
        # (skorch parses a History index tuple for each of them).
        if iterator is None:
            return
        history = self.history
        loss_key, size_key = prefix + "_loss", prefix + "_batch_size"
        batch_count = 0
        for batch in iterator:
            self.notify("on_batch_begin", batch=batch, training=training)
            step = step_fn(batch, **fit_params)
            loss = step["loss"].item()
            size = _n_samples(batch)
            rows = _batch_rows(history)
            if rows is None:
                history.record_batch(loss_key, loss)
                history.record_batch(size_key, size)
            else:
                row = rows[-1]
                row[loss_key] = loss
                row[size_key] = size
            self.notify("on_batch_end", batch=batch, training=training, **step)
            batch_count += 1
        history.record(prefix + "_batch_count", batch_count)

    def initialize_callbacks(self):
        super().initialize_callbacks()
        self._listeners = {}
        return self

    def _listeners_of(self, method_name):
        """The calls ``notify(method_name)`` makes: hooks that do something.

        The net's own hook (it keeps the history) unless it is one of
        skorch's no-ops, then every callback that overrides the event.
        """
        listeners = self._listeners
        calls = listeners.get(method_name)
        if calls is None:
            base = getattr(Callback, method_name, None)
            calls = []
            own = getattr(self, method_name)
            if (
                method_name not in _NET_NO_OP_HOOKS
                or getattr(own, "__func__", None) is not getattr(NeuralNet, method_name)
            ):
                calls.append(own)
            for _, cb in self.callbacks_:
                if base is None or getattr(type(cb), method_name, None) is not base:
                    calls.append(getattr(cb, method_name))
            listeners[method_name] = calls
        return calls

    def notify(self, method_name, **cb_kwargs):
        if getattr(self, "_listeners", None) is None:
            return super().notify(method_name, **cb_kwargs)
        for call in self._listeners_of(method_name):
            call(self, **cb_kwargs)

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("_listeners", None)  # bound methods: rebuilt after loading
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        self._listeners = {}


def _on_device(tensor, device):
    """``tensor.to(device)`` (skorch's ``to_device``), skipped when it is a no-op."""
    if device is None or tensor.device == _torch_device(device):
        return tensor
    return tensor.to(device)


@functools.lru_cache(maxsize=16)
def _torch_device(device):
    return torch.device(device)


def _n_samples(batch):
    """Samples in a training batch ``(X, y)``: the targets' length (weights aside).

    The targets have one entry per sample whatever form the inputs take
    (MIL batches hold more instance rows than bags); skorch's own count,
    the length of X, is the fallback for batches without targets.
    """
    if isinstance(batch, (tuple, list)) and len(batch) > 1:
        target = batch[1]
        if isinstance(target, (tuple, list)):  # (y, sample_weight)
            target = target[0]
        if isinstance(target, torch.Tensor) and target.ndim > 0:
            return target.shape[0]
    first = batch[0] if isinstance(batch, (tuple, list)) else batch
    return first.shape[0] if isinstance(first, torch.Tensor) else get_len(first)


def _batch_rows(history):
    """The batch records of the current epoch (a list of dicts), or None.

    Only for skorch's plain ``History`` (a list of epoch dicts); other
    histories (the distributed one) go through their own methods.
    """
    if type(history) is not History:
        return None
    return list.__getitem__(history, -1)["batches"]


class _AcceleratedNet(AccelerateMixin, _SkstructNet):
    """``_SkstructNet`` trained through skorch's ``accelerate`` integration."""

    def __init__(self, *args, accelerator, device=None, **kwargs):
        super().__init__(*args, accelerator=accelerator, device=device, **kwargs)

    def initialize(self):
        # AccelerateMixin re-implements initialize without calling ours; the
        # accelerator owns mixed precision, so there is no grad scaler.
        super().initialize()
        self.grad_scaler_ = None
        return self
