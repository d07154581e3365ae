"""The wheel works (issue 18): it holds every module and the bundled data, and, installed into
a fresh virtual environment, its ``nncert`` runs on the bundled examples.

The wheel is built once per session (``python -m build`` when installed, else ``pip wheel``;
both build in an isolated environment, as a user's ``pip install`` would). The fresh venv gets
the wheel with ``--no-deps`` and sees the runtime dependencies of the running Python through a
``.pth`` line (no downloads), never the checkout. ``tools/check_wheel.sh`` does the same and
runs the full ``nncert demo --quick`` (about a minute); set ``NNCERT_WHEEL_DEMO=1`` to run the
demo here too.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("verify", "formulations", "solvers", "certificates", "compression")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    # the distribution, not find_spec: a checkout's setuptools ``build/`` folder is importable
    # as a namespace package named ``build`` from the repository root
    try:
        importlib.metadata.version("build")
    except importlib.metadata.PackageNotFoundError:
        has_build = False
    else:
        has_build = True
    if has_build:
        cmd = [sys.executable, "-m", "build", "--wheel", "--outdir", str(out), str(ROOT)]
    else:
        cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(out), str(ROOT)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=out)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "is absent from the `packages` configuration" not in proc.stdout + proc.stderr
    (found,) = out.glob("nncert-*.whl")
    return found


def test_wheel_holds_every_module_and_the_bundled_data(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for folder in FOLDERS:
        for path in (ROOT / folder).rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts:
                rel = path.relative_to(ROOT / folder).as_posix()
                assert f"nncert/{folder}/{rel}" in names, rel
    data = {p.name for p in (ROOT / "verify" / "data").iterdir()}
    assert {"examples.json", "iris_relu.onnx"} <= data
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "nncert = nncert.verify.cli:main" in text
    assert "nncert-vnnlib = nncert.verify.vnnlib_cli:main" in text


@pytest.fixture(scope="module")
def fresh_venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    venv = tmp_path_factory.mktemp("venv") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
         str(wheel)],
        check=True,
        timeout=300,
    )  # fmt: skip
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # the runtime dependencies of this Python (a plain path: its .pth files, among them the
    # editable nncert's, are not processed)
    Path(site, "runtime-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return venv


def _run(venv: Path, args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = os.pathsep.join([str(venv / "bin"), env.get("PATH", "")])
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def test_installed_wheel_runs_on_the_bundled_examples(fresh_venv: Path, tmp_path: Path) -> None:
    where = _run(
        fresh_venv,
        ["python", "-c", "import nncert.verify as v; print(v.__file__)"],
        tmp_path,
    )
    assert where.returncode == 0, where.stderr
    assert where.stdout.strip().startswith(str(fresh_venv)), where.stdout

    examples = _run(fresh_venv, ["nncert", "examples"], tmp_path)
    assert examples.returncode == 0, examples.stderr
    assert "iris_relu" in examples.stdout

    code = (
        "import numpy as np; from nncert.verify import load_example, verify; "
        "net, props = load_example('iris_relu'); "
        "np.save('x.npy', (props[0].cases[0].input_box.lower + "
        "props[0].cases[0].input_box.upper) / 2); print(props[0].label)"
    )
    label = _run(fresh_venv, ["python", "-c", code], tmp_path)
    assert label.returncode == 0, label.stderr
    proc = _run(
        fresh_venv,
        ["nncert", "verify", "example:iris_relu", "--input", "x.npy", "--label",
         label.stdout.strip(), "--eps", "0.01", "--timeout", "20",
         "--certificate", "cert.json"],
        tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    check = _run(fresh_venv, ["nncert", "check", "cert.json", "example:iris_relu"], tmp_path)
    assert check.returncode in (0, 6), check.stdout + check.stderr


@pytest.mark.skipif(os.environ.get("NNCERT_WHEEL_DEMO") != "1", reason="NNCERT_WHEEL_DEMO=1")
def test_installed_wheel_runs_the_quick_demo(fresh_venv: Path, tmp_path: Path) -> None:
    proc = _run(fresh_venv, ["nncert", "demo", "--quick", "--quiet"], tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
