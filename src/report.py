"""Compare training runs: metric-vs-frame curves and a table from their ``frame_metrics.json``.

```bash
python -m src.report outputs/runs/train/2025-01-01_12-00-00 outputs/multiruns/train/2025-01-02_09-00-00
python -m src.report <dirs...> --out outputs/reports/prompt_sweep --title "uniform vs adaptive"
```

Each argument is a run directory (it holds ``frame_metrics.json``), a sweep / multirun directory
(searched recursively), or a ``frame_metrics.json`` itself. Writes to ``--out`` (default
``outputs/reports/<date_time>/``): ``psnr_vs_frame.png``, ``ssim_vs_frame.png``,
``lpips_vs_frame.png`` (only when some run has LPIPS), ``figure.png`` (the three side by side),
``report.md`` (one table row per run) and ``report.json`` (everything collected). A run whose
metrics have ``categories`` (all-in-one restoration, see ``src/metrics/frame_metrics.py``) also
gets a per-category table in ``report.md`` and a bar chart ``categories_<run label>.png`` (input,
baseline, stage 1 last frame, stage 1 + drift; PSNR and SSIM). With
``WANDB_MODE=online`` or ``--wandb`` the figures and table are also logged to a W&B run; otherwise
W&B is never touched. Errors (a missing path, no metrics found, a malformed file) are one line on
stderr and exit code 2.

With ``--sweep FACTOR`` (e.g. ``--sweep prompt``) the paths are sweep directories whose jobs
were evaluated by ``src.eval`` (or ``make bench-paper``'s committed job records): writes
``sweep_stats.md``, ``sweep_stats.json`` and ``sweep_figure.png`` (per-frame means with bootstrap
intervals over images x seeds, paired tests between the levels of FACTOR; see
``src/analysis/sweep.py``), the same table and figure as ``make bench-paper``, offline.

Conventions: frames are numbered 1..T (frame 1 is the degraded condition, frame T the last
generated frame); PSNR in dB, SSIM and LPIPS unitless, all against the clean target, averaged
over the run's ``n_images`` validation images; a run's "mean f2-fT" leaves out frame 1.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import re
import sys
from pathlib import Path

from src.analysis.figures import new_figure as _new_figure
from src.metrics.frame_metrics import FILE_NAME as METRICS_FILE
from src.metrics.frame_metrics import read as read_frame_metrics
from src.metrics.frame_metrics import summarize_categories
from src.utils.cli import ArgumentParser, ConfigError, UserError, report_user_error
from src.utils.config import PROJECT_ROOT

METRICS = ("psnr", "ssim", "lpips")
AXIS_LABELS = {"psnr": "PSNR (dB)", "ssim": "SSIM", "lpips": "LPIPS (lower is better)"}
TITLES = {"psnr": "PSNR vs frame", "ssim": "SSIM vs frame", "lpips": "LPIPS vs frame"}


class ReportError(UserError):
    """A user-facing problem with the inputs; the CLI prints it as one line and exits with 2."""


# ----------------------------------------------------------------------------------------------
# Collecting runs
# ----------------------------------------------------------------------------------------------
def find_metrics_files(paths: list[str | Path]) -> list[Path]:
    """Every ``frame_metrics.json`` under ``paths`` (files taken as given), sorted per path and
    without duplicates. Raises :class:`ReportError` for a path that does not exist."""
    found: list[Path] = []
    seen: set[Path] = set()
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise ReportError(f"no such file or directory: {path}")
        candidates = [path] if path.is_file() else sorted(path.rglob(METRICS_FILE))
        for candidate in candidates:
            key = candidate.resolve()
            if key not in seen:
                seen.add(key)
                found.append(candidate)
    return found


def read_overrides(run_dir: Path) -> list[str] | None:
    """The Hydra override strings of a run (``.hydra/overrides.yaml``), or None without one."""
    path = run_dir / ".hydra" / "overrides.yaml"
    if not path.is_file():
        return None
    import yaml

    try:
        overrides = yaml.safe_load(path.read_text())
    except yaml.YAMLError:
        return None  # the label falls back to task/prompt; the metrics are what matter
    if not isinstance(overrides, list):
        return None
    return [str(item) for item in overrides]


_UNLABELLED_PREFIXES = ("hydra.", "paths.", "wandb=", "logger", "callbacks", "samples=", "device=")


def override_label(overrides: list[str]) -> str:
    """A short label from Hydra overrides: bookkeeping overrides dropped, ``eval_data@data=`` shown
    as ``data=``, and paths (``ckpt=``, ``*_dir=``, ``root=``) shortened to their last part."""
    parts = []
    for item in overrides:
        if item.startswith(_UNLABELLED_PREFIXES) or "=" not in item:
            continue
        key, value = item.split("=", 1)
        key = key.replace("eval_data@data", "data")
        if key in ("ckpt", "ckpt_path") or key.endswith(("_dir", ".root")) or "/" in value:
            value = Path(value.rstrip("/")).name or value
        parts.append(f"{key}={value}")
    return " ".join(parts)


def _unique_labels(runs: list[dict]) -> None:
    """Make ``label`` unique: a repeated label gets the run directory's name, then a counter."""
    counts: dict[str, int] = {}
    for run in runs:
        counts[run["label"]] = counts.get(run["label"], 0) + 1
    for run in runs:
        if counts[run["label"]] > 1:
            run["label"] = f"{run['label']} ({Path(run['run_dir']).name})"
    seen: dict[str, int] = {}
    for run in runs:
        label = run["label"]
        seen[label] = seen.get(label, 0) + 1
        if seen[label] > 1:
            run["label"] = f"{label} #{seen[label]}"


