"""Restoring and judging with a trained adapter: src.models.restorer (resize and tiled modes),
the src.restore and src.eval CLIs on a short CPU training run's checkpoint, and their errors."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from src.models.restorer import CheckpointError, feather_window, load_restorer, tile_starts

from .conftest import run_module
from .test_train import FAST

pytestmark = pytest.mark.slow
STEPS = "num_inference_steps=2"


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    """A 4-step lowlight run (adapter export, Lightning checkpoints, Hydra config)."""
    run = tmp_path_factory.mktemp("trained") / "run"
    result = run_module("src.train", *FAST, "logger=none", "validate=false", f"hydra.run.dir={run}")
    assert result.returncode == 0, result.stderr[-3000:]
    return run


@pytest.fixture(scope="module")
def restorer(trained_run):
    return load_restorer(trained_run, ["model.sampling.num_inference_steps=2"])


def save(image: np.ndarray, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path)
    return path


def test_tiles_cover_the_image_with_the_requested_overlap():
    assert tile_starts(64, 64, 16) == [0]
    starts = tile_starts(300, 112, 16)
    assert starts[0] == 0 and starts[-1] == 300 - 112
    assert all(b - a <= 112 - 16 for a, b in zip(starts, starts[1:], strict=False))
    window = feather_window(64, 112, 16)
    assert window.min() > 0 and window.max() == 1.0 and window[32, 56] == 1.0
    assert window[0, 56] < window[8, 56] < window[16, 56]
    with pytest.raises(ValueError, match="overlap"):
        tile_starts(300, 112, 112)


def test_tiled_equals_resize_when_the_input_is_one_tile(restorer, photo):
    image = np.ascontiguousarray(photo[: restorer.height, : restorer.width])
    assert image.shape[:2] == (restorer.height, restorer.width)
    prompt = restorer.prompt("a photo")
    resized, _ = restorer.restore(image, prompt, seed=3, mode="resize")
    tiled, info = restorer.restore(image, prompt, seed=3, mode="tiled")
    assert info["tiles"] == 1 and resized.shape == (9, *image.shape)
    assert np.array_equal(resized, tiled)


def test_restore_is_deterministic_and_tiles_a_larger_image_at_full_resolution(restorer, set5_images):
    image = set5_images["bird"][:100, :150]  # 2 x 2 tiles of 64 x 112
    prompt = restorer.prompt(None)
    first, info = restorer.restore(image, prompt, seed=5, mode="tiled", overlap=16, tile_batch=3)
    again, _ = restorer.restore(image, prompt, seed=5, mode="tiled", overlap=16, tile_batch=3)
    rebatched, _ = restorer.restore(image, prompt, seed=5, mode="tiled", overlap=16, tile_batch=4)
    other, _ = restorer.restore(image, prompt, seed=6, mode="tiled", overlap=16, tile_batch=3)
    assert info["tiles"] == 4 and first.shape == (9, 100, 150, 3) and first.dtype == np.uint8
    assert np.array_equal(first, again), "same seed and settings, same frames"
    # another batch size takes other BLAS kernels: float rounding, not a different sample
    rebatch_diff = np.abs(first.astype(int) - rebatched.astype(int))
    seed_diff = np.abs(first.astype(int) - other.astype(int))
    assert rebatch_diff.mean() < 0.05 < seed_diff.mean(), (rebatch_diff.mean(), seed_diff.mean())
    smaller, info = restorer.restore(image[:40, :60], prompt, seed=5, mode="tiled")
    assert smaller.shape == (9, 40, 60, 3) and info["tiles"] == 1  # reflect-padded to one tile


def test_restore_cli_on_a_folder_with_a_corrupt_file(trained_run, set5_images, tmp_path):
    inputs = tmp_path / "in"
    save(set5_images["baby"], inputs / "baby.png")
    save(set5_images["head"][:201, :271], inputs / "sub" / "head.png")  # odd sides
    (inputs / "broken.png").write_bytes(b"\x89PNG not really")
    out = tmp_path / "out"
    result = run_module(
        "src.restore", f"input={inputs}", f"ckpt={trained_run}", STEPS, f"hydra.run.dir={out}", "seed=1",
        "prompt=uniform",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((out / "restore_summary.json").read_text())
    assert sorted(r["name"] for r in summary["restored"]) == ["baby", "sub/head"]
    assert [Path(s["path"]).name for s in summary["skipped"]] == ["broken.png"]
    for name, size in (("baby", (512, 512)), ("sub__head", (271, 201))):
        folder = out / name
        frames = sorted((folder / "frames").glob("frame_*.png"))
        assert len(frames) == 9 and all(Image.open(f).size == size for f in frames)
        assert np.array_equal(
            np.asarray(Image.open(frames[-1])), np.asarray(Image.open(folder / "restored.png"))
        )
        record = json.loads((folder / "restore.json").read_text())
        assert record["seed"] == 1 and record["task"] == "lowlight" and record["mode"] == "resize"
        assert record["prompt_mode"] == "uniform" and "brightens to natural daylight" in record["prompt"]
        import av

        with av.open(str(folder / "trajectory.mp4")) as container:
            decoded = list(container.decode(video=0))
        # H.264 4:2:0 needs even sides: the last row/column is repeated
        assert len(decoded) == 9 and (decoded[0].width, decoded[0].height) == tuple(v + v % 2 for v in size)
        assert Image.open(folder / "trajectory.gif").n_frames == 9
        assert Image.open(folder / "strip.png").size[0] > Image.open(folder / "strip.png").size[1]


def test_restore_cli_bad_inputs_fail_with_one_message(trained_run, tmp_path):
    no_input = run_module("src.restore", f"ckpt={trained_run}")
    assert no_input.returncode == 2 and "input= is required" in no_input.stderr
    empty = run_module("src.restore", f"input={tmp_path}", f"ckpt={trained_run}", STEPS)
    assert empty.returncode == 2 and f"input {tmp_path} holds no images" in empty.stderr
    save(np.zeros((8, 8, 3), np.uint8), tmp_path / "black.png")
    missing = run_module("src.restore", f"input={tmp_path}", f"ckpt={tmp_path / 'nope'}", STEPS)
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    assert "Traceback" not in missing.stderr
    not_a_run = run_module("src.restore", f"input={tmp_path}", f"ckpt={tmp_path}", STEPS)
    assert not_a_run.returncode == 2 and "no LoRA export" in not_a_run.stderr
    corrupt = save(np.zeros((8, 8, 3), np.uint8), tmp_path / "x.png")
    corrupt.write_bytes(b"garbage")
    result = run_module("src.restore", f"input={corrupt}", f"ckpt={trained_run}", STEPS)
    assert result.returncode == 2 and "cannot read" in result.stderr and "Traceback" not in result.stderr


def test_a_checkpoint_of_another_model_or_a_lightning_ckpt(trained_run, photo):
    with pytest.raises(CheckpointError, match="trained on model tiny"):
        load_restorer(trained_run, ["model=cogvideox_5b_i2v"])
    checkpoint = sorted((trained_run / "checkpoints").glob("*.ckpt"))[-1]
    from_ckpt = load_restorer(checkpoint, ["model.sampling.num_inference_steps=2"])
    from_export = load_restorer(trained_run / "lora", ["model.sampling.num_inference_steps=2"])
    image = np.ascontiguousarray(photo[:64, :112])
    a, _ = from_ckpt.restore(image, "a test", seed=0)
    b, _ = from_export.restore(image, "a test", seed=0)
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 1, "the last checkpoint is the exported adapter"


def read_eval(run: Path) -> tuple[dict, list[dict]]:
    metrics = json.loads((run / "frame_metrics.json").read_text())
    with open(run / "metrics.csv") as handle:
        rows = list(csv.DictReader(handle))
    return metrics, rows


def test_eval_synthetic_has_the_training_schema_baselines_and_temporal_scores(trained_run, tmp_path):
    run = tmp_path / "eval"
    result = run_module(
        "src.eval", f"ckpt={trained_run}", "data=synthetic", "max_images=2", STEPS,
        f"hydra.run.dir={run}", f"paths.output_dir={tmp_path}",
        env_extra={"WANDB_MODE": "offline", "WANDB_DIR": str(tmp_path)},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    metrics, rows = read_eval(run)
    from .wandb_offline import read_offline_run

    history, _ = read_offline_run(next((tmp_path / "wandb").glob("offline-run-*")))
    assert history["eval/psnr/f9"][-1] == pytest.approx(metrics["psnr"][-1], abs=1e-4)
    assert history["eval/temporal/warping_error"][-1] == pytest.approx(metrics["temporal"]["warping_error"])
    assert any(key.startswith("eval/lpips_vs_frame") for key in history)
    assert metrics["task"] == "lowlight" and metrics["frames"] == list(range(1, 10))
    assert metrics["n_images"] == 2 and len(metrics["psnr"]) == 9 == len(metrics["ssim"])
    assert len(metrics["lpips"]) == 9 and all(0 < v < 1 for v in metrics["lpips"])  # shared weights (CI)
    assert set(metrics["baselines"]) == {"input", "gamma+denoise"}
    assert metrics["baselines"]["input"]["psnr"] == pytest.approx(metrics["input_psnr"])
    assert metrics["temporal"]["warping_error"] >= 0 and metrics["temporal"]["flicker"] >= 0
    assert len(rows) == 2 * (9 + 2)
    generated = [float(r["psnr"]) for r in rows if r["method"] == "generated" and r["frame"] == "9"]
    assert np.mean(generated) == pytest.approx(metrics["psnr"][-1])
    table = (run / "eval_table.md").read_text()
    assert "degraded input" in table and "gamma+denoise (classical)" in table
    assert len(list((run / "samples").glob("*.png"))) == 2


def test_eval_paired_and_reloblur_layouts(trained_run, set5_images, tmp_path):
    from src.data.degradations import make_clip

    clean = set5_images["butterfly"][:128, :192]
    blurred, _ = make_clip(clean, "deblur", 0)
    save(blurred[0][::2, ::2], tmp_path / "lq" / "butterfly.png")  # half size: bicubic-upscaled first
    save(clean, tmp_path / "hq" / "butterfly.png")
    run = tmp_path / "paired"
    result = run_module(
        "src.eval", f"ckpt={trained_run}", "data=paired", f"data.lq_dir={tmp_path / 'lq'}",
        f"data.hq_dir={tmp_path / 'hq'}", STEPS, "wandb=false", f"hydra.run.dir={run}",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    metrics, _ = read_eval(run)
    assert metrics["data"] == "paired" and metrics["n_images"] == 1 and "masked" not in metrics

    root = tmp_path / "ReLoBlur"
    save(blurred[0], root / "test" / "s01" / "00" / "00_blur.png")
    save(clean, root / "test" / "s01" / "00" / "00_sharp.png")
    mask = np.zeros(clean.shape, np.uint8)
    mask[32:96, 48:144] = 255
    save(mask, root / "masks" / "test" / "s01" / "00" / "00_mask.png")
    wrong_task = run_module("src.eval", f"ckpt={trained_run}", "data=reloblur", f"data.root={root}", STEPS)
    assert wrong_task.returncode == 2 and "deblurring benchmark" in wrong_task.stderr
    run = tmp_path / "reloblur"
    result = run_module(
        "src.eval", f"ckpt={trained_run}", "data=reloblur", f"data.root={root}", "task=deblur", STEPS,
        "wandb=false", f"hydra.run.dir={run}",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    metrics, rows = read_eval(run)
    assert metrics["task"] == "deblur" and metrics["table1_lpips"] == metrics["lpips"]
    assert len(metrics["masked"]["psnr"]) == 9 and len(metrics["masked"]["ssim"]) == 9
    assert metrics["masked"]["psnr"] != metrics["psnr"], "the mask weights the region"
    # no kernel is known for real captures: the classical column is the blind fallback
    assert {r["method"] for r in rows} == {"generated", "input", "unsharp"}
    assert "Table I row" in (run / "eval_table.md").read_text()


def test_eval_bad_settings_fail_before_loading(tmp_path):
    result = run_module("src.eval")
    assert result.returncode == 2 and "ckpt= is required" in result.stderr
    result = run_module("src.eval", f"ckpt={tmp_path}", "data=paired")
    assert result.returncode == 2 and "data.lq_dir" in result.stderr
    result = run_module("src.eval", f"ckpt={tmp_path / 'none'}")
    assert result.returncode == 2 and "does not exist" in result.stderr
