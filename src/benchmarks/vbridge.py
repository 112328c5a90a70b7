"""Benchmark of V-Bridge on CPU (`make bench-vbridge`): experiment=vbridge_tiny end to end, plus
its two ablations, evaluated per category on held-out photographs (Set5: never trained on).

    python -m src.benchmarks.vbridge [--skip-ablations] [extra train overrides ...]

Runs (each resumable: a run dir that already holds its frame_metrics.json is reused):

1. stage 1: ``python -m src.train experiment=vbridge_tiny`` (curriculum 32 -> 48 -> 64, 9 frames);
2. stage 2: ``python -m src.train experiment=vbridge_tiny_drift drift.stage1=<1>`` (stage-1 outputs
   on its 700 training pairs, then the correction adapter on 5-frame sequences);
3. ``python -m src.eval ckpt=<1> drift=<2> data=allinone degradation=allinone
   metrics.ssim_y_channel=true``: every category on Set5, stage 1 and stage 1 + correction;
4. ablation ``curriculum=none`` (every step at 64 px; same steps, batch and data) + eval;
5. ablation ``model.frames=5`` (curriculum on) + eval.

The preset's wall time is 1 + 2 + 3 (process start to exit). Acceptance (issue 28): the last frame
beats the degraded input in PSNR in at least 10 of the 14 categories and on the mean; the drift
correction, curriculum and frame-count effects are reported with their sign and size; the preset
takes under 30 minutes. Writes experiments/benchmarks/vbridge_tiny.{json,md}
and vbridge_tiny_categories.png.
"""

from __future__ import annotations

import argparse
import json
import sys

from src.benchmarks.common import machine_info
from src.benchmarks.vbridge_steps import (
    EVAL,
    OUT,
    RUNS,
    acceptance,
    evaluate,
    render,
    summary,
    train,
    vae_ceiling,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-ablations", action="store_true")
    args, extra = parser.parse_known_args(argv)
    RUNS.mkdir(parents=True, exist_ok=True)
    stage1, t1 = train("stage1", ["experiment=vbridge_tiny", *extra])
    stage2, t2 = train("stage2", ["experiment=vbridge_tiny_drift", f"drift.stage1={stage1}", *extra])
    metrics, t3 = evaluate("preset", stage1, stage2)
    minutes = {"stage 1 train": t1, "stage 2 (outputs + train)": t2, "eval (both stages)": t3}
    preset = None if None in minutes.values() else sum(minutes.values())
    minutes["preset total"] = preset
    record = {
        "machine": machine_info(),
        "held_out": metrics["settings"]["data"].get("source_dir") or "set5 (../shared/data/set5)",
        "preset": {
            "commands": [
                "python -m src.train experiment=vbridge_tiny",
                "python -m src.train experiment=vbridge_tiny_drift drift.stage1=<stage 1>",
                f"python -m src.eval ckpt=<stage 1> drift=<stage 2> {' '.join(EVAL)}",
            ],
            "runs": [str(stage1), str(stage2)],
            "minutes": minutes,
            "eval": metrics,
            "summary": summary(metrics),
        },
        "ablations": [],
    }
    stage1_summary = json.loads((stage1 / "run_summary.json").read_text())
    rows = [("vbridge_tiny (curriculum, 9 frames)", "vbridge", 9, stage1, t1, metrics)]
    if not args.skip_ablations:
        for name, overrides, curriculum, frames in (
            ("no_curriculum", ["curriculum=none"], "none", 9),
            ("frames5", ["model.frames=5"], "vbridge", 5),
        ):
            run_dir, minutes_ = train(name, ["experiment=vbridge_tiny", *overrides, *extra])
            evaluation, _ = evaluate(name, run_dir)
            rows.append((name, curriculum, frames, run_dir, minutes_, evaluation))
    for name, curriculum, frames, run_dir, minutes_, evaluation in rows:
        trained = json.loads((run_dir / "run_summary.json").read_text())
        record["ablations"].append(
            {
                "name": name,
                "curriculum": curriculum,
                "frames": frames,
                "run": str(run_dir),
                "process_minutes": minutes_,
                "train_minutes": trained.get("minutes"),  # fit + validation, as run_summary.json times it
                "summary": summary(evaluation),
                "categories": {
                    k: {"psnr": c["last"]["psnr"], "ssim": c["last"]["ssim"]}
                    for k, c in evaluation["categories"].items()
                },
            }
        )
    record["stage1_global_step"] = stage1_summary["global_step"]
    from src.utils.config import shared_dir

    record["vae_ceiling"] = vae_ceiling(stage1, shared_dir())
    record["acceptance"] = acceptance(metrics, preset)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "vbridge_tiny.json").write_text(json.dumps(record, indent=2, default=str) + "\n")
    (OUT / "vbridge_tiny.md").write_text(render(record))
    try:
        from src.reporting.figures import plot_categories

        plot_categories(
            {**metrics, "label": "stage 1 vs stage 1 + drift"},
            OUT / "vbridge_tiny_categories.png",
            title="vbridge_tiny on Set5",
        )
    except ImportError:  # pragma: no cover - the report's chart is optional here
        pass
    print(render(record))
    return 0


if __name__ == "__main__":
    sys.exit(main())
