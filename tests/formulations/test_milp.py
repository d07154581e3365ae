"""Model 1 (exact big-M MILP): oracles from FORMULATIONS.md section 13 and DESIGN.md 11.5.

The main oracle enumerates every activation region of a tiny network (one LP per region with
``scipy.optimize.linprog``, independent of highspy) and compares the minimum with the MILP
optimum; the MILP's argmin must reproduce its optimum under ``Network.forward``.
"""

from __future__ import annotations

import itertools
import math
import os

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog
from strategies import activations, boxes, networks

from nncert.formulations.milp import (
    MilpBuilder,
    MilpProblem,
    encode_milp,
    lp_relaxation,
)
from nncert.solvers.base import SolveStatus
from nncert.solvers.highs_solver import HighsSolver
from nncert.verify.bounds import interval_bounds
from nncert.verify.errors import (
    InvalidOptionsError,
    InvalidPropertyError,
    UnsupportedLayerError,
)
from nncert.verify.network import (
    Dense,
    HardTanh,
    LeakyReLU,
    Network,
    ReLU,
    Sigmoid,
    Tanh,
)
from nncert.verify.spec import Box, UnsafeCase

# HiGHS's default tolerances: with mip_feasibility_tolerance=1e-9, HiGHS 1.16 returned wrong
# answers on degenerate models (see test_feasible_big_m_milp_is_never_reported_infeasible)
SOLVER = HighsSolver(mip_rel_gap=0.0)
MAX_REGIONS = 81


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def _regions(act: object) -> list[tuple[float, float, float, float]]:
    """Regions of one activation as (z_lo, z_hi, slope, intercept): a = slope z + intercept."""
    if isinstance(act, ReLU):
        return [(0.0, math.inf, 1.0, 0.0), (-math.inf, 0.0, 0.0, 0.0)]
    if isinstance(act, LeakyReLU):
        return [(0.0, math.inf, 1.0, 0.0), (-math.inf, 0.0, act.alpha, 0.0)]
    if isinstance(act, HardTanh):
        m, M = act.min_val, act.max_val
        return [(-math.inf, m, 0.0, m), (m, M, 1.0, 0.0), (M, math.inf, 0.0, M)]
    raise TypeError(act)


def n_regions(net: Network) -> int:
    _, acts = net.affine_and_activations()
    dense = net.dense_layers
    total = 1
    for act, layer in zip(acts, dense):
        total *= len(_regions(act)) ** layer.n_out
    return total


def region_enumeration_min(net: Network, case: UnsafeCase) -> float:
    """``min_x max_r (A_r f(x) - b_r)`` over the box by one LP per activation region."""
    dense, acts = net.affine_and_activations()
    n0 = net.n_inputs
    choices = [[_regions(act)] * layer.n_out for act, layer in zip(acts, dense[:-1], strict=True)]
    flat = [r for layer in choices for r in layer]
    best = math.inf
    box = case.input_box
    for pattern in itertools.product(*flat):
        P, q = np.eye(n0), np.zeros(n0)
        A_ub: list[np.ndarray] = []
        b_ub: list[float] = []
        pos = 0
        for k, act_layer in enumerate(choices):
            Z = dense[k].weight @ P
            zc = dense[k].weight @ q + dense[k].bias
            reg = pattern[pos : pos + len(act_layer)]
            pos += len(act_layer)
            lo = np.array([r[0] for r in reg])
            hi = np.array([r[1] for r in reg])
            s = np.array([r[2] for r in reg])
            c = np.array([r[3] for r in reg])
            for i in range(len(reg)):
                if math.isfinite(hi[i]):
                    A_ub.append(Z[i])
                    b_ub.append(hi[i] - zc[i])
                if math.isfinite(lo[i]):
                    A_ub.append(-Z[i])
                    b_ub.append(zc[i] - lo[i])
            P = s[:, None] * Z
            q = s * zc + c
        G = case.A @ dense[-1].weight @ P
        h = case.A @ (dense[-1].weight @ q + dense[-1].bias) - case.b
        # variables (x, t): min t  s.t.  G x - t <= -h,  region rows
        rows = [np.concatenate([g, [-1.0]]) for g in G] + [np.append(a, 0.0) for a in A_ub]
        rhs = list(-h) + b_ub
        bounds = [*zip(box.lower, box.upper), (None, None)]
        cost = np.zeros(n0 + 1)
        cost[-1] = 1.0
        res = linprog(cost, A_ub=np.array(rows), b_ub=np.array(rhs), bounds=bounds, method="highs")
        if res.status == 0:
            best = min(best, float(res.fun))
    return best


