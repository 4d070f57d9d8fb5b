"""Typed wrapper over chain/contracts/Coordinator.vy (one market, rounds one at a time).

See chain/README.md for the phases, who may call what, deadlines, forfeiture and the encodings.
"""
from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass, field
from typing import Any

from eth_abi import encode as abi_encode
from eth_utils import to_checksum_address

from .accounts import DEPLOYER, ChainAccount
from .checks import check_address, check_bytes32, check_uint
from .client import Chain, TxResult
from .errors import ChainInputError
from .events import EventRecord

MAX_EVALUATORS = 16  # the contract's bound on the evaluator list
_UINT128 = 2**128


class RoundPhase(enum.IntEnum):
    """Mirrors the contract's PHASE_* constants. Settled, Forfeited and Cancelled are terminal."""

    NONE = 0          # no such round yet
    COMMITTED = 1     # opened by a dealer's report commitment; both deposits locked
    REPORTED = 2      # both commitments and the custodian's ciphertext digests are on chain
    COMPUTED = 3      # k evaluators posted the same output digest
    INSTRUCTED = 4    # custodian posted attestation digest + instruction commitment (trade)
    MM_LEG_DONE = 5   # dealer_mm recorded (rate offered, volume accepted)
    RM_LEG_DONE = 6   # dealer_rm recorded its leg; challenge window runs
    SETTLED = 7       # closed normally (or no trade); deposits unlocked
    FORFEITED = 8     # a dealer's deposit went to the other dealer
    CANCELLED = 9     # custodian or evaluators missed a deadline; deposits unlocked

    @property
    def terminal(self) -> bool:
        return self in (RoundPhase.NONE, RoundPhase.SETTLED, RoundPhase.FORFEITED, RoundPhase.CANCELLED)


class Side(enum.IntEnum):
    MM = 0
    RM = 1


class ForfeitReason(enum.IntEnum):
    MISSED_DEADLINE = 1
    DEVIATION = 2


HURDLE_MODES = {"margin": 0, "spread": 1}


