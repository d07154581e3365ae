"""Specifications: input boxes and properties in VNN-LIB's "unsafe set" form.

A :class:`Property` is a disjunction of :class:`UnsafeCase` objects. Case ``i`` says

    "unsafe iff there is an x in ``input_box_i`` with ``A_i f(x) <= b_i`` (every row)"

and the property **holds** (VNN-LIB ``unsat``, nncert ``VERIFIED``) iff no case is satisfiable.
This is exactly VNN-LIB 1.0's meaning: the asserted formula describes counterexamples.

For a case we write ``g_r(x) = A_r f(x) - b_r`` for row ``r``; the case is violated at x iff
``max_r g_r(x) <= 0``.
A case is proven infeasible when some row has a sound lower bound ``min_x g_r(x) > 0``
(bound methods), or when ``min_x max_r g_r(x) > 0`` (exact MILP).

Constraints over the inputs (``x_0 + x_1 <= 1``, ``y_0 <= 2 x_0``) make a
:class:`MixedProperty`: rows over ``[f(x); x]``, decided on a network that outputs its inputs
too (:mod:`nncert.verify.lowering`). Products of those (``x_0 x_1 <= 1``, ``y_0 y_1 >= 0``)
make a :class:`PolynomialProperty`: rows over ``[f(x); x]`` and monomials of it.

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
        _check_shape(self.n_inputs, self.n_outputs, n_inputs, n_outputs, where)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Property)
            and self.label == other.label
            and len(self.cases) == len(other.cases)
            and all(a == b for a, b in zip(self.cases, other.cases))
        )

    def __hash__(self) -> int:
        return hash(self.cases)


class _ExtendedRows:
    """What :class:`MixedProperty` and :class:`PolynomialProperty` share: cases whose rows run
    over more columns than the network's outputs (so they are not a :class:`Property`)."""

    cases: tuple[UnsafeCase, ...]
    name: str

    @property
    def n_inputs(self) -> int:
        """Input dimension."""
        return self.cases[0].input_box.dim

    @property
    def label(self) -> None:
        """No robustness label (for code that reads :attr:`Property.label`)."""
        return None

    def augmented(self) -> Property:
        """The same cases as a :class:`Property` on the extended outputs (``[f(x); x]``, or
        ``[f(x); x; m(x)]`` with monomials)."""
        return Property(self.cases, name=self.name)

    def input_hull(self) -> Box:
        """The smallest box containing every case's input box."""
        return self.augmented().input_hull()


@dataclass(frozen=True, eq=False)
class MixedProperty(_ExtendedRows):
    """A property whose constraints may involve the inputs as well as the outputs.

    Case ``i`` is unsafe iff some ``x`` in its input box has ``A_i [f(x); x] <= b_i`` (every
    row): the columns of ``A_i`` are the ``n_outputs`` outputs first, then the ``n_inputs``
    inputs. This covers constraints coupling several inputs (``x_0 + x_1 <= 1``) and inputs
    with outputs (``y_0 - 2 x_0 <= 0``). The property **holds** iff no case is satisfiable.

    It is deliberately *not* a :class:`Property`: code written for output rows only must not
    read these rows as output rows. :func:`nncert.verify.verify` decides it on the network
    that outputs ``[f(x); x]`` (:mod:`nncert.verify.lowering`), where :meth:`augmented` is an
    ordinary :class:`Property`.

    Attributes:
        cases: the unsafe cases; each ``A`` has ``n_outputs + n_inputs`` columns.
        n_outputs: the number of network outputs (the first columns of every ``A``).
        name: optional label (the file name when loaded).
    """

    cases: tuple[UnsafeCase, ...]
    n_outputs: int
    name: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        lowered = Property(tuple(self.cases), name=self.name)
        n_out = int(self.n_outputs)
        if not 0 < n_out < lowered.n_outputs or lowered.n_outputs - n_out != lowered.n_inputs:
            raise InvalidPropertyError(
                f"MixedProperty: rows have {lowered.n_outputs} columns, expected {n_out} "
                f"outputs + {lowered.n_inputs} inputs"
            )
        object.__setattr__(self, "cases", lowered.cases)
        object.__setattr__(self, "n_outputs", n_out)

    def is_counterexample(
        self, x: ArrayLike, y: ArrayLike, *, atol_in: float = 0.0, atol_out: float = 0.0
    ) -> bool:
        """Whether input ``x`` with network output ``y`` violates the property (as
        :meth:`Property.is_counterexample`, on ``[y; x]``)."""
        xv = np.asarray(x, dtype=np.float64).reshape(-1)
        yv = np.asarray(y, dtype=np.float64).reshape(-1)
        z = np.concatenate([yv, xv])
        return self.augmented().is_counterexample(xv, z, atol_in=atol_in, atol_out=atol_out)

    def check_network_shape(self, n_inputs: int, n_outputs: int, *, where: str = "") -> None:
        """Raise :class:`InvalidPropertyError` when the property does not fit a network."""
        _check_shape(self.n_inputs, self.n_outputs, n_inputs, n_outputs, where)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, MixedProperty)
            and self.n_outputs == other.n_outputs
            and len(self.cases) == len(other.cases)
            and all(a == b for a, b in zip(self.cases, other.cases))
        )

    def __hash__(self) -> int:
        return hash((self.n_outputs, self.cases))


