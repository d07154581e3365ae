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

Sigmoid/tanh networks run Model 2 with its segment binaries as the master
(:func:`benders_model2_case`, FORMULATIONS.md 7.10). The case is closed (``exact=True``) only
when the Benders lower bound is sound and above
``milp_tolerance``; a subproblem point whose forward-pass value is ``<= 0`` is returned as a
candidate witness (the pipeline replays it).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nncert.formulations.benders import split_milp
from nncert.formulations.milp import MilpProblem, encode_milp
from nncert.formulations.model2 import (
    Model2Partition,
    encode_model2,
    model2_point,
    network_partition,
    reduce_problem,
    refine_at,
)
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
    if name.startswith("dimod:"):
        return get_solver(name, num_reads=num_reads, seed=seed)
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
        z = np.asarray(layer.weight @ a) + layer.bias
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
        return benders_model2_case(network, case, ctx, master=master), None
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


# --------------------------------------------------------------------------------------------
# Model 2 (sigmoid, tanh): Benders over the segment-selection binaries
# --------------------------------------------------------------------------------------------

#: refinements of the Model 2 partition after an exact Benders run that proves nothing
MODEL2_REFINEMENTS = 4
#: eta bits of a heuristic QUBO master (FORMULATIONS.md 9.7) and the spins kept for its slack
HEURISTIC_ETA_BITS = 6
HEURISTIC_SLACK_RESERVE = 16


@dataclass
class Model2BendersResult:
    """Outcome of :func:`benders_model2`.

    Attributes:
        status: ``"verified"`` (exact master over all cuts, bound above the tolerance),
            ``"falsified"`` (a replayed input with real value ``<= 0``), ``"unknown"`` or
            ``"timeout"``.
        lower_bound: the best sound lower bound of the case objective (``None`` without an
            exact master).
        x: the best input (original coordinates), or ``None``.
        value: its real value.
        runs: the :class:`~nncert.solvers.benders.BendersRun` of every partition.
        stats: ``spins`` (largest master), ``spins_history``, ``binaries_history`` (segment
            binaries per partition), ``iterations``, ``cuts``, ``master_exact``,
            ``refinements``.
    """

    status: str
    lower_bound: float | None
    x: FloatArray | None
    value: float
    runs: list[Any] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)


