"""ReLU-phase branch and bound on MNIST-FC: the earlier search and the current one side by side.

Usage::

    python benchmarks/run_mnistfc_bab.py [--root DIR] [--time-limit T] [--only NET:PROP ...]
        [--baseline legacy|unrefined|nobeta] [--check] [--threads N]

For each instance (``NET:PROP``, e.g. ``256x4:9_0.05``; default: a fixed subset of 256x4 and
256x6 instances) both searches run in this process, one after the other, with the same time
limit: the baseline and ``new`` (the default :class:`ReluBabSettings`: both children of a
split in one call, optimised slopes on the objective, the root's hidden-layer bounds refined
by optimised slopes, the split constraints' multipliers optimised with the slopes).
Baselines: ``legacy`` (:data:`nncert.verify.relu_bab.LEGACY`: one node per bound-engine call,
plain CROWN on the objective), ``unrefined`` (:data:`UNREFINED`: the batched search before the
root refinement, 8 slope steps per node) or ``nobeta`` (:data:`NOBETA`: the current search
without the multipliers). Each unsafe case of the property gets :func:`relu_bab_case` with
the property's remaining budget (as the pipeline's
``relu_bab`` stage does after presolve); the instance is ``unsat`` when every case is
verified, ``sat`` when a case is falsified (the witness replayed on the network), else
``timeout``/``unknown``. Answers are compared with ``truth.csv`` (a ``sat`` answer on an
``unsat`` instance or the reverse is a wrong answer). With ``--check`` every produced proof
tree is re-derived by the independent checker (:func:`nncert.certificates.proofcheck.check_tree`).

Prints one line per instance and search (answer, seconds, nodes), then solved counts, total
times and the new/baseline time ratio on the instances both solved.
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import numpy as np

from nncert.certificates.proofcheck import check_tree
from nncert.verify.importers import from_onnx
from nncert.verify.options import VerifyOptions
from nncert.verify.processes import limit_blas
from nncert.verify.relu_bab import LEGACY, ReluBabSettings, relu_bab_case
from nncert.verify.result import CaseContext
from nncert.verify.vnnlib import load_vnnlib

ROOT = Path(__file__).resolve().parents[2] / "shared" / "benchmarks" / "vnncomp" / "mnistfc"

#: instances main's relu_bab leaves open (their alpha-CROWN root bound is within a few units
#: of 0; the 256x6 eps 0.05 ones are thousands below and out of reach), then three it settles
#: (root-closed, and two falsifiable ones)
DEFAULT = (
    "256x4:2_0.03",
    "256x4:8_0.03",
    "256x4:3_0.05",
    "256x4:11_0.05",
    "256x4:10_0.05",
    "256x4:7_0.05",
    "256x6:2_0.03",
    "256x6:12_0.03",
    "256x6:7_0.03",
    "256x4:0_0.03",
    "256x4:1_0.03",
    "256x6:6_0.03",
)


#: the batched search before the root refinement (8 optimised-slope steps per node)
UNREFINED = ReluBabSettings(alpha_iters=8, root_alpha_iters=0, beta_lr=None)

#: the search before the split constraints' multipliers (beta-CROWN)
NOBETA = ReluBabSettings(beta_lr=None)

BASELINES = {"legacy": LEGACY, "unrefined": UNREFINED, "nobeta": NOBETA}


def run(
    root: Path, net_name: str, prop_name: str, settings: ReluBabSettings, limit: float, check: bool
) -> dict[str, object]:
    """One instance with one search: answer, seconds, nodes, checked trees."""
    # the normal form, as the pipeline passes it to its methods
    net = from_onnx(str(root / "onnx" / f"mnist-net_{net_name}.onnx")).normalized()
    prop = load_vnnlib(str(root / "vnnlib" / f"prop_{prop_name}.vnnlib"))
    t0 = time.perf_counter()
    deadline = t0 + limit
    answer, nodes, checked, bad = "unsat", 0, 0, 0
    outs = []
    for i, case in enumerate(prop.cases):
        ctx = CaseContext(VerifyOptions(), deadline, np.random.default_rng(i), None, i, None)
        out = relu_bab_case(net, case, ctx, settings=settings)
        nodes += int(out.stats.get("nodes", 0))
        outs.append((case, out))
        if out.status == "falsified":
            assert out.x is not None
            real = case.violation(net.forward(out.x.reshape(1, -1)))[0] <= 0.0
            answer = "sat" if real else "bad-witness"
            break
        if out.status != "verified":
            answer = out.status
            break
    secs = time.perf_counter() - t0
    if check and answer == "unsat":
        for case, out in outs:
            if out.proof is not None:
                checked += 1
                bad += 0 if check_tree(net, case, out.proof).ok else 1
    return {"answer": answer, "secs": secs, "nodes": nodes, "checked": checked, "bad": bad}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, default=ROOT)
    ap.add_argument("--time-limit", type=float, default=60.0)
    ap.add_argument("--only", nargs="*", default=list(DEFAULT))
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--baseline", choices=tuple(BASELINES), default="legacy")
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="BLAS threads (default 1: on a 2-core machine shared with other jobs, waking "
        "idle BLAS threads costs more than they gain; 0 leaves the pool as it is)",
    )
    args = ap.parse_args(argv)
    with limit_blas(args.threads or None):
        return _main(args)


def _main(args: argparse.Namespace) -> int:
    with open(args.root / "truth.csv", newline="") as fh:
        truth = {(r["onnx"], r["vnnlib"]): r["truth"] for r in csv.DictReader(fh)}
    base = args.baseline
    searches = {base: BASELINES[base], "new": ReluBabSettings()}
    solved = {k: 0 for k in searches}
    total = {k: 0.0 for k in searches}
    both: dict[str, float] = {k: 0.0 for k in searches}
    wrong = 0
    for item in args.only:
        net_name, prop_name = item.split(":")
        known = truth.get((f"onnx/mnist-net_{net_name}.onnx", f"vnnlib/prop_{prop_name}.vnnlib"))
        rows = {}
        for name, settings in searches.items():
            r = run(args.root, net_name, prop_name, settings, args.time_limit, args.check)
            rows[name] = r
            ok = r["answer"] in ("sat", "unsat")
            solved[name] += ok
            total[name] += float(r["secs"])  # type: ignore[arg-type]
            if ok and known in ("sat", "unsat") and r["answer"] != known:
                wrong += 1
            if r["bad"]:
                wrong += 1
            print(
                f"{item:16s} {name:9s} {r['answer']:8s} {r['secs']:7.2f}s nodes {r['nodes']:6d}"
                f"  truth {known}  trees checked {r['checked']} failed {r['bad']}",
                flush=True,
            )
        if all(rows[k]["answer"] in ("sat", "unsat") for k in searches):
            for k in searches:
                both[k] += float(rows[k]["secs"])  # type: ignore[arg-type]
    n = len(args.only)
    for k in searches:
        print(f"{k}: solved {solved[k]}/{n}, total {total[k]:.1f}s")
    if both[base] > 0:
        print(
            f"on instances both solved: new {both['new']:.1f}s, {base} {both[base]:.1f}s, "
            f"ratio {both['new'] / both[base]:.3f}"
        )
    print(f"wrong answers or failed checks: {wrong}")
    return 1 if wrong else 0


if __name__ == "__main__":
    raise SystemExit(main())