#: largest degree of a monomial in a :class:`PolynomialProperty`
MAX_MONOMIAL_DEGREE = 4

#: largest number of distinct nonlinear monomials in a :class:`PolynomialProperty`
MAX_MONOMIALS = 256


def monomial_values(monomials: Sequence[tuple[int, ...]], z: ArrayLike) -> FloatArray:
    """The monomials evaluated in float64 at ``z`` (shape ``(n,)`` or ``(batch, n)``): entry
    ``k`` is the product ``z[m_k[0]] * z[m_k[1]] * ...``, multiplied left to right."""
    Z = np.asarray(z, dtype=np.float64)
    one = Z.ndim == 1
    Z = np.atleast_2d(Z)
    out = np.empty((Z.shape[0], len(monomials)))
    with np.errstate(over="ignore", invalid="ignore"):
        for k, mono in enumerate(monomials):
            v = Z[:, mono[0]].copy()
            for i in mono[1:]:
                v = v * Z[:, i]
            out[:, k] = v
    return out[0] if one else out


@dataclass(frozen=True, eq=False)
class PolynomialProperty(_ExtendedRows):
    """A property whose constraints are polynomials in the outputs and the inputs.

    Case ``i`` is unsafe iff some ``x`` in its input box has ``A_i [f(x); x; m(x)] <= b_i``
    (every row), where ``z = [f(x); x]`` (``n_outputs`` outputs, then the inputs) and
    ``m_k = prod_{j in monomials[k]} z_j`` are the nonlinear monomials (degree 2 to
    :data:`MAX_MONOMIAL_DEGREE`, at most :data:`MAX_MONOMIALS` of them). A row is thus a
    polynomial constraint ``sum_j a_j z_j + sum_k c_k m_k <= b``, e.g. ``x_0 x_0 <= -1`` or
    ``y_0 - x_0 y_1 <= 0``. The property **holds** iff no case is satisfiable.

    Like :class:`MixedProperty` it is deliberately not a :class:`Property` (code written for
    output rows must not misread these rows). :func:`nncert.verify.verify` decides it on a
    network that outputs ``z`` and the monomials, computed exactly in real arithmetic
    (:func:`nncert.verify.lowering.lower_polynomial`).

    Attributes:
        cases: the unsafe cases; each ``A`` has ``n_outputs + n_inputs + len(monomials)``
            columns.
        n_outputs: the number of network outputs.
        monomials: per monomial, the sorted column indices into ``z = [f(x); x]`` of its
            factors (with repetition: ``(2, 2)`` is ``z_2^2``).
        name: optional label (the file name when loaded).
    """

    cases: tuple[UnsafeCase, ...]
    n_outputs: int
    monomials: tuple[tuple[int, ...], ...]
    name: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        lowered = Property(tuple(self.cases), name=self.name)
        n_out = int(self.n_outputs)
        monos = tuple(tuple(int(i) for i in m) for m in self.monomials)
        n_in = lowered.n_inputs
        n_z = n_out + n_in
        if n_out <= 0 or lowered.n_outputs != n_z + len(monos):
            raise InvalidPropertyError(
                f"PolynomialProperty: rows have {lowered.n_outputs} columns, expected {n_out} "
                f"outputs + {n_in} inputs + {len(monos)} monomials"
            )
        if len(monos) > MAX_MONOMIALS:
            raise InvalidPropertyError(
                f"PolynomialProperty: {len(monos)} monomials, at most {MAX_MONOMIALS} supported"
            )
        for m in monos:
            if not 2 <= len(m) <= MAX_MONOMIAL_DEGREE or list(m) != sorted(m):
                raise InvalidPropertyError(
                    f"PolynomialProperty: monomial {m} must be sorted, of degree 2 to "
                    f"{MAX_MONOMIAL_DEGREE}"
                )
            if m[0] < 0 or m[-1] >= n_z:
                raise InvalidPropertyError(
                    f"PolynomialProperty: monomial {m} refers to columns outside 0..{n_z - 1}"
                )
        if len(set(monos)) != len(monos):
            raise InvalidPropertyError("PolynomialProperty: monomials must be distinct")
        object.__setattr__(self, "cases", lowered.cases)
        object.__setattr__(self, "n_outputs", n_out)
        object.__setattr__(self, "monomials", monos)

    def columns(self, x: ArrayLike, y: ArrayLike) -> FloatArray:
        """``[y; x; m]`` in float64 for input ``x`` and network output ``y`` (one point)."""
        xv = np.asarray(x, dtype=np.float64).reshape(-1)
        yv = np.asarray(y, dtype=np.float64).reshape(-1)
        z = np.concatenate([yv, xv])
        return np.concatenate([z, monomial_values(self.monomials, z)])

    def is_counterexample(
        self, x: ArrayLike, y: ArrayLike, *, atol_in: float = 0.0, atol_out: float = 0.0
    ) -> bool:
        """Whether input ``x`` with network output ``y`` violates the property: some case's
        polynomial rows, evaluated in float64 (monomials multiplied left to right), hold."""
        xv = np.asarray(x, dtype=np.float64).reshape(-1)
        cols = self.columns(xv, y)
        return self.augmented().is_counterexample(xv, cols, atol_in=atol_in, atol_out=atol_out)

    def check_network_shape(self, n_inputs: int, n_outputs: int, *, where: str = "") -> None:
        """Raise :class:`InvalidPropertyError` when the property does not fit a network."""
        _check_shape(self.n_inputs, self.n_outputs, n_inputs, n_outputs, where)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, PolynomialProperty)
            and self.n_outputs == other.n_outputs
            and self.monomials == other.monomials
            and len(self.cases) == len(other.cases)
            and all(a == b for a, b in zip(self.cases, other.cases))
        )

    def __hash__(self) -> int:
        return hash((self.n_outputs, self.monomials, self.cases))


