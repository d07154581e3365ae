"""Options as frozen dataclasses, constructed strictly.

``VerifyOptions.from_mapping({"time_limt": 5})`` raises
``InvalidOptionsError("unknown option 'time_limt'; did you mean 'time_limit'?")``.
Options are validated once, at the boundary (:func:`nncert.verify.verify`).
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias, TypeVar

from nncert.verify.errors import InvalidOptionsError
from nncert.verify.registry import get_method
from nncert.verify.solver_specs import find_solver_spec, solver_specs

#: a method name: any name in the method registry (:func:`nncert.verify.registry.method_names`)
Method: TypeAlias = str

T = TypeVar("T")

#: ``solver`` names that are not registry names: ``"exact"`` selects the exact QUBO master of
#: ``method="benders"`` / the exact sampler of ``method="qubo"`` (``"exact-qubo"`` in the registry)
SOLVER_ALIASES: tuple[str, ...] = ("exact",)


def check_solver_name(name: object) -> None:
    """Raise :class:`InvalidOptionsError` unless ``name`` names a registered solver.

    Accepted: a registry name (``"highs"``, ``"sa"``, plug-ins), ``"NAME:VARIANT"`` for solvers
    that take a variant (``"pyomo:cbc"``: any Pyomo solver), and :data:`SOLVER_ALIASES`.
    Only the registry's names are consulted; no backend is imported or required here (a
    missing backend is reported when the solver is built).
    """
    # the registry imports nothing but nncert.verify.errors and the standard library; the
    # plug-ins are looked up only for names no built-in backend has
    if not isinstance(name, str) or not name:
        raise InvalidOptionsError(f"solver={name!r} must be a solver name such as 'highs'")
    if name in SOLVER_ALIASES:
        return
    base, colon, variant = name.partition(":")
    spec = find_solver_spec(base)
    if spec is not None:
        if colon and (spec.variant_option is None or not variant):
            raise InvalidOptionsError(
                f"solver={name!r}: {base!r} takes no ':NAME' variant"
                if spec.variant_option is None
                else f"solver={name!r}: give the variant after the colon, e.g. '{base}:cbc'"
            )
        return
    specs = solver_specs()
    known = sorted(specs) + list(SOLVER_ALIASES)
    close = difflib.get_close_matches(base, known, n=1, cutoff=0.6)
    variants = [f"{n}:NAME" for n in sorted(specs) if specs[n].variant_option]
    if close:
        hint = f"; did you mean {close[0]!r}?"
    elif variants and not colon:
        # a dotted name is a sampler class (dimod:PACKAGE.Class), a plain one a solver program
        # (pyomo:cbc)
        dotted = "." in name
        pick = [v for v in variants if v.startswith("dimod:") == dotted] or variants
        hint = f"; did you mean {pick[0].replace('NAME', name)!r}?"
    else:
        hint = ""
    raise InvalidOptionsError(
        f"solver={name!r} is not a registered solver (known: {', '.join(known + variants)}){hint}"
    )


def from_mapping(cls: type[T], values: Mapping[str, Any]) -> T:
    """Build the dataclass ``cls`` from ``values``; unknown keys raise with a suggestion."""
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    for key in values:
        if key not in names:
            close = difflib.get_close_matches(key, names, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; known: {', '.join(names)}"
            raise InvalidOptionsError(f"unknown option {key!r}{hint}")
    return cls(**values)


@dataclass(frozen=True)
class VerifyOptions:
    """Options of :func:`nncert.verify.verify`.

    Attributes:
        method: a name in the method registry (:mod:`nncert.verify.registry`, which lists
            and describes the built-in methods; plug-ins add theirs with
            :func:`nncert.verify.register_method`); ``"auto"`` (default) runs cheap bounds,
            attacks, then the complete method chosen by the query's shape.
        solver: MILP solver name for the registry (``"highs"``, ``"pyomo"``, ``"pyomo:cbc"``).
        time_limit: wall-clock budget for the whole call in seconds (``None``: unlimited).
        seed: seed of every random choice (attacks, branching ties).
        attack: run falsification stages (sampling, PGD).
        attack_budget: fraction of the time limit the PGD stage may use (at most 10 s).
        onnx_replay: replay counterexamples in onnxruntime when the network came from ONNX.
        milp_tolerance: a MILP dual bound must exceed this to count as a proof (absorbs
            the solver's feasibility tolerances; big-M constants amplify them).
        bab_input_dims: inputs up to this dimension use input-split branch and bound in
            ``"auto"`` mode.
        jobs: worker processes for branch and bound (input-split nodes, or the cases of
            the ReLU-phase search, one whole case per worker; when a single case is open,
            its search's subdomains: :func:`~nncert.verify.relu_bab.relu_bab_case_parallel`).
        segments: initial segments per neuron for piecewise over-approximations of sigmoid
            and tanh (``--segments K``).
        window: depth of the layerwise partitioning windows (``--window S``).
        num_reads: reads per annealing call (QUBO and Benders with a sampler master).
        spin_budget: largest QUBO (in binary variables) routed to an annealer.
        presolve: run the method's cheap stages first (sampling, CROWN, PGD; see
            :attr:`nncert.verify.registry.MethodSpec.presolve`). ``False`` runs only the
            named method, e.g. to benchmark Benders or the QUBO route on every case.
    """

    method: str = "auto"
    solver: str = "highs"
    time_limit: float | None = 300.0
    seed: int = 0
    attack: bool = True
    attack_budget: float = 0.1
    onnx_replay: bool = True
    milp_tolerance: float = 1e-6
    bab_input_dims: int = 16
    jobs: int = 1
    segments: int = 4
    window: int = 2
    num_reads: int = 100
    spin_budget: int = 64
    presolve: bool = True

    def __post_init__(self) -> None:
        get_method(self.method)  # a registered name, else a did-you-mean error
        if not isinstance(self.presolve, bool):
            raise InvalidOptionsError(f"presolve={self.presolve!r} must be True or False")
        check_solver_name(self.solver)
        if self.time_limit is not None and not (
            isinstance(self.time_limit, (int, float))
            and math.isfinite(self.time_limit)
            and self.time_limit > 0
        ):
            raise InvalidOptionsError(f"time_limit={self.time_limit!r} must be a number > 0")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise InvalidOptionsError(f"seed={self.seed!r} must be an int >= 0")
        if not (0.0 <= float(self.attack_budget) <= 1.0):
            raise InvalidOptionsError(f"attack_budget={self.attack_budget!r} must lie in [0, 1]")
        if not (0.0 <= float(self.milp_tolerance) < 1.0):
            raise InvalidOptionsError(f"milp_tolerance={self.milp_tolerance!r} must lie in [0, 1)")
        for name in ("jobs", "segments", "window", "num_reads", "spin_budget"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise InvalidOptionsError(f"{name}={value!r} must be an int >= 1")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> VerifyOptions:
        """Strict construction from a mapping (unknown keys raise with a suggestion)."""
        return from_mapping(cls, values)


def check_solver_fits_method(options: VerifyOptions) -> None:
    """Raise :class:`InvalidOptionsError` when ``options.solver`` is a QUBO sampler (``sa``,
    ``tabu``, ``exact``, ``dimod:...``) and ``options.method`` needs a MILP solver (every
    method but those registered with ``qubo_solvers``: ``qubo`` and ``benders``).

    Called by :func:`nncert.verify.verify` before any work: such a pair used to fail deep in
    the first MILP stage with a ``TypeError``. (Not at construction: options name the pair
    before the run decides whether it needs the MILP at all.)
    """
    name = options.solver
    qubo = name in SOLVER_ALIASES
    if not qubo:
        spec = find_solver_spec(name.partition(":")[0])
        qubo = spec is not None and spec.problem == "qubo"
    if qubo and not get_method(options.method).qubo_solvers:
        raise InvalidOptionsError(
            f"solver={name!r} is a QUBO sampler; method={options.method!r} needs a MILP solver "
            "such as 'highs' or 'pyomo:NAME' (samplers serve the qubo and benders methods)"
        )


__all__ = [
    "SOLVER_ALIASES",
    "Method",
    "VerifyOptions",
    "check_solver_fits_method",
    "check_solver_name",
    "from_mapping",
]
