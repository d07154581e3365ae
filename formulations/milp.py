r"""Model 1: the exact big-M MILP for piecewise-linear networks, as solver-neutral arrays.

A :class:`MilpProblem` is ``min c^T v + offset`` subject to ``row_lower <= A v <= row_upper``,
``col_lower <= v <= col_upper`` and ``v_j`` integer where ``integrality[j]`` (every integer
column of an encoded network is a binary). Solvers in :mod:`nncert.solvers` consume it.

:func:`encode_milp` builds the problem for one :class:`~nncert.verify.spec.UnsafeCase` over
the normal form of a network (FORMULATIONS.md sections 2 and 4)::

    min   max_r ( A_r f(x) - b_r )              (one row: the objective is that row itself;
                                                 several rows: min t, t >= A_r f(x) - b_r)
    s.t.  lo <= x <= hi                          (the case's input box)
          z^(k) = W^(k) a^(k-1) + b^(k),  a^(0) = x,     k = 1..L-1
          a^(k) = sigma_k(z^(k))                 (big-M rules below, per neuron)
          f(x)  = W^(L) a^(L-1) + b^(L)           (folded into the objective rows)

The case is infeasible (the property holds for it) iff the optimum is ``> 0``; an optimum
``<= 0`` is attained by a counterexample ``x = index.decode_input(v)``.

Every matrix is assembled from whole-layer COO blocks (``np.repeat`` / ``np.tile`` /
``np.concatenate``) and converted to CSR once; no Python loop runs per neuron or per row.

Activation rules (all exact given *sound* pre-activation bounds ``l <= z <= u``). Every big-M
rule comes from the activation's rule object (:mod:`nncert.verify.activations`, its
``relu_pieces``): :math:`\sigma(z) = c + \sum_i w_i \max(z - \theta_i, \lambda_i (z -
\theta_i))`, encoded by :func:`encode_pieces`; this module knows no activation type.

* A "piece" ``r = max(s, alpha s)`` of the shifted input ``s = z - theta`` with bounds
  ``ls = l - theta``, ``us = u - theta`` and ``0 <= alpha < 1`` (ReLU: ``alpha = 0``,
  ``theta = 0``). For an unstable piece (``ls < 0 < us``) with a binary ``d`` (``d = 1``:
  active)::

      r >= s                                   r >= alpha s
      r <= s - (1 - alpha) ls (1 - d)          r <= alpha s + (1 - alpha) us d

  ``d = 1`` gives ``r = s`` and ``0 <= s <= us``; ``d = 0`` gives ``r = alpha s`` and
  ``ls <= s <= 0``. Stable pieces get no binary: ``ls >= 0`` gives ``r = s``; ``us <= 0``
  gives ``r = alpha s``. ``alpha = 1`` is the identity.
* One piece with ``c = 0``, ``w = 1``: the post-activation is the piece itself. ``ReLU``:
  ``alpha = 0, theta = 0``: ``a >= z, a >= 0, a <= z - l (1 - d), a <= u d`` (FORMULATIONS.md
  4.1); ``LeakyReLU(alpha)``: ``theta = 0``.
* Several pieces: one auxiliary column per piece and the row ``a - sum_i w_i r_i = c``.
  ``HardTanh(m, M)`` is the two-ReLU decomposition (FORMULATIONS.md 4.2 a)
  ``clip(z, m, M) = m + ReLU(z - m) - ReLU(z - M)``, i.e. two pieces ``r+`` (``theta = m``)
  and ``r-`` (``theta = M``) and the row ``a - r+ + r- = m``; a binary only for a kink
  strictly inside ``(l, u)``.

Column bounds ``l <= z <= u`` and ``sigma(l) <= a <= sigma(u)`` are added too (valid since
every activation is monotone).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeAlias, TypeVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from nncert.verify.activations import ReluPieces, check_pieces, rule_for
from nncert.verify.bounds import LayerBounds
from nncert.verify.errors import (
    InvalidOptionsError,
    InvalidPropertyError,
    UnsupportedLayerError,
)
from nncert.verify.network import (
    Activation,
    Dense,
    FloatArray,
    Network,
    apply_activation,
    is_sparse,
)
from nncert.verify.spec import UnsafeCase

if TYPE_CHECKING:  # scipy.sparse (about 0.1 s) is imported where a problem is built
    import scipy.sparse as sp

IntArray: TypeAlias = NDArray[np.int64]
BoolArray: TypeAlias = NDArray[np.bool_]

_INF = np.inf


_A = TypeVar("_A", bound=NDArray[Any])


def _readonly(arr: _A) -> _A:
    arr.setflags(write=False)
    return arr


def _empty_slice(at: int) -> slice:
    return slice(at, at)


# --------------------------------------------------------------------------------------------
# Variable index and statistics
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class VariableIndex:
    """Where each group of variables lives in the column vector ``v`` of a :class:`MilpProblem`.

    Hidden layers are numbered ``0 .. L-2`` here (layer ``k`` of the docs is entry ``k - 1``).

    Attributes:
        n_cols: total number of columns.
        inputs: the input ``x`` (flattened, C order).
        pre: per hidden layer, the pre-activation ``z^(k)`` (one column per neuron).
        post: per hidden layer, the post-activation ``a^(k)`` (one column per neuron).
        aux: per hidden layer, auxiliary columns: one block of ``n_k`` per piece of a
            multi-piece activation, in the order of its ``relu_pieces`` (HardTanh: ``r+`` then
            ``r-``); empty for single-piece ones (ReLU and LeakyReLU).
        binaries: per hidden layer, the binary columns (contiguous).
        binary_neuron: per hidden layer, the neuron each binary belongs to (same order as the
            columns in ``binaries``).
        binary_threshold: per hidden layer, the kink ``theta`` of each binary's piece: the
            binary is 1 iff ``z[neuron] >= theta`` (ReLU/LeakyReLU: 0; HardTanh: min or max).
            The binaries of a layer are grouped by piece, in the pieces' order.
        objective: the column of ``t`` (several output rows), else ``None``.
    """

    n_cols: int
    inputs: slice
    pre: tuple[slice, ...] = ()
    post: tuple[slice, ...] = ()
    aux: tuple[slice, ...] = ()
    binaries: tuple[slice, ...] = ()
    binary_neuron: tuple[IntArray, ...] = ()
    objective: int | None = None
    binary_threshold: tuple[FloatArray, ...] = ()

    @property
    def n_inputs(self) -> int:
        """Number of input columns."""
        return self.inputs.stop - self.inputs.start

    @property
    def n_binaries(self) -> int:
        """Total number of binary columns."""
        return sum(s.stop - s.start for s in self.binaries)

    def decode_input(self, v: ArrayLike) -> FloatArray:
        """The input part of a solution vector ``v`` (shape ``(n_cols,)``), as a copy."""
        arr = np.asarray(v, dtype=np.float64).reshape(-1)
        if arr.size != self.n_cols:
            raise InvalidOptionsError(
                f"decode_input: solution has {arr.size} entries, the problem has {self.n_cols}"
            )
        return arr[self.inputs].copy()


@dataclass(frozen=True)
class EncodingStats:
    """Size of an encoded network MILP.

    Attributes:
        n_binaries: number of binary columns.
        unstable_per_layer: neurons with at least one binary, per hidden layer.
        binaries_per_layer: binary columns per hidden layer.
        n_rows: number of constraint rows.
        n_cols: number of columns.
        nnz: nonzeros of ``A``.
        build_time: seconds spent in :func:`encode_milp`.
    """

    n_binaries: int
    unstable_per_layer: tuple[int, ...]
    binaries_per_layer: tuple[int, ...]
    n_rows: int
    n_cols: int
    nnz: int
    build_time: float = 0.0


# --------------------------------------------------------------------------------------------
# The problem
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class MilpProblem:
    r"""``min c^T v + offset  s.t.  row_lower <= A v <= row_upper,  col_lower <= v <= col_upper``.

    Columns with ``integrality[j]`` true must take integer values. Infinite bounds are
    ``±np.inf``. All arrays are read-only float64 (``integrality`` bool) and ``A`` is a
    ``scipy.sparse.csr_array`` of shape ``(n_rows, n_cols)``.

    Attributes:
        c: objective, shape ``(n_cols,)``.
        offset: constant added to the objective.
        A: constraint matrix, CSR.
        row_lower: shape ``(n_rows,)``, may contain ``-inf``.
        row_upper: shape ``(n_rows,)``, may contain ``+inf``.
        col_lower: shape ``(n_cols,)``.
        col_upper: shape ``(n_cols,)``.
        integrality: shape ``(n_cols,)``, bool.
        index: names of the column groups (a bare ``VariableIndex(n_cols, slice(0, n_cols))``
            for problems that do not come from a network).
        sense: always ``"minimize"``.
        stats: sizes, when the problem came from :func:`encode_milp`.

    Raises:
        InvalidOptionsError: on inconsistent shapes, NaN entries, or ``lower > upper``.
    """

    c: FloatArray
    offset: float
    A: sp.csr_array
    row_lower: FloatArray
    row_upper: FloatArray
    col_lower: FloatArray
    col_upper: FloatArray
    integrality: BoolArray
    index: VariableIndex
    sense: Literal["minimize"] = "minimize"
    stats: EncodingStats | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        import scipy.sparse as sp

        def vec(value: ArrayLike, name: str) -> FloatArray:
            arr = np.array(value, dtype=np.float64, copy=True).reshape(-1)
            if np.isnan(arr).any():
                raise InvalidOptionsError(f"MilpProblem.{name}: contains NaN")
            return _readonly(arr)

        c = vec(self.c, "c")
        n = c.size
        if not sp.issparse(self.A):
            m = np.asarray(self.row_lower).size
            A = sp.csr_array(np.asarray(self.A, dtype=np.float64).reshape(m, n))
        else:
            A = sp.csr_array(self.A, dtype=np.float64)
        if A.shape[1] != n:
            raise InvalidOptionsError(f"MilpProblem: A has {A.shape[1]} columns, c has {n}")
        if A.nnz and not np.all(np.isfinite(A.data)):
            raise InvalidOptionsError("MilpProblem.A: contains NaN or infinite entries")
        m = A.shape[0]
        rl, ru = vec(self.row_lower, "row_lower"), vec(self.row_upper, "row_upper")
        cl, cu = vec(self.col_lower, "col_lower"), vec(self.col_upper, "col_upper")
        for name, arr, size in (("row_lower", rl, m), ("row_upper", ru, m)):
            if arr.size != size:
                raise InvalidOptionsError(f"MilpProblem.{name}: {arr.size} entries, A has {size}")
        for name, arr in (("col_lower", cl), ("col_upper", cu)):
            if arr.size != n:
                raise InvalidOptionsError(f"MilpProblem.{name}: {arr.size} entries, c has {n}")
        if np.any(rl > ru) or np.any(cl > cu):
            raise InvalidOptionsError("MilpProblem: some lower bound exceeds its upper bound")
        if not np.all(np.isfinite(c)):
            raise InvalidOptionsError("MilpProblem.c: contains infinite entries")
        integ = np.array(self.integrality, dtype=np.bool_, copy=True).reshape(-1)
        if integ.size != n:
            raise InvalidOptionsError(f"MilpProblem.integrality: {integ.size} entries, c has {n}")
        if not np.isfinite(float(self.offset)):
            raise InvalidOptionsError("MilpProblem.offset: must be finite")
        if self.index.n_cols != n:
            raise InvalidOptionsError(
                f"MilpProblem.index: describes {self.index.n_cols} columns, c has {n}"
            )
        if self.sense != "minimize":
            raise InvalidOptionsError(f"MilpProblem.sense={self.sense!r}: only 'minimize'")
        A.sort_indices()
        for arr in (A.data, A.indices, A.indptr):
            arr.setflags(write=False)
        for name, value in (
            ("c", c),
            ("A", A),
            ("row_lower", rl),
            ("row_upper", ru),
            ("col_lower", cl),
            ("col_upper", cu),
            ("integrality", _readonly(integ)),
            ("offset", float(self.offset)),
        ):
            object.__setattr__(self, name, value)

    # -- sizes -------------------------------------------------------------------------------
    @property
    def n_cols(self) -> int:
        """Number of variables."""
        return int(self.c.size)

    @property
    def n_rows(self) -> int:
        """Number of constraint rows."""
        return int(self.A.shape[0])

    @property
    def n_integer(self) -> int:
        """Number of integer columns."""
        return int(np.count_nonzero(self.integrality))

    @property
    def is_mip(self) -> bool:
        """True when some column is integer."""
        return bool(self.integrality.any())

    # -- evaluation --------------------------------------------------------------------------
    def objective_value(self, v: ArrayLike) -> float:
        """``c^T v + offset``."""
        return float(np.dot(self.c, np.asarray(v, dtype=np.float64)) + self.offset)

    def max_violation(self, v: ArrayLike) -> float:
        """Largest violation of a row bound, column bound or integrality at ``v`` (0: feasible)."""
        x = np.asarray(v, dtype=np.float64).reshape(-1)
        if x.size != self.n_cols:
            raise InvalidOptionsError(f"max_violation: {x.size} entries, problem has {self.n_cols}")
        ax = self.A @ x
        parts = [
            np.maximum(self.row_lower - ax, 0.0),
            np.maximum(ax - self.row_upper, 0.0),
            np.maximum(self.col_lower - x, 0.0),
            np.maximum(x - self.col_upper, 0.0),
            np.abs(x - np.round(x))[self.integrality],
        ]
        return float(max((p.max() if p.size else 0.0) for p in parts))

    def decode_input(self, v: ArrayLike) -> FloatArray:
        """The input part of ``v``, clipped into the input columns' bounds (the case's box).

        Solvers satisfy bounds only up to a feasibility tolerance; clipping keeps a candidate
        counterexample inside the box before it is checked by a forward pass.
        """
        x = self.index.decode_input(v)
        sl = self.index.inputs
        return np.clip(x, self.col_lower[sl], self.col_upper[sl])

    def start_from_input(self, network: Network, x: ArrayLike) -> FloatArray:
        """A complete starting point from an input ``x`` (every column set by a forward pass).

        For problems built by :func:`encode_milp` from ``network``: the input is clipped into
        the box, ``z`` and ``a`` come from the forward pass, each piece's auxiliary column
        ``r_i = max(z - theta_i, lam_i (z - theta_i))`` (HardTanh: ``r+ = relu(z - m)``,
        ``r- = relu(z - M)``), each binary is ``1`` iff ``z[neuron] >= theta``, and ``t`` is the
        smallest value its rows allow. Use it as ``initial_solution`` for a MILP solver.

        Raises:
            InvalidOptionsError: when the problem does not have the layout of ``network``.
        """
        idx = self.index
        dense, acts = network.normalized().affine_and_activations()
        if len(idx.pre) != len(acts) or len(idx.binary_threshold) != len(acts):
            raise InvalidOptionsError(
                "start_from_input: the problem was not built by encode_milp for this network"
            )
        v = np.clip(0.0, self.col_lower, self.col_upper)
        a = np.clip(
            np.asarray(x, dtype=np.float64).reshape(-1),
            self.col_lower[idx.inputs],
            self.col_upper[idx.inputs],
        )
        if a.size != idx.n_inputs:
            raise InvalidOptionsError(
                f"start_from_input: x has {a.size} entries, the problem has {idx.n_inputs} inputs"
            )
        v[idx.inputs] = a
        for k, act in enumerate(acts):
            z = np.asarray(dense[k].weight @ a) + dense[k].bias
            a = apply_activation(act, z)
            v[idx.pre[k]] = z
            v[idx.post[k]] = a
            pieces = big_m_pieces(act)
            n_aux = idx.aux[k].stop - idx.aux[k].start
            if pieces is not None and n_aux and n_aux == len(pieces[1]) * z.size:
                v[idx.aux[k]] = np.concatenate(piece_values(pieces, z))
            neuron, theta = idx.binary_neuron[k], idx.binary_threshold[k]
            v[idx.binaries[k]] = (z[neuron] >= theta).astype(np.float64)
        t = idx.objective
        if t is not None:
            col = self.A[:, [t]].toarray().reshape(-1)
            rows = np.flatnonzero(col > 0)
            v[t] = 0.0
            rest = self.A @ v
            need = (self.row_lower[rows] - rest[rows]) / col[rows]
            v[t] = float(np.max(need)) if need.size else 0.0
        return v

    @classmethod
    def from_arrays(
        cls,
        c: ArrayLike,
        A: ArrayLike | sp.sparray | sp.spmatrix,
        row_lower: ArrayLike,
        row_upper: ArrayLike,
        col_lower: ArrayLike,
        col_upper: ArrayLike,
        integrality: ArrayLike | None = None,
        *,
        offset: float = 0.0,
    ) -> MilpProblem:
        """A problem without a network index (conformance tests, Benders subproblems)."""
        import scipy.sparse as sp

        cv = np.asarray(c, dtype=np.float64).reshape(-1)
        n = cv.size
        if sp.issparse(A):
            Am = sp.csr_array(A)
        else:
            m = np.asarray(row_lower, dtype=np.float64).size
            dense = np.asarray(A, dtype=np.float64)
            if dense.size != m * n:
                raise InvalidOptionsError(
                    f"MilpProblem.from_arrays: A has shape {dense.shape}, expected ({m}, {n}) "
                    f"from {m} row bounds and {n} columns"
                )
            Am = sp.csr_array(dense.reshape(m, n))
        integ = np.zeros(n, dtype=bool) if integrality is None else integrality
        return cls(
            cv,
            offset,
            Am,
            np.asarray(row_lower, dtype=np.float64),
            np.asarray(row_upper, dtype=np.float64),
            np.asarray(col_lower, dtype=np.float64),
            np.asarray(col_upper, dtype=np.float64),
            np.asarray(integ, dtype=bool),
            VariableIndex(n, slice(0, n)),
        )


def lp_relaxation(problem: MilpProblem) -> MilpProblem:
    """The same problem with every integrality requirement dropped (binaries become ``[0, 1]``)."""
    return dataclasses.replace(problem, integrality=np.zeros(problem.n_cols, dtype=bool))


# --------------------------------------------------------------------------------------------
# Builder
# --------------------------------------------------------------------------------------------


class MilpBuilder:
    """Accumulates columns and whole blocks of rows as COO triplets; :meth:`build` converts once.

    Example:
        >>> b = MilpBuilder()
        >>> x = b.add_columns(2, 0.0, 1.0)
        >>> _ = b.add_rows([(np.arange(x.start, x.stop), 1.0)], -np.inf, 1.0)  # x0 <= 1, x1 <= 1
        >>> b.n_rows, b.n_cols
        (2, 2)
    """

    def __init__(self) -> None:
        self._col_lower: list[FloatArray] = []
        self._col_upper: list[FloatArray] = []
        self._integer: list[BoolArray] = []
        self._rows: list[IntArray] = []
        self._cols: list[IntArray] = []
        self._vals: list[FloatArray] = []
        self._row_lower: list[FloatArray] = []
        self._row_upper: list[FloatArray] = []
        self.n_cols = 0
        self.n_rows = 0

    def add_columns(
        self, n: int, lower: ArrayLike, upper: ArrayLike, *, integer: bool = False
    ) -> slice:
        """Append ``n`` columns with the given bounds (scalars broadcast); return their slice."""
        lo = np.broadcast_to(np.asarray(lower, dtype=np.float64), (n,)).copy()
        hi = np.broadcast_to(np.asarray(upper, dtype=np.float64), (n,)).copy()
        self._col_lower.append(lo)
        self._col_upper.append(hi)
        self._integer.append(np.full(n, integer, dtype=bool))
        out = slice(self.n_cols, self.n_cols + n)
        self.n_cols += n
        return out

    def add_rows(
        self,
        terms: Sequence[tuple[ArrayLike, ArrayLike]],
        lower: ArrayLike,
        upper: ArrayLike,
    ) -> slice:
        """Append a block of rows, row ``i`` being ``lower_i <= sum_t coef_t[i] * v[cols_t[i]]``.

        Args:
            terms: pairs ``(cols, coef)``; ``cols`` has one column index per row (shape
                ``(n,)``) and ``coef`` is a scalar or shape ``(n,)``. Zero coefficients are
                dropped.
            lower: row lower bounds, scalar or shape ``(n,)``.
            upper: row upper bounds, scalar or shape ``(n,)``.

        Returns:
            The slice of the new rows.
        """
        lo_arr = np.asarray(lower, dtype=np.float64)
        hi_arr = np.asarray(upper, dtype=np.float64)
        if terms:
            n = int(np.asarray(terms[0][0]).size)
        else:
            n = int(max(lo_arr.size, hi_arr.size))
        local = np.arange(n, dtype=np.int64)
        for cols, coef in terms:
            cols_arr = np.asarray(cols, dtype=np.int64).reshape(-1)
            vals = np.broadcast_to(np.asarray(coef, dtype=np.float64), (n,))
            keep = vals != 0.0
            self._rows.append(local[keep] + self.n_rows)
            self._cols.append(cols_arr[keep])
            self._vals.append(vals[keep])
        self._row_lower.append(np.broadcast_to(lo_arr, (n,)).copy())
        self._row_upper.append(np.broadcast_to(hi_arr, (n,)).copy())
        out = slice(self.n_rows, self.n_rows + n)
        self.n_rows += n
        return out

    def add_block(self, rows: slice, cols: slice, M: ArrayLike) -> None:
        """Add the dense block ``M`` (shape ``(len(rows), len(cols))``) to existing rows.

        Only the nonzeros of ``M`` are stored, so a sparse weight matrix stays sparse; a scipy
        sparse ``M`` (a sparse :attr:`Dense.weight`) is read as its non-zeros, never densified.
        """
        if is_sparse(M):
            coo = M.tocoo()  # type: ignore[union-attr]
            if coo.shape != (rows.stop - rows.start, cols.stop - cols.start):
                raise InvalidOptionsError(f"MilpBuilder.add_block: block has shape {coo.shape}")
            keep = coo.data != 0.0
            self._rows.append(np.asarray(coo.row[keep], dtype=np.int64) + rows.start)
            self._cols.append(np.asarray(coo.col[keep], dtype=np.int64) + cols.start)
            self._vals.append(np.asarray(coo.data[keep], dtype=np.float64))
            return
        Md = np.asarray(M, dtype=np.float64)
        if Md.shape != (rows.stop - rows.start, cols.stop - cols.start):
            raise InvalidOptionsError(f"MilpBuilder.add_block: block has shape {Md.shape}")
        r, j = np.nonzero(Md)
        self._rows.append(r.astype(np.int64) + rows.start)
        self._cols.append(j.astype(np.int64) + cols.start)
        self._vals.append(Md[r, j])

    def build(
        self,
        c: ArrayLike,
        offset: float,
        index: VariableIndex,
        stats: EncodingStats | None = None,
    ) -> MilpProblem:
        """Convert the accumulated blocks to a :class:`MilpProblem` (duplicates are summed)."""
        import scipy.sparse as sp

        def cat(parts: Sequence[NDArray[Any]], dtype: type) -> NDArray[Any]:
            return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype=dtype)

        rows = cat(self._rows, np.int64)
        cols = cat(self._cols, np.int64)
        vals = cat(self._vals, np.float64)
        A = sp.coo_array((vals, (rows, cols)), shape=(self.n_rows, self.n_cols)).tocsr()
        A.sum_duplicates()
        A.eliminate_zeros()
        return MilpProblem(
            np.asarray(c, dtype=np.float64),
            float(offset),
            A,
            cat(self._row_lower, np.float64),
            cat(self._row_upper, np.float64),
            cat(self._col_lower, np.float64),
            cat(self._col_upper, np.float64),
            cat(self._integer, np.bool_),
            index,
            stats=stats,
        )


# --------------------------------------------------------------------------------------------
# Activation rules
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _LayerEncoding:
    post: slice
    aux: slice
    binaries: slice
    binary_neuron: IntArray
    binary_threshold: FloatArray


def _piece_needs_binary(
    ls: FloatArray, us: FloatArray, alpha: float, all_binary: bool
) -> BoolArray:
    if alpha >= 1.0:
        return np.zeros(ls.shape, dtype=bool)
    if all_binary:
        return np.ones(ls.shape, dtype=bool)
    return (ls < 0.0) & (us > 0.0)


def _piece_rows(
    b: MilpBuilder,
    z_cols: IntArray,
    r_cols: IntArray,
    d_cols: IntArray,
    theta: FloatArray,
    ls: FloatArray,
    us: FloatArray,
    alpha: float,
    binary: BoolArray,
) -> None:
    """Rows for ``r = max(s, alpha s)``, ``s = z - theta``, ``ls <= s <= us`` (module docstring).

    Neurons with ``binary`` use the four big-M rows with binary ``d_cols`` (in order);
    the others are stable: ``r - z = -theta`` (``ls >= 0`` or ``alpha = 1``) or
    ``r - alpha z = -alpha theta`` (``us <= 0``).
    """
    active = ~binary & ((ls >= 0.0) | (alpha >= 1.0))
    inactive = ~binary & ~active
    if active.any():
        b.add_rows([(r_cols[active], 1.0), (z_cols[active], -1.0)], -theta[active], -theta[active])
    if inactive.any():
        rhs = -alpha * theta[inactive]
        b.add_rows([(r_cols[inactive], 1.0), (z_cols[inactive], -alpha)], rhs, rhs)
    if binary.any():
        rc, zc, th = r_cols[binary], z_cols[binary], theta[binary]
        lo, hi = ls[binary], us[binary]
        beta = 1.0 - alpha
        b.add_rows([(rc, 1.0), (zc, -1.0)], -th, _INF)  # r >= s
        b.add_rows([(rc, 1.0), (zc, -alpha)], -alpha * th, _INF)  # r >= alpha s
        # r <= s - (1 - alpha) ls (1 - d)
        b.add_rows([(rc, 1.0), (zc, -1.0), (d_cols, -beta * lo)], -_INF, -th - beta * lo)
        # r <= alpha s + (1 - alpha) us d
        b.add_rows([(rc, 1.0), (zc, -alpha), (d_cols, -beta * hi)], -_INF, -alpha * th)


def _piece_bounds(ls: FloatArray, leak: float) -> FloatArray:
    """``max(s, leak s)`` at a bound ``s`` of the shifted input (a non-decreasing piece)."""
    return np.maximum(ls, leak * ls) + 0.0  # + 0.0: no negative zeros in column bounds


def encode_pieces(
    b: MilpBuilder,
    pieces: ReluPieces,
    z: slice,
    l: FloatArray,
    u: FloatArray,
    all_binary: bool,
    post_lower: FloatArray,
    post_upper: FloatArray,
) -> _LayerEncoding:
    r"""Columns and rows of one layer of :math:`\sigma(z) = c + \sum_i w_i r_i`,
    :math:`r_i = \max(z - \theta_i, \lambda_i (z - \theta_i))` (the rule's ``relu_pieces``).

    One piece with ``c = 0`` and ``w = 1`` (ReLU, LeakyReLU): the post-activation column *is*
    the piece, no auxiliary column. Otherwise one auxiliary block of ``n`` columns per piece
    (``r_i`` in ``[max(l_i', lam l_i'), max(u_i', lam u_i')]`` with ``l_i' = l - theta_i``) and
    the row :math:`a - \sum_i w_i r_i = c` (HardTanh: ``a - r+ + r- = m``). Each piece gets the
    rows of :func:`_piece_rows`; its binaries (one per unstable neuron, or every neuron with
    ``all_binary``) follow the previous piece's, with threshold ``theta_i``.

    Args:
        b: the builder.
        pieces: ``(c, ((theta_i, w_i, lam_i), ...))``.
        z: the layer's pre-activation columns.
        l: sound lower bounds of ``z``.
        u: sound upper bounds of ``z``.
        all_binary: give every piece a binary, even stable ones.
        post_lower: column lower bounds of ``a`` (``sigma(l)``).
        post_upper: column upper bounds of ``a`` (``sigma(u)``).
    """
    offset, ps = pieces
    n = z.stop - z.start
    a = b.add_columns(n, post_lower, post_upper)
    direct = len(ps) == 1 and offset == 0.0 and ps[0][1] == 1.0
    if direct:
        r_cols = [a]
    else:
        r_cols = [
            b.add_columns(n, _piece_bounds(l - theta, leak), _piece_bounds(u - theta, leak))
            for theta, _, leak in ps
        ]
    binary = piece_binaries(pieces, l, u, all_binary)
    neurons = [np.flatnonzero(m).astype(np.int64) for m in binary]
    d = b.add_columns(sum(k.size for k in neurons), 0.0, 1.0, integer=True)
    d_idx = np.arange(d.start, d.stop, dtype=np.int64)
    z_idx = np.arange(z.start, z.stop, dtype=np.int64)
    at = 0
    for (theta, _, leak), r, mask, nb in zip(ps, r_cols, binary, neurons):
        _piece_rows(
            b,
            z_idx,
            np.arange(r.start, r.stop, dtype=np.int64),
            d_idx[at : at + nb.size],
            np.full(n, theta),
            l - theta,
            u - theta,
            leak,
            mask,
        )
        at += nb.size
    if not direct:
        terms: list[tuple[ArrayLike, ArrayLike]] = [(np.arange(a.start, a.stop), 1.0)]
        terms += [(np.arange(r.start, r.stop), -w) for r, (_, w, _) in zip(r_cols, ps)]
        b.add_rows(terms, offset, offset)
    aux = _empty_slice(a.stop) if direct else slice(r_cols[0].start, r_cols[-1].stop)
    return _LayerEncoding(
        a,
        aux,
        d,
        np.concatenate(neurons),
        np.concatenate([np.full(k.size, theta) for k, (theta, _, _) in zip(neurons, ps)]),
    )


def piece_values(pieces: ReluPieces, z: FloatArray) -> list[FloatArray]:
    """Each piece's value ``max(z - theta_i, lam_i (z - theta_i))`` (the auxiliary columns)."""
    return [_piece_bounds(z - theta, leak) for theta, _, leak in pieces[1]]


def piece_binaries(
    pieces: ReluPieces, l: FloatArray, u: FloatArray, all_binary: bool = False
) -> list[BoolArray]:
    """Per piece, the neurons that get a binary (the order of :func:`encode_pieces`)."""
    return [_piece_needs_binary(l - t, u - t, leak, all_binary) for t, _, leak in pieces[1]]


def piece_thresholds(
    pieces: ReluPieces, l: FloatArray, u: FloatArray, all_binary: bool = False
) -> FloatArray:
    """The kink ``theta`` of every binary of a layer encoded by :func:`encode_pieces`."""
    masks = piece_binaries(pieces, l, u, all_binary)
    parts = [np.full(int(np.count_nonzero(m)), t) for m, (t, _, _) in zip(masks, pieces[1])]
    return np.concatenate(parts) if parts else np.zeros(0)


def big_m_pieces(layer: Activation) -> ReluPieces | None:
    """The activation's big-M rule (its rule's ``relu_pieces``), ``None`` without one."""
    pieces = rule_for(layer).relu_pieces(layer)
    return None if pieces is None else check_pieces(pieces)


def encode_activation(
    b: MilpBuilder,
    layer: Activation,
    z: slice,
    l: FloatArray,
    u: FloatArray,
    all_binary: bool,
) -> _LayerEncoding:
    """The exact big-M encoding of one activation layer from its rule (:func:`encode_pieces`).

    Raises:
        UnsupportedLayerError: the activation has no big-M rule (sigmoid, tanh).
    """
    pieces = big_m_pieces(layer)
    if pieces is None:
        raise UnsupportedLayerError(_NOT_PWL.format(name=type(layer).__name__))
    rule = rule_for(layer)
    return encode_pieces(b, pieces, z, l, u, all_binary, rule.apply(layer, l), rule.apply(layer, u))


_NOT_PWL = (
    "encode_milp: exact MILP needs piecewise-linear activations, got {name}; use Model 2 "
    "(--method model2, nncert.formulations.model2) or ibp/crown for sigmoid/tanh networks"
)

#: an encoder of one activation layer: ``(builder, layer, z, l, u, all_binary) -> encoding``
ActivationEncoder = Callable[
    [MilpBuilder, Activation, slice, FloatArray, FloatArray, bool], _LayerEncoding
]

HardTanhEncoding = Literal["two_relu"]


def _check_inputs(
    net: Network, case: UnsafeCase, bounds: LayerBounds, overrides: Mapping[type, Any]
) -> tuple[tuple[Dense, ...], tuple[Activation, ...]]:
    dense, acts = net.affine_and_activations()
    if case.input_box.dim != net.n_inputs:
        raise InvalidPropertyError(
            f"encode_milp: case has {case.input_box.dim} inputs, network has {net.n_inputs}"
        )
    if case.A.shape[1] != net.n_outputs:
        raise InvalidPropertyError(
            f"encode_milp: case has {case.A.shape[1]} outputs, network has {net.n_outputs}"
        )
    for act in acts:
        if type(act) not in overrides and big_m_pieces(act) is None:
            raise UnsupportedLayerError(_NOT_PWL.format(name=type(act).__name__))
    pre = bounds.pre_activation
    if len(pre) != len(dense) or any(
        iv.lower.shape != (d.n_out,) or iv.upper.shape != (d.n_out,) for iv, d in zip(pre, dense)
    ):
        raise InvalidOptionsError(
            "encode_milp: bounds do not match the network's normal form "
            f"({len(pre)} intervals for {len(dense)} Dense layers)"
        )
    if bounds.network != net:
        raise InvalidOptionsError("encode_milp: bounds were computed for a different network")
    box = case.input_box
    if np.any(box.lower < bounds.box.lower) or np.any(box.upper > bounds.box.upper):
        raise InvalidPropertyError(
            "encode_milp: bounds were computed over a box that does not contain the case's "
            "input box; recompute them over case.input_box"
        )
    for k, iv in enumerate(pre[:-1]):
        if not (np.all(np.isfinite(iv.lower)) and np.all(np.isfinite(iv.upper))):
            raise InvalidOptionsError(f"encode_milp: bounds of layer {k + 1} are not finite")
        if np.any(iv.lower > iv.upper):
            raise InvalidOptionsError(f"encode_milp: bounds of layer {k + 1} have lower > upper")
    return dense, acts


def encode_case_objective(
    b: MilpBuilder, case: UnsafeCase, last: Dense, prev: slice
) -> tuple[FloatArray, float, int | None]:
    r"""Add the objective of an unsafe case on top of the last hidden layer's columns.

    With :math:`G = A W^{(L)}` and :math:`h = A b^{(L)} - b`, the case objective is
    :math:`\max_r (G_r a + h_r)`. One row: the objective is :math:`G_0 a + h_0` directly (``h_0``
    as the offset). Several rows: a free column :math:`t` with :math:`t - G_r a \ge h_r` for
    every row, and the objective :math:`t`. No row: the objective is 0.

    Args:
        b: the builder (columns of the last hidden layer already added).
        case: the unsafe case.
        last: the output Dense layer.
        prev: the columns of the last hidden layer's post-activations (or the inputs).

    Returns:
        ``(c, offset, t_col)``: the objective vector over ``b``'s columns so far, its constant,
        and the column of ``t`` (``None`` unless the case has several rows).
    """
    G = np.asarray(case.A @ last.weight)
    h = case.A @ last.bias - case.b
    t_col: int | None = None
    offset = 0.0
    if case.n_rows == 1:
        offset = float(h[0])
    elif case.n_rows > 1:
        t = b.add_columns(1, -_INF, _INF)
        t_col = t.start
        rows = b.add_rows([(np.full(case.n_rows, t_col), 1.0)], h, _INF)
        b.add_block(rows, prev, -G)
    c = np.zeros(b.n_cols)
    if case.n_rows == 1:
        c[prev] = G[0]
    elif t_col is not None:
        c[t_col] = 1.0
    return c, offset, t_col


def encode_milp(
    network: Network,
    case: UnsafeCase,
    bounds: LayerBounds,
    /,
    *,
    hardtanh: HardTanhEncoding = "two_relu",
    stable_binaries: bool = False,
    rules: Mapping[type, ActivationEncoder] | None = None,
) -> MilpProblem:
    r"""Encode ``min_{x in box} max_r (A_r f(x) - b_r)`` as an exact big-M MILP (Model 1).

    The constraints are listed in the module docstring. The optimum is ``> 0`` iff the case is
    infeasible (the property holds for it); otherwise an optimal (or any feasible) solution
    ``v`` with objective ``<= 0`` yields a counterexample ``x = problem.index.decode_input(v)``.
    A case with zero rows is always violated: the encoding then has objective ``0``.

    Args:
        network: a network with piecewise-linear activations (it is normalized first).
        case: the unsafe case; its ``input_box`` bounds the input columns.
        bounds: sound pre-activation bounds of ``network.normalized()`` over a box containing
            ``case.input_box`` (e.g. :func:`nncert.verify.bounds.interval_bounds`). They set
            every big-M constant, so unsound bounds give wrong answers.
        hardtanh: HardTanh encoding; only ``"two_relu"`` (FORMULATIONS.md 4.2 a).
        stable_binaries: give every piece a binary, even stable ones (for testing stable-neuron
            elimination; the optimum is the same).
        rules: encoders by activation type that replace the rule table's big-M rule
            (:func:`encode_activation`); a new activation is better added as an
            :class:`~nncert.verify.activations.ActivationRule` with ``relu_pieces``.

    Returns:
        The problem; ``problem.stats`` holds the number of binaries and unstable neurons.

    Raises:
        UnsupportedLayerError: for activations without a big-M rule (sigmoid, tanh).
        InvalidPropertyError: when the case does not fit the network or the bounds' box.
        InvalidOptionsError: on bounds that do not match the network, or a bad option.

    Example:
        >>> from nncert.verify.network import Dense, Network, ReLU
        >>> from nncert.verify.spec import Box, UnsafeCase
        >>> from nncert.verify.bounds import interval_bounds
        >>> net = Network((Dense(np.array([[1.0], [-1.0]]), np.zeros(2)), ReLU(),
        ...                Dense(np.array([[1.0, 1.0]]), np.zeros(1))), input_shape=(1,))
        >>> case = UnsafeCase(Box([-1.0], [2.0]), [[1.0]], [0.5])   # |x| <= 0.5 is unsafe
        >>> p = encode_milp(net, case, interval_bounds(net, case.input_box))
        >>> p.stats.n_binaries, p.stats.unstable_per_layer
        (2, (2,))
    """
    t0 = time.perf_counter()
    if hardtanh != "two_relu":
        raise InvalidOptionsError(f"encode_milp: hardtanh={hardtanh!r} must be 'two_relu'")
    table: dict[type, ActivationEncoder] = dict(rules or {})
    net = network.normalized()
    dense, acts = _check_inputs(net, case, bounds, table)

    b = MilpBuilder()
    x = b.add_columns(net.n_inputs, case.input_box.lower, case.input_box.upper)
    prev = x
    pre: list[slice] = []
    post: list[slice] = []
    aux: list[slice] = []
    bins: list[slice] = []
    bin_neuron: list[IntArray] = []
    bin_theta: list[FloatArray] = []
    unstable: list[int] = []
    for k, act in enumerate(acts):
        layer = dense[k]
        iv = bounds.pre_activation[k]
        l, u = np.asarray(iv.lower, dtype=np.float64), np.asarray(iv.upper, dtype=np.float64)
        z = b.add_columns(layer.n_out, l, u)
        # z - W a_prev = b
        rows = b.add_rows([(np.arange(z.start, z.stop), 1.0)], layer.bias, layer.bias)
        b.add_block(rows, prev, -layer.weight)
        enc = table.get(type(act), encode_activation)(b, act, z, l, u, stable_binaries)
        pre.append(z)
        post.append(enc.post)
        aux.append(enc.aux)
        bins.append(enc.binaries)
        bin_neuron.append(_readonly(enc.binary_neuron))
        bin_theta.append(_readonly(np.asarray(enc.binary_threshold, dtype=np.float64)))
        unstable.append(int(np.unique(enc.binary_neuron).size))
        prev = enc.post

    # objective rows: g = G a_prev + h,  G = A W^L,  h = A b^L - b
    c, offset, t_col = encode_case_objective(b, case, dense[-1], prev)

    index = VariableIndex(
        n_cols=b.n_cols,
        inputs=x,
        pre=tuple(pre),
        post=tuple(post),
        aux=tuple(aux),
        binaries=tuple(bins),
        binary_neuron=tuple(bin_neuron),
        objective=t_col,
        binary_threshold=tuple(bin_theta),
    )
    problem = b.build(c, offset, index)
    stats = EncodingStats(
        n_binaries=index.n_binaries,
        unstable_per_layer=tuple(unstable),
        binaries_per_layer=tuple(s.stop - s.start for s in bins),
        n_rows=problem.n_rows,
        n_cols=problem.n_cols,
        nnz=int(problem.A.nnz),
        build_time=time.perf_counter() - t0,
    )
    return dataclasses.replace(problem, stats=stats)


__all__ = [
    "ActivationEncoder",
    "EncodingStats",
    "MilpBuilder",
    "MilpProblem",
    "VariableIndex",
    "big_m_pieces",
    "encode_activation",
    "encode_case_objective",
    "encode_milp",
    "encode_pieces",
    "lp_relaxation",
    "piece_binaries",
    "piece_thresholds",
    "piece_values",
]
