"""Suite-wide pytest configuration.

Area-specific fixtures live in ``tests/<area>/conftest.py``; ``anvil_url``, the one session anvil node, is
here (its rule: tests/anvil.py). Hypothesis runs derandomized so the suite is reproducible in CI.
"""
from __future__ import annotations

import os
import sys

import pytest
from hypothesis import HealthCheck, settings

from crypto.fhe_runtime import fixed_plan_active, reexec_with_fixed_plan
from tests.anvil import session_node

settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci" if os.environ.get("CI") else "dev")


@pytest.fixture(scope="session")
def anvil_url():
    """URL of the session's local anvil node (skipped only when CI is unset and the binary is absent)."""
    yield from session_node()


# Tests that share an expensive session fixture run on one xdist worker (scripts/run-tests.sh runs two), so it
# is built once: the N = 3 circuit and its keys (tests/crypto/conftest.py), and the protocol's real-FHE markets,
# which share one compiled circuit per session (tests/protocol/conftest.py).
FHE_GROUPS = (("selection_circuit", "fhe-crypto"), ("fhe", "fhe-protocol"))
# xdist hands out the largest units (by test count) first; these modules have few tests but each spawns demo
# processes for minutes, so they run as one unit that starts early instead of one of them ending the run alone.
LONG_PROCESS_MODULES = ("tests/protocol/test_kill_anywhere.py", "tests/protocol/test_crash_resume.py",
                        "tests/protocol/test_deadlines.py", "tests/protocol/test_verify_beside_writer.py")


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook, which writes the groups into the test ids
def pytest_collection_modifyitems(config, items):
    """Every other test runs with the rest of its module, in the module's order, so a module fixture is built
    once per run and a test that must come last in its module (a rolled-back node) does."""
    for item in items:
        group = next((group for name, group in FHE_GROUPS
                      if name in item.fixturenames or item.get_closest_marker(name) is not None), None)
        module = item.nodeid.split("::")[0]
        if group is None and module in LONG_PROCESS_MODULES:
            group = "long-processes"
        item.add_marker(pytest.mark.xdist_group(group or module))


class _GroupsApplied:
    """On an xdist worker with ``--dist loadgroup``: after xdist's hook every test id must carry its group
    (``<id>@<group>``), or the scheduler would scatter the groups silently (pytest 9.2 stopped reading the
    id xdist writes)."""

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, config, items):
        scattered = [item.nodeid for item in items if "@" not in item.nodeid]
        if scattered:
            raise pytest.UsageError(f"xdist groups not applied (pytest {pytest.__version__}): {scattered[0]} has "
                                    f"no @group in its id; install pytest < 9.2 (pyproject.toml's dev extra)")


def pytest_configure(config):
    """Every FHE evaluation in the suite runs under the fixed FFT plan, like `repo-market` does
    (crypto/fhe_runtime.py), so in-process outputs equal those of the CLI processes the tests spawn.
    Unless it is already preloaded, pytest restarts itself here with it (output capture is released first so
    the restarted run writes to the real terminal)."""
    if getattr(config.option, "loadgroup", False):  # an xdist worker under --dist loadgroup
        config.pluginmanager.register(_GroupsApplied(), "repo-market-groups-applied")
    if fixed_plan_active():
        return
    capture = config.pluginmanager.getplugin("capturemanager")
    if capture is not None:
        capture.suspend_global_capture(in_=True)
    reexec_with_fixed_plan()


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session, exitstatus):
    session.config.stash[_EXIT_STATUS] = int(session.exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    """Leave with pytest's own exit status. [measured] Once concrete-python has compiled or run a circuit, the
    interpreter's normal shutdown ends the process with status 0 whatever ``sys.exit`` asked for (something in
    concrete's native runtime exits at teardown), so a failing suite would look green. Flush and ``os._exit``
    instead; nothing of the project needs interpreter teardown."""
    status = config.stash.get(_EXIT_STATUS, None)
    if status is None:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


_EXIT_STATUS = pytest.StashKey[int]()
