"""``frame_metrics.json``: the one schema of per-frame results, with one owner.

Training validation (``ProgressiveI2VModule`` -> ``FrameMetricsWriter``), ``src.eval`` and
``src.report`` all make, write and read it through this module, as do the tests' fixtures.

Required keys (every producer):

- ``task``, ``prompt``: the run's task and prompt mode;
- ``frames``: 1..T; ``psnr``, ``ssim``: T per-frame means over ``n_images`` images; ``lpips``: T
  values, or null when the LPIPS weights are missing (never a made-up number);
- ``mean``: ``<metric>_f1_T`` (all frames) and ``<metric>_f2_T`` (without frame 1, the
  condition) for each metric present;
- ``n_images``.

Optional keys a producer adds: ``input_psnr`` / ``input_ssim`` / ``input_lpips`` (the degraded
input), ``temporal`` (``warping_error``, ``flicker``), ``first_frame_colour_error``
(``mean``, ``max``), ``global_step`` (training), ``data``, ``baselines``, ``masked``,
``table1_lpips``, ``unscored``, ``seconds``, ``settings`` (``src.eval``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from src.utils.cli import InputError

FILE_NAME = "frame_metrics.json"
REQUIRED_KEYS = ("task", "prompt", "frames", "psnr", "ssim", "lpips", "mean", "n_images")
METRICS = ("psnr", "ssim", "lpips")


def frame_means(psnr: list[float], ssim: list[float], lpips: list[float] | None) -> dict[str, float]:
    """``<metric>_f1_T`` and ``<metric>_f2_T`` of every metric present (frame 1 is the condition,
    a near-copy of the input, so the mean without it is given too)."""
    means = {}
    for metric, values in (("psnr", psnr), ("ssim", ssim), ("lpips", lpips)):
        if not values or any(v is None for v in values):
            continue
        count = len(values)
        means[f"{metric}_f1_{count}"] = math.fsum(values) / count
        means[f"{metric}_f2_{count}"] = math.fsum(values[1:]) / max(1, count - 1)
    return means


def make(
    task: str,
    prompt: str,
    psnr: list[float],
    ssim: list[float],
    lpips: list[float] | None,
    n_images: int,
    **fields,
) -> dict:
    """A ``frame_metrics.json`` record: the required keys (``frames`` and ``mean`` derived here)
    followed by the producer's optional ``fields``."""
    if len(ssim) != len(psnr) or (lpips is not None and len(lpips) != len(psnr)):
        raise ValueError(f"per-frame lists differ in length: psnr {len(psnr)}, ssim {len(ssim)}")
    return {
        "task": task,
        "prompt": prompt,
        "frames": list(range(1, len(psnr) + 1)),
        "psnr": list(psnr),
        "ssim": list(ssim),
        "lpips": None if lpips is None else list(lpips),
        "mean": frame_means(psnr, ssim, lpips),
        "n_images": int(n_images),
        **fields,
    }


def write(directory: str | Path, data: dict) -> Path:
    """``<directory>/frame_metrics.json``, written whole (temp file + rename)."""
    from src.utils.io import write_text_atomic

    path = Path(directory) / FILE_NAME
    write_text_atomic(path, json.dumps(data, indent=2, default=str) + "\n")
    return path


def _number_list(data: dict, key: str, path: Path, allow_none: bool = False) -> list[float | None]:
    values = data.get(key)
    if not isinstance(values, list) or not values:
        raise InputError(f"malformed {path}: '{key}' must be a non-empty list of numbers")
    out: list[float | None] = []
    for value in values:
        if value is None and allow_none:
            out.append(None)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            out.append(float(value))
        else:
            raise InputError(f"malformed {path}: '{key}' holds {value!r}, not a number")
    return out


def read(path: str | Path) -> dict:
    """Load and validate one ``frame_metrics.json``: ``psnr`` and ``ssim`` lists of equal length,
    ``frames`` (default 1..T) of that length, ``lpips`` null or a list of that length (null entries
    allowed; all-null reads as null), numeric scalars numeric. Errors name the file."""
    from src.utils.io import read_json

    path = Path(path)
    try:
        data = read_json(path, "per-frame metrics")
    except InputError as err:
        raise InputError(f"malformed {path}: {err}") from None
    except OSError as err:
        raise InputError(f"malformed {path}: {err}") from None
    if not isinstance(data, dict):
        raise InputError(f"malformed {path}: expected a JSON object, got {type(data).__name__}")
    psnr = _number_list(data, "psnr", path)
    ssim = _number_list(data, "ssim", path)
    count = len(psnr)
    frames = _number_list(data, "frames", path) if "frames" in data else list(range(1, count + 1))
    lpips = None if data.get("lpips") is None else _number_list(data, "lpips", path, allow_none=True)
    for key, values in (("ssim", ssim), ("frames", frames), ("lpips", lpips)):
        if values is not None and len(values) != count:
            raise InputError(f"malformed {path}: '{key}' has {len(values)} values, 'psnr' has {count}")
    if lpips is not None and all(value is None for value in lpips):
        lpips = None
    for key in ("input_psnr", "input_ssim", "n_images", "global_step"):
        value = data.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise InputError(f"malformed {path}: '{key}' is {value!r}, not a number")
    return {**data, "frames": [int(f) for f in frames], "psnr": psnr, "ssim": ssim, "lpips": lpips}
