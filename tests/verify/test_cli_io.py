"""Command-line input/output hardening (issue 17): outputs never overwrite inputs, output paths
are checked before any solving, capped and time-limited decompression, ``.onnx.gz`` models,
input errors exit 3, ``bench`` exits non-zero on errors, and written files respect the umask.

Most tests run the real ``nncert`` console script on real ONNX files written with
``onnx.helper`` (see ``io_helpers``).
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from io_helpers import (
    SPEC_HEAD,
    gzip_bomb,
    gzip_repeated,
    nncert,
    spec_text,
    write_net,
    write_spec,
)

from nncert.verify import cli, commands

pytest.importorskip("onnx")

FALSIFIABLE = spec_text(y_max=1.03)  # y(0, 0) = 1.0214 <= 1.03
VERIFIED = spec_text(y_max=1.0)


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    """``net.onnx`` and a falsifiable ``prop.vnnlib`` in ``tmp_path``."""
    return write_net(tmp_path / "net.onnx"), write_spec(tmp_path / "prop.vnnlib", FALSIFIABLE)


def _one_line_error(proc: subprocess.CompletedProcess[str], *fragments: str) -> str:
    err = proc.stderr.strip()
    assert err.count("\n") == 0, err
    assert "Traceback" not in err
    for f in fragments:
        assert f in err, err
    return err


def _snapshot(*paths: Path) -> list[bytes]:
    return [p.read_bytes() for p in paths]


# --------------------------------------------------------------------------------------------
# 1. outputs never overwrite inputs
# --------------------------------------------------------------------------------------------


def test_compress_refuses_to_overwrite_its_model(files: tuple[Path, Path]) -> None:
    model, _ = files
    before = _snapshot(model)
    r = nncert("compress", str(model), "--method", "prune", "-o", str(model))
    assert r.returncode == 3
    _one_line_error(r, str(model), "would overwrite the input")
    assert _snapshot(model) == before
    assert not model.with_name("net.onnx.nncert.json").exists()


@pytest.mark.parametrize("target", ["model", "spec", "symlink-to-model", "hard-link-to-spec"])
def test_vnncomp_refuses_result_file_resolving_to_an_input(
    files: tuple[Path, Path], tmp_path: Path, target: str
) -> None:
    model, spec = files
    result = {"model": model, "spec": spec}.get(target, tmp_path / "result.txt")
    if target == "symlink-to-model":
        result.symlink_to(model)
    if target == "hard-link-to-spec":
        os.link(spec, result)
    before = _snapshot(model, spec)
    r = nncert("vnncomp", str(model), str(spec), str(result), "60")
    assert r.returncode == 3
    _one_line_error(r, "result file would overwrite the input")
    assert _snapshot(model, spec) == before
    # a bad TIMEOUT used to write "error" into RESULT_FILE first: still refused, untouched
    r = nncert("vnncomp", str(model), str(spec), str(result), "soon")
    assert r.returncode == 3
    assert _snapshot(model, spec) == before


def test_verify_certificate_must_not_be_an_input(files: tuple[Path, Path]) -> None:
    model, spec = files
    before = _snapshot(model, spec)
    for target in (spec, model):
        r = nncert("verify", str(model), str(spec), "--certificate", str(target))
        assert r.returncode == 3
        _one_line_error(r, "certificate would overwrite the input")
    assert _snapshot(model, spec) == before


def test_transfer_certificate_must_not_be_an_input(
    files: tuple[Path, Path], tmp_path: Path
) -> None:
    model, spec = files
    cert = tmp_path / "cert.json"
    assert nncert("verify", str(model), str(spec), "--certificate", str(cert)).returncode == 1
    before = _snapshot(cert, model)
    for target in (cert, model):
        r = nncert(
            "transfer",
            str(cert),
            "--source",
            str(model),
            "--target",
            str(model),
            "--certificate",
            str(target),
        )
        assert r.returncode == 3
        _one_line_error(r, "would overwrite the input")
    assert _snapshot(cert, model) == before


def test_certify_reports_must_not_overwrite_the_manifest(
    files: tuple[Path, Path], tmp_path: Path
) -> None:
    model, spec = files
    manifest = tmp_path / "report.json"  # a TOML manifest under an unlucky name
    manifest.write_text(
        f'[[models]]\npath = "{model.name}"\nproperties = [{{ vnnlib = "{spec.name}" }}]\n'
    )
    before = _snapshot(manifest)
    r = nncert("certify", str(manifest), "--out", str(tmp_path), "--no-cache")
    assert r.returncode == 3
    _one_line_error(r, "report.json would overwrite the input")
    assert _snapshot(manifest) == before


def test_bench_outputs_must_not_overwrite_suite_files(
    files: tuple[Path, Path], tmp_path: Path
) -> None:
    model, spec = files
    suite = tmp_path / "suite"
    suite.mkdir()
    shutil.copy(model, suite / "net.onnx")
    shutil.copy(spec, suite / "summary.md")  # the property file is called summary.md
    (suite / "instances.csv").write_text("net.onnx,summary.md,10\n")
    before = _snapshot(suite / "summary.md")
    r = nncert("bench", str(suite / "instances.csv"), "--out", str(suite), "--quiet")
    assert r.returncode == 3
    _one_line_error(r, "summary.md would overwrite the input")
    assert _snapshot(suite / "summary.md") == before
    assert not (suite / "results.csv").exists()


def test_vnnlib_cli_assignments_must_not_overwrite_the_query(
    files: tuple[Path, Path], tmp_path: Path
) -> None:
    model, spec = files
    query = tmp_path / "X.pb"  # a VNN-LIB 1.0 query; sat assignments would go to DIR/X.pb
    shutil.copy(spec, query)
    exe = Path(sys.executable).with_name("nncert-vnnlib")
    r = subprocess.run(
        [
            str(exe),
            "verify",
            str(query),
            "--network",
            f"f={model}",
            "--serialise-assignments",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 1  # the VNN-LIB standard CLI's usage-error code
    assert "X.pb would overwrite the input" in r.stderr
    assert query.read_text() == FALSIFIABLE
    assert r.stdout == ""  # nothing was solved


# --------------------------------------------------------------------------------------------
# 3. output paths are checked before any solving
# --------------------------------------------------------------------------------------------


@pytest.fixture
def no_solving(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any verification attempt fail the test."""

    def boom(*args: object, **kwargs: object) -> None:
        raise AssertionError("verify() was called before the output path was checked")

    import importlib

    import nncert.verify.bench as bench
    import nncert.verify.ci as ci
    import nncert.verify.commands as commands
    import nncert.verify.pipeline as pipeline
    import nncert.verify.vnncomp_command as vnncomp_command

    # the sub-command modules bind ``verify`` when first imported (lazily, by the CLI): patch
    # their names too, after importing them, so that no module keeps ``boom`` after the test
    transfer = importlib.import_module("nncert.certificates.transfer")  # the package's
    # ``transfer`` attribute is the function of that name
    for module in (pipeline, ci, commands, vnncomp_command, bench, transfer):
        monkeypatch.setattr(module, "verify", boom)


