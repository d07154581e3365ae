"""How the pipeline runs its stages on small networks: one BLAS thread, and branch and
bound's own falsification cut to its first round after the pipeline's PGD stage.

No timing assertions (``benchmarks/acasxu_vnncomp.py`` measures the time): the tests check
what the stages were given, with the real stages running.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from nets import small_relu_network

import nncert.verify.pipeline as pipeline
from nncert.verify import Dense, Network, ReLU
from nncert.verify.importers import from_onnx
from nncert.verify.result import Verdict
from nncert.verify.vnnlib import load_vnnlib

threadpoolctl = pytest.importorskip("threadpoolctl")


def _blas_threads() -> set[int]:
    return {
        int(p["num_threads"]) for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"
    }


def _acasxu(vnncomp_dir: Path, net: str, prop: int) -> tuple[Network, Any]:
    folder = vnncomp_dir / "acasxu"
    model = folder / "onnx" / f"ACASXU_run2a_{net}_batch_2000.onnx"
    if not model.is_file():
        pytest.skip(f"ACAS Xu not found at {folder}")
    return from_onnx(model), load_vnnlib(folder / "vnnlib" / f"prop_{prop}.vnnlib")


def test_blas_threads_by_network_size() -> None:
    rng = np.random.default_rng(0)
    small = Network(
        (Dense(rng.normal(size=(8, 4)), np.zeros(8)), ReLU(), Dense(np.ones((1, 8)), [0.0])),
        input_shape=(4,),
    )
    n = 400
    big = Network(
        (Dense(rng.normal(size=(n, n)), np.zeros(n)), ReLU(), Dense(np.ones((1, n)), [0.0])),
        input_shape=(n,),
    )
    assert small.n_parameters <= pipeline.SINGLE_THREAD_PARAMETERS < big.n_parameters
    assert pipeline.blas_threads(small) == 1
    assert pipeline.blas_threads(big) is None


def test_stages_of_a_small_network_run_with_one_blas_thread(
    vnncomp_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every stage (presolve and the method) of an ACAS Xu instance sees one BLAS thread,
    even when the caller allows two; the caller's setting is back afterwards."""
    if not any(p["user_api"] == "blas" for p in threadpoolctl.threadpool_info()):
        pytest.skip("no BLAS library that threadpoolctl can control")
    net, prop = _acasxu(vnncomp_dir, "4_4", 1)
    seen: dict[str, set[int]] = {}

    def spy(name: str, stage: Any) -> Any:
        def run(ctx: Any) -> None:
            seen[name] = _blas_threads()
            stage(ctx)

        return run

    for name, stage in list(pipeline.PRESOLVE.items()):
        monkeypatch.setitem(pipeline.PRESOLVE, name, spy(name, stage))
    real_bab = pipeline.bab_verify

    def bab(*args: Any, **kwargs: Any) -> Any:
        seen["bab"] = _blas_threads()
        return real_bab(*args, **kwargs)

    monkeypatch.setattr(pipeline, "bab_verify", bab)
    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):
        res = pipeline.verify(net, prop, time_limit=60)
        after = _blas_threads()
    assert res.verdict is Verdict.VERIFIED
    assert seen == {"sample": {1}, "crown": {1}, "attack": {1}, "bab": {1}}
    assert after == {2}


@pytest.mark.parametrize("attack", [True, False])
def test_bab_falsifies_briefly_after_the_attack_stage(
    vnncomp_dir: Path, monkeypatch: pytest.MonkeyPatch, attack: bool
) -> None:
    """After the pipeline's PGD stage, branch and bound's own falsification gets a budget
    that ends with its first round; without that stage, its usual budget. The verdict is
    the same."""
    net, prop = _acasxu(vnncomp_dir, "4_4", 1)
    given: list[float] = []
    real_bab = pipeline.bab_verify

    def bab(*args: Any, **kwargs: Any) -> Any:
        given.append(kwargs["options"].attack_budget_s)
        return real_bab(*args, **kwargs)

    monkeypatch.setattr(pipeline, "bab_verify", bab)
    res = pipeline.verify(net, prop, method="bab", time_limit=60, attack=attack)
    assert res.verdict is Verdict.VERIFIED
    assert [s.name for s in res.stages] == (
        ["sample", "crown", "attack", "bab"] if attack else ["crown", "bab"]
    )
    assert given == [pipeline.BAB_ATTACK_FIRST_ROUND if attack else pipeline.BAB_ATTACK_BUDGET]
    assert pipeline.BAB_ATTACK_FIRST_ROUND < 1e-3 < pipeline.BAB_ATTACK_BUDGET


def _small_relu_instance(seed: int = 16) -> tuple[Network, Any]:
    """A 20-input ReLU network (12-12 hidden, about 24 unstable ReLUs on the box) and an
    unsat property ``f(x) <= t`` that CROWN at the root cannot prove: ``t`` is 5% below the
    exact minimum of ``f`` (found by HiGHS when this seed was chosen: -9.1102; CROWN's
    bound -25.0)."""
    from nncert.verify import Box, Property, UnsafeCase

    net = small_relu_network(seed)
    n_in = net.n_inputs
    box = Box(-0.3 * np.ones(n_in), 0.3 * np.ones(n_in))
    return net, Property((UnsafeCase(box, [[1.0]], [-9.5757]),))


