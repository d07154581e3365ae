"""No stage may close a case on round-off: properties whose true margin is exactly 0.

A point with margin exactly 0 satisfies the unsafe conjunction (VNN-LIB's ``<=`` is not
strict), so such a property is falsifiable: the only right answers are ``sat`` and
``unknown``. Computed in float64 round-to-nearest, a bound at such a point can come out as
``+2e-16``; the bound engine must account for every rounding error so that it never does.

The networks come from :func:`strategies.boundary_cases` (monotone networks with dyadic
weights, minimum margin exactly 0 at a box vertex, checked here with rationals), plus the
2-2-1 ONNX network of the hardening issue's reproduction.
"""

from __future__ import annotations

import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from strategies import boundary_cases

from nncert.verify.bounds import BoundEngine, combine_rows, spec_bounds
from nncert.verify.network import Dense, HardTanh, LeakyReLU, Network, ReLU
from nncert.verify.pipeline import verify
from nncert.verify.result import Verdict
from nncert.verify.spec import Box, Property, UnsafeCase

# --------------------------------------------------------------------------------------------
# the exact margin (rationals)
# --------------------------------------------------------------------------------------------


def _exact_forward(net: Network, x: np.ndarray) -> list[Fraction]:
    a = [Fraction(float(v)) for v in x]
    for layer in net.layers:
        if isinstance(layer, Dense):
            W = [[Fraction(float(w)) for w in row] for row in layer.weight]
            a = [
                sum((w * v for w, v in zip(row, a)), Fraction(float(b)))
                for row, b in zip(W, layer.bias)
            ]
        elif isinstance(layer, ReLU):
            a = [max(v, Fraction(0)) for v in a]
        elif isinstance(layer, LeakyReLU):
            al = Fraction(layer.alpha)
            a = [v if v >= 0 else al * v for v in a]
        elif isinstance(layer, HardTanh):
            m, M = Fraction(layer.min_val), Fraction(layer.max_val)
            a = [min(max(v, m), M) for v in a]
        else:  # pragma: no cover - the strategy builds only the types above
            raise AssertionError(type(layer))
    return a


def _exact_margins(net: Network, A: np.ndarray, b: np.ndarray, v: np.ndarray) -> list[Fraction]:
    y = _exact_forward(net, v)
    return [
        sum((Fraction(float(a)) * yy for a, yy in zip(row, y)), -Fraction(float(bb)))
        for row, bb in zip(A, b)
    ]


def _check_exact_zero(net: Network, A: np.ndarray, b: np.ndarray, v: np.ndarray) -> None:
    """The generator's promise: every row's margin at ``v`` is 0 in real arithmetic."""
    assert all(m == 0 for m in _exact_margins(net, A, b, v))


# --------------------------------------------------------------------------------------------
# the bound engine
# --------------------------------------------------------------------------------------------


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(boundary_cases())
def test_no_bound_is_positive_on_a_zero_margin(data: tuple) -> None:  # type: ignore[type-arg]
    net, box, A, b, v = data
    _check_exact_zero(net, A, b, v)
    for method in ("ibp", "crown", "alpha-crown"):
        lo, _ = spec_bounds(net, box, A, -b, method=method)
        assert np.max(lo) <= 0.0, (method, lo)
    eng = BoundEngine(net)
    los = np.vstack([box.lower, np.minimum(box.lower, v)])
    his = np.vstack([box.upper, np.maximum(box.upper, v)])
    for mode in ("ibp", "forward", "crown"):
        res = eng.bound(
            los,
            his,
            A,
            b,
            intermediate=mode,
            extra_slopes=("zero", "one", "parallel"),
            alpha_iters=3,
        )
        assert np.all(res.lower <= 0.0), (mode, res.lower)
        assert not res.empty.any()
        # the exact linear lower bounds: at v (inside every box) they are <= the margin 0
        lin = np.einsum("nri,i->nr", res.coef, v) + res.offset
        assert np.all(lin <= 0.0)
        if A.shape[0] > 1:
            val, _, _ = combine_rows(res.coef, res.offset, los, his)
            assert np.all(val <= 0.0)
    # a degenerate box that is just the vertex: the bound must still not be positive
    point = eng.bound(v[None, :], v[None, :], A, b)
    assert np.all(point.lower <= 0.0)


# --------------------------------------------------------------------------------------------
# every method, without the attacks that would usually find the vertex first
# --------------------------------------------------------------------------------------------

METHODS = ["auto", "ibp", "crown", "milp", "bab", "relu_bab", "window", "model2", "qubo"]
BENDERS = ["highs", "exact"]


