"""Plots of benchmark results (matplotlib with the Agg backend, imported lazily).

:func:`cactus_plot` draws the VNN-COMP-style cactus plot: for every method/solver line, the
solve times of its solved instances sorted increasingly against ``1..n`` (left panel, log
time axis, a dashed timeout line) and the cumulative time against the number of instances
solved (right panel).
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path

from nncert.verify.fileio import write_atomic


def cactus_plot(
    times: Mapping[str, Sequence[float]],
    path: str | Path,
    *,
    timeout: float | None = None,
    title: str = "",
) -> Path:
    """Write a cactus plot as PNG.

    Args:
        times: line label (``"method/solver"``) -> run times of the *solved* instances.
        path: output file (``.png``).
        timeout: draws a horizontal timeout line on the left panel when given.
        title: figure title.

    Returns:
        The path written.
    """
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, (ax_sorted, ax_cum) = plt.subplots(1, 2, figsize=(10, 4.2))
    try:
        any_line = False
        for label in sorted(times):
            ts = sorted(max(float(t), 1e-4) for t in times[label])
            n = len(ts)
            if n == 0:  # listed in both legends with its count, nothing drawn
                ax_sorted.plot([], [], label=f"{label} (0)")
                ax_cum.plot([], [], label=f"{label} (0)")
                continue
            any_line = True
            xs = list(range(1, n + 1))
            cum = []
            acc = 0.0
            for t in ts:
                acc += t
                cum.append(acc)
            ax_sorted.step(xs, ts, where="post", label=f"{label} ({n})")
            ax_cum.step(xs, cum, where="post", label=f"{label} ({n})")
        if timeout is not None:
            ax_sorted.axhline(timeout, color="grey", linestyle="--", linewidth=1, label="timeout")
        for ax, ylab in ((ax_sorted, "time per instance [s]"), (ax_cum, "cumulative time [s]")):
            ax.set_xlabel("instances solved")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_ylabel(ylab)
            if any_line:
                ax.set_yscale("log")
            ax.grid(True, which="both", alpha=0.3)
            if ax.get_legend_handles_labels()[0]:  # legend() warns on an empty axis
                ax.legend(fontsize="small", loc="upper left")
        ax_sorted.set_title("sorted solve times")
        ax_cum.set_title("cumulative solve time")
        if title:
            fig.suptitle(title)
        fig.tight_layout()
        out = Path(path)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=100)
        write_atomic(out, buf.getvalue())
    finally:
        plt.close(fig)
    return out


__all__ = ["cactus_plot"]
