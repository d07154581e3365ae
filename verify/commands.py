"""The handlers of the core ``nncert`` sub-commands (``verify``, ``vnncomp``, ``examples``,
``demo``); :mod:`nncert.verify.cli` builds the parser and calls them by name, so that the
command line starts without loading what a command does not use.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

from nncert.verify.cliutil import (
    EXIT_FALSIFIED,
    EXIT_UNKNOWN,
    EXIT_VERIFIED,
    WATCHDOG_NEVER,
    Progress,
    UsageError,
    load_model,
    load_spec,
    model_file,
    robustness_spec,
    watchdog_delay,
)
from nncert.verify.errors import InvalidPropertyError, TimeLimitError
from nncert.verify.examples import example_info, list_examples
from nncert.verify.fileio import check_output_file, same_file
from nncert.verify.lowering import carried_result, lower_property
from nncert.verify.pipeline import verify
from nncert.verify.processes import terminate_children
from nncert.verify.registry import method_specs
from nncert.verify.spec import MixedProperty, PolynomialProperty
from nncert.verify.vnncomp_command import clock_start as _clock_start
from nncert.verify.vnncomp_command import cmd_vnncomp
from nncert.verify.vnncomp_command import options_from_args as _options_from_args
from nncert.verify.vnnlib import RelationalProperty

# --------------------------------------------------------------------------------------------
# verify
# --------------------------------------------------------------------------------------------


def _verdict_exit(verdict_value: str) -> int:
    return {"verified": EXIT_VERIFIED, "falsified": EXIT_FALSIFIED}.get(verdict_value, EXIT_UNKNOWN)


def _write_certificate(
    path: str, network: Any, prop: Any, result: Any, options: Any, reprove_time: float | None
) -> None:
    """Write the certificate; cases a solver closed are re-proved (for a checkable proof
    tree) within ``reprove_time`` seconds."""
    # imported here: `nncert verify` without --certificate does not pay for them at start-up
    from nncert.certificates import certificate_from_result, save_certificate

    cert = certificate_from_result(
        network, prop, result, options=options, reprove_time=reprove_time
    )
    save_certificate(cert, path)


#: entries shown at the start and the end of a long vector in human output
VECTOR_HEAD, VECTOR_TAIL = 8, 2
#: file suffixes ``--counterexample`` writes
COUNTEREXAMPLE_SUFFIXES = (".json", ".npy")


def format_vector(
    values: Any, *, head: int = VECTOR_HEAD, tail: int = VECTOR_TAIL, note: str = ""
) -> str:
    """``[v0, v1, ...]`` with 6 significant digits; a long vector shows its first ``head`` and
    last ``tail`` entries and its length: ``[0.1, ..., 0.7, ..., 0.9, 1] (784 values)``
    (``note`` is appended inside the parentheses of a shortened vector).

    Example:
        >>> format_vector([0.5, 1.0, -2.25])
        '[0.5, 1, -2.25]'
    """
    import numpy as np

    flat = np.asarray(values, dtype=np.float64).reshape(-1)

    def cells(part: Any) -> list[str]:
        return [f"{float(v):.6g}" for v in part]

    if flat.size <= head + tail + 1:
        return "[" + ", ".join(cells(flat)) + "]"
    shown = [*cells(flat[:head]), "...", *cells(flat[flat.size - tail :])]
    return "[" + ", ".join(shown) + f"] ({flat.size} values{'; ' + note if note else ''})"


def _check_counterexample_path(path: str | None) -> None:
    """Reject a ``--counterexample`` path that cannot be written, before any solving."""
    if path is None:
        return
    p = Path(path)
    if p.suffix.lower() not in COUNTEREXAMPLE_SUFFIXES:
        raise UsageError(
            f"--counterexample {path}: the file name must end in .json (input, output, case, "
            "violation) or .npy (the input array)"
        )
    if not p.parent.is_dir():
        raise UsageError(f"--counterexample {path}: directory {p.parent} does not exist")


def _write_counterexample(path: str, cex: Any, network: Any, doc: dict[str, Any]) -> None:
    """Write ``cex``: ``.npy`` the input in the network's input shape, else JSON."""
    import numpy as np

    p = Path(path)
    if p.suffix.lower() == ".npy":
        x = np.asarray(cex.x, dtype=np.float64).reshape(tuple(network.input_shape))
        with p.open("wb") as fh:
            np.save(fh, x, allow_pickle=False)
        return
    p.write_text(json.dumps({**doc, **cex.to_dict()}, allow_nan=False) + "\n")


def _unknown_hint(reason: str, method: str) -> str:
    """What an unknown result means and what may decide it (``""`` when nothing to add)."""
    if reason == "timeout":
        return "the time limit ran out; a larger --timeout may decide it"
    if reason == "unsupported":
        return (
            "the property multiplies outputs by inputs, which needs the inputs carried "
            "through the network's activations (Sigmoid and Tanh cannot)"
        )
    if reason == "unconfirmed_counterexample":
        return (
            "a candidate counterexample did not survive the float64/onnxruntime replay, so it "
            "is not reported"
        )
    spec = method_specs().get(method)
    if spec is not None and spec.kind != "complete":  # bounds only verify, falsifiers falsify
        return (
            f"--method {method} proves or refutes only when its evidence is conclusive; "
            "--method auto (the default) also runs a complete search"
        )
    return ""


