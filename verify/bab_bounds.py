"""Batched linear bounds (IBP, forward linear bounds, CROWN) for many input boxes at once.

This is the bounding engine of branch and bound (:mod:`nncert.verify.bab`): it bounds
``g(x) = C f(x) - d`` from below for ``N`` boxes ``[lower_n, upper_n]`` in one call, with every
array carrying a leading batch axis, so the work is a handful of large matrix products instead
of ``N`` small ones.

Notation (FORMULATIONS.md section 2, normal form of :meth:`Network.affine_and_activations`):
``z_0 = W_0 x + b_0``, ``a_j = sigma_j(z_j)``, ``z_{j+1} = W_{j+1} a_j + b_{j+1}``,
``f(x) = z_{L-1}`` (indices from 0 here).

Per neuron, an activation on ``[l, u]`` is enclosed by two lines
``sl z + bl <= sigma(z) <= su z + bu`` with ``sl, su >= 0`` (:func:`relax`):

* ReLU / LeakyReLU(alpha): identity/slope on stable neurons; on unstable ones the chord above
  and a line through the origin below, slope 1 when ``u > -l`` else 0 (alpha) (CROWN's
  adaptive choice).
* HardTanh: exact on the linear and constant pieces; chords and one-kink lines otherwise.
* Sigmoid / Tanh: chord and mid-point tangent on the convex (``u <= 0``) or concave
  (``l >= 0``) side; constant bounds ``sigma(l), sigma(u)`` when ``l < 0 < u``.

Intermediate bounds ``[l_j, u_j]`` are IBP intersected with either *forward* linear bounds
(symbolic intervals ``L x + l <= z_j <= U x + u`` pushed forward through the relaxations;
cheap when the input is low-dimensional) or *CROWN* back-substitution (tighter, costlier).
The objective is always bounded by CROWN back-substitution (merged rows ``C W_{L-1}``) and
intersected with IBP; optionally with further lower-slope choices (``extra_slopes``) and
gradient-optimised lower slopes (``alpha_iters``, alpha-CROWN restricted to the objective's
back-substitution). Known bounds of the hidden layers (``prior``, e.g. those of a box that
contains this one, as in branch and bound) are intersected in layer by layer.
:func:`combine_rows` turns per-row linear bounds into a bound for a conjunction.

Floating point: everything is float64 with round-to-nearest, like the rest of the bounds
module; callers that close branch-and-bound nodes use a small positive tolerance.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from nncert.verify.errors import InvalidOptionsError, UnsupportedLayerError
from nncert.verify.network import (
    Activation,
    FloatArray,
    HardTanh,
    LeakyReLU,
    Network,
    ReLU,
    Sigmoid,
    Tanh,
    apply_activation,
)

IntermediateMode = Literal["ibp", "forward", "crown"]

Relaxation = tuple[FloatArray, FloatArray, FloatArray, FloatArray]


def _sigmoid(z: FloatArray) -> FloatArray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def _tanh(z: FloatArray) -> FloatArray:
    return np.tanh(z)


def _smooth_relax(
    fn: str, l: FloatArray, u: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Linear enclosure of sigmoid/tanh on ``[l, u]`` (both S-shaped, inflection at 0)."""
    f: Callable[[FloatArray], FloatArray] = _sigmoid if fn == "sigmoid" else _tanh
    fl, fu = f(l), f(u)
    width = u - l
    safe = np.where(width > 0.0, width, 1.0)
    chord_s = np.where(width > 0.0, (fu - fl) / safe, 0.0)
    chord_b = fl - chord_s * l
    m = 0.5 * (l + u)
    fm = f(m)
    dm = fm * (1.0 - fm) if fn == "sigmoid" else 1.0 - fm * fm
    tan_b = fm - dm * m
    convex = u <= 0.0  # sigma is convex on (-inf, 0]: chord above, tangent below
    concave = l >= 0.0  # concave on [0, inf): chord below, tangent above
    zero = np.zeros_like(l)
    sl = np.where(convex, dm, np.where(concave, chord_s, zero))
    bl = np.where(convex, tan_b, np.where(concave, chord_b, fl))
    su = np.where(convex, chord_s, np.where(concave, dm, zero))
    bu = np.where(convex, chord_b, np.where(concave, tan_b, fu))
    return sl, bl, su, bu


