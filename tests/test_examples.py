"""Execute every gallery example (``examples/plot_*.py``), as sphinx-gallery does.

They take minutes, so they run only with ``SKSTRUCT_RUN_EXAMPLES=1`` (the
docs step of ``.ci/run`` sets it); each must finish within two minutes on 2
cores. ``plot_hierarchical_fashion.py`` needs the Debian package
``dataset-fashion-mnist`` and is not part of the gallery.
"""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
NEEDS = {  # example -> import names of the doc extra it needs
    "plot_average_k_sets.py": ["matplotlib"],
    "plot_digits_cnn_hierarchy.py": ["matplotlib"],
    "plot_hierarchy_from_data.py": ["matplotlib"],
    "plot_ordinal_ratings.py": ["matplotlib", "skordinal"],
    "plot_mil_attention.py": ["matplotlib"],  # MUSK1 ships in skstruct/datasets/data
    "plot_structured_label_noise.py": ["matplotlib"],
}
GALLERY = sorted(p.name for p in EXAMPLES.glob("plot_*.py") if p.name != "plot_hierarchical_fashion.py")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.environ.get("SKSTRUCT_RUN_EXAMPLES") != "1",
                       reason="set SKSTRUCT_RUN_EXAMPLES=1 to execute the gallery examples"),
]


def test_every_gallery_example_is_listed():
    """Check that a new example gets its requirements declared here."""
    assert sorted(NEEDS) == GALLERY


@pytest.mark.parametrize("name", GALLERY)
def test_example_runs(name, tmp_path):
    """Check that the example runs to the end and writes its figure."""
    missing = [m for m in NEEDS.get(name, []) if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"{name} needs {missing}: pip install -e '.[doc]'")
    figure = tmp_path / "figure.png"
    env = {**os.environ, "MPLBACKEND": "Agg"}
    out = subprocess.run([sys.executable, str(EXAMPLES / name), "--out", str(figure)],
                         capture_output=True, text=True, env=env, timeout=600, cwd=tmp_path)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-4000:]
    assert figure.stat().st_size > 0
