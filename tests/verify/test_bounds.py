"""Tests for nncert.verify.bounds: IBP, CROWN, alpha-CROWN, relaxations, spec bounds.

Soundness is checked by sampling (DESIGN.md section 11.5, property 1): forward values of random
inputs, including the box corners, must lie inside the bounds of every layer.
"""

from __future__ import annotations

import importlib.util
import itertools
import re
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from nets import pre_activations
from strategies import activations, networks, networks_and_boxes

from nncert.verify.bounds import (
    RELAXATIONS,
    crown_bounds,
    engine_for,
    interval_bounds,
    output_bounds,
    property_case_bounds,
    relax,
    spec_bounds,
)
from nncert.verify.errors import InvalidOptionsError, InvalidPropertyError
from nncert.verify.network import (
    Activation,
    Dense,
    FloatArray,
    HardTanh,
    Identity,
    Layer,
    LeakyReLU,
    Network,
    ReLU,
    Sigmoid,
    Tanh,
    apply_activation,
)
from nncert.verify.spec import Box, UnsafeCase

BENCHMARKS = Path(__file__).resolve().parents[2].parent / "shared" / "benchmarks"
ACAS_DIR = BENCHMARKS / "vnncomp" / "acasxu"

TOL = 1e-9


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def sample_box(box: Box, n: int, rng: np.random.Generator) -> FloatArray:
    """``n`` uniform samples plus all corners (dimension <= 10)."""
    pts = [box.sample(n, rng)]
    if box.dim <= 10:
        pts.append(np.array(list(itertools.product(*zip(box.lower, box.upper)))))
    return np.concatenate(pts, axis=0)


def assert_inside(values: FloatArray, lo: FloatArray, hi: FloatArray, what: str) -> None:
    tol_lo = TOL * (1.0 + np.abs(lo))
    tol_hi = TOL * (1.0 + np.abs(hi))
    below = values < lo - tol_lo
    above = values > hi + tol_hi
    assert not below.any(), f"{what}: value below lower bound by {np.max((lo - values)[below])}"
    assert not above.any(), f"{what}: value above upper bound by {np.max((values - hi)[above])}"


def random_network(
    rng: np.random.Generator, sizes: list[int], act: Activation | None = None, scale: float = 1.0
) -> Network:
    act = ReLU() if act is None else act
    layers: list[Layer] = []
    for n_in, n_out in itertools.pairwise(sizes):
        W = rng.normal(size=(n_out, n_in)) * scale / np.sqrt(n_in)
        layers += [Dense(W, rng.normal(size=n_out) * 0.1), act]
    return Network(tuple(layers[:-1]), input_shape=(sizes[0],))


# --------------------------------------------------------------------------------------------
# relaxations
# --------------------------------------------------------------------------------------------

RELAX_LAYERS = [
    pytest.param(ReLU(), id="relu"),
    pytest.param(LeakyReLU(0.2), id="leaky0.2"),
    pytest.param(LeakyReLU(0.0), id="leaky0"),
    pytest.param(LeakyReLU(1.0), id="leaky1"),
    pytest.param(HardTanh(-1.0, 1.0), id="hardtanh"),
    pytest.param(HardTanh(0.0, 6.0), id="relu6"),
    pytest.param(HardTanh(-0.3, 2.5), id="hardtanh-asym"),
    pytest.param(Sigmoid(), id="sigmoid"),
    pytest.param(Tanh(), id="tanh"),
    pytest.param(Identity(), id="identity"),
]


