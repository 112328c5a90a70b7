"""Typed options of the restore and evaluation command lines, each checked once, before a model
loads, whatever input they will meet (a video option given with a photo is still checked)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from src.utils.cli import ConfigError, check_device, number

if TYPE_CHECKING:
    from src.video.restore import VideoOptions


@dataclass(frozen=True)
class InferenceOptions:
    """The settings src.restore and src.eval share: mode, tiles, seed, device and the sampling
    overrides of the checkpoint's training config."""

    mode: str = "resize"
    seed: int = 0
    tile_overlap: int = 16
    tile_batch: int = 4
    device: str = "auto"
    task: str | None = None  # task=/prompt= groups chosen on the command line override the checkpoint's
    prompt: str | None = None
    num_inference_steps: int | None = None  # None: the checkpoint's
    guidance_scale: float | None = None

    @classmethod
    def from_config(cls, cfg) -> InferenceOptions:
        """From a CLI config (conf/restore.yaml, conf/eval.yaml), checked in the order the CLIs
        always reported: mode, seed, tile_batch, tile_overlap, device, sampling."""
        if cfg.mode not in ("resize", "tiled"):
            raise ConfigError(f"mode must be resize or tiled, got {cfg.mode}")
        seed = number(cfg.seed, "seed") if "seed" in cfg else 0  # the demo takes its seed per request
        tile_batch = number(cfg.tile_batch, "tile_batch", at_least=1)
        tile_overlap = number(cfg.tile_overlap, "tile_overlap", at_least=0)
        device = check_device(cfg.device)
        steps = cfg.get("num_inference_steps")
        if steps is not None:
            steps = number(steps, "num_inference_steps", at_least=1)
        guidance = cfg.get("guidance_scale")
        if guidance is not None:
            guidance = number(guidance, "guidance_scale", float)
        return cls(
            mode=str(cfg.mode),
            seed=int(seed),
            tile_overlap=int(tile_overlap),
            tile_batch=int(tile_batch),
            device=device,
            task=str(cfg.task.name) if cfg.get("task") else None,
            prompt=str(cfg.prompt.mode) if cfg.get("prompt") else None,
            num_inference_steps=steps,
            guidance_scale=guidance,
        )

    def model_overrides(self) -> list[str]:
        """Training-config overrides for the checkpoint from these options."""
        overrides = []
        if self.task:
            overrides.append(f"task={self.task}")
        if self.prompt:
            overrides.append(f"prompt={self.prompt}")
        if self.num_inference_steps is not None:
            overrides.append(f"model.sampling.num_inference_steps={self.num_inference_steps}")
        if self.guidance_scale is not None:
            overrides.append(f"model.sampling.guidance_scale={self.guidance_scale}")
        return overrides

    def restore_kwargs(self, progress: bool = False) -> dict:
        """The keyword arguments of ``Restorer.restore`` these options set."""
        return dict(mode=self.mode, overlap=self.tile_overlap, tile_batch=self.tile_batch, progress=progress)


VIDEO_CHOICES = ("auto", True, False)


@dataclass(frozen=True)
class RestoreOptions:
    """Every option of ``python -m src.restore`` (conf/restore.yaml), typed and checked."""

    input: str
    ckpt: str
    out_dir: str
    inference: InferenceOptions
    video_options: VideoOptions  # checked
    drift: str | None = None
    upscale: float = 1.0
    caption: str | None = None
    captions_file: str | None = None
    text: str | None = None
    fps: float = 5.0
    gif_max_side: int = 512
    video: str | bool = "auto"

    @classmethod
    def from_config(cls, cfg) -> RestoreOptions:
        """Every setting checked once, in the CLI's order, before an input is opened: the shared
        inference settings, the image settings, then the video settings even for a photo input
        (an out-of-range ``noise=`` or ``crf=`` is an error with any input, not ignored)."""
        from src.video.restore import VideoOptions

        inference = InferenceOptions.from_config(cfg)
        upscale = number(cfg.upscale, "upscale", float, at_least=1)
        fps = number(cfg.fps, "fps", float, above=0)
        gif_max_side = number(cfg.gif_max_side, "gif_max_side", at_least=1)
        as_video = cfg.get("video", "auto")
        if as_video not in VIDEO_CHOICES:
            raise ConfigError(f"video must be auto, true or false, got {as_video}")
        video_options = VideoOptions.from_config(cfg).check()
        return cls(
            input=str(cfg.input),
            ckpt=str(cfg.ckpt),
            out_dir=str(cfg.out_dir),
            inference=inference,
            video_options=video_options,
            drift=str(cfg.drift) if cfg.get("drift") else None,
            upscale=float(upscale),
            caption=str(cfg.caption) if cfg.get("caption") else None,
            captions_file=str(cfg.captions_file) if cfg.get("captions_file") else None,
            text=str(cfg.text) if cfg.get("text") else None,
            fps=float(fps),
            gif_max_side=int(gif_max_side),
            video=as_video,
        )
