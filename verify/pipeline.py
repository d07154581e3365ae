"""The verification pipeline: cheap stages first, complete methods last.

``verify(network, prop, options)`` runs a cascade of stages and stops at the first decisive
verdict (DESIGN.md section 5)::

    sample  -> crown (or ibp) -> attack (PGD) -> the method (bab | milp | any registered one)

The method comes from the registry (:mod:`nncert.verify.registry`); the cheap stages before
it are its :attr:`~nncert.verify.registry.MethodSpec.presolve` (``ibp``, ``crown`` and
``attack`` run only ``sample`` first), skipped entirely with ``presolve=False``.

Every stage works on the *open* unsafe cases of the property. A case is **closed** when a
sound lower bound of ``min_x max_r (A_r f(x) - b_r)`` over its input box is ``> 0`` (bounds),
or when an *exact* solver proves the same (MILP optimum or dual bound above the tolerance,
infeasibility, or branch and bound closing every node by a sound bound). The property is
VERIFIED when every case is closed.

A counterexample is reported only after it has been clipped into the case's input box and
replayed through the float64 forward pass (and onnxruntime for ONNX models): FALSIFIED needs
``max_r (A_r f(x) - b_r) <= 0`` under both. A solver's claimed witness that fails the replay
is "unconfirmed" and leaves the case open.

Each closed case keeps the typed record that closed it (:class:`BoundCaseEvidence`,
:class:`SolverCaseEvidence`, :class:`SearchCaseEvidence`, in ``VerificationResult.evidence``);
the certificate builder reads those, ``stats`` are counters for ``--json`` only.

The time limit covers the whole call: each stage gets the remaining budget, and when it runs
out the verdict is UNKNOWN with reason ``"timeout"``.
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from nncert.formulations.milp import encode_milp
from nncert.solvers.base import SolveStatus
from nncert.solvers.registry import get_solver
from nncert.verify.attack import pgd_attack
from nncert.verify.bab import BabOptions, bab_verify
from nncert.verify.bounds import crown_bounds, interval_bounds, spec_bounds
from nncert.verify.errors import InvalidOptionsError, InvalidPropertyError
from nncert.verify.lowering import (
    lower_polynomial,
    lower_property,
    normalize_polynomial_rows,
    relax_polynomial,
    relax_property,
)
from nncert.verify.network import (
    FloatArray,
    Network,
    ReLU,
    abs_weight,
    matmul_right,
)
from nncert.verify.options import VerifyOptions, check_solver_fits_method
from nncert.verify.processes import limit_blas
from nncert.verify.registry import MethodSpec, get_method
from nncert.verify.relu_bab import relu_bab_case_parallel
from nncert.verify.result import (
    BoundCaseEvidence,
    CaseContext,
    CaseEvidence,
    CaseMethod,
    CaseOutcome,
    Counterexample,
    ProgressFn,
    SearchCaseEvidence,
    SolverCaseEvidence,
    StageStat,
    Verdict,
    VerificationResult,
)
from nncert.verify.spec import MixedProperty, PolynomialProperty, Property, UnsafeCase
from nncert.verify.witness import confirm_counterexample, is_onnx_source, onnxruntime_forward

logger = logging.getLogger(__name__)


@dataclass
class _Context:
    """Mutable state shared by the stages of one ``verify`` call (never escapes it).

    ``network`` is the normal form every stage works on; ``replay_network`` is the network
    the caller gave (counterexamples are confirmed on it: its own float64 forward pass, and
    onnxruntime on its ONNX source).
    """

    network: Network
    replay_network: Network
    prop: Property
    options: VerifyOptions
    t0: float
    deadline: float | None
    rng: np.random.Generator
    progress: ProgressFn | None
    open_cases: list[int]
    lower: list[float | None]
    upper: list[float | None]
    best_x: dict[int, FloatArray] = field(default_factory=dict)
    stages: list[StageStat] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)
    counterexample: Counterexample | None = None
    decided_by: str = ""
    solver: str = ""
    timed_out: bool = False
    unconfirmed: int = 0
    closed_by: dict[int, CaseEvidence] = field(default_factory=dict)
    partial: dict[int, list[CaseEvidence]] = field(default_factory=dict)

    def remaining(self) -> float | None:
        if self.deadline is None:
            return None
        return max(0.0, self.deadline - time.perf_counter())

    def expired(self) -> bool:
        rem = self.remaining()
        return rem is not None and rem <= 0.0

    def affords(self, cost: float) -> bool:
        """Whether a step expected to take ``cost`` seconds (e.g. the last one like it) ends
        before the deadline; ``False`` also sets ``timed_out``. Stages call it between steps
        that cannot be interrupted, so that the run overshoots the deadline by at most a
        misprediction, not by a whole step."""
        rem = self.remaining()
        if rem is None or rem > cost:
            return True
        self.timed_out = True
        return False

    def best_value(self, i: int) -> float:
        """The smallest case objective found so far at a concrete point (inf if none)."""
        v = self.upper[i]
        return float("inf") if v is None else float(v)

    def say(self, message: str) -> None:
        if self.progress is not None:
            self.progress(message)

    def close_case(self, i: int, lower: float, evidence: CaseEvidence) -> None:
        """Close case ``i`` on a proven lower bound ``lower > 0`` backed by ``evidence``."""
        if i in self.open_cases:
            self.open_cases.remove(i)
            self.closed_by[i] = evidence
        prev = self.lower[i]
        self.lower[i] = lower if prev is None else max(prev, lower)

    def note_lower(self, i: int, lower: float | None, evidence: CaseEvidence) -> None:
        """Record a partial result for open case ``i`` (a proven ``lower`` bound, if any)."""
        self.partial.setdefault(i, []).append(evidence)
        if lower is None:
            return
        prev = self.lower[i]
        self.lower[i] = lower if prev is None else max(prev, lower)

    def evidence(self) -> tuple[CaseEvidence, ...]:
        """The closing record of every closed case (in closing order), then per open case
        the record with the best proven lower bound (the last record if none proves one)."""
        out = list(self.closed_by.values())
        for i in sorted(self.open_cases):
            recs = self.partial.get(i, [])
            proven = [r for r in recs if r.proven_lower is not None]
            if proven:
                out.append(max(proven, key=lambda r: float(r.proven_lower or 0.0)))
            elif recs:
                out.append(recs[-1])
        return tuple(out)

    def note_upper(self, i: int, value: float, x: FloatArray | None = None) -> None:
        prev = self.upper[i]
        if prev is None or value < prev:
            self.upper[i] = value
            if x is not None:
                self.best_x[i] = np.asarray(x, dtype=np.float64).copy()


# --------------------------------------------------------------------------------------------
# Counterexample confirmation
# --------------------------------------------------------------------------------------------


def _accept(ctx: _Context, i: int, x: FloatArray, source: str) -> bool:
    """Try to confirm ``x`` for case ``i``; on success record FALSIFIED and return True."""
    case = ctx.prop.cases[i]
    cex = confirm_counterexample(
        ctx.replay_network, case, i, x, onnx_replay=ctx.options.onnx_replay
    )
    if cex is None:
        ctx.unconfirmed += 1
        return False
    ctx.counterexample = cex
    ctx.decided_by = source
    ctx.note_upper(i, cex.violation, cex.x)
    return True


def _deepen(ctx: _Context, i: int, x: FloatArray, steps: int = 30) -> FloatArray | None:
    """A short PGD run from ``x`` that pushes a borderline candidate into the unsafe set."""

    case = ctx.prop.cases[i]
    res = pgd_attack(ctx.network, case, steps=steps, restarts=4, rng=ctx.rng, x_init=np.asarray(x))
    return None if res is None else np.asarray(res[0])


# --------------------------------------------------------------------------------------------
# Stages
# --------------------------------------------------------------------------------------------


def sample_stage(ctx: _Context) -> None:
    """(Presolve) evaluate the box centres and a few hundred random points of every open case
    on the caller's network (concrete values of ``f`` as given, not of its normal form)."""
    n = 256
    cost = 0.0  # the slowest case so far predicts the next one
    for i in list(ctx.open_cases):
        if not ctx.affords(cost):
            return
        s0 = time.perf_counter()
        case = ctx.prop.cases[i]
        box = case.input_box
        xs = np.vstack([box.center.reshape(1, -1), box.sample(n, ctx.rng)])
        viol = case.violation(ctx.replay_network.forward(xs))
        k = int(np.argmin(viol))
        cost = max(cost, time.perf_counter() - s0)
        ctx.note_upper(i, float(viol[k]), xs[k])
        if viol[k] <= 0.0 and _accept(ctx, i, xs[k], "sample"):
            return


