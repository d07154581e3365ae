"""Truncated-SVD compression."""

from __future__ import annotations

import json

import numpy as np
import pytest
from cmp_helpers import mlp

from nncert.compression import low_rank
from nncert.verify.errors import InvalidOptionsError


def test_full_rank_is_exact() -> None:
    net = mlp()
    out, rec = low_rank(net, rank=100)
    assert rec.ranks == (4, 12, 3)
    assert rec.spectral_error == (0.0, 0.0, 0.0)
    for d0, d1 in zip(net.dense_layers, out.dense_layers):
        np.testing.assert_allclose(d1.weight, d0.weight, rtol=0, atol=1e-12)
        np.testing.assert_array_equal(d1.bias, d0.bias)
    X = np.random.default_rng(0).uniform(size=(64, 4))
    np.testing.assert_allclose(out.forward(X), net.forward(X), atol=1e-12)


@pytest.mark.parametrize("factorize", [False, True])
def test_truncation_rank_and_error(factorize: bool) -> None:
    net = mlp()
    out, rec = low_rank(net, rank=2, factorize=factorize)
    assert rec.ranks == (2, 2, 2)
    dense = out.normalized().dense_layers
    assert len(out.dense_layers) == (6 if factorize else 3)
    for d0, d1, s, err in zip(net.dense_layers, dense, rec.singular_values, rec.spectral_error):
        assert np.linalg.matrix_rank(d1.weight) == 2
        assert err == pytest.approx(s[2])
        assert np.linalg.norm(d0.weight - d1.weight, 2) == pytest.approx(s[2], rel=1e-9)
        assert d1.weight.shape == d0.weight.shape
    if factorize:
        # the IR stores a zero bias for each bottleneck, a deployment does not
        assert out.n_parameters == rec.parameters_after == rec.factorized_parameters + 6
        assert [d.weight.shape for d in out.dense_layers[:2]] == [(2, 4), (16, 2)]
    else:
        assert out.n_parameters == net.n_parameters
    json.dumps(rec.to_dict(), allow_nan=False)


def test_energy_selects_smallest_rank() -> None:
    net = mlp()
    _, rec = low_rank(net, energy=0.9, layers=[1])
    s = rec.singular_values[0]
    r = rec.ranks[0]
    cum = np.cumsum(s**2) / np.sum(s**2)
    assert cum[r - 1] >= 0.9 and (r == 1 or cum[r - 2] < 0.9)
    assert rec.retained_energy[0] == pytest.approx(cum[r - 1])
    _, default = low_rank(net)
    assert default.energy == 0.99


def test_low_rank_errors() -> None:
    with pytest.raises(InvalidOptionsError, match="not both"):
        low_rank(mlp(), 2, energy=0.5)
    with pytest.raises(InvalidOptionsError, match="rank"):
        low_rank(mlp(), 0)
    with pytest.raises(InvalidOptionsError, match="energy"):
        low_rank(mlp(), energy=1.5)