def relax(act: Activation, l: FloatArray, u: FloatArray) -> Relaxation:
    """Per-neuron linear bounds ``sl z + bl <= act(z) <= su z + bu`` valid on ``[l, u]``.

    Args:
        act: the activation layer.
        l: pre-activation lower bounds (any shape).
        u: pre-activation upper bounds (same shape, ``u >= l``).

    Returns:
        ``(sl, bl, su, bu)``, each shaped like ``l``; slopes are ``>= 0``.
    """
    if isinstance(act, ReLU | LeakyReLU):
        alpha = act.alpha if isinstance(act, LeakyReLU) else 0.0
        active = l >= 0.0
        inactive = u <= 0.0
        unstable = ~(active | inactive)
        denom = np.where(unstable, u - l, 1.0)
        chord = (u - alpha * l) / denom
        su = np.where(active, 1.0, np.where(unstable, chord, alpha))
        bu = np.where(unstable, (alpha - chord) * l, 0.0)
        sl = np.where(active | (unstable & (u > -l)), 1.0, alpha)
        bl = np.zeros_like(l)
        return sl, bl, su, bu
    if isinstance(act, HardTanh):
        lo, hi = act.min_val, act.max_val
        width = np.where(u > l, u - l, 1.0)
        const_lo = u <= lo
        const_hi = l >= hi
        linear = (l >= lo) & (u <= hi)
        left = (l < lo) & (u > lo) & (u <= hi)  # max(z, lo): convex
        right = (l >= lo) & (l < hi) & (u > hi)  # min(z, hi): concave
        both = (l < lo) & (u > hi)
        one = np.ones_like(l)
        zero = np.zeros_like(l)
        # left kink
        left_su = (u - lo) / width
        left_bu = lo - left_su * l
        left_sl = np.where(u - lo > lo - l, one, zero)
        left_bl = lo * (1.0 - left_sl)
        # right kink
        right_sl = (hi - l) / width
        right_bl = l - right_sl * l
        right_su = np.where(hi - l > u - hi, one, zero)
        right_bu = hi * (1.0 - right_su)
        # both kinks
        both_su = (hi - lo) / np.where(both, hi - l, 1.0)
        both_bu = lo - both_su * l
        both_sl = (hi - lo) / np.where(both, u - lo, 1.0)
        both_bl = lo - both_sl * lo
        conds = [const_lo, const_hi, linear, left, right, both]
        sl = np.select(conds, [zero, zero, one, left_sl, right_sl, both_sl])
        bl = np.select(conds, [zero + lo, zero + hi, zero, left_bl, right_bl, both_bl])
        su = np.select(conds, [zero, zero, one, left_su, right_su, both_su])
        bu = np.select(conds, [zero + lo, zero + hi, zero, left_bu, right_bu, both_bu])
        return sl, bl, su, bu
    if isinstance(act, Sigmoid):
        return _smooth_relax("sigmoid", l, u)
    if isinstance(act, Tanh):
        return _smooth_relax("tanh", l, u)
    raise UnsupportedLayerError(f"bab bounds: unsupported activation {type(act).__name__}")


@dataclass(frozen=True, eq=False)
class BatchBounds:
    """Result of :meth:`BatchBounder.bound` for ``N`` boxes and ``R`` objective rows.

    Attributes:
        lower: ``(N, R)`` sound lower bounds of ``g_r(x) = C_r f(x) - d_r`` over each box.
        coef: ``(N, R, n_inputs)`` slopes of CROWN's linear lower bound of ``g_r`` in ``x``
            (``g_r(x) >= coef . x + offset`` on the box); used for branching and for
            picking candidate points.
        offset: ``(N, R)`` offsets of that linear lower bound.
        pre: per hidden layer, ``(l, u)`` bounds of shape ``(N, n_j)``.
    """

    lower: FloatArray
    coef: FloatArray
    offset: FloatArray
    pre: tuple[tuple[FloatArray, FloatArray], ...]

    def stacked_pre(self) -> tuple[FloatArray, FloatArray]:
        """Hidden-layer bounds concatenated over layers: ``(l, u)``, each ``(N, H)``."""
        if not self.pre:
            n = self.lower.shape[0]
            return np.zeros((n, 0)), np.zeros((n, 0))
        return (
            np.concatenate([p[0] for p in self.pre], axis=1),
            np.concatenate([p[1] for p in self.pre], axis=1),
        )

    def minimizers(self, lower: FloatArray, upper: FloatArray) -> FloatArray:
        """``(N, R, n_inputs)``: the box vertex minimising each row's linear lower bound."""
        return np.where(self.coef >= 0.0, lower[:, None, :], upper[:, None, :])


