"""The method registry (issue 12, item 3): one place for every method name.

A method defined here, outside the package, and registered with ``register_method`` runs under
``verify(..., method=NAME, presolve=False)`` without any monkeypatching; entry-point plug-ins
load from a real (temporary) distribution; options and the command line validate against the
registry.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from nncert.certificates import MilpEvidence, certificate_from_result, check
from nncert.verify import (
    CaseContext,
    CaseOutcome,
    Dense,
    InvalidOptionsError,
    Network,
    ReLU,
    get_method,
    method_names,
    register_method,
    robustness_property,
    verify,
)
from nncert.verify.bounds import spec_bounds
from nncert.verify.cli import main
from nncert.verify.options import VerifyOptions
from nncert.verify.pipeline import PRESOLVE
from nncert.verify.registry import (
    PRESOLVE_STAGES,
    MethodSpec,
    method_specs,
    register_method_spec,
    unregister_method,
)
from nncert.verify.result import SolverCaseEvidence, Verdict
from nncert.verify.spec import Property, UnsafeCase

NAME = "test_crown_once"
NONE_NAME = "test_leave_open"

#: (method name, case index) for every call of the methods below, in call order
SEEN: list[tuple[str, int]] = []


def crown_once(network: Network, case: UnsafeCase, ctx: CaseContext) -> CaseOutcome | None:
    """Test method: one CROWN bound per case; closes it when the bound is > 0."""
    SEEN.append((NAME, ctx.case_index))
    lo, _ = spec_bounds(network, case.input_box, case.A, -case.b)
    lb = float(np.max(lo))
    if lb > 0.0:
        return CaseOutcome("verified", exact=True, lower_bound=lb, solver="crown-once")
    return None


def leave_open(network: Network, case: UnsafeCase, ctx: CaseContext) -> CaseOutcome | None:
    """Test method: decides nothing."""
    SEEN.append((NONE_NAME, ctx.case_index))
    return None


@pytest.fixture
def registered() -> Iterator[None]:
    SEEN.clear()
    register_method(NAME, crown_once, description="one CROWN bound per case (test)")
    register_method(NONE_NAME, leave_open)
    try:
        yield
    finally:
        unregister_method(NAME)
        unregister_method(NONE_NAME)


def _net() -> Network:
    """The fixed 2-4-3 ReLU network of the certificate tests."""
    W1 = np.array([[1.0, -0.5], [0.25, 0.75], [-1.0, 0.5], [0.5, 0.5]])
    W2 = np.array([[1.0, 0.5, -0.25, 0.5], [-0.5, 1.0, 0.25, -0.5], [0.25, -0.75, 1.0, 0.0]])
    layers = (Dense(W1, [0.1, -0.2, 0.0, 0.05]), ReLU(), Dense(W2, [0.2, 0.0, -0.1]))
    return Network(layers, (2,))


def _prop(net: Network, eps: float) -> Property:
    """Robustness around (0.3, 0.6): CROWN proves eps=0.01; at 0.3 it leaves case 0 open
    (which holds: the MILP and branch and bound prove it)."""
    x0 = np.array([0.3, 0.6])
    return robustness_property(x0, eps, int(np.argmax(net.forward(x0))), 3, domain=None)


# --------------------------------------------------------------------------------------------
# The acceptance test
# --------------------------------------------------------------------------------------------


def test_registered_method_runs_alone_on_every_case(registered: None) -> None:
    net = _net()
    prop = _prop(net, 0.01)
    assert len(prop.cases) == 2
    # CROWN in the presolve closes both cases, so the method never runs ...
    res = verify(net, prop, method=NAME, time_limit=30)
    assert res.verdict is Verdict.VERIFIED and res.method == "crown" and SEEN == []
    # ... with presolve=False it is the only stage and sees every case
    res = verify(net, prop, method=NAME, presolve=False, time_limit=30)
    assert [s.name for s in res.stages] == [NAME]
    assert SEEN == [(NAME, 0), (NAME, 1)]
    # its exact "verified" outcomes closed the cases, with typed evidence
    assert res.verdict is Verdict.VERIFIED and res.method == NAME and res.solver == "crown-once"
    assert [(e.case, e.method, type(e)) for e in res.evidence] == [
        (0, NAME, SolverCaseEvidence),
        (1, NAME, SolverCaseEvidence),
    ]
    assert all(e.proven_lower is not None and e.proven_lower > 0 for e in res.evidence)
    # and the certificate is built from that evidence (solver-attested, re-checkable)
    cert = certificate_from_result(net, prop, res)
    assert isinstance(cert.evidence, MilpEvidence)
    assert cert.evidence.solver == f"{NAME}/crown-once"
    assert check(cert, net).ok


def test_a_none_outcome_leaves_the_case_open(registered: None) -> None:
    net = _net()
    prop = _prop(net, 0.01)
    res = verify(net, prop, method=NONE_NAME, presolve=False, time_limit=30)
    assert res.verdict is Verdict.UNKNOWN and res.reason == "inconclusive"
    assert SEEN == [(NONE_NAME, 0), (NONE_NAME, 1)]
    assert res.stats["open_cases"] == [0, 1]
    assert res.margin_lower == (None, None)


def test_registered_method_is_listed_in_verify_help(
    registered: None, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(["verify", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "--no-presolve" in out
    lines = {ln.split()[0]: ln for ln in out.splitlines() if ln.startswith("  ") and ln.split()}
    assert "one CROWN bound per case (test)" in lines[NAME]
    assert "Test method: decides nothing." in lines[NONE_NAME]  # the docstring's first line
    for name in ("auto", "milp", "bab", "relu_bab", "benders", "qubo", "model2", "window"):
        assert get_method(name).description in " ".join(lines[name].split())


def test_cli_runs_a_registered_method_without_presolve(
    registered: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    x = tmp_path / "x.npy"
    np.save(x, np.array([0.5, 0.5, 0.5, 0.5]))
    args = ["verify", "example:iris_relu", "--input", str(x), "--label", "0", "--eps", "0.01"]
    code = main([*args, "--method", NAME, "--no-presolve", "--json", "--quiet"])
    doc = json.loads(capsys.readouterr().out)
    assert [s["name"] for s in doc["stats"]["stages"]] == [NAME]
    assert sorted(i for _, i in SEEN) == [0, 1]
    assert code in (0, 2)
    # with the presolve, the cheap stages run first
    main([*args, "--method", NAME, "--json", "--quiet"])
    doc = json.loads(capsys.readouterr().out)
    assert doc["stats"]["stages"][0]["name"] == "sample"


def test_cli_rejects_an_unknown_method_with_a_suggestion(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as info:
        main(["verify", "example:iris_relu", "--method", "mlip"])
    assert info.value.code == 3
    assert "did you mean 'milp'?" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------
# presolve=False for the built-in methods
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "presolve"),
    [
        ("milp", ("sample", "crown", "attack")),
        ("bab", ("sample", "crown", "attack")),
        ("crown", ("sample",)),
        ("auto", ("sample", "crown", "attack")),
    ],
)
def test_presolve_false_runs_only_the_named_method(method: str, presolve: tuple[str, ...]) -> None:
    net = _net()
    prop = _prop(net, 0.3)  # CROWN alone does not decide it
    step = "complete" if method == "auto" else method
    full = verify(net, prop, method=method, time_limit=30)
    assert tuple(s.name for s in full.stages)[: len(presolve)] == presolve
    alone = verify(net, prop, method=method, presolve=False, time_limit=30)
    assert [s.name for s in alone.stages] == [step]
    if method != "crown":
        assert alone.verdict is full.verdict is not Verdict.UNKNOWN


def test_presolve_stages_match_the_registry() -> None:
    assert tuple(PRESOLVE) == PRESOLVE_STAGES
    for spec in method_specs().values():
        assert set(spec.presolve) <= set(PRESOLVE)


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------


def test_options_validate_against_the_registry() -> None:
    with pytest.raises(InvalidOptionsError, match=r"method='mlip' .*did you mean 'milp'\?"):
        VerifyOptions(method="mlip")
    with pytest.raises(InvalidOptionsError, match="not a registered method"):
        VerifyOptions(method="my_method")
    register_method("my_method", "nowhere.module:fn")  # lazy: nothing is imported yet
    try:
        assert VerifyOptions(method="my_method").method == "my_method"
        assert "my_method" in method_names()
    finally:
        unregister_method("my_method")
    with pytest.raises(InvalidOptionsError):
        VerifyOptions(method="my_method")
    with pytest.raises(InvalidOptionsError, match="presolve"):
        VerifyOptions(presolve="no")  # type: ignore[arg-type]


def test_builtin_methods_register_as_lazy_strings() -> None:
    builtins = [n for n, s in method_specs().items() if s.builtin]
    assert builtins[:11] == [
        "auto", "ibp", "crown", "attack", "milp", "bab",
        "benders", "qubo", "model2", "window", "relu_bab",
    ]  # fmt: skip
    for name in builtins:
        spec = get_method(name)
        assert isinstance(spec.target, str) and spec.description
        assert callable(spec.load())
    assert get_method("qubo").kind == "falsifier" and get_method("crown").kind == "bounds"


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        pytest.param(("", crown_once), "must start with a letter", id="empty-name"),
        pytest.param(("a:b", crown_once), "must start with a letter", id="colon"),
        pytest.param(("x", "no_colon"), "must be 'module:function'", id="bad-target"),
        pytest.param(("x", 42), "neither callable", id="not-callable"),
        pytest.param(("milp", crown_once), "already registered", id="taken"),
    ],
)
def test_bad_registrations_are_refused(args: tuple[object, object], fragment: str) -> None:
    with pytest.raises(InvalidOptionsError, match=fragment):
        register_method(*args)  # type: ignore[arg-type]
    assert get_method("milp").builtin


def test_register_replace_and_kind_checks() -> None:
    with pytest.raises(InvalidOptionsError, match="kind="):
        MethodSpec("x", crown_once, kind="maybe")  # type: ignore[arg-type]
    with pytest.raises(InvalidOptionsError, match="presolve stage"):
        MethodSpec("x", crown_once, presolve=("milp",))
    register_method("twice", crown_once)
    try:
        register_method("twice", crown_once)  # the same spec again: a no-op
        with pytest.raises(InvalidOptionsError, match="replace=True"):
            register_method("twice", leave_open)
        register_method("twice", leave_open, replace=True, presolve=("sample",))
        assert get_method("twice").load() is leave_open
    finally:
        unregister_method("twice")


def test_a_method_returning_garbage_is_an_error() -> None:
    register_method_spec(MethodSpec("garbage", lambda n, c, x: "verified"))
    try:
        with pytest.raises(TypeError, match="expected CaseOutcome or None"):
            verify(_net(), _prop(_net(), 0.01), method="garbage", presolve=False)
    finally:
        unregister_method("garbage")


# --------------------------------------------------------------------------------------------
# Entry-point plug-ins (a real distribution on sys.path, in a subprocess)
# --------------------------------------------------------------------------------------------

_PLUGIN = '''
from nncert.verify.registry import MethodSpec


def leave_open(network, case, ctx):
    """Fake plug-in: leaves every case open."""
    return None


SPECS = [
    MethodSpec("fake_spec", "nncert_fake_plugin:leave_open", "a spec from an entry point",
               kind="falsifier", presolve=("sample",)),
]
'''

_PROBE = """
import json, warnings
import numpy as np
from nncert.verify import Dense, Network, ReLU, robustness_property, verify
from nncert.verify.registry import get_method, method_names
import sys
lazy = "nncert_fake_plugin" not in sys.modules  # importing nncert loads no plug-in
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    names = method_names()
net = Network((Dense(np.eye(2), np.zeros(2)), ReLU(), Dense(np.eye(2), np.zeros(2))), (2,))
prop = robustness_property([0.5, 0.2], 0.05, 0, 2)
out = {"names": list(names), "warnings": [str(w.message) for w in caught], "lazy": lazy}
if "fake_open" in names:
    res = verify(net, prop, method="fake_open", presolve=False)
    out["fake_open"] = [res.verdict.value, [s.name for s in res.stages]]
    out["milp_target"] = get_method("milp").target
    out["fake_spec"] = [get_method("fake_spec").kind, list(get_method("fake_spec").presolve)]
