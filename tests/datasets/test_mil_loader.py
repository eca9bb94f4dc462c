"""load_mil_benchmark and get_data_home: sources, precedence and errors."""

import os
from pathlib import Path

import numpy as np
import pytest

from skstruct.datasets import MIL_BENCHMARKS, get_data_home, load_mil_benchmark

# The project's shared data folder, seen from the repository root.
SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
HAS_SHARED = (SHARED / "mil" / "musk1.npz").is_file()

# (bags, positive bags, instances, features), as documented with the files
EXPECTED = {
    "musk1": (92, 47, 476, 166),
    "musk2": (102, 39, 6598, 166),
    "elephant": (200, 100, 1391, 230),
    "fox": (200, 100, 1320, 230),
    "tiger": (200, 100, 1220, 230),
}


def _write_npz(folder, name, seed, with_masks=True):
    """A tiny data set whose bag_index is not sorted."""
    rng = np.random.RandomState(seed)
    bag_index = np.array([2, 0, 1, 0, 2, 2, 3, 1])
    instances = rng.randn(len(bag_index), 3)
    arrays = dict(instances=instances, bag_index=bag_index, bag_labels=np.array([0, 1, 0, 1]))
    if with_masks:
        arrays["train_masks"] = np.ones((1, 2, 4), dtype=bool)
        arrays["train_masks"][0, 0, :2] = False
        arrays["train_masks"][0, 1, 2:] = False
    (folder / "mil").mkdir(parents=True, exist_ok=True)
    np.savez(folder / "mil" / f"{name}.npz", **arrays)
    return instances, bag_index


def test_get_data_home_precedence(tmp_path, monkeypatch):
    """Check: argument, then SKSTRUCT_DATA, then ~/skstruct_data, whatever the directory."""
    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text('[tool.skstruct]\ndata_home = "../data"\n')
    monkeypatch.chdir(project)
    monkeypatch.delenv("SKSTRUCT_DATA", raising=False)
    assert get_data_home() == os.path.join(os.path.expanduser("~"), "skstruct_data")
    monkeypatch.setenv("SKSTRUCT_DATA", str(tmp_path / "env"))
    assert get_data_home() == str(tmp_path / "env")
    assert get_data_home(tmp_path / "arg") == str(tmp_path / "arg")


def test_load_npz_groups_instances_by_bag(tmp_path):
    """Check that the npz format gives bags in bag_index order, labels and masks."""
    instances, bag_index = _write_npz(tmp_path, "fox", seed=0)
    data = load_mil_benchmark("FOX", data_home=tmp_path)
    assert data.name == "fox" and data.source.endswith("fox.npz")
    assert len(data.data) == 4
    for b, bag in enumerate(data.data):
        np.testing.assert_array_equal(bag, instances[bag_index == b])
    np.testing.assert_array_equal(data.target, [0, 1, 0, 1])
    assert data.train_masks.shape == (1, 2, 4)
    np.testing.assert_array_equal(
        data.structure.plausibility_matrix(), [[True, True], [False, True]]
    )
    bags, y = load_mil_benchmark("fox", data_home=tmp_path, return_X_y=True)
    assert len(bags) == 4 and y.dtype == np.int64


def test_environment_variable_is_used(tmp_path, monkeypatch):
    """Check that SKSTRUCT_DATA points the loader to a folder."""
    _write_npz(tmp_path, "tiger", seed=1, with_masks=False)
    monkeypatch.setenv("SKSTRUCT_DATA", str(tmp_path))
    data = load_mil_benchmark("tiger")
    assert len(data.data) == 4 and data.train_masks is None


def test_missing_data_set_names_the_paths(tmp_path):
    """Check that a missing data set raises an error saying where to put it."""
    with pytest.raises(FileNotFoundError, match="data_home") as info:
        load_mil_benchmark("tiger", data_home=tmp_path)
    assert str(tmp_path / "mil" / "tiger.npz") in str(info.value)


def test_unknown_name():
    """Check that an unknown data set name is refused with the valid names."""
    with pytest.raises(ValueError, match="musk1"):
        load_mil_benchmark("musk3")


@pytest.mark.parametrize("name", MIL_BENCHMARKS)
def test_packaged_files(name, tmp_path, monkeypatch):
    """Check that the five files ship with the package: sizes and valid fold masks.

    Loaded from an unrelated directory, with no data home and no SKSTRUCT_DATA.
    """
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SKSTRUCT_DATA", raising=False)
    data = load_mil_benchmark(name)
    n_bags, n_pos, n_inst, n_feat = EXPECTED[name]
    assert "skstruct" in data.source and data.source.endswith(f"{name}.npz")
    assert len(data.data) == n_bags and data.target.sum() == n_pos
    assert sum(len(b) for b in data.data) == n_inst
    assert {b.shape[1] for b in data.data} == {n_feat}
    masks = data.train_masks
    assert masks.shape == (5, 10, n_bags)
    # Each bag is in exactly one test part per repetition.
    np.testing.assert_array_equal((~masks).sum(axis=1), 1)


def test_licence_notice_ships_with_the_files():
    """Check that the licence notice of the packaged files is installed beside them."""
    from importlib import resources

    notice = resources.files("skstruct.datasets") / "data" / "mil" / "LICENSE.md"
    text = notice.read_text(encoding="utf-8")
    assert "MIT License" in text and "Tomas Komarek" in text and "Alberto Rosas Garcia" in text


def test_environment_variable_without_the_file_falls_back(tmp_path, monkeypatch):
    """Check that SKSTRUCT_DATA without the file falls back to the packaged copy."""
    monkeypatch.setenv("SKSTRUCT_DATA", str(tmp_path))
    data = load_mil_benchmark("musk1")
    assert len(data.data) == 92 and "skstruct" in data.source


@pytest.mark.skipif(not HAS_SHARED, reason=f"shared MIL data not found at {SHARED / 'mil'}")
@pytest.mark.parametrize("name", MIL_BENCHMARKS)
def test_shared_npz_files(name):
    """Check the five shared files: sizes of the README and valid fold masks."""
    data = load_mil_benchmark(name, data_home=SHARED)
    n_bags, n_pos, n_inst, n_feat = EXPECTED[name]
    assert len(data.data) == n_bags and data.target.sum() == n_pos
    assert sum(len(b) for b in data.data) == n_inst
    assert data.data[0].shape[1] == n_feat
    masks = data.train_masks
    assert masks.shape == (5, 10, n_bags)
    # Each bag is in exactly one test part per repetition.
    np.testing.assert_array_equal((~masks).sum(axis=1), 1)


@pytest.mark.skipif(not HAS_SHARED, reason=f"shared MIL data not found at {SHARED / 'mil'}")
@pytest.mark.parametrize("name", MIL_BENCHMARKS)
def test_packaged_and_shared_files_agree(name):
    """Check that the packaged copies equal the shared files, bag for bag."""
    shared = load_mil_benchmark(name, data_home=SHARED)
    packaged = load_mil_benchmark(name)
    np.testing.assert_array_equal(shared.target, packaged.target)
    np.testing.assert_array_equal(shared.train_masks, packaged.train_masks)
    for a, b in zip(shared.data, packaged.data):
        np.testing.assert_array_equal(a, b)
