r"""Sound bounds on the output difference of two networks over a box (FORMULATIONS.md 11.3).

For a *target* network :math:`f_t` and a *source* network :math:`f_s` on the same inputs, this
module bounds

.. math::  d(x) = f_t(x) - f_s(x), \qquad c^\top d(x) \quad (x \in X = [x_l, x_u])

per output and per spec row :math:`c`. Three methods:

**Interval difference propagation** (``"interval"``; ReluDiff ∩ NeuroDiff). Needs the same
normalized architecture (same layer widths and activations; e.g. magnitude-pruned or
weight-quantized copies). Boxes are propagated for the source activations :math:`a`, the target
activations :math:`\tilde a`, and their difference :math:`\tilde a - a`, starting from a zero
difference at the input. An affine layer with :math:`\Delta W = \tilde W - W`,
:math:`\Delta b = \tilde b - b` gives two sound forms, whose intersection is kept:

.. math::

    \delta z = \tilde W (\tilde a - a) + \Delta W a + \Delta b
             = W (\tilde a - a) + \Delta W \tilde a + \Delta b.

Each is also intersected with :math:`[\tilde z_l - z_u,\; \tilde z_u - z_l]`, and the two
pre-activation boxes are tightened with :math:`\tilde z = z + \delta z`. Activation rules for
:math:`\sigma(\tilde z) - \sigma(z)`, given :math:`z \in [l, u]`, :math:`\tilde z \in [l', u']`,
:math:`\delta = \tilde z - z \in [\delta_l, \delta_u]`:

* ReLU: ReluDiff (both active: :math:`\delta`; both inactive: 0; else
  :math:`[\min(0,\delta_l), \max(0,\delta_u)]`) intersected with NeuroDiff's nine cases.
* LeakyReLU(α) = α z + (1 − α) ReLU(z): :math:`\alpha\delta + (1-\alpha)\,\mathrm{ReLU\ rule}`.
* HardTanh: both in the linear part: :math:`\delta`; both saturated on the same side: 0; else
  (monotone, 1-Lipschitz) :math:`[\min(0,\delta_l), \max(0,\delta_u)]`.
* Sigmoid/Tanh: mean value theorem, :math:`\sigma(\tilde z) - \sigma(z) = \sigma'(\xi)\delta`
  with :math:`\xi` in the hull :math:`H` of both boxes, so the difference lies in the interval
  product :math:`[\min_H \sigma', \max_H \sigma'] \cdot [\delta_l, \delta_u]` (σ' is unimodal
  with its peak at 0).

Every rule is finally intersected with the box difference
:math:`[\sigma(l') - \sigma(u),\; \sigma(u') - \sigma(l)]`. The last layer is merged with the
spec rows :math:`C` (:math:`(C\tilde W)(\tilde a - a) + (C\Delta W) a + C\Delta b`). The rules
are the activation rules' own (:meth:`ActivationRule.diff
<nncert.verify.activations.ActivationRule.diff>`, looked up with
:func:`~nncert.verify.activations.rule_for`); a new activation registered there is handled here
too. Where the box of :math:`\delta` is the point 0, the difference is exactly 0.

**CROWN on the difference network** (``"crown"``). :func:`difference_network` stacks both
networks' hidden layers block-diagonally on a shared input, with last layer
:math:`[\tilde W^{(L)}, -W^{(L)}]`, so its output is :math:`f_t - f_s`; CROWN's
back-substitution captures the correlation through the shared input. Works when widths differ
(structured pruning, low rank) as long as depths and activation types match.

**Best** (``"best"``): the intersection of both when the interval method applies (each is
sound, so their intersection is).

Every bound holds for the exact (real-arithmetic) networks, like those of
:mod:`nncert.verify.bounds`: the interval method accounts for every rounding error (rigorous
affine enclosures from :func:`nncert.verify.rounding.affine_interval` with the rounding of
:math:`\Delta W` and of merged spec rows as entry-wise errors, outward activation intervals and
difference rules, and every sum or difference of bounds rounded down or up); the CROWN method is
the bound engine's. Terms that are exactly zero stay exactly zero, so identical networks (and
neurons folded away because they are stable) get a difference of exactly 0.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from nncert.verify.activations import (
    ActivationRule,
    relu_diff_neurodiff,
    relu_diff_reludiff,
    rule_for,
)
from nncert.verify.bounds import spec_bounds
from nncert.verify.errors import (
    InvalidOptionsError,
    InvalidPropertyError,
    TransferError,
)
from nncert.verify.network import (
    Activation,
    Dense,
    FloatArray,
    Network,
    dense_weight,
    is_sparse,
    prefer_sparse,
    row_abs_sums,
)
from nncert.verify.rounding import UNIT, affine_interval, down, gamma, inflate, sub_down, sub_up, up
from nncert.verify.spec import Box, UnsafeCase

BoolArray = NDArray[np.bool_]

DiffMethod = Literal["interval", "crown", "best"]
DIFF_METHODS: tuple[str, ...] = ("interval", "crown", "best")


@dataclass(frozen=True, eq=False)
class DiffBounds:
    """Bounds on :math:`f_t(x) - f_s(x)` over a box.

    Attributes:
        lower: shape ``(n_outputs,)``, lower bounds of each output difference.
        upper: shape ``(n_outputs,)``.
        spec_lower: shape ``(k,)``, lower bounds of :math:`C (f_t - f_s)` (``None`` without C).
        spec_upper: shape ``(k,)``.
        method: ``"interval"``, ``"crown"`` or ``"best"``.
    """

    lower: FloatArray
    upper: FloatArray
    spec_lower: FloatArray | None
    spec_upper: FloatArray | None
    method: str

    def intersect(self, other: DiffBounds, method: str = "best") -> DiffBounds:
        """The intersection of two sound bounds (still sound)."""
        sl = su = None
        if (
            self.spec_lower is not None
            and other.spec_lower is not None
            and self.spec_upper is not None
            and other.spec_upper is not None
        ):
            sl, su = _intersect(
                self.spec_lower, self.spec_upper, other.spec_lower, other.spec_upper
            )
        lo, hi = _intersect(self.lower, self.upper, other.lower, other.upper)
        return DiffBounds(lo, hi, sl, su, method)


def _intersect(
    la: FloatArray, ua: FloatArray, lb: FloatArray, ub: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Intersection of two sound intervals; where round-off makes it empty, their hull."""
    lo, hi = np.maximum(la, lb), np.minimum(ua, ub)
    empty = lo > hi
    if np.any(empty):
        lo = np.where(empty, np.minimum(la, lb), lo)
        hi = np.where(empty, np.maximum(ua, ub), hi)
    return lo, hi


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def _box(box: Box | tuple[ArrayLike, ArrayLike], n: int) -> Box:
    b = Box.from_pair(box)
    if b.dim != n:
        raise InvalidPropertyError(f"box has {b.dim} dimensions but the networks have {n} inputs")
    return b


