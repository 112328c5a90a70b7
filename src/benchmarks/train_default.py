"""Benchmark of the default run: `make train` (= python -m src.train task=lowlight prompt=adaptive).

    python -m src.benchmarks.train_default [extra overrides ...]

Times the run end to end (process start to exit), reads its frame_metrics.json and checks the
acceptance criteria: under 15 minutes on this machine; on held-out photographs the generated
trajectory's last frame beats the degraded input I_1 in PSNR and SSIM; per-frame PSNR rises from
frame 2 to frame 9. Writes experiments/benchmarks/train_default.{json,md}.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from src.benchmarks.data_builder import machine_info
from src.utils.config import PROJECT_ROOT

COMMAND = ["task=lowlight", "prompt=adaptive"]


def acceptance(metrics: dict, minutes: float) -> dict:
    psnr, ssim = metrics["psnr"], metrics["ssim"]
    rising = all(b > a for a, b in zip(psnr[1:], psnr[2:], strict=False))
    return {
        "minutes_under_15": minutes <= 15.0,
        "last_frame_psnr_beats_input": psnr[-1] > metrics["input_psnr"],
        "last_frame_ssim_beats_input": ssim[-1] > metrics["input_ssim"],
        "psnr_rises_frame_2_to_9": rising,
    }


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--name", default="train_default", help="result file stem under experiments/benchmarks/"
    )
    parser.add_argument("--from-run", type=Path, help="re-record a finished run dir instead of training")
    parser.add_argument("--wall-minutes", type=float, help="with --from-run: the measured wall time")
    args, extra = parser.parse_known_args()
    if args.from_run:
        run_dir, minutes = args.from_run.resolve(), float(args.wall_minutes)
    else:
        run_dir = PROJECT_ROOT / "outputs" / "runs" / "train" / time.strftime("bench_%Y-%m-%d_%H-%M-%S")
        command = [sys.executable, "-m", "src.train", *COMMAND, *extra, f"hydra.run.dir={run_dir}"]
        started = time.time()
        result = subprocess.run(command, cwd=PROJECT_ROOT, env={**os.environ, "WANDB_SILENT": "true"})
        minutes = (time.time() - started) / 60
        if result.returncode != 0:
            sys.exit(f"training failed (exit {result.returncode}); see {run_dir}")
    metrics = json.loads((run_dir / "frame_metrics.json").read_text())
    summary = json.loads((run_dir / "run_summary.json").read_text())
    from omegaconf import OmegaConf

    overrides = [
        str(o)
        for o in OmegaConf.load(run_dir / ".hydra" / "overrides.yaml")
        if not str(o).startswith("hydra.")
    ]
    checks = acceptance(metrics, minutes)
    record = {
        "command": "python -m src.train " + " ".join(o.strip() for o in overrides),
        "machine": machine_info(),
        "wall_minutes": round(minutes, 2),
        "train_minutes": round(summary["minutes"], 2),
        "global_step": summary["global_step"],
        "params_total": summary["params/total"],
        "params_trainable": summary["params/trainable"],
        "frame_metrics": metrics,
        "acceptance": checks,
        "run_dir": str(run_dir.relative_to(PROJECT_ROOT)),
    }
    out = PROJECT_ROOT / "experiments" / "benchmarks"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{args.name}.json").write_text(json.dumps(record, indent=2) + "\n")
    lines = [
        f"# Training benchmark: {args.name}",
        "",
        f"`{record['command']}` on {record['machine']['cpu']} ({record['machine']['cores']} cores), {record['machine']['date']}.",
        f"Wall time {minutes:.1f} min (process start to exit ), {summary['global_step']} steps; parameters {summary['params/total']:,} total, "
        f"{summary['params/trainable']:,} trainable (LoRA).",
        f"Validation: {metrics['n_images']} held-out photographs ({metrics['task']}, {metrics['prompt']} prompts).",
        "",
        "| frame | " + " | ".join(str(f) for f in metrics["frames"]) + " |",
        "|---|" + "---|" * len(metrics["frames"]),
        "| PSNR (dB) | " + " | ".join(f"{p:.3f}" for p in metrics["psnr"]) + " |",
        "| SSIM | " + " | ".join(f"{s:.3f}" for s in metrics["ssim"]) + " |",
        "",
        f"Degraded input I_1 vs clean: PSNR {metrics['input_psnr']:.2f} dB, SSIM {metrics['input_ssim']:.3f}.",
        "",
        "Acceptance: " + ", ".join(f"{k} = {'yes' if v else 'NO'}" for k, v in checks.items()) + ".",
    ]
    (out / f"{args.name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
