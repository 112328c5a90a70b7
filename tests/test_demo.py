"""The browser demo (python -m src.demo): its HTTP API's messages for bad uploads, and a real headless
Chromium (Debian's /usr/bin/chromium, driven by Playwright; `make browser` installs it) that loads
the page, uploads a photo and a clip, and sees the results appear."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import quote, urlencode

import numpy as np
import pytest
from PIL import Image

from src.demo import CHROMIUM as DEFAULT_CHROMIUM
from src.demo import CHROMIUM_FLAGS
from src.utils.config import PROJECT_ROOT
from src.video import io as vio

pytestmark = pytest.mark.slow
CHROMIUM = os.environ.get("PROGRESTORE_CHROMIUM", DEFAULT_CHROMIUM)


@pytest.fixture(scope="module")
def demo_url(trained_run, tmp_path_factory):
    """A demo server on a free port (2 sampling steps; small limits to test them), its URL."""
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
    yield url
    server.terminate()
    server.wait(timeout=30)


def post(url: str, data: bytes, filename: str, **fields) -> tuple[int, dict]:
    request = urllib.request.Request(
        url + "api/restore?" + urlencode(fields),
        data=data,
        method="POST",
        headers={"X-Filename": quote(filename)},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def wait_for(url: str, job_id: str, timeout: float = 300) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        with urllib.request.urlopen(f"{url}api/jobs/{job_id}", timeout=30) as answer:
            status = json.loads(answer.read())
        if status["state"] in ("done", "error"):
            return status
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} did not finish in {timeout} s")


def png_bytes(height: int, width: int, seed: int = 0) -> bytes:
    import io

    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)).save(
        buffer, format="PNG"
    )
    return buffer.getvalue()


def test_bad_uploads_get_one_clear_message_each(demo_url, tmp_path):
    long_clip = vio.make_test_clip(tmp_path / "long.mp4", frames=100, width=32, height=24, fps="24")
    cases = [
        (b"hello", "notes.txt", {}, 415, "is not a supported file"),
        (b"not a video " * 50, "broken.mp4", {}, 415, "cannot be opened as a video"),
        (png_bytes(500, 500), "big.png", {}, 413, "500x500"),
        (long_clip.read_bytes(), "long.mp4", {}, 413, "up to 3 s"),
        (b"", "empty.png", {}, 400, "is empty"),
        (b"x" * (3 * 2**19), "huge.png", {}, 413, "files up to 1 MB"),
        (png_bytes(16, 16), "ok.png", {"task": "denoise"}, 400, "task must be one of"),
        (png_bytes(16, 16), "ok.png", {"prompt": "text"}, 400, "needs a prompt"),
        (png_bytes(16, 16), "ok.png", {"seed": "-1"}, 400, "seed must be a whole number"),
    ]
    for data, name, fields, code, message in cases:
        status, answer = post(demo_url, data, name, **fields)
        assert (status, message in answer.get("error", "")) == (code, True), (name, status, answer)
    for path, code in (("files/0123456789abcdef/restored.png", 404), ("api/jobs/nope", 400)):
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(demo_url + path, timeout=30)
        assert err.value.code == code


def test_an_upload_restores_through_the_api_with_the_users_prompt(demo_url):
    status, job = post(
        demo_url, png_bytes(40, 60, seed=1), "cat photo.png", prompt="text", text="It brightens."
    )
    assert status == 202, job
    done = wait_for(demo_url, job["id"])
    assert done["state"] == "done", done
    assert done["prompt"] == "It brightens." and done["input"] == {"width": 60, "height": 40}
    with urllib.request.urlopen(demo_url.rstrip("/") + done["files"]["restored.png"], timeout=30) as answer:
        restored = np.asarray(Image.open(__import__("io").BytesIO(answer.read())))
    assert restored.shape == (40, 60, 3)
    record = json.loads(urllib.request.urlopen(demo_url.rstrip("/") + done["files"]["restore.json"]).read())
    assert record["prompt"] == "It brightens." and record["prompt_mode"] == "text"


def _chromium():
    if not Path(CHROMIUM).is_file() or shutil.which(CHROMIUM) is None:
        message = f"no browser at {CHROMIUM}: run `make browser` (Debian's chromium package)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    return sync_playwright


def _wait_until(page, expression: str, timeout_s: float) -> None:
    """Poll a JavaScript expression until it is truthy. (``page.wait_for_function`` compiles its
    predicate with ``eval`` in the page, which the demo's Content-Security-Policy forbids in recent
    Chromium builds; ``page.evaluate`` goes through the DevTools protocol.)"""
    deadline = time.monotonic() + timeout_s
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"timed out after {timeout_s} s waiting for {expression}"
        page.wait_for_timeout(100)


def test_in_a_real_browser_a_photo_and_a_clip_restore(demo_url, tmp_path):
    sync_playwright = _chromium()
    photo = tmp_path / "dark room.png"
    photo.write_bytes(png_bytes(48, 80, seed=2))
    notes = tmp_path / "notes.txt"
    notes.write_text("not a photo")
    clip = vio.make_test_clip(
        tmp_path / "clip.mp4", frames=4, width=48, height=32, fps="30000/1001", audio=True
    )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=list(CHROMIUM_FLAGS), headless=True
        )
        try:
            page = browser.new_page()
            page.goto(demo_url)
            _wait_until(page, "document.querySelector('#task').options.length > 0", 30)
            assert "trained for lowlight" in page.inner_text("#checkpoint")

            page.set_input_files("#file", str(notes))
            page.click("#restore")
            page.wait_for_selector("#error:not([hidden])", timeout=30000)
            assert "notes.txt is not a supported file" in page.inner_text("#error")

            page.set_input_files("#file", str(photo))
            page.click("#restore")
            page.wait_for_selector("#image-result:not([hidden])", timeout=300000)
            _wait_until(page, "document.querySelector('#restored').naturalWidth > 0", 30)
            assert page.evaluate("document.querySelector('#restored').naturalWidth") == 80
            assert page.is_hidden("#error") and page.is_hidden("#video-result")
            links = page.eval_on_selector_all("#downloads a", "as => as.map(a => a.textContent)")
            assert {"restored.png", "trajectory.mp4", "strip.png", "restore.json"} <= set(links)

            page.set_input_files("#file", str(clip))
            page.click("#restore")
            page.wait_for_selector("#video-result:not([hidden])", timeout=300000)
            _wait_until(page, "document.querySelector('#restored-video').readyState >= 1", 30)
            assert page.evaluate("document.querySelector('#restored-video').duration") > 0.1
            assert page.is_hidden("#image-result")
            links = page.eval_on_selector_all("#downloads a", "as => as.map(a => a.textContent)")
            assert {"restored.mp4", "side_by_side.mp4", "restore.json"} <= set(links)
        finally:
            browser.close()
