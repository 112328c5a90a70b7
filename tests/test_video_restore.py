"""Restoring videos (src.video.restore, python -m src.restore input=clip.mp4): every frame, the exact
frame rate and audio, batches without seams, the noise rule, and nothing half-written on failure.
The CLI's bad videos (corrupt, truncated, zero-frame, audio-only, huge, unwritable) are in
tests/test_bad_inputs.py::test_restore_video_bad_inputs."""

from __future__ import annotations

import json
from fractions import Fraction

import numpy as np
import pytest

from src.utils.cli import ConfigError, InputError
from src.video import io as vio
from src.video.restore import FrameRestorer, VideoOptions, restore_video

from .conftest import run_module

STEPS = "num_inference_steps=2"


class StandInRestorer:
    """The Restorer interface restore_video uses, without a model: frame k of a trajectory moves
    the input towards its negative, plus noise drawn from the sample's seed (so the noise rule is
    visible in the output)."""

    frames, task = 5, "lowlight"
    description = {"model": "stand-in"}

    def __init__(self):
        self.calls = []

    def restore_batch(self, images, prompt, seeds, mode, overlap, tile_batch, early_stop):
        self.calls.append(list(seeds))
        out = []
        for image, seed in zip(images, seeds, strict=True):
            noise = np.random.default_rng(seed).normal(0, 12, image.shape)
            steps = [
                image * (1 - t) + (255 - image.astype(np.float64)) * t + noise * t
                for t in np.linspace(0, 1, self.frames)
            ]
            out.append(np.clip(np.stack(steps), 0, 255).round().astype(np.uint8))
        return np.stack(out)


def _clip_frames(count=7, height=24, width=32):
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (height, width + count, 3), dtype=np.uint8)
    return np.stack([base[:, i : i + width] for i in range(count)])


def test_batches_leave_no_seam_colour_and_blend_carry_across_them():
    """The outputs must not depend on where the batches split the clip: colour correction's running
    reference and the temporal blend carry their state from one batch to the next."""
    frames = _clip_frames()
    options = VideoOptions(color="adain", blend=0.5, noise="independent")
    results = {}
    for batch in (1, 3, 7):
        restorer = FrameRestorer(StandInRestorer(), "p", options)
        outputs = [restorer(frames[i : i + batch])[0] for i in range(0, len(frames), batch)]
        results[batch] = np.concatenate(outputs)
        assert restorer.done == len(frames)
    assert results[1].shape == frames.shape
    assert np.array_equal(results[1], results[3]) and np.array_equal(results[1], results[7])
    assert restorer.color.reference == "running"  # lowlight: not the dark input


def test_shared_noise_gives_every_frame_the_same_seed_independent_gives_each_its_own():
    frames = np.repeat(_clip_frames(1), 4, axis=0)  # a static clip: four identical frames
    shared_model, independent_model = StandInRestorer(), StandInRestorer()
    shared = FrameRestorer(shared_model, "p", VideoOptions(seed=5, noise="shared"))
    independent = FrameRestorer(independent_model, "p", VideoOptions(seed=5, noise="independent"))
    for start in (0, 2):  # two batches: the frame index is global, not per batch
        same, _ = shared(frames[start : start + 2])
        different, _ = independent(frames[start : start + 2])
    assert shared_model.calls == [[5, 5], [5, 5]]
    assert independent_model.calls == [[5, 6], [7, 8]]
    assert np.array_equal(same[0], same[1]) and not np.array_equal(different[0], different[1])


def test_output_frame_picks_the_trajectory_frame_and_bad_settings_are_refused():
    frames = _clip_frames(2)
    first = FrameRestorer(StandInRestorer(), "p", VideoOptions(output_frame=1))
    outputs, trajectories = first(frames)
    assert np.array_equal(outputs, frames) and trajectories.shape == (2, 5, *frames.shape[1:])
    for bad, message in [
        ({"output_frame": 9}, "trajectories have 5 frames"),
        ({"output_frame": 0}, "1-based"),
        ({"noise": "warped"}, "noise must be one of"),
        ({"blend": 1.0}, r"blend must be in \[0, 1\)"),
        ({"color": "histogram"}, "color must be one of"),
        ({"flow": "raft"}, "flow must be one of"),
        ({"batch": 0}, "batch"),
        ({"early_stop": 1.5}, "early_stop"),
    ]:
        with pytest.raises(ConfigError, match=message):
            FrameRestorer(StandInRestorer(), "p", VideoOptions(**bad))


