"""Every activation rule against the function it describes (nncert.verify.activations).

For every rule in :data:`~nncert.verify.activations.RULES` and random intervals ``[l, u]``
(degenerate, tiny, huge, touching 0 or a kink, a few ulps from a kink):

(a) the relaxation lines enclose the function at sampled points, the end points and the kinks,
    checked exactly (rationals) for piecewise-linear rules and to 300 bits for sigmoid/tanh;
(b) ``interval`` encloses the exact images of samples;
(c) every lower line of ``lower_family`` (any slope in range) stays below;
(d) ``diff`` encloses sampled differences ``sigma(z~) - sigma(z)`` (exactly);
(e) ``derivative`` matches difference quotients away from kinks (and is a one-sided derivative
    at them), ``lipschitz`` bounds them;
(f) ``relu_pieces`` reproduces ``apply`` exactly (``apply`` is the correctly rounded value of
    the pieces), and ``affine_on`` / ``eval_pieces`` agree with them.

Then a new activation type, defined only by a rule object registered with ``register_rule``,
flows through the bound engine, the MILP, attacks and difference bounds unchanged: the rule
table is the single source of activation knowledge.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np
import pytest
from exact_arith import (
    SMOOTH_TOL,
    assert_enclosed,
    exact_activation,
    exact_forward,
    exact_linear,
    exact_pre_activations,
    is_exact,
)
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from strategies import activations, networks_and_boxes

from nncert.certificates.diff_bounds import difference_bounds
from nncert.formulations.milp import encode_milp
from nncert.solvers.base import SolveStatus
from nncert.solvers.benders_method import activation_pattern
from nncert.solvers.highs_solver import HighsSolver
from nncert.verify.activations import (
    RULES,
    ActivationRule,
    PiecewiseLinearRule,
    ReluPieces,
    eval_pieces,
    register_rule,
    rule_for,
    unregister_rule,
)
from nncert.verify.attack import falsify, gradient
from nncert.verify.bounds import crown_bounds, engine_for, interval_bounds, spec_bounds
from nncert.verify.errors import InvalidNetworkError, UnsupportedLayerError
from nncert.verify.network import (
    Dense,
    Exp,
    HardTanh,
    Identity,
    LeakyReLU,
    NegReciprocal1p,
    Network,
    RectifiedPower,
    ReLU,
    Sigmoid,
    Tanh,
)
from nncert.verify.spec import Box, Property, UnsafeCase

# --------------------------------------------------------------------------------------------
# strategies
# --------------------------------------------------------------------------------------------

_f32 = {"width": 32, "allow_subnormal": False}


@st.composite
def _hardtanh(draw: st.DrawFn) -> HardTanh:
    lo = draw(st.floats(-3, 2, **_f32))
    return HardTanh(lo, lo + draw(st.floats(2.0**-10, 4, **_f32)))


#: a layer strategy for every built-in rule (a test below checks that none is missing)
LAYERS: dict[type, st.SearchStrategy[Any]] = {
    ReLU: st.just(ReLU()),
    LeakyReLU: st.one_of(
        st.sampled_from([LeakyReLU(0.0), LeakyReLU(1.0)]),
        st.floats(0, 1, **_f32).map(LeakyReLU),
        st.floats(0, 1).map(LeakyReLU),  # non-dyadic slopes: a z rounds
    ),
    HardTanh: st.one_of(_hardtanh(), st.just(HardTanh(0.0, 6.0)), st.just(HardTanh(-1, 1))),
    Sigmoid: st.just(Sigmoid()),
    Tanh: st.just(Tanh()),
    # exponents up to 4 keep the derivative test's central differences within its tolerance
    RectifiedPower: st.one_of(
        st.sampled_from([RectifiedPower(p) for p in (1.0, 2.0, 3.0, 4.0)]),
        st.floats(2.0, 4.0, **_f32).map(RectifiedPower),
    ),
    Exp: st.just(Exp()),
    NegReciprocal1p: st.just(NegReciprocal1p()),
    Identity: st.just(Identity()),
}

#: rules without big-M pieces (smooth), no generic piecewise-linear twin
SMOOTH_TYPES = (Sigmoid, Tanh, RectifiedPower, Exp, NegReciprocal1p)


def _representable(layer: Any, *zs: float) -> bool:
    """Whether the function's values at ``zs`` are finite floats (no line bounds an
    overflowing exp or power)."""
    top = max(abs(z) for z in (*zs, 1.0))
    if isinstance(layer, RectifiedPower):
        return math.log2(top) * layer.exponent < 1000
    if isinstance(layer, Exp):
        return max(zs) < 700.0
    return True


#: the rule types, by name (stable test ids)
RULE_TYPES = sorted(LAYERS, key=lambda t: t.__name__)


class _Generic(PiecewiseLinearRule):
    """The generic rule derived from a built-in's pieces alone (what a new piecewise-linear
    activation gets): checked against the same function as the built-in's tighter rule."""

    def relu_pieces(self, layer: Any) -> ReluPieces | None:
        return rule_for(layer).relu_pieces(layer)


