"""CI reports of ``nncert certify``: ``report.json``, ``junit.xml`` and ``summary.md``.

* **report.json** (:func:`write_json`): versioned (``"schema_version": [1, 0]``,
  ``"format": "nncert-certify-report"``), strict JSON (no NaN/inf: non-finite numbers become
  ``null``). One object per property with its id, verdict, reason, seconds, ``cached``,
  certificate path, fingerprints, cache key, the previous verdict and a ``regression`` flag.
* **junit.xml** (:func:`write_junit`, ECOSYSTEM.md section 5.2): one ``<testsuite>`` per
  model with ``<properties>`` (model path, network sha256, tool version, method, solver), one
  ``<testcase classname="nncert.<model>" name="<property>" time="...">`` per property;
  falsified -> ``<failure type="Counterexample">``, unknown -> ``<skipped>`` with
  ``allow_unknown`` else ``<failure type="Unknown">``, a crash -> ``<error>``; a regression
  adds ``type="Regression"`` to the failure. Written with ``xml.etree`` (no dependency).
* **summary.md** (:func:`render_summary`, section 5.3): a GitHub-flavoured Markdown table of
  verdict counts, then one row per property (failures first), truncated with a note to stay
  under 1 MiB (the ``$GITHUB_STEP_SUMMARY`` cap). :func:`append_step_summary` appends it to
  the file named by ``GITHUB_STEP_SUMMARY`` when set.
"""

from __future__ import annotations

import json
import math
import os
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from nncert.verify.cache import write_atomic

#: version of report.json (compare as int tuples)
REPORT_VERSION: tuple[int, int] = (1, 1)
REPORT_FORMAT = "nncert-certify-report"

#: GitHub's step summary cap is 1024 KiB; stay below it
SUMMARY_LIMIT = 1024 * 1024 - 4096

EXIT_VERIFIED = 0
EXIT_FALSIFIED = 1
EXIT_UNKNOWN = 2
EXIT_INPUT_ERROR = 3
EXIT_INTERNAL = 4
#: a property verified by the previous run is now unknown or falsified (and none falsified)
EXIT_REGRESSION = 5

VERDICTS: tuple[str, ...] = ("verified", "falsified", "unknown", "error")


