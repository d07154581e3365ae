"""Small real files for the input/output hardening tests (issue 17): ONNX models written with
``onnx.helper``, VNN-LIB properties, gzip bombs, and a runner for the ``nncert`` script."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np


def nncert(
    *args: str,
    env: dict[str, str] | None = None,
    timeout: float = 120,
    umask: int | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run the installed ``nncert`` console script."""
    exe = Path(sys.executable).with_name("nncert")
    pre: Callable[[], object] | None = None if umask is None else (lambda: os.umask(umask))
    return subprocess.run(
        [str(exe), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=None if env is None else {**os.environ, **env},
        preexec_fn=pre,
    )


def write_net(path: Path) -> Path:
    """The 2-2-1 ReLU network of issue 17 (Gemm, Relu, Gemm; float32)::

    x0 ─┬─ h0 = relu(x0 + 0.03) ─┐
    x1 ─┴─ h1 = relu(x1 - 0.70) ─┴─ y = 1.38 h0 + 1.29 h1 + 0.98
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    f32 = np.float32
    inits = [
        numpy_helper.from_array(np.eye(2, dtype=f32), "W1"),
        numpy_helper.from_array(np.array([0.03, -0.7], f32), "b1"),
        numpy_helper.from_array(np.array([[1.38], [1.29]], f32), "W2"),
        numpy_helper.from_array(np.array([0.98], f32), "b2"),
    ]
    nodes = [
        helper.make_node("Gemm", ["x", "W1", "b1"], ["h"]),
        helper.make_node("Relu", ["h"], ["r"]),
        helper.make_node("Gemm", ["r", "W2", "b2"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "net",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


SPEC_HEAD = "(declare-const X_0 Real)\n(declare-const X_1 Real)\n(declare-const Y_0 Real)\n"


def spec_text(x1_lo: float = 0.0, x1_hi: float = 1.0, y_max: float = 1.0) -> str:
    """``x in [0, 1] x [x1_lo, x1_hi]``, unsafe ``Y_0 <= y_max``; falsified (``y(0, 0) =
    1.0214``) for the defaults when ``y_max >= 1.03``, verified when ``y_max < 1.02``."""
    return SPEC_HEAD + (
        "(assert (>= X_0 0.0))\n(assert (<= X_0 1.0))\n"
        f"(assert (>= X_1 {x1_lo}))\n(assert (<= X_1 {x1_hi}))\n"
        f"(assert (<= Y_0 {y_max}))\n"
    )


def write_spec(path: Path, text: str | None = None) -> Path:
    path.write_text(spec_text() if text is None else text)
    return path


def gzip_repeated(path: Path, member: bytes, copies: int, head: bytes = b"") -> Path:
    """A multi-member gzip file: ``head`` then ``copies`` times ``member``, each member
    compressed once and repeated (so a GiB-sized expansion costs milliseconds to build)."""
    one = gzip.compress(member, compresslevel=9, mtime=0)
    with open(path, "wb") as fh:
        if head:
            fh.write(gzip.compress(head, mtime=0))
        for _ in range(copies):
            fh.write(one)
    return path


def gzip_bomb(path: Path, expanded_mib: int, fill: bytes = b" ") -> Path:
    """A gzip file that expands to ``expanded_mib`` MiB of ``fill`` (text, not NUL bytes)."""
    chunk = fill * (2**20 // len(fill))
    c = zlib.compressobj(9, zlib.DEFLATED, 31)
    member = c.compress(chunk) + c.flush()
    with open(path, "wb") as fh:
        for _ in range(expanded_mib):
            fh.write(member)
    return path
