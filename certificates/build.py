"""Building certificates from verification results.

:func:`certificate_from_result` turns any :class:`~nncert.verify.result.VerificationResult`
into a :class:`~nncert.certificates.model.Certificate`:

========================  ====================================================================
result                    evidence
========================  ====================================================================
VERIFIED by ibp/crown     :class:`BoundEvidence`, row bounds recomputed with the same method
VERIFIED by a search      :class:`BabEvidence`: the bound presolve plus, for every other case,
(bab, relu_bab, ...)      the search's proof tree (``SearchCaseEvidence.proof``)
VERIFIED by milp or any   :class:`MilpEvidence` from the solver and search records in
other complete method     ``result.evidence`` plus the presolve; records keep their proof
                          trees, and with ``reprove_time`` the others are re-proved by the
                          project's own search (else they rest on the solver's word)
FALSIFIED                 :class:`CounterexampleEvidence` from ``result.counterexample``
UNKNOWN                   :class:`NoEvidence` with the partial per-case bounds
========================  ====================================================================

The builder never upgrades a verdict: a VERIFIED result whose evidence cannot be assembled
(e.g. a case closed by no recorded means) raises :class:`CertificateError` rather than emitting
an unsupported claim.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from nncert.certificates.model import (
    BOUND_METHODS,
    SCHEMA_VERSION,
    BabCase,
    BabEvidence,
    BoundEvidence,
    Certificate,
    CounterexampleEvidence,
    Evidence,
    MilpCase,
    MilpEvidence,
    NetworkRef,
    NoEvidence,
    Provenance,
)
from nncert.verify.bab import BabOptions, bab_verify
from nncert.verify.bounds import spec_bounds
from nncert.verify.errors import CertificateError
from nncert.verify.network import Network
from nncert.verify.options import VerifyOptions
from nncert.verify.proof import ProofTree
from nncert.verify.relu_bab import relu_bab_case
from nncert.verify.result import (
    BoundCaseEvidence,
    CaseContext,
    SearchCaseEvidence,
    SolverCaseEvidence,
    Verdict,
    VerificationResult,
)
from nncert.verify.spec import Property, UnsafeCase

if TYPE_CHECKING:
    from nncert.verify.bounds import BoundMethod

#: solver name -> distribution whose version is recorded in the provenance
SOLVER_PACKAGES: dict[str, str] = {
    "highs": "highspy",
    "pyomo": "pyomo",
    "dimod": "dimod",
    "exact-qubo": "dimod",
}


def options_dict(options: Any) -> dict[str, Any]:
    """Options as a plain dict (dataclass, mapping or ``None``)."""
    if options is None:
        return {}
    if dataclasses.is_dataclass(options) and not isinstance(options, type):
        return dataclasses.asdict(options)
    if isinstance(options, Mapping):
        return dict(options)
    raise CertificateError(f"options={options!r} must be a dataclass, a mapping or None")


def solver_versions(names: list[str]) -> dict[str, str]:
    """Installed versions of the solver packages behind ``names`` (no imports)."""
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str] = {}
    for name in names:
        if not name:
            continue
        pkg = SOLVER_PACKAGES.get(name.split(":", 1)[0], name)
        try:
            out[name] = version(pkg)
        except (PackageNotFoundError, ValueError):
            out[name] = "unknown"
    return out


def _bound_method(method: str) -> BoundMethod:
    if method not in ("ibp", "crown", "alpha-crown"):
        raise CertificateError(f"bound method {method!r} is not one of ibp, crown, alpha-crown")
    return cast("BoundMethod", method)


def bound_evidence(network: Network, prop: Property, method: str = "crown") -> BoundEvidence:
    r"""Row-wise bounds of every case, :math:`\ell_{i,r} \le \min_{x \in X_i} g_{i,r}(x)`.

    ``case_lower[i] = max_r row_lower[i][r]`` (``-inf`` for a case with no rows).
    """

    rows: list[tuple[float, ...]] = []
    cases: list[float] = []
    for case in prop.cases:
        if case.n_rows == 0:
            rows.append(())
            cases.append(-math.inf)
            continue
        lo, _ = spec_bounds(network, case.input_box, case.A, -case.b, method=_bound_method(method))
        r = tuple(float(v) for v in lo)
        rows.append(r)
        cases.append(max(r))
    return BoundEvidence(method, tuple(cases), tuple(rows), "float64-nearest")


def _opt(v: Any) -> float | None:
    if v is None:
        return None
    f = float(v)
    return None if math.isnan(f) else f


def _solver_case(rec: SolverCaseEvidence | SearchCaseEvidence) -> MilpCase:
    """A solver-attested record of the schema: the solver's status (a method's "verified"
    reads "optimal"), objective, dual bound and gap; a search's record keeps its proof tree."""
    status = "optimal" if rec.status == "verified" else rec.status
    if isinstance(rec, SearchCaseEvidence):
        return MilpCase(rec.case, status, None, rec.lower_bound, None, rec.proof)
    obj, bnd = rec.objective, rec.bound
    gap = None
    if obj is not None and bnd is not None and math.isfinite(obj - bnd):
        gap = obj - bnd
    return MilpCase(rec.case, status, obj, bnd, gap)


