"""Serialization: schema validity, round trips, ±inf encoding, versions, golden files."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pytest
from cert_helpers import (
    GOLDEN_DIR,
    OLD_GOLDEN_DIR,
    bab_cert,
    golden_network,
    golden_pruned,
    milp_cert,
    random_network,
    robust_prop,
    verified_cert,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from nncert.certificates import (
    Certificate,
    CertificateError,
    CertificateSchemaError,
    NoEvidence,
    check,
    from_json,
    load_certificate,
    save_certificate,
    to_json,
    transfer,
)
from nncert.certificates.serialize import load_schema
from nncert.verify.result import Verdict

SCHEMA = load_schema()
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


def _all_kinds() -> dict[str, Certificate]:
    net = golden_network()
    prop = robust_prop(net, [0.3, 0.6], 0.02)
    crown = verified_cert(net, prop, "crown")
    fals = verified_cert(net, robust_prop(net, [0.3, 0.6], 1.5), "crown")
    tr = transfer(crown, net, golden_pruned(), verify_fallback=False)
    n = len(prop.cases)
    none = replace(
        crown,
        verdict=Verdict.UNKNOWN,
        evidence=NoEvidence("timeout", (-math.inf,) * n, (math.inf,) * n),
    )
    return {
        "bound": crown,
        "ibp": verified_cert(net, prop, "ibp"),
        "milp": milp_cert(net, prop),
        "bab": bab_cert(net, prop),
        "counterexample": fals,
        "transfer": tr.certificate,
        "none": none,
    }


KINDS = _all_kinds()


def test_schema_is_valid_draft_2020_12() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_produced_certificates_follow_the_schema(kind: str) -> None:
    doc = json.loads(to_json(KINDS[kind]))
    VALIDATOR.validate(doc)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_round_trip_is_exact(kind: str, tmp_path: Path) -> None:
    cert = KINDS[kind]
    assert from_json(to_json(cert)) == cert
    path = tmp_path / f"{kind}.json"
    save_certificate(cert, path)
    assert load_certificate(path) == cert


def test_infinities_are_encoded_explicitly() -> None:
    text = to_json(KINDS["none"])
    assert "Infinity" not in text and "NaN" not in text
    doc = json.loads(text)
    assert doc["evidence"]["case_lower"][0] == {"inf": -1}
    assert doc["evidence"]["case_upper"][0] == {"inf": 1}
    assert doc["provenance"]["options"] == {"method": "crown"}
    back = from_json(text)
    assert back.evidence.case_lower[0] == -math.inf


def test_inf_inside_options_round_trips() -> None:
    cert = KINDS["bound"]
    prov = replace(cert.provenance, options={"time_limit": math.inf, "nested": [1.5, -math.inf]})
    c2 = replace(cert, provenance=prov)
    assert from_json(to_json(c2)).provenance.options == prov.options


def test_nan_cannot_be_serialized() -> None:
    cert = KINDS["bound"]
    bad = replace(cert, provenance=replace(cert.provenance, time=math.nan))
    with pytest.raises(CertificateError, match="NaN"):
        to_json(bad)


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_non_standard_tokens_are_rejected(token: str) -> None:
    doc = json.loads(to_json(KINDS["bound"]))
    doc["provenance"]["time"] = 12345.5
    text = json.dumps(doc).replace("12345.5", token)
    assert token in text
    with pytest.raises(CertificateSchemaError, match=r"cert\.json: not valid JSON"):
        from_json(text, source="cert.json")


def test_newer_major_version_is_rejected() -> None:
    doc = json.loads(to_json(KINDS["bound"]))
    doc["schema_version"] = [3, 0]
    with pytest.raises(CertificateSchemaError, match=r"3\.0 is newer"):
        from_json(json.dumps(doc), source="future.json")


def test_versions_compare_as_int_tuples() -> None:
    doc = json.loads(to_json(KINDS["bound"]))
    doc["schema_version"] = [2, 10]  # a newer minor: readable ("2.10" > "2.9" as ints)
    doc["some_future_field"] = {"x": 1}
    assert from_json(json.dumps(doc)).schema_version == (2, 10)
    doc["schema_version"] = [10, 0]  # "10.0" < "2.0" as strings, but newer as ints
    with pytest.raises(CertificateSchemaError, match="newer"):
        from_json(json.dumps(doc))


@pytest.mark.parametrize("path", sorted(OLD_GOLDEN_DIR.glob("*.json")), ids=lambda p: p.stem)
def test_certificates_before_proof_trees_are_refused_with_a_clear_message(path: Path) -> None:
    with pytest.raises(CertificateSchemaError) as info:
        load_certificate(path)
    msg = str(info.value)
    assert "\n" not in msg and path.name in msg
    assert "1.0 predates proof certificates" in msg and "re-create" in msg


def test_gzip_certificates_round_trip(tmp_path: Path) -> None:
    cert = KINDS["bab"]
    gz = tmp_path / "cert.json.gz"
    save_certificate(cert, gz)
    assert gz.read_bytes()[:2] == b"\x1f\x8b"
    assert load_certificate(gz) == cert


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda t: t.update(data="!!!"), "cannot decode packed data"),
        (lambda t: t.update(shape=[5]), "does not hold 5"),
        (lambda t: t.update(dtype="float64"), "dtype must be 'int64'"),
        (lambda t: t.update(shape=[10**12]), "exceed the decompression cap"),
        (lambda t: t.update(encoding="raw"), "encoding must be"),
    ],
)
def test_corrupt_proof_trees_are_schema_errors(edit: Any, match: str) -> None:
    doc = json.loads(to_json(KINDS["bab"]))
    edit(doc["evidence"]["cases"][0]["tree"]["parent"])
    with pytest.raises(CertificateSchemaError, match=match) as info:
        from_json(json.dumps(doc), source="forged.json")
    assert "forged.json: $.evidence.cases[0].tree.parent" in str(info.value)


def test_corrupt_and_missing_files_name_the_file(tmp_path: Path) -> None:
    p = tmp_path / "broken.json"
    p.write_text('{"format": "nncert-certificate", ')
    with pytest.raises(CertificateSchemaError, match=r"broken\.json: not valid JSON") as ei:
        load_certificate(p)
    assert "\n" not in str(ei.value)
    with pytest.raises(CertificateError, match=r"missing\.json"):
        load_certificate(tmp_path / "missing.json")
    p.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(CertificateSchemaError, match=r"broken\.json"):
        load_certificate(p)


@pytest.mark.parametrize(
    ("path", "value", "match"),
    [
        (("verdict",), "proven", "verdict"),
        (("evidence", "kind"), "magic", "evidence.kind"),
        (("network", "n_inputs"), "two", "n_inputs"),
        (("evidence", "case_lower", "dtype"), "float32", "dtype"),
        (("evidence", "case_lower", "shape"), [5], "needs 5 values"),
        (("format",), "something-else", "format"),
    ],
)
def test_schema_errors_name_the_path(path: tuple[str, ...], value: object, match: str) -> None:
    doc = json.loads(to_json(KINDS["bound"]))
    d = doc
    for k in path[:-1]:
        d = d[k]
    d[path[-1]] = value
    with pytest.raises(CertificateSchemaError, match=match):
        from_json(json.dumps(doc), source="x.json")


def test_edited_property_is_detected_by_its_fingerprint() -> None:
    doc = json.loads(to_json(KINDS["bound"]))
    doc["property"]["cases"][0]["upper"]["data"][0] += 0.5
    with pytest.raises(CertificateSchemaError, match="fingerprint"):
        from_json(json.dumps(doc))


GOLDEN = sorted(GOLDEN_DIR.glob("*.json"))


def test_golden_files_exist_for_every_evidence_kind() -> None:
    kinds = {json.loads(p.read_text())["evidence"]["kind"] for p in GOLDEN}
    assert kinds == {"bound", "milp", "bab", "counterexample", "transfer", "none"}


@pytest.mark.parametrize("path", GOLDEN, ids=lambda p: p.stem)
def test_golden_files_keep_loading(path: Path) -> None:
    VALIDATOR.validate(json.loads(path.read_text()))
    cert = load_certificate(path)
    assert cert.schema_version == (2, 0)
    assert from_json(to_json(cert)) == cert
    src = golden_network()
    if cert.evidence.kind == "transfer":
        report = check(cert, golden_pruned(), source=src)
    else:
        report = check(cert, src)
    assert report.ok, report.reasons


# --------------------------------------------------------------------------------------------
# Hypothesis: round trips of certificates built on random networks
# --------------------------------------------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    eps=st.sampled_from([0.0, 1e-3, 0.05, 0.3, 2.0]),
    method=st.sampled_from(["ibp", "crown"]),
)
def test_round_trip_random_certificates(seed: int, eps: float, method: str) -> None:
    rng = np.random.default_rng(seed)
    net = random_network(rng, [3, 6, 4])
    prop = robust_prop(net, rng.uniform(-1, 1, 3), eps)
    cert = verified_cert(net, prop, method)
    text = to_json(cert)
    assert "Infinity" not in text and "NaN" not in text
    VALIDATOR.validate(json.loads(text))
    back = from_json(text)
    assert back == cert
    assert to_json(back) == text
