"""Where per-photo work runs: in this process, or a local process pool (one model per worker).

Executors take (path, size, mtime_ns) tasks and yield :class:`PhotoResult` in completion order.
Workers never touch the catalog; only the caller's process writes.
"""

from __future__ import annotations

import multiprocessing
import signal
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Protocol

from photocluster.analyse import PhotoResult, analyse_file
from photocluster.encoder import EncoderParams, FaceEncoder

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
            status="failed",
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


def _init_worker(factory: EncoderFactory, params: EncoderParams) -> None:
    global _worker_encoder, _worker_params
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C
    from photocluster.imaging import register_heif

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
            initargs=(self.factory, self.params),
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
                            status="failed",
                            error="the image decoder or face model crashed on this file",
                        )
                    else:
                        suspects.append(task)
            if broken:
                suspects.extend(inflight.values())
                inflight.clear()
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = self._new_pool()
        self.close()

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        # Stop promptly on Ctrl-C: don't wait for photos in flight.
        processes = list(getattr(pool, "_processes", {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for proc in processes:
            if proc.is_alive():
                proc.terminate()
        for proc in processes:
            proc.join(timeout=5)


def make_executor(jobs: int, factory: EncoderFactory, params: EncoderParams) -> Executor:
    if jobs <= 1:
        return InlineExecutor(factory, params)
    return PoolExecutor(jobs, factory, params)
