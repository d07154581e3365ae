"""Tests of nncert.verify.onnx_proto: ONNX models and tensors read without ``import onnx``.

The reference is always the ``onnx`` package itself: every tensor the fast decoder reads must
equal ``onnx.numpy_helper.to_array`` in dtype, shape and bytes, and :func:`from_onnx` must give
the same network (fingerprint, shapes, name, source) or the same error with the fast path
turned off (``NNCERT_ONNX_FAST=0``).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import AttributeProto, TensorProto, helper, numpy_helper

from nncert.verify import onnx_proto
from nncert.verify.errors import NncertError
from nncert.verify.fileio import is_gzip, read_input
from nncert.verify.importers import from_onnx
from nncert.verify.network import Dense, is_sparse

ROOT = Path(__file__).resolve().parents[2]
BENCHMARKS = ROOT.parent / "shared" / "benchmarks"
BUNDLED = ROOT / "verify" / "data"


def _onnx_files() -> list[Any]:
    """Every ONNX file of the bundled examples and of the shared benchmarks (when present)."""
    files = sorted(BUNDLED.glob("*.onnx"))
    if BENCHMARKS.is_dir():
        files += sorted(p for p in BENCHMARKS.rglob("*.onnx*") if p.is_file())
    return [pytest.param(p, id=str(p.relative_to(p.parents[1]))) for p in files]


ONNX_FILES = _onnx_files()


@pytest.fixture
def fast_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NNCERT_ONNX_FAST", "0")


def _model_bytes(path: Path) -> bytes:
    if is_gzip(path):
        data, _ = read_input(path, error=NncertError)
        return bytes(data)
    return path.read_bytes()


def _tensors(graph: Any) -> Iterator[Any]:
    """Every ``TensorProto`` of ``graph``: initializers, sparse parts, attribute tensors."""
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield sparse.values
        yield sparse.indices
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("t"):
                yield attr.t
            yield from attr.tensors
            if attr.HasField("g"):
                yield from _tensors(attr.g)
            for g in attr.graphs:
                yield from _tensors(g)


def _same(got: np.ndarray, want: np.ndarray) -> None:
    """Same dtype, shape and bytes (so NaN payloads and signed zeros count too)."""
    assert got.dtype == want.dtype
    assert got.shape == want.shape
    if got.dtype == object:  # strings: the bytes are pointers
        assert got.tolist() == want.tolist()
    else:
        assert got.tobytes() == want.tobytes()


# --------------------------------------------------------------------------------------------
# tensors against onnx.numpy_helper.to_array
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ONNX_FILES)
def test_every_shipped_tensor_decodes_like_onnx(path: Path) -> None:
    """Every initializer and attribute tensor of every bundled and benchmark ONNX file is
    decoded by the fast path (not handed to onnx) and equals onnx's array."""
    model = onnx_proto.parse_model(_model_bytes(path))
    tensors = list(_tensors(model.graph))
    assert tensors
    for tensor in tensors:
        assert onnx_proto._decode(tensor) is not None, (tensor.name, tensor.data_type)
        _same(onnx_proto.tensor_to_array(tensor), numpy_helper.to_array(tensor))


def _samples(dtype: np.dtype[Any]) -> list[np.ndarray]:
    """Arrays of ``dtype`` with edge values, in several shapes (scalar and empty included)."""
    if dtype == np.bool_:
        flat = np.array([True, False, False, True, True, False])
    elif dtype.kind == "f":
        info = np.finfo(dtype)
        flat = np.array(
            [0.0, -0.0, 1.5, -2.25, info.max, info.min, info.tiny, np.inf, -np.inf, np.nan],
            dtype=dtype,
        )
        flat = np.concatenate([flat, np.linspace(-3, 3, 14).astype(dtype)])
    else:
        iinfo = np.iinfo(dtype)
        flat = np.array([0, 1, iinfo.max, iinfo.min, iinfo.max - 1, 7], dtype=dtype)
    flat = flat.astype(dtype)
    return [
        flat.reshape(-1),
        flat.reshape(2, -1),
        flat.reshape(1, 2, -1),
        flat[:1].reshape(()),
        flat[:0],
        flat[:0].reshape(0, 3),
    ]


FAST_TYPES = sorted(onnx_proto._TENSOR_TYPES)


