"""The bad-input suite: what a new user gets wrong, across all nine CLIs.

Each case runs the CLI's real ``__main__`` (in this process, through runpy, so ~70 cases take
seconds rather than minutes) and asserts: the exit status; ONE ``error:`` line on stderr that names
the culprit (the file or the setting); no traceback; and, where it matters, that nothing was lost
(earlier results untouched, finished scores written) and nothing leaked (no secret in any file
the run wrote). A few cases need a real second process (a live lock, Ctrl-C): those use
subprocesses.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import runpy
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from src.utils.config import PROJECT_ROOT

from .test_train import FAST

SECRET = "sk-test0123456789abcdefghijSECRETkey0123456789"  # the shape of an OpenAI key, not a real one


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    @property
    def errors(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.startswith("error:")]


def cli(module: str, *args: str, env: dict | None = None) -> Result:
    """``python -m <module> args...`` run in this process: its exit status and output."""
    from hydra.core.global_hydra import GlobalHydra

    from src.utils import rundir

    out, err = io.StringIO(), io.StringIO()
    saved_argv, saved_env = sys.argv, dict(os.environ)
    os.environ.update(env or {})
    sys.argv = [module, *args]
    code = 0
    GlobalHydra.instance().clear()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                runpy.run_module(module, run_name="__main__", alter_sys=True)
            except SystemExit as exit_:
                code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
                if isinstance(exit_.code, str):
                    err.write(exit_.code + "\n")
            except BaseException:  # a bug: what python would print, and its exit status
                import traceback

                err.write(traceback.format_exc())
                code = 1
    finally:
        sys.argv = saved_argv
        os.environ.clear()
        os.environ.update(saved_env)
        GlobalHydra.instance().clear()
        rundir.release_all()
        import logging

        for handler in list(logging.getLogger().handlers):  # Hydra's handlers hold our buffers
            logging.getLogger().removeHandler(handler)
    result = Result(code, out.getvalue(), err.getvalue())
    _record(module, args, result)
    return result


def _record(module: str, args: tuple, result: Result) -> None:
    """With $PROGRESTORE_BAD_INPUT_LOG set (make bench-errors), one JSON line per case: the
    CLI, its arguments (the test secret redacted), exit status, error line, traceback or not."""
    log_path = os.environ.get("PROGRESTORE_BAD_INPUT_LOG")
    if not log_path:
        return
    current = os.environ.get("PYTEST_CURRENT_TEST", "")  # "tests/test_x.py::test_name (call)"
    record = {
        "test": current.split(" ")[0],
        "cli": module,
        "args": [a.replace(SECRET, "sk-<redacted>") for a in args],
        "exit": result.code,
        "error": (result.errors[0] if result.errors else "").replace(SECRET, "sk-<redacted>"),
        "traceback": "Traceback" in result.stdout + result.stderr,
    }
    with open(log_path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")


def assert_user_error(result: Result, *culprits: str, code: int = 2) -> str:
    """Exit ``code``, exactly one ``error:`` line naming every culprit, no traceback anywhere."""
    text = result.stdout + result.stderr
    assert "Traceback" not in text, text[-3000:]
    assert result.code == code, (result.code, text[-2000:])
    assert len(result.errors) == 1, result.stderr[-2000:]
    line = result.errors[0]
    for culprit in culprits:
        assert culprit in line, (culprit, line)
    assert "weights_only=False" not in text and "arbitrary code" not in text
    return line


def files_under(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def assert_no_secret(root: Path) -> None:
    leaked = [name for name, data in files_under(root).items() if SECRET.encode() in data]
    assert not leaked, f"the secret reached {leaked}"


def save_png(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def photo(seed: int, height: int = 64, width: int = 112) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (height // 8, width // 8, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(base).resize((width, height), Image.Resampling.BICUBIC))


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("bad_inputs")


@pytest.fixture(scope="module")
def trained(work) -> Path:
    """A 4-step sr run with LoRA rank 4 (checkpoints, lora/ export), trained in this process."""
    run = work / "trained_sr"
    result = cli(
        "src.train",
        "task=sr",
        "lora.rank=4",
        "lora.alpha=4",
        *FAST,
        "logger=none",
        "validate=false",
        f"hydra.run.dir={run}",
    )
    assert result.code == 0, result.stderr[-3000:]
    assert (run / "checkpoints" / "last.ckpt").is_file() and (run / "lora" / "lora_config.json").is_file()
    return run


@pytest.fixture(scope="module")
def images(work) -> dict[str, Path]:
    folder = work / "images"
    paths = {f"ok{i}": save_png(folder / "good" / f"ok{i}.png", photo(i)) for i in range(2)}
    corrupt = folder / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    paths["corrupt"] = corrupt
    (folder / "empty").mkdir()
    paths["empty_dir"] = folder / "empty"
    return paths


def built_dataset(root: Path, videos: list[str], clip_bytes: bytes | None = b"not a video") -> Path:
    """A hand-made dataset folder in the built layout (videos.txt + prompts, clips as given)."""
    root.mkdir(parents=True, exist_ok=True)
    for video in videos:
        target = root / video
        if clip_bytes is not None and not video.startswith("/") and ".." not in video:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(clip_bytes)
    (root / "videos.txt").write_text("\n".join(videos) + "\n")
    for name in ("prompt.txt", "prompts_uniform.txt", "prompts_adaptive.txt"):
        (root / name).write_text("\n".join("a scene" for _ in videos) + "\n")
    return root


def slug(args) -> str:
    """A run-dir name for a case, the same in every session (``hash()`` of a str is salted per
    process, which made every make bench-errors listing differ)."""
    import hashlib
    import re

    stable = re.sub(r"/tmp/pytest-of-[^/]+/pytest-\d+/", "<tmp>/", repr(args))  # pytest's numbered root
    return hashlib.sha1(stable.encode()).hexdigest()[:10]


def out(work: Path, name: str) -> str:
    return f"hydra.run.dir={work / 'runs' / name}"


# --- src.train -----------------------------------------------------------------------------------

TRAIN_SETTING_CASES = [
    ("lora.rank=abc", "lora.rank=abc"),
    ("lora.rank=0", "lora.rank"),
    ("lora.alpha=-1", "lora.alpha"),
    ("lora.alpha=big", "lora.alpha=big"),
    ("lora.dropout=1.5", "lora.dropout"),
    ("lora.target_modules=to_q", "lora.target_modules"),
    ("seed=abc", "seed=abc"),
    ("model.frames=8", "frames"),
    ("model.frames=nine", "model.frames=nine"),
    ("model.height=100", "multiple of 8"),
    ("trainer.max_steps=abc", "trainer.max_steps=abc"),
    ("prompt.mode=fancy", "prompt.mode"),
    ("trainer=gpu", "trainer.accelerator=gpu"),
    ("trainer=ddp", "CUDA GPU"),
    ("model.optimizer_8bit=true", "model.optimizer_8bit"),
    ("task=denoise", "task/denoise"),
    ("nonsense_key=1", "nonsense_key"),
    ("lora=huge", "lora/huge"),
    ("ckpt_path=/nonexistent/last.ckpt", "ckpt_path=/nonexistent/last.ckpt"),
    ("data.source=web", "data.source"),
    ("data.batch_size=0", "data.batch_size"),
    ("data.num_workers=-1", "data.num_workers"),
    ("data.random_crop=[0.9,0.2]", "data.random_crop"),
    ("optimizer.lr=fast", "optimizer.lr=fast"),
    ("trainer.max_steps=0", "trainer.max_steps"),
    ("model.sampling.num_inference_steps=0", "model.sampling.num_inference_steps"),
    ("+trainer.foo=1", "unexpected keyword argument 'foo'"),
    ("trainer.precision=fp7", "Precision 'fp7' is invalid"),
    ("callbacks.model_checkpoint.every_n_train_steps=abc", "callbacks.model_checkpoint"),
    ("model.weights=/nonexistent/tiny.safetensors", "/nonexistent/tiny.safetensors"),
]


@pytest.mark.parametrize(
    ("override", "culprit"), TRAIN_SETTING_CASES, ids=[c[0] for c in TRAIN_SETTING_CASES]
)
def test_train_bad_setting(work, override, culprit):
    run = work / "runs" / f"train_{slug(override)}"
    result = cli("src.train", override, "logger=none", f"hydra.run.dir={run}")
    assert_user_error(result, culprit)
    assert not (run / "checkpoints").exists(), "nothing was trained"


def test_train_damaged_checkpoints(work):
    garbage = work / "garbage.ckpt"
    garbage.write_bytes(os.urandom(2000))
    empty = work / "empty.ckpt"
    empty.write_bytes(b"")
    foreign = work / "foreign.ckpt"
    torch.save({"state_dict": {"layer.weight": torch.zeros(2)}}, foreign)
    for path, culprit in ((garbage, "cannot be read"), (empty, "empty"), (foreign, "no LoRA adapter")):
        result = cli("src.train", f"ckpt_path={path}", "logger=none", out(work, f"damaged_{path.stem}"))
        assert_user_error(result, str(path), culprit)
    shipped = PROJECT_ROOT / "src" / "models" / "pretrained" / "tiny_cogvideox_i2v.safetensors"
    truncated = work / "truncated_tiny.safetensors"
    truncated.write_bytes(shipped.read_bytes()[:300])
    result = cli("src.train", f"model.weights={truncated}", "logger=none", out(work, "truncated_tiny"))
    assert_user_error(result, str(truncated), "cannot be read")


def test_train_resume_must_match_the_checkpoint(work, trained):
    ckpt = trained / "checkpoints" / "last.ckpt"
    truncated = work / "truncated_last.ckpt"
    truncated.write_bytes(ckpt.read_bytes()[: ckpt.stat().st_size // 2])
    assert_user_error(
        cli("src.train", f"ckpt_path={truncated}", "task=sr", "logger=none", out(work, "trunc")),
        "cannot be read",
    )
    other_task = cli(
        "src.train",
        f"ckpt_path={ckpt}",
        "task=lowlight",
        "lora.rank=4",
        "lora.alpha=4",
        "logger=none",
        out(work, "other_task"),
    )
    assert_user_error(other_task, "task: checkpoint sr, this run lowlight", "ckpt_allow_mismatch=true")
    other_rank = cli(
        "src.train", f"ckpt_path={ckpt}", "task=sr", "lora.rank=8", "logger=none", out(work, "rank")
    )
    line = assert_user_error(other_rank, "lora.rank: checkpoint 4, this run 8")
    assert len(line) < 600, "one line, not 32 size-mismatch lines"
    other_prompt = cli(
        "src.train",
        f"ckpt_path={ckpt}",
        "task=sr",
        "prompt=uniform",
        "lora.rank=4",
        "lora.alpha=4",
        "logger=none",
        out(work, "prompt"),
    )
    assert_user_error(other_prompt, "prompt: checkpoint adaptive, this run uniform")
    longer = cli(
        "src.train",
        f"ckpt_path={ckpt}",
        "task=sr",
        "lora.rank=4",
        "lora.alpha=4",
        *FAST,
        "trainer.max_steps=6",
        "logger=none",
        out(work, "longer"),
    )
    assert_user_error(longer, "trainer.max_steps=6", "ends at step 4", "lr_scheduler=null")


def test_train_explicit_mismatch_is_allowed(work, trained):
    """ckpt_allow_mismatch=true: the user said so; the lowlight run trains on from the sr adapter."""
    ckpt = trained / "checkpoints" / "last.ckpt"
    run = work / "runs" / "allowed"
    result = cli(
        "src.train",
        f"ckpt_path={ckpt}",
        "ckpt_allow_mismatch=true",
        "task=lowlight",
        "lora.rank=4",
        "lora.alpha=4",
        *FAST,
        "logger=none",
        "validate=false",
        "export_lora=false",
        f"hydra.run.dir={run}",
    )
    assert result.code == 0, result.stderr[-3000:]
    assert json.loads((run / "run_summary.json").read_text())["task"] == "lowlight"


def test_train_run_dir_holds_another_run(work, trained):
    before = files_under(trained)
    result = cli("src.train", "task=sr", "logger=none", f"hydra.run.dir={trained}")
    assert_user_error(result, str(trained), "already holds another run")
    after = files_under(trained)
    assert after == before, "the first run's files are untouched (its .hydra config included)"


def test_default_run_dirs_never_collide_and_named_ones_are_refused(work):
    """Two runs in the same second get <time> and <time>_2; a dir the user named is refused."""
    from omegaconf import OmegaConf

    from src.utils.rundir import claim, release_all

    stamp = work / "collide" / "2026-01-01_00-00-00"

    def config(overrides: list[str]):
        return OmegaConf.create({"hydra": {"run": {"dir": str(stamp)}, "overrides": {"hydra": overrides}}})

    first, second = config([]), config([])
    try:
        assert claim(first, "run.dir", "run") == stamp
        assert claim(second, "run.dir", "run") == stamp.with_name(stamp.name + "_2")
        assert second.hydra.run.dir == str(stamp) + "_2", "Hydra creates the claimed dir"
    finally:
        release_all()
    from src.utils.rundir import RunDirInUse

    with pytest.raises(RunDirInUse, match="already holds another run"):  # the CLI: one line, exit 2
        claim(config([f"hydra.run.dir={stamp}"]), "run.dir", "run")


def test_run_dir_in_the_repository_root_is_refused(work):
    before = sorted(p.name for p in PROJECT_ROOT.iterdir())
    for value in (".", "", str(PROJECT_ROOT)):
        assert_user_error(
            cli("src.train", "logger=none", f"hydra.run.dir={value}"), "hydra.run.dir", "outputs/"
        )
    assert sorted(p.name for p in PROJECT_ROOT.iterdir()) == before, "nothing was written into the repository"


def test_train_output_dir_not_writable(work):
    blocker = work / "a_file"
    blocker.write_text("x")
    result = cli("src.train", "logger=none", f"hydra.run.dir={blocker}/run")
    assert_user_error(result, str(blocker), "writable")


DATASET_CASES = {
    "escape": (["videos/a.mp4", "../../../../etc/passwd"], "outside"),
    "absolute": (["videos/a.mp4", "/etc/hostname"], "/etc/hostname"),
    "all_unreadable": (["videos/a.mp4", "videos/b.mp4", "videos/c.mp4"], "can be read"),
    "one_source": (["videos/a.mp4"], "held-out"),
}


@pytest.mark.parametrize("case", sorted(DATASET_CASES))
def test_train_bad_dataset(work, case):
    videos, culprit = DATASET_CASES[case]
    root = built_dataset(work / "datasets" / case, videos)
    result = cli(
        "src.train", "data=dataset", f"data.dataset_dir={root}", "logger=none", out(work, f"ds_{case}")
    )
    assert_user_error(result, culprit)


def test_train_dataset_text_files_that_are_not_utf8_or_json(work):
    root = built_dataset(work / "datasets" / "latin1", ["videos/a.mp4", "videos/b.mp4"])
    (root / "videos.txt").write_bytes("videos/caf\xe9.mp4\nvideos/b.mp4\n".encode("latin-1"))
    assert_user_error(
        cli("src.train", "data=dataset", f"data.dataset_dir={root}", "logger=none", out(work, "latin1")),
        "videos.txt",
        "UTF-8",
    )
    root = built_dataset(work / "datasets" / "badjson", ["videos/a.mp4", "videos/b.mp4"])
    (root / "metadata.jsonl").write_text('{"source": "a"}\n{"source": \n')
    assert_user_error(
        cli("src.train", "data=dataset", f"data.dataset_dir={root}", "logger=none", out(work, "badjson")),
        "metadata.jsonl",
        "line 2",
    )
    root = built_dataset(work / "datasets" / "noprompts", ["videos/a.mp4", "videos/b.mp4"])
    for name in ("prompt.txt", "prompts_uniform.txt", "prompts_adaptive.txt"):
        (root / name).unlink()
    assert_user_error(
        cli("src.train", "data=dataset", f"data.dataset_dir={root}", "logger=none", out(work, "noprompts")),
        "prompt.txt",
    )
    missing = work / "datasets" / "nowhere"
    assert_user_error(
        cli("src.train", "data=dataset", f"data.dataset_dir={missing}", "logger=none", out(work, "nowhere")),
        str(missing),
    )


def test_train_secret_on_the_command_line_never_reaches_disk(work):
    root = work / "secret_train"
    for override in (f"+logger.wandb.api_key={SECRET}", f"+wandb_api_key={SECRET}", f"+note={SECRET}"):
        result = cli(
            "src.train", override, "logger=none", f"hydra.run.dir={root}/run", f"paths.output_dir={root}"
        )
        assert_user_error(result, "nothing was written")
        assert SECRET not in result.stderr + result.stdout, "the key is never echoed"
    assert not root.exists() or not files_under(root)
    assert_no_secret(work)


def test_sweep_of_failing_jobs_exits_nonzero_with_a_summary(work):
    sweep = work / "sweep_all_fail"
    result = cli("src.train", "-m", "lora.rank=0,-1", "logger=none", f"hydra.sweep.dir={sweep}")
    assert result.code == 1, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert "2 job(s), 0 done, 2 failed" in result.stderr
    for job in ("0", "1"):
        assert "lora.rank must be >= 1" in (sweep / job / "FAILED.txt").read_text()


# --- src.model_report ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("override", "culprit"),
    [
        ("lora.rank=abc", "lora.rank=abc"),
        ("model=cogvideox9", "model/cogvideox9"),
        ("lora.alpha=0", "lora.alpha"),
    ],
)
def test_model_report_bad_setting(work, override, culprit):
    assert_user_error(cli("src.model_report", override, out(work, f"mr_{slug(override)}")), culprit)


# --- src.eval ------------------------------------------------------------------------------------


def test_eval_bad_settings_and_checkpoints(work, trained, images):
    lora = trained / "lora"
    broken_json = work / "lora_badjson"
    broken_json.mkdir()
    for f in lora.iterdir():
        (broken_json / f.name).write_bytes(f.read_bytes())
    (broken_json / "lora_config.json").write_text('{"r": 4,')
    truncated = work / "lora_truncated"
    truncated.mkdir()
    for f in lora.iterdir():
        (truncated / f.name).write_bytes(f.read_bytes())
    weights = truncated / "pytorch_lora_weights.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    garbage = work / "eval_garbage" / "checkpoints" / "last.ckpt"
    garbage.parent.mkdir(parents=True)
    garbage.write_bytes(b"PK\x03\x04 not a zip")
    good = images["ok0"].parent
    cases = [
        ([], "ckpt= is required"),
        (["ckpt=/nonexistent/run"], "/nonexistent/run"),
        ([f"ckpt={images['empty_dir']}"], "no LoRA export"),
        ([f"ckpt={broken_json}"], "lora_config.json"),
        ([f"ckpt={truncated}"], "pytorch_lora_weights.safetensors"),
        ([f"ckpt={garbage}"], "cannot be read"),
        ([f"ckpt={trained}", "data=paired"], "data.lq_dir"),
        ([f"ckpt={trained}", "data=paired", "data.lq_dir=/nope", f"data.hq_dir={good}"], "data.lq_dir"),
        (
            [f"ckpt={trained}", "data=paired", f"data.lq_dir={good}", f"data.hq_dir={images['empty_dir']}"],
            "holds no images",
        ),
        ([f"ckpt={trained}", "data=reloblur"], "data.root"),
        ([f"ckpt={trained}", "data=fancy"], "eval_data/fancy"),
        ([f"ckpt={trained}", "mode=zoom"], "mode"),
        ([f"ckpt={trained}", "device=cuda"], "device=cuda"),
        ([f"ckpt={trained}", "device=tpu"], "device=tpu"),
        ([f"ckpt={trained}", "seed=x"], "seed=x"),
        ([f"ckpt={trained}", "max_images=0"], "max_images"),
        ([f"ckpt={trained}", "num_inference_steps=0"], "num_inference_steps"),
        ([f"ckpt={trained}", "guidance_scale=high"], "guidance_scale=high"),
    ]
    for args, culprit in cases:
        assert_user_error(cli("src.eval", *args, out(work, f"eval_{slug(tuple(args))}")), culprit)


def test_eval_paired_keeps_the_scores_of_readable_images(work, trained, images):
    lq, hq = work / "paired" / "lq", work / "paired" / "hq"
    for name in ("ok0", "ok1"):
        for folder in (lq, hq):
            save_png(folder / f"{name}.png", photo(int(name[-1])))
    (lq / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    save_png(hq / "broken.png", photo(5))
    run = work / "runs" / "eval_partial"
    result = cli(
        "src.eval",
        f"ckpt={trained}",
        "data=paired",
        f"data.lq_dir={lq}",
        f"data.hq_dir={hq}",
        "num_inference_steps=1",
        "metrics.lpips=false",
        "metrics.temporal=false",
        f"hydra.run.dir={run}",
    )
    assert result.code == 0, result.stderr[-3000:]
    metrics = json.loads((run / "frame_metrics.json").read_text())
    assert metrics["n_images"] == 2
    assert [u["image"] for u in metrics["unscored"]] == [str(lq / "broken.png")]
    assert "broken.png" in (run / "eval_table.md").read_text()


# --- src.restore ---------------------------------------------------------------------------------


def test_restore_bad_inputs(work, trained, images):
    good = images["ok0"]
    blocker = work / "restore_blocker"
    blocker.write_text("x")
    bad_captions = work / "captions_bad.json"
    bad_captions.write_text("{not json")
    cases = [
        ([f"ckpt={trained}"], "input= is required"),
        ([f"input={good}"], "ckpt= is required"),
        (["input=/nope/x.png", f"ckpt={trained}"], "/nope/x.png"),
        ([f"input={images['empty_dir']}", f"ckpt={trained}"], "holds no images"),
        ([f"input={images['corrupt']}", f"ckpt={trained}"], str(images["corrupt"])),
        ([f"input={good}", f"ckpt={trained}", "fps=0"], "fps"),
        ([f"input={good}", f"ckpt={trained}", "fps=fast"], "fps=fast"),
        ([f"input={good}", f"ckpt={trained}", "upscale=0.5"], "upscale"),
        ([f"input={good}", f"ckpt={trained}", "mode=zoom"], "mode"),
        ([f"input={good}", f"ckpt={trained}", "device=cuda"], "device=cuda"),
        ([f"input={good}", f"ckpt={trained}", "tile_batch=abc"], "tile_batch=abc"),
        ([f"input={good}", f"ckpt={trained}", "gif_max_side=0"], "gif_max_side"),
        ([f"input={good}", f"ckpt={trained}", "num_inference_steps=many"], "num_inference_steps=many"),
        ([f"input={good}", f"ckpt={trained}", "mode=tiled", "tile_overlap=500"], "tile overlap"),
        ([f"input={good}", f"ckpt={trained}", f"out_dir={blocker}/out"], str(blocker)),
        ([f"input={good}", f"ckpt={trained}", f"captions_file={bad_captions}"], str(bad_captions)),
        ([f"input={good}", f"ckpt={trained}", f"+captioner.api_key={SECRET}"], "nothing was written"),
    ]
    for args, culprit in cases:
        run = work / "runs" / f"restore_{slug(tuple(args))}"
        result = cli("src.restore", *args, f"hydra.run.dir={run}")
        assert_user_error(result, culprit)
        assert not list(run.glob("*/restored.png")), "nothing half-restored was left"
    assert_no_secret(work)


def test_restore_video_bad_inputs(work, trained):
    """Issue 15's bad videos: one error line each, before the model loads, and no output folder
    left that looks finished. A 1-frame clip is a video, restored as one."""
    from src.video import io as vio

    folder = work / "videos"
    folder.mkdir()
    good = vio.make_test_clip(folder / "good.mp4", frames=30, width=56, height=40, audio=True)
    data = good.read_bytes()
    (folder / "junk.mp4").write_bytes(b"not a video " * 100)
    (folder / "cut.mp4").write_bytes(data[: len(data) * 6 // 10])
    subprocess.run(
        [vio.ffmpeg_exe(), "-y", "-loglevel", "error", "-i", str(good), "-c", "copy", "-movflags", "+faststart",
         str(folder / "fast.mp4")],
        check=True,
    )  # fmt: skip
    fast = (folder / "fast.mp4").read_bytes()
    (folder / "cut_fast.mp4").write_bytes(fast[: len(fast) * 6 // 10])
    subprocess.run(
        [vio.ffmpeg_exe(), "-y", "-loglevel", "error", "-i", str(good), "-vn", "-c:a", "copy", str(folder / "sound.mp4")],
        check=True,
    )  # fmt: skip
    import av

    with av.open(str(folder / "zero.mp4"), mode="w") as container:  # a header and no frame
        stream = container.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = 56, 40, "yuv420p"
        container.start_encoding()
    (folder / "notes.txt").write_text("not a video")
    blocker = work / "video_blocker"
    blocker.write_text("x")
    cases = [
        ([f"input={folder / 'junk.mp4'}"], "cannot be opened as a video"),
        ([f"input={folder / 'cut.mp4'}"], "cannot be opened as a video"),
        ([f"input={folder / 'cut_fast.mp4'}"], "is truncated"),
        ([f"input={folder / 'zero.mp4'}"], "no frames"),
        ([f"input={folder / 'sound.mp4'}"], "has no video stream"),
        ([f"input={good}", "max_frame_pixels=1000"], "above the limit of 1,000"),
        ([f"input={good}", f"out_dir={blocker}/out"], str(blocker)),
        ([f"input={good}", "noise=warped"], "noise must be one of"),
        ([f"input={good}", "early_stop=2"], "early_stop"),
        ([f"input={good}", "output_frame=12"], "output_frame=12"),
        ([f"input={good}", f"drift={trained}"], "drift="),
        ([f"input={folder / 'notes.txt'}", "video=true"], "is not a video file"),
        ([f"input={good}", "video=maybe"], "video must be auto, true or false"),
    ]
    for args, culprit in cases:
        run = work / "runs" / f"restore_video_{slug(tuple(args))}"
        result = cli("src.restore", *args, f"ckpt={trained}", "num_inference_steps=1", f"hydra.run.dir={run}")
        assert_user_error(result, culprit)
        assert not list(run.glob("*/restored.mp4")) and not list(run.glob("*/restore.json")), "half-written"
    one = vio.make_test_clip(folder / "one.mp4", frames=1, width=56, height=40)
    run = work / "runs" / "restore_video_one_frame"
    result = cli(
        "src.restore", f"input={one}", f"ckpt={trained}", "num_inference_steps=1", f"hydra.run.dir={run}"
    )
    assert result.code == 0, result.stderr[-3000:]
    assert vio.probe_video(run / "one" / "restored.mp4").frames == 1


def test_restore_video_options_are_checked_with_a_photo_input(work, trained, images):
    """Issue 30: every option is checked once, whatever input it will meet. A video setting out of
    its range given with a photo used to be ignored and the photo restored; now it is the same one
    line as with a clip, before the model loads, and nothing is written."""
    good = images["ok0"]
    cases = [
        (["noise=warped"], "noise must be one of"),
        (["early_stop=2"], "early_stop"),
        (["output_frame=0"], "output_frame is 1-based"),
        (["crf=99"], "crf"),
        (["blend=1.5"], "blend must be in [0, 1)"),
        (["flow=optical"], "flow must be one of"),
        (["color=sepia"], "color must be one of"),
        (["color_reference=mirror"], "color_reference must be one of"),
        (["batch=0"], "batch"),
        (["max_frame_pixels=0"], "max_frame_pixels"),
        (["video=maybe"], "video must be auto, true or false"),
    ]
    for args, culprit in cases:
        run = work / "runs" / f"restore_photo_{slug(tuple(args))}"
        result = cli("src.restore", f"input={good}", f"ckpt={trained}", *args, f"hydra.run.dir={run}")
        assert_user_error(result, culprit)
        assert not list(run.glob("*/restored.png")) and not (run / "restore_summary.json").exists()


def test_restore_path_with_spaces_and_a_folder_with_a_corrupt_image(work, trained, images):
    folder = work / "my photos"
    save_png(folder / "cat one.png", photo(3))
    (folder / "broken.png").write_bytes(b"garbage")
    run = work / "runs" / "restore_spaces"
    result = cli(
        "src.restore",
        f'input="{folder}"',
        f"ckpt={trained}",
        "num_inference_steps=1",
        f'hydra.run.dir="{run}"',
    )
    assert result.code == 0, result.stderr[-3000:]
    summary = json.loads((run / "restore_summary.json").read_text())
    assert [r["name"] for r in summary["restored"]] == ["cat one"]
    assert [Path(s["path"]).name for s in summary["skipped"]] == ["broken.png"]


def test_concurrent_restores_into_one_out_dir_keep_each_others_results(work):
    from src.restoration.outputs import merge_summary

    out_dir = work / "shared_out"
    out_dir.mkdir()
    merge_summary(out_dir / "restore_summary.json", [{"name": "a", "dir": "x"}], [])
    merge_summary(
        out_dir / "restore_summary.json", [{"name": "b", "dir": "y"}], [{"path": "c.png", "reason": "r"}]
    )
    merge_summary(out_dir / "restore_summary.json", [{"name": "a", "dir": "z"}], [])
    summary = json.loads((out_dir / "restore_summary.json").read_text())
    assert {r["name"]: r["dir"] for r in summary["restored"]} == {"a": "z", "b": "y"}
    assert summary["skipped"] == [{"path": "c.png", "reason": "r"}]


# --- src.build_dataset ---------------------------------------------------------------------------


def test_build_dataset_bad_inputs(work, images):
    foreign = work / "thesis"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("precious")
    bad_captions = work / "captions_latin1.json"
    bad_captions.write_bytes('{"a": "caf\xe9"}'.encode("latin-1"))
    cases = [
        ([], "You must specify 'task'"),
        (["task=sr", "source_dir=/nope"], "/nope"),
        (["task=sr", f"source_dir={images['empty_dir']}"], "holds no images"),
        (["task=sr", f"out_dir={foreign}"], "not a progrestore dataset"),
        (["task=sr", f"captions_file={bad_captions}"], str(bad_captions)),
        (["task=sr", "format=avi"], "avi"),
        (["task=upscale"], "task/upscale"),
        (["task=sr", "clips_per_image=two"], "clips_per_image"),
        (["task=sr", "encoder.crf=abc"], "encoder.crf=abc"),
        (["task=sr", "encoder.pix_fmt=yuv999"], "encoder.pix_fmt=yuv999"),
    ]
    for args, culprit in cases:
        result = cli(
            "src.build_dataset",
            *args,
            "progress=false",
            out(work, f"build_{slug(tuple(args))}"),
            *([] if any(a.startswith("out_dir=") for a in args) else [f"out_dir={work / 'ds_out'}"]),
        )
        assert_user_error(result, culprit)
    assert (foreign / "thesis.tex").read_text() == "precious" and len(list(foreign.iterdir())) == 1


def test_build_dataset_in_use_by_another_build_is_refused(work, images):
    from src.utils.rundir import hold_lock

    target = work / "ds_locked"
    target.mkdir()
    handle, _ = hold_lock(target / ".build.lock", "held by this test")
    try:
        result = cli(
            "src.build_dataset",
            "task=sr",
            f"source_dir={images['ok0'].parent}",
            f"out_dir={target}",
            "width=112",
            "height=64",
            "progress=false",
            "num_workers=0",
            out(work, "build_locked"),
        )
        assert_user_error(result, str(target), "being built by another process")
        assert (target / ".build.lock").is_file(), "the first build's lock is not removed by the second"
    finally:
        handle.close()


# --- src.prompts ---------------------------------------------------------------------------------


def test_prompts_bad_inputs_and_secrets(work):
    root = work / "prompts_secret"
    cases = [
        (["captioner=captions_file"], "dataset= is required"),
        ([f"dataset={work / 'nowhere'}"], "nowhere"),
        ([f"dataset={work}", f"+captioner.api_key={SECRET}"], "nothing was written"),
        ([f"dataset={work}", f"captioner.api_key_env={SECRET}"], "must NAME an environment variable"),
        ([f"dataset={work}", f"refiner.api_key_env={SECRET}"], "refiner.api_key_env"),
        ([f"dataset={work}", f"+refiner.token={SECRET}"], "refiner.token"),
        ([f"dataset={work}", "captioner=gpt9"], "captioner/gpt9"),
        ([f"dataset={work}", "concurrency=0"], "concurrency"),
        ([f"dataset={work}", "max_tokens=abc"], "max_tokens=abc"),
        ([f"dataset={work}", "timeout_s=0"], "timeout_s"),
    ]
    for args, culprit in cases:
        result = cli("src.prompts", *args, f"hydra.run.dir={root}/{slug(tuple(args))}")
        assert_user_error(result, culprit)
        assert SECRET not in result.stdout + result.stderr
    assert_no_secret(work)


def test_prompts_api_key_env_names_an_unset_variable(work, images):
    dataset = work / "datasets" / "prompts_env"
    built = cli(
        "src.build_dataset",
        "task=sr",
        f"source_dir={images['ok0'].parent}",
        f"out_dir={dataset}",
        "width=112",
        "height=64",
        "clips_per_image=1",
        "num_workers=0",
        "progress=false",
        out(work, "build_for_prompts"),
    )
    assert built.code == 0, built.stderr[-2000:]
    result = cli(
        "src.prompts",
        f"dataset={dataset}",
        "captioner=openai",
        "captioner.api_key_env=PROGRESTORE_NO_SUCH_KEY",
        out(work, "prompts_env"),
        env={"PROGRESTORE_NO_SUCH_KEY": ""},
    )
    assert_user_error(result, "PROGRESTORE_NO_SUCH_KEY")
    (dataset / "build_manifest.json").write_bytes(b"\xff\xfe not json")
    result = cli(
        "src.prompts", f"dataset={dataset}", "captioner=captions_file", out(work, "prompts_manifest")
    )
    assert_user_error(result, "build_manifest.json", "UTF-8")
    (dataset / "metadata.jsonl").write_text('{"video": \n')
    result = cli("src.prompts", f"dataset={dataset}", "captioner=captions_file", out(work, "prompts_jsonl"))
    assert_user_error(result, "metadata.jsonl", "line 1")


# --- src.metrics, src.report, src.pretrain_tiny (argparse CLIs) ----------------------------------


def test_metrics_bad_inputs_and_one_image_convention(work, images):
    a = images["ok0"]
    small = save_png(work / "small.png", photo(1, 8, 8))
    other_size = save_png(work / "other_size.png", photo(1, 64, 120))
    bad_weights = work / "alexnet_bad.pth"
    bad_weights.write_bytes(b"not torch")
    cases = [
        ([str(a)], "required"),
        ([str(a), "/nope.png"], "/nope.png"),
        ([str(a), str(images["corrupt"])], str(images["corrupt"])),
        ([str(a), str(other_size)], "sizes differ"),
        ([str(small), str(small)], "too small"),
        ([str(a), str(a), "--crop-border", "-1"], "--crop-border"),
        ([str(a), str(a), "--crop-border", "x"], "--crop-border"),
        ([str(a), str(a), "--alexnet", str(bad_weights)], str(bad_weights)),
    ]
    for args, culprit in cases:
        assert_user_error(cli("src.metrics", *args), culprit)
    # 16-bit, palette, gray+alpha and CMYK versions of the same pixels read like the 8-bit file
    rgb = photo(7)
    eight = save_png(work / "eight.png", rgb)
    gray = save_png(work / "gray8.png", rgb[..., 0])
    sixteen = work / "gray16.png"
    Image.fromarray(rgb[..., 0].astype(np.uint16) * 257).save(sixteen)
    result = cli("src.metrics", str(gray), str(sixteen))
    assert result.code == 0, result.stderr
    assert json.loads(result.stdout)["psnr"] is None, "identical pixels: infinite PSNR"
    cmyk = work / "eight.tiff"
    Image.fromarray(rgb).convert("CMYK").save(cmyk)
    palette = work / "palette.png"
    Image.fromarray(rgb).quantize(256).save(palette)
    float_gray = work / "gray_float.tiff"
    Image.fromarray(rgb[..., 0].astype(np.float32), mode="F").save(float_gray)
    result = cli("src.metrics", str(gray), str(float_gray))
    assert result.code == 0, result.stderr
    assert json.loads(result.stdout)["psnr"] is None, "32-bit float pixels are read like 8-bit ones"
    for variant in (cmyk, palette):
        result = cli("src.metrics", str(eight), str(variant))
        assert result.code == 0, result.stderr
        assert (json.loads(result.stdout)["psnr"] or 99) > 25


def test_metrics_finds_the_lpips_weights_where_training_does(work, shared_dir, images):
    result = cli(
        "src.metrics", str(images["ok0"]), str(images["ok1"]), env={"PROGRESTORE_ALEXNET_WEIGHTS": ""}
    )
    assert result.code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["lpips"] is not None
    assert report["conventions"]["lpips"]["alexnet_weights"] == str(
        shared_dir / "weights" / "lpips" / "alexnet_features.pth"
    )


def test_report_and_pretrain_bad_inputs(work, shared_dir):
    blocker = work / "report_blocker"
    blocker.write_text("x")
    empty = work / "no_runs"
    empty.mkdir()
    cases = [
        ("src.report", [str(empty)], str(empty)),
        ("src.report", ["/nope/run"], "/nope/run"),
        ("src.pretrain_tiny", ["--photos-dir", "/nope/photos"], "--photos-dir /nope/photos"),
        ("src.pretrain_tiny", ["--photos-dir", str(shared_dir / "data" / "set5")], "Set5"),
        ("src.pretrain_tiny", ["--vae-crop", "7"], "--vae-crop"),
        ("src.pretrain_tiny", ["--vae-steps", "many"], "--vae-steps"),
    ]
    for module, args, culprit in cases:
        assert_user_error(cli(module, *args), culprit)


# --- real second processes: a live lock, Ctrl-C ---------------------------------------------------


def _popen(*args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "WANDB_SILENT": "true"}
    return subprocess.Popen(
        [sys.executable, "-m", "src.train", *args],
        cwd=PROJECT_ROOT,
        env=env,
        text=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # a shell's & ignores SIGINT
    )


def _wait_for(path: Path, seconds: float) -> None:
    deadline = time.time() + seconds
    while not path.exists() and time.time() < deadline:
        time.sleep(0.2)
    assert path.exists(), f"{path} never appeared"


def test_run_dir_in_use_and_ctrl_c_saves_a_resumable_checkpoint(work):
    run = work / "live"
    first = _popen(
        *FAST, "trainer.max_steps=100000", "lr_scheduler=null", "logger=none", f"hydra.run.dir={run}"
    )
    try:
        _wait_for(run / "checkpoints" / "last.ckpt", 120)  # it is training
        second = cli("src.train", "logger=none", f"hydra.run.dir={run}")
        assert_user_error(second, str(run), "in use by another run", f"pid {first.pid}")
        first.send_signal(signal.SIGINT)
        _, stderr = first.communicate(timeout=120)
    finally:
        first.kill()
    assert first.returncode == 130, stderr[-2000:]
    interrupted = run / "checkpoints" / "interrupted.ckpt"
    assert interrupted.is_file()
    assert f"ckpt_path={interrupted}" in stderr and "Traceback" not in stderr
    step = torch.load(interrupted, map_location="cpu", weights_only=True)["global_step"]
    resumed = cli(
        "src.train",
        *FAST,
        f"trainer.max_steps={step + 2}",
        "lr_scheduler=null",
        "logger=none",
        "validate=false",
        "export_lora=false",
        f"ckpt_path={interrupted}",
        f"hydra.run.dir={run}",
    )
    assert resumed.code == 0, resumed.stderr[-3000:]
    assert json.loads((run / "run_summary.json").read_text())["global_step"] == step + 2


def test_a_bug_keeps_its_traceback(work, monkeypatch):
    """A plain ValueError from deep inside a library is a bug, not bad input: exit 1, traceback."""
    import src.models.lora

    def broken(*args, **kwargs):
        raise ValueError("a bug deep inside a library")

    monkeypatch.setattr(src.models.lora, "validate_lora_config", broken)
    result = cli("src.train", "logger=none", out(work, "bug"))
    assert result.code == 1
    assert "Traceback" in result.stderr and "a bug deep inside a library" in result.stderr
    assert not result.errors, "a bug is not reported as a user error"
    assert "ValueError: a bug deep inside a library" in (work / "runs" / "bug" / "FAILED.txt").read_text()
