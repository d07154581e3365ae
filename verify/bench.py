"""``nncert bench``: benchmark suites, reports, plots, scale-out and the end-to-end run.

Suites (``SUITE`` argument of ``nncert bench``):

* a VNN-COMP ``instances.csv`` (rows ``onnx,vnnlib,timeout``; paths relative to its folder).
  Rows of the 2026 dialect with two networks ``[('f', a.onnx), ('g', b.onnx)]`` are run as
  *transfer* instances: when the property is an ordinary single-network property, it is
  verified on ``f``, the certificate is transferred to ``g`` with
  :func:`nncert.certificates.transfer` (falling back to verifying ``g``), and the row's result
  is ``g``'s verdict. Relational (VNN-LIB 2.0 multi-network) queries, rows with another
  number of networks, or a missing certificates package give ``unknown`` with a note --
  never a crash. A ``truth.csv`` beside ``instances.csv`` (``onnx,vnnlib,truth``) fills the
  ``truth`` and ``correct`` columns.
* ``paper`` (or ``paper:test``): the bundled Iris and ``make_moons`` networks for each
  activation (ReLU, hardtanh, sigmoid, tanh), the bundled test points (``paper:test``: every
  correctly classified test point, rebuilt with scikit-learn) over an epsilon grid
  (default 0.01, 0.02, 0.05, 0.1), plus compressed variants (magnitude-pruned 20 % and 50 %,
  int8 weights) when :mod:`nncert.compression` is installed. For a compressed variant the row
  also records whether the original network's certificate *transferred* (column
  ``transfer``: ``T1``/``T2``/``T3``, ``no``, or empty when the source was undecided). A
  property with ``eps >=`` the bundled ``attack_radius`` is known ``sat`` (truth).
* ``random:SEED[:N]``: ``N`` (default 20) small random ReLU/hardtanh MLPs with one robustness
  property each, a deterministic function of ``SEED`` and the instance index.

Every instance is run once per method (``--methods``; a method may carry options,
``model2:segments=5``) and solver (``--solvers``) by :func:`run_task`, which calls
:func:`nncert.verify.verify` with ``time_limit`` (``--timeout``, default: the row's timeout
for VNN-COMP suites, 10 s otherwise) in a worker (see :mod:`nncert.verify.executors`).

Outputs in ``--out DIR``:

* ``results.csv``: the VNN-COMP columns ``category,network,property,prepare_time,result,
  run_time`` then ``method, solver, spins, iterations, margin_lower, margin_upper, transfer,
  truth, correct`` and context columns (``reason, decided_by, dataset, activation, eps,
  variant, timeout, note``);
* ``summary.md``: per method/solver counts and a VNN-COMP-style score (10 per correct
  answer, -150 per incorrect one, a decided answer slower than its row timeout counts as a
  timeout -- the 2023-2026 rules of VERIFIERS.md section 2.7);
* ``cactus.png``: solved instances against sorted and cumulative time;
* for the paper suite, ``paper_table.md``/``.csv`` (certified, vulnerable, unknown, time,
  spins, iterations per dataset, activation, epsilon, variant, method) and
  ``compression.md``/``.csv`` (accuracy, parameters, bytes, latency, certified share and
  transfer rate per compressed variant);
* ``progress.jsonl``: the resume journal. Every finished task is appended as one JSON line
  (a single ``write`` on an ``O_APPEND`` descriptor, then ``fsync``); a rerun with
  ``--resume`` (the default) skips the tasks found there. The key of a task is the instance,
  method and solver; change ``--out`` (or use ``--no-resume``) after changing the timeout.

Progress goes to stderr as a text bar with an ETA (one line rewritten with ``\\r`` on a
terminal, otherwise one line every ``--progress-every`` tasks); ``--quiet`` silences it.

Python API: :func:`run_bench`, :func:`load_suite`, :func:`run_task`,
:func:`run_end_to_end` (the ``nncert demo`` table), and :func:`register` (the sub-command).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import re
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np

import nncert.compression as comp
from nncert.certificates import certificate_from_result, save_certificate, transfer
from nncert.compression import to_onnx
from nncert.formulations.qubo import QuboMasterOptions
from nncert.solvers.benders import BendersOptions
from nncert.solvers.benders_method import benders_model2, make_master
from nncert.solvers.registry import get_solver_spec
from nncert.verify.cliutil import UsageError
from nncert.verify.errors import InvalidOptionsError, NncertError
from nncert.verify.example_catalog import dataset_metadata, example_info, list_examples
from nncert.verify.examples import load_example
from nncert.verify.executors import (
    CONNECT_TIMEOUT,
    EXECUTORS,
    ExecutorUnavailableError,
    resolve_executor,
    run_each,
)
from nncert.verify.fileio import check_output_dir, write_atomic
from nncert.verify.importers import from_onnx
from nncert.verify.network import Dense, HardTanh, Network, ReLU, dense_weight
from nncert.verify.options import VerifyOptions
from nncert.verify.pipeline import verify
from nncert.verify.plots import cactus_plot
from nncert.verify.processes import worker_setup
from nncert.verify.registry import get_method, method_names
from nncert.verify.result import Verdict
from nncert.verify.spec import MixedProperty, PolynomialProperty, Property, robustness_property
from nncert.verify.vnncomp import read_instances, read_truth, write_results_csv
from nncert.verify.vnnlib import load_vnnlib

#: exit codes of ``nncert bench`` (README command table)
EXIT_BENCH_OK = 0
EXIT_BENCH_WRONG = 1  # a decided result contradicts truth.csv (checked first)
EXIT_BENCH_ALL_ERRORED = 3  # every run ended in an error: the suite or setup is broken
EXIT_BENCH_SOME_ERRORED = 4  # some runs ended in an error (the others are in the reports)

#: files ``nncert bench`` writes into ``--out``
OUTPUT_FILES: tuple[str, ...] = (
    "results.csv",
    "summary.md",
    "cactus.png",
    "paper_table.csv",
    "paper_table.md",
    "compression.csv",
    "compression.md",
    "paper_qubo.csv",
    "paper_qubo.md",
    "progress.jsonl",
)

#: VNN-COMP columns followed by nncert's
RESULT_EXTRA_COLUMNS: tuple[str, ...] = (
    "method",
    "solver",
    "spins",
    "iterations",
    "margin_lower",
    "margin_upper",
    "transfer",
    "truth",
    "correct",
    "reason",
    "decided_by",
    "dataset",
    "activation",
    "eps",
    "variant",
    "timeout",
    "note",
)

#: default epsilon grid of the built-in suites (FORMULATIONS.md section 12.4)
DEFAULT_EPS: tuple[float, ...] = (0.01, 0.02, 0.05, 0.1)
#: default per-instance time limit of the built-in suites, seconds
DEFAULT_TIMEOUT = 10.0
#: compressed variants of the paper suite: name -> (function, argument)
PAPER_VARIANTS: tuple[tuple[str, str, float], ...] = (
    ("prune20", "magnitude_prune", 0.2),
    ("prune50", "magnitude_prune", 0.5),
    ("int8", "quantize_weights", 8),
)
PAPER_DATASETS = ("iris", "moons")
SCORE_CORRECT = 10
SCORE_INCORRECT = -150
JOURNAL = "progress.jsonl"


# --------------------------------------------------------------------------------------------
# Data model
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BenchInstance:
    """One benchmark instance (network + property), independent of method and solver.

    Attributes:
        key: unique id within the suite.
        category: VNN-COMP category (benchmark folder, dataset, ``random``).
        network: network label for ``results.csv``.
        property: property label for ``results.csv``.
        timeout: the row's timeout in seconds.
        payload: picklable recipe the worker rebuilds the network and property from.
        truth: known answer (``sat``, ``unsat``) or ``""``.
        meta: extra columns (``dataset``, ``activation``, ``eps``, ``variant``).
    """

    key: str
    category: str
    network: str
    property: str
    timeout: float
    payload: dict[str, Any]
    truth: str = ""
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Suite:
    """A loaded suite: instances plus notes on what was skipped."""

    name: str
    kind: str
    instances: tuple[BenchInstance, ...]
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Task:
    """One unit of work: an instance under one method (with options) and one solver."""

    instance: BenchInstance
    method: str
    method_options: dict[str, Any]
    solver: str
    time_limit: float
    seed: int
    #: write the run's certificate under this directory (``""``: none; see :func:`run_task`)
    certificates: str = ""

    @property
    def key(self) -> str:
        """Journal key: instance, method label and solver."""
        return f"{self.instance.key}|{self.method}|{self.solver}"


@dataclass
class BenchReport:
    """What :func:`run_bench` returns.

    Attributes:
        out: the output directory.
        rows: one ``results.csv`` row per task, in task order.
        files: output name -> path.
        notes: skipped methods, solvers, optional pieces.
        resumed: how many tasks were taken from the journal.
        ran: how many tasks ran now.
        elapsed: wall-clock seconds of this call.
    """

    out: Path
    rows: list[dict[str, Any]]
    files: dict[str, Path]
    notes: list[str]
    resumed: int = 0
    ran: int = 0
    elapsed: float = 0.0

    @property
    def wrong(self) -> int:
        """Rows whose decided result contradicts the known truth."""
        return sum(1 for r in self.rows if r.get("correct") == "no")

    @property
    def errored(self) -> int:
        """Rows whose run ended in an error (``result == "error"``; see their ``note``)."""
        return sum(1 for r in self.rows if r.get("result") == "error")


# --------------------------------------------------------------------------------------------
# Methods and solvers
# --------------------------------------------------------------------------------------------


def parse_method(token: str) -> tuple[str, dict[str, Any]]:
    """Parse ``NAME`` or ``NAME:key=value:key=value`` into ``(NAME, options)``.

    Values are read as int, then float, then ``true``/``false``, else kept as strings.

    Raises:
        ValueError: on an empty name or a malformed option.
    """
    parts = [p.strip() for p in token.strip().split(":")]
    name = parts[0]
    if not name:
        raise ValueError(f"method {token!r}: empty name")
    opts: dict[str, Any] = {}
    for item in parts[1:]:
        if "=" not in item:
            raise ValueError(f"method {token!r}: option {item!r} is not key=value")
        k, v = (s.strip() for s in item.split("=", 1))
        opts[k] = _parse_scalar(v)
    return name, opts


def _parse_scalar(v: str) -> Any:
    for conv in (int, float):
        try:
            return conv(v)
        except ValueError:
            pass
    low = v.lower()
    if low in ("true", "false"):
        return low == "true"
    return v


def _method_available(name: str) -> str | None:
    """``None`` when ``name`` can run, else why not (its module cannot be imported)."""
    spec = get_method(name)
    try:
        spec.load()
    except Exception as err:
        return f"method {name!r} skipped: cannot load {spec.target} ({type(err).__name__}: {err})"
    return None


def _check_methods(tokens: Sequence[str]) -> tuple[list[tuple[str, dict[str, Any]]], list[str]]:
    """Validate method tokens; return the runnable ones and notes on skipped ones.

    Raises:
        ValueError: unknown method name or invalid option.
    """

    out: list[tuple[str, dict[str, Any]]] = []
    notes: list[str] = []
    for tok in tokens:
        name, opts = parse_method(tok)
        if name not in method_names():
            raise ValueError(f"unknown method {name!r}; known: {', '.join(method_names())}")
        VerifyOptions.from_mapping({"method": name, **opts})  # validates option names/values
        why = _method_available(name)
        if why is not None:
            notes.append(why)
            continue
        out.append((tok.strip(), opts | {"method": name}))
    return out, notes


def _check_solvers(names: Sequence[str]) -> tuple[list[str], list[str]]:
    """Validate solver names; return the available ones and notes on the others.

    Raises:
        ValueError: an unknown solver name.
    """

    ok: list[str] = []
    notes: list[str] = []
    for name in names:
        try:
            spec = get_solver_spec(name)
        except InvalidOptionsError as err:
            raise ValueError(str(err)) from None
        available = getattr(spec, "is_available", None)
        if callable(available) and not available():
            extra = getattr(spec, "extra", "")
            hint = f' (pip install "nncert[{extra}]")' if extra else ""
            notes.append(f"solver {name!r} skipped: not installed{hint}")
            continue
        ok.append(name)
    return ok, notes


# --------------------------------------------------------------------------------------------
# Suites
# --------------------------------------------------------------------------------------------


def _fmt_eps(e: float) -> str:
    return f"{e:g}"


def load_suite(
    suite: str | Path,
    *,
    eps: Sequence[float] | None = None,
    timeout: float | None = None,
) -> Suite:
    """Load a suite by name (``paper``, ``paper:test``, ``random:SEED[:N]``) or path.

    Args:
        suite: a built-in suite name or the path of a VNN-COMP ``instances.csv`` (or of the
            folder holding one).
        eps: epsilon grid for the built-in suites (default :data:`DEFAULT_EPS`).
        timeout: per-instance timeout recorded in the instances (``None``: the row's timeout
            for VNN-COMP, :data:`DEFAULT_TIMEOUT` for built-in suites).

    Raises:
        FileNotFoundError: the path does not exist.
        ValueError: a malformed suite name.
    """
    text = str(suite)
    if text == "paper" or text.startswith("paper:"):
        mode = text.partition(":")[2] or "bundled"
        if mode not in ("bundled", "test"):
            raise ValueError(f"suite {text!r}: expected paper or paper:test")
        return _paper_suite(mode, eps or DEFAULT_EPS, timeout or DEFAULT_TIMEOUT)
    if text.startswith("random:"):
        parts = text.split(":")
        try:
            seed = int(parts[1])
            n = int(parts[2]) if len(parts) > 2 and parts[2] else 20
        except (IndexError, ValueError):
            raise ValueError(f"suite {text!r}: expected random:SEED[:N] with integers") from None
        if len(parts) > 3 or seed < 0 or n < 1:
            raise ValueError(f"suite {text!r}: expected random:SEED[:N], SEED >= 0, N >= 1")
        return _random_suite(seed, n, eps, timeout or DEFAULT_TIMEOUT)
    path = Path(text)
    if path.is_dir():
        path = path / "instances.csv"
    if not path.exists():
        raise FileNotFoundError(
            f"{suite}: no such file (expected instances.csv or a built-in suite)"
        )
    return _vnncomp_suite(path, timeout)


def _raw_first_columns(path: Path) -> list[tuple[str, str]]:
    """``(first column, vnnlib column)`` of every non-empty row, as written."""
    out: list[tuple[str, str]] = []
    with path.open(newline="") as fh:
        for row in csv.reader(fh):
            if not row or all(not c.strip() for c in row):
                continue
            out.append((row[0].strip(), row[1].strip() if len(row) > 1 else ""))
    return out


def _vnncomp_suite(path: Path, timeout: float | None) -> Suite:

    base = path.parent
    category = base.name or "vnncomp"
    instances = read_instances(path)
    raw = _raw_first_columns(path)
    truth: dict[tuple[str, str], str] = {}
    notes: list[str] = []
    truth_path = base / "truth.csv"
    if truth_path.exists():
        try:
            truth = read_truth(truth_path)
        except (KeyError, OSError, csv.Error) as err:
            notes.append(f"truth.csv ignored: {type(err).__name__}: {err}")
    out: list[BenchInstance] = []
    for i, (inst, (first, spec)) in enumerate(zip(instances, raw)):
        t = float(timeout) if timeout is not None else inst.timeout
        # absolute paths: a worker of a cluster may run in another directory
        nets = [(name, os.path.abspath(p)) for name, p in inst.networks]
        spec_path = os.path.abspath(inst.spec)
        if len(nets) == 1:
            payload: dict[str, Any] = {"kind": "vnncomp", "onnx": nets[0][1], "spec": spec_path}
            label = first
        else:
            payload = {"kind": "vnncomp_multi", "networks": nets, "spec": spec_path}
            label = "+".join(f"{n}={os.path.relpath(p, base)}" for n, p in nets)
        ans = truth.get((first, spec), "").strip().lower()
        ans = {"holds": "unsat", "violated": "sat"}.get(ans, ans)
        out.append(
            BenchInstance(
                key=f"{category}:{i}:{label}:{spec}",
                category=category,
                network=label,
                property=spec,
                timeout=t,
                payload=payload,
                truth=ans if ans in ("sat", "unsat") else "",
                meta={"variant": "pair" if len(nets) > 1 else ""},
            )
        )
    return Suite(str(path), "vnncomp", tuple(out), tuple(notes))


def _suite_inputs(suite: Suite) -> list[str]:
    """The files a suite reads (``instances.csv``, ``truth.csv``, models, properties)."""
    if suite.kind != "vnncomp":
        return []
    files = [suite.name, str(Path(suite.name).parent / "truth.csv")]
    for inst in suite.instances:
        p = inst.payload
        files.append(str(p.get("spec", "")))
        if "onnx" in p:
            files.append(str(p["onnx"]))
        files += [str(path) for _name, path in p.get("networks", ())]
    return [f for f in files if f]


def dataset_test_split(name: str) -> tuple[np.ndarray, np.ndarray] | None:
    """The normalised test split of a bundled example's dataset, or ``None``.

    Rebuilt with scikit-learn from the split recorded in the examples metadata and normalised
    with the example's recorded ``min``/``max``; ``None`` when scikit-learn is missing or the
    dataset is not Iris, moons or digits.
    """

    info = example_info(name)
    dataset = str(info.get("dataset", ""))
    ds_meta = dataset_metadata(dataset)
    if ds_meta is None:
        return None
    try:
        from sklearn import datasets as skd
        from sklearn.model_selection import train_test_split
    except ImportError:
        return None
    if dataset == "iris":
        bunch = skd.load_iris()
        x, y = bunch.data, bunch.target
    elif dataset == "digits":
        bunch = skd.load_digits()
        x, y = bunch.data, bunch.target
    elif dataset == "moons":
        x, y = skd.make_moons(
            n_samples=int(ds_meta.get("n_samples", 1000)),
            noise=float(ds_meta.get("noise", 0.2)),
            random_state=int(ds_meta.get("random_state", 0)),
        )
    else:
        return None
    split = ds_meta.get("split", {})
    _, x_te, _, y_te = train_test_split(
        np.asarray(x, dtype=np.float64),
        np.asarray(y, dtype=np.int64),
        test_size=float(split.get("test_size", 0.2)),
        random_state=int(split.get("random_state", 0)),
        stratify=y if split.get("stratify", True) else None,
    )
    norm = info.get("normalisation", {})
    lo = np.asarray(norm.get("min"), dtype=np.float64)
    hi = np.asarray(norm.get("max"), dtype=np.float64)
    scale = np.where(hi > lo, hi - lo, 1.0)
    return np.clip((x_te - lo) / scale, 0.0, 1.0), y_te


def _paper_points(name: str, mode: str) -> tuple[list[dict[str, Any]], str]:
    """Points ``{id, x0, label, attack_radius}`` of an example and a note (may be empty)."""
    info = example_info(name)
    bundled = [
        {
            "id": str(p["id"]),
            "x0": [float(v) for v in p["x0"]],
            "label": int(p["label"]),
            "attack_radius": p.get("attack_radius"),
        }
        for p in info["properties"]["points"]
    ]
    if mode != "test":
        return bundled, ""
    split = dataset_test_split(name)
    if split is None:
        return bundled, "paper:test needs scikit-learn; used the bundled points instead"

    net, _ = load_example(name)
    x_te, y_te = split
    pred = np.argmax(net.forward(x_te), axis=1)
    pts = [
        {"id": f"t{i}", "x0": [float(v) for v in x_te[i]], "label": int(y_te[i])}
        for i in range(len(y_te))
        if pred[i] == y_te[i]
    ]
    return pts, ""


def _paper_suite(mode: str, eps: Sequence[float], timeout: float) -> Suite:
    notes: list[str] = []
    variants = ["original", *(v[0] for v in PAPER_VARIANTS)]
    out: list[BenchInstance] = []
    for name in list_examples():
        info = example_info(name)
        dataset = str(info.get("dataset", ""))
        if dataset not in PAPER_DATASETS:
            continue
        points, note = _paper_points(name, mode)
        if note and note not in notes:
            notes.append(note)
        for variant in variants:
            net_label = name if variant == "original" else f"{name}+{variant}"
            for p in points:
                for e in eps:
                    radius = p.get("attack_radius")
                    truth = ""
                    if variant == "original" and radius is not None and e >= float(radius):
                        truth = "sat"
                    prop_label = f"{p['id']}:eps={_fmt_eps(e)}"
                    out.append(
                        BenchInstance(
                            key=f"paper:{net_label}:{prop_label}",
                            category=dataset,
                            network=net_label,
                            property=prop_label,
                            timeout=timeout,
                            payload={
                                "kind": "example",
                                "example": name,
                                "variant": variant,
                                "x0": p["x0"],
                                "label": p["label"],
                                "eps": float(e),
                                "n_classes": int(info["n_classes"]),
                                "name": f"{name}:{prop_label}",
                            },
                            truth=truth,
                            meta={
                                "dataset": dataset,
                                "activation": str(info.get("activation", "")),
                                "eps": float(e),
                                "variant": variant,
                                "example": name,
                            },
                        )
                    )
    return Suite(
        f"paper:{mode}" if mode != "bundled" else "paper", "paper", tuple(out), tuple(notes)
    )


def random_instance(seed: int, index: int) -> tuple[Any, Any, dict[str, Any]]:
    """The ``index``-th instance of suite ``random:SEED``: ``(network, property, meta)``.

    A deterministic function of ``(seed, index)`` only (not of the suite size): a ReLU or
    hardtanh MLP with 2-6 inputs, one or two hidden layers of 4-16 neurons and 2-4 classes
    (He-scaled Gaussian weights), and an L-infinity robustness property around a uniform
    random point in ``[0, 1]^n`` labelled with the network's own prediction.
    """

    rng = np.random.default_rng([int(seed), int(index)])
    act = "relu" if rng.random() < 0.5 else "hardtanh"
    n_in = int(rng.integers(2, 7))
    depth = int(rng.integers(1, 3))
    widths = [int(w) for w in rng.integers(4, 17, size=depth)]
    n_out = int(rng.integers(2, 5))
    sizes = [n_in, *widths, n_out]
    layers: list[Any] = []
    for k in range(len(sizes) - 1):
        w = rng.normal(0.0, math.sqrt(2.0 / sizes[k]), size=(sizes[k + 1], sizes[k]))
        b = rng.normal(0.0, 0.1, size=sizes[k + 1])
        layers.append(Dense(w, b))
        if k < len(sizes) - 2:
            layers.append(ReLU() if act == "relu" else HardTanh())
    arch = "-".join(str(s) for s in sizes)
    net = Network(tuple(layers), (n_in,), name=f"random{seed}_{index:03d}_{act}_{arch}")
    x0 = rng.uniform(0.0, 1.0, size=n_in)
    label = int(np.argmax(net.forward(x0)))
    eps = float(rng.choice(np.asarray(DEFAULT_EPS)))
    prop = robustness_property(x0, eps, label, n_out, domain=(0.0, 1.0))
    meta = {
        "activation": act,
        "eps": eps,
        "architecture": arch,
        "label": label,
        "x0": [float(v) for v in x0],
    }
    return net, prop, meta


def _random_suite(seed: int, n: int, eps: Sequence[float] | None, timeout: float) -> Suite:
    out: list[BenchInstance] = []
    for i in range(n):
        net, _prop, meta = random_instance(seed, i)
        grid = [meta["eps"]] if not eps else [float(e) for e in eps]
        for e in grid:
            prop_label = f"eps={_fmt_eps(e)}"
            out.append(
                BenchInstance(
                    key=f"random:{seed}:{i}:{prop_label}",
                    category="random",
                    network=net.name,
                    property=prop_label,
                    timeout=timeout,
                    payload={"kind": "random", "seed": seed, "index": i, "eps": e},
                    meta={"activation": meta["activation"], "eps": e, "variant": "original"},
                )
            )
    return Suite(f"random:{seed}:{n}", "random", tuple(out))


# --------------------------------------------------------------------------------------------
# The worker
# --------------------------------------------------------------------------------------------

# per-process caches (a worker serves many tasks on the same networks)
_NETWORKS: dict[str, Any] = {}
_SOURCE_RESULTS: dict[str, Any] = {}


def _cached(key: str, build: Any) -> Any:
    net = _NETWORKS.get(key)
    if net is None:
        if len(_NETWORKS) > 64:
            _NETWORKS.clear()
        net = build()
        _NETWORKS[key] = net
    return net


def _example_network(name: str, variant: str) -> Any:
    def build_original() -> Any:

        return load_example(name)[0]

    original = _cached(f"example:{name}:original", build_original)
    if variant == "original":
        return original

    def build_variant() -> Any:

        for vname, fn, arg in PAPER_VARIANTS:
            if vname == variant:
                if fn == "quantize_weights":
                    net, _ = comp.quantize_weights(original, bits=int(arg))
                else:
                    net, _ = getattr(comp, fn)(original, float(arg))
                return net
        raise ValueError(f"unknown variant {variant!r}")

    return _cached(f"example:{name}:{variant}", build_variant)


def _materialize(payload: Mapping[str, Any]) -> tuple[Any, Any, Any]:
    """``(network, property, source network or None)`` from a task payload."""
    kind = payload["kind"]
    if kind == "vnncomp":
        onnx = str(payload["onnx"])
        net = _cached(f"onnx:{onnx}", lambda: from_onnx(onnx))
        prop = load_vnnlib(str(payload["spec"]))
        if isinstance(prop, MixedProperty | PolynomialProperty):
            raise ValueError(
                "constraints over the inputs (or products of variables) are decided by nncert "
                "verify/vnncomp, not in bench"
            )
        if not isinstance(prop, Property):
            raise ValueError("multi-network query on a single-network row")
        prop.check_network_shape(net.n_inputs, net.n_outputs, where=str(payload["spec"]))
        return net, prop, None
    if kind == "example":
        net = _example_network(str(payload["example"]), str(payload["variant"]))
        p = robustness_property(
            payload["x0"], float(payload["eps"]), int(payload["label"]), int(payload["n_classes"])
        )
        prop = Property(p.cases, name=str(payload.get("name", "")), label=p.label)
        source = None
        if payload["variant"] != "original":
            source = _example_network(str(payload["example"]), "original")
        return net, prop, source
    if kind == "random":
        seed, index = int(payload["seed"]), int(payload["index"])
        net, prop, meta = _cached(f"random:{seed}:{index}", lambda: random_instance(seed, index))
        e = float(payload.get("eps", meta["eps"]))
        if e != meta["eps"]:
            prop = robustness_property(
                meta["x0"], e, meta["label"], net.n_outputs, domain=(0.0, 1.0)
            )
        return net, prop, None
    raise ValueError(f"unknown payload kind {kind!r}")


def _options(task: Task, time_limit: float | None = None) -> Any:

    values = dict(task.method_options)
    values.setdefault("solver", task.solver)
    values["solver"] = task.solver
    values["time_limit"] = float(time_limit if time_limit is not None else task.time_limit)
    values["seed"] = int(task.seed)
    return VerifyOptions.from_mapping(values)


def _num(v: Any) -> str:
    if v is None:
        return ""
    try:
        f = float(v)
    except (TypeError, ValueError):
        return ""
    if not math.isfinite(f):
        return "inf" if f > 0 else "-inf"
    return f"{f:.6g}"


def _property_margins(result: Any) -> tuple[str, str]:
    """Property-level margins: ``min`` over cases (a case lower of ``None`` -> unknown)."""
    lows = list(result.margin_lower)
    ups = [u for u in result.margin_upper if u is not None]
    low = "" if not lows or any(v is None for v in lows) else _num(min(lows))
    up = _num(min(ups)) if ups else ""
    return low, up


def _base_row(task: Task) -> dict[str, Any]:
    inst = task.instance
    meta = inst.meta
    return {
        "key": task.key,
        "category": inst.category,
        "network": inst.network,
        "property": inst.property,
        "prepare_time": "",
        "result": "error",
        "run_time": "",
        "method": task.method,
        "solver": task.solver,
        "spins": "",
        "iterations": "",
        "margin_lower": "",
        "margin_upper": "",
        "transfer": "",
        "truth": inst.truth,
        "correct": "",
        "reason": "",
        "decided_by": "",
        "dataset": meta.get("dataset", ""),
        "activation": meta.get("activation", ""),
        "eps": "" if meta.get("eps") is None else _fmt_eps(float(meta["eps"])),
        "variant": meta.get("variant", ""),
        "timeout": _num(task.time_limit),
        "note": "",
    }


def _fill(row: dict[str, Any], result: Any) -> None:
    row["result"] = result.vnncomp_result
    row["run_time"] = f"{float(result.time):.4f}"
    row["reason"] = result.reason
    row["decided_by"] = result.method
    stats = result.stats or {}
    row["spins"] = "" if stats.get("spins") is None else str(stats["spins"])
    row["iterations"] = "" if stats.get("iterations") is None else str(stats["iterations"])
    row["margin_lower"], row["margin_upper"] = _property_margins(result)


def _source_result(task: Task, source: Any, prop: Any, options: Any) -> Any:

    key = f"{task.instance.payload.get('example')}|{prop.name}|{task.method}|{task.solver}"
    res = _SOURCE_RESULTS.get(key)
    if res is None:
        if len(_SOURCE_RESULTS) > 512:
            _SOURCE_RESULTS.clear()
        res = verify(source, prop, options)
        _SOURCE_RESULTS[key] = res
    return res


def _transfer_label(out: Any) -> str:
    if not getattr(out, "transferred", False):
        return "no"
    reason = str(getattr(out, "reason", ""))
    head = reason.split(":")[0].split()[0] if reason else ""
    return head if head in ("T1", "T2", "T3") else "yes"


def _try_transfer(task: Task, source: Any, target: Any, prop: Any, options: Any) -> tuple[str, str]:
    """``(transfer label, note)`` for a compressed variant (source verdict transferred?)."""
    try:
        src = _source_result(task, source, prop, options)
        if src.verdict is Verdict.UNKNOWN:
            return "", ""
        cert = certificate_from_result(source, prop, src, options=options)
        # the run's own verdicts trust an exact solver; so may the transfer it measures
        out = transfer(cert, source, target, verify_fallback=False, accept_attested=True)
        return _transfer_label(out), ""
    except Exception as err:
        return "", f"transfer failed: {type(err).__name__}: {err}"


def _run_multi(task: Task, row: dict[str, Any], t0: float) -> dict[str, Any]:
    """A 2026-dialect row with several networks (see the module docstring)."""
    payload = task.instance.payload
    nets = list(payload["networks"])
    row["result"] = "unknown"
    if len(nets) != 2:
        row["note"] = f"{len(nets)}-network query: only two-network (transfer) rows are decided"
        return row

    prop = load_vnnlib(str(payload["spec"]))
    if not isinstance(prop, Property):
        row["note"] = "relational or input-coupled query: not decided by certificate transfer"
        row["prepare_time"] = f"{time.perf_counter() - t0:.4f}"
        return row

    src_path, dst_path = str(nets[0][1]), str(nets[1][1])
    source = _cached(f"onnx:{src_path}", lambda: from_onnx(src_path))
    target = _cached(f"onnx:{dst_path}", lambda: from_onnx(dst_path))
    prop.check_network_shape(source.n_inputs, source.n_outputs, where=f"{nets[0][0]}")
    prop.check_network_shape(target.n_inputs, target.n_outputs, where=f"{nets[1][0]}")
    row["prepare_time"] = f"{time.perf_counter() - t0:.4f}"
    t1 = time.perf_counter()
    options = _options(task)
    src = verify(source, prop, options)
    if src.verdict is Verdict.UNKNOWN:
        remaining = max(1e-3, task.time_limit - (time.perf_counter() - t1))
        res = verify(target, prop, _options(task, remaining))
        _fill(row, res)
        row["run_time"] = f"{time.perf_counter() - t1:.4f}"
        row["note"] = f"source {nets[0][0]} undecided ({src.reason}); verified {nets[1][0]}"
        return row
    cert = certificate_from_result(source, prop, src, options=options)
    remaining = max(1e-3, task.time_limit - (time.perf_counter() - t1))
    # the source's verdict came from this run (which trusts an exact solver's answer, as
    # verify does): a solver-attested source is carried like any other
    out = transfer(
        cert,
        source,
        target,
        verify_fallback=True,
        time_limit=remaining,
        options=options,
        accept_attested=True,
    )
    row["transfer"] = _transfer_label(out)
    fb = out.fallback_result
    if fb is not None:
        _fill(row, fb)
    else:
        row["reason"] = out.reason
        row["decided_by"] = "transfer"
    row["result"] = {Verdict.VERIFIED: "unsat", Verdict.FALSIFIED: "sat"}.get(
        out.verdict, "timeout" if fb is not None and fb.reason == "timeout" else "unknown"
    )
    row["run_time"] = f"{time.perf_counter() - t1:.4f}"
    row["note"] = f"{nets[0][0]} -> {nets[1][0]}: {out.describe()}"
    return row


def _file_name(label: str) -> str:
    """A file-name-safe network or property label (``p0:eps=0.1`` -> ``p0_eps=0.1``)."""
    return re.sub(r"[^\w.+=-]", "_", label).strip("._") or "_"


def certificate_path(root: str | Path, network: str, prop: str) -> Path:
    """Where :func:`run_task` writes the certificate of a run: ``ROOT/NETWORK/PROPERTY.json``
    (labels as in ``results.csv``, with characters other than letters, digits and ``.+=-``
    replaced by ``_``)."""
    return Path(root) / _file_name(network) / f"{_file_name(prop)}.json"


def _save_certificate(task: Task, network: Any, prop: Any, result: Any, options: Any) -> str:
    """Write a decided run's certificate (see :func:`certificate_path`); return a note."""

    if result.verdict is Verdict.UNKNOWN:
        return ""
    try:
        inst = task.instance
        path = certificate_path(task.certificates, inst.network, inst.property)
        path.parent.mkdir(parents=True, exist_ok=True)
        save_certificate(certificate_from_result(network, prop, result, options=options), path)
    except Exception as err:
        return f"certificate not written: {type(err).__name__}: {err}"
    return ""


