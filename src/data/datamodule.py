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
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from src.data.degradations import DegradationPreset, make_clip
from src.data.images import BUNDLED_PHOTOS, Source, SourceError, fit_to_output, list_sources, load_image
from src.data.stream import StreamingTrainData
from src.prompts import load_captions, prompt_file_name, prompts_for
from src.utils.cli import ConfigError, InputError, MissingFileError, number
from src.utils.frames import to_float_tensor
from src.utils.io import confined, read_jsonl, read_text
from src.utils.seeding import stable_seed

log = logging.getLogger(__name__)


to_tensor_clip = to_float_tensor  # (F, H, W, 3) uint8 -> (F, 3, H, W) float in [0, 1]


def random_crop(
    image: np.ndarray, rng: np.random.Generator, fraction: tuple[float, float], height: int, width: int
):
    """A random crop with the output aspect covering ``fraction`` of the largest such crop."""
    img_h, img_w = image.shape[:2]
    max_w = min(img_w, img_h * width / height)
    crop_w = max(8, int(max_w * rng.uniform(*fraction)))
    crop_h = max(8, int(round(crop_w * height / width)))
    top = int(rng.integers(0, img_h - crop_h + 1))
    left = int(rng.integers(0, img_w - crop_w + 1))
    return image[top : top + crop_h, left : left + crop_w]


class SyntheticClips(Dataset):
    """Progression clips made on the fly. Training item i is clip number i of the stream
    (src/data/stream.py), a pure function of (seed, clip number): runs, and runs resumed from a
    checkpoint, see the same clips in the same order without shuffling."""

    def __init__(
        self,
        images: dict[str, np.ndarray],
        prompts: dict[str, str],
        task: str,
        preset: DegradationPreset,
        frames: int,
        height: int,
        width: int,
        length: int,
        seed: int,
        crop: tuple[float, float] | None,
        stage: str,
    ):
        self.images, self.prompts, self.keys = images, prompts, sorted(images)
        self.task, self.preset, self.frames, self.height, self.width = task, preset, frames, height, width
        self.length, self.seed, self.crop, self.stage = length, seed, crop, stage

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict:
        if self.crop is None:  # validation: image k, clip c, fixed
            key = self.keys[index % len(self.keys)]
            rng = np.random.default_rng(
                stable_seed(self.seed, self.stage, self.task, key, index // len(self.keys))
            )
            clean, _ = fit_to_output(self.images[key], self.height, self.width)
        else:
            rng = np.random.default_rng(stable_seed(self.seed, self.stage, self.task, index))
            key = self.keys[int(rng.integers(len(self.keys)))]
            crop = random_crop(self.images[key], rng, self.crop, self.height, self.width)
            clean, _ = fit_to_output(crop, self.height, self.width)
            if rng.random() < 0.5:
                clean = np.ascontiguousarray(clean[:, ::-1])
        frames, _ = make_clip(clean, self.task, rng, self.preset, self.frames)
        return {"frames": to_tensor_clip(frames), "prompt": self.prompts[key], "key": key, "index": index}


class BuiltClips(Dataset):
    """Clips of a built dataset; a corrupt clip yields ``{"skipped": "<clip>: <reason>"}``, left out
    of its batch by the collate and counted wherever it was read (worker or rank)."""

    def __init__(self, root: Path, entries: list[dict], height: int, width: int, frames: int):
        self.root, self.entries, self.height, self.width, self.frames = root, entries, height, width, frames
        self._clip_ids: dict[int, str] = {}

    supports_cache = True  # fixed clips: their encoder outputs can be cached by content

    def clip_id(self, index: int) -> str:
        """Content hash of the clip file plus the resize geometry (memoised per process)."""
        if index not in self._clip_ids:
            from src.data.latent_cache import file_hash

            self._clip_ids[index] = file_hash(self.root / self.entries[index]["video"])
        return self._clip_ids[index]

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, index: int) -> dict:
        from src.data.clip_io import read_clip

        entry = self.entries[index]
        try:
            clip = read_clip(self.root / entry["video"])
            if clip.shape[0] != self.frames:
                raise ValueError(f"{clip.shape[0]} frames, expected {self.frames}")
        except Exception as err:  # noqa: BLE001 - any decoder error means an unusable clip
            log.warning("skipping corrupt clip %s (%s)", entry["video"], err)
            return {"skipped": f"{entry['video']}: {err}"}
        resized = np.stack([fit_to_output(frame, self.height, self.width)[0] for frame in clip])
        return {
            "frames": to_tensor_clip(resized),
            "prompt": entry["prompt"],
            "key": entry["source"],
            "clip_id": self.clip_id(index),
            "index": index,
        }


