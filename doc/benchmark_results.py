"""Sphinx directive ``.. benchmark-results::``: tables from committed JSON files.

Every ``benchmarks/results_committed/*.json`` written by a script of the
repository (``python -m skstruct reproduce mil --output ...``,
``benchmarks/bench_mil.py --output ...``, ``benchmarks/bench_average_k.py
--out ...``) becomes a section with the command-line arguments it was run
with and a table of the per-data-set means of every numeric per-fold field.
Nothing is typed by hand: the numbers are read at build time.
"""

import json
from collections import defaultdict
from pathlib import Path

import numpy as np
from docutils import nodes
from docutils.statemachine import StringList
from sphinx.util.docutils import SphinxDirective

RESULTS = Path(__file__).resolve().parent.parent / "benchmarks" / "results_committed"


def _rows(data):
    """Per-fold (or per-run) records of a results file, as a list of dicts."""
    if isinstance(data, dict):
        for key in ("folds", "rows", "results"):
            if isinstance(data.get(key), list):
                return data[key]
        return []
    return data if isinstance(data, list) else []


def _table(records):
    """Group records by their name/data set field and average numeric fields."""
    group_key = next((k for k in ("name", "dataset", "data") if k in records[0]), None)
    groups = defaultdict(list)
    for rec in records:
        groups[rec.get(group_key, "all") if group_key else "all"].append(rec)
    numeric = [k for k, v in records[0].items()
               if isinstance(v, (int, float)) and not isinstance(v, bool) and k != group_key
               and k not in ("rep", "fold", "seed")]
    header = [group_key or "group", "n"] + numeric
    lines = []
    for name, recs in groups.items():
        cells = [str(name), str(len(recs))]
        for k in numeric:
            vals = [r[k] for r in recs if isinstance(r.get(k), (int, float))]
            cells.append(f"{np.mean(vals):.4g} ± {np.std(vals):.2g}" if vals else "")
        lines.append(cells)
    return header, lines


def _summary_table(summary):
    """A ``{data set: {"folds_done", "accuracy": {model: %}}}`` summary (bench_mil_vote) as a table."""
    entries = [(name, e) for name, e in summary.items()
               if isinstance(e, dict) and isinstance(e.get("accuracy"), dict)]
    if not entries:
        return None
    models = list(entries[0][1]["accuracy"])
    header = ["data set", "folds"] + models
    lines = [[name, str(e.get("folds_done", ""))]
             + [f"{e['accuracy'][m]:.1f}" if m in e["accuracy"] else "" for m in models]
             for name, e in entries]
    return header, lines


def _list_table(header, lines):
    out = [".. list-table::", "   :header-rows: 1", ""]
    for row in [header] + lines:
        out.append("   * - " + row[0])
        out.extend(f"     - {c}" for c in row[1:])
    return out


class BenchmarkResults(SphinxDirective):
    """Render every committed results file (mean ± std over folds per data set)."""

    def run(self):
        files = sorted(RESULTS.glob("*.json"))
        text = []
        if not files:
            text += ["No benchmark has a committed results file yet "
                     "(``benchmarks/results_committed/*.json``)."]
        for path in files:
            self.env.note_dependency(str(path))
            data = json.loads(path.read_text())
            records = _rows(data)
            title = path.stem
            text += [f".. rubric:: {title}", "",
                     f"File ``benchmarks/results_committed/{path.name}``."]
            args = data.get("args") if isinstance(data, dict) else None
            if args:
                shown = ", ".join(f"``{k}={v}``" for k, v in args.items()
                                  if k not in ("output", "out", "quiet"))
                text += ["", f"Arguments: {shown}."]
            for key in ("wall_seconds", "total_wall"):
                if isinstance(data, dict) and key in data:
                    text += ["", f"Total wall time: {data[key]:.0f} s."]
            text.append("")
            summary = data.get("summary") if isinstance(data, dict) else None
            summary_table = _summary_table(summary) if isinstance(summary, dict) else None
            if records:
                header, lines = _table(records)
                text += ["Mean ± standard deviation over the records of each group:", ""]
                text += _list_table(header, lines)
            elif summary_table:
                text += ["Accuracy (%) of every model and combination, mean over the folds "
                         "finished by all:", ""]
                text += _list_table(*summary_table)
            else:
                text.append("(no per-fold records in this file)")
            text.append("")
        container = nodes.container()
        container.document = self.state.document
        self.state.nested_parse(StringList(text), self.content_offset, container)
        return container.children


def setup(app):
    app.add_directive("benchmark-results", BenchmarkResults)
    return {"parallel_read_safe": True, "version": "1"}
