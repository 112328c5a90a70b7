"""The error of a checkpoint that cannot be used, and the reader of a checkpoint's JSON files that
raises it: the lowest layer of the checkpoint code, imported by :mod:`src.models.lora`,
:mod:`src.models.checkpoints` and :mod:`src.models.restorer` (none of which it imports)."""

from __future__ import annotations

from pathlib import Path

from src.utils.cli import InputError


class CheckpointError(InputError):
    """A checkpoint that cannot be used; the message says why and what to pass instead."""


def read_json_file(path: Path, what: str) -> dict:
    """A JSON file of a checkpoint, or a :class:`CheckpointError` naming it."""
    from src.utils.io import read_json

    return read_json(path, what, CheckpointError)
