"""The resolution curriculum of paired training (V-Bridge, arXiv 2603.13089, sec. 3.3) and the
training crop of a pair: stages of (crop size, share of training) resolved to optimizer-step
ranges; a sample of step s is cropped at its stage's size (see :mod:`src.data.paired`)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from src.data.pairs import resize_uint8
from src.utils.cli import ConfigError, number


@dataclass(frozen=True)
class Stage:
    size: int  # r: short side resized to r, then an r x r crop
    first_step: int  # optimizer steps [first_step, end_step)
    end_step: int


class Curriculum:
    """Stages of (crop size, share of training), resolved to optimizer-step ranges. An empty
    curriculum crops every sample at the model's H x W."""

    def __init__(self, stages: list[Stage]):
        self.stages = list(stages)

    @classmethod
    def resolve(
        cls, cfg: dict | None, max_steps: int | None, model_height: int, model_width: int, multiple: int
    ) -> Curriculum:
        """From the ``curriculum`` config: ``stages`` [{size, share}], sizes scaled by
        min(model H, W) / ``reference_size`` when ``scale_to_model`` and rounded to ``multiple``."""
        cfg = dict(cfg or {})
        stages = list(cfg.get("stages") or [])
        if not stages:
            return cls([])
        if max_steps is None or int(max_steps) < len(stages):
            raise ConfigError(
                f"curriculum={cfg.get('name', '?')} splits trainer.max_steps into {len(stages)} stages: "
                f"set trainer.max_steps >= {len(stages)} (got {max_steps})"
            )
        shares = []
        for i, stage in enumerate(stages):
            if not isinstance(stage, dict) or "size" not in stage or "share" not in stage:
                raise ConfigError(
                    f"curriculum.stages[{i}] must be {{size: <px>, share: <fraction>}}, got {stage!r}"
                )
            shares.append(number(stage["share"], f"curriculum.stages[{i}].share", float, above=0))
        scale = 1.0
        if cfg.get("scale_to_model"):
            reference = number(cfg.get("reference_size"), "curriculum.reference_size", at_least=1)
            scale = min(model_height, model_width) / reference
        sizes = []
        for i, stage in enumerate(stages):
            size = number(stage["size"], f"curriculum.stages[{i}].size", float, above=0) * scale
            sizes.append(max(multiple, int(round(size / multiple)) * multiple))
        total, bounds, acc = sum(shares), [0], 0.0
        for share in shares:
            acc += share
            bounds.append(int(round(int(max_steps) * acc / total)))
        bounds[-1] = int(max_steps)
        return cls([Stage(s, a, b) for s, a, b in zip(sizes, bounds[:-1], bounds[1:], strict=True)])

    def size_at(self, step: int) -> int | None:
        """The crop size r at optimizer step ``step`` (the last stage beyond the end); None
        without a curriculum."""
        if not self.stages:
            return None
        return next((s.size for s in self.stages if step < s.end_step), self.stages[-1].size)

    def describe(self) -> list[dict]:
        return [{"size": s.size, "steps": [s.first_step, s.end_step]} for s in self.stages]


def crop_pair(
    lq: np.ndarray, hq: np.ndarray, rng: np.random.Generator, height: int, width: int
) -> tuple[np.ndarray, np.ndarray]:
    """Resize (LQ and HQ alike) so the image covers height x width, take one random crop of that
    size from both, flip both half the time."""
    in_h, in_w = hq.shape[:2]
    scale = max(height / in_h, width / in_w)
    new_h, new_w = (
        max(height, int(math.ceil(in_h * scale - 1e-6))),
        max(width, int(math.ceil(in_w * scale - 1e-6))),
    )
    if (new_h, new_w) != (in_h, in_w):
        lq, hq = resize_uint8(lq, new_h, new_w), resize_uint8(hq, new_h, new_w)
    top = int(rng.integers(0, new_h - height + 1))
    left = int(rng.integers(0, new_w - width + 1))
    lq, hq = lq[top : top + height, left : left + width], hq[top : top + height, left : left + width]
    if rng.random() < 0.5:
        lq, hq = lq[:, ::-1], hq[:, ::-1]
    return np.ascontiguousarray(lq), np.ascontiguousarray(hq)
