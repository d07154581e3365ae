"""VNN-LIB property files: an own VNN-LIB 1.0 reader, VNN-LIB 2.0 via ``vnnlib``, and a writer.

Semantics (shared by both versions and by :class:`~nncert.verify.spec.Property`): the asserted
formula describes the **unsafe set**, i.e. the counterexamples. A solver answer ``sat`` means a
counterexample exists (the property is violated); ``unsat`` means the property **holds**
(nncert ``VERIFIED``).

Entry point: :func:`load_vnnlib` reads a plain or gzip-compressed file and dispatches on the
version. A file is VNN-LIB 2.0 when it contains a ``(vnnlib-version ...)`` or
``(declare-network ...)`` command, otherwise it is read as VNN-LIB 1.0.

VNN-LIB 1.0 (own reader, :func:`parse_vnnlib_string`):

* ``(declare-const X_i Real)`` / ``(declare-const Y_j Real)``; the indices are the flattened
  (C order) positions, the dimension is ``max index + 1`` and every index below it must be
  declared.
* ``(assert F)``; several top-level asserts are conjoined. ``F`` nests ``and`` / ``or``
  arbitrarily (``(and)`` is true, ``(or)`` is false) over binary comparisons
  ``<= >= < > =`` between linear terms:
  numerals (``1``, ``-0.5``, ``1e-05``), variables, ``(+ ...)``, ``(- a)``, ``(- a b ...)``,
  ``(* ...)`` and ``(/ a c)`` with a constant ``c``. Terms are polynomials: products of
  variables (``(* X_0 X_0)``, ``(* Y_0 X_1)``, ``(* 2 X_0 (+ X_1 Y_0))``) are expanded into
  monomials of degree at most :data:`~nncert.verify.spec.MAX_MONOMIAL_DEGREE` (4), with at
  most :data:`~nncert.verify.spec.MAX_MONOMIALS` (256) distinct ones in a file; beyond either
  cap the file is rejected (``"line N: polynomial term of degree 5 in (* ...): ..."``).
* **Strict comparisons are read as non-strict**: every unsafe set is closed. This is the usual
  VNN-COMP convention (a verifier that proves the closed set empty has also proven the open one
  empty, i.e. the relaxation is sound for ``unsat``); a counterexample on the boundary of a
  strict constraint is accepted.
* The formula is converted to disjunctive normal form (DNF); each disjunct becomes one
  :class:`~nncert.verify.spec.UnsafeCase`. Constraints on a single input variable are input
  bounds, constraints on outputs only (``Y_0 <= Y_1`` included) are rows of ``A y <= b``
  (``>=`` flips the sign, ``=`` gives two rows). Linear constraints coupling several inputs
  (``(<= (+ X_0 X_1) 1)``) or inputs and outputs (``(<= Y_0 (* 2 X_0))``) are rows over
  ``[y; x]``: the file then gives a :class:`~nncert.verify.spec.MixedProperty`, which
  :func:`nncert.verify.verify` decides on the network ``[f(x); x]``
  (:mod:`nncert.verify.lowering`). A comparison with a product of variables (a polynomial
  constraint, VNN-LIB's POLY theory: ``(< (* X_0 X_0) -1)``, ``(<= (* Y_0 Y_1) 0)``) is a
  row over ``[y; x]`` and the monomials that occur: the file then gives a
  :class:`~nncert.verify.spec.PolynomialProperty` (monomials numbered in order of first
  appearance, those with a zero coefficient everywhere dropped), which
  :func:`nncert.verify.verify` decides on the network ``[f(x); x; monomials]``
  (:func:`nncert.verify.lowering.lower_polynomial`). Files without products give exactly the
  objects they gave before. Every input must be bounded (by single-variable bounds) in every
  disjunct. A DNF larger than :data:`MAX_DISJUNCTS`
  disjuncts is rejected.
* **Empty input boxes are errors, never vacuous proofs.** A lower bound above an upper bound
  is almost always a typo, and an empty box would make the property "hold" for no reason.
  So when one conjunction -- the top-level asserts, or one ``(and ...)`` -- states bounds on
  an input that contradict each other, the file is rejected with
  ``"<path>: empty input box: X_3 has lower bound 0.5 (line 7) > upper bound 0.4 (line 8)"``.
  A disjunct can also become empty only through distribution, when bounds from *different*
  parts of the formula meet (``(assert (>= X_0 0.5))`` with a disjunct ``(<= X_0 0.4)``):
  that is the formula's meaning, not a contradiction it states, and such a disjunct is
  dropped. If that leaves no disjunct at all, the input region is empty and the file is
  rejected (``"empty input region: every disjunct has an empty input box (...)"``).
* **Constant-false comparisons** such as ``(<= 1 0)`` make their disjunct impossible; it is
  dropped. When every disjunct is dropped that way, the property holds vacuously (the file
  says so explicitly); it is then represented as a :class:`~nncert.verify.spec.Property` with
  one *trivially infeasible* case: the input box is the point ``0`` and the only output row is
  ``0 · y <= -1``. Every bound method proves it at once (``g = 0 - (-1) = 1 > 0``) and the
  property's ``name`` ends with ``" (vacuous)"``.
* **Size and time.** A ``.gz`` file is decompressed in pieces and may expand to at most
  256 MiB (``NNCERT_MAX_DECOMPRESSED_BYTES``, see :mod:`nncert.verify.fileio`);
  ``time_limit`` bounds reading and parsing (:class:`~nncert.verify.errors.TimeLimitError`).

VNN-LIB 2.0 (through the official ``vnnlib`` package, imported lazily): the package parses and
type-checks the query; nncert converts its typed AST itself (``BoolExpr`` walk with the same DNF
code as above, ``ArithExpr.to_linear_expr()`` for the comparisons; when that refuses a product
of variables, an own walk of ``Var``, ``Float``/``Int``, ``Negate``, ``Plus``, ``Minus`` and
``Multiply`` into the same polynomials as the 1.0 reader) rather than calling
``vnnlib.compat.transform``. In ``vnnlib`` 1.0.2 that transform reads ``==`` as ``<=`` only
(dropping half of the equality), supports only one input tensor, and mis-combines several
asserts when one is an ``and`` and another an ``or`` (the ``and`` becomes a separate disjunct
without output constraints, i.e. "always unsafe"); the own conversion has none of these issues
and gives the same cases otherwise (checked in the tests). Single-network queries become a
:class:`~nncert.verify.spec.Property` (several input/output tensors are concatenated in
declaration order, each flattened in C order; hidden tensors, ``declare-hidden``, are further
output columns after every output, in declaration order, so the network must output
``[Y_1; ..; Y_q; H_1; ..; H_r]``: :mod:`nncert.verify.onnx_io` rewrites an ONNX model with
several inputs/outputs or hidden tensors into that single-input single-output form, and
``nncert-vnnlib`` does so; hidden tensors are accepted only with
``load_vnnlib(..., hidden=True)``), or a
:class:`~nncert.verify.spec.MixedProperty` when constraints involve inputs beyond their bounds,
or a :class:`~nncert.verify.spec.PolynomialProperty` with products of variables;
queries with several networks (``equal-to`` / ``isomorphic-to``) become a
:class:`RelationalProperty` (products of variables and hidden tensors are refused there).
``vnnlib`` 1.0.2 reads ONNX names only on ``declare-hidden`` and keeps their double quotes;
:attr:`~nncert.verify.spec.TensorDecl.onnx_name` has them removed.

All errors are :class:`~nncert.verify.errors.InvalidPropertyError` with a one-line message
``"<path>: line N: <problem>"`` (or ``"<path>: <problem>"`` when no line applies).
"""

