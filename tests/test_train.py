"""Training platform: configs, LoRA-only optimisation, resume, sweeps, W&B, outputs, bad input."""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir

from src.utils.config import CONFIG_DIR

from .conftest import SHARED_DIR, TASK_CFGS, datamodule_kwargs, group_options, run_module
from .wandb_offline import read_offline_run

TINY_WEIGHTS = os.environ.get("PROGRESTORE_TINY_WEIGHTS")  # dev override; default: the shipped file
FAST = [
    "trainer.max_steps=4",
    "data.train_clips_per_epoch=8",
    "data.batch_size=2",
    "data.val_source_dir=null",  # the two held-out bundled photographs: fast and always present
    "model.sampling.num_inference_steps=2",
    "callbacks.model_checkpoint.every_n_train_steps=2",
    "trainer.log_every_n_steps=1",
] + ([f"model.weights={TINY_WEIGHTS}"] if TINY_WEIGHTS else [])


def compose_train(overrides: list[str]):
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose("train", overrides=overrides)


def test_every_combination_of_config_groups_composes(tmp_path):
    """Every combination within each family of groups that interpolate into one another, each
    composed and fully resolved: the data-and-model groups (task, degradation, model, data), the
    presets with what they override (experiment, debug, callbacks, trainer), the loggers (logger,
    callbacks, debug) and the optimisation groups (curriculum, lr_scheduler, lora, prompt). The
    families share no interpolations, so together they cover the full product at a fraction of
    the cost (about 700 compositions)."""
    from omegaconf import OmegaConf

    families = [
        ["task", "degradation", "model", "data"],
        ["experiment", "debug", "callbacks", "trainer"],
        ["logger", "callbacks", "debug"],
        ["curriculum", "lr_scheduler", "lora", "prompt"],
    ]
    options = {g: group_options(g) for family in families for g in family}
    options["experiment"] = [None, *options["experiment"]]
    options["debug"] = [None, *options["debug"]]
    assert set(options["trainer"]) >= {"cpu", "gpu", "ddp"}
    assert set(options["logger"]) >= {"wandb", "csv", "tensorboard", "none"}
    from omegaconf import open_dict

    seen: dict[str, set] = {g: set() for family in families for g in family}
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        for family in families:
            for combo in itertools.product(*(options[g] for g in family)):
                overrides = [f"{g}={o}" for g, o in zip(family, combo, strict=True) if o is not None]
                cfg = compose(
                    "train",
                    # drift.stage1: the drift presets' mandatory stage-1 run dir
                    overrides=[*overrides, f"paths.run_dir={tmp_path}", f"drift.stage1={tmp_path}"],
                    return_hydra_config=True,
                )
                choices = OmegaConf.to_container(cfg.hydra.runtime.choices)
                with open_dict(cfg):
                    del cfg["hydra"]
                # the composed config is the one asked for: Hydra selected exactly these options
                for group, option in zip(family, combo, strict=True):
                    assert choices[group] == option, (group, option, choices[group])
                    seen[group].add(option)
                resolved = OmegaConf.to_container(cfg, resolve=True)
                # 9 frames, or the drift-correction presets' short sequences (drift.frames)
                assert resolved["run_name"] and resolved["model"]["frames"] in (
                    9,
                    resolved["drift"]["frames"],
                )
    # every option file of every group was composed (and nothing else was)
    assert seen == {g: set(options[g]) for g in seen}


def test_instantiable_parts_of_the_default_config(tmp_path):
    import hydra

    cfg = compose_train([f"paths.run_dir={tmp_path}", "logger=csv"])
    callbacks = [hydra.utils.instantiate(node) for node in cfg.callbacks.values()]
    loggers = [hydra.utils.instantiate(node) for node in cfg.logger.values()]
    trainer = hydra.utils.instantiate(cfg.trainer, callbacks=callbacks, logger=loggers)
    assert trainer.max_steps == cfg.trainer.max_steps and len(loggers) == 1
    assert cfg.lora.alpha == cfg.lora.rank and list(cfg.lora.target_modules) == [
        "to_q",
        "to_k",
        "to_v",
        "to_out.0",
    ]


def test_wandb_is_offline_unless_asked(monkeypatch, tmp_path):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    assert compose_train([f"paths.run_dir={tmp_path}"]).logger.wandb.offline is True
    monkeypatch.setenv("WANDB_MODE", "online")
    assert compose_train([f"paths.run_dir={tmp_path}"]).logger.wandb.offline is False
    assert (
        compose_train([f"paths.run_dir={tmp_path}", "logger.wandb.offline=false"]).logger.wandb.offline
        is False
    )


@pytest.fixture(scope="module")
def tiny_module():
    from src.training.builders import build_module

    cfg = compose_train(FAST + ["paths.run_dir=/tmp"])
    return build_module(cfg), cfg


