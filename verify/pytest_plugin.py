"""pytest plugin: certify properties of models inside a user's test suite.

Enable it in a ``conftest.py`` with ``pytest_plugins = ["nncert.verify.pytest_plugin"]`` (or
through the ``pytest11`` entry point when the package registers one). It provides:

* :func:`assert_certified` — passes when the property is verified (freshly or from a re-checked
  cached certificate), calls ``pytest.fail`` with the counterexample when falsified, and
  ``pytest.skip`` when unknown (``pytest.fail`` with ``strict=True``);
* the ``certified`` fixture — the same function with the session's ``--cert-cache`` and
  ``--cert-time-budget`` defaults, which also records ``verdict``, ``model_sha256`` and
  ``solve_seconds`` as JUnit ``<properties>`` of the test (use ``-o junit_family=xunit1``
  to keep them in ``--junitxml``);
* options ``--cert-cache DIR`` and ``--cert-time-budget SECONDS``, and the marker
  ``certify`` for labelling such tests.

Example::

    import pytest

    @pytest.mark.parametrize("eps", [0.01, 0.02])
    def test_robust(certified, eps):
        from nncert.verify import robustness_property
        net = ...  # a Network, an .onnx path or "example:NAME"
        certified(net, robustness_property(x0, eps, 0, 3), timeout=10)

Importing this module is light: torch, onnx and the verifiers load on first use.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

#: environment variable giving a default cache directory
CACHE_ENV = "NNCERT_CERT_CACHE"


def _as_network(model: Any) -> Any:
    from nncert.verify.network import Network

    if isinstance(model, Network):
        return model
    if isinstance(model, (str, os.PathLike)):
        from nncert.verify.cliutil import load_model

        return load_model(str(model))
    raise TypeError(f"model must be a Network, an .onnx path or 'example:NAME', not {model!r}")


def _as_property(prop: Any) -> Any:
    from nncert.verify.spec import Property

    if isinstance(prop, Property):
        return prop
    if isinstance(prop, (str, os.PathLike)):
        from nncert.verify.vnnlib import load_vnnlib

        return load_vnnlib(str(prop))
    raise TypeError(f"prop must be a Property or a .vnnlib path, not {prop!r}")


def assert_certified(
    model: Any,
    prop: Any,
    *,
    timeout: float = 60.0,
    cache_dir: str | os.PathLike[str] | None = None,
    options: Any = None,
    strict: bool = False,
) -> Any:
    """Assert that ``prop`` holds on ``model``.

    Args:
        model: a :class:`~nncert.verify.network.Network`, an ``.onnx`` path or
            ``"example:NAME"``.
        prop: a :class:`~nncert.verify.spec.Property` or a ``.vnnlib`` path.
        timeout: seconds for the verification.
        cache_dir: a certificate cache directory (default: ``$NNCERT_CERT_CACHE`` if set);
            a re-checked cached certificate passes without verifying again.
        options: :class:`~nncert.verify.options.VerifyOptions` or a mapping.
        strict: fail (instead of skip) on an unknown verdict.

    Returns:
        The :class:`~nncert.verify.ci.Outcome` (verdict, time, ``cached``, certificate).

    Raises:
        pytest.fail.Exception: falsified (message with the counterexample), or unknown when
            ``strict``.
        pytest.skip.Exception: unknown and not ``strict``.
    """
    from nncert.verify.ci import certify_property

    network = _as_network(model)
    p = _as_property(prop)
    directory = cache_dir if cache_dir is not None else os.environ.get(CACHE_ENV)
    cache = None
    if directory:
        from nncert.verify.cache import CertificateCache

        cache = CertificateCache(Path(directory))
    out = certify_property(network, p, options=options, timeout=timeout, cache=cache)
    label = p.name or "property"
    if out.verdict == "verified":
        return out
    if out.verdict == "falsified":
        msg = f"{label}: falsified"
        res = out.result
        if res is not None and res.counterexample is not None:
            cex = res.counterexample
            msg += (
                f"; counterexample x={[round(float(v), 6) for v in cex.x]} "
                f"f(x)={[round(float(v), 6) for v in cex.y]} (case {cex.case_index})"
            )
        pytest.fail(msg, pytrace=False)
    msg = f"{label}: {out.verdict} ({out.reason}) after {out.time:.2f}s"
    if strict or out.verdict == "error":
        pytest.fail(msg, pytrace=False)
    pytest.skip(msg)


def pytest_addoption(parser: Any) -> None:
    """``--cert-cache`` and ``--cert-time-budget``."""
    group = parser.getgroup("nncert", "nncert certification")
    group.addoption(
        "--cert-cache",
        default=None,
        metavar="DIR",
        help=f"certificate cache directory for `certified` (default ${CACHE_ENV})",
    )
    group.addoption(
        "--cert-time-budget",
        type=float,
        default=None,
        metavar="SECONDS",
        help="default per-property time budget of `certified` (default 60)",
    )


def pytest_configure(config: Any) -> None:
    """Register the ``certify`` marker."""
    config.addinivalue_line(
        "markers", "certify(model, spec, timeout=None): a test that certifies a property"
    )


@pytest.fixture
def certified(request: Any, record_property: Any) -> Callable[..., Any]:
    """:func:`assert_certified` with the session defaults; records JUnit properties."""
    cache_opt = request.config.getoption("--cert-cache", default=None)
    budget = request.config.getoption("--cert-time-budget", default=None)

    def run(model: Any, prop: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("timeout", budget if budget is not None else 60.0)
        if cache_opt is not None:
            kwargs.setdefault("cache_dir", cache_opt)
        network = _as_network(model)
        try:
            out = assert_certified(network, prop, **kwargs)
        except BaseException:
            record_property("model_sha256", network.fingerprint())
            raise
        record_property("verdict", out.verdict)
        record_property("model_sha256", out.network_fingerprint)
        record_property("solve_seconds", round(out.time, 6))
        record_property("cached", out.cached)
        return out

    return run


__all__ = ["CACHE_ENV", "assert_certified", "certified", "pytest_addoption", "pytest_configure"]
