"""Tests of nncert.verify.importers: ONNX and torch import, onnxruntime replay, bad inputs."""

from __future__ import annotations

import copy
import itertools
import re
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import AttributeProto, TensorProto, helper, numpy_helper

from nncert.verify.errors import InvalidNetworkError, UnsupportedLayerError
from nncert.verify.importers import (
    _topological_order,
    conv_matrix,
    from_onnx,
    from_torch,
    onnxruntime_forward,
)
from nncert.verify.network import Dense, HardTanh, LeakyReLU, ReLU
from nncert.verify.witness import _ort_session

VNNCOMP = Path(__file__).resolve().parents[2].parent / "shared" / "benchmarks" / "vnncomp"

#: (glob under VNNCOMP, input range) of the benchmark networks compared with onnxruntime
BENCHMARK_GLOBS: list[tuple[str, tuple[float, float]]] = [
    ("acasxu/onnx/*.onnx", (-0.5, 0.5)),
    ("mnistfc/onnx/*.onnx", (0.0, 1.0)),
    ("dist_shift/onnx/mnist_concat.onnx", (0.0, 1.0)),
    ("test/*.onnx", (-1.0, 1.0)),
]


def _benchmark_params() -> list[Any]:
    params = [
        pytest.param(path, rng, id=path.stem)
        for pattern, rng in BENCHMARK_GLOBS
        for path in sorted(VNNCOMP.glob(pattern))
    ]
    if not params:
        return [
            pytest.param(
                None,
                None,
                marks=pytest.mark.skip(reason=f"shared benchmarks not found at {VNNCOMP}"),
                id="no-benchmarks",
            )
        ]
    return params


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def _to_double(model: onnx.ModelProto, batch_symbolic: bool) -> onnx.ModelProto:
    """A float64 copy of a float32 model (so onnxruntime is an exact reference).

    With ``batch_symbolic`` a leading dimension of 1 of the input and output becomes ``N`` so
    onnxruntime can evaluate a whole batch at once.
    """
    m = copy.deepcopy(model)
    f32, f64 = TensorProto.FLOAT, TensorProto.DOUBLE
    for init in m.graph.initializer:
        if init.data_type == f32:
            arr = numpy_helper.to_array(init).astype(np.float64)
            init.CopyFrom(numpy_helper.from_array(arr, init.name))
    del m.graph.value_info[:]
    for vi in [*m.graph.input, *m.graph.output]:
        ttype = vi.type.tensor_type
        if ttype.elem_type == f32:
            ttype.elem_type = f64
        dims = ttype.shape.dim
        if batch_symbolic and len(dims) >= 2 and dims[0].dim_value == 1:
            dims[0].dim_param = "N"
    for node in m.graph.node:
        for attr in node.attribute:
            if attr.type == AttributeProto.TENSOR and attr.t.data_type == f32:
                arr = numpy_helper.to_array(attr.t).astype(np.float64)
                attr.t.CopyFrom(numpy_helper.from_array(arr, attr.t.name))
            if node.op_type == "Cast" and attr.name == "to" and attr.i == f32:
                attr.i = f64
    return m


def _float64_reference(path: Path, x: np.ndarray, tmp_path: Path) -> np.ndarray:
    """onnxruntime on a float64 copy of ``path`` (batched when the graph allows it)."""
    model = onnx.load(str(path))
    batched = tmp_path / f"{path.stem}_f64_batched.onnx"
    onnx.save(_to_double(model, batch_symbolic=True), str(batched))
    try:
        return onnxruntime_forward(batched, x)
    except Exception:  # e.g. a Reshape to a fixed batch of 1: fall back to row by row
        fixed = tmp_path / f"{path.stem}_f64.onnx"
        onnx.save(_to_double(model, batch_symbolic=False), str(fixed))
        return onnxruntime_forward(fixed, x)


def _scale(ref: np.ndarray) -> float:
    return max(float(np.max(np.abs(ref), initial=0.0)), 1e-12)


def _init(name: str, value: Any, dtype: Any = np.float32) -> TensorProto:
    return numpy_helper.from_array(np.asarray(value, dtype=dtype), name)


def _const_node(name: str, value: Any, dtype: Any = np.float32) -> onnx.NodeProto:
    return helper.make_node("Constant", [], [name], value=_init(name, value, dtype), name=name)


def _model(
    nodes: list[onnx.NodeProto],
    inits: list[TensorProto],
    in_shape: list[Any],
    out_shape: list[Any] | None,
    *,
    opset: int = 13,
    inputs: list[onnx.ValueInfoProto] | None = None,
    outputs: list[onnx.ValueInfoProto] | None = None,
) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes,
        "test",
        inputs or [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)],
        outputs or [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def _save(model: onnx.ModelProto, tmp_path: Path, name: str = "model") -> Path:
    path = tmp_path / f"{name}.onnx"
    onnx.save(model, str(path))
    return path


def _check_against_ort(path: Path, n: int = 200, lo: float = -1.0, hi: float = 1.0) -> None:
    """from_onnx(path).forward matches onnxruntime (float32 rounding tolerance)."""
    net = from_onnx(path)
    x = np.random.default_rng(1).uniform(lo, hi, size=(n, net.n_inputs))
    ref = onnxruntime_forward(path, x)
    got = net.forward(x)
    assert got.shape == ref.shape
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6 * _scale(ref))


