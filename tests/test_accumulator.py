"""src.metrics.accumulator: validation scores over every rank's samples, each sample once."""

from __future__ import annotations

import math
import os
import socket

import pytest
import torch
import torch.multiprocessing as mp

from src.metrics.accumulator import FrameMetricsAccumulator

FRAMES = 3


def sample(i: int) -> dict:
    """Scores of validation sample i: distinct per sample, so a miscount changes the means."""
    return {
        "psnr": torch.tensor([[10.0 + i, 20.0 + i, 30.0 + 2 * i]]),
        "ssim": torch.tensor([[0.1 * i, 0.2, 0.3 + 0.01 * i]]),
        "warping_error": [0.5 * i],
        "colour": [float(i * i)],
        "category": ["noise" if i % 2 else "blur"],
    }


def feed(metric: FrameMetricsAccumulator, indices: list[int]) -> None:
    for i in indices:
        s = sample(i)
        metric.update([i], s["psnr"], s["ssim"], warping_error=s["warping_error"], colour=s["colour"],
                      category=s["category"])  # fmt: skip


def expected(indices: list[int]) -> dict:
    distinct = sorted(set(indices))
    psnr = torch.cat([sample(i)["psnr"] for i in distinct]).double().mean(0).tolist()
    return {
        "n": len(distinct),
        "psnr": psnr,
        "warping_error": sum(0.5 * i for i in distinct) / len(distinct),
        "colour_max": float(max(i * i for i in distinct)),
        "noise_n": sum(1 for i in distinct if i % 2),
    }


def test_duplicates_count_once_and_missing_scores_are_none():
    metric = FrameMetricsAccumulator()
    feed(metric, [0, 1, 2, 3, 4, 0])  # 0 twice: a padded repeat
    out = metric.compute()
    want = expected([0, 1, 2, 3, 4])
    assert out["n"] == 5 and out["index"] == [0, 1, 2, 3, 4]
    assert out["psnr"] == pytest.approx(want["psnr"]) and len(out["ssim"]) == FRAMES
    assert out["warping_error"] == pytest.approx(want["warping_error"])
    assert out["colour_max"] == want["colour_max"]
    assert out["lpips"] is None and out["flicker"] is None and out["input_psnr"] is None
    assert out["categories"]["noise"]["n"] == want["noise_n"] and out["categories"]["blur"]["n"] == 3
    assert out["categories"]["noise"]["psnr_last"] == pytest.approx((30 + 2 + 30 + 6) / 2)
    metric.reset()
    assert metric.compute()["n"] == 0


def _rank(rank: int, world: int, port: int, shards: list[list[int]], results) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.distributed.init_process_group("gloo", rank=rank, world_size=world)
    try:
        metric = FrameMetricsAccumulator()
        feed(metric, shards[rank])
        out = metric.compute()
        results[rank] = {k: out[k] for k in ("n", "index", "psnr", "warping_error", "colour_max")} | {
            "categories": out["categories"]
        }
    finally:
        torch.distributed.destroy_process_group()


def test_two_ranks_give_the_single_process_answer():
    """Two gloo processes, the second holding a padded repeat of the first's sample 0 (as
    DistributedSampler pads 5 samples to 6) and every 'noise' sample: both ranks compute the
    means over all five samples, once each, with every category's name."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    shards = [[0, 2, 4], [1, 3, 0]]
    with mp.Manager() as manager:
        results = manager.dict()
        mp.spawn(_rank, args=(2, port, shards, results), nprocs=2, join=True)
        results = dict(results)
    want = expected([0, 1, 2, 3, 4])
    for rank in (0, 1):
        out = results[rank]
        assert out["n"] == 5 and out["index"] == [0, 1, 2, 3, 4], (rank, out)
        assert out["psnr"] == pytest.approx(want["psnr"])
        assert out["warping_error"] == pytest.approx(want["warping_error"])
        assert out["colour_max"] == want["colour_max"]
        assert set(out["categories"]) == {"blur", "noise"}  # rank 0 saw no 'noise' sample itself
        assert not math.isnan(out["categories"]["noise"]["psnr_last"])
