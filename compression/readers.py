"""Readers of compressed models produced by other tools (ECOSYSTEM.md section 2).

Which function reads which artefact:

======================================  ==================================================
artefact                                reader
======================================  ==================================================
``torch.nn.utils.prune`` (masks/hooks)  :func:`from_torch_pruned` (effective weight
                                        ``weight_orig * weight_mask``, plus the masks)
``torch.nn.utils.parametrize``          :func:`from_torch_pruned` (reads ``module.weight``)
Torch-Pruning (``torch_pruning``)       ``nncert.verify.importers.from_torch`` or
                                        :func:`from_torch_pruned`: the result is a plain,
                                        smaller ``nn.Sequential`` without masks or hooks
torch.ao dynamic quantization           :func:`from_torch_quantized`
(``torch.ao.nn.quantized.dynamic``)     (``mod.weight().dequantize()``, float bias)
torchao weight-only tensor subclasses   :func:`from_torch_quantized` (``weight.dequantize()``)
QDQ ONNX (``DequantizeLinear`` weights) ``nncert.verify.importers.from_onnx`` folds it
======================================  ==================================================

The torch readers accept an ``nn.Sequential`` (nested ones are flattened) of ``Linear``
layers, element-wise activations (``ReLU``, ``LeakyReLU``, ``Hardtanh``, ``ReLU6``,
``Sigmoid``, ``Tanh``) and the no-ops ``Flatten``, ``Identity`` and ``Dropout`` (read in eval
mode). Convolutions are the job of ``from_torch``/``from_onnx``. ``torch`` is imported inside
the functions only.

Semantics of quantized models: nncert verifies the **weight-only dequantized** model. A
torch.ao *dynamic* Linear also quantizes its input activation at run time with an
input-dependent scale, so the torch output differs from the verified model by that activation
rounding (recorded as ``dynamic_activation=True``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from nncert.compression.records import RecordMixin
from nncert.verify.errors import InvalidNetworkError, UnsupportedLayerError
from nncert.verify.network import (
    Dense,
    FloatArray,
    HardTanh,
    Layer,
    LeakyReLU,
    Network,
    ReLU,
    Sigmoid,
    Tanh,
)


def _np(t: Any) -> FloatArray:
    return np.asarray(t.detach().cpu().to(dtype=_torch().float64).numpy(), dtype=np.float64)


def _torch() -> Any:
    import torch

    return torch


def _leaves(module: Any) -> list[Any]:
    """The modules of a (nested) ``nn.Sequential``, in order; a bare module is one leaf."""
    nn = _torch().nn
    if isinstance(module, nn.Sequential):
        out: list[Any] = []
        for child in module:
            out.extend(_leaves(child))
        return out
    return [module]


def _activation(m: Any) -> Layer | None:
    """The IR activation for a torch module, ``None`` for a no-op; raises if unsupported."""
    nn = _torch().nn
    if isinstance(m, nn.ReLU):
        return ReLU()
    if isinstance(m, nn.LeakyReLU):
        return LeakyReLU(float(m.negative_slope))
    if isinstance(m, nn.Hardtanh):  # includes ReLU6
        return HardTanh(float(m.min_val), float(m.max_val))
    if isinstance(m, nn.Sigmoid):
        return Sigmoid()
    if isinstance(m, nn.Tanh):
        return Tanh()
    if isinstance(m, (nn.Identity, nn.Flatten, nn.Dropout)):
        return None
    raise UnsupportedLayerError(
        f"unsupported torch module {type(m).__name__}; the compression readers take "
        "Sequential models of Linear and element-wise activations (use "
        "nncert.verify.importers.from_torch or ONNX for convolutions)"
    )


def _convert(
    module: Any,
    input_shape: Sequence[int],
    linear: Callable[[int, Any], Dense | None],
) -> Network:
    """Walk the leaves; ``linear(dense_index, m)`` returns a Dense for weighted modules."""
    layers: list[Layer] = []
    shape = tuple(int(s) for s in input_shape)
    for m in _leaves(module):
        dense = linear(sum(isinstance(l, Dense) for l in layers), m)
        if dense is not None:
            layers.append(dense)
            continue
        act = _activation(m)
        if act is not None:
            layers.append(act)
    if not any(isinstance(l, Dense) for l in layers):
        raise InvalidNetworkError("torch model: no Linear layer found")
    return Network(tuple(layers), shape, name=type(module).__name__)


# --------------------------------------------------------------------------------------------
# torch.nn.utils.prune
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TorchPruneRecord(RecordMixin):
    """Masks read from a ``torch.nn.utils.prune``-pruned model.

    Attributes:
        layers: indices (among the Dense layers) of layers that carried a weight mask.
        masks: per such layer, the bool weight mask (``True`` = kept), shape ``(n_out, n_in)``.
        bias_masked: per such layer, whether the bias carried a mask too.
        methods: per such layer, the pruning hook's class name(s) (``"L1Unstructured"``...).
        layer_sparsity: per such layer, the fraction of zeros in the mask.
        parametrized: indices of Dense layers whose weight came from a parametrization.
        parameters: parameters of the network.
    """

    kind = "torch_prune"

    layers: tuple[int, ...]
    masks: tuple[NDArray[np.bool_], ...]
    bias_masked: tuple[bool, ...]
    methods: tuple[str, ...]
    layer_sparsity: tuple[float, ...]
    parametrized: tuple[int, ...]
    parameters: int


def _hook_names(m: Any) -> str:
    prune = _torch().nn.utils.prune
    names: list[str] = []
    for hook in m._forward_pre_hooks.values():
        if isinstance(hook, prune.PruningContainer):
            names.extend(type(h).__name__ for h in hook._pruning_methods)
        elif isinstance(hook, prune.BasePruningMethod):
            names.append(type(hook).__name__)
    return "+".join(names)


def from_torch_pruned(
    module: Any, input_shape: Sequence[int], *, original: bool = False
) -> tuple[Network, TorchPruneRecord]:
    """Read a model pruned with ``torch.nn.utils.prune`` (masks still attached) or not.

    The effective weight of a masked ``Linear`` is ``weight_orig * weight_mask`` (exactly what
    the forward pre-hook computes); the bias likewise when it was pruned. Unmasked layers,
    parametrized layers (``module.weight``) and models already made permanent with
    ``prune.remove`` (masks lost; zeros stay) are read as they are. A Torch-Pruning result is
    just a smaller ordinary model and is read the same way.

    Args:
        module: an ``nn.Sequential`` (or a single ``nn.Linear``).
        input_shape: shape of one input (flattened in C order).
        original: return the *unpruned* network (``weight_orig``) instead, e.g. as the source
            of a certificate transfer; the record is the same.

    Returns:
        ``(network, record)``.

    Raises:
        UnsupportedLayerError: on modules other than Linear and element-wise activations.
    """
    torch = _torch()
    nn = torch.nn
    parametrize = nn.utils.parametrize
    pruned_idx: list[int] = []
    masks: list[NDArray[np.bool_]] = []
    bias_masked: list[bool] = []
    methods: list[str] = []
    parametrized: list[int] = []

    def linear(i: int, m: Any) -> Dense | None:
        if not isinstance(m, nn.Linear):
            return None
        if parametrize.is_parametrized(m, "weight"):
            parametrized.append(i)
        with torch.no_grad():
            if hasattr(m, "weight_orig") and hasattr(m, "weight_mask"):
                mask = _np(m.weight_mask) != 0.0
                w_orig = _np(m.weight_orig)
                w = w_orig if original else w_orig * mask
                pruned_idx.append(i)
                mask.setflags(write=False)
                masks.append(mask)
                methods.append(_hook_names(m))
                bias_masked.append(hasattr(m, "bias_mask"))
            else:
                w = _np(m.weight)
            if hasattr(m, "bias_orig") and hasattr(m, "bias_mask"):
                b_orig = _np(m.bias_orig)
                b = b_orig if original else b_orig * (_np(m.bias_mask) != 0.0)
            elif m.bias is not None:
                b = _np(m.bias)
            else:
                b = np.zeros(w.shape[0])
        return Dense(w, b)

    net = _convert(module, input_shape, linear)
    rec = TorchPruneRecord(
        layers=tuple(pruned_idx),
        masks=tuple(masks),
        bias_masked=tuple(bias_masked),
        methods=tuple(methods),
        layer_sparsity=tuple(float(1.0 - m.mean()) if m.size else 0.0 for m in masks),
        parametrized=tuple(parametrized),
        parameters=net.n_parameters,
    )
    return net, rec


# --------------------------------------------------------------------------------------------
# torch.ao dynamic quantization and torchao
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TorchQuantRecord(RecordMixin):
    """Quantization parameters read from a torch.ao / torchao model.

    Attributes:
        layers: indices (among the Dense layers) of quantized layers.
        sources: per quantized layer, ``"torch.ao.dynamic"`` or ``"torchao:<TensorClass>"``.
        qschemes: per quantized layer, the torch qscheme name (``"per_tensor_affine"``...) or
            ``""`` for torchao.
        scales: per quantized layer, the weight scales (flattened; empty when not exposed).
        zero_points: per quantized layer, the weight zero points (flattened; may be empty).
        dynamic_activation: per quantized layer, whether torch also quantizes the input
            activation at run time (not part of the verified semantics).
        semantics: always ``"weight-only-dequantized"``.
        parameters: parameters of the network.
    """

    kind = "torch_quantized"

    layers: tuple[int, ...]
    sources: tuple[str, ...]
    qschemes: tuple[str, ...]
    scales: tuple[FloatArray, ...]
    zero_points: tuple[FloatArray, ...]
    dynamic_activation: tuple[bool, ...]
    parameters: int
    semantics: str = "weight-only-dequantized"


def _qparams(w: Any) -> tuple[str, FloatArray, FloatArray]:
    """qscheme name, scales, zero points of a quantized torch tensor."""
    torch = _torch()
    scheme = w.qscheme()
    if scheme in (torch.per_tensor_affine, torch.per_tensor_symmetric):
        s = np.array([float(w.q_scale())])
        z = np.array([float(w.q_zero_point())])
    else:
        s = _np(w.q_per_channel_scales())
        z = _np(w.q_per_channel_zero_points())
    return str(scheme).replace("torch.", ""), s, z


def _torchao_weight(w: Any) -> tuple[str, FloatArray, FloatArray] | None:
    """``(class name, scale, zero point)`` for a torchao tensor subclass, else ``None``."""
    try:
        from torchao.utils import TorchAOBaseTensor
    except ImportError:
        return None
    if not isinstance(w, TorchAOBaseTensor):
        return None
    scale = getattr(w, "scale", None)
    zp = getattr(w, "zero_point", None)
    s = _np(scale).reshape(-1) if scale is not None else np.zeros(0)
    z = _np(zp).reshape(-1) if zp is not None else np.zeros(0)
    return type(w).__name__, s, z


def from_torch_quantized(
    module: Any, input_shape: Sequence[int]
) -> tuple[Network, TorchQuantRecord]:
    """Read a torch.ao dynamic-quantized or torchao weight-only model (dequantized weights).

    * ``torch.ao.nn.quantized.dynamic.Linear``: ``weight()`` is a quantized tensor; the Dense
      weight is ``weight().dequantize()`` and the bias ``bias()`` (float). Per-tensor and
      per-channel schemes are recorded.
    * ``nn.Linear`` whose ``weight`` is a torchao tensor subclass (``Int8Tensor``,
      ``IntxUnpackedToInt8Tensor``, ...): ``weight.dequantize()``; requires torchao (the
      check is skipped when torchao is not installed).
    * plain ``nn.Linear``: read as is.

    Args:
        module: an ``nn.Sequential`` (possibly nested) as described in the module docstring.
        input_shape: shape of one input.

    Returns:
        ``(network, record)``.

    Raises:
        UnsupportedLayerError: on static quantized modules or other unsupported layers.
    """
    torch = _torch()
    nn = torch.nn
    qdyn = torch.ao.nn.quantized.dynamic
    qstatic = torch.ao.nn.quantized
    idx: list[int] = []
    sources: list[str] = []
    schemes: list[str] = []
    scales: list[FloatArray] = []
    zps: list[FloatArray] = []
    dyn: list[bool] = []

    def linear(i: int, m: Any) -> Dense | None:
        with torch.no_grad():
            if isinstance(m, qdyn.Linear):
                w = m.weight()
                scheme, s, z = _qparams(w)
                idx.append(i)
                sources.append("torch.ao.dynamic")
                schemes.append(scheme)
                scales.append(s)
                zps.append(z)
                dyn.append(True)
                bias = m.bias()
                W = _np(w.dequantize())
                b = _np(bias) if bias is not None else np.zeros(W.shape[0])
                return Dense(W, b)
            if isinstance(m, (qstatic.Linear, qstatic.Quantize, qstatic.DeQuantize)):
                raise UnsupportedLayerError(
                    f"{type(m).__module__}.{type(m).__name__}: static quantized torch modules "
                    "are read through their QDQ ONNX export (from_onnx)"
                )
            if not isinstance(m, nn.Linear):
                return None
            w = m.weight
            ao = _torchao_weight(w)
            if ao is not None:
                idx.append(i)
                sources.append(f"torchao:{ao[0]}")
                schemes.append("")
                scales.append(ao[1])
                zps.append(ao[2])
                dyn.append(getattr(w, "act_quant_kwargs", None) is not None)
                W = _np(w.dequantize())
            else:
                W = _np(w)
            b = _np(m.bias) if m.bias is not None else np.zeros(W.shape[0])
            return Dense(W, b)

    net = _convert(module, input_shape, linear)
    for arr in (*scales, *zps):
        arr.setflags(write=False)
    rec = TorchQuantRecord(
        layers=tuple(idx),
        sources=tuple(sources),
        qschemes=tuple(schemes),
        scales=tuple(scales),
        zero_points=tuple(zps),
        dynamic_activation=tuple(dyn),
        parameters=net.n_parameters,
    )
    return net, rec


__all__ = [
    "TorchPruneRecord",
    "TorchQuantRecord",
    "from_torch_pruned",
    "from_torch_quantized",
]
