"""One definition of the round state on the Python side, tested against the contract.

* the contract's PHASE_* numbers are RoundPhase's, and its state-word constants are ``2**`` StateWord's shifts;
* StateWord decodes the stored word exactly as the contract's views do, in every phase;
* PHASE_TRANSITIONS is the contract's phase machine: every transition the contract makes along every path
  (settle, no trade, each missed deadline, each deviation) is listed, and every listed one is made;
* PHASE_WINDOW names the window the contract's ``_window`` uses (deadline = phase block + window);
* the immutables section appended to the runtime code is ``CoordinatorTerms.immutables()``.
"""
from __future__ import annotations

import re

from chain import (AUDITOR, CUSTODIAN, DEALER_MM, DEALER_RM, PHASE_TRANSITIONS, PHASE_WINDOW, RoundPhase,
                   ShareStage, Side, StateWord, deploy_coordinator, evaluator_role)
from chain.artifacts import CONTRACTS_DIR
from chain.coordinator import IMMUTABLES, MAX_HOLDERS

from .helpers import EVIDENCE, INSTRUCTION, NO_TRADE, Market, commit, digest, make_terms, reveal

SOURCE = (CONTRACTS_DIR / "Coordinator.vy").read_text()


def _constant(name: str) -> str:
    return re.search(rf"^{name}: constant\(\w+\) = (.+)$", SOURCE, re.M).group(1).strip()


def test_phase_numbers_and_state_word_constants_match_the_contract():
    for phase in RoundPhase:
        assert int(_constant(f"PHASE_{phase.name}")) == phase.value
    for name, shift in (("BLOCK_SHIFT", StateWord.BLOCK_SHIFT), ("TRADE_BIT", StateWord.TRADE_SHIFT),
                        ("VOTED_BASE", StateWord.VOTED_SHIFT), ("LEAD_COUNT_BASE", StateWord.LEAD_COUNT_SHIFT),
                        ("AGREED_BIT", StateWord.AGREED_SHIFT), ("FAULT_MM_BASE", StateWord.FAULT_MM_SHIFT),
                        ("FAULT_RM_BASE", StateWord.FAULT_RM_SHIFT), ("MASK_COUNT_BASE", StateWord.MASK_COUNT_SHIFT),
                        ("TABLE_COUNT_BASE", StateWord.TABLE_COUNT_SHIFT),
                        ("MASK_POSTED_BASE", StateWord.MASK_POSTED_SHIFT),
                        ("TABLE_POSTED_BASE", StateWord.TABLE_POSTED_SHIFT)):
        assert _constant(name) == f"2**{shift}", name
    assert StateWord.BLOCK_SHIFT + StateWord.BLOCK_BITS <= StateWord.TRADE_SHIFT
    assert int(_constant("MAX_EVALUATORS")) <= StateWord.LEAD_COUNT_SHIFT - StateWord.VOTED_SHIFT
    for stage in ShareStage:
        assert int(_constant(f"SHARE_{stage.name}")) == stage.value
    # the share fields sit above the faults, do not overlap, and fit MAX_HOLDERS holders in 256 bits
    holders = int(_constant("MAX_HOLDERS"))
    assert holders == MAX_HOLDERS
    assert StateWord.FAULT_RM_SHIFT + StateWord.FAULT_BITS <= StateWord.MASK_COUNT_SHIFT
    assert StateWord.MASK_COUNT_SHIFT + StateWord.SHARE_COUNT_BITS <= StateWord.TABLE_COUNT_SHIFT
    assert StateWord.TABLE_COUNT_SHIFT + StateWord.SHARE_COUNT_BITS <= StateWord.MASK_POSTED_SHIFT
    assert StateWord.MASK_POSTED_SHIFT + holders <= StateWord.TABLE_POSTED_SHIFT
    assert StateWord.TABLE_POSTED_SHIFT + holders <= 256


def test_immutable_declarations_are_in_the_order_code_identity_expects():
    declared = re.findall(r"^(\w+): public\(immutable\(\w+\)\)$", SOURCE, re.M)
    assert declared == [name for name, _ in IMMUTABLES]


def _check_word(market) -> None:
    coord, rid = market.coord, market.round_id
    word = coord.state_word(rid)
    assert word.phase is coord.phase(rid)
    assert word.phase_block == int(coord._view("phase_block", rid))
    assert word.trade == bool(coord._view("trade", rid))
    for i, address in enumerate(market.terms.evaluators):
        assert word.posted(i) == coord.has_posted_output(rid, address)
    for side in (Side.MM, Side.RM):
        assert word.faults(side) == len([e for e in coord.events("FaultPosted", round_id=rid)
                                         if e.args["side"] == side.index])
    for i, address in enumerate(market.terms.holders):
        for stage in ShareStage:
            assert word.share_posted(i, stage) == coord.has_posted_share(rid, address, stage)
    for stage in ShareStage:
        assert word.share_count(stage) == coord.share_count(rid, stage) == len(
            [e for e in coord.events("SharePosted", round_id=rid) if e.args["stage"] == stage])
    agreed = coord._view("output_digest", rid)
    assert word.agreed == (bytes(agreed) != bytes(32))
    if word.agreed:
        assert word.lead_votes == coord.tally(rid, bytes(agreed))
    if word.phase in PHASE_WINDOW:
        window = getattr(market.terms.windows, PHASE_WINDOW[word.phase])
        assert coord.deadline(rid) == word.phase_block + window


