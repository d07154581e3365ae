"""The verification pipeline: VNN-COMP smoke instances, soundness and metamorphic properties."""

from __future__ import annotations

import csv
import itertools
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nncert.verify import (
    Dense,
    InvalidOptionsError,
    InvalidPropertyError,
    Network,
    ReLU,
    robustness_property,
)
from nncert.verify.options import VerifyOptions
from nncert.verify.pipeline import verify
from nncert.verify.result import Verdict


def _truth(folder: Path) -> dict[tuple[str, str], str]:
    with (folder / "truth.csv").open() as fh:
        return {(r["onnx"], r["vnnlib"]): r["truth"] for r in csv.DictReader(fh)}


@pytest.mark.parametrize("method", ["auto", "milp"])
def test_vnncomp_test_instances(vnncomp_dir: Path, method: str) -> None:
    """The five VNN-COMP 'test' instances: 4 unsat, 1 sat, all correct."""
    from nncert.verify.importers import from_onnx
    from nncert.verify.vnnlib import load_vnnlib

    folder = vnncomp_dir / "test"
    truth = _truth(folder)
    assert len(truth) == 5
    for (onnx_rel, spec_rel), answer in truth.items():
        net = from_onnx(folder / onnx_rel)
        prop = load_vnnlib(folder / spec_rel)
        res = verify(net, prop, VerifyOptions(method=method, time_limit=60))
        assert res.vnncomp_result == answer, (onnx_rel, spec_rel, res)
        if answer == "sat":
            cex = res.counterexample
            assert cex is not None and cex.onnx_checked
            assert prop.is_counterexample(cex.x, net.forward(cex.x))


def _random_relu(rng: np.random.Generator, sizes: list[int]) -> Network:
    layers: list = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        layers.append(Dense(rng.normal(size=(b, a)), rng.normal(size=b) * 0.5))
        if i < len(sizes) - 2:
            layers.append(ReLU())
    return Network(tuple(layers), (sizes[0],))


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), eps=st.sampled_from([0.05, 0.2, 0.5]))
def test_verdicts_are_sound_and_permutation_invariant(seed: int, eps: float) -> None:
    """VERIFIED survives dense sampling; FALSIFIED witnesses are real; permuting hidden
    neurons and positively rescaling a hidden ReLU layer leave the verdict unchanged."""
    rng = np.random.default_rng(seed)
    net = _random_relu(rng, [3, 6, 5, 3])
    x0 = rng.uniform(0.2, 0.8, size=3)
    label = int(np.argmax(net.forward(x0)))
    prop = robustness_property(x0, eps, label, 3)
    res = verify(net, prop, method="milp", time_limit=30)
    assert res.verdict is not Verdict.UNKNOWN
    if res.verdict is Verdict.VERIFIED:
        xs = prop.cases[0].input_box.sample(4000, rng)
        ys = net.forward(xs)
        margins = ys[:, label][:, None] - np.delete(ys, label, axis=1)
        assert margins.min() > 0.0
    else:
        cex = res.counterexample
        assert cex is not None
        assert prop.cases[cex.case_index].input_box.contains(cex.x)
        assert prop.is_counterexample(cex.x, net.forward(cex.x))

    # metamorphic: permute the first hidden layer and rescale it by c > 0
    d1, _, d2, _, d3 = net.layers
    perm = rng.permutation(6)
    c = rng.uniform(0.5, 2.0, size=6)
    w1 = d1.weight[perm] * c[:, None]  # type: ignore[union-attr]
    b1 = d1.bias[perm] * c  # type: ignore[union-attr]
    w2 = d2.weight[:, perm] / c[None, :]  # type: ignore[union-attr]
    net2 = Network((Dense(w1, b1), ReLU(), Dense(w2, d2.bias), ReLU(), d3), (3,))  # type: ignore[union-attr]
    res2 = verify(net2, prop, method="milp", time_limit=30)
    assert res2.verdict is res.verdict


def test_methods_agree_on_random_networks() -> None:
    rng = np.random.default_rng(7)
    for _ in range(6):
        net = _random_relu(rng, [2, 8, 8, 3])
        x0 = rng.uniform(0.2, 0.8, size=2)
        label = int(np.argmax(net.forward(x0)))
        prop = robustness_property(x0, 0.15, label, 3)
        verdicts = {m: verify(net, prop, method=m, time_limit=30).verdict for m in ("milp", "bab")}
        assert verdicts["milp"] is verdicts["bab"], verdicts


