"""Timings of the dataset builder (`make bench-data`, :mod:`src.benchmarks.data_builder`): the floor
(read, fit, write 9 unmodified frames), each task's clips/s, the end-to-end build, and the table."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np
from PIL import Image

from src.data.builder import BuildSpec, build_dataset, build_one, plan_jobs
from src.data.clip_io import write_clip_atomic
from src.data.degradations import TASKS
from src.data.images import bundled_sources, fit_to_output, load_image

SIZES = [(480, 720), (768, 1360), (1080, 1920)]  # (H, W)


TASK_CFG = {"uniform_prompt": "x", "adaptive_template": "{caption}"}


def make_2k_sources(folder: Path) -> Path:
    """DIV2K-sized (2040x1356) PNGs made from the bundled photographs."""
    folder.mkdir(parents=True, exist_ok=True)
    for source in bundled_sources():
        image = Image.fromarray(load_image(source)).resize((2040, 1356), Image.Resampling.BICUBIC)
        image.save(folder / f"{source.key}.png")
    return folder


def time_floor(spec: BuildSpec, sources, rounds: int) -> float:
    """Seconds per clip: read + fit + encode 9 copies of the clean frame."""
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        count = 0
        for source in sources:
            for k in range(spec.clips_per_image):
                frame, _ = fit_to_output(load_image(source), spec.height, spec.width)
                frames = np.repeat(frame[None], spec.frames, axis=0)
                write_clip_atomic(
                    frames,
                    spec.out_dir / "floor" / f"{source.clip_stem}_{k}.mp4",
                    "mp4",
                    spec.fps,
                    spec.encoder,
                )
                count += 1
        best = min(best, (time.perf_counter() - start) / count)
    return best


def time_task(spec: BuildSpec, sources, rounds: int) -> dict:
    """Seconds per clip of the real worker path (render + encode + journal), and its parts."""
    from src.data.builder import render_job

    jobs = plan_jobs(spec, sources)
    (spec.out_dir / ".records").mkdir(parents=True, exist_ok=True)
    best_total, render_times = float("inf"), []
    for _ in range(rounds):
        start = time.perf_counter()
        for job in jobs:
            build_one(spec, job)
        best_total = min(best_total, (time.perf_counter() - start) / len(jobs))
    for job in jobs:
        start = time.perf_counter()
        render_job(spec, job)
        render_times.append(time.perf_counter() - start)
    render = statistics.median(render_times)
    return {"seconds_per_clip": best_total, "render_seconds_median": render}


def end_to_end(task: str, source_dir: Path | None, workdir: Path, workers: int) -> float:
    spec = BuildSpec(task=task, out_dir=workdir / f"e2e_{task}", source_dir=source_dir)
    report = build_dataset(spec, TASK_CFG, "uniform", num_workers=workers, progress=False)
    return report.clips_per_second


def render_markdown(results: dict) -> str:
    machine = results["machine"]
    lines = [
        "# Dataset builder benchmark",
        "",
        f"Machine: {machine['cpu']}, {machine['cores']} cores; Python {machine['python']}, "
        f"numpy {machine['numpy']}, OpenCV {machine['opencv']}, PyAV {machine['pyav']}; {machine['date']}.",
        f"Encoder: {results['encoder']}. One process, one OpenCV thread (as each worker runs); 9 frames.",
        "Regenerate with `make bench-data`.",
        "",
        "## Throughput at 1360x768",
        "",
        "| source | floor clips/s | task | clips/s | % of floor | render s/clip | MB/clip | all-core build clips/s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for label, row in results["throughput"].items():
        floor = row["floor"]["clips_per_s"]
        for task in TASKS:
            r = row[task]
            lines.append(
                f"| {label} | {floor:.2f} | {task} | {r['clips_per_s']:.2f} | {100 * r['fraction_of_floor']:.0f} % | "
                f"{r['render_seconds_median']:.3f} | {r['mb_per_clip']:.1f} | {r['end_to_end_clips_per_s_all_cores']:.2f} |"
            )
    verdicts = []
    for label, row in results["throughput"].items():
        missed = [t for t in TASKS if row[t]["fraction_of_floor"] < 0.5]
        verdicts.append(
            f"{label}: "
            + ("all tasks >= 50 % of the floor" if not missed else f"below 50 %: {', '.join(missed)}")
        )
    lines += [
        "",
        "Target (>= 50 % of the floor): " + "; ".join(verdicts) + ".",
        "Where the time goes: the floor's encoder sees 9 identical frames (8 near-free P-frames); real clips",
        "cost more to encode (the noisy low-light frames most) on top of rendering. Bundled photographs are",
        "tiny and already decoded, so their floor is almost pure encoding and the fraction is lowest there.",
    ]
    if results["sizes"]:
        lines += [
            "",
            "## Seconds per clip vs output size (bundled sources, one process)",
            "",
            "| size (WxH) | floor | sr | deblur | lowlight |",
            "|---|---|---|---|---|",
        ]
        for key, entry in results["sizes"].items():
            lines.append(
                f"| {key} | {entry['floor_seconds_per_clip']:.3f} | {entry['sr_seconds_per_clip']:.3f} | "
                f"{entry['deblur_seconds_per_clip']:.3f} | {entry['lowlight_seconds_per_clip']:.3f} |"
            )
    return "\n".join(lines) + "\n"
