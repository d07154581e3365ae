"""JSON serialization of certificates (DESIGN.md section 8.1, style rule 13).

Layout (``schema.json`` next to this module is the normative JSON Schema, draft 2020-12)::

    {
      "format": "nncert-certificate",
      "schema_version": [2, 0],
      "network":  {"fingerprint": "...", "n_inputs": 4, "n_outputs": 3, "name": "iris"},
      "property": {"name": "...", "label": 0, "fingerprint": "<sha256>",
                   "cases": [{"lower": ARRAY, "upper": ARRAY, "A": ARRAY, "b": ARRAY}, ...]},
      "verdict":  "verified" | "falsified" | "unknown",
      "evidence": {"kind": "bound" | "milp" | "bab" | "counterexample" | "transfer" | "none",
                   ...},
      "provenance": {"tool_version": ..., "created": "2025-01-01T00:00:00+00:00", ...}
    }

* Arrays are typed dicts ``{"dtype": "float64", "shape": [2, 3], "data": [...]}`` with ``data``
  flattened in C order.
* Numbers are JSON numbers; ``+inf``/``-inf`` are written as ``{"inf": 1}``/``{"inf": -1}``;
  NaN is never written (encoding raises). The text is produced with ``allow_nan=False``, so no
  ``NaN``/``Infinity`` token can appear. Python writes shortest round-trip decimals, so finite
  float64 values survive exactly.
* ``schema_version`` is compared as an int tuple: a newer *major* version is rejected with
  :class:`CertificateSchemaError`; a newer *minor* version of the same major is read (unknown
  keys are ignored). Major version 1 (before proof trees) is refused with a message that says
  how to re-create the certificate.
* Proof trees (``"tree"`` of a branch-and-bound or MILP case record) store their arrays packed:
  ``{"dtype": "int64" | "int8" | "float64", "shape": [n], "encoding": "zlib+base64",
  "data": "<base64 of the zlib-compressed little-endian bytes>"}``; decompression is capped
  (``$NNCERT_MAX_DECOMPRESSED_BYTES``). A certificate file whose name ends in ``.gz`` is
  written gzip-compressed; gzip files are recognised when read, whatever their name.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import hashlib
import json
import math
import os
import zlib
from collections.abc import Callable, Mapping
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np

from nncert.certificates.model import (
    SCHEMA_VERSION,
    BabCase,
    BabEvidence,
    BoundEvidence,
    Certificate,
    CounterexampleEvidence,
    Evidence,
    MilpCase,
    MilpEvidence,
    NetworkRef,
    NoEvidence,
    Provenance,
    TransferEvidence,
    property_fingerprint,
)
from nncert.verify.errors import (
    CertificateError,
    CertificateSchemaError,
    InvalidPropertyError,
)
from nncert.verify.fileio import max_decompressed_bytes, read_input, write_atomic
from nncert.verify.proof import ProofTree
from nncert.verify.result import Verdict
from nncert.verify.spec import Box, Property, UnsafeCase

FORMAT = "nncert-certificate"

# --------------------------------------------------------------------------------------------
# Encoding helpers
# --------------------------------------------------------------------------------------------


def encode_number(value: float) -> float | dict[str, int]:
    """A float as a JSON number, or ``{"inf": ±1}``; NaN raises :class:`CertificateError`."""
    v = float(value)
    if math.isnan(v):
        raise CertificateError("cannot serialize NaN in a certificate")
    if math.isinf(v):
        return {"inf": 1 if v > 0 else -1}
    return v


def encode_array(value: Any) -> dict[str, Any]:
    """A float64 array as ``{"dtype": "float64", "shape": [...], "data": [...]}``."""
    arr = np.asarray(value, dtype=np.float64)
    return {
        "dtype": "float64",
        "shape": [int(s) for s in arr.shape],
        "data": [encode_number(v) for v in arr.reshape(-1).tolist()],
    }


def _opt_number(value: float | None) -> float | dict[str, int] | None:
    return None if value is None else encode_number(value)


def encode_value(obj: Any) -> Any:
    """Any option/provenance value as JSON-safe data (numpy -> Python, ±inf -> ``{"inf"}``)."""
    if isinstance(obj, Mapping):
        return {str(k): encode_value(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [encode_value(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return encode_value(obj.tolist())
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return encode_number(float(obj))
    if isinstance(obj, Enum):
        return encode_value(obj.value)
    if obj is None or isinstance(obj, str):
        return obj
    return str(obj)


_PACKED_DTYPES = {"int64": "<i8", "int8": "i1", "float64": "<f8"}


def encode_packed(value: Any, dtype: str) -> dict[str, Any]:
    """A 1-d array packed as ``{"dtype", "shape", "encoding": "zlib+base64", "data"}``."""
    arr = np.ascontiguousarray(np.asarray(value).reshape(-1), dtype=_PACKED_DTYPES[dtype])
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise CertificateError("cannot serialize non-finite values in a proof tree")
    data = base64.b64encode(zlib.compress(arr.tobytes(), 6)).decode("ascii")
    return {"dtype": dtype, "shape": [int(arr.size)], "encoding": "zlib+base64", "data": data}


#: the dtype of each packed array of a proof tree
_TREE_DTYPES = {
    "parent": "int64",
    "side": "int8",
    "split": "int8",
    "index": "int64",
    "value": "float64",
    "closed_by": "int8",
    "param_start": "int64",
    "param_len": "int64",
    "params": "float64",
}


def encode_tree(tree: ProofTree) -> dict[str, Any]:
    """A proof tree's document: ``nodes``, one packed array per field, and the ``recipe``."""
    doc: dict[str, Any] = {"nodes": tree.n_nodes}
    for name, dtype in _TREE_DTYPES.items():
        doc[name] = encode_packed(getattr(tree, name), dtype)
    doc["recipe"] = encode_value(dict(tree.recipe))
    return doc


