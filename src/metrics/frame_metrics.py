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
``table1_lpips``, ``unscored``, ``seconds``, ``settings`` (``src.eval``), and ``categories``
(``src.eval``, all-in-one restoration: one model for many degradation categories), one entry per
category (``blur``, ``noise``, ``jpeg``, ``haze``, ``rain``, ``raindrop``, ``lowlight``, ``lowres``,
mixtures such as ``blur_noise``)::

    "categories": {
      "<category name>": {
        "n_images": int,
        "psnr": [T floats], "ssim": [T floats], "lpips": [T floats] | null,
                        # per-frame means of the trajectory over that category's images
        "last":  {"psnr": f, "ssim": f, "lpips": f | null},      # the restored image (last frame)
        "input": {"psnr": f, "ssim": f, "lpips": f | null},
                        # the degraded input (src.eval: only with baselines on)
        "baseline": {"name": str, "psnr": f, "ssim": f, "lpips": f | null},
                        # optional: a classical method on the same images
        "drift": {"psnr": [Td], "ssim": [Td], "lpips": [Td] | null,
                  "last": {"psnr": f, "ssim": f, "lpips": f | null}}
                        # optional: the stage 1 + drift correction trajectory
      }, ...
    }

:func:`read` validates it when present; :func:`summarize_categories` gives its means (each
category weighs equally).
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


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _number_list(
    data: dict, key: str, path: Path, allow_none: bool = False, where: str = ""
) -> list[float | None]:
    """``data[key]`` as a non-empty list of floats; ``where`` prefixes the key in messages
    (``categories.blur.`` for a category's lists)."""
    values = data.get(key)
    if not isinstance(values, list) or not values:
        raise InputError(f"malformed {path}: '{where}{key}' must be a non-empty list of numbers")
    out: list[float | None] = []
    for value in values:
        if value is None and allow_none:
            out.append(None)
        elif _is_number(value):
            out.append(float(value))
        else:
            raise InputError(f"malformed {path}: '{where}{key}' holds {value!r}, not a number")
    return out


def _trajectory(data: dict, path: Path, where: str) -> dict:
    """``psnr``, ``ssim`` (equal-length number lists) and ``lpips`` (null or a list of that length,
    null entries allowed, all-null read as null) of a category or its drift entry."""
    psnr = _number_list(data, "psnr", path, where=where)
    ssim = _number_list(data, "ssim", path, where=where)
    lpips = None
    if data.get("lpips") is not None:
        lpips = _number_list(data, "lpips", path, allow_none=True, where=where)
    for key, values in (("ssim", ssim), ("lpips", lpips)):
        if values is not None and len(values) != len(psnr):
            raise InputError(
                f"malformed {path}: '{where}{key}' has {len(values)} values, '{where}psnr' has {len(psnr)}"
            )
    if lpips is not None and all(value is None for value in lpips):
        lpips = None
    return {"psnr": psnr, "ssim": ssim, "lpips": lpips}


def _scores(data: dict, key: str, path: Path, where: str, named: bool = False) -> dict:
    """``data[key]``: a dict with numeric ``psnr`` and ``ssim``, ``lpips`` null or numeric (and a
    string ``name`` when ``named``)."""
    scores = data.get(key)
    if not isinstance(scores, dict):
        raise InputError(
            f"malformed {path}: '{where}{key}' must be an object with psnr and ssim, got {scores!r}"
        )
    out = dict(scores)
    if named and not isinstance(scores.get("name"), str):
        raise InputError(f"malformed {path}: '{where}{key}.name' is {scores.get('name')!r}, not a string")
    for metric in METRICS:
        value = scores.get(metric)
        if metric == "lpips" and value is None:
            out[metric] = None
        elif _is_number(value):
            out[metric] = float(value)
        else:
            raise InputError(f"malformed {path}: '{where}{key}.{metric}' is {value!r}, not a number")
    return out


