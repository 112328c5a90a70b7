"""Stable seeds: every random draw of the project derives from a tuple of named parts."""

from __future__ import annotations

import hashlib


def stable_seed(*parts) -> int:
    """63-bit seed from sha256("/".join(parts)); independent of process, order and worker count."""
    return int.from_bytes(hashlib.sha256("/".join(map(str, parts)).encode()).digest()[:8], "little") >> 1
