"""Job records of a sweep (the format is described in :mod:`src.analysis.sweep`): made from a job
directory (its ``.hydra/overrides.yaml`` and the ``metrics.csv`` that ``src.eval`` wrote under it),
or read back from committed ``<job>.record.json`` files."""

from __future__ import annotations

import csv
from pathlib import Path

METRICS = ("psnr", "ssim", "lpips")
RECORD_NAME = "job_record.json"  # in a job directory; committed copies: <job>.record.json
RECORD_SUFFIX = ".record.json"


class SweepError(ValueError):
    """A sweep directory or job record that cannot be summarised; the message says why."""


# ----------------------------------------------------------------------------------------------
# Job records
# ----------------------------------------------------------------------------------------------
def parse_overrides(lines: list[str]) -> dict:
    """``["task=sr", "seed=1", "lora.rank=4"]`` -> {"task": "sr", "seed": 1, "lora.rank": 4}
    (integers and floats as numbers); ``experiment=``, ``hydra.*`` and ``+``/``~`` prefixes are
    dropped from the identity of a job."""
    out = {}
    for line in lines:
        key, _, value = str(line).lstrip("+~").partition("=")
        if not _ or key.startswith("hydra.") or key == "experiment":
            continue
        out[key] = parse_value(value)
    return out


def parse_value(value: str):
    """An override's value as the sweep names it: an int, a float, else the string."""
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value


def _float(value: str) -> float | None:
    return float(value) if value not in ("", None) else None


def read_eval_csv(path: Path) -> tuple[list[int], dict]:
    """(frames, images) of a ``metrics.csv`` written by ``src.eval`` (see the module docstring)."""
    images: dict[str, dict] = {}
    frames: set[int] = set()
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        if not {"image", "method", "frame", "psnr", "ssim"} <= set(reader.fieldnames or ()):
            raise SweepError(f"{path} is not a src.eval metrics.csv (columns {reader.fieldnames})")
        rows = list(reader)
    for row in rows:
        if row["method"] == "generated":
            frames.add(int(row["frame"]))
    frames_sorted = sorted(frames)
    for row in rows:
        entry = images.setdefault(row["image"], {})
        scores = {m: _float(row.get(m)) for m in METRICS}
        if row["method"] == "generated":
            generated = entry.setdefault("generated", {m: [None] * len(frames_sorted) for m in METRICS})
            for metric in METRICS:
                generated[metric][frames_sorted.index(int(row["frame"]))] = scores[metric]
        elif row["method"] == "input":
            entry["input"] = scores
        elif row["method"] != "drift":
            entry["baseline"] = {"name": row["method"], **scores}
    for key, entry in images.items():
        if "generated" not in entry:
            raise SweepError(f"{path}: image {key} has no generated frames")
        for metric in METRICS:
            if all(v is None for v in entry["generated"][metric]):
                entry["generated"][metric] = None
    if not images:
        raise SweepError(f"{path} holds no scored image")
    return frames_sorted, images


def find_eval_csv(job_dir: Path) -> Path | None:
    """The ``metrics.csv`` of ``src.eval`` under a job directory (the newest if several)."""
    found = [p for p in job_dir.rglob("metrics.csv") if (p.parent / "frame_metrics.json").is_file()]
    return max(found, key=lambda p: p.stat().st_mtime) if found else None


def job_record(job_dir: str | Path, extra: dict | None = None) -> dict:
    """The job record of one finished, evaluated job directory of a multirun."""
    job_dir = Path(job_dir)
    overrides_file = job_dir / ".hydra" / "overrides.yaml"
    if not overrides_file.is_file():
        raise SweepError(f"{job_dir} is not a Hydra job directory (no .hydra/overrides.yaml)")
    from omegaconf import OmegaConf

    overrides = parse_overrides(list(OmegaConf.load(overrides_file)))
    metrics_csv = find_eval_csv(job_dir)
    if metrics_csv is None:
        raise SweepError(
            f"{job_dir} has no evaluation: run python -m src.eval ckpt={job_dir} data=synthetic "
            f"seed=<the job's seed> hydra.run.dir={job_dir}/eval_set5"
        )
    frames, images = read_eval_csv(metrics_csv)
    return {"overrides": overrides, "frames": frames, "images": images, **(extra or {})}


def collect_records(sweep_dir: str | Path) -> list[dict]:
    """Job records of a sweep directory (searched recursively): ``job_record.json`` /
    ``<job>.record.json`` files (what ``make bench-paper`` writes and commits), else job
    directories evaluated by ``src.eval``."""
    import json

    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise SweepError(f"{sweep_dir} is not a directory")
    records = []
    for path in sorted(sweep_dir.rglob("*.json")):
        if path.name == RECORD_NAME or path.name.endswith(RECORD_SUFFIX):
            data = json.loads(path.read_text())
            if isinstance(data, dict) and "overrides" in data and "images" in data:
                records.append(data)
    if records:
        return records
    jobs: list[Path] = []
    for overrides_file in sorted(sweep_dir.rglob(".hydra/overrides.yaml"), key=lambda p: len(p.parts)):
        job_dir = overrides_file.parent.parent
        if any(job_dir.is_relative_to(j) for j in jobs):
            continue  # src.eval's own run directory inside a job
        jobs.append(job_dir)
        if find_eval_csv(job_dir) is not None:
            records.append(job_record(job_dir))
    if not records:
        raise SweepError(
            f"no evaluated jobs under {sweep_dir}: each job needs python -m src.eval ckpt=<job dir> "
            "data=synthetic (its metrics.csv)"
        )
    return records