def _categories(categories, path: Path) -> dict[str, dict]:
    """The validated ``categories`` entry (see the module docstring); numbers read as floats."""
    if not isinstance(categories, dict):
        raise InputError(
            f"malformed {path}: 'categories' must be an object of categories, got {type(categories).__name__}"
        )
    out: dict[str, dict] = {}
    for name, entry in categories.items():
        where = f"categories.{name}."
        if not isinstance(entry, dict):
            raise InputError(f"malformed {path}: 'categories.{name}' must be an object, got {entry!r}")
        n_images = entry.get("n_images")
        if n_images is not None and (
            not isinstance(n_images, int) or isinstance(n_images, bool) or n_images < 0
        ):
            raise InputError(f"malformed {path}: '{where}n_images' is {n_images!r}, not a count")
        record = {**entry, **_trajectory(entry, path, where)}
        record["last"] = _scores(entry, "last", path, where)
        if entry.get("input") is not None:  # src.eval scores the input only with baselines on
            record["input"] = _scores(entry, "input", path, where)
        if entry.get("baseline") is not None:
            record["baseline"] = _scores(entry, "baseline", path, where, named=True)
        if entry.get("drift") is not None:
            drift = entry["drift"]
            if not isinstance(drift, dict):
                raise InputError(f"malformed {path}: '{where}drift' must be an object, got {drift!r}")
            record["drift"] = {
                **drift,
                **_trajectory(drift, path, f"{where}drift."),
                "last": _scores(drift, "last", path, f"{where}drift."),
            }
        out[str(name)] = record
    return out


def _mean_of(values: list[float]) -> float | None:
    return math.fsum(values) / len(values) if values else None


def summarize_categories(categories: dict) -> dict:
    """Means over the categories of a ``categories`` entry, each category weighing equally.

    ``n_categories``; ``mean_last_psnr`` / ``_ssim`` (the restored last frame) over all;
    ``mean_last_lpips``, and ``mean_input_psnr`` / ``_ssim`` / ``_lpips`` (the degraded input),
    only when every category has the score (else None: a mean over a subset would not compare);
    ``categories_beating_input_psnr`` (last-frame PSNR above the input's); over the categories
    with a drift entry (``n_drift_categories`` of them): ``mean_drift_last_psnr`` / ``_ssim`` and
    ``mean_drift_gain_psnr`` (drift last minus stage 1 last, dB); over those with a baseline
    (``n_baseline_categories``): ``mean_baseline_psnr`` / ``_ssim``. A mean of no category is None."""
    entries = list(categories.values())

    def mean(get, among=entries, every: bool = False) -> float | None:
        values = [get(entry) for entry in among]
        if every and any(value is None for value in values):
            return None
        return _mean_of([float(value) for value in values if value is not None])

    def input_score(metric: str):
        return lambda entry: (entry.get("input") or {}).get(metric)

    drifted = [entry for entry in entries if entry.get("drift")]
    baselined = [entry for entry in entries if entry.get("baseline")]
    return {
        "n_categories": len(entries),
        "mean_last_psnr": mean(lambda e: e["last"]["psnr"]),
        "mean_last_ssim": mean(lambda e: e["last"]["ssim"]),
        "mean_last_lpips": mean(lambda e: e["last"].get("lpips"), every=True),
        "mean_input_psnr": mean(input_score("psnr"), every=True),
        "mean_input_ssim": mean(input_score("ssim"), every=True),
        "mean_input_lpips": mean(input_score("lpips"), every=True),
        "categories_beating_input_psnr": sum(
            1 for e in entries if e.get("input") and e["last"]["psnr"] > e["input"]["psnr"]
        ),
        "n_drift_categories": len(drifted),
        "mean_drift_last_psnr": mean(lambda e: e["drift"]["last"]["psnr"], drifted),
        "mean_drift_last_ssim": mean(lambda e: e["drift"]["last"]["ssim"], drifted),
        "mean_drift_gain_psnr": mean(lambda e: e["drift"]["last"]["psnr"] - e["last"]["psnr"], drifted),
        "n_baseline_categories": len(baselined),
        "mean_baseline_psnr": mean(lambda e: e["baseline"]["psnr"], baselined),
        "mean_baseline_ssim": mean(lambda e: e["baseline"]["ssim"], baselined),
    }


def read(path: str | Path) -> dict:
    """Load and validate one ``frame_metrics.json``: ``psnr`` and ``ssim`` lists of equal length,
        ``frames`` (default 1..T) of that length, ``lpips`` null or a list of that length (null entries
        allowed; all-null reads as null), numeric scalars numeric, ``categories`` (when present) as the
    module docstring has it. Errors name the file (and the category and key)."""
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
    out = {**data, "frames": [int(f) for f in frames], "psnr": psnr, "ssim": ssim, "lpips": lpips}
    if data.get("categories") is not None:
        out["categories"] = _categories(data["categories"], path)
    return out