@pytest.mark.parametrize("data_type", FAST_TYPES, ids=helper.tensor_dtype_to_string)
def test_fast_types_raw_and_typed_match_onnx(data_type: int) -> None:
    """Each decoded element type, stored as ``raw_data`` and in its typed field."""
    dtype = helper.tensor_dtype_to_np_dtype(data_type)
    for array in _samples(dtype):
        raw = numpy_helper.from_array(array, "raw")
        assert raw.HasField("raw_data") and raw.data_type == data_type
        typed = helper.make_tensor("typed", data_type, array.shape, array.reshape(-1))
        assert not typed.HasField("raw_data")
        for tensor in (raw, typed):
            assert onnx_proto._decode(tensor) is not None
            got = onnx_proto.tensor_to_array(tensor)
            _same(got, numpy_helper.to_array(tensor))
            _same(got, array)


@pytest.mark.parametrize("data_type", [4, 5, 9, 10], ids=helper.tensor_dtype_to_string)
def test_typed_bit_patterns_take_the_low_bits_like_onnx(data_type: int) -> None:
    """16-bit types and bool keep bit patterns in int32_data; onnx reads the low bits of the
    unsigned 32-bit view (so -1 is 0xFFFF, 65537 is 1), and so does the decoder."""
    tensor = TensorProto(name="t", data_type=data_type, dims=[2, 3])
    tensor.int32_data.extend([-1, 65537, 0x7C00, 1, 0, 255])
    _same(onnx_proto.tensor_to_array(tensor), numpy_helper.to_array(tensor))


def test_little_endian_raw_data_on_any_machine() -> None:
    """raw_data is little-endian: read as such and converted to the native order (exercised
    here with a big-endian "native" dtype)."""
    raw = np.array([1.5, -2.0, 3.25], dtype="<f4").tobytes()
    big = onnx_proto._from_little_endian(raw, np.dtype(">f4"))
    assert big.dtype == np.dtype(">f4")
    assert big.tolist() == [1.5, -2.0, 3.25]
    native = onnx_proto._from_little_endian(raw, np.dtype(np.float32))
    assert native.tolist() == [1.5, -2.0, 3.25] and native.dtype == np.float32


def _exotic() -> list[Any]:
    out = []
    for name in ("BFLOAT16", "FLOAT8E4M3FN", "FLOAT8E5M2", "INT4", "UINT4", "COMPLEX64"):
        code = int(getattr(TensorProto, name))
        dtype = helper.tensor_dtype_to_np_dtype(code)
        values = np.array([0.5, -1.0, 2.0, 0.0]).astype(dtype) if "INT" not in name else None
        if values is None:
            values = np.array([1, -2, 3, 0] if name == "INT4" else [1, 2, 3, 0]).astype(dtype)
        out.append(pytest.param(numpy_helper.from_array(values.reshape(2, 2), "x"), id=name))
    out.append(pytest.param(numpy_helper.from_array(np.array(["a", "bc"]), "s"), id="STRING"))
    return out


@pytest.mark.parametrize("tensor", _exotic())
def test_exotic_types_fall_back_to_onnx(tensor: Any) -> None:
    assert onnx_proto._decode(tensor) is None
    _same(onnx_proto.tensor_to_array(tensor), numpy_helper.to_array(tensor))


def test_segments_and_bad_sizes_raise_onnx_errors() -> None:
    """What onnx rejects is rejected with onnx's own error."""
    short = TensorProto(name="short", data_type=TensorProto.FLOAT, dims=[2, 2])
    short.float_data.extend([1.0, 2.0, 3.0])
    segment = numpy_helper.from_array(np.ones(3, np.float32), "seg")
    segment.segment.begin = 0
    segment.segment.end = 3
    undefined = TensorProto(name="u", data_type=TensorProto.UNDEFINED, dims=[1])
    for tensor in (short, segment, undefined):
        with pytest.raises(Exception) as want:
            numpy_helper.to_array(tensor)
        with pytest.raises(type(want.value), match=re.escape(str(want.value))):
            onnx_proto.tensor_to_array(tensor)


# --------------------------------------------------------------------------------------------
# attributes, element types, the enum values the module hard-codes
# --------------------------------------------------------------------------------------------


