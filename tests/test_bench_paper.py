"""make bench-paper's bookkeeping: its jobs are the presets' multiruns, a job with a record is
never trained again, and rank_sweep's rank 16 reuses the paper_miniature job of the same seed."""

import json
import math

import pytest
from hydra import compose, initialize_config_dir

from src.benchmarks import paper_jobs as paper

from .conftest import CONFIG_DIR


@pytest.mark.parametrize("sweep", sorted(paper.SWEEPS))
def test_bench_jobs_are_the_presets_multirun(sweep):
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=[f"experiment={sweep}"], return_hydra_config=True)
    params = {k: str(v).split(",") for k, v in cfg.hydra.sweeper.params.items()}
    spec = paper.SWEEPS[sweep]
    assert params.pop("seed") == [str(s) for s in paper.SEEDS]
    assert params == {k: [str(v) for v in values] for k, values in spec["factors"].items()}
    assert cfg.logger.wandb.group == sweep  # one W&B group per sweep
    jobs = paper.jobs(sweep, paper.SEEDS)
    settings = math.prod(len(values) for values in spec["factors"].values())
    assert len({paper.job_name(j) for j in jobs}) == len(jobs) == len(paper.SEEDS) * settings
    assert [j["seed"] for j in jobs] == sorted(
        j["seed"] for j in jobs
    )  # a partial bench covers every setting


def test_recorded_jobs_are_skipped_and_rank16_is_shared(tmp_path, monkeypatch):
    monkeypatch.setattr(paper, "RECORDS", tmp_path)

    def no_training(*args, **kwargs):
        raise AssertionError("a recorded job was trained again")

    monkeypatch.setattr(paper, "run_cli", no_training)
    base = {"task": "lowlight", "prompt": "adaptive", "seed": 1}
    recorded = {
        "overrides": base,
        "frames": [1],
        "images": {"a": {"generated": {"psnr": [1.0]}}},
        "train_minutes": 3.0,
        "base_sha256": paper.base_fingerprint(),
    }
    path = paper.record_path("paper_miniature", base)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(recorded))
    assert paper.run_job("paper_miniature", base, None) == recorded
    rank16 = {**base, "lora.rank": 16}
    shared = paper.run_job("rank_sweep", rank16, None)
    assert shared["overrides"] == rank16 and shared["images"] == recorded["images"]
    assert json.loads(paper.record_path("rank_sweep", rank16).read_text())["shared_with"].endswith(path.name)
    with pytest.raises(AssertionError, match="trained again"):
        paper.run_job("rank_sweep", {**base, "lora.rank": 4}, None)
    # a record made on another tiny base is stale: the job runs again
    path.write_text(json.dumps({**recorded, "base_sha256": "0" * 64}))
    with pytest.raises(AssertionError, match="trained again"):
        paper.run_job("paper_miniature", base, None)