class BatchBounder:
    """Batched bounds for a fixed network (its normal form is cached as plain arrays).

    Args:
        network: any network made of Dense and supported activation layers.

    Example:
        >>> import numpy as np
        >>> from nncert.verify import Dense, Network, ReLU
        >>> net = Network((Dense([[1.0, -1.0]], [0.0]), ReLU(), Dense([[1.0]], [0.0])),
        ...               input_shape=(2,))
        >>> bb = BatchBounder(net)
        >>> res = bb.bound(np.zeros((1, 2)), np.ones((1, 2)), np.eye(1), np.zeros(1))
        >>> float(res.lower[0, 0]) <= 0.0
        True
    """

    def __init__(self, network: Network) -> None:
        dense, acts = network.affine_and_activations()
        for act in acts:
            if not isinstance(act, ReLU | LeakyReLU | HardTanh | Sigmoid | Tanh):
                raise UnsupportedLayerError(
                    f"bab bounds: unsupported activation {type(act).__name__}"
                )
        self.network = network
        #: the normal form the arrays come from
        self.normal = network.normalized()
        self.weights: tuple[FloatArray, ...] = tuple(d.weight for d in dense)
        self.biases: tuple[FloatArray, ...] = tuple(d.bias for d in dense)
        self.abs_weights: tuple[FloatArray, ...] = tuple(np.abs(w) for w in self.weights)
        self.activations: tuple[Activation, ...] = tuple(acts)
        self.n_inputs = int(self.weights[0].shape[1])
        self.n_outputs = int(self.weights[-1].shape[0])
        #: total number of hidden neurons (length of stacked hidden-layer bounds)
        self.n_hidden = int(sum(w.shape[0] for w in self.weights[:-1]))
        #: start of each hidden layer in the stacked hidden-layer bounds (length L)
        self.offsets = np.cumsum([0] + [w.shape[0] for w in self.weights[:-1]])
        #: target size (elements) of the per-chunk coefficient arrays in CROWN passes
        self.chunk_elements = 1 << 15

    # ------------------------------------------------------------------------------------
    def forward(self, x: FloatArray) -> FloatArray:
        """Batched float64 forward pass of the normal form, ``(N, n_in) -> (N, n_out)``."""
        a = x
        for j, (w, b) in enumerate(zip(self.weights, self.biases)):
            a = a @ w.T + b
            if j < len(self.activations):
                a = apply_activation(self.activations[j], a)
        return a

    def _check(self, lower: ArrayLike, upper: ArrayLike) -> tuple[FloatArray, FloatArray]:
        lo = np.asarray(lower, dtype=np.float64)
        hi = np.asarray(upper, dtype=np.float64)
        if lo.ndim != 2 or lo.shape != hi.shape or lo.shape[1] != self.n_inputs:
            raise InvalidOptionsError(
                f"bab bounds: boxes must have shape (N, {self.n_inputs}), got {lo.shape} and "
                f"{hi.shape}"
            )
        return lo, hi

    # ------------------------------------------------------------------------------------
    def _backward(
        self,
        lam_a: FloatArray,
        const: FloatArray,
        j: int,
        relaxations: list[Relaxation],
    ) -> tuple[FloatArray, FloatArray]:
        """Back-substitute a lower bound of ``lam_a . a_j + const`` down to the input.

        Args:
            lam_a: coefficients on the post-activation ``a_j``: ``(m, n_j)`` (shared by every
                box) or ``(N, m, n_j)``.
            const: ``(m,)`` or ``(N, m)``.
            j: hidden layer index (``0 .. L-2``).
            relaxations: relaxations of ``z_0 .. z_j`` (``(N, n_i)`` arrays).

        Returns:
            ``(coef, offset)`` with ``lam_a . a_j + const >= coef . x + offset`` on the box,
            shapes ``(N, m, n_in)`` and ``(N, m)``.
        """
        for i in range(j, -1, -1):
            sl, bl, su, bu = relaxations[i]
            pos = np.maximum(lam_a, 0.0)
            neg = lam_a - pos
            # lam_a >= 0 -> lower line, < 0 -> upper line; lam is now on z_i
            lam = pos * sl[:, None, :] + neg * su[:, None, :]
            const = (
                const
                + _rowdot(pos, bl)
                + _rowdot(neg, bu)
                + _mm(lam, self.biases[i][:, None])[..., 0]
            )
            lam_a = _mm(lam, self.weights[i])  # on a_{i-1} (on x when i == 0)
        return lam_a, const

    def _crown_layer(
        self,
        j: int,
        l: FloatArray,
        u: FloatArray,
        rel: list[Relaxation],
        center: FloatArray,
        radius: FloatArray,
    ) -> tuple[FloatArray, FloatArray]:
        """Tighten ``[l, u]`` of ``z_j`` by CROWN back-substitution.

        For ReLU/LeakyReLU layers only the neurons still unstable under ``[l, u]`` are
        bounded (their relaxation is the only one that depends on the bounds); the rows are
        gathered per box and padded to the batch's largest count (padding rows bound some
        other neuron of the same box, which is harmless). Other activations get every row.
        """
        w, b = self.weights[j], self.biases[j]
        n, nj = l.shape
        if isinstance(self.activations[j], ReLU | LeakyReLU):
            unstable = (l < 0.0) & (u > 0.0)
            counts = unstable.sum(axis=1)
        else:
            unstable = np.ones_like(l, dtype=bool)
            counts = np.full(n, nj)
        kmax = int(counts.max(initial=0))
        if kmax == 0:
            return l, u
        # boxes sorted by their number of rows, processed in cache-sized chunks; each chunk
        # pads to its own largest count
        order = np.argsort(counts, kind="stable")
        start = int(np.searchsorted(counts[order], 1))
        width = max(int(np.max([rl[0].shape[1] for rl in rel[:j]])), 1)
        step = max(4, self.chunk_elements // (2 * kmax * width))
        l = l.copy()
        u = u.copy()
        for s in range(start, n, step):
            ids = order[s : s + step]
            k = int(counts[ids].max())
            idx = np.argsort(~unstable[ids], axis=1, kind="stable")[:, :k]  # unstable first
            wk = w[idx]  # (c, k, n_{j-1})
            bk = b[idx]  # (c, k)
            sub_rel: list[Relaxation] = [
                (rl[0][ids], rl[1][ids], rl[2][ids], rl[3][ids]) for rl in rel[:j]
            ]
            coef, off = self._backward(
                np.concatenate([wk, -wk], axis=1),
                np.concatenate([bk, -bk], axis=1),
                j - 1,
                sub_rel,
            )
            bnd = self._concretize_lower(coef, off, center[ids], radius[ids])
            rows = ids[:, None]
            l[rows, idx] = np.maximum(l[rows, idx], bnd[:, :k])
            u[rows, idx] = np.minimum(u[rows, idx], -bnd[:, k:])
        return l, u

    def alpha_bound(
        self,
        lower: FloatArray,
        upper: FloatArray,
        C: ArrayLike,
        d: ArrayLike | None,
        pre_lower: FloatArray,
        pre_upper: FloatArray,
        iters: int = 5,
    ) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Objective bounds with optimised lower slopes, given hidden-layer bounds.

        Args:
            lower: ``(N, n_in)`` box lower corners.
            upper: ``(N, n_in)`` box upper corners.
            C: ``(R, n_out)`` objective rows.
            d: ``(R,)`` offsets (default zeros).
            pre_lower: ``(N, H)`` sound lower bounds of the hidden pre-activations on the
                boxes (stacked, e.g. :meth:`BatchBounds.stacked_pre`).
            pre_upper: ``(N, H)`` the matching upper bounds.
            iters: gradient steps.

        Returns:
            ``(lower (N, R), coef (N, R, n_in), offset (N, R))``.
        """
        lo, hi = self._check(lower, upper)
        Cm = np.atleast_2d(np.asarray(C, dtype=np.float64))
        dv = np.zeros(Cm.shape[0]) if d is None else np.asarray(d, dtype=np.float64).reshape(-1)
        center = 0.5 * (lo + hi)
        radius = 0.5 * (hi - lo)
        pre = [
            (pre_lower[:, a:b], pre_upper[:, a:b])
            for a, b in zip(self.offsets[:-1], self.offsets[1:])
        ]
        rel = [relax(act, l, u) for act, (l, u) in zip(self.activations, pre)]
        m = Cm @ self.weights[-1]
        const = Cm @ self.biases[-1] - dv
        return self._optimize_slopes(m, const, pre, rel, center, radius, iters)

    def _optimize_slopes(
        self,
        m: FloatArray,
        const0: FloatArray,
        pre: list[tuple[FloatArray, FloatArray]],
        rel: list[Relaxation],
        center: FloatArray,
        radius: FloatArray,
        iters: int,
    ) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Optimise the lower slopes of unstable ReLU-like neurons for the objective rows.

        Every slope in ``[alpha, 1]`` (ReLU: ``[0, 1]``) gives a sound linear lower bound, so
        the bound is sound for any iterate; projected signed-gradient ascent (gradient by a
        reverse pass through the back-substitution) improves it. Returns the best
        ``(lower (N, R), coef (N, R, n_in), offset (N, R))`` seen.
        """
        n = center.shape[0]
        r = m.shape[0]
        depth = len(self.activations)
        lows: list[FloatArray] = []
        masks: list[FloatArray] = []
        alphas: list[FloatArray] = []
        for act, (l, u), (sl, _, _, _) in zip(self.activations, pre, rel):
            lo_a = act.alpha if isinstance(act, LeakyReLU) else 0.0
            free = (l < 0.0) & (u > 0.0) if isinstance(act, ReLU | LeakyReLU) else None
            mask = np.zeros_like(l) if free is None else free.astype(np.float64)
            masks.append(mask[:, None, :])
            lows.append(np.full(1, lo_a))
            alphas.append(np.broadcast_to(sl[:, None, :], (n, r, sl.shape[1])).copy())
        best_lb = np.full((n, r), -np.inf)
        best_coef = np.zeros((n, r, center.shape[1]))
        best_off = np.zeros((n, r))
        step = 0.5
        for _ in range(max(int(iters), 1)):
            # forward through the back-substitution, keeping what the reverse pass needs
            lam_a: FloatArray = np.broadcast_to(m, (n, r, m.shape[1]))
            const = np.broadcast_to(const0, (n, r)).copy()
            saved: list[tuple[FloatArray, NDArray[np.bool_], FloatArray]] = []
            for i in range(depth - 1, -1, -1):
                sl, bl, su, bu = rel[i]
                sl_eff = masks[i] * alphas[i] + (1.0 - masks[i]) * sl[:, None, :]
                pos = lam_a >= 0.0
                slope = np.where(pos, sl_eff, su[:, None, :])
                lam = lam_a * slope
                const = const + np.sum(lam_a * np.where(pos, bl[:, None, :], bu[:, None, :]), -1)
                const = const + lam @ self.biases[i]
                saved.append((lam_a, pos, slope))
                lam_a = _mm(lam, self.weights[i])
            lb = self._concretize_lower(lam_a, const, center, radius)
            better = lb > best_lb
            best_lb = np.where(better, lb, best_lb)
            best_coef = np.where(better[:, :, None], lam_a, best_coef)
            best_off = np.where(better, const, best_off)
            # reverse pass: d lb / d alpha
            g = center[:, None, :] - np.sign(lam_a) * radius[:, None, :]  # d lb / d lam_x
            g_lam = _mm(g, self.weights[0].T) + self.biases[0]  # d lb / d lam_z_0
            for step_i, i in enumerate(range(depth)):
                lam_a_i, pos, slope = saved[depth - 1 - step_i]
                grad_alpha = g_lam * lam_a_i * pos * masks[i]
                if i + 1 < depth:
                    _, bl, _, bu = rel[i]
                    g_a = g_lam * slope + np.where(pos, bl[:, None, :], bu[:, None, :])
                    g_lam = _mm(g_a, self.weights[i + 1].T) + self.biases[i + 1]
                alphas[i] = np.clip(alphas[i] + step * np.sign(grad_alpha), lows[i], 1.0)
            step *= 0.7
        return best_lb, best_coef, best_off

    @staticmethod
    def _concretize_lower(
        coef: FloatArray, offset: FloatArray, center: FloatArray, radius: FloatArray
    ) -> FloatArray:
        """``min over the box of coef . x + offset`` for each row, shape ``(N, m)``."""
        return offset + _rowdot(coef, center) - _rowdot(np.abs(coef), radius)

    def intermediate_bounds(
        self,
        lower: ArrayLike,
        upper: ArrayLike,
        mode: IntermediateMode = "forward",
        *,
        prior: tuple[FloatArray, FloatArray] | None = None,
        crown_layers: int | None = None,
    ) -> tuple[list[tuple[FloatArray, FloatArray]], list[Relaxation]]:
        """Bounds and relaxations of every hidden pre-activation ``z_0 .. z_{L-2}``.

        Args:
            lower: ``(N, n_in)`` box lower corners.
            upper: ``(N, n_in)`` box upper corners.
            mode: ``"ibp"``, ``"forward"`` (IBP intersected with forward linear bounds) or
                ``"crown"`` (IBP, forward linear bounds, then CROWN back-substitution for the
                neurons that are still unstable).
            prior: known sound bounds ``(l, u)`` of all hidden pre-activations on each box,
                concatenated over layers, shape ``(N, H)`` (e.g. the bounds of a box that
                contains this one); they are intersected in, layer by layer.
            crown_layers: with ``"crown"``, back-substitute only for hidden layers
                ``j < crown_layers`` (``None``: all).

        Returns:
            ``(pre, relaxations)``: per hidden layer ``(l, u)`` and ``(sl, bl, su, bu)``.
        """
        lo, hi = self._check(lower, upper)
        if mode not in ("ibp", "forward", "crown"):
            raise InvalidOptionsError(f"intermediate mode {mode!r} not in ibp/forward/crown")
        center = 0.5 * (lo + hi)
        radius = 0.5 * (hi - lo)
        n = lo.shape[0]
        pre: list[tuple[FloatArray, FloatArray]] = []
        rel: list[Relaxation] = []
        offsets = np.cumsum([0] + [w.shape[0] for w in self.weights[:-1]])
        # forward linear bounds, transposed layout: z_j >= x . lct + lo_off, lct (N, n_in, n_j)
        lct = uct = np.broadcast_to(self.weights[0].T, (n, *self.weights[0].T.shape))
        lo_off = up_off = np.broadcast_to(self.biases[0], (n, self.weights[0].shape[0]))
        for j in range(len(self.activations)):
            if j == 0:
                # exact interval of an affine map
                c = center @ self.weights[0].T + self.biases[0]
                r = radius @ self.abs_weights[0].T
                l, u = c - r, c + r
            else:
                act = self.activations[j - 1]
                pl, pu = pre[j - 1]
                al, au = apply_activation(act, pl), apply_activation(act, pu)
                c = 0.5 * (al + au) @ self.weights[j].T + self.biases[j]
                r = 0.5 * (au - al) @ self.abs_weights[j].T
                l, u = c - r, c + r
                if mode in ("forward", "crown"):
                    sl, bl, su, bu = rel[j - 1]
                    # a_{j-1} >= sl (x . lct + lo_off) + bl, <= su (x . uct + up_off) + bu
                    la_t, ua_t = lct * sl[:, None, :], uct * su[:, None, :]
                    la_o, ua_o = lo_off * sl + bl, up_off * su + bu
                    w = self.weights[j]
                    wp = np.maximum(w, 0.0).T
                    wn = np.minimum(w, 0.0).T
                    lct = _mm(la_t, wp) + _mm(ua_t, wn)
                    uct = _mm(ua_t, wp) + _mm(la_t, wn)
                    lo_off = la_o @ wp + ua_o @ wn + self.biases[j]
                    up_off = ua_o @ wp + la_o @ wn + self.biases[j]
                    cen = center[:, None, :]
                    rad = radius[:, None, :]
                    fl = lo_off + (cen @ lct)[:, 0, :] - (rad @ np.abs(lct))[:, 0, :]
                    fu = up_off + (cen @ uct)[:, 0, :] + (rad @ np.abs(uct))[:, 0, :]
                    l = np.maximum(l, fl)
                    u = np.minimum(u, fu)
            if prior is not None:
                l = np.maximum(l, prior[0][:, offsets[j] : offsets[j + 1]])
                u = np.minimum(u, prior[1][:, offsets[j] : offsets[j + 1]])
            if j > 0 and mode == "crown" and (crown_layers is None or j < crown_layers):
                l, u = self._crown_layer(j, l, u, rel, center, radius)
            u = np.maximum(u, l)  # guard against crossing by rounding
            pre.append((l, u))
            rel.append(relax(self.activations[j], l, u))
        return pre, rel

    # ------------------------------------------------------------------------------------
    def bound(
        self,
        lower: ArrayLike,
        upper: ArrayLike,
        C: ArrayLike,
        d: ArrayLike | None = None,
        *,
        intermediate: IntermediateMode = "forward",
        prior: tuple[FloatArray, FloatArray] | None = None,
        crown_layers: int | None = None,
        extra_slopes: tuple[str, ...] = (),
        alpha_iters: int = 0,
    ) -> BatchBounds:
        """Lower bounds of ``C f(x) - d`` over each of ``N`` boxes.

        Args:
            lower: ``(N, n_in)`` box lower corners.
            upper: ``(N, n_in)`` box upper corners.
            C: ``(R, n_out)`` objective rows (shared by the boxes).
            d: ``(R,)`` offsets (default zeros).
            intermediate: how hidden-layer bounds are computed (see
                :meth:`intermediate_bounds`).
            prior: known hidden-layer bounds to intersect (see :meth:`intermediate_bounds`).
            crown_layers: limit CROWN to the first hidden layers (see
                :meth:`intermediate_bounds`).
            extra_slopes: further lower-slope choices for the unstable ReLU/LeakyReLU
                neurons in the objective's back-substitution (``"zero"``, ``"one"``,
                ``"parallel"``: the upper line's slope); the best bound per row is kept.
            alpha_iters: gradient steps optimising those lower slopes per box, row and
                neuron for the objective (alpha-CROWN on the last back-substitution, with
                the hidden-layer bounds fixed); 0 disables.

        Returns:
            A :class:`BatchBounds`.
        """
        lo, hi = self._check(lower, upper)
        Cm = np.atleast_2d(np.asarray(C, dtype=np.float64))
        if Cm.shape[1] != self.n_outputs:
            raise InvalidOptionsError(
                f"bab bounds: C has {Cm.shape[1]} columns, the network {self.n_outputs} outputs"
            )
        dv = np.zeros(Cm.shape[0]) if d is None else np.asarray(d, dtype=np.float64).reshape(-1)
        n = lo.shape[0]
        center = 0.5 * (lo + hi)
        radius = 0.5 * (hi - lo)
        pre, rel = self.intermediate_bounds(
            lo, hi, intermediate, prior=prior, crown_layers=crown_layers
        )
        m = Cm @ self.weights[-1]
        const = Cm @ self.biases[-1] - dv
        if len(self.weights) == 1:
            coef = np.broadcast_to(m, (n, *m.shape)).copy()
            off = np.broadcast_to(const, (n, m.shape[0])).copy()
            lb = self._concretize_lower(coef, off, center, radius)
        else:
            coef, off = self._backward(m, const, len(self.weights) - 2, rel)
            lb = self._concretize_lower(coef, off, center, radius)
            for choice in extra_slopes:
                # the same back-substitution with other lower slopes on unstable neurons;
                # every choice in [0, 1] (ReLU) gives a sound bound, keep the best per row
                rel2 = _lower_slopes(self.activations, pre, rel, choice)
                c2, o2 = self._backward(m, const, len(self.weights) - 2, rel2)
                lb2 = self._concretize_lower(c2, o2, center, radius)
                better = lb2 > lb
                lb = np.maximum(lb, lb2)
                coef = np.where(better[:, :, None], c2, coef)
                off = np.where(better, o2, off)
            if alpha_iters > 0:
                lb2, c2, o2 = self._optimize_slopes(m, const, pre, rel, center, radius, alpha_iters)
                better = lb2 > lb
                lb = np.maximum(lb, lb2)
                coef = np.where(better[:, :, None], c2, coef)
                off = np.where(better, o2, off)
            # IBP on the merged last layer
            act = self.activations[-1]
            pl, pu = pre[-1]
            al, au = apply_activation(act, pl), apply_activation(act, pu)
            c = 0.5 * (al + au) @ m.T + const
            r = 0.5 * (au - al) @ np.abs(m).T
            lb = np.maximum(lb, c - r)
        return BatchBounds(lower=lb, coef=coef, offset=off, pre=tuple(pre))


def _lower_slopes(
    acts: tuple[Activation, ...],
    pre: list[tuple[FloatArray, FloatArray]],
    rel: list[Relaxation],
    choice: str,
) -> list[Relaxation]:
    """Relaxations with another lower slope on unstable ReLU/LeakyReLU neurons."""
    out: list[Relaxation] = []
    for act, (l, u), (sl, bl, su, bu) in zip(acts, pre, rel):
        if isinstance(act, ReLU | LeakyReLU):
            alpha = act.alpha if isinstance(act, LeakyReLU) else 0.0
            unstable = (l < 0.0) & (u > 0.0)
            if choice == "zero":
                new = np.where(unstable, alpha, sl)
            elif choice == "one":
                new = np.where(unstable, 1.0, sl)
            elif choice == "parallel":
                new = np.where(unstable, su, sl)
            else:
                raise InvalidOptionsError(f"unknown lower-slope choice {choice!r}")
            out.append((new, bl, su, bu))
        else:
            out.append((sl, bl, su, bu))
    return out


def combine_rows(
    coef: FloatArray,
    offset: FloatArray,
    lower: FloatArray,
    upper: FloatArray,
    *,
    iters: int = 30,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Best convex combination of per-row linear lower bounds, for conjunctions.

    A box is infeasible for the conjunction ``g_r(x) <= 0`` (all ``r``) when
    ``max_r g_r(x) > 0`` everywhere on it. With linear lower bounds
    ``g_r(x) >= L_r(x) = coef_r . x + offset_r`` and weights ``w`` in the simplex,
    ``max_r g_r(x) >= sum_r w_r g_r(x) >= sum_r w_r L_r(x)``, so
    ``phi(w) = min_box sum_r w_r L_r(x)`` is a sound lower bound of ``min_x max_r g_r(x)``.
    ``phi`` is concave; this runs projected subgradient ascent from the best single row
    (vectorized over boxes) and keeps the best weights seen, so the result is never worse
    than ``max_r min_box L_r``. Where rows cross inside a box (``g_1 = d + x``,
    ``g_2 = d - x``) no single row is positive but the combination is.

    Args:
        coef: ``(N, R, n_in)`` slopes.
        offset: ``(N, R)`` offsets.
        lower: ``(N, n_in)`` box lower corners.
        upper: ``(N, n_in)`` box upper corners.
        iters: subgradient steps.

    Returns:
        ``(bound (N,), combined coef (N, n_in), combined offset (N,))``.
    """
    n, r, _ = coef.shape
    center = 0.5 * (lower + upper)
    radius = 0.5 * (upper - lower)

    def phi(w: FloatArray) -> tuple[FloatArray, FloatArray]:
        c = np.einsum("nr,nri->ni", w, coef)
        val = np.einsum("nr,nr->n", w, offset) + np.einsum("ni,ni->n", c, center)
        val = val - np.einsum("ni,ni->n", np.abs(c), radius)
        x = np.where(c >= 0.0, lower, upper)  # minimiser of the combined bound
        grad = np.einsum("nri,ni->nr", coef, x) + offset  # L_r(x*): a supergradient
        return val, grad

    single = offset + np.einsum("nri,ni->nr", coef, center)
    single = single - np.einsum("nri,ni->nr", np.abs(coef), radius)
    w = np.zeros((n, r))
    w[np.arange(n), np.argmax(single, axis=1)] = 1.0
    best_w = w.copy()
    best_v, grad = phi(w)
    for t in range(max(int(iters), 0)):
        scale = np.abs(grad).max(axis=1, keepdims=True)
        step = 1.0 / ((t + 2.0) * np.where(scale > 0.0, scale, 1.0))
        w = _project_simplex(w + step * grad)
        v, grad = phi(w)
        better = v > best_v
        best_v = np.where(better, v, best_v)
        best_w[better] = w[better]
    # renormalise exactly (sum 1 keeps the bound a bound on max_r g_r)
    best_w = np.maximum(best_w, 0.0)
    best_w = best_w / best_w.sum(axis=1, keepdims=True)
    c = np.einsum("nr,nri->ni", best_w, coef)
    off = np.einsum("nr,nr->n", best_w, offset)
    val = off + np.einsum("ni,ni->n", c, center) - np.einsum("ni,ni->n", np.abs(c), radius)
    return val, c, off


def _project_simplex(v: FloatArray) -> FloatArray:
    """Euclidean projection of each row of ``v`` onto the probability simplex."""
    r = v.shape[1]
    u = -np.sort(-v, axis=1)
    css = np.cumsum(u, axis=1) - 1.0
    k = np.arange(1, r + 1)
    cond = u - css / k > 0
    rho = r - 1 - np.argmax(cond[:, ::-1], axis=1)
    theta = css[np.arange(v.shape[0]), rho] / (rho + 1.0)
    return np.maximum(v - theta[:, None], 0.0)


def _mm(a: FloatArray, w: FloatArray) -> FloatArray:
    """``a @ w`` for ``a`` of shape ``(..., k)`` and a 2-d ``w``, as one matrix product."""
    if a.ndim <= 2:
        return a @ w
    shape = a.shape
    return (np.ascontiguousarray(a).reshape(-1, shape[-1]) @ w).reshape(*shape[:-1], w.shape[1])


def _rowdot(a: FloatArray, v: FloatArray) -> FloatArray:
    """``sum_k a[..., m, k] v[n, k]`` -> ``(N, m)``; ``a`` is ``(m, k)`` or ``(N, m, k)``."""
    if a.ndim == 2:
        return v @ a.T
    return np.matmul(a, v[:, :, None])[..., 0]


__all__ = ["BatchBounder", "BatchBounds", "IntermediateMode", "combine_rows", "relax"]
