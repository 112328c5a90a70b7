"""On-disk answer cache of the prompt tool, and atomic file writes.

Layout: ``<dataset>/.prompt_cache/<kind>/<key>.json``, one small JSON per answer, where ``key`` is
the sha256 of the canonical JSON of everything that determines the answer (see :func:`cache_key`)
and the file holds those parts (for inspection) plus ``"text"``. Each entry is written atomically
(temp file + rename) the moment its answer arrives, so a killed run loses nothing already answered
and a rerun requests only the missing entries. API keys are never part of a key or an entry.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import defaultdict
from pathlib import Path

from src.utils.io import write_text_atomic

CACHE_DIR_NAME = ".prompt_cache"


def cache_key(**parts) -> str:
    """sha256 hex digest of the parts as canonical JSON (sorted keys, no whitespace)."""
    blob = json.dumps(parts, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class PromptCache:
    """Thread-safe get/put of cached answers, plus one lock per key so that two workers needing
    the same answer send one request: the second waits, then finds the first one's entry."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self._locks: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)
        self._guard = threading.Lock()

    def _path(self, kind: str, key: str) -> Path:
        return self.root / kind / f"{key}.json"

    def lock(self, kind: str, key: str) -> threading.Lock:
        with self._guard:
            return self._locks[f"{kind}/{key}"]

    def get(self, kind: str, key: str) -> dict | None:
        """The entry, or None when absent or unreadable (a torn file cannot exist, but a foreign
        or hand-edited one is treated as missing and rewritten)."""
        try:
            entry = json.loads(self._path(kind, key).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return None
        return entry if isinstance(entry, dict) and isinstance(entry.get("text"), str) else None

    def put(self, kind: str, key: str, entry: dict) -> None:
        path = self._path(kind, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, json.dumps(entry, indent=1, ensure_ascii=False) + "\n")
