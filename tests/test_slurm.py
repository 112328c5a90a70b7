"""Sweeps as submitit jobs (hydra/launcher=slurm|local): resources derived from the trainer
config, and a job preempted mid-training that requeues, resumes by itself and ends with the
uninterrupted job's weights."""

from __future__ import annotations

import json

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from src.utils.config import CONFIG_DIR

from .test_train import FAST, lora_tensors, run_train


def _launcher(overrides: list[str]) -> dict:
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=overrides, return_hydra_config=True)
    return OmegaConf.to_container(cfg.hydra.launcher, resolve=True)


def test_slurm_launcher_takes_tasks_and_gpus_from_the_trainer_and_writes_the_sbatch(tmp_path, monkeypatch):
    monkeypatch.setenv("PROGRESTORE_SLURM_PARTITION", "gpu-long")
    monkeypatch.setenv("PROGRESTORE_SLURM_ACCOUNT", "vision")
    params = _launcher(["hydra/launcher=slurm", "trainer=ddp", "trainer.devices=4", "trainer.num_nodes=2"])
    assert (params["nodes"], params["tasks_per_node"], params["gpus_per_node"]) == (2, 4, 4)
    assert (params["partition"], params["account"], params["qos"]) == ("gpu-long", "vision", None)
    assert params["max_num_timeout"] > 0, "time-outs requeue"
    from submitit.slurm.slurm import _make_sbatch_string

    # the sbatch script submitit would submit (no SLURM here: the text is what is checked)
    script = _make_sbatch_string(
        command="python -m src.train",
        folder=tmp_path,
        nodes=params["nodes"],
        ntasks_per_node=params["tasks_per_node"],
        gpus_per_node=params["gpus_per_node"],
        partition=params["partition"],
        account=params["account"],
        signal_delay_s=params["signal_delay_s"],
        time=params["timeout_min"],
    )
    for line in (
        "#SBATCH --nodes=2",
        "#SBATCH --ntasks-per-node=4",
        "#SBATCH --gpus-per-node=4",
        "#SBATCH --partition=gpu-long",
        "#SBATCH --account=vision",
        f"#SBATCH --signal=USR2@{params['signal_delay_s']}",
    ):
        assert line in script, (line, script)
    with pytest.raises(Exception, match="trainer.devices as a number"):
        _launcher(["hydra/launcher=slurm", "trainer=ddp"])  # devices: -1 (all visible) is no task count


@pytest.mark.slow
def test_local_submitit_sweep_requeues_a_preempted_job_which_resumes_to_the_same_weights(tmp_path):
    result = run_train(
        "-m",
        "hydra/launcher=local",
        *FAST,
        "lr_scheduler.total_steps=4",
        "callbacks.model_checkpoint.every_n_train_steps=100",  # only the preemption's checkpoint
        "trainer.check_val_every_n_epoch=100",
        "validate=false",
        "logger=csv",
        "callbacks.preemption.rehearse_at_step=null,2",  # job 1 gets the preemption signal at step 2
        f"hydra.sweep.dir={tmp_path}",
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    straight, preempted = tmp_path / "0", tmp_path / "1"
    assert (preempted / "checkpoints" / ".preemption_rehearsed").is_file()
    log = (preempted / "train.log").read_text()
    assert "preempted at step 2" in log and "resuming from" in log, log[-2000:]
    submitit_logs = "".join(p.read_text() for p in (tmp_path / ".submitit").rglob("*.err"))
    assert "Requeued job" in submitit_logs
    assert "preempted" not in (straight / "train.log").read_text()
    for job in (straight, preempted):
        assert json.loads((job / "run_summary.json").read_text())["global_step"] == 4
        assert not (job / "checkpoints" / ".preempted.json").exists(), (
            "the finished run is no longer resumable"
        )
    reference, resumed = lora_tensors(straight), lora_tensors(preempted)
    assert reference.keys() == resumed.keys()
    for key in reference:
        assert torch.equal(reference[key], resumed[key]), key


def test_wandb_run_id_follows_the_run_dir_so_a_requeued_job_logs_into_the_same_run(tmp_path):
    from src.utils.config import wandb_run_id

    def logger(run_dir):
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
            cfg = compose("train", overrides=[f"paths.run_dir={run_dir}"])
        return OmegaConf.to_container(cfg.logger.wandb, resolve=True)

    first, again, other = logger(tmp_path / "a"), logger(tmp_path / "a"), logger(tmp_path / "b")
    assert first["id"] == again["id"] == wandb_run_id(tmp_path / "a") and first["resume"] == "allow"
    assert other["id"] != first["id"]
