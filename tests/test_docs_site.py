"""The documentation site (issue 18): generated CLI reference, complete API reference, build.

``mkdocs build --strict`` itself runs when the ``docs`` extra is installed (it is not a runtime
or test dependency, so the build test is skipped without it).
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from nncert.verify import cli, vnnlib_cli

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PACKAGES = ("verify", "formulations", "solvers", "certificates", "compression")


def _hooks() -> ModuleType:
    spec = importlib.util.spec_from_file_location("nncert_docs_hooks", DOCS / "hooks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _commands(parser: argparse.ArgumentParser) -> list[str]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return list(action.choices)
    return []


def test_cli_reference_is_generated_from_every_parser() -> None:
    text = _hooks().cli_reference()
    commands = _commands(cli.build_parser(None))
    assert {"verify", "certify", "check", "transfer", "compress", "bench", "demo"} <= set(commands)
    for name in commands:
        assert f"### `nncert {name}`" in text, name
        # every option of the sub-command is in its section
        sub = cli.build_parser(None)._subparsers._group_actions[0].choices[name]  # type: ignore[union-attr]
        for action in sub._actions:
            for opt in action.option_strings:
                assert opt in text, (name, opt)
    for name in _commands(vnnlib_cli.build_parser()):
        assert f"### `nncert-vnnlib {name}`" in text, name


def test_cli_page_is_filled_by_the_hook() -> None:
    hooks = _hooks()
    page_md = (DOCS / "reference" / "cli.md").read_text(encoding="utf-8")
    assert hooks.MARKER in page_md

    class _File:
        src_uri = "reference/cli.md"

    class _Page:
        file = _File()

    out = hooks.on_page_markdown(page_md, _Page())
    assert hooks.MARKER not in out and "nncert certify" in out


def _nav_files(text: str) -> set[str]:
    return set(re.findall(r":\s*([\w./-]+\.md)\s*$", text, re.M))


def test_nav_lists_every_page_and_design_document() -> None:
    nav = _nav_files((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    pages = {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")} - {"README.md"}
    assert pages == nav
    for doc in ("DESIGN.md", "PROOFS.md", "FORMULATIONS.md"):
        assert doc in nav


@pytest.mark.parametrize("package", PACKAGES)
def test_api_reference_covers_every_public_module(package: str) -> None:
    page = (DOCS / "reference" / f"{package}.md").read_text(encoding="utf-8")
    documented = set(re.findall(rf"^::: nncert\.{package}\.(\w+)$", page, re.M))
    modules = {p.stem for p in (ROOT / package).glob("*.py")}
    public = {m for m in modules if not m.startswith("_")}
    assert public == documented


@pytest.mark.slow
def test_mkdocs_build_strict(tmp_path: Path) -> None:
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings_handlers.python")
    pytest.importorskip("material")
    mkdocs = shutil.which("mkdocs") or f"{sys.executable} -m mkdocs"
    proc = subprocess.run(
        [*mkdocs.split(), "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"NO_MKDOCS_2_WARNING": "1", "PATH": str(Path(sys.executable).parent)},
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    cli_html = (tmp_path / "site" / "reference" / "cli" / "index.html").read_text()
    assert "nncert certify" in cli_html and "--accept-attested" in cli_html
    api = (tmp_path / "site" / "reference" / "verify" / "index.html").read_text()
    assert 'id="nncert.verify.pipeline.verify"' in api
