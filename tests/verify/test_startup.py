"""Start-up: what ``nncert vnncomp`` imports before its first verification stage.

No timing assertions (``benchmarks/startup.py`` measures the time): these tests check, in
fresh interpreters, that the heavy third-party packages stay off the start-up path.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ACASXU = ROOT.parent / "shared" / "benchmarks" / "vnncomp" / "acasxu"

#: never needed to read a common ONNX model or to start verifying it
HEAVY = ("onnx", "onnxruntime", "networkx", "ml_dtypes", "torch")

#: a VNN-LIB property of the bundled iris_relu network (4 inputs, 3 outputs)
IRIS_PROPERTY = """\
(declare-const X_0 Real)
(declare-const X_1 Real)
(declare-const X_2 Real)
(declare-const X_3 Real)
(declare-const Y_0 Real)
(declare-const Y_1 Real)
(declare-const Y_2 Real)
(assert (>= X_0 0.4))
(assert (<= X_0 0.5))
(assert (>= X_1 0.4))
(assert (<= X_1 0.5))
(assert (>= X_2 0.4))
(assert (<= X_2 0.5))
(assert (>= X_3 0.4))
(assert (<= X_3 0.5))
(assert (<= Y_0 Y_1))
"""


def _loaded(code: str, *args: str) -> list[str]:
    """Run ``code`` in a fresh interpreter; it prints the module names to report."""
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split()


def test_building_the_vnncomp_parser_imports_nothing_heavy() -> None:
    code = f"""
    import sys
    import nncert.verify.cli as cli
    cli.build_parser("vnncomp").parse_args(["vnncomp", "m.onnx", "p.vnnlib", "out", "10"])
    print(*[m for m in {(*HEAVY, "scipy", "importlib.metadata")!r} if m in sys.modules])
    """
    assert _loaded(code) == []


def _acasxu_model() -> Path:
    path = ACASXU / "onnx" / "ACASXU_run2a_1_1_batch_2000.onnx"
    if not path.is_file():
        pytest.skip(f"shared benchmarks not found at {ACASXU}")
    return path


@pytest.mark.parametrize("which", ["acasxu", "bundled"])
def test_from_onnx_imports_neither_onnx_nor_ml_dtypes(which: str) -> None:
    """Reading an ACAS Xu network (or a bundled example) takes the fast path: the protobuf
    classes only, no ``onnx`` package, no ``ml_dtypes``, no ``networkx``."""
    model = str(_acasxu_model()) if which == "acasxu" else "example:iris_relu"
    code = f"""
    import sys
    from nncert.verify.importers import from_onnx
    net = from_onnx(sys.argv[1])
    assert net.n_inputs in (4, 5), net.n_inputs
    print(*[m for m in {HEAVY!r} if m in sys.modules])
    """
    assert _loaded(code, model) == []


def _first_stage(argv: str, *, exit_zero: bool) -> str:
    """Code that runs the console entry point ``main(argv)`` (``argv``: a Python expression over
    ``sys.argv``; with ``exit_zero`` it must return 0) and prints the modules of ``WATCH`` that
    were imported when the pipeline announced its first stage (the command's own output goes
    to stderr)."""
    check = "assert rc == 0, rc" if exit_zero else ""
    return f"""
import contextlib
import sys
from nncert.verify import cliutil
seen = []
call = cliutil.Progress.__call__
def first(self, message):
    if not seen:
        seen.append([m for m in WATCH if m in sys.modules])
    call(self, message)
cliutil.Progress.__call__ = first
from nncert.verify.cli import main
with contextlib.redirect_stdout(sys.stderr):
    rc = main({argv})
{check}
assert seen, "no verification stage started"
print(*seen[0])
"""


#: ``nncert vnncomp MODEL SPEC OUT 60``
_FIRST_STAGE = _first_stage('["vnncomp", *sys.argv[1:], "60", "--quiet"]', exit_zero=True)


def _model_and_spec(which: str, tmp_path: Path) -> tuple[Path, Path]:
    """An ACAS Xu model and property, or the bundled Iris model with a property file."""
    if which == "acasxu":
        return _acasxu_model(), ACASXU / "vnnlib" / "prop_1.vnnlib"
    spec = tmp_path / "p.vnnlib"
    spec.write_text(IRIS_PROPERTY)
    return ROOT / "verify" / "data" / "iris_relu.onnx", spec


@pytest.mark.parametrize("which", ["acasxu", "bundled"])
def test_vnncomp_reaches_its_first_stage_without_heavy_imports(which: str, tmp_path: Path) -> None:
    """Up to the first verification stage of ``nncert vnncomp``: no onnx, onnxruntime,
    networkx, ml_dtypes, torch, no scipy (``scipy.sparse`` waits for a MILP) and no
    ``importlib.metadata`` (the solver plug-ins are scanned only for unknown solver names)."""
    model, spec = _model_and_spec(which, tmp_path)
    out = tmp_path / "result.txt"
    heavy = (*HEAVY, "scipy", "importlib.metadata")
    code = f"WATCH = {heavy!r}\n" + _FIRST_STAGE
    assert _loaded(code, str(model), str(spec), str(out)) == []
    assert out.read_text().split("\n", 1)[0] in ("sat", "unsat")


_HELP_LISTS_METHODS = """
import sys
from nncert.verify import cli
from nncert.verify.registry import register_method
parser = cli.build_parser("verify")
print("metadata" if "importlib.metadata" in sys.modules else "no-metadata")
register_method("late_method", "nowhere:fn", description="registered after the parser")
sub = next(a for a in parser._actions if a.dest == "command").choices
for name in ("verify", "vnncomp"):
    text = sub[name].format_help()
    print(name, "relu_bab" in text, "registered after the parser" in text)
