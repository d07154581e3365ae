"""Queries over several networks (VNN-LIB 2.0): the joint network and its lowering.

The networks are small random ReLU networks ``f`` and ``g = f`` magnitude-pruned, written to
ONNX; the queries are VNN-LIB 2.0 text. Answers are checked against dense sampling and
against the exact MILP on the same joint property.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nets import seeded_network

from nncert.compression.onnx_export import to_onnx
from nncert.compression.pruning import magnitude_prune
from nncert.verify.errors import UnsupportedLayerError
from nncert.verify.joint import (
    JointNetwork,
    UnboundedInputError,
    joint_network,
    lower_relational,
    relational_violation,
)
from nncert.verify.network import Dense, LeakyReLU, Network, ReLU, Sigmoid
from nncert.verify.pipeline import verify
from nncert.verify.result import Verdict
from nncert.verify.spec import RelationalProperty
from nncert.verify.vnnlib import parse_vnnlib_string
from nncert.verify.vnnlib_cli import CAPABILITIES, main

N_IN = 3

QUERY = """(vnnlib-version <2.0>)
(declare-network f
  (declare-input Xf Real [{n}])
  (declare-output Yf Real [2]))
(declare-network g
  (isomorphic-to f)
  (declare-input Xg Real [{n}])
  (declare-output Yg Real [2]))
{box}
{tie}
(assert (or (>= (- Yf[0] Yg[0]) {eps}) (<= (- Yf[0] Yg[0]) -{eps})))
"""


def _query(
    eps: float, *, n: int = N_IN, tie: bool = True, lo: float = -1.0, hi: float = 1.0
) -> str:
    box = (
        "(assert (and " + " ".join(f"(<= Xf[{i}] {hi}) (>= Xf[{i}] {lo})" for i in range(n)) + "))"
    )
    ties = "(assert (and " + " ".join(f"(== Xg[{i}] Xf[{i}])" for i in range(n)) + "))"
    return QUERY.format(n=n, box=box, tie=ties if tie else "", eps=repr(float(eps)))


def _pair(
    seed: int, hidden: tuple[int, ...] = (8, 8), sparsity: float = 0.3
) -> tuple[Network, Network]:
    f = seeded_network(seed, [N_IN, *hidden, 2], [ReLU()] * len(hidden), scale=1.0)
    g, _ = magnitude_prune(f, sparsity)
    return f, g


def _max_gap_sampled(f: Network, g: Network, n: int = 20000, seed: int = 0) -> float:
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1.0, 1.0, size=(n, N_IN))
    corners = np.array(np.meshgrid(*[[-1.0, 1.0]] * N_IN)).reshape(N_IN, -1).T
    x = np.vstack([x, corners])
    return float(np.max(np.abs(f.forward(x)[:, 0] - g.forward(x)[:, 0])))


def _decide(nets: list[Network], prop: RelationalProperty, **opts: object) -> str:
    """unsat / sat (witness checked on the networks as given) / unknown."""
    for q in lower_relational(nets, prop):
        res = verify(q.network, q.prop, time_limit=60, **opts)  # type: ignore[arg-type]
        if res.verdict is Verdict.FALSIFIED:
            assert res.counterexample is not None
            xs = q.network.split_input(res.counterexample.x)
            ys = [n.forward(x) for n, x in zip(nets, xs)]
            assert relational_violation(prop, xs, ys), "witness does not satisfy the query"
            return "sat"
        if res.verdict is not Verdict.VERIFIED:
            return "unknown"
    return "unsat"


# ---------------------------------------------------------------------------------------------
# The product construction
# ---------------------------------------------------------------------------------------------


def test_joint_same_depth_is_block_diagonal_and_forward_matches() -> None:
    f, g = _pair(1)
    j = joint_network([f, g], [(0, 1, 2), (0, 1, 2)], 3, names=["f", "g"])
    assert isinstance(j, JointNetwork) and j.n_inputs == 3 and j.n_outputs == 4
    dense = j.dense_layers
    assert len(dense) == 3
    # hidden-to-hidden layer: off-diagonal blocks are zero
    assert np.all(dense[1].weight[:8, 8:] == 0.0) and np.all(dense[1].weight[8:, :8] == 0.0)
    x = np.random.default_rng(0).uniform(-1, 1, size=(50, 3))
    want = np.hstack([f.forward(x), g.forward(x)])
    np.testing.assert_allclose(Network.forward(j, x), want, rtol=1e-12, atol=1e-12)


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    alpha=st.sampled_from([None, 0.01, 0.2, 1.0]),
    depths=st.sampled_from([(2, 3), (3, 2), (1, 3), (2, 2)]),
)
def test_joint_different_depths_carry_exactly(
    seed: int, alpha: float | None, depths: tuple[int, int]
) -> None:
    act = ReLU() if alpha is None else LeakyReLU(alpha)
    nets = [
        seeded_network(seed + k, [N_IN, *([5 + k] * d), 2], [act] * d, scale=1.0)
        for k, d in enumerate(depths)
    ]
    j = joint_network(nets)  # separate inputs u = [x_f; x_g]
    u = np.random.default_rng(seed).uniform(-3, 3, size=(40, 2 * N_IN))
    want = np.hstack([nets[0].forward(u[:, :N_IN]), nets[1].forward(u[:, N_IN:])])
    got = Network.forward(j, u)  # the layers themselves, not the exact override
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)
    if alpha is None or depths[0] == depths[1]:
        assert all(d.exact for d in j.dense_layers)  # the ReLU carry is exact
    if alpha == 0.01 and depths[0] != depths[1]:
        assert any(not d.exact for d in j.dense_layers)  # 1/1.01 is rounded: recorded


def test_leaky_carry_identity_exact_in_rationals() -> None:
    """``lrelu(v) - lrelu(-v) = (1 + a) v`` for every real ``v``: checked on rationals."""
    for a in (Fraction(0), Fraction(1, 100), Fraction(1, 5), Fraction(1)):
        for v in (Fraction(-7, 3), Fraction(0), Fraction(5, 11), Fraction(-1, 1000)):

            def lrelu(t: Fraction, a: Fraction = a) -> Fraction:
                return t if t >= 0 else a * t

            assert lrelu(v) - lrelu(-v) == (1 + a) * v


def test_joint_keeps_composition_errors_per_row() -> None:
    f, g = _pair(2)
    dense = list(f.dense_layers)
    err = np.full(dense[1].n_out, 1e-9)
    f2 = Network(
        (dense[0], ReLU(), Dense(dense[1].weight, dense[1].bias, err), ReLU(), dense[2]), (N_IN,)
    )
    j = joint_network([f2, g])
    e = j.dense_layers[1].weight_error
    assert e is not None
    np.testing.assert_array_equal(e[:8], err)
    np.testing.assert_array_equal(e[8:], 0.0)


def test_refuses_different_activations_at_one_depth() -> None:
    f = seeded_network(0, [N_IN, 4, 2], [ReLU()])
    g = seeded_network(1, [N_IN, 4, 2], [Sigmoid()])
    with pytest.raises(UnsupportedLayerError, match=r"networks f and g: activation 1"):
        joint_network([f, g], names=["f", "g"])
    deep = seeded_network(1, [N_IN, 4, 4, 2], [Sigmoid(), Sigmoid()])
    short = seeded_network(2, [N_IN, 4, 2], [Sigmoid()])
    with pytest.raises(UnsupportedLayerError, match=r"only ReLU and LeakyReLU carry"):
        joint_network([short, deep], names=["f", "g"])


# ---------------------------------------------------------------------------------------------
# Lowering the relational property
# ---------------------------------------------------------------------------------------------


def test_ties_are_substituted_and_rows_dropped() -> None:
    f, g = _pair(3)
    prop = parse_vnnlib_string(_query(0.5))
    assert isinstance(prop, RelationalProperty)
    qs = lower_relational([f, g], prop)
    assert len(qs) == 1
    q = qs[0]
    assert q.network.n_inputs == N_IN  # one shared input, not 2 * N_IN
    assert q.network.selections == ((0, 1, 2), (0, 1, 2))
    for case in q.prop.cases:
        assert case.A.shape == (1, 4 + N_IN)  # only the output row is left
        np.testing.assert_array_equal(case.input_box.lower, -1.0)


def test_unbounded_input_is_reported() -> None:
    f, g = _pair(3)
    prop = parse_vnnlib_string(_query(0.5, tie=False))
    assert isinstance(prop, RelationalProperty)
    with pytest.raises(UnboundedInputError, match=r"input 0 of network g has no finite bound"):
        lower_relational([f, g], prop)


def test_one_sided_tie_is_not_an_equality() -> None:
    """``x_g <= x_f`` alone must not merge the inputs (x_g stays unbounded below)."""
    f, g = _pair(3)
    text = _query(0.5, tie=False).replace(
        "(assert (or",
        "(assert (and (<= Xg[0] Xf[0]) (<= Xg[1] Xf[1]) (<= Xg[2] Xf[2])))\n(assert (or",
    )
    prop = parse_vnnlib_string(text)
    assert isinstance(prop, RelationalProperty)
    with pytest.raises(UnboundedInputError):
        lower_relational([f, g], prop)


def test_disjoint_tied_boxes_make_the_case_infeasible() -> None:
    f, g = _pair(3)
    text = _query(0.0).replace(
        "(assert (or", "(assert (and (>= Xg[0] 2.0) (<= Xg[0] 3.0)))\n(assert (or"
    )
    prop = parse_vnnlib_string(text)
    assert isinstance(prop, RelationalProperty)
    assert lower_relational([f, g], prop) == ()
    assert _decide([f, g], prop) == "unsat"


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), factor=st.sampled_from([0.5, 0.9, 1.1, 3.0]))
def test_equivalence_against_sampling_and_milp(seed: int, factor: float) -> None:
    """The default pipeline agrees with the exact MILP and never contradicts sampling."""
    f, g = _pair(seed, hidden=(6, 6))
    gap = _max_gap_sampled(f, g)
    eps = max(gap * factor, 1e-3)
    prop = parse_vnnlib_string(_query(eps))
    assert isinstance(prop, RelationalProperty)
    ours = _decide([f, g], prop)
    exact = _decide([f, g], prop, method="milp", presolve=False)
    assert exact in ("sat", "unsat")
    if gap >= eps:  # a sampled point violates: never unsat
        assert ours != "unsat" and exact == "sat"
    if ours != "unknown":
        assert ours == exact


def test_generous_eps_is_unsat_and_tight_eps_is_sat() -> None:
    f, g = _pair(5)
    gap = _max_gap_sampled(f, g)
    assert gap > 0.0
    generous = parse_vnnlib_string(_query(gap * 4 + 1.0))
    tight = parse_vnnlib_string(_query(gap / 2))
    assert isinstance(generous, RelationalProperty) and isinstance(tight, RelationalProperty)
    assert _decide([f, g], generous) == "unsat"
    assert _decide([f, g], tight) == "sat"


# ---------------------------------------------------------------------------------------------
# The command line
# ---------------------------------------------------------------------------------------------


def _files(tmp_path: Path, f: Network, g: Network, text: str) -> list[str]:
    to_onnx(f, tmp_path / "f.onnx")
    to_onnx(g, tmp_path / "g.onnx")
    (tmp_path / "q.vnnlib").write_text(text)
    return [
        "verify",
        str(tmp_path / "q.vnnlib"),
        "--network",
        f"f={tmp_path / 'f.onnx'}",
        "--network",
        f"g={tmp_path / 'g.onnx'}",
        "--timeout",
        "60",
    ]


def _assignment(lines: list[str]) -> dict[str, np.ndarray]:
    out: dict[str, list[float]] = {}
    cur = ""
    for line in lines:
        parts = line.split()
        if len(parts) == 3 and parts[2].startswith("["):
            cur = parts[0]
            out[cur] = []
        else:
            out[cur].append(float(line))
    return {k: np.array(v) for k, v in out.items()}


def test_cli_unsat_and_sat(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f, g = _pair(7)
    gap = _max_gap_sampled(f, g)
    assert main(_files(tmp_path, f, g, _query(gap * 4 + 1.0))) == 0
    assert capsys.readouterr().out.splitlines() == ["unsat"]
    eps = gap / 2
    assert main(_files(tmp_path, f, g, _query(eps))) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "sat"
    a = _assignment(lines[1:])
    assert set(a) == {"Xf", "Yf", "Xg", "Yg"}
    np.testing.assert_array_equal(a["Xf"], a["Xg"])
    assert np.all(np.abs(a["Xf"]) <= 1.0)
    np.testing.assert_allclose(a["Yf"], f.forward(a["Xf"]), rtol=1e-12)
    np.testing.assert_allclose(a["Yg"], g.forward(a["Xg"]), rtol=1e-12)
    assert abs(a["Yf"][0] - a["Yg"][0]) >= eps


def test_cli_unbounded_is_unknown(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f, g = _pair(7)
    assert main(_files(tmp_path, f, g, _query(0.5, tie=False))) == 0
    cap = capsys.readouterr()
    assert cap.out.splitlines() == ["unknown"]
    assert "no finite bound" in cap.err


def test_cli_refuses_mismatched_activations(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = seeded_network(0, [N_IN, 4, 2], [ReLU()])
    g = seeded_network(1, [N_IN, 4, 2], [Sigmoid()])
    assert main(_files(tmp_path, f, g, _query(0.5))) == 2
    cap = capsys.readouterr()
    assert cap.out == ""
    assert "error: cannot join networks f and g: activation 1" in cap.err


def test_cli_equal_to_reuses_the_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``g (equal-to f)`` without its own --network is ``f`` (``|f(x) - f(x)| >= eps`` is
    false). A tiny eps is hard for the product (its bounds do not know the two blocks are
    equal), so a moderate one."""
    f, _ = _pair(8)
    to_onnx(f, tmp_path / "f.onnx")
    (tmp_path / "q.vnnlib").write_text(_query(1.0).replace("isomorphic-to", "equal-to"))
    argv = ["verify", str(tmp_path / "q.vnnlib"), "--network", f"f={tmp_path / 'f.onnx'}"]
    argv += ["--timeout", "60"]
    assert main(argv) == 0
    assert capsys.readouterr().out.splitlines() == ["unsat"]


