"""``nncert certify``: manifests, the certificate cache, reports and regressions."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from nncert.verify import cli
from nncert.verify.cache import CertificateCache, cache_key, config_hash
from nncert.verify.ci import ManifestError, load_manifest, parse_manifest, register, run_manifest
from nncert.verify.network import Dense, Network, ReLU
from nncert.verify.options import VerifyOptions
from nncert.verify.reports import EXIT_REGRESSION, render_summary

MANIFESTS = Path(__file__).resolve().parents[1] / "data" / "manifests"

pytest.importorskip("onnx")


def _net() -> Network:
    rng = np.random.default_rng(0)
    return Network(
        (
            Dense(rng.normal(size=(8, 4)) * 0.7, rng.normal(size=8) * 0.1),
            ReLU(),
            Dense(rng.normal(size=(3, 8)) * 0.5, np.array([1.0, 0.0, -0.5])),
        ),
        input_shape=(4,),
        name="toy",
    )


VNNLIB = """\
(declare-const X_0 Real)
(declare-const X_1 Real)
(declare-const X_2 Real)
(declare-const X_3 Real)
(declare-const Y_0 Real)
(declare-const Y_1 Real)
(declare-const Y_2 Real)
(assert (>= X_0 0.49))
(assert (<= X_0 0.51))
(assert (>= X_1 0.49))
(assert (<= X_1 0.51))
(assert (>= X_2 0.49))
(assert (<= X_2 0.51))
(assert (>= X_3 0.49))
(assert (<= X_3 0.51))
(assert (>= Y_1 Y_0))
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A model, a VNN-LIB file, an .npy centre and a manifest with verified and falsified
    properties."""
    from nncert.compression import to_onnx

    monkeypatch.setattr(cli, "EXTENSIONS", [register])
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    net = _net()
    to_onnx(net, tmp_path / "toy.onnx")
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "near_centre.vnnlib").write_text(VNNLIB)
    x0 = np.full(4, 0.5)
    assert int(np.argmax(net.forward(x0))) == 0
    np.save(tmp_path / "x0.npy", x0)
    (tmp_path / "nncert.toml").write_text(
        """
[options]
method = "auto"

[budget]
per_property = 5.0
total = 60.0