#: the schema's name of each search's branching scheme
SEARCH_NAMES = {"bab": "input-split+crown", "relu_bab": "relu-split"}

#: re-proving a solver's verdict: input splits when the input has at most this many dimensions
REPROVE_INPUT_DIMS = 8


def reprove_case(
    network: Network, case: UnsafeCase, index: int, time_limit: float
) -> ProofTree | None:
    r"""Re-prove that ``case`` is unreachable with the project's own search, for its tree.

    Input-split branch and bound for inputs of at most :data:`REPROVE_INPUT_DIMS` dimensions,
    else ReLU-phase branch and bound for ReLU networks. ``None`` when neither applies or the
    search does not finish within ``time_limit`` seconds.
    """
    if time_limit <= 0.05:
        return None
    deadline = time.perf_counter() + time_limit
    if network.n_inputs <= REPROVE_INPUT_DIMS:
        res = bab_verify(
            network,
            Property((case,)),
            time_limit=time_limit,
            options=BabOptions(attack_budget_s=0.0),
        )
        trees = res.stats.get("proofs", [])
        if res.verdict is Verdict.VERIFIED and trees and trees[0] is not None:
            return cast(ProofTree, trees[0])
        return None
    ctx = CaseContext(
        options=VerifyOptions(time_limit=time_limit),
        deadline=deadline,
        rng=np.random.default_rng(0),
        progress=None,
        case_index=index,
        best_x=None,
    )
    out = relu_bab_case(network, case, ctx)
    return out.proof if out.status == "verified" else None


def _reprove(
    ev: MilpEvidence, network: Network, prop: Property, reprove_time: float | None
) -> MilpEvidence:
    """Give the records without a proof tree (cases the presolve does not close) one, by
    re-proving them within ``reprove_time`` seconds in all."""
    if reprove_time is None:
        return ev
    deadline = time.perf_counter() + reprove_time
    pre = ev.presolve.case_lower if ev.presolve is not None else ()
    cases: list[MilpCase] = []
    for rec in ev.cases:
        i = rec.case_index
        tree = rec.tree
        closed = i < len(pre) and pre[i] > 0.0
        if tree is None and not closed and rec.status != "infeasible" and 0 <= i < len(prop.cases):
            tree = reprove_case(network, prop.cases[i], i, deadline - time.perf_counter())
        cases.append(dataclasses.replace(rec, tree=tree) if tree is not rec.tree else rec)
    return dataclasses.replace(ev, cases=tuple(cases))


def _complete_evidence(
    network: Network,
    prop: Property,
    result: VerificationResult,
    presolve: BoundEvidence,
    opts: dict[str, Any],
    reprove_time: float | None,
) -> MilpEvidence | BabEvidence:
    """The evidence of a VERIFIED result decided by a complete method, from the typed records
    in ``result.evidence`` (cases closed by bounds are covered by ``presolve``).

    When every case the presolve leaves open was closed by a search with a proof tree, the
    evidence is :class:`BabEvidence` (independently checkable); otherwise
    :class:`MilpEvidence` whose records carry the trees they have, the others re-proved
    within ``reprove_time`` or resting on the solver's word.
    """
    method = result.method
    records = [r for r in result.evidence if not isinstance(r, BoundCaseEvidence)]
    closing = [r for r in records if r.status == "verified"]
    needed = [r for r in closing if not presolve.case_lower[r.case] > 0.0]
    if needed and all(isinstance(r, SearchCaseEvidence) and r.proof is not None for r in needed):
        bab = [
            BabCase(r.case, r.status, r.lower_bound, r.nodes, r.proof)
            for r in closing
            if isinstance(r, SearchCaseEvidence)
        ]
        # other searches name their scheme in their trees' recipe ("activation-split")
        schemes = {
            str(c.tree.recipe["search"]) for c in bab if c.tree and "search" in c.tree.recipe
        }
        return BabEvidence(
            method=SEARCH_NAMES.get(
                method, schemes.pop() if len(schemes) == 1 else f"{method}-search"
            ),
            nodes=sum(r.nodes for r in bab),
            cases=tuple(bab),
            presolve=presolve,
        )
    # the deciding method's records first, then those of methods that closed cases before it
    # (in "auto", ReLU-phase branch and bound before the MILP)
    ordered = [r for r in records if r.method == method] + [
        r for r in records if r.method != method
    ]
    solver = result.solver or str(opts.get("solver", ""))
    if method != "milp":  # the MILP names its solver; other methods read "method/solver"
        solver = f"{method}/{solver}" if solver else method
    ev = MilpEvidence(
        solver=solver,
        # the pipeline closes a case only on an exact outcome
        exact=all(r.exact for r in ordered if isinstance(r, SolverCaseEvidence)),
        cases=tuple(_solver_case(r) for r in ordered),
        tolerance=float(opts.get("milp_tolerance", 1e-6)),
        presolve=presolve,
    )
    return _reprove(ev, network, prop, reprove_time)


