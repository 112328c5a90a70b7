"""The library of ``python -m src.report`` (src/report.py is its command line):

- ``runs``: collecting the runs (frame_metrics.json files) and their labels;
- ``figures``: metric-vs-frame curves and the per-category bar charts;
- ``tables``: the summary, per-frame and per-category tables (report.md, W&B, src.eval's table);
- ``write``: report.md, report.json and the figures of a report, and the sweep statistics (``--sweep``);
- ``wandb_logging``: the W&B run of a report, only when asked.

Sweep statistics themselves live in :mod:`src.analysis.sweep`, video figures in :mod:`src.video.figures`.
"""