@pytest.mark.usefixtures("no_solving")
def test_bad_output_paths_fail_before_solving(
    files: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model, spec = files
    missing = tmp_path / "no" / "such" / "dir"
    (tmp_path / "plain").write_text("a file, not a directory")
    manifest = tmp_path / "m.toml"
    manifest.write_text(
        '[[models]]\npath = "net.onnx"\nproperties = [{ vnnlib = "prop.vnnlib" }]\n'
    )
    cases = [
        (["vnncomp", str(model), str(spec), str(missing / "res.txt"), "60"], "does not exist"),
        (
            ["verify", str(model), str(spec), "--certificate", str(missing / "c.json")],
            "does not exist",
        ),
        (["verify", str(model), str(spec), "--certificate", str(tmp_path)], "is a directory"),
        (
            ["compress", str(model), "--method", "prune", "-o", str(missing / "o.onnx")],
            "does not exist",
        ),
        (
            ["certify", str(manifest), "--out", str(tmp_path / "plain" / "out")],
            "is not a directory",
        ),
        (["certify", str(manifest), "--out", str(tmp_path / "plain")], "is not a directory"),
        (
            ["bench", "random:0:1", "--out", str(tmp_path / "plain"), "--quiet"],
            "is not a directory",
        ),
    ]
    for argv, fragment in cases:
        assert cli.main(argv) == 3, argv
        err = capsys.readouterr().err.strip()
        assert fragment in err and "\n" not in err, (argv, err)
        assert "FileNotFoundError" not in err and "Traceback" not in err
    assert not any(p.name.startswith("res") for p in tmp_path.iterdir())


def test_vnncomp_missing_result_folder_subprocess(files: tuple[Path, Path], tmp_path: Path) -> None:
    model, spec = files
    r = nncert("vnncomp", str(model), str(spec), str(tmp_path / "nope" / "res.txt"), "60")
    assert r.returncode == 3
    _one_line_error(r, "res.txt: cannot write the result file: directory", "does not exist")


# --------------------------------------------------------------------------------------------
# 2. empty input boxes are input errors
# --------------------------------------------------------------------------------------------


def test_empty_input_box_is_exit_3_not_verified(files: tuple[Path, Path], tmp_path: Path) -> None:
    model, _ = files
    # falsifiable as intended (x1 in [0.4, 0.5]); the bounds were typed the wrong way round
    typo = write_spec(tmp_path / "typo.vnnlib", spec_text(x1_lo=0.5, x1_hi=0.4, y_max=1.03))
    r = nncert("verify", str(model), str(typo))
    assert r.returncode == 3
    _one_line_error(
        r,
        "typo.vnnlib: empty input box: X_1 has lower bound 0.5 (line 6) > upper bound 0.4 (line 7)",
    )
    res = tmp_path / "res.txt"
    r = nncert("vnncomp", str(model), str(typo), str(res), "30")
    assert r.returncode == 3 and res.read_text() == "error\n"


def test_empty_robustness_box_is_exit_3(files: tuple[Path, Path], tmp_path: Path) -> None:
    model, _ = files
    np.save(tmp_path / "x.npy", np.array([0.5, 0.5]))
    r = nncert(
        "verify",
        str(model),
        "--input",
        str(tmp_path / "x.npy"),
        "--label",
        "0",
        "--eps",
        "0.1",
        "--domain",
        "0.9",
        "0.8",
    )
    assert r.returncode == 3
    _one_line_error(r, "empty input box: X_0")


# --------------------------------------------------------------------------------------------
# 4. capped, time-limited decompression
# --------------------------------------------------------------------------------------------


def test_vnnlib_gzip_bomb_is_an_input_error(files: tuple[Path, Path], tmp_path: Path) -> None:
    model, _ = files
    bomb = gzip_bomb(tmp_path / "bomb.vnnlib.gz", expanded_mib=256)  # 256 MiB of spaces
    assert bomb.stat().st_size < 2**20
    env = {"NNCERT_MAX_DECOMPRESSED_BYTES": str(4 * 2**20)}
    r = nncert("verify", str(model), str(bomb), env=env)
    assert r.returncode == 3
    _one_line_error(r, "bomb.vnnlib.gz: decompresses to more than 4 MiB")
    res = tmp_path / "res.txt"
    r = nncert("vnncomp", str(model), str(bomb), str(res), "30", env=env)
    assert r.returncode == 3 and res.read_text() == "error\n"


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_decompression_memory_stays_bounded(tmp_path: Path) -> None:
    """1 GiB of expansion under a 4 MiB cap: the process never holds the expansion."""
    bomb = gzip_bomb(tmp_path / "bomb.vnnlib.gz", expanded_mib=1024)
    code = textwrap.dedent(
        f"""
        from nncert.verify.vnnlib import load_vnnlib
        from nncert.verify.errors import InvalidPropertyError
        try:
            load_vnnlib({str(bomb)!r})
        except InvalidPropertyError as err:
            print(str(err))
        # peak resident memory of this program (VmHWM; ru_maxrss would include the parent's
        # memory at fork time)
        status = open("/proc/self/status").read()
        print(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM")))
        """
    )
    r = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "NNCERT_MAX_DECOMPRESSED_BYTES": str(4 * 2**20)},
    )
    message, peak_kib = r.stdout.strip().splitlines()
    assert "decompresses to more than 4 MiB" in message
    assert int(peak_kib) < 300 * 1024  # the old reader held the full 1 GiB (and more)


