"""python -m src.prompts: captions + refined prompts of a built dataset, against a real local
chat-completions server (tests/chat_server.py; no monkeypatched client): alignment, metadata,
retries, timeouts, fail-fast auth errors, cache/resume, truncation, and that the API key never
reaches a file, a log or an error message."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from src.prompts import compose_adaptive_prompt
from src.prompts.__main__ import run
from src.prompts.backends import BackendError, refiner_system_prompt
from src.prompts.tokens import TokenCounter, estimate_tokens
from src.prompts.tool import PromptsError
from src.utils.config import CONFIG_DIR, PROJECT_ROOT

from .chat_server import ChatServer, refined
from .conftest import TASK_CFGS, run_module

KEY_ENV = "PROGRESTORE_TEST_CHAT_KEY"
KEY = "sk-test-7f3a9c1e5b2d4a6f"  # a fake key; must never appear anywhere it is written
LOWLIGHT = OmegaConf.to_container(OmegaConf.load(CONFIG_DIR / "task" / "lowlight.yaml"))


# ----------------------------------------------------------------------------------------------
# Fixtures and helpers
# ----------------------------------------------------------------------------------------------
FRAMES = 3  # tiny clips: the prompt tool only reads their last frame


def _build(out_dir: Path, mode: str, source_dir: Path | None = None, clips_per_image: int = 1) -> Path:
    from src.data.builder import BuildSpec, build_dataset

    spec = BuildSpec(
        task="lowlight",
        out_dir=out_dir,
        source_dir=source_dir,
        width=64,
        height=32,
        frames=FRAMES,
        fmt="png",
        clips_per_image=clips_per_image,
    )
    build_dataset(spec, TASK_CFGS["lowlight"], mode, num_workers=0, progress=False)
    return out_dir


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, Path]:
    """Tiny datasets of the eight bundled photographs (one clip each), per selected prompt mode."""
    root = tmp_path_factory.mktemp("built")
    return {mode: _build(root / mode, mode) for mode in ("adaptive", "uniform")}


@pytest.fixture
def dataset(built, tmp_path) -> Path:
    """A fresh copy of the adaptive dataset (tests rewrite it)."""
    return Path(shutil.copytree(built["adaptive"], tmp_path / "ds"))


@pytest.fixture(scope="module")
def server():
    chat = ChatServer().start()
    yield chat
    chat.stop()


@pytest.fixture(autouse=True)
def _fresh_server(request):
    if "server" in request.fixturenames:
        request.getfixturevalue("server").reset()


def compose_prompts(dataset: Path, *overrides: str):
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose(
            "prompts",
            overrides=[
                f"dataset={dataset}",
                "progress=false",
                "image_max_side=64",
                "backoff_s=0.01",
                *overrides,
            ],
        )


def openai_overrides(server: ChatServer, key: bool = True, refiner: bool = True) -> list[str]:
    out = ["captioner=openai", f"captioner.base_url={server.url}", "captioner.model=test-vlm"]
    out += ["timeout_s=5", "retries=2"]
    if refiner:
        out += ["refiner=openai", f"refiner.base_url={server.url}", "refiner.model=test-llm"]
    if key:
        out += [f"captioner.api_key_env={KEY_ENV}"] + ([f"refiner.api_key_env={KEY_ENV}"] if refiner else [])
    return out


def lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def records(dataset: Path) -> list[dict]:
    return [json.loads(line) for line in lines(dataset / "metadata.jsonl")]


def assert_no_key(*roots: Path, texts: tuple[str, ...] = ()) -> None:
    for root in roots:
        for path in Path(root).rglob("*"):
            if path.is_file():
                assert KEY.encode() not in path.read_bytes(), f"the API key leaked into {path}"
    for text in texts:
        assert KEY not in text


def cached(dataset: Path, kind: str) -> int:
    return len(list((dataset / ".prompt_cache" / kind).glob("*.json")))


# ----------------------------------------------------------------------------------------------
# End to end against the server
# ----------------------------------------------------------------------------------------------
def test_end_to_end_openai_aligned_metadata_cached_and_key_only_in_the_header(
    dataset, server, monkeypatch, caplog
):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv(KEY_ENV, KEY)
    before = records(dataset)
    report = run(compose_prompts(dataset, *openai_overrides(server)))

    videos, prompts = lines(dataset / "videos.txt"), lines(dataset / "prompts_adaptive.txt")
    assert len(videos) == len(prompts) == 8 and report.clips == 8
    for old, new, video, prompt in zip(before, records(dataset), videos, prompts, strict=True):
        assert new["video"] == video
        assert {k: v for k, v in new.items() if k not in ("prompts", "prompting")} == {
            k: v for k, v in old.items() if k != "prompts"
        }
        assert new["prompts"] == {**old["prompts"], "adaptive": prompt}
        info = new["prompting"]
        assert info["caption"].startswith("scene ") and info["prompt"] == prompt == refined(info["caption"])
        assert info["captioner"] == {"backend": "openai", "model": "test-vlm"}
        assert info["refiner"] == {"backend": "openai", "model": "test-llm"}
        assert info["truncated"] is False and 0 < info["tokens"] <= info["max_tokens"] == 226
        assert info["image"] == "bundled"
    assert (dataset / "prompt.txt").read_bytes() == (dataset / "prompts_adaptive.txt").read_bytes()
    # what `python -m src.train data=dataset prompt=adaptive` will train on
    from src.data.datamodule import read_built_dataset

    assert [entry["prompt"] for entry in read_built_dataset(dataset, "adaptive", FRAMES)] == prompts

    # One caption per image, one refinement per caption, the key in the header only.
    assert server.count("caption") == 8 and server.count("refine") == 8
    assert all(r["headers"].get("Authorization") == f"Bearer {KEY}" for r in server.requests)
    cap = next(r["body"] for r in server.requests if r["kind"] == "caption")
    assert cap["model"] == "test-vlm" and cap["temperature"] == 0 and cap["max_tokens"] == 77
    text, image = cap["messages"][0]["content"]
    assert text["type"] == "text" and "noun phrase" in text["text"]
    assert image["image_url"]["url"].startswith("data:image/png;base64,")
    ref = next(r["body"] for r in server.requests if r["kind"] == "refine")
    assert ref["messages"][0] == {"role": "system", "content": refiner_system_prompt(LOWLIGHT)}
    assert (
        "Nothing moves" in ref["messages"][0]["content"]
        and "A dark view of <scene>" in ref["messages"][0]["content"]
    )

    # A rerun is served from the cache: no request, same files.
    written = {name: (dataset / name).read_bytes() for name in ("prompts_adaptive.txt", "metadata.jsonl")}
    server.reset()
    report = run(compose_prompts(dataset, *openai_overrides(server)))
    assert server.count() == 0 and report.captions_cached == 8 and report.refinements_cached == 8
    assert written == {name: (dataset / name).read_bytes() for name in written}
    assert_no_key(dataset, texts=(caplog.text,))


def test_uniform_dataset_keeps_prompt_txt_captions_file_and_template_offline(built, tmp_path):
    dataset = Path(shutil.copytree(built["uniform"], tmp_path / "ds"))
    prompt_txt = (dataset / "prompt.txt").read_bytes()
    captions = tmp_path / "captions.json"
    captions.write_text(json.dumps({"astronaut.png": "a test pilot in a white suit"}))
    report = run(compose_prompts(dataset, "captioner=captions_file", f"captioner.file={captions}"))

    assert (dataset / "prompt.txt").read_bytes() == prompt_txt  # uniform stays the selected mode
    by_clip = {r["clip"]: r for r in records(dataset)}
    prompts = lines(dataset / "prompts_adaptive.txt")
    assert len(prompts) == len(lines(dataset / "videos.txt")) == 8 and report.http_requests == 0
    astronaut = by_clip["astronaut_c0"]["prompting"]
    assert astronaut["prompt"] == compose_adaptive_prompt(
        LOWLIGHT["adaptive_template"], "a test pilot in a white suit"
    )
    assert astronaut["captioner"] == {"backend": "captions_file", "model": "captions.json"}
    assert astronaut["refiner"] == {"backend": "template", "model": ""}
    # Images missing from the file fall back to the bundled captions, like the builder.
    assert by_clip["chelsea_c0"]["prompting"]["caption"] == by_clip["chelsea_c0"]["caption"]
    assert not (dataset / ".prompt_cache").exists()  # local backends are not cached


def test_source_images_are_captioned_once_and_last_frames_are_the_fallback(tmp_path, server):
    rng = np.random.default_rng(0)
    sources = tmp_path / "sources"
    sources.mkdir()
    ramp = np.linspace(40, 220, 96)[None, :, None] * np.ones((72, 1, 3))
    for name in ("a", "b", "c"):
        image = np.clip(ramp + rng.normal(0, 20, ramp.shape), 0, 255).astype(np.uint8)
        from PIL import Image

        Image.fromarray(image).save(sources / f"{name}.png")
    dataset = _build(tmp_path / "ds", "adaptive", sources, clips_per_image=2)

    run(compose_prompts(dataset, *openai_overrides(server, key=False, refiner=False)))
    infos = [r["prompting"] for r in records(dataset)]
    assert len(infos) == 6 and {i["image"] for i in infos} == {"source"}
    assert server.count("caption") == 3  # two clips per source image, one request per image
    assert infos[0]["caption"] == infos[1]["caption"] != infos[2]["caption"]
    assert infos[0]["prompt"] == compose_adaptive_prompt(LOWLIGHT["adaptive_template"], infos[0]["caption"])

    # Without the source images, the clips' clean last frames are captioned.
    sources.rename(tmp_path / "moved")
    server.reset()
    run(compose_prompts(dataset, *openai_overrides(server, key=False, refiner=False)))
    assert {r["prompting"]["image"] for r in records(dataset)} == {"last_frame"}
    # The two clips of an image end on the same clean frame: one request (per-key lock).
    assert server.count("caption") == 3


# ----------------------------------------------------------------------------------------------
# Robustness
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "status, retry_after, extra",
    [
        (429, "0", ["backoff_s=30"]),  # Retry-After wins over a long backoff
        (503, "3600", ["max_retry_after_s=0.01"]),  # ... capped
        (500, None, []),
    ],
)
def test_retries_on_429_and_5xx_succeed(dataset, server, status, retry_after, extra):
    server.fail_first, server.fail_status, server.retry_after = 3, status, retry_after
    start = time.perf_counter()
    run(compose_prompts(dataset, *openai_overrides(server, key=False), "retries=3", *extra))
    assert time.perf_counter() - start < 10
    assert server.count() == 8 + 8 + 3
    assert len(lines(dataset / "prompts_adaptive.txt")) == 8


def test_slow_replies_time_out_are_retried_and_reported(dataset, server, tmp_path):
    server.slow_first, server.slow_s = 2, 1.0
    run(compose_prompts(dataset, *openai_overrides(server, key=False), "timeout_s=0.3"))
    assert server.count() == 8 + 8 + 2
    prompts = (dataset / "prompts_adaptive.txt").read_bytes()

    server.reset()
    server.slow_first, server.slow_s = 10**6, 0.6
    overrides = ["timeout_s=0.3", "retries=1", f"cache_dir={tmp_path / 'other_cache'}"]
    with pytest.raises(PromptsError) as err:
        run(compose_prompts(dataset, *openai_overrides(server, key=False), *overrides))
    message = str(err.value)
    assert "8 of 8 clips have no prompt" in message
    assert "no answer within timeout_s=0.3" in message and "gave up after 2 attempts" in message
    assert server.count("caption") == 16  # every image tried twice
    assert (dataset / "prompts_adaptive.txt").read_bytes() == prompts  # nothing rewritten


def test_401_fails_fast_with_a_clear_message_without_the_key(dataset, server, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv(KEY_ENV, KEY)
    server.status_always = 401
    prompts = (dataset / "prompts_adaptive.txt").read_bytes()
    with pytest.raises(BackendError) as err:
        run(compose_prompts(dataset, *openai_overrides(server), "concurrency=1"))
    message = str(err.value)
    assert "HTTP 401" in message and "invalid credentials" in message and "api_key_env" in message
    assert KEY not in message and "***" in message  # the server echoed the header; redacted
    assert server.count() == 1  # no retry, no other clip tried
    assert (dataset / "prompts_adaptive.txt").read_bytes() == prompts
    assert_no_key(dataset, texts=(caplog.text,))


def test_key_settings_errors_never_echo_the_key(dataset, server, monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    with pytest.raises(BackendError, match=f"{KEY_ENV} but that environment variable is not set"):
        run(compose_prompts(dataset, *openai_overrides(server)))
    for override in (f"captioner.api_key_env={KEY}", f"+captioner.api_key={KEY}"):
        with pytest.raises(BackendError) as err:
            run(compose_prompts(dataset, *openai_overrides(server, key=False), override))
        assert KEY not in str(err.value) and "api_key_env" in str(err.value)
    assert server.count() == 0


def test_unreachable_server_stops_the_run_after_its_retries(dataset):
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    overrides = ["captioner=openai", f"captioner.base_url=http://127.0.0.1:{port}/v1", "retries=1"]
    with pytest.raises(BackendError) as err:
        run(compose_prompts(dataset, *overrides, "concurrency=1"))
    assert (
        err.value.fatal
        and "connection failed" in str(err.value)
        and "gave up after 2 attempts" in str(err.value)
    )
    assert not list((dataset / ".prompt_cache").glob("*/*.json"))


def test_failed_run_then_rerun_requests_only_the_gaps(dataset, server):
    server.fail_new_images = 3  # three images fail with 500 for good
    prompts = (dataset / "prompts_adaptive.txt").read_bytes()
    with pytest.raises(PromptsError) as err:
        run(compose_prompts(dataset, *openai_overrides(server, key=False), "retries=1"))
    assert "3 of 8 clips have no prompt" in str(err.value) and "this image always fails" in str(err.value)
    assert (dataset / "prompts_adaptive.txt").read_bytes() == prompts
    failed = set(server.failed_images)
    assert len(failed) == 3 and cached(dataset, "captions") == 5 and cached(dataset, "refined") == 5

    server.reset()  # the server is fixed
    report = run(compose_prompts(dataset, *openai_overrides(server, key=False)))
    assert set(server.images()) == failed and server.count("caption") == 3 and server.count("refine") == 3
    assert report.captions_cached == 5 and report.refinements_cached == 5
    assert len(lines(dataset / "prompts_adaptive.txt")) == 8


def test_over_long_prompt_is_cut_at_a_word_boundary_with_a_warning(dataset, server, caplog):
    server.long_reply_words = 300
    run(compose_prompts(dataset, *openai_overrides(server, key=False)))
    warnings = [
        r for r in caplog.records if r.levelno == logging.WARNING and "max_tokens=226" in r.getMessage()
    ]
    assert len(warnings) == 8  # one per clip
    for record, line in zip(records(dataset), lines(dataset / "prompts_adaptive.txt"), strict=True):
        info = record["prompting"]
        full = refined(info["caption"]) + " " + " ".join(f"word{i}" for i in range(300))
        assert info["truncated"] is True and info["prompt"] == line
        assert full.startswith(line + " ") and estimate_tokens(line) == info["tokens"] <= 226
        next_word = full[len(line) :].split()[0]
        assert estimate_tokens(f"{line} {next_word}") > 226  # the longest prefix that fits


def test_llava_without_local_weights_fails_first_naming_the_path_and_the_fetch_command(dataset, tmp_path):
    before = sorted(p.name for p in dataset.iterdir())
    missing = tmp_path / "nope"
    with pytest.raises(BackendError) as err:
        run(compose_prompts(dataset, "captioner=llava", f"captioner.path={missing}"))
    assert str(missing) in str(err.value) and "does not exist" in str(err.value)
    assert "huggingface-cli download llava-hf/llava-1.5-7b-hf" in str(err.value)

    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "config.json").write_text("{}")
    with pytest.raises(BackendError, match="incomplete.*preprocessor_config.json.*model weights"):
        run(compose_prompts(dataset, "captioner=llava", f"captioner.path={partial}"))
    assert sorted(p.name for p in dataset.iterdir()) == before  # nothing done before the check

    default = OmegaConf.to_container(compose_prompts(dataset, "captioner=llava").captioner, resolve=True)
    assert default["path"].endswith("models/llava-1.5-7b-hf")


def test_token_counter_estimate_rule_and_local_tokenizer(tmp_path):
    assert estimate_tokens("A dark view.") == 4 + 1 + 1  # ceil(1.3*3) + "." + EOS
    counter = TokenCounter(None)
    text, count, truncated = counter.fit("one two three four five six", 6)
    assert (text, count, truncated) == ("one two three", 5, True)

    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    word_level = Tokenizer(models.WordLevel({"[UNK]": 0, "a": 1}, unk_token="[UNK]"))
    word_level.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=word_level, unk_token="[UNK]").save_pretrained(
        tmp_path / "model" / "tokenizer"
    )
    counter = TokenCounter(str(tmp_path / "model"))  # a CogVideoX folder: tokenizer/ inside
    assert counter.rule.startswith("tokenizer") and counter.count("a b, c.") == 5
    assert counter.fit("a b c d e", 3) == ("a b c", 3, True)


# ----------------------------------------------------------------------------------------------
# The CLI, in a subprocess
# ----------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_cli_end_to_end_and_401_keep_the_key_out_of_files_and_logs(dataset, server, tmp_path):
    args = [*openai_overrides(server), "progress=false", "image_max_side=64", "backoff_s=0.01"]
    result = run_module(
        "src.prompts",
        f"dataset={dataset}",
        *args,
        f"hydra.run.dir={tmp_path / 'run1'}",
        env_extra={KEY_ENV: KEY},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert len(lines(dataset / "prompts_adaptive.txt")) == 8 and server.count() == 16
    assert (tmp_path / "run1" / ".hydra" / "config.yaml").is_file() and (
        tmp_path / "run1" / "prompts.log"
    ).is_file()

    server.reset()
    server.status_always = 401
    result = run_module(
        "src.prompts",
        f"dataset={dataset}",
        *args,
        f"hydra.run.dir={tmp_path / 'run2'}",
        f"cache_dir={tmp_path / 'cache2'}",
        env_extra={KEY_ENV: KEY},
    )
    output = result.stdout + result.stderr
    assert result.returncode == 2 and "HTTP 401" in output and "Traceback" not in output
    assert_no_key(dataset, tmp_path / "run1", tmp_path / "run2", texts=(output,))


@pytest.mark.slow
def test_killed_cli_run_is_resumed_without_asking_twice(dataset, server, tmp_path):
    server.slow_first, server.slow_s = 10**6, 0.3
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    args = [*openai_overrides(server, key=False), "concurrency=1", "progress=false", "image_max_side=64"]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "src.prompts",
            f"dataset={dataset}",
            *args,
            f"hydra.run.dir={tmp_path / 'run'}",
        ],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while cached(dataset, "captions") < 3 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
    finally:
        proc.kill()
        proc.wait()
    done = cached(dataset, "captions")
    assert 3 <= done < 8, "the run should have been killed midway"

    server.reset()
    run(compose_prompts(dataset, *openai_overrides(server, key=False)))
    assert server.count("caption") == 8 - done and server.count("refine") == 8
    assert len(lines(dataset / "prompts_adaptive.txt")) == 8
