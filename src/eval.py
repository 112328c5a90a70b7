"""python -m src.eval ckpt=<run dir | lora dir | .ckpt> data=<synthetic|paired|reloblur> [...]

Scores every generated frame of a checkpoint's trajectories against the clean image, the way the
paper reports them (per-frame PSNR / SSIM / LPIPS curves; for ReLoBlur, Table I's frame-wise
LPIPS), with the degraded input and the task's classical baseline in the same tables, and the
temporal consistency (warping error, flicker) of each trajectory.

Outputs in the run dir (``outputs/runs/eval/<time>/``): ``frame_metrics.json`` (the training
schema: task, prompt, frames, psnr, ssim, lpips, n_images, ... plus ``baselines``, ``temporal``,
``masked`` and ``table1_lpips``), ``metrics.csv`` (one row per image x method x frame),
``eval_table.md`` and ``samples/`` strips (degraded | trajectory | clean).
"""

from __future__ import annotations

import csv
import functools
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import hydra
import numpy as np
from omegaconf import DictConfig, OmegaConf

from src.utils.cli import ConfigError, InputError, UserError, hydra_cli, number, user_errors
from src.utils.config import CONFIG_DIR

log = logging.getLogger(__name__)

DATA_KINDS = ("synthetic", "paired", "reloblur", "allinone", "video")


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


def _captions(data_cfg) -> dict:
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

    captions = _captions(data_cfg)
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
    from src.data.paired import held_out_pairs

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
        from src.data.paired import read_pair, scan_pairs

        pairs, skipped = scan_pairs(data_cfg["root"])
        for skip in skipped:
            log.warning("not paired: %s (%s)", skip["path"], skip["reason"])
        captions = _captions(data_cfg)

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
    captions = _captions(data_cfg)

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
    captions = _captions(data_cfg)

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


def score_image(
    image, clean, mask, lpips_model, crop_border: int, y_channel: bool, ssim_y_channel: bool | None = None
) -> dict:
    """PSNR, SSIM (BasicSR conventions; SSIM on Y when ``ssim_y_channel``, as FoundIR scores it),
    LPIPS (None without weights) and, with a mask, the mask-weighted PSNR/SSIM of one (H, W, 3)
    uint8 image against the clean one."""
    from src.metrics.image import masked_psnr_ssim, psnr, ssim

    scores = {
        "psnr": psnr(image, clean, crop_border, y_channel),
        "ssim": ssim(image, clean, crop_border, y_channel if ssim_y_channel is None else ssim_y_channel),
        "lpips": None,
    }
    if lpips_model is not None:
        import torch

        from src.utils.frames import to_float_tensor

        with torch.no_grad():
            scores["lpips"] = float(
                lpips_model(to_float_tensor(image[None]), to_float_tensor(clean[None]))[0]
            )
    if mask is not None:
        scores["masked_psnr"], scores["masked_ssim"] = masked_psnr_ssim(image, clean, mask)
    return scores


def _mean(values) -> float | None:
    values = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return float(np.mean(values)) if values else None