def _spec_matrix(C: ArrayLike | None, n_out: int) -> FloatArray | None:
    if C is None:
        return None
    Cm = np.asarray(C, dtype=np.float64)
    if Cm.ndim == 1:
        Cm = Cm.reshape(1, -1)
    if Cm.ndim != 2 or Cm.shape[1] != n_out or not np.all(np.isfinite(Cm)):
        raise InvalidPropertyError(
            f"spec matrix must be finite with shape (k, {n_out}), got {np.shape(C)}"
        )
    return Cm


def _check_inputs(target: Network, source: Network) -> None:
    if target.n_inputs != source.n_inputs or target.n_outputs != source.n_outputs:
        raise TransferError(
            f"networks differ in shape: target {target.n_inputs}->{target.n_outputs}, "
            f"source {source.n_inputs}->{source.n_outputs}"
        )


def _same_architecture(target: Network, source: Network) -> str | None:
    """``None`` when the interval method applies, else why not."""
    if target.n_inputs != source.n_inputs or target.n_outputs != source.n_outputs:
        return "input/output sizes differ"
    # shapes and activations only: the normal forms as stored (a sparse layer stays sparse)
    dt, at = target.affine_and_activations()
    ds, as_ = source.affine_and_activations()
    if len(dt) != len(ds):
        return f"depths differ ({len(dt)} vs {len(ds)} affine layers)"
    for k, (lt, ls) in enumerate(zip(dt, ds)):
        if lt.weight.shape != ls.weight.shape:
            return f"affine layer {k} shapes differ ({lt.weight.shape} vs {ls.weight.shape})"
    for k, (a, b) in enumerate(zip(at, as_)):
        if a != b:
            return f"activation {k} differs ({a!r} vs {b!r})"
    return None


