"""The private skorch and sklearn names skstruct relies on, against the installed versions.

skstruct reaches private API only through ``skstruct/utils/_skorch_compat.py``
and ``skstruct/utils/_sklearn_compat.py``. Each test here checks one name's
existence, signature and behaviour, and fails with a message naming it and
the installed version, so an upgrade that changes one says what to fix.
"""

import inspect
import pathlib
import re

import numpy as np
import pytest
import sklearn
import skorch
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from skorch import NeuralNet
from skorch.callbacks import Callback, EarlyStopping
from torch import nn

import skstruct
from skstruct.utils import _sklearn_compat, _skorch_compat


def _fail(library, name, problem):
    version = {"skorch": skorch.__version__, "sklearn": sklearn.__version__}[library]
    module = "_skorch_compat" if library == "skorch" else "_sklearn_compat"
    pytest.fail(
        f"{library} {version}: {name} {problem}. skstruct relies on it; update "
        f"skstruct/utils/{module}.py (and this test) for this {library} version."
    )


def _check_params(library, name, func, expected):
    try:
        params = list(inspect.signature(func).parameters)
    except (TypeError, ValueError) as exc:  # pragma: no cover - only on a broken version
        _fail(library, name, f"has no inspectable signature ({exc})")
    missing = [p for p in expected if p not in params]
    if missing:
        _fail(library, name, f"lost the parameters {missing} (has {params})")


def _tiny_net(**kwargs):
    X = np.random.RandomState(0).randn(16, 3).astype(np.float32)
    y = np.arange(16) % 2
    net = NeuralNet(
        nn.Linear(3, 2), nn.CrossEntropyLoss, max_epochs=2, batch_size=8,
        train_split=None, verbose=0, **kwargs,
    )
    return net, X, y


# -------------------------------------------------------------------- skorch


def test_skorch_attribute_lists_after_initialize():
    """Check _optimizers, _modules, _criteria and initialized_ (filled by initialize)."""
    net, _, _ = _tiny_net()
    if _skorch_compat.is_initialized(net):
        _fail("skorch", "initialized_", "is True before initialize()")
    net.initialize()
    for name, expected in (("_optimizers", "optimizer"), ("_modules", "module"), ("_criteria", "criterion")):
        names = getattr(net, name, None)
        if not isinstance(names, list) or expected not in names:
            _fail("skorch", f"NeuralNet.{name}", f"is {names!r}, not a list holding {expected!r}")
    if not _skorch_compat.is_initialized(net):
        _fail("skorch", "initialized_", "is not True after initialize()")
    if _skorch_compat.optimizers(net) != [net.optimizer_]:
        _fail("skorch", "NeuralNet._optimizers", "does not name optimizer_")
    modules = _skorch_compat.training_modules(net)
    if modules[0] is not net.module_ or modules[-1] is not net.criterion_:
        _fail("skorch", "NeuralNet._modules/_criteria", "do not name module_ and criterion_")


def test_skorch_zero_grad_optimizer():
    """Check that _zero_grad_optimizer clears every optimizer's gradients."""
    net, X, _ = _tiny_net()
    net.initialize()
    _check_params("skorch", "NeuralNet._zero_grad_optimizer", net._zero_grad_optimizer, ["set_to_none"])
    net.module_(torch.as_tensor(X)).sum().backward()
    _skorch_compat.zero_grad_optimizers(net)
    grads = [p.grad for p in net.module_.parameters()]
    if not all(g is None or not g.any() for g in grads):
        _fail("skorch", "NeuralNet._zero_grad_optimizer", "left gradients non-zero")


def test_skorch_set_training_is_the_per_batch_hook():
    """Check _set_training(training) sets train/eval and is what train_step/evaluation_step call."""
    net, X, y = _tiny_net()
    _check_params("skorch", "NeuralNet._set_training", NeuralNet._set_training, ["training"])
    calls = []

    class Spy(NeuralNet):
        def _set_training(self, training=True):
            calls.append(training)
            super()._set_training(training)

    spy = Spy(nn.Linear(3, 2), nn.CrossEntropyLoss, max_epochs=1, batch_size=8,
              train_split=None, verbose=0)
    spy.fit(X, y)
    spy.predict_proba(X)
    if True not in calls or False not in calls:
        _fail("skorch", "NeuralNet._set_training", f"is no longer called per batch (calls: {calls})")
    net.initialize()
    _skorch_compat.set_training_all(net, False)
    if net.module_.training or net.criterion_.training:
        _fail("skorch", "NeuralNet._set_training", "did not put module_ and criterion_ in eval mode")


