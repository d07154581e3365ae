"""Acceptance run: VNN-COMP ``dist_shift`` (ReLU + one sigmoid layer) through Model 2.

Every instance of ``/work/shared/benchmarks/vnncomp/dist_shift`` (or the first ``--limit``) is
verified with ``nncert.verify.pipeline.verify(network, prop, method="model2",
time_limit=...)``; the verdict is compared with ``truth.csv``. A wrong answer is VERIFIED on a
``sat`` instance or FALSIFIED on an ``unsat`` one. The competition timeout is 300 s; this
script uses a shorter per-instance budget (``--time-limit``, default 15 s) to fit the wall
time, so "solved" counts are lower bounds of what the full budget gives.

Usage::

    /work/venv/bin/python benchmarks/run_dist_shift.py [--time-limit 15] [--limit N]
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

from nncert.verify.importers import from_onnx
from nncert.verify.pipeline import verify
from nncert.verify.vnnlib import load_vnnlib

ROOT = Path("/work/shared/benchmarks/vnncomp/dist_shift")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--time-limit", type=float, default=15.0)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--every", type=int, default=1, help="run every n-th instance")
    ap.add_argument(
        "--max-splits",
        type=int,
        default=None,
        help="segments split per Model 2 refinement step (default: the library's, 16; 0 = no cap)",
    )
    args = ap.parse_args()
    if args.max_splits is not None:
        from nncert.solvers import model2_method

        model2_method.MAX_SPLITS_PER_STEP = args.max_splits or None
    truth = {}
    with open(ROOT / "truth.csv") as fh:
        for row in csv.DictReader(fh):
            truth[row["vnnlib"]] = row["truth"]
    with open(ROOT / "instances.csv") as fh:
        rows = [r for r in csv.reader(fh) if r]
    rows = rows[:: args.every][: args.limit]
    nets: dict[str, object] = {}
    solved = wrong = 0
    total_t = 0.0
    by = {"unsat": 0, "sat": 0}
    print(f"{'instance':34s} {'truth':7s} {'result':8s} {'reason':10s} {'time':>6s}  K/spins")
    for onnx_rel, vnnlib_rel, _ in rows:
        if onnx_rel not in nets:
            nets[onnx_rel] = from_onnx(ROOT / onnx_rel)
        net = nets[onnx_rel]
        prop = load_vnnlib(ROOT / vnnlib_rel)
        t0 = time.perf_counter()
        res = verify(net, prop, method="model2", time_limit=args.time_limit)  # type: ignore[arg-type]
        dt = time.perf_counter() - t0
        total_t += dt
        word = res.vnncomp_result
        tr = truth.get(vnnlib_rel, "unknown")
        bad = (word == "unsat" and tr == "sat") or (word == "sat" and tr == "unsat")
        wrong += int(bad)
        if word in ("unsat", "sat"):
            solved += 1
            by[word] += 1
        m2 = res.stats.get("model2", [])
        ks = ";".join(f"{s.get('segments_per_layer')}/{s.get('spins')}" for s in m2)
        print(
            f"{Path(vnnlib_rel).name:34s} {tr:7s} {word:8s} {res.reason:10s} {dt:6.1f}  {ks}"
            + ("  WRONG" if bad else ""),
            flush=True,
        )
    print(
        f"\nsolved {solved}/{len(rows)} (unsat {by['unsat']}, sat {by['sat']}), wrong {wrong}, "
        f"total time {total_t:.0f} s, per-instance limit {args.time_limit:g} s"
    )
    return 1 if wrong else 0


if __name__ == "__main__":
    raise SystemExit(main())
