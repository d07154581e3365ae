"""The method registry: every name that ``verify(..., method=NAME)`` accepts.

One :class:`MethodSpec` per method: its name, its *target* (a callable, or a lazy
``"module:function"`` string, so this module imports nothing but the standard library), a
one-line description (``nncert verify --help`` lists it), what the method can conclude
(:data:`MethodKind`) and the cheap stages :func:`nncert.verify.verify` runs before it when
``presolve=True``. The built-in methods register here exactly as a plug-in does.

Contract of a method target (``stage=False``, every plug-in)::

    fn(network, case, ctx) -> CaseOutcome | None

with ``network`` a :class:`~nncert.verify.network.Network` in normal form, ``case`` one open
:class:`~nncert.verify.spec.UnsafeCase` and ``ctx`` a
:class:`~nncert.verify.result.CaseContext`; it returns a
:class:`~nncert.verify.result.CaseOutcome` or ``None`` (the case stays open). The pipeline
closes case :math:`i` only on ``status="verified"`` with ``exact=True``, i.e. a sound proof that

.. math::  m_i^* = \\min_{x \\in X_i} \\max_r (A_{i,r} f(x) - b_{i,r}) > 0,

and believes a ``"falsified"`` outcome only after replaying its ``x`` (float64 and, for ONNX
models, onnxruntime). Built-in *stage* methods (``stage=True``: ``auto``, ``ibp``, ``crown``,
``attack``, ``milp``, ``bab``) are functions of the pipeline's own run state instead; that
contract is private to :mod:`nncert.verify.pipeline`.

Plug-ins from other distributions register through the entry-point group ``nncert.methods``:
each entry point loads to a case-method callable (registered under the entry point's name,
described by the first line of its docstring), a :class:`MethodSpec`, or an iterable of specs.
They are loaded once, on first use of the registry; ``NNCERT_NO_PLUGINS=1`` disables them. A
plug-in may not replace a method that is already registered.

Example:
    >>> "milp" in method_names()
    True
    >>> get_method("mlip")
    Traceback (most recent call last):
    ...
    nncert.verify.errors.InvalidOptionsError: method='mlip' is not a registered method ...
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import os
import re
import threading
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal, get_args

from nncert.verify.errors import InvalidOptionsError

ENTRY_POINT_GROUP = "nncert.methods"

#: what a method can conclude: ``"complete"`` verifies and falsifies (given time);
#: ``"bounds"`` only verifies when its bounds are conclusive; ``"falsifier"`` only falsifies
MethodKind = Literal["complete", "bounds", "falsifier"]

#: the cheap stages a method's ``presolve`` may name (the pipeline implements them)
PRESOLVE_STAGES: tuple[str, ...] = ("sample", "ibp", "crown", "attack")

#: the presolve of a complete method: sample points, CROWN bounds, a PGD attack
DEFAULT_PRESOLVE: tuple[str, ...] = ("sample", "crown", "attack")

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.\-]*")


@dataclass(frozen=True)
class MethodSpec:
    """One registered method.

    Attributes:
        name: what ``method=`` / ``--method`` accept (a letter, then letters, digits, ``_``,
            ``.`` or ``-``; no ``:``, which separates a method's options in ``nncert bench``).
        target: the method: a callable or ``"module:function"`` (imported on first use).
        description: one line for ``--help`` (default: the first line of a callable target's
            docstring).
        kind: what it can conclude (:data:`MethodKind`); ``nncert verify`` explains an
            unknown result of a ``"bounds"`` or ``"falsifier"`` method as expected.
        presolve: the stages of :data:`PRESOLVE_STAGES` run before it when
            ``presolve=True`` (in this order).
        stage: ``True`` only for the pipeline's own stages (their target takes the private
            run state of :mod:`nncert.verify.pipeline`, not ``(network, case, ctx)``).
        qubo_solvers: the method accepts a QUBO sampler as ``solver`` (``sa``, ``tabu``,
            ``exact``, ``dimod:...``); every other method needs a MILP solver, and
            :class:`~nncert.verify.options.VerifyOptions` refuses the pair up front.
    """

    name: str
    target: str | Callable[..., Any]
    description: str = ""
    kind: MethodKind = "complete"
    presolve: tuple[str, ...] = DEFAULT_PRESOLVE
    stage: bool = False
    qubo_solvers: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.fullmatch(self.name):
            raise InvalidOptionsError(
                f"method name {self.name!r} must start with a letter and contain only "
                "letters, digits, '_', '.' or '-'"
            )
        if isinstance(self.target, str):
            module, colon, attr = self.target.partition(":")
            if not (module and colon and attr) or ":" in attr:
                raise InvalidOptionsError(
                    f"method {self.name!r}: target={self.target!r} must be 'module:function'"
                )
        elif not callable(self.target):
            raise InvalidOptionsError(
                f"method {self.name!r}: target {self.target!r} is neither callable nor "
                "a 'module:function' string"
            )
        if self.kind not in get_args(MethodKind):
            raise InvalidOptionsError(
                f"method {self.name!r}: kind={self.kind!r} must be one of "
                f"{', '.join(get_args(MethodKind))}"
            )
        presolve = tuple(self.presolve)
        bad = [s for s in presolve if s not in PRESOLVE_STAGES]
        if bad:
            raise InvalidOptionsError(
                f"method {self.name!r}: presolve stage(s) {bad} not in {', '.join(PRESOLVE_STAGES)}"
            )
        object.__setattr__(self, "presolve", presolve)
        object.__setattr__(self, "description", " ".join(str(self.description).split()))

    def load(self) -> Callable[..., Any]:
        """The target as a callable (imports its module for a string target)."""
        if not isinstance(self.target, str):
            return self.target
        module, _, attr = self.target.partition(":")
        fn: Callable[..., Any] = getattr(importlib.import_module(module), attr)
        return fn

    def summary(self) -> str:
        """One line: the description, else the first docstring line of a callable target."""
        if self.description or isinstance(self.target, str):
            return self.description
        doc = inspect.getdoc(self.target) or ""
        return doc.strip().splitlines()[0] if doc.strip() else ""

    @property
    def builtin(self) -> bool:
        """Whether the target lives in nncert itself (a ``"nncert.*:..."`` string)."""
        return isinstance(self.target, str) and self.target.startswith("nncert.")


_REGISTRY: dict[str, MethodSpec] = {}
_lock = threading.RLock()
_plugins_loaded = False


def register_method_spec(spec: MethodSpec, *, replace: bool = False) -> MethodSpec:
    """Add ``spec`` to the registry (registering an equal spec again is a no-op).

    Raises:
        InvalidOptionsError: when the name is taken by another spec and ``replace`` is false.
    """
    if not isinstance(spec, MethodSpec):
        raise InvalidOptionsError(f"register_method_spec: expected a MethodSpec, got {spec!r}")
    with _lock:
        old = _REGISTRY.get(spec.name)
        if old is not None and old != spec and not replace:
            raise InvalidOptionsError(
                f"register_method: a method named {spec.name!r} is already registered "
                "(pass replace=True to replace it)"
            )
        _REGISTRY[spec.name] = spec
    return spec


def register_method(
    name: str,
    fn: str | Callable[..., Any],
    *,
    description: str = "",
    kind: MethodKind = "complete",
    presolve: Iterable[str] = DEFAULT_PRESOLVE,
    replace: bool = False,
    qubo_solvers: bool = False,
) -> MethodSpec:
    """Register a method: ``verify(..., method=name)`` and ``--method name`` then run ``fn``.

    Args:
        name: the method name.
        fn: ``fn(network, case, ctx) -> CaseOutcome | None`` (see the module docstring), or
            ``"module:function"`` naming it (imported on first use).
        description: one line for ``nncert verify --help`` (default: ``fn``'s docstring).
        kind: ``"complete"`` (default), ``"bounds"`` or ``"falsifier"``; informs reports only:
            a case closes on an exact verified outcome whatever the kind.
        presolve: the cheap stages run before ``fn`` when ``verify(..., presolve=True)``.
        replace: replace an existing method of that name.
        qubo_solvers: ``fn`` accepts a QUBO sampler as the solver (see :class:`MethodSpec`).

    Returns:
        The registered :class:`MethodSpec`.

    Raises:
        InvalidOptionsError: a malformed name or target, or a name already taken.
    """
    spec = MethodSpec(name, fn, description, kind, tuple(presolve), qubo_solvers=qubo_solvers)
    return register_method_spec(spec, replace=replace)


def unregister_method(name: str) -> None:
    """Remove a method (no error when absent)."""
    with _lock:
        _REGISTRY.pop(name, None)


def _specs_of(obj: Any, ep_name: str) -> list[MethodSpec]:
    if isinstance(obj, MethodSpec):
        return [obj]
    if callable(obj):
        return [MethodSpec(ep_name, obj)]
    specs = list(obj)
    if not all(isinstance(s, MethodSpec) for s in specs):
        raise TypeError("an entry point must load to a callable, a MethodSpec or MethodSpecs")
    return specs


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
                for spec in _specs_of(ep.load(), ep.name):
                    old = _REGISTRY.get(spec.name)
                    if old is not None:
                        if old.target is not spec.target:
                            warnings.warn(
                                f"nncert: plug-in {ep.name!r} tried to replace the method "
                                f"{spec.name!r}; ignored",
                                RuntimeWarning,
                                stacklevel=2,
                            )
                        continue
                    register_method_spec(spec)
            except Exception as err:  # a broken plug-in must not break nncert
                warnings.warn(
                    f"nncert: could not load method plug-in {ep.name!r}: {err}",
                    RuntimeWarning,
                    stacklevel=2,
                )


def method_specs() -> dict[str, MethodSpec]:
    """A copy of the registry (built-ins first, then plug-ins, in registration order)."""
    _load_plugins()
    with _lock:
        return dict(_REGISTRY)


def method_names() -> tuple[str, ...]:
    """The registered method names (built-ins first, in registration order)."""
    return tuple(method_specs())


def get_method(name: str) -> MethodSpec:
    """The spec registered under ``name``.

    The plug-ins are loaded only when no method registered so far has that name (the
    entry-point scan costs about 0.15 s of start-up; a plug-in cannot replace a registered
    method, so the answer is the same).

    Raises:
        InvalidOptionsError: for an unknown name, with a "did you mean" suggestion.
    """
    if isinstance(name, str):
        with _lock:  # a registered name needs no plug-in scan: plug-ins cannot replace it
            found = _REGISTRY.get(name)
        if found is not None:
            return found
    specs = method_specs()
    spec = specs.get(name) if isinstance(name, str) else None
    if spec is None:
        close = difflib.get_close_matches(str(name), list(specs), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise InvalidOptionsError(
            f"method={name!r} is not a registered method (known: {', '.join(specs)}){hint}"
        )
    return spec


def _register_builtins() -> None:
    pipeline = "nncert.verify.pipeline"
    stages = (
        ("auto", "auto_stage", "complete", DEFAULT_PRESOLVE,
         "bounds, attacks, then the complete method the query's shape calls for: input-split "
         "branch and bound (few inputs), ReLU-phase branch and bound then the MILP (larger "
         "ReLU networks), the MILP (other piecewise-linear networks), act_bab then model2 "
         "(sigmoid/tanh)"),
        ("ibp", "ibp_stage", "bounds", ("sample",), "interval bounds (verifies only)"),
        ("crown", "crown_stage", "bounds", ("sample",), "CROWN bounds (verifies only)"),
        ("attack", "attack_stage", "falsifier", ("sample",), "PGD attack (falsifies only)"),
        ("milp", "milp_stage", "complete", DEFAULT_PRESOLVE,
         "exact MILP per case (Model 1, CROWN big-M bounds; --solver)"),
        ("bab", "bab_stage", "complete", DEFAULT_PRESOLVE,
         "branch and bound over input splits, CROWN bounds (complete)"),
    )  # fmt: skip
    for name, attr, kind, presolve, text in stages:
        register_method_spec(
            MethodSpec(name, f"{pipeline}:{attr}", text, kind, presolve, stage=True)  # type: ignore[arg-type]
        )
    cases = (
        # (name, target, kind, takes a QUBO sampler as its solver, description)
        ("benders", "nncert.solvers.benders_method:benders_case", "complete", True,
         "Benders decomposition (--solver picks the master: highs, exact, or an annealer "
         "that only falsifies; sigmoid/tanh: Model 2 segment binaries as the master)"),
        ("qubo", "nncert.solvers.qubo_method:qubo_case", "falsifier", True,
         "QUBO on a grid, annealed (--solver sa|tabu|steepest|exact|dimod:PKG.Class; "
         "sigmoid/tanh: the Model 2 segment QUBO within --spin-budget; falsifies only)"),
        ("model2", "nncert.solvers.model2_method:model2_case", "complete", False,
         "Model 2 piecewise refinement for sigmoid/tanh (--segments)"),
        ("window", "nncert.solvers.partition_method:window_case", "complete", False,
         "layerwise partitioning into windows (--window)"),
        ("relu_bab", "nncert.verify.relu_bab:relu_bab_case", "complete", False,
         "branch and bound over ReLU phases (ReLU networks with many inputs)"),
        ("act_bab", "nncert.verify.act_bab:act_bab_case", "complete", False,
         "branch and bound over hidden-neuron bounds, any activation (sigmoid/tanh: splits "
         "neurons, GenBaB-style)"),
    )  # fmt: skip
    for name, target, kind, qubo, text in cases:
        register_method(name, target, description=text, kind=kind, qubo_solvers=qubo)  # type: ignore[arg-type]


_register_builtins()


__all__ = [
    "DEFAULT_PRESOLVE",
    "ENTRY_POINT_GROUP",
    "PRESOLVE_STAGES",
    "MethodKind",
    "MethodSpec",
    "get_method",
    "method_names",
    "method_specs",
    "register_method",
    "register_method_spec",
    "unregister_method",
]
