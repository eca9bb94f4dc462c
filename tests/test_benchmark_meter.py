"""The peak-memory meter of benchmarks/bench_losses.py counts what a block allocates."""

import importlib.util
import os

import pytest
import torch

BENCH = os.path.join(os.path.dirname(__file__), os.pardir, "benchmarks", "bench_losses.py")


@pytest.fixture(scope="module")
def PeakMemory():
    if not os.path.exists(BENCH):
        pytest.skip("benchmarks/bench_losses.py is not in this checkout")
    spec = importlib.util.spec_from_file_location("bench_losses", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.PeakMemory


def test_fresh_tensors_count_views_and_in_place_results_do_not(PeakMemory):
    """Check new storages count once; views, in-place and out= results of inputs do not."""
    outside = torch.ones(100, 10)  # made before the block, as a prepared structure is
    meter = PeakMemory()
    with meter:
        view = outside.T  # a view of an outside tensor: nothing allocated
        view.mul_(2.0)  # in place: nothing allocated
        fresh = view.contiguous()  # 4,000 bytes
        torch.exp(fresh, out=fresh)  # out= into a tracked tensor: nothing new
        del fresh
        second = torch.zeros(50, 10)  # 2,000 bytes, after the first was freed
    assert meter.peak == 4000
    assert meter.live == 2000
    del second, view


def test_peak_is_the_largest_live_total(PeakMemory):
    """Check that tensors alive together add up."""
    meter = PeakMemory()
    with meter:
        a = torch.zeros(100)  # 400 bytes
        b = torch.zeros(200)  # 800 bytes
        del a
        c = torch.zeros(50)  # 200 bytes
    assert meter.peak == 1200
    del b, c
