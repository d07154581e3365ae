"""Seeded random networks shared by the tests (``from nets import seeded_network``; pytest puts
``tests/`` on ``sys.path``)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from nncert.verify.network import Dense, Network


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
