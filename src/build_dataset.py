"""python -m src.build_dataset task=<sr|deblur|lowlight> [key=value ...]

Builds (or resumes) a progression-clip dataset; see conf/build_dataset.yaml for every option and
src/data/builder.py for the layout. ``-m task=sr,deblur,lowlight`` builds all three.
"""

from __future__ import annotations

import logging
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from src.utils.cli import hydra_cli, user_errors
from src.utils.config import CONFIG_DIR

log = logging.getLogger("src.build_dataset")


def spec_from_config(cfg: DictConfig):
    """The BuildSpec of a composed build_dataset config."""
    from src.data.builder import BuildSpec
    from src.data.clip_io import EncoderSettings
    from src.data.degradations import DegradationPreset
    from src.utils.cli import number

    return BuildSpec(
        task=str(cfg.task.name),
        out_dir=Path(str(cfg.out_dir)).expanduser().resolve(),
        preset=DegradationPreset.from_dict(OmegaConf.to_container(cfg.degradation, resolve=True)),
        source_dir=Path(str(cfg.source_dir)).expanduser() if cfg.source_dir else None,
        clips_per_image=number(cfg.clips_per_image, "clips_per_image"),
        seed=number(cfg.seed, "seed"),
        width=number(cfg.width, "width"),
        height=number(cfg.height, "height"),
        frames=number(cfg.frames, "frames"),
        fps=number(cfg.fps, "fps", float),
        fmt=str(cfg.format),
        encoder=EncoderSettings.from_dict(OmegaConf.to_container(cfg.encoder, resolve=True)),
        small_images=str(cfg.small_images),
    )


def run(cfg: DictConfig):
    from src.data.builder import build_dataset

    spec = spec_from_config(cfg)
    log.info("building %s (%s, %s) -> %s", spec.task, spec.preset.name, spec.fmt, spec.out_dir)
    report = build_dataset(
        spec,
        task_cfg=OmegaConf.to_container(cfg.task, resolve=True),
        prompt_mode=str(cfg.prompt.mode),
        captions_file=cfg.captions_file,
        num_workers=cfg.num_workers,
        overwrite=bool(cfg.overwrite),
        progress=bool(cfg.progress),
    )
    log.info(report.summary())
    return report


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="build_dataset")
@user_errors("python -m src.build_dataset task=<sr|deblur|lowlight> [source_dir=<photos>] [out_dir=...]")
def main(cfg: DictConfig):
    return run(cfg)


def _help_argv(argv: list[str]) -> list[str]:
    """``--help`` composes the config, which fails while ``task`` (no default) is unset: compose
    the help with task=sr then (its header marks task as required)."""
    wants_help = any(a in ("--help", "-h") for a in argv)
    if wants_help and not any(a.lstrip("+~").startswith("task=") for a in argv):
        return [*argv, "task=sr"]
    return argv


if __name__ == "__main__":
    hydra_cli(main, "build_dataset", _help_argv)