def evaluate(cfg: DictConfig, run_dir: Path) -> dict:
    from tqdm import tqdm

    from src.baselines import restore_baseline
    from src.metrics.image import mean_colour_error
    from src.metrics.temporal import flicker, warping_error
    from src.models.restorer import load_restorer, restore_chained
    from src.restore import check_inference_settings, model_overrides, strip_image

    kind = str(cfg.data.kind)
    if kind not in DATA_KINDS:
        raise ConfigError(f"data must be one of {DATA_KINDS}, got {kind!r}")
    check_inference_settings(cfg)
    number(cfg.samples, "samples", at_least=0)
    if cfg.max_images is not None:  # null: all
        number(cfg.max_images, "max_images", at_least=1)
    data_cfg = {**OmegaConf.to_container(cfg.data, resolve=True), "shared_dir": cfg.paths.shared_dir}
    loaders = None  # paired / ReLoBlur: their layout errors surface before the model loads
    drift_checkpoint = None
    if cfg.get("drift"):
        from src.models.restorer import resolve_checkpoint

        drift_checkpoint = resolve_checkpoint(cfg.drift)  # a bad drift= fails before a model loads
    if kind == "paired":
        loaders = paired_items(data_cfg)
    elif kind == "reloblur":
        loaders = reloblur_items(data_cfg)
    restorer = load_restorer(cfg.ckpt, model_overrides(cfg), device=str(cfg.device))
    drift = (
        load_restorer(drift_checkpoint, model_overrides(cfg), device=str(cfg.device))
        if drift_checkpoint
        else None
    )
    if kind == "reloblur" and restorer.task != "deblur":
        raise ConfigError(
            f"ReLoBlur is a deblurring benchmark but the checkpoint is for {restorer.task}; "
            "use a deblur checkpoint (or task=deblur to force it)"
        )
    if kind == "synthetic" and restorer.task == "allinone":
        raise ConfigError(
            "an all-in-one checkpoint has no progression schedule: evaluate it with data=allinone "
            "degradation=allinone (every category on held-out photos) or data=paired"
        )
    lpips_model = None
    if cfg.metrics.lpips:
        from src.metrics.lpips import load_lpips

        lpips_model = load_lpips(cfg.metrics.alexnet_weights, cfg.metrics.lpips_lin_weights)
    if kind == "synthetic":
        loaders = synthetic_items(
            data_cfg,
            OmegaConf.to_container(cfg.degradation, resolve=True),
            restorer.task,
            restorer.height,
            restorer.width,
            restorer.frames,
            int(cfg.seed),
        )
    elif kind == "allinone":
        loaders = allinone_items(
            data_cfg,
            OmegaConf.to_container(cfg.degradation, resolve=True),
            restorer.height,
            restorer.width,
            int(cfg.seed),
        )
    if cfg.max_images:
        loaders = loaders[: int(cfg.max_images)]
    crop, y_channel = int(cfg.metrics.crop_border), bool(cfg.metrics.y_channel)
    ssim_y = cfg.metrics.get("ssim_y_channel")
    ssim_y = None if ssim_y is None else bool(ssim_y)

    def score(image, item):
        return score_image(image, item.clean, item.mask, lpips_model, crop, y_channel, ssim_y)

    rows, per_image = [], []
    samples_dir = run_dir / "samples"
    started = time.time()
    unscored = []  # [{"image", "reason"}]: what could not be read is listed, the rest is scored
    restore_kw = dict(mode=str(cfg.mode), overlap=int(cfg.tile_overlap), tile_batch=int(cfg.tile_batch))
    for index, load in enumerate(tqdm(loaders, desc=f"eval {kind}", unit="image")):
        try:
            item = load()  # one image pair in memory at a time
        except UserError as err:
            log.warning("not scored: %s", err)
            unscored.append({"image": getattr(load, "name", f"#{index + 1}"), "reason": str(err)})
            continue
        prompt = restorer.prompt(item.caption)
        (frames, info), *corrected = restore_chained(
            [restorer] + ([drift] if drift else []), item.degraded, item.caption, int(cfg.seed), **restore_kw
        )
        scores = [score(f, item) for f in frames]
        record = {"key": item.key, "prompt": prompt, "tiles": info["tiles"], "frames": scores}
        if item.category is not None:
            record["category"] = item.category
        record["first_frame_colour_error"] = mean_colour_error(frames[0], item.degraded)
        for frame, value in enumerate(scores, start=1):
            rows.append({"image": item.key, "method": "generated", "frame": frame, **value})
        if corrected:
            drift_frames = corrected[0][0]
            record["drift"] = [score(f, item) for f in drift_frames]
            for frame, value in enumerate(record["drift"], start=1):
                rows.append({"image": item.key, "method": "drift", "frame": frame, **value})
        if cfg.baselines:
            record["input"] = score(item.degraded, item)
            rows.append({"image": item.key, "method": "input", "frame": 1, **record["input"]})
            if restorer.task == "allinone":
                from src.baselines import restore_category_baseline

                restored, name = restore_category_baseline(item.degraded, item.params)
            else:
                restored, name = restore_baseline(restorer.task, item.degraded, item.params)
            record["baseline"] = {"name": name, **score(restored, item)}
            rows.append({"image": item.key, "method": name, "frame": len(frames), **record["baseline"]})
        if cfg.metrics.temporal:
            record["warping_error"], _ = warping_error(frames)
            record["flicker"], _ = flicker(frames)
        per_image.append(record)
        if index < int(cfg.samples):
            from PIL import Image

            samples_dir.mkdir(parents=True, exist_ok=True)
            shown = [frames] + ([corrected[0][0][1:]] if corrected else [])
            panel = np.concatenate([item.degraded[None], *shown, item.clean[None]])
            labels = ["degraded", *(f"frame {k}" for k in range(1, len(frames) + 1))]
            labels += [f"drift {k}" for k in range(2, len(corrected[0][0]) + 1)] if corrected else []
            strip = strip_image(panel, 160, labels + ["target"])
            Image.fromarray(strip).save(samples_dir / f"{item.key.replace('/', '__')}.png")
    if not per_image:
        reasons = "; ".join(u["reason"] for u in unscored[:3])
        raise InputError(
            f"no images to evaluate{': none could be read (' + reasons + ')' if unscored else ''}"
        )
    metrics = aggregate(per_image, restorer, kind, lpips_model is not None)
    metrics["unscored"] = unscored
    metrics["seconds"] = round(time.time() - started, 1)
    metrics["settings"] = {
        "data": data_cfg,
        "mode": str(cfg.mode),
        "seed": int(cfg.seed),
        "checkpoint": restorer.description,
        "drift_checkpoint": drift.description if drift else None,
        "metric_conventions": {
            "crop_border": crop,
            "y_channel": y_channel,
            "ssim_y_channel": y_channel if ssim_y is None else ssim_y,
            "quantized": True,
        },
    }
    write_outputs(run_dir, metrics, rows)
    return metrics


