"""Constraints over inputs (issue 16 item 2): ``x0 + x1 <= 1``, ``y0 <= 2 x0``.

Parsing (VNN-LIB 1.0 and 2.0 give the same :class:`MixedProperty`), the lowered network
``[f(x); x]`` (exact in rational arithmetic), verdicts against a dense grid and an exact
MILP, and ``nncert vnncomp`` end to end on generated ONNX/VNN-LIB files.
"""

from __future__ import annotations

import re
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from exact_arith import exact_forward
from hypothesis import given, settings
from hypothesis import strategies as st
from io_helpers import nncert
from nets import seeded_network

from nncert.compression.onnx_export import to_onnx
from nncert.verify.errors import InvalidPropertyError
from nncert.verify.lowering import InputCarryNetwork, carry_inputs, lower_property
from nncert.verify.network import HardTanh, LeakyReLU, Network, ReLU, Sigmoid, Tanh
from nncert.verify.pipeline import verify
from nncert.verify.result import Verdict
from nncert.verify.spec import Box, MixedProperty, PolynomialProperty, Property, UnsafeCase
from nncert.verify.vnnlib import parse_vnnlib_string

V1 = """(declare-const X_0 Real)
(declare-const X_1 Real)
(declare-const Y_0 Real)
(declare-const Y_1 Real)
(assert (>= X_0 -1))
(assert (<= X_0 1))
(assert (>= X_1 -0.5))
(assert (<= X_1 2))
(assert (<= (+ X_0 X_1) 1))
(assert (or (<= Y_0 (* 2 X_0)) (and (>= (- Y_0 Y_1) 0.5) (= X_1 (- X_0 0.25)))))
"""

V2 = """(vnnlib-version <2.0>)
(declare-network f
  (declare-input X float32 [2])
  (declare-output Y float32 [2]))
(assert (and (>= X[0] -1.0) (<= X[0] 1.0) (>= X[1] -0.5) (<= X[1] 2.0)))
(assert (<= (+ X[0] X[1]) 1.0))
(assert (or (<= Y[0] (* 2.0 X[0])) (and (>= (- Y[0] Y[1]) 0.5) (== X[1] (- X[0] 0.25)))))
"""


def test_v1_golden_dnf() -> None:
    prop = parse_vnnlib_string(V1)
    assert isinstance(prop, MixedProperty)
    assert (prop.n_inputs, prop.n_outputs, len(prop.cases)) == (2, 2, 2)
    box = Box(np.array([-1.0, -0.5]), np.array([1.0, 2.0]))
    # columns: Y_0, Y_1, X_0, X_1
    want = [
        (np.array([[0, 0, 1, 1], [1, 0, -2, 0]]), np.array([1, 0])),
        (
            np.array([[0, 0, 1, 1], [-1, 1, 0, 0], [0, 0, -1, 1], [0, 0, 1, -1]]),
            np.array([1, -0.5, -0.25, 0.25]),
        ),
    ]
    for case, (A, b) in zip(prop.cases, want):
        assert case.input_box == box
        np.testing.assert_array_equal(case.A, A)
        np.testing.assert_array_equal(case.b, b)


def test_v2_gives_the_same_property() -> None:
    assert parse_vnnlib_string(V2) == parse_vnnlib_string(V1)


def test_output_comparisons_stay_plain_rows() -> None:
    text = V1.split("(assert (<= (+")[0] + "(assert (<= Y_0 Y_1))\n"
    prop = parse_vnnlib_string(text)
    assert isinstance(prop, Property)
    np.testing.assert_array_equal(prop.cases[0].A, [[1.0, -1.0]])
    np.testing.assert_array_equal(prop.cases[0].b, [0.0])


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(V1.replace("(* 2 X_0)", "(* X_0 X_0)"), id="v1"),
        pytest.param(V2.replace("(* 2.0 X[0])", "(* X[0] X[1])"), id="v2"),
    ],
)
def test_polynomial_constraints_are_polynomial_properties(text: str) -> None:
    # decided since issue 16 item 3 (tests/verify/test_polynomial_constraints.py)
    assert isinstance(parse_vnnlib_string(text), PolynomialProperty)


# ---------------------------------------------------------------------------------------------
# The lowered network
# ---------------------------------------------------------------------------------------------

