"""Check that every ``sat`` witness nncert writes validates the way VNN-COMP checks it.

Usage::

    python benchmarks/check_witnesses.py [--dir ../shared/benchmarks/vnncomp/acasxu]
                                         [--timeout S] [--limit N]

For every instance whose ``truth.csv`` answer is ``sat``, it runs the VNN-COMP
``run_instance`` contract in-process (``nncert vnncomp MODEL SPEC RESULT_FILE TIMEOUT``), parses
the result file, and validates the witness with
:func:`nncert.verify.vnncomp.validate_witness` twice: with the organizers' tolerances
(onnxruntime output within 1e-3 relative, box and property within 1e-4) and in strict mode
(the input exactly inside the box, the property violated with zero tolerance). Prints one
line per instance and a summary; exits 2 if any written witness fails either check.
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
import time
from pathlib import Path

DEFAULT_DIR = Path(__file__).resolve().parents[1].parent / "shared/benchmarks/vnncomp/acasxu"


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    p.add_argument("--timeout", type=float, default=0.0, help="override per-instance timeouts")
    p.add_argument("--limit", type=int, default=0)
    args = p.parse_args(argv)

    from nncert.verify.cli import main as nncert_main
    from nncert.verify.vnncomp import read_result_file, validate_witness
    from nncert.verify.vnnlib import load_vnnlib

    timeouts: dict[tuple[str, str], str] = {}
    with open(args.dir / "instances.csv", newline="") as fh:
        for row in csv.reader(fh):
            if row:
                timeouts[(row[0].strip(), row[1].strip())] = row[2].strip()
    with open(args.dir / "truth.csv", newline="") as fh:
        sats = [(r["onnx"], r["vnnlib"]) for r in csv.DictReader(fh) if r["truth"] == "sat"]
    if args.limit:
        sats = sats[: args.limit]
    bad: list[str] = []
    written = 0
    with tempfile.TemporaryDirectory() as tmp:
        for k, (onnx_rel, spec_rel) in enumerate(sats):
            out = Path(tmp) / f"r{k}.txt"
            key = (onnx_rel, spec_rel)
            timeout = str(args.timeout) if args.timeout else timeouts.get(key, "60")
            t0 = time.perf_counter()
            onnx_path = args.dir / onnx_rel
            nncert_main(
                ["vnncomp", str(onnx_path), str(args.dir / spec_rel), str(out), timeout, "--quiet"]
            )
            res = read_result_file(out)
            line = f"{onnx_rel} {spec_rel}: {res.result}"
            if res.result == "sat":
                written += 1
                if res.x is None or res.y is None:
                    bad.append(f"{line}: sat without a witness")
                else:
                    prop = load_vnnlib(args.dir / spec_rel)
                    tol = validate_witness(onnx_path, prop, res.x, res.y)
                    strict = validate_witness(onnx_path, prop, res.x, res.y, strict=True)
                    line += f" tolerance={tol.reason} strict={strict.reason}"
                    if not (tol.ok and strict.ok):
                        bad.append(line)
            print(f"[{k + 1}/{len(sats)}] {line} ({time.perf_counter() - t0:.2f}s)", flush=True)
    print(f"{written}/{len(sats)} sat witnesses written; {len(bad)} failed validation")
    for b in bad:
        print("  FAILED:", b)
    return 2 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
