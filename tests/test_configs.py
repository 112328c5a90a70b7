"""Every config combination composes; the CLI fails with one clear message on bad input."""

from __future__ import annotations

import itertools

import pytest
from hydra import compose, initialize_config_dir

from src.data.images import BUNDLED_PHOTOS
from src.utils.config import CONFIG_DIR, PROJECT_ROOT

from .conftest import group_options, run_module


def test_build_dataset_composes_for_every_combination(tmp_path):
    from src.build_dataset import spec_from_config

    combos = list(
        itertools.product(group_options("task"), group_options("degradation"), group_options("prompt"))
    )
    # progression datasets: the three tasks of the paper (allinone trains on pairs, not clips),
    # every schedule preset (allinone is the pairs' category preset)
    combos = [(t, d, p) for t, d, p in combos if "allinone" not in (t, d)]
    assert len(combos) == 3 * 4 * 2
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        for task, degradation, prompt in combos:
            cfg = compose(
                "build_dataset", overrides=[f"task={task}", f"degradation={degradation}", f"prompt={prompt}"]
            )
            spec = spec_from_config(cfg)
            spec.validate()
            assert spec.task == task and spec.preset.name == degradation
            assert spec.out_dir == PROJECT_ROOT / "outputs" / "datasets" / f"{task}_{degradation}"
            assert "{caption}" in cfg.task.adaptive_template and cfg.task.uniform_prompt
            assert (spec.preset.mode == "interpolate") == (degradation == "interpolate")


def run_cli(*overrides, timeout=300):
    return run_module("src.build_dataset", *overrides, timeout=timeout)


def test_cli_requires_a_task_and_names_the_choices():
    result = run_cli()
    assert result.returncode != 0
    assert "task" in result.stderr and "sr" in result.stderr and "lowlight" in result.stderr


