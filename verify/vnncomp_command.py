"""The ``nncert vnncomp`` handler (the VNN-COMP ``run_instance`` contract), and the option
and clock helpers it shares with the ``verify`` handler in :mod:`nncert.verify.commands`.

A module of its own so that a ``vnncomp`` process imports only what it runs (the pipeline,
the readers, the result file): not the certificate builder, the benchmark runner or the
compression stack that other sub-commands use (about 0.04 s of CPU per ACAS Xu instance).
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

from nncert.verify.cliutil import (
    WATCHDOG_NEVER,
    Progress,
    UsageError,
    load_model,
    load_spec,
    model_file,
    watchdog_delay,
)
from nncert.verify.errors import InvalidOptionsError, TimeLimitError
from nncert.verify.fileio import check_output_file
from nncert.verify.importers import onnxruntime_forward
from nncert.verify.options import VerifyOptions
from nncert.verify.pipeline import verify
from nncert.verify.processes import terminate_children
from nncert.verify.vnncomp import write_result_file


def options_from_args(args: argparse.Namespace, *, time_limit: float) -> VerifyOptions:
    """The :class:`VerifyOptions` of a ``verify``/``vnncomp`` command line, with
    ``time_limit``; an invalid option is a :class:`UsageError`."""
    try:
        return VerifyOptions(
            method=args.method,
            solver=args.solver,
            time_limit=time_limit,
            seed=args.seed,
            jobs=args.jobs,
            segments=args.segments,
            window=args.window,
            num_reads=args.num_reads,
            spin_budget=args.spin_budget,
            presolve=getattr(args, "presolve", True),
        )
    except InvalidOptionsError as err:
        raise UsageError(str(err)) from err


def clock_start(args: argparse.Namespace) -> float:
    """When the time limit's clock started (:func:`time.monotonic`): set by
    :func:`nncert.verify.cli.main` (the process's start for the console entry point, see
    :func:`~nncert.verify.cliutil.process_start`); now for a handler called directly."""
    start = getattr(args, "clock_start", None)
    return time.monotonic() if start is None else float(start)


#: seconds before TIMEOUT (counted from the process's start, interpreter start-up and imports
#: included: see :func:`~nncert.verify.cliutil.process_start`) at which ``vnncomp`` stops
#: reading its inputs, and at which its watchdog writes ``timeout`` if the run has not
#: written a result by then
_VNNCOMP_READ_MARGIN = 0.5
_VNNCOMP_WATCHDOG_MARGIN = 0.25


class _ResultWatchdog:
    """Writes the VNN-COMP result file exactly once, and ``timeout`` if the run overruns.

    A backstop for the ``run_instance`` contract: should any stage ignore its time limit,
    a timer thread writes ``timeout`` shortly before TIMEOUT, ends the worker processes and
    exits the process with status 0 (the result was written). Cancel it with :meth:`close`.
    """

    def __init__(self, path: Path, at: float) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._written = False
        self._timer = threading.Timer(watchdog_delay(at), self._fire)
        self._timer.daemon = True
        if self._timer.interval < WATCHDOG_NEVER:
            self._timer.start()

    def write(self, word: str, x: Any = None, y: Any = None) -> None:

        with self._lock:
            if not self._written:
                write_result_file(self.path, word, x, y)
                self._written = True

    def _fire(self) -> None:
        with self._lock:
            if self._written:
                return

            try:
                write_result_file(self.path, "timeout")
                sys.stderr.write("nncert: timeout (the run overran TIMEOUT; result written)\n")
                sys.stderr.flush()
            finally:
                terminate_children(grace=0.2)
                os._exit(0)

    def close(self) -> None:
        self._timer.cancel()


def cmd_vnncomp(args: argparse.Namespace) -> int:

    # before anything is read or written: never replace MODEL or SPEC, fail fast on a bad path
    result_file = check_output_file(
        args.result_file, inputs=(model_file(args.model), args.spec), what="result file"
    )
    try:
        timeout = float(args.timeout)
        if not (timeout > 0 and timeout < float("inf")):
            raise ValueError
    except ValueError:
        write_result_file(result_file, "error")
        raise UsageError(f"TIMEOUT={args.timeout!r} must be a number > 0") from None
    t0 = clock_start(args)  # from process start: TIMEOUT counts start-up and imports
    end = t0 + timeout
    guard = _ResultWatchdog(result_file, end - _VNNCOMP_WATCHDOG_MARGIN)
    try:
        try:
            options = options_from_args(args, time_limit=timeout)
            deadline = end - _VNNCOMP_READ_MARGIN
            network = load_model(args.model, deadline=deadline)
            prop = load_spec(args.spec, deadline=deadline)
            prop.check_network_shape(network.n_inputs, network.n_outputs, where=args.spec)
        except TimeLimitError as err:
            guard.write("timeout")
            if not args.quiet:
                sys.stderr.write(f"timeout in {time.monotonic() - t0:.2f}s ({err})\n")
            return 0
        # leave a safety margin for writing the result (and the interpreter's start-up)
        left = end - time.monotonic()
        budget = left - 1.0 if left >= 1.5 else 0.5 * left
        if budget <= 0.01:
            guard.write("timeout")
            if not args.quiet:
                sys.stderr.write(f"timeout in {time.monotonic() - t0:.2f}s (reading the inputs)\n")
            return 0
        options = options_from_args(args, time_limit=budget)
        with Progress(sys.stderr, quiet=args.quiet) as progress:
            result = verify(network, prop, options, progress=progress)
        word = result.vnncomp_result
        if word == "sat" and result.counterexample is not None:
            cex = result.counterexample
            y = cex.y
            if network.source is not None:
                # write the outputs the organizers will recompute (onnxruntime)
                y = onnxruntime_forward(network.source, cex.x.reshape(1, -1))[0]
            guard.write("sat", cex.x, y)
        else:
            guard.write(word)
    except KeyboardInterrupt:
        # stopped by a signal (SIGTERM from a harness's own time limit, or Ctrl-C) before an
        # answer: the run did not finish, which is what "timeout" says
        guard.write("timeout")  # a no-op when a result was written already
        raise
    except Exception:
        guard.write("error")  # a no-op when a result was written already
        raise
    finally:
        guard.close()
    if not args.quiet:
        sys.stderr.write(f"{word} in {result.time:.2f}s ({result.reason})\n")
    return 0


__all__ = ["clock_start", "cmd_vnncomp", "options_from_args"]
