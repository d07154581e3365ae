"""nncert.solvers: solver backends behind one protocol, and a lazy registry.

Importing this package imports nothing else: neither highspy nor pyomo nor dimod, nor the
formulations; names are resolved on first access, and backends are loaded by
:func:`get_solver` on first use::

    from nncert.solvers import get_solver
    result = get_solver("highs").solve(problem, time_limit=60, bound_target=0.0)
"""

from __future__ import annotations

import importlib
from typing import Any

# name -> module that defines it (imported on first attribute access)
_LAZY: dict[str, str] = {
    "MilpSolver": "nncert.solvers.base",
    "QuboSolver": "nncert.solvers.base",
    "SolveResult": "nncert.solvers.base",
    "SolveStatus": "nncert.solvers.base",
    "SolverSpec": "nncert.solvers.registry",
    "available_solvers": "nncert.solvers.registry",
    "get_solver": "nncert.solvers.registry",
    "get_solver_spec": "nncert.solvers.registry",
    "register_solver": "nncert.solvers.registry",
    "solver_specs": "nncert.solvers.registry",
    "unregister_solver": "nncert.solvers.registry",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'nncert.solvers' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = sorted(_LAZY)
