"""Two processes on the CPU (trainer=ddp_cpu, gloo): DDP trains, validates, resumes and sweeps as
one process would -- the same weights on every rank, every held-out image scored once with the
noise one process would draw, a resume equal to the uninterrupted run, each sweep job run once."""

from __future__ import annotations

import json

import pytest
import torch

from .conftest import SHARED_DIR
from .test_train import FAST, lora_tensors, run_train

DDP = [
    *FAST,
    "trainer=ddp_cpu",
    "logger=csv",
    "lr_scheduler.total_steps=4",
    "trainer.check_val_every_n_epoch=100",  # validation once, at the end
    "metrics.temporal=false",
    f"data.val_source_dir={SHARED_DIR / 'data' / 'set5'}",  # 5 images: 3 per rank, one padded repeat
]


def _ok(result):
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


@pytest.mark.slow
def test_ddp_ranks_agree_validation_scores_each_image_once_and_resume_is_exact(tmp_path, shared_dir):
    _ok(run_train(*DDP, f"hydra.run.dir={tmp_path / 'ddp'}"))
    summary = json.loads((tmp_path / "ddp" / "run_summary.json").read_text())
    sync = summary["ddp"]
    assert sync["world_size"] == 2 and sync["in_sync"], sync
    assert sync["trainable_sha256"][0] == sync["trainable_sha256"][1], "bit-identical LoRA on both ranks"
    metrics = json.loads((tmp_path / "ddp" / "frame_metrics.json").read_text())
    assert metrics["n_images"] == 5, "every Set5 image once (DistributedSampler pads rank 1 with a repeat)"
    assert metrics == summary["frame_metrics"]

    # one process scoring the same weights: the same numbers (noise seeded by the image's place)
    _ok(
        run_train(
            *[o for o in DDP if o != "trainer=ddp_cpu"],
            "train=false",
            "export_lora=false",
            f"ckpt_path={tmp_path / 'ddp' / 'checkpoints' / 'last.ckpt'}",
            f"hydra.run.dir={tmp_path / 'one'}",
        )
    )
    single = json.loads((tmp_path / "one" / "frame_metrics.json").read_text())
    assert single["n_images"] == 5
    assert single["psnr"] == pytest.approx(metrics["psnr"], abs=1e-3)
    assert single["ssim"] == pytest.approx(metrics["ssim"], abs=1e-4)

    # a DDP run resumed from the step-2 checkpoint ends with the uninterrupted run's weights
    _ok(
        run_train(
            *DDP,
            "validate=false",
            f"ckpt_path={tmp_path / 'ddp' / 'checkpoints' / 'step000002.ckpt'}",
            f"hydra.run.dir={tmp_path / 'resumed'}",
        )
    )
    reference, resumed = lora_tensors(tmp_path / "ddp"), lora_tensors(tmp_path / "resumed")
    assert resumed.keys() == reference.keys()
    for key in reference:
        assert torch.equal(resumed[key], reference[key]), key


@pytest.mark.slow
def test_multirun_sweep_of_ddp_jobs_runs_each_job_once(tmp_path, shared_dir):
    """Lightning re-launches ranks with sys.argv: with -m each child re-ran the whole sweep (its
    rank-1 process of job 0 trained job 1's config, and the collectives mismatched)."""
    result = run_train(
        "-m",
        *DDP,
        "trainer.max_steps=2",
        "validate=false",
        "lora.rank=2,4",
        f"hydra.sweep.dir={tmp_path}",
        timeout=300,  # the sweep takes about 30 s; a re-run sweep in the children hangs
    )
    _ok(result)
    jobs = sorted(p for p in tmp_path.iterdir() if p.is_dir() and not p.name.startswith("."))
    assert [j.name for j in jobs] == ["0", "1"], jobs
    for job, rank in zip(jobs, (2, 4), strict=True):
        summary = json.loads((job / "run_summary.json").read_text())
        assert summary["ddp"]["in_sync"] and summary["global_step"] == 2
        assert json.loads((job / "lora" / "lora_config.json").read_text())["r"] == rank
    assert "2 job(s), 2 done, 0 failed" in result.stderr