def _assert_not_verified(
    net: Network, box: Box, A: np.ndarray, b: np.ndarray, **kw: object
) -> None:
    prop = Property((UnsafeCase(box, A, b),))
    res = verify(net, prop, attack=False, time_limit=10.0, **kw)
    assert res.verdict is not Verdict.VERIFIED, (kw, res.reason, res.margin_lower)
    if res.verdict is Verdict.FALSIFIED:
        assert res.counterexample is not None
        x = res.counterexample.x
        assert box.contains(x)
        assert float(UnsafeCase(box, A, b).violation(net.forward(x[None, :]))[0]) <= 0.0


@pytest.mark.parametrize("method", METHODS)
@settings(max_examples=12, suppress_health_check=[HealthCheck.too_slow])
@given(data=boundary_cases(max_depth=2, max_width=3))
def test_no_method_answers_unsat_on_a_zero_margin(method: str, data: tuple) -> None:  # type: ignore[type-arg]
    net, box, A, b, v = data
    _check_exact_zero(net, A, b, v)
    _assert_not_verified(net, box, A, b, method=method)


@pytest.mark.parametrize("solver", BENDERS)
@settings(max_examples=8, suppress_health_check=[HealthCheck.too_slow])
@given(data=boundary_cases(max_depth=2, max_width=3))
def test_benders_never_answers_unsat_on_a_zero_margin(solver: str, data: tuple) -> None:  # type: ignore[type-arg]
    net, box, A, b, _ = data
    _assert_not_verified(net, box, A, b, method="benders", solver=solver)


# --------------------------------------------------------------------------------------------
# the issue's reproduction, through ONNX and the VNN-COMP command
# --------------------------------------------------------------------------------------------


def _write_repro(tmp: Path) -> tuple[Path, Path]:
    """Gemm-Relu-Gemm, W1 = I, b1 = (0.03, -0.7), W2 = (1.38, 1.29), b2 = 0.98 (float32);
    X_0 in [-0.03, 0.97], X_1 in [0.7, 1.7]; unsafe Y_0 <= 0.98. At x = (-0.03, 0.7) the
    output is exactly 0.98 (in real arithmetic and in float32): falsifiable."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    f32 = np.float32
    inits = [
        numpy_helper.from_array(np.eye(2, dtype=f32), "W1"),
        numpy_helper.from_array(np.array([0.03, -0.7], f32), "b1"),
        numpy_helper.from_array(np.array([[1.38, 1.29]], f32), "W2"),
        numpy_helper.from_array(np.array([0.98], f32), "b2"),
    ]
    nodes = [
        helper.make_node("Gemm", ["X", "W1", "b1"], ["h"], transB=1),
        helper.make_node("Relu", ["h"], ["r"]),
        helper.make_node("Gemm", ["r", "W2", "b2"], ["Y"], transB=1),
    ]
    graph = helper.make_graph(
        nodes,
        "repro",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, 2])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [1, 1])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx_path = tmp / "repro.onnx"
    onnx.save(model, str(onnx_path))

    def c(v: float) -> str:
        return repr(float(f32(v)))

    spec = tmp / "repro.vnnlib"
    spec.write_text(
        "(declare-const X_0 Real)\n(declare-const X_1 Real)\n(declare-const Y_0 Real)\n"
        f"(assert (>= X_0 {c(-0.03)}))\n(assert (<= X_0 {c(0.97)}))\n"
        f"(assert (>= X_1 {c(0.7)}))\n(assert (<= X_1 {c(1.7)}))\n"
        f"(assert (<= Y_0 {c(0.98)}))\n"
    )
    return onnx_path, spec


def test_issue_reproduction_is_never_unsat(tmp_path: Path) -> None:
    from nncert.verify.importers import from_onnx, onnxruntime_forward
    from nncert.verify.vnnlib import load_vnnlib

    onnx_path, spec = _write_repro(tmp_path)
    x = np.array([[np.float32(-0.03), np.float32(0.7)]], dtype=np.float64)
    assert float(onnxruntime_forward(onnx_path, x)[0, 0]) == float(np.float32(0.98))
    net, prop = from_onnx(onnx_path), load_vnnlib(spec)
    for method in ("crown", "ibp", "alpha-crown"):
        case = prop.cases[0]
        lo, _ = spec_bounds(net, case.input_box, case.A, -case.b, method=method)
        assert np.max(lo) <= 0.0
    for method in METHODS:
        res = verify(net, prop, method=method, attack=False, time_limit=10.0)
        assert res.verdict is not Verdict.VERIFIED, method
    # the exact command of the report
    out = tmp_path / "result.txt"
    cmd = [
        sys.executable,
        "-m",
        "nncert.verify.cli",
        "vnncomp",
        str(onnx_path),
        str(spec),
        str(out),
        "20",
    ]
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    first = out.read_text().split()[0]
    assert first in ("sat", "unknown", "timeout"), out.read_text()
