"""Several ONNX inputs/outputs (the MIO theory) and hidden tensors (the H theory).

The rewritten single-input single-output graph (:mod:`nncert.verify.onnx_io`) must compute
exactly what the original model computes, and ``nncert-vnnlib`` must answer ``unsat`` only when
no sampled point violates the query, and ``sat`` only with an assignment that onnxruntime
confirms on the original model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nncert.verify.errors import InvalidNetworkError
from nncert.verify.importers import from_onnx
from nncert.verify.onnx_io import bind, load_model, replay_original, write_single_io
from nncert.verify.spec import TensorDecl
from nncert.verify.vnnlib import load_vnnlib
from nncert.verify.vnnlib_cli import main

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

_RNG = np.random.default_rng(7)
W1 = _RNG.normal(size=(3, 2))
W2 = _RNG.normal(size=(3, 4))
B = _RNG.normal(size=3)
V = _RNG.normal(size=(2, 3))
C = _RNG.normal(size=2)


def _f32(name: str, a: np.ndarray) -> object:
    return numpy_helper.from_array(np.asarray(a, np.float32), name)


def _save(path: Path, nodes: list, inputs: list, outputs: list, inits: list) -> Path:
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def _vi(name: str, shape: list[int]) -> object:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def two_input_model(path: Path) -> Path:
    """``y = relu(W1 x1 + W2 x2 + b)``, ``x1`` of shape ``[1,2]``, ``x2`` of shape ``[4]``."""
    nodes = [
        helper.make_node("MatMul", ["x1", "W1t"], ["a"]),
        helper.make_node("Reshape", ["x2", "shp"], ["x2r"]),
        helper.make_node("MatMul", ["x2r", "W2t"], ["c"]),
        helper.make_node("Add", ["a", "c"], ["s"]),
        helper.make_node("Add", ["s", "b"], ["pre"]),
        helper.make_node("Relu", ["pre"], ["y"]),
    ]
    inits = [
        _f32("W1t", W1.T),
        _f32("W2t", W2.T),
        _f32("b", B),
        numpy_helper.from_array(np.array([1, 4], np.int64), "shp"),
    ]
    return _save(path, nodes, [_vi("x1", [1, 2]), _vi("x2", [4])], [_vi("y", [1, 3])], inits)


def two_output_model(path: Path) -> Path:
    """Input ``x`` ``[1,2]``; outputs ``h = relu(W1 x + b)`` ``[1,3]`` and ``z = V h + c``."""
    nodes = [
        helper.make_node("Gemm", ["x", "W1", "b"], ["pre"], transB=1),
        helper.make_node("Relu", ["pre"], ["h"]),
        helper.make_node("Gemm", ["h", "V", "c"], ["z"], transB=1),
    ]
    inits = [_f32("W1", W1), _f32("b", B), _f32("V", V), _f32("c", C)]
    return _save(path, nodes, [_vi("x", [1, 2])], [_vi("h", [1, 3]), _vi("z", [1, 2])], inits)


def hidden_model(path: Path) -> Path:
    """One input ``x`` ``[1,2]``, one output ``z = V relu(W1 x + b) + c``; the tensors
    ``pre`` (before the ReLU) and ``h`` (after it) are hidden."""
    nodes = [
        helper.make_node("Gemm", ["x", "W1", "b"], ["pre"], transB=1),
        helper.make_node("Relu", ["pre"], ["h"]),
        helper.make_node("Gemm", ["h", "V", "c"], ["z"], transB=1),
    ]
    inits = [_f32("W1", W1), _f32("b", B), _f32("V", V), _f32("c", C)]
    return _save(path, nodes, [_vi("x", [1, 2])], [_vi("z", [1, 2])], inits)


def _reference(kind: str, x: np.ndarray) -> np.ndarray:
    """The stacked ``y`` in float64, computed directly from the weights."""
    if kind == "two_input":
        return np.maximum(W1 @ x[:2] + W2 @ x[2:] + B, 0.0)
    pre = W1 @ x + B
    h = np.maximum(pre, 0.0)
    z = V @ h + C
    if kind == "two_output":
        return np.concatenate([h, z])
    return np.concatenate([z, pre, h])  # hidden: output z, then pre, then h


_DECLS = {
    "two_input": (
        [TensorDecl("A", (1, 2)), TensorDecl("B", (4,))],
        [TensorDecl("Y", (1, 3))],
        [],
    ),
    "two_output": ([TensorDecl("X", (1, 2))], [TensorDecl("H", (1, 3)), TensorDecl("Z", (2,))], []),
    "hidden": (
        [TensorDecl("X", (1, 2))],
        [TensorDecl("Z", (1, 2))],
        [TensorDecl("P", (1, 3), onnx_name="pre"), TensorDecl("H", (3,), onnx_name='"h"')],
    ),
}
_MODELS = {"two_input": two_input_model, "two_output": two_output_model, "hidden": hidden_model}


@pytest.mark.parametrize("kind", sorted(_MODELS))
def test_rewritten_import_equals_the_original(kind: str, tmp_path: Path) -> None:
    """Float64 forward pass of the rewritten import == onnxruntime on the original model ==
    the formula, at random points (float32 model: tolerance 1e-5)."""
    path = _MODELS[kind](tmp_path / f"{kind}.onnx")
    model = load_model(path)
    ins, outs, hidden = _DECLS[kind]
    binding = bind(model, ins, outs, hidden, where=str(path))
    net = from_onnx(write_single_io(model, binding, tmp_path))
    assert (net.n_inputs, net.n_outputs) == (binding.n_inputs, binding.n_outputs)
    rng = np.random.default_rng(3)
    for x in rng.uniform(-3, 3, size=(40, binding.n_inputs)):
        y_ort = replay_original(model, binding, x)
        ref = _reference(kind, x)
        np.testing.assert_allclose(net.forward(x), ref, atol=1e-5)
        np.testing.assert_allclose(y_ort, ref, atol=1e-5)


def test_binding_by_name_follows_the_query_order(tmp_path: Path) -> None:
    """Named inputs in the other order: the stacked input is [x2; x1] as declared."""
    path = two_input_model(tmp_path / "m.onnx")
    model = load_model(path)
    ins = [TensorDecl("B", (4,), onnx_name="x2"), TensorDecl("A", (1, 2), onnx_name="x1")]
    binding = bind(model, ins, [TensorDecl("Y", (3,), onnx_name="y")], where=str(path))
    net = from_onnx(write_single_io(model, binding, tmp_path))
    x = np.random.default_rng(0).uniform(-1, 1, size=6)
    swapped = np.concatenate([x[4:], x[:4]])  # [x1; x2]
    np.testing.assert_allclose(net.forward(x), _reference("two_input", swapped), atol=1e-5)
    np.testing.assert_allclose(replay_original(model, binding, x), net.forward(x), atol=1e-5)


@pytest.mark.parametrize(
    ("ins", "outs", "hidden", "message"),
    [
        ([TensorDecl("A", (1, 2))], [TensorDecl("Y", (3,))], [], "declares 1 input"),
        (
            [TensorDecl("A", (1, 3)), TensorDecl("B", (3,))],
            [TensorDecl("Y", (3,))],
            [],
            "declares 3 entries",
        ),
        (
            [TensorDecl("A", (2,)), TensorDecl("B", (4,))],
            [TensorDecl("Y", (3,))],
            [TensorDecl("H", (3,), onnx_name="nope")],
            "no node of the model produces the tensor 'nope'",
        ),
        (
            [TensorDecl("A", (2,), onnx_name="x1"), TensorDecl("B", (4,))],
            [TensorDecl("Y", (3,))],
            [],
            "some inputs/outputs but not all",
        ),
        (
            [TensorDecl("A", (2,), onnx_name="x1")],
            [TensorDecl("Y", (3,), onnx_name="y")],
            [],
            "inputs ['x2'] are not declared",
        ),
    ],
)
def test_bind_refuses_what_does_not_match(
    ins: list[TensorDecl],
    outs: list[TensorDecl],
    hidden: list[TensorDecl],
    message: str,
    tmp_path: Path,
) -> None:
    path = two_input_model(tmp_path / "m.onnx")
    with pytest.raises(InvalidNetworkError, match=str(path)) as info:
        bind(load_model(path), ins, outs, hidden, where=str(path))
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_hidden_of_wrong_size_is_refused(tmp_path: Path) -> None:
    """A hidden tensor declared with another size fails in the importer (the rewrite reshapes
    to the declared size), never a misread column."""
    path = hidden_model(tmp_path / "m.onnx")
    model = load_model(path)
    binding = bind(
        model,
        [TensorDecl("X", (1, 2))],
        [TensorDecl("Z", (2,))],
        [TensorDecl("H", (4,), onnx_name="h")],
    )
    with pytest.raises(InvalidNetworkError):
        from_onnx(write_single_io(model, binding, tmp_path))
    with pytest.raises(InvalidNetworkError):
        replay_original(model, binding, np.zeros(2))


# -- the query side ----------------------------------------------------------------------------

_BOX2 = "(assert (and (>= X[0,0] -1.0) (<= X[0,0] 1.0) (>= X[0,1] -1.0) (<= X[0,1] 1.0)))"


def _hidden_query(path: Path, constraint: str) -> Path:
    path.write_text(
        "\n".join(
            [
                "(vnnlib-version <2.0>)",
                "(declare-network f",
                "    (declare-input X float32 [1,2])",
                '    (declare-hidden P float32 [1,3] "pre")',
                '    (declare-hidden H float32 [3] "h")',
                "    (declare-output Z float32 [1,2])",
                ")",
                _BOX2,
                f"(assert {constraint})",
            ]
        )
        + "\n"
    )
    return path


def test_hidden_variables_are_output_columns_after_the_outputs(tmp_path: Path) -> None:
    q = _hidden_query(tmp_path / "q.vnnlib", "(>= (- P[0,1] H[2]) Z[0,1])")
    from nncert.verify.errors import InvalidPropertyError

    with pytest.raises(InvalidPropertyError, match="hidden=True"):
        load_vnnlib(q)  # a plain network's columns are never read as hidden tensors
    prop = load_vnnlib(q, hidden=True)
    assert (prop.n_inputs, prop.n_outputs) == (2, 2 + 3 + 3)
    (case,) = prop.cases
    # -P[0,1] + H[2] + Z[0,1] <= 0 over y = [Z; P; H]
    row = np.zeros(8)
    row[[1, 3, 7]] = [1.0, -1.0, 1.0]
    np.testing.assert_array_equal(case.A, row.reshape(1, -1))


def test_hidden_in_several_networks_is_refused(tmp_path: Path) -> None:
    q = tmp_path / "q.vnnlib"
    q.write_text(
        "(vnnlib-version <2.0>)\n"
        "(declare-network f (declare-input X float32 [2])"
        ' (declare-hidden P float32 [3] "pre") (declare-output Z float32 [2]))\n'
        "(declare-network g (equal-to f) (declare-input U float32 [2])"
        " (declare-output W float32 [2]))\n"
        "(assert (<= X[0] 1.0))\n"
    )
    from nncert.verify.errors import InvalidPropertyError

    with pytest.raises(InvalidPropertyError, match="hidden tensors"):
        load_vnnlib(q, hidden=True)


# -- nncert-vnnlib end to end ------------------------------------------------------------------


def _num(v: float) -> str:
    """A VNN-LIB decimal literal (no exponent), rounded to 6 places."""
    return f"{v:.6f}"


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str], str]:
    code = main(["verify", *argv])
    out = capsys.readouterr()
    return code, out.out.splitlines(), out.err


def _assignment(lines: list[str]) -> dict[str, np.ndarray]:
    """``NAME type [shape]`` headers followed by values -> name -> array of that shape."""
    values: dict[str, np.ndarray] = {}
    i = 1
    while i < len(lines):
        name, _, shape_text = lines[i].split()
        shape = [int(s) for s in shape_text.strip("[]").split(",") if s]
        n = int(np.prod(shape)) if shape else 1
        values[name] = np.array([float(v) for v in lines[i + 1 : i + 1 + n]]).reshape(shape)
        i += 1 + n
    return values


def _two_input_query(path: Path, constraint: str) -> Path:
    bounds = " ".join(f"(>= A[0,{i}] -1.0) (<= A[0,{i}] 1.0)" for i in range(2))
    bounds += " " + " ".join(f"(>= B[{i}] -0.5) (<= B[{i}] 0.5)" for i in range(4))
    path.write_text(
        "(vnnlib-version <2.0>)\n(declare-network f\n"
        "    (declare-input A float32 [1,2])\n    (declare-input B float32 [4])\n"
        "    (declare-output Y float32 [1,3])\n)\n"
        f"(assert (and {bounds}))\n(assert {constraint})\n"
    )
    return path


def _ort_original(path: Path, feed: dict[str, np.ndarray], names: list[str]) -> list[np.ndarray]:
    """onnxruntime on the original model, hidden tensors exposed as outputs of a copy."""
    model = onnx.load(str(path))
    present = {o.name for o in model.graph.output}
    for n in names:
        if n not in present:
            model.graph.output.append(onnx.ValueInfoProto(name=n))
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    out = session.run(names, {k: v.astype(np.float32) for k, v in feed.items()})
    return [np.asarray(v, np.float64) for v in out]


def test_cli_two_inputs_unsat_and_sat(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = two_input_model(tmp_path / "m.onnx")
    rng = np.random.default_rng(5)
    xs = np.column_stack([rng.uniform(-1, 1, (4000, 2)), rng.uniform(-0.5, 0.5, (4000, 4))])
    ys = np.array([_reference("two_input", x) for x in xs])
    # unsat: Y[0,0] above the sound interval bound of the box
    top = np.maximum(np.abs(W1[0]).sum() + 0.5 * np.abs(W2[0]).sum() + B[0], 0.0) + 1.0
    q = _two_input_query(tmp_path / "unsat.vnnlib", f"(>= Y[0,0] {_num(top)})")
    code, lines, _ = _run(capsys, str(q), "--network", f"f={model}")
    assert (code, lines) == (0, ["unsat"])
    # sat: a level that sampling reaches
    level = float(_num(np.quantile(ys[:, 1], 0.9)))
    q = _two_input_query(tmp_path / "sat.vnnlib", f"(>= Y[0,1] {_num(level)})")
    code, lines, _ = _run(capsys, str(q), "--network", f"f={model}")
    assert code == 0 and lines[0] == "sat"
    got = _assignment(lines)
    assert list(got) == ["A", "B", "Y"]
    (y,) = _ort_original(model, {"x1": got["A"], "x2": got["B"]}, ["y"])
    np.testing.assert_allclose(y.reshape(-1), got["Y"].reshape(-1), atol=1e-6)
    assert y.reshape(-1)[1] >= level
    assert np.all(np.abs(got["A"]) <= 1) and np.all(np.abs(got["B"]) <= 0.5)


def test_cli_two_outputs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = two_output_model(tmp_path / "m.onnx")
    decl = (
        "(vnnlib-version <2.0>)\n(declare-network f\n    (declare-input X float32 [1,2])\n"
        "    (declare-output H float32 [1,3])\n    (declare-output Z float32 [2])\n)\n"
        f"{_BOX2}\n"
    )
    rng = np.random.default_rng(2)
    ys = np.array([_reference("two_output", x) for x in rng.uniform(-1, 1, (4000, 2))])
    level = float(_num(np.quantile(ys[:, 3] - ys[:, 0], 0.95)))
    q = tmp_path / "sat.vnnlib"
    q.write_text(decl + f"(assert (>= (- Z[0] H[0,0]) {_num(level)}))\n")
    code, lines, _ = _run(capsys, str(q), "--network", f"f={model}")
    assert code == 0 and lines[0] == "sat"
    got = _assignment(lines)
    h, z = _ort_original(model, {"x": got["X"]}, ["h", "z"])
    np.testing.assert_allclose(h.reshape(-1), got["H"].reshape(-1), atol=1e-6)
    np.testing.assert_allclose(z.reshape(-1), got["Z"].reshape(-1), atol=1e-6)
    assert z.reshape(-1)[0] - h.reshape(-1)[0] >= level
    # unsat: H is a ReLU output, never negative
    q.write_text(decl + "(assert (<= H[0,2] -0.01))\n")
    code, lines, _ = _run(capsys, str(q), "--network", f"f={model}")
    assert (code, lines) == (0, ["unsat"])


def test_cli_hidden_sat_and_unsat(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = hidden_model(tmp_path / "m.onnx")
    # unsat: H = relu(P) is never below P
    q = _hidden_query(tmp_path / "u.vnnlib", "(<= H[1] (- P[0,1] 0.01))")
    code, lines, _ = _run(capsys, str(q), "--network", f"f={model}")
    assert (code, lines) == (0, ["unsat"])
    # sat: P[0,0] below -0.1 somewhere in the box (checked by sampling below)
    q = _hidden_query(tmp_path / "s.vnnlib", "(and (<= P[0,0] -0.1) (>= Z[0,0] -100.0))")
    code, lines, _ = _run(capsys, str(q), "--network", f"f={model}")
    assert code == 0 and lines[0] == "sat"
    got = _assignment(lines)
    assert list(got) == ["X", "P", "H", "Z"]
    pre, h, z = _ort_original(model, {"x": got["X"]}, ["pre", "h", "z"])
    np.testing.assert_allclose(pre.reshape(-1), got["P"].reshape(-1), atol=1e-6)
    np.testing.assert_allclose(h.reshape(-1), got["H"].reshape(-1), atol=1e-6)
    np.testing.assert_allclose(z.reshape(-1), got["Z"].reshape(-1), atol=1e-6)
    assert pre.reshape(-1)[0] <= -0.1


@settings(max_examples=10, deadline=None)
@given(
    unit=st.integers(0, 2),
    quantile=st.floats(0.5, 1.0),
    upward=st.booleans(),
)
def test_cli_hidden_answer_agrees_with_sampling(
    tmp_path_factory: pytest.TempPathFactory, unit: int, quantile: float, upward: bool
) -> None:
    """A level of a hidden pre-activation that a sample reaches is never answered unsat;
    a sat answer's witness reaches it in onnxruntime."""
    import io
    from contextlib import redirect_stderr, redirect_stdout

    tmp = tmp_path_factory.mktemp("h")
    model = hidden_model(tmp / "m.onnx")
    xs = np.random.default_rng(unit).uniform(-1, 1, (3000, 2))
    pre = xs @ W1.T + B
    vals = pre[:, unit] if upward else -pre[:, unit]
    level = float(_num(np.quantile(vals, quantile)))
    sampled = bool(np.any(vals >= level))
    op = ">=" if upward else "<="
    q = _hidden_query(tmp / "q.vnnlib", f"({op} P[0,{unit}] {_num(level if upward else -level)})")
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(["verify", str(q), "--network", f"f={model}"])
    lines = out.getvalue().splitlines()
    assert code == 0, err.getvalue()
    if sampled:
        assert lines[0] != "unsat"
    if lines[0] == "sat":
        got = _assignment(lines)
        (p,) = _ort_original(model, {"x": got["X"]}, ["pre"])
        v = p.reshape(-1)[unit]
        assert (v >= level) if upward else (v <= -level)


