"""Polynomial constraints (issue 16, VNN-LIB's POLY theory): ``x*x < -1``, ``y0 y1 >= 0``.

Parsing (VNN-LIB 1.0 and 2.0 give the same :class:`PolynomialProperty`; random expressions
parse to the polynomial they denote), the lowered network ``[z_S; monomials]`` (exact in
rational arithmetic, its sound bounds enclose exact values), verdicts against sampling, the
witness replay, and ``nncert-vnnlib`` / ``nncert vnncomp`` end to end on ONNX files.
"""

from __future__ import annotations

import contextlib
import io
import re
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from exact_arith import assert_enclosed, exact_forward
from hypothesis import given, settings
from hypothesis import strategies as st
from io_helpers import nncert
from nets import seeded_network

from nncert.compression.onnx_export import to_onnx
from nncert.verify.bounds import crown_bounds, interval_bounds
from nncert.verify.errors import InvalidPropertyError
from nncert.verify.importers import from_onnx
from nncert.verify.lowering import (
    PolynomialNetwork,
    lower_polynomial,
    normalize_polynomial_rows,
    relax_polynomial,
)
from nncert.verify.network import HardTanh, LeakyReLU, Network, RectifiedPower, ReLU, Sigmoid, Tanh
from nncert.verify.pipeline import verify
from nncert.verify.result import Verdict
from nncert.verify.spec import (
    Box,
    MixedProperty,
    PolynomialProperty,
    Property,
    UnsafeCase,
    monomial_values,
)
from nncert.verify.vnnlib import load_vnnlib, parse_vnnlib_string

HEAD1 = """(declare-const X_0 Real)
(declare-const X_1 Real)
(declare-const Y_0 Real)
(declare-const Y_1 Real)
(assert (>= X_0 -1))
(assert (<= X_0 1))
(assert (>= X_1 -0.5))
(assert (<= X_1 2))
"""

HEAD2 = """(vnnlib-version <2.0>)
(declare-network f
  (declare-input X float32 [2])
  (declare-output Y float32 [2]))
(assert (and (>= X[0] -1.0) (<= X[0] 1.0) (>= X[1] -0.5) (<= X[1] 2.0)))
"""

# every kind of product, mixed with linear terms; columns of z = [Y_0, Y_1, X_0, X_1]
BODY1 = """(assert (or
  (<= (+ (* X_0 X_0) (* 2 X_0 X_1) (- Y_0) 1) (* Y_0 X_1))
  (and (>= (* Y_0 Y_1) 0.5) (<= (* X_0 X_1 Y_1) (+ X_1 3)))))
"""
BODY2 = """(assert (or
  (<= (+ (* X[0] X[0]) (* 2.0 X[0] X[1]) (- Y[0]) 1.0) (* Y[0] X[1]))
  (and (>= (* Y[0] Y[1]) 0.5) (<= (* X[0] X[1] Y[1]) (+ X[1] 3.0)))))
"""


def test_v1_golden() -> None:
    prop = parse_vnnlib_string(HEAD1 + BODY1)
    assert isinstance(prop, PolynomialProperty)
    assert (prop.n_inputs, prop.n_outputs) == (2, 2)
    # in order of appearance: X_0 X_0, X_0 X_1, Y_0 X_1, Y_0 Y_1, X_0 X_1 Y_1
    assert prop.monomials == ((2, 2), (2, 3), (0, 3), (0, 1), (1, 2, 3))
    box = Box(np.array([-1.0, -0.5]), np.array([1.0, 2.0]))
    want = [
        ([[-1, 0, 0, 0, 1, 2, -1, 0, 0]], [-1]),
        ([[0, 0, 0, 0, 0, 0, 0, -1, 0], [0, 0, 0, -1, 0, 0, 0, 0, 1]], [-0.5, 3]),
    ]
    assert len(prop.cases) == 2
    for case, (A, b) in zip(prop.cases, want):
        assert case.input_box == box
        np.testing.assert_array_equal(case.A, A)
        np.testing.assert_array_equal(case.b, b)