# --------------------------------------------------------------------------------------------
# Activation difference rules: (act, l, u, l', u', dl, du) -> (lo, hi) bounds of
# sigma(z') - sigma(z) with z in [l, u], z' in [l', u'], z' - z in [dl, du]; they live with
# the activation rules (ActivationRule.diff), ``rules=`` overrides them per type
# --------------------------------------------------------------------------------------------

ActDiffRule = Callable[
    [Any, FloatArray, FloatArray, FloatArray, FloatArray, FloatArray, FloatArray],
    tuple[FloatArray, FloatArray],
]


def _diff_rule(act: Activation, rules: Mapping[type, ActDiffRule | ActivationRule] | None) -> Any:
    """The difference rule of ``act``: an override from ``rules`` or the rule table's."""
    over = None if rules is None else rules.get(type(act))
    if over is None:
        return rule_for(act).diff
    if isinstance(over, ActivationRule):
        return over.diff
    return over


# --------------------------------------------------------------------------------------------
# (a) interval difference propagation, rigorous in floating point
# --------------------------------------------------------------------------------------------

#: a block of a rigorous linear enclosure: (matrix, lower, upper, entry-wise error of the
#: matrix against the exact one or None)
_Block = tuple[FloatArray, FloatArray, FloatArray, FloatArray | None]


def _active_rows(W: FloatArray, lo: FloatArray, hi: FloatArray) -> BoolArray:
    """Rows with some ``W_ij != 0`` whose box entry ``j`` is not the point 0."""
    used = ((lo != 0.0) | (hi != 0.0)).astype(np.float64)
    return np.asarray(((W != 0.0).astype(np.float64) @ used) > 0.0)


def _enclose(
    blocks: list[_Block], bias: FloatArray, bias_err: FloatArray | None
) -> tuple[FloatArray, FloatArray]:
    r"""Rigorous enclosure of :math:`\sum_k \hat M_k v_k + \hat b` over the boxes of the
    :math:`v_k`, where the exact matrices and bias differ from the float ones by at most the
    given entry-wise errors (``|M_exact - M| <= err``, ``|b_exact - b| <= bias_err``).

    One :func:`~nncert.verify.rounding.affine_interval` over the stacked blocks, widened by
    :math:`\sum_k err_k \max(|lo_k|, |hi_k|) + bias\_err` (inflated for its own rounding).
    Rows whose every term is exactly zero (each non-zero matrix entry meets a box that is the
    point 0, bias and errors 0) are exactly 0, as in real arithmetic: identical networks keep
    a difference of exactly 0.
    """
    W = _stack([m for m, _, _, _ in blocks], vertical=False)
    lo = np.concatenate([l for _, l, _, _ in blocks])
    hi = np.concatenate([h for _, _, h, _ in blocks])
    err = np.zeros(W.shape[0]) if bias_err is None else np.asarray(bias_err, dtype=np.float64)
    err_on = err != 0.0
    for _m, l, h, e in blocks:
        if e is not None:
            mag = np.maximum(np.abs(l), np.abs(h))
            err = err + e @ mag
            err_on = err_on | _active_rows(e, l, h)
    n = W.shape[1] + 4
    extra = np.where(err_on, inflate(err, n), 0.0)
    out_lo, out_hi = affine_interval(W, bias, lo, hi, extra=extra)
    zero = ~_active_rows(W, lo, hi) & (bias == 0.0) & ~err_on
    return np.where(zero, 0.0, out_lo), np.where(zero, 0.0, out_hi)


