"""Dataset-builder benchmark: clips/s per task next to the floor, and how time grows with size.

    python -m src.benchmarks.data_builder [--rounds 2] [--out experiments/benchmarks]

Floor = reading the source image, fitting it to the output size and writing 9 *unmodified* frames
with the same writer (mp4, same encoder settings): what any builder must pay. Each task's
throughput is reported as a fraction of that floor (target >= 50 %).

Two kinds of source are timed: the bundled scikit-image photographs (small files, cheap to
read) and DIV2K-like 2040x1356 PNGs written from them (so reading costs what DIV2K costs).
Everything runs in one process with one OpenCV thread, as each builder worker does; the
end-to-end build with all cores is reported separately.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from src.data.builder import BuildSpec, build_dataset, build_one, plan_jobs
from src.data.clip_io import EncoderSettings, write_clip_atomic
from src.data.degradations import TASKS
from src.data.images import bundled_sources, fit_to_output, list_sources, load_image
from src.utils.config import PROJECT_ROOT

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


def machine_info() -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import av

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "opencv": cv2.__version__,
        "pyav": av.__version__,
        "date": time.strftime("%Y-%m-%d"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=2, help="repeat each timing, keep the best")
    parser.add_argument("--out", default=str(PROJECT_ROOT / "experiments" / "benchmarks"))
    parser.add_argument("--skip-sizes", action="store_true", help="only 1360x768")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    encoder = EncoderSettings()
    results: dict = {"machine": machine_info(), "encoder": encoder.__dict__, "throughput": {}, "sizes": {}}

    with tempfile.TemporaryDirectory(prefix="bench_data_") as tmp:
        tmp = Path(tmp)
        div2k_dir = make_2k_sources(tmp / "div2k_like")
        for label, source_dir in (("bundled", None), ("div2k_like_2040x1356_png", div2k_dir)):
            sources, _ = list_sources(source_dir)
            base = BuildSpec(task="sr", out_dir=tmp / "floor", source_dir=source_dir, encoder=encoder)
            floor = time_floor(base, sources, args.rounds)
            row = {"floor": {"seconds_per_clip": floor, "clips_per_s": 1 / floor}}
            for task in TASKS:
                spec = BuildSpec(
                    task=task, out_dir=tmp / f"{label}_{task}", source_dir=source_dir, encoder=encoder
                )
                timing = time_task(spec, sources, args.rounds)
                row[task] = {
                    **timing,
                    "clips_per_s": 1 / timing["seconds_per_clip"],
                    "fraction_of_floor": floor / timing["seconds_per_clip"],
                    "mb_per_clip": sum(f.stat().st_size for f in (spec.out_dir / "videos").glob("*.mp4"))
                    / 1e6
                    / len(list((spec.out_dir / "videos").glob("*.mp4"))),
                }
                row[task]["end_to_end_clips_per_s_all_cores"] = end_to_end(
                    task, source_dir, tmp / label, os.cpu_count()
                )
                print(
                    f"[{label}] {task}: {row[task]['clips_per_s']:.2f} clips/s "
                    f"({100 * row[task]['fraction_of_floor']:.0f} % of floor {1 / floor:.2f})",
                    flush=True,
                )
                shutil.rmtree(spec.out_dir, ignore_errors=True)
            results["throughput"][label] = row

        if not args.skip_sizes:
            sources = bundled_sources()[:3]
            for height, width in SIZES:
                key = f"{width}x{height}"
                spec = BuildSpec(
                    task="sr", out_dir=tmp / f"size_{key}", width=width, height=height, clips_per_image=1
                )
                floor = time_floor(spec, sources, args.rounds)
                entry = {"floor_seconds_per_clip": floor}
                for task in TASKS:
                    task_spec = BuildSpec(
                        task=task,
                        out_dir=tmp / f"size_{key}_{task}",
                        width=width,
                        height=height,
                        clips_per_image=1,
                    )
                    entry[f"{task}_seconds_per_clip"] = time_task(task_spec, sources, args.rounds)[
                        "seconds_per_clip"
                    ]
                results["sizes"][key] = entry
                print(f"[size {key}] " + ", ".join(f"{k}={v:.3f}" for k, v in entry.items()), flush=True)

    (out_dir / "data_builder.json").write_text(json.dumps(results, indent=2) + "\n")
    (out_dir / "data_builder.md").write_text(render_markdown(results))
    print(f"wrote {out_dir / 'data_builder.json'} and {out_dir / 'data_builder.md'}")


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


if __name__ == "__main__":
    main()
