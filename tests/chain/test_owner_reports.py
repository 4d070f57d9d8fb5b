"""Dealers' own encrypted reports on chain, on both backends: commit (report + blob commitment), reveal, and
the two ways an invalid report forfeits its dealer's deposit (k evaluators' faults; the custodian's decrypted
invalid flag)."""
from __future__ import annotations

import pytest

from chain import (AUDITOR, CUSTODIAN, DEALER_MM, DEALER_RM, ForfeitReason, RoundPhase, Side, deploy_coordinator,
                   evaluator_role)

from .helpers import DEPOSIT, NO_TRADE, Market, blob_of, commit, digest, make_terms, reveal
from .test_reverts import refused

OTHER = {DEALER_MM: DEALER_RM, DEALER_RM: DEALER_MM}


def test_honest_commit_reveal(market):
    coord, chain = market.coord, market.chain
    market.to_revealing()
    rs = coord.round(1)
    assert rs.phase is RoundPhase.REVEALING and rs.ciphertext_digest_mm == rs.ciphertext_digest_rm == bytes(32)
    # reveal order does not matter; the second reveal moves the round to Reported
    res = reveal(coord, DEALER_RM, 1)
    assert [e.name for e in res.events] == ["ReportRevealed"]
    res = reveal(coord, DEALER_MM, 1)
    assert [e.name for e in res.events] == ["ReportRevealed", "PhaseChanged"]
    assert res.event("PhaseChanged").args["phase"] == RoundPhase.REPORTED
    rs = coord.round(1)
    assert (rs.ciphertext(Side.MM), rs.ciphertext(Side.RM)) == (blob_of(DEALER_MM, 1), blob_of(DEALER_RM, 1))
    assert [e.args["dealer"] for e in coord.events("ReportRevealed", round_id=1)] == [
        chain.address(DEALER_RM), chain.address(DEALER_MM)]


@pytest.mark.parametrize("offender", [DEALER_MM, DEALER_RM])
def test_late_reveal_forfeits(market, offender):
    coord, chain = market.coord, market.chain
    market.to_revealing()
    reveal(coord, OTHER[offender], 1)
    market.pass_deadline()
    refused(market, lambda: reveal(coord, offender, 1), "deadline passed")
    res = coord.enforce_deadline(AUDITOR, 1)
    assert res.event("Forfeited").args == {"round_id": 1, "offender": chain.address(offender),
                                           "beneficiary": chain.address(OTHER[offender]), "amount": DEPOSIT,
                                           "reason": ForfeitReason.MISSED_DEADLINE}
    assert coord.phase(1) is RoundPhase.FORFEITED


def test_mismatched_reveal_never_lands_and_forfeits(market):
    coord = market.coord
    market.to_revealing()
    reveal(coord, DEALER_MM, 1)
    refused(market, lambda: reveal(coord, DEALER_RM, 1, digest("a swapped blob")), "reveal does not match commitment")
    market.pass_deadline()
    assert coord.enforce_deadline(AUDITOR, 1).event("Forfeited").args["offender"] == market.chain.address(DEALER_RM)


def test_neither_reveals_cancels(market):
    coord = market.coord
    market.to_revealing()
    market.pass_deadline()
    res = coord.enforce_deadline(AUDITOR, 1)
    assert not [e for e in res.events if e.name == "Forfeited"]
    assert coord.phase(1) is RoundPhase.CANCELLED and not coord.round_open()


# ------------------------------------------------------------------ evaluators' faults

@pytest.mark.parametrize("side", [Side.MM, Side.RM])
def test_k_evaluator_faults_forfeit_that_dealer(chain, side):
    coord = deploy_coordinator(chain, make_terms(chain, evaluators=3, threshold=2))
    m = Market(chain, coord, coord.terms())
    m.fund_deposits()
    m.to_reported()
    offender = DEALER_MM if side is Side.MM else DEALER_RM
    res = coord.post_fault(evaluator_role(0), 1, side, digest("fault"))
    assert res.event("FaultPosted").args == {"round_id": 1, "evaluator": chain.address(evaluator_role(0)),
                                             "side": side.index, "fault_digest": digest("fault"), "votes": 1}
    assert coord.state_word(1).faults(side) == 1 and coord.phase(1) is RoundPhase.REPORTED
    assert coord.has_posted_output(1, chain.address(evaluator_role(0)))
    refused(m, lambda: coord.post_output(evaluator_role(0), 1, digest("o")), "evaluator already posted")
    coord.post_output(evaluator_role(1), 1, digest("o"))  # one evaluator computed: no agreement either way
    res = coord.post_fault(evaluator_role(2), 1, side, digest("another fault record"))
    assert res.event("FaultPosted").args["votes"] == 2
    assert res.event("Forfeited").args == {"round_id": 1, "offender": chain.address(offender),
                                           "beneficiary": chain.address(OTHER[offender]), "amount": DEPOSIT,
                                           "reason": ForfeitReason.INVALID_REPORT}
    assert coord.phase(1) is RoundPhase.FORFEITED
    assert coord.withdrawable_of(chain.address(OTHER[offender])) == DEPOSIT


