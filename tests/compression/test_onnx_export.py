"""to_onnx: round trip through from_onnx and agreement with onnxruntime."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from strategies import networks

from nncert.compression import to_onnx
from nncert.verify.errors import InvalidOptionsError
from nncert.verify.network import (
    Dense,
    HardTanh,
    LeakyReLU,
    Network,
    ReLU,
    Sigmoid,
    Tanh,
)

pytest.importorskip("onnx")
from nncert.verify.importers import from_onnx, onnxruntime_forward


def _all_activations(
    alpha: float = 0.25, shape: tuple[int, ...] = (3, 2, 2), *, leaky: bool = True
) -> Network:
    rng = np.random.default_rng(0)
    n = int(np.prod(shape))
    widths = [n, 6, 5, 5, 4, 4, 3]
    acts = [ReLU(), LeakyReLU(alpha) if leaky else ReLU(), HardTanh(-1.0, 2.0), Sigmoid(), Tanh()]
    layers: list = []
    for k in range(len(widths) - 1):
        layers.append(
            Dense(rng.normal(size=(widths[k + 1], widths[k])), rng.normal(size=widths[k + 1]))
        )
        if k < len(acts):
            layers.append(acts[k])
    return Network(tuple(layers), input_shape=shape)


def _close(a: Network, b: Network, tol: float) -> None:
    assert a.input_shape == b.input_shape and len(a.layers) == len(b.layers)
    for la, lb in zip(a.layers, b.layers):
        assert type(la) is type(lb)
        if isinstance(la, Dense):
            np.testing.assert_allclose(la.weight, lb.weight, rtol=0, atol=tol)
            np.testing.assert_allclose(la.bias, lb.bias, rtol=0, atol=tol)
        else:
            for k, v in vars(la).items():
                assert getattr(lb, k) == pytest.approx(v, abs=tol)


@pytest.mark.parametrize("opset", [13, 16, 17])
def test_round_trip_exact(tmp_path: Path, opset: int) -> None:
    # onnxruntime implements float64 LeakyRelu from opset 16 on
    net = _all_activations(leaky=opset >= 16)
    path = tmp_path / "net.onnx"
    to_onnx(net, path, opset=opset)
    back = from_onnx(path)
    assert back == net  # bit-for-bit (alpha 0.25 is exact in float32 attributes)
    assert back.fingerprint() == net.fingerprint()
    X = np.random.default_rng(1).uniform(size=(16, net.n_inputs))
    np.testing.assert_allclose(onnxruntime_forward(path, X), net.forward(X), atol=1e-12)


def test_round_trip_leaky_alpha_is_float32_attribute(tmp_path: Path) -> None:
    # ONNX stores LeakyRelu's alpha as a float32 attribute: 0.1 comes back within 1e-8
    net = _all_activations(alpha=0.1, shape=(5,))
    back = from_onnx(to_onnx(net))
    _close(back, net, 1e-8)


def test_float32_export(tmp_path: Path) -> None:
    net = _all_activations(shape=(4,))
    path = tmp_path / "f32.onnx"
    to_onnx(net, path, dtype="float32")
    X = np.random.default_rng(2).uniform(size=(8, 4))
    np.testing.assert_allclose(onnxruntime_forward(path, X), net.forward(X), atol=1e-5)
    np.testing.assert_allclose(from_onnx(path).forward(X), net.forward(X), atol=1e-5)


def test_export_errors() -> None:
    net = _all_activations(shape=(4,))
    with pytest.raises(InvalidOptionsError, match="opset"):
        to_onnx(net, opset=9)
    with pytest.raises(InvalidOptionsError, match="dtype"):
        to_onnx(net, dtype="float16")  # type: ignore[arg-type]


@settings(max_examples=15, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(net=networks(mixed=True))
def test_round_trip_property(net: Network) -> None:
    back = from_onnx(to_onnx(net))
    _close(back, net, 1e-7)
    X = np.random.default_rng(0).uniform(-1, 1, size=(8, net.n_inputs))
    np.testing.assert_allclose(back.forward(X), net.forward(X), rtol=1e-6, atol=1e-6)
