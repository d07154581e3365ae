"""Seeded random networks shared by the tests (``from nets import seeded_network``; pytest puts
``tests/`` on ``sys.path``)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from nncert.verify.network import Dense, Network, ReLU, apply_activation


def seeded_network(
    seed: int, sizes: Sequence[int], acts: Sequence[object], scale: float = 2.0
) -> Network:
    """``Dense (act Dense)*`` with ``N(0, scale^2)`` weights and ``N(0, 1)`` biases drawn from
    ``default_rng(seed)``; ``acts[i]`` follows the ``i``-th hidden layer."""
    rng = np.random.default_rng(seed)
    layers: list[object] = []
    for i in range(len(sizes) - 1):
        layers.append(
            Dense(rng.normal(size=(sizes[i + 1], sizes[i])) * scale, rng.normal(size=sizes[i + 1]))
        )
        if i < len(sizes) - 2:
            layers.append(acts[i])
    return Network(tuple(layers), (sizes[0],))  # type: ignore[arg-type]


def small_relu_network(seed: int = 16) -> Network:
    """A 20-input ReLU network, 12-12 hidden, one output (about 24 unstable ReLUs on the box
    ``[-0.3, 0.3]^20``; with the default seed the exact minimum of its output there is
    -9.1102, found by HiGHS)."""
    rng = np.random.default_rng(seed)
    n_in, h = 20, 12
    return Network(
        (
            Dense(rng.normal(size=(h, n_in)), rng.normal(size=h) * 0.5),
            ReLU(),
            Dense(rng.normal(size=(h, h)) / np.sqrt(h), rng.normal(size=h) * 0.5),
            ReLU(),
            Dense(rng.normal(size=(1, h)), [0.0]),
        ),
        input_shape=(n_in,),
    )


def pre_activations(net: Network, x: np.ndarray) -> list[np.ndarray]:
    """Every Dense output of the normal form of ``net`` on the batch ``x``."""
    a = np.asarray(x, dtype=np.float64)
    out = []
    for layer in net.normalized().layers:
        if isinstance(layer, Dense):
            a = a @ layer.weight.T + layer.bias
            out.append(a)
        else:
            a = apply_activation(layer, a)
    return out
