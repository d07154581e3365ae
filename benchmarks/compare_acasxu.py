"""Before/after timing on ACAS Xu: two nncert installations side by side in one script.

Usage::

    python benchmarks/compare_acasxu.py --baseline-python /path/to/old/.venv/bin/python
        [--current-python PYTHON] [--dir DIR] [--filter REGEX] [--limit N] [--timeout S]
        [--out compare.csv]

Each interpreter runs one persistent worker (so import time is paid once) that answers
instances with the default pipeline, exactly what ``nncert verify`` runs
(``nncert.verify.pipeline.verify`` with the default options and the instance's time limit).
Instances are given to both workers in turn, the order alternating from one instance to the
next, so a change in machine load affects both sides alike. The script prints solved and wrong
counts for each side, the total and median time, and the ratios current / baseline (of the
totals, and the geometric mean of the per-instance ratios over instances both solved), and
writes one CSV row per instance. It exits with status 2 if either side gives a wrong answer.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import re
import statistics
import subprocess
import sys
from pathlib import Path

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "shared" / "benchmarks" / "vnncomp" / "acasxu"

WORKER = r"""
import json, sys, time
from nncert.verify.importers import from_onnx
from nncert.verify.pipeline import verify
from nncert.verify.vnnlib import load_vnnlib
print(json.dumps({"ready": True}), flush=True)
for line in sys.stdin:
    job = json.loads(line)
    net = from_onnx(job["onnx"])
    prop = load_vnnlib(job["vnnlib"])
    t0 = time.perf_counter()
    res = verify(net, prop, time_limit=job["timeout"])
    dt = time.perf_counter() - t0
    print(json.dumps({"result": res.vnncomp_result, "time": dt}), flush=True)
"""


class Worker:
    """One interpreter answering instances over a pipe."""

    def __init__(self, python: str) -> None:
        self.proc = subprocess.Popen(
            [python, "-c", WORKER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        self._read()

    def _read(self) -> dict[str, object]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("worker ended unexpectedly")
        out: dict[str, object] = json.loads(line)
        return out

    def run(self, onnx: Path, vnnlib: Path, timeout: float) -> dict[str, object]:
        assert self.proc.stdin is not None
        job = {"onnx": str(onnx), "vnnlib": str(vnnlib), "timeout": timeout}
        self.proc.stdin.write(json.dumps(job) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=60)


def _truth(folder: Path) -> dict[tuple[str, str], str]:
    out: dict[tuple[str, str], str] = {}
    path = folder / "truth.csv"
    if path.exists():
        for row in csv.reader(path.read_text().splitlines()):
            if len(row) >= 3 and row[0].endswith(".onnx"):
                out[(row[0].strip(), row[1].strip())] = row[2].strip()
    return out


def _summary(name: str, rows: list[dict[str, object]], key: str) -> tuple[int, int, float]:
    solved = [r for r in rows if r[f"{key}_result"] in ("sat", "unsat")]
    wrong = [r for r in rows if r[f"{key}_wrong"]]
    total = sum(float(r[f"{key}_time"]) for r in rows)  # type: ignore[arg-type]
    med = statistics.median(float(r[f"{key}_time"]) for r in solved) if solved else math.nan  # type: ignore[arg-type]
    print(
        f"{name:9s}: solved {len(solved)}/{len(rows)}, wrong {len(wrong)}, "
        f"total {total:.1f} s, median {med:.3f} s"
    )
    return len(solved), len(wrong), total


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--baseline-python", required=True, help="interpreter of the baseline install")
    p.add_argument("--current-python", default=sys.executable, help="interpreter of this install")
    p.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    p.add_argument("--filter", default="", help="regex on 'onnx,vnnlib'")
    p.add_argument("--limit", type=int, default=0)
    p.add_argument("--timeout", type=float, default=0.0, help="override the per-instance timeout")
    p.add_argument("--out", type=Path, default=Path("compare_acasxu.csv"))
    args = p.parse_args(argv)

    truth = _truth(args.dir)
    instances = []
    for row in csv.reader((args.dir / "instances.csv").read_text().splitlines()):
        if len(row) < 3 or not re.search(args.filter, f"{row[0]},{row[1]}"):
            continue
        instances.append((row[0].strip(), row[1].strip(), float(row[2])))
    if args.limit:
        instances = instances[: args.limit]
    workers = {"baseline": Worker(args.baseline_python), "current": Worker(args.current_python)}
    rows: list[dict[str, object]] = []
    try:
        for k, (onnx, vnnlib, timeout) in enumerate(instances):
            t = args.timeout or timeout
            order = ["baseline", "current"] if k % 2 == 0 else ["current", "baseline"]
            row: dict[str, object] = {"onnx": onnx, "vnnlib": vnnlib}
            want = truth.get((onnx, vnnlib), "")
            for name in order:
                out = workers[name].run(args.dir / onnx, args.dir / vnnlib, t)
                res = str(out["result"])
                row[f"{name}_result"] = res
                row[f"{name}_time"] = round(float(out["time"]), 4)  # type: ignore[arg-type]
                row[f"{name}_wrong"] = res in ("sat", "unsat") and want in ("sat", "unsat") and (
                    res != want
                )
            rows.append(row)
            print(
                f"[{k + 1}/{len(instances)}] {onnx} {vnnlib}: "
                f"baseline {row['baseline_result']} {row['baseline_time']} s, "
                f"current {row['current_result']} {row['current_time']} s",
                flush=True,
            )
    finally:
        for w in workers.values():
            w.close()
    with args.out.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]) if rows else ["onnx"])
        writer.writeheader()
        writer.writerows(rows)
    _, wb, tb = _summary("baseline", rows, "baseline")
    _, wc, tc = _summary("current", rows, "current")
    both = [
        r
        for r in rows
        if r["baseline_result"] in ("sat", "unsat") and r["current_result"] in ("sat", "unsat")
    ]
    if both:
        logs = [
            math.log(max(float(r["current_time"]), 1e-4) / max(float(r["baseline_time"]), 1e-4))  # type: ignore[arg-type]
            for r in both
        ]
        print(
            f"ratio current/baseline: total {tc / tb:.3f}, geometric mean per instance "
            f"{math.exp(statistics.fmean(logs)):.3f} (over {len(both)} instances both solved)"
        )
    return 2 if wb or wc else 0


if __name__ == "__main__":
    sys.exit(main())
