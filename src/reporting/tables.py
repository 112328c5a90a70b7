"""Tables of ``python -m src.report`` (report.md and the W&B tables share their rows): the summary
row of each run, the per-frame PSNR, and the per-category table of a run with categories (also in
``python -m src.eval``'s eval_table.md and W&B run)."""

from __future__ import annotations

import datetime as dt
import math

from src.metrics.frame_metrics import summarize_categories
from src.reporting.figures import category_figure_names


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
