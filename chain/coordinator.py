"""Typed wrapper over chain/contracts/Coordinator.vy (one market, rounds one at a time).

See chain/README.md for the phases, who may call what, deadlines, forfeiture and the encodings.

(Over 500 lines: the contract's one Python mirror -- phases, state word, terms and immutables, one typed
method per contract function -- so that what must match the Vyper source stays in one file.)
"""
from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING

from eth_abi import encode as abi_encode
from eth_utils import to_checksum_address

from common.vocabulary import DEPLOYER, Side

from .artifacts import compile_contract, pinned_compiler_problem
from .checks import check_address, check_bytes32, check_uint
from .errors import ChainInputError
from .typed_contract import TypedContract

if TYPE_CHECKING:
    from .client import Chain, TxResult
    from .typed_contract import Sender

MAX_EVALUATORS = 16  # the contract's bound on the evaluator list
MAX_HOLDERS = 16     # the contract's bound on the key-holder list
_UINT128 = 2**128


class RoundPhase(enum.IntEnum):
    """Mirrors the contract's PHASE_* constants. Settled, Forfeited and Cancelled are terminal."""

    NONE = 0          # no such round yet
    COMMITTED = 1     # opened by a dealer's report + blob commitment; both deposits locked
    REVEALING = 2     # both dealers committed; each reveals its ciphertext blob's digest
    REPORTED = 3      # both blob digests revealed, each opening its commitment
    COMPUTED = 4      # k evaluators posted the same output digest
    INSTRUCTED = 5    # custodian posted attestation digest + instruction commitment (trade)
    MM_LEG_DONE = 6   # dealer_mm recorded (rate offered, volume accepted)
    RM_LEG_DONE = 7   # dealer_rm recorded its leg; challenge window runs
    SETTLED = 8       # closed normally (or no trade); deposits unlocked
    FORFEITED = 9     # a dealer's deposit went to the other dealer
    CANCELLED = 10    # neither dealer revealed, or custodian or evaluators missed a deadline; deposits unlocked

    @property
    def terminal(self) -> bool:
        return self in (RoundPhase.NONE, RoundPhase.SETTLED, RoundPhase.FORFEITED, RoundPhase.CANCELLED)

    @property
    def label(self) -> str:
        """The contract's name of the phase ("MmLegDone"), as in its revert strings."""
        return _PHASE_LABELS[self]


_PHASE_LABELS = {
    RoundPhase.NONE: "None", RoundPhase.COMMITTED: "Committed", RoundPhase.REVEALING: "Revealing",
    RoundPhase.REPORTED: "Reported",
    RoundPhase.COMPUTED: "Computed", RoundPhase.INSTRUCTED: "Instructed", RoundPhase.MM_LEG_DONE: "MmLegDone",
    RoundPhase.RM_LEG_DONE: "RmLegDone", RoundPhase.SETTLED: "Settled", RoundPhase.FORFEITED: "Forfeited",
    RoundPhase.CANCELLED: "Cancelled",
}

# The phase machine of Coordinator.vy: phase -> the phases a round may enter from it, and the window (a
# PhaseWindows field) that bounds the step taken in it. tests/chain/test_state_layout.py checks both
# against the contract (every transition the contract makes is listed; every window matches _window).
PHASE_TRANSITIONS: dict[RoundPhase, frozenset[RoundPhase]] = {
    RoundPhase.NONE: frozenset({RoundPhase.COMMITTED}),
    RoundPhase.COMMITTED: frozenset({RoundPhase.REVEALING, RoundPhase.FORFEITED}),
    RoundPhase.REVEALING: frozenset({RoundPhase.REPORTED, RoundPhase.FORFEITED, RoundPhase.CANCELLED}),
    RoundPhase.REPORTED: frozenset({RoundPhase.COMPUTED, RoundPhase.FORFEITED, RoundPhase.CANCELLED}),
    RoundPhase.COMPUTED: frozenset({RoundPhase.INSTRUCTED, RoundPhase.SETTLED, RoundPhase.FORFEITED,
                                    RoundPhase.CANCELLED}),
    RoundPhase.INSTRUCTED: frozenset({RoundPhase.MM_LEG_DONE, RoundPhase.FORFEITED}),
    RoundPhase.MM_LEG_DONE: frozenset({RoundPhase.RM_LEG_DONE, RoundPhase.FORFEITED}),
    RoundPhase.RM_LEG_DONE: frozenset({RoundPhase.SETTLED, RoundPhase.FORFEITED}),
    RoundPhase.SETTLED: frozenset(), RoundPhase.FORFEITED: frozenset(), RoundPhase.CANCELLED: frozenset(),
}
PHASE_WINDOW: dict[RoundPhase, str] = {
    RoundPhase.COMMITTED: "report", RoundPhase.REVEALING: "reveal", RoundPhase.REPORTED: "compute",
    RoundPhase.COMPUTED: "instruct",
    RoundPhase.INSTRUCTED: "mm_leg", RoundPhase.MM_LEG_DONE: "rm_leg", RoundPhase.RM_LEG_DONE: "challenge",
}