def test_incomplete_methods_never_contradict_complete_ones() -> None:
    rng = np.random.default_rng(11)
    for _ in range(6):
        net = _random_relu(rng, [4, 10, 3])
        x0 = rng.uniform(0.2, 0.8, size=4)
        label = int(np.argmax(net.forward(x0)))
        prop = robustness_property(x0, 0.1, label, 3)
        exact = verify(net, prop, method="milp", time_limit=30).verdict
        for m in ("ibp", "crown", "attack"):
            v = verify(net, prop, method=m, time_limit=30).verdict
            assert v is Verdict.UNKNOWN or v is exact, (m, v, exact)


def test_time_limit_gives_unknown_timeout() -> None:
    rng = np.random.default_rng(3)
    net = _random_relu(rng, [20, 60, 60, 60, 10])
    x0 = rng.uniform(0.3, 0.7, size=20)
    label = int(np.argmax(net.forward(x0)))
    prop = robustness_property(x0, 0.3, label, 10)
    res = verify(net, prop, method="milp", time_limit=0.05, attack=False)
    if res.verdict is Verdict.UNKNOWN:
        assert res.reason == "timeout"
        assert res.vnncomp_result == "timeout"
    assert res.time < 5.0


def test_bad_options_and_shapes() -> None:
    net = Network((Dense(np.eye(2), np.zeros(2)),), (2,))
    prop = robustness_property([0.5, 0.5], 0.1, 0, 2)
    with pytest.raises(InvalidOptionsError, match="did you mean 'time_limit'"):
        verify(net, prop, time_limt=3)
    with pytest.raises(InvalidOptionsError, match="method"):
        VerifyOptions(method="magic")
    with pytest.raises(InvalidPropertyError, match="inputs"):
        verify(net, robustness_property([0.5, 0.5, 0.5], 0.1, 0, 2))


def test_identity_network_decides_by_bounds() -> None:
    net = Network((Dense(np.array([[1.0, 0.0], [0.0, 1.0]]), np.zeros(2)),), (2,))
    holds = robustness_property([0.9, 0.1], 0.1, 0, 2)
    res = verify(net, holds)
    assert res.verdict is Verdict.VERIFIED and res.method in ("crown", "ibp")
    fails = robustness_property([0.55, 0.45], 0.1, 0, 2)
    res2 = verify(net, fails)
    assert res2.verdict is Verdict.FALSIFIED


def test_verified_is_withheld_when_float32_execution_contradicts_it(tmp_path: Path) -> None:
    """Exact arithmetic over the stored weights proves the margin (0.25 > 0.125), but the
    float32 model, as onnxruntime runs it, rounds 1e4 x + 0.25 to 1e4 x for x near 1e3 and
    outputs 0: the answer is unknown ("float32_disagreement"), never a "verified" that the
    deployed model contradicts. The same network without an ONNX file (float64 semantics
    only) is verified, and a margin far above the rounding is verified from ONNX too."""
    pytest.importorskip("onnxruntime")
    from nncert.compression.onnx_export import to_onnx
    from nncert.verify import Box, Dense, Network, Property, ReLU, UnsafeCase, from_onnx

    net = Network(
        (Dense([[1e4, 0.0], [1e4, 0.0]], [0.25, 0.0]), ReLU(), Dense([[1.0, -1.0]], [0.0])),
        input_shape=(2,),
    )
    box = Box([1000.0, 0.0], [1100.0, 1.0])
    prop = Property((UnsafeCase(box, [[1.0]], [0.125]),))  # unsafe: y <= 0.125
    assert verify(net, prop, time_limit=20).verdict is Verdict.VERIFIED
    path = tmp_path / "cancel.onnx"
    to_onnx(net, path, dtype="float32")
    onnx_net = from_onnx(str(path))
    res = verify(onnx_net, prop, time_limit=20)
    assert res.verdict is Verdict.UNKNOWN and res.reason == "float32_disagreement"
    assert "onnxruntime" in res.stats["float32_disagreement"]
    easy = Property((UnsafeCase(Box([1.0, 0.0], [1.1, 1.0]), [[1.0]], [0.125]),))
    assert verify(onnx_net, easy, time_limit=20).verdict is Verdict.VERIFIED
