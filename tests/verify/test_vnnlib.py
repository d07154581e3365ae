"""Tests for nncert.verify.vnnlib: VNN-LIB 1.0 reader, 2.0 via `vnnlib`, writer, errors."""

from __future__ import annotations

import gzip
import re
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nncert.verify.errors import InvalidPropertyError
from nncert.verify.spec import Box, Property, UnsafeCase, robustness_property
from nncert.verify.vnnlib import (
    MAX_DISJUNCTS,
    NetworkDecl,
    RelationalCase,
    RelationalProperty,
    TensorDecl,
    load_vnnlib,
    parse_vnnlib_string,
    write_vnnlib,
)

BENCH = Path(__file__).resolve().parents[2].parent / "shared" / "benchmarks"
VNNCOMP = BENCH / "vnncomp"
ALL_FILES = sorted(BENCH.rglob("*.vnnlib")) if BENCH.is_dir() else []
needs_bench = pytest.mark.skipif(not BENCH.is_dir(), reason="shared/benchmarks not present")


def _expected_dims() -> dict[Path, tuple[int, int]]:
    """Input/output sizes of every benchmark property, read from the ONNX model that each
    suite's ``instances.csv`` pairs it with (so any new suite is checked the same way)."""
    import onnx

    dims: dict[Path, tuple[int, int]] = {}
    for csv in sorted(BENCH.rglob("instances.csv")) if BENCH.is_dir() else []:
        models: dict[str, tuple[int, int]] = {}
        for line in csv.read_text().splitlines():
            parts = [p.strip() for p in line.split(",")]
            if len(parts) < 2 or not parts[0].endswith(".onnx"):
                continue
            if parts[0] not in models:
                graph = onnx.load(str(csv.parent / parts[0]), load_external_data=False).graph
                inits = {t.name for t in graph.initializer}
                inp = next(v for v in graph.input if v.name not in inits)

                def size(v: onnx.ValueInfoProto) -> int:
                    shape = [d.dim_value for d in v.type.tensor_type.shape.dim]
                    return int(np.prod([d for d in shape if d > 0]))

                models[parts[0]] = (size(inp), size(graph.output[0]))
            dims[(csv.parent / parts[1]).resolve()] = models[parts[0]]
    return dims


EXPECTED_DIMS = _expected_dims()

ACAS_LO = [0.6, -0.5, -0.5, 0.45, -0.5]
ACAS_HI = [0.679857769, 0.5, 0.5, 0.5, -0.45]


def _decls(n_x: int, n_y: int) -> str:
    xs = "".join(f"(declare-const X_{i} Real)\n" for i in range(n_x))
    ys = "".join(f"(declare-const Y_{j} Real)\n" for j in range(n_y))
    return xs + ys


def _box_asserts(lo: list[float], hi: list[float]) -> str:
    return "".join(
        f"(assert (>= X_{i} {a}))\n(assert (<= X_{i} {b}))\n"
        for i, (a, b) in enumerate(zip(lo, hi))
    )


# --------------------------------------------------------------------------------------------
# Shipped benchmark files
# --------------------------------------------------------------------------------------------


@needs_bench
@pytest.mark.parametrize("path", ALL_FILES, ids=lambda p: str(p.relative_to(BENCH)))
def test_every_benchmark_file_loads(path: Path) -> None:
    prop = load_vnnlib(path)
    assert isinstance(prop, Property)
    if path.resolve() in EXPECTED_DIMS:  # properties no instance uses have no model to match
        assert (prop.n_inputs, prop.n_outputs) == EXPECTED_DIMS[path.resolve()]
    assert prop.name == path.name
    for case in prop.cases:
        assert np.all(np.isfinite(case.input_box.lower))
        assert np.all(case.input_box.lower <= case.input_box.upper)


def test_benchmark_files_found() -> None:
    if not BENCH.is_dir():
        pytest.skip("shared/benchmarks not present")
    assert len(ALL_FILES) >= 50
    # every shipped property is paired with a model, so the dimension check above runs on all
    assert all(p.resolve() in EXPECTED_DIMS for p in ALL_FILES)


@needs_bench
def test_acasxu_prop1_golden() -> None:
    prop = load_vnnlib(VNNCOMP / "acasxu" / "vnnlib" / "prop_1.vnnlib")
    assert isinstance(prop, Property)
    assert len(prop.cases) == 1
    case = prop.cases[0]
    assert case.input_box == Box(np.array(ACAS_LO), np.array(ACAS_HI))
    np.testing.assert_array_equal(case.A, [[-1.0, 0.0, 0.0, 0.0, 0.0]])
    np.testing.assert_array_equal(case.b, [-3.991125645861615])
    # COC = 4 is unsafe, 3.9 is not
    x = np.array(ACAS_LO)
    assert prop.is_counterexample(x, [4.0, 0, 0, 0, 0])
    assert not prop.is_counterexample(x, [3.9, 0, 0, 0, 0])


