"""``nncert certify`` with ``derived_from``: a compressed model transfers its parent's
certificates first, reports per property transferred or re-verified, and never carries a
verdict the derived model does not have."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from nncert.certificates import check, load_certificate
from nncert.verify import cli
from nncert.verify.ci import ManifestError, parse_manifest, register, run_manifest
from nncert.verify.cliutil import load_model
from nncert.verify.network import Dense, Network, ReLU
from nncert.verify.pipeline import verify
from nncert.verify.spec import robustness_property

pytest.importorskip("onnx")

X0 = [0.5, 0.5, 0.5, 0.5]


def _parent() -> Network:
    rng = np.random.default_rng(3)
    w1 = rng.normal(size=(16, 4)) * 0.6
    w2 = rng.normal(size=(3, 16)) * 0.4
    net = Network(
        (Dense(w1, rng.normal(size=16) * 0.1), ReLU(), Dense(w2, np.zeros(3))),
        input_shape=(4,),
        name="parent",
    )
    # make class 0 win clearly at the centre, so small balls are robust
    y = net.forward(np.asarray(X0))
    bias = np.array([2.0 + y.max() - y[0], 0.0, 0.0])
    d2 = net.layers[2]
    assert isinstance(d2, Dense)
    return Network((net.layers[0], ReLU(), Dense(d2.weight, bias)), input_shape=(4,), name="parent")


def _pruned(net: Network, share: float) -> Network:
    """Zero the ``share`` smallest weights of each Dense layer (a magnitude pruning)."""
    layers = []
    for layer in net.layers:
        if isinstance(layer, Dense):
            w = np.array(layer.weight)
            cut = np.quantile(np.abs(w), share)
            w[np.abs(w) < cut] = 0.0
            layer = Dense(w, layer.bias)
        layers.append(layer)
    return Network(tuple(layers), input_shape=net.input_shape, name=f"pruned{share}")


def _broken(net: Network) -> Network:
    """The parent with class 2 boosted: the robustness property is false at the centre."""
    d2 = net.layers[2]
    assert isinstance(d2, Dense)
    bias = np.array(d2.bias) + np.array([0.0, 0.0, 10.0])
    return Network((net.layers[0], ReLU(), Dense(d2.weight, bias)), input_shape=(4,))


MANIFEST = """
[options]
method = "auto"

[budget]
per_property = 20.0

[[models]]
name = "parent"
path = "parent.onnx"
properties = [{{ name = "ball", x = {x}, label = 0, eps = [0.01, 0.05] }}]

[[models]]
name = "pruned"
path = "pruned.onnx"
derived_from = "parent"
properties = [{{ name = "ball", x = {x}, label = 0, eps = [0.01, 0.05] }}]

[[models]]
name = "broken"
path = "broken.onnx"
derived_from = "parent"
properties = [{{ name = "ball", x = {x}, label = 0, eps = [0.01, 0.05] }}]
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    from nncert.compression import to_onnx

    monkeypatch.setattr(cli, "EXTENSIONS", [register])
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    parent = _parent()
    to_onnx(parent, tmp_path / "parent.onnx")
    to_onnx(_pruned(parent, 0.1), tmp_path / "pruned.onnx")
    to_onnx(_broken(parent), tmp_path / "broken.onnx")
    (tmp_path / "nncert.toml").write_text(MANIFEST.format(x=X0))
    return tmp_path


def _by_id(report: dict) -> dict[str, dict]:
    return {p["id"]: p for p in report["properties"]}


def test_derived_model_transfers_first_and_reports_it(project: Path) -> None:
    lines: list[str] = []
    report = run_manifest(
        project / "nncert.toml",
        out_dir=project / "out",
        cache_dir=project / "cache",
        progress=lines.append,
    )
    doc = json.loads((project / "out" / "report.json").read_text())
    props = _by_id(doc)
    assert doc["schema_version"] == [1, 1]
    for eps in ("0.01", "0.05"):
        parent = props[f"parent/ball_label0_eps{eps}"]
        pruned = props[f"pruned/ball_label0_eps{eps}"]
        broken = props[f"broken/ball_label0_eps{eps}"]
        assert parent["verdict"] == "verified" and parent["transfer"] is None
        assert parent["derived_from"] is None
        # the pruned model is decided by carrying the parent's certificate
        assert pruned["verdict"] == "verified"
        assert pruned["transfer"] == "transferred", pruned
        assert pruned["derived_from"] == parent["id"]
        assert pruned["transfer_time"] is not None and pruned["transfer_reason"]
        assert pruned["time_saved"] == pytest.approx(
            parent["time"] - pruned["transfer_time"], abs=1e-5
        )
        # the broken model is not: it is verified directly, and falsified
        assert broken["transfer"] == "re-verified"
        assert broken["verdict"] == "falsified"
        assert broken["time_saved"] <= 0.0
    s = doc["summary"]
    assert s["transferred"] == 2 and s["re_verified"] == 2
    assert report.exit_code == 1  # the broken model's counterexamples
    assert any("transferred from parent/" in line for line in lines)
    assert any("re-verified: transfer from parent/" in line for line in lines)
    summary = (project / "out" / "summary.md").read_text()
    assert "**Transfer**: 2 of 4 properties of derived models transferred" in summary

    # the transferred certificates pass the independent checker, given the parent
    parent_net = _parent()
    for eps in ("0.01", "0.05"):
        cert = load_certificate(
            project / "out" / props[f"pruned/ball_label0_eps{eps}"]["certificate"]
        )
        src = load_certificate(
            project / "out" / props[f"parent/ball_label0_eps{eps}"]["certificate"]
        )
        from nncert.verify.cliutil import load_model

        target = load_model(str(project / "pruned.onnx"))
        rep = check(cert, target, source=parent_net, source_certificate=src)
        assert rep.ok and rep.independent, rep.reasons

    # a second run serves the transferred certificates from the cache (re-checked against
    # the parent's certificate)
    again = run_manifest(
        project / "nncert.toml", out_dir=project / "out", cache_dir=project / "cache"
    )
    cached = {p.id: p for p in again.properties}
    for eps in ("0.01", "0.05"):
        p = cached[f"pruned/ball_label0_eps{eps}"]
        assert p.cached and p.verdict == "verified" and p.cache_rejected is None


