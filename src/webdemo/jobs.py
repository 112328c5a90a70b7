"""The demo's restore jobs, without the web page: the checks of a request (task, prompt, seed,
text lengths) and of an upload (size, type by content, pixels, a clip's length) with the one line
the page shows for each refusal, the model of each task (loaded once, kept), and the photo and
clip restores with their progress (per sampling step, counted at the pipeline's scheduler).

One task's model serves every prompt choice: a prompt mode only selects the prompt text
(``src.prompts.prompts_for``), so ``prompt=uniform`` costs no second model; each other task is
loaded once (``task=<t>`` override of the checkpoint's config) and kept. A photo gives the files
of ``src.restore`` (``frames/``, ``restored.png``, ``strip.png``, ``trajectory.mp4``,
``trajectory.gif``, ``restore.json``); a clip (``src.video.restore``) ``restored.mp4``,
``side_by_side.mp4`` and ``restore.json``. Each job lives in ``<out_dir>/jobs/<id>/``: the upload
(``input.<ext>``) and ``result/``."""

from __future__ import annotations

import json
import logging
import math
import re
import secrets
import shutil
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from src.utils.cli import InputError, UserError, one_line, user_message
from src.utils.config import CONFIG_DIR
from src.webdemo.options import DemoOptions
from src.webdemo.progress import Report, StepProgress, calls_per_image, counting_steps

log = logging.getLogger(__name__)

TASKS = tuple(sorted(p.stem for p in (CONFIG_DIR / "task").glob("*.yaml")))  # allinone deblur lowlight sr
PROMPT_CHOICES = ("checkpoint", "uniform", "text")
MAX_SEED = 2**32 - 1
MAX_TEXT = 1000  # characters of a prompt or caption
# Gradio itself refuses an upload over this (its own message); under it, ours says the limit.
UPLOAD_HARD_LIMIT = 1 << 30
IMAGE_FILES = ("restored.png", "strip.png", "trajectory.mp4", "trajectory.gif", "restore.json")
VIDEO_FILES = ("restored.mp4", "side_by_side.mp4", "restore.json")


class UploadError(InputError):
    """A refused request or upload; its message is the one line the page shows."""


@dataclass(frozen=True)
class Request:
    task: str
    prompt_choice: str  # checkpoint | uniform | text
    text: str | None
    caption: str | None
    seed: int


@dataclass
class Job:
    id: str
    kind: str  # image | video
    name: str  # the upload's file name, for display and restore.json
    folder: Path
    input_path: Path
    request: Request
    details: dict  # the input's size (and a clip's frames, fps, duration)
    image: object = None  # the decoded photo until it is restored
    prompt: str | None = None
    prompt_mode: str | None = None
    files: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def result(self) -> Path:
        return self.folder / "result"


def safe_suffix(filename: str) -> str:
    """The file name's extension, lower case, when it is a plain one (``.png``, ``.mp4``), else ''."""
    suffix = Path(filename.replace("\\", "/")).suffix.lower()
    return suffix if re.fullmatch(r"\.[a-z0-9]{1,8}", suffix) else ""


def display_name(filename: str) -> str:
    """The upload's base name without control characters, at most 120 characters."""
    base = filename.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = "".join(c for c in base if c.isprintable()).strip()
    return cleaned[:120] or "upload"


def video_suffixes() -> tuple[str, ...]:
    from src.video.io import VIDEO_SUFFIXES

    return tuple(str(s).lower() for s in VIDEO_SUFFIXES)


def parse_request(default_task: str, task, prompt, text, caption, seed) -> Request:
    """A request's options as the page or the API sends them, checked (an UploadError says which
    and why); task ``checkpoint`` (or none) is ``default_task``."""
    task = str(task or "").strip() or "checkpoint"
    if task == "checkpoint":
        task = default_task
    if task not in TASKS:
        raise UploadError(f"task must be one of {', '.join(TASKS)} (or checkpoint), got {task[:40]!r}")
    choice = str(prompt or "").strip() or "checkpoint"
    if choice not in PROMPT_CHOICES:
        raise UploadError(f"prompt must be one of {', '.join(PROMPT_CHOICES)}, got {choice[:40]!r}")
    text = " ".join(str(text or "").split())
    caption = " ".join(str(caption or "").split())
    for value, what in ((text, "the prompt"), (caption, "the caption")):
        if len(value) > MAX_TEXT:
            raise UploadError(f"{what} is {len(value)} characters long; at most {MAX_TEXT}")
    if choice == "text" and not text:
        raise UploadError("'your own words' needs a prompt: write it in the text field")
    if isinstance(seed, float) and seed.is_integer():
        seed = int(seed)  # a number field's 7.0
    seed_text = str(seed if seed is not None else "").strip() or "0"
    if not re.fullmatch(r"\d{1,10}", seed_text) or int(seed_text) > MAX_SEED:
        raise UploadError(f"seed must be a whole number from 0 to {MAX_SEED}, got {seed_text[:40]!r}")
    return Request(task, choice, text or None, caption or None, int(seed_text))