def _bounds_stage(ctx: _Context, method: str) -> None:

    cost = 0.0  # the slowest case so far predicts the next one (a bound call is not interrupted)
    for i in list(ctx.open_cases):
        if not ctx.affords(cost):
            return
        s0 = time.perf_counter()
        case = ctx.prop.cases[i]
        lo, _ = spec_bounds(ctx.network, case.input_box, case.A, -case.b, method=method)
        cost = max(cost, time.perf_counter() - s0)
        lb = float(np.max(lo))
        if lb > 0.0:
            ctx.close_case(i, lb, BoundCaseEvidence(i, method, lb))
        else:
            ctx.note_lower(i, lb, BoundCaseEvidence(i, method, lb))
    if not ctx.open_cases:
        ctx.decided_by = method


def ibp_stage(ctx: _Context) -> None:
    """Interval bounds on every open case (method ``ibp``; a presolve stage)."""
    _bounds_stage(ctx, "ibp")


def crown_stage(ctx: _Context) -> None:
    """CROWN bounds on every open case (method ``crown``; a presolve stage)."""
    _bounds_stage(ctx, "crown")


def attack_stage(ctx: _Context) -> None:
    """PGD on every open case, weakest (smallest best value) first (method ``attack``)."""

    budget = 10.0
    rem = ctx.remaining()
    if rem is not None:
        budget = min(budget, ctx.options.attack_budget * rem)
    stop = time.perf_counter() + budget
    order = sorted(ctx.open_cases, key=ctx.best_value)
    for i in order:
        if time.perf_counter() > stop:
            break
        case = ctx.prop.cases[i]
        res = pgd_attack(
            ctx.network,
            case,
            steps=50,
            restarts=8,
            rng=ctx.rng,
            x_init=ctx.best_x.get(i),
            deadline=stop,
        )
        if res is None:
            continue
        x, value = np.asarray(res[0]), float(res[1])
        if ctx.replay_network is not ctx.network:  # a value of f as given, not its normal form
            value = float(case.violation(ctx.replay_network.forward(x.reshape(1, -1)))[0])
        ctx.note_upper(i, value, x)
        if value <= 0.0 and _accept(ctx, i, x, "attack"):
            return


#: optimised-slope steps per hidden layer that tighten the MILP's big-M bounds (see
#: :meth:`~nncert.verify.bounds.BoundEngine.refine_intermediate`)
MILP_REFINE_ITERS = 10
#: ... within at most this share of the remaining budget (else plain CROWN: the encoding and
#: the solver need the rest)
MILP_REFINE_SHARE = 0.25


def _past(t: float) -> Callable[[], bool]:
    """A poll that is true once the clock passes ``t``."""
    return lambda: time.perf_counter() >= t


#: seconds per constraint-matrix nonzero a MILP solve needs before it can stop: HiGHS's MIP
#: presolve does not check its time limit (MNIST-FC 256x6, 537,000 nonzeros: 8.0 s of
#: presolve with time_limit=1 on a loaded 2-core machine); the MILP stage skips a solve the
#: remaining budget cannot cover at this rate, instead of overrunning the deadline
MILP_SETUP_S_PER_NNZ = 1e-5