def test_auto_gives_a_small_milp_the_first_slice(monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 15 item 5: on a high-dimensional ReLU network whose MILP is small, ``auto``
    runs the MILP (with a share of the budget) before ReLU-phase branch and bound; here the
    MILP closes the case and branch and bound never runs."""
    net, prop = _small_relu_instance()
    budgets: list[float] = []
    real_milp = pipeline.milp_stage

    def milp(ctx: Any) -> None:
        budgets.append(ctx.remaining())
        real_milp(ctx)

    monkeypatch.setattr(pipeline, "milp_stage", milp)
    res = pipeline.verify(net, prop, time_limit=60)
    assert res.verdict is Verdict.VERIFIED
    assert [s.name for s in res.stages] == ["sample", "crown", "attack", "complete"]
    assert res.stats["auto_order"] == ["milp"]
    assert 0 < res.stats["auto_unstable_relus"] <= pipeline.MILP_FIRST_BINARIES
    assert "relu_bab" not in res.stats and res.method == "milp"
    assert len(budgets) == 1 and budgets[0] <= pipeline.MILP_FIRST_SHARE * 60


def test_auto_runs_relu_bab_first_when_the_milp_is_large(monkeypatch: pytest.MonkeyPatch) -> None:
    """Above :data:`MILP_FIRST_BINARIES` unstable ReLUs the order is the former one
    (ReLU-phase branch and bound with its share, then the MILP), and the verdict is the
    same."""
    net, prop = _small_relu_instance()
    monkeypatch.setattr(pipeline, "MILP_FIRST_BINARIES", 0)
    res = pipeline.verify(net, prop, time_limit=60)
    assert res.verdict is Verdict.VERIFIED
    assert res.stats["auto_order"][0] == "relu_bab"
    assert res.stats["auto_order"] in (["relu_bab"], ["relu_bab", "milp"])


@pytest.mark.parametrize("large", [False, True])
def test_relu_bab_share_grows_with_the_milp(monkeypatch: pytest.MonkeyPatch, large: bool) -> None:
    """ReLU-phase branch and bound gets :data:`RELU_BAB_SHARE` of the remaining budget, and
    :data:`RELU_BAB_LARGE_SHARE` when the MILP would have more than
    :data:`MILP_LARGE_BINARIES` binaries; the MILP runs after it with the rest."""
    net, prop = _small_relu_instance()
    monkeypatch.setattr(pipeline, "MILP_FIRST_BINARIES", 0)
    monkeypatch.setattr(pipeline, "MILP_LARGE_BINARIES", 0 if large else 10**6)
    seen: list[float] = []
    real = pipeline._run_case_method

    def run(ctx: Any, spec: Any) -> None:
        seen.append(ctx.remaining())  # the slice's budget
        real(ctx, spec)

    monkeypatch.setattr(pipeline, "_run_case_method", run)
    res = pipeline.verify(net, prop, time_limit=60)
    assert res.verdict is Verdict.VERIFIED
    assert res.stats["auto_order"][0] == "relu_bab" and len(seen) == 1
    share = pipeline.RELU_BAB_LARGE_SHARE if large else pipeline.RELU_BAB_SHARE
    assert 0.9 * share * 60 < seen[0] <= share * 60


def test_unstable_relu_count_bounds_the_milp_binaries(monkeypatch: pytest.MonkeyPatch) -> None:
    """The count that decides the first MILP slice: all hidden neurons when there are few,
    CROWN's count for mid-sized networks, IBP's (never smaller) beyond
    :data:`CROWN_COUNT_PARAMETERS`, where no CROWN pass runs."""
    from nncert.verify.bounds import crown_bounds, interval_bounds

    net, prop = _small_relu_instance()
    box = prop.cases[0].input_box
    ctx = pipeline._Context(
        network=net.normalized(),
        replay_network=net,
        prop=prop,
        options=pipeline.VerifyOptions(),
        t0=0.0,
        deadline=None,
        rng=np.random.default_rng(0),
        progress=None,
        open_cases=[0],
        lower=[None],
        upper=[None],
    )

    def count(bounds: Any) -> int:
        return sum(
            int(np.count_nonzero((b.lower < 0.0) & (b.upper > 0.0)))
            for b in bounds.pre_activation[:-1]
        )

    assert pipeline._unstable_relus(ctx) == 24  # 12 + 12 hidden neurons: no bounds needed
    monkeypatch.setattr(pipeline, "MILP_FIRST_BINARIES", 4)
    crown = count(crown_bounds(net, box))
    ibp = count(interval_bounds(net, box))
    assert crown <= ibp <= 24
    assert pipeline._unstable_relus(ctx) == crown
    calls: list[int] = []

    def no_crown(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return crown_bounds(*args, **kwargs)

    monkeypatch.setattr(pipeline, "crown_bounds", no_crown)
    monkeypatch.setattr(pipeline, "CROWN_COUNT_PARAMETERS", 0)
    assert pipeline._unstable_relus(ctx) == ibp
    assert calls == []


def test_milp_is_skipped_when_its_set_up_would_outlast_the_budget(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """HiGHS's presolve does not stop at its time limit: a MILP solve whose set-up (at
    :data:`MILP_SETUP_S_PER_NNZ` per nonzero) exceeds the remaining budget is not started."""
    net, prop = _small_relu_instance()
    calls: list[int] = []
    real = pipeline.get_solver

    def solver(name: Any) -> Any:
        s = real(name)
        orig = s.solve

        def solve(*args: Any, **kwargs: Any) -> Any:
            calls.append(1)
            return orig(*args, **kwargs)

        s.solve = solve  # type: ignore[method-assign]
        return s

    monkeypatch.setattr(pipeline, "get_solver", solver)
    monkeypatch.setattr(pipeline, "MILP_SETUP_S_PER_NNZ", 1e6)
    res = pipeline.verify(net, prop, method="milp", time_limit=20)
    assert calls == [] and res.verdict is Verdict.UNKNOWN
    monkeypatch.setattr(pipeline, "MILP_SETUP_S_PER_NNZ", 1e-5)
    res = pipeline.verify(net, prop, method="milp", time_limit=20)
    assert calls and res.verdict is Verdict.VERIFIED