def _mean(values: list[float | None]) -> float | None:
    numbers = [v for v in values if v is not None]
    return sum(numbers) / len(numbers) if numbers else None


def collect_runs(paths: list[str | Path]) -> list[dict]:
    """One dict per run found under ``paths``, in argument order.

    Keys: ``label`` (unique: the run's Hydra overrides joined by spaces, else "<task> <prompt>
    <dir name>"), ``run_dir``, ``metrics_file``, ``overrides`` (list or None), ``task``,
    ``prompt``, ``n_images``, ``global_step``, ``frames``, ``psnr``, ``ssim``, ``lpips`` (list or
    None), ``input_psnr``, ``input_ssim``, the summaries ``psnr_first``, ``psnr_last``,
    ``psnr_mean_f2`` (mean over frames 2..T), ``ssim_last``, ``lpips_last``, and ``categories``
    with ``category_summary`` (:func:`summarize_categories`; both None without categories).
    Raises :class:`ReportError` when a path is missing, nothing is found, or a file is malformed.
    """
    files = find_metrics_files(paths)
    if not files:
        shown = " ".join(str(p) for p in paths) or "(no paths)"
        raise ReportError(f"no {METRICS_FILE} found under {shown}")
    runs = []
    for file in files:
        data = read_frame_metrics(file)
        run_dir = file.parent
        overrides = read_overrides(run_dir)
        task, prompt = str(data.get("task", "?")), str(data.get("prompt", "?"))
        label = override_label(overrides) if overrides else ""
        label = label or f"{task} {prompt} {run_dir.resolve().name}"
        psnr, ssim, lpips = data["psnr"], data["ssim"], data["lpips"]
        runs.append(
            {
                "label": label,
                "run_dir": str(run_dir),
                "metrics_file": str(file),
                "overrides": overrides,
                "task": task,
                "prompt": prompt,
                "n_images": data.get("n_images"),
                "global_step": data.get("global_step"),
                "frames": data["frames"],
                "psnr": psnr,
                "ssim": ssim,
                "lpips": lpips,
                "input_psnr": data.get("input_psnr"),
                "input_ssim": data.get("input_ssim"),
                "psnr_first": psnr[0],
                "psnr_last": psnr[-1],
                "psnr_mean_f2": _mean(psnr[1:]),
                "ssim_last": ssim[-1],
                "lpips_last": None if lpips is None else lpips[-1],
                "categories": data.get("categories"),
                "category_summary": summarize_categories(data["categories"])
                if data.get("categories")
                else None,
            }
        )
    _unique_labels(runs)
    return runs


def find_failed_jobs(paths: list[str | Path]) -> list[str]:
    """Sweep jobs that left ``FAILED.txt`` (no metrics): listed in the report, not plotted."""
    failed = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            failed.extend(str(p.parent) for p in sorted(path.rglob("FAILED.txt")))
    return failed