def test_attribute_values_match_onnx() -> None:
    sub = helper.make_graph([], "g", [], [])
    sparse = helper.make_sparse_tensor(
        numpy_helper.from_array(np.array([1.0], np.float32), "v"),
        numpy_helper.from_array(np.array([0], np.int64), "i"),
        [2],
    )
    tensor = numpy_helper.from_array(np.arange(6, dtype=np.float32).reshape(2, 3), "t")
    node = helper.make_node(
        "Custom",
        [],
        ["y"],
        f=0.1,
        i=-3,
        s="same_upper",
        t=tensor,
        floats=[0.5, 1e-7],
        ints=[1, -1, 2**40],
        strings=["a", "b"],
        g=sub,
        sparse_tensor=sparse,
        tensors=[tensor],
        graphs=[sub],
        type_proto=helper.make_tensor_type_proto(TensorProto.FLOAT, [1]),
    )
    empty_ints = helper.make_attribute("empty", [], attr_type=AttributeProto.INTS)
    node.attribute.append(empty_ints)
    kinds = {int(a.type) for a in node.attribute}
    assert set(onnx_proto._ATTRIBUTE_FIELDS) <= kinds
    for attr in node.attribute:
        got = onnx_proto.attribute_value(attr)
        want = helper.get_attribute_value(attr)
        assert type(got) is type(want) and got == want, attr.name
    ref = AttributeProto(name="alpha", ref_attr_name="beta", type=AttributeProto.FLOAT)
    with pytest.raises(ValueError, match="reference attribute"):
        onnx_proto.attribute_value(ref)


def test_np_dtype_matches_onnx_for_every_element_type() -> None:
    for code in TensorProto.DataType.values():
        if code == TensorProto.UNDEFINED:
            continue
        assert onnx_proto.np_dtype(code) == helper.tensor_dtype_to_np_dtype(code)
    with pytest.raises(KeyError):
        onnx_proto.np_dtype(999)


def test_hard_coded_codes_are_onnx_codes() -> None:
    for code, (dtype, field) in onnx_proto._TENSOR_TYPES.items():
        assert helper.tensor_dtype_to_np_dtype(code) == dtype
        assert helper.tensor_dtype_to_field(code) == field
    assert onnx_proto._EXTERNAL == TensorProto.EXTERNAL
    assert onnx_proto._BOOL == TensorProto.BOOL
    assert onnx_proto._BITS16 == {TensorProto.FLOAT16, TensorProto.INT16, TensorProto.UINT16}
    names = {"f": "FLOAT", "i": "INT", "s": "STRING", "t": "TENSOR", "floats": "FLOATS"}
    names |= {"ints": "INTS", "strings": "STRINGS"}
    for code, (field, _) in onnx_proto._ATTRIBUTE_FIELDS.items():
        assert code == getattr(AttributeProto, names[field])


# --------------------------------------------------------------------------------------------
# from_onnx with and without the fast path
# --------------------------------------------------------------------------------------------


def _import(path: Any) -> tuple[Any, ...]:
    """Everything from_onnx gives: fingerprint, shapes, name, source and the arrays; or the
    error's type and message."""
    try:
        net = from_onnx(path)
    except NncertError as err:
        return (type(err).__name__, str(err))
    arrays = [
        (layer.weight, layer.bias, layer.weight_error, layer.bias_error)
        for layer in net.layers
        if isinstance(layer, Dense)
    ]
    kinds = [type(layer).__name__ for layer in net.layers]
    head = (net.fingerprint(), net.input_shape, net.name, net.source, kinds)
    return (*head, [_bytes(a) for quad in arrays for a in quad])


def _bytes(a: Any) -> bytes | None:
    """The array's bytes; a sparse weight (CSR) by its canonical index and data arrays."""
    if a is None:
        return None
    if is_sparse(a):
        return b"csr" + a.indptr.tobytes() + a.indices.tobytes() + a.data.tobytes()
    return bytes(a.tobytes())


@pytest.mark.parametrize("path", ONNX_FILES)
def test_from_onnx_is_the_same_with_and_without_the_fast_path(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast = _import(path)
    monkeypatch.setenv("NNCERT_ONNX_FAST", "0")
    slow = _import(path)
    if str(path).endswith(".gz"):  # each load writes its own decompressed copy
        fast, slow = fast[:3] + fast[4:], slow[:3] + slow[4:]
    assert fast == slow


def _small_model() -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.normal(size=(4, 3)).astype(np.float32), "W")
    b = numpy_helper.from_array(rng.normal(size=3).astype(np.float32), "b")
    nodes = [
        helper.make_node("MatMul", ["x", "W"], ["h"]),
        helper.make_node("Add", ["h", "b"], ["a"]),
        helper.make_node("Relu", ["a"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "small",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])],
        [w, b],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def test_external_data_is_read_by_onnx(tmp_path: Path) -> None:
    """A model whose weights live in an external file loads through onnx.load."""
    model = _small_model()
    inline = tmp_path / "inline.onnx"
    onnx.save_model(model, str(inline))
    ext = tmp_path / "ext.onnx"
    onnx.save_model(
        model, str(ext), save_as_external_data=True, location="ext.bin", size_threshold=0
    )
    assert onnx_proto.uses_external_data(onnx_proto.parse_model(ext.read_bytes()))
    assert not onnx_proto.uses_external_data(onnx_proto.parse_model(inline.read_bytes()))
    loaded = onnx_proto.load_model_file(ext)
    assert not onnx_proto.uses_external_data(loaded)  # onnx.load read ext.bin
    assert from_onnx(ext).fingerprint() == from_onnx(inline).fingerprint()