ACTS = {
    "relu": ReLU(),
    "leaky": LeakyReLU(0.1),
    "hardtanh": HardTanh(-1.0, 1.0),
    "relu6": HardTanh(0.0, 6.0),
}


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    acts=st.lists(st.sampled_from(sorted(ACTS)), min_size=0, max_size=2),
    lo=st.lists(st.floats(-50, 50), min_size=2, max_size=2),
    width=st.lists(st.floats(0, 100), min_size=2, max_size=2),
)
def test_carry_is_exact_in_rational_arithmetic(
    seed: int, acts: list[str], lo: list[float], width: list[float]
) -> None:
    layers = [ACTS[a] for a in acts]
    net = seeded_network(seed, [2, *[3] * len(layers), 2], layers)
    lower = np.array(lo)
    upper = lower + np.array(width)
    box = Box(lower, upper)
    carry = carry_inputs(net, box)
    plain = Network(carry.layers, carry.input_shape)  # the layers the bound engine reads
    rng = np.random.default_rng(seed)
    points = np.vstack([lower, upper, box.sample(3, rng)])
    for x in points:
        out = exact_forward(plain, x)
        assert out[2:] == [Fraction(float(v)) for v in x]  # the inputs, exactly
        assert out[:2] == exact_forward(net.normalized(), x)  # f, exactly as its normal form
    # float64: the layers agree up to rounding; forward() is [f(x); x] with f as given
    np.testing.assert_allclose(
        plain.forward(points), np.hstack([net.forward(points), points]), rtol=1e-9, atol=1e-9
    )
    np.testing.assert_array_equal(carry.forward(points)[:, 2:], points)
    np.testing.assert_array_equal(carry.forward(points)[:, :2], net.forward(points))


def test_carry_neurons_are_stably_active_under_relu() -> None:
    """Interval bounds already prove the carry neurons active: no relaxation, no binaries."""
    from nncert.verify.bounds import interval_bounds

    net = seeded_network(1, [2, 4, 4, 2], [ReLU(), ReLU()])
    box = Box(np.array([-3.0, 1.0]), np.array([-1.0, 5.0]))
    bounds = interval_bounds(carry_inputs(net, box), box)
    for hidden in bounds.pre_activation[:-1]:
        assert np.all(hidden.lower[4:] > 0.0)  # stable: ReLU is the identity there
        margin = np.array([3.0, 4.0]) / 256  # 2^-8 max(1, |lower|, width)
        np.testing.assert_allclose(hidden.lower[4:], margin, rtol=1e-9)
        np.testing.assert_allclose(hidden.upper[4:], np.array([2.0, 4.0]) + margin, rtol=1e-9)


@pytest.mark.parametrize("act", [Sigmoid(), Tanh(), HardTanh(0.5, 2.0)], ids=str)
def test_networks_that_cannot_carry_are_refused_by_the_lowering(act: object) -> None:
    net = seeded_network(0, [2, 3, 1], [act])
    with pytest.raises(InvalidPropertyError, match="identity on an interval"):
        carry_inputs(net, Box(np.zeros(2), np.ones(2)))


@settings(max_examples=50, deadline=None)
@given(
    C=st.lists(st.floats(-1e3, 1e3), min_size=3, max_size=3),
    lo=st.lists(st.floats(-1e3, 1e3), min_size=3, max_size=3),
    width=st.lists(st.floats(0, 1e3), min_size=3, max_size=3),
    e=st.floats(-1e3, 1e3),
)
def test_relaxed_right_hand_side_encloses_the_exact_one(
    C: list[float], lo: list[float], width: list[float], e: float
) -> None:
    """``e' >= e - min_box c . x`` exactly (rationals; the minimum is at a corner), and not
    much larger."""
    from nncert.verify.lowering import relax_property

    lower = np.array(lo)
    upper = lower + np.array(width)
    A = np.concatenate([[1.0], C]).reshape(1, -1)
    prop = MixedProperty((UnsafeCase(Box(lower, upper), A, np.array([e])),), n_outputs=1)
    relaxed = relax_property(prop).cases[0]
    np.testing.assert_array_equal(relaxed.A, [[1.0]])
    exact_min = sum(
        min(Fraction(c) * Fraction(a), Fraction(c) * Fraction(b))
        for c, a, b in zip(C, lower.tolist(), upper.tolist())
    )
    exact = Fraction(e) - exact_min
    assert Fraction(float(relaxed.b[0])) >= exact
    scale = 1 + abs(e) + float(np.abs(C) @ np.maximum(np.abs(lower), np.abs(upper)))
    assert float(relaxed.b[0]) <= float(exact) + 1e-9 * scale  # rounding slack only


