"""Collecting the runs of ``python -m src.report``: every ``frame_metrics.json`` under the given
paths, one summary dict per run with a short unique label (from its Hydra overrides), and the
sweep jobs that failed."""

from __future__ import annotations

from pathlib import Path

from src.metrics.frame_metrics import FILE_NAME as METRICS_FILE
from src.metrics.frame_metrics import read as read_frame_metrics
from src.metrics.frame_metrics import summarize_categories
from src.utils.cli import UserError


class ReportError(UserError):
    """A user-facing problem with the inputs; the CLI prints it as one line and exits with 2."""


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


def unique_labels(runs: list[dict]) -> None:
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
    unique_labels(runs)
    return runs


def find_failed_jobs(paths: list[str | Path]) -> list[str]:
    """Sweep jobs that left ``FAILED.txt`` (no metrics): listed in the report, not plotted."""
    failed = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            failed.extend(str(p.parent) for p in sorted(path.rglob("FAILED.txt")))
    return failed
