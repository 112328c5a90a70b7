"""Every option of ``python -m src.eval`` (conf/eval.yaml), typed and checked once, before a model
loads, in the order the CLI always reported them. The settings of the data source itself
(``data.*``, conf/eval_data/<kind>.yaml) stay a plain dict: each reader checks its own (a folder
layout before the model loads, a synthetic set's sizes once the model's are known), and the dict
is recorded as given in the outputs."""

from __future__ import annotations

from dataclasses import dataclass, field

from src.restoration.options import InferenceOptions
from src.utils.cli import ConfigError, number

DATA_KINDS = ("synthetic", "paired", "reloblur", "allinone", "video")
DEGRADED_KINDS = ("synthetic", "allinone", "video")  # the kinds that degrade clean images (conf/degradation)
VIDEO_BASE_KEYS = (
    "seed",
    "mode",
    "tile_overlap",
    "tile_batch",
)  # top-level settings every video setting shares


@dataclass(frozen=True)
class MetricOptions:
    """``metrics.*``: BasicSR conventions (src/metrics/image.py), LPIPS and temporal consistency."""

    crop_border: int = 0
    y_channel: bool = False
    ssim_y_channel: bool | None = None  # None: y_channel
    lpips: bool = True
    alexnet_weights: str | None = None
    lpips_lin_weights: str | None = None
    temporal: bool = True

    @classmethod
    def from_config(cls, metrics) -> MetricOptions:
        ssim_y = metrics.get("ssim_y_channel")
        return cls(
            crop_border=int(metrics.crop_border),
            y_channel=bool(metrics.y_channel),
            ssim_y_channel=None if ssim_y is None else bool(ssim_y),
            lpips=bool(metrics.lpips),
            alexnet_weights=metrics.alexnet_weights,
            lpips_lin_weights=metrics.lpips_lin_weights,
            temporal=bool(metrics.temporal),
        )

    def lpips_model(self):
        """The LPIPS network these options score with (None when ``metrics.lpips=false``)."""
        if not self.lpips:
            return None
        from src.metrics.lpips import load_lpips

        return load_lpips(self.alexnet_weights, self.lpips_lin_weights)


@dataclass(frozen=True)
class EvalOptions:
    """Every option of ``python -m src.eval``; see conf/eval.yaml."""

    ckpt: str
    kind: str  # one of DATA_KINDS
    inference: InferenceOptions
    data: dict  # the data source's settings (resolved) plus ``shared_dir``: read by the readers, recorded as given
    degradation: dict | None = None  # conf/degradation, for the kinds that degrade clean images
    drift: str | None = None
    samples: int = 4
    max_images: int | None = None  # None: every image
    baselines: bool = True
    metrics: MetricOptions = field(default_factory=MetricOptions)
    wandb: bool = True
    output_dir: str = "outputs"  # paths.output_dir: where W&B keeps its files
    video_settings: dict | None = None  # data=video: {name: src.video.restore.VideoOptions}, each checked

    @classmethod
    def from_config(cls, cfg) -> EvalOptions:
        """Checked in the order the CLI always reported them. Images: the data kind, the shared
        inference settings, samples, max_images. Videos: the inference settings, drift (not
        supported), every consistency setting of ``data.settings``, samples, max_images (0: all)."""
        from omegaconf import OmegaConf

        video = str(cfg.data.get("kind")) == "video"  # videos with ground truth: src/video/evaluate.py
        kind = "video" if video else str(cfg.data.kind)
        if kind not in DATA_KINDS:
            raise ConfigError(f"data must be one of {DATA_KINDS}, got {kind!r}")
        inference = InferenceOptions.from_config(cfg)
        video_settings = None
        if video:
            if cfg.get("drift"):
                raise ConfigError("drift= is not supported with data=video")
            video_settings = video_settings_from_config(cfg)
        else:
            samples, max_images = _samples_and_max_images(cfg, video)
        data = {**OmegaConf.to_container(cfg.data, resolve=True), "shared_dir": cfg.paths.shared_dir}
        if video:
            samples, max_images = _samples_and_max_images(cfg, video)
        ckpt = str(cfg.ckpt)
        return cls(
            ckpt=ckpt,
            kind=kind,
            inference=inference,
            data=data,
            degradation=OmegaConf.to_container(cfg.degradation, resolve=True)
            if kind in DEGRADED_KINDS
            else None,
            drift=str(cfg.drift) if cfg.get("drift") else None,
            samples=samples,
            max_images=max_images,
            baselines=bool(cfg.baselines),
            metrics=MetricOptions.from_config(cfg.metrics),
            wandb=bool(cfg.wandb),
            output_dir=str(cfg.paths.output_dir),
            video_settings=video_settings,
        )


def _samples_and_max_images(cfg, video: bool) -> tuple[int, int | None]:
    samples = int(number(cfg.samples, "samples", at_least=0))
    if video:  # a video evaluation takes max_images=0 (as null) for every video
        return samples, number(cfg.max_images, "max_images", at_least=1) if cfg.max_images else None
    return samples, None if cfg.max_images is None else number(cfg.max_images, "max_images", at_least=1)


def video_settings_from_config(cfg) -> dict:
    """{name: VideoOptions} of ``data.settings``, each checked (before a model loads): the
    top-level seed, mode and tiles, ``data.batch`` and ``data.flow``, then the setting's own keys."""
    from omegaconf import OmegaConf

    raw = OmegaConf.to_container(cfg.data.settings, resolve=True) if cfg.data.get("settings") else {}
    base = {k: cfg[k] for k in VIDEO_BASE_KEYS if k in cfg}
    base["batch"] = cfg.data.get("batch", 8)
    base["flow"] = cfg.data.get("flow", "dis")
    return video_settings(raw, base)


def video_settings(raw: dict, base: dict) -> dict:
    """{name: VideoOptions} of the settings ``raw`` ({name: {field: value}}) over ``base``, each
    checked; ``independent`` (the reference) is required."""
    from src.video.restore import VideoOptions

    if not raw:
        raise ConfigError("data.settings is empty: name at least one consistency setting")
    if "independent" not in raw:
        raise ConfigError("data.settings needs an 'independent' setting (noise: independent): the reference")
    options = {}
    for name, values in raw.items():
        unknown = sorted(set(values or {}) - set(VideoOptions.__dataclass_fields__))
        if unknown:
            raise ConfigError(f"data.settings.{name}: unknown key(s) {', '.join(unknown)}")
        options[name] = VideoOptions(**{**base, **(values or {})}).check()
    return options