class ShareStage(enum.IntEnum):
    """Mirrors the contract's SHARE_* constants: a key holder posts its mask share, then its table share."""

    MASK = 0
    TABLE = 1

    @classmethod
    def of(cls, stage: "ShareStage | int | str") -> "ShareStage":
        """ShareStage from a ShareStage, its number, or "mask"/"table"."""
        try:
            if isinstance(stage, str):
                return cls[stage.upper()]
            if isinstance(stage, bool) or not isinstance(stage, int):
                raise ValueError(stage)
            return cls(stage)
        except (KeyError, ValueError):
            raise ChainInputError(f"stage must be ShareStage.MASK (0) or ShareStage.TABLE (1), got {stage!r}") from None


class StateWord:
    """The bit layout of a round's packed ``state`` word in Coordinator.vy (the one Python definition).

    ``phase | phase_block << 8 | trade << 72 | (evaluator i posted) << (80 + i) | lead votes << 96 |
    agreed << 104 | mm faults << 112 | rm faults << 120 | mask shares << 128 | table shares << 136 |
    (holder i posted its mask share) << (144 + i) | (its table share) << (160 + i)`` [decided, for gas].
    The contract's constants BLOCK_SHIFT, TRADE_BIT, VOTED_BASE, LEAD_COUNT_BASE, AGREED_BIT, FAULT_MM_BASE,
    FAULT_RM_BASE, MASK_COUNT_BASE, TABLE_COUNT_BASE, MASK_POSTED_BASE and TABLE_POSTED_BASE are ``2**``
    these shifts (tests/chain/test_state_layout.py checks it).
    """

    PHASE_BITS = 8
    BLOCK_SHIFT = 8
    BLOCK_BITS = 64
    TRADE_SHIFT = 72
    VOTED_SHIFT = 80
    LEAD_COUNT_SHIFT = 96
    LEAD_COUNT_BITS = 8
    AGREED_SHIFT = 104
    FAULT_MM_SHIFT = 112
    FAULT_RM_SHIFT = 120
    FAULT_BITS = 8
    MASK_COUNT_SHIFT = 128
    TABLE_COUNT_SHIFT = 136
    SHARE_COUNT_BITS = 8
    MASK_POSTED_SHIFT = 144
    TABLE_POSTED_SHIFT = 160

    def __init__(self, word: int) -> None:
        self.word = int(word)

    @property
    def phase(self) -> RoundPhase:
        return RoundPhase(self.word % (1 << self.PHASE_BITS))

    @property
    def phase_block(self) -> int:
        return (self.word >> self.BLOCK_SHIFT) % (1 << self.BLOCK_BITS)

    @property
    def trade(self) -> bool:
        return bool(self.word >> self.TRADE_SHIFT & 1)

    def posted(self, evaluator_index: int) -> bool:
        return bool(self.word >> (self.VOTED_SHIFT + evaluator_index) & 1)

    @property
    def lead_votes(self) -> int:
        return (self.word >> self.LEAD_COUNT_SHIFT) % (1 << self.LEAD_COUNT_BITS)

    @property
    def agreed(self) -> bool:
        return bool(self.word >> self.AGREED_SHIFT & 1)

    def faults(self, side: "Side | int | str") -> int:
        """How many evaluators posted a fault naming ``side``'s revealed blob."""
        shift = self.FAULT_MM_SHIFT if _side(side) is Side.MM else self.FAULT_RM_SHIFT
        return (self.word >> shift) % (1 << self.FAULT_BITS)

    def share_count(self, stage: "ShareStage | int | str") -> int:
        """How many key holders posted a share of ``stage``."""
        shift = self.MASK_COUNT_SHIFT if ShareStage.of(stage) is ShareStage.MASK else self.TABLE_COUNT_SHIFT
        return (self.word >> shift) % (1 << self.SHARE_COUNT_BITS)

    def share_posted(self, holder_index: int, stage: "ShareStage | int | str") -> bool:
        """Whether the holder_index-th key holder posted its share of ``stage``."""
        shift = self.MASK_POSTED_SHIFT if ShareStage.of(stage) is ShareStage.MASK else self.TABLE_POSTED_SHIFT
        return bool(self.word >> (shift + holder_index) & 1)


