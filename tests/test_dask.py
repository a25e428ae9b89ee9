"""scan on a real Dask cluster: a `dask scheduler` and two `dask worker` processes on 127.0.0.1.

The same catalog as a local scan (real dlib on sample_data), a worker killed mid-scan (every
photo once, no duplicate faces), a photo that keeps killing workers (failed, the rest analysed),
and the errors that must come before any work (unreachable scheduler, no distributed).
"""

from __future__ import annotations

import _thread
import contextlib
import functools
import json
import os
import signal
import socket
import socketserver
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from photocluster.catalog.db import open_catalog
from photocluster.cli import app
from photocluster.errors import Interrupted, PhotoclusterError
from photocluster.ingest.dask import DaskCluster, DaskExecutor
from photocluster.ingest.encoder import EncoderParams
from photocluster.ingest.executors import Task
from photocluster.ingest.scan import ScanOptions, ScanSummary, scan
from tests.conftest import ROOT, SAMPLE_DATA
from tests.fakes import PEOPLE, FakeEncoder, make_photo

distributed = pytest.importorskip("distributed", reason="the optional dask extra is not installed")

runner = CliRunner()
DASK = Path(sys.executable).parent / "dask"
# One worker death is retried by Dask; a task on two dying workers comes back as KilledWorker.
ALLOWED_FAILURES = 1
_SCAN = ["scan", "--json", "-q", "--executor", "dask"]


# --- encoders the workers unpickle by reference (they run with PYTHONPATH=ROOT) --------------


class SlowFakeEncoder(FakeEncoder):
    """FakeEncoder that takes ``delay`` seconds per photo, so a scan can be caught mid-way."""

    def __init__(self, params: EncoderParams | None, log: str, delay: float) -> None:
        super().__init__(params, log=log)
        self.delay = delay

    def detect(self, pixels: np.ndarray, upsample: int) -> list[tuple[int, int, int, int]]:
        time.sleep(self.delay)
        return super().detect(pixels, upsample)


class CrashingFakeEncoder(FakeEncoder):
    """Kills its worker process on a photo whose first pixel is (1, 2, 3)."""

    def detect(self, pixels: np.ndarray, upsample: int) -> list[tuple[int, int, int, int]]:
        if tuple(pixels[0, 0]) == (1, 2, 3):
            os._exit(3)  # a hard crash, like a segfault in a decoder
        return super().detect(pixels, upsample)


def slow_fake(params: EncoderParams, log: str, delay: float) -> FakeEncoder:
    return SlowFakeEncoder(params, log, delay)


def crashing_fake(params: EncoderParams, log: str) -> FakeEncoder:
    return CrashingFakeEncoder(params, log=log)


# --- the cluster: real processes -------------------------------------------------------------


