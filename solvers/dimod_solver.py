"""One adapter for every dimod sampler: simulated annealing, tabu, steepest descent, exact, QPU.

:class:`DimodSolver` wraps *any* ``dimod.Sampler`` (composites included) and implements the
:class:`~nncert.solvers.base.QuboSolver` protocol: ``solve(problem, time_limit=None)`` returns a
:class:`~nncert.solvers.base.SolveResult` with ``objective`` = the best energy, ``x`` = the best
sample (ordered by variable ``0..N-1``), ``bound`` = the best energy only when the sampler is
``exact`` (``None`` otherwise), and ``info`` with ``time``, ``num_reads``, ``num_samples`` and the
distinct samples sorted by energy (``samples``, ``energies``; at most ``keep_samples``).

Factories (registry names in brackets, problem kind ``"qubo"``):

* :func:`simulated_annealing` [``sa``]: ``dwave.samplers.SimulatedAnnealingSampler`` with explicit
  ``num_reads`` and ``seed`` (its defaults are 1 read and a random seed); the time limit is
  enforced with ``interrupt_function`` (polled between reads).
* :func:`tabu` [``tabu``]: ``dwave.samplers.TabuSampler`` (``timeout`` per read in ms, derived
  from the time limit).
* :func:`steepest_descent` [``steepest``]: ``dwave.samplers.SteepestDescentSampler`` (a cheap
  local polish).
* :func:`exact`: ``dimod.ExactSolver`` (``exact=True``); refuses more than
  :data:`EXACT_MAX_VARIABLES` variables (dimod warns it becomes slow around 18).
* :func:`exact_qubo` [``exact-qubo``]: :class:`ExactQuboSolver`, exact at any size (structured
  branch and bound for Benders-master QUBOs, ``dimod.ExactSolver`` up to 20 variables, a
  linearised MILP beyond).

A QPU or any other sampler works the same way (dwave-system is not a dependency)::

    from dwave.system import DWaveSampler, EmbeddingComposite
    solver = DimodSolver(EmbeddingComposite(DWaveSampler()), exact=False, name="qpu",
                         num_reads=100)

dwave-neal is not used: it only re-exports ``dwave.samplers``' annealer.
"""

from __future__ import annotations

import importlib
import time
from typing import Any, ClassVar

import dimod
import numpy as np

from nncert.formulations.milp import MilpProblem
from nncert.formulations.qubo import QuboProblem
from nncert.solvers.base import SolveResult, SolveStatus
from nncert.solvers.exact_qubo import minimise_master_qubo, structured_info
from nncert.solvers.highs_solver import HighsSolver
from nncert.verify.errors import InvalidOptionsError, SolverUnavailableError

#: ``exact()`` refuses larger problems (2^N states).
EXACT_MAX_VARIABLES = 20


