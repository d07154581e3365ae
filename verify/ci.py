"""``nncert certify MANIFEST``: certify models against properties in CI, with a cache.

A manifest is a small TOML file (read with :mod:`tomllib`) that lists models, their
properties, the time budgets and the verification options::

    # nncert.toml
    version = 1                          # optional; the only version is 1

    [options]                            # VerifyOptions fields (strict; not time_limit)
    method = "auto"                      # any registered method (nncert verify --help)
    solver = "highs"
    seed = 0

    [budget]
    per_property = 30.0                  # seconds per property (default 60)
    total = 600.0                        # seconds for the whole run (default: no limit)

    [[models]]
    name = "iris"                        # optional; default: example name or file stem
    path = "example:iris_relu"           # .onnx file (relative to the manifest) or example:NAME
    properties = [
      { examples = "all" },              # the bundled example's properties ("all" or [0, 2])
      { vnnlib = "specs/prop_1.vnnlib", timeout = 10.0 },
      { input = "x17.npy", label = 1, eps = 0.05 },              # L-inf robustness around x
      { name = "p", x = [0.2, 0.4, 0.1, 0.7], label = 0, eps = [0.01, 0.02] },
    ]

    [[models]]
    name = "iris-pruned"
    path = "iris_pruned.onnx"
    derived_from = "iris"                # compressed from "iris": transfer its certificates
    properties = [
      { name = "p", x = [0.2, 0.4, 0.1, 0.7], label = 0, eps = [0.01, 0.02] },
    ]

Property entries (exactly one of ``examples``, ``vnnlib``, ``input``/``x`` per entry):

* ``examples``: properties of a bundled example model (``path = "example:NAME"``);
  ids ``example<i>``;
* ``vnnlib``: a VNN-LIB 1.0/2.0 file; id: the file stem;
* robustness: centre ``input`` (an ``.npy`` file) or ``x`` (inline list), ``label``, ``eps``
  (a number or a list: one property each), optional ``domain = [lo, hi]`` (default
  ``[0, 1]``; ``false``: no clipping); id ``<name or file stem>_label<y>_eps<e>``;
* every entry may set ``name`` (the id, or its prefix for lists) and ``timeout`` (seconds).

Each property's id is ``<model name>/<property id>``; ids must be unique (they key the
regression check). Unknown keys anywhere are errors with a did-you-mean suggestion.

``derived_from`` names the model a model was compressed from (another model of the manifest;
no cycles; same numbers of inputs and outputs). Models are certified parents first; a
property of a derived model with the same id and the same property as one of its parent's is
first *transferred* (:func:`nncert.certificates.transfer.transfer`: proof-tree replay, or the
parent's margin plus a sound bound on the output difference; a counterexample only after it is
replayed on the derived model), within at most :data:`TRANSFER_SHARE` of its budget for the
tree replay, and verified directly only when the transfer does not apply (with the rest of its
budget). The report says per property ``transfer`` (``"transferred"``/``"re-verified"``),
``transfer_time``, ``time_saved`` (the parent's verification time minus the transfer time, an
estimate) and ``transfer_reason``. A cached transferred certificate is re-checked with the
parent's network and certificate.

:func:`run_manifest` verifies each (model, property) pair, serving it from a
:class:`~nncert.verify.cache.CertificateCache` when an entry with the same key (network
fingerprint, property fingerprint, config hash) exists *and* re-checks with
:func:`nncert.certificates.check` (the same independent checker as ``nncert check``, with the
property confirmed too). A cached certificate the checker rejects is reported
(``cache_rejected`` in the report, a line in the progress output) and the property is verified
afresh; one whose verdict rests on a solver's word (trust ``"solver-attested"``) is not served
unless ``accept_attested`` (``--accept-attested``). Only verified and falsified results are
cached (an unknown result is re-tried next time). Outputs in ``out_dir``: ``report.json``,
``junit.xml``, ``summary.md`` (also appended to ``$GITHUB_STEP_SUMMARY``) and
``certificates/<id>.json``.

The properties that the cache does not serve are verified in this process (``--jobs 1``), on a
local process pool (``--jobs N``) or on Dask (``--executor dask``: a local Dask cluster, or an
existing one with ``--address``), through :func:`nncert.verify.executors.run_each`. Models and
properties are loaded here and sent to the workers, and certificates, cache entries and reports
are made here from the returned results, so they are the same whatever ran the verification.

Exit codes of ``nncert certify`` (precedence from the top):

====  ==================================================================
1     at least one property falsified (a confirmed counterexample)
4     an internal error while verifying some property
5     regression: a property verified by the previous run is now unknown
      (or falsified, which exits 1 first)
2     at least one unknown/timeout (0 with ``--allow-unknown``)
0     every property verified (freshly or by a re-checked cached certificate)
3     manifest, model or property error, or no Dask scheduler at ``--address``
      (nothing is verified)
====  ==================================================================

The previous verdicts come from ``out_dir/report.json`` (kept from the last run) or, when it
is missing, from the cache's index.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import difflib
import json
import logging
import re
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nncert.certificates import (
    certificate_from_result,
    check,
    property_fingerprint,
    save_certificate,
)
from nncert.certificates.transfer import transfer
from nncert.verify.cache import CertificateCache, cache_key, config_hash, tool_version
from nncert.verify.cliutil import UsageError, load_model
from nncert.verify.errors import (
    InvalidNetworkError,
    InvalidOptionsError,
    InvalidPropertyError,
    NncertError,
    OutputPathError,
)
from nncert.verify.examples import load_example
from nncert.verify.executors import (
    CONNECT_TIMEOUT,
    EXECUTORS,
    WORKER_LOSS_RETRIES,
    resolve_executor,
    run_each,
)
from nncert.verify.fileio import check_output_dir, load_npy, same_file
from nncert.verify.options import VerifyOptions
from nncert.verify.pipeline import verify
from nncert.verify.reports import (
    EXIT_INPUT_ERROR,
    PropertyReport,
    Report,
    append_step_summary,
    read_previous_verdicts,
    write_json,
    write_junit,
    write_summary,
)
from nncert.verify.spec import MixedProperty, PolynomialProperty, Property, robustness_property
from nncert.verify.vnnlib import load_vnnlib

logger = logging.getLogger(__name__)

MANIFEST_VERSION = 1
DEFAULT_PER_PROPERTY = 60.0

_TOP_KEYS = ("version", "options", "budget", "models")
_BUDGET_KEYS = ("per_property", "total")
_MODEL_KEYS = ("name", "path", "properties", "derived_from")
#: verdicts a parent's certificate can carry to a derived model
VERDICTS_DECIDED = ("verified", "falsified")
#: share of a property's budget the tree replay of a transfer may use (the direct verification
#: that follows a failed transfer gets what the attempt left)
TRANSFER_SHARE = 0.3

_PROPERTY_KEYS = ("name", "timeout", "examples", "vnnlib", "input", "x", "label", "eps", "domain")


class ManifestError(NncertError, ValueError):
    """A manifest is malformed or refers to unusable models or properties (exit 3)."""


# --------------------------------------------------------------------------------------------
# Manifest
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PropertyEntry:
    """One entry of a model's ``properties`` list (validated, not yet loaded)."""

    kind: str
    values: Mapping[str, Any]
    where: str


