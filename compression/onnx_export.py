"""Export the numpy IR to ONNX: ``Flatten?, Gemm, Relu | LeakyRelu | Clip | Sigmoid | Tanh, ...``.

:func:`to_onnx` writes a plain feed-forward graph that :func:`nncert.verify.importers.from_onnx`,
onnxruntime and other verifiers read:

* input ``input`` of shape ``[batch, *input_shape]`` (dynamic batch); a ``Flatten(axis=1)``
  follows when ``input_shape`` has more than one dimension;
* each :class:`Dense` becomes ``Gemm(a, W, b, transB=1)`` with ``W`` stored as ``(n_out, n_in)``;
  a weight stored sparse (a lowered convolution) is written as a sparse initializer (its
  non-zero values and their linear indices), which the importers and onnxruntime read as the
  same dense matrix, so an exported compressed CNN stays megabytes, not hundreds of them;
* ``ReLU -> Relu``, ``LeakyReLU -> LeakyRelu(alpha)``, ``HardTanh -> Clip(min, max)`` (bounds
  as initializers, opset >= 11), ``Sigmoid``, ``Tanh``, ``Identity``;
* output ``output`` of shape ``[batch, n_outputs]``.

By default tensors are **float64** (``DOUBLE``), so ``from_onnx(to_onnx(net))`` reproduces the
weights bit for bit and the fingerprint is preserved. ``dtype="float32"`` writes the usual
float32 model (VNN-COMP tools expect it); the weights are then rounded to float32.
``LeakyRelu`` stores ``alpha`` as a float32 *attribute* (ONNX has no double attributes), so a
slope such as 0.1 comes back as ``float32(0.1)``; slopes like 0.25 or 0.5 are exact.
onnxruntime implements float64 ``LeakyRelu`` only from opset 16 on (the default is 17).

Examples:
    >>> import tempfile, os
    >>> from nncert.verify.network import Dense, Network, ReLU
    >>> net = Network((Dense([[1.0, 2.0]], [0.5]), ReLU()), input_shape=(2,))
    >>> path = os.path.join(tempfile.mkdtemp(), "net.onnx")
    >>> _ = to_onnx(net, path)
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np

from nncert.verify.errors import InvalidOptionsError, UnsupportedLayerError
from nncert.verify.fileio import write_atomic
from nncert.verify.network import (
    Dense,
    HardTanh,
    Identity,
    Layer,
    LeakyReLU,
    Network,
    ReLU,
    Sigmoid,
    Tanh,
)

#: supported opsets (Gemm 13, Clip with tensor bounds since 11, Flatten 13)
OPSETS: tuple[int, ...] = (13, 14, 15, 16, 17)


class _Builder:
    """Accumulates nodes and initializers of a linear chain graph."""

    def __init__(self, np_dtype: type[np.floating[Any]]) -> None:
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self.sparse_initializers: list[Any] = []
        self.np_dtype = np_dtype
        self.current = "input"
        self.counter = 0

    def name(self, stem: str) -> str:
        self.counter += 1
        return f"{stem}_{self.counter}"

    def const(self, stem: str, value: Any) -> str:
        from onnx import numpy_helper

        n = self.name(stem)
        arr = np.asarray(value, dtype=self.np_dtype)
        self.initializers.append(numpy_helper.from_array(arr, n))
        return n

    def sparse_const(self, stem: str, value: Any) -> str:
        """A sparse initializer of a scipy sparse matrix: non-zero values, linear indices."""
        from onnx import helper, numpy_helper

        n = self.name(stem)
        coo = value.tocoo()
        rows, cols = (np.asarray(a, dtype=np.int64) for a in (coo.row, coo.col))
        flat = rows * int(value.shape[1]) + cols
        order = np.argsort(flat, kind="stable")  # ONNX wants the indices sorted
        values = numpy_helper.from_array(np.asarray(coo.data, dtype=self.np_dtype)[order], n)
        indices = numpy_helper.from_array(flat[order], f"{n}_indices")
        dims = [int(d) for d in value.shape]
        self.sparse_initializers.append(helper.make_sparse_tensor(values, indices, dims))
        return n

    def node(self, op: str, inputs: list[str], **attrs: Any) -> None:
        from onnx import helper

        out = self.name(op.lower())
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        self.current = out


def _dense(b: _Builder, layer: Dense) -> None:
    w = b.sparse_const("W", layer.weight) if layer.sparse else b.const("W", layer.weight)
    c = b.const("B", layer.bias)
    b.node("Gemm", [b.current, w, c], alpha=1.0, beta=1.0, transB=1)


def _relu(b: _Builder, layer: ReLU) -> None:
    b.node("Relu", [b.current])


def _leaky(b: _Builder, layer: LeakyReLU) -> None:
    b.node("LeakyRelu", [b.current], alpha=float(layer.alpha))


def _hardtanh(b: _Builder, layer: HardTanh) -> None:
    lo = b.const("clip_min", layer.min_val)
    hi = b.const("clip_max", layer.max_val)
    b.node("Clip", [b.current, lo, hi])


def _sigmoid(b: _Builder, layer: Sigmoid) -> None:
    b.node("Sigmoid", [b.current])


def _tanh(b: _Builder, layer: Tanh) -> None:
    b.node("Tanh", [b.current])


def _identity(b: _Builder, layer: Identity) -> None:
    b.node("Identity", [b.current])


#: layer type -> emitter (DESIGN.md section 13 rule 1); pass ``rules`` to override
EXPORT_RULES: dict[type, Callable[[_Builder, Any], None]] = {
    Dense: _dense,
    ReLU: _relu,
    LeakyReLU: _leaky,
    HardTanh: _hardtanh,
    Sigmoid: _sigmoid,
    Tanh: _tanh,
    Identity: _identity,
}


def to_onnx(
    network: Network,
    path: str | Path | None = None,
    *,
    opset: int = 17,
    dtype: Literal["float64", "float32"] = "float64",
    graph_name: str | None = None,
    rules: dict[type, Callable[[_Builder, Any], None]] | None = None,
) -> Any:
    """Build (and optionally save) an ONNX model computing ``network``.

    Args:
        network: the network.
        path: where to write the ``.onnx`` file (``None``: only return the model).
        opset: ONNX opset, 13 to 17.
        dtype: ``"float64"`` (exact round trip, default) or ``"float32"``.
        graph_name: graph name (default: ``network.name`` or ``"nncert"``).
        rules: override emitters per layer type.

    Returns:
        The ``onnx.ModelProto`` (checked with ``onnx.checker``).

    Raises:
        InvalidOptionsError: on an unsupported opset or dtype.
        UnsupportedLayerError: on a layer type without an emitter.
    """
    import onnx
    from onnx import TensorProto, helper

    if opset not in OPSETS:
        raise InvalidOptionsError(f"opset={opset!r} must be one of {OPSETS}")
    types: dict[str, tuple[type[np.floating[Any]], int]] = {
        "float64": (np.float64, TensorProto.DOUBLE),
        "float32": (np.float32, TensorProto.FLOAT),
    }
    if dtype not in types:
        raise InvalidOptionsError(f"dtype={dtype!r} must be 'float64' or 'float32'")
    np_dtype, onnx_dtype = types[dtype]
    table = {**EXPORT_RULES, **(rules or {})}
    b = _Builder(np_dtype)
    if len(network.input_shape) > 1:
        b.node("Flatten", [b.current], axis=1)
    layer: Layer
    for i, layer in enumerate(network.layers):
        emit = table.get(type(layer))
        if emit is None:
            raise UnsupportedLayerError(
                f"to_onnx: layer {i} ({type(layer).__name__}) has no ONNX emitter"
            )
        emit(b, layer)
    # rename the last tensor to "output"
    last = b.nodes[-1]
    last.output[0] = "output"
    graph = helper.make_graph(
        b.nodes,
        graph_name or network.name or "nncert",
        [helper.make_tensor_value_info("input", onnx_dtype, ["batch", *network.input_shape])],
        [helper.make_tensor_value_info("output", onnx_dtype, ["batch", network.n_outputs])],
        b.initializers,
        sparse_initializer=b.sparse_initializers,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="nncert"
    )
    model.ir_version = min(model.ir_version, 8)
    onnx.checker.check_model(model)
    if path is not None:

        write_atomic(path, model.SerializeToString())
    return model


__all__ = ["EXPORT_RULES", "OPSETS", "to_onnx"]
