"""Every complete method's VERIFIED result becomes a certificate the checker accepts, and the
CLI writes it with ``nncert verify --certificate``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nncert.certificates import certificate_from_result, check, load_certificate
from nncert.verify.examples import load_example
from nncert.verify.pipeline import verify
from nncert.verify.result import Verdict

# (example, property index) where CROWN alone does not decide, so the method itself must
CASES = [
    ("milp", "moons_hardtanh", 14, "MilpEvidence"),
    ("benders", "moons_hardtanh", 14, "MilpEvidence"),
    ("bab", "iris_sigmoid", 11, "BabEvidence"),
    ("model2", "iris_sigmoid", 11, "MilpEvidence"),
]


@pytest.mark.parametrize(("method", "name", "index", "kind"), CASES, ids=[c[0] for c in CASES])
def test_complete_methods_give_checkable_certificates(
    method: str, name: str, index: int, kind: str
) -> None:
    net, props = load_example(name)
    prop = props[index]
    res = verify(net, prop, method=method, time_limit=60)
    assert res.verdict is Verdict.VERIFIED
    assert res.method == method
    cert = certificate_from_result(net, prop, res)
    assert type(cert.evidence).__name__ == kind
    report = check(cert, net)
    assert report.ok, report.reasons


def test_cli_writes_certificate(tmp_path: Path) -> None:
    import numpy as np

    from nncert.verify.cli import main
    from nncert.verify.examples import example_info

    point = example_info("moons_hardtanh")["properties"]["points"][4]
    x = tmp_path / "x.npy"
    np.save(x, np.asarray(point["x0"], dtype=np.float64))
    out = tmp_path / "cert.json"
    code = main(
        [
            "verify",
            "example:moons_hardtanh",
            "--input",
            str(x),
            "--label",
            str(point["label"]),
            "--eps",
            "0.1",
            "--method",
            "milp",
            "--certificate",
            str(out),
            "--quiet",
        ]
    )
    doc = json.loads(out.read_text())
    assert doc["verdict"] in ("verified", "falsified")
    assert code == (0 if doc["verdict"] == "verified" else 1)
    net, _ = load_example("moons_hardtanh")
    assert check(load_certificate(out), net).ok


def test_infeasible_milp_record_is_not_a_proof() -> None:
    """A certificate whose MILP record says 'infeasible' is rejected: Model 1 over a non-empty
    box is always feasible, so that status can only be a numerical fault."""
    import dataclasses

    net, props = load_example("moons_hardtanh")
    prop = props[14]
    res = verify(net, prop, method="milp", time_limit=60)
    cert = certificate_from_result(net, prop, res)
    assert check(cert, net).ok
    ev = cert.evidence
    forged_cases = tuple(dataclasses.replace(c, status="infeasible", bound=None) for c in ev.cases)
    forged = dataclasses.replace(
        cert,
        evidence=dataclasses.replace(ev, cases=forged_cases, presolve=None),
    )
    report = check(forged, net)
    assert not report.ok
    assert any("infeasible" in r for r in report.reasons)
