"""Captioners (clean image -> scene caption) and refiners (caption -> restoration prompt).

Each backend is a small class with one method (``caption(image)`` or ``refine(caption)``) and
four attributes the tool reads: ``backend`` and ``model`` (recorded in metadata and cache keys),
``fingerprint`` (the instruction / template / system prompt text: part of every cache key, so
editing it invalidates old answers) and ``cacheable`` (False for the cheap local ones).

Captioners: ``captions_file`` (a JSON of image -> caption, plus the bundled photographs'
captions), ``llava`` (LLaVA-1.5 from a local folder) and ``openai`` (any OpenAI-compatible
chat-completions server with image input: vLLM, Ollama, OpenAI). Refiners: ``template`` (the
task's ``adaptive_template``, deterministic) and ``openai`` (a chat model guided by
:data:`REFINER_SYSTEM_PROMPT`).

Secrets: an API key is read only from the environment variable *named* by ``api_key_env``; it is
sent in the ``Authorization`` header and nowhere else, and every error message is redacted.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
from dataclasses import dataclass
from pathlib import Path

from src.prompts import compose_adaptive_prompt, load_captions
from src.prompts.chat import (  # noqa: F401  (BackendError, one_line: re-exported)
    BackendError,
    ChatClient,
    client_from_config,
    one_line,
)

log = logging.getLogger(__name__)

DEFAULT_INSTRUCTION = (
    "Describe the scene of this photograph as one short noun phrase (at most 25 words), for example "
    "'a red-brick lighthouse on a rocky shore at dusk'. Describe only what is visible; do not mention "
    "image quality, blur, noise, darkness or resolution. Reply with the phrase only."
)

# The refiner's system prompt; {title}, {theme} and {example} come from the task config
# (conf/task/<task>.yaml: title, uniform_prompt, adaptive_template with {caption} -> <scene>).
REFINER_SYSTEM_PROMPT = (
    "You write text prompts for an image-to-video model that restores a photograph progressively: "
    "the task is '{title}' ({theme}). The user gives a caption of the clean photograph. Reply with ONE "
    "sentence that names the scene and describes this progression, in the style of this template, "
    'where <scene> stands for the caption: "{example}". Keep the restoration theme, keep the '
    "camera static and the scene still (end with 'Nothing moves.'), add nothing that is not in the "
    "caption, stay under 60 words, and reply with the prompt only, without quotes."
)

LLAVA_FETCH_HINT = "huggingface-cli download llava-hf/llava-1.5-7b-hf --local-dir {path}"


@dataclass(frozen=True)
class ClipImage:
    """The clean image of one clip. ``keys``: names a captions file may use for it (source key,
    file name, ...); ``origin``: where the pixels came from (for messages); ``png``: the image as
    sent to a model (None for backends that need no pixels); ``sha256``: of ``png``."""

    keys: tuple[str, ...]
    origin: str
    png: bytes | None = None
    sha256: str | None = None


class CaptionsFileCaptioner:
    """Captions from a JSON file (see :func:`src.prompts.load_captions`), then the bundled
    photographs' captions; no pixels, no cache."""

    backend, cacheable, needs_image = "captions_file", False, False

    def __init__(self, path: str | None):
        from src.data.images import BUNDLED_PHOTOS

        self.path = path
        self.model = str(Path(path).name) if path else "bundled"
        self.fingerprint = ""
        self.captions = {**BUNDLED_PHOTOS, **load_captions(path)}

    def caption(self, image: ClipImage) -> str:
        for key in image.keys:
            if key in self.captions:
                return one_line(self.captions[key])
        where = self.path or "the bundled captions (give captioner.file=...)"
        raise BackendError(f"no caption for {image.keys[0]} in {where}")


class OpenAICaptioner:
    """Caption through an OpenAI-compatible server with image input (a data: URL, PNG)."""

    backend, cacheable, needs_image = "openai", True, True

    def __init__(self, client: ChatClient, instruction: str, max_tokens: int = 77):
        self.client, self.model = client, client.model
        self.fingerprint, self.max_tokens = str(instruction), int(max_tokens)

    def caption(self, image: ClipImage) -> str:
        url = "data:image/png;base64," + base64.b64encode(image.png).decode("ascii")
        content = [
            {"type": "text", "text": self.fingerprint},
            {"type": "image_url", "image_url": {"url": url}},
        ]
        return self.client.complete([{"role": "user", "content": content}], self.max_tokens)


LLAVA_REQUIRED = ("config.json", "preprocessor_config.json", "tokenizer_config.json")


def check_llava_dir(path: str | None) -> Path:
    """The LLaVA folder if it holds a complete ``llava-hf/llava-1.5-7b-hf`` download, else one
    fatal error naming the path, what is missing and how to fetch it."""
    hint = LLAVA_FETCH_HINT.format(path=path or "<dir>")
    if not path:
        raise BackendError(f"captioner.path is not set; fetch the model with `{hint}`", fatal=True)
    root = Path(str(path)).expanduser()
    if not root.is_dir():
        raise BackendError(f"LLaVA folder {root} does not exist; fetch it with `{hint}`", fatal=True)
    missing = [name for name in LLAVA_REQUIRED if not (root / name).is_file()]
    index = root / "model.safetensors.index.json"
    if index.is_file():
        try:
            shards = set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values())
        except (OSError, json.JSONDecodeError, KeyError):
            shards = {index.name + " (unreadable)"}
        missing += sorted(s for s in shards if not (root / s).is_file())
    elif not any(root.glob("*.safetensors")) and not any(root.glob("*.bin")):
        missing.append("model weights (*.safetensors)")
    if missing:
        raise BackendError(
            f"LLaVA folder {root} is incomplete (missing: {', '.join(missing)}); fetch it with `{hint}`",
            fatal=True,
        )
    return root


