"""Runs never mix: a run dir (or a sweep dir) belongs to one run.

A Hydra callback (configured in conf/hydra/default.yaml) claims the directory in
``on_run_start`` / ``on_multirun_start``, i.e. BEFORE Hydra writes ``.hydra/*.yaml`` into it:

- ``.progrestore_run.json`` records who owns it (command, pid, start time) and stays there;
- an exclusive ``flock`` on it is held while the process runs (the OS drops it when the process
  dies, so there are no stale locks).

A second run into a directory the user named (``hydra.run.dir=``) that is in use fails at once and
names the first; one that already holds another run (finished or crashed) is refused as well,
unless the new run resumes from a checkpoint inside it (``ckpt_path=<that dir>/checkpoints/...``:
the same run going on). The default directory (a timestamp to the second) moves on to ``_2``,
``_3``, ... instead, so runs started within the same second never share one.
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
import time
from pathlib import Path

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from src.utils.cli import ConfigError, InputError, exit_on_user_error
from src.utils.io import confined

MARKER = ".progrestore_run.json"
CHECKPOINTS = "checkpoints"  # <run dir>/checkpoints (conf/callbacks/default.yaml writes there)
LAST_CHECKPOINT = "last.ckpt"  # ModelCheckpoint's save_last file, also the preemption checkpoint
PREEMPTED = ".preempted.json"  # beside last.ckpt after a preemption (src/callbacks.PreemptionCheckpoint)
_HELD: list = []  # open lock files of this process (kept open until exit)


class RunDirInUse(InputError):
    """The directory belongs to another run or build; the message names it."""


def claim(config: DictConfig, key: str, what: str) -> Path:
    """Claim ``hydra.<key>`` (``run.dir`` / ``sweep.dir``) for this process; returns the
    directory, written back into ``config`` as a literal. Raises :class:`RunDirInUse` naming the
    owner, or a user error for a directory that cannot be one.

    A directory the user named (``hydra.run.dir=...``) is that directory or an error. The default
    (a timestamp to the second) moves on to ``<dir>_2``, ``<dir>_3``, ... when an earlier run
    already holds it, so two runs started within one second never share a directory.
    A run that resumes from a checkpoint inside a directory may continue there."""
    from src.utils.config import PROJECT_ROOT

    directory = Path(str(OmegaConf.select(config, f"hydra.{key}")))
    setting = f"hydra.{key}"
    overrides = OmegaConf.select(config, "hydra.overrides.hydra") or []
    chosen = any(o.lstrip("+").startswith(f"{setting}=") for o in overrides)
    if not str(directory).strip() or directory.resolve() in (PROJECT_ROOT, *PROJECT_ROOT.parents):
        raise ConfigError(
            f"{setting}={directory} would write the {what}'s files into {directory.resolve()} (the "
            "repository or above it); give it a folder of its own, e.g. under outputs/ (the default)"
        )
    ckpt = OmegaConf.select(config, "ckpt_path", default=None) if what == "run" else None
    suffixes = [""] if chosen else ["", *(f"_{i}" for i in range(2, 100))]
    for suffix in suffixes:
        candidate = directory.with_name(directory.name + suffix)
        if str(ckpt) == "auto":  # resumes when the dir holds a checkpoint, else starts afresh
            resuming = resolve_ckpt_path(ckpt, candidate) is not None
        else:
            resuming = bool(ckpt) and confined(candidate, str(Path(str(ckpt)).expanduser()))
        try:
            _claim(candidate, what, resuming)
        except RunDirInUse:
            if suffix == suffixes[-1]:
                raise
            continue
        except OSError as err:  # read-only, a file in the way, no space: before Hydra writes anything
            raise InputError(
                f"cannot create the {what} dir {candidate} ({err.strerror or type(err).__name__}: "
                f"{err.filename or candidate}); choose a writable folder with paths.output_dir=... "
                f"(or {setting}=...)"
            ) from None
        with read_write(config), open_dict(config):
            OmegaConf.update(config, setting, str(candidate), merge=False)
        return candidate
    raise AssertionError("unreachable")  # the last suffix re-raises


def resolve_ckpt_path(ckpt_path, run_dir: Path) -> str | None:
    """``ckpt_path=auto``: ``<run dir>/checkpoints/last.ckpt`` when it exists, else a fresh start.
    A run dir whose last run was preempted (``.preempted.json`` beside it) resumes from it even
    without ``auto``: the requeued job of a cluster sweep is the same run going on."""
    last = Path(run_dir) / CHECKPOINTS / LAST_CHECKPOINT
    if str(ckpt_path) == "auto" or (ckpt_path is None and (last.parent / PREEMPTED).is_file()):
        return str(last) if last.is_file() else None
    return ckpt_path


def hold_lock(lock_path: Path, in_use: str) -> tuple:
    """Take the exclusive lock of ``lock_path`` for the rest of this process (or until
    :func:`release_all`); raise :class:`RunDirInUse` (``in_use``, its ``{owner}`` replaced by the
    owner's command, pid and start) if another process holds it. Returns (open handle, previous owner record or "")."""
    handle = open(lock_path, "a+", encoding="utf-8")  # noqa: SIM115 - held open until released
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        owner = _owner(lock_path)
        handle.close()
        raise RunDirInUse(in_use.replace("{owner}", owner)) from None
    handle.seek(0)
    previous = handle.read().strip()
    return handle, previous


def write_owner(handle, what: str) -> None:
    handle.seek(0)
    handle.truncate()
    handle.write(
        json.dumps(
            {
                "what": what,
                "command": " ".join(["python -m", _module_name(), *sys.argv[1:]]),
                "pid": os.getpid(),
                "started": time.strftime("%Y-%m-%d %H:%M:%S"),
            }
        )
        + "\n"
    )
    handle.flush()


def _claim(directory: Path, what: str, resuming: bool = False) -> None:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    handle, previous = hold_lock(
        directory / MARKER,
        f"{directory} is in use by another run ({{owner}}); pick another hydra.run.dir= or wait for it",
    )
    if previous and not resuming:
        handle.close()
        raise RunDirInUse(
            f"{directory} already holds another run ({_describe(previous)}); runs never share a dir: "
            "pick a new hydra.run.dir= (the default is a new timestamped dir), or delete that dir; "
            "to continue a run pass ckpt_path=<its dir>/checkpoints/last.ckpt"
        )
    write_owner(handle, what)
    _HELD.append(handle)


def _module_name() -> str:
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    return spec.name if spec is not None else Path(sys.argv[0]).name


def _describe(text: str) -> str:
    try:
        info = json.loads(text.splitlines()[0])
        return f"{info.get('command', '?')}, pid {info.get('pid', '?')}, started {info.get('started', '?')}"
    except (ValueError, IndexError, AttributeError):
        return "unknown owner"


def _owner(marker: Path) -> str:
    try:
        return _describe(marker.read_text(encoding="utf-8"))
    except OSError:
        return "unknown owner"


def release_all() -> None:
    while _HELD:
        handle = _HELD.pop()
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        finally:
            handle.close()


class RunDirLock(Callback):
    """Hydra callback: claim the run dir (single run) or the sweep dir (multirun) first thing."""

    # Exceptions raised in a callback reach Hydra's own reporter (several lines, exit 1): apply
    # the user-error policy here.
    def on_run_start(self, config: DictConfig, **kwargs) -> None:
        from src.utils.distributed import secondary_rank

        if secondary_rank():  # DDP rank 1..N-1 of the run that claimed this dir (rank 0)
            return
        exit_on_user_error(lambda: claim(config, "run.dir", "run"))

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        exit_on_user_error(lambda: claim(config, "sweep.dir", "sweep"))

    def on_run_end(self, config: DictConfig, **kwargs) -> None:
        release_all()

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        release_all()
