"""Pipeline plug-in ``method="benders"``: Benders decomposition per unsafe case.

``verify(net, prop, method="benders", solver=NAME)`` runs ``sample, crown, attack, benders``;
this module is the last stage (registered in :mod:`nncert.verify.registry`). The
master is chosen by ``solver``:

* ``"highs"`` (default) or any other registered exact MILP solver name: a MILP master (exact);
* ``"exact"`` / ``"exact-qubo"``: the QUBO master over *all* cuts solved exactly by
  :class:`~nncert.solvers.dimod_solver.ExactQuboSolver` (structured branch and bound on the
  master's block structure; ``dimod.ExactSolver`` or a linearised MILP for other QUBOs), giving
  the sound resolution-corrected bound ``E_min - bound_correction``;
* ``"sa"``, ``"tabu"``, ``"steepest"``: an annealing/heuristic QUBO master (``num_reads``,
  ``seed`` from the options; the QUBO is kept within ``spin_budget`` by shrinking the cut
  window). Such a run can only falsify, unless the final master is then solved exactly.

The case is closed (``exact=True``) only when the Benders lower bound is sound and above
``milp_tolerance``; a subproblem point whose forward-pass value is ``<= 0`` is returned as a
candidate witness (the pipeline replays it).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from nncert.formulations.benders import split_milp
from nncert.formulations.milp import MilpProblem, encode_milp
from nncert.formulations.qubo import QuboMasterOptions
from nncert.solvers import dimod_solver as ds
from nncert.solvers.benders import BendersOptions, BendersSolver
from nncert.solvers.highs_solver import HighsSolver
from nncert.solvers.registry import get_solver
from nncert.verify.bounds import LayerBounds, crown_bounds, spec_bounds
from nncert.verify.network import Dense, FloatArray, Network, apply_activation
from nncert.verify.result import CaseContext, CaseOutcome
from nncert.verify.spec import UnsafeCase

#: solver names that select a QUBO master
QUBO_MASTERS = ("sa", "tabu", "steepest", "exact", "exact-qubo")


def make_master(name: str, *, num_reads: int = 100, seed: int = 0) -> Any:
    """The master solver for a ``--solver`` name (see the module docstring)."""

    if name == "sa":
        return ds.simulated_annealing(num_reads=num_reads, seed=seed, num_sweeps=300)
    if name == "tabu":
        return ds.tabu(num_reads=min(num_reads, 10), seed=seed)
    if name == "steepest":
        return ds.steepest_descent(num_reads=num_reads, seed=seed)
    if name in ("exact", "exact-qubo"):
        return ds.ExactQuboSolver()
    if name == "highs":
        return HighsSolver(mip_rel_gap=0.0)

    return get_solver(name)


def activation_pattern(
    network: Network, bounds: LayerBounds, problem: MilpProblem, x: FloatArray
) -> np.ndarray:
    """The binaries ``delta`` (in column order) of the forward pass at ``x``.

    Each binary is ``[z > theta]`` with the kink ``theta`` of its piece, as the problem records
    it (:attr:`~nncert.formulations.milp.VariableIndex.binary_threshold`: ReLU/LeakyReLU 0,
    HardTanh ``min_val`` then ``max_val``, any registered piecewise-linear activation its
    pieces' kinks).
    """
    dense, acts = network.affine_and_activations()
    a = np.asarray(x, dtype=np.float64).reshape(-1)
    parts = []
    for k, act in enumerate(acts):
        layer: Dense = dense[k]
        z = layer.weight @ a + layer.bias
        neuron = problem.index.binary_neuron[k]
        theta = problem.index.binary_threshold[k]
        parts.append((z[neuron] > theta).astype(np.int8))
        a = apply_activation(act, z)
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int8)


def run_benders_case(
    network: Network,
    case: UnsafeCase,
    ctx: CaseContext,
    *,
    master: Any | None = None,
    options: BendersOptions | None = None,
) -> tuple[CaseOutcome, Any]:
    """:func:`benders_case` that also returns the :class:`~nncert.solvers.benders.BendersRun`
    (``None`` when no loop ran); ``master``/``options`` override the defaults (benchmarks)."""
    opts = ctx.options
    name = "highs" if opts.solver in ("", None) else str(opts.solver)
    if not network.is_piecewise_linear:
        return CaseOutcome("unknown", stats={"reason": "non-piecewise-linear activations"}), None
    box = case.input_box
    if case.n_rows == 0:
        out = CaseOutcome("falsified", x=box.center.copy(), stats={"iterations": 0, "spins": 0})
        return out, None
    bounds = crown_bounds(network, box)
    problem = encode_milp(network, case, bounds)
    lo, hi = spec_bounds(network, box, case.A, -case.b)
    eta_lo, eta_hi = float(np.max(lo)), float(np.max(hi))

    def evaluate(x: FloatArray) -> float:
        xc = np.clip(np.asarray(x, dtype=np.float64).reshape(-1), box.lower, box.upper)
        return float(case.violation(network.forward(xc).reshape(1, -1))[0])

    start = box.center if ctx.best_x is None else np.asarray(ctx.best_x, dtype=np.float64)
    eta_hi = min(eta_hi, evaluate(start), evaluate(box.center))
    if master is None:
        master = make_master(name, num_reads=opts.num_reads, seed=opts.seed)
    is_qubo = getattr(master, "problem_kind", "milp") == "qubo"
    heuristic = is_qubo and not getattr(master, "exact", False)
    # an exact QUBO master keeps every cut (a windowed master need not converge); a heuristic
    # one works on a window within the spin budget and is checked exactly now and then
    bopts = options or BendersOptions(
        max_iterations=(60 if heuristic else 200) if is_qubo else 500,
        cut_window=8 if heuristic else None,
        qubo=QuboMasterOptions(eta_bits=6 if heuristic else 8),
        max_master_variables=opts.spin_budget if heuristic else None,
        exact_check_every=10 if heuristic else None,
    )
    solver = BendersSolver(master, make_master("highs"), bopts)
    split = split_milp(problem, eta_bounds=(eta_lo, eta_hi))
    run = solver.run(
        split,
        time_limit=ctx.remaining(),
        objective_target=0.0,
        bound_target=opts.milp_tolerance,
        evaluate=evaluate,
        initial_delta=activation_pattern(network, bounds, problem, start),
    )
    stats: dict[str, Any] = {
        "spins": run.spins,
        "iterations": len(run.iterations),
        "master_solver": run.master,
        "master_exact": run.master_exact,
        "cuts": run.n_cuts,
        "binaries": split.n_delta,
        "benders_status": run.status,
        "lower_bound_source": run.lower_bound_source,
        "upper_bound": run.upper_bound if math.isfinite(run.upper_bound) else None,
    }
    if run.message:
        stats["message"] = run.message
    lb = run.lower_bound if run.master_exact else None
    sname = f"benders[{run.master}]"
    if lb is not None and lb > opts.milp_tolerance:
        out = CaseOutcome("verified", exact=True, lower_bound=lb, solver=sname, stats=stats)
        return out, run
    x = run.best_input if run.upper_bound <= 0.0 else None
    if x is not None:
        return CaseOutcome("falsified", lower_bound=lb, x=x, solver=sname, stats=stats), run
    status = "timeout" if run.status == "time_limit" else "unknown"
    out = CaseOutcome(status, exact=lb is not None, lower_bound=lb, solver=sname, stats=stats)
    return out, run


def benders_case(network: Network, case: UnsafeCase, ctx: CaseContext) -> CaseOutcome:
    """Benders decomposition on one case (see the module docstring).

    Stats: ``spins`` (largest master: QUBO variables, or binaries of a MILP master),
    ``iterations``, ``master_solver``, ``master_exact``, ``cuts``, ``binaries``,
    ``benders_status``, ``lower_bound_source``, ``upper_bound``.
    """
    return run_benders_case(network, case, ctx)[0]


__all__ = ["QUBO_MASTERS", "activation_pattern", "benders_case", "make_master", "run_benders_case"]