class DimodSolver:
    """Adapter from a dimod sampler to the QUBO solver protocol.

    Args:
        sampler: any ``dimod.Sampler`` (``sample(bqm, **kwargs) -> SampleSet``).
        exact: whether the sampler's lowest energy is the proven minimum (``ExactSolver``).
        name: name for reports and the registry.
        max_variables: refuse larger problems (``None``: no limit).
        keep_samples: how many distinct samples (lowest energy first) go into ``info``.
        **sample_kwargs: passed to ``sampler.sample`` on every call (unknown names make dimod
            warn, as its samplers do).

    Attributes:
        problem_kind: ``"qubo"`` (how composite solvers tell QUBO masters from MILP ones).
    """

    problem_kind = "qubo"

    def __init__(
        self,
        sampler: Any,
        *,
        exact: bool,
        name: str,
        max_variables: int | None = None,
        keep_samples: int = 32,
        **sample_kwargs: Any,
    ) -> None:
        if not hasattr(sampler, "sample"):
            raise InvalidOptionsError(f"DimodSolver: {sampler!r} has no sample() method")
        self.sampler = sampler
        self.exact = bool(exact)
        self.name = str(name)
        self.max_variables = max_variables
        self.keep_samples = int(keep_samples)
        self.sample_kwargs = dict(sample_kwargs)

    def __repr__(self) -> str:
        return (
            f"DimodSolver({type(self.sampler).__name__}, exact={self.exact}, name={self.name!r}, "
            f"{self.sample_kwargs!r})"
        )

    def _time_kwargs(self, time_limit: float | None) -> dict[str, Any]:
        if time_limit is None:
            return {}
        params = getattr(self.sampler, "parameters", {}) or {}
        deadline = time.perf_counter() + float(time_limit)
        out: dict[str, Any] = {}
        if "interrupt_function" in params and "interrupt_function" not in self.sample_kwargs:
            out["interrupt_function"] = lambda: time.perf_counter() >= deadline
        if "timeout" in params:
            reads = int(self.sample_kwargs.get("num_reads") or 1)
            per_read_ms = max(1, int(1000.0 * float(time_limit) / max(reads, 1)))
            out["timeout"] = min(int(self.sample_kwargs.get("timeout", per_read_ms)), per_read_ms)
        return out

    def solve(
        self,
        problem: QuboProblem | dimod.BinaryQuadraticModel,
        /,
        *,
        time_limit: float | None = None,
    ) -> SolveResult:
        """Minimise ``problem`` (a :class:`QuboProblem` or a BINARY BQM on ``0..N-1``).

        Returns:
            ``status`` OPTIMAL (exact) or FEASIBLE (heuristic); ``objective`` the best energy;
            ``bound`` the same for exact samplers, else ``None``; ``x`` the best sample.
        """
        if time_limit is not None and not time_limit > 0:
            raise InvalidOptionsError(f"{self.name}: time_limit={time_limit!r} must be > 0")
        if isinstance(problem, QuboProblem):
            bqm = problem.to_bqm()
            n = problem.num_variables
        elif isinstance(problem, dimod.BinaryQuadraticModel):
            bqm = (
                problem
                if problem.vartype is dimod.BINARY
                else problem.change_vartype(dimod.BINARY, inplace=False)
            )
            n = bqm.num_variables
        else:
            raise InvalidOptionsError(
                f"{self.name}: expected a QuboProblem or a BQM, got {type(problem).__name__}"
            )
        if self.max_variables is not None and n > self.max_variables:
            raise InvalidOptionsError(
                f"{self.name}: the problem has {n} variables but this solver accepts at most "
                f"{self.max_variables} (exact enumeration of 2^{n} states); use 'sa' or 'tabu'"
            )
        t0 = time.perf_counter()
        if n == 0:
            e = float(bqm.offset)
            return SolveResult(
                SolveStatus.OPTIMAL,
                e,
                e,
                np.zeros(0),
                solver=self.name,
                info={"time": 0.0, "num_reads": 0, "num_samples": 0},
            )
        kwargs = {**self.sample_kwargs, **self._time_kwargs(time_limit)}
        # samplers derive temperatures from the bias magnitudes: give them a BQM scaled by a
        # power of two (exact; the argmin is unchanged) whose largest bias is about 1, and a
        # BQM without biases (every state has the same energy) one zero state
        vec = bqm.to_numpy_vectors()
        lin_b, quad_b = vec[0], vec[1][2]
        biases = np.abs(
            np.concatenate([np.asarray(lin_b, np.float64), np.asarray(quad_b, np.float64)])
        )
        top_bias = float(biases.max(initial=0.0))
        if not top_bias > 0.0 or not np.isfinite(top_bias):
            e = float(bqm.energy({v: 0 for v in bqm.variables}))
            return SolveResult(
                SolveStatus.OPTIMAL if np.isfinite(top_bias) else SolveStatus.ERROR,
                e,
                e if self.exact and np.isfinite(top_bias) else None,
                np.zeros(n),
                solver=self.name,
                info={
                    "time": 0.0,
                    "num_reads": 0,
                    "num_samples": 1,
                    "samples": np.zeros((1, n), dtype=np.int8),
                },
            )
        shift = -int(np.round(np.log2(top_bias)))
        sample_bqm = bqm
        if shift != 0:
            sample_bqm = bqm.copy()
            sample_bqm.scale(2.0**shift)
        sampleset = self.sampler.sample(sample_bqm, **kwargs)
        elapsed = time.perf_counter() - t0
        order = list(range(n))
        X = np.asarray(sampleset.record.sample)
        col = {v: i for i, v in enumerate(sampleset.variables)}
        perm = np.array([col[v] for v in order], dtype=np.int64)
        energies = np.asarray(sampleset.record.energy, dtype=np.float64) * 2.0**-shift
        # candidates: the lowest sampler energies; re-evaluate them in float64 (numpy form)
        k = min(energies.size, 4 * max(self.keep_samples, 1))
        top = np.argpartition(energies, k - 1)[:k] if k < energies.size else np.arange(k)
        Xt = X[top][:, perm]
        if bqm.vartype is dimod.SPIN:  # pragma: no cover - BINARY above
            Xt = (Xt + 1) // 2
        et = problem.energies(Xt) if isinstance(problem, QuboProblem) else energies[top]
        uniq, first = np.unique(Xt, axis=0, return_index=True)
        e_u = et[first]
        rank = np.argsort(e_u, kind="stable")
        best_x, e_best = uniq[rank[0]], float(e_u[rank[0]])
        rank = rank[: self.keep_samples]
        status = SolveStatus.OPTIMAL if self.exact else SolveStatus.FEASIBLE
        info = {
            "time": elapsed,
            "num_reads": int(np.sum(sampleset.record.num_occurrences)),
            "num_samples": int(energies.size),
            "num_variables": n,
            "samples": uniq[rank].astype(np.int8),
            "energies": e_u[rank],
            "sampler": type(self.sampler).__name__,
            "status_text": "exhaustive" if self.exact else "heuristic",
        }
        timing = getattr(sampleset, "info", {}).get("timing")
        if timing is not None:
            info["timing"] = timing
        return SolveResult(
            status,
            e_best,
            e_best if self.exact else None,
            best_x.astype(np.float64),
            solver=self.name,
            info=info,
        )


