"""The auditor: checks a market from public data only -- ``market.json``, the blob store and the chain.

It never opens ``roles/``: everything it needs is anchored on chain.  Per round the chain holds the
report commitments, ciphertext digests, every evaluator's output digest, the attestation digest, the
instruction commitment and the execution records; the custodian's signed attestation (named on chain)
names the remaining blobs (receipts, sealed instructions) [decided], so every published blob of a round
is reachable from the chain.  The auditor

* re-hashes every blob and compares it with the digest that names it (a flipped byte fails and names
  the blob kind and the digest);
* replays every evaluation from the circuit artefact and evaluation keys named on chain and compares
  the output digest with what each evaluator posted;
* checks every signature (attestation, receipts) under the public identities of ``market.json``,
  every binding (chain id, contract, round, roles), the phase order from the contract's events, the
  forfeitures against the execution records, and that the contract's wei balance equals the deposits
  and credits it owes (conservation);
* compares the public transcripts (``transcripts/round-<n>.json``), if present, with the chain.

Result: ``{"ok", "rounds": [{"round", "checks": [{"check", "ok", "detail"}]}], "failures": [...]}``.
Round 0 holds the market-wide checks.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from protocol.blobstore import BlobError
from protocol.deployment import Deployment
from protocol.layout import read_json

__all__ = ["Auditor", "AuditReport", "PHASE_TRANSITIONS"]


# Allowed transitions of the contract's RoundPhase (numbers as chain.RoundPhase).
PHASE_TRANSITIONS = {
    0: {1},
    1: {2, 8, 9},
    2: {3, 9},
    3: {4, 7, 9},
    4: {5, 8},
    5: {6, 8},
    6: {7, 8},
}


@dataclass
class AuditReport:
    rounds: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)

    def add(self, round_id: int, check: str, ok: bool, detail: str = "") -> bool:
        self.rounds.setdefault(round_id, []).append({"check": check, "ok": bool(ok), "detail": detail})
        return ok

    @property
    def failures(self) -> list[dict]:
        return [{"round": r, "check": c["check"], "detail": c["detail"]}
                for r, checks in sorted(self.rounds.items()) for c in checks if not c["ok"]]

    @property
    def ok(self) -> bool:
        return not self.failures

    def as_dict(self) -> dict:
        return {"ok": self.ok,
                "rounds": [{"round": r, "checks": checks} for r, checks in sorted(self.rounds.items())],
                "failures": self.failures, "timings": self.timings}


class Auditor:
    def __init__(self, dep: Deployment, progress=None):
        self.dep = dep
        self.report = AuditReport()
        self.progress = progress or (lambda *a, **k: None)
        self._blob_cache: dict[bytes, bytes] = {}
        self._runner = None

    # --- helpers -------------------------------------------------------------------------------------
    def _blob(self, round_id: int, kind: str, digest: bytes) -> bytes | None:
        """The blob named ``digest``, re-hashed; a failure names the kind and the digest."""
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

    def _runner_for(self, artifact: bytes):
        if self._runner is None:
            from protocol.backend import EvaluatorSide, circuit_from_artifact

            circuit = circuit_from_artifact(artifact, self.dep.terms, self.dep.data_dir.cache)
            self._runner = EvaluatorSide(self.dep.backend, circuit)
        return self._runner

    # --- market-wide ---------------------------------------------------------------------------------
    def check_market(self):
        from crypto.encoding import canonical_digest

        add = self.report.add
        coord = self.dep.coordinator
        onchain = coord.terms()
        self.onchain_terms = onchain
        terms = self.dep.terms
        add(0, "terms.digest", canonical_digest(terms.as_dict(), name="terms") == onchain.terms_digest,
            f"sha256(canonical terms of market.json) vs terms_digest on chain {onchain.terms_digest.hex()}")
        same = (onchain.grid, onchain.base_rate, onchain.rate_bits, onchain.hurdle_mode) == (
            terms.grid, terms.base_rate, terms.rate_bits, terms.hurdle_mode.value)
        add(0, "terms.fields", same, f"grid/base_rate/rate_bits/hurdle_mode on chain: {onchain.grid}, "
            f"{onchain.base_rate}, {onchain.rate_bits}, {onchain.hurdle_mode}")
        for name, value in (("circuit", onchain.circuit_digest), ("evaluation_keys", onchain.evaluation_keys_digest)):
            add(0, f"digest.{name}", self.dep.digest(name) == value,
                f"market.json {self.dep.descriptor['digests'][name]} vs chain {value.hex()}")
        roles = {"dealer_mm": onchain.dealer_mm, "dealer_rm": onchain.dealer_rm, "custodian": onchain.custodian}
        roles.update(dict(zip(self.dep.evaluators, onchain.evaluators)))
        bad = [r for r, a in roles.items() if a.lower() != self.dep.address(r).lower()]
        add(0, "addresses", not bad and len(onchain.evaluators) == len(self.dep.evaluators),
            f"role addresses on chain differ from market.json: {bad}" if bad else "all role addresses match")
        add(0, "threshold", onchain.threshold == self.dep.threshold, f"threshold on chain {onchain.threshold}")
        self.artifact = self._blob(0, "circuit", onchain.circuit_digest)
        self.eval_keys = self._blob(0, "evaluation_keys", onchain.evaluation_keys_digest)

    def check_conservation(self):
        """Wei: the contract holds exactly the deposits plus the credits it owes."""
        coord = self.dep.coordinator
        owed = sum(coord.deposit_of(self.dep.address(r)) + coord.withdrawable_of(self.dep.address(r))
                   for r in ("dealer_mm", "dealer_rm"))
        balance = coord.balance()
        self.report.add(0, "deposits.conservation", owed == balance,
                        f"contract balance {balance} wei, deposits + credits owed {owed} wei")

    # --- one round -----------------------------------------------------------------------------------
    def check_round(self, round_id: int):
        from chain import RoundPhase
        from crypto.encoding import canonical_bytes, canonical_loads
        from crypto.envelope import Binding, ReportReceipt, SealedMessage, SealedReport

        add = self.report.add
        dep = self.dep
        coord = dep.coordinator
        rs = coord.round(round_id)
        events = coord.events(round_id=round_id)

        # phase order
        phases = [(e.args["phase"], e.block_number) for e in events if e.name == "PhaseChanged"]
        prev, prev_block, ok, where = 0, 0, True, ""
        for ph, block in phases:
            if ph not in PHASE_TRANSITIONS.get(prev, set()) or block < prev_block:
                ok, where = False, f"{RoundPhase(prev).name} -> {RoundPhase(ph).name} at block {block}"
                break
            prev, prev_block = ph, block
        ok = ok and prev == int(rs.phase)
        add(round_id, "phase.order", ok, where or " -> ".join(RoundPhase(p).name for p, _ in phases))

        # commitments by the right dealers
        commits = {e.args["dealer"].lower(): e.args["commitment"] for e in events if e.name == "ReportCommitted"}
        for side, value in (("mm", rs.report_commitment_mm), ("rm", rs.report_commitment_rm)):
            by = commits.get(dep.address(f"dealer_{side}").lower())
            add(round_id, f"commitment.{side}", value != bytes(32) and by == value,
                f"report commitment {value.hex()} posted by dealer_{side}")
        if rs.phase in (RoundPhase.COMMITTED, RoundPhase.CANCELLED) and rs.ciphertext_digest_mm == bytes(32):
            return

        cts = {}
        for side, digest in (("mm", rs.ciphertext_digest_mm), ("rm", rs.ciphertext_digest_rm)):
            cts[side] = self._blob(round_id, f"ciphertext_{side}", digest)

        # evaluation replay
        votes = coord.output_votes(round_id)
        if rs.output_digest != bytes(32) or votes:
            if None not in cts.values() and self.artifact is not None and self.eval_keys is not None:
                start = time.perf_counter()
                self.progress("replay", round=round_id)
                try:
                    replayed = self._runner_for(self.artifact).evaluate(self.eval_keys, cts["mm"], cts["rm"])
                except Exception as exc:  # a corrupted input must fail the check, not the auditor
                    replayed = None
                    add(round_id, "evaluation.replay", False, f"replay raised {type(exc).__name__}: {exc}")
                self.report.timings[f"replay_round_{round_id}"] = round(time.perf_counter() - start, 4)
                if replayed is not None:
                    from crypto.encoding import digest as sha256

                    got = sha256(replayed)
                    plan = " (fixed FFT plan)" if dep.backend == "fhe" else ""
                    add(round_id, "evaluation.replay", got == rs.output_digest,
                        f"replayed output {got.hex()}{plan} vs agreed output digest on chain {rs.output_digest.hex()}")
                    names = {dep.address(r).lower(): r for r in dep.evaluators}
                    for addr, voted in votes.items():
                        who = names.get(addr.lower(), addr)
                        add(round_id, f"evaluation.vote.{who}", voted == got,
                            f"{who} posted {voted.hex()}, replay gives {got.hex()}")
            agreeing = sum(1 for v in votes.values() if v == rs.output_digest)
            add(round_id, "evaluation.threshold", agreeing >= dep.threshold,
                f"{agreeing} evaluators posted the agreed digest; threshold {dep.threshold}")
            if rs.output_digest != bytes(32):
                self._blob(round_id, "output", rs.output_digest)

        if rs.attestation_digest == bytes(32):
            return
        # attestation
        raw = self._blob(round_id, "attestation", rs.attestation_digest)
        if raw is None:
            return
        try:
            att = canonical_loads(raw, name="attestation")
            body, signature = att["body"], att["signature"]
            dep.identity("custodian").verify(signature, canonical_bytes(body, name="attestation"))
            add(round_id, "attestation.signature", True, "signed by the custodian's registered key")
        except Exception as exc:
            add(round_id, "attestation.signature", False, f"attestation does not verify: {exc}")
            return
        expected = {
            "chain_id": dep.chain_id, "contract": bytes.fromhex(dep.contract_address[2:]), "round": round_id,
            "circuit_digest": self.onchain_terms.circuit_digest,
            "evaluation_keys_digest": self.onchain_terms.evaluation_keys_digest,
            "ciphertext_digest_mm": rs.ciphertext_digest_mm, "ciphertext_digest_rm": rs.ciphertext_digest_rm,
            "output_digest": rs.output_digest, "instruction_commitment": rs.instruction_commitment,
            "trade": rs.trade,
        }
        diffs = [k for k, v in expected.items() if body.get(k) != v]
        add(round_id, "attestation.fields", not diffs,
            f"attestation differs from the chain in {diffs}" if diffs else "matches the chain")

        # receipts and the sealed reports they name
        for side in ("mm", "rm"):
            dealer = f"dealer_{side}"
            rraw = self._blob(round_id, f"receipt_{side}", body[f"receipt_digest_{side}"])
            if rraw is None:
                continue
            try:
                receipt = ReportReceipt.from_bytes(rraw)
                onchain_ct = rs.ciphertext_digest_mm if side == "mm" else rs.ciphertext_digest_rm
                receipt.verify(dep.identity("custodian"), ciphertext_digest=onchain_ct)
                want = Binding("report", dep.chain_id, dep.contract_address, round_id, dealer, "custodian")
                problems = receipt.binding.mismatches(want)
                commit = rs.report_commitment_mm if side == "mm" else rs.report_commitment_rm
                if receipt.commitment != commit:
                    problems.append("commitment differs from the dealer's commitment on chain")
                add(round_id, f"receipt.{side}", not problems, "; ".join(problems) or "signed, bound, matches chain")
            except Exception as exc:
                add(round_id, f"receipt.{side}", False, f"{type(exc).__name__}: {exc}")
                continue
            env = self._blob(round_id, f"sealed_report_{side}", receipt.envelope_digest)
            if env is not None:
                try:
                    sealed = SealedReport.from_bytes(env)
                    problems = sealed.binding.mismatches(receipt.binding)
                    add(round_id, f"sealed_report.{side}", not problems, "; ".join(problems) or "bound to this round")
                except Exception as exc:
                    add(round_id, f"sealed_report.{side}", False, f"{type(exc).__name__}: {exc}")
        # sealed instructions
        for side in ("mm", "rm"):
            iraw = self._blob(round_id, f"sealed_instruction_{side}", body[f"sealed_instruction_{side}"])
            if iraw is None:
                continue
            try:
                sealed = SealedMessage.from_bytes(iraw)
                want = Binding("instruction", dep.chain_id, dep.contract_address, round_id, "custodian", f"dealer_{side}")
                problems = sealed.binding.mismatches(want)
                add(round_id, f"sealed_instruction.{side}", not problems, "; ".join(problems) or "bound to this round")
            except Exception as exc:
                add(round_id, f"sealed_instruction.{side}", False, f"{type(exc).__name__}: {exc}")

        # execution and forfeiture
        forfeits = [e for e in events if e.name == "Forfeited"]
        if not rs.trade:
            add(round_id, "execution.no_trade", rs.mm_record is None and rs.rm_record is None
                and rs.phase == RoundPhase.SETTLED, f"no-trade round closed as {rs.phase.name}")
        elif rs.phase == RoundPhase.SETTLED:
            ok = rs.mm_record is not None and rs.rm_record is not None and not forfeits
            add(round_id, "execution.settled", ok, f"legs {rs.mm_record}, {rs.rm_record}")
        if rs.phase == RoundPhase.FORFEITED:
            ok = (len(forfeits) == 1 and forfeits[0].args["amount"] == rs.forfeited_amount
                  and rs.offender is not None and rs.beneficiary is not None and rs.offender != rs.beneficiary)
            add(round_id, "forfeiture", ok, f"{rs.offender} -> {rs.beneficiary}: {rs.forfeited_amount} wei")

        # the public transcript, if any, must agree with the chain
        path = dep.data_dir.transcript(round_id)
        if path.exists():
            try:
                t = read_json(path)
                onchain = {"attestation": rs.attestation_digest.hex(), "output": rs.output_digest.hex(),
                           "ciphertext_mm": rs.ciphertext_digest_mm.hex(), "ciphertext_rm": rs.ciphertext_digest_rm.hex(),
                           "instruction_commitment": rs.instruction_commitment.hex()}
                diffs = [k for k, v in onchain.items() if t.get("digests", {}).get(k) != v]
                add(round_id, "transcript", not diffs,
                    f"transcript digests differ from the chain: {diffs}" if diffs else "matches the chain")
            except (ValueError, KeyError, AttributeError) as exc:
                add(round_id, "transcript", False, f"transcript unreadable: {exc}")

    def run(self, rounds: list[int] | None = None) -> AuditReport:
        start = time.perf_counter()
        self.check_market()
        current = self.dep.coordinator.current_round()
        wanted = rounds if rounds is not None else list(range(1, current + 1))
        for r in wanted:
            if not 1 <= r <= current:
                self.report.add(r, "round.exists", False, f"round {r} unknown: the contract has rounds 1..{current}")
                continue
            self.check_round(r)
        self.check_conservation()
        self.report.timings["total"] = round(time.perf_counter() - start, 4)
        return self.report