RNG = np.random.default_rng(1234)


def _w(*shape: int) -> np.ndarray:
    return RNG.normal(size=shape).astype(np.float32)


# --------------------------------------------------------------------------------------------
# benchmark networks
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "box"), _benchmark_params())
def test_benchmark_networks_match_onnxruntime(
    path: Path, box: tuple[float, float], tmp_path: Path
) -> None:
    net = from_onnx(path)
    assert net.source == str(path)
    assert net.name == path.stem
    x = np.random.default_rng(0).uniform(*box, size=(1000, net.n_inputs))
    got = net.forward(x)
    # exact lowering: onnxruntime on a float64 copy of the model
    ref64 = _float64_reference(path, x, tmp_path)
    np.testing.assert_allclose(got, ref64, rtol=1e-6, atol=1e-9 * _scale(ref64))
    # replay of the original float32 file: agreement up to float32 rounding
    ref32 = onnxruntime_forward(path, x)
    np.testing.assert_allclose(got, ref32, rtol=1e-5, atol=5e-5 * _scale(ref32))


def test_acasxu_affine_ops_are_composed() -> None:
    path = VNNCOMP / "acasxu" / "onnx" / "ACASXU_run2a_1_1_batch_2000.onnx"
    if not path.exists():
        pytest.skip(f"{path} not found")
    net = from_onnx(path)
    # Sub, Flatten, MatMul, Add -> one Dense; then (Relu, MatMul, Add) x 6
    assert net.input_shape == (1, 1, 5)
    assert [type(layer).__name__ for layer in net.layers] == ["Dense", "ReLU"] * 6 + ["Dense"]
    assert net.layers[0].n_in == 5


def test_test_nano_has_no_batch_dim() -> None:
    path = VNNCOMP / "test" / "test_nano.onnx"
    if not path.exists():
        pytest.skip(f"{path} not found")
    net = from_onnx(path)
    assert net.input_shape == (1,)
    out = onnxruntime_forward(path, np.array([[0.5], [-0.5], [2.0]]))
    assert out.shape == (3, 1)
    assert out.dtype == np.float64
    np.testing.assert_allclose(net.forward(np.array([[0.5], [-0.5], [2.0]])), out, rtol=1e-6)


# --------------------------------------------------------------------------------------------
# hand-built ONNX models covering the operator set
# --------------------------------------------------------------------------------------------


def _gemm_trans_a() -> onnx.ModelProto:
    # x: (4, 1) unbatched; transA -> (1, 4); B (4, 3); C (3,)
    nodes = [
        helper.make_node("Gemm", ["x", "B", "C"], ["h"], transA=1, alpha=0.7, beta=1.3),
        helper.make_node("Relu", ["h"], ["r"]),
        helper.make_node("Gemm", ["r", "B2", "C2"], ["y"], transB=1, alpha=-0.5, beta=2.0),
    ]
    inits = [_init("B", _w(4, 3)), _init("C", _w(3)), _init("B2", _w(2, 3)), _init("C2", _w(1, 2))]
    return _model(nodes, inits, [4, 1], [1, 2])


def _gemm_var_b() -> onnx.ModelProto:
    # variable as the second Gemm operand: y = A @ x + C, x of shape (4, 1)
    nodes = [helper.make_node("Gemm", ["A", "x", "C"], ["y"], alpha=1.5, beta=0.5)]
    return _model(nodes, [_init("A", _w(3, 4)), _init("C", _w(3, 1))], [4, 1], [3, 1])


def _conv_groups() -> onnx.ModelProto:
    nodes = [
        helper.make_node(
            "Conv",
            ["x", "W", "b"],
            ["c"],
            group=2,
            pads=[1, 0, 1, 1],
            strides=[2, 1],
            dilations=[1, 2],
            name="conv",
        ),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("Conv", ["r", "W2"], ["c2"], auto_pad="SAME_UPPER", strides=[2, 2]),
        helper.make_node("Flatten", ["c2"], ["f"], axis=1),
        helper.make_node("Gemm", ["f", "G", "g"], ["y"], transB=1),
    ]
    # input (1, 2, 7, 6); conv1 -> (1, 4, 4, 5); conv2 (3x3, SAME, stride 2) -> (1, 3, 2, 3)
    inits = [
        _init("W", _w(4, 1, 3, 2)),
        _init("b", _w(4)),
        _init("W2", _w(3, 4, 3, 3)),
        _init("G", _w(5, 18)),
        _init("g", _w(5)),
    ]
    return _model(nodes, inits, [1, 2, 7, 6], [1, 5])


