"""Build a small MNIST sigmoid suite: a measurement device for branch and bound on sigmoid nets.

Usage::

    python benchmarks/make_sigmoid_surrogate.py --out DIR [--mnistfc DIR] [--steps N]
        [--timeout T]
    nncert bench DIR/instances.csv --jobs 2 --timeout 60 --out RESULTS

No MNIST sigmoid network of an earlier VNN-COMP is on disk, so this script makes one: a 6x200
sigmoid MLP (784 inputs, 10 outputs) distilled from the MNIST-FC ReLU network
``mnist-net_256x4.onnx``, and 45 L-inf robustness properties for it. The suite is a measurement
device (how far branch and bound gets on sigmoid networks, and how fast), not a benchmark with
known answers: there is no ``truth.csv``.

Steps:

1. The 15 image centres are recovered from MNIST-FC's ``prop_{i}_0.03.vnnlib`` files (each
   pixel's box, widened back by 0.03 where it was not clipped at 0 or 1).
2. The student (``Linear(784, 200)``, then five ``Linear(200, 200)``, each followed by a sigmoid,
   then ``Linear(200, 10)``) is trained for ``--steps`` Adam steps (lr 1e-3, batch 256) on the
   mean squared error to the teacher's logits. A batch mixes two random centres (weight 0.6 to
   1 on the first), adds uniform noise in [-0.15, 0.15] scaled per sample by a uniform [0, 1]
   factor, and clips to [0, 1]. Seeds: ``torch.manual_seed(0)``, ``numpy.random.default_rng(0)``.
3. The network is exported to ``DIR/onnx/mnist_sig_6x200.onnx``, read back with nncert, and its
   own float64 predictions on the 15 centres are the labels L of the properties.
4. For each centre i and eps in 0.06, 0.1, 0.15, ``DIR/vnnlib/prop_{i}_{eps}.vnnlib`` asks for an
   input in the box (centre +- eps, clipped to [0, 1]) with ``Y_k >= Y_L`` for some k != L;
   ``DIR/instances.csv`` lists the 45 instances with the ``--timeout`` given.

Needs torch (``pip install torch==2.13.0``). Training runs on one thread (``OMP_NUM_THREADS=1``,
``torch.set_num_threads(1)``) and takes a minute or two.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from nncert.verify.cliutil import load_model
from nncert.verify.processes import limit_blas

MNISTFC = Path(__file__).resolve().parents[2] / "shared" / "benchmarks" / "vnncomp" / "mnistfc"
TEACHER = "onnx/mnist-net_256x4.onnx"
NETWORK = "onnx/mnist_sig_6x200.onnx"
N_IMAGES = 15
N_INPUTS = 784
N_OUTPUTS = 10
WIDTH = 200
DEPTH = 6
CENTRE_EPS = 0.03
EPSILONS = (0.06, 0.1, 0.15)
BATCH = 256
LR = 1e-3

_BOUND = re.compile(r"\(assert \((<=|>=) X_(\d+) ([-\d.e]+)\)\)")


def image_centre(path: Path) -> np.ndarray:
    """The image centre of an MNIST-FC property ``prop_{i}_{eps}.vnnlib``.

    A pixel whose lower bound is above 0 is ``lo + eps``, else one whose upper bound is below 1
    is ``hi - eps``, else 1; the result is clipped to [0, 1].
    """
    lo = np.zeros(N_INPUTS)
    hi = np.zeros(N_INPUTS)
    for m in _BOUND.finditer(path.read_text()):
        op, i, v = m.group(1), int(m.group(2)), float(m.group(3))
        (hi if op == "<=" else lo)[i] = v
    eps = float(path.name.rsplit("_", 1)[1][: -len(".vnnlib")])
    x = np.where(lo > 0, lo + eps, np.where(hi < 1, hi - eps, 1.0))
    return np.asarray(np.clip(x, 0, 1))


def load_centres(mnistfc: Path) -> np.ndarray:
    """The ``N_IMAGES`` centres, shape ``(N_IMAGES, N_INPUTS)``, from the eps 0.03 properties."""
    return np.array(
        [
            image_centre(mnistfc / "vnnlib" / f"prop_{i}_{CENTRE_EPS}.vnnlib")
            for i in range(N_IMAGES)
        ]
    )


def teacher_logits(net: Any) -> Callable[[np.ndarray], np.ndarray]:
    """A function mapping a batch ``(n, N_INPUTS)`` to the teacher's float32 logits ``(n, 10)``."""

    def logits(x: np.ndarray) -> np.ndarray:
        y = net.forward(x.reshape(len(x), *net.input_shape))
        return np.asarray(y, dtype=np.float32).reshape(len(x), -1)

    return logits


