"""Paired LQ/HQ data (V-Bridge): the folder reader's two layouts and bad pairs, the per-category
budget, the resolution curriculum (its switch, its sizes and an exact resume in a stage), and the
drift-correction chain in training, src.restore and src.eval."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from src.data.curriculum import Curriculum, crop_pair
from src.data.paired import PairedDataModule
from src.data.pairs import read_pair, scan_pairs, split_pairs
from src.utils.cli import ConfigError, InputError

from .conftest import run_module

TASK = {"name": "allinone", "uniform_prompt": "Restore it.", "adaptive_template": "{caption} is restored."}
VBRIDGE = {
    "name": "vbridge",
    "reference_size": 960,
    "scale_to_model": True,
    "stages": [{"size": 512, "share": 1}, {"size": 720, "share": 1}, {"size": 960, "share": 1}],
}


def _photo(seed: int, height: int = 48, width: int = 64) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, (6, 8, 3)).astype(np.uint8)
    return np.asarray(Image.fromarray(base).resize((width, height), Image.Resampling.BICUBIC))


def _save(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path)


@pytest.fixture
def pair_root(tmp_path) -> Path:
    """<root>/<category>/LQ|GT with 4 good pairs per category plus every kind of bad pair."""
    root = tmp_path / "pairs"
    for c, category in enumerate(("blur", "noise")):
        for i in range(4):
            clean = _photo(10 * c + i)
            _save(root / category / "GT" / f"{i:02d}.png", clean)
            degraded = (clean // 2).astype(np.uint8)
            if category == "blur" and i == 0:  # a x2 low-resolution LQ (RealCE): upscaled, kept
                degraded = degraded[::2, ::2]
            _save(root / category / "LQ" / f"{i:02d}.jpg", degraded)
    _save(root / "noise" / "LQ" / "orphan.png", _photo(99))  # no GT
    _save(root / "noise" / "GT" / "widow.png", _photo(98))  # no LQ
    (root / "noise" / "LQ" / "broken.png").write_bytes(b"not an image")
    _save(root / "noise" / "GT" / "broken.png", _photo(97))
    _save(root / "blur" / "LQ" / "wide.png", _photo(96, 48, 96))  # aspect 2:1 against 4:3
    _save(root / "blur" / "GT" / "wide.png", _photo(96, 48, 64))
    return root


def test_category_layout_pairs_by_name_and_lists_every_bad_pair(pair_root):
    pairs, skipped = scan_pairs(root=str(pair_root))
    assert sorted(p.key for p in pairs) == [f"{c}/{i:02d}" for c in ("blur", "noise") for i in range(4)]
    assert {p.category for p in pairs} == {"blur", "noise"}
    reasons = {Path(s["path"]).name: s["reason"] for s in skipped}
    assert set(reasons) == {"orphan.png", "widow.png", "broken.png", "wide.png"}
    assert "no HQ partner" in reasons["orphan.png"] and "no LQ partner" in reasons["widow.png"]
    assert "not a readable image" in reasons["broken.png"] and "aspect" in reasons["wide.png"]
    low_res = next(p for p in pairs if p.key == "blur/00")
    lq, hq = read_pair(low_res)
    assert lq.shape == hq.shape == (48, 64, 3)  # the x2 LQ was upscaled to the HQ size


def test_lq_hq_dirs_match_by_relative_path(tmp_path):
    for sub in ("a/x", "b/x", "y"):
        _save(tmp_path / "lq" / f"{sub}.png", _photo(len(sub)))
        _save(tmp_path / "hq" / f"{sub}.jpg", _photo(len(sub)))
    pairs, skipped = scan_pairs(lq_dir=str(tmp_path / "lq"), hq_dir=str(tmp_path / "hq"), category="real")
    assert [p.key for p in pairs] == ["real/a/x", "real/b/x", "real/y"] and not skipped
    with pytest.raises(ConfigError, match="data.hq_dir"):
        scan_pairs(lq_dir=str(tmp_path / "lq"), hq_dir=str(tmp_path / "missing"))
    with pytest.raises(InputError, match="no <category>/LQ"):
        scan_pairs(root=str(tmp_path / "lq"))


def test_per_category_budget_is_seeded_and_holds_out_every_category(pair_root):
    pairs, _ = scan_pairs(root=str(pair_root))
    train, val = split_pairs(pairs, seed=0, per_category=2, val_per_category=1)
    assert not {p.key for p in train} & {p.key for p in val}
    for category in ("blur", "noise"):
        assert sum(p.category == category for p in train) == 2
        assert sum(p.category == category for p in val) == 1
    again, _ = split_pairs(pairs, seed=0, per_category=2, val_per_category=1)
    assert again == train
    other = [split_pairs(pairs, seed=s, per_category=2, val_per_category=1)[0] for s in range(1, 6)]
    assert any(o != train for o in other), "the seed chooses the pairs"


def test_curriculum_sizes_follow_the_model_and_the_family_grid():
    tiny = Curriculum.resolve(VBRIDGE, 1200, 64, 64, 16)
    assert [(s.size, s.first_step, s.end_step) for s in tiny.stages] == [
        (32, 0, 400),
        (48, 400, 800),
        (64, 800, 1200),
    ]
    assert [tiny.size_at(s) for s in (0, 399, 400, 799, 800, 1199, 5000)] == [32, 32, 48, 48, 64, 64, 64]
    wan = Curriculum.resolve(VBRIDGE, 3000, 960, 960, 32)
    assert [s.size for s in wan.stages] == [512, 704, 960]  # 720 -> 704 on Wan2.2's 32 px grid
    assert Curriculum.resolve({"stages": []}, 10, 64, 64, 16).size_at(3) is None
    with pytest.raises(ConfigError, match="max_steps"):
        Curriculum.resolve(VBRIDGE, 2, 64, 64, 16)
    with pytest.raises(ConfigError, match=r"stages\[0\].share"):
        Curriculum.resolve({"stages": [{"size": 32, "share": 0}]}, 10, 64, 64, 16)


def test_crop_pair_resizes_the_short_side_and_crops_both_alike():
    lq, hq = _photo(1, 80, 120), _photo(2, 80, 120)
    a = crop_pair(lq, hq, np.random.default_rng(0), 32, 32)
    b = crop_pair(lq, hq, np.random.default_rng(0), 32, 32)
    assert a[0].shape == a[1].shape == (32, 32, 3)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def _datamodule(root: Path, **overrides) -> PairedDataModule:
    kwargs = dict(
        task="allinone",
        prompt_mode="uniform",
        task_prompts=TASK,
        degradation={},
        height=64,
        width=64,
        frames=5,
        seed=3,
        source="folders",
        root=str(root),
        per_category=3,
        val_per_category=1,
        train_clips_per_epoch=12,
        batch_size=2,
        curriculum=VBRIDGE,
        max_steps=6,
    )
    return PairedDataModule(**{**kwargs, **overrides})


def test_curriculum_switches_size_at_stage_boundaries_and_resumes_exactly(pair_root):
    dm = _datamodule(pair_root)
    dm.setup()
    straight = list(dm.train_dataloader())
    assert [b["frames"].shape[-1] for b in straight] == [32, 32, 48, 48, 64, 64]
    for batch in straight:
        frames = batch["frames"]
        assert frames.shape[1:3] == (5, 3) and frames.shape[-2] == frames.shape[-1]
        assert batch["category"] and all(
            k.startswith(c) for k, c in zip(batch["key"], batch["category"], strict=True)
        )
    # a run resumed after 3 batches (the middle of stage 2) sees the same samples at the same sizes
    resumed = _datamodule(pair_root)
    resumed.setup()
    resumed.set_batches_done(3)
    tail = list(resumed.train_dataloader())[:3]
    for ours, theirs in zip(tail, straight[3:], strict=True):
        assert ours["key"] == theirs["key"] and torch.equal(ours["frames"], theirs["frames"])
    val = next(iter(dm.val_dataloader()))
    assert val["frames"].shape[-2:] == (64, 64)  # validation at the model's size
    # the pseudo-temporal sequence: frame 0 the LQ, the last the HQ, linear in between
    frames = val["frames"][0]
    middle = (frames[0] + frames[-1]) / 2
    assert torch.allclose(frames[2], middle, atol=1 / 255 + 1e-6)


def test_paired_run_lists_its_pairs_logs_crop_sizes_and_refuses_bad_setups(pair_root, tmp_path):
    run = tmp_path / "run"
    result = run_module(
        "src.train",
        "task=allinone",
        "data=paired",
        f"data.root={pair_root}",
        "data.per_category=3",
        "data.val_per_category=1",
        "data.batch_size=2",
        "data.train_clips_per_epoch=12",
        "model=tiny_wan",
        "model.height=64",
        "model.width=64",
        "model.frames=5",
        "curriculum=vbridge",
        "trainer.max_steps=3",
        "model.sampling.num_inference_steps=1",
        "logger=csv",
        "trainer.log_every_n_steps=1",
        "export_lora=false",
        f"hydra.run.dir={run}",
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:]
    listing = json.loads((run / "pairs.json").read_text())
    assert listing["seed"] == 0 and len(listing["train"]) == 6 and len(listing["val"]) == 2
    assert len(listing["skipped"]) == 4
    metrics = next(run.rglob("metrics.csv")).read_text().splitlines()
    column = metrics[0].split(",").index("train/crop_size")
    sizes = [float(line.split(",")[column]) for line in metrics[1:] if line.split(",")[column]]
    assert sizes == [32.0, 48.0, 64.0]
    bad = run_module("src.train", "task=allinone", "data=synthetic", f"hydra.run.dir={tmp_path / 'bad'}")
    assert bad.returncode == 2 and "data=allinone" in bad.stdout + bad.stderr
    bad = run_module("src.train", "curriculum=vbridge", f"hydra.run.dir={tmp_path / 'bad2'}")
    assert bad.returncode == 2 and "data=paired" in bad.stdout + bad.stderr


def test_drift_chain_trains_on_stage1_outputs_and_chains_in_restore_and_eval(pair_root, tmp_path):
    """Stage 1 on pairs, its outputs cached as stage 2's LQ, stage 2 trained on them; restore and
    eval chain the two (eval reports both, per category)."""
    common = [
        "task=allinone",
        "data=paired",
        "data.per_category=3",
        "data.val_per_category=1",
        "data.batch_size=2",
        "data.train_clips_per_epoch=4",
        "model=tiny_wan",
        "model.height=64",
        "model.width=64",
        "trainer.max_steps=2",
        "model.sampling.num_inference_steps=2",
        "logger=none",
        "validate=false",
    ]
    stage1 = tmp_path / "stage1"
    result = run_module("src.train", *common, f"data.root={pair_root}", f"hydra.run.dir={stage1}")
    assert result.returncode == 0, result.stdout[-3000:]
    stage2 = tmp_path / "stage2"
    pairs = stage1 / "drift" / "pairs"
    result = run_module(
        "src.train",
        *common,
        f"drift.stage1={stage1}",
        f"data.root={pairs}",
        "model.frames=5",
        f"hydra.run.dir={stage2}",
    )
    assert result.returncode == 0, result.stdout[-3000:]
    manifest = json.loads((stage1 / "drift" / "manifest.json").read_text())
    assert manifest["complete"] and manifest["pairs"] == 6
    lq_files = sorted(pairs.rglob("LQ/*.png"))
    assert len(lq_files) == 6 and len(sorted(pairs.rglob("GT/*.png"))) == 6
    # cached: a second call generates nothing (the files stay as they are)
    from src.training.drift import build_correction_pairs

    stamps = [f.stat().st_mtime_ns for f in lq_files]
    build_correction_pairs(stage1, seed=0)
    assert [f.stat().st_mtime_ns for f in lq_files] == stamps
    with pytest.raises(ConfigError, match="another checkpoint or other sampling"):
        build_correction_pairs(stage1, seed=1)
    # restore: 9 stage-1 frames then 4 correction frames; restored.png is the chain's output
    out = tmp_path / "restored"
    image = tmp_path / "in.png"
    _save(image, _photo(5, 64, 64))
    result = run_module(
        "src.restore",
        f"input={image}",
        f"ckpt={stage1}",
        f"drift={stage2}",
        f"out_dir={out}",
        "num_inference_steps=2",
    )
    assert result.returncode == 0, result.stdout[-3000:]
    record = json.loads((out / "in" / "restore.json").read_text())
    assert record["stage1_frames"] == 9 and len(list((out / "in" / "frames").glob("*.png"))) == 13
    assert record["drift"]["checkpoint"].startswith(str(stage2))
    # eval: stage 1 and stage 1 + correction side by side, per category
    result = run_module(
        "src.eval",
        f"ckpt={stage1}",
        f"drift={stage2}",
        "data=paired",
        f"data.root={pair_root}",
        "num_inference_steps=2",
        "wandb=false",
        "metrics.ssim_y_channel=true",
        f"hydra.run.dir={tmp_path / 'eval'}",
    )
    assert result.returncode == 0, result.stdout[-3000:]
    metrics = json.loads((tmp_path / "eval" / "frame_metrics.json").read_text())
    assert len(metrics["psnr"]) == 9 and len(metrics["drift"]["psnr"]) == 5
    assert set(metrics["categories"]) == {"blur", "noise"}
    for entry in metrics["categories"].values():
        assert entry["n_images"] == 4 and len(entry["psnr"]) == 9 and len(entry["drift"]["psnr"]) == 5
        assert entry["last"]["psnr"] == entry["psnr"][-1] and entry["input"]["psnr"] > 0
    assert metrics["settings"]["metric_conventions"]["ssim_y_channel"] is True
    overall = np.mean([e["last"]["psnr"] for e in metrics["categories"].values()])
    assert abs(overall - metrics["psnr"][-1]) < 1e-6  # equal-sized categories: the means agree


def test_per_category_records_average_each_category_alone():
    """src.eval's ``categories``: per-frame means, last frame, input, baseline and drift of the
    images of each category only (hand-computed)."""
    from types import SimpleNamespace

    from src.evaluation.aggregate import aggregate
    from src.metrics.frame_metrics import summarize_categories

    def scores(*psnrs):
        return [{"psnr": p, "ssim": p / 100, "lpips": None} for p in psnrs]

    def record(category, frames, drift, given):
        return {
            "key": f"{category}/x",
            "category": category,
            "frames": scores(*frames),
            "drift": scores(*drift),
            "input": scores(given)[0],
            "baseline": {"name": "b", **scores(given + 1)[0]},
            "first_frame_colour_error": 0.0,
        }

    per_image = [
        record("haze", [10, 12, 14], [14, 15], 11),
        record("haze", [12, 14, 18], [18, 21], 13),
        record("noise", [20, 20, 20], [20, 19], 22),
    ]
    restorer = SimpleNamespace(task="allinone", prompt_mode="uniform")
    metrics = aggregate(per_image, restorer, "allinone", has_lpips=False)
    haze, noise = metrics["categories"]["haze"], metrics["categories"]["noise"]
    assert haze["n_images"] == 2 and haze["psnr"] == [11, 13, 16] and haze["last"]["psnr"] == 16
    assert haze["input"]["psnr"] == 12 and haze["baseline"]["psnr"] == 13
    assert haze["drift"]["psnr"] == [16, 18] and haze["drift"]["last"]["psnr"] == 18 and haze["lpips"] is None
    assert noise["last"]["psnr"] == 20 and noise["input"]["psnr"] == 22
    assert metrics["psnr"][-1] == pytest.approx((14 + 18 + 20) / 3)  # over images, not categories
    summary = summarize_categories(metrics["categories"])
    assert summary["mean_last_psnr"] == pytest.approx(18) and summary[
        "mean_drift_last_psnr"
    ] == pytest.approx(18.5)
    assert summary["categories_beating_input_psnr"] == 1 and summary["n_categories"] == 2