def run_task(task: Task) -> dict[str, Any]:
    """Run one task (in a worker); never raises: failures give ``result == "error"``.

    With ``task.certificates`` set, a decided run's certificate is written to
    :func:`certificate_path` (a failure to write it is recorded in the row's ``note``).

    Returns:
        The ``results.csv`` row (plus the journal ``key``).
    """

    worker_setup()
    t0 = time.perf_counter()
    row = _base_row(task)
    try:
        if task.instance.payload.get("kind") == "vnncomp_multi":
            return _run_multi(task, row, t0)

        network, prop, source = _materialize(task.instance.payload)
        row["prepare_time"] = f"{time.perf_counter() - t0:.4f}"
        options = _options(task)
        result = verify(network, prop, options)
        _fill(row, result)
        notes = []
        if source is not None:
            row["transfer"], note = _try_transfer(task, source, network, prop, options)
            notes.append(note)
        if task.certificates:
            notes.append(_save_certificate(task, network, prop, result, options))
        row["note"] = "; ".join(n for n in notes if n)
    except Exception as err:
        row["result"] = "error"
        msg = str(err).splitlines()[0] if str(err) else ""
        row["note"] = f"{type(err).__name__}: {msg}"[:300]
        if not row["run_time"]:
            row["run_time"] = f"{time.perf_counter() - t0:.4f}"
    return row


