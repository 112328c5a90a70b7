"""Atomic file writes shared by the dataset builder and the prompt tool."""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
from pathlib import Path

from src.utils.errors import InputError


@contextlib.contextmanager
def atomic_path(path: str | Path):
    """Yield a temp path beside ``path`` to write a file or a folder at; on success it is renamed
    over ``path`` (a folder there is replaced), on failure removed: readers see the old or the new
    result, never a half-written one. The temp name keeps the suffix (writers that infer the
    format from it still work), carries pid and thread id (concurrent writers never share one)
    and matches ``.*.tmp-*`` (what the dataset builder sweeps away after a killed build)."""
    path = Path(path)
    temp = path.with_name(f".{path.stem}.tmp-{os.getpid()}-{threading.get_ident()}{path.suffix}")
    _remove(temp)
    try:
        yield temp
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        os.replace(temp, path)
    finally:
        _remove(temp)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` through :func:`atomic_path`."""
    with atomic_path(path) as temp:
        temp.write_text(text, encoding="utf-8")


def read_text(path: str | Path, what: str, error: type[Exception] | None = None) -> str:
    """A UTF-8 text file, or one user error naming the file (not a bare ``UnicodeDecodeError``)."""
    error = error or InputError
    try:
        return Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise error(
            f"{path} ({what}) is not UTF-8 text (byte {err.start}): save it as UTF-8 or rebuild it"
        ) from None


def read_json(path: str | Path, what: str, error: type[Exception] | None = None):
    """A JSON file, or one user error naming the file and the line of the damage."""
    import json

    error = error or InputError
    text = read_text(path, what, error)
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise error(
            f"{path} ({what}) is not valid JSON ({err.msg} at line {err.lineno}): repair or rebuild it"
        ) from None


def read_jsonl(path: str | Path, what: str, error: type[Exception] | None = None) -> list:
    """A JSON-lines file (blank lines skipped), or one user error naming the file and line."""
    import json

    error = error or InputError
    records = []
    for number, line in enumerate(read_text(path, what, error).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as err:
            raise error(
                f"{path} ({what}) line {number} is not valid JSON ({err.msg}): repair or rebuild it"
            ) from None
    return records


def confined(root: str | Path, relative: str) -> bool:
    """Whether ``root / relative`` resolves inside ``root`` (no ``..`` escape, no absolute path,
    no symlink pointing elsewhere)."""
    base = Path(root).resolve()
    target = (base / relative).resolve()
    return target == base or base in target.parents
