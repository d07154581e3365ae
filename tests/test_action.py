"""The GitHub Action (``action.yml``, issue 18): a composite action whose steps run
``nncert certify`` with options certify really has, upload its reports, and fail the job with
certify's exit code; the CI tutorial's workflow uses it with a certificate cache.

The certify and verdict steps' scripts are run for real with bash (a small manifest on a
bundled example), so exit-code propagation is tested, not only read.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from nncert.verify import ci
from nncert.verify.cli import build_parser

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parents[1]


def _action() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "action.yml").read_text(encoding="utf-8"))
    return data


def _certify_parser() -> argparse.ArgumentParser:
    parser = build_parser("certify")
    sub = parser._subparsers._group_actions[0]  # type: ignore[union-attr]
    certify: argparse.ArgumentParser = sub.choices["certify"]
    return certify


def _step(name_part: str) -> dict[str, Any]:
    for step in _action()["runs"]["steps"]:
        if name_part in step.get("name", ""):
            return dict(step)
    raise AssertionError(f"no step named like {name_part!r}")


def _certify_lines() -> list[str]:
    lines = []
    for step in _action()["runs"]["steps"]:
        for line in str(step.get("run", "")).splitlines():
            if re.match(r"\s*nncert certify\b", line):
                lines.append(line.strip())
    return lines


def test_action_is_composite_with_the_documented_inputs() -> None:
    action = _action()
    assert action["runs"]["using"] == "composite"
    inputs = action["inputs"]
    for name in ("manifest", "python-version", "extra-args", "nncert-version", "out", "cache"):
        assert name in inputs, name
    certify = _certify_parser()
    defaults = {a.dest: a.default for a in certify._actions}
    assert inputs["out"]["default"] == defaults["out"]
    assert inputs["cache"]["default"] == defaults["cache"]
    # the manifest default is the name certify's help gives the manifest
    manifest_help = next(a.help for a in certify._actions if a.dest == "manifest")
    assert inputs["manifest"]["default"] in str(manifest_help)
    uses = [s.get("uses", "") for s in action["runs"]["steps"]]
    assert any(u.startswith("actions/setup-python@") for u in uses)
    assert any(u.startswith("actions/upload-artifact@") for u in uses)


def test_steps_run_certify_with_options_it_has() -> None:
    lines = _certify_lines()
    assert lines, "no step runs nncert certify"
    options = {o for a in _certify_parser()._actions for o in a.option_strings}
    for line in lines:
        used = [t for t in shlex.split(line) if t.startswith("--")]
        assert used, line
        assert set(used) <= options, set(used) - options


def test_uploaded_reports_are_the_files_certify_writes() -> None:
    paths = _step("Upload")["with"]["path"]
    for name in ci.REPORT_FILES:
        assert f"{{{{ inputs.out }}}}/{name}" in paths, name
    assert "certificates/" in paths
    assert "always()" in _step("Upload")["if"]


def test_installs_no_torch() -> None:
    installs = [ln for ln in _step("Install")["run"].splitlines() if "pip install" in ln]
    assert installs and not any("torch" in ln for ln in installs)


def _run_step(step: dict[str, Any], env: dict[str, str], cwd: Path) -> int:
    script = str(step["run"])
    proc = subprocess.run(["bash", "-c", script], cwd=cwd, env=env, timeout=300)
    return proc.returncode


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
@pytest.mark.parametrize(
    ("properties", "expected"),
    [
        ("{ examples = [0] }", 0),
        # eps 0.5 around a point: the attack finds a counterexample
        ('{ name = "wide", x = [0.2, 0.6, 0.1, 0.05], label = 0, eps = 0.5 }', 1),
    ],
)
def test_certify_exit_code_fails_the_job(tmp_path: Path, properties: str, expected: int) -> None:
    (tmp_path / "nncert.toml").write_text(
        f'[budget]\nper_property = 10.0\n\n[[models]]\nname = "iris"\n'
        f'path = "example:iris_relu"\nproperties = [ {properties} ]\n',
        encoding="utf-8",
    )
    output = tmp_path / "github_output"
    summary = tmp_path / "step_summary"
    env = {
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        "HOME": str(tmp_path),
        "GITHUB_OUTPUT": str(output),
        "GITHUB_STEP_SUMMARY": str(summary),
        "MANIFEST": "nncert.toml",
        "OUT": "nncert-report",
        "CACHE": ".nncert-cache",
        "EXTRA_ARGS": "--quiet",
    }
    assert _run_step(_step("Run nncert certify"), env, tmp_path) == 0  # artifacts still upload
    match = re.search(r"^exit-code=(\d+)$", output.read_text(), re.M)
    assert match is not None and int(match.group(1)) == expected
    assert (tmp_path / "nncert-report" / "junit.xml").exists()
    assert summary.read_text().strip(), "certify did not write the step summary"
    verdict_env = {"PATH": env["PATH"], "CODE": match.group(1)}
    assert _run_step(_step("Fail on"), verdict_env, tmp_path) == expected


def test_tutorial_workflow_uses_the_action_and_caches_certificates() -> None:
    text = (ROOT / "docs" / "tutorials" / "ci.md").read_text(encoding="utf-8")
    block = re.search(r'```yaml title="\.github/workflows/[^"]+"\n(.*?)^```', text, re.S | re.M)
    assert block is not None
    workflow = yaml.safe_load(block.group(1))
    steps = workflow["jobs"]["certify"]["steps"]
    cache = next(s for s in steps if str(s.get("uses", "")).startswith("actions/cache@"))
    ours = next(s for s in steps if "nncert" in str(s.get("uses", "")))
    assert ours["with"]["cache"] == cache["with"]["path"]
    assert set(ours["with"]) <= set(_action()["inputs"])
