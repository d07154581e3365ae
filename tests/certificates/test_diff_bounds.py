"""Difference bounds Δ on f_target - f_source (FORMULATIONS.md oracles 23, 25, 26, 27)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from cert_helpers import masked, random_network
from exact_arith import assert_enclosed, exact_forward, exact_linear, is_exact
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from strategies import activations, boundary_cases, networks_and_boxes

from nncert.certificates.diff_bounds import (
    DIFF_METHODS,
    case_difference_bounds,
    crown_difference,
    difference_bounds,
    difference_network,
    interval_difference,
    relu_diff_neurodiff,
    relu_diff_reludiff,
)
from nncert.verify.activations import ActivationRule, PiecewiseLinearRule, SigmoidRule
from nncert.verify.errors import InvalidOptionsError, TransferError, UnsupportedLayerError
from nncert.verify.network import Dense, HardTanh, LeakyReLU, Network, ReLU, Sigmoid, Tanh
from nncert.verify.spec import Box, UnsafeCase

TOL = 1e-9


def _perturbed(net: Network, rng: np.random.Generator, mode: str) -> Network:
    masks = []
    for d in net.dense_layers:
        if mode == "prune":
            masks.append((rng.random(d.weight.shape) > 0.3).astype(float))
        else:  # "quantize": round weights to a grid
            masks.append(None)
    if mode == "prune":
        return masked(net, masks)
    layers = []
    for layer in net.layers:
        if isinstance(layer, Dense):
            layers.append(Dense(np.round(layer.weight * 4) / 4, layer.bias))
        else:
            layers.append(layer)
    return net.replace_layers(layers)


def _assert_contains(d, diffs: np.ndarray, C: np.ndarray) -> None:  # type: ignore[no-untyped-def]
    scale = 1.0 + np.abs(diffs).max()
    assert np.all(diffs >= d.lower - TOL * scale)
    assert np.all(diffs <= d.upper + TOL * scale)
    sd = diffs @ C.T
    assert np.all(sd >= d.spec_lower - TOL * scale)
    assert np.all(sd <= d.spec_upper + TOL * scale)


@settings(max_examples=40, deadline=None)
@given(
    nb=networks_and_boxes(activation=activations(), max_depth=3, max_width=6),
    seed=st.integers(0, 2**32 - 1),
    mode=st.sampled_from(["prune", "quantize"]),
)
def test_difference_bounds_contain_sampled_differences(nb, seed: int, mode: str) -> None:  # type: ignore[no-untyped-def]
    net, box = nb
    rng = np.random.default_rng(seed)
    target = _perturbed(net, rng, mode)
    C = rng.normal(size=(2, net.n_outputs))
    xs = np.vstack([box.sample(300, rng), box.lower, box.upper])
    diffs = target.forward(xs) - net.forward(xs)
    results = {m: difference_bounds(target, net, box, C, method=m) for m in ("interval", "crown")}
    best = difference_bounds(target, net, box, C, method="best")
    for d in [*results.values(), best]:
        _assert_contains(d, diffs, C)
    # the intersection is inside each
    tiny = 1e-12 * (1.0 + np.abs(diffs).max())
    for d in results.values():
        assert np.all(best.lower >= d.lower - tiny) and np.all(best.upper <= d.upper + tiny)
        assert np.all(best.spec_lower >= d.spec_lower - tiny)
        assert np.all(best.spec_upper <= d.spec_upper + tiny)


@settings(max_examples=30, deadline=None)
@given(nb=networks_and_boxes(activation=activations(), max_depth=3, max_width=6))
def test_identical_networks_have_zero_difference(nb) -> None:  # type: ignore[no-untyped-def]
    net, box = nb
    copy = net.replace_layers(list(net.layers))
    C = np.ones((1, net.n_outputs))
    d = difference_bounds(copy, net, box, C, method="interval")
    assert np.all(d.lower == 0.0) and np.all(d.upper == 0.0)
    assert np.all(d.spec_lower == 0.0) and np.all(d.spec_upper == 0.0)
    # "best" intersects with CROWN, whose round-to-nearest noise may shift 0 by ~1e-17
    b = difference_bounds(copy, net, box, C, method="best")
    for v in (b.lower, b.upper, b.spec_lower, b.spec_upper):
        assert np.all(np.abs(v) <= 1e-12)


@settings(max_examples=30, deadline=None)
@given(
    l=st.floats(-3, 3),
    w=st.floats(0, 3),
    dl=st.floats(-2, 2),
    dw=st.floats(0, 2),
    seed=st.integers(0, 2**16),
)
def test_relu_difference_rules_are_sound_pointwise(
    l: float, w: float, dl: float, dw: float, seed: int
) -> None:
    """Both ReluDiff and NeuroDiff contain ReLU(z') - ReLU(z) for consistent (z, z', δ)."""
    rng = np.random.default_rng(seed)
    z = rng.uniform(l, l + w, 2000)
    delta = rng.uniform(dl, dl + dw, 2000)
    zt = z + delta
    # the boxes each rule sees: z in [l, u], z' in [min zt, max zt], δ in [dl, du]
    args = [np.array([v]) for v in (l, l + w, zt.min(), zt.max(), dl, dl + dw)]
    truth = np.maximum(zt, 0) - np.maximum(z, 0)
    for rule in (relu_diff_reludiff, relu_diff_neurodiff):
        lo, hi = rule(*args)
        assert np.all(truth >= lo[0] - 1e-12) and np.all(truth <= hi[0] + 1e-12)


def test_neurodiff_and_reludiff_are_incomparable_case_7() -> None:
    """FORMULATIONS 11.3 caution: u = 5, u' <= 0, δ ∈ [-0.1, 0.1]."""
    args = [np.array([v]) for v in (-1.0, 5.0, -2.0, -0.5, -0.1, 0.1)]
    rl, ru = relu_diff_reludiff(*args)
    nl, nu = relu_diff_neurodiff(*args)
    assert (rl[0], ru[0]) == (-0.1, 0.1)
    assert (nl[0], nu[0]) == (-5.0, 0.0)


