"""``nncert compress``: compress a model file and write it as ONNX plus a sidecar record.

Usage::

    nncert compress MODEL --method prune|structured|quantize|lowrank [method options]
                          -o OUT.onnx [--json]

Method options (each is rejected with the other methods):

* ``prune``: ``--sparsity S`` (default 0.5), ``--scope layer|global``;
* ``structured``: ``--ratio R`` (default 0.25), ``--criterion l2|l1|activation``,
  ``--calibration X.npy`` (rows of inputs; default uniform samples in ``[0, 1]``),
  ``--no-compensate``;
* ``quantize``: ``--bits B`` (default 8), ``--per-tensor``, ``--asymmetric``;
* ``lowrank``: ``--rank K`` or ``--energy E`` (default energy 0.99), ``--factorize``.

Common: ``--layers I [I ...]`` (Dense layer indices; hidden-layer indices for
``structured``), ``--seed``, ``--dtype float64|float32`` of the written ONNX (float64, the
default, round-trips exactly).

Besides ``OUT.onnx`` the command writes ``OUT.onnx.nncert.json``::

    {"format": "nncert-compression-sidecar", "schema_version": [1, 0],
     "tool_version": "...", "created": "...", "method": "prune",
     "source": {"model": "net.onnx", "fingerprint": "<sha256>", "parameters": 123},
     "compressed": {"path": "OUT.onnx", "fingerprint": "<sha256>", "parameters": 123},
     "record": {...}}

``record`` is the compression record's ``to_dict()`` (masks, kept indices, scales, ranks);
``fingerprint`` values are :meth:`Network.fingerprint` of the parsed networks. Exit codes:
0 written, 3 usage or input error (see ``nncert.verify.cli``).
"""

from __future__ import annotations

import argparse
import datetime
import json
from pathlib import Path
from typing import Any

from nncert.compression.lowrank import low_rank
from nncert.compression.onnx_export import to_onnx
from nncert.compression.pruning import CRITERIA, magnitude_prune, structured_prune
from nncert.compression.quantization import quantize_weights
from nncert.verify.cliutil import UsageError, load_model, model_file
from nncert.verify.fileio import check_output_file, load_npy, write_atomic

#: compression method -> the option names (argparse dests) that belong to it
METHOD_OPTIONS: dict[str, tuple[str, ...]] = {
    "prune": ("sparsity", "scope", "among"),
    "structured": ("ratio", "criterion", "calibration", "no_compensate", "channels"),
    "quantize": ("bits", "per_tensor", "asymmetric"),
    "lowrank": ("rank", "energy", "factorize"),
}

SIDECAR_SUFFIX = ".nncert.json"
SIDECAR_FORMAT = "nncert-compression-sidecar"
SIDECAR_VERSION: tuple[int, int] = (1, 0)


def _tool_version() -> str:
    try:
        from importlib.metadata import version

        return version("nncert")
    except Exception:  # pragma: no cover - not installed
        return "unknown"


def _check_method_options(args: argparse.Namespace, parser_defaults: dict[str, Any]) -> None:

    for method, names in METHOD_OPTIONS.items():
        if method == args.method:
            continue
        for name in names:
            if getattr(args, name) != parser_defaults.get(name):
                flag = "--" + name.replace("_", "-")
                raise UsageError(f"{flag} applies to --method {method}, not {args.method}")


def _compress(args: argparse.Namespace, network: Any) -> tuple[Any, Any]:


    layers = args.layers
    if args.method == "prune":
        return magnitude_prune(
            network,
            0.5 if args.sparsity is None else args.sparsity,
            scope=args.scope,
            layers=layers,
            among=args.among,
        )
    if args.method == "structured":
        calib = None
        if args.calibration is not None:
            p = Path(args.calibration)
            if not p.is_file():
                raise UsageError(f"{args.calibration}: no such file")
            try:
                calib = load_npy(p)
            except (ValueError, OSError) as err:
                raise UsageError(f"{args.calibration}: not a readable .npy array ({err})") from err
        return structured_prune(
            network,
            0.25 if args.ratio is None else args.ratio,
            calibration=calib,
            compensate=not args.no_compensate,
            criterion=args.criterion,
            layers=layers,
            seed=args.seed,
            channels=args.channels,
        )
    if args.method == "quantize":
        return quantize_weights(
            network,
            8 if args.bits is None else args.bits,
            per_channel=not args.per_tensor,
            symmetric=not args.asymmetric,
            layers=layers,
        )
    return low_rank(network, args.rank, energy=args.energy, layers=layers, factorize=args.factorize)


def _cmd_compress(args: argparse.Namespace) -> int:

    _check_method_options(args, args._compress_defaults)
    out = Path(args.output)
    if out.suffix.lower() != ".onnx":
        raise UsageError(f"-o {args.output}: the output must be an .onnx file")
    sidecar = out.with_name(out.name + SIDECAR_SUFFIX)
    inputs = (model_file(args.model), args.calibration)
    check_output_file(out, inputs=inputs, what="compressed model")
    check_output_file(sidecar, inputs=inputs, what="sidecar record")
    network = load_model(args.model)
    compressed, record = _compress(args, network)
    to_onnx(compressed, out, dtype=args.dtype)  # atomic
    doc = {
        "format": SIDECAR_FORMAT,
        "schema_version": list(SIDECAR_VERSION),
        "tool_version": _tool_version(),
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "method": args.method,
        "source": {
            "model": args.model,
            "fingerprint": network.fingerprint(),
            "parameters": network.n_parameters,
        },
        "compressed": {
            "path": out.name,
            "fingerprint": compressed.fingerprint(),
            "parameters": compressed.n_parameters,
            "dtype": args.dtype,
        },
        "record": record.to_dict(),
    }
    write_atomic(sidecar, json.dumps(doc, allow_nan=False) + "\n")
    rec = doc["record"]
    if args.json:
        summary = {
            "output": str(out),
            "sidecar": str(sidecar),
            "method": args.method,
            "source_fingerprint": doc["source"]["fingerprint"],
            "fingerprint": doc["compressed"]["fingerprint"],
            "parameters_before": rec.get("parameters_before"),
            "parameters_after": rec.get("parameters_after"),
        }
        for key in (
            "nonzero_before",
            "nonzero_after",
            "achieved_sparsity",
            "ranks",
            "widths_after",
            "calibration_mse",
            "max_abs_error",
        ):
            if key in rec:
                summary[key] = rec[key]
        print(json.dumps(summary, allow_nan=False))
    else:
        print(f"{args.method}: {_summary(rec)}; wrote {out} and {sidecar}")
    return 0


