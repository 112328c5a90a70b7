"""The one user-error policy of every CLI (train, eval, restore, build_dataset, prompts,
model_report, metrics, report, pretrain_tiny).

- An error the user can fix (a setting, an input file, a checkpoint, missing weights or hardware)
  is a :class:`UserError`: the CLI prints ONE line on stderr, ``error: <what and which file or
  setting>: <the fix>``, and exits with status 2. No traceback.
- Anything else is a bug: the full traceback is shown (exit 1). Plain ``ValueError`` /
  ``RuntimeError`` raised deep inside torch or diffusers are bugs too, never hidden.
- Ctrl-C: one line and exit 130 (training first saves a resumable checkpoint, see
  ``src.training.callbacks.InterruptCheckpoint``).
- In a Hydra multirun a failing job is recorded (``FAILED.txt`` in its job dir) and the sweep goes
  on; the end-of-sweep summary lists done and failed jobs and the sweep exits 1 if any failed.
- Secrets never reach the disk: :func:`refuse_secret_overrides` runs before Hydra writes the run
  dir's ``.hydra/*.yaml`` (see :func:`hydra_cli`).
- A preset's mandatory value the command line left out is named as the user types it
  (``experiment=vbridge_tiny_drift needs drift.stage1=...``) before the job starts, and a
  multirun whose launcher needs programs this machine lacks (``hydra/launcher=slurm``: sbatch,
  srun) is one line before any job is launched (:func:`check_launcher_tools`).
"""

from __future__ import annotations

import argparse
import functools
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from src.utils.errors import (  # noqa: F401 - re-exported: ``from src.utils.cli import ConfigError``
    EXIT_INTERRUPTED,
    EXIT_USER_ERROR,
    ConfigError,
    HardwareError,
    InputError,
    MissingFileError,
    MissingToolError,
    UserError,
)
from src.utils.secrets import refuse_secret_overrides, secret_override_problem  # noqa: F401

T = TypeVar("T")


def one_line(text: object) -> str:
    """``text`` on one line (newlines and runs of spaces collapsed)."""
    return " ".join(str(text).split())


def user_message(err: BaseException) -> str | None:
    """The one-line message of an error the user can fix, or None for a bug."""
    from omegaconf.errors import ConfigKeyError, InterpolationResolutionError, MissingMandatoryValue

    if type(err).__name__ == "InstantiationException" and err.__cause__ is not None:
        return _instantiation_message(err)
    if isinstance(err, UserError):
        return one_line(err)
    if isinstance(err, MissingMandatoryValue):
        return f"{err.full_key}= is required (set it on the command line, e.g. {err.full_key}=...)"
    if isinstance(err, InterpolationResolutionError):
        return one_line(f"cannot resolve a setting: {err.msg if hasattr(err, 'msg') else err}")
    if isinstance(err, ConfigKeyError):
        return one_line(f"unknown setting: {err}")
    if isinstance(err, PermissionError):
        where = err.filename or "a file"
        return (
            f"cannot access {where}: permission denied; choose a folder you can write "
            "(paths.output_dir=..., out_dir=... or hydra.run.dir=...) or a file you can read"
        )
    if isinstance(err, (FileExistsError, NotADirectoryError, IsADirectoryError)):
        return f"cannot write {err.filename or 'an output'}: {err.strerror}; choose another output folder"
    if isinstance(err, OSError) and err.errno == 30:  # EROFS
        return f"cannot write {err.filename or 'outputs'}: read-only file system; choose a writable folder"
    if isinstance(err, OSError) and err.errno == 28:  # ENOSPC
        return f"no space left on the device writing {err.filename or 'outputs'}; free some space"
    return None


def _instantiation_message(err: BaseException) -> str | None:
    """``hydra.utils.instantiate`` wraps what the target raised. Our own targets (``src.*``)
    follow this policy; a library's constructor (Trainer, ModelCheckpoint, AdamW, a logger)
    refusing its arguments (TypeError / ValueError / Lightning's MisconfigurationException) is a
    setting the user gave it."""
    cause, text = err.__cause__, str(err)
    target = re.search(r"target '([^']+)'", text)
    if target is None or target.group(1).startswith("src."):
        return user_message(cause)
    if isinstance(cause, (TypeError, ValueError)) or type(cause).__name__ == "MisconfigurationException":
        key = re.search(r"full_key: (\S+)", text)
        where = key.group(1) if key else target.group(1)
        return one_line(
            f"the {where} settings are not accepted by {target.group(1)}: {type(cause).__name__}: {cause}; "
            f"fix the {where}.* overrides (python -m src.<cli> ... --cfg job shows them)"
        )
    return None


