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


# --------------------------------------------------------------------------------------------
# Human output of a falsified verify: the counterexample itself (issue 17)
# --------------------------------------------------------------------------------------------


def _example_point(tmp_path: Path, name: str) -> tuple[Path, int, float]:
    """``(x0.npy, label, a radius with a known counterexample)`` of a bundled example."""
    from nncert.verify.examples import example_info

    point = example_info(name)["properties"]["points"][0]
    path = tmp_path / f"{name}_x0.npy"
    np.save(path, np.asarray(point["x0"], dtype=np.float64))
    return path, int(point["label"]), 2 * float(point["attack_radius"])


def test_format_vector_shortens_long_vectors() -> None:
    from nncert.verify.commands import format_vector

    assert format_vector([0.5, 1.0, -2.25]) == "[0.5, 1, -2.25]"
    assert format_vector(np.arange(11.0)).count(",") == 10  # 11 values: all shown
    long = format_vector(np.arange(784.0) / 1000, note="see FILE")
    assert long == (
        "[0, 0.001, 0.002, 0.003, 0.004, 0.005, 0.006, 0.007, ..., 0.782, 0.783] "
        "(784 values; see FILE)"
    )


def test_falsified_verify_prints_the_counterexample(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    x0, label, eps = _example_point(tmp_path, "iris_relu")
    args = ["verify", "example:iris_relu", "--input", str(x0), "--label", str(label)]
    args += ["--eps", str(eps), "--quiet"]
    assert main([*args, "--json"]) == 1
    cex = json.loads(capsys.readouterr().out)["counterexample"]
    assert main(args) == 1
    head, x_line, y_line = capsys.readouterr().out.splitlines()
    assert head.startswith("falsified (")
    assert head.endswith(
        f": counterexample in unsafe case {cex['case']} "
        f"(violation {cex['violation']:.4g} <= 0; replayed in onnxruntime)"
    )
    assert x_line == "  input  x = [" + ", ".join(f"{v:.6g}" for v in cex["input"]) + "]"
    predicted = int(np.argmax(cex["output"]))
    assert y_line == (
        "  output y = ["
        + ", ".join(f"{v:.6g}" for v in cex["output"])
        + f"]  (class {predicted}; the property expects class {label})"
    )


def test_counterexample_file_json_and_npy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    x0, label, eps = _example_point(tmp_path, "iris_relu")
    args = ["verify", "example:iris_relu", "--input", str(x0), "--label", str(label)]
    args += ["--eps", str(eps), "--quiet"]
    as_json, as_npy = tmp_path / "cex.json", tmp_path / "cex.npy"
    assert main([*args, "--counterexample", str(as_json)]) == 1
    out = capsys.readouterr().out
    assert out.splitlines()[-1] == f"  written to {as_json}"
    doc = json.loads(as_json.read_text())
    assert doc["model"] == "example:iris_relu" and len(doc["input"]) == 4
    assert {"output", "case", "violation", "onnx_checked", "fingerprint"} <= set(doc)
    assert main([*args, "--counterexample", str(as_npy)]) == 1
    capsys.readouterr()
    x = np.load(as_npy, allow_pickle=False)
    assert x.shape == (4,) and np.array_equal(x, np.asarray(doc["input"]))
    # the written input is a counterexample: re-verifying at radius 0 around it falsifies
    assert main(["verify", "example:iris_relu", "--input", str(as_npy), "--label", str(label),
                 "--eps", "0", "--quiet"]) == 1  # fmt: skip
    capsys.readouterr()
    # no counterexample: nothing written, said on stderr
    safe = tmp_path / "safe.json"
    ok = ["verify", "example:iris_relu", "--input", str(x0), "--label", str(label)]
    assert main([*ok, "--eps", "0.001", "--quiet", "--counterexample", str(safe)]) == 0
    err = capsys.readouterr().err
    assert not safe.exists() and f"no counterexample (verified); {safe} not written" in err


def test_counterexample_file_name_is_checked_before_solving(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import nncert.verify.pipeline as pipeline

    def must_not_run(*args: object, **kwargs: object) -> None:
        raise AssertionError("verify ran before the output path was checked")

    monkeypatch.setattr(pipeline, "verify", must_not_run)
    x0, label, _ = _example_point(tmp_path, "iris_relu")
    args = ["verify", "example:iris_relu", "--input", str(x0), "--label", str(label)]
    args += ["--eps", "0.1", "--quiet", "--counterexample"]
    assert main([*args, str(tmp_path / "cex.txt")]) == 3
    assert "must end in .json" in capsys.readouterr().err
    assert main([*args, str(tmp_path / "nodir" / "cex.json")]) == 3
    assert "does not exist" in capsys.readouterr().err


def test_large_counterexample_is_shortened_on_screen(tmp_path: Path) -> None:
    x0, label, eps = _example_point(tmp_path, "digits_mlp")
    proc = _run(
        "verify", "example:digits_mlp", "--input", str(x0), "--label", str(label),
        "--eps", str(eps), "--quiet",
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    x_line = proc.stdout.splitlines()[1]
    assert x_line.startswith("  input  x = [")
    assert x_line.endswith("] (64 values; all of them: --counterexample FILE)")
    shown = x_line.split("[", 1)[1].split("]", 1)[0].split(", ")
    assert len(shown) == 8 + 1 + 2 and shown[8] == "..."  # 8 first values, ..., 2 last
    assert "--counterexample" in _run("verify", "--help").stdout


# --------------------------------------------------------------------------------------------
# --help documents every argument (issue 17)
# --------------------------------------------------------------------------------------------


def _subparsers(parser: object) -> dict[str, object]:
    import argparse

    for action in parser._actions:  # type: ignore[attr-defined]
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def test_every_argument_of_every_command_has_help() -> None:
    from nncert.verify import vnnlib_cli
    from nncert.verify.cli import build_parser

    undocumented = []
    for tool, parser in (("nncert", build_parser()), ("nncert-vnnlib", vnnlib_cli.build_parser())):
        commands = _subparsers(parser)
        assert commands, tool
        for name, sub in commands.items():
            for action in sub._actions:  # type: ignore[attr-defined]
                if action.dest == "help":
                    continue
                if not (action.help or "").strip():
                    label = "/".join(action.option_strings) or action.metavar or action.dest
                    undocumented.append(f"{tool} {name} {label}")
    assert not undocumented, undocumented


def test_vnncomp_help_describes_its_arguments_and_result_file() -> None:
    text = _run("vnncomp", "--help").stdout
    positional = text.split("positional arguments:", 1)[1].split("options:", 1)[0]
    for name in ("MODEL", "SPEC", "RESULT_FILE", "TIMEOUT"):
        line = next(ln for ln in positional.splitlines() if ln.strip().startswith(name))
        assert len(line.split()) > 1, f"{name} has no description"
    for word in ("sat", "unsat", "timeout", "unknown", "error"):
        assert f"\n  {word} " in text, word
    assert "(X_0 " in text and "(Y_0 " in text


def test_unknown_verify_says_what_may_decide_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from nncert.verify.commands import _unknown_hint

    x0, label, _ = _example_point(tmp_path, "iris_relu")
    args = ["verify", "example:iris_relu", "--input", str(x0), "--label", str(label)]
    assert main([*args, "--eps", "0.02", "--method", "ibp", "--quiet"]) == 2
    line = capsys.readouterr().out.strip()
    assert line.startswith("unknown (inconclusive) in ")
    assert line.endswith(
        "s: --method ibp proves or refutes only when its evidence is conclusive; --method auto "
        "(the default) also runs a complete search"
    )
    assert "larger --timeout" in _unknown_hint("timeout", "auto")
    assert _unknown_hint("inconclusive", "milp") == ""
