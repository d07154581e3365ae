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
import importlib
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from nncert.verify.cliutil import (
    EXIT_INPUT_ERROR,
    EXIT_INTERNAL,
    EXIT_UNKNOWN,
    UsageError,
    add_robustness_arguments,
    lazy_epilog,
    process_start,
)
from nncert.verify.cliutil import (
    Parser as _Parser,
)
from nncert.verify.errors import InvalidOptionsError, NncertError, TimeLimitError
from nncert.verify.processes import stop_children_on_signals, terminate_children
from nncert.verify.registry import get_method, method_specs

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


def methods_help() -> str:
    """The registered methods, one per line with its description (for an epilog)."""
    specs = method_specs()
    width = max(len(n) for n in specs)
    lines = ["methods (--method; plug-ins register with nncert.verify.register_method):"]
    for name, spec in specs.items():
        lines.append(f"  {name:<{width}}  {spec.summary()}")
    return "\n".join(lines)


def _method_name(text: str) -> str:
    """``--method``'s type: a registered name, else the registry's did-you-mean message."""
    try:
        return get_method(text).name
    except InvalidOptionsError as err:
        raise argparse.ArgumentTypeError(str(err)) from err


def _add_common(p: argparse.ArgumentParser) -> None:

    p.add_argument(
        "--method",
        default="auto",
        type=_method_name,
        metavar="METHOD",
        help="the method (default auto; the registered methods are listed below): auto runs "
        "bounds, attacks, then a complete search; ibp/crown/attack are incomplete (they "
        "verify or falsify only when the evidence is conclusive); milp, bab (input "
        "splitting), relu_bab (ReLU-phase splitting) and benders with an exact master are "
        "complete; qubo only falsifies",
    )
    p.add_argument(
        "--no-presolve",
        dest="presolve",
        action="store_false",
        help="run only METHOD: no sampling, CROWN or attack before it (to see what the "
        "method itself decides, e.g. benchmarking benders or qubo)",
    )
    p.add_argument(
        "--solver",
        default="highs",
        help="MILP solver: highs (default), pyomo, or pyomo:NAME for any Pyomo solver; "
        "with --method benders the master: highs, exact, sa (simulated annealing), tabu or "
        "steepest; "
        "with --method qubo the sampler: sa, tabu or exact; dimod:PACKAGE.Class names any "
        "dimod sampler (a QPU through EmbeddingComposite)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed for attacks and branching (default 0)")
    p.add_argument(
        "--segments",
        type=int,
        default=4,
        help="initial segments per sigmoid/tanh neuron for --method model2, and for Model 2 "
        "on --method qubo and --method benders (default 4)",
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
        "master's cut window shrinks to fit it, and --method qubo never samples larger QUBOs "
        "(Model 2: fewer segments, or layerwise windows) "
        "(default 64, about what a small annealer embeds)",
    )
    p.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="worker processes for branch and bound: input-split nodes, or the cases of the "
        "ReLU-phase search (one case per worker; a single open case's subdomains) "
        "(default 1; 2 uses both cores of a 2-core machine)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress messages on stderr")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The ``nncert`` argument parser.

    Args:
        command: the sub-command about to run, when known: extension modules that do not
            provide it are not imported (a quicker start); ``None`` registers every command.
    """
    parser = _Parser(
        prog="nncert",
        description="Sound verification and certification of (compressed) neural networks.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action=_VersionAction)
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    v = sub.add_parser(
        "verify",
        help="verify a property of a network",
        description="Verify a VNN-LIB property, or L-infinity robustness around an input. "
        "Exit code 0 verified, 1 falsified, 2 unknown or timeout, 3 input error.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    lazy_epilog(v, lambda: methods_help() + "\n\n" + _EPILOG)
    v.add_argument("model", metavar="MODEL", help="an .onnx or .onnx.gz file, or example:NAME")
    v.add_argument("spec", metavar="SPEC", nargs="?", help="a .vnnlib or .vnnlib.gz file")
    add_robustness_arguments(v)
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
        help="when falsified, write the full counterexample to FILE, which must end in .json "
        "(the input, the output, the unsafe case and the violation) or .npy (the input array "
        "in the network's input shape, usable as --input). The screen shows long vectors "
        "shortened",
    )
    _add_common(v)
    v.set_defaults(func="nncert.verify.commands:cmd_verify")

    r = sub.add_parser(
        "vnncomp",
        help="VNN-COMP run_instance: write a result file",
        description=_VNNCOMP_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    lazy_epilog(r, methods_help)
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
    r.set_defaults(func="nncert.verify.vnncomp_command:cmd_vnncomp")

    e = sub.add_parser(
        "examples",
        help="list the bundled example networks",
        description="List the bundled example networks, one per line: name, dataset, "
        "activation, architecture and test accuracy. Use one as MODEL with example:NAME "
        "(e.g. nncert verify example:iris_relu ...) or in Python with "
        "nncert.verify.load_example(NAME).",
    )
    e.set_defaults(func="nncert.verify.commands:cmd_examples")

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
    d.set_defaults(func="nncert.verify.commands:cmd_demo")

    _register_extensions(sub, command)
    return parser


#: the sub-commands this module registers itself
CORE_COMMANDS = ("verify", "vnncomp", "examples", "demo")


#: extra sub-commands: ``register(subparsers)`` callables, or "module:function" strings that
#: are imported when the parser is built (a module that is not installed is skipped)
EXTENSIONS: list[Callable[[Any], None] | str] = [
    "nncert.certificates.cli:register",
    "nncert.compression.cli:register",
    "nncert.verify.ci:register",
    "nncert.verify.bench:register",
]

#: which sub-commands each built-in extension entry registers (to import only what runs)
EXTENSION_COMMANDS: dict[str, tuple[str, ...]] = {
    "nncert.certificates.cli:register": ("check", "transfer"),
    "nncert.compression.cli:register": ("compress",),
    "nncert.verify.ci:register": ("certify",),
    "nncert.verify.bench:register": ("bench",),
}


def _register_extensions(sub: Any, command: str | None) -> None:
    """Register the extensions. With ``command`` given, string entries known not to provide it
    are skipped (for a core command, every string entry is); unknown commands and ``None``
    import every extension (for ``--help`` and "invalid choice" messages)."""
    known = {c for cs in EXTENSION_COMMANDS.values() for c in cs}
    for entry in EXTENSIONS:
        if isinstance(entry, str):
            provides = EXTENSION_COMMANDS.get(entry)
            if command is not None and provides and command not in provides:
                if command in known or command in CORE_COMMANDS:
                    continue
            module, _, attr = entry.partition(":")
            try:
                mod = importlib.import_module(module)
            except ModuleNotFoundError as err:
                if err.name == module:
                    continue
                raise
            entry = getattr(mod, attr)
        entry(sub)


class _VersionAction(argparse.Action):
    """``--version``: print ``nncert VERSION`` and exit. The version is looked up only then
    (``importlib.metadata`` takes a few hundredths of a second to load)."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS) -> None:
        super().__init__(
            option_strings,
            dest=dest,
            default=argparse.SUPPRESS,
            nargs=0,
            help="show program's version number and exit",
        )

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        sys.stdout.write(f"nncert {_version()}\n")
        parser.exit()


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("nncert")
    except Exception:  # pragma: no cover - not installed
        return "unknown"


