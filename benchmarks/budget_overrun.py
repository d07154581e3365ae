"""How far ``nncert vnncomp`` / ``nncert verify`` overrun their time limit (issue 15).

Usage::

    python benchmarks/budget_overrun.py SUITE_DIR [--timeout T] [--n N] [--grep TEXT ...]
                                        [--command vnncomp|verify|both] [--json OUT.json]

Runs the first ``N`` instances of ``SUITE_DIR/instances.csv`` (rows ``model,spec,timeout``,
optionally only rows containing one of the ``TEXT``) one process per instance, with the
competition's timeout replaced by ``T``, and measures each process's wall time from just
before it is spawned until it exits (interpreter start-up and imports included, as a
VNN-COMP harness sees it). Prints one line per run (wall time, ``wall - T``, answer) and the
maximum of ``wall - T``; issue 15 requires it to stay below 0.5 s. ``vnncomp`` runs must
also have written their result file.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _nncert() -> list[str]:
    exe = shutil.which("nncert", path=str(Path(sys.executable).parent))
    return [exe] if exe else [sys.executable, "-m", "nncert.verify.cli"]


def run_one(command: str, suite: Path, model: str, spec: str, timeout: float) -> dict[str, object]:
    """One process: its wall time in seconds, ``wall - timeout`` and its answer."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.txt"
        if command == "vnncomp":
            args = [*_nncert(), "vnncomp", model, spec, str(out), f"{timeout:g}", "--quiet"]
        else:
            args = [*_nncert(), "verify", model, spec, "--timeout", f"{timeout:g}", "--quiet"]
        t0 = time.perf_counter()
        proc = subprocess.run(args, cwd=suite, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - t0
        if command == "vnncomp":
            answer = out.read_text().split("\n", 1)[0].strip() if out.exists() else "<none>"
        else:
            lines = proc.stdout.strip().splitlines()
            answer = lines[0].split(" ", 1)[0] if lines else f"<exit {proc.returncode}>"
    return {
        "command": command,
        "model": model,
        "spec": spec,
        "timeout": timeout,
        "wall": wall,
        "overrun": wall - timeout,
        "answer": answer,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("suite", type=Path, help="directory with instances.csv")
    ap.add_argument("--timeout", type=float, default=10.0, help="seconds per instance")
    ap.add_argument("--n", type=int, default=5, help="number of instances")
    ap.add_argument(
        "--grep", action="append", default=[], help="only rows containing this text (repeatable)"
    )
    ap.add_argument("--command", choices=("vnncomp", "verify", "both"), default="vnncomp")
    ap.add_argument("--json", type=Path, default=None, help="write the runs here")
    a = ap.parse_args(argv)
    with open(a.suite / "instances.csv", newline="") as f:
        rows = [
            r for r in csv.reader(f) if r and (not a.grep or any(g in ",".join(r) for g in a.grep))
        ][: a.n]
    commands = ("vnncomp", "verify") if a.command == "both" else (a.command,)
    runs = []
    for model, spec, *_ in rows:
        for command in commands:
            r = run_one(command, a.suite, model.strip(), spec.strip(), a.timeout)
            runs.append(r)
            print(
                f"{command:8s} {Path(model).stem:24s} {Path(spec).stem:18s} "
                f"wall {r['wall']:7.2f}s  over {r['overrun']:+6.2f}s  {r['answer']}",
                flush=True,
            )
    worst = max((float(r["overrun"]) for r in runs), default=float("nan"))  # type: ignore[arg-type]
    print(f"max overrun (wall - T) over {len(runs)} runs: {worst:+.2f}s")
    if a.json is not None:
        a.json.write_text(json.dumps(runs, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
