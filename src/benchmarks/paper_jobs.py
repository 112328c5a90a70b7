"""The jobs of ``make bench-paper`` (:mod:`src.benchmarks.paper`): the two sweeps and their
overrides, one job's training and evaluation as subprocesses, its committed record (skipped on a
rerun made on the same tiny base) and each sweep's summary, table and figure."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import sys
from pathlib import Path

from src.analysis.sweep import (
    RECORD_SUFFIX,
    collect_records,
    job_record,
    plot_figure,
    render_markdown,
    summarize,
)
from src.benchmarks.common import machine_info, run_cli
from src.benchmarks.prompt_probe import probe_markdown, prompt_probe
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
    train_minutes = run_cli(command, threads)
    print(f"[{sweep}] {name}: evaluating on Set5", file=sys.stderr, flush=True)
    eval_minutes = run_cli(
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


def write_probe() -> dict:
    path = OUT / "prompt_probe.json"
    if path.is_file():
        probe = json.loads(path.read_text())
        if probe.get("base_sha256") == base_fingerprint():
            return probe
    probe = {"machine": machine_info(), "base_sha256": base_fingerprint(), **prompt_probe()}
    path.write_text(json.dumps(probe, indent=1))
    return probe
