r"""Model 2 as a QUBO (Route B): segment selection and an input grid, penalised. PROPOSER ONLY.

FORMULATIONS.md 7.7. Model 2 (:mod:`nncert.formulations.model2`) selects, for every banded
neuron ``i`` of hidden layer ``k``, one segment ``[t_{s-1}, t_s]`` of its partition. This module
writes that selection with binary spins and replaces each segment by a representative point
``(c_s, v_s)`` with ``c_s = (t_{s-1} + t_s)/2`` and ``v_s = sigma(c_s)``, so every quantity of the
network is *affine* in the spins ``y``:

* input (offset fixed point, ``B_x`` bits per free input):
  ``x_j = lo_j + h_j sum_b 2^b e_{j,b}``, ``h_j = (hi_j - lo_j)/(2^{B_x} - 1)``;
* **thermometer** encoding (default, ``K_i - 1`` spins per neuron, ``u_s = [z_i > t_s]``)::

      z_hat_i = c_1 + sum_s u_s (c_{s+1} - c_s),     a_hat_i = v_1 + sum_s u_s (v_{s+1} - v_s)

  validity penalty ``P_v sum_s u_{s+1} (1 - u_s)`` (quadratic, no auxiliary spin); a
  non-monotone ``u`` still decodes to an interpolation of valid states (the segment is the
  number of ones);
* **one-hot** encoding (``K_i`` spins, ``delta_s``): ``z_hat_i = sum_s c_s delta_s``,
  ``a_hat_i = sum_s v_s delta_s``, validity penalty ``P_v (sum_s delta_s - 1)^2``;
* a neuron with one segment costs no spin and follows the secant of ``sigma`` on its range:
  ``a_hat_i = v_1 + m_i (z^lin_i - c_1)`` (affine in the spins, so nothing changes below).

The energy is

.. math::

    E(y) = A_r (W^{(L)} \hat a^{(L-1)} + b^{(L)}) - b_r
           + \sum_{k,i} P_{k,i} \Big(\frac{z^{lin}_{k,i}(y) - \hat z_{k,i}(y)}{h_{k,i}}\Big)^2
           + \text{validity}

with ``z^lin_1 = W^(1) x + b^(1)`` and ``z^lin_k = W^(k) a_hat^(k-1) + b^(k)``: the consistency
term pulls the selected segment's centre onto the neuron's actual pre-activation (``h_{k,i}``:
the neuron's mean segment width). Everything is quadratic because every ``z^lin`` is affine in
the spins. Penalty weights: ``P_{k,i} = penalty_scale * g_{k,i} * max_s |v_{s+1} - v_s|`` with
the sensitivity ``g`` of the objective to ``a_{k,i}`` (``g^{(L-1)} = |A_r W^{(L)}|``,
``g^{(k-1)} = |W^{(k)}|^T (Lip_k g^{(k)})``), floored at ``1e-3 max g``.

**Spin count** (7.7): ``N = B_x n_free + sum_i (K_i - 1)`` (thermometer) or
``B_x n_free + sum_{K_i >= 2} K_i`` (one-hot): :attr:`SegmentQubo.spins`.

**Soundness.** The representative points are not the network, and an annealer is not exact: the
minimum of this QUBO bounds nothing. It only *proposes* an input grid point and a segment
pattern. Callers replay the decoded input on the real network, and may solve the Model 2 LP
with the pattern fixed (:func:`pattern_delta`) to propose the best input consistent with it;
every proposal is replayed (``nncert.verify.witness``) before it is reported. Never a proof.

**Windows.** :meth:`SegmentQubo.windows` groups the spins layerwise (input bits, then each
hidden layer's neurons, never splitting a neuron) into windows of at most ``budget`` spins;
:func:`restrict_qubo` gives the QUBO of one window with the other spins fixed, so a block
coordinate search sends only QUBOs within the budget to a sampler (FORMULATIONS.md 10.2).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike, NDArray

from nncert.formulations.model2 import Model2Partition, Model2Problem
from nncert.formulations.qubo import QuboProblem, quadratic_penalty
from nncert.verify.activations import rule_for
from nncert.verify.errors import InvalidOptionsError
from nncert.verify.network import FloatArray, Network, apply_activation, densified
from nncert.verify.spec import UnsafeCase

SegmentEncoding = Literal["thermometer", "one_hot"]
IntArray = NDArray[np.int64]


@dataclass(frozen=True)
class SegmentQuboOptions:
    """Options of :func:`segment_qubo`.

    Attributes:
        encoding: ``"thermometer"`` (``K - 1`` spins per neuron) or ``"one_hot"`` (``K``).
        input_bits: fixed-point bits per free input.
        penalty_scale: consistency weight relative to one segment step of the objective.
        validity_scale: validity weight relative to the neuron's consistency weight.
    """

    encoding: SegmentEncoding = "thermometer"
    input_bits: int = 4
    penalty_scale: float = 2.0
    validity_scale: float = 2.0

    def __post_init__(self) -> None:
        if self.encoding not in ("thermometer", "one_hot"):
            raise InvalidOptionsError(f"SegmentQuboOptions: encoding={self.encoding!r}")
        if not (isinstance(self.input_bits, int) and 1 <= self.input_bits <= 16):
            raise InvalidOptionsError(f"SegmentQuboOptions: input_bits={self.input_bits!r}")
        if not (self.penalty_scale > 0 and self.validity_scale > 0):
            raise InvalidOptionsError("SegmentQuboOptions: penalty scales must be > 0")


@dataclass(frozen=True, eq=False)
class _Neurons:
    """Spin layout of one hidden layer."""

    first_seg: IntArray  # per neuron: index of its first segment in the partition
    counts: IntArray  # per neuron: K_i
    spin_start: IntArray  # per neuron: first spin (global); meaningless when n_spins == 0
    n_spins: IntArray  # per neuron: spins used


@dataclass(frozen=True, eq=False)
class SegmentQubo:
    """The Model 2 segment QUBO of one case row and how to read its spins.

    Attributes:
        qubo: the energy (``spins``: ``{"input": ..., "activation": ..., "objective": 0,
            "slack": 0}``).
        partition: the encoded partition (per hidden layer).
        encoding: ``"thermometer"`` or ``"one_hot"``.
        input_lower: lower end of each free input's grid.
        input_step: grid step ``h_j`` (0 for a fixed input).
        input_bits: bits per input (0 for a fixed input).
        layers: per hidden layer, the spin layout.
        meta: penalties and sizes.
    """

    qubo: QuboProblem
    partition: Model2Partition
    encoding: SegmentEncoding
    input_lower: FloatArray
    input_step: FloatArray
    input_bits: IntArray
    layers: tuple[_Neurons, ...]
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def num_spins(self) -> int:
        """``N``."""
        return self.qubo.num_variables

    @property
    def spins(self) -> dict[str, int]:
        """Spin accounting (input bits, segment spins)."""
        return dict(self.qubo.spins)

    def input_point(self, bits: ArrayLike) -> FloatArray:
        """The input grid point of a spin vector."""
        b = np.asarray(bits, dtype=np.float64).reshape(-1)
        n_in = self.input_bits.size
        x = self.input_lower.copy()
        pos = 0
        for j in range(n_in):
            nb = int(self.input_bits[j])
            if nb:
                x[j] += self.input_step[j] * float(b[pos : pos + nb] @ np.ldexp(1.0, np.arange(nb)))
            pos += nb
        return x

    def segments(self, bits: ArrayLike) -> list[IntArray]:
        """Per hidden layer, the selected segment (index into the layer's partition) of each
        neuron (thermometer: the number of ones; one-hot: the first largest spin)."""
        b = np.asarray(bits).reshape(-1)
        out: list[IntArray] = []
        for lay in self.layers:
            sel = lay.first_seg.copy()
            for i in np.flatnonzero(lay.n_spins):
                s0, ns = int(lay.spin_start[i]), int(lay.n_spins[i])
                u = b[s0 : s0 + ns]
                if self.encoding == "thermometer":
                    sel[i] += int(np.sum(u > 0.5))
                else:
                    sel[i] += int(np.argmax(u))
            out.append(sel)
        return out

    def encode(self, x: ArrayLike, z: list[FloatArray]) -> NDArray[np.int8]:
        """The spin vector of an input ``x`` (nearest grid point) and pre-activations ``z``
        (per hidden layer; the segment holding ``z_i``): a warm start."""
        out = np.zeros(self.num_spins, dtype=np.int8)
        xv = np.asarray(x, dtype=np.float64).reshape(-1)
        pos = 0
        for j in range(self.input_bits.size):
            nb = int(self.input_bits[j])
            if nb:
                k = int(
                    np.clip(
                        np.rint((xv[j] - self.input_lower[j]) / self.input_step[j]), 0, 2**nb - 1
                    )
                )
                out[pos : pos + nb] = [(k >> i) & 1 for i in range(nb)]
            pos += nb
        for lay, part, zk in zip(self.layers, self.partition, z):
            if part is None:
                continue
            seg = part.locate(zk)
            for i in np.flatnonzero(lay.n_spins):
                s0 = int(lay.spin_start[i])
                r = int(seg[i] - lay.first_seg[i])
                if self.encoding == "thermometer":
                    out[s0 : s0 + r] = 1
                else:
                    out[s0 + r] = 1
        return out

    def groups(self) -> list[list[IntArray]]:
        """Spin groups per block (inputs, then each hidden layer): one group per input and per
        neuron with spins."""
        blocks: list[list[IntArray]] = []
        pos = 0
        ins: list[IntArray] = []
        for j in range(self.input_bits.size):
            nb = int(self.input_bits[j])
            if nb:
                ins.append(np.arange(pos, pos + nb, dtype=np.int64))
            pos += nb
        blocks.append(ins)
        for lay in self.layers:
            blocks.append(
                [
                    np.arange(lay.spin_start[i], lay.spin_start[i] + lay.n_spins[i], dtype=np.int64)
                    for i in np.flatnonzero(lay.n_spins)
                ]
            )
        return blocks

    def windows(self, budget: int) -> list[IntArray] | None:
        """Layerwise windows of at most ``budget`` spins (consecutive groups of one block,
        never splitting an input or a neuron), or ``None`` when one group alone exceeds it."""
        out: list[IntArray] = []
        for block in self.groups():
            cur: list[IntArray] = []
            size = 0
            for g in block:
                if g.size > budget:
                    return None
                if size + g.size > budget and cur:
                    out.append(np.concatenate(cur))
                    cur, size = [], 0
                cur.append(g)
                size += g.size
            if cur:
                out.append(np.concatenate(cur))
        return out


def restrict_qubo(q: QuboProblem, free: ArrayLike, state: ArrayLike) -> QuboProblem:
    """The QUBO over the spins ``free`` with every other spin fixed at ``state``.

    ``E'(y_free) = E(y)`` with ``y = state`` outside ``free``: ``h'_f = h_f + sum_{j fixed}
    J_{fj} y_j``, couplers among free spins kept, offset ``E(state with the free spins 0)``.
    Its variables are ``0..len(free)-1`` in the order of ``free``.
    """
    idx = np.asarray(free, dtype=np.int64).reshape(-1)
    y = np.asarray(state, dtype=np.float64).reshape(-1).copy()
    n = q.num_variables
    pos = np.full(n, -1, dtype=np.int64)
    pos[idx] = np.arange(idx.size)
    y[idx] = 0.0
    off = q.energy(y)
    h = q.linear[idx].copy()
    r, c, J = q.quad_row, q.quad_col, q.quad_bias
    fr, fc = pos[r] >= 0, pos[c] >= 0
    m = fr & ~fc
    np.add.at(h, pos[r[m]], J[m] * y[c[m]])
    m = fc & ~fr
    np.add.at(h, pos[c[m]], J[m] * y[r[m]])
    both = fr & fc
    a, b = pos[r[both]], pos[c[both]]
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    return QuboProblem(h, lo, hi, J[both], off, {"window": int(idx.size)}, meta={"free": idx})


def _layout(partition: Model2Partition, start: int, encoding: SegmentEncoding) -> list[_Neurons]:
    layers = []
    pos = start
    for part in partition:
        if part is None:
            raise InvalidOptionsError("segment_qubo: every hidden layer needs a partition")
        counts = part.counts
        ns = np.where(counts >= 2, counts - 1 if encoding == "thermometer" else counts, 0)
        starts = pos + np.concatenate([[0], np.cumsum(ns)[:-1]]).astype(np.int64)
        pos += int(ns.sum())
        layers.append(_Neurons(part.first, counts, starts, ns.astype(np.int64)))
    return layers


def segment_qubo(
    network: Network,
    case: UnsafeCase,
    partition: Model2Partition,
    *,
    row: int = 0,
    options: SegmentQuboOptions | None = None,
) -> SegmentQubo:
    """Build the segment QUBO of ``case`` row ``row`` (module docstring).

    Args:
        network: the (normalized, usually reduced) network.
        case: the unsafe case over that network's inputs.
        partition: a partition for *every* hidden layer (e.g. ``Model2Problem.partition`` of a
            Model 2 encoded with every activation type banded).
        row: which row ``A_r f - b_r`` of the case is the objective.
        options: encoding, input bits, penalties.
    """
    opts = options or SegmentQuboOptions()
    net = network.normalized()
    dense, acts = densified(net, "Model 2").affine_and_activations()
    if len(partition) != len(acts):
        raise InvalidOptionsError("segment_qubo: one partition per hidden layer is needed")
    if not 0 <= row < case.n_rows:
        raise InvalidOptionsError(f"segment_qubo: row={row} outside the case's {case.n_rows}")
    box = case.input_box
    n_in = net.n_inputs
    wide = box.upper > box.lower
    in_bits = np.where(wide, opts.input_bits, 0).astype(np.int64)
    in_step = np.where(wide, (box.upper - box.lower) / (2.0**opts.input_bits - 1.0), 0.0)
    n_x = int(in_bits.sum())
    layers = _layout(partition, n_x, opts.encoding)
    N = n_x + sum(int(lay.n_spins.sum()) for lay in layers)
    # x = x0 + Ex y
    owner = np.repeat(np.arange(n_in), in_bits)
    first = np.concatenate([[0], np.cumsum(in_bits)[:-1]]).astype(np.int64)
    local = np.arange(n_x) - np.repeat(first, in_bits)
    Ex = sp.csr_array(
        (in_step[owner] * np.ldexp(1.0, local), (owner, np.arange(n_x))), shape=(n_in, N)
    )
    x0 = box.lower.astype(np.float64)
    # per layer: z_lin = L0 + L y (affine), z_hat = Z0 + Z y, a_hat = A0 + Ay y
    a_hat: list[tuple[FloatArray, sp.csr_array]] = []
    th_lin: list[tuple[IntArray, float]] = []
    th_quad: list[tuple[IntArray, IntArray]] = []
    onehot_rows: list[IntArray] = []
    # sensitivities g of the objective row to every hidden activation
    A_r = case.A[row]
    g = [np.zeros(d.n_out) for d in dense[:-1]]
    g[-1] = np.abs(A_r @ dense[-1].weight)
    for k in range(len(acts) - 1, 0, -1):
        lip = rule_for(acts[k]).lipschitz(acts[k])
        g[k - 1] = np.abs(dense[k].weight).T @ (lip * g[k])
    g_top = max(float(np.max(gk)) if gk.size else 0.0 for gk in g) if g else 0.0
    g_floor = 1e-3 * g_top if g_top > 0 else 1.0
    R_blocks: list[sp.csr_array] = []
    r0_parts: list[FloatArray] = []
    w_parts: list[FloatArray] = []
    P_layers: list[FloatArray] = []
    for k, (part, lay) in enumerate(zip(partition, layers)):
        assert part is not None
        act = acts[k]
        if k == 0:
            L0 = dense[0].weight @ x0 + dense[0].bias
            Lm = sp.csr_array(dense[0].weight @ Ex)
        else:
            A0p, Ayp = a_hat[k - 1]
            L0 = dense[k].weight @ A0p + dense[k].bias
            Lm = sp.csr_array(dense[k].weight @ Ayp)
        c = (part.lo + part.hi) / 2.0
        v = apply_activation(act, c)
        n = part.n_neurons
        Z0 = c[lay.first_seg].copy()
        # a neuron without spins follows its secant on [l, u]: a_hat = v(c) + m (z_lin - c)
        lo_r, hi_r = part.range_lower, part.range_upper
        span = hi_r - lo_r
        with np.errstate(divide="ignore", invalid="ignore"):
            m = np.where(
                span > 0,
                (apply_activation(act, hi_r) - apply_activation(act, lo_r)) / np.where(
                    span > 0, span, 1.0),
                0.0,
            )  # fmt: skip
        single = lay.n_spins == 0
        m = np.where(single, m, 0.0)
        A0 = np.where(single, v[lay.first_seg] + m * (L0 - Z0), v[lay.first_seg])
        zr: list[int] = []
        zc: list[int] = []
        zv: list[float] = []
        av: list[float] = []
        dv = np.zeros(n)
        for i in np.flatnonzero(lay.n_spins):
            f, K, s0 = int(lay.first_seg[i]), int(lay.counts[i]), int(lay.spin_start[i])
            cs, vs = c[f : f + K], v[f : f + K]
            dv[i] = float(np.max(np.abs(np.diff(vs))))
            if opts.encoding == "thermometer":
                zr += [int(i)] * (K - 1)
                zc += list(range(s0, s0 + K - 1))
                zv += list(np.diff(cs))
                av += list(np.diff(vs))
                th_lin.append((np.arange(s0 + 1, s0 + K - 1, dtype=np.int64), 0.0))
                th_quad.append(
                    (np.arange(s0, s0 + K - 2, dtype=np.int64),
                     np.arange(s0 + 1, s0 + K - 1, dtype=np.int64))
                )  # fmt: skip
            else:
                Z0[i], A0[i] = 0.0, 0.0
                zr += [int(i)] * K
                zc += list(range(s0, s0 + K))
                zv += list(cs)
                av += list(vs)
                onehot_rows.append(np.arange(s0, s0 + K, dtype=np.int64))
        Z = sp.csr_array((zv, (zr, zc)), shape=(n, N))
        Ay = sp.csr_array((av, (zr, zc)), shape=(n, N))
        Ay = sp.csr_array(Ay + sp.csr_array(sp.diags(m) @ Lm))
        a_hat.append((A0, Ay))
        step_k = np.maximum(span / np.maximum(lay.counts, 1), 1e-12)
        P = opts.penalty_scale * np.maximum(g[k], g_floor) * np.maximum(dv, 1e-12)
        P_layers.append(P)
        sel = np.flatnonzero(lay.n_spins)
        if sel.size == 0:
            continue
        R_blocks.append(sp.csr_array((Lm - Z)[sel] / step_k[sel, None]))
        r0_parts.append((L0 - Z0)[sel] / step_k[sel])
        w_parts.append(P[sel])
    # validity
    h_extra = np.zeros(N)
    q_rows: list[IntArray] = []
    q_cols: list[IntArray] = []
    q_vals: list[FloatArray] = []
    if opts.encoding == "thermometer":
        k_of: list[float] = []
        for k, lay in enumerate(layers):
            for i in np.flatnonzero(lay.n_spins):
                k_of.append(opts.validity_scale * float(P_layers[k][i]))
        for (ids, _), (qa, qb), pv in zip(th_lin, th_quad, k_of):
            h_extra[ids] += pv  # P u_{s+1}
            q_rows.append(qa)
            q_cols.append(qb)
            q_vals.append(np.full(qa.size, -pv))  # - P u_s u_{s+1}
    else:
        pvs: list[float] = []
        for k, lay in enumerate(layers):
            for i in np.flatnonzero(lay.n_spins):
                pvs.append(opts.validity_scale * float(P_layers[k][i]) * float(lay.counts[i]))
        if onehot_rows:
            rr = np.concatenate([np.full(ids.size, j) for j, ids in enumerate(onehot_rows)])
            R_blocks.append(
                sp.csr_array(
                    (np.ones(rr.size), (rr, np.concatenate(onehot_rows))),
                    shape=(len(onehot_rows), N),
                )
            )
            r0_parts.append(-np.ones(len(onehot_rows)))
            w_parts.append(np.asarray(pvs))
    # objective: A_r (W_L a_hat + b_L) - b_r
    A0L, AyL = a_hat[-1]
    wL = A_r @ dense[-1].weight
    obj_lin = np.asarray(AyL.T @ wL, dtype=np.float64).reshape(-1) + h_extra
    obj_off = float(wL @ A0L + A_r @ dense[-1].bias - case.b[row])
    if R_blocks:
        R = sp.vstack(R_blocks).tocsr()
        r0 = np.concatenate(r0_parts)
        wts = np.concatenate(w_parts)
    else:
        R, r0, wts = sp.csr_array((0, N)), np.zeros(0), np.zeros(0)
    h, qr, qc, qv, off = quadratic_penalty(R, r0, wts, obj_lin, obj_off)
    if q_rows:
        qr = np.concatenate([qr, *q_rows])
        qc = np.concatenate([qc, *q_cols])
        qv = np.concatenate([qv, *q_vals])
        M = sp.coo_array((qv, (qr, qc)), shape=(N, N)).tocsr()
        M.sum_duplicates()
        Mc = M.tocoo()
        keep = Mc.data != 0.0
        qr, qc, qv = Mc.row[keep].astype(np.int64), Mc.col[keep].astype(np.int64), Mc.data[keep]
    n_act = N - n_x
    q = QuboProblem(
        h,
        qr,
        qc,
        qv,
        off,
        {"input": n_x, "activation": n_act, "objective": 0, "slack": 0},
        meta={"encoding": opts.encoding, "row": row},
    )
    meta = {
        "penalty_max": float(max((float(P.max()) for P in P_layers if P.size), default=0.0)),
        "row": row,
        "spins_per_layer": [int(lay.n_spins.sum()) for lay in layers],
    }
    return SegmentQubo(q, partition, opts.encoding, x0.copy(), in_step, in_bits, tuple(layers),
                       meta)  # fmt: skip


def pattern_delta(m2: Model2Problem, segments: list[IntArray]) -> FloatArray:
    """The Model 2 MILP's segment binaries (in ``problem.integrality`` column order) that select
    ``segments`` (per hidden layer, one segment index per neuron, as from
    :meth:`SegmentQubo.segments`); for :meth:`nncert.formulations.benders.BendersSplit.subproblem`.

    Requires ``m2`` to be encoded with the same partition and every hidden layer banded.
    """
    n = m2.problem.n_cols
    full = np.zeros(n)
    for k, cols in enumerate(m2.segment_columns):
        if cols is None:
            raise InvalidOptionsError("pattern_delta: every hidden layer must be banded")
        multi = np.flatnonzero(cols.multi)
        if multi.size == 0:
            continue
        chosen = np.zeros(cols.multi.size, dtype=bool)
        chosen[np.asarray(segments[k], dtype=np.int64)] = True
        dcols = np.arange(cols.delta.start, cols.delta.stop)
        full[dcols] = chosen[multi].astype(np.float64)
    return full[np.flatnonzero(m2.problem.integrality)]


def forward_pre_activations(network: Network, x: ArrayLike) -> list[FloatArray]:
    """Pre-activations of every hidden layer at ``x`` (for :meth:`SegmentQubo.encode`)."""
    dense, acts = densified(network, "Model 2").normalized().affine_and_activations()
    a = np.asarray(x, dtype=np.float64).reshape(-1)
    out = []
    for k, act in enumerate(acts):
        z = dense[k].weight @ a + dense[k].bias
        out.append(z)
        a = apply_activation(act, z)
    return out


def segment_spins(partition: Model2Partition, n_inputs: int, input_bits: int,
                  encoding: SegmentEncoding = "thermometer") -> int:  # fmt: skip
    """The spin count of :func:`segment_qubo` without building it (7.7)."""
    total = n_inputs * input_bits
    for part in partition:
        if part is None:
            continue
        K = part.counts
        total += int(np.sum(np.where(K >= 2, K - 1 if encoding == "thermometer" else K, 0)))
    return total


__all__ = [
    "SegmentEncoding",
    "SegmentQubo",
    "SegmentQuboOptions",
    "forward_pre_activations",
    "pattern_delta",
    "restrict_qubo",
    "segment_qubo",
    "segment_spins",
]
