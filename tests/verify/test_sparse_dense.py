"""Sparse ``Dense.weight`` (scipy CSR) against the dense representation of the same network.

The importer stores the large, very sparse matrices of the exact MaxPool encoding as CSR
arrays (:func:`nncert.verify.network.prefer_sparse`). Here small conv + ReLU + MaxPool ONNX
models are forced onto that path (the rule's thresholds monkeypatched to "always") and compared
with the default dense import of the same file: same layers and fingerprint, the same forward
pass as onnxruntime, bounds equal up to rounding and containing sampled outputs, the same
verdicts, and certificates the independent checker accepts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

import nncert.verify.network as netmod
from nncert.certificates import certificate_from_result, check
from nncert.verify.bounds import crown_bounds, interval_bounds, spec_bounds
from nncert.verify.errors import UnsupportedLayerError
from nncert.verify.importers import from_onnx, onnxruntime_forward
from nncert.verify.network import Dense, Network, ReLU, compose_affine, densified
from nncert.verify.pipeline import verify
from nncert.verify.result import Verdict
from nncert.verify.spec import robustness_property


def _init(name: str, value: Any) -> TensorProto:
    return numpy_helper.from_array(np.asarray(value, dtype=np.float32), name)


def _model(path: Path, seed: int, *, channels: int = 2, size: int = 8, pool: int = 2) -> Path:
    """``x (1x1xSxS) -> Conv 2x2 -> Relu -> MaxPool(pool, stride pool) -> Flatten -> Gemm``."""
    rng = np.random.default_rng(seed)
    conv = size - 1
    pooled = conv // pool
    n_flat = channels * pooled * pooled
    nodes = [
        helper.make_node("Conv", ["x", "w", "cb"], ["c"], kernel_shape=[2, 2]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node(
            "MaxPool", ["r"], ["p"], kernel_shape=[pool, pool], strides=[pool, pool]
        ),
        helper.make_node("Flatten", ["p"], ["f"]),
        helper.make_node("Gemm", ["f", "gw", "gb"], ["y"], transB=1),
    ]
    inits = [
        _init("w", rng.normal(size=(channels, 1, 2, 2))),
        _init("cb", rng.normal(scale=0.1, size=channels)),
        _init("gw", rng.normal(size=(3, n_flat))),
        _init("gb", rng.normal(scale=0.1, size=3)),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, size, size])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    file = path / f"convpool_{seed}_{pool}.onnx"
    onnx.save(model, str(file))
    return file


class _Force:
    """Switch :func:`prefer_sparse` to "always sparse" and back (usable inside hypothesis)."""

    def __init__(self) -> None:
        self.saved = (netmod.SPARSE_MIN_ENTRIES, netmod.SPARSE_MAX_DENSITY)

    def __enter__(self) -> None:
        netmod.SPARSE_MIN_ENTRIES, netmod.SPARSE_MAX_DENSITY = 0, 1.0

    def __exit__(self, *exc: object) -> None:
        netmod.SPARSE_MIN_ENTRIES, netmod.SPARSE_MAX_DENSITY = self.saved


def _pair(file: Path) -> tuple[Network, Network]:
    """The default (dense) import and the forced-sparse import of ``file``."""
    dense = from_onnx(file)
    with _Force():
        sparse = from_onnx(file)
    return dense, sparse


def _n_sparse(net: Network) -> int:
    return sum(1 for layer in net.dense_layers if layer.sparse)


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Path, Network, Network]:
    file = _model(tmp_path, 0)
    dense, sparse = _pair(file)
    return file, dense, sparse


def test_forced_sparse_import_is_the_same_network(pair: tuple[Path, Network, Network]) -> None:
    file, dense, sparse = pair
    assert _n_sparse(dense) == 0
    assert _n_sparse(sparse) >= 2  # the MaxPool tree's layers
    assert sparse == dense and dense == sparse
    for a, b in zip(sparse.dense_layers, dense.dense_layers, strict=True):
        w = a.weight.toarray() if a.sparse else a.weight
        np.testing.assert_array_equal(w, b.weight)
        assert a.nnz == b.nnz
    # the fingerprint depends on the matrices only: equal under either storage rule
    assert sparse.fingerprint() == dense.fingerprint()
    with _Force():
        assert sparse.fingerprint() == dense.fingerprint()
    # ... and still tells different weights apart
    other = from_onnx(_model(file.parent, 1))
    assert other.fingerprint() != dense.fingerprint()


def test_sparse_forward_matches_onnxruntime(pair: tuple[Path, Network, Network]) -> None:
    file, dense, sparse = pair
    x = np.random.default_rng(3).uniform(0.0, 1.0, size=(1, sparse.n_inputs))
    ref = onnxruntime_forward(file, x)
    np.testing.assert_allclose(sparse.forward(x), ref, rtol=1e-5, atol=1e-5)
    xs = np.random.default_rng(4).uniform(0.0, 1.0, size=(50, sparse.n_inputs))
    np.testing.assert_allclose(sparse.forward(xs), dense.forward(xs), rtol=1e-13, atol=1e-13)
    # the normal form keeps the encoding sparse (no densification of the big layers)
    assert _n_sparse(sparse.normalized()) >= 2


def test_sparse_weight_is_frozen_and_canonical() -> None:
    src = sp.csr_array(np.array([[0.0, 2.0, 0.0], [1.0, 0.0, 0.0]]))
    layer = Dense(src, np.zeros(2))
    assert layer.sparse and layer.weight is not src
    src.data[:] = 7.0  # the layer holds its own copy
    assert layer.weight.toarray()[0, 1] == 2.0
    for arr in (layer.weight.data, layer.weight.indices, layer.weight.indptr):
        assert not arr.flags.writeable
        with pytest.raises(ValueError):
            arr[0] = 0
    # explicit zeros and unsorted duplicates give the same canonical layer
    messy = sp.csr_array(
        (np.array([1.0, 0.0, 1.5, 0.5]), np.array([1, 2, 0, 0]), np.array([0, 2, 4])),
        shape=(2, 3),
    )
    clean = Dense(np.array([[0.0, 1.0, 0.0], [2.0, 0.0, 0.0]]), np.zeros(2))
    assert Dense(messy, np.zeros(2)) == clean
    assert hash(Dense(messy, np.zeros(2))) == hash(clean)
    bad = sp.csr_array(np.array([[np.nan, 0.0]]))
    with pytest.raises(Exception, match="NaN"):
        Dense(bad, np.zeros(1))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    density=st.floats(0.05, 1.0),
    unit=st.booleans(),
)
def test_compose_affine_sparse_equals_dense(seed: int, density: float, unit: bool) -> None:
    """``compose_affine`` gives the same matrix and error bounds for either storage."""
    rng = np.random.default_rng(seed)
    wi = sp.random_array((6, 5), density=density, rng=rng, format="csr")
    if unit:  # a selection matrix: the exact-product branch
        wi = sp.csr_array(
            (np.ones(6), (np.arange(6), rng.integers(0, 5, 6))), shape=(6, 5)
        )
    inner_s = Dense(wi, rng.normal(size=6), rng.uniform(0, 1e-9, 6), None)
    inner_d = Dense(wi.toarray(), inner_s.bias, inner_s.weight_error, None)
    outer = Dense(rng.normal(size=(4, 6)), rng.normal(size=4), None, rng.uniform(0, 1e-9, 4))
    a, b = compose_affine(outer, inner_s), compose_affine(outer, inner_d)
    np.testing.assert_allclose(a.weight, b.weight, rtol=1e-14, atol=1e-15)
    for ea, eb in ((a.weight_error, b.weight_error), (a.bias_error, b.bias_error)):
        assert (ea is None) == (eb is None)
        if ea is not None and eb is not None:
            np.testing.assert_allclose(ea, eb, rtol=1e-12)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 1000), radius=st.floats(0.005, 0.3), pool=st.sampled_from([2, 3]))
def test_sparse_bounds_equal_dense_and_contain_samples(
    tmp_path_factory: pytest.TempPathFactory, seed: int, radius: float, pool: int
) -> None:
    file = _model(tmp_path_factory.mktemp("m"), seed, pool=pool)
    dense, sparse = _pair(file)
    assert _n_sparse(sparse) >= 1
    rng = np.random.default_rng(seed)
    center = rng.uniform(0.0, 1.0, size=sparse.n_inputs)
    lo, hi = center - radius, center + radius
    samples = np.vstack([rng.uniform(lo, hi, size=(200, sparse.n_inputs)), lo, hi])
    outs = sparse.forward(samples)
    eye = np.eye(3)
    for method in ("ibp", "crown", "alpha-crown"):
        ls, us = spec_bounds(sparse, (lo, hi), eye, method=method)
        ld, ud = spec_bounds(dense, (lo, hi), eye, method=method)
        # the same maths; only the order of the sums may differ (a few ulps)
        np.testing.assert_allclose(ls, ld, rtol=1e-9, atol=1e-10)
        np.testing.assert_allclose(us, ud, rtol=1e-9, atol=1e-10)
        assert np.all(ls <= outs.min(axis=0)), method
        assert np.all(us >= outs.max(axis=0)), method
    for fn in (interval_bounds, crown_bounds):
        bs, bd = fn(sparse, (lo, hi)), fn(dense, (lo, hi))
        for s_iv, d_iv in zip(bs.pre_activation, bd.pre_activation, strict=True):
            np.testing.assert_allclose(s_iv.lower, d_iv.lower, rtol=1e-9, atol=1e-10)
            np.testing.assert_allclose(s_iv.upper, d_iv.upper, rtol=1e-9, atol=1e-10)


def _robust(net: Network, eps: float, seed: int = 5) -> Any:
    x0 = np.random.default_rng(seed).uniform(0.2, 0.8, size=net.n_inputs)
    label = int(np.argmax(net.forward(x0)))
    return robustness_property(x0, eps, label, 3)


# eps 0.1: CROWN alone does not decide, so the MILP (sparse rows) and ReLU BaB must
@pytest.mark.parametrize(("method", "eps"), [("crown", 0.02), ("milp", 0.1), ("relu_bab", 0.1)])
def test_sparse_verdicts_and_certificates(
    pair: tuple[Path, Network, Network], method: str, eps: float
) -> None:
    _, dense, sparse = pair
    prop = _robust(dense, eps)
    rd = verify(dense, prop, method=method, time_limit=60)
    rs = verify(sparse, prop, method=method, time_limit=60)
    assert rs.verdict is rd.verdict is Verdict.VERIFIED
    assert rs.method == method
    cert = certificate_from_result(sparse, prop, rs)
    report = check(cert, sparse)
    assert report.ok, report.reasons
    dense_report = check(certificate_from_result(dense, prop, rd), dense)
    assert report.trust == dense_report.trust
    if method != "milp":  # a MILP optimum rests on the solver's word, dense or sparse
        assert report.trust == "independent"
    # the certificate is about the matrices: the dense network checks it too
    assert check(cert, dense).ok


def test_sparse_falsified_counterexample_replays(pair: tuple[Path, Network, Network]) -> None:
    _, dense, sparse = pair
    prop = _robust(dense, 0.6)
    rd = verify(dense, prop, time_limit=60)
    rs = verify(sparse, prop, time_limit=60)
    assert rs.verdict is rd.verdict is Verdict.FALSIFIED
    assert rs.counterexample is not None
    x = np.asarray(rs.counterexample.x).reshape(1, -1)
    assert any(case.violation(dense.forward(x))[0] <= 0.0 for case in prop.cases)
    cert = certificate_from_result(sparse, prop, rs)
    assert check(cert, sparse).ok


def test_consumers_without_sparse_support_densify_or_refuse(
    pair: tuple[Path, Network, Network], monkeypatch: pytest.MonkeyPatch
) -> None:
    from nncert.compression.pruning import magnitude_prune

    _, dense, sparse = pair
    back = densified(sparse, "test")
    assert _n_sparse(back) == 0 and back == dense
    pruned, _ = magnitude_prune(sparse, 0.1)  # small: densified first
    assert _n_sparse(pruned) == 0
    monkeypatch.setattr(netmod, "MAX_DENSE_ENTRIES", 10)
    with pytest.raises(UnsupportedLayerError, match="sparse"):
        magnitude_prune(sparse, 0.1)
    with pytest.raises(UnsupportedLayerError, match="sparse"):
        densified(sparse, "Model 2")


def test_real_size_rule() -> None:
    """The default rule: dense below 1e7 entries or above 5 % density."""
    assert not netmod.prefer_sparse(1000, 1000, 10)  # 1e6 entries
    assert netmod.prefer_sparse(18432, 23328, 27648)  # the verivital MaxPool level
    assert not netmod.prefer_sparse(23328, 784, 93312 * 10)  # a dense-ish convolution
    net = Network((Dense(np.eye(2), np.zeros(2)), ReLU(), Dense(np.ones((1, 2)), [0.0])), (2,))
    assert _n_sparse(net) == 0


def test_sparse_encoding_counts_nonzeros_against_the_cap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sparse encoding is limited by its non-zeros: refused (with its size) above the cap,
    accepted below it although its dense size is far larger."""
    import nncert.verify.importers as importers

    file = _model(tmp_path, 2)
    with _Force():
        monkeypatch.setattr(importers, "MAX_ENCODING_ENTRIES", 60)  # < 72 non-zeros
        with pytest.raises(UnsupportedLayerError, match=r"MaxPool.*sparse 36x98 layer with 72 "):
            from_onnx(file)
        monkeypatch.setattr(importers, "MAX_ENCODING_ENTRIES", 200)  # > nnz, < 72 * 98
        net = from_onnx(file)
    assert _n_sparse(net) >= 2


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 1000), radius=st.floats(0.01, 0.3))
def test_backsub_on_used_neurons_only_gives_the_same_bounds(
    tmp_path_factory: pytest.TempPathFactory, seed: int, radius: float
) -> None:
    """Restricting the back-substitution to the neurons with non-zero coefficients (on wide
    layers) changes only the order of exact-zero terms: the bounds agree to rounding and
    still contain sampled outputs; the same for the rows gathered from a sparse layer."""
    import nncert.verify.bounds as bmod

    file = _model(tmp_path_factory.mktemp("m"), seed)
    dense, sparse = _pair(file)
    rng = np.random.default_rng(seed)
    center = rng.uniform(0.0, 1.0, size=sparse.n_inputs)
    box = (center - radius, center + radius)
    outs = sparse.forward(rng.uniform(*box, size=(200, sparse.n_inputs)))
    eye = np.eye(3)
    full = spec_bounds(dense, box, eye, method="crown")  # width < 1024: whole layers
    saved = bmod.ACTIVE_COLUMNS_MIN_WIDTH
    bmod.ACTIVE_COLUMNS_MIN_WIDTH = 1
    try:
        for net in (dense, sparse):
            bmod.engine_for(net).spec_intermediate = None
            lo, hi = spec_bounds(net, box, eye, method="crown")
            np.testing.assert_allclose(lo, full[0], rtol=1e-9, atol=1e-10)
            np.testing.assert_allclose(hi, full[1], rtol=1e-9, atol=1e-10)
            assert np.all(lo <= outs.min(axis=0)) and np.all(hi >= outs.max(axis=0))
    finally:
        bmod.ACTIVE_COLUMNS_MIN_WIDTH = saved


