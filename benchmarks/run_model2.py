"""Acceptance run: the Model 2 refinement loop on every bundled sigmoid and tanh network.

For each network (``nncert.verify.examples``: Iris and make_moons, sigmoid and tanh), every
bundled point and epsilon, and every unsafe case (target class), the loop
(:func:`nncert.solvers.model2_method.refine_case`) runs *directly* (no CROWN or attack
shortcut, so Model 2 itself decides) with a per-case budget. A property is verified when every
case is, falsified when some case yields a real counterexample.

Cross-checks (no verdict may be contradicted):

* a verified property must survive PGD (64 restarts, 100 steps) and 20 000 uniform samples
  per case, and must have ``eps < attack_radius`` (the smallest radius where the example
  metadata's attack found a counterexample);
* a falsified property's witness is replayed in float64 (violation ``<= 0``, inside the box);
* the same property through ``verify(..., method="model2")`` (the pipeline) must agree.

Table per network: one row per property with the verdict, the largest ``K`` per hidden layer,
the final gap (best real value minus proven bound, smallest over cases), time and spins
(binaries of the last MILP, largest over cases).

Usage::

    /work/venv/bin/python benchmarks/run_model2.py [--budget 30] [--nets iris_sigmoid,...]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from nncert.solvers.model2_method import refine_case
from nncert.solvers.registry import get_solver
from nncert.verify.attack import pgd_attack
from nncert.verify.examples import example_info, list_examples, load_example
from nncert.verify.pipeline import verify


def _attack_min(net, case, rng) -> float:  # type: ignore[no-untyped-def]
    xs = case.input_box.sample(20000, rng)
    best = float(case.violation(net.forward(xs)).min())
    att = pgd_attack(net, case, steps=100, restarts=64, rng=rng)
    return min(best, float(att.violation))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--budget", type=float, default=30.0, help="seconds per case")
    ap.add_argument("--segments", type=int, default=4)
    ap.add_argument("--nets", default="")
    args = ap.parse_args()
    names = [n for n in list_examples() if n.endswith(("_sigmoid", "_tanh"))]
    if args.nets:
        names = [n for n in names if n in args.nets.split(",")]
    solver = get_solver("highs")
    rng = np.random.default_rng(0)
    contradictions = undecided = 0
    t_all = time.perf_counter()
    for name in names:
        net, props = load_example(name)
        radius = {
            p["id"]: p.get("attack_radius") for p in example_info(name)["properties"]["points"]
        }
        print(f"\n== {name} ({net.normalized().summary().count('Dense')} dense layers)")
        print(
            f"{'property':28s} {'verdict':9s} {'K/layer':8s} {'gap':>9s} {'time':>6s} "
            f"{'spins':>5s} {'iters':>5s}  pipeline  check"
        )
        for prop in props:
            t0 = time.perf_counter()
            verdict = "verified"
            ks: list[int] = []
            gaps: list[float] = []
            spins = iters = 0
            witness = None
            for case in prop.cases:
                out = refine_case(
                    net,
                    case,
                    solver,
                    segments=args.segments,
                    deadline=time.perf_counter() + args.budget,
                    rng=rng,
                )
                st = out.stats
                ks = [max(a, b) for a, b in zip(ks, st.get("segments_per_layer", []))] or list(
                    st.get("segments_per_layer", [])
                )
                spins = max(spins, int(st.get("spins", 0)))
                iters += int(st.get("iterations", 0))
                if out.status == "verified":
                    # gap against the best real value found by attacks
                    real = _attack_min(net, case, rng)
                    if out.lower_bound is not None and np.isfinite(out.lower_bound):
                        gaps.append(real - out.lower_bound)
                    if real <= 0.0:
                        verdict = "CONTRADICTED"
                    continue
                if out.status == "falsified":
                    witness = (case, out.best_x)
                    verdict = "falsified"
                    if out.lower_bound is not None:
                        gaps.append(out.best_value - out.lower_bound)
                    break
                verdict = out.status
                if out.lower_bound is not None and np.isfinite(out.best_value):
                    gaps.append(out.best_value - out.lower_bound)
                break
            dt = time.perf_counter() - t0
            check = "ok"
            eps = float(prop.name.split("eps=")[1])
            pid = prop.name.split(":")[1]
            if verdict == "verified" and radius.get(pid) is not None and eps >= radius[pid]:
                check, verdict = "CONTRADICTED(metadata)", "CONTRADICTED"
            if witness is not None:
                case, x = witness
                ok = case.input_box.contains(x) and case.violation(net.forward(x)[None])[0] <= 0
                check = "ok" if ok else "BAD WITNESS"
                contradictions += int(not ok)
            contradictions += int(verdict == "CONTRADICTED")
            undecided += int(verdict not in ("verified", "falsified", "CONTRADICTED"))
            pres = verify(net, prop, method="model2", time_limit=60).verdict.value
            if pres != "unknown" and verdict in ("verified", "falsified") and pres != verdict:
                check += " PIPELINE-DISAGREES"
                contradictions += 1
            gap = f"{min(gaps):9.4f}" if gaps else f"{'-':>9s}"
            kstr = ",".join(str(k) for k in ks)
            print(
                f"{prop.name:28s} {verdict:9s} {kstr:8s} {gap} {dt:6.2f} {spins:5d} "
                f"{iters:5d}  {pres:9s} {check}",
                flush=True,
            )
    print(
        f"\ncontradictions {contradictions}, undecided {undecided}, "
        f"total {time.perf_counter() - t_all:.0f} s"
    )
    return 1 if contradictions else 0


if __name__ == "__main__":
    raise SystemExit(main())
