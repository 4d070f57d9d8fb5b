"""Every revert path of the Coordinator, on both backends, with its exact reason string.

A refused step must leave no trace: no block mined, no state changed.
"""
from __future__ import annotations

import dataclasses

import pytest

from chain import (AUDITOR, CUSTODIAN, DEALER_MM, DEALER_RM, ChainError, ChainInputError, ForfeitReason,
                   InstructionPreimage, RoundPhase, Side, deploy_coordinator, evaluator_role, blob_commitment)

from .helpers import DEPOSIT, EVIDENCE, INSTRUCTION, Market, blob_of, commit, digest, make_terms, reveal


def refused(market, step, expected_reason):
    """Run step(); it must raise ChainError(expected_reason) and mine nothing."""
    head = market.chain.block_number
    with pytest.raises(ChainError) as excinfo:
        step()
    assert excinfo.value.reason == expected_reason
    assert market.chain.block_number == head
    return excinfo.value


# ------------------------------------------------------------------ constructor

CONSTRUCTOR_CASES = [
    ("grid", 0, "grid must be at least 1"),
    ("rate_bits", 0, "rate_bits out of range"),
    ("rate_bits", 65, "rate_bits out of range"),
    ("hurdle_mode", 2, "unknown hurdle mode"),
    ("deposit_minimum", 0, "deposit minimum must be positive"),
    ("dealer_mm", "0x" + "00" * 20, "zero dealer address"),
    ("dealer_rm", "same-as-mm", "dealers must differ"),
    ("custodian", "0x" + "00" * 20, "zero custodian address"),
    ("custodian", "same-as-mm", "custodian must not be a dealer"),
    ("evaluators", [], "no evaluators"),
    ("evaluators", "zero-first", "zero evaluator address"),
    ("evaluators", "duplicate", "duplicate evaluator"),
    ("threshold", 0, "threshold out of range"),
    ("threshold", 3, "threshold out of range"),
    ("windows", [1, 1, 0, 1, 1, 1, 1], "window must be at least one block"),
    ("holders", "zero-first", "zero holder address"),
    ("holders", "duplicate", "duplicate holder"),
    ("holders", "dealer_mm", "holder must not be a dealer"),
    ("holders", "dealer_rm", "holder must not be a dealer"),
    ("holders", "custodian", "holder must not be the custodian"),
    ("holders", "evaluators", "holder must not be an evaluator"),
    ("holder_threshold", 0, "holder threshold out of range"),
    ("holder_threshold", 4, "holder threshold out of range"),
    ("holders", [], "holder threshold without holders"),
]
ARG_INDEX = {"grid": 0, "rate_bits": 2, "hurdle_mode": 3, "deposit_minimum": 4, "dealer_mm": 9, "dealer_rm": 10,
             "custodian": 11, "evaluators": 12, "threshold": 13, "holders": 14, "holder_threshold": 15,
             "windows": 16}


@pytest.mark.parametrize("field,value,expected", CONSTRUCTOR_CASES, ids=[c[2] + "-" + c[0] for c in CONSTRUCTOR_CASES])
def test_constructor_rejects_bad_terms(chain, field, value, expected):
    args = make_terms(chain, holders=3, holder_threshold=2).constructor_args()
    if value == "same-as-mm":
        value = args[ARG_INDEX["dealer_mm"]]
    elif value == "duplicate":
        value = [args[ARG_INDEX[field]][0], args[ARG_INDEX[field]][0]]
    elif value == "zero-first":
        value = ["0x" + "00" * 20, args[ARG_INDEX[field]][0]]
    elif field == "holders" and isinstance(value, str):  # a holder that is another role's address
        other = args[ARG_INDEX[value]]
        value = [args[ARG_INDEX["holders"]][0], other[-1] if isinstance(other, list) else other]
    args[ARG_INDEX[field]] = value
    head = chain.block_number
    with pytest.raises(ChainError) as excinfo:
        chain.deploy(chain.compile("Coordinator"), args)
    assert excinfo.value.reason == expected
    assert chain.block_number == head


