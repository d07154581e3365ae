"""The ``nncert`` command line.

Exit codes of ``nncert verify`` (and of every command that yields a verdict):

====  ==========================================================
0     verified (the property holds)
1     falsified (a confirmed counterexample exists)
2     unknown or timeout
3     usage or input error (one-line message on stderr), including an output path that
      would overwrite an input or lies in a missing or read-only directory (checked before
      any work)
4     internal error (one-line message; ``--debug`` shows the traceback)
130   interrupted (SIGINT); 143 terminated (SIGTERM): worker processes are ended first
====  ==========================================================

``--timeout`` covers reading the inputs too: a huge (or slowly decompressing) property file
ends the run as unknown/timeout (exit 2; ``vnncomp`` writes ``timeout``).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn, TextIO

EXIT_VERIFIED = 0
EXIT_FALSIFIED = 1
EXIT_UNKNOWN = 2
EXIT_INPUT_ERROR = 3
EXIT_INTERNAL = 4


class UsageError(Exception):
    """Bad command-line usage (exit 3)."""


class _Parser(argparse.ArgumentParser):
    """argparse that exits with 3 (not 2) on usage errors, with a one-line message."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(EXIT_INPUT_ERROR)


# --------------------------------------------------------------------------------------------
# Progress on stderr
# --------------------------------------------------------------------------------------------


class Progress:
    """Prints progress to ``stream`` once a run is longer than ``after`` seconds.

    Messages arrive through :meth:`__call__`; a heartbeat repeats the latest one every
    ``every`` seconds so that a long solver call still shows life.
    """

    def __init__(
        self, stream: TextIO, *, quiet: bool = False, after: float = 2.0, every: float = 5.0
    ) -> None:
        self.stream = stream
        self.quiet = quiet
        self.after = after
        self.every = every
        self.t0 = time.perf_counter()
        self.last = "starting"
        self.last_print = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Progress:
        if not self.quiet:
            self._thread = threading.Thread(target=self._beat, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=1.0)

    def _emit(self, message: str) -> None:
        el = time.perf_counter() - self.t0
        self.stream.write(f"[nncert {el:7.1f}s] {message}\n")
        self.stream.flush()
        self.last_print = time.perf_counter()

    def __call__(self, message: str) -> None:
        self.last = message
        if self.quiet:
            return
        if time.perf_counter() - self.t0 >= self.after:
            self._emit(message)

    def _beat(self) -> None:
        while not self._stop.wait(0.5):
            now = time.perf_counter()
            if now - self.t0 >= self.after and now - self.last_print >= self.every:
                self._emit(f"{self.last} (still running)")


# --------------------------------------------------------------------------------------------
# Loading models and specs
# --------------------------------------------------------------------------------------------


def model_file(path: str | None) -> str | None:
    """The file a MODEL argument reads (``example:NAME``: the bundled ONNX file; ``None`` for
    an unknown example or no argument). Used to keep outputs from overwriting inputs."""
    if path is None:
        return None
    if path.startswith("example:"):
        from nncert.verify.errors import NncertError
        from nncert.verify.examples import example_path

        try:
            return str(example_path(path.split(":", 1)[1]))
        except NncertError:
            return None
    return path


def _remaining(deadline: float | None) -> float | None:
    return None if deadline is None else deadline - time.monotonic()


def load_model(path: str, *, deadline: float | None = None) -> Any:
    """Load a network file: ONNX (``.onnx``, ``.onnx.gz``) or a bundled example
    (``example:NAME``); ``deadline`` (a :func:`time.monotonic` value) bounds decompression."""
    if path.startswith("example:"):
        from nncert.verify.examples import example_path

        path = str(example_path(path.split(":", 1)[1]))
    p = Path(path)
    if not p.exists():
        raise UsageError(f"{path}: no such file")
    if p.is_dir():
        raise UsageError(f"{path}: is a directory, expected an .onnx file")
    suffix = p.suffix.lower()
    if suffix == ".onnx" or p.name.lower().endswith(".onnx.gz"):
        from nncert.verify.importers import from_onnx

        return from_onnx(str(p), time_limit=_remaining(deadline))
    if suffix in (".pt", ".pth", ".pkl", ".ckpt", ".bin"):
        raise UsageError(
            f"{path}: pickled torch files are not loaded (unpickling can run code); export "
            "the model with torch.onnx.export, or use nncert.verify.from_torch in Python"
        )
    raise UsageError(
        f"{path}: unsupported model format {suffix or '(none)'}; expected .onnx or .onnx.gz"
    )