def test_v2_gives_the_same_property() -> None:
    p2 = parse_vnnlib_string(HEAD2 + BODY2)
    assert p2 == parse_vnnlib_string(HEAD1 + BODY1)


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        ("(assert (<= (- (* X_0 X_1) (* X_1 X_0)) Y_0))", Property),  # the products cancel
        ("(assert (<= (* 2 (+ X_0 Y_0) 3) 1))", MixedProperty),  # constant factors only
    ],
)
def test_without_products_it_stays_linear(body: str, kind: type) -> None:
    assert type(parse_vnnlib_string(HEAD1 + body)) is kind


def test_output_only_products_keep_the_box() -> None:
    prop = parse_vnnlib_string(HEAD1 + "(assert (<= (* Y_0 Y_0) 0.25))")
    assert isinstance(prop, PolynomialProperty)
    assert prop.monomials == ((0, 0),)
    np.testing.assert_array_equal(prop.cases[0].A, [[0, 0, 0, 0, 1]])


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        pytest.param(
            HEAD1 + "\n(assert (<= (* X_0 X_1 X_0 Y_0 Y_1) 1))\n",
            "line 10: polynomial term of degree 5",
            id="v1-degree-5",
        ),
        pytest.param(
            HEAD1 + "(assert (<= (* (+ X_0 X_1) (* X_0 X_0) (+ Y_0 1) Y_1) 1))",
            "polynomial term of degree 5",
            id="v1-degree-5-nested",
        ),
        pytest.param(
            HEAD2 + "(assert (<= (* X[0] X[1] X[0] Y[0] Y[1]) 1.0))",
            "line 6: polynomial term of degree 5",
            id="v2-degree-5",
        ),
        pytest.param(
            HEAD1.replace(
                "X_1 Real)",
                "X_1 Real)\n" + "\n".join(f"(declare-const X_{i} Real)" for i in range(2, 30)),
            )
            + "".join(f"(assert (>= X_{i} 0))(assert (<= X_{i} 1))" for i in range(2, 30))
            + "(assert (<= (* (+ "
            + " ".join(f"X_{i}" for i in range(30))
            + ") (+ "
            + " ".join(f"X_{i}" for i in range(30))
            + ")) 1))",
            "more than 256 distinct products",
            id="too-many-monomials",
        ),
    ],
)
def test_unsupported_polynomials_give_one_line_errors(
    tmp_path: Path, text: str, fragment: str
) -> None:
    path = tmp_path / "p.vnnlib"
    path.write_text(text)
    with pytest.raises(InvalidPropertyError) as info:
        load_vnnlib(path)
    msg = str(info.value)
    assert msg.startswith(f"{path}: ") and "\n" not in msg and fragment in msg, msg


def test_products_in_multi_network_queries_are_refused() -> None:
    text = """(vnnlib-version <2.0>)
(declare-network f
  (declare-input X float32 [1])
  (declare-output Y float32 [1]))
(declare-network g
  (equal-to f)
  (declare-input Xg float32 [1])
  (declare-output Yg float32 [1]))
(assert (and (>= X[0] 0.0) (<= X[0] 1.0) (== X[0] Xg[0])))
(assert (<= (* Y[0] Yg[0]) 0.0))
"""
    with pytest.raises(InvalidPropertyError, match=r"polynomial constraints .* several networks"):
        parse_vnnlib_string(text)


# --------------------------------------------------------------------------------------------
# Random expressions parse to the polynomial they denote
# --------------------------------------------------------------------------------------------

_V1_NAMES = ["Y_0", "Y_1", "X_0", "X_1"]
_V2_NAMES = ["Y[0]", "Y[1]", "X[0]", "X[1]"]


def _expr(depth: int) -> st.SearchStrategy[tuple]:
    leaf = st.one_of(
        st.integers(0, 3).map(lambda i: ("var", i)),
        st.sampled_from([0.5, 1.0, 2.0, -1.5, 3.0]).map(lambda c: ("num", c)),
    )
    if depth == 0:
        return leaf
    sub = _expr(depth - 1)
    return st.one_of(
        leaf,
        st.tuples(st.sampled_from(["+", "-", "*"]), st.lists(sub, min_size=1, max_size=3)),
    )