from __future__ import annotations

import gzip
import json
import math
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias, TypeVar

import numpy as np
from numpy.typing import ArrayLike

from nncert.verify.errors import InvalidPropertyError
from nncert.verify.fileio import check_deadline, deadline_from, read_input, write_atomic
from nncert.verify.network import FloatArray
from nncert.verify.spec import (
    MAX_MONOMIAL_DEGREE,
    MAX_MONOMIALS,
    RELATION_KINDS,
    Box,
    MixedProperty,
    NetworkDecl,
    PolynomialProperty,
    Property,
    RelationalCase,
    RelationalProperty,
    TensorDecl,
    UnsafeCase,
)

MAX_DISJUNCTS = 100_000
"""Largest DNF (number of disjuncts) :func:`load_vnnlib` accepts before giving up."""

#: the message for products of variables where nncert does not decide them (several networks)
_POLY_UNSUPPORTED = "polynomial constraints (products of variables) are not supported"

_MAX_DNF_ATOMS = 20_000_000  # total comparisons over all disjuncts (memory guard)


# --------------------------------------------------------------------------------------------
# Internal constraint representation shared by the 1.0 and 2.0 front ends
# --------------------------------------------------------------------------------------------


_ErrFn: TypeAlias = Callable[[int | None, str], InvalidPropertyError]


@dataclass(slots=True)
class _Atom:
    """One comparison, normalised to ``sum_v coefs[v] * v  (<= | ==)  rhs``.

    ``kind`` is ``"true"``/``"false"`` (no variables), ``"bound"`` (one input variable:
    ``lo <= x_var <= hi``) or ``"row"`` (a linear row over variable ids).
    """

    kind: str
    coefs: dict[int, float]
    rhs: float
    eq: bool
    var: int = -1
    lo: float = -np.inf
    hi: float = np.inf
    line: int = 0


def _make_atom(
    coefs: dict[int, float],
    rhs: float,
    eq: bool,
    n_x: int,
    line: int,
    describe: Callable[[], str],
    err: _ErrFn,
) -> _Atom:
    """Classify a normalised comparison (a bound on one input, a row, or a constant).

    ``describe`` renders the comparison for error messages (called only on error).
    """
    rhs += 0.0  # -0.0 -> 0.0
    coefs = {v: c for v, c in coefs.items() if c != 0.0}
    if not math.isfinite(rhs) or not all(map(math.isfinite, coefs.values())):
        raise err(line, f"non-finite coefficient or constant in {describe()}")
    if not coefs:
        ok = (rhs == 0.0) if eq else (rhs >= 0.0)
        return _Atom("true" if ok else "false", coefs, rhs, eq)
    xs = [v for v in coefs if v < n_x]
    if xs and len(coefs) == 1:
        v = xs[0]
        c = coefs[v]
        val = rhs / c
        if eq:
            return _Atom("bound", coefs, rhs, eq, v, val, val, line)
        if c > 0:
            return _Atom("bound", coefs, rhs, eq, v, -np.inf, val, line)
        return _Atom("bound", coefs, rhs, eq, v, val, np.inf, line)
    return _Atom("row", coefs, rhs, eq)


_Linear: TypeAlias = tuple[dict[int, float], float]


class _Monomials:
    """Nonlinear monomials of one parse, interned as pseudo-variables.

    Variable ids ``0 .. base - 1`` are the declared variables; the monomial with sorted factor
    ids ``key`` (degree 2 to :data:`~nncert.verify.spec.MAX_MONOMIAL_DEGREE`) gets the id
    ``base + k`` (``k``: order of first appearance). A linear form over such ids
    (``(coefs, constant)``) is then a polynomial, and the comparisons built from it are
    ordinary rows whose monomial columns :func:`_to_property` turns into a
    :class:`~nncert.verify.spec.PolynomialProperty`.
    """

    def __init__(self, base: int, err: _ErrFn) -> None:
        self.base = base
        self.err = err
        self.keys: list[tuple[int, ...]] = []
        self.ids: dict[tuple[int, ...], int] = {}

    def factors(self, v: int) -> tuple[int, ...]:
        """The factor ids of variable or monomial ``v``."""
        return (v,) if v < self.base else self.keys[v - self.base]

    def _intern(self, key: tuple[int, ...], line: int, describe: Callable[[], str]) -> int:
        if len(key) > MAX_MONOMIAL_DEGREE:
            raise self.err(
                line,
                f"polynomial term of degree {len(key)} in {describe()}: at most degree "
                f"{MAX_MONOMIAL_DEGREE} is supported",
            )
        v = self.ids.get(key)
        if v is None:
            if len(self.keys) >= MAX_MONOMIALS:
                raise self.err(
                    line,
                    f"polynomial constraints with more than {MAX_MONOMIALS} distinct products "
                    f"of variables are not supported (at {describe()})",
                )
            v = self.base + len(self.keys)
            self.keys.append(key)
            self.ids[key] = v
        return v

    def product(self, p: _Linear, q: _Linear, line: int, describe: Callable[[], str]) -> _Linear:
        """The polynomial ``p * q`` (both may contain monomials)."""
        (cp, kp), (cq, kq) = p, q
        coefs: dict[int, float] = {}
        for v, a in cp.items():
            coefs[v] = coefs.get(v, 0.0) + a * kq
        for v, a in cq.items():
            coefs[v] = coefs.get(v, 0.0) + kp * a
        for v, a in cp.items():
            fv = self.factors(v)
            for w, c in cq.items():
                m = self._intern(tuple(sorted(fv + self.factors(w))), line, describe)
                coefs[m] = coefs.get(m, 0.0) + a * c
        return coefs, kp * kq


_T = TypeVar("_T")
_Dnf = list[list[_Atom]]
_NameFn: TypeAlias = Callable[[int], str]


def _ticker(deadline: float | None, path: str) -> Callable[[], None]:
    """A cheap callable that raises :class:`TimeLimitError` once ``deadline`` has passed
    (it looks at the clock every 1024 calls)."""
    if deadline is None:
        return lambda: None
    count = [0]

    def tick() -> None:
        count[0] += 1
        if not count[0] & 1023:
            check_deadline(deadline, path, "parsing")

    return tick


def _at(atom: _Atom) -> str:
    return f" (line {atom.line})" if atom.line > 0 else ""


def _empty_box_message(atoms: Iterable[_Atom], names: _NameFn) -> str | None:
    """``"empty input box: X_3 has lower bound ... > upper bound ..."`` when the bound atoms
    among ``atoms`` contradict each other, else ``None``."""
    lows: dict[int, _Atom] = {}
    highs: dict[int, _Atom] = {}
    for a in atoms:
        if a.kind != "bound":
            continue
        if a.lo > -np.inf and (a.var not in lows or a.lo > lows[a.var].lo):
            lows[a.var] = a
        if a.hi < np.inf and (a.var not in highs or a.hi < highs[a.var].hi):
            highs[a.var] = a
    for v in sorted(lows):
        lo, hi = lows[v], highs.get(v)
        if hi is not None and lo.lo > hi.hi:
            return (
                f"empty input box: {names(v)} has lower bound {float(lo.lo)!r}{_at(lo)} > "
                f"upper bound {float(hi.hi)!r}{_at(hi)}"
            )
    return None


