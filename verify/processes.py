"""Process lifetime: worker set-up, and worker processes that end with their parent.

* :func:`worker_setup` caps the BLAS/OpenMP thread pools of a worker at one thread;
* :func:`limit_blas` caps the BLAS thread pool for a block of code (threadpoolctl, when
  installed);
* :func:`stop_children_on_signals` (installed by the ``nncert`` command line) turns SIGTERM and
  SIGINT into: terminate every child process (SIGTERM, then SIGKILL after 2 s), then raise
  :class:`Interrupted` (a ``KeyboardInterrupt``) in the main thread, so pools and temporary
  files are cleaned up on the way out;
* :func:`exit_with_parent`, called by every pool worker's initializer
  (:func:`pool_worker_init`), starts a thread that ends the worker when its parent process is
  gone (killed with SIGKILL, crashed), so no worker outlives the run even when no handler could
  run.

Standard library only: used by the searches (branch and bound's workers) as well as by the
applications (:mod:`nncert.verify.executors`, the command line).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

#: environment variables that cap BLAS/OpenMP thread pools
THREAD_VARS = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)

_SETUP_DONE = False


def worker_setup() -> None:
    """Make the current process a well-behaved single-threaded worker (idempotent).

    Sets the usual BLAS/OpenMP thread variables to 1 (effective for libraries loaded after
    this call) and, when ``threadpoolctl`` is importable, also caps pools already loaded.
    """
    global _SETUP_DONE
    if _SETUP_DONE:
        return
    for var in THREAD_VARS:
        os.environ[var] = "1"
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except Exception:  # threadpoolctl is optional; the env vars are the main mechanism
        pass
    _SETUP_DONE = True


def limit_blas(threads: int | None) -> contextlib.AbstractContextManager[Any]:
    """Cap the BLAS thread pool at ``threads`` inside a ``with`` block (restored after it).

    Uses ``threadpoolctl`` when it is installed (imported on the first call); a no-op
    otherwise, and for ``threads=None``.
    """
    if threads is None:
        return contextlib.nullcontext()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - optional
        return contextlib.nullcontext()
    return threadpool_limits(limits=int(threads), user_api="blas")


_WATCHED_PID = 0


def exit_with_parent(interval: float = 0.5) -> None:
    """End this process (``os._exit(1)``) soon after its parent process dies.

    Call it in a worker process (a pool initializer), never in the main process. A daemon
    thread waits on the sentinel of :func:`multiprocessing.parent_process` (a pipe whose other
    end only the parent holds, so it reports the death of the process that *created* the
    worker, also through a forkserver) and checks :func:`os.getppid` every ``interval``
    seconds. Idempotent per process (a forked child calls it again for itself).
    """
    global _WATCHED_PID
    if _WATCHED_PID == os.getpid():
        return
    import multiprocessing

    parent = multiprocessing.parent_process()
    ppid = os.getppid()

    def watch() -> None:
        while True:
            if parent is not None:
                parent.join(interval)  # returns early when the parent is gone
                if not parent.is_alive():
                    os._exit(1)
            else:
                time.sleep(interval)
            if ppid > 1 and os.getppid() != ppid:
                os._exit(1)

    threading.Thread(target=watch, name="nncert-exit-with-parent", daemon=True).start()
    _WATCHED_PID = os.getpid()


def pool_worker_init() -> None:
    """Initializer of nncert's process pools: :func:`worker_setup` and :func:`exit_with_parent`."""
    worker_setup()
    exit_with_parent()


def terminate_children(grace: float = 2.0) -> int:
    """Terminate the child processes of this process; returns how many were alive.

    Each child gets SIGTERM; those still alive after ``grace`` seconds get SIGKILL.
    """
    import multiprocessing

    children = multiprocessing.active_children()
    for p in children:
        with contextlib.suppress(Exception):
            p.terminate()
    end = time.monotonic() + grace
    for p in children:
        with contextlib.suppress(Exception):
            p.join(max(0.0, end - time.monotonic()))
            if p.is_alive():
                p.kill()
                p.join(1.0)
    return len(children)


class Interrupted(KeyboardInterrupt):
    """SIGTERM or SIGINT arrived (``signum``); raised in the main thread after the child
    processes were terminated."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


@contextlib.contextmanager
def stop_children_on_signals(signals: Sequence[int] | None = None) -> Iterator[None]:
    """While active, SIGTERM and SIGINT terminate child processes and raise :class:`Interrupted`.

    A second signal during the clean-up exits at once (``os._exit(128 + signum)``). A no-op
    outside the main thread (Python delivers signals only there). Forked children inherit the
    handler; in them it restores the default action and re-raises the signal, so they die as
    they would have without it.
    """
    import signal

    sigs = tuple(signals) if signals is not None else (signal.SIGTERM, signal.SIGINT)
    owner = os.getpid()
    seen: list[int] = []

    def handler(signum: int, frame: Any) -> None:
        if os.getpid() != owner:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        if seen:  # the clean-up hangs or the user insists
            terminate_children(grace=0.0)
            os._exit(128 + signum)
        seen.append(signum)
        terminate_children()
        raise Interrupted(signum)

    old: dict[int, Any] = {}
    try:
        for s in sigs:
            old[s] = signal.signal(s, handler)
    except ValueError:  # not the main thread
        for s, h in old.items():
            signal.signal(s, h)
        yield
        return
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


__all__ = [
    "THREAD_VARS",
    "Interrupted",
    "exit_with_parent",
    "limit_blas",
    "pool_worker_init",
    "stop_children_on_signals",
    "terminate_children",
    "worker_setup",
]