@needs_bench
def test_acasxu_prop2_golden() -> None:
    prop = load_vnnlib(VNNCOMP / "acasxu" / "vnnlib" / "prop_2.vnnlib")
    assert isinstance(prop, Property)
    assert len(prop.cases) == 1
    case = prop.cases[0]
    assert case.input_box == Box(np.array(ACAS_LO), np.array(ACAS_HI))
    # unsafe iff Y_j <= Y_0 for j = 1..4 (COC maximal): rows e_j - e_0, b = 0
    expected = np.zeros((4, 5))
    expected[:, 0] = -1.0
    expected[np.arange(4), np.arange(1, 5)] = 1.0
    np.testing.assert_array_equal(case.A, expected)
    np.testing.assert_array_equal(case.b, np.zeros(4))


@needs_bench
def test_acasxu_prop6_two_input_boxes_times_four_outputs() -> None:
    prop = load_vnnlib(VNNCOMP / "acasxu" / "vnnlib" / "prop_6.vnnlib")
    assert isinstance(prop, Property)
    assert len(prop.cases) == 8
    boxes = {c.input_box for c in prop.cases}
    assert len(boxes) == 2
    assert all(c.n_rows == 1 for c in prop.cases)


@needs_bench
@pytest.mark.parametrize("name", ["test_tiny.vnnlib", "test_small.vnnlib"])
def test_smoke_files_with_input_constraints_in_disjuncts(name: str) -> None:
    prop = load_vnnlib(VNNCOMP / "test" / name)
    assert isinstance(prop, Property)
    assert len(prop.cases) == 1
    case = prop.cases[0]
    assert case.input_box == Box(np.array([-1.0]), np.array([1.0]))
    np.testing.assert_array_equal(case.A, [[-1.0]])
    np.testing.assert_array_equal(case.b, [-100.0])


@needs_bench
def test_mnist_parses_fast() -> None:
    path = VNNCOMP / "mnistfc" / "vnnlib" / "prop_0_0.03.vnnlib"
    load_vnnlib(path)  # warm up
    best = np.inf
    for _ in range(3):  # best of three: robust against a busy CI machine
        t0 = time.perf_counter()
        prop = load_vnnlib(path)
        best = min(best, time.perf_counter() - t0)
    assert best < 0.5
    assert isinstance(prop, Property)
    assert len(prop.cases) == 9
    assert prop.n_inputs == 784


def test_large_generated_spec_is_fast() -> None:
    n = 784
    text = _decls(n, 10) + _box_asserts([0.0] * n, [0.03] * n)
    text += "(assert (or\n" + "".join(f"  (and (>= Y_{j} Y_4))\n" for j in range(10) if j != 4)
    text += "))\n"
    t0 = time.perf_counter()
    prop = parse_vnnlib_string(text)
    assert time.perf_counter() - t0 < 0.5
    assert isinstance(prop, Property)
    assert len(prop.cases) == 9


# --------------------------------------------------------------------------------------------
# 1.0 semantics
# --------------------------------------------------------------------------------------------


def test_linear_terms_and_operators() -> None:
    text = (
        _decls(2, 3)
        + "; comment (with parens\n"
        + "(assert (and (>= X_0 -0.5) (<= X_0 1e-05) (= X_1 2.5E+1)))\n"
        + "(assert (<= (+ Y_0 (* 2 Y_1) (* Y_2 -3.0)) (- 4)))\n"
        + "(assert (> (- Y_0 Y_1 Y_2) (/ 1 4)))\n"
        + "(assert (< (* 0.5 (+ Y_0 1)) Y_2))\n"
        + "(assert (= Y_1 (- Y_1 (- Y_2))))\n"
    )
    prop = parse_vnnlib_string(text)
    assert isinstance(prop, Property)
    (case,) = prop.cases
    assert case.input_box == Box(np.array([-0.5, 25.0]), np.array([1e-05, 25.0]))
    np.testing.assert_array_equal(
        case.A,
        [
            [1.0, 2.0, -3.0],  # Y0 + 2 Y1 - 3 Y2 <= -4
            [-1.0, 1.0, 1.0],  # -(Y0 - Y1 - Y2) <= -1/4
            [0.5, 0.0, -1.0],  # 0.5 Y0 + 0.5 - Y2 <= 0
            [0.0, 0.0, -1.0],  # Y1 - Y1 - Y2 = 0 (two rows)
            [0.0, 0.0, 1.0],
        ],
    )
    np.testing.assert_array_equal(case.b, [-4.0, -0.25, -0.5, 0.0, 0.0])


