"""Verify, certify, then check independently: the cost of checking against the cost of proving.

Usage::

    python benchmarks/check_proofs.py [--dir DIR] [--filter REGEX] [--limit N]
        [--timeout S] [--out results.csv]

For every instance of a VNN-COMP benchmark directory (``instances.csv``, default ACAS Xu),
in one process: ``verify`` with the default pipeline and the instance's time limit (what
``nncert verify`` runs), the certificate of the result (MILP and other solver verdicts are
re-proved by the project's own search within what is left of the limit, as ``nncert verify
--certificate`` does), a JSON round trip, and ``check`` (the independent checker, as
``nncert check`` runs it). It prints, over the verified instances: how many certificates the
checker accepts with trust ``independent`` / ``solver-attested`` / rejects, the total
verification and checking times and their ratio (check / verify), and writes one CSV row per
instance. Exit status 2 if any verified certificate is rejected.
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
import time
from pathlib import Path

from nncert.certificates import certificate_from_result, check, from_json, to_json
from nncert.verify.importers import from_onnx
from nncert.verify.pipeline import verify
from nncert.verify.result import Verdict
from nncert.verify.vnnlib import load_vnnlib

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "shared" / "benchmarks" / "vnncomp" / "acasxu"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="benchmark directory")
    ap.add_argument("--filter", default="", help="regex on 'onnx,vnnlib' (default: all)")
    ap.add_argument("--limit", type=int, default=0, help="at most N instances (0: all)")
    ap.add_argument("--timeout", type=float, default=None, help="override the time limits")
    ap.add_argument("--out", type=Path, default=None, help="CSV of per-instance results")
    args = ap.parse_args(argv)
    rows = []
    with open(args.dir / "instances.csv") as fh:
        for line in fh:
            parts = [p.strip() for p in line.split(",")]
            if len(parts) >= 3 and re.search(args.filter, f"{parts[0]},{parts[1]}"):
                rows.append((parts[0], parts[1], float(parts[2])))
    if args.limit:
        rows = rows[: args.limit]
    out: list[dict[str, object]] = []
    counts = {"independent": 0, "solver-attested": 0, "rejected": 0}
    t_verify = t_check = 0.0
    for k, (onnx, spec, limit) in enumerate(rows):
        limit = args.timeout or limit
        net = from_onnx(str(args.dir / onnx))
        prop = load_vnnlib(str(args.dir / spec))
        t0 = time.perf_counter()
        res = verify(net, prop, time_limit=limit)
        spare = max(limit - (time.perf_counter() - t0), 0.0)
        cert = certificate_from_result(net, prop, res, reprove_time=spare)
        tv = time.perf_counter() - t0
        trust = ""
        tc = 0.0
        if res.verdict is Verdict.VERIFIED:
            doc = to_json(cert)
            t1 = time.perf_counter()
            report = check(from_json(doc), net, expected_property=prop)
            tc = time.perf_counter() - t1
            trust = report.trust or "rejected"
            counts[trust] += 1
            t_verify += tv
            t_check += tc
            if not report.ok:
                print(f"REJECTED {onnx} {spec}: {report.reasons[0]}", file=sys.stderr)
        out.append(
            {
                "onnx": onnx,
                "vnnlib": spec,
                "verdict": res.verdict.value,
                "method": res.method,
                "evidence": cert.evidence.kind,
                "trust": trust,
                "verify_s": round(tv, 4),
                "check_s": round(tc, 4),
            }
        )
        print(
            f"[{k + 1}/{len(rows)}] {Path(onnx).stem} {Path(spec).stem}: {res.verdict.value} "
            f"({res.method}) {tv:.2f}s; check {trust or '-'} {tc:.2f}s",
            flush=True,
        )
    n = sum(counts.values())
    print(
        f"verified: {n}; independent {counts['independent']}, solver-attested "
        f"{counts['solver-attested']}, rejected {counts['rejected']}"
    )
    if n:
        print(
            f"total verify {t_verify:.1f}s, total check {t_check:.1f}s, "
            f"ratio check/verify {t_check / max(t_verify, 1e-9):.3f}"
        )
    if args.out:
        with open(args.out, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(out[0]) if out else ["onnx"])
            w.writeheader()
            w.writerows(out)
    return 2 if counts["rejected"] else 0


if __name__ == "__main__":
    sys.exit(main())
