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

from src.reporting.figures import plot_curves
from src.reporting.runs import collect_runs
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

    from src.report import main
    from src.reporting.tables import summary_rows

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
    from src.reporting.runs import override_label

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


# --- all-in-one restoration: per-category results -----------------------------------------------
def categories() -> dict:
    """Three categories: blur (a baseline and a drift run), noise (neither; stage 1 loses to the
    input), haze (a drift run, no baseline, no LPIPS)."""
    return {
        "blur": {
            "n_images": 4,
            "psnr": [20.5, 23.0, 24.0],
            "ssim": [0.56, 0.66, 0.70],
            "lpips": [0.48, 0.35, 0.30],
            "last": {"psnr": 24.0, "ssim": 0.70, "lpips": 0.30},
            "input": {"psnr": 20.0, "ssim": 0.55, "lpips": 0.50},
            "baseline": {"name": "wiener", "psnr": 22.5, "ssim": 0.62, "lpips": None},
            "drift": {"psnr": [24.5, 25.0], "ssim": [0.72, 0.74], "lpips": [0.29, 0.28], "last": {"psnr": 25, "ssim": 0.74, "lpips": 0.28}},
        },
        "noise": {
            "n_images": 3,
            "psnr": [27.0, 27.2, 27.5],
            "ssim": [0.79, 0.80, 0.80],
            "lpips": [0.22, 0.21, 0.20],
            "last": {"psnr": 27.5, "ssim": 0.80, "lpips": 0.20},
            "input": {"psnr": 28.0, "ssim": 0.82, "lpips": 0.18},
        },
        "haze": {
            "n_images": 5,
            "psnr": [15.5, 19.0, 21.0],
            "ssim": [0.61, 0.70, 0.75],
            "lpips": None,
            "last": {"psnr": 21.0, "ssim": 0.75, "lpips": None},
            "input": {"psnr": 15.0, "ssim": 0.60, "lpips": None},
            "drift": {"psnr": [21.2, 21.6], "ssim": [0.76, 0.77], "lpips": None, "last": {"psnr": 21.6, "ssim": 0.77, "lpips": None}},
        },
    }  # fmt: skip


def all_in_one_metrics(cats: dict | None = None) -> dict:
    return {**metrics(task="allinone"), "categories": categories() if cats is None else cats}


def test_frame_metrics_reads_and_summarizes_categories(tmp_path):
    from src.metrics.frame_metrics import read, summarize_categories, write

    data = read(write(tmp_path, all_in_one_metrics()))
    cats = data["categories"]
    assert list(cats) == ["blur", "noise", "haze"]
    assert cats["blur"]["drift"]["last"] == {"psnr": 25.0, "ssim": 0.74, "lpips": 0.28}
    assert cats["blur"]["baseline"] == {"name": "wiener", "psnr": 22.5, "ssim": 0.62, "lpips": None}
    assert cats["haze"]["lpips"] is None and "baseline" not in cats["haze"] and "drift" not in cats["noise"]
    assert cats["noise"]["psnr"] == [27.0, 27.2, 27.5] and cats["noise"]["n_images"] == 3
    (tmp_path / "plain").mkdir()
    assert "categories" not in read(write(tmp_path / "plain", metrics())), "optional: absent stays absent"

    summary = summarize_categories(cats)
    assert summary == {
        "n_categories": 3,
        "mean_last_psnr": pytest.approx((24.0 + 27.5 + 21.0) / 3),
        "mean_last_ssim": pytest.approx(0.75),
        "mean_last_lpips": None,  # haze has none: no mean over a subset
        "mean_input_psnr": pytest.approx(21.0),
        "mean_input_ssim": pytest.approx((0.55 + 0.82 + 0.60) / 3),
        "mean_input_lpips": None,
        "categories_beating_input_psnr": 2,  # blur and haze; noise loses to its input
        "n_drift_categories": 2,
        "mean_drift_last_psnr": pytest.approx(23.3),
        "mean_drift_last_ssim": pytest.approx(0.755),
        "mean_drift_gain_psnr": pytest.approx(0.8),  # (+1.0 blur, +0.6 haze) / 2
        "n_baseline_categories": 1,
        "mean_baseline_psnr": pytest.approx(22.5),
        "mean_baseline_ssim": pytest.approx(0.62),
    }
    no_extras = summarize_categories({"noise": cats["noise"]})
    assert no_extras["mean_drift_last_psnr"] is None and no_extras["mean_baseline_psnr"] is None
    assert no_extras["mean_last_lpips"] == pytest.approx(0.20) and no_extras["n_drift_categories"] == 0
    assert summarize_categories({})["mean_last_psnr"] is None


