"""Fixtures for the protocol tests.

* ``sim_template`` (session): a market on the embedded chain with the circuit's *simulation* backend
  (grid 6, 2-of-2 evaluators) and no rounds; ``fresh_market`` copies it per test (a copy is a full data
  directory: keys, blobs, chain journal), so tests never share mutable state.
* ``sim_demo`` (session): a copy that has run the four demo rounds (read-only users; tamper tests copy it).
* ``anvil_url`` (session, tests/conftest.py): the suite's local anvil node.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

SIM_GRID = 6


@pytest.fixture(scope="session")
def protocol_root():
    """A session directory outside pytest's numbered basetemp: concurrent pytest sessions on the same machine
    prune old basetemps (keeping 3), which would delete a long session's markets under it."""
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="repo-market-protocol-tests-"))
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def scratch(protocol_root, request) -> Path:
    """A fresh per-test directory under the session directory."""
    import tempfile

    return Path(tempfile.mkdtemp(prefix=request.node.name[:40].replace("/", "_") + "-", dir=protocol_root))


@pytest.fixture(scope="session", autouse=True)
def shared_circuit_cache(protocol_root):
    """One compile per terms for the whole session (subprocesses inherit the variable)."""
    from protocol.deployment import CIRCUIT_CACHE_ENV

    path = os.environ.get(CIRCUIT_CACHE_ENV) or str(protocol_root / "circuit-cache")
    old = os.environ.get(CIRCUIT_CACHE_ENV)
    os.environ[CIRCUIT_CACHE_ENV] = path
    yield Path(path)
    if old is None:
        os.environ.pop(CIRCUIT_CACHE_ENV, None)


def audit(path: Path, rounds=None) -> dict:
    """The auditor's report on the market at ``path``, opened read-only as an outside auditor would."""
    from protocol.audit import Auditor
    from protocol.deployment import open_market

    return Auditor(open_market(path, read_only=True)).run(rounds).as_dict()


@pytest.fixture
def demo_copy(sim_demo, scratch):
    """A private copy of the four-round simulate demo market (tamper tests change it)."""
    path, _ = sim_demo
    target = scratch / "market"
    shutil.copytree(path, target, symlinks=True)
    return target


def run_plans(dep, plans, circuit=None):
    """Deal each plan's inputs and drive its round; returns [(round_id, plan, run)]."""
    from protocol.rounds import RoundDriver, next_round_id
    from protocol.scenario import deal_inputs

    driver = RoundDriver(dep, circuit or dep.circuit())
    out = []
    for plan in plans:
        rid = next_round_id(dep)
        deal_inputs(dep, rid, plan)
        out.append((rid, plan, driver.run_round(rid)))
    return out, driver


@pytest.fixture(scope="session")
def sim_template(protocol_root) -> Path:
    from market.terms import MarketTerms
    from protocol.deployment import create_market
    from protocol.scenario import DEFAULT_BASE_RATE

    path = protocol_root / "sim-template" / "market"
    create_market(path, MarketTerms(grid=SIM_GRID, base_rate=DEFAULT_BASE_RATE), backend="simulate",
                  evaluators=2, threshold=2)
    return path


@pytest.fixture
def fresh_market(sim_template, scratch) -> Path:
    target = scratch / "market"
    shutil.copytree(sim_template, target, symlinks=True)
    return target


@pytest.fixture(scope="session")
def sim_demo(sim_template, protocol_root):
    """The four demo rounds on a copy of the template: (path, [(round_id, plan, run)])."""
    from protocol.deployment import open_market
    from protocol.scenario import demo_plans

    path = protocol_root / "sim-demo" / "market"
    shutil.copytree(sim_template, path, symlinks=True)
    dep = open_market(path)
    runs, _ = run_plans(dep, demo_plans(SIM_GRID, 4, seed=0))
    from protocol.report import write_transcript

    for rid, _, run in runs:
        write_transcript(dep, rid, run)
    return path, runs


FHE_GRID = 4


@pytest.fixture(scope="session")
def fhe_threshold_market(protocol_root):
    """A real-FHE market (grid 4, 2-of-2 evaluators, 2-of-3 key holders, 5 slots) that has run the first two demo
    rounds: (path, [(round_id, plan, run)], keyset). ``keyset`` is a copy of the custodian's concrete keyset taken
    just before create_market destroys it, kept inside the tests only to compare with concrete's own decryption."""
    from crypto.fhe_keys import CustodianFheKeys
    from market.terms import MarketTerms
    from protocol.deployment import create_market
    from protocol.report import write_transcript
    from protocol.scenario import DEFAULT_BASE_RATE, demo_plans

    kept = []
    destroy = CustodianFheKeys.destroy_secret_keys

    def keep_then_destroy(keys):
        kept.append(keys.keyset_bytes())
        destroy(keys)

    path = protocol_root / "fhe-threshold" / "market"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(CustodianFheKeys, "destroy_secret_keys", keep_then_destroy)
        dep = create_market(path, MarketTerms(grid=FHE_GRID, base_rate=DEFAULT_BASE_RATE), backend="fhe",
                            evaluators=2, threshold=2, holders=3, holder_threshold=2, slots=5)
    runs, _ = run_plans(dep, demo_plans(FHE_GRID, 2, seed=0))
    for rid, _, run in runs:
        write_transcript(dep, rid, run)
    assert len(kept) == 1
    return path, runs, kept[0]


@pytest.fixture
def fhe_threshold_copy(fhe_threshold_market, scratch):
    """A private copy of the real-FHE threshold market (tamper tests change it)."""
    target = scratch / "market"
    shutil.copytree(fhe_threshold_market[0], target, symlinks=True)
    return target
