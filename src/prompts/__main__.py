"""python -m src.prompts dataset=<dir> captioner=<openai|llava|captions_file> refiner=<openai|template>

Writes scene-adaptive prompts (prompts_adaptive.txt, prompt.txt when adaptive is the dataset's
selected mode, a ``prompting`` record per clip in metadata.jsonl) for a dataset built by
``python -m src.build_dataset``; see src/prompts/tool.py and conf/prompts.yaml. The task comes from
the dataset (conf/task/<task>.yaml). Exit status 2 with one message when the run cannot start or
some clips got no prompt (rerun to fill the gaps: answers are cached).
"""

from __future__ import annotations

import logging
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from src.utils.cli import hydra_cli, number, user_errors
from src.utils.config import CONFIG_DIR

log = logging.getLogger("src.prompts")


def task_config(dataset_dir: Path) -> dict:
    """conf/task/<task>.yaml of the dataset's task (from build_manifest.json)."""
    from src.prompts.tool import PromptsError, read_dataset

    _, records, manifest = read_dataset(dataset_dir)
    task = (manifest.get("fingerprint") or {}).get("task") or records[0].get("task")
    path = CONFIG_DIR / "task" / f"{task}.yaml"
    if not path.is_file():
        raise PromptsError(f"the dataset's task {task!r} has no config {path}")
    return OmegaConf.to_container(OmegaConf.load(path), resolve=True)


def run(cfg: DictConfig):
    from src.prompts.backends import BackendError, make_captioner, make_refiner
    from src.prompts.tool import generate_prompts

    # Every number checked before a backend starts (even those this backend does not use).
    for key in ("concurrency", "max_tokens", "image_max_side"):
        number(cfg[key], key, at_least=1)
    number(cfg.timeout_s, "timeout_s", float, above=0)
    number(cfg.retries, "retries", at_least=0)
    for key in ("backoff_s", "max_retry_after_s"):
        number(cfg[key], key, float, at_least=0)
    # Only what the backends need; role groups resolved (llava.path interpolates paths.shared_dir).
    settings = {k: cfg[k] for k in ("timeout_s", "retries", "backoff_s", "max_retry_after_s", "instruction")}
    roles = {role: OmegaConf.to_container(cfg[role], resolve=True) for role in ("captioner", "refiner")}
    for role, role_cfg in roles.items():
        if "api_key" in role_cfg:
            # Refuse rather than use it: a key in the config would land in .hydra/config.yaml.
            raise BackendError(
                f"{role}.api_key is not a setting: put the key in an environment variable "
                f"and give its NAME as {role}.api_key_env",
                fatal=True,
            )
    dataset = Path(str(cfg.dataset)).expanduser().resolve()
    task_cfg = task_config(dataset)
    # Backends check their settings (LLaVA folder, key variable) before any image is read.
    captioner = make_captioner(roles["captioner"], settings)
    refiner = make_refiner(roles["refiner"], settings, task_cfg)
    log.info(
        "prompts for %s (%s): captioner %s %s, refiner %s %s",
        dataset,
        task_cfg["name"],
        captioner.backend,
        captioner.model,
        refiner.backend,
        refiner.model,
    )
    report = generate_prompts(
        dataset,
        task_cfg,
        captioner,
        refiner,
        concurrency=int(cfg.concurrency),
        max_tokens=int(cfg.max_tokens),
        tokenizer_path=cfg.tokenizer_path,
        image_max_side=int(cfg.image_max_side),
        cache_dir=cfg.cache_dir,
        progress=bool(cfg.progress),
    )
    log.info(report.summary())
    return report


@hydra.main(config_path=str(CONFIG_DIR), config_name="prompts", version_base="1.3")
@user_errors("python -m src.prompts dataset=<built dataset dir> captioner=<captions_file|openai|llava>")
def main(cfg: DictConfig):
    return run(cfg)


if __name__ == "__main__":
    hydra_cli(main, "prompts")