def _break(cats: dict, case: str) -> object:
    if case == "not_a_dict":
        return [cats["blur"]]
    if case == "entry":
        cats["blur"] = 3
    elif case == "psnr_value":
        cats["blur"]["psnr"][1] = "x"
    elif case == "ssim_length":
        cats["noise"]["ssim"] = [0.8, 0.8]
    elif case == "no_last":
        del cats["blur"]["last"]
    elif case == "input_ssim":
        cats["haze"]["input"]["ssim"] = "high"
    elif case == "baseline_name":
        del cats["blur"]["baseline"]["name"]
    elif case == "drift_last":
        cats["haze"]["drift"]["last"]["psnr"] = None
    elif case == "n_images":
        cats["noise"]["n_images"] = "3"
    return cats


@pytest.mark.parametrize(
    "case, message",
    [
        ("not_a_dict", "'categories' must be an object of categories, got list"),
        ("entry", "'categories.blur' must be an object, got 3"),
        ("psnr_value", "'categories.blur.psnr' holds 'x', not a number"),
        ("ssim_length", "'categories.noise.ssim' has 2 values, 'categories.noise.psnr' has 3"),
        ("no_last", "'categories.blur.last' must be an object with psnr and ssim, got None"),
        ("input_ssim", "'categories.haze.input.ssim' is 'high', not a number"),
        ("baseline_name", "'categories.blur.baseline.name' is None, not a string"),
        ("drift_last", "'categories.haze.drift.last.psnr' is None, not a number"),
        ("n_images", "'categories.noise.n_images' is '3', not a count"),
    ],
)
def test_malformed_categories_name_the_file_and_the_category(tmp_path, case, message):
    from src.metrics.frame_metrics import read, write
    from src.utils.cli import InputError

    path = write(tmp_path, all_in_one_metrics(_break(categories(), case)))
    with pytest.raises(InputError) as caught:
        read(path)
    assert str(caught.value) == f"malformed {path}: {message}"


def test_report_has_a_table_and_a_chart_per_run_with_categories(tmp_path):
    full = make_run(tmp_path / "a", all_in_one_metrics(), ["model=allinone", "drift=on"])
    plain_cats = {name: {k: v for k, v in entry.items() if k not in ("baseline", "drift")} for name, entry in categories().items()}  # fmt: skip
    bare = make_run(tmp_path / "b", all_in_one_metrics(plain_cats), ["model=allinone", "drift=off"])
    without = make_run(tmp_path / "c", metrics(), ["model=restore"])
    out = tmp_path / "report"
    result = run_module(
        "src.report", str(full), str(bare), str(without), "--out", str(out), env_extra=NO_WANDB
    )
    assert result.returncode == 0, result.stderr
    markdown = (out / "report.md").read_text()
    assert [row[0] for row in table_rows(markdown, "## Runs")] == [
        "model=allinone drift=on",
        "model=allinone drift=off",
        "model=restore",
    ]
    assert markdown.count("## Per category: ") == 2 and "## Per category: model=restore" not in markdown

    section = markdown.split("## Per category: model=allinone drift=on", 1)[1].split("\n## ", 1)[0]
    header = [cell.strip() for cell in section.strip().splitlines()[0].split("|")[1:-1]]
    assert header == [
        "category", "n", "input PSNR", "input SSIM", "baseline", "baseline PSNR", "baseline SSIM",
        "PSNR last", "SSIM last", "LPIPS last", "drift PSNR last", "drift SSIM last", "drift gain (dB)",
    ]  # fmt: skip
    assert table_rows(markdown, "## Per category: model=allinone drift=on") == [
        ["blur", "4", "20.00", "0.5500", "wiener", "22.50", "0.6200", "24.00", "0.7000", "0.3000", "25.00", "0.7400", "+1.00"],
        ["noise", "3", "28.00", "0.8200", "–", "–", "–", "27.50", "0.8000", "0.2000", "–", "–", "–"],
        ["haze", "5", "15.00", "0.6000", "–", "–", "–", "21.00", "0.7500", "–", "21.60", "0.7700", "+0.60"],
        ["mean", "12", "21.00", "0.6567", "wiener", "22.50", "0.6200", "24.17", "0.7500", "–", "23.30", "0.7550", "+0.80"],
    ]  # fmt: skip
    assert "beats the degraded input's PSNR in 2 of 3 categories" in section
    assert "The drift means cover only the 2 categories with a drift run." in section
    assert "The baseline means cover only the 1 category with a baseline." in section
    assert "(categories_model_allinone_drift_on.png)" in section

    assert table_rows(markdown, "## Per category: model=allinone drift=off") == [
        ["blur", "4", "20.00", "0.5500", "24.00", "0.7000", "0.3000"],
        ["noise", "3", "28.00", "0.8200", "27.50", "0.8000", "0.2000"],
        ["haze", "5", "15.00", "0.6000", "21.00", "0.7500", "–"],
        ["mean", "12", "21.00", "0.6567", "24.17", "0.7500", "–"],
    ]
    for name in ("categories_model_allinone_drift_on.png", "categories_model_allinone_drift_off.png"):
        assert_png(out / name)
        assert f"]({name})" in markdown.split("## Runs", 1)[0], "listed with the other figures"
    assert sorted(p.name for p in out.glob("categories_*.png")) == [
        "categories_model_allinone_drift_off.png",
        "categories_model_allinone_drift_on.png",
    ]
    report = json.loads((out / "report.json").read_text())
    assert report["runs"][0]["category_summary"]["categories_beating_input_psnr"] == 2
    assert report["runs"][2]["categories"] is None and report["runs"][2]["category_summary"] is None
    assert report["figures"]["categories model=allinone drift=on"] == "categories_model_allinone_drift_on.png"


