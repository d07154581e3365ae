"""Helpers shared by the compression functions (private)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from nncert.verify.errors import InvalidOptionsError
from nncert.verify.network import (
    Dense,
    FloatArray,
    Network,
    apply_activation,
    dense_weight,
    is_sparse,
    prefer_sparse,
)


def dense_positions(network: Network) -> list[int]:
    """Positions in ``network.layers`` of the Dense layers, in order."""
    return [i for i, layer in enumerate(network.layers) if isinstance(layer, Dense)]


def stored(weight: Any) -> Any:
    """A computed weight (numpy or scipy sparse) in the IR's storage: a scipy CSR array when
    :func:`~nncert.verify.network.prefer_sparse` holds (a compressed convolution's lowered
    matrix, the importers' exact MaxPool encoding), else the dense array.

    Storage never changes the matrix (nor :meth:`Network.fingerprint`); it keeps a compressed
    copy of a sparse layer as cheap to verify as the original, instead of a dense matrix of
    tens of millions of entries.
    """
    if is_sparse(weight):
        rows, cols = (int(d) for d in weight.shape)
        if prefer_sparse(rows, cols, int(weight.nnz)):
            return weight
        return dense_weight(weight, "storage")
    w = np.asarray(weight, dtype=np.float64)
    rows, cols = w.shape
    if prefer_sparse(rows, cols, int(np.count_nonzero(w))):
        import scipy.sparse as sp

        return sp.csr_array(w)
    return w


def layer_weight(layer: Dense, what: str) -> FloatArray:
    """``layer``'s weight as a numpy array (densified up to the IR's limit, else refused)."""
    return dense_weight(layer.weight, what)


def select(count: int, chosen: Sequence[int] | None, *, what: str) -> tuple[int, ...]:
    """Validate indices into ``range(count)`` (negative indices count from the end).

    Raises:
        InvalidOptionsError: on an index out of range.
    """
    if chosen is None:
        return tuple(range(count))
    out: list[int] = []
    for raw in chosen:
        try:
            i = int(raw)
        except (TypeError, ValueError) as err:
            raise InvalidOptionsError(f"{what}: index {raw!r} is not an int") from err
        j = i + count if i < 0 else i
        if not 0 <= j < count:
            raise InvalidOptionsError(f"{what}: index {i} out of range for {count} layer(s)")
        if j not in out:
            out.append(j)
    return tuple(sorted(out))


def check_fraction(value: float, name: str, *, upper_open: bool = True) -> float:
    """Validate ``0 <= value < 1`` (or ``<= 1`` when ``upper_open`` is false)."""
    try:
        v = float(value)
    except (TypeError, ValueError) as err:
        raise InvalidOptionsError(f"{name}={value!r} must be a number") from err
    ok = 0.0 <= v < 1.0 if upper_open else 0.0 <= v <= 1.0
    if not ok:
        bound = "[0, 1)" if upper_open else "[0, 1]"
        raise InvalidOptionsError(f"{name}={value!r} must lie in {bound}")
    return v


def calibration_set(
    network: Network, calibration: ArrayLike | None, *, n: int, seed: int
) -> FloatArray:
    """The calibration inputs, shape ``(n, n_inputs)``; default: uniform in ``[0, 1]``.

    Raises:
        InvalidOptionsError: on a wrong shape or non-finite values.
    """
    if calibration is None:
        rng = np.random.default_rng(seed)
        return rng.uniform(0.0, 1.0, size=(int(n), network.n_inputs))
    X = np.asarray(calibration, dtype=np.float64)
    X = X.reshape(X.shape[0], -1) if X.ndim >= 2 else X.reshape(1, -1)
    if X.shape[1] != network.n_inputs:
        raise InvalidOptionsError(
            f"calibration: has {X.shape[1]} features, the network has {network.n_inputs} inputs"
        )
    if X.shape[0] == 0 or not np.all(np.isfinite(X)):
        raise InvalidOptionsError("calibration: needs at least one finite row")
    return X


def layer_inputs(network: Network, X: FloatArray) -> tuple[list[FloatArray], list[FloatArray]]:
    """Per Dense layer of the normal form, its input activations and its output ``z``.

    Returns:
        ``(inputs, outputs)``: ``inputs[k]`` has shape ``(n, n_in_k)``, ``outputs[k]`` shape
        ``(n, n_out_k)``, for every Dense layer ``k`` of ``network.normalized()``.
    """
    dense, acts = network.affine_and_activations()
    inputs: list[FloatArray] = []
    outputs: list[FloatArray] = []
    a = X
    for k, d in enumerate(dense):
        inputs.append(a)
        z = np.asarray(a @ d.weight.T) + d.bias
        outputs.append(z)
        if k < len(acts):
            a = apply_activation(acts[k], z)
    return inputs, outputs


__all__ = [
    "calibration_set",
    "check_fraction",
    "dense_positions",
    "layer_inputs",
    "layer_weight",
    "select",
    "stored",
]
