"""Every option of ``python -m src.demo`` (conf/demo.yaml), typed and checked once, before the
checkpoint is read or a port is taken."""

from __future__ import annotations

from dataclasses import dataclass

from src.restoration.options import InferenceOptions
from src.utils.cli import ConfigError, number


@dataclass(frozen=True)
class DemoOptions:
    """The demo's settings (see conf/demo.yaml for each one's meaning)."""

    ckpt: str
    out_dir: str
    host: str = "127.0.0.1"
    port: int = 8765
    inference: InferenceOptions = InferenceOptions()  # mode, tiles, device, sampling (seed: per request)
    preload: bool = True
    max_upload_mb: float = 50.0
    max_pixels: int = 4096 * 4096
    max_video_seconds: float = 10.0
    fps: float = 5.0
    gif_max_side: int = 512
    batch: int = 8

    @classmethod
    def from_config(cls, cfg) -> DemoOptions:
        """From conf/demo.yaml and the command line, checked in the order the demo always reported:
        port, host, the upload limits, the output settings, then the restore settings (mode, tiles,
        device, sampling) as :class:`InferenceOptions` checks them; then ``ckpt``
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
        inference = InferenceOptions.from_config(cfg)  # as src.restore checks them
        preload = cfg.get("preload", True)
        if not isinstance(preload, bool):
            raise ConfigError(f"preload must be true or false, got {preload}")
        return cls(
            ckpt=str(cfg.ckpt),
            out_dir=str(cfg.out_dir),
            host=host,
            port=int(port),
            inference=inference,
            preload=preload,
            max_upload_mb=float(max_upload_mb),
            max_pixels=int(max_pixels),
            max_video_seconds=float(max_video_seconds),
            fps=float(fps),
            gif_max_side=int(gif_max_side),
            batch=int(batch),
        )

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 2**20)

    def model_overrides(self) -> list[str]:
        """Training-config overrides of the checkpoint: this demo's sampling steps and guidance."""
        return self.inference.model_overrides()
