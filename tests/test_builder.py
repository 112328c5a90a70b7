"""Dataset builder: layout, determinism across worker counts, resume after a kill, bad inputs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from src.data.build_jobs import RECORDS_DIR, BuildError, BuildSpec, clip_seed
from src.data.builder import build_dataset
from src.data.clip_io import read_clip
from src.data.degradations import DegradationPreset, render_clip
from src.data.images import BUNDLED_PHOTOS
from src.utils.config import PROJECT_ROOT

from .conftest import TASK_CFGS

SMALL = {"width": 256, "height": 144}


def small_spec(out_dir: Path, task: str = "deblur", **overrides) -> BuildSpec:
    return BuildSpec(task=task, out_dir=out_dir, **{**SMALL, **overrides})


def dataset_files(out_dir: Path) -> dict[str, bytes]:
    """Every file that makes up the dataset (timings and absolute paths excluded)."""
    skip = {"build_report.json", "build_manifest.json"}
    return {
        p.relative_to(out_dir).as_posix(): p.read_bytes()
        for p in sorted(out_dir.rglob("*"))
        if p.is_file() and p.name not in skip
    }


def test_layout_is_a_valid_cogvideox_dataset(tmp_path):
    spec = small_spec(tmp_path / "ds", task="sr")
    report = build_dataset(spec, TASK_CFGS["sr"], "adaptive", num_workers=0, progress=False)
    out = spec.out_dir
    videos = (out / "videos.txt").read_text().splitlines()
    assert len(videos) == 2 * len(BUNDLED_PHOTOS) == report.total_clips == report.built
    assert videos[:2] == ["videos/astronaut_c0.mp4", "videos/astronaut_c1.mp4"]
    for name in ("prompt.txt", "prompts_uniform.txt", "prompts_adaptive.txt"):
        assert len((out / name).read_text().splitlines()) == len(videos), name
    assert (out / "prompt.txt").read_text() == (out / "prompts_adaptive.txt").read_text()
    assert set((out / "prompts_uniform.txt").read_text().splitlines()) == {TASK_CFGS["sr"]["uniform_prompt"]}
    records = [json.loads(line) for line in (out / "metadata.jsonl").read_text().splitlines()]
    assert [r["video"] for r in records] == videos
    first = records[0]
    assert first["source"] == "astronaut" and first["task"] == "sr" and first["preset"] == "paper"
    assert first["caption"] == BUNDLED_PHOTOS["astronaut"]
    assert (
        first["prompts"]["adaptive"]
        == f"{BUNDLED_PHOTOS['astronaut'][0].upper()}{BUNDLED_PHOTOS['astronaut'][1:]} sharpens."
    )
    assert first["clip_seed"] == clip_seed(0, "sr", "astronaut", 0)
    assert records[0]["params"] != records[1]["params"], "two clips per image with independent draws"

    # A clip regenerates bit for bit from its metadata record alone.
    from src.data.images import Source, fit_to_output, load_image

    clean, _ = fit_to_output(load_image(Source(first["source_key"])), first["height"], first["width"])
    regenerated = render_clip(first["task"], clean, first["params"])
    decoded = read_clip(out / first["video"])
    assert decoded.shape == (9, 144, 256, 3)
    assert np.abs(decoded.astype(int) - regenerated.astype(int)).mean() < 1.5
    assert np.array_equal(regenerated[-1], clean)


def test_output_is_identical_whatever_the_worker_count(tmp_path):
    reports = {}
    for workers in (0, 2):
        spec = small_spec(tmp_path / f"w{workers}", task="lowlight", fmt="png", clips_per_image=1)
        reports[workers] = build_dataset(
            spec, TASK_CFGS["lowlight"], "uniform", num_workers=workers, progress=False
        )
    a, b = dataset_files(tmp_path / "w0"), dataset_files(tmp_path / "w2")
    assert a.keys() == b.keys() and len(a) > 3 * len(BUNDLED_PHOTOS)
    assert all(a[k] == b[k] for k in a), [k for k in a if a[k] != b[k]][:5]


def test_rerun_reuses_everything_and_settings_changes_are_guarded(tmp_path):
    spec = small_spec(tmp_path / "ds", clips_per_image=1)
    build_dataset(spec, TASK_CFGS["deblur"], num_workers=0, progress=False)
    before = dataset_files(spec.out_dir)
    again = build_dataset(spec, TASK_CFGS["deblur"], num_workers=0, progress=False)
    assert again.built == 0 and again.reused == len(BUNDLED_PHOTOS)
    assert dataset_files(spec.out_dir) == before

    other = small_spec(tmp_path / "ds", clips_per_image=1, seed=1)
    with pytest.raises(BuildError, match="differs in: seed.*overwrite=true"):
        build_dataset(other, TASK_CFGS["deblur"], num_workers=0, progress=False)
    assert dataset_files(spec.out_dir) == before, "a refused build changes nothing"
    report = build_dataset(other, TASK_CFGS["deblur"], num_workers=0, overwrite=True, progress=False)
    assert report.built == len(BUNDLED_PHOTOS) and dataset_files(spec.out_dir) != before

    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("precious")
    with pytest.raises(BuildError, match="not a progrestore dataset"):
        build_dataset(small_spec(foreign), TASK_CFGS["deblur"], num_workers=0, overwrite=True, progress=False)
    assert (foreign / "thesis.tex").read_text() == "precious"


def test_resume_repairs_every_kind_of_leftover(tmp_path):
    spec = small_spec(tmp_path / "ref", clips_per_image=1)
    build_dataset(spec, TASK_CFGS["deblur"], num_workers=0, progress=False)
    reference = dataset_files(spec.out_dir)

    crashed = small_spec(tmp_path / "crashed", clips_per_image=1)
    build_dataset(crashed, TASK_CFGS["deblur"], num_workers=0, progress=False)
    out = crashed.out_dir
    (out / RECORDS_DIR / "coffee_c0.json").unlink()  # clip written, journal not yet
    (out / RECORDS_DIR / "rocket_c0.json").write_text("{trunc")  # corrupt journal entry
    (out / "videos" / "chelsea_c0.mp4").unlink()  # journal without clip
    (out / "videos" / ".astronaut_c0.mp4.tmp-999").write_bytes(b"half")  # killed mid-encode
    (out / "videos.txt").unlink()  # killed before indexing
    report = build_dataset(crashed, TASK_CFGS["deblur"], num_workers=0, progress=False)
    assert report.built == 3 and report.reused == len(BUNDLED_PHOTOS) - 3
    assert dataset_files(out) == reference


@pytest.mark.slow
def test_a_build_killed_mid_way_resumes_to_the_same_dataset(tmp_path):
    args = ["task=sr", "width=640", "height=360", "num_workers=1", "progress=false", "clips_per_image=2"]
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}

    def cli(out_dir: Path, **kwargs):
        command = [sys.executable, "-m", "src.build_dataset", *args, f"out_dir={out_dir}"]
        return subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, start_new_session=True, **kwargs)

    assert cli(tmp_path / "clean").wait(timeout=600) == 0
    reference = dataset_files(tmp_path / "clean")

    killed = tmp_path / "killed"
    process = cli(killed)
    deadline = time.time() + 300
    while time.time() < deadline and len(list((killed / RECORDS_DIR).glob("*.json"))) < 3:
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)  # the whole group: main process and worker
    process.wait()
    done = len(list((killed / RECORDS_DIR).glob("*.json")))
    assert 3 <= done < 2 * len(BUNDLED_PHOTOS), "the kill must land mid-build"
    assert not (killed / "videos.txt").exists()

    assert cli(killed).wait(timeout=600) == 0
    report = json.loads((killed / "build_report.json").read_text())
    assert report["reused"] >= done and report["built"] == report["total_clips"] - report["reused"]
    assert dataset_files(killed) == reference


def test_bad_sources_are_skipped_with_reasons(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    rng = np.random.default_rng(0)
    photo = (rng.random((200, 300, 3)) * 60 + np.linspace(0, 180, 300)[None, :, None]).astype(np.uint8)
    Image.fromarray(photo).save(src / "good.png")
    Image.fromarray(photo[..., 0]).save(src / "gray.png")
    Image.fromarray(np.dstack([photo, np.full(photo.shape[:2], 255, np.uint8)])).save(src / "rgba.png")
    Image.fromarray(photo[..., 1].astype(np.uint16) * 257).save(src / "deep16.png")
    Image.fromarray(photo[:40, :60]).save(src / "tiny.png")
    data = (src / "good.png").read_bytes()
    (src / "cut.png").write_bytes(data[: len(data) // 3])
    (src / "fake.jpg").write_text("hello")
    (src / "README.md").write_text("notes")

    spec = small_spec(tmp_path / "ds", source_dir=src, clips_per_image=1, small_images="skip")
    report = build_dataset(spec, TASK_CFGS["deblur"], "adaptive", num_workers=0, progress=False)
    skipped = {item["source"]: item["skipped"] for item in report.skipped}
    assert set(skipped) == {"cut", "fake", "tiny"}
    assert "truncated" in skipped["cut"] or "corrupt" in skipped["cut"]
    assert "not a readable image" in skipped["fake"] and "smaller than the output" in skipped["tiny"]
    assert report.ignored_files == [["README.md", "not an image file extension (.md)"]]
    assert report.total_clips == 4 and report.uncaptioned_clips == 4
    summary = report.summary()
    assert "skipped 3 source image(s)" in summary and "README.md" in summary and "captions_file" in summary
    prompts = (spec.out_dir / "prompt.txt").read_text().splitlines()
    assert prompts[0] == "A blurred the scene focuses."  # generic subject when no caption exists

    captions = tmp_path / "captions.json"
    captions.write_text(json.dumps({"good.png": "a striped wall"}))
    upscale = small_spec(tmp_path / "ds2", source_dir=src, clips_per_image=1)
    report = build_dataset(
        upscale, TASK_CFGS["deblur"], "adaptive", captions_file=str(captions), num_workers=0, progress=False
    )
    assert report.total_clips == 5 and report.upscaled_sources == 1
    lines = (upscale.out_dir / "prompt.txt").read_text().splitlines()
    videos = (upscale.out_dir / "videos.txt").read_text().splitlines()
    assert lines[videos.index("videos/good_c0.mp4")] == "A blurred a striped wall focuses."


def test_settings_that_cannot_work_fail_before_any_work(tmp_path):
    cases = [
        (dict(task="denoise"), "unknown task"),
        (dict(width=255), "even"),
        (dict(frames=1), "frames must be >= 2"),
        (dict(clips_per_image=0), "clips_per_image"),
        (dict(fmt="gif"), "format"),
        (dict(source_dir=tmp_path / "nope"), "does not exist"),
        (dict(preset=DegradationPreset(lq_dir=str(tmp_path))), "only applies to degradation=interpolate"),
    ]
    for overrides, message in cases:
        out = tmp_path / "never"
        with pytest.raises((BuildError, ValueError), match=message):
            build_dataset(small_spec(out, **overrides), TASK_CFGS["deblur"], num_workers=0, progress=False)
        assert not out.exists(), overrides
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(BuildError, match="holds no images"):
        build_dataset(small_spec(tmp_path / "never", source_dir=empty), TASK_CFGS["deblur"], progress=False)


def test_paired_lq_dir_for_interpolate(tmp_path):
    hq, lq = tmp_path / "hq", tmp_path / "lq"
    hq.mkdir(), lq.mkdir()
    rng = np.random.default_rng(1)
    for name in ("a", "b"):
        Image.fromarray(rng.integers(0, 255, (288, 512, 3), dtype=np.uint8)).save(hq / f"{name}.png")
    Image.fromarray(np.full((72, 128, 3), 30, np.uint8)).save(lq / "a.png")  # 4x smaller LQ, same aspect
    preset = DegradationPreset(name="interpolate", mode="interpolate", lq_dir=str(lq))
    spec = small_spec(tmp_path / "ds", source_dir=hq, preset=preset, clips_per_image=1, fmt="png")
    report = build_dataset(spec, TASK_CFGS["sr"] | {"name": "sr"}, num_workers=0, progress=False)
    assert report.total_clips == 1 and "no LQ image" in report.skipped[0]["skipped"]
    frames = read_clip(spec.out_dir / "frames" / "a_c0")
    assert (frames[0] == 30).all(), "frame 1 is the external LQ image"
    record = json.loads((spec.out_dir / "metadata.jsonl").read_text())
    assert record["mode"] == "interpolate" and record["lq_source"].endswith("a.png")