def test_skorch_fit_loop_and_interrupts():
    """Check fit_loop(X, y, epochs) and that partial_fit swallows a KeyboardInterrupt."""
    _check_params("skorch", "NeuralNet.fit_loop", NeuralNet.fit_loop, ["X", "y", "epochs"])

    class Stop(Callback):
        def on_epoch_end(self, net, **kwargs):
            raise KeyboardInterrupt

    net, X, y = _tiny_net(callbacks=[Stop()])
    ended = []
    net.on_train_end = lambda *args, **kwargs: ended.append(True)
    try:
        net.fit(X, y)
    except KeyboardInterrupt:
        _fail("skorch", "NeuralNet.partial_fit", "no longer catches KeyboardInterrupt")
    if len(net.history) != 1 or not ended:
        _fail("skorch", "NeuralNet.partial_fit", "did not stop after the interrupt and end training")
    es = EarlyStopping(patience=3)
    if getattr(es, "patience", None) != 3:
        _fail("skorch", "EarlyStopping.patience", "is missing")
    es.initialize()
    es.on_train_begin(net)
    if not hasattr(es, "misses_"):
        _fail("skorch", "EarlyStopping.misses_", "is missing after on_train_begin")
    source = inspect.getsource(EarlyStopping.on_epoch_end)
    if "KeyboardInterrupt" not in source:
        _fail("skorch", "EarlyStopping.on_epoch_end", "no longer stops by raising KeyboardInterrupt")


def test_skorch_notify_and_callbacks():
    """Check notify(method_name, **kwargs), initialize_callbacks and callbacks_ pairs."""
    _check_params("skorch", "NeuralNet.notify", NeuralNet.notify, ["method_name"])
    net, _, _ = _tiny_net()
    net.initialize()
    if not all(isinstance(pair, tuple) and len(pair) == 2 for pair in net.callbacks_):
        _fail("skorch", "NeuralNet.callbacks_", "is no longer a list of (name, callback) pairs")
    for hook in ("on_batch_end", "on_epoch_end", "on_grad_computed", "on_train_begin"):
        if not callable(getattr(Callback, hook, None)):
            _fail("skorch", f"Callback.{hook}", "is missing")


def test_skorch_helpers():
    """Check unpack_data and TeeGenerator."""
    Xi, yi = _skorch_compat.unpack_data((torch.zeros(2, 3), torch.ones(2)))
    if Xi.shape != (2, 3) or yi.shape != (2,):
        _fail("skorch", "skorch.dataset.unpack_data", "no longer splits a batch into (X, y)")
    tee = _skorch_compat.TeeGenerator(iter([1, 2, 3]))
    if list(tee) != [1, 2, 3] or list(tee) != [1, 2, 3]:
        _fail("skorch", "skorch.utils.TeeGenerator", "cannot be iterated twice")


# ------------------------------------------------------------------- sklearn


def test_sklearn_fit_context_and_param_validation():
    """Check _fit_context and the constraint classes of sklearn.utils._param_validation."""
    _check_params("sklearn", "sklearn.base._fit_context", _sklearn_compat._fit_context,
                  ["prefer_skip_nested_validation"])
    err = _sklearn_compat.InvalidParameterError
    if not (issubclass(err, ValueError) and issubclass(err, TypeError)):
        _fail("sklearn", "InvalidParameterError", "is no longer both a ValueError and a TypeError")
    from numbers import Real

    constraint = _sklearn_compat.Interval(Real, 0, 1, closed="left")
    if not (constraint.is_satisfied_by(0.0) and not constraint.is_satisfied_by(1.0)):
        _fail("sklearn", "Interval", "changed its closed='left' meaning")
    if not _sklearn_compat.StrOptions({"a"}).is_satisfied_by("a"):
        _fail("sklearn", "StrOptions", "no longer accepts its options")
    if not _sklearn_compat.HasMethods(["fit"]).is_satisfied_by(StandardScaler()):
        _fail("sklearn", "HasMethods", "no longer checks methods")
    for name in ("Hidden", "Options", "validate_params", "validate_data"):
        if not callable(getattr(_sklearn_compat, name, None)):
            _fail("sklearn", name, "is missing")
    _check_params("sklearn", "validate_data", _sklearn_compat.validate_data,
                  ["_estimator", "X", "y", "reset"])


def test_sklearn_scorer_internals():
    """Check _Scorer(score_func, sign, kwargs, response_method), its fields and _score."""
    _Scorer = _sklearn_compat._Scorer
    _check_params("sklearn", "_Scorer.__init__", _Scorer.__init__,
                  ["score_func", "sign", "kwargs", "response_method"])
    _check_params("sklearn", "_Scorer._score", _Scorer._score,
                  ["method_caller", "estimator", "X", "y_true"])

    def metric(y_true, y_pred, *, scale=1.0):
        return scale * float(np.mean(y_true == y_pred))

    scorer = _Scorer(metric, -1, {"scale": 2.0}, "predict")
    fields = _sklearn_compat.scorer_fields(scorer)
    if fields != (metric, -1, {"scale": 2.0}, "predict"):
        _fail("sklearn", "_Scorer._score_func/_sign/_kwargs/_response_method", f"read back {fields}")

    class Const(ClassifierMixin, BaseEstimator):
        classes_ = np.array([0, 1])

        def predict(self, X):
            return np.zeros(len(X), dtype=int)

    if scorer(Const(), np.zeros((4, 1)), np.array([0, 0, 1, 1])) != -1.0:
        _fail("sklearn", "_Scorer.__call__", "no longer applies sign * score_func")
    # skstruct's subclass goes through the same path
    from skstruct.metrics import make_structure_scorer

    structured = make_structure_scorer(metric, structure_kwarg=None, scale=3.0)
    if structured(Const(), np.zeros((4, 1)), np.array([0, 0, 1, 1])) != 1.5:
        _fail("sklearn", "_Scorer._score", "is no longer what _Scorer.__call__ calls")


