"""LightningDataModule of 9-frame progression clips at the model's resolution.

Two sources:
* ``synthetic``: clips generated on the fly from photographs with the dataset builder's
  schedules (random crops for augmentation; no disk);
* ``dataset``: a dataset built by ``python -m src.build_dataset`` (mp4 read with decord, or png
  frame folders), resized to the model's resolution.

Validation always uses *source images* that no training clip comes from. A batch is a dict:
``frames`` (B, F, C, H, W) float in [0, 1] (frame 0 degraded, frame F-1 clean), ``prompt``
(list of B strings), ``key`` (list of source keys).
"""

from __future__ import annotations

import logging
from pathlib import Path

import lightning as L
import torch
from torch.utils.data import DataLoader

from src.data.clips import (  # noqa: F401  (re-exported: importers of the data module's clips)
    BuiltClips,
    SyntheticClips,
    _require_a_readable_clip,
    collate_clips,
    read_built_dataset,
)
from src.data.degradations import DegradationPreset
from src.data.images import BUNDLED_PHOTOS, Source, SourceError, list_sources, load_image
from src.data.stream import StreamingTrainData
from src.prompts import load_captions, prompts_for
from src.utils.cli import ConfigError, InputError, number
from src.utils.seeding import stable_seed

log = logging.getLogger(__name__)


