"""Issue 19 acceptance: Model 2 on the QUBO route vs the exact baseline on the paper suite.

For every original sigmoid/tanh instance of ``nncert bench paper`` (Iris and make_moons, the
bundled points, eps grid 0.01/0.02/0.05/0.1), runs

* the exact baseline: ``verify(method="model2", presolve=False, segments=5)`` (Model 2 MILP on
  HiGHS with nested refinement) and the pipeline's ``auto`` answer;
* the QUBO route: ``verify(method="qubo", presolve=False, segments=5, solver="sa")`` (default
  reads, default spin budget);

and prints vulnerable counts, misses, contradictions (QUBO falsified where the baseline
verified), spins per instance and wall times side by side.

Usage: python benchmarks/paper_qubo_route.py [--timeout 30] [--budget 64]
"""

from __future__ import annotations

import argparse
import time

from nncert.verify import bench
from nncert.verify.pipeline import verify


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--timeout", type=float, default=30.0)
    ap.add_argument("--budget", type=int, default=64)
    args = ap.parse_args()
    suite = bench.load_suite("paper", eps=list(bench.DEFAULT_EPS))
    insts = [
        i
        for i in suite.instances
        if i.meta["variant"] == "original" and i.meta["activation"] in ("sigmoid", "tanh")
    ]
    tot = {"n": 0, "exact_v": 0, "exact_u": 0, "auto_v": 0, "qubo_v": 0, "missed": 0,
           "contra": 0, "t_exact": 0.0, "t_auto": 0.0, "t_qubo": 0.0}  # fmt: skip
    spins_all: list[int] = []
    for inst in insts:
        net, prop, _ = bench._materialize(inst.payload)
        t = time.perf_counter()
        ex = verify(net, prop, method="model2", presolve=False, segments=5,
                    time_limit=args.timeout)  # fmt: skip
        t_ex = time.perf_counter() - t
        t = time.perf_counter()
        au = verify(net, prop, time_limit=args.timeout)
        t_au = time.perf_counter() - t
        t = time.perf_counter()
        qu = verify(net, prop, method="qubo", presolve=False, segments=5, solver="sa",
                    spin_budget=args.budget, time_limit=args.timeout)  # fmt: skip
        t_qu = time.perf_counter() - t
        spins = max((int(s.get("spins", 0)) for s in qu.stats.get("qubo", [])), default=0)
        spins_all.append(spins)
        ev = ex.verdict.value == "falsified" or au.verdict.value == "falsified"
        proven = ex.verdict.value == "verified" or au.verdict.value == "verified"
        qv = qu.verdict.value == "falsified"
        assert qu.verdict.value != "verified"
        tot["n"] += 1
        tot["exact_v"] += int(ex.verdict.value == "falsified")
        tot["exact_u"] += int(ex.verdict.value == "verified")
        tot["auto_v"] += int(au.verdict.value == "falsified")
        tot["qubo_v"] += int(qv)
        tot["missed"] += int(ev and not qv)
        tot["contra"] += int(qv and proven)
        tot["t_exact"] += t_ex
        tot["t_auto"] += t_au
        tot["t_qubo"] += t_qu
        line = (
            f"{inst.network:14s} {inst.property:14s} model2={ex.verdict.value:10s} "
            f"auto={au.verdict.value:10s} qubo={qu.verdict.value:10s} spins={spins:3d} "
            f"t_model2={t_ex:6.2f} t_auto={t_au:6.2f} t_qubo={t_qu:6.2f}"
        )
        print(line, flush=True)
    print("\nTOTAL", tot)
    print(f"spins per instance: max {max(spins_all)}, mean {sum(spins_all) / len(spins_all):.1f}")
    print(f"time ratio qubo/model2: {tot['t_qubo'] / max(tot['t_exact'], 1e-9):.2f}")


if __name__ == "__main__":
    main()
