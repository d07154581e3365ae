"""Frozen float64 intermediate representation (IR) of feed-forward networks.

A :class:`Network` is a tuple of layers applied in order to a *flattened* input (C order).
Affine maps are :class:`Dense` layers (convolutions and folded batch norms are lowered to
``Dense`` by the importers); element-wise activations are :class:`ReLU`, :class:`LeakyReLU`,
:class:`HardTanh`, :class:`Sigmoid`, :class:`Tanh`, :class:`RectifiedPower` (squares,
powers and products), :class:`Exp` and :class:`NegReciprocal1p` (softmax) and :class:`Identity`.
All are non-decreasing, which the bound engine relies on.

Every array is float64, C-contiguous and read-only, so a ``Network`` can be shared between
threads, hashed (:meth:`Network.fingerprint`) and stored in certificates.

A ``Dense`` weight is a numpy array by default. A large and very sparse one (more than
:data:`SPARSE_MIN_ENTRIES` entries, at most :data:`SPARSE_MAX_DENSITY` non-zero: the importers'
exact MaxPool encoding over a convolution) may be a canonical read-only
``scipy.sparse.csr_array`` instead (:func:`prefer_sparse`); it denotes the same matrix, with
the same equality and fingerprint. Consumers use the helpers :func:`abs_weight`,
:func:`pos_part`, :func:`neg_part`, :func:`row_abs_sums`, :func:`weight_rows` and
:func:`matmul_right` (the same maths for both storages); one without sparse support calls
:func:`dense_weight` or :func:`densified`, which densify up to :data:`MAX_DENSE_ENTRIES` entries
and raise :class:`~nncert.verify.errors.UnsupportedLayerError` beyond.

Most algorithms want the *normal form* (:meth:`Network.normalized`)::

    Dense_1, act_1, Dense_2, act_2, ..., act_{L-1}, Dense_L

i.e. exactly ``L`` affine layers with one activation layer between consecutive ones, which is
the notation of FORMULATIONS.md section 2 (``z^(k) = W^(k) a^(k-1) + b^(k)``, ``a^(k) =
sigma(z^(k))``, ``f(x) = z^(L)``).

Example:
    >>> import numpy as np
    >>> net = Network((Dense(np.eye(2), np.zeros(2)), ReLU(), Dense(np.ones((1, 2)), np.zeros(1))),
    ...               input_shape=(2,))
    >>> net.forward(np.array([[1.0, -2.0]]))
    array([[1.]])
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

import numpy as np
from numpy.typing import ArrayLike, NDArray

from nncert.verify.errors import InvalidNetworkError, UnsupportedLayerError
from nncert.verify.rounding import UNIT, gamma, inflate

FloatArray: TypeAlias = NDArray[np.float64]


def _frozen_array(value: ArrayLike, name: str, ndim: int) -> FloatArray:
    """Return a read-only, C-contiguous float64 copy of ``value``; reject NaN/inf and bad ndim."""
    try:
        arr = np.array(value, dtype=np.float64, order="C", copy=True)
    except (TypeError, ValueError) as err:
        raise InvalidNetworkError(f"{name}: cannot convert to a float64 array ({err})") from err
    if arr.ndim != ndim:
        raise InvalidNetworkError(f"{name}: expected {ndim}-d array, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        bad = "NaN" if np.isnan(arr).any() else "infinite"
        raise InvalidNetworkError(f"{name}: contains {bad} values")
    arr.setflags(write=False)
    return arr


#: a :class:`Dense` weight is stored as a scipy CSR array when it has more than this many
#: entries *and* at most :data:`SPARSE_MAX_DENSITY` of them are non-zero (see
#: :func:`prefer_sparse`); every smaller or denser weight stays a numpy array
SPARSE_MIN_ENTRIES = 10**7
#: largest fraction of non-zero entries for which a large weight is stored sparse
SPARSE_MAX_DENSITY = 0.05
#: largest dense matrix (entries) a consumer without sparse support may make of a sparse
#: weight (:func:`dense_weight`); the same cap as the importer's dense encodings
MAX_DENSE_ENTRIES = 10**8


def is_sparse(w: Any) -> bool:
    """Whether ``w`` is a scipy sparse matrix/array (a sparse :attr:`Dense.weight`).

    Does not import scipy: no sparse object exists before ``scipy.sparse`` is loaded, and
    start-up (``nncert vnncomp`` on a dense network) stays free of it."""
    sp = sys.modules.get("scipy.sparse")
    return sp is not None and bool(sp.issparse(w))


def prefer_sparse(n_rows: int, n_cols: int, nnz: int) -> bool:
    """The storage rule of :attr:`Dense.weight`: sparse when the matrix has more than
    :data:`SPARSE_MIN_ENTRIES` entries and a density of at most :data:`SPARSE_MAX_DENSITY`."""
    entries = n_rows * n_cols
    return entries > SPARSE_MIN_ENTRIES and nnz <= SPARSE_MAX_DENSITY * entries


def _frozen_sparse(value: Any, name: str) -> Any:
    """A canonical, read-only float64 CSR copy of the sparse ``value``: sorted indices, no
    duplicates, no explicit zeros (so equal matrices have equal arrays); NaN/inf refused."""
    import scipy.sparse as sp

    try:
        m = sp.csr_array(value, dtype=np.float64, copy=True)
    except (TypeError, ValueError) as err:
        raise InvalidNetworkError(f"{name}: cannot convert to a float64 CSR array ({err})") from err
    if m.ndim != 2:
        raise InvalidNetworkError(f"{name}: expected 2-d array, got shape {m.shape}")
    m.sum_duplicates()
    m.eliminate_zeros()
    m.sort_indices()
    if not np.all(np.isfinite(m.data)):
        bad = "NaN" if np.isnan(m.data).any() else "infinite"
        raise InvalidNetworkError(f"{name}: contains {bad} values")
    m.indices = m.indices.astype(np.int64)
    m.indptr = m.indptr.astype(np.int64)
    for arr in (m.data, m.indices, m.indptr):
        arr.setflags(write=False)
    return m


def abs_weight(w: Any) -> Any:
    """``|W|`` element-wise, sparse for a sparse ``W`` (the same maths as ``np.abs``)."""
    return abs(w) if is_sparse(w) else np.abs(w)


def pos_part(w: Any) -> Any:
    """``max(W, 0)`` element-wise, sparse for a sparse ``W``."""
    return w.maximum(0.0) if is_sparse(w) else np.maximum(w, 0.0)


def neg_part(w: Any) -> Any:
    """``min(W, 0)`` element-wise, sparse for a sparse ``W``."""
    return w.minimum(0.0) if is_sparse(w) else np.minimum(w, 0.0)


def row_abs_sums(w: Any) -> FloatArray:
    """``|W| 1``: the ℓ1 norm of every row, shape ``(n_out,)``."""
    return np.asarray(abs_weight(w).sum(axis=1), dtype=np.float64).reshape(-1)


def weight_rows(w: Any, index: ArrayLike) -> FloatArray:
    """``W[index]`` as a dense array of shape ``(*index.shape, n_in)`` (a gather of rows)."""
    idx = np.asarray(index)
    if not is_sparse(w):
        return np.asarray(w[idx])
    flat = w[idx.reshape(-1)].toarray()
    return flat.reshape(*idx.shape, w.shape[1])


def dense_weight(w: Any, what: str) -> FloatArray:
    """``W`` as a numpy array, for a consumer without sparse support: a sparse weight is
    densified when it has at most :data:`MAX_DENSE_ENTRIES` entries, refused otherwise.

    Raises:
        UnsupportedLayerError: for a sparse weight larger than the cap.
    """
    if not is_sparse(w):
        return np.asarray(w)
    n_rows, n_cols = (int(d) for d in w.shape)
    if n_rows * n_cols > MAX_DENSE_ENTRIES:
        raise UnsupportedLayerError(
            f"{what} needs the {n_rows}x{n_cols} sparse affine layer as a dense matrix "
            f"({n_rows * n_cols * 8 / 1e9:.1f} GB), more than the {MAX_DENSE_ENTRIES:.0e} "
            "entries allowed; it does not support sparse layers"
        )
    return np.asarray(w.toarray())


def matmul_right(a: FloatArray, w: Any) -> FloatArray:
    """``a @ w`` for ``a`` of shape ``(..., k)`` and a 2-d (dense or sparse) ``w``."""
    if a.ndim <= 2:
        return np.asarray(a @ w)
    shape = a.shape
    if a.size == 0:  # an empty batch, or k = 0 (an empty sum): reshape(-1, 0) is ambiguous
        return np.zeros((*shape[:-1], int(w.shape[1])))
    out = np.ascontiguousarray(a).reshape(-1, shape[-1]) @ w
    return np.asarray(out).reshape(*shape[:-1], w.shape[1])


# --------------------------------------------------------------------------------------------
# Layers
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Dense:
    """Affine layer ``z = W a + b``.

    A layer obtained by *composing* affine maps in float64 (an importer folding ``Sub``,
    ``MatMul`` and ``Add`` into one matrix, or :meth:`Network.normalized` merging two Dense
    layers) differs from the exact composition by rounding. It then records a bound on that
    difference, so that sound bounds hold for the exact network::

        |(W_exact a + b_exact) - (W a + b)|_i <= weight_error_i * max_k |a_k| + bias_error_i

    The weight is a read-only numpy array, or, for a large and very sparse layer (the
    importers' exact MaxPool encoding, :func:`prefer_sparse`), a canonical read-only
    ``scipy.sparse.csr_array`` (see :attr:`sparse`). Both denote the same matrix: equality and
    :meth:`Network.fingerprint` do not depend on the storage.

    Attributes:
        weight: ``W``, shape ``(n_out, n_in)``: numpy array or scipy CSR array.
        bias: ``b``, shape ``(n_out,)``.
        weight_error: ``(n_out,)`` non-negative, or ``None`` (``W`` is exact).
        bias_error: ``(n_out,)`` non-negative, or ``None`` (``b`` is exact).
    """

    weight: FloatArray
    bias: FloatArray
    weight_error: FloatArray | None = None
    bias_error: FloatArray | None = None

    def __post_init__(self) -> None:
        w = (
            _frozen_sparse(self.weight, "Dense.weight")
            if is_sparse(self.weight)
            else _frozen_array(self.weight, "Dense.weight", 2)
        )
        b = _frozen_array(self.bias, "Dense.bias", 1)
        if w.shape[0] != b.shape[0]:
            raise InvalidNetworkError(
                f"Dense: weight has {w.shape[0]} rows but bias has {b.shape[0]} entries"
            )
        object.__setattr__(self, "weight", w)
        object.__setattr__(self, "bias", b)
        for name in ("weight_error", "bias_error"):
            value = getattr(self, name)
            if value is None:
                continue
            e = _frozen_array(value, f"Dense.{name}", 1)
            if e.shape != (w.shape[0],) or np.any(e < 0.0):
                raise InvalidNetworkError(
                    f"Dense: {name} must be {w.shape[0]} non-negative values, got shape {e.shape}"
                )
            object.__setattr__(self, name, e if np.any(e > 0.0) else None)

    @property
    def exact(self) -> bool:
        """Whether ``W`` and ``b`` are the exact layer (no composition error recorded)."""
        return self.weight_error is None and self.bias_error is None

    @property
    def sparse(self) -> bool:
        """Whether :attr:`weight` is stored as a scipy CSR array."""
        return is_sparse(self.weight)

    @property
    def nnz(self) -> int:
        """Number of non-zero weights."""
        w: Any = self.weight
        return int(w.nnz) if is_sparse(w) else int(np.count_nonzero(w))

    @property
    def n_in(self) -> int:
        """Number of inputs."""
        return int(self.weight.shape[1])

    @property
    def n_out(self) -> int:
        """Number of outputs."""
        return int(self.weight.shape[0])

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Dense)
            and _weights_equal(self.weight, other.weight)
            and np.array_equal(self.bias, other.bias)
        )

    def __hash__(self) -> int:
        return hash((self.weight.shape, self.bias.tobytes()[:64]))


def _weights_equal(a: Any, b: Any) -> bool:
    """Equality of two weights, whatever their storage (dense or canonical CSR)."""
    if a.shape != b.shape:
        return False
    if is_sparse(a) and is_sparse(b):
        return bool(
            np.array_equal(a.indptr, b.indptr)
            and np.array_equal(a.indices, b.indices)
            and np.array_equal(a.data, b.data)
        )
    if is_sparse(a) or is_sparse(b):
        sa = a if is_sparse(a) else _frozen_sparse(_csr_of(a), "weight")
        sb = b if is_sparse(b) else _frozen_sparse(_csr_of(b), "weight")
        return _weights_equal(sa, sb)
    return bool(np.array_equal(a, b))


def _csr_of(w: FloatArray) -> Any:
    import scipy.sparse as sp

    return sp.csr_array(w)


@dataclass(frozen=True)
class ReLU:
    """``max(z, 0)``."""


@dataclass(frozen=True)
class LeakyReLU:
    """``z if z >= 0 else alpha * z`` with ``0 <= alpha <= 1`` (so the function is monotone)."""

    alpha: float = 0.01

    def __post_init__(self) -> None:
        a = float(self.alpha)
        if not (0.0 <= a <= 1.0):
            raise InvalidNetworkError(f"LeakyReLU: alpha={self.alpha!r} must lie in [0, 1]")
        object.__setattr__(self, "alpha", a)


@dataclass(frozen=True)
class HardTanh:
    """``clip(z, min_val, max_val)`` (ONNX ``Clip``; torch ``Hardtanh``/``ReLU6``)."""

    min_val: float = -1.0
    max_val: float = 1.0

    def __post_init__(self) -> None:
        lo, hi = float(self.min_val), float(self.max_val)
        if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
            raise InvalidNetworkError(
                f"HardTanh: need finite min_val < max_val, got {self.min_val!r}, {self.max_val!r}"
            )
        object.__setattr__(self, "min_val", lo)
        object.__setattr__(self, "max_val", hi)


@dataclass(frozen=True)
class Sigmoid:
    """``1 / (1 + exp(-z))``."""


@dataclass(frozen=True)
class Tanh:
    """``tanh(z)``."""


@dataclass(frozen=True)
class RectifiedPower:
    r"""``max(z, 0) ** exponent`` with a real ``exponent >= 1``.

    Non-decreasing and convex on the whole real line, so the bound engine's assumptions on
    activations (monotone, relaxation slopes ``>= 0``) hold. Powers of a sign-changing tensor
    are built from it exactly: :math:`z^p = \max(z, 0)^p + (-1)^p \max(-z, 0)^p` for an
    integer ``p`` (one of the two terms is 0), and a product of two tensors by polarization
    :math:`ab = ((a + b)^2 - (a - b)^2) / 4` (see the ONNX importer's ``Pow`` and ``Mul``).
    """

    exponent: float = 2.0

    def __post_init__(self) -> None:
        p = float(self.exponent)
        if not (np.isfinite(p) and p >= 1.0):
            raise InvalidNetworkError(
                f"RectifiedPower: exponent={self.exponent!r} must be a finite number >= 1"
            )
        object.__setattr__(self, "exponent", p)


def rectified_power(z: FloatArray, p: float) -> FloatArray:
    """``max(z, 0) ** p`` in float64 (``p = 2``: one correctly rounded product)."""
    m = np.maximum(np.asarray(z, dtype=np.float64), 0.0)
    with np.errstate(over="ignore"):
        return m * m if p == 2.0 else np.power(m, p)


@dataclass(frozen=True)
class Exp:
    """``exp(z)`` (increasing, convex; the numerators of a softmax)."""


@dataclass(frozen=True)
class NegReciprocal1p:
    r"""``-1 / (1 + max(z, 0))``: non-decreasing, ``-1`` for ``z <= 0``, concave on ``z >= 0``.

    A softmax output is :math:`1 / (1 + S_i)` with :math:`S_i = \sum_{j \ne i}
    e^{z_j - z_i} \ge 0`; this layer gives its negative monotonically (the bound engine
    wants non-decreasing activations), and the next ``Dense`` negates it.
    """


def _neg_reciprocal_1p(z: FloatArray) -> FloatArray:
    return -1.0 / (1.0 + np.maximum(np.asarray(z, dtype=np.float64), 0.0))


def _exp(z: FloatArray) -> FloatArray:
    with np.errstate(over="ignore"):
        return np.exp(np.asarray(z, dtype=np.float64))


@dataclass(frozen=True)
class Identity:
    """``z`` (kept only when an importer wants to preserve a layer boundary)."""


Activation: TypeAlias = (
    ReLU | LeakyReLU | HardTanh | Sigmoid | Tanh | RectifiedPower | Exp | NegReciprocal1p | Identity
)
Layer: TypeAlias = Dense | Activation

ACTIVATION_TYPES: tuple[type, ...] = (
    ReLU,
    LeakyReLU,
    HardTanh,
    Sigmoid,
    Tanh,
    RectifiedPower,
    Exp,
    NegReciprocal1p,
    Identity,
)
PIECEWISE_LINEAR_TYPES: tuple[type, ...] = (ReLU, LeakyReLU, HardTanh, Identity)


def _sigmoid(z: FloatArray) -> FloatArray:
    # numerically stable in both tails
    out = np.empty_like(z)
    pos = z >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-z[pos]))
    ez = np.exp(z[~pos])
    out[~pos] = ez / (1.0 + ez)
    return out


#: Element-wise function of each activation type, looked up by ``type(layer)``.
ACTIVATION_FUNCTIONS: dict[type, Callable[[Any, FloatArray], FloatArray]] = {
    ReLU: lambda layer, z: np.maximum(z, 0.0),
    LeakyReLU: lambda layer, z: np.where(z >= 0.0, z, layer.alpha * z),
    HardTanh: lambda layer, z: np.clip(z, layer.min_val, layer.max_val),
    Sigmoid: lambda layer, z: _sigmoid(z),
    Tanh: lambda layer, z: np.tanh(z),
    RectifiedPower: lambda layer, z: rectified_power(z, layer.exponent),
    Exp: lambda layer, z: _exp(z),
    NegReciprocal1p: lambda layer, z: _neg_reciprocal_1p(z),
    Identity: lambda layer, z: z,
}


def apply_activation(layer: Activation, z: FloatArray) -> FloatArray:
    """Apply an activation layer element-wise to ``z`` (any shape)."""
    try:
        fn = ACTIVATION_FUNCTIONS[type(layer)]
    except KeyError:
        raise UnsupportedLayerError(
            f"unsupported layer {type(layer).__name__}; supported activations: "
            f"{', '.join(t.__name__ for t in ACTIVATION_FUNCTIONS)}"
        ) from None
    return fn(layer, z)


def compose_affine(outer: Dense, inner: Dense) -> Dense:
    r"""``outer(inner(a))`` as one :class:`Dense` layer, with its float64 composition error.

    Computes ``W = W_o W_i``, ``b = W_o b_i + b_o`` in float64 and bounds the distance to the
    exact composition of the exact layers (each may carry its own error,
    :attr:`Dense.weight_error`): with :math:`\|a\|_\infty` the largest input magnitude,

    * rounding of ``W_o W_i``: :math:`\gamma_n |W_o| (|W_i| 1) \|a\|_\infty`;
    * the inner error seen through ``W_o``: :math:`|W_o| e_i`;
    * the outer error on the inner output, whose magnitude is at most
      :math:`(\max |W_i| 1 + \max e_i) \|a\|_\infty + \max |b_i| + \max e^b_i`.
    """

    Wo, bo, Wi, bi = outer.weight, outer.bias, inner.weight, inner.bias
    W = _settle(Wo @ Wi)
    b = np.asarray(Wo @ bi) + bo
    sel_o, sel_i = _unit_rows(Wo), _unit_rows(Wi.T)
    g = gamma(Wo.shape[1] + 1)
    awo = abs_weight(Wo)
    row_i = row_abs_sums(Wi)
    # a product with a (signed) selection matrix has one non-zero term per sum: exact
    we = np.zeros(W.shape[0]) if (sel_o or sel_i) else g * np.asarray(awo @ row_i)
    if sel_o:  # Wo b_i is exact; only the addition of b_o rounds
        be = np.where(bo == 0.0, 0.0, 2.0 * UNIT * np.abs(b))
    else:
        be = g * (np.asarray(awo @ np.abs(bi)) + np.abs(bo))
    ewi = np.zeros(Wi.shape[0]) if inner.weight_error is None else inner.weight_error
    ebi = np.zeros(Wi.shape[0]) if inner.bias_error is None else inner.bias_error
    we = we + np.asarray(awo @ ewi)
    be = be + np.asarray(awo @ ebi)
    if outer.weight_error is not None:
        scale_a = float(np.max(row_i + ewi, initial=0.0))
        scale_b = float(np.max(np.abs(bi) + ebi, initial=0.0))
        we = we + outer.weight_error * scale_a
        be = be + outer.weight_error * scale_b
    if outer.bias_error is not None:
        be = be + outer.bias_error
    n = Wo.shape[1] + 4
    return Dense(
        W, b, inflate(we, n) if np.any(we) else None, inflate(be, n) if np.any(be) else None
    )


def _settle(w: Any) -> Any:
    """Storage of a computed weight: a sparse product stays sparse only under
    :func:`prefer_sparse` (or when too large to densify); numpy results stay dense."""
    if not is_sparse(w):
        return np.asarray(w)
    n_rows, n_cols = (int(d) for d in w.shape)
    if prefer_sparse(n_rows, n_cols, int(w.nnz)) or n_rows * n_cols > MAX_DENSE_ENTRIES:
        return w
    return np.asarray(w.toarray())


def _unit_rows(W: Any) -> bool:
    """Every row of ``W`` has at most one non-zero entry, and it is ``+-1``: a product
    ``W @ X`` (or ``X @ W.T``) then only copies and negates, exactly."""
    if is_sparse(W):
        csr = _frozen_sparse(W, "weight")  # canonical: explicit zeros removed
        return bool(np.all(np.diff(csr.indptr) <= 1) and np.all(np.abs(csr.data) == 1.0))
    nz = W != 0.0
    return bool(np.all(nz.sum(axis=1) <= 1) and np.all(np.abs(W[nz]) == 1.0))


def densified(network: Network, what: str) -> Network:
    """``network`` with every sparse :attr:`Dense.weight` as a numpy array, for a consumer
    without sparse support (:func:`dense_weight`: refused above :data:`MAX_DENSE_ENTRIES`).
    A network without sparse layers is returned as it is.

    Raises:
        UnsupportedLayerError: for a sparse layer too large to densify.
    """
    if not any(isinstance(l, Dense) and l.sparse for l in network.layers):
        return network
    layers = tuple(
        Dense(dense_weight(l.weight, what), l.bias, l.weight_error, l.bias_error)
        if isinstance(l, Dense) and l.sparse
        else l
        for l in network.layers
    )
    return Network(layers, network.input_shape, name=network.name, source=network.source)


def _hash_sparse(layer: Dense) -> bool:
    """Whether :meth:`Network.fingerprint` hashes ``layer``'s weight in CSR form."""
    return prefer_sparse(layer.n_out, layer.n_in, layer.nnz)


def _layer_params(layer: Layer) -> dict[str, Any]:
    if isinstance(layer, Dense):
        return {}
    return {k: float(v) for k, v in sorted(vars(layer).items())}


# --------------------------------------------------------------------------------------------
# Network
# --------------------------------------------------------------------------------------------

#: attributes (not dataclass fields) under which a :class:`Network` caches its normal form:
#: the normal network itself, or a flag on a network that is in normal form
_NORMAL_FORM = "_normal_form"
_IS_NORMAL = "_is_normal"


@dataclass(frozen=True, eq=False)
class Network:
    """A feed-forward network on flattened float64 inputs.

    Attributes:
        layers: the layers, applied in order.
        input_shape: shape of one input before flattening (C order), e.g. ``(1, 28, 28)``.
        name: optional label (not part of the fingerprint).
        source: optional path of the file the network was read from (not part of the
            fingerprint); ONNX sources let counterexamples be replayed in onnxruntime.

    Raises:
        InvalidNetworkError: on inconsistent shapes, NaN/inf weights or an empty network.
    """

    layers: tuple[Layer, ...]
    input_shape: tuple[int, ...]
    name: str = field(default="", compare=False)
    source: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        layers = tuple(self.layers)
        shape = tuple(int(s) for s in self.input_shape)
        if not shape or any(s <= 0 for s in shape):
            raise InvalidNetworkError(f"Network: invalid input_shape {self.input_shape!r}")
        width = int(np.prod(shape))
        if not any(isinstance(l, Dense) for l in layers):
            raise InvalidNetworkError("Network: needs at least one Dense layer")
        for i, layer in enumerate(layers):
            if isinstance(layer, Dense):
                if layer.n_in != width:
                    raise InvalidNetworkError(
                        f"Network: layer {i} (Dense) expects {layer.n_in} inputs, "
                        f"but the previous layer produces {width}"
                    )
                width = layer.n_out
            elif not isinstance(layer, ACTIVATION_TYPES):
                raise UnsupportedLayerError(
                    f"Network: layer {i} has unsupported type {type(layer).__name__}; "
                    f"supported: Dense, {', '.join(t.__name__ for t in ACTIVATION_TYPES)}"
                )
        object.__setattr__(self, "layers", layers)
        object.__setattr__(self, "input_shape", shape)

    # -- shapes ---------------------------------------------------------------------------
    @property
    def n_inputs(self) -> int:
        """Length of the flattened input."""
        return int(np.prod(self.input_shape))

    @property
    def n_outputs(self) -> int:
        """Length of the output vector."""
        return self.dense_layers[-1].n_out

    @property
    def dense_layers(self) -> tuple[Dense, ...]:
        """The affine layers, in order."""
        return tuple(l for l in self.layers if isinstance(l, Dense))

    @property
    def activation_types(self) -> frozenset[type]:
        """The set of activation layer types used (``Identity`` excluded)."""
        return frozenset(type(l) for l in self.layers if isinstance(l, ACTIVATION_TYPES)) - {
            Identity
        }

    @property
    def is_piecewise_linear(self) -> bool:
        """True when every activation is piecewise linear (exact MILP possible)."""
        return all(t in PIECEWISE_LINEAR_TYPES for t in self.activation_types)

    @property
    def n_parameters(self) -> int:
        """Number of weights and biases."""
        return sum(d.n_out * d.n_in + d.bias.size for d in self.dense_layers)

    # -- evaluation -----------------------------------------------------------------------
    def forward(self, x: ArrayLike) -> FloatArray:
        """Evaluate the network in float64.

        Args:
            x: inputs, shape ``(batch, n_inputs)`` (or ``(n_inputs,)`` for one input, or
                ``(batch, *input_shape)``, which is flattened in C order).

        Returns:
            Outputs of shape ``(batch, n_outputs)`` (``(n_outputs,)`` for a 1-d input).
        """
        a = np.asarray(x, dtype=np.float64)
        single = a.ndim == 1
        a = a.reshape(1, -1) if single else a.reshape(a.shape[0], -1)
        if a.shape[1] != self.n_inputs:
            raise InvalidNetworkError(
                f"forward: input has {a.shape[1]} features, network expects {self.n_inputs}"
            )
        for layer in self.layers:
            if isinstance(layer, Dense):
                a = np.asarray(a @ layer.weight.T) + layer.bias
            else:
                a = apply_activation(layer, a)
        return a[0] if single else a

    # -- structure ------------------------------------------------------------------------
    def normalized(self) -> Network:
        """Return the equivalent network in normal form ``Dense (act Dense)*``.

        Consecutive ``Dense`` layers are multiplied together, ``Identity`` layers are dropped,
        an identity ``Dense`` is inserted before a leading activation, after a trailing one,
        and between two consecutive activations. The result computes the same function
        (up to float rounding where Dense layers were merged).

        The normal form is computed once per network and cached on it (the network is
        immutable): a network already in normal form returns itself, and every later call
        returns the same object.
        """
        state = self.__dict__
        if state.get(_IS_NORMAL):
            return self
        cached: Network | None = state.get(_NORMAL_FORM)
        if cached is not None:
            return cached
        norm = self._compute_normal_form()
        # private attributes, not fields: outside eq, repr, the fingerprint and replace()
        object.__setattr__(norm, _IS_NORMAL, True)
        if norm is not self:
            object.__setattr__(self, _NORMAL_FORM, norm)
        return norm

    def _compute_normal_form(self) -> Network:
        out: list[Layer] = []
        prev_width = self.n_inputs
        for layer in self.layers:
            if isinstance(layer, Identity):
                continue
            if isinstance(layer, Dense):
                if out and isinstance(out[-1], Dense):
                    last = out.pop()
                    if not isinstance(last, Dense):  # pragma: no cover - guarded above
                        raise InvalidNetworkError("normalized: internal layer order error")
                    layer = compose_affine(layer, last)
                out.append(layer)
                prev_width = layer.n_out
            else:
                if not out or not isinstance(out[-1], Dense):
                    out.append(Dense(np.eye(prev_width), np.zeros(prev_width)))
                out.append(layer)
        if not isinstance(out[-1], Dense):
            out.append(Dense(np.eye(prev_width), np.zeros(prev_width)))
        if len(out) == len(self.layers) and all(a is b for a, b in zip(out, self.layers)):
            return self
        return Network(tuple(out), self.input_shape, name=self.name, source=self.source)

    def __getstate__(self) -> dict[str, Any]:
        """Pickled state without a cached normal form (a worker recomputes it, once)."""
        return {k: v for k, v in self.__dict__.items() if k != _NORMAL_FORM}

    def affine_and_activations(self) -> tuple[tuple[Dense, ...], tuple[Activation, ...]]:
        """Normal form split into ``L`` Dense layers and the ``L-1`` activations between them."""
        norm = self.normalized()
        dense = tuple(l for l in norm.layers if isinstance(l, Dense))
        acts = tuple(l for l in norm.layers if not isinstance(l, Dense))
        return dense, acts

    def replace_layers(self, layers: Sequence[Layer]) -> Network:
        """A copy with other layers (same input shape, name and no source file)."""
        return Network(tuple(layers), self.input_shape, name=self.name, source=None)

    # -- identity -------------------------------------------------------------------------
    def fingerprint(self) -> str:
        """Stable SHA-256 (hex) of the parsed content: layer types, parameters, weights.

        Independent of file bytes, names and the source path: two ONNX exports of the same
        weights have the same fingerprint. Weights are hashed as little-endian float64; a
        weight that :func:`prefer_sparse` would store sparse is hashed in canonical CSR form
        (row counts, column indices as little-endian int64, values), whether it is stored
        dense or sparse, so the fingerprint depends on the matrix only. (Other weights are
        hashed as dense bytes, as before: there a ``-0.0`` entry of a dense weight, which a
        sparse copy of it stores as no entry, still counts.)
        """
        h = hashlib.sha256()
        header = {
            "format": "nncert-network-v1",
            "input_shape": list(self.input_shape),
            "layers": [
                {"type": type(l).__name__, **_layer_params(l)}
                | ({"shape": list(l.weight.shape)} if isinstance(l, Dense) else {})
                | ({"composed": True} if isinstance(l, Dense) and not l.exact else {})
                | ({"csr": True} if isinstance(l, Dense) and _hash_sparse(l) else {})
                for l in self.layers
            ],
        }
        h.update(json.dumps(header, sort_keys=True).encode())
        for layer in self.layers:
            if isinstance(layer, Dense):
                w: Any = layer.weight
                if _hash_sparse(layer):
                    csr: Any = w if is_sparse(w) else _frozen_sparse(_csr_of(w), "weight")
                    h.update(np.diff(csr.indptr).astype("<i8").tobytes())
                    h.update(csr.indices.astype("<i8").tobytes())
                    h.update(csr.data.astype("<f8").tobytes())
                else:
                    h.update(dense_weight(w, "fingerprint").astype("<f8").tobytes())
                h.update(layer.bias.astype("<f8").tobytes())
                for err in (layer.weight_error, layer.bias_error):
                    if not layer.exact:
                        h.update(b"-" if err is None else err.astype("<f8").tobytes())
        return h.hexdigest()

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Network)
            and self.input_shape == other.input_shape
            and len(self.layers) == len(other.layers)
            and all(a == b for a, b in zip(self.layers, other.layers))
        )

    def __hash__(self) -> int:
        return hash(self.fingerprint())

    def summary(self) -> str:
        """One line per layer, e.g. ``Dense 5->50``."""
        lines = [f"input {self.input_shape}"]
        for layer in self.layers:
            if isinstance(layer, Dense):
                lines.append(f"Dense {layer.n_in}->{layer.n_out}")
            else:
                lines.append(type(layer).__name__)
        return "\n".join(lines)


__all__ = [
    "ACTIVATION_FUNCTIONS",
    "ACTIVATION_TYPES",
    "PIECEWISE_LINEAR_TYPES",
    "Activation",
    "Dense",
    "Exp",
    "FloatArray",
    "HardTanh",
    "Identity",
    "Layer",
    "LeakyReLU",
    "NegReciprocal1p",
    "Network",
    "ReLU",
    "RectifiedPower",
    "Sigmoid",
    "Tanh",
    "apply_activation",
    "rectified_power",
]
