"""``--help`` of every Hydra CLI lists exactly the config groups it accepts, with their real options."""

from __future__ import annotations

import importlib
import re
import sys

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from src.utils.config import CONFIG_DIR

from .conftest import group_options

# module -> its primary config (model_report composes train.yaml)
CLIS = {
    "src.train": "train",
    "src.model_report": "train",
    "src.eval": "eval",
    "src.restore": "restore",
    "src.build_dataset": "build_dataset",
    "src.prompts.__main__": "prompts",
}
ALL_GROUPS = sorted(p.name for p in CONFIG_DIR.iterdir() if p.is_dir() and any(p.glob("*.yaml")))
GROUP_LINE = re.compile(r"^  (\w+):\s+(.+?)  \[(.*)\]$")


def accepted_groups(config_name: str) -> dict[str, str]:
    """Name on the command line -> group folder, from the primary config's defaults list
    (``eval_data@data`` is ``data=`` on the command line)."""
    groups = {}
    for entry in OmegaConf.load(CONFIG_DIR / f"{config_name}.yaml").defaults:
        if isinstance(entry, str):  # _self_
            continue
        (key,) = entry.keys()
        group, _, package = key.removeprefix("override ").removeprefix("optional ").partition("@")
        if group != "hydra":
            groups[package or group] = group
    return groups


def run_help(module: str, *args: str) -> None:
    """``python -m <module> [args] --help``, in-process (with the argv rewrites of its __main__)."""
    mod = importlib.import_module(module)
    argv = [*args, "--help"]
    for rewrite in ("_alias_data_group", "_help_argv"):
        if hasattr(mod, rewrite):
            argv = getattr(mod, rewrite)(argv)
    GlobalHydra.instance().clear()
    old_argv, sys.argv = sys.argv, [module, *argv]
    try:
        with pytest.raises(SystemExit) as exit_info:
            mod.main()
    finally:
        sys.argv = old_argv
        GlobalHydra.instance().clear()
    assert exit_info.value.code in (0, None)


@pytest.fixture
def cli_help(capsys):
    def help_text(module: str, *args: str) -> str:
        capsys.readouterr()
        run_help(module, *args)
        return capsys.readouterr().out

    return help_text


def listed_groups(help_text: str) -> dict[str, tuple[list[str], str]]:
    """The ``== Config groups`` section: name -> (options, selected)."""
    lines = help_text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("== Config groups"))
    groups = {}
    for line in lines[start + 1 :]:
        if not line.strip():
            break
        match = GROUP_LINE.match(line)
        assert match, f"unparsable group line: {line!r}"
        name, options, selected = match.groups()
        groups[name] = (options.split(", "), selected)
    return groups


@pytest.mark.parametrize("module", CLIS)
def test_help_lists_exactly_the_accepted_groups_and_their_options(cli_help, module):
    config_name = CLIS[module]
    text = cli_help(module)
    accepted = accepted_groups(config_name)
    listed = listed_groups(text)
    assert sorted(listed) == sorted(accepted)
    for name, (options, _) in listed.items():
        assert options == group_options(accepted[name]), f"{config_name}.yaml help, group {name}"
    # No other group of conf/ is offered (Hydra's $APP_CONFIG_GROUPS would list them all).
    for group in set(ALL_GROUPS) - set(accepted) - set(accepted.values()) - {"hydra"}:
        assert not re.search(rf"^\s*{group}\s*[:=]", text, re.M), f"{module} --help lists {group}"
    app = "python -m " + module.removesuffix(".__main__")
    assert f"{app} [overrides] --cfg job" in text
    assert """key='"my photos/cat.png"' or 'key="my photos/cat.png"'""" in text
    assert "--multirun" in text  # $FLAGS_HELP


def test_help_omits_the_groups_of_other_clis(cli_help):
    assert "captioner" not in cli_help("src.train")
    assert "trainer" not in cli_help("src.eval")
    assert "trainer" not in cli_help("src.restore")
    assert "lora" not in cli_help("src.prompts.__main__")


def test_help_shows_the_selected_options(cli_help):
    assert listed_groups(cli_help("src.train", "task=sr"))["task"][1] == "sr"
    eval_groups = listed_groups(cli_help("src.eval", "data=paired"))  # data= is eval_data@data=
    assert eval_groups["data"] == (group_options("eval_data"), "paired")
    assert eval_groups["task"][1] == "None"  # null: the checkpoint's task
    assert listed_groups(cli_help("src.build_dataset"))["task"][1] == "required"


def test_the_documented_quoting_keeps_spaces_in_a_path():
    # Both shell forms in the help (key='"a b"' and 'key="a b"') reach Hydra as key="a b".
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("restore", overrides=['input="my photos/cat, 1 (2).png"', "ckpt=x"])
    assert cfg.input == "my photos/cat, 1 (2).png"
