r"""Benders split of a Model-1 MILP: master over the activation binaries, elastic LP subproblem.

Notation (FORMULATIONS.md 9.1-9.5). A :class:`~nncert.formulations.milp.MilpProblem`
``min c^T w + c0  s.t.  rl <= A w <= ru,  cl <= w <= cu`` is split into the binaries ``delta``
(``problem.integrality``: the activation binaries of unstable neurons, kinks strictly inside
``(l, u)``; stable neurons already have none, which is the interval-arithmetic pruning of
section 8) and the continuous columns ``v``::

    A w = A_v v + A_d delta.

**Elastic subproblem** (9.3). For fixed ``delta`` every row that contains a binary gets slack
columns ``s+ >= 0`` (when ``rl`` is finite) and ``s- >= 0`` (when ``ru`` is finite) with cost
``M``::

    E_M(delta) = min  c_v^T v + c0 + M 1^T (s+ + s-)
                 s.t. rl - A_d delta <= A_v v + s+ - s- <= ru - A_d delta,   cl <= v <= cu,
                      0 <= s+- <= S  (S: the largest possible violation, from the row's range)

It is feasible for every ``delta`` (the forward pass of any input satisfies the other rows),
``E_M(delta) <= Q(delta)`` (the LP with ``delta`` fixed, ``+inf`` when infeasible) and ``E_M`` is
non-decreasing in ``M``. Every column has finite bounds: the epigraph variable ``t`` of a
multi-row case is bounded by ``[max_r min g_r, max_r max g_r]`` (valid at every optimum).

**Optimality cuts** (9.2). For *any* row multipliers ``y`` (HiGHS ``row_dual``; multipliers of
infinite row bounds are clipped to the sign that keeps them finite), weak duality gives, with
reduced costs ``r = c_sub - A_sub^T y`` and ``y+ = max(y, 0)``, ``y- = max(-y, 0)``::

    L(delta) = c0 + sum_i (y+_i rl_i - y-_i ru_i) + sum_j (r+_j cl_j - r-_j cu_j)  -  y^T A_d delta
             = alpha + beta^T delta  <=  E_M(delta)  <=  Q(delta)   for every delta in [0, 1]^n.

The cut is computed from ``y`` itself (not from the LP objective), so it is valid even when the
LP was solved inexactly. At the ``delta`` where ``y`` is optimal, ``L(delta) = E_M(delta)``
(strong duality). A Magnanti–Wong cut (9.5) is the same formula with ``y`` optimal for the LP
at the core point ``delta_core``; by LP optimality it is never weaker there (oracle 21).

**Master** (9.4)::

    min eta  s.t.  eta >= alpha_k + beta_k^T delta (all k),  eta >= eta_lo,  delta binary

whose optimum is a lower bound of the MILP optimum ``m*`` (every cut is a lower bound of
``Q``). ``eta_lo`` is a sound lower bound of the case objective (CROWN); ``eta_hi`` any sound
upper bound of ``m*`` (only used for the QUBO encoding range).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike, NDArray

from nncert.formulations.milp import IntArray, MilpProblem
from nncert.verify.errors import InvalidOptionsError
from nncert.verify.network import FloatArray

#: Largest number of binaries :func:`enumerate_master` accepts.
ENUMERATE_MAX = 22


def _row_activity(A: sp.csr_array, lo: FloatArray, hi: FloatArray) -> tuple[FloatArray, FloatArray]:
    Ap = sp.csr_array(A, copy=True)
    An = sp.csr_array(A, copy=True)
    Ap.data = np.maximum(Ap.data, 0.0)
    An.data = np.minimum(An.data, 0.0)
    return Ap @ lo + An @ hi, Ap @ hi + An @ lo


@dataclass(frozen=True, eq=False)
class BendersSplit:
    """A :class:`MilpProblem` split into binaries (master) and an elastic LP (subproblem).

    Attributes:
        problem: the original MILP.
        delta_cols: columns of the binaries ``delta`` in ``problem``.
        cont_cols: columns of the continuous variables ``v`` in ``problem``.
        sub_template: the elastic LP at ``delta = 0`` (columns ``[v | s+ | s-]``); the slack cost
            is set by :meth:`subproblem`.
        A_delta: ``A_d``, shape ``(n_rows, n_delta)``.
        n_slack: number of slack columns (they are the last ``n_slack`` of the template).
        row_lower: ``rl`` of ``problem``.
        row_upper: ``ru`` of ``problem``.
        eta_lo: a sound lower bound of the MILP optimum (the seed cut ``eta >= eta_lo``).
        eta_hi: a sound upper bound of the MILP optimum.
    """

    problem: MilpProblem
    delta_cols: IntArray
    cont_cols: IntArray
    sub_template: MilpProblem
    A_delta: sp.csr_array
    n_slack: int
    row_lower: FloatArray
    row_upper: FloatArray
    eta_lo: float
    eta_hi: float

    @property
    def n_delta(self) -> int:
        """Number of binaries."""
        return int(self.delta_cols.size)

    @property
    def n_cont(self) -> int:
        """Number of continuous columns of the original problem."""
        return int(self.cont_cols.size)

    def subproblem(self, delta: ArrayLike, M: float) -> MilpProblem:
        """The elastic LP at ``delta`` (binary or fractional) with slack cost ``M``."""
        d = np.asarray(delta, dtype=np.float64).reshape(-1)
        if d.size != self.n_delta:
            raise InvalidOptionsError(
                f"subproblem: delta has {d.size} entries, need {self.n_delta}"
            )
        shift = self.A_delta @ d
        c = np.array(self.sub_template.c)
        c[self.n_cont :] = M
        return dataclasses.replace(
            self.sub_template,
            c=c,
            row_lower=self.row_lower - shift,
            row_upper=self.row_upper - shift,
        )

    def cut(self, y: ArrayLike, M: float) -> tuple[float, FloatArray]:
        """The optimality cut ``(alpha, beta)`` of row multipliers ``y`` (module docstring)."""
        yv = np.array(y, dtype=np.float64).reshape(-1)
        rl, ru = self.row_lower, self.row_upper
        fl, fu = np.isfinite(rl), np.isfinite(ru)
        yv = np.where(fl, yv, np.minimum(yv, 0.0))
        yv = np.where(fu, yv, np.maximum(yv, 0.0))
        yp, yn = np.maximum(yv, 0.0), np.maximum(-yv, 0.0)
        row_term = float(np.dot(yp[fl], rl[fl]) - np.dot(yn[fu], ru[fu]))
        sub = self.sub_template
        c = np.array(sub.c)
        c[self.n_cont :] = M
        r = c - sub.A.T @ yv
        col_term = float(
            np.dot(np.maximum(r, 0.0), sub.col_lower) - np.dot(np.maximum(-r, 0.0), sub.col_upper)
        )
        alpha = float(self.problem.offset) + row_term + col_term
        beta = -(self.A_delta.T @ yv)
        return alpha, np.asarray(beta, dtype=np.float64)

    def assemble(self, v_sub: ArrayLike, delta: ArrayLike) -> FloatArray:
        """The full column vector of ``problem`` from a subproblem point and ``delta``."""
        out = np.zeros(self.problem.n_cols)
        vs = np.asarray(v_sub, dtype=np.float64).reshape(-1)
        out[self.cont_cols] = vs[: self.n_cont]
        out[self.delta_cols] = np.asarray(delta, dtype=np.float64).reshape(-1)
        return out

    def slack_total(self, v_sub: ArrayLike) -> float:
        """Total elastic slack of a subproblem point (0: the point is MILP-feasible)."""
        vs = np.asarray(v_sub, dtype=np.float64).reshape(-1)
        return float(np.sum(np.abs(vs[self.n_cont :])))

    def master_milp(self, alpha: ArrayLike, beta: ArrayLike) -> MilpProblem:
        """The master as a MILP over ``[delta | eta]`` (``eta >= eta_lo``, no upper bound)."""
        a = np.asarray(alpha, dtype=np.float64).reshape(-1)
        B = np.asarray(beta, dtype=np.float64).reshape(a.size, self.n_delta)
        n = self.n_delta
        A = np.hstack([-B, np.ones((a.size, 1))])
        c = np.zeros(n + 1)
        c[n] = 1.0
        return MilpProblem.from_arrays(
            c,
            sp.csr_array(A) if a.size else sp.csr_array((0, n + 1)),
            a,
            np.full(a.size, np.inf),
            np.concatenate([np.zeros(n), [self.eta_lo]]),
            np.concatenate([np.ones(n), [np.inf]]),
            np.concatenate([np.ones(n, dtype=bool), [False]]),
        )


def split_milp(
    problem: MilpProblem,
    *,
    eta_bounds: tuple[float, float] | None = None,
) -> BendersSplit:
    """Split a MILP (e.g. from :func:`~nncert.formulations.milp.encode_milp`) for Benders.

    Args:
        problem: a MILP whose continuous columns have finite bounds, except possibly the
            epigraph column ``problem.index.objective`` (bounded here, module docstring).
        eta_bounds: sound ``(lower, upper)`` bounds of the MILP optimum (e.g. CROWN's bound
            of the case objective and the value of any input); intersected with the interval
            bound of ``c^T w + c0`` over the column box.

    Raises:
        InvalidOptionsError: on an unbounded continuous column that is not the epigraph.
    """
    integ = problem.integrality
    delta_cols = np.flatnonzero(integ).astype(np.int64)
    cont_cols = np.flatnonzero(~integ).astype(np.int64)
    A = sp.csr_array(problem.A)
    cl = np.array(problem.col_lower)
    cu = np.array(problem.col_upper)
    t = problem.index.objective
    if t is not None and not (np.isfinite(cl[t]) and np.isfinite(cu[t])):
        At = A[:, [t]].toarray().reshape(-1)
        rows = np.flatnonzero(At)
        if (
            problem.c[t] <= 0
            or np.any(At[rows] <= 0)
            or np.any(np.isfinite(problem.row_upper[rows]))
        ):
            raise InvalidOptionsError("split_milp: unexpected epigraph column structure")
        rest = sp.csr_array(A[rows])
        rest = sp.csr_array(rest.multiply(np.where(np.arange(problem.n_cols) == t, 0.0, 1.0)))
        lo_box = np.where(np.isfinite(cl), cl, 0.0)
        hi_box = np.where(np.isfinite(cu), cu, 0.0)
        act_lo, act_hi = _row_activity(rest, lo_box, hi_box)
        rl = problem.row_lower[rows]
        cl[t] = max(cl[t], float(np.max((rl - act_hi) / At[rows])))
        cu[t] = min(cu[t], float(np.max((rl - act_lo) / At[rows])))
    bad = ~(np.isfinite(cl) & np.isfinite(cu))
    if np.any(bad):
        raise InvalidOptionsError(
            f"split_milp: columns {np.flatnonzero(bad)[:5].tolist()} have infinite bounds"
        )
    A_v = sp.csr_array(A[:, cont_cols])
    A_d = sp.csr_array(A[:, delta_cols])
    rl, ru = np.array(problem.row_lower), np.array(problem.row_upper)
    act_lo, act_hi = _row_activity(A, cl, cu)
    has_d = np.diff(A_d.indptr) > 0
    S_plus = np.where(has_d & np.isfinite(rl), rl - act_lo, 0.0)
    S_minus = np.where(has_d & np.isfinite(ru), act_hi - ru, 0.0)
    plus_rows = np.flatnonzero(S_plus > 0)
    minus_rows = np.flatnonzero(S_minus > 0)
    n_plus, n_minus = plus_rows.size, minus_rows.size
    n_slack = n_plus + n_minus
    m = problem.n_rows
    S = sp.csr_array(
        (
            np.concatenate([np.ones(n_plus), -np.ones(n_minus)]),
            (np.concatenate([plus_rows, minus_rows]), np.arange(n_slack)),
        ),
        shape=(m, n_slack),
    )
    A_sub = sp.hstack([A_v, S]).tocsr()
    margin = 1e-6 * (1.0 + np.abs(np.concatenate([S_plus[plus_rows], S_minus[minus_rows]])))
    slack_hi = np.concatenate([S_plus[plus_rows], S_minus[minus_rows]]) + margin
    c_sub = np.concatenate([problem.c[cont_cols], np.zeros(n_slack)])
    sub = MilpProblem.from_arrays(
        c_sub,
        A_sub,
        rl,
        ru,
        np.concatenate([cl[cont_cols], np.zeros(n_slack)]),
        np.concatenate([cu[cont_cols], slack_hi]),
        np.zeros(cont_cols.size + n_slack, dtype=bool),
        offset=problem.offset,
    )
    # interval bound of the objective over the column box
    cp, cn = np.maximum(problem.c, 0.0), np.minimum(problem.c, 0.0)
    obj_lo = float(cp @ cl + cn @ cu + problem.offset)
    obj_hi = float(cp @ cu + cn @ cl + problem.offset)
    if eta_bounds is not None:
        obj_lo = max(obj_lo, float(eta_bounds[0]))
        obj_hi = min(obj_hi, float(eta_bounds[1]))
    if obj_hi < obj_lo:  # bounds from different sources: keep both sound, order them
        obj_hi = obj_lo
    return BendersSplit(
        problem=problem,
        delta_cols=delta_cols,
        cont_cols=cont_cols,
        sub_template=sub,
        A_delta=A_d,
        n_slack=n_slack,
        row_lower=rl,
        row_upper=ru,
        eta_lo=obj_lo,
        eta_hi=obj_hi,
    )


def master_values(
    alpha: ArrayLike, beta: ArrayLike, delta: ArrayLike, eta_lo: float = -math.inf
) -> FloatArray:
    """``eta*(delta) = max(eta_lo, max_k alpha_k + beta_k^T delta)`` for rows of ``delta``."""
    a = np.asarray(alpha, dtype=np.float64).reshape(-1)
    D = np.atleast_2d(np.asarray(delta, dtype=np.float64))
    if a.size == 0:
        return np.full(D.shape[0], eta_lo)
    B = np.asarray(beta, dtype=np.float64).reshape(a.size, -1)
    out: FloatArray = np.maximum(np.max(D @ B.T + a, axis=1), eta_lo)
    return out


def enumerate_master(
    alpha: ArrayLike,
    beta: ArrayLike,
    n_delta: int,
    eta_lo: float = -math.inf,
    *,
    chunk: int = 1 << 15,
) -> tuple[float, NDArray[np.int8]]:
    """Exact master optimum by enumerating all ``2^n`` binaries (``n <= ENUMERATE_MAX``).

    Returns:
        ``(optimum, argmin delta)``.
    """
    if n_delta > ENUMERATE_MAX:
        raise InvalidOptionsError(f"enumerate_master: {n_delta} binaries > {ENUMERATE_MAX}")
    shifts = np.arange(n_delta, dtype=np.int64)
    best, arg = math.inf, np.zeros(n_delta, dtype=np.int8)
    for start in range(0, 1 << n_delta, chunk):
        ids = np.arange(start, min(start + chunk, 1 << n_delta), dtype=np.int64)
        D = ((ids[:, None] >> shifts) & 1).astype(np.int8)
        vals = master_values(alpha, beta, D, eta_lo)
        k = int(np.argmin(vals))
        if vals[k] < best:
            best, arg = float(vals[k]), D[k].copy()
    return best, arg


__all__ = [
    "ENUMERATE_MAX",
    "BendersSplit",
    "enumerate_master",
    "master_values",
    "split_milp",
]