"""


def test_help_lists_the_methods_computed_when_shown() -> None:
    """Building the parser scans no plug-ins; ``verify --help`` and ``vnncomp --help`` still
    list every method, computed when the help is shown (a method registered later included)."""
    out = _loaded(_HELP_LISTS_METHODS)
    assert out == ["no-metadata", "verify", "True", "True", "vnncomp", "True", "True"]


@pytest.mark.parametrize("which", ["acasxu", "bundled"])
def test_vnncomp_imports_no_other_sub_command(which: str, tmp_path: Path) -> None:
    """``nncert vnncomp`` runs from :mod:`nncert.verify.vnncomp_command`: up to its first
    stage it has not imported the certificate builder, the benchmark runner, the compression
    stack or the other sub-commands' module (0.04 s of CPU on every instance)."""
    model, spec = _model_and_spec(which, tmp_path)
    out = tmp_path / "result.txt"
    other = (
        "nncert.certificates",
        "nncert.certificates.build",
        "nncert.verify.bench",
        "nncert.compression",
        "nncert.verify.commands",
    )
    code = f"WATCH = {other!r}\n" + _FIRST_STAGE
    assert _loaded(code, str(model), str(spec), str(out)) == []
    assert out.read_text().split("\n", 1)[0] in ("sat", "unsat")


#: the console entry point's path (``main()`` reads ``sys.argv``): prints what runs after it
_CONSOLE_VNNCOMP = """
import atexit, sys
atexit.register(lambda: print("atexit-ran", flush=True))
sys.argv = ["nncert", "vnncomp", *sys.argv[1:], "600"]
from nncert.verify.cli import main
code = main()
print("returned", code, flush=True)
"""


def test_vnncomp_console_process_ends_once_the_result_is_written(tmp_path: Path) -> None:
    """Through the console entry point, ``vnncomp`` ends its process right after writing the
    result (no interpreter shutdown: 0.06-0.15 s per ACAS Xu instance); exit status 0, the
    summary line flushed. A program calling ``main([...])`` gets the exit code back."""
    model, spec = ROOT / "verify" / "data" / "iris_relu.onnx", tmp_path / "p.vnnlib"
    spec.write_text(IRIS_PROPERTY)
    out = tmp_path / "result.txt"
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_CONSOLE_VNNCOMP), str(model), str(spec), str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""  # neither returned to the caller nor ran the atexit handlers
    word = out.read_text().split("\n", 1)[0]
    assert word in ("sat", "unsat")
    assert proc.stderr.startswith(f"{word} in ")  # the summary was flushed before the exit
    out.unlink()
    code = """
    import sys
    from nncert.verify.cli import main
    print("returned", main(["vnncomp", *sys.argv[1:], "600", "--quiet"]))
    """
    assert _loaded(code, str(model), str(spec), str(out)) == ["returned", "0"]
    assert out.read_text().split("\n", 1)[0] == word


def test_verify_console_process_ends_once_the_answer_is_printed(tmp_path: Path) -> None:
    """``nncert verify`` through the console entry point ends the same way: the answer on
    stdout (flushed), the verdict's exit status, no interpreter shutdown."""
    model, spec = ROOT / "verify" / "data" / "iris_relu.onnx", tmp_path / "p.vnnlib"
    spec.write_text(IRIS_PROPERTY)
    code = """
    import atexit, sys
    atexit.register(lambda: print("atexit-ran", flush=True))
    sys.argv = ["nncert", "verify", *sys.argv[1:], "--timeout", "600", "--json", "--quiet"]
    from nncert.verify.cli import main
    code = main()
    print("returned", code, flush=True)
    """
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), str(model), str(spec)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = proc.stdout.splitlines()
    assert len(lines) == 1, proc.stdout  # the answer only: no "returned", no "atexit-ran"
    verdict = json.loads(lines[0])["verdict"]
    assert proc.returncode == {"verified": 0, "falsified": 1}[verdict], proc.stderr


#: ``nncert verify MODEL SPEC --timeout 60``
_VERIFY_FIRST_STAGE = _first_stage('["verify", *sys.argv[1:], "--timeout", "60"]', exit_zero=False)


@pytest.mark.parametrize("which", ["acasxu", "bundled"])
def test_verify_without_a_certificate_imports_no_benchmark_or_certificate_stack(
    which: str, tmp_path: Path
) -> None:
    """``nncert verify MODEL SPEC`` up to its first stage: neither the benchmark runner (which
    pulls the solvers and dimod, 0.3 s) nor the certificate builder; they load only for
    ``demo`` and ``--certificate``."""
    model, spec = _model_and_spec(which, tmp_path)
    other = ("nncert.verify.bench", "nncert.certificates", "dimod", *HEAVY)
    code = f"WATCH = {other!r}\n" + _VERIFY_FIRST_STAGE
    assert _loaded(code, str(model), str(spec)) == []
