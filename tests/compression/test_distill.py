"""Knowledge distillation into a smaller MLP (needs torch)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from cmp_helpers import mlp

from nncert.verify.errors import InvalidOptionsError
from nncert.verify.network import Dense, Tanh

pytest.importorskip("torch")
from nncert.compression import distill


def test_distill_is_deterministic_and_learns() -> None:
    teacher = mlp((4, 32, 32, 3), seed=5)
    a, rec = distill(teacher, hidden=(8,), epochs=300, seed=1, n_samples=512)
    b, _ = distill(teacher, hidden=(8,), epochs=300, seed=1, n_samples=512)
    assert a == b  # bit-identical
    assert [d.weight.shape for d in a.dense_layers] == [(8, 4), (3, 8)]
    assert rec.parameters_after == a.n_parameters < rec.parameters_before
    X = np.random.default_rng(0).uniform(size=(512, 4))
    Y = teacher.forward(X)
    base = np.mean((Y - Y.mean(axis=0)) ** 2)  # error of the best constant predictor
    assert np.mean((a.forward(X) - Y) ** 2) < 0.2 * base
    assert rec.agreement > 0.8
    json.dumps(rec.to_dict(), allow_nan=False)


def test_distill_kl_and_activation() -> None:
    teacher = mlp((4, 16, 3), seed=6)
    X = np.random.default_rng(1).uniform(size=(256, 4))
    student, rec = distill(
        teacher, hidden=(6, 6), X=X, epochs=150, loss="kl", temperature=2.0, activation="tanh"
    )
    assert isinstance(student.layers[1], Tanh) and isinstance(student.layers[-1], Dense)
    assert rec.loss == "kl" and rec.n_samples == 256
    assert rec.agreement > 0.6


def test_distill_errors() -> None:
    teacher = mlp()
    with pytest.raises(InvalidOptionsError, match="activation"):
        distill(teacher, activation="gelu")  # type: ignore[arg-type]
    with pytest.raises(InvalidOptionsError, match="hidden"):
        distill(teacher, hidden=(0,))
    with pytest.raises(InvalidOptionsError, match="loss"):
        distill(teacher, loss="ce")  # type: ignore[arg-type]
