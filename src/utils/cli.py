"""One way for the CLIs to report a user's mistake: one line on stderr, exit status 2."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
log = logging.getLogger(__name__)


def exit_on_user_error(action: Callable[[], T], usage: str) -> T:
    """``action()``, or exit 2 with one line for a missing setting, bad input, a foreign
    checkpoint or missing weights (``ValueError`` / ``FileNotFoundError`` and their subclasses:
    ``CheckpointError``, ``ModelWeightsMissing``, ``SourceError``). Other errors keep their
    traceback: they are bugs, not input."""
    from omegaconf.errors import MissingMandatoryValue

    try:
        return action()
    except MissingMandatoryValue as err:
        print(f"error: {err.full_key}= is required: {usage}", file=sys.stderr)
        sys.exit(2)
    except (FileNotFoundError, ValueError) as err:
        log.error("%s", err)
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
