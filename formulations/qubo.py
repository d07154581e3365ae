r"""QUBO formulations: the Benders master (Route A) and the monolithic grid QUBO (Route B).

A :class:`QuboProblem` is the energy

.. math::

    E(x) = \sum_i h_i x_i + \sum_{(i,j)} J_{ij} x_i x_j + c,    \qquad x \in \{0,1\}^N

stored as numpy vectors (``linear``, ``quad_row``/``quad_col``/``quad_bias`` with
``quad_row < quad_col``, ``offset``); :meth:`QuboProblem.to_bqm` turns it into a
``dimod.BinaryQuadraticModel`` with ``BinaryQuadraticModel.from_numpy_vectors`` (variables are
the integers ``0..N-1``). Every problem carries a *decoder* (bit vector -> named values) and its
spin accounting ``spins = {"activation", "objective", "slack"}`` (FORMULATIONS.md section 6).

Fixed-point encodings (FORMULATIONS.md 5.2, oracle 32)
------------------------------------------------------

* **offset** (default): ``v = lo + w * sum_{b<B} 2^b e_b`` covers ``[lo, lo + w (2^B - 1)]``
  exactly, in steps of ``w``; ``B = max(1, ceil(log2((hi - lo)/w + 1)))`` bits cover ``[lo, hi]``.
* **two's complement** (hqcran's ``p`` variable): ``v = w (-2^{B-1} e_0 + sum_{i<B-1} 2^i
  e_{i+1})`` covers ``[-w 2^{B-1}, w (2^{B-1} - 1)]`` in steps of ``w``; hqcran's width rule
  ``B = 1 + ceil(log2(1 + 2 T_max / w))`` with ``T_max = max(|lo|, |hi|)``.

Route A: the Benders master as a QUBO (FORMULATIONS.md 9.4, 9.7)
---------------------------------------------------------------

The master ``min_{delta, eta} eta  s.t.  eta >= L_k(delta) = alpha_k + beta_k^T delta`` (cuts
``k = 1..K``) becomes, with ``eta`` fixed-point encoded with step ``w`` over a range containing
``[eta_lo, eta_hi]`` (``eta_lo``: a sound lower bound of the case objective, e.g. CROWN;
``eta_hi``: a sound upper bound),

* **slack penalization** (default): ``E = eta + P sum_k (eta - L_k(delta) - s_k)^2`` with
  ``s_k = w_s sum_{i<B_k} 2^i sigma_{k,i}`` and ``B_k`` bits covering
  ``S_k = eta_max - min_delta L_k(delta)``;
* **unbalanced penalization** (Montañez-Barrera et al.): ``E = eta + P sum_k (lambda2 h_k^2 -
  lambda1 h_k)`` with ``h_k = eta - L_k(delta)``; no slack spins, but non-binding cuts get
  *negative* energy, so its ground state need not be a master optimum (no bound is derived).

**Penalty rule** (slack mode). With ``P = c / w`` (``c = penalty_scale``, default 4) and slack
step ``w_s = w / sqrt(c K)``, write ``eta*(delta) = max(eta_lo, max_k L_k(delta))`` and
``m = min_delta eta*(delta)`` (the master optimum). Then for every assignment

    E(delta, e, sigma) >= eta*(delta) - 1/(4P)     (violating a cut by d costs P d^2 >= d - 1/(4P))
    E_min <= m + w + P K (w_s/2)^2 = m + 1.25 w   (eta* rounded up to the grid; slack within w_s/2)

so (i) the ground state's ``delta_hat`` is ``eps_q``-optimal, ``eta*(delta_hat) <= m + eps_q``
with ``eps_q = w (1 + 1/(4c) + 1/4)``; (ii) **an exactly solved** slack QUBO gives the sound bound
``m >= E_min - 1.25 w`` (:attr:`QuboProblem.bound_correction`); (iii) at the ground state every
cut holds up to ``d <= w (1 + sqrt(1 + 5c)) / (2c)`` (:func:`max_cut_violation`). ``P > 1/w``
means no violation of a whole grid step ``w`` can pay for itself; the decoded ``eta`` is never
used as a bound (FORMULATIONS.md 9.7 rule 1): callers recompute ``eta_hat = max_k L_k(delta)``.

Route B: the monolithic grid QUBO (FORMULATIONS.md 5.2) — APPROXIMATE
---------------------------------------------------------------------

:func:`milp_to_qubo` substitutes a fixed-point expansion for every continuous column of a
:class:`~nncert.formulations.milp.MilpProblem` (``v = lo + h sum 2^b e_b``), keeps binaries as
they are, turns each equality row into ``P r(v)^2`` and each one-sided inequality into
``P (r(v) + s)^2`` with a binary-encoded slack. Its minimum is only a *grid estimate*: real
coefficients leave penalty residuals, hidden quantities are rounded, and an annealer is not
exact. Route B therefore only **falsifies**: the decoded input grid point is replayed through the
network. Its grid minimum ``min_grid g`` relates to the continuous optimum by ``m* >= min_grid g -
L_x h_x / 2`` only when the grid minimum is exact, which this QUBO cannot guarantee, so it never
verifies (see :mod:`nncert.solvers.qubo_method`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike, NDArray

from nncert.verify.errors import InvalidOptionsError
from nncert.verify.network import FloatArray

if TYPE_CHECKING:
    import dimod

    from nncert.formulations.milp import MilpProblem

IntArray: TypeAlias = NDArray[np.int64]
EncodingKind = Literal["offset", "twos_complement"]
Penalization = Literal["slack", "unbalanced"]

#: Largest QUBO (variables) that :func:`brute_force` enumerates.
BRUTE_FORCE_MAX = 24

#: Smallest ``eta`` step of a master QUBO, relative to ``1 + |eta_lo| + |eta_hi|``.
MIN_RELATIVE_STEP = 1e-6


# --------------------------------------------------------------------------------------------
# Fixed-point encodings
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FixedPointEncoding:
    """A real value written with ``bits`` binaries: ``v = base + weights @ e``.

    Attributes:
        kind: ``"offset"`` or ``"twos_complement"`` (module docstring).
        bits: number of binaries ``B >= 1``.
        step: the resolution ``w > 0``.
        base: the constant term (``lo`` for offset; 0 for two's complement).
    """

    kind: EncodingKind
    bits: int
    step: float
    base: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in ("offset", "twos_complement"):
            raise InvalidOptionsError(f"FixedPointEncoding: unknown kind {self.kind!r}")
        if not (isinstance(self.bits, int) and self.bits >= 1):
            raise InvalidOptionsError(f"FixedPointEncoding: bits={self.bits!r} must be >= 1")
        if not (math.isfinite(self.step) and self.step > 0):
            raise InvalidOptionsError(f"FixedPointEncoding: step={self.step!r} must be > 0")

    @property
    def weights(self) -> FloatArray:
        """Bit weights, shape ``(bits,)``."""
        powers = np.ldexp(1.0, np.arange(self.bits))
        if self.kind == "offset":
            return self.step * powers
        out = np.empty(self.bits)
        out[0] = -self.step * 2.0 ** (self.bits - 1)
        out[1:] = self.step * powers[:-1]
        return out

    @property
    def min_value(self) -> float:
        """Smallest encodable value."""
        return float(self.base + np.minimum(self.weights, 0.0).sum())

    @property
    def max_value(self) -> float:
        """Largest encodable value."""
        return float(self.base + np.maximum(self.weights, 0.0).sum())

    def decode(self, bits: ArrayLike) -> FloatArray:
        """Values of bit rows (shape ``(..., bits)``)."""
        return self.base + np.asarray(bits, dtype=np.float64) @ self.weights

    def encode(self, value: float) -> NDArray[np.int8]:
        """Bits of the smallest encodable value ``>= value`` (clipped to the range)."""
        v = min(max(float(value), self.min_value), self.max_value)
        k = math.ceil((v - self.min_value) / self.step - 1e-12)
        k = min(max(k, 0), 2**self.bits - 1)
        if self.kind == "twos_complement":
            k -= 2 ** (self.bits - 1)
            k %= 2**self.bits
            sign, rest = k >> (self.bits - 1), k & (2 ** (self.bits - 1) - 1)
            tail = [(rest >> i) & 1 for i in range(self.bits - 1)]
            return np.array([sign, *tail], dtype=np.int8)
        return np.array([(k >> i) & 1 for i in range(self.bits)], dtype=np.int8)


def offset_encoding(lo: float, hi: float, step: float) -> FixedPointEncoding:
    """Offset encoding of ``[lo, hi]`` with resolution ``step`` (``B = ceil(log2(span/w + 1))``)."""
    if not (math.isfinite(lo) and math.isfinite(hi) and lo <= hi):
        raise InvalidOptionsError(f"offset_encoding: need finite lo <= hi, got {lo!r}, {hi!r}")
    bits = max(1, math.ceil(math.log2((hi - lo) / step + 1.0) - 1e-12))
    return FixedPointEncoding("offset", bits, float(step), float(lo))


def offset_encoding_bits(lo: float, hi: float, bits: int) -> FixedPointEncoding:
    """Offset encoding of exactly ``[lo, hi]`` with ``bits`` bits (``w = (hi - lo)/(2^B - 1)``)."""
    span = max(float(hi) - float(lo), 1e-12)
    return FixedPointEncoding("offset", int(bits), span / (2.0**bits - 1.0), float(lo))


def twos_complement_encoding(t_max: float, step: float) -> FixedPointEncoding:
    """hqcran's two's complement: ``B = 1 + ceil(log2(1 + 2 T_max / w))``, range ``±T_max``."""
    if not (math.isfinite(t_max) and t_max >= 0):
        raise InvalidOptionsError(f"twos_complement_encoding: t_max={t_max!r} must be >= 0")
    bits = 1 + max(1, math.ceil(math.log2(1.0 + 2.0 * t_max / step) - 1e-12))
    return FixedPointEncoding("twos_complement", bits, float(step), 0.0)


# --------------------------------------------------------------------------------------------
# The problem
# --------------------------------------------------------------------------------------------


def _no_decoder(x: NDArray[Any]) -> dict[str, Any]:
    return {"x": np.asarray(x)}


@dataclass(frozen=True, eq=False)
class QuboProblem:
    """``min_x x^T Q x + offset`` over binary ``x`` (variables ``0..N-1``), numpy-backed.

    Attributes:
        linear: ``h``, shape ``(N,)``.
        quad_row: row indices of the couplers (``quad_row < quad_col``).
        quad_col: column indices.
        quad_bias: coupler values ``J_ij``.
        offset: constant.
        spins: spin accounting ``{"activation", "objective", "slack"}`` (their sum is ``N``).
        decoder: bit vector -> named values (``delta``, ``eta``, ``x``, ...).
        bound_correction: when finite, ``E_min - bound_correction`` is a *sound* lower bound of
            the encoded problem's optimum provided ``E_min`` is the exact ground energy
            (module docstring); ``inf`` when no such bound holds (unbalanced, Route B).
        meta: free-form details (encodings, penalty, resolution).
    """

    linear: FloatArray
    quad_row: IntArray
    quad_col: IntArray
    quad_bias: FloatArray
    offset: float
    spins: Mapping[str, int]
    decoder: Callable[[NDArray[Any]], dict[str, Any]] = field(default=_no_decoder, compare=False)
    bound_correction: float = math.inf
    meta: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        lin = np.array(self.linear, dtype=np.float64, copy=True).reshape(-1)
        row = np.array(self.quad_row, dtype=np.int64, copy=True).reshape(-1)
        col = np.array(self.quad_col, dtype=np.int64, copy=True).reshape(-1)
        val = np.array(self.quad_bias, dtype=np.float64, copy=True).reshape(-1)
        n = lin.size
        if not (row.size == col.size == val.size):
            raise InvalidOptionsError("QuboProblem: quad_row, quad_col, quad_bias differ in size")
        if row.size and (row.min() < 0 or col.max() >= n or np.any(row >= col)):
            raise InvalidOptionsError("QuboProblem: couplers need 0 <= row < col < N")
        if not (np.all(np.isfinite(lin)) and np.all(np.isfinite(val))):
            raise InvalidOptionsError("QuboProblem: biases must be finite")
        spins = {k: int(v) for k, v in self.spins.items()}
        if sum(spins.values()) != n:
            raise InvalidOptionsError(
                f"QuboProblem: spin accounting {spins} does not add up to {n} variables"
            )
        for arr in (lin, row, col, val):
            arr.setflags(write=False)
        object.__setattr__(self, "linear", lin)
        object.__setattr__(self, "quad_row", row)
        object.__setattr__(self, "quad_col", col)
        object.__setattr__(self, "quad_bias", val)
        object.__setattr__(self, "offset", float(self.offset))
        object.__setattr__(self, "spins", spins)

    @property
    def num_variables(self) -> int:
        """``N``."""
        return int(self.linear.size)

    @property
    def num_interactions(self) -> int:
        """Number of stored couplers."""
        return int(self.quad_bias.size)

    def energies(self, samples: ArrayLike) -> FloatArray:
        """Energies of binary rows ``samples`` (shape ``(S, N)`` or ``(N,)``), vectorized."""
        X = np.atleast_2d(np.asarray(samples, dtype=np.float64))
        if X.shape[1] != self.num_variables:
            raise InvalidOptionsError(
                f"QuboProblem.energies: samples have {X.shape[1]} columns, N={self.num_variables}"
            )
        quad = (X[:, self.quad_row] * X[:, self.quad_col]) @ self.quad_bias
        out: FloatArray = X @ self.linear + quad + self.offset
        return out

    def energy(self, x: ArrayLike) -> float:
        """Energy of one binary vector."""
        return float(self.energies(np.asarray(x).reshape(1, -1))[0])

    def decode(self, x: ArrayLike) -> dict[str, Any]:
        """Named values of a bit vector (see :attr:`decoder`)."""
        return self.decoder(np.asarray(x).reshape(-1))

    def to_ising(self) -> tuple[FloatArray, IntArray, IntArray, FloatArray, float]:
        """Ising form under ``x = (s + 1)/2``, ``s in {-1, +1}``: ``(h, row, col, J, offset)``.

        ``x_i x_j = (1 + s_i + s_j + s_i s_j)/4`` and ``x_i = (1 + s_i)/2`` give
        ``h_i = a_i/2 + sum_{j} J_ij/4``, ``J^s_ij = J_ij/4`` and
        ``offset^s = c + sum a_i/2 + sum J_ij/4`` (oracle 30).
        """
        J = self.quad_bias
        h = self.linear / 2.0
        h = h + np.bincount(self.quad_row, J / 4.0, minlength=self.num_variables)
        h = h + np.bincount(self.quad_col, J / 4.0, minlength=self.num_variables)
        off = self.offset + self.linear.sum() / 2.0 + J.sum() / 4.0
        return h, self.quad_row.copy(), self.quad_col.copy(), J / 4.0, float(off)

    def to_bqm(self) -> dimod.BinaryQuadraticModel:
        """The ``dimod.BinaryQuadraticModel`` (BINARY, variables ``0..N-1``)."""
        import dimod

        return dimod.BinaryQuadraticModel.from_numpy_vectors(
            self.linear,
            (self.quad_row, self.quad_col, self.quad_bias),
            self.offset,
            dimod.BINARY,
            variable_order=range(self.num_variables),
        )


def quadratic_penalty(
    R: sp.csr_array | NDArray[np.float64],
    r0: ArrayLike,
    weight: ArrayLike,
    linear: ArrayLike,
    offset: float = 0.0,
) -> tuple[FloatArray, IntArray, IntArray, FloatArray, float]:
    r"""Expand ``linear^T x + offset + sum_i weight_i (r0_i + R_i x)^2`` for binary ``x``.

    With ``M = R^T diag(weight) R`` and ``x_i^2 = x_i``:
    ``h = linear + 2 R^T (weight * r0) + diag(M)``, ``J_ij = 2 M_ij`` (``i < j``),
    ``c = offset + sum_i weight_i r0_i^2``. Sparse throughout (one ``R^T W R`` product).

    Returns:
        ``(h, row, col, J, c)``.
    """
    Rs = sp.csr_array(R, dtype=np.float64)
    r0v = np.asarray(r0, dtype=np.float64).reshape(-1)
    wv = np.broadcast_to(np.asarray(weight, dtype=np.float64), r0v.shape)
    M = (Rs.T @ sp.diags_array(wv) @ Rs).tocoo()
    diag = np.zeros(Rs.shape[1])
    on = M.row == M.col
    np.add.at(diag, M.row[on], M.data[on])
    upper = M.row < M.col
    row, col, val = M.row[upper], M.col[upper], 2.0 * M.data[upper]
    # merge duplicates (coo from products is canonical, but be safe)
    key = row.astype(np.int64) * Rs.shape[1] + col
    uniq, inv = np.unique(key, return_inverse=True)
    vals = np.bincount(inv, val, minlength=uniq.size)
    keep = vals != 0.0
    h = np.asarray(linear, dtype=np.float64) + 2.0 * (Rs.T @ (wv * r0v)) + diag
    c = float(offset + np.dot(wv, r0v * r0v))
    return (
        h,
        (uniq[keep] // Rs.shape[1]).astype(np.int64),
        (uniq[keep] % Rs.shape[1]).astype(np.int64),
        vals[keep],
        c,
    )


def brute_force(problem: QuboProblem, *, chunk: int = 1 << 16) -> tuple[NDArray[np.int8], float]:
    """Exact ground state by numpy enumeration (``N <= BRUTE_FORCE_MAX``), for tests/checks."""
    n = problem.num_variables
    if n > BRUTE_FORCE_MAX:
        raise InvalidOptionsError(f"brute_force: {n} variables > {BRUTE_FORCE_MAX}")
    best_e, best_x = math.inf, np.zeros(n, dtype=np.int8)
    shifts = np.arange(n, dtype=np.int64)
    for start in range(0, 1 << n, chunk):
        ids = np.arange(start, min(start + chunk, 1 << n), dtype=np.int64)
        X = ((ids[:, None] >> shifts) & 1).astype(np.int8)
        e = problem.energies(X)
        k = int(np.argmin(e))
        if e[k] < best_e:
            best_e, best_x = float(e[k]), X[k].copy()
    return best_x, best_e


# --------------------------------------------------------------------------------------------
# Route A: the Benders master
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class QuboMasterOptions:
    """How :func:`benders_master_qubo` encodes the master.

    Attributes:
        eta_bits: bits of ``eta`` (offset mode: ``w = (eta_hi - eta_lo)/(2^B - 1)``);
            ignored when ``eta_resolution`` is set.
        eta_resolution: the step ``w`` of ``eta`` (``None``: from ``eta_bits``).
        encoding: ``"offset"`` or ``"twos_complement"``.
        penalization: ``"slack"`` or ``"unbalanced"``.
        penalty_scale: ``c`` in ``P = c / w`` (slack mode; module docstring).
        penalty: explicit ``P`` (overrides the rule; the bound correction is then recomputed
            as ``w + P K w_s^2 / 4`` and the violation bound from the same argument).
        unbalanced: ``(lambda1, lambda2)`` for unbalanced penalization.
    """

    eta_bits: int = 8
    eta_resolution: float | None = None
    encoding: EncodingKind = "offset"
    penalization: Penalization = "slack"
    penalty_scale: float = 4.0
    penalty: float | None = None
    unbalanced: tuple[float, float] = (1.0, 1.0)

    def __post_init__(self) -> None:
        if self.encoding not in ("offset", "twos_complement"):
            raise InvalidOptionsError(f"QuboMasterOptions: encoding={self.encoding!r}")
        if self.penalization not in ("slack", "unbalanced"):
            raise InvalidOptionsError(f"QuboMasterOptions: penalization={self.penalization!r}")
        if not (isinstance(self.eta_bits, int) and 1 <= self.eta_bits <= 40):
            raise InvalidOptionsError(f"QuboMasterOptions: eta_bits={self.eta_bits!r}")
        if not self.penalty_scale > 0:
            raise InvalidOptionsError("QuboMasterOptions: penalty_scale must be > 0")


def eta_encoding(eta_lo: float, eta_hi: float, options: QuboMasterOptions) -> FixedPointEncoding:
    """The ``eta`` encoding of the master for the range ``[eta_lo, eta_hi]``.

    The step derived from ``eta_bits`` is never below ``MIN_RELATIVE_STEP * (1 + |eta_lo| +
    |eta_hi|)``: a collapsed range (``eta_hi ~ eta_lo`` late in a Benders run) would otherwise
    give ``P = c/w`` so large that float64 cannot represent the QUBO's energies.
    """
    if not (math.isfinite(eta_lo) and math.isfinite(eta_hi)):
        raise InvalidOptionsError("eta_encoding: the eta range must be finite")
    hi = max(eta_hi, eta_lo)
    w_min = MIN_RELATIVE_STEP * (1.0 + abs(eta_lo) + abs(hi))
    if options.encoding == "offset":
        if options.eta_resolution is not None:
            return offset_encoding(eta_lo, hi, options.eta_resolution)
        hi = max(hi, eta_lo + w_min * (2.0**options.eta_bits - 1.0))
        return offset_encoding_bits(eta_lo, hi, options.eta_bits)
    t_max = max(abs(eta_lo), abs(hi))
    step = options.eta_resolution
    if step is None:
        step = max(t_max / max(2.0 ** (options.eta_bits - 1) - 1.0, 1.0), w_min)
    return twos_complement_encoding(t_max, step)


def max_cut_violation(step: float, penalty_scale: float) -> float:
    """Largest cut violation ``d`` possible at an exact ground state (slack mode, rule P=c/w).

    From ``P d^2 - d <= 1.25 w`` with ``P = c/w``: ``d <= w (1 + sqrt(1 + 5c)) / (2c)``.
    """
    c = penalty_scale
    return step * (1.0 + math.sqrt(1.0 + 5.0 * c)) / (2.0 * c)


def benders_master_qubo(
    alpha: ArrayLike,
    beta: ArrayLike,
    eta_range: tuple[float, float],
    options: QuboMasterOptions | None = None,
) -> QuboProblem:
    r"""The Benders master ``min eta s.t. eta >= alpha_k + beta_k^T delta`` as a QUBO.

    Variables are ordered ``[delta (n) | eta bits (B_eta) | slack bits (sum_k B_k)]``; the
    decoder returns ``delta`` (int8), ``eta`` (the *decoded* value: never a bound) and
    ``eta_hat = max(eta_lo, max_k L_k(delta))`` recomputed in float64.

    Args:
        alpha: cut constants, shape ``(K,)``.
        beta: cut slopes, shape ``(K, n)``.
        eta_range: ``(eta_lo, eta_hi)``: sound lower and upper bounds of the case objective.
        options: encoding and penalty options.

    Returns:
        The problem; ``spins = {"activation": n, "objective": B_eta, "slack": sum B_k}`` and
        ``bound_correction = w + P K w_s^2/4`` in slack mode (``inf`` for unbalanced).
    """
    opts = options or QuboMasterOptions()
    a = np.asarray(alpha, dtype=np.float64).reshape(-1)
    K = a.size
    b_arr = np.asarray(beta, dtype=np.float64)
    if b_arr.ndim != 2 or b_arr.shape[0] != K:
        raise InvalidOptionsError(
            f"benders_master_qubo: beta must have shape (K, n) with K={K}, got {b_arr.shape}"
        )
    B = b_arr
    n = B.shape[1]
    eta_lo, eta_hi = float(eta_range[0]), float(eta_range[1])
    enc = eta_encoding(eta_lo, eta_hi, opts)
    w = enc.step
    wts = enc.weights
    c = opts.penalty_scale
    P = opts.penalty if opts.penalty is not None else c / w
    slack_mode = opts.penalization == "slack"
    # slack widths: S_k = eta_max - min_delta L_k(delta)
    min_L = a + np.minimum(B, 0.0).sum(axis=1)
    S = np.maximum(enc.max_value - min_L, 0.0)
    ws = w / math.sqrt(c * max(K, 1)) if opts.penalty is None else w / math.sqrt(max(K, 1))
    if slack_mode and K:
        nbits = np.maximum(1, np.ceil(np.log2(S / ws + 1.0) - 1e-12)).astype(np.int64)
    else:
        nbits = np.zeros(K, dtype=np.int64)
    n_slack = int(nbits.sum())
    n_eta = enc.bits
    N = n + n_eta + n_slack
    eta_cols = np.arange(n, n + n_eta)
    # residual rows r_k(x) = (eta_base - alpha_k) + [ -beta_k | eta weights | -slack weights ] x
    starts = n + n_eta + np.concatenate([[0], np.cumsum(nbits)[:-1]]) if K else np.zeros(0)
    slack_rows = np.repeat(np.arange(K), nbits)
    local = np.arange(n_slack) - np.repeat(starts - n - n_eta, nbits)
    slack_cols = n + n_eta + np.arange(n_slack)
    slack_vals = -ws * np.ldexp(1.0, local.astype(np.int64))
    dr, dc = np.nonzero(B)
    rows = np.concatenate([dr, np.repeat(np.arange(K), n_eta), slack_rows])
    cols = np.concatenate([dc, np.tile(eta_cols, K), slack_cols])
    vals = np.concatenate([-B[dr, dc], np.tile(wts, K), slack_vals])
    R = sp.csr_array((vals, (rows, cols)), shape=(K, N))
    r0 = enc.base - a
    lin = np.zeros(N)
    lin[eta_cols] = wts
    if slack_mode:
        h, qr, qc, qv, off = quadratic_penalty(R, r0, P, lin, enc.base)
        correction = w + P * K * ws * ws / 4.0
        correction += 1e-9 * (1.0 + abs(eta_lo) + abs(eta_hi))  # float64 round-off margin
    else:
        lam1, lam2 = opts.unbalanced
        lin_u = lin - P * lam1 * np.asarray(R.sum(axis=0)).reshape(-1)
        h, qr, qc, qv, off = quadratic_penalty(
            R, r0, P * lam2, lin_u, enc.base - P * lam1 * float(r0.sum())
        )
        correction = math.inf

    def decode(x: NDArray[Any]) -> dict[str, Any]:
        xv = np.asarray(x).reshape(-1)
        delta = xv[:n].astype(np.int8)
        eta = float(enc.decode(xv[n : n + n_eta]))
        eta_hat = float(max(eta_lo, (a + B @ delta).max())) if K else eta_lo
        return {"delta": delta, "eta": eta, "eta_hat": eta_hat}

    meta = {
        "encoding": enc,
        "penalty": P,
        "slack_step": ws if slack_mode else None,
        "slack_bits": tuple(int(b) for b in nbits),
        "n_cuts": K,
        "eta_range": (eta_lo, eta_hi),
        "penalization": opts.penalization,
        "eps_optimal": w * (1.0 + 1.0 / (4.0 * c) + 0.25) if slack_mode else math.inf,
        # optimality gap an exact solver may stop at: the slack-rounding allowance P K w_s^2/4
        "energy_gap": P * K * ws * ws / 4.0 if slack_mode else 0.0,
        # True when a narrower eta range would not give a finer step (fixed resolution, or the
        # MIN_RELATIVE_STEP floor): the bound's resolution is then final
        "step_is_final": opts.eta_resolution is not None
        or w <= MIN_RELATIVE_STEP * (1.0 + abs(eta_lo) + abs(eta_hi)) * (1.0 + 1e-9),
        # the block structure, for exact structured minimisers (nncert.solvers.exact_qubo)
        "master_form": {
            "alpha": a.copy(),
            "beta": B.copy(),
            "unbalanced": tuple(float(v) for v in opts.unbalanced),
        },
    }
    return QuboProblem(
        h,
        qr,
        qc,
        qv,
        off,
        {"activation": n, "objective": n_eta, "slack": n_slack},
        decode,
        correction,
        meta,
    )


def master_spins(n_delta: int, eta_bits: int, slack_bits: ArrayLike = ()) -> int:
    """Spin formula ``N_delta + B_eta + sum_k B_k`` (oracle 22; unbalanced: no slack)."""
    return int(n_delta + eta_bits + int(np.sum(np.asarray(slack_bits, dtype=np.int64))))


# --------------------------------------------------------------------------------------------
# Route B: monolithic grid QUBO of a whole MILP
# --------------------------------------------------------------------------------------------


def _activity_range(
    A: sp.csr_array, lo: FloatArray, hi: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Interval of ``A v`` over the box ``lo <= v <= hi`` (finite bounds)."""
    Ap = sp.csr_array(A, copy=True)
    An = sp.csr_array(A, copy=True)
    Ap.data = np.maximum(Ap.data, 0.0)
    An.data = np.minimum(An.data, 0.0)
    return Ap @ lo + An @ hi, Ap @ hi + An @ lo


def milp_to_qubo(
    problem: MilpProblem,
    *,
    bits: int = 4,
    input_bits: int | None = None,
    slack_bits: int = 4,
    penalty: float | None = None,
    penalty_scale: float = 2.0,
) -> QuboProblem:
    r"""Route B: a penalty QUBO of a whole (bounded) MILP over a fixed-point grid. APPROXIMATE.

    Every continuous column ``v_j in [lo_j, hi_j]`` becomes ``lo_j + h_j sum_b 2^b e_{j,b}`` with
    ``h_j = (hi_j - lo_j)/(2^B - 1)`` (``B = input_bits`` for ``problem.index.inputs``, ``bits``
    otherwise; fixed columns cost no bit); binaries stay binaries. With ``v = v0 + E x``:

    * equality rows ``A_i v = b_i``: ``P (A_i E x + A_i v0 - b_i)^2 / s_i^2``;
    * one-sided rows ``A_i v <= u_i`` (or ``>= l_i``): ``P (A_i v + sigma_i - u_i)^2 / s_i^2``
      with a slack ``sigma_i in [0, u_i - min A_i v]`` on ``slack_bits`` bits (two-sided rows
      give two);
    * ``s_i = max_j |A_ij|`` normalises the rows; the objective is ``c^T (v0 + E x) + offset``.

    Penalty rule: ``P = penalty_scale * (1 + sum_j |c_j| (hi_j - lo_j))``, i.e. larger than the
    largest possible objective gain over the box per unit of (normalised) squared residual.
    Residuals below one unit are still possible, so the minimum is only a grid *estimate*.

    The decoder returns ``x`` (the input grid point), ``v`` (all columns) and ``residual``
    (largest absolute row residual). ``spins = {"activation": binaries, "objective": 0,
    "slack": slack bits, "continuous": fixed-point bits of the continuous columns}``; no bound
    is claimed (``bound_correction = inf``).

    Raises:
        InvalidOptionsError: on infinite column bounds or bad bit counts.
    """
    if bits < 1 or slack_bits < 1 or (input_bits is not None and input_bits < 1):
        raise InvalidOptionsError("milp_to_qubo: bit counts must be >= 1")
    lo, hi = problem.col_lower, problem.col_upper
    if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
        raise InvalidOptionsError("milp_to_qubo: every column needs finite bounds")
    n = problem.n_cols
    integ = problem.integrality
    # a grid over a negligible range (a column fixed up to rounding allowances) gets no bits
    wide = hi - lo > 1e-12 * (1.0 + np.abs(lo) + np.abs(hi))
    nb = np.where(integ, 1, np.where(wide, bits, 0)).astype(np.int64)
    ins = problem.index.inputs
    if input_bits is not None:
        sel = np.zeros(n, dtype=bool)
        sel[ins] = True
        nb = np.where(sel & ~integ & wide, input_bits, nb)
    step = np.where(integ, 1.0, (hi - lo) / np.maximum(np.ldexp(1.0, nb) - 1.0, 1.0))
    v0 = np.where(integ, 0.0, lo)
    n_var_bits = int(nb.sum())
    owner = np.repeat(np.arange(n), nb)
    first = np.concatenate([[0], np.cumsum(nb)[:-1]])
    local = np.arange(n_var_bits) - np.repeat(first, nb)
    E = sp.csr_array(
        (step[owner] * np.ldexp(1.0, local), (owner, np.arange(n_var_bits))),
        shape=(n, n_var_bits),
    )
    A = problem.A
    act_lo, act_hi = _activity_range(A, lo, hi)
    rl, ru = problem.row_lower, problem.row_upper
    eq = rl == ru
    up = ~eq & np.isfinite(ru)
    dn = ~eq & np.isfinite(rl)
    # stack residual rows: [eq | upper (A v + s - u) | lower (A v - s - l)]
    parts_idx = [np.flatnonzero(eq), np.flatnonzero(up), np.flatnonzero(dn)]
    width_up = np.maximum(ru[up] - act_lo[up], 0.0)
    width_dn = np.maximum(act_hi[dn] - rl[dn], 0.0)
    n_up, n_dn = int(up.sum()), int(dn.sum())
    m_eq = parts_idx[0].size
    widths = np.concatenate([width_up, width_dn])
    sbits = np.full(widths.size, slack_bits, dtype=np.int64)
    sstep = widths / (np.ldexp(1.0, slack_bits) - 1.0)
    n_slack = int(sbits.sum())
    N = n_var_bits + n_slack
    AE = sp.csr_array(A @ E)
    rows_all = np.concatenate(parts_idx)
    R_var = sp.csr_array(AE[rows_all])
    sign = np.concatenate([np.ones(n_up), -np.ones(n_dn)])
    srow = m_eq + np.repeat(np.arange(n_up + n_dn), slack_bits)
    sloc = np.tile(np.arange(slack_bits), n_up + n_dn)
    sval = np.repeat(sign * sstep, slack_bits) * np.ldexp(1.0, sloc)
    R_slack = sp.csr_array(
        (sval, (srow, n_var_bits + np.arange(n_slack))), shape=(rows_all.size, N)
    )
    R = sp.hstack([R_var, sp.csr_array((rows_all.size, n_slack))]).tocsr() + R_slack
    rhs = np.concatenate([rl[parts_idx[0]], ru[up], rl[dn]])
    r0 = (A @ v0)[rows_all] - rhs
    absA = abs(A)
    scale = np.asarray(absA.max(axis=1).toarray()).reshape(-1)[rows_all]
    scale = np.where(scale > 0, scale, 1.0)
    gain = 1.0 + float(np.abs(problem.c) @ (hi - lo))
    P = penalty if penalty is not None else penalty_scale * gain
    weight = P / (scale * scale)
    lin = np.concatenate([E.T @ problem.c, np.zeros(n_slack)])
    obj_off = float(problem.c @ v0 + problem.offset)
    h, qr, qc, qv, off = quadratic_penalty(R, r0, weight, lin, obj_off)
    n_bin_bits = int(nb[integ].sum())

    def decode(x: NDArray[Any]) -> dict[str, Any]:
        xv = np.asarray(x, dtype=np.float64).reshape(-1)
        v = v0 + E @ xv[:n_var_bits]
        res = (R @ xv + r0) if R.shape[0] else np.zeros(0)
        return {
            "x": v[ins].copy(),
            "v": v,
            "residual": float(np.max(np.abs(res))) if res.size else 0.0,
        }

    meta = {"penalty": P, "bits": bits, "input_bits": input_bits, "slack_bits": slack_bits}
    return QuboProblem(
        h,
        qr,
        qc,
        qv,
        off,
        {
            "activation": n_bin_bits,
            "objective": 0,
            "slack": n_slack,
            "continuous": n_var_bits - n_bin_bits,
        },
        decode,
        math.inf,
        meta,
    )


__all__ = [
    "BRUTE_FORCE_MAX",
    "FixedPointEncoding",
    "QuboMasterOptions",
    "QuboProblem",
    "benders_master_qubo",
    "brute_force",
    "eta_encoding",
    "master_spins",
    "max_cut_violation",
    "milp_to_qubo",
    "offset_encoding",
    "offset_encoding_bits",
    "quadratic_penalty",
    "twos_complement_encoding",
]
