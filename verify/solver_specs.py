"""The table of solver names: :class:`SolverSpec` records, built-ins and plug-ins.

A backend is described by a :class:`SolverSpec` whose ``factory`` is a ``"module:attr"``
string, so this table imports no backend: it lives in the core (beside the method registry)
so that :class:`~nncert.verify.options.VerifyOptions` can reject an unknown solver name at
construction without importing :mod:`nncert.solvers` (DESIGN.md section 2: the core imports
nothing from the other packages). Building a solver from its spec is
:func:`nncert.solvers.registry.get_solver`, which re-exports everything here.

Third-party packages register backends through the ``nncert.solvers`` entry-point group: each
entry point loads to a :class:`SolverSpec`, an iterable of them, or a zero-argument callable
returning either. Plug-ins are loaded once, on first use; ``NNCERT_NO_PLUGINS=1`` disables them.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import os
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from nncert.verify.errors import InvalidOptionsError, SolverUnavailableError

ProblemKind = Literal["milp", "qubo"]

ENTRY_POINT_GROUP = "nncert.solvers"


@dataclass(frozen=True)
class SolverSpec:
    """How to build one solver backend, without importing it.

    Attributes:
        name: registry name (no colon).
        factory: ``"module:attr"``; ``attr`` is a class or function taking keyword options.
        problem: ``"milp"`` or ``"qubo"``.
        requires: importable modules the backend needs (checked with ``find_spec``).
        exact: whether the backend's bounds and infeasibility results are proofs.
        extra: the ``pip install "nncert[extra]"`` extra that provides ``requires`` ("" when
            the requirement is a core dependency).
        variant_option: keyword that receives the part after ``:`` in ``"name:variant"``.
        description: one line for listings.
        install: pip requirement(s) to suggest when ``extra`` is empty (default: the
            module names in ``requires``).
    """

    name: str
    factory: str
    problem: ProblemKind = "milp"
    requires: tuple[str, ...] = ()
    exact: bool = True
    extra: str = ""
    variant_option: str | None = None
    description: str = ""
    install: str = ""

    def __post_init__(self) -> None:
        if not self.name or ":" in self.name:
            raise InvalidOptionsError(f"SolverSpec: name={self.name!r} must be non-empty, no ':'")
        if self.factory.count(":") != 1:
            raise InvalidOptionsError(
                f"SolverSpec {self.name!r}: factory={self.factory!r} must be 'module:attr'"
            )
        if self.problem not in ("milp", "qubo"):
            raise InvalidOptionsError(
                f"SolverSpec {self.name!r}: problem={self.problem!r} must be 'milp' or 'qubo'"
            )
        object.__setattr__(self, "requires", tuple(self.requires))

    def missing(self) -> tuple[str, ...]:
        """The required modules that cannot be found (imports nothing but parent packages)."""
        return tuple(m for m in self.requires if not _module_exists(m))

    def is_available(self) -> bool:
        """True when every required module can be found."""
        return not self.missing()

    def load(self) -> Callable[..., Any]:
        """Import and return the factory.

        Raises:
            SolverUnavailableError: when a required module is missing.
        """
        missing = self.missing()
        if missing:
            if self.extra:
                hint = f'pip install "nncert[{self.extra}]"'
            else:
                hint = f"pip install {self.install or ' '.join(missing)}"
            raise SolverUnavailableError(
                f"solver {self.name!r} needs {', '.join(missing)}, which is not installed; "
                f"install it with: {hint}"
            )
        module, attr = self.factory.split(":")
        obj: Callable[..., Any] = getattr(importlib.import_module(module), attr)
        return obj


def _module_exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


_REGISTRY: dict[str, SolverSpec] = {}
_lock = threading.RLock()
_plugins_loaded = False


def register_solver(spec: SolverSpec, *, replace: bool = False) -> None:
    """Add a backend to the registry.

    Raises:
        InvalidOptionsError: when the name is taken and ``replace`` is false.
    """
    if not isinstance(spec, SolverSpec):
        raise InvalidOptionsError(f"register_solver: expected a SolverSpec, got {spec!r}")
    with _lock:
        if spec.name in _REGISTRY and not replace and _REGISTRY[spec.name] != spec:
            raise InvalidOptionsError(
                f"register_solver: a solver named {spec.name!r} is already registered"
            )
        _REGISTRY[spec.name] = spec


def unregister_solver(name: str) -> None:
    """Remove a backend (no error when absent)."""
    with _lock:
        _REGISTRY.pop(name, None)


def _load_plugins() -> None:
    global _plugins_loaded
    with _lock:
        if _plugins_loaded:
            return
        _plugins_loaded = True
        if os.environ.get("NNCERT_NO_PLUGINS", "").strip() not in ("", "0"):
            return
        from importlib.metadata import entry_points

        for ep in entry_points(group=ENTRY_POINT_GROUP):
            try:
                obj = ep.load()
                if callable(obj) and not isinstance(obj, SolverSpec):
                    obj = obj()
                specs = [obj] if isinstance(obj, SolverSpec) else list(obj)
                for spec in specs:
                    if spec.name in _REGISTRY:
                        warnings.warn(
                            f"nncert: plug-in {ep.name!r} tried to replace the solver "
                            f"{spec.name!r}; ignored",
                            RuntimeWarning,
                            stacklevel=2,
                        )
                        continue
                    register_solver(spec)
            except Exception as err:  # a broken plug-in must not break nncert
                warnings.warn(
                    f"nncert: could not load solver plug-in {ep.name!r}: {err}",
                    RuntimeWarning,
                    stacklevel=2,
                )


def solver_specs() -> dict[str, SolverSpec]:
    """A copy of the registry (built-ins and plug-ins)."""
    _load_plugins()
    with _lock:
        return dict(_REGISTRY)


def find_solver_spec(name: str) -> SolverSpec | None:
    """The spec registered under ``name`` exactly, or ``None``.

    The plug-ins are loaded only when no backend registered so far has that name: a plug-in
    cannot replace a registered backend (it is ignored with a warning), so the answer is the
    same either way, and the entry-point scan (about 0.15 s in an environment with many
    packages) stays off the start-up of every run with a built-in solver.
    """
    with _lock:
        spec = _REGISTRY.get(name)
    return spec if spec is not None else solver_specs().get(name)


def get_solver_spec(name: str) -> SolverSpec:
    """The spec registered under ``name`` (a ``":variant"`` suffix is ignored).

    Raises:
        InvalidOptionsError: for an unknown name, with "did you mean" suggestions.
    """
    base = name.split(":", 1)[0]
    if (found := find_solver_spec(base)) is not None:
        return found
    specs = solver_specs()
    if base not in specs:
        close = difflib.get_close_matches(base, list(specs), n=3, cutoff=0.6)
        hint = f"did you mean {' or '.join(repr(c) for c in close)}? " if close else ""
        raise InvalidOptionsError(
            f"unknown solver {name!r}; {hint}registered solvers: {', '.join(sorted(specs))}"
        )
    return specs[base]


def _register_builtins() -> None:
    register_solver(
        SolverSpec(
            "highs",
            "nncert.solvers.highs_solver:HighsSolver",
            problem="milp",
            requires=("highspy",),
            exact=True,
            extra="",
            description="HiGHS via highspy (default exact MILP/LP backend)",
        )
    )
    register_solver(
        SolverSpec(
            "pyomo",
            "nncert.solvers.pyomo_solver:PyomoSolver",
            problem="milp",
            requires=("pyomo",),
            exact=True,
            extra="pyomo",
            variant_option="solver",
            description="any Pyomo solver (pyomo:highs, pyomo:cbc, pyomo:gurobi, ...)",
        )
    )
    # QUBO samplers (DESIGN.md section 6); factories live in nncert.solvers.dimod_solver
    for name, attr, requires, exact, install, text in (
        ("sa", "simulated_annealing", ("dimod", "dwave.samplers"), False, "dwave-samplers",
         "simulated annealing (dwave-samplers)"),
        ("tabu", "tabu", ("dimod", "dwave.samplers"), False, "dwave-samplers",
         "tabu search (dwave-samplers)"),
        ("steepest", "steepest_descent", ("dimod", "dwave.samplers"), False, "dwave-samplers",
         "steepest descent (dwave-samplers)"),
        ("exact-qubo", "exact_qubo", ("dimod",), True, "dimod",
         "exact QUBO minimisation: structured branch and bound for Benders masters, "
         "dimod.ExactSolver up to 20 variables, a linearised MILP beyond"),
    ):  # fmt: skip
        register_solver(
            SolverSpec(
                name,
                f"nncert.solvers.dimod_solver:{attr}",
                problem="qubo",
                requires=requires,
                exact=exact,
                install=install,
                description=text,
            )
        )

    register_solver(
        SolverSpec(
            "dimod",
            "nncert.solvers.dimod_solver:named_sampler",
            problem="qubo",
            requires=("dimod",),
            exact=False,
            install="dimod",
            variant_option="sampler",
            description="any dimod sampler by import path: dimod:PACKAGE.Class (a structured "
            "QPU sampler such as dimod:dwave.system.DWaveSampler is wrapped in "
            "EmbeddingComposite; needs dwave-system and a configured account)",
        )
    )


_register_builtins()


__all__ = [
    "ENTRY_POINT_GROUP",
    "ProblemKind",
    "SolverSpec",
    "find_solver_spec",
    "get_solver_spec",
    "register_solver",
    "solver_specs",
    "unregister_solver",
]
