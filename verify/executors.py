"""Executors for ``nncert bench`` and ``nncert certify``: a local process pool or Dask.

Every engine is used through one interface, :class:`concurrent.futures.Executor`
(``submit(fn, *args) -> Future``), and both commands run their tasks through
:func:`run_each`, so the loop (results as they finish, retries after a lost worker, an
in-flight limit for budgeted runs) is the same whatever runs the tasks (ECOSYSTEM.md 7.2):

* ``"local"`` (default): :class:`concurrent.futures.ProcessPoolExecutor` on the
  ``forkserver`` context (``spawn`` where forkserver does not exist). Each worker caps the
  BLAS/OpenMP thread pools at one thread (:func:`worker_setup`) and HiGHS runs with
  ``threads=1`` (the registry's default; one fixed value per process, ECOSYSTEM.md 8.1).
  Workers are *not* recycled (``max_tasks_per_child``): on Python 3.11 a pool that replaces
  a retired worker can hang (observed here after exactly ``jobs x max_tasks_per_child``
  tasks), and nncert's workers hold no solver state between tasks.
* ``"dask"``: ``dask.distributed`` -- a :class:`~distributed.LocalCluster` with one
  single-threaded worker process per job, or an existing cluster: ``address`` is a scheduler
  address (``tcp://host:8786``) or the JSON file written by ``dask scheduler
  --scheduler-file``. The executor wraps ``client.get_executor(pure=False)``, a real
  ``concurrent.futures.Executor``. Connecting gives up after :data:`CONNECT_TIMEOUT` seconds
  with a :class:`ClusterConnectionError` (an input error: exit 3).

Ray was offered once through an adapter that never ran (Ray was not installed); it is gone:
Ray 2.58 installs 255 MB (the wheel alone 78 MB), its start-up is about 2.6 s, and it buys
nothing here (ECOSYSTEM.md 7.1). ``executor="ray"`` is rejected with a message that says so
(:data:`REMOVED_EXECUTORS`).

Why Dask is the distributed engine:

* **Same interface as the local pool.** ``Client.get_executor()`` is a
  ``concurrent.futures.Executor``; the bench loop, resume journal and progress bar need no
  engine-specific code.
* **The workload is small tasks.** Tasks are tiny (file paths, a seed, an epsilon; for
  ``certify`` a network and a property); networks are rebuilt and cached inside each worker.
* **Sane worker defaults.** Dask workers set ``OMP/MKL/OPENBLAS_NUM_THREADS=1``, and they see
  installed packages the normal way.
* **Scale-out path.** The same code runs on a cluster started with ``dask scheduler`` and
  ``dask worker`` (the ``dask`` extra installs both commands), including HPC queues through
  ``dask-jobqueue``.

Lost workers. Dask reschedules the tasks of a worker that dies on another worker (up to
``distributed.scheduler.allowed-failures`` times, then the task fails with ``KilledWorker``).
A local pool whose worker dies is broken as a whole (every unfinished future fails with
:class:`~concurrent.futures.process.BrokenProcessPool`); :func:`run_each` then starts a new
pool and resubmits the unfinished tasks, each at most :data:`WORKER_LOSS_RETRIES` more times.
A task that still has no result is returned with its error, which the commands report as an
error row (``bench``: not journalled, so ``--resume`` runs it again).

Dask is an optional dependency (``pip install "nncert[dask]"``); every import of it is inside
:func:`make_executor`.

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
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, BrokenExecutor, Executor, Future, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from nncert.verify.errors import NncertError
from nncert.verify.processes import (
    Interrupted,
    exit_with_parent,
    pool_worker_init,
    stop_children_on_signals,
    terminate_children,
    worker_setup,
)

#: executor names accepted by :func:`make_executor`
EXECUTORS: tuple[str, ...] = ("local", "dask")

#: executors offered by earlier versions: name -> why they are gone (the rejection message)
REMOVED_EXECUTORS: dict[str, str] = {
    "ray": "Ray support was removed (the adapter had never been tested, and Ray installs "
    "255 MB); use 'dask', with --address for an existing cluster",
}

#: seconds :func:`make_executor` waits for an existing Dask scheduler to answer
CONNECT_TIMEOUT = 5.0

#: how many more times :func:`run_each` submits a task whose local pool broke under it
WORKER_LOSS_RETRIES = 2

T = TypeVar("T")


class ExecutorUnavailableError(NncertError, RuntimeError):
    """The requested engine is not installed (the message names the pip requirement)."""


class ClusterConnectionError(NncertError, ConnectionError):
    """No Dask scheduler answered at the given address within :data:`CONNECT_TIMEOUT`."""


def resolve_executor(kind: str | None, address: str | None = None) -> str:
    """The executor to use for ``kind`` and ``address`` (``None``: ``dask`` with an address,
    else ``local``).

    Raises:
        ValueError: an unknown or removed executor, or an ``address`` for the local pool.
    """
    if kind is None:
        return "dask" if address else "local"
    if kind in REMOVED_EXECUTORS:
        raise ValueError(f"executor {kind!r}: {REMOVED_EXECUTORS[kind]}")
    if kind not in EXECUTORS:
        raise ValueError(f"executor={kind!r} must be one of {', '.join(EXECUTORS)}")
    if address and kind != "dask":
        raise ValueError(f"--address {address}: a scheduler address needs the dask executor")
    return kind


def _pool_context() -> Any:
    import multiprocessing

    methods = multiprocessing.get_all_start_methods()
    method = "forkserver" if "forkserver" in methods and sys.platform != "win32" else "spawn"
    return multiprocessing.get_context(method)


class _DaskExecutor(Executor):
    """``client.get_executor(pure=False)`` plus :meth:`capacity` (the cluster's threads)."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._inner = client.get_executor(pure=False)

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        fut: Future[Any] = self._inner.submit(fn, *args, **kwargs)
        return fut

    def capacity(self) -> int:
        """Worker threads connected now (at least 1)."""
        try:
            return max(1, sum(int(n) for n in self._client.nthreads().values()))
        except Exception:  # the scheduler went away: the futures will say so
            return 1

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._inner.shutdown(wait=wait and not cancel_futures)


def capacity(executor: Executor, default: int) -> int:
    """How many tasks ``executor`` runs at once: a Dask cluster's threads, else ``default``."""
    fn = getattr(executor, "capacity", None)
    return max(1, int(fn())) if callable(fn) else max(1, default)


def _dask_client(address: str, timeout: float) -> Any:
    """A ``distributed.Client`` for ``address`` (a scheduler address or a scheduler file)."""
    from distributed import Client

    is_file = address.endswith(".json") or Path(address).is_file()
    try:
        if is_file:
            if not Path(address).is_file():
                raise ClusterConnectionError(f"--address {address}: no such scheduler file")
            return Client(scheduler_file=address, timeout=timeout)
        return Client(address, timeout=timeout)
    except ClusterConnectionError:
        raise
    except (OSError, TimeoutError, ValueError, TypeError, KeyError, AssertionError) as err:
        # a scheduler file that is not one (another file, "{}") fails inside distributed with
        # a KeyError or an AssertionError
        why = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ClusterConnectionError(
            f"--address {address}: no Dask scheduler answered within {timeout:g} s; start one "
            f"with `dask scheduler` or check the address ({why})"
        ) from err


@contextlib.contextmanager
def make_executor(
    kind: str,
    jobs: int,
    *,
    address: str | None = None,
    connect_timeout: float = CONNECT_TIMEOUT,
) -> Iterator[Executor]:
    """Context manager yielding a ``concurrent.futures.Executor`` of the given kind.

    Args:
        kind: ``"local"`` or ``"dask"``.
        jobs: number of worker processes (``>= 1``); ignored when ``address`` is given.
        address: an existing Dask cluster: its scheduler address (``tcp://host:8786``) or
            the JSON file of ``dask scheduler --scheduler-file`` (``None``: start a local
            cluster).
        connect_timeout: seconds to wait for the scheduler at ``address``.

    Raises:
        ValueError: unknown or removed ``kind``, ``jobs < 1``, or ``address`` without Dask.
        ExecutorUnavailableError: the engine is not installed.
        ClusterConnectionError: no scheduler answered at ``address`` in time.
    """
    kind = resolve_executor(kind, address)
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
    try:
        from distributed import Client, LocalCluster
    except ImportError as err:
        raise ExecutorUnavailableError(
            "the dask executor needs dask.distributed: pip install 'nncert[dask]'"
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
        client = _dask_client(address, connect_timeout)
    try:
        yield _DaskExecutor(client)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def call_in_worker(fn: Callable[..., Any], /, *args: Any) -> Any:
    """``fn(*args)`` after :func:`worker_setup` (what :func:`run_each` submits)."""
    worker_setup()
    return fn(*args)


@dataclass(frozen=True)
class Finished(Generic[T]):
    """How one item of :func:`run_each` ended.

    Attributes:
        item: the item.
        value: what the function returned (``None`` on error or when it did not run).
        error: the exception (raised by the function, or the worker's loss), else ``None``.
        ran: ``False`` when ``prepare`` declined to run the item.
        attempts: how often the item was submitted (more than 1 after a lost local pool).
    """

    item: T
    value: Any = None
    error: BaseException | None = None
    ran: bool = True
    attempts: int = 1


def run_each(
    fn: Callable[..., Any],
    items: Iterable[T],
    *,
    kind: str = "local",
    jobs: int = 1,
    address: str | None = None,
    prepare: Callable[[T], tuple[Any, ...] | None] | None = None,
    lazy: bool = False,
    retries: int = WORKER_LOSS_RETRIES,
    notify: Callable[[str], None] | None = None,
) -> Iterator[Finished[T]]:
    """Run ``fn(*prepare(item))`` for every item; yield each :class:`Finished` as it ends.

    With the local executor and one job the calls run in this process, in order. Otherwise
    they run on :func:`make_executor` (wrapped in :func:`call_in_worker`); the executor is only
    opened when there is an item. When a local pool breaks (a worker was killed), a new pool
    is started and the unfinished items are submitted again, each at most ``retries`` more
    times; Dask reschedules the tasks of a lost worker itself.

    Args:
        fn: a picklable module-level function.
        items: the work items.
        kind: executor (see :func:`make_executor`).
        jobs: worker processes.
        address: an existing Dask cluster (see :func:`make_executor`).
        prepare: ``item -> args`` of ``fn``, called right before the item is submitted;
            ``None`` skips the item (yielded with ``ran=False``). Default ``(item,)``.
        lazy: submit only as many items as the executor runs at once (``jobs``, or a Dask
            cluster's threads), so that ``prepare`` sees the time at which the item starts;
            else everything is submitted at once.
        retries: resubmissions of an item after its local pool broke.
        notify: receives one line when a broken pool is replaced.

    Raises:
        ValueError, ExecutorUnavailableError, ClusterConnectionError: see
        :func:`make_executor`.
    """
    todo = list(items)
    kind = resolve_executor(kind, address)

    def args_of(item: T) -> tuple[Any, ...] | None:
        return (item,) if prepare is None else prepare(item)

    if kind == "local" and jobs == 1:
        for item in todo:
            args = args_of(item)
            if args is None:
                yield Finished(item, ran=False, attempts=0)
                continue
            try:
                value = fn(*args)
            except Exception as err:
                yield Finished(item, error=err)
                continue
            yield Finished(item, value)
        return
    attempts = [0] * len(todo)
    queue = deque(range(len(todo)))
    while queue:
        with make_executor(kind, jobs, address=address) as ex:
            pending: dict[Future[Any], int] = {}
            again: list[int] = []
            broken = False
            try:
                while (queue and not broken) or pending:
                    limit = capacity(ex, jobs) if lazy else len(queue) + len(pending)
                    while queue and not broken and len(pending) < limit:
                        i = queue.popleft()
                        args = args_of(todo[i])
                        if args is None:
                            yield Finished(todo[i], ran=False, attempts=attempts[i])
                            continue
                        attempts[i] += 1
                        try:
                            pending[ex.submit(call_in_worker, fn, *args)] = i
                        except BrokenExecutor:
                            broken = True
                            again.append(i)
                    if not pending:
                        continue
                    done, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for fut in done:
                        i = pending.pop(fut)
                        try:
                            value = fut.result()
                        except BrokenExecutor as err:
                            broken = True
                            if attempts[i] <= retries:
                                again.append(i)
                            else:
                                yield Finished(todo[i], error=err, attempts=attempts[i])
                        except Exception as err:
                            yield Finished(todo[i], error=err, attempts=attempts[i])
                        else:
                            yield Finished(todo[i], value, attempts=attempts[i])
            except BaseException:
                for f in pending:
                    f.cancel()
                raise
        if again and notify is not None:
            notify(
                f"a worker process died; starting a new pool for the {len(again)} unfinished "
                f"task(s) and {len(queue)} waiting"
            )
        queue = deque(sorted([*again, *queue]))


__all__ = [
    "CONNECT_TIMEOUT",
    "EXECUTORS",
    "REMOVED_EXECUTORS",
    "WORKER_LOSS_RETRIES",
    "ClusterConnectionError",
    "ExecutorUnavailableError",
    "Finished",
    "Interrupted",
    "call_in_worker",
    "capacity",
    "exit_with_parent",
    "make_executor",
    "pool_worker_init",
    "resolve_executor",
    "run_each",
    "stop_children_on_signals",
    "terminate_children",
    "worker_setup",
]
