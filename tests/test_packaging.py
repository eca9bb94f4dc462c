"""Package metadata: one version everywhere, the console script, py.typed."""

import shutil
import subprocess
import sys
from importlib import metadata, resources

import pytest

import skstruct


def test_installed_metadata_reads_the_version_from_the_package():
    """Check that the distribution's version is skstruct.__version__ (written once)."""
    assert metadata.version("skstruct") == skstruct.__version__


def test_module_version_flag():
    """Check that ``python -m skstruct --version`` prints the version and exits 0."""
    out = subprocess.run(
        [sys.executable, "-m", "skstruct", "--version"], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == f"skstruct {skstruct.__version__}"


def test_console_script_version_flag():
    """Check that the ``skstruct`` console script is installed and prints the version."""
    exe = shutil.which("skstruct", path=str(__import__("pathlib").Path(sys.executable).parent))
    if exe is None:
        pytest.skip("the skstruct console script is not installed (pip install -e .)")
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"skstruct {skstruct.__version__}"


def test_entry_point_is_the_cli_main():
    """Check that the console-script entry point resolves to skstruct._cli.main."""
    from skstruct._cli import main

    (ep,) = [e for e in metadata.entry_points(group="console_scripts") if e.name == "skstruct"]
    assert ep.load() is main


def test_py_typed_marker_ships():
    """Check that the PEP 561 marker is part of the package."""
    assert resources.files("skstruct").joinpath("py.typed").is_file()
