"""The restore runs of ``python -m src.restore``: every image of an input (a file or a folder)
into its trajectory folder, or one video frame by frame (:mod:`src.video.restore`). Everything is
checked (options, inputs, the output folder) before a model loads."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np

from src.restoration.options import RestoreOptions
from src.restoration.outputs import check_writable, merge_summary, write_outputs
from src.utils.cli import ConfigError, InputError, MissingFileError
from src.utils.io import atomic_path

log = logging.getLogger(__name__)


def list_inputs(path: str) -> tuple[list, list[tuple[str, str]]]:
    from src.data.images import list_sources

    target = Path(str(path)).expanduser()
    if not target.exists():
        raise MissingFileError(f"input {target} does not exist")
    if target.is_file():
        from src.data.images import Source

        return [Source(key=target.stem, path=target)], []
    try:
        sources, skipped = list_sources(target)
    except ValueError as err:
        raise InputError(str(err).replace("source_dir", "input")) from None
    return sources, skipped


def video_target(input_path: str, as_video: str | bool = "auto") -> Path | None:
    """The input as a video (a video file, or a folder of frames with video=true), else None."""
    from src.video.io import VIDEO_SUFFIXES, is_video_file

    target = Path(str(input_path)).expanduser()
    if as_video is False or not target.exists():
        return None
    if target.is_dir():
        return target if as_video is True else None
    if is_video_file(target):
        return target
    if as_video is True:
        raise InputError(
            f"input={target} is not a video file ({', '.join(VIDEO_SUFFIXES)}) nor a folder of frames"
        )
    return None


def restore_video_input(options: RestoreOptions, checkpoint, target: Path) -> dict:
    """src.restore on one video: checked (settings, the file, the output folder) before the model
    loads, then restored by src.video.restore.restore_video into <out_dir>/<name>/."""
    from src.models.restorer import load_restorer
    from src.prompts import load_captions
    from src.video.io import MAX_FRAME_PIXELS, probe_video
    from src.video.restore import restore_video

    video = options.video_options
    info = probe_video(
        target, fps=video.frame_rate, max_frame_pixels=video.max_frame_pixels or MAX_FRAME_PIXELS
    )
    captions = load_captions(options.captions_file) if options.captions_file else {}
    out_dir = Path(options.out_dir)
    check_writable(out_dir, "out_dir")
    inference = options.inference
    restorer = load_restorer(checkpoint, inference.model_overrides(), device=inference.device)
    caption = options.caption or captions.get(target.stem) or captions.get(target.name)
    prompt = options.text if options.text else restorer.prompt(caption)
    log.info(
        "restoring %s: %d frames, %dx%d at %s fps%s",
        target, info.frames, info.width, info.height, info.as_dict()["fps"], ", with audio" if info.has_audio else "",
    )  # fmt: skip
    folder = out_dir / target.stem
    record = restore_video(restorer, target, folder, prompt, video, progress=True)
    summary = merge_summary(
        out_dir / "restore_summary.json", [{"name": target.stem, "dir": str(folder), **record}], []
    )
    log.info("restored %s into %s", target.name, folder)
    return summary


def restore(options: RestoreOptions) -> dict:
    """Restore ``options.input`` (an image, a folder of images, or a video); returns the summary
    written to ``<out_dir>/restore_summary.json``."""
    from tqdm import tqdm

    from src.data.images import SourceError, load_image
    from src.models.checkpoints import resolve_checkpoint
    from src.models.restorer import load_restorer, resize_uint8, restore_chained
    from src.prompts import load_captions

    checkpoint = resolve_checkpoint(options.ckpt)
    drift_checkpoint = (
        resolve_checkpoint(options.drift) if options.drift else None
    )  # both before a model loads
    video_input = video_target(options.input, options.video)
    if video_input is not None:
        if drift_checkpoint is not None:
            raise ConfigError("drift= corrects restored images; it does not apply to videos (drop drift=)")
        return restore_video_input(options, checkpoint, video_input)
    sources, skipped = list_inputs(options.input)
    captions = load_captions(options.captions_file) if options.captions_file else {}
    out_dir = Path(options.out_dir)  # resolved before the checkpoint's config is composed
    check_writable(out_dir, "out_dir")
    inference = options.inference
    restorer = load_restorer(checkpoint, inference.model_overrides(), device=inference.device)
    drift = (
        load_restorer(drift_checkpoint, inference.model_overrides(), device=inference.device)
        if drift_checkpoint
        else None
    )
    results, failures = [], [{"path": path, "reason": reason} for path, reason in skipped]
    single = len(sources) == 1
    for source in tqdm(sources, desc="restore", unit="image", disable=single):
        try:
            image = load_image(source)
        except SourceError as err:
            if single:
                raise InputError(f"cannot read {source.path}: {err}") from None
            log.warning("skipping %s: %s", source.path, err)
            failures.append({"path": str(source.path), "reason": str(err)})
            continue
        if options.upscale > 1.0:
            h, w = image.shape[:2]
            image = resize_uint8(image, round(h * options.upscale), round(w * options.upscale))
        caption = options.caption or captions.get(source.key) or captions.get(Path(str(source.path)).name)
        prompt = options.text if options.text else restorer.prompt(caption)
        started = time.time()
        kwargs = inference.restore_kwargs(progress=True)
        frames, info = restorer.restore(image, prompt, inference.seed, **kwargs)
        if drift is not None:  # V-Bridge drift correction: stage 2 restores stage 1's last frame
            ((corrected, drift_info),) = restore_chained(
                [drift], frames[-1], caption, inference.seed, **kwargs
            )
            info = {
                **info,
                "stage1_frames": len(frames),
                "drift": drift.description,
                "drift_tiles": drift_info["tiles"],
            }
            frames = np.concatenate(
                [frames, corrected[1:]]
            )  # the video runs on; its last frame is the output
        folder = out_dir / source.key.replace("/", "__")
        with atomic_path(folder) as temp:  # renamed over the final folder when complete
            written = write_outputs(frames, temp, options.fps, options.gif_max_side)
            record = {
                "input": str(Path(str(source.path)).resolve()) if source.path else source.key,
                "seed": inference.seed,
                "prompt": prompt,
                "upscale": options.upscale,
                **info,
                **written,
                **restorer.description,
                "seconds": round(time.time() - started, 2),
            }
            (temp / "restore.json").write_text(json.dumps(record, indent=2) + "\n")
        results.append({"name": source.key, "dir": str(folder), **record})
    summary = merge_summary(out_dir / "restore_summary.json", results, failures)
    log.info("restored %d image(s) into %s; skipped %d", len(results), out_dir, len(failures))
    return summary
