"""Fixtures for the chain tests: both backends (embedded, anvil) and a deployed market.

The anvil backend uses the session node ``anvil_url`` (tests/conftest.py; its rule: tests/anvil.py).
"""
from __future__ import annotations

import pytest

from chain import connect, deploy_coordinator

from .helpers import Market, make_terms

BACKENDS = ["embedded", pytest.param("anvil", marks=pytest.mark.anvil)]


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


