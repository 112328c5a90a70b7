"""The browser demo (python -m src.demo, a Gradio page): the one-line messages of bad settings,
requests and uploads (through ``gradio_client`` against the running demo, and the request checks
directly), an upload restored through the API, and a real headless Chromium (Debian's
/usr/bin/chromium, driven by Playwright; `make browser` installs it) that loads the page, uploads
a photo and a clip and sees the results appear, with every request that would leave 127.0.0.1
aborted and recorded (the network cut: there must be none)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest
from PIL import Image

from src.data.images import IMAGE_EXTENSIONS
from src.utils.cli import UserError
from src.utils.config import PROJECT_ROOT
from src.video import io as vio
from src.webdemo.browser import CHROMIUM as DEFAULT_CHROMIUM
from src.webdemo.browser import CHROMIUM_FLAGS
from src.webdemo.jobs import UploadError, parse_request

from .conftest import run_module

pytestmark = pytest.mark.slow
CHROMIUM = os.environ.get("PROGRESTORE_CHROMIUM", DEFAULT_CHROMIUM)
ACCEPTED = f"upload a photo ({' '.join(sorted(IMAGE_EXTENSIONS))}) or a clip ({' '.join(vio.VIDEO_SUFFIXES)})"


@pytest.fixture(scope="module")
def demo_url(trained_run, tmp_path_factory):
    """A demo on a free port (2 sampling steps; small limits to test them), its URL."""
    run_dir = tmp_path_factory.mktemp("demo") / "run"
    command = [
        sys.executable, "-m", "src.demo", f"ckpt={trained_run}", "port=0", "num_inference_steps=2",
        "max_video_seconds=3", "max_pixels=200000", "max_upload_mb=1", f"hydra.run.dir={run_dir}",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    server = subprocess.Popen(
        command, cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    url, seen, deadline = None, [], time.time() + 180
    while time.time() < deadline and url is None:
        line = server.stdout.readline()
        if not line and server.poll() is not None:
            break
        seen.append(line)
        if line.startswith("progrestore demo: http"):
            url = line.split(": ", 1)[1].strip()
    assert url, "the demo did not start:\n" + "".join(seen)[-3000:]
    assert urlsplit(url).hostname == "127.0.0.1"
    yield url
    server.terminate()
    server.wait(timeout=30)


@pytest.fixture(scope="module")
def client(demo_url, tmp_path_factory):
    from gradio_client import Client

    return Client(demo_url, verbose=False, download_files=str(tmp_path_factory.mktemp("downloads")))


def restore(client, path: Path, task="checkpoint", prompt="checkpoint", text="", caption="", seed=0):
    from gradio_client import handle_file

    return client.predict(handle_file(str(path)), task, prompt, text, caption, seed, api_name="/restore")


def png(path: Path, height: int, width: int, seed: int = 0) -> Path:
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)).save(
        path
    )
    return path


def test_bad_settings_and_a_missing_gradio_are_one_line(monkeypatch):
    result = run_module("src.demo", "ckpt=nowhere", "port=70000", timeout=120)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == ["error: port must be >= 0 and <= 65535, got 70000"]

    from src.webdemo.launch import GRADIO_MISSING, require_gradio

    monkeypatch.setitem(sys.modules, "gradio", None)  # find_spec answers None: not installed
    with pytest.raises(UserError) as err:
        require_gradio()
    assert (
        str(err.value) == GRADIO_MISSING == 'the demo needs Gradio: pip install -e ".[demo]" (make install)'
    )


def test_bad_requests_get_one_clear_message_each():
    cases = [
        (("denoise", "checkpoint", "", "", 0), "task must be one of allinone, deblur, lowlight, sr (or checkpoint), got 'denoise'"),
        (("sr", "poem", "", "", 0), "prompt must be one of checkpoint, uniform, text, got 'poem'"),
        (("sr", "text", "   ", "", 0), "'your own words' needs a prompt: write it in the text field"),
        (("sr", "text", "x" * 1001, "", 0), "the prompt is 1001 characters long; at most 1000"),
        (("sr", "checkpoint", "", "y" * 1200, 0), "the caption is 1200 characters long; at most 1000"),
        (("sr", "checkpoint", "", "", -1), "seed must be a whole number from 0 to 4294967295, got '-1'"),
        (("sr", "checkpoint", "", "", 2.5), "seed must be a whole number from 0 to 4294967295, got '2.5'"),
        (("sr", "checkpoint", "", "", 2**32), "seed must be a whole number from 0 to 4294967295, got '4294967296'"),
    ]  # fmt: skip
    for args, message in cases:
        with pytest.raises(UploadError) as err:
            parse_request("lowlight", *args)
        assert str(err.value) == message
    request = parse_request("lowlight", "checkpoint", "text", "  It   brightens. ", "", 7.0)
    assert (request.task, request.prompt_choice, request.text, request.seed) == (
        "lowlight",
        "text",
        "It brightens.",
        7,
    )


def test_bad_uploads_get_one_clear_message_each(client, tmp_path):
    from gradio_client.exceptions import AppError

    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video " * 50)
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    huge = tmp_path / "huge.png"
    huge.write_bytes(b"x" * (3 * 2**19))
    long_clip = vio.make_test_clip(tmp_path / "long.mp4", frames=100, width=32, height=24, fps="24")
    big_clip = vio.make_test_clip(tmp_path / "wide.mp4", frames=4, width=640, height=480, fps="24")
    ok = png(tmp_path / "ok.png", 16, 16)
    cases = [
        (notes, {}, f"notes.txt is not a supported file: its content is not an image we can read; {ACCEPTED}"),
        (png(tmp_path / "big.png", 500, 500), {}, "big.png is 500x500 (0.2 megapixels); this demo takes photos up to 200000 pixels (max_pixels=200000): downscale it"),
        (big_clip, {}, "wide.mp4 has 640x480 frames; this demo takes frames up to 200000 pixels (max_pixels=200000): downscale it"),
        (long_clip, {}, "long.mp4 is 4.2 s long; this demo restores clips up to 3 s (max_video_seconds=3): trim it"),
        (huge, {}, "the upload is 1.5 MB; this demo takes files up to 1 MB (max_upload_mb=1)"),
        (empty, {}, "empty.png is empty (0 bytes): choose a photo or a clip"),
        (ok, {"seed": -1}, "seed must be a whole number from 0 to 4294967295, got '-1'"),
        (ok, {"prompt": "text", "text": "z" * 1001}, "the prompt is 1001 characters long; at most 1000"),
        (ok, {"caption": "w" * 1001}, "the caption is 1001 characters long; at most 1000"),
        (ok, {"prompt": "text"}, "'your own words' needs a prompt: write it in the text field"),
    ]  # fmt: skip
    for path, fields, message in cases:
        with pytest.raises(AppError) as err:
            restore(client, path, **fields)
        assert str(err.value) == message, (path.name, fields)
    with pytest.raises(AppError) as err:
        restore(client, broken)
    assert str(err.value).startswith("broken.mp4") and "video" in str(err.value)


def test_an_upload_restores_through_the_api_with_the_users_prompt(client, tmp_path):
    photo = png(tmp_path / "cat photo.png", 40, 60, seed=1)
    answer = restore(client, photo, prompt="text", text="It brightens.", seed=3)
    _input, restored, trajectory, strip, restored_video, side_by_side, files, used = answer
    assert np.asarray(Image.open(restored)).shape == (40, 60, 3)
    assert restored_video is None and side_by_side is None and Path(trajectory).suffix == ".mp4"
    assert Image.open(strip).width > 60
    by_name = {Path(f).name: f for f in files}
    assert {"restored.png", "strip.png", "trajectory.mp4", "trajectory.gif", "restore.json"} <= set(by_name)
    record = json.loads(Path(by_name["restore.json"]).read_text())
    assert (record["prompt"], record["prompt_mode"], record["seed"]) == ("It brightens.", "text", 3)
    assert record["input"] == "cat photo.png" and used.startswith("restored cat photo.png in ")


def _chromium():
    if not Path(CHROMIUM).is_file() or shutil.which(CHROMIUM) is None:
        message = f"no browser at {CHROMIUM}: run `make browser` (Debian's chromium package)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    return sync_playwright


def _wait_until(page, expression: str, timeout_s: float) -> None:
    """Poll a JavaScript expression until it is truthy (``page.evaluate`` goes through the
    DevTools protocol; ``page.wait_for_function`` compiles its predicate with ``eval`` in the page,
    which a Content-Security-Policy may forbid in recent Chromium builds)."""
    deadline = time.monotonic() + timeout_s
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"timed out after {timeout_s} s waiting for {expression}"
        page.wait_for_timeout(100)


def _downloads(page) -> set[str]:
    return set(page.eval_on_selector_all("#downloads a[download]", "as => as.map(a => a.download)"))


def _upload(page, path: Path) -> None:
    """Choose a file in the upload field (clearing the previous one first)."""
    clear = page.locator("#upload button[aria-label='Clear']")
    if clear.count():
        clear.first.click()
    page.set_input_files("#upload input[type=file]", str(path))
    page.locator("#upload", has_text=path.name).wait_for(timeout=30000)


def test_in_a_real_browser_a_photo_and_a_clip_restore_with_the_network_cut(demo_url, tmp_path):
    sync_playwright = _chromium()
    photo = png(tmp_path / "dark room.png", 48, 80, seed=2)
    notes = tmp_path / "notes.txt"
    notes.write_text("not a photo")
    clip = vio.make_test_clip(
        tmp_path / "clip.mp4", frames=4, width=48, height=32, fps="30000/1001", audio=True
    )
    outside: list[str] = []  # requests that would have left this machine (aborted)

    def guard(route):
        url = route.request.url
        if url.startswith(("data:", "blob:")) or urlsplit(url).hostname in ("127.0.0.1", "localhost"):
            route.continue_()
        else:
            outside.append(url)
            route.abort()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=list(CHROMIUM_FLAGS), headless=True
        )
        try:
            page = browser.new_page()
            page.route("**/*", guard)
            page.goto(demo_url)
            page.wait_for_selector("#restore", timeout=60000)
            assert "trained for lowlight" in page.inner_text("#intro")

            _upload(page, notes)
            page.click("#restore")
            error = page.locator("[data-testid='toast-text']", has_text="notes.txt is not a supported file")
            error.first.wait_for(timeout=60000)
            page.locator("[data-testid='toast-close']").first.click()

            _upload(page, photo)
            page.click("#restore")
            page.wait_for_selector("#image-result #restored img", timeout=300000)
            _wait_until(page, "document.querySelector('#restored img').naturalWidth > 0", 30)
            assert page.evaluate("document.querySelector('#restored img').naturalWidth") == 80
            _wait_until(page, "document.querySelector('#strip img')?.naturalWidth > 80", 30)
            assert page.is_hidden("#video-result")
            assert page.input_value("#status textarea").startswith("restored dark room.png in ")
            _wait_until(page, "document.querySelectorAll('#downloads a[download]').length >= 5", 30)
            assert {
                "restored.png",
                "strip.png",
                "trajectory.mp4",
                "trajectory.gif",
                "restore.json",
            } <= _downloads(page)

            _upload(page, clip)
            page.click("#restore")
            page.wait_for_selector("#video-result #restored-video video", timeout=300000)
            _wait_until(page, "document.querySelector('#restored-video video').readyState >= 1", 30)
            assert page.evaluate("document.querySelector('#restored-video video').duration") > 0.1
            page.wait_for_selector("#side-by-side video", timeout=30000)
            assert page.is_hidden("#image-result")
            _wait_until(page, "document.querySelectorAll('#downloads a[download]').length == 3", 30)
            assert {"restored.mp4", "side_by_side.mp4", "restore.json"} == _downloads(page)
        finally:
            browser.close()
    assert outside == [], f"the page asked the internet for {outside}"