def solve_case(net: Network, case: UnsafeCase, **kw: object) -> tuple[float, np.ndarray]:
    problem = encode_milp(net, case, interval_bounds(net, case.input_box), **kw)  # type: ignore[arg-type]
    res = SOLVER.solve(problem)
    assert res.status is SolveStatus.OPTIMAL, res
    assert res.objective is not None and res.x is not None
    return res.objective, problem.decode_input(res.x)


def tol(*values: float) -> float:
    return 1e-6 * (1.0 + max(abs(v) for v in values))


@st.composite
def net_case(draw: st.DrawFn, kinds: list[type]) -> tuple[Network, UnsafeCase]:
    net = draw(
        networks(
            activation=activations(kinds),
            max_depth=2,
            max_width=4,
            max_inputs=3,
            max_outputs=3,
        )
    )
    assume(n_regions(net) <= MAX_REGIONS)
    box = draw(boxes(net.n_inputs, max_width=2.0))
    r = draw(st.integers(1, 3))
    A = draw(st.lists(st.floats(-2, 2, width=32), min_size=r * net.n_outputs,
                      max_size=r * net.n_outputs))  # fmt: skip
    b = draw(st.lists(st.floats(-1, 1, width=32), min_size=r, max_size=r))
    return net, UnsafeCase(box, np.reshape(A, (r, net.n_outputs)), np.array(b))


KINDS = {"relu": [ReLU], "leaky_relu": [LeakyReLU], "hardtanh": [HardTanh]}


# --------------------------------------------------------------------------------------------
# exactness against region enumeration
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(KINDS))
@settings(max_examples=int(os.environ.get("NNCERT_MILP_EXAMPLES", "25")))
@given(data=st.data())
def test_milp_optimum_equals_region_enumeration(kind: str, data: st.DataObject) -> None:
    net, case = data.draw(net_case(KINDS[kind]))
    opt, x = solve_case(net, case)
    ref = region_enumeration_min(net, case)
    assert opt == pytest.approx(ref, abs=tol(opt, ref))
    # the decoded argmin lies in the box and reproduces the optimum under forward
    assert case.input_box.contains(x)
    value = float(case.violation(net.forward(x[None]))[0])
    assert value == pytest.approx(opt, abs=1e-5 * (1 + abs(opt)))


@pytest.mark.parametrize("kind", list(KINDS))
@settings(max_examples=int(os.environ.get("NNCERT_MILP_EXAMPLES", "25")))
@given(data=st.data())
def test_stable_neuron_elimination_keeps_optimum(kind: str, data: st.DataObject) -> None:
    net, case = data.draw(net_case(KINDS[kind]))
    bounds = interval_bounds(net, case.input_box)
    lean = encode_milp(net, case, bounds)
    full = encode_milp(net, case, bounds, stable_binaries=True)
    assert lean.stats is not None and full.stats is not None
    assert lean.stats.n_binaries <= full.stats.n_binaries
    a, b = SOLVER.solve(lean), SOLVER.solve(full)
    assert a.objective is not None and b.objective is not None
    assert a.objective == pytest.approx(b.objective, abs=tol(a.objective, b.objective))