def _human_result(
    result: Any, prop: Any, counterexample_file: str | None, method: str = "auto"
) -> list[str]:
    """The lines ``nncert verify`` prints without ``--json``."""
    import numpy as np

    lines = [f"{result.verdict.value} ({result.reason}) in {result.time:.2f}s"]
    if result.verdict.value == "unknown":
        hint = _unknown_hint(str(result.reason), method)
        if hint:
            lines[0] += f": {hint}"
    cex = result.counterexample
    if cex is None:
        return lines
    replay = "; replayed in onnxruntime" if cex.onnx_checked else ""
    lines[0] += (
        f": counterexample in unsafe case {cex.case_index} "
        f"(violation {cex.violation:.4g} <= 0{replay})"
    )
    y = np.asarray(cex.y, dtype=np.float64).reshape(-1)
    out = f"  output y = {format_vector(y)}"
    if getattr(prop, "label", None) is not None:
        out += f"  (class {int(np.argmax(y))}; the property expects class {prop.label})"
    note = "" if counterexample_file else "all of them: --counterexample FILE"
    lines += [f"  input  x = {format_vector(cex.x, note=note)}", out]
    if counterexample_file is not None:
        lines.append(f"  written to {counterexample_file}")
    return lines


def _report_input_timeout(args: argparse.Namespace, err: Exception, t0: float) -> int:
    """The time limit ran out (reading the inputs, or the run overran): unknown/timeout (exit 2)."""
    elapsed = time.monotonic() - t0
    if args.json:
        doc = {"verdict": "unknown", "reason": "timeout", "time": round(elapsed, 6)}
        doc.update(model=args.model, spec=args.spec, note=str(err))
        print(json.dumps(doc, allow_nan=False))
    else:
        print(f"unknown (timeout: {err}) in {elapsed:.2f}s")
    return EXIT_UNKNOWN


#: seconds of ``verify --timeout`` kept back (the clock starts with the process) for the
#: stages to notice the deadline, writing the answer and the interpreter's exit (measured
#: 0.35 s from the answer to the process's end on a busy 2-core machine, MNIST-FC 256x6)
_VERIFY_WRITE_MARGIN = 0.6


#: seconds before ``--timeout`` (from the process's start) at which ``verify`` answers
#: unknown (timeout) and exits if the run has not returned by then
_VERIFY_WATCHDOG_MARGIN = 0.3


class _AnswerWatchdog:
    """Answers ``unknown (timeout)`` and exits (status 2) if the run overruns ``at``.

    The ``verify`` counterpart of :class:`_ResultWatchdog`: a timer thread prints the
    timeout answer (JSON with ``--json``), ends the worker processes and exits the process,
    unless :meth:`close` was called first (the run returned and prints its own answer).
    """

    def __init__(self, args: argparse.Namespace, t0: float, at: float) -> None:
        self.args = args
        self.t0 = t0
        #: what the run is doing, for the answer's message ("FILE: ... reading ...")
        self.doing: str | None = None
        self._lock = threading.Lock()
        self._closed = False
        self._timer = threading.Timer(watchdog_delay(at), self._fire)
        self._timer.daemon = True
        if self._timer.interval < WATCHDOG_NEVER:
            self._timer.start()

    def _fire(self) -> None:
        with self._lock:
            if self._closed:
                return
            try:
                late = TimeLimitError(
                    self.doing or "the time limit (--timeout) was reached before the run ended"
                )
                _report_input_timeout(self.args, late, self.t0)
                sys.stdout.flush()
                sys.stderr.flush()
            finally:
                terminate_children(grace=0.2)
                os._exit(EXIT_UNKNOWN)

    def close(self) -> None:
        """The run returned: the watchdog will not answer (waits for one that is answering)."""
        with self._lock:
            self._closed = True
        self._timer.cancel()


def cmd_verify(args: argparse.Namespace) -> int:

    if (args.spec is None) == (args.input is None):
        raise UsageError("give either SPEC (a .vnnlib file) or --input X.npy --label Y --eps E")
    inputs = (model_file(args.model), args.spec, args.input)
    if args.certificate:
        check_output_file(args.certificate, inputs=inputs, what="certificate")
    _check_counterexample_path(args.counterexample)
    if args.counterexample:
        check_output_file(args.counterexample, inputs=inputs, what="counterexample")
        if args.certificate and same_file(args.certificate, args.counterexample):
            raise UsageError(
                f"--certificate and --counterexample both name {args.counterexample}; the "
                "second file would replace the first"
            )
    _options_from_args(args, time_limit=args.timeout)  # bad options fail first
    t0 = _clock_start(args)  # from process start: --timeout counts start-up and imports
    deadline = t0 + args.timeout
    # a backstop from the start: reading the inputs can block (a named pipe, a slow disk) or
    # outlast the limit, and a stage that cannot be interrupted (HiGHS's presolve ignored a
    # 3 s limit for 17 s on an MNIST-FC MILP) must not hold the answer back past --timeout
    guard = _AnswerWatchdog(args, t0, deadline - _VERIFY_WATCHDOG_MARGIN)
    try:
        return _verify_with_guard(args, t0, deadline, guard)
    finally:
        guard.close()


