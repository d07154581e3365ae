"""Per-operator tests of the ONNX importer's index maps, linear operators and constant folding.

Every case is a real ONNX file built with ``onnx.helper``: the imported network's forward pass
must match onnxruntime on random inputs, and sound bounds must contain sampled outputs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from nncert.verify.bounds import spec_bounds
from nncert.verify.errors import UnsupportedLayerError
from nncert.verify.importers import from_onnx, onnxruntime_forward

X_SHAPE = [1, 2, 3, 4]


def _init(name: str, value: Any, dtype: Any = np.float32) -> TensorProto:
    return numpy_helper.from_array(np.asarray(value, dtype=dtype), name)


def _i64(name: str, value: Any) -> TensorProto:
    return _init(name, value, np.int64)


def _save(
    tmp_path: Path,
    nodes: list[onnx.NodeProto],
    inits: list[TensorProto],
    *,
    in_shape: list[int] | None = None,
    opset: int = 13,
    relu: bool = True,
) -> Path:
    """``x -> nodes -> t -> (Relu) -> y`` as a real file (the nodes' last output is ``t``)."""
    tail = [helper.make_node("Relu" if relu else "Identity", ["t"], ["y"])]
    graph = helper.make_graph(
        [*nodes, *tail],
        "ops",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape or X_SHAPE)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    path = tmp_path / "model.onnx"
    onnx.save(model, str(path))
    return path


def _check(path: Path) -> None:
    """Forward pass equals onnxruntime; CROWN and IBP bounds contain sampled outputs."""
    net = from_onnx(path)
    rng = np.random.default_rng(7)
    x = rng.uniform(-1.0, 1.0, size=(64, net.n_inputs))
    ref = onnxruntime_forward(path, x)
    got = net.forward(x)
    assert got.shape == ref.shape
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)
    center = rng.uniform(-0.5, 0.5, size=net.n_inputs)
    lo, hi = center - 0.1, center + 0.1
    samples = rng.uniform(lo, hi, size=(200, net.n_inputs))
    outs = net.forward(samples)
    eye = np.eye(outs.shape[1])
    for method in ("ibp", "crown"):
        lower, upper = spec_bounds(net, (lo, hi), eye, method=method)
        assert np.all(lower <= outs.min(axis=0)), method
        assert np.all(upper >= outs.max(axis=0)), method


def _node(op: str, inputs: list[str], outputs: list[str] | None = None, **attrs: Any) -> Any:
    return helper.make_node(op, inputs, outputs or ["t"], **attrs)


W_CHANNEL = np.arange(1, 9, dtype=np.float32).reshape(1, 2, 1, 4) / 4 - 1

