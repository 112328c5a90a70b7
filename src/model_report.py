"""python -m src.model_report model=cogvideox_5b_i2v lora.rank=64 [model.frames=9] [data.batch_size=1]

Proof of wiring without weights: builds the model's published architectures (transformer, VAE,
T5) on the meta device, attaches the configured LoRA, and prints parameter counts, tokens per
sample at the configured frames and resolution, and an estimated peak GPU memory for training
(with and without gradient checkpointing) and for validation. Writes model_report.json in the
run dir. Nothing is downloaded and no memory is allocated for weights.

The memory model (README, "Memory plan") is an estimate, not a measurement: weights at their
dtype, LoRA weights + grads + AdamW state in fp32, and transformer activations of
34 bytes x tokens x hidden per block per sample (Korthikanti et al. 2022, without the s^2
attention-score term that SDPA/flash attention never stores).

A thin command line over :mod:`src.training.memory_plan`: the options it reads are checked once
(:func:`~src.training.memory_plan.validate_plan_config`), then the plan is computed and written.
"""

from __future__ import annotations

import json
from pathlib import Path

import hydra
from omegaconf import DictConfig

from src.training.memory_plan import format_report, model_report, validate_plan_config
from src.utils.cli import hydra_cli, user_errors
from src.utils.config import CONFIG_DIR


@hydra.main(config_path=str(CONFIG_DIR), config_name="train", version_base="1.3")
@user_errors(
    "python -m src.model_report model=<tiny|tiny_wan|cogvideox_5b_i2v|cogvideox1.5_5b_i2v|wan2.2_ti2v_5b> [lora.rank=N] ..."
)
def main(cfg: DictConfig) -> None:
    validate_plan_config(cfg)
    report = model_report(cfg)
    print(format_report(report))
    out = Path(cfg.paths.run_dir) / "model_report.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written {out}")


if __name__ == "__main__":
    hydra_cli(main, "train")
