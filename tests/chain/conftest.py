"""Fixtures for the chain tests: both backends (embedded, anvil) and a deployed market.

The anvil backend skips only when CI is unset and the binary is absent; with CI set it must run.
"""
from __future__ import annotations

import pytest

from chain import connect, deploy_coordinator
from chain.node import start_anvil, stop_anvil

from .helpers import Market, make_terms, require_anvil

BACKENDS = ["embedded", pytest.param("anvil", marks=pytest.mark.anvil)]


@pytest.fixture(scope="session")
def anvil_url(tmp_path_factory):
    require_anvil()
    data_dir = tmp_path_factory.mktemp("anvil-session")
    info = start_anvil(data_dir)
    yield info.url
    stop_anvil(data_dir, save=False)  # a session node is never restarted: no exit dump


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


@pytest.fixture
def chain(backend, tmp_path, request):
    if backend == "embedded":
        return connect(tmp_path / "data")
    return connect(tmp_path / "data", request.getfixturevalue("anvil_url"))


@pytest.fixture
def market(chain):
    coord = deploy_coordinator(chain, make_terms(chain))
    m = Market(chain, coord, coord.terms())
    m.fund_deposits()
    return m


