"""The lines ``nncert transfer`` and ``nncert check`` print: one clear statement per outcome.

Issue 17: transfer printed contradictions such as ``verified (verified directly: margin + Δ =
-745.9 <= 0 ...; verified directly)`` and ``check`` printed a rejection twice (stdout and
stderr). Each outcome is pinned here to its exact line.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from cert_helpers import golden_network, golden_pruned, robust_prop, verified_cert

import nncert.verify.cli as vcli
import nncert.verify.cliutil as cliutil
from nncert.certificates import save_certificate, transfer
from nncert.certificates.cli import register
from nncert.certificates.transfer import TransferResult
from nncert.verify.options import VerifyOptions
from nncert.verify.result import Verdict, VerificationResult

SOURCE, TARGET = golden_network(), golden_pruned()
X0 = [0.3, 0.6]
#: at eps 0.3 the pruned copy's transfer bound fails (margin + Δ = -0.16875 on case 1) while
#: CROWN verifies the copy directly; IBP alone cannot
FAIL = "transfer did not apply: margin + Δ = -0.16875 <= 0 for case 1; 1 of 2 case(s) fail"
TIME = re.compile(r" in \d+\.\d\ds$")


@pytest.fixture(scope="module")
def wide_cert() -> Any:
    return verified_cert(SOURCE, robust_prop(SOURCE, X0, 0.3), "bab")


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch) -> Any:
    models = {"mem:source": SOURCE, "mem:target": TARGET}
    real = cliutil.load_model
    monkeypatch.setattr(vcli, "EXTENSIONS", [register])
    monkeypatch.setattr(cliutil, "load_model", lambda p: models[p] if p in models else real(p))
    return vcli.main


def test_transferred_proof(tmp_path: Path) -> None:
    cert = verified_cert(SOURCE, robust_prop(SOURCE, X0, 0.05), "crown")
    res = transfer(cert, SOURCE, TARGET, time_limit=10)
    assert res.describe() == "verified by transfer (T2: margin + Δ > 0 for every case)"


def test_transferred_counterexample() -> None:
    cert = verified_cert(SOURCE, robust_prop(SOURCE, X0, 1.5), "crown")
    assert cert.verdict is Verdict.FALSIFIED
    res = transfer(cert, SOURCE, TARGET, time_limit=10)
    assert res.describe() == (
        "falsified by transfer (T3: the source counterexample violates the property on the "
        "target too)"
    )


def test_fallback_verified(wide_cert: Any) -> None:
    res = transfer(wide_cert, SOURCE, TARGET, time_limit=10)
    assert not res.transferred and res.verdict is Verdict.VERIFIED
    assert res.reason == FAIL.removeprefix("transfer did not apply: ")
    assert res.describe() == f"verified directly on the target by crown ({FAIL})"


def test_fallback_falsified() -> None:
    # the pruned copy is robust at eps 0.5, the original is not
    cert = verified_cert(TARGET, robust_prop(SOURCE, X0, 0.5), "bab")
    res = transfer(cert, TARGET, SOURCE, time_limit=10)
    # the tree replay meets a witness in a failing leaf; it is replayed on the target (no
    # margin rule runs: it cannot verify a falsifiable target)
    assert res.describe() == (
        "falsified on the target at a point the tree replay met in a failing leaf, replayed "
        "on the target (transfer did not apply: tree replay: case 1: a counterexample lies "
        "in a failing leaf)"
    )


def test_unknown_outcomes(wide_cert: Any) -> None:
    ibp = transfer(wide_cert, SOURCE, TARGET, time_limit=10, options=VerifyOptions(method="ibp"))
    assert ibp.describe() == (f"unknown: {FAIL}; verifying the target directly was inconclusive")
    off = transfer(wide_cert, SOURCE, TARGET, verify_fallback=False)
    assert off.describe() == (
        f"unknown: {FAIL}; the target was not verified directly (fallback off)"
    )
    timed = TransferResult(
        Verdict.UNKNOWN,
        off.certificate,
        False,
        None,
        1.0,
        VerificationResult(Verdict.UNKNOWN, reason="timeout"),
        "the source certificate is UNKNOWN",
    )
    assert timed.describe() == (
        "unknown: transfer did not apply: the source certificate is UNKNOWN; verifying the "
        "target directly timed out"
    )


def test_transfer_cli_prints_the_description(
    cli: Any, wide_cert: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "src.json"
    save_certificate(wide_cert, path)
    args = ["transfer", str(path), "--source", "mem:source", "--target", "mem:target"]
    assert cli([*args, "--timeout", "10"]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert len(lines) == 1 and captured.err == ""
    assert TIME.sub("", lines[0]) == f"verified directly on the target by crown ({FAIL})"
    assert cli([*args, "--no-fallback"]) == 2
    line = capsys.readouterr().out.strip()
    assert TIME.sub("", line) == (
        f"unknown: {FAIL}; the target was not verified directly (fallback off)"
    )


def test_check_prints_one_line_per_outcome(
    cli: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "cert.json"
    save_certificate(verified_cert(SOURCE, robust_prop(SOURCE, X0, 0.05), "crown"), path)
    assert cli(["check", str(path), "mem:source"]) == 0
    captured = capsys.readouterr()
    first, *attested = captured.out.splitlines()
    assert first == (
        "certificate holds: the property is verified on this model (bound evidence; every "
        "piece re-derived independently)"
    )
    assert captured.err == ""
    assert attested and all(line.startswith("  ") for line in attested)
    # the wrong model: the rejection is said once, on stdout; exit 1 says the same
    assert cli(["check", str(path), "mem:target"]) == 1
    captured = capsys.readouterr()
    assert captured.err == ""
    assert captured.out.count("rejected") == 1
    # a counterexample certificate: "holds" and "falsified" no longer side by side unexplained
    cex = tmp_path / "cex.json"
    save_certificate(verified_cert(SOURCE, robust_prop(SOURCE, X0, 1.5), "crown"), cex)
    assert cli(["check", str(cex), "mem:source"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == (
        "certificate holds: the property is falsified on this model (counterexample evidence; "
        "every piece re-derived independently)"
    )
    line = captured.out.splitlines()[0]
    assert re.fullmatch(
        r"certificate rejected: network fingerprint mismatch: certificate is about "
        r"[0-9a-f]{16}\.\.\., the model is [0-9a-f]{16}\.\.\.",
        line,
    ), line


def test_check_of_an_unknown_certificate(
    cli: Any, wide_cert: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    unknown = transfer(wide_cert, SOURCE, TARGET, verify_fallback=False).certificate
    assert unknown.verdict is Verdict.UNKNOWN
    path = tmp_path / "unknown.json"
    save_certificate(unknown, path)
    assert cli(["check", str(path), "mem:target"]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first == "certificate holds: it records an unknown verdict (nothing to prove)"
