"""What every ``nncert`` sub-command shares: exit codes, usage errors, progress, model loading.

The sub-command modules (:mod:`nncert.verify.cli`, :mod:`nncert.verify.bench`,
:mod:`nncert.verify.ci`, :mod:`nncert.certificates.cli`, :mod:`nncert.compression.cli`, ...)
import this module; none of them imports another one's command-line module.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn, TextIO

import numpy as np

from nncert.verify.errors import NncertError
from nncert.verify.example_catalog import example_path
from nncert.verify.fileio import load_npy
from nncert.verify.importers import from_onnx
from nncert.verify.spec import robustness_property
from nncert.verify.vnnlib import load_vnnlib

EXIT_VERIFIED = 0
EXIT_FALSIFIED = 1
EXIT_UNKNOWN = 2
EXIT_INPUT_ERROR = 3
EXIT_INTERNAL = 4


class UsageError(Exception):
    """Bad command-line usage (exit 3)."""


class Parser(argparse.ArgumentParser):
    """argparse that exits with 3 (not 2) on usage errors, with a one-line message; an
    epilog set with :func:`lazy_epilog` is computed only when the help is shown."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: error: {message} (see {self.prog} --help)\n")
        raise SystemExit(EXIT_INPUT_ERROR)

    def format_help(self) -> str:
        factory = getattr(self, "_epilog_factory", None)
        if factory is not None:
            self.epilog = factory()
            self._epilog_factory = None
        return super().format_help()


def lazy_epilog(parser: argparse.ArgumentParser, factory: Callable[[], str]) -> None:
    """Let ``parser`` (a :class:`Parser`) compute its epilog with ``factory`` when its help is
    shown, so that building the parser stays cheap (the method list scans the plug-ins)."""
    parser._epilog_factory = factory  # type: ignore[attr-defined]


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
        try:
            return str(example_path(path.split(":", 1)[1]))
        except NncertError:
            return None
    return path


def process_start(stat_path: str = "/proc/self/stat") -> float:
    """The :func:`time.monotonic` time at which this process started (interpreter start-up
    and imports included), so that a ``--timeout`` counts what a harness timing the process
    sees.

    On Linux, ``/proc/self/stat`` field 22 is the start time ``s`` in clock ticks since boot,
    and the process has run for ``e = CLOCK_BOOTTIME - s / CLK_TCK`` seconds; the result is
    ``monotonic() - e`` (never later than now). Elsewhere, or when the file cannot be read,
    ``monotonic()`` itself: the start-up is then not counted.
    """
    now = time.monotonic()
    try:
        with open(stat_path, "rb") as f:
            stat = f.read().decode("ascii", "replace")
        # the command name (field 2) is in parentheses and may contain spaces
        fields = stat[stat.rindex(")") + 2 :].split()
        ticks = int(fields[19])  # field 22 of the whole line
        hz = os.sysconf("SC_CLK_TCK")
        elapsed = time.clock_gettime(time.CLOCK_BOOTTIME) - ticks / hz
    except (OSError, ValueError, IndexError, AttributeError):
        return now
    if not 0.0 <= elapsed < 3600.0:  # a clock we do not understand: do not guess
        return now
    return now - elapsed


def _remaining(deadline: float | None) -> float | None:
    return None if deadline is None else deadline - time.monotonic()


def load_model(path: str, *, deadline: float | None = None) -> Any:
    """Load a network file: ONNX (``.onnx``, ``.onnx.gz``) or a bundled example
    (``example:NAME``); ``deadline`` (a :func:`time.monotonic` value) bounds decompression."""
    if path.startswith("example:"):
        path = str(example_path(path.split(":", 1)[1]))
    p = Path(path)
    if not p.exists():
        raise UsageError(f"{path}: no such file")
    if p.is_dir():
        raise UsageError(f"{path}: is a directory, expected an .onnx file")
    suffix = p.suffix.lower()
    if suffix == ".onnx" or p.name.lower().endswith(".onnx.gz"):
        return from_onnx(str(p), time_limit=_remaining(deadline))
    if suffix in (".pt", ".pth", ".pkl", ".ckpt", ".bin"):
        raise UsageError(
            f"{path}: pickled torch files are not loaded (unpickling can run code); export "
            "the model with torch.onnx.export, or use nncert.verify.from_torch in Python"
        )
    raise UsageError(
        f"{path}: unsupported model format {suffix or '(none)'}; expected .onnx or .onnx.gz"
    )


#: a watchdog due later than this (seconds; about 115 days) is never started: a timer thread
#: cannot wait that long (``--timeout 1e10`` raised OverflowError in it), and no run lasts it
WATCHDOG_NEVER = 1e7


def watchdog_delay(at: float) -> float:
    """Seconds from now until the :func:`time.monotonic` time ``at`` (>= 0), capped at
    :data:`WATCHDOG_NEVER` (a timer with that delay is not started)."""
    return min(max(0.0, at - time.monotonic()), WATCHDOG_NEVER)


def add_robustness_arguments(
    parser: argparse.ArgumentParser,
    input_help: str = "centre of an L-inf robustness property",
) -> None:
    """``--input X.npy --label Y --eps E [--domain LO HI | --no-clip]``: an L-infinity
    robustness property (:func:`robustness_spec` builds it), as ``verify`` and ``check`` read
    it."""
    parser.add_argument("--input", metavar="X.npy", help=input_help)
    parser.add_argument("--label", type=int, help="true class of --input")
    parser.add_argument("--eps", type=float, help="L-inf radius for --input")
    parser.add_argument(
        "--domain",
        type=float,
        nargs=2,
        default=(0.0, 1.0),
        metavar=("LO", "HI"),
        help="clip the robustness box to [LO, HI] (default 0 1)",
    )
    parser.add_argument("--no-clip", action="store_true", help="do not clip the robustness box")


def robustness_spec(args: argparse.Namespace, network: Any) -> Any:
    """The robustness property of ``args`` (:func:`add_robustness_arguments`) for ``network``.

    Raises:
        UsageError: a missing or unreadable ``.npy`` file (never unpickled), a missing
            ``--label``/``--eps``, or an input of the wrong size.
    """
    p = Path(args.input)
    if not p.exists():
        raise UsageError(f"{args.input}: no such file")
    try:
        x0 = load_npy(p)
    except (ValueError, OSError) as err:
        raise UsageError(f"{args.input}: not a readable .npy array ({err})") from err
    if args.label is None or args.eps is None:
        raise UsageError("--input needs --label and --eps")
    if x0.size != network.n_inputs:
        raise UsageError(
            f"{args.input}: has {x0.size} values but the network has {network.n_inputs} inputs"
        )
    if not bool(np.all(np.isfinite(x0))):
        raise UsageError(f"{args.input}: contains NaN or infinite values")
    domain = None if args.no_clip else (args.domain[0], args.domain[1])
    return robustness_property(x0, args.eps, args.label, network.n_outputs, domain=domain)


def load_spec(path: str, *, deadline: float | None = None) -> Any:
    """Load a VNN-LIB 1.0 or 2.0 file (plain or ``.gz``) within ``deadline``."""
    p = Path(path)
    if not p.exists():
        raise UsageError(f"{path}: no such file")

    return load_vnnlib(str(p), time_limit=_remaining(deadline))


__all__ = [
    "EXIT_FALSIFIED",
    "EXIT_INPUT_ERROR",
    "EXIT_INTERNAL",
    "EXIT_UNKNOWN",
    "EXIT_VERIFIED",
    "Progress",
    "UsageError",
    "lazy_epilog",
    "load_model",
    "load_spec",
    "model_file",
    "process_start",
]