@settings(max_examples=int(os.environ.get("NNCERT_MILP_EXAMPLES", "25")))
@given(data=st.data())
def test_lp_relaxation_is_a_lower_bound(data: st.DataObject) -> None:
    net, case = data.draw(net_case([ReLU, LeakyReLU, HardTanh]))
    problem = encode_milp(net, case, interval_bounds(net, case.input_box))
    lp = SOLVER.solve(lp_relaxation(problem))
    mip = SOLVER.solve(problem)
    assert lp.status is SolveStatus.OPTIMAL and lp.objective is not None
    # HiGHS's own final check can reject its optimum ("MIP solver claims optimality, but with
    # 1 primal infeasibilities" of 1e-6 on a HardTanh net: status ERROR, which the pipeline
    # treats as unknown); such a draw says nothing about the relaxation
    assume(mip.status is not SolveStatus.ERROR)
    assert mip.objective is not None
    assert lp.objective <= mip.objective + tol(lp.objective, mip.objective)


# --------------------------------------------------------------------------------------------
# metamorphic relations
# --------------------------------------------------------------------------------------------


def _permute_hidden(net: Network, k: int, perm: np.ndarray) -> Network:
    dense, acts = net.affine_and_activations()
    d = list(dense)
    d[k] = Dense(d[k].weight[perm], d[k].bias[perm])
    d[k + 1] = Dense(d[k + 1].weight[:, perm], d[k + 1].bias)
    layers: list[object] = [d[0]]
    for act, layer in zip(acts, d[1:]):
        layers += [act, layer]
    return net.replace_layers(layers)  # type: ignore[arg-type]


def _rescale_hidden(net: Network, k: int, s: np.ndarray) -> Network:
    dense, acts = net.affine_and_activations()
    d = list(dense)
    d[k] = Dense(d[k].weight * s[:, None], d[k].bias * s)
    d[k + 1] = Dense(d[k + 1].weight / s[None, :], d[k + 1].bias)
    layers: list[object] = [d[0]]
    for act, layer in zip(acts, d[1:]):
        layers += [act, layer]
    return net.replace_layers(layers)  # type: ignore[arg-type]


@settings(max_examples=int(os.environ.get("NNCERT_MILP_EXAMPLES", "25")))
@given(data=st.data())
def test_permuting_hidden_neurons_keeps_optimum(data: st.DataObject) -> None:
    net, case = data.draw(net_case([ReLU, LeakyReLU, HardTanh]))
    n_hidden = len(net.dense_layers) - 1
    k = data.draw(st.integers(0, n_hidden - 1))
    perm = np.array(data.draw(st.permutations(range(net.dense_layers[k].n_out))))
    a, _ = solve_case(net, case)
    b, _ = solve_case(_permute_hidden(net, k, perm), case)
    assert a == pytest.approx(b, abs=tol(a, b))


@settings(max_examples=int(os.environ.get("NNCERT_MILP_EXAMPLES", "25")))
@given(data=st.data())
def test_positive_rescaling_of_relu_layer_keeps_optimum(data: st.DataObject) -> None:
    net, case = data.draw(net_case([ReLU, LeakyReLU]))
    n_hidden = len(net.dense_layers) - 1
    k = data.draw(st.integers(0, n_hidden - 1))
    width = net.dense_layers[k].n_out
    s = np.array(data.draw(st.lists(st.sampled_from([0.25, 0.5, 2.0, 4.0]), min_size=width,
                                    max_size=width)))  # fmt: skip
    a, _ = solve_case(net, case)
    b, _ = solve_case(_rescale_hidden(net, k, s), case)
    assert a == pytest.approx(b, abs=tol(a, b))


# --------------------------------------------------------------------------------------------
# structure and stats
# --------------------------------------------------------------------------------------------


def _tiny_relu() -> Network:
    return Network(
        (
            Dense(np.array([[1.0], [-1.0]]), np.zeros(2)),
            ReLU(),
            Dense(np.array([[1.0, 1.0]]), np.zeros(1)),
        ),
        input_shape=(1,),
    )


def test_abs_network_encoding_and_stats() -> None:
    net = _tiny_relu()  # f(x) = |x|
    case = UnsafeCase(Box([-1.0], [2.0]), [[1.0]], [0.5])  # unsafe iff |x| <= 0.5
    problem = encode_milp(net, case, interval_bounds(net, case.input_box))
    assert problem.stats is not None
    assert problem.stats.n_binaries == 2
    assert problem.stats.unstable_per_layer == (2,)
    assert problem.index.objective is None  # one row: no t column
    assert problem.index.n_inputs == 1
    res = SOLVER.solve(problem)
    assert res.objective == pytest.approx(-0.5)
    assert res.x is not None
    assert abs(problem.index.decode_input(res.x)[0]) < 1e-9
    assert problem.max_violation(res.x) < 1e-7