def report_user_error(err: BaseException, usage: str | None = None) -> str | None:
    """Print ``error: <message>`` on stderr if ``err`` is a user error; returns the message."""
    from omegaconf.errors import MissingMandatoryValue

    message = user_message(err)
    if message is None:
        return None
    missing = usage and isinstance(err, MissingMandatoryValue)  # say how the CLI is called
    print(f"error: {message}" + (f"  (usage: {usage})" if missing else ""), file=sys.stderr)
    return message


def exit_on_user_error(action: Callable[[], T], usage: str | None = None) -> T:
    """``action()``; a :class:`UserError` (or a missing mandatory setting) exits 2 with one line,
    Ctrl-C exits 130 with one line, anything else keeps its traceback."""
    try:
        return action()
    except KeyboardInterrupt:
        print("interrupted (Ctrl-C)", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)
    except Exception as err:
        if report_user_error(err, usage) is None:
            raise
        sys.exit(EXIT_USER_ERROR)


# --- Hydra CLIs ----------------------------------------------------------------------------------

# The jobs of this process's Hydra multirun (Hydra's basic launcher runs them in-process):
# {"dir", "ok", "message"} each, for the end-of-sweep summary.
SWEEP_JOBS: list[dict] = []


def _check_preset_values(cfg) -> None:
    """A chosen preset's mandatory values (``experiment=vbridge_tiny_drift`` needs ``drift.stage1=``),
    before the job reads anything derived from them (:func:`src.utils.config.check_mandatory_values`)."""
    from hydra.core.hydra_config import HydraConfig

    from src.utils.config import check_mandatory_values

    if HydraConfig.initialized():
        check_mandatory_values(cfg, HydraConfig.get().runtime.choices)


def _hydra_job() -> tuple[Path | None, bool]:
    """(this job's output dir, whether it is a multirun job)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized():
        return None, False
    hydra_cfg = HydraConfig.get()
    return Path(hydra_cfg.runtime.output_dir), hydra_cfg.mode == RunMode.MULTIRUN


def _write_failed(run_dir: Path | None, text: str) -> None:
    if run_dir is None:
        return
    try:
        from src.utils.io import write_text_atomic

        write_text_atomic(run_dir / "FAILED.txt", text.rstrip() + "\n")
    except OSError:
        pass


def user_errors(usage: str) -> Callable[[Callable[..., T]], Callable[..., T | None]]:
    """Decorator of a Hydra task function: the user-error policy above, for one job (a chosen
    preset's mandatory values checked first). A failing multirun job is recorded and returns None
    so the sweep goes on."""

    def decorate(task: Callable[..., T]) -> Callable[..., T | None]:
        @functools.wraps(task)
        def job(cfg):
            run_dir, multirun = _hydra_job()
            try:
                _check_preset_values(cfg)
                result = task(cfg)
            except KeyboardInterrupt:
                print("interrupted (Ctrl-C)", file=sys.stderr)
                _write_failed(run_dir, "interrupted (Ctrl-C)")
                sys.exit(EXIT_INTERRUPTED)
            except Exception as err:
                message = report_user_error(err, usage)
                _write_failed(run_dir, f"{type(err).__name__}: {message or one_line(err)}")
                if multirun:
                    if message is None:  # a single run re-raises: Hydra prints the traceback
                        import logging

                        logging.getLogger("src").exception(
                            "job failed (a bug: please report it with this traceback)"
                        )
                    failure = message or f"{type(err).__name__}: {one_line(err)[:200]}"
                    SWEEP_JOBS.append({"dir": str(run_dir), "ok": False, "message": failure})
                    return None
                if message is None:
                    raise
                sys.exit(EXIT_USER_ERROR)
            if multirun:
                SWEEP_JOBS.append({"dir": str(run_dir), "ok": True, "message": ""})
            return result

        return job

    return decorate


def precheck_overrides(config_name: str, args: list[str]):
    """Compose the config once before Hydra runs, so an unknown group option, key or malformed
    override is one line and exit 2 (Hydra itself prints several lines and exits 1). Returns the
    composed config (with its ``hydra`` node), or None where Hydra's flags are left to Hydra."""
    if any(a.startswith("-") for a in args):  # Hydra's flags (--help, --cfg, -m sweeps, ...): Hydra's own
        return None
    try:
        return _compose(config_name, list(args))
    except Exception as err:  # noqa: BLE001 - any composition failure is the command line's
        text = one_line(str(err).split("Config search path")[0]) or type(err).__name__
        print(f"error: {text} (see --help for the accepted groups and options)", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)


def _compose(config_name: str, overrides: list[str]):
    """The config ``config_name`` + ``overrides`` with its ``hydra`` node, composed outside Hydra's
    own run (the global Hydra state is left clear for it)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from src.utils.config import CONFIG_DIR

    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
            return compose(config_name, overrides=overrides, return_hydra_config=True)
    finally:
        GlobalHydra.instance().clear()


MULTIRUN_FLAGS = ("-m", "--multirun")
# the programs a launcher runs on this machine, and where to go without them
LAUNCHER_TOOLS = {
    "SlurmLauncher": (
        ("sbatch", "srun"),
        "SLURM's tools",
        "run it on the cluster's login node, or use hydra/launcher=local",
    ),
}


def _sweep_free_config(config_name: str, args: list[str]):
    """The config of a multirun's first job (each sweep at its first value: ``lora.rank=4,8`` as
    ``lora.rank=4``), for what every job shares (the launcher); None if it does not compose (Hydra
    then says why)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        parsed = OverridesParser.create().parse_overrides([a for a in args if a not in MULTIRUN_FLAGS])
        fixed = []
        for override in parsed:
            if not override.is_sweep_override():
                fixed.append(override.input_line)
                continue
            try:  # a sweep's first value (task=sr,deblur: task=sr), as the sweep's first job has it
                first = next(iter(override.sweep_string_iterator()))
            except Exception:  # noqa: BLE001 - a glob needs the config loader: left out
                continue
            fixed.append(f"{override.get_key_element()}={first}")
        return _compose(config_name, fixed)
    except Exception:  # noqa: BLE001 - Hydra reports a bad command line itself
        return None