def _huge_spec(tmp_path: Path) -> Path:
    """A valid property whose text is ~64 MiB (2.6 M identical asserts): reading it takes
    far longer than a second, decompressing it milliseconds, and it stays under the cap."""
    head = (spec_text(y_max=1.03)).encode()
    member = b"(assert (<= Y_0 100.0))\n" * 100_000
    return gzip_repeated(tmp_path / "huge.vnnlib.gz", member, copies=26, head=head)


def test_parsing_honours_the_timeout(files: tuple[Path, Path], tmp_path: Path) -> None:
    model, _ = files
    huge = _huge_spec(tmp_path)
    res = tmp_path / "res.txt"
    r = nncert("vnncomp", str(model), str(huge), str(res), "1")
    assert r.returncode == 0, r.stderr
    assert res.read_text() == "timeout\n"  # fully parsed, it is 'sat'
    r = nncert("verify", str(model), str(huge), "--timeout", "1")
    assert r.returncode == 2, r.stderr
    assert r.stdout.startswith("unknown (timeout: ") and "huge.vnnlib.gz" in r.stdout


def test_parsing_timeout_in_json_and_in_the_vnnlib_cli(
    files: tuple[Path, Path], tmp_path: Path
) -> None:
    model, _ = files
    huge = _huge_spec(tmp_path)
    r = nncert("verify", str(model), str(huge), "--timeout", "0.5", "--json")
    assert r.returncode == 2
    doc = json.loads(r.stdout)
    assert doc["verdict"] == "unknown" and doc["reason"] == "timeout"
    exe = Path(sys.executable).with_name("nncert-vnnlib")
    r = subprocess.run(
        [str(exe), "verify", str(huge), "--network", f"f={model}", "--timeout", "0.5"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0 and r.stdout == "timed-out\n"


def test_vnncomp_watchdog_writes_timeout_when_a_stage_overruns(
    files: tuple[Path, Path], tmp_path: Path
) -> None:
    """A stage that ignores its time limit (simulated: verify() sleeps) still yields a
    'timeout' result file and exit 0 around TIMEOUT."""
    model, spec = files
    res = tmp_path / "res.txt"
    code = (
        "import sys, time\n"
        "import nncert.verify.pipeline as pipeline\n"
        "pipeline.verify = lambda *a, **k: time.sleep(120)\n"
        "from nncert.verify.cli import main\n"
        f"sys.exit(main(['vnncomp', {str(model)!r}, {str(spec)!r}, {str(res)!r}, '2']))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert res.read_text() == "timeout\n"
    assert "overran TIMEOUT" in r.stderr


@pytest.mark.parametrize("json_out", [False, True])
def test_verify_watchdog_answers_timeout_when_a_stage_overruns(
    files: tuple[Path, Path], json_out: bool
) -> None:
    """``verify --timeout``: a stage that ignores its time limit (simulated: verify() sleeps;
    HiGHS's presolve did so for seconds) still gets the answer unknown (timeout), exit 2,
    around the time limit."""
    model, spec = files
    extra = ", '--json'" if json_out else ""
    code = (
        "import sys, time\n"
        "import nncert.verify.pipeline as pipeline\n"
        "pipeline.verify = lambda *a, **k: time.sleep(120)\n"
        "from nncert.verify.cli import main\n"
        f"sys.exit(main(['verify', {str(model)!r}, {str(spec)!r}, '--timeout', '2'{extra}]))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2, r.stderr
    if json_out:
        doc = json.loads(r.stdout)
        assert doc["verdict"] == "unknown" and doc["reason"] == "timeout"
        assert "time limit" in doc["note"]
    else:
        assert r.stdout.startswith("unknown (timeout: the time limit (--timeout) was reached")


def test_verify_watchdog_covers_reading_the_inputs(
    files: tuple[Path, Path], tmp_path: Path
) -> None:
    """A spec that never arrives (a named pipe nobody writes) is answered unknown (timeout)
    by ``verify --timeout`` (exit 2), like ``vnncomp`` does, instead of waiting forever."""
    model, _ = files
    fifo = tmp_path / "never.vnnlib"
    os.mkfifo(fifo)
    argv = [
        sys.executable,
        "-c",
        "import sys; from nncert.verify.cli import main; sys.exit(main())",
    ]
    r = subprocess.run(
        [*argv, "verify", str(model), str(fifo), "--timeout", "2"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2, r.stderr
    assert r.stdout.startswith("unknown (timeout")


def test_a_huge_timeout_starts_no_watchdog_thread(files: tuple[Path, Path], tmp_path: Path) -> None:
    """``--timeout 1e10`` (and vnncomp's TIMEOUT 1e18) raised OverflowError in the watchdog's
    timer thread; such a watchdog is never due, so it is not started."""
    model, spec = files
    argv = [
        sys.executable,
        "-c",
        "import sys; from nncert.verify.cli import main; sys.exit(main())",
    ]
    r = subprocess.run(
        [*argv, "verify", str(model), str(spec), "--timeout", "1e10"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert r.returncode in (0, 1, 2) and "Traceback" not in r.stderr, r.stderr
    out = tmp_path / "out.txt"
    r = subprocess.run(
        [*argv, "vnncomp", str(model), str(spec), str(out), "1e18"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    assert out.read_text().split()[0] in ("sat", "unsat", "timeout", "unknown")


def test_vnncomp_stopped_by_a_signal_writes_timeout(
    files: tuple[Path, Path], tmp_path: Path
) -> None:
    """A harness that stops run_instance with SIGTERM (its own time limit) still finds a
    result file: ``timeout`` (the run did not finish), and the exit status says terminated."""
    import signal
    import time as _time

    model, spec = files
    marker, out = tmp_path / "running", tmp_path / "out.txt"
    code = (
        "import pathlib, sys, time\n"
        "import nncert.verify.pipeline as pipeline\n"
        f"def slow(*a, **k):\n    pathlib.Path({str(marker)!r}).touch()\n    time.sleep(120)\n"
        "pipeline.verify = slow\n"
        "from nncert.verify.cli import main\n"
        f"sys.exit(main(['vnncomp', {str(model)!r}, {str(spec)!r}, {str(out)!r}, '100']))\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(600):  # the run is inside verify() once the marker exists
            if marker.exists() or proc.poll() is not None:
                break
            _time.sleep(0.1)
        assert marker.exists(), proc.stderr.read() if proc.stderr else ""
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM
    assert out.read_text() == "timeout\n"


def test_load_vnnlib_time_limit(tmp_path: Path) -> None:
    from nncert.verify.errors import TimeLimitError
    from nncert.verify.vnnlib import load_vnnlib

    with pytest.raises(TimeLimitError, match=r"huge\.vnnlib\.gz: time limit reached while"):
        load_vnnlib(_huge_spec(tmp_path), time_limit=0.2)


# --------------------------------------------------------------------------------------------
# 5. .onnx.gz models
# --------------------------------------------------------------------------------------------


def _gz(path: Path) -> Path:
    out = path.with_name(path.name + ".gz")
    out.write_bytes(gzip.compress(path.read_bytes()))
    return out


def test_onnx_gz_from_python(files: tuple[Path, Path]) -> None:
    from nncert.verify.importers import from_onnx, onnxruntime_forward

    model, _ = files
    net = from_onnx(_gz(model))
    assert net.name == "net" and net.fingerprint() == from_onnx(model).fingerprint()
    assert net.source is not None and net.source.endswith("net.onnx")
    x = np.array([[0.25, 0.9]])
    np.testing.assert_allclose(
        onnxruntime_forward(model.with_name("net.onnx.gz"), x), net.forward(x)
    )


def test_onnx_gz_on_the_command_line_replays_in_onnxruntime(
    files: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from nncert.verify.vnncomp import read_result_file, validate_witness
    from nncert.verify.vnnlib import load_vnnlib

    model, spec = files
    gz = _gz(model)
    r = nncert("verify", str(gz), str(spec), "--json", "--quiet")
    assert r.returncode == 1, r.stderr
    doc = json.loads(r.stdout)
    assert doc["verdict"] == "falsified"
    assert doc["counterexample"]["onnx_checked"] is True  # replayed in onnxruntime
    verified = write_spec(tmp_path / "v.vnnlib", VERIFIED)
    assert cli.main(["verify", str(gz), str(verified), "--quiet"]) == 0
    res = tmp_path / "res.txt"
    assert cli.main(["vnncomp", str(gz), str(spec), str(res), "30", "--quiet"]) == 0
    parsed = read_result_file(res)
    assert parsed.result == "sat" and parsed.x is not None and parsed.y is not None
    assert validate_witness(gz, load_vnnlib(spec), parsed.x, parsed.y, strict=True).ok
    cert = tmp_path / "c.json"
    assert cli.main(["verify", str(gz), str(spec), "--certificate", str(cert), "--quiet"]) == 1
    capsys.readouterr()
    assert cli.main(["check", str(cert), str(gz)]) == 0
    assert "onnxruntime" in capsys.readouterr().out


def test_onnx_gz_bomb_is_an_input_error(files: tuple[Path, Path], tmp_path: Path) -> None:
    _, spec = files
    bomb = gzip_bomb(tmp_path / "big.onnx.gz", expanded_mib=64, fill=b"\x00")
    r = nncert("verify", str(bomb), str(spec), env={"NNCERT_MAX_DECOMPRESSED_BYTES": "1048576"})
    assert r.returncode == 3
    _one_line_error(r, "big.onnx.gz: decompresses to more than 1 MiB")


# --------------------------------------------------------------------------------------------
# 6. exit codes
# --------------------------------------------------------------------------------------------


def test_unknown_example_is_an_input_error(files: tuple[Path, Path]) -> None:
    _, spec = files
    r = nncert("verify", "example:nosuch", str(spec))
    assert r.returncode == 3
    _one_line_error(r, "example:nosuch: unknown example; available: iris_relu")
    from nncert.verify.examples import example_path

    with pytest.raises(KeyError, match="unknown example"):  # still a KeyError in Python
        example_path("nosuch")


def _huge_input_model(path: Path) -> Path:
    import onnx
    from onnx import TensorProto, helper

    shape = [1, 10**6, 10**6]  # 10**12 elements per sample
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "huge",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    return path


def test_huge_declared_input_is_an_input_error(files: tuple[Path, Path], tmp_path: Path) -> None:
    from nncert.verify.errors import InvalidNetworkError
    from nncert.verify.importers import from_onnx

    _, spec = files
    huge = _huge_input_model(tmp_path / "huge.onnx")
    with pytest.raises(InvalidNetworkError, match=r"huge.onnx: input 'x' declares .*1000000000000"):
        from_onnx(huge)
    r = nncert("verify", str(huge), str(spec))
    assert r.returncode == 3
    _one_line_error(r, "huge.onnx: input 'x' declares shape", "1000000000000 elements")


def test_memory_error_is_an_input_error_not_internal(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], files: tuple[Path, Path]
) -> None:
    """Running out of memory while loading is the input's size, not a bug (mocked: a real
    MemoryError cannot be caused safely in a test)."""
    model, spec = files

    def too_big(*args: object, **kwargs: object) -> None:
        raise MemoryError("Unable to allocate 7.28 TiB")

    monkeypatch.setattr(commands, "load_model", too_big)
    assert cli.main(["verify", str(model), str(spec)]) == 3
    err = capsys.readouterr().err
    assert (
        err.startswith("nncert: error: out of memory (Unable to allocate") and err.count("\n") == 1
    )


def test_unknown_solver_fails_at_option_validation(files: tuple[Path, Path]) -> None:
    model, spec = files
    r = nncert("verify", str(model), str(spec), "--solver", "higs", "--method", "crown")
    assert r.returncode == 3
    _one_line_error(r, "solver='higs' is not a registered solver", "did you mean 'highs'?")
    r = nncert(
        "vnncomp", str(model), str(spec), str(spec.with_name("r.txt")), "9", "--solver", "cplx"
    )
    assert r.returncode == 3
    assert "did you mean 'pyomo:cplx'?" in r.stderr


def _bench_suite(tmp_path: Path, model: Path, rows: list[str]) -> Path:
    suite = tmp_path / "suite"
    suite.mkdir()
    shutil.copy(model, suite / "net.onnx")
    (suite / "ok.vnnlib").write_text(FALSIFIABLE)
    (suite / "typo.vnnlib").write_text(spec_text(x1_lo=0.5, x1_hi=0.4))
    (suite / "instances.csv").write_text("".join(f"{r}\n" for r in rows))
    return suite / "instances.csv"


def test_bench_exits_non_zero_when_runs_error(files: tuple[Path, Path], tmp_path: Path) -> None:
    model, _ = files
    every = _bench_suite(tmp_path, model, ["net.onnx,typo.vnnlib,5", "net.onnx,nope.vnnlib,5"])
    r = nncert("bench", str(every), "--out", str(tmp_path / "o1"), "--quiet")
    assert r.returncode == 3
    assert "2 of 2 instances errored; see the note column of" in r.stderr
    assert (tmp_path / "o1" / "results.csv").exists()


# --------------------------------------------------------------------------------------------
# 8. written files respect the umask
# --------------------------------------------------------------------------------------------


def _modes(*paths: Path) -> dict[str, int]:
    return {p.name: stat.S_IMODE(p.stat().st_mode) for p in paths}


def test_written_files_respect_the_umask(files: tuple[Path, Path], tmp_path: Path) -> None:
    """Every report, sidecar, certificate and result file is 0o666 & ~umask (was 0o600).

    In-process runs (the umask is per process) with one subprocess run as a cross-check.
    """
    model, spec = files
    manifest = tmp_path / "nncert.toml"
    manifest.write_text(
        f'[[models]]\npath = "net.onnx"\nproperties = [{{ vnnlib = "{spec.name}" }}]\n'
    )
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "instances.csv").write_text(f"../net.onnx,../{spec.name},5\n")
    out, res, cert = tmp_path / "small.onnx", tmp_path / "res.txt", tmp_path / "cert.json"
    rep, cache, bench = tmp_path / "rep", tmp_path / "cache", tmp_path / "bench"
    old = os.umask(0o022)
    try:
        assert cli.main(["compress", str(model), "--method", "prune", "-o", str(out)]) == 0
        assert cli.main(["vnncomp", str(model), str(spec), str(res), "30", "--quiet"]) == 0
        assert cli.main(["verify", str(model), str(spec), "--certificate", str(cert)]) == 1
        argv = ["certify", str(manifest), "--out", str(rep), "--cache", str(cache), "--quiet"]
        assert cli.main(argv) == 1
        assert cli.main(["bench", str(suite), "--out", str(bench), "--quiet"]) == 0
    finally:
        os.umask(old)
    written = [
        out,
        out.with_name("small.onnx.nncert.json"),
        res,
        cert,
        rep / "report.json",
        rep / "junit.xml",
        rep / "summary.md",
        *sorted((rep / "certificates").iterdir()),
        cache / "index.json",
        *sorted((cache / "certs").iterdir()),
        bench / "results.csv",
        bench / "summary.md",
        bench / "progress.jsonl",
    ]
    if (bench / "cactus.png").exists():
        written.append(bench / "cactus.png")
    modes = _modes(*written)
    assert len(written) >= 14
    assert all(m == 0o644 for m in modes.values()), modes
    r = nncert("vnncomp", str(model), str(spec), str(tmp_path / "r2.txt"), "30", umask=0o027)
    assert r.returncode == 0 and _modes(tmp_path / "r2.txt") == {"r2.txt": 0o640}
    assert SPEC_HEAD in spec.read_text()  # the inputs are untouched throughout


def test_certificate_and_counterexample_may_not_share_a_path(
    files: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The second file would silently replace the first (found by the input campaign)."""
    model, spec = files
    out = tmp_path / "both.json"
    argv = ["verify", str(model), str(spec), "--certificate", str(out)]
    assert cli.main([*argv, "--counterexample", str(out)]) == 3
    assert "both name" in capsys.readouterr().err and not out.exists()