#: (layer type, generic?): every built-in rule, and the generic rule on every piecewise-linear
#: built-in's pieces
RULE_CASES = [(t, False) for t in RULE_TYPES] + [
    (t, True) for t in RULE_TYPES if t not in SMOOTH_TYPES
]


def _case_id(case: tuple[type, bool]) -> str:
    return f"generic-{case[0].__name__}" if case[1] else case[0].__name__


def _rule(layer: Any, generic: bool) -> ActivationRule:
    return _Generic() if generic else rule_for(layer)


def _is_pwl(layer: Any) -> bool:
    return rule_for(layer).relu_pieces(layer) is not None


def _ulps(x: float, k: int) -> float:
    """``x`` moved by ``k`` ulps."""
    toward = math.inf if k > 0 else -math.inf
    for _ in range(abs(k)):
        x = math.nextafter(x, toward)
    return x


@st.composite
def _endpoint(draw: st.DrawFn, anchors: tuple[float, ...]) -> float:
    """An end point: an anchor (0, a kink, +-1) maybe a few ulps off, or a float of any scale."""
    kind = draw(st.sampled_from(["anchor", "near", "unit", "wide", "tiny", "huge"]))
    if kind in ("anchor", "near"):
        a = draw(st.sampled_from(anchors))
        return a if kind == "anchor" else _ulps(a, draw(st.integers(-3, 3)))
    if kind == "unit":
        return draw(st.floats(-8, 8, allow_nan=False))
    if kind == "wide":
        return draw(st.floats(-1e6, 1e6, allow_nan=False))
    if kind == "tiny":
        return draw(st.floats(-1e-300, 1e-300, allow_nan=False))
    return draw(st.floats(-1e300, 1e300, allow_nan=False))


@st.composite
def layer_and_interval(draw: st.DrawFn, kind: type) -> tuple[Any, float, float]:
    """A layer of ``kind`` and an interval ``[l, u]`` (possibly degenerate)."""
    layer = draw(LAYERS[kind])
    anchors = (0.0, 1.0, -1.0, *rule_for(layer).kinks(layer))
    a = draw(_endpoint(anchors))
    b = a if draw(st.booleans()) and draw(st.booleans()) else draw(_endpoint(anchors))
    return layer, min(a, b), max(a, b)


def _points(layer: Any, l: float, u: float, rng: np.random.Generator, n: int = 40) -> list[float]:
    """End points, kinks inside ``[l, u]`` (and their neighbours), and random points."""
    pts = {l, u}
    for k in rule_for(layer).kinks(layer):
        for d in (-1, 0, 1):
            p = _ulps(k, d)
            if l <= p <= u:
                pts.add(p)
    if u > l:
        t = rng.uniform(0.0, 1.0, n)
        with np.errstate(over="ignore", invalid="ignore"):
            inner = l + (u - l) * t if math.isfinite(u - l) else l * (1 - t) + u * t
        pts.update(float(p) for p in np.clip(inner, l, u) if np.isfinite(p))
    return sorted(pts)


def _tol(v: Fraction, exact: bool) -> Fraction:
    return Fraction(0) if exact else Fraction(SMOOTH_TOL) * (1 + abs(v))


