"""On-disk cache of what the frozen encoders make of the training data: VAE posteriors (mean and
log-variance, so latents are still resampled every step) of clips and T5 embeddings of prompts.
With every entry precomputed, the 4.7 B-parameter T5 need not sit on the GPU while training.

Entries live under ``<dir>/<namespace>/`` where the namespace hashes everything that changes the
encoders' output (model path and revision, VAE and text-encoder configs, resolution, frame count,
prompt length). Each file (safetensors) also stores that fingerprint and the content hash of its
input; an entry whose stored fingerprint differs from the expected one is *stale*: it is counted,
ignored and overwritten, never used.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_hash(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class LatentCache:
    def __init__(self, root: str | Path, fingerprint: dict):
        self.fingerprint = json.loads(json.dumps(fingerprint, sort_keys=True, default=str))
        namespace = content_hash(json.dumps(self.fingerprint, sort_keys=True).encode())[:16]
        self.directory = Path(root) / namespace
        self.stats = {"hits": 0, "misses": 0, "stale": 0, "written": 0}

    def _path(self, kind: str, key: str) -> Path:
        return self.directory / kind / key[:2] / f"{key}.safetensors"

    def _load(self, kind: str, key: str) -> dict[str, torch.Tensor] | None:
        from safetensors import safe_open

        path = self._path(kind, key)
        if not path.is_file():
            self.stats["misses"] += 1
            return None
        try:
            with safe_open(str(path), framework="pt") as handle:
                meta = handle.metadata() or {}
                stored = json.loads(meta.get("fingerprint", "null"))
                if stored != self.fingerprint or meta.get("key") != key:
                    self.stats["stale"] += 1
                    return None
                tensors = {name: handle.get_tensor(name) for name in handle.keys()}
        except Exception:  # noqa: BLE001 - a torn or foreign file is just a miss
            self.stats["stale"] += 1
            return None
        self.stats["hits"] += 1
        return tensors

    def _save(self, kind: str, key: str, tensors: dict[str, torch.Tensor]) -> None:
        from safetensors.torch import save_file

        path = self._path(kind, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(f".tmp{os.getpid()}")
        save_file(
            {k: v.detach().contiguous().cpu() for k, v in tensors.items()},
            str(temporary),
            metadata={"fingerprint": json.dumps(self.fingerprint, sort_keys=True), "key": key},
        )
        os.replace(temporary, path)  # atomic: readers never see half a file
        self.stats["written"] += 1

    # -- clips: posterior of the VAE, (C', F', h, w) each ----------------------------------
    def load_posterior(self, clip_id: str) -> tuple[torch.Tensor, torch.Tensor] | None:
        entry = self._load("posterior", clip_id)
        return None if entry is None else (entry["mean"], entry["logvar"])

    def save_posterior(self, clip_id: str, mean: torch.Tensor, logvar: torch.Tensor) -> None:
        self._save("posterior", clip_id, {"mean": mean, "logvar": logvar})

    # -- prompts: T5 embeddings (L, D) -----------------------------------------------------
    @staticmethod
    def prompt_key(prompt: str) -> str:
        return content_hash(prompt.encode("utf-8"))

    def load_prompt(self, prompt: str) -> torch.Tensor | None:
        entry = self._load("prompt", self.prompt_key(prompt))
        return None if entry is None else entry["embeds"]

    def save_prompt(self, prompt: str, embeds: torch.Tensor) -> None:
        self._save("prompt", self.prompt_key(prompt), {"embeds": embeds})


def cache_fingerprint(model_cfg: dict, vae_config, text_config, height: int, width: int, frames: int) -> dict:
    """Everything that changes the cached encoder outputs."""
    return {
        "model": model_cfg.get("name"),
        "path": str(model_cfg.get("path") or model_cfg.get("weights")),
        "revision": model_cfg.get("revision"),
        "vae": dict(vae_config),
        "text_encoder": text_config.to_dict() if hasattr(text_config, "to_dict") else dict(text_config),
        "max_sequence_length": int(model_cfg.get("max_sequence_length", 226)),
        "height": int(height),
        "width": int(width),
        "frames": int(frames),
        "dtype": str(model_cfg.get("dtype", "float32")),
    }
