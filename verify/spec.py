"""Specifications: input boxes and properties in VNN-LIB's "unsafe set" form.

A :class:`Property` is a disjunction of :class:`UnsafeCase` objects. Case ``i`` says

    "unsafe iff there is an x in ``input_box_i`` with ``A_i f(x) <= b_i`` (every row)"

and the property **holds** (VNN-LIB ``unsat``, nncert ``VERIFIED``) iff no case is satisfiable.
This is exactly VNN-LIB 1.0's meaning: the asserted formula describes counterexamples.

For a case we write ``g_r(x) = A_r f(x) - b_r`` for row ``r``; the case is violated at x iff
``max_r g_r(x) <= 0``.
A case is proven infeasible when some row has a sound lower bound ``min_x g_r(x) > 0``
(bound methods), or when ``min_x max_r g_r(x) > 0`` (exact MILP).

Robustness (FORMULATIONS.md section 2.2): for label ``y`` and each target ``j != y``,
``c_j = e_y - e_j``; the unsafe case for ``j`` is ``f_y(x) - f_j(x) <= 0``, i.e.
``A = [e_y - e_j]``, ``b = [0]``. The margin ``m_j(x) = f_y(x) - f_j(x) = g(x)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray

from nncert.verify.errors import InvalidPropertyError
from nncert.verify.network import FloatArray


def _vec(value: ArrayLike, name: str) -> FloatArray:
    try:
        arr = np.array(value, dtype=np.float64, copy=True).reshape(-1)
    except (TypeError, ValueError) as err:
        raise InvalidPropertyError(f"{name}: cannot convert to a float64 vector ({err})") from err
    if np.isnan(arr).any():
        raise InvalidPropertyError(f"{name}: contains NaN")
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True, eq=False)
class Box:
    """An axis-aligned box ``lower <= x <= upper`` (flattened, C order).

    Raises:
        InvalidPropertyError: if shapes differ, a bound is NaN/infinite, or ``lower > upper``.
    """

    lower: FloatArray
    upper: FloatArray

    def __post_init__(self) -> None:
        lo = _vec(self.lower, "Box.lower")
        hi = _vec(self.upper, "Box.upper")
        if lo.shape != hi.shape:
            raise InvalidPropertyError(f"Box: lower has {lo.size} entries but upper has {hi.size}")
        if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
            raise InvalidPropertyError("Box: bounds must be finite")
        if np.any(lo > hi):
            i = int(np.argmax(lo > hi))
            raise InvalidPropertyError(
                f"Box: empty input box: X_{i} has lower bound {float(lo[i])!r} > "
                f"upper bound {float(hi[i])!r}"
            )
        object.__setattr__(self, "lower", lo)
        object.__setattr__(self, "upper", hi)

    @classmethod
    def from_pair(cls, pair: Box | tuple[ArrayLike, ArrayLike]) -> Box:
        """Accept a ``Box`` or a ``(lower, upper)`` pair."""
        if isinstance(pair, Box):
            return pair
        lo, hi = pair
        return cls(np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64))

    @property
    def dim(self) -> int:
        """Number of dimensions."""
        return int(self.lower.size)

    @property
    def center(self) -> FloatArray:
        """Midpoint ``(lower + upper) / 2``."""
        return (self.lower + self.upper) / 2.0

    @property
    def radius(self) -> FloatArray:
        """Half-width ``(upper - lower) / 2``."""
        return (self.upper - self.lower) / 2.0

    def contains(self, x: ArrayLike, *, atol: float = 0.0) -> bool | NDArray[np.bool_]:
        """Whether ``x`` (shape ``(n,)`` or ``(batch, n)``) lies in the box (within ``atol``).

        Returns a ``bool`` for one point and a boolean array of shape ``(batch,)`` for a batch.
        """
        a = np.asarray(x, dtype=np.float64)
        ok = (a >= self.lower - atol) & (a <= self.upper + atol)
        if a.ndim == 1:
            return bool(ok.all())
        return np.asarray(ok.all(axis=1), dtype=np.bool_)

    def sample(self, n: int, rng: np.random.Generator) -> FloatArray:
        """``n`` uniform samples, shape ``(n, dim)``."""
        return rng.uniform(self.lower, self.upper, size=(n, self.dim))

    def intersect(self, other: Box) -> Box | None:
        """The intersection, or ``None`` when empty."""
        lo = np.maximum(self.lower, other.lower)
        hi = np.minimum(self.upper, other.upper)
        return None if np.any(lo > hi) else Box(lo, hi)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Box)
            and np.array_equal(self.lower, other.lower)
            and np.array_equal(self.upper, other.upper)
        )

    def __hash__(self) -> int:
        return hash((self.lower.tobytes(), self.upper.tobytes()))


@dataclass(frozen=True, eq=False)
class UnsafeCase:
    """Unsafe iff some ``x`` in ``input_box`` has ``A @ f(x) <= b`` (all rows).

    Attributes:
        input_box: the inputs this case ranges over.
        A: shape ``(r, n_outputs)``.
        b: shape ``(r,)``.
    """

    input_box: Box
    A: FloatArray
    b: FloatArray

    def __post_init__(self) -> None:
        A = np.array(self.A, dtype=np.float64, copy=True)
        if A.ndim == 1:
            A = A.reshape(1, -1)
        if A.ndim != 2:
            raise InvalidPropertyError(f"UnsafeCase: A must be 2-d, got shape {A.shape}")
        b = _vec(self.b, "UnsafeCase.b")
        if A.shape[0] != b.size:
            raise InvalidPropertyError(
                f"UnsafeCase: A has {A.shape[0]} rows but b has {b.size} entries"
            )
        if not (np.all(np.isfinite(A)) and np.all(np.isfinite(b))):
            raise InvalidPropertyError("UnsafeCase: A and b must be finite")
        A.setflags(write=False)
        object.__setattr__(self, "A", A)
        object.__setattr__(self, "b", b)

    @property
    def n_rows(self) -> int:
        """Number of conjoined output constraints."""
        return int(self.A.shape[0])

    def violation(self, y: ArrayLike) -> FloatArray:
        """``max_r (A_r y - b_r)`` per output row of ``y`` (shape ``(batch, n_out)``).

        A value ``<= 0`` means the outputs lie in the unsafe set. An empty conjunction
        (``r = 0``) is always unsafe and gives ``-inf``.
        """
        Y = np.atleast_2d(np.asarray(y, dtype=np.float64))
        if self.n_rows == 0:
            return np.full(Y.shape[0], -np.inf)
        return np.max(Y @ self.A.T - self.b, axis=1)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, UnsafeCase)
            and self.input_box == other.input_box
            and np.array_equal(self.A, other.A)
            and np.array_equal(self.b, other.b)
        )

    def __hash__(self) -> int:
        return hash((self.input_box, self.A.tobytes(), self.b.tobytes()))


@dataclass(frozen=True, eq=False)
class Property:
    """A disjunction of unsafe cases; the property holds iff every case is infeasible.

    Attributes:
        cases: the unsafe cases.
        name: optional label (file name, "robustness eps=0.1 label=2", ...).
        label: the true class for robustness properties (``None`` otherwise).
    """

    cases: tuple[UnsafeCase, ...]
    name: str = field(default="", compare=False)
    label: int | None = None

    def __post_init__(self) -> None:
        cases = tuple(self.cases)
        if not cases:
            raise InvalidPropertyError("Property: needs at least one unsafe case")
        n_in = {c.input_box.dim for c in cases}
        n_out = {c.A.shape[1] for c in cases}
        if len(n_in) != 1 or len(n_out) != 1:
            raise InvalidPropertyError(
                f"Property: cases disagree on dimensions (inputs {sorted(n_in)}, "
                f"outputs {sorted(n_out)})"
            )
        object.__setattr__(self, "cases", cases)

    @property
    def n_inputs(self) -> int:
        """Input dimension."""
        return self.cases[0].input_box.dim

    @property
    def n_outputs(self) -> int:
        """Output dimension."""
        return int(self.cases[0].A.shape[1])

    def input_hull(self) -> Box:
        """The smallest box containing every case's input box."""
        lo = np.min([c.input_box.lower for c in self.cases], axis=0)
        hi = np.max([c.input_box.upper for c in self.cases], axis=0)
        return Box(lo, hi)

    def is_counterexample(
        self, x: ArrayLike, y: ArrayLike, *, atol_in: float = 0.0, atol_out: float = 0.0
    ) -> bool:
        """Whether input ``x`` with output ``y`` violates the property (some case holds).

        ``atol_in`` relaxes the input box, ``atol_out`` the output constraints
        (VNN-COMP uses 1e-4 for both; nncert's strict mode uses 0).
        """
        xv = np.asarray(x, dtype=np.float64).reshape(-1)
        yv = np.asarray(y, dtype=np.float64).reshape(1, -1)
        for case in self.cases:
            if case.input_box.contains(xv, atol=atol_in) and case.violation(yv)[0] <= atol_out:
                return True
        return False

    def check_network_shape(self, n_inputs: int, n_outputs: int, *, where: str = "") -> None:
        """Raise :class:`InvalidPropertyError` when the property does not fit a network."""
        pre = f"{where}: " if where else ""
        if self.n_inputs != n_inputs:
            raise InvalidPropertyError(
                f"{pre}property has {self.n_inputs} inputs but the network has {n_inputs}"
            )
        if self.n_outputs != n_outputs:
            raise InvalidPropertyError(
                f"{pre}property has {self.n_outputs} outputs but the network has {n_outputs}"
            )

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Property)
            and self.label == other.label
            and len(self.cases) == len(other.cases)
            and all(a == b for a, b in zip(self.cases, other.cases))
        )

    def __hash__(self) -> int:
        return hash(self.cases)


