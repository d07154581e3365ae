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
3. **delta** (branch and bound over prefixes, vectorised level by level): every completion of a
   prefix has ``max_k L_k >= l`` with ``l`` the larger of ``max_k (L_k^{prefix} + sum_{free}
   min(beta_kj, 0))`` and the Lagrangian bound ``lambda.L^{prefix} + sum_{free} min(0,
   lambda.beta_j)`` (``lambda`` in the simplex, tuned once at the root); since the slack is
   ``>= 0``, ``E >= phi(l) = min_j [eta_j + P (l - eta_j)_+^2]`` over the eta grid (the grid
   rounding included). A prefix whose bound exceeds the best energy found (minus the optional
   ``gap``) is not explored. Columns of ``beta`` that are all zero do not enter the energy and
   are fixed to 0.

With ``gap = 0`` the result is the exact ground state. A plateau of assignments that share the
same ``eta`` and differ only in slack rounding (``<= P K w_s^2 / 4`` in total) can make exact
search exponential; a positive ``gap`` of that size stops there, and the returned ``bound`` (the
smallest bound of anything unexplored, at least ``energy - gap``) is still a proven lower bound
of the ground energy, so the Benders bound ``bound - bound_correction`` stays sound.

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
#: memory cap of the frontier's partial cut values (float64 entries: 128 MiB)
_MAX_FRONTIER_FLOATS = 1 << 24


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
    """What :func:`minimise_master_qubo` found.

    Attributes:
        x: the state ``[delta | eta bits | slack bits]``; a ground state when ``gap = 0``,
            otherwise within ``gap`` of one.
        energy: its energy, computed in the factored form.
        bound: a proven lower bound of the ground energy (``energy`` when ``gap = 0``).
        leaves: assignments of ``delta`` evaluated exactly.
        nodes: prefixes generated by the branch and bound.
    """

    x: NDArray[np.int8]
    energy: float
    bound: float
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

    def grid_bound(self, lmax: FloatArray) -> FloatArray:
        r"""``phi(L) = min_j [eta_j + P (L - eta_j)_+^2]`` over the eta grid: a lower bound of
        ``E`` for every ``delta`` with ``max_k L_k(delta) >= L`` (slack is ``>= 0``), and
        nondecreasing in ``L``. The summand is convex in ``eta`` with its minimum at
        ``u = L - 1/(2P)``, so the grid minimum is next to ``u`` (four points cover round-off)."""
        u = lmax - 1.0 / (2.0 * self.P)
        i0 = np.floor((u - self.vmin) / self.w)
        js = np.clip(i0[:, None] + np.arange(-1, 3)[None, :], 0, self.J - 1)
        eta = self.vmin + self.w * js
        d = np.maximum(lmax[:, None] - eta, 0.0)
        out: FloatArray = (eta + self.P * d * d).min(axis=1)
        return out

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
            raise _NotDecided(f"eta window of {width} grid points")
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


class _NotDecided(Exception):
    pass


def _lagrange_weights(alpha: FloatArray, Bo: FloatArray, iterations: int = 200) -> FloatArray:
    r"""A good ``lambda`` in the simplex for the dual function
    ``g(lambda) = lambda.alpha + sum_j min(0, lambda.beta_j)`` (a lower bound of
    ``min_delta max_k L_k(delta)`` for every ``lambda``), by exponentiated-gradient ascent.
    Any ``lambda`` is valid; the best iterate is returned."""
    K = alpha.size
    lam = np.full(K, 1.0 / K)
    best, best_val = lam, -math.inf
    scale = float(np.abs(alpha).max(initial=0.0) + np.abs(Bo).sum(axis=0).max(initial=0.0))
    step = 1.0 / max(scale, 1e-12)
    for it in range(iterations):
        comb = Bo @ lam
        val = float(lam @ alpha + np.minimum(comb, 0.0).sum())
        if val > best_val:
            best, best_val = lam, val
        grad = alpha + Bo[comb < 0].sum(axis=0)
        z = np.log(np.maximum(lam, 1e-300)) + (4.0 * step / math.sqrt(it + 1.0)) * grad
        z -= z.max()
        lam = np.exp(z)
        lam /= lam.sum()
    return best


def minimise_master_qubo(
    q: QuboProblem,
    *,
    time_limit: float | None = None,
    gap: float = 0.0,
    max_frontier: int = MAX_FRONTIER,
) -> StructuredMinimum | None:
    """Ground state of a master QUBO (module docstring), or ``None``.

    Args:
        q: a QUBO built by ``benders_master_qubo`` (it carries ``meta["master_form"]``).
        time_limit: seconds.
        gap: absolute optimality gap: prefixes whose bound is within ``gap`` of the best energy
            are not explored. ``0`` gives the exact ground state; with ``gap > 0`` the result's
            ``bound`` (the smallest bound of any unexplored prefix, never below
            ``energy - gap``) is still a proven lower bound of the ground energy.
        max_frontier: largest number of open prefixes.

    ``None`` means "not decided here": the problem carries no master structure, a size limit
    (frontier, eta window, unbalanced enumeration) was reached, or the time limit ran out.
    """
    form = MasterQuboForm.from_problem(q)
    if form is None:
        return None
    deadline = None if time_limit is None else time.perf_counter() + float(time_limit)
    try:
        return _search(form, deadline, max(0.0, float(gap)), max_frontier)
    except _NotDecided:
        return None


