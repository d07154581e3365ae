"""The one witness replay: a candidate counterexample is believed only after it is replayed.

:func:`confirm_counterexample` clips a candidate into the unsafe case's input box (so that
membership holds *exactly*), evaluates it with the float64 forward pass of the IR and, for a
network read from an ONNX file (``.onnx`` or ``.onnx.gz``), in onnxruntime on the original
model: only if every unsafe row holds (``max_r (A_r y - b_r) <= 0``) under both is a
:class:`~nncert.verify.result.Counterexample` returned. Search internals may skip the
onnxruntime step for their many candidates (``onnx_replay=False``); every counterexample that
leaves :func:`nncert.verify.verify` has been through it.

:func:`onnxruntime_forward` evaluates an ONNX file in onnxruntime (imported lazily; sessions
are cached per file version).
"""

from __future__ import annotations

import functools
import logging
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from nncert.verify.errors import InvalidNetworkError
from nncert.verify.fileio import is_gzip, read_input
from nncert.verify.lowering import InputCarryNetwork
from nncert.verify.network import FloatArray, Network
from nncert.verify.result import Counterexample
from nncert.verify.spec import UnsafeCase

logger = logging.getLogger(__name__)

#: file suffixes whose networks are replayed in onnxruntime
ONNX_SUFFIXES = (".onnx", ".onnx.gz")


def is_onnx_source(source: str | None) -> bool:
    """Whether a network's :attr:`~nncert.verify.network.Network.source` is an ONNX file."""
    return source is not None and str(source).lower().endswith(ONNX_SUFFIXES)


def confirm_counterexample(
    network: Network,
    case: UnsafeCase,
    case_index: int,
    x: ArrayLike,
    *,
    onnx_replay: bool = True,
) -> Counterexample | None:
    """Replay a candidate witness; return a :class:`Counterexample` only if it is real.

    Args:
        network: the network (its ``source`` decides whether onnxruntime replays).
        case: the unsafe case the candidate should satisfy.
        case_index: its index in the property.
        x: the candidate input (any shape with ``n_inputs`` entries).
        onnx_replay: also replay in onnxruntime when the network came from an ONNX file.

    Returns:
        The counterexample (``onnx_checked`` tells whether onnxruntime confirmed it too), or
        ``None`` when the clipped point does not violate the case under every replay.
    """
    box = case.input_box
    xc = np.clip(np.asarray(x, dtype=np.float64).reshape(-1), box.lower, box.upper)
    if xc.shape != box.lower.shape or not box.contains(xc):
        return None
    y = network.forward(xc)
    viol = float(case.violation(y.reshape(1, -1))[0])
    if not viol <= 0.0:
        return None
    checked = False
    # a network carrying its inputs to its outputs (constraints over the inputs, products of
    # variables): replay the original model and extend its outputs as the network's forward
    # does ([f(x); x], or the used columns and monomials of it, in float64)
    carry = network if isinstance(network, InputCarryNetwork) else None
    base = carry.base if carry is not None else None
    source = network.source if base is None else base.source
    if onnx_replay and is_onnx_source(source):
        assert source is not None
        y_ort = onnxruntime_forward(source, xc.reshape(1, -1))[0]
        if carry is not None and base is not None:
            y_ort = carry.extend(y_ort, xc)
        v_ort = float(case.violation(y_ort.reshape(1, -1))[0])
        if not v_ort <= 0.0:
            logger.info("candidate rejected by onnxruntime replay (violation %.3g)", v_ort)
            return None
        checked = True
    return Counterexample(xc, y, int(case_index), viol, onnx_checked=checked)


@functools.lru_cache(maxsize=64)
def _ort_session(path: str, mtime_ns: int, size: int) -> Any:
    """One onnxruntime session per (path, mtime, size): edits of the file invalidate it.

    A gzip-compressed file is decompressed (capped, see :mod:`nncert.verify.fileio`) and the
    session is built from the bytes.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    model: str | bytes = path
    if is_gzip(Path(path)):
        model, _ = read_input(path, error=InvalidNetworkError)
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


_ORT_DTYPES: dict[str, type] = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(float16)": np.float16,
}


def onnxruntime_forward(path: str | os.PathLike[str], x: Any) -> FloatArray:
    """Evaluate an ONNX file in onnxruntime (CPU) on a batch of flattened inputs.

    Each row of ``x`` is reshaped (C order) to the model's input shape. If the leading input
    dimension is symbolic the batch is run at once; if it is fixed (e.g. 1) or the input has no
    batch dimension (e.g. shape ``[1]``), the rows are run one at a time. Sessions are cached
    per path (and file modification time).

    Args:
        path: the ``.onnx`` (or ``.onnx.gz``) file.
        x: inputs of shape ``(batch, n_inputs)`` (or ``(n_inputs,)`` for one input).

    Returns:
        float64 outputs of shape ``(batch, n_outputs)``.

    Raises:
        InvalidNetworkError: if the file cannot be loaded or ``x`` does not fit its input.
    """
    p = Path(path)
    try:
        stat = p.stat()
        session = _ort_session(str(p), stat.st_mtime_ns, stat.st_size)
    except Exception as err:  # FileNotFoundError, onnxruntime's Fail/InvalidGraph, ...
        raise InvalidNetworkError(f"{p}: onnxruntime cannot load the model: {err}") from err
    meta = session.get_inputs()[0]
    dtype = _ORT_DTYPES.get(meta.type)
    if dtype is None:
        raise InvalidNetworkError(f"{p}: unsupported input type {meta.type}")
    arr = np.asarray(x, dtype=np.float64)
    arr = arr.reshape(1, -1) if arr.ndim == 1 else arr.reshape(arr.shape[0], -1)
    dims = list(meta.shape)
    symbolic = [not isinstance(d, int) or d <= 0 for d in dims]
    if any(symbolic[1:]) or (len(dims) == 1 and symbolic[0]):
        raise InvalidNetworkError(f"{p}: input shape {dims} has non-leading symbolic dims")
    batched = len(dims) >= 2 and symbolic[0]
    feature = [int(d) for d in (dims[1:] if batched else dims)]
    width = int(math.prod(feature))
    if arr.shape[1] != width:
        raise InvalidNetworkError(
            f"{p}: input has {arr.shape[1]} features, the model input {dims} needs {width}"
        )
    name = meta.name
    if batched:
        (out,) = session.run(None, {name: arr.reshape(-1, *feature).astype(dtype)})[:1]
        return np.asarray(out, dtype=np.float64).reshape(arr.shape[0], -1)
    rows = [
        np.asarray(session.run(None, {name: row.reshape(feature).astype(dtype)})[0]) for row in arr
    ]
    return np.stack([r.astype(np.float64).reshape(-1) for r in rows]) if rows else np.zeros((0, 0))


__all__ = ["ONNX_SUFFIXES", "confirm_counterexample", "is_onnx_source", "onnxruntime_forward"]