@dataclass(frozen=True)
class PhaseWindows:
    """Length of each phase in blocks; a step is accepted while block.number <= start + window."""

    report: int = 20        # Committed: second dealer's commitment + custodian's ciphertext digests
    compute: int = 20       # Reported: k evaluators agree on the output digest
    instruct: int = 20      # Computed: custodian posts attestation + instruction commitment
    mm_leg: int = 20        # Instructed: dealer_mm executes
    rm_leg: int = 20        # MmLegDone: dealer_rm executes
    challenge: int = 10     # RmLegDone: deviation proofs; settle() after it

    def as_tuple(self) -> tuple[int, int, int, int, int, int]:
        return (self.report, self.compute, self.instruct, self.mm_leg, self.rm_leg, self.challenge)


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
    windows: PhaseWindows = field(default_factory=PhaseWindows)

    def __post_init__(self) -> None:
        for name in ("grid", "base_rate", "rate_bits", "deposit_minimum", "threshold"):
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
        for name, value in zip(("report", "compute", "instruct", "mm_leg", "rm_leg", "challenge"),
                               self.windows.as_tuple()):
            check_uint(f"windows.{name}", value)
            if value < 1:
                raise ChainInputError(f"windows.{name} must be at least 1 block, got {value}")

    @property
    def hurdle_mode_code(self) -> int:
        return HURDLE_MODES[str(getattr(self.hurdle_mode, "value", self.hurdle_mode))]

    def constructor_args(self) -> list:
        return [
            self.grid, self.base_rate, self.rate_bits, self.hurdle_mode_code, self.deposit_minimum,
            self.terms_digest, self.circuit_digest, self.evaluation_keys_digest, self.identities_digest,
            to_checksum_address(self.dealer_mm), to_checksum_address(self.dealer_rm),
            to_checksum_address(self.custodian), [to_checksum_address(e) for e in self.evaluators],
            self.threshold, list(self.windows.as_tuple()),
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


Sender = str | ChainAccount
_MM_EXECUTED = (RoundPhase.MM_LEG_DONE, RoundPhase.RM_LEG_DONE)
_RM_EXECUTED = (RoundPhase.RM_LEG_DONE,)


def _record(packed: int) -> ExecutionRecord:
    return ExecutionRecord(rate=packed >> 128, volume=packed % _UINT128)


class Coordinator:
    """Typed calls on a deployed Coordinator. Every transaction method takes the sender (a role name
    such as "dealer_mm" or a ChainAccount), validates its arguments (ChainInputError) before signing,
    and returns the TxResult; a refusal raises ChainError with the contract's reason."""

    def __init__(self, chain: Chain, address: str) -> None:
        self.chain = chain
        self.artifact = chain.compile("Coordinator")
        self.contract = chain.contract(address, self.artifact)
        self.address = self.contract.address

    def __repr__(self) -> str:
        return f"Coordinator({self.address} on {self.chain!r})"

    # ---------------------------------------------------------------- transactions
    def deposit(self, sender: Sender, amount_wei: int) -> TxResult:
        check_uint("amount_wei", amount_wei)
        return self.chain.send(sender, self.contract, "deposit", value=amount_wei)

    def withdraw(self, sender: Sender) -> TxResult:
        return self.chain.send(sender, self.contract, "withdraw")

    def commit_report(self, sender: Sender, round_id: int, commitment: bytes) -> TxResult:
        check_uint("round_id", round_id)
        check_bytes32("commitment", commitment)
        return self.chain.send(sender, self.contract, "commit_report", (round_id, commitment))

    def post_ciphertexts(self, sender: Sender, round_id: int, ciphertext_digest_mm: bytes,
                         ciphertext_digest_rm: bytes) -> TxResult:
        check_uint("round_id", round_id)
        check_bytes32("ciphertext_digest_mm", ciphertext_digest_mm)
        check_bytes32("ciphertext_digest_rm", ciphertext_digest_rm)
        return self.chain.send(sender, self.contract, "post_ciphertexts",
                               (round_id, ciphertext_digest_mm, ciphertext_digest_rm))

    def post_output(self, sender: Sender, round_id: int, output_digest: bytes) -> TxResult:
        check_uint("round_id", round_id)
        check_bytes32("output_digest", output_digest)
        return self.chain.send(sender, self.contract, "post_output", (round_id, output_digest))

    def post_instruction(self, sender: Sender, round_id: int, attestation_digest: bytes,
                         instruction_commitment: bytes, trade: bool) -> TxResult:
        check_uint("round_id", round_id)
        check_bytes32("attestation_digest", attestation_digest)
        check_bytes32("instruction_commitment", instruction_commitment)
        if not isinstance(trade, bool):
            raise ChainInputError(f"trade must be a bool, got {trade!r}")
        return self.chain.send(sender, self.contract, "post_instruction",
                               (round_id, attestation_digest, instruction_commitment, trade))

    def execute_mm_leg(self, sender: Sender, round_id: int, rate: int, volume: int) -> TxResult:
        return self._execute("execute_mm_leg", sender, round_id, rate, volume)

    def execute_rm_leg(self, sender: Sender, round_id: int, rate: int, volume: int) -> TxResult:
        return self._execute("execute_rm_leg", sender, round_id, rate, volume)

    def _execute(self, fn: str, sender: Sender, round_id: int, rate: int, volume: int) -> TxResult:
        check_uint("round_id", round_id)
        check_uint("rate", rate, bound=_UINT128)
        check_uint("volume", volume, bound=_UINT128)
        return self.chain.send(sender, self.contract, fn, (round_id, rate, volume))

    def settle(self, sender: Sender, round_id: int) -> TxResult:
        check_uint("round_id", round_id)
        return self.chain.send(sender, self.contract, "settle", (round_id,))

    def enforce_deadline(self, sender: Sender, round_id: int) -> TxResult:
        check_uint("round_id", round_id)
        return self.chain.send(sender, self.contract, "enforce_deadline", (round_id,))

    def prove_deviation(self, sender: Sender, round_id: int, side: Side | int,
                        preimage: InstructionPreimage) -> TxResult:
        check_uint("round_id", round_id)
        try:
            side = Side(side)
        except ValueError:
            raise ChainInputError(f"side must be Side.MM (0) or Side.RM (1), got {side!r}") from None
        if not isinstance(preimage, InstructionPreimage):
            raise ChainInputError(f"preimage must be an InstructionPreimage, got {type(preimage).__name__}")
        return self.chain.send(sender, self.contract, "prove_deviation",
                               (round_id, int(side), preimage.volume, preimage.r_mm, preimage.r_rm,
                                preimage.r_bd_x2, preimage.salt))

    # ---------------------------------------------------------------- views
    def _view(self, fn: str, *args: Any) -> Any:
        return self.chain.call(self.contract, fn, *args)

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
        state = int(r[0])
        phase = RoundPhase(state % 256)
        return RoundState(
            round_id=round_id, phase=phase, phase_block=(state >> 8) % 2**64, deadline=self.deadline(round_id),
            trade=bool(state >> 72 & 1),
            report_commitment_mm=bytes(r[1]), report_commitment_rm=bytes(r[2]),
            ciphertext_digest_mm=bytes(r[3]), ciphertext_digest_rm=bytes(r[4]),
            output_digest=bytes(r[5]) if state >> 104 & 1 else bytes(32),  # the agreed digest only
            attestation_digest=bytes(r[6]), instruction_commitment=bytes(r[7]),
            mm_record=_record(int(r[8])) if r[8] or phase in _MM_EXECUTED else None,
            rm_record=_record(int(r[9])) if r[9] or phase in _RM_EXECUTED else None,
            offender=None if int(r[10], 16) == 0 else r[10],
            beneficiary=None if int(r[11], 16) == 0 else r[11],
            forfeited_amount=int(r[12]),
        )

    def tally(self, round_id: int, output_digest: bytes) -> int:
        """How many evaluators posted ``output_digest`` in the round."""
        check_bytes32("output_digest", output_digest)
        return int(self._view("tally", round_id, output_digest))

    def has_posted_output(self, round_id: int, evaluator: str) -> bool:
        return bool(self._view("has_posted_output", round_id, to_checksum_address(evaluator)))

    def output_votes(self, round_id: int) -> dict[str, bytes]:
        """evaluator address -> the output digest it posted in the round (from OutputPosted events)."""
        return {e.args["evaluator"]: e.args["output_digest"] for e in self.events("OutputPosted", round_id=round_id)}

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
            windows=PhaseWindows(int(v("report_window")), int(v("compute_window")), int(v("instruct_window")),
                                 int(v("mm_leg_window")), int(v("rm_leg_window")), int(v("challenge_window"))),
        )

    def events(self, name: str | None = None, **match: Any) -> list[EventRecord]:
        """This contract's events in chain order, e.g. ``events("PhaseChanged", round_id=2)``."""
        return self.chain.events(self.address, name, **match)


def deploy_coordinator(chain: Chain, terms: CoordinatorTerms, sender: Sender = DEPLOYER) -> Coordinator:
    """Compile (cached) and deploy a Coordinator with ``terms``; returns the typed wrapper."""
    if not isinstance(terms, CoordinatorTerms):
        raise ChainInputError(f"terms must be CoordinatorTerms, got {type(terms).__name__}")
    contract, _ = chain.deploy(chain.compile("Coordinator"), terms.constructor_args(), sender)
    return Coordinator(chain, contract.address)