def simulated_annealing(
    *,
    num_reads: int = 100,
    seed: int | None = 0,
    num_sweeps: int = 1000,
    beta_range: tuple[float, float] | None = None,
    **kwargs: Any,
) -> DimodSolver:
    """``dwave.samplers.SimulatedAnnealingSampler`` [``sa``] with explicit reads and seed.

    Set ``beta_range`` by hand for penalty-heavy QUBOs (the automatic range can be very wide,
    ECOSYSTEM.md 8.2).
    """
    from dwave.samplers import SimulatedAnnealingSampler

    extra: dict[str, Any] = {} if beta_range is None else {"beta_range": tuple(beta_range)}
    return DimodSolver(
        SimulatedAnnealingSampler(),
        exact=False,
        name="sa",
        num_reads=int(num_reads),
        seed=seed,
        num_sweeps=int(num_sweeps),
        **extra,
        **kwargs,
    )


def tabu(
    *, num_reads: int = 5, seed: int | None = 0, timeout: int = 20, **kwargs: Any
) -> DimodSolver:
    """``dwave.samplers.TabuSampler`` [``tabu``]; ``timeout`` in ms per read."""
    from dwave.samplers import TabuSampler

    return DimodSolver(
        TabuSampler(),
        exact=False,
        name="tabu",
        num_reads=int(num_reads),
        seed=seed,
        timeout=int(timeout),
        **kwargs,
    )


def steepest_descent(*, num_reads: int = 100, seed: int | None = 0, **kwargs: Any) -> DimodSolver:
    """``dwave.samplers.SteepestDescentSampler`` [``steepest``] (greedy local descent)."""
    from dwave.samplers import SteepestDescentSampler

    return DimodSolver(
        SteepestDescentSampler(),
        exact=False,
        name="steepest",
        num_reads=int(num_reads),
        seed=seed,
        **kwargs,
    )


def named_sampler(
    *, sampler: str, num_reads: int | None = None, seed: int | None = None, **kwargs: Any
) -> DimodSolver:
    """Any dimod sampler by its import path [``dimod:PACKAGE.Class``], e.g.
    ``dimod:dwave.samplers.TabuSampler`` or ``dimod:dwave.system.DWaveSampler``.

    The class is imported lazily and built without arguments. A *structured* sampler (a QPU:
    ``dimod.Structured``, e.g. ``dwave.system.DWaveSampler``, which needs a configured D-Wave
    account) is wrapped in ``dwave.system.EmbeddingComposite`` so that any QUBO is minor-embedded
    on its working graph; dwave-system is not a dependency of nncert. ``num_reads`` and ``seed``
    are passed only when the sampler's ``parameters`` name them. The result is never exact.

    Raises:
        SolverUnavailableError: when the module cannot be imported.
        InvalidOptionsError: for a malformed path or an object that is no sampler.
    """
    module, dot, attr = str(sampler).rpartition(".")
    if not (module and dot and attr):
        raise InvalidOptionsError(
            f"dimod:{sampler}: name the sampler class as PACKAGE.Class, e.g. "
            "dimod:dwave.samplers.SimulatedAnnealingSampler"
        )
    try:
        cls = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as err:
        raise SolverUnavailableError(f"dimod:{sampler}: cannot import it ({err})") from err
    # only a sampler class is ever called: a path naming another callable (os.system,
    # subprocess.Popen, ...) must not run it
    if not (isinstance(cls, type) and issubclass(cls, dimod.Sampler)):
        raise InvalidOptionsError(
            f"dimod:{sampler} is not a dimod sampler class (a subclass of dimod.Sampler)"
        )
    inst = cls()
    if isinstance(inst, dimod.Structured):
        try:
            from dwave.system import EmbeddingComposite
        except ImportError as err:  # pragma: no cover - needs dwave-system
            raise SolverUnavailableError(
                f"dimod:{sampler} is a structured sampler (a QPU graph); embedding it needs "
                "dwave-system: pip install dwave-system"
            ) from err
        inst = EmbeddingComposite(inst)  # pragma: no cover - needs dwave-system
    if not hasattr(inst, "sample"):
        raise InvalidOptionsError(f"dimod:{sampler} is not a dimod sampler (no sample())")
    params = getattr(inst, "parameters", {}) or {}
    extra = dict(kwargs)
    if num_reads is not None and "num_reads" in params:
        extra["num_reads"] = int(num_reads)
    if seed is not None and "seed" in params:
        extra["seed"] = seed
    if "timeout" in params and "timeout" not in extra:
        extra["timeout"] = 20  # ms per read, as :func:`tabu` (TabuSampler's default is 100)
    return DimodSolver(inst, exact=False, name=f"dimod:{sampler}", **extra)


