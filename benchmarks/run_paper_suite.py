"""Run the paper-style reproduction grid and compare Model 2 (K = 5) with the baselines.

Usage::

    python benchmarks/run_paper_suite.py --out /tmp/nncert-paper --jobs 2

Runs ``nncert bench paper`` (bundled Iris and moons networks, every activation, the epsilon
grid, the compressed variants) with the methods

* ``auto`` and ``milp`` -- the exact baseline for ReLU/hardtanh (HiGHS plays MIP-Gurobi),
* ``bab`` -- the refined (input-splitting branch and bound) baseline, complete in the limit
  for sigmoid and tanh,
* ``model2:segments=5`` -- the 5-segment over-approximation with refinement, after the usual
  sampling/CROWN/PGD stages,
* ``model2:segments=5:attack=false`` -- the same without the sampling and PGD stages, so
  every counterexample comes from the Model 2 MILP's own candidate,

then writes ``model2_vs_baseline.md`` in the output directory: per activation and variant,
the vulnerable (``sat``) instances found by each Model 2 run against the baseline's (the union
of the complete methods' ``sat`` answers), and any contradictions.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nncert.verify.bench import run_bench

BASELINES = ("milp", "bab", "auto")
MODEL2 = ("model2:segments=5", "model2:segments=5:attack=false")


def _compare(rows: Sequence[dict[str, Any]], methods: Sequence[str]) -> str:
    by: dict[tuple[str, str, str], dict[str, str]] = {}
    for r in rows:
        key = (str(r["activation"]), str(r["variant"]), f"{r['network']}|{r['property']}")
        by.setdefault(key, {})[str(r["method"])] = str(r["result"])
    groups = sorted({(k[0], k[1]) for k in by})
    out = [
        "# Model 2 (K = 5) against the exact / refined baselines\n",
        "baseline vulnerable = instances where a complete method (milp, bab, auto) answered "
        "sat; baseline certified likewise for unsat. `same` = the Model 2 run answered sat on "
        "exactly the baseline-vulnerable instances.\n",
        "| activation | variant | method | instances | baseline sat | baseline unsat | "
        "model2 sat | both sat | missed | extra | model2 unknown | contradictions | same |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for act, var in groups:
        keys = [k for k in by if k[0] == act and k[1] == var]
        base_sat = {k for k in keys if any(by[k].get(b) == "sat" for b in BASELINES)}
        base_unsat = {k for k in keys if any(by[k].get(b) == "unsat" for b in BASELINES)}
        for m in methods:
            if m not in MODEL2:
                continue
            msat = {k for k in keys if by[k].get(m) == "sat"}
            munsat = {k for k in keys if by[k].get(m) == "unsat"}
            unknown = len(keys) - len(msat) - len(munsat)
            contra = len(msat & base_unsat) + len(munsat & base_sat)
            out.append(
                f"| {act} | {var} | {m} | {len(keys)} | {len(base_sat)} | {len(base_unsat)} | "
                f"{len(msat)} | {len(msat & base_sat)} | {len(base_sat - msat)} | "
                f"{len(msat - base_sat)} | {unknown} | {contra} | "
                f"{'yes' if msat == base_sat else 'no'} |"
            )
    return "\n".join(out) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the grid; returns 1 when a verdict contradicts a known answer."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="paper-out")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=10.0)
    ap.add_argument("--eps", default="0.01,0.02,0.05,0.1")
    ap.add_argument("--methods", default=",".join(BASELINES + MODEL2))
    ap.add_argument("--no-resume", action="store_true")
    args = ap.parse_args(argv)
    methods = [m for m in args.methods.split(",") if m]
    t0 = time.perf_counter()
    report = run_bench(
        "paper",
        out=args.out,
        methods=methods,
        jobs=args.jobs,
        timeout=args.timeout,
        eps=[float(e) for e in args.eps.split(",")],
        resume=not args.no_resume,
        progress_every=100,
    )
    text = _compare(report.rows, [m for m in methods if m in MODEL2])
    (Path(args.out) / "model2_vs_baseline.md").write_text(text)
    sys.stdout.write(text)
    sys.stdout.write(
        f"\n{len(report.rows)} runs ({report.ran} now, {report.resumed} resumed), "
        f"{report.wrong} contradicting known counterexamples, "
        f"{time.perf_counter() - t0:.1f}s wall clock\n"
    )
    for note in report.notes:
        sys.stdout.write(f"note: {note}\n")
    return 1 if report.wrong else 0


if __name__ == "__main__":
    sys.exit(main())
