"""MaxPool and residual (skip) connections across activations in the ONNX importer.

Both are imported exactly into the chain IR of ``Dense`` and ``ReLU`` layers:
``max(a, b) = b + relu(a - b)`` in a balanced tree, and a tensor needed after an activation is
carried through it as ``relu(x) - relu(-x)`` (only ``relu(x)`` when ``x >= 0`` is structural).
Every model is a real ONNX file built with ``onnx.helper``; the imported network must match
onnxruntime, its IBP/CROWN bounds must contain sampled outputs, and the big-M MILP optimum must
be attained by the model itself (exactness).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

from nncert.formulations.milp import encode_milp
from nncert.solvers.base import SolveStatus
from nncert.solvers.highs_solver import HighsSolver
from nncert.verify.bounds import interval_bounds, spec_bounds
from nncert.verify.errors import UnsupportedLayerError
from nncert.verify.importers import from_onnx, onnxruntime_forward
from nncert.verify.network import Dense, ReLU
from nncert.verify.spec import Box, UnsafeCase

R = np.random.default_rng(2026)


def _init(name: str, value: Any) -> TensorProto:
    return numpy_helper.from_array(np.asarray(value, dtype=np.float32), name)


def _node(op: str, inputs: list[str], outputs: list[str], **attrs: Any) -> Any:
    return helper.make_node(op, inputs, outputs, **attrs)


def _save(path: Path, nodes: list[Any], inits: list[TensorProto], in_shape: list[int]) -> Path:
    """``x -> nodes -> y`` as a real ONNX file."""
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    file = path / "model.onnx"
    onnx.save(model, str(file))
    return file


def _head(src: str, n_in: int, n_out: int = 3) -> tuple[list[Any], list[TensorProto]]:
    """Flatten + MatMul to ``n_out`` outputs (``src`` has ``n_in`` elements)."""
    return (
        [_node("Flatten", [src], ["flat"]), _node("MatMul", ["flat", "head"], ["y"])],
        [_init("head", R.normal(size=(n_in, n_out)))],
    )


def _check(file: Path, *, radius: float = 0.1, seed: int = 7) -> None:
    """Forward pass equals onnxruntime; IBP and CROWN bounds contain sampled outputs."""
    net = from_onnx(file)
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1.0, 1.0, size=(64, net.n_inputs))
    ref = onnxruntime_forward(file, x)
    got = net.forward(x)
    assert got.shape == ref.shape
    scale = max(1.0, float(np.abs(ref).max()))
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5 * scale)
    center = rng.uniform(-0.5, 0.5, size=net.n_inputs)
    lo, hi = center - radius, center + radius
    samples = np.vstack([rng.uniform(lo, hi, size=(300, net.n_inputs)), lo, hi])
    outs = net.forward(samples)
    eye = np.eye(outs.shape[1])
    for method in ("ibp", "crown"):
        lower, upper = spec_bounds(net, (lo, hi), eye, method=method)
        assert np.all(lower <= outs.min(axis=0)), method
        assert np.all(upper >= outs.max(axis=0)), method


def _conv_pool(
    tmp_path: Path, pool: dict[str, Any], *, relu: bool, channels: int = 2, size: int = 6
) -> Path:
    """``x -> Conv 3x3 (pad 1) -> [Relu] -> MaxPool(pool) -> Flatten -> MatMul``."""
    conv = _init("w", R.normal(size=(3, channels, 3, 3)))
    nodes = [_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1])]
    src = "c"
    if relu:
        nodes.append(_node("Relu", ["c"], ["r"]))
        src = "r"
    nodes.append(_node("MaxPool", [src], ["p"], name="MaxPool_0", **pool))
    # the pooled size, from onnxruntime itself
    probe = _save(
        tmp_path, [*nodes, _node("Flatten", ["p"], ["y"])], [conv], [1, channels, size, size]
    )
    n_pool = onnxruntime_forward(probe, np.zeros((1, channels * size * size))).shape[1]
    head, inits = _head("p", n_pool)
    return _save(tmp_path, nodes + head, [conv, *inits], [1, channels, size, size])


POOLS: dict[str, dict[str, Any]] = {
    "2x2_stride2": {"kernel_shape": [2, 2], "strides": [2, 2]},
    "3x3_stride1_pad1": {"kernel_shape": [3, 3], "strides": [1, 1], "pads": [1, 1, 1, 1]},
    "3x2_asym_pad_dilated": {
        "kernel_shape": [3, 2],
        "strides": [2, 1],
        "pads": [1, 0, 0, 1],
        "dilations": [1, 2],
    },
    "same_upper": {"kernel_shape": [3, 3], "strides": [2, 2], "auto_pad": "SAME_UPPER"},
    "4x4_stride4": {"kernel_shape": [4, 4], "strides": [4, 4]},
    "1x1": {"kernel_shape": [1, 1]},
}


@pytest.mark.parametrize("relu", [True, False], ids=["after_relu", "after_conv"])
@pytest.mark.parametrize("pool", sorted(POOLS))
def test_maxpool_matches_onnxruntime_and_bounds_hold(pool: str, relu: bool, tmp_path: Path) -> None:
    _check(_conv_pool(tmp_path, POOLS[pool], relu=relu))


def test_maxpool_levels_and_carried_neurons(tmp_path: Path) -> None:
    """A 2x2 window takes ceil(log2 4) = 2 ReLU layers; after a ReLU the carried values are
    known >= 0, so no relu(-b) neurons are emitted; after a plain Conv they are."""
    pool = POOLS["2x2_stride2"]
    after_relu = from_onnx(_conv_pool(tmp_path, pool, relu=True))
    widths = [layer.n_out for layer in after_relu.layers if isinstance(layer, Dense)]
    # conv 3x6x6 = 108; 27 windows of 4: level 1 = 54 differences + 54 carried b,
    # level 2 = 27 differences + 27 carried; then the head
    assert widths == [108, 108, 54, 3]
    assert sum(isinstance(layer, ReLU) for layer in after_relu.layers) == 3
    after_conv = from_onnx(_conv_pool(tmp_path, pool, relu=False))
    widths = [layer.n_out for layer in after_conv.layers if isinstance(layer, Dense)]
    # level 1 carries b of unknown sign as relu(b), relu(-b); level 2's b (a sum of relus
    # minus relu(-b)) again has an unknown sign
    assert widths == [54 + 54 + 54, 27 + 27 + 27, 3]


def test_maxpool_exact_on_negative_values(tmp_path: Path) -> None:
    """All-negative windows (the max is negative): the tree must not clip at 0."""
    nodes = [
        _node("Neg", ["x"], ["n"]),
        _node("MaxPool", ["n"], ["p"], kernel_shape=[3], strides=[2]),
    ]
    head, inits = _head("p", 2 * 3)
    file = _save(tmp_path, nodes + head, inits, [1, 2, 7])
    net = from_onnx(file)
    x = np.abs(np.random.default_rng(1).normal(size=(20, 14))) + 0.5
    np.testing.assert_allclose(net.forward(x), onnxruntime_forward(file, x), rtol=1e-5, atol=1e-5)
    _check(file)


@settings(max_examples=25, deadline=None)
@given(
    size=st.integers(3, 7),
    kernel=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    stride=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    pad=st.integers(0, 1),
    relu=st.booleans(),
)
def test_maxpool_geometry_matches_onnxruntime(
    tmp_path_factory: pytest.TempPathFactory,
    size: int,
    kernel: tuple[int, int],
    stride: tuple[int, int],
    pad: int,
    relu: bool,
) -> None:
    pads = [min(pad, k - 1) for k in kernel] * 2
    pool = {"kernel_shape": list(kernel), "strides": list(stride), "pads": pads}
    file = _conv_pool(tmp_path_factory.mktemp("mp"), pool, relu=relu, channels=1, size=size)
    net = from_onnx(file)
    x = np.random.default_rng(size).uniform(-1, 1, size=(16, net.n_inputs))
    np.testing.assert_allclose(net.forward(x), onnxruntime_forward(file, x), rtol=1e-5, atol=1e-5)


def test_maxpool_indices_output_is_unsupported(tmp_path: Path) -> None:
    nodes = [
        _node("MaxPool", ["x"], ["p", "idx"], kernel_shape=[2, 2], name="pool_with_indices"),
        _node("Flatten", ["p"], ["y"]),
    ]
    with pytest.raises(UnsupportedLayerError, match=r"pool_with_indices.*Indices"):
        from_onnx(_save(tmp_path, nodes, [], [1, 1, 3, 3]))


# --------------------------------------------------------------------------------------------
# residual blocks and skip paths across activations
# --------------------------------------------------------------------------------------------


def _conv(name: str, src: str, out: str, c: int = 2) -> tuple[Any, TensorProto]:
    return (
        _node("Conv", [src, name], [out], pads=[1, 1, 1, 1]),
        _init(name, R.normal(size=(c, c, 3, 3)) * 0.5),
    )


def _residual(kind: str) -> tuple[list[Any], list[TensorProto], list[int]]:
    c1, w1 = _conv("w1", "x", "c1")
    c2, w2 = _conv("w2", "r1", "c2")
    shape = [1, 2, 4, 4]
    if kind == "conv_relu_conv_plus_input":
        nodes = [c1, _node("Relu", ["c1"], ["r1"]), c2, _node("Add", ["c2", "x"], ["s"])]
    elif kind == "skip_after_relu_with_maxpool":
        c0, w0 = _conv("w0", "x", "c0")
        c1, w1 = _conv("w1", "r0", "c1")
        nodes = [
            c0,
            _node("Relu", ["c0"], ["r0"]),
            c1,
            _node("Relu", ["c1"], ["r1"]),
            c2,
            _node("Add", ["r0", "c2"], ["t"]),
            _node("MaxPool", ["t"], ["s"], kernel_shape=[2, 2], strides=[2, 2]),
        ]
        return [*nodes, *_head("s", 8)[0]], [w0, w1, w2, *_head("s", 8)[1]], shape
    elif kind == "two_blocks":
        c3, w3 = _conv("w3", "s1", "c3")
        c4, w4 = _conv("w4", "r3", "c4")
        nodes = [
            c1,
            _node("Relu", ["c1"], ["r1"]),
            c2,
            _node("Add", ["x", "c2"], ["s0"]),
            _node("Relu", ["s0"], ["s1"]),
            c3,
            _node("Relu", ["c3"], ["r3"]),
            c4,
            _node("Add", ["s1", "c4"], ["s"]),
        ]
        head, inits = _head("s", 32)
        return [*nodes, *head], [w1, w2, w3, w4, *inits], shape
    elif kind == "leaky_relu_block":
        nodes = [
            c1,
            _node("LeakyRelu", ["c1"], ["r1"], alpha=0.1),
            c2,
            _node("Sub", ["x", "c2"], ["s"]),
        ]
    elif kind == "concat_skip":
        nodes = [c1, _node("Relu", ["c1"], ["r1"]), c2, _node("Concat", ["x", "c2"], ["s"], axis=1)]
        head, inits = _head("s", 64)
        return [*nodes, *head], [w1, w2, *inits], shape
    elif kind == "slice_skip_around_relu":
        starts = numpy_helper.from_array(np.array([1], np.int64), "st")
        ends = numpy_helper.from_array(np.array([2], np.int64), "en")
        axes = numpy_helper.from_array(np.array([1], np.int64), "ax")
        nodes = [
            _node("Slice", ["x", "st", "en", "ax"], ["sl"]),
            c1,
            _node("Relu", ["c1"], ["r1"]),
            c2,
            _node("Concat", ["c2", "sl"], ["s"], axis=1),
        ]
        head, inits = _head("s", 48)
        return [*nodes, *head], [w1, w2, starts, ends, axes, *inits], shape
    elif kind == "maxpool_with_a_live_skip":
        # the input is carried through every level of the pooling tree
        nodes = [
            c1,
            _node("Relu", ["c1"], ["r1"]),
            _node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
            _node("Flatten", ["p1"], ["f1"]),
            _node("Flatten", ["x"], ["fx"]),
            _node("Concat", ["f1", "fx"], ["s"], axis=1),
        ]
        head, inits = _head("s", 8 + 32)
        return [*nodes, *head], [w1, *inits], shape
    else:  # pragma: no cover
        raise KeyError(kind)
    head, inits = _head("s", 32)
    return [*nodes, *head], [w1, w2, *inits], shape


RESIDUALS = [
    "conv_relu_conv_plus_input",
    "skip_after_relu_with_maxpool",
    "two_blocks",
    "leaky_relu_block",
    "concat_skip",
    "slice_skip_around_relu",
    "maxpool_with_a_live_skip",
]


@pytest.mark.parametrize("kind", RESIDUALS)
def test_residual_matches_onnxruntime_and_bounds_hold(kind: str, tmp_path: Path) -> None:
    nodes, inits, shape = _residual(kind)
    _check(_save(tmp_path, nodes, inits, shape))


@settings(max_examples=20, deadline=None)
@given(
    depth=st.integers(1, 3),
    width=st.integers(1, 5),
    seed=st.integers(0, 2**16),
    skip_from=st.sampled_from(["input", "pre", "post"]),
)
def test_random_residual_stacks_match_onnxruntime(
    tmp_path_factory: pytest.TempPathFactory, depth: int, width: int, seed: int, skip_from: str
) -> None:
    """Stacks of ``h <- h + W2 relu(W1 h)`` blocks (skip from the block input, from a
    pre-activation or a post-activation tensor) match onnxruntime and bound the samples."""
    rng = np.random.default_rng(seed)
    n = 4
    nodes = [_node("Flatten", ["x"], ["h0"])]
    inits = []
    for k in range(depth):
        h, nxt = f"h{k}", f"h{k + 1}"
        inits += [
            _init(f"a{k}", rng.normal(size=(n, width))),
            _init(f"b{k}", rng.normal(size=(width, n))),
        ]
        nodes += [
            _node("MatMul", [h, f"a{k}"], [f"z{k}"]),
            _node("Relu", [f"z{k}"], [f"r{k}"]),
            _node("MatMul", [f"r{k}", f"b{k}"], [f"u{k}"]),
        ]
        if skip_from == "input":
            nodes.append(_node("Add", [h, f"u{k}"], [nxt]))
        else:
            inits.append(_init(f"c{k}", rng.normal(size=(width, n))))
            skip = f"z{k}" if skip_from == "pre" else f"r{k}"
            nodes += [
                _node("MatMul", [skip, f"c{k}"], [f"v{k}"]),
                _node("Sub", [f"u{k}", f"v{k}"], [nxt]),
            ]
    head, head_inits = _head(f"h{depth}", n, n_out=2)
    file = _save(tmp_path_factory.mktemp("res"), nodes + head, inits + head_inits, [1, n])
    _check(file, seed=seed)


def test_nonnegative_skip_needs_no_negative_copy(tmp_path: Path) -> None:
    """``r0 = relu(.)`` skipped past another ReLU is carried as ``relu(r0)`` alone."""
    nodes, inits, shape = _residual("skip_after_relu_with_maxpool")
    net = from_onnx(_save(tmp_path, nodes, inits, shape))
    dense = [layer for layer in net.layers if isinstance(layer, Dense)]
    # conv0 32; conv1 32 + carried r0 32 (no -r0); then the pool tree on 32 values
    assert [d.n_out for d in dense][:2] == [32, 64]


def test_sigmoid_with_a_skip_across_it_is_named_unsupported(tmp_path: Path) -> None:
    nodes = [
        _node("Flatten", ["x"], ["f"]),
        _node("MatMul", ["f", "w"], ["h"]),
        _node("Sigmoid", ["h"], ["r"], name="squash"),
        _node("Add", ["f", "r"], ["y"]),
    ]
    file = _save(tmp_path, nodes, [_init("w", R.normal(size=(6, 6)))], [1, 6])
    with pytest.raises(UnsupportedLayerError) as err:
        from_onnx(file)
    message = str(err.value)
    assert "\n" not in message
    assert str(file) in message and "'squash' (Sigmoid)" in message


# --------------------------------------------------------------------------------------------
# MILP exactness
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("relu", [True, False], ids=["after_relu", "after_conv"])
def test_milp_maximum_is_attained_by_the_onnx_model(relu: bool, tmp_path: Path) -> None:
    """The big-M MILP maximum of an output over a box is >= every sampled value and is
    attained (under onnxruntime) at the MILP's argmax: the encoding is exact."""
    conv = _init("w", R.normal(size=(2, 1, 2, 2)))
    nodes = [_node("Conv", ["x", "w"], ["c"])]
    src = "c"
    if relu:
        nodes.append(_node("Relu", ["c"], ["r"]))
        src = "r"
    nodes.append(_node("MaxPool", [src], ["p"], kernel_shape=[2, 2], strides=[1, 1]))
    head, inits = _head("p", 2 * 2 * 2, n_out=2)
    file = _save(tmp_path, nodes + head, [conv, *inits], [1, 1, 4, 4])
    net = from_onnx(file)
    rng = np.random.default_rng(3)
    center = rng.uniform(-0.5, 0.5, size=16)
    box = Box(center - 0.3, center + 0.3)
    samples = box.sample(20000, rng)
    outs = onnxruntime_forward(file, samples)
    for j in range(2):
        case = UnsafeCase(box, -np.eye(2)[j : j + 1], np.zeros(1))  # minimise -y_j
        problem = encode_milp(net, case, interval_bounds(net, box))
        res = HighsSolver(mip_rel_gap=0.0).solve(problem)
        assert res.status is SolveStatus.OPTIMAL and res.objective is not None
        assert res.x is not None
        best = -res.objective
        x_star = problem.decode_input(res.x)
        assert box.contains(x_star)
        assert best >= outs[:, j].max() - 1e-5 * (1 + abs(best))
        attained = float(onnxruntime_forward(file, x_star[None])[0, j])
        assert attained == pytest.approx(best, abs=1e-4 * (1 + abs(best)))