def load_spec(path: str, *, deadline: float | None = None) -> Any:
    """Load a VNN-LIB 1.0 or 2.0 file (plain or ``.gz``) within ``deadline``."""
    p = Path(path)
    if not p.exists():
        raise UsageError(f"{path}: no such file")
    from nncert.verify.vnnlib import load_vnnlib

    return load_vnnlib(str(p), time_limit=_remaining(deadline))


def _robustness_spec(args: argparse.Namespace, network: Any) -> Any:
    import numpy as np

    from nncert.verify.spec import robustness_property

    p = Path(args.input)
    if not p.exists():
        raise UsageError(f"{args.input}: no such file")
    try:
        x0 = np.load(p, allow_pickle=False)
    except (ValueError, OSError) as err:
        raise UsageError(f"{args.input}: not a readable .npy array ({err})") from err
    if args.label is None or args.eps is None:
        raise UsageError("--input needs --label and --eps")
    if x0.size != network.n_inputs:
        raise UsageError(
            f"{args.input}: has {x0.size} values but the network has {network.n_inputs} inputs"
        )
    domain = None if args.no_clip else (args.domain[0], args.domain[1])
    return robustness_property(x0, args.eps, args.label, network.n_outputs, domain=domain)


# --------------------------------------------------------------------------------------------
# verify
# --------------------------------------------------------------------------------------------


def _options_from_args(args: argparse.Namespace, *, time_limit: float) -> Any:
    from nncert.verify.errors import InvalidOptionsError
    from nncert.verify.options import VerifyOptions

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
        )
    except InvalidOptionsError as err:
        raise UsageError(str(err)) from err


def _verdict_exit(verdict_value: str) -> int:
    return {"verified": EXIT_VERIFIED, "falsified": EXIT_FALSIFIED}.get(verdict_value, EXIT_UNKNOWN)


def _write_certificate(path: str, network: Any, prop: Any, result: Any, options: Any) -> None:
    from nncert.certificates import certificate_from_result, save_certificate

    cert = certificate_from_result(network, prop, result, options=options)
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


#: methods that can leave a property unknown without running out of time
INCOMPLETE_METHODS = ("ibp", "crown", "attack", "qubo")


def _unknown_hint(reason: str, method: str) -> str:
    """What an unknown result means and what may decide it (``""`` when nothing to add)."""
    if reason == "timeout":
        return "the time limit ran out; a larger --timeout may decide it"
    if reason == "unconfirmed_counterexample":
        return (
            "a candidate counterexample did not survive the float64/onnxruntime replay, so it "
            "is not reported"
        )
    if method in INCOMPLETE_METHODS:
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
    """The time limit ran out while reading the inputs: an unknown/timeout result (exit 2)."""
    elapsed = time.monotonic() - t0
    if args.json:
        doc = {"verdict": "unknown", "reason": "timeout", "time": round(elapsed, 6)}
        doc.update(model=args.model, spec=args.spec, note=str(err))
        print(json.dumps(doc, allow_nan=False))
    else:
        print(f"unknown (timeout: {err}) in {elapsed:.2f}s")
    return EXIT_UNKNOWN


def _cmd_verify(args: argparse.Namespace) -> int:
    from nncert.verify.errors import TimeLimitError
    from nncert.verify.fileio import check_output_file
    from nncert.verify.pipeline import verify

    if (args.spec is None) == (args.input is None):
        raise UsageError("give either SPEC (a .vnnlib file) or --input X.npy --label Y --eps E")
    inputs = (model_file(args.model), args.spec, args.input)
    if args.certificate:
        check_output_file(args.certificate, inputs=inputs, what="certificate")
    _check_counterexample_path(args.counterexample)
    if args.counterexample:
        check_output_file(args.counterexample, inputs=inputs, what="counterexample")
    options = _options_from_args(args, time_limit=args.timeout)  # bad options fail first
    t0 = time.monotonic()
    deadline = t0 + args.timeout
    try:
        network = load_model(args.model, deadline=deadline)
        if args.spec is not None:
            prop = load_spec(args.spec, deadline=deadline)
        else:
            prop = _robustness_spec(args, network)
    except TimeLimitError as err:
        return _report_input_timeout(args, err, t0)
    from nncert.verify.vnnlib import RelationalProperty

    if isinstance(prop, RelationalProperty):
        raise UsageError(f"{args.spec}: multi-network queries need `nncert-vnnlib verify`")
    prop.check_network_shape(network.n_inputs, network.n_outputs, where=str(args.spec or ""))
    left = deadline - time.monotonic()
    if left <= 0.01:
        late = TimeLimitError("time limit reached while reading the inputs")
        return _report_input_timeout(args, late, t0)
    options = _options_from_args(args, time_limit=left)
    with Progress(sys.stderr, quiet=args.quiet) as progress:
        result = verify(network, prop, options, progress=progress)
    if args.certificate:
        _write_certificate(args.certificate, network, prop, result, options)
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
# vnncomp: the run_instance contract
# --------------------------------------------------------------------------------------------


