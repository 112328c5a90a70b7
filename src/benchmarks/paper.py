"""The paper in miniature (`make bench-paper`): its Fig. 2 and its prompt comparison on CPU, with
error bars; then the LoRA rank.

    python -m src.benchmarks.paper [--sweeps paper_miniature rank_sweep] [--seeds 0 1 2] [--threads N]

Two sweeps, each a Hydra multirun preset (``conf/experiment/<sweep>.yaml``):

- ``paper_miniature``: the default run (``python -m src.train``) of each task x prompt mode
  (uniform, adaptive) x seed;
- ``rank_sweep``: LoRA rank 4 / 16 / 64 x seed, low light, adaptive prompts (its rank-16 jobs
  are the ``paper_miniature`` jobs of the same seed, not trained twice).

Each job runs as ``python -m src.train -m experiment=<sweep> <its overrides>`` (a multirun of one
job in ``outputs/bench_paper/<sweep>/<job>/job``; the preset names the W&B group), then
``python -m src.eval ckpt=<job> data=synthetic seed=<seed>`` on the held-out Set5 photographs
(the seed draws the evaluation's degradations and sampling noise too). The job's record (per
image and frame PSNR / SSIM / LPIPS, the degraded input, the classical baseline, minutes) is
written to ``experiments/benchmarks/paper_runs/<sweep>/<job>.record.json`` and committed: a
rerun, in this session or on a fresh clone, skips every job that has a record made on the
current tiny base (its sha256 is in the record), so the bench continues where it stopped, and a
new base reruns everything. Seeds can run side by side in separate processes
(``--seeds 0`` and ``--seeds 1 2`` with ``--threads 1`` on 2 cores).

Then :mod:`src.analysis.sweep` summarises each sweep (per-frame means with 95 % bootstrap
intervals over images x seeds, the last frame against the input and the baseline, paired
sign-flip tests at matched (image, seed) units) into ``experiments/benchmarks/<sweep>.{md,json}``
and the figure ``<sweep>.png`` (``python -m src.report --sweep`` gives the same offline from a
sweep directory). ``paper_miniature.md`` ends with a probe of the shipped base alone
(``prompt_probe.json``, :func:`prompt_probe`): does it keep a still scene as well when the
prompt carries the photo's scene caption, and better than with another photo's caption?
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from src.analysis.sweep import (
    RECORD_SUFFIX,
    collect_records,
    job_record,
    plot_figure,
    render_markdown,
    summarize,
)
from src.benchmarks.data_builder import machine_info
from src.utils.config import PROJECT_ROOT

OUT = PROJECT_ROOT / "experiments" / "benchmarks"
RECORDS = OUT / "paper_runs"
WORK = PROJECT_ROOT / "outputs" / "bench_paper"
SEEDS = (0, 1, 2)

# sweep -> (swept factors, fixed overrides, compared factor, its reference level, figure panels)
SWEEPS = {
    "paper_miniature": {
        "factors": {"task": ("sr", "deblur", "lowlight"), "prompt": ("uniform", "adaptive")},
        "fixed": {},
        "compare": "prompt",
        "reference": "uniform",
        "panels": "task",
        "title": "The paper in miniature: uniform vs scene-adaptive prompts (tiny CogVideoX, Set5)",
    },
    "rank_sweep": {
        "factors": {"lora.rank": (4, 16, 64)},
        "fixed": {"task": "lowlight", "prompt": "adaptive"},
        "compare": "lora.rank",
        "reference": 16,
        "panels": "task",
        "title": "LoRA rank 4 / 16 / 64 (low light, adaptive prompts, tiny CogVideoX, Set5)",
    },
}


def jobs(sweep: str, seeds: tuple[int, ...]) -> list[dict]:
    """The overrides of every job of a sweep (ordered by seed first, so a partial bench covers
    every setting)."""
    spec = SWEEPS[sweep]
    names = list(spec["factors"])
    out = []
    for seed in seeds:
        for values in itertools.product(*(spec["factors"][n] for n in names)):
            out.append({**spec["fixed"], **dict(zip(names, values, strict=False)), "seed": seed})
    return out


def job_name(overrides: dict) -> str:
    rank = overrides.get("lora.rank", 16)
    return f"{overrides['task']}_{overrides['prompt']}_r{rank}_s{overrides['seed']}"


def record_path(sweep: str, overrides: dict) -> Path:
    return RECORDS / sweep / f"{job_name(overrides)}{RECORD_SUFFIX}"


def shared_job(sweep: str, overrides: dict) -> tuple[str, dict] | None:
    """The job of another sweep with the same settings (rank_sweep's rank 16 = paper_miniature)."""
    if sweep == "rank_sweep" and overrides.get("lora.rank") == 16:
        return "paper_miniature", {k: v for k, v in overrides.items() if k != "lora.rank"}
    return None


def run(command: list[str], threads: int | None) -> float:
    started = time.time()
    env = {**os.environ, "WANDB_SILENT": "true"}
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    result = subprocess.run(command, cwd=PROJECT_ROOT, env=env)
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} failed (exit {result.returncode})")
    return (time.time() - started) / 60