@pytest.mark.parametrize("act", [ReLU(), LeakyReLU(0.2), HardTanh(-0.5, 1.0), Sigmoid(), Tanh()])
def test_difference_network_computes_the_difference(act: object) -> None:
    rng = np.random.default_rng(3)
    a = random_network(rng, [3, 5, 4, 2], act)
    b = random_network(rng, [3, 7, 2, 2], act)  # other widths
    xs = rng.normal(size=(50, 3))
    diff = difference_network(a, b)
    np.testing.assert_allclose(diff.forward(xs), a.forward(xs) - b.forward(xs), atol=1e-12)
    # CROWN on it works when widths differ; interval does not
    box = ([-0.2] * 3, [0.2] * 3)
    d = crown_difference(a, b, box, np.eye(2))
    sd = a.forward(rng.uniform(-0.2, 0.2, (500, 3))) - b.forward(rng.uniform(-0.2, 0.2, (500, 3)))
    assert d.lower.shape == (2,) and np.all(d.lower <= d.upper)
    del sd
    with pytest.raises(TransferError, match="same architecture"):
        interval_difference(a, b, box)
    assert difference_bounds(a, b, box, method="best").method == "best"


def test_single_layer_difference_is_exact() -> None:
    a = Network((Dense([[1.0, 2.0]], [0.5]),), (2,))
    b = Network((Dense([[1.5, 2.0]], [0.0]),), (2,))
    d = difference_bounds(a, b, ([0.0, 0.0], [1.0, 1.0]))
    # f_a - f_b = -0.5 x0 + 0.5, in [0, 0.5]: the bounds enclose it (rounded outwards)
    assert d.lower[0] <= 0.0 <= 0.5 <= d.upper[0]
    np.testing.assert_allclose([d.lower[0], d.upper[0]], [0.0, 0.5], atol=1e-13)


def test_mismatched_networks_are_rejected() -> None:
    rng = np.random.default_rng(0)
    a = random_network(rng, [3, 4, 2])
    with pytest.raises(TransferError, match="depth"):
        difference_network(a, random_network(rng, [3, 4, 4, 2]))
    with pytest.raises(TransferError, match="activation"):
        difference_network(a, random_network(rng, [3, 4, 2], Tanh()))
    with pytest.raises(TransferError, match="shape"):
        difference_bounds(a, random_network(rng, [2, 4, 2]), ([0, 0, 0], [1, 1, 1]))
    with pytest.raises(InvalidOptionsError):
        difference_bounds(a, a, ([0, 0, 0], [1, 1, 1]), method="exact")  # type: ignore[arg-type]


def test_stable_neuron_folding_gives_zero_difference() -> None:
    """Oracle 27: dropping IA-inactive neurons changes nothing on the box; Δ = 0."""
    rng = np.random.default_rng(5)
    net = random_network(rng, [3, 12, 3])
    box = ([0.0, 0.0, 0.0], [0.1, 0.1, 0.1])
    from nncert.verify.bounds import interval_bounds

    pre = interval_bounds(net, box).pre_activation[0]
    dead = pre.upper <= 0
    if not dead.any():
        pytest.skip("no inactive neuron in this draw")
    d1, d2 = net.dense_layers
    W2 = d2.weight.copy()
    W2[:, dead] = 0.0
    folded = net.replace_layers([d1, ReLU(), Dense(W2, d2.bias)])
    xs = rng.uniform(0, 0.1, (500, 3))
    np.testing.assert_array_equal(folded.forward(xs), net.forward(xs))
    d = difference_bounds(folded, net, box, method="interval")
    assert np.all(d.lower == 0) and np.all(d.upper == 0)