def test_oversized_encoding_is_refused_with_its_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An encoding whose dense layer would exceed the limit is an unsupported-layer error
    naming the node and the size, not an out-of-memory crash."""
    import nncert.verify.importers as importers

    monkeypatch.setattr(importers, "MAX_ENCODING_ENTRIES", 1000)
    file = _conv_pool(tmp_path, POOLS["2x2_stride2"], relu=True)
    with pytest.raises(UnsupportedLayerError, match=r"'MaxPool_0' \(MaxPool\).*dense 54x108"):
        from_onnx(file)


@pytest.mark.parametrize("fill", [0.3, -2.0])
def test_maxpool_after_constant_pad(fill: float, tmp_path: Path) -> None:
    """Padded constants (an index map with constant rows) take part in the maxima."""
    pads = numpy_helper.from_array(np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64), "pads")
    value = _init("v", fill)
    nodes = [
        _node("Pad", ["x", "pads", "v"], ["xp"]),
        _node("MaxPool", ["xp"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
    ]
    head, inits = _head("p", 2 * 3 * 3)
    _check(_save(tmp_path, nodes + head, [pads, value, *inits], [1, 2, 4, 4]))


@pytest.mark.parametrize("relu", [True, False], ids=["after_relu", "after_conv"])
def test_torch_maxpool_matches_the_module(relu: bool) -> None:
    """``from_torch`` lowers nn.MaxPool2d the same way (and checks against the module)."""
    torch = pytest.importorskip("torch")
    from torch import nn

    from nncert.verify.importers import from_torch

    torch.manual_seed(0)
    layers: list[Any] = [nn.Conv2d(1, 2, 3)]
    if relu:
        layers.append(nn.ReLU())
    layers += [
        nn.MaxPool2d(3, stride=2, padding=1),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(8, 3),
    ]
    module = nn.Sequential(*layers).double().eval()
    net = from_torch(module, (1, 9, 9))
    x = np.random.default_rng(0).normal(size=(10, 81))
    with torch.no_grad():
        ref = module(torch.from_numpy(x.reshape(10, 1, 9, 9))).numpy()
    np.testing.assert_allclose(net.forward(x), ref, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("kind", ["maxpool", "residual"])
def test_verdicts_on_pooled_and_residual_models_are_sound(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """verify(): VERIFIED survives dense sampling of the ONNX model, FALSIFIED witnesses are
    confirmed by onnxruntime on the original file."""
    from nncert.verify.pipeline import verify
    from nncert.verify.result import Verdict
    from nncert.verify.spec import robustness_property

    # weights of their own (the module's generator has served a varying number of draws by
    # now, hypothesis examples included: once the small radius met a model falsifiable there)
    monkeypatch.setattr(sys.modules[__name__], "R", np.random.default_rng(1234))

    if kind == "maxpool":
        file = _conv_pool(tmp_path, POOLS["3x3_stride1_pad1"], relu=False, channels=1, size=4)
    else:
        nodes, inits, shape = _residual("conv_relu_conv_plus_input")
        file = _save(tmp_path, nodes, inits, shape)
    net = from_onnx(file)
    rng = np.random.default_rng(5)
    seen = {}
    for eps in (0.005, 0.5):  # decided by the bounds and by the attack, quickly
        x0 = rng.uniform(0.2, 0.8, size=net.n_inputs)
        label = int(np.argmax(net.forward(x0)))
        prop = robustness_property(x0, eps, label, net.n_outputs)
        res = verify(net, prop, method="auto", time_limit=30)
        seen[eps] = (res.verdict, res.reason, [(st.name, st.outcome) for st in res.stages])
        box = prop.cases[0].input_box
        if res.verdict is Verdict.VERIFIED:
            ys = onnxruntime_forward(file, box.sample(3000, rng))
            assert np.all(np.argmax(ys, axis=1) == label)
        elif res.verdict is Verdict.FALSIFIED:
            cex = res.counterexample
            assert cex is not None and cex.onnx_checked
            y = onnxruntime_forward(file, np.asarray(cex.x)[None])[0]
            assert prop.is_counterexample(cex.x, y)
    # both verdicts exercised (once, on a heavily loaded machine, the small radius came back
    # undecided: never wrong, but not reproduced since; the message says how it ended)
    assert seen[0.5][0] is Verdict.FALSIFIED, seen
    assert seen[0.005][0] in (Verdict.VERIFIED, Verdict.UNKNOWN), seen


def _parallel(acts: tuple[str, str], depth2: int = 1) -> tuple[list[Any], list[TensorProto]]:
    """``y = B act1(A x) + D act2(...act2(C x))`` (``depth2`` activations on branch 2)."""
    nodes = [
        _node("MatMul", ["x", "A"], ["a"]),
        _node(acts[0], ["a"], ["ra"], name="act_a"),
        _node("MatMul", ["ra", "B"], ["u"]),
        _node("MatMul", ["x", "C"], ["c0"]),
    ]
    inits = [
        _init("A", R.normal(size=(4, 6))),
        _init("B", R.normal(size=(6, 2))),
        _init("C", R.normal(size=(4, 5))),
        _init("D", R.normal(size=(5, 2))),
    ]
    for k in range(depth2):
        nodes.append(_node(acts[1], [f"c{k}"], [f"r{k}"], name=f"act_c{k}"))
        inits.append(_init(f"E{k}", R.normal(size=(5, 5))))
        nodes.append(_node("MatMul", [f"r{k}", f"E{k}"], [f"c{k + 1}"]))
    nodes += [_node("MatMul", [f"c{depth2}", "D"], ["v"]), _node("Add", ["u", "v"], ["y"])]
    return nodes, inits


@pytest.mark.parametrize("act", ["Relu", "LeakyRelu", "Sigmoid", "Tanh"])
def test_parallel_branches_share_their_activation_layer(act: str, tmp_path: Path) -> None:
    """Two branches activated at the same depth become one layer (no carried neurons), so
    parallel sigmoid/tanh branches are supported too."""
    nodes, inits = _parallel((act, act))
    file = _save(tmp_path, nodes, inits, [1, 4])
    net = from_onnx(file)
    assert [type(layer).__name__ for layer in net.layers][1:2] == [
        {"Relu": "ReLU", "LeakyRelu": "LeakyReLU", "Sigmoid": "Sigmoid", "Tanh": "Tanh"}[act]
    ]
    assert [layer.n_out for layer in net.dense_layers] == [11, 2]
    _check(file)


def test_parallel_branches_of_unequal_depth(tmp_path: Path) -> None:
    """Branch 2's first ReLU shares branch 1's layer; branch 1's result is then carried
    through branch 2's second ReLU."""
    nodes, inits = _parallel(("Relu", "Relu"), depth2=2)
    file = _save(tmp_path, nodes, inits, [1, 4])
    net = from_onnx(file)
    assert sum(isinstance(layer, ReLU) for layer in net.layers) == 2
    _check(file)


