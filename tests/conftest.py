"""Suite-wide pytest configuration.

Area-specific fixtures live in ``tests/<area>/conftest.py``. Hypothesis runs derandomized so the
suite is reproducible in CI.
"""
from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci" if os.environ.get("CI") else "dev")
