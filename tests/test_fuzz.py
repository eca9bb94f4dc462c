"""Property-based fuzzing of every loss and of the structures (fast CI profile).

The checks live in tests/_fuzz.py; benchmarks/fuzz_stress.py runs the same
checks with >= 10,000 examples each.
"""

import pytest

pytest.importorskip("hypothesis", reason="hypothesis is in the test extra")

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from ._fuzz import LOSS_CHECKS, STRUCTURE_CHECKS  # noqa: E402


@pytest.mark.parametrize("name", sorted(LOSS_CHECKS))
def test_loss_fuzz(name):
    """Check that a loss is finite and equals its float64 reference, gradients included."""
    given(st.data())(settings(settings.get_profile("ci"))(LOSS_CHECKS[name]))()


@pytest.mark.parametrize("name", sorted(STRUCTURE_CHECKS))
def test_structure_fuzz(name):
    """Check that random structures round-trip and their distances are metrics."""
    given(st.data())(settings(settings.get_profile("ci"))(STRUCTURE_CHECKS[name]))()
