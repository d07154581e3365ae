"""Tree replay: carried share and transfer time against direct verification.

Usage::

    python benchmarks/transfer_replay.py [--instances 10] [--time-limit 60]
                                         [--source-time-limit 30] [--out replay.csv]
                                         [--root DIR] [--method bab|relu_bab]
                                         [--variants prune5,prune10,prune30,int8]
                                         [--props 2,3,4] [--networks 256x2]

Walks the unsat instances of a VNN-COMP suite (``truth.csv``; ACAS Xu by default, MNIST-FC with
``--root .../mnistfc --method relu_bab``) in order and keeps the first ``--instances`` whose
direct verification by branch and bound (``--method``: ``bab`` splits inputs, ``relu_bab``
ReLU phases) ends VERIFIED with :class:`~nncert.certificates.BabEvidence` holding a proof tree
that needed splits. For each, and each variant (by default magnitude pruning 5 % and 10 %, int8
weights; ``prune30`` on request), it runs in the same process

* ``transfer(cert, source, target)`` (timed; the source certificate is checked once per
  instance, on the first variant, and cached for the others), and
* ``verify(target, prop, method="bab")`` (timed, same time limit),

and checks that the transferred certificate passes ``check`` with trust ``"independent"`` and
that no transfer says VERIFIED where direct verification finds a counterexample (unsound).

Printed: per-row results, then the share of the directly-proved variants carried by the
transfer itself (without fallback), the share of source leaves carried unchanged, and the total
transfer time against the total direct time.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path
from typing import Any

from nncert.certificates import BabEvidence, certificate_from_result, check
from nncert.certificates.transfer import transfer
from nncert.compression import magnitude_prune, quantize_weights
from nncert.verify.importers import from_onnx
from nncert.verify.network import Network
from nncert.verify.pipeline import verify
from nncert.verify.result import Verdict
from nncert.verify.vnnlib import load_vnnlib

ROOT = Path(__file__).resolve().parents[1].parent / "shared" / "benchmarks" / "vnncomp" / "acasxu"

VARIANTS = {
    "prune5": lambda n: magnitude_prune(n, 0.05)[0],
    "prune10": lambda n: magnitude_prune(n, 0.10)[0],
    "prune30": lambda n: magnitude_prune(n, 0.30)[0],
    "int8": lambda n: quantize_weights(n, 8)[0],
}
DEFAULT_VARIANTS = "prune5,prune10,int8"


def _unsat(root: Path) -> list[tuple[str, str]]:
    with open(root / "truth.csv", newline="") as fh:
        return [(r["onnx"], r["vnnlib"]) for r in csv.DictReader(fh) if r["truth"] == "unsat"]


#: the variants the acceptance figures are about (pruned at most 10 %, int8)
LIGHT_VARIANTS = ("prune5", "prune10", "int8")


def _group_line(rows: list[dict[str, Any]]) -> str:
    """``carried k/n (p%), transfer T s, direct D s, ratio T/D`` over directly proved rows."""
    carried = [r for r in rows if r["transferred"] and r["transfer"] == "verified"]
    t = sum(float(r["transfer_s"]) for r in rows)
    d = sum(float(r["direct_s"]) for r in rows)
    share = 100.0 * len(carried) / max(len(rows), 1)
    return (
        f"carried {len(carried)}/{len(rows)} ({share:.1f}%), transfer {t:.1f}s, direct {d:.1f}s, "
        f"ratio {t / max(d, 1e-9):.3f}"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--instances", type=int, default=10)
    ap.add_argument("--time-limit", type=float, default=60.0)
    ap.add_argument("--source-time-limit", type=float, default=30.0)
    ap.add_argument("--props", default="", help="only these ACAS properties, e.g. 2,3,4")
    ap.add_argument("--networks", default="", help="only ONNX files containing one of these")
    ap.add_argument("--root", type=Path, default=ROOT)
    ap.add_argument("--method", default="bab", choices=("bab", "relu_bab"))
    ap.add_argument("--variants", default=DEFAULT_VARIANTS, help=", ".join(VARIANTS))
    ap.add_argument("--out", type=Path, default=Path("replay.csv"))
    args = ap.parse_args(argv)
    variants = {v: VARIANTS[v] for v in args.variants.split(",") if v}
    nets = [n for n in args.networks.split(",") if n]
    rows: list[dict[str, Any]] = []
    kept = 0
    fields = [
        "instance",
        "variant",
        "direct",
        "direct_s",
        "transfer",
        "transfer_s",
        "transferred",
        "route",
        "leaves",
        "carried",
        "failing",
        "grafted",
        "trust",
        "unsound",
    ]
    with open(args.out, "w", newline="") as fh:
        out = csv.DictWriter(fh, fieldnames=fields)
        out.writeheader()
        wanted = {f"vnnlib/prop_{p.strip()}.vnnlib" for p in args.props.split(",") if p.strip()}
        for onnx_rel, vnn_rel in _unsat(args.root):
            if kept >= args.instances:
                break
            if wanted and vnn_rel not in wanted:
                continue
            if nets and not any(n in onnx_rel for n in nets):
                continue
            name = f"{Path(onnx_rel).stem.replace('ACASXU_run2a_', '').replace('_batch_2000', '')}"
            name += f"/{Path(vnn_rel).stem}"
            source: Network = from_onnx(str(args.root / onnx_rel))
            prop = load_vnnlib(str(args.root / vnn_rel))
            t0 = time.perf_counter()
            res = verify(source, prop, method=args.method, time_limit=args.source_time_limit)
            src_s = time.perf_counter() - t0
            if res.verdict is not Verdict.VERIFIED:
                print(f"skip {name}: source {res.verdict.value} in {src_s:.1f}s", flush=True)
                continue
            cert = certificate_from_result(source, prop, res, options={"method": args.method})
            ev = cert.evidence
            if not (
                isinstance(ev, BabEvidence)
                and any(c.tree is not None and c.tree.n_nodes > 1 for c in ev.cases)
            ):
                print(f"skip {name}: closed without branching", flush=True)
                continue
            kept += 1
            print(f"{name}: source verified in {src_s:.1f}s", flush=True)
            for vname, make in variants.items():
                target = make(source)
                t1 = time.perf_counter()
                direct = verify(target, prop, method=args.method, time_limit=args.time_limit)
                direct_s = time.perf_counter() - t1
                t2 = time.perf_counter()
                tr = transfer(
                    cert,
                    source,
                    target,
                    time_limit=args.time_limit,
                    options={"method": args.method},  # the fallback runs what direct runs
                )
                tr_s = time.perf_counter() - t2
                trust = (
                    check(tr.certificate, target).trust if tr.verdict is Verdict.VERIFIED else ""
                )
                rp = tr.replay or {}
                route = (
                    "delta"
                    if tr.transferred and tr.replay is None
                    else ("replay" if tr.transferred else "fallback")
                )
                row = {
                    "instance": name,
                    "variant": vname,
                    "direct": direct.verdict.value,
                    "direct_s": round(direct_s, 3),
                    "transfer": tr.verdict.value,
                    "transfer_s": round(tr_s, 3),
                    "transferred": tr.transferred,
                    "route": route,
                    "leaves": rp.get("leaves", ""),
                    "carried": rp.get("carried", ""),
                    "failing": rp.get("failing", ""),
                    "grafted": rp.get("grafted", ""),
                    "trust": trust,
                    "unsound": tr.verdict is Verdict.VERIFIED
                    and direct.verdict is Verdict.FALSIFIED,
                }
                rows.append(row)
                out.writerow(row)
                fh.flush()
                print("  ", row, flush=True)
    proved = [r for r in rows if r["direct"] == "verified"]
    carried = [r for r in proved if r["transferred"] and r["transfer"] == "verified"]
    leaves = sum(int(r["leaves"] or 0) for r in rows)
    kept_leaves = sum(int(r["carried"] or 0) for r in rows)
    t_tr = sum(float(r["transfer_s"]) for r in rows)
    t_di = sum(float(r["direct_s"]) for r in rows)
    unsound = sum(bool(r["unsound"]) for r in rows)
    print(f"instances: {kept}, rows: {len(rows)}, unsound: {unsound}")
    print(f"directly proved: {len(proved)}; carried by the transfer itself: {len(carried)}")
    print(f"source leaves carried unchanged: {kept_leaves} of {leaves}")
    print(f"time: transfer {t_tr:.1f}s, direct {t_di:.1f}s, ratio {t_tr / max(t_di, 1e-9):.3f}")
    p_tr = sum(float(r["transfer_s"]) for r in proved)
    p_di = sum(float(r["direct_s"]) for r in proved)
    print(
        f"on the directly proved rows: transfer {p_tr:.1f}s, direct {p_di:.1f}s, "
        f"ratio {p_tr / max(p_di, 1e-9):.3f}"
    )
    for vname in variants:
        print(f"  {vname}: {_group_line([r for r in proved if r['variant'] == vname])}")
    # the acceptance group of issue 14: the light compressions (pruned at most 10 %, int8)
    light = [r for r in proved if r["variant"] in LIGHT_VARIANTS]
    if light:
        print(f"pruned <=10% and int8: {_group_line(light)}")
    return 2 if unsound else 0


if __name__ == "__main__":
    sys.exit(main())