BASE_WEIGHTS = PROJECT_ROOT / "src" / "models" / "pretrained" / "tiny_cogvideox_i2v.safetensors"  # model=tiny


def base_fingerprint() -> str:
    """sha256 of the tiny base the jobs train on: a record made on another base is stale."""
    import hashlib

    return hashlib.sha256(BASE_WEIGHTS.read_bytes()).hexdigest()


def recorded(sweep: str, overrides: dict) -> dict | None:
    """The job's record if it was made on the current base, else None."""
    path = record_path(sweep, overrides)
    if not path.is_file():
        return None
    record = json.loads(path.read_text())
    if record.get("base_sha256") != base_fingerprint():
        print(f"[{sweep}] {path.name}: made on another tiny base, running it again", file=sys.stderr)
        return None
    return record


def run_job(sweep: str, overrides: dict, threads: int | None) -> dict:
    """Train + evaluate one job and write its record (unless a record of the current base exists)."""
    path = record_path(sweep, overrides)
    record = recorded(sweep, overrides)
    if record is not None:
        return record
    shared = shared_job(sweep, overrides)
    if shared is not None:
        record = run_job(*shared, threads)
        record = {
            **record,
            "overrides": overrides,
            "shared_with": str(record_path(*shared).relative_to(RECORDS)),
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record, indent=1))
        return record
    name = job_name(overrides)
    # one sweep directory per job: a multirun claims its sweep directory for good
    # (src/utils/rundir.py), so each job is a multirun of its own in <sweep>/<job>/, and the
    # seeds can train side by side (--seeds 0 / --seeds 1 ...)
    sweep_dir = WORK / sweep / name
    job_dir = sweep_dir / "job"
    if sweep_dir.exists():  # an interrupted job: start it again
        shutil.rmtree(sweep_dir)
    print(f"[{sweep}] {name}: training", file=sys.stderr, flush=True)
    command = [sys.executable, "-m", "src.train", "-m", f"experiment={sweep}"]
    command += [f"{k}={v}" for k, v in overrides.items()]
    command += [f"hydra.sweep.dir={sweep_dir}", "hydra.sweep.subdir=job"]
    train_minutes = run(command, threads)
    print(f"[{sweep}] {name}: evaluating on Set5", file=sys.stderr, flush=True)
    eval_minutes = run(
        [
            sys.executable,
            "-m",
            "src.eval",
            f"ckpt={job_dir}",
            "data=synthetic",
            f"seed={overrides['seed']}",
            "samples=0",
            f"hydra.run.dir={job_dir / 'eval_set5'}",
        ],
        threads,
    )
    summary = json.loads((job_dir / "run_summary.json").read_text())
    record = job_record(
        job_dir,
        {
            "command": "python " + " ".join(command[1:-2]),
            "train_minutes": round(train_minutes, 2),
            "eval_minutes": round(eval_minutes, 2),
            "global_step": summary.get("global_step"),
            "omp_num_threads": str(threads) if threads else os.environ.get("OMP_NUM_THREADS"),
            "base_sha256": base_fingerprint(),
        },
    )
    record["overrides"] = overrides  # the job's identity as the bench names it
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1))
    return record


