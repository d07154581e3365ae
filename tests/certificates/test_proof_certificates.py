"""Proof-carrying certificates end to end: verify -> certificate -> check (API and CLI).

Genuine branch-and-bound certificates are accepted with trust "independent"; solver-attested
ones exit 6; forgeries made through the package's own API (every hash recomputed) are
rejected: a genuine proof tree grafted onto a falsifiable twin property over the same box,
the same with the optional presolve stripped, a split point moved, a leaf dropped. Hypothesis:
on random small networks, no certificate claiming "verified" for a case with a brute-forced
counterexample is accepted.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cert_helpers import milp_cert
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nncert.certificates import (
    BabCase,
    BabEvidence,
    Certificate,
    MilpCase,
    MilpEvidence,
    certificate_from_result,
    check,
    from_json,
    load_certificate,
    save_certificate,
    to_json,
)
from nncert.certificates.serialize import encode_tree
from nncert.verify import cli, verify
from nncert.verify.network import Dense, Network, ReLU
from nncert.verify.proof import (
    CLOSED_BY_BOUND,
    INPUT_SPLIT,
    LEAF,
    ProofRecorder,
    ProofTree,
)
from nncert.verify.result import Verdict
from nncert.verify.spec import Box, Property, UnsafeCase
from nncert.verify.vnnlib import write_vnnlib


def _net(seed: int, sizes: list[int]) -> Network:
    rng = np.random.default_rng(seed)
    layers: list[object] = []
    for a, b in itertools.pairwise(sizes):
        layers += [Dense(rng.standard_normal((b, a)) / np.sqrt(a), 0.3 * rng.standard_normal(b))]
        layers.append(ReLU())
    return Network(tuple(layers[:-1]), input_shape=(sizes[0],))  # type: ignore[arg-type]


def _grid_min(net: Network, box: Box, A: np.ndarray, n: int = 101) -> float:
    axes = [np.linspace(lo, hi, n) for lo, hi in zip(box.lower, box.upper)]
    xs = np.stack(np.meshgrid(*axes), axis=-1).reshape(-1, box.dim)
    return float((net.forward(xs) @ A.T).min())


NET = _net(1, [2, 12, 12, 2])
BOX = Box(-np.ones(2), np.ones(2))
A = np.array([[1.0, -1.0]])
MIN = _grid_min(NET, BOX, A)
#: needs branching (CROWN alone does not close it), and is unreachable
PROP = Property((UnsafeCase(BOX, A, [MIN - 0.05]),), name="needs-splits")
#: the same box and output row, but a threshold the network crosses: falsifiable
TWIN = Property((UnsafeCase(BOX, A, [MIN + 0.2]),), name="twin")


@pytest.fixture(scope="module")
def cert() -> Certificate:
    res = verify(NET, PROP, method="bab", time_limit=30)
    assert res.verdict is Verdict.VERIFIED and res.method == "bab"
    out = certificate_from_result(NET, PROP, res, options={"method": "bab"})
    assert out.evidence.kind == "bab"
    ev = out.evidence
    assert isinstance(ev, BabEvidence) and ev.cases[0].tree is not None
    assert ev.cases[0].tree.n_nodes > 3
    return out


def _roundtrip(c: Certificate) -> Certificate:
    """Serialize through the package's own API (every hash recomputed) and read back."""
    return from_json(to_json(c))


def test_genuine_tree_certificate_is_independent(cert: Certificate) -> None:
    report = check(_roundtrip(cert), NET, expected_property=PROP)
    assert report.ok and report.trust == "independent", report.reasons
    assert report.case_lower[0] is not None and report.case_lower[0] > 0


def test_tree_grafted_onto_a_falsifiable_twin_is_rejected(cert: Certificate) -> None:
    assert verify(NET, TWIN, time_limit=10).verdict is Verdict.FALSIFIED
    forged = _roundtrip(replace(cert, property=TWIN))
    assert not check(forged, NET).ok
    ev = forged.evidence
    assert isinstance(ev, BabEvidence)
    stripped = _roundtrip(replace(forged, evidence=replace(ev, presolve=None)))
    report = check(stripped, NET)
    assert not report.ok and "proof tree rejected" in report.reasons[0]
    # and the genuine certificate is not about the twin
    assert not check(cert, NET, expected_property=TWIN).ok


