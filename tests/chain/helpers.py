"""Helpers for the chain tests: terms, a deployed market, a driver that takes a round step by step."""
from __future__ import annotations

import dataclasses
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from chain import (AUDITOR, CUSTODIAN, DEALER_MM, DEALER_RM, Coordinator, CoordinatorTerms,
                   InstructionPreimage, PhaseWindows, RoundPhase, ShareStage, blob_commitment, evaluator_role,
                   key_holder_role)
from chain.node import anvil_binary

DEPOSIT = 10**18
WINDOWS = PhaseWindows(report=4, reveal=4, compute=4, instruct=4, mm_leg=4, rm_leg=4, challenge=3)


def require_anvil() -> Path:
    binary = anvil_binary()
    if not binary.is_file():
        if os.environ.get("CI"):
            pytest.fail(f"anvil binary missing at {binary}: CI must run the anvil tests "
                        "(scripts/setup.sh --with-anvil installs it)")
        pytest.skip(f"anvil binary not installed at {binary} (CI unset)")
    return binary


def digest(label: str) -> bytes:
    return hashlib.sha256(label.encode()).digest()


EVIDENCE = digest("execution record")  # stands for the digest of a dealer's signed execution record
SIDE_OF_ROLE = {DEALER_MM: "mm", DEALER_RM: "rm"}


def blob_of(role: str, round_id: int) -> bytes:
    """Stands for the digest of ``role``'s ciphertext blob in round ``round_id``."""
    return digest(f"blob-{role}-{round_id}")


def share_digest(role: str, round_id: int, stage: ShareStage) -> bytes:
    """Stands for the digest of ``role``'s share blob of ``stage`` in round ``round_id``."""
    return digest(f"share-{role}-{round_id}-{int(stage)}")


def commit(coord: Coordinator, role: str, round_id: int, label: str = "r", blob: bytes | None = None):
    """``role`` commits H(report ‖ salt) (stood for by digest(label)) and its blob commitment."""
    blob = blob_of(role, round_id) if blob is None else blob
    return coord.commit_report(role, round_id, digest(label),
                               blob_commitment(blob, SIDE_OF_ROLE[role], round_id, coord.address))


def reveal(coord: Coordinator, role: str, round_id: int, blob: bytes | None = None):
    return coord.reveal_report(role, round_id, blob_of(role, round_id) if blob is None else blob)


def make_terms(chain, *, evaluators: int = 2, threshold: int = 2, holders: int = 0, holder_threshold: int = 0,
               windows: PhaseWindows | None = None, **overrides) -> CoordinatorTerms:
    if windows is None:  # each holder's two shares take a block each inside the instruct window
        windows = dataclasses.replace(WINDOWS, instruct=WINDOWS.instruct + 2 * holders)
    fields = dict(
        grid=30, base_rate=400, rate_bits=10, hurdle_mode="margin", deposit_minimum=DEPOSIT,
        terms_digest=digest("terms"), circuit_digest=digest("circuit"), evaluation_keys_digest=digest("keys"),
        identities_digest=digest("identities"),
        dealer_mm=chain.address(DEALER_MM), dealer_rm=chain.address(DEALER_RM),
        custodian=chain.address(CUSTODIAN),
        evaluators=tuple(chain.address(evaluator_role(i)) for i in range(evaluators)),
        threshold=threshold,
        holders=tuple(chain.address(key_holder_role(i)) for i in range(1, holders + 1)),
        holder_threshold=holder_threshold, windows=windows,
    )
    fields.update(overrides)
    return CoordinatorTerms(**fields)


# MODEL.md §8 worked example, hurdle 0: Q* = 15 at (415, 445), r_bd = 430.
INSTRUCTION = InstructionPreimage(volume=15, r_mm=415, r_rm=445, r_bd_x2=860, salt=digest("salt"))
NO_TRADE = InstructionPreimage(volume=0, r_mm=0, r_rm=0, r_bd_x2=0, salt=digest("salt-none"))


@dataclass
class Market:
    """A deployed coordinator plus helpers that take a round step by step."""

    chain: object
    coord: Coordinator
    terms: CoordinatorTerms
    round_id: int = 0

    def evaluators(self) -> list[str]:
        return [evaluator_role(i) for i in range(len(self.terms.evaluators))]

    def holders(self) -> list[str]:
        return [key_holder_role(i) for i in range(1, len(self.terms.holders) + 1)]

    def post_shares(self, stage: ShareStage, holders: list[str] | None = None) -> None:
        """``holders`` (default: the first holder_threshold) post their share of ``stage``."""
        for role in self.holders()[: self.terms.holder_threshold] if holders is None else holders:
            self.coord.post_share(role, self.round_id, stage, share_digest(role, self.round_id, stage))

    def to_opened(self) -> None:
        """Computed, and (with key holders) holder_threshold mask then table shares posted."""
        self.to_computed()
        self.post_shares(ShareStage.MASK)
        self.post_shares(ShareStage.TABLE)

    def fund_deposits(self) -> None:
        self.coord.deposit(DEALER_MM, DEPOSIT)
        self.coord.deposit(DEALER_RM, DEPOSIT)

    def open(self) -> int:
        self.round_id = self.coord.next_round_id()
        commit(self.coord, DEALER_MM, self.round_id, f"report-mm-{self.round_id}")
        return self.round_id

    def to_revealing(self) -> None:
        self.open()
        commit(self.coord, DEALER_RM, self.round_id, f"report-rm-{self.round_id}")

    def to_reported(self) -> None:
        self.to_revealing()
        reveal(self.coord, DEALER_MM, self.round_id)
        reveal(self.coord, DEALER_RM, self.round_id)

    def to_computed(self) -> None:
        self.to_reported()
        for role in self.evaluators()[: self.terms.threshold]:
            self.coord.post_output(role, self.round_id, digest("output"))

    def to_instructed(self, preimage: InstructionPreimage = INSTRUCTION) -> None:
        self.to_opened()
        self.coord.post_instruction(CUSTODIAN, self.round_id, digest("attestation"), preimage.commitment(),
                                    preimage.volume > 0)

    def to_mm_leg_done(self, rate: int = INSTRUCTION.r_mm, volume: int = INSTRUCTION.volume) -> None:
        self.to_instructed()
        self.coord.execute_mm_leg(DEALER_MM, self.round_id, rate, volume, EVIDENCE)

    def to_rm_leg_done(self, rate: int = INSTRUCTION.r_rm, volume: int = INSTRUCTION.volume) -> None:
        self.to_mm_leg_done()
        self.coord.execute_rm_leg(DEALER_RM, self.round_id, rate, volume, EVIDENCE)

    def to_settled(self) -> None:
        self.to_rm_leg_done()
        self.chain.mine(self.terms.windows.challenge)
        self.coord.settle(AUDITOR, self.round_id)

    def pass_deadline(self) -> None:
        """Mine until the current step's deadline has passed (the next tx lands after it)."""
        head = self.chain.block_number
        last = self.coord.deadline(self.round_id)
        if last > head:
            self.chain.mine(last - head)

    def phase(self) -> RoundPhase:
        return self.coord.phase(self.round_id)


def reason(excinfo) -> str:
    return excinfo.value.reason


