"""Run nncert on the VNN-COMP ACAS Xu benchmark and score it.

Usage::

    python benchmarks/run_acasxu.py [--dir DIR] [--filter REGEX] [--limit N] [--jobs J]
                                    [--timeout S] [--out results.csv]

For every row of ``instances.csv`` (``onnx,vnnlib,timeout``) it loads the network with
``nncert.verify.importers.from_onnx`` and the property with ``nncert.verify.vnnlib.load_vnnlib``,
runs :func:`nncert.verify.pipeline.verify` with the default options (what ``nncert verify``
does: sampling, CROWN, PGD, then input-split branch and bound; ``--direct-bab`` calls
:func:`nncert.verify.bab.bab_verify` alone), compares with ``truth.csv`` and writes a results file
with the VNN-COMP columns ``category,network,property,prepare_time,result,run_time`` plus
``truth``, ``correct``, ``cpu_time``, ``nodes`` and ``max_depth``. ``prepare_time`` is the
loading time, ``run_time`` the wall-clock time of the verification call (neither includes
Python start-up); ``cpu_time`` adds the CPU time of this process and of finished workers
(useful on a shared machine). Prints solved, wrong,
total and median time (over solved instances) and the slowest instances.

A wrong answer (``sat`` where the truth is ``unsat`` or vice versa) is a soundness bug; the
script prints it loudly and exits with status 2.
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import resource
import statistics
import sys
import time
from pathlib import Path

DEFAULT_DIR = Path("/work/shared/benchmarks/vnncomp/acasxu")


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="benchmark directory")
    p.add_argument("--filter", default="", help="regex on 'onnx,vnnlib' to select instances")
    p.add_argument("--limit", type=int, default=0, help="run at most this many instances")
    p.add_argument("--jobs", type=int, default=1, help="BaB worker processes")
    p.add_argument("--timeout", type=float, default=0.0, help="override the per-instance timeout")
    p.add_argument("--batch-size", type=int, default=0, help="override BabOptions.batch_size")
    p.add_argument("--intermediate", default="", help="override BabOptions.intermediate")
    p.add_argument("--split", default="", help="override BabOptions.split")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--direct-bab",
        action="store_true",
        help="call bab_verify directly instead of the default pipeline (what `nncert verify` "
        "runs: sampling, CROWN, PGD, then branch and bound)",
    )
    p.add_argument("--out", type=Path, default=Path("results.csv"), help="results file")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit status."""
    args = _args(argv)
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from nncert.verify.bab import BabOptions, bab_verify
    from nncert.verify.importers import from_onnx
    from nncert.verify.options import VerifyOptions
    from nncert.verify.pipeline import verify
    from nncert.verify.vnnlib import load_vnnlib

    root = args.dir
    truth: dict[tuple[str, str], str] = {}
    with open(root / "truth.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            truth[(row["onnx"], row["vnnlib"])] = row["truth"]
    with open(root / "instances.csv", newline="") as fh:
        instances = [r for r in csv.reader(fh) if r]
    pattern = re.compile(args.filter) if args.filter else None
    if pattern is not None:
        instances = [r for r in instances if pattern.search(f"{r[0]},{r[1]}")]
    if args.limit:
        instances = instances[: args.limit]
    overrides: dict[str, object] = {"jobs": args.jobs, "seed": args.seed}
    if args.batch_size:
        overrides["batch_size"] = args.batch_size
    if args.intermediate:
        overrides["intermediate"] = args.intermediate
    if args.split:
        overrides["split"] = args.split
    options = BabOptions(**overrides)  # type: ignore[arg-type]
    print(f"{len(instances)} instances, options {options}", flush=True)
    rows: list[dict[str, object]] = []
    nets: dict[str, object] = {}
    wrong: list[str] = []
    for k, (onnx_rel, vnn_rel, tmo) in enumerate(instances):
        timeout = args.timeout or float(tmo)
        t0 = time.perf_counter()
        net = nets.get(onnx_rel)
        if net is None:
            net = from_onnx(str(root / onnx_rel))
            nets.clear()
            nets[onnx_rel] = net
        prop = load_vnnlib(str(root / vnn_rel))
        prepare = time.perf_counter() - t0
        t1 = time.perf_counter()
        c1 = time.process_time()
        ch1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        if args.direct_bab:
            res = bab_verify(net, prop, time_limit=timeout, options=options)  # type: ignore[arg-type]
        else:
            res = verify(
                net,  # type: ignore[arg-type]
                prop,  # type: ignore[arg-type]
                VerifyOptions(time_limit=timeout, seed=args.seed, jobs=args.jobs),
            )
        run_time = time.perf_counter() - t1
        ch2 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (
            time.process_time() - c1 + (ch2.ru_utime - ch1.ru_utime) + (ch2.ru_stime - ch1.ru_stime)
        )
        result = res.vnncomp_result
        exp = truth.get((onnx_rel, vnn_rel), "")
        solved = result in ("sat", "unsat")
        correct = "" if not (solved and exp) else ("yes" if result == exp else "no")
        if correct == "no":
            wrong.append(f"{onnx_rel} {vnn_rel}: got {result}, truth {exp}")
            print(f"!!! WRONG ANSWER: {wrong[-1]}", flush=True)
        if result == "sat":
            cex = res.counterexample
            assert cex is not None
            assert prop.is_counterexample(cex.x, net.forward(cex.x))  # type: ignore[attr-defined]
        rows.append(
            {
                "category": "acasxu",
                "network": onnx_rel,
                "property": vnn_rel,
                "prepare_time": f"{prepare:.4f}",
                "result": result,
                "run_time": f"{run_time:.4f}",
                "cpu_time": f"{cpu:.4f}",
                "truth": exp,
                "correct": correct,
                "nodes": res.stats.get("nodes", 0),
                "max_depth": res.stats.get("max_depth", 0),
            }
        )
        print(
            f"[{k + 1}/{len(instances)}] {Path(onnx_rel).stem} {Path(vnn_rel).stem}: {result} "
            f"({exp}) {run_time:.2f}s cpu {cpu:.2f}s nodes={res.stats.get('nodes', 0)} "
            f"depth={res.stats.get('max_depth', 0)} units={res.stats.get('units', 0)}",
            flush=True,
        )
    with open(args.out, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]) if rows else ["category"])
        w.writeheader()
        w.writerows(rows)
    solved_times = [float(str(r["run_time"])) for r in rows if r["result"] in ("sat", "unsat")]
    n_sat = sum(r["result"] == "sat" for r in rows)
    n_unsat = sum(r["result"] == "unsat" for r in rows)
    all_times = [float(str(r["run_time"])) for r in rows]
    cpu_times = [float(str(r["cpu_time"])) for r in rows]
    print(
        f"solved {len(solved_times)}/{len(rows)} (unsat {n_unsat}, sat {n_sat}), wrong {len(wrong)}"
    )
    if solved_times:
        print(
            f"time over solved: total {sum(solved_times):.1f}s, median "
            f"{statistics.median(solved_times):.2f}s; total incl. unsolved {sum(all_times):.1f}s; "
            f"cpu total {sum(cpu_times):.1f}s"
        )
    slow = sorted(rows, key=lambda r: -float(str(r["run_time"])))[:5]
    for r in slow:
        print(f"  slow: {r['network']} {r['property']} {r['result']} {r['run_time']}s")
    for msg in wrong:
        print(f"!!! WRONG ANSWER: {msg}")
    return 2 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