def test_supports_multiple_networks() -> None:
    assert set(CAPABILITIES["multiple_network_theories"]) == {"SNET", "MENET", "MINET", "MNET"}


def test_tied_inputs_of_one_network_record_the_column_sum_rounding() -> None:
    """Selection ``(0, 0, 1)``: columns 0 and 1 are added; ``1 + 2^-60`` rounds to 1, and the
    lost ``2^-60`` is recorded as a weight error of that row (exact otherwise)."""
    w = np.array([[1.0, 2.0**-60, 3.0], [0.5, 0.25, -1.0]])
    f = Network((Dense(w, np.zeros(2)), ReLU(), Dense(np.eye(2), np.zeros(2))), (3,))
    j = joint_network([f], [(0, 0, 1)], 2)
    first = j.dense_layers[0]
    np.testing.assert_array_equal(first.weight, [[1.0, 3.0], [0.75, -1.0]])
    assert first.weight_error is not None
    assert first.weight_error[0] >= 2.0**-60 and first.weight_error[1] == 0.0
    u = np.array([[0.3, -0.7], [1.5, 2.0]])
    np.testing.assert_array_equal(j.forward(u), f.forward(u[:, [0, 0, 1]]))


def test_cli_sat_serialises_every_variable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import onnx.numpy_helper

    f, g = _pair(7)
    eps = _max_gap_sampled(f, g) / 2
    out = tmp_path / "assign"
    argv = [*_files(tmp_path, f, g, _query(eps)), "--serialise-assignments", str(out)]
    assert main(argv) == 0
    assert capsys.readouterr().out.splitlines() == ["sat"]
    vals = {
        n: onnx.numpy_helper.to_array(onnx.load_tensor(str(out / f"{n}.pb"))).astype(np.float64)
        for n in ("Xf", "Yf", "Xg", "Yg")
    }
    np.testing.assert_array_equal(vals["Xf"], vals["Xg"])
    np.testing.assert_allclose(vals["Yf"], f.forward(vals["Xf"]), rtol=1e-12)
    assert abs(vals["Yf"][0] - vals["Yg"][0]) >= eps