SMOOTH_GRID = np.stack(np.meshgrid(*[np.linspace(-1, 1, 201)] * 2), -1).reshape(-1, 2)


@pytest.mark.parametrize("act", [Sigmoid(), Tanh()], ids=str)
@pytest.mark.parametrize("seed", range(3))
def test_smooth_networks_are_decided_by_a_sound_relaxation(act: object, seed: int) -> None:
    """Sigmoid/Tanh: rows over inputs are relaxed (VERIFIED stays sound); a witness must
    satisfy the original rows, else the answer is UNKNOWN, never a wrong FALSIFIED."""
    net = seeded_network(seed, [2, 6, 2], [act], scale=1.0)
    box = Box(-np.ones(2), np.ones(2))
    y0 = net.forward(SMOOTH_GRID)[:, 0]
    A = np.array([[1.0, 0.0, -2.0, 0.0], [0.0, 0.0, 1.0, 1.0]])
    # holds: y0 - 2 x0 <= c is impossible when c + 2 < min y0 (grid min - Lipschitz margin)
    lip = np.prod([np.linalg.norm(d.weight, 2) for d in net.dense_layers])
    c_holds = float(y0.min()) - lip * 2 * np.sqrt(2) / 200 - 2.5
    res = verify(net, MixedProperty((UnsafeCase(box, A, np.array([c_holds, 0.5])),), 2))
    assert res.verdict is Verdict.VERIFIED
    # the input rows alone are infeasible: x0 + x1 <= -2.5 on [-1, 1]^2
    res = verify(net, MixedProperty((UnsafeCase(box, A, np.array([1e9, -2.5])),), 2))
    assert res.verdict is Verdict.VERIFIED
    # violated only near the corner (-1, -1): the relaxed property's first witness (the box
    # centre, say) is not one of the original property
    prop = MixedProperty((UnsafeCase(box, A, np.array([1e9, -1.9])),), 2)
    res = verify(net, prop, method="crown")
    assert res.verdict in (Verdict.UNKNOWN, Verdict.FALSIFIED)
    if res.verdict is Verdict.FALSIFIED:
        assert res.counterexample is not None
        assert prop.is_counterexample(res.counterexample.x, net.forward(res.counterexample.x))


# ---------------------------------------------------------------------------------------------
# Verdicts against brute force
# ---------------------------------------------------------------------------------------------

GRID = np.stack(np.meshgrid(np.linspace(-1, 1, 301), np.linspace(-1, 1, 301)), -1).reshape(-1, 2)


def _grid_min(net: Network, A: np.ndarray, b: np.ndarray, mask_rows: np.ndarray) -> float:
    """min over grid points of max_r (A_r [f(x); x] - b_r)."""
    z = np.hstack([net.forward(GRID), GRID])
    return float(np.min(np.max(z @ A.T - b, axis=1)))


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("method", ["milp", "auto"])
def test_verdicts_match_brute_force(seed: int, method: str) -> None:
    net = seeded_network(seed, [2, 8, 8, 2], [ReLU(), ReLU()], scale=1.0)
    box = Box(-np.ones(2), np.ones(2))
    # rows: y0 - 2 x0 <= c (input-output), x0 + x1 <= 0.5 (inputs), y1 <= y0 + 10 (outputs)
    A = np.array([[1.0, 0.0, -2.0, 0.0], [0.0, 0.0, 1.0, 1.0], [-1.0, 1.0, 0.0, 0.0]])
    base = np.array([0.0, 0.5, 10.0])
    m = _grid_min(net, A, base, np.ones(3, bool))
    # the grid minimum of max_r(...) with c = 0; shifting c moves the first row only while it
    # is the largest, so search c on the grid directly
    z = np.hstack([net.forward(GRID), GRID])
    feasible = (z @ A[1:].T - base[1:] <= 0).all(axis=1)
    v = z[feasible] @ A[0]
    c_violated = float(v.min()) + 0.01  # a grid point violates
    c_holds = float(v.min()) - 1.0  # see test_brute_force_margin_is_sound
    assert m <= 10  # the grid is meaningful
    for c, expected in ((c_violated, Verdict.FALSIFIED), (c_holds, Verdict.VERIFIED)):
        b = base.copy()
        b[0] = c
        prop = MixedProperty((UnsafeCase(box, A, b),), n_outputs=2)
        res = verify(net, prop, method=method, time_limit=60, seed=0)
        assert res.verdict is expected, (c, res.reason)
        if expected is Verdict.FALSIFIED:
            cex = res.counterexample
            assert cex is not None and cex.y.shape == (2,)
            np.testing.assert_array_equal(cex.y, net.forward(cex.x))
            assert prop.is_counterexample(cex.x, net.forward(cex.x))
            assert box.contains(cex.x) and cex.x.sum() <= 0.5