def _and_combine(
    dnfs: Sequence[_Dnf], err: _ErrFn, line: int, names: _NameFn | None = None
) -> tuple[list[_Atom], _Dnf]:
    """Conjoin DNFs: return the atoms shared by every disjunct and the per-disjunct tails.

    With ``names`` (input variable names), bounds that the conjunction states directly and
    that contradict each other (an empty input box, almost always a typo) raise.
    """
    base: list[_Atom] = []
    tails: _Dnf = [[]]
    for d in dnfs:
        if len(d) == 1:
            base.extend(d[0])
    if names is not None:
        problem = _empty_box_message(base, names)
        if problem is not None:
            raise err(None, problem)
    base = []
    for d in dnfs:
        if len(d) == 1:
            base.extend(d[0])
            continue
        if not d:
            return [], []
        n = len(tails) * len(d)
        if n > MAX_DISJUNCTS:
            raise err(
                line,
                f"disjunctive normal form has more than {MAX_DISJUNCTS} disjuncts ({n} needed); "
                "the property is too large",
            )
        tails = [t + s for t in tails for s in d]
        if sum(map(len, tails)) > _MAX_DNF_ATOMS:
            raise err(line, "disjunctive normal form is too large")
    return base, tails


def _atom_dnf(atom: _Atom) -> _Dnf:
    """DNF of one comparison: ``[[]]`` (true), ``[]`` (false) or ``[[atom]]``."""
    if atom.kind == "true":
        return [[]]
    if atom.kind == "false":
        return []
    return [[atom]]


def _dnf(
    root: _T,
    kind_of: Callable[[_T], str],
    children: Callable[[_T], Sequence[_T]],
    atomize: Callable[[_T], _Atom],
    line_of: Callable[[_T], int],
    err: _ErrFn,
    names: _NameFn | None = None,
    tick: Callable[[], None] = lambda: None,
) -> _Dnf:
    """Iterative (no Python recursion) DNF of an and/or tree with comparison leaves.

    ``names`` enables the empty-box check of every ``and`` (see :func:`_and_combine`);
    ``tick`` is called once per node (a deadline check).
    """
    stack: list[tuple[_T, bool]] = [(root, False)]
    results: list[_Dnf] = []
    while stack:
        tick()
        node, expanded = stack.pop()
        kind = kind_of(node)
        if kind == "atom":
            results.append(_atom_dnf(atomize(node)))
            continue
        kids = children(node)
        if not expanded:
            stack.append((node, True))
            stack.extend((k, False) for k in reversed(kids))
            continue
        parts = results[len(results) - len(kids) :] if kids else []
        del results[len(results) - len(kids) :]
        if kind == "or":
            merged: _Dnf = []
            for p in parts:
                merged.extend(p)
                if len(merged) > MAX_DISJUNCTS:
                    raise err(
                        line_of(node),
                        f"disjunctive normal form has more than {MAX_DISJUNCTS} disjuncts; "
                        "the property is too large",
                    )
            results.append(merged)
        else:
            base, tails = _and_combine(parts, err, line_of(node), names)
            results.append([base + t for t in tails])
    return results[0]


@dataclass(slots=True)
class _Disjunct:
    lower: FloatArray
    upper: FloatArray
    rows: list[_Atom]


def _assemble(
    base: list[_Atom], tails: _Dnf, n_x: int, tick: Callable[[], None] = lambda: None
) -> tuple[list[_Disjunct], list[_Disjunct]]:
    """Apply bounds per disjunct; return (non-empty disjuncts, dropped empty ones)."""
    lo0 = np.full(n_x, -np.inf)
    hi0 = np.full(n_x, np.inf)
    rows0: list[_Atom] = []
    for a in base:
        if a.kind == "bound":
            if a.lo > lo0[a.var]:
                lo0[a.var] = a.lo
            if a.hi < hi0[a.var]:
                hi0[a.var] = a.hi
        else:
            rows0.append(a)
    kept: list[_Disjunct] = []
    dropped: list[_Disjunct] = []
    for tail in tails:
        tick()
        lo, hi, rows = lo0.copy(), hi0.copy(), list(rows0)
        for a in tail:
            if a.kind == "bound":
                if a.lo > lo[a.var]:
                    lo[a.var] = a.lo
                if a.hi < hi[a.var]:
                    hi[a.var] = a.hi
            else:
                rows.append(a)
        d = _Disjunct(lo, hi, rows)
        (dropped if np.any(lo > hi) else kept).append(d)
    return kept, dropped


def _rows_matrix(rows: Sequence[_Atom], offset: int, n_cols: int) -> tuple[FloatArray, FloatArray]:
    """``A z <= b`` from row atoms (variable id ``v`` -> column ``v - offset``; ``=``: 2 rows)."""
    n = sum(2 if r.eq else 1 for r in rows)
    A = np.zeros((n, n_cols))
    b = np.zeros(n)
    i = 0
    for r in rows:
        for v, c in r.coefs.items():
            A[i, v - offset] = c
        b[i] = r.rhs
        i += 1
        if r.eq:
            for v, c in r.coefs.items():
                A[i, v - offset] = -c
            b[i] = -r.rhs + 0.0  # no -0.0
            i += 1
    return A, b


def _check_region(
    kept: list[_Disjunct], dropped: list[_Disjunct], names: _NameFn, err: _ErrFn
) -> None:
    """Raise when every disjunct was dropped for an empty input box (nothing can be verified
    about an empty input region; it is a mistake in the property, not a proof)."""
    if kept or not dropped:
        return
    d = dropped[0]
    i = int(np.argmax(d.lower > d.upper))
    which = f"disjunct 1 of {len(dropped)}: " if len(dropped) > 1 else ""
    raise err(
        None,
        f"empty input region: every disjunct has an empty input box ({which}{names(i)} has "
        f"lower bound {float(d.lower[i])!r} > upper bound {float(d.upper[i])!r})",
    )