def collate_clips(items: list[dict]) -> dict:
    """A batch of the readable items; ``skipped`` names the unreadable ones (a batch of only those
    has no ``frames``: the steps pass it by)."""
    skipped = [item["skipped"] for item in items if "skipped" in item]
    items = [item for item in items if "skipped" not in item]
    if not items:
        return {"skipped": skipped}
    batch = {
        "frames": torch.stack([item["frames"] for item in items]),
        "prompt": [item["prompt"] for item in items],
        "key": [item["key"] for item in items],
    }
    if all("clip_id" in item for item in items):
        batch["clip_id"] = [item["clip_id"] for item in items]
    if all("index" in item for item in items):  # the item's index in its dataset (validation dedup)
        batch["index"] = torch.tensor([int(item["index"]) for item in items], dtype=torch.long)
    if skipped:
        batch["skipped"] = skipped
    return batch


def read_built_dataset(root: Path, prompt_mode: str, frames: int) -> list[dict]:
    """Entries (video, prompt, source) of a built dataset, checked for consistency."""
    if not root.is_dir():
        raise MissingFileError(
            f"dataset dir {root} does not exist; build it with `python -m src.build_dataset task=...` "
            "or train with data=synthetic"
        )
    videos_file = root / "videos.txt"
    if not videos_file.is_file():
        raise MissingFileError(
            f"{videos_file} is missing: {root} is not a finished dataset (rerun the build to resume)"
        )
    videos = read_text(videos_file, "the dataset's clip list").splitlines()
    outside = [v for v in videos if not v.strip() or not confined(root, v)]
    if outside:
        raise InputError(
            f"{videos_file} lists {len(outside)} path(s) outside {root} (or empty lines): "
            f"{', '.join(repr(v) for v in outside[:5])}; every clip must lie inside the dataset folder "
            "(e.g. videos/<name>.mp4): rebuild the dataset or fix the file"
        )
    prompt_path = root / prompt_file_name(prompt_mode)
    if not prompt_path.is_file():
        if not (root / "prompt.txt").is_file():
            raise MissingFileError(
                f"{root} has neither {prompt_file_name(prompt_mode)} nor prompt.txt: the dataset is "
                "incomplete; rerun python -m src.build_dataset (it resumes) or python -m src.prompts"
            )
        prompt_path = root / "prompt.txt"
        log.warning("%s has no %s; using prompt.txt", root, prompt_file_name(prompt_mode))
    prompts = read_text(prompt_path, "the dataset's prompts").splitlines()
    if len(prompts) != len(videos):
        raise InputError(
            f"{prompt_path} has {len(prompts)} lines but videos.txt has {len(videos)}: they must be line-aligned"
        )
    sources = [v for v in videos]
    metadata_path = root / "metadata.jsonl"
    if metadata_path.is_file():
        records = read_jsonl(metadata_path, "the dataset's clip records")
        if len(records) == len(videos):
            sources = [r.get("source_key", r.get("source")) for r in records]
            built_frames = {r.get("frames") for r in records}
            if built_frames != {frames}:
                raise InputError(
                    f"{root} holds {sorted(built_frames)}-frame clips but the model is set to {frames} frames"
                )
    return [{"video": v, "prompt": p, "source": s} for v, p, s in zip(videos, prompts, sources, strict=True)]


def _require_a_readable_clip(dataset: BuiltClips, name: str, root: Path) -> None:
    """Decode clips until one works (normally the first): a dataset whose every clip is missing
    or unreadable fails here, naming them, instead of inside the training loop (the clips met
    are counted when training reads them)."""
    failures = []
    for index in range(len(dataset)):
        item = dataset[index]
        if "skipped" not in item:
            return
        failures.append(item["skipped"])
    listed = "; ".join(failures[:3])
    raise InputError(
        f"none of the {len(dataset)} {name} clips of {root} can be read ({listed}"
        f"{'; ...' if len(failures) > 3 else ''}): rebuild the dataset with python -m src.build_dataset"
    )


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