# --------------------------------------------------------------------------------------------
# Journal (resume) and progress
# --------------------------------------------------------------------------------------------


class Journal:
    """Append-only JSON-lines record of finished tasks (``DIR/progress.jsonl``)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[str, dict[str, Any]]:
        """Finished rows by task key; a torn last line (crash mid-write) is dropped."""
        if not self.path.exists():
            return {}
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            cut = data.rfind(b"\n") + 1
            with self.path.open("r+b") as fh:
                fh.truncate(cut)
            data = data[:cut]
        out: dict[str, dict[str, Any]] = {}
        for line in data.decode("utf-8", errors="replace").splitlines():
            try:
                doc = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(doc, dict) and isinstance(doc.get("row"), dict) and "key" in doc:
                out[str(doc["key"])] = doc["row"]
        return out

    def reset(self) -> None:
        """Forget every finished task."""
        self.path.write_bytes(b"")

    def append(self, key: str, row: Mapping[str, Any]) -> None:
        """Append one finished task with a single ``write`` and ``fsync``."""
        line = json.dumps({"key": key, "row": dict(row)}, allow_nan=False, default=str) + "\n"
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)


def _hms(seconds: float) -> str:
    s = max(0, round(seconds))
    return f"{s // 3600}:{(s % 3600) // 60:02d}:{s % 60:02d}"


@dataclass(frozen=True)
class ProgressStyle:
    """How :class:`BenchProgress` labels its line.

    Attributes:
        prefix: the tag in brackets at the start of each line (``[bench]``).
        words: result word -> the name counted on the bar (e.g. ``{"unsat": "certified"}``);
            words not listed are shown as they are.
    """

    prefix: str = "bench"
    words: Mapping[str, str] = field(default_factory=dict)


#: the ``nncert demo`` bar speaks the table's language
DEMO_PROGRESS = ProgressStyle(
    "demo", {"unsat": "certified", "sat": "vulnerable", "timeout": "unknown"}
)


class BenchProgress:
    """A plain-text progress bar with an ETA on ``stream``.

    On a terminal one line is rewritten with ``\\r``; otherwise one line is printed every
    ``every`` finished tasks (and for the last one). ``quiet`` silences everything. ``style``
    sets the line's tag and the names of the counted results.
    """

    def __init__(
        self,
        total: int,
        stream: TextIO,
        *,
        quiet: bool = False,
        every: int = 10,
        skipped: int = 0,
        width: int = 24,
        style: ProgressStyle | None = None,
    ) -> None:
        self.total = total
        self.stream = stream
        self.quiet = quiet
        self.every = max(1, int(every))
        self.skipped = skipped
        self.width = width
        self.style = style if style is not None else ProgressStyle()
        self.done = 0
        self.counts: dict[str, int] = {}
        self.t0 = time.perf_counter()
        isatty = getattr(stream, "isatty", None)
        self.tty = bool(isatty()) if callable(isatty) else False
        self._width_written = 0

    def line(self) -> str:
        """The current progress line (without line ending)."""
        finished = self.skipped + self.done
        frac = finished / self.total if self.total else 1.0
        filled = round(frac * self.width)
        bar = "#" * filled + "-" * (self.width - filled)
        el = time.perf_counter() - self.t0
        remaining = self.total - finished
        eta = _hms(el / self.done * remaining) if self.done else "?"
        counts = " ".join(f"{k} {v}" for k, v in sorted(self.counts.items()))
        return (
            f"[{self.style.prefix}] [{bar}] {finished}/{self.total} {100 * frac:3.0f}% "
            f"elapsed {_hms(el)} ETA {eta}" + (f"  ({counts})" if counts else "")
        )

    def start(self) -> None:
        """Show the initial state (resumed tasks included)."""
        if self.quiet:
            return
        if self.skipped:
            self.stream.write(
                f"[{self.style.prefix}] resuming: {self.skipped} task(s) already done\n"
            )
        if self.tty:
            text = self.line()
            self._width_written = len(text)
            self.stream.write(text)
        self.stream.flush()

    def update(self, result: str) -> None:
        """Record one finished task with its result word."""
        self.done += 1
        word = self.style.words.get(result, result)
        self.counts[word] = self.counts.get(word, 0) + 1
        if self.quiet:
            return
        last = self.skipped + self.done >= self.total
        if self.tty:
            text = self.line()
            pad = " " * max(0, self._width_written - len(text))
            self._width_written = len(text)
            self.stream.write("\r" + text + pad + ("\n" if last else ""))
        elif self.done % self.every == 0 or last:
            self.stream.write(self.line() + "\n")
        self.stream.flush()

    def close(self) -> None:
        """End the line on a terminal if the run stopped early."""
        if not self.quiet and self.tty and self.skipped + self.done < self.total:
            self.stream.write("\n")
            self.stream.flush()


# --------------------------------------------------------------------------------------------
# Reports
# --------------------------------------------------------------------------------------------


def _correct(result: str, truth: str) -> str:
    if result in ("sat", "unsat") and truth in ("sat", "unsat"):
        return "yes" if result == truth else "no"
    return ""


def _float(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _group_key(row: Mapping[str, Any]) -> str:
    return f"{row['method']}/{row['solver']}"


def score_rows(rows: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per ``method/solver``: counts, median time and the VNN-COMP-style score.

    A decided answer (``sat``/``unsat``) scores +10 unless it contradicts the truth (-150);
    a decided answer slower than the row's timeout counts as a timeout (2026 rule). Without
    a truth value a decided answer counts as correct (VNN-COMP: uncontested answers are).
    """
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for r in rows:
        groups.setdefault(_group_key(r), []).append(r)
    out: dict[str, dict[str, Any]] = {}
    for g, rs in groups.items():
        c = {"sat": 0, "unsat": 0, "unknown": 0, "timeout": 0, "error": 0}
        wrong = late = score = 0
        times: list[float] = []
        solved_times: list[float] = []
        for r in rs:
            res = str(r.get("result", "error"))
            c[res if res in c else "error"] += 1
            t = _float(r.get("run_time"))
            if t is not None:
                times.append(t)
            if res not in ("sat", "unsat"):
                continue
            limit = _float(r.get("timeout"))
            if r.get("correct") == "no":
                wrong += 1
                score += SCORE_INCORRECT
            elif limit is not None and t is not None and t > limit:
                late += 1
            else:
                score += SCORE_CORRECT
                if t is not None:
                    solved_times.append(t)
        out[g] = {
            **c,
            "solved": c["sat"] + c["unsat"] - wrong,
            "wrong": wrong,
            "late": late,
            "total": len(rs),
            "median_time": statistics.median(times) if times else float("nan"),
            "score": score,
            "solved_times": solved_times,
        }
    return out