PY_TERMS_CASES = [
    ("grid", 0, "grid"), ("rate_bits", 65, "rate_bits"), ("hurdle_mode", "both", "hurdle_mode"),
    ("deposit_minimum", 0, "deposit_minimum"), ("terms_digest", b"short", "terms_digest"),
    ("dealer_mm", "0x12", "dealer_mm"), ("evaluators", (), "evaluators"), ("threshold", 3, "threshold"),
    ("base_rate", -1, "base_rate"), ("grid", 2.5, "grid"), ("grid", True, "grid"),
    ("holders", ["0x" + "11" * 20], "holders"),
    ("holders", ("0x" + "11" * 20,) * 2, "holders"), ("holders", ("0x" + "11" * 20,) * 17, "holders"),
    ("holder_threshold", 1, "holder_threshold"), ("holder_threshold", -1, "holder_threshold"),
]


@pytest.mark.parametrize("field,value,named", PY_TERMS_CASES, ids=[f"{c[0]}={c[1]!r}" for c in PY_TERMS_CASES])
def test_terms_validated_before_sending(field, value, named):
    class Addr:  # make_terms only needs chain.address
        @staticmethod
        def address(role):
            from chain.accounts import account_for
            return account_for(0, role).address

    valid = make_terms(Addr)
    with pytest.raises(ChainInputError) as excinfo:
        dataclasses.replace(valid, **{field: value})
    assert named in str(excinfo.value) and repr(value)[:6] in str(excinfo.value)


HOLDER_TERMS_CASES = [  # (holders as roles, holder_threshold, the message)
    (("key_holder_1", "dealer_mm"), 1, "holders[1] must not be a dealer"),
    (("custodian",), 1, "holders[0] must not be the custodian"),
    (("key_holder_1", "evaluator_1"), 2, "holders[1] must not be an evaluator"),
    (("key_holder_1", "key_holder_2"), 0, "holder_threshold must be in 1..2, got 0"),
    (("key_holder_1", "key_holder_2"), 3, "holder_threshold must be in 1..2, got 3"),
    ((), 2, "holder_threshold must be 0 without holders, got 2"),
]


@pytest.mark.parametrize("roles,k,message", HOLDER_TERMS_CASES, ids=[c[2] for c in HOLDER_TERMS_CASES])
def test_holder_terms_validated_before_sending(roles, k, message):
    from chain.accounts import account_for

    class Addr:
        @staticmethod
        def address(role):
            return account_for(0, role).address

    valid = make_terms(Addr)
    with pytest.raises(ChainInputError) as excinfo:
        dataclasses.replace(valid, holders=tuple(Addr.address(r) for r in roles), holder_threshold=k)
    assert message in str(excinfo.value)


# ------------------------------------------------------------------ deposits and withdrawals

def test_deposit_reverts(market):
    coord = market.coord
    refused(market, lambda: coord.deposit(CUSTODIAN, DEPOSIT), "only a dealer may deposit")
    refused(market, lambda: coord.deposit(DEALER_MM, 0), "zero deposit")


def test_first_deposit_below_minimum_reverts(chain):
    coord = deploy_coordinator(chain, make_terms(chain))
    m = Market(chain, coord, coord.terms())
    refused(m, lambda: coord.deposit(DEALER_MM, DEPOSIT - 1), "deposit below minimum")


def test_withdraw_reverts(market):
    coord = market.coord
    refused(market, lambda: coord.withdraw(AUDITOR), "nothing to withdraw")
    market.open()
    refused(market, lambda: coord.withdraw(DEALER_MM), "nothing to withdraw")  # deposit locked
    refused(market, lambda: coord.withdraw(DEALER_RM), "nothing to withdraw")


# ------------------------------------------------------------------ commit_report

def test_commit_report_reverts(market):
    coord = market.coord
    blob = blob_commitment(blob_of(DEALER_MM, 1), "mm", 1, coord.address)
    refused(market, lambda: coord.commit_report(CUSTODIAN, 1, digest("r"), blob), "only a dealer may commit a report")
    refused(market, lambda: coord.commit_report(DEALER_MM, 1, b"\0" * 32, blob), "zero commitment")
    refused(market, lambda: coord.commit_report(DEALER_MM, 1, digest("r"), b"\0" * 32), "zero commitment")
    refused(market, lambda: commit(coord, DEALER_MM, 2), "unknown round")
    refused(market, lambda: commit(coord, DEALER_MM, 0), "unknown round")
    market.open()
    refused(market, lambda: commit(coord, DEALER_MM, 1), "report already committed")
    refused(market, lambda: commit(coord, DEALER_RM, 2), "previous round still open")
    market.pass_deadline()
    refused(market, lambda: commit(coord, DEALER_RM, 1), "deadline passed")


