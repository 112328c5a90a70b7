"""Typed options, checked once at the entry point whatever input they meet (issue 30, item 4):
the memory plan's geometry and batch size, a preset's mandatory value named as the user types it,
and a launcher whose cluster programs are missing. Each case runs the CLI's real ``__main__``
through :func:`tests.test_bad_inputs.cli` (recorded for ``make bench-errors`` like the rest of the
bad-input suite) and asserts exit 2, ONE ``error:`` line naming the culprit, no traceback, and
that nothing was written (no report, no trained run, no sweep)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.test_bad_inputs import assert_user_error, cli, out, slug


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("bad_options")


# --- src.model_report: every option the memory plan reads ----------------------------------------

MODEL_REPORT_CASES = [
    ("data.batch_size=0", "error: data.batch_size must be >= 1, got 0"),
    ("data.batch_size=-1", "error: data.batch_size must be >= 1, got -1"),
    ("data.batch_size=1.5", "error: data.batch_size=1.5 must be an integer"),
    ("data.batch_size=abc", "error: data.batch_size=abc must be an integer"),
    ("model.frames=nine", "error: model.frames=nine must be an integer"),
    ("model.frames=2.5", "error: model.frames=2.5 must be an integer"),
    ("model.frames=0", "error: frames must be 4k+1 (e.g. 9, 13, 49), got 0"),
    ("model.frames=8", "error: frames must be 4k+1 (e.g. 9, 13, 49), got 8"),
    ("model.height=-8", "model.height and model.width must be positive, each a multiple of 8; got -8x112"),
    ("model.height=100", "model.height and model.width must be positive, each a multiple of 8; got 100x112"),
    ("model.height=abc", "error: model.height=abc must be an integer"),
    ("model.width=0", "model.height and model.width must be positive, each a multiple of 8; got 64x0"),
    ("model.width=1.5", "error: model.width=1.5 must be an integer"),
    ("lora.rank=0", "error: lora.rank must be >= 1, got 0"),
    ("lora.rank=-2", "error: lora.rank must be >= 1, got -2"),
    ("lora.rank=1.5", "error: lora.rank=1.5 must be an integer"),
    ("model.sampling.guidance_scale=abc", "error: model.sampling.guidance_scale=abc must be a number"),
]


@pytest.mark.parametrize(("override", "line"), MODEL_REPORT_CASES, ids=[c[0] for c in MODEL_REPORT_CASES])
def test_model_report_refuses_a_bad_geometry_or_batch_and_writes_no_report(work, override, line):
    run = work / "runs" / f"mr_{slug(override)}"
    error = assert_user_error(cli("src.model_report", override, f"hydra.run.dir={run}"), line)
    assert error.startswith("error: ")
    assert not (run / "model_report.json").exists(), "no report of a plan that cannot run"


@pytest.mark.parametrize(
    ("overrides", "line"),
    [
        (["trainer=fsdp", "trainer.devices=0"], "error: trainer.devices must be >= 1, got 0"),
        (["trainer=fsdp", "trainer.devices=two"], "error: trainer.devices=two must be an integer"),
        (["trainer=fsdp", "trainer.num_nodes=-1"], "error: trainer.num_nodes must be >= 1, got -1"),
        (
            ["model=cogvideox_5b_i2v", "model.dtype=int8"],  # was a KeyError traceback
            "error: model.dtype must be one of float32, bfloat16, float16, got int8",
        ),
        (
            ["model=wan2.2_ti2v_5b", "data.batch_size=0"],
            "error: data.batch_size must be >= 1, got 0",
        ),
    ],
)
def test_model_report_refuses_a_sharded_plan_or_a_real_model_option(work, overrides, line):
    run = work / "runs" / f"mr_{slug(overrides)}"
    assert_user_error(cli("src.model_report", *overrides, f"hydra.run.dir={run}"), line)
    assert not (run / "model_report.json").exists()


def test_model_report_still_writes_a_good_plan(work):
    run = work / "runs" / "mr_good"
    result = cli("src.model_report", "data.batch_size=2", "model.frames=13", f"hydra.run.dir={run}")
    assert result.code == 0, result.stderr[-2000:]
    assert not result.errors and (run / "model_report.json").is_file()


@pytest.mark.parametrize("value", ["0", "-1", "1.5", "abc"])
def test_train_and_model_report_refuse_a_bad_batch_size_with_the_same_line(work, value):
    train_run = work / "runs" / f"train_bs_{slug(value)}"
    train = assert_user_error(
        cli("src.train", f"data.batch_size={value}", "logger=none", f"hydra.run.dir={train_run}"),
        "data.batch_size",
    )
    report = assert_user_error(
        cli("src.model_report", f"data.batch_size={value}", out(work, f"mr_bs_{slug(value)}")),
        "data.batch_size",
    )
    assert train == report
    assert not (train_run / "checkpoints").exists()


# --- a preset's mandatory value: experiment=vbridge*_drift needs drift.stage1= -------------------

DRIFT_PRESETS = {"vbridge_tiny_drift": "vbridge_tiny", "vbridge_drift": "vbridge"}


@pytest.mark.parametrize("module", ["src.train", "src.model_report"])
@pytest.mark.parametrize("preset", sorted(DRIFT_PRESETS))
@pytest.mark.parametrize("value", [None, "", "null"], ids=["unset", "empty", "null"])
def test_a_drift_preset_without_its_stage1_names_it_as_typed(work, module, preset, value):
    run = work / "runs" / f"preset_{slug((module, preset, value))}"
    stage1 = [] if value is None else [f"drift.stage1={value}"]
    result = cli(module, f"experiment={preset}", *stage1, "logger=none", f"hydra.run.dir={run}")
    line = assert_user_error(result, f"experiment={preset}", "drift.stage1=")
    assert line == (
        f"error: experiment={preset} needs drift.stage1=<stage-1 run dir> "
        f"(the run of experiment={DRIFT_PRESETS[preset]})"
    )
    assert "None/drift/pairs" not in result.stderr, "no derived value was used"
    assert not (run / "checkpoints").exists() and not (run / "model_report.json").exists()


def _not_a_paired_run(root: Path) -> Path:
    """A run dir (its saved .hydra/config.yaml) trained on progression clips, not on pairs."""
    saved = root / ".hydra" / "config.yaml"
    saved.parent.mkdir(parents=True, exist_ok=True)
    saved.write_text("data:\n  _target_: src.data.datamodule.ProgressionDataModule\n")
    return root


@pytest.mark.parametrize("module", ["src.train", "src.model_report"])
@pytest.mark.parametrize("preset", sorted(DRIFT_PRESETS))
def test_a_drift_stage1_that_is_no_stage1_run_is_one_line(work, module, preset):
    missing = work / "no_such_stage1"
    plain = work / "plain_folder"
    plain.mkdir(exist_ok=True)
    synthetic = _not_a_paired_run(work / "synthetic_run")
    cases = [
        (missing, "does not exist"),
        (plain, "is not a training run dir"),
        (synthetic, "not on pairs"),
    ]
    for stage1, culprit in cases:
        run = work / "runs" / f"stage1_{slug((module, preset, stage1.name))}"
        result = cli(
            module, f"experiment={preset}", f"drift.stage1={stage1}", "logger=none", f"hydra.run.dir={run}"
        )
        assert_user_error(result, f"drift.stage1={stage1}", culprit)
        assert not (run / "checkpoints").exists() and not (run / "model_report.json").exists()
    assert not (missing / "drift").exists() and not (plain / "drift").exists(), "no stage-1 outputs were made"


def test_a_sweep_of_a_drift_preset_without_stage1_fails_each_job_with_the_line(work):
    sweep = work / "sweep_drift"
    result = cli("src.train", "-m", "experiment=vbridge_tiny_drift", "seed=0,1", f"hydra.sweep.dir={sweep}")
    assert result.code == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert "2 job(s), 0 done, 2 failed" in result.stderr
    for job in ("0", "1"):
        assert "experiment=vbridge_tiny_drift needs drift.stage1=" in (sweep / job / "FAILED.txt").read_text()
        assert not (sweep / job / "checkpoints").exists()


def test_every_preset_mandatory_value_is_found_and_only_when_missing(tmp_path):
    """Every experiment preset composed as a user would: exactly the drift presets need a value."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from src.utils.cli import ConfigError
    from src.utils.config import CONFIG_DIR, check_mandatory_values

    needing = set()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        for preset in sorted(p.stem for p in (CONFIG_DIR / "experiment").glob("*.yaml")):
            for extra in ([], [f"drift.stage1={tmp_path}"]):
                cfg = compose(
                    "train",
                    overrides=[f"experiment={preset}", f"paths.run_dir={tmp_path}", *extra],
                    return_hydra_config=True,
                )
                choices = OmegaConf.to_container(cfg.hydra.runtime.choices)
                try:
                    check_mandatory_values(cfg, choices)
                except ConfigError as err:
                    assert not extra, err
                    assert str(err).startswith(f"experiment={preset} needs drift.stage1=")
                    needing.add(preset)
    assert needing == set(DRIFT_PRESETS)


