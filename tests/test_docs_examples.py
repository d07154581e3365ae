"""Every example in the documentation runs (issue 18): the site cannot rot.

For each page in :data:`PAGES` the fenced blocks are taken in order and, in a fresh temporary
working directory with one namespace per page:

* ````python`` blocks are executed;
* blocks with a ``title="FILE"`` attribute (``toml``, ``yaml``, ...) are written to ``FILE``
  (the manifest a later command reads, the workflow :mod:`tests.test_action` checks);
* ````console`` blocks: every ``$ nncert ...`` line runs through :func:`nncert.verify.cli.main`
  and must exit with a verdict code (0 verified/ok, 1 falsified, 2 unknown, 6 attested), never
  with an input or internal error (3, 4) or a usage error.

A block directly preceded by ``<!-- docs-test: skip -->`` is not run (installation commands,
the hour-long paper suite, files the reader supplies); ``<!-- docs-test: requires MODULE -->``
skips just that block when an optional package is missing. ``bash`` blocks are shell
set-up (pip, venv) and are not run.
"""

from __future__ import annotations

import importlib.util
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest

from nncert.verify.cli import main

DOCS = Path(__file__).resolve().parents[1] / "docs"
PAGES = ["getting-started.md", *sorted(p.name for p in (DOCS / "tutorials").glob("*.md"))]

_FENCE = re.compile(
    r"(?P<marker><!-- docs-test: (?P<directive>[^>]*?) -->\n)?"
    r"^```(?P<lang>[\w-]*)(?P<attrs>[^\n]*)\n(?P<body>.*?)^```[ \t]*$",
    re.M | re.S,
)
_TITLE = re.compile(r'title="([^"]+)"')

#: exit codes a documented command may end with (verdicts), never 3 (input) or 4 (internal)
VERDICT_CODES = {0, 1, 2, 6}


@dataclass(frozen=True)
class Block:
    lang: str
    title: str | None
    body: str
    directive: str
    line: int


def blocks(page: str) -> list[Block]:
    """The fenced blocks of ``docs/<page>`` (``page`` under ``tutorials/`` unless top level)."""
    path = DOCS / page if (DOCS / page).exists() else DOCS / "tutorials" / page
    text = path.read_text(encoding="utf-8")
    out = []
    for m in _FENCE.finditer(text):
        title = _TITLE.search(m["attrs"])
        out.append(
            Block(
                lang=m["lang"],
                title=title.group(1) if title else None,
                body=m["body"],
                directive=(m["directive"] or "").strip(),
                line=text.count("\n", 0, m.start("lang")) + 1,
            )
        )
    return out


def _run_console(block: Block, page: str) -> None:
    for raw in block.body.splitlines():
        if not raw.startswith("$ nncert "):
            continue
        argv = shlex.split(raw[2:], comments=True)[1:]
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse: a usage error in the documentation
            pytest.fail(f"{page}:{block.line}: `{raw}` exited via SystemExit({exc.code})")
        assert code in VERDICT_CODES, f"{page}:{block.line}: `{raw}` exited {code}"


def run_page(page: str) -> int:
    """Run the page's blocks in the current directory; returns how many ran."""
    namespace: dict[str, object] = {"__name__": f"docs_{Path(page).stem}"}
    ran = 0
    for block in blocks(page):
        if block.directive == "skip":
            continue
        if block.directive.startswith("requires "):
            module = block.directive.split(None, 1)[1]
            if importlib.util.find_spec(module) is None:
                continue
        if block.title is not None:
            Path(block.title).parent.mkdir(parents=True, exist_ok=True)
            Path(block.title).write_text(block.body, encoding="utf-8")
            ran += 1
        elif block.lang == "python":
            code = compile(block.body, f"{page}:{block.line}", "exec")
            exec(code, namespace)
            ran += 1
        elif block.lang == "console":
            _run_console(block, page)
            ran += 1
    return ran


def test_every_page_has_examples() -> None:
    assert "ci.md" in PAGES and "research-api.md" in PAGES
    for page in PAGES:
        assert any(b.lang in ("python", "console") for b in blocks(page)), page


def test_block_parser_sees_markers_and_titles() -> None:
    ci = blocks("ci.md")
    assert any(b.title == "nncert.toml" and b.lang == "toml" for b in ci)
    assert any(b.title == ".github/workflows/certify.yml" for b in ci)
    start = blocks("getting-started.md")
    assert any(b.directive == "skip" and "demo" in b.body for b in start)


@pytest.mark.parametrize("page", PAGES)
def test_page_examples_run(page: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    assert run_page(page) > 0
