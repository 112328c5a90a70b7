"""python -m src.demo ckpt=<run dir | lora dir | .ckpt> [port=8765] [host=127.0.0.1]

A browser demo of a trained adapter, on the standard library's web server (no web framework, no
build step, nothing fetched from the internet). The page (``src/demo_page/``) uploads a photo or
a short clip, with the task (sr, deblur, lowlight, allinone; default: the checkpoint's), the
prompt (the checkpoint's prompt mode, the task's uniform prompt, or the user's own words) and a
seed; a worker thread restores one job at a time and the page polls its status, then shows the
trajectory and the restored image with download links.

- ``GET /``: the page; ``GET /api/config``: tasks, prompt modes and limits for it;
- ``POST /api/restore``: the file as the raw request body (its name URL-encoded in the
  ``X-Filename`` header, the options in the query string: ``task``, ``prompt``
  (checkpoint | uniform | text), ``text``, ``caption``, ``seed``) or a ``multipart/form-data``
  form (a ``file`` field and the same fields); answers 202 with the job's status;
- ``GET /api/jobs/<id>``: the job's status (``queued``, ``running``, ``done`` or ``error``);
- ``GET /files/<id>/<name>``: a file of the job's result (byte ranges for the videos).

Every error is an HTTP 4xx with ``{"error": "..."}``, the line the page shows. A photo gives the
files of ``src.restore`` (``frames/``, ``restored.png``, ``strip.png``, ``trajectory.mp4``,
``trajectory.gif``, ``restore.json``); a clip (``src.video.restore``) ``restored.mp4``,
``side_by_side.mp4`` and ``restore.json``. Each job lives in ``<out_dir>/jobs/<id>/``: the
upload (``input.<ext>``) and ``result/``, the only folder ``/files/<id>/`` serves.

One task's model serves every prompt choice: a prompt mode only selects the prompt text
(``src.prompts.prompts_for``), so ``prompt=uniform`` costs no second model; each other task is
loaded once (``task=<t>`` override of the checkpoint's config) and kept.
"""

from __future__ import annotations

import json
import logging
import queue
import re
import secrets
import shutil
import signal
import sys
import threading
import time
import warnings
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlsplit

import hydra
from omegaconf import DictConfig

from src.utils.cli import (
    ConfigError,
    InputError,
    UserError,
    check_device,
    hydra_cli,
    number,
    one_line,
    user_errors,
    user_message,
)
from src.utils.config import CONFIG_DIR

log = logging.getLogger(__name__)