class ForfeitReason(enum.IntEnum):
    MISSED_DEADLINE = 1
    DEVIATION = 2
    INVALID_REPORT = 3   # k evaluators posted a fault naming the dealer's revealed blob
    INVALID_INPUT = 4    # the custodian decrypted the circuit's invalid flag for the dealer's input


HURDLE_MODES = {"margin": 0, "spread": 1}


@dataclass(frozen=True)
class PhaseWindows:
    """Length of each phase in blocks; a step is accepted while block.number <= start + window."""

    report: int = 20        # Committed: the second dealer's commitments
    reveal: int = 20        # Revealing: both dealers reveal their blob digests
    compute: int = 20       # Reported: k evaluators agree on the output digest
    instruct: int = 20      # Computed: custodian posts attestation + instruction commitment
    mm_leg: int = 20        # Instructed: dealer_mm executes
    rm_leg: int = 20        # MmLegDone: dealer_rm executes
    challenge: int = 10     # RmLegDone: deviation proofs; settle() after it

    def as_tuple(self) -> tuple[int, ...]:
        return tuple(getattr(self, name) for name in WINDOW_NAMES)

    def as_dict(self) -> dict[str, int]:
        """Window name -> blocks, in the contract's order (as a market descriptor publishes them)."""
        return dict(zip(WINDOW_NAMES, self.as_tuple()))


WINDOW_NAMES = tuple(f.name for f in fields(PhaseWindows))  # the contract's <name>_window immutables, in order
# Coordinator.vy's immutables in declaration order with their ABI types (CoordinatorTerms.immutables).
IMMUTABLES = (("grid", "uint256"), ("base_rate", "uint256"), ("rate_bits", "uint256"), ("hurdle_mode", "uint8"),
              ("deposit_minimum", "uint256"), ("terms_digest", "bytes32"), ("circuit_digest", "bytes32"),
              ("evaluation_keys_digest", "bytes32"), ("identities_digest", "bytes32"), ("dealer_mm", "address"), ("dealer_rm", "address"),
              ("custodian", "address"), ("threshold", "uint256"), ("holder_threshold", "uint256"),
              *((f"{n}_window", "uint256") for n in WINDOW_NAMES))


