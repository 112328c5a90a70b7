"""Benchmark of the default runs: `python -m src.train task=<t> prompt=adaptive` for each task.

    python -m src.benchmarks.train_default [--model tiny_wan] [--tasks sr deblur lowlight] [--figure] [extra overrides ...]

For each task: times the training run end to end (process start to exit), then evaluates its
checkpoint with ``python -m src.eval ckpt=<run> data=synthetic`` on the held-out photographs
(Set5 under ../shared, or $PROGRESTORE_SHARED; never used in pretraining or training), with the
degraded input and the task's classical baseline in the same table, and checks the acceptance
criteria (issue 28):

- the run takes at most 15 minutes on this machine;
- the last generated frame beats the degraded input I_1 in PSNR, SSIM and LPIPS (sr, whose
  frame 1 keeps 5-25 % of the size: LPIPS beats it, PSNR and SSIM at least the input's minus
  0.5 dB and minus 0.02);
- per-frame PSNR rises in at least 7 of the 8 frame-to-frame steps;
- frame 1 keeps the photo's colours: mean colour within 3/255 of I_1 per channel on every image.

Writes experiments/benchmarks/train_<task>.json, train_default.{json,md} (all tasks) and, with
``--figure``, experiments/benchmarks/tasks_figure.png (input, frames 3/5/7, last frame, target).
With ``--model <name>`` (another model than the default tiny CogVideoX) the files are
train_<name>_<task>.json, train_<name>.{json,md} and tasks_figure_<name>.png.
"""

from __future__ import annotations

import argparse
import json
import time

from src.benchmarks.default_runs import OUT, TASKS, bench_task, figure, markdown, prefix


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", nargs="+", choices=TASKS, default=list(TASKS))
    parser.add_argument(
        "--model", default=None, help="model=<name> for every run (default: train.yaml's tiny)"
    )
    parser.add_argument("--figure", action="store_true", help="also draw tasks_figure.png from the runs")
    parser.add_argument("--fresh", action="store_true", help="retrain tasks whose finished runs exist")
    parser.add_argument(
        "--from-records",
        action="store_true",
        help="no training: re-render the table/figure from train_<task>.json",
    )
    args, extra = parser.parse_known_args()
    OUT.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y-%m-%d_%H-%M-%S")
    records = {}
    for task in args.tasks:
        if args.from_records:
            records[task] = json.loads((OUT / f"{prefix(args.model)}_{task}.json").read_text())
        else:
            records[task] = bench_task(task, extra, stamp, args.model, args.fresh)
    text = markdown(records, args.model)
    stem = "train_default" if prefix(args.model) == "train" else prefix(args.model)
    (OUT / f"{stem}.md").write_text(text)
    (OUT / f"{stem}.json").write_text(
        json.dumps({task: r["acceptance"] for task, r in records.items()}, indent=2) + "\n"
    )
    if args.figure:
        name = "tasks_figure" if stem == "train_default" else stem.replace("train", "tasks_figure", 1)
        print(f"figure: {figure(records, name=name)}")
    print(text)


if __name__ == "__main__":
    main()
