"""python -m src.demo ckpt=<run dir | lora dir | .ckpt> [port=8765] [host=127.0.0.1]

A browser demo of a trained adapter: a Gradio page (``src.webdemo``; nothing fetched from the
internet, no login, bound to 127.0.0.1 unless ``host=`` says otherwise) that uploads a photo or a
short clip, with the task (sr, deblur, lowlight, allinone; default: the checkpoint's), the prompt
(the checkpoint's prompt mode, the task's uniform prompt, or the user's own words) and a seed;
one job restores at a time, with a progress bar over the sampling steps, and the page shows the
trajectory and the restored image (or the restored clip and its side by side) with downloads.

Every option of conf/demo.yaml is checked once (``src.webdemo.options.DemoOptions``): a bad one
is one line and exit 2, before the checkpoint is read or the port taken. Once the page answers,
``progrestore demo: http://<host>:<port>/`` is printed on stdout (port=0 picks a free port).
Gradio is the optional extra ``demo`` (``pip install -e ".[demo]"``; ``make install`` has it).
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from src.utils.cli import hydra_cli, user_errors
from src.utils.config import CONFIG_DIR
from src.webdemo.options import DemoOptions

USAGE = "python -m src.demo ckpt=<run dir | lora dir | .ckpt> [port=8765] [host=127.0.0.1]"


@hydra.main(config_path=str(CONFIG_DIR), config_name="demo", version_base="1.3")
@user_errors(USAGE)
def main(cfg: DictConfig) -> None:
    from src.webdemo.launch import serve

    serve(DemoOptions.from_config(cfg))


if __name__ == "__main__":
    hydra_cli(main, "demo")
