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
import shutil
import tempfile
from pathlib import Path

import cv2

from src.benchmarks.builder_timing import (
    SIZES,
    end_to_end,
    make_2k_sources,
    render_markdown,
    time_floor,
    time_task,
)
from src.benchmarks.common import machine_info
from src.data.builder import BuildSpec
from src.data.clip_io import EncoderSettings
from src.data.degradations import TASKS
from src.data.images import bundled_sources, list_sources
from src.utils.config import PROJECT_ROOT


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


if __name__ == "__main__":
    main()
