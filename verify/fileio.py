"""Safe file input and output shared by every command line and reader.

Three guards, each in one place:

* **Outputs never replace inputs, and are checked before any work.**
  :func:`check_output_file` and :func:`check_output_dir` refuse an output path that resolves to
  one of the inputs (same real path after symlinks, or the same file through a hard link), a
  path that is a directory, and a directory that is missing or not writable. Every command
  calls them right after parsing its arguments, so a bad output path costs nothing and never
  destroys a model or a property file.
* **Atomic writes respect the umask.** :func:`write_atomic` writes a temporary file in the
  target's directory and renames it over the target, so readers never see half a file. The
  temporary file is created with mode ``0o666`` and the process umask applied (``0o644`` with
  the usual umask ``022``), unlike :func:`tempfile.mkstemp`, whose ``0o600`` would hide
  reports from a CI uploader running as another user.
* **Decompression is capped and time-limited.** :func:`read_input` reads a plain or
  gzip-compressed file in 1 MiB chunks. A gzip stream that expands beyond
  :func:`max_decompressed_bytes` (default 256 MiB; environment variable
  ``NNCERT_MAX_DECOMPRESSED_BYTES``) stops with an error, so a small "gzip bomb" cannot
  exhaust memory, and a ``deadline`` (a :func:`time.monotonic` value) stops the read with
  :class:`~nncert.verify.errors.TimeLimitError`.

Examples:
    >>> import os, tempfile
    >>> d = tempfile.mkdtemp()
    >>> model = os.path.join(d, "net.onnx")
    >>> _ = open(model, "wb").write(b"...")
    >>> check_output_file(model, inputs=[model], what="result file")
    Traceback (most recent call last):
    ...
    nncert.verify.errors.OutputPathError: ...net.onnx: the result file would overwrite the input ...
"""

from __future__ import annotations

import gzip
import os
import secrets
import stat
import time
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any, BinaryIO

from nncert.verify.errors import (
    InvalidOptionsError,
    InvalidPropertyError,
    NncertError,
    OutputPathError,
    TimeLimitError,
)

#: environment variable that overrides :data:`DEFAULT_MAX_DECOMPRESSED_BYTES`
MAX_DECOMPRESSED_ENV = "NNCERT_MAX_DECOMPRESSED_BYTES"
#: largest decompressed size of a ``.gz`` input by default (256 MiB)
DEFAULT_MAX_DECOMPRESSED_BYTES = 256 * 2**20
#: read and decompress in pieces of this size
CHUNK_BYTES = 2**20

GZIP_MAGIC = b"\x1f\x8b"