def training_batch(centres: np.ndarray, rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` inputs: a mix of two random centres plus per-sample-scaled uniform noise, clipped."""
    a = centres[rng.integers(0, len(centres), n)]
    b = centres[rng.integers(0, len(centres), n)]
    lam = rng.uniform(0.6, 1, (n, 1))
    noise = rng.uniform(-0.15, 0.15, (n, N_INPUTS)) * rng.uniform(0, 1, (n, 1))
    return np.asarray(np.clip(lam * a + (1 - lam) * b + noise, 0, 1))


def build_student() -> Any:
    """The 6x200 sigmoid MLP (a ``torch.nn.Sequential``)."""
    import torch

    layers: list[torch.nn.Module] = [torch.nn.Linear(N_INPUTS, WIDTH), torch.nn.Sigmoid()]
    for _ in range(DEPTH - 1):
        layers += [torch.nn.Linear(WIDTH, WIDTH), torch.nn.Sigmoid()]
    layers.append(torch.nn.Linear(WIDTH, N_OUTPUTS))
    return torch.nn.Sequential(*layers)


def train_student(
    centres: np.ndarray, teacher: Callable[[np.ndarray], np.ndarray], steps: int
) -> Any:
    """Distil the teacher into a fresh student: ``steps`` Adam steps on the MSE to its logits."""
    import torch

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    net = build_student()
    opt = torch.optim.Adam(net.parameters(), LR)
    for it in range(steps):
        x = training_batch(centres, rng, BATCH)
        y = torch.tensor(teacher(x))
        loss = ((net(torch.tensor(x, dtype=torch.float32)) - y) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if it % 500 == 0:
            print(f"step {it}: loss {loss.item():.6g}", flush=True)
    net.eval()
    return net


def export_onnx(net: Any, path: Path) -> None:
    """Export the student with the TorchScript exporter (input ``x``, output ``y``)."""
    import torch

    torch.onnx.export(
        net,
        (torch.zeros(1, N_INPUTS),),
        str(path),
        input_names=["x"],
        output_names=["y"],
        dynamo=False,
    )


def network_labels(path: Path, centres: np.ndarray) -> np.ndarray:
    """The exported network's predictions on the centres (nncert's float64 forward pass on the
    centres rounded to float32, as the network sees them in training)."""
    net = load_model(str(path))
    x = centres.astype(np.float32).astype(np.float64)
    return np.asarray(net.forward(x)).argmax(axis=1)


def property_text(centre: np.ndarray, eps: float, label: int) -> str:
    """A VNN-LIB property: an input within ``eps`` of ``centre`` (in [0, 1]) whose output
    ``label`` is not strictly the largest."""
    lo = np.clip(centre - eps, 0, 1)
    hi = np.clip(centre + eps, 0, 1)
    lines = [f"(declare-const X_{j} Real)" for j in range(N_INPUTS)]
    lines += [f"(declare-const Y_{j} Real)" for j in range(N_OUTPUTS)]
    for j in range(N_INPUTS):
        lines.append(f"(assert (<= X_{j} {float(hi[j])!r}))")
        lines.append(f"(assert (>= X_{j} {float(lo[j])!r}))")
    cases = [f"    (and (>= Y_{k} Y_{label}))" for k in range(N_OUTPUTS) if k != label]
    lines.append("(assert (or\n" + "\n".join(cases) + "\n))")
    return "\n".join(lines) + "\n"


def write_properties(out: Path, centres: np.ndarray, labels: np.ndarray, timeout: int) -> int:
    """Write ``out/vnnlib/prop_{i}_{eps}.vnnlib`` and ``out/instances.csv``; the row count."""
    rows = []
    for i, centre in enumerate(centres):
        for eps in EPSILONS:
            name = f"vnnlib/prop_{i}_{eps}.vnnlib"
            (out / name).write_text(property_text(centre, eps, int(labels[i])))
            rows.append(f"{NETWORK},{name},{timeout}")
    (out / "instances.csv").write_text("\n".join(rows) + "\n")
    return len(rows)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=(
            "Build a 6x200 sigmoid MNIST MLP distilled from MNIST-FC's mnist-net_256x4.onnx, "
            "45 L-inf robustness properties (15 images x eps 0.06/0.1/0.15) and instances.csv. "
            "No MNIST sigmoid network of an earlier VNN-COMP is on disk; this suite is a "
            "measurement device for branch and bound on sigmoid networks, not a benchmark with "
            "known answers. Needs torch (pip install torch==2.13.0)."
        ),
        epilog=(
            "Run the suite afterwards with: "
            "nncert bench DIR/instances.csv --jobs 2 --timeout 60 --out RESULTS"
        ),
    )
    parser.add_argument(
        "--mnistfc",
        type=Path,
        default=MNISTFC,
        metavar="DIR",
        help="the VNN-COMP MNIST-FC directory (onnx/, vnnlib/); default: %(default)s",
    )
    parser.add_argument(
        "--out",
        type=Path,
        required=True,
        metavar="DIR",
        help="output directory; gets DIR/onnx, DIR/vnnlib and DIR/instances.csv",
    )
    parser.add_argument(
        "--steps", type=int, default=3000, help="training steps (default: %(default)s)"
    )
    parser.add_argument(
        "--timeout",
        type=int,
        default=60,
        help="per-instance timeout written to instances.csv (default: %(default)s)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    teacher_path = args.mnistfc / TEACHER
    if not teacher_path.exists():
        print(f"{teacher_path}: no such file (see --mnistfc)", file=sys.stderr)
        return 2
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    try:
        import torch
    except ImportError:
        print("torch is needed: pip install torch==2.13.0", file=sys.stderr)
        return 2
    torch.set_num_threads(1)

    start = time.monotonic()
    out: Path = args.out
    (out / "onnx").mkdir(parents=True, exist_ok=True)
    (out / "vnnlib").mkdir(parents=True, exist_ok=True)
    with limit_blas(1):
        centres = load_centres(args.mnistfc)
        teacher = teacher_logits(load_model(str(teacher_path)))
        print("teacher labels:", teacher(centres).argmax(1).tolist())
        net = train_student(centres, teacher, args.steps)
        with torch.no_grad():
            student = net(torch.tensor(centres, dtype=torch.float32)).argmax(1).numpy()
        agree = float((student == teacher(centres).argmax(1)).mean())
        print(f"student/teacher agreement on the centres: {agree:.3f}")
        export_onnx(net, out / NETWORK)
        labels = network_labels(out / NETWORK, centres)
        print("property labels:", labels.tolist())
        n = write_properties(out, centres, labels, args.timeout)
    print(f"wrote {out / NETWORK}, {n} properties, {out / 'instances.csv'}")
    print(f"done in {time.monotonic() - start:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
