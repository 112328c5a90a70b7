"""The sampling ranges of the progression tasks (``conf/degradation/*.yaml`` builds these) and the
linear strength schedule every task follows; see :mod:`src.data.degradations`."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from src.utils.cli import ConfigError

TASKS = ("sr", "deblur", "lowlight")

# The paper's clips are 1360x768; kernel lengths and blur radii are specified at that size and
# scaled by sqrt(area ratio) so a clip rendered smaller (or larger) looks the same.
REFERENCE_WIDTH, REFERENCE_HEIGHT = 1360, 768


# ----------------------------------------------------------------------------------------------
# Presets: the sampling ranges of each task (conf/degradation/*.yaml builds these)
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SrRanges:
    scale_min: tuple[float, float] = (0.05, 0.25)  # s_1 ~ U[a, b]; s_T = 1
    # JPEG quality of the low-resolution frame: q(s) = round(q0 + (q1 - q0) * s) for s < 1,
    # no JPEG at s = 1. With q0=30, q1=95: s=0.05 -> 33, s=0.25 -> 46, s=0.5 -> 62, s=0.9 -> 88.
    jpeg_quality_at_zero: float = 30.0
    jpeg_quality_at_one: float = 95.0
    jpeg: bool = True


@dataclass(frozen=True)
class DeblurRanges:
    kernel_max_px: tuple[float, float] = (40.0, 200.0)  # k_max ~ U[a, b] at 1360x768
    angle_deg: tuple[float, float] = (0.0, 360.0)


@dataclass(frozen=True)
class LowlightRanges:
    noise: tuple[float, float] = (0.02, 0.08)  # n ~ U[a, b]; sigma_t = n * s_t (in [0, 1] units)
    exposure_stops: tuple[float, float] = (2.0, 4.0)  # linear-light gain 2**(-stops * s_t)
    wb_drift: float = 0.15  # red and blue gains drawn in 1 +- wb_drift, scaled by s_t
    blur_sigma_px: tuple[float, float] = (0.5, 1.5)  # Gaussian sigma at s=1, at 1360x768
    signal_dependent: bool = False  # adds shot noise: var = sigma_t**2 + shot_factor*sigma_t*y
    shot_factor: float = 0.5


@dataclass(frozen=True)
class DegradationPreset:
    name: str = "paper"
    mode: str = "schedule"  # "schedule" (the paper) or "interpolate" (V-Bridge)
    sr: SrRanges = field(default_factory=SrRanges)
    deblur: DeblurRanges = field(default_factory=DeblurRanges)
    lowlight: LowlightRanges = field(default_factory=LowlightRanges)
    lq_dir: str | None = None  # interpolate only: external LQ images paired by file stem

    @classmethod
    def from_dict(cls, cfg: dict) -> DegradationPreset:
        """Build from a plain dict (an OmegaConf container), validating the ranges."""
        cfg = dict(cfg)

        def ranges(kind, key):
            sub = dict(cfg.get(key) or {})
            for name, value in list(sub.items()):
                if isinstance(value, list | tuple):
                    if len(value) != 2 or float(value[0]) > float(value[1]):
                        raise ConfigError(f"degradation.{key}.{name} must be [low, high], got {value}")
                    sub[name] = (float(value[0]), float(value[1]))
            try:
                return kind(**sub)
            except TypeError as err:
                raise ConfigError(f"degradation.{key}: {err}") from None

        mode = cfg.get("mode", "schedule")
        if mode not in ("schedule", "interpolate"):
            raise ConfigError(f"degradation.mode must be 'schedule' or 'interpolate', got {mode!r}")
        preset = cls(
            name=str(cfg.get("name", "custom")),
            mode=mode,
            sr=ranges(SrRanges, "sr"),
            deblur=ranges(DeblurRanges, "deblur"),
            lowlight=ranges(LowlightRanges, "lowlight"),
            lq_dir=cfg.get("lq_dir"),
        )
        lo, hi = preset.sr.scale_min
        if not 0.0 < lo <= hi < 1.0:
            raise ConfigError(f"degradation.sr.scale_min must lie in (0, 1), got {preset.sr.scale_min}")
        if preset.deblur.kernel_max_px[0] < 0:
            raise ConfigError("degradation.deblur.kernel_max_px must be >= 0")
        return preset


def linear_strengths(num_frames: int) -> np.ndarray:
    """s_t = 1 - (t-1)/(T-1) for t = 1..T: 1 at the degraded first frame, 0 at the clean last."""
    if num_frames < 2:
        raise ConfigError(f"a progression clip needs at least 2 frames, got {num_frames}")
    return 1.0 - np.arange(num_frames, dtype=np.float64) / (num_frames - 1)


def size_factor(height: int, width: int) -> float:
    """How much larger this frame is than the paper's 1360x768, as sqrt of the area ratio."""
    return math.sqrt((height * width) / (REFERENCE_HEIGHT * REFERENCE_WIDTH))
