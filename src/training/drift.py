"""V-Bridge's drift correction (arXiv 2603.13089, sec. 3.4): the data of the second model.

The stage-1 model's last frame is a systematic drift away from the clean image. The correction
model learns a short trajectory (``drift.frames``, default 5) from that last frame to the clean
image: its training pairs are (stage-1 output, HQ) on the stage-1 run's own training pairs. At
inference stage 1's last frame goes through the second model and the second model's last frame is
the output (``drift=<stage-2 run>`` in ``src.restore`` and ``src.eval``;
:func:`src.models.restorer.restore_chained`).

:func:`build_correction_pairs` writes them in the paired-folder layout that ``data=paired`` reads::

    <stage-1 run>/drift/manifest.json           what made them (checkpoint, sampling, seed)
    <stage-1 run>/drift/pairs/<category>/LQ/<name>.png   stage 1's last frame
    <stage-1 run>/drift/pairs/<category>/GT/<name>.png   the clean image

It is resumable (a pair whose two files exist is not generated again; each file appears whole)
and cached (a second call with the same checkpoint and sampling settings generates nothing); a
folder made by another checkpoint or other settings is refused rather than mixed.
``python -m src.train experiment=vbridge_tiny_drift drift.stage1=<run>`` checks the run with
:func:`read_stage1_config` before anything else and calls it before training (the stage-1 model is
freed before the stage-2 model loads).
"""

from __future__ import annotations

import gc
import json
import logging
from pathlib import Path

import numpy as np
import torch

from src.utils.cli import ConfigError, InputError, MissingFileError
from src.utils.seeding import stable_seed

log = logging.getLogger("src.drift")  # the name its log lines have always had

DRIFT_DIR = "drift"


def pairs_dir(stage1_run: str | Path) -> Path:
    return Path(stage1_run) / DRIFT_DIR / "pairs"


def _fingerprint(restorer, seed: int) -> dict:
    """What the stage-1 outputs depend on: the adapter file, sampling settings and seed."""
    from src.data.latent_cache import file_hash

    source = Path(restorer.info.source)
    weights = source if source.is_file() else next(iter(sorted(source.glob("*.safetensors"))), None)
    sampling = restorer.backbone.config.sampling
    return {
        "checkpoint": str(weights),
        "checkpoint_sha": file_hash(weights) if weights else None,
        "num_inference_steps": int(sampling.num_inference_steps),
        "guidance_scale": float(sampling.guidance_scale),
        "seed": int(seed),
        "geometry": [restorer.frames, restorer.height, restorer.width],
    }


def _write_png(path: Path, image: np.ndarray) -> None:
    from PIL import Image

    from src.utils.io import atomic_path

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as temp:
        Image.fromarray(image).save(temp, format="PNG")


def read_stage1_config(stage1_run: str | Path):
    """The saved config of the stage-1 run ``drift.stage1`` names, or one user error naming
    ``drift.stage1=``: a folder that does not exist, is not a training run dir, or was not trained
    on pairs."""
    from omegaconf import OmegaConf

    from src.utils.config import register_resolvers

    run = Path(str(stage1_run)).expanduser()
    if not run.is_dir():
        raise MissingFileError(
            f"drift.stage1={stage1_run} does not exist: pass the run dir of a finished stage-1 run "
            "(data=paired or data=allinone, e.g. experiment=vbridge_tiny)"
        )
    saved = run / ".hydra" / "config.yaml"
    if not saved.is_file():
        raise ConfigError(f"drift.stage1={stage1_run} is not a training run dir (no .hydra/config.yaml)")
    register_resolvers()
    cfg = OmegaConf.load(saved)
    if not str(cfg.data.get("_target_", "")).endswith("PairedDataModule"):
        raise ConfigError(
            f"drift.stage1={stage1_run} was trained on {cfg.data._target_}, not on pairs: drift correction "
            "needs a stage-1 run of data=paired or data=allinone"
        )
    return cfg


def build_correction_pairs(
    stage1_run: str | Path, seed: int = 0, batch_size: int = 8, device: str = "auto", overwrite: bool = False
) -> Path:
    """Generate stage 1's last frame for each of its training pairs into the paired layout above;
    returns the ``pairs`` folder. Each pair's sampling seed is ``stable_seed(seed, "drift", key)``."""
    from tqdm import tqdm

    from src.models.restorer import load_restorer, resize_uint8
    from src.training.builders import build_datamodule
    from src.utils.frames import to_float_tensor, to_uint8_images
    from src.utils.io import write_text_atomic

    run = Path(str(stage1_run)).expanduser()
    cfg = read_stage1_config(stage1_run)
    datamodule = build_datamodule(cfg)
    datamodule.setup("fit")
    restorer = load_restorer(run, device=device)
    out = pairs_dir(run)
    manifest_path = out.parent / "manifest.json"
    manifest = _fingerprint(restorer, seed)
    if manifest_path.is_file() and not overwrite:
        previous = json.loads(manifest_path.read_text())
        if {k: previous.get(k) for k in manifest} != manifest:
            raise ConfigError(
                f"{out.parent} holds stage-1 outputs of another checkpoint or other sampling settings "
                f"({previous.get('checkpoint')}, {previous.get('num_inference_steps')} steps, seed "
                f"{previous.get('seed')}); pass drift.overwrite=true to replace them"
            )
    if overwrite and out.is_dir():
        import shutil

        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(manifest_path, json.dumps({**manifest, "complete": False}, indent=2) + "\n")
    prompts = datamodule.train_set.prompts
    todo, done = [], 0
    for pair, lq, hq in datamodule.training_pairs():
        category, name = pair.category, pair.key.split("/", 1)[1].replace("/", "__")
        lq_path, gt_path = out / category / "LQ" / f"{name}.png", out / category / "GT" / f"{name}.png"
        if lq_path.is_file() and gt_path.is_file():
            done += 1
            continue
        todo.append((pair, lq, hq, lq_path, gt_path))
    log.info("drift pairs: %d cached, %d to generate in %s", done, len(todo), out)
    batches = [todo[i : i + batch_size] for i in range(0, len(todo), batch_size)]
    device_ = restorer.device
    for batch in tqdm(batches, desc="stage-1 outputs", unit="batch", disable=not batches):
        firsts = np.stack([resize_uint8(lq, restorer.height, restorer.width) for _, lq, _, _, _ in batch])
        generators = [
            torch.Generator(device=device_).manual_seed(stable_seed(seed, "drift", pair.key))
            for pair, *_ in batch
        ]
        texts = [prompts.get(pair.category) or prompts["*"] for pair, *_ in batch]
        video = restorer.backbone.generate(
            to_float_tensor(firsts).to(device_), texts, generators, use_cache=False
        )
        lasts = to_uint8_images(video[:, -1].cpu())
        for (_pair, _lq, hq, lq_path, gt_path), last in zip(batch, lasts, strict=True):
            _write_png(gt_path, hq)
            _write_png(lq_path, resize_uint8(last, *hq.shape[:2]))
    count = done + len(todo)
    if not count:
        raise InputError(f"the stage-1 run {run} has no readable training pairs")
    write_text_atomic(
        manifest_path, json.dumps({**manifest, "complete": True, "pairs": count}, indent=2) + "\n"
    )
    del restorer, datamodule
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return out
