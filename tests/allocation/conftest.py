"""Fixtures for the allocation tests: one anvil node per session for the long on-chain run.

Without the anvil binary the long run uses the embedded chain instead (slower, same assertions): it is
never skipped.
"""
from __future__ import annotations

import pytest

from chain.node import anvil_binary, start_anvil, stop_anvil


@pytest.fixture(scope="session")
def long_run_rpc(tmp_path_factory):
    """URL of a session anvil node, or None (embedded chain) when anvil is not installed."""
    if not anvil_binary().is_file():
        yield None
        return
    data_dir = tmp_path_factory.mktemp("allocation-anvil")
    info = start_anvil(data_dir)
    try:
        yield info.url
    finally:
        stop_anvil(data_dir, save=False)  # a session node is never restarted: no exit dump