def _error_line(err: str) -> str:
    """The one error line on stderr (notes aside)."""
    (line,) = [ln for ln in err.splitlines() if "error" in ln]
    return line


def test_cli_refusals_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = two_input_model(tmp_path / "m.onnx")
    # a query with one input on a two-input model
    q = tmp_path / "one.vnnlib"
    q.write_text(
        "(vnnlib-version <2.0>)\n(declare-network f (declare-input A float32 [1,2])"
        " (declare-output Y float32 [1,3]))\n(assert (and (>= A[0,0] 0.0) (<= A[0,0] 1.0)"
        " (>= A[0,1] 0.0) (<= A[0,1] 1.0)))\n(assert (>= Y[0,0] 0.0))\n"
    )
    code, lines, err = _run(capsys, str(q), "--network", f"f={model}")
    assert code == 2 and lines == [] and "input" in _error_line(err)
    # a VNN-LIB 1.0 query on a two-input model
    q1 = tmp_path / "v1.vnnlib"
    q1.write_text(
        "\n".join(f"(declare-const X_{i} Real)" for i in range(6))
        + "\n(declare-const Y_0 Real)\n"
        + "".join(f"(assert (>= X_{i} 0))\n(assert (<= X_{i} 1))\n" for i in range(6))
        + "(assert (>= Y_0 0))\n"
    )
    code, lines, err = _run(capsys, str(q1), "--network", f"f={model}")
    assert code == 2 and lines == [] and str(model) in _error_line(err)
    # a hidden tensor the model does not have
    hq = _hidden_query(tmp_path / "h.vnnlib", "(<= P[0,0] 0.0)")
    hq.write_text(hq.read_text().replace('"pre"', '"nope"'))
    hidden = hidden_model(tmp_path / "hidden.onnx")
    code, lines, err = _run(capsys, str(hq), "--network", f"f={hidden}")
    assert code == 2 and lines == [] and "'nope'" in _error_line(err)