PAGE_DIR = Path(__file__).with_name("demo_page")
# The browser of the demo's tests and screenshots: Debian's Chromium (`make browser`), driven by
# Playwright; no sandbox (containers run as root), no GPU, nothing that reaches the network itself.
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
STATIC = {  # what /static/ serves: these files of PAGE_DIR and no other
    "demo.js": "text/javascript; charset=utf-8",
    "demo.css": "text/css; charset=utf-8",
}
TASKS = tuple(sorted(p.stem for p in (CONFIG_DIR / "task").glob("*.yaml")))  # allinone deblur lowlight sr
PROMPT_CHOICES = ("checkpoint", "uniform", "text")
JOB_ID = re.compile(r"[0-9a-f]{16}")
FILE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}")
CONTENT_TYPES = {
    ".png": "image/png",
    ".gif": "image/gif",
    ".mp4": "video/mp4",
    ".json": "application/json; charset=utf-8",
}
MAX_SEED = 2**32 - 1
MAX_TEXT = 1000  # characters of a prompt or caption
DRAIN_LIMIT = 1 << 30  # an oversized upload is read (and dropped) up to this, so the client sees the answer
CSP = (
    "default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; "
    "object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


class RequestError(Exception):
    """An HTTP error answered as ``{"error": message}``."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


@dataclass
class Job:
    id: str
    kind: str  # image | video
    name: str  # the upload's file name, for display and restore.json
    folder: Path
    input_path: Path
    task: str
    prompt_choice: str  # checkpoint | uniform | text
    text: str | None
    caption: str | None
    seed: int
    details: dict  # the input's size (and a clip's frames, fps, duration)
    image: object = None  # the decoded photo until it is restored
    state: str = "queued"  # queued | running | done | error
    message: str = "queued"
    error: str | None = None
    prompt: str | None = None
    files: list[str] = field(default_factory=list)
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None


def safe_suffix(filename: str) -> str:
    """The file name's extension, lower case, when it is a plain one (``.png``, ``.mp4``), else ''."""
    suffix = Path(filename.replace("\\", "/")).suffix.lower()
    return suffix if re.fullmatch(r"\.[a-z0-9]{1,8}", suffix) else ""


def display_name(filename: str) -> str:
    """The upload's base name without control characters, at most 120 characters."""
    base = filename.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = "".join(c for c in base if c.isprintable()).strip()
    return cleaned[:120] or "upload"


def parse_multipart(content_type: str, body: bytes) -> tuple[dict[str, str], str, bytes]:
    """(text fields, file name, file bytes) of a ``multipart/form-data`` body (the stdlib's
    ``cgi`` is gone in Python 3.13; ``email`` parses MIME). The file is the part named ``file``
    (else the first part with a file name)."""
    from email.parser import BytesParser
    from email.policy import HTTP

    if "boundary=" not in content_type:
        raise RequestError(400, "the multipart upload names no boundary in its Content-Type")
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1", "replace")
    message = BytesParser(policy=HTTP).parsebytes(head + body)
    if not message.is_multipart():
        raise RequestError(400, "the multipart upload could not be parsed")
    fields: dict[str, str] = {}
    files: list[tuple[str | None, str, bytes]] = []
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True) or b""
        filename = part.get_filename()
        if filename is not None:
            files.append((name, filename, payload))
        elif name:
            fields[str(name)] = payload.decode("utf-8", "replace")
    chosen = [f for f in files if f[0] == "file"] or files
    if not chosen:
        raise RequestError(400, 'the multipart upload has no file (a part named "file" with a filename)')
    return fields, chosen[0][1], chosen[0][2]


def check_settings(cfg: DictConfig) -> None:
    """Every server setting, before the checkpoint is read."""
    from src.restore import model_overrides

    number(cfg.port, "port", at_least=0, at_most=65535)
    if not str(cfg.host).strip():
        raise ConfigError("host= is empty: use 127.0.0.1 (this machine only) or 0.0.0.0 (the network)")
    number(cfg.max_upload_mb, "max_upload_mb", float, above=0)
    number(cfg.max_pixels, "max_pixels", at_least=1)
    number(cfg.max_video_seconds, "max_video_seconds", float, above=0)
    number(cfg.fps, "fps", float, above=0)
    number(cfg.gif_max_side, "gif_max_side", at_least=1)
    number(cfg.batch, "batch", at_least=1)
    number(cfg.tile_batch, "tile_batch", at_least=1)
    number(cfg.tile_overlap, "tile_overlap", at_least=0)
    if cfg.mode not in ("resize", "tiled"):
        raise ConfigError(f"mode must be resize or tiled, got {cfg.mode}")
    check_device(cfg.device)
    model_overrides(cfg)  # num_inference_steps, guidance_scale