def _batchnorm() -> onnx.ModelProto:
    def bn(prefix: str, x: str, out: str, c: int) -> tuple[onnx.NodeProto, list[TensorProto]]:
        names = [f"{prefix}_{k}" for k in ("s", "b", "m", "v")]
        values = [_w(c), _w(c), _w(c), RNG.uniform(0.5, 2.0, c).astype(np.float32)]
        node = helper.make_node("BatchNormalization", [x, *names], [out], epsilon=1e-3)
        return node, [_init(n, v) for n, v in zip(names, values)]

    bn1, i1 = bn("bn1", "c", "n", 3)
    bn2, i2 = bn("bn2", "r", "n2", 3)
    nodes = [
        helper.make_node("Conv", ["x", "W"], ["c"], pads=[1, 1, 1, 1]),
        bn1,
        helper.make_node("Relu", ["n"], ["r"]),
        bn2,  # after an activation: folded into the next affine map
        helper.make_node("Flatten", ["n2"], ["f"]),
        helper.make_node("MatMul", ["f", "M"], ["y"]),
    ]
    return _model(
        nodes, [_init("W", _w(3, 2, 3, 3)), _init("M", _w(48, 4)), *i1, *i2], [1, 2, 4, 4], [1, 4]
    )


def _clip_constants() -> onnx.ModelProto:
    nodes = [
        helper.make_node("Gemm", ["x", "W", "b"], ["h"], transB=1),
        _const_node("lo", -0.5),
        _const_node("hi", 0.8),
        helper.make_node("Clip", ["h", "lo", "hi"], ["c"]),  # HardTanh(-0.5, 0.8)
        helper.make_node("MatMul", ["c", "W2"], ["h2"]),
        _const_node("zero", 0.0),
        helper.make_node("Clip", ["h2", "zero"], ["c2"]),  # ReLU
        helper.make_node("MatMul", ["c2", "W3"], ["h3"]),
        _const_node("lo3", 0.3),
        helper.make_node("Clip", ["h3", "lo3"], ["c3"]),  # one-sided: relu(v - 0.3) + 0.3
        helper.make_node("MatMul", ["c3", "W4"], ["h4"]),
        helper.make_node("Clip", ["h4", "", "hi"], ["y"]),  # max only
    ]
    inits = [
        _init("W", _w(6, 5)),
        _init("b", _w(6)),
        _init("W2", _w(6, 6)),
        _init("W3", _w(6, 4)),
        _init("W4", _w(4, 3)),
    ]
    return _model(nodes, inits, [1, 5], [1, 3])


def _clip_attributes() -> onnx.ModelProto:
    nodes = [
        helper.make_node("MatMul", ["x", "W"], ["h"]),
        helper.make_node("Clip", ["h"], ["c"], min=-1.0, max=1.0),
        helper.make_node("MatMul", ["c", "W2"], ["y"]),
    ]
    return _model(nodes, [_init("W", _w(3, 4)), _init("W2", _w(4, 2))], [1, 3], [1, 2], opset=6)


def _activations() -> onnx.ModelProto:
    nodes = [
        helper.make_node("MatMul", ["x", "W1"], ["a"]),
        helper.make_node("LeakyRelu", ["a"], ["b"], alpha=0.2),
        helper.make_node("MatMul", ["b", "W2"], ["c"]),
        helper.make_node("Sigmoid", ["c"], ["d"]),
        helper.make_node("MatMul", ["d", "W3"], ["e"]),
        helper.make_node("Tanh", ["e"], ["f"]),
        helper.make_node("Identity", ["f"], ["y"]),
    ]
    inits = [_init("W1", _w(4, 6)), _init("W2", _w(6, 5)), _init("W3", _w(5, 3))]
    return _model(nodes, inits, ["N", 4], ["N", 3])


def _reshapes() -> onnx.ModelProto:
    nodes = [
        helper.make_node("Unsqueeze", ["x", "ax1"], ["u"]),  # (1, 6) -> (1, 1, 6)
        helper.make_node("Reshape", ["u", "s123"], ["r"]),  # (1, 2, 3)
        helper.make_node("Unsqueeze", ["r", "ax3"], ["u2"]),  # (1, 2, 3, 1)
        helper.make_node("Squeeze", ["u2", "ax3"], ["s"]),  # (1, 2, 3)
        helper.make_node("MatMul", ["s", "W"], ["m"]),  # (1, 2, 4): kron(I_2, W^T)
        helper.make_node("Reshape", ["m", "s0m1"], ["f"]),  # (1, 8) via [0, -1]
        helper.make_node("Relu", ["f"], ["g"]),
        helper.make_node("Reshape", ["g", "s8"], ["v"]),  # (8,): rank-1, no batch
        helper.make_node("MatMul", ["W2", "v"], ["y"]),  # variable on the right: (2,)
    ]
    inits = [
        _init("ax1", [1], np.int64),
        _init("ax3", [3], np.int64),
        _init("s123", [1, 2, 3], np.int64),
        _init("s0m1", [0, -1], np.int64),
        _init("s8", [8], np.int64),
        _init("W", _w(3, 4)),
        _init("W2", _w(2, 8)),
    ]
    return _model(nodes, inits, [1, 6], [2])


