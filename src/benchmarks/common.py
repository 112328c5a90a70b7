"""What every benchmark shares: the machine it ran on (recorded next to each result) and running
one of the project's command lines as a timed subprocess."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from src.utils.config import PROJECT_ROOT


def machine_info() -> dict:
    import av
    import cv2
    import numpy as np

    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "opencv": cv2.__version__,
        "pyav": av.__version__,
        "date": time.strftime("%Y-%m-%d"),
    }


def run_cli(command: list[str], threads: int | None = None) -> float:
    """Run ``command`` in the repository root (W&B quiet; ``OMP_NUM_THREADS=threads`` if given);
    exit with one line if it fails. Returns its minutes."""
    started = time.time()
    env = {**os.environ, "WANDB_SILENT": "true"}
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    result = subprocess.run(command, cwd=PROJECT_ROOT, env=env)
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} failed (exit {result.returncode})")
    return (time.time() - started) / 60
