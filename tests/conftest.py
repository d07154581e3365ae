"""Shared pytest configuration: Hypothesis profiles (DESIGN.md section 11.6).

Profiles: ``"ci"`` (50 examples, no deadline, derandomized, too-slow health check suppressed),
``"dev"`` (Hypothesis defaults, no deadline) and ``"thorough"`` (500 examples). The
``HYPOTHESIS_PROFILE`` environment variable selects one explicitly; otherwise ``"ci"`` is used
when ``CI=true`` (set by common CI runners) and ``"dev"`` elsewhere.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    max_examples=50,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", deadline=None)
settings.register_profile(
    "thorough", max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

_default = "ci" if os.environ.get("CI", "").lower() == "true" else "dev"
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", _default))