def write_summary(sweep: str) -> dict | None:
    """Summarise the committed records of a sweep into its table, JSON and figure."""
    spec = SWEEPS[sweep]
    folder = RECORDS / sweep
    if not folder.is_dir():
        return None
    base = base_fingerprint()
    records = [r for r in collect_records(folder) if r.get("base_sha256") == base]  # the current base's
    if not records:
        return None
    summary = summarize(records, spec["compare"], spec["reference"])
    minutes = [r["train_minutes"] + r.get("eval_minutes", 0) for r in records if "shared_with" not in r]
    summary.update(
        sweep=sweep,
        machine=machine_info(),
        jobs=len(records),
        jobs_expected=len(jobs(sweep, SEEDS)),
        minutes_total=round(sum(minutes), 1),
        omp_num_threads=sorted({str(r.get("omp_num_threads")) for r in records}),
    )
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"{sweep}.json").write_text(json.dumps(summary, indent=1))
    figure = plot_figure(summary, OUT / f"{sweep}.png", spec["panels"], spec["title"])
    header = (
        f"`make bench-paper` (`python -m src.benchmarks.paper`), sweep `experiment={sweep}`: "
        f"{summary['jobs']} of {summary['jobs_expected']} jobs, {summary['minutes_total']} min of training "
        f"and evaluation (torch threads {', '.join(summary['omp_num_threads'])}), on "
        f"{summary['machine']['cpu']} ({summary['machine']['cores']} cores), {summary['machine']['date']}. "
        "Each job: the default training run with the sweep's overrides, then `src.eval data=synthetic "
        "seed=<seed>` on the 5 held-out Set5 photographs. Figure: "
        f"[{figure.name}]({figure.name}); records: [paper_runs/{sweep}/](paper_runs/{sweep}/).\n\n"
    )
    markdown = render_markdown(summary, spec["title"])
    title, _, body = markdown.partition("\n\n")
    probe = f"\n{probe_markdown(write_probe())}" if sweep == "paper_miniature" else ""
    (OUT / f"{sweep}.md").write_text(f"{title}\n\n{header}{body}{probe}")
    return summary


PROBE_PROMPTS = {  # name -> prompt of photo i (captions from conf/captions/photos.json)
    "the pretraining phrase": lambda caps, keys, i: "The camera holds still.",
    "a synonym it was pretrained on": lambda caps, keys, i: "Nothing moves.",
    "its own scene caption first": lambda caps, keys, i: (
        f"{_sentence(caps[keys[i]])} The camera holds still."
    ),
    "another photo's caption first": lambda caps, keys, i: (
        f"{_sentence(caps[keys[(i + 1) % len(keys)]])} The camera holds still."
    ),
    "an effect it was pretrained on": lambda caps, keys, i: (
        "The camera holds still. The scene gradually brightens."
    ),
}


def _sentence(caption: str) -> str:
    return caption[:1].upper() + caption[1:].rstrip(".") + "."