@dataclass(frozen=True)
class ModelEntry:
    """One ``[[models]]`` entry."""

    name: str
    path: str
    properties: tuple[PropertyEntry, ...]
    where: str
    derived_from: str | None = None


@dataclass(frozen=True)
class Manifest:
    """A parsed manifest.

    Attributes:
        path: the manifest file.
        options: the verification options (``time_limit`` is set per property).
        per_property: seconds per property.
        total: seconds for the whole run (``None``: unlimited).
        models: the models.
    """

    path: Path
    options: Any
    per_property: float
    total: float | None
    models: tuple[ModelEntry, ...]

    @property
    def base(self) -> Path:
        """The directory relative paths are resolved against."""
        return self.path.parent


def _unknown_keys(table: Mapping[str, Any], allowed: Sequence[str], where: str) -> None:
    for key in table:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; known: {', '.join(allowed)}"
            raise ManifestError(f"{where}: unknown key {key!r}{hint}")


def _number(value: Any, where: str, *, positive: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ManifestError(f"{where}: expected a number, got {value!r}")
    v = float(value)
    if v != v or v in (float("inf"), float("-inf")) or (positive and v <= 0):
        raise ManifestError(
            f"{where}: {value!r} must be a finite number" + (" > 0" if positive else "")
        )
    return v


def _table(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ManifestError(f"{where}: expected a table, got {type(value).__name__}")
    return value


def _property_entry(raw: Any, where: str) -> PropertyEntry:
    t = _table(raw, where)
    _unknown_keys(t, _PROPERTY_KEYS, where)
    kinds = [k for k in ("examples", "vnnlib", "input", "x") if k in t]
    if len(kinds) != 1:
        raise ManifestError(
            f"{where}: give exactly one of 'examples', 'vnnlib', 'input' or 'x'"
            + (f" (got {', '.join(kinds)})" if kinds else "")
        )
    kind = {"examples": "example", "vnnlib": "vnnlib"}.get(kinds[0], "robustness")
    if "timeout" in t:
        _number(t["timeout"], f"{where}.timeout")
    if "name" in t and (not isinstance(t["name"], str) or not t["name"]):
        raise ManifestError(f"{where}.name: expected a non-empty string")
    robust_only = ("label", "eps", "domain")
    if kind != "robustness":
        for key in robust_only:
            if key in t:
                raise ManifestError(f"{where}: {key!r} only applies to robustness properties")
    if kind == "example":
        ex = t["examples"]
        ok = ex == "all" or (
            isinstance(ex, list) and all(isinstance(i, int) and not isinstance(i, bool) for i in ex)
        )
        if not ok:
            raise ManifestError(f'{where}.examples: expected "all" or a list of indices')
    elif kind == "vnnlib":
        if not isinstance(t["vnnlib"], str):
            raise ManifestError(f"{where}.vnnlib: expected a path string")
    else:
        for key in ("label", "eps"):
            if key not in t:
                raise ManifestError(f"{where}: robustness properties need {key!r}")
        if isinstance(t["label"], bool) or not isinstance(t["label"], int):
            raise ManifestError(f"{where}.label: expected an int")
        eps = t["eps"] if isinstance(t["eps"], list) else [t["eps"]]
        if not eps:
            raise ManifestError(f"{where}.eps: empty list")
        for e in eps:
            _number(e, f"{where}.eps", positive=False)
            if e < 0:
                raise ManifestError(f"{where}.eps: {e!r} must be >= 0")
        if "input" in t and not isinstance(t["input"], str):
            raise ManifestError(f"{where}.input: expected a path to an .npy file")
        if "x" in t and not (
            isinstance(t["x"], list)
            and t["x"]
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in t["x"])
        ):
            raise ManifestError(f"{where}.x: expected a non-empty list of numbers")
        dom = t.get("domain", [0.0, 1.0])
        if dom is not False and not (
            isinstance(dom, list)
            and len(dom) == 2
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in dom)
            and dom[0] < dom[1]
        ):
            raise ManifestError(f"{where}.domain: expected [lo, hi] with lo < hi, or false")
    return PropertyEntry(kind, dict(t), where)


