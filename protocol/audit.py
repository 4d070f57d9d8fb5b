"""The auditor: checks a market from public data only -- ``market.json``, the blob store, the transcripts and
the chain's node -- and writes nothing into the data directory.

It never opens ``roles/``. Its sources of truth are the node (the Coordinator's events, their transactions,
blocks, balances and the deployed code) and the blob bytes; storage, transcripts and any local cache are
checked against them, never trusted over them [decided]:

* **code** -- the deployed runtime code is ``chain/contracts/Coordinator.vy`` compiled now with the pinned
  vyper, and its immutables equal the terms ``market.json`` publishes (windows, deposit minimum, roles,
  digests);
* **history** (``protocol/audit_history.py``) -- every round rebuilt from the events: phase machine,
  senders, deadlines, forfeits; **money**: what each account is owed and was paid, the balance after every
  block with an event; **storage** (each round, ``current_round``, deposits, credits) must equal what the
  events imply, and a disagreement is named as such (never blamed on a role);
* **blobs** -- every blob the history anchors is re-hashed: circuit, evaluation keys, the market's public
  key (and CRS), each dealer's revealed report blob (opened as every evaluator opens it: structure, binding
  to its dealer, round and contract, the public key, and the proof when proofs are on), the output (replayed
  from the two reports and the artefact and keys named on chain), every evaluator's fault record, the
  custodian's attestation and the sealed instructions it names, each dealer's execution record (its digest
  is the ``evidence`` of ``LegExecuted``) and the offer and acceptance that record names; signatures and
  bindings; a blob in the store that nothing anchors is reported (a notice);
* **transcripts** -- every field of ``transcripts/round-<n>.json`` equals the events; its transactions'
  block numbers (and, on a node, block hashes) and its head are on the chain, so a rollback, a rewritten
  block or a truncated embedded journal is caught; a transcript of a round the chain does not have, or a
  closed round without its transcript, is an error;
* **liveness** -- a round left open past its deadline is reported (while a writer holds the lock: in progress).

**One block** [decided]: the audit reads the chain as of its head when it starts (``Chain.pin``; ``report.cut``),
so a writer working meanwhile cannot make its rounds look inconsistent. Rounds open at that block, opened after
it, or closed with their transcript not yet written while ``writer.lock`` is held are left out as in progress
(notices, ``cut.left_out``), never failures; transcripts and heads written after the block are judged against
the latest chain, so a forged transcript still fails.

Result: ``{"ok", "rounds": [{"round", "checks": [{"check", "ok", "detail"}]}], "failures": [...],
"notices": [...], "timings"}``. Round 0 holds the market-wide checks. A report with no checks fails.

(Over 500 lines: one named method per check, kept together so that the list of checks reads in one place;
the event replay they rely on is in audit_history.py, the signed statements in attestation.py.)
"""
from __future__ import annotations

import contextlib
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from chain import RoundPhase as P, ShareStage
from common.vocabulary import (
    ACCEPTANCE,
    CUSTODIAN,
    DEALER_MM,
    DEALER_RM,
    INSTRUCTION,
    OFFER,
    SIDES,
    Side,
    client_of,
    dealer_of,
)
from crypto.circuit import SelectionOutput, unwrap_blob
from crypto.encoding import digest as sha256
from crypto.envelope import SealedMessage
from crypto.tfhers import OwnerReportError
from crypto.threshold import ThresholdError, ThresholdSetup
from protocol.attestation import (
    ATTESTATION_CONTEXT,
    EXECUTION_CONTEXT,
    WITHHELD,
    StatementError,
    attested_invalid,
    expected_attestation,
    expected_execution_record,
    fault_record,
    mismatches,
    open_statement,
)
from protocol.audit_history import read_history
from protocol.backend import EvaluatorSide, circuit_from_artifact, decode_output, invalid_sides, report_binding
from protocol.blobstore import BlobError
from protocol.deployment import Deployment, DeploymentError, published_coordinator_terms
from protocol.layout import read_json, writer_active
from protocol.opening import PostedShare, holder_name, open_output
from protocol.report import transcript_fields

__all__ = ["Auditor", "AuditReport"]

_ZERO = bytes(32)


@dataclass
class AuditReport:
    rounds: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)
    notices: list = field(default_factory=list)
    cut: dict = field(default_factory=dict)  # {"block", "writer", "left_out": [{"round", "reason"}]}

    def leave_out(self, round_id: int, reason: str) -> None:
        """A round a writer is still working on at the audited block: not checked, never a failure."""
        self.cut.setdefault("left_out", []).append({"round": round_id, "reason": reason})
        self.notice(round_id, "in_progress", f"in progress, left out: {reason}")

    def add(self, round_id: int, check: str, ok: bool, detail: str = "") -> bool:
        self.rounds.setdefault(round_id, []).append({"check": check, "ok": bool(ok), "detail": detail})
        return ok

    def notice(self, round_id: int, check: str, detail: str) -> None:
        """Something worth an auditor's eye that is not a failure (a surplus, an unanchored blob)."""
        self.notices.append({"round": round_id, "check": check, "detail": detail})

    @property
    def check_count(self) -> int:
        return sum(len(c) for c in self.rounds.values())

    @property
    def failures(self) -> list[dict]:
        out = [{"round": r, "check": c["check"], "detail": c["detail"]}
               for r, checks in sorted(self.rounds.items()) for c in checks if not c["ok"]]
        if self.check_count == 0:  # an auditor that checked nothing has not verified anything (#15 item 6)
            out.append({"round": 0, "check": "audit.checks", "detail": "the audit ran 0 checks"})
        return out

    @property
    def ok(self) -> bool:
        return not self.failures

    def as_dict(self) -> dict:
        return {"ok": self.ok,
                "rounds": [{"round": r, "checks": checks} for r, checks in sorted(self.rounds.items())],
                "failures": self.failures, "notices": list(self.notices), "checks": self.check_count,
                "cut": dict(self.cut), "timings": self.timings}