# --------------------------------------------------------------------------------------------
# rigour: the bounds enclose the differences of the exact networks
# --------------------------------------------------------------------------------------------


def _nudged(net: Network, rng: np.random.Generator, mode: str) -> Network:
    """A copy with weights moved by a few ulps ("ulp") or scaled by a non-dyadic factor."""
    layers = []
    for layer in net.layers:
        if isinstance(layer, Dense):
            W = layer.weight
            if mode == "ulp":
                W = W + rng.integers(-3, 4, size=W.shape) * np.spacing(W)
                b = layer.bias + rng.integers(-3, 4, size=layer.bias.shape) * np.spacing(layer.bias)
            else:  # "scale"
                W = W * (1.0 + 1e-3 / 3.0)
                b = layer.bias
            layers.append(Dense(W, b))
        else:
            layers.append(layer)
    return net.replace_layers(layers)


def _corners(box: Box) -> np.ndarray:
    if box.dim > 4:
        return np.vstack([box.lower, box.upper])
    return np.array(list(itertools.product(*zip(box.lower, box.upper))))


@settings(max_examples=60, deadline=None)
@given(
    nb=networks_and_boxes(activation=activations(), max_depth=3, max_width=5, mixed=True),
    seed=st.integers(0, 2**32 - 1),
    mode=st.sampled_from(["prune", "quantize", "ulp", "scale", "copy"]),
)
def test_difference_bounds_enclose_exact_differences(nb, seed: int, mode: str) -> None:  # type: ignore[no-untyped-def]
    """No tolerance: f_t - f_s of the exact networks (rational arithmetic; sigmoid and tanh to
    300 bits) lies inside every method's bounds, at random points and at the box's corners."""
    net, box = nb
    rng = np.random.default_rng(seed)
    if mode in ("prune", "quantize"):
        target = _perturbed(net, rng, mode)
    elif mode == "copy":
        target = net.replace_layers(list(net.layers))
    else:
        target = _nudged(net, rng, mode)
    C = rng.normal(size=(2, net.n_outputs))
    exact = is_exact(net)
    bounds = {m: difference_bounds(target, net, box, C, method=m) for m in DIFF_METHODS}
    for x in np.vstack([box.sample(12, rng), _corners(box)]):
        ft, fs = exact_forward(target, x), exact_forward(net, x)
        diff = [a - b for a, b in zip(ft, fs)]
        spec = exact_linear(C, diff)
        for m, d in bounds.items():
            assert_enclosed(diff, d.lower, d.upper, exact=exact, what=f"{m} {mode}")
            assert_enclosed(spec, d.spec_lower, d.spec_upper, exact=exact, what=f"{m} {mode} C")


@settings(max_examples=80, deadline=None)
@given(data=boundary_cases(max_depth=2, max_width=3, rows=1))
def test_no_difference_bound_claims_a_margin_that_is_not_there(data) -> None:  # type: ignore[no-untyped-def]
    """Boundary constructions: the true minimum of a difference is exactly 0.

    (1) A copy: f_t - f_s = 0, so every lower bound is <= 0 <= every upper bound. (2) A target
    whose first output adds the source's margin g(x) = a f_s(x) - b >= 0 (minimum exactly 0 at
    the vertex v): the lower bound of e_0 (f_t - f_s) must be <= 0, never a round-off positive.
    """
    net, box, A, b, v = data
    copy = net.replace_layers(list(net.layers))
    C = np.vstack([np.eye(net.n_outputs), A])
    for m in DIFF_METHODS:
        d = difference_bounds(copy, net, box, C, method=m)
        assert np.all(d.lower <= 0.0) and np.all(d.upper >= 0.0), m
        assert np.all(d.spec_lower <= 0.0) and np.all(d.spec_upper >= 0.0), m
    last = net.layers[-1]
    assert isinstance(last, Dense)
    e0 = np.zeros(net.n_outputs)
    e0[0] = 1.0
    W = last.weight + np.outer(e0, A[0] @ last.weight)
    bias = last.bias + e0 * (float(A[0] @ last.bias) - float(b[0]))
    target = net.replace_layers([*net.layers[:-1], Dense(W, bias)])
    gap = exact_forward(target, v)[0] - exact_forward(net, v)[0]
    assume(gap == 0)  # the dyadic numbers make the construction exact (checked, not trusted)
    for m in DIFF_METHODS:
        d = difference_bounds(target, net, box, e0[None, :], method=m)
        assert d.lower[0] <= 0.0 and d.spec_lower[0] <= 0.0, (m, d.lower, d.spec_lower)


