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

The pairs (on disk and synthetic) live in :mod:`src.data.pairs`, the curriculum and the training
crop in :mod:`src.data.curriculum`; this module holds the datasets and the DataModule.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from src.data.curriculum import Curriculum, crop_pair
from src.data.degradations import interpolation_weights, render_interpolate
from src.data.images import fit_to_output
from src.data.pairs import Pair, held_out_pairs, read_pair, scan_pairs, split_pairs, synthetic_pair
from src.data.stream import StreamingTrainData
from src.utils.cli import ConfigError, InputError, number
from src.utils.frames import to_float_tensor
from src.utils.seeding import stable_seed

log = logging.getLogger(__name__)

PAIRS_FILE = "pairs.json"  # the chosen and skipped pairs, next to the run's outputs


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
