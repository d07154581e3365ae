"""Train the small example networks bundled with nncert and export them to ONNX.

The networks reproduce the setting of the source paper (FORMULATIONS.md section 12): small
fully connected classifiers on Iris and ``make_moons`` with ReLU, hardtanh, sigmoid and tanh
activations, plus two slightly larger ReLU networks on scikit-learn's 8x8 digits (an MLP and a
small convolutional network). Only scikit-learn's offline datasets are used (no downloads).

Inputs are min-max normalised per feature with the *training* split's minimum and maximum and
then clipped to ``[0, 1]``::

    x_norm = clip((x - min) / (max - min), 0, 1)      (max - min := 1 for constant features)

The normalisation is stored in the metadata and **not** baked into the networks, so every
robustness property lives in the unit box ``[0, 1]^n``.

Outputs, all in ``verify/data/`` (or ``--out``):

* ``<name>.onnx`` for every network (logits, float32, legacy TorchScript exporter, opset 17,
  dynamic batch dimension; hardtanh is exported as ONNX ``Clip``);
* ``examples.json``: per network the dataset, activation, file, input shape, number of
  classes, test accuracy, normalisation, an epsilon grid and a handful of correctly classified
  test points ``x0`` (normalised coordinates) with their labels. Each point also records the
  smallest radius at which a PGD attack (run in float64) found an adversarial example inside
  ``{x : ||x - x0||_inf <= r} ∩ [0, 1]^n`` together with that counterexample (``null`` when
  no attack succeeded up to ``MAX_ATTACK_RADIUS``). An attack radius is only an *upper*
  bound on the true minimal adversarial radius: ``attack_radius <= eps`` proves the property
  false, anything else is unknown until verified.

Training is deterministic: fixed seeds per network, one thread, deterministic algorithms,
full-batch Adam. Re-running the script reproduces the same weights on the same machine.

Usage::

    python benchmarks/train_examples.py             # train and write verify/data/
    python benchmarks/train_examples.py --check     # retrain into a temp dir, compare weights
    python benchmarks/train_examples.py --out DIR   # write elsewhere
"""

from __future__ import annotations

import argparse
import copy
import itertools
import json
import math
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.datasets import load_digits, load_iris, make_moons
from sklearn.model_selection import train_test_split
from torch import nn

#: Where the bundled files live (the ``nncert.verify`` package's ``data`` directory).
DEFAULT_OUT = Path(__file__).resolve().parent.parent / "verify" / "data"
METADATA_FILE = "examples.json"
SCHEMA_VERSION = 1
OPSET = 17
BASE_SEED = 20240601
#: Largest radius the attack searches when estimating each point's adversarial radius.
MAX_ATTACK_RADIUS = 0.5
#: Only the first this-many correctly classified test points are attacked (run time).
MAX_CANDIDATES = 100
#: A counterexample must beat the label by at least this margin in float64.
CEX_MARGIN = 1e-4
#: Tolerance of ``--check`` (max abs difference between retrained and shipped weights).
CHECK_TOL = 1e-6