def _arith() -> onnx.ModelProto:
    nodes = [
        helper.make_node("Sub", ["x", "mean"], ["a"]),
        helper.make_node("Div", ["a", "std"], ["b"]),
        helper.make_node("Mul", ["scale", "b"], ["c"]),  # constant first
        helper.make_node("Sub", ["one", "c"], ["d"]),  # constant - variable
        helper.make_node("Add", ["d", "shift"], ["e"]),
        helper.make_node("Relu", ["e"], ["f"]),
        helper.make_node("Mul", ["f", "two"], ["g"]),  # scalar
        helper.make_node("Div", ["g", "rows"], ["y"]),  # (1, 3) / (2, 1) broadcasts to (2, 3)
    ]
    inits = [
        _init("mean", _w(1, 3)),
        _init("std", RNG.uniform(0.5, 2, (3,)).astype(np.float32)),
        _init("scale", _w(3)),
        _init("one", 1.0),
        _init("shift", _w(1, 3)),
        _init("two", 2.0),
        _init("rows", [[2.0], [-4.0]]),
    ]
    return _model(nodes, inits, [1, 3], [2, 3])


def _dequantized_weights() -> onnx.ModelProto:
    wq = RNG.integers(-128, 128, size=(5, 4)).astype(np.int8)
    nodes = [
        # per-axis (axis=1: one scale per output column) int8 weights
        helper.make_node("DequantizeLinear", ["Wq", "Ws", "Wz"], ["W"], axis=1),
        # per-tensor uint8 bias, via QuantizeLinear of a float initializer
        helper.make_node("QuantizeLinear", ["bf", "bs", "bz"], ["bq"]),
        helper.make_node("DequantizeLinear", ["bq", "bs", "bz"], ["b"]),
        helper.make_node("MatMul", ["x", "W"], ["h"]),
        helper.make_node("Add", ["h", "b"], ["a"]),
        helper.make_node("Relu", ["a"], ["r"]),
        helper.make_node("Gemm", ["r", "W2"], ["y"], transB=1),
    ]
    inits = [
        _init("Wq", wq, np.int8),
        _init("Ws", RNG.uniform(0.001, 0.02, 4)),
        _init("Wz", RNG.integers(-5, 5, 4), np.int8),
        _init("bf", _w(4)),
        _init("bs", 0.01),
        _init("bz", 128, np.uint8),
        _init("W2", _w(3, 4)),
    ]
    return _model(nodes, inits, [1, 5], [1, 3])


def _conv1d() -> onnx.ModelProto:
    nodes = [
        helper.make_node("Conv", ["x", "W", "b"], ["c"], pads=[2, 1], strides=[2]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("Flatten", ["r"], ["y"]),
    ]
    return _model(nodes, [_init("W", _w(2, 3, 4)), _init("b", _w(2))], [1, 3, 9], [1, 10])


SYNTHETIC: dict[str, Callable[[], onnx.ModelProto]] = {
    "gemm_transA_alpha_beta": _gemm_trans_a,
    "gemm_variable_B": _gemm_var_b,
    "conv_groups_pads_strides_dilations": _conv_groups,
    "conv1d": _conv1d,
    "batchnorm": _batchnorm,
    "clip_constant_nodes": _clip_constants,
    "clip_attributes_opset6": _clip_attributes,
    "leakyrelu_sigmoid_tanh": _activations,
    "reshape_squeeze_unsqueeze": _reshapes,
    "sub_div_mul_by_constants": _arith,
    "dequantize_per_axis": _dequantized_weights,
}


@pytest.mark.parametrize("build", SYNTHETIC.values(), ids=SYNTHETIC.keys())
def test_synthetic_onnx_matches_onnxruntime(
    build: Callable[[], onnx.ModelProto], tmp_path: Path
) -> None:
    _check_against_ort(_save(build(), tmp_path))


def test_clip_lowering_layers(tmp_path: Path) -> None:
    net = from_onnx(_clip_constants())
    acts = [layer for layer in net.layers if not isinstance(layer, Dense)]
    assert acts == [HardTanh(-0.5, float(np.float32(0.8))), ReLU(), ReLU(), ReLU()]
    assert net.name == "test"
    assert net.source is None
    leaky = from_onnx(_activations())
    assert LeakyReLU(float(np.float32(0.2))) in leaky.layers


def test_batchnorm_is_folded() -> None:
    net = from_onnx(_batchnorm())
    assert [type(layer).__name__ for layer in net.layers] == ["Dense", "ReLU", "Dense"]


def test_dequantized_weights_are_exact(tmp_path: Path) -> None:
    """Q/DQ weights fold to the same float32 values onnxruntime uses: error ~ float32 matmul."""
    path = _save(_dequantized_weights(), tmp_path)
    net = from_onnx(path, name="qdq")
    assert net.name == "qdq"
    model = onnx.load(str(path))
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    expected = (inits["Wq"].astype(np.float32) - inits["Wz"].astype(np.float32)) * inits["Ws"]
    np.testing.assert_array_equal(net.layers[0].weight, expected.T.astype(np.float64))


def test_graph_input_with_initializer_is_constant(tmp_path: Path) -> None:
    model = _model(
        [helper.make_node("MatMul", ["x", "W"], ["y"])],
        [_init("W", _w(3, 2))],
        [1, 3],
        [1, 2],
        inputs=[
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3]),
            helper.make_tensor_value_info("W", TensorProto.FLOAT, [3, 2]),
        ],
    )
    _check_against_ort(_save(model, tmp_path))


