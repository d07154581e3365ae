"""ACAS Xu through ``nncert vnncomp``, one process per instance, as VNN-COMP runs a tool.

Usage::

    python benchmarks/acasxu_vnncomp.py [--nncert PATH] [--baseline PATH] [--dir DIR]
                                        [--jobs J] [--filter REGEX] [--limit N]
                                        [--timeout S] [--out results.csv]

For every row of ``instances.csv`` (``onnx,vnnlib,timeout``) this runs
``NNCERT vnncomp ONNX VNNLIB RESULT TIMEOUT`` in a fresh process, ``J`` processes at a time
(default 2, the cores of the reference machine), and measures each process's wall time from
spawn to exit, start-up included: the per-instance time of the issue 15 acceptance line. The
answer is the first line of the result file (``sat``, ``unsat``, ``timeout``, ``unknown``),
compared with ``truth.csv``: *solved* is ``sat``/``unsat`` equal to the truth, *wrong* is
``sat``/``unsat`` different from it (a soundness bug: printed loudly, exit status 2).

With ``--baseline PATH`` (e.g. ``/work/main/.venv/bin/nncert``) every instance is also run by
that installation, in the same pool and in alternating order, so that changes in machine load
affect both sides alike; the report then gives both sides and the ratio of their medians and
totals.

Bytecode: the children cache bytecode in a private temporary directory
(``PYTHONPYCACHEPREFIX``, ``PYTHONDONTWRITEBYTECODE`` dropped), as an ordinary installation
does, and one warm-up run per installation fills that cache before the measured runs.

Prints solved, wrong and unsolved counts, the median and total wall time per instance, the
median and total CPU time (user + sys of the process and its children, from
:func:`os.wait4`: what a loaded machine does not inflate), the elapsed time and the slowest
instances; ``--out`` writes one CSV row per (installation,
instance).
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "shared" / "benchmarks" / "vnncomp" / "acasxu"


@dataclass(frozen=True)
class Instance:
    onnx: str
    vnnlib: str
    timeout: float
    truth: str


@dataclass(frozen=True)
class Run:
    side: str
    instance: Instance
    answer: str
    wall: float
    exit_code: int
    cpu: float = float("nan")

    @property
    def solved(self) -> bool:
        return self.answer in ("sat", "unsat") and self.answer == self.instance.truth

    @property
    def wrong(self) -> bool:
        return self.answer in ("sat", "unsat") and self.answer != self.instance.truth


def load_instances(directory: Path, pattern: str, limit: int) -> list[Instance]:
    """The rows of ``instances.csv`` (matching ``pattern``) with their ``truth.csv`` answers."""
    truth: dict[tuple[str, str], str] = {}
    with open(directory / "truth.csv", newline="") as f:
        for row in csv.DictReader(f):
            truth[(row["onnx"], row["vnnlib"])] = row["truth"].strip()
    out: list[Instance] = []
    with open(directory / "instances.csv", newline="") as f:
        for row in csv.reader(f):
            if not row or not re.search(pattern, f"{row[0]},{row[1]}"):
                continue
            out.append(Instance(row[0], row[1], float(row[2]), truth[(row[0], row[1])]))
    return out[:limit] if limit > 0 else out


def child_env(pycache: Path) -> dict[str, str]:
    """The environment of every child: bytecode cached under ``pycache``."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(pycache)
    return env


def run_one(
    side: str,
    nncert: str,
    directory: Path,
    inst: Instance,
    timeout: float,
    workdir: Path,
    env: dict[str, str],
) -> Run:
    """One ``nncert vnncomp`` process; its wall time from spawn to exit and its answer."""
    fd, name = tempfile.mkstemp(prefix="result-", suffix=".txt", dir=workdir)
    os.close(fd)
    result = Path(name)
    result.unlink()
    cmd = [
        nncert,
        "vnncomp",
        str(directory / inst.onnx),
        str(directory / inst.vnnlib),
        str(result),
        f"{timeout:g}",
    ]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    assert proc.stderr is not None
    stderr = proc.stderr.read()  # to EOF (the child's exit), then reap it with its usage
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    proc.stderr.close()
    cpu = usage.ru_utime + usage.ru_stime
    try:
        answer = result.read_text().split("\n", 1)[0].strip() or "empty"
        result.unlink()
    except FileNotFoundError:
        answer = "no-result"
    if proc.returncode != 0 and answer == "no-result":
        tail = stderr.decode(errors="replace").strip().splitlines()[-1:]
        answer = f"error: {tail[0] if tail else proc.returncode}"
    return Run(side, inst, answer, wall, proc.returncode, cpu)