[[models]]
name = "toy"
path = "toy.onnx"
properties = [
  { vnnlib = "specs/near_centre.vnnlib" },
  { input = "x0.npy", label = 0, eps = [0.001, 0.01] },
  { name = "wrong_label", x = [0.5, 0.5, 0.5, 0.5], label = 2, eps = 0.1 },
]
"""
    )
    return tmp_path


def _run(project: Path, *extra: str) -> int:
    return cli.main(
        [
            "certify",
            str(project / "nncert.toml"),
            "--out",
            str(project / "out"),
            "--cache",
            str(project / "cache"),
            *extra,
        ]
    )


# --------------------------------------------------------------------------------------------
# manifest validation
# --------------------------------------------------------------------------------------------

BASE = {"models": [{"path": "example:iris_relu", "properties": [{"examples": "all"}]}]}


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({**BASE, "budgets": {}}, "unknown key 'budgets'; did you mean 'budget'?"),
        ({**BASE, "options": {"methd": "crown"}}, "did you mean 'method'?"),
        ({**BASE, "options": {"method": "exact"}}, "method='exact'"),
        ({**BASE, "options": {"time_limit": 3}}, "use [budget] per_property"),
        ({**BASE, "budget": {"per_propery": 3}}, "did you mean 'per_property'?"),
        ({**BASE, "budget": {"total": -1}}, "budget.total"),
        ({**BASE, "version": 2}, "version"),
        ({"models": []}, "at least one [[models]]"),
        ({"models": [{"path": "a.onnx"}]}, "non-empty properties"),
        ({"models": [{"pth": "a.onnx", "properties": []}]}, "did you mean 'path'?"),
        ({"models": [{"path": "a.onnx", "properties": [{"vnnlb": "p"}]}]}, "'vnnlib'?"),
        (
            {"models": [{"path": "a.onnx", "properties": [{"vnnlib": "p", "x": [1.0]}]}]},
            "exactly one",
        ),
        (
            {"models": [{"path": "a.onnx", "properties": [{"x": [1.0], "label": 0}]}]},
            "need 'eps'",
        ),
        (
            {"models": [{"path": "a.onnx", "properties": [{"x": [1.0], "label": 0, "eps": -1}]}]},
            "must be >= 0",
        ),
        (
            {"models": [{"path": "a.onnx", "properties": [{"vnnlib": "p", "eps": 0.1}]}]},
            "only applies to robustness",
        ),
        (
            {"models": [{"path": "a.onnx", "properties": [{"examples": "all"}]}]},
            "example:NAME",
        ),
        (
            {"models": [{"path": "example:a", "properties": [{"examples": "some"}]}] * 1},
            'expected "all"',
        ),
        (
            {"models": [BASE["models"][0], BASE["models"][0]]},
            "duplicate model name 'iris_relu'",
        ),
    ],
)
def test_manifest_errors(doc: dict, message: str) -> None:
    with pytest.raises(ManifestError) as exc:
        parse_manifest(doc, "m.toml")
    assert message in str(exc.value)
    assert "\n" not in str(exc.value)


def test_manifest_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ManifestError, match="did you mean 'method'"):
        load_manifest(MANIFESTS / "typo.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[options\nmethod = 1")
    with pytest.raises(ManifestError, match="not valid TOML"):
        load_manifest(bad)
    with pytest.raises(ManifestError, match="cannot read"):
        load_manifest(tmp_path / "missing.toml")
    m = load_manifest(MANIFESTS / "examples.toml")
    assert m.per_property == 2.0 and m.total == 60.0
    assert [x.name for x in m.models] == ["iris", "moons"]
    assert m.options == VerifyOptions(method="auto", seed=0)


def test_input_errors_exit_3(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = project / "nncert.toml"
    text = manifest.read_text()
    manifest.write_text(text.replace("label = 2, eps = 0.1", "label = 7, eps = 0.1"))
    assert _run(project) == 3
    assert "label=7" in capsys.readouterr().err
    manifest.write_text(text.replace("toy.onnx", "nope.onnx"))
    assert _run(project) == 3
    manifest.write_text(text.replace("0.5, 0.5, 0.5, 0.5]", "0.5, 0.5]"))
    assert _run(project) == 3
    manifest.write_text(text.replace("{ vnnlib", '{ name = "x0_label0_eps0.001", vnnlib'))
    assert _run(project) == 3
    assert "duplicate property id" in capsys.readouterr().err
    assert not (project / "out" / "report.json").exists()


# --------------------------------------------------------------------------------------------
# runs, cache, reports
# --------------------------------------------------------------------------------------------


def test_run_then_cached(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(project) == 1  # "wrong_label" is falsified
    first = capsys.readouterr().out
    assert "0/4 served from cache" in first
    out = project / "out"
    report = json.loads((out / "report.json").read_text(), parse_constant=pytest.fail)
    assert report["format"] == "nncert-certify-report" and report["schema_version"] == [1, 1]
    verdicts = {p["id"]: p["verdict"] for p in report["properties"]}
    assert verdicts == {
        "toy/near_centre": "verified",
        "toy/x0_label0_eps0.001": "verified",
        "toy/x0_label0_eps0.01": "verified",
        "toy/wrong_label": "falsified",
    }
    assert report["summary"]["falsified"] == 1 and report["exit_code"] == 1
    wrong = next(p for p in report["properties"] if p["id"] == "toy/wrong_label")
    assert len(wrong["counterexample"]["input"]) == 4
    for p in report["properties"]:
        assert (out / p["certificate"]).is_file()
        assert not p["cached"]
    assert len(CertificateCache(project / "cache")) == 4

    # second run: everything from the cache, same verdicts
    assert _run(project) == 1
    second = capsys.readouterr().out
    assert "4/4 served from cache" in second
    again = json.loads((out / "report.json").read_text())
    assert {p["id"]: p["verdict"] for p in again["properties"]} == verdicts
    assert all(p["cached"] for p in again["properties"])
    assert again["summary"]["cached"] == 4 and again["summary"]["regressions"] == 0

    # JUnit: parses, one testcase per property, the falsified one fails
    root = ET.parse(out / "junit.xml").getroot()
    cases = root.findall(".//testcase")
    assert len(cases) == 4 and root.get("tests") == "4" and root.get("failures") == "1"
    failed = [c for c in cases if c.find("failure") is not None]
    assert [c.get("name") for c in failed] == ["wrong_label"]
    assert failed[0].find("failure").get("type") == "Counterexample"  # type: ignore[union-attr]
    assert all(float(c.get("time", "x")) >= 0 for c in cases)

    summary = (out / "summary.md").read_text()
    assert summary.startswith("## nncert certify: counterexample found (exit 1)")
    assert "| 4 | 3 | 1 | 0 | 0 | 4/4 | 0 |" in summary
    assert summary.index("wrong_label") < summary.index("near_centre")  # failures first


def test_junitparser_reads_the_report(project: Path) -> None:
    junitparser = pytest.importorskip("junitparser")
    _run(project, "--quiet")
    xml = junitparser.JUnitXml.fromfile(str(project / "out" / "junit.xml"))
    suites = list(xml)
    assert [s.name for s in suites] == ["nncert.toy"]
    cases = list(suites[0])
    assert len(cases) == 4
    results = {c.name: [type(r).__name__ for r in c.result] for c in cases}
    assert results["wrong_label"] == ["Failure"]
    assert results["near_centre"] == []
    props = {p.name: p.value for p in suites[0].properties()}
    assert len(props["model_sha256"]) == 64


def test_changed_model_is_reverified(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from nncert.compression import quantize_weights, to_onnx

    _run(project, "--quiet")
    capsys.readouterr()
    q, _ = quantize_weights(_net(), 8)
    to_onnx(q, project / "toy.onnx")
    _run(project, "--quiet")
    assert "0/4 served from cache" in capsys.readouterr().out


def test_corrupt_cache_entry_is_not_trusted(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _run(project, "--quiet")
    capsys.readouterr()
    cache = CertificateCache(project / "cache")
    certs = sorted(cache.certs.glob("*.json"))
    certs[0].write_text("{not json")
    doc = json.loads(certs[1].read_text())
    doc["verdict"] = "falsified" if doc["verdict"] == "verified" else "verified"
    certs[1].write_text(json.dumps(doc))
    assert _run(project, "--quiet") == 1
    assert "2/4 served from cache" in capsys.readouterr().out
    report = json.loads((project / "out" / "report.json").read_text())
    assert report["summary"]["verified"] == 3 and report["summary"]["falsified"] == 1


def test_regression_exit_code(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = project / "nncert.toml"
    # method "attack" cannot verify: robust properties become unknown
    manifest.write_text(manifest.read_text().replace('method = "auto"', 'method = "attack"'))
    text = manifest.read_text().replace(
        '  { name = "wrong_label", x = [0.5, 0.5, 0.5, 0.5], label = 2, eps = 0.1 },\n', ""
    )
    manifest.write_text(text)
    assert _run(project, "--allow-unknown") == 0
    report_path = project / "out" / "report.json"
    report = json.loads(report_path.read_text())
    assert report["summary"]["unknown"] == 3
    # pretend the previous run verified one of them
    report["properties"][0]["verdict"] = "verified"
    report_path.write_text(json.dumps(report))
    capsys.readouterr()
    assert _run(project, "--allow-unknown") == EXIT_REGRESSION
    captured = capsys.readouterr()
    assert "regression: toy/near_centre was verified, now unknown" in captured.err
    new = json.loads(report_path.read_text())
    entry = new["properties"][0]
    assert entry["regression"] and entry["previous_verdict"] == "verified"
    assert "**Regressions**" in (project / "out" / "summary.md").read_text()
    root = ET.parse(project / "out" / "junit.xml").getroot()
    assert root.find(".//testcase[@name='near_centre']/failure").get("type") == "Regression"  # type: ignore[union-attr]
    # without the previous report, the cache index remembers the last verdicts (unknown now)
    report_path.unlink()
    assert _run(project, "--allow-unknown") == 0
    assert _run(project) == 2


def test_allow_unknown_and_budget(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = project / "nncert.toml"
    manifest.write_text(manifest.read_text().replace('method = "auto"', 'method = "attack"'))
    assert _run(project, "--no-cache", "--allow-unknown", "--json") == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["summary"]["unknown"] == 3 and doc["summary"]["falsified"] == 1
    root = ET.parse(project / "out" / "junit.xml").getroot()
    assert root.get("skipped") == "3"
    assert not (project / "cache").exists()


def test_total_budget_marks_rest_unknown(project: Path) -> None:
    manifest = project / "nncert.toml"
    manifest.write_text(manifest.read_text().replace("total = 60.0", "total = 0.01"))
    report = run_manifest(manifest, out_dir=project / "out", cache_dir=None)
    reasons = [p.reason for p in report.properties]
    assert "budget" in reasons
    assert all(p.verdict == "unknown" for p in report.properties if p.reason == "budget")


def test_step_summary_and_jobs(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    step = project / "step.md"
    step.write_text("previous step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step))
    assert _run(project, "--jobs", "2", "--no-cache") == 1
    text = step.read_text()
    assert text.startswith("previous step\n## nncert certify")
    assert len(text.encode()) < 1024 * 1024
    report = json.loads((project / "out" / "report.json").read_text())
    assert report["summary"] == {
        "total": 4,
        "verified": 3,
        "falsified": 1,
        "unknown": 0,
        "error": 0,
        "cached": 0,
        "regressions": 0,
        "transferred": 0,
        "re_verified": 0,
    }


def test_summary_is_truncated_below_limit() -> None:
    from nncert.verify.reports import PropertyReport, Report

    props = tuple(
        PropertyReport(f"m/p{i}", "m", "m.onnx", f"p{i}" * 20, "vnnlib", "x", "verified")
        for i in range(3000)
    )
    text = render_summary(Report("m.toml", props), limit=20_000)
    assert len(text.encode()) <= 20_000
    assert "more properties not shown" in text


def test_cache_unit(tmp_path: Path) -> None:
    cache = CertificateCache(tmp_path / "c")
    cfg = config_hash(VerifyOptions())
    assert cfg == config_hash(VerifyOptions(time_limit=3.0, jobs=2))  # budgets don't matter
    assert cfg != config_hash(VerifyOptions(method="milp"))
    key = cache_key("a" * 64, "b" * 64, cfg)
    assert cache.get(key) is None
    with pytest.raises(ValueError, match="SHA-256"):
        cache.path("../../etc/passwd")
    cache.record_verdicts({"m/p": (key, "verified")})
    assert cache.previous_verdicts() == {"m/p": "verified"}
    assert not list((tmp_path / "c").glob("**/*.tmp"))


@pytest.mark.slow
def test_bundled_example_manifest(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from nncert.verify.examples import list_examples

    try:
        names = list_examples()
    except FileNotFoundError:
        pytest.skip("bundled example metadata missing")
    if not {"iris_relu", "moons_relu"} <= set(names):
        pytest.skip("bundled examples missing")
    out, cache = tmp_path / "out", tmp_path / "cache"
    report = run_manifest(MANIFESTS / "examples.toml", out_dir=out, cache_dir=cache)
    ids = [p.id for p in report.properties]
    assert ids == [
        "iris/example0",
        "iris/example1",
        "iris/centre_label1_eps0.001",
        "iris/centre_label1_eps0.5",
        "moons/example0",
    ]
    assert report.exit_code in (0, 1, 2)
    assert report.duration < 60
    decided = sum(p.verdict in ("verified", "falsified") for p in report.properties)
    again = run_manifest(MANIFESTS / "examples.toml", out_dir=out, cache_dir=cache)
    assert again.n_cached == decided
    assert [p.verdict for p in again.properties] == [p.verdict for p in report.properties]


def test_pytest_plugin_helpers(tmp_path: Path) -> None:
    from nncert.verify.pytest_plugin import assert_certified
    from nncert.verify.spec import robustness_property

    net = _net()
    x0 = np.full(4, 0.5)
    ok = assert_certified(net, robustness_property(x0, 0.001, 0, 3), timeout=5, cache_dir=tmp_path)
    assert ok.verdict == "verified" and not ok.cached
    again = assert_certified(net, robustness_property(x0, 0.001, 0, 3), cache_dir=tmp_path)
    assert again.cached
    with pytest.raises(pytest.fail.Exception, match="counterexample"):
        assert_certified(net, robustness_property(x0, 0.1, 2, 3), timeout=5)
    with pytest.raises(pytest.skip.Exception, match="unknown"):
        assert_certified(net, robustness_property(x0, 0.01, 0, 3), options={"method": "attack"})
    with pytest.raises(pytest.fail.Exception, match="unknown"):
        assert_certified(
            net, robustness_property(x0, 0.01, 0, 3), options={"method": "attack"}, strict=True
        )


def test_pytest_plugin_import_is_light() -> None:
    import subprocess
    import sys

    code = (
        "import sys, nncert.verify.pytest_plugin, nncert.verify.ci, nncert.compression;"
        "print(sorted(m for m in ('torch', 'onnx', 'onnxruntime') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_forged_and_attested_cache_entries_are_not_served(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A forged 'verified' entry for a falsifiable property (built through the package's own
    API, so every hash is right) is reported as rejected and the property re-verified; a
    solver-attested entry is served only with --accept-attested."""
    from dataclasses import replace

    from nncert.certificates import (
        BabCase,
        BabEvidence,
        MilpCase,
        MilpEvidence,
        load_certificate,
        save_certificate,
    )
    from nncert.verify.proof import CLOSED_BY_BOUND, ProofRecorder
    from nncert.verify.result import Verdict

    assert _run(project, "--quiet") == 1
    capsys.readouterr()
    cache = CertificateCache(project / "cache")
    paths = {load_certificate(p).verdict: p for p in sorted(cache.certs.glob("*.json"))}
    rec = ProofRecorder({"intermediate": "crown"})
    rec.close(rec.root(), CLOSED_BY_BOUND)
    fals_path = paths[Verdict.FALSIFIED]
    fals = load_certificate(fals_path)
    n = len(fals.property.cases)
    forged_ev = BabEvidence(
        "input-split+crown", n, tuple(BabCase(i, "verified", 1.0, 1, rec.tree()) for i in range(n))
    )
    save_certificate(replace(fals, verdict=Verdict.VERIFIED, evidence=forged_ev), fals_path)
    ver_path = paths[Verdict.VERIFIED]
    ver = load_certificate(ver_path)
    m = len(ver.property.cases)
    attested = MilpEvidence(
        "highs", True, tuple(MilpCase(i, "optimal", 1.0, 1.0, 0.0) for i in range(m)), 1e-6
    )
    save_certificate(replace(ver, evidence=attested), ver_path)

    assert _run(project) == 1  # the falsifiable property is found falsified afresh
    out = capsys.readouterr().out
    assert "2/4 served from cache" in out
    assert "cached certificate rejected by the checker" in out
    assert "cached certificate solver-attested" in out
    report = json.loads((project / "out" / "report.json").read_text())
    notes = [p["cache_rejected"] for p in report["properties"] if p["cache_rejected"]]
    assert len(notes) == 2
    assert report["summary"]["verified"] == 3 and report["summary"]["falsified"] == 1
    # with --accept-attested an attested entry is served (the fresh ones are independent)
    save_certificate(replace(load_certificate(ver_path), evidence=attested), ver_path)
    assert _run(project, "--accept-attested") == 1
    assert "4/4 served from cache" in capsys.readouterr().out