@dataclass(frozen=True)
class CoordinatorTerms:
    """Everything fixed at deployment. Digests are 32 bytes (sha256); addresses are 0x strings."""

    grid: int
    base_rate: int
    rate_bits: int
    hurdle_mode: str                 # "margin" | "spread" (market.HurdleMode values)
    deposit_minimum: int             # wei
    terms_digest: bytes
    circuit_digest: bytes
    evaluation_keys_digest: bytes
    identities_digest: bytes         # digest of the signing identities the attestations rely on
    dealer_mm: str
    dealer_rm: str
    custodian: str
    evaluators: tuple[str, ...]
    threshold: int
    holders: tuple[str, ...] = ()    # key holders; empty for a market without FHE keys (simulate)
    holder_threshold: int = 0        # k of the holders; 0 exactly when there are none
    windows: PhaseWindows = field(default_factory=PhaseWindows)

    def __post_init__(self) -> None:
        for name in ("grid", "base_rate", "rate_bits", "deposit_minimum", "threshold", "holder_threshold"):
            check_uint(name, getattr(self, name))
        if self.grid < 1:
            raise ChainInputError(f"grid must be at least 1, got {self.grid}")
        if not 1 <= self.rate_bits <= 64:
            raise ChainInputError(f"rate_bits must be in 1..64, got {self.rate_bits}")
        if self.deposit_minimum < 1:
            raise ChainInputError(f"deposit_minimum must be positive (wei), got {self.deposit_minimum}")
        if str(getattr(self.hurdle_mode, "value", self.hurdle_mode)) not in HURDLE_MODES:
            raise ChainInputError(f"hurdle_mode must be 'margin' or 'spread', got {self.hurdle_mode!r}")
        for name in ("terms_digest", "circuit_digest", "evaluation_keys_digest", "identities_digest"):
            check_bytes32(name, getattr(self, name))
        for name in ("dealer_mm", "dealer_rm", "custodian"):
            check_address(name, getattr(self, name))
        if not isinstance(self.evaluators, tuple) or not 1 <= len(self.evaluators) <= MAX_EVALUATORS:
            raise ChainInputError(f"evaluators must be a tuple of 1..{MAX_EVALUATORS} addresses, got {self.evaluators!r}")
        for i, e in enumerate(self.evaluators):
            check_address(f"evaluators[{i}]", e)
        if len({a.lower() for a in self.evaluators}) != len(self.evaluators):
            raise ChainInputError(f"evaluators must be distinct, got {self.evaluators!r}")
        if not 1 <= self.threshold <= len(self.evaluators):
            raise ChainInputError(f"threshold must be in 1..{len(self.evaluators)}, got {self.threshold}")
        if self.dealer_mm.lower() == self.dealer_rm.lower():
            raise ChainInputError(f"dealer_mm and dealer_rm must differ, got {self.dealer_mm}")
        if self.custodian.lower() in (self.dealer_mm.lower(), self.dealer_rm.lower()):
            raise ChainInputError(f"custodian must not be a dealer, got {self.custodian}")
        self._check_holders()
        for name, value in self.windows.as_dict().items():
            check_uint(f"windows.{name}", value)
            if value < 1:
                raise ChainInputError(f"windows.{name} must be at least 1 block, got {value}")

    def _check_holders(self) -> None:
        """The contract's constructor rules for key holders, checked before anything is signed."""
        if not isinstance(self.holders, tuple) or len(self.holders) > MAX_HOLDERS:
            raise ChainInputError(f"holders must be a tuple of 0..{MAX_HOLDERS} addresses, got {self.holders!r}")
        for i, h in enumerate(self.holders):
            check_address(f"holders[{i}]", h)
        if len({a.lower() for a in self.holders}) != len(self.holders):
            raise ChainInputError(f"holders must be distinct, got {self.holders!r}")
        others = {self.dealer_mm.lower(): "a dealer", self.dealer_rm.lower(): "a dealer",
                  self.custodian.lower(): "the custodian", **{e.lower(): "an evaluator" for e in self.evaluators}}
        for i, h in enumerate(self.holders):
            if h.lower() in others:
                raise ChainInputError(f"holders[{i}] must not be {others[h.lower()]}, got {h}")
        if not self.holders and self.holder_threshold != 0:
            raise ChainInputError(f"holder_threshold must be 0 without holders, got {self.holder_threshold}")
        if self.holders and not 1 <= self.holder_threshold <= len(self.holders):
            raise ChainInputError(f"holder_threshold must be in 1..{len(self.holders)}, got {self.holder_threshold}")

    @property
    def hurdle_mode_code(self) -> int:
        return HURDLE_MODES[str(getattr(self.hurdle_mode, "value", self.hurdle_mode))]

    def immutables(self) -> bytes:
        """The immutables section Vyper 0.4 appends to the runtime code at deployment: one 32-byte word per
        immutable, in declaration order (IMMUTABLES), ABI-encoded. Measured on the deployed contract."""
        values = {"grid": self.grid, "base_rate": self.base_rate, "rate_bits": self.rate_bits,
                  "hurdle_mode": self.hurdle_mode_code, "deposit_minimum": self.deposit_minimum,
                  "terms_digest": self.terms_digest, "circuit_digest": self.circuit_digest,
                  "evaluation_keys_digest": self.evaluation_keys_digest, "identities_digest": self.identities_digest,
                  "dealer_mm": to_checksum_address(self.dealer_mm), "dealer_rm": to_checksum_address(self.dealer_rm),
                  "custodian": to_checksum_address(self.custodian), "threshold": self.threshold,
                  "holder_threshold": self.holder_threshold,
                  **{f"{name}_window": w for name, w in self.windows.as_dict().items()}}
        return abi_encode([t for _, t in IMMUTABLES], [values[n] for n, _ in IMMUTABLES])

    def constructor_args(self) -> list:
        return [
            self.grid, self.base_rate, self.rate_bits, self.hurdle_mode_code, self.deposit_minimum,
            self.terms_digest, self.circuit_digest, self.evaluation_keys_digest, self.identities_digest,
            to_checksum_address(self.dealer_mm), to_checksum_address(self.dealer_rm),
            to_checksum_address(self.custodian), [to_checksum_address(e) for e in self.evaluators],
            self.threshold, [to_checksum_address(h) for h in self.holders], self.holder_threshold,
            list(self.windows.as_tuple()),
        ]