# --------------------------------------------------------------------------------------------
# Datasets
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Dataset:
    """A normalised train/test split.

    Attributes:
        name: dataset name (``iris``, ``moons``, ``digits``).
        x_train, x_test: normalised features in ``[0, 1]``, shape ``(n, n_features)``.
        y_train, y_test: integer labels.
        lo, hi: per-feature training minimum and maximum (raw units).
        n_classes: number of classes.
        params: how the data were generated/split (stored in the metadata).
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    n_classes: int
    params: dict[str, Any] = field(default_factory=dict)


def _split_and_normalise(
    name: str, x: np.ndarray, y: np.ndarray, test_size: float, params: dict[str, Any]
) -> Dataset:
    x_tr, x_te, y_tr, y_te = train_test_split(
        x.astype(np.float64), y.astype(np.int64), test_size=test_size, random_state=0, stratify=y
    )
    lo = x_tr.min(axis=0)
    hi = x_tr.max(axis=0)
    scale = np.where(hi > lo, hi - lo, 1.0)

    def norm(a: np.ndarray) -> np.ndarray:
        return np.clip((a - lo) / scale, 0.0, 1.0)

    split = {"test_size": test_size, "random_state": 0, "stratify": True}
    return Dataset(
        name=name,
        x_train=norm(x_tr),
        y_train=y_tr,
        x_test=norm(x_te),
        y_test=y_te,
        lo=lo,
        hi=hi,
        n_classes=int(y.max()) + 1,
        params={**params, "split": split, "n_train": len(y_tr), "n_test": len(y_te)},
    )


def load_datasets() -> dict[str, Dataset]:
    """Iris (150 x 4, 3 classes), moons (1000 x 2, 2 classes), digits (1797 x 64, 10 classes)."""
    iris = load_iris()
    moons_params = {"n_samples": 1000, "noise": 0.2, "random_state": 0}
    xm, ym = make_moons(**moons_params)
    digits = load_digits()
    return {
        "iris": _split_and_normalise(
            "iris", iris.data, iris.target, 0.2, {"source": "sklearn.datasets.load_iris"}
        ),
        "moons": _split_and_normalise(
            "moons", xm, ym, 0.2, {"source": "sklearn.datasets.make_moons", **moons_params}
        ),
        "digits": _split_and_normalise(
            "digits", digits.data, digits.target, 0.2, {"source": "sklearn.datasets.load_digits"}
        ),
    }


# --------------------------------------------------------------------------------------------
# Networks
# --------------------------------------------------------------------------------------------


def _activation(kind: str) -> nn.Module:
    return {
        "relu": nn.ReLU(),
        "hardtanh": nn.Hardtanh(),
        "sigmoid": nn.Sigmoid(),
        "tanh": nn.Tanh(),
    }[kind]


def mlp(sizes: list[int], activation: str) -> nn.Sequential:
    """``Linear, act, Linear, act, ..., Linear`` with the given layer widths."""
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2:
            layers.append(_activation(activation))
    return nn.Sequential(*layers)


def digits_conv() -> nn.Sequential:
    """``Conv2d(1, 4, 3, stride 1) -> ReLU -> Flatten -> Linear(144, 16) -> ReLU -> Linear(10)``."""
    return nn.Sequential(
        nn.Conv2d(1, 4, kernel_size=3, stride=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(4 * 6 * 6, 16),
        nn.ReLU(),
        nn.Linear(16, 10),
    )


@dataclass(frozen=True)
class Spec:
    """One example network: what to build, how to train it and which properties to ship."""

    name: str
    dataset: str
    activation: str
    architecture: str
    input_shape: tuple[int, ...]
    epochs: int
    lr: float
    eps: tuple[float, ...]
    n_points: int
    n_vulnerable: int
    weight_decay: float = 0.0
    n_seeds: int = 1
    min_train_accuracy: float = 0.0

    def build(self) -> nn.Sequential:
        """A freshly initialised module (call after seeding)."""
        if self.architecture == "conv":
            return digits_conv()
        sizes = [int(s) for s in self.architecture.split("-")]
        return mlp(sizes, self.activation)


def example_specs() -> list[Spec]:
    """The bundled networks, in output order."""
    small_eps = (0.01, 0.05, 0.1)
    specs: list[Spec] = []
    # dataset, architecture, input shape, epochs (sigmoid, others), minimum training accuracy
    families = (
        ("iris", "4-16-16-3", (4,), (1000, 500), 0.97),
        ("moons", "2-16-16-2", (2,), (1200, 800), 0.95),
    )
    for dataset, arch, shape, (sigmoid_epochs, epochs), min_acc in families:
        for act in ("relu", "hardtanh", "sigmoid", "tanh"):
            smooth = act in ("sigmoid", "tanh")
            specs.append(
                Spec(
                    name=f"{dataset}_{act}",
                    dataset=dataset,
                    activation=act,
                    architecture=arch,
                    input_shape=shape,
                    epochs=sigmoid_epochs if act == "sigmoid" else epochs,
                    lr=0.02 if smooth else 0.01,
                    eps=small_eps,
                    n_points=5,
                    n_vulnerable=2,
                    n_seeds=3,
                    min_train_accuracy=min_acc,
                )
            )
    specs.append(
        Spec(
            name="digits_mlp",
            dataset="digits",
            activation="relu",
            architecture="64-32-32-10",
            input_shape=(64,),
            epochs=300,
            lr=0.01,
            eps=(0.01, 0.03),
            n_points=3,
            n_vulnerable=1,
            weight_decay=1e-4,
        )
    )
    specs.append(
        Spec(
            name="digits_conv",
            dataset="digits",
            activation="relu",
            architecture="conv",
            input_shape=(1, 8, 8),
            epochs=300,
            lr=0.01,
            eps=(0.01, 0.03),
            n_points=3,
            n_vulnerable=1,
            weight_decay=1e-4,
        )
    )
    return specs


def _seed(spec_index: int) -> int:
    return BASE_SEED + 1000 * spec_index


def train_best(spec: Spec, data: Dataset, seed: int) -> tuple[nn.Sequential, int]:
    """Train with seeds ``seed, seed + 1, ...`` until one is good enough.

    Returns the first run whose *training* accuracy reaches ``spec.min_train_accuracy``, or,
    after ``spec.n_seeds`` runs, the one with the best training accuracy (ties: the earlier
    seed). A run stuck in a poor local minimum (a near-linear ReLU net on moons, say) is thus
    replaced deterministically; test data play no part in the choice.

    Returns:
        ``(model, seed used)``.
    """
    best: tuple[float, int, nn.Sequential] | None = None
    for k in range(spec.n_seeds):
        model = train(spec, data, seed + k)
        acc = accuracy(model, data.x_train, data.y_train, spec.input_shape)
        if best is None or acc > best[0]:
            best = (acc, seed + k, model)
        if acc >= spec.min_train_accuracy:
            break
    assert best is not None
    return best[2], best[1]


def train(spec: Spec, data: Dataset, seed: int) -> nn.Sequential:
    """Full-batch Adam on cross-entropy; deterministic given ``seed``."""
    torch.manual_seed(seed)
    np.random.seed(seed)
    model = spec.build().to(torch.float32)
    x = torch.tensor(data.x_train, dtype=torch.float32).reshape(-1, *spec.input_shape)
    y = torch.tensor(data.y_train, dtype=torch.int64)
    opt = torch.optim.Adam(model.parameters(), lr=spec.lr, weight_decay=spec.weight_decay)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    for _ in range(spec.epochs):
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
    model.eval()
    return model


def accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray, input_shape: tuple[int, ...]) -> float:
    """Fraction of rows of ``x`` that ``model`` (float32) classifies as ``y``."""
    with torch.no_grad():
        logits = model(torch.tensor(x, dtype=torch.float32).reshape(-1, *input_shape))
    return float((logits.argmax(dim=1).numpy() == y).mean())


def export_onnx(model: nn.Module, input_shape: tuple[int, ...], path: Path) -> None:
    """Legacy (TorchScript) ONNX export, opset 17, dynamic batch dimension."""
    dummy = torch.zeros(1, *input_shape, dtype=torch.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation warning
        torch.onnx.export(
            model,
            (dummy,),
            str(path),
            dynamo=False,
            export_params=True,
            opset_version=OPSET,
            do_constant_folding=True,
            input_names=["input"],
            output_names=["output"],
            dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
        )


# --------------------------------------------------------------------------------------------
# Attack (to pick a mix of robust and non-robust points)
# --------------------------------------------------------------------------------------------


def _margins(model64: nn.Module, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``f_y(x) - max_{j != y} f_j(x)`` per row (negative: misclassified)."""
    logits = model64(x)
    true = logits.gather(1, labels[:, None])[:, 0]
    other = logits.clone()
    other.scatter_(1, labels[:, None], -math.inf)
    return true - other.max(dim=1).values