def test_nested_and_or_to_dnf_with_global_bounds() -> None:
    text = _decls(2, 2) + (
        "(assert (<= X_0 1))\n(assert (>= X_0 -1))\n(assert (<= X_1 1))\n(assert (>= X_1 -1))\n"
        "(assert (or (and (>= X_0 0) (or (<= Y_0 0) (<= Y_1 0)))"
        " (and (<= X_0 0.5) (<= Y_0 Y_1))))\n"
        "(assert (or (>= Y_0 -10) (>= Y_1 -20)))\n"
    )
    prop = parse_vnnlib_string(text)
    assert isinstance(prop, Property)
    assert len(prop.cases) == 6
    los = [c.input_box.lower[0] for c in prop.cases]
    his = [c.input_box.upper[0] for c in prop.cases]
    assert los == [0.0, 0.0, 0.0, 0.0, -1.0, -1.0]
    assert his == [1.0, 1.0, 1.0, 1.0, 0.5, 0.5]
    np.testing.assert_array_equal(prop.cases[0].A, [[1.0, 0.0], [-1.0, 0.0]])
    np.testing.assert_array_equal(prop.cases[0].b, [0.0, 10.0])
    np.testing.assert_array_equal(prop.cases[5].A, [[1.0, -1.0], [0.0, -1.0]])


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        pytest.param(
            "(assert (>= X_0 0))(assert (<= X_0 1))\n(assert (>= X_1 0.5))\n"
            "(assert (<= X_1 0.4))\n(assert (<= Y_0 0))",
            "empty input box: X_1 has lower bound 0.5 (line 5) > upper bound 0.4 (line 6)",
            id="top-level-asserts",
        ),
        pytest.param(
            "(assert (and (>= X_0 0) (<= X_0 1) (= X_1 0.3) (= X_1 0.2) (<= Y_0 0)))",
            "empty input box: X_1 has lower bound 0.3 (line 4) > upper bound 0.2 (line 4)",
            id="one-and-with-equalities",
        ),
        pytest.param(
            "(assert (or (and (>= X_0 0) (<= X_0 1) (>= X_1 0) (<= X_1 1) (<= Y_0 5))\n"
            " (and (>= X_0 2) (<= X_0 1) (>= X_1 0) (<= X_1 1) (<= Y_0 0))))",
            "empty input box: X_0 has lower bound 2.0",
            id="typo-in-one-disjunct",
        ),
        pytest.param(
            "(assert (>= X_0 0.5))(assert (<= X_0 1))(assert (>= X_1 0))(assert (<= X_1 1))\n"
            "(assert (or (and (<= X_0 0.4) (<= Y_0 0)) (and (<= X_0 0.2) (<= Y_0 1))))",
            "empty input region: every disjunct has an empty input box (disjunct 1 of 2: X_0",
            id="every-disjunct-empty-by-distribution",
        ),
    ],
)
def test_empty_input_box_is_an_error(body: str, fragment: str) -> None:
    """A lower bound above an upper bound is a typo: an error, never a vacuous 'unsat'."""
    with pytest.raises(InvalidPropertyError, match=re.escape(fragment)) as info:
        parse_vnnlib_string(_decls(2, 1) + body, name="prop.vnnlib")
    assert str(info.value).startswith("prop.vnnlib: ")
    assert "\n" not in str(info.value)


def test_empty_input_box_in_vnnlib2_names_the_tensor_entry() -> None:
    pytest.importorskip("vnnlib")
    text = (
        "(vnnlib-version <2.0>)\n"
        "(declare-network f (declare-input X real [2]) (declare-output Y real [1]))\n"
        "(assert (and (>= X[0] 0.0) (<= X[0] 1.0) (>= X[1] 0.7) (<= X[1] 0.6)))\n"
        "(assert (<= Y[0] 0.0))\n"
    )
    with pytest.raises(InvalidPropertyError, match=r"empty input box: X\[1\] has lower bound 0\.7"):
        parse_vnnlib_string(text, name="q.vnnlib")


