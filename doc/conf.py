"""Sphinx configuration of the skstruct documentation (``make -C doc html``)."""

import os
import sys
from pathlib import Path

import skstruct

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # for the benchmark-results extension

project = "skstruct"
author = "The skstruct developers"
copyright = "2026, the skstruct developers"
version = release = skstruct.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "myst_parser",
    "benchmark_results",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
templates_path = ["_templates"]
exclude_patterns = ["_build", "auto_examples/*.ipynb", "auto_examples/*.py",
                    "auto_examples/*.zip", "auto_examples/*.md5", "auto_examples/*.json",
                    "**/sg_execution_times.rst"]
myst_heading_anchors = 3
suppress_warnings = ["myst.xref_missing"]

autosummary_generate = True
autodoc_default_options = {"members": True, "inherited-members": False}
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

# No intersphinx: the docs must build warning-free on an offline machine.

html_theme = "pydata_sphinx_theme"
html_title = f"skstruct {release}"
html_theme_options = {
    "navbar_end": ["navbar-icon-links"],
    "show_toc_level": 2,
    "navigation_with_keys": False,
}
html_static_path = []

# The gallery: examples/plot_*.py are executed (SKSTRUCT_DOC_NOPLOT=1 or
# `make html-noplot` skips the execution; tests/test_examples.py runs them).
sphinx_gallery_conf = {
    "examples_dirs": str(HERE.parent / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "ignore_pattern": r"(accelerate_data_parallel|plot_hierarchical_fashion)\.py",
    "plot_gallery": "False" if os.environ.get("SKSTRUCT_DOC_NOPLOT") else "True",
    "download_all_examples": False,
    "within_subsection_order": "FileNameSortKey",
    "matplotlib_animations": False,
    "abort_on_example_error": True,
    "only_warn_on_example_error": False,
}


def _skip_metadata_request_methods(app, what, name, obj, skip, options):
    """Hide sklearn's generated ``set_*_request`` methods (metadata routing)."""
    if name.startswith("set_") and name.endswith("_request"):
        return True
    return skip


def setup(app):
    app.connect("autodoc-skip-member", _skip_metadata_request_methods)