def prompt_probe(seed: int = 0, steps: int = 25) -> dict:
    """Why scene captions can or cannot help: the shipped tiny base (no LoRA) samples the 5 Set5
    photographs as still scenes with each prompt of :data:`PROBE_PROMPTS`, same noise (seed) for
    every prompt; frames 2-9 against the still photo (PSNR) and against the pretraining phrase's
    samples. A base that read scene captions in pretraining would keep the scene as well with
    its own caption as with the phrase, and better than with another photo's caption."""
    import numpy as np
    import torch

    from src.data.images import Source, fit_to_output, list_sources, load_image
    from src.models import recipe
    from src.models.tiny import load_tiny
    from src.prompts import load_captions
    from src.utils.frames import to_float_tensor
    from src.utils.seeding import stable_seed

    shared = Path(os.environ.get("PROGRESTORE_SHARED", PROJECT_ROOT.parent / "shared"))
    sources, _ = list_sources(shared / "data" / "set5")
    photos = {s.key: load_image(Source(s.key, s.path)) for s in sources}
    captions = load_captions(PROJECT_ROOT / "conf" / "captions" / "photos.json")
    components, _ = load_tiny()
    height, width, frames = 64, 112, 9  # conf/model/tiny.yaml
    first = to_float_tensor(np.stack([fit_to_output(im, height, width)[0] for im in photos.values()]))
    pipeline = recipe.i2v_pipeline(components)
    keys = list(photos)

    def sample(prompts):
        generators = [torch.Generator().manual_seed(stable_seed(seed, "probe", i)) for i in range(len(keys))]
        return recipe.generate_trajectory(
            pipeline,
            first,
            prompts,
            generators,
            height,
            width,
            frames,
            steps,
            1.0,
            components.max_sequence_length,
        )

    def psnr(a, b) -> float:
        return float(10 * torch.log10(1.0 / ((a - b) ** 2).mean()))

    still = first[:, None].expand(-1, frames, -1, -1, -1)
    reference = None
    rows = {}
    for name, make in PROBE_PROMPTS.items():
        video = sample([make(captions, keys, i) for i in range(len(keys))])
        reference = video if reference is None else reference
        rows[name] = {
            "psnr_vs_still_photo_f2_9": round(psnr(video[:, 1:], still[:, 1:]), 2),
            "psnr_vs_pretraining_phrase_samples_f2_9": None
            if video is reference
            else round(psnr(video[:, 1:], reference[:, 1:]), 2),
        }
        print(f"probe: {name}: {rows[name]}", file=sys.stderr, flush=True)
    return {
        "seed": seed,
        "steps": steps,
        "images": keys,
        "model": "tiny (shipped base, no LoRA)",
        "prompts": rows,
    }


def write_probe() -> dict:
    path = OUT / "prompt_probe.json"
    if path.is_file():
        probe = json.loads(path.read_text())
        if probe.get("base_sha256") == base_fingerprint():
            return probe
    probe = {"machine": machine_info(), "base_sha256": base_fingerprint(), **prompt_probe()}
    path.write_text(json.dumps(probe, indent=1))
    return probe


def probe_markdown(probe: dict) -> str:
    lines = [
        "## Does the base read scene captions? (`prompt_probe.json`)",
        "",
        f"The shipped tiny base without a LoRA samples the {len(probe['images'])} Set5 photographs as still "
        f"scenes, the same noise (seed {probe['seed']}, {probe['steps']} steps) for every prompt; frames 2-9.",
        "",
        "| prompt | PSNR vs the still photo | PSNR vs the pretraining phrase's samples |",
        "|---|---|---|",
    ]
    for name, row in probe["prompts"].items():
        lines.append(
            f"| {name} | {row['psnr_vs_still_photo_f2_9']:.2f} | "
            + (
                "(itself)"
                if row["psnr_vs_pretraining_phrase_samples_f2_9"] is None
                else f"{row['psnr_vs_pretraining_phrase_samples_f2_9']:.2f}"
            )
            + " |"
        )
    return "\n".join(lines) + "\n"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sweeps", nargs="+", choices=tuple(SWEEPS), default=list(SWEEPS))
    parser.add_argument("--seeds", nargs="+", type=int, default=list(SEEDS))
    parser.add_argument(
        "--threads", type=int, default=None, help="OMP_NUM_THREADS of each job (default: inherited)"
    )
    parser.add_argument("--summarize-only", action="store_true", help="no training: tables from the records")
    parser.add_argument("--max-jobs", type=int, default=None, help="stop after training this many jobs")
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    trained = 0
    for sweep in args.sweeps:
        for overrides in jobs(sweep, tuple(args.seeds)):
            if args.summarize_only:
                break
            fresh = recorded(sweep, overrides) is None
            if fresh and args.max_jobs is not None and trained >= args.max_jobs:
                break
            run_job(sweep, overrides, args.threads)
            trained += int(fresh and shared_job(sweep, overrides) is None)
        summary = write_summary(sweep)
        if summary:
            print(f"{sweep}: {summary['jobs']} of {summary['jobs_expected']} jobs -> {OUT / (sweep + '.md')}")


if __name__ == "__main__":
    main()
