"""Stateful property test: random sequences of every action (legal or not) keep the books exact.

Invariants after every step, on both backends:
- contract balance == Σ deposits + Σ withdrawable (only the dealers can hold either);
- contract balance == Σ deposited − Σ withdrawn (from the events): no double withdrawal;
- at most one Forfeited event per round: no double forfeiture;
- round_open() agrees with the current round's phase.
Refused actions must raise ChainError with a non-empty reason and leave no trace.
"""
from __future__ import annotations

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from chain import (AUDITOR, CUSTODIAN, DEALER_MM, DEALER_RM, ChainError, PhaseWindows, RoundPhase, Side, connect,
                   deploy_coordinator, evaluator_role)

from .helpers import EVIDENCE, INSTRUCTION, NO_TRADE, commit, digest, make_terms, reveal

MINIMUM = 1_000  # wei, small so random amounts straddle it
DEALERS = (DEALER_MM, DEALER_RM)
WINDOWS = PhaseWindows(report=6, reveal=6, compute=6, instruct=6, mm_leg=6, rm_leg=6, challenge=3)
EXAMPLES = {"embedded": 6, "anvil": 6}


@pytest.fixture(scope="module", params=["embedded", pytest.param("anvil", marks=pytest.mark.anvil)])
def shared_chain(request, tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("property")
    if request.param == "embedded":
        return connect(data_dir)
    return connect(data_dir, request.getfixturevalue("anvil_url"))


def test_random_action_sequences_keep_the_books(shared_chain):
    chain = shared_chain
    addresses = {role: chain.address(role) for role in (*DEALERS, CUSTODIAN, AUDITOR)}

    class CoordinatorMachine(RuleBasedStateMachine):
        def __init__(self):
            super().__init__()
            terms = make_terms(chain, evaluators=3, threshold=2, windows=WINDOWS, deposit_minimum=MINIMUM)
            self.coord = deploy_coordinator(chain, terms)
            self.deposited = 0
            self.withdrawn = 0
            self.refusals = 0

        def attempt(self, action):
            head = chain.block_number
            try:
                return action()
            except ChainError as exc:
                assert exc.reason, "a refusal must carry a reason"
                assert chain.block_number == head, "a refused step mined a block"
                self.refusals += 1
                return None

        def round_id(self, opening: bool = False) -> int:
            current = self.coord.current_round()
            return current + 1 if opening else current

        @rule(dealer=st.sampled_from(DEALERS), amount=st.integers(0, 2 * MINIMUM))
        def deposit(self, dealer, amount):
            if self.attempt(lambda: self.coord.deposit(dealer, amount)) is not None:
                self.deposited += amount

        @rule(who=st.sampled_from((*DEALERS, AUDITOR)))
        def withdraw(self, who):
            res = self.attempt(lambda: self.coord.withdraw(who))
            if res is not None:
                self.withdrawn += res.event("Withdrawn").args["amount"]

        @rule(dealer=st.sampled_from(DEALERS), opening=st.booleans())
        def commit_report(self, dealer, opening):
            rid = self.round_id(opening)
            self.attempt(lambda: commit(self.coord, dealer, rid, f"{dealer}-{rid}"))

        @rule(dealer=st.sampled_from(DEALERS), honest=st.booleans())
        def reveal_report(self, dealer, honest):
            rid = self.round_id()
            self.attempt(lambda: reveal(self.coord, dealer, rid, None if honest else digest("swapped")))

        @rule(index=st.integers(0, 2), side=st.sampled_from(Side))
        def post_fault(self, index, side):
            self.attempt(lambda: self.coord.post_fault(evaluator_role(index), self.round_id(), side, digest("fault")))

        @rule(side=st.sampled_from(Side))
        def report_invalid_input(self, side):
            self.attempt(lambda: self.coord.report_invalid_input(CUSTODIAN, self.round_id(), digest("att"), side))

        @rule(index=st.integers(0, 2), agree=st.booleans())
        def post_output(self, index, agree):
            out = digest("output" if agree else "other")
            self.attempt(lambda: self.coord.post_output(evaluator_role(index), self.round_id(), out))

        @rule(trade=st.booleans())
        def post_instruction(self, trade):
            pre = INSTRUCTION if trade else NO_TRADE
            self.attempt(lambda: self.coord.post_instruction(CUSTODIAN, self.round_id(), digest("att"),
                                                             pre.commitment(), trade))

        @rule(honest=st.booleans())
        def execute_mm_leg(self, honest):
            rate = INSTRUCTION.r_mm if honest else INSTRUCTION.r_mm + 1
            self.attempt(lambda: self.coord.execute_mm_leg(DEALER_MM, self.round_id(), rate, INSTRUCTION.volume, EVIDENCE))

        @rule(honest=st.booleans())
        def execute_rm_leg(self, honest):
            volume = INSTRUCTION.volume if honest else INSTRUCTION.volume - 1
            self.attempt(lambda: self.coord.execute_rm_leg(DEALER_RM, self.round_id(), INSTRUCTION.r_rm, volume, EVIDENCE))

        @rule(side=st.sampled_from(Side))
        def prove_deviation(self, side):
            self.attempt(lambda: self.coord.prove_deviation(AUDITOR, self.round_id(), side, INSTRUCTION))

        @rule()
        def enforce_deadline(self):
            self.attempt(lambda: self.coord.enforce_deadline(AUDITOR, self.round_id()))

        @rule()
        def settle(self):
            self.attempt(lambda: self.coord.settle(AUDITOR, self.round_id()))

        @rule(deviate=st.booleans())
        def next_step(self, deviate):
            """Take the current round's next step, so sequences reach the late phases often."""
            rid = self.coord.current_round()
            state = self.coord.round(rid) if rid else None
            phase = state.phase if state else RoundPhase.NONE
            if not phase.terminal and chain.block_number >= state.deadline:  # the next tx lands too late
                if phase is RoundPhase.RM_LEG_DONE:
                    self.settle()
                else:
                    self.enforce_deadline()
            elif phase.terminal:
                for dealer in DEALERS:
                    self.deposit(dealer, MINIMUM)
                self.commit_report(DEALER_MM, True)
            elif phase is RoundPhase.COMMITTED:
                self.commit_report(DEALER_RM if state.report_commitment_rm == bytes(32) else DEALER_MM, False)
            elif phase is RoundPhase.REVEALING:
                for dealer in DEALERS:
                    self.reveal_report(dealer, True)
            elif phase is RoundPhase.REPORTED:
                for index in range(2):
                    self.post_output(index, True)
            elif phase is RoundPhase.COMPUTED:
                self.post_instruction(True)
            elif phase is RoundPhase.INSTRUCTED:
                self.execute_mm_leg(not deviate)
            elif phase is RoundPhase.MM_LEG_DONE:
                self.execute_rm_leg(not deviate)
            elif deviate:
                self.prove_deviation(Side.MM)
            else:
                self.prove_deviation(Side.RM)

        @rule(steps=st.integers(4, 12), deviate=st.booleans())
        def advance(self, steps, deviate):
            """Several next steps in a row: reaches the legs, settlement and forfeits often."""
            for _ in range(steps):
                self.next_step(deviate)

        @rule(blocks=st.integers(1, 4))
        def mine(self, blocks):
            chain.mine(blocks)

        @invariant()
        def books_balance(self):
            balance = self.coord.balance()
            owed = sum(self.coord.deposit_of(addresses[d]) + self.coord.withdrawable_of(addresses[d])
                       for d in DEALERS)
            assert balance == owed
            assert balance == self.deposited - self.withdrawn
            for other in (CUSTODIAN, AUDITOR):
                assert self.coord.withdrawable_of(addresses[other]) == 0

        @invariant()
        def phase_consistent(self):
            rid = self.coord.current_round()
            phase = self.coord.phase(rid)
            assert self.coord.round_open() == (not phase.terminal)
            if rid:
                assert phase is not RoundPhase.NONE

        def teardown(self):
            reached = {e.args["phase"] for e in self.coord.events("PhaseChanged")}
            phases_reached.update(reached)
            forfeits = [e.args["round_id"] for e in self.coord.events("Forfeited")]
            assert len(forfeits) == len(set(forfeits)), "a round forfeited twice"

    phases_reached: set[int] = set()
    run_state_machine_as_test(
        CoordinatorMachine,
        settings=settings(derandomize=True,  # the coverage assertion below needs a fixed draw
                          max_examples=EXAMPLES["embedded" if chain.backend == "embedded" else "anvil"],
                          stateful_step_count=30, deadline=None),
    )
    # The sequences must exercise the whole machine, not just refusals at the start.
    assert phases_reached >= {1, 2, 3, 4, 5, 6, 8}, sorted(phases_reached)
