"""The browser of the demo's tests and screenshots: Debian's Chromium (`make browser`), driven by
Playwright (``playwright install`` cannot download browsers here); no sandbox (containers run as
root), no GPU, nothing that reaches the network itself."""

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