def test_external_data_in_a_subgraph_attribute_is_found() -> None:
    model = _small_model()
    inner = numpy_helper.from_array(np.ones(2, np.float32), "c")
    inner.data_location = TensorProto.EXTERNAL
    const = helper.make_node("Constant", [], ["c"], value=inner)
    sub = helper.make_graph([const], "body", [], [])
    model.graph.node.append(helper.make_node("If", ["cond"], ["z"], then_branch=sub))
    assert onnx_proto.uses_external_data(model)


def test_text_formats_are_read_by_onnx(tmp_path: Path) -> None:
    """onnx.load picks a text format by file extension; from_onnx still reads those files."""
    model = _small_model()
    binary, text = tmp_path / "m.onnx", tmp_path / "m.json"
    onnx.save_model(model, str(binary))
    onnx.save_model(model, str(text))
    assert text.read_bytes()[:1] == b"{"
    assert from_onnx(text).fingerprint() == from_onnx(binary).fingerprint()


def test_model_protos_and_bytes_are_accepted(tmp_path: Path) -> None:
    model = _small_model()
    path = tmp_path / "m.onnx"
    onnx.save_model(model, str(path))
    want = from_onnx(path).fingerprint()
    assert from_onnx(model).fingerprint() == want
    assert from_onnx(model.SerializeToString()).fingerprint() == want
    parsed = onnx_proto.parse_model(model.SerializeToString())
    assert isinstance(parsed, onnx.ModelProto) and parsed == model


def test_trailing_garbage_is_a_parse_error_like_onnx() -> None:
    """A parse that stops early is an error in both readers (onnx checks the byte count)."""
    data = _small_model().SerializeToString() + b"\x00"
    with pytest.raises(Exception) as want:
        onnx.load_from_string(data)
    with pytest.raises(type(want.value)):
        onnx_proto.parse_model(data)


# --------------------------------------------------------------------------------------------
# the private module copy and protobuf's descriptor pool
# --------------------------------------------------------------------------------------------

_PRIVATE_FIRST = """
import sys
from pathlib import Path
from nncert.verify import onnx_proto
from nncert.verify.importers import from_onnx
model = onnx_proto.parse_model(Path(sys.argv[1]).read_bytes())
net = from_onnx(sys.argv[1])
assert "onnx" not in sys.modules and onnx_proto.PRIVATE_MODULE in sys.modules
import onnx
from onnx import numpy_helper
assert isinstance(model, onnx.ModelProto)
onnx.checker.check_model(model)
assert onnx_proto.proto_module() is sys.modules["onnx.onnx_ml_pb2"]
again = onnx.load(sys.argv[1])
assert again == model
assert from_onnx(again).fingerprint() == net.fingerprint() == from_onnx(model).fingerprint()
for init in model.graph.initializer:
    assert (numpy_helper.to_array(init) == onnx_proto.tensor_to_array(init)).all()
print("ok")
"""

_ONNX_FIRST = """
import sys
import onnx
from nncert.verify import onnx_proto
from nncert.verify.importers import from_onnx
model = onnx.load(sys.argv[1])
assert onnx_proto.proto_module() is sys.modules["onnx.onnx_ml_pb2"]
private = onnx_proto._load_private()  # the second registration of onnx/onnx-ml.proto
assert private is not None and private.ModelProto is onnx.ModelProto
parsed = private.ModelProto()
parsed.ParseFromString(open(sys.argv[1], "rb").read())
assert parsed == model
assert from_onnx(parsed).fingerprint() == from_onnx(model).fingerprint()
print("ok")
"""


