"""python -m src.report: curves and tables from fabricated runs' frame_metrics.json."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from src.report import collect_runs, plot_curves
from src.utils.config import PROJECT_ROOT
from tests.conftest import run_module

NO_WANDB = {"WANDB_MODE": "disabled"}


def metrics(task="lowlight", prompt="adaptive", start=10.0, step=0.8, lpips=None, n_images=5) -> dict:
    """A frame_metrics.json made by the schema's owner, as training validation makes it (9 frames,
    PSNR rising by step)."""
    from src.metrics.frame_metrics import make

    psnr = [round(start + step * i, 3) for i in range(9)]
    ssim = [round(0.30 + 0.02 * i, 4) for i in range(9)]
    return make(
        task, prompt, psnr, ssim, lpips, n_images, input_psnr=start + 0.5, input_ssim=0.29, global_step=1200
    )


def make_run(run_dir: Path, data: dict, overrides: list[str] | None = None) -> Path:
    run_dir.mkdir(parents=True)
    (run_dir / "frame_metrics.json").write_text(json.dumps(data, indent=2))
    if overrides is not None:
        (run_dir / ".hydra").mkdir()
        (run_dir / ".hydra" / "overrides.yaml").write_text("".join(f"- {item}\n" for item in overrides))
    (run_dir / "train.log").write_text("irrelevant\n")
    return run_dir


@pytest.fixture
def runs_tree(tmp_path) -> dict[str, Path]:
    """One single run (no overrides) and a two-job sweep with a failed third job."""
    single = make_run(tmp_path / "runs" / "2025-01-01_12-00-00", metrics(start=9.9, step=0.825))
    sweep = tmp_path / "multiruns" / "2025-01-02_09-00-00"
    make_run(sweep / "0", metrics(prompt="uniform", start=11.0, step=0.5), ["prompt=uniform", "lora.rank=4"])
    make_run(
        sweep / "1", metrics(prompt="adaptive", start=11.0, step=0.6), ["prompt=adaptive", "lora.rank=4"]
    )
    (sweep / "2").mkdir()
    (sweep / "2" / "FAILED.txt").write_text("RuntimeError: out of memory\n")
    return {"single": single, "sweep": sweep}


def table_rows(markdown: str, heading: str) -> list[list[str]]:
    """The body rows of the first table after ``heading``, split into cells."""
    section = markdown.split(heading, 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]] for line in lines[2:]]


def assert_png(path: Path) -> None:
    assert path.is_file() and path.stat().st_size > 0
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert image.format == "PNG" and image.width > 100 and image.height > 100


def test_cli_reports_a_run_and_a_sweep(runs_tree, tmp_path):
    out = tmp_path / "report"
    result = run_module(
        "src.report",
        str(runs_tree["single"]),
        str(runs_tree["sweep"]),
        "--out",
        str(out),
        "--title",
        "T1",
        env_extra=NO_WANDB,
    )
    assert result.returncode == 0, result.stderr
    for name in ("psnr_vs_frame.png", "ssim_vs_frame.png", "figure.png"):
        assert_png(out / name)
    assert not (out / "lpips_vs_frame.png").exists(), "all LPIPS are null: no LPIPS figure"
    assert not (out / "wandb").exists()

    markdown = (out / "report.md").read_text()
    assert markdown.startswith("# T1\n") and "(figure.png)" in markdown and "(psnr_vs_frame.png)" in markdown
    rows = table_rows(markdown, "## Runs")
    assert [row[0] for row in rows] == [
        "lowlight adaptive 2025-01-01_12-00-00",
        "prompt=uniform lora.rank=4",
        "prompt=adaptive lora.rank=4",
    ]
    single = dict(
        zip(
            ["label", "task", "prompt", "n", "step", "input", "arrow", "mean", "ssim", "lpips"],
            rows[0],
            strict=True,
        )
    )
    assert (single["task"], single["prompt"], single["n"], single["step"]) == (
        "lowlight",
        "adaptive",
        "5",
        "1200",
    )
    assert single["input"] == "10.40"
    assert single["arrow"] == "9.90 → 16.50"  # 9.9 + 8 * 0.825
    assert single["mean"] == f"{sum(9.9 + 0.825 * i for i in range(1, 9)) / 8:.2f}"
    assert single["ssim"] == "0.4600" and single["lpips"] == "–"
    assert rows[1][6] == "11.00 → 15.00" and rows[2][6] == "11.00 → 15.80"
    per_frame = table_rows(markdown, "## PSNR (dB) per frame")
    assert per_frame[0][1:] == [f"{9.9 + 0.825 * i:.2f}" for i in range(9)]
    assert "LPIPS is null in every run" in markdown
    assert "failed sweep job" in markdown and "2025-01-02_09-00-00/2" in markdown

    report = json.loads((out / "report.json").read_text())
    assert [run["label"] for run in report["runs"]] == [row[0] for row in rows]
    assert report["runs"][1]["overrides"] == ["prompt=uniform", "lora.rank=4"]
    assert report["figures"]["lpips"] is None and report["figures"]["combined"] == "figure.png"
    assert report["runs"][0]["psnr"] == metrics(start=9.9, step=0.825)["psnr"]


def test_lpips_figure_has_only_the_runs_with_lpips(tmp_path):
    with_lpips = make_run(tmp_path / "a", metrics(lpips=[0.6 - 0.05 * i for i in range(9)]), ["lora.rank=8"])
    without = make_run(tmp_path / "b", metrics(), ["lora.rank=16"])
    out = tmp_path / "report"
    result = run_module("src.report", str(with_lpips), str(without), "--out", str(out), env_extra=NO_WANDB)
    assert result.returncode == 0, result.stderr
    assert_png(out / "lpips_vs_frame.png")
    markdown = (out / "report.md").read_text()
    rows = {row[0]: row for row in table_rows(markdown, "## Runs")}
    assert rows["lora.rank=8"][9] == "0.2000" and rows["lora.rank=16"][9] == "–"
    assert "left out of the LPIPS plot (null LPIPS): lora.rank=16" in markdown


def test_collect_runs_reads_files_and_sweeps_and_makes_labels_unique(tmp_path):
    first = make_run(tmp_path / "sweep1" / "0", metrics(), ["task=sr"])
    make_run(tmp_path / "sweep2" / "0", metrics(start=12.0), ["task=sr"])
    no_overrides = make_run(tmp_path / "x" / "run", metrics(task="deblur", prompt="uniform"))
    runs = collect_runs([first / "frame_metrics.json", tmp_path / "sweep2", first, no_overrides])
    assert len(runs) == 3, "a run given twice is read once"
    labels = [run["label"] for run in runs]
    assert len(set(labels)) == 3 and labels[2] == "deblur uniform run"
    assert all(label.startswith("task=sr") for label in labels[:2])
    assert runs[1]["psnr_first"] == 12.0 and runs[0]["psnr_mean_f2"] == pytest.approx(
        sum(runs[0]["psnr"][1:]) / 8
    )
    assert plot_curves(runs, "lpips", tmp_path / "none.png") is None and not (tmp_path / "none.png").exists()
    assert plot_curves(runs, "psnr", tmp_path / "psnr.png") == tmp_path / "psnr.png"
    assert_png(tmp_path / "psnr.png")


@pytest.mark.parametrize(
    "case, message",
    [
        ("missing", "no such file or directory"),
        ("empty", "no frame_metrics.json found under"),
        ("bad_json", "malformed"),
        ("bad_schema", "malformed"),
    ],
)
def test_errors_are_one_line_with_exit_code_2(tmp_path, case, message):
    path = tmp_path / case
    if case == "empty":
        (path / "some" / "dir").mkdir(parents=True)
    elif case == "bad_json":
        path.mkdir()
        (path / "frame_metrics.json").write_text('{"psnr": [1, 2,')
    elif case == "bad_schema":
        make_run(path, {**metrics(), "ssim": [0.5, "high"]})
    result = run_module("src.report", str(path), "--out", str(tmp_path / "out"), env_extra=NO_WANDB)
    assert result.returncode == 2
    stderr = result.stderr.strip()
    assert len(stderr.splitlines()) == 1 and "Traceback" not in result.stderr
    assert stderr.startswith("error: ") and message in stderr
    if case.startswith("bad"):
        assert str(path / "frame_metrics.json") in stderr, "the message names the file"
    assert not (tmp_path / "out").exists()


def test_wandb_is_not_imported_unless_online(runs_tree, tmp_path):
    code = (
        "import sys; from src.report import main; "
        f"rc = main([{str(runs_tree['single'])!r}, '--out', {str(tmp_path / 'o')!r}]); "
        "print(rc, 'wandb' in sys.modules)"
    )
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "WANDB_MODE": "offline"}  # offline is not online
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "0 False"


def test_wandb_flag_logs_the_report_through_the_wandb_client(runs_tree, tmp_path, monkeypatch, capsys):
    """--wandb: one W&B run (job_type report) whose single log call carries the summary table
    (the same rows as report.md) and every figure the report wrote, then finish()."""
    import types

    from src.report import main, summary_rows

    calls: dict = {"log": []}

    class Run:
        url, name = None, "report-run"

        def log(self, payload):
            calls["log"].append(payload)

        def finish(self):
            calls["finished"] = True

    fake = types.SimpleNamespace(
        init=lambda **kwargs: calls.setdefault("init", kwargs) and Run(),
        Table=lambda columns, data: {"columns": columns, "data": data},
        Image=lambda path: {"image": path},
    )
    monkeypatch.setitem(sys.modules, "wandb", fake)
    out = tmp_path / "report"
    assert main([str(runs_tree["sweep"]), "--out", str(out), "--wandb", "--wandb-project", "proj"]) == 0
    assert "logged to W&B: report-run" in capsys.readouterr().out
    assert calls["init"]["project"] == "proj" and calls["init"]["job_type"] == "report"
    assert calls.get("finished") and len(calls["log"]) == 1
    payload = calls["log"][0]
    header, rows = summary_rows(collect_runs([runs_tree["sweep"]]))
    assert payload["report/runs"] == {"columns": header, "data": rows} and len(rows) == 2
    figures = {key: value["image"] for key, value in payload.items() if key != "report/runs"}
    assert figures == {
        f"report/{name}": str(out / f"{name}.png") for name in ("psnr_vs_frame", "ssim_vs_frame", "figure")
    }
    assert all(Path(path).is_file() for path in figures.values())


def test_labels_are_short_and_can_be_given(tmp_path):
    from src.report import override_label

    label = override_label(
        [
            "ckpt=outputs/runs/train/bench_1/",
            "eval_data@data=paired",
            "data.lq_dir=/tmp/x/lq",
            "wandb=false",
            "mode=tiled",
        ]
    )
    assert label == "ckpt=bench_1 data=paired data.lq_dir=lq mode=tiled"
    make_run(tmp_path / "a", metrics())
    make_run(tmp_path / "b", metrics(prompt="uniform"))
    result = run_module(
        "src.report", str(tmp_path / "a"), str(tmp_path / "b"), "--label", "first", "--label", "second",
        "--out", str(tmp_path / "out"), env_extra=NO_WANDB,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = (tmp_path / "out" / "report.md").read_text()
    assert "| first |" in report and "| second |" in report
    wrong = run_module(
        "src.report", str(tmp_path / "a"), "--label", "x", "--label", "y", "--out", str(tmp_path / "o2"),
        env_extra=NO_WANDB,
    )  # fmt: skip
    assert wrong.returncode == 2 and "2 --label given for 1 run(s)" in wrong.stderr
