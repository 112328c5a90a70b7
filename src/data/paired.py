"""Paired LQ/HQ data for all-in-one restoration (V-Bridge, arXiv 2603.13089, sec. 3.2-3.3).

Each degraded / clean pair becomes a pseudo-temporal sequence of ``model.frames`` frames,
I_t = (1 - a_t) I_LQ + a_t I_HQ with a_t = (t-1)/(T-1) (:func:`src.data.degradations.render_interpolate`).

Where the pairs come from (``data.source``):

* ``folders``: LQ and HQ images on disk, in one of two layouts
  - ``data.root`` = ``<root>/<category>/LQ/...`` and ``<root>/<category>/GT/...`` (FoundIR's test
    split; ``HQ`` is accepted for ``GT``), one category per subfolder;
  - ``data.lq_dir`` + ``data.hq_dir``: two trees matched by relative path without the extension,
    one category (``data.category``).
  An LQ image of another size than its HQ (RealCE's x2 / x4 pairs) is bicubic-upscaled to the HQ
  size. Pairs without a partner, unreadable files and pairs whose aspect ratios differ are
  skipped, counted and listed (``pairs.json`` in the run dir).
* ``synthetic``: clean photographs degraded by every category of :mod:`src.data.allinone`
  (``degradation=allinone``), ``data.per_category`` pairs per category, each a pure function of
  (seed, category, index): the whole scheme runs without FoundIR.

Budget and split: per category, the pairs are ordered by a seeded hash of their name; the first
``data.val_per_category`` are held out for validation and the next ``data.per_category`` train
(synthetic validation instead degrades held-out photographs, Set5 by default, by every category).

Training crops (:class:`Curriculum`): a training sample of optimizer step s is cropped at the
curriculum stage of s: the pair is resized so its short side is r and a random r x r crop is taken
(V-Bridge's rule), or, without a curriculum, resized to cover the model's H x W and cropped to it.
Sample n is a pure function of (seed, n), numbered by training batches done: a run resumed in the
middle of a stage sees the same crops at the same sizes as the uninterrupted run.

A batch: ``frames`` (B, F, C, H, W) in [0, 1] (frame 0 = LQ, frame F-1 = HQ), ``prompt``,
``key`` ("<category>/<name>") and ``category``.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from src.data.degradations import interpolation_weights, render_interpolate
from src.data.images import IMAGE_EXTENSIONS, fit_to_output
from src.data.stream import StreamingTrainData
from src.utils.cli import ConfigError, InputError, number
from src.utils.frames import to_float_tensor
from src.utils.seeding import stable_seed

log = logging.getLogger(__name__)

LQ_NAMES = ("LQ", "lq", "input", "Input")
HQ_NAMES = ("GT", "gt", "HQ", "hq", "target", "Target")
ASPECT_TOLERANCE = 0.02  # relative difference of W/H beyond which an LQ and an HQ are not one scene
PAIRS_FILE = "pairs.json"  # the chosen and skipped pairs, next to the run's outputs


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
    from src.data.datamodule import random_crop

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


# ----------------------------------------------------------------------------------------------
# Resolution curriculum
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Stage:
    size: int  # r: short side resized to r, then an r x r crop
    first_step: int  # optimizer steps [first_step, end_step)
    end_step: int


class Curriculum:
    """Stages of (crop size, share of training), resolved to optimizer-step ranges. An empty
    curriculum crops every sample at the model's H x W."""

    def __init__(self, stages: list[Stage]):
        self.stages = list(stages)

    @classmethod
    def resolve(
        cls, cfg: dict | None, max_steps: int | None, model_height: int, model_width: int, multiple: int
    ) -> Curriculum:
        """From the ``curriculum`` config: ``stages`` [{size, share}], sizes scaled by
        min(model H, W) / ``reference_size`` when ``scale_to_model`` and rounded to ``multiple``."""
        cfg = dict(cfg or {})
        stages = list(cfg.get("stages") or [])
        if not stages:
            return cls([])
        if max_steps is None or int(max_steps) < len(stages):
            raise ConfigError(
                f"curriculum={cfg.get('name', '?')} splits trainer.max_steps into {len(stages)} stages: "
                f"set trainer.max_steps >= {len(stages)} (got {max_steps})"
            )
        shares = []
        for i, stage in enumerate(stages):
            if not isinstance(stage, dict) or "size" not in stage or "share" not in stage:
                raise ConfigError(
                    f"curriculum.stages[{i}] must be {{size: <px>, share: <fraction>}}, got {stage!r}"
                )
            shares.append(number(stage["share"], f"curriculum.stages[{i}].share", float, above=0))
        scale = 1.0
        if cfg.get("scale_to_model"):
            reference = number(cfg.get("reference_size"), "curriculum.reference_size", at_least=1)
            scale = min(model_height, model_width) / reference
        sizes = []
        for i, stage in enumerate(stages):
            size = number(stage["size"], f"curriculum.stages[{i}].size", float, above=0) * scale
            sizes.append(max(multiple, int(round(size / multiple)) * multiple))
        total, bounds, acc = sum(shares), [0], 0.0
        for share in shares:
            acc += share
            bounds.append(int(round(int(max_steps) * acc / total)))
        bounds[-1] = int(max_steps)
        return cls([Stage(s, a, b) for s, a, b in zip(sizes, bounds[:-1], bounds[1:], strict=True)])

    def size_at(self, step: int) -> int | None:
        """The crop size r at optimizer step ``step`` (the last stage beyond the end); None
        without a curriculum."""
        if not self.stages:
            return None
        return next((s.size for s in self.stages if step < s.end_step), self.stages[-1].size)

    def describe(self) -> list[dict]:
        return [{"size": s.size, "steps": [s.first_step, s.end_step]} for s in self.stages]