def _F(x: float) -> Fraction:
    return Fraction(float(x))


# --------------------------------------------------------------------------------------------
# (a)-(c): relaxation, interval, family of lower lines
# --------------------------------------------------------------------------------------------


def test_every_rule_has_a_strategy() -> None:
    """The checks below run over every rule in the table (a new built-in needs a strategy)."""
    assert set(RULES) == set(LAYERS)


@pytest.mark.parametrize("case", RULE_CASES, ids=_case_id)
@settings(max_examples=150)
@given(data=st.data())
def test_relaxation_interval_and_family_enclose_the_function(
    case: tuple[type, bool], data: Any
) -> None:
    kind, generic = case
    layer, l, u = data.draw(layer_and_interval(kind))
    assume(_representable(layer, l, u))  # no finite line above values beyond float64
    rule = _rule(layer, generic)
    exact = _is_pwl(layer)
    lo, hi = np.array([l]), np.array([u])
    rel = rule.relax(layer, lo, hi)
    sL, bL, sU, bU = (float(np.asarray(v)[0]) for v in rel)
    assert all(math.isfinite(v) for v in (sL, bL, sU, bU)), rel
    assert sL >= 0.0 and sU >= 0.0
    il, iu = (float(v[0]) for v in rule.interval(layer, lo, hi))
    fam = rule.lower_family(layer, lo, hi)
    slopes: list[float] = []
    if fam is not None and fam.mask[0]:
        mid = (fam.s_min + fam.s_max) / 2.0
        slopes = [fam.s_min, fam.s_max, mid, data.draw(st.floats(fam.s_min, fam.s_max))]
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    for z in _points(layer, l, u, rng, n=200):
        f = exact_activation(layer, _F(z))
        t = _tol(f, exact)
        zf = _F(z)
        assert _F(sL) * zf + _F(bL) <= f + t, ("lower line", layer, l, u, z)
        assert _F(sU) * zf + _F(bU) >= f - t, ("upper line", layer, l, u, z)
        assert _F(il) - t <= f <= _F(iu) + t, ("interval", layer, l, u, z)
        for s in slopes:
            assert _F(s) * zf <= f, ("lower family", layer, l, u, z, s)


@pytest.mark.parametrize("case", RULE_CASES, ids=_case_id)
@settings(max_examples=60)
@given(data=st.data())
def test_exact_mask_means_tight_lines(case: tuple[type, bool], data: Any) -> None:
    kind, generic = case
    """Where ``exact`` says the function is affine, both lines coincide with it (PWL: exactly
    at every sampled point, since they are the function's own piece)."""
    layer, l, u = data.draw(layer_and_interval(kind))
    rule = _rule(layer, generic)
    lo, hi = np.array([l]), np.array([u])
    if not rule.exact(layer, lo, hi)[0]:
        return
    rel = rule.relax(layer, lo, hi)
    mask, slope, const = rule.affine_on(layer, lo, hi)
    assert mask[0]
    rng = np.random.default_rng(0)
    for z in _points(layer, l, u, rng, n=8):
        f = exact_activation(layer, _F(z))
        assert _F(slope[0]) * _F(z) + _F(const[0]) == f
        for s, b in ((rel.lower_slope, rel.lower_bias), (rel.upper_slope, rel.upper_bias)):
            # the lines may carry an outward rounding allowance that scales with the
            # interval's magnitude (a few ulps of max(|l|, |u|)), not with f(z)
            scale = 1 + abs(f) + Fraction(1, 1000) * max(abs(_F(l)), abs(_F(u)))
            assert abs(_F(s[0]) * _F(z) + _F(b[0]) - f) <= Fraction(1e-9) * scale


