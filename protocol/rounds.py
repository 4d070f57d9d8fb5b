"""The coordinating process: drives one round through its phases, resumable from the chain + blob store.

The driver holds no state of its own: before every step it reads the round's phase from the chain,
and each role agent's step is idempotent (it records what it did in its own folder before announcing
it).  Killing the process at any point and calling :meth:`RoundDriver.run_round` again therefore
continues where the chain says the round is (ARCHITECTURE.md "Storage").  ``phases.crash_point`` is the
test hook that kills it.

Order of a round (MODEL.md §6): commit (deposits; each dealer encrypts its own report under the market's
public key and commits to the report and to its ciphertext blob) → report (once both are committed, each
dealer publishes its blob and reveals its digest) → compute (each evaluator opens both blobs and runs the
circuit, posting its output digest, or a fault naming a dealer whose blob it refuses; ``threshold`` must
agree) → open (fhe: each key holder posts a mask share of that output, then a table share; the custodian
combines the public shares; simulate: the custodian decodes the plaintext output), attest, seal the
instructions → mm_leg (BDmm offers to MM, MM accepts) → rm_leg (BDrm checks BDmm's
record, then offers to RM) → settle (BDmm checks BDrm's record; challenge window; settle; the ledger
books both legs and the inter-dealer leg at the smaller accepted volume at r_bd).

Expired rounds: before every step the driver checks the round's deadline on chain. When it has passed
(no process drove the round in time -- on anvil or a shared node blocks advance on their own), the
driver has the contract close the round by its own rules (``enforce_deadline``: a missing commitment, a
missing reveal while the other dealer revealed, dealer_mm's or dealer_rm's missed leg forfeit that dealer's
deposit; no reveal at all, or a missed custodian or evaluator step, cancels the round and unlocks the
deposits) and the caller goes on with the next round. A key holder that misses the Computed deadline is
such a missed step.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from chain import RoundPhase
from common.vocabulary import (
    CLIENT_MM,
    CLIENT_RM,
    CLIENT_ROLES,
    CUSTODIAN,
    DEALER_MM,
    DEALER_RM,
    DEALER_ROLES,
    dealer_of,
)
from protocol.deployment import Deployment
from protocol.ledger import Ledger, first_leg_transfers, initial_ledger, second_leg_transfers
from protocol.phases import PhaseJournal, crash_point
from protocol.report import write_transcript
from protocol.roles import ClientAgent, Custodian, DealerAgent, Evaluator, KeyHolderAgent, ProtocolError

__all__ = ["RoundDriver", "rebuild_ledger", "round_legs", "next_round_id"]


def _noop(*_a, **_k):
    return None


def next_round_id(dep: Deployment) -> int:
    """The open round if one is open (resume), else the next id."""
    coord = dep.coordinator
    current = coord.current_round()
    if current and not coord.phase(current).terminal:
        return current
    return current + 1


def round_legs(rs, r_bd_x2: int | None) -> dict:
    """Executed legs of a closed round, from the chain's execution records.

    The inter-dealer leg settles at the smaller accepted volume at ``r_bd`` when both client legs were
    executed [decided: legs executed with clients stand even when the round is forfeited; forfeiture
    moves the deposit on top]."""
    q_mm = rs.mm_record.volume if rs.mm_record else 0
    q_rm = rs.rm_record.volume if rs.rm_record else 0
    r_mm = rs.mm_record.rate if rs.mm_record else 0
    r_rm = rs.rm_record.rate if rs.rm_record else 0
    both = rs.mm_record is not None and rs.rm_record is not None
    q_bd = min(q_mm, q_rm) if both else 0
    if r_bd_x2 is None:
        r_bd_x2 = r_mm + r_rm
    return {"q_mm": q_mm, "q_rm": q_rm, "q_bd": q_bd, "r_mm": r_mm, "r_rm": r_rm, "r_bd_x2": r_bd_x2 if q_bd else 0}


def rebuild_ledger(dep: Deployment, r_bd_of: dict[int, int] | None = None) -> tuple[Ledger, dict[int, dict]]:
    """The parties' balances after every closed round, rebuilt from the chain's execution records.

    ``r_bd_of`` gives the instructed ``r_bd_x2`` per round where a record deviates (the dealers know it
    from their instructions); otherwise ``r_mm + r_rm`` of the records.  Conservation is checked after
    every round.
    """
    e = dep.market.endowment
    ledger = initial_ledger(e["cash_units"], e["collateral_units"])
    per_round = {}
    coord = dep.coordinator
    for rid in range(1, coord.current_round() + 1):
        rs = coord.round(rid)
        if rs.phase not in (RoundPhase.SETTLED, RoundPhase.FORFEITED):
            continue
        legs = round_legs(rs, (r_bd_of or {}).get(rid))
        before = ledger.snapshot()
        ledger.apply_all(first_leg_transfers(legs["q_mm"], legs["q_rm"], legs["q_bd"]))
        ledger.apply_all(second_leg_transfers(legs["q_mm"], legs["q_rm"], legs["q_bd"], legs["r_mm"], legs["r_rm"],
                                              legs["r_bd_x2"]))
        ledger.check_conservation()
        after = ledger.snapshot()
        per_round[rid] = {"legs": legs, "cash_change": {p: after[p]["cash"] - before[p]["cash"] for p in after},
                          "balances": after}
    return ledger, per_round


@dataclass
class RoundDriver:
    """Runs rounds for one market; ``progress(event: str, **info)`` reports each step (for rich UIs)."""

    dep: Deployment
    circuit: object
    progress: object = _noop
    _agents: dict = field(default_factory=dict)

    def agent(self, role: str):
        if role not in self._agents:
            if role in DEALER_ROLES:
                self._agents[role] = DealerAgent(self.dep, role, self.circuit)
            elif role in CLIENT_ROLES:
                self._agents[role] = ClientAgent(self.dep, role)
            elif role == CUSTODIAN:
                self._agents[role] = Custodian(self.dep, self.circuit)
            elif role in self.dep.holders:
                self._agents[role] = KeyHolderAgent(self.dep, role)
            else:
                self._agents[role] = Evaluator(self.dep, role, self.circuit)
        return self._agents[role]

    def _phase(self, round_id: int):
        coord = self.dep.coordinator
        if coord.current_round() < round_id:
            return RoundPhase.NONE
        return coord.phase(round_id)

    def run_round(self, round_id: int) -> dict:
        """Drive ``round_id`` to a terminal phase; returns the per-phase gas and timings."""
        coord = self.dep.coordinator
        journal = PhaseJournal.open(self.dep.data_dir.phase_journal(round_id))
        self.dep.data_dir.transcripts.mkdir(exist_ok=True)
        P = RoundPhase
        dealer_mm, dealer_rm = self.agent(DEALER_MM), self.agent(DEALER_RM)
        custodian = self.agent(CUSTODIAN)

        self._close_if_expired(round_id, journal)
        if self._phase(round_id) is P.NONE and self.dep.holders and round_id > self.dep.slots:
            raise ProtocolError(f"round {round_id}: the market has no decryption slot left (its key holders were dealt "
                                f"{self.dep.slots} one-time slots, one per round); create a new market")
        if self._phase(round_id) in (P.NONE, P.COMMITTED):
            self.progress("encrypt", round=round_id)
            with journal.timed("encrypt"):  # each dealer encrypts its own report
                for d in (dealer_mm, dealer_rm):
                    d.prepare_report(round_id)
            self.progress("commit", round=round_id)
            with journal.timed("chain") as box:
                for d in (dealer_mm, dealer_rm):
                    box["gas"] += d.ensure_deposit()
                for d in (dealer_mm, dealer_rm):
                    box["gas"] += d.commit(round_id)
            self._checkpoint(journal, round_id, "commit")

        self._close_if_expired(round_id, journal)
        if self._phase(round_id) == P.REVEALING:
            self.progress("reveal", round=round_id)
            for d in (dealer_mm, dealer_rm):
                d.publish(round_id)
            self._checkpoint(journal, round_id, "report.blobs")
            with journal.timed("chain") as box:
                for d in (dealer_mm, dealer_rm):
                    box["gas"] += d.reveal(round_id)
                if self._phase(round_id) == P.REVEALING:  # a dealer withheld its reveal
                    box["gas"] += self._enforce_deadline(round_id, DEALER_MM)
            self._checkpoint(journal, round_id, "report")

        self._close_if_expired(round_id, journal)
        if self._phase(round_id) == P.REPORTED:
            for role in self.dep.evaluators:
                if self._phase(round_id) != P.REPORTED:
                    break  # the threshold was reached
                ev = self.agent(role)
                if coord.has_posted_output(round_id, self.dep.address(role)):
                    continue
                self.progress("evaluate", round=round_id, evaluator=role)
                with journal.timed("evaluate"):
                    verdict = ev.evaluate(round_id)
                with journal.timed("chain") as box:
                    box["gas"] += ev.post(round_id, verdict)
                if verdict.kind == "fault":
                    self.progress("fault", round=round_id, evaluator=role, dealer=dealer_of(verdict.side),
                                  reason=verdict.reason, digest=verdict.digest.hex())
                else:
                    self.progress("evaluated", round=round_id, evaluator=role, digest=verdict.digest.hex())
            self._checkpoint(journal, round_id, "compute")
            if self._phase(round_id) == P.REPORTED:
                raise ProtocolError(f"round {round_id}: evaluators disagree; no output or fault reached the "
                                    f"threshold {self.dep.threshold}")

        self._close_if_expired(round_id, journal)
        if self._phase(round_id) == P.COMPUTED and self.dep.holders:
            self._open_by_holders(round_id, journal)

        self._close_if_expired(round_id, journal)
        if self._phase(round_id) == P.COMPUTED:
            self.progress("decrypt", round=round_id)
            with journal.timed("decrypt"):
                custodian.prepare_instruction(round_id)
            self._checkpoint(journal, round_id, "decrypt.blobs")
            with journal.timed("chain") as box:
                box["gas"] += custodian.post_instruction(round_id)
            self._checkpoint(journal, round_id, "decrypt")

        self._close_if_expired(round_id, journal)
        if self._phase(round_id) == P.INSTRUCTED:
            self.progress("mm_leg", round=round_id)
            with journal.timed("settle") as box:
                gas, _ = dealer_mm.execute(round_id, self.agent(CLIENT_MM))
                box["gas"] += gas
                if self._phase(round_id) == P.INSTRUCTED:  # dealer_mm skipped its step
                    box["gas"] += self._enforce_deadline(round_id, DEALER_RM)
            self._checkpoint(journal, round_id, "mm_leg")

        self._close_if_expired(round_id, journal)
        if self._phase(round_id) == P.MM_LEG_DONE:
            self.progress("rm_leg", round=round_id)
            with journal.timed("settle") as box:
                box["gas"] += dealer_rm.challenge(round_id)
                if self._phase(round_id) == P.MM_LEG_DONE:
                    gas, _ = dealer_rm.execute(round_id, self.agent(CLIENT_RM))
                    box["gas"] += gas
                if self._phase(round_id) == P.MM_LEG_DONE:  # dealer_rm skipped its step
                    box["gas"] += self._enforce_deadline(round_id, DEALER_MM)
            self._checkpoint(journal, round_id, "rm_leg")

        if self._phase(round_id) == P.RM_LEG_DONE:
            self.progress("settle", round=round_id)
            with journal.timed("settle") as box:
                box["gas"] += dealer_mm.challenge(round_id)
                if self._phase(round_id) == P.RM_LEG_DONE:
                    window = self.dep.onchain_terms.windows.challenge
                    rs = coord.round(round_id)
                    behind = rs.phase_block + window + 1 - self.dep.chain.block_number
                    if behind > 0:
                        self.dep.chain.mine(behind)
                    box["gas"] += coord.settle(DEALER_MM, round_id).gas_used
            self._checkpoint(journal, round_id, "settle")

        final = self._phase(round_id)
        if not final.terminal:
            raise ProtocolError(f"round {round_id}: stopped in phase {final.name}")
        result = {"phase": final.name, "timings": dict(journal.timings), "gas": dict(journal.gas)}
        write_transcript(self.dep, round_id, result)  # when the round closes: the auditor requires it
        return result

    def _open_by_holders(self, round_id: int, journal: PhaseJournal) -> None:
        """Every holder posts its mask share, then its table share (all n answer: with every holder present a
        wrong share is detected, docs/THRESHOLD.md §4). A holder that refuses or fails is reported and the others
        go on: k answers open the output; with fewer the custodian cannot post and the deadline closes the round."""
        for stage, step in (("mask", KeyHolderAgent.post_mask), ("table", KeyHolderAgent.post_table)):
            self.progress(f"share_{stage}", round=round_id)
            for role in self.dep.holders:
                try:
                    holder = self.agent(role)
                    with journal.timed("open") as box:  # the share's computation and its post_share transaction
                        box["gas"] += step(holder, round_id)
                except ProtocolError as exc:
                    self.progress("share_refused", round=round_id, holder=role, stage=stage, reason=str(exc))
            self._checkpoint(journal, round_id, f"share_{stage}")

    def _checkpoint(self, journal, round_id: int, point: str) -> None:
        """The crash hook, after the public transcript is written if the round just closed (so a kill right
        after the closing step loses no transcript)."""
        if self._phase(round_id).terminal:
            write_transcript(self.dep, round_id, {"timings": dict(journal.timings), "gas": dict(journal.gas)})
        crash_point(round_id, point)

    def ensure_transcripts(self) -> list[int]:
        """Write the public transcript of every closed round that has none (a run killed right after a
        round closed); returns their ids."""
        coord = self.dep.coordinator
        written = []
        for rid in range(1, coord.current_round() + 1):
            if coord.phase(rid).terminal and not self.dep.data_dir.transcript(rid).exists():
                journal = PhaseJournal.open(self.dep.data_dir.phase_journal(rid))
                self.dep.data_dir.transcripts.mkdir(exist_ok=True)
                write_transcript(self.dep, rid, {"timings": dict(journal.timings), "gas": dict(journal.gas)})
                written.append(rid)
        return written

    def _close_if_expired(self, round_id: int, journal: PhaseJournal) -> None:
        """Close the round by the contract's rules if its current phase's deadline has been reached.

        [decided] The deadline block itself counts as reached (a step sent now could be mined after it);
        a round in RmLegDone is settled instead (its challenge window only delays settlement)."""
        phase = self._phase(round_id)
        if phase.terminal or phase in (RoundPhase.NONE, RoundPhase.RM_LEG_DONE):
            return
        if self.dep.chain.block_number < self.dep.coordinator.deadline(round_id):
            return
        self.progress("expired", round=round_id, phase=phase.name)
        with journal.timed("chain") as box:
            box["gas"] += self._enforce_deadline(round_id, DEALER_MM)

    def _enforce_deadline(self, round_id: int, caller: str) -> int:
        """The harmed dealer waits out the window and has the contract forfeit the other's deposit."""
        coord = self.dep.coordinator
        deadline = coord.deadline(round_id)
        behind = deadline + 1 - self.dep.chain.block_number
        if behind > 0:
            self.dep.chain.mine(behind)
        return coord.enforce_deadline(caller, round_id).gas_used
