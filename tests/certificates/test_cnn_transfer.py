"""A convolutional network with MaxPool goes through compress -> certify -> transfer -> check.

Issue 16, acceptance 3 on a small model: a real ONNX file (Conv, Relu, MaxPool, Flatten,
Gemm) is imported (MaxPool as an exact tree of ReLU layers), its robustness properties are
certified, the network is compressed (magnitude pruning and int8 quantization of the
convolution and the classifier), the certificates are transferred to the compressed network
and re-checked, both in Python and through ``nncert check`` on the exported ONNX files.
Every transferred VERIFIED is confirmed by direct verification of the target.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from nncert.certificates import certificate_from_result, check, transfer
from nncert.certificates.serialize import save_certificate
from nncert.compression import magnitude_prune, quantize_weights
from nncert.compression.onnx_export import to_onnx
from nncert.verify.cli import main as nncert_main
from nncert.verify.importers import from_onnx
from nncert.verify.network import Network
from nncert.verify.pipeline import verify
from nncert.verify.result import Verdict
from nncert.verify.spec import robustness_property

COMPRESSIONS: dict[str, Callable[[Network], Network]] = {
    # the convolution (first Dense) and the classifier (last Dense); the MaxPool tree's
    # +-1 layers are structure, not weights
    "prune20": lambda net: magnitude_prune(net, 0.2, layers=[0, -1])[0],
    "int8": lambda net: quantize_weights(net, bits=8, layers=[0, -1])[0],
}


def _cnn(path: Path) -> Path:
    rng = np.random.default_rng(16)
    inits = [
        numpy_helper.from_array(rng.normal(size=(3, 1, 3, 3)).astype(np.float32), "cw"),
        numpy_helper.from_array(rng.normal(size=3).astype(np.float32) * 0.1, "cb"),
        numpy_helper.from_array(rng.normal(size=(3, 12)).astype(np.float32), "gw"),
        numpy_helper.from_array(rng.normal(size=3).astype(np.float32) * 0.1, "gb"),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "cw", "cb"], ["c"]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Flatten", ["p"], ["f"]),
        helper.make_node("Gemm", ["f", "gw", "gb"], ["y"], transB=1),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny_cnn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 6, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    file = path / "tiny_cnn.onnx"
    onnx.save(model, str(file))
    return file


@pytest.mark.parametrize("compression", sorted(COMPRESSIONS))
def test_cnn_compress_certify_transfer_check(compression: str, tmp_path: Path) -> None:
    source_file = _cnn(tmp_path)
    net = from_onnx(source_file)
    target = COMPRESSIONS[compression](net)
    assert target.fingerprint() != net.fingerprint()
    target_file = tmp_path / "target.onnx"
    to_onnx(target, target_file)
    assert from_onnx(target_file).fingerprint() == target.fingerprint()
    rng = np.random.default_rng(0)
    n_transferred = 0
    for k in range(6):
        x0 = rng.uniform(0.0, 1.0, size=36)
        label = int(np.argmax(net.forward(x0)))
        prop = robustness_property(x0, 0.02, label, 3)
        cert = certificate_from_result(net, prop, verify(net, prop, method="auto", time_limit=20))
        assert check(cert, net).ok
        if cert.verdict is not Verdict.VERIFIED:
            continue
        res = transfer(cert, net, target, verify_fallback=False)
        if not res.transferred:
            continue
        assert res.verdict is Verdict.VERIFIED, res.reason
        n_transferred += 1
        rep = check(res.certificate, target, source=net, source_certificate=cert)
        assert rep.ok, rep.reasons
        direct = verify(target, prop, method="auto", time_limit=20)
        assert direct.verdict is not Verdict.FALSIFIED, direct.counterexample
        # the CLI accepts the transferred certificate against the exported ONNX files
        scert, tcert = tmp_path / f"s{k}.json", tmp_path / f"t{k}.json"
        save_certificate(cert, scert)
        save_certificate(res.certificate, tcert)
        argv = ["check", str(tcert), str(target_file), "--source", str(source_file)]
        assert nncert_main([*argv, "--source-certificate", str(scert)]) == 0
    assert n_transferred > 0
