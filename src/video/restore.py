"""Restoring a video frame by frame with a trained image-to-video adapter, streaming.

Every frame of the input is restored into a trajectory (resize or tiled mode, as for images) and
one trajectory frame (``output_frame``, default the last) becomes the output frame. Frame-by-frame
restoration flickers: each frame would draw its own diffusion noise and invent its own details.
The temporal-consistency options follow zero-shot video restoration with an image diffusion
model (arXiv 2407.01960) and the open video restorers:

- ``noise``: ``shared`` (every frame starts from the same initial latent noise; the samplers
  used here, DDIM with eta 0 and UniPC, draw no noise after that) or ``independent`` (frame i
  uses seed + i: what restoring the frames as unrelated images with fresh draws gives);
- ``early_stop``: stop sampling at this fraction of the steps and decode the denoised estimate
  (:func:`src.models.recipe.early_stopping`);
- ``color``: ``adain`` / ``wavelet`` colour correction of each output frame towards a reference
  (``color_reference``: the input frame, or a running reference of the restored frames; ``auto``
  picks ``running`` for lowlight and all-in-one, whose input colours are wrong, else ``input``);
- ``blend``: a flow-guided recursive blend of consecutive outputs in non-occluded areas
  (:class:`src.video.consistency.TemporalBlender`), its strength in [0, 1).

Memory does not grow with the clip: frames are decoded, restored and encoded ``batch`` at a time
(:mod:`src.video.io`), and the consistency operators keep O(1) frames of state.
"""

from __future__ import annotations

import contextlib
import json
import logging
import resource
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from src.utils.cli import ConfigError, number

log = logging.getLogger(__name__)

NOISE_MODES = ("independent", "shared")
COLOR_REFERENCE_CHOICES = ("auto", "input", "running")
RUNNING_REFERENCE_TASKS = ("lowlight", "allinone")  # their inputs' colours are not the scene's


@dataclass(frozen=True)
class VideoOptions:
    """Settings of one video restore (recorded in restore.json); see the module docstring."""

    seed: int = 0
    mode: str = "resize"
    tile_overlap: int = 16
    tile_batch: int = 4
    batch: int = 8  # frames restored per pipeline call
    noise: str = "shared"
    early_stop: float | None = None
    output_frame: int = -1  # 1-based trajectory frame; -1 = the last
    color: str = "none"
    color_reference: str = "auto"
    blend: float = 0.0
    flow: str = "dis"  # optical flow of the blend
    frame_rate: str | None = None  # of a folder of frames ("24000/1001"; null: 24); files keep their own
    side_by_side: bool = True
    trajectories: bool = False  # also every frame's trajectory strip under trajectories/
    crf: int = 16
    max_frame_pixels: int | None = None  # null: src.video.io.MAX_FRAME_PIXELS

    def check(self, frames_per_trajectory: int | None = None) -> VideoOptions:
        """Every value checked (one ConfigError naming the setting) before a frame is decoded."""
        from src.metrics.temporal import FLOW_METHODS
        from src.models.recipe import early_stop_steps
        from src.video.consistency import COLOR_MODES

        number(self.seed, "seed")
        number(self.batch, "batch", at_least=1)
        number(self.tile_batch, "tile_batch", at_least=1)
        number(self.tile_overlap, "tile_overlap", at_least=0)
        number(self.crf, "crf", at_least=0, at_most=51)
        if self.mode not in ("resize", "tiled"):
            raise ConfigError(f"mode must be resize or tiled, got {self.mode}")
        if self.noise not in NOISE_MODES:
            raise ConfigError(f"noise must be one of {', '.join(NOISE_MODES)}, got {self.noise}")
        if self.early_stop is not None:
            early_stop_steps(10, number(self.early_stop, "early_stop", float))
        if self.color not in COLOR_MODES:
            raise ConfigError(f"color must be one of {', '.join(COLOR_MODES)}, got {self.color}")
        if self.color_reference not in COLOR_REFERENCE_CHOICES:
            raise ConfigError(
                f"color_reference must be one of {', '.join(COLOR_REFERENCE_CHOICES)}, got {self.color_reference}"
            )
        number(self.blend, "blend", float, at_least=0.0)
        if not float(self.blend) < 1.0:
            raise ConfigError(f"blend must be in [0, 1), got {self.blend}")
        if self.flow not in FLOW_METHODS:
            raise ConfigError(f"flow must be one of {', '.join(FLOW_METHODS)}, got {self.flow}")
        index = number(self.output_frame, "output_frame")
        if index != -1 and index < 1:
            raise ConfigError(f"output_frame is 1-based (or -1 for the last), got {index}")
        if frames_per_trajectory is not None and index > frames_per_trajectory:
            raise ConfigError(
                f"output_frame={index} but the model's trajectories have {frames_per_trajectory} frames"
            )
        if self.max_frame_pixels is not None:
            number(self.max_frame_pixels, "max_frame_pixels", at_least=1)
        return self

    @classmethod
    def from_config(cls, cfg) -> VideoOptions:
        """From a CLI config (conf/restore.yaml, conf/eval.yaml): every field of this class that
        the config sets at its top level (noise=, early_stop=, color=, seed=, mode=, ...)."""
        return cls(**{name: cfg[name] for name in cls.__dataclass_fields__ if name in cfg})

    def color_reference_for(self, task: str) -> str:
        if self.color_reference != "auto":
            return self.color_reference
        return "running" if task in RUNNING_REFERENCE_TASKS else "input"