class LlavaCaptioner:
    """LLaVA-1.5 (transformers ``LlavaForConditionalGeneration`` + ``AutoProcessor``) from a local
    folder in the ``llava-hf/llava-1.5-7b-hf`` layout; greedy decoding. The folder is checked when
    the captioner is made, before any other work; the model loads on first use and one caption is
    generated at a time (GPU-bound: concurrency does not help).

    Not run in this repository's tests (7B weights, ~14 GB, a GPU): only the missing-folder error
    is tested.
    """

    backend, cacheable, needs_image = "llava", True, True

    def __init__(self, path: str | None, instruction: str, model: str, max_tokens: int = 77, device="auto"):
        self.root = check_llava_dir(path)
        self.model, self.fingerprint = str(model), str(instruction)
        self.max_tokens, self.device = int(max_tokens), device
        self._lock = threading.Lock()
        self._loaded = None

    def _load(self):
        import torch
        from transformers import AutoProcessor, LlavaForConditionalGeneration

        device = ("cuda" if torch.cuda.is_available() else "cpu") if self.device == "auto" else self.device
        dtype = torch.float16 if str(device).startswith("cuda") else torch.float32
        model = LlavaForConditionalGeneration.from_pretrained(self.root, torch_dtype=dtype).to(device).eval()
        return model, AutoProcessor.from_pretrained(self.root), device

    def caption(self, image: ClipImage) -> str:
        import io

        import torch
        from PIL import Image

        with self._lock:
            if self._loaded is None:
                self._loaded = self._load()
            model, processor, device = self._loaded
            pil = Image.open(io.BytesIO(image.png)).convert("RGB")
            prompt = f"USER: <image>\n{self.fingerprint} ASSISTANT:"
            inputs = processor(images=pil, text=prompt, return_tensors="pt").to(device, model.dtype)
            with torch.inference_mode():
                out = model.generate(**inputs, max_new_tokens=self.max_tokens, do_sample=False)
            new_tokens = out[0, inputs["input_ids"].shape[1] :]
            text = one_line(processor.decode(new_tokens, skip_special_tokens=True))
        if not text:
            raise BackendError(f"LLaVA gave an empty caption for {image.origin}")
        return text


# ----------------------------------------------------------------------------------------------
# Refiners
# ----------------------------------------------------------------------------------------------
class TemplateRefiner:
    """The task's ``adaptive_template`` filled with the caption (deterministic, no cache)."""

    backend, model, cacheable = "template", "", False

    def __init__(self, task_cfg: dict):
        self.fingerprint = str(task_cfg["adaptive_template"])

    def refine(self, caption: str) -> str:
        return compose_adaptive_prompt(self.fingerprint, caption)


def refiner_system_prompt(task_cfg: dict) -> str:
    return REFINER_SYSTEM_PROMPT.format(
        title=task_cfg.get("title", task_cfg["name"]),
        theme=str(task_cfg["uniform_prompt"]).strip(),
        example=str(task_cfg["adaptive_template"]).replace("{caption}", "<scene>"),
    )


class OpenAIRefiner:
    """Caption -> one-sentence restoration prompt through an OpenAI-compatible chat server."""

    backend, cacheable = "openai", True

    def __init__(self, client: ChatClient, task_cfg: dict, max_tokens: int = 150):
        self.client, self.model, self.max_tokens = client, client.model, int(max_tokens)
        self.fingerprint = refiner_system_prompt(task_cfg)

    def refine(self, caption: str) -> str:
        messages = [{"role": "system", "content": self.fingerprint}, {"role": "user", "content": caption}]
        return self.client.complete(messages, self.max_tokens)


# ----------------------------------------------------------------------------------------------
# Factories (config group -> backend)
# ----------------------------------------------------------------------------------------------
def make_captioner(cfg: dict, settings: dict):
    """``cfg``: the ``captioner`` config group; ``settings``: the top-level prompts config."""
    name = cfg.get("name")
    instruction = str(settings.get("instruction") or DEFAULT_INSTRUCTION)
    if name == "captions_file":
        return CaptionsFileCaptioner(cfg.get("file"))
    if name == "llava":
        return LlavaCaptioner(
            cfg.get("path"),
            instruction,
            str(cfg.get("model")),
            int(cfg.get("max_tokens", 77)),
            cfg.get("device", "auto"),
        )
    if name == "openai":
        client = client_from_config(cfg, settings, "captioner")
        return OpenAICaptioner(client, instruction, int(cfg.get("max_tokens", 77)))
    raise BackendError(f"unknown captioner {name!r}; choose captions_file, llava or openai", fatal=True)


def make_refiner(cfg: dict, settings: dict, task_cfg: dict):
    name = cfg.get("name")
    if name == "template":
        return TemplateRefiner(task_cfg)
    if name == "openai":
        return OpenAIRefiner(
            client_from_config(cfg, settings, "refiner"), task_cfg, int(cfg.get("max_tokens", 150))
        )
    raise BackendError(f"unknown refiner {name!r}; choose template or openai", fatal=True)