def crop_pair(
    lq: np.ndarray, hq: np.ndarray, rng: np.random.Generator, height: int, width: int
) -> tuple[np.ndarray, np.ndarray]:
    """Resize (LQ and HQ alike) so the image covers height x width, take one random crop of that
    size from both, flip both half the time."""
    in_h, in_w = hq.shape[:2]
    scale = max(height / in_h, width / in_w)
    new_h, new_w = (
        max(height, int(math.ceil(in_h * scale - 1e-6))),
        max(width, int(math.ceil(in_w * scale - 1e-6))),
    )
    if (new_h, new_w) != (in_h, in_w):
        lq, hq = resize_uint8(lq, new_h, new_w), resize_uint8(hq, new_h, new_w)
    top = int(rng.integers(0, new_h - height + 1))
    left = int(rng.integers(0, new_w - width + 1))
    lq, hq = lq[top : top + height, left : left + width], hq[top : top + height, left : left + width]
    if rng.random() < 0.5:
        lq, hq = lq[:, ::-1], hq[:, ::-1]
    return np.ascontiguousarray(lq), np.ascontiguousarray(hq)


# ----------------------------------------------------------------------------------------------
# Datasets
# ----------------------------------------------------------------------------------------------
class PairSequences(Dataset):
    """Pseudo-temporal sequences of pairs. ``train``: item i is sample i of the stream
    (src/data/stream.py), a pure function of (seed, sample number), cropped at its step's
    curriculum size (the step counts every rank's batches: ``world_size``). ``val``: pair i,
    fitted to the model's H x W (centre crop + resize), fixed."""

    supports_cache = False  # crops change every sample

    def __init__(
        self,
        pairs: list[Pair],
        loader,  # index -> (lq, hq) uint8
        prompts: dict[str, str],
        frames: int,
        height: int,
        width: int,
        seed: int,
        train: bool,
        length: int | None = None,
        curriculum: Curriculum | None = None,
        batch_size: int = 1,
        accumulate: int = 1,
    ):
        self.pairs, self.loader, self.prompts = pairs, loader, prompts
        self.alphas = interpolation_weights(frames)
        self.height, self.width, self.seed, self.train = height, width, seed, train
        self.length = int(length if length is not None else len(pairs))
        self.curriculum = curriculum or Curriculum([])
        self.batch_size, self.accumulate, self.world_size = int(batch_size), int(accumulate), 1

    def __len__(self) -> int:
        return self.length

    def size_of_sample(self, sample: int) -> tuple[int, int]:
        # a rank's batch is a contiguous block of the stream: position // (B * W) is its batch count
        size = self.curriculum.size_at(sample // (self.batch_size * self.world_size) // self.accumulate)
        return (size, size) if size else (self.height, self.width)

    def __getitem__(self, index: int) -> dict:
        if self.train:
            sample = index
            rng = np.random.default_rng(stable_seed(self.seed, "paired-train", sample))
            pick = int(rng.integers(len(self.pairs)))
        else:
            pick = index
        pair = self.pairs[pick]
        try:
            lq, hq = self.loader(pick)
        except InputError as err:
            log.warning("skipping pair %s (%s)", pair.key, err)
            return {"skipped": f"{pair.key}: {err}"}
        if self.train:
            lq, hq = crop_pair(lq, hq, rng, *self.size_of_sample(sample))
        else:
            lq, _ = fit_to_output(lq, self.height, self.width)
            hq, _ = fit_to_output(hq, self.height, self.width)
        frames = render_interpolate(lq, hq, self.alphas)
        return {
            "frames": to_float_tensor(frames),
            "prompt": self.prompts.get(pair.category) or self.prompts["*"],
            "key": pair.key,
            "category": pair.category,
            "index": index,
        }


def collate_pairs(items: list[dict]) -> dict:
    from src.data.datamodule import collate_clips

    batch = collate_clips(items)
    if "frames" in batch:
        batch["category"] = [item["category"] for item in items if "skipped" not in item]
    return batch


class PairedDataModule(StreamingTrainData, L.LightningDataModule):
    """``data=paired`` (folders) / ``data=allinone`` (synthetic pairs); see the module docstring."""

    def __init__(
        self,
        task: str,
        prompt_mode: str,
        task_prompts: dict,
        degradation: dict,
        height: int,
        width: int,
        frames: int,
        seed: int = 0,
        source: str = "folders",
        root: str | None = None,
        lq_dir: str | None = None,
        hq_dir: str | None = None,
        category: str = "all",
        per_category: int | None = 50,
        val_per_category: int = 2,
        source_dir: str | None = None,
        extra_source_dir: str | None = "auto",
        val_source_dir: str | None = "auto",
        val_holdout=("coffee", "chelsea"),
        pair_height: int | None = None,
        pair_width: int | None = None,
        random_crop: tuple[float, float] = (0.5, 1.0),
        captions_file: str | None = None,
        train_clips_per_epoch: int = 400,
        batch_size: int = 4,
        val_batch_size: int = 4,
        num_workers: int = 0,
        shared_dir: str | None = None,
        curriculum: dict | None = None,
        max_steps: int | None = None,
        accumulate_grad_batches: int = 1,
        size_multiple: int = 16,
    ):
        super().__init__()
        if source not in ("folders", "synthetic"):
            raise ConfigError(f"data.source must be 'folders' or 'synthetic' for paired data, got {source!r}")
        if per_category is not None:
            number(per_category, "data.per_category", at_least=1)
        number(val_per_category, "data.val_per_category", at_least=0)
        for key, value, least in (
            ("batch_size", batch_size, 1),
            ("val_batch_size", val_batch_size, 1),
            ("train_clips_per_epoch", train_clips_per_epoch, 1),
            ("num_workers", num_workers, 0),
        ):
            number(value, f"data.{key}", at_least=least)
        self.task, self.prompt_mode, self.task_prompts = task, prompt_mode, dict(task_prompts)
        self.degradation = dict(degradation)
        self.height, self.width, self.frames, self.seed = height, width, frames, int(seed)
        self.source, self.root, self.lq_dir, self.hq_dir, self.category = (
            source,
            root,
            lq_dir,
            hq_dir,
            category,
        )
        self.per_category, self.val_per_category = per_category, int(val_per_category)
        self.source_dir, self.extra_source_dir, self.val_source_dir = (
            source_dir,
            extra_source_dir,
            val_source_dir,
        )
        self.val_holdout, self.captions_file = tuple(val_holdout or ()), captions_file
        self.pair_height, self.pair_width = int(pair_height or height), int(pair_width or width)
        self.crop = tuple(random_crop)
        self.train_clips_per_epoch = int(train_clips_per_epoch)
        self.batch_size, self.val_batch_size, self.num_workers = (
            int(batch_size),
            int(val_batch_size),
            int(num_workers),
        )
        self.shared_dir, self.accumulate = shared_dir, int(accumulate_grad_batches or 1)
        self.curriculum = Curriculum.resolve(curriculum, max_steps, height, width, int(size_multiple))
        self.train_set = self.val_set = None
        self.description: dict = {}
        self.skipped: list[dict] = []

    # -- setup ------------------------------------------------------------------------------
    def _prompts(self) -> dict[str, str]:
        """One prompt for every pair (V-Bridge uses one fixed prompt for every task); the adaptive
        mode names the category in the task's template."""
        from src.prompts import prompts_for

        if self.prompt_mode == "uniform":
            return {"*": prompts_for(self.task_prompts, None)["uniform"]}
        return {"*": prompts_for(self.task_prompts, None)["adaptive"]} | {
            c: prompts_for(self.task_prompts, f"an image degraded by {c.replace('_', ' and ')}")["adaptive"]
            for c in self._categories
        }

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        if self.source == "folders":
            self._setup_folders()
        else:
            self._setup_synthetic()
        log.info("paired data: %s", {k: v for k, v in self.description.items() if k != "train_pairs"})

    def _dataset(self, pairs, loader, train: bool) -> PairSequences:
        return PairSequences(
            pairs,
            loader,
            self._prompts(),
            self.frames,
            self.height,
            self.width,
            self.seed,
            train=train,
            length=self.train_clips_per_epoch if train else None,
            curriculum=self.curriculum if train else None,
            batch_size=self.batch_size,
            accumulate=self.accumulate,
        )

    def _setup_folders(self) -> None:
        pairs, self.skipped = scan_pairs(self.root, self.lq_dir, self.hq_dir, self.category)
        if self.skipped:
            log.warning(
                "%d file(s) skipped while pairing (listed in the run's %s)", len(self.skipped), PAIRS_FILE
            )
        train, val = split_pairs(pairs, self.seed, self.per_category, self.val_per_category)
        if not train:
            raise InputError("every pair was held out for validation: lower data.val_per_category")
        self._categories = sorted({p.category for p in pairs})
        self.train_set = self._dataset(train, lambda i: read_pair(train[i]), True)
        self.val_set = self._dataset(val, lambda i: read_pair(val[i]), False)
        self._describe(train, val)

    def _setup_synthetic(self) -> None:
        from tqdm import tqdm

        from src.data.allinone import AllInOnePreset
        from src.data.datamodule import ProgressionDataModule

        preset = AllInOnePreset.from_dict(self.degradation)
        self._categories = list(preset.categories)
        photos = ProgressionDataModule(  # the photographs and held-out split of data=synthetic
            task=self.task,
            prompt_mode=self.prompt_mode,
            task_prompts=self.task_prompts,
            degradation={},
            height=self.height,
            width=self.width,
            frames=self.frames,
            seed=self.seed,
            source_dir=self.source_dir,
            extra_source_dir=self.extra_source_dir,
            val_source_dir=self.val_source_dir,
            val_holdout=self.val_holdout,
            shared_dir=self.shared_dir,
        )
        train_images, val_images, val_dir = photos.photographs()
        per_category = self.per_category or 50
        train, store = [], []
        jobs = [(c, j) for c in preset.categories for j in range(per_category)]
        for category, index in tqdm(jobs, desc="synthetic pairs", unit="pair", leave=False, mininterval=2):
            lq, hq, params = synthetic_pair(
                train_images, category, index, preset, self.seed, self.pair_height, self.pair_width, self.crop
            )
            train.append(Pair(f"{category}/{index:04d}", category, params=params))
            store.append((lq, hq))
        held = held_out_pairs(val_images, preset, self.seed, self.height, self.width)
        val = [pair for pair, _, _ in held]
        self.train_set = self._dataset(train, lambda i: store[i], True)
        self.val_set = self._dataset(val, lambda i: held[i][1:], False)
        self.train_images = sorted(train_images)
        self._describe(train, val, val_dir=val_dir or "bundled held-out")

    def _describe(self, train: list[Pair], val: list[Pair], **extra) -> None:
        counts = {c: sum(p.category == c for p in train) for c in self._categories}
        self.description = {
            "source": self.source,
            "categories": counts,
            "train_pairs_total": len(train),
            "val_pairs": len(val),
            "skipped": len(self.skipped),
            "curriculum": self.curriculum.describe(),
            **extra,
        }
        self.pair_listing = {
            "seed": self.seed,
            "per_category": self.per_category,
            "train": [
                {
                    "key": p.key,
                    "lq": str(p.lq) if p.lq else None,
                    "hq": str(p.hq) if p.hq else None,
                    **({"params": p.params} if p.params else {}),
                }
                for p in train
            ],
            "val": [
                {"key": p.key, "lq": str(p.lq) if p.lq else None, "hq": str(p.hq) if p.hq else None}
                for p in val
            ],
            "skipped": self.skipped,
        }

    def write_pair_listing(self, run_dir: str | Path) -> Path:
        """``pairs.json``: the seed, the chosen training and validation pairs, the skipped files."""
        from src.utils.io import write_text_atomic

        path = Path(run_dir) / PAIRS_FILE
        write_text_atomic(path, json.dumps(self.pair_listing, indent=1, default=str) + "\n")
        return path

    def training_pairs(self):
        """[(Pair, lq, hq)] of every training pair, at its stored size (the drift-correction
        stage regenerates stage 1's outputs on them)."""
        dataset = self.train_set
        for index, pair in enumerate(dataset.pairs):
            try:
                lq, hq = dataset.loader(index)
            except InputError as err:
                log.warning("skipping pair %s (%s)", pair.key, err)
                continue
            yield pair, lq, hq

    # -- loaders ----------------------------------------------------------------------------
    def _loader(self, dataset, batch_size, sampler=None):
        return DataLoader(
            dataset,
            batch_size=batch_size,
            shuffle=False,  # the stream orders training samples (src/data/stream.py)
            num_workers=self.num_workers,
            collate_fn=collate_pairs,
            pin_memory=torch.cuda.is_available(),
            sampler=sampler,
        )

    def train_dataloader(self):
        return self._loader(self.train_set, self.batch_size, self.train_sampler())

    def val_dataloader(self):
        return self._loader(self.val_set, self.val_batch_size)

    def skipped_clips(self) -> list[str]:
        return [f"{s['path']}: {s['reason']}" for s in self.skipped] + self.stream_skipped()
