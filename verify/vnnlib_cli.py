"""``nncert-vnnlib``: the solver command line of the VNN-LIB 2.0 standard (its chapter 5).

::

    nncert-vnnlib --name | --version
    nncert-vnnlib verify QUERY --network NAME=MODEL.onnx [--network ...] [--timeout S]
                  [--serialise-assignments DIR]
    nncert-vnnlib supports --onnx-operators | --onnx-opset-versions | --vnnlib-versions | ...

The first line ``verify`` prints on stdout is ``sat``, ``unsat``, ``unknown`` or ``timed-out``.
For ``sat`` the assignment follows (unless ``--serialise-assignments`` is given, in which case
one ``NAME.pb`` ONNX TensorProto per variable is written to DIR): for each declared variable,
in declaration order, a header line ``NAME <type> [d1,d2]`` and then its values, one per line,
in row-major order. Logs and errors go to stderr. Usage errors exit with 1.

A single-network query that declares several inputs or outputs (the standard's MIO theory)
or hidden tensors (``declare-hidden``, the H theory) is decided on the single-input
single-output rewrite of the model (:mod:`nncert.verify.onnx_io`): declared tensors are
matched to the ONNX graph by order (or by ONNX name when every input and output names one),
and ``sat`` is printed only after the witness is replayed in onnxruntime on the original model
(hidden tensors read there too); the assignment names the declared tensors, inputs, hidden
tensors and outputs in declaration order. What cannot be matched is a one-line error (exit 2).

nncert analyses networks in real arithmetic (float64, round to nearest), not in the declared
floating-point types; it accepts queries that declare ONNX float types and says so on stderr
(``supports --onnx-element-types`` honestly reports only ``real``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from nncert.verify.errors import (
    InvalidNetworkError,
    NncertError,
    OutputPathError,
    TimeLimitError,
)
from nncert.verify.fileio import check_output_dir, write_atomic
from nncert.verify.importers import from_onnx, onnxruntime_forward
from nncert.verify.joint import UnboundedInputError, lower_relational, relational_violation
from nncert.verify.network import Network
from nncert.verify.onnx_io import (
    IOBinding,
    bind,
    load_model,
    replay_original,
    write_single_io,
)
from nncert.verify.options import VerifyOptions
from nncert.verify.pipeline import verify
from nncert.verify.spec import RelationalProperty, TensorDecl
from nncert.verify.vnnlib import load_vnnlib, onnx_name_text

NAME = "nncert"
EXIT_USAGE = 1

#: ONNX operators the importer understands (kept in sync by a test with nncert.verify.importers);
#: operators it folds only when all their inputs are constant (Equal, Where, ConstantOfShape,
#: Range, ...) are not advertised, since a query may apply them to the input
ONNX_OPERATORS = (
    "Add",
    "AveragePool",
    "BatchNormalization",
    "Cast",
    "Clip",
    "Concat",
    "Constant",
    "Conv",
    "DequantizeLinear",
    "Div",
    "Dropout",
    "Exp",
    "Expand",
    "Flatten",
    "Gather",
    "Gemm",
    "GlobalAveragePool",
    "Identity",
    "LeakyRelu",
    "MatMul",
    "MaxPool",
    "Mul",
    "Neg",
    "Pad",
    "Pow",
    "QuantizeLinear",
    "ReduceMean",
    "ReduceSum",
    "Relu",
    "Reshape",
    "Shape",
    "Sigmoid",
    "Slice",
    "Softmax",
    "Split",
    "Squeeze",
    "Sub",
    "Tanh",
    "Transpose",
    "Unsqueeze",
)

#: ``supports`` capability -> lines printed
CAPABILITIES: dict[str, tuple[str, ...]] = {
    "onnx_operators": ONNX_OPERATORS,
    "onnx_opset_versions": ("7", "21"),
    "onnx_element_types": ("real",),
    "vnnlib_versions": ("1.0", "2.0"),
    # the standard's names: NH no hidden tensors, H hidden tensors (declare-hidden), decided as
    # extra outputs of the model (nncert.verify.onnx_io); a hidden tensor the importer cannot
    # carry to the outputs (read again after a later activation) is refused
    "hidden_node_theories": ("NH", "H"),
    # SIO one input and one output, MIO several (matched by order or by ONNX name, stacked
    # into one input and one output by nncert.verify.onnx_io); single-network queries only
    "multiple_input_output_theories": ("SIO", "MIO"),
    # the standard's names: SNET one network, MENET several all but one equal-to another,
    # MINET isomorphic-to allowed too, MNET any networks. Several networks are decided on their
    # joint network (nncert.verify.joint): any number, provided they share the activation at
    # every depth (a shallower one is carried through ReLU/LeakyReLU); others are refused
    "multiple_network_theories": ("SNET", "MENET", "MINET", "MNET"),
    # comparisons between different outputs and inputs (Y_0 <= Y_1, Y_0 <= 2 X_0) are decided
    "multiple_node_comparison_theories": ("SNC", "MNC"),
    # the standard's names: BND bounds, OUTC output comparisons, LIN linear arithmetic over
    # inputs and outputs, POLY products of variables (degree <= 4, at most 256 distinct
    # products; decided on [f(x); x; monomials], nncert.verify.lowering.lower_polynomial;
    # on Sigmoid/Tanh networks products of an output and an input are answered unknown)
    "arithmetic_complexity_theories": ("BND", "OUTC", "LIN", "POLY"),
    "optimised_disjunctive_reasoning": ("false",),
    "serialise_assignments": ("true",),
    "unsat_proofs": ("false",),
}


#: ``supports`` capability -> its ``--help`` line
CAPABILITY_HELP: dict[str, str] = {
    "onnx_operators": "the ONNX operators the importer reads",
    "onnx_opset_versions": "the oldest and newest ONNX opset versions",
    "onnx_element_types": "the element types analysed (real: float64 arithmetic)",
    "vnnlib_versions": "the VNN-LIB versions read",
    "hidden_node_theories": "the hidden-node theories handled (the standard's names)",
    "multiple_input_output_theories": "the multiple input/output theories handled",
    "multiple_network_theories": "the multiple-network theories handled",
    "multiple_node_comparison_theories": "the node-comparison theories handled",
    "arithmetic_complexity_theories": "the arithmetic-complexity theories handled",
    "optimised_disjunctive_reasoning": "whether disjunctions get dedicated reasoning",
    "serialise_assignments": "whether verify --serialise-assignments works",
    "unsat_proofs": "whether unsat answers come with a proof file",
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(EXIT_USAGE)


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("nncert")
    except Exception:  # pragma: no cover
        return "0.0.0"


def build_parser() -> argparse.ArgumentParser:
    """The ``nncert-vnnlib`` argument parser."""
    p = _Parser(
        prog="nncert-vnnlib",
        description="VNN-LIB 2.0 standard solver interface of nncert.",
    )
    p.add_argument("--name", action="store_true", help="print the solver's name")
    p.add_argument("--version", action="store_true", help="print the solver's version")
    sub = p.add_subparsers(dest="command", parser_class=_Parser)
    v = sub.add_parser("verify", help="decide a VNN-LIB query")
    v.add_argument("query", metavar="QUERY", help="a VNN-LIB 2.0 (or 1.0) query file")
    v.add_argument(
        "--network",
        action="append",
        default=[],
        metavar="NAME=MODEL.onnx",
        help="the ONNX file of a declared network (once per network)",
    )
    v.add_argument("--timeout", type=float, default=300.0, help="seconds (default 300)")
    v.add_argument("--serialise-assignments", metavar="DIR", help="write NAME.pb tensors")
    v.description = (
        "Decide QUERY on the networks given with --network. The first line on stdout is sat, "
        "unsat, unknown or timed-out; for sat the assignment of every declared variable "
        "follows (or goes to --serialise-assignments DIR). Logs go to stderr."
    )
    s = sub.add_parser(
        "supports",
        help="report a capability",
        description="Print what nncert supports for one capability of the VNN-LIB 2.0 solver "
        "interface, one item per line.",
    )
    group = s.add_mutually_exclusive_group(required=True)
    for cap in CAPABILITIES:
        group.add_argument(
            "--" + cap.replace("_", "-"),
            dest="capability",
            action="store_const",
            const=cap,
            help=CAPABILITY_HELP[cap],
        )
    return p


def _dtype_name(dtype: Any) -> str:
    text = str(dtype).split(".")[-1].lower()
    return {"f32": "float32", "f64": "float64", "f16": "float16", "real": "Real"}.get(text, text)


def _is_vnnlib2(path: Path) -> bool:
    import gzip

    raw = path.read_bytes()[:8192]
    if raw[:2] == b"\x1f\x8b":
        with gzip.open(path, "rt") as fh:
            return "declare-network" in fh.read(8192)
    head = raw.decode("utf-8", errors="replace")
    return "declare-network" in head


def _declared_variables(query_path: Path) -> list[dict[str, Any]]:
    """Every declared input, hidden tensor and output of a VNN-LIB 2.0 query, in that order
    (the standard's scoping order), each kind in declaration order.

    Each entry: ``name``, ``type`` (``float32``, ``Real``, ...), ``shape``, ``kind``
    (``input``/``hidden``/``output``), ``network`` and ``onnx_name`` (``None`` when the query
    gives none). VNN-LIB 1.0 files give ``[]``.
    """
    if not _is_vnnlib2(query_path):
        return []
    import vnnlib

    query = vnnlib.parse_query_file(str(query_path))
    out: list[dict[str, Any]] = []
    for net in query.networks:
        groups = (("input", net.inputs), ("hidden", net.hidden), ("output", net.outputs))
        for kind, items in groups:
            for var in items:
                text = onnx_name_text(var.onnx_name)
                out.append(
                    {
                        "name": str(var.name),
                        "type": _dtype_name(var.dtype),
                        "shape": [int(s) for s in var.shape],
                        "kind": kind,
                        "network": str(net.name),
                        "onnx_name": text,
                    }
                )
    return out


def _tensor_decls(decls: list[dict[str, Any]], kind: str) -> list[TensorDecl]:
    return [
        TensorDecl(d["name"], tuple(d["shape"]), d["type"], d["onnx_name"])
        for d in decls
        if d["kind"] == kind
    ]


def _cmd_verify(args: argparse.Namespace) -> int:
    import numpy as np

    query = Path(args.query)
    if not query.exists():
        raise _Usage(f"{query}: no such file")
    mapping: dict[str, Path] = {}
    for item in args.network:
        if "=" not in item:
            raise _Usage(f"--network {item!r}: expected NAME=MODEL.onnx")
        name, path = item.split("=", 1)
        if not Path(path).exists():
            raise _Usage(f"--network {name}: {path}: no such file")
        mapping[name] = Path(path)
    if not mapping:
        raise _Usage("verify needs --network NAME=MODEL.onnx")
    if args.serialise_assignments:
        _check_assignment_dir(Path(args.serialise_assignments), [query, *mapping.values()])
    try:
        prop = load_vnnlib(query, time_limit=args.timeout, hidden=True)
    except TimeLimitError as err:
        sys.stderr.write(f"nncert-vnnlib: {err}\n")
        print("timed-out")
        return 0
    if isinstance(prop, RelationalProperty):
        return _verify_relational(args, query, prop, mapping)
    decls = _declared_variables(query)
    if args.serialise_assignments:
        names = [d["name"] for d in decls] or ["X", "Y"]
        _check_assignment_dir(Path(args.serialise_assignments), [query, *mapping.values()], names)
    net_names = sorted({d["network"] for d in decls})
    if net_names and set(mapping) != set(net_names):
        raise _Usage(
            f"--network names {sorted(mapping)} do not match the query's networks {net_names}"
        )
    if len(mapping) != 1:
        raise _Usage("single-network query: give exactly one --network")
    onnx_path = next(iter(mapping.values()))
    if any(d["type"] not in ("Real", "real") for d in decls):
        sys.stderr.write(
            "nncert-vnnlib: note: the query declares floating-point types; nncert analyses "
            "in real (float64) arithmetic\n"
        )
    binding, network = _load_network(onnx_path, decls, args.timeout)
    prop.check_network_shape(network.n_inputs, network.n_outputs, where=str(query))
    result = verify(network, prop, VerifyOptions(time_limit=args.timeout))
    word = {"verified": "unsat", "falsified": "sat"}.get(result.verdict.value)
    if word is None:
        word = "timed-out" if result.reason == "timeout" else "unknown"
    cex = result.counterexample if word == "sat" else None
    if word == "sat" and cex is None:
        word = "unknown"  # never a sat without a witness
    y: Any = None
    if cex is not None:
        x = cex.x
        if binding is None:
            y = onnxruntime_forward(str(onnx_path), x.reshape(1, -1))[0]
        else:
            # the witness of the rewritten graph, replayed on the original model
            y = replay_original(binding.model, binding.io, x)
            if not prop.is_counterexample(x, y):
                sys.stderr.write(
                    "nncert-vnnlib: the witness did not replay on the original ONNX model; "
                    "answering unknown\n"
                )
                word = "unknown"
    print(word)
    if word == "sat" and cex is not None:
        x = cex.x
        if decls:
            variables = _assignment(decls, x, y, binding.io if binding is not None else None)
        else:
            variables = [("X", "Real", [x.size], x), ("Y", "Real", [y.size], y)]
        if args.serialise_assignments:
            _serialise(Path(args.serialise_assignments), variables)
        else:
            for name, typ, shape, values in variables:
                print(f"{name} {typ} [{','.join(str(int(s)) for s in shape)}]")
                for v in np.asarray(values, dtype=np.float64).reshape(-1):
                    print(repr(float(v)))
    return 0


@dataclass(frozen=True)
class _Rewrite:
    """A model read through :mod:`nncert.verify.onnx_io`: the original ``onnx.ModelProto``
    and its binding to the query's declarations."""

    model: Any
    io: IOBinding


def _load_network(
    onnx_path: Path, decls: list[dict[str, Any]], timeout: float
) -> tuple[_Rewrite | None, Network]:
    """The network of a single-network query.

    A query with several inputs or outputs, or hidden tensors, is read through the
    single-input single-output rewrite of :mod:`nncert.verify.onnx_io` (written to a temporary
    file, so that witnesses are replayed in onnxruntime on it inside
    :func:`~nncert.verify.verify`, and again on the original model here). Everything else is
    read as it is (the importer refuses a model with several inputs or outputs then).
    """
    import tempfile

    ins, hidden, outs = (_tensor_decls(decls, k) for k in ("input", "hidden", "output"))
    if len(ins) <= 1 and len(outs) <= 1 and not hidden:
        # one input and one output declared: a model with more is refused by the importer
        return None, from_onnx(onnx_path, time_limit=timeout)
    model = load_model(onnx_path)
    binding = bind(model, ins, outs, hidden, where=str(onnx_path))
    folder = tempfile.mkdtemp(prefix="nncert-io-")
    _TEMP_DIRS.append(folder)
    path = write_single_io(model, binding, folder)
    stem = onnx_path.name.split(".")[0]
    try:
        network = from_onnx(path, name=stem, time_limit=timeout)
    except NncertError as err:
        text = str(err).splitlines()[0].replace(str(path), str(onnx_path))
        raise type(err)(f"{text} (several inputs/outputs or hidden tensors)") from None
    if (network.n_inputs, network.n_outputs) != (binding.n_inputs, binding.n_outputs):
        raise InvalidNetworkError(
            f"{onnx_path}: the rewritten model maps {network.n_inputs} to {network.n_outputs} "
            f"entries, the query declares {binding.n_inputs} and {binding.n_outputs}"
        )
    return _Rewrite(model, binding), network


def _assignment(
    decls: list[dict[str, Any]], x: Any, y: Any, io: IOBinding | None
) -> list[tuple[str, str, list[int], Any]]:
    """``(name, type, shape, values)`` of every declared variable: inputs are slices of
    ``x``, outputs then hidden tensors slices of ``y`` (the order of
    :mod:`nncert.verify.vnnlib`), printed in declaration order."""
    import numpy as np

    xf = np.asarray(x, dtype=np.float64).reshape(-1)
    yf = np.asarray(y, dtype=np.float64).reshape(-1)
    spans: dict[str, Any] = {}
    start = 0
    for d in (d for d in decls if d["kind"] == "input"):
        n = int(np.prod(d["shape"], dtype=np.int64))
        spans[d["name"]] = xf[start : start + n]
        start += n
    start = 0
    for kind in ("output", "hidden"):
        for d in (d for d in decls if d["kind"] == kind):
            n = int(np.prod(d["shape"], dtype=np.int64))
            spans[d["name"]] = yf[start : start + n]
            start += n
    return [(d["name"], d["type"], d["shape"], spans[d["name"]]) for d in decls]


#: temporary folders of rewritten models, removed at exit
_TEMP_DIRS: list[str] = []


def _cleanup() -> None:
    import shutil

    for folder in _TEMP_DIRS:
        shutil.rmtree(folder, ignore_errors=True)
    _TEMP_DIRS.clear()


def _relational_models(prop: RelationalProperty, mapping: dict[str, Path]) -> list[Path]:
    """The ONNX file of every declared network: its ``--network``, or for a network declared
    ``equal-to`` another without one, that network's file."""
    declared = [d.name for d in prop.networks]
    unknown = sorted(set(mapping) - set(declared))
    if unknown:
        raise _Usage(f"--network names {unknown} are not networks of the query {declared}")
    paths: list[Path] = []
    for decl in prop.networks:
        path = mapping.get(decl.name)
        seen: set[str] = set()
        cur = decl
        while path is None and cur.relation == "equal-to" and cur.related_to not in seen:
            assert cur.related_to is not None
            seen.add(cur.related_to)
            path = mapping.get(cur.related_to)
            cur = prop.network(cur.related_to)
        if path is None:
            raise _Usage(f"no --network for the query's network {decl.name}")
        paths.append(path)
    return paths


def _verify_relational(
    args: argparse.Namespace, query: Path, prop: RelationalProperty, mapping: dict[str, Path]
) -> int:
    """``verify`` on a query over several networks: each group of cases is decided on the
    joint network (:func:`~nncert.verify.joint.lower_relational`); ``unsat`` when every group
    is proved, ``sat`` only after the witness is replayed in onnxruntime on every model and
    satisfies a case of the original query in float64."""
    import time

    import numpy as np

    t0 = time.monotonic()
    paths = _relational_models(prop, mapping)
    if args.serialise_assignments:
        names = [t.name for d in prop.networks for t in (*d.inputs, *d.outputs)]
        _check_assignment_dir(Path(args.serialise_assignments), [query, *mapping.values()], names)
    if any(t.dtype not in ("Real", "real") for d in prop.networks for t in (*d.inputs, *d.outputs)):
        sys.stderr.write(
            "nncert-vnnlib: note: the query declares floating-point types; nncert analyses "
            "in real (float64) arithmetic\n"
        )
    networks = [from_onnx(p) for p in paths]
    try:
        queries = lower_relational(networks, prop)
    except UnboundedInputError as err:
        sys.stderr.write(f"nncert-vnnlib: {query}: {err}\n")
        print("unknown")
        return 0
    word = "unsat"
    for q in queries:
        remaining = args.timeout - (time.monotonic() - t0)
        if remaining <= 0:
            word = "timed-out"
            break
        result = verify(q.network, q.prop, VerifyOptions(time_limit=remaining))
        verdict = result.verdict.value
        if verdict == "verified":
            continue
        cex = result.counterexample
        if verdict == "falsified" and cex is not None:
            xs = q.network.split_input(cex.x)
            ys = [
                np.asarray(onnxruntime_forward(str(p), x.reshape(1, -1))[0], dtype=np.float64)
                for p, x in zip(paths, xs)
            ]
            if relational_violation(prop, xs, ys):
                print("sat")
                _print_relational_assignment(args, prop, xs, ys)
                return 0
            sys.stderr.write(
                "nncert-vnnlib: a witness of the joint network did not replay on the ONNX "
                "models; answering unknown\n"
            )
            word = "unknown"
        elif word == "unsat":
            word = "timed-out" if result.reason == "timeout" else "unknown"
    print(word)
    return 0


def _print_relational_assignment(
    args: argparse.Namespace, prop: RelationalProperty, xs: list[Any], ys: list[Any]
) -> None:
    """Every declared variable of every network, in declaration order."""
    import numpy as np

    variables: list[tuple[str, str, list[int], Any]] = []
    for decl, x, y in zip(prop.networks, xs, ys):
        for tensors, values in ((decl.inputs, x), (decl.outputs, y)):
            start = 0
            flat = np.asarray(values, dtype=np.float64).reshape(-1)
            for t in tensors:
                part = flat[start : start + t.size]
                start += t.size
                variables.append((t.name, _dtype_name(t.dtype), list(t.shape), part))
    if args.serialise_assignments:
        _serialise(Path(args.serialise_assignments), variables)
        return
    for name, typ, shape, values in variables:
        print(f"{name} {typ} [{','.join(str(int(s)) for s in shape)}]")
        for v in np.asarray(values, dtype=np.float64).reshape(-1):
            print(repr(float(v)))


def _check_assignment_dir(folder: Path, inputs: list[Path], names: Sequence[str] = ()) -> None:
    """Before solving: DIR must be (or become) a writable directory, and no ``NAME.pb`` in it
    may be an input (usage error otherwise)."""

    try:
        check_output_dir(
            folder,
            inputs=inputs,
            files=[f"{n}.pb" for n in names],
            what="assignment directory",
        )
    except OutputPathError as err:
        raise _Usage(str(err)) from None


def _serialise(folder: Path, variables: list[tuple[str, str, list[int], Any]]) -> None:
    import numpy as np
    import onnx.numpy_helper

    folder.mkdir(parents=True, exist_ok=True)
    np_types = {"float32": np.float32, "float16": np.float16}
    for name, typ, shape, values in variables:
        arr = np.asarray(values, dtype=np_types.get(typ, np.float64)).reshape(shape)
        tensor = onnx.numpy_helper.from_array(arr, name=name)
        write_atomic(folder / f"{name}.pb", tensor.SerializeToString())


class _Usage(Exception):
    pass


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.name:
        print(NAME)
        return 0
    if args.version:
        print(_version())
        return 0
    if args.command == "supports":
        for line in CAPABILITIES[args.capability]:
            print(line)
        return 0
    if args.command != "verify":
        parser.print_usage(sys.stderr)
        return EXIT_USAGE

    try:
        return _cmd_verify(args)
    except _Usage as err:
        sys.stderr.write(f"nncert-vnnlib: error: {err}\n")
        return EXIT_USAGE
    except (NncertError, OSError, ValueError) as err:
        sys.stderr.write(f"nncert-vnnlib: error: {str(err).splitlines()[0] if str(err) else err}\n")
        return 2
    except Exception as err:
        sys.stderr.write(f"nncert-vnnlib: internal error: {type(err).__name__}: {err}\n")
        return 2
    finally:
        _cleanup()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
