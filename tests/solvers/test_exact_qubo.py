"""Structured exact minimisation of master QUBOs (nncert.solvers.exact_qubo).

Oracles: brute force over all 2^N states (FORMULATIONS.md oracle 31, exact QUBO master), the
penalty-rule band around the exact master optimum (oracle 4), and agreement with the MILP
verdict through Benders on the bundled hardtanh networks (the cases the linearised path could
not close).
"""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nncert.formulations.benders import enumerate_master
from nncert.formulations.qubo import (
    MIN_RELATIVE_STEP,
    QuboMasterOptions,
    benders_master_qubo,
    brute_force,
)
from nncert.solvers.dimod_solver import ExactQuboSolver
from nncert.solvers.exact_qubo import MasterQuboForm, minimise_master_qubo


def _cuts(rng: np.random.Generator, K: int, n: int, sparse: bool) -> tuple[np.ndarray, np.ndarray]:
    a = rng.normal(size=K)
    B = rng.normal(size=(K, n))
    if sparse:
        B = B * (rng.random((K, n)) < 0.6)
    return a, B


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**31 - 1),
    n=st.integers(0, 7),
    K=st.integers(0, 3),
    mode=st.sampled_from(["slack", "unbalanced"]),
    encoding=st.sampled_from(["offset", "twos_complement"]),
    scale=st.sampled_from([0.5, 4.0, 25.0]),
    bits=st.integers(1, 4),
)
def test_structured_minimum_equals_brute_force(
    seed: int, n: int, K: int, mode: str, encoding: str, scale: float, bits: int
) -> None:
    rng = np.random.default_rng(seed)
    a, B = _cuts(rng, K, n, sparse=bool(seed % 2))
    lo = float(rng.normal() - 1.0)
    hi = lo + float(rng.uniform(0.1, 5.0))
    opts = QuboMasterOptions(
        eta_bits=bits,
        encoding=encoding,  # type: ignore[arg-type]
        penalization=mode,  # type: ignore[arg-type]
        penalty_scale=scale,
    )
    q = benders_master_qubo(a, B, (lo, hi), opts)
    if q.num_variables > 18:
        return
    _, e_ref = brute_force(q)
    got = minimise_master_qubo(q)
    assert got is not None
    assert q.energy(got.x) == pytest.approx(e_ref, rel=1e-9, abs=1e-9)
    assert got.energy == pytest.approx(e_ref, rel=1e-9, abs=1e-9)


@pytest.mark.parametrize("seed", range(6))
def test_pruned_search_on_many_binaries_matches_brute_force(seed: int) -> None:
    """Dense cuts over 12-16 binaries with 2 eta bits: the prefix pruning is exercised."""
    rng = np.random.default_rng(100 + seed)
    n = 12 + seed % 5
    a, B = _cuts(rng, 1, n, sparse=False)
    lo = float(a.min() - np.abs(B).sum())
    hi = float(a.max() + np.abs(B).sum())
    q = benders_master_qubo(a, B, (lo, hi), QuboMasterOptions(eta_bits=2, penalty_scale=1.0))
    assert q.num_variables <= 22
    _, e_ref = brute_force(q)
    got = minimise_master_qubo(q)
    assert got is not None and got.energy == pytest.approx(e_ref, rel=1e-9, abs=1e-9)
    assert got.leaves < 2**n  # pruning did work


@pytest.mark.parametrize("seed", range(4))
def test_large_master_within_the_penalty_band(seed: int) -> None:
    """20 binaries, 6 cuts, 8 eta bits (> 60 spins): the exact ground energy lies in the band
    ``[m - 1/(4P), m + bound_correction]`` around the enumerated master optimum ``m``, and the
    solver's result carries a sound bound."""
    rng = np.random.default_rng(seed)
    n, K = 20, 6
    a, B = _cuts(rng, K, n, sparse=True)
    m_lo = float(a.min() - np.abs(B).sum())
    lo, hi = m_lo, float(a.max() + np.abs(B).sum())
    q = benders_master_qubo(a, B, (lo, hi), QuboMasterOptions(eta_bits=8))
    assert q.num_variables > 60
    m, _ = enumerate_master(a, B, n, lo)
    P = q.meta["penalty"]
    gap = q.meta["energy_gap"]
    assert gap > 0
    exact_res = ExactQuboSolver(gap=0.0).solve(q)
    assert exact_res.bound is not None and exact_res.objective is not None
    assert m - 1.0 / (4.0 * P) - 1e-9 <= exact_res.bound <= exact_res.objective + 1e-9
    for res in (exact_res, ExactQuboSolver().solve(q)):  # exact, and within the default gap
        assert res.status.value == "optimal" and res.info["status_text"] == "structured-exact"
        assert res.objective is not None and res.bound is not None and res.x is not None
        assert res.objective - gap - 1e-9 <= res.bound <= exact_res.objective + 1e-9
        assert res.objective <= exact_res.objective + gap + 1e-9
        assert res.objective <= m + q.bound_correction
        assert min(res.objective, res.bound) - q.bound_correction <= m  # a sound Benders bound
        assert q.energy(res.x) == pytest.approx(res.objective)
    # the exact ground state's delta is eps_q-optimal for the master (formulations.qubo)
    assert exact_res.x is not None
    assert q.decode(exact_res.x)["eta_hat"] <= m + q.meta["eps_optimal"] + 1e-9