#: seconds before TIMEOUT (counted from the command's start, so the interpreter's start-up of
#: a few tenths of a second comes on top) at which ``vnncomp`` stops reading its inputs, and at
#: which its watchdog writes ``timeout`` if the run has not written a result by then
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
        self._timer = threading.Timer(max(0.0, at - time.monotonic()), self._fire)
        self._timer.daemon = True
        self._timer.start()

    def write(self, word: str, x: Any = None, y: Any = None) -> None:
        from nncert.verify.vnncomp import write_result_file

        with self._lock:
            if not self._written:
                write_result_file(self.path, word, x, y)
                self._written = True

    def _fire(self) -> None:
        with self._lock:
            if self._written:
                return
            from nncert.verify.executors import terminate_children
            from nncert.verify.vnncomp import write_result_file

            try:
                write_result_file(self.path, "timeout")
                sys.stderr.write("nncert: timeout (the run overran TIMEOUT; result written)\n")
                sys.stderr.flush()
            finally:
                terminate_children(grace=0.2)
                os._exit(0)

    def close(self) -> None:
        self._timer.cancel()


def _cmd_vnncomp(args: argparse.Namespace) -> int:
    from nncert.verify.errors import TimeLimitError
    from nncert.verify.fileio import check_output_file
    from nncert.verify.pipeline import verify
    from nncert.verify.vnncomp import write_result_file

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
    t0 = time.monotonic()
    end = t0 + timeout
    guard = _ResultWatchdog(result_file, end - _VNNCOMP_WATCHDOG_MARGIN)
    try:
        try:
            options = _options_from_args(args, time_limit=timeout)
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
        options = _options_from_args(args, time_limit=budget)
        with Progress(sys.stderr, quiet=args.quiet) as progress:
            result = verify(network, prop, options, progress=progress)
        word = result.vnncomp_result
        if word == "sat" and result.counterexample is not None:
            cex = result.counterexample
            y = cex.y
            if network.source is not None:
                from nncert.verify.importers import onnxruntime_forward

                # write the outputs the organizers will recompute (onnxruntime)
                y = onnxruntime_forward(network.source, cex.x.reshape(1, -1))[0]
            guard.write("sat", cex.x, y)
        else:
            guard.write(word)
    except Exception:
        guard.write("error")  # a no-op when a result was written already
        raise
    finally:
        guard.close()
    if not args.quiet:
        sys.stderr.write(f"{word} in {result.time:.2f}s ({result.reason})\n")
    return 0


# --------------------------------------------------------------------------------------------
# examples / demo
# --------------------------------------------------------------------------------------------


def _cmd_examples(args: argparse.Namespace) -> int:
    from nncert.verify.examples import example_info, list_examples

    for name in list_examples():
        info = example_info(name)
        print(
            f"{name:16s} {info.get('dataset', ''):8s} {info.get('activation', ''):9s} "
            f"{info.get('architecture', ''):11s} "
            f"test accuracy {float(info.get('test_accuracy', float('nan'))):.3f}"
        )
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
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

_EPILOG = """\
exit codes: 0 verified, 1 falsified, 2 unknown/timeout, 3 usage or input error (including an
output path that would overwrite an input), 4 internal error, 130 interrupted, 143 terminated

MODEL: an .onnx or .onnx.gz file, or example:NAME. .gz inputs expand to at most 256 MiB
(NNCERT_MAX_DECOMPRESSED_BYTES).

examples:
  nncert demo                                         # the bundled end-to-end example
  nncert verify net.onnx prop.vnnlib --timeout 60     # VNN-LIB property
  nncert verify example:iris_relu --input x.npy --label 0 --eps 0.05 --json
  nncert vnncomp net.onnx prop.vnnlib out.txt 116     # VNN-COMP run_instance contract
"""


_VNNCOMP_DESCRIPTION = """\
The VNN-COMP run_instance contract: verify MODEL against SPEC within TIMEOUT seconds and
write RESULT_FILE. Its first line is one word:

  sat      a counterexample was found and confirmed; the witness follows, every input then
           every output (outputs as onnxruntime computes them), e.g.
             sat
             ((X_0 0.25)
              (X_1 -0.125)
              (Y_0 -0.75))
  unsat    the property holds (verified)
  timeout  TIMEOUT ran out before a decision
  unknown  the method cannot decide this instance (e.g. an incomplete --method)
  error    MODEL, SPEC or TIMEOUT could not be used (the reason is on stderr)

A one-line summary goes to stderr (--quiet silences it). Exit code 0 when a result was
written, 3 on bad input (RESULT_FILE then says error).
"""


