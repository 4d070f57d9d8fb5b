"""The auditor's history replays the key holders' SharePosted events: the share counts it implies equal the
contract's storage, and a custodian step taken with fewer table shares than the published holder threshold is
reported."""
from __future__ import annotations

import dataclasses
from types import SimpleNamespace

from chain import AUDITOR, CUSTODIAN, ShareStage, connect, deploy_coordinator
from protocol.audit_history import read_history
from tests.chain.helpers import INSTRUCTION, Market, digest, make_terms


def _opened_round(tmp_path):
    chain = connect(tmp_path / "data")
    coord = deploy_coordinator(chain, make_terms(chain, evaluators=3, holders=3, holder_threshold=2))
    market = Market(chain, coord, coord.terms())
    market.fund_deposits()
    market.to_computed()
    market.post_shares(ShareStage.MASK, market.holders())           # all three masks
    market.post_shares(ShareStage.TABLE, market.holders()[1:])      # k = 2 tables
    coord.post_instruction(CUSTODIAN, market.round_id, digest("att"), INSTRUCTION.commitment(), True)
    return market


def test_history_replays_shares_and_matches_storage(tmp_path):
    market = _opened_round(tmp_path)
    coord = market.coord
    h = read_history(SimpleNamespace(contract_address=coord.address), coord, market.terms)
    r = h.rounds[market.round_id]
    assert h.problems == {} and r.problems == {}
    assert {stage: len(posted) for stage, posted in r.shares.items()} == {0: 3, 1: 2}
    stored, implied = coord.round(market.round_id), r.state()
    assert (implied.mask_shares, implied.table_shares) == (stored.mask_shares, stored.table_shares) == (3, 2)
    assert r.shares[1] == {a.lower(): d for a, d in coord.share_digests(market.round_id, ShareStage.TABLE).items()}
    assert market.chain.address(AUDITOR).lower() not in r.shares[0]


def test_history_reports_an_instruction_below_the_published_holder_threshold(tmp_path):
    market = _opened_round(tmp_path)
    coord = market.coord
    published = dataclasses.replace(market.terms, holder_threshold=3)  # terms that disagree with the chain's
    r = read_history(SimpleNamespace(contract_address=coord.address), coord, published).rounds[market.round_id]
    problems = r.problems["phase.order"]
    assert any("InstructionPosted" in p and "after 2 table shares, the terms need 3" in p for p in problems)
    assert not any("mask share" in p for p in problems)  # all three masks came before the tables
    assert len(problems) == 1