@pytest.mark.parametrize("implementation", ["default", "python"])
@pytest.mark.parametrize(
    "script", [_PRIVATE_FIRST, _ONNX_FIRST], ids=["private-first", "onnx-first"]
)
def test_private_copy_and_onnx_coexist(script: str, implementation: str) -> None:
    """onnx may be imported after or before the private copy (with either protobuf
    implementation): one descriptor pool, the same message classes."""
    env = dict(os.environ)
    if implementation == "python":
        env["PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION"] = "python"
    path = BUNDLED / "iris_relu.onnx"
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script), str(path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


def test_fast_path_off_uses_onnx(fast_off: None, tmp_path: Path) -> None:
    assert not onnx_proto.fast_path_enabled()
    tensor = numpy_helper.from_array(np.ones(2, np.float32), "x")
    _same(onnx_proto.tensor_to_array(tensor), np.ones(2, np.float32))
    path = tmp_path / "m.onnx"
    onnx.save_model(_small_model(), str(path))
    assert onnx_proto.load_model_file(path) == onnx.load(str(path))


# --------------------------------------------------------------------------------------------
# sparse initializers; corrupted files
# --------------------------------------------------------------------------------------------


def _sparse_model(linear: bool) -> onnx.ModelProto:
    """``_small_model`` with its weight matrix as a sparse initializer (linear or coordinate
    indices)."""
    model = _small_model()
    dense = numpy_helper.to_array(model.graph.initializer[0])
    nz = np.flatnonzero(np.abs(dense) > 0.5)
    coords = np.stack(np.unravel_index(nz, dense.shape), axis=1)
    indices = nz if linear else coords
    sparse = helper.make_sparse_tensor(
        numpy_helper.from_array(dense.reshape(-1)[nz], "W"),
        numpy_helper.from_array(indices.astype(np.int64), "W_idx"),
        list(dense.shape),
    )
    del model.graph.initializer[0]
    model.graph.sparse_initializer.append(sparse)
    return model


@pytest.mark.parametrize("linear", [True, False], ids=["linear", "coordinates"])
def test_sparse_initializers_without_onnx(linear: bool, tmp_path: Path) -> None:
    """Sparse initializers decode like onnx and do not import it."""
    path = tmp_path / "sparse.onnx"
    onnx.save_model(_sparse_model(linear), str(path))
    fast = _import(path)
    assert fast[0] != "InvalidNetworkError", fast
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NNCERT_ONNX_FAST", "0")
        assert _import(path) == fast
    code = (
        "import sys; from nncert.verify.importers import from_onnx; from_onnx(sys.argv[1]); "
        "print([m for m in ('onnx', 'ml_dtypes') if m in sys.modules])"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def _corrupt(data: bytes, rng: np.random.Generator) -> bytes:
    """``data`` truncated, with bytes overwritten (anywhere or in the header) or cut out."""
    out = bytearray(data)
    kind = int(rng.integers(4))
    if kind == 0:
        return bytes(out[: int(rng.integers(len(out)))])
    if kind == 1:
        for _ in range(int(rng.integers(1, 5))):
            out[int(rng.integers(len(out)))] = int(rng.integers(256))
    elif kind == 2:
        start = int(rng.integers(len(out)))
        del out[start : start + int(rng.integers(1, 50))]
    else:
        out[int(rng.integers(min(len(out), 400)))] = int(rng.integers(256))
    return bytes(out)


@pytest.mark.parametrize(
    "name", ["iris_relu.onnx", "iris_sigmoid.onnx", "digits_conv.onnx", "moons_relu.onnx", "acasxu"]
)
def test_corrupted_files_fail_alike_with_and_without_the_fast_path(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Random corruptions of a real model (truncated, overwritten, cut): both readers give
    the same network or the same nncert error, never another exception (unknown element
    types, zero strides and signalling NaNs among them)."""
    if name == "acasxu":
        source = BENCHMARKS / "vnncomp" / "acasxu" / "onnx" / "ACASXU_run2a_1_1_batch_2000.onnx"
        if not source.is_file():
            pytest.skip("shared benchmarks not found")
    else:
        source = BUNDLED / name
    data = source.read_bytes()
    rng = np.random.default_rng(15)
    outcomes: set[str] = set()
    for k in range(250):
        path = tmp_path / f"m{k}.onnx"
        path.write_bytes(_corrupt(data, rng))
        monkeypatch.setenv("NNCERT_ONNX_FAST", "1")
        fast = _import(path)
        monkeypatch.setenv("NNCERT_ONNX_FAST", "0")
        assert _import(path) == fast, path
        outcomes.add(fast[0] if isinstance(fast[0], str) and "Error" in fast[0] else "ok")
    assert {"ok", "InvalidNetworkError"} <= outcomes