def check_launcher_tools(config_name: str, args: list[str], cfg=None) -> None:
    """A multirun whose launcher needs programs this machine lacks (``hydra/launcher=slurm``:
    sbatch submits each job, srun starts its ranks) is one :class:`MissingToolError` naming the
    launcher and the missing programs, before any job is launched (submitit's own message is a
    traceback: ``Could not detect "srun", are you indeed on a slurm cluster?``). ``cfg``: the
    command line's composed config, where :func:`precheck_overrides` made it."""
    import shutil

    from hydra.types import RunMode
    from omegaconf import OmegaConf

    flags = [a for a in args if a.startswith("-")]
    if any(flag not in MULTIRUN_FLAGS for flag in flags):  # --help, --cfg, ...: nothing is launched
        return
    if cfg is None:
        if not flags:
            return
        cfg = _sweep_free_config(config_name, args)
        if cfg is None:
            return
    if not flags and OmegaConf.select(cfg, "hydra.mode") != RunMode.MULTIRUN:
        return  # one run, in this process: the launcher is not used
    target = str(OmegaConf.select(cfg, "hydra.launcher._target_", default="") or "")
    tools = LAUNCHER_TOOLS.get(target.rsplit(".", 1)[-1])
    if tools is None:
        return
    programs, what, instead = tools
    missing = [program for program in programs if shutil.which(program) is None]
    if missing:
        choice = OmegaConf.select(cfg, "hydra.runtime.choices").get("hydra/launcher")
        raise MissingToolError(
            f"hydra/launcher={choice} needs {what} ({', '.join(programs)}) on PATH "
            f"(missing here: {', '.join(missing)}): {instead}"
        )


def hydra_cli(
    main: Callable[[], None],
    config_name: str,
    argv_transform: Callable[[list[str]], list[str]] | None = None,
) -> None:
    """Run a ``@hydra.main`` function as a CLI: refuse secrets, malformed overrides and a launcher
    whose programs are missing before Hydra writes anything, and after a multirun print the
    end-of-sweep summary and exit 1 if any job failed."""
    args = sys.argv[1:]
    refuse_secret_overrides(args)
    if argv_transform is not None:
        args = argv_transform(args)
        sys.argv = [sys.argv[0], *args]
    composed = precheck_overrides(config_name, args)
    exit_on_user_error(lambda: check_launcher_tools(config_name, args, composed))
    SWEEP_JOBS.clear()
    main()
    if SWEEP_JOBS:
        sys.exit(print_sweep_summary(SWEEP_JOBS))


