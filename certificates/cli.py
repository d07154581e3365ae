"""``nncert check`` and ``nncert transfer`` (registered into :mod:`nncert.verify.cli`).

``nncert check CERT MODEL [SPEC | --input X.npy --label Y --eps E] [--source MODEL] ...``
    Exit 0 when the certificate holds for MODEL and every piece of it was re-derived
    independently (bounds recomputed, proof trees re-derived, witnesses replayed), 6 when it
    holds but some verdict rests on a solver's word (``"trust": "solver-attested"``), 1 when it
    is rejected, 3 when an input cannot be read. With SPEC (a VNN-LIB file), or a robustness
    property given as ``nncert verify`` takes it, the certificate must also be about exactly
    that property. One line on stdout says which (``certificate
    holds: ...`` or ``certificate rejected: <first reason>``), followed by the established
    items or the further reasons.

``nncert transfer CERT --source A --target B [--certificate OUT] [--json] [--timeout S]``
    Exit 0 verified, 1 falsified, 2 unknown, 3 input error (including a source certificate the
    checker rejects), 6 verified by carrying a source certificate whose verdict rests on a
    solver's word (only with ``--accept-attested``). ``--json`` prints one object with
    ``verdict``, ``transferred``, ``attested``, ``delta``, ``time``, ``reason`` and
    ``summary``. Otherwise one line: :meth:`TransferResult.describe`
    (``verified by transfer (T2: ...)``, ``verified directly on the target by crown (transfer
    did not apply: ...)``, ...) and the time.

Wire it with ``nncert.verify.cli.EXTENSIONS.append(nncert.certificates.cli.register)``.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import nncert.verify.cliutil as vcli
from nncert.certificates.check import check
from nncert.certificates.diff_bounds import DIFF_METHODS
from nncert.certificates.serialize import encode_value, load_certificate, save_certificate
from nncert.certificates.transfer import transfer
from nncert.verify.cliutil import UsageError, model_file
from nncert.verify.errors import CertificateError
from nncert.verify.fileio import check_output_file
from nncert.verify.options import VerifyOptions
from nncert.verify.registry import method_names
from nncert.verify.result import Verdict
from nncert.verify.spec import PolynomialProperty
from nncert.verify.vnnlib import RelationalProperty

EXIT_OK = 0
EXIT_REJECTED = 1
#: ``nncert check``: the certificate holds, but some verdict rests on a solver's word
EXIT_ATTESTED = 6


def _load_model(path: str) -> Any:

    return vcli.load_model(path)


def _load_cert(path: str) -> Any:

    try:
        return load_certificate(path)
    except CertificateError as err:
        raise UsageError(str(err).splitlines()[0]) from err


def _cmd_check(args: argparse.Namespace) -> int:

    if args.timeout is not None and not args.timeout > 0:
        raise UsageError(f"--timeout={args.timeout!r} must be > 0")
    cert = _load_cert(args.certificate)
    network = _load_model(args.model)
    source = None if args.source is None else _load_model(args.source)
    source_cert = None if args.source_certificate is None else _load_cert(args.source_certificate)
    expected = None
    if args.spec is not None and args.input is not None:
        raise UsageError("give either SPEC (a .vnnlib file) or --input X.npy --label Y --eps E")
    if args.input is not None:
        expected = vcli.robustness_spec(args, network)
    elif args.label is not None or args.eps is not None:
        raise UsageError("--label and --eps need --input X.npy")
    if args.spec is not None:
        expected = vcli.load_spec(args.spec)
        if isinstance(expected, RelationalProperty):
            raise UsageError(f"{args.spec}: a relational property has no certificate to check")
        if isinstance(expected, PolynomialProperty):
            raise UsageError(
                f"{args.spec}: polynomial constraints (products of variables) have no "
                "certificates to check"
            )
    report = check(
        cert,
        network,
        outward=not args.nearest,
        source=source,
        source_certificate=source_cert,
        expected_property=expected,
        time_limit=args.timeout,
    )
    if args.json:
        doc = {
            "ok": report.ok,
            "trust": report.trust or None,
            "verdict": cert.verdict.value,
            "evidence": cert.evidence.kind,
            "fingerprint": cert.network.fingerprint,
            "reasons": report.reasons,
            "attested": report.attested,
            "solver_attested": report.unchecked,
        }
        print(json.dumps(doc, allow_nan=False))
    else:
        print(_check_message(cert, report))
        for line in report.attested if report.ok else report.reasons[1:]:
            print(f"  {line}")
    if not report.ok:
        return EXIT_REJECTED
    return EXIT_OK if report.independent else EXIT_ATTESTED


def _check_message(cert: Any, report: Any) -> str:
    """The one line ``nncert check`` prints (on stdout; the exit code says the same)."""
    if report.ok:
        if cert.evidence.kind == "none":
            return "certificate holds: it records an unknown verdict (nothing to prove)"
        how = (
            "every piece re-derived independently"
            if report.independent
            else f"solver-attested: {report.unchecked[0]}"
        )
        return (
            f"certificate holds: the property is {cert.verdict.value} on this model "
            f"({cert.evidence.kind} evidence; {how})"
        )
    first = report.reasons[0] if report.reasons else "no reason given"
    more = len(report.reasons) - 1
    tail = f" (and {more} more reason(s) below)" if more > 0 else ""
    return f"certificate rejected: {first}{tail}"


def _cmd_transfer(args: argparse.Namespace) -> int:

    if args.timeout is not None and not args.timeout > 0:
        raise UsageError(f"--timeout={args.timeout!r} must be > 0")
    if args.out:
        inputs = (args.certificate, model_file(args.source), model_file(args.target))
        check_output_file(args.out, inputs=inputs, what="certificate")
    cert = _load_cert(args.certificate)
    source = _load_model(args.source)
    target = _load_model(args.target)
    options = VerifyOptions(
        method=args.verify_method, time_limit=args.timeout, seed=args.seed, jobs=args.jobs
    )
    res = transfer(
        cert,
        source,
        target,
        method=args.delta,
        verify_fallback=not args.no_fallback,
        time_limit=args.timeout,
        options=options,
        accept_attested=args.accept_attested,
    )
    if args.out:
        save_certificate(res.certificate, args.out)
    if args.json:
        doc = {
            "verdict": res.verdict.value,
            "transferred": res.transferred,
            "attested": res.attested,
            "reason": res.reason,
            "summary": res.describe(),
            "delta": None if res.delta is None else encode_value(res.delta),
            "time": round(float(res.time), 6),
            "certificate": args.out,
            "fingerprint": target.fingerprint(),
        }
        print(json.dumps(doc, allow_nan=False))
    else:
        print(f"{res.describe()} in {res.time:.2f}s")
    if res.verdict is Verdict.VERIFIED and res.attested:
        return EXIT_ATTESTED
    return {"verified": 0, "falsified": 1}.get(res.verdict.value, 2)


def register(subparsers: Any) -> None:
    """Add the ``check`` and ``transfer`` sub-commands to ``nncert``'s sub-parsers."""

    c = subparsers.add_parser(
        "check",
        help="independently re-check a certificate against a model",
        description="Re-validate a certificate against MODEL without trusting any solver: "
        "network fingerprint, counterexample replay (float64 and onnxruntime), bounds "
        "recomputed with every rounding error accounted for, branch-and-bound proof trees "
        "re-derived leaf by leaf (LP leaves from their dual multipliers). A MILP verdict that "
        "was not re-proved rests on the solver's word and is reported as solver-attested. "
        "Exit codes: 0 holds and independently re-derived, 6 holds but solver-attested, "
        "1 rejected, 3 input error.",
    )
    c.add_argument("certificate", metavar="CERT", help="a certificate file (.json or .json.gz)")
    c.add_argument("model", metavar="MODEL", help="an .onnx file, or example:NAME")
    c.add_argument(
        "spec",
        metavar="SPEC",
        nargs="?",
        help="a VNN-LIB file: also confirm the certificate is about exactly this property",
    )
    vcli.add_robustness_arguments(
        c,
        input_help="with --label and --eps: also confirm the certificate is about L-inf "
        "robustness around this input (the box and output constraints nncert verify builds "
        "from the same options)",
    )
    c.add_argument("--source", metavar="MODEL", help="source network of a transferred certificate")
    c.add_argument("--source-certificate", metavar="CERT", help="source certificate of a transfer")
    c.add_argument(
        "--nearest", action="store_true", help="recompute IBP in round-to-nearest arithmetic"
    )
    c.add_argument(
        "--timeout",
        type=float,
        default=None,
        metavar="S",
        help="seconds for re-deriving proof trees; running out rejects (default: none)",
    )
    c.add_argument(
        "--json",
        action="store_true",
        help='print one JSON object on stdout ("ok", "trust": "independent" | '
        '"solver-attested" | null, "reasons", "attested", "solver_attested")',
    )
    c.set_defaults(func=_cmd_check)

    t = subparsers.add_parser(
        "transfer",
        help="transfer a certificate to a modified (e.g. pruned) network",
        description="Transfer CERT (about --source) to --target using sound difference bounds "
        "(VERIFIED) or witness replay (FALSIFIED); otherwise verify the target directly. "
        "Exit 0 verified, 1 falsified, 2 unknown, 3 input error, 6 verified by carrying a "
        "source certificate whose verdict is solver-attested (--accept-attested).",
    )
    t.add_argument("certificate", metavar="CERT", help="certificate of the source network")
    t.add_argument("--source", required=True, metavar="MODEL", help="the certified network")
    t.add_argument("--target", required=True, metavar="MODEL", help="the network to certify")
    t.add_argument("--certificate", dest="out", metavar="OUT", help="write the new certificate")
    t.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    t.add_argument(
        "--timeout", type=float, default=300.0, help="seconds for the fallback (default 300)"
    )
    t.add_argument(
        "--delta", default="best", choices=DIFF_METHODS, help="difference bound (default best)"
    )
    t.add_argument("--no-fallback", action="store_true", help="do not verify the target directly")
    t.add_argument(
        "--accept-attested",
        action="store_true",
        help="carry a source certificate whose verdict rests on a solver's word (by default "
        "only certificates the checker re-derives independently are carried: exit 3)",
    )
    t.add_argument(
        "--verify-method",
        default="auto",
        choices=method_names(),
        help="method of the fallback (see nncert verify --help)",
    )
    t.add_argument("--seed", type=int, default=0, help="seed of the fallback")
    t.add_argument("--jobs", type=int, default=1, help="worker processes of the fallback")
    t.set_defaults(func=_cmd_transfer)


__all__ = ["register"]
