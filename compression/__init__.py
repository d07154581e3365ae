"""nncert.compression: pruning, quantization, low-rank truncation, distillation.

Every compression works on the numpy IR (:class:`nncert.verify.Network`), needs no torch, and
returns ``(compressed_network, record)``; the record is a frozen dataclass (masks, kept
indices, scales, ranks, parameter counts) with a JSON-safe ``to_dict()``::

    from nncert.compression import magnitude_prune, structured_prune, quantize_weights, low_rank

    pruned, rec = magnitude_prune(net, 0.5, scope="global")
    small, rec = structured_prune(net, 0.25, calibration=X)       # GRAIL-style compensation
    q8, rec = quantize_weights(net, bits=8)                        # dequantized float weights
    lr, rec = low_rank(net, energy=0.99)                           # truncated SVD
    student, rec = distill(net, hidden=(8,))                       # needs torch
    to_onnx(pruned, "pruned.onnx")                                 # Gemm/Relu/... graph

Readers of artefacts from other tools (torch prune masks, torch.ao dynamic quantization,
torchao, Torch-Pruning, QDQ ONNX) are in :mod:`nncert.compression.readers`; the ``nncert
compress`` sub-command in :mod:`nncert.compression.cli`. torch and onnx are imported inside the
functions that need them.
"""

from __future__ import annotations

from nncert.compression.distill import DistillRecord, distill
from nncert.compression.lowrank import LowRankRecord, low_rank
from nncert.compression.onnx_export import to_onnx
from nncert.compression.pruning import (
    MagnitudePruneRecord,
    StructuredPruneRecord,
    magnitude_prune,
    structured_prune,
)
from nncert.compression.quantization import QuantizeRecord, quantize_weights
from nncert.compression.readers import (
    TorchPruneRecord,
    TorchQuantRecord,
    from_torch_pruned,
    from_torch_quantized,
)
from nncert.compression.records import decode_array, encode_array

__all__ = [
    "DistillRecord",
    "LowRankRecord",
    "MagnitudePruneRecord",
    "QuantizeRecord",
    "StructuredPruneRecord",
    "TorchPruneRecord",
    "TorchQuantRecord",
    "decode_array",
    "distill",
    "encode_array",
    "from_torch_pruned",
    "from_torch_quantized",
    "low_rank",
    "magnitude_prune",
    "quantize_weights",
    "structured_prune",
    "to_onnx",
]
