"""nncert.certificates: evidence, serialization, independent checking and transfer.

Public façade::

    from nncert.certificates import (
        certificate_from_result, save_certificate, load_certificate, check, transfer,
    )

A :class:`Certificate` records a verdict about one property of one network (by fingerprint)
with the evidence that supports it; :func:`check` re-validates it against the network with a
small trusted base; :func:`transfer` carries it to a compressed (or otherwise modified) network
using sound difference bounds (FORMULATIONS.md section 11). Importing this package does not
import torch, onnx or any solver.
"""

from __future__ import annotations

from nncert.certificates.build import certificate_from_result
from nncert.certificates.check import CheckReport, check
from nncert.certificates.diff_bounds import DiffBounds, difference_bounds, difference_network
from nncert.certificates.model import (
    SCHEMA_VERSION,
    BabCase,
    BabEvidence,
    BoundEvidence,
    Certificate,
    CounterexampleEvidence,
    MilpCase,
    MilpEvidence,
    NetworkRef,
    NoEvidence,
    Provenance,
    TransferEvidence,
    property_fingerprint,
)
from nncert.certificates.serialize import (
    from_json,
    load_certificate,
    save_certificate,
    to_json,
)
from nncert.certificates.transfer import TransferResult, transfer
from nncert.verify.errors import CertificateError, CertificateSchemaError, TransferError

__all__ = [
    "SCHEMA_VERSION",
    "BabCase",
    "BabEvidence",
    "BoundEvidence",
    "Certificate",
    "CertificateError",
    "CertificateSchemaError",
    "CheckReport",
    "CounterexampleEvidence",
    "DiffBounds",
    "MilpCase",
    "MilpEvidence",
    "NetworkRef",
    "NoEvidence",
    "Provenance",
    "TransferError",
    "TransferEvidence",
    "TransferResult",
    "certificate_from_result",
    "check",
    "difference_bounds",
    "difference_network",
    "from_json",
    "load_certificate",
    "property_fingerprint",
    "save_certificate",
    "to_json",
    "transfer",
]