def _add_common(p: argparse.ArgumentParser) -> None:
    from nncert.verify.options import METHODS

    p.add_argument(
        "--method",
        default="auto",
        choices=METHODS,
        help="auto (default): bounds, attacks, then input-split branch and bound for "
        "low-dimensional inputs, ReLU-phase branch and bound then the MILP for larger ReLU "
        "networks (model2 for sigmoid/tanh networks); ibp/crown/attack are incomplete (they "
        "verify or falsify only when the evidence is conclusive); milp, bab (input splitting), "
        "relu_bab (ReLU-phase splitting, ReLU networks) and benders with an exact master are "
        "complete; model2 (--segments) for sigmoid/tanh; window (--window) partitions the "
        "layers; qubo only falsifies",
    )
    p.add_argument(
        "--solver",
        default="highs",
        help="MILP solver: highs (default), pyomo, or pyomo:NAME for any Pyomo solver; "
        "with --method benders the master: highs, exact, sa (simulated annealing), tabu or "
        "steepest; "
        "with --method qubo the sampler: sa, tabu or exact",
    )
    p.add_argument("--seed", type=int, default=0, help="seed for attacks and branching (default 0)")
    p.add_argument(
        "--segments",
        type=int,
        default=4,
        help="initial segments per sigmoid/tanh neuron for --method model2 (default 4)",
    )
    p.add_argument(
        "--window",
        type=int,
        default=2,
        help="layers per window for --method window (layerwise partitioning; default 2)",
    )
    p.add_argument(
        "--num-reads", type=int, default=100, help="annealer reads per QUBO (default 100)"
    )
    p.add_argument(
        "--spin-budget",
        type=int,
        default=64,
        help="largest QUBO (binary variables) sent to an annealer: the heuristic Benders "
        "master's cut window shrinks to fit it, and --method qubo skips larger QUBOs "
        "(default 64, about what a small annealer embeds)",
    )
    p.add_argument(
        "--jobs", type=int, default=1, help="worker processes for branch and bound (default 1)"
    )
    p.add_argument("--quiet", action="store_true", help="no progress messages on stderr")