def _check_shape(p_in: int, p_out: int, n_inputs: int, n_outputs: int, where: str) -> None:
    """Raise :class:`InvalidPropertyError` when a property with ``p_in`` inputs and ``p_out``
    outputs does not fit a network with ``n_inputs`` and ``n_outputs``."""
    pre = f"{where}: " if where else ""
    if p_in != n_inputs:
        raise InvalidPropertyError(
            f"{pre}property has {p_in} inputs but the network has {n_inputs}"
        )
    if p_out != n_outputs:
        raise InvalidPropertyError(
            f"{pre}property has {p_out} outputs but the network has {n_outputs}"
        )


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


#: relations a ``declare-network`` block may state
RELATION_KINDS = ("equal-to", "isomorphic-to")


# --------------------------------------------------------------------------------------------
# Relational (multi-network) properties
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TensorDecl:
    """A declared input or output tensor of a network in a VNN-LIB 2.0 query.

    Attributes:
        name: the variable name in the query (unique over the whole query).
        shape: the declared shape (``()`` for a scalar).
        dtype: the VNN-LIB element type keyword (``"float32"``, ``"Real"``, ...).
        onnx_name: the ONNX tensor name, when the query gives one.
    """

    name: str
    shape: tuple[int, ...]
    dtype: str = "Real"
    onnx_name: str | None = None

    @property
    def size(self) -> int:
        """Number of scalar entries."""
        return int(np.prod(self.shape, dtype=np.int64)) if self.shape else 1


