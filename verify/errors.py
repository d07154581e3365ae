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
    ├── CertificateError(NncertError, ValueError)
    │   ├── CertificateSchemaError
    │   └── TransferError
    ├── OutputPathError(NncertError, ValueError)
    └── TimeLimitError(NncertError, TimeoutError)

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


class OutputPathError(NncertError, ValueError):
    """An output path is unusable: its directory is missing or not writable, it names a
    directory, or it would overwrite one of the inputs (checked before any work is done)."""


class TimeLimitError(NncertError, TimeoutError):
    """The wall-clock limit ran out before a result existed (e.g. while reading a huge input).

    Command lines report it as a timeout (``nncert verify`` exit 2, ``vnncomp`` result
    ``timeout``), not as an input error.
    """


__all__ = [
    "CertificateError",
    "CertificateSchemaError",
    "InvalidNetworkError",
    "InvalidOptionsError",
    "InvalidPropertyError",
    "NncertError",
    "OutputPathError",
    "SolverError",
    "SolverUnavailableError",
    "TimeLimitError",
    "TransferError",
    "UnsupportedLayerError",
]