def parse_manifest(doc: Mapping[str, Any], path: str | Path = "<manifest>") -> Manifest:
    """Validate a manifest document (the parsed TOML).

    Raises:
        ManifestError: on unknown keys (with a suggestion), wrong types or missing entries.
    """

    src = str(path)
    _unknown_keys(doc, _TOP_KEYS, src)
    version = doc.get("version", MANIFEST_VERSION)
    if version != MANIFEST_VERSION:
        raise ManifestError(f"{src}: version = {version!r} is not supported (expected 1)")
    opts = dict(_table(doc.get("options", {}), f"{src}: [options]"))
    if "time_limit" in opts:
        raise ManifestError(f"{src}: [options] time_limit: use [budget] per_property instead")
    try:
        options = VerifyOptions.from_mapping(opts)
    except InvalidOptionsError as err:
        raise ManifestError(f"{src}: [options] {err}") from err
    budget = _table(doc.get("budget", {}), f"{src}: [budget]")
    _unknown_keys(budget, _BUDGET_KEYS, f"{src}: [budget]")
    per = _number(budget.get("per_property", DEFAULT_PER_PROPERTY), f"{src}: budget.per_property")
    total = budget.get("total")
    total_v = None if total is None else _number(total, f"{src}: budget.total")
    models_raw = doc.get("models")
    if not isinstance(models_raw, list) or not models_raw:
        raise ManifestError(f"{src}: needs at least one [[models]] entry")
    models: list[ModelEntry] = []
    names: set[str] = set()
    for i, raw in enumerate(models_raw):
        where = f"{src}: models[{i}]"
        m = _table(raw, where)
        _unknown_keys(m, _MODEL_KEYS, where)
        p = m.get("path")
        if not isinstance(p, str) or not p:
            raise ManifestError(f'{where}: needs path = "net.onnx" or "example:NAME"')
        default = p.split(":", 1)[1] if p.startswith("example:") else Path(p).stem
        name = m.get("name", default)
        if not isinstance(name, str) or not name:
            raise ManifestError(f"{where}.name: expected a non-empty string")
        if name in names:
            raise ManifestError(f"{where}: duplicate model name {name!r}")
        names.add(name)
        props = m.get("properties")
        if not isinstance(props, list) or not props:
            raise ManifestError(f"{where}: needs a non-empty properties list")
        entries = tuple(
            _property_entry(pr, f"{where}.properties[{j}]") for j, pr in enumerate(props)
        )
        if any(e.kind == "example" for e in entries) and not p.startswith("example:"):
            raise ManifestError(f"{where}: 'examples' properties need path = \"example:NAME\"")
        parent = m.get("derived_from")
        if parent is not None and (not isinstance(parent, str) or not parent):
            raise ManifestError(f"{where}.derived_from: expected the name of another model")
        models.append(ModelEntry(name, p, entries, where, parent))
    _check_lineage(models)
    return Manifest(Path(path), options, per, total_v, tuple(models))


