"""Certificate transfer to compressed networks vs direct verification (soundness + speed).

Usage::

    python benchmarks/run_transfer.py [--acas default|all|none] [--examples NAME,...]
                                      [--time-limit S] [--acas-time-limit S]
                                      [--out transfer.csv] [--details transfer_details.csv]

For every source network -- the ten bundled examples (ReLU, hardtanh, sigmoid, tanh; every
bundled property) and a subset of the VNN-COMP ACAS Xu networks (``1_1, 2_3, 3_3, 4_5, 5_9``
with properties 1-4; ``--acas all`` for all 45) -- the script

1. verifies every property of the source directly (:func:`nncert.verify.pipeline.verify`) and
   builds its certificate (:func:`nncert.certificates.certificate_from_result`);
2. for each compression (magnitude pruning 10/30/50 %, int8, int4, low rank at energy 0.99 and
   at half rank per layer) builds the target and, per property,

   * runs ``transfer(cert, source, target, verify_fallback=False)`` (timed),
   * verifies the target directly (timed, same per-property time limit);

3. checks soundness: a transferred VERIFIED whose direct verdict is FALSIFIED is a critical
   bug; one whose direct verdict is UNKNOWN is attacked (PGD with many restarts plus dense
   uniform sampling, candidates replayed by :func:`confirm_counterexample`). Every transferred
   VERIFIED is also densely sampled, and every transferred FALSIFIED (T3) witness is replayed
   on the target independently and compared with the direct verdict.

Outputs: ``transfer.csv`` (one row per network and compression), a per-property details CSV,
a Markdown table and a per-compression summary on stdout. Exit status 2 when any soundness
violation was found.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nncert.certificates import certificate_from_result, transfer
from nncert.compression import low_rank, magnitude_prune, quantize_weights
from nncert.verify.network import Network
from nncert.verify.result import Verdict, VerificationResult
from nncert.verify.spec import Property

#: Root of the shared benchmarks (``<workspace>/shared/benchmarks``).
SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "benchmarks"
ACAS_DIR = SHARED / "vnncomp" / "acasxu"
#: Default ACAS Xu subset: (network id, properties).
ACAS_DEFAULT: tuple[str, ...] = ("1_1", "2_3", "3_3", "4_5", "5_9")
ACAS_PROPS: tuple[int, ...] = (1, 2, 3, 4)

Compressor = Callable[[Network], Network]


# --------------------------------------------------------------------------------------------
# Compressions
# --------------------------------------------------------------------------------------------


def _prune(sparsity: float) -> Compressor:
    def run(net: Network) -> Network:
        return magnitude_prune(net, sparsity)[0]

    return run


def _quant(bits: int) -> Compressor:
    def run(net: Network) -> Network:
        return quantize_weights(net, bits=bits)[0]

    return run


def _lowrank_energy(energy: float) -> Compressor:
    def run(net: Network) -> Network:
        return low_rank(net, energy=energy)[0]

    return run


def _lowrank_half(net: Network) -> Network:
    """Truncate every Dense layer to ``ceil(min(n_out, n_in) / 2)`` singular values."""
    out = net
    for i, dense in enumerate(net.dense_layers):
        rank = max(1, math.ceil(min(dense.weight.shape) / 2))
        out = low_rank(out, rank=rank, layers=[i])[0]
    return out


#: name -> compression (applied to the source network)
COMPRESSIONS: dict[str, Compressor] = {
    "prune10": _prune(0.1),
    "prune30": _prune(0.3),
    "prune50": _prune(0.5),
    "int8": _quant(8),
    "int4": _quant(4),
    "lowrank-e0.99": _lowrank_energy(0.99),
    "lowrank-half": _lowrank_half,
}


# --------------------------------------------------------------------------------------------
# Sources
# --------------------------------------------------------------------------------------------


@dataclass
class Source:
    """A source network with its properties and per-property time limit."""

    name: str
    family: str
    network: Network
    properties: list[Property]
    time_limit: float


def _example_sources(names: list[str] | None, time_limit: float) -> Iterator[Source]:
    from nncert.verify.examples import list_examples, load_example

    for name in names if names is not None else list_examples():
        net, props = load_example(name)
        yield Source(name, "example", net, list(props), time_limit)


def _acas_sources(which: str, root: Path, time_limit: float) -> Iterator[Source]:
    from nncert.verify.importers import from_onnx
    from nncert.verify.vnnlib import load_vnnlib

    if which == "none":
        return
    with open(root / "instances.csv", newline="") as fh:
        pairs = {(r[0], r[1]) for r in csv.reader(fh) if r}
    if which == "all":
        ids = [f"{a}_{b}" for a in range(1, 6) for b in range(1, 10)]
    else:
        ids = list(ACAS_DEFAULT)
    for nid in ids:
        onnx_rel = f"onnx/ACASXU_run2a_{nid}_batch_2000.onnx"
        props = []
        for p in ACAS_PROPS:
            vnn_rel = f"vnnlib/prop_{p}.vnnlib"
            if (onnx_rel, vnn_rel) in pairs:
                prop = load_vnnlib(str(root / vnn_rel))
                props.append(Property(prop.cases, name=f"prop_{p}", label=prop.label))
        if props:
            yield Source(
                f"acas_{nid}", "acasxu", from_onnx(str(root / onnx_rel)), props, time_limit
            )


# --------------------------------------------------------------------------------------------
# Falsification of suspicious transfers
# --------------------------------------------------------------------------------------------


def falsify(
    network: Network,
    prop: Property,
    *,
    samples: int = 20000,
    restarts: int = 64,
    steps: int = 100,
    seed: int = 0,
) -> tuple[bool, float]:
    """Look hard for a counterexample: dense uniform sampling, then PGD from the best samples.

    Returns:
        ``(found, best)``: whether a replay-confirmed counterexample was found, and the smallest
        case violation seen (``<= 0`` means a violation).
    """
    from nncert.verify.attack import pgd_attack
    from nncert.verify.pipeline import confirm_counterexample

    rng = np.random.default_rng(seed)
    best = math.inf
    for i, case in enumerate(prop.cases):
        box = case.input_box
        xs = np.vstack(
            [box.sample(samples, rng), box.lower, box.upper, (box.lower + box.upper) / 2]
        )
        viol = case.violation(network.forward(xs))
        order = np.argsort(viol)
        best = min(best, float(viol[order[0]]))
        for j in order[:4]:
            if viol[j] <= 0 and confirm_counterexample(network, case, i, xs[j]) is not None:
                return True, best
        res = pgd_attack(
            network,
            case,
            steps=steps,
            restarts=restarts,
            rng=rng,
            x_init=xs[order[: restarts // 2]],
        )
        best = min(best, float(res.violation))
        if confirm_counterexample(network, case, i, np.asarray(res.x)) is not None:
            return True, best
    return False, best


# --------------------------------------------------------------------------------------------
# The experiment
# --------------------------------------------------------------------------------------------


@dataclass
class PropRow:
    """The outcome of one (network, compression, property)."""

    network: str
    compression: str
    prop: str
    source: str
    transfer: str
    transferred: bool
    transfer_time: float
    direct: str
    direct_time: float
    reason: str = ""
    check: str = ""  # "", "attacked-ok", "UNSOUND: ...", "T3-ok", "T3-BAD: ..."
    sample_min: float | None = None


@dataclass
class Agg:
    """Per (network, compression) counts and totals."""

    network: str
    compression: str
    properties: int = 0
    source_verified: int = 0
    source_falsified: int = 0
    transferred: int = 0
    fell_back: int = 0
    t3: int = 0
    direct_verified: int = 0
    direct_falsified: int = 0
    direct_unknown: int = 0
    transfer_time: float = 0.0
    direct_time: float = 0.0
    direct_time_transferred: float = 0.0
    unsound: int = 0
    attacked_ok: int = 0
    errors: int = 0
    notes: list[str] = field(default_factory=list)

    def add(self, r: PropRow) -> None:
        """Account one property row."""
        self.properties += 1
        self.source_verified += r.source == "verified"
        self.source_falsified += r.source == "falsified"
        if r.transferred and r.transfer == "verified":
            self.transferred += 1
            self.direct_time_transferred += r.direct_time
        if r.transferred and r.transfer == "falsified":
            self.t3 += 1
        if r.source == "verified" and not r.transferred:
            self.fell_back += 1
        self.direct_verified += r.direct == "verified"
        self.direct_falsified += r.direct == "falsified"
        self.direct_unknown += r.direct not in ("verified", "falsified")
        self.transfer_time += r.transfer_time
        self.direct_time += r.direct_time
        self.unsound += r.check.startswith(("UNSOUND", "T3-BAD"))
        self.attacked_ok += r.check == "attacked-ok"
        self.errors += r.direct == "error" or r.transfer == "error"

    def row(self) -> dict[str, Any]:
        """CSV row."""
        return {
            "network": self.network,
            "compression": self.compression,
            "properties": self.properties,
            "source_verified": self.source_verified,
            "source_falsified": self.source_falsified,
            "transferred": self.transferred,
            "fell_back": self.fell_back,
            "t3_falsified": self.t3,
            "direct_verified": self.direct_verified,
            "direct_falsified": self.direct_falsified,
            "direct_unknown": self.direct_unknown,
            "transfer_time": f"{self.transfer_time:.3f}",
            "direct_time": f"{self.direct_time:.3f}",
            "direct_time_on_transferred": f"{self.direct_time_transferred:.3f}",
            "unsound": self.unsound,
            "attacked_ok": self.attacked_ok,
            "errors": self.errors,
        }


def _timed_verify(
    net: Network, prop: Property, time_limit: float
) -> tuple[VerificationResult, float]:
    from nncert.verify.pipeline import verify

    t0 = time.perf_counter()
    res = verify(net, prop, time_limit=time_limit)
    return res, time.perf_counter() - t0


def _replay_t3(target: Network, prop: Property, res: Any) -> str:
    """Independently confirm a transferred (T3) witness on the target."""
    ev = res.certificate.evidence
    case = prop.cases[int(ev.case_index)]
    x = np.asarray(ev.x, dtype=np.float64)
    if not case.input_box.contains(x):
        return "T3-BAD: witness outside the input box"
    v = float(case.violation(target.forward(x).reshape(1, -1))[0])
    return "T3-ok" if v <= 0.0 else f"T3-BAD: witness violation {v:.3g} > 0 on the target"


def run_pair(
    src: Source,
    cname: str,
    target: Network,
    certs: list[Any],
    src_verdicts: list[str],
    seed: int,
    log: Callable[[str], None],
) -> list[PropRow]:
    """Transfer and directly verify every property of ``src`` on one compressed target."""
    rows: list[PropRow] = []
    for k, prop in enumerate(src.properties):
        pname = prop.name or f"p{k}"
        cert = certs[k]
        tr_verdict, tr_ok, tr_time, reason = "none", False, 0.0, "no source certificate"
        tres = None
        if cert is not None:
            t0 = time.perf_counter()
            try:
                tres = transfer(cert, src.network, target, verify_fallback=False)
                tr_verdict, tr_ok, reason = tres.verdict.value, tres.transferred, tres.reason
            except Exception as err:
                tr_verdict, reason = "error", f"{type(err).__name__}: {err}"
                log(f"  ERROR transfer {src.name}/{cname}/{pname}: {reason}")
            tr_time = time.perf_counter() - t0
        try:
            dres, d_time = _timed_verify(target, prop, src.time_limit)
            direct = dres.verdict.value
        except Exception as err:
            dres, d_time, direct = None, 0.0, "error"
            log(f"  ERROR direct {src.name}/{cname}/{pname}: {type(err).__name__}: {err}")
        row = PropRow(
            src.name,
            cname,
            pname,
            src_verdicts[k],
            tr_verdict,
            tr_ok,
            tr_time,
            direct,
            d_time,
            reason,
        )
        if tres is not None and tr_ok and tres.verdict is Verdict.VERIFIED:
            found, best = falsify(target, prop, samples=4000, restarts=8, steps=30, seed=seed)
            row.sample_min = best
            if direct == "falsified":
                assert dres is not None and dres.counterexample is not None
                row.check = (
                    f"UNSOUND: transfer VERIFIED, direct FALSIFIED "
                    f"(case {dres.counterexample.case_index}, x={dres.counterexample.x.tolist()})"
                )
            elif found:
                row.check = f"UNSOUND: transfer VERIFIED, sampling/PGD violation {best:.3g}"
            elif direct != "verified":
                found, best = falsify(target, prop, seed=seed + 1)
                row.sample_min = min(best, row.sample_min)
                row.check = (
                    f"UNSOUND: transfer VERIFIED, attack violation {best:.3g}"
                    if found
                    else "attacked-ok"
                )
        if tres is not None and tr_ok and tres.verdict is Verdict.FALSIFIED:
            row.check = _replay_t3(target, prop, tres)
            if row.check == "T3-ok" and direct == "verified":
                row.check = "T3-BAD: replayed witness but direct verification says VERIFIED"
        if row.check.startswith(("UNSOUND", "T3-BAD")):
            log(f"  !!! SOUNDNESS: {src.name}/{cname}/{pname}: {row.check}; reason={reason}")
        rows.append(row)
    return rows


def run_source(
    src: Source, compressions: dict[str, Compressor], log: Callable[[str], None]
) -> list[PropRow]:
    """Verify the source, then every compression of it."""
    certs: list[Any] = []
    verdicts: list[str] = []
    t0 = time.perf_counter()
    for prop in src.properties:
        res, _ = _timed_verify(src.network, prop, src.time_limit)
        try:
            cert = certificate_from_result(src.network, prop, res)
        except Exception as err:
            log(f"  no certificate for {src.name}/{prop.name}: {type(err).__name__}: {err}")
            cert = None
        certs.append(cert)
        verdicts.append(res.verdict.value)
    log(
        f"{src.name}: {len(src.properties)} properties, source "
        f"{verdicts.count('verified')}V/{verdicts.count('falsified')}F/"
        f"{verdicts.count('unknown')}U in {time.perf_counter() - t0:.1f}s"
    )
    rows: list[PropRow] = []
    for j, (cname, comp) in enumerate(compressions.items()):
        target = comp(src.network)
        pair = run_pair(src, cname, target, certs, verdicts, seed=j, log=log)
        agg = Agg(src.name, cname)
        for r in pair:
            agg.add(r)
        log(
            f"  {cname:14s} transferred {agg.transferred}/{agg.source_verified} "
            f"T3 {agg.t3}/{agg.source_falsified} direct {agg.direct_verified}V/"
            f"{agg.direct_falsified}F/{agg.direct_unknown}U  transfer {agg.transfer_time:.2f}s "
            f"direct {agg.direct_time:.2f}s unsound {agg.unsound}"
        )
        rows.extend(pair)
    return rows


# --------------------------------------------------------------------------------------------
# Reporting
# --------------------------------------------------------------------------------------------

_COLS = [
    ("network", "network"),
    ("compression", "compression"),
    ("properties", "props"),
    ("source_verified", "src V"),
    ("transferred", "transferred"),
    ("fell_back", "fell back"),
    ("t3_falsified", "T3 F"),
    ("direct_verified", "direct V"),
    ("direct_falsified", "direct F"),
    ("direct_unknown", "direct U"),
    ("transfer_time", "transfer s"),
    ("direct_time", "direct s"),
    ("unsound", "unsound"),
    ("attacked_ok", "attacked ok"),
]


def markdown(rows: list[dict[str, Any]]) -> str:
    """A Markdown table of aggregated rows."""
    head = "| " + " | ".join(h for _, h in _COLS) + " |"
    sep = (
        "|" + "|".join("---" if k in ("network", "compression") else "---:" for k, _ in _COLS) + "|"
    )
    body = ["| " + " | ".join(str(r[k]) for k, _ in _COLS) + " |" for r in rows]
    return "\n".join([head, sep, *body])


def aggregate(rows: list[PropRow], key: Callable[[PropRow], tuple[str, str]]) -> list[Agg]:
    """Aggregate property rows by ``key`` (insertion order)."""
    out: dict[tuple[str, str], Agg] = {}
    for r in rows:
        k = key(r)
        if k not in out:
            out[k] = Agg(*k)
        out[k].add(r)
    return list(out.values())


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--acas", choices=("default", "all", "none"), default="default")
    p.add_argument("--acas-dir", type=Path, default=ACAS_DIR)
    p.add_argument("--examples", default="", help="comma-separated example names (default all)")
    p.add_argument("--compressions", default="", help=f"subset of {','.join(COMPRESSIONS)}")
    p.add_argument("--time-limit", type=float, default=5.0, help="per property, examples")
    p.add_argument("--acas-time-limit", type=float, default=4.0, help="per property, ACAS Xu")
    p.add_argument("--out", type=Path, default=Path("transfer.csv"))
    p.add_argument("--details", type=Path, default=None, help="per-property CSV")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status (2 on a soundness violation)."""
    args = _args(argv)
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    comps = COMPRESSIONS
    if args.compressions:
        comps = {k: COMPRESSIONS[k] for k in args.compressions.split(",")}
    names = [n for n in args.examples.split(",") if n] if args.examples else None

    def log(msg: str) -> None:
        print(msg, flush=True)

    t_all = time.perf_counter()
    rows: list[PropRow] = []
    sources: list[Iterator[Source]] = [_example_sources(names, args.time_limit)]
    if args.acas != "none" and not args.acas_dir.exists():
        log(f"ACAS Xu directory {args.acas_dir} not found; skipping ACAS Xu")
    elif args.acas != "none":
        sources.append(_acas_sources(args.acas, args.acas_dir, args.acas_time_limit))
    for it in sources:
        for src in it:
            try:
                rows.extend(run_source(src, comps, log))
            except Exception:
                log(f"!!! {src.name} failed:\n{traceback.format_exc()}")

    per_pair = aggregate(rows, lambda r: (r.network, r.compression))
    per_comp = aggregate(rows, lambda r: ("all", r.compression))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", newline="") as fh:
        fields = list(Agg("", "").row())
        w = csv.DictWriter(fh, fieldnames=fields)
        w.writeheader()
        w.writerows(a.row() for a in per_pair)
    details = args.details or args.out.with_name(args.out.stem + "_details.csv")
    with open(details, "w", newline="") as fh:
        fields = list(PropRow.__dataclass_fields__)
        w = csv.DictWriter(fh, fieldnames=fields)
        w.writeheader()
        for r in rows:
            w.writerow({f: getattr(r, f) for f in fields})

    print()
    print(markdown([a.row() for a in per_pair]))
    print("\nSummary per compression (all networks):\n")
    print(markdown([a.row() for a in per_comp]))
    fams = aggregate(
        rows, lambda r: ("acasxu" if r.network.startswith("acas_") else "examples", r.compression)
    )
    print("\nSummary per family and compression:\n")
    print(markdown([a.row() for a in fams]))
    bad = [r for r in rows if r.check.startswith(("UNSOUND", "T3-BAD"))]
    n_tr = sum(r.transferred and r.transfer == "verified" for r in rows)
    n_conf = sum(
        r.transferred and r.transfer == "verified" and r.direct == "verified" for r in rows
    )
    n_att = sum(r.check == "attacked-ok" for r in rows)
    n_t3 = sum(r.check == "T3-ok" for r in rows)
    errors = sum(r.direct == "error" or r.transfer == "error" for r in rows)
    tt = sum(r.transfer_time for r in rows)
    dt = sum(r.direct_time for r in rows)
    print(
        f"\n{len(rows)} (network, compression, property) triples; transferred VERIFIED {n_tr}: "
        f"{n_conf} confirmed by direct verification, {n_att} direct-UNKNOWN attacked without a "
        f"violation, {len(bad)} soundness violations; T3 witnesses confirmed {n_t3}; "
        f"errors {errors}.\ntransfer time {tt:.1f}s vs direct verification {dt:.1f}s; "
        f"wall {time.perf_counter() - t_all:.1f}s. CSV: {args.out}, details: {details}"
    )
    for r in bad:
        print(f"!!! SOUNDNESS VIOLATION {r.network}/{r.compression}/{r.prop}: {r.check}")
    return 2 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