def test_restore_video_keeps_count_rate_duration_audio_and_odd_sizes(tmp_path):
    clip = vio.make_test_clip(
        tmp_path / "ntsc.mp4", frames=11, width=45, height=31, fps="30000/1001", audio=True
    )
    options = VideoOptions(batch=4, trajectories=True)
    record = restore_video(StandInRestorer(), clip, tmp_path / "out" / "ntsc", "p", options, progress=False)
    folder = tmp_path / "out" / "ntsc"
    assert sorted(p.name for p in folder.iterdir()) == [
        "restore.json",
        "restored.mp4",
        "side_by_side.mp4",
        "trajectories",
    ]
    assert len(list((folder / "trajectories").glob("frame_*.png"))) == 11
    restored = vio.probe_video(folder / "restored.mp4")
    pairs = vio.probe_video(folder / "side_by_side.mp4")
    assert restored.frames == pairs.frames == 11
    assert restored.fps == pairs.fps == Fraction(30000, 1001)
    assert restored.has_audio and pairs.has_audio and record["audio"] == "copied"
    assert abs(restored.duration_s - vio.probe_video(clip).duration_s) < 1 / 29.97
    assert (restored.width, restored.height) == (46, 32) == (vio.probe_video(clip).width, 32)
    assert record["padded_to"] is None and pairs.width == 2 * 46
    saved = json.loads((folder / "restore.json").read_text())
    assert (
        saved["fps"] == "30000/1001" and saved["frames"] == 11 and saved["consistency"]["noise"] == "shared"
    )
    assert saved["peak_rss_mb"] > 0 and len(saved["rss_mb_per_batch"]) == 3  # 11 frames in batches of 4


def test_a_folder_of_odd_sized_frames_at_a_given_rate(tmp_path):
    from PIL import Image

    frames = tmp_path / "frames"
    frames.mkdir()
    for i, frame in enumerate(_clip_frames(3, height=31, width=45)):
        Image.fromarray(frame).save(frames / f"{i:03d}.png")
    options = VideoOptions(frame_rate="24000/1001", side_by_side=False)
    record = restore_video(StandInRestorer(), frames, tmp_path / "out", "p", options, progress=False)
    restored = vio.probe_video(tmp_path / "out" / "restored.mp4")
    assert (restored.frames, restored.fps) == (3, Fraction(24000, 1001))
    assert (restored.width, restored.height) == (46, 32) and record["padded_to"] == [46, 32]
    assert record["audio"] == "none" and record["outputs"] == ["restored.mp4"]


def test_a_failure_mid_clip_leaves_no_output_folder(tmp_path):
    """A folder of frames whose 4th frame has another size fails after three frames were restored
    and encoded: nothing may be left that looks like a finished restore."""
    from PIL import Image

    frames = tmp_path / "frames"
    frames.mkdir()
    for i, frame in enumerate(_clip_frames(6)):
        image = frame if i != 3 else frame[:20]
        Image.fromarray(np.ascontiguousarray(image)).save(frames / f"{i:03d}.png")
    out = tmp_path / "out"
    with pytest.raises(InputError, match="size"):
        restore_video(StandInRestorer(), frames, out / "frames", "p", VideoOptions(batch=3), progress=False)
    assert not out.exists() or list(out.iterdir()) == []


