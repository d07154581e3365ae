"""nncert.verify.fileio: output-path checks, umask-respecting atomic writes, capped and
time-limited decompression (issue 17)."""

from __future__ import annotations

import gzip
import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from io_helpers import gzip_bomb

from nncert.verify.errors import (
    InvalidNetworkError,
    InvalidOptionsError,
    InvalidPropertyError,
    OutputPathError,
    TimeLimitError,
)
from nncert.verify.fileio import (
    MAX_DECOMPRESSED_ENV,
    check_output_dir,
    check_output_file,
    load_npy,
    max_decompressed_bytes,
    read_input,
    same_file,
    write_atomic,
)


@pytest.fixture
def umask() -> Iterator[int]:
    """Run with umask 022 (restored afterwards)."""
    old = os.umask(0o022)
    try:
        yield 0o022
    finally:
        os.umask(old)


# --------------------------------------------------------------------------------------------
# outputs never replace inputs
# --------------------------------------------------------------------------------------------


def test_same_file_sees_symlinks_and_hard_links(tmp_path: Path) -> None:
    model = tmp_path / "m.onnx"
    model.write_bytes(b"model")
    link = tmp_path / "link.txt"
    link.symlink_to(model)
    hard = tmp_path / "hard.txt"
    os.link(model, hard)
    sub = tmp_path / "d"
    sub.mkdir()
    assert same_file(model, model)
    assert same_file(link, model)
    assert same_file(hard, model)
    assert same_file(sub / ".." / "m.onnx", model)
    assert not same_file(tmp_path / "other.txt", model)


@pytest.mark.parametrize("how", ["same", "relative", "symlink", "hard-link"])
def test_output_resolving_to_an_input_is_refused(tmp_path: Path, how: str) -> None:
    model = tmp_path / "m.onnx"
    model.write_bytes(b"model")
    out = {
        "same": model,
        "relative": tmp_path / "." / "m.onnx",
        "symlink": tmp_path / "res.txt",
        "hard-link": tmp_path / "res.txt",
    }[how]
    if how == "symlink":
        out.symlink_to(model)
    if how == "hard-link":
        os.link(model, out)
    with pytest.raises(OutputPathError, match="would overwrite the input") as info:
        check_output_file(out, inputs=[None, tmp_path / "spec.vnnlib", model], what="result")
    assert str(info.value).startswith(str(out)) and "\n" not in str(info.value)
    assert model.read_bytes() == b"model"


def test_output_directory_problems(tmp_path: Path) -> None:
    with pytest.raises(OutputPathError, match=r"directory .*nope does not exist"):
        check_output_file(tmp_path / "nope" / "res.txt", what="result file")
    with pytest.raises(OutputPathError, match="is a directory"):
        check_output_file(tmp_path, what="result file")
    (tmp_path / "f").write_text("x")
    with pytest.raises(OutputPathError, match="is not a directory"):
        check_output_file(tmp_path / "f" / "res.txt")
    with pytest.raises(OutputPathError, match="empty path"):
        check_output_file("")
    assert check_output_file(tmp_path / "ok.txt") == tmp_path / "ok.txt"


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into read-only directories")
def test_read_only_directory_is_refused(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        with pytest.raises(OutputPathError, match="not writable"):
            check_output_file(ro / "res.txt")
    finally:
        ro.chmod(0o755)


def test_check_output_dir(tmp_path: Path) -> None:
    inp = tmp_path / "suite" / "results.csv"
    inp.parent.mkdir()
    inp.write_text("keep me")
    # missing directories are fine when an ancestor is writable
    assert check_output_dir(tmp_path / "a" / "b", inputs=[inp], files=["results.csv"])
    with pytest.raises(OutputPathError, match=r"results\.csv would overwrite the input"):
        check_output_dir(tmp_path / "suite", inputs=[inp], files=["results.csv"])
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputPathError, match="is not a directory"):
        check_output_dir(tmp_path / "file")