def test_no_structure_or_limits_fall_back_to_generic_exact_methods() -> None:
    rng = np.random.default_rng(3)
    a, B = _cuts(rng, 2, 6, sparse=False)
    q = benders_master_qubo(a, B, (-8.0, 8.0), QuboMasterOptions(eta_bits=3))
    assert MasterQuboForm.from_problem(q) is not None
    assert minimise_master_qubo(q, max_frontier=1) is None  # frontier limit: not decided here
    _, e_ref = brute_force(q)
    generic = ExactQuboSolver(structured=False).solve(q)
    assert generic.info["status_text"] != "structured-exact"
    assert generic.objective == pytest.approx(e_ref, abs=1e-7)


def test_collapsed_eta_range_keeps_the_qubo_representable() -> None:
    """Late in a run ``eta_hi ~ eta_lo``: the step floor keeps ``P`` finite and sane, and the
    exact solver still returns a consistent optimum."""
    a = np.array([10.0, 9.5])
    B = np.array([[0.5, -0.25], [0.0, 0.3]])
    q = benders_master_qubo(a, B, (10.0, 10.0 + 1e-15), QuboMasterOptions(eta_bits=8))
    w = q.meta["encoding"].step
    assert w >= MIN_RELATIVE_STEP * 21.0 * (1 - 1e-12)
    assert math.isfinite(q.meta["penalty"]) and q.meta["penalty"] <= 4.0 / w * (1 + 1e-12)
    res = ExactQuboSolver().solve(q)
    assert res.status.value == "optimal" and res.bound is not None and res.objective is not None
    m, _ = enumerate_master(a, B, 2, 10.0)
    assert min(res.objective, res.bound) - q.bound_correction <= m


def test_time_limit_is_honoured() -> None:
    rng = np.random.default_rng(7)
    a, B = _cuts(rng, 3, 40, sparse=False)
    q = benders_master_qubo(a, B, (-30.0, 30.0), QuboMasterOptions(eta_bits=6))
    t0 = time.perf_counter()
    got = minimise_master_qubo(q, time_limit=0.0)
    assert got is None and time.perf_counter() - t0 < 30.0


@pytest.mark.parametrize(
    ("name", "prop_name"),
    [
        ("moons_hardtanh", "moons_hardtanh:p4:eps=0.1"),  # 15 binaries, ~25 cuts
        ("iris_hardtanh", "iris_hardtanh:p0:eps=0.01"),  # collapsed eta range
        ("iris_hardtanh", "iris_hardtanh:p2:eps=0.01"),
    ],
)
def test_exact_qubo_master_alone_reaches_the_milp_verdict(name: str, prop_name: str) -> None:
    """Benders with the exact QUBO master and no final MILP master closes every case of
    properties the MILP verifies, with the bound coming from the QUBO master itself."""
    from nncert.solvers.benders import BendersOptions
    from nncert.solvers.benders_method import make_master, run_benders_case
    from nncert.verify.examples import load_example
    from nncert.verify.options import VerifyOptions
    from nncert.verify.pipeline import CaseContext, verify

    net, props = load_example(name)
    prop = next(p for p in props if p.name == prop_name)
    assert verify(net, prop, method="milp").verdict.value == "verified"
    opts = VerifyOptions(solver="exact", time_limit=120.0)
    for i, case in enumerate(prop.cases):
        ctx = CaseContext(opts, None, np.random.default_rng(0), None, i, None)
        bopts = BendersOptions(
            max_iterations=200,
            qubo=QuboMasterOptions(eta_bits=8),
            final_exact_master=False,
        )
        out, run = run_benders_case(net, case, ctx, master=make_master("exact"), options=bopts)
        assert out.status == "verified" and out.exact, (i, out.stats)
        assert run is None or run.lower_bound_source == "master"
