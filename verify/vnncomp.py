"""VNN-COMP input and output: ``instances.csv``, result files, witnesses, ``results.csv``.

Result file (VERIFIERS.md section 2.4): the first line is ``sat``, ``unsat``, ``timeout``,
``unknown`` or ``error``; for ``sat`` the witness follows, every input then every output::

    sat
    ((X_0 0.25)
     (X_1 -0.125)
     (Y_0 -0.75)
     (Y_1 1.5))

Witness validation follows the organizers' checker: the outputs recomputed by onnxruntime
must match the written ``Y`` within a relative 1e-3 (infinity norm), the input must lie in the
box and the outputs must violate the property, both within an absolute 1e-4. nncert also
offers a *strict* mode with zero tolerance, which its own witnesses always pass.
"""

from __future__ import annotations

import ast
import csv
import io
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike

from nncert.verify.errors import InvalidPropertyError
from nncert.verify.fileio import write_atomic
from nncert.verify.importers import onnxruntime_forward
from nncert.verify.spec import Property

RESULT_WORDS = ("sat", "unsat", "timeout", "unknown", "error")

#: organizers' tolerances (VNN-COMP 2023-2026 ``settings.py``)
COUNTEREXAMPLE_RTOL = 1e-3
COUNTEREXAMPLE_ATOL = 1e-4


def _fmt(v: float) -> str:
    # repr gives the shortest string that round-trips float64 exactly
    return repr(float(v))


def format_witness(x: ArrayLike, y: ArrayLike) -> str:
    """The ``((X_0 v) ... (Y_0 v) ...)`` block for a witness (values round-trip exactly)."""
    xs = np.asarray(x, dtype=np.float64).reshape(-1)
    ys = np.asarray(y, dtype=np.float64).reshape(-1)
    items = [f"(X_{i} {_fmt(v)})" for i, v in enumerate(xs)]
    items += [f"(Y_{j} {_fmt(v)})" for j, v in enumerate(ys)]
    return "(" + "\n".join(items) + ")"


def write_result_file(
    path: str | Path, result: str, x: ArrayLike | None = None, y: ArrayLike | None = None
) -> None:
    """Write a VNN-COMP result file, atomically (witness required for ``sat``)."""
    if result not in RESULT_WORDS:
        raise ValueError(f"result={result!r} must be one of {RESULT_WORDS}")
    text = result + "\n"
    if result == "sat":
        if x is None or y is None:
            raise ValueError("a 'sat' result needs the witness x and y")
        text += format_witness(x, y) + "\n"
    write_atomic(path, text)


_PAIR = re.compile(r"\(\s*([XY])_(\d+)\s+([^\s()]+)\s*\)")


@dataclass(frozen=True)
class ResultFile:
    """A parsed result file."""

    result: str
    x: np.ndarray | None = None
    y: np.ndarray | None = None


def read_result_file(path: str | Path) -> ResultFile:
    """Parse a result file (first word, and the witness for ``sat``)."""
    text = Path(path).read_text()
    lines = text.strip().splitlines()
    if not lines:
        raise InvalidPropertyError(f"{path}: empty result file")
    word = lines[0].strip().lower()
    aliases = {"holds": "unsat", "violated": "sat"}
    word = aliases.get(word, word)
    if word not in RESULT_WORDS:
        raise InvalidPropertyError(f"{path}: unknown result {lines[0].strip()!r}")
    if word != "sat":
        return ResultFile(word)
    xs: dict[int, float] = {}
    ys: dict[int, float] = {}
    for kind, idx, val in _PAIR.findall("\n".join(lines[1:])):
        try:
            (xs if kind == "X" else ys)[int(idx)] = float(val)
        except ValueError as err:
            raise InvalidPropertyError(f"{path}: bad witness value {val!r}") from err
    if not xs or not ys:
        return ResultFile("sat")
    if sorted(xs) != list(range(len(xs))) or sorted(ys) != list(range(len(ys))):
        raise InvalidPropertyError(f"{path}: witness indices are not contiguous")
    return ResultFile(
        "sat",
        np.array([xs[i] for i in range(len(xs))]),
        np.array([ys[i] for i in range(len(ys))]),
    )


@dataclass(frozen=True)
class WitnessCheck:
    """Outcome of validating a ``sat`` witness."""

    ok: bool
    reason: str
    exec_rel_error: float = math.nan


