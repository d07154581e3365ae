"""``nncert compress`` (registered through nncert.verify.cli.EXTENSIONS)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from cmp_helpers import mlp

from nncert.compression import decode_array, to_onnx
from nncert.compression.cli import register
from nncert.verify import cli

pytest.importorskip("onnx")
from nncert.verify.importers import from_onnx


@pytest.fixture
def model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(cli, "EXTENSIONS", [register])
    path = tmp_path / "net.onnx"
    to_onnx(mlp(), path)
    return path


@pytest.mark.parametrize(
    ("args", "kind"),
    [
        (["--method", "prune", "--sparsity", "0.6", "--scope", "global"], "magnitude_prune"),
        (["--method", "structured", "--ratio", "0.5"], "structured_prune"),
        (
            ["--method", "structured", "--ratio", "0.5", "--channels", "4", "--no-compensate"],
            "structured_prune",
        ),
        (["--method", "prune", "--sparsity", "0.5", "--among", "nonzero"], "magnitude_prune"),
        (["--method", "quantize", "--bits", "4", "--per-tensor"], "quantize_weights"),
        (["--method", "lowrank", "--rank", "2"], "low_rank"),
        (["--method", "lowrank", "--energy", "0.9", "--factorize"], "low_rank"),
    ],
)
def test_compress_writes_onnx_and_sidecar(
    model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], kind: str
) -> None:
    out = tmp_path / "out.onnx"
    assert cli.main(["compress", str(model), *args, "-o", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    side = json.loads((tmp_path / "out.onnx.nncert.json").read_text())
    assert side["format"] == "nncert-compression-sidecar" and side["record"]["kind"] == kind
    src = from_onnx(model)
    assert side["source"]["fingerprint"] == src.fingerprint() == summary["source_fingerprint"]
    back = from_onnx(out)
    assert back.n_inputs == src.n_inputs and back.n_outputs == src.n_outputs
    if "--factorize" not in args:  # float64 export: the parsed file *is* the compressed net
        assert back.fingerprint() == side["compressed"]["fingerprint"]
    if "--channels" in args:  # 2 of 4 groups of each hidden layer, kept whole
        assert side["record"]["channels"] == 4
        assert [d.n_out for d in back.dense_layers] == [8, 6, 3]
    if "--among" in args:
        assert side["record"]["among"] == "nonzero"
    if kind == "magnitude_prune" and "--among" not in args:
        masks = [decode_array(m) for m in side["record"]["masks"]]
        zeros = sum(int((~m).sum()) for m in masks)
        assert zeros == round(0.6 * sum(m.size for m in masks))
        for d, m in zip(back.dense_layers, masks):
            assert np.all(d.weight[~m] == 0)


def test_compress_text_output(
    model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "p.onnx"
    assert cli.main(["compress", str(model), "--method", "prune", "-o", str(out)]) == 0
    assert "non-zero" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["--method", "prune", "--sparsity", "0.5"],
            "50 % of the weights set to zero, non-zero parameters {nonzero_before} -> "
            "{nonzero_after} (shapes unchanged)",
        ),
        (
            ["--method", "structured", "--ratio", "0.5"],
            "hidden widths {widths_before} -> {widths_after}, parameters {parameters_before} "
            "-> {parameters_after}",
        ),
        (
            ["--method", "quantize", "--bits", "4"],
            "weights rounded to a 4-bit grid (one scale per neuron), {parameters_after} "
            "parameters (shapes unchanged)",
        ),
        (
            ["--method", "lowrank", "--rank", "2"],
            "ranks {ranks}, parameters {parameters_before} -> {parameters_after}",
        ),
    ],
)
def test_compress_text_output_says_what_changed(
    model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], expected: str
) -> None:
    """One line per method naming what the method changes (issue 17: prune printed
    ``403 -> 403 parameters`` next to the non-zero count)."""
    out = tmp_path / "c.onnx"
    assert cli.main(["compress", str(model), *args, "-o", str(out)]) == 0
    line = capsys.readouterr().out.strip()
    sidecar = tmp_path / "c.onnx.nncert.json"
    rec = json.loads(sidecar.read_text())["record"]
    values = {k: (list(v) if isinstance(v, (list, tuple)) else v) for k, v in rec.items()}
    method = args[1]
    assert line == f"{method}: {expected.format(**values)}; wrote {out} and {sidecar}"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--method", "quantize", "--sparsity", "0.5"], "--sparsity applies to --method prune"),
        (["--method", "prune", "--rank", "3"], "--rank applies to --method lowrank"),
        (["--method", "prune", "--sparsity", "1.5"], "sparsity"),
        (["--method", "quantize", "--bits", "1"], "bits"),
        (["--method", "prune", "--channels", "2"], "--channels applies to --method structured"),
        (["--method", "structured", "--channels", "5"], "not a multiple"),
    ],
)
def test_compress_usage_errors(
    model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    rc = cli.main(["compress", str(model), *args, "-o", str(tmp_path / "o.onnx")])
    assert rc == 3
    assert message in capsys.readouterr().err


def test_compress_bad_paths(
    model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        cli.main(
            [
                "compress",
                str(tmp_path / "missing.onnx"),
                "--method",
                "prune",
                "-o",
                str(tmp_path / "o.onnx"),
            ]
        )
        == 3
    )
    assert (
        cli.main(["compress", str(model), "--method", "prune", "-o", str(tmp_path / "o.txt")]) == 3
    )
    with pytest.raises(SystemExit) as exc:
        cli.main(
            [
                "compress",
                str(model),
                "--method",
                "lowrank",
                "--rank",
                "2",
                "--energy",
                "0.5",
                "-o",
                str(tmp_path / "o.onnx"),
            ]
        )
    assert exc.value.code == 3