def milp_stage(ctx: _Context) -> None:
    """Exact MILP per open case (Model 1 over CROWN-tightened big-M bounds)."""

    if not ctx.network.is_piecewise_linear:
        ctx.stats["milp_skipped"] = "network has non-piecewise-linear activations"
        return
    solver = get_solver(ctx.options.solver)
    ctx.solver = getattr(solver, "name", str(ctx.options.solver))
    tol = ctx.options.milp_tolerance
    order = sorted(ctx.open_cases, key=ctx.best_value)
    n_bin = 0
    encode_cost = 0.0  # the slowest encoding so far predicts the next one
    for k, i in enumerate(order):
        if ctx.expired():
            ctx.timed_out = True
            return
        case = ctx.prop.cases[i]
        ctx.say(f"milp: case {k + 1}/{len(order)} (of {len(ctx.prop.cases)})")
        if not ctx.affords(encode_cost):
            return
        s0 = time.perf_counter()
        # big-M constants from hidden-layer bounds tightened by optimised slopes (one
        # refinement per input box, shared by the cases; plain CROWN if the budget ends first)
        rem = ctx.remaining()
        until = None if rem is None else time.perf_counter() + MILP_REFINE_SHARE * rem
        bounds = crown_bounds(
            ctx.network,
            case.input_box,
            refine_iters=MILP_REFINE_ITERS,
            stop=None if until is None else _past(until),
        )
        problem = encode_milp(ctx.network, case, bounds)
        encode_cost = max(encode_cost, time.perf_counter() - s0)
        if ctx.expired():  # the solver gets the remaining budget, never the full one
            ctx.timed_out = True
            return
        if not ctx.affords(MILP_SETUP_S_PER_NNZ * problem.A.nnz):
            return  # a solve whose set-up alone would outlast the budget
        n_bin += int(np.count_nonzero(problem.integrality))
        init = ctx.best_x.get(i)
        res = solver.solve(
            problem,
            time_limit=ctx.remaining(),
            objective_target=0.0,
            bound_target=tol,
            initial_solution=None if init is None else _full_start(problem, ctx.network, init),
        )
        st = res.status
        ctx.stats.setdefault("milp", []).append(
            {
                "case": i,
                "status": st.value,
                "objective": res.objective,
                "bound": res.bound,
                "binaries": int(np.count_nonzero(problem.integrality)),
                "time": res.info.get("time"),
            }
        )
        exact = bool(getattr(solver, "exact", False))
        ev = SolverCaseEvidence(
            i,
            "milp",
            ctx.solver,
            exact,
            st.value,
            res.objective,
            res.bound,
            tol,
            int(np.count_nonzero(problem.integrality)),
        )
        if st is SolveStatus.INFEASIBLE:
            # Model 1 is feasible for every input of a non-empty box, so "infeasible" can only
            # be a numerical fault (bad bounds, tolerances): never take it as a proof.
            logger.warning("MILP for case %d reported infeasible; treated as unknown", i)
            ctx.stats["milp_infeasible_suspect"] = ctx.stats.get("milp_infeasible_suspect", 0) + 1
            ctx.note_lower(i, None, dataclasses.replace(ev, exact=False))
            continue
        if res.bound is not None and exact and res.bound > tol:
            ctx.close_case(i, float(res.bound), ev)
            continue
        ctx.note_lower(i, float(res.bound) if res.bound is not None and exact else None, ev)
        if res.x is not None and res.objective is not None and res.objective <= tol:
            x = problem.index.decode_input(res.x)
            if _accept(ctx, i, x, "milp"):
                return
            deeper = _deepen(ctx, i, x)
            if deeper is not None and _accept(ctx, i, deeper, "milp+pgd"):
                return
        if st in (SolveStatus.TIME_LIMIT, SolveStatus.INTERRUPTED) or ctx.expired():
            ctx.timed_out = True
            return
    ctx.stats["binaries"] = n_bin
    if not ctx.open_cases:
        ctx.decided_by = "milp"


def _full_start(problem: Any, network: Network, x: FloatArray) -> FloatArray | None:
    """A complete MILP start from an input point (every column set by a forward pass)."""
    starter = getattr(problem, "start_from_input", None)
    if starter is None:
        return None
    try:
        return np.asarray(starter(network, x), dtype=np.float64)
    except Exception:  # a start is only a hint; never let it break a proof
        logger.debug("could not build a MILP start", exc_info=True)
        return None


#: seconds of branch and bound's own falsification (sampling + PGD) when the pipeline did not
#: run its attack stage before it
BAB_ATTACK_BUDGET = 0.2
#: ... and when it did: a budget that ends with the first round (which always runs, see
#: :func:`~nncert.verify.attack.falsify`)
BAB_ATTACK_FIRST_ROUND = 1e-6


def bab_stage(ctx: _Context) -> None:
    """Branch and bound over the open cases together (round robin between cases, so a
    witness in any case is found early); nodes close only on sound bounds."""

    open_now = list(ctx.open_cases)
    sub = Property(tuple(ctx.prop.cases[i] for i in open_now), name=ctx.prop.name)
    # after the pipeline's own PGD stage, branch and bound's falsification runs only its
    # first round (8192 samples, one PGD round from the best: it finds witnesses that the
    # stage missed); its further rounds cost 0.2 s of CPU on every unsat ACAS Xu instance
    attacked = any(s.name == "attack" for s in ctx.stages)
    opts = BabOptions(
        seed=ctx.options.seed,
        jobs=ctx.options.jobs,
        attack_budget_s=BAB_ATTACK_FIRST_ROUND if attacked else BAB_ATTACK_BUDGET,
    )
    ctx.say(f"bab: {len(open_now)} open case(s)")
    res = bab_verify(ctx.network, sub, time_limit=ctx.remaining(), options=opts)
    lows = list(res.margin_lower) + [None] * (len(open_now) - len(res.margin_lower))
    statuses = list(res.stats.get("cases", []))
    # the per-case proof trees of the search (``None`` where it recorded none), in sub's order
    proofs = list(res.stats.get("proofs", []))
    proofs += [None] * (len(open_now) - len(proofs))
    # per-case records (the certificate's evidence); the node count is the run's, on case 1
    records = [
        SearchCaseEvidence(
            i,
            "bab",
            statuses[j] if j < len(statuses) else res.verdict.value,
            lows[j],
            int(res.stats.get("nodes", 0)) if j == 0 else 0,
            proofs[j],
        )
        for j, i in enumerate(open_now)
    ]
    ctx.stats["bab"] = [
        {"case": r.case, "status": r.status, "lower_bound": r.lower_bound, "nodes": r.nodes}
        for r in records
    ]
    ctx.stats["bab_run"] = _jsonable_stats(res.stats)
    if res.verdict is Verdict.FALSIFIED and res.counterexample is not None:
        cex = res.counterexample
        if _accept(ctx, open_now[cex.case_index], cex.x, "bab"):
            return
    for j, i in enumerate(open_now):
        lb = lows[j]
        if res.verdict is Verdict.VERIFIED:
            ctx.close_case(i, float(lb) if lb is not None else 0.0, records[j])
        else:
            proven = lb if res.verdict is Verdict.UNKNOWN else None
            ctx.note_lower(i, None if proven is None else float(proven), records[j])
    if res.verdict is Verdict.UNKNOWN and (res.reason == "timeout" or ctx.expired()):
        ctx.timed_out = True
    if not ctx.open_cases:
        ctx.decided_by = "bab"


def _jsonable_stats(stats: Mapping[str, Any]) -> dict[str, Any]:
    return {
        k: v
        for k, v in stats.items()
        if isinstance(v, (int, float, str, bool, list)) and k != "proofs"
    }


#: share of the remaining budget that ``auto`` gives ReLU-phase branch and bound before the
#: MILP on high-dimensional ReLU networks (its wins on MNIST-FC took seconds)
RELU_BAB_SHARE = 0.4

#: ... and when the MILP of some open case would have more than
#: :data:`MILP_LARGE_BINARIES` binaries: such a MILP rarely closes a case in minutes (MNIST-FC
#: 256x4, 169 unstable ReLUs: no case closed in 60 s), while the search closed all nine cases
#: of that instance in 13 s; the MILP keeps the rest
RELU_BAB_LARGE_SHARE = 0.8

