"""Scale-out (issue 20): ``nncert bench`` and ``nncert certify`` on a Dask cluster that runs as
separate processes (``dask scheduler`` and two ``dask worker`` commands on 127.0.0.1), lost
workers, unreachable schedulers, and the removed Ray executor.

Every cluster is started by a fixture and torn down by its finalizer (the process groups are
killed); as a safety net the scheduler also closes itself after two idle minutes and the
workers exit 15 s after losing their scheduler. Nothing here listens on anything but
127.0.0.1.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from nncert.verify import bench, ci, cli
from nncert.verify.examples import example_path, load_example
from nncert.verify.executors import (
    EXECUTORS,
    WORKER_LOSS_RETRIES,
    capacity,
    make_executor,
    run_each,
)
from nncert.verify.vnnlib import write_vnnlib

pytest.importorskip("onnx")

#: the ``dask`` console command of this environment (the ``dask`` extra installs it)
DASK = shutil.which("dask", path=str(Path(sys.executable).parent)) or shutil.which("dask")
NNCERT = shutil.which("nncert", path=str(Path(sys.executable).parent)) or shutil.which("nncert")


def _distributed_installed() -> bool:
    try:
        import distributed  # noqa: F401
    except ImportError:
        return False
    return True


needs_dask = pytest.mark.skipif(
    not _distributed_installed() or DASK is None,
    reason="dask.distributed (the 'dask' extra, with the `dask` command) is not installed",
)


# --------------------------------------------------------------------------------------------
# A cluster of separate processes
# --------------------------------------------------------------------------------------------


@dataclass
class Cluster:
    """A ``dask scheduler`` and ``dask worker`` processes, each in its own process group."""

    root: Path
    scheduler_file: Path
    address: str = ""
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def logs(self) -> str:
        """The last lines of every process's log (for failure messages)."""
        out = []
        for name in self.procs:
            text = (self.root / f"{name}.log").read_text(errors="replace")
            out.append(f"--- {name}:\n" + "\n".join(text.splitlines()[-15:]))
        return "\n".join(out)

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to the process group of ``name`` (nanny and worker alike)."""
        proc = self.procs[name]
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                pass

    def stop(self) -> None:
        """Terminate every process group (workers first), SIGKILL after 5 s."""
        order = [n for n in self.procs if n != "scheduler"] + ["scheduler"]
        for name in order:
            self.kill(name, signal.SIGTERM)
        end = time.monotonic() + 5.0
        for name in order:
            proc = self.procs[name]
            try:
                proc.wait(max(0.1, end - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            self.kill(name, signal.SIGKILL)
            try:
                proc.wait(5.0)
            except subprocess.TimeoutExpired:  # pragma: no cover - a zombie we cannot reap
                pass


def _spawn(cluster: Cluster, name: str, args: list[str]) -> None:
    log = (cluster.root / f"{name}.log").open("wb")
    cluster.procs[name] = subprocess.Popen(
        [str(DASK), *args],
        cwd=cluster.root,  # not the test's directory: paths must reach the workers whole
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: killpg ends nanny and worker
    )
    log.close()


def _client(cluster: Cluster) -> Any:
    from distributed import Client

    return Client(cluster.address, timeout=10, set_as_default=False)


def start_cluster(root: Path, n_workers: int = 2, *, within: float = 60.0) -> Cluster:
    """Start ``dask scheduler`` and ``n_workers`` single-threaded ``dask worker`` processes on
    127.0.0.1 and wait until every worker has joined (at most ``within`` seconds)."""
    root.mkdir(parents=True, exist_ok=True)
    cluster = Cluster(root, root / "scheduler.json")
    try:
        _spawn(
            cluster,
            "scheduler",
            [
                "scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--no-dashboard",
                "--scheduler-file",
                str(cluster.scheduler_file),
                "--idle-timeout",
                "120s",
            ],
        )
        end = time.monotonic() + within
        while not cluster.scheduler_file.exists():
            if cluster.procs["scheduler"].poll() is not None or time.monotonic() > end:
                pytest.fail(f"the dask scheduler did not start:\n{cluster.logs()}")
            time.sleep(0.05)
        time.sleep(0.1)  # the file is written in one piece, but give the writer a moment
        cluster.address = json.loads(cluster.scheduler_file.read_text())["address"]
        for k in range(1, n_workers + 1):
            _spawn(
                cluster,
                f"w{k}",
                [
                    "worker",
                    cluster.address,
                    "--host",
                    "127.0.0.1",
                    "--nthreads",
                    "1",
                    "--nworkers",
                    "1",
                    "--no-dashboard",
                    "--name",
                    f"w{k}",
                    "--local-directory",
                    str(root / f"w{k}"),
                    "--death-timeout",
                    "15s",
                ],
            )
        client = _client(cluster)
        try:
            client.wait_for_workers(n_workers, timeout=max(1.0, end - time.monotonic()))
        except TimeoutError:
            pytest.fail(f"the dask workers did not join:\n{cluster.logs()}")
        finally:
            client.close()
    except BaseException:
        cluster.stop()
        raise
    return cluster


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A scheduler and two workers shared by the comparison tests of this module."""
    if not _distributed_installed() or DASK is None:
        pytest.skip("dask.distributed (the 'dask' extra) is not installed")
    c = start_cluster(tmp_path_factory.mktemp("cluster"))
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture
def own_cluster(tmp_path: Path) -> Iterator[Cluster]:
    """A cluster for one test (one that kills a worker)."""
    if not _distributed_installed() or DASK is None:
        pytest.skip("dask.distributed (the 'dask' extra) is not installed")
    c = start_cluster(tmp_path / "cluster")
    try:
        yield c
    finally:
        c.stop()


