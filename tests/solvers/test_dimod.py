"""The dimod adapter: a small QUBO conformance set for every factory."""

from __future__ import annotations

import itertools

import dimod
import numpy as np
import pytest

from nncert.formulations.qubo import QuboProblem, brute_force
from nncert.solvers.base import QuboSolver, SolveStatus
from nncert.solvers.dimod_solver import (
    DimodSolver,
    exact,
    simulated_annealing,
    steepest_descent,
    tabu,
)
from nncert.verify.errors import InvalidOptionsError


def _qubo(seed: int, n: int, density: float = 0.5) -> QuboProblem:
    rng = np.random.default_rng(seed)
    row, col = np.triu_indices(n, 1)
    keep = rng.random(row.size) < density
    return QuboProblem(
        rng.normal(size=n),
        row[keep],
        col[keep],
        rng.normal(size=int(keep.sum())),
        0.25,
        {"activation": n, "objective": 0, "slack": 0},
    )


def _check_result(q: QuboProblem, res, exact_flag: bool) -> None:  # type: ignore[no-untyped-def]
    assert res.x is not None and res.x.shape == (q.num_variables,)
    assert set(np.unique(res.x)) <= {0.0, 1.0}
    assert res.objective == pytest.approx(q.energy(res.x), abs=1e-9)
    if exact_flag:
        assert res.status is SolveStatus.OPTIMAL and res.bound == res.objective
    else:
        assert res.status is SolveStatus.FEASIBLE and res.bound is None
    assert res.info["num_reads"] >= 1 and res.info["time"] >= 0.0
    energies = res.info["energies"]
    assert np.all(np.diff(energies) >= -1e-12) and energies[0] == pytest.approx(res.objective)


@pytest.mark.parametrize("seed", range(3))
def test_exact_known_optimum(seed: int) -> None:
    q = _qubo(seed, 8)
    _, e = brute_force(q)
    res = exact().solve(q)
    _check_result(q, res, True)
    assert res.objective == pytest.approx(e, abs=1e-12)


def test_simulated_annealing_finds_optimum_of_10_variables() -> None:
    q = _qubo(7, 10)
    _, e = brute_force(q)
    s = simulated_annealing(num_reads=50, seed=5)
    res = s.solve(q)
    _check_result(q, res, False)
    assert res.objective == pytest.approx(e, abs=1e-9)
    again = simulated_annealing(num_reads=50, seed=5).solve(q)
    np.testing.assert_array_equal(res.x, again.x)  # seeded: reproducible


@pytest.mark.parametrize("factory", [tabu, steepest_descent])
def test_heuristics_conform(factory) -> None:  # type: ignore[no-untyped-def]
    q = _qubo(2, 10)
    _, e = brute_force(q)
    res = factory(seed=1).solve(q, time_limit=2.0)
    _check_result(q, res, False)
    assert res.objective >= e - 1e-9


def test_protocol_names_and_bqm_input() -> None:
    for s in (exact(), simulated_annealing(num_reads=5), tabu(num_reads=2), steepest_descent()):
        assert isinstance(s, QuboSolver)
    assert [f().name for f in (exact, simulated_annealing, tabu, steepest_descent)] == [
        "exact-qubo",
        "sa",
        "tabu",
        "steepest",
    ]
    bqm = dimod.BinaryQuadraticModel({0: 1.0, 1: -1.0}, {(0, 1): -2.0}, 0.5, dimod.BINARY)
    res = exact().solve(bqm)
    assert res.objective == pytest.approx(-1.5)
    np.testing.assert_array_equal(res.x, [1.0, 1.0])


def test_composite_sampler_and_time_limit() -> None:
    q = _qubo(4, 6)
    _, e = brute_force(q)
    tracked = DimodSolver(dimod.TrackingComposite(dimod.ExactSolver()), exact=True, name="tracked")
    res = tracked.solve(q)
    assert res.objective == pytest.approx(e)
    assert len(tracked.sampler.inputs) == 1
    res = simulated_annealing(num_reads=10_000, seed=0).solve(q, time_limit=0.05)
    assert res.info["num_reads"] < 10_000  # interrupted between reads
    with pytest.raises(InvalidOptionsError):
        simulated_annealing().solve(q, time_limit=0.0)


def test_exact_refuses_large_problems_and_handles_empty() -> None:
    with pytest.raises(InvalidOptionsError, match="at most 20"):
        exact().solve(_qubo(0, 21, density=0.1))
    empty = QuboProblem(np.zeros(0), [], [], [], 1.5, {})
    res = simulated_annealing().solve(empty)
    assert res.objective == 1.5 and res.x is not None and res.x.size == 0
    with pytest.raises(InvalidOptionsError):
        DimodSolver(object(), exact=False, name="bad")


def test_exact_ground_state_enumerates_everything() -> None:
    q = _qubo(9, 5)
    X = np.array(list(itertools.product([0, 1], repeat=5)))
    assert exact().solve(q).objective == pytest.approx(q.energies(X).min())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_linearised_exact_qubo_matches_enumeration(seed: int) -> None:
    """The MILP linearisation used beyond 20 variables finds the exhaustive optimum, and its
    bound never exceeds it."""
    from nncert.solvers.dimod_solver import ExactQuboSolver

    q = _qubo(seed, 14, density=0.4)
    ref = exact().solve(q)
    lin = ExactQuboSolver(enumerate_up_to=0).solve(q)
    assert lin.objective == pytest.approx(ref.objective, abs=1e-7)
    assert lin.bound is not None and lin.bound <= ref.objective + 1e-7
    assert lin.x is not None and q.energies(lin.x.reshape(1, -1))[0] == pytest.approx(lin.objective)
    # above the enumeration cap it still answers exactly
    big = _qubo(seed, 26, density=0.15)
    res = ExactQuboSolver().solve(big)
    assert res.status.value == "optimal" and res.bound is not None
    assert res.bound <= res.objective + 1e-7
