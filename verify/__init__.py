"""nncert.verify: the network IR, specifications, bounds and the verification front door.

Public façade::

    from nncert.verify import verify, from_onnx, load_vnnlib, robustness_property
    from nncert.verify import load_example, list_examples   # the bundled example networks

Heavy dependencies (onnx, torch, highspy, pyomo, dimod) are imported only by the functions that
need them, so ``import nncert.verify`` stays fast. Names below that live in submodules with heavy
imports are resolved lazily on first access.
"""

from __future__ import annotations

import importlib
from typing import Any

from nncert.verify.errors import (
    CertificateError,
    InvalidNetworkError,
    InvalidOptionsError,
    InvalidPropertyError,
    NncertError,
    SolverError,
    SolverUnavailableError,
    UnsupportedLayerError,
)
from nncert.verify.network import (
    Dense,
    HardTanh,
    Identity,
    LeakyReLU,
    Network,
    RectifiedPower,
    ReLU,
    Sigmoid,
    Tanh,
)
from nncert.verify.spec import (
    Box,
    MixedProperty,
    PolynomialProperty,
    Property,
    UnsafeCase,
    robustness_property,
)

# name -> module that defines it (imported on first attribute access)
_LAZY: dict[str, str] = {
    "from_onnx": "nncert.verify.importers",
    "from_torch": "nncert.verify.importers",
    "load_vnnlib": "nncert.verify.vnnlib",
    "load_example": "nncert.verify.examples",
    "list_examples": "nncert.verify.examples",
    "output_bounds": "nncert.verify.bounds",
    "interval_bounds": "nncert.verify.bounds",
    "crown_bounds": "nncert.verify.bounds",
    "LayerBounds": "nncert.verify.bounds",
    "Interval": "nncert.verify.bounds",
    "verify": "nncert.verify.pipeline",
    "Verdict": "nncert.verify.result",
    "VerificationResult": "nncert.verify.result",
    "VerifyOptions": "nncert.verify.options",
    "register_method": "nncert.verify.registry",
    "method_names": "nncert.verify.registry",
    "get_method": "nncert.verify.registry",
    "CaseOutcome": "nncert.verify.result",
    "CaseContext": "nncert.verify.result",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'nncert.verify' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "Box",
    "CertificateError",
    "Dense",
    "HardTanh",
    "Identity",
    "InvalidNetworkError",
    "InvalidOptionsError",
    "InvalidPropertyError",
    "LeakyReLU",
    "MixedProperty",
    "Network",
    "NncertError",
    "PolynomialProperty",
    "Property",
    "ReLU",
    "RectifiedPower",
    "Sigmoid",
    "SolverError",
    "SolverUnavailableError",
    "Tanh",
    "UnsafeCase",
    "UnsupportedLayerError",
    "robustness_property",
    *_LAZY,
]
