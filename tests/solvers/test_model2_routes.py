"""Model 2 on the QUBO route (Route B) and as the Benders master (Route A), issue 19.

* routing: no QUBO above the spin budget reaches a sampler (a real simulated annealer behind
  a composite that records every BQM size), the route is reported;
* the QUBO route only falsifies, refines with growing spin counts, and finds the vulnerable
  samples of the bundled sigmoid/tanh paper networks;
* Benders with an exact master proves what the Model 2 MILP proves (random small sigmoid
  networks), and never verifies where sampling finds a counterexample;
* any dimod sampler by import path (``dimod:PACKAGE.Class``).
"""

from __future__ import annotations

import importlib.util
import itertools
import sys
import types
from typing import Any

import dimod
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nets import seeded_network

from nncert.formulations.model2 import encode_model2, network_partition, reduce_problem
from nncert.solvers import dimod_solver as ds
from nncert.solvers.benders import BendersOptions
from nncert.solvers.benders_method import benders_model2, make_master
from nncert.solvers.highs_solver import HighsSolver
from nncert.solvers.qubo_method import model2_qubo_search
from nncert.solvers.registry import get_solver
from nncert.verify.bounds import crown_bounds, spec_bounds
from nncert.verify.errors import InvalidOptionsError, SolverUnavailableError
from nncert.verify.example_catalog import example_info
from nncert.verify.examples import load_example
from nncert.verify.network import Network, Sigmoid, Tanh
from nncert.verify.options import VerifyOptions
from nncert.verify.pipeline import verify
from nncert.verify.spec import Box, UnsafeCase, robustness_property


def _net(seed: int, sizes: list[int], act: object = Sigmoid(), scale: float = 2.0) -> Network:
    return seeded_network(seed, sizes, [act] * (len(sizes) - 2), scale)


def _case(n_in: int, n_out: int, radius: float = 1.0, shift: float = 0.0) -> UnsafeCase:
    A = np.zeros((1, n_out))
    A[0, 0], A[0, 1] = 1.0, -1.0
    return UnsafeCase(Box(-radius * np.ones(n_in), radius * np.ones(n_in)), A, np.array([shift]))


def _sampled_min(net: Network, case: UnsafeCase, n: int = 4000) -> float:
    xs = case.input_box.sample(n, np.random.default_rng(0))
    return float(case.violation(net.forward(xs)).min())


def _recorder(num_reads: int = 20) -> tuple[ds.DimodSolver, ds.SizeRecordingComposite]:
    comp = ds.SizeRecordingComposite()
    return ds.DimodSolver(comp, exact=False, name="rec", num_reads=num_reads, seed=0), comp


# --------------------------------------------------------------------------------------------
# spin-budget routing
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("budget", "routes"),
    [(1000, {"monolithic"}), (24, {"coarse"}), (4, {"layerwise"}), (3, {"none"})],
)
def test_no_qubo_above_the_budget_reaches_the_sampler(budget: int, routes: set[str]) -> None:
    net = _net(0, [2, 6, 5, 2])
    case = _case(2, 2, shift=-50.0)  # never falsified: every step samples
    solver, comp = _recorder()
    out = model2_qubo_search(net, case, solver, segments=5, spin_budget=budget, pgd=False)
    assert out.status == "unknown"
    assert out.stats["route"] in routes
    assert all(s <= budget for s in comp.sizes)
    assert out.stats["sampled_spins"] == max(comp.sizes, default=0)
    assert out.stats["qubos_sampled"] == len(comp.sizes)
    if out.stats["route"] == "none":
        assert comp.sizes == []  # nothing sent at all
    else:
        assert comp.sizes
    if out.stats["route"] == "monolithic":
        assert out.stats["spins"] == max(comp.sizes)
    else:  # the Model 2 QUBO at K everywhere would exceed the budget
        assert out.stats["spins_history"][0] > budget or out.stats["route"] == "coarse"


def test_budget_routing_through_verify_and_dimod_path() -> None:
    net = _net(1, [2, 8, 2])
    prop = robustness_property(np.zeros(2), 0.5, 0, 2, domain=None)
    ds.SizeRecordingComposite.log.clear()
    res = verify(
        net,
        prop,
        method="qubo",
        presolve=False,
        solver="dimod:nncert.solvers.dimod_solver.SizeRecordingComposite",
        segments=5,
        spin_budget=12,
        num_reads=10,
        time_limit=60,
    )
    assert res.verdict.value != "verified"
    sizes = list(ds.SizeRecordingComposite.log)
    assert sizes and max(sizes) <= 12
    stats = res.stats["qubo"][0]
    assert stats["formulation"] == "model2" and stats["route"] in ("coarse", "layerwise")