def test_commit_report_after_committed_phase_reverts(market):
    market.to_revealing()
    refused(market, lambda: commit(market.coord, DEALER_RM, 1), "round not in phase Committed")
    reveal(market.coord, DEALER_MM, 1)
    reveal(market.coord, DEALER_RM, 1)
    refused(market, lambda: commit(market.coord, DEALER_RM, 1), "round not in phase Committed")
    refused(market, lambda: commit(market.coord, DEALER_RM, 2), "previous round still open")


@pytest.mark.parametrize("missing", [DEALER_MM, DEALER_RM])
def test_opening_needs_both_deposits(chain, missing):
    coord = deploy_coordinator(chain, make_terms(chain))
    m = Market(chain, coord, coord.terms())
    present = DEALER_RM if missing == DEALER_MM else DEALER_MM
    coord.deposit(present, DEPOSIT)
    refused(m, lambda: commit(coord, present, 1), f"{missing} deposit below minimum")


# ------------------------------------------------------------------ reveal_report

def test_reveal_before_both_commitments_reverts(market):
    coord = market.coord
    refused(market, lambda: reveal(coord, DEALER_MM, 1), "unknown round")
    market.open()  # only dealer_mm committed
    refused(market, lambda: reveal(coord, DEALER_MM, 1), "both dealers must commit before a reveal")
    refused(market, lambda: reveal(coord, DEALER_RM, 1), "both dealers must commit before a reveal")
    assert coord.phase(1) is RoundPhase.COMMITTED and coord.round(1).ciphertext_digest_mm == bytes(32)


def test_reveal_report_reverts(market):
    coord = market.coord
    market.to_revealing()
    refused(market, lambda: reveal(coord, CUSTODIAN, 1), "only a dealer may reveal a report")
    refused(market, lambda: reveal(coord, evaluator_role(0), 1), "only a dealer may reveal a report")
    refused(market, lambda: reveal(coord, DEALER_MM, 1, bytes(32)), "zero digest")
    # another blob, the other dealer's blob, the right blob under the other side: none opens the commitment
    refused(market, lambda: reveal(coord, DEALER_MM, 1, digest("another blob")), "reveal does not match commitment")
    refused(market, lambda: reveal(coord, DEALER_RM, 1, blob_of(DEALER_MM, 1)), "reveal does not match commitment")
    refused(market, lambda: reveal(coord, DEALER_MM, 2), "unknown round")
    reveal(coord, DEALER_MM, 1)
    refused(market, lambda: reveal(coord, DEALER_MM, 1), "report already revealed")  # double reveal
    assert coord.phase(1) is RoundPhase.REVEALING
    market.pass_deadline()
    refused(market, lambda: reveal(coord, DEALER_RM, 1), "deadline passed")  # late reveal
    reveal_phase_closed = coord.enforce_deadline(AUDITOR, 1)
    assert reveal_phase_closed.event("Forfeited").args["offender"] == market.chain.address(DEALER_RM)
    refused(market, lambda: reveal(coord, DEALER_RM, 1), "round not in phase Revealing")


def test_reveal_after_reported_reverts(market):
    market.to_reported()
    refused(market, lambda: reveal(market.coord, DEALER_MM, 1), "round not in phase Revealing")


def test_blob_commitment_binds_side_round_and_contract(market):
    coord, blob = market.coord, blob_of(DEALER_MM, 1)
    mine = blob_commitment(blob, "mm", 1, coord.address)
    assert len({mine, blob_commitment(blob, "rm", 1, coord.address), blob_commitment(blob, "mm", 2, coord.address),
                blob_commitment(blob, "mm", 1, market.chain.address(AUDITOR))}) == 4
    # dealer_rm copies dealer_mm's blob commitment: its reveal of dealer_mm's blob cannot open it
    coord.commit_report(DEALER_MM, 1, digest("r"), mine)
    coord.commit_report(DEALER_RM, 1, digest("r"), mine)
    refused(market, lambda: reveal(coord, DEALER_RM, 1, blob), "reveal does not match commitment")


# ------------------------------------------------------------------ custodian and evaluators

