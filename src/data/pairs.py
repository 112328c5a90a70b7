"""LQ/HQ pairs for all-in-one restoration (see :mod:`src.data.paired`): pairs on disk (matched,
listed with what was skipped and why, split per category, read at the HQ size) and synthetic pairs
degraded by every category of :mod:`src.data.allinone`. Training (``data=paired`` /
``data=allinone``), ``src.eval`` and the drift-correction stage share them."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from src.data.images import IMAGE_EXTENSIONS, fit_to_output
from src.utils.cli import ConfigError, InputError
from src.utils.seeding import stable_seed

log = logging.getLogger(__name__)

LQ_NAMES = ("LQ", "lq", "input", "Input")
HQ_NAMES = ("GT", "gt", "HQ", "hq", "target", "Target")
ASPECT_TOLERANCE = 0.02  # relative difference of W/H beyond which an LQ and an HQ are not one scene


def resize_uint8(image_hwc: np.ndarray, height: int, width: int) -> np.ndarray:
    from src.models.restorer import resize_uint8 as resize

    return resize(image_hwc, height, width)


# ----------------------------------------------------------------------------------------------
# Pairs on disk
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Pair:
    """One LQ/HQ pair: ``key`` is ``<category>/<relative name>``; paths None for synthetic pairs."""

    key: str
    category: str
    lq: Path | None = None
    hq: Path | None = None
    params: dict | None = field(default=None, compare=False)


def _images_by_stem(folder: Path) -> dict[str, Path]:
    found = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS:
            rel = path.relative_to(folder)
            if not any(part.startswith(".") for part in rel.parts):
                found.setdefault(rel.with_suffix("").as_posix(), path)
    return found


def _sub(folder: Path, names: tuple[str, ...]) -> Path | None:
    return next((folder / n for n in names if (folder / n).is_dir()), None)


def _image_size(path: Path) -> tuple[int, int]:
    """(width, height) from the header; raises InputError for an unreadable file."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return image.size
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise InputError(f"not a readable image ({type(err).__name__})") from None


def match_pairs(lq_dir: Path, hq_dir: Path, category: str) -> tuple[list[Pair], list[dict]]:
    """Pairs of two trees matched by relative path without extension, and the skipped files
    ({"path", "reason"}): no partner, unreadable, or aspect ratios that differ."""
    lq, hq = _images_by_stem(lq_dir), _images_by_stem(hq_dir)
    pairs, skipped = [], []
    for stem in sorted(set(lq) | set(hq)):
        if stem not in hq:
            skipped.append({"path": str(lq[stem]), "reason": f"no HQ partner in {hq_dir}"})
            continue
        if stem not in lq:
            skipped.append({"path": str(hq[stem]), "reason": f"no LQ partner in {lq_dir}"})
            continue
        try:
            lq_w, lq_h = _image_size(lq[stem])
        except InputError as err:
            skipped.append({"path": str(lq[stem]), "reason": str(err)})
            continue
        try:
            hq_w, hq_h = _image_size(hq[stem])
        except InputError as err:
            skipped.append({"path": str(hq[stem]), "reason": str(err)})
            continue
        if abs(lq_w / lq_h - hq_w / hq_h) > ASPECT_TOLERANCE * hq_w / hq_h:
            skipped.append(
                {"path": str(lq[stem]), "reason": f"aspect {lq_w}x{lq_h} differs from its HQ {hq_w}x{hq_h}"}
            )
            continue
        pairs.append(Pair(f"{category}/{stem}", category, lq[stem], hq[stem]))
    return pairs, skipped


