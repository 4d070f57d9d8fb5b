"""market.json parsed once into a typed, frozen MarketDescriptor: the facts as published, refusals naming the field
and the value, one address -> role lookup, and the Coordinator terms read back equal to the deployed ones."""
from __future__ import annotations

import dataclasses
import json

import pytest

from chain import PhaseWindows
from common.vocabulary import CUSTODIAN, DEALER_MM, DEALER_RM
from protocol.deployment import DeploymentError, open_market, published_coordinator_terms
from protocol.descriptor import MarketDescriptor
from protocol.layout import DataDir


def test_a_created_market_parses_to_the_facts_it_publishes(fresh_market):
    path = DataDir(fresh_market).market_file
    before = path.read_bytes()
    raw = json.loads(before)
    dep = open_market(fresh_market)
    m = dep.market
    assert isinstance(m, MarketDescriptor)
    assert (m.backend, m.contract, m.chain_id) == (raw["backend"], raw["contract"], raw["chain"]["chain_id"])
    assert m.terms.as_dict() == raw["terms"] and m.terms.grid == raw["terms"]["grid"]
    assert list(m.evaluators) == raw["evaluators"]["roles"] == dep.evaluators and m.threshold == 2
    assert (m.holders, m.holder_threshold, m.slots) == ((), 0, 0)  # simulate: no key holders
    assert dict(m.addresses) == raw["addresses"]
    assert m.published_identities() == raw["identities"]
    assert m.deposit_minimum_wei == raw["deposit"]["minimum_wei"] > 0
    assert dict(m.windows) == raw["windows"] == PhaseWindows().as_dict()
    assert dict(m.endowment) == raw["endowment"]
    assert m.digest("circuit").hex() == raw["digests"]["circuit"] and m.digests["crs"] is None
    assert m.input_proofs is False
    assert path.read_bytes() == before  # reading never rewrites market.json


def test_the_descriptor_is_frozen(fresh_market):
    m = open_market(fresh_market).market
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.backend = "fhe"
    with pytest.raises(TypeError):
        m.addresses[DEALER_MM] = "0x" + "00" * 20


def test_role_of_is_case_insensitive_and_none_for_an_unknown_address(fresh_market):
    dep = open_market(fresh_market)
    address = dep.address(DEALER_RM)
    assert address != address.lower()  # published checksummed
    for form in (address, address.lower(), "0x" + address[2:].upper()):
        assert dep.role_of(form) == DEALER_RM
    assert dep.role_of(dep.address(CUSTODIAN)) == CUSTODIAN
    assert dep.role_of("0x" + "ab" * 20) is None


@pytest.mark.parametrize("field, value, match", [
    (("deposit", "minimum_wei"), "12", "deposit.minimum_wei = '12': expected an integer >= 0"),
    (("addresses", "dealer_mm"), "0x12", "addresses.dealer_mm = '0x12': expected an address"),
    (("digests", "circuit"), "zz", "digests.circuit = 'zz': expected a SHA-256 digest"),
    (("evaluators", "roles"), ["evaluator_0", "evaluator_9"], "evaluators.roles = ['evaluator_9']: roles without"),
    (("chain", "chain_id"), -1, "chain.chain_id = -1: expected an integer >= 0"),
    (("backend",), "quantum", "backend = 'quantum': expected one of fhe, simulate"),
    (("terms", "grid"), "six", "terms = "),
    (("windows", "report"), 2.5, "windows.report = 2.5: expected an integer"),
])
def test_a_malformed_field_is_refused_when_the_market_is_opened(fresh_market, field, value, match):
    path = DataDir(fresh_market).market_file
    doc = json.loads(path.read_text())
    node = doc
    for key in field[:-1]:
        node = node[key]
    node[field[-1]] = value
    path.write_text(json.dumps(doc))
    with pytest.raises(DeploymentError, match=r"market\.json: ") as refused:
        open_market(fresh_market)
    assert match in str(refused.value)


def test_the_published_coordinator_terms_are_the_deployed_ones(fresh_market):
    """One builder: the terms create_market deployed and the ones read back from market.json are equal."""
    dep = open_market(fresh_market, read_only=True)
    assert published_coordinator_terms(dep) == dep.coordinator.terms()