# --- hydra/launcher=slurm without SLURM's programs ------------------------------------------------


def _bin(root: Path, *programs: str) -> Path:
    """A PATH folder holding exactly ``programs`` (fakes that exit 0)."""
    root.mkdir(parents=True, exist_ok=True)
    for program in programs:
        path = root / program
        path.write_text("#!/bin/sh\nexit 0\n")
        path.chmod(0o755)
    return root


SLURM_LINE = (
    "error: hydra/launcher=slurm needs SLURM's tools (sbatch, srun) on PATH (missing here: {}): "
    "run it on the cluster's login node, or use hydra/launcher=local"
)


@pytest.mark.parametrize(
    "args",
    [
        ["src.train", "-m", "hydra/launcher=slurm", "trainer.max_steps=1"],
        [
            "src.train",
            "--multirun",
            "hydra/launcher=slurm",
            "trainer=ddp",
            "trainer.devices=4",
            "lora.rank=4,8",
        ],
        ["src.train", "hydra.mode=MULTIRUN", "hydra/launcher=slurm", "trainer.max_steps=1"],
        ["src.build_dataset", "-m", "task=sr,deblur", "hydra/launcher=slurm"],
    ],
    ids=["train", "train_sweep", "train_hydra_mode", "build_dataset_sweep"],
)
def test_slurm_launcher_without_sbatch_and_srun_is_one_line_before_any_job(work, args):
    empty = _bin(work / "bin_empty")
    assert shutil.which("sbatch", path=str(empty)) is None and shutil.which("srun", path=str(empty)) is None
    sweep = work / "sweeps" / slug(args)
    module, *rest = args
    result = cli(module, *rest, f"hydra.sweep.dir={sweep}", env={"PATH": str(empty)})
    line = assert_user_error(result, "hydra/launcher=slurm", "sbatch", "srun", "hydra/launcher=local")
    assert line == SLURM_LINE.format("sbatch, srun")
    assert not sweep.exists(), "no job was launched, no sweep dir made"