def failure_message(err: BaseException) -> str:
    """The page's line for a failed job: the user's error, else an internal one (logged)."""
    message = user_message(err)
    if message is None:
        log.error("demo: a job failed", exc_info=err)
        message = f"internal error ({type(err).__name__}: {one_line(err)[:300]}); see the server's log"
    return message


class DemoJobs:
    """The jobs and the models (one per task, loaded on first use). One job runs at a time (the
    page's queue; the model lock also keeps a preload and a job apart)."""

    def __init__(self, options: DemoOptions):
        from src.models.checkpoints import resolve_checkpoint
        from src.restoration.outputs import check_writable

        self.options = options
        self.checkpoint = resolve_checkpoint(options.ckpt)  # readable, before anything loads
        config = self.checkpoint.config
        self.default_task = str(config.get("task") or "lowlight")
        self.default_prompt_mode = str(config.get("prompt") or "uniform")
        self.overrides = options.model_overrides()  # sampling steps and guidance of this demo
        self.jobs_dir = Path(options.out_dir) / "jobs"
        check_writable(self.jobs_dir, "out_dir")
        self._restorers: dict = {}
        self._model_lock = threading.RLock()
        self.model_state = "not loaded"

    # --- models -----------------------------------------------------------------------------

    def restorer(self, task: str):
        """The model for ``task`` (the checkpoint's adapter, the task's prompts), loaded once."""
        with self._model_lock:
            if task not in self._restorers:
                from src.models.restorer import load_restorer

                extra = [] if task == self.default_task else [f"task={task}"]
                self.model_state = f"loading the {task} model"
                started = time.time()
                self._restorers[task] = load_restorer(
                    self.checkpoint, self.overrides + extra, device=self.options.inference.device
                )
                log.info("demo: %s model loaded in %.1f s", task, time.time() - started)
                self.model_state = "ready"
            return self._restorers[task]

    def preload(self) -> None:
        """Load the checkpoint's task model now (a failure is shown with the first job)."""
        try:
            self.restorer(self.default_task)
        except Exception as err:  # noqa: BLE001 - the page stays up; the first job says why
            self.model_state = f"failed: {user_message(err) or one_line(err)}"
            log.error("demo: the %s model did not load: %s", self.default_task, self.model_state)

    def start_preload(self) -> None:
        if self.options.preload:
            threading.Thread(target=self.preload, name="demo-preload", daemon=True).start()

    def loaded(self, task: str) -> bool:
        return task in self._restorers

    # --- what the page shows ----------------------------------------------------------------

    def describe(self) -> dict:
        from omegaconf import OmegaConf

        from src.data.images import IMAGE_EXTENSIONS

        uniform = {
            task: str(OmegaConf.load(CONFIG_DIR / "task" / f"{task}.yaml").get("uniform_prompt", "")).strip()
            for task in TASKS
        }
        return {
            "checkpoint": str(self.checkpoint.source),
            "model": self.checkpoint.config.get("model"),
            "tasks": list(TASKS),
            "default_task": self.default_task,
            "prompt_mode": self.default_prompt_mode,
            "uniform_prompts": uniform,
            "image_suffixes": sorted(IMAGE_EXTENSIONS),
            "video_suffixes": list(video_suffixes()),
            "max_upload_mb": self.options.max_upload_mb,
            "max_pixels": self.options.max_pixels,
            "max_video_seconds": self.options.max_video_seconds,
            "max_text": MAX_TEXT,
        }

    # --- requests and uploads ---------------------------------------------------------------

    def parse_request(self, task, prompt, text, caption, seed) -> Request:
        return parse_request(self.default_task, task, prompt, text, caption, seed)

    def submit(self, upload: str | Path | None, filename: str | None, request: Request) -> Job:
        """A job for the uploaded file (already on disk, e.g. in Gradio's upload folder), after
        the checks of its size and content: its copy in the job's folder, decoded if a photo."""
        if upload is None:
            raise UploadError("choose a photo or a clip first")
        upload = Path(upload)
        name = display_name(filename or upload.name)
        size = upload.stat().st_size
        if size > self.options.max_upload_bytes:
            mb = self.options.max_upload_mb
            raise UploadError(
                f"the upload is {size / 2**20:.1f} MB; this demo takes files up to {mb:g} MB "
                f"(max_upload_mb={mb:g})"
            )
        if size == 0:
            raise UploadError(f"{name} is empty (0 bytes): choose a photo or a clip")
        suffix = safe_suffix(filename or upload.name)
        job_id = secrets.token_hex(8)
        folder = self.jobs_dir / job_id
        folder.mkdir(parents=True)
        input_path = folder / f"input{suffix}"
        try:
            shutil.copyfile(upload, input_path)
            kind, details, image = self.check_input(input_path, name, suffix)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        log.info("demo: job %s: %s %s, task %s", job_id, kind, name, request.task)
        return Job(job_id, kind, name, folder, input_path, request, details, image)

    def check_input(self, path: Path, name: str, suffix: str) -> tuple[str, dict, object]:
        """("image" | "video", its size, the decoded photo or None); an UploadError says why not."""
        suffixes = video_suffixes()
        if suffix in suffixes:
            return "video", self.check_video(path, name), None
        details, image = self.check_image(path, name, suffixes)
        return "image", details, image

    def check_image(self, path: Path, name: str, suffixes) -> tuple[dict, object]:
        from PIL import Image, UnidentifiedImageError

        from src.data.images import IMAGE_EXTENSIONS, Source, SourceError, load_image

        max_pixels = self.options.max_pixels
        accepted = f"upload a photo ({' '.join(sorted(IMAGE_EXTENSIONS))}) or a clip ({' '.join(suffixes)})"
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                with Image.open(path) as image:  # the header only: the size before decoding
                    width, height = image.size
        except Image.DecompressionBombError:
            raise UploadError(
                f"{name} is too large an image to open here (max_pixels={max_pixels})"
            ) from None
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
            raise UploadError(
                f"{name} is not a supported file: its content is not an image we can read; {accepted}"
            ) from None
        if width * height > max_pixels:
            raise UploadError(
                f"{name} is {width}x{height} ({width * height / 1e6:.1f} megapixels); this demo takes "
                f"photos up to {max_pixels} pixels (max_pixels={max_pixels}): downscale it"
            )
        try:
            image = load_image(Source(key=path.stem, path=path))
        except SourceError as err:
            raise UploadError(f"{name} cannot be read as an image: {err}; {accepted}") from None
        return {"width": int(width), "height": int(height)}, image

    def check_video(self, path: Path, name: str) -> dict:
        from src.video.io import probe_video

        try:
            info = probe_video(path)
        except UserError as err:
            raise UploadError(f"{name}: {user_message(err) or one_line(err)}") from None
        except Exception as err:  # noqa: BLE001 - a decoder's failure on an uploaded file is the file's
            log.warning("probing %s failed", path, exc_info=True)
            raise UploadError(
                f"{name} cannot be read as a video ({type(err).__name__}: {one_line(err)[:200]})"
            ) from None
        seconds, limit = float(info.duration_s), self.options.max_video_seconds
        if seconds > limit:
            raise UploadError(
                f"{name} is {seconds:.1f} s long; this demo restores clips up to "
                f"{limit:g} s (max_video_seconds={limit:g}): trim it"
            )
        max_pixels = self.options.max_pixels
        if int(info.width) * int(info.height) > max_pixels:
            raise UploadError(
                f"{name} has {info.width}x{info.height} frames; this demo takes frames up to "
                f"{max_pixels} pixels (max_pixels={max_pixels}): downscale it"
            )
        fps = info.fps
        return {
            "width": int(info.width),
            "height": int(info.height),
            "frames": int(info.frames),
            "fps": f"{fps.numerator}/{fps.denominator}" if hasattr(fps, "numerator") else str(fps),
            "duration_s": round(seconds, 3),
        }

    # --- restoring --------------------------------------------------------------------------

    def prompt_for(self, restorer, request: Request) -> tuple[str, str]:
        """(prompt, prompt mode) of a request: the user's words, the task's uniform prompt, or the
        checkpoint's prompt mode (adaptive: the caption, else the generic scene)."""
        from src.prompts import prompts_for

        if request.prompt_choice == "text":
            return str(request.text), "text"
        mode = "uniform" if request.prompt_choice == "uniform" else restorer.prompt_mode
        return prompts_for(restorer.task_cfg, request.caption or None)[mode], mode

    def run(self, job: Job, report: Report | None = None) -> Job:
        """Restore the job (loading its task's model first if needed); ``report(fraction, text)``
        hears of the model load and of each sampling step. Raises what failed."""
        report = report or (lambda fraction, text: None)
        started = time.time()
        if not self.loaded(job.request.task):
            report(0.0, f"loading the {job.request.task} model")
        with self._model_lock:  # waits for a preload in progress
            restorer = self.restorer(job.request.task)
            job.prompt, job.prompt_mode = self.prompt_for(restorer, job.request)
            try:
                if job.kind == "image":
                    self._restore_image(job, restorer, report)
                else:
                    self._restore_video(job, restorer, report)
            finally:
                job.image = None
        job.seconds = round(time.time() - started, 2)
        log.info("demo: job %s done in %.1f s", job.id, job.seconds)
        return job

    def _restore_image(self, job: Job, restorer, report: Report) -> None:
        from src.restoration.outputs import write_outputs
        from src.utils.io import atomic_path

        o, request = self.options.inference, job.request
        width, height = job.details["width"], job.details["height"]
        calls = calls_per_image(restorer, height, width, o.mode, o.tile_overlap, o.tile_batch)
        steps = restorer.num_inference_steps
        progress = StepProgress(
            report, calls, steps, lambda call: f"tile batch {call + 1}/{calls}: " if calls > 1 else ""
        )
        report(0.0, f"restoring the {width}x{height} photo: task {request.task}, {steps} sampling steps")
        started = time.time()
        with counting_steps(restorer, progress):
            frames, info = restorer.restore(
                job.image,
                job.prompt,
                request.seed,
                **o.restore_kwargs(),
            )
        report(0.99, "writing the trajectory")
        with atomic_path(job.result) as temp:  # renamed into place when complete
            written = write_outputs(frames, temp, self.options.fps, self.options.gif_max_side)
            record = {
                "input": job.name,
                "kind": "image",
                "seed": request.seed,
                "prompt": job.prompt,
                "upscale": 1.0,
                **info,
                **written,
                **restorer.description,
                "prompt_mode": job.prompt_mode,  # the prompt used: text (the user's words), uniform or adaptive
                "caption": request.caption,
                "seconds": round(time.time() - started, 2),
            }
            (temp / "restore.json").write_text(json.dumps(record, indent=2) + "\n")
        job.files = [n for n in IMAGE_FILES if (job.result / n).is_file()]

    def _restore_video(self, job: Job, restorer, report: Report) -> None:
        from src.video.restore import VideoOptions, restore_video

        o, details, batch = self.options.inference, job.details, self.options.batch
        options = VideoOptions(
            seed=job.request.seed,
            mode=o.mode,
            batch=batch,
            tile_overlap=o.tile_overlap,
            tile_batch=o.tile_batch,
        )
        frames, steps = max(1, details["frames"]), restorer.num_inference_steps
        per_frame = calls_per_image(
            restorer, details["height"], details["width"], o.mode, o.tile_overlap, o.tile_batch
        )
        batches = math.ceil(frames / batch)
        calls = batches if o.mode != "tiled" else frames * per_frame

        def describe(call: int) -> str:
            first = call * batch if o.mode != "tiled" else call // per_frame
            last = min(frames, first + batch) if o.mode != "tiled" else first + 1
            return (
                f"frames {first + 1}-{last} of {frames}: "
                if last > first + 1
                else f"frame {first + 1} of {frames}: "
            )

        report(
            0.0,
            f"restoring {details['frames']} frames ({details['duration_s']:g} s, "
            f"{details['width']}x{details['height']}): task {job.request.task}, "
            f"{steps} sampling steps per frame",
        )
        with counting_steps(restorer, StepProgress(report, calls, steps, describe)):
            restore_video(restorer, job.input_path, job.result, job.prompt, options, progress=False)
        job.files = [n for n in VIDEO_FILES if (job.result / n).is_file()]