def test_disjunct_emptied_by_distribution_is_dropped() -> None:
    """Bounds from different parts of the formula may legitimately leave a disjunct empty."""
    text = _decls(1, 1) + (
        "(assert (>= X_0 0.5))(assert (<= X_0 1))\n"
        "(assert (or (and (<= X_0 0.4) (<= Y_0 0)) (and (<= X_0 0.9) (<= Y_0 5))))"
    )
    prop = parse_vnnlib_string(text)
    assert isinstance(prop, Property)
    (case,) = prop.cases
    assert (case.input_box.lower[0], case.input_box.upper[0]) == (0.5, 0.9)
    np.testing.assert_array_equal(case.b, [5.0])


def test_constant_false_gives_a_vacuous_property() -> None:
    vac = parse_vnnlib_string(
        _decls(2, 1) + "(assert (<= X_0 1))(assert (>= X_0 0))"
        "(assert (<= X_1 1))(assert (>= X_1 0))(assert (<= 1 0))"
    )
    assert isinstance(vac, Property)
    assert vac.name.endswith("(vacuous)")
    (case,) = vac.cases
    # trivially infeasible: 0 . y <= -1 never holds
    assert case.violation(np.array([[123.0]]))[0] > 0
    assert not vac.is_counterexample([0.0, 0.0], [0.0])

    # a constant-false comparison empties its disjunct; a constant-true one is ignored
    prop2 = parse_vnnlib_string(
        _decls(1, 1) + "(assert (<= 0 X_0 ))(assert (<= X_0 1))(assert (or (<= 1 0) (<= 0 1)))"
    )
    assert isinstance(prop2, Property)
    assert len(prop2.cases) == 1
    assert prop2.cases[0].n_rows == 0


def test_vacuous_relational_property_round_trips(tmp_path: Path) -> None:
    pytest.importorskip("vnnlib")
    nets = (
        NetworkDecl("f", (TensorDecl("Xf", (2,), "real"),), (TensorDecl("Yf", (1,), "real"),)),
        NetworkDecl(
            "g",
            (TensorDecl("Xg", (2,), "real"),),
            (TensorDecl("Yg", (1,), "real"),),
            relation="equal-to",
            related_to="f",
        ),
    )
    prop = RelationalProperty(nets, (), name="v")
    out = tmp_path / "v.vnnlib"
    write_vnnlib(prop, out)
    back = load_vnnlib(out)
    assert isinstance(back, RelationalProperty) and back.cases == ()


def test_crlf_tabs_and_one_line_files() -> None:
    text = _decls(1, 1) + "(assert (>= X_0 0))\n(assert (<= X_0 1))\n(assert (<= Y_0 2))\n"
    ref = parse_vnnlib_string(text)
    assert parse_vnnlib_string(text.replace("\n", "\r\n").replace(" ", "\t")) == ref
    assert parse_vnnlib_string(text.replace("\n", " ")) == ref


def test_strict_is_non_strict() -> None:
    a = parse_vnnlib_string(_decls(1, 1) + "(assert (> X_0 0))(assert (< X_0 1))(assert (< Y_0 2))")
    b = parse_vnnlib_string(
        _decls(1, 1) + "(assert (>= X_0 0))(assert (<= X_0 1))(assert (<= Y_0 2))"
    )
    assert a == b


def test_deep_nesting_does_not_recurse() -> None:
    depth = 20_000
    inner = "(and (>= X_0 0) (<= X_0 1) (<= Y_0 (+ " + "(+ " * depth + "Y_0" + ")" * depth + " 1)))"
    text = _decls(1, 1) + "(assert " + "(and " * depth + inner + ")" * depth + ")"
    prop = parse_vnnlib_string(text)
    assert isinstance(prop, Property)
    # Y_0 <= Y_0 + 1 simplifies to 0 <= 1: no output row
    assert prop.cases[0].n_rows == 0


def test_dnf_blowup_is_rejected_quickly() -> None:
    clauses = " ".join(f"(or (<= Y_0 {i}) (<= Y_1 {i}))" for i in range(40))
    text = _decls(1, 2) + "(assert (>= X_0 0))(assert (<= X_0 1))(assert (and " + clauses + "))"
    t0 = time.perf_counter()
    with pytest.raises(InvalidPropertyError, match=str(MAX_DISJUNCTS)):
        parse_vnnlib_string(text, name="big.vnnlib")
    assert time.perf_counter() - t0 < 5.0


# --------------------------------------------------------------------------------------------
# gzip and writer round trips
# --------------------------------------------------------------------------------------------


