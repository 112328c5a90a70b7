"""python -m src.restore input=<image, folder or video> ckpt=<run dir | lora dir | .ckpt> [mode=tiled]

Restores each image into a progression trajectory with a trained adapter. Per image, under
``<out_dir>/<name>/``: ``frames/frame_01.png ..`` (the 9 frames at the input's resolution),
``trajectory.mp4`` (H.264 yuv420p, plays in browsers), ``trajectory.gif`` (preview),
``strip.png`` (the frames side by side), ``restored.png`` (the last frame) and ``restore.json``
(seed, prompt, mode, tiles, checkpoint, seconds). ``restore_summary.json`` lists every image and
every skipped one. Deterministic for a given seed.

A video file (or a folder of frames with ``video=true``) is restored frame by frame instead
(:mod:`src.video.restore`): ``<out_dir>/<name>/restored.mp4`` (same frame count, exact frame rate,
the source audio copied), ``side_by_side.mp4`` and ``restore.json``; consistency switches
``noise=``, ``early_stop=``, ``output_frame=``, ``color=``, ``blend=``.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

import hydra
import numpy as np
from omegaconf import DictConfig

from src.utils.cli import (
    ConfigError,
    InputError,
    MissingFileError,
    check_device,
    hydra_cli,
    number,
    user_errors,
)
from src.utils.config import CONFIG_DIR
from src.utils.io import atomic_path

log = logging.getLogger(__name__)


def model_overrides(cfg: DictConfig) -> list[str]:
    """Training-config overrides for the checkpoint from this CLI's options."""
    overrides = []
    if cfg.get("task"):  # the task / prompt groups, selected on this CLI's command line
        overrides.append(f"task={cfg.task.name}")
    if cfg.get("prompt"):
        overrides.append(f"prompt={cfg.prompt.mode}")
    if cfg.get("num_inference_steps") is not None:  # null: the checkpoint's
        steps = number(cfg.num_inference_steps, "num_inference_steps", at_least=1)
        overrides.append(f"model.sampling.num_inference_steps={steps}")
    if cfg.get("guidance_scale") is not None:
        overrides.append(
            f"model.sampling.guidance_scale={number(cfg.guidance_scale, 'guidance_scale', float)}"
        )
    return overrides


def check_inference_settings(cfg: DictConfig) -> None:
    """The settings src.restore and src.eval share (mode, tiles, seed, device, sampling), checked
    before a model loads."""
    if cfg.mode not in ("resize", "tiled"):
        raise ConfigError(f"mode must be resize or tiled, got {cfg.mode}")
    number(cfg.seed, "seed")
    number(cfg.tile_batch, "tile_batch", at_least=1)
    number(cfg.tile_overlap, "tile_overlap", at_least=0)
    check_device(cfg.device)
    model_overrides(cfg)  # num_inference_steps, guidance_scale


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


def strip_image(
    frames_fhwc: np.ndarray, max_height: int = 256, labels: list[str] | None = None
) -> np.ndarray:
    """The frames side by side (H', F * W', 3), each scaled to at most ``max_height`` rows and
    labelled at its top left with ``labels`` (one per frame; ``[]`` for none). The default suits a
    restored trajectory: "frame 1 (input)" (the model's rendition of the input, generated, not the
    input itself), "frame k", "frame F (restored)" (= restored.png). Frames under 24 px high stay
    unlabelled (see ``label_panels``)."""
    import cv2

    from src.utils.frames import label_panels

    height, width = frames_fhwc.shape[1:3]
    scale = min(1.0, max_height / height)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    strip = np.concatenate([cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames_fhwc], axis=1)
    count = len(frames_fhwc)
    if labels is None:
        labels = ["frame 1 (input)", *(f"frame {k}" for k in range(2, count)), f"frame {count} (restored)"]
        labels = labels if count > 1 else ["restored"]
    labels = list(labels)
    if labels and len(labels) != count:
        raise ValueError(f"{len(labels)} labels for {count} frames")
    return label_panels(strip, labels)