# --------------------------------------------------------------------------------------------
# (d): difference rule
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", RULE_CASES, ids=_case_id)
@settings(max_examples=100)
@given(data=st.data())
def test_diff_encloses_sampled_differences(case: tuple[type, bool], data: Any) -> None:
    kind, generic = case
    layer, l, u = data.draw(layer_and_interval(kind))
    assume(math.isfinite(u - l) and abs(l) < 1e200 and abs(u) < 1e200)
    rule = _rule(layer, generic)
    exact = _is_pwl(layer)
    da = data.draw(_endpoint((0.0, -1.0, 1.0)))
    db = data.draw(_endpoint((0.0, -1.0, 1.0)))
    dl, du = min(da, db), max(da, db)
    assume(abs(dl) < 1e200 and abs(du) < 1e200)
    assume(_representable(layer, l, u, u + du))
    # the box of z~ = z + delta, possibly cut down to a sub-box (the rules may use both)
    lt, ut = float(np.nextafter(l + dl, -np.inf)), float(np.nextafter(u + du, np.inf))
    if data.draw(st.booleans()):
        cut = data.draw(st.floats(0, 1))
        lt, ut = (lt + cut * (ut - lt) / 2, ut) if data.draw(st.booleans()) else (lt, ut)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    zs = [l, u, *rng.uniform(l, u, 30)]
    ds = [dl, du, 0.0, *rng.uniform(dl, du, 30)]
    args = [np.array([v]) for v in (l, u, lt, ut, dl, du)]
    lo, hi = (float(v[0]) for v in rule.diff(layer, *args))
    checked = 0
    for z, d in itertools.product(zs, ds):
        zt = float(z + d)
        delta = _F(zt) - _F(z)
        if not (_F(dl) <= delta <= _F(du) and lt <= zt <= ut and l <= z <= u):
            continue
        v = exact_activation(layer, _F(zt)) - exact_activation(layer, _F(z))
        t = _tol(v, exact) * 2
        assert _F(lo) - t <= v <= _F(hi) + t, (layer, l, u, lt, ut, dl, du, z, zt)
        checked += 1
    assume(checked > 0)


@pytest.mark.parametrize(
    ("layer", "z"),
    [(Sigmoid(), 35.64332166083041), (Tanh(), 17.959979989995), (Sigmoid(), -30.25)],
    ids=["sigmoid-tail", "tanh-tail", "sigmoid-left-tail"],
)
@pytest.mark.parametrize("delta", [1e-3, -1e-3, 1e-9])
def test_smooth_diff_is_sound_in_the_tails(layer: Any, z: float, delta: float) -> None:
    """In the tails ``s (1 - s)`` and ``1 - tanh^2`` lose their relative accuracy (a third of
    the value at ``z = 35.6``): a difference rule built on them underestimates the largest
    slope and excludes the exact difference of two nearby points. The rule's derivative range
    is evaluated in a relatively accurate form."""
    rule = rule_for(layer)
    zt = z + delta
    args = [np.array([v]) for v in (z, z, zt, zt, zt - z, zt - z)]
    lo, hi = (float(v[0]) for v in rule.diff(layer, *args))
    v = exact_activation(layer, _F(zt)) - exact_activation(layer, _F(z))
    assert v != 0
    assert _F(lo) <= v <= _F(hi), (float(v), lo, hi)
    s_min, s_max = rule.derivative_range(np.array([z - 1.0]), np.array([z + 1.0]))
    assert 0.0 < s_min[0] < s_max[0]


# --------------------------------------------------------------------------------------------
# (e): derivative, Lipschitz constant, kinks
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", RULE_CASES, ids=_case_id)
@settings(max_examples=60)
@given(data=st.data())
def test_derivative_matches_difference_quotients(case: tuple[type, bool], data: Any) -> None:
    kind, generic = case
    layer = data.draw(LAYERS[kind])
    rule = _rule(layer, generic)
    kinks = rule.kinks(layer)
    assert list(kinks) == sorted(set(kinks))
    z = data.draw(st.floats(-30, 30, allow_nan=False))
    h = 2.0**-20
    f = [exact_activation(layer, _F(z) + k * Fraction(h)) for k in (-1, 0, 1)]
    lipschitz = rule.lipschitz(layer)
    if math.isfinite(lipschitz):  # rectified powers p > 1: no finite constant, inf is the truth
        lip = Fraction(lipschitz)
        # Lipschitz on the stencil, exactly (sigmoid/tanh up to their 300-bit evaluation)
        tol = Fraction(SMOOTH_TOL)
        assert (
            abs(f[2] - f[1]) <= lip * Fraction(h) + tol
            and abs(f[1] - f[0]) <= lip * Fraction(h) + tol
        )
    g = Fraction(float(rule.derivative(layer, np.array([z]))[0]))
    left, right = (f[1] - f[0]) / Fraction(h), (f[2] - f[1]) / Fraction(h)
    if any(abs(z - k) <= 2 * h for k in kinks):
        if z in kinks:  # exactly at a kink: the smaller one-sided derivative
            assert g == min(left, right)
        return
    if _is_pwl(layer):
        assert g == left == right  # affine around z: difference quotients are exact
    else:
        central = (left + right) / 2
        assert abs(g - central) <= Fraction(1e-9) * (1 + abs(g))
        value = rule.apply(layer, np.array([z]))
        assert float(rule.derivative(layer, np.array([z]), value)[0]) == pytest.approx(float(g))


