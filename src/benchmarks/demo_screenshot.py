"""make demo-screenshot: the docs' pictures of the browser demo (docs/demo.md), taken in headless Chromium.

    python -m src.benchmarks.demo_screenshot [--ckpt outputs/bench_video/train_lowlight]

Starts ``python -m src.demo`` on a free port with the checkpoint (default: the lowlight run of
``make bench-video``), uploads a darkened held-out photograph (Set5 butterfly at a quarter of its
brightness) and a short clip made from it in the Gradio page, and saves the page after each
restore to experiments/reports/demo/{photo,clip}.png.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from fractions import Fraction

import numpy as np
from PIL import Image

from src.utils.config import PROJECT_ROOT, shared_dir

OUT = PROJECT_ROOT / "experiments" / "reports" / "demo"


def start_demo(ckpt: str, run_dir) -> tuple[subprocess.Popen, str]:
    command = [sys.executable, "-m", "src.demo", f"ckpt={ckpt}", "port=0", f"hydra.run.dir={run_dir}"]
    server = subprocess.Popen(
        command, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    deadline = time.time() + 180
    while time.time() < deadline:
        line = server.stdout.readline()
        if line.startswith("progrestore demo: http"):
            return server, line.split(": ", 1)[1].strip()
        if not line and server.poll() is not None:
            break
    server.kill()
    sys.exit("the demo did not start")


def main(argv: list[str] | None = None) -> int:
    from playwright.sync_api import sync_playwright

    from src.video import io as vio
    from src.webdemo.browser import CHROMIUM, CHROMIUM_FLAGS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", default="outputs/bench_video/train_lowlight")
    args = parser.parse_args(argv)
    work = PROJECT_ROOT / "outputs" / "demo_screenshot"
    work.mkdir(parents=True, exist_ok=True)
    OUT.mkdir(parents=True, exist_ok=True)
    photo = np.asarray(Image.open(shared_dir() / "data" / "set5" / "butterfly.png").convert("RGB"))
    dark = (photo.astype(np.float32) * 0.25).round().astype(np.uint8)
    Image.fromarray(dark).save(work / "dark butterfly.png")
    crop = dark[64:128, 40 : 40 + 112 + 24]
    with vio.VideoWriter(work / "dark pan.mp4", 112, 64, Fraction(24)) as writer:
        writer.write(np.stack([crop[:, i : i + 112] for i in range(24)]))
    server, url = start_demo(args.ckpt, work / f"run_{time.strftime('%Y%m%d_%H%M%S')}")
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, args=list(CHROMIUM_FLAGS), headless=True
            )
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(url)
            page.wait_for_selector("#restore", timeout=60000)
            for name, upload, ready in (
                ("photo", "dark butterfly.png", "#image-result #restored img"),
                ("clip", "dark pan.mp4", "#video-result #restored-video video"),
            ):
                clear = page.locator("#upload button[aria-label='Clear']")
                if clear.count():  # the previous upload
                    clear.first.click()
                page.set_input_files("#upload input[type=file]", str(work / upload))
                page.locator("#upload", has_text=upload).wait_for(timeout=60000)
                page.click("#restore")
                page.wait_for_selector(ready, timeout=600000)
                page.wait_for_timeout(3000)  # the images load, the videos start playing
                page.screenshot(path=str(OUT / f"{name}.png"), full_page=True)
                print(f"wrote {OUT / f'{name}.png'}")
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
