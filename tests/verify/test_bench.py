"""Tests of ``nncert bench`` (nncert.verify.bench): suites, reports, resume, executors."""

from __future__ import annotations

import csv
import importlib.util
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from nncert.verify import bench, cli
from nncert.verify.vnncomp import RESULT_WORDS, RESULTS_COLUMNS

#: ``<repo>/../shared/benchmarks`` (CI clones main with a copy of shared/ beside it)
SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "benchmarks"
TEST_SUITE = SHARED / "vnncomp" / "test"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def _bench_registered(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make sure ``nncert bench`` is registered exactly once."""
    entries = [
        e
        for e in cli.EXTENSIONS
        if e is not bench.register and not (isinstance(e, str) and "verify.bench" in e)
    ]
    monkeypatch.setattr(cli, "EXTENSIONS", [*entries, bench.register])


@pytest.fixture
def test_suite() -> Path:
    path = TEST_SUITE / "instances.csv"
    if not path.exists():
        pytest.skip(f"shared benchmarks not found at {path}")
    return path


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def _verdicts(rows: list[dict[str, Any]]) -> dict[tuple[str, str, str], str]:
    return {(r["network"], r["property"], r["method"]): r["result"] for r in rows}


def test_vnncomp_test_suite_outputs(test_suite: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    rc = cli.main(["bench", str(test_suite), "--out", str(out), "--quiet"])
    assert rc == 0
    with (out / "results.csv").open(newline="") as fh:
        header = next(csv.reader(fh))
    assert tuple(header[: len(RESULTS_COLUMNS)]) == RESULTS_COLUMNS
    for col in ("method", "solver", "spins", "iterations", "margin_lower", "margin_upper"):
        assert col in header
    for col in ("transfer", "truth", "correct"):
        assert col in header
    rows = _rows(out / "results.csv")
    assert len(rows) == 5
    truth = {(r["onnx"], r["vnnlib"]): r["truth"] for r in _rows(TEST_SUITE / "truth.csv")}
    for r in rows:
        assert r["category"] == "test"
        assert r["result"] == truth[(r["network"], r["property"])]
        assert r["truth"] == r["result"] and r["correct"] == "yes"
        assert float(r["run_time"]) >= 0 and float(r["prepare_time"]) >= 0
        assert r["method"] == "auto" and r["solver"] == "highs"
    summary = (out / "summary.md").read_text()
    assert "| auto/highs | 5 | 1 | 4 | 0 | 0 | 5 |" in summary
    assert "auto/highs = 50" in summary  # 5 correct answers x 10 points
    png = (out / "cactus.png").read_bytes()
    assert png.startswith(PNG_SIGNATURE) and len(png) > len(PNG_SIGNATURE)


def test_resume_skips_finished_instances(
    test_suite: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    assert cli.main(["bench", str(test_suite), "--out", str(out), "--quiet"]) == 0
    first = _rows(out / "results.csv")
    journal = out / "progress.jsonl"
    lines = journal.read_text().splitlines(keepends=True)
    assert len(lines) == 5

    calls: list[str] = []
    real: Callable[[bench.Task], dict[str, Any]] = bench.run_task

    def counting(task: bench.Task) -> dict[str, Any]:
        calls.append(task.key)
        return real(task)

    monkeypatch.setattr(bench, "run_task", counting)
    # everything finished: nothing runs again, same results
    assert cli.main(["bench", str(test_suite), "--out", str(out), "--quiet"]) == 0
    assert calls == []
    assert _verdicts(_rows(out / "results.csv")) == _verdicts(first)

    # drop the last two records and leave a torn line, as after a crash mid-write
    journal.write_text("".join(lines[:3]) + lines[3][:20])
    assert cli.main(["bench", str(test_suite), "--out", str(out), "--quiet"]) == 0
    assert len(calls) == 2
    assert len(_rows(out / "results.csv")) == 5
    assert len(journal.read_text().splitlines()) == 5

    # --no-resume reruns everything
    calls.clear()
    assert cli.main(["bench", str(test_suite), "--out", str(out), "--quiet", "--no-resume"]) == 0
    assert len(calls) == 5


def test_random_suite_is_deterministic(tmp_path: Path) -> None:
    a = bench.load_suite("random:7:5")
    b = bench.load_suite("random:7:5")
    assert [i.key for i in a.instances] == [i.key for i in b.instances]
    assert [i.network for i in a.instances] == [i.network for i in b.instances]
    for i in range(5):
        n1, p1, _ = bench.random_instance(7, i)
        n2, p2, _ = bench.random_instance(7, i)
        assert n1.fingerprint() == n2.fingerprint() and p1 == p2
        assert n1.activation_types <= {type(layer) for layer in n1.layers}
    # a prefix of a longer suite is the shorter suite; another seed gives other networks
    longer = bench.load_suite("random:7:8")
    assert [i.network for i in longer.instances[:5]] == [i.network for i in a.instances]
    other = [bench.random_instance(8, i)[0].fingerprint() for i in range(5)]
    assert other != [bench.random_instance(7, i)[0].fingerprint() for i in range(5)]

    r1 = bench.run_bench("random:7:5", out=tmp_path / "r1", quiet=True, timeout=5)
    r2 = bench.run_bench("random:7:5", out=tmp_path / "r2", quiet=True, timeout=5)
    assert len(r1.rows) == 5
    assert [r["result"] for r in r1.rows] == [r["result"] for r in r2.rows]
    assert all(r["result"] in ("sat", "unsat") for r in r1.rows)


def test_bad_suite_and_method_are_usage_errors(tmp_path: Path) -> None:
    out = str(tmp_path / "o")
    assert cli.main(["bench", str(tmp_path / "missing.csv"), "--out", out, "--quiet"]) == 3
    assert cli.main(["bench", "random:x", "--out", out, "--quiet"]) == 3
    assert cli.main(["bench", "random:1:2", "--out", out, "--quiet", "--methods", "nope"]) == 3
    assert cli.main(["bench", "random:1:2", "--out", out, "--quiet", "--solvers", "nope"]) == 3


def test_local_pool_matches_serial(tmp_path: Path) -> None:
    serial = bench.run_bench("random:11:6", out=tmp_path / "s", jobs=1, quiet=True, timeout=10)
    pool = bench.run_bench("random:11:6", out=tmp_path / "p", jobs=2, quiet=True, timeout=10)
    assert pool.ran == 6
    assert _verdicts(pool.rows) == _verdicts(serial.rows)
    assert [r["key"] for r in pool.rows] == [r["key"] for r in serial.rows]  # task order


@pytest.mark.skipif(
    importlib.util.find_spec("distributed") is None, reason="dask.distributed not installed"
)
def test_dask_executor_matches_local_pool(tmp_path: Path) -> None:
    local = bench.run_bench("random:5:6", out=tmp_path / "l", jobs=2, quiet=True, timeout=10)
    dask = bench.run_bench(
        "random:5:6", out=tmp_path / "d", jobs=2, executor="dask", quiet=True, timeout=10
    )
    assert dask.ran == 6
    assert _verdicts(dask.rows) == _verdicts(local.rows)


@pytest.fixture
def dialect_suite(test_suite: Path, tmp_path: Path) -> Iterator[Path]:
    d = tmp_path / "pairs"
    (d / "onnx").mkdir(parents=True)
    for name in ("test_sat.onnx", "test_unsat.onnx"):
        shutil.copy(TEST_SUITE / name, d / "onnx" / name)
    shutil.copy(TEST_SUITE / "test_prop.vnnlib", d / "prop.vnnlib")
    pair = "\"[('f', 'onnx/{}.onnx'), ('g', 'onnx/{}.onnx')]\",prop.vnnlib,20\n"
    (d / "instances.csv").write_text(
        "onnx/test_unsat.onnx,prop.vnnlib,20\n"
        + pair.format("test_sat", "test_unsat")  # source sat, target unsat
        + pair.format("test_unsat", "test_sat")  # source unsat, target sat
        + pair.format("test_unsat", "test_unsat")  # identical networks: T2 transfer
        + "\"[('f', 'onnx/test_sat.onnx'), ('g', 'onnx/test_sat.onnx'), "
        "('h', 'onnx/test_sat.onnx')]\",prop.vnnlib,20\n"
        + pair.format("test_unsat", "missing")  # a missing file
    )
    yield d / "instances.csv"


def test_2026_dialect_rows_do_not_crash(
    dialect_suite: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    rc = cli.main(["bench", str(dialect_suite), "--out", str(out), "--quiet"])
    # the row with a missing file errors: exit 4 (some runs errored), and stderr says so
    assert rc == bench.EXIT_BENCH_SOME_ERRORED == 4
    assert "1 of 6 instances errored" in capsys.readouterr().err
    rows = _rows(out / "results.csv")
    assert len(rows) == 6
    assert all(r["result"] in RESULT_WORDS for r in rows)
    single, sat_to_unsat, unsat_to_sat, same, triple, missing = rows
    assert single["result"] == "unsat"
    if importlib.util.find_spec("nncert.certificates") is None:
        assert all(r["result"] == "unknown" for r in rows[1:4])
        return
    # the row's answer is the target (second) network's
    assert sat_to_unsat["result"] == "unsat" and sat_to_unsat["transfer"] == "no"
    assert unsat_to_sat["result"] == "sat" and unsat_to_sat["transfer"] == "no"
    assert same["result"] == "unsat" and same["transfer"] in ("T1", "T2")
    assert triple["result"] == "unknown" and "3-network" in triple["note"]
    assert missing["result"] == "error" and missing["note"]
    assert "f=onnx/test_sat.onnx+g=onnx/test_unsat.onnx" == sat_to_unsat["network"]


def test_paper_suite_layout() -> None:
    suite = bench.load_suite("paper", eps=[0.05])
    datasets = {i.meta["dataset"] for i in suite.instances}
    activations = {i.meta["activation"] for i in suite.instances}
    assert datasets == {"iris", "moons"}
    assert activations == {"relu", "hardtanh", "sigmoid", "tanh"}
    variants = {i.meta["variant"] for i in suite.instances}
    if importlib.util.find_spec("nncert.compression") is not None:
        assert variants == {"original", "prune20", "prune50", "int8"}
    # known counterexamples (attack radius <= eps) become truth "sat" on the originals only
    assert any(i.truth == "sat" for i in suite.instances)
    assert all(i.truth == "" for i in suite.instances if i.meta["variant"] != "original")


def test_paper_reports_on_a_small_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bench, "PAPER_DATASETS", ("moons",))
    report = bench.run_bench("paper", out=tmp_path, eps=[0.1], quiet=True, timeout=5)
    assert report.wrong == 0
    table = (tmp_path / "paper_table.md").read_text()
    assert "| moons | relu | 0.1 | original | auto/highs |" in table
    head = _rows(tmp_path / "paper_table.csv")[0]
    assert {"certified", "vulnerable", "unknown", "time_s", "spins", "iterations"} <= set(head)
    # issue 19: Model 2 on the QUBO route for the sigmoid/tanh networks
    qubo = _rows(tmp_path / "paper_qubo.csv")
    assert {r["activation"] for r in qubo} == {"sigmoid", "tanh"}
    for r in qubo:
        assert int(r["contradictions"]) == 0 and int(r["missed"]) == 0
        assert int(r["qubo_vulnerable"]) == int(r["exact_vulnerable"]) > 0
        assert 0 < int(r["spins_max"]) <= 64
        hits, audited = (int(v) for v in r["master_optimum"].split("/"))
        assert 0 <= hits <= audited
    if importlib.util.find_spec("nncert.compression") is not None:
        comp = _rows(tmp_path / "compression.csv")
        assert {r["variant"] for r in comp} == {"original", "prune20", "prune50", "int8"}
        for r in comp:
            assert 0.0 <= float(r["accuracy"]) <= 1.0
            assert int(r["parameters"]) > 0 and float(r["latency_us"]) > 0


def test_progress_bar_lines() -> None:
    import io

    s = io.StringIO()
    p = bench.BenchProgress(4, s, every=2, skipped=1)
    p.start()
    for word in ("sat", "unsat", "unsat"):
        p.update(word)
    text = s.getvalue()
    assert "resuming: 1 task(s)" in text
    lines = [ln for ln in text.splitlines() if "ETA" in ln]
    assert len(lines) == 2 and "4/4 100%" in lines[-1] and "\r" not in text
    quiet = io.StringIO()
    q = bench.BenchProgress(2, quiet, quiet=True)
    q.start()
    q.update("sat")
    assert quiet.getvalue() == ""


def test_parse_method() -> None:
    assert bench.parse_method("model2:segments=5") == ("model2", {"segments": 5})
    assert bench.parse_method("auto:attack=false") == ("auto", {"attack": False})
    with pytest.raises(ValueError):
        bench.parse_method("milp:segments")


@pytest.fixture
def one_demo_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Shrink the demo to moons_relu and its 50 %-pruned copy (20 runs with --quick)."""
    monkeypatch.setattr(bench, "PAPER_DATASETS", ("moons",))
    monkeypatch.setattr(bench, "PAPER_VARIANTS", (("prune50", "magnitude_prune", 0.5),))
    monkeypatch.setattr(bench, "list_examples", lambda: ["moons_relu"])


def test_demo_header_is_printed_before_any_work(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    seen: list[str] = []

    class Stop(Exception):
        pass

    def first_work(*args: Any, **kwargs: Any) -> None:
        seen.append(capsys.readouterr().out)
        raise Stop

    monkeypatch.setattr(bench, "run_bench", first_work)
    cli.main(["demo", "--quick"])  # ends at the Stop raised by the first piece of work
    assert len(seen) == 1
    assert seen[0].startswith("nncert demo: are the bundled Iris and moons classifiers robust")
    assert "eps 0.01 and 0.1 only (--quick)" in seen[0] and "progress on stderr" in seen[0]


def _legend(text: str) -> dict[str, str]:
    body = text.split("How to read the table\n", 1)[1].split("\n\n", 1)[0]
    terms: dict[str, str] = {}
    last = ""
    for line in body.splitlines():
        head = line[:14].strip()
        if line.startswith("  ") and not line.startswith("   ") and head and line[14:15] != "":
            last = head
            terms[last] = line[14:].strip()
        elif last:
            terms[last] += " " + line.strip()
    return terms


def test_demo_explains_its_table(
    one_demo_network: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import io
    import re

    out, progress = io.StringIO(), io.StringIO()
    keep = tmp_path / "demo-out"
    assert (
        bench.run_end_to_end(stream=out, quick=True, timeout=5, jobs=1, out=keep, progress=progress)
        == 0
    )
    text = out.getvalue()
    header, table = text.split("\n\n")[:2]
    assert header.startswith("nncert demo:")
    assert table.splitlines()[0].split()[:3] == ["network", "variant", "acc"]
    assert "moons_relu" in table and "prune50" in table and "total: 20 verification runs" in text
    # a legend entry for every column, in the table's words
    legend = _legend(text)
    for column, _ in bench.DEMO_COLUMNS:
        assert legend.get(column), f"no legend for column {column!r}: {sorted(legend)}"
    assert "prune50 = " in legend["variant"] and "50 %" in legend["variant"]
    assert "can exceed 'certified'" in legend["transfer"]
    assert "10 robustness properties: 5 test points" in text and "eps = 0.01, 0.1" in text
    # the progress bar counts what the table counts
    bar = progress.getvalue()
    assert bar.startswith("[demo] ") and "certified" in bar
    assert not re.search(r"\b(un)?sat\b", bar), bar
    # where the results went, and the suggested commands work on them
    assert f"Where the results went: {keep}" in text
    certs = sorted((keep / "certificates").rglob("*.json"))
    assert len(certs) == 20 and (keep / "models" / "moons_relu+prune50.onnx").is_file()
    steps = text.split("Try next\n", 1)[1]
    commands = [ln.strip().split() for ln in steps.splitlines() if ln.startswith("  nncert ")]
    check = next(c for c in commands if c[1] == "check")
    transfer = next(c for c in commands if c[1] == "transfer")
    capsys.readouterr()
    assert cli.main(check[1:]) == 0
    assert capsys.readouterr().out.startswith("certificate holds: the property is verified")
    assert cli.main([*transfer[1:], "--timeout", "10"]) in (0, 1)
    # a compressed copy's certificate checks against the written model
    pruned = next(c for c in certs if c.parent.name == "moons_relu+prune50")
    model = keep / "models" / "moons_relu+prune50.onnx"
    assert cli.main(["check", str(pruned), str(model)]) == 0


def test_demo_says_when_nothing_is_kept() -> None:
    rows = [
        {"network": "iris_relu", "variant": "original", "property": "p0:eps=0.01",
         "eps": "0.01", "result": "unsat"},
    ]  # fmt: skip
    where = bench._demo_where(None, rows, 0)
    assert "temporary folder that is now deleted" in " ".join(where.split())
    steps = bench._demo_next(None, rows, True, 0)
    assert steps.splitlines()[1] == "  nncert demo --quick --out demo-out"
    assert "  nncert check demo-out/certificates/iris_relu/p0_eps=0.01.json example:iris_relu" in (
        steps.splitlines()
    )


# --------------------------------------------------------------------------------------------
# No matplotlib warning leaks on stderr (issue 17)
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "times",
    [{"attack/highs": []}, {}, {"auto/highs": [0.1, 0.2], "attack/highs": []}],
    ids=["nothing-solved", "no-lines", "one-line-empty"],
)
def test_cactus_plot_emits_no_warning(times: dict[str, list[float]], tmp_path: Path) -> None:
    import warnings

    pytest.importorskip("matplotlib")
    from nncert.verify.plots import cactus_plot

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for timeout in (None, 10.0):
            path = cactus_plot(times, tmp_path / "cactus.png", timeout=timeout, title="t")
            assert path.read_bytes()[:8] == PNG_SIGNATURE
    assert not [str(w.message) for w in caught]


def test_bench_stderr_has_no_warning_when_nothing_is_solved(tmp_path: Path) -> None:
    import subprocess
    import sys

    pytest.importorskip("matplotlib")
    exe = Path(sys.executable).with_name("nncert")
    out = tmp_path / "out"
    proc = subprocess.run(
        [str(exe), "bench", "random:0:2", "--methods", "attack", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert (out / "cactus.png").exists()
    rows = _rows(out / "results.csv")
    assert rows and all(r["result"] not in ("sat", "unsat") for r in rows)  # nothing solved
    assert "Warning" not in proc.stderr, proc.stderr


def test_paper_qubo_table_counts() -> None:
    rows = [
        {"network": "n", "property": "a", "result": "sat", "truth": ""},
        {"network": "n", "property": "b", "result": "unsat", "truth": ""},
        {"network": "n", "property": "c", "result": "unknown", "truth": "sat"},
    ]
    q = [
        {"network": "n", "property": p, "dataset": "d", "activation": "tanh", "eps": 0.1,
         "result": res, "spins": sp, "time": 1.0, "master_hits": 1, "master_audited": 2}
        for p, res, sp in (("a", "sat", 10), ("b", "sat", 20), ("c", "unknown", 30))
    ]  # fmt: skip
    header, table = bench.paper_qubo_table(q, rows)
    row = dict(zip(header, table[0]))
    assert row["instances"] == 3 and row["exact_vulnerable"] == 2
    assert row["qubo_vulnerable"] == 2 and row["missed"] == 1 and row["contradictions"] == 1
    assert row["spins_max"] == 30 and row["master_optimum"] == "3/6"