@dataclass(frozen=True)
class NetworkDecl:
    """A ``declare-network`` block.

    Attributes:
        name: the network name (``f``, ``g``, ...).
        inputs: declared inputs, in order; the network's input vector is their concatenation
            (each flattened in C order).
        outputs: declared outputs, likewise.
        relation: ``"equal-to"``, ``"isomorphic-to"`` or ``None``.
        related_to: the network named in the relation (``None`` without a relation).
    """

    name: str
    inputs: tuple[TensorDecl, ...]
    outputs: tuple[TensorDecl, ...]
    relation: str | None = None
    related_to: str | None = None

    def __post_init__(self) -> None:
        if self.relation not in (None, *RELATION_KINDS):
            raise InvalidPropertyError(f"NetworkDecl: unknown relation {self.relation!r}")
        if (self.relation is None) != (self.related_to is None):
            raise InvalidPropertyError("NetworkDecl: relation and related_to go together")

    @property
    def n_inputs(self) -> int:
        """Total number of scalar inputs."""
        return sum(t.size for t in self.inputs)

    @property
    def n_outputs(self) -> int:
        """Total number of scalar outputs."""
        return sum(t.size for t in self.outputs)


@dataclass(frozen=True, eq=False)
class RelationalCase:
    """One disjunct of a relational property over all networks' variables.

    The variable vector is ``z = [x; y]`` with ``x = [x_net0; x_net1; ...]`` (every network's
    inputs, in :attr:`RelationalProperty.networks` order) and ``y = [y_net0; y_net1; ...]``
    (every network's outputs, where ``y_k = net_k(x_k)``). The case is **unsafe** iff some
    ``x`` with ``lower <= x <= upper`` has ``A @ [x; y] <= b`` (every row).

    Bounds on a single input variable are kept in ``lower``/``upper`` (``±inf`` when absent,
    e.g. for a network whose inputs are tied to another's by a row ``x_g[i] - x_f[i] <= 0``);
    every other linear constraint, including couplings between networks, is a row.

    Attributes:
        lower: shape ``(n_x,)``, may contain ``-inf``.
        upper: shape ``(n_x,)``, may contain ``+inf``.
        A: shape ``(r, n_x + n_y)``.
        b: shape ``(r,)``.
    """

    lower: FloatArray
    upper: FloatArray
    A: FloatArray
    b: FloatArray

    def __post_init__(self) -> None:
        lo = np.array(self.lower, dtype=np.float64, copy=True).reshape(-1)
        hi = np.array(self.upper, dtype=np.float64, copy=True).reshape(-1)
        A = np.array(self.A, dtype=np.float64, copy=True)
        b = np.array(self.b, dtype=np.float64, copy=True).reshape(-1)
        if A.ndim == 1:
            A = A.reshape(1, -1)
        if lo.shape != hi.shape or A.ndim != 2 or A.shape[0] != b.size:
            raise InvalidPropertyError(
                f"RelationalCase: inconsistent shapes lower {lo.shape}, upper {hi.shape}, "
                f"A {A.shape}, b {b.shape}"
            )
        if np.isnan(lo).any() or np.isnan(hi).any() or np.any(lo > hi):
            raise InvalidPropertyError("RelationalCase: bounds are NaN or empty")
        if not (np.all(np.isfinite(A)) and np.all(np.isfinite(b))):
            raise InvalidPropertyError("RelationalCase: A and b must be finite")
        for arr, nm in ((lo, "lower"), (hi, "upper"), (A, "A"), (b, "b")):
            arr.setflags(write=False)
            object.__setattr__(self, nm, arr)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, RelationalCase)
            and np.array_equal(self.lower, other.lower)
            and np.array_equal(self.upper, other.upper)
            and np.array_equal(self.A, other.A)
            and np.array_equal(self.b, other.b)
        )

    def __hash__(self) -> int:
        return hash((self.lower.tobytes(), self.upper.tobytes(), self.A.tobytes()))