#: unstable ReLUs (see :func:`_unstable_relus`) above which ``auto`` gives ReLU-phase branch
#: and bound :data:`RELU_BAB_LARGE_SHARE` of the budget
MILP_LARGE_BINARIES = 128

#: ``auto`` on a high-dimensional ReLU network gives the MILP the first slice of the budget
#: when every open case has at most this many unstable ReLUs on its box (the MILP's binaries,
#: see :func:`_unstable_relus`): such a MILP is small, and it closed instances in 0.55 s on which
#: ReLU-phase branch and bound spent the whole budget (issue 15, item 5)
MILP_FIRST_BINARIES = 64

#: share of the remaining budget of that first MILP slice (the rest: branch and bound, then
#: the MILP again)
MILP_FIRST_SHARE = 0.25


#: share of the remaining budget that ``auto`` gives branch and bound over hidden-neuron bounds
#: (:mod:`nncert.verify.act_bab`) on high-dimensional networks with sigmoid, tanh or other
#: activations, before the Model 2 refinement loop takes the rest. Under ``auto`` the search
#: hands a case back early when its bound rises too slowly to close it in time (dist_shift:
#: after 10-20 s on the cases whose CROWN bound is -7 and worse, which Model 2's LP settles);
#: on a 6x200 MNIST sigmoid network it closed cases from -0.42 in 22 s that Model 2 never
#: closed
ACT_BAB_SHARE = 0.75

#: share of the remaining budget that ``auto`` gives Model 2 first on networks with sigmoid,
#: tanh or other activations, before :data:`ACT_BAB_SHARE`: dist_shift instances that Model 2
#: settles in 1-10 s took the search's 30 s probe first without it
MODEL2_FIRST_SHARE = 0.1

#: networks with more parameters count their unstable ReLUs under IBP bounds, not CROWN
#: (a CROWN pass over a large network takes seconds and cannot be interrupted; IBP counts
#: more neurons as unstable, so a small IBP count still means a small MILP)
CROWN_COUNT_PARAMETERS = 1_000_000


def _unstable_relus(ctx: _Context) -> int:
    """An upper bound on the binaries of the MILP of any open case: the most unstable ReLUs
    (bounds ``l < 0 < u`` on the case's input box; Model 1 needs no binary for a stable
    neuron, and its big-M bounds are CROWN's, never looser than IBP's).

    Networks with at most :data:`MILP_FIRST_BINARIES` hidden neurons are small without
    any bound; up to :data:`CROWN_COUNT_PARAMETERS` parameters the count is CROWN's (as the
    MILP's bounds), beyond it IBP's. Cases with the same box (a robustness property's) are
    bounded once."""
    net = ctx.network
    hidden = sum(d.n_out for d in net.dense_layers[:-1])
    if hidden <= MILP_FIRST_BINARIES:
        return hidden
    bounds_of = crown_bounds if net.n_parameters <= CROWN_COUNT_PARAMETERS else interval_bounds
    most = 0
    seen: set[tuple[bytes, bytes]] = set()
    for i in ctx.open_cases:
        box = ctx.prop.cases[i].input_box
        key = (box.lower.tobytes(), box.upper.tobytes())
        if key in seen:
            continue
        seen.add(key)
        layers = bounds_of(net, box).pre_activation[:-1]
        count = sum(int(np.count_nonzero((b.lower < 0.0) & (b.upper > 0.0))) for b in layers)
        most = max(most, count)
    return most


def _with_share(ctx: _Context, share: float, stage: Callable[[_Context], None]) -> None:
    """Run ``stage`` with ``share`` of the remaining budget as its deadline (all of it when
    there is no limit); afterwards the full deadline holds again and a timeout of the slice
    is forgotten (the run goes on)."""
    full = ctx.deadline
    rem = ctx.remaining()
    if rem is not None:
        ctx.deadline = time.perf_counter() + share * rem
    try:
        stage(ctx)
    finally:
        ctx.deadline, ctx.timed_out = full, False


def _decided(ctx: _Context) -> bool:
    return not ctx.open_cases or ctx.counterexample is not None


def auto_stage(ctx: _Context) -> None:
    """``auto``: input-split branch and bound for low-dimensional inputs (any activation: its
    nodes close on CROWN bounds); for high-dimensional ReLU networks ReLU-phase branch and
    bound with part of the budget (:data:`RELU_BAB_SHARE`, or :data:`RELU_BAB_LARGE_SHARE`
    when the MILP is large: more than :data:`MILP_LARGE_BINARIES` unstable ReLUs in some
    case), then the exact MILP (with a first slice of the budget before branch and bound when
    the MILP is small: at most :data:`MILP_FIRST_BINARIES` unstable ReLUs per case); for
    other piecewise-linear networks the MILP; for networks with sigmoid, tanh or other
    activations, the Model 2 refinement loop with a first slice of the budget
    (:data:`MODEL2_FIRST_SHARE`), branch and bound over hidden-neuron bounds with most of the
    rest (:data:`ACT_BAB_SHARE`), then Model 2 again.

    ``stats["auto_order"]`` lists the complete methods in the order they ran."""
    net = ctx.network
    order: list[str] = ctx.stats.setdefault("auto_order", [])
    if net.n_inputs <= ctx.options.bab_input_dims:
        order.append("bab")
        bab_stage(ctx)
    elif net.is_piecewise_linear:
        if net.activation_types <= {ReLU}:
            unstable = _unstable_relus(ctx)
            ctx.stats["auto_unstable_relus"] = unstable
            if unstable <= MILP_FIRST_BINARIES:
                order.append("milp")
                _with_share(ctx, MILP_FIRST_SHARE, milp_stage)
                if _decided(ctx):
                    return
            order.append("relu_bab")
            share = RELU_BAB_LARGE_SHARE if unstable > MILP_LARGE_BINARIES else RELU_BAB_SHARE
            _with_share(ctx, share, lambda c: _run_case_method(c, get_method("relu_bab")))
            if _decided(ctx):
                return
        order.append("milp")
        milp_stage(ctx)
    else:
        model2 = get_method("model2")
        order.append("model2")
        _with_share(ctx, MODEL2_FIRST_SHARE, lambda c: _run_case_method(c, model2))
        if _decided(ctx):
            return
        order.append("act_bab")
        _with_share(ctx, ACT_BAB_SHARE, lambda c: _run_case_method(c, get_method("act_bab")))
        if _decided(ctx):
            return
        order.append("model2")
        _run_case_method(ctx, model2)


# --------------------------------------------------------------------------------------------
# Registered case methods (QUBO, Benders, Model 2, windows, ReLU-phase search, plug-ins)
# --------------------------------------------------------------------------------------------