def _summary(rec: dict[str, Any]) -> str:
    """What a compression did, in words (from its record): one clause for the summary line."""
    before, after = rec.get("parameters_before"), rec.get("parameters_after")
    if "nonzero_after" in rec:  # magnitude pruning keeps the shapes, zeroes weights
        share = float(rec.get("achieved_sparsity", 0.0))
        return (
            f"{100 * share:.0f} % of the weights set to zero, non-zero parameters "
            f"{rec['nonzero_before']} -> {rec['nonzero_after']} (shapes unchanged)"
        )
    if "widths_after" in rec:
        return (
            f"hidden widths {list(rec.get('widths_before', []))} -> "
            f"{list(rec['widths_after'])}, parameters {before} -> {after}"
        )
    if "bits" in rec:
        scale = "one scale per neuron" if rec.get("per_channel") else "one scale per layer"
        return (
            f"weights rounded to a {rec['bits']}-bit grid ({scale}), {after} parameters "
            "(shapes unchanged)"
        )
    if "ranks" in rec:
        return f"ranks {list(rec['ranks'])}, parameters {before} -> {after}"
    return f"parameters {before} -> {after}"


def register(subparsers: Any) -> None:
    """Add the ``compress`` sub-command to the ``nncert`` parser's sub-parsers."""

    p = subparsers.add_parser(
        "compress",
        help="prune, quantize or low-rank-truncate a network; write ONNX + a sidecar record",
        description="Compress MODEL and write OUT.onnx plus OUT.onnx.nncert.json (the "
        "compression record: masks, kept indices, scales or ranks, and the source "
        "fingerprint). Exit code 0 written, 3 usage or input error.",
    )
    p.add_argument("model", metavar="MODEL", help="an .onnx file, or example:NAME")
    p.add_argument(
        "--method",
        required=True,
        choices=tuple(METHOD_OPTIONS),
        help="prune: zero the smallest weights; structured: remove hidden neurons; quantize: "
        "round weights to a BITS-bit grid; lowrank: truncated SVD of the weight matrices",
    )
    g = p.add_argument_group("prune")
    g.add_argument("--sparsity", type=float, help="fraction of weights to zero (default 0.5)")
    g.add_argument(
        "--scope",
        choices=("layer", "global"),
        default="layer",
        help="layer (default): every layer loses the same fraction; global: the smallest "
        "weights of the whole network go",
    )
    g.add_argument(
        "--among",
        choices=("all", "nonzero"),
        default="all",
        help="all (default): SPARSITY is a fraction of all weights, zeros count as pruned; "
        "nonzero: of the non-zero weights (a lowered convolution is mostly zeros)",
    )
    g = p.add_argument_group("structured")
    g.add_argument("--ratio", type=float, help="fraction of hidden neurons to remove (0.25)")
    g.add_argument(
        "--criterion",
        choices=CRITERIA,
        default="l2",
        help="neuron importance: l2 (default) or l1 norm of its incoming weights, or "
        "activation: its mean |activation| on the calibration inputs times the norm of its "
        "outgoing weights",
    )
    g.add_argument("--calibration", metavar="X.npy", help="calibration inputs (rows)")
    g.add_argument("--no-compensate", action="store_true", help="no ridge refit of next layer")
    g.add_argument(
        "--channels",
        type=int,
        metavar="C",
        help="remove whole channels: each pruned layer's neurons form C equal contiguous "
        "groups (a convolution's (C, H, W) output), RATIO of the groups go",
    )
    g = p.add_argument_group("quantize")
    g.add_argument("--bits", type=int, help="bit width (default 8)")
    g.add_argument("--per-tensor", action="store_true", help="one scale per layer")
    g.add_argument("--asymmetric", action="store_true", help="unsigned grid with zero point")
    g = p.add_argument_group("lowrank")
    ex = g.add_mutually_exclusive_group()
    ex.add_argument("--rank", type=int, help="rank to keep per layer")
    ex.add_argument("--energy", type=float, help="retained energy (default 0.99)")
    g.add_argument("--factorize", action="store_true", help="two Dense layers per factor")
    p.add_argument(
        "--layers",
        type=int,
        nargs="+",
        metavar="I",
        help="compress only these Dense layers (0 = the first; negative counts from the end; "
        "hidden-layer indices for structured); default all",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the default calibration set")
    p.add_argument(
        "--dtype",
        choices=("float64", "float32"),
        default="float64",
        help="weight type of the written ONNX (default float64, which round-trips exactly)",
    )
    p.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="OUT.onnx",
        help="the compressed model; the record goes to OUT.onnx.nncert.json",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    defaults = {name: p.get_default(name) for names in METHOD_OPTIONS.values() for name in names}
    p.set_defaults(func=_cmd_compress, _compress_defaults=defaults)


__all__ = ["METHOD_OPTIONS", "SIDECAR_SUFFIX", "register"]