def _render(e: tuple, names: list[str], v2: bool) -> str:
    if e[0] == "var":
        return names[e[1]]
    if e[0] == "num":
        return repr(float(e[1])) if v2 else repr(e[1])
    op, args = e
    return f"({op} " + " ".join(_render(a, names, v2) for a in args) + ")"


def _eval(e: tuple, z: list[Fraction]) -> Fraction:
    if e[0] == "var":
        return z[e[1]]
    if e[0] == "num":
        return Fraction(e[1])
    op, args = e
    vals = [_eval(a, z) for a in args]
    if op == "+":
        return sum(vals, Fraction(0))
    if op == "-":
        return -vals[0] if len(vals) == 1 else vals[0] - sum(vals[1:], Fraction(0))
    out = Fraction(1)
    for v in vals:
        out *= v
    return out


def _degree(e: tuple) -> int:
    if e[0] == "var":
        return 1
    if e[0] == "num":
        return 0
    op, args = e
    ds = [_degree(a) for a in args]
    return sum(ds) if op == "*" else max(ds)


_PAD = 2.0**-10  # ``(<= (+ E (* PAD Y_1 Y_1 Y_1 Y_1)) 0)`` is a row, never an input bound


@settings(max_examples=80, deadline=None)
@given(e=_expr(3), v2=st.booleans(), seed=st.integers(0, 2**16))
def test_random_expressions_parse_to_their_polynomial(e: tuple, v2: bool, seed: int) -> None:
    """``(<= (+ E pad) 0)`` gives one row ``a . [y; x; m] <= b`` with
    ``a . [y; x; m] - b = E(z) + pad(z)`` exactly at random dyadic points (the constants are
    dyadic too, so no rounding happens anywhere)."""
    names = _V2_NAMES if v2 else _V1_NAMES
    pad = f"(* {_PAD!r} {names[1]} {names[1]} {names[1]} {names[1]})"
    text = (HEAD2 if v2 else HEAD1) + f"(assert (<= (+ {_render(e, names, v2)} {pad}) 0.0))\n"
    if _degree(e) > 4:
        try:
            parse_vnnlib_string(text)
        except InvalidPropertyError as err:
            assert "degree" in str(err)
        return  # (a high-degree product may still cancel; that is fine either way)
    prop = parse_vnnlib_string(text)
    assert isinstance(prop, PolynomialProperty)
    case = prop.cases[0]
    assert case.n_rows == 1
    rng = np.random.default_rng(seed)
    for _ in range(3):
        z = rng.integers(-4, 5, size=4) / 4.0
        zf = [Fraction(float(v)) for v in z]
        exact = _eval(e, zf) + Fraction(_PAD) * zf[1] ** 4
        cols = prop.columns(z[2:], z[:2])
        got = Fraction(float((case.A @ cols)[0])) - Fraction(float(case.b[0]))
        assert got == exact, (text, z)


# --------------------------------------------------------------------------------------------
# The lowered network
# --------------------------------------------------------------------------------------------

ACTS = {"relu": ReLU(), "leaky": LeakyReLU(0.1), "hardtanh": HardTanh(-1.0, 1.0)}