# --------------------------------------------------------------------------------------------
# Decoding helpers (every failure names the JSON path)
# --------------------------------------------------------------------------------------------


class _Reader:
    """Typed access to a decoded JSON document; errors name the source and the path."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, message: str) -> CertificateSchemaError:
        return CertificateSchemaError(f"{self.source}: {where}: {message}")

    def obj(self, value: Any, where: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(where, f"expected an object, got {type(value).__name__}")
        return value

    def get(self, d: dict[str, Any], key: str, where: str) -> Any:
        if key not in d:
            raise self.fail(where, f"missing key {key!r}")
        return d[key]

    def str_(self, d: dict[str, Any], key: str, where: str, default: str | None = None) -> str:
        if default is not None and key not in d:
            return default
        v = self.get(d, key, where)
        if not isinstance(v, str):
            raise self.fail(f"{where}.{key}", f"expected a string, got {type(v).__name__}")
        return v

    def int_(self, d: dict[str, Any], key: str, where: str) -> int:
        v = self.get(d, key, where)
        if isinstance(v, bool) or not isinstance(v, int):
            raise self.fail(f"{where}.{key}", f"expected an integer, got {v!r}")
        return v

    def bool_(self, d: dict[str, Any], key: str, where: str) -> bool:
        v = self.get(d, key, where)
        if not isinstance(v, bool):
            raise self.fail(f"{where}.{key}", f"expected true/false, got {v!r}")
        return v

    def number(self, value: Any, where: str) -> float:
        if isinstance(value, bool):
            raise self.fail(where, f"expected a number, got {value!r}")
        if isinstance(value, (int, float)):
            v = float(value)
            if not math.isfinite(v):
                raise self.fail(where, "non-finite number token (use {'inf': ±1})")
            return v
        if isinstance(value, dict) and set(value) == {"inf"} and value["inf"] in (1, -1):
            return math.inf if value["inf"] == 1 else -math.inf
        raise self.fail(where, f"expected a number or {{'inf': ±1}}, got {value!r}")

    def opt_number(self, value: Any, where: str) -> float | None:
        return None if value is None else self.number(value, where)

    def array(self, value: Any, where: str, ndim: int | None = None) -> np.ndarray:
        d = self.obj(value, where)
        if d.get("dtype") != "float64":
            raise self.fail(where, f"dtype must be 'float64', got {d.get('dtype')!r}")
        shape = d.get("shape")
        if not (
            isinstance(shape, list)
            and all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape)
        ):
            raise self.fail(where, f"shape must be a list of non-negative ints, got {shape!r}")
        if ndim is not None and len(shape) != ndim:
            raise self.fail(where, f"expected a {ndim}-d array, got shape {shape}")
        data = d.get("data")
        if not isinstance(data, list):
            raise self.fail(where, "data must be a list")
        size = int(np.prod(shape)) if shape else 1
        if len(data) != size:
            raise self.fail(where, f"shape {shape} needs {size} values, got {len(data)}")
        vals = [self.number(v, f"{where}.data[{k}]") for k, v in enumerate(data)]
        return np.array(vals, dtype=np.float64).reshape(shape)

    def packed(self, value: Any, where: str, dtype: str) -> np.ndarray:
        d = self.obj(value, where)
        if d.get("dtype") != dtype:
            raise self.fail(where, f"dtype must be {dtype!r}, got {d.get('dtype')!r}")
        if d.get("encoding") != "zlib+base64":
            raise self.fail(where, f"encoding must be 'zlib+base64', got {d.get('encoding')!r}")
        shape = d.get("shape")
        if not (
            isinstance(shape, list)
            and len(shape) == 1
            and isinstance(shape[0], int)
            and not isinstance(shape[0], bool)
            and shape[0] >= 0
        ):
            raise self.fail(where, f"shape must be [n] with n >= 0, got {shape!r}")
        data = d.get("data")
        if not isinstance(data, str):
            raise self.fail(where, "data must be a base64 string")
        np_dtype = np.dtype(_PACKED_DTYPES[dtype])
        need = shape[0] * np_dtype.itemsize
        cap = max_decompressed_bytes()
        if need > cap:
            raise self.fail(where, f"{need} bytes exceed the decompression cap of {cap}")
        try:
            raw = base64.b64decode(data.encode("ascii"), validate=True)
            dec = zlib.decompressobj()
            out = dec.decompress(raw, need + 1)
        except (binascii.Error, ValueError, zlib.error) as err:
            raise self.fail(where, f"cannot decode packed data ({err})") from None
        if len(out) != need or not dec.eof:
            raise self.fail(where, f"packed data does not hold {shape[0]} {dtype} value(s)")
        return np.frombuffer(out, dtype=np_dtype).copy()

    def tree(self, value: Any, where: str) -> ProofTree:
        d = self.obj(value, where)
        n = self.int_(d, "nodes", where)
        arrays = {
            name: self.packed(self.get(d, name, where), f"{where}.{name}", dtype)
            for name, dtype in _TREE_DTYPES.items()
        }
        for name, arr in arrays.items():
            if name != "params" and arr.size != n:
                raise self.fail(f"{where}.{name}", f"expected {n} entries, got {arr.size}")
        if not np.all(np.isfinite(arrays["value"])) or not np.all(np.isfinite(arrays["params"])):
            raise self.fail(where, "non-finite split points or parameters")
        recipe = decode_value(self.obj(d.get("recipe", {}), f"{where}.recipe"))
        return ProofTree(recipe=recipe, **arrays)

    def vector(self, value: Any, where: str) -> tuple[float, ...]:
        return tuple(float(v) for v in self.array(value, where, ndim=1))

    def list_(self, d: dict[str, Any], key: str, where: str) -> list[Any]:
        v = self.get(d, key, where)
        if not isinstance(v, list):
            raise self.fail(f"{where}.{key}", f"expected a list, got {type(v).__name__}")
        return v


def decode_value(obj: Any) -> Any:
    """Inverse of :func:`encode_value` (``{"inf": ±1}`` -> ``±inf``)."""
    if isinstance(obj, dict):
        if set(obj) == {"inf"} and obj["inf"] in (1, -1) and not isinstance(obj["inf"], bool):
            return math.inf if obj["inf"] == 1 else -math.inf
        return {k: decode_value(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [decode_value(v) for v in obj]
    return obj


# --------------------------------------------------------------------------------------------
# Certificate <-> document
# --------------------------------------------------------------------------------------------


def _bound_doc(ev: BoundEvidence) -> dict[str, Any]:
    return {
        "kind": "bound",
        "method": ev.method,
        "arithmetic": ev.arithmetic,
        "case_lower": encode_array(ev.case_lower),
        "row_lower": [encode_array(r) for r in ev.row_lower],
    }


def _evidence_doc(ev: Evidence) -> dict[str, Any]:
    if isinstance(ev, BoundEvidence):
        return _bound_doc(ev)
    if isinstance(ev, MilpEvidence):
        return {
            "kind": "milp",
            "solver": ev.solver,
            "exact": bool(ev.exact),
            "tolerance": encode_number(ev.tolerance),
            "cases": [
                {
                    "case_index": int(c.case_index),
                    "status": c.status,
                    "objective": _opt_number(c.objective),
                    "bound": _opt_number(c.bound),
                    "gap": _opt_number(c.gap),
                    "tree": None if c.tree is None else encode_tree(c.tree),
                }
                for c in ev.cases
            ],
            "presolve": None if ev.presolve is None else _bound_doc(ev.presolve),
        }
    if isinstance(ev, BabEvidence):
        return {
            "kind": "bab",
            "method": ev.method,
            "nodes": int(ev.nodes),
            "cases": [
                {
                    "case_index": int(c.case_index),
                    "status": c.status,
                    "lower_bound": _opt_number(c.lower_bound),
                    "nodes": int(c.nodes),
                    "tree": None if c.tree is None else encode_tree(c.tree),
                }
                for c in ev.cases
            ],
            "presolve": None if ev.presolve is None else _bound_doc(ev.presolve),
        }
    if isinstance(ev, CounterexampleEvidence):
        return {
            "kind": "counterexample",
            "x": encode_array(ev.x),
            "y": encode_array(ev.y),
            "case_index": int(ev.case_index),
            "violation": encode_number(ev.violation),
            "onnx_checked": bool(ev.onnx_checked),
        }
    if isinstance(ev, TransferEvidence):
        return {
            "kind": "transfer",
            "source_fingerprint": ev.source_fingerprint,
            "source_verdict": ev.source_verdict.value,
            "source_kind": ev.source_kind,
            "source_case_lower": [_opt_number(v) for v in ev.source_case_lower],
            "source_row_lower": None
            if ev.source_row_lower is None
            else [encode_array(r) for r in ev.source_row_lower],
            "delta_lower": [encode_array(r) for r in ev.delta_lower],
            "delta_upper": [encode_array(r) for r in ev.delta_upper],
            "delta_method": ev.delta_method,
            "theorem": ev.theorem,
            "case_lower": encode_array(ev.case_lower),
            "source_certificate_sha256": ev.source_certificate_sha256,
        }
    if isinstance(ev, NoEvidence):
        return {
            "kind": "none",
            "reason": ev.reason,
            "case_lower": [_opt_number(v) for v in ev.case_lower],
            "case_upper": [_opt_number(v) for v in ev.case_upper],
        }
    raise CertificateError(f"evidence of type {type(ev).__name__} cannot be serialized")


def to_document(cert: Certificate) -> dict[str, Any]:
    """The JSON-ready document of a certificate (see the module docstring)."""
    if not isinstance(cert, Certificate):
        raise CertificateError(f"expected a Certificate, got {type(cert).__name__}")
    prop = cert.property
    prov = cert.provenance
    return {
        "format": FORMAT,
        "schema_version": [int(cert.schema_version[0]), int(cert.schema_version[1])],
        "network": {
            "fingerprint": cert.network.fingerprint,
            "n_inputs": int(cert.network.n_inputs),
            "n_outputs": int(cert.network.n_outputs),
            "name": cert.network.name,
        },
        "property": {
            "name": prop.name,
            "label": None if prop.label is None else int(prop.label),
            "fingerprint": property_fingerprint(prop),
            "cases": [
                {
                    "lower": encode_array(c.input_box.lower),
                    "upper": encode_array(c.input_box.upper),
                    "A": encode_array(c.A),
                    "b": encode_array(c.b),
                }
                for c in prop.cases
            ],
        },
        "verdict": cert.verdict.value,
        "evidence": _evidence_doc(cert.evidence),
        "provenance": {
            "tool_version": prov.tool_version,
            "python": prov.python,
            "numpy": prov.numpy,
            "solvers": {str(k): str(v) for k, v in prov.solvers.items()},
            "method": prov.method,
            "options": encode_value(prov.options),
            "seed": None if prov.seed is None else int(prov.seed),
            "time": encode_number(prov.time),
            "created": prov.created,
        },
    }


def to_json(cert: Certificate, *, indent: int | None = 1) -> str:
    """Serialize a certificate to JSON text (never contains ``NaN``/``Infinity``).

    Raises:
        CertificateError: a value is NaN or the object is not a certificate.
    """
    try:
        return json.dumps(to_document(cert), allow_nan=False, indent=indent, sort_keys=False)
    except ValueError as err:
        if isinstance(err, CertificateError):
            raise
        raise CertificateError(f"certificate is not JSON-serializable: {err}") from err


def certificate_sha256(cert: Certificate) -> str:
    """SHA-256 of the certificate's canonical JSON (sorted keys, no whitespace)."""
    text = json.dumps(to_document(cert), allow_nan=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _read_bound(r: _Reader, value: Any, where: str) -> BoundEvidence:
    d = r.obj(value, where)
    return BoundEvidence(
        method=r.str_(d, "method", where),
        case_lower=r.vector(r.get(d, "case_lower", where), f"{where}.case_lower"),
        row_lower=tuple(
            r.vector(v, f"{where}.row_lower[{k}]")
            for k, v in enumerate(r.list_(d, "row_lower", where))
        ),
        arithmetic=r.str_(d, "arithmetic", where),
    )


def _read_milp(r: _Reader, d: dict[str, Any], where: str) -> MilpEvidence:
    cases = []
    for k, v in enumerate(r.list_(d, "cases", where)):
        w = f"{where}.cases[{k}]"
        c = r.obj(v, w)
        cases.append(
            MilpCase(
                case_index=r.int_(c, "case_index", w),
                status=r.str_(c, "status", w),
                objective=r.opt_number(r.get(c, "objective", w), f"{w}.objective"),
                bound=r.opt_number(r.get(c, "bound", w), f"{w}.bound"),
                gap=r.opt_number(c.get("gap"), f"{w}.gap"),
                tree=None if c.get("tree") is None else r.tree(c["tree"], f"{w}.tree"),
            )
        )
    pre = d.get("presolve")
    return MilpEvidence(
        solver=r.str_(d, "solver", where),
        exact=r.bool_(d, "exact", where),
        cases=tuple(cases),
        tolerance=r.number(r.get(d, "tolerance", where), f"{where}.tolerance"),
        presolve=None if pre is None else _read_bound(r, pre, f"{where}.presolve"),
    )


def _read_bab(r: _Reader, d: dict[str, Any], where: str) -> BabEvidence:
    cases = []
    for k, v in enumerate(r.list_(d, "cases", where)):
        w = f"{where}.cases[{k}]"
        c = r.obj(v, w)
        cases.append(
            BabCase(
                case_index=r.int_(c, "case_index", w),
                status=r.str_(c, "status", w),
                lower_bound=r.opt_number(r.get(c, "lower_bound", w), f"{w}.lower_bound"),
                nodes=r.int_(c, "nodes", w),
                tree=None if c.get("tree") is None else r.tree(c["tree"], f"{w}.tree"),
            )
        )
    pre = d.get("presolve")
    return BabEvidence(
        method=r.str_(d, "method", where),
        nodes=r.int_(d, "nodes", where),
        cases=tuple(cases),
        presolve=None if pre is None else _read_bound(r, pre, f"{where}.presolve"),
    )


def _read_cex(r: _Reader, d: dict[str, Any], where: str) -> CounterexampleEvidence:
    return CounterexampleEvidence(
        x=r.array(r.get(d, "x", where), f"{where}.x", ndim=1),
        y=r.array(r.get(d, "y", where), f"{where}.y", ndim=1),
        case_index=r.int_(d, "case_index", where),
        violation=r.number(r.get(d, "violation", where), f"{where}.violation"),
        onnx_checked=r.bool_(d, "onnx_checked", where),
    )


def _verdict(r: _Reader, value: Any, where: str) -> Verdict:
    try:
        return Verdict(value)
    except ValueError:
        raise r.fail(
            where, f"{value!r} is not one of {', '.join(v.value for v in Verdict)}"
        ) from None


def _read_transfer(r: _Reader, d: dict[str, Any], where: str) -> TransferEvidence:
    srl = d.get("source_row_lower")
    return TransferEvidence(
        source_fingerprint=r.str_(d, "source_fingerprint", where),
        source_verdict=_verdict(r, r.get(d, "source_verdict", where), f"{where}.source_verdict"),
        source_kind=r.str_(d, "source_kind", where),
        source_case_lower=tuple(
            r.opt_number(v, f"{where}.source_case_lower[{k}]")
            for k, v in enumerate(r.list_(d, "source_case_lower", where))
        ),
        source_row_lower=None
        if srl is None
        else tuple(
            r.vector(v, f"{where}.source_row_lower[{k}]")
            for k, v in enumerate(r.list_(d, "source_row_lower", where))
        ),
        delta_lower=tuple(
            r.vector(v, f"{where}.delta_lower[{k}]")
            for k, v in enumerate(r.list_(d, "delta_lower", where))
        ),
        delta_upper=tuple(
            r.vector(v, f"{where}.delta_upper[{k}]")
            for k, v in enumerate(r.list_(d, "delta_upper", where))
        ),
        delta_method=r.str_(d, "delta_method", where),
        theorem=r.str_(d, "theorem", where),
        case_lower=r.vector(r.get(d, "case_lower", where), f"{where}.case_lower"),
        source_certificate_sha256=r.str_(d, "source_certificate_sha256", where, default=""),
    )


def _read_none(r: _Reader, d: dict[str, Any], where: str) -> NoEvidence:
    return NoEvidence(
        reason=r.str_(d, "reason", where),
        case_lower=tuple(
            r.opt_number(v, f"{where}.case_lower[{k}]")
            for k, v in enumerate(r.list_(d, "case_lower", where))
        ),
        case_upper=tuple(
            r.opt_number(v, f"{where}.case_upper[{k}]")
            for k, v in enumerate(r.list_(d, "case_upper", where))
        ),
    )


_EVIDENCE_READERS: dict[str, Callable[[_Reader, dict[str, Any], str], Evidence]] = {
    "bound": lambda r, d, w: _read_bound(r, d, w),
    "milp": _read_milp,
    "bab": _read_bab,
    "counterexample": _read_cex,
    "transfer": _read_transfer,
    "none": _read_none,
}


def _read_version(r: _Reader, doc: dict[str, Any]) -> tuple[int, int]:
    v = r.get(doc, "schema_version", "$")
    if not (
        isinstance(v, list)
        and len(v) == 2
        and all(isinstance(p, int) and not isinstance(p, bool) and p >= 0 for p in v)
    ):
        raise r.fail("$.schema_version", f"expected [major, minor] integers, got {v!r}")
    version = (int(v[0]), int(v[1]))
    if version[0] > SCHEMA_VERSION[0]:
        raise r.fail(
            "$.schema_version",
            f"version {version[0]}.{version[1]} is newer than the supported "
            f"{SCHEMA_VERSION[0]}.x; upgrade nncert",
        )
    if version[0] < SCHEMA_VERSION[0]:
        raise r.fail(
            "$.schema_version",
            f"version {version[0]}.{version[1]} predates proof certificates (schema "
            f"{SCHEMA_VERSION[0]}.x) and is no longer accepted; re-create the certificate "
            "with this nncert (nncert verify MODEL SPEC --certificate OUT)",
        )
    return version


def from_document(doc: Any, *, source: str = "<certificate>") -> Certificate:
    """Build a :class:`Certificate` from a decoded JSON document.

    Raises:
        CertificateSchemaError: the document does not follow the schema (the message names
            ``source`` and the JSON path), or has a newer major schema version.
    """
    r = _Reader(source)
    d = r.obj(doc, "$")
    fmt = d.get("format")
    if fmt != FORMAT:
        raise r.fail("$.format", f"expected {FORMAT!r}, got {fmt!r}")
    version = _read_version(r, d)
    net = r.obj(r.get(d, "network", "$"), "$.network")
    ref = NetworkRef(
        fingerprint=r.str_(net, "fingerprint", "$.network"),
        n_inputs=r.int_(net, "n_inputs", "$.network"),
        n_outputs=r.int_(net, "n_outputs", "$.network"),
        name=r.str_(net, "name", "$.network", default=""),
    )
    p = r.obj(r.get(d, "property", "$"), "$.property")
    cases = []
    for k, cv in enumerate(r.list_(p, "cases", "$.property")):
        w = f"$.property.cases[{k}]"
        c = r.obj(cv, w)
        try:
            cases.append(
                UnsafeCase(
                    Box(
                        r.array(r.get(c, "lower", w), f"{w}.lower", ndim=1),
                        r.array(r.get(c, "upper", w), f"{w}.upper", ndim=1),
                    ),
                    r.array(r.get(c, "A", w), f"{w}.A", ndim=2),
                    r.array(r.get(c, "b", w), f"{w}.b", ndim=1),
                )
            )
        except InvalidPropertyError as err:
            raise r.fail(w, str(err)) from err
    label = p.get("label")
    if label is not None and (isinstance(label, bool) or not isinstance(label, int)):
        raise r.fail("$.property.label", f"expected an integer or null, got {label!r}")
    try:
        prop = Property(tuple(cases), name=r.str_(p, "name", "$.property", default=""), label=label)
    except InvalidPropertyError as err:
        raise r.fail("$.property", str(err)) from err
    stored_fp = p.get("fingerprint")
    if stored_fp is not None and stored_fp != property_fingerprint(prop):
        raise r.fail("$.property.fingerprint", "does not match the stored cases (edited file?)")
    verdict = _verdict(r, r.get(d, "verdict", "$"), "$.verdict")
    ev = r.obj(r.get(d, "evidence", "$"), "$.evidence")
    kind = ev.get("kind")
    reader = _EVIDENCE_READERS.get(kind) if isinstance(kind, str) else None
    if reader is None:
        raise r.fail("$.evidence.kind", f"{kind!r} is not one of {', '.join(_EVIDENCE_READERS)}")
    evidence = reader(r, ev, "$.evidence")
    pv = r.obj(r.get(d, "provenance", "$"), "$.provenance")
    solvers = pv.get("solvers", {})
    if not isinstance(solvers, dict) or not all(isinstance(v, str) for v in solvers.values()):
        raise r.fail("$.provenance.solvers", "expected an object of strings")
    options = decode_value(pv.get("options", {}))
    if not isinstance(options, dict):
        raise r.fail("$.provenance.options", "expected an object")
    seed = pv.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise r.fail("$.provenance.seed", f"expected an integer or null, got {seed!r}")
    prov = Provenance(
        tool_version=r.str_(pv, "tool_version", "$.provenance"),
        python=r.str_(pv, "python", "$.provenance"),
        numpy=r.str_(pv, "numpy", "$.provenance"),
        solvers=dict(solvers),
        method=r.str_(pv, "method", "$.provenance", default=""),
        options=options,
        seed=seed,
        time=r.number(pv.get("time", 0.0), "$.provenance.time"),
        created=r.str_(pv, "created", "$.provenance", default=""),
    )
    return Certificate(version, ref, prop, verdict, evidence, prov)


def _reject_constant(token: str) -> Any:
    raise ValueError(f"non-standard JSON token {token}")


def from_json(text: str | bytes, *, source: str = "<string>") -> Certificate:
    """Parse a certificate from JSON text.

    Args:
        text: the JSON text.
        source: a name for error messages (a file name).

    Raises:
        CertificateSchemaError: not valid JSON (including ``NaN``/``Infinity`` tokens), or not
            a certificate of a supported schema version.
    """
    try:
        doc = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError) as err:
        msg = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise CertificateSchemaError(f"{source}: not valid JSON ({msg})") from err
    except RecursionError as err:
        raise CertificateSchemaError(f"{source}: JSON nested too deeply") from err
    return from_document(doc, source=source)