@pytest.mark.slow
def test_restore_cli_on_a_video_with_audio(trained_run, tmp_path):
    clip = vio.make_test_clip(
        tmp_path / "clip.mp4", frames=5, width=56, height=40, fps="30000/1001", audio=True
    )
    out_dir = tmp_path / "restored"
    result = run_module(
        "src.restore", f"input={clip}", f"ckpt={trained_run}", f"out_dir={out_dir}", STEPS, "batch=2"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    restored = vio.probe_video(out_dir / "clip" / "restored.mp4")
    assert restored.frames == 5 and restored.fps == Fraction(30000, 1001) and restored.has_audio
    summary = json.loads((out_dir / "restore_summary.json").read_text())
    (entry,) = summary["restored"]
    assert entry["kind"] == "video" and entry["frames"] == 5 and entry["restorer"]["task"] == "lowlight"
    assert entry["consistency"]["color_reference"] is None and entry["source"]["has_audio"]


def test_video_options_come_from_the_restore_config():
    from hydra import compose, initialize_config_dir

    from src.utils.config import CONFIG_DIR

    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("restore", overrides=["noise=independent", "early_stop=0.6", "color=wavelet"])
    options = VideoOptions.from_config(cfg).check()
    assert (options.noise, options.early_stop, options.color) == ("independent", 0.6, "wavelet")
    missing = [name for name in VideoOptions.__dataclass_fields__ if name not in cfg]
    assert missing == [], f"conf/restore.yaml does not document {missing}"


@pytest.mark.slow
def test_eval_data_video_scores_every_setting_against_the_ground_truth(trained_run, tmp_path):
    """src.eval data=video on one held-out photo: every setting, the input and the baseline scored,
    the flow method recorded, the table, the figure and a sample video written; a bad setting fails
    with one message."""
    out = tmp_path / "eval"
    result = run_module(
        "src.eval", "data=video", f"ckpt={trained_run}", STEPS, "max_images=1", "data.frames=4",
        "data.flow=farneback", "wandb=false", "samples=1", f"hydra.run.dir={out}",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((out / "video_metrics.json").read_text())
    settings = ["independent", "shared", "shared_early0.6", "shared_adain", "shared_wavelet", "shared_blend0.5",
                "shared_wavelet_blend0.5"]  # fmt: skip
    assert list(metrics["methods"]) == [*settings, "input", metrics["baseline"]]
    assert metrics["flow"] == "farneback" and metrics["task"] == "lowlight"
    (video,) = metrics["videos"]
    for name in settings:
        scores = video["methods"][name]
        assert len(scores["psnr"]) == 4 and scores["warping_error"] >= 0 and scores["flicker"] >= 0
    assert video["methods"]["shared"]["psnr"] != video["methods"]["independent"]["psnr"]
    acceptance = metrics["acceptance"]
    assert set(acceptance["relative_to_independent"]) == set(settings)
    assert (out / "video_table.md").read_text().count("\n| ") == len(metrics["methods"]) + 1
    assert (out / "video_settings.png").stat().st_size > 10_000
    assert vio.probe_video(next((out / "videos").glob("*/independent.mp4"))).frames == 4

    bad = run_module("src.eval", "data=video", f"ckpt={trained_run}", "+data.settings.x={noise: warped}",
                     f"hydra.run.dir={tmp_path / 'bad'}")  # fmt: skip
    assert bad.returncode == 2 and "noise must be one of" in bad.stderr and "Traceback" not in bad.stderr


@pytest.mark.slow
def test_eval_data_video_on_user_pairs_logs_video_panels_to_wandb(trained_run, tmp_path):
    """data.pairs_dir: (degraded, clean) pairs matched by name (a video file, a folder of frames);
    a name without its pair is left out; W&B gets the settings table, scalars and sample videos."""
    from PIL import Image

    from .wandb_offline import read_offline_run

    pairs = tmp_path / "pairs"
    clean = vio.make_test_clip(pairs / "clean" / "pan.mp4", frames=3, width=48, height=32, fps="25")
    frames = vio.read_all_frames(clean)
    with vio.VideoWriter(pairs / "degraded" / "pan.mp4", 48, 32, Fraction(25)) as writer:
        writer.write((frames // 4).astype(np.uint8))  # a darkened copy
    for folder, scale in (("clean", 1), ("degraded", 4)):
        (pairs / folder / "still").mkdir(parents=True)
        for i in range(3):
            Image.fromarray((frames[0] // scale).astype(np.uint8)).save(
                pairs / folder / "still" / f"{i:02d}.png"
            )
    vio.make_test_clip(pairs / "degraded" / "lonely.mp4", frames=3, width=48, height=32)
    out = tmp_path / "eval"
    result = run_module(
        "src.eval", "data=video", f"ckpt={trained_run}", STEPS, f"data.pairs_dir={pairs}", "data.fps=25",
        "samples=1", f"hydra.run.dir={out}", f"paths.output_dir={tmp_path}",
        env_extra={"WANDB_MODE": "offline", "WANDB_DIR": str(tmp_path)},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((out / "video_metrics.json").read_text())
    assert [v["video"] for v in metrics["videos"]] == ["pan", "still"]
    assert (
        metrics["baseline"] == "gamma+denoise" and metrics["methods"]["input"]["psnr"] < 15
    )  # 1/4 brightness
    history, _ = read_offline_run(next((tmp_path / "wandb").glob("offline-run-*")))
    assert history["eval_video/independent/psnr"][-1] == pytest.approx(
        metrics["methods"]["independent"]["psnr"]
    )
    assert any(key.startswith("eval_video/samples/pan/") for key in history)