def test_from_bytes_and_model_proto_agree(tmp_path: Path) -> None:
    model = _gemm_trans_a()
    path = _save(model, tmp_path, "gemm")
    a, b, c = from_onnx(path), from_onnx(model), from_onnx(model.SerializeToString())
    assert a == b == c
    assert a.fingerprint() == b.fingerprint()
    assert a.name == "gemm"
    assert a.source == str(path)


# --------------------------------------------------------------------------------------------
# torch exports
# --------------------------------------------------------------------------------------------


def _torch_model() -> Any:
    torch = pytest.importorskip("torch")
    from torch import nn

    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 3, 3, stride=2, padding=1),
        nn.BatchNorm2d(3),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(48, 20),
        nn.Hardtanh(),
        nn.Linear(20, 16),
        nn.Sigmoid(),
        nn.Linear(16, 12),
        nn.Tanh(),
        nn.Linear(12, 10),
        nn.LeakyReLU(0.1),
        nn.Linear(10, 4),
    )
    bn: Any = model[1]
    bn.running_mean.uniform_(-0.5, 0.5)
    bn.running_var.uniform_(0.5, 2.0)
    bn.weight.data.uniform_(0.5, 1.5)
    bn.bias.data.uniform_(-0.5, 0.5)
    return model.eval()


@pytest.mark.parametrize("dynamo", [False, True], ids=["legacy", "dynamo"])
def test_torch_export_matches_onnxruntime(dynamo: bool, tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    model = _torch_model()
    path = tmp_path / "exported.onnx"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(model, (torch.zeros(1, 1, 8, 8),), str(path), dynamo=dynamo)
    except Exception as err:  # exporter missing or broken in this environment
        pytest.skip(f"torch.onnx.export(dynamo={dynamo}) failed here: {type(err).__name__}: {err}")
    _check_against_ort(path, n=300)
    net = from_onnx(path)
    x = np.random.default_rng(3).uniform(-1, 1, size=(50, 64))
    with torch.no_grad():
        ref = model.double()(torch.from_numpy(x.reshape(50, 1, 8, 8))).numpy()
    np.testing.assert_allclose(net.forward(x), ref, rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------------------------
# from_torch
# --------------------------------------------------------------------------------------------


def _assert_matches_torch(model: Any, input_shape: tuple[int, ...], n: int = 64) -> Any:
    torch = pytest.importorskip("torch")
    net = from_torch(model, input_shape)
    assert net.input_shape == input_shape
    x = np.random.default_rng(5).uniform(-1, 1, size=(n, net.n_inputs))
    with torch.no_grad():
        ref = model.double()(torch.from_numpy(x.reshape(n, *input_shape))).numpy()
    np.testing.assert_allclose(net.forward(x), ref.reshape(n, -1), rtol=1e-9, atol=1e-10)
    return net


def test_from_torch_conv_batchnorm() -> None:
    model = _torch_model()
    net = _assert_matches_torch(model, (1, 8, 8))
    # Conv + BatchNorm folded into one Dense; Hardtanh kept as HardTanh
    assert [type(layer).__name__ for layer in net.layers][:4] == [
        "Dense",
        "ReLU",
        "Dense",
        "HardTanh",
    ]


def test_from_torch_conv_variants() -> None:
    torch = pytest.importorskip("torch")
    from torch import nn

    torch.manual_seed(1)
    model = nn.Sequential(
        nn.Conv2d(4, 6, (3, 2), stride=(2, 1), padding=(1, 2), dilation=(1, 2), groups=2),
        nn.ReLU6(),
        nn.Conv2d(6, 3, 3, padding="same"),
        nn.Flatten(),
        nn.Dropout(0.5),
        nn.Identity(),
    ).eval()
    _assert_matches_torch(model, (4, 5, 6))
    conv1d = nn.Sequential(
        nn.Conv1d(2, 3, 3, stride=2, padding=1), nn.BatchNorm1d(3), nn.Flatten()
    ).eval()
    bn: Any = conv1d[1]
    bn.running_var.uniform_(0.5, 2.0)
    _assert_matches_torch(conv1d, (2, 9))


def test_from_torch_nested_and_custom_module() -> None:
    torch = pytest.importorskip("torch")
    from torch import nn

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(5, 7)
            self.act = nn.Tanh()

        def forward(self, x: Any) -> Any:
            return self.act(self.fc(x))

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = nn.Sequential(Block(), nn.Sequential(nn.Linear(7, 7), nn.ReLU()))
            self.head = nn.Linear(7, 3)

        def forward(self, x: Any) -> Any:
            return self.head(self.body(x))

    torch.manual_seed(2)
    net = _assert_matches_torch(Net().eval(), (5,))
    assert net.name == "Net"
    # Linear on a (2, 5) feature tensor acts on the last axis
    _assert_matches_torch(nn.Sequential(nn.Linear(5, 3), nn.ReLU(), nn.Flatten()), (2, 5))


def test_from_torch_pruned() -> None:
    torch = pytest.importorskip("torch")
    from torch import nn
    from torch.nn.utils import prune

    torch.manual_seed(3)
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 2))
    prune.l1_unstructured(model[0], "weight", amount=0.5)
    prune.l1_unstructured(model[2], "weight", amount=0.3)
    layer: Any = model[0]
    effective = layer.weight_orig * layer.weight_mask
    assert torch.equal(layer.weight, effective)  # module.weight is the masked product
    net = from_torch(model, (6,))
    np.testing.assert_array_equal(net.layers[0].weight, effective.detach().double().numpy())
    assert np.count_nonzero(net.layers[0].weight) == 24
    # editing weight_orig without a forward pass: the importer still uses orig * mask
    with torch.no_grad():
        layer.weight_orig.mul_(2.0)
    _assert_matches_torch(model, (6,))