def test_only_lora_parameters_train_and_stay_fp32(tiny_module, tmp_path):
    import lightning as L

    from src.training.builders import build_datamodule

    module, cfg = tiny_module
    trainable = {n for n, p in module.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    assert all(p.dtype == torch.float32 for n, p in module.named_parameters() if "lora_" in n)
    frozen_before = {n: p.detach().clone() for n, p in module.named_parameters() if not p.requires_grad}
    lora_before = {n: p.detach().clone() for n, p in module.named_parameters() if p.requires_grad}
    datamodule = build_datamodule(cfg)
    trainer = L.Trainer(
        max_steps=3,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        limit_val_batches=0,
        default_root_dir=tmp_path,
    )
    trainer.fit(module, datamodule=datamodule)
    for name, value in module.named_parameters():
        if name in frozen_before:
            assert torch.equal(value, frozen_before[name]), f"frozen weight {name} changed"
    assert any(not torch.equal(p, lora_before[n]) for n, p in module.named_parameters() if n in lora_before)


def test_training_and_pipeline_share_components(tiny_module):
    module, _ = tiny_module
    pipeline = module.backbone.pipeline
    assert pipeline.transformer is module.transformer and pipeline.vae is module.vae
    assert pipeline.text_encoder is module.text_encoder


def run_train(*overrides, env_extra=None, timeout=900):
    return run_module("src.train", *overrides, timeout=timeout, env_extra=env_extra)


def lora_tensors(run_dir: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(run_dir / "lora" / "pytorch_lora_weights.safetensors"))


@pytest.mark.slow
def test_cpu_training_writes_every_output_and_offline_wandb_holds_the_curves(tmp_path):
    result = run_train(
        *FAST,
        f"hydra.run.dir={tmp_path / 'run'}",
        f"paths.output_dir={tmp_path}",
        env_extra={"WANDB_DIR": str(tmp_path)},
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    run = tmp_path / "run"
    from src.metrics import frame_metrics

    metrics = json.loads((run / "frame_metrics.json").read_text())
    assert frame_metrics.read(run / "frame_metrics.json") == {**metrics, "lpips": metrics["lpips"]}
    assert set(metrics) >= set(frame_metrics.REQUIRED_KEYS)
    assert metrics["mean"] == frame_metrics.frame_means(metrics["psnr"], metrics["ssim"], metrics["lpips"])
    assert metrics["task"] == "lowlight" and metrics["prompt"] == "adaptive"
    assert metrics["frames"] == list(range(1, 10)) and len(metrics["psnr"]) == 9 == len(metrics["ssim"])
    assert metrics["n_images"] == 2
    if (SHARED_DIR / "weights" / "lpips" / "alexnet_features.pth").is_file():  # always so in CI
        assert len(metrics["lpips"]) == 9 and all(0 < v < 1 for v in metrics["lpips"])
        assert 0 < metrics["input_lpips"] < 1
    else:
        assert metrics["lpips"] is None, "no LPIPS weights: null, never a made-up number"
    assert metrics["temporal"]["warping_error"] > 0 and metrics["temporal"]["flicker"] > 0, "frames move"
    assert all(0 < p < 100 for p in metrics["psnr"]) and all(-1 <= s <= 1 for s in metrics["ssim"])
    assert metrics["mean"]["psnr_f2_9"] == pytest.approx(sum(metrics["psnr"][1:]) / 8)
    assert metrics["mean"]["ssim_f1_9"] == pytest.approx(sum(metrics["ssim"]) / 9)
    colour = metrics["first_frame_colour_error"]
    assert 0 <= colour["mean"] <= colour["max"] <= 255
    summary = json.loads((run / "run_summary.json").read_text())
    assert 0 < summary["params/trainable"] < summary["params/total"]
    checkpoints = sorted((run / "checkpoints").glob("*.ckpt"))
    assert checkpoints, "adapter checkpoints are written"
    state = torch.load(checkpoints[0], map_location="cpu", weights_only=False)["state_dict"]
    assert state and all("lora_" in k for k in state), "checkpoints never hold the frozen base"
    config = json.loads((run / "lora" / "lora_config.json").read_text())
    assert config["r"] == 16 and config["lora_alpha"] == 16.0 and lora_tensors(run)
    assert (config["frames"], config["height"], config["width"]) == (9, 64, 112)
    assert list((run / "samples").glob("*.gif"))

    offline_runs = list((tmp_path / "wandb").glob("offline-run-*"))
    assert len(offline_runs) == 1
    history, config = read_offline_run(offline_runs[0])
    for frame in range(1, 10):
        assert f"val/psnr/f{frame}" in history and f"val/ssim/f{frame}" in history
    assert history["val/psnr/f9"][-1] == pytest.approx(metrics["psnr"][-1], abs=1e-4)
    assert "train/loss" in history and "train/lr" in history
    assert history["val/temporal/warping_error"][-1] == pytest.approx(metrics["temporal"]["warping_error"])
    if metrics["lpips"]:
        assert history["val/lpips/f9"][-1] == pytest.approx(metrics["lpips"][-1], abs=1e-4)
        assert any(key.startswith("val/lpips_vs_frame") for key in history)
    assert any(key.startswith("val/psnr_vs_frame") for key in history), "the metric-vs-frame chart"
    assert any(key.startswith("val/video/") for key in history), "sample videos"
    assert config["params/trainable"] == summary["params/trainable"]
    assert "lowlight" in str(config["task"]) and "'rank': 16" in str(config["lora"]).replace('"', "'")


@pytest.mark.slow
def test_resume_from_a_checkpoint_matches_an_uninterrupted_run(tmp_path):
    # 4 steps per epoch; checkpoints every 2 steps: resume mid-epoch (2) and at an epoch end (4).
    common = [
        *FAST,
        "trainer.max_steps=8",
        "lr_scheduler.total_steps=8",
        "validate=false",
        "logger=none",
        "callbacks.model_checkpoint.every_n_train_steps=2",
        "trainer.check_val_every_n_epoch=100",
    ]
    straight = run_train(*common, f"hydra.run.dir={tmp_path / 'straight'}")
    assert straight.returncode == 0, straight.stdout[-3000:]
    reference = lora_tensors(tmp_path / "straight")
    for step in (2, 4):
        checkpoint = tmp_path / "straight" / "checkpoints" / f"step{step:06d}.ckpt"
        resumed = run_train(
            *common, f"ckpt_path={checkpoint}", f"hydra.run.dir={tmp_path / f'resumed{step}'}"
        )
        assert resumed.returncode == 0, resumed.stdout[-3000:]
        weights = lora_tensors(tmp_path / f"resumed{step}")
        assert weights.keys() == reference.keys()
        for key in reference:
            assert torch.equal(weights[key], reference[key]), (step, key)
    state = torch.load(
        tmp_path / "straight" / "checkpoints" / "step000002.ckpt", map_location="cpu", weights_only=False
    )
    early = {k.replace(".default", ""): v for k, v in state["state_dict"].items()}
    assert any(not torch.equal(v, reference[k]) for k, v in early.items() if k in reference), (
        "training moved on"
    )
    # train=false + ckpt_path evaluates a checkpoint without training.
    evaluated = run_train(
        *FAST,
        "train=false",
        "export_lora=false",
        "logger=none",
        f"ckpt_path={tmp_path / 'straight' / 'checkpoints' / 'last.ckpt'}",
        f"hydra.run.dir={tmp_path / 'eval'}",
    )
    assert evaluated.returncode == 0, evaluated.stdout[-3000:]
    assert "Restoring states from the checkpoint" in evaluated.stdout + evaluated.stderr
    assert len(json.loads((tmp_path / "eval" / "frame_metrics.json").read_text())["psnr"]) == 9


@pytest.mark.slow
def test_multirun_sweep_keeps_going_when_a_job_fails(tmp_path):
    result = run_train(
        "-m",
        *FAST,
        "logger=csv",
        "lora.rank=0,4",
        "validate=false",
        "trainer.check_val_every_n_epoch=100",
        f"hydra.sweep.dir={tmp_path}",
    )
    # the sweep went on after the failed job, and its exit status and summary say one failed
    assert result.returncode == 1, result.stdout[-3000:]
    assert "2 job(s), 1 done, 1 failed" in result.stderr
    jobs = sorted(p for p in tmp_path.iterdir() if p.is_dir() and not p.name.startswith("."))
    assert len(jobs) == 2
    failed = [j for j in jobs if (j / "FAILED.txt").exists()]
    assert len(failed) == 1 and "lora.rank must be >= 1" in (failed[0] / "FAILED.txt").read_text()
    ok = [j for j in jobs if j not in failed][0]
    assert (ok / "lora" / "pytorch_lora_weights.safetensors").exists()
    assert json.loads((ok / "lora" / "lora_config.json").read_text())["r"] == 4


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["lora.rank=0"], "lora.rank must be >= 1"),
        (["model.frames=10"], "4k+1"),
        (["model.height=60"], "multiple of 8"),
        (["task=denoise"], "Could not find 'task/denoise'"),
        (["data=dataset", "data.dataset_dir=/nonexistent/ds"], "does not exist"),
    ],
)
def test_bad_input_fails_fast_with_one_message(overrides, message, tmp_path):
    weights = [f"model.weights={TINY_WEIGHTS}"] if TINY_WEIGHTS else []
    result = run_train(*weights, *overrides, f"hydra.run.dir={tmp_path}", "logger=none", timeout=120)
    output = result.stdout + result.stderr
    assert result.returncode != 0 and message in output, output[-2000:]
    assert "Traceback" not in output