def aggregate(per_image: list[dict], restorer, kind: str, has_lpips: bool) -> dict:
    """Per-frame means over images (the training schema) plus baselines, temporal and masks."""
    num_frames = len(per_image[0]["frames"])

    def frame_means(metric: str) -> list | None:
        values = [_mean(r["frames"][f].get(metric) for r in per_image) for f in range(num_frames)]
        return None if all(v is None for v in values) else values

    from src.metrics import frame_metrics

    psnr, ssim, lpips = frame_means("psnr"), frame_means("ssim"), frame_means("lpips") if has_lpips else None
    metrics = frame_metrics.make(
        restorer.task, restorer.prompt_mode, psnr, ssim, lpips, len(per_image), data=kind
    )
    colour = [r["first_frame_colour_error"] for r in per_image]
    metrics["first_frame_colour_error"] = {"mean": float(np.mean(colour)), "max": float(np.max(colour))}
    if "input" in per_image[0]:
        metrics["input_psnr"] = _mean(r["input"]["psnr"] for r in per_image)
        metrics["input_ssim"] = _mean(r["input"]["ssim"] for r in per_image)
        metrics["baselines"] = {
            "input": {m: _mean(r["input"].get(m) for r in per_image) for m in ("psnr", "ssim", "lpips")},
        }
        for name in sorted({r["baseline"]["name"] for r in per_image}):
            chosen = [r["baseline"] for r in per_image if r["baseline"]["name"] == name]
            metrics["baselines"][name] = {
                m: _mean(b.get(m) for b in chosen) for m in ("psnr", "ssim", "lpips")
            } | {"n_images": len(chosen)}
    if "warping_error" in per_image[0]:
        metrics["temporal"] = {
            "warping_error": _mean(r["warping_error"] for r in per_image),
            "flicker": _mean(r["flicker"] for r in per_image),
            "definition": "src/metrics/temporal.py (Lai et al. 2018 warping error; DIS flow)",
        }
    if any("masked_psnr" in r["frames"][0] for r in per_image):
        metrics["masked"] = {"psnr": frame_means("masked_psnr"), "ssim": frame_means("masked_ssim")}
    if kind == "reloblur":
        metrics["table1_lpips"] = lpips
    if "drift" in per_image[0]:
        metrics["drift"] = _trajectory_means([r["drift"] for r in per_image], has_lpips)
    if any("category" in r for r in per_image):
        metrics["categories"] = {
            category: category_record([r for r in per_image if r.get("category") == category], has_lpips)
            for category in sorted({r["category"] for r in per_image if "category" in r})
        }
    return metrics


def _trajectory_means(trajectories: list[list[dict]], has_lpips: bool) -> dict:
    """Per-frame means of scored trajectories and their last frame: {psnr, ssim, lpips, last}."""
    count = len(trajectories[0])
    out = {
        metric: [_mean(t[f].get(metric) for t in trajectories) for f in range(count)]
        for metric in ("psnr", "ssim", "lpips")
    }
    if not has_lpips:
        out["lpips"] = None
    out["last"] = {metric: (values[-1] if values else None) for metric, values in out.items()}
    return out


