"""Weight quantization (dequantized-float semantics)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from cmp_helpers import mlp
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import networks

from nncert.compression import decode_array, quantize_weights
from nncert.compression.quantization import integer_range
from nncert.verify.errors import InvalidOptionsError
from nncert.verify.network import Dense, Network


@pytest.mark.parametrize("bits", [8, 4])
@pytest.mark.parametrize("per_channel", [True, False])
@pytest.mark.parametrize("symmetric", [True, False])
def test_error_at_most_half_a_step(bits: int, per_channel: bool, symmetric: bool) -> None:
    net = mlp(seed=3)
    q, rec = quantize_weights(net, bits, per_channel=per_channel, symmetric=symmetric)
    lo, hi = integer_range(bits, symmetric)
    assert (rec.qmin, rec.qmax) == (lo, hi)
    for d0, d1, s, zp, qi in zip(
        net.dense_layers, q.dense_layers, rec.scales, rec.zero_points, rec.qweights
    ):
        assert d1.weight.shape == d0.weight.shape
        np.testing.assert_array_equal(d1.bias, d0.bias)  # biases stay float
        step = s[:, None] if per_channel else s[0]
        assert np.all(np.abs(d1.weight - d0.weight) <= step / 2 * (1 + 1e-12))
        assert qi.min() >= lo and qi.max() <= hi
        z = zp[:, None] if per_channel else zp[0]
        np.testing.assert_allclose(d1.weight, step * (qi.astype(np.int64) - z), rtol=0, atol=0)
        if symmetric:
            assert np.all(zp == 0)
        assert s.shape == ((d0.n_out,) if per_channel else (1,))
    levels = {len(np.unique(qi)) for qi in rec.qweights}
    assert max(levels) <= 2**bits
    json.dumps(rec.to_dict(), allow_nan=False)


def test_symmetric_uses_narrow_signed_range() -> None:
    assert integer_range(8, True) == (-127, 127)
    assert integer_range(4, True) == (-7, 7)
    assert integer_range(8, False) == (0, 255)
    net = Network((Dense([[0.7, -1.4, 0.0]], [0.25]),), input_shape=(3,))
    _q, rec = quantize_weights(net, 4)
    assert rec.qweights[0].tolist() == [[4, -7, 0]]
    assert rec.qweights[0].dtype == np.int8
    assert rec.scales[0][0] == pytest.approx(0.2)


def test_zero_rows_and_record_round_trip() -> None:
    net = Network((Dense([[0.0, 0.0], [1.0, -0.5]], [0.0, 1.0]),), input_shape=(2,))
    q, rec = quantize_weights(net, 8)
    assert q.dense_layers[0].weight[0].tolist() == [0.0, 0.0]
    doc = rec.to_dict()
    assert doc["kind"] == "quantize_weights" and doc["bias_semantics"] == "float64"
    np.testing.assert_array_equal(decode_array(doc["scales"][0]), rec.scales[0])
    np.testing.assert_array_equal(decode_array(doc["qweights"][0]), rec.qweights[0])


def test_bad_bits() -> None:
    with pytest.raises(InvalidOptionsError, match="bits"):
        quantize_weights(mlp(), 1)
    with pytest.raises(InvalidOptionsError, match="bits"):
        quantize_weights(mlp(), True)  # type: ignore[arg-type]


@settings(max_examples=25)
@given(net=networks(), bits=st.sampled_from([2, 3, 4, 8]), sym=st.booleans())
def test_quantization_error_property(net: Network, bits: int, sym: bool) -> None:
    q, rec = quantize_weights(net, bits, symmetric=sym)
    for d0, d1, s in zip(net.dense_layers, q.dense_layers, rec.scales):
        assert np.all(np.abs(d1.weight - d0.weight) <= s[:, None] / 2 * (1 + 1e-9) + 1e-300)
