"""ONNX models and tensors read without importing the ``onnx`` package on the common path.

``import onnx`` costs about 0.75 s, almost all of it in ``ml_dtypes`` (loaded by
``onnx.helper``), while reading a model needs only the protobuf message classes, which live in
``onnx/onnx_ml_pb2.py`` and import nothing but ``google.protobuf``. This module loads that one
file under a private module name (:data:`PRIVATE_MODULE`) without running ``onnx/__init__.py``,
parses ``ModelProto`` from bytes, and decodes ``TensorProto`` to numpy itself for the element
types that occur in practice.

Everything unusual goes to the real ``onnx`` package, imported lazily then, so that the result
is exactly what ``onnx`` gives:

* a model file with tensors in external data (:func:`load_model_file` returns ``onnx.load``);
* tensors of other element types (bfloat16, float8, int4, strings, complex, ...), segments,
  external data, or anything the decoder cannot handle (:func:`tensor_to_array` returns
  ``onnx.numpy_helper.to_array``, which then decodes or raises its own error);
* attribute kinds other than float, int, string, tensor, floats, ints and strings, and
  reference attributes (:func:`attribute_value` returns ``onnx.helper.get_attribute_value``);
* element types outside the table for ``Cast`` (:func:`np_dtype`).

Both module copies register the same file (``onnx/onnx-ml.proto``) in protobuf's default
descriptor pool; protobuf accepts the identical second registration and hands out the same
message classes, so models parsed here are ``onnx.ModelProto`` instances and ``onnx`` may be
imported before or after this module in the same process. When ``onnx`` is imported already,
its own ``onnx_ml_pb2`` is used.

``NNCERT_ONNX_FAST=0`` in the environment turns the fast path off: every function then calls
``onnx`` exactly as the importer did before this module existed.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import threading
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

#: the name under which ``onnx/onnx_ml_pb2.py`` is registered in ``sys.modules``
PRIVATE_MODULE = "_nncert_onnx_ml_pb2"

#: ``TensorProto.DataType`` -> (numpy dtype, storage field of the typed data) for the element
#: types decoded here; the values are those of ``onnx.TensorProto`` (fixed by the ONNX spec)
_TENSOR_TYPES: dict[int, tuple[np.dtype[Any], str]] = {
    1: (np.dtype(np.float32), "float_data"),  # FLOAT
    2: (np.dtype(np.uint8), "int32_data"),  # UINT8
    3: (np.dtype(np.int8), "int32_data"),  # INT8
    4: (np.dtype(np.uint16), "int32_data"),  # UINT16
    5: (np.dtype(np.int16), "int32_data"),  # INT16
    6: (np.dtype(np.int32), "int32_data"),  # INT32
    7: (np.dtype(np.int64), "int64_data"),  # INT64
    9: (np.dtype(np.bool_), "int32_data"),  # BOOL
    10: (np.dtype(np.float16), "int32_data"),  # FLOAT16
    11: (np.dtype(np.float64), "double_data"),  # DOUBLE
    12: (np.dtype(np.uint32), "uint64_data"),  # UINT32
    13: (np.dtype(np.uint64), "uint64_data"),  # UINT64
}

#: numpy dtype of each typed-data field (how ``onnx`` reads the field before converting)
_FIELD_DTYPES: dict[str, np.dtype[Any]] = {
    "float_data": np.dtype(np.float32),
    "int32_data": np.dtype(np.int32),
    "int64_data": np.dtype(np.int64),
    "double_data": np.dtype(np.float64),
    "uint64_data": np.dtype(np.uint64),
}

#: element types whose typed data holds 16-bit patterns in ``int32_data`` (FLOAT16, INT16,
#: UINT16): the low 16 bits are the value's bits
_BITS16 = frozenset({4, 5, 10})
_BOOL = 9
_EXTERNAL = 1  # TensorProto.DataLocation.EXTERNAL

#: ``AttributeProto.AttributeType`` -> the field holding the value, for the kinds read here
#: (FLOAT, INT, STRING, TENSOR, FLOATS, INTS, STRINGS); repeated fields become lists
_ATTRIBUTE_FIELDS: dict[int, tuple[str, bool]] = {
    1: ("f", False),
    2: ("i", False),
    3: ("s", False),
    4: ("t", False),
    6: ("floats", True),
    7: ("ints", True),
    8: ("strings", True),
}

#: file extensions ``onnx.load`` reads as binary protobuf (others may select a text format)
_PROTOBUF_EXTENSIONS = frozenset({".onnx", ".pb"})

_LOCK = threading.Lock()


def fast_path_enabled() -> bool:
    """Whether the fast path is on (``NNCERT_ONNX_FAST`` is not ``0``)."""
    return os.environ.get("NNCERT_ONNX_FAST", "1").strip() != "0"


def proto_module() -> ModuleType | None:
    """The generated ``onnx_ml_pb2`` module, or ``None`` when it cannot be loaded.

    ``onnx``'s own copy when ``onnx`` is imported already; otherwise ``onnx/onnx_ml_pb2.py``
    executed once under :data:`PRIVATE_MODULE`, without ``onnx/__init__.py``. ``None`` when
    ``onnx`` is not installed or the file does not load (e.g. a protobuf runtime too old for
    the generated code): the callers then import ``onnx``, which reports the problem.
    """
    onnx = sys.modules.get("onnx")
    if onnx is not None and hasattr(onnx, "onnx_ml_pb2"):
        return onnx.onnx_ml_pb2
    module = sys.modules.get(PRIVATE_MODULE)
    if module is not None:
        return module
    with _LOCK:
        module = sys.modules.get(PRIVATE_MODULE)
        if module is None:
            module = _load_private()
    return module


def _load_private() -> ModuleType | None:
    try:
        spec = importlib.util.find_spec("onnx")  # locates the package, runs none of it
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        path = Path(folder) / "onnx_ml_pb2.py"
        if path.is_file():
            break
    else:
        return None
    file_spec = importlib.util.spec_from_file_location(PRIVATE_MODULE, path)
    if file_spec is None or file_spec.loader is None:
        return None
    module = importlib.util.module_from_spec(file_spec)
    sys.modules[PRIVATE_MODULE] = module
    try:
        file_spec.loader.exec_module(module)
    except Exception:
        del sys.modules[PRIVATE_MODULE]
        return None
    return module


def _full_name(obj: Any) -> str | None:
    descriptor = getattr(type(obj), "DESCRIPTOR", None)
    name = getattr(descriptor, "full_name", None)
    return name if isinstance(name, str) else None


def is_model_proto(obj: Any) -> bool:
    """Whether ``obj`` is an ``onnx.ModelProto`` (checked without importing ``onnx``)."""
    return _full_name(obj) == "onnx.ModelProto"


def is_tensor_proto(obj: Any) -> bool:
    """Whether ``obj`` is an ``onnx.TensorProto`` (checked without importing ``onnx``)."""
    return _full_name(obj) == "onnx.TensorProto"


# --------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------


def parse_model(data: bytes) -> Any:
    """``onnx.load_from_string(data)``: the ``ModelProto`` serialized in ``data``.

    Like ``onnx``, external data is not loaded here (its tensors keep their references) and
    a parse that consumes fewer bytes than given is a ``DecodeError``.

    Raises:
        google.protobuf.message.DecodeError: ``data`` is not a serialized model.
    """
    pb2 = proto_module() if fast_path_enabled() else None
    if pb2 is None:
        import onnx

        return onnx.load_from_string(data)
    from google.protobuf.message import DecodeError

    model = pb2.ModelProto()
    decoded = model.ParseFromString(data)
    if decoded is not None and decoded != len(data):
        raise DecodeError(f"Protobuf decoding consumed too few bytes: {decoded} out of {len(data)}")
    return model


def load_model_file(path: str | os.PathLike[str]) -> Any:
    """``onnx.load(path)``: parse the file; with tensors in external data (or a file name
    that selects one of ``onnx``'s text formats) ``onnx.load`` itself reads it."""
    if fast_path_enabled() and os.path.splitext(path)[1].lower() in _PROTOBUF_EXTENSIONS:
        model = parse_model(Path(path).read_bytes())
        if not uses_external_data(model):
            return model
    import onnx

    return onnx.load(str(path))


def uses_external_data(model: Any) -> bool:
    """Whether any tensor of ``model`` (initializers, node attributes, subgraphs, functions)
    keeps its data in an external file."""
    if any(_graph_external(f) for f in model.functions):
        return True
    return _graph_external(model.graph)


def _graph_external(graph: Any) -> bool:
    """``graph`` (a ``GraphProto`` or ``FunctionProto``) holds an external tensor."""
    for tensor in getattr(graph, "initializer", ()):
        if tensor.data_location == _EXTERNAL:
            return True
    for sparse in getattr(graph, "sparse_initializer", ()):
        if _sparse_external(sparse):
            return True
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("t") and attr.t.data_location == _EXTERNAL:
                return True
            if any(t.data_location == _EXTERNAL for t in attr.tensors):
                return True
            if attr.HasField("sparse_tensor") and _sparse_external(attr.sparse_tensor):
                return True
            if any(_sparse_external(s) for s in attr.sparse_tensors):
                return True
            if attr.HasField("g") and _graph_external(attr.g):
                return True
            if any(_graph_external(g) for g in attr.graphs):
                return True
    return False


def _sparse_external(sparse: Any) -> bool:
    return bool(
        sparse.values.data_location == _EXTERNAL or sparse.indices.data_location == _EXTERNAL
    )


# --------------------------------------------------------------------------------------------
# Tensors, attributes, element types
# --------------------------------------------------------------------------------------------


def tensor_to_array(tensor: Any) -> np.ndarray:
    """``onnx.numpy_helper.to_array(tensor)``, decoded here for the types of
    :data:`_TENSOR_TYPES`.

    ``raw_data`` holds the elements little-endian, C order; without it the typed field
    (:data:`_FIELD_DTYPES`) holds one entry per element: 16-bit types and ``bool`` keep their
    bit patterns in the low bits of ``int32_data``, narrower integers their values. Other
    tensors (other types, external data, segments) and tensors whose data does not fit their
    ``dims`` go to ``onnx``, which decodes them or raises its own error.
    """
    if fast_path_enabled():
        try:
            out = _decode(tensor)
        except Exception:
            out = None
        if out is not None:
            return out
    from onnx import numpy_helper

    return numpy_helper.to_array(tensor)


def _decode(tensor: Any) -> np.ndarray | None:
    """The array of ``tensor``, or ``None`` when ``onnx`` must decode it."""
    entry = _TENSOR_TYPES.get(int(tensor.data_type))
    if entry is None or tensor.HasField("segment") or tensor.data_location == _EXTERNAL:
        return None
    dtype, field = entry
    dims = tuple(int(d) for d in tensor.dims)
    if tensor.HasField("raw_data"):
        return _from_little_endian(tensor.raw_data, dtype).reshape(dims)
    code = int(tensor.data_type)
    if code in _BITS16:
        bits = np.array(tensor.int32_data, dtype=np.int32).view(np.uint32).astype(np.uint16)
        return bits.reshape(dims).view(dtype)
    if code == _BOOL:
        bits = np.array(tensor.int32_data, dtype=np.int32).view(np.uint32).astype(np.uint8)
        return bits.view(dtype).reshape(dims)
    stored = np.asarray(getattr(tensor, field), dtype=_FIELD_DTYPES[field])
    return stored.astype(dtype).reshape(dims)


def _from_little_endian(raw: bytes, dtype: np.dtype[Any]) -> np.ndarray:
    """The elements of ``raw`` (little-endian) as ``dtype``: a read-only view where ``dtype``
    is little-endian (as ``onnx`` returns), a converted copy otherwise."""
    values = np.frombuffer(raw, dtype=dtype.newbyteorder("<"))
    return values if values.dtype == dtype else values.astype(dtype)


def attribute_value(attr: Any) -> Any:
    """``onnx.helper.get_attribute_value(attr)``: read here for float, int, string, tensor,
    floats, ints and strings (a ``TensorProto`` stays a message; lists for repeated kinds),
    by ``onnx`` for every other kind and for reference attributes."""
    entry = _ATTRIBUTE_FIELDS.get(int(attr.type))
    if entry is None or attr.ref_attr_name or not fast_path_enabled():
        import onnx

        return onnx.helper.get_attribute_value(attr)
    name, repeated = entry
    value = getattr(attr, name)
    return list(value) if repeated else value


def np_dtype(data_type: int) -> np.dtype[Any]:
    """``onnx.helper.tensor_dtype_to_np_dtype(data_type)``: the numpy dtype of an ONNX element
    type (the types of :data:`_TENSOR_TYPES` here; ``onnx`` for the others, raising
    ``KeyError`` for unknown codes)."""
    entry = _TENSOR_TYPES.get(int(data_type))
    if entry is None or not fast_path_enabled():
        import onnx

        return onnx.helper.tensor_dtype_to_np_dtype(int(data_type))
    return entry[0]


__all__ = [
    "PRIVATE_MODULE",
    "attribute_value",
    "fast_path_enabled",
    "is_model_proto",
    "is_tensor_proto",
    "load_model_file",
    "np_dtype",
    "parse_model",
    "proto_module",
    "tensor_to_array",
    "uses_external_data",
]