def test_post_output_reverts(market):
    coord = market.coord
    refused(market, lambda: coord.post_output(CUSTODIAN, 1, digest("o")), "only an evaluator may post an output")
    market.open()
    refused(market, lambda: coord.post_output(evaluator_role(0), 1, digest("o")), "round not in phase Reported")
    commit(coord, DEALER_RM, 1)
    refused(market, lambda: coord.post_output(evaluator_role(0), 1, digest("o")), "round not in phase Reported")
    reveal(coord, DEALER_MM, 1)
    reveal(coord, DEALER_RM, 1)
    refused(market, lambda: coord.post_output(evaluator_role(0), 1, b"\0" * 32), "zero digest")
    coord.post_output(evaluator_role(0), 1, digest("o"))
    refused(market, lambda: coord.post_output(evaluator_role(0), 1, digest("p")), "evaluator already posted")
    market.pass_deadline()
    refused(market, lambda: coord.post_output(evaluator_role(1), 1, digest("o")), "deadline passed")


def test_post_instruction_reverts(market):
    coord = market.coord
    args = (digest("att"), INSTRUCTION.commitment(), True)
    market.to_reported()
    refused(market, lambda: coord.post_instruction(CUSTODIAN, 1, *args), "round not in phase Computed")
    for role in market.evaluators():
        coord.post_output(role, 1, digest("o"))
    refused(market, lambda: coord.post_instruction(DEALER_MM, 1, *args), "wrong caller")
    refused(market, lambda: coord.post_instruction(CUSTODIAN, 1, b"\0" * 32, args[1], True), "zero digest")
    refused(market, lambda: coord.post_instruction(CUSTODIAN, 1, args[0], b"\0" * 32, True), "zero digest")
    market.pass_deadline()
    refused(market, lambda: coord.post_instruction(CUSTODIAN, 1, *args), "deadline passed")


# ------------------------------------------------------------------ legs

def test_execute_mm_leg_reverts(market):
    coord = market.coord
    market.to_computed()
    refused(market, lambda: coord.execute_mm_leg(DEALER_MM, 1, 415, 15, EVIDENCE), "round not in phase Instructed")
    coord.post_instruction(CUSTODIAN, 1, digest("att"), INSTRUCTION.commitment(), True)
    refused(market, lambda: coord.execute_mm_leg(DEALER_RM, 1, 415, 15, EVIDENCE), "wrong caller")
    refused(market, lambda: market.chain.send(DEALER_MM, coord.contract, "execute_mm_leg", (1, 2**128, 15, EVIDENCE)),
            "rate or volume out of range")
    refused(market, lambda: coord.execute_mm_leg(DEALER_MM, 1, 415, 15, bytes(32)), "zero digest")
    market.pass_deadline()
    refused(market, lambda: coord.execute_mm_leg(DEALER_MM, 1, 415, 15, EVIDENCE), "deadline passed")


def test_execute_rm_leg_reverts(market):
    coord = market.coord
    market.to_instructed()
    refused(market, lambda: coord.execute_rm_leg(DEALER_RM, 1, 445, 15, EVIDENCE), "round not in phase MmLegDone")
    coord.execute_mm_leg(DEALER_MM, 1, 415, 15, EVIDENCE)
    refused(market, lambda: coord.execute_rm_leg(DEALER_MM, 1, 445, 15, EVIDENCE), "wrong caller")
    refused(market, lambda: coord.execute_rm_leg(DEALER_RM, 1, 445, 15, bytes(32)), "zero digest")
    market.pass_deadline()
    refused(market, lambda: coord.execute_rm_leg(DEALER_RM, 1, 445, 15, EVIDENCE), "deadline passed")


def test_leg_arguments_validated_before_sending(market):
    with pytest.raises(ChainInputError, match="rate"):
        market.coord.execute_mm_leg(DEALER_MM, 1, -1, 15, EVIDENCE)
    with pytest.raises(ChainInputError, match="volume"):
        market.coord.execute_rm_leg(DEALER_RM, 1, 445, 2**128, EVIDENCE)
    with pytest.raises(ChainInputError, match="evidence"):
        market.coord.execute_mm_leg(DEALER_MM, 1, 415, 15, b"short")
    with pytest.raises(ChainInputError, match="commitment"):
        market.coord.commit_report(DEALER_MM, 1, b"not 32 bytes", digest("b"))
    with pytest.raises(ChainInputError, match="side"):
        market.coord.prove_deviation(AUDITOR, 1, 2, INSTRUCTION)


# ------------------------------------------------------------------ settle

