"""Every option of ``python -m src.demo`` (conf/demo.yaml), typed and checked once, before the
checkpoint is read or a port is taken."""

from __future__ import annotations

from dataclasses import dataclass

from src.restoration.options import InferenceOptions
from src.utils.cli import ConfigError, check_device, number


@dataclass(frozen=True)
class DemoOptions:
    """The demo's settings (see conf/demo.yaml for each one's meaning)."""

    ckpt: str
    out_dir: str
    host: str = "127.0.0.1"
    port: int = 8765
    device: str = "auto"
    num_inference_steps: int | None = None  # None: the checkpoint's model.sampling
    guidance_scale: float | None = None
    preload: bool = True
    max_upload_mb: float = 50.0
    max_pixels: int = 4096 * 4096
    max_video_seconds: float = 10.0
    mode: str = "resize"
    tile_overlap: int = 16
    tile_batch: int = 4
    fps: float = 5.0
    gif_max_side: int = 512
    batch: int = 8

    @classmethod
    def from_config(cls, cfg) -> DemoOptions:
        """From conf/demo.yaml and the command line, checked in the order the demo always reported:
        port, host, the upload limits, the output settings, mode, device, sampling; then ``ckpt``
        (a missing one says how the demo is called)."""
        port = number(cfg.port, "port", at_least=0, at_most=65535)
        host = str(cfg.host).strip()
        if not host:
            raise ConfigError("host= is empty: use 127.0.0.1 (this machine only) or 0.0.0.0 (the network)")
        max_upload_mb = number(cfg.max_upload_mb, "max_upload_mb", float, above=0)
        max_pixels = number(cfg.max_pixels, "max_pixels", at_least=1)
        max_video_seconds = number(cfg.max_video_seconds, "max_video_seconds", float, above=0)
        fps = number(cfg.fps, "fps", float, above=0)
        gif_max_side = number(cfg.gif_max_side, "gif_max_side", at_least=1)
        batch = number(cfg.batch, "batch", at_least=1)
        tile_batch = number(cfg.tile_batch, "tile_batch", at_least=1)
        tile_overlap = number(cfg.tile_overlap, "tile_overlap", at_least=0)
        if cfg.mode not in ("resize", "tiled"):
            raise ConfigError(f"mode must be resize or tiled, got {cfg.mode}")
        device = check_device(cfg.device)
        steps = cfg.get("num_inference_steps")
        if steps is not None:
            steps = number(steps, "num_inference_steps", at_least=1)
        guidance = cfg.get("guidance_scale")
        if guidance is not None:
            guidance = number(guidance, "guidance_scale", float)
        preload = cfg.get("preload", True)
        if not isinstance(preload, bool):
            raise ConfigError(f"preload must be true or false, got {preload}")
        return cls(
            ckpt=str(cfg.ckpt),
            out_dir=str(cfg.out_dir),
            host=host,
            port=int(port),
            device=device,
            num_inference_steps=steps,
            guidance_scale=guidance,
            preload=preload,
            max_upload_mb=float(max_upload_mb),
            max_pixels=int(max_pixels),
            max_video_seconds=float(max_video_seconds),
            mode=str(cfg.mode),
            tile_overlap=int(tile_overlap),
            tile_batch=int(tile_batch),
            fps=float(fps),
            gif_max_side=int(gif_max_side),
            batch=int(batch),
        )

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 2**20)

    @property
    def inference(self) -> InferenceOptions:
        """The restore settings this demo shares with src.restore (mode, tiles, device, sampling)."""
        return InferenceOptions(
            mode=self.mode,
            tile_overlap=self.tile_overlap,
            tile_batch=self.tile_batch,
            device=self.device,
            num_inference_steps=self.num_inference_steps,
            guidance_scale=self.guidance_scale,
        )

    def model_overrides(self) -> list[str]:
        """Training-config overrides of the checkpoint: this demo's sampling steps and guidance."""
        return self.inference.model_overrides()