def test_rules_override_by_callable_or_rule() -> None:
    """``rules=`` maps a type to a callable or to an ActivationRule (its ``diff``)."""
    rng = np.random.default_rng(8)
    source = random_network(rng, [3, 6, 5, 2])
    target = _perturbed(source, rng, "prune")
    box = ([-0.5] * 3, [0.5] * 3)
    base = interval_difference(target, source, box)
    calls: list[str] = []

    def loose(act, l, u, lt, ut, dl, du):  # type: ignore[no-untyped-def]
        calls.append("callable")
        return np.minimum(dl, 0.0) - 1.0, np.maximum(du, 0.0) + 1.0

    class Generic(PiecewiseLinearRule):
        layer_type = ReLU

        def relu_pieces(self, layer):  # type: ignore[no-untyped-def]
            return (0.0, ((0.0, 1.0, 0.0),))

        def diff(self, layer, l, u, lt, ut, dl, du):  # type: ignore[no-untyped-def]
            calls.append("rule")
            return super().diff(layer, l, u, lt, ut, dl, du)

    wide = interval_difference(target, source, box, rules={ReLU: loose})
    generic = interval_difference(target, source, box, rules={ReLU: Generic()})
    assert calls.count("callable") == 2 and calls.count("rule") == 2  # one per hidden layer
    # every variant is sound; the loose one is never tighter than the table's rule
    xs = rng.uniform(-0.5, 0.5, (200, 3))
    diffs = target.forward(xs) - source.forward(xs)
    for d in (base, wide, generic):
        assert np.all(diffs >= d.lower - 1e-12) and np.all(diffs <= d.upper + 1e-12)
    assert np.all(wide.lower <= base.lower) and np.all(wide.upper >= base.upper)


def test_unknown_activation_has_no_difference_rule() -> None:
    class NoDiff(SigmoidRule):
        def diff(self, layer, l, u, lt, ut, dl, du):  # type: ignore[no-untyped-def]
            return ActivationRule.diff(self, layer, l, u, lt, ut, dl, du)

    rng = np.random.default_rng(2)
    net = random_network(rng, [2, 3, 2], Sigmoid())
    with pytest.raises(UnsupportedLayerError, match="difference rule"):
        interval_difference(net, net, ([0, 0], [1, 1]), rules={Sigmoid: NoDiff()})


@settings(max_examples=25, deadline=None)
@given(
    nb=networks_and_boxes(activation=activations(), max_depth=3, max_width=6),
    seed=st.integers(0, 2**32 - 1),
    method=st.sampled_from(DIFF_METHODS),
)
def test_case_difference_bounds_equal_one_call_per_case(nb, seed: int, method: str) -> None:  # type: ignore[no-untyped-def]
    """Cases sharing a box share one computation; each case gets what its own call gives (up
    to rounding of the stacked products) and the bounds contain sampled differences."""
    net, box = nb
    rng = np.random.default_rng(seed)
    target = _perturbed(net, rng, "prune")
    other = Box(box.lower, box.lower + 0.5 * (box.upper - box.lower))
    cases = [
        UnsafeCase(box, rng.normal(size=(2, net.n_outputs)), np.zeros(2)),
        UnsafeCase(other, rng.normal(size=(1, net.n_outputs)), np.zeros(1)),
        UnsafeCase(box, rng.normal(size=(3, net.n_outputs)), np.zeros(3)),
        UnsafeCase(box, np.zeros((0, net.n_outputs)), np.zeros(0)),
    ]
    got = case_difference_bounds(target, net, cases, method=method)
    assert [lo.size for lo, _ in got] == [2, 1, 3, 0]
    for case, (lo, up) in zip(cases, got):
        if not case.n_rows:
            continue
        d = difference_bounds(target, net, case.input_box, case.A, method=method)
        scale = 1.0 + np.abs(np.asarray(d.spec_lower)).max()
        assert np.allclose(lo, d.spec_lower, rtol=0, atol=1e-12 * scale)
        assert np.allclose(up, d.spec_upper, rtol=0, atol=1e-12 * scale)
        xs = case.input_box.sample(200, rng)
        sd = (target.forward(xs) - net.forward(xs)) @ case.A.T
        assert np.all(sd >= lo - TOL * scale) and np.all(sd <= up + TOL * scale)


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_crown_difference_carries_composition_errors(depth: int) -> None:
    """A composed layer (e.g. an imported AvgPool folded into the classifier) stands for any
    exact layer within its recorded error: the CROWN difference of two networks with the same
    floats must still allow that error (it once dropped it and claimed a difference of 0)."""
    rng = np.random.default_rng(depth)
    widths = [3] + [4] * (depth - 1) + [2]
    layers: list[object] = []
    for k in range(depth):
        layers.append(
            Dense(rng.normal(size=(widths[k + 1], widths[k])), rng.normal(size=widths[k + 1]))
        )
        if k < depth - 1:
            layers.append(ReLU())
    exact = Network(tuple(layers), (3,))  # type: ignore[arg-type]
    last = exact.layers[-1]
    assert isinstance(last, Dense)
    e, be = np.full(2, 0.25), np.full(2, 0.125)
    composed = exact.replace_layers([*exact.layers[:-1], Dense(last.weight, last.bias, e, be)])
    box = ([0.0, 0.0, 0.0], [1.0, 1.0, 1.0])
    # the exact network may add up to e * max|a| + be to each output: at the box centre
    x0 = np.full(3, 0.5)
    a = x0
    for layer in exact.layers[:-1]:
        a = a @ layer.weight.T + layer.bias if isinstance(layer, Dense) else np.maximum(a, 0.0)
    slack = e * np.max(np.abs(a)) + be
    for lhs, rhs in ((composed, exact), (exact, composed)):
        d = crown_difference(lhs, rhs, box)
        assert np.all(d.lower <= -slack + 1e-12) and np.all(d.upper >= slack - 1e-12)
        net = difference_network(lhs, rhs)
        assert not net.dense_layers[-1].exact