def test_stable_network_gives_an_lp() -> None:
    net = _tiny_relu()
    case = UnsafeCase(Box([0.5], [2.0]), [[-1.0]], [0.0])  # x > 0: neuron 1 active, 2 inactive
    problem = encode_milp(net, case, interval_bounds(net, case.input_box))
    assert problem.stats is not None
    assert problem.stats.n_binaries == 0 and not problem.is_mip
    assert problem.stats.unstable_per_layer == (0,)
    res = SOLVER.solve(problem)
    assert res.objective == pytest.approx(-2.0)


def test_multi_row_case_uses_t_column() -> None:
    net = _tiny_relu()
    # unsafe iff |x| <= 1 and -|x| <= -0.5, i.e. 0.5 <= |x| <= 1
    case = UnsafeCase(Box([-3.0], [3.0]), [[1.0], [-1.0]], [1.0, -0.5])
    problem = encode_milp(net, case, interval_bounds(net, case.input_box))
    assert problem.index.objective is not None
    res = SOLVER.solve(problem)
    # min_x max(|x| - 1, 0.5 - |x|) = -0.25 at |x| = 0.75
    assert res.objective == pytest.approx(-0.25)


def test_zero_row_case_is_always_violated() -> None:
    net = _tiny_relu()
    case = UnsafeCase(Box([-1.0], [1.0]), np.zeros((0, 1)), np.zeros(0))
    problem = encode_milp(net, case, interval_bounds(net, case.input_box))
    res = SOLVER.solve(problem)
    assert res.objective == pytest.approx(0.0)


def test_hardtanh_binaries_only_for_interior_kinks() -> None:
    net = Network(
        (Dense(np.eye(3), np.zeros(3)), HardTanh(-1.0, 1.0), Dense(np.ones((1, 3)), np.zeros(1))),
        input_shape=(3,),
    )
    # neuron 0 crosses both kinks, neuron 1 only +1, neuron 2 neither
    box = Box([-2.0, 0.0, -0.5], [2.0, 2.0, 0.5])
    case = UnsafeCase(box, [[1.0]], [0.0])
    problem = encode_milp(net, case, interval_bounds(net, box))
    assert problem.stats is not None
    assert problem.stats.binaries_per_layer == (3,)
    assert problem.stats.unstable_per_layer == (2,)
    assert sorted(problem.index.binary_neuron[0].tolist()) == [0, 0, 1]
    res = SOLVER.solve(problem)
    assert res.objective == pytest.approx(-1.0 + 0.0 - 0.5)


def test_leaky_relu_alpha_one_is_identity_without_binaries() -> None:
    net = Network(
        (Dense(np.eye(2), np.zeros(2)), LeakyReLU(1.0), Dense(np.ones((1, 2)), np.zeros(1))),
        input_shape=(2,),
    )
    case = UnsafeCase(Box([-1.0, -1.0], [1.0, 1.0]), [[1.0]], [0.0])
    problem = encode_milp(net, case, interval_bounds(net, case.input_box))
    assert problem.stats is not None and problem.stats.n_binaries == 0
    assert SOLVER.solve(problem).objective == pytest.approx(-2.0)


def test_linear_network_without_hidden_layers() -> None:
    net = Network((Dense(np.array([[1.0, -2.0]]), np.array([0.5])),), input_shape=(2,))
    case = UnsafeCase(Box([0.0, 0.0], [1.0, 1.0]), [[1.0]], [0.0])
    problem = encode_milp(net, case, interval_bounds(net, case.input_box))
    assert problem.index.pre == ()
    assert SOLVER.solve(problem).objective == pytest.approx(-1.5)


