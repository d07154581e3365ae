"""Start-up time of ``nncert vnncomp``: process start to the first verification stage.

Usage::

    python benchmarks/startup.py [--python PY] [--reps N] [--model M.onnx --spec P.vnnlib]
                                 [--json OUT.json]

Runs, side by side and interleaved (one of each per repetition, so that a busy machine slows
all of them alike), in fresh processes of the interpreter ``PY`` (default: this one):

* ``numpy``: ``PY -c 'import numpy'``, the floor every numpy program pays;
* ``import nncert.verify``: ``PY -c 'import nncert.verify'``;
* ``vnncomp first stage``: ``nncert vnncomp MODEL SPEC OUT 60`` on an ACAS Xu instance (by
  default ``ACASXU_run2a_1_1_batch_2000.onnx`` with ``prop_1.vnnlib``), from just before the
  process is spawned to the moment the verification pipeline announces its first stage (its
  first progress message, ``"<stage>: <n> open case(s)"``);
* ``vnncomp total``: the same process's wall time until it exited (result file written);
* ``verify first stage`` and ``verify total``: the same for ``nncert verify MODEL SPEC
  --timeout 60``.

The first-stage time is wall time from exec: this script reads ``time.time()`` immediately
before :class:`subprocess.Popen` and the child prints ``time.time()`` when
:class:`nncert.verify.cliutil.Progress` receives its first message. The child is the console
entry point ``nncert.verify.cli.main`` run by a ``-c`` wrapper that only wraps
``Progress.__call__`` to print that time, so the same script measures any install of nncert
(e.g. an older checkout's venv via ``--python``) in the same way.

Prints the medians (and minima) in seconds, and for each command the difference
``first stage - numpy`` (the quantity issue 15 bounds by 0.3 s) and the ratio
``first stage / numpy``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "shared" / "benchmarks" / "vnncomp" / "acasxu"
DEFAULT_MODEL = "onnx/ACASXU_run2a_1_1_batch_2000.onnx"
DEFAULT_SPEC = "vnnlib/prop_1.vnnlib"

#: the child of the first-stage measurement: the ``nncert`` console entry point, with the
#: progress callback wrapped to print the wall-clock time of the first stage
_PROBE = """\
import sys, time
from nncert.verify import cliutil
_call = cliutil.Progress.__call__
_seen = []
def _first(self, message):
    if not _seen:
        _seen.append(message)
        sys.stderr.write(f"\\nnncert-first-stage {time.time():.6f} {message}\\n")
        sys.stderr.flush()
    _call(self, message)
