"""Session-scoped FHE fixtures: one small circuit (N = 3, 10-bit offsets) compiled once, one keyset.

Real TFHE is slow (default radix circuit at N = 3: compile ~5 s, keygen ~3 s, a run ~2 s), so every FHE test shares these; the large grids are measured in
``benchmarks/bench_fhe.py``.
"""
from __future__ import annotations

import pytest

from market.terms import MarketTerms

GRID = 3
BASE_RATE = 100


@pytest.fixture(scope="session")
def fhe_terms() -> MarketTerms:
    return MarketTerms(grid=GRID, base_rate=BASE_RATE, rate_bits=10, hurdle_bits=8, hurdle_mode="margin")


@pytest.fixture(scope="session")
def fhe_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("circuits")


@pytest.fixture(scope="session")
def selection_circuit(fhe_terms, fhe_cache):
    from crypto.circuit import SelectionCircuit

    return SelectionCircuit.for_terms(fhe_terms, fhe_cache)


@pytest.fixture(scope="session")
def custodian_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("custodian")


@pytest.fixture(scope="session")
def custodian_keys(selection_circuit, custodian_dir):
    from crypto.fhe_keys import CustodianFheKeys

    return CustodianFheKeys.generate(selection_circuit, custodian_dir)


@pytest.fixture(scope="session")
def evaluation_keys(custodian_keys) -> bytes:
    return custodian_keys.evaluation_keys_bytes()
