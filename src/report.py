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
import sys
from pathlib import Path

from src.reporting.runs import ReportError, collect_runs, find_failed_jobs, unique_labels
from src.reporting.wandb_logging import log_to_wandb, wandb_requested
from src.reporting.write import default_out_dir, write_report, write_sweep_report
from src.utils.cli import ArgumentParser, report_user_error


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
    out_dir, count = write_sweep_report(
        args.paths, args.sweep, args.reference, args.panels, args.out, args.title
    )
    print(f"{count} job(s) -> {out_dir / 'sweep_stats.md'}")
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
            unique_labels(runs)
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