def _to_property(
    kept: list[_Disjunct],
    n_x: int,
    n_y: int,
    name: str,
    input_names: Callable[[int], str],
    err: _ErrFn,
    monos: _Monomials | None = None,
) -> Property | MixedProperty | PolynomialProperty:
    """Build the :class:`Property` (checking that every input is bounded), a
    :class:`MixedProperty` when some row involves an input (columns ``[y; x]``), or a
    :class:`PolynomialProperty` when some row involves a product of variables (columns
    ``[y; x; m]``, the monomials ``m`` that occur in the kept rows, in order of appearance)."""
    if not kept:
        vac = UnsafeCase(Box(np.zeros(n_x), np.zeros(n_x)), np.zeros((1, n_y)), np.array([-1.0]))
        return Property((vac,), name=f"{name} (vacuous)")
    base = n_x + n_y
    used = sorted({v for d in kept for r in d.rows for v in r.coefs if v >= base})
    mixed = bool(used) or any(v < n_x for d in kept for r in d.rows for v in r.coefs)
    n_cols = base + (len(monos.keys) if monos is not None else 0)
    cases = []
    for k, d in enumerate(kept):
        bad = ~np.isfinite(d.lower) | ~np.isfinite(d.upper)
        if bad.any():
            i = int(np.argmax(bad))
            side = "lower" if not np.isfinite(d.lower[i]) else "upper"
            where = f" in disjunct {k + 1} of {len(kept)}" if len(kept) > 1 else ""
            raise err(None, f"input {input_names(i)} has no finite {side} bound{where}")
        A, b = _rows_matrix(d.rows, 0, n_cols) if mixed else _rows_matrix(d.rows, n_x, n_y)
        if mixed:  # columns [x; y; all monomials] -> [y; x; used monomials]
            A = np.hstack([A[:, n_x:base], A[:, :n_x], A[:, used]])
        cases.append(UnsafeCase(Box(d.lower, d.upper), A, b))
    if used:
        assert monos is not None

        def column(v: int) -> int:  # reader id (x first) -> column of [y; x]
            return v + n_y if v < n_x else v - n_x

        keys = tuple(tuple(sorted(column(v) for v in monos.factors(u))) for u in used)
        return PolynomialProperty(tuple(cases), n_outputs=n_y, monomials=keys, name=name)
    if mixed:
        return MixedProperty(tuple(cases), n_outputs=n_y, name=name)
    return Property(tuple(cases), name=name)


def _error_factory(path: str) -> _ErrFn:
    def make(line: int | None, problem: str) -> InvalidPropertyError:
        problem = " ".join(problem.split())
        if line is None or line <= 0:
            return InvalidPropertyError(f"{path}: {problem}")
        return InvalidPropertyError(f"{path}: line {line}: {problem}")

    return make


# --------------------------------------------------------------------------------------------
# VNN-LIB 1.0 reader
# --------------------------------------------------------------------------------------------

# An s-expression list is a Python list ``[line, item_1, item_2, ...]`` whose first entry is the
# line of its ``(``; atoms are plain strings (their line is that of the enclosing list's
# ``(``, exact for the usual one-comparison-per-line layout).
_SList: TypeAlias = list[Any]
_SExpr: TypeAlias = "str | _SList"

_TOKEN_RE = re.compile(r"[()]|[^\s();]+")
_NUMBER_RE = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_VAR_RE = re.compile(r"([XY])_(\d+)")
_CMP_OPS = {"<=", ">=", "<", ">", "="}
_ATOM = r"([^\s();]+)"
_SIMPLE_ASSERT_RE = re.compile(
    rf"\s*\(\s*assert\s*\(\s*(<=|>=|<|>|=)\s+{_ATOM}\s+{_ATOM}\s*\)\s*\)\s*"
)
_SIMPLE_DECLARE_RE = re.compile(rf"\s*\(\s*declare-const\s+{_ATOM}\s+{_ATOM}\s*\)\s*")
_ARITH_OPS = {"+", "-", "*", "/"}
_NOOP_COMMANDS = {"check-sat", "get-model", "exit", "set-logic", "set-info", "set-option"}


def _read_sexprs(text: str, err: _ErrFn, tick: Callable[[], None] = lambda: None) -> list[_SList]:
    """Tokenise (``;`` comments run to the end of the line) and build s-expressions iteratively.

    ``tick`` is called once per line (a deadline check).
    """
    top: list[_SList] = []
    stack: list[_SList] = []
    findall = _TOKEN_RE.findall
    simple_assert = _SIMPLE_ASSERT_RE.fullmatch
    simple_declare = _SIMPLE_DECLARE_RE.fullmatch
    for lineno, raw in enumerate(text.split("\n"), 1):
        tick()
        semi = raw.find(";")
        line = raw if semi < 0 else raw[:semi]
        if not stack and line:
            # fast paths: one-line (assert (op a b)) and (declare-const name sort)
            m = simple_assert(line)
            if m is not None:
                top.append([lineno, "assert", [lineno, *m.groups()]])
                continue
            m = simple_declare(line)
            if m is not None:
                top.append([lineno, "declare-const", *m.groups()])
                continue
        for tok in findall(line):
            if tok == "(":
                node: _SList = [lineno]
                (stack[-1] if stack else top).append(node)
                stack.append(node)
            elif tok == ")":
                if not stack:
                    raise err(lineno, "unexpected ')' (unbalanced parentheses)")
                stack.pop()
            elif stack:
                stack[-1].append(tok)
            else:
                raise err(lineno, f"unexpected token {_short(tok)} outside parentheses")
    if stack:
        raise err(stack[0][0], "'(' is never closed (unbalanced parentheses)")
    return top


def _short(s: str, limit: int = 60) -> str:
    return repr(s if len(s) <= limit else s[: limit - 3] + "...")


def _render(node: _SExpr, limit: int = 100) -> str:
    """Source-like text of an s-expression (iterative, truncated)."""
    out: list[str] = []
    size = 0
    stack: list[Any] = [node]
    while stack and size <= limit:
        n = stack.pop()
        if isinstance(n, tuple):
            piece = n[0]
        elif isinstance(n, str):
            piece = n + " "
        else:
            piece = "("
            stack.append((") ",))
            stack.extend(reversed(n[1:]))
        out.append(piece)
        size += len(piece)
    s = "".join(out).replace(" )", ")").strip()
    return s if size <= limit else s[:limit] + "..."


def _head(node: _SList) -> str | None:
    if len(node) > 1 and isinstance(node[1], str):
        return str(node[1])
    return None


