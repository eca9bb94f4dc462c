"""The skorch network every skstruct estimator builds in ``fit``.

``_SkstructNet`` is skorch's :class:`~skorch.NeuralNet` with three changes,
all inside one training step and none touching the epoch loop:

* mixed precision: the forward pass runs under :func:`torch.autocast`
  (``'bf16'`` or ``'fp16'``) and its output is cast back to float32, so every
  loss is computed in float32; ``'fp16'`` scales the loss with a
  :class:`torch.amp.GradScaler` and unscales the gradients before the
  ``on_grad_computed`` callbacks (gradient clipping, L1) see them;
* ``_set_training`` walks the module tree only when a top-level train/eval
  flag differs (skorch walks it on every batch);
* ``notify`` calls only the callbacks that override the event (skorch calls
  every callback's no-op for every batch event);
* Adam, AdamW and SGD step without a closure (one closure evaluation
  either way), and the batch records go straight into the current epoch's
  dict of a plain ``History``;
* per-batch fast paths measured with cProfile on a 50-128-10 MLP at batch
  64 (``benchmarks/bench_training.py``): ``evaluation_step`` checks
  ``initialized_`` instead of running skorch's attribute-walking
  ``check_is_fitted`` on every batch, fp32 reuses one null context instead
  of building a ``torch.device`` per batch, and a float32 output is returned
  as is without walking containers.

The estimators compose this net (``net_``); users never subclass it.
"""

import contextlib

import torch
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


class _SkstructNet(NeuralNet):
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
        self.notify(
            "on_grad_computed",
            named_parameters=TeeGenerator(self.get_all_learnable_params()),
            batch=batch,
            training=True,
        )
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
            first = batch[0] if isinstance(batch, (tuple, list)) else batch
            size = first.shape[0] if isinstance(first, torch.Tensor) else get_len(first)
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

    def notify(self, method_name, **cb_kwargs):
        listeners = getattr(self, "_listeners", None)
        if listeners is None:
            return super().notify(method_name, **cb_kwargs)
        if method_name not in listeners:
            base = getattr(Callback, method_name, None)
            calls = [getattr(self, method_name)]  # the net's own hooks keep the history
            for _, cb in self.callbacks_:
                if base is None or getattr(type(cb), method_name, None) is not base:
                    calls.append(getattr(cb, method_name))
            listeners[method_name] = calls
        for call in listeners[method_name]:
            call(self, **cb_kwargs)

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("_listeners", None)  # bound methods: rebuilt after loading
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        self._listeners = {}


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