def test_settle_reverts(market):
    coord = market.coord
    refused(market, lambda: coord.settle(AUDITOR, 1), "unknown round")
    market.to_mm_leg_done()
    refused(market, lambda: coord.settle(AUDITOR, 1), "round not in phase RmLegDone")
    coord.execute_rm_leg(DEALER_RM, 1, 445, 15, EVIDENCE)
    refused(market, lambda: coord.settle(AUDITOR, 1), "challenge window still open")
    market.pass_deadline()
    coord.settle(AUDITOR, 1)
    refused(market, lambda: coord.settle(AUDITOR, 1), "round not in phase RmLegDone")
    market.to_instructed()  # round 2 opens: round 1 is now a past round
    refused(market, lambda: coord.settle(AUDITOR, 1), "round closed")
    refused(market, lambda: coord.execute_mm_leg(DEALER_MM, 1, 415, 15, EVIDENCE), "round closed")
    refused(market, lambda: coord.prove_deviation(AUDITOR, 1, Side.MM, INSTRUCTION), "round closed")
    refused(market, lambda: coord.enforce_deadline(AUDITOR, 1), "round closed")
    refused(market, lambda: coord.settle(AUDITOR, 3), "unknown round")


# ------------------------------------------------------------------ missed deadlines

def test_enforce_deadline_reverts(market):
    coord = market.coord
    refused(market, lambda: coord.enforce_deadline(AUDITOR, 1), "unknown round")
    market.open()
    refused(market, lambda: coord.enforce_deadline(AUDITOR, 1), "deadline not passed")
    market.chain.mine(market.coord.deadline(1) - market.chain.block_number - 1)
    refused(market, lambda: coord.enforce_deadline(AUDITOR, 1), "deadline not passed")  # last block still open
    market.pass_deadline()
    coord.enforce_deadline(AUDITOR, 1)
    refused(market, lambda: coord.enforce_deadline(AUDITOR, 1), "round closed")


def test_enforce_deadline_refuses_executed_round(market):
    market.to_rm_leg_done()
    market.pass_deadline()
    refused(market, lambda: market.coord.enforce_deadline(AUDITOR, 1), "round executed: settle it")


FAULTS = [
    # (how far the round gets, who is at fault or None for a cancellation)
    ("open_mm", DEALER_RM),        # dealer_mm opened, dealer_rm never committed
    ("open_rm", DEALER_MM),        # dealer_rm opened, dealer_mm never committed
    ("revealing", None),           # neither dealer revealed: cancelled [decided]
    ("revealed_mm", DEALER_RM),    # dealer_mm revealed, dealer_rm did not
    ("revealed_rm", DEALER_MM),    # dealer_rm revealed, dealer_mm did not
    ("reported", None),            # evaluators missed
    ("computed", None),            # custodian missed post_instruction
    ("instructed", DEALER_MM),     # dealer_mm missed its leg
    ("mm_leg_done", DEALER_RM),    # dealer_rm missed its leg
]


@pytest.mark.parametrize("stage,offender_role", FAULTS, ids=[f[0] for f in FAULTS])
def test_missed_deadline_outcome(market, stage, offender_role):
    coord, chain = market.coord, market.chain
    if stage == "open_mm":
        market.open()
    elif stage == "open_rm":
        market.round_id = 1
        commit(coord, DEALER_RM, 1)
    elif stage.startswith("reveal"):
        market.to_revealing()
        if stage != "revealing":
            reveal(coord, DEALER_MM if stage == "revealed_mm" else DEALER_RM, 1)
    else:
        {"reported": market.to_reported, "computed": market.to_computed, "instructed": market.to_instructed,
         "mm_leg_done": market.to_mm_leg_done}[stage]()
    market.pass_deadline()
    res = coord.enforce_deadline(AUDITOR, 1)
    state = coord.round(1)
    mm, rm = chain.address(DEALER_MM), chain.address(DEALER_RM)
    if offender_role is None:
        assert state.phase is RoundPhase.CANCELLED and state.offender is None
        assert coord.deposit_of(mm) == DEPOSIT and coord.deposit_of(rm) == DEPOSIT
        assert not [e for e in res.events if e.name == "Forfeited"]
    else:
        offender = chain.address(offender_role)
        beneficiary = rm if offender == mm else mm
        assert state.phase is RoundPhase.FORFEITED
        assert (state.offender, state.beneficiary, state.forfeited_amount) == (offender, beneficiary, DEPOSIT)
        assert res.event("Forfeited").args == {"round_id": 1, "offender": offender, "beneficiary": beneficiary,
                                               "amount": DEPOSIT, "reason": ForfeitReason.MISSED_DEADLINE}
        assert coord.deposit_of(offender) == 0 and coord.withdrawable_of(beneficiary) == DEPOSIT
        # The beneficiary takes both its own (now unlocked) deposit and the forfeit, once.
        assert coord.withdraw(beneficiary_role(chain, beneficiary)).event("Withdrawn").args["amount"] == 2 * DEPOSIT
        refused(market, lambda: coord.withdraw(offender_role), "nothing to withdraw")
    assert coord.round_open() is False
    assert coord.balance() == sum(coord.deposit_of(a) + coord.withdrawable_of(a) for a in (mm, rm))