def _md_table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(str(c) for c in r) + " |")
    return "\n".join(lines) + "\n"


def write_summary(
    path: Path,
    suite: Suite,
    rows: Sequence[Mapping[str, Any]],
    notes: Sequence[str],
    *,
    elapsed: float,
    jobs: int,
    executor: str,
) -> dict[str, dict[str, Any]]:
    """Write ``summary.md``; return :func:`score_rows` of ``rows``."""
    scores = score_rows(rows)
    has_truth = any(r.get("truth") for r in rows)
    body = [f"# nncert bench: {suite.name}\n"]
    body.append(
        f"{len(suite.instances)} instances, {len(rows)} runs, executor {executor} with "
        f"{jobs} job(s), {elapsed:.1f} s wall clock for this invocation.\n"
    )
    table = []
    for g in sorted(scores):
        s = scores[g]
        med = s["median_time"]
        table.append(
            [
                g,
                s["solved"],
                s["sat"],
                s["unsat"],
                s["unknown"] + s["timeout"] + s["error"],
                s["wrong"] if has_truth else "n/a",
                s["total"],
                "-" if math.isnan(med) else f"{med:.3f}",
                s["score"],
            ]
        )
    body.append(
        _md_table(
            [
                "method/solver",
                "solved",
                "sat",
                "unsat",
                "unknown",
                "wrong",
                "total",
                "median time s",
                "score",
            ],
            table,
        )
    )
    body.append(
        "\nVNN-COMP-style score (2023-2026 rules: +10 per correct sat/unsat, -150 per "
        "incorrect, a decided answer slower than its timeout counts as a timeout"
        + ("" if has_truth else "; no truth.csv, so every decided answer counts as correct")
        + "): "
        + ", ".join(f"{g} = {scores[g]['score']}" for g in sorted(scores))
        + "\n"
    )
    errors = sum(s["error"] for s in scores.values())
    late = sum(s["late"] for s in scores.values())
    if errors or late:
        body.append(
            f"\n{errors} run(s) ended in error (see `note` in results.csv); "
            f"{late} decided answer(s) exceeded their timeout.\n"
        )
    if notes:
        body.append("\n## Notes\n\n" + "".join(f"- {n}\n" for n in notes))
    write_atomic(path, "\n".join(b.rstrip("\n") + "\n" for b in body))
    return scores