def _random_property(
    rng: np.random.Generator, n_in: int, n_out: int, degree: int
) -> PolynomialProperty:
    n_z = n_out + n_in
    k = int(rng.integers(1, 4))
    monos: set[tuple[int, ...]] = set()
    while len(monos) < k:
        d = int(rng.integers(2, degree + 1))
        cols = rng.integers(0, n_z, size=d)
        if rng.random() < 0.4:  # squares and powers of one column, often
            cols[:] = cols[0]
        monos.add(tuple(sorted(int(j) for j in cols)))
    lo = rng.uniform(-2, 1, size=n_in)
    box = Box(lo, lo + rng.uniform(0.1, 2, size=n_in))
    A = rng.normal(size=(2, n_z + k)) * (rng.random((2, n_z + k)) < 0.6)
    A[:, n_z:] = rng.normal(size=(2, k))  # every monomial used
    return PolynomialProperty(
        (UnsafeCase(box, A, rng.normal(size=2)),), n_outputs=n_out, monomials=tuple(monos)
    )


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    acts=st.lists(st.sampled_from(sorted(ACTS)), min_size=0, max_size=2),
    degree=st.integers(2, 4),
)
def test_lowered_network_is_exact_and_its_bounds_enclose_it(
    seed: int, acts: list[str], degree: int
) -> None:
    """In rational arithmetic the layers of ``h`` compute ``[z_S; m(z)]`` exactly, ``z`` the
    exact ``[f(x); x]``; CROWN bounds of ``h`` enclose those exact values; ``h.forward``
    agrees with the layers up to rounding."""
    layers = [ACTS[a] for a in acts]
    net = seeded_network(seed, [2, *[3] * len(layers), 2], layers, scale=1.0)
    rng = np.random.default_rng(seed)
    prop = _random_property(rng, 2, 2, degree)
    hull = prop.input_hull()
    ob = interval_bounds(net, hull).output
    h, lowered = lower_polynomial(net, prop, (ob.lower, ob.upper))
    assert isinstance(h, PolynomialNetwork)
    plain = Network(h.layers, h.input_shape)
    assert RectifiedPower(2.0) in plain.layers
    bounds = crown_bounds(h, hull).output
    points = np.vstack([hull.lower, hull.upper, hull.sample(3, rng)])
    for x in points:
        z = [*exact_forward(net, x), *(Fraction(float(v)) for v in x)]
        want = [z[j] for j in h.columns]
        for m in prop.monomials:
            p = Fraction(1)
            for j in m:
                p *= z[j]
            want.append(p)
        got = exact_forward(plain, x)
        assert got == want
        assert_enclosed(got, bounds.lower, bounds.upper, exact=True, what="h")
    scale = 1.0 + np.abs(h.forward(points)).max()
    np.testing.assert_allclose(plain.forward(points), h.forward(points), atol=1e-7 * scale)
    # the lowered rows over h(x) are the original rows over [f(x); x; m]
    for x in points:
        cols = prop.columns(x, net.forward(x))
        np.testing.assert_allclose(
            lowered.cases[0].A @ h.forward(x), prop.cases[0].A @ cols, rtol=1e-12, atol=1e-12
        )


def test_products_of_outputs_need_no_input_carry() -> None:
    """Only outputs in the rows: ``h`` is ``f`` plus one product stage (also for Tanh)."""
    net = seeded_network(0, [2, 4, 2], [Tanh()], scale=1.0)
    box = Box(-np.ones(2), np.ones(2))
    prop = PolynomialProperty(
        (UnsafeCase(box, np.array([[1.0, 0.0, 0, 0, -1.0]]), np.array([0.0])),), 2, ((0, 1),)
    )
    ob = interval_bounds(net, box).output
    h, _ = lower_polynomial(net, prop, (ob.lower, ob.upper))
    assert h.columns == (0,) and h.n_outputs == 2 and h.n_inputs == 2
    assert len(h.layers) == len(net.layers) + 3
    x = box.sample(4, np.random.default_rng(0))
    y = net.forward(x)
    np.testing.assert_array_equal(h.forward(x), np.column_stack([y[:, 0], y[:, 0] * y[:, 1]]))


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**16), degree=st.integers(2, 4))
def test_relaxation_and_normalization_keep_the_unsafe_set(seed: int, degree: int) -> None:
    """At random points: a point of the original unsafe set is in the relaxed one
    (:func:`relax_polynomial`, when it exists), and :func:`normalize_polynomial_rows` keeps
    membership (both computed with exact rational row values, so no tolerance)."""
    rng = np.random.default_rng(seed)
    prop = _random_property(rng, 2, 2, degree)
    case = prop.cases[0]
    norm = normalize_polynomial_rows(prop)
    try:
        relaxed = relax_polynomial(prop)
    except InvalidPropertyError as err:
        assert "product of outputs and inputs" in str(err)
        relaxed = None
    box = case.input_box
    xs = np.vstack([box.lower, box.upper, box.sample(30, rng)])
    ys = rng.normal(size=(len(xs), 2)) * 3

    def inside(p: PolynomialProperty | Property, x: np.ndarray, y: np.ndarray) -> bool:
        if isinstance(p, Property):
            cols = [Fraction(float(v)) for v in y]
        else:
            z = [Fraction(float(v)) for v in (*y, *x)]
            cols = [*z]
            for m in p.monomials:
                v = Fraction(1)
                for j in m:
                    v *= z[j]
                cols.append(v)
        c = p.cases[0]
        return all(
            sum((Fraction(float(a)) * v for a, v in zip(row, cols)), Fraction(0))
            <= Fraction(float(bb))
            for row, bb in zip(c.A, c.b)
        )

    for x, y in zip(xs, ys):
        orig = inside(prop, x, y)
        assert inside(norm, x, y) == orig
        if relaxed is not None and orig:
            assert inside(relaxed, x, y)


