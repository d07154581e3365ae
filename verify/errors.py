"""The nncert exception hierarchy, shared by every subpackage.

Only malfunctions and bad input raise. "Unknown", "time limit" and "infeasible" are *results*
(`Verdict.UNKNOWN`, `SolveStatus`), never exceptions.

Each exception also inherits the matching builtin, so ``except ValueError`` keeps working for
callers that do not know nncert's types::

    NncertError(Exception)
    ├── InvalidNetworkError(NncertError, ValueError)
    │   └── UnsupportedLayerError
    ├── InvalidPropertyError(NncertError, ValueError)
    ├── InvalidOptionsError(NncertError, TypeError)
    ├── SolverUnavailableError(NncertError, ImportError)
    ├── SolverError(NncertError, RuntimeError)
    └── CertificateError(NncertError, ValueError)
        ├── CertificateSchemaError
        └── TransferError

Messages are one line, name the file or argument, and say what is wrong.
"""

from __future__ import annotations


class NncertError(Exception):
    """Base class of every error nncert raises on purpose."""


class InvalidNetworkError(NncertError, ValueError):
    """A network (file, module or IR) is malformed: bad shapes, NaN weights, cycles, ..."""


class UnsupportedLayerError(InvalidNetworkError):
    """A layer or ONNX operator that the IR cannot represent."""


class InvalidPropertyError(NncertError, ValueError):
    """A specification (VNN-LIB file, box, robustness property) is malformed or inconsistent."""


class InvalidOptionsError(NncertError, TypeError):
    """An option name or value is not accepted."""


class SolverUnavailableError(NncertError, ImportError):
    """A requested solver backend is not installed; the message names the extra to install."""


class SolverError(NncertError, RuntimeError):
    """A solver backend malfunctioned (not: infeasible, unbounded or timed out)."""


class CertificateError(NncertError, ValueError):
    """A certificate is unreadable or inconsistent."""


class CertificateSchemaError(CertificateError):
    """A certificate does not follow the shipped JSON schema."""


class TransferError(CertificateError):
    """A certificate cannot be transferred between the two given networks."""


__all__ = [
    "CertificateError",
    "CertificateSchemaError",
    "InvalidNetworkError",
    "InvalidOptionsError",
    "InvalidPropertyError",
    "NncertError",
    "SolverError",
    "SolverUnavailableError",
    "TransferError",
    "UnsupportedLayerError",
]
