"""The anvil node of the test suite, under one rule for every test that needs it: a test that needs anvil is
skipped only when CI is unset and the binary is absent; with CI set a missing binary fails it.

``anvil_url`` (tests/conftest.py) is the one session node; a test that starts nodes of its own calls
:func:`require_anvil` first. Not a test module itself.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from chain.node import anvil_binary, start_anvil, stop_anvil


def require_anvil() -> Path:
    """The anvil binary, or skip (CI unset) / fail (CI set) the calling test when it is absent."""
    binary = anvil_binary()
    if not binary.is_file():
        if os.environ.get("CI"):
            pytest.fail(f"anvil binary missing at {binary}: CI must run the anvil tests "
                        "(scripts/setup.sh --with-anvil installs it)")
        pytest.skip(f"anvil binary not installed at {binary} (CI unset)")
    return binary


def session_node():
    """Start a node, yield its URL, stop it (a session node is never restarted: no exit dump). Its folder is
    outside pytest's numbered basetemp: a concurrent pytest session prunes old basetemps, which would delete
    the node's pid file under a long session."""
    require_anvil()
    data_dir = Path(tempfile.mkdtemp(prefix="repo-market-anvil-tests-"))
    try:
        info = start_anvil(data_dir)
        try:
            yield info.url
        finally:
            stop_anvil(data_dir, save=False)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
