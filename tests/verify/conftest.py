"""Fixtures for the verify tests: the shared VNN-COMP benchmarks beside the repository."""

from __future__ import annotations

from pathlib import Path

import pytest

#: ``<repo>/../shared/benchmarks`` (CI clones main with a copy of shared/ beside it)
BENCHMARKS = Path(__file__).resolve().parents[2].parent / "shared" / "benchmarks"


@pytest.fixture(scope="session")
def vnncomp_dir() -> Path:
    """The ``vnncomp`` folder of the shared benchmarks (skips when absent)."""
    path = BENCHMARKS / "vnncomp"
    if not path.is_dir():
        pytest.skip(f"shared benchmarks not found at {path}")
    return path