# --------------------------------------------------------------------------------------------
# (f): the big-M pieces reproduce the function
# --------------------------------------------------------------------------------------------

PWL_TYPES = [t for t in RULE_TYPES if t not in SMOOTH_TYPES]


@pytest.mark.parametrize("kind", PWL_TYPES, ids=lambda t: t.__name__)
@settings(max_examples=100)
@given(data=st.data())
def test_relu_pieces_reproduce_apply_exactly(kind: type, data: Any) -> None:
    """``apply(z)`` is the correctly rounded value of the pieces' exact value, and
    :func:`eval_pieces`'s error bound covers its own float evaluation."""
    layer, l, u = data.draw(layer_and_interval(kind))
    rule = rule_for(layer)
    pieces = rule.relu_pieces(layer)
    assert pieces is not None
    zs = np.array(_points(layer, l, u, np.random.default_rng(1), n=10))
    applied = rule.apply(layer, zs)
    v, err = eval_pieces(pieces, zs)
    for z, a, vv, e in zip(zs, applied, v, err):
        f = exact_activation(layer, _F(z))
        assert float(f) == a, (layer, z)
        assert abs(_F(vv) - f) <= _F(e), (layer, z)


def test_smooth_rules_have_no_pieces_and_the_milp_refuses_them() -> None:
    for layer in (Sigmoid(), Tanh()):
        rule = rule_for(layer)
        assert rule.relu_pieces(layer) is None and not rule.piecewise_linear
        assert rule.kinks(layer) == ()
    rule = rule_for(RectifiedPower(2.0))
    assert rule.relu_pieces(RectifiedPower(2.0)) is None and not rule.piecewise_linear


# --------------------------------------------------------------------------------------------
# (g): the bound engine with every rule, on random networks with mixed activations
# --------------------------------------------------------------------------------------------


@settings(max_examples=40)
@given(
    net_box=networks_and_boxes(mixed=True, max_depth=3, max_width=5, max_inputs=3),
    seed=st.integers(0, 2**32 - 1),
)
def test_crown_contains_exact_values_and_stays_within_ibp(
    net_box: tuple[Network, Box], seed: int
) -> None:
    """On random networks mixing every activation: IBP, CROWN and alpha-CROWN (layer bounds,
    spec bounds, the batched engine on sub-boxes) contain the exact values at sampled inputs
    and the box corners (no tolerance for piecewise-linear networks), and the engine's result
    is never looser than IBP (it intersects). The raw CROWN back-substitution, before that
    intersection, is checked against the samples too, so a relaxation that only IBP covers
    still fails."""
    _check_engine_encloses(net_box, seed)


@settings(max_examples=40)
@given(
    net_box=networks_and_boxes(
        activation=activations([ReLU, Tanh, RectifiedPower, NegReciprocal1p]),
        mixed=True,
        max_depth=3,
        max_width=5,
        max_inputs=3,
    ),
    seed=st.integers(0, 2**32 - 1),
)
def test_engine_encloses_networks_with_rectified_powers(
    net_box: tuple[Network, Box], seed: int
) -> None:
    """The checks above on networks with rectified powers (squares, cubes, ``p = 2.5``, values
    growing without bound) and softmax's ``-1/(1 + max(s, 0))`` (kink, then concave). Exp is
    left out: stacked exponentials of random layers overflow any exact evaluation."""
    _check_engine_encloses(net_box, seed)


