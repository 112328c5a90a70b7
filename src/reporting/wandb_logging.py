"""W&B logging of ``python -m src.report``, only when asked (``--wandb`` or ``WANDB_MODE=online``):
otherwise wandb is never imported."""

from __future__ import annotations

import os
from pathlib import Path

from src.reporting.figures import category_figure_names
from src.reporting.runs import ReportError
from src.reporting.tables import category_rows, summary_rows
from src.utils.config import PROJECT_ROOT


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