class _V1Reader:
    """State of one VNN-LIB 1.0 parse."""

    def __init__(self, text: str, path: str, deadline: float | None = None) -> None:
        self.path = path
        self.err = _error_factory(path)
        self.text = text
        self.n_x = 0
        self.lookup: dict[str, int] = {}
        self.tick = _ticker(deadline, path)
        self.monos = _Monomials(0, self.err)

    def read(self) -> Property | MixedProperty | PolynomialProperty:
        err = self.err
        tick = self.tick
        commands = _read_sexprs(self.text, err, tick)
        if not commands:
            raise err(None, "empty file (no declarations or assertions)")
        xs: dict[int, int] = {}
        ys: dict[int, int] = {}
        asserts: list[_SList] = []
        for cmd in commands:
            head = _head(cmd)
            if head == "declare-const":
                self._declare(cmd, xs, ys)
            elif head == "assert":
                if len(cmd) != 3:
                    raise err(cmd[0], f"assert takes exactly one formula: {_render(cmd)}")
                asserts.append(cmd)
            elif head in _NOOP_COMMANDS:
                continue
            elif head is None:
                raise err(cmd[0], f"expected a command name: {_render(cmd)}")
            else:
                raise err(cmd[0], f"unknown command {_short(head)}")
        if not xs:
            raise err(None, "no input variables (declare-const X_i Real) declared")
        if not ys:
            raise err(None, "no output variables (declare-const Y_j Real) declared")
        n_x = max(xs) + 1
        n_y = max(ys) + 1
        for kind, decl, n in (("X", xs, n_x), ("Y", ys, n_y)):
            if len(decl) != n:
                missing = min(set(range(n)) - set(decl))
                raise err(
                    None,
                    f"{kind}_{missing} is not declared but {kind}_{n - 1} is "
                    f"(indices must be 0..{n - 1})",
                )
        self.n_x = n_x
        self.lookup = {f"X_{i}": i for i in range(n_x)}
        self.lookup.update({f"Y_{j}": n_x + j for j in range(n_y)})
        self.monos = _Monomials(n_x + n_y, err)

        def names(i: int) -> str:
            return f"X_{i}"

        dnfs: list[_Dnf] = []
        for a in asserts:
            tick()
            formula = a[2]
            if isinstance(formula, list) and _head(formula) in _CMP_OPS:
                dnfs.append(_atom_dnf(self._atomize(formula)))  # fast path: one comparison
            else:
                dnfs.append(
                    _dnf(
                        formula,
                        self._kind_of,
                        self._children,
                        self._atomize,
                        self._line_of,
                        err,
                        names,
                        tick,
                    )
                )
        base, tails = _and_combine(dnfs, err, asserts[0][0] if asserts else 0, names)
        kept, dropped = _assemble(base, tails, n_x, tick)
        _check_region(kept, dropped, names, err)
        return _to_property(kept, n_x, n_y, Path(self.path).name, names, err, self.monos)

    def _declare(self, cmd: _SList, xs: dict[int, int], ys: dict[int, int]) -> None:
        err = self.err
        line = cmd[0]
        if len(cmd) != 4 or not all(isinstance(t, str) for t in cmd[1:]):
            raise err(line, f"expected (declare-const NAME Real): {_render(cmd)}")
        name, sort = str(cmd[2]), str(cmd[3])
        if sort != "Real":
            raise err(
                line, f"variable {_short(name)} has sort {_short(sort)}; only Real is supported"
            )
        m = _VAR_RE.fullmatch(name)
        if m is None:
            raise err(line, f"variable name {_short(name)} is not supported (expected X_i or Y_j)")
        idx = int(m.group(2))
        table = xs if m.group(1) == "X" else ys
        if idx in table:
            raise err(line, f"{name} is declared twice (first at line {table[idx]})")
        table[idx] = line

    # -- formulas ----------------------------------------------------------------------------

    def _kind_of(self, node: _SExpr) -> str:
        if isinstance(node, str):
            raise self.err(None, f"expected a formula, got {_short(node)}")
        head = _head(node)
        if head == "and":
            return "and"
        if head == "or":
            return "or"
        if head in _CMP_OPS:
            return "atom"
        if head is None:
            raise self.err(node[0], f"expected a formula: {_render(node)}")
        raise self.err(node[0], f"operator {_short(head)} is not supported in formulas")

    @staticmethod
    def _children(node: _SExpr) -> Sequence[_SExpr]:
        return node[2:]

    @staticmethod
    def _line_of(node: _SExpr) -> int:
        return int(node[0]) if isinstance(node, list) else 0

    def _atomize(self, node: _SExpr) -> _Atom:
        assert isinstance(node, list)
        line = node[0]
        op = node[1]
        if len(node) != 4:
            raise self.err(line, f"comparison needs exactly two arguments: {_render(node)}")
        lhs, rhs_node = node[2], node[3]
        lc, lk = self._leaf(lhs, line) if isinstance(lhs, str) else self._linear(lhs)
        rc, rk = self._leaf(rhs_node, line) if isinstance(rhs_node, str) else self._linear(rhs_node)
        # lhs - rhs  (op)  0  ->  sum coefs * v  (<= | ==)  rhs
        coefs = dict(lc)
        for v, c in rc.items():
            coefs[v] = coefs.get(v, 0.0) - c
        rhs = rk - lk
        if op == ">=" or op == ">":
            coefs = {v: -c for v, c in coefs.items()}
            rhs = -rhs
        return _make_atom(coefs, rhs, op == "=", self.n_x, line, lambda: _render(node), self.err)

    def _leaf(self, tok: str, line: int) -> _Linear:
        v = self.lookup.get(tok)
        if v is not None:
            return {v: 1.0}, 0.0
        if _NUMBER_RE.fullmatch(tok):
            val = float(tok)
            if not math.isfinite(val):
                raise self.err(line, f"constant {_short(tok)} is out of range")
            return {}, val
        if _VAR_RE.fullmatch(tok):
            raise self.err(line, f"variable {tok} is not declared")
        raise self.err(line, f"expected a number or a declared variable, got {_short(tok)}")

    def _linear(self, node: _SList) -> _Linear:
        """Linear form ``(coefs, constant)`` of a term, evaluated with an explicit stack."""
        stack: list[tuple[_SExpr, bool, int]] = [(node, False, node[0])]
        results: list[_Linear] = []
        while stack:
            n, expanded, pline = stack.pop()
            if isinstance(n, str):
                results.append(self._leaf(n, pline))
                continue
            line = n[0]
            op = _head(n)
            args = n[2:]
            if not expanded:
                if op not in _ARITH_OPS:
                    what = _short(op) if op is not None else _render(n)
                    raise self.err(line, f"unsupported term {what} (expected + - * /)")
                if not args:
                    raise self.err(line, f"{op} needs arguments: {_render(n)}")
                if op == "/" and len(args) != 2:
                    raise self.err(line, f"/ takes two arguments: {_render(n)}")
                stack.append((n, True, line))
                stack.extend((a, False, line) for a in reversed(args))
                continue
            parts = results[len(results) - len(args) :]
            del results[len(results) - len(args) :]
            results.append(self._combine(op, parts, n))
        return results[0]

    def _combine(self, op: str | None, parts: list[_Linear], n: _SList) -> _Linear:
        if op == "+" or (op == "-" and len(parts) > 1):
            coefs = dict(parts[0][0])
            const = parts[0][1]
            sign = 1.0 if op == "+" else -1.0
            for c, k in parts[1:]:
                for v, a in c.items():
                    coefs[v] = coefs.get(v, 0.0) + sign * a
                const += sign * k
            return coefs, const
        if op == "-":
            c, k = parts[0]
            return {v: -a for v, a in c.items()}, -k
        if op == "*":
            if sum(1 for c, _ in parts if c) > 1:  # a product of variables: a polynomial
                acc = parts[0]
                for p in parts[1:]:
                    acc = self.monos.product(acc, p, n[0], lambda: _render(n))
                return acc
            scale = 1.0
            var_part: _Linear | None = None
            for c, k in parts:
                if c:
                    var_part = (c, k)
                else:
                    scale *= k
            if var_part is None:
                return {}, scale
            return {v: scale * a for v, a in var_part[0].items()}, scale * var_part[1]
        # "/"
        (c, k), (cd, kd) = parts
        if cd:
            raise self.err(n[0], f"division by a variable is not supported: {_render(n)}")
        if kd == 0.0:
            raise self.err(n[0], f"division by zero: {_render(n)}")
        return {v: a / kd for v, a in c.items()}, k / kd


def _vnnlib1_property(
    text: str, path: str, deadline: float | None = None
) -> Property | MixedProperty | PolynomialProperty:
    return _V1Reader(text, path, deadline).read()


# --------------------------------------------------------------------------------------------
# VNN-LIB 2.0 through the `vnnlib` package
# --------------------------------------------------------------------------------------------

_DTYPE_KEYWORDS = {
    "F16": "float16",
    "F32": "float32",
    "F64": "float64",
    "BF16": "bfloat16",
    "Unknown": "Real",
}