# --------------------------------------------------------------------------------------------
# Suites and manifests
# --------------------------------------------------------------------------------------------


def _example_suite(root: Path) -> Path:
    """A VNN-COMP ``instances.csv`` over two bundled example networks: 9 properties, some
    verified, some falsified (their counterexamples are known)."""
    (root / "onnx").mkdir(parents=True)
    (root / "vnnlib").mkdir()
    rows = []
    for name, count in (("iris_relu", 6), ("moons_relu", 3)):
        shutil.copy(example_path(name), root / "onnx" / f"{name}.onnx")
        _net, props = load_example(name)
        for k, prop in enumerate(props[:count]):
            write_vnnlib(prop, root / "vnnlib" / f"{name}_{k}.vnnlib")
            rows.append(f"onnx/{name}.onnx,vnnlib/{name}_{k}.vnnlib,10\n")
    (root / "instances.csv").write_text("".join(rows))
    return root / "instances.csv"


def _manifest(root: Path) -> Path:
    """A manifest with an ONNX file model and an example model: 7 properties, one falsified
    (exit code 1)."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(example_path("moons_relu"), root / "moons.onnx")
    (root / "nncert.toml").write_text(
        """
[options]
method = "auto"

[budget]
per_property = 10.0

[[models]]
name = "iris"
path = "example:iris_relu"
properties = [
  { examples = [0, 1, 3, 6] },
  { name = "centre", x = [0.5, 0.5, 0.5, 0.5], label = 1, eps = 0.001 },
]