def benders_model2(
    network: Network,
    case: UnsafeCase,
    master: Any,
    *,
    segments: int = 4,
    tolerance: float = 1e-6,
    time_limit: float | None = None,
    spin_budget: int = 64,
    partition: Model2Partition | None = None,
    max_refinements: int = MODEL2_REFINEMENTS,
    x_start: FloatArray | None = None,
    options: BendersOptions | None = None,
) -> Model2BendersResult:
    r"""Route A for Model 2: Benders with the segment binaries as the master (one-hot).

    The Model 2 MILP of the reduced case (:func:`nncert.formulations.model2.encode_model2`) is
    split by :func:`nncert.formulations.benders.split_milp`: the master holds the one-hot
    segment binaries ``delta`` (and the exact big-M binaries of any ReLU/HardTanh layer), the
    elastic LP subproblem the continuous copies ``(z_k, a_k)``, pre-activations and inputs. A
    ``delta`` that is not one-hot, or selects segments no input reaches, is priced by the
    elastic slack; its cuts are valid for every ``delta``.

    Soundness: every cut is a lower bound of the Model 2 subproblem value, the master optimum
    over all cuts is at most the Model 2 optimum ``m_K <= m*``; a bound is reported only when
    the master over all cuts is solved exactly (HiGHS MILP, the exact QUBO solver, or the
    final/periodic exact master check of :class:`~nncert.solvers.benders.BendersSolver`), so
    ``verified`` needs ``lower_bound > tolerance`` from such a bound. A heuristic (annealing)
    master can only falsify: its QUBO is kept within ``spin_budget`` by the cut window, and the
    partition's segment binaries are capped at ``spin_budget - 22`` for it (widest bands
    first). Otherwise (exact master) at most ``spin_budget`` segment binaries are placed up
    front, as in ``method="model2"``. After an exact run that proves nothing, the partition is
    refined (nested, :func:`nncert.formulations.model2.refine_at`) at the best subproblem point
    and Benders runs again, ``max_refinements`` times at most.
    """
    t0 = time.perf_counter()
    deadline = None if time_limit is None else t0 + float(time_limit)
    box = case.input_box
    full = network.normalized()
    bounds = crown_bounds(full, box)
    red = reduce_problem(full, case, bounds)
    net, rcase, rb = red.network, red.case, red.bounds
    is_qubo = getattr(master, "problem_kind", "milp") == "qubo"
    heuristic = is_qubo and not getattr(master, "exact", False)
    cap = spin_budget - HEURISTIC_ETA_BITS - HEURISTIC_SLACK_RESERVE if heuristic else spin_budget
    cap = max(cap, 0)
    fixed_partition = partition is not None
    if partition is None:
        partition = network_partition(net, rb, segments, max_binaries=cap)
    lo, hi = spec_bounds(full, box, case.A, -case.b)
    eta_lo, eta_hi0 = float(np.max(lo)), float(np.max(hi))

    def evaluate_full(x: FloatArray) -> float:
        xc = np.clip(np.asarray(x, dtype=np.float64).reshape(-1), box.lower, box.upper)
        return float(case.violation(network.forward(xc).reshape(1, -1))[0])

    def evaluate(x_red: FloatArray) -> float:
        return evaluate_full(red.lift(x_red))

    start = box.center if x_start is None else np.asarray(x_start, dtype=np.float64)
    start = np.clip(start, box.lower, box.upper)
    eta_hi = min(eta_hi0, evaluate_full(start), evaluate_full(box.center))
    best_value, best_x = evaluate_full(start), start.copy()
    lb: float | None = None
    runs: list[Any] = []
    stats: dict[str, Any] = {
        "formulation": "model2",
        "segments": segments,
        "spins_history": [],
        "binaries_history": [],
        "iterations": 0,
        "cuts": 0,
        "refinements": 0,
        "route": "cut-window" if heuristic else "exact-master",
    }

    def finish(status: str) -> Model2BendersResult:
        stats["spins"] = max(stats["spins_history"], default=0)
        stats["binaries"] = stats["binaries_history"][-1] if stats["binaries_history"] else 0
        stats["master_exact"] = lb is not None
        stats["time"] = time.perf_counter() - t0
        return Model2BendersResult(status, lb, best_x, best_value, runs, stats)

    if best_value <= 0.0:
        return finish("falsified")
    bopts = options or BendersOptions(
        max_iterations=(60 if heuristic else 200) if is_qubo else 500,
        cut_window=8 if heuristic else None,
        qubo=QuboMasterOptions(eta_bits=HEURISTIC_ETA_BITS if heuristic else 8),
        max_master_variables=spin_budget if heuristic else None,
        exact_check_every=10 if heuristic else None,
    )
    sub = make_master("highs")
    x_red = start[red.free]
    for step in range(max_refinements + 1):
        rem = None if deadline is None else deadline - time.perf_counter()
        if rem is not None and rem <= 0.05:
            return finish("timeout")
        m2 = encode_model2(net, rcase, rb, partition)
        split = split_milp(m2.problem, eta_bounds=(eta_lo, eta_hi))
        init = model2_point(m2, x_red)[split.delta_cols]
        run = BendersSolver(master, sub, bopts).run(
            split,
            time_limit=rem,
            objective_target=0.0,
            bound_target=tolerance,
            evaluate=evaluate,
            initial_delta=np.round(init).astype(np.int8),
        )
        if heuristic and run.status == "spin_budget" and not fixed_partition and cap > 0:
            # even one cut does not fit: halve the segment binaries (the widest bands keep
            # theirs) and try again; the QUBO above the budget was never sampled
            while run.status == "spin_budget" and cap > 0:
                cap //= 2
                partition = network_partition(net, rb, segments, max_binaries=cap)
                m2 = encode_model2(net, rcase, rb, partition)
                split = split_milp(m2.problem, eta_bounds=(eta_lo, eta_hi))
                init = model2_point(m2, x_red)[split.delta_cols]
                run = BendersSolver(master, sub, bopts).run(
                    split,
                    time_limit=None
                    if deadline is None
                    else max(deadline - time.perf_counter(), 1e-3),
                    objective_target=0.0,
                    bound_target=tolerance,
                    evaluate=evaluate,
                    initial_delta=np.round(init).astype(np.int8),
                )
            stats["route"] = "cut-window+coarse"
        runs.append(run)
        stats["spins_history"].append(run.spins)
        stats["binaries_history"].append(split.n_delta)
        stats["iterations"] += len(run.iterations)
        stats["cuts"] += run.n_cuts
        stats["benders_status"] = run.status
        if run.master_exact and run.lower_bound is not None:
            lb = run.lower_bound if lb is None else max(lb, run.lower_bound)
        if run.best_input is not None and run.upper_bound < best_value:
            xb = np.clip(red.lift(run.best_input), box.lower, box.upper)
            vb = evaluate_full(xb)
            if vb < best_value:
                best_value, best_x = vb, xb
        if lb is not None and lb > tolerance:
            return finish("verified")
        if best_value <= 0.0:
            return finish("falsified")
        if run.status == "time_limit":
            return finish("timeout")
        if heuristic or not run.master_exact or run.best_x is None or step == max_refinements:
            break
        ref = refine_at(m2, run.best_x)
        if ref.n_split == 0:
            break
        partition = ref.partition
        x_red = best_x[red.free]
        stats["refinements"] += 1
    return finish("unknown")


def benders_model2_case(
    network: Network, case: UnsafeCase, ctx: CaseContext, *, master: Any | None = None
) -> CaseOutcome:
    """``method="benders"`` on a sigmoid/tanh network: :func:`benders_model2` with
    ``--segments``, ``--spin-budget`` and the master of ``--solver`` (:func:`make_master`)."""
    opts = ctx.options
    name = "highs" if opts.solver in ("", None) else str(opts.solver)
    if master is None:
        master = make_master(name, num_reads=opts.num_reads, seed=opts.seed)
    out = benders_model2(
        network,
        case,
        master,
        segments=opts.segments,
        tolerance=opts.milp_tolerance,
        time_limit=ctx.remaining(),
        spin_budget=opts.spin_budget,
        x_start=ctx.best_x,
    )
    stats = dict(out.stats)
    mname = str(getattr(master, "name", name))
    stats["master_solver"] = mname
    sname = f"benders[{mname}]"
    exact = out.lower_bound is not None
    if out.status == "verified":
        return CaseOutcome(
            "verified", exact=True, lower_bound=out.lower_bound, solver=sname, stats=stats
        )
    if out.status == "falsified" and out.x is not None:
        return CaseOutcome(
            "falsified", lower_bound=out.lower_bound, x=out.x, solver=sname, stats=stats
        )
    return CaseOutcome(
        out.status, exact=exact, lower_bound=out.lower_bound, solver=sname, stats=stats
    )


__all__ = [
    "QUBO_MASTERS",
    "Model2BendersResult",
    "activation_pattern",
    "benders_case",
    "benders_model2",
    "benders_model2_case",
    "make_master",
    "run_benders_case",
]