@pytest.mark.parametrize(
    ("flag", "expected"),
    [
        ("--hidden-node-theories", ["NH", "H"]),
        ("--multiple-input-output-theories", ["SIO", "MIO"]),
    ],
)
def test_supports_the_two_theories(
    flag: str, expected: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["supports", flag]) == 0
    assert capsys.readouterr().out.split() == expected


def test_cli_witness_not_replayed_on_the_original_is_not_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """If onnxruntime on the original model disagrees with the witness, the answer is
    unknown, never sat."""
    import nncert.verify.vnnlib_cli as cli

    model = hidden_model(tmp_path / "m.onnx")
    q = _hidden_query(tmp_path / "s.vnnlib", "(<= P[0,0] -0.1)")
    code, lines, _ = _run(capsys, str(q), "--network", f"f={model}")
    assert (code, lines[0]) == (0, "sat")
    real = cli.replay_original
    monkeypatch.setattr(
        cli, "replay_original", lambda m, b, x: real(m, b, x) + 1000.0
    )  # a replay that contradicts the witness
    code, lines, err = _run(capsys, str(q), "--network", f"f={model}")
    assert (code, lines) == (0, ["unknown"])
    assert "did not replay" in err


def test_cli_serialises_every_declared_tensor(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = two_input_model(tmp_path / "m.onnx")
    rng = np.random.default_rng(5)
    xs = np.column_stack([rng.uniform(-1, 1, (4000, 2)), rng.uniform(-0.5, 0.5, (4000, 4))])
    level = float(_num(np.quantile([_reference("two_input", x)[2] for x in xs], 0.9)))
    q = _two_input_query(tmp_path / "sat.vnnlib", f"(>= Y[0,2] {_num(level)})")
    out = tmp_path / "assignment"
    code, lines, _ = _run(
        capsys, str(q), "--network", f"f={model}", "--serialise-assignments", str(out)
    )
    assert (code, lines) == (0, ["sat"])
    got = {
        n: numpy_helper.to_array(onnx.load_tensor(str(out / f"{n}.pb"))) for n in ("A", "B", "Y")
    }
    assert got["A"].shape == (1, 2) and got["B"].shape == (4,) and got["Y"].shape == (1, 3)
    (y,) = _ort_original(model, {"x1": got["A"], "x2": got["B"]}, ["y"])
    np.testing.assert_allclose(y, got["Y"], atol=1e-6)
    assert float(y.reshape(-1)[2]) >= level


def test_single_io_commands_point_to_nncert_vnnlib(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``nncert verify`` reads one-input one-output models only: a two-input model is an input
    error (exit 3) whose one line names the file and the command that decides such queries."""
    from nncert.verify.cli import main as nncert_main

    model = two_input_model(tmp_path / "two.onnx")
    query = _two_input_query(tmp_path / "q.vnnlib", "(<= Y[0,0] -1.0)")
    assert nncert_main(["verify", str(model), str(query), "--timeout", "5", "--quiet"]) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(model) in err[0]
    assert "found 2" in err[0] and "nncert-vnnlib verify" in err[0]