@dataclass(frozen=True)
class InstructionPreimage:
    """The opening of the custodian's instruction commitment.

    commitment = sha256(abi.encode(uint256 volume, uint256 r_mm, uint256 r_rm, uint256 r_bd_x2, bytes32 salt))
    A no-trade instruction is (0, 0, 0, 0, salt).
    """

    volume: int
    r_mm: int
    r_rm: int
    r_bd_x2: int
    salt: bytes = field(repr=False)

    def __post_init__(self) -> None:
        for name in ("volume", "r_mm", "r_rm", "r_bd_x2"):
            check_uint(name, getattr(self, name))
        check_bytes32("salt", self.salt)

    def encode(self) -> bytes:
        return abi_encode(["uint256", "uint256", "uint256", "uint256", "bytes32"],
                          [self.volume, self.r_mm, self.r_rm, self.r_bd_x2, self.salt])

    def commitment(self) -> bytes:
        return hashlib.sha256(self.encode()).digest()


def instruction_commitment(volume: int, r_mm: int, r_rm: int, r_bd_x2: int, salt: bytes) -> bytes:
    """sha256(abi.encode(volume, r_mm, r_rm, r_bd_x2, salt)): what post_instruction expects."""
    return InstructionPreimage(volume, r_mm, r_rm, r_bd_x2, salt).commitment()


def blob_commitment(blob_digest: bytes, side: "Side | int | str", round_id: int, contract: str) -> bytes:
    """A dealer's commitment to its ciphertext blob: ``sha256(abi.encode(bytes32 blob_digest, uint8 side,
    uint256 round_id, address contract))`` -- what commit_report stores and reveal_report opens. The side,
    the round and the contract make it impossible to reuse for another dealer, round or market."""
    check_bytes32("blob_digest", blob_digest)
    check_uint("round_id", round_id)
    check_address("contract", contract)
    return hashlib.sha256(abi_encode(["bytes32", "uint8", "uint256", "address"],
                                     [blob_digest, _side(side).index, round_id,
                                      to_checksum_address(contract)])).digest()


@dataclass(frozen=True)
class ExecutionRecord:
    rate: int
    volume: int


@dataclass(frozen=True)
class RoundState:
    """Everything the contract stores about one round (an auditor's view)."""

    round_id: int
    phase: RoundPhase
    phase_block: int                    # block in which the current phase began
    deadline: int                       # last block for the current step; 0 once closed
    trade: bool
    report_commitment_mm: bytes
    report_commitment_rm: bytes
    blob_commitment_mm: bytes
    blob_commitment_rm: bytes
    ciphertext_digest_mm: bytes
    ciphertext_digest_rm: bytes
    output_digest: bytes
    attestation_digest: bytes
    instruction_commitment: bytes
    mm_record: ExecutionRecord | None
    rm_record: ExecutionRecord | None
    offender: str | None
    beneficiary: str | None
    forfeited_amount: int
    mask_shares: int = 0                # key holders that posted their mask share (state word)
    table_shares: int = 0               # ... their table share

    def shares(self, stage: "ShareStage | int | str") -> int:
        """How many key holders posted a share of ``stage`` in the round."""
        return self.mask_shares if ShareStage.of(stage) is ShareStage.MASK else self.table_shares

    # per-side accessors: side is Side, 0/1 or "mm"/"rm"
    def commitment(self, side: "Side | int | str") -> bytes:
        return self.report_commitment_mm if _side(side) is Side.MM else self.report_commitment_rm

    def blob_commitment(self, side: "Side | int | str") -> bytes:
        return self.blob_commitment_mm if _side(side) is Side.MM else self.blob_commitment_rm

    def ciphertext(self, side: "Side | int | str") -> bytes:
        return self.ciphertext_digest_mm if _side(side) is Side.MM else self.ciphertext_digest_rm

    def record(self, side: "Side | int | str") -> ExecutionRecord | None:
        return self.mm_record if _side(side) is Side.MM else self.rm_record


def _side(side) -> Side:
    try:
        return Side.of(side)
    except ValueError:
        raise ChainInputError(f"side must be Side.MM (0) or Side.RM (1), got {side!r}") from None


