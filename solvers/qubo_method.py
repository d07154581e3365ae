"""Pipeline plug-in ``method="qubo"``: Route B, one QUBO per case (FALSIFICATION ONLY).

Piecewise-linear networks (ReLU, HardTanh) use the Model-1 grid QUBO below; any other network
(sigmoid, tanh) uses Model 2's segment QUBO (:func:`model2_qubo_case`,
:mod:`nncert.formulations.model2_qubo`, FORMULATIONS.md 7.10) with spin-budget routing
(``monolithic``, ``coarse``, ``layerwise`` or ``none``, reported as ``route``) and nested
refinement (``spins_history``).

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

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nncert.formulations.benders import split_milp
from nncert.formulations.milp import encode_milp
from nncert.formulations.model2 import (
    encode_model2,
    network_partition,
    reduce_problem,
    refine_at,
)
from nncert.formulations.model2_qubo import (
    SegmentEncoding,
    SegmentQubo,
    SegmentQuboOptions,
    forward_pre_activations,
    pattern_delta,
    restrict_qubo,
    segment_qubo,
    segment_spins,
)
from nncert.formulations.qubo import milp_to_qubo
from nncert.solvers import dimod_solver as ds
from nncert.solvers.base import SolveStatus
from nncert.solvers.highs_solver import HighsSolver
from nncert.solvers.registry import get_solver
from nncert.verify.attack import pgd_attack
from nncert.verify.bounds import crown_bounds
from nncert.verify.errors import InvalidOptionsError
from nncert.verify.network import FloatArray, Network, row_abs_sums
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
    prod = float(np.prod([row_abs_sums(d.weight).max() for d in dense]))
    rows = np.abs(case.A).sum(axis=1).max() if case.n_rows else 0.0
    return float(rows * prod)


def make_sampler(name: str, *, num_reads: int, seed: int) -> tuple[str, Any]:
    """The QUBO sampler of a ``--solver`` name: ``sa`` (also for MILP names such as
    ``highs``), ``tabu``, ``steepest``, ``exact``/``exact-qubo`` (dimod.ExactSolver, at most
    20 spins) or ``dimod:PACKAGE.Class`` (any dimod sampler, a QPU through EmbeddingComposite;
    :func:`nncert.solvers.dimod_solver.named_sampler`)."""
    if name.startswith("dimod:"):
        return name, get_solver(name, num_reads=num_reads, seed=seed)
    name = name if name in SAMPLERS else "sa"
    if name == "sa":
        return name, ds.simulated_annealing(num_reads=num_reads, seed=seed)
    if name == "tabu":
        return name, ds.tabu(seed=seed)
    if name == "steepest":
        return name, ds.steepest_descent(num_reads=num_reads, seed=seed)
    return name, ds.exact()


def qubo_case(network: Network, case: UnsafeCase, ctx: CaseContext) -> CaseOutcome:
    """Route B on one case: falsify or leave open (see the module docstring).

    Piecewise-linear networks use the Model-1 grid QUBO; any other network (sigmoid, tanh)
    the Model 2 segment QUBO (:func:`model2_qubo_case`).
    """

    opts = ctx.options
    if not network.is_piecewise_linear:
        return model2_qubo_case(network, case, ctx)
    name = opts.solver if opts.solver in SAMPLERS or opts.solver.startswith("dimod:") else "sa"
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
    name, solver = make_sampler(name, num_reads=opts.num_reads, seed=opts.seed)
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


# --------------------------------------------------------------------------------------------
# Model 2 on the QUBO route (sigmoid, tanh): FORMULATIONS.md 7.7, 10.2
# --------------------------------------------------------------------------------------------

#: refinement steps after the first sampling (each re-encodes and re-samples)
MODEL2_REFINEMENTS = 2
#: block-coordinate sweeps over the layerwise windows
WINDOW_SWEEPS = 2
#: distinct samples per QUBO whose segment pattern is polished by the Model 2 LP
POLISH_SAMPLES = 4
#: case rows sampled at most (one segment QUBO per row; the others are checked on replay)
MAX_ROWS = 4
#: elastic slack cost of the polishing LP (any value gives a point; only replays count)
POLISH_M = 1e3
#: largest segment QUBO built at all (windows then keep each sampled QUBO within the budget)
MAX_SEGMENT_SPINS = 2048


@dataclass
class Model2QuboResult:
    """Outcome of :func:`model2_qubo_search` (never a proof).

    Attributes:
        status: ``"falsified"`` (``x`` has a real value ``<= 0``), ``"unknown"`` or
            ``"timeout"``.
        x: the best input found (original coordinates) or ``None``.
        value: its real case value.
        stats: ``spins`` (largest QUBO built), ``spins_history`` (per refinement step),
            ``sampled_spins`` (largest QUBO sent to the sampler), ``route`` (``monolithic``,
            ``coarse``, ``layerwise`` or ``none``), ``routes`` (per step), ``qubos_sampled``,
            ``found_by`` (``grid``/``lp``), ``refinements``, ``encoding``, ``segments``.
    """

    status: str
    x: FloatArray | None
    value: float
    stats: dict[str, Any] = field(default_factory=dict)


def _sample_qubo(
    sq: SegmentQubo,
    sampler: Any,
    budget: int,
    start: np.ndarray,
    deadline: float | None,
    stats: dict[str, Any],
) -> tuple[str, list[np.ndarray]]:
    """Minimise ``sq`` within the budget: the whole QUBO, or layerwise windows (block
    coordinate descent from ``start``); returns the route and the candidate spin vectors."""

    def left() -> float | None:
        return None if deadline is None else deadline - time.perf_counter()

    q = sq.qubo
    if q.num_variables <= budget:
        rem = left()
        if rem is not None and rem <= 0.05:
            return "timeout", []
        res = sampler.solve(q, time_limit=rem)
        stats["qubos_sampled"] += 1
        stats["sampled_spins"] = max(stats["sampled_spins"], q.num_variables)
        samples = list(np.asarray(res.info.get("samples", np.zeros((0, 0)))))
        if res.x is not None:
            samples.insert(0, np.asarray(res.x))
        return "monolithic", samples
    wins = sq.windows(budget)
    if wins is None:
        return "none", []
    state = np.asarray(start, dtype=np.int8).copy()
    best_e = q.energy(state)
    cands = [state.copy()]
    for _ in range(WINDOW_SWEEPS):
        improved = False
        for w in wins:
            rem = left()
            if rem is not None and rem <= 0.05:
                return "layerwise", cands
            sub = restrict_qubo(q, w, state)
            if sub.num_variables > budget:  # pragma: no cover - windows() guarantees it
                raise AssertionError("window above the spin budget")
            res = sampler.solve(sub, time_limit=rem)
            stats["qubos_sampled"] += 1
            stats["sampled_spins"] = max(stats["sampled_spins"], sub.num_variables)
            if res.x is None:
                continue
            trial = state.copy()
            trial[w] = np.asarray(res.x).astype(np.int8)
            e = q.energy(trial)
            if e < best_e - 1e-12:
                state, best_e, improved = trial, e, True
                cands.append(state.copy())
        if not improved:
            break
    cands.reverse()  # the lowest energy first
    return "layerwise", cands


def model2_qubo_search(
    network: Network,
    case: UnsafeCase,
    sampler: Any,
    *,
    segments: int = 5,
    spin_budget: int = 64,
    encoding: SegmentEncoding = "thermometer",
    input_bits: int = INPUT_BITS,
    deadline: float | None = None,
    x_start: FloatArray | None = None,
    max_refinements: int = MODEL2_REFINEMENTS,
    polish: bool = True,
    pgd: bool = True,
    rng: np.random.Generator | None = None,
) -> Model2QuboResult:
    """Model 2 on the QUBO route for one case: propose with a sampler, replay, refine.

    1. CROWN bounds, the exact reduction (fixed inputs, constant neurons folded), a Model 2
       partition with ``segments`` segments per neuron (every hidden layer banded) and its
       segment QUBO (:mod:`nncert.formulations.model2_qubo`), one per case row (at most
       :data:`MAX_ROWS`).
    2. **Routing**: a QUBO within ``spin_budget`` is sampled whole (``monolithic``); when
       ``K`` segments everywhere exceed the budget, only the widest bands (score of
       :func:`nncert.formulations.model2.network_partition`) keep ``K`` segments and the others
       follow their secant without spins, so that the QUBO fits (``coarse``); a QUBO still
       above the budget (the input bits alone exceed it) is searched by block coordinate
       descent over layerwise windows of at most ``spin_budget`` spins (``layerwise``),
       started from the forward pass at ``x_start``;
       when a single input or neuron needs more spins than the budget, nothing is sampled
       (``none``). No QUBO above the budget ever reaches the sampler.
    3. Every candidate is replayed on the real network: its input grid point, and (``polish``)
       the input of the Model 2 LP with the candidate's segment pattern fixed (the elastic
       Benders subproblem, always feasible) and (``pgd``) a short PGD run from the best of
       them. A real value ``<= 0`` falsifies (``found_by``: ``grid``, ``lp`` or ``pgd``).
    4. Otherwise the partition is refined where the best LP point uses the relaxation
       (:func:`nncert.formulations.model2.refine_at`, nested), re-encoded and re-sampled, at
       most ``max_refinements`` times; ``spins_history`` records every step's spin count.

    The sampler only proposes: the result is never ``"verified"``.
    """
    t0 = time.perf_counter()
    rng = np.random.default_rng(0) if rng is None else rng
    box = case.input_box
    full = network.normalized()
    bounds = crown_bounds(full, box)
    red = reduce_problem(full, case, bounds)
    net, rcase, rb = red.network, red.case, red.bounds
    _, acts = net.affine_and_activations()
    banded = tuple({type(a) for a in acts})
    sq_opts = SegmentQuboOptions(encoding=encoding, input_bits=input_bits)
    partition = network_partition(net, rb, segments, banded=banded)
    n_x = input_bits * int(np.sum(rcase.input_box.upper > rcase.input_box.lower))
    coarse = False
    if segment_spins(partition, 0, 0, encoding) + n_x > spin_budget and n_x < spin_budget:
        # coarsen: the widest bands keep K segments, the others one (no spin, secant)
        per = segments - 1 if encoding == "thermometer" else segments
        n_allowed = (spin_budget - n_x) // max(per, 1)
        while True:
            partition = network_partition(
                net, rb, segments, banded=banded, max_binaries=n_allowed * segments
            )
            if segment_spins(partition, 0, 0, encoding) + n_x <= spin_budget or n_allowed == 0:
                break
            n_allowed -= 1
        coarse = True
    stats: dict[str, Any] = {
        "formulation": "model2",
        "encoding": encoding,
        "segments": segments,
        "spin_budget": spin_budget,
        "spins_history": [],
        "routes": [],
        "qubos_sampled": 0,
        "sampled_spins": 0,
        "refinements": 0,
    }
    best_value, best_x = math.inf, None

    def replay(x_red: np.ndarray) -> tuple[float, np.ndarray]:
        x = np.clip(red.lift(x_red), box.lower, box.upper)
        return float(case.violation(network.forward(x)[None])[0]), x

    start_full = box.center if x_start is None else np.asarray(x_start, dtype=np.float64)
    start_red = np.clip(start_full[red.free], rcase.input_box.lower, rcase.input_box.upper)
    lp = HighsSolver()

    def finish(status: str) -> Model2QuboResult:
        stats["spins"] = max(stats["spins_history"], default=0)
        stats["route"] = stats["routes"][0] if stats["routes"] else "none"
        stats["iterations"] = len(stats["spins_history"])
        stats["time"] = time.perf_counter() - t0
        return Model2QuboResult(status, best_x, best_value, stats)

    for step in range(max_refinements + 1):
        total = segment_spins(partition, 0, 0, encoding) + n_x
        if total > MAX_SEGMENT_SPINS:
            # its couplers (dense in the inputs and each layer) would not fit in memory
            stats["spins_history"].append(total)
            stats["routes"].append("none")
            stats["reason"] = f"segment QUBO of {total} spins > {MAX_SEGMENT_SPINS}: not built"
            return finish("unknown")
        m2 = encode_model2(net, rcase, rb, partition, banded=banded)
        split = split_milp(m2.problem) if polish else None
        rows = range(min(rcase.n_rows, MAX_ROWS))
        sqs = [segment_qubo(net, rcase, m2.partition, row=r, options=sq_opts) for r in rows]
        n_spins = sqs[0].num_spins
        stats["spins_history"].append(n_spins)
        stats.setdefault("spin_breakdown", sqs[0].spins)
        best_lp: tuple[float, np.ndarray] | None = None
        for sq in sqs:
            start = sq.encode(start_red, forward_pre_activations(net, start_red))
            route, cands = _sample_qubo(sq, sampler, spin_budget, start, deadline, stats)
            if route == "timeout":
                return finish("timeout")
            if route == "monolithic" and coarse:
                route = "coarse"
            if len(stats["routes"]) <= step:
                stats["routes"].append(route)
            if route == "none":
                stats["reason"] = (
                    f"a single input or neuron needs more spins than the budget {spin_budget}"
                )
                return finish("unknown")
            seen: set[bytes] = set()
            uniq = []
            for c in cands:
                key = np.asarray(c, dtype=np.int8).tobytes()
                if key not in seen:
                    seen.add(key)
                    uniq.append(np.asarray(c))
            for c in uniq:
                value, x = replay(sq.input_point(c))
                if value < best_value:
                    best_value, best_x = value, x
                if value <= 0.0:
                    stats["found_by"] = "grid"
                    return finish("falsified")
            if split is None:
                continue
            for c in uniq[:POLISH_SAMPLES]:
                if deadline is not None and time.perf_counter() >= deadline:
                    return finish("timeout")
                delta = pattern_delta(m2, sq.segments(c))
                res = lp.solve(split.subproblem(delta, POLISH_M))
                if res.status is not SolveStatus.OPTIMAL or res.x is None:
                    continue
                v = split.assemble(res.x, delta)
                value, x = replay(m2.decode_input(v))
                if value < best_value:
                    best_value, best_x = value, x
                if value <= 0.0:
                    stats["found_by"] = "lp"
                    return finish("falsified")
                if best_lp is None or (res.objective or 0.0) < best_lp[0]:
                    best_lp = (float(res.objective or 0.0), v)
        if pgd and best_x is not None:
            # a short gradient polish from the best proposal (the baseline loop does the same)
            att = pgd_attack(network, case, steps=30, restarts=2, rng=rng, x_init=best_x)
            if att.violation < best_value:
                best_value, best_x = float(att.violation), np.asarray(att.x, dtype=np.float64)
            if best_value <= 0.0:
                stats["found_by"] = "pgd"
                return finish("falsified")
        if step == max_refinements or best_lp is None:
            break
        ref = refine_at(m2, best_lp[1])
        if ref.n_split == 0:
            break
        grown = segment_spins(ref.partition, 0, 0, encoding) + n_x
        if grown > spin_budget >= n_spins:  # keep the refined QUBO within the budget
            cap = spin_budget - n_spins
            if cap <= 0:
                stats["stopped"] = "spin budget reached"
                break
            ref = refine_at(m2, best_lp[1], max_splits=cap)
            if ref.n_split == 0 or segment_spins(ref.partition, 0, 0, encoding) + n_x > spin_budget:
                stats["stopped"] = "spin budget reached"
                break
        partition = ref.partition
        stats["refinements"] += 1
    if deadline is not None and time.perf_counter() >= deadline:
        return finish("timeout")
    return finish("unknown")


def model2_qubo_case(network: Network, case: UnsafeCase, ctx: CaseContext) -> CaseOutcome:
    """Model 2 on the QUBO route (sigmoid/tanh networks; FALSIFICATION ONLY).

    ``--segments K``, ``--spin-budget``, ``--num-reads``, ``--seed`` and the sampler of
    ``--solver`` (:func:`make_sampler`) reach :func:`model2_qubo_search`; a found input is
    returned as a candidate witness (the pipeline replays it again), otherwise the case stays
    open. Stats: those of :class:`Model2QuboResult`.
    """
    opts = ctx.options
    name, sampler = make_sampler(opts.solver, num_reads=opts.num_reads, seed=opts.seed)
    budget = opts.spin_budget
    if name in ("exact", "exact-qubo"):
        budget = min(budget, ds.EXACT_MAX_VARIABLES)
    out = model2_qubo_search(
        network,
        case,
        sampler,
        segments=opts.segments,
        spin_budget=budget,
        deadline=ctx.deadline,
        x_start=ctx.best_x,
        rng=ctx.rng,
    )
    stats = dict(out.stats)
    stats["master_solver"] = name
    if out.status == "falsified" and out.x is not None:
        return CaseOutcome("falsified", x=out.x, solver=name, stats=stats)
    return CaseOutcome(out.status, solver=name, stats=stats)


__all__ = [
    "SAMPLERS",
    "Model2QuboResult",
    "lipschitz_inf",
    "make_sampler",
    "model2_qubo_case",
    "model2_qubo_search",
    "qubo_case",
]
