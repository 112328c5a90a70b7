"""The paper-in-miniature statistics (issue 29): bootstrap intervals and paired tests against
hand-computed cases, and the table and figure from a small fabricated sweep directory."""

import json

import numpy as np
import pytest

from src.analysis.stats import bootstrap_interval, format_interval, paired_comparison, sign_flip_p_value
from src.analysis.sweep import collect_records, plot_figure, read_eval_csv, render_markdown, summarize


def test_bootstrap_interval_of_two_values_is_their_range():
    # two units: a replicate's mean is 0 (p 1/4), 5 (1/2) or 10 (1/4): the 2.5 / 97.5 % points are 0 and 10
    interval = bootstrap_interval([0.0, 10.0], seed=3)
    assert (interval.mean, interval.low, interval.high, interval.n) == (5.0, 0.0, 10.0, 2)
    constant = bootstrap_interval(np.full((5, 3), 2.5))
    assert (constant.low, constant.high) == (2.5, 2.5)


def test_crossed_bootstrap_resamples_seeds_too():
    # identical images, seeds differ: an interval over images alone would be a point
    grid = np.array([[0.0, 1.0, 2.0]] * 5)
    interval = bootstrap_interval(grid, seed=0)
    assert interval.mean == pytest.approx(1.0)
    assert interval.low < 0.5 and interval.high > 1.5
    assert bootstrap_interval(np.array([[1.0, np.nan], [3.0, 5.0]])).mean == pytest.approx(3.0)


def test_sign_flip_p_value_by_hand():
    # d = (1, 2, 3): 8 sign patterns; |mean| >= 2 only for all + and all -: p = 2/8
    assert sign_flip_p_value([1.0, 2.0, 3.0]) == (0.25, True)
    # d = (1, -1): every pattern has |mean| >= 0: p = 1
    assert sign_flip_p_value([1.0, -1.0]) == (1.0, True)
    p, exact = sign_flip_p_value(np.ones(20), seed=0)
    assert not exact and p < 1e-3


def test_paired_comparison_verdicts():
    a = np.array([[3.0, 4.0, 5.0]] * 5)  # 15 units, each one better by 1..3
    b = a - np.array([[1.0, 2.0, 3.0]] * 5)
    better = paired_comparison(a, b, seed=0)
    assert better.difference.mean == pytest.approx(2.0)
    assert better.wins == 15 and better.losses == 0
    assert better.p_value == pytest.approx(2 / 2**15) and better.exact
    assert better.resolved and better.verdict() == "resolved"
    noise = paired_comparison([1.0, -1.0, 0.5, -0.5], [0.0, 0.0, 0.0, 0.0])
    assert not noise.resolved and noise.verdict() == "not resolved at this sample size"
    assert format_interval(None, 1) == "n/a"
    with pytest.raises(ValueError, match="same shape"):
        paired_comparison(np.ones((2, 2)), np.ones((2, 3)))


def _write_job(root, task, prompt, seed, shift):
    """A fabricated evaluated job: .hydra/overrides.yaml and a src.eval metrics.csv."""
    job = root / f"{task}_{prompt}_s{seed}"
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text(
        f"- task={task}\n- prompt={prompt}\n- seed={seed}\n- experiment=x\n"
    )
    rows = ["image,method,frame,psnr,ssim,lpips,masked_psnr,masked_ssim"]
    for i, image in enumerate(("a", "b", "c")):
        for frame in range(1, 4):
            psnr = 20 + frame + shift + 0.1 * i + 0.01 * seed
            rows.append(f"{image},generated,{frame},{psnr},{0.5 + 0.01 * frame},{0.3 - 0.01 * frame},,")
        rows.append(f"{image},input,1,20.5,0.5,0.35,,")
        rows.append(f"{image},bicubic,3,21.0,0.52,0.34,,")
    (job / "eval" / ".hydra").mkdir(parents=True)  # src.eval's run dir is a Hydra dir too
    (job / "eval" / ".hydra" / "overrides.yaml").write_text("- ckpt=x\n")
    (job / "eval" / "metrics.csv").write_text("\n".join(rows) + "\n")
    (job / "eval" / "frame_metrics.json").write_text("{}")
    return job