class SizeRecordingComposite(dimod.ComposedSampler):
    """A composite that records the size of every BQM it forwards to its child sampler.

    For tests and audits of the spin budget: ``sizes`` lists ``bqm.num_variables`` of every
    ``sample`` call; the child (any real sampler, simulated annealing by default) does the
    work. ``dimod:nncert.solvers.dimod_solver.SizeRecordingComposite`` names it; the class
    attribute ``log`` keeps the sizes of every instance of the process.
    """

    log: ClassVar[list[int]] = []

    def __init__(self, child: Any | None = None) -> None:
        if child is None:
            from dwave.samplers import SimulatedAnnealingSampler

            child = SimulatedAnnealingSampler()
        self._children = [child]
        self.sizes: list[int] = []

    @property
    def children(self) -> list[Any]:
        return self._children

    @property
    def parameters(self) -> dict[str, Any]:
        params: dict[str, Any] = dict(self._children[0].parameters or {})
        return params

    @property
    def properties(self) -> dict[str, Any]:
        props: dict[str, Any] = dict(self._children[0].properties or {})
        return {"child_properties": props}

    def sample(self, bqm: Any, **kwargs: Any) -> Any:
        self.sizes.append(int(bqm.num_variables))
        SizeRecordingComposite.log.append(int(bqm.num_variables))
        return self._children[0].sample(bqm, **kwargs)


def exact(*, max_variables: int = EXACT_MAX_VARIABLES) -> DimodSolver:
    """``dimod.ExactSolver``: exhaustive, ``exact=True``, at most ``max_variables`` (20)."""
    if max_variables > 26:
        raise InvalidOptionsError(f"exact: max_variables={max_variables} is too large (2^N)")
    return DimodSolver(
        dimod.ExactSolver(), exact=True, name="exact-qubo", max_variables=int(max_variables)
    )


def exact_qubo(**kwargs: Any) -> ExactQuboSolver:
    """:class:`ExactQuboSolver` (registry name ``exact-qubo``)."""
    return ExactQuboSolver(**kwargs)