def test_brute_force_margin_is_sound() -> None:
    """The margin 1.0 of the VERIFIED expectations: every feasible point lies within
    ``h = 2 sqrt(2) / 300`` of a feasible grid point (spacing 2/300; the diagonal constraint
    x0 + x1 <= 0.5 included), and the first row ``y0 - 2 x0`` is Lipschitz with at most the
    product of the layers' spectral norms plus 2; that times ``h`` is below 1.0."""
    h = 2 * np.sqrt(2) / 300
    for seed in [*range(4), 7]:
        sizes = [2, 6, 2] if seed == 7 else [2, 8, 8, 2]
        net = seeded_network(seed, sizes, [ReLU()] * (len(sizes) - 2), scale=1.0)
        lip = np.prod([np.linalg.norm(d.weight, 2) for d in net.dense_layers])
        assert (lip + 2.0) * h < 1.0


# ---------------------------------------------------------------------------------------------
# End to end: nncert vnncomp and nncert verify on files
# ---------------------------------------------------------------------------------------------


def _files(tmp_path: Path, c: float) -> tuple[Path, Path, Network]:
    net = seeded_network(7, [2, 6, 2], [ReLU()], scale=1.0)
    onnx_path = tmp_path / "net.onnx"
    to_onnx(net, onnx_path)
    spec = tmp_path / "p.vnnlib"
    spec.write_text(
        "(declare-const X_0 Real)\n(declare-const X_1 Real)\n"
        "(declare-const Y_0 Real)\n(declare-const Y_1 Real)\n"
        "(assert (>= X_0 -1))\n(assert (<= X_0 1))\n(assert (>= X_1 -1))\n(assert (<= X_1 1))\n"
        "(assert (<= (+ X_0 X_1) 0.5))\n"
        f"(assert (<= (- Y_0 (* 2 X_0)) {c!r}))\n"
    )
    return onnx_path, spec, net


def _grid_c(net: Network) -> float:
    z = np.hstack([net.forward(GRID), GRID])
    ok = GRID.sum(axis=1) <= 0.5
    return float((z[ok, 0] - 2 * z[ok, 2]).min())


@pytest.mark.parametrize("holds", [True, False])
def test_vnncomp_end_to_end(tmp_path: Path, holds: bool) -> None:
    net = seeded_network(7, [2, 6, 2], [ReLU()], scale=1.0)
    m = _grid_c(net)
    onnx_path, spec, net = _files(tmp_path, m - 1.0 if holds else m + 0.01)
    out = tmp_path / "out.txt"
    proc = nncert("vnncomp", str(onnx_path), str(spec), str(out), "60", "--quiet")
    assert proc.returncode == 0, proc.stderr
    text = out.read_text()
    if holds:
        assert text.strip() == "unsat"
        return
    assert text.startswith("sat")
    vals = {k: float(v) for k, v in re.findall(r"\((\w+) ([^()\s]+)\)", text)}
    x = np.array([vals["X_0"], vals["X_1"]])
    y = np.array([vals["Y_0"], vals["Y_1"]])
    assert -1 <= x.min() and x.max() <= 1 and x.sum() <= 0.5
    assert y[0] - 2 * x[0] <= m + 0.01 + 1e-4  # VNN-COMP's tolerance for the float32 replay
    np.testing.assert_allclose(y, net.forward(x), atol=1e-5)


