"""Packaging: the setuptools package list covers every package folder, and imports stay light."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("verify", "formulations", "solvers", "certificates", "compression")


def test_every_package_folder_is_listed() -> None:
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = set(cfg["tool"]["setuptools"]["packages"])
    mapping = cfg["tool"]["setuptools"]["package-dir"]
    found = set()
    for folder in FOLDERS:
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder)
            found.add(".".join(["nncert", folder, *rel.parts]))
        assert mapping[f"nncert.{folder}"] == folder
        assert (ROOT / folder / "py.typed").exists()
    assert found == packages


def test_import_verify_is_light() -> None:
    """``import nncert.verify`` loads none of torch, onnx, pyomo, dwave, highspy."""
    code = (
        "import sys, time; t = time.perf_counter(); import nncert.verify; "
        "dt = time.perf_counter() - t; "
        "heavy = [m for m in ('torch', 'onnx', 'onnxruntime', 'pyomo', 'dwave', 'highspy', "
        "'dimod') if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_every_lazy_facade_name_resolves() -> None:
    import nncert.verify as v

    for name in v.__all__:
        assert getattr(v, name) is not None


def test_readme_method_list_matches_the_cli() -> None:
    """Every ``--method`` that ``nncert verify --help`` offers is described in the README."""
    from nncert.verify.options import METHODS

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    paragraph = text.split("Methods (`--method`):", 1)[1].split("\n\n", 1)[0]
    missing = [m for m in METHODS if f"`{m}`" not in paragraph]
    assert not missing, f"README method list lacks {missing}"
