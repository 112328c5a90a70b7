"""The all-in-one categories (name -> primitive ops in application order) and each op's ranges:
the defaults (= conf/degradation/allinone.yaml) and :class:`AllInOnePreset`, which builds and
checks them from the ``degradation`` config. See :mod:`src.data.allinone`."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from src.data.degradation_presets import LowlightRanges
from src.utils.cli import ConfigError, number

PRIMITIVES = ("blur", "noise", "jpeg", "haze", "rain", "raindrop", "lowlight", "lowres")

# FoundIR-like categories: the 8 singles and 6 mixtures, ops in a physically sensible order
# (scene effects -> optics -> sensor -> compression). Must equal conf/degradation/allinone.yaml.
DEFAULT_CATEGORIES: dict[str, tuple[str, ...]] = {
    "blur": ("blur",),
    "noise": ("noise",),
    "jpeg": ("jpeg",),
    "haze": ("haze",),
    "rain": ("rain",),
    "raindrop": ("raindrop",),
    "lowlight": ("lowlight",),
    "lowres": ("lowres",),
    "blur_noise": ("blur", "noise"),
    "blur_jpeg": ("blur", "jpeg"),
    "noise_jpeg": ("noise", "jpeg"),
    "haze_noise": ("haze", "noise"),
    "rain_haze": ("rain", "haze"),
    "lowlight_blur": ("blur", "lowlight"),
}

# Each op's settings: kind ("range" = [lo, hi], "float", "bool") and the allowed interval.
_INF = math.inf
_OP_SCHEMA: dict[str, dict[str, tuple[str, float, float]]] = {
    "blur": {"length": ("range", 0.0, 1.0), "angle_deg": ("range", -_INF, _INF)},
    "noise": {"sigma": ("range", 0.0, 1.0)},
    "jpeg": {"quality": ("range", 1.0, 100.0)},
    "haze": {
        "beta": ("range", 0.0, _INF),
        "airlight": ("range", 0.0, 1.0),
        "airlight_tint": ("float", 0.0, 0.5),
        "depth_noise": ("float", 0.0, 1.0),
    },
    "rain": {
        "density": ("range", 0.0, _INF),
        "length": ("range", 0.0, 1.0),
        "width": ("range", 0.0, 0.2),
        "angle_deg": ("range", -_INF, _INF),
        "brightness": ("range", 0.0, 1.0),
    },
    "raindrop": {
        "count": ("range", 0.0, 100.0),
        "radius": ("range", 0.0, 0.5),
        "aspect": ("range", 0.2, 5.0),
        "blur": ("range", 0.0, 0.2),
        "zoom": ("range", 0.05, 1.0),
        "rim": ("range", 0.0, 1.0),
    },
    "lowlight": {
        "noise": ("range", 0.0, 1.0),
        "exposure_stops": ("range", 0.0, 16.0),
        "wb_drift": ("float", 0.0, 1.0),
        "blur_sigma_px": ("range", 0.0, _INF),
        "signal_dependent": ("bool", 0.0, 0.0),
        "shot_factor": ("float", 0.0, _INF),
    },
    "lowres": {"scale": ("range", 0.01, 1.0)},
}

# Default ranges (= conf/degradation/allinone.yaml), calibrated for strong, FoundIR-like
# degradations (see the table in the module docstring). Fractions are of the short side.
_LOWLIGHT_DEFAULTS = LowlightRanges()
DEFAULT_OPS: dict[str, dict] = {
    "blur": {"length": (0.08, 0.2), "angle_deg": (0.0, 360.0)},
    "noise": {"sigma": (0.08, 0.2)},
    "jpeg": {"quality": (2.0, 8.0)},
    "haze": {"beta": (0.4, 1.2), "airlight": (0.75, 0.95), "airlight_tint": 0.05, "depth_noise": 0.3},
    "rain": {
        "density": (60.0, 180.0),
        "length": (0.1, 0.25),
        "width": (0.004, 0.008),
        "angle_deg": (75.0, 105.0),
        "brightness": (0.6, 0.9),
    },
    "raindrop": {
        "count": (8.0, 16.0),
        "radius": (0.07, 0.16),
        "aspect": (0.75, 1.3),
        "blur": (0.03, 0.06),
        "zoom": (0.5, 0.8),
        "rim": (0.3, 0.6),
    },
    "lowlight": {
        "noise": _LOWLIGHT_DEFAULTS.noise,
        "exposure_stops": _LOWLIGHT_DEFAULTS.exposure_stops,
        "wb_drift": _LOWLIGHT_DEFAULTS.wb_drift,
        "blur_sigma_px": _LOWLIGHT_DEFAULTS.blur_sigma_px,
        "signal_dependent": _LOWLIGHT_DEFAULTS.signal_dependent,
        "shot_factor": _LOWLIGHT_DEFAULTS.shot_factor,
    },
    "lowres": {"scale": (0.1, 0.25)},
}

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def _choices(names) -> str:
    return ", ".join(names)


def _check_op_ranges(op: str, given: dict) -> dict:
    """``given`` settings of ``op`` over its defaults, validated; ranges as (lo, hi) tuples."""
    schema = _OP_SCHEMA[op]
    out = dict(DEFAULT_OPS[op])
    for key, value in given.items():
        where = f"degradation.ops.{op}.{key}"
        if key not in schema:
            raise ConfigError(f"{where}: unknown setting (choose from {_choices(schema)})")
        kind, low, high = schema[key]
        if kind == "bool":
            if not isinstance(value, bool):
                raise ConfigError(f"{where}={value} must be true or false")
            out[key] = value
            continue
        if kind == "float":
            out[key] = number(value, where, float, at_least=low, at_most=high)
            continue
        if not isinstance(value, list | tuple) or len(value) != 2:
            raise ConfigError(f"{where} must be [low, high], got {value}")
        lo = number(value[0], where, float, at_least=low, at_most=high)
        hi = number(value[1], where, float, at_least=low, at_most=high)
        if lo > hi:
            raise ConfigError(f"{where} must be [low, high] with low <= high, got {list(value)}")
        out[key] = (lo, hi)
    return out


@dataclass(frozen=True)
class AllInOnePreset:
    """The categories (name -> primitive ops in application order) and each op's ranges."""

    categories: dict[str, tuple[str, ...]] = field(default_factory=lambda: dict(DEFAULT_CATEGORIES))
    ops: dict[str, dict] = field(default_factory=lambda: {k: dict(v) for k, v in DEFAULT_OPS.items()})

    @classmethod
    def from_dict(cls, cfg: dict) -> AllInOnePreset:
        """Build from the whole ``degradation`` config (a plain dict): its ``categories`` (required)
        and ``ops`` (each op's settings; unset ones take the defaults of :data:`DEFAULT_OPS`)."""
        from omegaconf import DictConfig, OmegaConf

        if isinstance(cfg, DictConfig):
            cfg = OmegaConf.to_container(cfg, resolve=True)
        # nested OmegaConf nodes (a dict() of a DictConfig) become plain containers too
        cfg = {
            k: OmegaConf.to_container(v, resolve=True) if OmegaConf.is_config(v) else v
            for k, v in dict(cfg or {}).items()
        }
        raw_categories = cfg.get("categories")
        if not raw_categories or not isinstance(raw_categories, dict):
            raise ConfigError(
                "degradation.categories is missing or empty: use degradation=allinone "
                "(a mapping of category name -> [ops in order])"
            )
        categories: dict[str, tuple[str, ...]] = {}
        for name, ops in raw_categories.items():
            where = f"degradation.categories.{name}"
            if not isinstance(name, str) or not _NAME.match(name):
                raise ConfigError(f"{where}: a category name must be letters, digits, '_', '.' or '-'")
            if isinstance(ops, str):
                ops = [ops]
            if not isinstance(ops, list | tuple) or not ops:
                raise ConfigError(
                    f"{where} must be a non-empty list of ops (choose from {_choices(PRIMITIVES)})"
                )
            for op in ops:
                if op not in PRIMITIVES:
                    raise ConfigError(f"{where}: unknown op {op!r} (choose from {_choices(PRIMITIVES)})")
            categories[name] = tuple(ops)
        raw_ops = cfg.get("ops") or {}
        if not isinstance(raw_ops, dict):
            raise ConfigError(f"degradation.ops must be a mapping of op -> settings, got {raw_ops!r}")
        for op in raw_ops:
            if op not in PRIMITIVES:
                raise ConfigError(f"degradation.ops.{op}: unknown op (choose from {_choices(PRIMITIVES)})")
        ops = {}
        for op in PRIMITIVES:
            given = raw_ops.get(op) or {}
            if not isinstance(given, dict):
                raise ConfigError(f"degradation.ops.{op} must be a mapping of settings, got {given!r}")
            ops[op] = _check_op_ranges(op, given)
        return cls(categories=categories, ops=ops)
