"""Readers of compressed models from torch, torchao and QDQ ONNX."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
from torch.nn.utils import prune  # noqa: E402

from nncert.compression import from_torch_pruned, from_torch_quantized  # noqa: E402
from nncert.verify.errors import UnsupportedLayerError  # noqa: E402
from nncert.verify.network import Dense, LeakyReLU, ReLU  # noqa: E402


def _model(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(6, 16),
        nn.ReLU(),
        nn.Sequential(nn.Linear(16, 8), nn.LeakyReLU(0.125), nn.Dropout(0.1)),
        nn.Linear(8, 3),
    ).eval()


def _torch_out(model: nn.Module, X: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(X.astype(np.float32)).reshape(-1, *shape)).double().numpy()


def test_pruned_masks_and_agreement() -> None:
    model = _model()
    lin1, lin2, lin3 = model[1], model[3][0], model[4]
    prune.l1_unstructured(lin1, "weight", amount=0.5)
    prune.ln_structured(lin2, "weight", amount=0.25, n=2, dim=0)
    prune.l1_unstructured(lin2, "weight", amount=0.2)  # PruningContainer
    prune.l1_unstructured(lin3, "bias", amount=1)
    net, rec = from_torch_pruned(model, (2, 3))
    assert net.input_shape == (2, 3)
    assert [type(l) for l in net.layers] == [Dense, ReLU, Dense, LeakyReLU, Dense]
    assert rec.layers == (0, 1)
    assert rec.layer_sparsity[0] == pytest.approx(0.5)
    assert "L1Unstructured" in rec.methods[1] and "LnStructured" in rec.methods[1]
    np.testing.assert_array_equal(rec.masks[0], lin1.weight_mask.numpy() != 0)
    np.testing.assert_array_equal(
        net.dense_layers[0].weight,
        (lin1.weight_orig * lin1.weight_mask).detach().double().numpy(),
    )
    assert np.count_nonzero(net.dense_layers[2].bias == 0) >= 1  # pruned bias
    X = np.random.default_rng(0).uniform(size=(32, 6))
    np.testing.assert_allclose(net.forward(X), _torch_out(model, X, (2, 3)), atol=1e-5)
    orig, _ = from_torch_pruned(model, (2, 3), original=True)
    np.testing.assert_array_equal(
        orig.dense_layers[0].weight, lin1.weight_orig.detach().double().numpy()
    )
    json.dumps(rec.to_dict(), allow_nan=False)


def test_pruned_after_remove_and_torch_pruning_style_model() -> None:
    model = _model(1)
    prune.l1_unstructured(model[1], "weight", amount=0.3)
    prune.remove(model[1], "weight")  # permanent: masks are gone, zeros stay
    net, rec = from_torch_pruned(model, (6,))
    assert rec.layers == ()
    assert np.mean(net.dense_layers[0].weight == 0) == pytest.approx(0.3, abs=0.01)
    # Torch-Pruning's output is a plain smaller model: the rows kept are W1[kept], W2[:, kept]
    kept = torch.tensor([0, 2, 3, 7, 9, 11])
    small = nn.Sequential(nn.Linear(6, 6), nn.ReLU(), nn.Linear(6, 3)).eval()
    with torch.no_grad():
        small[0].weight.copy_(model[1].weight[kept])
        small[0].bias.copy_(model[1].bias[kept])
        small[2].weight.copy_(torch.randn(3, 6))
    from nncert.verify.importers import from_torch

    a, _ = from_torch_pruned(small, (6,))
    b = from_torch(small, (6,))
    X = np.random.default_rng(1).uniform(size=(16, 6))
    np.testing.assert_allclose(a.forward(X), b.forward(X), atol=1e-12)
    np.testing.assert_allclose(a.forward(X), _torch_out(small, X, (6,)), atol=1e-5)


def test_dynamic_quantized_reader() -> None:
    model = _model(2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        qmodel = torch.ao.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8)
    net, rec = from_torch_quantized(qmodel, (6,))
    assert rec.layers == (0, 1, 2)
    assert set(rec.sources) == {"torch.ao.dynamic"}
    assert all(rec.dynamic_activation)
    for k, mod in enumerate([qmodel[1], qmodel[3][0], qmodel[4]]):
        w = mod.weight()
        np.testing.assert_array_equal(net.dense_layers[k].weight, w.dequantize().double().numpy())
        if rec.qschemes[k] == "per_tensor_affine":
            assert rec.scales[k][0] == pytest.approx(w.q_scale())
        # integer grid: W / scale is integral
        s = rec.scales[k].reshape(-1, 1)
        r = net.dense_layers[k].weight / s
        np.testing.assert_allclose(r, np.rint(r), atol=1e-3)
    X = np.random.default_rng(2).uniform(size=(64, 6))
    # weight-only semantics equals a float model with the dequantized weights exactly ...
    fmodel = _model(2)
    with torch.no_grad():
        for dst, src in zip(
            [fmodel[1], fmodel[3][0], fmodel[4]], [qmodel[1], qmodel[3][0], qmodel[4]]
        ):
            dst.weight.copy_(src.weight().dequantize())
            dst.bias.copy_(src.bias())
    np.testing.assert_allclose(net.forward(X), _torch_out(fmodel, X, (6,)), atol=1e-5)
    # ... and the torch int8 model only up to its run-time activation rounding
    np.testing.assert_allclose(net.forward(X), _torch_out(qmodel, X, (6,)), atol=0.05)
    json.dumps(rec.to_dict(), allow_nan=False)


def test_torchao_reader() -> None:
    torchao = pytest.importorskip("torchao")
    from torchao.quantization import Int8WeightOnlyConfig, quantize_

    model = _model(3)
    quantize_(model, Int8WeightOnlyConfig())
    net, rec = from_torch_quantized(model, (6,))
    assert rec.sources[0].startswith("torchao:")
    X = np.random.default_rng(3).uniform(size=(16, 6))
    np.testing.assert_allclose(net.forward(X), _torch_out(model, X, (6,)), atol=1e-3)
    assert torchao is not None


def test_unsupported_module() -> None:
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU())
    with pytest.raises(UnsupportedLayerError, match="Conv2d"):
        from_torch_pruned(model, (1, 5, 5))


def test_qdq_onnx_weights_are_folded(tmp_path: Path) -> None:
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    from nncert.verify.importers import from_onnx, onnxruntime_forward

    rng = np.random.default_rng(4)
    q1 = rng.integers(-127, 128, size=(5, 3)).astype(np.int8)
    s1 = rng.uniform(0.01, 0.05, size=5).astype(np.float32)  # per output channel
    q2 = rng.integers(-127, 128, size=(2, 5)).astype(np.int8)
    s2 = np.float32(0.02)
    z2 = np.int8(3)
    b1 = rng.normal(size=5).astype(np.float32)
    b2 = rng.normal(size=2).astype(np.float32)
    inits = [
        numpy_helper.from_array(q1, "q1"),
        numpy_helper.from_array(s1, "s1"),
        numpy_helper.from_array(np.zeros(5, np.int8), "z1"),
        numpy_helper.from_array(q2, "q2"),
        numpy_helper.from_array(np.array(s2), "s2"),
        numpy_helper.from_array(np.array(z2), "z2"),
        numpy_helper.from_array(b1, "b1"),
        numpy_helper.from_array(b2, "b2"),
    ]
    nodes = [
        helper.make_node("DequantizeLinear", ["q1", "s1", "z1"], ["w1"], axis=0),
        helper.make_node("DequantizeLinear", ["q2", "s2", "z2"], ["w2"]),
        helper.make_node("Gemm", ["x", "w1", "b1"], ["h"], transB=1),
        helper.make_node("Relu", ["h"], ["a"]),
        helper.make_node("Gemm", ["a", "w2", "b2"], ["y"], transB=1),
    ]
    graph = helper.make_graph(
        nodes,
        "qdq",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path = tmp_path / "qdq.onnx"
    onnx.save(model, str(path))
    net = from_onnx(path)
    W1 = s1.astype(np.float64)[:, None] * q1.astype(np.float64)
    W2 = float(s2) * (q2.astype(np.float64) - float(z2))
    np.testing.assert_allclose(net.dense_layers[0].weight, W1, rtol=1e-6)
    np.testing.assert_allclose(net.dense_layers[1].weight, W2, rtol=1e-6)
    X = rng.uniform(size=(16, 3))
    np.testing.assert_allclose(net.forward(X), onnxruntime_forward(path, X), atol=1e-4)
