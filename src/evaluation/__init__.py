"""The library of ``python -m src.eval`` (src/eval.py is its command line):

- ``options``: every option of conf/eval.yaml, typed and checked once (:class:`EvalOptions`);
- ``readers``: the evaluation sets (synthetic, all-in-one, paired, ReLoBlur), held-out photos, captions;
- ``scoring``: the scores of one image against its clean target;
- ``images``: the image evaluation run (restore, score, baselines, temporal consistency, samples);
- ``baselines``: the classical restoration of each task and category (bicubic, Richardson-Lucy / unsharp, gamma + denoise);
- ``aggregate``: per-image records into frame_metrics.json's means and categories;
- ``tables``: metrics.csv, eval_table.md and frame_metrics.json in the run dir;
- ``wandb_logging``: the W&B run of an image evaluation.

Videos with ground truth (``data=video``) are evaluated by :mod:`src.video.evaluate`.
"""
