"""Benders versus the MILP on the bundled Iris and make_moons ReLU/hardtanh networks.

For every bundled ``iris_*`` / ``moons_*`` network with ReLU or HardTanh activations and every
bundled property (points x epsilons):

* the MILP verdict: ``verify(net, prop, method="milp")``;
* Benders with each master (``exact-qubo``, ``highs``, ``sa``), run *directly* on every unsafe
  case (no CROWN/attack shortcut, so the decomposition itself is exercised), with a short time
  limit per case. A property is VERIFIED when every case is closed with a sound bound,
  FALSIFIED when a returned witness passes :func:`confirm_counterexample`, UNKNOWN otherwise.
  ``exact-qubo`` keeps every cut in its QUBO master and solves it exactly
  (:class:`~nncert.solvers.dimod_solver.ExactQuboSolver`); its final exact MILP master is
  switched off here, so each of its verdicts comes from the QUBO master alone (the CSV column
  ``bound_source`` says where every lower bound came from).

Checks: Benders never contradicts the MILP (VERIFIED vs FALSIFIED), and with the exact HiGHS
master it reaches the MILP verdict whenever it finishes. For the ``sa`` master every iteration
is audited: the master's exact optimum over the same cuts (enumeration of ``delta``, at most
22 binaries) is compared with the annealer's answer ``eta_hat = max_k L_k(delta_sa)``; the CSV
column ``sa_exact_rate`` is the fraction of audited iterations where they agree (1e-9).

Usage::

    python benchmarks/run_benders.py --out benders.csv [--case-time 3] [--names moons_relu]
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from collections import Counter, defaultdict
from typing import Any

import numpy as np

from nncert.formulations.qubo import QuboMasterOptions
from nncert.solvers.benders import BendersOptions
from nncert.solvers.benders_method import make_master, run_benders_case
from nncert.verify.examples import list_examples, load_example
from nncert.verify.network import HardTanh, Network, ReLU
from nncert.verify.options import VerifyOptions
from nncert.verify.pipeline import CaseContext, confirm_counterexample, verify
from nncert.verify.spec import Property

MASTERS = ("exact-qubo", "highs", "sa")


def _eligible(name: str, net: Network) -> bool:
    kinds = net.activation_types
    return name.startswith(("iris", "moons")) and bool(kinds) and kinds <= {ReLU, HardTanh}


def _benders_property(
    net: Network, prop: Property, master_name: str, case_time: float, seed: int
) -> dict[str, Any]:
    t0 = time.perf_counter()
    opts = VerifyOptions(
        solver=master_name, time_limit=case_time, num_reads=20, seed=seed, spin_budget=512
    )
    spins = iters = 0
    audited = agree = 0
    exact_flags: list[bool] = []
    sources: set[str] = set()
    verdict = "verified"
    for i, case in enumerate(prop.cases):
        ctx = CaseContext(
            opts, time.perf_counter() + case_time, np.random.default_rng(seed), None, i, None
        )
        master = None
        bopts = None
        if master_name == "sa":
            from nncert.solvers.dimod_solver import simulated_annealing

            master = simulated_annealing(num_reads=20, seed=seed, num_sweeps=200)
            bopts = BendersOptions(
                max_iterations=60,
                cut_window=6,
                qubo=QuboMasterOptions(eta_bits=6),
                max_master_variables=512,
                exact_check_every=10,  # as the CLI default: exact check + steering
                audit_master=True,
            )
        elif master_name == "exact-qubo":
            master = make_master("exact")
            bopts = BendersOptions(
                max_iterations=200,
                cut_window=None,
                qubo=QuboMasterOptions(eta_bits=8),
                final_exact_master=False,
            )
        out, run = run_benders_case(net, case, ctx, master=master, options=bopts)
        spins = max(spins, int(out.stats.get("spins", 0)))
        iters += int(out.stats.get("iterations", 0))
        exact_flags.append(bool(out.stats.get("master_exact", False)))
        if out.stats.get("lower_bound_source"):
            sources.add(str(out.stats["lower_bound_source"]))
        if run is not None and master_name == "sa":
            for it in run.iterations:
                # iterations that sampled a QUBO (none when the case has no binaries)
                if (
                    it.master_variables > 0
                    and it.master_optimum is not None
                    and np.isfinite(it.master_value)
                ):
                    audited += 1
                    agree += int(it.master_value <= it.master_optimum + 1e-9)
        if out.status == "verified" and out.exact:
            continue
        if out.x is not None and confirm_counterexample(net, case, i, out.x) is not None:
            verdict = "falsified"
            break
        verdict = "unknown"
    return {
        "verdict": verdict,
        "time": time.perf_counter() - t0,
        "spins": spins,
        "iterations": iters,
        "master_exact": all(exact_flags) if exact_flags else False,
        "bound_source": "+".join(sorted(sources)),
        "sa_audited": audited,
        "sa_exact_rate": (agree / audited) if audited else None,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="benders_benchmark.csv")
    ap.add_argument("--case-time", type=float, default=3.0, help="seconds per case and master")
    ap.add_argument("--milp-time", type=float, default=30.0)
    ap.add_argument("--names", nargs="*", default=None)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    rows: list[dict[str, Any]] = []
    names = args.names or list_examples()
    for name in names:
        net, props = load_example(name)
        if not _eligible(name, net):
            continue
        for prop in props:
            t = time.perf_counter()
            ref = verify(net, prop, method="milp", time_limit=args.milp_time, seed=args.seed)
            milp_verdict = ref.verdict.value
            rows.append(
                {
                    "instance": prop.name,
                    "method": "milp",
                    "master": "",
                    "verdict": milp_verdict,
                    "time": round(time.perf_counter() - t, 4),
                    "spins": "",
                    "iterations": "",
                    "master_exact": True,
                    "sa_exact_rate": "",
                    "milp_verdict": milp_verdict,
                }
            )
            for master in MASTERS:
                r = _benders_property(net, prop, master, args.case_time, args.seed)
                rows.append(
                    {
                        "instance": prop.name,
                        "method": "benders",
                        "master": master,
                        "verdict": r["verdict"],
                        "time": round(r["time"], 4),
                        "spins": r["spins"],
                        "iterations": r["iterations"],
                        "master_exact": r["master_exact"],
                        "bound_source": r["bound_source"],
                        "sa_exact_rate": ""
                        if r["sa_exact_rate"] is None
                        else round(r["sa_exact_rate"], 4),
                        "milp_verdict": milp_verdict,
                        "_audited": r["sa_audited"],
                    }
                )
                print(
                    f"{prop.name:32s} {master:10s} {r['verdict']:9s} (milp {milp_verdict})"
                    f" {r['time']:.2f}s spins={r['spins']} it={r['iterations']}",
                    flush=True,
                )
    fields = [
        "instance",
        "method",
        "master",
        "verdict",
        "time",
        "spins",
        "iterations",
        "master_exact",
        "bound_source",
        "sa_exact_rate",
        "milp_verdict",
    ]
    with open(args.out, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=fields, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    return _summary(rows)


def _summary(rows: list[dict[str, Any]]) -> int:
    by: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by[r["master"] or "milp"].append(r)
    contradictions = 0
    print("\nsummary (per master): verdicts, agreement with the MILP, time, spins, iterations")
    for key, rs in by.items():
        verdicts = Counter(r["verdict"] for r in rs)
        times = [float(r["time"]) for r in rs]
        line = (
            f"  {key:10s} n={len(rs)} {dict(verdicts)} time total={sum(times):.1f}s "
            f"median={np.median(times):.2f}s"
        )
        if key != "milp":
            decided = [r for r in rs if r["verdict"] in ("verified", "falsified")]
            agree = sum(r["verdict"] == r["milp_verdict"] for r in decided)
            bad = sum({r["verdict"], r["milp_verdict"]} == {"verified", "falsified"} for r in rs)
            contradictions += bad
            spins = [int(r["spins"]) for r in rs]
            iters = [int(r["iterations"]) for r in rs]
            line += (
                f" | decided {len(decided)}/{len(rs)}, agree {agree}, contradictions {bad}"
                f" | spins max={max(spins, default=0)} median={np.median(spins) if spins else 0}"
                f" | iterations median={np.median(iters) if iters else 0}"
            )
            if key == "sa":
                aud = sum(int(r.get("_audited", 0)) for r in rs)
                hit = sum(
                    float(r["sa_exact_rate"]) * int(r.get("_audited", 0))
                    for r in rs
                    if r["sa_exact_rate"] != ""
                )
                line += f" | SA exact master optimum on {hit:.0f}/{aud} iterations" + (
                    f" ({hit / aud:.1%})" if aud else ""
                )
        print(line)
    print(f"contradictions with the MILP: {contradictions}")
    return 1 if contradictions else 0


if __name__ == "__main__":
    sys.exit(main())