class Demo:
    """The jobs, the models (one per task, loaded on first use) and the worker thread."""

    def __init__(self, cfg: DictConfig):
        from src.models.restorer import resolve_checkpoint
        from src.restore import check_writable, model_overrides

        check_settings(cfg)
        self.cfg = cfg
        self.checkpoint = resolve_checkpoint(cfg.ckpt)  # readable, before anything loads
        config = self.checkpoint.config
        self.default_task = str(config.get("task") or "lowlight")
        self.default_prompt_mode = str(config.get("prompt") or "uniform")
        self.overrides = model_overrides(cfg)  # sampling steps and guidance of this server
        self.jobs_dir = Path(str(cfg.out_dir)) / "jobs"
        check_writable(self.jobs_dir, "out_dir")
        self.max_upload_bytes = int(float(cfg.max_upload_mb) * 2**20)
        self.max_pixels = int(cfg.max_pixels)
        self.max_video_seconds = float(cfg.max_video_seconds)
        self._restorers: dict = {}
        self._model_lock = threading.RLock()  # one restore (or model load) at a time
        self._jobs: dict[str, Job] = {}
        self._order: list[str] = []  # queued job ids, oldest first
        self._jobs_lock = threading.Lock()
        self._queue: queue.Queue[Job | None] = queue.Queue()
        self._worker = threading.Thread(target=self._work, name="demo-worker", daemon=True)
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
                    self.checkpoint, self.overrides + extra, device=str(self.cfg.device)
                )
                log.info("demo: %s model loaded in %.1f s", task, time.time() - started)
                self.model_state = "ready"
            return self._restorers[task]

    def prompt_for(self, restorer, job: Job) -> tuple[str, str]:
        """(prompt, prompt mode) of a job: the user's words, the task's uniform prompt, or the
        checkpoint's prompt mode (adaptive: the caption, else the generic scene)."""
        from src.prompts import prompts_for

        if job.prompt_choice == "text":
            return str(job.text), "text"
        mode = "uniform" if job.prompt_choice == "uniform" else restorer.prompt_mode
        return prompts_for(restorer.task_cfg, job.caption or None)[mode], mode

    # --- the page's settings ----------------------------------------------------------------

    @staticmethod
    def video_suffixes() -> tuple[str, ...]:
        from src.video.io import VIDEO_SUFFIXES

        return tuple(str(s).lower() for s in VIDEO_SUFFIXES)

    def page_config(self) -> dict:
        from omegaconf import OmegaConf

        from src.data.images import IMAGE_EXTENSIONS

        video_suffixes = self.video_suffixes()
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
            "prompt_choices": list(PROMPT_CHOICES),
            "uniform_prompts": uniform,
            "image_suffixes": sorted(IMAGE_EXTENSIONS),
            "video_suffixes": list(video_suffixes),
            "max_upload_mb": float(self.cfg.max_upload_mb),
            "max_pixels": self.max_pixels,
            "max_video_seconds": self.max_video_seconds,
            "max_text": MAX_TEXT,
            "model_state": self.model_state,
        }

    # --- jobs -------------------------------------------------------------------------------

    def parse_options(self, fields: dict[str, str]) -> dict:
        task = (fields.get("task") or "").strip() or "checkpoint"
        if task == "checkpoint":
            task = self.default_task
        if task not in TASKS:
            raise RequestError(
                400, f"task must be one of {', '.join(TASKS)} (or checkpoint), got {task[:40]!r}"
            )
        choice = (fields.get("prompt") or "").strip() or "checkpoint"
        if choice not in PROMPT_CHOICES:
            raise RequestError(400, f"prompt must be one of {', '.join(PROMPT_CHOICES)}, got {choice[:40]!r}")
        text = " ".join((fields.get("text") or "").split())
        caption = " ".join((fields.get("caption") or "").split())
        for value, what in ((text, "the prompt"), (caption, "the caption")):
            if len(value) > MAX_TEXT:
                raise RequestError(400, f"{what} is {len(value)} characters long; at most {MAX_TEXT}")
        if choice == "text" and not text:
            raise RequestError(400, "'your own words' needs a prompt: write it in the text field")
        seed_text = (fields.get("seed") or "").strip() or "0"
        if not re.fullmatch(r"\d{1,10}", seed_text) or int(seed_text) > MAX_SEED:
            raise RequestError(
                400, f"seed must be a whole number from 0 to {MAX_SEED}, got {seed_text[:40]!r}"
            )
        return {
            "task": task,
            "prompt_choice": choice,
            "text": text or None,
            "caption": caption or None,
            "seed": int(seed_text),
        }

    def submit(self, data: bytes, filename: str, fields: dict[str, str]) -> Job:
        """Check the options and the file (type by content, size, length) and queue the job."""
        options = self.parse_options(fields)
        name = display_name(filename)
        if not data:
            raise RequestError(400, f"{name} is empty (0 bytes): choose a photo or a clip")
        suffix = safe_suffix(filename)
        job_id = secrets.token_hex(8)
        folder = self.jobs_dir / job_id
        folder.mkdir(parents=True)
        input_path = folder / f"input{suffix}"
        try:
            input_path.write_bytes(data)
            kind, details, image = self.check_input(input_path, name, suffix)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        job = Job(
            id=job_id,
            kind=kind,
            name=name,
            folder=folder,
            input_path=input_path,
            details=details,
            image=image,
            **options,
        )
        with self._jobs_lock:
            self._jobs[job_id] = job
            self._order.append(job_id)
        self._queue.put(job)
        log.info("demo: job %s queued: %s %s, task %s", job_id, kind, name, job.task)
        return job

    def check_input(self, path: Path, name: str, suffix: str) -> tuple[str, dict, object]:
        """("image" | "video", its size, the decoded photo or None); a RequestError says why not."""
        video_suffixes = self.video_suffixes()
        if suffix in video_suffixes:
            return "video", self.check_video(path, name), None
        details, image = self.check_image(path, name, video_suffixes)
        return "image", details, image

    def check_image(self, path: Path, name: str, video_suffixes) -> tuple[dict, object]:
        from PIL import Image, UnidentifiedImageError

        from src.data.images import IMAGE_EXTENSIONS, Source, SourceError, load_image

        accepted = (
            f"upload a photo ({' '.join(sorted(IMAGE_EXTENSIONS))}) or a clip ({' '.join(video_suffixes)})"
        )
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                with Image.open(path) as image:  # the header only: the size before decoding
                    width, height = image.size
        except Image.DecompressionBombError:
            raise RequestError(
                413, f"{name} is too large an image to open here (max_pixels={self.max_pixels})"
            ) from None
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
            raise RequestError(
                415, f"{name} is not a supported file: its content is not an image we can read; {accepted}"
            ) from None
        if width * height > self.max_pixels:
            raise RequestError(
                413,
                f"{name} is {width}x{height} ({width * height / 1e6:.1f} megapixels); this demo takes "
                f"photos up to {self.max_pixels} pixels (max_pixels={self.max_pixels}): downscale it",
            )
        try:
            image = load_image(Source(key=path.stem, path=path))
        except SourceError as err:
            raise RequestError(415, f"{name} cannot be read as an image: {err}; {accepted}") from None
        return {"width": int(width), "height": int(height)}, image

    def check_video(self, path: Path, name: str) -> dict:
        from src.video.io import probe_video

        try:
            info = probe_video(path)
        except UserError as err:
            raise RequestError(415, f"{name}: {user_message(err) or one_line(err)}") from None
        except Exception as err:  # noqa: BLE001 - a decoder's failure on an uploaded file is the file's
            log.warning("probing %s failed", path, exc_info=True)
            raise RequestError(
                415, f"{name} cannot be read as a video ({type(err).__name__}: {one_line(err)[:200]})"
            ) from None
        seconds = float(info.duration_s)
        if seconds > self.max_video_seconds:
            raise RequestError(
                413,
                f"{name} is {seconds:.1f} s long; this demo restores clips up to "
                f"{self.max_video_seconds:g} s (max_video_seconds={self.max_video_seconds:g}): trim it",
            )
        if int(info.width) * int(info.height) > self.max_pixels:
            raise RequestError(
                413,
                f"{name} has {info.width}x{info.height} frames; this demo takes frames up to "
                f"{self.max_pixels} pixels (max_pixels={self.max_pixels}): downscale it",
            )
        fps = info.fps
        return {
            "width": int(info.width),
            "height": int(info.height),
            "frames": int(info.frames),
            "fps": f"{fps.numerator}/{fps.denominator}" if hasattr(fps, "numerator") else str(fps),
            "duration_s": round(seconds, 3),
        }

    def job(self, job_id: str) -> Job:
        if not JOB_ID.fullmatch(job_id):
            raise RequestError(400, f"bad job id {job_id[:40]!r}: job ids are 16 hex digits")
        with self._jobs_lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise RequestError(404, f"no job {job_id} on this server")
        return job

    def status(self, job_id: str) -> dict:
        job = self.job(job_id)
        with self._jobs_lock:
            ahead = self._order.index(job.id) if job.id in self._order and job.state == "queued" else 0
        message = job.message
        if job.state == "queued":
            message = f"queued ({ahead} job{'s' if ahead != 1 else ''} ahead)" if ahead else "queued"
            if self.model_state.startswith("loading"):
                message += f": {self.model_state}"
        end = job.finished or time.time()
        return {
            "id": job.id,
            "state": job.state,
            "message": message,
            "error": job.error,
            "kind": job.kind,
            "name": job.name,
            "task": job.task,
            "prompt_choice": job.prompt_choice,
            "prompt": job.prompt,
            "seed": job.seed,
            "input": job.details,
            "files": {name: f"/files/{job.id}/{quote(name)}" for name in job.files},
            "seconds": round(end - (job.started or end), 2),
        }

    def file(self, job_id: str, name: str) -> Path:
        """A file of a job's result folder; nothing outside it, whatever the name says."""
        job = self.job(job_id)
        if not FILE_NAME.fullmatch(name) or ".." in name:
            raise RequestError(400, f"bad file name {name[:60]!r}")
        root = (job.folder / "result").resolve()
        path = (root / name).resolve()
        if path.parent != root or not path.is_file():
            raise RequestError(404, f"job {job_id} has no file {name}")
        return path

    # --- the worker ---------------------------------------------------------------------------

    def start(self) -> None:
        self._worker.start()

    def stop(self) -> None:
        self._queue.put(None)

    def _work(self) -> None:
        if self.cfg.preload:
            try:
                self.restorer(self.default_task)
            except Exception as err:  # noqa: BLE001 - shown with the first job; the server stays up
                self.model_state = f"failed: {user_message(err) or one_line(err)}"
                log.error("demo: the %s model did not load: %s", self.default_task, self.model_state)
        while True:
            job = self._queue.get()
            if job is None:
                return
            self._run(job)

    def _run(self, job: Job) -> None:
        job.state, job.started = "running", time.time()
        with self._jobs_lock:
            if job.id in self._order:
                self._order.remove(job.id)
        try:
            with self._model_lock:
                if job.task not in self._restorers:
                    job.message = f"loading the {job.task} model"
                restorer = self.restorer(job.task)
                job.prompt, mode = self.prompt_for(restorer, job)
                if job.kind == "image":
                    self._restore_image(job, restorer, mode)
                else:
                    self._restore_video(job, restorer)
            job.state, job.message = "done", f"done in {time.time() - job.started:.1f} s"
            log.info("demo: job %s done in %.1f s", job.id, time.time() - job.started)
        except Exception as err:  # noqa: BLE001 - every failure is the job's, the server goes on
            message = user_message(err)
            if message is None:
                log.exception("demo: job %s failed", job.id)
                message = (
                    f"internal error ({type(err).__name__}: {one_line(err)[:300]}); see the server's log"
                )
            job.state, job.error, job.message = "error", message, "failed"
        finally:
            job.finished, job.image = time.time(), None

    def _restore_image(self, job: Job, restorer, mode: str) -> None:
        from src.restore import write_outputs
        from src.utils.io import atomic_path

        cfg = self.cfg
        width, height = job.details["width"], job.details["height"]
        job.message = (
            f"restoring the {width}x{height} photo: task {job.task}, "
            f"{restorer.num_inference_steps} sampling steps"
        )
        started = time.time()
        frames, info = restorer.restore(
            job.image,
            job.prompt,
            job.seed,
            mode=str(cfg.mode),
            overlap=int(cfg.tile_overlap),
            tile_batch=int(cfg.tile_batch),
        )
        job.message = "writing the trajectory"
        with atomic_path(job.folder / "result") as temp:  # renamed into place when complete
            written = write_outputs(frames, temp, float(cfg.fps), int(cfg.gif_max_side))
            record = {
                "input": job.name,
                "kind": "image",
                "seed": job.seed,
                "prompt": job.prompt,
                "upscale": 1.0,
                **info,
                **written,
                **restorer.description,
                "prompt_mode": mode,  # the prompt used: text (the user's words), uniform or adaptive
                "caption": job.caption,
                "seconds": round(time.time() - started, 2),
            }
            (temp / "restore.json").write_text(json.dumps(record, indent=2) + "\n")
        names = ("restored.png", "trajectory.mp4", "trajectory.gif", "strip.png", "restore.json")
        job.files = [n for n in names if (job.folder / "result" / n).is_file()]

    def _restore_video(self, job: Job, restorer) -> None:
        from src.video.restore import VideoOptions, restore_video

        cfg, details = self.cfg, job.details
        options = VideoOptions(
            seed=job.seed,
            mode=str(cfg.mode),
            batch=int(cfg.batch),
            tile_overlap=int(cfg.tile_overlap),
            tile_batch=int(cfg.tile_batch),
        )
        job.message = (
            f"restoring {details['frames']} frames ({details['duration_s']:g} s, "
            f"{details['width']}x{details['height']}): task {job.task}, "
            f"{restorer.num_inference_steps} sampling steps per frame"
        )
        restore_video(restorer, job.input_path, job.folder / "result", job.prompt, options, progress=False)
        names = ("restored.mp4", "side_by_side.mp4", "restore.json")
        job.files = [n for n in names if (job.folder / "result" / n).is_file()]