def robustness_property(
    x0: ArrayLike,
    eps: float,
    label: int,
    n_classes: int,
    *,
    domain: tuple[float, float] | None = (0.0, 1.0),
    targets: Sequence[int] | None = None,
) -> Property:
    """L-infinity robustness of ``x0`` with label ``label``.

    The input region is ``X = {x : ||x - x0||_inf <= eps, domain_lo <= x <= domain_hi}``; the
    property holds iff ``f_label(x) > f_j(x)`` for every ``x`` in ``X`` and every target
    ``j != label``. One unsafe case per target ``j``: ``f_label - f_j <= 0``.

    Args:
        x0: the centre, any shape (flattened in C order).
        eps: the radius, ``>= 0``.
        label: the true class.
        n_classes: number of outputs.
        domain: clip the box to this range (``None``: no clipping).
        targets: restrict to these target classes (default: all ``j != label``).

    Raises:
        InvalidPropertyError: on a negative/NaN ``eps``, a label out of range, or a ``domain``
            that excludes ``x0``'s box entirely.
    """
    x = _vec(x0, "x0")
    if not np.all(np.isfinite(x)):
        raise InvalidPropertyError("x0: must be finite")
    if not (isinstance(eps, (int, float, np.floating)) and np.isfinite(eps) and eps >= 0):
        raise InvalidPropertyError(f"eps={eps!r} must be a finite number >= 0")
    if not (0 <= int(label) < int(n_classes)):
        raise InvalidPropertyError(f"label={label!r} must lie in [0, {n_classes})")
    lo, hi = x - eps, x + eps
    if domain is not None:
        lo = np.maximum(lo, domain[0])
        hi = np.minimum(hi, domain[1])
        if np.any(lo > hi):
            i = int(np.argmax(lo > hi))
            raise InvalidPropertyError(
                f"domain={domain!r} does not intersect the eps-ball around x0: empty input "
                f"box: X_{i} has lower bound {float(lo[i])!r} > upper bound {float(hi[i])!r}"
            )
    box = Box(lo, hi)
    tgts = [j for j in range(n_classes) if j != label] if targets is None else list(targets)
    cases = []
    for j in tgts:
        if not (0 <= j < n_classes) or j == label:
            raise InvalidPropertyError(f"target {j!r} invalid for label {label} of {n_classes}")
        a = np.zeros(n_classes)
        a[label] += 1.0
        a[j] -= 1.0
        cases.append(UnsafeCase(box, a.reshape(1, -1), np.zeros(1)))
    return Property(tuple(cases), name=f"robustness(label={label}, eps={eps:g})", label=int(label))


__all__ = ["Box", "Property", "UnsafeCase", "robustness_property"]
