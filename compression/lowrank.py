"""Low-rank (truncated SVD) compression of Dense layers.

For a weight ``W = U S V^T`` (singular values ``s_1 >= s_2 >= ...``) the rank-``r`` truncation
``W_r = U_r S_r V_r^T`` is the best rank-``r`` approximation in spectral and Frobenius norm
(Eckart-Young): ``||W - W_r||_2 = s_{r+1}``.

:func:`low_rank` keeps the same architecture by default (one Dense holding the product
``W_r``), which is what a verifier wants; ``factorize=True`` instead inserts the bottleneck
``Dense(S_r V_r^T, 0)`` followed by ``Dense(U_r, b)``, the usual
``Sequential(Linear(in, r, bias=False), Linear(r, out))`` artefact (ECOSYSTEM.md section 2.8).
:meth:`Network.normalized` folds such consecutive Dense layers back into their product.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from nncert.compression._common import dense_positions, select
from nncert.compression.records import RecordMixin
from nncert.verify.errors import InvalidOptionsError
from nncert.verify.network import Dense, FloatArray, Layer, Network, densified


@dataclass(frozen=True)
class LowRankRecord(RecordMixin):
    """What :func:`low_rank` did.

    Attributes:
        rank: the requested rank (``None`` when chosen by energy).
        energy: the requested retained energy (``None`` when a rank was given).
        factorize: whether each layer became two Dense layers.
        layers: indices of the truncated Dense layers (among the *input's* ``dense_layers``).
        ranks: per truncated layer, the rank kept.
        singular_values: per truncated layer, all singular values (descending).
        retained_energy: per truncated layer, ``sum_{i<=r} s_i^2 / sum_i s_i^2``.
        spectral_error: per truncated layer, ``||W - W_r||_2 = s_{r+1}`` (0 at full rank).
        parameters_before: parameters before.
        parameters_after: stored parameters after (equal to before unless ``factorize``).
        factorized_parameters: parameters of the factorized form ``r (n_in + n_out) + n_out``
            summed over truncated layers plus the untouched ones (what a deployment stores).
    """

    kind = "low_rank"

    rank: int | None
    energy: float | None
    factorize: bool
    layers: tuple[int, ...]
    ranks: tuple[int, ...]
    singular_values: tuple[FloatArray, ...]
    retained_energy: tuple[float, ...]
    spectral_error: tuple[float, ...]
    parameters_before: int
    parameters_after: int
    factorized_parameters: int


def _choose_rank(s: FloatArray, rank: int | None, energy: float | None) -> int:
    if rank is not None:
        return min(int(rank), s.size)
    total = float(np.sum(s**2))
    if total == 0.0:
        return 1
    cum = np.cumsum(s**2) / total
    e = 0.99 if energy is None else float(energy)
    return min(int(s.size), int(np.searchsorted(cum, e - 1e-15)) + 1)


def low_rank(
    network: Network,
    rank: int | None = None,
    *,
    energy: float | None = None,
    layers: Sequence[int] | None = None,
    factorize: bool = False,
) -> tuple[Network, LowRankRecord]:
    """Truncate the SVD of Dense weights to a fixed rank or a retained energy.

    Give ``rank`` (kept singular values per layer, capped at ``min(n_out, n_in)``) or
    ``energy`` (smallest ``r`` with ``sum_{i<=r} s_i^2 >= energy * sum s_i^2``); with neither,
    ``energy=0.99``. At full rank the product equals ``W`` up to float rounding.

    Args:
        network: the network.
        rank: rank to keep, ``>= 1``.
        energy: retained energy in ``(0, 1]`` (exclusive with ``rank``).
        layers: indices into ``network.dense_layers``; default all.
        factorize: insert ``Dense(S_r V_r^T, 0), Dense(U_r, b)`` instead of one Dense with the
            product.

    Returns:
        ``(low-rank network, record)``.

    Raises:
        InvalidOptionsError: on both or invalid ``rank``/``energy``, or a bad layer index.

    Examples:
        >>> net = Network((Dense(np.diag([3.0, 1.0]), np.zeros(2)),), input_shape=(2,))
        >>> lr, rec = low_rank(net, rank=1)
        >>> lr.dense_layers[0].weight.tolist(), rec.spectral_error
        ([[3.0, 0.0], [0.0, 0.0]], (1.0,))
    """
    network = densified(network, "low-rank compression")  # sparse layers: densified or refused
    if rank is not None and energy is not None:
        raise InvalidOptionsError("give rank or energy, not both")
    if rank is not None and (
        isinstance(rank, bool) or not isinstance(rank, (int, np.integer)) or rank < 1
    ):
        raise InvalidOptionsError(f"rank={rank!r} must be an int >= 1")
    if rank is None and energy is None:
        energy = 0.99
    if energy is not None and not (
        isinstance(energy, (int, float)) and np.isfinite(energy) and 0.0 < energy <= 1.0
    ):
        raise InvalidOptionsError(f"energy={energy!r} must lie in (0, 1]")
    positions = dense_positions(network)
    chosen = select(len(positions), layers, what="layers")
    replacement: dict[int, list[Layer]] = {}
    ranks, svals, kept_energy, errs = [], [], [], []
    fact_params = network.n_parameters
    for i in chosen:
        d = network.dense_layers[i]
        U, s, Vt = np.linalg.svd(d.weight, full_matrices=False)
        r = _choose_rank(s, None if rank is None else int(rank), energy)
        total = float(np.sum(s**2))
        if factorize:
            replacement[positions[i]] = [
                Dense(s[:r, None] * Vt[:r], np.zeros(r)),
                Dense(U[:, :r], d.bias),
            ]
        else:
            replacement[positions[i]] = [Dense((U[:, :r] * s[:r]) @ Vt[:r], d.bias)]
        fact_params += r * (d.n_in + d.n_out) - d.weight.size
        ranks.append(r)
        s.setflags(write=False)
        svals.append(s)
        kept_energy.append(float(np.sum(s[:r] ** 2)) / total if total > 0 else 1.0)
        errs.append(float(s[r]) if r < s.size else 0.0)
    new_layers: list[Layer] = []
    for pos, layer in enumerate(network.layers):
        new_layers.extend(replacement.get(pos, [layer]))
    out = network.replace_layers(new_layers)
    rec = LowRankRecord(
        rank=None if rank is None else int(rank),
        energy=None if energy is None else float(energy),
        factorize=bool(factorize),
        layers=chosen,
        ranks=tuple(ranks),
        singular_values=tuple(svals),
        retained_energy=tuple(kept_energy),
        spectral_error=tuple(errs),
        parameters_before=network.n_parameters,
        parameters_after=out.n_parameters,
        factorized_parameters=int(fact_params),
    )
    return out, rec


__all__ = ["LowRankRecord", "low_rank"]
