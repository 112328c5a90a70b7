"""The clips of a dataset build (:mod:`src.data.builder`): the settings that determine their bytes
(:class:`BuildSpec`), one job per clip with its stable seed, and the rendering, writing and
journalling of one clip, which runs in the worker processes."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from src.data.clip_io import FORMATS, EncoderSettings, write_clip_atomic
from src.data.degradations import DegradationPreset, check_task, frame_psnrs, make_clip
from src.data.images import IMAGE_EXTENSIONS, Source, SourceError, fit_to_output, load_image
from src.utils.cli import UserError
from src.utils.io import write_text_atomic
from src.utils.seeding import stable_seed

RECORDS_DIR = ".records"


class BuildError(UserError, RuntimeError):
    """A build that cannot start (bad settings, unsafe output dir); the message says what to do."""


@dataclass(frozen=True)
class BuildSpec:
    """Everything that determines the bytes of the clips (prompts are applied at indexing time)."""

    task: str
    out_dir: Path
    preset: DegradationPreset = field(default_factory=DegradationPreset)
    source_dir: Path | None = None
    clips_per_image: int = 2
    seed: int = 0
    width: int = 1360
    height: int = 768
    frames: int = 9
    fps: float = 5.0
    fmt: str = "mp4"
    encoder: EncoderSettings = field(default_factory=EncoderSettings)
    small_images: str = "upscale"

    def validate(self) -> None:
        check_task(self.task)
        if self.fmt not in FORMATS:
            raise BuildError(f"format must be one of {FORMATS}, got {self.fmt!r}")
        if self.frames < 2:
            raise BuildError(
                f"frames must be >= 2 (a progression needs a start and an end), got {self.frames}"
            )
        if self.width < 16 or self.height < 16:
            raise BuildError(f"width and height must be >= 16, got {self.width}x{self.height}")
        if self.fmt == "mp4" and (self.width % 2 or self.height % 2):
            raise BuildError(f"mp4 (H.264) needs even width and height, got {self.width}x{self.height}")
        if self.clips_per_image < 1:
            raise BuildError(f"clips_per_image must be >= 1, got {self.clips_per_image}")
        if self.fps <= 0:
            raise BuildError(f"fps must be > 0, got {self.fps}")
        if self.small_images not in ("upscale", "skip"):
            raise BuildError(f"small_images must be 'upscale' or 'skip', got {self.small_images!r}")
        if self.preset.lq_dir is not None:
            if self.preset.mode != "interpolate":
                raise BuildError("degradation.lq_dir only applies to degradation=interpolate")
            if not Path(self.preset.lq_dir).expanduser().is_dir():
                raise BuildError(f"degradation.lq_dir {self.preset.lq_dir} is not a directory")

    def fingerprint(self) -> dict:
        """JSON-able settings that change clip bytes; a resumed build must match them exactly."""
        data = asdict(self)
        data["out_dir"] = None
        data["source_dir"] = str(Path(self.source_dir).expanduser().resolve()) if self.source_dir else None
        data["preset"]["lq_dir"] = (
            str(Path(self.preset.lq_dir).expanduser().resolve()) if self.preset.lq_dir else None
        )
        return json.loads(json.dumps(data))


@dataclass(frozen=True)
class ClipJob:
    source: Source
    clip_index: int
    name: str
    seed: int


def clip_seed(seed: int, task: str, source_key: str, clip_index: int) -> int:
    """Stable 63-bit seed of one clip; independent of job order and worker count."""
    return stable_seed(seed, task, source_key, clip_index)


def plan_jobs(spec: BuildSpec, sources: list[Source]) -> list[ClipJob]:
    return [
        ClipJob(source, k, f"{source.clip_stem}_c{k}", clip_seed(spec.seed, spec.task, source.key, k))
        for source in sources
        for k in range(spec.clips_per_image)
    ]


def clip_relpath(spec: BuildSpec, name: str) -> str:
    return f"videos/{name}.mp4" if spec.fmt == "mp4" else f"frames/{name}"


# ----------------------------------------------------------------------------------------------
# One clip (runs in worker processes)
# ----------------------------------------------------------------------------------------------
def _find_lq_image(lq_dir: str, source: Source) -> Path | None:
    root = Path(lq_dir).expanduser()
    for ext in sorted(IMAGE_EXTENSIONS):
        for candidate in (root / f"{source.key}{ext}", root / f"{source.key}{ext.upper()}"):
            if candidate.is_file():
                return candidate
    return None


def render_job(spec: BuildSpec, job: ClipJob) -> tuple[np.ndarray, dict]:
    """(frames (F, H, W, 3) uint8, record) of one clip, without writing anything."""
    image = load_image(job.source)
    frame, fit_info = fit_to_output(image, spec.height, spec.width)
    if fit_info["upscaled"] and spec.small_images == "skip":
        width, height = fit_info["source_size"]
        raise SourceError(
            f"smaller than the output ({width}x{height} < {spec.width}x{spec.height}; small_images=skip)"
        )
    lq_image, lq_source = None, None
    if spec.preset.mode == "interpolate" and spec.preset.lq_dir:
        lq_path = _find_lq_image(spec.preset.lq_dir, job.source)
        if lq_path is None:
            raise SourceError(f"no LQ image named {job.source.key}.* in lq_dir {spec.preset.lq_dir}")
        lq_image, _ = fit_to_output(load_image(Source(job.source.key, lq_path)), spec.height, spec.width)
        lq_source = str(lq_path)
    frames, params = make_clip(
        frame, spec.task, np.random.default_rng(job.seed), spec.preset, spec.frames, lq_image
    )
    psnrs = frame_psnrs(frames)
    finite = psnrs[:-1]
    if any(p is None for p in finite) or any(b <= a for a, b in zip(finite, finite[1:], strict=False)):
        raise SourceError("its clip does not improve strictly from frame to frame (a flat or tiny image?)")
    record = {
        "clip": job.name,
        "video": clip_relpath(spec, job.name),
        "source": job.source.key if job.source.path is None else job.source.key + job.source.path.suffix,
        "source_key": job.source.key,
        **fit_info,
        "task": spec.task,
        "preset": spec.preset.name,
        "mode": spec.preset.mode,
        "seed": spec.seed,
        "clip_index": job.clip_index,
        "clip_seed": job.seed,
        "frames": spec.frames,
        "width": spec.width,
        "height": spec.height,
        "fps": spec.fps,
        "format": spec.fmt,
        "params": params,
        "psnr_to_target": psnrs,
    }
    if lq_source is not None:
        record["lq_source"] = lq_source
    return frames, record


def _write_json_atomic(path: Path, data, lines: bool = False) -> None:
    if lines:
        text = "".join(json.dumps(item, ensure_ascii=False) + "\n" for item in data)
    else:
        text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    write_text_atomic(path, text)


def _write_text_atomic(path: Path, lines: list[str]) -> None:
    write_text_atomic(path, "".join(line + "\n" for line in lines))


def build_one(spec: BuildSpec, job: ClipJob) -> dict:
    """Render, write (atomically) and journal one clip. Returns the record, or {"skipped": reason}."""
    try:
        frames, record = render_job(spec, job)
    except SourceError as err:
        return {"skipped": str(err), "source": job.source.key, "clip": job.name}
    write_clip_atomic(frames, spec.out_dir / record["video"], spec.fmt, spec.fps, spec.encoder)
    _write_json_atomic(spec.out_dir / RECORDS_DIR / f"{job.name}.json", record)
    return record


def _worker_init() -> None:
    import cv2

    # One thread per process: workers are the parallelism, and results must not depend on it.
    cv2.setNumThreads(1)


def _build_one_star(args: tuple[BuildSpec, ClipJob]) -> dict:
    return build_one(*args)
