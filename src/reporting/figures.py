"""Figures of ``python -m src.report`` (matplotlib's object API with the Agg canvas: no pyplot, no
global backend switch): metric-vs-frame curves per metric and side by side, and the per-category
bar chart of a run with categories (all-in-one restoration)."""

from __future__ import annotations

import math
import re
from pathlib import Path

from src.analysis.figures import new_figure as _new_figure
from src.utils.cli import ConfigError

METRICS = ("psnr", "ssim", "lpips")
AXIS_LABELS = {"psnr": "PSNR (dB)", "ssim": "SSIM", "lpips": "LPIPS (lower is better)"}
TITLES = {"psnr": "PSNR vs frame", "ssim": "SSIM vs frame", "lpips": "LPIPS vs frame"}


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