def _case_evidence(ctx: _Context, name: str, i: int, out: CaseOutcome) -> CaseEvidence:
    """The outcome's typed evidence (a solver record from its fields when it gives none),
    with ``case`` and ``method`` set to what actually ran."""
    if out.evidence is None and out.proof is not None:  # a search that recorded its tree
        nodes = out.stats.get("nodes")
        return SearchCaseEvidence(
            i,
            name,
            out.status,
            out.lower_bound if out.exact else None,
            nodes if isinstance(nodes, int) else 0,
            out.proof,
        )
    if out.evidence is None:
        binaries = out.stats.get("binaries")
        return SolverCaseEvidence(
            i,
            name,
            out.solver,
            bool(out.exact),
            out.status,
            None,
            out.lower_bound,
            ctx.options.milp_tolerance,
            binaries if isinstance(binaries, int) else None,
        )
    if not isinstance(out.evidence, BoundCaseEvidence | SolverCaseEvidence | SearchCaseEvidence):
        raise TypeError(f"method {name!r}: CaseOutcome.evidence {out.evidence!r} is no evidence")
    ev = dataclasses.replace(out.evidence, case=i, method=name)
    if isinstance(ev, SearchCaseEvidence) and ev.proof is None and out.proof is not None:
        ev = dataclasses.replace(ev, proof=out.proof)
    return ev


#: case methods whose open cases ``jobs > 1`` runs in parallel worker processes (their cases
#: are independent searches; forked workers look the method up in the inherited registry)
PARALLEL_CASE_METHODS = frozenset({"relu_bab", "act_bab"})

#: the parallel case runner forks its workers (they inherit the loaded network and modules;
#: where fork does not exist the cases run one after the other)
_FORK = "fork" in multiprocessing.get_all_start_methods()

#: seconds the parallel case runner waits past the deadline for a worker's answer before it
#: stops the workers (each worker stops at the deadline by itself)
PARALLEL_GRACE = 0.3


def _run_case_method(ctx: _Context, spec: MethodSpec) -> None:
    """Run the case method ``spec`` on every open case (``None`` leaves a case open; a case
    closes only on ``"verified"`` with ``exact=True``); with ``options.jobs > 1`` the cases of
    a method in :data:`PARALLEL_CASE_METHODS` run in worker processes
    (:func:`_run_cases_parallel`)."""
    name = spec.name
    if ctx.options.jobs > 1 and _FORK and name in PARALLEL_CASE_METHODS and len(ctx.open_cases) > 1:
        _run_cases_parallel(ctx, spec)
        return
    method: CaseMethod = spec.load()
    if ctx.options.jobs > 1 and _FORK and name == "relu_bab" and len(ctx.open_cases) == 1:
        # one case left: its search itself on the workers (its open nodes, once there are
        # enough, are searched in parallel and their trees grafted into one proof)
        jobs = int(ctx.options.jobs)

        def method(network: Network, case: UnsafeCase, cctx: CaseContext) -> CaseOutcome:
            return relu_bab_case_parallel(network, case, cctx, jobs=jobs)

    for k, i in enumerate(list(ctx.open_cases)):
        if ctx.expired():
            ctx.timed_out = True
            return
        case = ctx.prop.cases[i]
        ctx.say(f"{name}: case {k + 1}/{len(ctx.prop.cases)}")
        cctx = CaseContext(
            options=ctx.options,
            deadline=ctx.deadline,
            rng=ctx.rng,
            progress=ctx.progress,
            case_index=i,
            best_x=ctx.best_x.get(i),
        )
        if not _take_outcome(ctx, name, i, method(ctx.network, case, cctx)):
            return
    if not ctx.open_cases:
        ctx.decided_by = name


def _take_outcome(ctx: _Context, name: str, i: int, out: CaseOutcome | None) -> bool:
    """Record method ``name``'s outcome on case ``i``; ``False`` when the run should stop
    (a witness was accepted, or the case ran out of time)."""
    if out is None:
        out = CaseOutcome("unknown")
    elif not isinstance(out, CaseOutcome):
        raise TypeError(
            f"method {name!r} returned {type(out).__name__}; expected CaseOutcome or None"
        )
    ctx.stats.setdefault(name, []).append(
        {"case": i, "status": out.status, "lower_bound": out.lower_bound, **out.stats}
    )
    if out.solver:
        ctx.solver = out.solver
    for key in ("spins", "iterations"):
        if key in out.stats:
            ctx.stats[key] = ctx.stats.get(key, 0) + out.stats[key]
    if "master_solver" in out.stats:
        ctx.stats["master_solver"] = out.stats["master_solver"]
    ev = _case_evidence(ctx, name, i, out)
    if out.status == "verified" and out.exact:
        lb = out.lower_bound if out.lower_bound is not None else 0.0
        ctx.close_case(i, float(lb), ev)
        return True
    proven = out.lower_bound if out.exact else None
    ctx.note_lower(i, None if proven is None else float(proven), ev)
    if out.x is not None and _accept(ctx, i, np.asarray(out.x), name):
        return False
    if out.status == "timeout" or ctx.expired():
        ctx.timed_out = True
        return False
    return True


def _case_task(
    name: str,
    network: Network,
    case: UnsafeCase,
    options: VerifyOptions,
    wall_deadline: float | None,
    seed: tuple[int, int],
    case_index: int,
    best_x: FloatArray | None,
) -> CaseOutcome | None:
    """One case of the registered case method ``name``, in a worker process (forked: the
    registry is the parent's). ``wall_deadline`` is the run's deadline on the wall clock
    (:func:`time.time`), so a case that waited in the pool's queue still ends with the run;
    the worker's random stream is its own (``seed``: the run's seed and the case)."""
    cctx = CaseContext.in_worker(options, wall_deadline, list(seed), case_index, best_x)
    method: CaseMethod = get_method(name).load()
    out: CaseOutcome | None = method(network, case, cctx)
    return out