def pgd(
    model64: nn.Module,
    x0: np.ndarray,
    labels: np.ndarray,
    eps: np.ndarray,
    input_shape: tuple[int, ...],
    *,
    steps: int = 30,
    restarts: int = 3,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """L-inf PGD on the margin in float64, per-row radius ``eps``, clipped to ``[0, 1]``.

    Returns:
        ``(best_x, best_margin)``: for each row the input of smallest margin found (start
        ``x0`` itself) and that margin; ``best_margin < 0`` means a counterexample.
    """
    gen = torch.Generator().manual_seed(seed)
    n, d = x0.shape
    xc = torch.tensor(x0, dtype=torch.float64)
    lab = torch.tensor(labels, dtype=torch.int64)
    e = torch.tensor(eps, dtype=torch.float64)[:, None]
    lo = torch.clamp(xc - e, min=0.0)
    hi = torch.clamp(xc + e, max=1.0)

    def fwd(z: torch.Tensor) -> torch.Tensor:
        return _margins(model64, z.reshape(-1, *input_shape), lab)

    with torch.no_grad():
        best_m = fwd(xc)
    best_x = xc.clone()
    step = (hi - lo) / 8.0
    for r in range(restarts):
        if r == 0:
            z = xc.clone()
        else:
            z = lo + (hi - lo) * torch.rand((n, d), generator=gen, dtype=torch.float64)
        for k in range(steps):
            z.requires_grad_(True)
            m = fwd(z)
            (grad,) = torch.autograd.grad(m.sum(), z)
            with torch.no_grad():
                mk = m.detach()
                better = mk < best_m
                best_m = torch.where(better, mk, best_m)
                best_x[better] = z.detach()[better]
                scale = 1.0 if k < steps // 2 else 0.25
                z = torch.minimum(torch.maximum(z - scale * step * grad.sign(), lo), hi)
        with torch.no_grad():
            m = fwd(z)
            better = m < best_m
            best_m = torch.where(better, m, best_m)
            best_x[better] = z[better]
    return best_x.numpy(), best_m.numpy()


def attack_radius(
    model: nn.Module,
    x0: np.ndarray,
    labels: np.ndarray,
    grid: tuple[float, ...],
    input_shape: tuple[int, ...],
    seed: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Per row the smallest radius at which PGD found a counterexample (``inf``: none).

    Direct attacks at every ``eps`` of ``grid`` and at ``MAX_ATTACK_RADIUS``, then a bisection
    between the largest failed and the smallest successful radius (PGD success is not monotone
    in the radius, so the result is the smallest *successful* radius seen). A counterexample
    counts only if its float64 margin is below ``-CEX_MARGIN``.

    Returns:
        ``(radius, counterexamples)``: ``radius`` is ``inf`` and the counterexample row NaN
        where no attack succeeded.
    """
    model64 = _double_copy(model)
    n, d = x0.shape
    radius = np.full(n, np.inf)
    cex = np.full((n, d), np.nan)

    def attempt(eps: np.ndarray, rows: np.ndarray, salt: int) -> np.ndarray:
        xs, ms = pgd(model64, x0[rows], labels[rows], eps[rows], input_shape, seed=seed + salt)
        ok = ms < -CEX_MARGIN
        hit = rows[ok]
        improve = eps[hit] < radius[hit]
        radius[hit[improve]] = eps[hit[improve]]
        cex[hit[improve]] = xs[ok][improve]
        return ok

    all_rows = np.arange(n)
    for i, e in enumerate(grid):
        attempt(np.full(n, e), all_rows, 1 + i)
    attempt(np.full(n, MAX_ATTACK_RADIUS), all_rows, 100)
    lo = np.zeros(n)
    for it in range(8):
        active = all_rows[np.isfinite(radius) & (radius - lo > 2e-3)]
        if active.size == 0:
            break
        mid = (lo + np.where(np.isfinite(radius), radius, 0.0)) / 2.0
        ok = attempt(mid, active, 200 + it)
        lo[active[~ok]] = mid[active[~ok]]
    return radius, cex


def _double_copy(model: nn.Module) -> nn.Module:
    """A float64 deep copy of ``model`` in eval mode."""
    return copy.deepcopy(model).to(torch.float64).eval()


def select_points(
    radius: np.ndarray, eps: tuple[float, ...], n_points: int, n_vulnerable: int
) -> list[int]:
    """Pick indices (into ``radius``) giving a mix of vulnerable and possibly robust points.

    ``n_vulnerable`` points with an attack radius in ``(eps[0], eps[-1]]`` (not attacked at the
    smallest epsilon, attackable at the largest): the one with the largest such radius, then
    those with the smallest; the rest are points with no attack at ``eps[-1]``, spread evenly
    over the sorted radii (from hard near-boundary points to ones never attacked).
    """
    order = np.argsort(radius, kind="stable")
    vul = [int(i) for i in order if eps[0] < radius[i] <= eps[-1]]
    if len(vul) < n_vulnerable:  # fall back to anything attackable at eps[-1]
        vul += [int(i) for i in order if radius[i] <= eps[0]]
    chosen: list[int] = []
    if vul:
        chosen.append(vul[-1])  # largest radius still <= eps[-1]
        for i in vul:
            if len(chosen) >= n_vulnerable:
                break
            if i not in chosen:
                chosen.append(i)  # smallest radius > eps[0]
    rob = [int(i) for i in order if radius[i] > eps[-1]]
    n_rob = n_points - len(chosen)
    if rob and n_rob > 0:
        picks = np.linspace(0, len(rob) - 1, n_rob)
        for p in picks:
            i = rob[round(float(p))]
            if i not in chosen:
                chosen.append(i)
    return sorted(chosen)


# --------------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------------


def count_hidden_neurons(model: nn.Sequential, input_shape: tuple[int, ...]) -> int:
    """Number of activation outputs for one input (the neurons a MILP must model)."""
    total = 0
    x = torch.zeros(1, *input_shape)
    with torch.no_grad():
        for layer in model:
            x = layer(x)
            if isinstance(layer, (nn.ReLU, nn.Hardtanh, nn.Sigmoid, nn.Tanh)):
                total += x.numel()
    return total


def _json_float(v: float) -> float | None:
    return float(v) if np.isfinite(v) else None


def build_all(out: Path, *, verbose: bool = True) -> dict[str, Any]:
    """Train every network, export it into ``out`` and write ``out/examples.json``."""
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    out.mkdir(parents=True, exist_ok=True)
    datasets = load_datasets()
    networks: list[dict[str, Any]] = []
    for idx, spec in enumerate(example_specs()):
        t0 = time.perf_counter()
        data = datasets[spec.dataset]
        model, seed = train_best(spec, data, _seed(idx))
        train_acc = accuracy(model, data.x_train, data.y_train, spec.input_shape)
        test_acc = accuracy(model, data.x_test, data.y_test, spec.input_shape)
        file = f"{spec.name}.onnx"
        export_onnx(model, spec.input_shape, out / file)

        with torch.no_grad():
            pred = (
                model(torch.tensor(data.x_test, dtype=torch.float32).reshape(-1, *spec.input_shape))
                .argmax(dim=1)
                .numpy()
            )
        correct = np.flatnonzero(pred == data.y_test)[:MAX_CANDIDATES]
        radius, cex = attack_radius(
            model,
            data.x_test[correct],
            data.y_test[correct],
            spec.eps,
            spec.input_shape,
            seed=seed + 7,
        )
        picked = select_points(radius, spec.eps, spec.n_points, spec.n_vulnerable)
        model64 = _double_copy(model)
        points = []
        for k, j in enumerate(picked):
            ti = int(correct[j])
            entry: dict[str, Any] = {
                "id": f"p{k}",
                "test_index": ti,
                "label": int(data.y_test[ti]),
                "x0": [float(v) for v in data.x_test[ti]],
                "attack_radius": _json_float(radius[j]),
                "counterexample": None,
                "counterexample_class": None,
            }
            if np.isfinite(radius[j]):
                with torch.no_grad():
                    logits = model64(
                        torch.tensor(cex[j], dtype=torch.float64).reshape(1, *spec.input_shape)
                    )[0]
                entry["counterexample"] = [float(v) for v in cex[j]]
                entry["counterexample_class"] = int(logits.argmax())
            points.append(entry)
        n_hidden = count_hidden_neurons(model, spec.input_shape)
        info = {
            "name": spec.name,
            "dataset": spec.dataset,
            "activation": spec.activation,
            "architecture": spec.architecture,
            "file": file,
            "input_shape": list(spec.input_shape),
            "n_inputs": int(np.prod(spec.input_shape)),
            "n_classes": data.n_classes,
            "n_hidden_neurons": int(n_hidden),
            "n_parameters": int(sum(p.numel() for p in model.parameters())),
            "train_accuracy": train_acc,
            "test_accuracy": test_acc,
            "training": {
                "seed": seed,
                "optimizer": "Adam (full batch)",
                "epochs": spec.epochs,
                "lr": spec.lr,
                "weight_decay": spec.weight_decay,
                "loss": "cross_entropy",
            },
            "normalisation": {
                "formula": "clip((x - min) / (max - min), 0, 1); max - min := 1 if zero",
                "min": [float(v) for v in data.lo],
                "max": [float(v) for v in data.hi],
            },
            "properties": {
                "kind": "linf_robustness",
                "domain": [0.0, 1.0],
                "eps": list(spec.eps),
                "points": points,
            },
        }
        networks.append(info)
        if verbose:
            n_vul = [sum(1 for p in points if radius_le(p, e)) for e in spec.eps]
            print(
                f"  {spec.name:<14} trained in {time.perf_counter() - t0:5.1f} s; "
                f"attackable points per eps {dict(zip(spec.eps, n_vul))}",
                file=sys.stderr,
            )
    meta = {
        "schema_version": SCHEMA_VERSION,
        "generator": "benchmarks/train_examples.py",
        "datasets": {name: ds.params for name, ds in datasets.items()},
        "onnx": {"opset": OPSET, "exporter": "torch.onnx.export(dynamo=False)", "dtype": "float32"},
        "attack": {
            "method": "L-inf PGD on the margin, float64, 3 restarts x 30 steps, bisection to 2e-3",
            "max_radius": MAX_ATTACK_RADIUS,
            "min_violation": CEX_MARGIN,
            "meaning": "attack_radius is an upper bound on the minimal adversarial radius; "
            "null means no attack succeeded up to max_radius",
        },
        "networks": networks,
    }
    text = json.dumps(meta, indent=1, allow_nan=False)
    (out / METADATA_FILE).write_text(text + "\n", encoding="utf-8")
    return meta


def radius_le(point: dict[str, Any], eps: float) -> bool:
    """Whether a point's recorded attack radius is at most ``eps``."""
    r = point["attack_radius"]
    return r is not None and r <= eps


def print_table(meta: dict[str, Any], out: Path) -> None:
    """One row per network: data, activation, architecture, accuracy, size, attack summary."""
    head = (
        f"{'name':<14} {'data':<7} {'act':<9} {'arch':<12} {'hidden':>6} {'params':>6} "
        f"{'train':>6} {'test':>6} {'bytes':>6}  vulnerable/points per eps"
    )
    print(head)
    print("-" * len(head))
    for n in meta["networks"]:
        size = (out / n["file"]).stat().st_size
        pts = n["properties"]["points"]
        vul = ", ".join(
            f"{e:g}:{sum(radius_le(p, e) for p in pts)}/{len(pts)}" for e in n["properties"]["eps"]
        )
        print(
            f"{n['name']:<14} {n['dataset']:<7} {n['activation']:<9} {n['architecture']:<12} "
            f"{n['n_hidden_neurons']:>6} {n['n_parameters']:>6} {n['train_accuracy']:>6.3f} "
            f"{n['test_accuracy']:>6.3f} {size:>6}  {vul}"
        )


def onnx_weights(path: Path) -> dict[str, np.ndarray]:
    """Initializers and ``Constant`` node tensors of an ONNX file, by name."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    out = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    out[node.output[0]] = numpy_helper.to_array(attr.t)
    return out


def check(shipped: Path) -> int:
    """Retrain into a temporary directory and compare with ``shipped``; return an exit code."""
    worst = 0.0
    problems: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp)
        meta = build_all(fresh, verbose=False)
        old_meta = json.loads((shipped / METADATA_FILE).read_text(encoding="utf-8"))
        old_names = [n["name"] for n in old_meta["networks"]]
        if old_names != [n["name"] for n in meta["networks"]]:
            problems.append(f"network list differs: {old_names}")
        for net in meta["networks"]:
            a = onnx_weights(fresh / net["file"])
            try:
                b = onnx_weights(shipped / net["file"])
            except FileNotFoundError:
                problems.append(f"{net['file']}: missing from {shipped}")
                continue
            if sorted(a) != sorted(b):
                problems.append(f"{net['file']}: tensor names differ")
                continue
            diff = max(
                float(np.max(np.abs(a[k].astype(np.float64) - b[k].astype(np.float64))))
                if a[k].size
                else 0.0
                for k in a
            )
            worst = max(worst, diff)
            status = "ok" if diff < CHECK_TOL else "MISMATCH"
            print(f"{net['name']:<14} max |w_new - w_shipped| = {diff:.3g}  {status}")
            if diff >= CHECK_TOL:
                problems.append(f"{net['file']}: weights differ by {diff:.3g}")
            old = next((n for n in old_meta["networks"] if n["name"] == net["name"]), None)
            if old is not None:
                for key in ("test_accuracy", "input_shape", "n_classes", "normalisation"):
                    if old[key] != net[key]:
                        problems.append(f"{net['name']}: metadata {key!r} differs")
                old_p, new_p = old["properties"], net["properties"]
                if old_p["eps"] != new_p["eps"] or [
                    (p["test_index"], p["label"]) for p in old_p["points"]
                ] != [(p["test_index"], p["label"]) for p in new_p["points"]]:
                    problems.append(f"{net['name']}: properties differ")
    print(f"worst weight difference {worst:.3g} (tolerance {CHECK_TOL:g})")
    for p in problems:
        print("PROBLEM:", p)
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory")
    parser.add_argument(
        "--check",
        action="store_true",
        help="retrain into a temporary directory and compare with the files in --out",
    )
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    if args.check:
        code = check(args.out)
        print(f"check finished in {time.perf_counter() - t0:.1f} s")
        return code
    meta = build_all(args.out)
    print_table(meta, args.out)
    print(
        f"wrote {len(meta['networks'])} networks to {args.out} in {time.perf_counter() - t0:.1f} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
