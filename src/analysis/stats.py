"""Uncertainty of sweep results: bootstrap intervals over images x seeds and paired tests.

A sweep scores every (image, seed) unit: the held-out photographs are one axis, the training
seeds (data order, noise, timesteps, sampling) the other. Both are samples from larger
populations, so the intervals resample both (a crossed bootstrap): each replicate draws images
with replacement and seeds with replacement and averages the value over the drawn grid. With a
single seed (or a single image) it reduces to the ordinary bootstrap over the other axis.

Values are given as a (images, seeds) array; NaN marks a missing unit (it is left out of each
replicate's mean). Every random draw comes from ``seed``, recorded by the callers next to the
numbers.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass

import numpy as np

CONFIDENCE = 0.95
BOOTSTRAP_REPLICATES = 4000
EXACT_SIGN_FLIP_MAX_UNITS = 16  # 2^16 sign patterns enumerated; more units: Monte Carlo
SIGN_FLIP_SAMPLES = 20000
ALPHA = 0.05


@dataclass(frozen=True)
class Interval:
    """A mean with its bootstrap interval (``low``, ``high``) at ``confidence``; ``n`` units."""

    mean: float
    low: float
    high: float
    n: int
    confidence: float = CONFIDENCE

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class PairedComparison:
    """``a`` minus ``b`` over matched units: the mean difference with its bootstrap interval,
    the two-sided sign-flip permutation p-value, and the verdict."""

    difference: Interval
    p_value: float
    exact: bool  # the p-value enumerates every sign pattern
    wins: int  # units where a > b
    losses: int  # units where a < b

    @property
    def resolved(self) -> bool:
        """The interval excludes zero and the test rejects equality at :data:`ALPHA`."""
        d = self.difference
        return self.p_value < ALPHA and (d.low > 0 or d.high < 0)

    def verdict(self) -> str:
        return "resolved" if self.resolved else "not resolved at this sample size"

    def as_dict(self) -> dict:
        return {
            "difference": self.difference.as_dict(),
            "p_value": self.p_value,
            "exact": self.exact,
            "wins": self.wins,
            "losses": self.losses,
            "resolved": self.resolved,
            "verdict": self.verdict(),
        }


def _grid(values) -> np.ndarray:
    grid = np.asarray(values, dtype=np.float64)
    if grid.ndim == 1:
        grid = grid[:, None]
    if grid.ndim != 2 or grid.size == 0:
        raise ValueError(f"values must be a non-empty (images, seeds) array, got shape {grid.shape}")
    if not np.isfinite(grid).any():
        raise ValueError("values hold no finite number")
    return grid


def bootstrap_interval(
    values, seed: int = 0, replicates: int = BOOTSTRAP_REPLICATES, confidence: float = CONFIDENCE
) -> Interval:
    """Mean of ``values`` ((images, seeds), or one axis) with its percentile interval from the
    crossed bootstrap (images and seeds resampled independently)."""
    grid = _grid(values)
    images, seeds = grid.shape
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, images, size=(replicates, images))
    cols = rng.integers(0, seeds, size=(replicates, seeds))
    picked = grid[rows[:, :, None], cols[:, None, :]].reshape(replicates, -1)  # (replicates, images x seeds)
    counts = np.isfinite(picked).sum(axis=1)
    means = np.where(
        counts > 0, np.nansum(picked, axis=1) / np.maximum(counts, 1), np.nan
    )  # a draw of only missing units: none
    means = means[np.isfinite(means)]
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return Interval(
        mean=float(np.nanmean(grid)),
        low=float(low),
        high=float(high),
        n=int(np.isfinite(grid).sum()),
        confidence=confidence,
    )


def sign_flip_p_value(differences, seed: int = 0, samples: int = SIGN_FLIP_SAMPLES) -> tuple[float, bool]:
    """Two-sided p-value of "the mean difference is zero" by flipping the sign of each unit's
    difference (exact enumeration up to :data:`EXACT_SIGN_FLIP_MAX_UNITS` units, else
    ``samples`` random patterns, the observed one counted). Returns (p, exact)."""
    d = np.asarray(differences, dtype=np.float64).ravel()
    d = d[np.isfinite(d)]
    if d.size == 0:
        raise ValueError("no paired differences")
    observed = abs(d.mean())
    tolerance = 1e-12 * max(1.0, observed)
    if d.size <= EXACT_SIGN_FLIP_MAX_UNITS:
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=d.size)))
        means = np.abs(signs @ d) / d.size
        return float((means >= observed - tolerance).mean()), True
    rng = np.random.default_rng(seed)
    signs = rng.choice((1.0, -1.0), size=(samples, d.size))
    means = np.abs(signs @ d) / d.size
    return float(((means >= observed - tolerance).sum() + 1) / (samples + 1)), False


def paired_comparison(a, b, seed: int = 0, replicates: int = BOOTSTRAP_REPLICATES) -> PairedComparison:
    """``a - b`` over matched (images, seeds) units (same shape; NaN where a unit is missing in
    either): the crossed-bootstrap interval of the mean difference and the sign-flip test."""
    a, b = _grid(a), _grid(b)
    if a.shape != b.shape:
        raise ValueError(f"paired values must have the same shape, got {a.shape} and {b.shape}")
    d = a - b
    finite = d[np.isfinite(d)]
    p, exact = sign_flip_p_value(finite, seed=seed)
    return PairedComparison(
        difference=bootstrap_interval(d, seed=seed, replicates=replicates),
        p_value=p,
        exact=exact,
        wins=int((finite > 0).sum()),
        losses=int((finite < 0).sum()),
    )


def format_interval(interval: Interval | dict | None, digits: int) -> str:
    """``mean [low, high]`` (or ``n/a``)."""
    if interval is None:
        return "n/a"
    i = interval if isinstance(interval, dict) else interval.as_dict()
    if any(not isinstance(i[k], (int, float)) or math.isnan(i[k]) for k in ("mean", "low", "high")):
        return "n/a"
    return f"{i['mean']:.{digits}f} [{i['low']:.{digits}f}, {i['high']:.{digits}f}]"
