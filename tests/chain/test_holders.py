"""k-of-n key holders on the Coordinator, on both backends: the opening inside phase Computed (each holder's
mask share, then its table share once k masks are on chain), the custodian's steps gated on k table shares,
every refusal with its reason, a holder that misses the deadline, and a market without holders."""
from __future__ import annotations

import pytest

from chain import (AUDITOR, CUSTODIAN, DEALER_MM, DEALER_RM, ChainError, ChainInputError, RoundPhase, ShareStage, Side,
                   deploy_coordinator, evaluator_role, key_holder_role)

from .helpers import DEPOSIT, EVIDENCE, INSTRUCTION, Market, digest, make_terms, share_digest
from .test_reverts import refused

MASK, TABLE = ShareStage.MASK, ShareStage.TABLE


@pytest.fixture
def holder_market(chain):
    """2-of-3 key holders, 3 evaluators (k = 2)."""
    coord = deploy_coordinator(chain, make_terms(chain, evaluators=3, holders=3, holder_threshold=2))
    m = Market(chain, coord, coord.terms())
    m.fund_deposits()
    return m


def test_terms_and_holder_views(holder_market):
    coord, chain = holder_market.coord, holder_market.chain
    holders = tuple(chain.address(key_holder_role(i)) for i in (1, 2, 3))
    assert coord.terms() == make_terms(chain, evaluators=3, holders=3, holder_threshold=2)
    assert coord.terms().holders == holders and coord.terms().holder_threshold == 2
    assert coord.holder_count() == 3
    assert [coord.is_holder(h) for h in holders] == [True, True, True]
    assert not coord.is_holder(chain.address(CUSTODIAN)) and not coord.is_holder(chain.address(evaluator_role(0)))
    assert coord.code_identity(holder_market.terms) == []


def test_opening_round_with_two_of_three_holders(holder_market):
    m = holder_market
    coord, chain = m.coord, m.chain
    m.to_computed()
    rid = m.round_id
    h1, h2, h3 = m.holders()
    addr = {role: chain.address(role) for role in (h1, h2, h3)}

    counts = []
    for role in (h1, h2, h3):  # every holder posts its mask share
        res = coord.post_share(role, rid, MASK, share_digest(role, rid, MASK))
        args = res.event("SharePosted").args
        counts.append(args["count"])
        assert args == {"round_id": rid, "holder": addr[role], "stage": 0,
                        "share_digest": share_digest(role, rid, MASK), "count": args["count"]}
        assert coord.phase(rid) is RoundPhase.COMPUTED
    assert counts == [1, 2, 3]
    res = coord.post_share(h3, rid, "table", share_digest(h3, rid, TABLE))  # stage by name
    assert res.event("SharePosted").args["count"] == 1 and res.event("SharePosted").args["stage"] == 1
    refused(m, lambda: coord.post_instruction(CUSTODIAN, rid, digest("att"), INSTRUCTION.commitment(), True),
            "too few table shares")
    res = coord.post_share(h1, rid, 1, share_digest(h1, rid, TABLE))
    assert res.event("SharePosted").args["count"] == 2

    state = coord.round(rid)
    assert (state.mask_shares, state.table_shares) == (3, 2)
    assert (state.shares("mask"), state.shares(TABLE)) == (3, 2)
    assert (coord.share_count(rid, MASK), coord.share_count(rid, TABLE)) == (3, 2)
    word = coord.state_word(rid)
    for i, role in enumerate((h1, h2, h3)):
        for stage in (MASK, TABLE):
            assert coord.has_posted_share(rid, addr[role], stage) == word.share_posted(i, stage)
    assert [coord.has_posted_share(rid, addr[r], TABLE) for r in (h1, h2, h3)] == [True, False, True]
    assert not coord.has_posted_share(rid, chain.address(AUDITOR), MASK)
    assert coord.share_digests(rid, MASK) == {addr[r]: share_digest(r, rid, MASK) for r in (h1, h2, h3)}
    assert list(coord.share_digests(rid, TABLE)) == [addr[h3], addr[h1]]  # chain order

    res = coord.post_instruction(CUSTODIAN, rid, digest("att"), INSTRUCTION.commitment(), True)
    assert coord.phase(rid) is RoundPhase.INSTRUCTED
    # the share bits and counts survive the phase change
    assert (coord.share_count(rid, MASK), coord.share_count(rid, TABLE)) == (3, 2)
    refused(m, lambda: coord.post_share(h2, rid, TABLE, share_digest(h2, rid, TABLE)), "round not in phase Computed")

    coord.execute_mm_leg(DEALER_MM, rid, INSTRUCTION.r_mm, INSTRUCTION.volume, EVIDENCE)
    coord.execute_rm_leg(DEALER_RM, rid, INSTRUCTION.r_rm, INSTRUCTION.volume, EVIDENCE)
    chain.mine(m.terms.windows.challenge)
    coord.settle(AUDITOR, rid)
    m.to_settled()  # the next round starts from zero shares; k of each stage
    assert m.round_id == rid + 1 and coord.phase(m.round_id) is RoundPhase.SETTLED
    assert (coord.share_count(m.round_id, MASK), coord.share_count(m.round_id, TABLE)) == (2, 2)


