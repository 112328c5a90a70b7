"""make bench-video: video restoration on CPU with the tiny model (issue 15's acceptance).

    python -m src.benchmarks.video [--videos 5] [--frames 16] [--clip-seconds 10]

Steps (each resumable: a finished step's output under outputs/bench_video is reused):

1. the default run of each task (``python -m src.train task=<task> prompt=adaptive logger=csv``);
2. ``python -m src.eval data=video ckpt=<run>`` per task: held-out photographs (Set5, never trained
   on) moved by known camera paths (pan, zoom, static, tilt) and degraded by the task (constant in
   time), every consistency setting of conf/eval_data/video.yaml, the degraded input and the
   classical baseline: per-frame PSNR / SSIM / LPIPS, warping error against the ground truth's
   flow and occlusions, flicker;
3. a ``--clip-seconds`` clip at 24 fps at the tiny model's resolution (112 x 64) with audio through
   ``python -m src.restore``: frames/s and peak RSS, with the RSS after every batch (bounded memory);
4. a 2-second 29.97 fps (30000/1001) clip with audio: the output's rate, frame count, duration and
   audio.

Writes experiments/benchmarks/video.{json,md}, video_settings.png and video_frames.png. Acceptance (issue 15): per
task, the best setting cuts warping error by >= 30 % against noise=independent within 0.3 dB of
its mean PSNR; the clip restores with bounded memory; 29.97 fps and the audio come out unchanged.
The bad-video messages are in experiments/benchmarks/bad_inputs.md (make bench-errors).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from src.benchmarks.common import machine_info
from src.benchmarks.video_steps import OUT, RUNS, TASKS, clip_checks, evaluate, render, restore_clip, train
from src.utils.config import PROJECT_ROOT


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=5, help="held-out photographs per task (Set5 has 5)")
    parser.add_argument("--frames", type=int, default=16, help="frames per synthetic video")
    parser.add_argument("--clip-seconds", type=float, default=10.0, help="length of the 24 fps clip")
    args = parser.parse_args(argv)
    RUNS.mkdir(parents=True, exist_ok=True)
    started = time.time()
    runs = {task: train(task) for task in TASKS}
    tasks = {task: evaluate(task, runs[task], args.videos, args.frames) for task in TASKS}
    long_name = f"clip_{args.clip_seconds:g}s_24fps"
    clips = {
        long_name: restore_clip(long_name, runs["sr"], int(round(args.clip_seconds * 24)), "24"),
        "clip_2s_29.97fps": restore_clip("clip_2s_29.97fps", runs["sr"], 60, "30000/1001"),
    }
    checks = {name: clip_checks(clip) for name, clip in clips.items()}
    long_clip = clips[long_name]
    growth = long_clip["rss_mb_last_batch"] - long_clip["rss_mb_after_first_batch"]
    record = {
        "machine": machine_info(),
        "videos": args.videos,
        "frames": args.frames,
        "runs": {task: str(path.relative_to(PROJECT_ROOT)) for task, path in runs.items()},
        "tasks": tasks,
        "clips": clips,
        "clip_checks": checks,
        "acceptance": {
            **{
                f"{task}: best setting -30 % warping error within 0.3 dB": metrics["acceptance"]["passed"]
                for task, metrics in tasks.items()
            },
            f"{long_name}: RSS growth from batch 1 to the last batch (MiB)": round(growth, 1),
            f"{long_name}: frames/s": long_clip["frames_per_second"],
            f"{long_name}: peak RSS (MiB)": long_clip["peak_rss_mb"],
            **{f"{name}: {check}": ok for name, c in checks.items() for check, ok in c.items()},
        },
        "benchmark_minutes_this_call": round((time.time() - started) / 60, 1),
    }
    OUT.mkdir(parents=True, exist_ok=True)
    for metrics in tasks.values():
        metrics.pop("videos", None)  # per-video scores stay in the eval dirs (video_metrics.json)
        metrics.pop("data", None)
    (OUT / "video.json").write_text(json.dumps(record, indent=2, default=str) + "\n")
    (OUT / "video.md").write_text(render(record))
    from src.video.figures import plot_video_frames, plot_video_settings

    plot_video_settings(list(tasks.values()), OUT / "video_settings.png")
    shown = {}
    for task, metrics in tasks.items():
        best = metrics["acceptance"]["best_setting"]
        rows = ["independent", "shared"] + ([best] if best and best != "shared" else [])
        shown[task] = (PROJECT_ROOT / metrics["eval_dir"], rows)
    plot_video_frames(shown, OUT / "video_frames.png")
    print(render(record))
    return 0


if __name__ == "__main__":
    sys.exit(main())
