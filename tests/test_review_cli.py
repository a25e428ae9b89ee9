"""`photocluster review` as a user starts it: the address it prints (with its token) serves the
page, a port in use and a missing catalog are clear errors with exit code 1."""

from __future__ import annotations

import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from photocluster.catalog.db import Catalog
from tests.review_fixtures import build_review_catalog


def review(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "photocluster", "review", "--no-browser", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return int(r.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_serves_the_printed_address_and_refuses_others(
    tmp_path: Path, catalog: Catalog, fake_options: Any
) -> None:
    build_review_catalog(tmp_path, catalog, fake_options)
    proc = review("--db", str(catalog.path), "--read-only")
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:") and "?token=" in url
        base = url.split("?")[0]
        assert status(url) == 200
        assert status(base) == 403
        assert status(base + "?token=nope") == 403
    finally:
        proc.terminate()
        _out, err = proc.communicate(timeout=30)
    assert "Read-only" in err and "Traceback" not in err


def test_a_port_in_use_is_a_clear_error(tmp_path: Path, catalog: Catalog) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        proc = review("--db", str(catalog.path), "--port", str(port))
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1 and out == ""
    assert f"Port {port} on 127.0.0.1 is already in use" in err and "Traceback" not in err


def test_a_missing_catalog_is_a_clear_error(tmp_path: Path) -> None:
    proc = review("--db", str(tmp_path / "none.sqlite3"))
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1 and "No catalog at" in err and "scan" in err
    assert not (tmp_path / "none.sqlite3").exists()


def test_another_host_is_warned_about(tmp_path: Path, catalog: Catalog) -> None:
    proc = review("--db", str(catalog.path), "--host", "0.0.0.0")
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith("http://0.0.0.0:")
    finally:
        proc.terminate()
        _out, err = proc.communicate(timeout=30)
    assert "Warning: listening on 0.0.0.0" in err
