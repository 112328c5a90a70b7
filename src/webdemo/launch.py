"""Starting the demo: the checkpoint and output folder checked, Gradio's environment set (no
analytics, uploads under the run's folder), the page served on ``host:port`` (port 0: a free one)
and ``progrestore demo: <url>`` printed on stdout once it answers; Ctrl-C or SIGTERM stop it."""

from __future__ import annotations

import importlib.util
import logging
import os
import signal
import socket
import sys
import time
from pathlib import Path

from src.utils.cli import InputError, UserError
from src.webdemo.options import DemoOptions

log = logging.getLogger(__name__)

GRADIO_MISSING = 'the demo needs Gradio: pip install -e ".[demo]" (make install)'


def require_gradio() -> None:
    if importlib.util.find_spec("gradio") is None:
        raise UserError(GRADIO_MISSING)


def free_port(host: str) -> int:
    """A port nobody listens on now (what port=0 asks for; Gradio needs a number)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def url_of(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
    return f"http://{shown}:{port}/"


def serve(options: DemoOptions) -> None:
    require_gradio()
    from src.webdemo.jobs import DemoJobs

    jobs = DemoJobs(options)  # checkpoint and out_dir checked before the port is taken
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    os.environ.setdefault("GRADIO_TEMP_DIR", str((Path(options.out_dir) / "uploads").resolve()))
    from src.webdemo.app import build, theme
    from src.webdemo.jobs import UPLOAD_HARD_LIMIT

    logging.getLogger("httpx").setLevel(logging.WARNING)  # Gradio's own startup checks, each logged
    page = build(jobs)
    page.queue(default_concurrency_limit=1)  # one restore at a time; the others wait in line
    port = options.port
    try:
        port = port or free_port(options.host)
        page.launch(
            server_name=options.host,
            server_port=port,
            share=False,
            inbrowser=False,
            prevent_thread_lock=True,
            quiet=True,
            show_error=True,
            ssr_mode=False,
            mcp_server=False,
            allowed_paths=[str(jobs.jobs_dir.resolve())],
            max_file_size=UPLOAD_HARD_LIMIT,
            theme=theme(),
            footer_links=["api", "settings"],
        )
    except OSError as err:
        raise InputError(
            f"cannot serve on {options.host}:{port} ({err.strerror or 'in use'}): choose another "
            "port= (port=0 picks a free one) or host="
        ) from None
    jobs.start_preload()
    print(f"progrestore demo: {url_of(options.host, page.server_port)}", flush=True)
    log.info(
        "demo: checkpoint %s (task %s); jobs under %s",
        jobs.checkpoint.source,
        jobs.default_task,
        jobs.jobs_dir,
    )

    def stop(_signum, _frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)  # a terminated demo stops like Ctrl-C: cleanly
    try:
        while page.is_running:
            time.sleep(0.2)
    except KeyboardInterrupt:
        print("progrestore demo: stopped", file=sys.stderr)
    finally:
        signal.signal(signal.SIGTERM, previous)
        page.close()