def _finite(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {str(k): _finite(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_finite(x) for x in v]
    return v


@dataclass(frozen=True)
class PropertyReport:
    """Outcome of one (model, property) pair.

    Attributes:
        id: unique id ``"<model>/<property>"`` (stable across runs; used for regressions).
        model: the model's name in the manifest.
        model_path: the model path or ``example:NAME``.
        property: the property's name.
        kind: ``"vnnlib"``, ``"example"`` or ``"robustness"``.
        source: where the property came from (file, example index, input file).
        verdict: ``"verified"``, ``"falsified"``, ``"unknown"`` or ``"error"``.
        reason: the verification reason (``"crown"``, ``"timeout"``, ``"budget"``...).
        time: seconds spent (checking the cached certificate when ``cached``).
        cached: served from the certificate cache.
        certificate: path of the written certificate, relative to the output directory.
        network_fingerprint: :meth:`Network.fingerprint`.
        property_fingerprint: :func:`nncert.certificates.property_fingerprint`.
        cache_key: the cache key.
        method: the deciding method.
        margin_lower: smallest proven case lower bound (``None`` if none).
        counterexample: the counterexample (``Counterexample.to_dict()``) when falsified.
        previous_verdict: the verdict of the previous run (``None`` if unknown).
        regression: previously verified, now unknown or falsified.
        error: the error message when ``verdict == "error"``.
        cache_rejected: why a cached certificate was not served (rejected by the checker, or
            solver-attested), the property then being verified afresh; ``None``: not so.
        derived_from: for a model declared ``derived_from`` another, the id of the parent's
            same property (``None`` otherwise).
        transfer: ``"transferred"`` (decided by carrying the parent's certificate) or
            ``"re-verified"`` (the transfer did not apply); ``None`` when no transfer was tried.
        transfer_time: seconds of the transfer attempt.
        time_saved: estimated seconds saved by the transfer (the parent's verification time
            minus the transfer time; negative when a failed attempt cost time).
        transfer_reason: the rule that carried the certificate, or why none did.
    """

    id: str
    model: str
    model_path: str
    property: str
    kind: str
    source: str
    verdict: str
    reason: str = ""
    time: float = 0.0
    cached: bool = False
    certificate: str | None = None
    network_fingerprint: str = ""
    property_fingerprint: str = ""
    cache_key: str = ""
    method: str = ""
    margin_lower: float | None = None
    counterexample: dict[str, Any] | None = None
    previous_verdict: str | None = None
    regression: bool = False
    error: str | None = None
    cache_rejected: str | None = None
    derived_from: str | None = None
    transfer: str | None = None
    transfer_time: float | None = None
    time_saved: float | None = None
    transfer_reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dictionary."""
        d = _finite(asdict(self))
        d["time"] = round(float(self.time), 6)
        return d


@dataclass(frozen=True)
class Report:
    """The outcome of one ``nncert certify`` run.

    Attributes:
        manifest: the manifest path.
        properties: per property, in manifest order.
        duration: wall-clock seconds of the run.
        allow_unknown: whether unknown verdicts pass.
        options: the verification options used (JSON-safe).
        budget: ``{"per_property": s, "total": s or None}``.
        created: UTC ISO-8601 timestamp.
        tool_version: nncert version.
        interrupted: the run was interrupted (remaining properties are unknown).
    """

    manifest: str
    properties: tuple[PropertyReport, ...]
    duration: float = 0.0
    allow_unknown: bool = False
    options: dict[str, Any] = field(default_factory=dict)
    budget: dict[str, Any] = field(default_factory=dict)
    created: str = ""
    tool_version: str = ""
    interrupted: bool = False

    def count(self, verdict: str) -> int:
        """Number of properties with ``verdict``."""
        return sum(p.verdict == verdict for p in self.properties)

    @property
    def n_cached(self) -> int:
        """Properties served from the cache."""
        return sum(p.cached for p in self.properties)

    @property
    def regressions(self) -> tuple[PropertyReport, ...]:
        """Properties verified before and now unknown or falsified."""
        return tuple(p for p in self.properties if p.regression)

    @property
    def exit_code(self) -> int:
        """0 all verified; 1 any falsified; 4 any error; 5 a regression; 2 unknown (0 with
        ``allow_unknown``), in that order of precedence."""
        if self.count("falsified"):
            return EXIT_FALSIFIED
        if self.count("error"):
            return EXIT_INTERNAL
        if self.regressions:
            return EXIT_REGRESSION
        if self.count("unknown") and not self.allow_unknown:
            return EXIT_UNKNOWN
        return EXIT_VERIFIED

    def summary(self) -> dict[str, int]:
        """Counts: total, each verdict, cached, regressions, transferred and re-verified
        (properties of models declared ``derived_from`` another)."""
        out = {"total": len(self.properties)}
        out.update({v: self.count(v) for v in VERDICTS})
        out["cached"] = self.n_cached
        out["regressions"] = len(self.regressions)
        out["transferred"] = sum(p.transfer == "transferred" for p in self.properties)
        out["re_verified"] = sum(p.transfer == "re-verified" for p in self.properties)
        return out

    def transfer_line(self) -> str | None:
        """One sentence on the transfers from parent models (``None`` when none was tried)."""
        tried = [p for p in self.properties if p.transfer is not None]
        if not tried:
            return None
        done = [p for p in tried if p.transfer == "transferred"]
        saved = [p.time_saved for p in tried if p.time_saved is not None]
        spent = sum(p.transfer_time or 0.0 for p in done)
        text = (
            f"{len(done)} of {len(tried)} properties of derived models transferred from their "
            f"parent's certificates in {spent:.2f}s, {len(tried) - len(done)} re-verified"
        )
        if saved:
            text += f"; estimated time saved {sum(saved):.2f}s"
        return text

    def to_dict(self) -> dict[str, Any]:
        """The versioned, JSON-safe report document."""
        return {
            "format": REPORT_FORMAT,
            "schema_version": list(REPORT_VERSION),
            "tool_version": self.tool_version,
            "manifest": self.manifest,
            "created": self.created,
            "duration": round(float(self.duration), 6),
            "allow_unknown": self.allow_unknown,
            "interrupted": self.interrupted,
            "options": _finite(self.options),
            "budget": _finite(self.budget),
            "summary": self.summary(),
            "exit_code": self.exit_code,
            "properties": [p.to_dict() for p in self.properties],
        }


# --------------------------------------------------------------------------------------------
# JSON
# --------------------------------------------------------------------------------------------


def write_json(report: Report, path: str | os.PathLike[str]) -> None:
    """Write ``report.json`` (atomically, strict JSON)."""
    write_atomic(Path(path), json.dumps(report.to_dict(), indent=1, allow_nan=False) + "\n")


def read_previous_verdicts(path: str | os.PathLike[str]) -> dict[str, str] | None:
    """``{property id: verdict}`` from an earlier ``report.json`` (``None`` if unusable)."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get("format") != REPORT_FORMAT:
        return None
    if tuple(doc.get("schema_version", ()))[:1] != (REPORT_VERSION[0],):
        return None
    props = doc.get("properties")
    if not isinstance(props, list):
        return None
    return {
        str(p["id"]): str(p["verdict"])
        for p in props
        if isinstance(p, dict) and "id" in p and "verdict" in p
    }


# --------------------------------------------------------------------------------------------
# JUnit XML
# --------------------------------------------------------------------------------------------


def _cex_text(p: PropertyReport, limit: int = 20) -> str:
    cex = p.counterexample or {}
    x = cex.get("input", [])
    y = cex.get("output", [])
    head = ", ".join(f"{v:.6g}" for v in x[:limit]) + (", ..." if len(x) > limit else "")
    out = ", ".join(f"{v:.6g}" for v in y[:limit]) + (", ..." if len(y) > limit else "")
    return f"case {cex.get('case')}: violation {cex.get('violation')}\ninput [{head}]\n" + (
        f"output [{out}]"
    )


def junit_tree(report: Report) -> ET.ElementTree:
    """The JUnit XML tree (``<testsuites>`` root, one suite per model)."""
    return ET.ElementTree(junit_element(report))


def junit_element(report: Report) -> ET.Element:
    """The ``<testsuites>`` element of :func:`junit_tree`."""
    suites: dict[str, list[PropertyReport]] = {}
    for p in report.properties:
        suites.setdefault(p.model, []).append(p)
    root = ET.Element("testsuites", name="nncert certify")
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0, "time": 0.0}
    for model, props in suites.items():
        suite = ET.SubElement(root, "testsuite", name=f"nncert.{model}")
        meta = ET.SubElement(suite, "properties")
        first = props[0]
        for name, value in (
            ("model", first.model_path),
            ("model_sha256", first.network_fingerprint),
            ("tool_version", report.tool_version),
            ("method", str(report.options.get("method", ""))),
            ("solver", str(report.options.get("solver", ""))),
        ):
            ET.SubElement(meta, "property", name=name, value=value)
        counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0, "time": 0.0}
        for p in props:
            case = ET.SubElement(
                suite,
                "testcase",
                classname=f"nncert.{model}",
                name=p.property,
                time=f"{max(p.time, 0.0):.6f}",
            )
            cprops = ET.SubElement(case, "properties")
            for name, value in (
                ("verdict", p.verdict),
                ("reason", p.reason),
                ("cached", str(p.cached).lower()),
                ("kind", p.kind),
                ("property_sha256", p.property_fingerprint),
            ):
                ET.SubElement(cprops, "property", name=name, value=value)
            counts["tests"] += 1
            counts["time"] += max(p.time, 0.0)
            regress = " (regression: verified before)" if p.regression else ""
            if p.verdict == "falsified":
                el = ET.SubElement(
                    case,
                    "failure",
                    type="Regression" if p.regression else "Counterexample",
                    message=f"falsified: counterexample found{regress}",
                )
                el.text = _cex_text(p)
                counts["failures"] += 1
            elif p.verdict == "error":
                el = ET.SubElement(case, "error", type="Error", message=p.error or "error")
                counts["errors"] += 1
            elif p.verdict == "unknown":
                msg = f"unknown ({p.reason}){regress}"
                if p.regression:
                    ET.SubElement(case, "failure", type="Regression", message=msg)
                    counts["failures"] += 1
                elif report.allow_unknown:
                    ET.SubElement(case, "skipped", message=msg)
                    counts["skipped"] += 1
                else:
                    ET.SubElement(case, "failure", type="Unknown", message=msg)
                    counts["failures"] += 1
        for k, v in counts.items():
            suite.set(k, f"{v:.6f}" if k == "time" else str(v))
            totals[k] += v
    for k, v in totals.items():
        root.set(k, f"{v:.6f}" if k == "time" else str(int(v)))
    ET.indent(root)
    return root