# --------------------------------------------------------------------------------------------
# the QUBO route: falsify only, refinement
# --------------------------------------------------------------------------------------------


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 10_000), st.floats(-3.0, 3.0))
def test_qubo_route_never_verifies_and_only_replayed_witnesses(seed: int, shift: float) -> None:
    net = _net(seed, [2, 4, 2], Tanh())
    case = _case(2, 2, shift=shift)
    solver = ds.simulated_annealing(num_reads=20, seed=0)
    out = model2_qubo_search(net, case, solver, segments=4, spin_budget=40, max_refinements=1)
    assert out.status in ("falsified", "unknown")
    if out.status == "falsified":
        assert out.x is not None
        assert case.input_box.contains(out.x)
        assert float(case.violation(net.forward(out.x[None]))[0]) <= 0.0


def test_refinement_re_encodes_and_reports_spins_per_step() -> None:
    net = _net(3, [2, 5, 2])
    case = _case(2, 2, shift=-50.0)
    solver = ds.simulated_annealing(num_reads=20, seed=0)
    out = model2_qubo_search(
        net, case, solver, segments=3, spin_budget=1000, max_refinements=2, pgd=False
    )
    hist = out.stats["spins_history"]
    assert out.stats["refinements"] == len(hist) - 1 >= 1
    assert all(b > a for a, b in itertools.pairwise(hist))  # nested splits add spins
    assert out.stats["routes"] == ["monolithic"] * len(hist)


PAPER_NETS = ("iris_sigmoid", "iris_tanh", "moons_sigmoid", "moons_tanh")


def _vulnerable(name: str) -> list[tuple[dict[str, object], float]]:
    pts = example_info(name)["properties"]["points"]
    return [(p, e) for p in pts for e in (0.01, 0.02, 0.05, 0.1) if e >= p["attack_radius"]]


@pytest.mark.slow
@pytest.mark.parametrize("name", PAPER_NETS)
def test_paper_networks_vulnerable_samples_found_on_the_qubo_route(name: str) -> None:
    """Acceptance: K = 5, simulated annealing with default reads, default spin budget, no
    presolve: every known-vulnerable paper sample is falsified on the QUBO route."""
    net, _ = load_example(name)
    info = example_info(name)
    cases = _vulnerable(name)
    assert cases
    for p, eps in cases:
        prop = robustness_property(p["x0"], eps, int(p["label"]), int(info["n_classes"]))
        res = verify(
            net, prop, method="qubo", presolve=False, segments=5, solver="sa", time_limit=120
        )
        assert res.verdict.value == "falsified", (name, p["id"], eps)
        assert all(s["spins"] <= VerifyOptions().spin_budget for s in res.stats["qubo"])


# --------------------------------------------------------------------------------------------
# Benders on Model 2 (Route A)
# --------------------------------------------------------------------------------------------


def _model2_optimum(net: Network, case: UnsafeCase, K: int) -> tuple[float, object]:
    full = net.normalized()
    red = reduce_problem(full, case, crown_bounds(full, case.input_box))
    part = network_partition(red.network, red.bounds, K)
    m2 = encode_model2(red.network, red.case, red.bounds, part)
    res = HighsSolver(mip_rel_gap=0.0).solve(m2.problem)
    assert res.status.value == "optimal"
    return float(res.objective), part


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 10_000), st.floats(-2.0, 2.0), st.sampled_from(["highs", "exact"]))
def test_benders_exact_master_proves_what_the_milp_proves(
    seed: int, shift: float, master_name: str
) -> None:
    net = _net(seed, [2, 3, 2], Sigmoid(), scale=1.5)
    case = _case(2, 2, radius=0.5, shift=shift)
    tol = 1e-6
    m_K, part = _model2_optimum(net, case, 3)
    out = benders_model2(
        net,
        case,
        make_master(master_name),
        partition=part,  # type: ignore[arg-type]
        max_refinements=0,
        tolerance=tol,
        options=BendersOptions(max_iterations=300),
    )
    real = _sampled_min(net, case)
    eta_lo = float(np.max(spec_bounds(net, case.input_box, case.A, -case.b)[0]))
    if real <= 0.0:  # never verified where sampling finds a counterexample
        assert out.status != "verified"
    if out.lower_bound is not None:  # sound, and no better than the MILP (or CROWN's seed)
        assert out.lower_bound <= real + 1e-6
        assert out.lower_bound <= max(m_K, eta_lo) + 1e-5 * (1 + abs(m_K))
    if m_K > tol + 1e-3 * (1 + abs(m_K)):  # what the MILP proves, Benders proves
        assert out.status == "verified", (m_K, out.stats)
    if max(m_K, eta_lo) < tol - 1e-6:
        assert out.status != "verified"