def test_vnnlib_cli_end_to_end(tmp_path: Path) -> None:
    from nncert.verify.vnnlib_cli import main

    net = seeded_network(7, [2, 6, 2], [ReLU()], scale=1.0)
    m = _grid_c(net)
    onnx_path, spec, _ = _files(tmp_path, m + 0.01)
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(["verify", str(spec), "--network", f"N={onnx_path}", "--timeout", "60"]) == 0
    lines = buf.getvalue().splitlines()
    assert lines[0] == "sat"
    x = np.array([float(lines[2]), float(lines[3])])
    assert x.sum() <= 0.5


def test_supports_reports_linear_and_polynomial() -> None:
    from nncert.verify.vnnlib_cli import CAPABILITIES

    assert CAPABILITIES["arithmetic_complexity_theories"] == ("BND", "OUTC", "LIN", "POLY")
    assert "MNC" in CAPABILITIES["multiple_node_comparison_theories"]


def test_lower_property_is_deterministic() -> None:
    net = seeded_network(3, [2, 5, 2], [ReLU()])
    prop = parse_vnnlib_string(V1)
    assert isinstance(prop, MixedProperty)
    g1, p1 = lower_property(net, prop)
    g2, p2 = lower_property(net, prop)
    assert isinstance(g1, InputCarryNetwork)
    assert g1.fingerprint() == g2.fingerprint() and p1 == p2


def test_witness_is_replayed_in_onnxruntime_on_the_original_model(tmp_path: Path) -> None:
    from nncert.verify.importers import from_onnx

    net = seeded_network(7, [2, 6, 2], [ReLU()], scale=1.0)
    onnx_path, spec, _ = _files(tmp_path, _grid_c(net) + 0.01)
    prop = parse_vnnlib_string(spec.read_text())
    assert isinstance(prop, MixedProperty)
    res = verify(from_onnx(str(onnx_path)), prop, method="milp", time_limit=30)
    assert res.verdict is Verdict.FALSIFIED
    assert res.counterexample is not None and res.counterexample.onnx_checked


def test_nncert_verify_cli_decides_and_refuses_certificates(tmp_path: Path) -> None:
    import json

    net = seeded_network(7, [2, 6, 2], [ReLU()], scale=1.0)
    onnx_path, spec, _ = _files(tmp_path, _grid_c(net) + 0.01)
    proc = nncert("verify", str(onnx_path), str(spec), "--json", "--timeout", "60")
    assert proc.returncode == 1, proc.stderr  # falsified
    doc = json.loads(proc.stdout)
    x = np.array(doc["counterexample"]["input"])
    y = np.array(doc["counterexample"]["output"])
    assert y.shape == (2,) and x.sum() <= 0.5
    np.testing.assert_array_equal(y, net.forward(x))


@pytest.mark.parametrize("holds", [True, False])
def test_certificates_check_independently(tmp_path: Path, holds: bool) -> None:
    """``nncert verify --certificate`` writes a certificate about [f(x); x]; ``nncert check``
    rebuilds that network from the model alone (and from the spec) and re-derives it."""
    net = seeded_network(7, [2, 6, 2], [ReLU()], scale=1.0)
    m = _grid_c(net)
    onnx_path, spec, _ = _files(tmp_path, m - 1.0 if holds else m + 0.01)
    cert = tmp_path / "c.json"
    proc = nncert(
        "verify", str(onnx_path), str(spec), "--certificate", str(cert), "--method", "milp"
    )
    assert proc.returncode == (0 if holds else 1), proc.stderr
    for extra in ([], [str(spec)]):
        proc = nncert("check", str(cert), str(onnx_path), *extra)
        assert proc.returncode in (0, 6), proc.stdout + proc.stderr
        assert "certificate holds" in proc.stdout
    # about another property: rejected
    other = tmp_path / "other.vnnlib"
    other.write_text(spec.read_text().replace("0.5))", "0.25))"))
    proc = nncert("check", str(cert), str(onnx_path), str(other))
    assert proc.returncode == 1 and "different property" in proc.stdout
    # about another model: rejected
    net2 = seeded_network(8, [2, 6, 2], [ReLU()], scale=1.0)
    to_onnx(net2, tmp_path / "net2.onnx")
    proc = nncert("check", str(cert), str(tmp_path / "net2.onnx"))
    assert proc.returncode == 1 and "fingerprint mismatch" in proc.stdout


