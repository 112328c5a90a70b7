"""Restoring images and videos with a trained adapter: the typed options of ``src.restore`` (and
the inference settings ``src.eval`` shares), the per-image outputs (frames, trajectory video,
strip, restored image, summaries) and the restore runs themselves. The command line is
``src/restore.py``; the demo and the evaluation call this package."""