# --------------------------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("act", [Sigmoid(), Tanh()])
def test_smooth_activations_are_rejected(act: object) -> None:
    net = Network(
        (Dense(np.eye(2), np.zeros(2)), act, Dense(np.ones((1, 2)), np.zeros(1))),  # type: ignore[arg-type]
        input_shape=(2,),
    )
    case = UnsafeCase(Box([-1.0, -1.0], [1.0, 1.0]), [[1.0]], [0.0])
    with pytest.raises(UnsupportedLayerError, match="piecewise-linear"):
        encode_milp(net, case, interval_bounds(net, case.input_box))


def test_bounds_over_a_smaller_box_are_rejected() -> None:
    net = _tiny_relu()
    case = UnsafeCase(Box([-1.0], [1.0]), [[1.0]], [0.0])
    with pytest.raises(InvalidPropertyError, match="box"):
        encode_milp(net, case, interval_bounds(net, Box([-0.5], [0.5])))


def test_bounds_of_another_network_are_rejected() -> None:
    net = _tiny_relu()
    other = Network(
        (
            Dense(np.array([[2.0], [-1.0]]), np.zeros(2)),
            ReLU(),
            Dense(np.ones((1, 2)), np.zeros(1)),
        ),
        input_shape=(1,),
    )
    case = UnsafeCase(Box([-1.0], [1.0]), [[1.0]], [0.0])
    with pytest.raises(InvalidOptionsError, match="different network"):
        encode_milp(net, case, interval_bounds(other, case.input_box))


def test_case_of_wrong_shape_is_rejected() -> None:
    net = _tiny_relu()
    case = UnsafeCase(Box([-1.0, 0.0], [1.0, 1.0]), [[1.0]], [0.0])
    with pytest.raises(InvalidPropertyError, match="inputs"):
        encode_milp(net, case, interval_bounds(net, Box([-1.0], [1.0])))


def test_unknown_hardtanh_encoding_is_rejected() -> None:
    net = _tiny_relu()
    case = UnsafeCase(Box([-1.0], [1.0]), [[1.0]], [0.0])
    with pytest.raises(InvalidOptionsError, match="hardtanh"):
        encode_milp(net, case, interval_bounds(net, case.input_box), hardtanh="disjunctive")  # type: ignore[arg-type]


def test_milp_problem_validation() -> None:
    with pytest.raises(InvalidOptionsError, match="columns"):
        MilpProblem.from_arrays([1.0, 2.0], np.ones((1, 3)), [0.0], [1.0], [0, 0], [1, 1])
    with pytest.raises(InvalidOptionsError, match="lower bound"):
        MilpProblem.from_arrays([1.0], np.ones((1, 1)), [2.0], [1.0], [0], [1])
    with pytest.raises(InvalidOptionsError, match="NaN"):
        MilpProblem.from_arrays([np.nan], np.ones((1, 1)), [0.0], [1.0], [0], [1])
    p = MilpProblem.from_arrays([1.0], sp.csr_array(np.ones((1, 1))), [0.0], [1.0], [0], [1])
    assert not p.c.flags.writeable and not p.A.data.flags.writeable
    with pytest.raises(InvalidOptionsError, match="entries"):
        p.index.decode_input(np.zeros(3))


def test_builder_sums_duplicates_and_drops_zeros() -> None:
    b = MilpBuilder()
    x = b.add_columns(2, 0.0, 1.0)
    rows = b.add_rows([(np.array([x.start]), 1.0), (np.array([x.start]), 2.0)], 0.0, 5.0)
    b.add_block(rows, x, np.array([[0.0, 4.0]]))
    from nncert.formulations.milp import VariableIndex

    p = b.build(np.zeros(2), 0.0, VariableIndex(2, x))
    assert p.A.toarray().tolist() == [[3.0, 4.0]]
    assert p.A.nnz == 2


# --------------------------------------------------------------------------------------------
# early stops and warm starts on a network MILP
# --------------------------------------------------------------------------------------------


def _random_net(seed: int, sizes: list[int]) -> Network:
    rng = np.random.default_rng(seed)
    layers: list[object] = []
    for a, b in itertools.pairwise(sizes):
        layers += [Dense(rng.normal(size=(b, a)) / np.sqrt(a), 0.1 * rng.normal(size=b)), ReLU()]
    return Network(tuple(layers[:-1]), input_shape=(sizes[0],))  # type: ignore[arg-type]


