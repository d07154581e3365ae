r"""Several networks in one query: the product network and the lowering of a relational case.

A VNN-LIB 2.0 query may declare networks ``N_1, ..., N_k`` (an original ``f`` and its pruned
``g``) and constrain their inputs and outputs together (:class:`~nncert.verify.spec.
RelationalProperty`). Every method of nncert decides one network, so the networks are joined
into one, and each relational case becomes a case of a :class:`~nncert.verify.spec.
MixedProperty` on it (constraints over outputs *and* inputs, decided end to end by
:func:`nncert.verify.verify` through :mod:`nncert.verify.lowering`).

**The product** (:func:`joint_network`). On the normal forms ``Dense, act, ..., Dense`` of the
networks, the joint network computes

.. math:: J(u) = [N_1(P_1 u); \dots; N_k(P_k u)],

where ``u`` is the joint input and ``P_k`` selects network ``k``'s inputs from it (two networks
whose inputs the query ties together, ``x_g = x_f``, read the same entries of ``u``). Its Dense
layer ``d`` is block diagonal, ``diag(W^1_d, ..., W^k_d)`` (the first one reads ``u`` through
the ``P_k``), and its activation ``d`` is the common activation of the networks at depth ``d``:
networks of the same depth pair up when their activations agree at every depth (the usual case:
pruning and quantization keep the architecture), otherwise the join is refused
(:class:`~nncert.verify.errors.UnsupportedLayerError`).

**Different depths.** A network ``N_k`` of depth ``L_k < L`` (``L`` the largest depth) finishes
early: its last Dense layer emits ``[y; -y]`` instead of ``y``, and each remaining activation
``\sigma`` (which must be ReLU or LeakyReLU with slope ``a``) is undone by the next Dense layer
through the exact identity

.. math:: \sigma(v) - \sigma(-v) = (1 + a) v \quad\text{for every real } v

(``v >= 0``: ``v - a(-v)``; ``v < 0``: ``a v - (-v)``; ReLU is ``a = 0``), so the carry layers
map ``[p; q] = [\sigma(v); \sigma(-v)]`` to ``c [p - q; q - p] = [v; -v]`` and the last one to
``c (p - q) = v``, with ``c = 1 / (1 + a)``. For ReLU ``c = 1`` and the carry is exact; otherwise
``c`` is rounded to the nearest float and the rounding recorded as a composition error of the
layer (below). HardTanh, Sigmoid, Tanh and the other activations cannot carry an unbounded
value exactly: a network that would need it is refused.

**Composition errors.** A :class:`~nncert.verify.network.Dense` layer may record
``weight_error_i, bias_error_i`` with ``|exact_i - computed_i| <= weight_error_i * max_k |a_k|
+ bias_error_i``, ``a`` its input. Each row of a joint layer is a row of one network's layer (or
a carry row) with zeros on the other blocks, so its exact and computed values are those of the
original row on the network's own block ``a^{(k)}``; since ``max_k |a^{(k)}_k| <= max_k |a_k|``
over the whole joint input, the original per-row errors stay valid bounds (looser, never
wrong). Carry rows with an inexact ``c`` have two non-zeros ``+-c``, so their error is
``2 |c - 1/(1+a)| max |a|``, recorded rounded up. A first layer whose network reads one
entry of ``u`` through two of its own inputs (the query says ``x_f[0] = x_f[1]``) adds the two
columns; the rounding of that sum is bounded in rational arithmetic and recorded likewise.

**Lowering a relational case** (:func:`lower_relational`). Bounds of a network's inputs may be
missing (``±inf``) when the query ties them to another network's inputs by rows ``x_g[i] -
x_f[i] <= 0`` and ``>= 0``. Such pairs of rows (two input columns, coefficients ``s, -s`` and
``-t, t`` with ``s, t > 0``, right-hand sides ``0``: exactly ``x_i = x_j``, checked on the
floats as given) are detected, the tied inputs merged into one entry of ``u`` whose box is the
intersection of theirs (empty: the case is infeasible and dropped), and the pair of rows
dropped. Every other row is kept, its input columns summed per entry of ``u`` (refused if a sum
is not exact). Cases that tie the same inputs share one joint network; when an entry of ``u``
is still unbounded, :class:`UnboundedInputError` says which (the bound engine needs finite
boxes). The ``equal-to`` relation is *not* read as tying the inputs: it says that ``g`` is the
same network as ``f`` (monotonicity queries compare ``f(x)`` with ``f(x')``), so only the rows
decide which inputs are equal.

Float64 forward: :class:`JointNetwork` evaluates every network as given on its part of ``u``,
so a witness is replayed against the original networks, not the carry.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np
from numpy.typing import ArrayLike

from nncert.verify.errors import InvalidPropertyError, UnsupportedLayerError
from nncert.verify.network import (
    Activation,
    Dense,
    FloatArray,
    LeakyReLU,
    Network,
    ReLU,
)
from nncert.verify.spec import Box, MixedProperty, RelationalCase, RelationalProperty, UnsafeCase


class UnboundedInputError(InvalidPropertyError):
    """An input of the joint network has no finite bound in some case."""


@dataclass(frozen=True, eq=False)
class JointNetwork(Network):
    """``J(u) = [N_1(u[s_1]); ...; N_k(u[s_k])]`` (see the module doc).

    Attributes:
        parts: the networks ``N_k`` as given.
        selections: ``s_k``, the positions in ``u`` of network ``k``'s inputs.
    """

    parts: tuple[Network, ...] = field(default=(), compare=False)
    selections: tuple[tuple[int, ...], ...] = field(default=(), compare=False)

    def split_input(self, u: ArrayLike) -> list[FloatArray]:
        """``[u[s_1], ..., u[s_k]]`` for one joint input ``u``."""
        a = np.asarray(u, dtype=np.float64).reshape(-1)
        return [a[list(s)].copy() for s in self.selections]

    def forward(self, x: ArrayLike) -> FloatArray:
        """Every network as given on its part of the joint input, outputs stacked (float64)."""
        if not self.parts:  # pragma: no cover - built only by joint_network
            return super().forward(x)
        a = np.asarray(x, dtype=np.float64)
        single = a.ndim == 1
        a = a.reshape(1, -1) if single else a.reshape(a.shape[0], -1)
        ys = [
            np.asarray(n.forward(a[:, list(s)]), dtype=np.float64).reshape(a.shape[0], -1)
            for n, s in zip(self.parts, self.selections)
        ]
        out = np.hstack(ys)
        return out[0] if single else out


def _up(value: Fraction) -> float:
    """A float ``>= value`` (``value >= 0``)."""
    f = float(value)
    return f if Fraction(f) >= value else float(np.nextafter(f, np.inf))


def _carry_factor(act: Activation) -> tuple[float, float]:
    """``(c, err)``: the float ``c`` nearest ``1 / (1 + a)`` and ``|c - 1/(1+a)|`` rounded up,
    for the carry through ``act`` (ReLU: ``a = 0``)."""
    a = Fraction(act.alpha) if isinstance(act, LeakyReLU) else Fraction(0)
    exact = 1 / (1 + a)
    c = float(exact)
    return c, _up(abs(Fraction(c) - exact))


def _first_weight(w: FloatArray, sel: Sequence[int], m: int) -> tuple[FloatArray, FloatArray]:
    """``W P`` (``P`` the selection of ``sel`` from ``m`` entries) and a per-row bound on the
    rounding of the column sums (zero unless ``sel`` repeats an entry)."""
    out = np.zeros((w.shape[0], m))
    np.add.at(out.T, np.asarray(sel, dtype=np.intp), w.T)
    err = np.zeros(w.shape[0])
    counts = np.bincount(np.asarray(sel, dtype=np.intp), minlength=m)
    for j in np.flatnonzero(counts > 1):
        cols = [c for c, s in enumerate(sel) if s == j]
        for i in range(w.shape[0]):
            exact = sum((Fraction(float(w[i, c])) for c in cols), Fraction(0))
            delta = abs(Fraction(float(out[i, j])) - exact)
            if delta:
                err[i] = _up(Fraction(float(err[i])) + delta)
    return out, err


def _join_errors(errs: list[FloatArray | None], sizes: list[int]) -> FloatArray | None:
    if all(e is None for e in errs):
        return None
    return np.concatenate([np.zeros(n) if e is None else e for e, n in zip(errs, sizes)])


def _add_errors(a: FloatArray | None, b: FloatArray) -> FloatArray | None:
    """``a + b`` rounded up (``None``: zero)."""
    if a is None:
        return b if np.any(b > 0.0) else None
    return np.nextafter(a + b, np.inf)  # the nearest float's successor is >= a + b


def joint_network(
    networks: Sequence[Network],
    selections: Sequence[Sequence[int]] | None = None,
    n_inputs: int | None = None,
    *,
    names: Sequence[str] | None = None,
) -> JointNetwork:
    """The product network ``J(u) = [N_1(u[s_1]); ...; N_k(u[s_k])]`` (see the module doc).

    Args:
        networks: ``N_1, ..., N_k``.
        selections: ``s_k``, the positions in ``u`` of network ``k``'s inputs (default:
            separate inputs, ``u = [x_1; ...; x_k]``).
        n_inputs: the length of ``u`` (default: one more than the largest position).
        names: the networks' names for messages (default: their ``name`` or ``N1, N2, ...``).

    Raises:
        UnsupportedLayerError: two networks have different activations at one depth, or a
            shorter network would be carried through an activation other than ReLU and
            LeakyReLU.
        InvalidPropertyError: selections that do not fit the networks.
    """
    nets = list(networks)
    if not nets:
        raise InvalidPropertyError("joint_network: no networks")
    labels = (
        list(names) if names is not None else [n.name or f"N{i + 1}" for i, n in enumerate(nets)]
    )
    if selections is None:
        offsets = np.cumsum([0] + [n.n_inputs for n in nets])
        sels = [tuple(range(int(offsets[i]), int(offsets[i + 1]))) for i in range(len(nets))]
    else:
        sels = [tuple(int(i) for i in s) for s in selections]
    if len(sels) != len(nets) or any(len(s) != n.n_inputs for s, n in zip(sels, nets)):
        raise InvalidPropertyError("joint_network: a selection does not fit its network")
    m = n_inputs if n_inputs is not None else 1 + max((max(s) for s in sels if s), default=-1)
    if m <= 0 or any(i < 0 or i >= m for s in sels for i in s):
        raise InvalidPropertyError("joint_network: selection out of range")
    split = [n.affine_and_activations() for n in nets]
    depth = max(len(d) for d, _ in split)
    # the activation at each depth: every network still running there must agree
    acts: list[Activation] = []
    for j in range(depth - 1):
        running = [(labels[k], a[j]) for k, (_, a) in enumerate(split) if j < len(a)]
        act = running[0][1]
        for name, other in running[1:]:
            if other != act:
                raise UnsupportedLayerError(
                    f"cannot join networks {running[0][0]} and {name}: activation {j + 1} is "
                    f"{act!r} in {running[0][0]} but {other!r} in {name}"
                )
        for k, (d, _) in enumerate(split):
            if len(d) - 1 <= j and not isinstance(act, ReLU | LeakyReLU):
                raise UnsupportedLayerError(
                    f"cannot join networks: {labels[k]} ({len(d)} Dense layers) would be "
                    f"carried through activation {j + 1} ({act!r}) of a deeper network; only "
                    "ReLU and LeakyReLU carry values exactly"
                )
        acts.append(act)
    layers: list[Dense | Activation] = []
    widths = [0] * len(nets)  # each block's current width (after the previous Dense)
    for d_idx in range(depth):
        blocks_w: list[FloatArray] = []
        blocks_b: list[FloatArray] = []
        werrs: list[FloatArray | None] = []
        berrs: list[FloatArray | None] = []
        for k, (dense, _) in enumerate(split):
            L_k = len(dense)
            if d_idx < L_k:
                layer = dense[d_idx]
                if d_idx == 0:
                    w, extra = _first_weight(layer.weight, sels[k], m)
                    werr = _add_errors(layer.weight_error, extra)
                else:
                    w, werr = layer.weight, layer.weight_error
                b, berr = layer.bias, layer.bias_error
                if d_idx == L_k - 1 and L_k < depth:  # finished early: emit [y; -y]
                    w, b = np.vstack([w, -w]), np.concatenate([b, -b])
                    werr = None if werr is None else np.concatenate([werr, werr])
                    berr = None if berr is None else np.concatenate([berr, berr])
            else:  # carry [p; q] = [act(v); act(-v)] to [v; -v] (or v on the last layer)
                o = widths[k] // 2
                c, e = _carry_factor(acts[d_idx - 1])
                eye = np.eye(o) * c
                row = np.hstack([eye, -eye])
                last = d_idx == depth - 1
                w = row if last else np.vstack([row, -row])
                b = np.zeros(w.shape[0])
                werr = np.full(w.shape[0], _up(2 * Fraction(e))) if e > 0.0 else None
                berr = None
            blocks_w.append(w)
            blocks_b.append(b)
            werrs.append(werr)
            berrs.append(berr)
        sizes = [w.shape[0] for w in blocks_w]
        if d_idx == 0:
            W = np.vstack(blocks_w)
        else:
            W = np.zeros((sum(sizes), sum(widths)))
            r = c0 = 0
            for k, w in enumerate(blocks_w):
                W[r : r + w.shape[0], c0 : c0 + widths[k]] = w
                r += w.shape[0]
                c0 += widths[k]
        layers.append(
            Dense(
                W,
                np.concatenate(blocks_b),
                _join_errors(werrs, sizes),
                _join_errors(berrs, sizes),
            )
        )
        widths = sizes
        if d_idx < depth - 1:
            layers.append(acts[d_idx])
    return JointNetwork(
        tuple(layers),
        (m,),
        name="+".join(labels),
        source=None,
        parts=tuple(nets),
        selections=tuple(sels),
    )


# --------------------------------------------------------------------------------------------
# Lowering a relational property
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class JointQuery:
    """One joint network and the mixed property its cases become.

    Attributes:
        network: the :class:`JointNetwork` (its ``selections`` map ``u`` to each network).
        prop: the cases, as a :class:`~nncert.verify.spec.MixedProperty` on ``network``.
        case_indices: the indices of these cases in the relational property.
    """

    network: JointNetwork
    prop: MixedProperty
    case_indices: tuple[int, ...]


def _find(parent: list[int], i: int) -> int:
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


def _ties(case: RelationalCase, n_x: int) -> tuple[list[int], np.ndarray]:
    """``(rep, keep)``: ``rep[i]`` the smallest input tied to input ``i`` by exact pairs of
    rows ``x_i <= x_j``, ``x_j <= x_i``; ``keep`` the rows that are not such a pair."""
    A, b = case.A, case.b
    le: dict[tuple[int, int], list[int]] = {}
    for r in range(A.shape[0]):
        nz = np.flatnonzero(A[r])
        if b[r] != 0.0 or nz.size != 2 or nz[1] >= n_x:
            continue
        i, j = int(nz[0]), int(nz[1])
        s, t = float(A[r, i]), float(A[r, j])
        if s != -t:
            continue
        key = (i, j) if s > 0 else (j, i)  # x_key0 <= x_key1
        le.setdefault(key, []).append(r)
    parent = list(range(n_x))
    keep = np.ones(A.shape[0], dtype=bool)
    for (i, j), rows in le.items():
        back = le.get((j, i))
        if back:
            keep[rows] = False
            keep[back] = False
            ri, rj = _find(parent, i), _find(parent, j)
            parent[max(ri, rj)] = min(ri, rj)
    return [_find(parent, i) for i in range(n_x)], keep


def lower_relational(
    networks: Sequence[Network], prop: RelationalProperty
) -> tuple[JointQuery, ...]:
    """The relational property as mixed properties on joint networks (see the module doc).

    The property holds iff every returned :attr:`JointQuery.prop` holds on its
    :attr:`JointQuery.network`; a case whose tied inputs have disjoint boxes is infeasible and
    appears in none (so ``()`` means the property holds vacuously).

    Args:
        networks: the networks, in :attr:`RelationalProperty.networks` order.
        prop: the relational property.

    Raises:
        InvalidPropertyError: a network does not fit its declaration, or a merged row
            coefficient is not exact.
        UnboundedInputError: an input stays unbounded after merging tied inputs.
        UnsupportedLayerError: the networks cannot be joined (:func:`joint_network`).
    """
    decls = prop.networks
    if len(networks) != len(decls):
        raise InvalidPropertyError(f"{len(decls)} networks declared, {len(networks)} given")
    for net, decl in zip(networks, decls):
        if net.n_inputs != decl.n_inputs or net.n_outputs != decl.n_outputs:
            raise InvalidPropertyError(
                f"network {decl.name}: the model has {net.n_inputs} inputs and {net.n_outputs} "
                f"outputs, the query declares {decl.n_inputs} and {decl.n_outputs}"
            )
    n_x, n_y = prop.n_inputs, prop.n_outputs
    owner = np.concatenate([np.full(d.n_inputs, k) for k, d in enumerate(decls)])
    names = [d.name for d in decls]
    groups: dict[tuple[int, ...], list[tuple[int, UnsafeCase]]] = {}
    for ci, case in enumerate(prop.cases):
        rep, keep = _ties(case, n_x)
        reps = sorted(set(rep))
        pos = {r: p for p, r in enumerate(reps)}
        sel = np.array([pos[r] for r in rep], dtype=np.intp)
        m = len(reps)
        lo = np.full(m, -np.inf)
        hi = np.full(m, np.inf)
        np.maximum.at(lo, sel, case.lower)
        np.minimum.at(hi, sel, case.upper)
        if np.any(lo > hi):
            continue  # tied inputs with disjoint boxes: no point, the case is infeasible
        bad = np.flatnonzero(~(np.isfinite(lo) & np.isfinite(hi)))
        if bad.size:
            first = next(i for i in range(n_x) if sel[i] == bad[0])
            k = int(owner[first])
            local = first - prop.input_slice(names[k]).start
            raise UnboundedInputError(
                f"case {ci}: input {local} of network {names[k]} has no finite bound (bound it "
                "in the query, or tie it to a bounded input by x_g[i] == x_f[i])"
            )
        A, b = case.A[keep], case.b[keep]
        Ax = np.zeros((A.shape[0], m))
        np.add.at(Ax.T, sel, A[:, :n_x].T)
        for p in np.flatnonzero(np.bincount(sel, minlength=m) > 1):
            cols = np.flatnonzero(sel == p)
            for r in range(A.shape[0]):
                exact = sum((Fraction(float(A[r, c])) for c in cols), Fraction(0))
                if Fraction(float(Ax[r, p])) != exact:
                    raise InvalidPropertyError(
                        f"case {ci}: row {r} has coefficients on tied inputs whose sum is not "
                        "a float"
                    )
        rows = np.hstack([A[:, n_x:], Ax])
        if rows.shape[0] == 0:  # no row: every point of the box is unsafe
            rows, b = np.zeros((1, n_y + m)), np.ones(1)
        key = tuple(int(s) for s in sel)
        groups.setdefault(key, []).append((ci, UnsafeCase(Box(lo, hi), rows, b)))
    out = []
    for key, items in groups.items():
        m = 1 + max(key)
        sels = [tuple(key[prop.input_slice(nm)]) for nm in names]
        joint = joint_network(networks, sels, m, names=names)
        mixed = MixedProperty(tuple(c for _, c in items), n_outputs=n_y, name=prop.name)
        out.append(JointQuery(joint, mixed, tuple(ci for ci, _ in items)))
    return tuple(out)


def relational_violation(
    prop: RelationalProperty, xs: Sequence[ArrayLike], ys: Sequence[ArrayLike]
) -> list[int]:
    """The indices of the cases of ``prop`` that the point ``x = [x_1; ...]``,
    ``y = [y_1; ...]`` satisfies (every bound and every row, in float64)."""
    x = np.concatenate([np.asarray(v, dtype=np.float64).reshape(-1) for v in xs])
    y = np.concatenate([np.asarray(v, dtype=np.float64).reshape(-1) for v in ys])
    z = np.concatenate([x, y])
    if not np.all(np.isfinite(z)):
        return []
    hits = []
    for ci, case in enumerate(prop.cases):
        if np.all(case.lower <= x) and np.all(x <= case.upper) and np.all(case.A @ z <= case.b):
            hits.append(ci)
    return hits


__all__ = [
    "JointNetwork",
    "JointQuery",
    "UnboundedInputError",
    "joint_network",
    "lower_relational",
    "relational_violation",
]
