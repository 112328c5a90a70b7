"""Inference from a trained adapter: load a run dir, a LoRA export or a Lightning checkpoint onto
its base model, and restore images of any size into 9-frame trajectories.

Two ways to fit an image of any size to the model's native resolution (H, W):

- ``resize``: the whole image is resized to (H, W) (aspect not kept), the trajectory generated,
  and every frame resized back to the input's size. Fast; fine detail is limited by (H, W).
- ``tiled``: overlapping (H, W) tiles at the input's own resolution, each restored with the same
  seed and prompt, blended with feathered weights (linear ramps across the overlap) so seams do
  not show. An image smaller than one tile is reflect-padded to a tile and cropped back. When the
  input is exactly one tile, tiled equals resize (tested).

Frames are (F, H, W, 3) uint8 at the boundaries; tensors inside are (B, F, C, H, W) in [0, 1].
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

from src.utils.frames import to_float_tensor, to_uint8_images

log = logging.getLogger(__name__)


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message says why and what to pass instead."""


@dataclass
class CheckpointInfo:
    """Where an adapter lives and what it was trained for (from ``lora_config.json``)."""

    lora_dir: Path | None  # diffusers-format export (run_dir/lora) or None for a .ckpt
    run_dir: Path | None
    lightning_ckpt: Path | None
    config: dict  # lora_config.json: r, lora_alpha, target_modules, task, prompt, model, geometry
    overrides: list[str] = field(default_factory=list)  # the run's Hydra overrides


def resolve_checkpoint(ckpt: str | Path) -> CheckpointInfo:
    """A run dir (holding ``lora/``), a LoRA export dir (holding ``lora_config.json``) or a
    Lightning ``.ckpt`` inside ``<run_dir>/checkpoints/``."""
    if ckpt in (None, "", "???"):
        raise CheckpointError("ckpt= is required: a training run dir, its lora/ dir, or a .ckpt file")
    path = Path(str(ckpt)).expanduser()
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist")
    lightning_ckpt = None
    if path.is_file():
        if path.suffix != ".ckpt":
            raise CheckpointError(f"{path} is neither a run dir, a LoRA dir nor a Lightning .ckpt file")
        lightning_ckpt, run_dir, lora_dir = path, path.parent.parent, path.parent.parent / "lora"
    elif (path / "lora_config.json").is_file():
        lora_dir, run_dir = path, path.parent if (path.parent / ".hydra").is_dir() else None
    elif (path / "lora" / "lora_config.json").is_file():
        lora_dir, run_dir = path / "lora", path
    else:
        raise CheckpointError(
            f"{path} holds no LoRA export (no lora_config.json in it or in {path / 'lora'}); "
            "pass a training run dir, its lora/ dir or a checkpoints/*.ckpt file"
        )
    config_file = lora_dir / "lora_config.json"
    if config_file.is_file():
        config = json.loads(config_file.read_text())
    elif lightning_ckpt is not None:
        config = _config_from_run(run_dir)
    else:  # pragma: no cover - guarded above
        raise CheckpointError(f"no lora_config.json in {lora_dir}")
    overrides = []
    if run_dir is not None and (run_dir / ".hydra" / "overrides.yaml").is_file():
        from omegaconf import OmegaConf

        overrides = [str(o) for o in OmegaConf.load(run_dir / ".hydra" / "overrides.yaml")]
    return CheckpointInfo(
        lora_dir=None if lightning_ckpt else lora_dir,
        run_dir=run_dir,
        lightning_ckpt=lightning_ckpt,
        config=config,
        overrides=overrides,
    )


def _config_from_run(run_dir: Path) -> dict:
    """lora_config.json's fields from a run's saved Hydra config (a run killed before export)."""
    from omegaconf import OmegaConf

    saved = run_dir / ".hydra" / "config.yaml"
    if not saved.is_file():
        raise CheckpointError(f"{run_dir} has neither lora/lora_config.json nor .hydra/config.yaml")
    cfg = OmegaConf.load(saved)
    return {
        "r": int(cfg.lora.rank),
        "lora_alpha": float(cfg.lora.alpha),
        "target_modules": list(cfg.lora.target_modules),
        "task": str(cfg.task.name),
        "prompt": str(cfg.prompt.mode),
        "model": str(cfg.model.name),
        "frames": int(cfg.model.frames),
        "height": int(cfg.model.height),
        "width": int(cfg.model.width),
        "seed": int(cfg.seed),
    }