def test_category_chart_names_are_safe_and_unique(tmp_path):
    from src.reporting.figures import category_figure_names, plot_categories

    runs = [
        {"label": "a/b c", "categories": categories()},
        {"label": "a b:c", "categories": categories()},
        {"label": "plain", "categories": None},
    ]
    assert category_figure_names(runs) == {"a/b c": "categories_a_b_c.png", "a b:c": "categories_a_b_c_2.png"}
    path = plot_categories(
        {"label": "one", "categories": {"blur": categories()["blur"]}}, tmp_path / "c.png", "T"
    )
    assert_png(path)


def test_malformed_categories_are_a_one_line_report_error(tmp_path):
    path = make_run(tmp_path / "bad", all_in_one_metrics(_break(categories(), "input_ssim")))
    result = run_module("src.report", str(path), "--out", str(tmp_path / "out"), env_extra=NO_WANDB)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    stderr = result.stderr.strip()
    assert len(stderr.splitlines()) == 1 and str(path / "frame_metrics.json") in stderr
    assert "'categories.haze.input.ssim'" in stderr and not (tmp_path / "out").exists()


def test_wandb_logs_the_per_category_table(tmp_path, monkeypatch, capsys):
    import types

    from src.report import main
    from src.reporting.tables import category_rows

    logged: list[dict] = []

    class Run:
        url, name = None, "report-run"

        def log(self, payload):
            logged.append(payload)

        def finish(self):
            pass

    fake = types.SimpleNamespace(
        init=lambda **kwargs: Run(),
        Table=lambda columns, data: {"columns": columns, "data": data},
        Image=lambda path: {"image": path},
    )
    monkeypatch.setitem(sys.modules, "wandb", fake)
    run_dir = make_run(tmp_path / "a", all_in_one_metrics(), ["model=allinone"])
    out = tmp_path / "report"
    assert main([str(run_dir), "--out", str(out), "--wandb"]) == 0
    (payload,) = logged
    header, rows = category_rows(collect_runs([run_dir])[0])
    assert payload["report/per_category_model_allinone"] == {"columns": header, "data": rows}
    assert rows[-1][0] == "mean" and len(rows) == 4
    assert payload["report/categories_model_allinone"] == {
        "image": str(out / "categories_model_allinone.png")
    }


def test_categories_without_input_scores_read_and_report(tmp_path):
    """src.eval scores the degraded input (and the baseline) only with baselines on: a category
    may have no ``input``; its means are None and the table has no input columns."""
    from src.metrics.frame_metrics import read, summarize_categories

    cats = {name: {k: v for k, v in entry.items() if k not in ("input", "baseline")} for name, entry in categories().items()}  # fmt: skip
    run_dir = make_run(tmp_path / "a", all_in_one_metrics(cats), ["baselines=false"])
    summary = summarize_categories(read(run_dir / "frame_metrics.json")["categories"])
    assert summary["mean_input_psnr"] is None and summary["categories_beating_input_psnr"] == 0
    assert summary["mean_drift_gain_psnr"] == pytest.approx(0.8)
    out = tmp_path / "report"
    result = run_module("src.report", str(run_dir), "--out", str(out), env_extra=NO_WANDB)
    assert result.returncode == 0, result.stderr
    markdown = (out / "report.md").read_text()
    assert table_rows(markdown, "## Per category: baselines=false") == [
        ["blur", "4", "24.00", "0.7000", "0.3000", "25.00", "0.7400", "+1.00"],
        ["noise", "3", "27.50", "0.8000", "0.2000", "–", "–", "–"],
        ["haze", "5", "21.00", "0.7500", "–", "21.60", "0.7700", "+0.60"],
        ["mean", "12", "24.17", "0.7500", "–", "23.30", "0.7550", "+0.80"],
    ]
    assert "beats the degraded input" not in markdown
    assert_png(out / "categories_baselines_false.png")
