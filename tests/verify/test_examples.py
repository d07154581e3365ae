"""The bundled example networks (``nncert.verify.examples``, files in ``verify/data``).

The checks use onnxruntime as the reference; the comparison with the IR importer runs when
``nncert.verify.importers`` is available. Retraining determinism is not tested here (too slow
for CI); run ``python benchmarks/train_examples.py --check`` instead.
"""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from nncert.verify.examples import (
    example_info,
    example_path,
    example_properties,
    list_examples,
    load_example,
)
from nncert.verify.spec import Property

HAVE_IMPORTERS = importlib.util.find_spec("nncert.verify.importers") is not None
needs_importers = pytest.mark.skipif(not HAVE_IMPORTERS, reason="importers not available yet")

EXPECTED = {
    f"{data}_{act}" for data in ("iris", "moons") for act in ("relu", "hardtanh", "sigmoid", "tanh")
} | {"digits_mlp", "digits_conv"}

NAMES = list_examples()


def _ort_logits(path: Path, x_flat: np.ndarray, input_shape: list[int]) -> np.ndarray:
    """Logits from onnxruntime for flattened float64 inputs ``(batch, n)``."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    x = np.asarray(x_flat, dtype=np.float32).reshape(-1, *input_shape)
    return np.asarray(sess.run(None, {inp.name: x})[0], dtype=np.float64)


def _points(info: dict[str, Any]) -> list[dict[str, Any]]:
    return list(info["properties"]["points"])


def test_list_examples() -> None:
    assert set(NAMES) == EXPECTED
    assert len(NAMES) == len(set(NAMES))


def test_unknown_example_raises_key_error() -> None:
    with pytest.raises(KeyError, match="iris_relu"):
        example_info("no_such_network")
    with pytest.raises(KeyError):
        example_path("no_such_network")


def test_metadata_json_is_strict() -> None:
    """No NaN/Infinity tokens: the file parses with a strict constant hook."""

    def reject(token: str) -> None:
        raise ValueError(f"non-finite JSON constant {token}")

    text = (example_path("iris_relu").parent / "examples.json").read_text(encoding="utf-8")
    meta = json.loads(text, parse_constant=reject)
    assert meta["schema_version"] == 1


def test_example_info_is_a_copy() -> None:
    info = example_info("iris_relu")
    info["n_classes"] = 99
    assert example_info("iris_relu")["n_classes"] == 3


@pytest.mark.parametrize("name", NAMES)
def test_metadata_consistent(name: str) -> None:
    info = example_info(name)
    assert info["name"] == name
    n_in = math.prod(info["input_shape"])
    assert info["n_inputs"] == n_in
    expected = {"iris": (4, 3), "moons": (2, 2), "digits": (64, 10)}[info["dataset"]]
    assert (n_in, info["n_classes"]) == expected
    assert info["activation"] in {"relu", "hardtanh", "sigmoid", "tanh"}
    assert 0.85 <= info["test_accuracy"] <= 1.0
    norm = info["normalisation"]
    assert len(norm["min"]) == len(norm["max"]) == n_in
    assert all(lo <= hi for lo, hi in zip(norm["min"], norm["max"]))
    spec = info["properties"]
    assert spec["domain"] == [0.0, 1.0]
    assert spec["eps"] == sorted(spec["eps"]) and all(0 < e < 1 for e in spec["eps"])
    points = _points(info)
    assert len(points) >= 3
    for p in points:
        x0 = np.asarray(p["x0"], dtype=np.float64)
        assert x0.shape == (n_in,)
        assert np.all((x0 >= 0.0) & (x0 <= 1.0))
        assert 0 <= p["label"] < info["n_classes"]
        if p["attack_radius"] is None:
            assert p["counterexample"] is None
        else:
            assert 0 < p["attack_radius"] <= 0.5
            assert len(p["counterexample"]) == n_in
            assert p["counterexample_class"] != p["label"]


@pytest.mark.parametrize("name", NAMES)
def test_mix_of_vulnerable_and_unattacked_points(name: str) -> None:
    """At the largest epsilon some points are attackable and some are not."""
    info = example_info(name)
    e_max = info["properties"]["eps"][-1]
    radii = [p["attack_radius"] for p in _points(info)]
    vulnerable = [r is not None and r <= e_max for r in radii]
    assert any(vulnerable) and not all(vulnerable)


@pytest.mark.parametrize("name", NAMES)
def test_onnx_file_small_and_present(name: str) -> None:
    path = example_path(name)
    assert path.is_file()
    assert path.suffix == ".onnx"
    assert path.stat().st_size < 50_000


@pytest.mark.parametrize("name", NAMES)
def test_onnx_graph_operators(name: str) -> None:
    import onnx

    model = onnx.load(str(example_path(name)))
    onnx.checker.check_model(model)
    ops = {n.op_type for n in model.graph.node}
    act = {"relu": "Relu", "hardtanh": "Clip", "sigmoid": "Sigmoid", "tanh": "Tanh"}
    assert act[example_info(name)["activation"]] in ops
    allowed = {"Gemm", "Conv", "Flatten", "Constant", "Relu", "Clip", "Sigmoid", "Tanh"}
    assert ops <= allowed


@pytest.mark.parametrize("name", NAMES)
def test_points_classified_correctly_by_onnxruntime(name: str) -> None:
    info = example_info(name)
    points = _points(info)
    x = np.array([p["x0"] for p in points])
    logits = _ort_logits(example_path(name), x, info["input_shape"])
    assert logits.shape == (len(points), info["n_classes"])
    assert list(logits.argmax(axis=1)) == [p["label"] for p in points]


@pytest.mark.parametrize("name", NAMES)
def test_counterexamples_are_real(name: str) -> None:
    """Recorded counterexamples lie in the eps-ball and are misclassified (onnxruntime)."""
    info = example_info(name)
    for p in _points(info):
        if p["counterexample"] is None:
            continue
        r = p["attack_radius"]
        (prop,) = example_properties(name, eps=[r], points=[int(p["id"][1:])])
        x = np.asarray(p["counterexample"])
        assert prop.cases[0].input_box.contains(x)
        logits = _ort_logits(example_path(name), x[None, :], info["input_shape"])[0]
        assert int(logits.argmax()) == p["counterexample_class"] != p["label"]
        assert prop.is_counterexample(x, logits)


@pytest.mark.parametrize("name", NAMES)
def test_properties_shape_and_names(name: str) -> None:
    info = example_info(name)
    props = example_properties(name)
    eps = info["properties"]["eps"]
    points = _points(info)
    assert len(props) == len(points) * len(eps)
    n_in = math.prod(info["input_shape"])
    k = info["n_classes"]
    for i, prop in enumerate(props):
        point, e = points[i // len(eps)], eps[i % len(eps)]
        assert isinstance(prop, Property)
        assert prop.name == f"{name}:{point['id']}:eps={e:g}"
        assert prop.label == point["label"]
        assert prop.n_inputs == n_in
        assert prop.n_outputs == k
        assert len(prop.cases) == k - 1
        box = prop.cases[0].input_box
        x0 = np.asarray(point["x0"])
        assert box.contains(x0)
        np.testing.assert_allclose(box.lower, np.maximum(x0 - e, 0.0))
        np.testing.assert_allclose(box.upper, np.minimum(x0 + e, 1.0))


def test_property_name_format() -> None:
    props = example_properties("iris_relu")
    assert props[0].name == "iris_relu:p0:eps=0.01"
    assert props[1].name == "iris_relu:p0:eps=0.05"


@needs_importers
@pytest.mark.parametrize("name", NAMES)
def test_load_example_matches_onnxruntime(name: str) -> None:
    info = example_info(name)
    network, props = load_example(name)
    n_in = math.prod(info["input_shape"])
    assert network.n_inputs == n_in
    assert network.n_outputs == info["n_classes"]
    assert network.name == name
    assert len(props) == len(_points(info)) * len(info["properties"]["eps"])
    for prop in props:
        prop.check_network_shape(network.n_inputs, network.n_outputs)

    rng = np.random.default_rng(0)
    x = np.vstack([rng.uniform(0.0, 1.0, size=(32, n_in)), [p["x0"] for p in _points(info)]])
    # onnxruntime runs in float32: feed inputs that are exactly representable
    x = x.astype(np.float32).astype(np.float64)
    ours = network.forward(x)
    ref = _ort_logits(example_path(name), x, info["input_shape"])
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-4)


@needs_importers
def test_load_example_activation_types() -> None:
    from nncert.verify.network import HardTanh, ReLU, Sigmoid, Tanh

    kinds = {"relu": ReLU, "hardtanh": HardTanh, "sigmoid": Sigmoid, "tanh": Tanh}
    for name in NAMES:
        network, _ = load_example(name)
        expected = kinds[example_info(name)["activation"]]
        assert network.activation_types == frozenset({expected}), name
        assert network.is_piecewise_linear == (expected in (ReLU, HardTanh))


# --------------------------------------------------------------------------------------------
# Loading examples from Python (issue 17): example:NAME in from_onnx, the façade, the README
# --------------------------------------------------------------------------------------------

README = Path(__file__).resolve().parents[2] / "README.md"


@needs_importers
def test_from_onnx_loads_example_names() -> None:
    from nncert.verify import from_onnx
    from nncert.verify.errors import InvalidNetworkError

    net = from_onnx("example:iris_relu")
    ref, _ = load_example("iris_relu")
    assert net.name == "iris_relu" and net.fingerprint() == ref.fingerprint()
    assert net.source == str(example_path("iris_relu"))
    assert from_onnx("example:iris_relu", name="mine").name == "mine"
    with pytest.raises(InvalidNetworkError, match=r"example:nosuch: unknown example; available"):
        from_onnx("example:nosuch")


def test_facade_exports_the_example_loaders() -> None:
    import nncert.verify as facade

    assert {"load_example", "list_examples"} <= set(facade.__all__)
    assert facade.load_example is load_example and facade.list_examples is list_examples


@needs_importers
def test_readme_python_section_loads_an_example(capsys: pytest.CaptureFixture[str]) -> None:
    import re

    text = README.read_text(encoding="utf-8")
    python = text.split("## Python", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", python, flags=re.S)
    snippet = next(b for b in blocks if "load_example(" in b)
    assert 'from_onnx("example:' in snippet
    exec(compile(snippet, str(README), "exec"), {})
    out = capsys.readouterr().out
    assert "iris_relu" in out and "Verdict." in out