def _verify_with_guard(
    args: argparse.Namespace, t0: float, deadline: float, guard: _AnswerWatchdog
) -> int:
    """:func:`cmd_verify` after the option checks, under its watchdog ``guard`` (closed before
    any answer this thread prints, so the answer is printed once)."""
    # the readers stop before the watchdog is due, so their answer names the file
    read_by = deadline - _VERIFY_WRITE_MARGIN
    try:
        guard.doing = f"{args.model}: time limit reached while reading the model"
        network = load_model(args.model, deadline=read_by)
        source = args.spec if args.spec is not None else args.input
        guard.doing = f"{source}: time limit reached while reading the file"
        if args.spec is not None:
            prop = load_spec(args.spec, deadline=read_by)
        else:
            prop = robustness_spec(args, network)
    except TimeLimitError as err:
        guard.close()
        return _report_input_timeout(args, err, t0)
    guard.doing = None

    if isinstance(prop, RelationalProperty):
        raise UsageError(f"{args.spec}: multi-network queries need `nncert-vnnlib verify`")
    prop.check_network_shape(network.n_inputs, network.n_outputs, where=str(args.spec or ""))
    if args.certificate and isinstance(prop, PolynomialProperty):
        raise UsageError(
            f"{args.spec}: no certificate: certificates of polynomial constraints (products "
            "of variables) are not supported"
        )
    if args.certificate and isinstance(prop, MixedProperty):
        try:  # certificates are about [f(x); x] (the relaxation of Sigmoid networks has none)
            lower_property(network, prop)
        except InvalidPropertyError as err:
            raise UsageError(f"{args.spec}: no certificate: {err}") from err
    # keep a margin for ending the run's stages and writing the answer
    left = deadline - time.monotonic() - _VERIFY_WRITE_MARGIN
    if left <= 0.01:
        guard.close()
        late = TimeLimitError("time limit reached while reading the inputs")
        return _report_input_timeout(args, late, t0)
    options = _options_from_args(args, time_limit=left)
    with Progress(sys.stderr, quiet=args.quiet) as progress:
        result = verify(network, prop, options, progress=progress)
    guard.close()
    if args.certificate:
        # re-proving a solver's verdict gets what is left of --timeout (keeping a margin for
        # writing): the certificate is then independently checkable, else solver-attested
        spare = deadline - time.monotonic() - 0.3
        if isinstance(prop, MixedProperty):  # about [f(x); x]: nncert check rebuilds it
            carry, lowered = lower_property(network, prop)
            result_g = carried_result(carry, result)
            _write_certificate(args.certificate, carry, lowered, result_g, options, max(spare, 0.0))
        else:
            _write_certificate(args.certificate, network, prop, result, options, max(spare, 0.0))
    where = {"model": args.model, "spec": args.spec, "fingerprint": network.fingerprint()}
    cex_file = None
    if args.counterexample is not None:
        if result.counterexample is not None:
            _write_counterexample(args.counterexample, result.counterexample, network, where)
            cex_file = args.counterexample
        else:
            sys.stderr.write(
                f"nncert: no counterexample ({result.verdict.value}); "
                f"{args.counterexample} not written\n"
            )
    if args.json:
        doc = result.to_dict()
        doc.update(where)
        print(json.dumps(doc, allow_nan=False))
    else:
        print("\n".join(_human_result(result, prop, cex_file, args.method)))
    return _verdict_exit(result.verdict.value)


# --------------------------------------------------------------------------------------------
# examples / demo
# --------------------------------------------------------------------------------------------


def cmd_examples(args: argparse.Namespace) -> int:

    for name in list_examples():
        info = example_info(name)
        print(
            f"{name:16s} {info.get('dataset', ''):8s} {info.get('activation', ''):9s} "
            f"{info.get('architecture', ''):11s} "
            f"test accuracy {float(info.get('test_accuracy', float('nan'))):.3f}"
        )
    return 0


def cmd_demo(args: argparse.Namespace) -> int:

    # the demo's pipeline (bench, solvers, dimod) loads only when the demo runs
    from nncert.verify.bench import run_end_to_end

    return int(
        run_end_to_end(
            stream=sys.stdout,
            quick=args.quick,
            timeout=args.timeout,
            jobs=args.jobs,
            out=args.out,
            progress=None if args.quiet else sys.stderr,
        )
    )


# --------------------------------------------------------------------------------------------
# Parser
# --------------------------------------------------------------------------------------------


__all__ = [
    "cmd_demo",
    "cmd_examples",
    "cmd_verify",
    "cmd_vnncomp",
    "format_vector",
]