def _composition(d: Dense, a_lo: FloatArray, a_hi: FloatArray) -> FloatArray | None:
    """Bound on ``|(W_exact a + b_exact) - (W a + b)|`` of a composed Dense layer, or None."""
    if d.exact:
        return None
    mag = float(np.max(np.maximum(np.abs(a_lo), np.abs(a_hi)), initial=0.0))
    err = np.zeros(d.n_out)
    if d.weight_error is not None:
        err = err + d.weight_error * mag
    if d.bias_error is not None:
        err = err + d.bias_error
    return inflate(err, 4)


def _add_err(*errs: FloatArray | None) -> FloatArray | None:
    """Sum of error bounds, inflated for its rounding; exactly 0 where every term is 0."""
    present = [e for e in errs if e is not None]
    if not present:
        return None
    total = present[0]
    on = present[0] != 0.0
    for e in present[1:]:
        total = total + e
        on = on | (e != 0.0)
    return np.where(on, inflate(total, len(present)), 0.0)


def _layer_diff(
    Wt: Dense,
    Ws: Dense,
    sl: FloatArray,
    su: FloatArray,
    tl: FloatArray,
    tu: FloatArray,
    dl: FloatArray,
    du: FloatArray,
    M: FloatArray | None = None,
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
    r"""Rigorous boxes of :math:`z = M(W_s a + b_s)`, :math:`\tilde z = M(W_t \tilde a + b_t)`
    and :math:`\tilde z - z` (``M`` the spec rows, or the identity when ``None``).

    Both difference forms :math:`W_t \delta + \Delta W a + \Delta b` and
    :math:`W_s \delta + \Delta W \tilde a + \Delta b` and the box difference
    :math:`[\tilde z_l - z_u, \tilde z_u - z_l]` are intersected. :math:`\Delta W` is
    :math:`fl(W_t - W_s)`, within :math:`u|fl(\Delta W)|` of the exact difference; a merged
    ``M W`` errs by at most :math:`\gamma_n |M| |W|` entry-wise; the layers' composition errors
    (:attr:`Dense.weight_error`) enter as bias errors. Error terms are exactly 0 where their
    source is (``Delta W = 0`` entries, an exact layer), so identical layers give exact zeros.

    Returns:
        ``(zs_lo, zs_hi, zt_lo, zt_hi, dz_lo, dz_hi)``.
    """
    two_u = 2.0 * UNIT
    # a lowered convolution (sparse storage) keeps CSR arithmetic on the identity path: the
    # same maths, fl(W_t - W_s) keeps only the entries that differ and every error term lives
    # on those entries; with spec rows (a small last layer) the products are dense
    sparse = M is None and (Wt.sparse or Ws.sparse)
    if sparse:
        Wt_w, Ws_w = _csr(Wt.weight), _csr(Ws.weight)
        D: Any = Wt_w - Ws_w
        D.eliminate_zeros()
        aD: Any = abs(D)
    else:
        Wt_w = dense_weight(Wt.weight, "difference bounds")
        Ws_w = dense_weight(Ws.weight, "difference bounds")
        D = Wt_w - Ws_w
        aD = np.abs(D)
    db = Wt.bias - Ws.bias
    adb = np.abs(db)
    comp_t = _composition(Wt, tl, tu)
    comp_s = _composition(Ws, sl, su)
    e_t: FloatArray | None = None
    e_s: FloatArray | None = None
    eb_t: FloatArray | None = None
    eb_s: FloatArray | None = None
    if M is None:
        At, As, bt, bs, Dm, dbm = Wt_w, Ws_w, Wt.bias, Ws.bias, D, db
        if sparse:
            e_D = aD.copy()
            e_D.data = inflate(two_u * e_D.data, 1)
        else:
            e_D = np.where(D != 0.0, inflate(two_u * aD, 1), 0.0)
        e_db = np.where(db != 0.0, inflate(two_u * adb, 1), 0.0)
    else:
        n = M.shape[1]
        aM = np.abs(M)
        pM = (M != 0.0).astype(np.float64)
        g = gamma(n)
        At, As, Dm = M @ Wt_w, M @ Ws_w, M @ D
        bt, bs, dbm = M @ Wt.bias, M @ Ws.bias, M @ db
        e_t = inflate(g * (aM @ np.abs(Wt_w)), n)
        e_s = inflate(g * (aM @ np.abs(Ws_w)), n)
        eb_t = inflate(g * (aM @ np.abs(Wt.bias)), n)
        eb_s = inflate(g * (aM @ np.abs(Ws.bias)), n)
        on_D = (pM @ (D != 0.0).astype(np.float64)) > 0.0
        on_db = (pM @ (db != 0.0).astype(np.float64)) > 0.0
        e_D = np.where(on_D, inflate((g + two_u) * (aM @ aD), n), 0.0)
        e_db = np.where(on_db, inflate((g + two_u) * (aM @ adb), n), 0.0)
        comp_t = None if comp_t is None else inflate(aM @ comp_t, n)
        comp_s = None if comp_s is None else inflate(aM @ comp_s, n)
    zsl, zsu = _enclose([(As, sl, su, e_s)], bs, _add_err(eb_s, comp_s))
    ztl, ztu = _enclose([(At, tl, tu, e_t)], bt, _add_err(eb_t, comp_t))
    both = _add_err(e_db, comp_t, comp_s)
    l1, u1 = _enclose([(At, dl, du, e_t), (Dm, sl, su, e_D)], dbm, both)
    l2, u2 = _enclose([(As, dl, du, e_s), (Dm, tl, tu, e_D)], dbm, both)
    dzl = np.maximum(np.maximum(l1, l2), sub_down(ztl, zsu))
    dzu = np.minimum(np.minimum(u1, u2), sub_up(ztu, zsl))
    return zsl, zsu, ztl, ztu, dzl, dzu


def interval_difference(
    target: Network,
    source: Network,
    box: Box | tuple[ArrayLike, ArrayLike],
    C: ArrayLike | None = None,
    *,
    rules: Mapping[type, ActDiffRule | ActivationRule] | None = None,
) -> DiffBounds:
    """Interval difference propagation (ReluDiff ∩ NeuroDiff; see the module docstring).

    Every bound holds for the exact (real-arithmetic) networks: affine steps are rigorous
    enclosures (:func:`_layer_diff`), activation intervals and difference rules are rounded
    outwards by their rules, and every sum or difference of bounds is rounded down or up.

    Args:
        target: :math:`f_t`.
        source: :math:`f_s`, with the same normalized architecture as ``target``.
        box: the input box.
        C: optional spec rows, shape ``(k, n_outputs)``.
        rules: overrides of the activation rules' difference rules by activation type: a
            callable ``(act, l, u, l', u', dl, du) -> (lo, hi)`` or an
            :class:`~nncert.verify.activations.ActivationRule` (its ``diff``).

    Returns:
        :class:`DiffBounds` with ``method="interval"``.

    Raises:
        TransferError: the architectures differ (use ``"crown"`` then).
        UnsupportedLayerError: an activation without a difference rule.
    """
    why = _same_architecture(target, source)
    if why is not None:
        raise TransferError(f"interval difference bounds need the same architecture: {why}")
    # the normal forms as stored: _layer_diff keeps a sparse layer sparse
    dt, at = target.affine_and_activations()
    ds, _ = source.affine_and_activations()
    b = _box(box, target.n_inputs)
    Cm = _spec_matrix(C, target.n_outputs)
    sl, su = b.lower, b.upper
    tl, tu = b.lower, b.upper
    dl = np.zeros(b.dim)
    du = np.zeros(b.dim)
    for k in range(len(dt) - 1):
        zsl, zsu, ztl, ztu, dzl, dzu = _layer_diff(dt[k], ds[k], sl, su, tl, tu, dl, du)
        # z~ = z + dz and z = z~ - dz: intersect (every box is sound, so they meet)
        ztl, ztu = np.maximum(ztl, down(zsl + dzl)), np.minimum(ztu, up(zsu + dzu))
        zsl, zsu = np.maximum(zsl, sub_down(ztl, dzu)), np.minimum(zsu, sub_up(ztu, dzl))
        act: Activation = at[k]
        rl, ru = _diff_rule(act, rules)(act, zsl, zsu, ztl, ztu, dzl, dzu)
        # sigma(z + 0) - sigma(z) = 0 exactly, whatever sigma
        point = (dzl == 0.0) & (dzu == 0.0)
        rl, ru = np.where(point, 0.0, rl), np.where(point, 0.0, ru)
        rule = rule_for(act)
        sl, su = rule.interval(act, zsl, zsu)
        tl, tu = rule.interval(act, ztl, ztu)
        dl, du = np.maximum(rl, sub_down(tl, su)), np.minimum(ru, sub_up(tu, sl))
        tl, tu = np.maximum(tl, down(sl + dl)), np.minimum(tu, up(su + du))
        sl, su = np.maximum(sl, sub_down(tl, du)), np.minimum(su, sub_up(tu, dl))

    def final(M: FloatArray | None) -> tuple[FloatArray, FloatArray]:
        """Bounds of ``M (z_t - z_s)`` at the last layer, merged with ``M``."""
        return _layer_diff(dt[-1], ds[-1], sl, su, tl, tu, dl, du, M)[4:]

    lo, hi = final(None)
    sl_, su_ = (None, None) if Cm is None else final(Cm)
    return DiffBounds(lo, hi, sl_, su_, "interval")


# --------------------------------------------------------------------------------------------
# (b) CROWN on the difference network
# --------------------------------------------------------------------------------------------


def _csr(w: Any) -> Any:
    """``w`` as a scipy CSR array (a sparse weight is one already)."""
    if is_sparse(w):
        return w
    import scipy.sparse as sp

    return sp.csr_array(w)


def _stored(w: Any) -> Any:
    """A stacked weight in the IR's storage rule: sparse under
    :func:`~nncert.verify.network.prefer_sparse`, else dense (the same matrix either way)."""
    if not is_sparse(w):
        return w
    rows, cols = (int(d) for d in w.shape)
    return w if prefer_sparse(rows, cols, int(w.nnz)) else np.asarray(w.toarray())


def _block_diag(A: Any, B: Any) -> Any:
    if is_sparse(A) or is_sparse(B):
        import scipy.sparse as sp

        return _stored(sp.block_diag([A, B], format="csr"))
    out = np.zeros((A.shape[0] + B.shape[0], A.shape[1] + B.shape[1]))
    out[: A.shape[0], : A.shape[1]] = A
    out[A.shape[0] :, A.shape[1] :] = B
    return out


def _stack(blocks: Sequence[Any], *, vertical: bool) -> Any:
    """``np.vstack`` / ``np.hstack`` of weights, sparse when one is (and the rule says so)."""
    if any(is_sparse(b) for b in blocks):
        import scipy.sparse as sp

        joined = (sp.vstack if vertical else sp.hstack)(list(blocks), format="csr")
        return _stored(joined)
    return np.vstack(blocks) if vertical else np.hstack(blocks)


def _errors(d: Dense) -> tuple[FloatArray, FloatArray]:
    """``d``'s composition error bounds, zeros where the layer is exact."""
    z = np.zeros(d.n_out)
    return (
        z if d.weight_error is None else d.weight_error,
        z if d.bias_error is None else d.bias_error,
    )


def _stacked(layers: Sequence[Dense], weight: Any, bias: FloatArray) -> Dense:
    """A Dense layer whose rows are those of ``layers`` in order, carrying their composition
    errors: the rows compute the same as before, on an input whose magnitude bounds each part
    (stacking or block-diagonal placement adds no arithmetic)."""
    errs = [_errors(d) for d in layers]
    return Dense(
        weight,
        bias,
        np.concatenate([e[0] for e in errs]),
        np.concatenate([e[1] for e in errs]),
    )


def difference_network(a: Network, b: Network) -> Network:
    """The network :math:`x \\mapsto f_a(x) - f_b(x)` (both networks side by side).

    Layer 1 stacks both first layers on the shared input (``[W_a; W_b]``), hidden layers are
    block-diagonal (``diag(W_a, W_b)``), the last layer is ``[W_a, -W_b]`` with bias
    ``b_a - b_b``. Widths may differ; depths and activations must match. Sparse layers (a
    lowered convolution) are stacked sparse, so the bound engine's sparse products apply.

    The difference network is sound for the *exact* networks: a composed layer's
    :attr:`~nncert.verify.network.Dense.weight_error` and ``bias_error`` are carried into
    the stacked rows, and the last layer records ``e_a + e_b`` (its input ``[a_a; a_b]``
    bounds both parts' magnitudes) plus the rounding of ``fl(b_a - b_b)``
    (:math:`2u|fl(b_a - b_b)|`, zero where the biases are equal).

    Raises:
        TransferError: different input/output sizes, depths or activations.

    Examples:
        >>> import numpy as np
        >>> from nncert.verify.network import Dense, Network, ReLU
        >>> n = Network((Dense([[1.0]], [0.0]), ReLU(), Dense([[2.0]], [1.0])), (1,))
        >>> float(difference_network(n, n).forward(np.array([0.5]))[0])
        0.0
    """
    _check_inputs(a, b)
    da, aa = a.affine_and_activations()
    db, ab = b.affine_and_activations()
    if len(da) != len(db):
        raise TransferError(
            f"difference_network: depths differ ({len(da)} vs {len(db)} affine layers)"
        )
    for k, (x, y) in enumerate(zip(aa, ab)):
        if x != y:
            raise TransferError(f"difference_network: activation {k} differs ({x!r} vs {y!r})")
    L = len(da)

    def last(weight: Any) -> Dense:
        bias = da[-1].bias - db[-1].bias
        (wa, ba), (wb, bb) = _errors(da[-1]), _errors(db[-1])
        # |exact - fl(b_a - b_b)| <= u |fl(.)| (round to nearest), inflated like _layer_diff's
        sub = np.where(bias != 0.0, inflate(2.0 * UNIT * np.abs(bias), 1), 0.0)
        on_w, on_b = wa + wb != 0.0, (ba + bb != 0.0) | (sub != 0.0)
        return Dense(
            weight,
            bias,
            np.where(on_w, inflate(wa + wb, 2), 0.0),
            np.where(on_b, inflate(ba + bb + sub, 3), 0.0),
        )

    if L == 1:
        # the exact W_a - W_b may not be representable: its rounding, at most
        # u |fl(W_a - W_b)| entry-wise, is a weight error of u * (row sums of |W|)
        lone = last(da[0].weight - db[0].weight)
        rows = row_abs_sums(lone.weight)
        we = np.zeros(lone.n_out) if lone.weight_error is None else lone.weight_error
        we = np.where(rows != 0.0, inflate(we + 2.0 * UNIT * rows, lone.n_in + 2), we)
        lone = Dense(lone.weight, lone.bias, we, lone.bias_error)
        return Network((lone,), a.input_shape, name=f"{a.name}-{b.name}")
    layers: list[Any] = [
        _stacked(
            [da[0], db[0]],
            _stack([da[0].weight, db[0].weight], vertical=True),
            np.concatenate([da[0].bias, db[0].bias]),
        ),
        aa[0],
    ]
    for k in range(1, L - 1):
        layers.append(
            _stacked(
                [da[k], db[k]],
                _block_diag(da[k].weight, db[k].weight),
                np.concatenate([da[k].bias, db[k].bias]),
            )
        )
        layers.append(aa[k])
    layers.append(last(_stack([da[-1].weight, -db[-1].weight], vertical=False)))
    return Network(tuple(layers), a.input_shape, name=f"{a.name}-{b.name}")


def crown_difference(
    target: Network,
    source: Network,
    box: Box | tuple[ArrayLike, ArrayLike],
    C: ArrayLike | None = None,
) -> DiffBounds:
    """CROWN bounds on :math:`C (f_t - f_s)` via :func:`difference_network`.

    Raises:
        TransferError: depths or activations differ.
    """

    diff = difference_network(target, source)
    b = _box(box, target.n_inputs)
    Cm = _spec_matrix(C, target.n_outputs)
    lo, hi = spec_bounds(diff, b, np.eye(target.n_outputs), method="crown")
    sl = su = None
    if Cm is not None:
        sl, su = spec_bounds(diff, b, Cm, method="crown")
    return DiffBounds(lo, hi, sl, su, "crown")


# --------------------------------------------------------------------------------------------
# (c) front door
# --------------------------------------------------------------------------------------------


def difference_bounds(
    target: Network,
    source: Network,
    box: Box | tuple[ArrayLike, ArrayLike],
    C: ArrayLike | None = None,
    *,
    method: DiffMethod | str = "best",
) -> DiffBounds:
    """Sound bounds on :math:`f_t(x) - f_s(x)` (and :math:`C(f_t - f_s)`) over ``box``.

    Args:
        target: :math:`f_t`.
        source: :math:`f_s`.
        box: the input box.
        C: optional spec rows, shape ``(k, n_outputs)``.
        method: ``"interval"`` (same architecture), ``"crown"`` (same depth and activations)
            or ``"best"`` (their intersection where both apply, else the one that does).

    Raises:
        TransferError: no method applies to this pair of networks.
        InvalidOptionsError: unknown ``method``.

    Examples:
        >>> import numpy as np
        >>> from nncert.verify.network import Dense, Network, ReLU
        >>> n = Network((Dense([[1.0], [-1.0]], [0.0, 0.0]), ReLU(), Dense([[1.0, 1.0]], [0.0])),
        ...             (1,))
        >>> d = difference_bounds(n, n, ([-1.0], [1.0]))
        >>> float(d.lower[0]), float(d.upper[0])
        (0.0, 0.0)
    """
    if method not in DIFF_METHODS:
        raise InvalidOptionsError(f"method={method!r} must be one of {', '.join(DIFF_METHODS)}")
    _check_inputs(target, source)
    if method == "interval":
        return interval_difference(target, source, box, C)
    if method == "crown":
        return crown_difference(target, source, box, C)
    crown: DiffBounds | None
    try:
        crown = crown_difference(target, source, box, C)
    except TransferError:
        crown = None
    interval: DiffBounds | None = None
    if _same_architecture(target, source) is None:
        interval = interval_difference(target, source, box, C)
    if crown is None and interval is None:
        raise TransferError(
            "no difference bound applies: the networks need the same depth and activations"
        )
    if crown is None and interval is not None:
        return replace(interval, method="best")
    if interval is None and crown is not None:
        return replace(crown, method="best")
    if crown is None or interval is None:  # pragma: no cover - excluded above
        raise TransferError("no difference bound applies")
    return crown.intersect(interval, "best")


def case_difference_bounds(
    target: Network,
    source: Network,
    cases: Sequence[UnsafeCase],
    *,
    method: DiffMethod | str = "best",
) -> list[tuple[FloatArray, FloatArray]]:
    r"""Per case, lower and upper bounds of :math:`A_{i,r}(f_t(x) - f_s(x))` over its box.

    Cases that share an input box (a robustness property's cases all do) share one
    :func:`difference_bounds` computation with their rows stacked: the bounds of a row do not
    depend on the other rows, so the result is that of one call per case, computed once per box.

    Raises:
        TransferError: no method applies to this pair of networks.
        InvalidOptionsError: unknown ``method``.
    """
    out: list[tuple[FloatArray, FloatArray]] = [(np.zeros(0), np.zeros(0))] * len(cases)
    groups: dict[bytes, list[int]] = {}
    for i, case in enumerate(cases):
        if case.n_rows:
            key = case.input_box.lower.tobytes() + case.input_box.upper.tobytes()
            groups.setdefault(key, []).append(i)
    for idx in groups.values():
        C = np.vstack([cases[i].A for i in idx])
        d = difference_bounds(target, source, cases[idx[0]].input_box, C, method=method)
        lo = np.asarray(d.spec_lower, dtype=np.float64)
        up = np.asarray(d.spec_upper, dtype=np.float64)
        k = 0
        for i in idx:
            r = cases[i].n_rows
            out[i] = (lo[k : k + r], up[k : k + r])
            k += r
    return out


__all__ = [
    "DIFF_METHODS",
    "DiffBounds",
    "DiffMethod",
    "case_difference_bounds",
    "crown_difference",
    "difference_bounds",
    "difference_network",
    "interval_difference",
    "relu_diff_neurodiff",
    "relu_diff_reludiff",
]
