"""Where per-photo work runs: in this process, or a local process pool (one model per worker).

Executors take (path, size, mtime_ns) tasks and yield :class:`PhotoResult` in completion order.
Workers never touch the catalog; only the caller's process writes.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Protocol

from photocluster.catalog.photo_status import PhotoStatus
from photocluster.ingest.analyse import PhotoResult, analyse_file
from photocluster.ingest.encoder import EncoderParams, FaceEncoder
from photocluster.ingest.imaging import register_heif

EncoderFactory = Callable[[EncoderParams], FaceEncoder]


@dataclass(frozen=True)
class Task:
    path: str
    size: int
    mtime_ns: int


class Executor(Protocol):
    def run(self, tasks: Iterable[Task]) -> Iterator[PhotoResult]: ...

    def close(self) -> None: ...


def safe_analyse(task: Task, encoder: FaceEncoder, params: EncoderParams) -> PhotoResult:
    """analyse_file, with any unexpected exception turned into a failed photo."""
    try:
        return analyse_file(task.path, task.size, task.mtime_ns, encoder, params)
    except Exception as exc:  # a dlib/Pillow surprise on one photo must not stop the scan
        return PhotoResult(
            path=task.path,
            size=task.size,
            mtime_ns=task.mtime_ns,
            status=PhotoStatus.FAILED,
            error=f"unexpected error: {type(exc).__name__}: {exc}".splitlines()[0][:500],
        )


class InlineExecutor:
    """Runs every photo in this process (``--jobs 1``)."""

    def __init__(self, factory: EncoderFactory, params: EncoderParams) -> None:
        self.params = params
        self.encoder = factory(params)

    def run(self, tasks: Iterable[Task]) -> Iterator[PhotoResult]:
        for task in tasks:
            yield safe_analyse(task, self.encoder, self.params)

    def close(self) -> None:
        pass


# Per-worker-process state, set once by the pool initializer: the loaded model.
_worker_encoder: FaceEncoder | None = None
_worker_params: EncoderParams | None = None

PARENT_CHECK_SECONDS = 0.5
_PR_SET_PDEATHSIG = 1  # linux/prctl.h
USE_PDEATHSIG = sys.platform.startswith("linux")  # tests turn it off to check the watchdog alone


def _exit_with_parent(parent: int) -> None:
    """Make this worker die with the scan that started it, even when the scan is killed -9
    (the pool's own shutdown never runs then, and a worker holds ~200 MB of model).

    Linux: the kernel sends SIGKILL when the parent dies (prctl PR_SET_PDEATHSIG; strictly, when
    the parent's thread that started the worker ends: the scan's own thread, alive until it
    closes the pool). Everywhere (macOS has no prctl): a watchdog thread that ends the process
    once it has a new parent (within PARENT_CHECK_SECONDS, or when a photo in progress is done
    if the model holds the interpreter lock).
    """
    if USE_PDEATHSIG:
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before the line above took effect
        os._exit(1)
    threading.Thread(
        target=_watch_parent, args=(parent,), name="photocluster-parent-watch", daemon=True
    ).start()


def _watch_parent(parent: int) -> None:
    while True:
        time.sleep(PARENT_CHECK_SECONDS)
        if os.getppid() != parent:  # reparented (to init or a subreaper): the scan is gone
            os._exit(1)


def _init_worker(factory: EncoderFactory, params: EncoderParams, parent: int) -> None:
    global _worker_encoder, _worker_params
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C
    _exit_with_parent(parent)
    register_heif()
    _worker_encoder = factory(params)
    _worker_params = params


def _work(task: Task) -> PhotoResult:
    assert _worker_encoder is not None and _worker_params is not None
    return safe_analyse(task, _worker_encoder, _worker_params)


class PoolExecutor:
    """A local process pool. When a worker dies (e.g. a decoder crash), every photo that was in
    flight becomes a suspect and is re-run alone in a fresh pool: only a photo that crashes a
    worker on its own is recorded as failed, and the others are analysed normally."""

    def __init__(self, jobs: int, factory: EncoderFactory, params: EncoderParams) -> None:
        self.jobs = jobs
        self.factory = factory
        self.params = params
        self._pool: ProcessPoolExecutor | None = None

    def _new_pool(self) -> ProcessPoolExecutor:
        methods = multiprocessing.get_all_start_methods()
        ctx = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
        return ProcessPoolExecutor(
            max_workers=self.jobs,
            mp_context=ctx,
            initializer=_init_worker,
            initargs=(self.factory, self.params, os.getpid()),
        )

    def run(self, tasks: Iterable[Task]) -> Iterator[PhotoResult]:
        pending = iter(tasks)
        suspects: list[Task] = []
        self._pool = self._new_pool()
        inflight: dict[Future[PhotoResult], Task] = {}
        while True:
            # While suspects remain, run exactly one photo at a time to find the culprit.
            window = 1 if suspects else self.jobs * 3
            while len(inflight) < window:
                task = suspects.pop(0) if suspects else next(pending, None)
                if task is None:
                    break
                inflight[self._pool.submit(_work, task)] = task
            if not inflight:
                break
            isolated = len(inflight) == 1 and window == 1
            done, _ = wait(list(inflight), return_when=FIRST_COMPLETED)
            broken = False
            for fut in done:
                task = inflight.pop(fut)
                try:
                    yield fut.result()
                except BrokenProcessPool:
                    broken = True
                    if isolated:
                        yield PhotoResult(
                            path=task.path,
                            size=task.size,
                            mtime_ns=task.mtime_ns,
                            status=PhotoStatus.FAILED,
                            error="the image decoder or face model crashed on this file",
                        )
                    else:
                        suspects.append(task)
            if broken:
                suspects.extend(inflight.values())
                inflight.clear()
                _stop_pool(self._pool)
                self._pool = self._new_pool()
        self.close()

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            _stop_pool(pool)


def _stop_pool(pool: ProcessPoolExecutor) -> None:
    """Stop a pool now, without waiting for photos in flight (Ctrl-C, or a worker crashed).

    Workers are stopped first, then the pool's manager thread is joined (it ends as soon as they
    are gone): left running, it can close its wake-up pipe while the interpreter's exit hook
    writes to it ("Exception ignored ... OSError: [Errno 9] Bad file descriptor")."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    manager = getattr(pool, "_executor_manager_thread", None)
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in processes:
        if proc.is_alive():
            proc.terminate()
    for proc in processes:
        proc.join(timeout=5)
        if proc.is_alive():
            proc.kill()
            proc.join(timeout=5)
    if manager is not None:
        manager.join(timeout=10)


def make_executor(jobs: int, factory: EncoderFactory, params: EncoderParams) -> Executor:
    if jobs <= 1:
        return InlineExecutor(factory, params)
    return PoolExecutor(jobs, factory, params)
