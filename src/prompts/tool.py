"""Scene-adaptive prompts for a built dataset: clean image -> caption -> restoration prompt.

For every clip of a dataset made by ``python -m src.build_dataset`` (line-aligned with videos.txt):

1. its clean image: the source image when the dataset records a readable one (``source_dir`` of
   ``build_manifest.json`` + the record's ``source``, or a bundled photograph), else the clip's last
   frame; downscaled to ``image_max_side`` and PNG-encoded (the bytes sent and hashed);
2. a caption of it (captioner), cached under sha256(PNG) + backend + model + instruction;
3. a prompt from the caption (refiner), cached under caption + task + backend + model + system
   prompt;
4. the prompt's token count, cut at a word boundary when over ``max_tokens`` (one warning per clip).

Clips sharing an image or a caption share one request. Then, only when every clip has a prompt,
``prompts_adaptive.txt`` (and ``prompt.txt`` when the dataset's selected mode is adaptive) and
``metadata.jsonl`` are rewritten atomically; each metadata record keeps its fields, gets a
``prompting`` record and ``prompts.adaptive`` updated. When some clips fail, nothing is rewritten,
the answers obtained are in the cache, and a rerun requests only the gaps.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from src.prompts import prompt_file_name
from src.prompts.backends import BackendError, ClipImage
from src.prompts.cache import CACHE_DIR_NAME, PromptCache, cache_key
from src.prompts.tokens import TokenCounter
from src.utils.cli import InputError, UserError
from src.utils.io import write_text_atomic

log = logging.getLogger(__name__)


class PromptsError(UserError, RuntimeError):
    """The run cannot start or did not give every clip a prompt; the message says what to do."""


@dataclass
class PromptsReport:
    clips: int = 0
    images: int = 0
    captions_new: int = 0
    captions_cached: int = 0
    refinements_new: int = 0
    refinements_cached: int = 0
    truncated: int = 0
    http_requests: int = 0
    failures: dict[str, str] = field(default_factory=dict)

    def summary(self) -> str:
        return (
            f"{self.clips} clips ({self.images} images): captions {self.captions_new} new + "
            f"{self.captions_cached} cached, prompts {self.refinements_new} new + "
            f"{self.refinements_cached} cached, {self.truncated} truncated, {self.http_requests} HTTP requests"
        )


# ----------------------------------------------------------------------------------------------
# Reading the dataset
# ----------------------------------------------------------------------------------------------
def _read_json(path: Path):
    from src.utils.io import read_json

    if not path.is_file():
        return None
    return read_json(path, "a file of the dataset", PromptsError)


def read_dataset(root: Path) -> tuple[list[str], list[dict], dict]:
    """(videos, metadata records aligned with videos, manifest) of a built dataset."""
    videos_path, metadata_path = root / "videos.txt", root / "metadata.jsonl"
    for path in (videos_path, metadata_path, root / "build_manifest.json"):
        if not path.is_file():
            raise PromptsError(
                f"{root} is not a built dataset: {path.name} is missing (python -m src.build_dataset)"
            )
    from src.utils.io import read_jsonl, read_text

    videos = [
        line for line in read_text(videos_path, "the clip list", PromptsError).splitlines() if line.strip()
    ]
    records = read_jsonl(metadata_path, "the clip records", PromptsError)
    by_video = {record.get("video"): record for record in records}
    missing = [video for video in videos if video not in by_video]
    if missing or len(records) != len(videos):
        raise PromptsError(
            f"{metadata_path} does not match videos.txt ({len(records)} records, {len(videos)} clips"
            + (f"; no record for {missing[0]}" if missing else "")
            + "): rebuild the dataset"
        )
    return videos, [by_video[video] for video in videos], _read_json(root / "build_manifest.json") or {}


def selected_mode(root: Path, manifest: dict, records: list[dict]) -> str:
    """The prompt mode the dataset was built with: the manifest's ``prompt_mode`` if it has one,
    else the records' ``prompt_mode`` (the builder writes it there), else whether prompt.txt equals
    prompts_adaptive.txt."""
    mode = manifest.get("prompt_mode") or next(
        (r["prompt_mode"] for r in records if r.get("prompt_mode")), None
    )
    if mode:
        return str(mode)
    try:
        same = (root / "prompt.txt").read_bytes() == (root / prompt_file_name("adaptive")).read_bytes()
    except OSError:
        same = False
    return "adaptive" if same else "uniform"


def image_origin(root: Path, manifest: dict, record: dict) -> tuple[str, str]:
    """(kind, where) of a clip's clean image: ("source", path), ("bundled", key) or
    ("last_frame", clip path)."""
    from src.data.images import BUNDLED_PHOTOS

    source_dir = (manifest.get("fingerprint") or {}).get("source_dir")
    source, key = record.get("source"), record.get("source_key")
    if source_dir and source:
        path = Path(source_dir) / source
        if path.is_file():
            return "source", str(path)
    elif source and source == key and key in BUNDLED_PHOTOS:
        return "bundled", key
    return "last_frame", str(root / record["video"])


def load_clean_image(kind: str, where: str, key: str) -> np.ndarray:
    """(H, W, 3) uint8 RGB of an image origin."""
    from src.data.images import Source, load_image

    if kind == "source":
        return load_image(Source(key, Path(where)))
    if kind == "bundled":
        return load_image(Source(key, None))
    path = Path(where)
    if path.is_dir():  # PNG frame folder: read only the last frame
        import cv2

        files = sorted(path.glob("*.png"))
        if not files:
            raise InputError(f"no PNG frames in {path}")
        return cv2.imread(str(files[-1]), cv2.IMREAD_COLOR)[..., ::-1]
    from src.data.clip_io import read_clip

    return read_clip(path)[-1]


def encode_png(image: np.ndarray, max_side: int) -> bytes:
    """PNG bytes of ``image`` downscaled (area) so that its longer side is at most ``max_side``."""
    import cv2

    height, width = image.shape[:2]
    scale = max_side / max(height, width) if max_side else 1.0
    if scale < 1:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    ok, data = cv2.imencode(".png", np.ascontiguousarray(image[..., ::-1]))
    if not ok:
        raise ValueError("PNG encoding failed")
    return data.tobytes()


def lookup_keys(record: dict) -> tuple[str, ...]:
    """Names a captions file may use for a clip's source, as the builder looks them up."""
    key, source = record.get("source_key", ""), record.get("source", "")
    names = (key, source, Path(source).name, Path(key).name)
    return tuple(dict.fromkeys(n for n in names if n))