class ProgressionDataModule(StreamingTrainData, L.LightningDataModule):
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
        source: str = "synthetic",
        source_dir: str | None = None,
        extra_source_dir: str | None = None,
        val_source_dir: str | None = "auto",
        val_holdout=("coffee", "chelsea"),
        captions_file: str | None = None,
        random_crop: tuple[float, float] = (0.5, 1.0),
        train_clips_per_epoch: int = 400,
        val_clips_per_image: int = 1,
        dataset_dir: str | None = None,
        val_fraction: float = 0.15,
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
        if (curriculum or {}).get("stages"):
            raise ConfigError(
                f"curriculum={curriculum.get('name')} crops V-Bridge's paired sequences: use it with "
                "data=paired or data=allinone (progression clips keep the model's H x W), or curriculum=none"
            )
        if source not in ("synthetic", "dataset"):
            raise ConfigError(f"data.source must be 'synthetic' or 'dataset', got {source!r}")
        for key, value, least in (
            ("batch_size", batch_size, 1),
            ("val_batch_size", val_batch_size, 1),
            ("train_clips_per_epoch", train_clips_per_epoch, 1),
            ("val_clips_per_image", val_clips_per_image, 1),
            ("num_workers", num_workers, 0),
        ):
            number(value, f"data.{key}", at_least=least)
        number(val_fraction, "data.val_fraction", float, above=0, below=1)
        low, high = (number(v, "data.random_crop", float, above=0, at_most=1) for v in random_crop)
        if low > high:
            raise ConfigError(
                f"data.random_crop must be [low, high] with low <= high, got {list(random_crop)}"
            )
        self.task, self.prompt_mode, self.task_prompts = task, prompt_mode, dict(task_prompts)
        self.preset = DegradationPreset.from_dict(dict(degradation))
        self.height, self.width, self.frames, self.seed = height, width, frames, seed
        self.source, self.source_dir, self.val_source_dir = source, source_dir, val_source_dir
        self.extra_source_dir = extra_source_dir
        self.val_holdout, self.captions_file = tuple(val_holdout or ()), captions_file
        self.crop, self.train_clips_per_epoch = tuple(random_crop), int(train_clips_per_epoch)
        self.val_clips_per_image, self.dataset_dir, self.val_fraction = (
            int(val_clips_per_image),
            dataset_dir,
            val_fraction,
        )
        self.batch_size, self.val_batch_size, self.num_workers = (
            int(batch_size),
            int(val_batch_size),
            int(num_workers),
        )
        self.shared_dir = shared_dir
        self._stream_shuffle = source == "dataset"  # a fixed dataset: a new seeded order every pass
        self.train_set = self.val_set = None
        self.description: dict = {}

    # -- setup ------------------------------------------------------------------------------
    def _prompt(self, caption: str | None) -> str:
        return prompts_for(self.task_prompts, caption)[self.prompt_mode]

    def _load_folder(self, folder: str, captions: dict) -> tuple[dict, dict]:
        sources, _ = list_sources(folder)
        images, prompts = {}, {}
        for source in sources:
            try:
                images[source.key] = load_image(source)
            except SourceError as err:
                log.warning("skipping %s: %s", source.path, err)
                continue
            prompts[source.key] = self._prompt(captions.get(source.key) or captions.get(source.path.name))
        if not images:
            raise InputError(f"no readable images in {folder}")
        return images, prompts

    def _shared_or(self, value: str | None, name: str) -> str | None:
        """``value``, or for ``auto`` the folder ``data/<name>`` of the shared folder when it
        exists (else None)."""
        if value != "auto":
            return value
        candidate = Path(self.shared_dir or "") / "data" / name
        return str(candidate) if self.shared_dir and candidate.is_dir() else None

    def _resolve_val_dir(self) -> str | None:
        return self._shared_or(self.val_source_dir, "set5")

    def _resolve_extra_dir(self) -> str | None:
        return self._shared_or(self.extra_source_dir, "mcmaster")

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        if self.source == "dataset":
            self._setup_dataset()
        else:
            self._setup_synthetic()
        log.info("data: %s", self.description)

    def photographs(self) -> tuple[dict, dict, str | None]:
        """(training images, validation images, validation folder or None): the photographs of
        ``data=synthetic`` and its held-out split (also the photographs of ``data=allinone``)."""
        captions = load_captions(self.captions_file) if self.captions_file else {}
        self._photo_prompts = {}
        if self.source_dir:
            train_images, train_prompts = self._load_folder(self.source_dir, captions)
        else:
            keys = [k for k in BUNDLED_PHOTOS if k not in self.val_holdout]
            train_images = {k: load_image(Source(k)) for k in keys}
            train_prompts = {k: self._prompt(BUNDLED_PHOTOS[k]) for k in keys}
            extra_dir = self._resolve_extra_dir()
            if extra_dir:
                extra_images, extra_prompts = self._load_folder(extra_dir, captions)
                name = Path(extra_dir).name
                train_images.update({f"{name}/{k}": v for k, v in extra_images.items()})
                train_prompts.update({f"{name}/{k}": v for k, v in extra_prompts.items()})
        val_dir = self._resolve_val_dir()
        if val_dir:
            val_images, val_prompts = self._load_folder(val_dir, captions)
        else:
            if self.source_dir:
                raise InputError(
                    "data.val_source_dir is required with data.source_dir (validation must use held-out images)"
                )
            val_images = {k: load_image(Source(k)) for k in self.val_holdout}
            val_prompts = {k: self._prompt(BUNDLED_PHOTOS[k]) for k in self.val_holdout}
        overlap = set(train_images) & set(val_images)
        if overlap and (self.source_dir or not val_dir):
            raise InputError(f"validation images {sorted(overlap)} are also training images")
        self._photo_prompts = {"train": train_prompts, "val": val_prompts}
        return train_images, val_images, val_dir

    def photo_prompts(self) -> dict[str, dict[str, str]]:
        """{"train": {photo: prompt}, "val": {photo: prompt}}: the prompt each photograph of
        ``data=synthetic`` trains or validates with (reads the photographs once)."""
        if not hasattr(self, "_photo_prompts"):
            self.photographs()
        return self._photo_prompts

    def _setup_synthetic(self) -> None:
        train_images, val_images, val_dir = self.photographs()
        train_prompts, val_prompts = self._photo_prompts["train"], self._photo_prompts["val"]
        common = dict(
            task=self.task,
            preset=self.preset,
            frames=self.frames,
            height=self.height,
            width=self.width,
            seed=self.seed,
        )
        self.train_set = SyntheticClips(
            train_images,
            train_prompts,
            length=self.train_clips_per_epoch,
            crop=self.crop,
            stage="train",
            **common,
        )
        self.val_set = SyntheticClips(
            val_images,
            val_prompts,
            length=len(val_images) * self.val_clips_per_image,
            crop=None,
            stage="val",
            **common,
        )
        self.description = {
            "source": "synthetic",
            "train_images": sorted(train_images),
            "val_images": sorted(val_images),
            "val_dir": val_dir or "bundled held-out",
        }

    def _setup_dataset(self) -> None:
        root = Path(self.dataset_dir or "")
        entries = read_built_dataset(root, self.prompt_mode, self.frames)
        sources = sorted({e["source"] for e in entries})
        if len(sources) < 2:
            raise InputError(
                f"{root} has clips of {len(sources)} source image(s); validation needs a held-out image"
            )
        order = sorted(sources, key=lambda s: stable_seed(self.seed, "val-split", s))
        n_val = max(1, int(round(self.val_fraction * len(sources))))
        val_sources = set(order[:n_val])
        train = [e for e in entries if e["source"] not in val_sources]
        val = [e for e in entries if e["source"] in val_sources]
        self.train_set = BuiltClips(root, train, self.height, self.width, self.frames)
        self.val_set = BuiltClips(root, val, self.height, self.width, self.frames)
        for name, dataset in (("training", self.train_set), ("validation", self.val_set)):
            _require_a_readable_clip(dataset, name, root)
        self.description = {
            "source": str(root),
            "train_clips": len(train),
            "val_clips": len(val),
            "val_images": sorted(val_sources),
        }

    # -- loaders ----------------------------------------------------------------------------
    def _loader(self, dataset, batch_size, sampler=None):
        return DataLoader(
            dataset,
            batch_size=batch_size,
            sampler=sampler,
            shuffle=False,
            num_workers=self.num_workers,
            collate_fn=collate_clips,
            persistent_workers=False,
            pin_memory=torch.cuda.is_available(),
            generator=torch.Generator().manual_seed(self.seed),  # worker seeds
        )

    def train_dataloader(self):
        # The stream (src/data/stream.py) orders the clips: seeded, global across ranks, resumable.
        return self._loader(self.train_set, self.batch_size, self.train_sampler())

    def val_dataloader(self):
        return self._loader(self.val_set, self.val_batch_size)

    def skipped_clips(self) -> list[str]:
        """Corrupt clips met so far by any worker or rank (after gather_skipped)."""
        return self.stream_skipped()