@settings(max_examples=25, deadline=None)
@given(
    widths=st.lists(st.integers(1, 9), min_size=2, max_size=5),
    acts=st.lists(
        st.sampled_from(["relu", "leaky", "hardtanh", "sigmoid", "tanh"]), min_size=4, max_size=4
    ),
    seed=st.integers(0, 2**16),
)
def test_from_torch_random_mlps(widths: list[int], acts: list[str], seed: int) -> None:
    torch = pytest.importorskip("torch")
    from torch import nn

    torch.manual_seed(seed)
    make: dict[str, Callable[[], Any]] = {
        "relu": nn.ReLU,
        "leaky": lambda: nn.LeakyReLU(0.05),
        "hardtanh": lambda: nn.Hardtanh(-0.5, 0.7),
        "sigmoid": nn.Sigmoid,
        "tanh": nn.Tanh,
    }
    layers: list[Any] = []
    for i, (a, b) in enumerate(itertools.pairwise(widths)):
        layers.append(nn.Linear(a, b))
        if i < len(widths) - 2:
            layers.append(make[acts[i]]())
    _assert_matches_torch(nn.Sequential(*layers), (widths[0],), n=16)


@settings(max_examples=20, deadline=None)
@given(
    c_in=st.integers(1, 3),
    groups=st.sampled_from([1, 2]),
    k=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    stride=st.tuples(st.integers(1, 3), st.integers(1, 2)),
    pad=st.tuples(st.integers(0, 2), st.integers(0, 2)),
    dil=st.tuples(st.integers(1, 2), st.integers(1, 2)),
    seed=st.integers(0, 2**16),
)
def test_conv_matrix_matches_torch_conv2d(
    c_in: int,
    groups: int,
    k: tuple[int, int],
    stride: tuple[int, int],
    pad: tuple[int, int],
    dil: tuple[int, int],
    seed: int,
) -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(seed)
    c = c_in * groups
    m = 2 * groups
    weight = rng.normal(size=(m, c_in, *k))
    bias = rng.normal(size=m)
    x = rng.normal(size=(3, c, 7, 6))
    matrix, b, out_shape = conv_matrix(
        weight, bias, (c, 7, 6), strides=stride, pads=pad + pad, dilations=dil, group=groups
    )
    ref = torch.nn.functional.conv2d(
        torch.from_numpy(x),
        torch.from_numpy(weight),
        torch.from_numpy(bias),
        stride=stride,
        padding=pad,
        dilation=dil,
        groups=groups,
    ).numpy()
    assert ref.shape[1:] == out_shape
    np.testing.assert_allclose(x.reshape(3, -1) @ matrix.T + b, ref.reshape(3, -1), atol=1e-12)


def test_from_torch_unsupported_module() -> None:
    pytest.importorskip("torch")
    from torch import nn

    model = nn.Sequential(nn.Linear(4, 4), nn.Softmax(dim=1))
    with pytest.raises(UnsupportedLayerError, match=r"Softmax.*supported: .*Linear"):
        from_torch(model, (4,))


def test_from_torch_rejects_non_chain_forward() -> None:
    torch = pytest.importorskip("torch")
    from torch import nn

    class Residual(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc1 = nn.Linear(4, 4)
            self.fc2 = nn.Linear(4, 4)

        def forward(self, x: Any) -> Any:
            return x + self.fc2(torch.relu(self.fc1(x)))

    with pytest.raises(InvalidNetworkError, match="disagrees with its forward"):
        from_torch(Residual(), (4,))


# --------------------------------------------------------------------------------------------
# onnxruntime_forward
# --------------------------------------------------------------------------------------------


def test_onnxruntime_forward_batched_and_cached(tmp_path: Path) -> None:
    path = _save(_activations(), tmp_path)  # symbolic batch dim "N"
    x = np.random.default_rng(0).uniform(-1, 1, size=(7, 4))
    before = _ort_session.cache_info().hits
    out = onnxruntime_forward(path, x)
    out_again = onnxruntime_forward(str(path), x)
    assert _ort_session.cache_info().hits > before
    assert out.shape == (7, 3)
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, out_again)
    np.testing.assert_allclose(onnxruntime_forward(path, x[0]), out[:1])
    with pytest.raises(InvalidNetworkError, match="features"):
        onnxruntime_forward(path, np.zeros((2, 5)))


# --------------------------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------------------------


