"""Weight-only quantization with dequantized-float semantics.

:func:`quantize_weights` rounds every weight to a ``bits``-bit integer grid and stores the
*dequantized* value ``w_q = scale * (q - zero_point)`` in the float64 IR, so every verifier in
nncert applies unchanged to the quantized model. This is the semantics of ONNX QDQ
``DequantizeLinear`` on a weight initializer and of weight-only torch/torchao quantization
(ECOSYSTEM.md sections 2.4-2.5); activations stay in float.

Integer ranges (``b = bits``):

* ``symmetric=True`` (default): signed, *narrow* range ``[-(2^(b-1) - 1), 2^(b-1) - 1]``
  (``[-127, 127]`` for 8 bits, ``[-7, 7]`` for 4 bits), ``zero_point = 0`` and
  ``scale = max|w| / (2^(b-1) - 1)``. The narrow range keeps the grid symmetric, so ``-max|w|``
  and ``+max|w|`` are both exact (the "narrow range" of TensorRT and of torchao's symmetric
  int8 weight-only configs).
* ``symmetric=False``: unsigned ``[0, 2^b - 1]`` with ``scale = (hi - lo) / (2^b - 1)`` over
  ``lo = min(min w, 0)``, ``hi = max(max w, 0)`` and ``zero_point = round(-lo / scale)`` (so 0
  is exact, as ONNX requires).

Rounding is round-half-to-even (``np.rint``, like ONNX ``QuantizeLinear``), followed by a clamp.
In both modes ``|w - w_q| <= scale / 2`` for every weight. A channel (or tensor) of zeros gets
``scale = 1`` and stays exactly zero.

**Biases are kept in float64.** Static int8 exports store biases as int32 with scale
``s_x * s_w``, a rounding error of at most ``s_x * s_w / 2`` that depends on the activation
scale, which weight-only quantization does not have; keeping biases in float is the weight-only
convention (torch.ao dynamic and torchao weight-only keep float biases too).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from nncert.compression._common import dense_positions, layer_weight, select, stored
from nncert.compression.records import RecordMixin
from nncert.verify.errors import InvalidOptionsError
from nncert.verify.network import Dense, FloatArray, Layer, Network


@dataclass(frozen=True)
class QuantizeRecord(RecordMixin):
    """What :func:`quantize_weights` did.

    Attributes:
        bits: bit width.
        per_channel: one scale per output channel (row) instead of one per tensor.
        symmetric: signed narrow range with zero point 0, else unsigned with a zero point.
        qmin: smallest integer.
        qmax: largest integer.
        layers: indices of the quantized Dense layers (among ``network.dense_layers``).
        scales: per quantized layer, the scales, shape ``(n_out,)`` (per channel) or ``(1,)``.
        zero_points: per quantized layer, the zero points (same shape as ``scales``).
        qweights: per quantized layer, the integers ``q`` (``int8``/``uint8``/``int16``/...).
            ``W_q = scale[:, None] * (q - zero_point[:, None])``.
        max_abs_error: per quantized layer, ``max |W - W_q|``.
        parameters_before: parameters before.
        parameters_after: parameters after (unchanged).
        bias_semantics: always ``"float64"`` (biases are not quantized).
    """

    kind = "quantize_weights"

    bits: int
    per_channel: bool
    symmetric: bool
    qmin: int
    qmax: int
    layers: tuple[int, ...]
    scales: tuple[FloatArray, ...]
    zero_points: tuple[NDArray[np.int64], ...]
    qweights: tuple[NDArray[np.integer], ...]
    max_abs_error: tuple[float, ...]
    parameters_before: int
    parameters_after: int
    bias_semantics: str = "float64"


def integer_range(bits: int, symmetric: bool) -> tuple[int, int]:
    """The integer grid ``[qmin, qmax]`` used for ``bits`` (see the module docstring)."""
    if symmetric:
        m = 2 ** (bits - 1) - 1
        return -m, m
    return 0, 2**bits - 1


def _int_dtype(qmin: int, qmax: int) -> np.dtype[np.integer]:
    for dt in (np.int8, np.uint8, np.int16, np.uint16, np.int32):
        info = np.iinfo(dt)
        if info.min <= qmin and qmax <= info.max:
            return np.dtype(dt)
    return np.dtype(np.int64)  # pragma: no cover - bits <= 16 enforced


def quantize_array(
    W: FloatArray, bits: int, *, per_channel: bool = True, symmetric: bool = True
) -> tuple[FloatArray, FloatArray, NDArray[np.int64], NDArray[np.int64]]:
    """Quantize a 2-d array along its rows (channels).

    Returns:
        ``(W_q, scales, zero_points, q)`` with ``W_q = scales[:, None] * (q - zp[:, None])``;
        ``scales`` and ``zero_points`` have shape ``(n_rows,)`` per channel, ``(1,)`` otherwise.
    """
    qmin, qmax = integer_range(bits, symmetric)
    axis = 1 if per_channel else None
    if symmetric:
        amax = np.max(np.abs(W), axis=axis, keepdims=True) if W.size else np.zeros((1, 1))
        scale = amax / qmax
        zp = np.zeros_like(scale)
    else:
        lo = np.minimum(np.min(W, axis=axis, keepdims=True), 0.0)
        hi = np.maximum(np.max(W, axis=axis, keepdims=True), 0.0)
        scale = (hi - lo) / (qmax - qmin)
        zp = np.zeros_like(scale)
        ok = scale > 0
        zp[ok] = np.clip(np.rint(-lo[ok] / scale[ok]), qmin, qmax)
    scale = np.where(scale > 0, scale, 1.0)
    q = np.clip(np.rint(W / scale) + zp, qmin, qmax)
    Wq = scale * (q - zp)
    return Wq, scale.reshape(-1), zp.reshape(-1).astype(np.int64), q.astype(np.int64)


def quantize_weights(
    network: Network,
    bits: int = 8,
    *,
    per_channel: bool = True,
    symmetric: bool = True,
    layers: Sequence[int] | None = None,
) -> tuple[Network, QuantizeRecord]:
    r"""Round the weights to a ``bits``-bit grid; return the dequantized network.

    ``w_q = scale * (clip(rint(w / scale) + zp, qmin, qmax) - zp)``; see the module docstring
    for the integer ranges. Biases stay float64. Shapes never change. Zero weights stay zero,
    so a layer stored sparse (a lowered convolution) stays sparse. Per channel, a row of a
    lowered convolution holds one output position's copy of its channel's kernel (cut at
    padded borders), so away from the borders its scale is the channel's.
    Unselected layers are kept as they are.

    Args:
        network: the network.
        bits: bit width, 2 to 16 (8 and 4 are the usual ones).
        per_channel: one scale per output neuron (row of ``W``); else one per layer.
        symmetric: signed narrow range and zero point 0; else unsigned with a zero point.
        layers: indices into ``network.dense_layers``; default all.

    Returns:
        ``(quantized network, record)``.

    Raises:
        InvalidOptionsError: on ``bits`` outside ``[2, 16]`` or a bad layer index.
        UnsupportedLayerError: a selected sparse layer too large to densify.

    Examples:
        >>> net = Network((Dense([[0.3, -1.0]], [0.1]),), input_shape=(2,))
        >>> q, rec = quantize_weights(net, bits=4)
        >>> rec.qweights[0].tolist(), q.dense_layers[0].bias.tolist()
        ([[2, -7]], [0.1])
    """
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or not 2 <= bits <= 16:
        raise InvalidOptionsError(f"bits={bits!r} must be an int in [2, 16]")
    bits = int(bits)
    qmin, qmax = integer_range(bits, symmetric)
    dtype = _int_dtype(qmin, qmax)
    positions = dense_positions(network)
    chosen = select(len(positions), layers, what="layers")
    new_layers: list[Layer] = list(network.layers)
    scales, zps, qs, errs = [], [], [], []
    for i in chosen:
        d = network.dense_layers[i]
        w = layer_weight(d, "weight quantization")  # a sparse layer: densified or refused
        Wq, s, zp, q = quantize_array(w, bits, per_channel=per_channel, symmetric=symmetric)
        new_layers[positions[i]] = Dense(stored(Wq), d.bias)  # a sparse layer stays sparse
        for arr in (s, zp):
            arr.setflags(write=False)
        qi = q.astype(dtype)
        qi.setflags(write=False)
        scales.append(s)
        zps.append(zp)
        qs.append(qi)
        errs.append(float(np.max(np.abs(w - Wq))) if w.size else 0.0)
    out = network.replace_layers(new_layers)
    rec = QuantizeRecord(
        bits=bits,
        per_channel=bool(per_channel),
        symmetric=bool(symmetric),
        qmin=qmin,
        qmax=qmax,
        layers=chosen,
        scales=tuple(scales),
        zero_points=tuple(zps),
        qweights=tuple(qs),
        max_abs_error=tuple(errs),
        parameters_before=network.n_parameters,
        parameters_after=out.n_parameters,
    )
    return out, rec


__all__ = ["QuantizeRecord", "integer_range", "quantize_array", "quantize_weights"]