def _command_of(argv: Sequence[str]) -> str | None:
    """The sub-command named in ``argv`` (the first argument that is not an option)."""
    for a in argv:
        if not a.startswith("-"):
            return a
    return None


def _handler(func: Any) -> Callable[[argparse.Namespace], int]:
    """A sub-command handler: a callable, or a ``"module:function"`` string imported now."""
    if isinstance(func, str):
        module, _, attr = func.partition(":")
        fn: Callable[[argparse.Namespace], int] = getattr(importlib.import_module(module), attr)
        return fn
    handler: Callable[[argparse.Namespace], int] = func
    return handler


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point; returns the exit code."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(_command_of(args_list))
    args = parser.parse_args(args_list)
    # the clock of --timeout/TIMEOUT: from the process's start when this is the console entry
    # point (a harness times the whole process), from this call when a program calls main()
    args.clock_start = process_start() if argv is None else time.monotonic()
    if args.command is None:
        parser.print_help()
        return EXIT_INPUT_ERROR
    if argv is None:
        sys.stdout = _ClosedPipeTolerant(sys.stdout)
    code = _run(args)
    if argv is None and args.command in FAST_EXIT_COMMANDS:
        exit_now(code)
    return code


class _ClosedPipeTolerant:
    """Standard output that survives its reader going away (``nncert check ... | head -1``):
    the first write into a closed pipe points file descriptor 1 at ``/dev/null`` and drops
    the rest, so the command still ends with its own exit code (not an input error about a
    ``BrokenPipeError``)."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def _closed(self) -> None:
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._stream.fileno())
            os.close(devnull)
        except (OSError, ValueError):
            pass

    def write(self, text: str) -> int:
        try:
            return int(self._stream.write(text))
        except BrokenPipeError:
            self._closed()
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._closed()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


#: sub-commands whose process ends as soon as their answer is out, when run as the console
#: entry point: the interpreter's own shutdown (module teardown, freeing some 30000 objects,
#: unloading the BLAS library) took 0.06-0.15 s of every ACAS Xu instance, whose whole run
#: takes about 0.5 s; the answer (result file, certificate, counterexample, stdout) is
#: written before the command returns
FAST_EXIT_COMMANDS = frozenset({"vnncomp", "verify"})


def exit_now(code: int) -> NoReturn:
    """End the process with ``code`` now: flush the standard streams and the logging
    handlers, end any worker processes, then :func:`os._exit` (no interpreter shutdown)."""
    try:
        terminate_children(grace=0.2)
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code)


def _run(args: argparse.Namespace) -> int:
    """Run the sub-command of ``args``; its exit code (errors reported on stderr)."""
    try:
        with stop_children_on_signals():
            return int(_handler(args.func)(args))
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
