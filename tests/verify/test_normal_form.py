"""The normal form is computed once (issue 12, item 5): ``Network.normalized()`` caches it on the
(immutable) network, and ``verify`` normalizes at the boundary while counterexamples are still
confirmed on the network the caller gave."""

from __future__ import annotations

import copy
import dataclasses
import pickle
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from nncert.verify.network import Dense, Identity, Network, ReLU
from nncert.verify.pipeline import verify
from nncert.verify.result import Verdict
from nncert.verify.spec import Box, Property, UnsafeCase, robustness_property


def _stacked(seed: int = 0, source: str | None = None) -> Network:
    """A network *not* in normal form: two consecutive Dense layers and an Identity."""
    rng = np.random.default_rng(seed)
    layers = (
        Dense(rng.normal(size=(6, 3)), rng.normal(size=6) * 0.1),
        Dense(rng.normal(size=(5, 6)) / 2.5, rng.normal(size=5) * 0.1),
        ReLU(),
        Identity(),
        Dense(rng.normal(size=(3, 5)) / 2.2, np.zeros(3)),
    )
    return Network(layers, (3,), name="stacked", source=source)


def test_normal_form_is_computed_once_and_cached() -> None:
    net = _stacked()
    norm = net.normalized()
    assert norm is not net and len(norm.layers) == 3
    assert net.normalized() is norm  # cached
    assert norm.normalized() is norm  # a normal network is its own normal form
    assert norm.name == net.name and norm.source == net.source


def test_the_cache_is_invisible() -> None:
    net, twin = _stacked(), _stacked()
    before = (repr(net), net.fingerprint(), hash(net))
    net.normalized()
    assert (repr(net), net.fingerprint(), hash(net)) == before
    assert net == twin and [f.name for f in dataclasses.fields(net)] == [
        "layers",
        "input_shape",
        "name",
        "source",
    ]
    # pickles (to worker processes) carry no second copy of the weights
    assert "_normal_form" not in pickle.loads(pickle.dumps(net)).__dict__
    assert pickle.loads(pickle.dumps(net)).normalized() == net.normalized()
    # a changed copy recomputes its own normal form
    other = dataclasses.replace(net, layers=net.layers[:2] + net.layers[3:])
    assert other.normalized() is not net.normalized()
    assert copy.deepcopy(net).normalized() == net.normalized()


@pytest.mark.parametrize("method", ["auto", "milp", "bab", "relu_bab", "benders", "window"])
def test_verify_normalizes_once(method: str, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Network] = []  # kept alive, so identities stay unique
    original: Callable[[Network], Network] = Network._compute_normal_form

    def counting(self: Network) -> Network:
        calls.append(self)
        return original(self)

    monkeypatch.setattr(Network, "_compute_normal_form", counting)
    net = _stacked(1)
    x0 = np.array([0.2, -0.1, 0.4])
    prop = robustness_property(x0, 0.05, int(np.argmax(net.forward(x0))), 3, domain=None)
    res = verify(net, prop, method=method, presolve=False, time_limit=60)
    assert res.verdict is not Verdict.UNKNOWN
    # the caller's network once; no network twice (window builds its windows' networks)
    assert calls[0] is net
    assert len({id(n) for n in calls}) == len(calls)


@pytest.mark.parametrize("method", ["auto", "attack", "milp", "bab", "relu_bab"])
def test_a_witness_of_the_normal_form_alone_is_never_reported(method: str) -> None:
    """``f(x) = (x + 1e16) - 1e16`` is 0 in float64 on [0, 0.9], while its normal form (the
    merged Dense layer) computes ``x``: every point with ``x >= 0.5`` is a witness for the
    normal form only. The caller's network decides, so no counterexample is reported and the
    best concrete values are those of ``f`` as given."""
    net = Network((Dense([[1.0]], [1e16]), Dense([[1.0]], [-1e16])), (1,))
    assert net.normalized().forward(np.array([0.9]))[0] == 0.9
    box = Box(np.zeros(1), np.full(1, 0.9))
    prop = Property((UnsafeCase(box, np.array([[-1.0]]), np.array([-0.5])),))  # y >= 0.5
    res = verify(net, prop, method=method, time_limit=30)
    assert res.verdict is Verdict.UNKNOWN and res.counterexample is None
    assert res.margin_upper == (0.5,)


def test_counterexamples_are_confirmed_on_the_callers_network(tmp_path: Path) -> None:
    """The witness is replayed on the network as given (float64 and onnxruntime on its ONNX
    source), not on the normal form whose merged Dense layers round differently."""
    pytest.importorskip("onnxruntime")
    import onnx

    from nncert.compression.onnx_export import to_onnx

    path = tmp_path / "stacked.onnx"
    onnx.save(to_onnx(_stacked(2)), str(path))
    net = _stacked(2, source=str(path))
    x0 = np.array([0.1, 0.2, 0.3])
    prop = robustness_property(x0, 2.0, int(np.argmax(net.forward(x0))), 3, domain=None)
    res = verify(net, prop, method="milp", time_limit=60)
    assert res.verdict is Verdict.FALSIFIED
    cex = res.counterexample
    assert cex is not None and cex.onnx_checked
    assert np.array_equal(cex.y, net.forward(cex.x))