def save_certificate(cert: Certificate, path: str | os.PathLike[str]) -> None:
    """Write ``cert`` as JSON to ``path`` (atomically: a temporary file is renamed).

    Raises:
        CertificateError: the certificate cannot be serialized.
        OSError: the file cannot be written.
    """
    text = to_json(cert) + "\n"
    if os.fspath(path).endswith(".gz"):
        write_atomic(path, gzip.compress(text.encode("utf-8"), mtime=0))
    else:
        write_atomic(path, text)


def load_certificate(path: str | os.PathLike[str]) -> Certificate:
    """Read a certificate file.

    Raises:
        CertificateError: the file cannot be read (message names the file).
        CertificateSchemaError: it is not a valid certificate (message names the file).
    """
    p = Path(path)
    try:
        data, _ = read_input(p, error=CertificateError)
    except CertificateError as err:
        msg = str(err).splitlines()[0]
        raise CertificateError(msg.replace("cannot read file", "cannot read certificate")) from err
    return from_json(data, source=str(p))


def load_schema() -> dict[str, Any]:
    """The shipped JSON Schema (``schema.json``) as a dict."""
    from importlib.resources import files

    text = files("nncert.certificates").joinpath("schema.json").read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


__all__ = [
    "FORMAT",
    "certificate_sha256",
    "decode_value",
    "encode_array",
    "encode_number",
    "encode_packed",
    "encode_tree",
    "encode_value",
    "from_document",
    "from_json",
    "load_certificate",
    "load_schema",
    "save_certificate",
    "to_document",
    "to_json",
]
