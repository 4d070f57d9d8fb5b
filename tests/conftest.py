"""Suite-wide pytest configuration.

Area-specific fixtures live in ``tests/<area>/conftest.py``. Hypothesis runs derandomized so the
suite is reproducible in CI.
"""
from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

from crypto.fhe_runtime import fixed_plan_active, reexec_with_fixed_plan

settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci" if os.environ.get("CI") else "dev")


def pytest_configure(config):
    """Every FHE evaluation in the suite runs under the fixed FFT plan, like `repo-market` does
    (crypto/fhe_runtime.py), so in-process outputs equal those of the CLI processes the tests spawn.
    Unless it is already preloaded, pytest restarts itself here with it (output capture is released first so
    the restarted run writes to the real terminal)."""
    if fixed_plan_active():
        return
    capture = config.pluginmanager.getplugin("capturemanager")
    if capture is not None:
        capture.suspend_global_capture(in_=True)
    reexec_with_fixed_plan()