@needs_bench
def test_gzip_round_trip(tmp_path: Path) -> None:
    src = VNNCOMP / "acasxu" / "vnnlib" / "prop_6.vnnlib"
    gz = tmp_path / "prop_6.vnnlib.gz"
    gz.write_bytes(gzip.compress(src.read_bytes()))
    a, b = load_vnnlib(src), load_vnnlib(gz)
    assert a == b
    # gzip detected from content even without the suffix
    odd = tmp_path / "prop_6.vnnlib"
    odd.write_bytes(gz.read_bytes())
    assert load_vnnlib(odd) == a


@needs_bench
@pytest.mark.parametrize(
    "rel",
    ["acasxu/vnnlib/prop_6.vnnlib", "test/test_tiny.vnnlib", "mnistfc/vnnlib/prop_0_0.03.vnnlib"],
)
def test_benchmark_write_round_trip(tmp_path: Path, rel: str) -> None:
    prop = load_vnnlib(VNNCOMP / rel)
    assert isinstance(prop, Property)
    out = tmp_path / "out.vnnlib"
    write_vnnlib(prop, out)
    assert load_vnnlib(out) == prop


def test_robustness_property_export(tmp_path: Path) -> None:
    prop = robustness_property(np.linspace(0, 1, 6), 0.1, label=2, n_classes=4)
    out = tmp_path / "rob.vnnlib.gz"
    write_vnnlib(prop, out)
    back = load_vnnlib(out)
    assert isinstance(back, Property)
    assert back.cases == prop.cases
    assert back.name == "rob.vnnlib.gz"


_finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
_coef = st.one_of(st.sampled_from([0.0, 1.0, -1.0, 2.0, 0.1]), _finite)


@st.composite
def _properties(draw: st.DrawFn) -> Property:
    n_in = draw(st.integers(1, 4))
    n_out = draw(st.integers(1, 4))
    n_cases = draw(st.integers(1, 4))
    shared = draw(st.booleans())
    cases = []
    box = None
    for _ in range(n_cases):
        if box is None or not shared:
            lo = np.array(draw(st.lists(_finite, min_size=n_in, max_size=n_in)))
            width = np.array(draw(st.lists(st.floats(0, 10), min_size=n_in, max_size=n_in)))
            box = Box(lo, lo + width)
        rows = draw(st.integers(1, 3))
        A = np.array(draw(st.lists(_coef, min_size=rows * n_out, max_size=rows * n_out)))
        A = A.reshape(rows, n_out)
        A[np.all(A == 0, axis=1), 0] = 1.0  # an all-zero row is a constant, not a row
        b = np.array(draw(st.lists(_finite, min_size=rows, max_size=rows)))
        cases.append(UnsafeCase(box, A, b))
    return Property(tuple(cases), name="generated")


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(prop=_properties(), gz=st.booleans())
def test_write_load_round_trip(tmp_path: Path, prop: Property, gz: bool) -> None:
    out = tmp_path / ("p.vnnlib.gz" if gz else "p.vnnlib")
    write_vnnlib(prop, out)
    back = load_vnnlib(out)
    assert back == prop


# --------------------------------------------------------------------------------------------
# VNN-LIB 2.0
# --------------------------------------------------------------------------------------------

V2_HEAD = """; a VNN-LIB 2.0 query
(vnnlib-version <2.0>)
(declare-network f
  (declare-input X float32 [2])
  (declare-output Y float32 [3]))
"""
V2_BODY = """(assert (and (<= X[0] 1.0) (>= X[0] -1.0)))
(assert (<= X[1] 0.5))
(assert (>= X[1] -0.5))
(assert (or (and (<= Y[0] Y[1]) (<= (+ Y[2] (* 2.0 Y[0])) 0.25))
            (and (>= Y[2] 3.0) (< (- Y[1]) 1.0))))
"""
V1_EQUIV = _decls(2, 3) + (
    "(assert (and (<= X_0 1.0) (>= X_0 -1.0)))\n(assert (<= X_1 0.5))\n(assert (>= X_1 -0.5))\n"
    "(assert (or (and (<= Y_0 Y_1) (<= (+ Y_2 (* 2.0 Y_0)) 0.25))\n"
    "            (and (>= Y_2 3.0) (< (- Y_1) 1.0))))\n"
)


def test_v2_single_network_equals_v1(tmp_path: Path) -> None:
    p2 = tmp_path / "q2.vnnlib"
    p2.write_text(V2_HEAD + V2_BODY)
    p1 = tmp_path / "q1.vnnlib"
    p1.write_text(V1_EQUIV)
    a, b = load_vnnlib(p2), load_vnnlib(p1)
    assert isinstance(a, Property)
    assert a == b
    assert len(a.cases) == 2
    np.testing.assert_array_equal(a.cases[0].A, [[1.0, -1.0, 0.0], [2.0, 0.0, 1.0]])