cliutil.Progress.__call__ = _first
from nncert.verify.cli import main
sys.exit(main(sys.argv[1:]))
"""

_MARK = "nncert-first-stage "

#: the measured commands
COMMANDS = ("vnncomp", "verify")


def _wall(cmd: list[str], env: dict[str, str]) -> float:
    """Wall time of ``cmd`` from spawn to exit (its output discarded; it must succeed)."""
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    return time.perf_counter() - t


#: exit codes of ``nncert verify`` that are answers (verified, falsified, unknown/timeout)
_VERIFY_ANSWERS = (0, 1, 2)


def _first_stage(
    python: str, command: str, model: Path, spec: Path, out: Path, env: dict[str, str]
) -> tuple[float, float, str]:
    """``(first stage, total, result word)`` of one ``nncert vnncomp`` or ``nncert verify``
    process."""
    if command == "vnncomp":
        args = ["vnncomp", str(model), str(spec), str(out), "60"]
    else:
        args = ["verify", str(model), str(spec), "--timeout", "60", "--quiet"]
    start_wall = time.time()
    start = time.perf_counter()
    proc = subprocess.run(
        [python, "-c", _PROBE, *args], capture_output=True, text=True, check=False, env=env
    )
    total = time.perf_counter() - start
    if proc.returncode != 0 and not (command == "verify" and proc.returncode in _VERIFY_ANSWERS):
        raise SystemExit(f"{command} failed (exit {proc.returncode}):\n{proc.stderr}")
    marks = [line for line in proc.stderr.splitlines() if line.startswith(_MARK)]
    if not marks:
        raise SystemExit(f"{command} reached no verification stage:\n{proc.stderr}")
    first = float(marks[0][len(_MARK) :].split()[0]) - start_wall
    if command == "vnncomp":
        return first, total, out.read_text().split("\n", 1)[0]
    return first, total, f"exit {proc.returncode}"


def child_env(pycache: Path | None) -> dict[str, str]:
    """The children's environment: with ``pycache``, bytecode is cached there
    (``PYTHONPYCACHEPREFIX``; ``PYTHONDONTWRITEBYTECODE`` dropped), as in any normal install,
    without writing into the measured installation; with ``None`` as inherited."""
    env = dict(os.environ)
    if pycache is not None:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(pycache)
    return env


def measure(
    python: str, model: Path, spec: Path, reps: int, *, bytecode_cache: bool = True
) -> tuple[dict[str, list[float]], list[str]]:
    """``reps`` interleaved repetitions of the six timings (after one warm-up of each, which
    also fills the bytecode cache), and the result words the runs wrote."""
    times: dict[str, list[float]] = {
        "numpy": [],
        "import nncert.verify": [],
        "vnncomp first stage": [],
        "vnncomp total": [],
        "verify first stage": [],
        "verify total": [],
    }
    words: set[str] = set()
    with tempfile.TemporaryDirectory(prefix="nncert-startup-") as tmp:
        out = Path(tmp) / "result.txt"
        env = child_env(Path(tmp) / "pycache" if bytecode_cache else None)
        for rep in range(reps + 1):  # repetition 0 warms the caches and is dropped
            numpy_t = _wall([python, "-c", "import numpy"], env)
            verify_t = _wall([python, "-c", "import nncert.verify"], env)
            runs = {c: _first_stage(python, c, model, spec, out, env) for c in COMMANDS}
            words.update(f"{c}: {run[2]}" for c, run in runs.items())
            if rep == 0:
                continue
            times["numpy"].append(numpy_t)
            times["import nncert.verify"].append(verify_t)
            for command, (first, total, _) in runs.items():
                times[f"{command} first stage"].append(first)
                times[f"{command} total"].append(total)
    return times, sorted(words)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--python", default=sys.executable, help="interpreter with nncert installed")
    p.add_argument("--reps", type=int, default=15, help="repetitions (default 15)")
    p.add_argument("--model", type=Path, default=DEFAULT_DIR / DEFAULT_MODEL)
    p.add_argument("--spec", type=Path, default=DEFAULT_DIR / DEFAULT_SPEC)
    p.add_argument(
        "--no-bytecode-cache",
        action="store_true",
        help="keep the inherited environment (with PYTHONDONTWRITEBYTECODE set, every run "
        "compiles nncert's modules again)",
    )
    p.add_argument("--json", type=Path, help="also write the raw timings here")
    args = p.parse_args(argv)

    cache = not args.no_bytecode_cache
    times, words = measure(args.python, args.model, args.spec, args.reps, bytecode_cache=cache)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"python: {args.python}  ({args.reps} repetitions; result {', '.join(words)})")
    print(f"instance: {args.model.name} {args.spec.name}")
    print(f"bytecode cache: {'on' if cache else 'as inherited'}; {os.cpu_count()} CPUs")
    print(f"{'':30s} {'median':>6s} {'min':>7s}")
    for key, values in times.items():
        print(f"{key:30s} {med[key]:6.3f} {min(values):7.3f}")
    diff: dict[str, float] = {}
    ratio: dict[str, float] = {}
    for command in COMMANDS:
        diff[command] = med[f"{command} first stage"] - med["numpy"]
        ratio[command] = med[f"{command} first stage"] / med["numpy"]
        print(
            f"{command + ' first stage - numpy':30s} {diff[command]:6.3f} s  "
            f"(ratio {ratio[command]:.2f}; issue 15: difference at most 0.300 s)"
        )
    if args.json is not None:
        doc: dict[str, object] = {"python": args.python, "model": str(args.model)}
        doc.update(spec=str(args.spec), bytecode_cache=cache, cpus=os.cpu_count())
        doc.update(times=times, median=med, first_stage_minus_numpy=diff, ratio=ratio)
        doc.update(result=words)
        args.json.write_text(json.dumps(doc, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
