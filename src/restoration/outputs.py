"""What a restore writes per image (``frames/``, ``trajectory.mp4``/``.gif``, ``strip.png``,
``restored.png``) and into its output folder (``restore_summary.json``, merged under a lock), and
the trajectory strip the demo, the evaluation and the video restore draw."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np

from src.utils.cli import InputError

log = logging.getLogger(__name__)


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

    from src.data.clip_io import EncoderSettings, write_mp4
    from src.utils.frames import write_gif

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
