"""Magnitude and structured pruning on the numpy IR."""

from __future__ import annotations

import json

import numpy as np
import pytest
from cmp_helpers import mlp
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import networks

from nncert.compression import magnitude_prune, structured_prune
from nncert.verify.errors import InvalidOptionsError
from nncert.verify.network import Dense, Network, Tanh


@pytest.mark.parametrize("scope", ["layer", "global"])
@pytest.mark.parametrize("sparsity", [0.0, 0.3, 0.5, 0.9])
def test_magnitude_prune_hits_sparsity_and_keeps_shapes(scope: str, sparsity: float) -> None:
    net = mlp()
    pruned, rec = magnitude_prune(net, sparsity, scope=scope)
    assert [d.weight.shape for d in pruned.dense_layers] == [
        d.weight.shape for d in net.dense_layers
    ]
    total = sum(d.weight.size for d in net.dense_layers)
    zeros = sum(int(np.sum(d.weight == 0)) for d in pruned.dense_layers)
    assert zeros == round(sparsity * total) if scope == "global" else True
    assert rec.achieved_sparsity == pytest.approx(zeros / total)
    if scope == "layer":
        for d, s in zip(pruned.dense_layers, rec.layer_sparsity):
            assert s == pytest.approx(round(sparsity * d.weight.size) / d.weight.size)
    for d0, d1, m in zip(net.dense_layers, pruned.dense_layers, rec.masks):
        np.testing.assert_array_equal(d1.bias, d0.bias)  # biases never pruned
        np.testing.assert_array_equal(d1.weight, np.where(m, d0.weight, 0.0))
        if m.any() and (~m).any():  # every pruned weight is no larger than every kept one
            assert np.abs(d0.weight[~m]).max() <= np.abs(d0.weight[m]).min()
    assert rec.nonzero_after == sum(
        int(np.count_nonzero(d.weight)) + int(np.count_nonzero(d.bias)) for d in pruned.dense_layers
    )
    assert rec.parameters_after == rec.parameters_before == net.n_parameters
    json.dumps(rec.to_dict(), allow_nan=False)


def test_global_scope_uses_one_threshold() -> None:
    net = mlp()
    _, rec = magnitude_prune(net, 0.6, scope="global")
    kept = np.concatenate([np.abs(d.weight[m]) for d, m in zip(net.dense_layers, rec.masks)])
    gone = np.concatenate([np.abs(d.weight[~m]) for d, m in zip(net.dense_layers, rec.masks)])
    assert gone.max() <= kept.min()
    assert len(set(round(s, 6) for s in rec.layer_sparsity)) > 1


def test_magnitude_prune_selected_layers_and_errors() -> None:
    net = mlp()
    pruned, rec = magnitude_prune(net, 0.5, layers=[-1])
    assert rec.layers == (2,)
    assert pruned.dense_layers[0] == net.dense_layers[0]
    with pytest.raises(InvalidOptionsError, match="sparsity"):
        magnitude_prune(net, 1.0)
    with pytest.raises(InvalidOptionsError, match="scope"):
        magnitude_prune(net, 0.5, scope="net")  # type: ignore[arg-type]
    with pytest.raises(InvalidOptionsError, match="out of range"):
        magnitude_prune(net, 0.5, layers=[7])


@settings(max_examples=25)
@given(net=networks(), s=st.floats(0.0, 0.95))
def test_magnitude_prune_property(net: Network, s: float) -> None:
    pruned, _rec = magnitude_prune(net, s, scope="global")
    total = sum(d.weight.size for d in net.dense_layers)
    zeros = sum(int(np.sum(d.weight == 0)) for d in pruned.dense_layers)
    assert zeros >= round(s * total)
    assert pruned.input_shape == net.input_shape and pruned.n_outputs == net.n_outputs


@pytest.mark.parametrize("criterion", ["l2", "l1", "activation"])
def test_structured_prune_shapes_and_record(criterion: str) -> None:
    net = mlp()
    small, rec = structured_prune(net, 0.5, criterion=criterion)
    assert rec.widths_before == (16, 12) and rec.widths_after == (8, 6)
    assert [d.weight.shape for d in small.dense_layers] == [(8, 4), (6, 8), (3, 6)]
    assert small.n_parameters == rec.parameters_after < rec.parameters_before
    for h, (kept, removed) in enumerate(zip(rec.kept, rec.removed)):
        assert sorted(np.concatenate([kept, removed]).tolist()) == list(
            range(net.dense_layers[h].n_out)
        )
    # the first layer's rows are exactly the kept rows of the original
    np.testing.assert_array_equal(
        small.dense_layers[0].weight, net.dense_layers[0].weight[rec.kept[0]]
    )
    np.testing.assert_array_equal(small.dense_layers[0].bias, net.dense_layers[0].bias[rec.kept[0]])
    json.dumps(rec.to_dict(), allow_nan=False)


def test_structured_prune_without_compensation_is_a_pure_selection() -> None:
    net = mlp()
    small, rec = structured_prune(net, 0.25, compensate=False, layers=[0])
    k = rec.kept[0]
    np.testing.assert_array_equal(small.dense_layers[1].weight, net.dense_layers[1].weight[:, k])
    assert small.dense_layers[2] == net.dense_layers[2]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("criterion", ["l2", "activation"])
def test_compensation_reduces_output_error(seed: int, criterion: str) -> None:
    net = mlp(seed=seed)
    X = np.random.default_rng(10 + seed).uniform(size=(512, 4))
    _, with_c = structured_prune(net, 0.5, calibration=X, criterion=criterion)
    _, without = structured_prune(net, 0.5, calibration=X, criterion=criterion, compensate=False)
    assert with_c.calibration_mse < without.calibration_mse
    # and on fresh data from the same distribution
    Y = np.random.default_rng(99).uniform(size=(512, 4))
    a, _ = structured_prune(net, 0.5, calibration=X, criterion=criterion)
    b, _ = structured_prune(net, 0.5, calibration=X, criterion=criterion, compensate=False)
    err = lambda m: np.mean((m.forward(Y) - net.forward(Y)) ** 2)  # noqa: E731
    assert err(a) < err(b)


def test_compensation_is_exact_for_linear_redundancy() -> None:
    # hidden neuron 2 duplicates neuron 0 (same row): removing it loses nothing after refit
    W1 = np.array([[1.0, 0.5], [-0.3, 1.0], [1.0, 0.5], [0.01, 0.0]])
    net = Network(
        (Dense(W1, np.zeros(4)), Tanh(), Dense(np.arange(8.0).reshape(2, 4), np.zeros(2))),
        input_shape=(2,),
    )
    _small, rec = structured_prune(net, 0.25, criterion="l2", ridge=0.0)
    assert rec.widths_after == (3,)
    assert rec.calibration_mse < 1e-3


def test_structured_prune_errors() -> None:
    net = mlp()
    with pytest.raises(InvalidOptionsError, match="criterion"):
        structured_prune(net, 0.5, criterion="taylor")  # type: ignore[arg-type]
    with pytest.raises(InvalidOptionsError, match="calibration"):
        structured_prune(net, 0.5, calibration=np.zeros((10, 3)))
    with pytest.raises(InvalidOptionsError, match="ratio"):
        structured_prune(net, -0.1)
    _small, rec = structured_prune(net, 0.99)  # keeps at least one neuron
    assert rec.widths_after == (1, 1)