def test_v2_agrees_with_package_compat_transform() -> None:
    pytest.importorskip("vnnlib")
    import vnnlib.compat

    # vnnlib 1.0.2's transform mis-combines an (assert (and ...)) with an (assert (or ...)),
    # so compare on the equivalent query with one bound per assert
    body = V2_BODY.replace(
        "(assert (and (<= X[0] 1.0) (>= X[0] -1.0)))",
        "(assert (<= X[0] 1.0))(assert (>= X[0] -1.0))",
    )
    query = vnnlib.parse_query_string(V2_HEAD + body)
    expected = []
    for sc in vnnlib.compat.transform(query):
        lo, hi = np.array(sc.input_box).T
        for poly in sc.output_constraints:
            expected.append(
                UnsafeCase(Box(lo, hi), np.array(poly.coeff_matrix), np.array(poly.rhs))
            )
    ours = parse_vnnlib_string(V2_HEAD + V2_BODY)
    assert isinstance(ours, Property)
    assert ours == parse_vnnlib_string(V2_HEAD + body)
    assert len(ours.cases) == len(expected)
    for c in expected:
        assert c in ours.cases


def test_v2_equality_gives_two_rows() -> None:
    prop = parse_vnnlib_string(V2_HEAD + V2_BODY.split("(assert (or")[0] + "(assert (== Y[0] 2.0))")
    assert isinstance(prop, Property)
    np.testing.assert_array_equal(prop.cases[0].A, [[1.0, 0.0, 0.0], [-1.0, 0.0, 0.0]])
    np.testing.assert_array_equal(prop.cases[0].b, [2.0, -2.0])


def test_v2_multidimensional_and_multiple_inputs() -> None:
    text = """(vnnlib-version <2.0>)
(declare-network f
  (declare-input A float32 [1,2,2])
  (declare-input B float64 [])
  (declare-output Y float32 [2]))
(assert (and (<= A[0,0,0] 1.0) (<= A[0,0,1] 2.0) (<= A[0,1,0] 3.0) (<= A[0,1,1] 4.0) (<= B 5.0)))
(assert (and (>= A[0,0,0] 0.0) (>= A[0,0,1] 0.0) (>= A[0,1,0] 0.0) (>= A[0,1,1] 0.0) (>= B 0.0)))
(assert (<= Y[1] 0.0))
"""
    prop = parse_vnnlib_string(text)
    assert isinstance(prop, Property)
    np.testing.assert_array_equal(prop.cases[0].input_box.upper, [1.0, 2.0, 3.0, 4.0, 5.0])
    np.testing.assert_array_equal(prop.cases[0].A, [[0.0, 1.0]])


RELATIONAL = """(vnnlib-version <2.0>)
(declare-network f
  (declare-input Xf float32 [1,3])
  (declare-output Yf float32 [2]))
(declare-network g
  ({rel} f)
  (declare-input Xg float32 [1,3])
  (declare-output Yg float32 [2]))
(assert (and (<= Xf[0,0] 1.0) (>= Xf[0,0] 0.0) (<= Xf[0,1] 1.0) (>= Xf[0,1] 0.0)
             (<= Xf[0,2] 1.0) (>= Xf[0,2] 0.0)))
(assert (and (== Xg[0,0] Xf[0,0]) (== Xg[0,1] Xf[0,1]) (== Xg[0,2] Xf[0,2])))
(assert (or (>= (- Yf[0] Yg[0]) 0.05) (<= (- Yf[0] Yg[0]) -0.05)))
"""


@pytest.mark.parametrize("rel", ["equal-to", "isomorphic-to"])
def test_v2_two_networks_relational(tmp_path: Path, rel: str) -> None:
    path = tmp_path / "rel.vnnlib"
    path.write_text(RELATIONAL.format(rel=rel))
    prop = load_vnnlib(path)
    assert isinstance(prop, RelationalProperty)
    f, g = prop.networks
    assert (f.name, f.n_inputs, f.n_outputs, f.relation) == ("f", 3, 2, None)
    assert (g.name, g.n_inputs, g.n_outputs, g.relation, g.related_to) == ("g", 3, 2, rel, "f")
    assert g.inputs == (TensorDecl("Xg", (1, 3), "float32", None),)
    assert prop.input_slice("g") == slice(3, 6)
    assert prop.output_slice("f") == slice(6, 8)
    assert prop.output_slice("g") == slice(8, 10)
    assert len(prop.cases) == 2
    for case in prop.cases:
        np.testing.assert_array_equal(case.lower, [0, 0, 0, -np.inf, -np.inf, -np.inf])
        np.testing.assert_array_equal(case.upper, [1, 1, 1, np.inf, np.inf, np.inf])
        assert case.A.shape == (7, 10)  # 3 equalities x 2 rows + 1 output row
    last = prop.cases[0].A[-1]
    expected = np.zeros(10)
    expected[6], expected[8] = -1.0, 1.0  # -(Yf0 - Yg0) <= -0.05
    np.testing.assert_array_equal(last, expected)
    np.testing.assert_array_equal(prop.cases[0].b[-1], -0.05)
    # round trip through the 2.0 writer
    out = tmp_path / "rel_out.vnnlib.gz"
    write_vnnlib(prop, out)
    assert load_vnnlib(out) == prop