def build_parser() -> argparse.ArgumentParser:
    """The ``nncert`` argument parser."""
    parser = _Parser(
        prog="nncert",
        description="Sound verification and certification of (compressed) neural networks.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"nncert {_version()}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    v = sub.add_parser(
        "verify",
        help="verify a property of a network",
        description="Verify a VNN-LIB property, or L-infinity robustness around an input. "
        "Exit code 0 verified, 1 falsified, 2 unknown or timeout, 3 input error.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    v.add_argument("model", metavar="MODEL", help="an .onnx or .onnx.gz file, or example:NAME")
    v.add_argument("spec", metavar="SPEC", nargs="?", help="a .vnnlib or .vnnlib.gz file")
    v.add_argument("--input", metavar="X.npy", help="centre of an L-inf robustness property")
    v.add_argument("--label", type=int, help="true class of --input")
    v.add_argument("--eps", type=float, help="L-inf radius for --input")
    v.add_argument(
        "--domain",
        type=float,
        nargs=2,
        default=(0.0, 1.0),
        metavar=("LO", "HI"),
        help="clip the robustness box to [LO, HI] (default 0 1)",
    )
    v.add_argument("--no-clip", action="store_true", help="do not clip the robustness box")
    v.add_argument(
        "--timeout", type=float, default=300.0, help="seconds for the whole run (default 300)"
    )
    v.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    v.add_argument(
        "--certificate",
        metavar="PATH",
        help="write a JSON certificate (checked before solving: never one of the inputs)",
    )
    v.add_argument(
        "--counterexample",
        metavar="FILE",
        help="when falsified, write the full counterexample to FILE: FILE.json holds the input, "
        "the output, the unsafe case and the violation; FILE.npy the input array in the "
        "network's input shape (usable as --input). The screen shows long vectors shortened",
    )
    _add_common(v)
    v.set_defaults(func=_cmd_verify)

    r = sub.add_parser(
        "vnncomp",
        help="VNN-COMP run_instance: write a result file",
        description=_VNNCOMP_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    r.add_argument("model", metavar="MODEL", help="the network: an .onnx file, or example:NAME")
    r.add_argument("spec", metavar="SPEC", help="the property: a .vnnlib or .vnnlib.gz file")
    r.add_argument(
        "result_file",
        metavar="RESULT_FILE",
        help="where the result is written (created or replaced; format above)",
    )
    r.add_argument(
        "timeout",
        metavar="TIMEOUT",
        help="seconds for the whole instance, loading included (a number > 0); about a "
        "second is kept back for start-up and writing the result",
    )
    _add_common(r)
    r.set_defaults(func=_cmd_vnncomp)

    e = sub.add_parser(
        "examples",
        help="list the bundled example networks",
        description="List the bundled example networks, one per line: name, dataset, "
        "activation, architecture and test accuracy. Use one as MODEL with example:NAME "
        "(e.g. nncert verify example:iris_relu ...) or in Python with "
        "nncert.verify.load_example(NAME).",
    )
    e.set_defaults(func=_cmd_examples)

    d = sub.add_parser(
        "demo",
        help="end-to-end run on the bundled examples",
        description="Verify L-inf robustness of the bundled Iris and moons classifiers and of "
        "pruned and quantized copies of them, transfer the certificates to the copies, and "
        "print a table with a legend (about a minute on 2 cores). With --out DIR the "
        "certificates, the compressed models and the reports are kept. Exit 0, or 1 when a "
        "property with a known counterexample is certified.",
    )
    d.add_argument(
        "--quick", action="store_true", help="eps 0.01 and 0.1 only (half the properties)"
    )
    d.add_argument("--timeout", type=float, default=10.0, help="seconds per property (default 10)")
    d.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    d.add_argument(
        "--out",
        metavar="DIR",
        help="keep the results in DIR: certificates/NETWORK/PROPERTY.json, "
        "models/NETWORK+VARIANT.onnx, results.csv and the other reports (default: nothing "
        "is kept)",
    )
    d.add_argument("--quiet", action="store_true", help="no progress bar on stderr")
    d.set_defaults(func=_cmd_demo)

    _register_extensions(sub)
    return parser


#: extra sub-commands: ``register(subparsers)`` callables, or "module:function" strings that
#: are imported when the parser is built (a module that is not installed is skipped)
EXTENSIONS: list[Callable[[Any], None] | str] = [
    "nncert.certificates.cli:register",
    "nncert.compression.cli:register",
    "nncert.verify.ci:register",
    "nncert.verify.bench:register",
]


def _register_extensions(sub: Any) -> None:
    import importlib

    for entry in EXTENSIONS:
        if isinstance(entry, str):
            module, _, attr = entry.partition(":")
            try:
                mod = importlib.import_module(module)
            except ModuleNotFoundError as err:
                if err.name == module:
                    continue
                raise
            entry = getattr(mod, attr)
        entry(sub)


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("nncert")
    except Exception:  # pragma: no cover - not installed
        return "unknown"


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_INPUT_ERROR
    from nncert.verify.errors import NncertError, TimeLimitError
    from nncert.verify.executors import stop_children_on_signals

    try:
        with stop_children_on_signals():
            return int(args.func(args))
    except UsageError as err:
        sys.stderr.write(f"nncert: error: {err}\n")
        return EXIT_INPUT_ERROR
    except TimeLimitError as err:  # before NncertError/OSError: a timeout, not an input error
        if args.debug:
            raise
        sys.stderr.write(f"nncert: timeout: {err}\n")
        return EXIT_UNKNOWN
    except NncertError as err:
        if args.debug:
            raise
        msg = str(err).splitlines()[0] if str(err) else type(err).__name__
        sys.stderr.write(f"nncert: error: {msg}\n")
        return EXIT_INPUT_ERROR
    except (OSError, ValueError) as err:
        if args.debug:
            raise
        sys.stderr.write(f"nncert: error: {type(err).__name__}: {err}\n")
        return EXIT_INPUT_ERROR
    except MemoryError as err:  # e.g. a model declaring 10**12 inputs: the input is too large
        if args.debug:
            raise
        sys.stderr.write(
            f"nncert: error: out of memory ({err or 'MemoryError'}); the model or property is "
            "too large for this machine\n"
        )
        return EXIT_INPUT_ERROR
    except KeyboardInterrupt as err:
        signum = getattr(err, "signum", 2)
        what = "terminated" if signum == signal.SIGTERM else "interrupted"
        sys.stderr.write(f"nncert: {what}\n")
        return 128 + int(signum)
    except Exception as err:
        if args.debug or os.environ.get("NNCERT_DEBUG"):
            raise
        sys.stderr.write(
            f"nncert: internal error: {type(err).__name__}: {err} (rerun with --debug)\n"
        )
        return EXIT_INTERNAL


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