def test_summary_table_and_figure_from_a_fabricated_sweep(tmp_path):
    for seed in (0, 1):
        for prompt, shift in (("uniform", 0.0), ("adaptive", 1.0)):
            _write_job(tmp_path / "sweep", "sr", prompt, seed, shift)
    frames, images = read_eval_csv(tmp_path / "sweep" / "sr_uniform_s0" / "eval" / "metrics.csv")
    assert frames == [1, 2, 3] and images["b"]["baseline"]["name"] == "bicubic"
    assert images["a"]["generated"]["psnr"] == pytest.approx([21.0, 22.0, 23.0])
    records = collect_records(tmp_path / "sweep")
    assert len(records) == 4
    summary = summarize(records, "prompt", "uniform")
    groups = {g["overrides"]["prompt"]: g for g in summary["groups"]}
    assert groups["adaptive"]["last"]["psnr"]["mean"] == pytest.approx(24.105)  # 23 + 1 + 0.1 + 0.005
    assert groups["uniform"]["input"]["psnr"]["mean"] == pytest.approx(20.5)
    (comparison,) = summary["comparisons"]
    assert comparison["level"] == "adaptive" and comparison["units"] == 6
    psnr = comparison["metrics"]["psnr"]
    assert psnr["difference"]["mean"] == pytest.approx(1.0) and psnr["wins"] == 6
    assert psnr["p_value"] == pytest.approx(2 / 64) and psnr["resolved"]
    assert comparison["metrics"]["ssim"]["verdict"] == "not resolved at this sample size"  # no difference
    markdown = render_markdown(summary, "fabricated")
    assert (
        "| prompt=adaptive, task=sr | PSNR (dB) | 24.11 [24.01, 24.20] | 20.50 [20.50, 20.50] | 3.61"
        in markdown
    )
    assert "| 20.50 [20.50, 20.50] |" in markdown and "bicubic: 21.00 [21.00, 21.00]" in markdown
    assert (
        "| task=sr | adaptive - uniform | PSNR (dB) | 1.00 [1.00, 1.00] | 0.0312 | 6 / 0 | resolved: better |"
        in markdown
    )
    figure = plot_figure(summary, tmp_path / "fig.png", "task", "fabricated")
    assert figure.stat().st_size > 10_000
    json.dumps(summary)  # the summary is JSON as written


def test_a_sweep_without_evaluations_names_the_command(tmp_path):
    from src.analysis.sweep import SweepError

    job = tmp_path / "sweep" / "0"
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text("- task=sr\n")
    with pytest.raises(SweepError, match="python -m src.eval ckpt="):
        collect_records(tmp_path / "sweep")


def test_report_cli_writes_the_sweep_statistics(tmp_path):
    from src.report import main

    for seed in (0, 1, 2):
        for prompt, shift in (("uniform", 0.0), ("adaptive", -0.5)):
            _write_job(tmp_path / "sweep", "deblur", prompt, seed, shift)
    out = tmp_path / "report"
    assert (
        main([str(tmp_path / "sweep"), "--sweep", "prompt", "--reference", "uniform", "--out", str(out)]) == 0
    )
    stats = json.loads((out / "sweep_stats.json").read_text())
    (comparison,) = stats["comparisons"]
    assert comparison["units"] == 9 and comparison["metrics"]["psnr"]["difference"]["mean"] == pytest.approx(
        -0.5
    )
    assert "resolved: worse" in (out / "sweep_stats.md").read_text()
    assert (out / "sweep_figure.png").stat().st_size > 10_000
    assert main([str(tmp_path / "sweep"), "--sweep", "prompt", "--reference", "nope", "--out", str(out)]) == 2