#: name -> (nodes, initializers, opset, input shape)
CASES: dict[str, tuple[list[Any], list[TensorProto], int, list[int] | None]] = {
    "transpose": ([_node("Transpose", ["x"], perm=[0, 2, 3, 1])], [], 13, None),
    "slice": (
        [_node("Slice", ["x", "s", "e", "a", "st"])],
        [_i64("s", [0, 1]), _i64("e", [2, 100]), _i64("a", [1, 3]), _i64("st", [1, 2])],
        13,
        None,
    ),
    "slice_negative_step": (
        [_node("Slice", ["x", "s", "e", "a", "st"])],
        [_i64("s", [-1]), _i64("e", [-100]), _i64("a", [2]), _i64("st", [-1])],
        13,
        None,
    ),
    "slice_opset9": ([_node("Slice", ["x"], starts=[1], ends=[3], axes=[3])], [], 9, None),
    "gather": ([_node("Gather", ["x", "i"], axis=3)], [_i64("i", [3, 0, 0, -2])], 13, None),
    "gather_scalar": ([_node("Gather", ["x", "i"], axis=1)], [_i64("i", 1)], 13, None),
    "pad_constant": (
        [_node("Pad", ["x", "p", "v"])],
        [_i64("p", [0, 0, 1, 2, 0, 0, 2, 1]), _init("v", 0.5)],
        13,
        None,
    ),
    "pad_reflect": (
        [_node("Pad", ["x", "p"], mode="reflect")],
        [_i64("p", [0, 0, 1, 2, 0, 0, 1, 1])],
        13,
        None,
    ),
    "pad_edge_axes": (
        [_node("Pad", ["x", "p", "", "a"], mode="edge")],
        [_i64("p", [2, -1]), _i64("a", [3])],
        18,
        None,
    ),
    "concat_const": (
        [_node("Concat", ["c", "x"], axis=1)],
        [_init("c", np.full((1, 1, 3, 4), -0.25))],
        13,
        None,
    ),
    "expand": ([_node("Expand", ["x", "s"])], [_i64("s", [1, 2, 3, 4])], 13, [1, 2, 3, 1]),
    # an index map with repeated entries composed into a matrix (sums of columns)
    "expand_matmul": (
        [_node("Expand", ["x", "s"], ["e"]), _node("MatMul", ["e", "w"])],
        [_i64("s", [1, 2, 3, 4]), _init("w", np.linspace(-1, 1, 12).reshape(4, 3))],
        13,
        [1, 2, 3, 1],
    ),
    # the verivital layout: Relu, Pad, AveragePool, Flatten, Gemm in one segment
    "relu_pad_avgpool_gemm": (
        [
            _node("Relu", ["x"], ["r"]),
            _node("Pad", ["r", "p"], ["pd"]),
            _node("AveragePool", ["pd"], ["ap"], kernel_shape=[2, 2], strides=[2, 2]),
            _node("Flatten", ["ap"], ["f"]),
            _node("Gemm", ["f", "w"], transB=1),
        ],
        [_i64("p", [0, 0, 1, 0, 0, 0, 0, 0]), _init("w", np.linspace(-1, 1, 48).reshape(6, 8))],
        13,
        None,
    ),
    "neg": ([_node("Neg", ["x"])], [], 13, None),
    "sub_from_const": ([_node("Sub", ["c", "x"])], [_init("c", W_CHANNEL)], 13, None),
    "div_const": ([_node("Div", ["x", "c"])], [_init("c", [3.0, -7.0, 0.1, 9.0])], 13, None),
    "cast_float": (
        [
            _node("Cast", ["x"], ["d"], to=TensorProto.DOUBLE),
            _node("Cast", ["d"], to=TensorProto.FLOAT),
        ],
        [],
        13,
        None,
    ),
    "reduce_sum": ([_node("ReduceSum", ["x", "a"], keepdims=0)], [_i64("a", [1, -1])], 13, None),
    "reduce_mean": ([_node("ReduceMean", ["x"], axes=[2], keepdims=1)], [], 13, None),
    "reduce_mean_all": ([_node("ReduceMean", ["x"])], [], 13, None),
    "average_pool": (
        [_node("AveragePool", ["x"], kernel_shape=[2, 2], strides=[1, 2])],
        [],
        13,
        None,
    ),
    "average_pool_pads": (
        [_node("AveragePool", ["x"], kernel_shape=[3, 3], pads=[1, 1, 1, 1])],
        [],
        13,
        None,
    ),
    "average_pool_count_pad": (
        [_node("AveragePool", ["x"], kernel_shape=[3, 3], pads=[1, 0, 1, 1], count_include_pad=1)],
        [],
        13,
        None,
    ),
    "global_average_pool": ([_node("GlobalAveragePool", ["x"])], [], 13, None),
    "batchnorm": (
        [_node("BatchNormalization", ["x", "g", "b", "m", "v"])],
        [
            _init("g", [0.5, 2.0]),
            _init("b", [0.1, -0.2]),
            _init("m", [0.3, 0.0]),
            _init("v", [1.5, 0.2]),
        ],
        13,
        None,
    ),
    "dropout_identity": (
        [
            _node("Dropout", ["x"]),
        ],
        [],
        13,
        None,
    ),
    # a shape subgraph as PyTorch exports ``x.view(x.size(0), -1)``, folded to constants
    "shape_subgraph_reshape": (
        [
            _node("Shape", ["x"], ["shp"]),
            _node("Gather", ["shp", "zero"], ["n"], axis=0),
            _node("Unsqueeze", ["n", "ax0"], ["n1"]),
            _node("Concat", ["n1", "minus1"], ["target"], axis=0),
            _node("Reshape", ["x", "target"]),
        ],
        [_i64("zero", 0), _i64("ax0", [0]), _i64("minus1", [-1])],
        13,
        None,
    ),
    # ConstantOfShape / Cast / Equal / Where / Expand / Range / Split / Slice on constants only
    "constant_folding": (
        [
            _node("ConstantOfShape", ["four"], ["ones"], value=_i64("one", [1])),
            _node("Cast", ["ones"], ["onesf"], to=TensorProto.FLOAT),
            _node("Range", ["r0", "r4", "r1"], ["rng"]),
            _node("Equal", ["rng", "two"], ["is2"]),
            _node("Where", ["is2", "neg", "onesf"], ["w"]),
            _node("Split", ["w", "splits"], ["w_a", "w_b"], axis=0),
            _node("Concat", ["w_b", "w_a"], ["w2"], axis=0),
            _node("Slice", ["w2", "s0", "s4"], ["w3"]),
            _node("Expand", ["w3", "full"], ["w4"]),
            _node("Mul", ["x", "w4"]),
        ],
        [
            _i64("four", [4]),
            _i64("r0", 0),
            _i64("r4", 4),
            _i64("r1", 1),
            _i64("two", 2),
            _init("neg", -3.0),
            _i64("splits", [1, 3]),
            _i64("s0", [0]),
            _i64("s4", [4]),
            _i64("full", [1, 2, 3, 4]),
        ],
        13,
        None,
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_operator_matches_onnxruntime_and_bounds_hold(case: str, tmp_path: Path) -> None:
    nodes, inits, opset, in_shape = CASES[case]
    _check(_save(tmp_path, nodes, inits, in_shape=in_shape, opset=opset))


def test_keras_layout_transpose_conv(tmp_path: Path) -> None:
    """A channels-last input transposed to NCHW, a Conv, Relu, Transpose back, Flatten, Gemm."""
    rng = np.random.default_rng(3)
    nodes = [
        _node("Transpose", ["x"], ["nchw"], perm=[0, 3, 1, 2]),
        _node("Conv", ["nchw", "k", "kb"], ["c"], pads=[1, 1, 1, 1]),
        _node("Relu", ["c"], ["r"]),
        _node("Transpose", ["r"], ["nhwc"], perm=[0, 2, 3, 1]),
        _node("Flatten", ["nhwc"], ["f"]),
        _node("Gemm", ["f", "w", "b"], transB=1),
    ]
    inits = [
        _init("k", rng.normal(size=(3, 2, 3, 3))),
        _init("kb", rng.normal(size=3)),
        _init("w", rng.normal(size=(5, 4 * 5 * 3))),
        _init("b", rng.normal(size=5)),
    ]
    _check(_save(tmp_path, nodes, inits, in_shape=[1, 4, 5, 2]))


def test_mul_of_the_input_by_itself_is_imported(tmp_path: Path) -> None:
    """``x * x`` (once refused) is now one rectified-power layer (tests/verify/
    test_onnx_products.py covers products and powers in depth)."""
    _check(_save(tmp_path, [_node("Mul", ["x", "x"], name="square")], [], relu=False))


def test_unsupported_operator_is_named_in_one_line(tmp_path: Path) -> None:
    """What is still unsupported fails with one line naming the file and the operator."""
    path = _save(tmp_path, [_node("Erf", ["x"], name="gauss")], [], relu=False)
    with pytest.raises(UnsupportedLayerError) as err:
        from_onnx(path)
    message = str(err.value)
    assert "\n" not in message
    assert str(path) in message and "'gauss'" in message and "Erf" in message


# --------------------------------------------------------------------------------------------
# general DAGs whose branches are affine up to a linear merge
# --------------------------------------------------------------------------------------------

R = np.random.default_rng(11)

DAG_CASES: dict[str, tuple[list[Any], list[TensorProto]]] = {
    # two parallel Gemm branches from the input, added (CerSyVe / LinearizeNN style)
    "parallel_add": (
        [
            _node("Flatten", ["x"], ["f"]),
            _node("Gemm", ["f", "w1", "b1"], ["a"], transB=1),
            _node("Gemm", ["f", "w2", "b2"], ["b"], transB=1),
            _node("Add", ["a", "b"], ["s"]),
            _node("Relu", ["s"], ["r"]),
            _node("Gemm", ["r", "w3"], ["g"], transB=1),
            _node("Neg", ["g"], ["n"]),
            _node("MatMul", ["g", "w4"], ["m"]),
            _node("Sub", ["m", "n"]),
        ],
        [
            _init("w1", R.normal(size=(6, 24))),
            _init("b1", R.normal(size=6)),
            _init("w2", R.normal(size=(6, 24))),
            _init("b2", R.normal(size=6)),
            _init("w3", R.normal(size=(4, 6))),
            _init("w4", R.normal(size=(4, 4))),
        ],
    ),
    # a skip path through Slice concatenated with a computed branch (and a constant)
    "slice_concat_skip": (
        [
            _node("Flatten", ["x"], ["f"]),
            _node("Slice", ["f", "s", "e", "a"], ["skip"]),
            _node("MatMul", ["f", "w"], ["h"]),
            _node("Concat", ["skip", "h", "c"], ["t0"], axis=1),
            _node("Relu", ["t0"], ["r"]),
            _node("Transpose", ["r"], ["rt"], perm=[1, 0]),
            _node("Slice", ["rt", "s2", "e2"], ["r2"]),
            _node("Transpose", ["r2"], ["r3"], perm=[1, 0]),
            _node("Add", ["r3", "r3"]),
        ],
        [
            _i64("s", [3]),
            _i64("e", [7]),
            _i64("a", [1]),
            _init("w", R.normal(size=(24, 5))),
            _init("c", R.normal(size=(1, 2))),
            _i64("s2", [1]),
            _i64("e2", [10]),
        ],
    ),
    # Split of the input into branches that are recombined (Sub) and concatenated
    "split_branches": (
        [
            _node("Split", ["x", "sp"], ["p0", "p1", "p2"], axis=3),
            _node("Sub", ["p2", "p0"], ["d"]),
            _node("Concat", ["d", "p1"], ["t0"], axis=3),
            _node("Relu", ["t0"], ["r"]),
            _node("Split", ["r"], ["q0", "q1"], axis=1),
            _node("Add", ["q1", "q0"]),
        ],
        [_i64("sp", [1, 2, 1])],
    ),
    # a Shape read from a tensor that lies before an activation is still a constant
    "shape_of_old_tensor": (
        [
            _node("Shape", ["x"], ["shp"]),
            _node("Relu", ["x"], ["r"]),
            _node("Reshape", ["r", "shp"], ["t0"]),
            _node("Sub", ["t0", "c"]),
        ],
        [_init("c", R.normal(size=(1, 2, 3, 4)))],
    ),
}


@pytest.mark.parametrize("case", sorted(DAG_CASES))
def test_dag_matches_onnxruntime_and_bounds_hold(case: str, tmp_path: Path) -> None:
    nodes, inits = DAG_CASES[case]
    _check(_save(tmp_path, nodes, inits))


def test_residual_across_relu_is_carried(tmp_path: Path) -> None:
    """``x + relu(W x)``: ``x`` is carried through the ReLU as ``relu(x) - relu(-x)``."""
    nodes = [
        _node("Flatten", ["x"], ["f"]),
        _node("MatMul", ["f", "w"], ["h"]),
        _node("Relu", ["h"], ["r"]),
        _node("Add", ["f", "r"], name="residual_add"),
    ]
    _check(_save(tmp_path, nodes, [_init("w", R.normal(size=(24, 24)))]))


def test_residual_across_tanh_is_named_unsupported(tmp_path: Path) -> None:
    """``x + tanh(W x)`` cannot carry ``x`` through a Tanh layer: one line, file and node."""
    nodes = [
        _node("Flatten", ["x"], ["f"]),
        _node("MatMul", ["f", "w"], ["h"]),
        _node("Tanh", ["h"], ["r"], name="squash"),
        _node("Add", ["f", "r"], name="residual_add"),
    ]
    path = _save(tmp_path, nodes, [_init("w", R.normal(size=(24, 24)))])
    with pytest.raises(UnsupportedLayerError) as err:
        from_onnx(path)
    message = str(err.value)
    assert "\n" not in message
    assert str(path) in message and "'squash' (Tanh)" in message


def test_product_of_branches_is_imported(tmp_path: Path) -> None:
    """``x * (-x)`` (once refused as not affine) is imported by polarization."""
    nodes = [_node("Neg", ["x"], ["n"]), _node("Mul", ["x", "n"], ["t"], name="square")]
    _check(_save(tmp_path, nodes, []))