def test_dataset_source_checks_alignment_and_skips_corrupt_clips(tmp_path):
    from src.data.builder import BuildSpec, build_dataset
    from src.data.datamodule import ProgressionDataModule, collate_clips

    spec = BuildSpec(task="lowlight", out_dir=tmp_path / "ds", width=224, height=128, clips_per_image=1)
    build_dataset(spec, TASK_CFGS["lowlight"], "uniform", num_workers=0, progress=False)
    videos = (spec.out_dir / "videos.txt").read_text().splitlines()
    (spec.out_dir / videos[0]).write_bytes(b"\x00" * 100)  # corrupt one clip
    kwargs = datamodule_kwargs("lowlight", "uniform", source="dataset", dataset_dir=str(spec.out_dir))
    datamodule = ProgressionDataModule(**kwargs)
    datamodule.setup("fit")
    train_ids = {e["source"] for e in datamodule.train_set.entries}
    val_ids = {e["source"] for e in datamodule.val_set.entries}
    assert train_ids and val_ids and not train_ids & val_ids, "validation holds out whole source images"
    items = [datamodule.train_set[i] for i in range(len(datamodule.train_set))] + [
        datamodule.val_set[i] for i in range(len(datamodule.val_set))
    ]
    batch = collate_clips(items)
    assert batch["frames"].shape[1:] == (9, 3, 64, 112)
    assert batch["frames"].shape[0] == len(videos) - 1 and batch["skipped"][0].startswith(videos[0])
    datamodule.record_skipped(batch)  # what the module's batch hooks do, in whichever process
    datamodule.record_skipped(batch)  # met again in a later epoch: counted once
    assert datamodule.skipped_clips() == batch["skipped"]
    assert collate_clips([items[i] for i in range(len(items)) if "skipped" in items[i]]) == {
        "skipped": batch["skipped"]
    }, "a batch of only corrupt clips has no frames"

    prompts = spec.out_dir / "prompts_uniform.txt"
    prompts.write_text("\n".join(prompts.read_text().splitlines()[:-1]) + "\n")
    with pytest.raises(ValueError, match="line-aligned"):
        ProgressionDataModule(**kwargs).setup("fit")