_V2_RE = re.compile(r"\(\s*(?:vnnlib-version|declare-network)\b")
_LINE_RE = re.compile(r"\bline (\d+)")


def _is_v2(text: str) -> bool:
    return _V2_RE.search(re.sub(r";[^\n]*", "", text)) is not None


def _package_error(exc: BaseException, err: _ErrFn) -> InvalidPropertyError:
    """Turn a ``VNNLibException`` (JSON or plain text) into a one-line error."""
    msg = str(exc.args[0]) if exc.args else str(exc)
    try:
        data = json.loads(msg)
    except ValueError:
        data = None
    if isinstance(data, dict) and data.get("errors"):
        first = data["errors"][0]
        problem = str(first.get("message", "error"))
        if first.get("offendingSymbol"):
            problem += f" {first['offendingSymbol']!r}"
        if first.get("hint"):
            problem += f" ({first['hint']})"
        extra = len(data["errors"]) - 1
        if extra > 0:
            problem += f" [+{extra} more error{'s' if extra > 1 else ''}]"
        line = first.get("line")
        return err(int(line) if isinstance(line, int) else None, problem)
    m = _LINE_RE.search(msg)
    return err(int(m.group(1)) if m else None, f"VNN-LIB 2.0: {msg}")


def _tensor_decl(d: Any) -> TensorDecl:
    dt = getattr(d.dtype, "name", str(d.dtype))
    return TensorDecl(
        name=str(d.name),
        shape=tuple(int(s) for s in d.shape),
        dtype=_DTYPE_KEYWORDS.get(dt, dt.lower()),
        onnx_name=onnx_name_text(d.onnx_name),
    )


def onnx_name_text(name: Any) -> str | None:
    """The ONNX tensor name of a declaration (``vnnlib`` 1.0.2 keeps the double quotes)."""
    if name is None:
        return None
    text = str(name)
    if len(text) >= 2 and text[0] == text[-1] == '"':
        text = text[1:-1]
    return text or None


class _V2Converter:
    """Convert a parsed ``vnnlib.Query`` into a Property or RelationalProperty."""

    def __init__(
        self, query: Any, path: str, deadline: float | None = None, hidden: bool = False
    ) -> None:
        import vnnlib

        self.vnnlib = vnnlib
        self.query = query
        self.path = path
        self.err = _error_factory(path)
        self.tick = _ticker(deadline, path)
        nets: list[NetworkDecl] = []
        for n in query.networks:
            eq_to = str(n.equal_to or "")
            iso_to = str(n.isometric_to or "")
            relation, related = (
                ("equal-to", eq_to)
                if eq_to
                else ("isomorphic-to", iso_to)
                if iso_to
                else (None, None)
            )
            nets.append(
                NetworkDecl(
                    name=str(n.name),
                    inputs=tuple(_tensor_decl(d) for d in n.inputs),
                    outputs=tuple(_tensor_decl(d) for d in n.outputs),
                    relation=relation,
                    related_to=related,
                )
            )
        if not nets:
            raise self.err(None, "no network declared")
        self.nets = nets
        # variable name -> (offset of its first entry in z, shape)
        self.vars: dict[str, tuple[int, tuple[int, ...]]] = {}
        off = 0
        for net in nets:
            for t in net.inputs:
                self.vars[t.name] = (off, t.shape)
                off += t.size
        self.n_x = off
        for net in nets:
            for t in net.outputs:
                self.vars[t.name] = (off, t.shape)
                off += t.size
        self.relational = len(nets) > 1
        # hidden tensors (declare-hidden): after every output, in declaration order; the
        # network must then output [Y_1; ..; Y_q; H_1; ..; H_r] (nncert.verify.onnx_io)
        declared = [h for n in query.networks for h in getattr(n, "hidden", ())]
        if declared and self.relational:
            raise self.err(
                None,
                "hidden tensors (declare-hidden) are not supported in queries over several "
                "networks",
            )
        if declared and not hidden:
            raise self.err(
                None,
                "hidden tensors (declare-hidden) need the model rewritten to output them "
                "(nncert-vnnlib does; load_vnnlib(..., hidden=True) with "
                "nncert.verify.onnx_io)",
            )
        for h in declared:
            t = _tensor_decl(h)
            self.vars[t.name] = (off, t.shape)
            off += t.size
        self.n_y = off - self.n_x
        self.monos = _Monomials(off, self.err)

    def convert(self) -> Property | MixedProperty | PolynomialProperty | RelationalProperty:
        vn = self.vnnlib
        err = self.err

        def kind_of(node: Any) -> str:
            if isinstance(node, vn.And):
                return "and"
            if isinstance(node, vn.Or):
                return "or"
            if isinstance(node, vn.NotEqual):
                raise err(self._line(node), f"'!=' is not supported: {node}")
            if isinstance(node, vn.Comparison):
                return "atom"
            raise err(None, f"unsupported formula: {node}")

        def children(node: Any) -> Sequence[Any]:
            return tuple(node.args)

        input_names = [f"{t.name}[{j}]" for n in self.nets for t in n.inputs for j in range(t.size)]
        names = input_names.__getitem__
        dnfs = [
            _dnf(a.expr, kind_of, children, self._atomize, self._line, err, names, self.tick)
            for a in self.query.assertions
        ]
        base, tails = _and_combine(dnfs, err, 0, names)
        kept, dropped = _assemble(base, tails, self.n_x, self.tick)
        _check_region(kept, dropped, names, err)
        name = Path(self.path).name
        if not self.relational:
            return _to_property(kept, self.n_x, self.n_y, name, names, err, self.monos)
        cases = []
        for d in kept:
            A, b = _rows_matrix(d.rows, 0, self.n_x + self.n_y)
            cases.append(RelationalCase(d.lower, d.upper, A, b))
        return RelationalProperty(tuple(self.nets), tuple(cases), name=name)

    def _line(self, node: Any) -> int:
        """Best-effort source line of a comparison (from its first variable or literal)."""
        stack = [node]
        while stack:
            n = stack.pop()
            line = getattr(n, "line", None)
            if isinstance(line, int) and line > 0:
                return line
            try:
                stack.extend(reversed(n.children()))
            except Exception:  # children() is best effort on foreign nodes
                continue
        return 0

    def _var_id(self, var: Any, line: int) -> int:
        """The id of a (declared input or output) variable entry: its offset in ``z``."""
        entry = self.vars.get(str(var.name))
        if entry is None:
            kind = getattr(var.kind, "name", "")
            what = "hidden variables are" if kind == "Hidden" else f"variable {var.name} is"
            raise self.err(line, f"{what} not supported in constraints")
        off, shape = entry
        flat = 0
        for i, s in zip(var.indices, shape):
            flat = flat * s + int(i)
        return off + flat

    def _linear(self, expr: Any, line: int) -> _Linear:
        try:
            lin = expr.to_linear_expr()
        except self.vnnlib.VNNLibException:
            return self._polynomial(expr, line)
        coefs: dict[int, float] = {}
        for t in lin.terms:
            v = self._var_id(t.var, line)
            coefs[v] = coefs.get(v, 0.0) + float(t.coeff)
        return coefs, float(lin.constant)

    def _polynomial(self, expr: Any, line: int) -> _Linear:
        """The polynomial of a term with products of variables (``to_linear_expr`` refuses
        them): an explicit-stack walk of ``Var``, numerals, ``Negate``, ``Plus``, ``Minus``
        and ``Multiply``."""
        vn = self.vnnlib
        if self.relational:
            raise self.err(line, f"{_POLY_UNSUPPORTED} in queries over several networks: {expr}")

        def describe() -> str:
            return " ".join(str(expr).split())

        stack: list[tuple[Any, bool]] = [(expr, False)]
        results: list[_Linear] = []
        while stack:
            self.tick()
            node, expanded = stack.pop()
            if isinstance(node, vn.Var):
                results.append(({self._var_id(node, line): 1.0}, 0.0))
                continue
            if isinstance(node, vn.Float | vn.Int | vn.Literal):
                val = float(node.value if hasattr(node, "value") else node.lexeme)
                if not math.isfinite(val):
                    raise self.err(line, f"constant out of range in {describe()}")
                results.append(({}, val))
                continue
            if isinstance(node, vn.Negate):
                kids: tuple[Any, ...] = (node.expr,)
            elif isinstance(node, vn.Plus | vn.Multiply):
                kids = tuple(node.args)
            elif isinstance(node, vn.Minus):
                kids = (node.head, *node.rest)
            else:
                raise self.err(line, f"unsupported term {type(node).__name__} in {describe()}")
            if not expanded:
                stack.append((node, True))
                stack.extend((k, False) for k in reversed(kids))
                continue
            parts = results[len(results) - len(kids) :]
            del results[len(results) - len(kids) :]
            if isinstance(node, vn.Multiply):
                acc = parts[0]
                for p in parts[1:]:
                    acc = self.monos.product(acc, p, line, describe)
                results.append(acc)
                continue
            if isinstance(node, vn.Negate) or (isinstance(node, vn.Minus) and len(parts) == 1):
                c, k = parts[0]
                results.append(({v: -a for v, a in c.items()}, -k))
                continue
            sign = 1.0 if isinstance(node, vn.Plus) else -1.0
            coefs = dict(parts[0][0])
            const = parts[0][1]
            for c, k in parts[1:]:
                for v, a in c.items():
                    coefs[v] = coefs.get(v, 0.0) + sign * a
                const += sign * k
            results.append((coefs, const))
        return results[0]

    def _atomize(self, node: Any) -> _Atom:
        vn = self.vnnlib
        line = self._line(node)

        def describe() -> str:
            return " ".join(str(node).split())

        lc, lk = self._linear(node.lhs, line)
        rc, rk = self._linear(node.rhs, line)
        coefs = dict(lc)
        for v, c in rc.items():
            coefs[v] = coefs.get(v, 0.0) - c
        rhs = rk - lk
        if isinstance(node, vn.GreaterEqual | vn.GreaterThan):
            coefs = {v: -c for v, c in coefs.items()}
            rhs = -rhs
        elif not isinstance(node, vn.LessEqual | vn.LessThan | vn.Equal):
            raise self.err(line, f"unsupported comparison: {describe()}")
        return _make_atom(
            coefs,
            rhs,
            isinstance(node, vn.Equal),
            self.n_x,
            line,
            describe,
            self.err,
        )