def _edit_tree(c: Certificate, edit: Any) -> Certificate:
    ev = c.evidence
    assert isinstance(ev, BabEvidence) and ev.cases[0].tree is not None
    tree = ev.cases[0].tree
    arrays = {name: np.array(getattr(tree, name)) for name in ProofTree.ARRAYS}
    edit(arrays)
    new = ProofTree(recipe=tree.recipe, **arrays)
    doc = json.loads(to_json(replace(c, evidence=replace(ev, presolve=None))))
    doc["evidence"]["cases"][0]["tree"] = encode_tree(new)
    return from_json(json.dumps(doc))


def test_a_moved_split_point_is_rejected(cert: Certificate) -> None:
    def move(a: dict[str, np.ndarray]) -> None:
        k = int(np.flatnonzero(a["split"] == INPUT_SPLIT)[0])
        a["value"][k] = 5.0  # child 0 becomes the whole box, child 1 empty

    report = check(_edit_tree(cert, move), NET)
    assert not report.ok


def test_a_dropped_leaf_is_rejected(cert: Certificate) -> None:
    def drop(a: dict[str, np.ndarray]) -> None:
        leaf = int(np.flatnonzero(a["split"] == LEAF)[-1])
        a["parent"][leaf] = a["parent"][leaf - 1] if leaf > 1 else 0
        a["side"][leaf] = a["side"][leaf - 1]

    assert not check(_edit_tree(cert, drop), NET).ok


def test_an_unedited_tree_through_the_editor_is_accepted(cert: Certificate) -> None:
    assert check(_edit_tree(cert, lambda a: None), NET).independent  # the editor is faithful


# --------------------------------------------------------------------------------------------
# the CLI: exit codes 0 / 6 / 1 / 3, --json trust, SPEC
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    pytest.importorskip("onnx")
    from nncert.compression.onnx_export import to_onnx

    d = tmp_path_factory.mktemp("proofcli")
    model = d / "net.onnx"
    to_onnx(NET, model)
    spec, twin = d / "prop.vnnlib", d / "twin.vnnlib"
    write_vnnlib(PROP, spec)
    write_vnnlib(TWIN, twin)
    return {"model": model, "spec": spec, "twin": twin, "dir": d}