[[models]]
name = "moons"
path = "moons.onnx"
properties = [
  { name = "a", x = [0.5, 0.5], label = 0, eps = [0.001, 0.01] },
]
"""
    )
    return root / "nncert.toml"


def _results(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def _verdicts(rows: list[dict[str, str]]) -> dict[tuple[str, str, str], str]:
    return {(r["network"], r["property"], r["method"]): r["result"] for r in rows}


def _nncert(*args: str, cwd: Path, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    """Run the ``nncert`` console script (stdin closed, bounded in time)."""
    assert NNCERT is not None
    return subprocess.run(
        [NNCERT, *args],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _report_verdicts(path: Path) -> dict[str, tuple[str, bool]]:
    doc = json.loads(path.read_text())
    return {p["id"]: (p["verdict"], p["cached"]) for p in doc["properties"]}


# --------------------------------------------------------------------------------------------
# Bench and certify on the cluster give the serial results
# --------------------------------------------------------------------------------------------


@needs_dask
def test_bench_on_external_cluster_matches_serial(cluster: Cluster, tmp_path: Path) -> None:
    suite = _example_suite(tmp_path / "suite")
    # a relative suite path from the suite's folder: the workers run elsewhere (cluster.root)
    serial = _nncert("bench", "instances.csv", "--out", "serial", "--quiet", cwd=suite.parent)
    assert serial.returncode == 0, serial.stderr
    on = _nncert(
        "bench", "instances.csv", "--out", "dask", "--address", cluster.address, cwd=suite.parent
    )
    assert on.returncode == 0, on.stderr
    rows, ref = (
        _results(suite.parent / "dask" / "results.csv"),
        _results(suite.parent / "serial" / "results.csv"),
    )
    assert len(rows) == len(ref) == 9
    assert _verdicts(rows) == _verdicts(ref)
    assert {r["result"] for r in rows} == {"sat", "unsat"}  # both kinds of answer compared
    summary = (suite.parent / "dask" / "summary.md").read_text()
    assert f"executor dask at {cluster.address}" in summary
    # --address also takes the file of `dask scheduler --scheduler-file`
    with make_executor("dask", 1, address=str(cluster.scheduler_file)) as ex:
        assert capacity(ex, 1) == 2
        assert ex.submit(abs, -3).result(timeout=30) == 3


@needs_dask
def test_certify_on_external_cluster_matches_serial(cluster: Cluster, tmp_path: Path) -> None:
    manifest = _manifest(tmp_path / "project")
    project = manifest.parent
    common = ["certify", str(manifest), "--json"]
    serial = _nncert(*common, "--out", "serial", "--cache", "cache-s", cwd=project)
    on = _nncert(
        *common, "--out", "dask", "--cache", "cache-d", "--address", cluster.address, cwd=project
    )
    assert serial.returncode == 1, serial.stderr  # one property is falsified
    assert on.returncode == serial.returncode, on.stderr
    ref = _report_verdicts(project / "serial" / "report.json")
    got = _report_verdicts(project / "dask" / "report.json")
    assert got == ref
    assert {v for v, _ in ref.values()} == {"verified", "falsified"}
    # the same certificates and the same cache entries
    assert sorted(p.name for p in (project / "dask" / "certificates").iterdir()) == sorted(
        p.name for p in (project / "serial" / "certificates").iterdir()
    )
    assert (
        json.loads((project / "dask" / "report.json").read_text())["summary"]
        == json.loads((project / "serial" / "report.json").read_text())["summary"]
    )
    keys = {p.name for p in (project / "cache-s").rglob("*.json") if p.name != "index.json"}
    assert keys and keys == {
        p.name for p in (project / "cache-d").rglob("*.json") if p.name != "index.json"
    }
    # a second run on the cluster is served from the cache: same verdicts and exit code
    again = _nncert(
        *common, "--out", "dask", "--cache", "cache-d", "--address", cluster.address, cwd=project
    )
    assert again.returncode == serial.returncode, again.stderr
    assert {k: v for k, (v, _c) in _report_verdicts(project / "dask" / "report.json").items()} == {
        k: v for k, (v, _c) in ref.items()
    }
    # a local Dask cluster (no --address): the same again (Python API; the local pool is
    # compared with the serial run in test_ci.py)
    rep = ci.run_manifest(manifest, out_dir=project / "o", cache_dir=None, jobs=2, executor="dask")
    assert {p.id: p.verdict for p in rep.properties} == {k: v for k, (v, _c) in ref.items()}
    assert rep.exit_code == serial.returncode


# --------------------------------------------------------------------------------------------
# Lost workers
# --------------------------------------------------------------------------------------------


def _slow_suite(root: Path, rows: int = 4) -> Path:
    """``rows`` copies of a property that ``auto`` cannot settle: each run takes its whole
    time limit (``--timeout``), so workers are busy while the test kills one.

    The network is a random 10-64-64-1 ReLU network written with onnx.helper; the property
    asks for an output 1.5 times above the largest of 100k sampled outputs on [-1, 1]^10.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    n, h = 10, 64
    ws = [rng.normal(size=(n, h)) / np.sqrt(n), rng.normal(size=(h, h)) / np.sqrt(h)]
    ws.append(rng.normal(size=(h, 1)) / np.sqrt(h))
    bs = [rng.normal(size=h) * 0.1, rng.normal(size=h) * 0.1, np.zeros(1)]
    inits, nodes, cur = [], [], "x"
    for i, (w, b) in enumerate(zip(ws, bs)):
        inits += [
            numpy_helper.from_array(w.astype(np.float32), f"W{i}"),
            numpy_helper.from_array(b.astype(np.float32), f"b{i}"),
        ]
        nodes.append(helper.make_node("Gemm", [cur, f"W{i}", f"b{i}"], [f"g{i}"]))
        cur = f"g{i}"
        if i < 2:
            nodes.append(helper.make_node("Relu", [cur], [f"r{i}"]))
            cur = f"r{i}"
    graph = helper.make_graph(
        nodes,
        "hard",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, n])],
        [helper.make_tensor_value_info(cur, TensorProto.FLOAT, [1, 1])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(root / "hard.onnx"))
    xs = rng.uniform(-1, 1, size=(100_000, n))
    a = np.maximum(xs @ ws[0] + bs[0], 0)
    a = np.maximum(a @ ws[1] + bs[1], 0)
    top = float((a @ ws[2] + bs[2]).max())
    lines = [f"(declare-const X_{i} Real)" for i in range(n)] + ["(declare-const Y_0 Real)"]
    for i in range(n):
        lines += [f"(assert (>= X_{i} -1))", f"(assert (<= X_{i} 1))"]
    lines.append(f"(assert (>= Y_0 {1.5 * top}))")
    (root / "hard.vnnlib").write_text("\n".join(lines) + "\n")
    (root / "instances.csv").write_text("hard.onnx,hard.vnnlib,30\n" * rows)
    return root / "instances.csv"