print(json.dumps(out))
"""


def _plugin_dir(tmp_path: Path) -> Path:
    (tmp_path / "nncert_fake_plugin.py").write_text(textwrap.dedent(_PLUGIN))
    info = tmp_path / "nncert_fake_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: nncert-fake-plugin\nVersion: 1.0\n"
    )
    (info / "entry_points.txt").write_text(
        "[nncert.methods]\n"
        "fake_open = nncert_fake_plugin:leave_open\n"
        "fake_specs = nncert_fake_plugin:SPECS\n"
        "milp = nncert_fake_plugin:leave_open\n"
        "broken = nncert_fake_plugin:does_not_exist\n"
    )
    return tmp_path


def _probe(path: Path, **env: str) -> dict[str, object]:
    environ = {k: v for k, v in os.environ.items() if k != "NNCERT_NO_PLUGINS"}
    environ.update(PYTHONPATH=str(path), **env)
    r = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, env=environ, check=True
    )
    doc: dict[str, object] = json.loads(r.stdout)
    return doc


def test_entry_point_plugins_load_once_and_cannot_replace_builtins(tmp_path: Path) -> None:
    doc = _probe(_plugin_dir(tmp_path))
    names = doc["names"]
    assert isinstance(names, list) and {"fake_open", "fake_spec"} <= set(names)
    assert doc["lazy"] is True
    assert doc["fake_open"] == ["unknown", ["fake_open"]]
    assert doc["fake_spec"] == ["falsifier", ["sample"]]
    assert doc["milp_target"] == "nncert.verify.pipeline:milp_stage"
    warned = " ".join(doc["warnings"])  # type: ignore[arg-type]
    assert "tried to replace the method 'milp'" in warned
    assert "could not load method plug-in 'broken'" in warned


def test_entry_point_plugins_can_be_disabled(tmp_path: Path) -> None:
    doc = _probe(_plugin_dir(tmp_path), NNCERT_NO_PLUGINS="1")
    assert "fake_open" not in doc["names"]  # type: ignore[operator]
    assert doc["warnings"] == []


def test_entry_point_plugin_is_listed_in_verify_help(tmp_path: Path) -> None:
    code = "from nncert.verify.cli import main; main(['verify', '--help'])"
    environ = {k: v for k, v in os.environ.items() if k != "NNCERT_NO_PLUGINS"}
    environ["PYTHONPATH"] = str(_plugin_dir(tmp_path))
    r = subprocess.run([sys.executable, "-W", "ignore", "-c", code], capture_output=True,
                       text=True, env=environ)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "Fake plug-in: leaves every case open." in r.stdout
    assert "a spec from an entry point" in r.stdout


def test_method_names_are_listed_only_in_the_registry() -> None:
    """No module but the registry spells out a collection of method names (a tuple, list,
    set or dict literal holding three or more built-in names; the pipeline's table of
    presolve stages, named like the bound and attack methods, is no such list)."""
    builtins = {n for n, s in method_specs().items() if s.builtin}
    root = Path(__file__).resolve().parents[2]
    offenders = []
    for folder in ("verify", "certificates", "solvers", "formulations", "compression"):
        for path in sorted((root / folder).rglob("*.py")):
            if path.name == "registry.py" and folder == "verify":
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                elts = (
                    node.keys
                    if isinstance(node, ast.Dict)
                    else node.elts
                    if isinstance(node, (ast.Tuple, ast.List, ast.Set))
                    else []
                )
                names = {
                    e.value
                    for e in elts
                    if isinstance(e, ast.Constant) and isinstance(e.value, str)
                }
                if len(names & builtins) >= 3 and not names <= set(PRESOLVE_STAGES):
                    offenders.append(f"{path.relative_to(root)}:{node.lineno}")
    assert not offenders, f"method names listed outside the registry: {offenders}"