# ----------------------------------------------------------------------------------------------
# Running
# ----------------------------------------------------------------------------------------------
def _run_pool(
    jobs: dict, work: Callable, concurrency: int, desc: str, progress: bool
) -> tuple[dict, dict[str, str]]:
    """Run ``work(job_id, job)`` over ``jobs`` with ``concurrency`` threads. Returns (results,
    errors by job id). A fatal :class:`BackendError` cancels what has not started and is raised
    once the running jobs end (each is bounded by its timeout and retries)."""
    from tqdm import tqdm

    results, errors = {}, {}
    stop = threading.Event()

    def guarded(job_id, job):
        if stop.is_set():
            return None
        try:
            return work(job_id, job)
        except BackendError as err:
            if err.fatal:  # set here, not in the collecting loop: a free worker starts the next job at once
                stop.set()
            raise

    bar = tqdm(total=len(jobs), desc=desc, unit="item", disable=not progress or not jobs)
    fatal = None
    with ThreadPoolExecutor(max_workers=max(1, int(concurrency))) as pool:
        futures = {pool.submit(guarded, job_id, job): job_id for job_id, job in jobs.items()}
        pending = set(futures)
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                job_id = futures[future]
                bar.update(1)
                try:
                    results[job_id] = future.result()
                except BackendError as err:
                    if err.fatal and fatal is None:
                        fatal = err
                        stop.set()
                        for other in pending:
                            other.cancel()
                    errors[job_id] = str(err)
                except Exception as err:  # one unreadable image must not stop the other clips
                    errors[job_id] = f"{type(err).__name__}: {err}"
    bar.close()
    if fatal is not None:
        raise fatal
    return results, errors


