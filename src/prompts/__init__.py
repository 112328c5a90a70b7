"""Text prompts of progression clips: one fixed prompt per task (``uniform``) or a scene caption
composed with the task's restoration theme (``adaptive``, paper section II.B).

Captions come from a captions file or, for the bundled photographs, from
:data:`src.data.images.BUNDLED_PHOTOS`; model-backed captioners plug in here later.
"""

from __future__ import annotations

from pathlib import Path

from src.utils.cli import ConfigError, InputError, MissingFileError

PROMPT_MODES = ("uniform", "adaptive")
GENERIC_SUBJECT = "the scene"


def prompt_file_name(mode: str) -> str:
    """Per-mode prompt file, line-aligned with videos.txt; ``prompt.txt`` copies the selected one."""
    if mode not in PROMPT_MODES:
        raise ConfigError(f"unknown prompt mode {mode!r}; choose one of {', '.join(PROMPT_MODES)}")
    return f"prompts_{mode}.txt"


def compose_adaptive_prompt(template: str, caption: str | None) -> str:
    """Fill the task's ``{caption}`` template and capitalise the sentence."""
    if "{caption}" not in template:
        raise ConfigError(f"adaptive template must contain '{{caption}}', got {template!r}")
    text = template.format(caption=(caption or GENERIC_SUBJECT).strip().rstrip("."))
    return " ".join(text.split())[:1].upper() + " ".join(text.split())[1:]


def prompts_for(task_cfg: dict, caption: str | None) -> dict[str, str]:
    """Both prompt variants of one clip: {"uniform": ..., "adaptive": ...}."""
    return {
        "uniform": str(task_cfg["uniform_prompt"]).strip(),
        "adaptive": compose_adaptive_prompt(str(task_cfg["adaptive_template"]), caption),
    }


def load_captions(path: str | Path | None) -> dict[str, str]:
    """A JSON object mapping a source key (path relative to source_dir, with or without the
    extension) or a file name to a caption."""
    if path is None:
        return {}
    path = Path(path).expanduser()
    if not path.is_file():
        raise MissingFileError(f"captions_file {path} does not exist")
    from src.utils.io import read_json

    data = read_json(path, "captions_file")
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise InputError(f"captions_file {path} must be a JSON object of image -> caption strings")
    captions = {}
    for key, caption in data.items():
        captions[key] = caption
        captions.setdefault(str(Path(key).with_suffix("")), caption)
    return captions