def _check_lineage(models: Sequence[ModelEntry]) -> None:
    """Every ``derived_from`` names another model of the manifest, without cycles."""

    by_name = {m.name: m for m in models}
    for m in models:
        if m.derived_from is None:
            continue
        if m.derived_from == m.name:
            raise ManifestError(f"{m.where}.derived_from: model {m.name!r} derives from itself")
        if m.derived_from not in by_name:
            close = difflib.get_close_matches(m.derived_from, list(by_name), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; models: {', '.join(by_name)}"
            raise ManifestError(f"{m.where}.derived_from: no model named {m.derived_from!r}{hint}")
    for m in models:
        chain = [m.name]
        cur = m
        while cur.derived_from is not None:
            cur = by_name[cur.derived_from]
            if cur.name in chain:
                raise ManifestError(
                    f"{m.where}.derived_from: cycle {' -> '.join([*chain, cur.name])}"
                )
            chain.append(cur.name)


def lineage_depth(manifest: Manifest) -> dict[str, int]:
    """``{model name: number of derived_from links up to a root model}``."""

    by_name = {m.name: m for m in manifest.models}
    depth: dict[str, int] = {}
    for m in manifest.models:
        d, cur = 0, m
        while cur.derived_from is not None:
            d, cur = d + 1, by_name[cur.derived_from]
        depth[m.name] = d
    return depth


def load_manifest(path: str | Path) -> Manifest:
    """Read and validate a TOML manifest.

    Raises:
        ManifestError: unreadable file, TOML syntax error or invalid content.
    """
    import tomllib

    p = Path(path)
    try:
        text = p.read_bytes()
    except OSError as err:
        raise ManifestError(f"{p}: cannot read manifest ({err.strerror or err})") from err
    try:
        doc = tomllib.loads(text.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ManifestError(f"{p}: not valid TOML ({err})") from err
    return parse_manifest(doc, p)


# --------------------------------------------------------------------------------------------
# Jobs: loaded (model, property) pairs
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    """One loaded (model, property) pair."""

    id: str
    model: str
    model_path: str
    name: str
    kind: str
    source: str
    network: Any
    prop: Any
    timeout: float


def _resolve(base: Path, p: str) -> Path:
    q = Path(p)
    return q if q.is_absolute() else base / q


def _load_network(manifest: Manifest, entry: ModelEntry) -> tuple[Any, list[Any] | None]:
    if entry.path.startswith("example:"):
        try:
            net, props = load_example(entry.path.split(":", 1)[1])
        except (KeyError, ValueError, LookupError) as err:
            raise ManifestError(f"{entry.where}: {err}") from err
        return net, list(props)

    try:
        return load_model(str(_resolve(manifest.base, entry.path))), None
    except UsageError as err:
        raise ManifestError(f"{entry.where}: {err}") from err


def _eps_tag(e: float) -> str:
    return f"{e:g}"


def _robustness(
    manifest: Manifest, entry: PropertyEntry, network: Any
) -> Iterable[tuple[str, str, Any]]:
    import numpy as np

    t = entry.values
    if "input" in t:
        f = _resolve(manifest.base, t["input"])
        try:
            x0 = load_npy(f)
        except (OSError, ValueError) as err:
            raise ManifestError(f"{entry.where}.input: cannot read {f} ({err})") from err
        stem, source = Path(t["input"]).name.removesuffix(".npy"), str(t["input"])
    else:
        x0 = np.asarray(t["x"], dtype=np.float64)
        stem, source = "x", "inline"
    if x0.size != network.n_inputs:
        raise ManifestError(
            f"{entry.where}: the centre has {x0.size} values, the network {network.n_inputs} inputs"
        )
    label = int(t["label"])
    dom = t.get("domain", [0.0, 1.0])
    domain = None if dom is False else (float(dom[0]), float(dom[1]))
    eps_list = t["eps"] if isinstance(t["eps"], list) else [t["eps"]]
    prefix = t.get("name", stem)
    for e in eps_list:
        try:
            prop = robustness_property(x0, float(e), label, network.n_outputs, domain=domain)
        except NncertError as err:
            raise ManifestError(f"{entry.where}: {err}") from err
        if "name" in t and len(eps_list) == 1:
            name = str(t["name"])
        else:
            name = f"{prefix}_label{label}_eps{_eps_tag(float(e))}"
        yield name, source, prop


def build_jobs(manifest: Manifest) -> list[Job]:
    """Load every model and property of ``manifest``.

    Raises:
        ManifestError: a model or property cannot be loaded, does not fit its network, or two
            properties share an id.
    """

    jobs: list[Job] = []
    ids: set[str] = set()
    for m in manifest.models:
        try:
            network, example_props = _load_network(manifest, m)
        except (InvalidNetworkError, OSError) as err:
            raise ManifestError(f"{m.where}: {err}") from err
        for entry in m.properties:
            t = entry.values
            timeout = float(t.get("timeout", manifest.per_property))
            found: list[tuple[str, str, Any]] = []
            if entry.kind == "example":
                if example_props is None:  # parse_manifest rejects this already
                    raise ManifestError(f"{entry.where}: 'examples' needs an example model")
                idx = list(range(len(example_props))) if t["examples"] == "all" else t["examples"]
                for i in idx:
                    if not 0 <= i < len(example_props):
                        raise ManifestError(
                            f"{entry.where}.examples: index {i} out of range "
                            f"(the example has {len(example_props)} properties)"
                        )
                    name = f"{t['name']}{i}" if "name" in t else f"example{i}"
                    found.append((name, f"{m.path}#{i}", example_props[i]))
            elif entry.kind == "vnnlib":
                f = _resolve(manifest.base, t["vnnlib"])
                if not f.is_file():
                    raise ManifestError(f"{entry.where}.vnnlib: {f}: no such file")

                try:
                    prop = load_vnnlib(str(f))
                except (NncertError, OSError, ValueError) as err:
                    raise ManifestError(f"{entry.where}.vnnlib: {err}") from err

                if not isinstance(prop, Property):
                    what = (
                        "constraints over the inputs are"
                        if isinstance(prop, MixedProperty)
                        else "polynomial constraints are"
                        if isinstance(prop, PolynomialProperty)
                        else "multi-network queries are"
                    )
                    raise ManifestError(f"{entry.where}.vnnlib: {what} not supported here")
                stem = re.sub(r"\.vnnlib(\.gz)?$", "", Path(t["vnnlib"]).name)
                found.append((str(t.get("name", stem)), str(t["vnnlib"]), prop))
            else:
                found.extend(_robustness(manifest, entry, network))
            for name, source, prop in found:
                try:
                    prop.check_network_shape(network.n_inputs, network.n_outputs)
                except InvalidPropertyError as err:
                    raise ManifestError(f"{entry.where}: {err}") from err
                pid = f"{m.name}/{name}"
                if pid in ids:
                    raise ManifestError(f"{entry.where}: duplicate property id {pid!r}")
                ids.add(pid)
                jobs.append(
                    Job(pid, m.name, m.path, name, entry.kind, source, network, prop, timeout)
                )
    return jobs


def parent_jobs(manifest: Manifest, jobs: Sequence[Job]) -> dict[int, int]:
    """Pair each property of a derived model with the same property of its parent model.

    A job of a model with ``derived_from = "P"`` is paired with P's job of the same property
    name when both are about the same property (equal fingerprints); unpaired jobs are simply
    verified. Returns ``{job index: parent job index}``.

    Raises:
        ManifestError: a derived model's inputs or outputs differ from its parent's.
    """

    parent_of = {m.name: m.derived_from for m in manifest.models}
    where = {m.name: m.where for m in manifest.models}
    index = {(job.model, job.name): i for i, job in enumerate(jobs)}
    shapes = {job.model: (job.network.n_inputs, job.network.n_outputs) for job in jobs}
    pairs: dict[int, int] = {}
    for i, job in enumerate(jobs):
        parent = parent_of.get(job.model)
        if parent is None:
            continue
        if parent in shapes and shapes[parent] != shapes[job.model]:
            raise ManifestError(
                f"{where[job.model]}.derived_from: {job.model!r} has "
                f"{shapes[job.model][0]} inputs and {shapes[job.model][1]} outputs, its parent "
                f"{parent!r} {shapes[parent][0]} and {shapes[parent][1]}"
            )
        k = index.get((parent, job.name))
        if k is not None and property_fingerprint(jobs[k].prop) == property_fingerprint(job.prop):
            pairs[i] = k
    return pairs


@dataclass(frozen=True)
class TransferNote:
    """How a derived model's property was decided relative to its parent's certificate.

    Attributes:
        parent: the parent property's id.
        status: ``"transferred"`` (decided by carrying the parent's certificate) or
            ``"re-verified"`` (the transfer did not apply; verified directly).
        time: seconds the transfer attempt took.
        parent_time: seconds the parent's direct verification took (in this run, or as the
            cache recorded it when the parent was served from the cache; ``None`` when unknown
            or when the parent was itself transferred).
        saved: estimated seconds saved: the parent's verification time (a proxy for verifying
            the derived model directly) minus the transfer time; for a re-verified property,
            minus the time of the failed attempt. ``None`` when not estimable.
        why: the transfer's reason (which rule applied, or why none did).
    """

    parent: str
    status: str
    time: float = 0.0
    parent_time: float | None = None
    saved: float | None = None
    why: str = ""


# --------------------------------------------------------------------------------------------
# Certifying one property (shared with the pytest plugin)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """Result of :func:`certify_property`.

    Attributes:
        verdict: ``"verified"``, ``"falsified"``, ``"unknown"`` or ``"error"``.
        reason: the reason (``"budget"`` when the total budget was exhausted).
        time: seconds (verification, or the re-check of a cached certificate).
        cached: served from the cache.
        certificate: the certificate (``None`` on error).
        result: the fresh :class:`VerificationResult` (``None`` when cached).
        key: the cache key.
        network_fingerprint: the network's fingerprint.
        property_fingerprint: the property's fingerprint.
        error: an error message.
        cache_rejected: why a cached certificate for this property was not served (the
            checker rejected it, or it is solver-attested); ``None``: no such entry.
        margins: for a certificate served from the cache, the per-case lower bounds the
            checker re-derived (reported instead of the certificate's own claims).
    """

    verdict: str
    reason: str
    time: float
    cached: bool
    certificate: Any
    result: Any
    key: str
    network_fingerprint: str
    property_fingerprint: str
    error: str | None = None
    cache_rejected: str | None = None
    margins: tuple[float | None, ...] | None = None


def _verify_worker(network: Any, prop: Any, options: Any) -> Any:
    """Process-pool entry point: one ``verify`` call."""

    return verify(network, prop, options)


def _from_cache(
    cache: Any,
    key: str,
    fps: tuple[str, str],
    network: Any,
    prop: Any,
    *,
    accept_attested: bool = False,
    source: Any = None,
    source_certificate: Any = None,
) -> Outcome | str | None:
    """The outcome of a re-checked cached certificate (its time: the check's; its margins: the
    ones the checker re-derived); or why the entry was refused (it is discarded); ``None`` when
    there is no entry. ``source`` and
    ``source_certificate`` (the parent model and its certificate) let a transferred
    certificate be re-checked."""
    cert = cache.get(key)
    if cert is None:
        return None
    t0 = time.perf_counter()
    why = ""
    margins: tuple[float | None, ...] = ()
    try:
        report = check(
            cert,
            network,
            expected_property=prop,
            source=source,
            source_certificate=source_certificate,
        )
        if not report.ok:
            why = f"rejected by the checker: {report.reasons[0]}"
        elif not report.independent and not accept_attested:
            why = f"solver-attested ({report.unchecked[0]}); pass --accept-attested to serve it"
        margins = tuple(report.case_lower)
    except Exception as err:  # a cache entry must never break a run
        why = f"rejected by the checker: {type(err).__name__}: {err}"
    if not why and cert.verdict.value not in ("verified", "falsified"):
        why = f"rejected: records verdict {cert.verdict.value}"
    if why:
        logger.warning("cache entry %s %s; re-verifying", key[:16], why)
        cache.discard(key)
        return why
    dt = time.perf_counter() - t0
    method = cert.provenance.method
    return Outcome(cert.verdict.value, method, dt, True, cert, None, key, *fps, margins=margins)


def _finish(
    network: Any,
    prop: Any,
    result: Any,
    options: Any,
    cache: Any,
    key: str,
    fps: tuple[str, str],
    meta: Mapping[str, Any],
) -> Outcome:

    cert = None
    try:
        cert = certificate_from_result(network, prop, result, options=options)
    except NncertError as err:
        logger.warning("no certificate for %s: %s", meta.get("property", "?"), err)
    verdict = result.verdict.value
    if cache is not None and cert is not None and verdict in ("verified", "falsified"):
        cache.put(key, cert, meta={**meta, "time": round(float(result.time), 6)})
    return Outcome(verdict, result.reason, float(result.time), False, cert, result, key, *fps)


def _keys(network: Any, prop: Any, config: str) -> tuple[str, tuple[str, str]]:

    fps = (network.fingerprint(), property_fingerprint(prop))
    return cache_key(fps[0], fps[1], config), fps


def certify_property(
    network: Any,
    prop: Any,
    *,
    options: Any = None,
    timeout: float | None = None,
    cache: Any = None,
    meta: Mapping[str, Any] | None = None,
    accept_attested: bool = False,
) -> Outcome:
    """Verify one property, serving it from ``cache`` when a re-checked certificate exists.

    Args:
        network: the network.
        prop: the property.
        options: :class:`VerifyOptions` (``time_limit`` is replaced by ``timeout``).
        timeout: seconds (``None``: the options' time limit).
        cache: a :class:`~nncert.verify.cache.CertificateCache` or ``None``.
        meta: extra fields for the cache index entry (e.g. the property id).
        accept_attested: serve cached certificates whose verdict rests on a solver's word.

    Returns:
        The :class:`Outcome`.
    """

    opts = (
        options
        if isinstance(options, VerifyOptions)
        else VerifyOptions.from_mapping(dict(options or {}))
    )
    if timeout is not None:
        opts = dataclasses.replace(opts, time_limit=float(timeout))
    key, fps = _keys(network, prop, config_hash(opts))
    refused = None
    if cache is not None:
        hit = _from_cache(cache, key, fps, network, prop, accept_attested=accept_attested)
        if isinstance(hit, Outcome):
            return hit
        refused = hit
    result = _verify_worker(network, prop, opts)
    out = _finish(network, prop, result, opts, cache, key, fps, dict(meta or {}))
    return dataclasses.replace(out, cache_rejected=refused)


# --------------------------------------------------------------------------------------------
# Running a manifest
# --------------------------------------------------------------------------------------------


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "property"


def _report_entry(
    job: Job,
    out: Outcome,
    cert_path: str | None,
    previous: Mapping[str, str],
    lineage: TransferNote | None = None,
) -> PropertyReport:
    res = out.result
    lowers = [v for v in (res.margin_lower if res is not None else ()) if v is not None]
    if res is None and out.margins is not None:
        # what the checker re-derived, never the certificate's own claims
        lowers = [v for v in out.margins if v is not None]
    elif res is None and out.certificate is not None:
        # a transfer's certificate: its bounds were re-derived on this model by the transfer
        try:
            lowers = [v for v in out.certificate.case_lower_bounds() if v is not None]
        except Exception:
            lowers = []
    cex = None
    if res is not None and res.counterexample is not None:
        cex = res.counterexample.to_dict()
    elif out.verdict == "falsified" and out.certificate is not None:
        ev = out.certificate.evidence
        if hasattr(ev, "x"):
            cex = {
                "input": [float(v) for v in getattr(ev, "x", ())],
                "output": [float(v) for v in getattr(ev, "y", ())],
                "case": getattr(ev, "case_index", None),
                "violation": getattr(ev, "violation", None),
            }
    prev = previous.get(job.id)
    method = res.method if res is not None else out.reason
    return PropertyReport(
        id=job.id,
        model=job.model,
        model_path=job.model_path,
        property=job.name,
        kind=job.kind,
        source=job.source,
        verdict=out.verdict,
        reason=out.reason,
        time=out.time,
        cached=out.cached,
        certificate=cert_path,
        network_fingerprint=out.network_fingerprint,
        property_fingerprint=out.property_fingerprint,
        cache_key=out.key,
        method=method,
        margin_lower=min(lowers) if lowers else None,
        counterexample=cex,
        previous_verdict=prev,
        regression=prev == "verified" and out.verdict in ("unknown", "falsified"),
        error=out.error,
        cache_rejected=out.cache_rejected,
        derived_from=None if lineage is None else lineage.parent,
        transfer=None if lineage is None or out.cached else lineage.status,
        transfer_time=None if lineage is None or out.cached else round(lineage.time, 6),
        time_saved=(
            None
            if lineage is None or out.cached or lineage.saved is None
            else round(lineage.saved, 6)
        ),
        transfer_reason=None if lineage is None or out.cached else lineage.why,
    )


#: files ``run_manifest`` writes into ``out_dir`` (besides ``certificates/``)
REPORT_FILES = ("report.json", "junit.xml", "summary.md")


def _manifest_inputs(manifest: Manifest) -> list[Path]:
    """Every file a manifest makes ``nncert certify`` read."""
    files = [manifest.path]
    for m in manifest.models:
        if not m.path.startswith("example:"):
            files.append(_resolve(manifest.base, m.path))
        for e in m.properties:
            for key in ("vnnlib", "input"):
                if isinstance(e.values.get(key), str):
                    files.append(_resolve(manifest.base, e.values[key]))
    return files


def _check_outputs(out: Path, cache_dir: str | Path | None, inputs: Sequence[Path]) -> None:
    """Refuse output locations that are unusable or would overwrite an input (before work)."""

    check_output_dir(out, inputs=inputs, files=REPORT_FILES, what="report directory")
    folders = [(out / "certificates", "report directory's certificates/ folder")]
    if cache_dir is not None:
        check_output_dir(
            cache_dir, inputs=inputs, files=("index.json", ".lock"), what="cache directory"
        )
        folders.append((Path(cache_dir) / "certs", "cache's certs/ folder"))
    for folder, what in folders:
        for f in inputs:
            if same_file(Path(f).parent, folder):
                raise OutputPathError(
                    f"{f}: this input lies in the {what} {folder}, which nncert fills"
                )


def run_manifest(
    path: str | Path,
    *,
    out_dir: str | Path,
    cache_dir: str | Path | None = None,
    jobs: int = 1,
    allow_unknown: bool = False,
    progress: Callable[[str], None] | None = None,
    executor: str | None = None,
    address: str | None = None,
    accept_attested: bool = False,
) -> Report:
    """Certify every (model, property) pair of a manifest and write the reports.

    Args:
        path: the TOML manifest.
        out_dir: output directory (created): ``report.json``, ``junit.xml``, ``summary.md``,
            ``certificates/``. A ``report.json`` already there is the previous run's, used for
            regression detection before it is replaced.
        cache_dir: certificate cache directory (``None``: no cache).
        jobs: properties verified in parallel (worker processes; ignored with ``address``:
            as many run at once as the cluster has worker threads).
        allow_unknown: unknown verdicts pass (JUnit ``<skipped>``, exit code 0).
        progress: callback receiving one line per finished property.
        executor: ``"local"`` (a process pool of ``jobs`` workers; in this process for one
            job) or ``"dask"`` (a local Dask cluster of ``jobs`` workers, or the cluster at
            ``address``); ``None``: ``"dask"`` when ``address`` is given, else ``"local"``.
            Networks and properties are loaded here and sent to the workers; certificates,
            cache and reports are written here, so they do not depend on the executor.
        address: an existing Dask cluster: scheduler address or scheduler file (see
            :func:`nncert.verify.executors.make_executor`).
        accept_attested: serve cached certificates whose verdict rests on a solver's word
            (by default only independently re-derived ones are served).

    Returns:
        The :class:`Report` (also written to ``out_dir``).

    Raises:
        ManifestError: invalid manifest, model or property (nothing is verified then).
        OutputPathError: ``out_dir`` or ``cache_dir`` is not a writable directory, or a report
            or cache file would overwrite an input (checked before anything is verified).
        ValueError: an unknown executor, or ``address`` with the local one.
        ExecutorUnavailableError: ``executor="dask"`` without dask.distributed installed.
        ClusterConnectionError: no Dask scheduler answered at ``address``.
    """

    if not isinstance(jobs, int) or jobs < 1:
        raise ManifestError(f"jobs={jobs!r} must be an int >= 1")
    executor = resolve_executor(executor, address)
    t_start = time.perf_counter()
    created = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    out = Path(out_dir)
    _check_outputs(out, cache_dir, [Path(path)])
    manifest = load_manifest(path)
    _check_outputs(out, cache_dir, _manifest_inputs(manifest))
    job_list = build_jobs(manifest)
    pairs = parent_jobs(manifest, job_list)
    depth = lineage_depth(manifest)
    out.mkdir(parents=True, exist_ok=True)
    cert_dir = out / "certificates"
    cert_dir.mkdir(exist_ok=True)
    cache = CertificateCache(cache_dir) if cache_dir is not None else None
    previous = read_previous_verdicts(out / "report.json")
    if previous is None:
        previous = cache.previous_verdicts() if cache is not None else {}
    deadline = None if manifest.total is None else t_start + manifest.total
    config = config_hash(manifest.options)

    outcomes: dict[int, Outcome] = {}
    transfers: dict[int, TransferNote] = {}
    refused: dict[int, str] = {}
    interrupted = False

    def remaining() -> float | None:
        return None if deadline is None else deadline - time.perf_counter()

    def budget_outcome(job: Job, reason: str) -> Outcome:
        key, fps = _keys(job.network, job.prop, config)
        return Outcome("unknown", reason, 0.0, False, None, None, key, *fps)

    def note(i: int) -> None:
        if progress is not None:
            o = outcomes[i]
            tag = " (cached)" if o.cached else ""
            if o.cache_rejected:
                tag = f" (cached certificate {o.cache_rejected}; re-verified)"
            t = transfers.get(i)
            if t is not None and not o.cached:
                tag += (
                    f" (transferred from {t.parent})"
                    if t.status == "transferred"
                    else f" (re-verified: transfer from {t.parent} did not apply)"
                )
            progress(f"{o.verdict:9s} {job_list[i].id} {o.time:.2f}s{tag}")

    def parent_context(i: int) -> tuple[Any, Any]:
        """The parent's network and certificate (for re-checking a transferred certificate)."""
        k = pairs.get(i)
        if k is None or k not in outcomes:
            return None, None
        return job_list[k].network, outcomes[k].certificate

    def lookup(i: int) -> bool:
        """Serve job ``i`` from the cache; ``True`` when served."""
        if cache is None:
            return False
        job = job_list[i]
        key, fps = _keys(job.network, job.prop, config)
        src, src_cert = parent_context(i)
        hit = _from_cache(
            cache,
            key,
            fps,
            job.network,
            job.prop,
            accept_attested=accept_attested,
            source=src,
            source_certificate=src_cert,
        )
        if isinstance(hit, Outcome):
            outcomes[i] = hit
            note(i)
            return True
        if hit is not None:
            refused[i] = hit
        return False

    def try_transfer(i: int) -> bool:
        """Carry the parent's certificate to job ``i``'s model; ``True`` when it decided."""
        k = pairs.get(i)
        if k is None:
            return False
        job, parent = job_list[i], job_list[k]
        src = outcomes.get(k)
        if src is None or src.certificate is None or src.verdict not in VERDICTS_DECIDED:
            verdict = "no certificate" if src is None else src.verdict
            transfers[i] = TransferNote(parent.id, "re-verified", why=f"parent {verdict}")
            return False
        rem = remaining()
        limit = job.timeout if rem is None else min(job.timeout, rem)
        if limit <= 0.05:
            return False
        t0 = time.perf_counter()
        try:
            tr = transfer(
                src.certificate,
                parent.network,
                job.network,
                verify_fallback=False,
                time_limit=limit,
                accept_attested=accept_attested,
                replay_share=TRANSFER_SHARE,
            )
        except Exception as err:  # a transfer that cannot run never costs the property
            dt = time.perf_counter() - t0
            why = str(err).splitlines()[0] if isinstance(err, NncertError) else repr(err)
            if not isinstance(err, NncertError):
                logger.warning("transfer to %s failed (%s); verifying it directly", job.id, why)
            transfers[i] = TransferNote(parent.id, "re-verified", dt, None, -dt, why)
            return False
        dt = time.perf_counter() - t0
        # the parent's direct verification time: this run's, or the one the cache recorded
        parent_time: float | None
        if src.reason == "transfer":
            parent_time = None  # the parent was itself transferred: no direct time to compare
        elif src.cached:
            parent_time = None if cache is None else cache.recorded_time(src.key)
        else:
            parent_time = float(src.time)
        if not tr.transferred:
            transfers[i] = TransferNote(parent.id, "re-verified", dt, parent_time, -dt, tr.reason)
            return False
        saved = None if parent_time is None else parent_time - dt
        transfers[i] = TransferNote(parent.id, "transferred", dt, parent_time, saved, tr.reason)
        key, fps = _keys(job.network, job.prop, config)
        cert = tr.certificate
        if cache is not None:
            cache.put(
                key, cert, meta={"property": job.id, "time": round(dt, 6), "transferred": True}
            )
        outcomes[i] = Outcome(cert.verdict.value, "transfer", dt, False, cert, None, key, *fps)
        note(i)
        return True

    def options_for(i: int) -> Any | None:
        # a failed transfer attempt is paid from the property's own budget
        job = job_list[i]
        spent = transfers[i].time if i in transfers else 0.0
        rem = remaining()
        limit = job.timeout - spent if rem is None else min(job.timeout - spent, rem)
        if limit <= 0.05:
            return None
        return dataclasses.replace(manifest.options, time_limit=float(limit))

    def finish(i: int, result: Any, opts: Any) -> None:
        job = job_list[i]
        key, fps = _keys(job.network, job.prop, config)
        outcomes[i] = dataclasses.replace(
            _finish(job.network, job.prop, result, opts, cache, key, fps, {"property": job.id}),
            cache_rejected=refused.get(i),
        )
        note(i)

    def fail(i: int, err: BaseException) -> None:
        job = job_list[i]
        o = budget_outcome(job, "error")
        outcomes[i] = dataclasses.replace(
            o, verdict="error", error=f"{type(err).__name__}: {err}".splitlines()[0]
        )
        note(i)

    started: dict[int, Any] = {}

    def prepare(i: int) -> tuple[Any, ...] | None:
        opts = options_for(i)
        if opts is None:
            return None
        started[i] = opts
        return (job_list[i].network, job_list[i].prop, opts)

    def run_batch(todo: list[int]) -> None:
        # a local pool only pays off for two properties or more; a cluster is asked for
        workers = jobs if executor != "local" or len(todo) > 1 else 1
        for fin in run_each(
            _verify_worker,
            todo,
            kind=executor,
            jobs=workers,
            address=address,
            prepare=prepare,
            lazy=True,
            retries=WORKER_LOSS_RETRIES,
            notify=logger.warning,
        ):
            i = fin.item
            if not fin.ran:
                outcomes[i] = budget_outcome(job_list[i], "budget")
                note(i)
            elif fin.error is not None:
                fail(i, fin.error)
            else:
                try:
                    finish(i, fin.value, started[i])
                except Exception as err:
                    fail(i, err)

    # models in lineage order (parents before the models derived from them); in each
    # generation: 1. cache hits (cheap), 2. transfers from the parent, 3. the rest verified
    try:
        for level in sorted(set(depth.values())):
            members = [i for i, job in enumerate(job_list) if depth[job.model] == level]
            todo = [i for i in members if not lookup(i)]
            todo = [i for i in todo if not try_transfer(i)]
            if todo:
                run_batch(todo)
    except KeyboardInterrupt:
        interrupted = True
        logger.warning("interrupted; writing partial results")
    for i, job in enumerate(job_list):
        if i not in outcomes:
            outcomes[i] = budget_outcome(job, "interrupted" if interrupted else "budget")

    # certificates and the report
    entries: list[PropertyReport] = []
    used: set[str] = set()
    for i, job in enumerate(job_list):
        o = outcomes[i]
        cert_rel = None
        if o.certificate is not None:
            stem = _safe(job.id)
            name, k = f"{stem}.json", 1
            while name in used:
                k += 1
                name = f"{stem}-{k}.json"
            used.add(name)
            save_certificate(o.certificate, cert_dir / name)
            cert_rel = f"certificates/{name}"
        entries.append(_report_entry(job, o, cert_rel, previous, transfers.get(i)))
    report = Report(
        manifest=str(path),
        properties=tuple(entries),
        duration=time.perf_counter() - t_start,
        allow_unknown=allow_unknown,
        options=dataclasses.asdict(manifest.options),
        budget={"per_property": manifest.per_property, "total": manifest.total},
        created=created,
        tool_version=tool_version(),
        interrupted=interrupted,
    )
    write_json(report, out / "report.json")
    write_junit(report, out / "junit.xml")
    text = write_summary(report, out / "summary.md")
    append_step_summary(text)
    if cache is not None:
        cache.record_verdicts({p.id: (p.cache_key, p.verdict) for p in entries})
    return report


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------


def _cmd_certify(args: argparse.Namespace) -> int:

    if args.jobs < 1:
        raise UsageError(f"--jobs {args.jobs}: must be >= 1")
    try:
        executor = resolve_executor(args.executor, args.address)
    except ValueError as err:
        raise UsageError(str(err)) from None
    cache_dir = None if args.no_cache else args.cache

    def say(line: str) -> None:
        if not args.json and not args.quiet:
            print(line, flush=True)

    # SIGTERM/SIGINT: nncert.verify.cli.main ends the workers and raises KeyboardInterrupt,
    # which run_manifest turns into partial reports
    report = run_manifest(
        args.manifest,
        out_dir=args.out,
        cache_dir=cache_dir,
        jobs=args.jobs,
        allow_unknown=args.allow_unknown,
        progress=say,
        executor=executor,
        address=args.address,
        accept_attested=args.accept_attested,
    )
    s = report.summary()
    if args.json:
        print(json.dumps(report.to_dict(), allow_nan=False))
    else:
        print(f"{report.n_cached}/{s['total']} served from cache")
        transfer = report.transfer_line()
        if transfer is not None:
            print(transfer)
        print(
            f"{s['verified']} verified, {s['falsified']} falsified, {s['unknown']} unknown, "
            f"{s['error']} error(s), {s['regressions']} regression(s) in {report.duration:.1f}s;"
            f" reports in {args.out}"
        )
        for p in report.regressions:
            sys.stderr.write(f"nncert: regression: {p.id} was verified, now {p.verdict}\n")
    if report.interrupted:
        return 130
    return report.exit_code


def register(subparsers: Any) -> None:
    """Add the ``certify`` sub-command to the ``nncert`` parser's sub-parsers."""
    p = subparsers.add_parser(
        "certify",
        help="certify the models and properties of a TOML manifest (CI)",
        description="Verify every property listed in MANIFEST (TOML), serving unchanged ones "
        "from a certificate cache, and write report.json, junit.xml, summary.md and "
        "certificates to --out. Exit 0 all verified, 1 falsified, 2 unknown (0 with "
        "--allow-unknown), 3 input error, 4 internal error, 5 regression (a property the "
        "previous run verified is now unknown or falsified).",
    )
    p.add_argument("manifest", metavar="MANIFEST", help="the TOML manifest (nncert.toml)")
    p.add_argument(
        "--out",
        default="nncert-report",
        metavar="DIR",
        help="where the reports and certificates go (default nncert-report)",
    )
    p.add_argument(
        "--cache",
        default=".nncert-cache",
        metavar="DIR",
        help="certificate cache directory (default .nncert-cache)",
    )
    p.add_argument("--no-cache", action="store_true", help="do not read or write the cache")
    p.add_argument("--allow-unknown", action="store_true", help="unknown verdicts pass")
    p.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="properties verified in parallel (default 1; with --address the cluster's worker "
        "threads decide)",
    )
    p.add_argument(
        "--executor",
        default=None,
        metavar="{" + ",".join(EXECUTORS) + "}",
        help="local process pool of --jobs workers (default), or dask: a local Dask cluster "
        "of --jobs workers, or the cluster at --address (the default when --address is "
        "given); reports, cache and exit codes are the same as a serial run's",
    )
    p.add_argument(
        "--address",
        default=None,
        metavar="ADDR",
        help="an existing Dask cluster: scheduler address (tcp://HOST:8786) or the JSON file "
        "of `dask scheduler --scheduler-file`; exit 3 when nothing answers within "
        f"{CONNECT_TIMEOUT:g} s",
    )
    p.add_argument(
        "--accept-attested",
        action="store_true",
        help="serve cached certificates whose verdict rests on a solver's word (by default "
        "only certificates the checker re-derives independently are served; others are "
        "re-verified)",
    )
    p.add_argument("--json", action="store_true", help="print report.json on stdout")
    p.add_argument("--quiet", action="store_true", help="no per-property lines")
    p.set_defaults(func=_cmd_certify)


__all__ = [
    "EXIT_INPUT_ERROR",
    "Job",
    "Manifest",
    "ManifestError",
    "Outcome",
    "build_jobs",
    "certify_property",
    "load_manifest",
    "parse_manifest",
    "register",
    "run_manifest",
]
