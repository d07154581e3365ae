"""Certificate transfer vs direct verification on the VNN-COMP verivital CNN (issue 16, 3).

Usage::

    python benchmarks/verivital_transfer.py [--instances N] [--time-limit S]
                                            [--network Convnet_avgpool|Convnet_maxpool]

For the first ``N`` (default 5) *unsat* instances of ``truth.csv`` for the chosen network
(default ``Convnet_avgpool``), in one process:

1. verify the source directly and build its certificate;
2. for each compression -- ``prune10`` (10% of the non-zero weights of the convolution and the
   classifier, ``among="nonzero"``), ``int8`` (per-channel int8 of both), ``channels`` (3 of
   the 32 convolution channels removed, no refit) -- time ``transfer(cert, source, target,
   verify_fallback=False)`` and a direct ``verify`` of the target (same time limit);
3. soundness: a transferred VERIFIED whose direct verdict is FALSIFIED, or whose target shows
   a violation on 2048 samples of the box (uniform points, random vertices, the centre), is
   counted as *unsound*; the transferred certificate is also re-checked (``check`` with the
   source and its certificate: must be ok with trust ``"independent"``).

Prints one row per compression: instances, carried (transferred VERIFIED), direct VERIFIED,
unsound, total direct time, total transfer time and their ratio (direct / transfer), then a
per-instance table. Exit status 2 when anything unsound was found.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nncert.certificates import certificate_from_result, check, transfer
from nncert.compression import magnitude_prune, quantize_weights, structured_prune
from nncert.verify.importers import from_onnx
from nncert.verify.network import Network
from nncert.verify.pipeline import verify
from nncert.verify.result import Verdict
from nncert.verify.spec import Property
from nncert.verify.vnnlib import load_vnnlib

#: ``<workspace>/shared/benchmarks/vnncomp/verivital``
VERIVITAL = (
    Path(__file__).resolve().parents[1].parent / "shared" / "benchmarks" / "vnncomp" / "verivital"
)
CHANNELS = 32  # output channels of the verivital convolution (32 x 27 x 27 neurons)


def compressions() -> dict[str, Callable[[Network], Network]]:
    """The compressions, each ``source -> target`` (first and last Dense layer: the
    convolution and the classifier; MaxPool's exact +-1 tree layers are structure)."""
    return {
        "prune10": lambda n: magnitude_prune(n, 0.1, among="nonzero", layers=[0, -1])[0],
        "int8": lambda n: quantize_weights(n, bits=8, layers=[0, -1])[0],
        "channels": lambda n: structured_prune(
            n, 0.1, channels=CHANNELS, layers=[0], compensate=False, n_calibration=16
        )[0],
    }


def sampled_violation(net: Network, prop: Property, rng: np.random.Generator) -> float:
    """The smallest ``max_r (A_r y - b_r)`` over samples of each case's box (``<= 0``:
    a violation)."""
    worst = np.inf
    for box in {case.input_box for case in prop.cases}:
        signs = rng.integers(0, 2, size=(512, box.dim)).astype(bool)
        pts = [box.sample(1535, rng), box.center[None, :], np.where(signs, box.upper, box.lower)]
        y = net.forward(np.vstack(pts))
        for case in prop.cases:
            if case.input_box == box:
                worst = min(worst, float(np.min(case.violation(y))))
    return worst


@dataclass
class Row:
    """Totals of one compression."""

    instances: int = 0
    carried: int = 0
    direct_verified: int = 0
    unsound: int = 0
    direct_s: float = 0.0
    transfer_s: float = 0.0
    details: list[tuple[str, str, float, str, float]] = field(default_factory=list)


def instances(network: str, n: int) -> list[str]:
    """The first ``n`` unsat vnnlib paths of ``network`` in ``truth.csv``."""
    with open(VERIVITAL / "truth.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if Path(r["onnx"]).stem == network]
    return [r["vnnlib"] for r in rows if r["truth"] == "unsat"][:n]


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print the tables; 2 when unsound, else 0."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--instances", type=int, default=5, help="unsat instances (default 5)")
    ap.add_argument("--time-limit", type=float, default=60.0, help="seconds per verification")
    ap.add_argument("--network", default="Convnet_avgpool", help="verivital network stem")
    args = ap.parse_args(argv)
    onnx_file = VERIVITAL / "onnx" / f"{args.network}.onnx"
    if not onnx_file.is_file():
        print(f"verivital network not found: {onnx_file}", file=sys.stderr)
        return 1
    source = from_onnx(onnx_file)
    targets = {name: make(source) for name, make in compressions().items()}
    rows = {name: Row() for name in targets}
    rng = np.random.default_rng(0)
    for vnnlib in instances(args.network, args.instances):
        prop = load_vnnlib(VERIVITAL / vnnlib)
        t = time.perf_counter()
        res = verify(source, prop, method="auto", time_limit=args.time_limit)
        src_s = time.perf_counter() - t
        cert = certificate_from_result(source, prop, res)
        print(f"{vnnlib}: source {res.verdict.value} in {src_s:.2f} s", flush=True)
        for name, target in targets.items():
            row = rows[name]
            row.instances += 1
            t = time.perf_counter()
            tr = transfer(cert, source, target, verify_fallback=False)
            tr_s = time.perf_counter() - t
            t = time.perf_counter()
            direct = verify(target, prop, method="auto", time_limit=args.time_limit)
            d_s = time.perf_counter() - t
            row.transfer_s += tr_s
            row.direct_s += d_s
            row.direct_verified += direct.verdict is Verdict.VERIFIED
            carried = tr.transferred and tr.verdict is Verdict.VERIFIED
            if carried:
                row.carried += 1
                rep = check(tr.certificate, target, source=source, source_certificate=cert)
                bad = (
                    direct.verdict is Verdict.FALSIFIED
                    or sampled_violation(target, prop, rng) <= 0.0
                    or not rep.ok
                    or rep.trust != "independent"
                )
                row.unsound += bad
            outcome = "carried" if carried else f"not carried ({tr.verdict.value})"
            row.details.append((vnnlib, outcome, tr_s, direct.verdict.value, d_s))
    print()
    print(f"network {args.network}, {args.instances} unsat instances, one process")
    print(
        f"{'compression':<10} {'inst':>4} {'carried':>7} {'direct V':>8} {'unsound':>7} "
        f"{'direct s':>9} {'transfer s':>10} {'ratio':>6}"
    )
    for name, r in rows.items():
        ratio = r.direct_s / r.transfer_s if r.transfer_s > 0 else float("nan")
        print(
            f"{name:<10} {r.instances:>4} {r.carried:>7} {r.direct_verified:>8} {r.unsound:>7} "
            f"{r.direct_s:>9.2f} {r.transfer_s:>10.2f} {ratio:>6.2f}"
        )
    print()
    print(f"{'compression':<10} {'instance':<28} {'transfer':<22} {'s':>6} {'direct':<10} {'s':>6}")
    for name, r in rows.items():
        for vnnlib, outcome, tr_s, verdict, d_s in r.details:
            print(f"{name:<10} {vnnlib:<28} {outcome:<22} {tr_s:>6.2f} {verdict:<10} {d_s:>6.2f}")
    return 2 if any(r.unsound for r in rows.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