# ----------------------------------------------------------------------------------------------
# Figures (matplotlib's object API with the Agg canvas: no pyplot, no global backend switch)
# ----------------------------------------------------------------------------------------------
def _has_metric(run: dict, metric: str) -> bool:
    values = run.get(metric)
    return values is not None and any(v is not None for v in values)


def _draw_metric(axes, runs: list[dict], metric: str, colors: dict[str, str]) -> list[str]:
    """Draw one line per run with this metric on ``axes``; the labels of runs left out."""
    left_out = [run["label"] for run in runs if not _has_metric(run, metric)]
    frames_seen: set[int] = set()
    for run in runs:
        if not _has_metric(run, metric):
            continue
        values = [math.nan if v is None else v for v in run[metric]]
        axes.plot(
            run["frames"],
            values,
            marker="o",
            markersize=4,
            linewidth=1.6,
            color=colors[run["label"]],
            label=run["label"],
        )
        frames_seen.update(run["frames"])
        reference = run.get(f"input_{metric}")
        if isinstance(reference, int | float):
            # the degraded input's score, the level a restoration has to beat
            axes.axhline(reference, color=colors[run["label"]], linestyle=":", linewidth=1.0, alpha=0.7)
    if frames_seen:
        axes.set_xticks(sorted(frames_seen))
    axes.set_xlabel("frame")
    axes.set_ylabel(AXIS_LABELS[metric])
    axes.set_title(TITLES[metric])
    axes.grid(True, alpha=0.35)
    if left_out:
        note = f"no {metric.upper()} for {len(left_out)} run(s): " + ", ".join(left_out)
        axes.text(
            0.01, 0.01, note, transform=axes.transAxes, fontsize=7, color="0.35", va="bottom", wrap=True
        )
    return left_out


def _legend_handles(axes, runs: list[dict], metric: str) -> tuple[list, list[str]]:
    """The axes' run lines, plus one grey dotted entry explaining the input reference lines."""
    from matplotlib.lines import Line2D

    handles, labels = axes.get_legend_handles_labels()
    if any(_has_metric(run, metric) and isinstance(run.get(f"input_{metric}"), int | float) for run in runs):
        handles.append(Line2D([], [], color="0.45", linestyle=":", linewidth=1.0))
        labels.append("degraded input (dotted, run's colour)")
    return handles, labels


def _colors(runs: list[dict]) -> dict[str, str]:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if len(runs) <= 10 else "tab20"]
    return {run["label"]: cmap(i % cmap.N) for i, run in enumerate(runs)}


def plot_curves(runs: list[dict], metric: str, path: str | Path, title: str | None = None) -> Path | None:
    """``metric`` ("psnr", "ssim" or "lpips") against frame index, one line (with markers) per run,
    the degraded input's score as a dotted line of the run's colour; runs without the metric are
    left out with a note in the corner. Writes a PNG at ``path`` and returns it, or returns None
    (writing nothing) when no run has the metric."""
    if metric not in METRICS:
        raise ConfigError(f"unknown metric {metric!r}; choose one of {', '.join(METRICS)}")
    if not any(_has_metric(run, metric) for run in runs):
        return None
    figure = _new_figure(6.4, 4.4)
    axes = figure.add_subplot()
    _draw_metric(axes, runs, metric, _colors(runs))
    axes.legend(*_legend_handles(axes, runs, metric), fontsize=7, loc="best")
    if title:
        figure.suptitle(title)
    path = Path(path)
    figure.savefig(path)
    return path


def plot_combined(runs: list[dict], path: str | Path, title: str | None = None) -> Path:
    """PSNR, SSIM and LPIPS panels side by side with one shared legend below (the LPIPS panel says
    so when no run has LPIPS)."""
    figure = _new_figure(16.0, 4.8 + 0.18 * len(runs))
    colors = _colors(runs)
    panels = figure.subplots(1, 3)
    for axes, metric in zip(panels, METRICS, strict=True):
        _draw_metric(axes, runs, metric, colors)
        if not any(_has_metric(run, metric) for run in runs):
            axes.text(
                0.5,
                0.5,
                f"no {metric.upper()} in any run",
                transform=axes.transAxes,
                ha="center",
                va="center",
            )
    handles, labels = _legend_handles(panels[0], runs, "psnr")
    figure.legend(handles, labels, loc="outside lower center", ncols=min(3, max(1, len(labels))), fontsize=8)
    if title:
        figure.suptitle(title)
    path = Path(path)
    figure.savefig(path)
    return path