def test_parallel_branches_of_different_kinds_are_named_unsupported(tmp_path: Path) -> None:
    nodes, inits = _parallel(("Relu", "Sigmoid"))
    file = _save(tmp_path, nodes, inits, [1, 4])
    with pytest.raises(UnsupportedLayerError, match=r"'act_(a|c0)' \((Relu|Sigmoid)\)"):
        from_onnx(file)


def test_maxpool_whose_windows_hold_one_valid_entry(tmp_path: Path) -> None:
    """Kernel 2 with dilation 2 on length 2 (end pad 1): one window holding a single valid
    entry is a selection, no ReLU layer."""
    nodes = [_node("MaxPool", ["x"], ["p"], kernel_shape=[2], dilations=[2], pads=[0, 1])]
    head, inits = _head("p", 3)
    file = _save(tmp_path, nodes + head, inits, [1, 3, 2])
    net = from_onnx(file)
    assert not any(isinstance(layer, ReLU) for layer in net.layers)
    _check(file)


def test_residual_across_a_two_sided_clip(tmp_path: Path) -> None:
    """``x + W2 clip(W1 x, 0, 0.5)`` (a ReLU6-like clip): the clip becomes one ReLU layer,
    ``lo + relu(v - lo) - relu(v - hi)``, which can carry ``x``."""
    lo = numpy_helper.from_array(np.float32(0.0), "lo")
    hi = numpy_helper.from_array(np.float32(0.5), "hi")
    head, head_inits = _head("s", 5)
    nodes = [
        _node("MatMul", ["x", "A"], ["a"]),
        _node("Clip", ["a", "lo", "hi"], ["ca"]),
        _node("MatMul", ["ca", "B"], ["u"]),
        _node("Add", ["x", "u"], ["s"]),
        *head,
    ]
    inits = [_init("A", R.normal(size=(5, 7))), _init("B", R.normal(size=(7, 5))), lo, hi]
    file = _save(tmp_path, nodes, [*inits, *head_inits], [1, 5])
    net = from_onnx(file)
    assert sum(isinstance(layer, ReLU) for layer in net.layers) == 1
    _check(file, radius=0.5)
