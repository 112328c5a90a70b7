"""Dataset builder: source images -> progression clips in the CogVideoX fine-tuning layout.

    out_dir/
      videos/<image>_c<k>.mp4        (format=mp4)  or  frames/<image>_c<k>/NN.png  (format=png)
      videos.txt                     relative clip paths, one per line
      prompts_uniform.txt            line-aligned with videos.txt
      prompts_adaptive.txt           line-aligned with videos.txt
      prompt.txt                     copy of the selected mode's file (CogVideoX reads this name)
      metadata.jsonl                 one record per clip: source, task, preset, seed, params, prompts
      build_manifest.json            the settings the clips were built with (resume / overwrite guard)
      build_report.json             what was built, reused, skipped and why, timings
      .records/<clip>.json           per-clip record, written after its clip: the resume journal

Reproducibility: clip k of image i gets seed hash(seed, task, i, k), so the bytes of every clip
are the same whatever ``num_workers`` is, and a killed build resumes to the same dataset.

The spec and the work of one clip (rendered, written and journalled in a worker process) live in
:mod:`src.data.build_jobs`; this module runs the whole build: output dir, resume, index, report.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from src.data.build_jobs import (
    RECORDS_DIR,
    BuildError,
    BuildSpec,
    ClipJob,
    _build_one_star,
    _worker_init,
    _write_json_atomic,
    _write_text_atomic,
    build_one,
    clip_relpath,
    clip_seed,
    plan_jobs,
    render_job,
)
from src.data.images import BUNDLED_PHOTOS, SourceError, list_sources
from src.prompts import PROMPT_MODES, load_captions, prompt_file_name, prompts_for

log = logging.getLogger(__name__)

__all__ = [  # the build, and the spec and per-clip work it re-exports from src.data.build_jobs
    "DATASET_FILES",
    "MANIFEST_NAME",
    "RECORDS_DIR",
    "BuildError",
    "BuildReport",
    "BuildSpec",
    "ClipJob",
    "build_dataset",
    "build_one",
    "clip_relpath",
    "clip_seed",
    "finished_record",
    "plan_jobs",
    "prepare_out_dir",
    "release_build_lock",
    "render_job",
    "write_index",
]

MANIFEST_NAME = "build_manifest.json"
DATASET_FILES = ("videos.txt", "prompt.txt", "metadata.jsonl", "build_report.json", MANIFEST_NAME) + tuple(
    prompt_file_name(mode) for mode in PROMPT_MODES
)


# ----------------------------------------------------------------------------------------------
# Whole build
# ----------------------------------------------------------------------------------------------
def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # missing, torn or not UTF-8 (a killed build): not a record
        return None


def prepare_out_dir(spec: BuildSpec, overwrite: bool):
    """Create ``out_dir`` or check it holds a compatible build; never clobber anything silently.
    One build at a time per dataset: the lock (held until the process ends) is taken before
    anything is deleted, so a second build fails at once instead of removing the first one's
    clips or temporary files."""
    from src.utils.rundir import RunDirInUse, hold_lock, write_owner

    out_dir = spec.out_dir
    manifest_path = out_dir / MANIFEST_NAME
    fingerprint = spec.fingerprint()
    foreign = out_dir.exists() and any(p.name != ".build.lock" for p in out_dir.iterdir())
    if foreign and _read_json(manifest_path) is None:
        raise BuildError(
            f"out_dir {out_dir} exists and is not a progrestore dataset (no {MANIFEST_NAME}); "
            "choose an empty or new out_dir (nothing was deleted)"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        handle, _ = hold_lock(
            out_dir / ".build.lock",
            f"out_dir {out_dir} is being built by another process ({{owner}}); wait for it or choose another out_dir",
        )
    except RunDirInUse as err:
        raise BuildError(str(err)) from None
    write_owner(handle, "build")
    try:
        manifest = _read_json(manifest_path)
        if manifest is not None and manifest.get("fingerprint") != fingerprint:
            if not overwrite:
                old = manifest.get("fingerprint") or {}
                changed = sorted(k for k in set(old) | set(fingerprint) if old.get(k) != fingerprint.get(k))
                raise BuildError(
                    f"out_dir {out_dir} holds a dataset built with other settings (differs in: "
                    f"{', '.join(changed)}); pass overwrite=true to replace it or choose another out_dir"
                )
            log.warning("overwrite=true: removing the dataset in %s", out_dir)
            for name in ("videos", "frames", RECORDS_DIR):
                shutil.rmtree(out_dir / name, ignore_errors=True)
            for name in DATASET_FILES:
                (out_dir / name).unlink(missing_ok=True)
        (out_dir / RECORDS_DIR).mkdir(exist_ok=True)
        # Leftovers of a killed build: temporary clips and records are never valid.
        for folder in (out_dir, out_dir / "videos", out_dir / "frames", out_dir / RECORDS_DIR):
            if folder.is_dir():
                for stale in folder.glob(".*.tmp-*"):
                    shutil.rmtree(stale) if stale.is_dir() else stale.unlink()
        _write_json_atomic(
            manifest_path, {"builder": "progrestore.build_dataset", "version": 1, "fingerprint": fingerprint}
        )
    except BaseException:
        release_build_lock(handle)
        raise
    return handle  # the build lock: release_build_lock() when the build ends


def release_build_lock(handle) -> None:
    """Remove and release the build lock: the dataset keeps no trace of it (its files are
    identical whoever built them)."""
    Path(handle.name).unlink(missing_ok=True)
    handle.close()


def finished_record(spec: BuildSpec, job: ClipJob) -> dict | None:
    """The journal record of a clip whose file is in place, else None (it must be (re)built)."""
    record = _read_json(spec.out_dir / RECORDS_DIR / f"{job.name}.json")
    if not record or record.get("clip_seed") != job.seed or not (spec.out_dir / record["video"]).exists():
        return None
    return record


def write_index(
    spec: BuildSpec, records: list[dict], task_cfg: dict, prompt_mode: str, captions: dict
) -> int:
    """videos.txt, the prompt files and metadata.jsonl, line-aligned, in job order. Returns the
    number of clips whose adaptive prompt fell back to the generic subject (no caption)."""
    lines: dict[str, list[str]] = {"videos": [], **{mode: [] for mode in PROMPT_MODES}}
    metadata, uncaptioned = [], 0
    for record in records:
        key = record["source_key"]
        caption = (
            captions.get(key) or captions.get(Path(record["source"]).name) or captions.get(Path(key).name)
        )
        if caption is None and record["source"] == key:
            caption = BUNDLED_PHOTOS.get(key)
        uncaptioned += caption is None
        prompts = prompts_for(task_cfg, caption)
        lines["videos"].append(record["video"])
        for mode in PROMPT_MODES:
            lines[mode].append(prompts[mode])
        metadata.append({**record, "caption": caption, "prompts": prompts, "prompt_mode": prompt_mode})
    out = spec.out_dir
    _write_text_atomic(out / "videos.txt", lines["videos"])
    for mode in PROMPT_MODES:
        _write_text_atomic(out / prompt_file_name(mode), lines[mode])
    _write_text_atomic(out / "prompt.txt", lines[prompt_mode])
    _write_json_atomic(out / "metadata.jsonl", metadata, lines=True)
    return uncaptioned


@dataclass
class BuildReport:
    out_dir: str
    total_clips: int = 0
    built: int = 0
    reused: int = 0
    skipped: list[dict] = field(default_factory=list)
    ignored_files: list[list[str]] = field(default_factory=list)
    upscaled_sources: int = 0
    uncaptioned_clips: int = 0
    seconds: float = 0.0
    clips_per_second: float = 0.0

    def summary(self) -> str:
        parts = [
            f"{self.total_clips} clips in {self.out_dir}",
            f"built {self.built} ({self.clips_per_second:.2f} clips/s)",
            f"reused {self.reused} from an earlier run",
        ]
        text = ", ".join(parts)
        if self.skipped:
            by_source = {item["source"]: item["skipped"] for item in self.skipped}
            text += f"\nskipped {len(by_source)} source image(s):"
            text += "".join(f"\n  - {source}: {reason}" for source, reason in sorted(by_source.items()))
        if self.ignored_files:
            text += f"\nignored {len(self.ignored_files)} file(s) that are not images:"
            text += "".join(f"\n  - {name}: {reason}" for name, reason in self.ignored_files[:20])
            if len(self.ignored_files) > 20:
                text += f"\n  ... and {len(self.ignored_files) - 20} more (see build_report.json)"
        if self.upscaled_sources:
            text += (
                f"\n{self.upscaled_sources} source image(s) were smaller than the output and were upscaled "
                "(metadata 'upscaled': true; small_images=skip drops them)"
            )
        if self.uncaptioned_clips:
            text += (
                f"\n{self.uncaptioned_clips} clip(s) have no caption: their adaptive prompt uses "
                "'the scene' (give captions_file=...)"
            )
        return text


def build_dataset(
    spec: BuildSpec,
    task_cfg: dict,
    prompt_mode: str = "adaptive",
    captions_file: str | None = None,
    num_workers: int | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> BuildReport:
    """Build (or resume) the dataset described by ``spec``. See the module docstring for the layout."""
    from tqdm import tqdm

    spec.validate()
    if prompt_mode not in PROMPT_MODES:
        raise BuildError(f"prompt mode must be one of {PROMPT_MODES}, got {prompt_mode!r}")
    try:
        captions = load_captions(captions_file)
        sources, ignored = list_sources(spec.source_dir)
    except (SourceError, FileNotFoundError, ValueError) as err:
        raise BuildError(str(err)) from None
    lock = prepare_out_dir(spec, overwrite)
    try:
        jobs = plan_jobs(spec, sources)
        done = {job.name: record for job in jobs if (record := finished_record(spec, job)) is not None}
        todo = [job for job in jobs if job.name not in done]
        report = BuildReport(
            out_dir=str(spec.out_dir), reused=len(done), ignored_files=[list(i) for i in ignored]
        )
        if done:
            log.info("resuming: %d of %d clips already built in %s", len(done), len(jobs), spec.out_dir)

        workers = (os.cpu_count() or 1) if num_workers is None else max(0, int(num_workers))
        workers = min(workers, len(todo))
        start = time.perf_counter()
        results: dict[str, dict] = {}
        bar = tqdm(total=len(todo), unit="clip", desc=f"build {spec.task}", disable=not progress or not todo)
        try:
            if workers <= 1:
                _worker_init()
                iterator = (build_one(spec, job) for job in todo)
                pool = None
            else:
                pool = multiprocessing.get_context("spawn").Pool(workers, initializer=_worker_init)
                iterator = pool.imap_unordered(_build_one_star, [(spec, job) for job in todo], chunksize=1)
            for result in iterator:
                results[result["clip"]] = result
                bar.update(1)
                if "skipped" in result:
                    bar.write(f"skipped {result['source']}: {result['skipped']}")
            if pool is not None:
                pool.close()
                pool.join()
        except BaseException:
            if workers > 1 and "pool" in locals() and pool is not None:
                pool.terminate()
            raise
        finally:
            bar.close()
        report.seconds = time.perf_counter() - start

        records = []
        for job in jobs:
            record = done.get(job.name) or results.get(job.name)
            if record is None or "skipped" in record:
                if record is not None:
                    report.skipped.append(record)
                continue
            records.append(record)
        report.built = sum(1 for r in results.values() if "skipped" not in r)
        report.total_clips = len(records)
        report.clips_per_second = report.built / report.seconds if report.seconds > 0 else 0.0
        report.upscaled_sources = len({r["source_key"] for r in records if r.get("upscaled")})
        if not records:
            raise BuildError("no clip could be built:\n" + report.summary())
        report.uncaptioned_clips = write_index(spec, records, task_cfg, prompt_mode, captions)
        _write_json_atomic(spec.out_dir / "build_report.json", asdict(report))
        return report
    finally:
        release_build_lock(lock)
