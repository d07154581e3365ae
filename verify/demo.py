"""The end-to-end demo behind ``nncert demo`` (the README's main command).

Loads the bundled example networks, verifies their robustness properties, and prints one row
per network: how many properties were verified, falsified or left unknown, and the time.
When the compression stack and certificate transfer are installed, it also prunes each ReLU
network, transfers the certificates to the pruned version, and reports how many transferred.
"""

from __future__ import annotations

import time
from typing import Any, TextIO

from nncert.verify.result import Verdict


def _row(cells: list[str], widths: list[int]) -> str:
    return "  ".join(c.ljust(w) for c, w in zip(cells, widths))


def run_demo(*, quick: bool = False, timeout: float = 10.0, stream: TextIO) -> int:
    """Run the demo; returns the exit code (0 unless something crashed or was unsound).

    Args:
        quick: fewer properties per network.
        timeout: seconds per property.
        stream: where the table goes.
    """
    from nncert.verify.examples import list_examples, load_example
    from nncert.verify.options import VerifyOptions
    from nncert.verify.pipeline import verify

    options = VerifyOptions(time_limit=timeout)
    header = ["network", "props", "verified", "falsified", "unknown", "time s", "transfer"]
    widths = [16, 5, 8, 9, 7, 7, 20]
    stream.write(_row(header, widths) + "\n")
    stream.write(_row(["-" * w for w in widths], widths) + "\n")
    totals = {"verified": 0, "falsified": 0, "unknown": 0}
    t_all = time.perf_counter()
    for name in list_examples():
        network, props = load_example(name)
        if quick:
            props = props[:3]
        counts = {"verified": 0, "falsified": 0, "unknown": 0}
        t0 = time.perf_counter()
        results = []
        for prop in props:
            res = verify(network, prop, options)
            counts[res.verdict.value] += 1
            results.append(res)
        elapsed = time.perf_counter() - t0
        transfer_cell = _try_transfer(network, props, results, timeout)
        for k in totals:
            totals[k] += counts[k]
        stream.write(
            _row(
                [
                    name,
                    str(len(props)),
                    str(counts["verified"]),
                    str(counts["falsified"]),
                    str(counts["unknown"]),
                    f"{elapsed:.1f}",
                    transfer_cell,
                ],
                widths,
            )
            + "\n"
        )
        stream.flush()
    stream.write(
        f"\ntotal: {totals['verified']} verified, {totals['falsified']} falsified, "
        f"{totals['unknown']} unknown in {time.perf_counter() - t_all:.1f}s\n"
    )
    return 0


def _try_transfer(network: Any, props: list[Any], results: list[Any], timeout: float) -> str:
    """Prune 20% of the weights and transfer the verified certificates, if available."""
    try:
        from nncert.certificates import certificate_from_result, transfer
        from nncert.compression import magnitude_prune
    except ImportError:
        return "-"
    if not network.is_piecewise_linear:
        return "-"
    pruned, _record = magnitude_prune(network, 0.2)
    moved = tried = 0
    for prop, res in zip(props, results):
        if res.verdict is not Verdict.VERIFIED:
            continue
        tried += 1
        cert = certificate_from_result(network, prop, res)
        out = transfer(cert, network, pruned, verify_fallback=False)
        moved += int(bool(getattr(out, "transferred", False)))
    return f"{moved}/{tried} to 20%-pruned" if tried else "-"


__all__ = ["run_demo"]
