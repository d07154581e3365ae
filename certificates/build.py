"""Building certificates from verification results.

:func:`certificate_from_result` turns any :class:`~nncert.verify.result.VerificationResult`
into a :class:`~nncert.certificates.model.Certificate`:

========================  ====================================================================
result                    evidence
========================  ====================================================================
VERIFIED by ibp/crown     :class:`BoundEvidence`, row bounds recomputed with the same method
VERIFIED by bab/relu_bab  :class:`BabEvidence`: the bound presolve plus, for every other case,
                          the search's proof tree (``result.proofs``)
VERIFIED by milp, ...     :class:`MilpEvidence` from the solver's records plus the presolve;
                          cases closed by a search carry its tree, and with ``reprove_time``
                          the others are re-proved by the project's own search so that they
                          carry one too (else they rest on the solver's word)
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
from nncert.verify.result import CaseContext, Verdict, VerificationResult
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


def _milp_evidence(
    result: VerificationResult, presolve: BoundEvidence, opts: dict[str, Any]
) -> MilpEvidence:
    recs: list[MilpCase] = []
    for rec in result.stats.get("milp", []):
        obj, bnd = _opt(rec.get("objective")), _opt(rec.get("bound"))
        status = str(rec.get("status", ""))
        gap = None
        if obj is not None and bnd is not None and math.isfinite(obj - bnd):
            gap = obj - bnd
        recs.append(MilpCase(int(rec["case"]), status, obj, bnd, gap))
    # in 'auto', ReLU-phase branch and bound may close some cases before the MILP runs
    for rec in result.stats.get("relu_bab", []):
        if rec.get("status") == "verified":
            recs.append(
                MilpCase(int(rec["case"]), "optimal", None, _opt(rec.get("lower_bound")), None)
            )
    return MilpEvidence(
        solver=result.solver or str(opts.get("solver", "")),
        exact=True,  # the pipeline only closes cases with an exact solver
        cases=tuple(recs),
        tolerance=float(opts.get("milp_tolerance", 1e-6)),
        presolve=presolve,
    )


#: complete plug-in methods whose per-case records (``stats[method]``: case, status,
#: lower_bound) are stored as exact-solver evidence: their pipeline stage closes a case only
#: on an exact solve of a sound formulation (Benders with an exact master, Model 2's sound
#: over-approximation, window bounds from dual bounds)
PLUGIN_METHODS = ("benders", "model2", "window")


def _plugin_evidence(
    result: VerificationResult, presolve: BoundEvidence, opts: dict[str, Any], method: str
) -> MilpEvidence:
    recs: list[MilpCase] = []
    for rec in result.stats.get(method, []):
        lb = _opt(rec.get("lower_bound"))
        status = "optimal" if rec.get("status") == "verified" else str(rec.get("status", ""))
        recs.append(MilpCase(int(rec["case"]), status, None, lb, None))
    solver = result.solver or str(opts.get("solver", ""))
    return MilpEvidence(
        solver=f"{method}/{solver}" if solver else method,
        exact=True,
        cases=tuple(recs),
        tolerance=float(opts.get("milp_tolerance", 1e-6)),
        presolve=presolve,
    )


def _bab_evidence(result: VerificationResult, presolve: BoundEvidence, search: str) -> BabEvidence:
    recs: dict[int, BabCase] = {}
    for rec in result.stats.get("bab", []):
        i = int(rec["case"])
        recs[i] = BabCase(
            i,
            str(rec.get("status", "")),
            _opt(rec.get("lower_bound")),
            int(rec.get("nodes") or 0),
            result.proofs.get(i),
        )
    for rec in result.stats.get("relu_bab", []):
        i = int(rec["case"])
        recs[i] = BabCase(
            i,
            str(rec.get("status", "")),
            _opt(rec.get("lower_bound")),
            int(rec.get("nodes") or 0),
            result.proofs.get(i),
        )
    cases = tuple(recs[i] for i in sorted(recs))
    return BabEvidence(
        method=search, nodes=sum(r.nodes for r in cases), cases=cases, presolve=presolve
    )


#: re-proving a MILP's verdict: input splits when the input has at most this many dimensions
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


def _with_trees(
    ev: MilpEvidence,
    network: Network,
    prop: Property,
    result: VerificationResult,
    reprove_time: float | None,
) -> MilpEvidence:
    """Attach the search trees of ``result`` and (within ``reprove_time``) re-proofs to the
    MILP records of cases the presolve does not close."""
    deadline = None if reprove_time is None else time.perf_counter() + reprove_time
    assert ev.presolve is not None
    pre = ev.presolve.case_lower
    cases: list[MilpCase] = []
    for rec in ev.cases:
        i = rec.case_index
        tree = result.proofs.get(i)
        if tree is None and deadline is not None and not pre[i] > 0.0 and rec.tree is None:
            left = deadline - time.perf_counter()
            tree = reprove_case(network, prop.cases[i], i, left)
        cases.append(dataclasses.replace(rec, tree=tree) if tree is not None else rec)
    return dataclasses.replace(ev, cases=tuple(cases))


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
    if method in ("ibp", "crown", "alpha-crown"):
        if method == "alpha-crown":
            presolve = bound_evidence(network, prop, "alpha-crown")
        bad = [i for i, v in enumerate(presolve.case_lower) if not v > 0.0]
        if bad:
            raise CertificateError(
                f"result claims VERIFIED by {method}, but recomputed bounds do not prove "
                f"case(s) {bad}"
            )
        return presolve
    ev: MilpEvidence | BabEvidence
    if method in ("bab", "relu_bab"):
        search = "input-split+crown" if method == "bab" else "relu-split"
        ev = _bab_evidence(result, presolve, search)
        untreed = [
            r
            for r in ev.cases
            if r.status == "verified"
            and r.tree is None
            and not presolve.case_lower[r.case_index] > 0
        ]
        if untreed:
            # some leaves were closed by a solver (e.g. a leaf MILP): the search's verdict
            # rests on the solver's word unless the case is re-proved
            recs = tuple(
                MilpCase(r.case_index, "optimal", None, r.lower_bound, None, r.tree)
                for r in ev.cases
                if r.status == "verified"
            )
            solver = result.solver or str(opts.get("solver", "highs"))
            attested = MilpEvidence(
                f"{method}/{solver}", True, recs, float(opts.get("milp_tolerance", 1e-6)), presolve
            )
            ev = _with_trees(attested, network, prop, result, reprove_time)
    elif method == "milp":
        ev = _with_trees(
            _milp_evidence(result, presolve, opts), network, prop, result, reprove_time
        )
    elif method in PLUGIN_METHODS:
        ev = _with_trees(
            _plugin_evidence(result, presolve, opts, method), network, prop, result, reprove_time
        )
    else:
        raise CertificateError(
            f"cannot build evidence for a VERIFIED result decided by method {method!r}"
        )
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
