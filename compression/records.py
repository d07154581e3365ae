"""Compression records: what a compression step did, in a JSON-safe, versioned form.

Every compression function of :mod:`nncert.compression` returns ``(network, record)``. The
record is a frozen dataclass holding the masks, kept indices, scales or ranks that produced the
compressed network, plus the parameter counts before and after. ``record.to_dict()`` returns a
JSON-safe dictionary (no NaN/inf, arrays as typed ``{"dtype", "shape", "data"}`` objects, see
DESIGN.md section 13 rule 13) that ``nncert compress`` writes to the sidecar
``OUT.onnx.nncert.json`` and that certificate transfer can read back with :func:`decode_array`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import fields, is_dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

#: Version of the record dictionaries written by ``to_dict`` (compare as int tuples).
RECORD_SCHEMA_VERSION: tuple[int, int] = (1, 0)


def encode_array(arr: NDArray[Any]) -> dict[str, Any]:
    """Typed JSON form of an array: ``{"dtype": ..., "shape": [...], "data": [flat, C order]}``.

    Booleans are written as ``0``/``1``; non-finite floats become ``None``.

    Examples:
        >>> encode_array(np.array([[True, False]]))
        {'dtype': 'bool', 'shape': [1, 2], 'data': [1, 0]}
    """
    a = np.asarray(arr)
    if a.dtype == np.bool_:
        data: list[Any] = a.reshape(-1).astype(np.int8).tolist()
        dtype = "bool"
    elif np.issubdtype(a.dtype, np.integer):
        data = a.reshape(-1).astype(np.int64).tolist()
        dtype = str(a.dtype)
    else:
        flat = a.reshape(-1).astype(np.float64)
        data = [float(v) if math.isfinite(v) else None for v in flat.tolist()]
        dtype = "float64"
    return {"dtype": dtype, "shape": [int(s) for s in a.shape], "data": data}


def decode_array(doc: Mapping[str, Any]) -> NDArray[Any]:
    """Inverse of :func:`encode_array` (``None`` entries become NaN).

    Raises:
        ValueError: when ``doc`` is not a typed array dictionary.
    """
    try:
        dtype, shape, data = str(doc["dtype"]), tuple(doc["shape"]), doc["data"]
    except (KeyError, TypeError) as err:
        raise ValueError(f"not a typed array: missing {err}") from err
    if dtype == "bool":
        return np.asarray(data, dtype=np.int8).astype(bool).reshape(shape)
    if dtype == "float64":
        vals = [np.nan if v is None else v for v in data]
        return np.asarray(vals, dtype=np.float64).reshape(shape)
    return np.asarray(data, dtype=np.dtype(dtype)).reshape(shape)


def jsonable(value: Any) -> Any:
    """Convert a record field value to JSON-safe data (recursively)."""
    if isinstance(value, np.ndarray):
        return encode_array(value)
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        f = float(value)
        return f if math.isfinite(f) else None
    return value


class RecordMixin:
    """``to_dict`` for frozen record dataclasses: adds ``kind`` and ``schema_version``."""

    #: short name of the compression method, written as ``"kind"``
    kind: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dictionary: ``{"kind", "schema_version", <fields>}``."""
        if not is_dataclass(self):  # pragma: no cover - mixin misuse
            raise TypeError(f"{type(self).__name__} is not a dataclass")
        body = {f.name: jsonable(getattr(self, f.name)) for f in fields(self)}
        return {"kind": self.kind, "schema_version": list(RECORD_SCHEMA_VERSION), **body}


__all__ = ["RECORD_SCHEMA_VERSION", "RecordMixin", "decode_array", "encode_array", "jsonable"]
