"""Shared helpers of the certificate tests (imported as ``from cert_helpers import ...``)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from nncert.certificates import (
    BabCase,
    BabEvidence,
    Certificate,
    MilpCase,
    MilpEvidence,
    certificate_from_result,
)
from nncert.certificates.build import bound_evidence
from nncert.verify.network import Dense, Network, ReLU
from nncert.verify.pipeline import verify
from nncert.verify.proof import CLOSED_BY_BOUND, ProofRecorder, ProofTree
from nncert.verify.spec import Box, Property, UnsafeCase, robustness_property

GOLDEN_DIR = Path(__file__).resolve().parents[1] / "data" / "certificates" / "v2_0"
#: certificates of schema 1.0 (before proof trees): refused with a clear message
OLD_GOLDEN_DIR = Path(__file__).resolve().parents[1] / "data" / "certificates" / "v1_0"


def random_network(
    rng: np.random.Generator, widths: list[int], act: Any = None, scale: float = 1.0
) -> Network:
    """A dense network with the given widths and one activation type."""
    act = ReLU() if act is None else act
    layers: list[Any] = []
    for k in range(len(widths) - 1):
        W = rng.normal(size=(widths[k + 1], widths[k])) * scale / np.sqrt(widths[k])
        layers.append(Dense(W, rng.normal(size=widths[k + 1]) * 0.1))
        if k < len(widths) - 2:
            layers.append(act)
    return Network(tuple(layers), (widths[0],), name="random")


def masked(net: Network, masks: list[np.ndarray]) -> Network:
    """Magnitude-style pruning: multiply each Dense weight by a 0/1 mask."""
    out: list[Any] = []
    k = 0
    for layer in net.layers:
        if isinstance(layer, Dense):
            out.append(Dense(layer.weight * masks[k], layer.bias))
            k += 1
        else:
            out.append(layer)
    return Network(tuple(out), net.input_shape, name=f"{net.name}-pruned")


def magnitude_prune(net: Network, fraction: float) -> Network:
    """Zero the ``fraction`` smallest-magnitude weights of every Dense layer."""
    masks = []
    for d in net.dense_layers:
        thr = np.quantile(np.abs(d.weight), fraction)
        masks.append((np.abs(d.weight) > thr).astype(float))
    return masked(net, masks)


def golden_network() -> Network:
    """A fixed 2-4-3 ReLU network (literal weights, so golden files never drift)."""
    W1 = [[1.0, -0.5], [0.25, 0.75], [-1.0, 0.5], [0.5, 0.5]]
    b1 = [0.1, -0.2, 0.0, 0.05]
    W2 = [[1.0, 0.5, -0.25, 0.5], [-0.5, 1.0, 0.25, -0.5], [0.25, -0.75, 1.0, 0.0]]
    b2 = [0.2, 0.0, -0.1]
    return Network((Dense(W1, b1), ReLU(), Dense(W2, b2)), (2,), name="golden-2-4-3")


def golden_pruned() -> Network:
    """``golden_network`` with its smallest weights zeroed."""
    net = golden_network()
    masks = [(np.abs(d.weight) > 0.3).astype(float) for d in net.dense_layers]
    return masked(net, masks)


def robust_prop(net: Network, x0: Any, eps: float) -> Property:
    """Robustness of ``x0`` at the network's own label."""
    x = np.asarray(x0, dtype=float)
    label = int(np.argmax(net.forward(x)))
    return robustness_property(x, eps, label, net.n_outputs, domain=None)


def verified_cert(net: Network, prop: Property, method: str = "crown") -> Certificate:
    """A certificate from ``verify(method=...)``."""
    res = verify(net, prop, method=method, time_limit=30)
    return certificate_from_result(net, prop, res, options={"method": method})


def milp_cert(net: Network, prop: Property) -> Certificate:
    """A synthetic, honest-looking MILP certificate (structure as the pipeline records it)."""
    cert = verified_cert(net, prop, "crown")
    pre = bound_evidence(net, prop, "crown")
    cases = tuple(
        MilpCase(i, "optimal", float(v) + 0.01, float(v), 0.01)
        for i, v in enumerate(pre.case_lower)
    )
    ev = MilpEvidence("highs", True, cases, 1e-6, pre)
    return replace(cert, evidence=ev)


def root_tree(method: str = "crown") -> ProofTree:
    """A one-node proof tree: the root closed by a bound (genuine when ``method`` proves it)."""
    rec = ProofRecorder({"intermediate": method})
    rec.close(rec.root(), CLOSED_BY_BOUND)
    return rec.tree()


def bab_cert(net: Network, prop: Property) -> Certificate:
    """A branch-and-bound certificate whose proof trees are single leaves closed by CROWN
    (genuine when CROWN proves every case)."""
    cert = verified_cert(net, prop, "crown")
    pre = bound_evidence(net, prop, "crown")
    cases = tuple(
        BabCase(i, "verified", float(v), 1, root_tree()) for i, v in enumerate(pre.case_lower)
    )
    return replace(cert, evidence=BabEvidence("input-split+crown", len(cases), cases, None))


def two_row_property(net: Network, x0: Any, eps: float) -> Property:
    """A property with 2-row cases: unsafe iff both f_y - f_j <= 0 and f_y - f_k <= 0."""
    x = np.asarray(x0, dtype=float)
    y = int(np.argmax(net.forward(x)))
    n = net.n_outputs
    others = [j for j in range(n) if j != y]
    box = Box(x - eps, x + eps)
    cases = []
    for j in others:
        for k in others:
            if j < k:
                A = np.zeros((2, n))
                A[0, y], A[0, j] = 1.0, -1.0
                A[1, y], A[1, k] = 1.0, -1.0
                cases.append(UnsafeCase(box, A, np.zeros(2)))
    return Property(tuple(cases), name="two-row")


def sample_violations(net: Network, prop: Property, rng: np.random.Generator, n: int = 4000):
    """Minimum sampled violation per case (corners and uniform samples)."""
    out = []
    for case in prop.cases:
        box = case.input_box
        xs = np.vstack([box.sample(n, rng), box.lower, box.upper, box.center])
        out.append(float(np.min(case.violation(net.forward(xs)))))
    return out