def _run_cases_parallel(ctx: _Context, spec: MethodSpec) -> None:
    """:func:`_run_case_method` with the open cases in ``options.jobs`` worker processes.

    Each worker runs whole cases (the method's own search, one BLAS thread) with the run's
    deadline; answers are taken as they come, exactly as the sequential loop takes them, so
    a case closes only on its own exact proof. A witness that replays stops the other
    workers at once; so does the deadline (plus :data:`PARALLEL_GRACE`). The verdict cannot
    depend on the number of workers, only on which cases finish in time.
    """
    from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait

    from nncert.verify.processes import pool_worker_init

    name = spec.name
    jobs = min(int(ctx.options.jobs), len(ctx.open_cases))
    ctx.say(f"{name}: {len(ctx.open_cases)} case(s) on {jobs} worker processes")
    pool = ProcessPoolExecutor(
        max_workers=jobs,
        mp_context=multiprocessing.get_context("fork"),
        initializer=pool_worker_init,
    )
    stop = False
    total, finished = len(ctx.open_cases), 0
    try:
        running: dict[Future[Any], int] = {}
        rem0 = ctx.remaining()
        wall_deadline = None if rem0 is None else time.time() + rem0
        for i in list(ctx.open_cases):
            fut = pool.submit(
                _case_task,
                name,
                ctx.network,
                ctx.prop.cases[i],
                ctx.options,
                wall_deadline,
                (int(ctx.options.seed), int(i)),
                int(i),
                ctx.best_x.get(i),
            )
            running[fut] = i
        while running and not stop:
            rem = ctx.remaining()
            done, _ = wait(
                list(running),
                timeout=None if rem is None else rem + PARALLEL_GRACE,
                return_when=FIRST_COMPLETED,
            )
            if not done:  # past the deadline: the workers did not answer in time
                ctx.timed_out = True
                break
            for fut in done:
                i = running.pop(fut)
                try:
                    out = fut.result()
                except Exception as exc:  # a worker that died: the case stays open
                    logger.debug("case %d in a worker failed: %r", i, exc)
                    out = CaseOutcome("unknown")
                if not _take_outcome(ctx, name, i, out):
                    if ctx.counterexample is not None:
                        stop = True
                        break
                    # a case ran out of time: the others share the deadline
                    ctx.timed_out = True
                finished += 1
                ctx.say(
                    f"{name}: {finished} of {total} case(s) finished "
                    f"({total - len(ctx.open_cases)} closed), {len(running)} running"
                )
    finally:
        for proc in list(getattr(pool, "_processes", {}).values()):
            proc.terminate()
        pool.shutdown(wait=True, cancel_futures=True)
    if not ctx.open_cases:
        ctx.decided_by = name


#: the presolve stages a method's :attr:`MethodSpec.presolve` may name
PRESOLVE: dict[str, Callable[[_Context], None]] = {
    "sample": sample_stage,
    "ibp": ibp_stage,
    "crown": crown_stage,
    "attack": attack_stage,
}


def _plan(options: VerifyOptions, spec: MethodSpec) -> tuple[str, ...]:
    """The presolve stages to run before ``spec`` (none with ``presolve=False``)."""
    plan = spec.presolve if options.presolve else ()
    if not options.attack:
        plan = tuple(s for s in plan if s not in ("sample", "attack"))
    return plan


#: networks with at most this many parameters run every stage with one BLAS thread: their
#: matrix products are too small to gain from threads, and waking idle BLAS threads cost
#: up to 0.1 s per product on a loaded 2-core machine (ACAS Xu's sampling stage)
SINGLE_THREAD_PARAMETERS = 100_000


def blas_threads(network: Network) -> int | None:
    """The BLAS thread cap for verifying ``network``: 1 for small networks (at most
    :data:`SINGLE_THREAD_PARAMETERS` parameters), ``None`` (leave as is) otherwise."""
    return 1 if network.n_parameters <= SINGLE_THREAD_PARAMETERS else None


def _run_steps(ctx: _Context, spec: MethodSpec, steps: list[str | None]) -> None:
    """Run the stages ``steps`` in order until one decides (``None`` is the method itself);
    each ends up in ``ctx.stages``."""
    for step in steps:
        # the --json stage name: the presolve stage, or the method ("complete" for auto)
        name = step if step is not None else ("complete" if spec.name == "auto" else spec.name)
        if ctx.counterexample is not None or not ctx.open_cases:
            break
        if ctx.expired():
            ctx.timed_out = True
            break
        ctx.say(f"{name}: {len(ctx.open_cases)} open case(s)")
        s0 = time.perf_counter()
        before = len(ctx.open_cases)
        if step is not None:
            PRESOLVE[step](ctx)
        elif spec.stage:
            spec.load()(ctx)
        else:
            _run_case_method(ctx, spec)
        outcome = (
            "falsified"
            if ctx.counterexample is not None
            else ("verified" if not ctx.open_cases else f"{before - len(ctx.open_cases)} closed")
        )
        ctx.stages.append(StageStat(name, time.perf_counter() - s0, outcome))


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------


def verify(
    network: Network,
    prop: Property | MixedProperty | PolynomialProperty,
    options: VerifyOptions | Mapping[str, Any] | None = None,
    *,
    progress: ProgressFn | None = None,
    **overrides: Any,
) -> VerificationResult:
    """Verify ``prop`` on ``network``.

    A :class:`~nncert.verify.spec.MixedProperty` (constraints over inputs too) is decided on
    the network ``[f(x); x]`` (:func:`~nncert.verify.lowering.lower_property`, exact in real
    arithmetic); its counterexample reports the input and ``f``'s own outputs. A
    :class:`~nncert.verify.spec.PolynomialProperty` (products of variables) is decided on the
    network ``[f(x); x; monomials]``
    (:func:`~nncert.verify.lowering.lower_polynomial`, exact in real arithmetic); on networks
    that cannot carry their inputs, terms in the inputs alone are relaxed soundly and a product
    of an output and an input gives UNKNOWN (reason ``"unsupported"``).

    Args:
        network: the network.
        prop: the property (unsafe cases; see :mod:`nncert.verify.spec`).
        options: a :class:`VerifyOptions`, a mapping for it, or ``None`` (defaults).
        progress: optional callback receiving one-line progress messages.
        **overrides: option fields to override (``method="milp"``, ``time_limit=10``,
            ``presolve=False`` to run only the named method).

    The network is put in normal form once, here (:meth:`Network.normalized`); every stage
    works on that, and counterexamples are confirmed on ``network`` itself.

    Returns:
        The :class:`VerificationResult`: VERIFIED, FALSIFIED (with a confirmed witness) or
        UNKNOWN (with a reason). Never raises for "unknown" or timeouts.

    Raises:
        InvalidPropertyError: the property does not fit the network.
        InvalidOptionsError: an unknown or invalid option.
    """
    if options is None:
        opts = VerifyOptions()
    elif isinstance(options, VerifyOptions):
        opts = options
    elif isinstance(options, Mapping):
        opts = VerifyOptions.from_mapping(options)
    else:
        raise InvalidOptionsError(f"options={options!r} must be VerifyOptions or a mapping")
    if overrides:
        opts = VerifyOptions.from_mapping({**asdict(opts), **overrides})
    check_solver_fits_method(opts)
    if not isinstance(network, Network):
        raise InvalidOptionsError(f"network must be a Network, got {type(network).__name__}")
    if isinstance(prop, MixedProperty):
        return _verify_mixed(network, prop, opts, progress)
    if isinstance(prop, PolynomialProperty):
        return _verify_polynomial(network, prop, opts, progress)
    if not isinstance(prop, Property):
        raise InvalidPropertyError(f"prop must be a Property, got {type(prop).__name__}")
    prop.check_network_shape(network.n_inputs, network.n_outputs)
    spec = get_method(opts.method)

    t0 = time.perf_counter()
    deadline = None if opts.time_limit is None else t0 + float(opts.time_limit)
    n = len(prop.cases)
    ctx = _Context(
        network=network.normalized(),
        replay_network=network,
        prop=prop,
        options=opts,
        t0=t0,
        deadline=deadline,
        rng=np.random.default_rng(opts.seed),
        progress=progress,
        open_cases=list(range(n)),
        lower=[None] * n,
        upper=[None] * n,
    )
    # the presolve stages, then the method itself (``None``); a built-in stage method is a
    # function of the run state, any other a case method run on every open case
    steps: list[str | None] = [*_plan(opts, spec), None]
    with limit_blas(blas_threads(ctx.network)):
        _run_steps(ctx, spec, steps)

    disagreement = None if ctx.open_cases or ctx.counterexample else _float32_disagreement(ctx)
    if disagreement is not None:
        ctx.stats["float32_disagreement"] = disagreement
    elapsed = time.perf_counter() - t0
    if ctx.counterexample is not None:
        verdict, reason = Verdict.FALSIFIED, ctx.decided_by
    elif disagreement is not None:
        verdict, reason = Verdict.UNKNOWN, "float32_disagreement"
    elif not ctx.open_cases:
        verdict, reason = Verdict.VERIFIED, ctx.decided_by
    elif ctx.timed_out or ctx.expired():
        verdict, reason = Verdict.UNKNOWN, "timeout"
    else:
        verdict = Verdict.UNKNOWN
        reason = "unconfirmed_counterexample" if ctx.unconfirmed else "inconclusive"
    stats = dict(ctx.stats)
    stats["cases"] = n
    stats["open_cases"] = list(ctx.open_cases)
    return VerificationResult(
        verdict=verdict,
        reason=reason,
        counterexample=ctx.counterexample,
        margin_lower=tuple(ctx.lower),
        margin_upper=tuple(ctx.upper),
        method=ctx.decided_by if verdict is not Verdict.UNKNOWN else opts.method,
        solver=ctx.solver,
        time=elapsed,
        stages=tuple(ctx.stages),
        stats=stats,
        evidence=ctx.evidence(),
    )