def test_truncated_file(tmp_path: Path) -> None:
    data = _save(_conv_groups(), tmp_path).read_bytes()
    bad = tmp_path / "truncated.onnx"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(InvalidNetworkError, match=re.escape(str(bad))):
        from_onnx(bad)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidNetworkError, match="no such ONNX file"):
        from_onnx(tmp_path / "nope.onnx")


def test_unsupported_operator(tmp_path: Path) -> None:
    nodes = [
        helper.make_node("MatMul", ["x", "W"], ["h"], name="fc1"),
        helper.make_node("Erf", ["h"], ["s"], name="the_erf"),
        helper.make_node("MatMul", ["s", "W2"], ["y"], name="fc2"),
    ]
    path = _save(
        _model(nodes, [_init("W", _w(3, 4)), _init("W2", _w(4, 2))], [1, 3], [1, 2]),
        tmp_path,
        "erf",
    )
    with pytest.raises(UnsupportedLayerError, match=r"erf\.onnx.*Erf.*the_erf") as info:
        from_onnx(path)
    message = str(info.value)
    assert "supported:" in message and "Gemm" in message and "Conv" in message
    assert "\n" not in message


def test_nan_weights(tmp_path: Path) -> None:
    w = _w(3, 4)
    w[1, 2] = np.nan
    nodes = [helper.make_node("Gemm", ["x", "W"], ["y"], name="fc")]
    path = _save(_model(nodes, [_init("W", w)], [1, 3], [1, 4]), tmp_path, "nan")
    with pytest.raises(InvalidNetworkError, match=r"nan\.onnx.*'fc'.*NaN"):
        from_onnx(path)


def test_shape_mismatch(tmp_path: Path) -> None:
    nodes = [helper.make_node("MatMul", ["x", "W"], ["y"], name="mm")]
    path = _save(_model(nodes, [_init("W", _w(4, 3))], [1, 5], [1, 3]), tmp_path, "mismatch")
    with pytest.raises(InvalidNetworkError, match=r"mismatch\.onnx.*shape mismatch") as info:
        from_onnx(path)
    assert "\n" not in str(info.value)


def test_declared_output_shape_mismatch(tmp_path: Path) -> None:
    nodes = [helper.make_node("MatMul", ["x", "W"], ["y"])]
    path = _save(_model(nodes, [_init("W", _w(5, 3))], [1, 5], [1, 4]), tmp_path, "outshape")
    with pytest.raises(InvalidNetworkError, match=r"outshape\.onnx.*declared"):
        from_onnx(path)


def test_two_inputs(tmp_path: Path) -> None:
    nodes = [helper.make_node("Add", ["x", "x2"], ["y"])]
    inputs = [
        helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3]),
        helper.make_tensor_value_info("x2", TensorProto.FLOAT, [1, 3]),
    ]
    path = _save(_model(nodes, [], [1, 3], [1, 3], inputs=inputs), tmp_path, "two")
    with pytest.raises(InvalidNetworkError, match=r"two\.onnx.*exactly one .*input.*found 2"):
        from_onnx(path)


def test_two_outputs(tmp_path: Path) -> None:
    nodes = [helper.make_node("MatMul", ["x", "W"], ["y"]), helper.make_node("Relu", ["y"], ["z"])]
    outputs = [
        helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3]),
        helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, 3]),
    ]
    model = _model(nodes, [_init("W", _w(3, 3))], [1, 3], None, outputs=outputs)
    with pytest.raises(InvalidNetworkError, match="exactly one output"):
        from_onnx(_save(model, tmp_path))


def test_branching_graph(tmp_path: Path) -> None:
    nodes = [
        helper.make_node("MatMul", ["x", "W"], ["h"]),
        helper.make_node("Relu", ["h"], ["r"]),
        helper.make_node("Add", ["h", "r"], ["y"], name="residual"),
    ]
    path = _save(_model(nodes, [_init("W", _w(3, 3))], [1, 3], [1, 3]), tmp_path, "branch")
    # h + relu(h): h is carried through the ReLU layer as relu(h) - relu(-h)
    net = from_onnx(path)
    x = np.random.default_rng(0).normal(size=(8, 3))
    np.testing.assert_allclose(net.forward(x), onnxruntime_forward(path, x), rtol=1e-5, atol=1e-6)
    nodes[1] = helper.make_node("Sigmoid", ["h"], ["r"], name="squash")
    path = _save(_model(nodes, [_init("W", _w(3, 3))], [1, 3], [1, 3]), tmp_path, "branch2")
    with pytest.raises(UnsupportedLayerError, match=r"branch2\.onnx.*'squash' \(Sigmoid\)"):
        from_onnx(path)


def test_cyclic_graph(tmp_path: Path) -> None:
    nodes = [
        helper.make_node("Add", ["x", "z"], ["h"]),
        helper.make_node("Relu", ["h"], ["r"]),
        helper.make_node("Identity", ["r"], ["z"]),
        helper.make_node("Relu", ["z"], ["y"]),
    ]
    path = _save(_model(nodes, [], [1, 3], [1, 3]), tmp_path, "cycle")
    with pytest.raises(InvalidNetworkError, match=r"cycle\.onnx: the graph has a cycle"):
        from_onnx(path)