def test_difference_network_keeps_a_sparse_first_layer_sparse() -> None:
    import scipy.sparse as sp

    rng = np.random.default_rng(0)
    w = sp.random(4000, 2600, density=0.001, format="csr", random_state=0)
    w.data = rng.normal(size=w.data.size)
    a = Network(
        (
            Dense(sp.csr_array(w), np.zeros(4000)),
            ReLU(),
            Dense(rng.normal(size=(2, 4000)), np.zeros(2)),
        ),
        (2600,),
    )
    assert a.dense_layers[0].sparse
    net = difference_network(a, a)
    assert net.dense_layers[0].sparse and net.dense_layers[0].n_out == 8000
    x = rng.uniform(size=(3, 2600))
    np.testing.assert_allclose(net.forward(x), np.zeros((3, 2)), atol=1e-9)


def test_interval_difference_on_sparse_layers_matches_the_dense_computation() -> None:
    """A lowered convolution stays sparse in the interval method: same bounds (up to the
    summation order of the outward-rounded products) as on a dense copy, and sound."""
    import scipy.sparse as sp

    rng = np.random.default_rng(1)
    w = sp.random(4000, 2600, density=0.001, format="csr", random_state=1)
    w.data = rng.normal(size=w.data.size)
    w_t = w.copy()
    w_t.data = np.where(np.abs(w_t.data) < 0.3, 0.0, np.round(w_t.data, 2))  # pruned, rounded
    last = rng.normal(size=(3, 4000)) * 0.05
    bias = rng.normal(size=4000) * 0.1

    def net(weight: object, dense: bool) -> Network:
        first = weight.toarray() if dense else sp.csr_array(weight)  # type: ignore[attr-defined]
        return Network((Dense(first, bias), ReLU(), Dense(last, np.zeros(3))), (2600,))

    src, tgt = net(w, False), net(w_t, False)
    assert src.dense_layers[0].sparse and tgt.dense_layers[0].sparse
    lo, hi = np.full(2600, 0.2), np.full(2600, 0.3)
    C = rng.normal(size=(2, 3))
    sparse_b = interval_difference(tgt, src, (lo, hi), C)
    dense_b = interval_difference(net(w_t, True), net(w, True), (lo, hi), C)
    for a, b in ((sparse_b.lower, dense_b.lower), (sparse_b.upper, dense_b.upper)):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    assert sparse_b.spec_lower is not None and sparse_b.spec_upper is not None
    x = rng.uniform(lo, hi, size=(50, 2600))
    d = tgt.forward(x) - src.forward(x)
    assert np.all(sparse_b.lower <= d) and np.all(d <= sparse_b.upper)
    cd = d @ C.T
    assert np.all(sparse_b.spec_lower <= cd) and np.all(cd <= sparse_b.spec_upper)