def test_spec_bounds_reuses_hidden_bounds_of_the_same_box_only(
    pair: tuple[Path, Network, Network],
) -> None:
    import nncert.verify.bounds as bmod

    _, _, net = pair
    eng = bmod.engine_for(net)
    rng = np.random.default_rng(1)
    c = rng.uniform(0.2, 0.8, size=net.n_inputs)
    box_a, box_b = (c - 0.05, c + 0.05), (c - 0.1, c + 0.1)
    C1, C2 = np.eye(3)[:1] - np.eye(3)[1:2], np.eye(3)[2:] - np.eye(3)[:1]
    eng.spec_intermediate = None
    fresh = spec_bounds(net, box_b, C2, method="crown")
    spec_bounds(net, box_a, C1, method="crown")
    assert eng.spec_intermediate is not None
    key_a = eng.spec_intermediate[0]
    again = spec_bounds(net, box_b, C2, method="crown")  # another box: recomputed
    assert eng.spec_intermediate[0] != key_a
    np.testing.assert_array_equal(again[0], fresh[0])
    np.testing.assert_array_equal(again[1], fresh[1])
    memo = spec_bounds(net, box_b, C2, method="crown")  # same box: remembered, same result
    np.testing.assert_array_equal(memo[0], fresh[0])


def _maxpool_suite() -> Any:
    import test_onnx_maxpool as tm  # the sibling module's model builders

    return tm