def test_relaxed_right_hand_side_is_the_exact_minimum_rounded_up() -> None:
    box = Box(np.array([-1.0, 0.5]), np.array([0.25, 2.0]))
    # y0 + x0^2 - 3 x0 x1 + x1^3 <= 0.1: min over the box of x0^2 - 3 x0 x1 + x1^3 by terms:
    # x0^2 in [0, 1] -> 0; -3 x0 x1 with x0 x1 in [-2, 0.5] -> -1.5; x1^3 in [1/8, 8] -> 1/8
    prop = PolynomialProperty(
        (UnsafeCase(box, np.array([[1.0, 0, 0, 0, 1.0, -3.0, 1.0]]), np.array([0.1])),),
        2,
        ((2, 2), (2, 3), (3, 3, 3)),
    )
    relaxed = relax_polynomial(prop)
    assert isinstance(relaxed, Property)
    exact = Fraction(0.1) - (Fraction(0) - Fraction(3, 2) + Fraction(1, 8))
    got = Fraction(float(relaxed.cases[0].b[0]))
    assert got >= exact and float(got - exact) <= 2e-16 * abs(float(exact))
    np.testing.assert_array_equal(relaxed.cases[0].A, [[1.0, 0.0]])


def test_rows_over_inputs_implied_by_the_box_are_dropped() -> None:
    box = Box(-np.ones(2), np.ones(2))
    A = np.array([[0.0, 0, 0, 0, 1.0, 0], [0.0, 0, 0, 0, 0, 1.0], [1.0, 0, 0, 0, 0, 0]])
    prop = PolynomialProperty((UnsafeCase(box, A, np.array([1.0, 0.5, 2.0])),), 2, ((2, 2), (2, 3)))
    # x0^2 <= 1 holds on the box (dropped), x0 x1 <= 0.5 does not (scaled by 2^20)
    case = normalize_polynomial_rows(prop).cases[0]
    np.testing.assert_array_equal(case.A, [[0.0, 0, 0, 0, 0, 2.0**20], A[2]])
    np.testing.assert_array_equal(case.b, [0.5 * 2.0**20, 2.0])


# --------------------------------------------------------------------------------------------
# Verdicts
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        "(assert (< (* X_0 X_0) -1))",
        "(assert (<= (+ (* X_0 X_0) (* X_1 X_1)) -0.1))",
        "(assert (< (+ (* X_0 X_0 X_1 X_1) (* Y_0 Y_0)) -0.001))",
    ],
)
@pytest.mark.parametrize("act", [ReLU(), Sigmoid(), Tanh()], ids=str)
def test_negative_squares_are_verified(body: str, act: object) -> None:
    """Also on Sigmoid/Tanh networks, where the terms in the inputs alone are relaxed to
    their exact minimum over the box."""
    net = seeded_network(3, [2, 5, 2], [act], scale=1.0)
    prop = parse_vnnlib_string(HEAD1 + body)
    assert isinstance(prop, PolynomialProperty)
    res = verify(net, prop, time_limit=30)
    assert res.verdict is Verdict.VERIFIED, res.reason
    assert res.stats.get("relaxed_input_terms", False) is not isinstance(act, ReLU)


