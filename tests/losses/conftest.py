"""Every loss test runs twice: on the fused CPU kernels (numba) and on the eager torch path.

The two paths must give the same values and gradients to rounding; running
the whole loss suite on both keeps every eager branch (the only path on
other devices and without numba) covered on a machine that has numba.
"""

import pytest

from skstruct.losses._numba import eager_only, numba_available


@pytest.fixture(autouse=True, params=["fused", "eager"])
def loss_path(request):
    """Run the test on one of the two CPU paths of the losses."""
    if request.param == "eager":
        with eager_only():
            yield "eager"
        return
    if not numba_available():
        pytest.skip(
            "numba is not installed (or SKSTRUCT_NUMBA=0): the fused CPU kernels are "
            "off; pip install 'skstruct[fast]' to test them"
        )
    yield "fused"