@pytest.mark.parametrize(
    "kind",
    ["pool:2x2_stride2", "pool:3x3_stride1_pad1", "pool:same_upper", "pool:4x4_stride4"]
    + [f"residual:{k}" for k in _maxpool_suite().RESIDUALS],
)
def test_forced_sparse_on_the_maxpool_and_residual_models(kind: str, tmp_path: Path) -> None:
    """Every MaxPool / skip-connection model of the importer's suite, forced sparse: the same
    network as the dense import, matching onnxruntime, with bounds containing samples."""
    tm = _maxpool_suite()
    group, name = kind.split(":")
    if group == "pool":
        file = tm._conv_pool(tmp_path, tm.POOLS[name], relu=name != "same_upper")
    else:
        nodes, inits, shape = tm._residual(name)
        file = tm._save(tmp_path, nodes, inits, shape)
    dense, sparse = _pair(file)
    assert sparse == dense
    with _Force():  # under the rule both storages hash the canonical CSR form
        assert sparse.fingerprint() == dense.fingerprint()
        tm._check(file)


@pytest.mark.parametrize("shape", [(1, 376, 0), (0, 5, 3), (2, 0, 4)])
def test_matmul_right_of_an_empty_batched_operand(shape: tuple[int, int, int]) -> None:
    """``a @ w`` with an empty ``a`` of three dimensions: zeros of the right shape, dense or
    sparse ``w`` (a CROWN back-substitution through a layer restricted to no neurons reached
    the ambiguous ``reshape(-1, 0)``)."""
    k = shape[-1]
    w = np.arange(float(k * 2)).reshape(k, 2)
    for weight in (w, sp.csr_array(w)):
        out = netmod.matmul_right(np.zeros(shape), weight)
        assert out.shape == (*shape[:-1], 2)
        assert not np.any(out)