def _wait_until(what: str, check: Any, proc: subprocess.Popen[str], within: float = 60.0) -> Any:
    end = time.monotonic() + within
    while time.monotonic() < end:
        value = check()
        if value:
            return value
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"nncert ended before {what}: rc={proc.returncode}\n{out}\n{err}")
        time.sleep(0.05)
    proc.kill()
    proc.communicate()
    pytest.fail(f"timed out waiting for {what}")


def _bench_proc(suite: Path, out: Path, *extra: str) -> subprocess.Popen[str]:
    assert NNCERT is not None
    return subprocess.Popen(
        [NNCERT, "bench", str(suite), "--out", str(out), "--timeout", "1.5", *extra],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _assert_nothing_lost(out: Path, n: int) -> None:
    rows = _results(out / "results.csv")
    assert len(rows) == n
    assert [r["result"] for r in rows if r["result"] == "error"] == []
    assert all(r["result"] in ("unknown", "timeout") for r in rows), rows
    journal = [json.loads(x) for x in (out / "progress.jsonl").read_text().splitlines()]
    assert len({j["key"] for j in journal}) == n  # every task journalled exactly once


@needs_dask
def test_killed_dask_worker_loses_no_instance(own_cluster: Cluster, tmp_path: Path) -> None:
    suite = _slow_suite(tmp_path / "slow", rows=2)
    out = tmp_path / "out"
    proc = _bench_proc(suite, out, "--address", own_cluster.address, "--quiet")
    client = _client(own_cluster)
    try:
        names = {a: w["name"] for a, w in client.scheduler_info()["workers"].items()}

        def both_busy() -> dict[str, Any] | None:
            busy = {a: keys for a, keys in client.processing().items() if keys}
            return busy if len(busy) == 2 else None

        busy = _wait_until("both workers were busy", both_busy, proc)
        victim = next(a for a in busy if names[a] == "w1")
        lost = set(busy[victim])
        own_cluster.kill("w1")  # the whole `dask worker` (nanny and worker process)
        try:
            _stdout, stderr = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            pytest.fail("nncert bench did not finish after the worker was killed")
        assert proc.returncode == 0, stderr
        _assert_nothing_lost(out, 2)
        # the task the killed worker was running was run again, on the other worker
        log = client.run_on_scheduler(
            lambda dask_scheduler: [(str(t[0]), str(t[2])) for t in dask_scheduler.transition_log]
        )
        runs = {k: sum(1 for key, to in log if key == k and to == "processing") for k in lost}
        assert lost and all(n >= 2 for n in runs.values()), runs
        assert len(client.scheduler_info()["workers"]) == 1
    finally:
        client.close()
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def _pool_workers(bench_proc: subprocess.Popen[str]) -> Any:
    """A function listing the local pool's worker processes of a running ``nncert bench``
    (children of its forkserver), alive and not yet killed."""
    psutil = pytest.importorskip("psutil")
    parent = psutil.Process(bench_proc.pid)

    def workers() -> list[Any]:
        try:
            servers = [k for k in parent.children() if "forkserver" in " ".join(k.cmdline())]
            found = [w for s in servers for w in s.children()]
            return [w for w in found if w.is_running() and w.status() != psutil.STATUS_ZOMBIE]
        except psutil.Error:
            return []

    return workers


def test_killed_local_worker_loses_no_instance(tmp_path: Path) -> None:
    suite = _slow_suite(tmp_path / "slow", rows=2)
    out = tmp_path / "out"
    proc = _bench_proc(suite, out, "--jobs", "2")
    workers = _pool_workers(proc)
    found = _wait_until("the pool's workers started", lambda: len(workers()) >= 2, proc)
    assert found
    time.sleep(0.5)  # let both pick up a task (each runs 1.5 s)
    workers()[0].kill()
    try:
        _stdout, stderr = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("nncert bench did not finish after a worker was killed")
    assert proc.returncode == 0, stderr
    assert "a worker process died; starting a new pool" in stderr
    _assert_nothing_lost(out, 2)


def test_task_whose_workers_keep_dying_is_an_error_row_that_resume_completes(
    tmp_path: Path,
) -> None:
    """Every pool that runs the task loses a worker: after the retries the task is an error
    row (here the only one: exit 3), not journalled; ``--resume`` then completes it."""
    suite = _slow_suite(tmp_path / "slow", rows=1)
    out = tmp_path / "out"
    proc = _bench_proc(suite, out, "--jobs", "2")
    workers = _pool_workers(proc)
    killed: set[int] = set()
    end = time.monotonic() + 90
    while proc.poll() is None and time.monotonic() < end:
        alive = [w for w in workers() if w.pid not in killed]
        if alive:
            time.sleep(0.2)
            try:
                alive[0].kill()
            except Exception:  # gone already
                continue
            killed.add(alive[0].pid)
        time.sleep(0.05)
    try:
        _stdout, stderr = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("nncert bench did not give up on a task whose workers keep dying")
    assert proc.returncode == bench.EXIT_BENCH_ALL_ERRORED, stderr
    assert len(killed) == 1 + WORKER_LOSS_RETRIES
    assert stderr.count("a worker process died; starting a new pool") == WORKER_LOSS_RETRIES
    assert "1 of 1 instances errored" in stderr
    (row,) = _results(out / "results.csv")
    assert row["result"] == "error" and "worker failure: BrokenProcessPool" in row["note"]
    journal = out / "progress.jsonl"
    assert not journal.exists() or journal.read_text() == ""  # not journalled
    again = _nncert("bench", str(suite), "--out", str(out), "--timeout", "1.5", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "resuming" not in again.stderr  # nothing was done before
    _assert_nothing_lost(out, 1)


# --------------------------------------------------------------------------------------------
# Unreachable schedulers, usage errors, the removed Ray executor
# --------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@needs_dask
def test_unreachable_address_is_exit_3_with_one_line(tmp_path: Path) -> None:
    address = f"tcp://127.0.0.1:{_free_port()}"  # nothing listens there
    _manifest(tmp_path / "project")
    procs = {  # both at once: each waits for the connect timeout
        "bench": subprocess.Popen(
            [str(NNCERT), "bench", "random:1:2", "--out", "b", "--address", address],
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        ),
        "certify": subprocess.Popen(
            [
                str(NNCERT),
                "certify",
                "project/nncert.toml",
                "--out",
                "c",
                "--no-cache",
                "--executor",
                "dask",
                "--address",
                address,
            ],
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        ),
    }
    for name, proc in procs.items():
        try:
            _out, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            pytest.fail(f"{name}: still waiting for an unreachable scheduler after 60 s")
        assert proc.returncode == 3, (name, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1, (name, err)
        assert lines[0].startswith(f"nncert: error: --address {address}: no Dask scheduler")
        assert "Traceback" not in err
    assert not (tmp_path / "c" / "report.json").exists()


@pytest.mark.parametrize("command", ["bench", "certify"])
def test_executor_usage_errors(
    command: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(cli, "EXTENSIONS", [bench.register, ci.register])
    target = "random:1:2" if command == "bench" else str(_manifest(tmp_path / "p"))
    base = [command, target, "--out", str(tmp_path / "o")]
    assert cli.main([*base, "--executor", "ray"]) == 3
    err = capsys.readouterr().err
    assert "executor 'ray': Ray support was removed" in err and "use 'dask'" in err
    assert len(err.strip().splitlines()) == 1
    assert cli.main([*base, "--executor", "spark"]) == 3
    assert "must be one of local, dask" in capsys.readouterr().err
    assert cli.main([*base, "--executor", "local", "--address", "tcp://127.0.0.1:1"]) == 3
    assert "needs the dask executor" in capsys.readouterr().err
    missing = tmp_path / "missing.json"
    assert cli.main([*base, "--address", str(missing)]) == 3
    expected = "no such scheduler file" if _distributed_installed() else "pip install"
    assert expected in capsys.readouterr().err
    assert not (tmp_path / "o" / "results.csv").exists()
    assert not (tmp_path / "o" / "report.json").exists()
    help_text = subprocess.run(
        [str(NNCERT), command, "--help"], capture_output=True, text=True, timeout=60
    ).stdout
    assert "{local,dask}" in help_text and "ray" not in help_text.lower().replace("array", "")


def test_removed_ray_executor_in_python_api(tmp_path: Path) -> None:
    assert "ray" not in EXECUTORS
    with pytest.raises(ValueError, match="Ray support was removed"):
        bench.run_bench("random:1:1", out=tmp_path / "o", executor="ray")
    with pytest.raises(ValueError, match="Ray support was removed"), make_executor("ray", 1):
        pass
    with pytest.raises(ValueError, match="Ray support was removed"):
        list(run_each(abs, [1], kind="ray"))
