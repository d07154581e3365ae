r"""Rigorous floating-point error bounds for float64 round-to-nearest arithmetic.

The bound engine (:mod:`nncert.verify.bounds`) computes in ordinary float64 and *accounts* for
every rounding error instead of changing the rounding mode. The facts used (Higham, *Accuracy
and Stability of Numerical Algorithms*, ch. 2-3), with unit roundoff :math:`u = 2^{-53}`:

* one operation :math:`\circ \in \{+, -, \times, /\}`: :math:`fl(a \circ b) = (a \circ b)(1 +
  \delta)`, :math:`|\delta| \le u` (no underflow), so moving a correctly rounded result by
  :math:`4u|v|` plus :data:`TINY` in the right direction (:func:`up`, :func:`down`) encloses
  the exact value;
* a dot product of length :math:`n`, in *any* summation order (BLAS blocks and reorders):
  :math:`|fl(w^\top a) - w^\top a| \le \gamma_n |w|^\top |a|`, with
  :math:`\gamma_n = nu / (1 - nu)`;
* underflow adds at most :math:`2^{-1074}` per operation in absolute terms, covered by
  :data:`TINY` per dot product.

:func:`gamma` returns :math:`4 \gamma_{n+4}`: twice what a dot product of length :math:`2n + 4`
needs, which covers the pairs of products, biases and accumulated constants the engine adds
around each dot product with a factor of two to spare. Error terms are
themselves sums of non-negative products computed in float64; :func:`inflate` scales such a
computed bound up so that it bounds the exact one.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]

#: unit roundoff of float64 round-to-nearest
UNIT = 2.0**-53
#: absolute slack per dot product against underflow (each operation loses at most 2^-1075
#: absolutely; this covers dot products of up to 2^170 terms). Any larger value is as sound;
#: it is kept far above the subnormal range (below 2^-1022) because it seeds the radii and
#: error terms of degenerate intervals (dead neurons: [0, 0]): with a subnormal slack every
#: matrix product over them ran through the CPU's slow subnormal path (measured: an IBP step
#: of 16 boxes through a 256x256 layer, half of them dead, 12.6 ms against 0.24 ms)
TINY = 2.0**-900


def gamma(n: int) -> float:
    r"""Safe :math:`\gamma`: ``4 * gamma_{n+4}``, a bound on the relative error of a computed
    dot product of length ``n`` (or two of them added) plus a few further additions.

    Raises:
        ValueError: when ``n`` is so large that the bound is meaningless (``n u >= 1/2``).
    """
    nu = (int(n) + 4) * UNIT
    if nu >= 0.25:
        raise ValueError(f"dot products of length {n} are beyond float64 error analysis")
    return 4.0 * nu / (1.0 - nu)


def inflate(err: FloatArray | float, n: int) -> FloatArray:
    """Scale a computed non-negative error bound so that it bounds the exact one.

    ``err`` was computed as a sum of at most ``n`` non-negative products; its own relative
    rounding error is at most ``gamma(n)``, so ``err (1 + 2 gamma(n)) + TINY`` encloses the
    exact value. The factor is enlarged by ``4u`` more to cover the rounding of this product
    and sum themselves, so no ``nextafter`` is needed.
    """
    factor = (1.0 + 2.0 * gamma(n)) * (1.0 + 4.0 * UNIT)
    return np.asarray(err, dtype=np.float64) * factor + TINY


def down(v: FloatArray | float) -> FloatArray:
    """A float64 lower bound of the exact value whose correctly rounded result is ``v``.

    ``v - (4u |v| + TINY)``: the exact value is at least ``v - u|v|/(1 - u)``, and the
    subtraction's own rounding costs at most ``u (1 + 4u)|v|`` (``4u |v|`` is exact: a power
    of two times ``|v|``). Much cheaper than ``np.nextafter`` and just as safe.
    """
    a = np.asarray(v, dtype=np.float64)
    return a - (np.abs(a) * (4.0 * UNIT) + TINY)


def up(v: FloatArray | float) -> FloatArray:
    """A float64 upper bound of the exact value whose correctly rounded result is ``v``
    (``v + 4u |v| + TINY``; see :func:`down`)."""
    a = np.asarray(v, dtype=np.float64)
    return a + (np.abs(a) * (4.0 * UNIT) + TINY)


def sub_down(a: FloatArray, b: FloatArray) -> FloatArray:
    """A float64 lower bound of the exact ``a - b``."""
    return down(a - b)


def sub_up(a: FloatArray, b: FloatArray) -> FloatArray:
    """A float64 upper bound of the exact ``a - b``."""
    return up(a - b)


def affine_interval(
    W: FloatArray,
    b: FloatArray,
    lo: FloatArray,
    hi: FloatArray,
    *,
    abs_w: FloatArray | None = None,
    extra: FloatArray | None = None,
) -> tuple[FloatArray, FloatArray]:
    r"""Rigorous enclosure of :math:`\{W a + b : lo \le a \le hi\}` (batched over rows of ``lo``).

    Args:
        W: ``(n_out, n_in)``, a numpy array or a scipy sparse matrix.
        b: ``(n_out,)``.
        lo: ``(n_in,)`` or ``(N, n_in)``.
        hi: same shape as ``lo``.
        abs_w: ``|W|`` if already computed.
        extra: a further non-negative absolute error to widen by (``(n_out,)`` or
            ``(N, n_out)``), e.g. the composition error of a merged layer.

    Returns:
        ``(lower, upper)`` of shape ``(n_out,)`` or ``(N, n_out)``.
    """
    aw = abs(W) if abs_w is None else abs_w  # abs() keeps a scipy sparse W sparse
    # centre/radius form over [c - r, c + r], a float box containing [lo, hi] (r rounded up)
    c = 0.5 * (lo + hi)
    r = np.maximum(up(hi - c), up(c - lo))
    # np.asarray: a scipy sparse W (a sparse Dense layer) gives the same dense products
    mid = np.asarray(c @ W.T) + b
    rad = np.asarray(r @ aw.T)
    mag = np.asarray((np.abs(c) + r) @ aw.T)
    err = inflate(gamma(W.shape[1]) * (mag + np.abs(b)) + rad * (2.0 * UNIT), W.shape[1])
    if extra is not None:
        err = err + extra
    return down(mid - rad - err), up(mid + rad + err)


__all__ = [
    "TINY",
    "UNIT",
    "affine_interval",
    "down",
    "gamma",
    "inflate",
    "sub_down",
    "sub_up",
    "up",
]
