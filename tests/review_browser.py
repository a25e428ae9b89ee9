"""The review server in a thread and headless Debian chromium driven by Playwright, for the
browser tests and for the README's screenshots (tools/review_screenshots.py)."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from photocluster.catalog.db import Catalog
from photocluster.review.server import ReviewConfig, Server, bind, create_app

CHROMIUM = "/usr/bin/chromium"


def chromium_problem() -> str | None:
    """Why Debian's chromium cannot run here (None: it can)."""
    if not Path(CHROMIUM).is_file():
        return f"{CHROMIUM} is not installed (.ci/install-system-deps installs it)"
    try:
        done = subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--version"],
            capture_output=True,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{CHROMIUM} does not start: {exc}"
    if done.returncode != 0:
        return f"{CHROMIUM} --version failed: {done.stderr.decode(errors='replace')[:200]}"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as exc:
        return f"playwright is not installed: {exc}"
    return None


@contextmanager
def live_server(
    catalog: Catalog, cache_dir: Path, token: str, *, read_only: bool = False
) -> Iterator[str]:
    """The review app served on a free port of 127.0.0.1; yields its base URL."""
    sock = bind("127.0.0.1", 0)
    cfg = ReviewConfig(catalog, cache_dir, token, "tester via review", read_only)
    server = Server(create_app(cfg), sock)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.stop()
        thread.join(timeout=10)


@contextmanager
def browser(viewport: tuple[int, int] = (1280, 900)) -> Iterator[Any]:
    """A page in a fresh headless chromium context."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
        )
        try:
            context = b.new_context(
                viewport={"width": viewport[0], "height": viewport[1]}, device_scale_factor=1
            )
            yield context
        finally:
            b.close()