def category_figure_names(runs: list[dict]) -> dict[str, str]:
    """``categories_<run label>.png`` for each run with categories (keyed by label): the label
    with every run of characters other than letters, digits, ``.``, ``_`` and ``-`` made one
    ``_``, and a counter where two labels come out the same."""
    names: dict[str, str] = {}
    taken: set[str] = set()
    for run in runs:
        if not run.get("categories"):
            continue
        slug = re.sub(r"[^A-Za-z0-9._-]+", "_", run["label"]).strip("_.") or "run"
        name, count = f"categories_{slug}.png", 1
        while name in taken:
            count += 1
            name = f"categories_{slug}_{count}.png"
        taken.add(name)
        names[run["label"]] = name
    return names


CATEGORY_BARS = (  # (legend label, colour, the entry's scores)
    ("degraded input", "0.65", lambda entry: entry.get("input")),
    ("baseline", "tab:brown", lambda entry: entry.get("baseline")),
    ("stage 1 (last frame)", "tab:blue", lambda entry: entry["last"]),
    ("stage 1 + drift (last frame)", "tab:green", lambda entry: (entry.get("drift") or {}).get("last")),
)


def plot_categories(run: dict, path: str | Path, title: str | None = None) -> Path:
    """Grouped bars per category of one run: the degraded input, the baseline (when some category
    has one; its name in the legend), stage 1's last frame and stage 1 + drift (when some category
    has it); a PSNR panel and an SSIM panel. Writes a PNG at ``path`` and returns it."""
    categories = run["categories"]
    names = list(categories)
    entries = list(categories.values())
    bars = [bar for bar in CATEGORY_BARS if any(bar[2](entry) for entry in entries)]
    baseline_names = sorted({entry["baseline"]["name"] for entry in entries if entry.get("baseline")})
    figure = _new_figure(2 * max(5.0, 1.0 + 0.22 * len(names) * len(bars)), 5.2)
    width = 0.8 / len(bars)
    for axes, metric, digits in zip(figure.subplots(1, 2), ("psnr", "ssim"), (1, 3), strict=True):
        for index, (label, color, scores_of) in enumerate(bars):
            if label == "baseline" and baseline_names:
                label = "baseline: " + ", ".join(baseline_names)
            values = [math.nan if not scores_of(entry) else scores_of(entry)[metric] for entry in entries]
            offsets = [i - 0.4 + width * (index + 0.5) for i in range(len(names))]
            container = axes.bar(offsets, values, width, color=color, label=label)
            if len(names) <= 12:
                axes.bar_label(
                    container,
                    labels=["" if math.isnan(v) else f"{v:.{digits}f}" for v in values],
                    fontsize=6,
                    rotation=90,
                    padding=2,
                )
        axes.set_xticks(range(len(names)), names, rotation=30, ha="right")
        axes.set_ylabel(AXIS_LABELS[metric])
        axes.set_title(f"{metric.upper()} per category (last frame)")
        axes.margins(y=0.15)
        axes.grid(True, axis="y", alpha=0.35)
    handles, labels = axes.get_legend_handles_labels()
    figure.legend(handles, labels, loc="outside lower center", ncols=len(labels), fontsize=8)
    figure.suptitle(f"{title}: {run['label']}" if title else run["label"])
    path = Path(path)
    figure.savefig(path)
    return path


def _fmt(value, digits: int) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{value:.{digits}f}"


def _md_cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def summary_rows(runs: list[dict]) -> tuple[list[str], list[list]]:
    """The summary table (header, rows of plain values) shared by report.md and W&B."""
    header = [
        "label",
        "task",
        "prompt",
        "n_images",
        "step",
        "input PSNR",
        "PSNR f1 → fT",
        "PSNR mean f2-fT",
        "SSIM last",
        "LPIPS last",
    ]
    rows = [
        [
            run["label"],
            run["task"],
            run["prompt"],
            run["n_images"],
            run["global_step"],
            run["input_psnr"],
            f"{_fmt(run['psnr_first'], 2)} → {_fmt(run['psnr_last'], 2)}",
            run["psnr_mean_f2"],
            run["ssim_last"],
            run["lpips_last"],
        ]
        for run in runs
    ]
    return header, rows