class Cluster:
    """A `dask scheduler` and `dask worker` processes (each in its own process group)."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.procs: list[subprocess.Popen[bytes]] = []
        self.workers: list[subprocess.Popen[bytes]] = []
        self.env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": str(ALLOWED_FAILURES),
        }
        self.scheduler_file = tmp / "scheduler.json"
        self.address = ""

    def _spawn(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = open(self.tmp / f"{name}.log", "wb")  # noqa: SIM115 - lives as long as the process
        proc = subprocess.Popen(
            [str(DASK), *args],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs.append(proc)
        return proc

    def start(self, workers: int) -> None:
        self._spawn(
            "scheduler",
            "scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--dashboard-address",
            ":0",
            "--scheduler-file",
            str(self.scheduler_file),
        )
        deadline = time.monotonic() + 60
        while not self.scheduler_file.exists() or not self.scheduler_file.read_text():
            self._check_alive()
            if time.monotonic() > deadline:
                raise RuntimeError("the Dask scheduler did not start in 60 s")
            time.sleep(0.1)
        time.sleep(0.1)  # the file is written in one go, but be safe about partial reads
        self.address = json.loads(self.scheduler_file.read_text())["address"]
        for _ in range(workers):
            self.add_worker()
        self.wait_for_workers(workers)

    def add_worker(self) -> None:
        n = len(self.workers)
        self.workers.append(
            self._spawn(
                f"worker{n}",
                "worker",
                "--scheduler-file",
                str(self.scheduler_file),
                "--host",
                "127.0.0.1",
                "--nworkers",
                "1",
                "--nthreads",
                "1",
                "--dashboard-address",
                ":0",
                "--death-timeout",
                "60",
            )
        )

    def _check_alive(self) -> None:
        scheduler = self.procs[0]
        if scheduler.poll() is not None:
            log = (self.tmp / "scheduler.log").read_text()[-2000:]
            raise RuntimeError(f"`dask scheduler` exited with {scheduler.returncode}:\n{log}")

    def live_workers(self) -> list[subprocess.Popen[bytes]]:
        return [w for w in self.workers if w.poll() is None]

    def client(self) -> Any:
        return distributed.Client(self.address, timeout=10, set_as_default=False)

    def wait_for_workers(self, n: int, timeout: float = 90) -> None:
        client = self.client()
        try:
            client.wait_for_workers(n, timeout=timeout)
        finally:
            client.close()

    def worker_pids(self) -> dict[str, int]:
        client = self.client()
        try:
            return dict(client.run(os.getpid))
        finally:
            client.close()

    def kill_worker(self, proc: subprocess.Popen[bytes]) -> None:
        """SIGKILL a whole `dask worker` (nanny and worker process): a machine that vanishes."""
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    def close(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
        for proc in self.procs:
            proc.wait(timeout=30)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    if not DASK.exists():
        pytest.skip(f"no `dask` command beside {sys.executable}")
    c = Cluster(tmp_path_factory.mktemp("dask"))
    try:
        c.start(workers=2)
        yield c
    finally:
        c.close()


@pytest.fixture
def two_workers(cluster: Cluster) -> Cluster:
    """The cluster with two live workers (replacing any a previous test killed)."""
    while len(cluster.live_workers()) < 2:
        cluster.add_worker()
    cluster.wait_for_workers(2)
    return cluster


# --- helpers ----------------------------------------------------------------------------------


def _rows(db: str, sql: str) -> list[tuple[Any, ...]]:
    con = sqlite3.connect(db, timeout=30)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def _faces(db: str, root: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Per photo (relative path): status and its faces' boxes and embeddings."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    for path, status in _rows(db, "SELECT path, status FROM photos"):
        out[Path(path).relative_to(root).as_posix()] = [status]
    for path, left, top, right, bottom, blob in _rows(
        db,
        "SELECT p.path, f.left, f.top, f.right, f.bottom, f.embedding FROM faces f "
        "JOIN photos p ON p.id = f.photo_id ORDER BY p.path, f.left, f.top",
    ):
        vec = np.frombuffer(blob, dtype="<f4")
        out[Path(path).relative_to(root).as_posix()].append((left, top, right, bottom, vec))
    return out


def _duplicate_faces(db: str) -> list[tuple[Any, ...]]:
    return _rows(
        db,
        'SELECT photo_id, "left", top, count(*) FROM faces GROUP BY photo_id, "left", top '
        "HAVING count(*) > 1",
    )


def _fake_library(root: Path, n: int) -> None:
    names = sorted(PEOPLE)
    for i in range(n):
        faces = [(names[i % len(names)], (10 + 3 * (i % 20), 20, 40))]
        if i % 3 == 0:
            faces.append((names[(i + 1) % len(names)], (200, 100 + i % 30, 50)))
        make_photo(root / f"p{i:03d}.png", faces, size=(320, 240))


def _scan_with(
    db: str, root: Path, factory: Any, cluster: Cluster | None, **kw: Any
) -> ScanSummary:
    options = ScanOptions(root=str(root), jobs=1, encoder_factory=factory, **kw)
    catalog = open_catalog(db)
    try:
        if cluster is None:
            return scan(catalog, options)
        with DaskCluster(cluster.address) as dask:
            options.executor_factory = dask.executor_factory
            return scan(catalog, options)
    finally:
        catalog.close()


# --- the tests --------------------------------------------------------------------------------


@pytest.mark.dlib
@pytest.mark.slow
def test_sample_data_through_dask_gives_the_catalog_of_a_local_scan(
    two_workers: Cluster, tmp_path: Path
) -> None:
    dask_db, local_db = str(tmp_path / "dask.sqlite3"), str(tmp_path / "local.sqlite3")
    result = runner.invoke(
        app,
        [*_SCAN, str(SAMPLE_DATA), "--db", dask_db, "--scheduler", two_workers.address],
    )
    assert result.exit_code == 0, result.stderr
    assert "Traceback" not in result.stderr
    summary = json.loads(result.stdout)
    result = runner.invoke(app, ["scan", str(SAMPLE_DATA), "--db", local_db, "-q", "-j", "1"])
    assert result.exit_code == 0, result.stderr

    remote, local = _faces(dask_db, SAMPLE_DATA), _faces(local_db, SAMPLE_DATA)
    assert sorted(remote) == sorted(local) and len(local) == 8 == summary["new"]
    faces = 0
    for name, (status, *found) in local.items():
        r_status, *r_found = remote[name]
        assert r_status == status, name
        assert [f[:4] for f in r_found] == [f[:4] for f in found], name
        for a, b in zip(r_found, found, strict=True):
            np.testing.assert_allclose(a[4], b[4], atol=1e-5)
        faces += len(found)
    assert faces == summary["faces_found"] >= 7

    # Both workers did some of it (each loads its own model) and a re-run through the cluster
    # reads nothing.
    again = runner.invoke(
        app,
        [*_SCAN, str(SAMPLE_DATA), "--db", dask_db, "--scheduler", two_workers.address],
    )
    assert again.exit_code == 0, again.stderr
    assert json.loads(again.stdout)["unchanged"] == 8


@pytest.mark.slow
def test_a_worker_killed_mid_scan_loses_and_duplicates_nothing(
    two_workers: Cluster, tmp_path: Path
) -> None:
    root = tmp_path / "lib"
    _fake_library(root, 40)
    log = tmp_path / "calls.log"
    factory = functools.partial(slow_fake, log=str(log), delay=0.12)
    db = str(tmp_path / "dask.sqlite3")
    open_catalog(db).close()
    pids = two_workers.worker_pids()
    victim = two_workers.live_workers()[0]

    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["summary"] = _scan_with(db, root, factory, two_workers, batch_size=4)
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.monotonic() + 120
    while _rows(db, "SELECT count(*) FROM photos")[0][0] < 8:
        assert thread.is_alive(), f"the scan ended before the kill: {outcome}"
        assert time.monotonic() < deadline, "the scan did not commit in time"
        time.sleep(0.05)
    two_workers.kill_worker(victim)
    assert thread.is_alive(), "the worker was killed after the scan finished"
    thread.join(timeout=120)
    assert not thread.is_alive()
    assert "error" not in outcome, outcome.get("error")
    summary: ScanSummary = outcome["summary"]
    assert (summary.new, summary.processed, summary.failed_total) == (40, 40, 0)

    worked = {int(line) for line in log.read_text().split()}
    assert set(pids.values()) <= worked, "both workers analysed photos before the kill"
    assert len(log.read_text().split()) >= 40

    ref = str(tmp_path / "local.sqlite3")
    _scan_with(ref, root, functools.partial(slow_fake, log=str(tmp_path / "r.log"), delay=0), None)
    assert _rows(db, "SELECT count(*), count(DISTINCT path) FROM photos") == [(40, 40)]
    assert _duplicate_faces(db) == []
    remote, local = _faces(db, root), _faces(ref, root)
    assert {k: [f[:4] for f in v[1:]] for k, v in remote.items()} == {
        k: [f[:4] for f in v[1:]] for k, v in local.items()
    }
    # And the resumable, incremental behaviour of a local scan: a re-run reads nothing.
    again = _scan_with(db, root, factory, two_workers)
    assert (again.unchanged, again.new) == (40, 0)


@pytest.mark.slow  # a local Dask cluster
def test_ctrl_c_keeps_finished_photos_and_the_rerun_continues(
    two_workers: Cluster, tmp_path: Path
) -> None:
    root = tmp_path / "lib"
    _fake_library(root, 24)
    factory = functools.partial(slow_fake, log=str(tmp_path / "calls.log"), delay=0.1)
    db = str(tmp_path / "cat.sqlite3")
    open_catalog(db).close()

    def press_ctrl_c() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if _rows(db, "SELECT count(*) FROM photos")[0][0] >= 4:
                break
            time.sleep(0.05)
        with lock:
            if not finished.is_set():
                _thread.interrupt_main()  # KeyboardInterrupt in the main thread, like Ctrl-C

    lock, finished = threading.Lock(), threading.Event()
    watcher = threading.Thread(target=press_ctrl_c, daemon=True)
    watcher.start()
    try:
        with pytest.raises(Interrupted, match="Run the same command again to continue"):
            _scan_with(db, root, factory, two_workers, batch_size=4)
    finally:
        with lock:
            finished.set()
        watcher.join()
    kept = _rows(db, "SELECT count(*) FROM photos")[0][0]
    assert 4 <= kept < 24
    again = _scan_with(db, root, factory, two_workers, batch_size=4)
    assert (again.unchanged, again.new) == (kept, 24 - kept)
    assert _duplicate_faces(db) == []


@pytest.mark.slow
def test_a_photo_that_kills_every_worker_it_meets_fails_alone(
    two_workers: Cluster, tmp_path: Path
) -> None:
    root = tmp_path / "lib"
    _fake_library(root, 8)
    poison = Image.new("RGB", (100, 100), (128, 128, 128))
    poison.putpixel((0, 0), (1, 2, 3))
    poison.save(root / "p003_poison.png")
    log = tmp_path / "calls.log"
    db = str(tmp_path / "dask.sqlite3")
    summary = _scan_with(db, root, functools.partial(crashing_fake, log=str(log)), two_workers)
    assert summary.new == 9
    assert dict(summary.failed) == {"the image decoder or face model crashed on this file": 1}
    failed = _rows(db, "SELECT path FROM photos WHERE status = 'failed'")
    assert [Path(p).name for (p,) in failed] == ["p003_poison.png"]
    assert _rows(db, "SELECT count(*) FROM photos WHERE status = 'ok'") == [(8,)]
    assert _duplicate_faces(db) == []


@pytest.mark.slow  # a local Dask cluster
def test_workers_that_cannot_see_the_photos_are_a_clear_error(two_workers: Cluster) -> None:
    with DaskCluster(two_workers.address) as dask:
        executor = dask.executor_factory(1, FakeEncoder, EncoderParams())
        with pytest.raises(PhotoclusterError, match=r"cannot see /not/shared/x\.jpg"):
            list(executor.run([Task("/not/shared/x.jpg", 1, 1)]))
        executor.close()
        executor.close()  # twice is fine


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _NotDask(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        self.request.recv(1024)
        self.request.sendall(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n")


@pytest.fixture
def not_a_scheduler() -> Iterator[str]:
    """An address that accepts connections but is not a Dask scheduler (e.g. the dashboard)."""
    server = socketserver.TCPServer(("127.0.0.1", 0), _NotDask)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"tcp://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("kind", ["refused", "not dask"])
def test_unreachable_scheduler_fails_before_the_catalog_changes(
    tmp_path: Path, kind: str, not_a_scheduler: str
) -> None:
    root = tmp_path / "lib"
    make_photo(root / "a.png", [("ada", (20, 20, 60))])
    make_photo(root / "b.png", [("bob", (20, 20, 60))])
    db = str(tmp_path / "cat.sqlite3")
    _scan_with(db, root, FakeEncoder, None)
    (root / "b.png").unlink()  # a scan that got going would drop it from the catalog
    (root / "c.png").write_bytes((root / "a.png").read_bytes() + b"x")  # and add this
    before = _rows(db, "SELECT id, path, status, scanned_at FROM photos ORDER BY id")
    address = f"tcp://127.0.0.1:{_free_port()}" if kind == "refused" else not_a_scheduler
    started = time.monotonic()
    result = runner.invoke(
        app, ["scan", str(root), "--db", db, "--executor", "dask", "--scheduler", address]
    )
    assert result.exit_code == 1
    assert f"Cannot reach the Dask scheduler at {address}" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert _rows(db, "SELECT id, path, status, scanned_at FROM photos ORDER BY id") == before
    assert time.monotonic() - started < 60  # not stuck in a retry loop (generous bound)


def test_scheduler_comes_from_the_environment_and_is_required(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    args = ["scan", str(tmp_path), "--db", str(tmp_path / "c.sqlite3"), "--executor", "dask"]
    result = runner.invoke(app, args)
    assert result.exit_code == 1 and "--executor dask needs --scheduler" in result.stderr
    port = _free_port()
    monkeypatch.setenv("PHOTOCLUSTER_SCHEDULER", f"tcp://127.0.0.1:{port}")
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert f"Cannot reach the Dask scheduler at tcp://127.0.0.1:{port}" in result.stderr
    result = runner.invoke(app, [*args[:-1], "cloud"])
    assert result.exit_code == 1 and "unknown executor 'cloud'" in result.stderr
    assert not (tmp_path / "c.sqlite3").exists()


def test_without_distributed_the_error_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # makes `import distributed` fail
    result = runner.invoke(
        app,
        [*_SCAN, str(tmp_path), "--db", str(tmp_path / "c.sqlite3"), "--scheduler", "tcp://x:1"],
    )
    assert result.exit_code == 1
    assert "install photocluster[dask]" in result.stderr
    # The local default never needs it.
    result = runner.invoke(app, ["scan", str(tmp_path), "--db", str(tmp_path / "c.sqlite3")])
    assert result.exit_code == 0, result.stderr


@pytest.mark.slow  # a local Dask cluster
def test_executor_is_a_bounded_window_over_the_cluster(two_workers: Cluster) -> None:
    """No more than the window is ever submitted, and the model token is stable."""

    class CountingClient:
        def __init__(self, real: Any) -> None:
            self.real, self.peak, self.live = real, 0, 0

        def submit(self, *a: Any, **kw: Any) -> Any:
            self.live += 1
            self.peak = max(self.peak, self.live)
            fut = self.real.submit(*a, **kw)
            fut.add_done_callback(lambda _f: None)
            return fut

        def __getattr__(self, name: str) -> Any:
            return getattr(self.real, name)

    real = two_workers.client()
    counting = CountingClient(real)
    tasks = [Task(str(SAMPLE_DATA / "group_photo.jpg"), 1, 1) for _ in range(12)]
    executor = DaskExecutor(counting, FakeEncoder, EncoderParams(), in_flight=3)
    seen = 0
    for _result in executor.run(tasks):
        seen += 1
        counting.live -= 1
    executor.close()
    assert seen == 12 and counting.peak == 3
    same = DaskExecutor(counting, FakeEncoder, EncoderParams(), in_flight=3)
    assert same._token == executor._token
    other = DaskExecutor(counting, FakeEncoder, EncoderParams(upsample=0), in_flight=3)
    assert other._token != executor._token
    real.close()
