"""The clips a progression data module serves: random crops of photographs turned into
synthetic progression clips, clips of a dataset built by ``python -m src.build_dataset`` (its
layout read and checked), and the collate function that stacks them. A clip is a dict:
``frames`` (F, C, H, W) float in [0, 1] (frame 0 degraded, frame F-1 clean), ``prompt``, ``key``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from src.data.degradations import DegradationPreset, make_clip
from src.data.images import fit_to_output
from src.prompts import prompt_file_name
from src.utils.cli import InputError, MissingFileError
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
