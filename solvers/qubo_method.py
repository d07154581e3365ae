"""Pipeline plug-in ``method="qubo"``: Route B, the monolithic grid QUBO (FALSIFICATION ONLY).

``verify(net, prop, method="qubo", solver=NAME)`` runs ``sample, crown, attack, qubo``. For each
open case the exact Model-1 MILP (CROWN big-M bounds) is turned into one penalty QUBO over a
fixed-point grid (:func:`nncert.formulations.qubo.milp_to_qubo`) and minimised by the sampler
named by ``solver`` (``"sa"`` by default and when ``solver`` is a MILP name such as
``"highs"``; ``"tabu"``, ``"steepest"``, ``"exact"``/``"exact-qubo"`` for at most 20 spins).

Soundness (FORMULATIONS.md 5.2): the QUBO minimum is an *approximate grid estimate* — penalty
residuals, rounding of hidden quantities and a heuristic sampler all distort it, and the grid
correction ``m* >= min_grid g - L_x h_x / 2`` needs an exact grid minimum that this encoding does
not guarantee. So this method **never verifies**: it decodes the input grid points of the best
samples, evaluates the network there, and returns the best point as a candidate witness when
its value is ``<= 0`` (the pipeline replays it in float64). Otherwise the case stays open
(``"unknown"``). QUBOs larger than ``spin_budget`` are not sent to the sampler.

Stats: ``spins`` (total QUBO variables), ``spin_breakdown`` (activation / objective / slack /
continuous), ``grid_step`` (largest input step ``h_x``), ``lipschitz`` (``L_x``, product of the
layers' infinity norms), ``grid_correction`` (``L_x h_x / 2``), ``grid_estimate`` (the best
decoded value), ``residual`` (largest penalty residual at the best sample).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nncert.formulations.milp import encode_milp
from nncert.formulations.qubo import milp_to_qubo
from nncert.solvers import dimod_solver as ds
from nncert.verify.bounds import crown_bounds
from nncert.verify.errors import InvalidOptionsError
from nncert.verify.network import Network
from nncert.verify.result import CaseContext, CaseOutcome
from nncert.verify.spec import UnsafeCase

#: sampler names this method accepts; anything else (e.g. "highs") uses "sa"
SAMPLERS = ("sa", "tabu", "steepest", "exact", "exact-qubo")

#: fixed-point bits of the inputs and of the hidden continuous columns
INPUT_BITS = 4
HIDDEN_BITS = 3
SLACK_BITS = 3


def lipschitz_inf(network: Network, case: UnsafeCase) -> float:
    """``L_x`` with ``|g_r(x) - g_r(x')| <= L_x ||x - x'||_inf`` for every row (1-Lipschitz
    activations): ``max_r ||A_r||_1 * prod_k ||W_k||_inf``."""
    dense, _ = network.affine_and_activations()
    prod = float(np.prod([np.abs(d.weight).sum(axis=1).max() for d in dense]))
    rows = np.abs(case.A).sum(axis=1).max() if case.n_rows else 0.0
    return float(rows * prod)


def qubo_case(network: Network, case: UnsafeCase, ctx: CaseContext) -> CaseOutcome:
    """Route B on one case: falsify or leave open (see the module docstring)."""

    opts = ctx.options
    name = opts.solver if opts.solver in SAMPLERS else "sa"
    if not network.is_piecewise_linear:
        return CaseOutcome("unknown", stats={"reason": "non-piecewise-linear activations"})
    box = case.input_box
    problem = encode_milp(network, case, crown_bounds(network, box))
    try:
        q = milp_to_qubo(problem, bits=HIDDEN_BITS, input_bits=INPUT_BITS, slack_bits=SLACK_BITS)
    except InvalidOptionsError as err:  # a heuristic that cannot encode leaves the case open
        return CaseOutcome("unknown", stats={"reason": str(err)})
    h_x = float(np.max((box.upper - box.lower) / (2.0**INPUT_BITS - 1.0)))
    L = lipschitz_inf(network, case)
    stats: dict[str, Any] = {
        "spins": q.num_variables,
        "spin_breakdown": dict(q.spins),
        "iterations": 1,
        "master_solver": name,
        "grid_step": h_x,
        "lipschitz": L,
        "grid_correction": L * h_x / 2.0,
    }
    limit = opts.spin_budget
    if name in ("exact", "exact-qubo"):
        limit = min(limit, ds.EXACT_MAX_VARIABLES)
    if q.num_variables > limit:
        stats["reason"] = f"QUBO has {q.num_variables} spins > spin budget {limit}"
        return CaseOutcome("unknown", solver=name, stats=stats)
    if name == "sa":
        solver = ds.simulated_annealing(num_reads=opts.num_reads, seed=opts.seed)
    elif name == "tabu":
        solver = ds.tabu(seed=opts.seed)
    elif name == "steepest":
        solver = ds.steepest_descent(num_reads=opts.num_reads, seed=opts.seed)
    else:
        solver = ds.exact()
    res = solver.solve(q, time_limit=ctx.remaining())
    samples = res.info.get("samples")
    if res.x is None or samples is None or len(samples) == 0:
        return CaseOutcome("unknown", solver=name, stats=stats)
    X = np.vstack([q.decode(s)["x"] for s in np.asarray(samples)])
    X = np.clip(X, box.lower, box.upper)
    values = case.violation(network.forward(X))
    k = int(np.argmin(values))
    stats["grid_estimate"] = float(values[k])
    stats["residual"] = q.decode(np.asarray(samples)[k])["residual"]
    stats["energy"] = res.objective
    if values[k] <= 0.0:
        return CaseOutcome("falsified", x=X[k].copy(), solver=name, stats=stats)
    return CaseOutcome("unknown", solver=name, stats=stats)


__all__ = ["SAMPLERS", "lipschitz_inf", "qubo_case"]
