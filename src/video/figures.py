"""Figures of video restoration: the consistency settings per task and sampled frames
(``src.video.evaluate``, ``make bench-video``). Moved out of the ``src.report`` entry point so
the video library no longer imports a command line."""

from __future__ import annotations

from pathlib import Path

from src.analysis.figures import new_figure as _new_figure


def plot_video_settings(results: list[dict], path: str | Path) -> Path:
    """Quality vs temporal consistency of video restoration (``src.eval data=video``): one panel per
    task (each a ``video_metrics.json``), mean PSNR against warping error (x 1e3, against the
    ground truth's flow; lower is steadier) of every consistency setting, the degraded input and
    the classical baseline. Up and left is better. Writes a PNG at ``path`` and returns it."""
    from src.video.acceptance import ACCEPT_PSNR_LOSS_DB, ACCEPT_WE_REDUCTION

    figure = _new_figure(4.4 * len(results), 4.0)
    axes_list = figure.subplots(1, len(results), squeeze=False)[0]
    for axes, metrics in zip(axes_list, results, strict=True):
        reference = metrics["methods"].get("independent", {})
        points: dict[tuple, list[str]] = {}  # methods at the same point share one label
        for name, scores in metrics["methods"].items():
            if scores.get("psnr") is None or scores.get("warping_error") is None:
                continue
            point = (round(scores["warping_error"] * 1e3, 4), round(scores["psnr"], 3))
            points.setdefault(point, []).append(name)
        for (x, y), names in points.items():
            classical = all(n in ("input", metrics.get("baseline")) for n in names)
            marker, color = ("s", "0.55") if classical else ("o", "C3" if "independent" in names else "C0")
            axes.scatter(x, y, marker=marker, color=color, zorder=3)
            axes.annotate(" = ".join(names), (x, y), fontsize=6.5, xytext=(3, 3), textcoords="offset points")
        if reference.get("psnr") is not None:
            axes.axhline(
                reference["psnr"] - ACCEPT_PSNR_LOSS_DB,
                color="C3", lw=0.8, ls=":", label=f"independent - {ACCEPT_PSNR_LOSS_DB} dB",
            )  # fmt: skip
            axes.axvline(
                reference["warping_error"] * 1e3 * (1 - ACCEPT_WE_REDUCTION),
                color="C3", lw=0.8, ls="--", label=f"independent - {ACCEPT_WE_REDUCTION:.0%} WE",
            )  # fmt: skip
        axes.set_xlim(left=0)
        axes.set_xlabel(f"warping error x 1e3 (flow: {metrics.get('flow')}; lower is steadier)")
        axes.set_ylabel("mean PSNR (dB)")
        axes.set_title(f"{metrics.get('task')}: quality vs consistency", fontsize=9)
        axes.grid(True, alpha=0.3)
        axes.legend(fontsize=6, loc="best", framealpha=0.9)
    path = Path(path)
    figure.savefig(path)
    return path


def plot_video_frames(runs: dict[str, tuple[Path, list[str]]], path: str | Path, frames: int = 6) -> Path:
    """Frames of the first sample video of each task's ``src.eval data=video`` run dir
    (``videos/<video>/<setting>.mp4``: degraded | restored | ground truth side by side), given as
    ``{task: (run dir, settings)}``: per task, rows degraded, each setting, ground truth; ``frames`` evenly spaced columns. Flicker shows as
    detail that changes from column to column where the ground truth's does not."""
    import numpy as np

    from src.video.io import read_all_frames

    rows = []  # (label, frames (F, H, W, 3))
    for task, (run_dir, settings) in runs.items():
        sample = sorted(Path(run_dir).glob("videos/*"))[0]
        for setting in settings:
            panel = read_all_frames(sample / f"{setting}.mp4")
            third = panel.shape[2] // 3
            if setting == settings[0]:
                rows.append((f"{task}: degraded", panel[:, :, :third]))
            rows.append((f"{task}: {setting}", panel[:, :, third : 2 * third]))
        rows.append((f"{task}: ground truth", panel[:, :, 2 * third : 3 * third]))
    count = len(rows[0][1])
    columns = np.linspace(0, count - 1, min(frames, count)).round().astype(int)
    height, width = rows[0][1].shape[1:3]
    cell = 1.5  # inches per frame's width
    figure = _new_figure(cell * len(columns) + 1.4, cell * height / width * len(rows) * 1.08 + 0.3)
    grid = figure.subplots(len(rows), len(columns), squeeze=False)
    for r, (label, video) in enumerate(rows):
        for c, index in enumerate(columns):
            axes = grid[r][c]
            axes.imshow(video[index])
            axes.set_xticks([])
            axes.set_yticks([])
            if r == 0:
                axes.set_title(f"frame {index + 1}", fontsize=7)
            if c == 0:
                axes.set_ylabel(label, fontsize=6.5, rotation=0, ha="right", va="center")
    path = Path(path)
    figure.savefig(path)
    return path


# ----------------------------------------------------------------------------------------------
# Tables
# ----------------------------------------------------------------------------------------------
