"""VNN-COMP I/O: result files, witnesses, instances.csv dialects, results.csv."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as nps

from nncert.verify.errors import InvalidPropertyError
from nncert.verify.vnncomp import (
    format_witness,
    read_instances,
    read_result_file,
    write_result_file,
    write_results_csv,
)

finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)


@given(
    nps.arrays(np.float64, st.integers(1, 6), elements=finite),
    nps.arrays(np.float64, st.integers(1, 4), elements=finite),
)
def test_witness_round_trip_is_exact(x: np.ndarray, y: np.ndarray) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "out.txt"
        write_result_file(p, "sat", x, y)
        text = p.read_text()
        assert text.splitlines()[0] == "sat"
        parsed = read_result_file(p)
    assert parsed.result == "sat"
    assert parsed.x is not None and parsed.y is not None
    np.testing.assert_array_equal(parsed.x, x)
    np.testing.assert_array_equal(parsed.y, y)


def test_witness_block_shape() -> None:
    text = format_witness([0.25, -0.125], [1.5])
    assert text == "((X_0 0.25)\n(X_1 -0.125)\n(Y_0 1.5))"


@pytest.mark.parametrize("word", ["unsat", "timeout", "unknown", "error"])
def test_plain_result_words(tmp_path: Path, word: str) -> None:
    p = tmp_path / "r.txt"
    write_result_file(p, word)
    assert p.read_text() == word + "\n"
    assert read_result_file(p).result == word


def test_sat_needs_witness(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="witness"):
        write_result_file(tmp_path / "r.txt", "sat")


def test_bad_result_file(tmp_path: Path) -> None:
    p = tmp_path / "r.txt"
    p.write_text("maybe\n")
    with pytest.raises(InvalidPropertyError, match="unknown result"):
        read_result_file(p)


def test_instances_classic_and_2026_dialect(tmp_path: Path) -> None:
    p = tmp_path / "instances.csv"
    p.write_text(
        "onnx/a.onnx,vnnlib/p.vnnlib,116\n"
        "\"[('f', 'onnx/a.onnx'), ('g', 'onnx/b.onnx')]\",vnnlib/q.vnnlib,60\n"
    )
    rows = read_instances(p)
    assert len(rows) == 2
    assert rows[0].onnx == tmp_path / "onnx/a.onnx" and rows[0].timeout == 116.0
    assert [n for n, _ in rows[1].networks] == ["f", "g"]
    assert rows[1].networks[1][1] == tmp_path / "onnx/b.onnx"


def test_instances_errors(tmp_path: Path) -> None:
    p = tmp_path / "instances.csv"
    p.write_text("a.onnx,b.vnnlib,abc\n")
    with pytest.raises(InvalidPropertyError, match="bad timeout"):
        read_instances(p)
    p.write_text("\"[('f', \",b.vnnlib,3\n")
    with pytest.raises(InvalidPropertyError, match="bad network list"):
        read_instances(p)


def test_results_csv_columns(tmp_path: Path) -> None:
    p = tmp_path / "results.csv"
    write_results_csv(
        p,
        [
            {
                "category": "test",
                "network": "n",
                "property": "p",
                "prepare_time": 0,
                "result": "unsat",
                "run_time": 1.5,
                "method": "bab",
            }
        ],
        extra=["method"],
    )
    rows = list(csv.reader(p.open()))
    assert rows[0] == [
        "category",
        "network",
        "property",
        "prepare_time",
        "result",
        "run_time",
        "method",
    ]
    assert rows[1][4] == "unsat"
