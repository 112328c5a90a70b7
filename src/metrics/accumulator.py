"""Validation scores accumulated across batches and ranks: one torchmetrics ``Metric``.

Training validation used to keep plain Python sums on each rank and build ``frame_metrics.json``
from rank 0's alone, while ``self.log(..., sync_dist=True)`` sent W&B the mean of the ranks'
means. This accumulator keeps every validation sample's scores as ``cat`` states, so under DDP
torchmetrics gathers them from every rank before ``compute``; samples are identified by their
index in the validation set, and a sample seen twice (DistributedSampler pads the last batch
with repeats so that every rank gets the same count) is counted once. ``frame_metrics.json`` and
the logged values are then the same numbers, over every held-out image exactly once.
"""

from __future__ import annotations

import math
import zlib

import torch
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

PER_FRAME = ("psnr", "ssim", "lpips")  # (B, F) per update
PER_SAMPLE = ("warping_error", "flicker", "input_psnr", "input_ssim", "input_lpips", "colour")


def category_id(name: str) -> int:
    """A stable, rank-independent integer for a category name (-1 is "no category")."""
    return zlib.crc32(name.encode("utf-8")) & 0x7FFFFFFF


class FrameMetricsAccumulator(Metric):
    """Per-sample validation scores; ``compute()`` gives the per-frame and per-sample means over
    the distinct samples of every rank (missing scores, e.g. LPIPS without weights, are NaN in
    the states and None in the result)."""

    full_state_update = False
    higher_is_better = None

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        for name in ("index", "category", *PER_FRAME, *PER_SAMPLE):
            self.add_state(name, default=[], dist_reduce_fx="cat")
        self.category_names: dict[int, str] = {}

    def update(
        self,
        index,
        psnr,
        ssim,
        lpips=None,
        warping_error=None,
        flicker=None,
        input_psnr=None,
        input_ssim=None,
        input_lpips=None,
        colour=None,
        category: list[str] | None = None,
    ) -> None:
        """One batch: ``index`` (B,) validation-set indices, ``psnr``/``ssim``/``lpips`` (B, F),
        the per-sample scores (B,) or None, ``category`` names (all-in-one data) or None."""
        device = self.device  # states live where the metric does (NCCL gathers CUDA tensors only)
        index = torch.as_tensor(index, dtype=torch.long).reshape(-1).to(device)
        batch, frames = psnr.shape

        def per_frame(values):
            if values is None:
                return torch.full((batch, frames), math.nan, dtype=torch.float64, device=device)
            return torch.as_tensor(values).detach().to(device, torch.float64).reshape(batch, frames)

        def per_sample(values):
            if values is None:
                return torch.full((batch,), math.nan, dtype=torch.float64, device=device)
            return torch.as_tensor(values).detach().to(device, torch.float64).reshape(batch)

        self.index.append(index)
        for name, values in (("psnr", psnr), ("ssim", ssim), ("lpips", lpips)):
            getattr(self, name).append(per_frame(values))
        values = {
            "warping_error": warping_error,
            "flicker": flicker,
            "input_psnr": input_psnr,
            "input_ssim": input_ssim,
            "input_lpips": input_lpips,
            "colour": colour,
        }
        for name in PER_SAMPLE:
            getattr(self, name).append(per_sample(values[name]))
        ids = []
        for name in category or [None] * batch:
            if name is None:
                ids.append(-1)
            else:
                ids.append(category_id(name))
                self.category_names[ids[-1]] = name
        self.category.append(torch.tensor(ids, dtype=torch.long, device=device))

    def _names(self) -> dict[int, str]:
        """Category names of every rank (each rank only saw its own samples' names)."""
        from src.utils.distributed import gather_objects

        names = dict(self.category_names)
        for part in gather_objects(names):
            names.update(part or {})
        return names

    def compute(self) -> dict:
        """{"n", "index" (the distinct samples), per-frame lists psnr/ssim/lpips, per-sample means,
        "colour_max", "categories": {name: {"psnr_last", "ssim_last", "n"}}}; ``n`` 0 when empty."""
        if isinstance(self.index, list) and not self.index:
            return {"n": 0}
        index = dim_zero_cat(self.index)
        order = torch.argsort(index, stable=True)
        first = torch.ones_like(index, dtype=torch.bool)
        first[1:] = index[order][1:] != index[order][:-1]
        keep = order[first]  # the first occurrence of every distinct sample, in index order
        out: dict = {"n": int(keep.numel()), "index": index[keep].tolist()}
        for name in PER_FRAME:
            values = dim_zero_cat(getattr(self, name))[keep]
            out[name] = None if torch.isnan(values).any() else values.mean(0).tolist()
        for name in PER_SAMPLE:
            values = dim_zero_cat(getattr(self, name))[keep]
            out[name] = None if torch.isnan(values).any() else float(values.mean())
        colour = dim_zero_cat(self.colour)[keep]
        out["colour_max"] = None if torch.isnan(colour).any() else float(colour.max())
        categories = dim_zero_cat(self.category)[keep]
        names = self._names()
        psnr_last = dim_zero_cat(self.psnr)[keep][:, -1]
        ssim_last = dim_zero_cat(self.ssim)[keep][:, -1]
        out["categories"] = {}
        for cid in sorted(set(categories.tolist()) - {-1}):
            mask = categories == cid
            out["categories"][names.get(cid, str(cid))] = {
                "psnr_last": float(psnr_last[mask].mean()),
                "ssim_last": float(ssim_last[mask].mean()),
                "n": int(mask.sum()),
            }
        return out