#: a proven margin below this share of the case's scale (``1 + |b|`` plus the size of the terms
#: its rows sum in the last layer, :func:`_output_magnitude`) is within what float32 execution
#: can move: the ONNX model is then run in onnxruntime at the case's best-known points before
#: "verified" is answered (weights of 1e4 on inputs of 1e3 made onnxruntime output 0 where the
#: exact value is 0.25, for a threshold of 0.125)
FLOAT32_NOISE = 1e-4


def _output_magnitude(network: Network, case: UnsafeCase, xs: FloatArray) -> float:
    """``max |A| (|W_L| |a_{L-1}| + |b_L|)`` over the points ``xs``: the size of the terms the
    case's rows sum in the last layer (a margin that is a small difference of large terms is
    where float32 rounding shows), from a float64 forward pass of the normal form."""
    hidden = network.layers[:-1]
    last = network.dense_layers[-1]  # the normal form ends with this Dense layer
    a = network.replace_layers(hidden).forward(xs) if hidden else xs
    terms = matmul_right(np.abs(a), abs_weight(last.weight).T) + np.abs(last.bias)
    return float(np.max(terms @ np.abs(case.A).T))


def _float32_disagreement(ctx: _Context) -> str | None:
    """Why "verified" would contradict the model as onnxruntime executes it, else ``None``.

    Every case is proven in exact arithmetic over the stored weights. Where a case's proven
    margin is within :data:`FLOAT32_NOISE` of the outputs' scale, the ONNX model is run at
    the case's best-known point and its box centre; a violation there (the float32 model
    puts that input in the unsafe region) makes the answer unknown rather than a "verified"
    that the deployed model contradicts (a "sat" also needs the float64 replay, so neither
    answer is given). Only for networks read from ONNX with replay on; a few onnxruntime
    runs, only for cases that close within the noise."""
    net = ctx.replay_network
    if not (ctx.options.onnx_replay and is_onnx_source(net.source)):
        return None
    for i, case in enumerate(ctx.prop.cases):
        if case.n_rows == 0:  # never closed (every input is unsafe)
            continue
        lb = ctx.lower[i]
        points = [case.input_box.center]
        if i in ctx.best_x:
            points.insert(0, ctx.best_x[i])
        xs = np.stack([np.clip(p, case.input_box.lower, case.input_box.upper) for p in points])
        try:
            scale = 1.0 + float(np.max(np.abs(case.b)))
            scale += _output_magnitude(ctx.network, case, xs)
            if lb is not None and lb > FLOAT32_NOISE * scale:
                continue
            y32 = onnxruntime_forward(str(net.source), xs)
        except Exception:  # an extra check: a model onnxruntime cannot run proves nothing here
            return None
        bad = np.flatnonzero(case.violation(np.asarray(y32, dtype=np.float64)) <= 0.0)
        if bad.size:
            return (
                f"case {i}: proven margin {lb if lb is not None else 0.0:.3g} in exact "
                "arithmetic, but onnxruntime (float32) puts an input of the box in the unsafe "
                "region"
            )
    return None


def _verify_mixed(
    network: Network,
    prop: MixedProperty,
    opts: VerifyOptions,
    progress: ProgressFn | None,
) -> VerificationResult:
    """:func:`verify` for constraints over the inputs: decide the lowered property on the
    network carrying its inputs; the witness (replayed on ``[f(x); x]`` with ``f`` as given,
    i.e. against the original constraints) keeps ``x`` and ``f(x)`` only."""
    try:
        carry, lowered = lower_property(network, prop)
    except InvalidPropertyError as err:
        if prop.n_inputs != network.n_inputs or prop.n_outputs != network.n_outputs:
            raise
        logger.info("relaxing the rows over inputs: %s", err)
        return _verify_relaxed(network, prop, opts, progress)
    result = verify(carry, lowered, opts, progress=progress)
    carried = prop.n_inputs if carry is not network else 0  # 0: no row needed the inputs
    stats = {**result.stats, "carried_inputs": carried}
    cex = result.counterexample
    if cex is not None:
        cex = dataclasses.replace(cex, y=np.asarray(cex.y)[: prop.n_outputs].copy())
    return dataclasses.replace(result, counterexample=cex, stats=stats)


