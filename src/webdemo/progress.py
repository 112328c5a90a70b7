"""The progress of a restore: its sampling steps counted at the pipeline's scheduler (every
diffusers sampling loop calls ``scheduler.step`` once per step), out of the steps planned for the
photo's tiles or the clip's frame batches, reported as a fraction with a description."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable

from src.utils.cli import UserError

Report = Callable[[float | None, str], None]  # (fraction done or None, what is happening)


@contextlib.contextmanager
def counting_steps(restorer, on_step: Callable[[], None]):
    """Call ``on_step()`` after each sampling step of the restorer's pipeline (its scheduler's
    ``step``, which every diffusers sampling loop calls once per step), for the progress bar."""
    scheduler = getattr(getattr(restorer, "pipeline", None), "scheduler", None)
    original = getattr(scheduler, "step", None)
    if original is None:
        yield
        return

    def step(*args, **kwargs):
        answer = original(*args, **kwargs)
        on_step()
        return answer

    scheduler.step = step  # an instance attribute over the class's method, removed after
    try:
        yield
    finally:
        with contextlib.suppress(AttributeError):
            del scheduler.step


def calls_per_image(restorer, height: int, width: int, mode: str, overlap: int, tile_batch: int) -> int:
    """Pipeline calls of one image: 1 in resize mode (or one tile), else its tile batches."""
    from src.models.restorer import tile_starts

    if mode != "tiled":
        return 1
    try:
        rows = tile_starts(max(height, restorer.height), restorer.height, overlap)
        cols = tile_starts(max(width, restorer.width), restorer.width, overlap)
    except UserError:  # the restore itself says why
        return 1
    tiles = len(rows) * len(cols)
    return 1 if tiles == 1 else math.ceil(tiles / max(1, tile_batch))


class StepProgress:
    """Sampling steps done out of those planned, reported as a fraction with a description."""

    def __init__(self, report: Report, calls: int, steps: int, describe: Callable[[int], str]):
        self.report, self.calls, self.steps, self.describe = report, max(1, calls), max(1, steps), describe
        self.done = 0

    def __call__(self) -> None:
        self.done += 1
        call, step = divmod(self.done - 1, self.steps)
        fraction = min(0.99, self.done / (self.calls * self.steps))
        self.report(
            fraction, f"{self.describe(min(call, self.calls - 1))}sampling step {step + 1}/{self.steps}"
        )