MONOTONE = """(vnnlib-version <2.0>)
(declare-network f
  (declare-input Xf Real [2])
  (declare-output Yf Real [2]))
(declare-network g
  (equal-to f)
  (declare-input Xg Real [2])
  (declare-output Yg Real [2]))
(assert (and (<= Xf[0] 1.0) (>= Xf[0] -1.0) (<= Xf[1] 1.0) (>= Xf[1] -1.0)))
(assert (and (<= Xg[0] 1.0) (>= Xg[0] -1.0) (<= Xg[1] 1.0) (>= Xg[1] -1.0)))
(assert (== Xg[1] Xf[1]))
(assert (>= (- Xg[0] Xf[0]) 0.25))
(assert (<= (- Yg[0] Yf[0]) {c}))
"""


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), c=st.sampled_from([-2.0, -0.5, 0.0, 0.5]))
def test_separate_inputs_with_coupling_rows(seed: int, c: float) -> None:
    """Two copies of one network on different inputs (a monotonicity-style query): the rows
    coupling x and x' go through the input carry of the joint network; the pipeline agrees
    with the exact MILP and with sampling."""
    f = seeded_network(seed, [2, 6, 2], [ReLU()], scale=1.0)
    prop = parse_vnnlib_string(MONOTONE.format(c=c))
    assert isinstance(prop, RelationalProperty)
    (q,) = lower_relational([f, f], prop)
    assert q.network.n_inputs == 3  # Xf[0], Xf[1] = Xg[1], Xg[0]
    ours = _decide([f, f], prop)
    exact = _decide([f, f], prop, method="milp", presolve=False)
    assert exact in ("sat", "unsat")
    if ours != "unknown":
        assert ours == exact
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1.0, 1.0, size=(20000, 2))
    x2 = np.column_stack([rng.uniform(-1.0, 1.0, size=20000), x[:, 1]])
    ok = (x2[:, 0] - x[:, 0] >= 0.25) & (f.forward(x2)[:, 0] - f.forward(x)[:, 0] <= c)
    if ok.any():
        assert exact == "sat"


def test_console_script_end_to_end(tmp_path: Path) -> None:
    import subprocess
    import sys

    f, g = _pair(7)
    argv = _files(tmp_path, f, g, _query(_max_gap_sampled(f, g) * 4 + 1.0))
    exe = Path(sys.executable).with_name("nncert-vnnlib")
    run = subprocess.run([str(exe), *argv], capture_output=True, text=True, timeout=120)
    assert (run.returncode, run.stdout) == (0, "unsat\n")
