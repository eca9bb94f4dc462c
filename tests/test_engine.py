"""The training engine's contract, checked against doc/architecture.md."""

import inspect
import re
from pathlib import Path

import pytest

from skstruct._base import _BaseStructuredClassifier
from skstruct.utils.discovery import all_estimators

DOC = Path(__file__).resolve().parents[1] / "doc" / "architecture.md"


def _doc():
    if not DOC.exists():
        pytest.skip(f"{DOC} is not part of this installation")
    return DOC.read_text()


def _hook_table(text):
    start = text.index("| hook | default | purpose |")
    rows = []
    for line in text[start:].splitlines()[2:]:
        if not line.startswith("|"):
            break
        rows.append(re.match(r"\| `(_\w+)\(", line).group(1))
    return rows


def _fit_steps(text):
    section = text[text.index("### Training engine"):]
    section = section[: section.index("Sample weights travel")]
    return re.findall(r"^\s*\d+\. `(_\w+)`", section, flags=re.M)


def test_hook_table_matches_the_code():
    """Check every documented hook exists and every overridden base method is documented."""
    hooks = _hook_table(_doc())
    assert len(hooks) == len(set(hooks)) > 10
    missing = [h for h in hooks if not callable(getattr(_BaseStructuredClassifier, h, None))]
    assert not missing, f"documented hooks that the base lacks: {missing}"
    base = {n for n in vars(_BaseStructuredClassifier) if n.startswith("_") and not n.startswith("__")}
    undocumented = {}
    for name, cls in all_estimators():
        for klass in cls.__mro__:
            if klass is _BaseStructuredClassifier or not issubclass(klass, _BaseStructuredClassifier):
                continue
            overridden = {
                n for n, v in vars(klass).items()
                if n in base and callable(v) and not n.startswith("__")
            }
            extra = sorted(overridden - set(hooks))
            if extra:
                undocumented[name] = extra
    assert not undocumented, f"base methods overridden but not in the hook table: {undocumented}"


def test_fit_steps_are_documented_and_run_in_order():
    """Check the documented order of _fit's steps against _FIT_STEPS and _fit's source."""
    steps = _fit_steps(_doc())
    assert tuple(steps) == _BaseStructuredClassifier._FIT_STEPS
    source = inspect.getsource(_BaseStructuredClassifier._fit)
    positions = []
    for step in steps:
        assert callable(getattr(_BaseStructuredClassifier, step)), step
        match = re.search(rf"self\.{step}\(", source)
        assert match, f"_fit does not call {step}"
        positions.append(match.start())
    assert positions == sorted(positions), "_fit calls its steps out of the documented order"