def _check_engine_encloses(net_box: tuple[Network, Box], seed: int) -> None:
    net, box = net_box
    rng = np.random.default_rng(seed)
    ibp = interval_bounds(net, box)
    crown = crown_bounds(net, box)
    alpha = crown_bounds(net, box, alpha=True, alpha_steps=5)
    normal = crown.network
    exact = is_exact(normal)
    for a, c, o in zip(ibp.pre_activation, crown.pre_activation, alpha.pre_activation):
        for b in (c, o):
            assert np.all(b.lower >= a.lower) and np.all(b.upper <= a.upper)
    C = rng.normal(size=(3, normal.n_outputs))
    spec = {m: spec_bounds(net, box, C, method=m) for m in ("ibp", "crown", "alpha-crown")}
    for m in ("crown", "alpha-crown"):
        assert np.all(spec[m][0] >= spec["ibp"][0]) and np.all(spec[m][1] <= spec["ibp"][1])
    # the engine itself: raw CROWN rows (no IBP) and batched bounds on sub-boxes
    eng = engine_for(net)
    lo, hi = box.lower[None, :], box.upper[None, :]
    inter = eng.intermediate(lo, hi, "crown", rows="all")
    C2 = np.vstack([C, -C])
    xmag = np.maximum(np.abs(lo), np.abs(hi))
    lam, const, err = eng.spec_start(C2, np.zeros(6), inter, xmag)
    coef, off, _ = eng.backsub(lam, const, err, len(eng.rules) - 1, inter, xmag)
    raw = eng.concretize_lower(coef, off, lo, hi)[0]
    top = np.full(6, np.finfo(np.float64).max)
    mid = 0.5 * (box.lower + box.upper)
    subs = [(box.lower, mid), (mid, box.upper), (box.lower, box.upper)]
    batch = eng.bound(
        np.array([s[0] for s in subs]), np.array([s[1] for s in subs]), C2, alpha_iters=3
    )
    corners = np.array(list(itertools.product(*zip(box.lower, box.upper))))[:8]
    xs = np.vstack([box.sample(12, rng), corners, mid[None, :]])
    for x in xs:
        for z, iv_i, iv_c, iv_a in zip(
            exact_pre_activations(normal, x),
            ibp.pre_activation,
            crown.pre_activation,
            alpha.pre_activation,
        ):
            for name, iv in (("ibp", iv_i), ("crown", iv_c), ("alpha", iv_a)):
                assert_enclosed(z, iv.lower, iv.upper, exact=exact, what=name)
        y = exact_linear(C, exact_forward(normal, x))
        for m, (slo, shi) in spec.items():
            assert_enclosed(y, slo, shi, exact=exact, what=m)
        both = [*y, *(-v for v in y)]
        assert_enclosed(both, raw, top, exact=exact, what="raw crown")
        for i, (s_lo, s_hi) in enumerate(subs):
            if np.all(x >= s_lo) and np.all(x <= s_hi):
                assert_enclosed(both, batch.lower[i], top, exact=exact, what="batched")


# --------------------------------------------------------------------------------------------
# a new activation, defined by a rule object alone
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShiftedReLU:
    """``max(z - shift, 0)``: one piece with a kink away from 0."""

    shift: float = 0.75


@dataclass(frozen=True)
class LeakyClip:
    """``0.1 z`` below 0, ``z`` on ``[0, top]``, ``top + 0.1 (z - top)`` above: two pieces."""

    top: float = 1.5


class ShiftedReLURule(PiecewiseLinearRule):
    layer_type = ShiftedReLU

    def relu_pieces(self, layer: Any) -> ReluPieces:
        return (0.0, ((float(layer.shift), 1.0, 0.0),))


class LeakyClipRule(PiecewiseLinearRule):
    layer_type = LeakyClip

    def relu_pieces(self, layer: Any) -> ReluPieces:
        return (0.0, ((0.0, 1.0, 0.1), (float(layer.top), -0.9, 0.0)))


