r"""The bound engine: sound IBP, forward linear bounds, CROWN and alpha-CROWN, batched over boxes.

Every bound in nncert comes from here: the pipeline's bounds stages, the MILP's big-M
constants, both branch-and-bound searches, the layerwise windows, the difference bounds of
transfer and the certificate checker all call :class:`BoundEngine` (or the single-box front
ends :func:`interval_bounds`, :func:`crown_bounds`, :func:`spec_bounds`). The activation
knowledge (relaxation lines, intervals, families of lower slopes) comes from
:mod:`nncert.verify.activations`.

Notation (normal form of :meth:`Network.affine_and_activations`, 0-based here)::

    z_0 = W_0 x + b_0,   a_j = sigma_j(z_j),   z_{j+1} = W_{j+1} a_j + b_{j+1},   f(x) = z_{L-1}

Interval bound propagation (IBP), per layer::

    [l', u'] = W+ [l, u] + W- [u, l] + b        activation: [sigma(l'), sigma(u')] (monotone)

CROWN back-substitution. With relaxation lines ``sL z + bL <= sigma(z) <= sU z + bU`` on
``[l, u]`` (slopes ``>= 0``), a lower bound of ``Lam a_j + c`` is pushed down one layer by
taking, per coefficient sign, the line that is valid for it::

    Lam a_j >= (Lam+ sL + Lam- sU) z_j + Lam+ bL + Lam- bU,     z_j = W_j a_{j-1} + b_j

and at the input ``min_x Lam x + c = c + Lam+ x_lo + Lam- x_hi``. Upper bounds are lower
bounds of the negated rows. A linear objective ``C f(x) - d`` starts from the merged rows
``C W_{L-1}``. Intermediate bounds (CROWN rows for the neurons whose relaxation is not exact,
or for all neurons) are intersected with IBP, with forward linear bounds (symbolic intervals
``L x + l <= z_j <= U x + u`` pushed forward through the relaxations; cheap for few inputs) and
with any known *prior* bounds (a parent box's, or fixed ReLU phases).

alpha-CROWN treats the lower slopes of the neurons an activation rule exposes as a family
(unstable ReLU/LeakyReLU neurons: any ``s z``, ``s in [leak, 1]``) as free parameters per box,
row and neuron; every choice gives a sound bound, and they are improved by projected gradient
steps with the gradient computed in reverse mode through the back-substitution.

Soundness in floating point
---------------------------
Everything is computed in float64 round-to-nearest and every rounding error is accounted for,
so each bound holds for the network's *exact real-arithmetic* function (the property a proof
must establish; a margin of exactly 0 must never come out positive):

* IBP steps use :func:`nncert.verify.rounding.affine_interval` (dot-product error bound plus
  ``nextafter``) and outward activation intervals;
* relaxation lines hold in real arithmetic (:mod:`nncert.verify.activations`);
* each back-substitution step adds a rigorous bound on its own rounding error to an error
  accumulator, using magnitudes of the quantities it multiplies (from the sound intermediate
  bounds): a product ``Lam W`` applied to ``a`` errs by at most ``gamma_n |Lam| (|W| |a|)``, an
  element-wise slope scaling by ``u |Lam'| |z|``, a bias sum by ``gamma_n |Lam| |b|``; the
  accumulator is subtracted from the final lower bound, rounded down;
* forward linear bounds carry the same kind of accumulator.

Because the bounds are sound, crossing bounds (``l > u``) prove that no input of the box
satisfies the constraints they were computed under (for example fixed ReLU phases): such boxes
are reported as ``empty``, never patched.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from nncert.verify.activations import (
    RULES,
    ActivationRule,
    LowerFamily,
    Relaxation,
    relax,
    rule_for,
)
from nncert.verify.errors import InvalidOptionsError, InvalidPropertyError
from nncert.verify.network import (
    Activation,
    Dense,
    FloatArray,
    Network,
    abs_weight,
    dense_weight,
    is_sparse,
    matmul_right,
    neg_part,
    pos_part,
    weight_rows,
)
from nncert.verify.rounding import UNIT, affine_interval, down, gamma, inflate, up
from nncert.verify.spec import Box, UnsafeCase

BoundMethod = Literal["ibp", "crown", "alpha-crown"]
IntermediateMethod = Literal["ibp", "crown"]
IntermediateMode = Literal["ibp", "forward", "crown"]
#: largest ``boxes x rows x neurons below`` of one layer's refinement in
#: :meth:`BoundEngine.refine_intermediate` (larger layers, e.g. of convolutional networks,
#: keep their CROWN bounds: the optimised slopes would need gigabytes)
REFINE_MAX_ELEMENTS = 1 << 23
AlphaOptimizer = Literal["adam", "sign"]

#: kept for callers that test ``type(layer) in RELAXATIONS`` (activation type -> rule)
RELAXATIONS: dict[type, ActivationRule] = RULES


# --------------------------------------------------------------------------------------------
# Result types
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Interval:
    """Element-wise interval ``lower <= v <= upper``."""

    lower: FloatArray
    upper: FloatArray

    @property
    def width(self) -> FloatArray:
        """``upper - lower``."""
        return self.upper - self.lower

    def contains(self, v: ArrayLike, *, atol: float = 0.0) -> bool:
        """Whether every row of ``v`` (shape ``(n,)`` or ``(batch, n)``) lies inside."""
        a = np.asarray(v, dtype=np.float64)
        return bool(np.all(a >= self.lower - atol) and np.all(a <= self.upper + atol))


@dataclass(frozen=True, eq=False)
class LayerBounds:
    """Bounds on every pre-activation of a normalized network over ``box``.

    Attributes:
        network: the normalized network the bounds refer to.
        box: the input box.
        pre_activation: ``L`` intervals, bounds on ``z_0 .. z_{L-1}`` (the last is the output).
        method: how they were computed.
        arithmetic: ``"float64-outward"`` (every rounding error accounted for: the bounds
            hold for the exact real-arithmetic network) or ``"float64-nearest"``.
        spec: bounds on ``spec_matrix @ f(x) + spec_offset`` when a spec matrix was given
            (else ``None``).
    """

    network: Network
    box: Box
    pre_activation: tuple[Interval, ...]
    method: str
    arithmetic: str = "float64-outward"
    spec: Interval | None = None

    @property
    def output(self) -> Interval:
        """Bounds on the network output ``f(x) = z_{L-1}``."""
        return self.pre_activation[-1]


@dataclass(frozen=True, eq=False)
class Intermediate:
    """Hidden-layer bounds of ``N`` boxes (what :meth:`BoundEngine.intermediate` returns).

    Attributes:
        pre: per hidden layer ``(l, u)``, each ``(N, n_j)``.
        rel: per hidden layer its relaxation lines (arrays ``(N, n_j)``).
        empty: ``(N,)``: the box (with its priors) contains no input (some ``l > u``).
        amag: per hidden layer, ``max |a_j|`` over the activation's interval (for the
            rounding-error terms).
        cmag: per hidden layer ``j``, the per-neuron factor that, multiplied by the absolute
            coefficients on ``a_j``, bounds the rounding of one back-substitution step
            through ``a_j``, ``z_j`` and Dense layer ``j``:
            ``s_max (u max|z_j| + gamma (|W_j| max|a_{j-1}| + |b_j|) + e_j) + gamma b_max``
            with ``s_max`` the largest slope any line of the neuron may have (both lines and
            the family of lower lines), ``b_max = max(|bL|, |bU|)`` (family lines pass through
            the origin) and ``e_j`` the layer's composition error.
        gmag: per hidden layer ``j``, the accumulated factor ``G_j = cmag_j + s_max,j *
            (|W_j| G_{j-1})`` (``G_0 = cmag_0``): since the coefficients one layer down obey
            ``|Lam_{j-1}| <= (|Lam_j| s_max,j) |W_j|``, the rounding of a whole
            back-substitution that starts with coefficients ``Lam_j`` on ``a_j`` is at most
            ``|Lam_j| . G_j`` (plus the constants' own additions). Cheaper and looser than
            accumulating per step; used for intermediate bounds.
        emag: per hidden layer ``j``, ``u max|z_j| + gamma (|W_j| max|a_{j-1}| + |b_j|) + e_j``:
            multiplied by absolute coefficients on ``z_j``, it bounds the rounding of a step
            through ``z_j`` and Dense layer ``j`` (for coefficients not bounded through
            ``s_max``, such as phase-constraint multipliers).
    """

    pre: tuple[tuple[FloatArray, FloatArray], ...]
    rel: tuple[Relaxation, ...]
    empty: NDArray[np.bool_]
    amag: tuple[FloatArray, ...] = ()
    cmag: tuple[FloatArray, ...] = ()
    gmag: tuple[FloatArray, ...] = ()
    emag: tuple[FloatArray, ...] = ()

    def take(self, ids: NDArray[np.intp]) -> Intermediate:
        """The boxes ``ids`` (every field, in that order)."""
        return Intermediate(
            tuple((p[0][ids], p[1][ids]) for p in self.pre),
            tuple(type(r)(*(a[ids] for a in r)) for r in self.rel),
            self.empty[ids],
            tuple(a[ids] for a in self.amag),
            tuple(a[ids] for a in self.cmag),
            tuple(a[ids] for a in self.gmag),
            tuple(a[ids] for a in self.emag),
        )

    @staticmethod
    def concat(parts: Sequence[Intermediate]) -> Intermediate:
        """The boxes of several results (same network), one after the other."""
        if len(parts) == 1:
            return parts[0]
        first = parts[0]
        n_layers = len(first.pre)

        def cat(name: str) -> tuple[FloatArray, ...]:
            return tuple(
                np.concatenate([getattr(p, name)[j] for p in parts]) for j in range(n_layers)
            )

        return Intermediate(
            tuple(
                (
                    np.concatenate([p.pre[j][0] for p in parts]),
                    np.concatenate([p.pre[j][1] for p in parts]),
                )
                for j in range(n_layers)
            ),
            tuple(
                type(first.rel[j])(
                    *(
                        np.concatenate([p.rel[j][f] for p in parts])
                        for f in range(len(first.rel[j]))
                    )
                )
                for j in range(len(first.rel))
            ),
            np.concatenate([p.empty for p in parts]),
            cat("amag"),
            cat("cmag"),
            cat("gmag"),
            cat("emag"),
        )

    def stacked(self) -> tuple[FloatArray, FloatArray]:
        """Hidden-layer bounds concatenated over layers: ``(l, u)``, each ``(N, H)``."""
        n = self.empty.shape[0]
        if not self.pre:
            return np.zeros((n, 0)), np.zeros((n, 0))
        return (
            np.concatenate([p[0] for p in self.pre], axis=1),
            np.concatenate([p[1] for p in self.pre], axis=1),
        )


@dataclass(frozen=True, eq=False)
class BatchBounds:
    """Result of :meth:`BoundEngine.bound` for ``N`` boxes and ``R`` objective rows.

    Attributes:
        lower: ``(N, R)`` sound lower bounds of ``g_r(x) = C_r f(x) - d_r`` over each box
            (``+inf`` for empty boxes).
        coef: ``(N, R, n_inputs)`` slopes of a linear lower bound of ``g_r`` in ``x``.
        offset: ``(N, R)`` offsets of it: ``g_r(x) >= coef . x + offset`` holds for every
            ``x`` in the box *exactly* (rounding of the back-substitution already subtracted).
        pre: per hidden layer, ``(l, u)`` bounds of shape ``(N, n_j)``.
        empty: ``(N,)``: boxes shown to contain no input.
    """

    lower: FloatArray
    coef: FloatArray
    offset: FloatArray
    pre: tuple[tuple[FloatArray, FloatArray], ...]
    empty: NDArray[np.bool_]

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


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------


def _mm(a: FloatArray, w: FloatArray) -> FloatArray:
    """``a @ w`` for ``a`` of shape ``(..., k)`` and a 2-d ``w`` (numpy or scipy sparse), as
    one matrix product."""
    return matmul_right(a, w)


def _rowdot(a: FloatArray, v: FloatArray) -> FloatArray:
    """``sum_k a[..., m, k] v[n, k]`` -> ``(N, m)``; ``a`` is ``(m, k)`` or ``(N, m, k)``."""
    if a.ndim == 2:
        return v @ a.T
    return np.matmul(a, v[:, :, None])[..., 0]


#: widest layer below which :func:`_active_columns` does not look for unused neurons
ACTIVE_COLUMNS_MIN_WIDTH = 1024


def _active_columns(lam: FloatArray) -> NDArray[np.intp] | None:
    """The neurons (last axis) with a non-zero coefficient in some row of ``lam``, when they
    are at most a quarter of a layer of at least :data:`ACTIVE_COLUMNS_MIN_WIDTH` neurons;
    ``None`` otherwise (the back-substitution then uses the whole layer)."""
    width = lam.shape[-1]
    if width < ACTIVE_COLUMNS_MIN_WIDTH:
        return None
    used = np.any(lam != 0.0, axis=tuple(range(lam.ndim - 1)))
    count = int(np.count_nonzero(used))
    if 4 * count > width:
        return None
    return np.flatnonzero(used)


def _mag(lo: FloatArray, hi: FloatArray) -> FloatArray:
    return np.maximum(np.abs(lo), np.abs(hi))


# --------------------------------------------------------------------------------------------
# The engine
# --------------------------------------------------------------------------------------------


class BoundEngine:
    """Sound, batched bounds for a fixed network (its normal form is cached as arrays).

    Args:
        network: any network made of Dense and supported activation layers.

    Example:
        >>> import numpy as np
        >>> from nncert.verify import Dense, Network, ReLU
        >>> net = Network((Dense([[1.0, -1.0]], [0.0]), ReLU(), Dense([[1.0]], [0.0])),
        ...               input_shape=(2,))
        >>> eng = BoundEngine(net)
        >>> res = eng.bound(np.zeros((1, 2)), np.ones((1, 2)), np.eye(1), np.zeros(1))
        >>> float(res.lower[0, 0]) <= 0.0
        True
    """

    def __init__(self, network: Network) -> None:
        normal = network.normalized()
        dense, acts = normal.affine_and_activations()
        self.network = network
        #: the normal form the arrays come from
        self.normal = normal
        self.weights: tuple[FloatArray, ...] = tuple(d.weight for d in dense)
        self.biases: tuple[FloatArray, ...] = tuple(d.bias for d in dense)
        # a sparse weight (Dense.sparse) keeps |W|, W+ and W- sparse: the same entries
        self.abs_weights: tuple[FloatArray, ...] = tuple(abs_weight(w) for w in self.weights)
        self.pos_weights: tuple[FloatArray, ...] = tuple(pos_part(w) for w in self.weights)
        self.neg_weights: tuple[FloatArray, ...] = tuple(neg_part(w) for w in self.weights)
        self.abs_biases: tuple[FloatArray, ...] = tuple(np.abs(b) for b in self.biases)
        #: composition error of each Dense layer: |true W - W| <= err_w, |true b - b| <= err_b
        self.weight_errors: tuple[FloatArray | None, ...] = tuple(d.weight_error for d in dense)
        self.bias_errors: tuple[FloatArray | None, ...] = tuple(d.bias_error for d in dense)
        self.activations: tuple[Activation, ...] = tuple(acts)
        self.rules: tuple[ActivationRule, ...] = tuple(rule_for(a) for a in acts)
        self.n_inputs = int(self.weights[0].shape[1])
        self.n_outputs = int(self.weights[-1].shape[0])
        self.n_hidden = int(sum(w.shape[0] for w in self.weights[:-1]))
        #: start of each hidden layer in the stacked hidden-layer bounds (length L)
        self.offsets = np.cumsum([0] + [w.shape[0] for w in self.weights[:-1]])
        #: one safe dot-product error factor for every product the engine forms
        self.width = int(max(max(w.shape) for w in self.weights))
        self.g = gamma(self.width + 2)
        #: target size (elements) of the per-chunk coefficient arrays in CROWN passes
        self.chunk_elements = 1 << 17
        #: largest size (elements) of one CROWN pass's coefficient array: the rows of a wide
        #: layer (a sparse MaxPool encoding over a convolution) are bounded in row chunks
        self.row_chunk_elements = 1 << 24
        #: the hidden-layer bounds :func:`spec_bounds` computed last, with its box as the key
        self.spec_intermediate: tuple[tuple[bytes, bytes], Intermediate] | None = None
        #: the last results of :meth:`refine_intermediate` computed from scratch, by box and
        #: iterations (the cases of one property share their box)
        self.refined: dict[tuple[bytes, bytes, int], Intermediate] = {}

    # -- plain evaluation ---------------------------------------------------------------------
    def forward(self, x: FloatArray) -> FloatArray:
        """Batched float64 forward pass of the normal form, ``(N, n_in) -> (N, n_out)``."""
        a = x
        for j, (w, b) in enumerate(zip(self.weights, self.biases)):
            a = np.asarray(a @ w.T) + b
            if j < len(self.rules):
                a = self.rules[j].apply(self.activations[j], a)
        return a

    def check_boxes(self, lower: ArrayLike, upper: ArrayLike) -> tuple[FloatArray, FloatArray]:
        """``(N, n_in)`` float64 arrays of box corners (a 1-d box becomes ``N = 1``)."""
        lo = np.asarray(lower, dtype=np.float64)
        hi = np.asarray(upper, dtype=np.float64)
        if lo.ndim == 1:
            lo, hi = lo[None, :], hi[None, :]
        if lo.ndim != 2 or lo.shape != hi.shape or lo.shape[1] != self.n_inputs:
            raise InvalidPropertyError(
                f"boxes must have shape (N, {self.n_inputs}), got {lo.shape} and {hi.shape}"
            )
        if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
            raise InvalidPropertyError("box bounds must be finite")
        return lo, hi

    # -- error terms of one Dense layer ---------------------------------------------------------
    def _dense_mag(self, k: int, amag: FloatArray) -> FloatArray:
        """``gamma |W_k| amag + |b_k|`` plus the composition error: the per-output bound that,
        multiplied by ``|Lam|``, bounds the rounding of ``Lam W_k`` and ``Lam b_k``."""
        mag = self.g * (_mm(amag, self.abs_weights[k].T) + self.abs_biases[k])
        we, be = self.weight_errors[k], self.bias_errors[k]
        if we is not None:
            mag = mag + np.max(amag, axis=-1, keepdims=True) * we
        if be is not None:
            mag = mag + be
        return mag

    def _dense_interval(
        self, k: int, lo: FloatArray, hi: FloatArray
    ) -> tuple[FloatArray, FloatArray]:
        """Sound IBP step through Dense layer ``k`` (with its composition error)."""
        extra = None
        we, be = self.weight_errors[k], self.bias_errors[k]
        if we is not None or be is not None:
            extra = np.zeros((lo.shape[0], self.weights[k].shape[0]))
            if we is not None:
                extra = extra + np.max(_mag(lo, hi), axis=-1, keepdims=True) * we
            if be is not None:
                extra = extra + be
            extra = inflate(extra, 4)
        return affine_interval(
            self.weights[k], self.biases[k], lo, hi, abs_w=self.abs_weights[k], extra=extra
        )

    # -- IBP ------------------------------------------------------------------------------------
    def ibp(self, lower: ArrayLike, upper: ArrayLike) -> list[tuple[FloatArray, FloatArray]]:
        """Sound interval bounds of every pre-activation ``z_0 .. z_{L-1}`` of ``N`` boxes."""
        lo, hi = self.check_boxes(lower, upper)
        out: list[tuple[FloatArray, FloatArray]] = []
        for k in range(len(self.weights)):
            zl, zu = self._dense_interval(k, lo, hi)
            out.append((zl, zu))
            if k < len(self.rules):
                lo, hi = self.rules[k].interval(self.activations[k], zl, zu)
        return out

    # -- back-substitution ----------------------------------------------------------------------
    def backsub(
        self,
        lam_a: FloatArray,
        const: FloatArray,
        err: FloatArray | float,
        j: int,
        inter: Intermediate,
        xmag: FloatArray,
        *,
        rel: tuple[Relaxation, ...] | list[Relaxation] | None = None,
        keep: bool = False,
        tight: bool = True,
        beta: Sequence[FloatArray | None] | None = None,
        columns: NDArray[np.intp] | None = None,
    ) -> tuple[FloatArray, FloatArray, list[FloatArray]]:
        """Back-substitute a lower bound of ``lam_a . a_j + const`` down to the input.

        Args:
            lam_a: coefficients on the post-activation ``a_j``: ``(m, n_j)`` (shared by every
                box) or ``(N, m, n_j)``; ``j = -1`` means the input itself.
            const: ``(m,)`` or ``(N, m)``.
            err: rounding error already accumulated (``(N, m)`` or a scalar).
            j: hidden layer index (``-1 .. L-2``).
            inter: the hidden-layer bounds and relaxations of the boxes.
            xmag: ``(N, n_in)`` magnitudes ``max(|lo|, |hi|)`` of the boxes.
            rel: relaxations to use instead of ``inter.rel`` (other lower slopes).
            keep: also return the coefficient matrix met on each post-activation ``a_i``.
            tight: account the rounding step by step (``|Lam_i| . cmag_i`` per layer);
                otherwise once, ``|Lam_j| . gmag_j`` (cheaper, looser; any relaxation slopes
                up to ``s_max`` keep it valid).
            beta: per hidden layer ``i``, ``None`` or ``(N, m, n_i)`` terms added to the
                coefficients on ``z_i`` (beta-CROWN). For a region restricted by phase
                constraints ``s_k z_k >= 0`` (``s = +1`` active, ``-1`` inactive), adding
                ``-beta_k s_k`` with ``beta_k >= 0`` subtracts ``beta_k s_k z_k >= 0``, so the
                bound stays a lower bound on that region, for any such ``beta`` (weak
                duality); the caller builds the terms. Implies ``tight``.
            columns: when given (not with ``keep`` or ``beta``), ``lam_a``'s last axis holds
                only these neurons of ``a_j``; the coefficients of all others are 0.

        Returns:
            ``(coef, offset, lams)`` with ``lam_a . a_j + const >= coef . x + offset`` on every
            box, exactly (the accumulated rounding error is subtracted from ``offset``);
            shapes ``(N, m, n_in)`` and ``(N, m)``; ``lams[i]`` is ``(N, m, n_i)`` when
            ``keep``.
        """
        rels = inter.rel if rel is None else rel
        n = xmag.shape[0]
        lams: list[FloatArray] = [np.empty(0)] * len(self.rules)
        const = np.broadcast_to(const, (n, *np.shape(const)[-1:])).astype(np.float64)
        acc = np.broadcast_to(np.asarray(err, dtype=np.float64), const.shape).copy()
        for i in range(j, -1, -1):
            if keep:
                lams[i] = lam_a
            sl, bl, su, bu = rels[i]
            cmag_i, gmag_i, bias_i, w_i = inter.cmag[i], inter.gmag[i], self.biases[i], None
            cols = None if keep or beta is not None else _active_columns(lam_a)
            if i == j and columns is not None:
                if keep or beta is not None:
                    raise InvalidOptionsError("backsub: columns with keep or beta")
                cols = columns  # lam_a is already restricted to them
            elif cols is not None:
                lam_a = lam_a[..., cols]
            if cols is not None:
                # only the neurons some row uses (rows of a sparse layer, e.g. a MaxPool
                # encoding, touch few): the others have coefficient exactly 0 and add exactly
                # 0 to every sum below (the rounding allowances keep the full width)
                sl, bl, su, bu = sl[:, cols], bl[:, cols], su[:, cols], bu[:, cols]
                cmag_i, gmag_i, bias_i = cmag_i[:, cols], gmag_i[:, cols], bias_i[cols]
                w_i = self.weights[i][cols]
            pos = np.maximum(lam_a, 0.0)
            neg = lam_a - pos
            # lam_a >= 0 -> lower line, < 0 -> upper line; lam is now on z_i
            lam = pos * sl[:, None, :] + neg * su[:, None, :]
            const = const + _rowdot(pos, bl) + _rowdot(neg, bu)
            # rounding: the products lam_a * s (one each) applied to z_i, the products through
            # Dense i and the bias sums, all bounded through |lam_a| (see Intermediate.cmag);
            # in the cheap mode once for the whole pass through Intermediate.gmag
            add = None if beta is None else beta[i]
            if add is not None:
                lam = lam + add
                # the multipliers' own products through Dense i, and the addition's rounding
                # (one per element, on z_i)
                acc = acc + _rowdot(np.abs(lam_a), inter.cmag[i])
                # (emag >= u max|z|, so 2 |lam| emag covers the addition's u |lam| max|z|)
                acc = acc + _rowdot(np.abs(add) + 2.0 * np.abs(lam), inter.emag[i])
            elif tight or beta is not None:
                acc = acc + _rowdot(np.abs(lam_a), cmag_i)
            elif i == j:
                acc = acc + _rowdot(np.abs(lam_a), gmag_i)
            acc = acc + 2.0 * UNIT * np.abs(const)
            const = const + _mm(lam, bias_i[:, None])[..., 0]
            lam_a = _mm(lam, self.weights[i] if w_i is None else w_i)
        if lam_a.ndim == 2:
            lam_a = np.broadcast_to(lam_a, (n, *lam_a.shape))
        depth = max(j + 1, 1)
        width = max(w.shape[1] for w in self.weights)
        offset = down(const - inflate(acc + 2.0 * UNIT * np.abs(const), depth * (width + 2)))
        return lam_a, offset, lams

    @staticmethod
    def _post_mag(i: int, inter: Intermediate) -> FloatArray:
        """Magnitudes ``max |a_i|`` of the post-activation of hidden layer ``i``."""
        return inter.amag[i]

    @staticmethod
    def concretize_lower(
        coef: FloatArray, offset: FloatArray, lower: FloatArray, upper: FloatArray
    ) -> FloatArray:
        """``min over the box of coef . x + offset`` per row, rounded down: ``(N, m)``.

        In centre/radius form over ``[c - r, c + r]``, a float64 box that contains
        ``[lower, upper]`` (``r`` rounded up), with the dot products' rounding subtracted.
        """
        center = 0.5 * (lower + upper)
        radius = np.maximum(up(upper - center), up(center - lower))
        n = lower.shape[1]
        acoef = np.abs(coef)
        val = offset + _rowdot(coef, center)
        if acoef.ndim == 2:
            both = np.stack([radius, np.abs(center) + radius], axis=-1)  # (N, n, 2)
            rr = np.einsum("mk,nks->nms", acoef, both)
        else:
            both = np.stack([radius, np.abs(center) + radius], axis=-1)
            rr = np.matmul(acoef, both)  # (N, m, 2)
        val = val - rr[..., 0]
        err = gamma(2 * n + 2) * (rr[..., 1] + np.abs(offset))
        return down(val - inflate(err, 2 * n + 2))

    def spec_start(
        self,
        C: FloatArray,
        d: FloatArray,
        inter: Intermediate,
        xmag: FloatArray,
        *,
        layer: int | None = None,
    ) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Merge the objective ``C z_{L-1} - d`` with the last Dense layer.

        With ``layer = j`` the objective is ``C z_j - d`` on hidden layer ``j``'s
        pre-activation instead (merged with Dense layer ``j``; ``inter`` needs layers
        ``< j`` only).

        Returns:
            ``(lam_a, const, err)``: ``C z_{L-1} - d = lam_a . a_{L-2} + const + e`` with
            ``|e| <= err`` (``(N, R)``); ``lam_a`` is ``(R, n_{L-2})`` (``(R, n_in)`` for a
            network without hidden layers).
        """
        k = len(self.weights) - 1 if layer is None else int(layer)
        lam = np.asarray(C @ self.weights[k])
        const = C @ self.biases[k] - d
        amag = xmag if k == 0 else self._post_mag(k - 1, inter)
        # rounding of C W and C b - d (the dense magnitudes carry gamma), composition error
        err = self._dense_mag(k, amag) @ np.abs(C).T + self.g * np.abs(d)[None, :]
        return lam, const, inflate(err, C.shape[1] + 2)

    # -- forward linear bounds ------------------------------------------------------------------
    def _forward_step(
        self,
        j: int,
        state: tuple[FloatArray, ...] | None,
        rel: Relaxation | None,
        prev_amag: FloatArray | None,
        lo: FloatArray,
        hi: FloatArray,
        xmag: FloatArray,
    ) -> tuple[tuple[FloatArray, ...], FloatArray, FloatArray]:
        """Forward linear bounds of ``z_j`` from those of ``z_{j-1}`` (``state``).

        ``state = (Lt, lo_off, el, Ut, up_off, eu)``: for every ``x`` in the box
        ``x . Lt + lo_off - el <= z <= x . Ut + up_off + eu`` (transposed layout ``Lt``:
        ``(N, n_in, n)``; ``el, eu >= 0`` accumulate rounding). Relaxation slopes are
        ``>= 0``, so ``a_{j-1} >= sL (lower form) + bL`` and ``<= sU (upper form) + bU``.
        Returns the new state and the concretised ``(l, u)``.
        """
        n = lo.shape[0]
        w = self.weights[j]
        if state is None:
            wd = dense_weight(w, "forward linear bounds")  # layer 0: few inputs here
            wt = np.broadcast_to(wd.T, (n, *wd.T.shape))
            bb = np.broadcast_to(self.biases[j], (n, w.shape[0]))
            zero = np.zeros((n, w.shape[0]))
            state = (wt, bb, zero, wt, bb, zero)
        else:
            assert rel is not None and prev_amag is not None
            Lt, lo_off, el, Ut, up_off, eu = state
            sl, bl, su, bu = rel
            la_t, ua_t = Lt * sl[:, None, :], Ut * su[:, None, :]
            la_o, ua_o = lo_off * sl + bl, up_off * su + bu
            # magnitudes of the forms on x (rounding of the slope scalings acts on them)
            xl = np.matmul(xmag[:, None, :], np.abs(la_t))[:, 0, :]
            xu = np.matmul(xmag[:, None, :], np.abs(ua_t))[:, 0, :]
            ea_l = sl * el + UNIT * xl + 2.0 * UNIT * (np.abs(lo_off * sl) + np.abs(la_o))
            ea_u = su * eu + UNIT * xu + 2.0 * UNIT * (np.abs(up_off * su) + np.abs(ua_o))
            wp, wn = self.pos_weights[j].T, self.neg_weights[j].T
            aw = self.abs_weights[j].T
            Lt2 = _mm(la_t, wp) + _mm(ua_t, wn)
            Ut2 = _mm(ua_t, wp) + _mm(la_t, wn)
            lo2 = _mm(la_o, wp) + _mm(ua_o, wn) + self.biases[j]
            up2 = _mm(ua_o, wp) + _mm(la_o, wn) + self.biases[j]
            # propagated errors, the products' rounding (on x and on the offsets), and the
            # layer's composition error on the magnitudes of a_{j-1}
            rnd = self.g * (
                _mm(xl + xu, aw) + _mm(np.abs(la_o) + np.abs(ua_o), aw) + self.abs_biases[j]
            )
            we, be = self.weight_errors[j], self.bias_errors[j]
            if we is not None:
                rnd = rnd + np.max(prev_amag, axis=-1, keepdims=True) * we
            if be is not None:
                rnd = rnd + be
            el2 = _mm(ea_l, wp) + _mm(ea_u, -wn) + rnd
            eu2 = _mm(ea_u, wp) + _mm(ea_l, -wn) + rnd
            width = la_t.shape[1] + w.shape[1] + 4
            state = (Lt2, lo2, inflate(el2, width), Ut2, up2, inflate(eu2, width))
        Lt, lo_off, el, Ut, up_off, eu = state
        # concretise in the transposed layout: (1 x n_in) @ (n_in x n) per box, both forms
        center = 0.5 * (lo + hi)
        radius = np.maximum(up(hi - center), up(center - lo))
        rows = np.stack([radius, np.abs(center) + radius], axis=1)  # (N, 2, n_in)
        lo_t = np.matmul(rows, np.abs(Lt))
        up_t = np.matmul(rows, np.abs(Ut))
        lc = np.matmul(center[:, None, :], Lt)[:, 0, :]
        uc = np.matmul(center[:, None, :], Ut)[:, 0, :]
        g = gamma(2 * lo.shape[1] + 2)
        fl = lo_off + lc - lo_t[:, 0, :]
        fu = up_off + uc + up_t[:, 0, :]
        el = el + inflate(g * (lo_t[:, 1, :] + np.abs(lo_off)), 2 * lo.shape[1] + 2)
        eu = eu + inflate(g * (up_t[:, 1, :] + np.abs(up_off)), 2 * lo.shape[1] + 2)
        return state, down(fl - el), up(fu + eu)

    # -- CROWN rows for one hidden layer --------------------------------------------------------
    def _crown_layer(
        self,
        j: int,
        l: FloatArray,
        u: FloatArray,
        inter: Intermediate,
        lo: FloatArray,
        hi: FloatArray,
        xmag: FloatArray,
        rows: Literal["open", "all"],
    ) -> tuple[FloatArray, FloatArray]:
        """Tighten ``[l, u]`` of ``z_j`` by CROWN back-substitution.

        With ``rows="open"`` only the neurons whose relaxation is not exact under ``[l, u]``
        are bounded (only their relaxation depends on the bounds); the rows are gathered per
        box and padded to the chunk's largest count (the padding rows' results are discarded,
        so a box's bounds do not depend on the other boxes of its batch). ``rows="all"``
        bounds every neuron.
        """
        w, b = self.weights[j], self.biases[j]
        n = l.shape[0]
        if rows == "open" and j < len(self.rules):
            need = ~self.rules[j].exact(self.activations[j], l, u)
        else:
            need = np.ones_like(l, dtype=bool)
        counts = need.sum(axis=1)
        kmax = int(counts.max(initial=0))
        if kmax == 0:
            return l, u
        order = np.argsort(counts, kind="stable")
        start = int(np.searchsorted(counts[order], 1))
        width = max(int(np.max([r[0].shape[1] for r in inter.rel[:j]], initial=1)), 1)
        step = max(4, self.chunk_elements // (2 * kmax * width))
        l = l.copy()
        u = u.copy()
        # the coefficient arrays of one back-substitution are (c, 2 k', n) for every layer
        # width n below j: rows are split so that they stay within row_chunk_elements
        # (each row's bound is computed independently of the others in its batch)
        lam_width = max(int(wt.shape[1]) for wt in self.weights[: j + 1])
        for s in range(start, n, step):
            ids = order[s : s + step]
            k = int(counts[ids].max())
            idx_all = np.argsort(~need[ids], axis=1, kind="stable")[:, :k]  # needed first
            sub = _take_inter(inter, ids, j)
            rstep = max(1, self.row_chunk_elements // (2 * ids.size * lam_width))
            for r0 in range(0, k, rstep):
                idx = idx_all[:, r0 : r0 + rstep]
                kk = idx.shape[1]
                cols = None
                if is_sparse(w):  # only the neurons of a_{j-1} these rows use
                    sel: Any = w[idx.reshape(-1)]
                    cols = np.unique(sel.indices).astype(np.intp)
                    wk = sel[:, cols].toarray().reshape(*idx.shape, cols.size)
                else:
                    wk = weight_rows(w, idx)  # (c, kk, n_{j-1})
                bk = b[idx]  # (c, kk)
                coef, off, _ = self.backsub(
                    np.concatenate([wk, -wk], axis=1),
                    np.concatenate([bk, -bk], axis=1),
                    0.0,
                    j - 1,
                    sub,
                    xmag[ids],
                    tight=False,
                    columns=cols,
                )
                bnd = self.concretize_lower(coef, off, lo[ids], hi[ids])
                rr = ids[:, None]
                # only the rows each box asked for: padding rows would tighten other neurons
                # of some boxes but not of others, and make a box's bounds depend on its
                # batch (a checker re-deriving one box must get what the search got)
                ask = np.take_along_axis(need[ids], idx, axis=1)
                l[rr, idx] = np.where(ask, np.maximum(l[rr, idx], bnd[:, :kk]), l[rr, idx])
                u[rr, idx] = np.where(ask, np.minimum(u[rr, idx], -bnd[:, kk:]), u[rr, idx])
        return l, u

    # -- hidden-layer bounds --------------------------------------------------------------------
    def intermediate(
        self,
        lower: ArrayLike,
        upper: ArrayLike,
        mode: IntermediateMode = "crown",
        *,
        prior: tuple[FloatArray, FloatArray] | None = None,
        crown_layers: int | None = None,
        rows: Literal["open", "all"] = "open",
        fixed_below: int = 0,
    ) -> Intermediate:
        """Bounds and relaxations of every hidden pre-activation ``z_0 .. z_{L-2}``.

        Args:
            lower: ``(N, n_in)`` box lower corners.
            upper: ``(N, n_in)`` box upper corners.
            mode: ``"ibp"``, ``"forward"`` (IBP intersected with forward linear bounds) or
                ``"crown"`` (IBP, forward linear bounds when the input is small, then CROWN
                back-substitution).
            prior: known sound bounds ``(l, u)`` of all hidden pre-activations on each box,
                concatenated over layers, shape ``(N, H)`` (the bounds of a box that contains
                this one, or fixed ReLU phases); they are intersected in, layer by layer.
            crown_layers: with ``"crown"``, back-substitute only for hidden layers
                ``j < crown_layers`` (``None``: all).
            rows: ``"open"``: CROWN rows only for neurons whose relaxation is not exact;
                ``"all"``: every neuron.
            fixed_below: hidden layers ``j < fixed_below`` are taken from ``prior`` as they
                are (they are already as tight as wanted).

        Returns:
            An :class:`Intermediate`.
        """
        lo, hi = self.check_boxes(lower, upper)
        if mode not in ("ibp", "forward", "crown"):
            raise InvalidOptionsError(f"intermediate mode {mode!r} not in ibp/forward/crown")
        if fixed_below > 0 and prior is None:
            raise InvalidOptionsError("fixed_below needs prior bounds")
        n = lo.shape[0]
        xmag = _mag(lo, hi)
        pre: list[tuple[FloatArray, FloatArray]] = []
        rel: list[Relaxation] = []
        amag: list[FloatArray] = []
        cmag: list[FloatArray] = []
        gmag: list[FloatArray] = []
        emag: list[FloatArray] = []
        empty = np.zeros(n, dtype=bool)
        offs = self.offsets
        use_forward = fixed_below == 0 and (
            mode == "forward" or (mode == "crown" and self.n_inputs <= 64)
        )
        state: tuple[FloatArray, ...] | None = None
        # plain IBP too (intersected in: the result is never looser than IBP, even by an ulp
        # of differently accumulated rounding allowances)
        plain = self.ibp(lo, hi) if mode != "ibp" and fixed_below == 0 else None
        for j in range(len(self.rules)):
            act, rule = self.activations[j], self.rules[j]
            if j < fixed_below:
                assert prior is not None
                l = prior[0][:, offs[j] : offs[j + 1]]
                u = prior[1][:, offs[j] : offs[j + 1]]
            else:
                if j == 0:
                    l, u = self._dense_interval(0, lo, hi)
                else:
                    pl, pu = pre[j - 1]
                    al, au = self.rules[j - 1].interval(self.activations[j - 1], pl, pu)
                    l, u = self._dense_interval(j, al, au)
                if use_forward:
                    state, fl, fu = self._forward_step(
                        j,
                        state,
                        rel[j - 1] if j > 0 else None,
                        amag[j - 1] if j > 0 else None,
                        lo,
                        hi,
                        xmag,
                    )
                    l, u = np.maximum(l, fl), np.minimum(u, fu)
                if plain is not None:
                    l, u = np.maximum(l, plain[j][0]), np.minimum(u, plain[j][1])
                if prior is not None:
                    l = np.maximum(l, prior[0][:, offs[j] : offs[j + 1]])
                    u = np.minimum(u, prior[1][:, offs[j] : offs[j + 1]])
                if j > 0 and mode == "crown" and (crown_layers is None or j < crown_layers):
                    part = Intermediate(
                        tuple(pre),
                        tuple(rel),
                        empty,
                        tuple(amag),
                        tuple(cmag),
                        tuple(gmag),
                        tuple(emag),
                    )
                    l, u = self._crown_layer(j, l, u, part, lo, hi, xmag, rows)
            crossed = np.any(l > u, axis=1)
            if np.any(crossed):
                # sound bounds cross only when no input satisfies the constraints: empty
                empty = empty | crossed
                l, u = (
                    np.where(crossed[:, None], np.minimum(l, u), l),
                    np.where(crossed[:, None], np.maximum(l, u), u),
                )
            pre.append((l, u))
            rel.append(rule.relax(act, l, u))
            al, au = rule.interval(act, l, u)
            amag.append(_mag(al, au))
            cm, smax = self._step_mag(j, l, u, rel[-1], xmag if j == 0 else amag[j - 1])
            cmag.append(cm)
            gmag.append(cm if j == 0 else cm + smax * _mm(gmag[-1], self.abs_weights[j].T))
            emag.append(UNIT * _mag(l, u) + self._dense_mag(j, xmag if j == 0 else amag[j - 1]))
        return Intermediate(
            tuple(pre), tuple(rel), empty, tuple(amag), tuple(cmag), tuple(gmag), tuple(emag)
        )

    def intermediate_after_splits(
        self,
        lower: FloatArray,
        upper: FloatArray,
        prior: tuple[FloatArray, FloatArray],
        made: NDArray[np.int64],
        child_crown: int,
        mode: IntermediateMode = "crown",
    ) -> Intermediate:
        """:meth:`intermediate` for the nodes of a branch-and-bound tree, each made by a split
        on hidden layer ``made[i]`` (``-1``: the root and children of input splits).

        A node keeps its ``prior`` bounds (its parent's, clipped by the split: sound on its
        domain) of the layers ``<= made[i]`` and recomputes the layers above: CROWN for
        ``child_crown`` layers (:func:`child_crown_layers`), IBP intersected with the prior
        above them. One engine call per split layer; the result is in the nodes' order. The
        searches and the proof checker bound nodes through this one function.
        """
        parts: list[Intermediate] = []
        order: list[NDArray[np.intp]] = []
        for m in np.unique(made):
            rows = np.flatnonzero(made == m)
            parts.append(
                self.intermediate(
                    lower[rows],
                    upper[rows],
                    mode,
                    prior=(prior[0][rows], prior[1][rows]),
                    fixed_below=int(m) + 1,
                    crown_layers=child_crown_layers(int(m), child_crown),
                )
            )
            order.append(rows)
        inter = Intermediate.concat(parts)
        if len(parts) == 1:
            return inter
        return inter.take(np.argsort(np.concatenate(order), kind="stable"))

    def _step_mag(
        self, j: int, l: FloatArray, u: FloatArray, r: Relaxation, prev_amag: FloatArray
    ) -> tuple[FloatArray, FloatArray]:
        """:attr:`Intermediate.cmag` of hidden layer ``j`` and the largest slopes ``s_max``."""
        smax = np.maximum(r.lower_slope, r.upper_slope)
        fam = self.rules[j].lower_family(self.activations[j], l, u)
        if fam is not None:
            smax = np.maximum(smax, fam.mask * fam.s_max)
        bmax = np.maximum(np.abs(r.lower_bias), np.abs(r.upper_bias))
        zmag = _mag(l, u)
        return smax * (UNIT * zmag + self._dense_mag(j, prev_amag)) + self.g * bmax, smax

    # -- objective bounds -----------------------------------------------------------------------
    def bound(
        self,
        lower: ArrayLike,
        upper: ArrayLike,
        C: ArrayLike,
        d: ArrayLike | None = None,
        *,
        intermediate: IntermediateMode = "crown",
        inter: Intermediate | None = None,
        prior: tuple[FloatArray, FloatArray] | None = None,
        crown_layers: int | None = None,
        rows: Literal["open", "all"] = "open",
        extra_slopes: tuple[str, ...] = (),
        alpha_iters: int = 0,
        alpha_optimizer: AlphaOptimizer = "sign",
        alpha_lr: float = 0.5,
        close_above: float | None = None,
        beta_sign: Sequence[FloatArray | None] | None = None,
        beta_init: Sequence[FloatArray | None] | None = None,
        beta_out: list[FloatArray | None] | None = None,
        beta_lr: float | None = None,
    ) -> BatchBounds:
        """Sound lower bounds of ``C f(x) - d`` over each of ``N`` boxes.

        Args:
            lower: ``(N, n_in)`` box lower corners.
            upper: ``(N, n_in)`` box upper corners.
            C: ``(R, n_out)`` objective rows (shared by the boxes).
            d: ``(R,)`` offsets (default zeros).
            intermediate: how hidden-layer bounds are computed (see :meth:`intermediate`).
            inter: hidden-layer bounds already computed for these boxes (then
                ``intermediate``, ``prior``, ``crown_layers`` and ``rows`` are not used).
            prior: known hidden-layer bounds to intersect (see :meth:`intermediate`).
            crown_layers: limit CROWN to the first hidden layers.
            rows: CROWN rows for ``"open"`` neurons only or ``"all"``.
            extra_slopes: further lower-slope choices for the neurons with a family of lower
                lines in the objective's back-substitution (``"zero"``: the family's smallest
                slope, ``"one"``: its largest, ``"parallel"``: the upper line's slope); the
                best bound per row is kept.
            alpha_iters: gradient steps optimising those lower slopes per box, row and
                neuron (alpha-CROWN on the objective's back-substitution, hidden-layer bounds
                fixed); 0 disables.
            alpha_optimizer: ``"sign"`` (signed steps of decaying size ``alpha_lr``) or
                ``"adam"`` (Adam ascent with learning rate ``alpha_lr``).
            alpha_lr: step size.
            close_above: end the slope optimisation once every box has a row above this
                (see :meth:`optimize_slopes`).
            beta_sign, beta_init, beta_out: with ``alpha_iters``, multipliers of split
                constraints optimised with the slopes (see :meth:`optimize_slopes`).

        Returns:
            A :class:`BatchBounds`.
        """
        lo, hi = self.check_boxes(lower, upper)
        Cm = np.atleast_2d(np.asarray(C, dtype=np.float64))
        if Cm.shape[1] != self.n_outputs:
            raise InvalidPropertyError(
                f"C has {Cm.shape[1]} columns, the network has {self.n_outputs} outputs"
            )
        dv = np.zeros(Cm.shape[0]) if d is None else np.asarray(d, dtype=np.float64).reshape(-1)
        if inter is None:
            inter = self.intermediate(
                lo, hi, intermediate, prior=prior, crown_layers=crown_layers, rows=rows
            )
        xmag = _mag(lo, hi)
        lam, const, err = self.spec_start(Cm, dv, inter, xmag)
        depth = len(self.rules)
        coef, off, _ = self.backsub(lam, const, err, depth - 1, inter, xmag)
        lb = self.concretize_lower(coef, off, lo, hi)
        if depth > 0:
            for choice in extra_slopes:
                rel2 = self._lower_slopes(inter, choice)
                c2, o2, _ = self.backsub(lam, const, err, depth - 1, inter, xmag, rel=rel2)
                lb2 = self.concretize_lower(c2, o2, lo, hi)
                better = lb2 > lb
                lb = np.maximum(lb, lb2)
                coef = np.where(better[:, :, None], c2, coef)
                off = np.where(better, o2, off)
            if alpha_iters > 0:
                lb2, c2, o2 = self.optimize_slopes(
                    lam,
                    const,
                    err,
                    inter,
                    lo,
                    hi,
                    alpha_iters,
                    optimizer=alpha_optimizer,
                    lr=alpha_lr,
                    close_above=close_above,
                    beta_sign=beta_sign,
                    beta_init=beta_init,
                    beta_out=beta_out,
                    beta_lr=beta_lr,
                )
                better = lb2 > lb
                lb = np.maximum(lb, lb2)
                coef = np.where(better[:, :, None], c2, coef)
                off = np.where(better, o2, off)
            # IBP on the merged last layer
            pl, pu = inter.pre[-1]
            al, au = self.rules[-1].interval(self.activations[-1], pl, pu)
            ibp_lo = self._merged_ibp(lam, const, err, al, au)
            lb = np.maximum(lb, ibp_lo)
        lb = np.where(inter.empty[:, None], np.inf, lb)
        return BatchBounds(lower=lb, coef=coef, offset=off, pre=inter.pre, empty=inter.empty)

    @staticmethod
    def _merged_ibp(
        lam: FloatArray, const: FloatArray, err: FloatArray, al: FloatArray, au: FloatArray
    ) -> FloatArray:
        """Sound lower bound of ``lam . a + const - err`` for ``a`` in ``[al, au]``."""
        lp, ln = np.maximum(lam, 0.0), np.minimum(lam, 0.0)
        val = al @ lp.T + au @ ln.T + const
        n = lam.shape[1]
        e = gamma(2 * n + 2) * (_mag(al, au) @ np.abs(lam).T + np.abs(const))
        return down(val - inflate(e + err, 2 * n + 2))

    def _lower_slopes(self, inter: Intermediate, choice: str) -> list[Relaxation]:
        """Relaxations with another lower slope on the neurons with a family of lower lines."""
        out: list[Relaxation] = []
        for act, rule, (l, u), r in zip(self.activations, self.rules, inter.pre, inter.rel):
            fam = rule.lower_family(act, l, u)
            if fam is None:
                out.append(r)
                continue
            m = fam.mask > 0
            if choice == "zero":
                new = np.where(m, fam.s_min, r.lower_slope)
            elif choice == "one":
                new = np.where(m, fam.s_max, r.lower_slope)
            elif choice == "parallel":
                new = np.where(m, np.clip(r.upper_slope, fam.s_min, fam.s_max), r.lower_slope)
            else:
                raise InvalidOptionsError(f"unknown lower-slope choice {choice!r}")
            out.append(Relaxation(new, np.where(m, 0.0, r.lower_bias), r.upper_slope, r.upper_bias))
        return out

    # -- beta-CROWN for one region with phase constraints -------------------------------------
    def multiplier_bound(
        self,
        lo: FloatArray,
        hi: FloatArray,
        A: FloatArray,
        b: FloatArray,
        w: FloatArray,
        beta: FloatArray,
        inter: Intermediate,
    ) -> float:
        r"""Sound lower bound of ``w . (A f(x) - b) - sum_j beta_j z_j(x)`` over one region.

        ``inter`` holds the region's hidden-layer bounds (one row). With ``w >= 0``,
        ``sum w <= 1`` and ``beta_j = beta'_j s_j`` for phase constraints ``s_j z_j >= 0``
        (``beta' >= 0``) that hold on the region, a positive value proves
        ``max_r (A_r f(x) - b_r) > 0`` there (weak duality; ``w = 0`` and a positive value
        prove the region empty). The caller guarantees those sign conditions.

        Args:
            lo, hi: ``(n_in,)`` the region's box.
            A, b: the unsafe rows.
            w: ``(R,)`` row weights.
            beta: ``(H,)`` signed multipliers on the stacked hidden pre-activations.
            inter: hidden-layer bounds of the region (one row).
        """
        lo2, hi2 = lo[None, :], hi[None, :]
        xmag = _mag(lo2, hi2)
        C = (w @ A)[None, :]
        d = np.array([float(w @ b)])
        lam, const, err = self.spec_start(C, d, inter, xmag)
        offs = self.offsets
        terms: list[FloatArray | None] = []
        for i in range(len(self.rules)):
            part = beta[offs[i] : offs[i + 1]]
            terms.append(-part[None, None, :] if np.any(part) else None)
        coef, off, _ = self.backsub(lam, const, err, len(self.rules) - 1, inter, xmag, beta=terms)
        return float(self.concretize_lower(coef, off, lo2, hi2)[0, 0])

    # -- alpha-CROWN ----------------------------------------------------------------------------
    def optimize_slopes(
        self,
        lam0: FloatArray,
        const0: FloatArray,
        err0: FloatArray,
        inter: Intermediate,
        lo: FloatArray,
        hi: FloatArray,
        iters: int,
        *,
        optimizer: AlphaOptimizer = "adam",
        lr: float = 0.1,
        depth: int | None = None,
        stop: Callable[[], bool] | None = None,
        close_above: float | None = None,
        beta_sign: Sequence[FloatArray | None] | None = None,
        beta_init: Sequence[FloatArray | None] | None = None,
        beta_out: list[FloatArray | None] | None = None,
        beta_lr: float | None = None,
    ) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Optimise the family lower slopes for the objective rows (alpha-CROWN).

        Every slope in the family's range gives a sound linear lower bound, so every iterate
        is sound; gradient steps (reverse pass through the back-substitution) improve it.

        Args:
            lam0, const0, err0: the objective merged with the last layer
                (:meth:`spec_start`).
            inter: hidden-layer bounds.
            lo, hi: ``(N, n_in)`` boxes.
            iters: gradient steps.
            optimizer: ``"adam"`` or ``"sign"`` (signed steps, size ``lr`` decaying by 0.7).
            lr: step size.
            depth: the objective sits on hidden layer ``depth``'s pre-activation (``lam0`` on
                ``a_{depth-1}``, from ``spec_start(..., layer=depth)``); default: the output.
            stop: polled before every step; when it returns true the best bound so far is
                returned (sound, but not the ``iters``-step result a checker re-derives).
            close_above: a box stops iterating as soon as it has a row whose bound exceeds
                this (the iterates do not depend on ``iters``, so the best bound of fewer steps
                is never above that of more: a checker running all ``iters`` steps gets at
                least as much); the boxes that stopped leave the working arrays, which changes
                nothing for the others (mnist-net_256x4 prop_0 eps 0.05 case 2, 14,853 nodes:
                53.7 s -> 48.6 s).
            beta_sign: per hidden layer ``None`` or ``(N, n_i)`` phase signs of split
                constraints ``s z_i >= 0`` that hold on each box's region (``+1`` active,
                ``-1`` inactive, ``0`` none): their multipliers ``beta >= 0`` are optimised
                with the slopes (beta-CROWN), adding ``-beta s`` to the coefficients on
                ``z_i`` (see :meth:`backsub`; sound for every ``beta >= 0``).
            beta_init: per hidden layer ``None`` or ``(N, R, n_i)`` starting multipliers
                (``>= 0``; default 0).
            beta_out: when given, receives per hidden layer the multipliers of the best
                iterate (``None`` for layers without constraints).
            beta_lr: signed step size of the multipliers (default ``lr``), decaying as the
                slopes'.

        Returns:
            The best ``(lower (N, R), coef (N, R, n_in), offset (N, R))`` seen.
        """
        n = lo.shape[0]
        r = lam0.shape[0]
        depth = len(self.rules) if depth is None else int(depth)
        xmag = _mag(lo, hi)
        masks: list[FloatArray] = []
        s_lo: list[float] = []
        s_hi: list[float] = []
        alphas: list[FloatArray] = []
        for act, rule, (l, u), rl in zip(
            self.activations[:depth], self.rules[:depth], inter.pre[:depth], inter.rel[:depth]
        ):
            fam: LowerFamily | None = rule.lower_family(act, l, u)
            mask = np.zeros_like(l) if fam is None else fam.mask
            masks.append(mask[:, None, :])
            s_lo.append(0.0 if fam is None else fam.s_min)
            s_hi.append(1.0 if fam is None else fam.s_max)
            alphas.append(np.broadcast_to(rl.lower_slope[:, None, :], (n, r, l.shape[1])).copy())
        # beta-CROWN multipliers of split constraints (per box, row, neuron), >= 0
        bsign: list[FloatArray | None] = [None] * depth
        betas: list[FloatArray | None] = [None] * depth
        if beta_sign is not None:
            for i in range(depth):
                sg = beta_sign[i]
                if sg is None or not np.any(sg):
                    continue
                bsign[i] = np.asarray(sg, dtype=np.float64)[:, None, :]
                init = None if beta_init is None else beta_init[i]
                b0 = np.zeros((n, r, sg.shape[1])) if init is None else np.array(init, float)
                betas[i] = np.where(sg[:, None, :] != 0.0, np.maximum(b0, 0.0), 0.0)
        use_beta = any(b is not None for b in betas)
        best_beta: list[FloatArray | None] = [None if b is None else b.copy() for b in betas]
        if not use_beta and not any(m.any() for m in masks):
            coef, off, _ = self.backsub(lam0, const0, err0, depth - 1, inter, xmag)
            return self.concretize_lower(coef, off, lo, hi), coef, off
        best_lb = np.full((n, r), -np.inf)
        best_coef = np.zeros((n, r, lo.shape[1]))
        best_off = np.zeros((n, r))
        # the lower lines' intercepts: 0 on the family's lines (through the origin)
        bl_eff = [
            np.where(m > 0, 0.0, rl.lower_bias[:, None, :])
            for m, rl in zip(masks, inter.rel[:depth])
        ]
        m1 = [np.zeros_like(a) for a in alphas]
        m2 = [np.zeros_like(a) for a in alphas]
        # the boxes still iterating (with close_above, a box whose best bound has closed it
        # leaves the batch: its iterates never depend on the other boxes', so the others' are
        # unchanged and its own best only stops growing); the working arrays hold these boxes
        live = np.arange(n)
        c0 = np.broadcast_to(np.asarray(const0, dtype=np.float64), (n, r)).copy()
        e0 = np.broadcast_to(np.asarray(err0, dtype=np.float64), (n, r)).copy()
        w_lo, w_hi = lo, hi
        step = lr
        for it in range(max(int(iters), 1) + 1):
            # forward: back-substitution with per-box, per-row slopes (error-accounted)
            m = live.size
            lam_a: FloatArray = np.broadcast_to(lam0, (m, *lam0.shape))
            const = c0.copy()
            acc = e0.copy()
            saved: list[tuple[FloatArray, NDArray[np.bool_], FloatArray]] = []
            for i in range(depth - 1, -1, -1):
                su, bu = inter.rel[i].upper_slope, inter.rel[i].upper_bias
                pos = lam_a >= 0.0
                # alphas[i] holds the fixed lower slopes outside the family (never updated)
                slope = np.where(pos, alphas[i], su[:, None, :])
                bias = np.where(pos, bl_eff[i], bu[:, None, :])
                lam = lam_a * slope
                const = const + np.sum(lam_a * bias, axis=-1)
                acc = acc + _rowdot(np.abs(lam_a), inter.cmag[i]) + 2.0 * UNIT * np.abs(const)
                bt, sg_i = betas[i], bsign[i]
                if bt is not None and sg_i is not None:
                    add = -bt * sg_i
                    lam = lam + add
                    # the addition's rounding and the multipliers' products (see backsub),
                    # only where something is added (adding an exact 0 is exact: a box's bound
                    # must not depend on the constraints of the other boxes in its batch)
                    moved = np.where(add != 0.0, np.abs(add) + 2.0 * np.abs(lam), 0.0)
                    acc = acc + _rowdot(moved, inter.emag[i])
                const = const + _mm(lam, self.biases[i][:, None])[..., 0]
                saved.append((lam_a, pos, slope))
                lam_a = _mm(lam, self.weights[i])
            width = max(w.shape[1] for w in self.weights)
            off = down(const - inflate(acc + 2.0 * UNIT * np.abs(const), depth * (width + 2)))
            lb = self.concretize_lower(lam_a, off, w_lo, w_hi)
            sel = slice(None) if m == n else live
            cur = best_lb[sel]
            better = lb > cur
            best_lb[sel] = np.where(better, lb, cur)
            best_coef[sel] = np.where(better[:, :, None], lam_a, best_coef[sel])
            best_off[sel] = np.where(better, off, best_off[sel])
            for bt, bb in zip(betas, best_beta):
                if bt is not None and bb is not None:
                    bb[sel] = np.where(better[:, :, None], bt, bb[sel])
            if it == max(int(iters), 1) or (stop is not None and stop()):
                break
            if close_above is not None:
                done = best_lb[sel].max(axis=1) > close_above
                if bool(np.all(done)):
                    break
                # drop the closed boxes once they are an eighth of the batch (a copy of the
                # working arrays costs about a sixth of a step)
                if 8 * int(np.count_nonzero(done)) >= m:
                    keep = np.flatnonzero(~done)
                    live = live[keep]
                    inter = inter.take(keep)
                    w_lo, w_hi = w_lo[keep], w_hi[keep]
                    c0, e0 = c0[keep], e0[keep]
                    lam_a = lam_a[keep]
                    saved = [(la[keep], ps[keep], sp[keep]) for la, ps, sp in saved]
                    masks = [mk[keep] for mk in masks]
                    alphas = [al[keep] for al in alphas]
                    bl_eff = [bb[keep] for bb in bl_eff]
                    m1 = [x[keep] for x in m1]
                    m2 = [x[keep] for x in m2]
                    betas = [None if bt is None else bt[keep] for bt in betas]
                    bsign = [None if sg is None else sg[keep] for sg in bsign]
            # reverse: d lb / d alpha (the vertex minimising each row)
            g = np.where(lam_a >= 0.0, w_lo[:, None, :], w_hi[:, None, :])
            g_lam = _mm(g, self.weights[0].T) + self.biases[0]  # d lb / d lam on z_0
            for step_i, i in enumerate(range(depth)):
                lam_a_i, pos, slope = saved[depth - 1 - step_i]
                grad = g_lam * lam_a_i * pos * masks[i]
                bt, sg_i = betas[i], bsign[i]
                if bt is not None and sg_i is not None:
                    # d lb / d beta = -s z_i at the minimising vertex (through the relaxation)
                    gb = -g_lam * sg_i
                    bstep = (lr if beta_lr is None else beta_lr) * (step / lr)
                    betas[i] = np.where(sg_i != 0.0, np.maximum(bt + bstep * np.sign(gb), 0.0), 0.0)
                if i + 1 < depth:
                    bu = inter.rel[i].upper_bias
                    g_a = g_lam * slope + np.where(pos, bl_eff[i], bu[:, None, :])
                    g_lam = _mm(g_a, self.weights[i + 1].T) + self.biases[i + 1]
                if optimizer == "sign":
                    upd = step * np.sign(grad)
                else:
                    m1[i] = 0.9 * m1[i] + 0.1 * grad
                    m2[i] = 0.999 * m2[i] + 0.001 * grad * grad
                    mh = m1[i] / (1 - 0.9 ** (it + 1))
                    vh = m2[i] / (1 - 0.999 ** (it + 1))
                    upd = lr * mh / (np.sqrt(vh) + 1e-8)
                alphas[i] = np.where(
                    masks[i] > 0, np.clip(alphas[i] + upd, s_lo[i], s_hi[i]), alphas[i]
                )
            step *= 0.7
        if beta_out is not None:
            beta_out.extend(best_beta)
        return best_lb, best_coef, best_off

    def refine_intermediate(
        self,
        lower: ArrayLike,
        upper: ArrayLike,
        iters: int,
        *,
        inter: Intermediate | None = None,
        stop: Callable[[], bool] | None = None,
    ) -> Intermediate | None:
        r"""Hidden-layer bounds tightened by optimised slopes (alpha-CROWN on every layer).

        For hidden layers ``j = 1 .. L-2`` in turn, every neuron whose relaxation is not
        exact on some box gets two rows, ``z_i^(j)`` and ``-z_i^(j)``; the lower slopes of
        layers ``< j`` are optimised per box, row and neuron (:meth:`optimize_slopes`,
        ``iters`` signed steps of size 0.5), and

        .. math:: l_i \leftarrow \max(l_i, \underline{z_i}), \qquad
                  u_i \leftarrow \min(u_i, -\underline{(-z_i)}).

        A layer whose refinement would hold more than :data:`REFINE_MAX_ELEMENTS` slopes
        keeps its bounds. Every slope in the family gives a sound bound, so each step keeps
        the bounds sound;
        layers above ``j`` are then recomputed (IBP and CROWN intersected with the bounds so
        far) on the tightened ones. The result depends on the boxes, ``iters`` and ``inter``
        only, so a proof checker re-derives it by the same call. Results computed from
        scratch (no ``inter``) are kept for the last few boxes (:attr:`refined`; the cases of
        one property share their box); treat them as read-only.

        Args:
            lower, upper: ``(N, n_in)`` boxes.
            iters: optimised-slope steps per layer.
            inter: the boxes' hidden-layer bounds to start from (default: CROWN).
            stop: polled between steps; when it returns true the refinement is abandoned.

        Returns:
            The tightened :class:`Intermediate`, or ``None`` when ``stop`` ended it.
        """
        lo, hi = self.check_boxes(lower, upper)
        key = (lo.tobytes(), hi.tobytes(), int(iters))
        if inter is None and key in self.refined:
            return self.refined[key]
        cur = self.intermediate(lo, hi, "crown") if inter is None else inter
        xmag = _mag(lo, hi)
        offs = self.offsets
        for j in range(1, len(self.rules)):
            if stop is not None and stop():
                return None
            rel = cur.rel[j]
            inexact = (rel.lower_slope != rel.upper_slope) | (rel.lower_bias != rel.upper_bias)
            idx = np.flatnonzero(np.any(inexact & ~cur.empty[:, None], axis=0))
            if not idx.size:
                continue
            m = idx.size
            if lo.shape[0] * 2 * m * int(offs[j]) > REFINE_MAX_ELEMENTS:
                continue
            C = np.zeros((2 * m, rel.lower_slope.shape[1]))
            C[np.arange(m), idx] = 1.0
            C[m + np.arange(m), idx] = -1.0
            part = Intermediate(
                cur.pre[:j],
                cur.rel[:j],
                cur.empty,
                cur.amag[:j],
                cur.cmag[:j],
                cur.gmag[:j],
                cur.emag[:j],
            )
            lam, const, err = self.spec_start(C, np.zeros(2 * m), part, xmag, layer=j)
            lb, _, _ = self.optimize_slopes(
                lam, const, err, part, lo, hi, iters, optimizer="sign", lr=0.5, depth=j, stop=stop
            )
            if stop is not None and stop():
                return None
            pl, pu = cur.stacked()
            seg_l, seg_u = pl[:, offs[j] : offs[j + 1]], pu[:, offs[j] : offs[j + 1]]
            seg_l[:, idx] = np.maximum(seg_l[:, idx], lb[:, :m])
            seg_u[:, idx] = np.minimum(seg_u[:, idx], -lb[:, m:])
            cur = self.intermediate(lo, hi, "crown", prior=(pl, pu), fixed_below=j + 1)
        if inter is None:
            if len(self.refined) >= 4:
                self.refined.pop(next(iter(self.refined)))
            self.refined[key] = cur
        return cur


#: engines of recently bounded networks, by ``id`` (checked through a weak reference)
_ENGINES: dict[int, tuple[weakref.ref[Network], BoundEngine]] = {}
_ENGINE_CACHE_SIZE = 16


def engine_for(network: Network) -> BoundEngine:
    """The :class:`BoundEngine` of ``network``, cached for the networks bounded last (the
    front ends below are called many times on one network)."""
    key = id(network)
    hit = _ENGINES.get(key)
    if hit is not None and hit[0]() is network:
        return hit[1]
    eng = BoundEngine(network)
    if len(_ENGINES) >= _ENGINE_CACHE_SIZE:
        _ENGINES.pop(next(iter(_ENGINES)))
    _ENGINES[key] = (weakref.ref(network), eng)
    return eng


def dense_interval(
    layer: Dense, lower: ArrayLike, upper: ArrayLike
) -> tuple[FloatArray, FloatArray]:
    """One sound IBP step through a Dense layer outside an engine: a rigorous enclosure of
    the *exact* layer's ``W a + b`` over ``lower <= a <= upper`` (its composition error,
    :attr:`Dense.weight_error`, included), as in :meth:`BoundEngine.ibp`."""
    lo = np.asarray(lower, dtype=np.float64)
    hi = np.asarray(upper, dtype=np.float64)
    extra = None
    if not layer.exact:
        err = np.zeros(layer.n_out)
        if layer.weight_error is not None:
            err = err + layer.weight_error * np.max(_mag(lo, hi), initial=0.0)
        if layer.bias_error is not None:
            err = err + layer.bias_error
        extra = inflate(err, 4)
    return affine_interval(layer.weight, layer.bias, lo, hi, extra=extra)


def child_crown_layers(start: int, child_crown: int | None) -> int | None:
    """``crown_layers`` for the children of a phase split on hidden layer ``start``.

    With ``child_crown = c`` a child recomputes by CROWN only the ``c`` hidden layers just above
    its split (``j < start + 1 + c``); the layers above those take IBP on the recomputed ones,
    intersected with the parent's bounds (still sound on the child's domain, a subset of the
    parent's). ``None`` (or a root, ``start < 0``) back-substitutes for every layer.
    """
    if child_crown is None or start < 0:
        return None
    return start + 1 + int(child_crown)


def _take_inter(inter: Intermediate, ids: NDArray[np.intp], j: int) -> Intermediate:
    """What :meth:`BoundEngine.backsub` needs of the first ``j`` hidden layers (relaxations
    and error factors) for the boxes ``ids``; the bounds themselves are left out."""
    return Intermediate(
        (),
        tuple(Relaxation(*(a[ids] for a in r)) for r in inter.rel[:j]),
        inter.empty[ids],
        (),
        tuple(a[ids] for a in inter.cmag[:j]),
        tuple(a[ids] for a in inter.gmag[:j]),
        tuple(a[ids] for a in inter.emag[:j]),
    )


# --------------------------------------------------------------------------------------------
# Conjunctions: best convex combination of rows
# --------------------------------------------------------------------------------------------


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
    ``g_r(x) >= L_r(x) = coef_r . x + offset_r`` (exact, as :meth:`BoundEngine.bound` returns
    them) and weights ``w`` in the simplex, ``max_r g_r(x) >= sum_r w_r L_r(x)``, so
    ``phi(w) = min_box sum_r w_r L_r(x)`` is a sound lower bound of ``min_x max_r g_r(x)``.
    ``phi`` is concave; this runs projected subgradient ascent from the best single row
    (vectorized over boxes) and keeps the best weights seen. The final value is recomputed
    with the combination's rounding accounted for (the weights need not sum to one exactly:
    any non-negative weights with sum at most one keep the bound valid when it is positive,
    and the sum is checked).

    Args:
        coef: ``(N, R, n_in)`` slopes.
        offset: ``(N, R)`` offsets.
        lower: ``(N, n_in)`` box lower corners.
        upper: ``(N, n_in)`` box upper corners.
        iters: subgradient steps.

    Returns:
        ``(bound (N,), combined coef (N, n_in), combined offset (N,))``; the combined linear
        form is a lower bound of ``max_r g_r`` up to the rounding accounted in ``bound``.
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
        # normalised step (|grad / scale| <= 1, no overflow even for subnormal scales)
        w = _project_simplex(w + grad / ((t + 2.0) * np.where(scale > 0.0, scale, 1.0)))
        v, grad = phi(w)
        better = v > best_v
        best_v = np.where(better, v, best_v)
        best_w[better] = w[better]
    best_w = np.maximum(best_w, 0.0)
    best_w = best_w / best_w.sum(axis=1, keepdims=True)
    # sound value: sum_r w_r L_r(x) >= c . x + off - e for the computed (c, off), with the
    # error e of forming c and off; a positive value needs sum w <= 1 (checked) and w >= 0
    c = np.einsum("nr,nri->ni", best_w, coef)
    off = np.einsum("nr,nr->n", best_w, offset)
    g = gamma(r + 2)
    e_c = g * np.einsum("nr,nri->ni", best_w, np.abs(coef))
    e = np.einsum("ni,ni->n", e_c, _mag(lower, upper)) + g * np.einsum(
        "nr,nr->n", best_w, np.abs(offset)
    )
    val = BoundEngine.concretize_lower(c[:, None, :], off[:, None], lower, upper)[:, 0]
    val = down(val - inflate(e, r + 2))
    wsum = best_w.sum(axis=1)
    # with sum w = s: sum w_r g_r <= s max_r g_r, so a positive value still proves max > 0;
    # a negative one is only a lower bound of max g when s >= 1: keep it below the single rows
    val = np.where(val > 0.0, val / np.maximum(wsum, 1.0), np.minimum(val, 0.0))
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


# --------------------------------------------------------------------------------------------
# Single-box front ends
# --------------------------------------------------------------------------------------------


def _check_box(network: Network, box: Box | tuple[ArrayLike, ArrayLike]) -> Box:
    b = Box.from_pair(box)
    if b.dim != network.n_inputs:
        raise InvalidPropertyError(
            f"box has {b.dim} dimensions but the network has {network.n_inputs} inputs"
        )
    return b


def _check_method(method: str, allowed: tuple[str, ...], name: str = "method") -> None:
    if method not in allowed:
        raise InvalidOptionsError(
            f"{name}={method!r} must be one of {', '.join(repr(a) for a in allowed)}"
        )


def _spec_arrays(
    C: ArrayLike, d: ArrayLike | None, n_outputs: int
) -> tuple[FloatArray, FloatArray]:
    Cm = np.asarray(C, dtype=np.float64)
    if Cm.ndim == 1:
        Cm = Cm.reshape(1, -1)
    if Cm.ndim != 2 or Cm.shape[1] != n_outputs:
        raise InvalidPropertyError(
            f"spec matrix must have shape (k, {n_outputs}), got {np.shape(C)}"
        )
    dv = np.zeros(Cm.shape[0]) if d is None else np.asarray(d, dtype=np.float64).reshape(-1)
    if dv.shape != (Cm.shape[0],):
        raise InvalidPropertyError(f"spec offset must have shape ({Cm.shape[0]},), got {dv.shape}")
    if not (np.all(np.isfinite(Cm)) and np.all(np.isfinite(dv))):
        raise InvalidPropertyError("spec matrix and offset must be finite")
    return Cm, dv


def interval_bounds(network: Network, box: Box | tuple[ArrayLike, ArrayLike]) -> LayerBounds:
    """Sound IBP bounds on every pre-activation.

    Args:
        network: any network (it is normalized first).
        box: a :class:`Box` or a ``(lower, upper)`` pair of shape ``(n_inputs,)``.
    """
    eng = engine_for(network)
    b = _check_box(eng.normal, box)
    out = eng.ibp(b.lower, b.upper)
    layers = tuple(Interval(l[0], u[0]) for l, u in out)
    return LayerBounds(eng.normal, b, layers, method="ibp")


def crown_bounds(
    network: Network,
    box: Box | tuple[ArrayLike, ArrayLike],
    *,
    spec_matrix: ArrayLike | None = None,
    spec_offset: ArrayLike | None = None,
    alpha: bool = False,
    alpha_steps: int = 20,
    intermediate: IntermediateMethod = "crown",
    refine_iters: int = 0,
    stop: Callable[[], bool] | None = None,
) -> LayerBounds:
    """Sound CROWN bounds on every pre-activation (see the module docstring).

    Args:
        network: any network (it is normalized first).
        box: a :class:`Box` or a ``(lower, upper)`` pair of shape ``(n_inputs,)``.
        spec_matrix: optional ``C`` of shape ``(k, n_outputs)``; the result's ``spec`` then
            bounds ``C f(x) + d``, computed from the merged rows ``C W_{L-1}``.
        spec_offset: optional ``d`` of shape ``(k,)`` (default zeros); needs ``spec_matrix``.
        alpha: optimise the family lower slopes (alpha-CROWN) for the final bounds (the spec
            rows, or the outputs when no spec is given). The intermediate bounds are plain
            CROWN.
        alpha_steps: number of projected-gradient steps for ``alpha``.
        intermediate: ``"crown"`` (back-substitute every hidden neuron) or ``"ibp"`` (IBP
            intermediate bounds, CROWN only for the last layer).
        refine_iters: with ``intermediate="crown"``, tighten the hidden-layer bounds by
            this many optimised-slope steps per layer
            (:meth:`BoundEngine.refine_intermediate`); 0: plain CROWN.
        stop: polled during the refinement; when it returns true the plain CROWN bounds
            are used.

    Returns:
        :class:`LayerBounds` with ``method="crown"`` (``"alpha-crown"`` when ``alpha``); each
        interval is intersected with IBP, so it is never looser than :func:`interval_bounds`.
    """
    _check_method(intermediate, ("ibp", "crown"), "intermediate")
    if alpha_steps < 0:
        raise InvalidOptionsError(f"alpha_steps={alpha_steps!r} must be >= 0")
    if spec_offset is not None and spec_matrix is None:
        raise InvalidOptionsError("spec_offset needs spec_matrix")
    eng = engine_for(network)
    b = _check_box(eng.normal, box)
    lo, hi = b.lower[None, :], b.upper[None, :]
    refined = None
    if refine_iters > 0 and intermediate == "crown":
        # (neurons it leaves without CROWN rows are stable: their relaxations are exact)
        refined = eng.refine_intermediate(lo, hi, int(refine_iters), stop=stop)
    if refined is not None:
        inter = refined
    else:
        inter = eng.intermediate(lo, hi, "crown" if intermediate == "crown" else "ibp", rows="all")
    n_out = eng.n_outputs
    steps = alpha_steps if alpha else 0
    eye = np.eye(n_out)
    out = _single_rows(eng, lo, hi, inter, np.vstack([eye, -eye]), np.zeros(2 * n_out), steps)
    ibp = eng.ibp(lo, hi)
    layers = [Interval(l[0], u[0]) for l, u in inter.pre]
    layers.append(
        Interval(np.maximum(out[:n_out], ibp[-1][0][0]), np.minimum(-out[n_out:], ibp[-1][1][0]))
    )
    spec: Interval | None = None
    if spec_matrix is not None:
        Cm, dv = _spec_arrays(spec_matrix, spec_offset, n_out)
        k = Cm.shape[0]
        C2, d2 = np.vstack([Cm, -Cm]), np.concatenate([-dv, dv])
        sb = np.maximum(
            _single_rows(eng, lo, hi, inter, C2, d2, steps), _ibp_rows(eng, lo, hi, C2, d2)
        )
        spec = Interval(sb[:k], -sb[k:])
    return LayerBounds(
        eng.normal, b, tuple(layers), method="alpha-crown" if alpha else "crown", spec=spec
    )


def _single_rows(
    eng: BoundEngine,
    lo: FloatArray,
    hi: FloatArray,
    inter: Intermediate,
    C: FloatArray,
    d: FloatArray,
    alpha_steps: int,
) -> FloatArray:
    """Lower bounds of ``C f(x) - d`` on one box (CROWN, alpha-CROWN, merged IBP)."""
    res = eng.bound(
        lo, hi, C, d, inter=inter, alpha_iters=alpha_steps, alpha_optimizer="adam", alpha_lr=0.1
    )
    return res.lower[0]


def spec_bounds(
    network: Network,
    box: Box | tuple[ArrayLike, ArrayLike],
    C: ArrayLike,
    d: ArrayLike | None = None,
    method: BoundMethod | str = "crown",
    *,
    alpha_steps: int = 20,
) -> tuple[FloatArray, FloatArray]:
    """Sound bounds on ``C f(x) + d`` for ``x`` in ``box``.

    The last Dense layer is merged with ``C`` (rows ``C W_{L-1}``), which is tighter than
    bounding ``f`` first. ``"crown"`` and ``"alpha-crown"`` results are intersected with the
    merged IBP bound, so they are never looser than ``"ibp"``.

    Args:
        network: any network.
        box: the input box.
        C: shape ``(k, n_outputs)`` (a 1-d array is one row).
        d: shape ``(k,)``; default zeros.
        method: ``"ibp"``, ``"crown"`` or ``"alpha-crown"``.
        alpha_steps: projected-gradient steps for ``"alpha-crown"``.

    Returns:
        ``(lower, upper)``, each of shape ``(k,)``.
    """
    _check_method(method, ("ibp", "crown", "alpha-crown"))
    eng = engine_for(network)
    Cm, dv = _spec_arrays(C, d, eng.n_outputs)
    b = _check_box(eng.normal, box)
    lo, hi = b.lower[None, :], b.upper[None, :]
    k = Cm.shape[0]
    C2, d2 = np.vstack([Cm, -Cm]), np.concatenate([-dv, dv])
    out = _ibp_rows(eng, lo, hi, C2, d2)
    if method != "ibp":
        # the cases of one property usually share their box: their hidden-layer bounds are
        # computed once (the same deterministic computation, remembered for the last box)
        key = (repr(lo.shape).encode() + lo.tobytes(), hi.tobytes())
        memo = eng.spec_intermediate
        if memo is not None and memo[0] == key:
            inter = memo[1]
        else:
            inter = eng.intermediate(lo, hi, "crown", rows="all")
            eng.spec_intermediate = (key, inter)
        steps = alpha_steps if method == "alpha-crown" else 0
        out = np.maximum(out, _single_rows(eng, lo, hi, inter, C2, d2, steps))
    return out[:k], -out[k:]


def _ibp_rows(
    eng: BoundEngine, lo: FloatArray, hi: FloatArray, C: FloatArray, d: FloatArray
) -> FloatArray:
    """Sound IBP lower bounds of ``C f(x) - d`` on one box, merged with the last layer."""
    inter = eng.intermediate(lo, hi, "ibp")
    lam, const, err = eng.spec_start(C, d, inter, _mag(lo, hi))
    if inter.pre:
        al, au = eng.rules[-1].interval(eng.activations[-1], *inter.pre[-1])
    else:
        al, au = lo, hi
    return eng._merged_ibp(lam, const, err, al, au)[0]


def output_bounds(
    network: Network,
    box: Box | tuple[ArrayLike, ArrayLike],
    method: BoundMethod | str = "crown",
) -> tuple[FloatArray, FloatArray]:
    """Sound bounds on the network outputs over ``box``.

    Args:
        network: any network.
        box: the input box.
        method: ``"ibp"``, ``"crown"`` (default; intersected with IBP) or ``"alpha-crown"``.

    Returns:
        ``(lower, upper)``, each of shape ``(n_outputs,)``.
    """
    _check_method(method, ("ibp", "crown", "alpha-crown"))
    if method == "ibp":
        lb = interval_bounds(network, box)
    else:
        lb = crown_bounds(network, box, alpha=method == "alpha-crown")
    return lb.output.lower.copy(), lb.output.upper.copy()


def property_case_bounds(
    network: Network, case: UnsafeCase, method: BoundMethod = "crown"
) -> tuple[FloatArray, FloatArray]:
    """Bounds on ``case.A @ f(x) - case.b`` over ``case.input_box``.

    The case is proven infeasible (cannot be violated) iff some row's lower bound is ``> 0``.

    Returns:
        ``(lower, upper)``, each of shape ``(case.n_rows,)``.
    """
    return spec_bounds(network, case.input_box, case.A, -case.b, method=method)


__all__ = [
    "RELAXATIONS",
    "BatchBounds",
    "BoundEngine",
    "BoundMethod",
    "Intermediate",
    "IntermediateMode",
    "Interval",
    "LayerBounds",
    "Relaxation",
    "child_crown_layers",
    "combine_rows",
    "crown_bounds",
    "dense_interval",
    "engine_for",
    "interval_bounds",
    "output_bounds",
    "property_case_bounds",
    "relax",
    "spec_bounds",
]