def _write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    buf = io.StringIO(newline="")
    w = csv.writer(buf)
    w.writerow(header)
    for r in rows:
        w.writerow(r)
    write_atomic(path, buf.getvalue())


def paper_table(rows: Sequence[Mapping[str, Any]]) -> tuple[list[str], list[list[Any]]]:
    """The paper-style table: one line per dataset, activation, epsilon, variant, method."""
    groups: dict[tuple[str, str, float, str, str], list[Mapping[str, Any]]] = {}
    order = {"original": 0, **{v[0]: i + 1 for i, v in enumerate(PAPER_VARIANTS)}}
    for r in rows:
        e = _float(r.get("eps"))
        key = (
            str(r.get("dataset", "")),
            str(r.get("activation", "")),
            e if e is not None else float("nan"),
            str(r.get("variant", "")),
            _group_key(r),
        )
        groups.setdefault(key, []).append(r)
    header = [
        "dataset",
        "activation",
        "eps",
        "variant",
        "method/solver",
        "certified",
        "vulnerable",
        "unknown",
        "time_s",
        "spins",
        "iterations",
    ]
    out: list[list[Any]] = []
    for key in sorted(groups, key=lambda k: (k[0], k[1], k[2], order.get(k[3], 9), k[4])):
        rs = groups[key]
        cert = sum(1 for r in rs if r.get("result") == "unsat")
        vul = sum(1 for r in rs if r.get("result") == "sat")
        tot = sum(_float(r.get("run_time")) or 0.0 for r in rs)
        spins = [int(float(r["spins"])) for r in rs if _float(r.get("spins")) is not None]
        iters = [int(float(r["iterations"])) for r in rs if _float(r.get("iterations")) is not None]
        out.append(
            [
                key[0],
                key[1],
                _fmt_eps(key[2]),
                key[3],
                key[4],
                cert,
                vul,
                len(rs) - cert - vul,
                f"{tot:.2f}",
                max(spins) if spins else "-",
                sum(iters) if iters else "-",
            ]
        )
    return header, out


# --------------------------------------------------------------------------------------------
# The paper's QUBO-route columns (issue 19): Model 2 at K = 5 through an annealer
# --------------------------------------------------------------------------------------------

#: activations of the paper suite that take Model 2 on the QUBO route
PAPER_QUBO_ACTIVATIONS = ("sigmoid", "tanh")
#: Model 2 segments on the QUBO route (the paper's coarse 5-segment approximation)
PAPER_QUBO_SEGMENTS = 5
#: Benders iterations whose annealed master is audited against the exact master optimum
PAPER_QUBO_AUDIT_ITERATIONS = 4


def _paper_qubo_run(inst: BenchInstance, *, seed: int, timeout: float) -> dict[str, Any]:
    """One sigmoid/tanh paper instance on the QUBO route (verify, method ``qubo``, no
    presolve, K = 5, simulated annealing with the default reads and spin budget), plus an
    audit of the annealed Benders master (Model 2, Route A) against its exact optimum."""
    network, prop, _ = _materialize(inst.payload)
    opts = VerifyOptions(
        method="qubo",
        solver="sa",
        presolve=False,
        segments=PAPER_QUBO_SEGMENTS,
        time_limit=float(timeout),
        seed=int(seed),
    )
    t0 = time.perf_counter()
    result = verify(network, prop, opts)
    elapsed = time.perf_counter() - t0
    case_stats = [s for s in result.stats.get("qubo", []) if isinstance(s, Mapping)]
    spins = max((int(s.get("spins", 0)) for s in case_stats), default=0)
    routes = sorted({str(s.get("route")) for s in case_stats if s.get("route")})
    hits = audited = 0
    if prop.cases:
        master = make_master("sa", num_reads=opts.num_reads, seed=opts.seed)
        bopts = BendersOptions(
            max_iterations=PAPER_QUBO_AUDIT_ITERATIONS,
            cut_window=8,
            qubo=QuboMasterOptions(eta_bits=6),
            max_master_variables=opts.spin_budget,
            final_exact_master=False,
            audit_master=True,
        )
        try:
            out = benders_model2(
                network.normalized(),
                prop.cases[0],
                master,
                segments=PAPER_QUBO_SEGMENTS,
                time_limit=float(timeout),
                spin_budget=opts.spin_budget,
                max_refinements=0,
                options=bopts,
            )
            for run in out.runs:
                for it in run.iterations:
                    if it.master_optimum is None or it.master_variables == 0:
                        continue
                    audited += 1
                    tol = 1e-9 * (1.0 + abs(it.master_optimum))
                    hits += int(it.master_value <= it.master_optimum + tol)
        except NncertError:
            pass
    return {
        "key": inst.key,
        "network": inst.network,
        "property": inst.property,
        "dataset": inst.meta.get("dataset", ""),
        "activation": inst.meta.get("activation", ""),
        "eps": inst.meta.get("eps"),
        "result": _verdict_word(result.verdict),
        "spins": spins,
        "routes": ",".join(routes),
        "time": elapsed,
        "master_hits": hits,
        "master_audited": audited,
    }


def _verdict_word(verdict: Any) -> str:
    return {"verified": "unsat", "falsified": "sat"}.get(str(verdict.value), "unknown")


def paper_qubo_runs(
    suite: Suite, *, seed: int = 0, timeout: float = DEFAULT_TIMEOUT
) -> list[dict[str, Any]]:
    """Run :func:`_paper_qubo_run` on every original sigmoid/tanh instance of a paper suite."""
    out = []
    for inst in suite.instances:
        if inst.meta.get("variant") != "original":
            continue
        if inst.meta.get("activation") not in PAPER_QUBO_ACTIVATIONS:
            continue
        try:
            out.append(_paper_qubo_run(inst, seed=seed, timeout=timeout))
        except NncertError as err:  # an instance that cannot run is reported, not raised
            out.append({"key": inst.key, "network": inst.network, "property": inst.property,
                        "dataset": inst.meta.get("dataset", ""),
                        "activation": inst.meta.get("activation", ""),
                        "eps": inst.meta.get("eps"), "result": "error", "spins": 0,
                        "routes": "", "time": 0.0, "master_hits": 0, "master_audited": 0,
                        "note": str(err)[:200]})  # fmt: skip
    return out


def paper_qubo_table(
    qubo_rows: Sequence[Mapping[str, Any]], rows: Sequence[Mapping[str, Any]]
) -> tuple[list[str], list[list[Any]]]:
    """The QUBO-route columns per dataset, activation and epsilon.

    ``exact_vulnerable``: instances the exact baseline (every other run of the bench on the
    same instance, e.g. ``auto/highs``) falsified, or known ``sat`` by truth; ``qubo_vulnerable``:
    falsified on the QUBO route (replayed counterexamples); ``missed``: exact vulnerable but not
    found; ``contradictions``: found vulnerable where the baseline certified (must be 0);
    ``spins_max``/``spins_mean``: largest segment QUBO per instance; ``master_optimum``:
    annealed Benders masters that reached the exact master optimum / masters audited.
    """
    base: dict[tuple[str, str], set[str]] = {}
    for r in rows:
        base.setdefault((str(r.get("network")), str(r.get("property"))), set()).add(
            str(r.get("result", ""))
        )
        if r.get("truth"):
            base[(str(r.get("network")), str(r.get("property")))].add(str(r["truth"]))
    groups: dict[tuple[str, str, float], list[Mapping[str, Any]]] = {}
    for q in qubo_rows:
        e = _float(q.get("eps"))
        key = (str(q.get("dataset", "")), str(q.get("activation", "")), e or 0.0)
        groups.setdefault(key, []).append(q)
    header = [
        "dataset",
        "activation",
        "eps",
        "instances",
        "exact_vulnerable",
        "qubo_vulnerable",
        "missed",
        "contradictions",
        "spins_max",
        "spins_mean",
        "time_s",
        "master_optimum",
    ]
    table: list[list[Any]] = []
    for key in sorted(groups):
        qs = groups[key]
        exact_v = found = missed = contra = 0
        for q in qs:
            b = base.get((str(q["network"]), str(q["property"])), set())
            is_v = "sat" in b
            hit = q.get("result") == "sat"
            exact_v += int(is_v)
            found += int(hit)
            missed += int(is_v and not hit)
            contra += int(hit and "unsat" in b)
        spins = [int(q.get("spins", 0)) for q in qs]
        hits = sum(int(q.get("master_hits", 0)) for q in qs)
        aud = sum(int(q.get("master_audited", 0)) for q in qs)
        table.append(
            [
                key[0],
                key[1],
                _fmt_eps(key[2]),
                len(qs),
                exact_v,
                found,
                missed,
                contra,
                max(spins) if spins else "-",
                f"{sum(spins) / len(spins):.1f}" if spins else "-",
                f"{sum(float(q.get('time', 0.0)) for q in qs):.2f}",
                f"{hits}/{aud}" if aud else "-",
            ]
        )
    return header, table


def _storage_bytes(network: Any, variant: str) -> int:
    """Storage estimate: dense float32 (4 B/weight); for pruned variants the smaller of dense
    and CSR-like sparse storage (4 B value + 4 B index per non-zero weight, 4 B per row
    pointer); int8 (1 B/weight + a float32 scale per output neuron); biases float32."""
    total = 0
    for d in network.dense_layers:
        w = dense_weight(d.weight, "the storage estimate")
        if variant.startswith("prune"):
            total += min(4 * w.size, 8 * int(np.count_nonzero(w)) + 4 * (w.shape[0] + 1))
        elif variant == "int8":
            total += w.size + 4 * w.shape[0]
        else:
            total += 4 * w.size
        total += 4 * int(np.asarray(d.bias).size)
    return total


def _onnx_bytes(network: Any) -> int | None:
    try:
        model = to_onnx(network, dtype="float32")
        return len(model.SerializeToString())
    except Exception:
        return None


def _latency_us(network: Any, x: np.ndarray, repeats: int = 101) -> float:
    """Median wall time of a single-sample float64 forward pass, in microseconds."""
    x1 = np.asarray(x[:1], dtype=np.float64)
    network.forward(x1)
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        network.forward(x1)
        ts.append(time.perf_counter() - t)
    return 1e6 * statistics.median(ts)