def generate_prompts(
    root: str | Path,
    task_cfg: dict,
    captioner,
    refiner,
    concurrency: int = 4,
    max_tokens: int = 226,
    tokenizer_path: str | None = None,
    image_max_side: int = 1024,
    cache_dir: str | Path | None = None,
    progress: bool = True,
) -> PromptsReport:
    """Caption, refine and write the adaptive prompts of the dataset in ``root`` (see the module
    docstring). Raises :class:`PromptsError` when some clip has no prompt (nothing rewritten)."""
    root = Path(root).expanduser().resolve()
    videos, records, manifest = read_dataset(root)
    dataset_task = (manifest.get("fingerprint") or {}).get("task") or records[0].get("task")
    if dataset_task and dataset_task != task_cfg["name"]:
        raise PromptsError(f"the dataset in {root} is for task {dataset_task}, not {task_cfg['name']}")
    mode = selected_mode(root, manifest, records)
    cache = PromptCache(Path(cache_dir) if cache_dir else root / CACHE_DIR_NAME)
    counter = TokenCounter(tokenizer_path)
    report = PromptsReport(clips=len(videos))

    # Clips sharing a clean image share one caption job.
    origins: dict[tuple[str, str], list[int]] = {}
    for index, record in enumerate(records):
        origins.setdefault(image_origin(root, manifest, record), []).append(index)
    report.images = len(origins)
    count_lock = threading.Lock()

    def caption_job(origin, indices):
        record = records[indices[0]]
        kind, where = origin
        image = ClipImage(lookup_keys(record), f"{kind} {where}")
        if captioner.needs_image:
            png = encode_png(load_clean_image(kind, where, record.get("source_key", "")), image_max_side)
            image = ClipImage(image.keys, image.origin, png, hashlib.sha256(png).hexdigest())
        if not captioner.cacheable:
            with count_lock:
                report.captions_new += 1
            return captioner.caption(image)
        parts = {
            "image_sha256": image.sha256,
            "backend": captioner.backend,
            "model": captioner.model,
            "instruction": captioner.fingerprint,
        }
        return _cached(
            cache, "captions", parts, lambda: captioner.caption(image), "captions", report, count_lock
        )

    captions, errors = _run_pool(
        {origin: indices for origin, indices in origins.items()},
        caption_job,
        concurrency,
        "caption",
        progress,
    )
    failures = {records[i]["clip"]: msg for origin, msg in errors.items() for i in origins[origin]}

    clip_captions = {
        i: captions[origin] for origin, indices in origins.items() if origin in captions for i in indices
    }

    def refine_job(caption, _):
        if not refiner.cacheable:
            with count_lock:
                report.refinements_new += 1
            return refiner.refine(caption)
        parts = {
            "caption": caption,
            "task": task_cfg["name"],
            "backend": refiner.backend,
            "model": refiner.model,
            "system_prompt": refiner.fingerprint,
        }
        return _cached(
            cache, "refined", parts, lambda: refiner.refine(caption), "refinements", report, count_lock
        )

    unique_captions = dict.fromkeys(clip_captions.values())
    refined, errors = _run_pool(unique_captions, refine_job, concurrency, "refine", progress)
    for index, caption in clip_captions.items():
        if caption in errors:
            failures[records[index]["clip"]] = errors[caption]
    report.http_requests = sum(
        getattr(getattr(b, "client", None), "requests", 0)
        for b in {id(captioner): captioner, id(refiner): refiner}.values()
    )
    report.failures = failures
    if failures:
        listed = "".join(f"\n  - {clip}: {msg}" for clip, msg in sorted(failures.items())[:10])
        more = f"\n  ... and {len(failures) - 10} more" if len(failures) > 10 else ""
        raise PromptsError(
            f"{len(failures)} of {len(records)} clips have no prompt:{listed}{more}\n"
            f"Nothing was rewritten in {root}; every answer obtained is cached in {cache.root}: "
            "rerun the same command to request only the gaps."
        )

    lines, new_records = [], []
    for index, record in enumerate(records):
        caption = clip_captions[index]
        prompt, tokens, truncated = counter.fit(refined[caption], int(max_tokens))
        if truncated:
            report.truncated += 1
            log.warning(
                "clip %s: prompt over max_tokens=%d (%s); cut at a word boundary to %d tokens",
                record["clip"],
                max_tokens,
                counter.rule,
                tokens,
            )
        lines.append(prompt)
        prompts = {**(record.get("prompts") or {}), "adaptive": prompt}
        prompting = {
            "caption": caption,
            "prompt": prompt,
            "image": image_origin(root, manifest, record)[0],
            "captioner": {"backend": captioner.backend, "model": captioner.model},
            "refiner": {"backend": refiner.backend, "model": refiner.model},
            "tokens": tokens,
            "max_tokens": int(max_tokens),
            "token_count": counter.rule,
            "truncated": truncated,
        }
        new_records.append({**record, "prompts": prompts, "prompting": prompting})

    text = "".join(line + "\n" for line in lines)
    write_text_atomic(root / prompt_file_name("adaptive"), text)
    if mode == "adaptive":
        write_text_atomic(root / "prompt.txt", text)
    write_text_atomic(
        root / "metadata.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in new_records)
    )
    log.info(
        "wrote %s%s and metadata.jsonl",
        prompt_file_name("adaptive"),
        " and prompt.txt" if mode == "adaptive" else "",
    )
    return report


def _cached(
    cache: PromptCache, kind: str, parts: dict, ask: Callable[[], str], stat: str, report, lock
) -> str:
    """The cached answer of ``parts``, or ``ask()``'s, stored at once. One request per key even
    when several threads need it (per-key lock)."""
    key = cache_key(kind=kind, **parts)
    with cache.lock(kind, key):
        entry = cache.get(kind, key)
        if entry is not None:
            with lock:
                setattr(report, f"{stat}_cached", getattr(report, f"{stat}_cached") + 1)
            return entry["text"]
        text = ask()
        cache.put(kind, key, {**parts, "text": text})
        with lock:
            setattr(report, f"{stat}_new", getattr(report, f"{stat}_new") + 1)
        return text
