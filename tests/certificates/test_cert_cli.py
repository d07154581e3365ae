"""``nncert check`` / ``nncert transfer``, run in-process through ``nncert.verify.cli.main``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cert_helpers import golden_network, golden_pruned, robust_prop, verified_cert

import nncert.verify.cli as vcli
import nncert.verify.cliutil as cliutil
from nncert.certificates import load_certificate, save_certificate, to_json
from nncert.certificates.cli import register
from nncert.verify.network import Dense, Network
from nncert.verify.result import Verdict

SOURCE, TARGET = golden_network(), golden_pruned()
PROP = robust_prop(SOURCE, [0.3, 0.6], 0.02)


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Wire ``register`` into the CLI and resolve ``mem:NAME`` models from memory."""
    models = {"mem:source": SOURCE, "mem:target": TARGET}
    real = cliutil.load_model

    def load(path: str) -> Any:
        return models[path] if path in models else real(path)

    monkeypatch.setattr(vcli, "EXTENSIONS", [register])
    monkeypatch.setattr(cliutil, "load_model", load)
    return vcli.main


def test_parser_has_the_commands(cli: Any) -> None:
    parser = vcli.build_parser()
    args = parser.parse_args(["check", "c.json", "m.onnx", "--json"])
    assert args.command == "check" and args.json
    args = parser.parse_args(["transfer", "c.json", "--source", "a", "--target", "b"])
    assert args.command == "transfer" and args.delta == "best"


def test_check_holds_and_rejects(
    cli: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "cert.json"
    save_certificate(verified_cert(SOURCE, PROP, "crown"), path)
    assert cli(["check", str(path), "mem:source"]) == 0
    assert "certificate holds" in capsys.readouterr().out
    assert cli(["check", str(path), "mem:source", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] is True and doc["verdict"] == "verified" and doc["attested"]
    # the wrong model: rejected, exit 1, reason printed
    assert cli(["check", str(path), "mem:target"]) == 1
    captured = capsys.readouterr()
    assert "fingerprint" in captured.out and "rejected" in captured.out and not captured.err
    # a tampered margin
    doc = json.loads(path.read_text())
    doc["evidence"]["row_lower"][0]["data"][0] += 1.0
    doc["evidence"]["case_lower"]["data"][0] += 1.0
    path.write_text(json.dumps(doc))
    assert cli(["check", str(path), "mem:source", "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] is False and "claimed" in out["reasons"][0]


def test_unreadable_inputs_exit_3(
    cli: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert cli(["check", str(bad), "mem:source"]) == 3
    err = capsys.readouterr().err
    assert "bad.json" in err and err.count("\n") == 1
    assert cli(["check", str(tmp_path / "missing.json"), "mem:source"]) == 3
    good = tmp_path / "good.json"
    save_certificate(verified_cert(SOURCE, PROP, "crown"), good)
    assert cli(["check", str(good), str(tmp_path / "nope.onnx")]) == 3
    with pytest.raises(SystemExit) as ei:  # usage error: missing MODEL
        cli(["check", str(good)])
    assert ei.value.code == 3


def test_transfer_command(cli: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "src.json"
    out = tmp_path / "out.json"
    save_certificate(verified_cert(SOURCE, PROP, "crown"), src)
    code = cli(
        [
            "transfer",
            str(src),
            "--source",
            "mem:source",
            "--target",
            "mem:target",
            "--certificate",
            str(out),
            "--json",
            "--timeout",
            "20",
        ]
    )
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["transferred"] is True and doc["verdict"] == "verified"
    assert isinstance(doc["delta"], list) and doc["time"] >= 0
    cert = load_certificate(out)
    assert cert.verdict is Verdict.VERIFIED and cert.evidence.kind == "transfer"
    # and the transferred certificate checks with its source
    assert (
        cli(
            [
                "check",
                str(out),
                "mem:target",
                "--source",
                "mem:source",
                "--source-certificate",
                str(src),
            ]
        )
        == 0
    )
    assert cli(["check", str(out), "mem:target"]) == 1  # Δ cannot be recomputed
    capsys.readouterr()
    # wrong source network: input error
    assert cli(["transfer", str(src), "--source", "mem:target", "--target", "mem:source"]) == 3
    assert (
        cli(
            [
                "transfer",
                str(src),
                "--source",
                "mem:source",
                "--target",
                "mem:target",
                "--timeout",
                "-1",
            ]
        )
        == 3
    )


def test_transfer_falsified_exit_code(
    cli: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "src.json"
    save_certificate(verified_cert(SOURCE, robust_prop(SOURCE, [0.3, 0.6], 1.5), "crown"), src)
    code = cli(["transfer", str(src), "--source", "mem:source", "--target", "mem:source", "--json"])
    assert code == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["verdict"] == "falsified" and doc["transferred"] is True
    code = cli(
        [
            "transfer",
            str(src),
            "--source",
            "mem:source",
            "--target",
            "mem:target",
            "--no-fallback",
            "--json",
        ]
    )
    doc = json.loads(capsys.readouterr().out)
    assert code in (1, 2) and (doc["transferred"] or doc["verdict"] == "unknown")


def _onnx_file(net: Network, path: Path) -> None:
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits = [], []
    cur = "x"
    k = 0
    for layer in net.layers:
        if isinstance(layer, Dense):
            inits += [
                numpy_helper.from_array(np.asarray(layer.weight, np.float32), f"W{k}"),
                numpy_helper.from_array(np.asarray(layer.bias, np.float32), f"b{k}"),
            ]
            nodes.append(helper.make_node("Gemm", [cur, f"W{k}", f"b{k}"], [f"z{k}"], transB=1))
            cur = f"z{k}"
        else:
            nodes.append(helper.make_node("Relu", [cur], [f"a{k}"]))
            cur = f"a{k}"
            k += 1
    nodes.append(helper.make_node("Identity", [cur], ["y"]))
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, net.n_inputs])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, net.n_outputs])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.save(model, str(path))


def test_check_with_real_onnx_models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("nncert.verify.importers")
    monkeypatch.setattr(vcli, "EXTENSIONS", [register])
    _onnx_file(SOURCE, tmp_path / "net.onnx")
    net = cliutil.load_model(str(tmp_path / "net.onnx"))
    prop = robust_prop(net, [0.3, 0.6], 1.5)
    cert = verified_cert(net, prop, "crown")
    path = tmp_path / "cert.json"
    path.write_text(to_json(cert))
    assert vcli.main(["check", str(path), str(tmp_path / "net.onnx")]) == 0