@pytest.mark.parametrize("act", [Sigmoid(), Tanh()], ids=str)
def test_products_of_outputs_and_inputs_on_smooth_networks_are_unknown(act: object) -> None:
    net = seeded_network(3, [2, 5, 2], [act], scale=1.0)
    prop = parse_vnnlib_string(HEAD1 + "(assert (< (* Y_0 X_0) -100))")
    res = verify(net, prop, time_limit=30)
    assert res.verdict is Verdict.UNKNOWN and res.reason == "unsupported"
    assert "product of outputs and inputs" in res.stats["unsupported"]


@pytest.mark.parametrize("act", [Sigmoid(), Tanh()], ids=str)
@pytest.mark.parametrize("seed", range(3))
def test_smooth_networks_never_give_a_wrong_witness(act: object, seed: int) -> None:
    """The relaxation's witnesses must satisfy the original rows: FALSIFIED only with one."""
    net = seeded_network(seed, [2, 6, 2], [act], scale=1.0)
    # x0^2 + x1^2 <= 0.05 (a small disc) and y0 y1 <= t, with t met somewhere in the disc
    g = np.stack(np.meshgrid(np.linspace(-0.2, 0.2, 41), np.linspace(-0.2, 0.2, 41)), -1)
    g = g.reshape(-1, 2)
    g = g[(g**2).sum(axis=1) <= 0.05]
    y = net.forward(g)
    t = float(np.median(y[:, 0] * y[:, 1]))
    prop = parse_vnnlib_string(
        HEAD1 + f"(assert (<= (+ (* X_0 X_0) (* X_1 X_1)) 0.05))(assert (<= (* Y_0 Y_1) {t!r}))"
    )
    assert isinstance(prop, PolynomialProperty)
    res = verify(net, prop, time_limit=20, seed=0)
    assert res.verdict is not Verdict.VERIFIED
    if res.verdict is Verdict.FALSIFIED:
        assert res.counterexample is not None
        assert prop.is_counterexample(res.counterexample.x, net.forward(res.counterexample.x))


def test_satisfiable_property_gives_a_replayed_witness() -> None:
    net = seeded_network(7, [2, 6, 2], [ReLU()], scale=1.0)
    # x0 x1 >= 0.5 and y0 y1 - x0 <= 10: many points
    prop = parse_vnnlib_string(
        HEAD1 + "(assert (>= (* X_0 X_1) 0.5))(assert (<= (- (* Y_0 Y_1) X_0) 10))"
    )
    assert isinstance(prop, PolynomialProperty)
    res = verify(net, prop, time_limit=30)
    assert res.verdict is Verdict.FALSIFIED
    cex = res.counterexample
    assert cex is not None and cex.y.shape == (2,)
    np.testing.assert_array_equal(cex.y, net.forward(cex.x))
    assert prop.is_counterexample(cex.x, cex.y)
    x, y = cex.x, cex.y
    assert x[0] * x[1] >= 0.5 and y[0] * y[1] - x[0] <= 10
    assert res.stats["monomials"] == 2


def _sample_values(
    net: Network, prop: PolynomialProperty, n: int, rng: np.random.Generator
) -> np.ndarray:
    """``max_r`` of the (single) case's rows at ``n`` random points and the box corners."""
    case = prop.cases[0]
    box = case.input_box
    corners = np.array(np.meshgrid(*zip(box.lower, box.upper))).reshape(box.dim, -1).T
    xs = np.vstack([box.sample(n, rng), corners])
    ys = net.forward(xs)
    z = np.hstack([ys, xs])
    cols = np.hstack([z, monomial_values(prop.monomials, z)])
    return np.asarray(case.violation(cols))