def _verify_relaxed(
    network: Network,
    prop: MixedProperty,
    opts: VerifyOptions,
    progress: ProgressFn | None,
) -> VerificationResult:
    """:func:`verify` for constraints over the inputs on a network that cannot carry them
    (Sigmoid, Tanh): decide :func:`~nncert.verify.lowering.relax_property` (a superset of
    the unsafe set, so VERIFIED carries over) and believe a witness only if it satisfies the
    original rows on ``[f(x); x]``, in float64 and in onnxruntime (else UNKNOWN)."""
    result = verify(network, relax_property(prop), opts, progress=progress)
    stats = {**result.stats, "relaxed_input_rows": True}
    return _believe_relaxed(
        network, prop.cases, result, stats, opts, lambda x, y: np.concatenate([y, x])
    )


def _verify_polynomial(
    network: Network,
    prop: PolynomialProperty,
    opts: VerifyOptions,
    progress: ProgressFn | None,
) -> VerificationResult:
    """:func:`verify` for polynomial constraints: decide the lowered property on
    ``h = [z_S; m]`` (:func:`~nncert.verify.lowering.normalize_polynomial_rows`, then
    :func:`~nncert.verify.lowering.lower_polynomial` with carry offsets chosen from sound
    interval bounds of ``f`` on the hull). VERIFIED carries over (``h`` is exact in real
    arithmetic). A witness has been replayed on ``h`` with ``f`` as given (and in onnxruntime
    for ONNX models), i.e. against the original constraints in float64; it is checked once more
    here on ``[f(x); x]`` with every column, and dropped (UNKNOWN) if it fails. A network that
    cannot carry its inputs (Sigmoid, Tanh) decides
    :func:`~nncert.verify.lowering.relax_polynomial` instead (:func:`_verify_relaxed_poly`);
    when that does not exist either (products of outputs and inputs), the answer is UNKNOWN
    with reason ``"unsupported"``."""
    prop.check_network_shape(network.n_inputs, network.n_outputs)
    simple = normalize_polynomial_rows(prop)
    try:
        out = interval_bounds(network, simple.input_hull()).output
        carry, lowered = lower_polynomial(network, simple, (out.lower, out.upper))
    except InvalidPropertyError as err:
        logger.info("polynomial constraints: %s; relaxing the input terms", err)
        return _verify_relaxed_poly(network, prop, simple, opts, progress)
    result = verify(carry, lowered, opts, progress=progress)
    stats = {**result.stats, "monomials": len(prop.monomials)}
    cex = result.counterexample
    if cex is not None:
        x = np.asarray(cex.x, dtype=np.float64).reshape(-1)
        y = network.forward(x)
        case = prop.cases[cex.case_index]
        viol = float(case.violation(prop.columns(x, y).reshape(1, -1))[0])
        if not (case.input_box.contains(x) and viol <= 0.0):  # pragma: no cover - replayed
            stats["unconfirmed"] = 1
            return dataclasses.replace(
                result,
                verdict=Verdict.UNKNOWN,
                reason="unconfirmed_counterexample",
                counterexample=None,
                stats=stats,
            )
        cex = dataclasses.replace(cex, y=y, violation=viol)
    return dataclasses.replace(result, counterexample=cex, stats=stats)


def _verify_relaxed_poly(
    network: Network,
    prop: PolynomialProperty,
    simple: PolynomialProperty,
    opts: VerifyOptions,
    progress: ProgressFn | None,
) -> VerificationResult:
    """Polynomial constraints on a network that cannot carry its inputs: decide
    :func:`~nncert.verify.lowering.relax_polynomial` (a superset of the unsafe set, so
    VERIFIED carries over) and believe a witness only if it satisfies the original polynomial
    rows on ``[f(x); x]`` in float64 and in onnxruntime (else UNKNOWN). No relaxation (a
    product of an output and an input): UNKNOWN, reason ``"unsupported"``."""
    t0 = time.perf_counter()
    n = len(prop.cases)
    target: Network
    lowered: Property
    try:
        relaxed = relax_polynomial(simple)
        if isinstance(relaxed, PolynomialProperty):  # products of outputs: no carry needed
            out = interval_bounds(network, relaxed.input_hull()).output
            target, lowered = lower_polynomial(network, relaxed, (out.lower, out.upper))
        else:
            target, lowered = network, relaxed
    except InvalidPropertyError as err:
        logger.info("polynomial constraints not decided: %s", err)
        return VerificationResult(
            verdict=Verdict.UNKNOWN,
            reason="unsupported",
            margin_lower=(None,) * n,
            margin_upper=(None,) * n,
            method=opts.method,
            time=time.perf_counter() - t0,
            stats={"cases": n, "monomials": len(prop.monomials), "unsupported": str(err)},
        )
    result = verify(target, lowered, opts, progress=progress)
    stats = {**result.stats, "monomials": len(prop.monomials), "relaxed_input_terms": True}
    return _believe_relaxed(network, prop.cases, result, stats, opts, prop.columns)


def _believe_relaxed(
    network: Network,
    cases: tuple[UnsafeCase, ...],
    result: VerificationResult,
    stats: dict[str, Any],
    opts: VerifyOptions,
    columns: Callable[[FloatArray, FloatArray], FloatArray],
) -> VerificationResult:
    """The answer for the original ``cases`` from ``result``, decided on a relaxation of them
    (a superset of the unsafe set): VERIFIED carries over; a witness only if it violates the
    original rows, read on ``columns(x, y)``, with ``y`` from the float64 forward pass and from
    onnxruntime (ONNX models); otherwise UNKNOWN, without the relaxed rows' upper margins."""
    if result.verdict is Verdict.VERIFIED:
        return dataclasses.replace(result, stats=stats)
    n = len(cases)
    cex = result.counterexample
    if cex is not None:
        case = cases[cex.case_index]
        x = np.asarray(cex.x, dtype=np.float64).reshape(-1)
        outs = [network.forward(x)]
        if opts.onnx_replay and is_onnx_source(network.source):
            assert network.source is not None
            outs.append(onnxruntime_forward(network.source, x.reshape(1, -1))[0])
        viol = [float(case.violation(columns(x, y).reshape(1, -1))[0]) for y in outs]
        if case.input_box.contains(x) and max(viol) <= 0.0:
            cex = dataclasses.replace(cex, y=outs[0], violation=viol[0])
            return dataclasses.replace(result, counterexample=cex, stats=stats)
        stats["unconfirmed"] = 1
    return dataclasses.replace(
        result,
        verdict=Verdict.UNKNOWN,
        reason="unconfirmed_counterexample" if cex is not None else result.reason,
        counterexample=None,
        margin_upper=(None,) * n,  # values of the relaxed rows, not of the original ones
        stats=stats,
    )


__all__ = [
    "PRESOLVE",
    "CaseContext",
    "CaseMethod",
    "CaseOutcome",
    "attack_stage",
    "auto_stage",
    "bab_stage",
    "crown_stage",
    "ibp_stage",
    "milp_stage",
    "sample_stage",
    "verify",
]
