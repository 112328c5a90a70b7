"""python -m src.restore input=<image, folder or video> ckpt=<run dir | lora dir | .ckpt> [mode=tiled]

Restores each image into a progression trajectory with a trained adapter. Per image, under
``<out_dir>/<name>/``: ``frames/frame_01.png ..`` (the 9 frames at the input's resolution),
``trajectory.mp4`` (H.264 yuv420p, plays in browsers), ``trajectory.gif`` (preview),
``strip.png`` (the frames side by side), ``restored.png`` (the last frame) and ``restore.json``
(seed, prompt, mode, tiles, checkpoint, seconds). ``restore_summary.json`` lists every image and
every skipped one. Deterministic for a given seed.

A video file (or a folder of frames with ``video=true``) is restored frame by frame instead
(:mod:`src.video.restore`): ``<out_dir>/<name>/restored.mp4`` (same frame count, exact frame rate,
the source audio copied), ``side_by_side.mp4`` and ``restore.json``; consistency switches
``noise=``, ``early_stop=``, ``output_frame=``, ``color=``, ``blend=``.
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from src.restoration.options import RestoreOptions
from src.restoration.run import restore
from src.utils.cli import hydra_cli, user_errors
from src.utils.config import CONFIG_DIR


@hydra.main(config_path=str(CONFIG_DIR), config_name="restore", version_base="1.3")
@user_errors("python -m src.restore input=<image, folder or video> ckpt=<run dir | lora dir | .ckpt>")
def main(cfg: DictConfig) -> dict:
    return restore(RestoreOptions.from_config(cfg))


if __name__ == "__main__":
    hydra_cli(main, "restore")
