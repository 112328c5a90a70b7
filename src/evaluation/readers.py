"""The evaluation sets of ``python -m src.eval``: loaders of (degraded, clean) image pairs for
``data=synthetic``, ``allinone``, ``paired`` and ``reloblur``, the held-out photographs and the
captions of their adaptive prompts. Each loader reads one pair when called, so an unreadable image
is listed (its loader's ``name``) and the rest are scored; folder layouts are checked when the
loaders are made, before a model loads."""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from src.utils.cli import ConfigError, InputError

log = logging.getLogger(__name__)


@dataclass
class EvalItem:
    key: str
    degraded: np.ndarray  # (H, W, 3) uint8: the model's input I_1, at the clean image's size
    clean: np.ndarray  # (H, W, 3) uint8
    mask: np.ndarray | None = None  # (H, W) float in [0, 1]: ReLoBlur's blurred regions
    params: dict | None = None  # degradation params (synthetic): the baseline's known kernel/noise
    caption: str | None = None
    category: str | None = None  # all-in-one: the degradation category (scores are also kept per category)


def _read_rgb(path: Path) -> np.ndarray:
    from src.data.images import Source, SourceError, load_image

    try:
        return load_image(Source(key=path.stem, path=path))
    except SourceError as err:
        raise InputError(f"cannot read {path}: {err}") from None


def _read_mask(path: Path, shape: tuple[int, int]) -> np.ndarray:
    image = _read_rgb(path).astype(np.float64).mean(axis=-1) / 255.0
    if image.shape != shape:
        raise InputError(f"mask {path} is {image.shape[::-1]}, its image {shape[::-1]}")
    return (image > 0.5).astype(np.float64)


def captions_of(data_cfg) -> dict:
    """{image key or file name: caption} of ``data.captions_file`` ({} without one)."""
    from src.prompts import load_captions

    return load_captions(data_cfg.get("captions_file")) if data_cfg.get("captions_file") else {}


HELD_OUT_BUNDLED = ("coffee", "chelsea")  # held out of the tiny bases' pretraining


def held_out_sources(data_cfg) -> list:
    """The clean images of data=synthetic / data=allinone: data.source_dir, else Set5 under the
    shared folder when present, else the bundled held-out photographs."""
    from src.data.images import Source, list_sources

    source_dir = data_cfg.get("source_dir")
    if not source_dir:
        shared_set5 = Path(data_cfg.get("shared_dir") or "") / "data" / "set5"
        source_dir = str(shared_set5) if data_cfg.get("shared_dir") and shared_set5.is_dir() else None
    return list_sources(source_dir)[0] if source_dir else [Source(k) for k in HELD_OUT_BUNDLED]


def synthetic_items(data_cfg, degradation: dict, task: str, height: int, width: int, frames: int, seed: int):
    """Loaders of clips of the task's schedule from clean images at the model's size (I_1 and the
    clean image); each image is read once, however many clips it gives."""
    from src.data.degradations import DegradationPreset, make_clip
    from src.data.images import BUNDLED_PHOTOS, fit_to_output, load_image
    from src.utils.seeding import stable_seed

    captions = captions_of(data_cfg)
    sources = held_out_sources(data_cfg)
    if all(s.path is None for s in sources):  # the bundled held-out photos carry their captions
        captions = {**{s.key: BUNDLED_PHOTOS[s.key] for s in sources}, **captions}
    preset = DegradationPreset.from_dict(degradation)
    clips_per_image = int(data_cfg.get("clips_per_image", 1))

    @functools.lru_cache(maxsize=1)  # the clips of one image are consecutive
    def clean_image(source) -> np.ndarray:
        return fit_to_output(load_image(source), height, width)[0]

    def load(source, clip: int) -> EvalItem:
        rng = np.random.default_rng(stable_seed(seed, "eval", task, source.key, clip))
        video, params = make_clip(clean_image(source), task, rng, preset, frames)
        caption = captions.get(source.key) or (source.path and captions.get(source.path.name))
        key = source.key if clips_per_image == 1 else f"{source.key}#{clip}"
        return EvalItem(key, video[0], video[-1], params=params, caption=caption)

    return [functools.partial(load, s, c) for s in sources for c in range(clips_per_image)]


def allinone_items(data_cfg, degradation: dict, height: int, width: int, seed: int):
    """Loaders of held-out photographs (Set5 when present) fitted to the model's size and degraded
    by every category of ``degradation=allinone``: the pairs training validation uses."""
    from src.data.allinone import AllInOnePreset
    from src.data.images import load_image
    from src.data.pairs import held_out_pairs

    if "categories" not in degradation:
        raise ConfigError("data=allinone needs degradation=allinone (its categories and ranges)")
    preset = AllInOnePreset.from_dict(degradation)
    images = {s.key: load_image(s) for s in held_out_sources(data_cfg)}

    def load(entry) -> EvalItem:
        pair, lq, hq = entry
        return EvalItem(pair.key, lq, hq, params=pair.params, category=pair.category)

    pairs = held_out_pairs(images, preset, seed, height, width)
    return [_named(functools.partial(load, entry), entry[0].key) for entry in pairs]