def beneficiary_role(chain, address):
    return DEALER_MM if address == chain.address(DEALER_MM) else DEALER_RM


# ------------------------------------------------------------------ deviation proofs

def test_prove_deviation_reverts(market):
    coord = market.coord
    refused(market, lambda: coord.prove_deviation(AUDITOR, 1, Side.MM, INSTRUCTION), "unknown round")
    refused(market, lambda: market.chain.send(AUDITOR, coord.contract, "prove_deviation",
                                              (1, 2, 15, 415, 445, 860, INSTRUCTION.salt)), "unknown round")
    market.to_instructed()
    refused(market, lambda: market.chain.send(AUDITOR, coord.contract, "prove_deviation",
                                              (1, 2, 15, 415, 445, 860, INSTRUCTION.salt)), "unknown side")
    refused(market, lambda: coord.prove_deviation(AUDITOR, 1, Side.MM, INSTRUCTION), "mm leg not executed")
    coord.execute_mm_leg(DEALER_MM, 1, 415, 15, EVIDENCE)  # honest
    refused(market, lambda: coord.prove_deviation(AUDITOR, 1, Side.RM, INSTRUCTION), "rm leg not executed")
    refused(market, lambda: coord.prove_deviation(AUDITOR, 1, Side.MM, INSTRUCTION), "no deviation")
    wrong = InstructionPreimage(15, 416, 445, 861, INSTRUCTION.salt)
    refused(market, lambda: coord.prove_deviation(AUDITOR, 1, Side.MM, wrong), "preimage does not match commitment")
    coord.execute_rm_leg(DEALER_RM, 1, 445, 15, EVIDENCE)  # honest
    refused(market, lambda: coord.prove_deviation(AUDITOR, 1, Side.RM, INSTRUCTION), "no deviation")
    market.pass_deadline()
    refused(market, lambda: coord.prove_deviation(AUDITOR, 1, Side.MM, INSTRUCTION), "challenge window closed")
    coord.settle(AUDITOR, 1)
    refused(market, lambda: coord.prove_deviation(AUDITOR, 1, Side.MM, INSTRUCTION), "round closed")


DEVIATIONS = [
    (Side.MM, "rate", (420, 15), None),
    (Side.MM, "volume", (415, 14), None),
    (Side.RM, "rate", (415, 15), (440, 15)),
    (Side.RM, "volume", (415, 15), (445, 16)),
]


@pytest.mark.parametrize("side,what,mm_leg,rm_leg", DEVIATIONS, ids=[f"{d[0].name}-{d[1]}" for d in DEVIATIONS])
def test_proven_deviation_forfeits_to_counterparty_once(market, side, what, mm_leg, rm_leg):
    coord, chain = market.coord, market.chain
    market.to_instructed()
    coord.execute_mm_leg(DEALER_MM, 1, *mm_leg, EVIDENCE)
    if rm_leg is not None:
        coord.execute_rm_leg(DEALER_RM, 1, *rm_leg, EVIDENCE)
    res = coord.prove_deviation(AUDITOR, 1, side, INSTRUCTION)
    offender_role, beneficiary_role_ = (DEALER_MM, DEALER_RM) if side is Side.MM else (DEALER_RM, DEALER_MM)
    assert res.event("Forfeited").args == {
        "round_id": 1, "offender": chain.address(offender_role), "beneficiary": chain.address(beneficiary_role_),
        "amount": DEPOSIT, "reason": ForfeitReason.DEVIATION}
    assert coord.phase(1) is RoundPhase.FORFEITED
    # No double forfeiture: every further proof, deadline or settlement is refused.
    refused(market, lambda: coord.prove_deviation(AUDITOR, 1, side, INSTRUCTION), "round closed")
    refused(market, lambda: coord.enforce_deadline(AUDITOR, 1), "round closed")
    assert coord.withdrawable_of(chain.address(beneficiary_role_)) == DEPOSIT
    assert coord.deposit_of(chain.address(offender_role)) == 0
