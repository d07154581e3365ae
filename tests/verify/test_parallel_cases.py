"""``jobs > 1`` runs the cases of ReLU-phase branch and bound in worker processes.

The verdict never depends on the number of workers (each case closes only on its own exact
proof, and a witness is replayed before it is believed); a witness stops the other workers;
the run ends at its time limit (workers stop at the deadline, the runner waits at most
:data:`~nncert.verify.pipeline.PARALLEL_GRACE` more).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from nets import small_relu_network

from nncert.verify import pipeline
from nncert.verify.network import Network
from nncert.verify.result import Verdict
from nncert.verify.spec import Box, Property, UnsafeCase
from nncert.verify.vnnlib import load_vnnlib

MNIST = Path(__file__).resolve().parents[2].parent / "shared" / "benchmarks" / "vnncomp" / "mnistfc"


def _net() -> Network:
    """The shared small ReLU network (exact minimum of its output on ``BOX``: -9.1102)."""
    return small_relu_network()


BOX = Box(-0.3 * np.ones(20), 0.3 * np.ones(20))


def _run(prop: Property, jobs: int, **kw: Any) -> Any:
    return pipeline.verify(
        _net(), prop, method="relu_bab", time_limit=60, jobs=jobs, attack=False, **kw
    )


@pytest.mark.parametrize("jobs", [2, 3])
def test_unsat_cases_in_workers_give_the_sequential_verdict(jobs: int) -> None:
    # f(x) <= t for thresholds below the exact minimum: every case is unreachable
    prop = Property(tuple(UnsafeCase(BOX, [[1.0]], [t]) for t in (-9.5757, -9.8, -10.5, -12.0)))
    seq = _run(prop, 1)
    par = _run(prop, jobs)
    assert seq.verdict is par.verdict is Verdict.VERIFIED
    cases = sorted(r["case"] for r in par.stats["relu_bab"])
    assert cases == [0, 1, 2, 3]
    assert all(r["status"] == "verified" for r in par.stats["relu_bab"])


def test_progress_counts_the_finished_cases() -> None:
    # a long run in workers reports each finished case, not only that it is still running
    prop = Property(tuple(UnsafeCase(BOX, [[1.0]], [t]) for t in (-9.5757, -9.8, -10.5, -12.0)))
    seen: list[str] = []
    res = _run(prop, 2, progress=seen.append)
    assert res.verdict is Verdict.VERIFIED
    done = [m for m in seen if "case(s) finished" in m]
    assert [m.split(" of ")[0] for m in done] == [f"relu_bab: {k}" for k in (1, 2, 3, 4)]
    assert done[-1] == "relu_bab: 4 of 4 case(s) finished (4 closed), 0 running"


def test_a_witness_in_a_worker_is_replayed_and_decides() -> None:
    # case 2 is reachable (f <= 0 somewhere in the box); the others are not
    prop = Property(tuple(UnsafeCase(BOX, [[1.0]], [t]) for t in (-9.5757, -10.0, 0.0, -11.0)))
    seq = _run(prop, 1)
    par = _run(prop, 2)
    assert seq.verdict is par.verdict is Verdict.FALSIFIED
    assert par.counterexample is not None and par.counterexample.case_index == 2
    x = np.asarray(par.counterexample.x)
    assert float(_net().forward(x.reshape(1, -1))[0, 0]) <= 0.0


@pytest.mark.skipif(not MNIST.is_dir(), reason="shared MNIST-FC suite not present")
def test_parallel_cases_end_at_the_time_limit() -> None:
    from nncert.verify.importers import from_onnx

    net = from_onnx(str(MNIST / "onnx" / "mnist-net_256x4.onnx"))
    prop = load_vnnlib(str(MNIST / "vnnlib" / "prop_10_0.05.vnnlib"))
    t0 = time.perf_counter()
    res = pipeline.verify(net, prop, method="relu_bab", time_limit=4.0, jobs=2)
    wall = time.perf_counter() - t0
    assert res.verdict is Verdict.UNKNOWN and res.reason == "timeout"
    assert wall <= 4.0 + 0.5, wall


def test_a_queued_case_keeps_the_run_deadline() -> None:
    """A worker's case ends with the run, however long it waited in the pool's queue: the
    deadline travels as a wall-clock time, not as the seconds left at submission."""
    from nncert.verify.registry import register_method, unregister_method
    from nncert.verify.result import CaseOutcome

    def left(network: Any, case: Any, ctx: Any) -> CaseOutcome:
        return CaseOutcome("unknown", stats={"left": ctx.remaining()})

    register_method("test_deadline_probe", left)
    try:
        prop = Property((UnsafeCase(BOX, [[1.0]], [0.0]),))
        opts = pipeline.VerifyOptions()
        out = pipeline._case_task(
            "test_deadline_probe", _net(), prop.cases[0], opts, time.time() + 2.0, (0, 0), 0, None
        )
        assert out is not None and 1.5 < out.stats["left"] <= 2.0
        late = pipeline._case_task(
            "test_deadline_probe", _net(), prop.cases[0], opts, time.time() - 1.0, (0, 0), 0, None
        )
        assert late is not None and late.stats["left"] == 0.0
    finally:
        unregister_method("test_deadline_probe")