def _vnnlib2_property(
    text: str, path: str, deadline: float | None = None, hidden: bool = False
) -> Property | MixedProperty | PolynomialProperty | RelationalProperty:
    err = _error_factory(path)
    try:
        import vnnlib
    except ImportError as exc:
        raise InvalidPropertyError(
            f"{path}: VNN-LIB 2.0 needs the 'vnnlib' package (pip install 'nncert[vnnlib]')"
        ) from exc
    try:
        query = vnnlib.parse_query_string(text)  # native code: cannot stop midway
    except Exception as exc:  # VNNLibException or RuntimeError from the bindings
        raise _package_error(exc, err) from exc
    check_deadline(deadline, path, "parsing")
    return _V2Converter(query, path, deadline, hidden).convert()


# --------------------------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------------------------


def _read_text(path: str | os.PathLike[str], deadline: float | None = None) -> str:
    p = os.fspath(path)
    data, was_gzip = read_input(p, deadline=deadline)  # capped, streamed decompression
    if not was_gzip and p.endswith(".gz"):
        raise InvalidPropertyError(f"{p}: not a gzip file (no gzip header)")
    if b"\x00" in data:
        raise InvalidPropertyError(f"{p}: binary data (NUL bytes), not a VNN-LIB text file")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidPropertyError(
            f"{p}: not UTF-8 text (invalid byte at offset {exc.start})"
        ) from exc
    check_deadline(deadline, p)
    return text


def parse_vnnlib_string(
    text: str, *, name: str = "<string>", time_limit: float | None = None
) -> Property | MixedProperty | PolynomialProperty | RelationalProperty:
    """Parse VNN-LIB text (version 1.0 or 2.0); ``name`` is used in messages and as the name.

    See :func:`load_vnnlib` for the semantics, ``time_limit`` and errors.
    """
    deadline = deadline_from(time_limit)
    if _is_v2(text):
        return _vnnlib2_property(text, name, deadline)
    return _vnnlib1_property(text, name, deadline)


def load_vnnlib(
    path: str | os.PathLike[str], *, time_limit: float | None = None, hidden: bool = False
) -> Property | MixedProperty | PolynomialProperty | RelationalProperty:
    """Load a VNN-LIB 1.0 or 2.0 property file (plain or gzip-compressed).

    The file describes the **unsafe set**: the returned :class:`~nncert.verify.spec.Property`
    is a disjunction of :class:`~nncert.verify.spec.UnsafeCase` (``x`` in the input box and
    ``A f(x) <= b``) and **holds** (VNN-LIB ``unsat``) iff no case is satisfiable.
    Strict comparisons are read as non-strict (closed unsafe sets). An empty input box
    (a lower bound above an upper bound) is an error, never a vacuous proof (see the module
    docstring for disjunctions). A ``.gz`` file may expand to at most
    :func:`~nncert.verify.fileio.max_decompressed_bytes` (256 MiB unless
    ``NNCERT_MAX_DECOMPRESSED_BYTES`` says otherwise).

    Args:
        path: a ``.vnnlib`` or ``.vnnlib.gz`` file (gzip is detected from the content).
        time_limit: seconds that reading, decompressing and parsing may take (``None``: no
            limit); checked while decompressing and every 1024 lines or formula nodes (a
            VNN-LIB 2.0 file is parsed by native code, checked before and after).
        hidden: accept hidden tensors (``declare-hidden``) of a single-network 2.0 query as
            output columns after the outputs (the network must then be the rewrite of
            :mod:`nncert.verify.onnx_io`); without it such a query is refused, so that no
            plain network's columns are read as hidden tensors.

    Returns:
        A :class:`~nncert.verify.spec.Property` for VNN-LIB 1.0 files and single-network 2.0
        queries (a :class:`~nncert.verify.spec.MixedProperty` when some constraint involves
        the inputs beyond single-variable bounds, a
        :class:`~nncert.verify.spec.PolynomialProperty` when some constraint has a product
        of variables), a :class:`RelationalProperty` for 2.0 queries over several networks.

    Raises:
        InvalidPropertyError: unreadable file, bad gzip or encoding, a ``.gz`` file expanding
            beyond the cap, syntax errors, unsupported constraints (products of degree above
            4 or more than 256 distinct ones, products in multi-network queries),
            unbounded inputs, an empty input box or a too-large DNF; the message is one line
            of the form
            ``"<path>: line N: <problem>"``.
        TimeLimitError: ``time_limit`` ran out first.
    """
    p = os.fspath(path)
    deadline = deadline_from(time_limit)
    text = _read_text(p, deadline)
    if _is_v2(text):
        return _vnnlib2_property(text, p, deadline, hidden)
    return _vnnlib1_property(text, p, deadline)


