"""Tree replay carries a proof to every compression the stack produces, including those that
change the architecture (structured pruning removes neurons, a distilled student may have other
widths): an input-split proof tree names only input dimensions, so it replays on any network
with the same inputs and outputs. Whatever the transfer proves is checked independently and
confirmed on a dense grid; a target the grid falsifies is never verified."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from test_tree_replay import BOX, NET, PROP, THRESHOLD, A, _bab_cert, _grid_min

from nncert.certificates import BabEvidence, Certificate, check, transfer
from nncert.compression import low_rank, magnitude_prune, quantize_weights, structured_prune
from nncert.verify.network import Dense, Network
from nncert.verify.result import Verdict

pytest.importorskip("torch")


def _student(widths: tuple[int, ...]) -> Callable[[Network], Network]:
    def make(net: Network) -> Network:
        from nncert.compression import distill

        X = np.random.default_rng(0).uniform(-1.0, 1.0, (2048, 2))
        return distill(net, widths, X=X, epochs=1500)[0]

    return make


COMPRESSIONS: dict[str, Callable[[Network], Network]] = {
    "structured10": lambda n: structured_prune(n, 0.1)[0],
    "structured25": lambda n: structured_prune(n, 0.25)[0],
    "unstructured30": lambda n: magnitude_prune(n, 0.3)[0],
    "int8": lambda n: quantize_weights(n, 8)[0],
    "int4": lambda n: quantize_weights(n, 4)[0],
    "lowrank": lambda n: low_rank(n, energy=0.99)[0],
    "student12x12": _student((12, 12)),
    "student8x8": _student((8, 8)),
}


@pytest.fixture(scope="module")
def cert() -> Certificate:
    out = _bab_cert(NET, PROP)
    assert isinstance(out.evidence, BabEvidence)
    return out


def _widths(net: Network) -> list[int]:
    return [layer.n_out for layer in net.layers if isinstance(layer, Dense)]


@pytest.mark.parametrize("name", list(COMPRESSIONS))
def test_replay_carries_to_every_compression(cert: Certificate, name: str) -> None:
    target = COMPRESSIONS[name](NET)
    res = transfer(cert, NET, target, verify_fallback=False)
    truth = _grid_min(target, BOX, A) - THRESHOLD
    if res.verdict is Verdict.VERIFIED:
        assert truth > 0.0, f"{name}: transfer verified a target whose grid minimum fails"
        report = check(res.certificate, target, expected_property=PROP)
        assert report.ok and report.trust == "independent", report.reasons
    else:
        assert res.verdict is Verdict.UNKNOWN
    if name.startswith("structured") or name == "student8x8":
        # another architecture: the margin rule does not apply, the tree replay does
        assert _widths(target) != _widths(NET)
        assert res.replay is not None
    if truth > 0.02:  # comfortably true: the proof carries (by replay or the margin rule)
        assert res.transferred and res.verdict is Verdict.VERIFIED, (name, res.reason)


def test_a_falsifiable_student_is_never_verified(cert: Certificate) -> None:
    target = _student((4,))(NET)
    shift = _grid_min(target, BOX, A) - THRESHOLD + 0.05
    last = target.layers[-1]
    assert isinstance(last, Dense)
    layers = (*target.layers[:-1], Dense(last.weight, last.bias - shift * np.array([0.5, -0.5])))
    broken = Network(layers, input_shape=target.input_shape)
    assert _grid_min(broken, BOX, A) <= THRESHOLD
    res = transfer(cert, NET, broken, verify_fallback=False)
    assert res.verdict is not Verdict.VERIFIED
