"""Unstructured (magnitude) and structured (neuron) pruning on the numpy IR.

* :func:`magnitude_prune` zeroes the smallest weights by absolute value, per layer or globally
  (the numpy analogue of ``torch.nn.utils.prune.l1_unstructured`` /
  ``global_unstructured``). Shapes never change; biases are never pruned.
* :func:`structured_prune` removes whole hidden neurons: row ``j`` of ``W^(k)``, entry ``j`` of
  ``b^(k)`` and column ``j`` of ``W^(k+1)`` (the numpy analogue of Torch-Pruning). With
  ``compensate=True`` the next layer is refitted by ridge regression on an unlabeled
  calibration set (GRAIL-style), so that the pruned network reproduces the original
  pre-activations of layer ``k+1`` as closely as possible.

Both return ``(network, record)``; the record keeps the masks or kept-index maps that
certificate transfer needs (FORMULATIONS.md section 11).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from nncert.compression._common import (
    calibration_set,
    check_fraction,
    dense_positions,
    layer_inputs,
    layer_weight,
    select,
    stored,
)
from nncert.compression.records import RecordMixin
from nncert.verify.errors import InvalidOptionsError
from nncert.verify.network import Dense, FloatArray, Layer, Network, is_sparse

IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]


def _count_nonzero(network: Network) -> int:
    return sum(
        d.nnz + int(np.count_nonzero(d.bias))
        for d in network.dense_layers
    )


# --------------------------------------------------------------------------------------------
# Unstructured magnitude pruning
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MagnitudePruneRecord(RecordMixin):
    """What :func:`magnitude_prune` did.

    Attributes:
        sparsity: the requested fraction of zero weights.
        scope: ``"layer"`` (each layer separately) or ``"global"`` (one threshold).
        among: ``"all"`` (``sparsity`` is a fraction of all weights) or ``"nonzero"`` (of the
            weights that were non-zero before).
        layers: indices of the pruned Dense layers (among ``network.dense_layers``).
        masks: per pruned layer, a bool array of the weight's shape (``True`` = kept).
        layer_sparsity: per pruned layer, the achieved fraction of zero weights.
        achieved_sparsity: fraction of zero weights over all pruned layers.
        parameters_before: stored parameters (weights and biases) before.
        parameters_after: stored parameters after (unchanged: shapes are kept).
        nonzero_before: non-zero parameters before.
        nonzero_after: non-zero parameters after.
    """

    kind = "magnitude_prune"

    sparsity: float
    scope: str
    among: str
    layers: tuple[int, ...]
    masks: tuple[BoolArray, ...]
    layer_sparsity: tuple[float, ...]
    achieved_sparsity: float
    parameters_before: int
    parameters_after: int
    nonzero_before: int
    nonzero_after: int


def magnitude_prune(
    network: Network,
    sparsity: float,
    *,
    scope: Literal["layer", "global"] = "layer",
    layers: Sequence[int] | None = None,
    among: Literal["all", "nonzero"] = "all",
) -> tuple[Network, MagnitudePruneRecord]:
    r"""Zero the smallest-magnitude weights (unstructured pruning).

    With ``scope="layer"`` each selected layer loses ``round(sparsity * n)`` weights; with
    ``scope="global"`` the ``round(sparsity * N)`` smallest of all ``N`` selected weights go,
    so per-layer sparsity is uneven (as in ``torch.nn.utils.prune.global_unstructured``).
    With ``among="all"`` (default) ``n`` counts every weight of the layer and weights that are
    already zero count as pruned; with ``among="nonzero"`` only the non-zero weights are
    candidates and counted: ``round(sparsity * nnz)`` of them are zeroed. The latter is the
    one that bites on a lowered convolution (a matrix with a few non-zero entries per row,
    stored sparse), where "10% of all entries" is already zero and the call would change
    nothing. Ties are broken by position (a stable sort), so the result is deterministic and
    hits the requested count exactly. Biases are never pruned and no shape changes (the last
    layer keeps its outputs). A layer stored sparse stays sparse (same matrix storage rule as
    the importers, :func:`~nncert.verify.network.prefer_sparse`); unselected layers are kept
    as they are.

    Args:
        network: the network.
        sparsity: fraction of weights to zero, in ``[0, 1)``.
        scope: ``"layer"`` or ``"global"``.
        layers: indices into ``network.dense_layers`` to prune (negative counts from the end);
            default: every Dense layer.
        among: ``"all"`` or ``"nonzero"`` (what ``sparsity`` is a fraction of).

    Returns:
        ``(pruned network, record)``.

    Raises:
        InvalidOptionsError: on a sparsity outside ``[0, 1)``, an unknown scope or ``among``,
            or a bad index.
        UnsupportedLayerError: a selected sparse layer too large to densify.

    Examples:
        >>> net = Network((Dense([[1.0, -3.0], [0.5, 2.0]], [0.0, 1.0]),), input_shape=(2,))
        >>> pruned, rec = magnitude_prune(net, 0.5)
        >>> pruned.dense_layers[0].weight.tolist(), rec.achieved_sparsity
        ([[0.0, -3.0], [0.0, 2.0]], 0.5)
        >>> net = Network((Dense([[0.0, -3.0], [0.5, 2.0]], [0.0, 1.0]),), input_shape=(2,))
        >>> magnitude_prune(net, 0.25)[0].dense_layers[0].weight.tolist()  # the 0 counts
        [[0.0, -3.0], [0.5, 2.0]]
        >>> magnitude_prune(net, 0.4, among="nonzero")[0].dense_layers[0].weight.tolist()
        [[0.0, -3.0], [0.0, 2.0]]
    """
    s = check_fraction(sparsity, "sparsity")
    if scope not in ("layer", "global"):
        raise InvalidOptionsError(f"scope={scope!r} must be 'layer' or 'global'")
    if among not in ("all", "nonzero"):
        raise InvalidOptionsError(f"among={among!r} must be 'all' or 'nonzero'")
    positions = dense_positions(network)
    chosen = select(len(positions), layers, what="layers")
    weights = [layer_weight(network.dense_layers[i], "magnitude pruning") for i in chosen]
    flat_abs = [np.abs(w).reshape(-1) for w in weights]
    # candidates: flat positions that may be zeroed (ascending, so ties stay by position)
    cands = [np.arange(a.size) if among == "all" else np.flatnonzero(a) for a in flat_abs]
    masks_flat: list[BoolArray] = [np.ones(w.size, dtype=bool) for w in weights]
    if scope == "layer":
        for m, a, c in zip(masks_flat, flat_abs, cands):
            k = round(s * c.size)
            m[c[np.argsort(a[c], kind="stable")[:k]]] = False
    elif flat_abs:
        allw = np.concatenate([a[c] for a, c in zip(flat_abs, cands)])
        k = round(s * allw.size)
        gone = np.zeros(allw.size, dtype=bool)
        gone[np.argsort(allw, kind="stable")[:k]] = True
        offsets = np.cumsum([0] + [c.size for c in cands])
        for j, (m, c) in enumerate(zip(masks_flat, cands)):
            m[c[gone[offsets[j] : offsets[j + 1]]]] = False
    masks = tuple(m.reshape(w.shape) for m, w in zip(masks_flat, weights))
    new_layers: list[Layer] = list(network.layers)
    new_weights: list[FloatArray] = []
    for i, m, w in zip(chosen, masks, weights):
        d = network.dense_layers[i]
        new_weights.append(np.where(m, w, 0.0))
        new_layers[positions[i]] = Dense(stored(new_weights[-1]), d.bias)
    pruned = network.replace_layers(new_layers)
    zeros = [int(np.count_nonzero(w == 0.0)) for w in new_weights]
    sizes = [w.size for w in weights]
    for m in masks:
        m.setflags(write=False)
    rec = MagnitudePruneRecord(
        sparsity=s,
        scope=scope,
        among=among,
        layers=chosen,
        masks=masks,
        layer_sparsity=tuple(z / n if n else 0.0 for z, n in zip(zeros, sizes)),
        achieved_sparsity=(sum(zeros) / sum(sizes)) if sum(sizes) else 0.0,
        parameters_before=network.n_parameters,
        parameters_after=pruned.n_parameters,
        nonzero_before=_count_nonzero(network),
        nonzero_after=_count_nonzero(pruned),
    )
    return pruned, rec


# --------------------------------------------------------------------------------------------
# Structured pruning with GRAIL-style compensation
# --------------------------------------------------------------------------------------------

Criterion = Literal["l1", "l2", "activation"]
CRITERIA: tuple[str, ...] = ("l1", "l2", "activation")


@dataclass(frozen=True)
class StructuredPruneRecord(RecordMixin):
    """What :func:`structured_prune` did.

    Hidden layer ``h`` is the output of Dense layer ``h`` of the *normal form*
    (``network.normalized()``), ``h = 0 .. L-2``.

    Attributes:
        ratio: requested fraction of neurons to remove per selected hidden layer.
        criterion: ``"l1"``, ``"l2"`` or ``"activation"``.
        compensate: whether the next layer was refitted.
        ridge: relative ridge strength ``lambda`` of the refit.
        n_calibration: calibration rows used.
        layers: the selected hidden layers.
        channels: the number of equal contiguous neuron groups (channels) removed or kept
            whole, or ``None`` (single neurons).
        kept: per hidden layer (all of them), the kept neuron indices of the original layer,
            ascending. ``W_pruned^(h) = W^(h)[kept[h]]``; without compensation also
            ``W_pruned^(h+1) = W^(h+1)[:, kept[h]]``.
        removed: per hidden layer, the removed indices.
        widths_before: hidden widths before.
        widths_after: hidden widths after.
        parameters_before: parameters before.
        parameters_after: parameters after.
        calibration_mse: mean squared output difference (pruned vs original) on the
            calibration set.
    """

    kind = "structured_prune"

    ratio: float
    criterion: str
    compensate: bool
    ridge: float
    n_calibration: int
    layers: tuple[int, ...]
    channels: int | None
    kept: tuple[IntArray, ...]
    removed: tuple[IntArray, ...]
    widths_before: tuple[int, ...]
    widths_after: tuple[int, ...]
    parameters_before: int
    parameters_after: int
    calibration_mse: float


#: widest kept layer whose successor ``compensate=True`` refits: the refit solves the
#: ``(m + 1) x (m + 1)`` normal equations of the ``m`` kept neurons (a lowered convolution's
#: tens of thousands of positions would need gigabytes and minutes)
MAX_REFIT_WIDTH = 4096


def _ridge_refit(H: FloatArray, T: FloatArray, ridge: float) -> tuple[FloatArray, FloatArray]:
    r"""Least squares ``[W b] = argmin ||H W^T + b - T||^2 + lambda ||W||^2`` (bias free).

    ``lambda = ridge * trace(H^T H) / m`` (relative to the feature scale, ``m`` columns), and a
    tiny absolute floor keeps the system non-singular.
    """
    n, m = H.shape
    Haug = np.hstack([H, np.ones((n, 1))])
    G = Haug.T @ Haug
    lam = ridge * float(np.trace(G[:m, :m])) / max(m, 1) + 1e-12
    G[np.arange(m), np.arange(m)] += lam
    rhs = Haug.T @ T
    try:
        theta = np.linalg.solve(G, rhs)
    except np.linalg.LinAlgError:  # pragma: no cover - regularized system is SPD
        theta = np.linalg.lstsq(G, rhs, rcond=None)[0]
    return theta[:m].T.copy(), theta[m].copy()


def _norms(w: Any, order: int, *, axis: int) -> FloatArray:
    """l1 or l2 norms of the rows (``axis=1``) or columns (``axis=0``) of a numpy or scipy
    sparse weight."""
    if not is_sparse(w):
        return np.asarray(np.linalg.norm(w, ord=order, axis=axis), dtype=np.float64)
    sums = abs(w).sum(axis=axis) if order == 1 else w.multiply(w).sum(axis=axis)
    out = np.asarray(sums, dtype=np.float64).reshape(-1)
    return out if order == 1 else np.sqrt(out)


def structured_prune(
    network: Network,
    ratio: float,
    *,
    calibration: ArrayLike | None = None,
    compensate: bool = True,
    criterion: Criterion = "l2",
    layers: Sequence[int] | None = None,
    ridge: float = 1e-6,
    n_calibration: int = 1024,
    seed: int = 0,
    channels: int | None = None,
) -> tuple[Network, StructuredPruneRecord]:
    r"""Remove whole hidden neurons or channels, optionally refitting the next layer (GRAIL).

    For each selected hidden layer ``h`` (in order) ``floor(ratio * n_h)`` neurons are removed
    (at least one is kept), ranked by ``criterion``:

    * ``"l2"`` / ``"l1"``: norm of the neuron's incoming weights (row of ``W^(h)``);
    * ``"activation"``: mean ``|a_j|`` on the calibration set times the norm of the outgoing
      weights (column of ``W^(h+1)``), i.e. the neuron's average contribution.

    **Channels.** With ``channels=C`` the ``n_h`` neurons of each selected layer form ``C``
    contiguous groups of ``n_h / C`` neurons, the C-order layout ``(C, H, W)`` of a
    convolution's output once the importers have lowered it to a Dense layer; then
    ``floor(ratio * C)`` whole groups are removed (at least one is kept), ranked by the norm
    of the group's incoming weights (``"l2"``: the Frobenius norm of its rows, ``"l1"``: the
    sum of their absolute values) or by the sum of its neurons' ``"activation"`` scores.
    Removing a channel is removing its neurons, so the result is an ordinary (narrower)
    network whichever way the groups are read; the IR keeps no convolution, so the layout is
    the caller's word (``C`` must divide ``n_h``).

    Removal deletes row ``j`` of ``W^(h)``, entry ``j`` of ``b^(h)`` and column ``j`` of
    ``W^(h+1)``. With ``compensate=True`` the next Dense layer is refitted in closed form on the
    calibration set ``X``: with ``H`` the kept activations of layer ``h`` of the *current*
    (already pruned) network and ``T = Z^(h+1)`` the pre-activations of the *original* network,

    .. math::
        [W', b'] = \arg\min \|H W'^T + b' - T\|_F^2 + \lambda \|W'\|_F^2,
        \quad W'^T = (H^T H + \lambda I)^{-1} H^T (T - b')

    (the bias column is fitted but not penalized, so the mean contribution of removed neurons
    moves into ``b'``; targeting the original ``Z`` also corrects the drift from earlier
    pruned layers). The refit is refused for more than :data:`MAX_REFIT_WIDTH` kept neurons
    (pass ``compensate=False`` there). The output layer is never pruned. A weight the IR's
    storage rule wants sparse (:func:`~nncert.verify.network.prefer_sparse`) is stored sparse.

    Args:
        network: the network; the result is in normal form (``network.normalized()``).
        ratio: fraction of neurons (or channels) to remove per selected hidden layer, in
            ``[0, 1)``.
        calibration: unlabeled inputs, shape ``(n, n_inputs)``; default ``n_calibration``
            uniform samples in ``[0, 1]^n_inputs`` drawn with ``seed``.
        compensate: refit the next layer (otherwise just drop the columns).
        criterion: ``"l2"`` (default), ``"l1"`` or ``"activation"``.
        layers: hidden layers to prune (``0 .. L-2``); default all.
        ridge: relative ridge strength ``lambda / (trace(H^T H)/m)``, ``>= 0``.
        n_calibration: size of the default calibration set.
        seed: seed of the default calibration set.
        channels: remove whole groups of neurons: the number of equal contiguous groups of
            each selected layer (``None``: single neurons).

    Returns:
        ``(pruned network, record)``.

    Raises:
        InvalidOptionsError: on a bad ratio, criterion, layer index, calibration set or
            channel count, or a refit wider than :data:`MAX_REFIT_WIDTH`.
        UnsupportedLayerError: a sparse layer too large to densify.

    Examples:
        >>> from nncert.verify.network import ReLU
        >>> rng = np.random.default_rng(0)
        >>> net = Network((Dense(rng.normal(size=(8, 2)), np.zeros(8)), ReLU(),
        ...                Dense(rng.normal(size=(3, 8)), np.zeros(3))), input_shape=(2,))
        >>> small, rec = structured_prune(net, 0.5)
        >>> rec.widths_before, rec.widths_after
        ((8,), (4,))
        >>> small, rec = structured_prune(net, 0.5, channels=2, compensate=False)
        >>> rec.kept[0].tolist() in ([0, 1, 2, 3], [4, 5, 6, 7])
        True
    """
    r = check_fraction(ratio, "ratio")
    if criterion not in CRITERIA:
        raise InvalidOptionsError(f"criterion={criterion!r} must be one of {', '.join(CRITERIA)}")
    if not (isinstance(ridge, (int, float)) and np.isfinite(ridge) and ridge >= 0):
        raise InvalidOptionsError(f"ridge={ridge!r} must be a finite number >= 0")
    if channels is not None and (
        isinstance(channels, bool) or not isinstance(channels, (int, np.integer)) or channels < 1
    ):
        raise InvalidOptionsError(f"channels={channels!r} must be a positive int or None")
    dense, acts = network.affine_and_activations()
    n_hidden = len(dense) - 1
    chosen = select(n_hidden, layers, what="layers")
    n_keeps: dict[int, int] = {}
    for h in chosen:
        n_h = dense[h].n_out
        groups = n_h if channels is None else int(channels)
        if n_h % groups:
            raise InvalidOptionsError(
                f"channels={channels}: hidden layer {h} has {n_h} neurons, not a multiple"
            )
        keep_groups = max(1, groups - int(np.floor(r * groups)))
        n_keeps[h] = keep_groups * (n_h // groups)
        if compensate and n_keeps[h] < n_h and n_keeps[h] > MAX_REFIT_WIDTH:
            raise InvalidOptionsError(
                f"compensate=True: refitting after hidden layer {h} solves the normal "
                f"equations of its {n_keeps[h]} kept neurons, more than MAX_REFIT_WIDTH="
                f"{MAX_REFIT_WIDTH}; pass compensate=False"
            )
    X = calibration_set(network, calibration, n=n_calibration, seed=seed)
    _, z_orig = layer_inputs(network, X)

    # the weights as stored: rows and columns are cut from a sparse layer in CSR (a MaxPool
    # tree layer after a lowered convolution is far too large to densify), stored back by
    # ``stored``; a layer that is refitted becomes dense
    W: list[Any] = [d.weight for d in dense]
    B = [d.bias.copy() for d in dense]
    kept: list[IntArray] = [np.arange(dense[h].n_out, dtype=np.int64) for h in range(n_hidden)]

    def current() -> Network:
        seq: list[Layer] = []
        for k in range(len(W)):
            seq.append(Dense(stored(W[k]), B[k]))
            if k < len(acts):
                seq.append(acts[k])
        return network.replace_layers(seq)

    for h in chosen:
        n_h = W[h].shape[0]
        n_keep = n_keeps[h]
        if n_keep == n_h:
            continue
        need_acts = compensate or criterion == "activation"
        H_all = layer_inputs(current(), X)[0][h + 1] if need_acts else X[:, :0]
        if criterion == "activation":
            score = np.mean(np.abs(H_all), axis=0) * _norms(W[h + 1], 2, axis=0)
        else:
            score = _norms(W[h], 1 if criterion == "l1" else 2, axis=1)
        if channels is None:
            keep = np.sort(np.argsort(-score, kind="stable")[:n_keep])
        else:
            size = n_h // int(channels)
            per = score.reshape(int(channels), size)
            # a group's norm: l2 of its rows' l2 norms (Frobenius), else the sum
            group = np.sqrt(np.sum(per**2, axis=1)) if criterion == "l2" else per.sum(axis=1)
            top = np.sort(np.argsort(-group, kind="stable")[: n_keep // size])
            keep = (top[:, None] * size + np.arange(size)[None, :]).reshape(-1)
        if compensate:
            W[h + 1], B[h + 1] = _ridge_refit(H_all[:, keep], z_orig[h + 1], float(ridge))
        else:
            W[h + 1] = W[h + 1][:, keep]
        W[h], B[h] = W[h][keep], B[h][keep]
        kept[h] = kept[h][keep]

    pruned = current()
    mse = float(np.mean((pruned.forward(X) - network.forward(X)) ** 2))
    for arr in kept:
        arr.setflags(write=False)
    removed = tuple(
        np.setdiff1d(np.arange(dense[h].n_out, dtype=np.int64), kept[h]) for h in range(n_hidden)
    )
    rec = StructuredPruneRecord(
        ratio=r,
        criterion=criterion,
        compensate=bool(compensate),
        ridge=float(ridge),
        n_calibration=int(X.shape[0]),
        layers=chosen,
        channels=None if channels is None else int(channels),
        kept=tuple(kept),
        removed=removed,
        widths_before=tuple(d.n_out for d in dense[:-1]),
        widths_after=tuple(int(w.shape[0]) for w in W[:-1]),
        parameters_before=network.n_parameters,
        parameters_after=pruned.n_parameters,
        calibration_mse=mse,
    )
    return pruned, rec


__all__ = [
    "CRITERIA",
    "MAX_REFIT_WIDTH",
    "MagnitudePruneRecord",
    "StructuredPruneRecord",
    "magnitude_prune",
    "structured_prune",
]
