"""The ``nncert`` command line: exit codes, result files, JSON, error messages."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nncert.verify.cli import main


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("nncert")
    return subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=300)


def test_verify_exit_codes_and_json(vnncomp_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    t = vnncomp_dir / "test"
    assert main(["verify", str(t / "test_unsat.onnx"), str(t / "test_prop.vnnlib"), "--quiet"]) == 0
    capsys.readouterr()
    code = main(
        ["verify", str(t / "test_sat.onnx"), str(t / "test_prop.vnnlib"), "--json", "--quiet"]
    )
    assert code == 1
    doc = json.loads(capsys.readouterr().out)
    for key in ("verdict", "time", "method", "solver", "counterexample", "stats"):
        assert key in doc
    assert doc["verdict"] == "falsified"
    assert len(doc["counterexample"]["input"]) == 5
    assert len(doc["counterexample"]["output"]) == 5


def test_vnncomp_result_file(vnncomp_dir: Path, tmp_path: Path) -> None:
    from nncert.verify.vnncomp import read_result_file, validate_witness
    from nncert.verify.vnnlib import load_vnnlib

    t = vnncomp_dir / "test"
    out = tmp_path / "res.txt"
    assert (
        main(
            [
                "vnncomp",
                str(t / "test_sat.onnx"),
                str(t / "test_prop.vnnlib"),
                str(out),
                "60",
                "--quiet",
            ]
        )
        == 0
    )
    parsed = read_result_file(out)
    assert parsed.result == "sat"
    assert parsed.x is not None and parsed.y is not None
    prop = load_vnnlib(t / "test_prop.vnnlib")
    assert validate_witness(t / "test_sat.onnx", prop, parsed.x, parsed.y).ok
    # lies exactly inside the box
    assert any(c.input_box.contains(parsed.x) for c in prop.cases)

    out2 = tmp_path / "res2.txt"
    assert (
        main(
            [
                "vnncomp",
                str(t / "test_nano.onnx"),
                str(t / "test_nano.vnnlib"),
                str(out2),
                "60",
                "--quiet",
            ]
        )
        == 0
    )
    assert out2.read_text() == "unsat\n"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: ("missing.onnx", "prop.vnnlib"), "missing.onnx: no such file"),
        (lambda d: (str(d / "trunc.onnx"), None), "trunc.onnx"),
        (lambda d: (None, str(d / "bad.vnnlib")), "bad.vnnlib"),
        (lambda d: ("model.pt", None), "pickled torch files are not loaded"),
    ],
    ids=["missing-model", "truncated-onnx", "malformed-vnnlib", "pickle-refused"],
)
def test_bad_input_exit_3_one_line(vnncomp_dir: Path, tmp_path: Path, make, message: str) -> None:
    t = vnncomp_dir / "test"
    (tmp_path / "trunc.onnx").write_bytes((t / "test_sat.onnx").read_bytes()[:300])
    (tmp_path / "bad.vnnlib").write_text("(declare-const X_0 Real)\n(assert (<= X_0 \n")
    (tmp_path / "model.pt").write_bytes(b"not really")
    model, spec = make(tmp_path)
    model = model or str(t / "test_sat.onnx")
    spec = spec or str(t / "test_prop.vnnlib")
    if model == "model.pt":
        model = str(tmp_path / "model.pt")
    proc = _run("verify", model, spec, "--quiet")
    assert proc.returncode == 3, proc.stderr
    lines = [l for l in proc.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert message in lines[0]


def test_vnncomp_bad_input_writes_error(vnncomp_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.txt"
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x00\x01garbage")
    proc = _run("vnncomp", str(bad), str(vnncomp_dir / "test" / "test_prop.vnnlib"), str(out), "5")
    assert proc.returncode == 3
    assert out.read_text() == "error\n"
    assert "Traceback" not in proc.stderr


def test_robustness_from_npy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from nncert.verify.examples import example_info

    info = example_info("iris_relu")
    p0 = info["properties"]["points"][0] if "properties" in info else None
    if p0 is None:
        pytest.skip("example metadata has no points")
    x = tmp_path / "x.npy"
    np.save(x, np.asarray(p0["x0"], dtype=np.float64))
    code = main(
        [
            "verify",
            "example:iris_relu",
            "--input",
            str(x),
            "--label",
            str(p0["label"]),
            "--eps",
            "0.001",
            "--json",
            "--quiet",
        ]
    )
    assert code == 0
    assert json.loads(capsys.readouterr().out)["verdict"] == "verified"


def test_usage_errors_exit_3() -> None:
    assert _run("verify").returncode == 3
    assert _run("verify", "a.onnx", "b.vnnlib", "--eps", "nope").returncode == 3
    help_text = _run("verify", "--help").stdout
    assert "exit codes" in help_text and "--timeout" in help_text


def test_examples_lists_every_network_with_its_accuracy(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["examples"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 10
    for line in lines:
        acc = float(line.rsplit(" ", 1)[1])
        assert 0.9 <= acc <= 1.0, line


def test_spin_budget_reaches_the_qubo_method(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--spin-budget`` decides whether Route B's QUBO is sampled at all (it never verifies)."""
    from nncert.verify.examples import load_example

    _, props = load_example("moons_hardtanh")
    prop = next(p for p in props if p.name == "moons_hardtanh:p4:eps=0.1")
    x = tmp_path / "x.npy"
    np.save(x, prop.cases[0].input_box.center)
    base = ["verify", "example:moons_hardtanh", "--input", str(x), "--label", "0"]
    base += ["--eps", "0.1", "--method", "qubo", "--num-reads", "5", "--json", "--quiet"]
    stats = {}
    for budget in ("8", "4096"):
        code = main([*base, "--spin-budget", budget])
        out = json.loads(capsys.readouterr().out)
        assert code == 2 and out["verdict"] == "unknown"
        stats[budget] = out["stats"]["qubo"][0]
    assert "spin budget 8" in stats["8"]["reason"] and "energy" not in stats["8"]
    assert "energy" in stats["4096"]  # sampled