def even_sized(frames_fhwc: np.ndarray) -> np.ndarray:
    """H.264 yuv420p needs even sides: repeat the last row/column when odd."""
    pad_h, pad_w = frames_fhwc.shape[1] % 2, frames_fhwc.shape[2] % 2
    if not (pad_h or pad_w):
        return frames_fhwc
    return np.pad(frames_fhwc, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")


def write_outputs(frames_fhwc: np.ndarray, folder: Path, fps: float, gif_max_side: int) -> dict:
    import cv2
    from PIL import Image

    from src.callbacks import write_gif
    from src.data.clip_io import EncoderSettings, write_mp4

    (folder / "frames").mkdir(parents=True, exist_ok=True)
    for index, frame in enumerate(frames_fhwc, start=1):
        Image.fromarray(frame).save(folder / "frames" / f"frame_{index:02d}.png")
    Image.fromarray(frames_fhwc[-1]).save(folder / "restored.png")
    Image.fromarray(strip_image(frames_fhwc)).save(folder / "strip.png")
    playable = EncoderSettings(pix_fmt="yuv420p", crf=16, target_qp=None)
    write_mp4(even_sized(frames_fhwc), folder / "trajectory.mp4", fps, playable)
    height, width = frames_fhwc.shape[1:3]
    scale = min(1.0, gif_max_side / max(height, width))
    preview = frames_fhwc
    if scale < 1.0:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        preview = np.stack([cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames_fhwc])
    write_gif(preview, folder / "trajectory.gif", fps)
    return {"frames": len(frames_fhwc), "size": [int(width), int(height)]}


def check_writable(folder: Path, setting: str) -> None:
    """Create ``folder`` and prove it writable now, before a model loads (one line, not a traceback)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:  # read-only, a file in the way, no space
        reason = err.strerror or type(err).__name__
        raise InputError(
            f"{setting}={folder} is not writable ({reason}): choose another {setting}="
        ) from None


def merge_summary(path: Path, results: list[dict], failures: list[dict]) -> dict:
    """``restore_summary.json`` of ``out_dir``, merged under a file lock: restores running into
    the same ``out_dir`` keep each other's entries (an image restored again replaces its entry)."""
    import fcntl

    from src.utils.io import write_text_atomic

    with open(path.with_name(".restore_summary.lock"), "a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        previous = {}
        if path.is_file():
            try:
                previous = json.loads(path.read_text(encoding="utf-8"))
            except (ValueError, UnicodeDecodeError):
                log.warning("%s was damaged; writing it anew", path)
        names = {r["name"] for r in results}
        restored = [r for r in previous.get("restored", []) if r.get("name") not in names] + results
        failed_paths = {f["path"] for f in failures}
        skipped = [f for f in previous.get("skipped", []) if f.get("path") not in failed_paths] + failures
        summary = {"out_dir": str(path.parent), "restored": restored, "skipped": skipped}
        write_text_atomic(path, json.dumps(summary, indent=2) + "\n")
    return {"out_dir": str(path.parent), "restored": results, "skipped": failures}


def video_target(cfg: DictConfig) -> Path | None:
    """The input as a video (a video file, or a folder of frames with video=true), else None."""
    from src.video.io import VIDEO_SUFFIXES, is_video_file

    as_video = cfg.get("video", "auto")
    if as_video not in ("auto", True, False):
        raise ConfigError(f"video must be auto, true or false, got {as_video}")
    target = Path(str(cfg.input)).expanduser()
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


def restore_video_input(cfg: DictConfig, checkpoint, target: Path) -> dict:
    """src.restore on one video: checked (settings, the file, the output folder) before the model
    loads, then restored by src.video.restore.restore_video into <out_dir>/<name>/."""
    from src.models.restorer import load_restorer
    from src.prompts import load_captions
    from src.video.io import MAX_FRAME_PIXELS, probe_video
    from src.video.restore import VideoOptions, restore_video

    options = VideoOptions.from_config(cfg).check()
    info = probe_video(
        target, fps=options.frame_rate, max_frame_pixels=options.max_frame_pixels or MAX_FRAME_PIXELS
    )
    captions = load_captions(cfg.captions_file) if cfg.captions_file else {}
    out_dir = Path(cfg.out_dir)
    check_writable(out_dir, "out_dir")
    restorer = load_restorer(checkpoint, model_overrides(cfg), device=str(cfg.device))
    caption = cfg.caption or captions.get(target.stem) or captions.get(target.name)
    prompt = str(cfg.text) if cfg.text else restorer.prompt(caption)
    log.info(
        "restoring %s: %d frames, %dx%d at %s fps%s",
        target, info.frames, info.width, info.height, info.as_dict()["fps"], ", with audio" if info.has_audio else "",
    )  # fmt: skip
    folder = out_dir / target.stem
    record = restore_video(restorer, target, folder, prompt, options, progress=True)
    summary = merge_summary(
        out_dir / "restore_summary.json", [{"name": target.stem, "dir": str(folder), **record}], []
    )
    log.info("restored %s into %s", target.name, folder)
    return summary


def restore_all(cfg: DictConfig) -> dict:
    from tqdm import tqdm

    from src.data.images import SourceError, load_image
    from src.models.restorer import load_restorer, resize_uint8, resolve_checkpoint, restore_chained
    from src.prompts import load_captions

    # Every setting, input and the output folder are checked before the model loads.
    check_inference_settings(cfg)
    number(cfg.upscale, "upscale", float, at_least=1)
    number(cfg.fps, "fps", float, above=0)
    number(cfg.gif_max_side, "gif_max_side", at_least=1)
    checkpoint = resolve_checkpoint(cfg.ckpt)
    drift_checkpoint = (
        resolve_checkpoint(cfg.drift) if cfg.get("drift") else None
    )  # both before a model loads
    video_input = video_target(cfg)
    if video_input is not None:
        if drift_checkpoint is not None:
            raise ConfigError("drift= corrects restored images; it does not apply to videos (drop drift=)")
        return restore_video_input(cfg, checkpoint, video_input)
    sources, skipped = list_inputs(cfg.input)
    captions = load_captions(cfg.captions_file) if cfg.captions_file else {}
    out_dir = Path(cfg.out_dir)  # resolved before the checkpoint's config is composed
    check_writable(out_dir, "out_dir")
    restorer = load_restorer(checkpoint, model_overrides(cfg), device=str(cfg.device))
    drift = (
        load_restorer(drift_checkpoint, model_overrides(cfg), device=str(cfg.device))
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
        if float(cfg.upscale) > 1.0:
            h, w = image.shape[:2]
            image = resize_uint8(image, round(h * float(cfg.upscale)), round(w * float(cfg.upscale)))
        caption = cfg.caption or captions.get(source.key) or captions.get(Path(str(source.path)).name)
        prompt = str(cfg.text) if cfg.text else restorer.prompt(caption)
        started = time.time()
        kwargs = dict(
            mode=str(cfg.mode), overlap=int(cfg.tile_overlap), tile_batch=int(cfg.tile_batch), progress=True
        )
        frames, info = restorer.restore(image, prompt, int(cfg.seed), **kwargs)
        if drift is not None:  # V-Bridge drift correction: stage 2 restores stage 1's last frame
            ((corrected, drift_info),) = restore_chained(
                [drift], frames[-1], caption, int(cfg.seed), **kwargs
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
            written = write_outputs(frames, temp, float(cfg.fps), int(cfg.gif_max_side))
            record = {
                "input": str(Path(str(source.path)).resolve()) if source.path else source.key,
                "seed": int(cfg.seed),
                "prompt": prompt,
                "upscale": float(cfg.upscale),
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


@hydra.main(config_path=str(CONFIG_DIR), config_name="restore", version_base="1.3")
@user_errors("python -m src.restore input=<image, folder or video> ckpt=<run dir | lora dir | .ckpt>")
def main(cfg: DictConfig) -> dict:
    return restore_all(cfg)


if __name__ == "__main__":
    hydra_cli(main, "restore")
