"""Sharded training on the CPU (trainer=fsdp_cpu: Lightning's ModelParallelStrategy, FSDP2 on each
transformer block, 2 gloo processes): it trains, validates and exports like DDP, its checkpoints
stay adapter-only and resume exactly, and full fine-tuning (lora=none) exports the whole
transformer gathered from the shards."""

from __future__ import annotations

import json

import pytest
import torch

from .test_train import FAST, lora_tensors, run_train

COMMON = [
    *FAST,
    "logger=csv",
    "lr_scheduler.total_steps=4",
    "trainer.check_val_every_n_epoch=100",
    "metrics.temporal=false",
]


def _ok(result):
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


@pytest.mark.slow
def test_fsdp_trains_like_ddp_keeps_adapter_only_checkpoints_and_resumes_exactly(tmp_path):
    _ok(run_train(*COMMON, "trainer=fsdp_cpu", f"hydra.run.dir={tmp_path / 'fsdp'}"))
    summary = json.loads((tmp_path / "fsdp" / "run_summary.json").read_text())
    assert summary["ddp"]["world_size"] == 2 and summary["ddp"]["in_sync"]
    assert summary["frame_metrics"]["n_images"] == 2, "validation through the sharded transformer"
    state = torch.load(
        tmp_path / "fsdp" / "checkpoints" / "step000002.ckpt", map_location="cpu", weights_only=False
    )
    assert state["state_dict"] and all("lora_" in k for k in state["state_dict"]), (
        "the frozen base is never saved"
    )
    assert all(type(v) is torch.Tensor for v in state["state_dict"].values()), "whole tensors, not shards"
    sharded = lora_tensors(tmp_path / "fsdp")

    _ok(
        run_train(
            *COMMON,
            "trainer=fsdp_cpu",
            "validate=false",
            f"ckpt_path={tmp_path / 'fsdp' / 'checkpoints' / 'step000002.ckpt'}",
            f"hydra.run.dir={tmp_path / 'resumed'}",
        )
    )
    resumed = lora_tensors(tmp_path / "resumed")
    assert resumed.keys() == sharded.keys()
    for key in sharded:
        assert torch.equal(resumed[key], sharded[key]), key

    # the same run under DDP: the same weights up to the order of the gradient sums (measured:
    # 2.3e-6 at most on weights up to 0.09; make bench-scale: identical after 8 steps)
    _ok(run_train(*COMMON, "trainer=ddp_cpu", "validate=false", f"hydra.run.dir={tmp_path / 'ddp'}"))
    replicated = lora_tensors(tmp_path / "ddp")
    for key in sharded:
        assert torch.allclose(sharded[key], replicated[key], atol=1e-4), key


@pytest.mark.slow
def test_full_finetuning_under_fsdp_exports_the_whole_transformer(tmp_path):
    from diffusers import CogVideoXTransformer3DModel

    run = tmp_path / "full"
    _ok(
        run_train(
            *COMMON,
            "trainer=fsdp_cpu",
            "lora=none",
            "trainer.max_steps=2",
            "lr_scheduler.total_steps=2",
            "validate=false",
            f"hydra.run.dir={run}",
        )
    )
    config = json.loads((run / "transformer" / "config.json").read_text())
    assert config["_class_name"] == "CogVideoXTransformer3DModel", "the model's class, not FSDP's wrapper"
    exported = CogVideoXTransformer3DModel.from_pretrained(run / "transformer").state_dict()
    checkpoint = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)[
        "state_dict"
    ]
    saved = {k.removeprefix("transformer."): v for k, v in checkpoint.items()}
    assert saved.keys() == exported.keys(), "every transformer tensor, in the checkpoint and the export"
    for key, value in exported.items():
        assert torch.equal(value, saved[key]), key


def test_deepspeed_config_excludes_the_frozen_base_and_needs_a_gpu():
    """Lightning's DeepSpeed saves through the engine, past the module's adapter-only filter:
    the config must exclude the frozen parameters itself. No GPU here: refused in one message."""
    from src.training.validate import validate_config
    from src.utils.cli import UserError
    from src.utils.distributed import sharding

    from .test_full_finetune import compose_train

    cfg = compose_train("trainer=deepspeed", "trainer.devices=4")
    assert cfg.trainer.strategy.exclude_frozen_parameters is True and cfg.trainer.strategy.stage == 2
    assert sharding(cfg.trainer) == (1, 4), "ZeRO-2: whole weights, trainable state over 4 GPUs"
    assert sharding(compose_train("trainer=deepspeed", "trainer.strategy.stage=3").trainer) == (8, 8)
    assert sharding(compose_train("trainer=fsdp", "trainer.num_nodes=2").trainer) == (16, 16)
    assert sharding(compose_train("trainer=ddp").trainer) == (1, 1)
    with pytest.raises(UserError, match="GPU|deepspeed"):
        validate_config(cfg)


@pytest.mark.parametrize("trainer", ["deepspeed", "fsdp", "fsdp_cpu"])
def test_strategy_configs_name_only_arguments_their_lightning_class_takes(trainer):
    """Hydra would pass a misspelt key through to the strategy and fail only on the cluster."""
    import inspect

    from hydra.utils import get_class
    from omegaconf import OmegaConf

    from .test_full_finetune import compose_train

    strategy = OmegaConf.to_container(compose_train(f"trainer={trainer}").trainer.strategy, resolve=True)
    accepted = inspect.signature(get_class(strategy.pop("_target_")).__init__).parameters
    assert set(strategy) <= set(accepted), set(strategy) - set(accepted)


@pytest.mark.parametrize(("arch", "full"), [("tiny", True), ("tiny_wan", False)])
def test_sharded_step_benchmark_runs_under_torchrun_on_the_cpu(tmp_path, arch, full):
    """make bench-gpu-sharded's script (8 GPUs there) as a 2-rank gloo smoke test."""
    import subprocess
    import sys

    from .conftest import PROJECT_ROOT

    out = tmp_path / "sharded"
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "-m",
        "src.benchmarks.gpu_step",
    ]
    command += ["--shard", "--arch", arch, "--device", "cpu", "--steps", "1", "--out", str(out)]
    command += ["--full"] if full else []
    result = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = json.loads(out.with_suffix(".json").read_text())["results"]
    assert [r["gradient_checkpointing"] for r in rows] == [True, False]
    assert all(r["shards"] == 2 and r["full_finetune"] is full and r["loss_finite"] for r in rows), rows
    assert "2 rank(s), transformer sharded per block" in out.with_suffix(".md").read_text()