def category_record(records: list[dict], has_lpips: bool) -> dict:
    """One category of frame_metrics.json's ``categories`` (schema in src/metrics/frame_metrics.py)."""
    entry = {"n_images": len(records), **_trajectory_means([r["frames"] for r in records], has_lpips)}
    if "input" in records[0]:
        entry["input"] = {m: _mean(r["input"].get(m) for r in records) for m in ("psnr", "ssim", "lpips")}
        entry["baseline"] = {
            "name": records[0]["baseline"]["name"],
            **{m: _mean(r["baseline"].get(m) for r in records) for m in ("psnr", "ssim", "lpips")},
        }
    if "drift" in records[0]:
        entry["drift"] = _trajectory_means([r["drift"] for r in records], has_lpips)
    return entry


CSV_COLUMNS = ["image", "method", "frame", "psnr", "ssim", "lpips", "masked_psnr", "masked_ssim"]


def _fmt(value, digits: int) -> str:
    return (
        "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"
    )


def render_table(metrics: dict) -> str:
    frames = metrics["frames"]
    lines = [
        f"# Evaluation: {metrics['task']} ({metrics['prompt']} prompts), data={metrics['data']}, "
        f"{metrics['n_images']} image(s)",
        "",
        "| metric | " + " | ".join(f"f{f}" for f in frames) + " |",
        "|---|" + "---|" * len(frames),
    ]
    for name, digits in (("psnr", 2), ("ssim", 4), ("lpips", 4)):
        if metrics.get(name):
            lines.append(f"| {name.upper()} | " + " | ".join(_fmt(v, digits) for v in metrics[name]) + " |")
    for name in ("psnr", "ssim"):
        values = (metrics.get("masked") or {}).get(name)
        if values:
            lines.append(f"| masked {name.upper()} | " + " | ".join(_fmt(v, digits) for v in values) + " |")
    if metrics.get("baselines"):
        lines += ["", "| method | PSNR | SSIM | LPIPS |", "|---|---|---|---|"]
        lines.append(
            f"| generated, frame {frames[-1]} | {_fmt(metrics['psnr'][-1], 2)} | {_fmt(metrics['ssim'][-1], 4)} "
            f"| {_fmt((metrics.get('lpips') or [None])[-1], 4)} |"
        )
        for name, values in metrics["baselines"].items():
            label = "degraded input" if name == "input" else f"{name} (classical)"
            lines.append(
                f"| {label} | {_fmt(values['psnr'], 2)} | {_fmt(values['ssim'], 4)} | {_fmt(values['lpips'], 4)} |"
            )
    if metrics.get("drift"):
        d = metrics["drift"]
        lines += [
            "",
            f"Stage 1 + drift correction ({len(d['psnr'])}-frame correction of frame {frames[-1]}): last frame "
            f"PSNR {_fmt(d['last']['psnr'], 2)}, SSIM {_fmt(d['last']['ssim'], 4)}, LPIPS {_fmt(d['last']['lpips'], 4)} "
            f"(stage 1: {_fmt(metrics['psnr'][-1], 2)}, {_fmt(metrics['ssim'][-1], 4)}).",
        ]
    if metrics.get("categories"):
        from src.report import render_category_section

        lines += render_category_section(
            {**metrics, "label": f"{metrics['task']} on {metrics['data']}"}, None
        )
    if metrics.get("temporal"):
        t = metrics["temporal"]
        lines += [
            "",
            f"Temporal consistency: warping error {_fmt(t['warping_error'], 5)}, flicker {_fmt(t['flicker'], 3)}.",
        ]
    if metrics.get("table1_lpips"):
        lines += [
            "",
            "Table I row (frame-wise LPIPS on ReLoBlur):",
            "",
            "| | " + " | ".join(f"f{f}" for f in frames) + " |",
            "|---|" + "---|" * len(frames),
            "| ours | " + " | ".join(_fmt(v, 3) for v in metrics["table1_lpips"]) + " |",
            "| paper | 0.335 | 0.330 | 0.323 | 0.319 | 0.316 | 0.318 | 0.316 | 0.317 | 0.317 |",
        ]
    if metrics.get("unscored"):
        lines += ["", f"Not scored ({len(metrics['unscored'])} image(s) could not be read):", ""]
        lines += [f"- {u['image']}: {u['reason']}" for u in metrics["unscored"]]
    return "\n".join(lines) + "\n"


def write_outputs(run_dir: Path, metrics: dict, rows: list[dict]) -> None:
    """Each file appears whole (temp file + rename); frame_metrics.json last, as the sign of a
    finished evaluation."""
    import io

    from src.metrics import frame_metrics
    from src.utils.io import write_text_atomic

    run_dir.mkdir(parents=True, exist_ok=True)
    table = io.StringIO()
    writer = csv.DictWriter(table, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in CSV_COLUMNS})
    write_text_atomic(run_dir / "metrics.csv", table.getvalue())
    write_text_atomic(run_dir / "eval_table.md", render_table(metrics))
    frame_metrics.write(run_dir, metrics)