class Handler(BaseHTTPRequestHandler):
    server_version = "progrestore-demo/1"
    protocol_version = "HTTP/1.0"  # one request per connection: simple, and enough for one user

    @property
    def demo(self) -> Demo:
        return self.server.demo  # type: ignore[attr-defined]

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class's name
        log.debug("%s %s", self.address_string(), format % args)

    # --- answers ------------------------------------------------------------------------------

    def _headers(self, status: int, content_type: str, length: int, extra: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(length))
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Security-Policy", CSP)
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()

    def send_json(self, status: int, payload: dict) -> None:
        body = json.dumps(payload).encode("utf-8")
        self._headers(status, "application/json; charset=utf-8", len(body), {"Cache-Control": "no-store"})
        self.wfile.write(body)

    def send_bytes(self, content_type: str, body: bytes) -> None:
        self._headers(200, content_type, len(body), {"Cache-Control": "no-cache"})
        self.wfile.write(body)

    def send_path(self, path: Path) -> None:
        """A result file, with byte ranges (what a <video> asks for)."""
        size = path.stat().st_size
        content_type = CONTENT_TYPES.get(path.suffix.lower(), "application/octet-stream")
        start, end, status = 0, size - 1, 200
        extra = {"Accept-Ranges": "bytes", "Cache-Control": "private, max-age=3600"}
        wanted = re.fullmatch(r"bytes=(\d*)-(\d*)", (self.headers.get("Range") or "").strip())
        if wanted and (wanted.group(1) or wanted.group(2)):
            if wanted.group(1):
                start = int(wanted.group(1))
                end = min(int(wanted.group(2)), size - 1) if wanted.group(2) else size - 1
            else:  # the last N bytes
                start = max(0, size - int(wanted.group(2)))
            if start >= size or start > end:
                self._headers(416, "text/plain", 0, {"Content-Range": f"bytes */{size}"})
                return
            status = 206
            extra["Content-Range"] = f"bytes {start}-{end}/{size}"
        self._headers(status, content_type, end - start + 1, extra)
        with open(path, "rb") as handle:
            handle.seek(start)
            remaining = end - start + 1
            while remaining > 0:
                chunk = handle.read(min(1 << 20, remaining))
                if not chunk:
                    break
                self.wfile.write(chunk)
                remaining -= len(chunk)

    def _answer(self, action) -> None:
        try:
            action()
        except RequestError as err:
            self.send_json(err.status, {"error": err.message})
        except (BrokenPipeError, ConnectionResetError):
            pass  # the browser went away
        except Exception as err:  # noqa: BLE001 - one bad request must not take the server down
            log.exception("demo: %s %s failed", self.command, self.path)
            try:
                self.send_json(500, {"error": f"internal error ({type(err).__name__}); see the server's log"})
            except OSError:
                pass

    # --- routes -------------------------------------------------------------------------------

    def do_GET(self) -> None:  # noqa: N802 - the base class's name
        self._answer(self._get)

    def do_POST(self) -> None:  # noqa: N802
        self._answer(self._post)

    def _get(self) -> None:
        path = urlsplit(self.path).path
        if path in ("/", "/index.html"):
            self.send_bytes("text/html; charset=utf-8", (PAGE_DIR / "index.html").read_bytes())
        elif path.startswith("/static/") and path[len("/static/") :] in STATIC:
            name = path[len("/static/") :]
            self.send_bytes(STATIC[name], (PAGE_DIR / name).read_bytes())
        elif path == "/api/config":
            self.send_json(200, self.demo.page_config())
        elif path.startswith("/api/jobs/"):
            self.send_json(200, self.demo.status(unquote(path[len("/api/jobs/") :])))
        elif path.startswith("/files/"):
            parts = path[len("/files/") :].split("/")
            if len(parts) != 2:
                raise RequestError(400, "files are /files/<job id>/<name>")
            self.send_path(self.demo.file(unquote(parts[0]), unquote(parts[1])))
        elif path == "/favicon.ico":
            self._headers(204, "image/x-icon", 0)
        else:
            raise RequestError(404, f"no page {path[:80]}")

    def _post(self) -> None:
        path = urlsplit(self.path).path
        if path != "/api/restore":
            raise RequestError(404, f"no API {path[:80]}: POST /api/restore")
        data, filename, fields = self._read_upload()
        job = self.demo.submit(data, filename, fields)
        self.send_json(202, self.demo.status(job.id))

    def _read_upload(self) -> tuple[bytes, str, dict[str, str]]:
        length_text = self.headers.get("Content-Length")
        if length_text is None:
            raise RequestError(411, "the upload has no Content-Length: send the file as the request body")
        if not length_text.strip().isdigit():
            raise RequestError(400, f"bad Content-Length {length_text[:40]!r}")
        length, limit = int(length_text), self.demo.max_upload_bytes
        if length > limit:
            self._drain(length)
            mb = float(self.demo.cfg.max_upload_mb)
            raise RequestError(
                413,
                f"the upload is {length / 2**20:.1f} MB; this demo takes files up to {mb:g} MB "
                f"(max_upload_mb={mb:g})",
            )
        data = self.rfile.read(length)
        if len(data) < length:
            raise RequestError(400, f"the upload ended after {len(data)} of {length} bytes")
        query = parse_qs(urlsplit(self.path).query, keep_blank_values=True)
        fields = {key: values[-1] for key, values in query.items()}
        content_type = self.headers.get("Content-Type") or ""
        if content_type.lower().startswith("multipart/form-data"):
            form, filename, data = parse_multipart(content_type, data)
            fields.update(form)
        else:
            filename = unquote(self.headers.get("X-Filename") or "") or fields.get("filename") or "upload"
        return data, filename, fields

    def _drain(self, length: int) -> None:
        """Read an oversized body (up to DRAIN_LIMIT) so the client gets the answer, not a reset."""
        if length > DRAIN_LIMIT:
            self.close_connection = True
            return
        remaining = length
        while remaining > 0:
            chunk = self.rfile.read(min(1 << 20, remaining))
            if not chunk:
                break
            remaining -= len(chunk)