def summarize(side: str, runs: list[Run]) -> dict[str, float]:
    """Print one installation's counts and times; return its median and total wall time."""
    walls = [r.wall for r in runs]
    solved = sum(r.solved for r in runs)
    wrong = [r for r in runs if r.wrong]
    answers: dict[str, int] = {}
    for r in runs:
        answers[r.answer] = answers.get(r.answer, 0) + 1
    print(f"[{side}] solved {solved}/{len(runs)}, wrong {len(wrong)}; answers {answers}")
    cpus = [r.cpu for r in runs]
    print(
        f"[{side}] wall per instance: median {statistics.median(walls):.3f} s, "
        f"mean {statistics.fmean(walls):.3f} s, total {sum(walls):.1f} s, max {max(walls):.2f} s"
    )
    print(
        f"[{side}] CPU (user+sys) per instance: median {statistics.median(cpus):.3f} s, "
        f"mean {statistics.fmean(cpus):.3f} s, total {sum(cpus):.1f} s"
    )
    for r in sorted(runs, key=lambda r: -r.wall)[:5]:
        print(f"[{side}]   {r.wall:7.2f} s  {r.answer:8s} {r.instance.onnx} {r.instance.vnnlib}")
    for r in wrong:
        print(
            f"[{side}] WRONG: {r.instance.onnx} {r.instance.vnnlib}: answered {r.answer}, "
            f"truth {r.instance.truth}"
        )
    return {
        "median": statistics.median(walls),
        "total": sum(walls),
        "cpu_median": statistics.median(cpus),
        "cpu_total": sum(cpus),
        "wrong": len(wrong),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    here = Path(sys.executable).with_name("nncert")
    p.add_argument("--nncert", default=str(here), help="the nncert executable to measure")
    p.add_argument("--baseline", default="", help="another nncert executable, run alongside")
    p.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="benchmark directory")
    p.add_argument("--jobs", type=int, default=2, help="processes at a time (default 2)")
    p.add_argument("--filter", default="", help="regex on 'onnx,vnnlib' to select instances")
    p.add_argument("--limit", type=int, default=0, help="run at most this many instances")
    p.add_argument("--timeout", type=float, default=0.0, help="override the per-instance timeout")
    p.add_argument("--out", type=Path, help="write one CSV row per run here")
    args = p.parse_args(argv)

    instances = load_instances(args.dir, args.filter, args.limit)
    sides = {"current": args.nncert}
    if args.baseline:
        sides["baseline"] = args.baseline
    with tempfile.TemporaryDirectory(prefix="nncert-acasxu-") as tmp:
        work = Path(tmp)
        envs = {side: child_env(work / f"pycache-{side}") for side in sides}
        for side, exe in sides.items():  # warm-up: fills the bytecode cache, not measured
            run_one(side, exe, args.dir, instances[0], 60.0, work, envs[side])
        jobs = []
        for k, inst in enumerate(instances):
            order = list(sides) if k % 2 == 0 else list(reversed(sides))
            limit = args.timeout or inst.timeout
            jobs += [(side, sides[side], inst, limit) for side in order]
        began = time.perf_counter()
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            futures = [
                pool.submit(run_one, side, exe, args.dir, inst, limit, work, envs[side])
                for side, exe, inst, limit in jobs
            ]
            runs = [f.result() for f in futures]
        elapsed = time.perf_counter() - began

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"{len(instances)} instances from {args.dir}, {args.jobs} at a time; elapsed "
        f"{elapsed:.1f} s; load average at the end {load:.2f} on {os.cpu_count()} CPUs"
    )
    stats = {side: summarize(side, [r for r in runs if r.side == side]) for side in sides}
    if "baseline" in stats:
        cur, base = stats["current"], stats["baseline"]
        print(
            f"current / baseline: median {cur['median'] / base['median']:.2f}, "
            f"total {cur['total'] / base['total']:.2f}; CPU median "
            f"{cur['cpu_median'] / base['cpu_median']:.2f}, total "
            f"{cur['cpu_total'] / base['cpu_total']:.2f}"
        )
    if args.out is not None:
        with open(args.out, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(
                ["side", "onnx", "vnnlib", "timeout", "truth", "answer", "wall", "cpu", "exit"]
            )
            for r in runs:
                i = r.instance
                w.writerow([r.side, i.onnx, i.vnnlib, i.timeout, i.truth, r.answer,
                            f"{r.wall:.4f}", f"{r.cpu:.4f}", r.exit_code])  # fmt: skip
    return 2 if any(s["wrong"] for s in stats.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