class FrameRestorer:
    """The per-frame part every video path shares (src.restore, src.eval data=video, the demo):
    trajectories of a batch of frames with the noise rule, the output frame picked, then colour
    correction and the temporal blend, carried across batches in frame order."""

    def __init__(self, restorer, prompt: str, options: VideoOptions):
        from src.video.consistency import ColorCorrector, TemporalBlender

        self.restorer, self.prompt, self.options = restorer, prompt, options.check(restorer.frames)
        self.color = ColorCorrector(options.color, options.color_reference_for(restorer.task))
        self.blender = TemporalBlender(float(options.blend), options.flow)
        self.done = 0  # frames restored so far: the global index of the next one

    def generate(self, frames_bhwc: np.ndarray, first_index: int) -> np.ndarray:
        """(B, F, H, W, 3) uint8 trajectories of video frames ``first_index ..`` (0-based) under
        the noise rule, early stopping and the restore mode."""
        o = self.options
        seed = int(o.seed)
        seeds = (
            [seed] * len(frames_bhwc)
            if o.noise == "shared"
            else [seed + first_index + k for k in range(len(frames_bhwc))]
        )
        return self.restorer.restore_batch(
            frames_bhwc, self.prompt, seeds, o.mode, int(o.tile_overlap), int(o.tile_batch), o.early_stop
        )

    def finish(self, frames_bhwc: np.ndarray, trajectories: np.ndarray) -> np.ndarray:
        """(B, H, W, 3) output frames of the next B input frames from their trajectories: the
        output frame picked, colour-corrected, blended with the previous outputs (in frame order;
        the operators carry their state across calls)."""
        o = self.options
        index = -1 if int(o.output_frame) == -1 else int(o.output_frame) - 1
        outputs = []
        for frame, restored in zip(frames_bhwc, trajectories[:, index], strict=True):
            restored = self.color(restored, frame) if o.color != "none" else restored
            outputs.append(self.blender(restored))
        self.done += len(frames_bhwc)
        return np.stack(outputs)

    def __call__(self, frames_bhwc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(outputs (B, H, W, 3), trajectories (B, F, H, W, 3)) of the next B input frames."""
        trajectories = self.generate(frames_bhwc, self.done)
        return self.finish(frames_bhwc, trajectories), trajectories

    @property
    def settings(self) -> dict:
        o = self.options
        return {
            "noise": o.noise,
            "seeds": f"{o.seed} for every frame"
            if o.noise == "shared"
            else f"{o.seed} + frame index (0-based)",
            "early_stop": o.early_stop,
            "output_frame": o.output_frame,
            "color": o.color,
            "color_reference": self.color.reference if o.color != "none" else None,
            "blend": o.blend,
            "flow": o.flow,
        }


def side_by_side(inputs_bhwc: np.ndarray, outputs_bhwc: np.ndarray) -> np.ndarray:
    """(B, H, 2W, 3): input | restored, labelled when frames are tall enough (label_panels)."""
    from src.utils.frames import label_panels

    pairs = np.concatenate([inputs_bhwc, outputs_bhwc], axis=2)
    return np.stack([label_panels(frame, ["input", "restored"]) for frame in pairs])


def rss_mb() -> float:
    """Resident memory of this process now (MiB), from /proc/self/statm."""
    import os

    with open("/proc/self/statm") as handle:
        pages = int(handle.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (MiB; ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def restore_video(
    restorer, input_path, out_folder, prompt: str, options: VideoOptions, progress: bool = True
) -> dict:
    """Restore the video (a file or a folder of frames) at ``input_path`` into ``out_folder``:
    ``restored.mp4`` (same frame count and exact frame rate, the source's audio copied),
    ``side_by_side.mp4`` (input | restored), optionally ``trajectories/frame_NNNNNN.png`` (each
    frame's trajectory strip), and ``restore.json`` (settings, timings, memory). The folder
    appears complete or not at all (written beside it, renamed when done). Returns the record."""
    from PIL import Image
    from tqdm import tqdm

    from src.restoration.outputs import strip_image
    from src.utils.io import atomic_path
    from src.video import io as vio

    started = time.time()
    frame_restorer = FrameRestorer(restorer, prompt, options)  # settings checked before decoding
    limit = options.max_frame_pixels or vio.MAX_FRAME_PIXELS
    info = vio.probe_video(input_path, fps=options.frame_rate, max_frame_pixels=int(limit))
    out_folder = Path(out_folder)
    out_folder.parent.mkdir(parents=True, exist_ok=True)
    rss_start = rss_mb()
    rss_trace = []
    with atomic_path(out_folder) as temp:
        temp.mkdir(parents=True)
        if options.trajectories:
            (temp / "trajectories").mkdir()
        restored_path, pairs_path = temp / ".restored_video.mp4", temp / ".side_by_side_video.mp4"
        bar = tqdm(total=info.frames, desc="restore video", unit="frame", disable=not progress, smoothing=0.1)
        with contextlib.ExitStack() as stack:  # the encoders flush on success, delete on failure
            writer = stack.enter_context(
                vio.VideoWriter(restored_path, info.width, info.height, info.fps, crf=int(options.crf))
            )
            pairs = (
                stack.enter_context(
                    vio.VideoWriter(pairs_path, 2 * info.width, info.height, info.fps, crf=int(options.crf))
                )
                if options.side_by_side
                else None
            )
            stack.callback(bar.close)
            for frames in vio.iter_frames(info, batch=int(options.batch)):
                first = frame_restorer.done
                outputs, trajectories = frame_restorer(frames)
                writer.write(outputs)
                if pairs is not None:
                    pairs.write(side_by_side(frames, outputs))
                if options.trajectories:
                    for k, trajectory in enumerate(trajectories):
                        path = temp / "trajectories" / f"frame_{first + k + 1:06d}.png"
                        Image.fromarray(strip_image(trajectory)).save(path)
                rss_trace.append(round(rss_mb(), 1))
                bar.update(len(frames))
        audio = vio.mux_audio(restored_path, info.path, temp / "restored.mp4")
        if options.side_by_side:
            vio.mux_audio(pairs_path, info.path, temp / "side_by_side.mp4")
        for leftover in (restored_path, pairs_path):
            leftover.unlink(missing_ok=True)
        seconds = time.time() - started
        record = {
            "input": str(Path(str(input_path)).resolve()),
            "kind": "video",
            "source": info.as_dict(),
            "frames": frame_restorer.done,
            "fps": f"{info.fps.numerator}/{info.fps.denominator}",
            "duration_s": round(frame_restorer.done / float(info.fps), 6),
            "prompt": prompt,
            "options": asdict(options),
            "consistency": frame_restorer.settings,
            **audio,
            "padded_to": list(writer.padded_size) if writer.padded_size else None,
            "outputs": ["restored.mp4"]
            + (["side_by_side.mp4"] if options.side_by_side else [])
            + (["trajectories/"] if options.trajectories else []),
            "restorer": restorer.description,
            "seconds": round(seconds, 2),
            "frames_per_second": round(frame_restorer.done / max(seconds, 1e-9), 3),
            "rss_mb_start": round(rss_start, 1),
            "rss_mb_per_batch": rss_trace,
            "peak_rss_mb": round(peak_rss_mb(), 1),
        }
        (temp / "restore.json").write_text(json.dumps(record, indent=2) + "\n")
    log.info(
        "restored %d frames at %.2f frames/s into %s (peak RSS %.0f MiB)",
        record["frames"], record["frames_per_second"], out_folder, record["peak_rss_mb"],
    )  # fmt: skip
    return record