def compression_table(
    rows: Sequence[Mapping[str, Any]],
) -> tuple[list[str], list[list[Any]], str]:
    """The compression trade-off table of a paper run (and where accuracy was measured).

    Certified share and transfer rate use the method/solver that decided the most runs
    (the first such one on ties).
    """
    if not rows:
        return [], [], ""
    decided: dict[str, int] = {}
    for r in rows:
        g = _group_key(r)
        decided[g] = decided.get(g, 0) + int(r.get("result") in ("sat", "unsat"))
    first = max(decided, key=lambda g: decided[g])  # dicts keep order: ties -> first method
    by_net: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for r in rows:
        if _group_key(r) != first:
            continue
        name = str(r["network"]).split("+")[0]
        by_net.setdefault((name, str(r.get("variant", "original"))), []).append(r)
    header = [
        "network",
        "variant",
        "accuracy",
        "parameters",
        "onnx_bytes",
        "storage_bytes",
        "latency_us",
        "certified_share",
        "transfer_rate",
    ]
    out: list[list[Any]] = []
    acc_sources: set[str] = set()
    order = {"original": 0, **{v[0]: i + 1 for i, v in enumerate(PAPER_VARIANTS)}}
    for name, variant in sorted(by_net, key=lambda k: (k[0], order.get(k[1], 9))):
        rs = by_net[(name, variant)]
        try:
            net = _example_network(name, variant)
        except Exception:
            continue
        split = dataset_test_split(name)
        if split is not None:
            x, y = split
            acc_sources.add("test split")
        else:
            info = example_info(name)
            pts = info["properties"]["points"]
            x = np.asarray([p["x0"] for p in pts], dtype=np.float64)
            y = np.asarray([int(p["label"]) for p in pts])
            acc_sources.add("bundled points")
        acc = float(np.mean(np.argmax(net.forward(x), axis=1) == y))
        nnz = sum(d.nnz + int(np.count_nonzero(d.bias)) for d in net.dense_layers)
        certified = sum(1 for r in rs if r.get("result") == "unsat") / len(rs)
        tried = [r for r in rs if r.get("transfer")]
        moved = [r for r in tried if r.get("transfer") not in ("no", "")]
        rate = f"{len(moved)}/{len(tried)}" if tried else "-"
        ob = _onnx_bytes(net)
        out.append(
            [
                name,
                variant,
                f"{acc:.3f}",
                nnz,
                "-" if ob is None else ob,
                _storage_bytes(net, variant),
                f"{_latency_us(net, x):.1f}",
                f"{certified:.3f}",
                rate if variant != "original" else "-",
            ]
        )
    return header, out, ", ".join(sorted(acc_sources)) + f"; method {first}"


def _short_name(name: str) -> str:
    p = Path(name)
    return f"{p.parent.name}/{p.name}" if p.suffix == ".csv" else name


def _write_results(path: Path, rows: Sequence[Mapping[str, Any]]) -> None:

    write_results_csv(path, list(rows), RESULT_EXTRA_COLUMNS)  # atomic


def write_reports(
    out: Path,
    suite: Suite,
    rows: Sequence[dict[str, Any]],
    notes: Sequence[str],
    *,
    elapsed: float = 0.0,
    jobs: int = 1,
    executor: str = "local",
    qubo_rows: Sequence[Mapping[str, Any]] | None = None,
) -> dict[str, Path]:
    """Write results.csv, summary.md, cactus.png (and the paper tables); return the paths.

    ``qubo_rows`` (from :func:`paper_qubo_runs`) adds ``paper_qubo.md``/``.csv``."""
    files: dict[str, Path] = {}
    files["results.csv"] = out / "results.csv"
    _write_results(files["results.csv"], rows)
    files["summary.md"] = out / "summary.md"
    scores = write_summary(
        files["summary.md"], suite, rows, notes, elapsed=elapsed, jobs=jobs, executor=executor
    )
    timeouts = [t for t in (_float(r.get("timeout")) for r in rows) if t is not None]
    try:
        files["cactus.png"] = cactus_plot(
            {g: s["solved_times"] for g, s in scores.items()},
            out / "cactus.png",
            timeout=max(timeouts) if timeouts else None,
            title=f"nncert bench: {_short_name(suite.name)}",
        )
    except ImportError as err:
        notes = [*notes, f"cactus.png skipped: {err}"]
    if suite.kind == "paper":
        header, table = paper_table(rows)
        files["paper_table.csv"] = out / "paper_table.csv"
        _write_csv(files["paper_table.csv"], header, table)
        files["paper_table.md"] = out / "paper_table.md"
        write_atomic(
            files["paper_table.md"],
            "# Paper-style table\n\ncertified = unsat (property holds), vulnerable = sat "
            "(confirmed counterexample); time = total seconds; spins = largest per-property "
            "spin count; iterations = total Benders/refinement iterations.\n\n"
            + _md_table(header, table),
        )
        if qubo_rows:
            qh, qt = paper_qubo_table(qubo_rows, rows)
            files["paper_qubo.csv"] = out / "paper_qubo.csv"
            _write_csv(files["paper_qubo.csv"], qh, qt)
            files["paper_qubo.md"] = out / "paper_qubo.md"
            write_atomic(
                files["paper_qubo.md"],
                "# Model 2 on the QUBO route (sigmoid and tanh)\n\n"
                f"K = {PAPER_QUBO_SEGMENTS} segments, thermometer encoding, simulated annealing "
                "(default reads), default spin budget, no presolve: the annealer only proposes; "
                "every counterexample is replayed. exact_vulnerable = falsified by the other "
                "runs of this bench or known sat; qubo_vulnerable = falsified on the QUBO "
                "route; missed = exact vulnerable not found; contradictions = found where the "
                "baseline certified (must be 0); spins = largest segment QUBO per instance; "
                "time = total seconds of the QUBO runs; master_optimum = annealed Model 2 "
                f"Benders masters (first {PAPER_QUBO_AUDIT_ITERATIONS} iterations, first "
                "case) that reached the exact master optimum / masters audited.\n\n"
                + _md_table(qh, qt),
            )
        if any(r.get("variant") not in ("", "original") for r in rows):
            ch, ct, where = compression_table(rows)
            files["compression.csv"] = out / "compression.csv"
            _write_csv(files["compression.csv"], ch, ct)
            files["compression.md"] = out / "compression.md"
            write_atomic(
                files["compression.md"],
                "# Compression trade-off\n\n"
                f"accuracy on: {where}. parameters = non-zero weights and biases; onnx_bytes = "
                "float32 ONNX export (dense, so pruning does not shrink it); storage_bytes = "
                "4 B per float32 weight; for pruned variants the smaller of that and sparse "
                "storage (8 B per non-zero weight: value + index); 1 B per int8 weight plus a "
                "float32 scale per neuron; latency = median of 101 "
                "single-sample float64 forward passes (numpy IR, so sparsity and int8 do not "
                "speed it up); certified share = unsat / instances; transfer rate = source "
                "verdicts carried to the variant by certificate transfer / decided source "
                "verdicts.\n\n" + _md_table(ch, ct),
            )
    return files


# --------------------------------------------------------------------------------------------
# Running a suite
# --------------------------------------------------------------------------------------------


def _execute(
    tasks: Sequence[Task],
    *,
    jobs: int,
    executor: str,
    address: str | None,
    notify: Callable[[str], None] | None = None,
) -> Iterator[tuple[Task, dict[str, Any]]]:
    """Run tasks, yielding ``(task, row)`` as they finish (in-process for one local job).

    A task without a result (its worker was lost for good: a Dask ``KilledWorker``, or a local
    pool that broke more often than :data:`~nncert.verify.executors.WORKER_LOSS_RETRIES`)
    gives an error row whose key starts with ``!``: it is not journalled, so ``--resume``
    runs it again.
    """
    for fin in run_each(run_task, tasks, kind=executor, jobs=jobs, address=address, notify=notify):
        t = fin.item
        if fin.error is None:
            yield t, fin.value
            continue
        err = fin.error  # run_task never raises: the worker died (not a failing verification)
        row = _base_row(t)
        row["note"] = f"worker failure: {type(err).__name__}: {err}"[:300]
        row["key"] = "!" + t.key  # not journalled: retried on resume
        yield t, row


def run_bench(
    suite: str | Path,
    *,
    out: str | Path,
    methods: Sequence[str] = ("auto",),
    solvers: Sequence[str] = ("highs",),
    jobs: int = 1,
    executor: str | None = None,
    address: str | None = None,
    timeout: float | None = None,
    seed: int = 0,
    resume: bool = True,
    eps: Sequence[float] | None = None,
    quiet: bool = False,
    progress_every: int = 10,
    stream: TextIO | None = None,
    progress_style: ProgressStyle | None = None,
    certificates: str | Path | None = None,
    qubo_route: bool = True,
) -> BenchReport:
    """Run a suite and write the reports into ``out`` (see the module docstring).

    Args:
        suite: ``instances.csv`` path, ``paper``, ``paper:test`` or ``random:SEED[:N]``.
        out: output directory (created; checked first: it must be writable and none of
            :data:`OUTPUT_FILES` in it may be a file of the suite).
        methods: method tokens (``auto``, ``milp``, ``model2:segments=5``, ...).
        solvers: solver names for the registry.
        jobs: worker processes (``1`` with the local executor: run in this process; ignored
            with ``address``).
        executor: ``local`` or ``dask`` (``None``: ``dask`` when ``address`` is given, else
            ``local``). Pool workers start with ``forkserver`` or ``spawn``, which
            re-import the main module: call this from a script under
            ``if __name__ == "__main__":``.
        address: an existing Dask cluster: scheduler address (``tcp://host:8786``) or
            scheduler file (see :func:`nncert.verify.executors.make_executor`).
        timeout: per-instance time limit (``None``: row timeout / :data:`DEFAULT_TIMEOUT`).
        seed: verification seed.
        resume: skip tasks recorded in ``out/progress.jsonl``.
        eps: epsilon grid of the built-in suites.
        quiet: no progress output.
        progress_every: non-terminal progress line every this many tasks.
        stream: progress stream (default ``sys.stderr``).
        progress_style: the progress line's tag and result names (default ``[bench]``, the
            result words).
        certificates: write the certificate of every decided run under this directory
            (see :func:`certificate_path`); runs taken from the journal are not rewritten.
        qubo_route: for the paper suite, also run the original sigmoid/tanh instances on the
            QUBO route (Model 2, K = 5, simulated annealing) and write ``paper_qubo.md``/
            ``.csv`` (:func:`paper_qubo_table`; not journalled: rerun every time).

    Raises:
        ValueError: bad method, solver, suite name or executor; no runnable method.
        FileNotFoundError: a missing suite file.
        ClusterConnectionError: no Dask scheduler answered at ``address``.
        OutputPathError: ``out`` is unusable or an output would overwrite a suite file.
    """
    t_start = time.perf_counter()
    stream = sys.stderr if stream is None else stream
    if timeout is not None and not (timeout > 0 and math.isfinite(timeout)):
        raise ValueError(f"timeout={timeout!r} must be a number > 0")
    if jobs < 1:
        raise ValueError(f"jobs={jobs!r} must be >= 1")
    executor = resolve_executor(executor, address)
    the_suite = load_suite(suite, eps=eps, timeout=timeout)

    # before any run: the reports must be writable and must not replace a suite file
    check_output_dir(out, inputs=_suite_inputs(the_suite), files=OUTPUT_FILES)
    notes = list(the_suite.notes)
    mlist, mnotes = _check_methods(methods)
    slist, snotes = _check_solvers(solvers)
    notes += mnotes + snotes
    if not mlist:
        raise ValueError("no runnable method: " + "; ".join(mnotes))
    if not slist:
        raise ValueError("no available solver: " + "; ".join(snotes))
    cert_dir = "" if certificates is None else str(Path(certificates).resolve())
    tasks = [
        Task(inst, label, opts, s, float(inst.timeout), int(seed), cert_dir)
        for inst in the_suite.instances
        for label, opts in mlist
        for s in slist
    ]
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    journal = Journal(out_dir / JOURNAL)
    if resume:
        done = journal.load()
    else:
        journal.reset()
        done = {}
    finished: dict[str, dict[str, Any]] = {t.key: done[t.key] for t in tasks if t.key in done}
    pending = [t for t in tasks if t.key not in finished]
    progress = BenchProgress(
        len(tasks),
        stream,
        quiet=quiet,
        every=progress_every,
        skipped=len(finished),
        style=progress_style,
    )
    progress.start()
    ran = 0

    def say(line: str) -> None:
        if not quiet:
            progress.close()
            stream.write(f"[{progress.style.prefix}] {line}\n")
            stream.flush()

    try:
        for task, row in _execute(
            pending, jobs=jobs, executor=executor, address=address, notify=say
        ):
            if not str(row.get("key", "")).startswith("!"):
                journal.append(task.key, row)
            row["key"] = task.key
            finished[task.key] = row
            ran += 1
            progress.update(str(row.get("result", "error")))
    finally:
        progress.close()
    if not quiet:  # the tables (accuracy, latency, plots) take a few seconds
        stream.write(f"[{progress.style.prefix}] runs done; writing the reports\n")
        stream.flush()
    rows: list[dict[str, Any]] = []
    for t in tasks:
        r = finished.get(t.key)
        if r is None:
            continue
        r = dict(r)
        r["truth"] = t.instance.truth
        r["correct"] = _correct(str(r.get("result", "")), t.instance.truth)
        rows.append(r)
    qubo_rows = None
    if qubo_route and the_suite.kind == "paper":
        if not quiet:
            stream.write(f"[{progress.style.prefix}] sigmoid/tanh on the QUBO route (Model 2)\n")
            stream.flush()
        qubo_rows = paper_qubo_runs(
            the_suite, seed=seed, timeout=DEFAULT_TIMEOUT if timeout is None else timeout
        )
    elapsed = time.perf_counter() - t_start
    files = write_reports(
        out_dir,
        the_suite,
        rows,
        notes,
        elapsed=elapsed,
        jobs=jobs,
        executor=f"dask at {address}" if address else executor,
        qubo_rows=qubo_rows,
    )
    return BenchReport(out_dir, rows, files, notes, len(finished) - ran, ran, elapsed)


