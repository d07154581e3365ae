"""Small deterministic networks shared by the compression tests."""

from __future__ import annotations

import numpy as np

from nncert.verify.network import Dense, Layer, Network, ReLU


def mlp(
    widths: tuple[int, ...] = (4, 16, 12, 3), *, seed: int = 0, act: Layer | None = None
) -> Network:
    """A He-initialised MLP ``Dense (act Dense)*`` with the given widths."""
    rng = np.random.default_rng(seed)
    layers: list[Layer] = []
    for k in range(len(widths) - 1):
        W = rng.normal(size=(widths[k + 1], widths[k])) * np.sqrt(2.0 / widths[k])
        layers.append(Dense(W, rng.normal(scale=0.1, size=widths[k + 1])))
        if k < len(widths) - 2:
            layers.append(act if act is not None else ReLU())
    return Network(tuple(layers), input_shape=(widths[0],), name="mlp")
