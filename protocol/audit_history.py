"""The auditor's history: every round and every wei rebuilt from the Coordinator's events, read from the node.

Events are the history (they are in the receipts, which the blocks commit to); storage is only checked
against what they imply (``protocol/audit.py``). One pass over all the contract's events in chain order
(block, log index) replays the contract's rules:

* **phase machine** -- each ``PhaseChanged`` is a transition of ``chain.PHASE_TRANSITIONS``, caused by
  the step event its target needs in the same transaction (Revealing by the second ``ReportCommitted``,
  Reported by the second ``ReportRevealed``, ...), with ``deadline == block + window`` (0 once closed);
* **commit/reveal** -- each reveal comes after both dealers committed, once per dealer, within the reveal
  window, and opens the dealer's blob commitment: ``sha256(abi.encode(blob_digest, side, round, contract))``;
* **senders** -- the transaction's ``from`` (``eth_getTransactionByHash``) is the role that may take the step
  (dealers commit, reveal, deposit and execute their own leg; the custodian posts the instruction or an
  invalid input; evaluators post outputs or faults; key holders post their own shares; a withdrawal goes to
  its caller);
* **opening** -- each key holder posts its mask share, then (after ``holder_threshold`` masks) its table
  share, once each, in phase Computed; the custodian's step comes after ``holder_threshold`` table shares;
* **deadlines** -- every step lands at or before its phase's deadline; ``enforce_deadline`` outcomes
  (a missed-deadline forfeit, a cancellation) only after it; ``settle`` only after the challenge window; a
  deviation proof on the rm record within it;
* **money** -- deposits, forfeits and withdrawals give what each account is owed; every withdrawal must
  pay exactly what its caller was owed; after every block with an event the contract's balance
  (``eth_getBalance`` at that block) must cover what it owes. More is surplus (e.g. ether forced in by
  ``selfdestruct``): reported, not a failure.

Each problem names its check and the block/transaction, so a failure says what disagrees with what.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from chain import (
    PHASE_TRANSITIONS, PHASE_WINDOW, ExecutionRecord, RoundPhase, RoundState, ShareStage, blob_commitment,
)
from common.vocabulary import SIDES, Side, dealer_of

__all__ = ["MarketHistory", "RoundHistory", "read_history"]

P = RoundPhase
# target phase -> the step event that must cause it in the same transaction (None: settle/enforce_deadline)
_CAUSE = {P.REVEALING: "ReportCommitted", P.REPORTED: "ReportRevealed", P.COMPUTED: "OutputPosted", P.INSTRUCTED: "InstructionPosted",
          P.MM_LEG_DONE: "LegExecuted", P.RM_LEG_DONE: "LegExecuted", P.FORFEITED: "Forfeited"}
_ZERO = bytes(32)


@dataclass
class RoundHistory:
    """One round as its events tell it; ``problems`` maps a check name to what is wrong."""

    round_id: int
    events: list = field(default_factory=list)
    phases: list = field(default_factory=list)          # [(phase, block)]
    phase: RoundPhase = RoundPhase.NONE
    phase_block: int = 0
    deadline: int = 0
    commitments: dict = field(default_factory=dict)     # side -> bytes
    blob_commitments: dict = field(default_factory=dict)  # side -> bytes
    reveals: dict = field(default_factory=dict)         # side -> revealed blob digest
    votes: dict = field(default_factory=dict)           # evaluator address -> digest
    faults: dict = field(default_factory=dict)          # evaluator address -> (side, fault digest)
    shares: dict = field(default_factory=dict)          # share stage (0 mask, 1 table) -> {holder address: digest}
    invalid_side: str | None = None                     # the side of an InputInvalid event
    refused: dict = field(default_factory=dict)         # side -> reason its blob is refused (set by the audit)
    counts: dict = field(default_factory=dict)          # digest -> evaluators
    output: bytes = _ZERO
    attestation: bytes = _ZERO
    instruction_commitment: bytes = _ZERO
    trade: bool = False
    records: dict = field(default_factory=dict)         # side -> ExecutionRecord
    evidence: dict = field(default_factory=dict)        # side -> execution record digest
    forfeit: dict | None = None                          # offender, beneficiary, amount, reason
    problems: dict = field(default_factory=dict)
    _cause: tuple | None = None                          # (tx_hash, event name) of the last step event
    _invalid_tx: str | None = None                       # the transaction of the InputInvalid event

    def problem(self, check: str, text: str) -> None:
        self.problems.setdefault(check, []).append(text)

    def state(self) -> RoundState:
        """The RoundState the events imply (what storage must hold)."""
        f = self.forfeit or {}
        return RoundState(
            round_id=self.round_id, phase=self.phase, phase_block=self.phase_block, deadline=self.deadline,
            trade=self.trade, report_commitment_mm=self.commitments.get("mm", _ZERO),
            report_commitment_rm=self.commitments.get("rm", _ZERO),
            blob_commitment_mm=self.blob_commitments.get("mm", _ZERO),
            blob_commitment_rm=self.blob_commitments.get("rm", _ZERO),
            ciphertext_digest_mm=self.reveals.get("mm", _ZERO),
            ciphertext_digest_rm=self.reveals.get("rm", _ZERO), output_digest=self.output,
            attestation_digest=self.attestation, instruction_commitment=self.instruction_commitment,
            mm_record=self.records.get("mm"), rm_record=self.records.get("rm"), offender=f.get("offender"),
            beneficiary=f.get("beneficiary"), forfeited_amount=int(f.get("amount", 0)),
            mask_shares=len(self.shares.get(0, {})), table_shares=len(self.shares.get(1, {})))


@dataclass
class MarketHistory:
    rounds: dict = field(default_factory=dict)          # round id -> RoundHistory
    current_round: int = 0
    deposits: dict = field(default_factory=dict)        # address (lower) -> wei
    withdrawable: dict = field(default_factory=dict)
    deposited: int = 0
    withdrawn: int = 0
    problems: dict = field(default_factory=dict)        # market-wide check -> [text]
    surplus: list = field(default_factory=list)         # [(block, wei)]
    balance_checks: int = 0
    events: int = 0
    transactions: int = 0

    def problem(self, check: str, text: str) -> None:
        self.problems.setdefault(check, []).append(text)

    @property
    def owed(self) -> int:
        return sum(self.deposits.values()) + sum(self.withdrawable.values())


def _side(a) -> str:
    """The name of the side an event's ``side`` field numbers (plain ``str``: it shows in messages as before)."""
    return Side.of(int(a["side"])).value


