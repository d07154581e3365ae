"""A content-addressed certificate cache for CI runs (ECOSYSTEM.md section 5.6).

Key: ``sha256(network fingerprint, property fingerprint, config hash)`` where the config hash
covers the tool version and the verification options (see :func:`config_hash`). A hit is
only *served* after the cached certificate has been re-checked against the network with
:func:`nncert.certificates.check` (cheap), so a corrupted or forged entry costs a re-run,
never a wrong verdict.

Layout of the cache directory::

    <dir>/certs/<key>.json   one certificate per key (nncert.certificates JSON format)
    <dir>/index.json         {"schema_version": [1, 0],
                              "entries": {<key>: {"verdict", "property", "time", "stored"}},
                              "properties": {<property id>: {"key", "verdict", "updated"}}}
    <dir>/.lock              advisory lock (``fcntl.flock``) serializing index updates

Every file is written atomically (a temporary file in the same directory, then
``os.replace``), so a killed CI job never leaves a half-written entry, and concurrent writers
(``--jobs``, parallel CI steps sharing a cache) take the lock around read-modify-write of the
index. The ``properties`` map is a small lock file in the spirit of ``dvc.lock``: the last
verdict per property id, which ``nncert certify`` uses for regression detection when the
previous ``report.json`` is gone. In GitHub Actions, keep ``<dir>`` with ``actions/cache``.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import logging
import os
from collections.abc import Iterator, Mapping
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

import nncert.verify.fileio as fileio
from nncert.certificates import load_certificate, save_certificate
from nncert.verify.errors import CertificateError

logger = logging.getLogger(__name__)

#: version of ``index.json``
INDEX_VERSION: tuple[int, int] = (1, 0)

#: option fields that do not change what a certificate proves (left out of the config hash)
_VOLATILE_OPTIONS: frozenset[str] = frozenset({"time_limit", "jobs"})


def tool_version() -> str:
    """The installed nncert version (``"unknown"`` when not installed)."""
    try:
        from importlib.metadata import version

        return version("nncert")
    except Exception:  # pragma: no cover - not installed
        return "unknown"


def config_hash(options: Any, *, extra: Mapping[str, Any] | None = None) -> str:
    """SHA-256 of the tool version and the options that shape a verdict.

    ``time_limit`` and ``jobs`` are excluded: a verdict reached within a budget stays valid for
    any budget, and only definitive verdicts are cached.

    Args:
        options: a :class:`~nncert.verify.options.VerifyOptions` (or any dataclass/mapping).
        extra: further JSON-safe settings to include.
    """
    if is_dataclass(options) and not isinstance(options, type):
        values: dict[str, Any] = asdict(options)
    else:
        values = dict(options or {})
    doc = {
        "tool": tool_version(),
        "options": {k: v for k, v in sorted(values.items()) if k not in _VOLATILE_OPTIONS},
        "extra": dict(extra or {}),
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()


def cache_key(network_fingerprint: str, property_fingerprint: str, config: str) -> str:
    """The cache key of one (network, property, configuration) triple (hex SHA-256)."""
    text = f"nncert-cache-v1\n{network_fingerprint}\n{property_fingerprint}\n{config}\n"
    return hashlib.sha256(text.encode()).hexdigest()


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (creating missing parent directories).

    See :func:`nncert.verify.fileio.write_atomic` (permissions ``0o666 & ~umask``).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fileio.write_atomic(path, text)


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


class CertificateCache:
    """A directory of certificates keyed by :func:`cache_key`.

    Args:
        directory: the cache directory (created when missing).

    Examples:
        >>> import tempfile
        >>> cache = CertificateCache(tempfile.mkdtemp())
        >>> cache.get("0" * 64) is None
        True
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self.certs = self.directory / "certs"
        self.certs.mkdir(parents=True, exist_ok=True)
        self.index_path = self.directory / "index.json"
        self.lock_path = self.directory / ".lock"

    # -- locking ----------------------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the cache's advisory lock (a no-op where ``fcntl`` is unavailable)."""
        with open(self.lock_path, "a+b") as fh:
            try:
                import fcntl
            except ImportError:  # pragma: no cover - Windows
                yield
                return
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    # -- index ------------------------------------------------------------------------------
    def read_index(self) -> dict[str, Any]:
        """The index (an empty one when missing or unreadable)."""
        empty: dict[str, Any] = {
            "schema_version": list(INDEX_VERSION),
            "entries": {},
            "properties": {},
        }
        try:
            doc = json.loads(self.index_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return empty
        if not isinstance(doc, dict) or tuple(doc.get("schema_version", ()))[:1] != (1,):
            return empty
        for key in ("entries", "properties"):
            if not isinstance(doc.get(key), dict):
                doc[key] = {}
        return doc

    def _update_index(self, fn: Any) -> None:
        with self.lock():
            doc = self.read_index()
            fn(doc)
            write_atomic(self.index_path, json.dumps(doc, sort_keys=True, allow_nan=False))

    def path(self, key: str) -> Path:
        """Where the certificate of ``key`` is stored."""
        if not (len(key) == 64 and all(c in "0123456789abcdef" for c in key)):
            raise ValueError(f"cache key {key!r} is not a hex SHA-256")
        return self.certs / f"{key}.json"

    # -- get / put --------------------------------------------------------------------------
    def get(self, key: str) -> Any | None:
        """The cached certificate for ``key``, or ``None`` (missing or unreadable).

        The certificate is *not* checked here; callers re-check it against the network with
        :func:`nncert.certificates.check` before trusting it.
        """
        p = self.path(key)
        if not p.is_file():
            return None

        try:
            return load_certificate(p)
        except CertificateError as err:
            logger.warning("ignoring unreadable cache entry %s: %s", p.name, err)
            return None

    def put(self, key: str, certificate: Any, *, meta: Mapping[str, Any] | None = None) -> Path:
        """Store ``certificate`` under ``key`` (atomically) and index it; returns its path."""

        p = self.path(key)
        save_certificate(certificate, p)  # atomic
        verdict = getattr(getattr(certificate, "verdict", None), "value", None)
        entry = {"verdict": verdict, "stored": _now(), **dict(meta or {})}

        def update(doc: dict[str, Any]) -> None:
            doc["entries"][key] = entry

        self._update_index(update)
        return p

    def recorded_time(self, key: str) -> float | None:
        """Seconds the verification behind ``key``'s certificate took, as recorded by
        :meth:`put` (``None``: not recorded, or the certificate came from a transfer)."""
        entry = self.read_index()["entries"].get(key)
        if not isinstance(entry, dict) or entry.get("transferred"):
            return None
        t = entry.get("time")
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not t >= 0:
            return None
        return float(t)

    def discard(self, key: str) -> None:
        """Remove an entry (e.g. one whose certificate failed the re-check)."""
        self.path(key).unlink(missing_ok=True)

        def update(doc: dict[str, Any]) -> None:
            doc["entries"].pop(key, None)

        self._update_index(update)

    # -- per-property verdicts (for regression detection) -----------------------------------
    def record_verdicts(self, verdicts: Mapping[str, tuple[str, str]]) -> None:
        """Remember ``{property id: (key, verdict)}`` as the latest verdicts."""
        stamp = _now()

        def update(doc: dict[str, Any]) -> None:
            for pid, (key, verdict) in verdicts.items():
                doc["properties"][pid] = {"key": key, "verdict": verdict, "updated": stamp}

        self._update_index(update)

    def previous_verdicts(self) -> dict[str, str]:
        """``{property id: verdict}`` recorded by the last :meth:`record_verdicts`."""
        props = self.read_index()["properties"]
        return {
            str(pid): str(v["verdict"])
            for pid, v in props.items()
            if isinstance(v, dict) and "verdict" in v
        }

    def __len__(self) -> int:
        return sum(1 for _ in self.certs.glob("*.json"))


__all__ = [
    "INDEX_VERSION",
    "CertificateCache",
    "cache_key",
    "config_hash",
    "tool_version",
    "write_atomic",
]