def _margin_case(net: Network, x0: np.ndarray, eps: float) -> UnsafeCase:
    y = int(np.argmax(net.forward(x0)))
    j = (y + 1) % net.n_outputs
    a = np.zeros(net.n_outputs)
    a[y], a[j] = 1.0, -1.0
    return UnsafeCase(Box(x0 - eps, x0 + eps), a[None], [0.0])


def test_objective_target_and_bound_target() -> None:
    net = _random_net(3, [4, 12, 12, 3])
    x0 = np.full(4, 0.5)
    far = _margin_case(net, x0, 2.0)  # large box: counterexample expected
    near = _margin_case(net, x0, 1e-3)  # tiny box: robust
    p_far = encode_milp(net, far, interval_bounds(net, far.input_box))
    p_near = encode_milp(net, near, interval_bounds(net, near.input_box))
    full = SOLVER.solve(p_far)
    assert full.objective is not None and full.objective < 0
    r = SOLVER.solve(p_far, objective_target=0.0)
    assert r.status in (SolveStatus.OBJECTIVE_TARGET, SolveStatus.OPTIMAL)
    assert r.objective is not None and r.objective <= 0.0 and r.x is not None
    x = p_far.index.decode_input(r.x)
    assert float(far.violation(net.forward(x[None]))[0]) <= 1e-6
    r = SOLVER.solve(p_near, bound_target=0.0)
    assert r.status in (SolveStatus.INTERRUPTED, SolveStatus.OPTIMAL)
    assert r.proves_above(0.0)
    # warm starts (full and inputs-only) do not change the optimum
    w = SOLVER.solve(p_far, initial_solution=x0)
    assert w.objective == pytest.approx(full.objective, abs=1e-6)
    assert full.x is not None
    w = SOLVER.solve(p_far, initial_solution=full.x)
    assert w.objective == pytest.approx(full.objective, abs=1e-6)


@pytest.mark.parametrize("kind", list(KINDS))
@settings(max_examples=int(os.environ.get("NNCERT_MILP_EXAMPLES", "25")))
@given(data=st.data())
def test_start_from_input_is_feasible_and_exact(kind: str, data: st.DataObject) -> None:
    net, case = data.draw(net_case(KINDS[kind]))
    problem = encode_milp(net, case, interval_bounds(net, case.input_box))
    x = data.draw(st.sampled_from([case.input_box.lower, case.input_box.upper]))
    v = problem.start_from_input(net, x)
    assert problem.max_violation(v) <= 1e-9 * (1 + np.abs(v).max())
    value = float(case.violation(net.forward(x[None]))[0]) if case.n_rows else 0.0
    assert problem.objective_value(v) == pytest.approx(value, abs=1e-9 * (1 + abs(value)))
    assert np.array_equal(problem.decode_input(v), x)


def test_feasible_big_m_milp_is_never_reported_infeasible() -> None:
    # HiGHS 1.16's presolve at mip_feasibility_tolerance=1e-9 called this feasible MILP
    # (degenerate box, stable_binaries) infeasible; HighsSolver re-checks an infeasible MIP
    # without presolve, and the default tolerances get it right.
    net = Network(
        (
            Dense(np.array([[0, 0], [0, 0], [2, -1.5], [0, -1.0]]), np.array([0, 0, 2, 1.0])),
            ReLU(),
            Dense(np.full((2, 4), 0.25), np.zeros(2)),
            ReLU(),
            Dense(np.ones((2, 2)), np.zeros(2)),
        ),
        input_shape=(2,),
    )
    case = UnsafeCase(Box([0.0, 0.0], [9.99999972e-10, 1.0]), [[0.0, -1.0]], [0.0])
    problem = encode_milp(net, case, interval_bounds(net, case.input_box), stable_binaries=True)
    for solver in (SOLVER, HighsSolver(options={"mip_feasibility_tolerance": 1e-9})):
        res = solver.solve(problem)
        assert res.status is SolveStatus.OPTIMAL
        assert res.objective == pytest.approx(-1.5, abs=1e-6)