class _Replay:
    def __init__(self, dep, published) -> None:
        self.dep, self.terms = dep, published
        low = str.lower
        self.dealer = {Side.MM.value: low(published.dealer_mm), Side.RM.value: low(published.dealer_rm)}
        self.contract = dep.contract_address
        self.side_of = {v: k for k, v in self.dealer.items()}
        self.custodian = low(published.custodian)
        self.evaluators = {low(e) for e in published.evaluators}
        self.holders = {low(h) for h in published.holders}
        self.windows = published.windows
        self.h = MarketHistory()
        self.senders: dict[str, str | None] = {}

    # --- helpers
    def window(self, phase: RoundPhase) -> int:
        return getattr(self.windows, PHASE_WINDOW[phase]) if phase in PHASE_WINDOW else 0

    def sender(self, e) -> str:
        return (self.senders.get(e.tx_hash) or "").lower()

    def round_open(self) -> bool:
        r = self.h.rounds.get(self.h.current_round)
        return r is not None and not r.phase.terminal

    def where(self, e) -> str:
        return f"at block {e.block_number} (tx {e.tx_hash[:12]}…)"

    def check_sender(self, r, e, allowed: set[str], role: str) -> None:
        got = self.sender(e)
        if got not in allowed:
            r.problem("history.senders", f"{e.name} {self.where(e)} sent by {got or 'an unknown account'}, "
                                         f"not by {role}")

    def check_in_time(self, r, e, phase: RoundPhase) -> None:
        if r.phase is not phase:
            r.problem("phase.order", f"{e.name} {self.where(e)} in phase {r.phase.label}, not {phase.label}")
        elif e.block_number > r.deadline:
            r.problem("history.deadlines", f"{e.name} {self.where(e)} after the {phase.label} deadline "
                                           f"block {r.deadline}")

    # --- events
    def apply(self, e) -> None:
        a = e.args
        if "round_id" in a:
            rid = int(a["round_id"])
            r = self.h.rounds.setdefault(rid, RoundHistory(rid))
            r.events.append(e)
            getattr(self, f"_on_{e.name}")(r, e, a)
        elif e.name == "Deposited":
            self._on_deposited(e, a)
        elif e.name == "Withdrawn":
            self._on_withdrawn(e, a)

    def _on_PhaseChanged(self, r, e, a) -> None:
        new = RoundPhase(int(a["phase"]))
        prev = r.phase
        if prev is P.NONE:
            if r.round_id != self.h.current_round + 1 or self.round_open():
                self.h.problem("history.rounds", f"round {r.round_id} opened {self.where(e)} while the current "
                                                 f"round is {self.h.current_round}"
                                                 f"{' (open)' if self.round_open() else ''}")
            self.h.current_round = max(self.h.current_round, r.round_id)
        if new not in PHASE_TRANSITIONS[prev]:
            r.problem("phase.order", f"{prev.label} -> {new.label} {self.where(e)} is not a transition of "
                                        f"the contract")
        cause = _CAUSE.get(new)
        if new is P.SETTLED and prev is P.COMPUTED:
            cause = "InstructionPosted"
        if cause is not None and r._cause != (e.tx_hash, cause):
            r.problem("phase.order", f"{prev.label} -> {new.label} {self.where(e)} without its {cause} event")
        if new is P.CANCELLED and prev is P.REVEALING and r.reveals:
            r.problem("history.forfeit", f"cancelled {self.where(e)} although dealer_{next(iter(r.reveals))} revealed: "
                                         f"the contract's rule forfeits the dealer that did not")
        if new is P.CANCELLED and e.block_number <= r.deadline:
            r.problem("history.deadlines", f"cancelled {self.where(e)} before the {prev.label} deadline block "
                                           f"{r.deadline}")
        if new is P.SETTLED and prev is P.RM_LEG_DONE and e.block_number <= r.phase_block + self.windows.challenge:
            r.problem("history.deadlines", f"settled {self.where(e)} inside the challenge window (until block "
                                           f"{r.phase_block + self.windows.challenge})")
        want = 0 if new.terminal else e.block_number + self.window(new)
        if int(a["deadline"]) != want:
            r.problem("history.deadlines", f"PhaseChanged to {new.label} {self.where(e)} announces deadline "
                                           f"{a['deadline']}, the terms give {want}")
        r.phase, r.phase_block, r.deadline = new, e.block_number, want
        r.phases.append((new, e.block_number))

    def _on_ReportCommitted(self, r, e, a) -> None:
        dealer = a["dealer"].lower()
        side = self.side_of.get(dealer)
        self.check_sender(r, e, {dealer} & set(self.dealer.values()), "the committing dealer")
        self.check_in_time(r, e, P.COMMITTED)
        if side is None:
            r.problem("history.senders", f"ReportCommitted {self.where(e)} by {dealer}, not a dealer")
            return
        if side in r.commitments:
            r.problem("phase.order", f"{dealer_of(side)} committed twice, again {self.where(e)}")
        r.commitments[side] = bytes(a["commitment"])
        r.blob_commitments[side] = bytes(a["blob_commitment"])
        if set(r.commitments) == set(SIDES):
            r._cause = (e.tx_hash, e.name)

    def _on_ReportRevealed(self, r, e, a) -> None:
        dealer = a["dealer"].lower()
        side = _side(a)
        role = dealer_of(side)
        self.check_sender(r, e, {self.dealer[side]} & {dealer}, role)
        digest = bytes(a["blob_digest"])
        if set(r.commitments) != set(SIDES):
            r.problem("commit_reveal.order", f"{role} revealed {self.where(e)} before both dealers committed "
                                             f"(committed: {sorted(r.commitments) or 'none'})")
        self.check_in_time(r, e, P.REVEALING)
        if side in r.reveals:
            r.problem("commit_reveal.order", f"{role} revealed twice, again {self.where(e)}")
        if blob_commitment(digest, side, r.round_id, self.contract) != r.blob_commitments.get(side):
            r.problem("commit_reveal.match", f"{role}'s reveal {digest.hex()[:16]}… {self.where(e)} does not "
                                             f"open its blob commitment sha256(abi.encode(blob_digest, {int(a['side'])}, "
                                             f"{r.round_id}, contract))")
        r.reveals[side] = digest
        if set(r.reveals) == set(SIDES):
            r._cause = (e.tx_hash, e.name)

    def _on_OutputPosted(self, r, e, a) -> None:
        ev, digest = a["evaluator"].lower(), bytes(a["output_digest"])
        self.check_sender(r, e, {ev} & self.evaluators, "an evaluator posting its own output")
        self.check_in_time(r, e, P.REPORTED)
        if ev in {v.lower() for v in (*r.votes, *r.faults)}:
            r.problem("phase.order", f"evaluator {ev} posted twice, again {self.where(e)}")
        r.votes[a["evaluator"]] = digest
        r.counts[digest] = r.counts.get(digest, 0) + 1
        if int(a["votes"]) != r.counts[digest]:
            r.problem("phase.order", f"OutputPosted {self.where(e)} counts {a['votes']} votes for "
                                        f"{digest.hex()[:16]}…, the events give {r.counts[digest]}")
        if r.counts[digest] >= self.terms.threshold and r.output == _ZERO:
            r.output = digest
            r._cause = (e.tx_hash, e.name)

    def _on_FaultPosted(self, r, e, a) -> None:
        ev, side = a["evaluator"].lower(), _side(a)
        self.check_sender(r, e, {ev} & self.evaluators, "an evaluator posting its own fault")
        self.check_in_time(r, e, P.REPORTED)
        if ev in {v.lower() for v in (*r.votes, *r.faults)}:
            r.problem("phase.order", f"evaluator {ev} posted twice, again {self.where(e)}")
        r.faults[a["evaluator"]] = (side, bytes(a["fault_digest"]))
        count = sum(1 for s, _ in r.faults.values() if s == side)
        if int(a["votes"]) != count:
            r.problem("phase.order", f"FaultPosted {self.where(e)} counts {a['votes']} faults against "
                                     f"{dealer_of(side)}, the events give {count}")

    def _on_SharePosted(self, r, e, a) -> None:
        holder, stage = a["holder"].lower(), int(a["stage"])
        self.check_sender(r, e, {holder} & self.holders, "a key holder posting its own share")
        self.check_in_time(r, e, P.COMPUTED)
        posted = r.shares.setdefault(stage, {})
        if holder in posted:
            r.problem("phase.order", f"key holder {holder} posted its stage-{stage} share twice, again {self.where(e)}")
        if stage == ShareStage.TABLE and (holder not in r.shares.get(ShareStage.MASK, {})
                                         or len(r.shares[ShareStage.MASK]) < self.terms.holder_threshold):
            r.problem("phase.order", f"key holder {holder}'s table share {self.where(e)} before its own mask share "
                                     f"or before {self.terms.holder_threshold} mask shares")
        posted[holder] = bytes(a["share_digest"])
        if int(a["count"]) != len(posted):
            r.problem("phase.order", f"SharePosted {self.where(e)} counts {a['count']} stage-{stage} shares, the "
                                     f"events give {len(posted)}")

    def check_opened(self, r, e) -> None:
        """The custodian's step needs holder_threshold table shares (none without holders)."""
        tables = len(r.shares.get(1, {}))
        if tables < self.terms.holder_threshold:
            r.problem("phase.order", f"{e.name} {self.where(e)} after {tables} table shares, the terms need "
                                     f"{self.terms.holder_threshold}")

    def _on_InputInvalid(self, r, e, a) -> None:
        self.check_sender(r, e, {self.custodian}, "the custodian")
        self.check_in_time(r, e, P.COMPUTED)
        self.check_opened(r, e)
        r.attestation = bytes(a["attestation_digest"])
        r.invalid_side = _side(a)
        r._invalid_tx = e.tx_hash

    def _on_InstructionPosted(self, r, e, a) -> None:
        self.check_sender(r, e, {self.custodian}, "the custodian")
        self.check_in_time(r, e, P.COMPUTED)
        self.check_opened(r, e)
        r.attestation, r.instruction_commitment = bytes(a["attestation_digest"]), bytes(a["instruction_commitment"])
        r.trade = bool(a["trade"])
        r._cause = (e.tx_hash, e.name)

    def _on_LegExecuted(self, r, e, a) -> None:
        side = _side(a)
        self.check_sender(r, e, {self.dealer[side]} & {a["dealer"].lower()}, dealer_of(side))
        self.check_in_time(r, e, P.INSTRUCTED if side == Side.MM else P.MM_LEG_DONE)
        r.records[side] = ExecutionRecord(int(a["rate"]), int(a["volume"]))
        r.evidence[side] = bytes(a["evidence"])
        r._cause = (e.tx_hash, e.name)

    def _on_Forfeited(self, r, e, a) -> None:
        offender, beneficiary, amount = a["offender"].lower(), a["beneficiary"].lower(), int(a["amount"])
        side = self.side_of.get(offender)
        if side is None or beneficiary != self.dealer.get(Side(side).other.value):
            r.problem("history.forfeit", f"Forfeited {self.where(e)}: {offender} -> {beneficiary} is not one "
                                         f"dealer to the other")
        reason = int(a["reason"])
        if reason == 1:  # missed deadline (enforce_deadline)
            faulty = {P.INSTRUCTED: Side.MM.value, P.MM_LEG_DONE: Side.RM.value}.get(r.phase)
            if r.phase is P.COMMITTED:
                faulty = next((s.value for s in SIDES if s not in r.commitments), None)
            if r.phase is P.REVEALING and len(r.reveals) == 1:
                faulty = (Side.RM if Side.MM in r.reveals else Side.MM).value
            if faulty is None or faulty != side:
                r.problem("history.forfeit", f"missed-deadline forfeit of {offender} {self.where(e)} in phase "
                                             f"{r.phase.label}: the contract's rule names dealer_{faulty}")
            if e.block_number <= r.deadline:
                r.problem("history.deadlines", f"missed-deadline forfeit {self.where(e)} before the deadline block "
                                               f"{r.deadline}")
        elif reason == 3:  # k evaluators posted faults naming the offender's revealed blob
            count = sum(1 for s, _ in r.faults.values() if s == side)
            if r.phase is not P.REPORTED or count < self.terms.threshold:
                r.problem("history.forfeit", f"invalid-report forfeit of {offender} {self.where(e)} with {count} "
                                             f"faults against it in phase {r.phase.label} (threshold "
                                             f"{self.terms.threshold})")
        elif reason == 4:  # the custodian's decrypted invalid flag (InputInvalid in the same transaction)
            if r.phase is not P.COMPUTED or r.invalid_side != side or getattr(r, "_invalid_tx", None) != e.tx_hash:
                r.problem("history.forfeit", f"invalid-input forfeit of {offender} {self.where(e)} without the "
                                             f"custodian's InputInvalid naming dealer_{side} in phase Computed")
        else:  # a proven deviation of the offender's own record
            if side not in r.records or r.phase not in (P.MM_LEG_DONE, P.RM_LEG_DONE):
                r.problem("history.forfeit", f"deviation forfeit of {offender} {self.where(e)} without its record")
            if r.phase is P.RM_LEG_DONE and e.block_number > r.phase_block + self.windows.challenge:
                r.problem("history.deadlines", f"deviation proven {self.where(e)} after the challenge window")
        owed = self.h.deposits.get(offender, 0)
        if amount != owed:
            self.h.problem("money.forfeits", f"round {r.round_id} forfeits {amount} wei of {offender} "
                                             f"{self.where(e)}; the events give it a deposit of {owed} wei")
        self.h.deposits[offender] = 0
        self.h.withdrawable[beneficiary] = self.h.withdrawable.get(beneficiary, 0) + amount
        r.forfeit = {"offender": a["offender"], "beneficiary": a["beneficiary"], "amount": amount,
                     "reason": int(a["reason"])}
        r._cause = (e.tx_hash, e.name)

    def _on_deposited(self, e, a) -> None:
        dealer, amount, total = a["dealer"].lower(), int(a["amount"]), int(a["total"])
        if dealer not in self.side_of or self.sender(e) != dealer:
            self.h.problem("money.deposits", f"deposit {self.where(e)} credited to {dealer}, sent by "
                                             f"{self.sender(e) or 'an unknown account'}: only a dealer deposits "
                                             f"for itself")
        have = self.h.deposits.get(dealer, 0)
        if amount <= 0 or total != have + amount or total < self.terms.deposit_minimum:
            self.h.problem("money.deposits", f"deposit of {amount} wei by {dealer} {self.where(e)} announces a "
                                             f"total of {total}; the events give {have + amount} (minimum "
                                             f"{self.terms.deposit_minimum})")
        self.h.deposits[dealer] = have + amount
        self.h.deposited += amount

    def _on_withdrawn(self, e, a) -> None:
        account, amount = a["account"].lower(), int(a["amount"])
        own = self.h.deposits.get(account, 0)
        owed = self.h.withdrawable.get(account, 0) + (own if not self.round_open() else 0)
        if self.sender(e) != account:
            self.h.problem("money.withdrawals", f"withdrawal {self.where(e)} paid to {account} but sent by "
                                                f"{self.sender(e) or 'an unknown account'}")
        if amount != owed or owed == 0:
            self.h.problem("money.withdrawals", f"withdrawal of {amount} wei to {account} {self.where(e)}: the "
                                                f"events owe it {owed} wei")
        self.h.withdrawable[account] = 0
        if not self.round_open():
            self.h.deposits[account] = 0
        self.h.withdrawn += amount

    # --- balances
    def check_balance(self, chain, contract: str, block: int) -> None:
        balance = chain.balance_at(contract, block)
        owed = self.h.owed
        self.h.balance_checks += 1
        if balance < owed:
            self.h.problem("money.balance", f"balance short by {owed - balance} wei after block {block} "
                                            f"(holds {balance}, owes {owed})")
        elif balance > owed:
            self.h.surplus.append((block, balance - owed))


def read_history(dep, coordinator, published) -> MarketHistory:
    """Replay every event of ``coordinator`` (read from its node) under the ``published`` terms."""
    replay = _Replay(dep, published)
    events = sorted(coordinator.events(), key=lambda e: (e.block_number, e.log_index))
    chain = coordinator.chain
    for tx in dict.fromkeys(e.tx_hash for e in events):
        found = chain.transaction(tx)
        replay.senders[tx] = None if found is None else found["from"]
        if found is None:
            replay.h.problem("history.transactions", f"transaction {tx} of an event is unknown to the node")
    replay.h.events, replay.h.transactions = len(events), len(replay.senders)
    for i, e in enumerate(events):
        replay.apply(e)
        if i + 1 == len(events) or events[i + 1].block_number != e.block_number:
            replay.check_balance(chain, coordinator.address, e.block_number)
    return replay.h
