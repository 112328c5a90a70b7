"""The user-error classes of the one user-error policy (:mod:`src.utils.cli`), in a module of
their own so that every helper below the CLIs (``src.utils.config``, ``src.utils.io``, the
libraries) can raise them without importing the CLI machinery. ``src.utils.cli`` re-exports them:
``from src.utils.cli import ConfigError`` keeps working."""

from __future__ import annotations

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


class UserError(Exception):
    """An error the user can fix. Its message names the file or setting and says what to do."""


class ConfigError(UserError, ValueError):
    """A setting that cannot work (wrong type, out of range, inconsistent with another)."""


class InputError(UserError, ValueError):
    """An input file or folder that cannot be used (missing, unreadable, damaged, foreign)."""


class MissingFileError(UserError, FileNotFoundError):
    """A file or folder the user named that does not exist."""


class HardwareError(UserError, RuntimeError):
    """A setting that needs hardware this machine lacks (a CUDA GPU)."""


class MissingToolError(UserError, RuntimeError):
    """A setting that needs an external program this machine lacks (SLURM's sbatch and srun)."""