# --------------------------------------------------------------------------------------------
# The end-to-end run behind `nncert demo`
# --------------------------------------------------------------------------------------------

#: the demo table's columns and their widths
DEMO_COLUMNS: tuple[tuple[str, int], ...] = (
    ("network", 15),
    ("variant", 9),
    ("acc", 6),
    ("params", 7),
    ("props", 6),
    ("certified", 10),
    ("vulnerable", 11),
    ("unknown", 8),
    ("transfer", 9),
    ("time s", 7),
)
#: what the variant names mean (the demo's legend)
VARIANT_LEGEND: dict[str, str] = {
    "prune20": "the 20 % smallest-magnitude weights of every layer set to zero",
    "prune50": "the same with 50 %",
    "int8": "every weight rounded to an 8-bit integer times a per-neuron scale",
}
LEGEND_WIDTH = 100


def demo_header(*, quick: bool, timeout: float, jobs: int, method: str, progress: bool) -> str:
    """The first lines ``nncert demo`` prints, before any work (they need no heavy import)."""
    grid = "eps 0.01 and 0.1 only (--quick)" if quick else "eps 0.01, 0.02, 0.05 and 0.1"
    where = "; progress on stderr" if progress else ""
    return (
        "nncert demo: are the bundled Iris and moons classifiers robust, and do their proofs "
        "survive compression?\n"
        f"Verifying L-inf robustness at {grid}, for each network and 3 compressed copies of it "
        f"(method {method}, {timeout:g} s per property, {jobs} worker(s){where}).\n\n"
    )


def _wrap(term: str, text: str, indent: int = 14) -> str:
    import textwrap

    return (
        textwrap.fill(
            text,
            width=LEGEND_WIDTH,
            initial_indent=f"  {term:<{indent - 2}}",
            subsequent_indent=" " * indent,
        )
        + "\n"
    )


def _demo_legend(rows: Sequence[Mapping[str, Any]], eps: Sequence[float], acc_on: str) -> str:
    originals = sorted({str(r["network"]) for r in rows if r.get("variant") == "original"})
    per_net = sum(1 for r in rows if r.get("network") == originals[0]) if originals else 0
    points = per_net // max(1, len(eps))
    archs: dict[str, str] = {}
    for name in originals:
        info = example_info(name)
        archs.setdefault(
            str(info.get("dataset", "")),
            f"{info.get('architecture', '')} MLP ({info.get('n_inputs')} inputs, "
            f"{info.get('n_classes')} classes)",
        )
    variants = [v for v in VARIANT_LEGEND if any(r.get("variant") == v for r in rows)]
    grid = ", ".join(_fmt_eps(e) for e in eps)
    text = "How to read the table\n"
    text += _wrap(
        "",
        f"Each row is one network checked against {per_net} robustness properties: "
        f"{points} test points x0 that the original network classifies correctly, each at "
        f"eps = {grid}. A property says: every input x with max_i |x_i - x0_i| <= eps "
        "(inputs are scaled to [0, 1]) is put in the class of x0.",
        indent=2,
    )
    text += _wrap(
        "network",
        "a bundled classifier, DATASET_ACTIVATION: "
        + "; ".join(f"{d}: {a}" for d, a in sorted(archs.items()))
        + "; nncert examples lists them",
    )
    text += _wrap(
        "variant",
        "original, or a compressed copy of it: "
        + "; ".join(f"{v} = {VARIANT_LEGEND[v]}" for v in variants),
    )
    text += _wrap("acc", f"accuracy on {acc_on}")
    text += _wrap("params", "non-zero weights and biases")
    text += _wrap("props", "properties checked")
    text += _wrap(
        "certified",
        "properties proven to hold: a sound bound or a complete search shows that no input "
        "in the box changes the class",
    )
    text += _wrap(
        "vulnerable",
        "properties refuted: a counterexample (an input in the box put in another class) was "
        "found and confirmed by replaying it through the network",
    )
    text += _wrap("unknown", "neither proven nor refuted within the time limit")
    text += _wrap(
        "transfer",
        "compressed copies only ('-' for the originals): of the original's decided properties "
        "(certified or vulnerable), how many got their verdict on the copy from the "
        "original's certificate alone, without verifying the copy. A proof carries over when "
        "a bound on how far the outputs moved keeps every margin positive; a counterexample "
        "when it also fools the copy. Vulnerable ones count too, so this can exceed "
        "'certified'.",
    )
    text += _wrap("time s", "verification time of the row's properties, summed over workers")
    return text


def _write_demo_models(out: Path, keys: Iterable[tuple[str, str]]) -> int:
    """Write the compressed copies as ``out/models/NAME+VARIANT.onnx``; return how many."""

    written = 0
    for name, variant in keys:
        if variant == "original":
            continue
        (out / "models").mkdir(parents=True, exist_ok=True)
        to_onnx(_example_network(name, variant), out / "models" / f"{name}+{variant}.onnx")
        written += 1
    return written


def _demo_where(out: Path | None, rows: Sequence[Mapping[str, Any]], models: int) -> str:
    if out is None:
        return "Where the results went\n" + _wrap(
            "",
            "Nowhere: the certificates were built, checked and transferred in memory, and "
            "the reports were written to a temporary folder that is now deleted. "
            "nncert demo --out DIR keeps them: a certificate per decided property, the "
            "compressed networks as ONNX files, and the reports.",
            indent=2,
        )
    certs = out / "certificates"
    n_certs = sum(1 for _ in certs.rglob("*.json")) if certs.is_dir() else 0
    missing = sum(1 for r in rows if "certificate not written" in str(r.get("note", "")))
    text = f"Where the results went: {out}\n"
    text += _wrap(
        "certificates/",
        f"{n_certs} certificates, one per certified or vulnerable property, as "
        "NETWORK/PROPERTY.json (JSON; nncert check re-validates them)"
        + (f"; {missing} could not be written (see results.csv, column note)" if missing else ""),
        indent=16,
    )
    if models:
        text += _wrap(
            "models/",
            f"the {models} compressed networks as NETWORK+VARIANT.onnx (the originals are "
            "example:NAME)",
            indent=16,
        )
    text += _wrap(
        "results.csv",
        "one row per verification run; summary.md, paper_table.md, compression.md and "
        "cactus.png summarise them",
        indent=16,
    )
    return text


def _demo_next(
    out: Path | None, rows: Sequence[Mapping[str, Any]], quick: bool, models: int
) -> str:
    """Concrete commands to try next (paths of files this run wrote, when it kept them)."""
    pick = next(
        (
            r
            for r in rows
            if r.get("variant") == "original"
            and r.get("result") == "unsat"
            and r.get("eps") in ("0.01",)
        ),
        None,
    )
    name = str(pick["network"]) if pick else "iris_relu"
    prop = str(pick["property"]) if pick else "p0:eps=0.01"
    root = out if out is not None else Path("demo-out")
    cert = certificate_path(root / "certificates", name, prop)
    steps: list[tuple[str, str]] = []
    if out is None:
        steps.append(
            (
                f"nncert demo{' --quick' if quick else ''} --out demo-out",
                "the same run, keeping the certificates, the compressed models and the "
                "reports in demo-out; then:",
            )
        )
    steps.append(
        (
            f"nncert check {cert} example:{name}",
            f"re-checks the certificate that {name} is robust at {prop}, independently of "
            "the verifier (exit 0: it holds)",
        )
    )
    if out is not None and models:
        target = out / "models" / f"{name}+prune50.onnx"
        steps.append(
            (
                f"nncert transfer {cert} --source example:{name} --target {target}",
                "carries that certificate to the 50 %-pruned copy (or verifies the copy when "
                "it does not carry over)",
            )
        )
    steps.append(
        (
            "nncert compress example:iris_relu --method prune --sparsity 0.5 -o pruned.onnx",
            "compresses a network yourself; nncert verify pruned.onnx --input X.npy --label L "
            "--eps E then checks a point of your own (X.npy: a numpy array of 4 values in "
            "[0, 1])",
        )
    )
    text = "Try next\n"
    for command, what in steps:
        text += f"  {command}\n" + _wrap("", what, indent=6)
    return text