def write_junit(report: Report, path: str | os.PathLike[str]) -> None:
    """Write ``junit.xml`` (atomically)."""
    root = junit_element(report)
    text = ET.tostring(root, encoding="unicode", xml_declaration=False)
    write_atomic(Path(path), '<?xml version="1.0" encoding="utf-8"?>\n' + text + "\n")


# --------------------------------------------------------------------------------------------
# Markdown summary
# --------------------------------------------------------------------------------------------

_ICONS: Mapping[str, str] = {
    "verified": "✅ verified",
    "falsified": "❌ falsified",
    "unknown": "⚠️ unknown",
    "error": "💥 error",
}


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_summary(report: Report, *, limit: int = SUMMARY_LIMIT) -> str:
    """GitHub-flavoured Markdown: totals, then one row per property (problems first).

    The text stays below ``limit`` bytes (UTF-8); rows that do not fit are replaced by a note.
    """
    s = report.summary()
    status = {
        0: "passed",
        1: "counterexample found",
        2: "unknown results",
        4: "errors",
        5: "regression",
    }.get(report.exit_code, str(report.exit_code))
    lines = [
        f"## nncert certify: {status} (exit {report.exit_code})",
        "",
        "| properties | ✅ verified | ❌ falsified | ⚠️ unknown | 💥 error | cached "
        "| regressions | time |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| {s['total']} | {s['verified']} | {s['falsified']} | {s['unknown']} | {s['error']} "
        f"| {s['cached']}/{s['total']} | {s['regressions']} | {report.duration:.1f}s |",
        "",
    ]
    transfer = report.transfer_line()
    if transfer is not None:
        lines += [f"**Transfer**: {_md(transfer)} (see report.json for each property).", ""]
    if report.regressions:
        lines.append(
            "**Regressions** (verified by the previous run): "
            + ", ".join(f"`{_md(p.id)}`" for p in report.regressions)
        )
        lines.append("")
    lines += [
        "| property | model | verdict | reason | time | cached |",
        "|---|---|---|---|---:|:---:|",
    ]
    order = {"falsified": 0, "error": 1, "unknown": 2, "verified": 3}
    rows = sorted(report.properties, key=lambda p: (not p.regression, order.get(p.verdict, 9)))
    head = "\n".join(lines) + "\n"
    size = len(head.encode())
    body: list[str] = []
    for k, p in enumerate(rows):
        verdict = _ICONS.get(p.verdict, p.verdict) + (" (regression)" if p.regression else "")
        reason = p.error if p.verdict == "error" and p.error else p.reason
        row = (
            f"| `{_md(p.property)}` | {_md(p.model)} | {verdict} | {_md(reason)} "
            f"| {p.time:.2f}s | {'yes' if p.cached else ''} |\n"
        )
        note = (
            f"\n_{len(rows) - k} more properties not shown (summary size limit); "
            "see report.json._\n"
        )
        if size + len(row.encode()) + len(note.encode()) > limit:
            body.append(note)
            break
        body.append(row)
        size += len(row.encode())
    return head + "".join(body)


def write_summary(report: Report, path: str | os.PathLike[str]) -> str:
    """Write ``summary.md`` (atomically); returns the text."""
    text = render_summary(report)
    write_atomic(Path(path), text)
    return text


def append_step_summary(text: str, env: Mapping[str, str] | None = None) -> bool:
    """Append ``text`` to ``$GITHUB_STEP_SUMMARY`` when set; returns whether it did."""
    target = (env if env is not None else os.environ).get("GITHUB_STEP_SUMMARY")
    if not target:
        return False
    with open(target, "a", encoding="utf-8") as fh:
        fh.write(text if text.endswith("\n") else text + "\n")
    return True


__all__ = [
    "EXIT_FALSIFIED",
    "EXIT_INPUT_ERROR",
    "EXIT_INTERNAL",
    "EXIT_REGRESSION",
    "EXIT_UNKNOWN",
    "EXIT_VERIFIED",
    "REPORT_FORMAT",
    "REPORT_VERSION",
    "PropertyReport",
    "Report",
    "append_step_summary",
    "junit_element",
    "junit_tree",
    "read_previous_verdicts",
    "render_summary",
    "write_json",
    "write_junit",
    "write_summary",
]