def test_synthetic_data_is_deterministic_and_held_out(tmp_path):
    from src.data.datamodule import ProgressionDataModule

    kwargs = datamodule_kwargs("deblur", "adaptive", val_source_dir=None, seed=3)
    a, b = ProgressionDataModule(**kwargs), ProgressionDataModule(**kwargs)
    a.setup(), b.setup()
    assert torch.equal(a.train_set[5]["frames"], b.train_set[5]["frames"])
    assert not torch.equal(a.train_set[5]["frames"], a.train_set[6]["frames"]), "every clip number a new clip"
    a.set_batches_done(10)  # the stream continues after 10 batches
    assert next(iter(a.train_sampler())) == 10 * a.batch_size
    assert next(iter(b.train_sampler())) == 0
    assert set(a.val_set.keys) == {"coffee", "chelsea"} and not set(a.val_set.keys) & set(a.train_set.keys)
    item = a.val_set[0]
    assert item["frames"].shape == (9, 3, 64, 112) and item["prompt"].startswith("A blurred")


def test_clip_numbering_is_global_across_ranks():
    """Under DDP every rank reads its share of the epoch; the next epoch must start after every
    rank's clips, not after this rank's: no clip number repeats across epochs (with per-rank
    numbering, half of each epoch replayed the previous one), and each rank's batch is a
    contiguous block (one curriculum step)."""
    from src.data.datamodule import ProgressionDataModule
    from src.data.stream import StreamSampler

    module = ProgressionDataModule(**datamodule_kwargs("sr", "uniform", val_source_dir=None))
    module.setup()
    world, seen = 2, []
    samplers = [
        StreamSampler(len(module.train_set), module.batch_size, 0, False, r, world) for r in range(world)
    ]
    for epoch in range(3):
        for sampler in samplers:
            module._train_sampler = sampler
            module.set_batches_done(epoch * sampler.batches, world)
            drawn = list(sampler)
            blocks = [drawn[i : i + module.batch_size] for i in range(0, len(drawn), module.batch_size)]
            assert all(b == list(range(b[0], b[0] + len(b))) for b in blocks), (
                "one contiguous block per batch"
            )
            seen += drawn
    assert len(seen) == len(set(seen)) == 3 * len(module.train_set)
