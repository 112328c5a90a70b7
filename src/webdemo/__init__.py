"""The browser demo of a trained adapter (``python -m src.demo``, entry point ``src/demo.py``): a
Gradio page (``app``) over the restore jobs (``jobs``: the upload checks and limits, the model of
each task, the photo and clip restores with their progress), with every setting typed once
(``options``). ``browser`` names the headless Chromium the demo's tests and screenshots drive."""