class ArgumentParser(argparse.ArgumentParser):
    """argparse with the policy's one-line errors: ``error: <message> (see --help)``, exit 2."""

    def error(self, message: str):  # type: ignore[override]
        print(f"error: {one_line(message)} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)


def print_sweep_summary(jobs: list[dict]) -> int:
    """The end-of-sweep summary on stderr; returns the sweep's exit status (1 if a job failed)."""
    failed = [job for job in jobs if not job["ok"]]
    sweep_dir = os.path.commonpath([job["dir"] for job in jobs]) if jobs else ""
    lines = [f"sweep {sweep_dir}: {len(jobs)} job(s), {len(jobs) - len(failed)} done, {len(failed)} failed"]
    for job in jobs:
        name = Path(job["dir"]).name
        if job["ok"]:
            metrics = Path(job["dir"]) / "frame_metrics.json"
            where = metrics if metrics.is_file() else job["dir"]
            lines.append(f"  done   job {name}: {where}")
        else:
            lines.append(f"  FAILED job {name}: {job['message']}  ({Path(job['dir']) / 'FAILED.txt'})")
    print("\n".join(lines), file=sys.stderr)
    return 1 if failed else 0


def number(
    value: object,
    key: str,
    kind: type = int,
    *,
    at_least: float | None = None,
    above: float | None = None,
    at_most: float | None = None,
    below: float | None = None,
) -> int | float:
    """``value`` of setting ``key`` as an int or float within the given bounds, or one
    :class:`ConfigError` naming the setting (``lora.rank=abc`` must not surface as ``invalid
    literal for int()``; ``lora.rank=0`` says ``lora.rank must be >= 1, got 0``)."""
    wanted = "an integer" if kind is int else "a number"
    if isinstance(value, bool) or value is None:
        raise ConfigError(f"{key}={value} must be {wanted}")
    try:
        converted = kind(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{key}={value} must be {wanted}") from None
    if kind is int and isinstance(value, float) and value != converted:
        raise ConfigError(f"{key}={value} must be an integer")
    if kind is int and isinstance(value, str) and not value.strip().lstrip("+-").isdigit():
        raise ConfigError(f"{key}={value} must be an integer")
    bounds = [
        (at_least, ">=", converted >= at_least if at_least is not None else True),
        (above, ">", converted > above if above is not None else True),
        (at_most, "<=", converted <= at_most if at_most is not None else True),
        (below, "<", converted < below if below is not None else True),
    ]
    if not all(ok for _, _, ok in bounds):
        rule = " and ".join(f"{sign} {limit}" for limit, sign, _ in bounds if limit is not None)
        raise ConfigError(f"{key} must be {rule}, got {value}")
    return converted


def require_cuda(setting: str) -> None:
    """A :class:`HardwareError` naming ``setting`` when no CUDA GPU is visible."""
    import torch

    if not torch.cuda.is_available():
        raise HardwareError(
            f"{setting} needs a CUDA GPU and this machine has none (torch.cuda.is_available() is False); "
            "use the CPU defaults (trainer=cpu, device=auto or device=cpu)"
        )


def drop_duplicate_lightning_handler() -> None:
    """Each log line once: ``import lightning`` gives the ``lightning`` logger its own console
    handler AND lets it propagate to the root logger, which Hydra already sends to the console and
    the job's log file, so every Lightning line was printed twice. Call after importing lightning."""
    import logging

    if logging.getLogger().hasHandlers():
        logger = logging.getLogger("lightning")
        for handler in list(logger.handlers):
            logger.removeHandler(handler)


def check_device(value: object, setting: str = "device") -> str:
    """``device=`` of the inference CLIs: auto, cpu or cuda[:N] (a CUDA GPU must be visible)."""
    device = str(value)
    if device in ("auto", "cpu"):
        return device
    if re.fullmatch(r"cuda(:\d+)?", device):
        require_cuda(f"{setting}={device}")
        return device
    raise ConfigError(f"{setting}={device} is not a device: use auto, cpu or cuda (cuda:N)")