def test_cli_verify_then_check_is_independent(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    c = files["dir"] / "cert.json.gz"
    args = [str(files["model"]), str(files["spec"]), "--method", "bab", "--timeout", "30"]
    assert cli.main(["verify", *args, "--certificate", str(c)]) == 0
    capsys.readouterr()
    assert load_certificate(c).evidence.kind == "bab"
    assert cli.main(["check", str(c), str(files["model"]), str(files["spec"]), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] and doc["trust"] == "independent" and doc["solver_attested"] == []
    # the same certificate against another property over the same box: rejected (exit 1)
    assert cli.main(["check", str(c), str(files["model"]), str(files["twin"])]) == 1
    assert "different property" in capsys.readouterr().out


def test_cli_solver_attested_exits_6(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    c = milp_cert(NET, PROP)
    # the solver's word: an exact MILP's dual bound, no presolve, no tree
    ev = MilpEvidence("highs", True, (MilpCase(0, "optimal", 0.06, 0.05, 0.01),), 1e-6)
    attested = replace(c, verdict=Verdict.VERIFIED, evidence=ev)
    path = files["dir"] / "milp.json"
    save_certificate(attested, path)
    assert cli.main(["check", str(path), str(files["model"]), "--json"]) == 6
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] and doc["trust"] == "solver-attested" and doc["solver_attested"]
    assert cli.main(["check", str(path), str(files["model"])]) == 6
    assert "solver-attested" in capsys.readouterr().out.splitlines()[0]


def test_milp_tolerance_cannot_admit_a_bound_at_or_below_zero(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    # a forged MILP record: a dual bound <= 0 (the case may be falsifiable) passed a negative
    # "tolerance"; the checker must reject it, whatever the tolerance says
    c = milp_cert(NET, PROP)
    for tol, bound in ((-1e9, -0.1), (-1.0, 0.0), (float("inf"), 0.5), (float("nan"), 0.5)):
        ev = MilpEvidence("highs", True, (MilpCase(0, "optimal", 0.06, bound, 0.01),), tol)
        report = check(replace(c, verdict=Verdict.VERIFIED, evidence=ev), NET)
        assert not report.ok, (tol, bound)
    path = files["dir"] / "negtol.json"
    ev = MilpEvidence("highs", True, (MilpCase(0, "optimal", -0.05, -0.1, 0.05),), -1e9)
    save_certificate(replace(c, verdict=Verdict.VERIFIED, evidence=ev), path)
    assert cli.main(["check", str(path), str(files["model"])]) == 1
    assert "tolerance" in capsys.readouterr().out


def test_cli_transfer_carrying_an_attested_source_exits_6(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    c = milp_cert(NET, PROP)
    ev = MilpEvidence("highs", True, (MilpCase(0, "optimal", 0.06, 0.05, 0.01),), 1e-6)
    path = files["dir"] / "attested-source.json"
    save_certificate(replace(c, verdict=Verdict.VERIFIED, evidence=ev), path)
    model = str(files["model"])
    base = ["transfer", str(path), "--source", model, "--target", model, "--no-fallback"]
    assert cli.main(base) == 3  # refused without --accept-attested
    capsys.readouterr()
    assert cli.main([*base, "--accept-attested", "--json"]) == 6
    doc = json.loads(capsys.readouterr().out)
    assert doc["verdict"] == "verified" and doc["transferred"] and doc["attested"]


def test_cli_check_pins_a_robustness_property(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    x = files["dir"] / "x.npy"
    np.save(x, np.array([0.2, -0.1]))
    model = str(files["model"])
    c = files["dir"] / "robust.json"
    rob = ["--input", str(x), "--label", "0", "--no-clip"]
    out = cli.main(["verify", model, *rob, "--eps", "0.01", "--certificate", str(c), "--quiet"])
    assert out in (0, 1)
    capsys.readouterr()
    assert cli.main(["check", str(c), model, *rob, "--eps", "0.01"]) in (0, 6)
    # the same certificate is not about another radius, label or box clipping
    capsys.readouterr()
    assert cli.main(["check", str(c), model, *rob, "--eps", "0.02"]) == 1
    assert "different property" in capsys.readouterr().out
    assert cli.main(["check", str(c), model, "--input", str(x), "--label", "1", "--eps", "0.01",
                     "--no-clip"]) == 1  # fmt: skip
    capsys.readouterr()
    assert cli.main(["check", str(c), model, "--label", "0", "--eps", "0.01"]) == 3
    assert cli.main(["check", str(c), model, str(files["spec"]), *rob, "--eps", "0.01"]) == 3


def test_a_label_apart_from_the_constraints_and_empty_cases_are_rejected(
    cert: Certificate,
) -> None:
    from nncert.verify.spec import robustness_property

    rob = robustness_property(np.array([0.2, -0.1]), 0.01, 0, 2, domain=None)
    res = verify(NET, rob, method="crown", time_limit=10)
    if res.verdict is Verdict.VERIFIED:
        good = certificate_from_result(NET, rob, res)
        assert check(good, NET).ok
        relabelled = Property(rob.cases, name=rob.name, label=1)
        report = check(replace(good, property=relabelled), NET)
        assert not report.ok and "label 1" in report.reasons[0]
    # a case without output rows: every input is unsafe, never "verified"
    empty = Property((UnsafeCase(BOX, np.zeros((0, 2)), np.zeros(0)),))
    report = check(replace(cert, property=empty), NET)
    assert not report.ok and "no output constraint" in report.reasons[0]


def test_cli_exit_code_survives_a_closed_stdout(files: dict[str, Path]) -> None:
    import subprocess
    import sys

    c = files["dir"] / "pipe.json"
    assert cli.main(["verify", str(files["model"]), str(files["twin"]), "--certificate", str(c),
                     "--quiet"]) == 1  # fmt: skip
    code = "import sys; from nncert.verify.cli import main; sys.exit(main())"
    argv = [sys.executable, "-c", code, "check", str(c), str(files["model"])]
    # the reader is gone before the command writes its line (nncert check ... | head -0)
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    proc.stdout.close()
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()
    assert b"BrokenPipe" not in err


def test_cli_milp_verdict_reproved_is_independent(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    c = files["dir"] / "milp-run.json"
    args = [str(files["model"]), str(files["spec"]), "--method", "milp", "--timeout", "30"]
    assert cli.main(["verify", *args, "--certificate", str(c)]) == 0
    capsys.readouterr()
    assert load_certificate(c).evidence.kind == "milp"
    assert cli.main(["check", str(c), str(files["model"]), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["trust"] == "independent"


def test_cli_unreadable_and_forged(
    files: dict[str, Path], cert: Certificate, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = files["dir"] / "bad.json"
    bad.write_text('{"format": "nncert-certificate"')
    assert cli.main(["check", str(bad), str(files["model"])]) == 3
    err = capsys.readouterr().err
    assert "bad.json" in err and "Traceback" not in err
    forged = files["dir"] / "forged.json"
    save_certificate(replace(cert, property=TWIN), forged)
    assert cli.main(["check", str(forged), str(files["model"])]) == 1


# --------------------------------------------------------------------------------------------
# Hypothesis: a forged "verified" is never accepted for a falsifiable case
# --------------------------------------------------------------------------------------------


def _uniform_tree(depth: int, box: Box) -> ProofTree:
    """Splits every box at its middle, cycling through the dimensions; leaves closed by bound."""
    rec = ProofRecorder({"intermediate": "crown"})
    frontier = [(rec.root(), box.lower.copy(), box.upper.copy())]
    for level in range(depth):
        nxt = []
        d = level % box.dim
        for node, lo, hi in frontier:
            mid = 0.5 * (lo[d] + hi[d])
            a, b = rec.split(node, INPUT_SPLIT, d, mid)
            hi0, lo1 = hi.copy(), lo.copy()
            hi0[d], lo1[d] = mid, mid
            nxt += [(a, lo, hi0), (b, lo1, hi)]
        frontier = nxt
    for node, _, _ in frontier:
        rec.close(node, CLOSED_BY_BOUND)
    return rec.tree()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    depth=st.integers(0, 6),
    slack=st.floats(0.0, 0.3),
    claim=st.floats(1e-6, 10.0),
)
def test_no_forged_certificate_verifies_a_falsifiable_case(
    seed: int, depth: int, slack: float, claim: float
) -> None:
    net = _net(seed, [2, 8, 2])
    box = Box(-np.ones(2), np.ones(2))
    row = np.array([[1.0, -1.0]])
    xs = np.stack(np.meshgrid(*[np.linspace(-1, 1, 41)] * 2), axis=-1).reshape(-1, 2)
    vals = (net.forward(xs) @ row.T).ravel()
    k = int(np.argmin(vals))
    prop = Property((UnsafeCase(box, row, [vals[k] + slack + 1e-9]),))
    assert prop.cases[0].violation(net.forward(xs[k : k + 1]))[0] <= 0.0  # a counterexample
    base = certificate_from_result(
        net, prop, verify(net, prop, method="crown", time_limit=5), options={}
    )
    forged = Certificate(
        base.schema_version,
        base.network,
        prop,
        Verdict.VERIFIED,
        BabEvidence(
            "input-split+crown", 1, (BabCase(0, "verified", claim, 1, _uniform_tree(depth, box)),)
        ),
        base.provenance,
    )
    assert not check(_roundtrip(forged), net).ok


@pytest.mark.parametrize(
    "recipe",
    [
        {"intermediate": "crown", "alpha_iters": 10**9},
        {"intermediate": "crown", "alpha_iters": -1},
        {"intermediate": "crown", "root_alpha_iters": 10**9},
        {"intermediate": "crown", "root_alpha_iters": True},
        {"intermediate": "crown", "alpha_iters": 5, "beta_lr": -0.1},
        {"intermediate": "crown", "alpha_iters": 5, "beta_lr": 0.0},
        {"intermediate": "crown", "alpha_iters": 5, "beta_lr": 1e9},
        {"intermediate": "crown", "alpha_iters": 5, "beta_lr": True},
        {"intermediate": "crown", "alpha_iters": 5, "beta_lr": "0.05"},
        {"intermediate": "crown", "extra_slopes": ["zero", "steep"]},
        {"intermediate": "crown", "alpha_optimizer": "newton"},
        {"intermediate": "exact"},
    ],
)
def test_a_forged_recipe_is_rejected_at_once(cert: Certificate, recipe: dict[str, Any]) -> None:
    ev = cert.evidence
    assert isinstance(ev, BabEvidence) and ev.cases[0].tree is not None
    tree = ev.cases[0].tree
    arrays = {name: getattr(tree, name) for name in ProofTree.ARRAYS}
    forged = replace(
        cert,
        evidence=replace(
            ev, cases=(replace(ev.cases[0], tree=ProofTree(recipe=recipe, **arrays)),)
        ),
    )
    report = check(_roundtrip(forged), NET)
    assert not report.ok and "recipe" in report.reasons[-1]