def _search(
    form: MasterQuboForm, deadline: float | None, gap: float, max_frontier: int
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
    suffix = np.zeros((m + 1, K))
    if m:
        suffix[:m] = np.cumsum(np.minimum(Bo, 0.0)[::-1], axis=0)[::-1]
    tol = 1e-12 * (1.0 + float(np.abs(alpha).max(initial=0.0)) + float(np.abs(Bo).sum()))
    # Lagrangian weights: for lambda in the simplex, min over completions of max_k L_k is
    # >= lambda.S + sum_{free j} min(0, lambda.beta_j); the vertices give the per-cut bound,
    # the root's (approximately) optimal lambda a combination of cuts
    lam = _lagrange_weights(alpha, Bo) if (K > 1 and m and not unbalanced) else None
    suffix_lam = np.zeros(m + 1)
    if lam is not None and m:
        suffix_lam[:m] = np.cumsum(np.minimum(Bo @ lam, 0.0)[::-1])[::-1]

    def lower(S: FloatArray, depth: int) -> FloatArray:
        """Energy bound of every completion of the prefixes with cut values ``S``."""
        if unbalanced:
            return np.full(S.shape[0], -math.inf)
        if K == 0:
            return np.full(S.shape[0], ev.vmin)
        lmax = (S + suffix[depth]).max(axis=1)
        if lam is not None:
            lmax = np.maximum(lmax, S @ lam + suffix_lam[depth])
        return ev.grid_bound(lmax)

    def full_delta(prefix_bits: NDArray[np.int8]) -> NDArray[np.int8]:
        d = np.zeros(n, dtype=np.int8)
        d[order[: prefix_bits.size]] = prefix_bits
        return d

    best_e = math.inf
    best: tuple[NDArray[np.int8], int] | None = None
    pruned = math.inf  # smallest bound of any prefix or leaf not explored
    leaves = nodes = 0

    def try_leaves(bits: NDArray[np.int8], S: FloatArray, final: bool) -> None:
        # leaves in increasing order of their bound; once a chunk's bounds are within the gap
        # of the best energy so far, so are all later ones
        nonlocal best_e, best, leaves, pruned
        lb = lower(S, m)
        order_ = np.argsort(lb, kind="stable")
        size = 64
        s = 0
        while s < order_.size:
            if deadline is not None and time.perf_counter() > deadline:
                raise _NotDecided("time limit")
            idx = order_[s : s + size]
            skip = lb[idx] > best_e - gap + tol
            if final and skip.any():
                pruned = min(pruned, float(lb[idx][skip].min()))
            idx = idx[~skip]
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
        if final and s < order_.size:
            pruned = min(pruned, float(lb[order_[s:]].min()))

    # incumbents: delta = 0, the completion that lowers every column sum, the Lagrangian one
    base = np.zeros(m, dtype=np.int8)
    seeds = [base, (Bo.sum(axis=1) < 0).astype(np.int8) if m else base]
    if lam is not None:
        seeds.append((Bo @ lam < 0).astype(np.int8))
    seed_bits = np.stack(seeds)
    try_leaves(seed_bits, alpha[None, :] + seed_bits.astype(np.float64) @ Bo, False)

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
            lb = lower(S2, depth + t)
            keep = lb <= best_e - gap + tol
            if not keep.all():
                pruned = min(pruned, float(lb[~keep].min()))
            newF.append(F2[keep])
            newS.append(S2[keep])
        F = np.concatenate(newF) if newF else np.zeros((0, depth + t), dtype=np.int8)
        S = np.concatenate(newS) if newS else np.zeros((0, K))
        depth += t
        if F.shape[0] > max_frontier or F.shape[0] * max(K, 1) > _MAX_FRONTIER_FLOATS:
            return None
        if F.shape[0] == 0:
            break
        if depth < m:
            # improve the incumbent: complete the most promising prefixes greedily
            lb = lower(S, depth)
            pick = np.argsort(lb, kind="stable")[:16]
            weights = Bo[depth:] @ lam if lam is not None else Bo[depth:].sum(axis=1)
            tail = (weights < 0).astype(np.int8)
            comp = np.concatenate([F[pick], np.tile(tail, (pick.size, 1))], axis=1)
            try_leaves(comp, S[pick] + tail.astype(np.float64) @ Bo[depth:], False)
            keep = lb <= best_e - gap + tol
            if not keep.all():
                pruned = min(pruned, float(lb[~keep].min()))
            F, S = F[keep], S[keep]
    if F.shape[0]:
        try_leaves(F, S, True)
    if best is None:  # pragma: no cover - the seeds always give an incumbent
        return None
    delta, j = best
    return StructuredMinimum(ev.state(delta, j), best_e, min(best_e, pruned), leaves, nodes)


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