def random_intervals(rng: np.random.Generator, n: int) -> tuple[FloatArray, FloatArray]:
    """Intervals of many scales: wide, narrow, degenerate, one-sided, near kinks."""
    scale = 10.0 ** rng.uniform(-3, 1.7, size=n)
    centre = rng.normal(size=n) * scale
    width = np.abs(rng.normal(size=n)) * 10.0 ** rng.uniform(-12, 1.5, size=n)
    width[: n // 20] = 0.0  # degenerate
    lo = centre - width * rng.uniform(0, 1, size=n)
    return lo, lo + width


def check_relaxation(layer: Activation, lo: FloatArray, hi: FloatArray, n_pts: int = 201) -> None:
    rel = relax(layer, lo, hi)
    t = np.linspace(0.0, 1.0, n_pts)
    z = lo[:, None] + (hi - lo)[:, None] * t[None, :]
    z[:, -1] = hi  # exact end points
    f = apply_activation(layer, z)
    low = rel.lower_slope[:, None] * z + rel.lower_bias[:, None]
    up = rel.upper_slope[:, None] * z + rel.upper_bias[:, None]
    smooth = isinstance(layer, (Sigmoid, Tanh))
    # smooth relaxations carry their own outward margin: no tolerance at all
    tol = 0.0 if smooth else 1e-12 * (1.0 + np.abs(z))
    bad_lo = low > f + tol
    bad_up = up < f - tol
    assert not bad_lo.any(), (
        f"lower line above function at l={lo[bad_lo.any(1)][:3]}, u={hi[bad_lo.any(1)][:3]}"
    )
    assert not bad_up.any(), (
        f"upper line below function at l={lo[bad_up.any(1)][:3]}, u={hi[bad_up.any(1)][:3]}"
    )


@pytest.mark.parametrize("layer", RELAX_LAYERS)
def test_relaxation_sound_dense_sampling(layer: Activation) -> None:
    rng = np.random.default_rng(1234)
    lo, hi = random_intervals(rng, 3000)
    check_relaxation(layer, lo, hi)


@pytest.mark.parametrize("layer", RELAX_LAYERS)
def test_relaxation_sound_around_kinks(layer: Activation) -> None:
    """End points exactly at, just beside, and straddling the kinks / inflection point."""
    kinks = [0.0]
    if isinstance(layer, HardTanh):
        kinks = [layer.min_val, layer.max_val]
    pts = sorted(
        {k + d for k in kinks for d in (-3.0, -1.0, -1e-7, 0.0, 1e-7, 1.0, 3.0)} | {-40.0, 40.0}
    )
    pairs = np.array([(a, b) for a in pts for b in pts if a <= b])
    check_relaxation(layer, pairs[:, 0], pairs[:, 1], n_pts=1001)


@given(
    layer=activations(),
    lo=st.floats(-60, 60, allow_nan=False, width=32),
    w=st.floats(0, 60, allow_nan=False, width=32),
)
def test_relaxation_sound_hypothesis(layer: Activation, lo: float, w: float) -> None:
    check_relaxation(layer, np.array([lo]), np.array([lo + w]), n_pts=2001)


@pytest.mark.parametrize("layer", RELAX_LAYERS)
def test_relaxation_degenerate_interval_is_exact(layer: Activation) -> None:
    z = np.array([-5.0, -1.0, 0.0, 0.3, 1.0, 7.0])
    rel = relax(layer, z, z)
    f = apply_activation(layer, z)
    low = rel.lower_slope * z + rel.lower_bias
    up = rel.upper_slope * z + rel.upper_bias
    assert np.all(low <= f) and np.all(up >= f)
    np.testing.assert_allclose(low, f, atol=1e-9)
    np.testing.assert_allclose(up, f, atol=1e-9)


def test_relu_relaxation_values() -> None:
    """Chord ``u (z - l)/(u - l)`` above; adaptive slope (1 iff u > -l) below."""
    rel = relax(ReLU(), np.array([-1.0, -3.0, -2.0, 1.0]), np.array([3.0, 1.0, -1.0, 2.0]))
    np.testing.assert_allclose(rel.upper_slope, [0.75, 0.25, 0.0, 1.0])
    np.testing.assert_allclose(rel.upper_bias, [0.75, 0.75, 0.0, 0.0])
    np.testing.assert_allclose(rel.lower_slope, [1.0, 0.0, 0.0, 1.0])
    np.testing.assert_allclose(rel.lower_bias, 0.0)


def test_relaxation_table_covers_every_activation() -> None:
    from nncert.verify.network import ACTIVATION_TYPES

    assert set(ACTIVATION_TYPES) <= set(RELAXATIONS)


# --------------------------------------------------------------------------------------------
# soundness of layer bounds (hypothesis)
# --------------------------------------------------------------------------------------------


@given(net_box=networks_and_boxes(mixed=True), seed=st.integers(0, 2**32 - 1))
def test_layer_bounds_contain_samples(net_box: tuple[Network, Box], seed: int) -> None:
    net, box = net_box
    rng = np.random.default_rng(seed)
    x = sample_box(box, 256, rng)
    zs = pre_activations(net, x)
    for name, lb in [
        ("ibp", interval_bounds(net, box)),
        ("crown", crown_bounds(net, box)),
        ("crown-ibp-intermediate", crown_bounds(net, box, intermediate="ibp")),
    ]:
        assert len(lb.pre_activation) == len(zs)
        for k, (z, iv) in enumerate(zip(zs, lb.pre_activation)):
            assert np.all(iv.lower <= iv.upper)
            assert_inside(z, iv.lower, iv.upper, f"{name} layer {k}")


@given(net_box=networks_and_boxes(mixed=True), seed=st.integers(0, 2**32 - 1))
def test_crown_never_looser_than_ibp(net_box: tuple[Network, Box], seed: int) -> None:
    net, box = net_box
    ibp = interval_bounds(net, box)
    crown = crown_bounds(net, box)
    for a, b in zip(ibp.pre_activation, crown.pre_activation):
        assert np.all(b.lower >= a.lower) and np.all(b.upper <= a.upper)


@given(
    net_box=networks_and_boxes(max_outputs=4),
    rows=st.integers(1, 4),
    seed=st.integers(0, 2**32 - 1),
)
def test_spec_bounds_sound_and_ordered(net_box: tuple[Network, Box], rows: int, seed: int) -> None:
    net, box = net_box
    rng = np.random.default_rng(seed)
    C = rng.normal(size=(rows, net.n_outputs))
    d = rng.normal(size=rows)
    y = net.forward(sample_box(box, 256, rng)) @ C.T + d
    res = {m: spec_bounds(net, box, C, d, method=m) for m in ("ibp", "crown", "alpha-crown")}
    for m, (lo, hi) in res.items():
        assert lo.shape == hi.shape == (rows,)
        assert_inside(y, lo, hi, m)
    # crown is intersected with the merged IBP bound; alpha with crown
    assert np.all(res["crown"][0] >= res["ibp"][0]) and np.all(res["crown"][1] <= res["ibp"][1])
    assert np.all(res["alpha-crown"][0] >= res["crown"][0])
    assert np.all(res["alpha-crown"][1] <= res["crown"][1])


@given(net_box=networks_and_boxes(activation=ReLU), seed=st.integers(0, 2**32 - 1))
def test_alpha_crown_layer_bounds_sound(net_box: tuple[Network, Box], seed: int) -> None:
    net, box = net_box
    rng = np.random.default_rng(seed)
    y = net.forward(sample_box(box, 256, rng))
    plain = crown_bounds(net, box)
    opt = crown_bounds(net, box, alpha=True, alpha_steps=10)
    assert opt.method == "alpha-crown"
    assert_inside(y, opt.output.lower, opt.output.upper, "alpha-crown")
    assert np.all(opt.output.lower >= plain.output.lower)
    assert np.all(opt.output.upper <= plain.output.upper)


@given(
    net_box=networks_and_boxes(mixed=True, max_depth=4),
    seed=st.integers(0, 2**32 - 1),
    iters=st.sampled_from([1, 3, 10]),
)
def test_refined_layer_bounds_sound_and_never_looser(
    net_box: tuple[Network, Box], seed: int, iters: int
) -> None:
    net, box = net_box
    rng = np.random.default_rng(seed)
    eng = engine_for(net)
    lo, hi = box.lower[None, :], box.upper[None, :]
    plain = eng.intermediate(lo, hi, "crown")
    refined = eng.refine_intermediate(lo, hi, iters, inter=plain)
    assert refined is not None
    x = np.vstack([sample_box(box, 256, rng), lo, hi])
    zs = pre_activations(net, x)
    for k, ((pl, pu), (rl, ru)) in enumerate(zip(plain.pre, refined.pre)):
        assert np.all(rl >= pl) and np.all(ru <= pu), k
        assert_inside(zs[k], rl[0], ru[0], f"refined layer {k}")
    # the MILP's bounds through the same call
    lb = crown_bounds(net, box, refine_iters=iters)
    for k, z in enumerate(zs):
        assert_inside(z, lb.pre_activation[k].lower, lb.pre_activation[k].upper, f"milp {k}")


def test_refinement_tightens_deep_relu_layers_and_stops_when_asked() -> None:
    rng = np.random.default_rng(3)
    layers: list[object] = []
    widths = [6, 24, 24, 24, 2]
    for i in range(len(widths) - 1):
        if i:
            layers.append(ReLU())
        layers.append(
            Dense(rng.normal(size=(widths[i + 1], widths[i])), rng.normal(size=widths[i + 1]))
        )
    net = Network(tuple(layers), input_shape=(6,))  # type: ignore[arg-type]
    eng = engine_for(net)
    lo, hi = -np.ones((1, 6)), np.ones((1, 6))
    plain = eng.intermediate(lo, hi, "crown")
    refined = eng.refine_intermediate(lo, hi, 10, inter=plain)
    assert refined is not None
    gain = [
        float(np.sum(pu - pl) - np.sum(ru - rl))
        for (pl, pu), (rl, ru) in zip(plain.pre, refined.pre)
    ]
    assert gain[0] == 0.0 and max(gain[1:]) > 0.0, gain
    calls = [0]

    def stop() -> bool:
        calls[0] += 1
        return calls[0] > 3

    assert eng.refine_intermediate(lo, hi, 10, inter=plain, stop=stop) is None


@given(net=networks(max_outputs=3), box_seed=st.integers(0, 2**32 - 1))
def test_property_case_bounds(net: Network, box_seed: int) -> None:
    rng = np.random.default_rng(box_seed)
    lo = rng.uniform(-1, 1, size=net.n_inputs)
    box = Box(lo, lo + rng.uniform(0, 0.5, size=net.n_inputs))
    A = rng.normal(size=(2, net.n_outputs))
    b = rng.normal(size=2)
    y = net.forward(sample_box(box, 256, rng))
    g = y @ A.T - b
    for method in ("ibp", "crown", "alpha-crown"):
        lo_b, hi_b = property_case_bounds(net, UnsafeCase(box, A, b), method=method)
        assert_inside(g, lo_b, hi_b, method)
    # shift b so that the case becomes provably infeasible: A f(x) - b' > 0 everywhere
    lo_b, _ = property_case_bounds(net, UnsafeCase(box, A, b))
    shifted = UnsafeCase(box, A, b + lo_b - 0.5)
    assert np.all(property_case_bounds(net, shifted)[0] > 0)


# --------------------------------------------------------------------------------------------
# hand-checked examples
# --------------------------------------------------------------------------------------------


def test_single_relu_exact() -> None:
    """
    x in [-1, 2] --[1]--> z --ReLU--> a --[1]--> y
    CROWN upper chord: (2/3)(z + 1); max at z = 2 gives 2. Lower slope 1 (u > -l) gives -1,
    intersected with IBP (y >= 0): [0, 2], the exact range.
    """
    net = Network((Dense([[1.0]], [0.0]), ReLU(), Dense([[1.0]], [0.0])), input_shape=(1,))
    lb = crown_bounds(net, ([-1.0], [2.0]))
    # exact up to the rounding-error allowance of the outward arithmetic (~1e-15)
    np.testing.assert_allclose(lb.output.lower, [0.0], atol=1e-12)
    np.testing.assert_allclose(lb.output.upper, [2.0], atol=1e-12)
    assert lb.output.lower[0] <= 0.0 <= 2.0 <= lb.output.upper[0]


def test_crown_beats_ibp_on_cancellation() -> None:
    """
    x in [0, 1]^2, z = (x1 + x2, x1 - x2 + 2) (both stable positive), y = z1 + z2 - 2 x1 = 2
    IBP: z1 in [0, 2], z2 in [1, 3]; y = a1 + a2 - ... via the layer below (identity on a).
    Here y = a1 - a2 with a1 = x1 + x2, a2 = x1 + x2 (identical neurons): y = 0 exactly.
    """
    W1 = np.array([[1.0, 1.0], [1.0, 1.0]])
    net = Network((Dense(W1, [0.0, 0.0]), ReLU(), Dense([[1.0, -1.0]], [0.0])), input_shape=(2,))
    box = ([0.0, 0.0], [1.0, 1.0])
    ibp = output_bounds(net, box, method="ibp")
    crown = output_bounds(net, box, method="crown")
    np.testing.assert_allclose(ibp, ([-2.0], [2.0]))
    np.testing.assert_allclose(crown, ([0.0], [0.0]), atol=1e-12)


def test_merged_spec_row_tighter_than_subtracting() -> None:
    """
    y1 = a, y2 = a with a = ReLU(x), x in [-1, 1]: y1 - y2 = 0, but each logit is in [0, 1],
    so subtracting gives [-1, 1]; the merged row C W = 0 gives [0, 0].
    """
    net = Network((Dense([[1.0]], [0.0]), ReLU(), Dense([[1.0], [1.0]], [0.0, 0.0])), (1,))
    box = ([-1.0], [1.0])
    lo, hi = output_bounds(net, box)
    assert lo[0] - hi[1] == pytest.approx(-1.0)
    for method in ("ibp", "crown", "alpha-crown"):
        got = spec_bounds(net, box, [[1.0, -1.0]], method=method)
        np.testing.assert_allclose(got, [[0], [0]], atol=1e-12)  # up to the rounding allowance
        assert got[0][0] <= 0.0 <= got[1][0]
    lb = crown_bounds(net, box, spec_matrix=[[1.0, -1.0]])
    assert lb.spec is not None
    np.testing.assert_allclose([lb.spec.lower, lb.spec.upper], [[0.0], [0.0]], atol=1e-12)


def test_single_dense_layer_is_exact() -> None:
    net = Network((Dense([[1.0, -2.0]], [0.5]),), input_shape=(2,))
    lb = crown_bounds(net, ([0.0, 0.0], [1.0, 1.0]), spec_matrix=[[2.0]])
    np.testing.assert_allclose([lb.output.lower, lb.output.upper], [[-1.5], [1.5]])
    assert lb.spec is not None
    np.testing.assert_allclose([lb.spec.lower, lb.spec.upper], [[-3.0], [3.0]])


def test_alpha_crown_improves_on_random_relu_nets() -> None:
    rng = np.random.default_rng(7)
    gain = 0.0
    for _ in range(10):
        net = random_network(rng, [4, 16, 16, 16, 3])
        lo = rng.normal(size=4)
        box = Box(lo, lo + 0.5)
        plain = crown_bounds(net, box).output
        opt = crown_bounds(net, box, alpha=True, alpha_steps=30).output
        assert np.all(opt.lower >= plain.lower) and np.all(opt.upper <= plain.upper)
        gain += float(np.sum(plain.width - opt.width))
    assert gain > 0.0


# --------------------------------------------------------------------------------------------
# tightness on average
# --------------------------------------------------------------------------------------------


def test_crown_tighter_than_ibp_on_average_relu() -> None:
    rng = np.random.default_rng(2024)
    ibp_w, crown_w, strict = [], [], 0
    for _ in range(40):
        depth = int(rng.integers(2, 5))
        sizes = [int(rng.integers(2, 6))] + [int(rng.integers(4, 12))] * depth + [3]
        net = random_network(rng, sizes)
        lo = rng.normal(size=sizes[0])
        box = Box(lo, lo + rng.uniform(0.1, 1.0, size=sizes[0]))
        C = rng.normal(size=(4, 3))
        il, _ = spec_bounds(net, box, C, method="ibp")
        cl, _ = spec_bounds(net, box, C, method="crown")
        i_w = interval_bounds(net, box).output.width.mean()
        c_w = crown_bounds(net, box).output.width.mean()
        ibp_w.append(i_w)
        crown_w.append(c_w)
        strict += int(np.any(cl > il + 1e-12))
    assert np.mean(crown_w) < np.mean(ibp_w)
    assert strict > 20


@pytest.mark.parametrize("act", [Sigmoid(), Tanh(), HardTanh(-1, 1), LeakyReLU(0.1)])
def test_crown_tighter_than_ibp_on_average_other_activations(act: Activation) -> None:
    rng = np.random.default_rng(11)
    ibp_w, crown_w = [], []
    for _ in range(15):
        net = random_network(rng, [3, 10, 10, 10, 3], act=act, scale=2.0)
        lo = rng.normal(size=3)
        box = Box(lo, lo + 0.5)
        ibp_w.append(interval_bounds(net, box).output.width.mean())
        crown_w.append(crown_bounds(net, box).output.width.mean())
    assert np.mean(crown_w) < np.mean(ibp_w)


# --------------------------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------------------------

_NET = Network((Dense(np.eye(2), np.zeros(2)), ReLU(), Dense(np.ones((2, 2)), np.zeros(2))), (2,))
_BOX = Box(np.zeros(2), np.ones(2))


@pytest.mark.parametrize(
    ("func", "kwargs", "error", "match"),
    [
        pytest.param(
            crown_bounds,
            {"network": _NET, "box": Box(np.zeros(3), np.ones(3))},
            InvalidPropertyError,
            "3 dimensions",
            id="crown-box-dim",
        ),
        pytest.param(
            crown_bounds,
            {"network": _NET, "box": _BOX, "intermediate": "lp"},
            InvalidOptionsError,
            "intermediate",
            id="crown-intermediate",
        ),
        pytest.param(
            crown_bounds,
            {"network": _NET, "box": _BOX, "spec_matrix": np.ones((1, 3))},
            InvalidPropertyError,
            "spec matrix",
            id="crown-spec-shape",
        ),
        pytest.param(
            output_bounds,
            {"network": _NET, "box": _BOX, "method": "milp"},
            InvalidOptionsError,
            "method",
            id="output-method",
        ),
        pytest.param(
            spec_bounds,
            {"network": _NET, "box": _BOX, "C": np.ones((1, 2)), "d": np.ones(2)},
            InvalidPropertyError,
            "offset",
            id="spec-offset-shape",
        ),
        pytest.param(
            spec_bounds,
            {"network": _NET, "box": _BOX, "C": [[np.nan, 1.0]]},
            InvalidPropertyError,
            "finite",
            id="spec-nan",
        ),
    ],
)
def test_bad_input(
    func: Callable[..., object], kwargs: dict[str, object], error: type, match: str
) -> None:
    with pytest.raises(error, match=match):
        func(**kwargs)


# --------------------------------------------------------------------------------------------
# performance
# --------------------------------------------------------------------------------------------


def _best_time(fn: Callable[[], object], repeat: int) -> float:
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def test_performance_acas_and_mnist_sizes() -> None:
    """Generous limits (shared CI machines); typical: ACAS ~2 ms, MNIST 6x256 ~0.1-0.3 s."""
    rng = np.random.default_rng(0)
    acas = random_network(rng, [5] + [50] * 6 + [5])
    box = Box(np.full(5, -0.1), np.full(5, 0.1))
    assert _best_time(lambda: crown_bounds(acas, box), 5) < 0.05
    mnist = random_network(rng, [784] + [256] * 6 + [10])
    x0 = rng.uniform(0, 1, size=784)
    mbox = Box(np.clip(x0 - 0.02, 0, 1), np.clip(x0 + 0.02, 0, 1))
    assert _best_time(lambda: crown_bounds(mnist, mbox), 2) < 1.5


# --------------------------------------------------------------------------------------------
# ACAS Xu acceptance
# --------------------------------------------------------------------------------------------

_ASSERT_RE = re.compile(r"\(assert\s+\((<=|>=)\s+X_(\d+)\s+([-+0-9.eE]+)\)\)")


def read_input_box(path: Path) -> Box:
    """Input box of a simple VNN-LIB file (single-variable ``X_i`` bounds only)."""
    lo: dict[int, float] = {}
    hi: dict[int, float] = {}
    for op, idx, value in _ASSERT_RE.findall(path.read_text()):
        (hi if op == "<=" else lo)[int(idx)] = float(value)
    n = max(lo) + 1
    return Box(np.array([lo[i] for i in range(n)]), np.array([hi[i] for i in range(n)]))


def _acas_from_onnx_fallback(path: Path) -> Network:
    """Parse ``Sub(mean) -> Flatten -> (MatMul, Add, Relu)* -> MatMul, Add`` directly."""
    onnx = pytest.importorskip("onnx")
    from onnx import numpy_helper

    model = onnx.load(str(path))
    init = {t.name: numpy_helper.to_array(t).astype(np.float64) for t in model.graph.initializer}
    mean = np.zeros(5)
    layers: list[Layer] = []
    pending: np.ndarray | None = None
    for node in model.graph.node:
        if node.op_type == "Sub":
            mean = init[node.input[1]].reshape(-1)
        elif node.op_type == "MatMul":
            pending = init[node.input[1]].T  # x @ W  ->  Dense weight W^T
        elif node.op_type == "Add":
            assert pending is not None
            bias = init[node.input[1]].reshape(-1)
            if not layers:  # fold the input normalisation (x - mean)
                bias = bias - pending @ mean
            layers.append(Dense(pending, bias))
            pending = None
        elif node.op_type == "Relu":
            layers.append(ReLU())
        elif node.op_type != "Flatten":
            raise AssertionError(f"unexpected op {node.op_type}")
    return Network(tuple(layers), input_shape=(5,), source=str(path))


def load_acas(path: Path) -> Network:
    """Prefer ``nncert.verify.importers.from_onnx``; fall back to a direct parse."""
    if importlib.util.find_spec("nncert.verify.importers") is not None:
        from nncert.verify import importers

        from_onnx = getattr(importers, "from_onnx", None)
        if from_onnx is not None:
            return from_onnx(path)
    return _acas_from_onnx_fallback(path)


@pytest.fixture(scope="module")
def acas_networks() -> list[tuple[str, Network]]:
    onnx_dir = ACAS_DIR / "onnx"
    if not onnx_dir.is_dir():
        pytest.skip(f"ACAS Xu benchmark not found at {onnx_dir}")
    files = sorted(onnx_dir.glob("ACASXU_run2a_*_batch_2000.onnx"))
    if len(files) != 45:
        pytest.skip(f"expected 45 ACAS Xu networks, found {len(files)}")
    return [(f.stem, load_acas(f)) for f in files]


@pytest.mark.parametrize(
    "loader", [load_acas, _acas_from_onnx_fallback], ids=["preferred", "direct"]
)
def test_acas_loader_matches_onnxruntime(
    loader: Callable[[Path], Network], acas_networks: list[tuple[str, Network]]
) -> None:
    ort = pytest.importorskip("onnxruntime")
    path = ACAS_DIR / "onnx" / f"{acas_networks[0][0]}.onnx"
    net = loader(path)
    sess = ort.InferenceSession(str(path))
    x = np.random.default_rng(0).uniform(-0.5, 0.5, size=(8, 5))
    ref = np.concatenate(
        [sess.run(None, {"input": xi.reshape(1, 1, 1, 5).astype(np.float32)})[0] for xi in x]
    )
    np.testing.assert_allclose(net.forward(x), ref, rtol=1e-4, atol=1e-4)


@pytest.mark.slow
def test_acas_crown_contains_samples_and_beats_ibp(
    acas_networks: list[tuple[str, Network]],
) -> None:
    props = [read_input_box(ACAS_DIR / "vnnlib" / f"prop_{i}.vnnlib") for i in (1, 2, 3, 4)]
    rng = np.random.default_rng(0)
    ibp_widths, crown_widths = [], []
    for name, net in acas_networks:
        for p, box in enumerate(props, start=1):
            y = net.forward(box.sample(10_000, rng))
            ilo, ihi = output_bounds(net, box, method="ibp")
            clo, chi = output_bounds(net, box, method="crown")
            assert_inside(y, clo, chi, f"{name} prop {p} crown")
            assert np.all(clo >= ilo) and np.all(chi <= ihi)
            ibp_widths.append(np.mean(ihi - ilo))
            crown_widths.append(np.mean(chi - clo))
    assert len(crown_widths) == 180
    assert np.mean(crown_widths) < np.mean(ibp_widths)
    # strictly tighter on the large majority of (network, property) pairs
    assert np.mean(np.array(crown_widths) < np.array(ibp_widths)) > 0.5
