"""Atomic file writes shared by the dataset builder and the prompt tool."""

from __future__ import annotations

import os
import threading
from pathlib import Path


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` to a temp file beside ``path``, then rename it over ``path`` (readers see the
    old or the new file, never a torn one). The temp name carries the pid and thread id, so
    concurrent writers never share one."""
    path = Path(path)
    temp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{threading.get_ident()}")
    try:
        temp.write_text(text, encoding="utf-8")
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
