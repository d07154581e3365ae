"""A VNN-COMP verivital CNN goes through compress -> certify -> transfer -> check (issue 16, 3).

The real ``Convnet_avgpool.onnx`` of the shared VNN-COMP benchmarks (MNIST, ``Conv 2x2 (32
channels) -> Relu -> Pad -> AveragePool -> Flatten -> Gemm``; skipped when the shared folder is
absent) imports as ``Dense 784->23328`` (the convolution lowered to a sparse matrix), ``ReLU``
and ``Dense 23328->10`` (pooling folded into the classifier, a composed layer). One of its
*unsat* instances (``truth.csv``), which direct verification proves by bounds in about a
second, is certified on the source; the network is compressed three ways:

* ``prune10``: magnitude pruning of 10% of the *non-zero* weights of both layers
  (``among="nonzero"``: "10% of all entries" of the lowered convolution is already zero and
  would change nothing);
* ``int8``: per-channel symmetric int8 quantization of both layers (a row of the lowered
  convolution holds one position's copy of its channel's kernel);
* ``channels``: structured pruning of 3 of the 32 convolution channels
  (``structured_prune(channels=32)``: whole groups of 27x27 contiguous neurons, the C-order
  layout of the convolution's output, with their classifier columns). Without compensation:
  a GRAIL refit over the 21141 kept neurons would solve a 21142x21142 normal system, which
  ``structured_prune`` refuses (``compensate=True`` raises ``InvalidOptionsError`` naming
  ``compensate=False``; asserted below).

Each compressed target keeps the sparse storage of the convolution and exports to a small ONNX
file (sparse initializer). The source certificate is transferred; a transferred VERIFIED must
be confirmed: the transferred certificate passes :func:`check` with trust ``"independent"``,
direct verification of the target is not FALSIFIED, sampling the target on the input box
finds no violation, and ``nncert check`` on the exported ONNX files exits 0.

``Convnet_maxpool`` (exact MaxPool encoding, five sparse layers) is left out: its direct
verification takes 8-9 s per property on a quiet machine (17-20 s measured here), too long for
this test's budget; ``benchmarks/verivital_transfer.py --network Convnet_maxpool`` covers it.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from cert_helpers import sample_violations

from nncert.certificates import Certificate, certificate_from_result, check, transfer
from nncert.certificates.serialize import save_certificate
from nncert.compression import magnitude_prune, quantize_weights, structured_prune
from nncert.compression.onnx_export import to_onnx
from nncert.verify.cli import main as nncert_main
from nncert.verify.errors import InvalidOptionsError
from nncert.verify.importers import from_onnx
from nncert.verify.network import Network
from nncert.verify.pipeline import verify
from nncert.verify.result import Verdict
from nncert.verify.spec import Property
from nncert.verify.vnnlib import load_vnnlib

#: ``<repo>/../shared/benchmarks`` (CI clones main with a copy of shared/ beside it)
VERIVITAL = (
    Path(__file__).resolve().parents[2].parent / "shared" / "benchmarks" / "vnncomp" / "verivital"
)
ONNX = "onnx/Convnet_avgpool.onnx"
#: an unsat instance (truth.csv) that direct verification proves by bounds in about 1 s
INSTANCE = "vnnlib/prop_0_0.02.vnnlib"

#: the number of output channels of the convolution (32 x 27 x 27 = 23328 neurons)
CHANNELS = 32

COMPRESSIONS: dict[str, Callable[[Network], Network]] = {
    "prune10": lambda net: magnitude_prune(net, 0.1, among="nonzero")[0],
    "int8": lambda net: quantize_weights(net, bits=8)[0],
    "channels": lambda net: structured_prune(
        net, 0.1, channels=CHANNELS, layers=[0], compensate=False, n_calibration=16
    )[0],
}


@dataclass(frozen=True)
class Source:
    file: Path
    net: Network
    prop: Property
    cert: Certificate


@pytest.fixture(scope="module")
def source() -> Source:
    file = VERIVITAL / ONNX
    if not file.is_file():
        pytest.skip(f"shared verivital benchmark not found at {file}")
    with open(VERIVITAL / "truth.csv", newline="") as fh:
        truth = {(r["onnx"], r["vnnlib"]): r["truth"] for r in csv.DictReader(fh)}
    assert truth[(ONNX, INSTANCE)] == "unsat"
    net = from_onnx(file)
    prop = load_vnnlib(VERIVITAL / INSTANCE)
    res = verify(net, prop, method="auto", time_limit=30)
    assert res.verdict is Verdict.VERIFIED, res.verdict
    cert = certificate_from_result(net, prop, res)
    rep = check(cert, net)
    assert rep.ok and rep.trust == "independent", rep.reasons
    return Source(file, net, prop, cert)


@pytest.mark.parametrize("compression", sorted(COMPRESSIONS))
def test_verivital_compress_certify_transfer_check(
    compression: str, source: Source, tmp_path: Path
) -> None:
    net, prop, cert = source.net, source.prop, source.cert
    target = COMPRESSIONS[compression](net)
    assert target.fingerprint() != net.fingerprint()
    conv, conv_t = net.dense_layers[0], target.dense_layers[0]
    assert conv_t.sparse  # the lowered convolution stays sparse
    if compression == "channels":
        assert conv_t.n_out == (CHANNELS - 3) * 27 * 27
    else:
        assert conv_t.weight.shape == conv.weight.shape
        assert (conv_t.weight != conv.weight).nnz > 0  # the convolution itself was compressed
    target_file = tmp_path / "target.onnx"
    to_onnx(target, target_file)
    assert target_file.stat().st_size < 10_000_000  # sparse initializer, not 148 MB
    assert from_onnx(target_file).fingerprint() == target.fingerprint()

    res = transfer(cert, net, target, verify_fallback=False)
    assert res.transferred and res.verdict is Verdict.VERIFIED, res.reason
    # a transferred VERIFIED is confirmed: the checker, direct verification, sampling
    rep = check(res.certificate, target, source=net, source_certificate=cert)
    assert rep.ok and rep.trust == "independent", rep.reasons
    direct = verify(target, prop, method="auto", time_limit=30)
    assert direct.verdict is not Verdict.FALSIFIED, direct.counterexample
    assert min(sample_violations(target, prop, np.random.default_rng(0), n=256)) > 0.0

    # the CLI accepts the transferred certificate against the exported ONNX files
    scert, tcert = tmp_path / "source.json", tmp_path / "target.json"
    save_certificate(cert, scert)
    save_certificate(res.certificate, tcert)
    argv = ["check", str(tcert), str(target_file), "--source", str(source.file)]
    assert nncert_main([*argv, "--source-certificate", str(scert)]) == 0


def test_verivital_channel_refit_is_refused_cleanly(source: Source) -> None:
    """GRAIL compensation over the ~21000 kept convolution neurons is refused before any work,
    with an nncert error that names the way out."""
    with pytest.raises(InvalidOptionsError, match="compensate=False"):
        structured_prune(source.net, 0.1, channels=CHANNELS, layers=[0], n_calibration=16)
