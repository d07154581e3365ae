r"""Exact ground states of Benders-master QUBOs by structured branch and bound.

The master QUBO of :func:`~nncert.formulations.qubo.benders_master_qubo` has a block structure
that a generic exact QUBO method (enumerating ``2^N`` states, or a McCormick-linearised MILP with
a weak relaxation) cannot see. Its variables are ``x = [delta | eta bits | slack bits]`` and, in
slack mode (FORMULATIONS.md 9.4),

.. math::

    E(\delta, \eta, s) = \eta + P \sum_{k=1}^{K} \bigl(\eta - L_k(\delta) - s_k\bigr)^2,
    \qquad L_k(\delta) = \alpha_k + \beta_k^T \delta,

with ``eta`` on the uniform grid ``v_min + w j`` (``j = 0..2^{B_eta} - 1``, offset or two's
complement encoding alike) and ``s_k = w_s z_k``, ``z_k in {0..2^{B_k} - 1}`` (the slack bits are
the binary digits of ``z_k``). The minimisation is exact in three nested steps:

1. **slack** (closed form): for fixed ``(delta, eta)`` the cut terms are independent and
   ``min_z (r - w_s z)^2`` over ``z in {0..Z}`` is attained at ``z = clip(round(r / w_s), 0, Z)``
   (the nearest point of a uniform grid on a line).
2. **eta** (a rigorous window): with ``s_k >= 0``, ``E >= LB(eta) = eta + P (L_max - eta)_+^2``
   (``L_max = max_k L_k``). If ``U`` is the energy at the first grid value above ``L_max``, every
   better ``eta`` satisfies ``LB(eta) < U``, i.e. ``L_max - t_max < eta < U`` with
   ``t_max = (1 + sqrt(1 + 4 P (U - L_max))) / (2P)``: only the grid points in that window (a
   handful with the rule ``P = c/w``) are evaluated.
3. **delta** (branch and bound over prefixes, vectorised level by level): for any completion of
   a prefix, ``E >= max(v_min, max_k (L_k^{prefix} + sum_{free} min(beta_kj, 0)) - 1/(4P))``
   (``eta + P d^2 >= eta + d - 1/(4P)`` for a violated cut), so a prefix whose bound exceeds the
   best energy found cannot hold a ground state. Columns of ``beta`` that are all zero do not
   enter the energy and are fixed to 0.

Unbalanced penalisation (``E = eta + P sum_k (lambda2 h_k^2 - lambda1 h_k)``, ``h_k = eta -
L_k``) has no slack; for fixed ``delta`` the energy is a convex quadratic in ``eta`` whose grid
minimum is at one of the grid points next to its continuous minimiser; ``delta`` is enumerated
in full (no pruning bound), so at most :data:`ENUMERATE_UNBALANCED` relevant binaries.

The result is the exact minimum of the *same* BQM (the caller re-evaluates the returned state
with :meth:`QuboProblem.energies` and compares); when the structure is absent or a size limit is
reached, :func:`minimise_master_qubo` returns ``None`` and the caller falls back to a generic
exact method.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from nncert.formulations.qubo import FixedPointEncoding, QuboProblem
from nncert.verify.network import FloatArray

#: largest frontier (open prefixes) before the search gives up (the caller falls back)
MAX_FRONTIER = 1 << 20
#: largest number of relevant binaries enumerated in full in unbalanced mode
ENUMERATE_UNBALANCED = 22
#: widest eta window evaluated per delta
MAX_ETA_WINDOW = 1 << 12
#: leaves evaluated per numpy batch
_LEAF_CHUNK = 1 << 12


@dataclass(frozen=True)
class MasterQuboForm:
    """The block structure of a master QUBO (see the module docstring)."""

    alpha: FloatArray
    beta: FloatArray
    eta: FixedPointEncoding
    penalty: float
    slack_step: float
    slack_max: NDArray[np.int64]
    slack_bits: NDArray[np.int64]
    unbalanced: tuple[float, float] | None

    @property
    def n_delta(self) -> int:
        """Number of activation binaries."""
        return int(self.beta.shape[1])

    @property
    def n_cuts(self) -> int:
        """Number of cuts ``K``."""
        return int(self.alpha.size)

    @classmethod
    def from_problem(cls, q: QuboProblem) -> MasterQuboForm | None:
        """The form recorded in ``q.meta`` by ``benders_master_qubo``, or ``None``."""
        meta = q.meta
        form = meta.get("master_form")
        enc = meta.get("encoding")
        if not isinstance(form, dict) or not isinstance(enc, FixedPointEncoding):
            return None
        alpha = np.asarray(form["alpha"], dtype=np.float64).reshape(-1)
        beta = np.asarray(form["beta"], dtype=np.float64)
        if beta.ndim != 2 or beta.shape[0] != alpha.size:
            return None
        bits = np.asarray(meta.get("slack_bits", ()), dtype=np.int64).reshape(-1)
        unbalanced = meta.get("penalization") == "unbalanced"
        if not unbalanced and bits.size != alpha.size:
            return None
        ws = meta.get("slack_step")
        return cls(
            alpha,
            beta,
            enc,
            float(meta["penalty"]),
            float(ws) if ws is not None else 1.0,
            (np.left_shift(1, bits) - 1).astype(np.int64),
            bits,
            (float(form["unbalanced"][0]), float(form["unbalanced"][1])) if unbalanced else None,
        )


@dataclass(frozen=True)
class StructuredMinimum:
    """The exact ground state found by :func:`minimise_master_qubo`."""

    x: NDArray[np.int8]
    energy: float
    leaves: int
    nodes: int


class _Energy:
    """Exact ``min_{eta, s} E(delta, eta, s)`` for batches of ``delta`` (via ``L = alpha + beta
    delta``)."""

    def __init__(self, form: MasterQuboForm) -> None:
        self.f = form
        enc = form.eta
        self.vmin = enc.min_value
        self.w = enc.step
        self.J = 1 << enc.bits
        self.P = form.penalty
        self.ws = form.slack_step
        self.zmax = form.slack_max.astype(np.float64)

    def _slack_terms(self, eta: FloatArray, L: FloatArray) -> FloatArray:
        # eta: (D, W), L: (D, K) -> (D, W)
        r = eta[:, :, None] - L[:, None, :]
        z = np.clip(np.rint(r / self.ws), 0.0, self.zmax)
        res = r - self.ws * z
        out: FloatArray = eta + self.P * np.einsum("dwk,dwk->dw", res, res)
        return out

    def best(self, L: FloatArray) -> tuple[FloatArray, NDArray[np.int64]]:
        """``(min energy, grid index of eta)`` per row of ``L`` (shape ``(D, K)``)."""
        if self.f.unbalanced is not None:
            return self._best_unbalanced(L)
        D, K = L.shape
        vmin, w, J = self.vmin, self.w, self.J
        if K == 0:
            return np.full(D, vmin), np.zeros(D, dtype=np.int64)
        Lmax = L.max(axis=1)
        ec = np.maximum(Lmax, vmin)
        j0 = np.clip(np.ceil((ec - vmin) / w - 1e-9), 0, J - 1).astype(np.int64)
        U0 = self._slack_terms((vmin + w * j0)[:, None], L)[:, 0]
        j_hi = np.clip(np.floor((U0 - vmin) / w + 1e-9), 0, J - 1).astype(np.int64)
        gap = np.maximum(U0 - Lmax, 0.0)
        t_max = (1.0 + np.sqrt(1.0 + 4.0 * self.P * gap)) / (2.0 * self.P)
        j_lo = np.clip(np.ceil((Lmax - t_max - vmin) / w - 1e-9), 0, J - 1).astype(np.int64)
        j_lo = np.minimum(j_lo, j0)
        j_hi = np.maximum(j_hi, j0)
        width = int((j_hi - j_lo).max()) + 1
        if width > MAX_ETA_WINDOW:
            raise _TooLarge(f"eta window of {width} grid points")
        js = j_lo[:, None] + np.arange(width)[None, :]
        valid = js <= j_hi[:, None]
        js = np.minimum(js, j_hi[:, None])
        E = self._slack_terms(vmin + w * js, L)
        E = np.where(valid, E, np.inf)
        k = np.argmin(E, axis=1)
        rows = np.arange(D)
        return E[rows, k], js[rows, k]

    def _best_unbalanced(self, L: FloatArray) -> tuple[FloatArray, NDArray[np.int64]]:
        assert self.f.unbalanced is not None
        lam1, lam2 = self.f.unbalanced
        D, K = L.shape
        vmin, w, J, P = self.vmin, self.w, self.J, self.P
        if K and lam2 > 0:
            eta_c = L.mean(axis=1) + (lam1 * K * P - 1.0) / (2.0 * lam2 * K * P)
            jc = np.floor((eta_c - vmin) / w).astype(np.int64)
            js = np.clip(jc[:, None] + np.arange(-1, 3)[None, :], 0, J - 1)
        else:
            js = np.tile(np.array([0, J - 1], dtype=np.int64), (D, 1))
        eta = vmin + w * js
        h = eta[:, :, None] - L[:, None, :]
        E = eta + P * (lam2 * h * h - lam1 * h).sum(axis=2)
        k = np.argmin(E, axis=1)
        rows = np.arange(D)
        return E[rows, k], js[rows, k]

    def state(self, delta: NDArray[np.int8], j: int) -> NDArray[np.int8]:
        """The full bit vector ``[delta | eta bits | slack bits]``."""
        f = self.f
        eta = self.vmin + self.w * j
        parts = [delta.astype(np.int8), f.eta.encode(eta)]
        if f.unbalanced is None and f.n_cuts:
            L = f.alpha + f.beta @ delta.astype(np.float64)
            z = np.clip(np.rint((eta - L) / self.ws), 0.0, self.zmax).astype(np.int64)
            for zk, bk in zip(z, f.slack_bits, strict=True):
                parts.append(((int(zk) >> np.arange(int(bk))) & 1).astype(np.int8))
        return np.concatenate(parts)


class _TooLarge(Exception):
    pass


def minimise_master_qubo(
    q: QuboProblem,
    *,
    time_limit: float | None = None,
    max_frontier: int = MAX_FRONTIER,
) -> StructuredMinimum | None:
    """Exact ground state of a master QUBO (module docstring), or ``None``.

    ``None`` means "not decided here": the problem carries no master structure, a size limit
    (frontier, eta window, unbalanced enumeration) was reached, or the time limit ran out.
    """
    form = MasterQuboForm.from_problem(q)
    if form is None:
        return None
    deadline = None if time_limit is None else time.perf_counter() + float(time_limit)
    try:
        return _search(form, deadline, max_frontier)
    except _TooLarge:
        return None


def _search(
    form: MasterQuboForm, deadline: float | None, max_frontier: int
) -> StructuredMinimum | None:
    ev = _Energy(form)
    K, n = form.n_cuts, form.n_delta
    alpha, beta = form.alpha, form.beta
    relevant = np.flatnonzero(np.any(beta != 0.0, axis=0)) if K else np.zeros(0, dtype=np.int64)
    strength = np.abs(beta[:, relevant]).max(axis=0) if relevant.size else np.zeros(0)
    order = relevant[np.argsort(-strength, kind="stable")]
    m = order.size
    unbalanced = form.unbalanced is not None
    if unbalanced and m > ENUMERATE_UNBALANCED:
        return None
    Bo = beta[:, order].T.copy()  # (m, K)
    neg = np.minimum(Bo, 0.0)
    suffix = np.zeros((m + 1, K))
    if m:
        suffix[:m] = np.cumsum(neg[::-1], axis=0)[::-1]
    slack_margin = 0.0 if unbalanced else 1.0 / (4.0 * form.penalty)
    tol = 1e-12 * (1.0 + float(np.abs(alpha).max(initial=0.0)) + float(np.abs(Bo).sum()))

    def lower(S: FloatArray, depth: int) -> FloatArray:
        if unbalanced:
            return np.full(S.shape[0], -math.inf)
        if K == 0:
            return np.full(S.shape[0], ev.vmin)
        return np.maximum(ev.vmin, (S + suffix[depth]).max(axis=1) - slack_margin)

    def full_delta(prefix_bits: NDArray[np.int8]) -> NDArray[np.int8]:
        d = np.zeros(n, dtype=np.int8)
        d[order[: prefix_bits.size]] = prefix_bits
        return d

    best_e = math.inf
    best: tuple[NDArray[np.int8], int] | None = None
    leaves = nodes = 0

    def try_leaves(bits: NDArray[np.int8], S: FloatArray) -> None:
        # leaves in increasing order of their bound; a chunk whose bound exceeds the best
        # energy so far (and every later one) holds no ground state
        nonlocal best_e, best, leaves
        lb = lower(S, m)
        order_ = np.argsort(lb, kind="stable")
        size = 64
        s = 0
        while s < order_.size:
            idx = order_[s : s + size]
            idx = idx[lb[idx] <= best_e + tol]
            if idx.size == 0:
                break
            E, j = ev.best(S[idx])
            leaves += E.size
            k = int(np.argmin(E))
            if E[k] < best_e:
                best_e = float(E[k])
                best = (full_delta(bits[idx[k]]), int(j[k]))
            s += size
            size = min(size * 4, _LEAF_CHUNK)

    # incumbents: delta = 0 and the completion that lowers every column sum
    base = np.zeros(m, dtype=np.int8)
    greedy = (Bo.sum(axis=1) < 0).astype(np.int8) if m else base
    seeds = np.stack([base, greedy])
    try_leaves(seeds, alpha[None, :] + seeds.astype(np.float64) @ Bo)

    # level-wise branch and bound over prefixes
    F = np.zeros((1, 0), dtype=np.int8)
    S = alpha[None, :].copy() if K else np.zeros((1, 0))
    depth = 0
    while depth < m:
        if deadline is not None and time.perf_counter() > deadline:
            return None
        t = min(m - depth, 8)
        combos = ((np.arange(1 << t)[:, None] >> np.arange(t)[None, :]) & 1).astype(np.int8)
        step = combos.astype(np.float64) @ Bo[depth : depth + t]  # (2^t, K)
        newF: list[NDArray[np.int8]] = []
        newS: list[FloatArray] = []
        rows_per = max(1, (1 << 18) // ((1 << t) * max(K, 1)))
        for s in range(0, F.shape[0], rows_per):
            Fc, Sc = F[s : s + rows_per], S[s : s + rows_per]
            S2 = (Sc[:, None, :] + step[None, :, :]).reshape(-1, K)
            F2 = np.concatenate(
                [np.repeat(Fc, 1 << t, axis=0), np.tile(combos, (Fc.shape[0], 1))], axis=1
            )
            nodes += S2.shape[0]
            keep = lower(S2, depth + t) <= best_e + tol
            newF.append(F2[keep])
            newS.append(S2[keep])
        F = np.concatenate(newF) if newF else np.zeros((0, depth + t), dtype=np.int8)
        S = np.concatenate(newS) if newS else np.zeros((0, K))
        depth += t
        if F.shape[0] > max_frontier:
            return None
        if F.shape[0] == 0:
            break
        if depth < m:
            # improve the incumbent: complete the most promising prefixes greedily
            lb = lower(S, depth)
            pick = np.argsort(lb, kind="stable")[:16]
            tail = (Bo[depth:].sum(axis=1) < 0).astype(np.int8)
            comp = np.concatenate([F[pick], np.tile(tail, (pick.size, 1))], axis=1)
            try_leaves(comp, S[pick] + tail.astype(np.float64) @ Bo[depth:])
            keep = lb <= best_e + tol
            F, S = F[keep], S[keep]
    if F.shape[0]:
        try_leaves(F, S)
    if best is None:  # pragma: no cover - the seeds always give an incumbent
        return None
    delta, j = best
    return StructuredMinimum(ev.state(delta, j), best_e, leaves, nodes)


def structured_info(result: StructuredMinimum) -> dict[str, Any]:
    """Stats for ``SolveResult.info``."""
    return {"leaves": result.leaves, "nodes": result.nodes, "status_text": "structured-exact"}


__all__ = [
    "ENUMERATE_UNBALANCED",
    "MAX_ETA_WINDOW",
    "MAX_FRONTIER",
    "MasterQuboForm",
    "StructuredMinimum",
    "minimise_master_qubo",
    "structured_info",
]