def test_relational_constructed_round_trip(tmp_path: Path) -> None:
    nets = (
        NetworkDecl(
            "f", (TensorDecl("Xf", (2,), "float32"),), (TensorDecl("Yf", (1,), "float32"),)
        ),
        NetworkDecl(
            "g",
            (TensorDecl("Xg", (2,), "float32"),),
            (TensorDecl("Yg", (1,), "float32"),),
            relation="isomorphic-to",
            related_to="f",
        ),
    )
    case = RelationalCase(
        np.array([-1.0, -2.0, -np.inf, 0.125]),
        np.array([1.0, 2.0, np.inf, 0.5]),
        np.array([[0.0, 0.0, 0.0, 0.0, 1.5, -1.0], [1.0, 0.0, -1.0, 0.0, 0.0, 0.0]]),
        np.array([1e-05, 0.0]),
    )
    prop = RelationalProperty(nets, (case, case), name="x")
    out = tmp_path / "c.vnnlib"
    write_vnnlib(prop, out)
    assert load_vnnlib(out) == prop
    with pytest.raises(InvalidPropertyError):
        RelationalProperty(nets, (RelationalCase(np.zeros(1), np.ones(1), np.zeros((0, 6)), []),))


# --------------------------------------------------------------------------------------------
# Malformed input
# --------------------------------------------------------------------------------------------

D11 = _decls(1, 1)
BOX = "(assert (>= X_0 0))(assert (<= X_0 1))\n"

MALFORMED = [
    pytest.param(b"", "empty", id="empty-file"),
    pytest.param(b"; only a comment\n\n", "empty", id="only-comments"),
    pytest.param(b"\x00\x01\x02binary\xff\xfe", "binary", id="binary-garbage"),
    pytest.param(b"\xff\xfe\xfd(declare", "UTF-8", id="not-utf8"),
    pytest.param((D11 + "(assert (<= Y_0 1)").encode(), "never closed", id="unclosed-paren"),
    pytest.param((D11 + "(assert (<= Y_0 1)))").encode(), "unexpected ')'", id="extra-close-paren"),
    pytest.param((D11 + "hello").encode(), "outside parentheses", id="bare-token"),
    pytest.param(
        (D11 + "(define-fun f () Real 1.0)").encode(), "unknown command", id="unknown-cmd"
    ),
    pytest.param((D11 + "((assert))").encode(), "command name", id="no-command-name"),
    pytest.param((D11 + BOX + "(assert (<= X_7 1))").encode(), "not declared", id="undeclared"),
    pytest.param((D11 + BOX + "(assert (<= Z 1))").encode(), "expected a number", id="unknown-sym"),
    pytest.param((D11 + BOX + "(assert (<= Y_0 abc))").encode(), "abc", id="non-numeric"),
    pytest.param((D11 + BOX + "(assert (<= Y_0 nan))").encode(), "nan", id="nan-constant"),
    pytest.param((D11 + BOX + "(assert (<= Y_0 1e999))").encode(), "out of range", id="overflow"),
    pytest.param(
        (D11 + BOX + "(assert (<= Y_0 1) (<= Y_0 2))").encode(), "exactly one", id="assert-2"
    ),
    pytest.param((D11 + BOX + "(assert (<= Y_0 1 2))").encode(), "two arguments", id="chained-cmp"),
    pytest.param((D11 + BOX + "(assert (not (<= Y_0 1)))").encode(), "'not'", id="not"),
    pytest.param((D11 + BOX + "(assert Y_0)").encode(), "formula", id="atom-formula"),
    pytest.param(
        (D11 + BOX + "(assert (<= (* Y_0 Y_0 X_0 Y_0 Y_0) 1))").encode(),
        "polynomial term of degree 5",
        id="nonlinear-degree-5",
    ),
    pytest.param((D11 + BOX + "(assert (<= (/ Y_0 0) 1))").encode(), "division by zero", id="div0"),
    pytest.param((D11 + BOX + "(assert (<= (exp Y_0) 1))").encode(), "unsupported term", id="exp"),
    pytest.param(
        (D11 + "(assert (<= X_0 1))(assert (<= Y_0 1))").encode(), "X_0 has no", id="unbounded"
    ),
    pytest.param(
        (D11 + "(assert (or (and (<= X_0 1) (>= X_0 0)) (<= X_0 2)))").encode(),
        "disjunct 2 of 2",
        id="unbounded-in-one-disjunct",
    ),
    pytest.param(b"(declare-const X_0 Int)(declare-const Y_0 Real)", "sort", id="int-sort"),
    pytest.param(b"(declare-const Z_0 Real)(declare-const Y_0 Real)", "X_i or Y_j", id="bad-name"),
    pytest.param(b"(declare-const X_0 Real)(declare-const X_0 Real)", "twice", id="duplicate"),
    pytest.param(b"(declare-const X_1 Real)(declare-const Y_0 Real)", "X_0 is not", id="index-gap"),
    pytest.param(b"(declare-const X_0 Real)", "no output", id="no-outputs"),
    pytest.param(b"(declare-const Y_0 Real)", "no input", id="no-inputs"),
    pytest.param(b"(declare-const X_0)", "declare-const NAME Real", id="short-declare"),
    pytest.param(
        (V2_HEAD + "(assert (<= X[0] 1e-5))").encode(), "syntax error", id="v2-syntax-error"
    ),
    pytest.param((V2_HEAD + "(assert (<= Z[0] 1.0))").encode(), "line 6", id="v2-undeclared"),
    pytest.param((V2_HEAD + "(assert (<= X[9] 1.0))").encode(), "out of bounds", id="v2-index"),
    pytest.param((V2_HEAD + "(assert (!= Y[0] 1.0))").encode(), "'!='", id="v2-not-equal"),
    pytest.param(
        (V2_HEAD + "(assert (<= (* Y[0] Y[1] Y[0] Y[1] X[0]) 1.0))").encode(),
        "polynomial term of degree 5",
        id="v2-nonlinear-degree-5",
    ),
    pytest.param((V2_HEAD + "(assert (<= Y[0] 1.0))").encode(), "no finite", id="v2-unbounded"),
]