class Auditor:
    """``Auditor(open_market(dir, read_only=True)).run()``; ``cache_dir``: an optional folder for the replay's
    circuit artefact (outside the data directory), else a temporary one removed afterwards."""

    def __init__(self, dep: Deployment, progress=None, cache_dir: Path | None = None):
        self.dep = dep
        self.report = AuditReport()
        self.progress = progress or (lambda *a, **k: None)
        self.cache_dir = cache_dir
        self._blob_cache: dict[bytes, bytes] = {}
        self._runner = None
        self.anchored: set[bytes] = set()
        self.artifact = self.eval_keys = self.public_key = self.crs = None
        self.history = None  # the events' story, once check_history has read it
        self.setup = None  # the threshold setup record (markets with key holders), once check_terms has read it

    # --- helpers -------------------------------------------------------------------------------------
    def _blob(self, round_id: int, kind: str, digest: bytes) -> bytes | None:
        """The blob named ``digest``, re-hashed; a failure names the kind and the digest."""
        self.anchored.add(bytes(digest))
        if digest in self._blob_cache:
            return self._blob_cache[digest]
        try:
            data = self.dep.blobs.get(digest)
        except BlobError as exc:
            self.report.add(round_id, f"blob.{kind}", False, f"{kind} blob {digest.hex()}: {exc}")
            return None
        self.report.add(round_id, f"blob.{kind}", True, digest.hex())
        if len(data) > 1_000_000:  # evaluation keys / artefact: hash once per process
            self._blob_cache[digest] = data
        return data

    def _checked(self, round_id: int, check: str, fn) -> None:
        """Run one named check; an exception fails that check (it names the exception), not the auditor."""
        try:
            fn()
        except Exception as exc:
            self.report.add(round_id, check, False, f"{type(exc).__name__}: {exc}")

    def _problems(self, round_id: int, problems: dict, names: tuple[str, ...]) -> None:
        for name in names:
            found = problems.get(name, [])
            self.report.add(round_id, name, not found, "; ".join(found) or "as the contract's rules require")

    def _runner_for(self, artifact: bytes, cache: Path):
        if self._runner is None:
            circuit = circuit_from_artifact(artifact, self.dep.terms, cache)
            self._runner = EvaluatorSide(self.dep.backend, circuit, self.public_key or b"", self.crs,
                                         self.dep.owner_parameters)
        return self._runner

    # --- market-wide ---------------------------------------------------------------------------------
    def check_terms(self):
        add, dep = self.report.add, self.dep
        onchain = self.onchain_terms = dep.coordinator.terms()
        terms = dep.terms
        add(0, "terms.digest", dep.terms_digest() == onchain.terms_digest,
            f"sha256(canonical terms, public key and CRS digests of market.json) vs terms_digest on chain "
            f"{onchain.terms_digest.hex()}")
        same = (onchain.grid, onchain.base_rate, onchain.rate_bits, onchain.hurdle_mode) == (
            terms.grid, terms.base_rate, terms.rate_bits, terms.hurdle_mode.value)
        add(0, "terms.fields", same, f"grid/base_rate/rate_bits/hurdle_mode on chain: {onchain.grid}, "
            f"{onchain.base_rate}, {onchain.rate_bits}, {onchain.hurdle_mode}")
        for name, value in (("circuit", onchain.circuit_digest), ("evaluation_keys", onchain.evaluation_keys_digest)):
            add(0, f"digest.{name}", dep.digest(name) == value,
                f"market.json {dep.digest(name).hex()} vs chain {value.hex()}")
        roles = {DEALER_MM: onchain.dealer_mm, DEALER_RM: onchain.dealer_rm, CUSTODIAN: onchain.custodian}
        roles.update(dict(zip(dep.evaluators, onchain.evaluators)))
        bad = [r for r, a in roles.items() if a.lower() != dep.address(r).lower()]
        add(0, "addresses", not bad and len(onchain.evaluators) == len(dep.evaluators),
            f"role addresses on chain differ from market.json: {bad}" if bad else "all role addresses match")
        add(0, "threshold", onchain.threshold == dep.threshold, f"threshold on chain {onchain.threshold}")
        holders = [a.lower() for a in onchain.holders]
        add(0, "key_holders", holders == [dep.address(h).lower() for h in dep.holders]
            and onchain.holder_threshold == dep.holder_threshold,
            f"key holders on chain {len(holders)} ({onchain.holder_threshold} needed), market.json "
            f"{', '.join(dep.holders) or 'none'} ({dep.holder_threshold} needed)")
        if dep.holders:
            self._checked(0, "threshold.setup", self.check_threshold_setup)

    def check_threshold_setup(self):
        """The public setup record (blob named in market.json, whose digest the terms digest covers) names the
        market's holders and k."""
        raw = self._blob(0, "threshold_setup", self.dep.digest("threshold_setup"))
        self.setup = None
        if raw is None:
            return

        setup = ThresholdSetup.from_bytes(raw)
        ok = (list(setup.params.holders), setup.params.threshold) == (self.dep.holders, self.dep.holder_threshold)
        self.report.add(0, "threshold.setup", ok, f"setup {setup.params.name} among {', '.join(setup.params.holders)}, "
                        f"switch width {setup.switch_bits}, {setup.encoding.count} output values")
        self.setup = setup if ok else None

    def check_code(self):
        problems = self.dep.coordinator.code_identity(self.published)
        self.report.add(0, "code.identity", not problems, "; ".join(problems) or
                        "runtime code = chain/contracts/Coordinator.vy compiled with the pinned vyper; "
                        "immutables = the published terms")

    def check_artifacts(self):
        self.artifact = self._blob(0, "circuit", self.published.circuit_digest)
        self.eval_keys = self._blob(0, "evaluation_keys", self.published.evaluation_keys_digest)
        # their digests are in the terms digest on chain (terms.digest checks market.json against it)
        self.public_key = self._blob(0, "public_key", self.dep.digest("public_key"))
        self.crs = self._blob(0, "crs", self.dep.digest("crs")) if self.dep.input_proofs else None

    def check_history(self):
        """Market-wide: rounds opened in order, the money, and storage against the events."""
        start = time.perf_counter()
        h = self.history = read_history(self.dep, self.dep.coordinator, self.published)
        self._problems(0, h.problems, ("history.transactions", "history.rounds", "money.deposits",
                                       "money.forfeits", "money.withdrawals"))
        found = h.problems.get("money.balance", [])
        self.report.add(0, "money.balance", not found, "; ".join(found) or
                        f"the balance covers what the contract owes after each of {h.balance_checks} blocks "
                        f"with an event")
        coord = self.dep.coordinator
        head = coord.chain.block_number
        balance = coord.balance()
        self.report.add(0, "money.balance.head", balance >= h.owed,
                        f"at head block {head} the contract holds {balance} wei and owes {h.owed} wei"
                        + (f": balance short by {h.owed - balance} wei" if balance < h.owed else ""))
        if balance > h.owed:
            first = h.surplus[0] if h.surplus else (head, balance - h.owed)
            self.report.notice(0, "money.surplus", f"the contract holds {balance - h.owed} wei more than it owes "
                               f"(first seen after block {first[0]}): ether sent without a deposit "
                               f"(e.g. forced by selfdestruct); nobody can withdraw it")
        current = coord.current_round()
        self.report.add(0, "storage.current_round", current == h.current_round,
                        f"storage current_round {current}, the events open rounds 1..{h.current_round}"
                        + ("" if current == h.current_round else ": storage disagrees with the events"))
        accounts = {self.published.dealer_mm.lower(), self.published.dealer_rm.lower(),
                    *h.deposits, *h.withdrawable}
        diffs = []
        for a in sorted(accounts):
            for name, stored, implied in (("deposits", coord.deposit_of(a), h.deposits.get(a, 0)),
                                          ("withdrawable", coord.withdrawable_of(a), h.withdrawable.get(a, 0))):
                if stored != implied:
                    diffs.append(f"{name}[{self._who(a)}] = {stored} wei in storage, the events imply {implied}")
        self.report.add(0, "storage.balances", not diffs, "; ".join(diffs) and
                        f"storage disagrees with the Deposited/Withdrawn/Forfeited events: {'; '.join(diffs)}"
                        or f"deposits and credits of {len(accounts)} accounts equal the events")
        self.report.timings["history"] = round(time.perf_counter() - start, 4)
        self.report.timings["history_events"] = h.events

    def _who(self, address: str) -> str:
        return self.dep.role_of(address) or address

    def check_liveness(self):
        h = self.history
        r = h.rounds.get(h.current_round)
        if r is None:
            return
        head = self.dep.coordinator.chain.block_number
        stuck = not r.phase.terminal and head > r.deadline
        action = "settle" if r.phase.name == "RM_LEG_DONE" else "enforce_deadline"
        writer = writer_active(self.dep.data_dir.root) if stuck else None
        if writer is not None:  # e.g. the challenge window just mined out, settle about to be sent
            self.report.add(0, "round.deadline", True, f"round {r.round_id} past its deadline block {r.deadline} at "
                            f"block {head} while a writer is active ({writer}): in progress")
            return
        self.report.add(0, "round.deadline", not stuck,
                        f"round {r.round_id} left open in phase {r.phase.label} past its deadline block {r.deadline} "
                        f"(head {head}): anyone may call {action}({r.round_id})" if stuck
                        else f"current round {r.round_id}: phase {r.phase.label}, deadline {r.deadline or '— (closed)'}")

    # --- one round: named checks ---------------------------------------------------------------------
    def check_round(self, round_id: int):
        h = self.history.rounds.get(round_id)
        if h is None:
            self.report.add(round_id, "round.exists", False,
                            f"round {round_id}: the chain has no such round (its events open rounds "
                            f"1..{self.history.current_round})")
            return
        rs = h.state()
        self._problems(round_id, h.problems, ("phase.order", "history.senders", "history.deadlines",
                                              "history.forfeit"))
        self._checked(round_id, "storage.round", lambda: self.check_storage(h, rs))
        self._problems(round_id, h.problems, ("commit_reveal.order", "commit_reveal.match"))
        for side in SIDES:
            self.report.add(round_id, f"commitment.{side}", rs.commitment(side) != _ZERO or rs.phase.name in (
                "COMMITTED", "FORFEITED"), f"report commitment {rs.commitment(side).hex()} and blob commitment "
                f"{rs.blob_commitment(side).hex()} by {dealer_of(side)}")
        if not h.reveals:
            return
        inputs = {side: self.check_report(h, side) for side in SIDES if side in h.reveals}
        if h.faults or set(inputs) == set(SIDES):
            self._checked(round_id, "evaluation.faults", lambda: self.check_faults(h, inputs))
        if set(inputs) == set(SIDES) and None not in inputs.values():
            self._checked(round_id, "evaluation.replay", lambda: self.check_evaluation(h, rs, inputs))
        body = None
        if rs.attestation_digest != _ZERO:
            body = self.check_attestation(rs, h)
        if self.dep.holders and rs.output_digest != _ZERO:
            self._checked(round_id, "opening", lambda: self.check_opening(h, rs, body))
        if body is not None and rs.instruction_commitment != _ZERO:
            self._checked(round_id, "sealed_instructions", lambda: self.check_sealed_instructions(rs, body))
        for side in SIDES:
            if side in h.evidence:
                self._checked(round_id, f"execution.{side}", lambda s=side: self.check_execution(h, s))
        self._checked(round_id, "outcome", lambda: self.check_outcome(h, rs))

    def check_storage(self, h, rs):
        """The round's storage (struct and packed state word) equals what its events imply."""
        stored = self.dep.coordinator.round(h.round_id)
        diffs = []
        for name in ("phase", "phase_block", "deadline", "trade", "report_commitment_mm", "report_commitment_rm",
                     "blob_commitment_mm", "blob_commitment_rm",
                     "ciphertext_digest_mm", "ciphertext_digest_rm", "output_digest", "attestation_digest",
                     "instruction_commitment", "forfeited_amount", "mask_shares", "table_shares"):
            a, b = getattr(stored, name), getattr(rs, name)
            if a != b:
                fmt = (lambda v: v.hex()) if isinstance(a, bytes) else str
                diffs.append(f"{name}: storage {fmt(a)}, events {fmt(b)}")
        for name in ("offender", "beneficiary"):
            a, b = getattr(stored, name), getattr(rs, name)
            if (a or "").lower() != (b or "").lower():
                diffs.append(f"{name}: storage {a}, events {b}")
        word = self.dep.coordinator.state_word(h.round_id)
        voted = {e.lower() for e in (*h.votes, *h.faults)}
        for side in SIDES:
            implied = sum(1 for s, _ in h.faults.values() if s == side)
            if word.faults(side) != implied:
                diffs.append(f"faults against {dealer_of(side)}: storage {word.faults(side)}, events {implied}")
        for i, e in enumerate(self.published.evaluators):
            if word.posted(i) != (e.lower() in voted):
                diffs.append(f"evaluator {i} posted-bit: storage {word.posted(i)}, events {e.lower() in voted}")
        for i, holder in enumerate(self.published.holders):
            for stage in ShareStage:
                posted = holder.lower() in h.shares.get(stage, {})
                if word.share_posted(i, stage) != posted:
                    diffs.append(f"key holder {i} stage-{stage} posted-bit: storage {word.share_posted(i, stage)}, "
                                 f"events {posted}")
        if word.agreed != (rs.output_digest != _ZERO) or (word.agreed and word.lead_votes != h.counts[rs.output_digest]):
            diffs.append(f"agreement: storage agreed={word.agreed} with {word.lead_votes} votes, events "
                         f"{h.counts.get(rs.output_digest, 0)} votes for {rs.output_digest.hex()[:16]}…")
        for side in SIDES:
            a, b = stored.record(side), rs.record(side)
            if ((a.rate, a.volume) if a else (0, 0)) != ((b.rate, b.volume) if b else (0, 0)):
                diffs.append(f"{side} record: storage {a}, events {b}")
        self.report.add(h.round_id, "storage.round", not diffs,
                        f"storage disagrees with the events in {'; '.join(diffs)}" if diffs
                        else "every field of the round's storage equals its events")

    def check_report(self, h, side: str):
        """The revealed blob of ``side``: re-hashed, then opened as every evaluator opens it (structure, binding,
        public key; the proof when proofs are on). Returns the circuit input, or None if refused (which a
        fault must then name) or absent."""
        rid, dealer = h.round_id, dealer_of(side)
        if not self.dep.blobs.path(h.reveals[side]).exists() and any(s == side for s, _ in h.faults.values()):
            self.anchored.add(bytes(h.reveals[side]))
            h.refused[side] = WITHHELD
            self.report.add(rid, f"report.{side}", True, f"{dealer} revealed {h.reveals[side].hex()[:16]}… "
                            f"but never published the blob; the evaluators name it")
            return None
        blob = self._blob(rid, f"report_{side}", h.reveals[side])
        if blob is None or self.artifact is None or self.public_key is None:
            return None
        proofs = " and its input proof" if self.crs is not None else ""
        try:
            opened = self._runner_for(self.artifact, self._cache).open_report(
                blob, report_binding(self.dep.chain_id, self.dep.contract_address, rid, side))
        except OwnerReportError as exc:
            h.refused[side] = exc.reason
            self.report.add(rid, f"report.{side}", True, f"{dealer}'s blob is refused ({exc.reason}): "
                            f"{exc.detail}; the evaluators must name it")
            return None
        self.report.add(rid, f"report.{side}", True, f"{dealer}'s blob opens: bound to {dealer}, round "
                        f"{rid} and this contract, encrypted under the published public key{proofs}")
        return opened

    def check_faults(self, h, inputs):
        """Every fault names the first refused blob (mm checked first) with the fault record every honest
        evaluator writes; no fault where both blobs open."""
        rid, refused = h.round_id, h.refused
        first = next((s for s in SIDES if s in refused), None)
        for addr, (side, fault) in h.faults.items():
            who = self._who(addr)
            if first is None:
                self.report.add(rid, f"evaluation.fault.{who}", False, f"{who} posted a fault against "
                                f"{dealer_of(side)}, whose blob opens (so does the other dealer's)")
                continue
            want = sha256(fault_record(self.dep, rid, first, h.reveals[first], refused[first]))
            ok = side == first and fault == want
            if ok:
                self._blob(rid, f"fault_{who}", fault)
            self.report.add(rid, f"evaluation.fault.{who}", ok,
                            f"{who} named {dealer_of(side)} with fault record {fault.hex()[:16]}…; the replay "
                            f"refuses {dealer_of(first)}'s blob ({refused[first]}), record {want.hex()[:16]}…")
        if first is not None:
            for addr in h.votes:
                self.report.add(rid, f"evaluation.vote.{self._who(addr)}", False,
                                f"{self._who(addr)} posted an output although {dealer_of(first)}'s blob is refused "
                                f"({refused[first]})")

    def check_evaluation(self, h, rs, inputs):
        add, dep, rid = self.report.add, self.dep, h.round_id
        if not (rs.output_digest != _ZERO or h.votes):
            return
        if self.artifact is not None and self.eval_keys is not None:
            start = time.perf_counter()
            self.progress("replay", round=rid)
            try:
                replayed = self._runner_for(self.artifact, self._cache).evaluate(self.eval_keys, inputs[Side.MM],
                                                                                  inputs[Side.RM])
            except Exception as exc:  # a corrupted input must fail the check, not the auditor
                replayed = None
                add(rid, "evaluation.replay", False, f"replay raised {type(exc).__name__}: {exc}")
            self.report.timings[f"replay_round_{rid}"] = round(time.perf_counter() - start, 4)
            if replayed is not None:
                got = sha256(replayed)
                plan = " (fixed FFT plan)" if dep.backend == "fhe" else ""
                if rs.output_digest != _ZERO:
                    add(rid, "evaluation.replay", got == rs.output_digest, f"replayed output {got.hex()}{plan} vs "
                        f"agreed output digest in the events {rs.output_digest.hex()}")
                else:  # votes posted, threshold not reached (yet): only each vote can be compared
                    add(rid, "evaluation.replay", True, f"replayed output {got.hex()}{plan}; no agreed output digest "
                        f"yet ({len(h.votes)} of {dep.threshold} votes): each posted vote is compared with it")
                for addr, voted in h.votes.items():
                    who = self._who(addr)
                    add(rid, f"evaluation.vote.{who}", voted == got,
                        f"{who} posted {voted.hex()}, replay gives {got.hex()}")
        agreeing = sum(1 for v in h.votes.values() if v == rs.output_digest)
        add(rid, "evaluation.threshold", agreeing >= dep.threshold or rs.output_digest == _ZERO,
            f"{agreeing} evaluators posted the agreed digest; threshold {dep.threshold}")
        if rs.output_digest != _ZERO:
            self._blob(rid, "output", rs.output_digest)

    def check_attestation(self, rs, h) -> dict | None:
        rid = rs.round_id
        raw = self._blob(rid, "attestation", rs.attestation_digest)
        if raw is None:
            return None
        try:
            body = open_statement(raw, self.dep.identity(CUSTODIAN), name="attestation", context=ATTESTATION_CONTEXT)
        except StatementError as exc:
            self.report.add(rid, "attestation.signature", False, str(exc))
            return None
        self.report.add(rid, "attestation.signature", True, "signed by the custodian's registered key")
        diffs = mismatches(body, expected_attestation(self.dep, self.published, rs, h.invalid_side))
        self.report.add(rid, "attestation.fields", not diffs,
                        f"the attestation differs from the chain's events in {diffs}" if diffs else "matches the chain")
        if self.dep.backend == "simulate" and rs.output_digest != _ZERO:
            self._checked(rid, "attestation.flags", lambda: self.check_flags(rs, body))
        return body

    def check_opening(self, h, rs, body):
        """Recombine the round's opened output from the key holders' public shares (every ``SharePosted``
        event, every blob fetched by digest) and compare it with the custodian's attestation, its invalid flags
        and the executed legs. A refused share fails naming its holder; a round still opening is in progress."""
        rid, add = rs.round_id, self.report.add
        shares = {stage: [PostedShare(holder_name(self.dep, address), address, stage, share_digest, 0, count)
                          for count, (address, share_digest) in enumerate(h.shares.get(stage, {}).items(), 1)]
                  for stage in ShareStage}
        masks, tables = shares[ShareStage.MASK], shares[ShareStage.TABLE]
        if len(tables) < self.dep.holder_threshold and body is None:
            state = (f"closed as {rs.phase.label} before it opened" if rs.phase.terminal else "in progress")
            add(rid, "opening", True, f"{state}: {len(masks)} mask and {len(tables)} table shares on "
                f"chain, {self.dep.holder_threshold} table shares open the output")
            return
        if self.setup is None:
            add(rid, "opening", False, "the threshold setup record is missing or does not match market.json")
            return
        output = self._blob(rid, "output", rs.output_digest)
        if output is None:
            return

        try:
            opened = open_output(self.dep, self.setup, rid, unwrap_blob("ciphertext_out", output), shares,
                                 strict=False, blob=lambda kind, d: self._blob(rid, kind, d))
        except ThresholdError as exc:
            add(rid, "opening", False, f"the output does not open from the posted shares: {exc}")
            return
        for refusal in opened.decryption.refused:  # a blob too broken to name its round is still this round's
            add(rid, f"opening.share.{refusal.holder or '?'}", False, f"round {rid}: {refusal}")
        selection = SelectionOutput.from_values(opened.decryption.values)
        flagged = invalid_sides(selection)
        instruction = selection.instruction(self.dep.terms)
        add(rid, "opening", True, f"opened from the public shares of {', '.join(opened.decryption.holders)}: "
            f"{'no trade' if not instruction.trade else f'Q={instruction.volume}'}, invalid flags "
            f"{list(flagged) or 'none'}")
        if body is not None:
            posted = {s.digest for stage in shares.values() for s in stage}
            masks, tables = body.get("mask_shares", []), body.get("table_shares", [])
            unknown = [bytes(d).hex()[:16] for d in (*masks, *tables) if bytes(d) not in posted]
            add(rid, "attestation.shares", not unknown and len(tables) >= self.dep.holder_threshold,
                f"the attestation names shares no SharePosted event names: {unknown}" if unknown else
                f"names {len(masks)} mask and {len(tables)} table shares posted on chain")
            attested = attested_invalid(body)
            trade = bool(instruction.trade) and not flagged
            said = lambda t: "a trade" if t else "no trade"  # noqa: E731
            add(rid, "attestation.flags", flagged == attested and bool(body.get("trade")) == trade,
                f"the opened output flags {list(flagged) or 'no'} invalid input and {said(trade)}; "
                f"the attestation {list(attested) or 'none'} and {said(body.get('trade'))}")
        if rs.phase.name == "SETTLED" and rs.trade and set(h.records) == set(SIDES):
            want = {Side.MM.value: (int(instruction.r_mm), int(instruction.volume)),
                    Side.RM.value: (int(instruction.r_rm), int(instruction.volume))}
            got = {side.value: (h.records[side].rate, h.records[side].volume) for side in SIDES}
            add(rid, "opening.instruction", got == want, f"executed legs (rate, volume) {got}; the opened "
                f"instruction {want}")

    def check_flags(self, rs, body):
        """simulate backend only (its output is plaintext): the attested invalid flags are the output's."""
        output = self._blob(rs.round_id, "output", rs.output_digest)
        if output is None:
            return
        flagged = invalid_sides(decode_output(output))
        attested = attested_invalid(body)
        self.report.add(rs.round_id, "attestation.flags", flagged == attested,
                        f"the output flags {list(flagged) or 'no'} invalid input, the attestation {list(attested) or 'none'}")

    def _sealed_binding(self, rid: int, kind: str, digest: bytes, purpose: str, sender: str, recipient: str):
        raw = self._blob(rid, kind, digest)
        if raw is None:
            return
        check = kind.replace("_mm", ".mm").replace("_rm", ".rm")
        try:
            want = self.dep.binding(purpose, rid, sender, recipient)
            problems = SealedMessage.from_bytes(raw).binding.mismatches(want)
            self.report.add(rid, check, not problems, "; ".join(problems) or "bound to this round")
        except Exception as exc:
            self.report.add(rid, check, False, f"{type(exc).__name__}: {exc}")

    def check_sealed_instructions(self, rs, body):
        for side in SIDES:
            self._sealed_binding(rs.round_id, f"sealed_instruction_{side}", body[f"sealed_instruction_{side}"],
                                 INSTRUCTION, CUSTODIAN, dealer_of(side))

    def check_execution(self, h, side: str):
        """The dealer's execution record (its digest is the LegExecuted evidence): signed by the dealer, naming
        the rate and volume of the event; the offer and acceptance it names are bound to this round."""
        rid, dealer = h.round_id, dealer_of(side)
        raw = self._blob(rid, f"execution_record_{side}", h.evidence[side])
        if raw is None:
            return
        try:
            body = open_statement(raw, self.dep.identity(dealer), name="execution record", context=EXECUTION_CONTEXT)
        except StatementError as exc:
            self.report.add(rid, f"execution.{side}", False, str(exc))
            return
        record = h.records[side]
        diffs = mismatches(body, expected_execution_record(self.dep, rid, side, record.rate, record.volume))
        self.report.add(rid, f"execution.{side}", not diffs,
                        f"{dealer}'s signed execution record differs from its LegExecuted event in {diffs}" if diffs
                        else f"signed by {dealer}; rate {record.rate}, volume {record.volume} as on chain")
        client = client_of(side)
        self._sealed_binding(rid, f"offer_{side}", body["offer"], OFFER, dealer, client)
        self._sealed_binding(rid, f"acceptance_{side}", body["acceptance"], ACCEPTANCE, client, dealer)

    def check_outcome(self, h, rs):
        rid, add = rs.round_id, self.report.add
        if rs.phase is P.FORFEITED:
            f = h.forfeit or {}
            add(rid, "forfeiture", bool(f) and f["offender"].lower() != f["beneficiary"].lower(),
                f"{self._who(f.get('offender', '?'))} -> {self._who(f.get('beneficiary', '?'))}: "
                f"{f.get('amount')} wei (reason {f.get('reason')})")
        elif rs.phase is P.SETTLED and not rs.trade:
            add(rid, "execution.no_trade", not h.records, f"no-trade round closed as {rs.phase.label}")
        elif rs.phase is P.SETTLED:
            add(rid, "execution.settled", set(h.records) == set(SIDES), f"legs {rs.mm_record}, {rs.rm_record}")

    # --- transcripts and blobs -----------------------------------------------------------------------
    def check_transcript(self, round_id: int):
        """Every field of the public transcript equals the events; its transactions and head are on chain.

        Against the audited block: a transcript that names a round the chain lacks there, or a round still
        open there (transcripts are written when a round closes), is judged after the cut against the latest
        chain (``resolve_after_cut``); a closed round whose transcript is missing while a writer is active is
        left out."""
        h = self.history.rounds.get(round_id)
        path = self.dep.data_dir.transcript(round_id)
        if h is None:
            if path.exists():
                self._after_cut.append((round_id, f"round {round_id}: transcript present, chain has no such round "
                                                  f"(its events open rounds 1..{self.history.current_round})"))
            return
        if not path.exists():
            if not h.phase.terminal:
                return
            writer = writer_active(self.dep.data_dir.root)
            if writer is not None and not path.exists():
                self.report.leave_out(round_id, f"closed on chain as {h.phase.label} by block {self.cut}; its "
                                                f"transcript is not written yet (writer active: {writer})")
                return
            if not path.exists():  # looked at again: the writer may have written it and finished meanwhile
                self.report.add(round_id, "transcript", False, f"round {round_id} closed on chain as "
                                f"{h.phase.label} but its public transcript {path.name} is missing")
                return
        t = read_json(path)
        rs = h.state()
        want = transcript_fields(self.dep, rs, h.votes)
        diffs = [k for k, v in want.items() if t.get(k) != v]
        for k in ("digests", "records"):
            if k in diffs and isinstance(t.get(k), dict):
                diffs[diffs.index(k)] = f"{k}." + ",".join(x for x in want[k] if t[k].get(x) != want[k][x])
        detail = (f"the transcript differs from the chain's events in {diffs} (transcript phase "
                  f"{t.get('phase')}, chain {rs.phase.name})" if diffs else "every field matches the chain")
        if diffs and not rs.phase.terminal:
            self._after_cut.append((round_id, detail))
            return
        self.report.add(round_id, "transcript", not diffs, detail)
        self.check_anchors(round_id, t)

    def check_anchors(self, round_id: int, t: dict):
        chain = self.dep.coordinator.chain
        by_node = chain.backend == "rpc"  # the embedded chain's block hashes change on replay (timestamps)
        problems = []
        txs = t.get("transactions")
        if txs is None:
            self.report.add(round_id, "transcript.anchors", False, "the transcript records no transactions")
            return
        for a in txs:
            found = chain.transaction(a["tx"])
            if found is None:
                problems.append(f"transaction {a['tx']} (block {a['block']}) is not on the chain")
            elif found["block"] != a["block"]:
                problems.append(f"transaction {a['tx']} is in block {found['block']}, the transcript says {a['block']}")
            elif by_node and found["block_hash"] != a["block_hash"]:
                problems.append(f"block {a['block']} has hash {found['block_hash']}, the transcript recorded "
                                f"{a['block_hash']}: the block was rewritten")
        head = t.get("chain_head") or {}
        if isinstance(head.get("block"), int) and head["block"] > self.cut:
            self._heads_after_cut.append((round_id, head))  # written after the audited block: checked after it
        else:
            problems += self._head_problems(head)
        self.report.add(round_id, "transcript.anchors", not problems, "; ".join(problems) or
                        f"{len(txs)} transactions and the head block {head.get('block')} are on the chain")

    def _head_problems(self, head: dict) -> list[str]:
        """What is wrong with a transcript's recorded chain head against the chain as read now."""
        chain = self.dep.coordinator.chain
        now = chain.block_number
        if head.get("block", 0) > now:
            return [f"the transcript saw head block {head['block']}, the chain's head is {now}: history "
                    f"was rolled back"]
        if chain.backend == "rpc" and head and chain.block_hash(head["block"]) != head.get("block_hash"):
            return [f"block {head['block']} has another hash than the transcript recorded: history rewritten"]
        return []

    def resolve_after_cut(self):
        """After the pinned audit, against the latest chain: a transcript of a round that was not closed at
        the audited block is left out if the round has closed since (a writer wrote it meanwhile), else it
        fails as before; heads recorded after the audited block must be on the chain; rounds opened since
        are named as left out."""
        coord = self.dep.coordinator
        current = coord.current_round()
        failed = set()
        for round_id, detail in self._after_cut:
            if round_id <= current and coord.phase(round_id).terminal:
                self.report.leave_out(round_id, f"closed after block {self.cut}, the block audited; its "
                                                f"transcript was written meanwhile")
            else:
                self.report.add(round_id, "transcript", False, detail)
                failed.add(round_id)
        left = {x["round"] for x in self.report.cut["left_out"]}
        for round_id, h in sorted(self.history.rounds.items()):
            wanted = self.rounds is None or round_id in self.rounds
            if not h.phase.terminal and round_id not in left | failed and wanted:
                self.report.leave_out(round_id, f"open at block {self.cut} in phase {h.phase.label}; its steps so "
                                                f"far are checked, its later steps and transcript are left out")
        for round_id, head in self._heads_after_cut:
            problems = self._head_problems(head)
            self.report.add(round_id, "transcript.anchors", not problems, "; ".join(problems) or
                            f"the head block {head['block']} the transcript saw (after block {self.cut}) is on "
                            f"the chain")
        deferred = {r for r, _ in self._after_cut}
        for round_id in range(self.history.current_round + 1, current + 1):
            if round_id not in deferred and (self.rounds is None or round_id in self.rounds):
                self.report.leave_out(round_id, f"opened after block {self.cut}, the block audited")

    def transcript_rounds(self) -> set[int]:
        return self.dep.data_dir.transcript_rounds()

    def check_unanchored_blobs(self):
        root = self.dep.data_dir.blobs
        stray = sorted(p.name for p in root.iterdir() if len(p.name) == 64
                       and bytes.fromhex(p.name) not in self.anchored) if root.is_dir() else []
        if stray:
            self.report.notice(0, "blobs.unanchored", f"{len(stray)} blobs in the store that nothing on chain "
                               f"anchors: {', '.join(s[:16] + '…' for s in stray[:8])}")

    # --- the whole audit -----------------------------------------------------------------------------
    def run(self, rounds: list[int] | None = None) -> AuditReport:
        """Audit the market as of one block (the chain's head when the audit starts: ``report.cut``), so
        that a writer working meanwhile cannot make its rounds look inconsistent; see ``resolve_after_cut``."""
        start = time.perf_counter()
        chain = self.dep.coordinator.chain
        self.cut = chain.pin()
        self._after_cut, self._heads_after_cut, self.rounds = [], [], rounds
        writer = writer_active(self.dep.data_dir.root)
        self.report.cut = {"block": self.cut, "writer": writer, "left_out": []}
        try:
            self._run_pinned(rounds)
        finally:
            chain.unpin()
        if self.history is not None:
            self._checked(0, "transcript", self.resolve_after_cut)
            if rounds is None and not self.report.cut["left_out"] and writer is None:
                self.check_unanchored_blobs()  # a round in progress has blobs nothing anchors yet
        if self.report.cut["left_out"] or writer is not None:
            left = ", ".join(str(x["round"]) for x in self.report.cut["left_out"]) or "none"
            self.report.notice(0, "cut", f"audited at block {self.cut}"
                               + (f" while a writer is active ({writer})" if writer else "")
                               + f"; rounds left out as in progress: {left}")
        self.report.timings["total"] = round(time.perf_counter() - start, 4)
        return self.report

    def _run_pinned(self, rounds: list[int] | None) -> None:
        with contextlib.ExitStack() as stack:
            self._cache = self.cache_dir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="audit-")))
            try:
                self.published = published_coordinator_terms(self.dep)
            except DeploymentError as exc:
                self.report.add(0, "terms.published", False, str(exc))
                return
            self._checked(0, "terms", self.check_terms)
            self._checked(0, "code.identity", self.check_code)
            self.check_artifacts()
            try:
                self.check_history()
            except Exception as exc:
                self.report.add(0, "history", False, f"the chain's history could not be read: "
                                f"{type(exc).__name__}: {exc}")
                self.history = None
                return
            self._checked(0, "round.deadline", self.check_liveness)
            on_chain = set(self.history.rounds)
            wanted = sorted(rounds) if rounds is not None else sorted(on_chain)
            for r in wanted:
                self.check_round(r)
            for r in sorted(set(wanted) | (self.transcript_rounds() - on_chain if rounds is None else set())):
                self._checked(r, "transcript", lambda r=r: self.check_transcript(r))