@dataclass(frozen=True, eq=False)
class RelationalProperty:
    """A VNN-LIB 2.0 property over several networks (e.g. an original and a pruned one).

    Semantics as for :class:`~nncert.verify.spec.Property`: the property **holds** (``unsat``)
    iff no case of :attr:`cases` is satisfiable; an empty ``cases`` tuple holds vacuously.
    ``relation`` attributes of :attr:`networks` (``equal-to``, ``isomorphic-to``) are recorded
    as declared; they add no constraints here and are for the consumer to interpret.
    :func:`nncert.verify.joint.lower_relational` decides it on one joint network.

    Attributes:
        networks: the declared networks, in query order (fixes the column layout of the cases).
        cases: the disjuncts, see :class:`RelationalCase`.
        name: optional label (the file name when loaded).
    """

    networks: tuple[NetworkDecl, ...]
    cases: tuple[RelationalCase, ...]
    name: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        nets = tuple(self.networks)
        cases = tuple(self.cases)
        names = [n.name for n in nets]
        if not nets or len(set(names)) != len(names):
            raise InvalidPropertyError(f"RelationalProperty: bad network names {names}")
        for n in nets:
            if n.related_to is not None and n.related_to not in names:
                raise InvalidPropertyError(
                    f"RelationalProperty: {n.name} is {n.relation} unknown network {n.related_to}"
                )
        n_x = sum(n.n_inputs for n in nets)
        n_z = n_x + sum(n.n_outputs for n in nets)
        for c in cases:
            if c.lower.size != n_x or c.A.shape[1] != n_z:
                raise InvalidPropertyError(
                    f"RelationalProperty: case has {c.lower.size} inputs and {c.A.shape[1]} "
                    f"columns, expected {n_x} and {n_z}"
                )
        object.__setattr__(self, "networks", nets)
        object.__setattr__(self, "cases", cases)

    @property
    def n_inputs(self) -> int:
        """Length of ``x`` (all networks' inputs)."""
        return sum(n.n_inputs for n in self.networks)

    @property
    def n_outputs(self) -> int:
        """Length of ``y`` (all networks' outputs)."""
        return sum(n.n_outputs for n in self.networks)

    def network(self, name: str) -> NetworkDecl:
        """The network called ``name``."""
        for n in self.networks:
            if n.name == name:
                return n
        raise KeyError(name)

    def input_slice(self, name: str) -> slice:
        """Positions of network ``name``'s inputs in ``x`` (and in ``z = [x; y]``)."""
        start = 0
        for n in self.networks:
            if n.name == name:
                return slice(start, start + n.n_inputs)
            start += n.n_inputs
        raise KeyError(name)

    def output_slice(self, name: str) -> slice:
        """Positions of network ``name``'s outputs in ``z = [x; y]`` (columns of ``A``)."""
        start = self.n_inputs
        for n in self.networks:
            if n.name == name:
                return slice(start, start + n.n_outputs)
            start += n.n_outputs
        raise KeyError(name)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, RelationalProperty)
            and self.networks == other.networks
            and len(self.cases) == len(other.cases)
            and all(a == b for a, b in zip(self.cases, other.cases))
        )

    def __hash__(self) -> int:
        return hash((self.networks, self.cases))


__all__ = [
    "MAX_MONOMIALS",
    "MAX_MONOMIAL_DEGREE",
    "RELATION_KINDS",
    "Box",
    "MixedProperty",
    "NetworkDecl",
    "PolynomialProperty",
    "Property",
    "RelationalCase",
    "RelationalProperty",
    "TensorDecl",
    "UnsafeCase",
    "monomial_values",
    "robustness_property",
]