class ExactQuboSolver:
    r"""Exact QUBO minimisation at any size [``exact-qubo``].

    Three exact methods, in this order:

    1. a Benders-master QUBO (it carries ``meta["master_form"]``) is minimised by structured
       branch and bound (:mod:`nncert.solvers.exact_qubo`: slack in closed form, ``eta`` over a
       rigorous window, ``delta`` by pruned prefix enumeration); the returned state is
       re-evaluated on the BQM itself. Like a MILP solver it stops at an absolute ``gap``
       (default: the problem's ``meta["energy_gap"]``, the slack-rounding allowance
       ``P K w_s^2 / 4`` of a master QUBO; ``gap=0`` for the exact ground state) and reports
       the proven lower bound as ``bound``;
    2. ``dimod.ExactSolver`` up to ``enumerate_up_to`` variables;
    3. a linearised MILP on HiGHS beyond (slow for penalty QUBOs: its relaxation is weak).

    The linearisation is exact for binary :math:`x`: each coupler :math:`x_i x_j` becomes a
    column :math:`y_{ij} \in [0, 1]` with the McCormick rows :math:`y \le x_i`,
    :math:`y \le x_j`, :math:`y \ge x_i + x_j - 1`, so
    :math:`\min\; c + h^T x + \sum J_{ij} y_{ij}` equals the QUBO minimum. ``bound`` is the
    proven dual bound (never above the optimum); the result is OPTIMAL only when HiGHS proves
    optimality, otherwise it carries no bound.
    """

    name = "exact-qubo"
    exact = True
    problem_kind = "qubo"
    max_variables: int | None = None

    def __init__(
        self,
        *,
        enumerate_up_to: int = EXACT_MAX_VARIABLES,
        structured: bool = True,
        gap: float | None = None,
    ) -> None:
        self.enumerate_up_to = int(enumerate_up_to)
        self.structured = bool(structured)
        self.gap = gap
        self._enum = exact(max_variables=self.enumerate_up_to)

    def solve(self, problem: QuboProblem, /, *, time_limit: float | None = None) -> SolveResult:
        """Minimise ``problem`` exactly (see the class docstring)."""
        if self.structured and isinstance(problem, QuboProblem) and "master_form" in problem.meta:
            t0 = time.perf_counter()
            gap = self.gap if self.gap is not None else problem.meta.get("energy_gap", 0.0)
            found = minimise_master_qubo(problem, time_limit=time_limit, gap=float(gap))
            if found is not None:
                # the BQM's own energy of the state; its float64 error grows with the size of
                # the expanded coefficients (P times squared cut constants)
                energy = problem.energy(found.x)
                scale = (
                    abs(problem.offset)
                    + float(np.abs(problem.linear).sum())
                    + float(np.abs(problem.quad_bias).sum())
                )
                if abs(energy - found.energy) <= 1e-7 * (1.0 + abs(energy)) + 1e-11 * scale:
                    # objective and bound are computed in the factored form (accurate to the
                    # round-off of eta and L_k); the expanded coefficients' float64 error,
                    # which can exceed the eta step, stays out of the bound
                    bound = found.bound - 1e-12 * (1.0 + abs(found.bound))
                    return SolveResult(
                        SolveStatus.OPTIMAL,
                        found.energy,
                        bound,
                        found.x.astype(np.float64),
                        solver=self.name,
                        info={
                            **structured_info(found),
                            "bqm_energy": energy,
                            "time": time.perf_counter() - t0,
                            "num_variables": problem.num_variables,
                        },
                    )
            if time_limit is not None:
                time_limit = max(1e-3, time_limit - (time.perf_counter() - t0))
        if not isinstance(problem, QuboProblem) or problem.num_variables <= self.enumerate_up_to:
            return self._enum.solve(problem, time_limit=time_limit)
        return self._solve_milp(problem, time_limit)

    def _solve_milp(self, q: QuboProblem, time_limit: float | None) -> SolveResult:
        import scipy.sparse as sp

        n, m = q.num_variables, int(q.quad_bias.size)
        rows = np.arange(m)
        y = n + rows
        # y - x_i <= 0 ; y - x_j <= 0 ; y - x_i - x_j >= -1
        r = np.concatenate(
            [rows, rows, m + rows, m + rows, 2 * m + rows, 2 * m + rows, 2 * m + rows]
        )
        c_ = np.concatenate([y, q.quad_row, y, q.quad_col, y, q.quad_row, q.quad_col])
        v = np.concatenate(
            [np.ones(m), -np.ones(m), np.ones(m), -np.ones(m), np.ones(m), -np.ones(m), -np.ones(m)]
        )
        A = sp.csr_array((v, (r, c_)), shape=(3 * m, n + m))
        inf = np.inf
        row_lo = np.concatenate([np.full(2 * m, -inf), np.full(m, -1.0)])
        row_hi = np.concatenate([np.zeros(2 * m), np.full(m, inf)])
        milp = MilpProblem.from_arrays(
            np.concatenate([q.linear, q.quad_bias]),
            A,
            row_lo,
            row_hi,
            np.zeros(n + m),
            np.ones(n + m),
            np.concatenate([np.ones(n, dtype=bool), np.zeros(m, dtype=bool)]),
            offset=float(q.offset),
        )
        res = HighsSolver(mip_rel_gap=0.0).solve(milp, time_limit=time_limit)
        x = None if res.x is None else np.round(res.x[:n])
        energy = None if x is None else float(q.energies(x.reshape(1, -1))[0])
        proven = res.status is SolveStatus.OPTIMAL and res.bound is not None
        return SolveResult(
            SolveStatus.OPTIMAL if proven else res.status,
            energy,
            float(res.bound) if proven and res.bound is not None else None,
            x,
            solver=self.name,
            info={**dict(res.info), "num_variables": n, "status_text": "milp-linearised"},
        )


__all__ = [
    "EXACT_MAX_VARIABLES",
    "DimodSolver",
    "ExactQuboSolver",
    "SizeRecordingComposite",
    "exact",
    "exact_qubo",
    "named_sampler",
    "simulated_annealing",
    "steepest_descent",
    "tabu",
]