def log_to_wandb(cfg: DictConfig, metrics: dict, run_dir: Path) -> None:
    """Per-frame scalars, metric-vs-frame charts, baselines and temporal scores in one W&B run."""
    import wandb

    from src.utils.config import wandb_offline

    run = wandb.init(
        project="progrestore",
        name=f"eval_{metrics['task']}_{metrics['data']}",
        job_type="eval",
        dir=str(cfg.paths.output_dir),
        mode="offline" if wandb_offline() else "online",
        config={"ckpt": str(cfg.ckpt), "data": metrics["data"], "seed": int(cfg.seed), "mode": str(cfg.mode)},
        reinit="finish_previous",
    )
    try:
        payload = {}
        columns = ["frame"] + [m for m in ("psnr", "ssim", "lpips") if metrics.get(m)]
        table = wandb.Table(
            columns=columns,
            data=[[f] + [metrics[m][i] for m in columns[1:]] for i, f in enumerate(metrics["frames"])],
        )
        for metric in columns[1:]:
            for frame, value in zip(metrics["frames"], metrics[metric], strict=True):
                payload[f"eval/{metric}/f{frame}"] = value
            payload[f"eval/{metric}_vs_frame"] = wandb.plot.line(
                table, "frame", metric, title=f"{metric} vs frame"
            )
        for name, values in (metrics.get("baselines") or {}).items():
            for metric in ("psnr", "ssim", "lpips"):
                if values.get(metric) is not None:
                    payload[f"eval/baseline/{name}/{metric}"] = values[metric]
        for key in ("warping_error", "flicker"):
            if (metrics.get("temporal") or {}).get(key) is not None:
                payload[f"eval/temporal/{key}"] = metrics["temporal"][key]
        for key in ("psnr", "ssim", "lpips"):
            if (metrics.get("drift") or {}).get("last", {}).get(key) is not None:
                payload[f"eval/drift/{key}_last"] = metrics["drift"]["last"][key]
        if metrics.get("categories"):  # all-in-one: one row per category, and its scalars
            from src.report import category_rows

            header, rows = category_rows(metrics)
            payload["eval/per_category"] = wandb.Table(columns=header, data=rows)
            for name, entry in metrics["categories"].items():
                for part in ("last", "input"):
                    for key in ("psnr", "ssim", "lpips"):
                        if (entry.get(part) or {}).get(key) is not None:
                            payload[f"eval/category/{name}/{part}_{key}"] = entry[part][key]
                if (entry.get("drift") or {}).get("last", {}).get("psnr") is not None:
                    payload[f"eval/category/{name}/drift_psnr"] = entry["drift"]["last"]["psnr"]
        run.log(payload)
        run.summary["run_dir"] = str(run_dir)
    finally:
        run.finish()


@hydra.main(config_path=str(CONFIG_DIR), config_name="eval", version_base="1.3")
@user_errors("python -m src.eval ckpt=<run dir | lora dir | .ckpt> data=<synthetic|paired|reloblur>")
def main(cfg: DictConfig) -> dict:
    from hydra.core.hydra_config import HydraConfig

    run_dir = Path(HydraConfig.get().runtime.output_dir)
    if str(cfg.data.get("kind")) == "video":  # videos with ground truth: src/video/evaluate.py
        from src.video.evaluate import evaluate_video, log_video_to_wandb, render_video_table

        metrics = evaluate_video(cfg, run_dir)
        if cfg.wandb:
            log_video_to_wandb(cfg, metrics, run_dir)
        print(render_video_table(metrics))
        log.info("eval outputs in %s", run_dir)
        return metrics
    metrics = evaluate(cfg, run_dir)
    if cfg.wandb:
        log_to_wandb(cfg, metrics, run_dir)
    print(render_table(metrics))
    log.info("eval outputs in %s", run_dir)
    return metrics


def _alias_data_group(argv: list[str]) -> list[str]:
    """``data=X`` selects the evaluation source (the group is eval_data, packaged as ``data``)."""
    return [f"eval_data@data={a[5:]}" if a.startswith("data=") else a for a in argv]


if __name__ == "__main__":
    hydra_cli(main, "eval", _alias_data_group)