# --------------------------------------------------------------------------------------------
# atomic writes respect the umask
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o002])
def test_write_atomic_mode_follows_umask(tmp_path: Path, mask: int) -> None:
    old = os.umask(mask)
    try:
        write_atomic(tmp_path / "a.txt", "text")
        write_atomic(tmp_path / "b.bin", b"\x00\x01")
    finally:
        os.umask(old)
    for name in ("a.txt", "b.bin"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o666 & ~mask
    assert (tmp_path / "a.txt").read_text() == "text"
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.bin"]  # no leftovers


def test_write_atomic_replaces_and_cleans_up(tmp_path: Path, umask: int) -> None:
    p = tmp_path / "r.txt"
    p.write_text("old")
    p.chmod(0o600)
    write_atomic(p, "new")
    assert p.read_text() == "new"
    assert stat.S_IMODE(p.stat().st_mode) == 0o644
    with pytest.raises(OSError):
        write_atomic(tmp_path / "missing" / "x.txt", "x")
    assert sorted(q.name for q in tmp_path.iterdir()) == ["r.txt"]


def test_every_writer_uses_the_umask(tmp_path: Path, umask: int) -> None:
    """The library writers that used mkstemp (mode 0600) now give 0644."""
    import numpy as np

    from nncert.verify.cache import CertificateCache
    from nncert.verify.cache import write_atomic as cache_write
    from nncert.verify.spec import robustness_property
    from nncert.verify.vnncomp import write_result_file, write_results_csv
    from nncert.verify.vnnlib import write_vnnlib

    cache_write(tmp_path / "sub" / "index.json", "{}")
    write_result_file(tmp_path / "res.txt", "unsat")
    write_results_csv(tmp_path / "results.csv", [{"result": "sat"}])
    prop = robustness_property(np.array([0.5, 0.5]), 0.1, 0, 2)
    write_vnnlib(prop, tmp_path / "p.vnnlib.gz")
    cache = CertificateCache(tmp_path / "cache")
    from nncert.certificates import certificate_from_result
    from nncert.verify.network import Dense, Network
    from nncert.verify.pipeline import verify

    net = Network((Dense(np.eye(2), np.array([1.0, 0.0])),), input_shape=(2,))
    cert = certificate_from_result(net, prop, verify(net, prop, method="crown"))
    path = cache.put("0" * 64, cert)
    for p in (
        tmp_path / "sub" / "index.json",
        tmp_path / "res.txt",
        tmp_path / "results.csv",
        tmp_path / "p.vnnlib.gz",
        path,
        tmp_path / "cache" / "index.json",
    ):
        assert stat.S_IMODE(p.stat().st_mode) == 0o644, p


# --------------------------------------------------------------------------------------------
# capped, time-limited decompression
# --------------------------------------------------------------------------------------------


def test_write_atomic_writes_into_a_pipe_instead_of_replacing_it(tmp_path: Path) -> None:
    """An output path that is a named pipe (or a device such as /dev/null) is written into:
    renaming a new file over it replaced the pipe (and, as root, /dev/null) by a regular file.
    A pipe nobody reads is refused instead of blocking."""
    import threading

    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    with pytest.raises(OutputPathError, match="no reader"):
        write_atomic(fifo, "unsat\n")
    got: list[bytes] = []
    fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # a reader is present from now on
    try:
        writer = threading.Thread(target=write_atomic, args=(fifo, "unsat\n"))
        writer.start()
        writer.join(30)
        assert not writer.is_alive()
        got.append(os.read(fd, 100))
    finally:
        os.close(fd)
    assert got == [b"unsat\n"]
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.fifo"]  # no temporary left


def test_load_npy_refuses_what_is_not_a_real_array(tmp_path: Path) -> None:
    """Empty files, .npz archives under a .npy name, complex or pickled arrays: a ValueError
    (callers name the file; the CLI turns it into exit 3), never an internal error."""
    import numpy as np

    empty = tmp_path / "empty.npy"
    empty.write_bytes(b"")
    npz = tmp_path / "archive.npy"
    with npz.open("wb") as fh:
        np.savez(fh, a=np.zeros(3))
    cplx = tmp_path / "complex.npy"
    np.save(cplx, np.array([1 + 2j]))
    pickled = tmp_path / "object.npy"
    np.save(pickled, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    for path, fragment in (
        (empty, "empty"),
        (npz, ".npz archive"),
        (cplx, "complex"),
        (pickled, "pickle"),
    ):
        with pytest.raises(ValueError, match=fragment):
            load_npy(path)
    good = tmp_path / "x.npy"
    np.save(good, np.arange(4.0))
    assert load_npy(good).tolist() == [0.0, 1.0, 2.0, 3.0]


def test_cap_default_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MAX_DECOMPRESSED_ENV, raising=False)
    assert max_decompressed_bytes() == 256 * 2**20
    monkeypatch.setenv(MAX_DECOMPRESSED_ENV, "1048576")
    assert max_decompressed_bytes() == 2**20
    monkeypatch.setenv(MAX_DECOMPRESSED_ENV, "lots")
    with pytest.raises(InvalidOptionsError, match=MAX_DECOMPRESSED_ENV):
        max_decompressed_bytes()


def test_gzip_bomb_stops_at_the_cap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bomb = gzip_bomb(tmp_path / "bomb.vnnlib.gz", expanded_mib=64)
    assert bomb.stat().st_size < 2**20
    monkeypatch.setenv(MAX_DECOMPRESSED_ENV, str(4 * 2**20))
    with pytest.raises(InvalidPropertyError, match="decompresses to more than 4 MiB") as info:
        read_input(bomb)
    assert str(info.value).startswith(str(bomb)) and MAX_DECOMPRESSED_ENV in str(info.value)
    with pytest.raises(InvalidNetworkError, match="more than 4 MiB"):
        read_input(bomb, error=InvalidNetworkError)
    # within the cap it reads (multi-member gzip included)
    data, was_gzip = read_input(bomb, max_bytes=64 * 2**20)
    assert was_gzip and len(data) == 64 * 2**20


def test_plain_and_bad_gzip(tmp_path: Path) -> None:
    plain = tmp_path / "p.txt"
    plain.write_bytes(b"hello")
    assert read_input(plain) == (b"hello", False)
    good = tmp_path / "g.gz"
    good.write_bytes(gzip.compress(b"hello"))
    assert read_input(good) == (b"hello", True)
    bad = tmp_path / "b.gz"
    bad.write_bytes(gzip.compress(b"hello" * 100)[:-8])
    with pytest.raises(InvalidPropertyError, match="invalid gzip data"):
        read_input(bad)
    with pytest.raises(InvalidPropertyError, match="cannot read file"):
        read_input(tmp_path / "missing.gz")


def test_deadline_stops_decompression(tmp_path: Path) -> None:
    bomb = gzip_bomb(tmp_path / "bomb.gz", expanded_mib=8)
    with pytest.raises(TimeLimitError, match="time limit reached while"):
        read_input(bomb, deadline=time.monotonic() - 1.0)
    assert isinstance(TimeLimitError("x"), TimeoutError)
