"""Image and video metrics.

- ``src.metrics.image``: PSNR / SSIM on numpy images with BasicSR's conventions (numpy only).
- ``src.metrics.lpips``: LPIPS(alex, v0.1) in plain torch (no torchvision).
- ``src.metrics.temporal``: warping error (Lai et al. 2018) and a flicker score of frame trajectories.
- ``src.metrics.frames``: ``frame_psnr_ssim`` on (B, F, C, H, W) tensors, used by training validation.
- ``src.metrics.frame_metrics``: the ``frame_metrics.json`` schema (make, write, read), its one owner.
- ``python -m src.metrics A.png B.png``: the three image metrics of one pair as JSON.

``frame_psnr_ssim`` stays importable from here; it is loaded lazily because torchmetrics takes seconds to
import and the numpy metrics do not need it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from src.metrics.frames import frame_psnr_ssim

__all__ = ["frame_psnr_ssim"]


def __getattr__(name: str) -> Any:
    if name == "frame_psnr_ssim":
        from src.metrics.frames import frame_psnr_ssim

        return frame_psnr_ssim
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