def run_end_to_end(
    *,
    stream: TextIO,
    quick: bool = False,
    timeout: float = 10.0,
    jobs: int | None = None,
    out: str | Path | None = None,
    progress: TextIO | None = None,
    method: str = "auto",
) -> int:
    """Load the bundled networks, verify, compress, transfer certificates, print a table.

    Prints a header on ``stream`` first (before any work), then runs the ``paper`` suite
    (``quick``: eps 0.01 and 0.1 only) with ``method`` on ``jobs`` local workers (default:
    ``min(2, cpu count)``) and prints one row per network and compressed variant: accuracy,
    non-zero parameters, certified / vulnerable / unknown properties, the
    certificate-transfer rate and the time; then a legend of the columns, where the results
    went and commands to try next.

    Args:
        stream: where the header, table and legend go.
        quick: a smaller epsilon grid.
        timeout: seconds per property.
        jobs: worker processes.
        out: keep the results in this directory: ``certificates/NETWORK/PROPERTY.json`` (one
            per decided property), ``models/NETWORK+VARIANT.onnx`` (the compressed copies) and
            the reports (results.csv, summary.md, ...); default a temporary directory that is
            removed.
        progress: progress stream (default: none). Its bar counts certified/vulnerable.
        method: verification method token (``"bab"`` also decides the sigmoid/tanh
            properties that ``"auto"`` leaves unknown, at about the same cost).

    Returns:
        0, or 1 when a verdict contradicts a known answer (an attack-found counterexample).
    """
    import tempfile

    jobs = jobs if jobs is not None else max(1, min(2, os.cpu_count() or 1))
    stream.write(
        demo_header(
            quick=quick, timeout=timeout, jobs=jobs, method=method, progress=progress is not None
        )
    )
    stream.flush()
    eps = (0.01, 0.1) if quick else DEFAULT_EPS
    keep = Path(out) if out is not None else None
    models = 0
    with tempfile.TemporaryDirectory(prefix="nncert-demo-") as tmp:
        target = keep if keep is not None else Path(tmp)
        report = run_bench(
            "paper",
            out=target,
            methods=(method,),
            jobs=jobs,
            timeout=timeout,
            resume=False,
            eps=eps,
            quiet=progress is None,
            stream=progress,
            progress_every=40,
            progress_style=DEMO_PROGRESS,
            certificates=None if keep is None else keep / "certificates",
        )
        rows = report.rows
        comp: dict[tuple[str, str], list[Any]] = {}
        acc_on = "the bundled test points"
        if any(r.get("variant") not in ("", "original") for r in rows):
            _h, table, where = compression_table(rows)
            comp = {(str(t[0]), str(t[1])): t for t in table}
            if where.startswith("test split"):
                acc_on = "the dataset's test split (rebuilt with scikit-learn)"
    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for r in rows:
        groups.setdefault((str(r["network"]).split("+")[0], str(r["variant"])), []).append(r)
    if keep is not None and comp:
        models = _write_demo_models(keep, groups)
    widths = [w for _, w in DEMO_COLUMNS]
    order = {"original": 0, **{v[0]: i + 1 for i, v in enumerate(PAPER_VARIANTS)}}

    def emit(cells: Sequence[Any]) -> None:
        stream.write("  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip() + "\n")

    emit([c for c, _ in DEMO_COLUMNS])
    emit(["-" * w for w in widths])
    for key in sorted(groups, key=lambda k: (k[0], order.get(k[1], 9))):
        rs = groups[key]
        crow = comp.get(key)
        emit(
            [
                key[0],
                key[1],
                crow[2] if crow else "-",
                crow[3] if crow else "-",
                len(rs),
                sum(1 for r in rs if r["result"] == "unsat"),
                sum(1 for r in rs if r["result"] == "sat"),
                sum(1 for r in rs if r["result"] not in ("sat", "unsat")),
                crow[8] if crow else "-",
                f"{sum(_float(r.get('run_time')) or 0.0 for r in rs):.1f}",
            ]
        )
    n = len(rows)
    known = sum(1 for r in rows if r.get("truth") == "sat")
    errors = sum(1 for r in rows if r.get("result") == "error")
    stream.write(
        f"\ntotal: {n} verification runs: "
        f"{sum(1 for r in rows if r['result'] == 'unsat')} certified, "
        f"{sum(1 for r in rows if r['result'] == 'sat')} vulnerable, "
        f"{sum(1 for r in rows if r['result'] not in ('sat', 'unsat'))} unknown"
        + (f" ({errors} of them errors)" if errors else "")
        + f"; {report.elapsed:.1f}s on {jobs} worker(s)\n"
        f"soundness check: {report.wrong} of the {known} properties with a known "
        "counterexample (found by an attack when the examples were built) were certified "
        "(must be 0)\n\n"
    )
    stream.write(_demo_legend(rows, eps, acc_on) + "\n")
    stream.write(_demo_where(keep, rows, models) + "\n")
    stream.write(_demo_next(keep, rows, quick, models))
    for note in report.notes:
        stream.write(f"note: {note}\n")
    stream.flush()
    return 1 if report.wrong else 0


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def _csv_list(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _cmd_bench(args: argparse.Namespace) -> int:
    try:
        eps = [float(e) for e in _csv_list(args.eps)] if args.eps else None
    except ValueError:
        raise UsageError(f"--eps {args.eps!r}: expected comma-separated numbers") from None
    if eps is not None and any(not (e >= 0 and math.isfinite(e)) for e in eps):
        raise UsageError("--eps values must be finite and >= 0")
    try:
        report = run_bench(
            args.suite,
            out=args.out,
            methods=_csv_list(args.methods),
            solvers=_csv_list(args.solvers),
            jobs=args.jobs,
            executor=args.executor,
            address=args.address,
            timeout=args.timeout,
            seed=args.seed,
            resume=args.resume,
            eps=eps,
            quiet=args.quiet,
            progress_every=args.progress_every,
            qubo_route=args.qubo_route,
        )
    except (ValueError, FileNotFoundError, ExecutorUnavailableError) as err:
        if isinstance(err, NncertError):  # OutputPathError: already one line naming the path
            raise
        raise UsageError(str(err)) from None
    if not args.quiet:
        scores = score_rows(report.rows)
        for g in sorted(scores):
            s = scores[g]
            sys.stderr.write(
                f"[bench] {g}: {s['solved']}/{s['total']} solved ({s['unsat']} unsat, "
                f"{s['sat']} sat), {s['wrong']} wrong, score {s['score']}\n"
            )
        sys.stderr.write(f"[bench] wrote {', '.join(sorted(report.files))} to {report.out}\n")
    return _bench_exit(report)


def _bench_exit(report: BenchReport) -> int:
    """The exit code of ``nncert bench`` (:data:`EXIT_BENCH_WRONG` first), with one line on
    stderr saying how many runs errored or contradicted the truth."""
    n, bad = len(report.rows), report.errored
    instances = {str(r.get("key", "")).rsplit("|", 2)[0] for r in report.rows}
    unit = "instances" if len(instances) == n else "runs"
    where = report.files.get("results.csv", report.out / "results.csv")
    if report.wrong:
        sys.stderr.write(
            f"nncert: bench: {report.wrong} of {n} {unit} contradict truth.csv; see {where}\n"
        )
        return EXIT_BENCH_WRONG
    if bad:
        sys.stderr.write(
            f"nncert: bench: {bad} of {n} {unit} errored; see the note column of {where}\n"
        )
        return EXIT_BENCH_ALL_ERRORED if bad == n else EXIT_BENCH_SOME_ERRORED
    return EXIT_BENCH_OK


def register(subparsers: Any) -> None:
    """Add the ``bench`` sub-command to ``nncert``'s sub-parsers (an ``EXTENSIONS`` entry)."""
    b = subparsers.add_parser(
        "bench",
        help="run a benchmark suite and write results.csv, summary.md and plots",
        description="Run every instance of SUITE under each method and solver, in worker "
        "processes, and write results.csv (VNN-COMP columns plus nncert's), summary.md, "
        "cactus.png and, for the paper suite, paper_table.md/.csv and compression.md. "
        "SUITE is a VNN-COMP instances.csv, 'paper' ('paper:test': every correctly "
        "classified test point), or 'random:SEED[:N]'. Finished instances are journalled in "
        "OUT/progress.jsonl and skipped on rerun. Exit code 0; 1 when a result "
        "contradicts truth.csv; 3 on usage errors or when every run errored; 4 when some "
        "runs errored (their note column in results.csv says why).",
    )
    b.add_argument(
        "suite",
        metavar="SUITE",
        help="a VNN-COMP instances.csv, paper, paper:test or random:SEED[:N] (see above)",
    )
    b.add_argument(
        "--methods",
        default="auto",
        help="comma-separated methods, e.g. auto,milp,model2:segments=5 (default auto)",
    )
    b.add_argument("--solvers", default="highs", help="comma-separated solvers (default highs)")
    b.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="worker processes (default 1; with --address the cluster's workers run the tasks)",
    )
    b.add_argument(
        "--executor",
        default=None,
        metavar="{" + ",".join(EXECUTORS) + "}",
        help="local process pool (default), or dask: a local Dask cluster of --jobs workers, "
        "or the cluster at --address (the default when --address is given)",
    )
    b.add_argument(
        "--address",
        default=None,
        metavar="ADDR",
        help="an existing Dask cluster: scheduler address (tcp://HOST:8786) or the JSON file "
        "of `dask scheduler --scheduler-file`; exit 3 when nothing answers within "
        f"{CONNECT_TIMEOUT:g} s",
    )
    b.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="seconds per run (default: the row timeout, 10 for built-in suites)",
    )
    b.add_argument("--out", default="bench-out", help="output directory (default bench-out)")
    b.add_argument("--seed", type=int, default=0, help="verification seed (default 0)")
    b.add_argument(
        "--resume",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="skip instances finished in OUT/progress.jsonl (default on)",
    )
    b.add_argument("--eps", default=None, help="epsilon grid of built-in suites, e.g. 0.01,0.1")
    b.add_argument(
        "--progress-every",
        type=int,
        default=10,
        help="without a terminal, print progress every N runs (default 10)",
    )
    b.add_argument("--quiet", action="store_true", help="no progress on stderr")
    b.add_argument(
        "--qubo-route",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="paper suite: also run the sigmoid/tanh originals on the QUBO route (Model 2, "
        "K=5, simulated annealing) and write paper_qubo.md/.csv (default on)",
    )
    b.set_defaults(func=_cmd_bench)


__all__ = [
    "DEFAULT_EPS",
    "EXIT_BENCH_ALL_ERRORED",
    "EXIT_BENCH_OK",
    "EXIT_BENCH_SOME_ERRORED",
    "EXIT_BENCH_WRONG",
    "OUTPUT_FILES",
    "RESULT_EXTRA_COLUMNS",
    "BenchInstance",
    "BenchProgress",
    "BenchReport",
    "Journal",
    "ProgressStyle",
    "Suite",
    "Task",
    "certificate_path",
    "compression_table",
    "dataset_test_split",
    "demo_header",
    "load_suite",
    "paper_qubo_runs",
    "paper_qubo_table",
    "paper_table",
    "parse_method",
    "random_instance",
    "register",
    "run_bench",
    "run_end_to_end",
    "run_task",
    "score_rows",
    "write_reports",
]
