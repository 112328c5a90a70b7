"""python -m src.restore input=<image or folder> ckpt=<run dir | lora dir | .ckpt> [mode=tiled]

Restores each image into a progression trajectory with a trained adapter. Per image, under
``<out_dir>/<name>/``: ``frames/frame_01.png ..`` (the 9 frames at the input's resolution),
``trajectory.mp4`` (H.264 yuv420p, plays in browsers), ``trajectory.gif`` (preview),
``strip.png`` (the frames side by side), ``restored.png`` (the last frame) and ``restore.json``
(seed, prompt, mode, tiles, checkpoint, seconds). ``restore_summary.json`` lists every image and
every skipped one. Deterministic for a given seed.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import hydra
import numpy as np
from omegaconf import DictConfig

from src.utils.config import CONFIG_DIR

log = logging.getLogger(__name__)


def model_overrides(cfg: DictConfig) -> list[str]:
    """Training-config overrides for the checkpoint from this CLI's options."""
    overrides = []
    if cfg.get("task"):  # the task / prompt groups, selected on this CLI's command line
        overrides.append(f"task={cfg.task.name}")
    if cfg.get("prompt"):
        overrides.append(f"prompt={cfg.prompt.mode}")
    if cfg.get("num_inference_steps"):
        overrides.append(f"model.sampling.num_inference_steps={int(cfg.num_inference_steps)}")
    if cfg.get("guidance_scale") is not None:
        overrides.append(f"model.sampling.guidance_scale={float(cfg.guidance_scale)}")
    return overrides


def list_inputs(path: str) -> tuple[list, list[tuple[str, str]]]:
    from src.data.images import list_sources

    target = Path(str(path)).expanduser()
    if not target.exists():
        raise FileNotFoundError(f"input {target} does not exist")
    if target.is_file():
        from src.data.images import Source

        return [Source(key=target.stem, path=target)], []
    try:
        sources, skipped = list_sources(target)
    except ValueError as err:
        raise ValueError(str(err).replace("source_dir", "input")) from None
    return sources, skipped


def strip_image(frames_fhwc: np.ndarray, max_height: int = 256) -> np.ndarray:
    """The frames side by side (H', F * W', 3), each scaled to at most ``max_height`` rows."""
    import cv2

    height, width = frames_fhwc.shape[1:3]
    scale = min(1.0, max_height / height)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.concatenate([cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames_fhwc], axis=1)


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


def restore_all(cfg: DictConfig) -> dict:
    from tqdm import tqdm

    from src.data.images import SourceError, load_image
    from src.models.restorer import load_restorer, resize_uint8, resolve_checkpoint
    from src.prompts import load_captions

    if cfg.mode not in ("resize", "tiled"):
        raise ValueError(f"mode must be resize or tiled, got {cfg.mode}")
    if float(cfg.upscale) < 1.0:
        raise ValueError(f"upscale must be >= 1, got {cfg.upscale}")
    checkpoint = resolve_checkpoint(cfg.ckpt)  # checkpoint and input errors before the model loads
    sources, skipped = list_inputs(cfg.input)
    captions = load_captions(cfg.captions_file) if cfg.captions_file else {}
    out_dir = Path(cfg.out_dir)  # resolved before the checkpoint's config is composed
    restorer = load_restorer(checkpoint, model_overrides(cfg), device=str(cfg.device))
    out_dir.mkdir(parents=True, exist_ok=True)
    results, failures = [], [{"path": path, "reason": reason} for path, reason in skipped]
    single = len(sources) == 1
    for source in tqdm(sources, desc="restore", unit="image", disable=single):
        try:
            image = load_image(source)
        except SourceError as err:
            if single:
                raise ValueError(f"cannot read {source.path}: {err}") from None
            log.warning("skipping %s: %s", source.path, err)
            failures.append({"path": str(source.path), "reason": str(err)})
            continue
        if float(cfg.upscale) > 1.0:
            h, w = image.shape[:2]
            image = resize_uint8(image, round(h * float(cfg.upscale)), round(w * float(cfg.upscale)))
        caption = cfg.caption or captions.get(source.key) or captions.get(Path(str(source.path)).name)
        prompt = str(cfg.text) if cfg.text else restorer.prompt(caption)
        started = time.time()
        frames, info = restorer.restore(
            image,
            prompt,
            int(cfg.seed),
            mode=str(cfg.mode),
            overlap=int(cfg.tile_overlap),
            tile_batch=int(cfg.tile_batch),
            progress=True,
        )
        folder = out_dir / source.key.replace("/", "__")
        written = write_outputs(frames, folder, float(cfg.fps), int(cfg.gif_max_side))
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
        (folder / "restore.json").write_text(json.dumps(record, indent=2) + "\n")
        results.append({"name": source.key, "dir": str(folder), **record})
    summary = {"out_dir": str(out_dir), "restored": results, "skipped": failures}
    (out_dir / "restore_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    log.info("restored %d image(s) into %s; skipped %d", len(results), out_dir, len(failures))
    return summary


@hydra.main(config_path=str(CONFIG_DIR), config_name="restore", version_base="1.3")
def main(cfg: DictConfig) -> None:
    from src.utils.cli import exit_on_user_error

    exit_on_user_error(
        lambda: restore_all(cfg),
        "python -m src.restore input=<image or folder> ckpt=<run dir | lora dir | .ckpt>",
    )


if __name__ == "__main__":
    main()