def _transitions(market) -> set[tuple[RoundPhase, RoundPhase]]:
    phases = [RoundPhase.NONE] + [RoundPhase(e.args["phase"])
                                  for e in market.coord.events("PhaseChanged", round_id=market.round_id)]
    return set(zip(phases, phases[1:]))


def test_state_word_and_phase_machine_against_the_contract(market):
    coord, seen = market.coord, set()

    def close(path) -> None:
        path()
        _check_word(market)
        seen.update(_transitions(market))

    # the full path, checking the word in every phase on the way
    market.open()
    _check_word(market)
    commit(coord, DEALER_RM, market.round_id, "rm")
    _check_word(market)
    reveal(coord, DEALER_MM, market.round_id)
    _check_word(market)
    reveal(coord, DEALER_RM, market.round_id)
    _check_word(market)
    coord.post_output(evaluator_role(0), market.round_id, digest("out"))
    _check_word(market)
    coord.post_output(evaluator_role(1), market.round_id, digest("out"))
    _check_word(market)
    coord.post_instruction(CUSTODIAN, market.round_id, digest("att"), INSTRUCTION.commitment(), True)
    _check_word(market)
    coord.execute_mm_leg(DEALER_MM, market.round_id, INSTRUCTION.r_mm, INSTRUCTION.volume, EVIDENCE)
    _check_word(market)
    coord.execute_rm_leg(DEALER_RM, market.round_id, INSTRUCTION.r_rm, INSTRUCTION.volume, EVIDENCE)
    _check_word(market)
    market.chain.mine(market.terms.windows.challenge)
    close(lambda: coord.settle(AUDITOR, market.round_id))

    def missed(step):
        def run():
            step()
            market.pass_deadline()
            coord.enforce_deadline(AUDITOR, market.round_id)
        return run

    close(missed(market.open))                                             # Committed -> Forfeited
    market.fund_deposits()
    close(missed(market.to_revealing))                                     # Revealing -> Cancelled
    close(missed(lambda: (market.to_revealing(), reveal(coord, DEALER_MM, market.round_id))))  # -> Forfeited
    market.fund_deposits()
    close(lambda: (market.to_reported(), coord.post_fault(evaluator_role(0), market.round_id, Side.RM, digest("f")),
                   coord.post_fault(evaluator_role(1), market.round_id, Side.RM, digest("f"))))  # Reported -> Forfeited
    market.fund_deposits()
    close(lambda: (market.to_computed(), coord.report_invalid_input(CUSTODIAN, market.round_id, digest("att"),
                                                                    Side.MM)))                # Computed -> Forfeited
    market.fund_deposits()
    close(missed(market.to_reported))                                      # Reported -> Cancelled
    close(missed(market.to_computed))                                      # Computed -> Cancelled
    close(lambda: (market.to_computed(), coord.post_instruction(CUSTODIAN, market.round_id, digest("att"),
                                                                NO_TRADE.commitment(), False)))
    close(missed(market.to_instructed))                                    # Instructed -> Forfeited
    market.fund_deposits()
    close(missed(market.to_mm_leg_done))                                  # MmLegDone -> Forfeited
    market.fund_deposits()
    close(lambda: (market.to_rm_leg_done(rate=INSTRUCTION.r_mm, volume=INSTRUCTION.volume - 1),
                   coord.prove_deviation(AUDITOR, market.round_id, Side.RM, INSTRUCTION)))

    listed = {(a, b) for a, targets in PHASE_TRANSITIONS.items() for b in targets}
    assert seen == listed, (sorted(seen - listed), sorted(listed - seen))


def test_immutables_section_and_code_identity(market):
    coord = market.coord
    code = market.chain.code_at(coord.address)
    assert code.endswith(market.terms.immutables())
    assert coord.code_identity(market.terms) == []
    other = market.terms.__class__(**{**market.terms.__dict__, "deposit_minimum": market.terms.deposit_minimum + 1})
    assert coord.code_identity(other) == ["immutables differ from the published terms in ['deposit_minimum']"]


def test_state_word_through_an_opening_by_key_holders(chain):
    """With 2-of-3 holders the word decodes as the views say after every share, and the phase bits, block and
    the evaluators' bits are untouched by the shares."""
    coord = deploy_coordinator(chain, make_terms(chain, evaluators=3, holders=3, holder_threshold=2))
    market = Market(chain, coord, coord.terms())
    market.fund_deposits()
    market.to_computed()
    before = coord.state_word(market.round_id).word
    for stage in ShareStage:
        for role in market.holders()[::-1]:  # the third holder first: bits by index, not by arrival
            market.post_shares(stage, [role])
            _check_word(market)
    word = coord.state_word(market.round_id)
    assert word.word % 2**StateWord.MASK_COUNT_SHIFT == before
    assert (word.share_count(ShareStage.MASK), word.share_count(ShareStage.TABLE)) == (3, 3)
    coord.post_instruction(CUSTODIAN, market.round_id, digest("att"), INSTRUCTION.commitment(), True)
    _check_word(market)