def test_benders_heuristic_master_never_verifies_without_exact_check() -> None:
    net = _net(11, [2, 4, 2], Sigmoid())
    case = _case(2, 2, radius=0.3, shift=-3.0)
    solver, comp = _recorder()
    out = benders_model2(
        net,
        case,
        solver,
        segments=4,
        spin_budget=40,
        options=BendersOptions(
            max_iterations=15, cut_window=4, max_master_variables=40, final_exact_master=False
        ),
    )
    assert out.status != "verified"
    assert out.lower_bound is None
    assert all(s <= 40 for s in comp.sizes)


def test_verify_benders_on_sigmoid_uses_model2() -> None:
    net = _net(5, [2, 4, 2], Sigmoid(), scale=1.0)
    prop = robustness_property(np.zeros(2), 0.01, int(np.argmax(net.forward(np.zeros((1, 2))))),
                               2, domain=None)  # fmt: skip
    res = verify(net, prop, method="benders", presolve=False, segments=5, solver="highs")
    assert res.verdict.value == "verified"
    st_ = res.stats["benders"][0]
    assert st_["formulation"] == "model2" and st_["master_exact"]


# --------------------------------------------------------------------------------------------
# dimod:PACKAGE.Class
# --------------------------------------------------------------------------------------------


def test_named_dimod_sampler() -> None:
    s = get_solver("dimod:dwave.samplers.SteepestDescentSampler", num_reads=3, seed=1)
    assert s.problem_kind == "qubo" and not s.exact
    assert s.sample_kwargs["num_reads"] == 3
    VerifyOptions(method="qubo", solver="dimod:dwave.samplers.TabuSampler")
    with pytest.raises(SolverUnavailableError):
        get_solver("dimod:no_such_package_xyz.Sampler")
    # a path naming any other callable is refused before it is called (os.getcwd: harmless if
    # it were; os.system or subprocess.Popen would not be)
    with pytest.raises(InvalidOptionsError, match="not a dimod sampler class"):
        get_solver("dimod:os.getcwd")


class _StructuredAnnealer(dimod.StructureComposite):
    """A real structured sampler (simulated annealing restricted to a 6-node graph), standing
    in for a QPU's working graph."""

    def __init__(self) -> None:
        from dwave.samplers import SimulatedAnnealingSampler

        nodes = list(range(6))
        edges = [(i, j) for i in nodes for j in nodes if i < j]
        super().__init__(SimulatedAnnealingSampler(), nodes, edges)


def test_structured_sampler_is_embedded_or_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    mod = types.ModuleType("fake_qpu_for_nncert")
    mod.Annealer = _StructuredAnnealer  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "fake_qpu_for_nncert", mod)
    if importlib.util.find_spec("dwave.system") is None:
        # without dwave-system a structured sampler cannot be embedded: a clear error
        with pytest.raises(SolverUnavailableError, match="dwave-system"):
            get_solver("dimod:fake_qpu_for_nncert.Annealer")
        # the embedding composite is dwave-system's; stand in for it with a composite that
        # maps the QUBO's variables onto the graph's nodes one to one (no chains needed)
        system = types.ModuleType("dwave.system")

        class Embed(dimod.ComposedSampler):
            def __init__(self, child: Any) -> None:
                self._children = [child]

            children = property(lambda self: self._children)
            parameters = property(lambda self: dict(self._children[0].parameters))
            properties = property(lambda self: {})

            def sample(self, bqm: Any, **kw: Any) -> Any:
                return self._children[0].sample(bqm, **kw)

        system.EmbeddingComposite = Embed  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, "dwave.system", system)
    s = get_solver("dimod:fake_qpu_for_nncert.Annealer", num_reads=5, seed=0)
    assert not isinstance(s.sampler, dimod.Structured)  # wrapped by the embedding composite
    from nncert.formulations.qubo import QuboProblem

    q = QuboProblem(np.array([1.0, -2.0, 0.5]), [0, 1], [1, 2], [0.5, -1.0], 0.0, {"x": 3})
    res = s.solve(q)
    assert res.x is not None and res.objective == pytest.approx(q.energy(res.x))
