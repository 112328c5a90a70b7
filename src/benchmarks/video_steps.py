"""The steps of `make bench-video` (:mod:`src.benchmarks.video`): training each task's default run,
its video evaluation, restoring the test clips, the checks on each written clip, and the table."""

from __future__ import annotations

import json
import sys
from fractions import Fraction
from pathlib import Path

from src.benchmarks.common import run_cli
from src.utils.config import PROJECT_ROOT

OUT = PROJECT_ROOT / "experiments" / "benchmarks"


RUNS = PROJECT_ROOT / "outputs" / "bench_video"


TASKS = ("sr", "deblur", "lowlight")


def _timings() -> dict:
    path = RUNS / "timings.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def _timed(name: str, command: list[str]) -> float:
    """Process start-to-exit minutes of ``command``, kept in RUNS/timings.json."""
    timings = _timings()
    timings[name] = run_cli(command)
    (RUNS / "timings.json").write_text(json.dumps(timings, indent=1) + "\n")
    return timings[name]


def train(task: str) -> Path:
    run_dir = RUNS / f"train_{task}"
    if not ((run_dir / "lora").is_dir() and (run_dir / "run_summary.json").is_file()):
        command = [sys.executable, "-m", "src.train", f"task={task}", "prompt=adaptive", "logger=csv"]
        _timed(f"train_{task}", [*command, f"hydra.run.dir={run_dir}"])
    return run_dir


def evaluate(task: str, ckpt: Path, videos: int, frames: int) -> dict:
    out = RUNS / f"eval_{task}_v{videos}_f{frames}"
    if not (out / "video_metrics.json").is_file():
        command = [
            sys.executable, "-m", "src.eval", "data=video", f"ckpt={ckpt}", f"max_images={videos}",
            f"data.frames={frames}", "wandb=false", "samples=1", f"hydra.run.dir={out}",
        ]  # fmt: skip
        _timed(out.name, command)
    metrics = json.loads((out / "video_metrics.json").read_text())
    metrics["eval_dir"] = str(out.relative_to(PROJECT_ROOT))
    metrics["eval_minutes"] = _timings().get(out.name)
    return metrics


def stream_seconds(path: Path, kind: str) -> float | None:
    """Duration of the first ``kind`` (video / audio) stream of ``path``, from its own time base."""
    import av

    with av.open(str(path)) as container:
        streams = getattr(container.streams, kind)
        if not streams or streams[0].duration is None:
            return None
        return float(streams[0].duration * streams[0].time_base)


def restore_clip(name: str, ckpt: Path, frames: int, fps: str) -> dict:
    """A synthetic clip with audio restored by ``python -m src.restore`` in its own process."""
    from src.video import io as vio

    folder = RUNS / "clips"
    folder.mkdir(parents=True, exist_ok=True)
    clip = folder / f"{name}.mp4"
    out_dir = RUNS / f"restore_{name}"
    if not (out_dir / name / "restore.json").is_file():
        vio.make_test_clip(clip, frames=frames, width=112, height=64, fps=fps, audio=True, seed=1)
        _timed(
            f"restore_{name}",
            [sys.executable, "-m", "src.restore", f"input={clip}", f"ckpt={ckpt}", f"out_dir={out_dir}"],
        )
    record = json.loads((out_dir / name / "restore.json").read_text())
    source, restored = vio.probe_video(clip), vio.probe_video(out_dir / name / "restored.mp4")
    trace = record["rss_mb_per_batch"]
    return {
        "command": f"python -m src.restore input={clip.relative_to(PROJECT_ROOT)} ckpt={ckpt.relative_to(PROJECT_ROOT)}",
        "source": source.as_dict() | {"path": str(clip.relative_to(PROJECT_ROOT))},
        "output": restored.as_dict()
        | {"path": str((out_dir / name / "restored.mp4").relative_to(PROJECT_ROOT))},
        "frames_per_second": record["frames_per_second"],
        "seconds": record["seconds"],
        "process_minutes": _timings().get(f"restore_{name}"),
        "peak_rss_mb": record["peak_rss_mb"],
        "rss_mb_start": record["rss_mb_start"],
        "rss_mb_after_first_batch": trace[0],
        "rss_mb_max_over_batches": max(trace),
        "rss_mb_last_batch": trace[-1],
        "batches": len(trace),
        "batch": record["options"]["batch"],
        "audio": record["audio"],
        "audio_codec": record["audio_codec"],
        "durations_s": {
            "source_video": stream_seconds(clip, "video"),
            "output_video": stream_seconds(out_dir / name / "restored.mp4", "video"),
            "source_audio": stream_seconds(clip, "audio"),
            "output_audio": stream_seconds(out_dir / name / "restored.mp4", "audio"),
        },
    }