def test_division_by_variable_is_unsupported(tmp_path: Path) -> None:
    nodes = [helper.make_node("Div", ["one", "x"], ["y"], name="recip")]
    path = _save(_model(nodes, [_init("one", 1.0)], [1, 3], [1, 3]), tmp_path, "recip")
    with pytest.raises(UnsupportedLayerError, match=r"recip\.onnx.*'recip'.*not affine"):
        from_onnx(path)


def test_wrong_argument_type() -> None:
    with pytest.raises(InvalidNetworkError, match="expected a path"):
        from_onnx(42)


# --------------------------------------------------------------------------------------------
# the topological order that replaced networkx
# --------------------------------------------------------------------------------------------


def _random_graph(rng: np.random.Generator, n: int, acyclic: bool) -> list[list[int]]:
    edges: list[list[int]] = [[] for _ in range(n)]
    perm = rng.permutation(n)  # vertex names independent of the order
    for _ in range(int(rng.integers(0, 3 * n + 1))):
        a, b = (int(v) for v in rng.integers(0, n, size=2))
        if acyclic:
            a, b = min(a, b), max(a, b)
            if a == b:
                continue
        edges[int(perm[a])].append(int(perm[b]))
    return edges


def test_topological_order_is_networkx_order() -> None:
    """Same order as networkx.topological_sort on the same graph built in the same order (so
    the importer's error messages name the same nodes), and the same cycle verdicts."""
    nx = pytest.importorskip("networkx")
    rng = np.random.default_rng(15)
    cycles = 0
    for trial in range(400):
        n = int(rng.integers(1, 12))
        edges = _random_graph(rng, n, acyclic=trial % 3 != 0)
        g = nx.DiGraph()
        g.add_nodes_from(range(n))
        succ: list[dict[int, None]] = [{} for _ in range(n)]
        pred: list[dict[int, None]] = [{} for _ in range(n)]
        for a in range(n):
            for b in edges[a]:
                g.add_edge(a, b)
                succ[a][b] = None
                pred[b][a] = None
        got = _topological_order(succ, pred)
        if nx.is_directed_acyclic_graph(g):
            assert got == list(nx.topological_sort(g))
        else:
            cycles += 1
            assert got is None
    assert cycles > 20


# --------------------------------------------------------------------------------------------
# corrupt files: one-line errors, never another exception or a warning
# --------------------------------------------------------------------------------------------


def _dense_nodes() -> tuple[list[onnx.NodeProto], list[TensorProto]]:
    nodes = [helper.make_node("MatMul", ["x", "W"], ["h"]), helper.make_node("Relu", ["h"], ["y"])]
    return nodes, [_init("W", np.ones((3, 2)))]


@pytest.mark.parametrize("data_type", [0, 97], ids=["undefined", "unknown"])
def test_unknown_element_type_is_invalid(tmp_path: Path, data_type: int) -> None:
    """onnx raises TypeError (UNDEFINED) or KeyError (codes it does not know) for these."""
    nodes, inits = _dense_nodes()
    inits[0].data_type = data_type
    path = _save(_model(nodes, inits, [1, 3], [1, 2]), tmp_path, "etype")
    with pytest.raises(
        InvalidNetworkError,
        match=rf"etype\.onnx: initializer tensor 'W' has an unknown element type {data_type} ",
    ):
        from_onnx(path)


def test_signalling_nan_weight_is_rejected_without_a_warning(tmp_path: Path) -> None:
    """A float32 signalling NaN (a flipped exponent bit can make one) raises numpy's
    "invalid value" warning when widened to float64; the importer rejects it quietly."""
    nodes, inits = _dense_nodes()
    weights = np.ones((3, 2), np.float32)
    weights.view(np.uint32)[1, 1] = 0x7FA00000  # signalling NaN
    inits[0] = numpy_helper.from_array(weights, "W")
    path = _save(_model(nodes, inits, [1, 3], [1, 2]), tmp_path, "snan")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(InvalidNetworkError, match="contains NaN values"):
            from_onnx(path)


@pytest.mark.parametrize(
    ("attrs", "shown"),
    [
        ({"strides": [0, 1]}, "strides (0, 1)"),
        ({"strides": [0, 1], "auto_pad": "SAME_UPPER"}, "strides (0, 1)"),
        ({"dilations": [1, -1]}, "dilations (1, -1)"),
        ({"strides": [1]}, "strides (1,)"),
        ({"pads": [0, 0, 0]}, "pads (0, 0, 0)"),
    ],
    ids=["zero-stride", "zero-stride-same", "negative-dilation", "short-strides", "short-pads"],
)
def test_corrupt_conv_geometry_is_invalid(
    tmp_path: Path, attrs: dict[str, Any], shown: str
) -> None:
    node = helper.make_node("Conv", ["x", "K"], ["y"], **attrs)
    inits = [_init("K", np.ones((2, 1, 3, 3)))]
    path = _save(_model([node], inits, [1, 1, 6, 6], None), tmp_path, "conv")
    with pytest.raises(InvalidNetworkError, match=re.escape(shown)):
        from_onnx(path)