def is_gzip(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a gzip file (by its first two bytes; ``False`` if unreadable)."""
    try:
        with open(path, "rb") as fh:
            return fh.read(2) == GZIP_MAGIC
    except OSError:
        return False


PathLike = str | os.PathLike[str]


# --------------------------------------------------------------------------------------------
# Output paths
# --------------------------------------------------------------------------------------------


def same_file(a: PathLike, b: PathLike) -> bool:
    """Whether ``a`` and ``b`` name the same file: equal real paths (symlinks resolved), or
    the same inode when both exist (hard links, case-insensitive file systems)."""
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist
        return False


def _size_text(n: int) -> str:
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size and n % size == 0:
            return f"{n // size} {unit}"
    return f"{n} bytes"


def _check_not_input(path: PathLike, inputs: Iterable[PathLike | None], what: str) -> None:
    for inp in inputs:
        if inp is None or not os.fspath(inp):
            continue
        if same_file(path, inp):
            same = "" if os.fspath(inp) == os.fspath(path) else f" {os.fspath(inp)}"
            raise OutputPathError(
                f"{os.fspath(path)}: the {what} would overwrite the input{same}; "
                "choose another path"
            )


def _writable_dir(directory: Path, path: PathLike, what: str) -> None:
    if not directory.exists():
        raise OutputPathError(
            f"{os.fspath(path)}: cannot write the {what}: directory {directory} does not exist"
        )
    if not directory.is_dir():
        raise OutputPathError(
            f"{os.fspath(path)}: cannot write the {what}: {directory} is not a directory"
        )
    if not os.access(directory, os.W_OK | os.X_OK):
        raise OutputPathError(
            f"{os.fspath(path)}: cannot write the {what}: directory {directory} is not writable"
        )


def check_output_file(
    path: PathLike, *, inputs: Iterable[PathLike | None] = (), what: str = "output"
) -> Path:
    """Check, before any work, that a file can be written at ``path`` without harm.

    Args:
        path: the output file.
        inputs: every file the command reads (``None`` entries are skipped).
        what: a name for messages (``"result file"``, ``"certificate"``).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        OutputPathError: ``path`` is empty or a directory, its directory is missing or not
            writable, or it resolves to one of ``inputs`` (one-line message naming both).
    """
    text = os.fspath(path)
    if not text:
        raise OutputPathError(f"empty path given for the {what}")
    p = Path(text)
    if p.is_dir():
        raise OutputPathError(f"{text}: is a directory; the {what} must be a file")
    _check_not_input(p, inputs, what)
    _writable_dir(Path(os.path.dirname(os.path.abspath(text))), text, what)
    return p


def check_output_dir(
    path: PathLike,
    *,
    inputs: Iterable[PathLike | None] = (),
    files: Iterable[str] = (),
    what: str = "output directory",
) -> Path:
    """Check, before any work, a directory that a command creates (if needed) and fills.

    The directory may be missing (it is created later, with its parents); then its nearest
    existing ancestor must be a writable directory.

    Args:
        path: the output directory.
        inputs: every file the command reads.
        files: names (relative to ``path``) the command writes; none may be an input.
        what: a name for messages.

    Raises:
        OutputPathError: ``path`` exists but is not a writable directory, cannot be created,
            or one of ``files`` inside it resolves to an input.
    """
    text = os.fspath(path)
    if not text:
        raise OutputPathError(f"empty path given for the {what}")
    p = Path(text)
    inputs = [i for i in inputs if i is not None]
    if p.exists():
        if not p.is_dir():
            raise OutputPathError(f"{text}: is not a directory; the {what} must be one")
        _writable_dir(p, text, what)
    else:
        ancestor = Path(os.path.abspath(text)).parent
        while not ancestor.exists() and ancestor != ancestor.parent:
            ancestor = ancestor.parent
        _writable_dir(ancestor, text, what)
    for name in files:
        _check_not_input(p / name, inputs, f"{what} entry {name}")
    return p


def load_npy(path: PathLike) -> Any:
    """A real-valued numeric array from a ``.npy`` file (never unpickled).

    Raises:
        ValueError: an empty or truncated file, an ``.npz`` archive, an object (pickled),
            complex or text array (the message does not name the file: callers do).
        OSError: the file cannot be read.
    """
    import numpy as np

    try:
        # memory-mapped first: a header declaring more data than the file holds is refused
        # here instead of allocating what it declares
        arr = np.load(os.fspath(path), allow_pickle=False, mmap_mode="r")
    except EOFError as err:
        raise ValueError("empty or truncated .npy file") from err
    except ValueError as err:
        if "Python objects" in str(err):  # an object array: it would need unpickling
            raise ValueError("an array of Python objects (pickled data is never loaded)") from err
        raise
    if not isinstance(arr, np.ndarray):  # np.load opens an .npz archive whatever its name
        close = getattr(arr, "close", None)
        if close is not None:
            close()
        raise ValueError("an .npz archive, not a single .npy array")
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"an array of {arr.dtype} values, not real numbers")
    return np.array(arr)


# --------------------------------------------------------------------------------------------
# Atomic writes
# --------------------------------------------------------------------------------------------


def _write_through(p: Path, payload: bytes) -> bool:
    """Write into an existing ``p`` that is not a regular file (``/dev/null``, a character
    device, a FIFO) instead of renaming a new file over it, which would replace the device or
    pipe by a regular file; ``False`` when ``p`` is a regular file or does not exist.

    Raises:
        OutputPathError: a FIFO without a reader (writing would block).
    """
    try:
        mode = os.stat(p).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return False
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return False
    flags = os.O_WRONLY | getattr(os, "O_CLOEXEC", 0)
    if stat.S_ISFIFO(mode):
        flags |= os.O_NONBLOCK
    try:
        fd = os.open(p, flags)
    except OSError as err:
        if stat.S_ISFIFO(mode):
            raise OutputPathError(f"{p}: a named pipe with no reader; nothing written") from err
        raise
    os.set_blocking(fd, True)
    with os.fdopen(fd, "wb") as fh:
        fh.write(payload)
    return True


def write_atomic(path: PathLike, data: str | bytes, *, encoding: str = "utf-8") -> None:
    """Write ``data`` to ``path`` atomically, with permissions ``0o666 & ~umask``.

    The data goes to a fresh temporary file in the same directory (created with
    ``O_CREAT | O_EXCL`` and mode ``0o666``, so the kernel applies the umask), which then
    replaces ``path`` with :func:`os.replace`. A crash leaves either the old file or the new
    one, never a mix; the temporary file is removed on errors. An existing ``path`` that is
    not a regular file (``/dev/null``, a device, a FIFO) is written into, never replaced.

    Raises:
        OSError: the directory is missing or not writable, the disk is full, ...
    """
    p = Path(os.fspath(path))
    payload = data.encode(encoding) if isinstance(data, str) else bytes(data)
    if _write_through(p, payload):
        return
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    flags |= getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = p.with_name(f".{p.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        try:
            fd = os.open(tmp, flags, 0o666)
            break
        except FileExistsError:
            continue
        except OSError as err:  # name the file asked for, not the temporary one
            raise OSError(err.errno, f"cannot write {p}: {err.strerror}") from err
    else:  # pragma: no cover - 100 random collisions
        raise FileExistsError(f"{p}: cannot create a temporary file next to it")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
        os.replace(tmp, p)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


# --------------------------------------------------------------------------------------------
# Capped, time-limited reading (plain or gzip)
# --------------------------------------------------------------------------------------------


def max_decompressed_bytes() -> int:
    """The decompression cap: ``$NNCERT_MAX_DECOMPRESSED_BYTES`` or 256 MiB.

    Raises:
        InvalidOptionsError: the variable is set but is not a positive integer.
    """
    raw = os.environ.get(MAX_DECOMPRESSED_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_DECOMPRESSED_BYTES
    try:
        value = int(raw.replace("_", ""))
    except ValueError:
        value = 0
    if value <= 0:
        raise InvalidOptionsError(
            f"{MAX_DECOMPRESSED_ENV}={raw!r} must be a positive integer (bytes)"
        )
    return value


def deadline_from(time_limit: float | None) -> float | None:
    """A :func:`time.monotonic` deadline ``time_limit`` seconds from now (``None``: none)."""
    return None if time_limit is None else time.monotonic() + float(time_limit)


def check_deadline(deadline: float | None, path: PathLike, doing: str = "reading") -> None:
    """Raise :class:`TimeLimitError` when ``deadline`` has passed."""
    if deadline is not None and time.monotonic() > deadline:
        raise TimeLimitError(f"{os.fspath(path)}: time limit reached while {doing} the file")


def read_input(
    path: PathLike,
    *,
    deadline: float | None = None,
    max_bytes: int | None = None,
    error: type[NncertError] = InvalidPropertyError,
) -> tuple[bytes, bool]:
    """Read a file, decompressing it when it starts with the gzip magic bytes.

    Args:
        path: the file.
        deadline: a :func:`time.monotonic` value after which reading stops.
        max_bytes: cap on the decompressed size (default :func:`max_decompressed_bytes`);
            plain files are not capped.
        error: the exception class for unreadable or oversized files (the reader's own:
            :class:`InvalidPropertyError` for properties, ``InvalidNetworkError`` for models).

    Returns:
        ``(data, was_gzip)``.

    Raises:
        error: the file cannot be read, is not valid gzip, or expands beyond the cap.
        TimeLimitError: ``deadline`` passed while reading.
    """
    name = os.fspath(path)
    cap = max_decompressed_bytes() if max_bytes is None else int(max_bytes)
    check_deadline(deadline, name)
    try:
        with open(name, "rb") as fh:
            head = fh.read(2)
            fh.seek(0)
            if head != GZIP_MAGIC:
                return _read_plain(fh, name, deadline), False
            return _read_gzip(fh, name, deadline, cap, error), True
    except NncertError:  # TimeLimitError is an OSError too: keep it
        raise
    except OSError as exc:
        raise error(f"{name}: cannot read file ({exc.strerror or exc})") from exc


def _read_plain(fh: BinaryIO, name: str, deadline: float | None) -> bytes:
    buf = bytearray()
    while True:
        chunk = fh.read(16 * CHUNK_BYTES)
        if not chunk:
            return bytes(buf)
        buf += chunk
        check_deadline(deadline, name)


def _read_gzip(
    fh: BinaryIO, name: str, deadline: float | None, cap: int, error: type[NncertError]
) -> bytes:
    buf = bytearray()
    try:
        with gzip.GzipFile(fileobj=fh, mode="rb") as gz:
            while True:
                # GzipFile.read(n) decompresses at most n bytes: memory stays bounded
                chunk = gz.read(CHUNK_BYTES)
                if not chunk:
                    return bytes(buf)
                buf += chunk
                if len(buf) > cap:
                    raise error(
                        f"{name}: decompresses to more than {_size_text(cap)}, the limit "
                        f"(set {MAX_DECOMPRESSED_ENV} to a larger number of bytes to allow it)"
                    )
                check_deadline(deadline, name, "decompressing")
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise error(f"{name}: invalid gzip data ({exc})") from exc


__all__ = [
    "CHUNK_BYTES",
    "DEFAULT_MAX_DECOMPRESSED_BYTES",
    "MAX_DECOMPRESSED_ENV",
    "check_deadline",
    "check_output_dir",
    "check_output_file",
    "deadline_from",
    "is_gzip",
    "load_npy",
    "max_decompressed_bytes",
    "read_input",
    "same_file",
    "write_atomic",
]
