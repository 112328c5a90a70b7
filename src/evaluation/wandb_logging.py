"""W&B logging of ``python -m src.eval`` on images: one run with the per-frame scalars, the
metric-vs-frame charts, the baselines, the temporal scores and, for all-in-one data, the
per-category table."""

from __future__ import annotations

from pathlib import Path

from src.evaluation.options import EvalOptions


def start_eval_run(options: EvalOptions, name: str, config: dict):
    """The W&B run of one evaluation (images or videos): offline unless WANDB_MODE=online."""
    import wandb

    from src.utils.config import wandb_offline

    return wandb.init(
        project="progrestore",
        name=name,
        job_type="eval",
        dir=options.output_dir,
        mode="offline" if wandb_offline() else "online",
        config={"ckpt": options.ckpt, **config},
        reinit="finish_previous",
    )


def log_to_wandb(options: EvalOptions, metrics: dict, run_dir: Path) -> None:
    """Per-frame scalars, metric-vs-frame charts, baselines and temporal scores in one W&B run."""
    import wandb

    run = start_eval_run(
        options,
        f"eval_{metrics['task']}_{metrics['data']}",
        {"data": metrics["data"], "seed": options.inference.seed, "mode": options.inference.mode},
    )
    try:
        payload = {}
        columns = ["frame"] + [m for m in ("psnr", "ssim", "lpips") if metrics.get(m)]
        table = wandb.Table(
            columns=columns,
            data=[[f] + [metrics[m][i] for m in columns[1:]] for i, f in enumerate(metrics["frames"])],
        )
        for metric in columns[1:]:
            for frame, value in zip(metrics["frames"], metrics[metric], strict=True):
                payload[f"eval/{metric}/f{frame}"] = value
            payload[f"eval/{metric}_vs_frame"] = wandb.plot.line(
                table, "frame", metric, title=f"{metric} vs frame"
            )
        for name, values in (metrics.get("baselines") or {}).items():
            for metric in ("psnr", "ssim", "lpips"):
                if values.get(metric) is not None:
                    payload[f"eval/baseline/{name}/{metric}"] = values[metric]
        for key in ("warping_error", "flicker"):
            if (metrics.get("temporal") or {}).get(key) is not None:
                payload[f"eval/temporal/{key}"] = metrics["temporal"][key]
        for key in ("psnr", "ssim", "lpips"):
            if (metrics.get("drift") or {}).get("last", {}).get(key) is not None:
                payload[f"eval/drift/{key}_last"] = metrics["drift"]["last"][key]
        if metrics.get("categories"):  # all-in-one: one row per category, and its scalars
            from src.reporting.tables import category_rows

            header, rows = category_rows(metrics)
            payload["eval/per_category"] = wandb.Table(columns=header, data=rows)
            for name, entry in metrics["categories"].items():
                for part in ("last", "input"):
                    for key in ("psnr", "ssim", "lpips"):
                        if (entry.get(part) or {}).get(key) is not None:
                            payload[f"eval/category/{name}/{part}_{key}"] = entry[part][key]
                if (entry.get("drift") or {}).get("last", {}).get("psnr") is not None:
                    payload[f"eval/category/{name}/drift_psnr"] = entry["drift"]["last"]["psnr"]
        run.log(payload)
        run.summary["run_dir"] = str(run_dir)
    finally:
        run.finish()