@settings(max_examples=80, deadline=None)
@given(seed=st.integers(0, 2**16), degree=st.integers(2, 4), q=st.floats(0.0, 0.2))
def test_verdicts_never_contradict_sampling(seed: int, degree: int, q: float) -> None:
    """A property violated at a sampled point is never VERIFIED; a FALSIFIED answer's
    witness satisfies the original polynomial rows in float64."""
    rng = np.random.default_rng(seed)
    net = seeded_network(seed, [2, 6, 6, 2], [ReLU(), ReLU()], scale=1.0)
    base = _random_property(rng, 2, 2, degree)
    vals = _sample_values(net, base, 400, rng)
    case = base.cases[0]
    # shift b so that a fraction q of the samples violates (by a margin far above rounding)
    shift = float(np.quantile(vals, q))
    shift += 1e-6 * (1.0 + abs(shift))
    prop = PolynomialProperty(
        (UnsafeCase(case.input_box, case.A, case.b + shift),), 2, base.monomials
    )
    res = verify(net, prop, time_limit=10, seed=0)
    assert res.verdict is not Verdict.VERIFIED
    if res.verdict is Verdict.FALSIFIED:
        assert res.counterexample is not None
        assert prop.is_counterexample(res.counterexample.x, net.forward(res.counterexample.x))
    # well below every sample: if it says FALSIFIED, its witness must be real
    low = PolynomialProperty(
        (UnsafeCase(case.input_box, case.A, case.b + float(vals.min()) - 5.0),),
        2,
        base.monomials,
    )
    res = verify(net, low, time_limit=10, seed=0)
    if res.verdict is Verdict.FALSIFIED:
        assert res.counterexample is not None
        assert low.is_counterexample(res.counterexample.x, net.forward(res.counterexample.x))


def test_verified_matches_a_dense_grid() -> None:
    """A polynomial property with a known margin (checked on a dense grid with a Lipschitz
    bound) is VERIFIED; the same property pushed past the grid minimum is FALSIFIED."""
    net = seeded_network(5, [2, 6, 2], [ReLU()], scale=1.0)
    box = Box(-np.ones(2), np.ones(2))
    A = np.array([[1.0, 0.0, 0.0, 0.0, -1.0, 2.0]])  # y0 - y0 y1 + 2 x0 x1
    monos = ((0, 1), (2, 3))
    g = np.stack(np.meshgrid(np.linspace(-1, 1, 401), np.linspace(-1, 1, 401)), -1)
    g = g.reshape(-1, 2)
    y = net.forward(g)
    v = y[:, 0] - y[:, 0] * y[:, 1] + 2 * g[:, 0] * g[:, 1]
    # Lipschitz bound of v on the box: |grad| <= L_y (1 + |y1| + |y0|) + 2 (|x0| + |x1|)
    lip_y = float(np.prod([np.linalg.norm(d.weight, 2) for d in net.dense_layers]))
    ob = interval_bounds(net, box).output
    ymax = float(np.max(np.abs([ob.lower, ob.upper])))
    lip = lip_y * (1 + 2 * ymax) + 4.0
    h = np.sqrt(2) * (2 / 400) / 2
    margin = lip * h
    holds = PolynomialProperty((UnsafeCase(box, A, [float(v.min()) - margin - 0.05]),), 2, monos)
    res = verify(net, holds, time_limit=60, seed=0)
    assert res.verdict is Verdict.VERIFIED, res.reason
    violated = PolynomialProperty((UnsafeCase(box, A, [float(v.min()) + 0.01]),), 2, monos)
    res = verify(net, violated, time_limit=60, seed=0)
    assert res.verdict is Verdict.FALSIFIED, res.reason


# --------------------------------------------------------------------------------------------
# End to end on ONNX files
# --------------------------------------------------------------------------------------------


def _onnx(tmp_path: Path) -> tuple[Path, Network]:
    net = seeded_network(7, [2, 6, 2], [ReLU()], scale=1.0)
    path = tmp_path / "net.onnx"
    to_onnx(net, path)
    return path, net