@pytest.fixture(params=[ShiftedReLURule, LeakyClipRule], ids=["shifted-relu", "leaky-clip"])
def custom(request: pytest.FixtureRequest) -> Iterator[Any]:
    """A registered custom rule and a layer of its type (unregistered afterwards)."""
    rule = request.param()
    register_rule(rule)
    try:
        yield rule.layer_type()
    finally:
        unregister_rule(rule.layer_type)


def _custom_net(layer: Any, seed: int, sizes: tuple[int, ...] = (2, 4, 3, 2)) -> Network:
    rng = np.random.default_rng(seed)
    layers: list[Any] = []
    for n_in, n_out in itertools.pairwise(sizes):
        layers += [Dense(rng.normal(size=(n_out, n_in)), rng.normal(size=n_out)), layer]
    return Network(tuple(layers[:-1]), input_shape=(sizes[0],))


def test_custom_rule_flows_through_bounds(custom: Any) -> None:
    """IBP, CROWN and alpha-CROWN bound the exact network (no tolerance), CROWN never looser
    than IBP; the network IR evaluates the new layer with the rule's ``apply``."""
    assert rule_for(custom).kinks(custom)
    for seed in range(5):
        net = _custom_net(custom, seed)
        assert net.is_piecewise_linear
        box = Box([-1.0, -0.5], [0.5, 1.0])
        rng = np.random.default_rng(seed)
        xs = np.vstack([box.sample(20, rng), list(itertools.product(*zip(box.lower, box.upper)))])
        ibp, crown = interval_bounds(net, box), crown_bounds(net, box)
        for a, b in zip(ibp.pre_activation, crown.pre_activation):
            assert np.all(b.lower >= a.lower) and np.all(b.upper <= a.upper)
        C = rng.normal(size=(2, 2))
        spec = {m: spec_bounds(net, box, C, method=m) for m in ("ibp", "crown", "alpha-crown")}
        for x in xs:
            assert np.array_equal(
                net.forward(x), np.array([float(v) for v in exact_forward(net, x)])
            ) or np.allclose(net.forward(x), [float(v) for v in exact_forward(net, x)])
            for z, iv_i, iv_c in zip(
                exact_pre_activations(net, x), ibp.pre_activation, crown.pre_activation
            ):
                assert_enclosed(z, iv_i.lower, iv_i.upper, exact=True, what="ibp")
                assert_enclosed(z, iv_c.lower, iv_c.upper, exact=True, what="crown")
            y = exact_linear(C, exact_forward(net, x))
            for m, (lo, hi) in spec.items():
                assert_enclosed(y, lo, hi, exact=True, what=m)


def test_custom_rule_flows_through_the_milp_and_attacks(custom: Any) -> None:
    """The exact big-M MILP of the new activation: its optimum is attained at its decoded input
    and no grid point beats it; the attack falsifies a case just above that optimum."""
    solver = HighsSolver(mip_rel_gap=0.0)
    for seed in range(4):
        net = _custom_net(custom, seed)
        box = Box([-1.0, -1.0], [1.0, 1.0])
        case = UnsafeCase(box, [[1.0, -1.0]], [0.0])
        problem = encode_milp(net, case, crown_bounds(net, box))
        assert problem.stats is not None
        res = solver.solve(problem)
        assert res.status is SolveStatus.OPTIMAL and res.objective is not None
        assert res.x is not None
        x = problem.decode_input(res.x)
        value = float(case.violation(net.forward(x[None]))[0])
        assert value == pytest.approx(res.objective, abs=1e-6)
        grid = np.array(list(itertools.product(np.linspace(-1, 1, 41), repeat=2)))
        assert res.objective <= float(np.min(case.violation(net.forward(grid)))) + 1e-6
        # a warm start from any input is feasible and exact (auxiliary columns of the pieces)
        v = problem.start_from_input(net, grid[7])
        assert problem.max_violation(v) <= 1e-9 * (1 + np.abs(v).max())
        # Benders' initial pattern: every binary against its piece's kink
        bounds = crown_bounds(net, box)
        for x in grid[::40]:
            v = problem.start_from_input(net, x)
            want = np.concatenate([v[b] for b in problem.index.binaries]).astype(np.int8)
            assert np.array_equal(activation_pattern(net, bounds, problem, x), want)
        # attacks: gradients from rule.derivative, a counterexample just above the optimum
        g = gradient(net, grid[:50], np.array([1.0, -1.0]))
        h = 1e-7
        for i in range(2):
            e = np.zeros(2)
            e[i] = h
            fd = (net.forward(grid[:50] + e) - net.forward(grid[:50] - e)) @ [1.0, -1.0] / (2 * h)
            smooth = np.abs(fd - g[:, i]) <= 1e-4 * (1 + np.abs(fd))
            assert smooth.mean() > 0.9  # away from kinks the gradient is the derivative
        target = UnsafeCase(box, [[1.0, -1.0]], [res.objective + 0.05])
        cex = falsify(net, Property((target,)), budget_s=2.0, seed=seed)
        assert cex is not None


