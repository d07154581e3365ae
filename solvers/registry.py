"""A registry of lazily loaded solver backends.

Each backend is described by a :class:`SolverSpec` whose ``factory`` is a ``"module:attr"``
string; nothing is imported until :func:`get_solver` builds an instance, and
:func:`available_solvers` checks ``requires`` with :func:`importlib.util.find_spec` only. The
table of names itself lives in the core (:mod:`nncert.verify.solver_specs`, re-exported here),
so that options can validate a name without importing this package.

Names may carry a variant after a colon: ``get_solver("pyomo:cbc")`` passes ``solver="cbc"`` to
the ``pyomo`` factory (the spec's ``variant_option``).

Third-party packages register backends through the ``nncert.solvers`` entry-point group: each
entry point loads to a :class:`SolverSpec`, an iterable of them, or a zero-argument callable
returning either. Plug-ins are loaded once, on first use; ``NNCERT_NO_PLUGINS=1`` disables them.

Example:
    >>> "highs" in available_solvers("milp")
    True
    >>> get_solver("higs")
    Traceback (most recent call last):
    ...
    nncert.verify.errors.InvalidOptionsError: unknown solver 'higs'; did you mean 'highs'? ...
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable
from typing import Any

from nncert.verify.errors import InvalidOptionsError
from nncert.verify.solver_specs import (
    ENTRY_POINT_GROUP,
    ProblemKind,
    SolverSpec,
    find_solver_spec,
    get_solver_spec,
    register_solver,
    solver_specs,
    unregister_solver,
)


def available_solvers(problem: ProblemKind | None = None) -> list[str]:
    """Names of the registered backends whose requirements are installed (imports nothing).

    Args:
        problem: ``"milp"`` or ``"qubo"`` to filter by problem kind; ``None`` for all.
    """
    if problem is not None and problem not in ("milp", "qubo"):
        raise InvalidOptionsError(f"available_solvers: problem={problem!r} must be milp or qubo")
    return sorted(
        name
        for name, spec in solver_specs().items()
        if (problem is None or spec.problem == problem) and spec.is_available()
    )


def _check_options(factory: Callable[..., Any], name: str, opts: dict[str, Any]) -> None:
    try:
        sig = inspect.signature(factory)
    except (TypeError, ValueError):  # pragma: no cover - builtins without signatures
        return
    params = sig.parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    allowed = [
        k
        for k, p in params.items()
        if p.kind in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    ]
    for key in opts:
        if key not in allowed:
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise InvalidOptionsError(
                f"solver {name!r} has no option {key!r}{hint} (options: {', '.join(allowed)})"
            )


def get_solver(name_or_instance: str | Any, /, **opts: Any) -> Any:
    """Build a solver by registry name, or pass an existing instance through.

    Args:
        name_or_instance: a registered name (``"highs"``, ``"pyomo"``, ``"pyomo:cbc"``) or an
            object with ``name``, ``exact`` and ``solve``.
        **opts: keyword options for the backend's factory (not allowed with an instance).

    Raises:
        InvalidOptionsError: unknown name or option, options given with an instance, or an
            instance that reuses a built-in name.
        SolverUnavailableError: the backend's dependency is not installed (names the extra).
    """
    if not isinstance(name_or_instance, str):
        inst = name_or_instance
        if not (hasattr(inst, "solve") and hasattr(inst, "name") and hasattr(inst, "exact")):
            raise InvalidOptionsError(
                f"get_solver: {inst!r} is neither a solver name nor a solver "
                f"(needs name, exact and solve)"
            )
        if opts:
            raise InvalidOptionsError(
                f"get_solver: options {sorted(opts)} cannot be applied to a solver instance"
            )
        base = str(inst.name).split(":", 1)[0]
        spec = solver_specs().get(base)
        if spec is not None:
            if type(inst).__module__ != spec.factory.split(":", 1)[0]:
                raise InvalidOptionsError(
                    f"get_solver: a custom solver may not reuse the registered name {base!r}"
                )
        return inst
    name = name_or_instance
    spec = get_solver_spec(name)
    kwargs = dict(opts)
    if ":" in name:
        variant = name.split(":", 1)[1]
        if spec.variant_option is None:
            raise InvalidOptionsError(f"solver {spec.name!r} takes no ':variant' ({name!r})")
        if spec.variant_option in kwargs:
            raise InvalidOptionsError(
                f"get_solver: {name!r} and {spec.variant_option}= both name a variant"
            )
        kwargs[spec.variant_option] = variant
    factory = spec.load()
    _check_options(factory, spec.name, kwargs)
    return factory(**kwargs)


__all__ = [
    "ENTRY_POINT_GROUP",
    "ProblemKind",
    "SolverSpec",
    "available_solvers",
    "find_solver_spec",
    "get_solver",
    "get_solver_spec",
    "register_solver",
    "solver_specs",
    "unregister_solver",
]