_MM_EXECUTED = (RoundPhase.MM_LEG_DONE, RoundPhase.RM_LEG_DONE)
_RM_EXECUTED = (RoundPhase.RM_LEG_DONE,)


def _record(packed: int) -> ExecutionRecord:
    return ExecutionRecord(rate=packed >> 128, volume=packed % _UINT128)


class Coordinator(TypedContract):
    """Typed calls on a deployed Coordinator. Every transaction method takes the sender (a role name
    such as "dealer_mm" or a ChainAccount), validates its arguments (ChainInputError) before signing,
    and returns the TxResult; a refusal raises ChainError with the contract's reason."""

    NAME = "Coordinator"

    # ---------------------------------------------------------------- transactions
    def deposit(self, sender: Sender, amount_wei: int) -> TxResult:
        check_uint("amount_wei", amount_wei)
        return self.chain.send(sender, self.contract, "deposit", value=amount_wei)

    def withdraw(self, sender: Sender) -> TxResult:
        return self.chain.send(sender, self.contract, "withdraw")

    def commit_report(self, sender: Sender, round_id: int, commitment: bytes, blob_commitment: bytes) -> TxResult:
        """A dealer's H(report ‖ salt) and its commitment to its ciphertext blob (:func:`blob_commitment`)."""
        check_uint("round_id", round_id)
        check_bytes32("commitment", commitment)
        check_bytes32("blob_commitment", blob_commitment)
        return self.chain.send(sender, self.contract, "commit_report", (round_id, commitment, blob_commitment))

    def reveal_report(self, sender: Sender, round_id: int, blob_digest: bytes) -> TxResult:
        """A dealer reveals its ciphertext blob's digest (both dealers committed; opens its blob commitment)."""
        check_uint("round_id", round_id)
        check_bytes32("blob_digest", blob_digest)
        return self.chain.send(sender, self.contract, "reveal_report", (round_id, blob_digest))

    def post_fault(self, sender: Sender, round_id: int, side: "Side | int | str", fault_digest: bytes) -> TxResult:
        """An evaluator names the side whose revealed blob fails the structural/proof check."""
        check_uint("round_id", round_id)
        check_bytes32("fault_digest", fault_digest)
        return self.chain.send(sender, self.contract, "post_fault", (round_id, _side(side).index, fault_digest))

    def report_invalid_input(self, sender: Sender, round_id: int, attestation_digest: bytes,
                             side: "Side | int | str") -> TxResult:
        """The custodian reports the decrypted per-dealer invalid flag of ``side`` (forfeits that dealer)."""
        check_uint("round_id", round_id)
        check_bytes32("attestation_digest", attestation_digest)
        return self.chain.send(sender, self.contract, "report_invalid_input",
                               (round_id, attestation_digest, _side(side).index))

    def post_output(self, sender: Sender, round_id: int, output_digest: bytes) -> TxResult:
        check_uint("round_id", round_id)
        check_bytes32("output_digest", output_digest)
        return self.chain.send(sender, self.contract, "post_output", (round_id, output_digest))

    def post_share(self, sender: Sender, round_id: int, stage: "ShareStage | int | str",
                   share_digest: bytes) -> TxResult:
        """A key holder posts the digest of its mask (stage 0) or table (stage 1) share blob."""
        check_uint("round_id", round_id)
        stage = ShareStage.of(stage)
        check_bytes32("share_digest", share_digest)
        return self.chain.send(sender, self.contract, "post_share", (round_id, int(stage), share_digest))

    def post_instruction(self, sender: Sender, round_id: int, attestation_digest: bytes,
                         instruction_commitment: bytes, trade: bool) -> TxResult:
        check_uint("round_id", round_id)
        check_bytes32("attestation_digest", attestation_digest)
        check_bytes32("instruction_commitment", instruction_commitment)
        if not isinstance(trade, bool):
            raise ChainInputError(f"trade must be a bool, got {trade!r}")
        return self.chain.send(sender, self.contract, "post_instruction",
                               (round_id, attestation_digest, instruction_commitment, trade))

    def execute_mm_leg(self, sender: Sender, round_id: int, rate: int, volume: int, evidence: bytes) -> TxResult:
        """dealer_mm's leg; ``evidence`` is the digest of its signed execution record (offer + acceptance)."""
        return self._execute("execute_mm_leg", sender, round_id, rate, volume, evidence)

    def execute_rm_leg(self, sender: Sender, round_id: int, rate: int, volume: int, evidence: bytes) -> TxResult:
        """dealer_rm's leg; ``evidence`` as for :meth:`execute_mm_leg`."""
        return self._execute("execute_rm_leg", sender, round_id, rate, volume, evidence)

    def _execute(self, fn: str, sender: Sender, round_id: int, rate: int, volume: int, evidence: bytes) -> TxResult:
        check_uint("round_id", round_id)
        check_uint("rate", rate, bound=_UINT128)
        check_uint("volume", volume, bound=_UINT128)
        check_bytes32("evidence", evidence)
        return self.chain.send(sender, self.contract, fn, (round_id, rate, volume, evidence))

    def settle(self, sender: Sender, round_id: int) -> TxResult:
        check_uint("round_id", round_id)
        return self.chain.send(sender, self.contract, "settle", (round_id,))

    def enforce_deadline(self, sender: Sender, round_id: int) -> TxResult:
        check_uint("round_id", round_id)
        return self.chain.send(sender, self.contract, "enforce_deadline", (round_id,))

    def prove_deviation(self, sender: Sender, round_id: int, side: Side | int,
                        preimage: InstructionPreimage) -> TxResult:
        check_uint("round_id", round_id)
        side = _side(side)
        if not isinstance(preimage, InstructionPreimage):
            raise ChainInputError(f"preimage must be an InstructionPreimage, got {type(preimage).__name__}")
        return self.chain.send(sender, self.contract, "prove_deviation",
                               (round_id, side.index, preimage.volume, preimage.r_mm, preimage.r_rm,
                                preimage.r_bd_x2, preimage.salt))

    # ---------------------------------------------------------------- views
    def current_round(self) -> int:
        return int(self._view("current_round"))

    def next_round_id(self) -> int:
        """The id a dealer passes to commit_report to open the next round."""
        return self.current_round() + 1

    def round_open(self) -> bool:
        return bool(self._view("round_open"))

    def phase(self, round_id: int) -> RoundPhase:
        return RoundPhase(int(self._view("phase", round_id)))

    def deadline(self, round_id: int) -> int:
        return int(self._view("deadline", round_id))

    def round(self, round_id: int) -> RoundState:
        self.chain.sync()  # one consistent read below
        r = self._view("rounds", round_id)
        state = StateWord(int(r[0]))
        phase = state.phase
        return RoundState(
            round_id=round_id, phase=phase, phase_block=state.phase_block, deadline=self.deadline(round_id),
            trade=state.trade,
            report_commitment_mm=bytes(r[1]), report_commitment_rm=bytes(r[2]),
            blob_commitment_mm=bytes(r[3]), blob_commitment_rm=bytes(r[4]),
            ciphertext_digest_mm=bytes(r[5]), ciphertext_digest_rm=bytes(r[6]),
            output_digest=bytes(r[7]) if state.agreed else bytes(32),  # the agreed digest only
            attestation_digest=bytes(r[8]), instruction_commitment=bytes(r[9]),
            mm_record=_record(int(r[10])) if r[10] or phase in _MM_EXECUTED else None,
            rm_record=_record(int(r[11])) if r[11] or phase in _RM_EXECUTED else None,
            offender=None if int(r[12], 16) == 0 else r[12],
            beneficiary=None if int(r[13], 16) == 0 else r[13],
            forfeited_amount=int(r[14]),
            mask_shares=state.share_count(ShareStage.MASK), table_shares=state.share_count(ShareStage.TABLE),
        )

    def state_word(self, round_id: int) -> StateWord:
        """The round's packed state word as stored (phase, block, trade, who posted, votes, agreed)."""
        return StateWord(int(self._view("rounds", round_id)[0]))

    def tally(self, round_id: int, output_digest: bytes) -> int:
        """How many evaluators posted ``output_digest`` in the round."""
        check_bytes32("output_digest", output_digest)
        return int(self._view("tally", round_id, output_digest))

    def has_posted_output(self, round_id: int, evaluator: str) -> bool:
        return bool(self._view("has_posted_output", round_id, to_checksum_address(evaluator)))

    def output_votes(self, round_id: int) -> dict[str, bytes]:
        """evaluator address -> the output digest it posted in the round (from OutputPosted events)."""
        return {e.args["evaluator"]: e.args["output_digest"] for e in self.events("OutputPosted", round_id=round_id)}

    def is_holder(self, address: str) -> bool:
        return bool(self._view("is_holder", to_checksum_address(address)))

    def holder_count(self) -> int:
        return int(self._view("holder_count"))

    def share_count(self, round_id: int, stage: "ShareStage | int | str") -> int:
        """How many key holders posted a share of ``stage`` in the round."""
        check_uint("round_id", round_id)
        return int(self._view("share_count", round_id, int(ShareStage.of(stage))))

    def has_posted_share(self, round_id: int, holder: str, stage: "ShareStage | int | str") -> bool:
        check_uint("round_id", round_id)
        return bool(self._view("has_posted_share", round_id, to_checksum_address(holder), int(ShareStage.of(stage))))

    def share_digests(self, round_id: int, stage: "ShareStage | int | str") -> dict[str, bytes]:
        """holder address -> the digest of the share blob of ``stage`` it posted in the round, in chain order
        (from SharePosted events: the digests live only there)."""
        stage = ShareStage.of(stage)
        return {e.args["holder"]: e.args["share_digest"]
                for e in self.events("SharePosted", round_id=round_id) if e.args["stage"] == stage}

    def deposit_of(self, address: str) -> int:
        return int(self._view("deposits", to_checksum_address(address)))

    def withdrawable_of(self, address: str) -> int:
        return int(self._view("withdrawable", to_checksum_address(address)))

    def balance(self) -> int:
        """Wei held by the contract."""
        return self.chain.balance(self.address)

    def code_matches_source(self) -> bool:
        """Whether the deployed code is chain/contracts/Coordinator.vy compiled here (see Chain.code_matches)."""
        return self.chain.code_matches(self.address, self.artifact)

    def code_identity(self, published: CoordinatorTerms, block: int | str = "latest") -> list[str]:
        """What is wrong with the code at this address, [] if nothing: its code part must be
        chain/contracts/Coordinator.vy compiled now with the pinned compiler (no artifact cache is
        trusted), and its immutables section must be ``published.immutables()`` word for word."""
        problems = [p for p in (pinned_compiler_problem(),) if p]
        fresh = compile_contract("Coordinator", None)
        code = self.chain.code_at(self.address, block)
        if not code:
            return problems + [f"no contract code at {self.address}"]
        runtime = fresh.runtime_bytecode
        if code[: len(runtime)] != runtime:
            problems.append(f"contract code differs from source: the {len(code)} bytes at {self.address} do not "
                            f"start with the {len(runtime)}-byte runtime code compiled from chain/contracts/Coordinator.vy")
            return problems
        section, want = code[len(runtime):], published.immutables()
        if section != want:
            words = [section[i:i + 32] for i in range(0, len(section), 32)]
            bad = [name for i, (name, _) in enumerate(IMMUTABLES)
                   if i >= len(words) or words[i] != want[32 * i: 32 * i + 32]]
            problems.append(f"immutables differ from the published terms in {bad or ['length']}")
        return problems

    def terms(self) -> CoordinatorTerms:
        v = self._view
        n = int(v("evaluator_count"))
        mode = {code: name for name, code in HURDLE_MODES.items()}[int(v("hurdle_mode"))]
        return CoordinatorTerms(
            grid=int(v("grid")), base_rate=int(v("base_rate")), rate_bits=int(v("rate_bits")),
            hurdle_mode=mode, deposit_minimum=int(v("deposit_minimum")),
            terms_digest=bytes(v("terms_digest")), circuit_digest=bytes(v("circuit_digest")),
            evaluation_keys_digest=bytes(v("evaluation_keys_digest")),
            identities_digest=bytes(v("identities_digest")),
            dealer_mm=v("dealer_mm"), dealer_rm=v("dealer_rm"), custodian=v("custodian"),
            evaluators=tuple(v("evaluators", i) for i in range(n)), threshold=int(v("threshold")),
            holders=tuple(v("holders", i) for i in range(int(v("holder_count")))),
            holder_threshold=int(v("holder_threshold")),
            windows=PhaseWindows(**{name: int(v(f"{name}_window")) for name in WINDOW_NAMES}),
        )


def deploy_coordinator(chain: Chain, terms: CoordinatorTerms, sender: Sender = DEPLOYER) -> Coordinator:
    """Compile (cached) and deploy a Coordinator with ``terms``; returns the typed wrapper."""
    return Coordinator.deploy(chain, terms, CoordinatorTerms, sender)