# --------------------------------------------------------------------------------------------
# Writers
# --------------------------------------------------------------------------------------------


def _num1(x: float) -> str:
    """Shortest round-tripping decimal (``repr``), as read back by the 1.0 reader."""
    return repr(float(x))


def _num2(x: float) -> str:
    """Positional decimal with a ``.`` (VNN-LIB 2.0 has no exponents and types its literals)."""
    return np.format_float_positional(float(x), unique=True, trim="0")


def _lin_term(items: Iterable[tuple[str, float]], num: Callable[[float], str]) -> str:
    parts = []
    for var, c in items:
        if c == 0.0:
            continue
        if c == 1.0:
            parts.append(var)
        elif c == -1.0:
            parts.append(f"(- {var})")
        else:
            parts.append(f"(* {num(c)} {var})")
    if not parts:
        return num(0.0)
    return parts[0] if len(parts) == 1 else "(+ " + " ".join(parts) + ")"


def _row_atoms(
    A: FloatArray, b: FloatArray, names: Sequence[str], num: Callable[[float], str]
) -> list[str]:
    out = []
    for row, rhs in zip(A, b):
        nz = np.flatnonzero(row)
        if nz.size == 0 and rhs >= 0:
            continue  # 0 <= rhs: always true
        out.append(f"(<= {_lin_term(((names[int(j)], row[j]) for j in nz), num)} {num(rhs)})")
    return out


def _box_atoms(
    lo: ArrayLike, hi: ArrayLike, names: Sequence[str], num: Callable[[float], str]
) -> list[str]:
    out = []
    for name, a, c in zip(names, np.asarray(lo), np.asarray(hi)):
        if np.isfinite(a):
            out.append(f"(>= {name} {num(a)})")
        if np.isfinite(c):
            out.append(f"(<= {name} {num(c)})")
    return out


def _vnnlib1_text(prop: Property) -> str:
    xn = [f"X_{i}" for i in range(prop.n_inputs)]
    yn = [f"Y_{j}" for j in range(prop.n_outputs)]
    lines = [f"; {prop.name}" if prop.name else "; written by nncert", ""]
    lines += [f"(declare-const {v} Real)" for v in xn]
    lines.append("")
    lines += [f"(declare-const {v} Real)" for v in yn]
    lines.append("")
    cases = prop.cases
    shared = all(c.input_box == cases[0].input_box for c in cases)
    if shared:
        box = cases[0].input_box
        lines += [f"(assert {a})" for a in _box_atoms(box.lower, box.upper, xn, _num1)]
        lines.append("")
    if len(cases) == 1:
        c = cases[0]
        lines += [f"(assert {a})" for a in _row_atoms(c.A, c.b, yn, _num1)]
    else:
        lines.append("(assert (or")
        for c in cases:
            atoms = [] if shared else _box_atoms(c.input_box.lower, c.input_box.upper, xn, _num1)
            atoms += _row_atoms(c.A, c.b, yn, _num1)
            lines.append("    (and " + " ".join(atoms) + ")")
        lines.append("))")
    return "\n".join(lines) + "\n"


def _v2_names(t: TensorDecl) -> list[str]:
    if not t.shape:
        return [t.name]
    idx = np.indices(t.shape).reshape(len(t.shape), -1).T
    return [f"{t.name}[{','.join(str(int(i)) for i in row)}]" for row in idx]


def _tensor_decl_text(kw: str, t: TensorDecl) -> str:
    shape = "[" + ",".join(str(s) for s in t.shape) + "]"
    onnx = f' "{t.onnx_name}"' if t.onnx_name else ""
    return f"  ({kw} {t.name} {t.dtype} {shape}{onnx})"


def _vnnlib2_text(prop: RelationalProperty) -> str:
    lines = [f"; {prop.name}" if prop.name else "; written by nncert", "(vnnlib-version <2.0>)"]
    for n in prop.networks:
        lines.append(f"(declare-network {n.name}")
        if n.relation is not None:
            lines.append(f"  ({n.relation} {n.related_to})")
        lines += [_tensor_decl_text("declare-input", t) for t in n.inputs]
        lines += [_tensor_decl_text("declare-output", t) for t in n.outputs]
        lines[-1] += ")"
    xn = [v for n in prop.networks for t in n.inputs for v in _v2_names(t)]
    yn = [v for n in prop.networks for t in n.outputs for v in _v2_names(t)]
    zn = xn + yn
    conj = []
    for c in prop.cases:
        atoms = _box_atoms(c.lower, c.upper, xn, _num2) + _row_atoms(c.A, c.b, zn, _num2)
        conj.append(atoms)
    if not conj:
        # holds vacuously: a constant-false comparison (an empty input box would be rejected)
        lines.append("(assert (<= 1.0 0.0))")
    elif len(conj) == 1:
        lines += [f"(assert {a})" for a in conj[0]]
    else:
        lines.append("(assert (or")
        lines += ["    (and " + " ".join(atoms) + ")" for atoms in conj]
        lines.append("))")
    return "\n".join(lines) + "\n"


def write_vnnlib(prop: Property | RelationalProperty, path: str | os.PathLike[str]) -> None:
    """Write ``prop`` as a VNN-LIB file (gzip-compressed when ``path`` ends with ``.gz``).

    A :class:`~nncert.verify.spec.Property` is written as VNN-LIB 1.0: ``X_i``/``Y_j``
    declarations, then for one case the box and output rows as top-level asserts; for several
    cases one ``(assert (or (and ...) ...))`` whose disjuncts carry their own input bounds
    (hoisted to top-level asserts when all cases share the same box). Rows are written as
    ``(<= (+ (* a_0 Y_0) ...) b)``; floats use ``repr`` so :func:`load_vnnlib` reads the same
    numbers back. A :class:`RelationalProperty` is written as a VNN-LIB 2.0 query.

    Raises:
        InvalidPropertyError: if the file cannot be written.
    """
    if isinstance(prop, RelationalProperty):
        text = _vnnlib2_text(prop)
    elif isinstance(prop, Property):
        text = _vnnlib1_text(prop)
    else:
        raise InvalidPropertyError(f"write_vnnlib: expected a Property, got {type(prop).__name__}")
    p = os.fspath(path)
    data = text.encode("utf-8")
    try:
        if p.endswith(".gz"):
            data = gzip.compress(data, mtime=0)
        write_atomic(p, data)
    except OSError as exc:
        raise InvalidPropertyError(f"{p}: cannot write file ({exc.strerror or exc})") from exc


__all__ = [
    "MAX_DISJUNCTS",
    "RELATION_KINDS",
    "NetworkDecl",
    "RelationalCase",
    "RelationalProperty",
    "TensorDecl",
    "load_vnnlib",
    "onnx_name_text",
    "parse_vnnlib_string",
    "write_vnnlib",
]
