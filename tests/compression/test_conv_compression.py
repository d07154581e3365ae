"""Compression of lowered convolutions: sparse storage kept (also in ONNX exports), pruning
among the non-zero weights, and structured pruning of whole channels (issue 16, acceptance 3)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from cmp_helpers import mlp

import nncert.compression.pruning as pruning
from nncert.compression import magnitude_prune, quantize_weights, structured_prune
from nncert.compression.onnx_export import to_onnx
from nncert.verify.errors import InvalidOptionsError
from nncert.verify.importers import from_onnx
from nncert.verify.network import Dense, Network, ReLU, prefer_sparse


def _rand_csr(rows: int, cols: int, nnz: int, rng: np.random.Generator) -> sp.csr_array:
    """A random sparse matrix with about ``nnz`` normal entries (duplicates summed), built
    without ``scipy.sparse.random``'s sampling without replacement (seconds at 1e8 entries)."""
    r = rng.integers(0, rows, size=nnz)
    c = rng.integers(0, cols, size=nnz)
    m = sp.coo_array((rng.normal(size=nnz), (r, c)), shape=(rows, cols)).tocsr()
    m.sum_duplicates()
    return m


def _sparse_net(seed: int = 0) -> Network:
    """A first layer the IR stores sparse (more than 1e7 entries, density 0.1%): a stand-in
    for a lowered convolution, with 8 "channels" of 512 rows each."""
    rng = np.random.default_rng(seed)
    n_in, n_h = 2500, 4096
    w = _rand_csr(n_h, n_in, n_h * n_in // 1000, rng)
    assert prefer_sparse(n_h, n_in, w.nnz)
    return Network(
        (
            Dense(sp.csr_array(w), rng.normal(size=n_h) * 0.1),
            ReLU(),
            Dense(rng.normal(size=(3, n_h)), np.zeros(3)),
        ),
        input_shape=(n_in,),
    )


def _same_function(a: Network, b: Network, rows: np.ndarray) -> None:
    np.testing.assert_allclose(a.forward(rows), b.forward(rows), rtol=1e-12, atol=1e-12)


def test_compressions_keep_a_sparse_layer_sparse() -> None:
    net = _sparse_net()
    assert net.dense_layers[0].sparse
    x = np.random.default_rng(1).uniform(0.0, 1.0, size=(5, net.n_inputs))
    pruned, _ = magnitude_prune(net, 0.1, among="nonzero")
    quant, _ = quantize_weights(net, bits=8)
    chan, _ = structured_prune(net, 0.25, channels=8, compensate=False, n_calibration=8)
    for out in (pruned, quant):
        assert out.dense_layers[0].sparse
        assert not out.dense_layers[-1].sparse
    # the storage rule decides: 3072 x 2500 kept entries are fewer than 1e7, so dense
    first = chan.dense_layers[0]
    assert first.sparse == prefer_sparse(first.n_out, first.n_in, first.nnz) is False
    # sparse storage denotes the dense matrix: same function as a dense copy of it
    for out in (pruned, quant):
        dense = Network(
            tuple(
                Dense(l.weight.toarray(), l.bias) if isinstance(l, Dense) and l.sparse else l
                for l in out.layers
            ),
            out.input_shape,
        )
        _same_function(out, dense, x)
        assert dense.fingerprint() == out.fingerprint()


def test_magnitude_prune_among_nonzero_counts_only_nonzero_weights() -> None:
    net = _sparse_net()
    w0 = net.dense_layers[0].weight.toarray()
    nnz = int(np.count_nonzero(w0))
    # "10% of all weights" is already zero: nothing changes
    same, rec_all = magnitude_prune(net, 0.1, layers=[0])
    assert same.dense_layers[0].nnz == nnz
    assert rec_all.among == "all"
    pruned, rec = magnitude_prune(net, 0.1, layers=[0], among="nonzero")
    w1 = pruned.dense_layers[0].weight.toarray()
    assert pruned.dense_layers[0].nnz == nnz - round(0.1 * nnz)
    gone = (w0 != 0.0) & (w1 == 0.0)
    kept = w1 != 0.0
    assert np.abs(w0[gone]).max() <= np.abs(w0[kept]).min()  # the smallest ones went
    np.testing.assert_array_equal(w1, np.where(rec.masks[0], w0, 0.0))
    assert pruned.dense_layers[1] == net.dense_layers[1]  # unselected layer untouched
    # global scope among the non-zero weights of both layers
    both, _ = magnitude_prune(net, 0.2, scope="global", among="nonzero")
    total = sum(d.nnz for d in net.dense_layers)
    assert sum(d.nnz for d in both.dense_layers) == total - round(0.2 * total)
    with pytest.raises(InvalidOptionsError, match="among"):
        magnitude_prune(net, 0.1, among="some")  # type: ignore[arg-type]


def test_structured_prune_removes_whole_channels() -> None:
    net = _sparse_net(2)
    small, rec = structured_prune(net, 0.25, channels=8, compensate=False, n_calibration=8)
    size = 4096 // 8
    kept = rec.kept[0]
    assert kept.size == 6 * size and rec.channels == 8
    groups = np.unique(kept // size)
    assert groups.size == 6
    np.testing.assert_array_equal(kept, (groups[:, None] * size + np.arange(size)).reshape(-1))
    # the removed channels are those with the smallest Frobenius norm of incoming weights
    w0 = net.dense_layers[0].weight.toarray()
    norms = np.linalg.norm(w0.reshape(8, size * net.n_inputs), axis=1)
    removed = np.setdiff1d(np.arange(8), groups)
    assert norms[removed].max() <= norms[groups].min()
    # without compensation the result is exactly the original with those neurons deleted
    d0, d1 = net.dense_layers
    ref = Network(
        (Dense(w0[kept], d0.bias[kept]), ReLU(), Dense(d1.weight[:, kept], d1.bias)),
        input_shape=net.input_shape,
    )
    assert ref == small
    x = np.random.default_rng(3).uniform(0.0, 1.0, size=(4, net.n_inputs))
    _same_function(ref, small, x)


def test_structured_prune_channel_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    net = mlp()
    width = net.dense_layers[0].n_out
    with pytest.raises(InvalidOptionsError, match="not a multiple"):
        structured_prune(net, 0.5, channels=width + 1, layers=[0])
    for bad in (0, -2, True, 1.5):
        with pytest.raises(InvalidOptionsError, match="channels"):
            structured_prune(net, 0.5, channels=bad)  # type: ignore[arg-type]
    # a refit wider than MAX_REFIT_WIDTH is refused before any work, not attempted
    monkeypatch.setattr(pruning, "MAX_REFIT_WIDTH", 1)
    with pytest.raises(InvalidOptionsError, match="compensate=False"):
        structured_prune(net, 0.25, layers=[0])
    small, _ = structured_prune(net, 0.25, layers=[0], compensate=False)
    assert small.dense_layers[0].n_out < width


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_onnx_export_writes_a_sparse_layer_as_a_sparse_initializer(
    dtype: str, tmp_path: Path
) -> None:
    import onnxruntime as ort

    net = _sparse_net(4)
    path = tmp_path / "net.onnx"
    model = to_onnx(net, path, dtype=dtype)  # type: ignore[arg-type]
    assert len(model.graph.sparse_initializer) == 1 and len(model.graph.initializer) == 3
    assert path.stat().st_size < 2_000_000  # not the 80 MB of the dense matrix
    back = from_onnx(path)
    assert back.dense_layers[0].sparse
    if dtype == "float64":
        assert back.fingerprint() == net.fingerprint()  # bit for bit
    x = np.random.default_rng(5).uniform(0.0, 1.0, size=(3, net.n_inputs))
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (y,) = sess.run(None, {"input": x.astype(np.float64 if dtype == "float64" else np.float32)})
    tol = 1e-12 if dtype == "float64" else 1e-3
    np.testing.assert_allclose(y, net.forward(x), rtol=tol, atol=tol)
    np.testing.assert_allclose(back.forward(x), net.forward(x), rtol=tol, atol=tol)


def test_structured_prune_cuts_a_layer_too_large_to_densify() -> None:
    """A lowered convolution followed by a MaxPool-tree-like sparse layer of more than 1e8
    entries: channels are cut from both in CSR (densifying the second would be refused)."""
    rng = np.random.default_rng(6)
    first = _sparse_net(6).layers[0]
    assert isinstance(first, Dense)
    second = _rand_csr(30000, 4096, 60000, rng)
    net = Network(
        (
            first,
            ReLU(),
            Dense(sp.csr_array(second), np.zeros(30000)),
            ReLU(),
            Dense(rng.normal(size=(2, 30000)) * 0.01, np.zeros(2)),
        ),
        input_shape=(2500,),
    )
    assert net.dense_layers[1].sparse and 30000 * 4096 > 10**8
    small, rec = structured_prune(
        net, 0.25, channels=8, layers=[0], compensate=False, n_calibration=8
    )
    kept = rec.kept[0]
    assert kept.size == 6 * 512
    assert small.dense_layers[1].sparse and small.dense_layers[1].n_in == kept.size
    x = rng.uniform(0.0, 1.0, size=(4, net.n_inputs))
    h = np.maximum(x @ first.weight.T + first.bias, 0.0)[:, kept]
    h2 = np.maximum(np.asarray(h @ sp.csr_array(second)[:, kept].T), 0.0)
    want = h2 @ net.dense_layers[2].weight.T
    np.testing.assert_allclose(small.forward(x), want, rtol=1e-10, atol=1e-10)