def test_post_share_reverts(holder_market):
    m = holder_market
    coord = m.coord
    h1, h2, h3 = m.holders()

    def share(role, stage, rid=1, value=None):
        return lambda: coord.post_share(role, rid, stage, share_digest(role, rid, stage) if value is None else value)

    refused(m, share(h1, MASK), "unknown round")
    m.to_reported()
    for role in (CUSTODIAN, DEALER_MM, evaluator_role(0), AUDITOR):  # wrong caller
        refused(m, share(role, MASK), "only a key holder may post a share")
    refused(m, share(h1, MASK), "round not in phase Computed")
    for role in m.evaluators()[:2]:
        coord.post_output(role, 1, digest("output"))
    refused(m, share(h1, MASK, rid=2), "unknown round")
    refused(m, share(h1, MASK, value=bytes(32)), "zero digest")
    refused(m, lambda: m.chain.send(h1, coord.contract, "post_share", (1, 2, digest("s"))), "unknown share stage")
    refused(m, share(h1, TABLE), "own mask share not posted")
    coord.post_share(h1, 1, MASK, share_digest(h1, 1, MASK))
    refused(m, share(h1, MASK), "mask share already posted")
    refused(m, share(h1, TABLE), "too few mask shares")  # 1 of k = 2
    refused(m, share(h2, TABLE), "own mask share not posted")
    coord.post_share(h2, 1, MASK, share_digest(h2, 1, MASK))
    coord.post_share(h1, 1, TABLE, share_digest(h1, 1, TABLE))
    refused(m, share(h1, TABLE), "table share already posted")
    refused(m, share(h3, TABLE), "own mask share not posted")
    refused(m, lambda: coord.report_invalid_input(CUSTODIAN, 1, digest("att"), Side.MM), "too few table shares")
    m.pass_deadline()  # a late holder
    refused(m, share(h2, TABLE), "deadline passed")
    refused(m, share(h3, MASK), "deadline passed")
    assert coord.share_count(1, MASK) == 2 and coord.share_count(1, TABLE) == 1


def test_post_share_arguments_validated_before_sending(holder_market):
    coord = holder_market.coord
    with pytest.raises(ChainInputError, match="stage"):
        coord.post_share(key_holder_role(1), 1, 2, digest("s"))
    with pytest.raises(ChainInputError, match="stage"):
        coord.post_share(key_holder_role(1), 1, "bitmap", digest("s"))
    with pytest.raises(ChainInputError, match="share_digest"):
        coord.post_share(key_holder_role(1), 1, MASK, b"short")
    with pytest.raises(ChainInputError, match="round_id"):
        coord.post_share(key_holder_role(1), -1, MASK, digest("s"))


def test_instruction_and_invalid_input_need_k_table_shares(holder_market):
    m = holder_market
    coord = m.coord
    m.to_computed()
    args = (digest("att"), INSTRUCTION.commitment(), True)
    refused(m, lambda: coord.post_instruction(CUSTODIAN, 1, *args), "too few table shares")
    m.post_shares(MASK)
    refused(m, lambda: coord.post_instruction(CUSTODIAN, 1, *args), "too few table shares")
    m.post_shares(TABLE, m.holders()[:1])
    refused(m, lambda: coord.report_invalid_input(CUSTODIAN, 1, digest("att"), Side.RM), "too few table shares")
    m.post_shares(TABLE, m.holders()[1:2])
    res = coord.report_invalid_input(CUSTODIAN, 1, digest("att"), Side.RM)
    assert res.event("Forfeited").args["offender"] == m.chain.address("dealer_rm")
    assert coord.phase(1) is RoundPhase.FORFEITED


def test_a_holder_missing_the_deadline_cancels_the_round(holder_market):
    m = holder_market
    coord = m.coord
    m.to_computed()
    m.post_shares(MASK)
    m.post_shares(TABLE, m.holders()[:1])  # the second table share never comes
    refused(m, lambda: coord.enforce_deadline(AUDITOR, 1), "deadline not passed")
    m.pass_deadline()
    coord.enforce_deadline(AUDITOR, 1)
    assert coord.phase(1) is RoundPhase.CANCELLED
    assert coord.deposit_of(m.chain.address(DEALER_MM)) == DEPOSIT and not coord.round_open()


def test_a_market_without_holders_skips_the_opening(market):
    coord = market.coord
    assert coord.terms().holders == () and coord.terms().holder_threshold == 0 and coord.holder_count() == 0
    market.to_computed()
    refused(market, lambda: coord.post_share(key_holder_role(1), 1, MASK, digest("s")),
            "only a key holder may post a share")
    coord.post_instruction(CUSTODIAN, 1, digest("att"), INSTRUCTION.commitment(), True)
    assert coord.phase(1) is RoundPhase.INSTRUCTED
    assert (coord.round(1).mask_shares, coord.round(1).table_shares) == (0, 0)


def test_one_of_one_holder(chain):
    """holder_threshold = 1: one holder's mask then table share open the output."""
    coord = deploy_coordinator(chain, make_terms(chain, holders=1, holder_threshold=1))
    m = Market(chain, coord, coord.terms())
    m.fund_deposits()
    m.to_instructed()
    assert coord.phase(1) is RoundPhase.INSTRUCTED
    assert (coord.share_count(1, MASK), coord.share_count(1, TABLE)) == (1, 1)


def test_share_views_refuse_an_unknown_stage(holder_market):
    with pytest.raises(ChainError) as excinfo:
        holder_market.chain.call(holder_market.coord.contract, "share_count", 1, 2)
    assert "unknown share stage" in str(excinfo.value.reason)