def validate_witness(
    onnx_path: str | Path,
    prop: Property,
    x: ArrayLike,
    y: ArrayLike,
    *,
    strict: bool = False,
) -> WitnessCheck:
    """Validate a witness the way the VNN-COMP organizers do (``strict``: zero tolerance).

    Returns:
        ``WitnessCheck(ok, reason)`` with reason ``"correct"``, ``"wrong_shape"``,
        ``"exec_doesnt_match"``, ``"not_in_box"`` or ``"not_violating"``.
    """

    xv = np.asarray(x, dtype=np.float64).reshape(-1)
    yv = np.asarray(y, dtype=np.float64).reshape(-1)
    if xv.size != prop.n_inputs or yv.size != prop.n_outputs:
        return WitnessCheck(False, "wrong_shape")
    y_ort = onnxruntime_forward(str(onnx_path), xv.reshape(1, -1))[0]
    denom = max(float(np.max(np.abs(yv))), 1e-12)
    rel = float(np.max(np.abs(y_ort - yv))) / denom
    # strict mode still allows float32-vs-float64 noise in the execution comparison
    if rel > (1e-6 if strict else COUNTEREXAMPLE_RTOL):
        return WitnessCheck(False, "exec_doesnt_match", rel)
    atol = 0.0 if strict else COUNTEREXAMPLE_ATOL
    in_any_box = False
    for case in prop.cases:
        if not case.input_box.contains(xv, atol=atol):
            continue
        in_any_box = True
        outs = [yv, y_ort] if strict else [yv]
        if all(case.violation(o.reshape(1, -1))[0] <= atol for o in outs):
            return WitnessCheck(True, "correct", rel)
    return WitnessCheck(False, "not_violating" if in_any_box else "not_in_box", rel)


# --------------------------------------------------------------------------------------------
# instances.csv and results.csv
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Instance:
    """One row of ``instances.csv``; ``networks`` has one ``(name, path)`` per network."""

    networks: tuple[tuple[str, Path], ...]
    spec: Path
    timeout: float

    @property
    def onnx(self) -> Path:
        """The (first) network's path."""
        return self.networks[0][1]


def read_instances(path: str | Path) -> list[Instance]:
    """Read an ``instances.csv`` (paths relative to its folder).

    Accepts the classic rows ``onnx,vnnlib,timeout`` and the 2026 dialect whose first column
    is a Python-literal list of ``(name, onnx)`` pairs for multi-network queries.
    """
    p = Path(path)
    base = p.parent
    out: list[Instance] = []
    with p.open(newline="") as fh:
        for lineno, row in enumerate(csv.reader(fh), start=1):
            if not row or all(not c.strip() for c in row):
                continue
            if len(row) < 3:
                raise InvalidPropertyError(f"{p}: line {lineno}: expected onnx,vnnlib,timeout")
            first, spec, timeout = row[0].strip(), row[1].strip(), row[2].strip()
            if first.startswith("["):
                try:
                    pairs = ast.literal_eval(first)
                    nets = tuple((str(n), base / str(f)) for n, f in pairs)
                except (ValueError, SyntaxError, TypeError) as err:
                    raise InvalidPropertyError(
                        f"{p}: line {lineno}: bad network list {first!r}"
                    ) from err
            else:
                nets = (("f", base / first),)
            try:
                t = float(timeout)
            except ValueError as err:
                raise InvalidPropertyError(f"{p}: line {lineno}: bad timeout {timeout!r}") from err
            out.append(Instance(nets, base / spec, t))
    return out


RESULTS_COLUMNS = ("category", "network", "property", "prepare_time", "result", "run_time")


def write_results_csv(
    path: str | Path, rows: Sequence[Mapping[str, object]], extra: Sequence[str] = ()
) -> None:
    """Write ``results.csv`` (atomically) with the organizers' columns, then ``extra`` ones."""
    cols = list(RESULTS_COLUMNS) + [c for c in extra if c not in RESULTS_COLUMNS]
    buf = io.StringIO(newline="")
    w = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow(r)
    write_atomic(path, buf.getvalue())


def read_truth(path: str | Path) -> dict[tuple[str, str], str]:
    """``truth.csv`` as ``{(onnx, vnnlib): answer}``."""
    out: dict[tuple[str, str], str] = {}
    with Path(path).open(newline="") as fh:
        for row in csv.DictReader(fh):
            out[(row["onnx"], row["vnnlib"])] = row["truth"]
    return out


def iter_rows(path: str | Path) -> Iterator[dict[str, str]]:
    """Rows of a CSV file with a header."""
    with Path(path).open(newline="") as fh:
        yield from csv.DictReader(fh)


__all__ = [
    "COUNTEREXAMPLE_ATOL",
    "COUNTEREXAMPLE_RTOL",
    "RESULTS_COLUMNS",
    "RESULT_WORDS",
    "Instance",
    "ResultFile",
    "WitnessCheck",
    "format_witness",
    "read_instances",
    "read_result_file",
    "read_truth",
    "validate_witness",
    "write_result_file",
    "write_results_csv",
]
