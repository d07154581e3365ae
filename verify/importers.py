"""Importers: ONNX files and torch modules → the frozen :class:`~nncert.verify.network.Network` IR.

Both importers walk a *chain* of operations applied to one variable tensor (the network input)
and keep a **pending affine map** on the flattened (C order) tensor::

    v = W s + b          (s: the flattened tensor at the start of the current affine segment)

Every affine operation ``v -> A v + d`` (Gemm, MatMul, Add/Sub/Mul/Div by a constant, Conv,
BatchNormalization, Linear, ...) is composed into it, ``W <- A W``, ``b <- A b + d``, and
shape-only operations (Flatten, Reshape, Squeeze, Unsqueeze, Identity) merely change the tracked
shape, because a C-order reshape is the identity on the flattened data. When an activation
arrives, the pending map is emitted as one :class:`~nncert.verify.network.Dense` layer followed
by the activation layer. So ACAS Xu's ``Sub, Flatten, MatMul, Add, Relu, ...`` becomes
``Dense, ReLU, ...`` with the input normalisation folded into the first ``Dense``.

ONNX graphs are parsed directly from their protobuf messages (no onnx2torch), through
:mod:`nncert.verify.onnx_proto`, which reads the common models without importing the ``onnx``
package and hands everything unusual to it. Tensors computed only
from initializers and ``Constant`` nodes (including ``DequantizeLinear`` of quantized weights)
are folded to numpy arrays in their native dtype, mirroring onnxruntime. Input-dependent
tensors may branch: each keeps its own pending map, and ``Add``/``Sub``/``Concat`` of two
branches in the same segment combine them (:data:`_ONNX_MERGE_OPS`). A tensor still read after
an activation (a residual block ``x + F(x)``, a skip path around a ReLU) is *carried* through
that activation layer next to the activated tensor, exactly, as ``relu(x) - relu(-x)`` (only
``relu(x)`` when ``x >= 0`` is structural); MaxPool is a balanced tree of
``max(a, b) = b + relu(a - b)`` in ReLU layers with the same carry
(:meth:`_AffineChain.activation`, :func:`_max_pool`). A carried tensor whose only remaining
reader is an activation node of the same kind is activated in that same layer instead, so
parallel branches stay at equal depth. Non-linear but exact in real arithmetic:
``Pow`` with a constant exponent and ``Mul`` of two input-dependent tensors become one
:class:`~nncert.verify.network.RectifiedPower` layer (:func:`_signed_power`,
:func:`_merge_mul`: ``v^p = max(v,0)^p + (-1)^p max(-v,0)^p``, ``ab = ((a+b)^2 - (a-b)^2)/4``),
and ``Softmax`` an ``Exp`` and a ``NegReciprocal1p`` layer (:func:`_op_softmax`); those layers
cannot carry other tensors, so a skip path across them is refused naming the node.
All of this keeps the IR a chain of ``Dense`` and
activation layers, so every engine treats them exactly (MILP) or soundly (IBP/CROWN).
Operators are dispatched through the module-level tables :data:`ONNX_CHAIN_OPS` and
:data:`ONNX_CONSTANT_OPS`; torch modules through :data:`TORCH_MODULES`.

:func:`onnxruntime_forward` evaluates an ONNX file in onnxruntime, for replaying
counterexamples against the original model.

Heavy imports (``onnx``, ``onnxruntime``, ``torch``) happen inside functions, and only where
they are needed: reading a common ONNX model imports none of them.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np

from nncert.verify import network as netmod
from nncert.verify.errors import InvalidNetworkError, NncertError, UnsupportedLayerError
from nncert.verify.example_catalog import example_path
from nncert.verify.fileio import deadline_from, is_gzip, read_input, write_atomic
from nncert.verify.network import (
    Activation,
    Dense,
    Exp,
    FloatArray,
    HardTanh,
    Identity,
    Layer,
    LeakyReLU,
    NegReciprocal1p,
    Network,
    RectifiedPower,
    ReLU,
    Sigmoid,
    Tanh,
    compose_affine,
    dense_weight,
    is_sparse,
    prefer_sparse,
    row_abs_sums,
)
from nncert.verify.onnx_proto import (
    attribute_value,
    is_model_proto,
    is_tensor_proto,
    load_model_file,
    np_dtype,
    parse_model,
    tensor_to_array,
)
from nncert.verify.rounding import UNIT, inflate
from nncert.verify.rounding import gamma as _gamma
from nncert.verify.witness import onnxruntime_forward

if TYPE_CHECKING:
    import onnx

Shape: TypeAlias = tuple[int, ...]

#: largest ONNX input (elements per sample) :func:`from_onnx` accepts: every layer of the IR is
#: a dense matrix, so far smaller inputs already exceed any machine's memory
MAX_INPUT_ELEMENTS = 10**8

#: largest dense layer (entries) an encoding that grows the network (MaxPool's comparison
#: tree, tensors carried past an activation) may emit: 10**8 float64 entries are 800 MB, and
#: the bound engine and the MILP builder make several copies of each layer
MAX_ENCODING_ENTRIES = 10**8

# --------------------------------------------------------------------------------------------
# Shared helpers: the pending affine chain and the convolution lowering
# --------------------------------------------------------------------------------------------


def _prod(shape: Iterable[int]) -> int:
    return int(math.prod(shape))


@dataclass(frozen=True)
class _Pending:
    """A variable tensor's pending affine map from the start of its segment (see
    :class:`_AffineChain`), so that parallel branches can be merged linearly."""

    weight: FloatArray | None
    bias: FloatArray | None
    werr: FloatArray | None
    berr: FloatArray | None
    shape: Shape
    segment: int
    index: np.ndarray | None
    in_width: int


class _AffineChain:
    """Accumulates layers while tracking the shape of the single variable tensor.

    The pending map ``v = W s + b`` is stored as ``W is None`` (identity) and ``b is None``
    (zero) when nothing has been composed yet, so a chain of activations emits no ``Dense``.
    Composing in float64 rounds; the chain records a bound on the difference to the exact
    composition (:attr:`Dense.weight_error`, :attr:`Dense.bias_error`), so that the bound
    engine stays sound for the model exactly as the file defines it.
    """

    def __init__(self, shape: Shape) -> None:
        self.shape: Shape = tuple(int(s) for s in shape)
        self.layers: list[Layer] = []
        self._weight: FloatArray | None = None
        self._bias: FloatArray | None = None
        # composition error of the pending map, per output (see Dense.weight_error)
        self._werr: FloatArray | None = None
        self._berr: FloatArray | None = None
        # pending weight given as a selection (see select): row r is e_{index[r]} or zero
        self._index: np.ndarray | None = None
        self._in_width = 0
        #: number of activations emitted so far; pending maps of older segments are stale
        self.segment = 0
        #: whether the segment start ``s`` (the last activation's output) is known ``>= 0``
        self.nonneg_start = False
        #: other tensors still read after the current node (set by the ONNX importer): each
        #: activation carries them through, see :meth:`activation`
        self.carried: dict[str, _Pending] = {}
        #: carried tensors whose only remaining reader is a plain activation node:
        #: name -> (its layer, the node's output name, the node's position); set by the importer
        self.fusible: dict[str, tuple[Activation, str, int]] = {}
        #: positions of activation nodes already applied by :meth:`activation` (fused)
        self.fused_nodes: set[int] = set()

    def snapshot(self) -> _Pending:
        """The pending map of the current tensor (arrays are never modified in place)."""
        return _Pending(
            self._weight,
            self._bias,
            self._werr,
            self._berr,
            self.shape,
            self.segment,
            self._index,
            self._in_width,
        )

    def restore(self, snap: _Pending, name: str) -> None:
        """Make ``snap`` the current tensor; it must belong to the current segment.

        A tensor computed before the last activation would need the pre-activation values
        next to the activated ones (a residual connection), which the layer chain lacks.
        """
        if snap.segment != self.segment:
            raise UnsupportedLayerError(
                f"input-dependent tensor {name!r} is read after a later activation (a residual "
                "branch across an activation); only branches that are affine up to their merge "
                "are supported"
            )
        self._weight, self._bias, self._werr, self._berr = (
            snap.weight,
            snap.bias,
            snap.werr,
            snap.berr,
        )
        self.shape = snap.shape
        self._index, self._in_width = snap.index, snap.in_width

    def explicit(self) -> Dense:
        """The pending map as a ``Dense`` (identity/zero filled in)."""
        return self._pending()

    def set_pending(self, layer: Dense, shape: Shape) -> None:
        """Replace the pending map (from the segment start) and the tracked shape."""
        self._set(layer)
        self._index = None
        self.shape = tuple(shape)

    @property
    def width(self) -> int:
        """Length of the flattened variable tensor."""
        return _prod(self.shape)

    def linear(
        self,
        matrix: FloatArray,
        bias: FloatArray | None,
        out_shape: Shape,
        *,
        weight_error: FloatArray | None = None,
    ) -> None:
        """Compose ``v -> matrix v + bias`` (``matrix``: ``(prod(out_shape), width)``).

        ``weight_error`` bounds, per row, the ℓ1 distance of ``matrix`` to the exact map (when
        it was computed, e.g. ``1 / k`` for an average).
        """
        n_out = _prod(out_shape)
        if matrix.shape != (n_out, self.width):
            raise InvalidNetworkError(
                f"shape mismatch: affine map of shape {matrix.shape} applied to a tensor of "
                f"shape {self.shape} (width {self.width}) giving shape {out_shape}"
            )
        outer_b = np.zeros(n_out) if bias is None else np.asarray(bias, np.float64).reshape(-1)
        if self._index is not None:
            # pending map is a selection S (rows of the identity or zero): W = matrix S, a
            # scatter of matrix's columns; duplicates in S are sums that round
            idx, self._index = self._index, None
            valid = np.flatnonzero(idx >= 0)
            scattered = np.zeros((n_out, self._in_width))
            counts = np.bincount(idx[valid], minlength=self._in_width)
            if counts.size and counts.max() > 1:
                np.add.at(scattered.T, idx[valid], matrix.T[valid])
                extra = _gamma(int(counts.max())) * np.abs(matrix).sum(axis=1)
                weight_error = extra if weight_error is None else weight_error + extra
            else:
                scattered[:, idx[valid]] = matrix[:, valid]
            self._identity_then(matrix, scattered, outer_b, bias is None, weight_error)
        elif self._weight is not None:
            if is_sparse(self._weight):  # the product with a dense matrix is dense
                _check_encoding_size(n_out, self._weight.shape[1], "an affine map after MaxPool")
            outer = Dense(
                matrix, outer_b, None if weight_error is None else inflate(weight_error, 2)
            )
            self._set(compose_affine(outer, self._pending()))
        else:
            self._identity_then(matrix, matrix, outer_b, bias is None, weight_error)
        self.shape = tuple(out_shape)

    def _identity_then(
        self,
        matrix: FloatArray,
        weight: FloatArray,
        outer_b: FloatArray,
        no_bias: bool,
        weight_error: FloatArray | None,
    ) -> None:
        """Pending weight (identity or selection) followed by ``matrix``: ``W = weight`` (that
        product, exact up to ``weight_error``), ``b = matrix b_pending + bias``."""
        self._weight = weight
        if self._bias is None:
            self._bias = None if no_bias else outer_b
            self._werr = None if weight_error is None else inflate(weight_error, 2)
            return
        inner_b, inner_e = self._bias, self._berr
        self._bias = matrix @ inner_b + outer_b
        err = _gamma(matrix.shape[1] + 1) * (np.abs(matrix) @ np.abs(inner_b) + np.abs(outer_b))
        if inner_e is not None:
            err = err + np.abs(matrix) @ inner_e
        if weight_error is not None:
            err = err + weight_error * float(np.max(np.abs(inner_b), initial=0.0))
        self._werr = None if weight_error is None else inflate(weight_error, 2)
        self._berr = inflate(err, matrix.shape[1] + 4)

    def select(self, index: np.ndarray, values: np.ndarray | None, out_shape: Shape) -> None:
        """Compose the exact index map ``y[r] = v[index[r]]`` (``index[r] >= 0``), else
        ``values[r]`` (a constant; 0 when ``values`` is ``None``). Kept as an index vector while
        the pending weight is the identity, rows gathered otherwise; no rounding either way."""
        idx = np.asarray(index, dtype=np.int64).reshape(-1)
        keep = idx >= 0
        safe = np.where(keep, idx, 0)
        const = np.zeros(idx.size) if values is None else np.asarray(values, np.float64).reshape(-1)

        def gather(vec: FloatArray | None, fill: FloatArray) -> FloatArray:
            base = np.zeros(self.width) if vec is None else vec
            return np.where(keep, base[safe], fill)

        zero = np.zeros(idx.size)
        if self._bias is not None or np.any(const[~keep]):
            self._bias = gather(self._bias, const)
        if self._berr is not None:
            self._berr = gather(self._berr, zero)
        if self._weight is not None and is_sparse(self._weight):
            import scipy.sparse as sp

            self._weight = (sp.diags_array(keep.astype(np.float64)) @ self._weight[safe]).tocsr()
            if self._werr is not None:
                self._werr = gather(self._werr, zero)
        elif self._weight is not None:
            self._weight = np.where(keep[:, None], self._weight[safe], 0.0)
            if self._werr is not None:
                self._werr = gather(self._werr, zero)
        elif self._index is not None:
            self._index = np.where(keep, self._index[safe], -1)
        else:
            self._in_width = self.width
            self._index = np.where(keep, idx, -1)
        self.shape = tuple(int(d) for d in out_shape)

    def _materialize(self) -> None:
        if self._index is not None:
            idx, self._index = self._index, None
            weight = np.zeros((idx.size, self._in_width))
            rows = np.flatnonzero(idx >= 0)
            weight[rows, idx[rows]] = 1.0
            self._weight = weight

    def _pending(self) -> Dense:
        self._materialize()
        weight = _identity(self.width) if self._weight is None else self._weight
        bias = np.zeros(weight.shape[0]) if self._bias is None else self._bias
        return Dense(weight, bias, self._werr, self._berr)

    def _set(self, layer: Dense) -> None:
        # a sparse weight is immutable (read-only arrays) and never modified in place
        w = layer.weight
        self._weight, self._bias = (w if is_sparse(w) else np.array(w)), np.array(layer.bias)
        self._werr, self._berr = layer.weight_error, layer.bias_error

    def scale(
        self,
        factor: FloatArray,
        bias: FloatArray | None,
        *,
        factor_error: FloatArray | None = None,
        bias_error: FloatArray | None = None,
    ) -> None:
        """Compose the element-wise map ``v -> factor * v + bias`` (shape unchanged).

        ``factor_error``/``bias_error`` bound how far ``factor``/``bias`` are from the exact
        map (when they were themselves computed, e.g. ``1 / c`` for a division).
        """
        self._materialize()
        factor = np.asarray(factor, dtype=np.float64).reshape(-1)
        if factor.size != self.width:
            raise InvalidNetworkError(
                f"shape mismatch: {factor.size} scale factors for a tensor of shape {self.shape}"
            )
        add = np.zeros(factor.size) if bias is None else np.asarray(bias, np.float64).reshape(-1)
        fe = np.zeros(factor.size) if factor_error is None else np.reshape(factor_error, -1)
        if self._weight is None:
            w = np.diag(factor)
            row = np.ones(factor.size)  # |I| 1
        elif is_sparse(self._weight):
            import scipy.sparse as sp

            w = (sp.diags_array(factor) @ self._weight).tocsr()
            row = row_abs_sums(self._weight)
        else:
            w = factor[:, None] * self._weight
            row = np.abs(self._weight).sum(axis=1)
        inner_b = np.zeros(factor.size) if self._bias is None else self._bias
        prod = factor * inner_b
        b = prod + add
        # one rounding per product and per sum; the factor's own error on |W| and |b|
        exact_w = self._weight is None or bool(np.all(np.isin(np.abs(factor), (0.0, 1.0))))
        we = (0.0 if exact_w else UNIT) * np.abs(factor) * row + fe * row
        be = UNIT * np.abs(prod) + _sum_error(prod, add) + fe * np.abs(inner_b)
        if self._werr is not None:
            we = we + (np.abs(factor) + fe) * self._werr
        if self._berr is not None:
            be = be + (np.abs(factor) + fe) * self._berr
        if bias_error is not None:
            be = be + np.reshape(bias_error, -1)
        self._weight, self._bias = w, (b if (self._bias is not None or bias is not None) else None)
        self._werr = inflate(we, 4) if np.any(we) else None
        self._berr = inflate(be, 4) if np.any(be) else None

    def shift(self, bias: FloatArray, *, bias_error: FloatArray | None = None) -> None:
        """Compose ``v -> v + bias``."""
        bias = np.asarray(bias, dtype=np.float64).reshape(-1)
        if bias.size != self.width:
            raise InvalidNetworkError(
                f"shape mismatch: bias of {bias.size} entries for a tensor of shape {self.shape}"
            )
        if self._bias is None:
            self._bias = bias.copy()
            err = None if bias_error is None else np.reshape(bias_error, -1)
        else:
            err = _sum_error(self._bias, bias)
            self._bias = self._bias + bias
            if self._berr is not None:
                err = err + self._berr
            if bias_error is not None:
                err = err + np.reshape(bias_error, -1)
        self._berr = inflate(err, 4) if err is not None and np.any(err) else None

    def reshape(self, shape: Shape) -> None:
        """Change the tracked shape; a C-order reshape is the identity on flattened data."""
        shape = tuple(int(s) for s in shape)
        if _prod(shape) != self.width:
            raise InvalidNetworkError(
                f"shape mismatch: cannot reshape a tensor of shape {self.shape} to {shape}"
            )
        self.shape = shape

    def activation(
        self, layer: Activation, extras: Sequence[Dense] = ()
    ) -> list[tuple[Any, FloatArray | None]]:
        """Emit the pending affine map (if any) and then ``layer``.

        Tensors in :attr:`carried` (read again after the current node: a skip connection) and
        the affine maps ``extras`` (rows affine in the segment start, e.g. MaxPool's pending
        maxima) are *carried* through the activation exactly: each row ``x`` is emitted twice,
        as ``x`` and ``-x``, next to the current tensor, and recovered after the layer as
        ``relu(x) - relu(-x) = x`` (LeakyReLU: ``(x - alpha x) ... = (1 + alpha) x``, so
        divided by ``1 + alpha``). A row known to be ``>= 0`` (non-negative exact
        coefficients and bias on a non-negative segment start) needs only ``relu(x) = x``.
        ``Identity`` passes every row. Other activations cannot carry a tensor. A carried
        tensor listed in :attr:`fusible` for this same layer is activated instead (its
        activation node is then recorded in :attr:`fused_nodes` and its output carried on).

        Returns:
            for each of ``extras``, its map on the new segment start as a scipy CSR matrix
            and a per-row weight error (or ``None``); :attr:`carried` is updated in place.
        """
        names = list(self.carried)
        if not names and not extras:
            self._flush()
            self.layers.append(layer)
            self.segment += 1
            self.nonneg_start = _nonneg_output(layer)
            return []
        # a carried tensor whose only remaining reader is an activation node of this same
        # kind is activated in this layer instead (parallel branches stay at equal depth)
        fused = [name in self.fusible and self.fusible[name][0] == layer for name in names]
        blocks = [self.explicit_of(self.carried[name]) for name in names] + list(extras)
        flags = fused + [False] * len(extras)
        maps = self._emit_carrying(layer, blocks, flags)
        for name, is_fused, (matrix, werr) in zip(names, fused, maps[: len(names)], strict=True):
            snap = self._pending_from_map(matrix, werr, self.carried[name].shape)
            del self.carried[name]
            if is_fused:
                _, out_name, node_pos = self.fusible.pop(name)
                self.carried[out_name] = snap
                self.fused_nodes.add(node_pos)
            else:
                self.carried[name] = snap
        return maps[len(names) :]

    def explicit_of(self, snap: _Pending) -> Dense:
        """The pending map of ``snap`` (a tensor of the current segment) as a ``Dense``."""
        saved = self.snapshot()
        self.restore(snap, "<carried>")
        layer = self._pending()
        self.restore(saved, "<current>")
        return layer

    def _emit_carrying(
        self, layer: Activation, blocks: Sequence[Dense], activate: Sequence[bool]
    ) -> list[tuple[Any, FloatArray | None]]:
        """Emit ``[current; blocks]`` and ``layer``; a block flagged in ``activate`` is
        activated like the current tensor, the others are carried (see :meth:`activation`)."""
        import scipy.sparse as sp

        carrying = not all(activate)
        if carrying and not isinstance(layer, (ReLU, LeakyReLU, Identity)):
            raise UnsupportedLayerError(
                f"{type(layer).__name__} activation while another input-dependent tensor is "
                "still needed after it (a residual/skip branch or MaxPool): only ReLU, "
                "LeakyReLU and Identity layers carry a tensor exactly"
            )
        n_in = self._in_width if self._index is not None else self.width
        if self._weight is not None:
            n_in = self._weight.shape[1]
        n_rows = self.width + 2 * sum(blk.n_out for blk in blocks)
        what = "carrying tensors past" if carrying else "activating parallel branches in"
        main_sparse = is_sparse(self._weight) or (
            self._weight is None
            and self._index is None
            and prefer_sparse(self.width, self.width, self.width)
        )
        any_sparse = main_sparse or any(blk.sparse for blk in blocks)
        if not any_sparse:
            _check_encoding_size(n_rows, n_in, f"{what} a {type(layer).__name__} layer")
        main = self._pending()
        ws, bs, wes, bes = [main.weight], [main.bias], [_err(main, "w")], [_err(main, "b")]
        offset = main.n_out
        layout: list[tuple[int, np.ndarray, int]] = []
        for blk, act in zip(blocks, activate, strict=True):
            n = blk.n_out
            if act or isinstance(layer, Identity):
                neg = np.zeros(0, dtype=np.int64)
            else:
                we, be = _err(blk, "w"), _err(blk, "b")
                known = (
                    self.nonneg_start
                    & (we == 0.0)
                    & (be == 0.0)
                    & _nonneg_rows(blk.weight)
                    & (blk.bias >= 0.0)
                )
                neg = np.flatnonzero(~known)
            ws += [blk.weight, -blk.weight[neg]]
            bs += [blk.bias, -blk.bias[neg]]
            wes += [_err(blk, "w"), _err(blk, "w")[neg]]
            bes += [_err(blk, "b"), _err(blk, "b")[neg]]
            layout.append((offset, neg, offset + n))
            offset += n + neg.size
        werr, berr = np.concatenate(wes), np.concatenate(bes)
        if any_sparse:
            stacked = _settle_encoding(
                sp.vstack([sp.csr_array(w) for w in ws], format="csr"),
                f"{what} a {type(layer).__name__} layer",
            )
        else:
            stacked = _sparse_if_preferred(np.vstack(ws))
        self.layers.append(
            Dense(
                stacked,
                np.concatenate(bs),
                werr if np.any(werr) else None,
                berr if np.any(berr) else None,
            )
        )
        self.layers.append(layer)
        self.segment += 1
        self.nonneg_start = _nonneg_output(layer)
        width = offset
        self._weight = self._bias = self._werr = self._berr = None
        self._index, self._in_width = np.arange(main.n_out), width
        alpha = layer.alpha if isinstance(layer, LeakyReLU) else 0.0
        scale = 1.0 / (1.0 + alpha)
        maps: list[tuple[Any, FloatArray | None]] = []
        for blk, (start, neg, neg_start) in zip(blocks, layout, strict=True):
            n = blk.n_out
            coef = np.ones(n)
            coef[neg] = scale  # (leaky(x) - leaky(-x)) / (1 + alpha) = x
            rows = np.concatenate([np.arange(n), neg])
            cols = np.concatenate([start + np.arange(n), neg_start + np.arange(neg.size)])
            vals = np.concatenate([coef, -coef[neg]])
            matrix = sp.csr_matrix((vals, (rows, cols)), shape=(n, width))
            err = None
            if neg.size and scale != 1.0 and 1.0 / scale != 1.0 + alpha:
                err = np.zeros(n)
                err[neg] = inflate(2.0 * UNIT * scale, 4)  # the rounded 1 / (1 + alpha)
            maps.append((matrix, err))
        return maps

    def _pending_from_map(self, matrix: Any, werr: FloatArray | None, shape: Shape) -> _Pending:
        """A tensor ``matrix @ s`` of the current segment as a pending map (an index map when
        ``matrix`` only selects)."""
        csr = matrix.tocsr()
        csr.sort_indices()
        width = int(csr.shape[1])
        counts = np.diff(csr.indptr)
        if werr is None and np.all(counts == 1) and np.all(csr.data == 1.0):
            return _Pending(None, None, None, None, shape, self.segment, csr.indices.copy(), width)
        weight = _settle_encoding(csr, "a tensor carried past an activation")
        return _Pending(weight, None, werr, None, shape, self.segment, None, width)

    def start_identity(self) -> None:
        """Make the whole segment start ``s`` (every row of the last emitted layer) the
        current tensor, of shape ``(len(s),)``."""
        last = self.layers[-2] if len(self.layers) >= 2 else None
        if not isinstance(last, Dense) or self._weight is not None or self._bias is not None:
            raise InvalidNetworkError("start_identity needs a freshly emitted activation")
        self._index = None
        self.shape = (last.n_out,)

    def sparse_linear(self, matrix: Any, out_shape: Shape) -> None:
        """Compose ``v -> matrix v`` for a sparse ``matrix`` with small integer entries (sums
        of at most ``k`` terms ``+-v_j`` per row), without forming a dense product with the
        identity: exact on an identity or index pending map, rounding bounded otherwise."""
        import scipy.sparse as sp

        m = sp.csr_matrix(matrix)
        n_out = _prod(out_shape)
        if m.shape != (n_out, self.width):
            raise InvalidNetworkError(
                f"shape mismatch: map of shape {m.shape} applied to a tensor of shape "
                f"{self.shape} giving shape {out_shape}"
            )
        in_width = self._in_width if self._index is not None else None
        if in_width is None:
            in_width = self.width if self._weight is None else self._weight.shape[1]
        absm = abs(m)
        k = int(np.diff(m.indptr).max(initial=0))
        g = _gamma(k + 1) if k > 1 else 0.0
        werr: FloatArray | None = None
        if self._index is not None:
            idx = self._index
            rows = np.flatnonzero(idx >= 0)
            sel = sp.csr_matrix(
                (np.ones(rows.size), (rows, idx[rows])), shape=(idx.size, self._in_width)
            )
            weight = _settle_encoding((m @ sel).tocsr(), "the exact MaxPool encoding")
            self._index = None
        elif self._weight is None:
            weight = _settle_encoding(m, "the exact MaxPool encoding")
        elif is_sparse(self._weight):
            inner = self._weight
            weight = _settle_encoding((m @ inner).tocsr(), "the exact MaxPool encoding")
            werr = g * (absm @ row_abs_sums(inner))
        else:
            inner = self._weight
            _check_encoding_size(n_out, in_width, "the exact MaxPool encoding")
            weight = np.asarray(m @ inner)
            werr = g * (absm @ np.abs(inner).sum(axis=1))
        if self._werr is not None:
            werr = (0.0 if werr is None else werr) + absm @ self._werr
        bias = berr = None
        if self._bias is not None:
            bias = np.asarray(m @ self._bias)
            berr = g * (absm @ np.abs(self._bias))
            if self._berr is not None:
                berr = berr + absm @ self._berr
        self._weight, self._bias = weight, bias
        self._werr = inflate(werr, k + 4) if werr is not None and np.any(werr) else None
        self._berr = inflate(berr, k + 4) if berr is not None and np.any(berr) else None
        self.shape = tuple(int(d) for d in out_shape)

    def finish(self) -> list[Layer]:
        """Emit the pending map; guarantee at least one ``Dense`` layer."""
        self._flush()
        if not any(isinstance(layer, Dense) for layer in self.layers):
            self.layers.append(Dense(np.eye(self.width), np.zeros(self.width)))
        return self.layers

    def _flush(self) -> None:
        if self._weight is None and self._bias is None and self._index is None:
            return
        self.layers.append(_stored(self._pending()))
        self._weight = None
        self._bias = None
        self._werr = None
        self._berr = None


def _settle_encoding(matrix: Any, what: str) -> Any:
    """Storage of an encoding's sparse ``matrix``: kept sparse (CSR) under
    :func:`nncert.verify.network.prefer_sparse` (its non-zeros then count against
    :data:`MAX_ENCODING_ENTRIES`), a dense array otherwise (its entries count)."""
    import scipy.sparse as sp

    csr = sp.csr_array(matrix)
    rows, cols = (int(d) for d in csr.shape)
    if prefer_sparse(rows, cols, int(csr.nnz)):
        if csr.nnz > MAX_ENCODING_ENTRIES:
            raise UnsupportedLayerError(
                f"{what} needs a sparse {rows}x{cols} layer with {csr.nnz} non-zeros, more "
                f"than the {MAX_ENCODING_ENTRIES:.0e} non-zeros nncert's sparse layer "
                "representation allows for it"
            )
        return csr
    _check_encoding_size(rows, cols, what)
    return csr.toarray()


def _identity(n: int) -> Any:
    """The ``n x n`` identity, as a CSR array when :func:`prefer_sparse` holds for it."""
    if prefer_sparse(n, n, n):
        import scipy.sparse as sp

        return sp.identity(n, format="csr", dtype=np.float64)
    return np.eye(n)


def _sparse_if_preferred(weight: Any) -> Any:
    """A dense emitted weight as a CSR array when :func:`nncert.verify.network.prefer_sparse`
    holds for it (a large convolution's matrix), else unchanged."""
    if is_sparse(weight):
        return weight
    rows, cols = (int(d) for d in weight.shape)
    if rows * cols <= netmod.SPARSE_MIN_ENTRIES:  # cheap test first
        return weight
    if prefer_sparse(rows, cols, int(np.count_nonzero(weight))):
        import scipy.sparse as sp

        return sp.csr_array(weight)
    return weight


def _stored(layer: Dense) -> Dense:
    """``layer`` with its weight stored as :func:`_sparse_if_preferred` decides."""
    w = _sparse_if_preferred(layer.weight)
    if w is layer.weight:
        return layer
    return Dense(w, layer.bias, layer.weight_error, layer.bias_error)


def _nonneg_rows(w: Any) -> np.ndarray:
    """Per row of ``w`` (dense or sparse), whether every entry is ``>= 0``."""
    if not is_sparse(w):
        return np.all(np.asarray(w) >= 0.0, axis=1)
    csr = w.tocsr()
    rows = np.repeat(np.arange(csr.shape[0]), np.diff(csr.indptr))
    ok = np.ones(csr.shape[0], dtype=bool)
    ok[rows[csr.data < 0.0]] = False
    return ok


def _check_encoding_size(rows: int, cols: int, what: str) -> None:
    """Refuse a dense ``rows x cols`` layer larger than :data:`MAX_ENCODING_ENTRIES`."""
    if rows * cols > MAX_ENCODING_ENTRIES:
        raise UnsupportedLayerError(
            f"{what} needs a dense {rows}x{cols} layer ({rows * cols * 8 / 1e9:.1f} GB), more "
            f"than the {MAX_ENCODING_ENTRIES:.0e} entries nncert's dense layer representation "
            "allows for it"
        )


def _nonneg_output(layer: Activation) -> bool:
    """Whether every output of ``layer`` is ``>= 0``."""
    if isinstance(layer, HardTanh):
        return layer.min_val >= 0.0
    return isinstance(layer, (ReLU, Sigmoid))


def _sum_error(a: FloatArray, b: FloatArray) -> FloatArray:
    """The exact rounding error ``|(a + b) - fl(a + b)|`` (Knuth's TwoSum)."""
    s = a + b
    bb = s - a
    return np.abs((a - (s - bb)) + (b - bb))


def _add_bias(a: FloatArray | None, b: FloatArray | None) -> FloatArray | None:
    if a is None:
        return None if b is None else np.asarray(b, dtype=np.float64).reshape(-1)
    if b is None:
        return a
    return a + np.asarray(b, dtype=np.float64).reshape(-1)


def _matrix_of(fn: Callable[[FloatArray], FloatArray], in_shape: Shape) -> tuple[FloatArray, Shape]:
    """Matrix of a linear map given as a batched tensor function.

    ``fn`` maps a batch ``(k, *in_shape)`` to ``(k, *out_shape)``; evaluating it on the standard
    basis (``np.eye`` reshaped) gives the columns, i.e. the Jacobian ``A`` with
    ``flat(fn(x)) = A flat(x)``. Only used for rare layouts that have no closed form below.
    """
    n = _prod(in_shape)
    basis = np.eye(n).reshape((n, *in_shape))
    out = np.asarray(fn(basis), dtype=np.float64)
    return np.ascontiguousarray(out.reshape(n, -1).T), tuple(int(s) for s in out.shape[1:])


def _broadcast_matrix(in_shape: Shape, out_shape: Shape) -> FloatArray:
    """0/1 matrix of numpy broadcasting ``in_shape -> out_shape`` (replicates entries)."""
    n = _prod(in_shape)
    source = np.broadcast_to(np.arange(n).reshape(in_shape), out_shape).reshape(-1)
    matrix = np.zeros((source.size, n))
    matrix[np.arange(source.size), source] = 1.0
    return matrix


def _conv_output_shape(
    spatial: Shape, kernel: Shape, strides: Shape, pads: Shape, dilations: Shape
) -> Shape:
    r = len(spatial)
    out = tuple(
        (spatial[i] + pads[i] + pads[r + i] - dilations[i] * (kernel[i] - 1) - 1) // strides[i] + 1
        for i in range(r)
    )
    if any(o <= 0 for o in out):
        raise InvalidNetworkError(
            f"convolution output would be empty: input {spatial}, kernel {kernel}, "
            f"strides {strides}, pads {pads}, dilations {dilations}"
        )
    return out


def _check_conv_geometry(
    r: int, strides: Sequence[int], pads: Sequence[int] | None, dilations: Sequence[int]
) -> None:
    """Reject strides or dilations that are not ``r`` positive integers and pads that are not
    ``2 r`` integers (a corrupt attribute, not a convolution)."""
    if (
        len(strides) != r
        or len(dilations) != r
        or (pads is not None and len(pads) != 2 * r)
        or any(int(v) < 1 for v in (*strides, *dilations))
    ):
        raise InvalidNetworkError(
            f"convolution over {r} spatial axes needs {r} strides and dilations >= 1 and "
            f"{2 * r} pads: got strides {tuple(strides)}, dilations {tuple(dilations)}, "
            f"pads {None if pads is None else tuple(pads)}"
        )


def conv_matrix(
    weight: FloatArray,
    bias: FloatArray | None,
    in_shape: Shape,
    *,
    strides: Sequence[int],
    pads: Sequence[int],
    dilations: Sequence[int],
    group: int,
) -> tuple[FloatArray, FloatArray, Shape]:
    """Lower an N-d convolution of a ``(C, *spatial)`` tensor to a dense (Toeplitz-like) map.

    With ``M`` output channels, ``g`` groups, ``C_g = C / g`` input channels per group and the
    kernel ``K`` of shape ``(M, C_g, *k)``, output channel ``m`` (in group ``m // (M/g)``) at
    position ``o`` is::

        y[m, o] = bias[m] + sum_{c', j} K[m, c', j] * x[(m // (M/g)) * C_g + c', o*s - p + j*d]

    where terms whose input position lies in the zero padding vanish. Hence the matrix
    ``A`` with ``flat(y) = A flat(x) + repeat(bias, prod(out))`` has, for every ``(m, c', j, o)``
    with an in-range input position, the entry ``K[m, c', j]`` at row ``m*prod(out) + flat(o)``
    and column ``c*prod(spatial) + flat(o*s - p + j*d)``. All index arrays are built at once by
    broadcasting over ``(m, c', j, o)``; each (row, column) pair occurs at most once.

    Args:
        weight: ``(M, C_g, *k)``.
        bias: ``(M,)`` or ``None``.
        in_shape: ``(C, *spatial)`` (no batch dimension).
        strides, dilations: one per spatial axis.
        pads: ``(begin_1, ..., begin_r, end_1, ..., end_r)``.
        group: number of groups ``g``.

    Returns:
        ``(A, b, out_shape)`` with ``out_shape = (M, *out_spatial)``.
    """
    weight = np.asarray(weight, dtype=np.float64)
    n_out_ch, c_per_group = int(weight.shape[0]), int(weight.shape[1])
    kernel = tuple(int(k) for k in weight.shape[2:])
    channels, spatial = int(in_shape[0]), tuple(int(s) for s in in_shape[1:])
    r = len(spatial)
    if len(kernel) != r:
        raise InvalidNetworkError(
            f"convolution kernel {weight.shape} does not match input shape {in_shape}"
        )
    if group <= 0 or channels != c_per_group * group or n_out_ch % group:
        raise InvalidNetworkError(
            f"convolution with group={group}: weight {weight.shape} does not fit input "
            f"channels {channels}"
        )
    _check_conv_geometry(r, strides, pads, dilations)
    out_spatial = _conv_output_shape(spatial, kernel, tuple(strides), tuple(pads), tuple(dilations))
    n_pix_out, n_pix_in, n_kernel = _prod(out_spatial), _prod(spatial), _prod(kernel)

    kernel_idx = np.unravel_index(np.arange(n_kernel), kernel)  # r arrays of shape (K,)
    out_idx = np.unravel_index(np.arange(n_pix_out), out_spatial)  # r arrays of shape (O,)
    valid = np.ones((n_kernel, n_pix_out), dtype=bool)
    in_flat = np.zeros((n_kernel, n_pix_out), dtype=np.int64)
    for axis in range(r):  # loop over spatial axes only
        pos = (
            out_idx[axis][None, :] * strides[axis]
            - pads[axis]
            + kernel_idx[axis][:, None] * dilations[axis]
        )
        valid &= (pos >= 0) & (pos < spatial[axis])
        in_flat = in_flat * spatial[axis] + np.clip(pos, 0, spatial[axis] - 1)

    m = np.arange(n_out_ch)[:, None, None, None]
    cg = np.arange(c_per_group)[None, :, None, None]
    in_channel = (m // (n_out_ch // group)) * c_per_group + cg
    rows = m * n_pix_out + np.arange(n_pix_out)[None, None, None, :]
    cols = in_channel * n_pix_in + in_flat[None, None, :, :]
    vals = weight.reshape(n_out_ch, c_per_group, n_kernel)[:, :, :, None]
    full = (n_out_ch, c_per_group, n_kernel, n_pix_out)
    mask = np.broadcast_to(valid[None, None], full)
    matrix = np.zeros((n_out_ch * n_pix_out, channels * n_pix_in))
    matrix[np.broadcast_to(rows, full)[mask], np.broadcast_to(cols, full)[mask]] = np.broadcast_to(
        vals, full
    )[mask]
    b = np.zeros(n_out_ch) if bias is None else np.asarray(bias, dtype=np.float64).reshape(-1)
    return matrix, np.repeat(b, n_pix_out), (n_out_ch, *out_spatial)


def _channel_scale(
    factor: FloatArray, shift: FloatArray, shape: Shape, axis: int
) -> tuple[FloatArray, FloatArray]:
    """Broadcast per-channel ``factor``/``shift`` along ``axis`` of ``shape``; flatten both."""
    view = [1] * len(shape)
    view[axis] = -1
    f = np.broadcast_to(factor.reshape(view), shape).reshape(-1)
    s = np.broadcast_to(shift.reshape(view), shape).reshape(-1)
    return f, s


def _batch_norm(
    chain: _AffineChain,
    gamma: FloatArray,
    beta: FloatArray,
    mean: FloatArray,
    var: FloatArray,
    eps: float,
    axis: int,
) -> None:
    """Fold inference batch normalisation into the pending map.

    ``y = gamma * (x - mean) / sqrt(var + eps) + beta = s * x + (beta - s * mean)`` per channel
    with ``s = gamma / sqrt(var + eps)``.
    """
    if len(chain.shape) <= axis or chain.shape[axis] != gamma.size:
        raise InvalidNetworkError(
            f"shape mismatch: batch normalisation with {gamma.size} channels applied to a "
            f"tensor of shape {chain.shape}"
        )
    if np.any(var + eps <= 0):
        raise InvalidNetworkError("batch normalisation with non-positive var + epsilon")
    s = gamma / np.sqrt(var + eps)
    shift = beta - s * mean
    # var + eps, sqrt and the division each round once: |s - exact| <= 4u |s|; the shift
    # inherits that on |mean| plus its own product and difference
    s_err = 4.0 * UNIT * np.abs(s)
    shift_err = s_err * np.abs(mean) + 2.0 * UNIT * (np.abs(s * mean) + np.abs(shift))
    factor, shift_flat = _channel_scale(s, shift, chain.shape, axis)
    f_err, b_err = _channel_scale(s_err, shift_err, chain.shape, axis)
    chain.scale(factor, shift_flat, factor_error=f_err, bias_error=b_err)


def _clip(chain: _AffineChain, lo: float, hi: float) -> None:
    """Append ``clip(v, lo, hi)`` using ReLU/HardTanh and affine folding.

    ``clip(v, 0, inf) = relu(v)``; ``clip(v, lo, hi) = hardtanh_{lo,hi}(v)`` when both are
    finite (``lo + relu(v - lo) - relu(v - hi)``, one ReLU layer, when another tensor must be
    carried past it); ``clip(v, lo, inf) = relu(v - lo) + lo``;
    ``clip(v, -inf, hi) = hi - relu(hi - v)``.
    """
    if np.isnan(lo) or np.isnan(hi) or lo > hi:
        raise InvalidNetworkError(f"clip bounds must satisfy min <= max, got {lo}, {hi}")
    n = chain.width
    if np.isfinite(lo) and np.isfinite(hi):
        if lo == hi:
            chain.scale(np.zeros(n), np.full(n, lo))
        elif chain.carried:
            # a tensor must be carried past it, which a HardTanh layer cannot do: one ReLU
            # layer instead, clip(v, lo, hi) = lo + relu(v - lo) - relu(v - hi)
            import scipy.sparse as sp

            shape = chain.shape
            eye = sp.identity(n, format="csr")
            chain.sparse_linear(sp.vstack([eye, eye]), (2 * n,))
            chain.shift(np.concatenate([np.full(n, -lo), np.full(n, -hi)]))
            chain.activation(ReLU())
            chain.sparse_linear(sp.hstack([eye, -eye]), shape)
            chain.shift(np.full(n, lo))
        else:
            chain.activation(HardTanh(lo, hi))
    elif np.isfinite(lo):
        if lo != 0.0:
            chain.shift(np.full(n, -lo))
        chain.activation(ReLU())
        if lo != 0.0:
            chain.shift(np.full(n, lo))
    elif np.isfinite(hi):
        chain.scale(-np.ones(n), np.full(n, hi))
        chain.activation(ReLU())
        chain.scale(-np.ones(n), np.full(n, hi))


# --------------------------------------------------------------------------------------------
# ONNX
# --------------------------------------------------------------------------------------------


@dataclass
class _OnnxContext:
    """State of one ONNX import: constants, the chain, and the variable tensors' shapes."""

    chain: _AffineChain
    consts: dict[str, np.ndarray]
    var_shapes: dict[str, Shape]
    current: str
    attrs: dict[str, Any] = field(default_factory=dict)
    #: further outputs of a multi-output operator (Split): name -> pending map
    extra_outputs: dict[str, _Pending] = field(default_factory=dict)

    def const(self, name: str, what: str) -> np.ndarray:
        """The constant tensor ``name`` (native dtype); error if it is not constant."""
        if name not in self.consts:
            raise UnsupportedLayerError(
                f"{what} {name!r} must be a constant (initializer or Constant node)"
            )
        return self.consts[name]

    def float_const(self, name: str, what: str) -> FloatArray:
        """The constant ``name`` as float64, rejecting NaN/inf."""
        with np.errstate(invalid="ignore"):  # a signalling NaN warns when cast; rejected below
            value = np.asarray(self.const(name, what), dtype=np.float64)
        if not np.all(np.isfinite(value)):
            bad = "NaN" if np.isnan(value).any() else "infinite"
            raise InvalidNetworkError(f"{what} {name!r} contains {bad} values")
        return value

    def optional_input(self, node: onnx.NodeProto, index: int) -> str | None:
        """Name of input ``index`` or ``None`` when absent/empty."""
        if index < len(node.input) and node.input[index]:
            return str(node.input[index])
        return None

    def split_var(self, node: onnx.NodeProto) -> tuple[int, str]:
        """Index of the variable input and the name of the (single) other input."""
        if len(node.input) != 2:
            raise InvalidNetworkError(f"expected 2 inputs, got {len(node.input)}")
        var_index = 0 if node.input[0] == self.current else 1
        return var_index, str(node.input[1 - var_index])


def _tensor_array(tensor: onnx.TensorProto, what: str) -> np.ndarray:
    """The array of ``tensor``; an element type that no reader knows (``onnx`` raises
    ``KeyError`` or ``TypeError`` for those, a corrupt file's usual symptom) is an
    :class:`InvalidNetworkError` naming the tensor."""
    try:
        return tensor_to_array(tensor)
    except (KeyError, TypeError) as err:
        raise InvalidNetworkError(
            f"{what} tensor {tensor.name!r} has an unknown element type {tensor.data_type} "
            "(truncated or corrupt model?)"
        ) from err


def _onnx_attrs(node: onnx.NodeProto) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for attr in node.attribute:
        value = attribute_value(attr)
        if isinstance(value, bytes):
            value = value.decode()
        elif is_tensor_proto(value):
            value = _tensor_array(value, f"attribute {attr.name!r} of")
        out[attr.name] = value
    return out


def _dims(value: np.ndarray) -> list[int]:
    return [int(v) for v in np.asarray(value).reshape(-1)]


def _reshape_target(shape: Shape, target: Sequence[int], allowzero: bool) -> Shape:
    """ONNX Reshape semantics: ``0`` copies the input dim (unless allowzero), ``-1`` infers."""
    dims = list(target)
    for i, d in enumerate(dims):
        if d == 0 and not allowzero:
            if i >= len(shape):
                raise InvalidNetworkError(f"Reshape target {list(target)} invalid for {shape}")
            dims[i] = shape[i]
    n = _prod(shape)
    if dims.count(-1) > 1:
        raise InvalidNetworkError(f"Reshape target {list(target)} has more than one -1")
    if -1 in dims:
        known = _prod(d for d in dims if d != -1)
        if known == 0 or n % known:
            raise InvalidNetworkError(f"shape mismatch: cannot reshape {shape} to {list(target)}")
        dims[dims.index(-1)] = n // known
    if _prod(dims) != n or any(d < 0 for d in dims):
        raise InvalidNetworkError(f"shape mismatch: cannot reshape {shape} to {list(target)}")
    return tuple(dims)


def _squeeze_shape(shape: Shape, axes: Sequence[int] | None) -> Shape:
    if axes is None:
        return tuple(s for s in shape if s != 1)
    norm = {a + len(shape) if a < 0 else a for a in axes}
    if any(a >= len(shape) or shape[a] != 1 for a in norm):
        raise InvalidNetworkError(f"Squeeze axes {list(axes)} invalid for shape {shape}")
    return tuple(s for i, s in enumerate(shape) if i not in norm)


def _unsqueeze_shape(shape: Shape, axes: Sequence[int]) -> Shape:
    rank = len(shape) + len(axes)
    norm = sorted(a + rank if a < 0 else a for a in axes)
    if len(set(norm)) != len(norm) or any(not 0 <= a < rank for a in norm):
        raise InvalidNetworkError(f"Unsqueeze axes {list(axes)} invalid for shape {shape}")
    out = list(shape)
    for a in norm:
        out.insert(a, 1)
    return tuple(out)


def _flatten_shape(shape: Shape, axis: int) -> Shape:
    axis = axis + len(shape) if axis < 0 else axis
    if not 0 <= axis <= len(shape):
        raise InvalidNetworkError(f"Flatten axis {axis} invalid for shape {shape}")
    return (_prod(shape[:axis]), _prod(shape[axis:]))


def _axes_from(ctx: _OnnxContext, node: onnx.NodeProto, what: str) -> list[int] | None:
    """Squeeze/Unsqueeze axes: attribute (opset < 13) or second input (opset >= 13)."""
    if "axes" in ctx.attrs:
        return [int(a) for a in ctx.attrs["axes"]]
    name = ctx.optional_input(node, 1)
    return None if name is None else _dims(ctx.const(name, f"{what} axes"))


# -- chain (variable) operators ------------------------------------------------------------


def _matmul_matrix(x_shape: Shape, const: FloatArray, var_left: bool) -> tuple[FloatArray, Shape]:
    """Matrix of ``x -> x @ const`` (``var_left``) or ``x -> const @ x`` with numpy semantics.

    Closed forms cover the usual layouts: for ``x`` of shape ``(1, n)`` or ``(n,)`` and a
    ``(n, m)`` constant the matrix is ``const.T``; for ``x`` of shape ``(L, n)`` it is
    ``kron(I_L, const.T)``; for ``const @ x`` with ``x`` a single column it is ``const``.
    Anything else (batched constants, several columns) falls back to :func:`_matrix_of`.
    """
    probe = np.zeros(x_shape)
    try:
        out_shape = (probe @ const if var_left else const @ probe).shape
    except ValueError as err:
        raise InvalidNetworkError(
            f"shape mismatch: MatMul of {x_shape if var_left else const.shape} and "
            f"{const.shape if var_left else x_shape} ({err})"
        ) from None
    out = tuple(int(s) for s in out_shape)
    if const.ndim == 2:
        if var_left and _prod(x_shape[:-1]) == 1:
            return np.ascontiguousarray(const.T), out
        if var_left:
            return np.asarray(np.kron(np.eye(_prod(x_shape[:-1])), const.T), np.float64), out
        if len(x_shape) == 1 or (x_shape[-1] == 1 and _prod(x_shape[:-2]) == 1):
            return np.ascontiguousarray(const), out

    core = x_shape if len(x_shape) >= 2 else ((1, x_shape[0]) if var_left else (x_shape[0], 1))
    c = const
    if c.ndim == 1:
        c = c.reshape(-1, 1) if var_left else c.reshape(1, -1)
    pad = max(0, c.ndim - len(core))

    def fn(x: FloatArray) -> FloatArray:
        xe = x.reshape((x.shape[0], *([1] * pad), *core))
        y = np.matmul(xe, c) if var_left else np.matmul(c, xe)
        return y.reshape((x.shape[0], *out))

    matrix, _ = _matrix_of(fn, x_shape)
    return matrix, out


def _op_matmul(ctx: _OnnxContext, node: onnx.NodeProto) -> None:
    var_index, other = ctx.split_var(node)
    const = ctx.float_const(other, "MatMul operand")
    matrix, out = _matmul_matrix(ctx.chain.shape, const, var_left=var_index == 0)
    ctx.chain.linear(matrix, None, out)


def _op_gemm(ctx: _OnnxContext, node: onnx.NodeProto) -> None:
    """``Y = alpha * A' B' + beta * C`` with ``A' = A^T`` if transA, ``B' = B^T`` if transB."""
    alpha = float(ctx.attrs.get("alpha", 1.0))
    beta = float(ctx.attrs.get("beta", 1.0))
    trans_a = bool(ctx.attrs.get("transA", 0))
    trans_b = bool(ctx.attrs.get("transB", 0))
    if len(node.input) < 2:
        raise InvalidNetworkError("Gemm needs at least 2 inputs")
    shape = ctx.chain.shape
    if len(shape) != 2:
        raise InvalidNetworkError(f"shape mismatch: Gemm input of shape {shape} is not 2-d")
    if node.input[0] == ctx.current:
        b = ctx.float_const(node.input[1], "Gemm operand B")
        if b.ndim != 2:
            raise InvalidNetworkError(f"shape mismatch: Gemm B has shape {b.shape}")
        b = b.T if trans_b else b
        rows, inner = (shape[1], shape[0]) if trans_a else shape
        if inner != b.shape[0]:
            raise InvalidNetworkError(f"shape mismatch: Gemm of A{(rows, inner)} and B'{b.shape}")
        if rows == 1:
            matrix = alpha * b.T
        else:
            matrix, _ = _matrix_of(
                lambda x: alpha * np.matmul(x.swapaxes(-1, -2) if trans_a else x, b), shape
            )
        out: Shape = (rows, int(b.shape[1]))
    else:
        a = ctx.float_const(node.input[0], "Gemm operand A")
        if a.ndim != 2:
            raise InvalidNetworkError(f"shape mismatch: Gemm A has shape {a.shape}")
        a = a.T if trans_a else a
        inner, cols = (shape[1], shape[0]) if trans_b else shape
        if inner != a.shape[1]:
            raise InvalidNetworkError(f"shape mismatch: Gemm of A'{a.shape} and B{shape}")
        if cols == 1:
            matrix = alpha * a
        else:
            matrix, _ = _matrix_of(
                lambda x: alpha * np.matmul(a, x.swapaxes(-1, -2) if trans_b else x), shape
            )
        out = (int(a.shape[0]), cols)
    bias = None
    c_name = ctx.optional_input(node, 2)
    if c_name is not None:
        c = ctx.float_const(c_name, "Gemm operand C")
        try:
            bias = beta * np.broadcast_to(c, out).reshape(-1)
        except ValueError:
            raise InvalidNetworkError(
                f"shape mismatch: Gemm C of shape {c.shape} does not broadcast to {out}"
            ) from None
    ctx.chain.linear(matrix, bias, out)


def _constant_operand(ctx: _OnnxContext, node: onnx.NodeProto) -> tuple[int, FloatArray]:
    """For a binary element-wise node: the variable's position and the broadcast constant.

    If the constant broadcasts the variable to a larger shape, the replication (a 0/1 matrix)
    is composed into the chain first, so the returned constant is flat with the chain's width.
    """
    var_index, other = ctx.split_var(node)
    c = ctx.float_const(other, f"{node.op_type} operand")
    shape = ctx.chain.shape
    try:
        out = tuple(int(s) for s in np.broadcast_shapes(shape, c.shape))
    except ValueError:
        raise InvalidNetworkError(
            f"shape mismatch: {node.op_type} of shapes {shape} and {c.shape} do not broadcast"
        ) from None
    if out != shape:
        ctx.chain.linear(_broadcast_matrix(shape, out), None, out)
    return var_index, np.broadcast_to(c, out).reshape(-1)


def _op_add(ctx: _OnnxContext, node: onnx.NodeProto) -> None:
    """``v + c``: a shift of the bias."""
    _, c = _constant_operand(ctx, node)
    ctx.chain.shift(c)


def _op_sub(ctx: _OnnxContext, node: onnx.NodeProto) -> None:
    """``v - c`` (shift by ``-c``) or ``c - v`` (negation, then shift by ``c``)."""
    var_index, c = _constant_operand(ctx, node)
    if var_index == 0:
        ctx.chain.shift(-c)
    else:
        ctx.chain.scale(-np.ones(c.size), c)


def _op_mul(ctx: _OnnxContext, node: onnx.NodeProto) -> None:
    """``v * c``: diagonal scaling."""
    _, c = _constant_operand(ctx, node)
    ctx.chain.scale(c, None)


def _op_div(ctx: _OnnxContext, node: onnx.NodeProto) -> None:
    """``v / c``: diagonal scaling by ``1 / c`` (``c / v`` is not affine)."""
    if node.input[0] != ctx.current:
        raise UnsupportedLayerError("Div with the variable as divisor is not affine")
    _, c = _constant_operand(ctx, node)
    if np.any(c == 0):
        raise InvalidNetworkError(f"Div by a constant {node.input[1]!r} containing zeros")
    inv = 1.0 / c
    ctx.chain.scale(inv, None, factor_error=2.0 * UNIT * np.abs(inv))


def _spatial_pads(
    attrs: dict[str, Any], spatial: Shape, kernel: Shape, strides: Shape, dilations: Shape
) -> Shape:
    """Conv/pool pads ``(begin_1..begin_r, end_1..end_r)`` from ``pads`` or ``auto_pad``."""
    r = len(spatial)
    auto_pad = str(attrs.get("auto_pad", "NOTSET"))
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        begin, end = [], []
        for i in range(r):
            out_i = -(-spatial[i] // strides[i])
            total = max(
                0, (out_i - 1) * strides[i] + dilations[i] * (kernel[i] - 1) + 1 - spatial[i]
            )
            small, large = total // 2, total - total // 2
            begin.append(small if auto_pad == "SAME_UPPER" else large)
            end.append(large if auto_pad == "SAME_UPPER" else small)
        return tuple(begin + end)
    if auto_pad == "VALID":
        return (0,) * (2 * r)
    return tuple(int(p) for p in attrs.get("pads", [0] * (2 * r)))


def _op_conv(ctx: _OnnxContext, node: onnx.NodeProto) -> None:
    if node.input[0] != ctx.current:
        raise UnsupportedLayerError("Conv with a variable weight is not affine")
    weight = ctx.float_const(node.input[1], "Conv weight")
    bias_name = ctx.optional_input(node, 2)
    bias = None if bias_name is None else ctx.float_const(bias_name, "Conv bias")
    shape = ctx.chain.shape
    r = weight.ndim - 2
    if len(shape) != r + 2:
        raise InvalidNetworkError(
            f"shape mismatch: Conv weight {weight.shape} applied to input of shape {shape}"
        )
    if shape[0] != 1:
        raise InvalidNetworkError(f"Conv input {shape} has a batch dimension other than 1")
    kernel = tuple(int(k) for k in ctx.attrs.get("kernel_shape", weight.shape[2:]))
    if kernel != tuple(weight.shape[2:]):
        raise InvalidNetworkError(f"Conv kernel_shape {kernel} != weight shape {weight.shape}")
    strides = tuple(int(s) for s in ctx.attrs.get("strides", [1] * r))
    dilations = tuple(int(d) for d in ctx.attrs.get("dilations", [1] * r))
    group = int(ctx.attrs.get("group", 1))
    _check_conv_geometry(r, strides, None, dilations)
    pads = _spatial_pads(ctx.attrs, shape[2:], kernel, strides, dilations)
    matrix, b, out = conv_matrix(
        weight, bias, shape[1:], strides=strides, pads=pads, dilations=dilations, group=group
    )
    ctx.chain.linear(matrix, b, (1, *out))


def _op_batchnorm(ctx: _OnnxContext, node: onnx.NodeProto) -> None:
    if ctx.attrs.get("training_mode", 0):
        raise UnsupportedLayerError("BatchNormalization in training mode")
    if node.input[0] != ctx.current or len(node.input) < 5:
        raise InvalidNetworkError("BatchNormalization needs X, scale, B, mean, var")
    gamma, beta, mean, var = (
        ctx.float_const(name, "BatchNormalization parameter").reshape(-1)
        for name in node.input[1:5]
    )
    eps = float(ctx.attrs.get("epsilon", 1e-5))
    _batch_norm(ctx.chain, gamma, beta, mean, var, eps, axis=1 if len(ctx.chain.shape) > 1 else 0)


def _clip_bound(ctx: _OnnxContext, node: onnx.NodeProto, index: int, attr: str) -> float | None:
    name = ctx.optional_input(node, index)
    if name is not None:
        value = np.asarray(ctx.const(name, f"Clip {attr}"), dtype=np.float64)
        if value.size != 1:
            raise InvalidNetworkError(f"Clip {attr} must be a scalar, got shape {value.shape}")
        return float(value.reshape(-1)[0])
    if attr in ctx.attrs:
        return float(ctx.attrs[attr])
    return None


def _op_clip(ctx: _OnnxContext, node: onnx.NodeProto) -> None:
    lo = _clip_bound(ctx, node, 1, "min")
    hi = _clip_bound(ctx, node, 2, "max")
    # attribute-form Clip (opset < 11) uses float32 limits as "no bound"
    lo = -np.inf if lo is None or lo <= -np.finfo(np.float32).max else lo
    hi = np.inf if hi is None or hi >= np.finfo(np.float32).max else hi
    _clip(ctx.chain, lo, hi)


def _op_leaky(ctx: _OnnxContext, node: onnx.NodeProto) -> None:
    ctx.chain.activation(LeakyReLU(float(ctx.attrs.get("alpha", 0.01))))


def _op_flatten(ctx: _OnnxContext, node: onnx.NodeProto) -> None:
    ctx.chain.reshape(_flatten_shape(ctx.chain.shape, int(ctx.attrs.get("axis", 1))))


def _op_reshape(ctx: _OnnxContext, node: onnx.NodeProto) -> None:
    if node.input[0] != ctx.current:
        raise UnsupportedLayerError("Reshape with a variable target shape")
    target = _dims(ctx.const(node.input[1], "Reshape shape"))
    allowzero = bool(ctx.attrs.get("allowzero", 0))
    ctx.chain.reshape(_reshape_target(ctx.chain.shape, target, allowzero))


def _op_squeeze(ctx: _OnnxContext, node: onnx.NodeProto) -> None:
    ctx.chain.reshape(_squeeze_shape(ctx.chain.shape, _axes_from(ctx, node, "Squeeze")))


def _op_unsqueeze(ctx: _OnnxContext, node: onnx.NodeProto) -> None:
    axes = _axes_from(ctx, node, "Unsqueeze")
    if axes is None:
        raise InvalidNetworkError("Unsqueeze without axes")
    ctx.chain.reshape(_unsqueeze_shape(ctx.chain.shape, axes))


def _op_identity(ctx: _OnnxContext, node: onnx.NodeProto) -> None:
    """Identity (and inference-mode Dropout): nothing to do."""


def _op_shape(ctx: _OnnxContext, node: onnx.NodeProto) -> None:
    """``Shape`` of a chain tensor is a constant (batch dimension taken as 1)."""
    shape = ctx.var_shapes[str(node.input[0])]
    start = int(ctx.attrs.get("start", 0))
    end = ctx.attrs.get("end")
    ctx.consts[str(node.output[0])] = np.array(
        shape[start : None if end is None else int(end)], dtype=np.int64
    )


# -- index maps and other linear operators on the chain -------------------------------------


def _select(ctx: _OnnxContext, index: np.ndarray, values: np.ndarray | None = None) -> None:
    """Compose the selection ``y[r] = v[index[r]]`` (``index[r] >= 0``) or ``values[r]``.

    ``index`` is the operator applied to ``arange(width).reshape(shape)`` (with ``-1`` where the
    output is a constant), so Transpose, Slice, Gather, Pad, Expand and Concat with constants
    are all exact 0/1 matrices plus a constant bias; ``values`` holds those constants (0
    elsewhere).
    """
    ctx.chain.select(index, values, tuple(int(d) for d in np.shape(index)))


def _chain_index(ctx: _OnnxContext) -> np.ndarray:
    return np.arange(ctx.chain.width, dtype=np.int64).reshape(ctx.chain.shape)


def _slice_array(
    x: np.ndarray,
    starts: Sequence[int],
    ends: Sequence[int],
    axes: Sequence[int] | None,
    steps: Sequence[int] | None,
) -> np.ndarray:
    """ONNX Slice: per axis ``start:end:step`` with ONNX's clamping of out-of-range bounds."""
    axes = list(range(len(starts))) if axes is None else list(axes)
    steps = [1] * len(starts) if steps is None else list(steps)
    if not len(starts) == len(ends) == len(axes) == len(steps):
        raise InvalidNetworkError("Slice starts, ends, axes and steps differ in length")
    index: list[slice] = [slice(None)] * x.ndim
    for start, end, axis, step in zip(starts, ends, axes, steps, strict=True):
        axis = axis + x.ndim if axis < 0 else axis
        if not 0 <= axis < x.ndim or step == 0:
            raise InvalidNetworkError(f"Slice axis {axis} or step {step} invalid for {x.shape}")
        dim = x.shape[axis]
        start = start + dim if start < 0 else start
        end = end + dim if end < 0 else end
        if step > 0:
            index[axis] = slice(min(max(start, 0), dim), min(max(end, 0), dim), step)
        else:
            lo, hi = min(max(start, 0), dim - 1), min(max(end, -1), dim - 1)
            index[axis] = slice(lo, None if hi < 0 else hi, step)
    return x[tuple(index)]


def _slice_args(
    inputs: Sequence[np.ndarray | None], attrs: dict[str, Any]
) -> tuple[list[int], list[int], list[int] | None, list[int] | None]:
    if "starts" in attrs:  # opset < 10
        axes = attrs.get("axes")
        return (
            list(attrs["starts"]),
            list(attrs["ends"]),
            None if axes is None else list(axes),
            None,
        )

    def opt(i: int) -> list[int] | None:
        return None if len(inputs) <= i or inputs[i] is None else _dims(inputs[i])  # type: ignore[arg-type]

    starts, ends = opt(1), opt(2)
    if starts is None or ends is None:
        raise InvalidNetworkError("Slice needs starts and ends")
    return starts, ends, opt(3), opt(4)


def _const_inputs(ctx: _OnnxContext, node: onnx.NodeProto) -> list[np.ndarray | None]:
    """The node's inputs with constants filled in (``None`` for the variable and absent ones)."""
    return [ctx.consts.get(str(name)) if name else None for name in node.input]


def _op_transpose(ctx: _OnnxContext, node: onnx.NodeProto) -> None:
    _select(ctx, np.transpose(_chain_index(ctx), ctx.attrs.get("perm")))


def _op_slice(ctx: _OnnxContext, node: onnx.NodeProto) -> None:
    if node.input[0] != ctx.current:
        raise UnsupportedLayerError("Slice with input-dependent starts/ends")
    starts, ends, axes, steps = _slice_args(_const_inputs(ctx, node), ctx.attrs)
    _select(ctx, _slice_array(_chain_index(ctx), starts, ends, axes, steps))


def _op_gather(ctx: _OnnxContext, node: onnx.NodeProto) -> None:
    if node.input[0] != ctx.current:
        raise UnsupportedLayerError("Gather with input-dependent indices")
    indices = ctx.const(node.input[1], "Gather indices").astype(np.int64)
    _select(ctx, np.take(_chain_index(ctx), indices, axis=int(ctx.attrs.get("axis", 0))))


def _pad_array(x: np.ndarray, pads: Sequence[int], mode: str, fill: Any) -> np.ndarray:
    """ONNX Pad (``pads``: all begins then all ends; negative pads crop)."""
    r = x.ndim
    if len(pads) != 2 * r:
        raise InvalidNetworkError(f"Pad: {len(pads)} pads for a rank-{r} tensor")
    crop = tuple(slice(max(-pads[i], 0), x.shape[i] - max(-pads[r + i], 0)) for i in range(r))
    x = x[crop]
    widths = [(max(pads[i], 0), max(pads[r + i], 0)) for i in range(r)]
    if mode == "constant":
        return np.pad(x, widths, mode="constant", constant_values=fill)
    if mode in ("edge", "reflect", "wrap"):
        return np.pad(x, widths, mode=mode)  # type: ignore[call-overload]
    raise UnsupportedLayerError(f"Pad mode {mode!r}")


def _pad_args(
    inputs: Sequence[np.ndarray | None], attrs: dict[str, Any], rank: int
) -> tuple[list[int], float]:
    if "pads" in attrs:  # opset < 11
        return list(attrs["pads"]), float(attrs.get("value", 0.0))
    if len(inputs) < 2 or inputs[1] is None:
        raise InvalidNetworkError("Pad needs pads")
    pads = _dims(inputs[1])
    value = 0.0
    if len(inputs) > 2 and inputs[2] is not None and np.size(inputs[2]):
        value = float(np.asarray(inputs[2]).reshape(-1)[0])
    if len(inputs) > 3 and inputs[3] is not None:  # opset 18 axes
        axes = [a + rank if a < 0 else a for a in _dims(inputs[3])]
        full = [0] * (2 * rank)
        for k, a in enumerate(axes):
            full[a], full[rank + a] = pads[k], pads[len(axes) + k]
        pads = full
    return pads, value


def _op_pad(ctx: _OnnxContext, node: onnx.NodeProto) -> None:
    if node.input[0] != ctx.current:
        raise UnsupportedLayerError("Pad with input-dependent pads")
    pads, value = _pad_args(_const_inputs(ctx, node), ctx.attrs, len(ctx.chain.shape))
    if not np.isfinite(value):
        raise InvalidNetworkError(f"Pad value {value} is not finite")
    mode = str(ctx.attrs.get("mode", "constant"))
    index = _pad_array(_chain_index(ctx), pads, mode, -1)
    _select(ctx, index, np.full(index.shape, value))


def _op_concat(ctx: _OnnxContext, node: onnx.NodeProto) -> None:
    """Concat of the variable with constants: a selection plus a constant bias."""
    axis = int(ctx.attrs["axis"])
    parts_i, parts_v = [], []
    for name in node.input:
        if name == ctx.current:
            idx = _chain_index(ctx)
            parts_i.append(idx)
            parts_v.append(np.zeros(idx.shape))
        else:
            c = ctx.float_const(str(name), "Concat operand")
            parts_i.append(np.full(c.shape, -1, dtype=np.int64))
            parts_v.append(c)
    _select(ctx, np.concatenate(parts_i, axis=axis), np.concatenate(parts_v, axis=axis))


def _op_expand(ctx: _OnnxContext, node: onnx.NodeProto) -> None:
    if node.input[0] != ctx.current:
        raise UnsupportedLayerError("Expand with an input-dependent shape")
    target = _dims(ctx.const(node.input[1], "Expand shape"))
    idx = _chain_index(ctx)
    _select(ctx, np.broadcast_to(idx, np.broadcast_shapes(idx.shape, tuple(target))))


def _op_split(ctx: _OnnxContext, node: onnx.NodeProto) -> None:
    """Split of the variable: each output is a Slice of it (an index map); output 0 becomes
    the current tensor, the others are recorded as further branches."""
    ctx.attrs["_n_outputs"] = len(node.output)
    start = ctx.chain.snapshot()
    parts = _const_split([_chain_index(ctx), *_const_inputs(ctx, node)[1:]], ctx.attrs)
    for k in range(len(parts) - 1, -1, -1):  # output 0 last, so it stays in the chain
        ctx.chain.restore(start, ctx.current)
        _select(ctx, parts[k])
        if k and node.output[k]:
            ctx.extra_outputs[str(node.output[k])] = ctx.chain.snapshot()


def _op_neg(ctx: _OnnxContext, node: onnx.NodeProto) -> None:
    ctx.chain.scale(-np.ones(ctx.chain.width), None)


def _op_cast(ctx: _OnnxContext, node: onnx.NodeProto) -> None:
    """Cast of the variable to float32/float64: the identity on the real-valued model."""
    to = np.dtype(np_dtype(int(ctx.attrs["to"])))
    if to not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise UnsupportedLayerError(f"Cast of the input-dependent tensor to {to}")


def _sum_rows(ctx: _OnnxContext, group: np.ndarray, out_shape: Shape) -> None:
    """Compose ``y[g] = sum_{j: group[j] = g} v[j]`` (``group``: output row of each input)."""
    g = np.asarray(group, dtype=np.int64).reshape(-1)
    matrix = np.zeros((_prod(out_shape), g.size))
    matrix[g, np.arange(g.size)] = 1.0
    ctx.chain.linear(matrix, None, out_shape)


def _divide(ctx: _OnnxContext, divisor: np.ndarray) -> None:
    """Compose ``v -> v / divisor`` (the rounded reciprocal's error is accounted for)."""
    inv = 1.0 / np.broadcast_to(np.asarray(divisor, np.float64), (ctx.chain.width,))
    ctx.chain.scale(inv, None, factor_error=UNIT * np.abs(inv))


def _reduce(ctx: _OnnxContext, node: onnx.NodeProto, mean: bool) -> None:
    shape = ctx.chain.shape
    axes: list[int] | None
    if "axes" in ctx.attrs:
        axes = [int(a) for a in ctx.attrs["axes"]]
    else:
        name = ctx.optional_input(node, 1)
        axes = None if name is None else _dims(ctx.const(name, f"{node.op_type} axes"))
    if not axes:
        if ctx.attrs.get("noop_with_empty_axes", 0):
            return
        axes = list(range(len(shape)))
    norm = sorted({a + len(shape) if a < 0 else a for a in axes})
    keep = tuple(1 if i in norm else s for i, s in enumerate(shape))
    group = np.broadcast_to(np.arange(_prod(keep)).reshape(keep), shape)
    out = (
        keep
        if ctx.attrs.get("keepdims", 1)
        else tuple(s for i, s in enumerate(shape) if i not in norm)
    )
    _sum_rows(ctx, group, out)
    if mean:
        _divide(ctx, np.asarray(_prod(shape[a] for a in norm)))


def _op_reduce_sum(ctx: _OnnxContext, node: onnx.NodeProto) -> None:
    _reduce(ctx, node, mean=False)


def _op_reduce_mean(ctx: _OnnxContext, node: onnx.NodeProto) -> None:
    _reduce(ctx, node, mean=True)


def _op_global_average_pool(ctx: _OnnxContext, node: onnx.NodeProto) -> None:
    shape = ctx.chain.shape
    ctx.attrs = {"axes": list(range(2, len(shape))), "keepdims": 1}
    _reduce(ctx, node, mean=True)


def _op_average_pool(ctx: _OnnxContext, node: onnx.NodeProto) -> None:
    """AveragePool: a depthwise convolution with a kernel of ones, then a division by the
    window size (``count_include_pad``) or by the number of in-range entries."""
    shape = ctx.chain.shape
    if len(shape) < 3 or shape[0] != 1:
        raise InvalidNetworkError(f"AveragePool input {shape} is not (1, C, *spatial)")
    if int(ctx.attrs.get("ceil_mode", 0)):
        raise UnsupportedLayerError("AveragePool with ceil_mode=1")
    kernel = tuple(int(k) for k in ctx.attrs["kernel_shape"])
    r = len(kernel)
    strides = tuple(int(s) for s in ctx.attrs.get("strides", [1] * r))
    dilations = tuple(int(d) for d in ctx.attrs.get("dilations", [1] * r))
    pads = _spatial_pads(ctx.attrs, shape[2:], kernel, strides, dilations)
    channels = shape[1]
    weight = np.ones((channels, 1, *kernel))
    matrix, _, out = conv_matrix(
        weight, None, shape[1:], strides=strides, pads=pads, dilations=dilations, group=channels
    )
    if int(ctx.attrs.get("count_include_pad", 0)):
        count = np.full(matrix.shape[0], float(_prod(kernel)))
    else:
        count = matrix.sum(axis=1)
    inv = 1.0 / count
    # each entry 1/count rounds once: row error <= u * sum |entries|
    matrix *= inv[:, None]
    ctx.chain.linear(matrix, None, (1, *out), weight_error=UNIT * np.abs(matrix).sum(axis=1))


def _pool_windows(
    shape: Shape, kernel: Shape, strides: Shape, pads: Shape, dilations: Shape
) -> tuple[np.ndarray, Shape]:
    """Input indices of each pooling window over a ``(C, *spatial)`` tensor, valid entries
    first and ``-1`` after them (padding), shape ``(n_out, prod(kernel))``, and the output
    shape ``(C, *out)``."""
    r = len(kernel)
    channels, spatial = shape[0], shape[1:]
    if len(spatial) != r:
        raise InvalidNetworkError(f"pooling kernel {kernel} for a tensor of shape {shape}")
    _check_conv_geometry(r, strides, pads, dilations)
    out = _conv_output_shape(spatial, kernel, strides, pads, dilations)
    # flat index = c * prod(spatial) + sum_i pos_i * step_i, pos_i = o_i s_i - p_i + k_i d_i
    steps = [_prod(spatial[i + 1 :]) for i in range(r)]
    full = (channels, *out, *kernel)
    flat = (np.arange(channels) * _prod(spatial)).reshape((channels,) + (1,) * (2 * r))
    valid = np.ones((1,) * (1 + 2 * r), dtype=bool)
    for i in range(r):
        o = np.arange(out[i]).reshape(-1, 1)
        k = np.arange(kernel[i]).reshape(1, -1)
        pos = o * strides[i] - pads[i] + k * dilations[i]  # (out_i, kernel_i)
        view = [1] * (1 + 2 * r)
        view[1 + i], view[1 + r + i] = out[i], kernel[i]
        pos = pos.reshape(view)
        valid = valid & (pos >= 0) & (pos < spatial[i])
        flat = flat + pos * steps[i]
    flat = np.broadcast_to(flat, full).reshape(-1, _prod(kernel))
    valid = np.broadcast_to(valid, full).reshape(-1, _prod(kernel))
    if not np.all(valid.any(axis=1)):
        raise InvalidNetworkError("a pooling window lies entirely in the padding")
    order = np.argsort(~valid, axis=1, kind="stable")
    idx = np.where(
        np.take_along_axis(valid, order, axis=1), np.take_along_axis(flat, order, axis=1), -1
    )
    return idx.astype(np.int64), (channels, *out)


def _max_pool(chain: _AffineChain, elem: np.ndarray, out_shape: Shape) -> None:
    r"""Compose ``y[o] = max_j v[elem[o, j]]`` (``elem``: valid indices first, then ``-1``) as a
    balanced tree of pairwise maxima in ReLU layers, exactly:
    :math:`\max(a, b) = b + \mathrm{relu}(a - b)`.

    Each level emits one ``Dense`` + ``ReLU`` pair: ``a - b`` for every pair of the current
    candidates of every window, and ``b`` (and a lone last candidate) *carried* through the
    ReLU (:meth:`_AffineChain.activation`: as ``relu(b) - relu(-b)``, or just ``relu(b)``
    when ``b >= 0`` is structural, e.g. after a ReLU). The candidates of the next level are
    ``relu(a - b) + b``; a window of ``k`` valid entries needs ``ceil(log2 k)`` levels. The
    result is affine in the last layer and composes with the following affine operators.
    """
    import scipy.sparse as sp

    values = sp.identity(chain.width, format="csr")  # candidate values, rows over the base
    elem = elem[:, : max(1, int((elem >= 0).sum(axis=1).max(initial=1)))]
    while elem.shape[1] > 1:
        a = elem[:, 0::2]
        b = np.full(a.shape, -1, dtype=np.int64)
        half = elem[:, 1::2]
        b[:, : half.shape[1]] = half
        fa, fb = a.reshape(-1), b.reshape(-1)
        alive = np.flatnonzero(fa >= 0)  # one new candidate each
        both = alive[fb[alive] >= 0]
        diff = values[fa[both]] - values[fb[both]]
        # carried: b of a pair, a when it is alone
        keep = np.where(fb[alive] >= 0, fb[alive], fa[alive])
        base = chain.snapshot()
        chain.sparse_linear(values[keep], (keep.size,))
        carried = chain.explicit()
        chain.restore(base, "<MaxPool input>")
        chain.sparse_linear(diff, (both.size,))
        ((carry_map, carry_err),) = chain.activation(ReLU(), [carried])
        if carry_err is not None:  # pragma: no cover - ReLU carries with coefficients +-1
            raise InvalidNetworkError("MaxPool carry is inexact")
        chain.start_identity()
        rank = np.full(fa.size, -1, dtype=np.int64)
        rank[alive] = np.arange(alive.size)
        relu_diff = sp.csr_matrix(
            (np.ones(both.size), (rank[both], np.arange(both.size))),
            shape=(alive.size, chain.width),
        )
        values = (carry_map + relu_diff).tocsr()
        elem = rank.reshape(a.shape)
    chain.sparse_linear(values[elem[:, 0]], out_shape)


def _op_max_pool(ctx: _OnnxContext, node: onnx.NodeProto) -> None:
    """MaxPool (:func:`_max_pool`); padding (``-inf`` in ONNX) is left out of the windows."""
    if len(node.output) > 1 and node.output[1]:
        raise UnsupportedLayerError("MaxPool's Indices output")
    shape = ctx.chain.shape
    if len(shape) < 3 or shape[0] != 1:
        raise InvalidNetworkError(f"MaxPool input {shape} is not (1, C, *spatial)")
    if int(ctx.attrs.get("ceil_mode", 0)):
        raise UnsupportedLayerError("MaxPool with ceil_mode=1")
    kernel = tuple(int(k) for k in ctx.attrs["kernel_shape"])
    r = len(kernel)
    strides = tuple(int(s) for s in ctx.attrs.get("strides", [1] * r))
    dilations = tuple(int(d) for d in ctx.attrs.get("dilations", [1] * r))
    pads = _spatial_pads(ctx.attrs, shape[2:], kernel, strides, dilations)
    elem, out = _pool_windows(shape[1:], kernel, strides, pads, dilations)
    _max_pool(ctx.chain, elem, (1, *out))


# -- powers and products of input-dependent tensors -------------------------------------------


def _refuse_carry_past_power(ctx: _OnnxContext, what: str) -> None:
    """A rectified-power layer cannot carry another tensor exactly (``relu(x) - relu(-x)``
    needs a ReLU layer), so a tensor still read after the power/product is refused."""
    if ctx.chain.carried:
        names = ", ".join(repr(n) for n in sorted(ctx.chain.carried))
        raise UnsupportedLayerError(
            f"{what} while the input-dependent tensor(s) {names} are still read after it (a "
            "skip/residual path around a power, product or softmax): only ReLU, LeakyReLU and "
            "Identity layers carry a tensor exactly"
        )


def _structurally_nonneg(chain: _AffineChain) -> bool:
    """Whether every entry of the current tensor is ``>= 0`` by construction: exact
    non-negative coefficients and bias on a non-negative segment start."""
    if not chain.nonneg_start:
        return False
    layer = chain.explicit()
    return bool(layer.exact and np.all(_nonneg_rows(layer.weight)) and np.all(layer.bias >= 0.0))


def _signed_power(ctx: _OnnxContext, p: int, what: str) -> None:
    r"""``v -> v^p`` for an integer ``p >= 2``, exactly, through one rectified-power layer:
    :math:`v^p = \max(v, 0)^p + (-1)^p \max(-v, 0)^p` (one of the terms is 0), i.e.
    ``Dense [I; -I]``, ``RectifiedPower(p)``, ``[I, (-1)^p I]`` (a structurally
    non-negative ``v`` needs only ``max(v, 0)^p``)."""
    _refuse_carry_past_power(ctx, what)
    chain = ctx.chain
    shape, n = chain.shape, chain.width
    eye = np.eye(n)
    if _structurally_nonneg(chain):
        chain.activation(RectifiedPower(float(p)))
        chain.reshape(shape)
        return
    chain.linear(np.vstack([eye, -eye]), None, (2 * n,))
    chain.activation(RectifiedPower(float(p)))
    chain.linear(np.hstack([eye, eye if p % 2 == 0 else -eye]), None, shape)


def _op_pow(ctx: _OnnxContext, node: onnx.NodeProto) -> None:
    """``Pow(v, p)`` with a constant exponent (one value): ``p = 0`` the constant 1, ``p = 1``
    the identity, integer ``p >= 2`` :func:`_signed_power`, a real ``p > 1`` on a tensor that is
    ``>= 0`` by construction (after a ReLU, with non-negative weights) one rectified-power
    layer; anything else (negative or fractional exponents below 1, real exponents of a
    sign-changing tensor: NaN in ONNX) is refused."""
    if node.input[0] != ctx.current:
        raise UnsupportedLayerError("Pow with an input-dependent exponent is not supported")
    e = np.unique(ctx.float_const(str(node.input[1]), "Pow exponent"))
    if e.size != 1:
        raise UnsupportedLayerError(
            f"Pow with different exponents per element ({e.size} values) is not supported"
        )
    p = float(e[0])
    if p == 1.0:
        return
    if p == 0.0:  # x^0 = 1 for every x (ONNX and IEEE: 0^0 = 1)
        ctx.chain.scale(np.zeros(ctx.chain.width), np.ones(ctx.chain.width))
        return
    if p == int(p) and p >= 2.0:
        _signed_power(ctx, int(p), f"Pow with exponent {p:g}")
        return
    if p > 1.0 and _structurally_nonneg(ctx.chain):
        _refuse_carry_past_power(ctx, f"Pow with exponent {p:g}")
        shape = ctx.chain.shape
        ctx.chain.activation(RectifiedPower(p))
        ctx.chain.reshape(shape)
        return
    raise UnsupportedLayerError(
        f"Pow with exponent {p:g}: only exponents 0, 1 and integers >= 2 are supported, or a "
        "real exponent > 1 of a tensor that is >= 0 by construction (e.g. after a ReLU)"
    )


def _merge_mul(ctx: _OnnxContext, node: onnx.NodeProto, snaps: dict[str, _Pending]) -> None:
    r"""``a * b`` of two input-dependent tensors of the same segment, by polarization:
    :math:`ab = \frac14 ((a + b)^2 - (a - b)^2)`, each square as
    :math:`\max(w, 0)^2 + \max(-w, 0)^2` in one rectified-power layer: ``Dense`` rows
    ``a + b, -(a + b), a - b, -(a - b)``, ``RectifiedPower(2)``, then the weights
    ``1/4, 1/4, -1/4, -1/4`` (exact in binary). Exact in real arithmetic; ``x * x`` is
    :func:`_signed_power` with ``p = 2``. Operands broadcast to a common shape first."""
    if len(node.input) != 2:
        raise InvalidNetworkError(f"expected 2 inputs, got {len(node.input)}")
    a_name, b_name = (str(n) for n in node.input)
    what = "Mul of two input-dependent tensors"
    if a_name == b_name:
        ctx.chain.restore(snaps[a_name], a_name)
        _signed_power(ctx, 2, what)
        return
    _refuse_carry_past_power(ctx, what)
    sa, sb = snaps[a_name].shape, snaps[b_name].shape
    try:
        out = tuple(int(d) for d in np.broadcast_shapes(sa, sb))
    except ValueError:
        raise InvalidNetworkError(
            f"shape mismatch: Mul of shapes {sa} and {sb} do not broadcast"
        ) from None
    blocks = []
    for name, shape in ((a_name, sa), (b_name, sb)):
        ctx.chain.restore(snaps[name], name)
        if shape != out:
            ctx.chain.linear(_broadcast_matrix(shape, out), None, out)
        blocks.append(ctx.chain.explicit())
    n = _prod(out)
    stacked = Dense(
        np.vstack([dense_weight(blk.weight, "a product of tensors") for blk in blocks]),
        np.concatenate([blk.bias for blk in blocks]),
        np.concatenate([_err(blk, "w") for blk in blocks]),
        np.concatenate([_err(blk, "b") for blk in blocks]),
    )
    ctx.chain.set_pending(stacked, (2 * n,))
    eye = np.eye(n)
    ctx.chain.linear(np.block([[eye, eye], [-eye, -eye], [eye, -eye], [-eye, eye]]), None, (4 * n,))
    ctx.chain.activation(RectifiedPower(2.0))
    ctx.chain.linear(0.25 * np.hstack([eye, eye, -eye, -eye]), None, out)


def _op_softmax(ctx: _OnnxContext, node: onnx.NodeProto) -> None:
    r"""Softmax over a tensor with one non-unit dimension, the softmax axis (what both the
    opset < 13 semantics, over the flattened trailing dimensions, and the newer one, over one
    axis, agree on), exactly in real arithmetic:

    * ``n = 1``: the constant 1;
    * ``n = 2``: :math:`\mathrm{softmax}_i = \sigma(z_i - z_{1-i})` (a Sigmoid layer);
    * ``n >= 3``: :math:`\mathrm{softmax}_i = 1 / (1 + S_i)`,
      :math:`S_i = \sum_{j \ne i} e^{z_j - z_i}`: ``Dense`` rows ``z_j - z_i``, an
      :class:`~nncert.verify.network.Exp` layer, the sums ``S_i``, a
      :class:`~nncert.verify.network.NegReciprocal1p` layer (:math:`-1/(1 + S_i)`, as
      ``S_i >= 0``), and a negation.
    """
    chain = ctx.chain
    shape, n = chain.shape, chain.width
    axis = int(ctx.attrs.get("axis", -1))
    if not -len(shape) <= axis < len(shape) or shape[axis] != n:
        raise UnsupportedLayerError(
            f"Softmax over axis {axis} of a tensor of shape {shape}: only a softmax over the "
            "one non-unit dimension of the tensor is supported"
        )
    _refuse_carry_past_power(ctx, "Softmax")
    if n == 1:
        chain.scale(np.zeros(1), np.ones(1))
        return
    if n == 2:
        chain.linear(np.array([[1.0, -1.0], [-1.0, 1.0]]), None, (2,))
        chain.activation(Sigmoid())
        chain.reshape(shape)
        return
    pairs = [(i, j) for i in range(n) for j in range(n) if j != i]
    _check_encoding_size(len(pairs), n, f"Softmax over {n} entries")
    diff = np.zeros((len(pairs), n))
    sums = np.zeros((n, len(pairs)))
    for r, (i, j) in enumerate(pairs):
        diff[r, j], diff[r, i] = 1.0, -1.0
        sums[i, r] = 1.0
    chain.linear(diff, None, (len(pairs),))
    chain.activation(Exp())
    chain.linear(sums, None, (n,))
    chain.activation(NegReciprocal1p())
    chain.linear(-np.eye(n), None, shape)


def _activation_op(layer: Activation) -> Callable[[_OnnxContext, onnx.NodeProto], None]:
    def handler(ctx: _OnnxContext, node: onnx.NodeProto) -> None:
        ctx.chain.activation(layer)

    return handler


#: Chain operators whose output is a constant (the chain does not advance through them).
_CONSTANT_RESULT_OPS: frozenset[str] = frozenset({"Shape"})

OnnxChainHandler: TypeAlias = Callable[[_OnnxContext, "onnx.NodeProto"], None]

#: Operators applied to the variable (input-dependent) tensor, keyed by ONNX ``op_type``.
ONNX_CHAIN_OPS: dict[str, OnnxChainHandler] = {
    "Gemm": _op_gemm,
    "MatMul": _op_matmul,
    "Add": _op_add,
    "Sub": _op_sub,
    "Mul": _op_mul,
    "Div": _op_div,
    "Conv": _op_conv,
    "BatchNormalization": _op_batchnorm,
    "Relu": _activation_op(ReLU()),
    "LeakyRelu": _op_leaky,
    "Sigmoid": _activation_op(Sigmoid()),
    "Tanh": _activation_op(Tanh()),
    "Clip": _op_clip,
    "Flatten": _op_flatten,
    "Reshape": _op_reshape,
    "Squeeze": _op_squeeze,
    "Unsqueeze": _op_unsqueeze,
    "Identity": _op_identity,
    "Dropout": _op_identity,
    "Shape": _op_shape,
    "Neg": _op_neg,
    "Split": _op_split,
    "Cast": _op_cast,
    "Transpose": _op_transpose,
    "Slice": _op_slice,
    "Gather": _op_gather,
    "Pad": _op_pad,
    "Concat": _op_concat,
    "Expand": _op_expand,
    "ReduceSum": _op_reduce_sum,
    "ReduceMean": _op_reduce_mean,
    "AveragePool": _op_average_pool,
    "MaxPool": _op_max_pool,
    "GlobalAveragePool": _op_global_average_pool,
    "Pow": _op_pow,
    "Softmax": _op_softmax,
    "Exp": _activation_op(Exp()),
}


# -- merges of parallel branches ------------------------------------------------------------


def _branch(ctx: _OnnxContext, snaps: dict[str, _Pending], name: str) -> Dense:
    """The pending map of branch ``name`` as an explicit ``Dense`` from the segment start."""
    ctx.chain.restore(snaps[name], name)
    return ctx.chain.explicit()


def _err(layer: Dense, which: str) -> FloatArray:
    value = layer.weight_error if which == "w" else layer.bias_error
    return np.zeros(layer.weight.shape[0]) if value is None else value


def _merge_add(ctx: _OnnxContext, node: onnx.NodeProto, snaps: dict[str, _Pending]) -> None:
    """``a + b`` or ``a - b`` of two branches affine in the same segment start ``s``.

    ``(W_a s + b_a) +- (W_b s + b_b) = (W_a +- W_b) s + (b_a +- b_b)``; the sums round once
    per entry, which is added to the branches' own composition errors.
    """
    if len(node.input) != 2:
        raise InvalidNetworkError(f"expected 2 inputs, got {len(node.input)}")
    a_name, b_name = (str(n) for n in node.input)
    a, b = _branch(ctx, snaps, a_name), _branch(ctx, snaps, b_name)
    if snaps[a_name].shape != snaps[b_name].shape:
        raise UnsupportedLayerError(
            f"{node.op_type} of input-dependent tensors of different shapes "
            f"{snaps[a_name].shape} and {snaps[b_name].shape} (broadcasting)"
        )
    sign = -1.0 if node.op_type == "Sub" else 1.0
    weight = dense_weight(a.weight, node.op_type) + sign * dense_weight(b.weight, node.op_type)
    bias = a.bias + sign * b.bias
    werr = _err(a, "w") + _err(b, "w") + UNIT * np.abs(weight).sum(axis=1)
    berr = _err(a, "b") + _err(b, "b") + _sum_error(a.bias, sign * b.bias)
    merged = Dense(weight, bias, inflate(werr, 4), inflate(berr, 4))
    ctx.chain.set_pending(merged, snaps[a_name].shape)


def _merge_concat(ctx: _OnnxContext, node: onnx.NodeProto, snaps: dict[str, _Pending]) -> None:
    """Concat of branches (and constants): their maps' rows stacked, then permuted into the
    concatenation's C order (an exact index map)."""
    axis = int(ctx.attrs["axis"])
    blocks: list[Dense | FloatArray] = []  # a branch's map, or a constant's values
    parts: list[np.ndarray] = []
    offset, n_in = 0, 0
    for name in (str(n) for n in node.input):
        if name in snaps:
            layer = _branch(ctx, snaps, name)
            shape = snaps[name].shape
            n_in = layer.weight.shape[1]
            blocks.append(layer)
        else:
            c = ctx.float_const(name, "Concat operand")
            shape = tuple(int(d) for d in c.shape)
            blocks.append(c.reshape(-1))
        parts.append(offset + np.arange(_prod(shape)).reshape(shape))
        offset += _prod(shape)
    blocks_d = [
        blk if isinstance(blk, Dense) else Dense(np.zeros((blk.size, n_in)), blk) for blk in blocks
    ]
    rows = [dense_weight(blk.weight, "Concat") for blk in blocks_d]
    perm = np.concatenate(parts, axis=axis)
    flat = perm.reshape(-1)
    weight = np.vstack(rows)[flat]
    bias = np.concatenate([blk.bias for blk in blocks_d])[flat]
    werr = np.concatenate([_err(blk, "w") for blk in blocks_d])[flat]
    berr = np.concatenate([_err(blk, "b") for blk in blocks_d])[flat]
    merged = Dense(weight, bias, werr if np.any(werr) else None, berr if np.any(berr) else None)
    ctx.chain.set_pending(merged, tuple(int(d) for d in perm.shape))


_MergeHandler: TypeAlias = Callable[[_OnnxContext, "onnx.NodeProto", dict[str, _Pending]], None]

#: Operators that merge several input-dependent tensors (parallel affine branches).
_ONNX_MERGE_OPS: dict[str, _MergeHandler] = {
    "Add": _merge_add,
    "Sub": _merge_add,
    "Concat": _merge_concat,
    "Mul": _merge_mul,
}


# -- constant folding -----------------------------------------------------------------------


def _const_constant(inputs: list[np.ndarray | None], attrs: dict[str, Any]) -> np.ndarray:
    for key in ("value", "value_float", "value_floats", "value_int", "value_ints"):
        if key in attrs:
            value = attrs[key]
            if key.startswith("value_float"):
                return np.asarray(value, dtype=np.float32)
            if key.startswith("value_int"):
                return np.asarray(value, dtype=np.int64)
            return np.asarray(value)
    raise UnsupportedLayerError(f"Constant without a numeric value (attributes {sorted(attrs)})")


def _zero_point(inputs: list[np.ndarray | None]) -> np.ndarray:
    zp = inputs[2] if len(inputs) > 2 else None
    return np.zeros((), dtype=np.uint8) if zp is None else zp


def _axis_view(param: np.ndarray, ndim: int, axis: int) -> np.ndarray:
    """Reshape a per-axis (1-d) quantization parameter to broadcast along ``axis``."""
    if param.ndim == 0 or param.size == 1:
        return param.reshape(())
    axis = axis + ndim if axis < 0 else axis
    view = [1] * ndim
    view[axis] = -1
    return param.reshape(view)


def _const_dequantize(inputs: list[np.ndarray | None], attrs: dict[str, Any]) -> np.ndarray:
    """``y = (x - zero_point) * scale``, per tensor or per ``axis`` (default 1)."""
    x, scale = _require(inputs, 2, "DequantizeLinear")
    if int(attrs.get("block_size", 0)):
        raise UnsupportedLayerError("DequantizeLinear with block_size (blocked quantization)")
    zp = _zero_point(inputs)
    axis = int(attrs.get("axis", 1))
    scale_v = _axis_view(scale, x.ndim, axis)
    zp_v = _axis_view(zp, x.ndim, axis)
    diff = x.astype(np.int64) - zp_v.astype(np.int64)
    return (diff.astype(scale.dtype) * scale_v).astype(scale.dtype)


def _const_quantize(inputs: list[np.ndarray | None], attrs: dict[str, Any]) -> np.ndarray:
    """``y = saturate(round_half_even(x / scale) + zero_point)`` in the zero point's dtype."""
    x, scale = _require(inputs, 2, "QuantizeLinear")
    if int(attrs.get("block_size", 0)):
        raise UnsupportedLayerError("QuantizeLinear with block_size (blocked quantization)")
    zp = _zero_point(inputs)
    if not np.issubdtype(zp.dtype, np.integer):
        raise UnsupportedLayerError(f"QuantizeLinear to non-integer type {zp.dtype}")
    axis = int(attrs.get("axis", 1))
    scaled = np.rint(x.astype(np.float32) / _axis_view(scale, x.ndim, axis))
    q = scaled + _axis_view(zp, x.ndim, axis).astype(np.float64)
    info = np.iinfo(zp.dtype)
    return np.clip(q, info.min, info.max).astype(zp.dtype)


def _require(inputs: list[np.ndarray | None], n: int, op: str) -> list[np.ndarray]:
    got = [v for v in inputs[:n] if v is not None]
    if len(got) < n:
        raise InvalidNetworkError(f"{op} needs {n} inputs")
    return got


def _const_cast(inputs: list[np.ndarray | None], attrs: dict[str, Any]) -> np.ndarray:
    (x,) = _require(inputs, 1, "Cast")
    return x.astype(np_dtype(int(attrs["to"])))


def _const_reshape(inputs: list[np.ndarray | None], attrs: dict[str, Any]) -> np.ndarray:
    x, target = _require(inputs, 2, "Reshape")
    return x.reshape(_reshape_target(x.shape, _dims(target), bool(attrs.get("allowzero", 0))))


def _const_squeeze(inputs: list[np.ndarray | None], attrs: dict[str, Any]) -> np.ndarray:
    x = _require(inputs, 1, "Squeeze")[0]
    axes = attrs.get("axes", None if len(inputs) < 2 or inputs[1] is None else _dims(inputs[1]))
    return x.reshape(_squeeze_shape(x.shape, axes))


def _const_unsqueeze(inputs: list[np.ndarray | None], attrs: dict[str, Any]) -> np.ndarray:
    x = _require(inputs, 1, "Unsqueeze")[0]
    axes = attrs.get("axes", None if len(inputs) < 2 or inputs[1] is None else _dims(inputs[1]))
    if axes is None:
        raise InvalidNetworkError("Unsqueeze without axes")
    return x.reshape(_unsqueeze_shape(x.shape, axes))


def _const_binary(fn: Callable[[Any, Any], Any]) -> Callable[..., np.ndarray]:
    def handler(inputs: list[np.ndarray | None], attrs: dict[str, Any]) -> np.ndarray:
        a, b = _require(inputs, 2, "binary operator")
        return np.asarray(fn(a, b)).astype(np.result_type(a, b))

    return handler


def _const_compare(fn: Callable[[Any, Any], Any]) -> Callable[..., np.ndarray]:
    def handler(inputs: list[np.ndarray | None], attrs: dict[str, Any]) -> np.ndarray:
        a, b = _require(inputs, 2, "comparison")
        return np.asarray(fn(a, b), dtype=bool)

    return handler


def _const_unary(fn: Callable[[Any], Any], op: str) -> ConstHandler:
    def handler(inputs: list[np.ndarray | None], attrs: dict[str, Any]) -> np.ndarray:
        x = _require(inputs, 1, op)[0]
        return np.asarray(fn(x)).astype(x.dtype)

    return handler


def _const_constant_of_shape(inputs: list[np.ndarray | None], attrs: dict[str, Any]) -> np.ndarray:
    shape = _dims(_require(inputs, 1, "ConstantOfShape")[0])
    value = np.asarray(attrs.get("value", np.zeros(1, dtype=np.float32)))
    return np.full(shape, value.reshape(-1)[0], dtype=value.dtype)


def _const_where(inputs: list[np.ndarray | None], attrs: dict[str, Any]) -> np.ndarray:
    cond, x, y = _require(inputs, 3, "Where")
    return np.where(cond.astype(bool), x, y).astype(np.result_type(x, y))


def _const_expand(inputs: list[np.ndarray | None], attrs: dict[str, Any]) -> np.ndarray:
    x, shape = _require(inputs, 2, "Expand")
    return np.array(np.broadcast_to(x, np.broadcast_shapes(x.shape, tuple(_dims(shape)))))


def _const_slice(inputs: list[np.ndarray | None], attrs: dict[str, Any]) -> np.ndarray:
    x = _require(inputs, 1, "Slice")[0]
    return np.array(_slice_array(x, *_slice_args(inputs, attrs)))


def _const_split(inputs: list[np.ndarray | None], attrs: dict[str, Any]) -> list[np.ndarray]:
    """Split along ``axis`` into ``split`` sizes (attribute or input) or equal parts."""
    x = _require(inputs, 1, "Split")[0]
    axis = int(attrs.get("axis", 0))
    n_out = int(attrs.get("num_outputs", attrs["_n_outputs"]))
    if "split" in attrs:
        sizes = [int(v) for v in attrs["split"]]
    elif len(inputs) > 1 and inputs[1] is not None:
        sizes = _dims(inputs[1])
    else:
        dim = x.shape[axis]
        part = -(-dim // n_out)
        sizes = [min(part, dim - k * part) for k in range(n_out)]
    if sum(sizes) != x.shape[axis]:
        raise InvalidNetworkError(f"Split sizes {sizes} do not add up to {x.shape[axis]}")
    return list(np.split(x, np.cumsum(sizes)[:-1], axis=axis))


def _const_pad(inputs: list[np.ndarray | None], attrs: dict[str, Any]) -> np.ndarray:
    x = _require(inputs, 1, "Pad")[0]
    pads, value = _pad_args(inputs, attrs, x.ndim)
    return _pad_array(x, pads, str(attrs.get("mode", "constant")), value).astype(x.dtype)


def _const_reduce(fn: Callable[..., Any], op: str) -> ConstHandler:
    def handler(inputs: list[np.ndarray | None], attrs: dict[str, Any]) -> np.ndarray:
        x = _require(inputs, 1, op)[0]
        axes = attrs.get("axes")
        if axes is None and len(inputs) > 1 and inputs[1] is not None:
            axes = _dims(inputs[1])
        if not axes and attrs.get("noop_with_empty_axes", 0):
            return x
        keep = bool(attrs.get("keepdims", 1))
        return np.asarray(fn(x, axis=None if not axes else tuple(axes), keepdims=keep)).astype(
            x.dtype
        )

    return handler


def _const_range(inputs: list[np.ndarray | None], attrs: dict[str, Any]) -> np.ndarray:
    start, limit, delta = _require(inputs, 3, "Range")
    return np.arange(start.item(), limit.item(), delta.item()).astype(start.dtype)


def _const_int_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """ONNX Div: integers truncate toward zero (numpy's ``//`` floors)."""
    if np.issubdtype(a.dtype, np.integer):
        return np.asarray(np.trunc(a / b)).astype(np.result_type(a, b))
    return np.asarray(a / b)


ConstHandler: TypeAlias = Callable[
    [list[np.ndarray | None], dict[str, Any]], np.ndarray | list[np.ndarray]
]

#: Operators evaluated with numpy when all their inputs are constant (weights, shapes, Q/DQ).
ONNX_CONSTANT_OPS: dict[str, ConstHandler] = {
    "Constant": _const_constant,
    "Identity": lambda inputs, attrs: _require(inputs, 1, "Identity")[0],
    "Cast": _const_cast,
    "QuantizeLinear": _const_quantize,
    "DequantizeLinear": _const_dequantize,
    "Reshape": _const_reshape,
    "Flatten": lambda inputs, attrs: _require(inputs, 1, "Flatten")[0].reshape(
        _flatten_shape(_require(inputs, 1, "Flatten")[0].shape, int(attrs.get("axis", 1)))
    ),
    "Squeeze": _const_squeeze,
    "Unsqueeze": _const_unsqueeze,
    "Transpose": lambda inputs, attrs: np.transpose(
        _require(inputs, 1, "Transpose")[0], attrs.get("perm")
    ),
    "Neg": lambda inputs, attrs: -_require(inputs, 1, "Neg")[0],
    "Add": _const_binary(np.add),
    "Sub": _const_binary(np.subtract),
    "Mul": _const_binary(np.multiply),
    "Div": _const_binary(_const_int_div),
    "MatMul": _const_binary(np.matmul),
    "Shape": lambda inputs, attrs: np.array(_require(inputs, 1, "Shape")[0].shape, dtype=np.int64)[
        int(attrs.get("start", 0)) : attrs.get("end")
    ],
    "Concat": lambda inputs, attrs: np.concatenate(
        [v for v in inputs if v is not None], axis=int(attrs.get("axis", 0))
    ),
    "Gather": lambda inputs, attrs: np.take(
        _require(inputs, 2, "Gather")[0],
        _require(inputs, 2, "Gather")[1],
        axis=int(attrs.get("axis", 0)),
    ),
    "ConstantOfShape": _const_constant_of_shape,
    "Equal": _const_compare(np.equal),
    "Less": _const_compare(np.less),
    "LessOrEqual": _const_compare(np.less_equal),
    "Greater": _const_compare(np.greater),
    "GreaterOrEqual": _const_compare(np.greater_equal),
    "Not": lambda inputs, attrs: np.logical_not(_require(inputs, 1, "Not")[0]),
    "And": _const_compare(np.logical_and),
    "Or": _const_compare(np.logical_or),
    "Where": _const_where,
    "Expand": _const_expand,
    "Slice": _const_slice,
    "Split": _const_split,
    "Pad": _const_pad,
    "Range": _const_range,
    "Tile": lambda inputs, attrs: np.tile(*_require(inputs, 2, "Tile")),
    "Min": _const_binary(np.minimum),
    "Max": _const_binary(np.maximum),
    "Pow": _const_binary(np.power),
    "Abs": _const_unary(np.abs, "Abs"),
    "Sqrt": _const_unary(np.sqrt, "Sqrt"),
    "Floor": _const_unary(np.floor, "Floor"),
    "Ceil": _const_unary(np.ceil, "Ceil"),
    "Relu": _const_unary(lambda x: np.maximum(x, 0), "Relu"),
    "Size": lambda inputs, attrs: np.array(_require(inputs, 1, "Size")[0].size, dtype=np.int64),
    "ReduceSum": _const_reduce(np.sum, "ReduceSum"),
    "ReduceMean": _const_reduce(np.mean, "ReduceMean"),
    "ReduceProd": _const_reduce(np.prod, "ReduceProd"),
    "ReduceMax": _const_reduce(np.max, "ReduceMax"),
    "ReduceMin": _const_reduce(np.min, "ReduceMin"),
}


def supported_onnx_ops() -> list[str]:
    """All ONNX operators the importer accepts (on the chain or in constant subgraphs)."""
    return sorted(set(ONNX_CHAIN_OPS) | set(ONNX_CONSTANT_OPS))


def _unsupported_op(node: onnx.NodeProto, where: str) -> UnsupportedLayerError:
    chain = ", ".join(sorted(ONNX_CHAIN_OPS))
    const_only = ", ".join(sorted(set(ONNX_CONSTANT_OPS) - set(ONNX_CHAIN_OPS)))
    domain = f"{node.domain}::" if node.domain not in ("", "ai.onnx") else ""
    return UnsupportedLayerError(
        f"unsupported operator {domain}{node.op_type} (node {node.name or '<unnamed>'!r}) "
        f"{where}; supported: {chain}; on constants only: {const_only}"
    )


# -- graph analysis -------------------------------------------------------------------------


def _tensor_shape(value_info: onnx.ValueInfoProto) -> list[int | None] | None:
    ttype = value_info.type.tensor_type
    if not ttype.HasField("shape"):
        return None
    return [d.dim_value if d.HasField("dim_value") else None for d in ttype.shape.dim]


def _input_layout(value_info: onnx.ValueInfoProto) -> tuple[Shape, Shape]:
    """``(tracked full shape, Network.input_shape)`` of the model input.

    A leading dimension that is symbolic or 1 in a tensor of rank >= 2 is a batch dimension:
    it is tracked as 1 and dropped from ``input_shape``. Rank-1 inputs have no batch dimension.
    """
    dims = _tensor_shape(value_info)
    if dims is None:
        raise InvalidNetworkError(f"input {value_info.name!r} has no shape information")
    if len(dims) >= 2 and (dims[0] is None or dims[0] == 1):
        rest = dims[1:]
        batched = True
    else:
        rest = dims
        batched = False
    if any(d is None or d <= 0 for d in rest):
        raise InvalidNetworkError(
            f"input {value_info.name!r} has symbolic or zero dimensions {dims} "
            "(only the batch dimension may be symbolic)"
        )
    feature = tuple(int(d) for d in rest if d is not None)
    if _prod(feature) > MAX_INPUT_ELEMENTS:
        raise InvalidNetworkError(
            f"input {value_info.name!r} declares shape {dims}, {_prod(feature)} elements; "
            f"nncert's dense representation supports at most {MAX_INPUT_ELEMENTS}"
        )
    full = (1, *feature) if batched else feature
    return full, feature if feature else (1,)


def _chain_order(graph: onnx.GraphProto, input_name: str, const_names: set[str]) -> list[int]:
    """Indices of the live nodes in topological order, after checking the chain structure.

    The graph has one vertex per node and an edge per tensor from its producer to each
    consumer. Nodes that cannot reach the output are dropped. A node is *variable* if one of
    its inputs is (``Shape`` excepted: its output is a constant). Variable tensors may feed
    several nodes (branches); the merges and carries of :func:`_onnx_to_layers` handle them.
    """
    producer: dict[str, int] = {}
    for i, node in enumerate(graph.node):
        for out in node.output:
            if not out:
                continue
            if out in producer or out in const_names or out == input_name:
                raise InvalidNetworkError(f"tensor {out!r} is defined more than once")
            producer[out] = i
    # successors and predecessors as insertion-ordered sets (dicts), one edge per node pair
    succ: list[dict[int, None]] = [{} for _ in graph.node]
    pred: list[dict[int, None]] = [{} for _ in graph.node]
    for i, node in enumerate(graph.node):
        for name in node.input:
            if not name:
                continue
            if name in producer:
                succ[producer[name]][i] = None
                pred[i][producer[name]] = None
            elif name not in const_names and name != input_name:
                raise InvalidNetworkError(
                    f"node {node.name or node.op_type!r} reads undefined tensor {name!r} "
                    "(truncated or corrupt model?)"
                )
    topo = _topological_order(succ, pred)
    if topo is None:
        raise InvalidNetworkError("the graph has a cycle")
    out_name = graph.output[0].name
    if out_name not in producer:
        raise InvalidNetworkError(f"output {out_name!r} is not computed by any node")
    sink = producer[out_name]
    live = {sink}
    stack = [sink]
    while stack:  # the sink's ancestors: a search along the reversed edges
        for j in pred[stack.pop()]:
            if j not in live:
                live.add(j)
                stack.append(j)
    order = [i for i in topo if i in live]

    variable = {input_name}
    for i in order:
        node = graph.node[i]
        if node.op_type not in _CONSTANT_RESULT_OPS and any(n in variable for n in node.input):
            variable.update(name for name in node.output if name)
    if out_name not in variable:
        raise InvalidNetworkError(f"output {out_name!r} does not depend on the input")
    return order


def _topological_order(
    succ: Sequence[dict[int, None]], pred: Sequence[dict[int, None]]
) -> list[int] | None:
    """A topological order of the graph ``succ``/``pred`` (vertices ``0 .. n-1``), or ``None``
    when it has a cycle.

    Kahn's algorithm by generations: generation 0 is the vertices without predecessors in
    index order; generation ``k + 1`` lists, in the order they are reached, the vertices whose
    last predecessor lies in generation ``k`` (each vertex's successors in insertion order).
    This is the order of ``networkx.topological_sort`` on the same graph built in the same
    order. A cycle leaves vertices whose in-degree never reaches zero.
    """
    indegree = [len(p) for p in pred]
    generation = [v for v, d in enumerate(indegree) if d == 0]
    order: list[int] = []
    while generation:
        order.extend(generation)
        following: list[int] = []
        for v in generation:
            for child in succ[v]:
                indegree[child] -= 1
                if indegree[child] == 0:
                    following.append(child)
        generation = following
    return order if len(order) == len(succ) else None


def _example_file(spec: str, name: str | None) -> tuple[Path, str]:
    """``(path, name)`` of ``"example:NAME"`` (the CLI's spelling of a bundled example)."""
    example = spec.split(":", 1)[1]
    path = example_path(example)  # UnknownExampleError (an InvalidNetworkError) names it
    return path, name or example


# -- gzip-compressed models ----------------------------------------------------------------

#: decompressed copies of ``.onnx.gz`` files: (real path, mtime_ns, size) -> the copy
_GZ_COPIES: dict[tuple[str, int, int], str] = {}
_GZ_DIR: list[str] = []  # the per-process directory of the copies (created on first use)


def _gz_dir() -> str:
    if not _GZ_DIR:
        import atexit
        import shutil
        import tempfile

        d = tempfile.mkdtemp(prefix="nncert-onnx-")
        owner = os.getpid()

        def cleanup() -> None:
            if os.getpid() == owner:  # not in forked children that inherit the handler
                shutil.rmtree(d, ignore_errors=True)

        atexit.register(cleanup)
        _GZ_DIR.append(d)
    return _GZ_DIR[0]


def _decompressed_copy(path: Path, data: bytes) -> str:
    """A plain ``.onnx`` copy of a decompressed model, for onnxruntime replay.

    Counterexamples are replayed from :attr:`Network.source`, a file that onnxruntime loads;
    for ``M.onnx.gz`` that is ``<tmp>/nncert-onnx-*/<k>-M.onnx``, written once per process
    and file version and removed at exit.
    """

    st = path.stat()
    key = (os.path.realpath(path), st.st_mtime_ns, st.st_size)
    copy = _GZ_COPIES.get(key)
    if copy is not None and os.path.exists(copy):
        return copy
    name = path.name[:-3] if path.name.lower().endswith(".gz") else path.name
    if not name.lower().endswith(".onnx"):
        name += ".onnx"
    copy = os.path.join(_gz_dir(), f"{len(_GZ_COPIES)}-{name}")
    write_atomic(copy, data)
    _GZ_COPIES[key] = copy
    return copy


def _load_model(
    path_or_model: Any, deadline: float | None = None
) -> tuple[onnx.ModelProto, str | None, str]:
    if is_model_proto(path_or_model):
        name = path_or_model.graph.name or "onnx-model"
        return path_or_model, None, name
    if isinstance(path_or_model, (bytes, bytearray)):
        label = "<bytes>"
        try:
            return parse_model(bytes(path_or_model)), None, label
        except Exception as err:  # protobuf raises several unrelated types
            raise InvalidNetworkError(f"{label}: cannot parse ONNX model ({err})") from err
    if not isinstance(path_or_model, (str, os.PathLike)):
        raise InvalidNetworkError(
            f"from_onnx: expected a path or onnx.ModelProto, got {type(path_or_model).__name__}"
        )
    path = Path(path_or_model)
    if not path.is_file():
        raise InvalidNetworkError(f"{path}: no such ONNX file")
    source = str(path)
    stem = path.name[:-3] if path.name.lower().endswith(".gz") else path.name
    stem = stem[:-5] if stem.lower().endswith(".onnx") else Path(stem).stem
    try:
        if is_gzip(path):
            data, _ = read_input(path, deadline=deadline, error=InvalidNetworkError)
            model = parse_model(data)
            source = _decompressed_copy(path, data)
        else:
            model = load_model_file(path)
    except NncertError:  # InvalidNetworkError, TimeLimitError
        raise
    except Exception as err:  # DecodeError, RuntimeError, ... depending on protobuf backend
        raise InvalidNetworkError(
            f"{path}: cannot parse ONNX file (truncated or corrupt?): {err}".replace("\n", " ")
        ) from err
    return model, source, stem


def _sparse_to_dense(sparse: onnx.SparseTensorProto) -> np.ndarray:
    """Dense array of a sparse initializer (linear or coordinate indices)."""
    values = _tensor_array(sparse.values, "sparse initializer")
    indices = _tensor_array(sparse.indices, "sparse initializer indices").astype(np.int64)
    dims = tuple(int(d) for d in sparse.dims)
    dense = np.zeros(_prod(dims), dtype=values.dtype)
    flat = indices if indices.ndim == 1 else np.ravel_multi_index(tuple(indices.T), dims)
    dense[flat] = values.reshape(-1)
    return dense.reshape(dims)


def _plain_activation(node: onnx.NodeProto) -> Activation | None:
    """The layer of an ONNX node that is exactly one element-wise activation layer."""
    plain: dict[str, Activation] = {"Relu": ReLU(), "Sigmoid": Sigmoid(), "Tanh": Tanh()}
    if node.op_type in plain:
        return plain[node.op_type]
    if node.op_type == "LeakyRelu":
        return LeakyReLU(float(_onnx_attrs(node).get("alpha", 0.01)))
    return None


def _fusible(
    graph: onnx.GraphProto,
    order: Sequence[int],
    carried: dict[str, _Pending],
    readers: dict[str, list[int]],
    pos: int,
    output: str,
) -> dict[str, tuple[Activation, str, int]]:
    """Carried tensors read after ``pos`` by exactly one node, a plain activation of that
    tensor alone: ``name -> (layer, the node's output, the node's position)``."""
    found: dict[str, tuple[Activation, str, int]] = {}
    for name in carried:
        later = [q for q in readers.get(name, []) if q > pos]
        if name == output or len(later) != 1:
            continue
        node = graph.node[order[later[0]]]
        layer = _plain_activation(node)
        inputs = [str(n) for n in node.input if n]
        if layer is not None and inputs == [name] and node.output and node.output[0]:
            found[name] = (layer, str(node.output[0]), later[0])
    return found


def _onnx_to_layers(model: onnx.ModelProto) -> tuple[list[Layer], Shape]:
    graph = model.graph
    consts: dict[str, np.ndarray] = {}
    for init in graph.initializer:
        consts[init.name] = _tensor_array(init, "initializer")
    for sparse in graph.sparse_initializer:
        consts[sparse.values.name] = _sparse_to_dense(sparse)
    inputs = [vi for vi in graph.input if vi.name not in consts]
    several = (
        "; a VNN-LIB 2.0 query that declares each of them is decided by "
        "`nncert-vnnlib verify QUERY --network NAME=MODEL`"
    )
    if len(inputs) != 1:
        raise InvalidNetworkError(
            f"expected exactly one (non-initializer) input, found {len(inputs)}: "
            f"{[vi.name for vi in inputs]}" + (several if inputs else "")
        )
    if len(graph.output) != 1:
        raise InvalidNetworkError(
            f"expected exactly one output, found {len(graph.output)}: "
            f"{[vo.name for vo in graph.output]}" + (several if len(graph.output) else "")
        )
    input_name = inputs[0].name
    full_shape, input_shape = _input_layout(inputs[0])
    order = _chain_order(graph, input_name, set(consts))

    ctx = _OnnxContext(
        chain=_AffineChain(full_shape),
        consts=consts,
        var_shapes={input_name: full_shape},
        current=input_name,
    )
    #: pending maps of the input-dependent tensors (branches share their segment's start)
    snaps: dict[str, _Pending] = {input_name: ctx.chain.snapshot()}
    # position (in ``order``) of the last node reading each tensor; activations carry the
    # tensors read after them (skip connections), see _AffineChain.activation
    last_use: dict[str, int] = {}
    readers: dict[str, list[int]] = {}
    for pos, i in enumerate(order):
        node = graph.node[i]
        if node.op_type not in _CONSTANT_RESULT_OPS:
            for name in dict.fromkeys(str(n) for n in node.input if n):
                last_use[name] = pos
                readers.setdefault(name, []).append(pos)
    last_use[graph.output[0].name] = len(order)
    for pos, i in enumerate(order):
        node = graph.node[i]
        if pos in ctx.chain.fused_nodes:  # applied early, next to another activation
            continue
        label = f"node {node.name or '<unnamed>'!r} ({node.op_type})"
        is_const = all(not name or name in ctx.consts for name in node.input)
        if node.domain not in ("", "ai.onnx"):
            raise _unsupported_op(node, "from a custom domain")
        try:
            if is_const:
                const_handler = ONNX_CONSTANT_OPS.get(node.op_type)
                if const_handler is None:
                    raise _unsupported_op(node, "in a constant subgraph")
                ins = [ctx.consts[name] if name else None for name in node.input]
                ctx.attrs = _onnx_attrs(node)
                ctx.attrs["_n_outputs"] = len(node.output)
                result = const_handler(ins, ctx.attrs)
                outs = result if isinstance(result, list) else [result]
                for out_name, value in zip(node.output, outs, strict=False):
                    if out_name:
                        ctx.consts[str(out_name)] = np.asarray(value)
                continue
            var_names = [str(name) for name in node.input if name in snaps]
            ctx.attrs = _onnx_attrs(node)
            if len(var_names) > 1:
                merge = _ONNX_MERGE_OPS.get(node.op_type)
                if merge is None:
                    raise UnsupportedLayerError(
                        f"{node.op_type} of several input-dependent tensors is not supported "
                        "(Add, Sub and Concat merge parallel branches, Mul multiplies two)"
                    )
                # a merge that emits a layer (Mul) must know which tensors are read later
                ctx.chain.carried = {
                    name: snap
                    for name, snap in snaps.items()
                    if snap.segment == ctx.chain.segment and last_use.get(name, -1) > pos
                }
                merge(ctx, node, snaps)
                ctx.chain.carried = {}
            else:
                chain_handler = ONNX_CHAIN_OPS.get(node.op_type)
                if chain_handler is None:
                    raise _unsupported_op(node, "on the input-dependent path")
                ctx.current = var_names[0]
                if node.op_type not in _CONSTANT_RESULT_OPS:
                    ctx.chain.restore(snaps[ctx.current], ctx.current)
                ctx.chain.carried = {
                    name: snap
                    for name, snap in snaps.items()
                    if snap.segment == ctx.chain.segment and last_use.get(name, -1) > pos
                }
                ctx.chain.fusible = _fusible(
                    graph, order, ctx.chain.carried, readers, pos, graph.output[0].name
                )
                chain_handler(ctx, node)
                snaps.update(ctx.chain.carried)
                for name, snap in ctx.chain.carried.items():
                    ctx.var_shapes[name] = snap.shape
                ctx.chain.carried, ctx.chain.fusible = {}, {}
        except UnsupportedLayerError as err:
            if str(err).startswith("unsupported operator"):
                raise
            raise UnsupportedLayerError(f"{label}: {err}") from err
        except InvalidNetworkError as err:
            raise InvalidNetworkError(f"{label}: {err}") from err
        except (ValueError, TypeError, IndexError, KeyError) as err:
            raise InvalidNetworkError(f"{label}: {type(err).__name__}: {err}") from err
        if node.op_type not in _CONSTANT_RESULT_OPS:
            ctx.current = str(node.output[0])
            ctx.var_shapes[ctx.current] = ctx.chain.shape
            snaps[ctx.current] = ctx.chain.snapshot()
        for extra, snap in ctx.extra_outputs.items():
            ctx.var_shapes[extra] = snap.shape
            snaps[extra] = snap
        ctx.extra_outputs = {}
    ctx.chain.restore(snaps[graph.output[0].name], graph.output[0].name)

    out_dims = _tensor_shape(graph.output[0])
    if out_dims is not None and all(d is not None for d in out_dims[1:]):
        declared = _prod(d or 1 for d in out_dims)
        if declared != ctx.chain.width and _prod(d or 1 for d in out_dims[1:]) != ctx.chain.width:
            raise InvalidNetworkError(
                f"shape mismatch: output {graph.output[0].name!r} is declared as {out_dims} "
                f"but the graph computes shape {ctx.chain.shape}"
            )
    return ctx.chain.finish(), input_shape


def from_onnx(
    path_or_model: str | os.PathLike[str] | onnx.ModelProto | bytes,
    *,
    name: str | None = None,
    time_limit: float | None = None,
) -> Network:
    """Read an ONNX feed-forward network into the IR.

    The graph has one input and one output (a model with several, or a query on hidden
    tensors, is first rewritten into that form by :mod:`nncert.verify.onnx_io`, as
    ``nncert-vnnlib`` does). Input-dependent tensors may branch, as long as
    every branch is affine up to where it merges (``Add``/``Sub``/``Concat`` of two branches
    add or stack their pending maps); a branch read after a later activation (a residual
    across an activation) is unsupported. Side branches computing constants (dequantized
    weights, shapes) are folded. Affine operators are composed into one ``Dense`` layer per
    segment between activations (see the module docstring):

    * ``Gemm``: ``alpha * A' B' + beta * C``; ``MatMul`` with numpy semantics (variable on
      either side; ``(1, n) @ W`` is ``W^T``);
    * ``Add``/``Sub``/``Mul``/``Div`` by a constant: shift / negate / diagonal scaling
      (broadcast);
    * ``Conv``: the Toeplitz-like matrix of :func:`conv_matrix` on the flattened NCHW tensor;
    * ``BatchNormalization``: the diagonal map ``s x + (beta - s mean)``,
      ``s = scale / sqrt(var + eps)``;
    * ``Flatten``, ``Reshape``, ``Squeeze``, ``Unsqueeze``, ``Identity``, ``Dropout``, ``Cast``
      (to a float type): no-ops on the flattened data;
    * ``Transpose``, ``Slice``, ``Gather`` (constant indices), ``Pad`` (constant, edge,
      reflect, wrap), ``Expand``, ``Concat`` with constants: exact index maps, i.e. the
      operator applied to ``arange(width)`` gives the source entry of each output;
    * ``Neg``; ``ReduceSum``/``ReduceMean``; ``AveragePool``/``GlobalAveragePool`` (a depthwise
      convolution by ``1 / count``, its rounding recorded in ``weight_error``);
    * activations ``Relu``, ``LeakyRelu``, ``Sigmoid``, ``Tanh``; ``Clip(min, max)`` becomes
      ``HardTanh`` (``ReLU`` for ``Clip(0, inf)``; one-sided clips via ReLU and affine folds).

    ``Constant``, ``QuantizeLinear``/``DequantizeLinear`` (per tensor or per axis), ``Cast``,
    ``Transpose``, ``Shape``, ``Gather``, ``Concat``, ``ConstantOfShape``, ``Equal``,
    ``Where``, ``Expand``, ``Slice``, ``Split``, ``Range``, the reductions and the arithmetic
    operators are folded (numpy, see :data:`ONNX_CONSTANT_OPS`) when all their inputs are
    constant. Any ``graph.input`` with an initializer is a constant.

    The input's leading dimension is a batch dimension (dropped from ``input_shape``) when the
    input has rank >= 2 and that dimension is 1 or symbolic; rank-1 inputs are unbatched.

    A gzip-compressed file (``.onnx.gz``, recognised by its content) is decompressed in
    pieces, up to :func:`~nncert.verify.fileio.max_decompressed_bytes` (256 MiB by default,
    ``NNCERT_MAX_DECOMPRESSED_BYTES``); ``source`` is then a decompressed temporary copy
    (removed at exit) so that counterexamples are still replayed in onnxruntime.

    Args:
        path_or_model: path to an ``.onnx`` or ``.onnx.gz`` file, ``"example:NAME"`` for a
            bundled example network (see :func:`nncert.verify.examples.list_examples`; named
            ``NAME``), serialized bytes, or an ``onnx.ModelProto``.
        name: network name; defaults to the file stem (or the graph name).
        time_limit: seconds the decompression of a ``.gz`` file may take (``None``: no limit).

    Returns:
        The network; ``source`` is the file path when a path was given.

    Raises:
        TimeLimitError: ``time_limit`` ran out while decompressing.
        UnsupportedLayerError: an operator outside the supported set (the message names the
            operator, the node and the supported set).
        InvalidNetworkError: unreadable file, unknown example, several inputs/outputs,
            branching graphs, NaN weights, inconsistent shapes, a gzip file expanding beyond
            the cap, or a model too large for memory (one-line message naming the file).

    Example:
        >>> from nncert.verify import from_onnx
        >>> from_onnx("example:iris_relu").n_inputs  # doctest: +SKIP
        4
    """

    if isinstance(path_or_model, str) and path_or_model.startswith("example:"):
        path_or_model, name = _example_file(path_or_model, name)
    model, source, default_name = _load_model(path_or_model, deadline_from(time_limit))
    label = default_name if source is None else str(path_or_model)
    try:
        layers, input_shape = _onnx_to_layers(model)
        return Network(tuple(layers), input_shape, name=name or default_name, source=source)
    except UnsupportedLayerError as err:
        raise UnsupportedLayerError(f"{label}: {err}") from err
    except InvalidNetworkError as err:
        raise InvalidNetworkError(f"{label}: {err}") from err
    except MemoryError as err:
        raise InvalidNetworkError(f"{label}: the model is too large to load ({err})") from err
    except ValueError as err:  # numpy: "array is too big"
        raise InvalidNetworkError(f"{label}: {type(err).__name__}: {err}") from err


# --------------------------------------------------------------------------------------------
# onnxruntime replay
# --------------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------------
# torch
# --------------------------------------------------------------------------------------------


def _tensor(value: Any) -> FloatArray:
    return np.asarray(value.detach().cpu().double().numpy(), dtype=np.float64)


def _effective_param(module: Any, name: str) -> FloatArray | None:
    """``module.<name>``, recomputed as ``<name>_orig * <name>_mask`` for pruned modules.

    ``torch.nn.utils.prune`` keeps the dense parameter as ``<name>_orig`` and a buffer
    ``<name>_mask``; the attribute ``<name>`` is only refreshed by a forward pre-hook, so
    reading the product directly is robust to edits since the last forward pass.
    """
    orig = getattr(module, f"{name}_orig", None)
    mask = getattr(module, f"{name}_mask", None)
    if orig is not None and mask is not None:
        return _tensor(orig) * _tensor(mask)
    value = getattr(module, name, None)
    return None if value is None else _tensor(value)


def _torch_linear(chain: _AffineChain, module: Any) -> None:
    """``y = x W^T + b`` on the last axis: matrix ``kron(I_L, W)`` for ``L`` leading rows."""
    weight = _effective_param(module, "weight")
    if weight is None:
        raise InvalidNetworkError("Linear without weight")
    bias = _effective_param(module, "bias")
    shape = chain.shape
    if shape[-1] != weight.shape[1]:
        raise InvalidNetworkError(
            f"shape mismatch: Linear({weight.shape[1]}, {weight.shape[0]}) applied to a tensor "
            f"of shape {shape}"
        )
    lead = _prod(shape[:-1])
    matrix = weight if lead == 1 else np.asarray(np.kron(np.eye(lead), weight), np.float64)
    b = None if bias is None else np.tile(bias, lead)
    chain.linear(matrix, b, (*shape[:-1], int(weight.shape[0])))


def _torch_conv(chain: _AffineChain, module: Any) -> None:
    if getattr(module, "padding_mode", "zeros") != "zeros":
        raise UnsupportedLayerError(
            f"{type(module).__name__} with padding_mode={module.padding_mode!r}"
        )
    if getattr(module, "transposed", False):
        raise UnsupportedLayerError(f"{type(module).__name__} (transposed convolution)")
    weight = _effective_param(module, "weight")
    if weight is None:
        raise InvalidNetworkError("convolution without weight")
    r = weight.ndim - 2
    if len(chain.shape) != r + 1:
        raise InvalidNetworkError(
            f"shape mismatch: {type(module).__name__} weight {weight.shape} applied to a tensor "
            f"of shape {chain.shape}"
        )
    kernel = weight.shape[2:]
    dil = tuple(int(d) for d in module.dilation)
    if isinstance(module.padding, str):
        if module.padding == "valid":
            pads = (0,) * (2 * r)
        else:  # "same" (stride 1): total = d (k - 1), extra on the end
            total = [dil[i] * (kernel[i] - 1) for i in range(r)]
            pads = tuple(t // 2 for t in total) + tuple(t - t // 2 for t in total)
    else:
        pads = tuple(int(p) for p in module.padding) * 2
    matrix, b, out = conv_matrix(
        weight,
        _effective_param(module, "bias"),
        chain.shape,
        strides=tuple(int(s) for s in module.stride),
        pads=pads,
        dilations=dil,
        group=int(module.groups),
    )
    chain.linear(matrix, b, out)


def _torch_max_pool(chain: _AffineChain, module: Any) -> None:
    """``nn.MaxPool1d/2d/3d`` (:func:`_max_pool`); padding is ``-inf``, i.e. left out."""
    if module.ceil_mode or module.return_indices:
        raise UnsupportedLayerError(f"{type(module).__name__} with ceil_mode or return_indices")
    r = len(chain.shape) - 1

    def tup(v: Any) -> Shape:
        return tuple(int(x) for x in v) if isinstance(v, (tuple, list)) else (int(v),) * r

    kernel = tup(module.kernel_size)
    strides = tup(module.stride if module.stride is not None else module.kernel_size)
    pads = tup(module.padding) * 2
    elem, out = _pool_windows(chain.shape, kernel, strides, pads, tup(module.dilation))
    _max_pool(chain, elem, out)


def _torch_batchnorm(chain: _AffineChain, module: Any) -> None:
    if module.running_mean is None or module.running_var is None:
        raise UnsupportedLayerError(
            f"{type(module).__name__} without running statistics (track_running_stats=False)"
        )
    n = int(module.num_features)
    gamma = _effective_param(module, "weight") if module.affine else None
    beta = _effective_param(module, "bias") if module.affine else None
    _batch_norm(
        chain,
        np.ones(n) if gamma is None else gamma,
        np.zeros(n) if beta is None else beta,
        _tensor(module.running_mean),
        _tensor(module.running_var),
        float(module.eps),
        axis=0,
    )


def _torch_flatten(chain: _AffineChain, module: Any) -> None:
    full = (1, *chain.shape)
    start = module.start_dim + len(full) if module.start_dim < 0 else module.start_dim
    end = module.end_dim + len(full) if module.end_dim < 0 else module.end_dim
    if start < 1:
        raise UnsupportedLayerError("Flatten over the batch dimension (start_dim=0)")
    new = (*full[:start], _prod(full[start : end + 1]), *full[end + 1 :])
    chain.reshape(new[1:])


def _torch_activation(make: Callable[[Any], Activation]) -> Callable[[_AffineChain, Any], None]:
    def handler(chain: _AffineChain, module: Any) -> None:
        chain.activation(make(module))

    return handler


def _torch_hardtanh(chain: _AffineChain, module: Any) -> None:
    _clip(chain, float(module.min_val), float(module.max_val))


def _torch_noop(chain: _AffineChain, module: Any) -> None:
    """Identity and Dropout (inference semantics)."""


TorchHandler: TypeAlias = Callable[[_AffineChain, Any], None]


@functools.cache
def torch_modules() -> dict[type, TorchHandler]:
    """The table ``{nn.Module subclass: handler}`` (built on first use, importing torch)."""
    from torch import nn

    return {
        nn.Linear: _torch_linear,
        nn.Conv1d: _torch_conv,
        nn.Conv2d: _torch_conv,
        nn.BatchNorm1d: _torch_batchnorm,
        nn.BatchNorm2d: _torch_batchnorm,
        nn.ReLU: _torch_activation(lambda m: ReLU()),
        nn.LeakyReLU: _torch_activation(lambda m: LeakyReLU(float(m.negative_slope))),
        nn.Hardtanh: _torch_hardtanh,
        nn.ReLU6: _torch_hardtanh,
        nn.Sigmoid: _torch_activation(lambda m: Sigmoid()),
        nn.Tanh: _torch_activation(lambda m: Tanh()),
        nn.Flatten: _torch_flatten,
        nn.MaxPool1d: _torch_max_pool,
        nn.MaxPool2d: _torch_max_pool,
        nn.MaxPool3d: _torch_max_pool,
        nn.Identity: _torch_noop,
        nn.Dropout: _torch_noop,
        nn.Dropout1d: _torch_noop,
        nn.Dropout2d: _torch_noop,
    }


def _torch_walk(
    module: Any, chain: _AffineChain, table: dict[type, TorchHandler], path: str
) -> None:
    from torch import nn

    handler = next((table[c] for c in type(module).__mro__ if c in table), None)
    if handler is not None:
        try:
            handler(chain, module)
        except InvalidNetworkError as err:
            cls = type(err)
            raise cls(f"module {path or '<root>'!r} ({type(module).__name__}): {err}") from err
        return
    children = list(module.named_children())
    if isinstance(module, nn.Sequential) or (children and not isinstance(module, nn.ModuleList)):
        for child_name, child in children:
            _torch_walk(child, chain, table, f"{path}.{child_name}" if path else child_name)
        return
    supported = ", ".join(sorted(t.__name__ for t in table))
    raise UnsupportedLayerError(
        f"unsupported module {type(module).__name__} at {path or '<root>'!r}; supported: "
        f"{supported} (and containers whose children form a chain)"
    )


def from_torch(
    module: Any,
    input_shape: int | Sequence[int],
    *,
    name: str | None = None,
    check: bool = True,
) -> Network:
    """Convert a Sequential-style torch module into the IR.

    ``nn.Sequential`` containers (possibly nested) are walked in order. **Assumption:** any other
    module without a handler is treated as a container whose children, in registration order,
    are applied one after the other (true for the usual ``__init__``/``forward`` pairs that
    call each layer once in sequence). With ``check=True`` this is verified by comparing the
    converted network with ``module(x)`` (in eval mode) on random inputs.

    Supported modules (dispatched by type through :func:`torch_modules`): Linear, Conv1d/2d
    (zero padding; Toeplitz lowering as in :func:`conv_matrix`), BatchNorm1d/2d (folded with the
    running statistics, i.e. inference semantics), ReLU, LeakyReLU, Hardtanh, ReLU6, Sigmoid,
    Tanh, MaxPool1d/2d/3d (exact ReLU trees, see :func:`_max_pool`), Flatten, Identity and
    Dropout (ignored). Weights of pruned modules are read as
    ``weight_orig * weight_mask``.

    Args:
        module: the torch module.
        input_shape: shape of one input without the batch dimension, e.g. ``(1, 28, 28)``.
        name: network name (default: the module's class name).
        check: compare with the module on random inputs and raise on disagreement.

    Raises:
        UnsupportedLayerError: for a module type outside the supported set.
        InvalidNetworkError: inconsistent shapes, NaN weights, or a failed check.
    """
    import torch

    shape = (int(input_shape),) if isinstance(input_shape, int) else tuple(map(int, input_shape))
    chain = _AffineChain(shape)
    _torch_walk(module, chain, torch_modules(), "")
    net = Network(tuple(chain.finish()), shape, name=name or type(module).__name__)
    if check:
        modes = {m: m.training for m in module.modules()}
        rng = np.random.default_rng(0)
        x = rng.uniform(-1.0, 1.0, size=(4, net.n_inputs))
        try:
            module.eval()
            param = next(iter(module.parameters()), None)
            dtype = torch.float32 if param is None else param.dtype
            with torch.no_grad():
                ref = module(torch.as_tensor(x.reshape(4, *shape), dtype=dtype))
            expected = _tensor(ref).reshape(4, -1)
        except Exception as err:  # any failure of the user's forward on this input
            raise InvalidNetworkError(
                f"from_torch: running {type(module).__name__} on inputs of shape "
                f"{(4, *shape)} failed: {err}"
            ) from err
        finally:
            for m, training in modes.items():
                m.training = training
        got = net.forward(x)
        scale = max(1.0, float(np.max(np.abs(expected), initial=0.0)))
        if got.shape != expected.shape or not np.allclose(
            got, expected, rtol=1e-3, atol=1e-4 * scale
        ):
            raise InvalidNetworkError(
                f"from_torch: converted {type(module).__name__} disagrees with its forward(); "
                "is it really a chain of its children in registration order?"
            )
    return net


__all__ = [
    "ONNX_CHAIN_OPS",
    "ONNX_CONSTANT_OPS",
    "conv_matrix",
    "from_onnx",
    "from_torch",
    "onnxruntime_forward",
    "supported_onnx_ops",
    "torch_modules",
]