def test_cached_margins_are_the_checkers_not_the_certificates(tmp_path: Path) -> None:
    """A cached certificate's claimed margins are not reported: a branch-and-bound certificate
    whose claimed case bound is inflated still checks (the tree is what is re-derived), and the
    served outcome carries the re-derived margin."""
    import dataclasses

    from nncert.certificates import BabEvidence
    from nncert.verify.ci import certify_property
    from nncert.verify.spec import Box, Property, UnsafeCase

    net = _net()
    box = Box(np.full(4, 0.3), np.full(4, 0.7))
    A = np.array([[1.0, -1.0, 0.0]])
    grid = np.random.default_rng(0).uniform(0.3, 0.7, (20000, 4))
    low = float((net.forward(grid) @ A.T).min())
    prop = Property((UnsafeCase(box, A, [low - 0.01]),), name="p")
    cache = CertificateCache(tmp_path / "cache")
    first = certify_property(net, prop, options={"method": "bab"}, timeout=20, cache=cache)
    assert first.verdict == "verified" and not first.cached
    ev = first.certificate.evidence
    assert isinstance(ev, BabEvidence)
    inflated = tuple(
        dataclasses.replace(c, lower_bound=(c.lower_bound or 0.0) + 100.0) for c in ev.cases
    )
    forged = dataclasses.replace(
        first.certificate, evidence=dataclasses.replace(ev, cases=inflated)
    )
    cache.put(first.key, forged)
    again = certify_property(net, prop, options={"method": "bab"}, timeout=20, cache=cache)
    assert again.cached and again.margins is not None
    assert max(v for v in again.margins if v is not None) < 100.0
    assert forged.case_lower_bounds()[0] >= 100.0
