"""Worker processes end with their parent (issue 17): SIGTERM/SIGINT to ``nncert verify
--jobs 2`` ends the branch-and-bound workers, and a worker whose parent is killed outright
exits by itself."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

psutil = pytest.importorskip("psutil")
pytest.importorskip("onnx")


def _hard_instance(tmp_path: Path) -> tuple[Path, Path]:
    """A random 10-64-64-1 ReLU network and a tight property on ``[-1, 1]^10`` that input
    splitting cannot settle within seconds (BaB times out on it with --timeout 30)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

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
    onnx.save(model, str(tmp_path / "hard.onnx"))
    xs = rng.uniform(-1, 1, size=(100_000, n))
    a = np.maximum(xs @ ws[0] + bs[0], 0)
    a = np.maximum(a @ ws[1] + bs[1], 0)
    top = float((a @ ws[2] + bs[2]).max())
    lines = [f"(declare-const X_{i} Real)" for i in range(n)] + ["(declare-const Y_0 Real)"]
    for i in range(n):
        lines += [f"(assert (>= X_{i} -1))", f"(assert (<= X_{i} 1))"]
    lines.append(f"(assert (>= Y_0 {1.5 * top}))")
    (tmp_path / "hard.vnnlib").write_text("\n".join(lines) + "\n")
    return tmp_path / "hard.onnx", tmp_path / "hard.vnnlib"


def _wait_for_children(proc: subprocess.Popen[str], n: int, within: float = 60.0) -> list:  # type: ignore[type-arg]
    parent = psutil.Process(proc.pid)
    end = time.monotonic() + within
    while time.monotonic() < end:
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"verify ended before its workers started (too easy?): {out} {err}")
        kids = parent.children(recursive=True)
        if len(kids) >= n:
            return kids
        time.sleep(0.1)
    proc.kill()
    pytest.fail("no worker processes appeared")


def _gone(kids: list, within: float = 10.0) -> bool:  # type: ignore[type-arg]
    """Whether every process in ``kids`` ends within ``within`` seconds (the rest are
    killed, so a failing test leaves nothing behind)."""
    _, alive = psutil.wait_procs(kids, timeout=within)
    for p in alive:
        p.kill()
    return not alive


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_workers_end_with_their_parent(tmp_path: Path, sig: signal.Signals) -> None:
    model, spec = _hard_instance(tmp_path)
    exe = Path(sys.executable).with_name("nncert")
    proc = subprocess.Popen(
        [str(exe), "verify", str(model), str(spec), "--method", "bab", "--jobs", "2",
         "--timeout", "60", "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    kids = _wait_for_children(proc, 2)
    proc.send_signal(sig)
    try:
        proc.wait(timeout=30)  # not communicate(): orphaned workers would hold the pipes open
        assert _gone(kids), [k.pid for k in kids if k.is_running()]
    finally:
        proc.kill()
        for k in kids:  # leave nothing behind, even when the test fails
            if k.is_running():
                k.kill()
    assert proc.returncode == 128 + int(sig)
    assert proc.stderr is not None
    err = proc.stderr.read()
    assert err.strip() == ("nncert: terminated" if sig == signal.SIGTERM else "nncert: interrupted")


def test_worker_exits_when_its_parent_is_killed(tmp_path: Path) -> None:
    """A pool worker outlives a SIGKILLed parent by at most a moment (parent-death check)."""
    script = tmp_path / "parent.py"
    script.write_text(
        textwrap.dedent(
            """
            import multiprocessing, os, sys, time
            from concurrent.futures import ProcessPoolExecutor
            from nncert.verify.executors import pool_worker_init

            if __name__ == "__main__":
                ctx = multiprocessing.get_context(sys.argv[1])
                with ProcessPoolExecutor(1, mp_context=ctx, initializer=pool_worker_init) as ex:
                    worker = ex.submit(os.getpid).result()  # the initializer has run
                    ex.submit(time.sleep, 120)
                    print(worker, flush=True)
                    time.sleep(120)
            """
        )
    )
    for method in ("fork", "forkserver"):
        proc = subprocess.Popen(
            [sys.executable, str(script), method], stdout=subprocess.PIPE, text=True
        )
        assert proc.stdout is not None
        worker = psutil.Process(int(proc.stdout.readline()))
        family = psutil.Process(proc.pid).children(recursive=True)  # + forkserver, tracker
        assert worker in family
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        assert _gone(family), (method, [k.pid for k in family if k.is_running()])