def test_cli_reports_bad_settings_in_one_line_without_traceback(tmp_path):
    result = run_cli("task=sr", f"source_dir={tmp_path / 'missing'}", f"out_dir={tmp_path / 'out'}")
    assert result.returncode == 2
    output = result.stdout + result.stderr
    assert "does not exist" in output and "Traceback" not in output
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_cli_multirun_builds_each_task(tmp_path):
    result = run_cli(
        "-m",
        "task=sr,lowlight",
        "width=128",
        "height=72",
        "clips_per_image=1",
        "num_workers=0",
        f"out_dir={tmp_path}/${{task.name}}",
        "hydra.sweep.dir=" + str(tmp_path / "sweep"),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    for task in ("sr", "lowlight"):
        lines = (tmp_path / task / "videos.txt").read_text().splitlines()
        assert len(lines) == len(BUNDLED_PHOTOS) and all(line.startswith("videos/") for line in lines)


def test_restore_eval_and_prompts_configs_compose_for_every_combination():
    """The inference CLIs' configs: every eval source x task/prompt override, every captioner x
    refiner; overrides are groups, so `task=sr` gives the task's whole config."""
    from omegaconf import OmegaConf

    sources = group_options("eval_data")
    overrides = [None, *group_options("task")]
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        for source, task in itertools.product(sources, overrides):
            chosen = [f"eval_data@data={source}", "ckpt=x"] + ([f"task={task}"] if task else [])
            cfg = compose("eval", overrides=chosen)
            data, metrics = (OmegaConf.to_container(cfg[k], resolve=True) for k in ("data", "metrics"))
            assert data["kind"] == source and metrics["crop_border"] == 0
            assert (cfg.get("task") is None) == (task is None) and (not task or cfg.task.name == task)
        for prompt in [None, *group_options("prompt")]:
            cfg = compose(
                "restore", overrides=["input=x", "ckpt=y"] + ([f"prompt={prompt}"] if prompt else [])
            )
            assert cfg.mode == "resize" and (not prompt or cfg.prompt.mode == prompt)
        combos = list(itertools.product(group_options("captioner"), group_options("refiner")))
        assert len(combos) == 3 * 2
        for captioner, refiner in combos:
            cfg = compose("prompts", overrides=["dataset=x", f"captioner={captioner}", f"refiner={refiner}"])
            roles = {k: OmegaConf.to_container(cfg[k], resolve=True) for k in ("captioner", "refiner")}
            assert roles["captioner"]["name"] == captioner and roles["refiner"]["name"] == refiner
            assert "api_key" not in roles["captioner"] and cfg.max_tokens == 226


PRESETS = [(group, name) for group in ("experiment", "debug") for name in group_options(group)]


def _leaves(node: dict, prefix: tuple = ()):
    """(key path, value) of every leaf of a plain mapping; lists and empty mappings are leaves.
    Paths are tuples: a sweeper's `lora.rank: 4,16` is one key with a dot in it."""
    for key, value in node.items():
        if isinstance(value, dict) and value:
            yield from _leaves(value, (*prefix, key))
        else:
            yield (*prefix, key), value


def _resolved(cfg, path: tuple):
    """The composed value at ``path``, interpolations resolved (KeyError if it is absent)."""
    from omegaconf import OmegaConf

    node = cfg
    for key in path:
        if key not in node:
            raise KeyError(f"{'.'.join(path)} is not in the composed config")
        node = node[key]
    return OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node


def _expected(cfg, path: tuple, value):
    """``value`` written at ``path`` of a copy of ``cfg`` and resolved there, so a preset's
    interpolation (run_name: paper_sr_${prompt.mode}_...) is evaluated in the composed config."""
    import copy

    from omegaconf import OmegaConf

    probe = copy.deepcopy(cfg)
    OmegaConf.set_struct(probe, False)
    parent = probe
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = value
    return _resolved(probe, path)


@pytest.mark.parametrize(("group", "name"), PRESETS, ids=[f"{g}={n}" for g, n in PRESETS])
def test_every_preset_wins_over_the_train_config(group, name):
    """`experiment=`/`debug=` presets override train.yaml (whose defaults list starts with _self_):
    every leaf a preset sets has the preset's value in the composed config, and each
    `override /group: option` of its defaults is the composed group."""
    from omegaconf import OmegaConf

    path = CONFIG_DIR / group / f"{name}.yaml"
    assert path.read_text().startswith("# @package _global_"), f"{path}: presets are global"
    preset = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    defaults = preset.pop("defaults", [])
    # a preset may extend another of its group (a plain name first in its defaults): the parent's
    # values and group choices hold unless this preset sets them
    for parent in [d for d in defaults if isinstance(d, str)]:
        defaults.remove(parent)
        base = OmegaConf.to_container(OmegaConf.load(CONFIG_DIR / group / f"{parent}.yaml"), resolve=False)
        inherited = [d for d in base.pop("defaults", []) if isinstance(d, dict)]
        chosen = {next(iter(d)) for d in defaults}
        defaults = [d for d in inherited if next(iter(d)) not in chosen] + defaults
        preset = OmegaConf.to_container(OmegaConf.merge(base, preset), resolve=False)
    leaves = list(_leaves(preset))
    assert leaves or defaults, f"{path} sets nothing"
    # a mandatory value (???) the user must pass: give one, and expect it
    mandatory = {key: f"/tmp/{'_'.join(key)}" for key, value in leaves if value == "???"}
    leaves = [(key, mandatory.get(key, value)) for key, value in leaves]
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(
            "train",
            overrides=[f"{group}={name}", *(f"{'.'.join(k)}={v}" for k, v in mandatory.items())],
            return_hydra_config=True,
        )
    assert cfg.hydra.runtime.choices[group] == name

    wrong = []  # every mismatch at once: "key: composed != preset"
    for key, value in leaves:
        actual, expected = _resolved(cfg, key), _expected(cfg, key, value)
        if (type(actual), actual) != (type(expected), expected):
            wrong.append(f"{'.'.join(key)}: {actual!r} != {expected!r}")

    preset_keys = {key for key, _ in leaves}
    for entry in defaults:
        ((target, option),) = entry.items()
        assert target.startswith("override /"), f"{path}: unexpected defaults entry {entry}"
        choice = target.removeprefix("override /")
        assert cfg.hydra.runtime.choices[choice] == option, f"{group}={name}: {choice}"
        # The chosen option's own values are in the composed group (unless the preset sets them).
        option_group, _, package = choice.partition("@")
        option_cfg = OmegaConf.to_container(OmegaConf.load(CONFIG_DIR / option_group / f"{option}.yaml"))
        option_cfg.pop("defaults", None)
        for key, value in _leaves(option_cfg, tuple((package or option_group).split("."))):
            actual, expected = _resolved(cfg, key), _expected(cfg, key, value)
            if key not in preset_keys and actual != expected:
                wrong.append(f"{'.'.join(key)} ({choice}={option}): {actual!r} != {expected!r}")
    assert not wrong, f"{group}={name} does not win over train.yaml: " + "; ".join(wrong)
