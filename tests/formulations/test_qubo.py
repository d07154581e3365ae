"""QUBO formulations: encodings (oracle 32), Ising plumbing (30), spin counts (22), the Benders
master QUBO against the exact master (oracles 4, 31), and Route B (falsification only)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from nncert.formulations.benders import enumerate_master, master_values
from nncert.formulations.qubo import (
    FixedPointEncoding,
    QuboMasterOptions,
    QuboProblem,
    benders_master_qubo,
    brute_force,
    master_spins,
    max_cut_violation,
    milp_to_qubo,
    offset_encoding,
    twos_complement_encoding,
)
from nncert.verify.errors import InvalidOptionsError


def _all_bits(n: int) -> np.ndarray:
    return np.array(list(itertools.product([0, 1], repeat=n)), dtype=np.int8)


# -- encodings (oracle 32) ---------------------------------------------------------------------


@pytest.mark.parametrize("bits", [1, 2, 5])
@pytest.mark.parametrize("step", [0.1, 0.25, 3.0])
def test_twos_complement_range(bits: int, step: float) -> None:
    enc = FixedPointEncoding("twos_complement", bits, step)
    vals = np.sort(enc.decode(_all_bits(bits)))
    assert vals[0] == pytest.approx(-step * 2 ** (bits - 1))
    assert vals[-1] == pytest.approx(step * (2 ** (bits - 1) - 1))
    np.testing.assert_allclose(np.diff(vals), step)
    assert enc.min_value == pytest.approx(vals[0]) and enc.max_value == pytest.approx(vals[-1])


@pytest.mark.parametrize(("lo", "hi", "step"), [(-1.3, 2.2, 0.1), (0.0, 1.0, 0.3), (5.0, 5.0, 1)])
def test_offset_range_covers_interval(lo: float, hi: float, step: float) -> None:
    enc = offset_encoding(lo, hi, step)
    vals = np.sort(enc.decode(_all_bits(enc.bits)))
    assert vals[0] == pytest.approx(lo)
    assert vals[-1] >= hi - 1e-12
    assert vals[-1] == pytest.approx(lo + step * (2**enc.bits - 1))
    np.testing.assert_allclose(np.diff(vals), step)
    # encode() rounds up to the grid
    for v in np.linspace(lo, hi, 7):
        got = float(enc.decode(enc.encode(v)))
        assert v - 1e-12 <= got <= v + step + 1e-12


def test_hqcran_eta_bits_formula() -> None:
    for t_max, w in [(3.0, 0.01), (100.0, 0.5), (0.2, 0.01)]:
        enc = twos_complement_encoding(t_max, w)
        assert enc.bits == 1 + math.ceil(math.log2(1 + 2 * t_max / w))
        assert enc.max_value >= t_max and enc.min_value <= -t_max
    e = twos_complement_encoding(1.0, 0.25)
    assert float(e.decode(e.encode(-0.6))) == pytest.approx(-0.5)


def test_encoding_rejects_bad_arguments() -> None:
    with pytest.raises(InvalidOptionsError):
        FixedPointEncoding("gray", 3, 0.1)
    with pytest.raises(InvalidOptionsError):
        FixedPointEncoding("offset", 0, 0.1)
    with pytest.raises(InvalidOptionsError):
        offset_encoding(1.0, 0.0, 0.1)


# -- QUBO plumbing (oracle 30) -----------------------------------------------------------------


def _random_qubo(rng: np.random.Generator, n: int) -> QuboProblem:
    row, col = np.triu_indices(n, 1)
    keep = rng.random(row.size) < 0.6
    return QuboProblem(
        rng.normal(size=n),
        row[keep],
        col[keep],
        rng.normal(size=int(keep.sum())),
        float(rng.normal()),
        {"activation": n, "objective": 0, "slack": 0},
    )


def test_qubo_ising_energies_agree() -> None:
    rng = np.random.default_rng(3)
    for n in (1, 4, 9):
        q = _random_qubo(rng, n)
        h, r, c, J, off = q.to_ising()
        X = rng.integers(0, 2, size=(50, n))
        S = 2.0 * X - 1.0
        e_ising = S @ h + (S[:, r] * S[:, c]) @ J + off
        np.testing.assert_allclose(e_ising, q.energies(X), atol=1e-12)
        bqm = q.to_bqm()
        np.testing.assert_allclose(bqm.energies((X, range(n))), q.energies(X), atol=1e-12)
        spin = bqm.spin
        np.testing.assert_allclose(spin.energies((S.astype(int), range(n))), e_ising, atol=1e-9)


def test_qubo_problem_validates() -> None:
    with pytest.raises(InvalidOptionsError):
        QuboProblem(np.zeros(2), [1], [0], [1.0], 0.0, {"activation": 2})
    with pytest.raises(InvalidOptionsError):
        QuboProblem(np.zeros(2), [], [], [], 0.0, {"activation": 3})


# -- the Benders master QUBO (oracles 4, 22, 31) -----------------------------------------------


def _cuts(rng: np.random.Generator, K: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    return rng.normal(size=K), rng.normal(size=(K, n))


def test_master_spin_accounting() -> None:
    rng = np.random.default_rng(0)
    a, B = _cuts(rng, 3, 4)
    q = benders_master_qubo(a, B, (-5.0, 5.0), QuboMasterOptions(eta_bits=5))
    assert q.spins["activation"] == 4 and q.spins["objective"] == 5
    assert q.spins["slack"] == sum(q.meta["slack_bits"])
    assert q.num_variables == master_spins(4, 5, q.meta["slack_bits"])
    u = benders_master_qubo(
        a, B, (-5.0, 5.0), QuboMasterOptions(eta_bits=5, penalization="unbalanced")
    )
    assert u.num_variables == master_spins(4, 5) == 9 and u.spins["slack"] == 0
    assert math.isinf(u.bound_correction)


@pytest.mark.parametrize("seed", range(8))
def test_master_qubo_ground_state_is_master_optimal(seed: int) -> None:
    """Oracle 4/31: brute force of the master QUBO; assert on delta_hat, never on decoded eta."""
    rng = np.random.default_rng(seed)
    n, K = 3, 2
    a, B = _cuts(rng, K, n)
    eta_lo, eta_hi = -4.0, 4.0
    opts = QuboMasterOptions(eta_bits=4)
    q = benders_master_qubo(a, B, (eta_lo, eta_hi), opts)
    assert q.num_variables <= 22
    x, e_min = brute_force(q)
    dec = q.decode(x)
    m, _ = enumerate_master(a, B, n, eta_lo)
    eta_hat = float(master_values(a, B, dec["delta"], eta_lo)[0])
    assert dec["eta_hat"] == pytest.approx(eta_hat)
    eps = q.meta["eps_optimal"]
    # delta_hat is eps-optimal for the master; the corrected ground energy is a sound bound
    assert eta_hat <= m + eps + 1e-9
    assert e_min - q.bound_correction <= m + 1e-9
    # constraint satisfaction within the documented violation bound
    w = q.meta["encoding"].step
    viol = float(np.max(a + B @ dec["delta"])) - dec["eta"]
    assert viol <= max_cut_violation(w, opts.penalty_scale) + 1e-9
    # where the optimum is separated from the runner-up by more than eps, delta_hat is optimal
    vals = master_values(a, B, _all_bits(n), eta_lo)
    runner_up = np.min(vals[vals > m + 1e-12]) if np.any(vals > m + 1e-12) else np.inf
    if runner_up > m + eps:
        assert eta_hat == pytest.approx(m, abs=1e-12)


def test_master_qubo_exact_solver_matches_milp_master() -> None:
    """dimod.ExactSolver on <= 18 variables vs the HiGHS MILP master (oracle 4)."""
    from nncert.formulations.benders import BendersSplit
    from nncert.solvers.dimod_solver import exact
    from nncert.solvers.highs_solver import HighsSolver

    a = np.array([-1.0, 0.5])
    B = np.array([[2.0, -1.5, 0.5], [-1.0, 1.0, 2.0]])
    q = benders_master_qubo(a, B, (-3.0, 3.0), QuboMasterOptions(eta_bits=3))
    assert q.num_variables <= 18
    res = exact().solve(q)
    dec = q.decode(res.x)
    # the MILP master through BendersSplit.master_milp (only eta_lo/n_delta are used)
    dummy = BendersSplit.__new__(BendersSplit)
    object.__setattr__(dummy, "delta_cols", np.arange(3))
    object.__setattr__(dummy, "eta_lo", -3.0)
    milp = dummy.master_milp(a, B)
    r = HighsSolver(mip_rel_gap=0.0).solve(milp)
    assert r.bound == pytest.approx(enumerate_master(a, B, 3, -3.0)[0])
    assert dec["eta_hat"] == pytest.approx(r.bound, abs=1e-9)
    assert res.bound is not None and res.bound - q.bound_correction <= r.bound + 1e-9


def test_twos_complement_master() -> None:
    rng = np.random.default_rng(11)
    a, B = _cuts(rng, 1, 3)
    q = benders_master_qubo(
        a, B, (-2.0, 2.0), QuboMasterOptions(eta_bits=4, encoding="twos_complement")
    )
    x, e = brute_force(q)
    m, _ = enumerate_master(a, B, 3, -2.0)
    assert q.decode(x)["eta_hat"] <= m + q.meta["eps_optimal"] + 1e-9
    assert e - q.bound_correction <= m + 1e-9


def test_master_without_cuts() -> None:
    q = benders_master_qubo(np.zeros(0), np.zeros((0, 2)), (-1.0, 1.0))
    assert q.spins == {"activation": 2, "objective": 8, "slack": 0}
    x, _e = brute_force(q)
    assert q.decode(x)["eta"] == pytest.approx(-1.0)
    with pytest.raises(InvalidOptionsError):
        benders_master_qubo(np.zeros(2), np.zeros((3, 2)), (-1.0, 1.0))


# -- Route B ------------------------------------------------------------------------------------


def _tiny_case() -> tuple:
    from nncert.verify.network import Dense, Network, ReLU
    from nncert.verify.spec import Box, UnsafeCase

    net = Network(
        (
            Dense(np.array([[1.0, -1.0], [0.5, 1.0]]), np.array([0.1, -0.2])),
            ReLU(),
            Dense(np.array([[1.0, -1.0], [-1.0, 2.0]]), np.zeros(2)),
        ),
        input_shape=(2,),
    )
    return net, Box(-np.ones(2), np.ones(2)), UnsafeCase


def test_route_b_qubo_structure() -> None:
    from nncert.formulations.milp import encode_milp
    from nncert.verify.bounds import crown_bounds

    net, box, UnsafeCase = _tiny_case()
    case = UnsafeCase(box, np.array([[1.0, -1.0]]), np.zeros(1))
    p = encode_milp(net, case, crown_bounds(net, box))
    q = milp_to_qubo(p, bits=3, input_bits=4, slack_bits=3)
    assert sum(q.spins.values()) == q.num_variables
    assert q.spins["activation"] == p.n_integer
    assert math.isinf(q.bound_correction)
    rng = np.random.default_rng(0)
    for _ in range(20):
        d = q.decode(rng.integers(0, 2, q.num_variables))
        assert box.contains(d["x"], atol=1e-12)
    # a zero-penalty assignment exists only on the grid: the all-feasible energy >= objective
    X = rng.integers(0, 2, size=(200, q.num_variables))
    objective = np.array([p.objective_value(q.decode(x)["v"]) for x in X])
    assert np.all(q.energies(X) >= objective - 1e-9)


def test_route_b_never_verifies_and_falsifies() -> None:
    from nncert.solvers.qubo_method import qubo_case
    from nncert.verify.options import VerifyOptions
    from nncert.verify.pipeline import CaseContext, verify
    from nncert.verify.spec import Property

    net, box, UnsafeCase = _tiny_case()
    safe = UnsafeCase(box, np.array([[1.0, -1.0]]), np.array([-100.0]))  # never violated
    opts = VerifyOptions(solver="sa", spin_budget=4000, num_reads=20)
    ctx = CaseContext(opts, None, np.random.default_rng(0), None, 0, None)
    out = qubo_case(net, safe, ctx)
    assert out.status != "verified" and not out.exact
    assert out.stats["spins"] == sum(out.stats["spin_breakdown"].values())
    # a case violated everywhere: the decoded grid point is a confirmed witness
    unsafe = UnsafeCase(box, np.array([[1.0, -1.0]]), np.array([100.0]))
    res = verify(
        net,
        Property((unsafe,)),
        method="qubo",
        solver="highs",
        attack=False,
        spin_budget=4000,
        num_reads=10,
        time_limit=30,
    )
    assert res.verdict.value == "falsified" and res.method == "qubo"
    res_small = verify(net, Property((unsafe,)), method="qubo", attack=False, spin_budget=8)
    assert res_small.verdict.value == "unknown"
