"""A sweep's results with their uncertainty: the paper's figure and tables from job records.

A *job record* (one per finished job of a Hydra multirun, evaluated by ``src.eval``) is a JSON
object::

    {"overrides": {"task": "deblur", "prompt": "adaptive", "seed": 0, ...},   # the job's overrides
     "frames": [1, ..., T],
     "images": {"<image>": {"generated": {"psnr": [T], "ssim": [T], "lpips": [T] | null},
                            "input": {"psnr": f, "ssim": f, "lpips": f | null} | absent,
                            "baseline": {"name": str, "psnr": f, ...} | absent}},
     "train_minutes": f | absent, "eval_minutes": f | absent}

:func:`job_record` makes one from a job directory (its ``.hydra/overrides.yaml`` and the
``metrics.csv`` that ``src.eval`` wrote under it); ``make bench-paper`` commits them, and
``python -m src.report --sweep <dir>`` reads them back from a sweep directory.

:func:`summarize` groups the records by every override except the seed, puts each metric on an
(images x seeds) grid and gives per-frame means with bootstrap intervals
(:mod:`src.analysis.stats`), the last frame against the degraded input and the classical baseline,
and paired comparisons between the levels of one factor (``prompt``: adaptive minus uniform;
``lora.rank``: each rank minus a reference) at matched (image, seed) units.
:func:`render_markdown` and :func:`plot_figure` turn the summary into the table and the figure
in the layout of the paper's Fig. 2 (metric vs frame, a panel per task and metric, a line per
level with its interval band).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from src.analysis.records import (  # noqa: F401  (re-exported: the records are part of a sweep's API)
    METRICS,
    RECORD_NAME,
    RECORD_SUFFIX,
    SweepError,
    collect_records,
    find_eval_csv,
    job_record,
    parse_overrides,
    parse_value,
    read_eval_csv,
)
from src.analysis.stats import (
    ALPHA,
    BOOTSTRAP_REPLICATES,
    CONFIDENCE,
    bootstrap_interval,
    format_interval,
    paired_comparison,
)

HIGHER_IS_BETTER = {"psnr": True, "ssim": True, "lpips": False}
LABELS = {"psnr": "PSNR (dB)", "ssim": "SSIM", "lpips": "LPIPS"}
DIGITS = {"psnr": 2, "ssim": 3, "lpips": 3}
SEED_KEY = "seed"


# ----------------------------------------------------------------------------------------------
# Statistics
# ----------------------------------------------------------------------------------------------
def _key(overrides: dict, drop: tuple[str, ...]) -> tuple:
    return tuple(sorted((k, v) for k, v in overrides.items() if k not in drop))


def _grids(records: list[dict]) -> tuple[list[str], list, dict]:
    """(images, seeds, {(image, seed): record}) of records that differ only by seed."""
    images = sorted({i for r in records for i in r["images"]})
    seeds = sorted({r["overrides"].get(SEED_KEY, 0) for r in records})
    by_unit = {}
    for record in records:
        seed = record["overrides"].get(SEED_KEY, 0)
        for image in record["images"]:
            by_unit[(image, seed)] = record["images"][image]
    return images, seeds, by_unit


def _grid(images, seeds, by_unit, pick) -> np.ndarray:
    grid = np.full((len(images), len(seeds)), np.nan)
    for i, image in enumerate(images):
        for j, seed in enumerate(seeds):
            entry = by_unit.get((image, seed))
            value = pick(entry) if entry is not None else None
            grid[i, j] = np.nan if value is None else value
    return grid


def _frame_value(metric: str, frame: int):
    def pick(entry):
        values = entry["generated"].get(metric)
        return None if values is None else values[frame]

    return pick


def _scalar(which: str, metric: str):
    def pick(entry):
        return (entry.get(which) or {}).get(metric)

    return pick


def _interval(grid: np.ndarray, seed: int):
    return bootstrap_interval(grid, seed=seed).as_dict() if np.isfinite(grid).any() else None


def summarize(records: list[dict], compare: str, reference=None, seed: int = 0) -> dict:
    """Groups (every override but the seed), each with per-frame intervals, the last frame, the
    input and baseline, then the paired comparisons of the levels of ``compare`` within each
    setting of the other overrides (``reference``: the level the others are compared with;
    default the first level in sorted order, e.g. ``uniform`` for ``prompt``)."""
    if not records:
        raise SweepError("no job records")
    frames = records[0]["frames"]
    groups: dict[tuple, list[dict]] = {}
    for record in records:
        if record["frames"] != frames:
            raise SweepError("the jobs' trajectories have different frame counts")
        groups.setdefault(_key(record["overrides"], (SEED_KEY,)), []).append(record)
    summary_groups = []
    for key, members in sorted(groups.items(), key=lambda kv: str(kv[0])):
        images, seeds, by_unit = _grids(members)
        group = {"overrides": dict(key), "images": images, "seeds": seeds, "frames": {}, "last": {}}
        for metric in METRICS:
            per_frame = [
                _interval(_grid(images, seeds, by_unit, _frame_value(metric, f)), seed)
                for f in range(len(frames))
            ]
            group["frames"][metric] = per_frame if any(per_frame) else None
            group["last"][metric] = per_frame[-1]
            group.setdefault("input", {})[metric] = _interval(
                _grid(images, seeds, by_unit, _scalar("input", metric)), seed
            )
            group.setdefault("baseline", {})[metric] = _interval(
                _grid(images, seeds, by_unit, _scalar("baseline", metric)), seed
            )
            last = _grid(images, seeds, by_unit, _frame_value(metric, len(frames) - 1))
            degraded = _grid(images, seeds, by_unit, _scalar("input", metric))
            if np.isfinite(last).any() and np.isfinite(last - degraded).any():
                group.setdefault("vs_input", {})[metric] = paired_comparison(
                    last, degraded, seed=seed
                ).as_dict()
        names = {(e.get("baseline") or {}).get("name") for e in by_unit.values()} - {None}
        group["baseline_name"] = ", ".join(sorted(names)) or None
        group["minutes"] = [r.get("train_minutes") for r in members if r.get("train_minutes") is not None]
        summary_groups.append(group)
    comparisons = compare_levels(groups, compare, reference, len(frames), seed)
    return {
        "frames": frames,
        "compare": compare,
        "confidence": CONFIDENCE,
        "bootstrap": {
            "replicates": BOOTSTRAP_REPLICATES,
            "seed": seed,
            "resampling": "crossed images x seeds",
        },
        "test": {
            "name": "two-sided sign-flip permutation test of the mean paired difference",
            "alpha": ALPHA,
        },
        "groups": summary_groups,
        "comparisons": comparisons,
    }


def compare_levels(groups: dict, compare: str, reference, num_frames: int, seed: int) -> list[dict]:
    """Paired last-frame comparisons of each level of ``compare`` against ``reference``."""
    settings: dict[tuple, dict] = {}
    for key, members in groups.items():
        overrides = dict(key)
        if compare not in overrides:
            continue
        rest = _key(overrides, (compare,))
        settings.setdefault(rest, {})[overrides[compare]] = members
    out = []
    for rest, levels in sorted(settings.items(), key=lambda kv: str(kv[0])):
        if len(levels) < 2:
            continue
        ref = reference if reference is not None else sorted(levels, key=str)[0]
        if ref not in levels:
            raise SweepError(f"{compare}={ref} is not among the swept levels {sorted(levels, key=str)}")
        ref_images, ref_seeds, ref_units = _grids(levels[ref])
        for level in sorted(levels, key=str):
            if level == ref:
                continue
            images, seeds, units = _grids(levels[level])
            images = sorted(set(images) & set(ref_images))
            seeds = sorted(set(seeds) & set(ref_seeds))
            entry = {
                "setting": dict(rest),
                "level": level,
                "reference": ref,
                "units": len(images) * len(seeds),
                "metrics": {},
            }
            for metric in METRICS:
                pick = _frame_value(metric, num_frames - 1)
                a, b = _grid(images, seeds, units, pick), _grid(images, seeds, ref_units, pick)
                if np.isfinite(a - b).any():
                    entry["metrics"][metric] = paired_comparison(a, b, seed=seed).as_dict()
            out.append(entry)
    return out


# ----------------------------------------------------------------------------------------------
# Table and figure
# ----------------------------------------------------------------------------------------------
def _label(overrides: dict, skip: tuple[str, ...] = ()) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(overrides.items()) if k not in skip) or "all"


def _better(metric: str, comparison: dict) -> str:
    d = comparison["difference"]["mean"]
    if not comparison["resolved"]:
        return comparison["verdict"]
    good = (d > 0) == HIGHER_IS_BETTER[metric]
    return f"resolved: {'better' if good else 'worse'}"


def render_markdown(summary: dict, title: str) -> str:
    """The sweep's tables: per-frame means with intervals per group, the last frame against the
    input and the baseline, and the paired comparisons with their verdicts."""
    conf = int(round(summary["confidence"] * 100))
    frames = summary["frames"]
    lines = [f"# {title}", ""]
    lines += [
        f"Means over held-out images x seeds with {conf} % bootstrap intervals ({summary['bootstrap']['resampling']}, "
        f"{summary['bootstrap']['replicates']} replicates, seed {summary['bootstrap']['seed']}); paired tests: "
        f'{summary["test"]["name"]} at matched (image, seed) units, "resolved" when p < {summary["test"]["alpha"]} '
        "and the interval excludes 0.",
        "",
        "## Per frame",
        "",
    ]
    for group in summary["groups"]:
        lines.append(
            f"### {_label(group['overrides'])} ({len(group['images'])} images x {len(group['seeds'])} seeds)"
        )
        lines.append("")
        lines.append("| metric | " + " | ".join(str(f) for f in frames) + " |")
        lines.append("|---|" + "---|" * len(frames))
        for metric in METRICS:
            per_frame = group["frames"][metric]
            if per_frame is None:
                continue
            cells = [format_interval(v, DIGITS[metric]) for v in per_frame]
            lines.append(f"| {LABELS[metric]} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += ["## Last frame against the degraded input and the classical baseline", ""]
    lines.append("| setting | metric | last frame | degraded input | last - input (p) | baseline |")
    lines.append("|---|---|---|---|---|---|")
    for group in summary["groups"]:
        for metric in METRICS:
            if group["last"][metric] is None:
                continue
            vs = (group.get("vs_input") or {}).get(metric)
            diff = (
                f"{format_interval(vs['difference'], DIGITS[metric])} (p={vs['p_value']:.3g})"
                if vs
                else "n/a"
            )
            base = group["baseline"][metric]
            base_cell = (
                f"{group['baseline_name']}: {format_interval(base, DIGITS[metric])}" if base else "n/a"
            )
            lines.append(
                f"| {_label(group['overrides'])} | {LABELS[metric]} | {format_interval(group['last'][metric], DIGITS[metric])} | "
                f"{format_interval(group['input'][metric], DIGITS[metric])} | {diff} | {base_cell} |"
            )
    lines += ["", f"## {summary['compare']}: paired differences at the last frame", ""]
    lines.append("| setting | comparison | metric | difference | p | wins / losses | verdict |")
    lines.append("|---|---|---|---|---|---|---|")
    for comp in summary["comparisons"]:
        for metric, c in comp["metrics"].items():
            lines.append(
                f"| {_label(comp['setting'])} | {comp['level']} - {comp['reference']} | {LABELS[metric]} | "
                f"{format_interval(c['difference'], DIGITS[metric])} | {c['p_value']:.3g}{'' if c['exact'] else ' (MC)'} | "
                f"{c['wins']} / {c['losses']} | {_better(metric, c)} |"
            )
    return "\n".join(lines) + "\n"


def plot_figure(summary: dict, path: str | Path, panel_key: str, title: str | None = None) -> Path:
    """Metric vs frame: one row of panels per value of ``panel_key`` (e.g. the task), one column
    per metric, one line per level of the compared factor with its interval band; the degraded
    input's mean as a dotted line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    compare = summary["compare"]
    panels = sorted({g["overrides"].get(panel_key) for g in summary["groups"]}, key=str)
    metrics = [m for m in METRICS if any(g["frames"][m] for g in summary["groups"])]
    levels = sorted({g["overrides"].get(compare) for g in summary["groups"]}, key=str)
    colours = dict(
        zip(levels, ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"], strict=False)
    )
    fig, axes = plt.subplots(
        len(panels), len(metrics), figsize=(3.6 * len(metrics), 2.7 * len(panels)), squeeze=False
    )
    frames = summary["frames"]
    for row, panel in enumerate(panels):
        for col, metric in enumerate(metrics):
            ax = axes[row][col]
            for group in summary["groups"]:
                if group["overrides"].get(panel_key) != panel or not group["frames"][metric]:
                    continue
                level = group["overrides"].get(compare)
                values = group["frames"][metric]
                mean = [v["mean"] if v else math.nan for v in values]
                low = [v["low"] if v else math.nan for v in values]
                high = [v["high"] if v else math.nan for v in values]
                ax.plot(frames, mean, marker="o", ms=3, color=colours[level], label=f"{compare}={level}")
                ax.fill_between(frames, low, high, color=colours[level], alpha=0.2, linewidth=0)
                degraded = group["input"][metric]
                if degraded:
                    ax.axhline(degraded["mean"], color="0.4", linestyle=":", linewidth=1)
            ax.set_title(f"{panel_key}={panel}: {LABELS[metric]}", fontsize=9)
            ax.set_xticks(frames)
            ax.tick_params(labelsize=7)
            if row == len(panels) - 1:
                ax.set_xlabel("frame", fontsize=8)
            if row == 0 and col == 0:
                ax.plot([], [], color="0.4", linestyle=":", label="degraded input")
                ax.legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