# Overrides of the training run that do not change the model or prompts (they may name paths or
# groups that no longer exist where inference runs).
_IRRELEVANT_OVERRIDE_PREFIXES = (
    "trainer",
    "logger",
    "callbacks",
    "data",
    "debug",
    "paths",
    "ckpt_path",
    "train",
    "validate",
    "export_lora",
    "optimizer",
    "lr_scheduler",
    "run_name",
    "experiment",
    "hydra",
)


def compose_run_config(info: CheckpointInfo, overrides: list[str] | None = None):
    """The training config of the checkpoint's run (its model, task, prompt and LoRA groups),
    with ``overrides`` (e.g. ``task=sr``, ``model.sampling.num_inference_steps=10``) on top."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from src.utils.config import CONFIG_DIR

    config = info.config
    overrides = list(overrides or [])
    chosen = {o.split("=")[0] for o in overrides}
    base = [f"{group}={config[group]}" for group in ("model", "task", "prompt") if group not in chosen]
    kept = [
        o
        for o in info.overrides
        if o.lstrip("+~").split("=")[0].split(".")[0].split("@")[0] not in _IRRELEVANT_OVERRIDE_PREFIXES
        and not o.startswith(("model=", "task=", "prompt="))
    ]
    # The CLIs run inside @hydra.main, whose global state compose() may not reuse: set it aside.
    global_hydra = GlobalHydra.instance()
    outer = global_hydra.hydra if global_hydra.is_initialized() else None
    global_hydra.clear()
    try:
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
            return compose("train", overrides=base + kept + overrides)
    except Exception as err:  # unknown model/task group, bad override: one clear line
        raise CheckpointError(f"cannot rebuild the checkpoint's config: {err}") from None
    finally:
        GlobalHydra.instance().clear()
        if outer is not None:
            GlobalHydra.instance().initialize(outer)


class Restorer:
    """A diffusers I2V pipeline carrying the trained adapter, with the run's geometry, task,
    prompt mode and sampling settings."""

    def __init__(self, pipeline, model_cfg: dict, task_cfg: dict, prompt_mode: str, info: CheckpointInfo):
        self.pipeline, self.model_cfg, self.task_cfg = pipeline, model_cfg, task_cfg
        self.task, self.prompt_mode, self.info = str(task_cfg["name"]), prompt_mode, info
        self.frames = int(model_cfg["frames"])
        self.height, self.width = int(model_cfg["height"]), int(model_cfg["width"])
        sampling = model_cfg.get("sampling") or {}
        self.num_inference_steps = int(sampling.get("num_inference_steps", 25))
        self.guidance_scale = float(sampling.get("guidance_scale", 1.0))
        self.max_sequence_length = int(model_cfg.get("max_sequence_length", 226))
        self.device = pipeline.transformer.device

    @property
    def description(self) -> dict:
        return {
            "task": self.task,
            "prompt_mode": self.prompt_mode,
            "model": self.model_cfg["name"],
            "frames": self.frames,
            "height": self.height,
            "width": self.width,
            "num_inference_steps": self.num_inference_steps,
            "guidance_scale": self.guidance_scale,
            "checkpoint": str(self.info.lightning_ckpt or self.info.lora_dir),
        }

    def prompt(self, caption: str | None = None) -> str:
        from src.prompts import prompts_for

        return prompts_for(self.task_cfg, caption)[self.prompt_mode]

    @torch.no_grad()
    def trajectories(self, first_frames_bchw: torch.Tensor, prompts: list[str], seed: int) -> torch.Tensor:
        """(B, F, C, H, W) in [0, 1] from first frames (B, C, H, W) in [0, 1] at the model's size;
        every sample uses ``seed`` (tiles of one image share their noise)."""
        from src.models import recipe

        generators = [torch.Generator(device=self.device).manual_seed(int(seed)) for _ in prompts]
        return recipe.generate_trajectory(
            self.pipeline,
            first_frames_bchw.to(self.device),
            list(prompts),
            generators,
            self.height,
            self.width,
            self.frames,
            self.num_inference_steps,
            self.guidance_scale,
            self.max_sequence_length,
        ).cpu()

    def restore(
        self,
        image_hwc: np.ndarray,
        prompt: str,
        seed: int,
        mode: str = "resize",
        overlap: int = 16,
        tile_batch: int = 4,
        progress: bool = False,
    ) -> tuple[np.ndarray, dict]:
        """(frames (F, H0, W0, 3) uint8 at the input's size, info) for an (H0, W0, 3) uint8 image."""
        if image_hwc.ndim != 3 or image_hwc.shape[2] != 3 or image_hwc.dtype != np.uint8:
            raise ValueError(f"expected an (H, W, 3) uint8 image, got {image_hwc.shape} {image_hwc.dtype}")
        if mode == "resize":
            return self._restore_resized(image_hwc, prompt, seed), {"mode": "resize", "tiles": 1}
        if mode == "tiled":
            return self._restore_tiled(image_hwc, prompt, seed, overlap, tile_batch, progress)
        raise ValueError(f"mode must be 'resize' or 'tiled', got {mode!r}")

    def _restore_resized(self, image_hwc: np.ndarray, prompt: str, seed: int) -> np.ndarray:
        in_h, in_w = image_hwc.shape[:2]
        resized = resize_uint8(image_hwc, self.height, self.width)
        video = self.trajectories(to_float_tensor(resized[None]), [prompt], seed)[0]  # (F, C, H, W)
        frames = to_uint8_images(video)
        return np.stack([resize_uint8(frame, in_h, in_w) for frame in frames])

    def _restore_tiled(
        self, image_hwc: np.ndarray, prompt: str, seed: int, overlap: int, tile_batch: int, progress: bool
    ) -> tuple[np.ndarray, dict]:
        in_h, in_w = image_hwc.shape[:2]
        pad_h, pad_w = max(0, self.height - in_h), max(0, self.width - in_w)
        padded = (
            cv2.copyMakeBorder(image_hwc, 0, pad_h, 0, pad_w, cv2.BORDER_REFLECT_101)
            if pad_h or pad_w
            else image_hwc
        )
        full_h, full_w = padded.shape[:2]
        boxes = [
            (top, left)
            for top in tile_starts(full_h, self.height, overlap)
            for left in tile_starts(full_w, self.width, overlap)
        ]
        weight = feather_window(self.height, self.width, overlap)  # (H, W)
        accumulated = np.zeros((self.frames, full_h, full_w, 3), np.float64)
        weights = np.zeros((full_h, full_w), np.float64)
        batches = [boxes[i : i + max(1, tile_batch)] for i in range(0, len(boxes), max(1, tile_batch))]
        if progress and len(batches) > 1:
            from tqdm import tqdm

            batches = tqdm(batches, desc="tiles", unit="batch", leave=False)
        for batch in batches:
            tiles = np.stack([padded[t : t + self.height, lft : lft + self.width] for t, lft in batch])
            video = self.trajectories(to_float_tensor(tiles), [prompt] * len(batch), seed)  # (B, F, C, H, W)
            for (top, left), sample in zip(batch, video, strict=True):
                frames = sample.permute(0, 2, 3, 1).double().numpy()  # (F, H, W, C) in [0, 1]
                region = (slice(top, top + self.height), slice(left, left + self.width))
                accumulated[:, region[0], region[1]] += frames * weight[None, :, :, None]
                weights[region] += weight
        blended = accumulated / weights[None, :, :, None]
        frames = np.clip(np.round(blended[:, :in_h, :in_w] * 255.0), 0, 255).astype(np.uint8)
        return frames, {"mode": "tiled", "tiles": len(boxes), "overlap": overlap}


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of size ``tile`` covering ``length`` (>= tile) with at least
    ``overlap`` pixels shared by neighbours, spread evenly, first at 0 and last at length - tile."""
    if not 0 <= overlap < tile:
        raise ValueError(f"tile overlap must be in [0, {tile}), got {overlap}")
    if length <= tile:
        return [0]
    count = math.ceil((length - tile) / (tile - overlap)) + 1
    return [round(i * (length - tile) / (count - 1)) for i in range(count)]


def feather_window(height: int, width: int, overlap: int) -> np.ndarray:
    """(H, W) blending weights: linear ramps over ``overlap`` pixels at every edge, 1 inside;
    strictly positive, so a pixel covered by one tile keeps that tile's value exactly."""

    def ramp(size: int) -> np.ndarray:
        if overlap <= 0:
            return np.ones(size)
        index = np.arange(size, dtype=np.float64)
        return np.minimum(1.0, np.minimum(index + 1, size - index) / (overlap + 1))

    return np.outer(ramp(height), ramp(width))


def resize_uint8(image_hwc: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize with area averaging when shrinking and bicubic when enlarging (no aliasing)."""
    if image_hwc.shape[:2] == (height, width):
        return image_hwc
    shrinking = height * width < image_hwc.shape[0] * image_hwc.shape[1]
    return cv2.resize(
        image_hwc, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC
    )


def _load_lightning_adapter(transformer, ckpt: Path) -> None:
    """The adapter tensors of an adapter-only Lightning checkpoint into a LoRA-carrying transformer."""
    state = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
    prefix = "transformer."
    adapter = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix) and "lora_" in k}
    if not adapter:
        raise CheckpointError(f"{ckpt} holds no LoRA tensors")
    missing, unexpected = transformer.load_state_dict(adapter, strict=False)
    if unexpected:
        raise CheckpointError(f"{ckpt} does not fit this model: unexpected tensors {unexpected[:3]}")
    lora_missing = [k for k in missing if "lora_" in k]
    if lora_missing:
        raise CheckpointError(f"{ckpt} lacks LoRA tensors {lora_missing[:3]} of this model")


def load_restorer(
    ckpt: str | Path | CheckpointInfo, overrides: list[str] | None = None, device: str = "auto"
) -> Restorer:
    """A :class:`Restorer` for a checkpoint (a path, or what :func:`resolve_checkpoint` made of
    one). ``overrides`` are training-config overrides (e.g.
    ``task=sr``, ``prompt=uniform``, ``model.sampling.num_inference_steps=10``, ``model.path=...``)."""
    from omegaconf import OmegaConf

    from src.models import recipe
    from src.models.lora import add_lora, load_exported_lora
    from src.models.module import load_components

    info = ckpt if isinstance(ckpt, CheckpointInfo) else resolve_checkpoint(ckpt)
    cfg = compose_run_config(info, overrides)
    model_cfg = OmegaConf.to_container(cfg.model, resolve=True)
    task_cfg = OmegaConf.to_container(cfg.task, resolve=True)
    trained_model = info.config.get("model")
    if trained_model and trained_model != model_cfg["name"]:
        raise CheckpointError(
            f"the adapter in {info.lora_dir or info.lightning_ckpt} was trained on model "
            f"{trained_model}, not {model_cfg['name']}; drop the model override"
        )
    geometry = (info.config.get("frames"), info.config.get("height"), info.config.get("width"))
    if all(geometry):
        model_cfg["frames"], model_cfg["height"], model_cfg["width"] = (int(v) for v in geometry)
    if model_cfg.get("kind") == "diffusers":
        from src.models.cogvideox import resolve_model_dir

        resolve_model_dir(
            model_cfg["name"], model_cfg["path"], model_cfg.get("revision"), bool(model_cfg.get("download"))
        )
    components = load_components(model_cfg)
    pipeline = recipe.i2v_pipeline(components)
    target = torch.device("cuda" if device == "auto" and torch.cuda.is_available() else "cpu")
    if device not in ("auto", None):
        target = torch.device(device)
    try:
        if info.lightning_ckpt is not None:
            add_lora(
                pipeline.transformer,
                int(info.config["r"]),
                float(info.config["lora_alpha"]),
                list(info.config["target_modules"]),
            )
            _load_lightning_adapter(pipeline.transformer, info.lightning_ckpt)
            recipe.configure_positional_embeddings(
                pipeline.transformer,
                model_cfg.get("positional_embedding", "sincos"),
                model_cfg["frames"],
                model_cfg["height"],
                model_cfg["width"],
                pipeline.vae_scale_factor_spatial,
            )
        else:
            load_exported_lora(pipeline, info.lora_dir)
    except CheckpointError:
        raise
    except (RuntimeError, ValueError, KeyError) as err:
        raise CheckpointError(
            f"the adapter in {info.lora_dir or info.lightning_ckpt} does not fit model {model_cfg['name']} "
            f"({type(err).__name__}: {str(err).splitlines()[0][:200]})"
        ) from None
    pipeline.to(target)
    pipeline.transformer.eval()
    pipeline.vae.eval()
    pipeline.text_encoder.eval()
    prompt_mode = str(cfg.prompt.mode)
    log.info(
        "restorer: %s adapter (task %s, prompt %s) on %s",
        model_cfg["name"],
        task_cfg["name"],
        prompt_mode,
        target,
    )
    return Restorer(pipeline, model_cfg, task_cfg, prompt_mode, info)