def category_rows(run: dict) -> tuple[list[str], list[list]]:
    """One run's per-category table (header, rows of plain values) shared by report.md and W&B:
    a row per category, then a "mean" row (:func:`summarize_categories`: each category weighs
    equally; its ``n`` is the total image count). The baseline columns come only when some
    category has a baseline, the drift columns (last frame and gain over stage 1, dB) only when
    some category has a drift entry (the input columns likewise); a category without one has
    None there."""
    categories = run["categories"]
    entries = list(categories.values())
    with_input = any(entry.get("input") for entry in entries)
    with_baseline = any(entry.get("baseline") for entry in entries)
    with_drift = any(entry.get("drift") for entry in entries)
    header = ["category", "n"] + (["input PSNR", "input SSIM"] if with_input else [])
    if with_baseline:
        header += ["baseline", "baseline PSNR", "baseline SSIM"]
    header += ["PSNR last", "SSIM last", "LPIPS last"]
    if with_drift:
        header += ["drift PSNR last", "drift SSIM last", "drift gain (dB)"]
    rows = []
    for name, entry in categories.items():
        row = [name, entry.get("n_images")]
        if with_input:
            row += [(entry.get("input") or {}).get("psnr"), (entry.get("input") or {}).get("ssim")]
        if with_baseline:
            baseline = entry.get("baseline") or {}
            row += [baseline.get("name"), baseline.get("psnr"), baseline.get("ssim")]
        row += [entry["last"]["psnr"], entry["last"]["ssim"], entry["last"].get("lpips")]
        if with_drift:
            drift = (entry.get("drift") or {}).get("last")
            row += (
                [None, None, None]
                if not drift
                else [drift["psnr"], drift["ssim"], drift["psnr"] - entry["last"]["psnr"]]
            )
        rows.append(row)
    summary = summarize_categories(categories)
    counts = [entry.get("n_images") for entry in entries]
    mean = ["mean", None if None in counts else sum(counts)]
    if with_input:
        mean += [summary["mean_input_psnr"], summary["mean_input_ssim"]]
    if with_baseline:
        names = {entry["baseline"]["name"] for entry in entries if entry.get("baseline")}
        mean += [
            names.pop() if len(names) == 1 else None,
            summary["mean_baseline_psnr"],
            summary["mean_baseline_ssim"],
        ]
    mean += [summary["mean_last_psnr"], summary["mean_last_ssim"], summary["mean_last_lpips"]]
    if with_drift:
        mean += [
            summary["mean_drift_last_psnr"],
            summary["mean_drift_last_ssim"],
            summary["mean_drift_gain_psnr"],
        ]
    rows.append(mean)
    return header, rows


_CATEGORY_DIGITS = {"PSNR": 2, "SSIM": 4, "LPIPS": 4}


def _category_cell(column: str, value) -> str:
    if column in ("category", "baseline"):
        return "–" if value is None else _md_cell(value)
    if column == "n":
        return "–" if value is None else str(value)
    if column == "drift gain (dB)":
        return "–" if value is None else f"{value:+.2f}"
    return _fmt(value, next(d for metric, d in _CATEGORY_DIGITS.items() if metric in column))


def render_category_section(run: dict, figure: str | None) -> list[str]:
    """report.md lines for one run with categories: its table, its bar chart and what the means
    cover."""
    header, rows = category_rows(run)
    summary = run.get("category_summary") or summarize_categories(run["categories"])
    lines = ["", f"## Per category: {_md_cell(run['label'])}", ""]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "---|" * len(header))
    for row in rows:
        cells = [_category_cell(column, value) for column, value in zip(header, row, strict=True)]
        lines.append("| " + " | ".join(cells) + " |")
    count = summary["n_categories"]

    def categories_(k: int) -> str:
        return f"{k} category" if k == 1 else f"{k} categories"

    notes = [f"'mean' weighs each of the {categories_(count)} equally ('n' there is the total image count)."]
    if "input PSNR" in header:
        notes.append(
            "Stage 1's last frame beats the degraded input's PSNR in "
            f"{summary['categories_beating_input_psnr']} of {categories_(count)}."
        )
    if "drift gain (dB)" in header:
        notes.append("'drift gain' is stage 1 + drift correction's last-frame PSNR minus stage 1's.")
        if summary["n_drift_categories"] < count:
            notes.append(
                f"The drift means cover only the {categories_(summary['n_drift_categories'])} with a drift run."
            )
    if "baseline" in header and summary["n_baseline_categories"] < count:
        notes.append(
            f"The baseline means cover only the {categories_(summary['n_baseline_categories'])} with a baseline."
        )
    lines += ["", " ".join(notes)]
    if figure:
        lines += ["", f"![per-category PSNR and SSIM: {_md_cell(run['label'])}]({figure})"]
    return lines