def _named(loader: functools.partial, name: str) -> functools.partial:
    loader.name = name  # what an unreadable image is listed as in frame_metrics.json's "unscored"
    return loader


def paired_items(data_cfg):
    """Loaders of the LQ/HQ pairs; the folders are listed and matched now (before the model
    loads), the pixels read one pair at a time. With ``data.root`` the pairs are
    ``<root>/<category>/LQ`` + ``GT`` (src.data.paired's layout) and scored per category."""
    from src.data.images import list_sources
    from src.models.restorer import resize_uint8

    if data_cfg.get("root"):
        from src.data.pairs import read_pair, scan_pairs

        pairs, skipped = scan_pairs(data_cfg["root"])
        for skip in skipped:
            log.warning("not paired: %s (%s)", skip["path"], skip["reason"])
        captions = captions_of(data_cfg)

        def load_pair(pair) -> EvalItem:
            degraded, clean = read_pair(pair)
            return EvalItem(pair.key, degraded, clean, caption=captions.get(pair.key), category=pair.category)

        return [_named(functools.partial(load_pair, pair), str(pair.lq)) for pair in pairs]
    for key in ("lq_dir", "hq_dir"):
        if not data_cfg.get(key):
            raise ConfigError("data=paired needs data.lq_dir and data.hq_dir")
        if not Path(str(data_cfg[key])).expanduser().is_dir():
            raise ConfigError(f"data.{key} must be an existing folder, got {data_cfg[key]!r}")
    lq_dir, hq_dir = data_cfg["lq_dir"], data_cfg["hq_dir"]
    from src.data.images import SourceError

    try:
        lq, _ = list_sources(lq_dir)
    except SourceError as err:
        raise InputError(str(err).replace("source_dir", "data.lq_dir")) from None
    try:
        hq_by_key = {s.key: s for s in list_sources(hq_dir)[0]}
    except SourceError as err:
        raise InputError(str(err).replace("source_dir", "data.hq_dir")) from None
    pairs = [(s, hq_by_key[s.key]) for s in lq if s.key in hq_by_key]
    if not pairs:
        raise InputError(f"no file of {lq_dir} has a namesake in {hq_dir}")
    if len(lq) > len(pairs):
        log.warning("%d degraded image(s) have no clean namesake and are left out", len(lq) - len(pairs))
    captions = captions_of(data_cfg)

    def load(lq_source, hq_source) -> EvalItem:
        degraded, clean = _read_rgb(lq_source.path), _read_rgb(hq_source.path)
        degraded = resize_uint8(degraded, *clean.shape[:2])  # a low-resolution sr input: bicubic up
        return EvalItem(lq_source.key, degraded, clean, caption=captions.get(lq_source.key))

    return [_named(functools.partial(load, lq, hq), str(lq.path)) for lq, hq in pairs]


def _reloblur_mask_path(root: Path, split: str, relative: Path, stem: str) -> Path | None:
    mask_dir = root / "masks" / split / relative
    names = (f"{stem}_mask.png", f"{stem}.png", f"{stem}_blur_mask.png")
    return next((mask_dir / n for n in names if (mask_dir / n).is_file()), None)


def reloblur_items(data_cfg):
    """Loaders of ReLoBlur's blur/sharp pairs (+ masks); the layout is checked now."""
    root = Path(str(data_cfg.get("root") or "")).expanduser()
    if not data_cfg.get("root") or not root.is_dir():
        raise ConfigError(f"data=reloblur needs data.root (a ReLoBlur folder), got {data_cfg.get('root')!r}")
    split = str(data_cfg.get("split", "test"))
    blurred = sorted((root / split).glob("*/*/*_blur.png"))
    if not blurred:
        raise InputError(f"no {split}/<scene>/<idx>/<nn>_blur.png under {root}")
    captions = captions_of(data_cfg)

    def load(blur: Path, sharp: Path, mask_path: Path | None, key: str) -> EvalItem:
        degraded, clean = _read_rgb(blur), _read_rgb(sharp)
        if degraded.shape != clean.shape:
            raise InputError(f"{blur} and {sharp} differ in size")
        mask = _read_mask(mask_path, clean.shape[:2]) if mask_path else None
        return EvalItem(key, degraded, clean, mask=mask, caption=captions.get(key))

    loaders = []
    for blur in blurred:
        sharp = blur.with_name(blur.name.replace("_blur.png", "_sharp.png"))
        if not sharp.is_file():
            raise InputError(f"{blur} has no sharp image {sharp.name}")
        relative = blur.parent.relative_to(root / split)
        stem = blur.name[: -len("_blur.png")]
        mask_path = _reloblur_mask_path(root, split, relative, stem)
        loaders.append(
            _named(
                functools.partial(load, blur, sharp, mask_path, f"{relative.as_posix()}/{stem}"), str(blur)
            )
        )
    return loaders
