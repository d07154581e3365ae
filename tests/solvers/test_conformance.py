"""Every installed MILP backend passes the shipped conformance suite (DESIGN.md 11.2)."""

from __future__ import annotations

import pytest

from nncert.solvers import available_solvers, get_solver
from nncert.solvers.testing import ConformanceCase, conformance_cases

SOLVERS = available_solvers("milp")
CASES = conformance_cases()


@pytest.mark.parametrize(
    ("solver_name", "case"),
    [(s, c) for s in SOLVERS for c in CASES],
    ids=[f"{s}-{c.name}" for s in SOLVERS for c in CASES],
)
def test_conformance(solver_name: str, case: ConformanceCase) -> None:
    case.run(get_solver(solver_name))


def test_every_case_name_is_unique() -> None:
    names = [c.name for c in CASES]
    assert len(names) == len(set(names))