def render_markdown(
    runs: list[dict], figures: dict[str, str | None], title: str, notes: list[str], inputs: list[str]
) -> str:
    """report.md: the summary table (one row per run), per-frame PSNR, figure links, notes."""
    header, rows = summary_rows(runs)
    lines = [f"# {title}", "", f"Generated {dt.datetime.now().isoformat(timespec='seconds')} from:", ""]
    lines += [f"- `{path}`" for path in inputs]
    lines += ["", "![metrics vs frame](figure.png)", ""]
    links = [f"[{name}]({file})" for name, file in figures.items() if file]
    lines += ["Figures: " + ", ".join(links), "", "## Runs", ""]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "---|" * len(header))
    for row in rows:
        label, task, prompt, n_images, step, input_psnr, arrow, mean_f2, ssim_last, lpips_last = row
        cells = [
            _md_cell(label),
            _md_cell(task),
            _md_cell(prompt),
            "–" if n_images is None else str(n_images),
            "–" if step is None else str(step),
            _fmt(input_psnr, 2),
            arrow,
            _fmt(mean_f2, 2),
            _fmt(ssim_last, 4),
            _fmt(lpips_last, 4),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    max_frames = max(len(run["frames"]) for run in runs)
    lines += ["", "## PSNR (dB) per frame", ""]
    lines.append("| label | " + " | ".join(f"f{i}" for i in range(1, max_frames + 1)) + " |")
    lines.append("|---|" + "---|" * max_frames)
    for run in runs:
        values = [_fmt(v, 2) for v in run["psnr"]] + ["–"] * (max_frames - len(run["psnr"]))
        lines.append(f"| {_md_cell(run['label'])} | " + " | ".join(values) + " |")
    lines += [
        "",
        "PSNR in dB, SSIM and LPIPS against the clean target, averaged over the run's validation "
        "images; frame 1 is the degraded condition, so 'mean f2-fT' leaves it out; 'input' is the "
        "degraded input's score (dotted lines in the figures).",
    ]
    category_figures = category_figure_names(runs)
    for run in runs:
        if run.get("categories"):
            lines += render_category_section(run, category_figures.get(run["label"]))
    if notes:
        lines += ["", "## Notes", ""] + [f"- {_md_cell(note)}" for note in notes]
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------------------------
# W&B (only when asked)
# ----------------------------------------------------------------------------------------------
def wandb_requested(flag: bool) -> bool:
    return flag or os.environ.get("WANDB_MODE", "").lower() == "online"


def log_to_wandb(
    runs: list[dict], figures: dict[str, str | None], out_dir: Path, title: str, project: str
) -> str:
    """Log the figures, the summary table and each run's per-category table (``report/per_category_<run
    label>``, when it has categories) to a new W&B run; returns its URL (or name)."""
    try:
        import wandb
    except ImportError as err:
        raise ReportError(f"W&B logging was requested but wandb cannot be imported: {err}") from None
    header, rows = summary_rows(runs)
    # Same place as the training runs' W&B files, so `make sync-wandb` uploads offline reports too.
    wandb_root = PROJECT_ROOT / "outputs"
    wandb_root.mkdir(parents=True, exist_ok=True)
    run = wandb.init(project=project, name=title, job_type="report", dir=str(wandb_root))
    try:
        payload = {"report/runs": wandb.Table(columns=header, data=rows)}
        category_figures = category_figure_names(runs)  # the per-category tables, keyed like the charts
        for item in runs:
            if item["label"] in category_figures:
                stem = Path(category_figures[item["label"]]).stem.removeprefix("categories_")
                columns, data = category_rows(item)
                payload[f"report/per_category_{stem}"] = wandb.Table(columns=columns, data=data)
        for file in figures.values():
            if file:
                payload[f"report/{Path(file).stem}"] = wandb.Image(str(out_dir / file))
        run.log(payload)
        return run.url or run.name
    finally:
        run.finish()


# ----------------------------------------------------------------------------------------------
# CLI
# ----------------------------------------------------------------------------------------------
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


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = ArgumentParser(
        prog="python -m src.report",
        description="Metric-vs-frame curves and a table for training runs (their frame_metrics.json).",
    )
    parser.add_argument(
        "paths", nargs="+", help="run directories, sweep/multirun directories or frame_metrics.json files"
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="output directory (default outputs/reports/<date_time>)"
    )
    parser.add_argument("--title", default=None, help="figure and report title")
    parser.add_argument(
        "--label",
        action="append",
        default=None,
        help="a label per run, in the order the runs are found (repeat the option); default: overrides",
    )
    parser.add_argument(
        "--sweep",
        metavar="FACTOR",
        default=None,
        help="statistics of a sweep instead: per-frame means with bootstrap intervals over images x seeds and "
        "paired tests between the levels of FACTOR (e.g. prompt, lora.rank) from the jobs' src.eval results "
        "(the table, JSON and figure of make bench-paper)",
    )
    parser.add_argument(
        "--reference", default=None, help="with --sweep: the level compared against (default: the first)"
    )
    parser.add_argument(
        "--panels", default="task", help="with --sweep: one row of panels per value of this override"
    )
    parser.add_argument("--wandb", action="store_true", help="also log to W&B (implied by WANDB_MODE=online)")
    parser.add_argument("--wandb-project", default="progrestore", help="W&B project (default: progrestore)")
    return parser.parse_args(argv)


def sweep_report(args: argparse.Namespace) -> Path:
    """``--sweep FACTOR``: the sweep statistics of ``src.analysis.sweep`` for each path."""
    from src.analysis.sweep import (
        SweepError,
        collect_records,
        parse_value,
        plot_figure,
        render_markdown,
        summarize,
    )

    try:
        records = [r for path in args.paths for r in collect_records(path)]
        reference = None if args.reference is None else parse_value(args.reference)
        summary = summarize(records, args.sweep, reference)
    except SweepError as err:
        raise ReportError(str(err)) from err
    out_dir = args.out or default_out_dir()
    out_dir.mkdir(parents=True, exist_ok=True)
    title = args.title or f"{len(records)} job(s): {args.sweep}"
    (out_dir / "sweep_stats.json").write_text(json.dumps(summary, indent=1))
    (out_dir / "sweep_stats.md").write_text(render_markdown(summary, title))
    plot_figure(summary, out_dir / "sweep_figure.png", args.panels, title)
    print(f"{len(records)} job(s) -> {out_dir / 'sweep_stats.md'}")
    return out_dir


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.sweep:
        try:
            sweep_report(args)
        except Exception as err:  # the one user-error policy (src/utils/cli.py)
            if report_user_error(err) is None:
                raise
            return 2
        return 0
    try:
        runs = collect_runs(args.paths)
        if args.label:
            if len(args.label) != len(runs):
                raise ReportError(f"{len(args.label)} --label given for {len(runs)} run(s)")
            for run, label in zip(runs, args.label, strict=True):
                run["label"] = label
            _unique_labels(runs)
        failed = find_failed_jobs(args.paths)
        out_dir = args.out or default_out_dir()
        title = args.title or f"{len(runs)} run(s): " + ", ".join(sorted({run["task"] for run in runs}))
        report = write_report(runs, out_dir, title, [str(p) for p in args.paths], failed)
        if wandb_requested(args.wandb):
            where = log_to_wandb(runs, report["figures"], out_dir, title, args.wandb_project)
            print(f"logged to W&B: {where}")
    except Exception as err:  # the one user-error policy (src/utils/cli.py); bugs keep their traceback
        if report_user_error(err) is None:
            raise
        return 2
    print(f"{len(runs)} run(s) -> {out_dir / 'report.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
