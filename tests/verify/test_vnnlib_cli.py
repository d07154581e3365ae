"""``nncert-vnnlib``: the VNN-LIB 2.0 standard's solver command line (chapter 5)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nncert.verify.vnnlib_cli import CAPABILITIES, ONNX_OPERATORS, main


def _exe() -> str:
    return str(Path(sys.executable).with_name("nncert-vnnlib"))


def _query(path: Path, lo: list[float], hi: list[float], out_constraint: str) -> Path:
    lines = [
        "(vnnlib-version <2.0>)",
        "(declare-network f",
        "    (declare-input X float32 [1,5])",
        "    (declare-output Y float32 [1,5])",
        ")",
    ]
    bounds = " ".join(
        f"(<= X[0,{i}] {h}) (>= X[0,{i}] {l})" for i, (l, h) in enumerate(zip(lo, hi))
    )
    lines.append(f"(assert (and {bounds}))")
    lines.append(f"(assert {out_constraint})")
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize(
    ("flag", "expected"),
    [
        ("--vnnlib-versions", ["1.0", "2.0"]),
        ("--serialise-assignments", ["true"]),
        ("--onnx-element-types", ["real"]),
    ],
)
def test_supports(flag: str, expected: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["supports", flag]) == 0
    assert capsys.readouterr().out.split() == expected


def test_supports_opsets_are_two_integers(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["supports", "--onnx-opset-versions"]) == 0
    lo, hi = (int(v) for v in capsys.readouterr().out.split())
    assert lo < hi


def test_operator_list_matches_the_importer(capsys: pytest.CaptureFixture[str]) -> None:
    """Every advertised operator is one the ONNX importer really handles."""
    from nncert.verify import importers

    main(["supports", "--onnx-operators"])
    listed = capsys.readouterr().out.split()
    assert listed == list(ONNX_OPERATORS)
    known = set(importers.ONNX_CHAIN_OPS) | set(importers.ONNX_CONSTANT_OPS)
    assert set(listed) <= known, set(listed) - known


def test_every_capability_answers(capsys: pytest.CaptureFixture[str]) -> None:
    for cap in CAPABILITIES:
        assert main(["supports", "--" + cap.replace("_", "-")]) == 0
        assert capsys.readouterr().out.strip()


def test_name_and_version() -> None:
    out = subprocess.run([_exe(), "--name"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "nncert"
    ver = subprocess.run([_exe(), "--version"], capture_output=True, text=True, check=True)
    assert ver.stdout.strip()


def test_usage_errors_exit_1(tmp_path: Path) -> None:
    assert subprocess.run([_exe(), "verify"], capture_output=True).returncode == 1
    assert subprocess.run([_exe(), "supports"], capture_output=True).returncode == 1
    q = tmp_path / "q.vnnlib"
    q.write_text("(vnnlib-version <2.0>)\n")
    proc = subprocess.run(
        [_exe(), "verify", str(q), "--network", "nonsense"], capture_output=True, text=True
    )
    assert proc.returncode == 1 and "NAME=MODEL.onnx" in proc.stderr


def test_verify_unsat_and_sat_with_assignment(vnncomp_dir: Path, tmp_path: Path) -> None:
    """ACAS Xu property 1 on test_unsat/test_sat networks as VNN-LIB 2.0 queries."""
    t = vnncomp_dir / "test"
    # the test_prop property as a 2.0 query: sat on test_sat (with an assignment), unsat on
    # test_unsat
    from nncert.verify.vnnlib import load_vnnlib

    prop = load_vnnlib(t / "test_prop.vnnlib")
    box = prop.cases[0].input_box
    rows = []
    for a, b in zip(prop.cases[0].A, prop.cases[0].b):
        terms = " ".join(f"(* {float(c)!r} Y[0,{j}])" for j, c in enumerate(a) if c != 0)
        rows.append(f"(<= (+ {terms}) {float(b)!r})")
    cond = rows[0] if len(rows) == 1 else f"(and {' '.join(rows)})"
    q = _query(tmp_path / "p.vnnlib", list(box.lower), list(box.upper), cond)
    sat = subprocess.run(
        [_exe(), "verify", str(q), "--network", f"f={t / 'test_sat.onnx'}", "--timeout", "60"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = sat.stdout.splitlines()
    assert lines[0] == "sat", sat.stderr
    assert lines[1] == "X float32 [1,5]"
    x = np.array([float(v) for v in lines[2:7]])
    assert lines[7] == "Y float32 [1,5]"
    y = np.array([float(v) for v in lines[8:13]])
    assert box.contains(x)
    assert prop.is_counterexample(x, y, atol_out=1e-4)

    unsat = subprocess.run(
        [_exe(), "verify", str(q), "--network", f"f={t / 'test_unsat.onnx'}", "--timeout", "60"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert unsat.stdout.splitlines()[0] == "unsat", unsat.stderr


def test_serialise_assignments(vnncomp_dir: Path, tmp_path: Path) -> None:
    import onnx.numpy_helper

    t = vnncomp_dir / "test"
    from nncert.verify.vnnlib import load_vnnlib

    prop = load_vnnlib(t / "test_prop.vnnlib")
    box = prop.cases[0].input_box
    a, b = prop.cases[0].A[0], prop.cases[0].b[0]
    terms = " ".join(f"(* {float(c)!r} Y[0,{j}])" for j, c in enumerate(a) if c != 0)
    rows = [f"(<= (+ {terms}) {float(b)!r})"]
    for a2, b2 in zip(prop.cases[0].A[1:], prop.cases[0].b[1:]):
        t2 = " ".join(f"(* {float(c)!r} Y[0,{j}])" for j, c in enumerate(a2) if c != 0)
        rows.append(f"(<= (+ {t2}) {float(b2)!r})")
    cond = rows[0] if len(rows) == 1 else f"(and {' '.join(rows)})"
    q = _query(tmp_path / "p.vnnlib", list(box.lower), list(box.upper), cond)
    out = tmp_path / "assign"
    proc = subprocess.run(
        [
            _exe(),
            "verify",
            str(q),
            "--network",
            f"f={t / 'test_sat.onnx'}",
            "--serialise-assignments",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.stdout.splitlines() == ["sat"], proc.stderr
    x = onnx.numpy_helper.to_array(onnx.load_tensor(str(out / "X.pb")))
    assert x.shape == (1, 5) and x.dtype == np.float32
    assert (out / "Y.pb").exists()