def test_faults_on_different_sides_do_not_add_up(market):
    coord = market.coord
    market.to_reported()
    coord.post_fault(evaluator_role(0), 1, Side.MM, digest("f"))
    coord.post_fault(evaluator_role(1), 1, Side.RM, digest("f"))
    word = coord.state_word(1)
    assert (word.faults("mm"), word.faults("rm"), word.phase) == (1, 1, RoundPhase.REPORTED)
    market.pass_deadline()
    coord.enforce_deadline(AUDITOR, 1)
    assert coord.phase(1) is RoundPhase.CANCELLED


def test_post_fault_reverts(market):
    coord = market.coord
    refused(market, lambda: coord.post_fault(CUSTODIAN, 1, Side.MM, digest("f")), "only an evaluator may post a fault")
    market.to_revealing()
    refused(market, lambda: coord.post_fault(evaluator_role(0), 1, Side.MM, digest("f")), "round not in phase Reported")
    reveal(coord, DEALER_MM, 1)
    reveal(coord, DEALER_RM, 1)
    refused(market, lambda: market.chain.send(evaluator_role(0), coord.contract, "post_fault", (1, 2, digest("f"))),
            "unknown side")
    refused(market, lambda: coord.post_fault(evaluator_role(0), 1, Side.MM, bytes(32)), "zero digest")
    coord.post_output(evaluator_role(0), 1, digest("o"))
    refused(market, lambda: coord.post_fault(evaluator_role(0), 1, Side.MM, digest("f")), "evaluator already posted")
    market.pass_deadline()
    refused(market, lambda: coord.post_fault(evaluator_role(1), 1, Side.MM, digest("f")), "deadline passed")


# ------------------------------------------------------------------ the custodian's invalid flag

@pytest.mark.parametrize("side", [Side.MM, Side.RM])
def test_invalid_input_flag_forfeits_that_dealer(market, side):
    coord, chain = market.coord, market.chain
    market.to_computed()
    offender = DEALER_MM if side is Side.MM else DEALER_RM
    res = coord.report_invalid_input(CUSTODIAN, 1, digest("attestation"), side)
    assert res.event("InputInvalid").args == {"round_id": 1, "side": side.index, "attestation_digest": digest("attestation")}
    assert res.event("Forfeited").args == {"round_id": 1, "offender": chain.address(offender),
                                           "beneficiary": chain.address(OTHER[offender]), "amount": DEPOSIT,
                                           "reason": ForfeitReason.INVALID_INPUT}
    rs = coord.round(1)
    assert rs.phase is RoundPhase.FORFEITED and rs.attestation_digest == digest("attestation")


def test_both_inputs_invalid_close_without_trade(market):
    """[decided] both flags: no harmed party, the custodian posts a no-trade instruction."""
    market.to_instructed(NO_TRADE)
    assert market.coord.phase(1) is RoundPhase.SETTLED
    assert market.coord.deposit_of(market.chain.address(DEALER_MM)) == DEPOSIT


def test_report_invalid_input_reverts(market):
    coord = market.coord
    refused(market, lambda: coord.report_invalid_input(CUSTODIAN, 1, digest("a"), Side.MM), "unknown round")
    market.to_reported()
    refused(market, lambda: coord.report_invalid_input(CUSTODIAN, 1, digest("a"), Side.MM),
            "round not in phase Computed")
    for role in market.evaluators():
        coord.post_output(role, 1, digest("o"))
    refused(market, lambda: coord.report_invalid_input(DEALER_MM, 1, digest("a"), Side.RM), "wrong caller")
    refused(market, lambda: coord.report_invalid_input(CUSTODIAN, 1, bytes(32), Side.RM), "zero digest")
    refused(market, lambda: market.chain.send(CUSTODIAN, coord.contract, "report_invalid_input", (1, digest("a"), 2)),
            "unknown side")
    market.pass_deadline()
    refused(market, lambda: coord.report_invalid_input(CUSTODIAN, 1, digest("a"), Side.RM), "deadline passed")