def _verified_evidence(
    network: Network,
    prop: Property,
    result: VerificationResult,
    opts: dict[str, Any],
    reprove_time: float | None = None,
) -> Evidence:
    method = result.method
    bound_method = "ibp" if method == "ibp" else "crown"
    presolve = bound_evidence(network, prop, bound_method)
    if method in BOUND_METHODS:
        if method == "alpha-crown":
            presolve = bound_evidence(network, prop, "alpha-crown")
        bad = [i for i, v in enumerate(presolve.case_lower) if not v > 0.0]
        if bad:
            raise CertificateError(
                f"result claims VERIFIED by {method}, but recomputed bounds do not prove "
                f"case(s) {bad}"
            )
        return presolve
    if not method:
        raise CertificateError("cannot build evidence for a VERIFIED result decided by no method")
    ev = _complete_evidence(network, prop, result, presolve, opts, reprove_time)
    lower = ev.case_lower_bounds()
    bad = [
        i
        for i in range(len(prop.cases))
        if not (presolve.case_lower[i] > 0.0 or _closed_by_record(ev, i))
    ]
    if bad or len(lower) < len(prop.cases):
        raise CertificateError(
            f"result claims VERIFIED by {method}, but case(s) {bad} have no recorded proof"
        )
    return ev


def _closed_by_record(ev: MilpEvidence | BabEvidence, i: int) -> bool:
    if isinstance(ev, MilpEvidence):
        return any(
            r.case_index == i
            and r.status != "infeasible"
            and r.bound is not None
            and r.bound > ev.tolerance
            for r in ev.cases
        )
    return any(
        r.case_index == i
        and r.status == "verified"
        and r.lower_bound is not None
        and r.lower_bound > 0
        for r in ev.cases
    )


def certificate_from_result(
    network: Network,
    prop: Property,
    result: VerificationResult,
    *,
    options: Any = None,
    reprove_time: float | None = None,
) -> Certificate:
    """Build the certificate of ``result`` (any verdict) for ``prop`` on ``network``.

    Args:
        network: the verified network.
        prop: the property.
        result: what :func:`nncert.verify.verify` returned for them.
        options: the options used (a :class:`VerifyOptions`, a mapping or ``None``); recorded
            in the provenance.
        reprove_time: seconds for re-proving, with the project's own search, the cases a
            solver closed without a proof tree (``None``: no re-proof; such cases are
            solver-attested).

    Returns:
        The :class:`Certificate`; :func:`nncert.certificates.check` accepts it for ``network``.

    Raises:
        CertificateError: the result's verdict cannot be backed by evidence (e.g. a VERIFIED
            result from an unknown method), or a counterexample is missing.
        InvalidPropertyError: ``prop`` does not fit ``network``.
    """
    prop.check_network_shape(network.n_inputs, network.n_outputs, where="certificate")
    opts = options_dict(options)
    evidence: Evidence
    if result.verdict is Verdict.VERIFIED:
        evidence = _verified_evidence(network, prop, result, opts, reprove_time)
    elif result.verdict is Verdict.FALSIFIED:
        cex = result.counterexample
        if cex is None:
            raise CertificateError("a FALSIFIED result needs a counterexample")
        evidence = CounterexampleEvidence(
            x=np.asarray(cex.x, dtype=np.float64).reshape(-1),
            y=np.asarray(cex.y, dtype=np.float64).reshape(-1),
            case_index=int(cex.case_index),
            violation=float(cex.violation),
            onnx_checked=bool(cex.onnx_checked),
        )
    else:
        evidence = NoEvidence(
            reason=result.reason,
            case_lower=tuple(_opt(v) for v in result.margin_lower),
            case_upper=tuple(_opt(v) for v in result.margin_upper),
        )
    seed = opts.get("seed")
    prov = Provenance.current(
        method=result.method,
        options=opts,
        seed=int(seed) if isinstance(seed, (int, np.integer)) else None,
        time=float(result.time),
        solvers=solver_versions([result.solver]),
    )
    return Certificate(
        SCHEMA_VERSION, NetworkRef.from_network(network), prop, result.verdict, evidence, prov
    )


__all__ = ["bound_evidence", "certificate_from_result", "options_dict", "solver_versions"]
