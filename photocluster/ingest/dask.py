"""Per-photo work on a Dask distributed cluster (``scan --executor dask``).

The client keeps the catalog: it submits (path, size, mtime_ns) tasks, a bounded number at a
time, and yields :class:`PhotoResult` in completion order, so ``scan`` writes them in batches
exactly as it does for a local pool (same resumability, same incremental behaviour). Workers
read the photos from a path they share with the client and build their face model once.

When a worker dies, Dask reschedules what it was running. A task whose workers keep dying
(``distributed.scheduler.allowed-failures``) comes back as ``KilledWorker``; like
:class:`~photocluster.ingest.executors.PoolExecutor`, such photos are then re-run one at a time, and
only a photo that still kills workers on its own is recorded as failed.

``distributed`` is imported lazily: photocluster works without it (``photocluster[dask]``).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import pickle
import queue
import socket
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from concurrent.futures import CancelledError
from typing import Any
from urllib.parse import urlsplit

from photocluster.catalog.photo_status import PhotoStatus
from photocluster.errors import PhotoclusterError
from photocluster.ingest.analyse import PhotoResult
from photocluster.ingest.encoder import EncoderParams, FaceEncoder
from photocluster.ingest.executors import EncoderFactory, Task, safe_analyse
from photocluster.ingest.imaging import register_heif

CONNECT_TIMEOUT = 5.0  # seconds to reach the scheduler before giving up
WORKER_TIMEOUT = 30.0  # seconds to wait for a first worker to join
NO_WORKER_TIMEOUT = 300.0  # seconds with work queued and no worker at all before giving up
POLL_SECONDS = 5.0
TASKS_PER_THREAD = 3  # photos in flight per worker thread: enough to keep every worker busy
CRASHED = "the image decoder or face model crashed on this file"


def _distributed() -> Any:
    try:
        import distributed
    except ImportError as exc:
        raise PhotoclusterError(
            "`--executor dask` needs the Dask distributed package: install photocluster[dask] "
            "(pip install 'photocluster[dask]')."
        ) from exc
    return distributed


def _probe(distributed: Any, address: str, timeout: float) -> str | None:
    """Why ``address`` is not a reachable Dask scheduler, or None. Plain tcp:// only.

    A plain TCP connect first, so a refused port fails at once instead of after distributed's
    retries; then distributed's handshake, so a port held by something else (the dashboard on
    8787, a proxy) is a clear error rather than a half-built client.
    """
    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    if parts.scheme != "tcp" or not parts.hostname or not parts.port:
        return None  # tls://, ucx:// ...: security settings apply; leave it to distributed
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=timeout):
            pass
    except OSError as exc:
        return exc.strerror or str(exc) or type(exc).__name__

    async def handshake() -> None:
        comm = await distributed.comm.connect(address, timeout=timeout)
        await comm.close()

    try:
        asyncio.run(asyncio.wait_for(handshake(), timeout + 1))
    except Exception as exc:  # garbage answers fail in many ways (even MemoryError)
        return f"it does not answer like a Dask scheduler ({type(exc).__name__})"
    return None


def connect(
    address: str, timeout: float = CONNECT_TIMEOUT, worker_timeout: float = WORKER_TIMEOUT
) -> Any:
    """A ``distributed.Client`` for ``address`` with at least one worker, or a clear error.

    Runs before any work starts, so an unreachable scheduler leaves the catalog untouched.
    """
    distributed = _distributed()
    hint = (
        "Start one with `dask scheduler` and point --scheduler (or PHOTOCLUSTER_SCHEDULER) at the "
        "address it prints, e.g. tcp://HOST:8786."
    )
    reason = _probe(distributed, address, timeout)
    if reason is not None:
        raise PhotoclusterError(f"Cannot reach the Dask scheduler at {address}: {reason}. {hint}")
    try:
        client = distributed.Client(address, timeout=timeout, set_as_default=False)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise PhotoclusterError(
            f"Cannot reach the Dask scheduler at {address}: {first}. {hint}"
        ) from exc
    try:
        client.wait_for_workers(1, timeout=worker_timeout)
    except TimeoutError:
        client.close()
        raise PhotoclusterError(
            f"The Dask scheduler at {address} has no workers (waited {worker_timeout:.0f} s). "
            f"Start some with `dask worker {address} --nthreads 1 --nworkers N`."
        ) from None
    except BaseException:
        client.close()
        raise
    return client


# Per-worker state: the loaded face models, one per (encoder settings, worker thread). Built on
# a worker's first photo and kept for the life of the worker process, so dlib loads once.
_worker_models: dict[tuple[str, int], FaceEncoder] = {}
_worker_models_lock = threading.Lock()


def _encoder_on_worker(token: str, factory: EncoderFactory, params: EncoderParams) -> FaceEncoder:
    key = (token, threading.get_ident())  # dlib objects are not shared between threads
    encoder = _worker_models.get(key)
    if encoder is None:
        with _worker_models_lock:
            if not _worker_models:
                register_heif()
            encoder = _worker_models[key] = factory(params)
    return encoder


def analyse_on_worker(
    token: str, factory: EncoderFactory, params: EncoderParams, task: Task
) -> PhotoResult:
    """The function each Dask task runs."""
    return safe_analyse(task, _encoder_on_worker(token, factory, params), params)


def _model_token(factory: EncoderFactory, params: EncoderParams) -> str:
    """Names the model a worker caches: the same factory and settings share one model."""
    try:
        return hashlib.sha256(pickle.dumps((factory, params))).hexdigest()[:16]
    except Exception:  # an unpicklable factory (cloudpickle still ships it): one model per scan
        return uuid.uuid4().hex


def _failed(task: Task, error: str) -> PhotoResult:
    return PhotoResult(
        path=task.path,
        size=task.size,
        mtime_ns=task.mtime_ns,
        status=PhotoStatus.FAILED,
        error=error,
    )


class DaskExecutor:
    """Runs photos on a Dask cluster through ``client``; ``close()`` releases the client."""

    def __init__(
        self,
        client: Any,
        factory: EncoderFactory,
        params: EncoderParams,
        *,
        in_flight: int | None = None,
        poll_seconds: float = POLL_SECONDS,
        no_worker_timeout: float = NO_WORKER_TIMEOUT,
    ) -> None:
        self.client = client
        self.factory = factory
        self.params = params
        self.fixed_window = in_flight
        self.poll_seconds = poll_seconds
        self.no_worker_timeout = no_worker_timeout
        self._token = _model_token(factory, params)
        self._inflight: dict[Any, Task] = {}
        self._done: queue.Queue[Any] = queue.Queue()

    @property
    def address(self) -> str:
        return str(self.client.scheduler.address)

    def _window(self) -> int:
        if self.fixed_window is not None:
            return max(1, self.fixed_window)
        threads = sum(self.client.nthreads().values())
        return max(2, TASKS_PER_THREAD * threads)

    def _check_shared_path(self, path: str) -> None:
        """Every worker must see the photos at the client's path (a shared mount)."""
        seen = self.client.run(os.path.exists, path)
        blind = sorted(worker for worker, ok in seen.items() if not ok)
        if blind:
            raise PhotoclusterError(
                f"{len(blind)} Dask worker(s) cannot see {path} ({', '.join(blind[:3])}). "
                "Mount the photo folder at the same path on every worker machine."
            )

    def _submit(self, task: Task) -> Any:
        future = self.client.submit(
            analyse_on_worker,
            self._token,
            self.factory,
            self.params,
            task,
            key=f"analyse_photo-{uuid.uuid4().hex}",
            pure=False,
        )
        self._inflight[future] = task
        # Called from the client's thread when the future finishes, errs or is cancelled.
        future.add_done_callback(self._done.put)
        return future

    def _wait_any(self) -> list[Any]:
        """The finished futures; a clear error if the cluster stays without workers."""
        idle_since: float | None = None
        while True:
            try:
                done = [self._done.get(timeout=self.poll_seconds)]
            except queue.Empty:
                pass
            else:
                while not self._done.empty():
                    done.append(self._done.get_nowait())
                return [f for f in done if f in self._inflight]
            if self.client.status not in ("running", "connecting"):
                raise PhotoclusterError(
                    f"Lost the connection to the Dask scheduler at {self.address}. Photos "
                    "finished so far are saved; run the same command again to continue."
                )
            if self.client.nthreads():
                idle_since = None
                continue
            idle_since = idle_since or time.monotonic()
            if time.monotonic() - idle_since > self.no_worker_timeout:
                raise PhotoclusterError(
                    f"The Dask cluster at {self.address} has had no workers for "
                    f"{self.no_worker_timeout:.0f} s. Photos finished so far are saved; start "
                    "workers and run the same command again to continue."
                )

    def run(self, tasks: Iterable[Task]) -> Iterator[PhotoResult]:
        killed_worker = _distributed().KilledWorker
        pending = iter(tasks)
        first = next(pending, None)
        if first is None:
            return
        self._check_shared_path(first.path)
        queue: list[Task] = [first]
        suspects: list[Task] = []
        isolated: Any = None
        while True:
            # While suspects remain, run exactly one photo at a time to find the culprit.
            window = 1 if suspects else self._window()
            while len(self._inflight) < window:
                if suspects:
                    task: Task | None = suspects.pop(0)
                else:
                    task = queue.pop() if queue else next(pending, None)
                if task is None:
                    break
                future = self._submit(task)
                isolated = future if window == 1 else None
            if not self._inflight:
                break
            for future in self._wait_any():
                task = self._inflight.pop(future)
                try:
                    result = future.result()
                except killed_worker:
                    if future is isolated:
                        yield _failed(task, CRASHED)
                    else:
                        suspects.append(task)
                    continue
                except CancelledError as exc:
                    raise PhotoclusterError(
                        f"Dask cancelled the work on {task.path} ({exc}); the scheduler may "
                        "have restarted. Photos finished so far are saved; run the same command "
                        "again to continue."
                    ) from exc
                except Exception as exc:
                    # safe_analyse turns every per-photo error into data, so this is the cluster
                    # (e.g. a worker without photocluster), and every photo would fail the same.
                    raise PhotoclusterError(
                        f"A Dask worker could not run photocluster on {task.path}: "
                        f"{type(exc).__name__}: {exc}. Install the same photocluster version "
                        "on every worker."
                    ) from exc
                finally:
                    future.release()
                yield result

    def close(self) -> None:
        """Cancel photos still in flight and release the client (safe to call twice)."""
        inflight, self._inflight = list(self._inflight), {}
        client = self.client
        if client is None:
            return
        self.client = None
        try:
            if inflight and client.status == "running":
                client.cancel(inflight, force=True)
        finally:
            client.close(timeout=10)


class DaskCluster:
    """A connection to a Dask scheduler, made before the scan starts; hands out the executor.

    ``executor_factory`` fits :attr:`photocluster.ingest.scan.ScanOptions.executor_factory`: the
    ``jobs`` argument is ignored because the cluster's workers set the parallelism.
    """

    def __init__(self, address: str, timeout: float = CONNECT_TIMEOUT) -> None:
        self.address = address
        self.client: Any = connect(address, timeout)
        self._executor: DaskExecutor | None = None

    def describe(self) -> str:
        """E.g. "2 workers, 2 threads" — for a note on stderr."""
        threads = self.client.nthreads() if self.client is not None else {}
        return f"{len(threads)} workers, {sum(threads.values())} threads"

    def executor_factory(
        self, jobs: int, factory: EncoderFactory, params: EncoderParams
    ) -> DaskExecutor:
        if self.client is None:
            raise PhotoclusterError("The Dask connection is already closed.")
        self._executor = DaskExecutor(self.client, factory, params)
        self.client = None  # the executor owns (and closes) it from now on
        return self._executor

    def close(self) -> None:
        if self._executor is not None:
            self._executor.close()
        if self.client is not None:
            self.client.close(timeout=10)
            self.client = None

    def __enter__(self) -> DaskCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