def test_custom_rule_flows_through_difference_bounds(custom: Any) -> None:
    """Interval (the generic difference rule) and CROWN difference bounds of a pruned copy
    enclose the exact differences."""
    rng = np.random.default_rng(3)
    net = _custom_net(custom, 3)
    layers = [
        Dense(np.where(rng.random(layer.weight.shape) < 0.3, 0.0, layer.weight), layer.bias)
        if isinstance(layer, Dense)
        else layer
        for layer in net.layers
    ]
    pruned = net.replace_layers(layers)
    box = Box([-0.5, -0.5], [0.5, 0.5])
    C = rng.normal(size=(2, 2))
    bounds = [difference_bounds(pruned, net, box, C, method=m) for m in ("interval", "crown")]
    for x in np.vstack([box.sample(30, rng), list(itertools.product(*zip(box.lower, box.upper)))]):
        d = [a - b for a, b in zip(exact_forward(pruned, x), exact_forward(net, x))]
        for b in bounds:
            assert_enclosed(d, b.lower, b.upper, exact=True, what=b.method)
            assert_enclosed(exact_linear(C, d), b.spec_lower, b.spec_upper, exact=True, what="C")


def test_unregistered_layer_type_is_refused() -> None:
    with pytest.raises(UnsupportedLayerError):
        Network((Dense(np.eye(1), np.zeros(1)), ShiftedReLU(), Dense(np.eye(1), np.zeros(1))), (1,))
    with pytest.raises(UnsupportedLayerError, match="no rule"):
        rule_for(ShiftedReLU())


def test_register_rule_needs_apply_for_a_new_type_and_valid_pieces() -> None:
    class NoApply(ActivationRule):
        layer_type = ShiftedReLU

    with pytest.raises(UnsupportedLayerError, match="apply"):
        register_rule(NoApply())
    assert ShiftedReLU not in RULES

    class Decreasing(PiecewiseLinearRule):
        layer_type = ShiftedReLU

        def relu_pieces(self, layer: Any) -> ReluPieces:
            return (0.0, ((0.0, -1.0, 0.0),))

    register_rule(Decreasing())
    try:
        with pytest.raises(InvalidNetworkError, match="non-decreasing"):
            rule_for(ShiftedReLU()).relax(ShiftedReLU(), np.zeros(1), np.ones(1))
    finally:
        unregister_rule(ShiftedReLU)


def test_replacing_a_builtin_rule_and_restoring_it() -> None:
    """A built-in type can get another rule (here the generic one from ReLU's pieces); its
    bounds stay sound; unregister_rule restores the built-in rule."""
    builtin = rule_for(ReLU())

    class GenericReLU(PiecewiseLinearRule):
        layer_type = ReLU

        def relu_pieces(self, layer: Any) -> ReluPieces:
            return (0.0, ((0.0, 1.0, 0.0),))

    register_rule(GenericReLU())
    try:
        net = _custom_net(ReLU(), 0)
        box = Box([-1.0, -1.0], [1.0, 1.0])
        lo, hi = spec_bounds(net, box, np.eye(2), method="crown")
        for x in box.sample(50, np.random.default_rng(0)):
            assert_enclosed(exact_forward(net, x), lo, hi, exact=True, what="generic relu")
    finally:
        unregister_rule(ReLU)
    assert rule_for(ReLU()) is builtin
