"""The files of ``python -m src.report``: the figures, report.md and report.json of a set of runs,
and (``--sweep``) the sweep statistics of src/analysis/sweep.py."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from src.reporting.figures import METRICS, category_figure_names, plot_categories, plot_combined, plot_curves
from src.reporting.runs import ReportError
from src.reporting.tables import render_markdown
from src.utils.config import PROJECT_ROOT


def default_out_dir() -> Path:
    return PROJECT_ROOT / "outputs" / "reports" / dt.datetime.now().strftime("%Y-%m-%d_%H-%M-%S")


def write_report(runs: list[dict], out_dir: Path, title: str, inputs: list[str], failed: list[str]) -> dict:
    """Write the figures, report.md and report.json to ``out_dir``; returns report.json's data."""
    out_dir.mkdir(parents=True, exist_ok=True)
    figures: dict[str, str | None] = {}
    for metric in METRICS:
        written = plot_curves(runs, metric, out_dir / f"{metric}_vs_frame.png", title)
        figures[metric] = written.name if written else None
    figures["combined"] = plot_combined(runs, out_dir / "figure.png", title).name
    category_figures = category_figure_names(runs)
    for run in runs:
        if run["label"] in category_figures:
            path = out_dir / category_figures[run["label"]]
            figures[f"categories {run['label']}"] = plot_categories(run, path, title).name
    notes = []
    if figures["lpips"] is None:
        notes.append("LPIPS is null in every run: no lpips_vs_frame.png")
    else:
        missing = [run["label"] for run in runs if run["lpips"] is None]
        if missing:
            notes.append("left out of the LPIPS plot (null LPIPS): " + ", ".join(missing))
    frame_counts = sorted({len(run["frames"]) for run in runs})
    if len(frame_counts) > 1:
        notes.append(f"runs have different frame counts: {frame_counts}")
    notes += [f"failed sweep job (FAILED.txt, no metrics): {job}" for job in failed]
    report = {
        "title": title,
        "created": dt.datetime.now().isoformat(timespec="seconds"),
        "inputs": inputs,
        "figures": figures,
        "notes": notes,
        "failed_jobs": failed,
        "runs": runs,
    }
    (out_dir / "report.md").write_text(render_markdown(runs, figures, title, notes, inputs))
    (out_dir / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def write_sweep_report(
    paths: list[str],
    factor: str,
    reference: str | None = None,
    panels: str = "task",
    out_dir: Path | None = None,
    title: str | None = None,
) -> tuple[Path, int]:
    """``--sweep FACTOR``: the sweep statistics of ``src.analysis.sweep`` for each path (compared
    against the level ``reference``, default the first; one row of panels per value of the
    override ``panels``), in ``out_dir`` (default outputs/reports/<date_time>). Returns the folder
    and the number of jobs."""
    from src.analysis.sweep import (
        SweepError,
        collect_records,
        parse_value,
        plot_figure,
        render_markdown,
        summarize,
    )

    try:
        records = [r for path in paths for r in collect_records(path)]
        reference = None if reference is None else parse_value(reference)
        summary = summarize(records, factor, reference)
    except SweepError as err:
        raise ReportError(str(err)) from err
    out_dir = out_dir or default_out_dir()
    out_dir.mkdir(parents=True, exist_ok=True)
    title = title or f"{len(records)} job(s): {factor}"
    (out_dir / "sweep_stats.json").write_text(json.dumps(summary, indent=1))
    (out_dir / "sweep_stats.md").write_text(render_markdown(summary, title))
    plot_figure(summary, out_dir / "sweep_figure.png", panels, title)
    return out_dir, len(records)
