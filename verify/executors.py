"""Executors for ``nncert bench``: a local process pool and an optional Dask cluster.

Every engine is used through one interface, :class:`concurrent.futures.Executor`
(``submit(fn, *args) -> Future``), so the benchmark loop (``as_completed`` over the futures)
is the same whatever runs the tasks (ECOSYSTEM.md section 7.2):

* ``"local"`` (default): :class:`concurrent.futures.ProcessPoolExecutor` on the
  ``forkserver`` context (``spawn`` where forkserver does not exist). Each worker caps the
  BLAS/OpenMP thread pools at one thread (:func:`worker_setup`) and HiGHS runs with
  ``threads=1`` (the registry's default; one fixed value per process, ECOSYSTEM.md 8.1).
  Workers are *not* recycled (``max_tasks_per_child``): on Python 3.11 a pool that replaces
  a retired worker can hang (observed here after exactly ``jobs x max_tasks_per_child``
  tasks), and nncert's workers hold no solver state between tasks.
* ``"dask"``: ``dask.distributed`` -- a :class:`~distributed.LocalCluster` with one
  single-threaded worker process per job, or an existing scheduler (``address``); the
  executor is ``client.get_executor(pure=False)``, a real ``concurrent.futures.Executor``.
* ``"ray"``: a small adapter whose ``submit`` wraps the function with ``ray.remote`` and
  returns the ``ObjectRef``'s ``.future()``. **Untested**: Ray is not installed in the
  development environment; it is kept for users who already run a Ray cluster.

Why Dask is the supported distributed engine (and not Ray):

* **Start-up and footprint.** A ``LocalCluster`` starts in about 0.8 s; Ray needs about 2.6 s
  and 240 MB installed (ECOSYSTEM.md 7.1), which makes it unsuitable for the test suite and
  a poor fit for short benchmark runs on 2-core machines.
* **Same interface as the local pool.** ``Client.get_executor()`` is a
  ``concurrent.futures.Executor``; the bench loop, resume journal and progress bar need no
  engine-specific code. Ray only offers ``ObjectRef.future()`` through an adapter.
* **The workload does not need Ray's strengths.** Tasks are tiny (file paths, a seed, an
  epsilon); networks are rebuilt and cached inside each worker, so Ray's zero-copy object
  store buys nothing, and Ray's GPU/heterogeneous scheduling is irrelevant for CPU solvers.
* **Sane worker defaults.** Dask workers set ``OMP/MKL/OPENBLAS_NUM_THREADS=1`` (Ray sets
  them to ``num_cpus``), and they see installed packages the normal way (Ray workers do not
  inherit ``sys.path`` edits).
* **Scale-out path.** The same code runs on an existing cluster (``address="tcp://..."``),
  including HPC queues through ``dask-jobqueue``.

Dask is an optional dependency (``pip install "distributed>=2024.1"``); every import of it is
inside :func:`make_executor`.

Worker processes end with their parent (also used by branch and bound and ``nncert certify``):

* :func:`stop_children_on_signals` (installed by the ``nncert`` command line) turns SIGTERM and
  SIGINT into: terminate every child process (SIGTERM, then SIGKILL after 2 s), then raise
  :class:`Interrupted` (a ``KeyboardInterrupt``) in the main thread, so pools and temporary
  files are cleaned up on the way out;
* :func:`exit_with_parent`, called by every pool worker's initializer, starts a thread that
  ends the worker when its parent process is gone (killed with SIGKILL, crashed), so no worker
  outlives the run even when no handler could run.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future
from typing import Any

from nncert.verify.processes import (
    THREAD_VARS,
    Interrupted,
    exit_with_parent,
    pool_worker_init,
    stop_children_on_signals,
    terminate_children,
    worker_setup,
)

#: executor names accepted by :func:`make_executor`
EXECUTORS: tuple[str, ...] = ("local", "dask", "ray")


class ExecutorUnavailableError(RuntimeError):
    """The requested engine is not installed (the message names the pip requirement)."""


def _pool_context() -> Any:
    import multiprocessing

    methods = multiprocessing.get_all_start_methods()
    method = "forkserver" if "forkserver" in methods and sys.platform != "win32" else "spawn"
    return multiprocessing.get_context(method)


class _RayExecutor(Executor):
    """``concurrent.futures`` adapter over Ray (untested: Ray is not installed in CI)."""

    def __init__(self, jobs: int, address: str | None) -> None:
        import ray

        self._ray = ray
        if not ray.is_initialized():
            ray.init(
                address=address,
                num_cpus=None if address else jobs,
                include_dashboard=False,
                log_to_driver=False,
                runtime_env={"env_vars": {v: "1" for v in THREAD_VARS}},
            )
        self._remote: dict[Callable[..., Any], Any] = {}

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        remote = self._remote.get(fn)
        if remote is None:
            remote = self._ray.remote(num_cpus=1)(fn)
            self._remote[fn] = remote
        fut: Future[Any] = remote.remote(*args, **kwargs).future()
        return fut

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._ray.shutdown()


@contextlib.contextmanager
def make_executor(kind: str, jobs: int, *, address: str | None = None) -> Iterator[Executor]:
    """Context manager yielding a ``concurrent.futures.Executor`` of the given kind.

    Args:
        kind: ``"local"``, ``"dask"`` or ``"ray"``.
        jobs: number of worker processes (``>= 1``); ignored when ``address`` is given.
        address: scheduler address of an existing Dask or Ray cluster (``None``: start a
            local one).

    Raises:
        ValueError: unknown ``kind`` or ``jobs < 1``.
        ExecutorUnavailableError: the engine is not installed.
    """
    if kind not in EXECUTORS:
        raise ValueError(f"executor={kind!r} must be one of {', '.join(EXECUTORS)}")
    if jobs < 1:
        raise ValueError(f"jobs={jobs!r} must be >= 1")
    if kind == "local":
        from concurrent.futures import ProcessPoolExecutor

        pool = ProcessPoolExecutor(
            max_workers=jobs,
            mp_context=_pool_context(),
            initializer=pool_worker_init,
        )
        try:
            yield pool
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        return
    if kind == "dask":
        try:
            from distributed import Client, LocalCluster
        except ImportError as err:
            raise ExecutorUnavailableError(
                "the dask executor needs dask.distributed: pip install 'distributed>=2024.1'"
            ) from err
        cluster = None
        if address is None:
            import warnings

            with warnings.catch_warnings():
                # the scheduler's HTTP (health) server falls back to a free port when 8787 is
                # taken and warns about it; that is harmless for a private local cluster
                warnings.filterwarnings("ignore", message="Port .* is already in use")
                cluster = LocalCluster(
                    n_workers=jobs,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=None,
                    silence_logs=40,  # logging.ERROR
                )
            client = Client(cluster)
        else:
            client = Client(address)
        try:
            yield client.get_executor(pure=False)
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
        return
    try:
        import ray  # noqa: F401
    except ImportError as err:
        raise ExecutorUnavailableError(
            "the ray executor needs Ray: pip install 'ray>=2.9' (untested adapter)"
        ) from err
    ex = _RayExecutor(jobs, address)
    try:
        yield ex
    finally:
        ex.shutdown()


__all__ = [
    "EXECUTORS",
    "ExecutorUnavailableError",
    "Interrupted",
    "exit_with_parent",
    "make_executor",
    "pool_worker_init",
    "stop_children_on_signals",
    "terminate_children",
    "worker_setup",
]