@pytest.mark.parametrize("seed", range(3))
def test_output_comparisons_against_brute_force(seed: int) -> None:
    """``Y_0 - Y_1 >= c`` (VNN-LIB 2.0, two output nodes compared) against the grid."""
    net = seeded_network(seed, [2, 8, 8, 2], [ReLU(), ReLU()], scale=1.0)
    y = net.forward(GRID)
    top = float((y[:, 0] - y[:, 1]).max())
    for c, expected in ((top - 0.01, Verdict.FALSIFIED), (top + 1.0, Verdict.VERIFIED)):
        text = (
            "(vnnlib-version <2.0>)\n(declare-network f\n  (declare-input X float32 [2])\n"
            "  (declare-output Y float32 [2]))\n"
            "(assert (and (>= X[0] -1.0) (<= X[0] 1.0) (>= X[1] -1.0) (<= X[1] 1.0)))\n"
            f"(assert (>= (- Y[0] Y[1]) {np.format_float_positional(c, trim='0')}))\n"
        )
        prop = parse_vnnlib_string(text)
        assert isinstance(prop, Property)
        res = verify(net, prop, method="milp", time_limit=60)
        assert res.verdict is expected
        if expected is Verdict.FALSIFIED:
            assert res.counterexample is not None
            yx = net.forward(res.counterexample.x)
            assert yx[0] - yx[1] >= c


def test_several_input_tensors_couple_across_tensors() -> None:
    text = """(vnnlib-version <2.0>)
(declare-network f
  (declare-input A float32 [1])
  (declare-input B float32 [1])
  (declare-output Y float32 [1]))
(assert (and (>= A[0] 0.0) (<= A[0] 1.0) (>= B[0] 0.0) (<= B[0] 1.0)))
(assert (<= (- A[0] B[0]) Y[0]))
"""
    prop = parse_vnnlib_string(text)
    assert isinstance(prop, MixedProperty)
    # A - B - Y <= 0, columns [Y, A, B]
    np.testing.assert_array_equal(prop.cases[0].A, [[-1.0, 1.0, -1.0]])
    np.testing.assert_array_equal(prop.cases[0].b, [0.0])


def test_rows_over_inputs_implied_by_the_box_are_dropped() -> None:
    """``X_0 + X_1 <= 2`` holds on [-1, 1]^2: the property is the plain one (no carry);
    ``X_0 + X_1 <= 1.5`` does not, and stays (scaled by 2^20, the same set)."""
    from nncert.verify.lowering import normalize_input_rows

    box = Box(-np.ones(2), np.ones(2))
    A = np.array([[0.0, 0.0, 1.0, 1.0], [1.0, -1.0, 0.0, 0.0]])
    net = seeded_network(0, [2, 4, 2], [ReLU()])
    implied = MixedProperty((UnsafeCase(box, A, np.array([2.0, 0.0])),), n_outputs=2)
    simple = normalize_input_rows(implied)
    assert isinstance(simple, Property)
    np.testing.assert_array_equal(simple.cases[0].A, [[1.0, -1.0]])
    g, p = lower_property(net, implied)
    assert g is net and p == simple
    kept = MixedProperty((UnsafeCase(box, A, np.array([1.5, 0.0])),), n_outputs=2)
    scaled = normalize_input_rows(kept)
    assert isinstance(scaled, MixedProperty)
    np.testing.assert_array_equal(scaled.cases[0].A, [[0, 0, 2.0**20, 2.0**20], A[1]])
    np.testing.assert_array_equal(scaled.cases[0].b, [1.5 * 2.0**20, 0.0])
    # every row implied: one always-true row keeps the case "unsafe everywhere"
    only = MixedProperty((UnsafeCase(box, A[:1], np.array([2.0])),), n_outputs=2)
    res = verify(net, only, method="crown")
    assert res.verdict is Verdict.FALSIFIED