@pytest.mark.parametrize(("data", "fragment"), MALFORMED)
def test_malformed_input_raises(tmp_path: Path, data: bytes, fragment: str) -> None:
    path = tmp_path / "bad.vnnlib"
    path.write_bytes(data)
    with pytest.raises(InvalidPropertyError) as info:
        load_vnnlib(path)
    msg = str(info.value)
    assert msg.startswith(f"{path}: "), msg
    assert "\n" not in msg
    assert fragment in msg


def test_error_reports_line_number(tmp_path: Path) -> None:
    path = tmp_path / "l.vnnlib"
    path.write_text(D11 + "\n\n(assert (<= (* X_0 Y_0 X_0 Y_0 X_0) 1))\n")
    with pytest.raises(InvalidPropertyError, match=r"l\.vnnlib: line 5: "):
        load_vnnlib(path)


@pytest.mark.parametrize(
    ("name", "data", "fragment"),
    [
        pytest.param(
            "bad.vnnlib.gz", b"\x1f\x8bnot really gzip", "invalid gzip", id="corrupt-gzip"
        ),
        pytest.param("bad.vnnlib.gz", b"(declare-const X_0 Real)", "not a gzip", id="gz-suffix"),
        pytest.param(
            "trunc.vnnlib.gz", gzip.compress(D11.encode())[:-6], "invalid gzip", id="truncated-gzip"
        ),
    ],
)
def test_bad_gzip(tmp_path: Path, name: str, data: bytes, fragment: str) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(InvalidPropertyError, match=fragment) as info:
        load_vnnlib(path)
    assert str(info.value).startswith(str(path))


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.vnnlib"
    with pytest.raises(InvalidPropertyError, match="cannot read"):
        load_vnnlib(path)


@settings(max_examples=100, deadline=None)
@given(data=st.binary(max_size=300) | st.text(alphabet="()XY_0123 .-<=>;\n", max_size=200))
def test_fuzz_never_crashes_or_hangs(data: bytes | str) -> None:
    text = data.decode("latin-1") if isinstance(data, bytes) else data
    try:
        prop = parse_vnnlib_string(text, name="fuzz")
    except InvalidPropertyError as err:
        assert str(err).startswith("fuzz: ")
    else:
        assert isinstance(prop, Property | RelationalProperty)