def test_witness_replays_in_onnxruntime(tmp_path: Path) -> None:
    path, _ = _onnx(tmp_path)
    net = from_onnx(path)
    prop = parse_vnnlib_string(HEAD1 + "(assert (>= (* X_0 X_1 Y_0) -100))")
    assert isinstance(prop, PolynomialProperty)
    res = verify(net, prop, time_limit=30)
    assert res.verdict is Verdict.FALSIFIED
    assert res.counterexample is not None and res.counterexample.onnx_checked


def _cli(*args: str) -> list[str]:
    from nncert.verify.vnnlib_cli import main

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(list(args)) == 0
    return buf.getvalue().splitlines()


def test_vnnlib_cli_end_to_end(tmp_path: Path) -> None:
    path, net = _onnx(tmp_path)
    unsat = tmp_path / "unsat.vnnlib"
    unsat.write_text(HEAD2 + "(assert (< (* X[0] X[0]) -1.0))\n")
    assert _cli("verify", str(unsat), "--network", f"f={path}", "--timeout", "60")[0] == "unsat"
    sat = tmp_path / "sat.vnnlib"
    sat.write_text(HEAD2 + "(assert (>= (* X[0] X[1]) 0.5))\n(assert (<= (* Y[0] Y[1]) 100.0))\n")
    lines = _cli("verify", str(sat), "--network", f"f={path}", "--timeout", "60")
    assert lines[0] == "sat"
    assert lines[1].startswith("X ") and lines[4].startswith("Y ")
    x = np.array([float(lines[2]), float(lines[3])])
    y = np.array([float(lines[5]), float(lines[6])])
    assert x[0] * x[1] >= 0.5 and y[0] * y[1] <= 100.0
    np.testing.assert_allclose(y, net.forward(x), atol=1e-5)
    assert "POLY" in _cli("supports", "--arithmetic-complexity-theories")


@pytest.mark.parametrize("holds", [True, False])
def test_vnncomp_end_to_end(tmp_path: Path, holds: bool) -> None:
    path, net = _onnx(tmp_path)
    spec = tmp_path / "p.vnnlib"
    rhs = -0.5 if holds else 0.5
    spec.write_text(HEAD1 + f"(assert (<= (+ (* X_0 X_0) (* X_1 X_1)) {rhs}))\n")
    out = tmp_path / "out.txt"
    proc = nncert("vnncomp", str(path), str(spec), str(out), "60", "--quiet")
    assert proc.returncode == 0, proc.stderr
    text = out.read_text()
    if holds:
        assert text.strip() == "unsat"
        return
    assert text.startswith("sat")
    vals = {k: float(v) for k, v in re.findall(r"\((\w+) ([^()\s]+)\)", text)}
    x = np.array([vals["X_0"], vals["X_1"]])
    assert x @ x <= 0.5
    np.testing.assert_allclose([vals["Y_0"], vals["Y_1"]], net.forward(x), atol=1e-5)


def test_nncert_verify_refuses_certificates_of_polynomial_properties(tmp_path: Path) -> None:
    path, _ = _onnx(tmp_path)
    spec = tmp_path / "p.vnnlib"
    spec.write_text(HEAD1 + "(assert (< (* X_0 X_0) -1))\n")
    proc = nncert("verify", str(path), str(spec), "--timeout", "60")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("verified")
    proc = nncert(
        "verify", str(path), str(spec), "--certificate", str(tmp_path / "c.json"), "--timeout", "60"
    )
    assert proc.returncode != 0
    assert "polynomial" in proc.stderr
    linear = tmp_path / "linear.vnnlib"
    linear.write_text(HEAD1 + "(assert (<= Y_0 -1000))\n")
    cert = tmp_path / "c.json"
    proc = nncert("verify", str(path), str(linear), "--certificate", str(cert), "--timeout", "60")
    assert proc.returncode == 0 and cert.exists(), proc.stderr
    proc = nncert("check", str(cert), str(path), str(spec))
    assert proc.returncode != 0
    assert "polynomial constraints (products of variables) have no certificates" in proc.stderr
