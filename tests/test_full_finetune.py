"""Full fine-tuning of the transformer (``lora=none``): config, trainable parameters, checkpoints,
exact resume, the ``transformer/`` export, the restorer, and the refusal for the 5B models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from src.utils.cli import ConfigError
from src.utils.config import CONFIG_DIR

from .conftest import backbone, run_module
from .test_train import FAST

STEPS = ["model.sampling.num_inference_steps=2"]
BIG_MODELS = ("cogvideox_5b_i2v", "cogvideox1.5_5b_i2v", "wan2.2_ti2v_5b")


def compose_train(*overrides: str):
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose("train", overrides=["paths.run_dir=/tmp/unused", *overrides])


def full_cfg(model: str, run_dir: Path, *overrides: str):
    """A tiny in-process lora=none run: no loggers, no validation pass, checkpoints every step."""
    return compose_train(
        *FAST,
        "lora=none",
        f"model={model}",
        "logger=none",
        "validate=false",
        "trainer.check_val_every_n_epoch=100",
        "~callbacks.progress_bar",
        f"paths.run_dir={run_dir}",
        *overrides,
    )


def transformer_tensors(directory: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(directory / "diffusion_pytorch_model.safetensors"))


def test_lora_none_composes_validates_and_names_the_run():
    from src.models.lora import is_full_finetune, validate_lora_config

    for model in ("tiny", "tiny_wan"):
        cfg = compose_train("lora=none", f"model={model}")
        lora = OmegaConf.to_container(cfg.lora, resolve=True)
        assert lora == {
            "full": True,
            "rank": 0,
            "alpha": 0,
            "dropout": 0.0,
            "target_modules": [],
            "init": False,
        }
        assert is_full_finetune(lora) and cfg.run_name == f"lowlight_adaptive_{model}_full"
        validate_lora_config(lora["rank"], lora["alpha"], lora["target_modules"], lora["dropout"], full=True)
    # LoRA run names are unchanged, and the LoRA presets say full: false
    assert compose_train().run_name == "lowlight_adaptive_tiny_r16"
    assert compose_train("lora=attn_ff", "lora.rank=4", "task=sr").run_name == "sr_adaptive_tiny_r4"
    assert compose_train("experiment=paper_sr").run_name == "paper_sr_cogvideox_5b_i2v_adaptive_r64"
    assert compose_train("lora=attn_ff").lora.full is False and not is_full_finetune(compose_train().lora)
    # an adapter setting on top of lora=none is contradictory: one message naming the keys
    with pytest.raises(ConfigError, match="lora.rank, lora.alpha and lora.dropout must be 0"):
        validate_lora_config(16, 16, ["to_q"], 0.0, full=True)
    with pytest.raises(ConfigError, match="lora.full=yes must be true"):
        validate_lora_config(0, 0, [], 0.0, full="yes")


@pytest.fixture(scope="module")
def tiny_full_module():
    from src.training.builders import build_module

    return build_module(full_cfg("tiny", Path("/tmp/unused")))


def test_every_transformer_parameter_trains_in_fp32_and_the_encoders_stay_frozen(tiny_full_module):
    module = tiny_full_module
    transformer = dict(module.transformer.named_parameters())
    trainable = {n for n, p in module.named_parameters() if p.requires_grad}
    assert trainable == {f"transformer.{n}" for n in transformer}
    assert all(p.dtype == torch.float32 for p in transformer.values())
    assert not any(p.requires_grad for p in module.vae.parameters())
    assert not any(p.requires_grad for p in module.text_encoder.parameters())
    counts = module.parameter_counts()
    total = sum(p.numel() for p in transformer.values())
    assert counts["params/trainable"] == counts["params/transformer"] == total < counts["params/total"]
    optimizer = module.configure_optimizers()["optimizer"]
    assert sum(p.numel() for group in optimizer.param_groups for p in group["params"]) == total


def test_model_report_counts_the_whole_transformer_as_trainable():
    from src.training.memory_plan import format_report, model_report

    report = model_report(compose_train("lora=none"))
    assert report["lora"]["full"] and report["lora"]["supported"]
    assert report["lora"]["trainable_parameters"] == report["parameters"]["transformer"]
    assert "full fine-tuning (lora=none)" in format_report(report)
    lora = model_report(compose_train())
    assert (
        "full" not in lora["lora"]
        and lora["lora"]["trainable_parameters"] < report["parameters"]["transformer"]
    )


@pytest.fixture(scope="module")
def straight_run(tmp_path_factory) -> Path:
    """4 lora=none steps on the tiny CogVideoX, checkpoints every 2 (in this process, ~10 s)."""
    from src.training.run import train

    run = tmp_path_factory.mktemp("full") / "straight"
    train(full_cfg("tiny", run, "lr_scheduler.total_steps=4"), run)
    return run


def test_full_run_checkpoints_the_transformer_and_exports_it(straight_run, tiny_full_module):
    run = straight_run
    expected = {f"transformer.{k}" for k in tiny_full_module.transformer.state_dict()}
    for name in ("step000002.ckpt", "last.ckpt"):
        checkpoint = torch.load(run / "checkpoints" / name, map_location="cpu", weights_only=True)
        assert set(checkpoint["state_dict"]) == expected, "the whole transformer, nothing of the VAE/T5"
        assert checkpoint["hyper_parameters"]["lora"]["full"] is True
    assert not (run / "lora").exists()
    export = run / "transformer"
    assert {p.name for p in export.iterdir()} == {
        "config.json",
        "diffusion_pytorch_model.safetensors",
        "finetune_config.json",
    }
    config = json.loads((export / "finetune_config.json").read_text())
    assert config["full"] is True and (config["task"], config["prompt"], config["seed"]) == (
        "lowlight",
        "adaptive",
        0,
    )
    assert (config["model"], config["family"], config["frames"], config["height"]) == (
        "tiny",
        "cogvideox",
        9,
        64,
    )
    summary = json.loads((run / "run_summary.json").read_text())
    assert summary["transformer_dir"] == str(export) and "lora_dir" not in summary
    assert summary["params/trainable"] == summary["params/transformer"]
    # the export is the last checkpoint, and training moved the weights
    last = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)["state_dict"]
    exported = transformer_tensors(export)
    assert exported.keys() == {k.removeprefix("transformer.") for k in last}
    assert all(torch.equal(v, last[f"transformer.{k}"]) for k, v in exported.items())
    base = tiny_full_module.transformer.state_dict()
    assert any(not torch.equal(v, base[k]) for k, v in exported.items()), "training changed the weights"
    # diffusers reads the export with the transformer class's own from_pretrained
    reloaded = type(tiny_full_module.transformer).from_pretrained(str(export))
    assert all(torch.equal(v, exported[k]) for k, v in reloaded.state_dict().items())


def test_resume_from_a_full_checkpoint_matches_the_uninterrupted_run(straight_run, tmp_path):
    from src.models.checkpoint_error import CheckpointError
    from src.training.run import train
    from src.training.validate import validate_config

    checkpoint = straight_run / "checkpoints" / "step000002.ckpt"
    resumed = tmp_path / "resumed"
    train(full_cfg("tiny", resumed, "lr_scheduler.total_steps=4", f"ckpt_path={checkpoint}"), resumed)
    reference, weights = (
        transformer_tensors(straight_run / "transformer"),
        transformer_tensors(resumed / "transformer"),
    )
    assert weights.keys() == reference.keys()
    for key in reference:
        assert torch.equal(weights[key], reference[key]), key
    early = torch.load(checkpoint, map_location="cpu", weights_only=True)["state_dict"]
    assert any(not torch.equal(early[f"transformer.{k}"], v) for k, v in reference.items()), "it trained on"
    # a full checkpoint does not resume into a LoRA run (and the message says why)
    lora_run = compose_train(*FAST, f"ckpt_path={checkpoint}", "lr_scheduler.total_steps=4")
    with pytest.raises(CheckpointError, match="lora.full: checkpoint True, this run False"):
        validate_config(lora_run)


@pytest.fixture(scope="module", params=["tiny", "tiny_wan"])
def trained_module(request, tmp_path_factory):
    """(module, run dir): 2 lora=none steps trained here, exported and checkpointed as train() does."""
    import lightning as L

    from src.training.builders import build_datamodule, build_module

    run = tmp_path_factory.mktemp(f"full_{request.param}")
    cfg = full_cfg(request.param, run)
    module = build_module(cfg)
    datamodule = build_datamodule(cfg)
    trainer = L.Trainer(
        max_steps=2,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        limit_val_batches=0,
        default_root_dir=run,
    )
    trainer.fit(module, datamodule=datamodule)
    trainer.save_checkpoint(run / "checkpoints" / "last.ckpt")
    lora_cfg = OmegaConf.to_container(cfg.lora, resolve=True)
    extra = {"task": cfg.task.name, "prompt": cfg.prompt.mode, "seed": cfg.seed}
    assert module.backbone.export_trained(module.transformer, run, lora_cfg, extra) == run / "transformer"
    return module.eval(), run


def test_restorer_of_a_full_run_generates_with_the_fine_tuned_weights(trained_module):
    from src.models.checkpoints import resolve_checkpoint
    from src.models.restorer import load_restorer

    module, run = trained_module
    name = module.backbone.name
    tuned = module.transformer.state_dict()
    first = torch.rand(1, 3, 64, 112, generator=torch.Generator().manual_seed(1))
    prompts, seed = ["a test scene brightens"], 3
    expected = module.generate(first, prompts, [seed]).cpu()
    base = backbone(name, *STEPS)
    base.bind(base.load(), cache=False)
    base_frames = base.generate(first, prompts, [torch.Generator().manual_seed(seed)], use_cache=False).cpu()
    assert not torch.equal(base_frames, expected), "training changed what the model generates"
    for ckpt in (run, run / "transformer", run / "checkpoints" / "last.ckpt"):
        info = resolve_checkpoint(ckpt)
        assert info.full and info.lora_dir is None and info.config["model"] == name
        restorer = load_restorer(info, STEPS, device="cpu")
        loaded = restorer.backbone.components.transformer.state_dict()
        assert loaded.keys() == tuned.keys() and all(torch.equal(loaded[k], tuned[k]) for k in tuned), ckpt
        assert torch.equal(restorer.trajectories(first, prompts, seed), expected), ckpt
        assert restorer.description["checkpoint"] == str(info.source)


def test_a_damaged_transformer_export_fails_before_the_model_loads(trained_module, tmp_path):
    import shutil

    from src.models.checkpoint_error import CheckpointError
    from src.models.checkpoints import resolve_checkpoint

    module, run = trained_module
    broken = tmp_path / "transformer"
    shutil.copytree(run / "transformer", broken)
    weights = broken / "diffusion_pytorch_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="truncated or damaged"):
        resolve_checkpoint(broken)
    weights.unlink()
    with pytest.raises(CheckpointError, match="holds no"):
        resolve_checkpoint(broken)


REFUSAL = "lora=none (full fine-tuning) of {} does not fit one GPU: shard it with trainer=fsdp"


@pytest.mark.parametrize("model", BIG_MODELS)
def test_full_finetuning_of_a_5b_model_is_refused_before_any_weight_is_looked_for(model):
    from src.models.family import ModelWeightsMissing
    from src.training.validate import validate_config

    assert not backbone(model).supports_full_finetune and backbone("tiny").supports_full_finetune
    with pytest.raises(ConfigError) as refused:
        validate_config(compose_train(f"model={model}", "lora=none"))
    assert str(refused.value).startswith(REFUSAL.format(model))
    # sharded (trainer=fsdp: FSDP2 per block) it is allowed: what stops it here is the missing GPU
    from src.utils.cli import UserError

    with pytest.raises(UserError) as sharded:
        validate_config(compose_train(f"model={model}", "lora=none", "trainer=fsdp"))
    assert "GPU" in str(sharded.value) and "does not fit" not in str(sharded.value), str(sharded.value)
    try:  # the weights are absent here: LoRA gets as far as looking for them
        validate_config(compose_train(f"model={model}"))
    except ModelWeightsMissing:
        pass


def test_the_refusal_is_one_line_on_the_command_line(tmp_path):
    result = run_module(
        "src.train",
        "model=wan2.2_ti2v_5b",
        "lora=none",
        "logger=none",
        f"hydra.run.dir={tmp_path}",
        timeout=120,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 2 and REFUSAL.format("wan2.2_ti2v_5b") in output, output[-2000:]
    assert "Traceback" not in output