def clip_checks(clip: dict) -> dict:
    d = clip["durations_s"]
    frame = 1 / float(Fraction(clip["source"]["fps"]))
    return {
        "same_frame_count": clip["output"]["frames"] == clip["source"]["frames"],
        "same_rate": clip["output"]["fps"] == clip["source"]["fps"],
        "video_duration_within_one_frame": abs(d["output_video"] - d["source_video"]) <= frame,
        "audio_kept": clip["audio"] == "copied" and d["output_audio"] is not None,
        "audio_duration_within_one_frame": d["output_audio"] is not None
        and abs(d["output_audio"] - d["source_audio"]) <= frame,
    }


def _f(value, digits=2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def render(record: dict) -> str:
    from src.video.evaluate import render_video_table

    m = record["machine"]
    lines = [
        "# Video restoration on CPU (make bench-video)",
        "",
        f"Measured {m['date']} on {m['cores']} cores ({m['cpu']}); tiny CogVideoX-class model, the default run "
        f"of each task (outputs/bench_video/train_<task>). Synthetic videos: {record['videos']} held-out "
        f"photographs (Set5, never trained on) x {record['frames']} frames at 112 x 64, camera paths "
        "pan / zoom / static / tilt / pan, the task's degradation constant in time (fresh sensor noise per frame). "
        "Warping error (x 1e3) uses the ground-truth video's flow and Lai et al.'s occlusion mask "
        "(DIS flow; numbers compare only within one flow method); flicker is the frame-to-frame change a video "
        "adds beyond the ground truth's own. `input` is the degraded video; the classical baseline follows it.",
        "",
        "![quality vs consistency](video_settings.png)",
        "",
        "Frames of the first video of each task (degraded, noise=independent, noise=shared, the best setting, "
        "ground truth):",
        "",
        "![frames per setting](video_frames.png)",
        "",
    ]
    for task, metrics in record["tasks"].items():
        lines += [
            f"## {task}",
            "",
            f"`python -m src.eval data=video ckpt=outputs/bench_video/train_{task} max_images={record['videos']} "
            f"data.frames={record['frames']}` ({_f(metrics.get('eval_minutes'), 1)} min)",
            "",
            render_video_table(metrics).rstrip(),
            "",
        ]
    lines += ["## Acceptance: consistency", "", "| task | best setting | WE vs independent | PSNR vs independent | passed |",
              "|---|---|---|---|---|"]  # fmt: skip
    for task, metrics in record["tasks"].items():
        a = metrics["acceptance"]
        reduction, change = a["best_warping_error_reduction"], a["best_psnr_change_db"]
        we = "n/a" if reduction is None else f"{-100 * reduction:+.1f} %"
        db = "n/a" if change is None else f"{change:+.2f} dB"
        lines.append(f"| {task} | {a['best_setting']} | {we} | {db} | {'yes' if a['passed'] else 'NO'} |")
    lines += ["", "## Long clips and exact rates (python -m src.restore)", ""]
    lines += [
        "| clip | frames | rate in -> out | frames/s | peak RSS MiB | RSS after batch 1 / max / last (MiB) | "
        "video s in -> out | audio in -> out |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, clip in record["clips"].items():
        d = clip["durations_s"]
        lines.append(
            f"| {name} | {clip['source']['frames']} -> {clip['output']['frames']} | {clip['source']['fps']} -> "
            f"{clip['output']['fps']} | {_f(clip['frames_per_second'], 3)} | {_f(clip['peak_rss_mb'], 0)} | "
            f"{_f(clip['rss_mb_after_first_batch'], 0)} / {_f(clip['rss_mb_max_over_batches'], 0)} / "
            f"{_f(clip['rss_mb_last_batch'], 0)} | {_f(d['source_video'], 3)} -> {_f(d['output_video'], 3)} | "
            f"{clip['audio_codec']} {_f(d['source_audio'], 3)} -> {_f(d['output_audio'], 3)} ({clip['audio']}) |"
        )
    lines += [
        "",
        "Peak RSS includes loading the model; the RSS after each batch of "
        f"{next(iter(record['clips'].values()))['batch']} frames shows whether memory grows with the clip.",
        "",
        "## Acceptance",
        "",
    ] + [f"- {k}: {v}" for k, v in record["acceptance"].items()]
    lines += ["", "Bad videos (corrupt, truncated, zero-frame, audio-only, huge, unwritable output): "
              "experiments/benchmarks/bad_inputs.md (`make bench-errors`)."]  # fmt: skip
    return "\n".join(lines) + "\n"