def test_slurm_launcher_names_the_one_program_that_is_missing(work):
    only_sbatch = _bin(work / "bin_sbatch", "sbatch")
    sweep = work / "sweeps" / "only_sbatch"
    result = cli(
        "src.train",
        "-m",
        "hydra/launcher=slurm",
        "trainer.max_steps=1",
        f"hydra.sweep.dir={sweep}",
        env={"PATH": str(only_sbatch)},
    )
    assert assert_user_error(result, "srun") == SLURM_LINE.format("srun")
    assert not sweep.exists()


def test_launcher_check_passes_with_slurm_tools_and_ignores_what_launches_nothing(tmp_path, monkeypatch):
    """With sbatch and srun on PATH (fakes) the check lets the sweep go on; a single run, a local
    launcher and Hydra's own flags (--help, --cfg) are never refused."""
    from src.utils.cli import MissingToolError, check_launcher_tools

    monkeypatch.setenv("PATH", str(_bin(tmp_path / "slurm_bin", "sbatch", "srun")))
    check_launcher_tools("train", ["-m", "hydra/launcher=slurm", "trainer.max_steps=1"])
    monkeypatch.setenv("PATH", str(_bin(tmp_path / "empty_bin")))
    with pytest.raises(MissingToolError, match="missing here: sbatch, srun"):
        check_launcher_tools("train", ["-m", "hydra/launcher=slurm"])
    for args in (
        ["hydra/launcher=slurm", "trainer.max_steps=1"],  # one run: in this process, no launcher
        ["-m", "hydra/launcher=local", "trainer.max_steps=1"],
        ["-m", "hydra/launcher=slurm", "--cfg", "job"],
        ["hydra/launcher=slurm", "--help"],
    ):
        check_launcher_tools("train", args)
    assert os.environ["PATH"] == str(tmp_path / "empty_bin")
