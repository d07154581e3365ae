"""MkDocs hooks of the nncert site.

``reference/cli.md`` holds the marker ``<!-- cli-reference -->``; :func:`on_page_markdown`
replaces it with :func:`cli_reference`, which walks the real argument parsers
(:func:`nncert.verify.cli.build_parser`, :func:`nncert.verify.vnnlib_cli.build_parser`), so
the command-line reference cannot drift from the code.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from nncert.verify import cli, vnnlib_cli

MARKER = "<!-- cli-reference -->"

#: the design documents the docstrings cite (kept as written for GitHub)
DESIGN_DOCUMENTS = ("DESIGN.md", "ECOSYSTEM.md", "FORMULATIONS.md", "PROOFS.md", "VERIFIERS.md")


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The sub-command parsers of ``parser`` (name -> parser), in registration order."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _help_of(parser: argparse.ArgumentParser) -> str:
    """``parser``'s ``--help`` text at a fixed width of 100 columns."""
    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100"
    try:
        return parser.format_help().rstrip()
    finally:
        if old is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = old


def _section(prog: str, parser: argparse.ArgumentParser) -> list[str]:
    lines = [f"## `{prog}`", "", "```text", _help_of(parser), "```", ""]
    for name, sub in _subparsers(parser).items():
        lines += [f"### `{prog} {name}`", "", "```text", _help_of(sub), "```", ""]
    return lines


def cli_reference() -> str:
    """Markdown for every command and sub-command of ``nncert`` and ``nncert-vnnlib``."""
    lines = _section("nncert", cli.build_parser(None))
    lines += _section("nncert-vnnlib", vnnlib_cli.build_parser())
    return "\n".join(lines)


def on_page_markdown(markdown: str, page: Any, **kwargs: Any) -> str:
    """Fill the CLI reference page (MkDocs hook)."""
    if MARKER in markdown:
        return markdown.replace(MARKER, cli_reference())
    if page.file.src_uri in DESIGN_DOCUMENTS:
        # the design documents tag claims "[Prior art]", which autorefs takes for a link
        return markdown.replace("[Prior art]", "\\[Prior art\\]")
    return markdown
