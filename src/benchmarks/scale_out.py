"""Scale-out benchmark on the CPU: one process, DDP and FSDP (2 gloo processes each), and the
per-GPU memory plan of every strategy for the real models.

    python -m src.benchmarks.scale_out [--steps 8]      (make bench-scale)

Trains the default lowlight run for ``--steps`` steps three ways at the same global batch (2):
``trainer=cpu`` with batch 2, ``trainer=ddp_cpu`` and ``trainer=fsdp_cpu`` with batch 1 per rank
(the stream gives the two ranks the very samples of the one-process batch; each rank draws its
own noise for its sample, where one process draws one tensor for both, so DDP and one process are
different runs of the same recipe, not the same computation).
Records the wall time, whether the ranks ended in sync, the largest LoRA weight difference between
the runs, and the validation PSNR of the last frame on the held-out Set5 photographs. Then the
memory plan (``src.model_report``, a stated model, not a measurement) for CogVideoX-5B-I2V and
Wan2.2-TI2V-5B under each strategy. Writes experiments/benchmarks/scale_out.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from src.benchmarks.common import machine_info
from src.utils.config import PROJECT_ROOT

OUT = PROJECT_ROOT / "experiments" / "benchmarks" / "scale_out"
RUNS = {  # name -> overrides (global batch 2 in each)
    "one process": ["trainer=cpu", "data.batch_size=2"],
    "ddp_cpu (2 ranks)": ["trainer=ddp_cpu", "data.batch_size=1"],
    "fsdp_cpu (2 ranks)": ["trainer=fsdp_cpu", "data.batch_size=1"],
}
PLANS = {  # name -> model_report overrides
    "LoRA r64, one GPU / DDP": ["lora.rank=64"],
    "LoRA r64, fsdp over 8": ["lora.rank=64", "trainer=fsdp"],
    "lora=none, one GPU (refused)": ["lora=none"],
    "lora=none, deepspeed ZeRO-2 over 8": ["lora=none", "trainer=deepspeed"],
    "lora=none, deepspeed ZeRO-3 over 8": ["lora=none", "trainer=deepspeed", "trainer.strategy.stage=3"],
    "lora=none, fsdp over 8": ["lora=none", "trainer=fsdp"],
    "lora=none, fsdp over 16 (2 nodes)": ["lora=none", "trainer=fsdp", "trainer.num_nodes=2"],
}


def train(name: str, overrides: list[str], steps: int, run_dir: Path) -> dict:
    command = [sys.executable, "-m", "src.train", *overrides, f"trainer.max_steps={steps}"]
    command += [f"lr_scheduler.total_steps={steps}", "data.train_clips_per_epoch=64", "logger=csv"]
    command += ["trainer.check_val_every_n_epoch=100", "model.sampling.num_inference_steps=4"]
    command += [f"hydra.run.dir={run_dir}"]
    started = time.time()
    result = subprocess.run(
        command, cwd=PROJECT_ROOT, env={**os.environ, "WANDB_SILENT": "true"}, capture_output=True, text=True
    )
    if result.returncode != 0:
        raise SystemExit(f"{name} failed:\n{result.stderr[-3000:]}")
    summary = json.loads((run_dir / "run_summary.json").read_text())
    return {
        "overrides": overrides,
        "seconds": time.time() - started,
        "ranks_in_sync": (summary.get("ddp") or {}).get("in_sync"),
        "psnr_last": summary["frame_metrics"]["psnr"][-1],
        "n_images": summary["frame_metrics"]["n_images"],
    }


def largest_difference(a: Path, b: Path) -> float:
    from safetensors.torch import load_file

    first, second = (load_file(str(p / "lora" / "pytorch_lora_weights.safetensors")) for p in (a, b))
    return max(float((first[k] - second[k]).abs().max()) for k in first)


def plan(overrides: list[str], model: str) -> dict:
    from hydra import compose, initialize_config_dir

    from src.training.memory_plan import model_report
    from src.utils.config import CONFIG_DIR

    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(
            "train",
            overrides=[f"model={model}", "data.batch_size=1", "paths.run_dir=/tmp/unused", *overrides],
        )
    memory = model_report(cfg)["memory_estimate"]
    return {
        "train_checkpointing_gib": memory["train_peak_gib"]["checkpointing"],
        "train_no_checkpointing_gib": memory["train_peak_gib"]["no_checkpointing"],
        "validation_gib": memory["validation_peak_gib"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--work", type=Path, default=PROJECT_ROOT / "outputs" / "bench_scale")
    args = parser.parse_args()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    dirs = {name: args.work / f"{stamp}_{i}" for i, name in enumerate(RUNS)}
    runs = {}
    for name, overrides in RUNS.items():
        runs[name] = train(name, overrides, args.steps, dirs[name])
        print(name, json.dumps(runs[name]), flush=True)
    names = list(RUNS)
    differences = {
        f"{a} vs {b}": largest_difference(dirs[a], dirs[b])
        for i, a in enumerate(names)
        for b in names[i + 1 :]
    }
    plans = {
        m: {name: plan(o, m) for name, o in PLANS.items()} for m in ("cogvideox_5b_i2v", "wan2.2_ti2v_5b")
    }
    record = {
        "machine": machine_info(),
        "steps": args.steps,
        "runs": runs,
        "lora_max_abs_difference": differences,
        "memory_plan": plans,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.with_suffix(".json").write_text(json.dumps(record, indent=2) + "\n")
    lines = [
        "# Scale-out on the CPU (make bench-scale)",
        "",
        f"Measured {time.strftime('%Y-%m-%d')} on {record['machine'].get('cpu', 'this machine')}: the default lowlight "
        f"run, {args.steps} steps at global batch 2, validation on Set5 (5 images, 4 sampling steps).",
        "",
        "| run | wall time (s) | ranks in sync | validation images | PSNR last frame |",
        "|---|---|---|---|---|",
    ]
    for name, r in runs.items():
        sync = "-" if r["ranks_in_sync"] is None else str(r["ranks_in_sync"])
        lines.append(f"| {name} | {r['seconds']:.0f} | {sync} | {r['n_images']} | {r['psnr_last']:.3f} |")
    lines += ["", "Largest LoRA weight difference after training:", ""]
    lines += [f"- {k}: {v:.2e}" for k, v in differences.items()]
    lines += [
        "",
        "(DDP and FSDP run the same computation, reducing gradients in their own ways, so they may",
        "differ in the last bits; one process draws one noise tensor for the whole batch where each",
        "rank draws its own for its sample, so it is a different run of the same recipe.)",
        "",
        "## Memory plan per GPU (python -m src.model_report; stated model, not a measurement)",
        "",
        "Batch 1 per GPU, 9 frames at the model's default size, encoder cache on.",
        "",
    ]
    for model, table in plans.items():
        lines += [
            f"### {model}",
            "",
            "| setting | training, checkpointing (GiB) | no checkpointing | validation |",
            "|---|---|---|---|",
        ]
        for name, p in table.items():
            lines.append(
                f"| {name} | {p['train_checkpointing_gib']:.1f} | {p['train_no_checkpointing_gib']:.1f} | {p['validation_gib']:.1f} |"
            )
        lines.append("")
    OUT.with_suffix(".md").write_text("\n".join(lines))
    print(OUT.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
