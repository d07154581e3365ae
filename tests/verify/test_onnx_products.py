"""Powers with a constant exponent and products of two input-dependent tensors (ONNX ``Pow``,
``Mul``) in the importer, the bound engine and the verifier.

Both are imported exactly (in real arithmetic) with one
:class:`~nncert.verify.network.RectifiedPower` layer: ``v^p = max(v,0)^p + (-1)^p max(-v,0)^p``
and ``ab = ((a + b)^2 - (a - b)^2) / 4``. Every model is a real ONNX file built with
``onnx.helper``; the imported network must match onnxruntime and its IBP/CROWN bounds must
contain sampled outputs; end to end, a true property is verified and a false one falsified
with a replayed witness, through :func:`nncert.verify.verify` and ``nncert vnncomp``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from exact_arith import assert_enclosed, exact_forward
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

from nncert.certificates.diff_bounds import difference_bounds
from nncert.verify import verify
from nncert.verify.bounds import spec_bounds
from nncert.verify.cli import main
from nncert.verify.errors import UnsupportedLayerError
from nncert.verify.importers import from_onnx, onnxruntime_forward
from nncert.verify.network import Dense, RectifiedPower
from nncert.verify.registry import method_names
from nncert.verify.result import Verdict
from nncert.verify.spec import Box, Property, UnsafeCase


def _init(name: str, value: Any) -> TensorProto:
    return numpy_helper.from_array(np.asarray(value, dtype=np.float32), name)


def _save(path: Path, nodes: list[Any], inits: list[TensorProto], n_in: int) -> Path:
    """``x (1, n_in) -> nodes -> y`` as a real ONNX file."""
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, n_in])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    file = path / "model.onnx"
    onnx.save(model, str(file))
    return file


def _check(file: Path, *, seed: int = 7, radius: float = 0.2) -> None:
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


def _has_power(file: Path) -> bool:
    return any(isinstance(layer, RectifiedPower) for layer in from_onnx(file).layers)


# --------------------------------------------------------------------------------------------
# Pow with a constant exponent
# --------------------------------------------------------------------------------------------


@settings(max_examples=15, deadline=None)
@given(
    p=st.sampled_from([0, 1, 2, 3, 4, 5]),
    seed=st.integers(0, 2**16),
    relu=st.booleans(),
)
def test_pow_matches_onnxruntime_and_bounds_contain_samples(
    tmp_path_factory: pytest.TempPathFactory, p: int, seed: int, relu: bool
) -> None:
    rng = np.random.default_rng(seed)
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"])]
    src = "h"
    if relu:
        nodes.append(helper.make_node("Relu", ["h"], ["r"]))
        src = "r"
    nodes += [
        helper.make_node("Pow", [src, "p"], ["q"], name="Pow_0"),
        helper.make_node("MatMul", ["q", "v"], ["y"]),
    ]
    inits = [
        _init("w", rng.normal(size=(3, 4))),
        _init("p", p),
        _init("v", rng.normal(size=(4, 2))),
    ]
    file = _save(tmp_path_factory.mktemp("pow"), nodes, inits, 3)
    _check(file, seed=seed)
    assert _has_power(file) == (p >= 2)


def test_real_exponent_needs_a_structurally_nonnegative_base(tmp_path: Path) -> None:
    """``x^2.5`` is NaN in ONNX for ``x < 0``: accepted after a ReLU with non-negative weights
    (exactly ``max(x, 0)^2.5`` there), refused on a sign-changing tensor."""
    rng = np.random.default_rng(3)
    pos = [
        helper.make_node("MatMul", ["x", "w"], ["h"]),
        helper.make_node("Relu", ["h"], ["r"]),
        helper.make_node("Pow", ["r", "p"], ["y"]),
    ]
    inits = [_init("w", rng.normal(size=(3, 4))), _init("p", 2.5)]
    _check(_save(tmp_path, pos, inits, 3))
    signed = [
        helper.make_node("MatMul", ["x", "w"], ["h"]),
        helper.make_node("Pow", ["h", "p"], ["y"], name="Pow_7"),
    ]
    with pytest.raises(UnsupportedLayerError, match=r"Pow_7.*exponent 2\.5"):
        from_onnx(_save(tmp_path, signed, inits, 3))
    for bad in (-1.0, 0.5):
        inits_bad = [_init("w", rng.normal(size=(3, 4))), _init("p", bad)]
        with pytest.raises(UnsupportedLayerError, match="Pow"):
            from_onnx(_save(tmp_path, signed, inits_bad, 3))


def test_input_dependent_exponent_is_refused(tmp_path: Path) -> None:
    nodes = [helper.make_node("Pow", ["c", "x"], ["y"], name="Pow_x")]
    with pytest.raises(UnsupportedLayerError):
        from_onnx(_save(tmp_path, nodes, [_init("c", [[2.0, 2.0]])], 2))


# --------------------------------------------------------------------------------------------
# Mul of two input-dependent tensors
# --------------------------------------------------------------------------------------------


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**16), same=st.booleans(), broadcast=st.booleans())
def test_mul_of_two_branches_matches_onnxruntime(
    tmp_path_factory: pytest.TempPathFactory, seed: int, same: bool, broadcast: bool
) -> None:
    """``(x Wa + ba) * (x Wb)`` (``x * x`` when ``same``; ``b`` of shape ``(1, 1)``
    broadcast when ``broadcast``), then a ReLU and a head: products inside a deeper net."""
    rng = np.random.default_rng(seed)
    nb = 1 if broadcast else 4
    nodes = [
        helper.make_node("MatMul", ["x", "wa"], ["a0"]),
        helper.make_node("Add", ["a0", "ba"], ["a"]),
        helper.make_node("MatMul", ["x", "wb"], ["b"]),
        helper.make_node("Mul", ["a", "a" if same else "b"], ["m"], name="Mul_0"),
        helper.make_node("Relu", ["m"], ["r"]),
        helper.make_node("MatMul", ["r", "v"], ["y"]),
    ]
    inits = [
        _init("wa", rng.normal(size=(3, 4))),
        _init("ba", rng.normal(size=(4,))),
        _init("wb", rng.normal(size=(3, nb))),
        _init("v", rng.normal(size=(4, 2))),
    ]
    file = _save(tmp_path_factory.mktemp("mul"), nodes, inits, 3)
    _check(file, seed=seed)
    assert _has_power(file)


def test_product_with_a_tensor_read_later_is_refused_naming_the_node(tmp_path: Path) -> None:
    """``a * b + a``: ``a`` would have to cross the power layer, which cannot carry it."""
    nodes = [
        helper.make_node("MatMul", ["x", "wa"], ["a"]),
        helper.make_node("MatMul", ["x", "wb"], ["b"]),
        helper.make_node("Mul", ["a", "b"], ["m"], name="Mul_skip"),
        helper.make_node("Add", ["m", "a"], ["y"]),
    ]
    inits = [_init("wa", np.ones((2, 2))), _init("wb", np.eye(2))]
    with pytest.raises(UnsupportedLayerError, match=r"Mul_skip.*'a'.*still read"):
        from_onnx(_save(tmp_path, nodes, inits, 2))


# --------------------------------------------------------------------------------------------
# end to end: verified and falsified
# --------------------------------------------------------------------------------------------


def _product_model(tmp_path: Path) -> Path:
    """``y = x0 * x1`` from two branches of the input."""
    nodes = [
        helper.make_node("MatMul", ["x", "wa"], ["a"]),
        helper.make_node("MatMul", ["x", "wb"], ["b"]),
        helper.make_node("Mul", ["a", "b"], ["y"]),
    ]
    inits = [_init("wa", [[1.0], [0.0]]), _init("wb", [[0.0], [1.0]])]
    return _save(tmp_path, nodes, inits, 2)


def _square_model(tmp_path: Path) -> Path:
    """``y = (x0 - x1)^2`` through ``Pow``."""
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["d"]),
        helper.make_node("Pow", ["d", "two"], ["y"]),
    ]
    return _save(tmp_path, nodes, [_init("w", [[1.0], [-1.0]]), _init("two", 2.0)], 2)


def _prop(lo: float, hi: float, sense: str, threshold: float) -> Property:
    """Unsafe: ``y <= threshold`` (``sense="le"``) or ``y >= threshold`` on ``[lo, hi]^2``."""
    sign = 1.0 if sense == "le" else -1.0
    box = Box(np.full(2, lo), np.full(2, hi))
    return Property((UnsafeCase(box, np.array([[sign]]), np.array([sign * threshold])),))


@pytest.mark.parametrize(
    ("model", "lo", "hi", "unsafe", "verdict"),
    [
        # x0 x1 >= 0.25 on [0.5, 1]^2: CROWN's polarization bound is 0.125
        ("product", 0.5, 1.0, ("le", 0.1), Verdict.VERIFIED),
        ("product", 0.5, 1.0, ("ge", 0.9), Verdict.FALSIFIED),  # x = (1, 1)
        ("product", -1.0, 1.0, ("le", -0.95), Verdict.FALSIFIED),  # x = (1, -1)
        # (x0 - x1)^2 <= 4 on [-1, 1]^2, = 4 at the corners (1, -1)
        ("square", -1.0, 1.0, ("ge", 4.5), Verdict.VERIFIED),
        ("square", -1.0, 1.0, ("ge", 3.5), Verdict.FALSIFIED),
    ],
)
def test_verify_products_and_squares(
    tmp_path: Path,
    model: str,
    lo: float,
    hi: float,
    unsafe: tuple[str, float],
    verdict: Verdict,
) -> None:
    file = _product_model(tmp_path) if model == "product" else _square_model(tmp_path)
    net = from_onnx(file)
    prop = _prop(lo, hi, *unsafe)
    res = verify(net, prop, time_limit=30.0)
    assert res.verdict is verdict, res
    if verdict is Verdict.FALSIFIED:
        assert res.counterexample is not None
        x = np.asarray(res.counterexample.x)
        assert np.all(x >= lo) and np.all(x <= hi)
        y = onnxruntime_forward(file, x.reshape(1, -1))[0, 0]
        sense, t = unsafe
        assert (y <= t) if sense == "le" else (y >= t), (x, y)


_VNNLIB = """\
(declare-const X_0 Real)
(declare-const X_1 Real)
(declare-const Y_0 Real)
(assert (>= X_0 0.5))
(assert (<= X_0 1.0))
(assert (>= X_1 0.5))
(assert (<= X_1 1.0))
(assert ({op} Y_0 {t}))
"""


@pytest.mark.parametrize(("op", "t", "answer"), [("<=", "0.1", "unsat"), (">=", "0.9", "sat")])
def test_vnncomp_on_files(tmp_path: Path, op: str, t: str, answer: str) -> None:
    from nncert.verify.vnncomp import read_result_file, validate_witness
    from nncert.verify.vnnlib import load_vnnlib

    file = _product_model(tmp_path)
    spec = tmp_path / "prop.vnnlib"
    spec.write_text(_VNNLIB.format(op=op, t=t))
    out = tmp_path / "res.txt"
    assert main(["vnncomp", str(file), str(spec), str(out), "30", "--quiet"]) == 0
    parsed = read_result_file(out)
    assert parsed.result == answer, out.read_text()
    if answer == "sat":
        assert parsed.x is not None and parsed.y is not None
        assert validate_witness(file, load_vnnlib(spec), parsed.x, parsed.y).ok


@pytest.mark.parametrize("model", ["product", "softmax"])
@pytest.mark.parametrize("method", method_names())
def test_every_method_is_sound_or_unknown(tmp_path: Path, method: str, model: str) -> None:
    """Each registered method alone (no presolve) on ``x0 x1`` and on a 3-class softmax over
    ``[0.5, 1]^2``: never a wrong answer and never an exception (the MILP and ReLU-phase BaB
    have no encoding of these layers and answer unknown; Model 2 bands them like sigmoid)."""
    box = Box(np.full(2, 0.5), np.full(2, 1.0))
    if model == "product":
        net = from_onnx(_product_model(tmp_path))
        row = np.array([[1.0]])
        true_t, false_t = 0.1, 0.9  # unsafe y <= 0.1 (never), y >= 0.9 (at (1, 1))
        cases = [(row, true_t), (-row, -false_t)]
    else:
        net = from_onnx(_softmax_model(tmp_path))
        row = np.array([[-1.0, 0.0, 0.0]])  # unsafe softmax_0 >= 0.35 (never), >= 0.3
        cases = [(row, -0.35), (row, -0.3)]
    for (A, b), wrong in zip(cases, (Verdict.FALSIFIED, Verdict.VERIFIED)):
        prop = Property((UnsafeCase(box, A, np.array([b])),))
        res = verify(net, prop, method=method, presolve=False, time_limit=10.0)
        assert res.verdict is not wrong, (method, b, res)


def test_difference_bounds_enclose_a_perturbed_product_network(tmp_path: Path) -> None:
    """The rule's difference rule (mean value theorem) through certificates.diff_bounds:
    bounds on ``f_t - f_s`` for a copy with perturbed weights enclose exact differences."""
    rng = np.random.default_rng(5)
    net = from_onnx(_product_model(tmp_path))
    layers = [
        Dense(layer.weight + 0.01 * rng.normal(size=layer.weight.shape), layer.bias)
        if isinstance(layer, Dense)
        else layer
        for layer in net.layers
    ]
    other = net.replace_layers(layers)
    box = Box(np.array([-0.5, 0.25]), np.array([0.75, 1.0]))
    for method in ("interval", "crown"):
        b = difference_bounds(other, net, box, method=method)
        xs = np.vstack([box.sample(200, rng), box.lower, box.upper])
        for x in xs:
            d = [s - t for s, t in zip(exact_forward(other, x), exact_forward(net, x))]
            assert_enclosed(d, b.lower, b.upper, exact=True, what=method)


# --------------------------------------------------------------------------------------------
# Softmax
# --------------------------------------------------------------------------------------------


@settings(max_examples=12, deadline=None)
@given(n=st.sampled_from([1, 2, 3, 5]), seed=st.integers(0, 2**16), head=st.booleans())
def test_softmax_matches_onnxruntime_and_bounds_contain_samples(
    tmp_path_factory: pytest.TempPathFactory, n: int, seed: int, head: bool
) -> None:
    """``softmax(x W + b)`` (then a MatMul head when ``head``): 1, 2 (sigmoid form) and
    ``n >= 3`` classes (exp and ``-1/(1+S)`` layers)."""
    rng = np.random.default_rng(seed)
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["h0"]),
        helper.make_node("Add", ["h0", "b"], ["h"]),
        helper.make_node("Softmax", ["h"], ["s" if head else "y"], axis=-1),
    ]
    inits = [_init("w", 2.0 * rng.normal(size=(3, n))), _init("b", rng.normal(size=(n,)))]
    if head:
        nodes.append(helper.make_node("MatMul", ["s", "v"], ["y"]))
        inits.append(_init("v", rng.normal(size=(n, 2))))
    file = _save(tmp_path_factory.mktemp("softmax"), nodes, inits, 3)
    _check(file, seed=seed)


def test_softmax_over_an_ambiguous_axis_is_refused(tmp_path: Path) -> None:
    nodes = [
        helper.make_node("Reshape", ["x", "shape"], ["r"]),
        helper.make_node("Softmax", ["r"], ["y"], axis=1, name="Softmax_2d"),
    ]
    inits = [numpy_helper.from_array(np.array([1, 2, 3], dtype=np.int64), "shape")]
    with pytest.raises(UnsupportedLayerError, match=r"Softmax_2d.*non-unit dimension"):
        from_onnx(_save(tmp_path, nodes, inits, 6))


def _softmax_model(tmp_path: Path) -> Path:
    """``softmax((x0, x1, x0 + x1))``, 3 classes."""
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["h"]),
        helper.make_node("Softmax", ["h"], ["y"], axis=1),
    ]
    return _save(tmp_path, nodes, [_init("w", [[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]])], 2)


@pytest.mark.parametrize(
    ("row", "threshold", "verdict"),
    [
        # on [0.5, 1]^2: softmax_0 = 1 / (1 + e^(x1 - x0) + e^x1) <= 0.307 (at (1, 0.5)),
        # softmax_2 = 1 / (1 + e^-x0 + e^-x1) in [0.452, 0.576]
        (np.array([[-1.0, 0.0, 0.0]]), -0.35, Verdict.VERIFIED),  # unsafe: softmax_0 >= 0.35
        (np.array([[-1.0, 0.0, 0.0]]), -0.3, Verdict.FALSIFIED),  # softmax_0 >= 0.3: (1, .5)
        (np.array([[0.0, 0.0, 1.0]]), 0.4, Verdict.VERIFIED),  # unsafe: softmax_2 <= 0.4
        (np.array([[0.0, 0.0, -1.0]]), -0.6, Verdict.VERIFIED),  # unsafe: softmax_2 >= 0.6
        (np.array([[0.0, 0.0, -1.0]]), -0.55, Verdict.FALSIFIED),  # softmax_2 >= 0.55: (1, 1)
    ],
)
def test_verify_softmax(
    tmp_path: Path, row: np.ndarray, threshold: float, verdict: Verdict
) -> None:
    file = _softmax_model(tmp_path)
    net = from_onnx(file)
    box = Box(np.full(2, 0.5), np.full(2, 1.0))
    prop = Property((UnsafeCase(box, row, np.array([threshold])),))
    res = verify(net, prop, time_limit=30.0)
    assert res.verdict is verdict, res
    if verdict is Verdict.FALSIFIED:
        assert res.counterexample is not None
        y = onnxruntime_forward(file, res.counterexample.x.reshape(1, -1))[0]
        assert float((row @ y)[0]) <= threshold


@pytest.mark.parametrize(
    ("model", "threshold"), [("product", 0.1), ("product", 0.2), ("softmax", 0.0)]
)
def test_certificates_of_new_layers_are_built_and_checked(
    tmp_path: Path, model: str, threshold: float
) -> None:
    """A verified product (by CROWN at 0.1, by input-splitting BaB at 0.2, where CROWN's
    bound 0.125 is not enough) or softmax yields a certificate the independent checker
    accepts: the checker re-derives bounds through the same activation rules."""
    from nncert.certificates.build import certificate_from_result
    from nncert.certificates.check import check

    if model == "product":
        net = from_onnx(_product_model(tmp_path))
        prop = _prop(0.5, 1.0, "le", threshold)
    else:
        net = from_onnx(_softmax_model(tmp_path))
        box = Box(np.full(2, 0.5), np.full(2, 1.0))
        prop = Property((UnsafeCase(box, np.array([[-1.0, 0.0, 0.0]]), np.array([-0.35])),))
    res = verify(net, prop, time_limit=30.0)
    assert res.verdict is Verdict.VERIFIED, res
    report = check(certificate_from_result(net, prop, res), net, expected_property=prop)
    assert report.ok, report