def test_sklearn_pipeline_internals():
    """Check Pipeline._iter(with_final, filter_passthrough) and _final_estimator."""
    _check_params("sklearn", "Pipeline._iter", Pipeline._iter, ["with_final", "filter_passthrough"])
    X = np.random.RandomState(0).randn(10, 2)
    pipe = Pipeline([("scale", StandardScaler()), ("skip", "passthrough"), ("last", StandardScaler())])
    pipe.fit(X)
    steps = _sklearn_compat.pipeline_transformers(pipe)
    if len(steps) != 1 or steps[0] is not pipe.named_steps["scale"]:
        _fail("sklearn", "Pipeline._iter", f"gave {steps} for (scale, passthrough, last)")
    if _sklearn_compat.final_estimator(pipe) is not pipe.named_steps["last"]:
        _fail("sklearn", "Pipeline._final_estimator", "is not the last step")


# --------------------------------------------------------------------- gates


_PRIVATE = {
    "skorch": re.compile(
        r"\._zero_grad_optimizer\b|\._optimizers\b|\._criteria\b|\.initialized_\b|"
        r"from skorch\.dataset import unpack_data|import TeeGenerator|\._modules\b"
    ),
    "sklearn": re.compile(
        r"from sklearn[.\w]*\._\w+ import|from sklearn\.base import _|\._iter\(|"
        r"\._final_estimator\b|\._score_func\b|\._response_method\b"
    ),
}
_GATES = {"skorch": "_skorch_compat.py", "sklearn": "_sklearn_compat.py"}
_SKIP = {"_skorch_compat.py", "_sklearn_compat.py"}


@pytest.mark.parametrize("library", sorted(_PRIVATE))
def test_private_names_only_in_the_compat_module(library):
    """Check that no other skstruct module uses the private names directly."""
    root = pathlib.Path(skstruct.__file__).parent
    offenders = []
    for path in sorted(root.rglob("*.py")):
        if path.name in _SKIP:
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if _PRIVATE[library].search(line) and not line.lstrip().startswith("#"):
                offenders.append(f"{path.relative_to(root)}:{number}: {line.strip()}")
    assert not offenders, (
        f"private {library} names outside skstruct/utils/{_GATES[library]}:\n"
        + "\n".join(offenders)
    )


def test_skorch_overridden_training_methods():
    """Check the skorch methods ``_SkstructNet`` overrides for speed keep their signatures.

    ``_step_optimizer(step_fn)`` (stepped without skorch's closure for Adam,
    AdamW and SGD) and ``run_single_epoch(iterator, training, prefix,
    step_fn, **fit_params)`` (batch records written straight into the
    history) replace skorch's own; a new signature means the overrides no
    longer match what ``fit_loop`` calls.
    """
    _check_params("skorch", "NeuralNet._step_optimizer", NeuralNet._step_optimizer, ["step_fn"])
    _check_params(
        "skorch", "NeuralNet.run_single_epoch", NeuralNet.run_single_epoch,
        ["iterator", "training", "prefix", "step_fn"],
    )
    source = inspect.getsource(NeuralNet.fit_loop)
    for call in ("run_single_epoch", "on_epoch_begin", "on_epoch_end"):
        if call not in source:
            _fail("skorch", "NeuralNet.fit_loop", f"no longer calls {call}")


def test_skorch_no_op_hooks_are_still_no_ops():
    """Check NeuralNet's own hooks that ``_SkstructNet.notify`` skips do nothing.

    ``notify`` leaves out the net's ``on_batch_end``, ``on_grad_computed``,
    ``on_epoch_end``, ``on_train_begin`` and ``on_train_end`` (their body is
    ``pass`` in skorch); a skorch that gives one a body needs it back.
    """
    import ast
    import textwrap

    from skstruct._net import _NET_NO_OP_HOOKS

    for hook in sorted(_NET_NO_OP_HOOKS):
        tree = ast.parse(textwrap.dedent(inspect.getsource(getattr(NeuralNet, hook))))
        body = tree.body[0].body
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
            body = body[1:]  # the docstring
        if not all(isinstance(node, ast.Pass) for node in body):
            _fail("skorch", f"NeuralNet.{hook}", "is no longer a no-op")