def make_server(demo: Demo, host: str, port: int) -> ThreadingHTTPServer:
    try:
        server = ThreadingHTTPServer((host, port), Handler)
    except OSError as err:
        raise InputError(
            f"cannot serve on {host}:{port} ({err.strerror or type(err).__name__}): choose another port= "
            "(port=0 picks a free one) or host="
        ) from None
    server.daemon_threads = True
    server.demo = demo  # type: ignore[attr-defined]
    return server


def url_of(server: ThreadingHTTPServer) -> str:
    host, port = server.server_address[:2]
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
    return f"http://{shown}:{port}/"


def serve(cfg: DictConfig) -> None:
    demo = Demo(cfg)  # settings, checkpoint and out_dir checked before the port is taken
    server = make_server(demo, str(cfg.host), int(cfg.port))
    demo.start()
    print(f"progrestore demo: {url_of(server)}", flush=True)
    log.info(
        "demo: checkpoint %s (task %s); jobs under %s",
        demo.checkpoint.source,
        demo.default_task,
        demo.jobs_dir,
    )

    def stop(_signum, _frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)  # a terminated server stops like Ctrl-C: cleanly
    try:
        server.serve_forever(poll_interval=0.5)
    except KeyboardInterrupt:
        print("progrestore demo: stopped", file=sys.stderr)
    finally:
        signal.signal(signal.SIGTERM, previous)
        server.server_close()
        demo.stop()


@hydra.main(config_path=str(CONFIG_DIR), config_name="demo", version_base="1.3")
@user_errors("python -m src.demo ckpt=<run dir | lora dir | .ckpt> [port=8765] [host=127.0.0.1]")
def main(cfg: DictConfig) -> None:
    serve(cfg)


if __name__ == "__main__":
    hydra_cli(main, "demo")
