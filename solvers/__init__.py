"""nncert.solvers: solver backends behind one protocol, and a lazy registry.

Importing this package imports neither highspy nor pyomo nor dimod; backends are loaded by
:func:`get_solver` on first use::

    from nncert.solvers import get_solver
    result = get_solver("highs").solve(problem, time_limit=60, bound_target=0.0)
"""

from __future__ import annotations

from nncert.solvers.base import MilpSolver, QuboSolver, SolveResult, SolveStatus
from nncert.solvers.registry import (
    SolverSpec,
    available_solvers,
    get_solver,
    get_solver_spec,
    register_solver,
    solver_specs,
    unregister_solver,
)

__all__ = [
    "MilpSolver",
    "QuboSolver",
    "SolveResult",
    "SolveStatus",
    "SolverSpec",
    "available_solvers",
    "get_solver",
    "get_solver_spec",
    "register_solver",
    "solver_specs",
    "unregister_solver",
]