def test_transfer_verdicts_agree_with_direct_verification(project: Path) -> None:
    """Whatever the transfer decides equals what verifying the derived model directly gives."""
    report = run_manifest(project / "nncert.toml", out_dir=project / "out")

    for p in report.properties:
        if p.transfer is None:
            continue
        net = load_model(str(project / f"{p.model}.onnx"))
        eps = float(p.property.rsplit("eps", 1)[1])
        prop = robustness_property(np.asarray(X0), eps, 0, 3, domain=(0.0, 1.0))
        direct = verify(net, prop, time_limit=20.0)
        assert direct.verdict.value == p.verdict, (p.id, p.transfer, p.transfer_reason)


def test_unpaired_properties_are_verified_without_transfer(project: Path) -> None:
    text = (
        (project / "nncert.toml")
        .read_text()
        .replace(
            'derived_from = "parent"\nproperties = [{ name = "ball", x = [0.5, 0.5, 0.5, 0.5], '
            'label = 0, eps = [0.01, 0.05] }]\n\n[[models]]\nname = "broken"',
            'derived_from = "parent"\nproperties = [{ name = "other", x = [0.5, 0.5, 0.5, 0.5], '
            'label = 0, eps = 0.01 }]\n\n[[models]]\nname = "broken"',
            1,
        )
    )
    assert 'name = "other"' in text
    (project / "nncert.toml").write_text(text)
    report = run_manifest(project / "nncert.toml", out_dir=project / "out")
    other = next(p for p in report.properties if p.id == "pruned/other")
    assert other.transfer is None and other.derived_from is None
    assert other.verdict == "verified"


BASE = {"path": "example:iris_relu", "properties": [{"examples": [0]}]}


@pytest.mark.parametrize(
    ("models", "message"),
    [
        ([{**BASE, "name": "a", "derived_from": "a"}], "derives from itself"),
        (
            [{**BASE, "name": "orig"}, {**BASE, "name": "b", "derived_from": "orgi"}],
            "no model named 'orgi'; did you mean 'orig'?",
        ),
        (
            [
                {**BASE, "name": "a", "derived_from": "b"},
                {**BASE, "name": "b", "derived_from": "a"},
            ],
            "cycle a -> b -> a",
        ),
        ([{**BASE, "name": "a", "derived_from": 3}], "expected the name of another model"),
    ],
)
def test_lineage_errors(models: list[dict], message: str) -> None:
    with pytest.raises(ManifestError) as err:
        parse_manifest({"models": models}, "m.toml")
    assert message in str(err.value)


def test_lineage_shape_mismatch_is_a_manifest_error(project: Path) -> None:
    from nncert.compression import to_onnx

    p = _parent()
    d2 = p.layers[2]
    assert isinstance(d2, Dense)
    wide = Network(
        (p.layers[0], ReLU(), Dense(np.vstack([d2.weight, d2.weight[:1]]), np.zeros(4))),
        input_shape=(4,),
    )
    to_onnx(wide, project / "broken.onnx")
    with pytest.raises(ManifestError, match="derived_from: 'broken' has 4 inputs and 4 outputs"):
        run_manifest(project / "nncert.toml", out_dir=project / "out")
    assert not (project / "out").exists()


def test_cli_prints_the_transfer_line(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(project)  # the default cache directory is relative
    code = cli.main(["certify", "nncert.toml", "--out", "out"])
    assert code == 1
    out = capsys.readouterr().out
    assert "2 of 4 properties of derived models transferred" in out


def test_a_recompressed_model_uses_the_cached_parents_time(project: Path) -> None:
    """The common CI case: the parent is unchanged (served from the cache), the compressed
    model is new; the transfer's time saved is estimated from the parent's recorded time."""
    from nncert.compression import to_onnx

    cache = project / "cache"
    run_manifest(project / "nncert.toml", out_dir=project / "out", cache_dir=cache)
    to_onnx(_pruned(_parent(), 0.2), project / "pruned.onnx")  # re-compressed
    report = run_manifest(project / "nncert.toml", out_dir=project / "out", cache_dir=cache)
    props = {p.id: p for p in report.properties}
    for eps in ("0.01", "0.05"):
        parent = props[f"parent/ball_label0_eps{eps}"]
        pruned = props[f"pruned/ball_label0_eps{eps}"]
        assert parent.cached and not pruned.cached
        assert pruned.transfer == "transferred" and pruned.verdict == "verified"
        assert pruned.time_saved is not None
        assert pruned.transfer_time is not None
        assert pruned.time_saved < 60.0


def test_a_transfer_that_crashes_costs_nothing_but_its_time(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fault inside the transfer (one this suite cannot cause otherwise, hence the stub) is
    reported as the reason and the property is verified directly; the run goes on."""
    import nncert.verify.ci as ci

    def broken(*args: object, **kwargs: object) -> object:
        raise RuntimeError("boom")

    monkeypatch.setattr(ci, "transfer", broken)
    report = run_manifest(project / "nncert.toml", out_dir=project / "out")
    pruned = [p for p in report.properties if p.model == "pruned"]
    assert pruned and all(p.transfer == "re-verified" for p in pruned)
    assert all(p.verdict == "verified" and "boom" in (p.transfer_reason or "") for p in pruned)