def scan_pairs(
    root: str | None = None, lq_dir: str | None = None, hq_dir: str | None = None, category: str = "all"
) -> tuple[list[Pair], list[dict]]:
    """All pairs of ``root`` (``<category>/LQ`` + ``<category>/GT``, or ``LQ`` + ``GT`` directly)
    or of ``lq_dir`` + ``hq_dir``; one InputError when nothing usable is there."""
    if root:
        base = Path(root).expanduser()
        if not base.is_dir():
            raise ConfigError(f"data.root must be an existing folder, got {root!r}")
        layouts = []
        direct = (_sub(base, LQ_NAMES), _sub(base, HQ_NAMES))
        if all(direct):
            layouts.append((category, *direct))
        for sub in sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith(".")):
            pair_dirs = (_sub(sub, LQ_NAMES), _sub(sub, HQ_NAMES))
            if all(pair_dirs):
                layouts.append((sub.name, *pair_dirs))
        if not layouts:
            raise InputError(
                f"{base} has no <category>/LQ and <category>/GT folders (nor LQ and GT directly); "
                f"expected e.g. {base}/blur/LQ/0001.png and {base}/blur/GT/0001.png"
            )
    else:
        for key, value in (("lq_dir", lq_dir), ("hq_dir", hq_dir)):
            if not value or not Path(value).expanduser().is_dir():
                raise ConfigError(
                    f"data.source=folders needs data.root, or data.lq_dir and data.hq_dir as existing "
                    f"folders; data.{key} is {value!r}"
                )
        layouts = [(category, Path(lq_dir).expanduser(), Path(hq_dir).expanduser())]
    pairs, skipped = [], []
    for name, lq, hq in layouts:
        found, lost = match_pairs(lq, hq, name)
        pairs += found
        skipped += lost
    if not pairs:
        reasons = "; ".join(f"{s['path']}: {s['reason']}" for s in skipped[:3])
        raise InputError(
            f"no usable LQ/HQ pair found ({len(skipped)} skipped{': ' + reasons if reasons else ''})"
        )
    return pairs, skipped


def split_pairs(
    pairs: list[Pair], seed: int, per_category: int | None, val_per_category: int
) -> tuple[list[Pair], list[Pair]]:
    """(train, val): per category, seeded order; the first ``val_per_category`` validate (when the
    category has more pairs than that), the next ``per_category`` (all when None) train."""
    train, val = [], []
    for category in sorted({p.category for p in pairs}):
        members = sorted((p for p in pairs if p.category == category), key=lambda p: p.key)
        members.sort(key=lambda p: stable_seed(seed, "pair-order", p.key))
        held = val_per_category if len(members) > val_per_category else 0
        if not held and val_per_category:
            log.warning("category %s has %d pair(s): none held out for validation", category, len(members))
        val += members[:held]
        rest = members[held:]
        train += rest if per_category is None else rest[:per_category]
    return train, val


def read_pair(pair: Pair) -> tuple[np.ndarray, np.ndarray]:
    """(lq, hq) (H, W, 3) uint8 at the HQ's size; InputError for an unreadable file."""
    from src.data.images import Source, SourceError, load_image

    images = []
    for path in (pair.lq, pair.hq):
        try:
            images.append(load_image(Source(key=pair.key, path=path)))
        except SourceError as err:
            raise InputError(f"{path}: {err}") from None
    lq, hq = images
    if lq.shape != hq.shape:
        lq = resize_uint8(lq, *hq.shape[:2])  # a low-resolution LQ (RealCE x2/x4): bicubic up
    return lq, hq


# ----------------------------------------------------------------------------------------------
# Synthetic pairs (every category of src.data.allinone)
# ----------------------------------------------------------------------------------------------
def synthetic_pair(
    images: dict[str, np.ndarray], category: str, index: int, preset, seed: int, height: int, width: int, crop
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Training pair ``index`` of ``category``: a random crop of a random photo at (height, width),
    flipped half the time, degraded by the category. Pure function of its arguments."""
    from src.data.allinone import make_pair
    from src.data.clips import random_crop

    rng = np.random.default_rng(stable_seed(seed, "allinone-pair", category, index))
    keys = sorted(images)
    source = keys[int(rng.integers(len(keys)))]
    patch = random_crop(images[source], rng, crop, height, width)
    hq, _ = fit_to_output(patch, height, width)
    if rng.random() < 0.5:
        hq = np.ascontiguousarray(hq[:, ::-1])
    lq, params = make_pair(hq, category, rng, preset)
    return lq, hq, {"source": source, **params}


def held_out_pairs(
    images: dict[str, np.ndarray], preset, seed: int, height: int, width: int, stage: str = "val"
):
    """Every held-out photo (fitted to height x width) degraded by every category:
    [(Pair, lq, hq)]; the same pairs for training validation and ``src.eval data=allinone``."""
    from src.data.allinone import make_pair

    out = []
    for category in preset.categories:
        for key in sorted(images):
            hq, _ = fit_to_output(images[key], height, width)
            rng = np.random.default_rng(stable_seed(seed, stage, "allinone", category, key))
            lq, params = make_pair(hq, category, rng, preset)
            out.append((Pair(f"{category}/{key}", category, params={"source": key, **params}), lq, hq))
    return out
