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
        # data-only packages (bundled files, no modules) are listed too, or the wheel may drop them
        for data in (ROOT / folder).rglob("data"):
            if data.is_dir() and not any(data.glob("*.py")):
                rel = data.relative_to(ROOT / folder)
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
    """Every built-in ``--method`` that ``nncert verify --help`` offers is described in the
    README (plug-ins registered by tests or entry points are not)."""
    from nncert.verify.registry import method_specs

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    paragraph = text.split("Methods (`--method`):", 1)[1].split("\n\n", 1)[0]
    builtins = [name for name, spec in method_specs().items() if spec.builtin]
    assert len(builtins) >= 11
    missing = [m for m in builtins if f"`{m}`" not in paragraph]
    assert not missing, f"README method list lacks {missing}"


# --------------------------------------------------------------------------------------------
# Layers (the import-linter contract in pyproject.toml)
# --------------------------------------------------------------------------------------------


def _modules() -> set[str]:
    out = set()
    for folder in FOLDERS:
        for f in (ROOT / folder).glob("*.py"):
            if f.stem != "__init__":
                out.add(f"nncert.{folder}.{f.stem}")
    return out


def test_every_module_sits_in_exactly_one_layer() -> None:
    """A module outside the contract would escape the layer check."""
    import re

    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())
    (contract,) = [c for c in cfg["tool"]["importlinter"]["contracts"] if c["id"] == "layers"]
    members: list[str] = []
    for layer in contract["layers"]:
        members += [m.strip() for m in re.split(r"[|:]", layer)]
    assert len(members) == len(set(members)), "a module is listed twice"
    assert set(members) == _modules()


def _imports_in_functions() -> list[tuple[str, int, str]]:
    """Imports of nncert modules inside function bodies, as ``(file, line, module)``."""
    import ast

    found = []
    for folder in FOLDERS:
        for f in sorted((ROOT / folder).glob("*.py")):
            tree = ast.parse(f.read_text(encoding="utf-8"))
            for fn in ast.walk(tree):
                if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
                    continue
                for node in ast.walk(fn):
                    if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                        "nncert"
                    ):
                        found.append((f"{folder}/{f.name}", node.lineno, str(node.module)))
                    elif isinstance(node, ast.Import):
                        found += [
                            (f"{folder}/{f.name}", node.lineno, a.name)
                            for a in node.names
                            if a.name.startswith("nncert")
                        ]
    return sorted(set(found))


def test_at_most_ten_imports_of_our_modules_inside_functions() -> None:
    """Our own modules are imported at module level (the layers make that possible); lazy
    imports are for heavy third-party packages, never to dodge a cycle."""
    found = _imports_in_functions()
    assert len(found) <= 10, found
