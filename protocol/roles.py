"""The roles of a round as components that talk only through sealed messages, the blob store and the chain.

Each agent is built from the public :class:`~protocol.deployment.Deployment` and **its own folder**
(``roles/<role>/``): its identity keys, its private inputs and its state.  No agent opens another's
folder; messages travel as blobs (sealed to the recipient when private) announced in the recipient's
inbox (``roles/<recipient>/inbox/``, a pointer file holding a blob digest -- what a deployment would send
over the network).  Every step is idempotent: an agent records what it did in its folder *before*
announcing it, so a coordinator killed at any point can simply call the step again.

* :class:`DealerAgent` (dealer_mm, dealer_rm) -- encrypts its client's schedule and its hurdle itself under
  the market's public key, commits to the report and to the ciphertext blob on chain, publishes the blob and
  reveals its digest once both dealers are bound; executes its instruction with its client, checks the
  other dealer's execution record and proves a deviation on chain.
* :class:`ClientAgent` (client_mm, client_rm) -- a price-taker: accepts ``D(r)`` / ``S(r)`` of its TRUE
  schedule at the offered rate.
* :class:`Custodian` -- never receives a report in any form. On the ``fhe`` backend it holds no secret key
  after setup: it combines the key holders' public shares of the output digest ``threshold`` evaluators
  agreed on (on the simulate backend it decodes that output); signs an attestation naming the shares; seals
  each dealer its instruction, or reports the dealer whose input the circuit flags invalid (that dealer
  forfeits).
* :class:`KeyHolderAgent` (key_holder_<i>) -- holds its shares of the output key and its one-time slots;
  answers only for the output digest the evaluators agreed on chain, for the round's slot, once: a mask
  share, then (once k mask shares are on chain) a table share; each blob public, its digest on chain.
* :class:`Evaluator` -- opens the two revealed blobs named on chain (structure, and proofs when on), runs the
  circuit and posts the output digest; or posts a fault naming the first dealer whose blob it refuses.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from chain import InstructionPreimage, RoundPhase, ShareStage, blob_commitment, instruction_commitment
from common.vocabulary import (
    ACCEPTANCE,
    CLIENT_MM,
    CLIENT_ROLES,
    CUSTODIAN,
    DEALER_MM,
    DEALER_RM,
    DEALER_ROLES,
    INSTRUCTION,
    OFFER,
    SIDES,
    Side,
    side_of,
)
from crypto.circuit import SelectionOutput
from crypto.encoding import digest, random_salt
from crypto.envelope import DealerReport, open_message, seal_message
from crypto.identity import IdentityKeys
from crypto.tfhers import OwnerReportError
from crypto.threshold import KeyHolder, ThresholdError
from market.schedules import Schedules
from market.terms import report_offsets, validate_report
from protocol.attestation import WITHHELD, attestation_body, execution_record_body, fault_record, sign_statement
from protocol.backend import CustodianSide, DealerSide, EvaluatorSide, invalid_sides, report_binding
from protocol.blobstore import BlobError, BlobMissing, atomic_write
from protocol.deployment import Deployment
from protocol.errors import ProtocolPackageError
from protocol.layout import read_json, write_json
from protocol.opening import open_output, output_value, posted_shares, slot_of

__all__ = ["ProtocolError", "DealerAgent", "ClientAgent", "Custodian", "Evaluator", "KeyHolderAgent", "Verdict",
           "Behaviour", "BEHAVIOURS", "record_tx"]


class ProtocolError(ProtocolPackageError):
    """A protocol step cannot proceed: the message names the round, the role and what is wrong."""


# --- small shared helpers ------------------------------------------------------------------------------

def _private_json(path: Path, obj) -> None:
    write_json(path, obj, mode=0o600)


def _load_keys(dep: Deployment, role: str):
    return IdentityKeys.load(dep.data_dir.identity_dir(role), role=role)


def post_inbox(dep: Deployment, recipient: str, round_id: int, kind: str, digest: bytes,
               side: str | None = None) -> None:
    """Announce blob ``digest`` to ``recipient`` as its ``kind`` message of the round (a deployment would
    send it); ``side`` tells the two dealers' reports apart."""
    atomic_write(dep.data_dir.inbox_message(recipient, round_id, kind, side),
                 json.dumps({"blob": digest.hex()}).encode())


def read_inbox(dep: Deployment, recipient: str, round_id: int, kind: str, side: str | None = None) -> bytes | None:
    path = dep.data_dir.inbox_message(recipient, round_id, kind, side)
    if not path.exists():
        return None
    return bytes.fromhex(json.loads(path.read_text())["blob"])


def record_tx(dep: Deployment, role: str, round_id: int, step: str, tx) -> None:
    """Keep, in the role's own folder, the history anchor of one of its transactions (block number and
    hash, as its node reported them): what the role can later hold against a rewritten chain."""
    path = dep.data_dir.round_file(role, round_id, "txs")
    txs = read_json(path) if path.exists() else {}
    txs[step] = tx.anchor()
    _private_json(path, txs)


BEHAVIOURS = ("honest", "offer_rate", "skip", "skip_reveal", "withhold_blob", "malformed_report", "invalid_digits")


@dataclass(frozen=True)
class Behaviour:
    """How a dealer executes its instruction (honest by default) -- for the deviation scenarios.

    kind: "honest" | "offer_rate" (offers ``rate`` instead of the instructed one) | "skip" (never
    executes its leg; the contract's deadline forfeits its deposit) | "skip_reveal" (commits but never
    reveals its blob) | "withhold_blob" (reveals the digest but never publishes the blob: the evaluators'
    faults forfeit it) | "malformed_report" (publishes a truncated blob: the evaluators' faults forfeit it) |
    "invalid_digits" (encrypts a digit outside the circuit's range: the circuit's invalid flag forfeits it).
    """

    kind: str = "honest"
    rate: int | None = None

    @classmethod
    def from_dict(cls, d: dict | None) -> "Behaviour":
        d = d or {}
        kind = d.get("kind", "honest")
        if kind not in BEHAVIOURS:
            raise ProtocolError(f"behaviour.kind must be one of {', '.join(BEHAVIOURS)}, got {kind!r}")
        if kind == "offer_rate" and not isinstance(d.get("rate"), int):
            raise ProtocolError(f"behaviour.rate must be an int (bp) for offer_rate, got {d.get('rate')!r}")
        return cls(kind, d.get("rate"))

    def as_dict(self) -> dict:
        return {"kind": self.kind, "rate": self.rate}


# --- dealers -------------------------------------------------------------------------------------------

class DealerAgent:
    def __init__(self, dep: Deployment, role: str, circuit=None):
        if role not in DEALER_ROLES:
            raise ProtocolError(f"dealer role must be {DEALER_MM} or {DEALER_RM}, got {role!r}")
        self.dep, self.role, self.side = dep, role, side_of(role)
        self.client = self.side.client
        self.folder = dep.data_dir.role(role)
        self.keys = _load_keys(dep, role)
        self._circuit = circuit

    def _round_file(self, round_id: int, kind: str) -> Path:
        return self.dep.data_dir.round_file(self.role, round_id, kind)

    def private_input(self, round_id: int) -> dict:
        path = self._round_file(round_id, "input")
        if not path.exists():
            raise ProtocolError(f"round {round_id}: {self.role} has no private input ({path})")
        return read_json(path)

    def behaviour(self, round_id: int) -> Behaviour:
        return Behaviour.from_dict(self.private_input(round_id).get("behaviour"))

    # deposits
    def ensure_deposit(self) -> int:
        """Top the deposit up to the published minimum; returns gas used (0 if nothing to do)."""
        coord = self.dep.coordinator
        have = coord.deposit_of(self.dep.address(self.role))
        need = self.dep.market.deposit_minimum_wei - have
        if need <= 0:
            return 0
        return coord.deposit(self.role, need).gas_used

    # report
    def _encrypter(self):
        """Encryption under the market's public key (and CRS), both checked against the terms digest on chain."""
        if self.dep.terms_digest() != self.dep.onchain_terms.terms_digest:
            raise ProtocolError(f"{self.role}: market.json's terms, public key and CRS do not hash to the terms "
                                f"digest on chain; refusing to encrypt")
        circuit = self._circuit if self._circuit is not None else self.dep.circuit()
        return DealerSide(self.dep.backend, circuit, self.dep.public_key(), self.dep.crs(), self.dep.owner_parameters)

    def prepare_report(self, round_id: int) -> dict:
        """Validate the report, encrypt it under the market's public key, and keep the blob private (0600) until
        the reveal: ``{"commitment", "blob_digest", "blob_commitment", "salt"}`` (once per round)."""
        state_path = self._round_file(round_id, "report")
        if state_path.exists():
            return read_json(state_path)
        inp = self.private_input(round_id)
        behaviour = self.behaviour(round_id)
        terms = self.dep.terms
        # every check runs before anything is encrypted or committed
        validate_report(terms, self.side, inp["schedule"], inp["hurdle"])
        offsets = [int(v) for v in report_offsets(terms, self.side, inp["schedule"])]
        report = DealerReport.create(role=self.role, round=round_id, chain_id=self.dep.chain_id,
                                     contract=self.dep.contract_address, schedule=offsets, hurdle=int(inp["hurdle"]))
        encrypter = self._encrypter()
        digits = encrypter.digits(self.side, offsets, int(inp["hurdle"]))
        if behaviour.kind == "invalid_digits":  # a crafted input: a digit above the circuit's range
            digits[0] = 16 + digits[0] % 16
        blob = encrypter.seal_digits(digits, report_binding(self.dep.chain_id, self.dep.contract_address,
                                                            round_id, self.side))
        if behaviour.kind == "malformed_report":  # a crafted blob: truncated
            blob = blob[:-7]
        blob_digest = digest(blob)
        atomic_write(self._round_file(round_id, "blob"), json.dumps({"blob": blob.hex()}).encode(), mode=0o600)
        state = {"commitment": report.commitment.hex(), "salt": report.salt.hex(), "blob_digest": blob_digest.hex(),
                 "blob_commitment": blob_commitment(blob_digest, self.side, round_id,
                                                    self.dep.contract_address).hex()}
        _private_json(state_path, state)
        return state

    def commit(self, round_id: int) -> int:
        """Post the report and blob commitments (opens the round if first). The blob stays private."""
        state = self.prepare_report(round_id)
        coord = self.dep.coordinator
        committed = self._onchain_commitment(round_id)
        if committed is None:
            tx = coord.commit_report(self.role, round_id, bytes.fromhex(state["commitment"]),
                                     bytes.fromhex(state["blob_commitment"]))
            record_tx(self.dep, self.role, round_id, "commit_report", tx)
            return tx.gas_used
        if committed != (bytes.fromhex(state["commitment"]), bytes.fromhex(state["blob_commitment"])):
            raise ProtocolError(f"round {round_id}: {self.role}'s commitments on chain are not its own report's")
        return 0

    def _onchain_commitment(self, round_id: int) -> tuple[bytes, bytes] | None:
        coord = self.dep.coordinator
        if coord.current_round() < round_id:
            return None
        rs = coord.round(round_id)
        value = rs.commitment(self.side)
        return None if value == bytes(32) else (value, rs.blob_commitment(self.side))

    def publish(self, round_id: int, rs=None) -> bool:
        """Put the blob in the blob store, only once both dealers' commitments are on chain (False: this
        dealer's behaviour withholds it). Raises ProtocolError naming the round, the dealer and why not."""
        if self.behaviour(round_id).kind == "skip_reveal":
            return False

        rs = rs or self.dep.coordinator.round(round_id)
        if rs.phase is not RoundPhase.REVEALING:
            why = ("the other dealer has not committed: both commitments must be on chain before a reveal"
                   if rs.phase in (RoundPhase.NONE, RoundPhase.COMMITTED) else f"the round is in phase {rs.phase.label}")
            raise ProtocolError(f"round {round_id}: {self.role} cannot reveal its report: {why}")
        if self.dep.chain.block_number >= rs.deadline:  # a reveal sent now would be mined after the deadline
            raise ProtocolError(f"round {round_id}: {self.role} cannot reveal its report: late, the reveal deadline "
                                f"is block {rs.deadline} and the chain is at block {self.dep.chain.block_number}")
        blob = bytes.fromhex(read_json(self._round_file(round_id, "blob"))["blob"])
        committed = bytes.fromhex(self.prepare_report(round_id)["blob_digest"])
        if digest(blob) != committed:
            raise ProtocolError(f"round {round_id}: {self.role} cannot reveal its report: its blob hashes to "
                                f"{digest(blob).hex()}, not to the digest {committed.hex()} it committed to")
        if self.behaviour(round_id).kind != "withhold_blob":
            self.dep.blobs.put(blob)  # published only now: nobody saw it before both blob commitments were bound
        return True

    def reveal(self, round_id: int) -> int:
        """Once both dealers committed: publish the blob and reveal its digest (returns gas; 0 if done)."""
        state = self.prepare_report(round_id)
        mine = bytes.fromhex(state["blob_digest"])
        rs = self.dep.coordinator.round(round_id)
        revealed = rs.ciphertext(self.side)
        if revealed == mine:
            return 0
        if revealed != bytes(32):
            raise ProtocolError(f"round {round_id}: {self.role}'s revealed blob on chain is not its own")
        if not self.publish(round_id, rs):
            return 0
        tx = self.dep.coordinator.reveal_report(self.role, round_id, mine)
        record_tx(self.dep, self.role, round_id, "reveal_report", tx)
        return tx.gas_used

    # instruction
    def instruction(self, round_id: int) -> dict:
        """Open the sealed instruction and check it against the custodian's commitment on chain."""
        digest = read_inbox(self.dep, self.role, round_id, INSTRUCTION)
        if digest is None:
            raise ProtocolError(f"round {round_id}: {self.role} has no instruction from the custodian")
        payload = open_message(self.dep.blobs.get(digest), recipient=self.keys,
                               sender=self.dep.identity(CUSTODIAN),
                               expected=self.dep.binding(INSTRUCTION, round_id, CUSTODIAN, self.role))
        pre = InstructionPreimage(payload["volume"], payload["r_mm"], payload["r_rm"], payload["r_bd_x2"],
                                  payload["salt"])
        if pre.commitment() != self.dep.coordinator.round(round_id).instruction_commitment:
            raise ProtocolError(f"round {round_id}: instruction to {self.role} does not open the commitment on chain")
        return payload

    def execute(self, round_id: int, client: "ClientAgent") -> tuple[int, dict]:
        """Offer the (instructed or deviating) rate to the client, get its acceptance, record it on chain."""
        behaviour = self.behaviour(round_id)
        if behaviour.kind == "skip":
            return 0, {"skipped": True}
        instr = self.instruction(round_id)
        rate = instr[f"r_{self.side}"]
        if behaviour.kind == "offer_rate":
            rate = behaviour.rate
        offer = seal_message({"round": round_id, "rate": int(rate)}, sender=self.keys,
                             recipient=self.dep.identity(self.client),
                             binding=self.dep.binding(OFFER, round_id, self.role, self.client))
        offer_digest = self.dep.blobs.put(offer.to_bytes())
        post_inbox(self.dep, self.client, round_id, OFFER, offer_digest)
        acceptance_digest = client.accept(round_id)
        accepted = open_message(self.dep.blobs.get(acceptance_digest), recipient=self.keys,
                                sender=self.dep.identity(self.client),
                                expected=self.dep.binding(ACCEPTANCE, round_id, self.client, self.role))
        if accepted["rate"] != rate:
            raise ProtocolError(f"round {round_id}: {self.client} accepted rate {accepted['rate']}, offered {rate}")
        record = self._execution_record(round_id, int(rate), int(accepted["volume"]), offer_digest,
                                        acceptance_digest)
        coord = self.dep.coordinator
        fn = getattr(coord, f"execute_{self.side}_leg")
        tx = fn(self.role, round_id, int(rate), int(accepted["volume"]), record)
        record_tx(self.dep, self.role, round_id, f"execute_{self.side}_leg", tx)
        return tx.gas_used, {"rate": int(rate), "volume": int(accepted["volume"]),
                             "offer": offer_digest.hex(), "acceptance": acceptance_digest.hex(),
                             "execution_record": record.hex()}

    def _execution_record(self, round_id: int, rate: int, volume: int, offer: bytes, acceptance: bytes) -> bytes:
        """Sign and publish the execution record naming the offer and acceptance; its digest goes on chain."""
        body = execution_record_body(self.dep, round_id, self.side, rate=rate, volume=volume, offer=offer,
                                     acceptance=acceptance)
        return self.dep.blobs.put(sign_statement(self.keys, body, name="execution record"))

    def challenge(self, round_id: int) -> int:
        """If the other dealer's record departs from the instruction, prove it on chain (returns gas)."""
        rs = self.dep.coordinator.round(round_id)
        other = self.side.other
        record = rs.record(other)
        if record is None:
            return 0
        instr = self.instruction(round_id)
        if (record.rate, record.volume) == (instr[f"r_{other}"], instr["volume"]):
            return 0
        pre = InstructionPreimage(instr["volume"], instr["r_mm"], instr["r_rm"], instr["r_bd_x2"], instr["salt"])
        tx = self.dep.coordinator.prove_deviation(self.role, round_id, other, pre)
        record_tx(self.dep, self.role, round_id, "prove_deviation", tx)
        return tx.gas_used


# --- clients -------------------------------------------------------------------------------------------

class ClientAgent:
    """A price-taking client: accepts the volume of its TRUE schedule at the offered rate."""

    def __init__(self, dep: Deployment, role: str):
        if role not in CLIENT_ROLES:
            raise ProtocolError(f"client role must be {' or '.join(CLIENT_ROLES)}, got {role!r}")
        self.dep, self.role = dep, role
        self.dealer = side_of(role).dealer
        self.folder = dep.data_dir.role(role)
        self.keys = _load_keys(dep, role)

    def _file(self, round_id: int, kind: str) -> Path:
        return self.dep.data_dir.round_file(self.role, round_id, kind)

    def accepted_volume(self, round_id: int, rate: int) -> int:
        """``D(r)`` (MM) or ``S(r)`` (RM) of the true schedule, by market's own schedule functions.

        [decided] A client knows only its own side: the other side of the Schedules object is a flat
        placeholder that ``lend_volume``/``borrow_volume`` of this side never read.
        """
        rates = np.asarray(read_json(self._file(round_id, "schedule"))["rates"], dtype=np.int64)
        flat_hi = np.full_like(rates, int(rates.max()) + 1)
        if self.role == CLIENT_MM:
            return int(Schedules(b=rates, a=flat_hi).lend_volume(rate))
        return int(Schedules(b=np.ones_like(rates), a=rates).borrow_volume(rate))

    def accept(self, round_id: int) -> bytes:
        """Open the dealer's sealed offer; seal back a signed acceptance (same answer if asked twice)."""
        done = self._file(round_id, "acceptance")
        if done.exists():
            return bytes.fromhex(read_json(done)["blob"])
        digest = read_inbox(self.dep, self.role, round_id, OFFER)
        if digest is None:
            raise ProtocolError(f"round {round_id}: {self.role} has no offer from {self.dealer}")
        offer = open_message(self.dep.blobs.get(digest), recipient=self.keys,
                             sender=self.dep.identity(self.dealer),
                             expected=self.dep.binding(OFFER, round_id, self.dealer, self.role))
        rate = int(offer["rate"])
        volume = self.accepted_volume(round_id, rate)
        sealed = seal_message({"round": round_id, "rate": rate, "volume": volume}, sender=self.keys,
                              recipient=self.dep.identity(self.dealer),
                              binding=self.dep.binding(ACCEPTANCE, round_id, self.role, self.dealer))
        blob = self.dep.blobs.put(sealed.to_bytes())
        _private_json(done, {"blob": blob.hex(), "rate": rate, "volume": volume})
        return blob


# --- custodian -----------------------------------------------------------------------------------------

class Custodian:
    """Receives no report in any form (dealers encrypt their own). With key holders it holds no secret key:
    it opens the agreed output from the holders' public shares, as anyone can; without (simulate backend, whose
    output is plaintext) it decodes the output."""

    def __init__(self, dep: Deployment, circuit):
        self.dep = dep
        self.folder = dep.data_dir.role(CUSTODIAN)
        self.keys = _load_keys(dep, CUSTODIAN)
        if dep.holders:
            self.fhe = None
            self._setup = dep.threshold_setup()
            if dep.terms_digest() != dep.onchain_terms.terms_digest:
                raise ProtocolError("custodian: market.json's terms and threshold setup do not hash to the terms "
                                    "digest on chain")
        else:
            published = dep.onchain_terms.evaluation_keys_digest if dep.backend == "fhe" else None
            self.fhe = CustodianSide.open(dep.backend, circuit, dep.data_dir.fhe_keys_dir(CUSTODIAN), create=False,
                                          evaluation_keys_digest=published,
                                          public_key_digest=dep.digest("public_key") if dep.backend == "fhe" else None)

    def open_output(self, round_id: int, rs):
        """The selection output of the round's agreed output, and the share digests it was opened from.

        With key holders: the shares the chain's ``SharePosted`` events name, combined strictly (a refused or
        inconsistent share stops the custodian: the round then closes by its deadline); at least
        ``holder_threshold`` table shares must be on chain first."""
        if self.fhe is not None:
            return self.fhe.decrypt(self.dep.blobs.get(rs.output_digest)), (), ()
        shares = posted_shares(self.dep, round_id)
        tables = len(shares[ShareStage.TABLE])
        if tables < self.dep.holder_threshold:
            raise ProtocolError(f"round {round_id}: {tables} table shares on chain, {self.dep.holder_threshold} "
                                f"needed; the custodian cannot open the output yet")
        try:
            opened = open_output(self.dep, self._setup, round_id, output_value(self.dep, rs.output_digest), shares)
        except ThresholdError as exc:
            raise ProtocolError(f"round {round_id}: custodian cannot open the output from the holders' shares: "
                                f"{exc}") from None
        return (SelectionOutput.from_values(opened.decryption.values), opened.mask_digests, opened.table_digests)

    def _round_file(self, round_id: int) -> Path:
        return self.dep.data_dir.round_file(CUSTODIAN, round_id)

    def _state(self, round_id: int) -> dict:
        path = self._round_file(round_id)
        return read_json(path) if path.exists() else {}

    def _save(self, round_id: int, state: dict) -> None:
        _private_json(self._round_file(round_id), state)

    def prepare_instruction(self, round_id: int) -> dict:
        """Open only the output digest the evaluators agreed on (on chain); attest; seal instructions --
        or, when the output's invalid flag names exactly one dealer, attest that (no instruction).

        Everything is persisted (0600) before anything is posted, so a resumed run posts the same
        commitment and attestation."""
        state = self._state(round_id)
        if "attestation" in state:
            return state
        rs = self.dep.coordinator.round(round_id)
        if rs.output_digest == bytes(32):
            raise ProtocolError(f"round {round_id}: no output digest agreed on chain; refusing to open any output")
        if "instruction" not in state:
            selection, masks, tables = self.open_output(round_id, rs)
            state["shares"] = {"mask": [d.hex() for d in masks], "table": [d.hex() for d in tables]}
            state["invalid"] = list(invalid_sides(selection))
            instr = selection.instruction(self.dep.terms)  # no trade when either input is invalid
            trade = bool(instr.trade)
            values = ((int(instr.volume), int(instr.r_mm), int(instr.r_rm), int(instr.r_bd_x2)) if trade
                      else (0, 0, 0, 0))
            state["instruction"] = {"volume": values[0], "r_mm": values[1], "r_rm": values[2],
                                    "r_bd_x2": values[3], "trade": trade, "salt": random_salt().hex()}
            self._save(round_id, state)
        invalid = state.get("invalid", [])
        shares = {kind: [bytes.fromhex(d) for d in state.get("shares", {}).get(kind, [])] for kind in ("mask", "table")}
        if len(invalid) == 1:  # one dealer's input is invalid: it forfeits; nobody gets an instruction
            body = attestation_body(self.dep, round_id, ciphertexts={s: rs.ciphertext(s) for s in SIDES},
                                    output=rs.output_digest, instruction_commitment=bytes(32), trade=False,
                                    sealed_instructions={s: bytes(32) for s in SIDES}, invalid=invalid,
                                    shares=shares)
            state["attestation"] = self.dep.blobs.put(sign_statement(self.keys, body, name="attestation")).hex()
            self._save(round_id, state)
            return state
        ins = state["instruction"]
        salt = bytes.fromhex(ins["salt"])
        commitment = instruction_commitment(ins["volume"], ins["r_mm"], ins["r_rm"], ins["r_bd_x2"], salt)
        sealed = {}
        for side in SIDES:
            dealer = side.dealer
            payload = {"round": round_id, "trade": ins["trade"], "volume": ins["volume"], "r_mm": ins["r_mm"],
                       "r_rm": ins["r_rm"], "r_bd_x2": ins["r_bd_x2"], "salt": salt}
            env = seal_message(payload, sender=self.keys, recipient=self.dep.identity(dealer),
                               binding=self.dep.binding(INSTRUCTION, round_id, CUSTODIAN, dealer))
            sealed[side] = self.dep.blobs.put(env.to_bytes())
        body = attestation_body(
            self.dep, round_id,
            ciphertexts={s: rs.ciphertext(s) for s in SIDES},
            output=rs.output_digest, instruction_commitment=commitment, trade=ins["trade"],
            sealed_instructions=sealed, invalid=invalid, shares=shares)
        state["attestation"] = self.dep.blobs.put(sign_statement(self.keys, body, name="attestation")).hex()
        state["commitment"] = commitment.hex()
        state["sealed_instructions"] = {s.value: d.hex() for s, d in sealed.items()}
        self._save(round_id, state)
        return state

    def post_instruction(self, round_id: int) -> int:
        """Post attestation digest + instruction commitment (if not yet); deliver the sealed instructions."""
        state = self.prepare_instruction(round_id)
        gas = 0
        invalid = state.get("invalid", [])
        if len(invalid) == 1:
            if self.dep.coordinator.phase(round_id) == RoundPhase.COMPUTED:
                tx = self.dep.coordinator.report_invalid_input(CUSTODIAN, round_id,
                                                               bytes.fromhex(state["attestation"]), invalid[0])
                record_tx(self.dep, CUSTODIAN, round_id, "report_invalid_input", tx)
                gas = tx.gas_used
            return gas
        if self.dep.coordinator.phase(round_id) == RoundPhase.COMPUTED:
            tx = self.dep.coordinator.post_instruction(
                CUSTODIAN, round_id, bytes.fromhex(state["attestation"]), bytes.fromhex(state["commitment"]),
                bool(state["instruction"]["trade"]))
            record_tx(self.dep, CUSTODIAN, round_id, "post_instruction", tx)
            gas = tx.gas_used
        for side in SIDES:
            post_inbox(self.dep, side.dealer, round_id, INSTRUCTION, bytes.fromhex(state["sealed_instructions"][side]))
        return gas


# --- key holders ---------------------------------------------------------------------------------------

class KeyHolderAgent:
    """One key holder: its shares of the output key and its one-time slots (``roles/<holder>/threshold/``).

    It answers only for the output digest k evaluators agreed on chain, in phase Computed, with the round's
    slot (round r: slot r - 1), once per stage: every refusal is a :class:`ProtocolError` naming the holder,
    the round and the reason, raised before anything is posted."""

    def __init__(self, dep: Deployment, role: str):
        if role not in dep.holders:
            raise ProtocolError(f"{role}: not a key holder of this market (holders: {', '.join(dep.holders) or 'none'})")
        self.dep, self.role = dep, role
        if dep.terms_digest() != dep.onchain_terms.terms_digest:
            raise ProtocolError(f"{role}: market.json's terms and threshold setup do not hash to the terms digest "
                                f"on chain")
        try:
            self.holder = KeyHolder.load(dep.data_dir.holder_dir(role), role, setup_digest=dep.digest("threshold_setup"))
        except (ThresholdError, OSError) as exc:
            raise ProtocolError(f"{role}: cannot load its key shares: {exc}") from None

    def _authorised(self, round_id: int) -> tuple[bytes, bytes]:
        """(output value, its SHA-256) of the output the chain agreed on for ``round_id``; refuses otherwise."""
        coord = self.dep.coordinator
        if not 1 <= round_id <= coord.current_round():
            raise ProtocolError(f"round {round_id}: {self.role} refuses: the chain has no such round")
        rs = coord.round(round_id)
        if rs.phase is not RoundPhase.COMPUTED:
            raise ProtocolError(f"round {round_id}: {self.role} refuses: the round is in phase {rs.phase.label}, "
                                f"shares are given only in phase {RoundPhase.COMPUTED.label}")
        if self.dep.chain.block_number >= rs.deadline:
            raise ProtocolError(f"round {round_id}: {self.role} refuses: late, the deadline is block {rs.deadline} "
                                f"and the chain is at block {self.dep.chain.block_number}")
        value = output_value(self.dep, rs.output_digest)
        return value, digest(value)

    def _post(self, round_id: int, stage, make) -> int:
        coord = self.dep.coordinator
        if coord.has_posted_share(round_id, self.dep.address(self.role), stage):
            return 0
        value, authorised = self._authorised(round_id)
        try:
            blob = make(value, authorised)
        except ThresholdError as exc:
            raise ProtocolError(f"round {round_id}: {self.role} gives no {stage.name.lower()} share: {exc}") from None
        tx = coord.post_share(self.role, round_id, stage, self.dep.blobs.put(blob))
        record_tx(self.dep, self.role, round_id, f"post_share_{stage.name.lower()}", tx)
        return tx.gas_used

    def post_mask(self, round_id: int) -> int:
        """Post this holder's mask share of the round's agreed output (returns gas; 0 if already posted)."""
        return self._post(round_id, ShareStage.MASK, lambda value, ok: self.holder.mask_share(
            value, round=round_id, slot=slot_of(round_id), authorised=ok))

    def post_table(self, round_id: int) -> int:
        """Post this holder's table share, for the c the mask shares named by the chain's events open."""
        masks = posted_shares(self.dep, round_id)[ShareStage.MASK]
        if len(masks) < self.dep.holder_threshold:
            raise ProtocolError(f"round {round_id}: {self.role} gives no table share: {len(masks)} mask shares on "
                                f"chain, {self.dep.holder_threshold} needed")

        def fetch(share):
            try:
                return self.dep.blobs.get(share.digest)
            except BlobError:
                return b""  # refused as a truncated share of its poster

        return self._post(round_id, ShareStage.TABLE, lambda value, ok: self.holder.table_share(
            value, [fetch(s) for s in masks], round=round_id, slot=slot_of(round_id),
            senders=[s.holder for s in masks], authorised=ok))


# --- evaluators ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Verdict:
    """What an evaluator posts for a round: an output digest, or a fault naming the side whose blob it refused."""

    kind: str            # "output" | "fault"
    digest: bytes        # the output blob's digest, or the fault record's
    side: str | None = None
    reason: str | None = None


class Evaluator:
    """Holds nothing secret: the circuit artefact and evaluation keys named on chain, the revealed blobs."""

    def __init__(self, dep: Deployment, role: str, circuit):
        self.dep, self.role = dep, role
        self.folder = dep.data_dir.role(role)
        if dep.terms_digest() != dep.onchain_terms.terms_digest:
            raise ProtocolError(f"{role}: market.json's terms, public key and CRS do not hash to the terms digest "
                                f"on chain")
        self.runner = EvaluatorSide(dep.backend, circuit, dep.public_key(), dep.crs(), dep.owner_parameters)
        self._keys: tuple[bytes, bytes] | None = None  # (digest, bytes): hash-checked once per process

    def _evaluation_keys(self, digest: bytes) -> bytes:
        if self._keys is None or self._keys[0] != digest:
            self._keys = (digest, self.dep.blobs.get(digest))
        return self._keys[1]

    def evaluate(self, round_id: int) -> Verdict:
        """Open both revealed blobs (mm first), then compute; a refused blob gives a fault naming its side."""
        coord = self.dep.coordinator
        terms = self.dep.onchain_terms
        rs = coord.round(round_id)

        inputs = {}
        for side in SIDES:
            try:
                blob = self.dep.blobs.get(rs.ciphertext(side))  # hash-checked against the revealed digest
                inputs[side] = self.runner.open_report(
                    blob, report_binding(self.dep.chain_id, self.dep.contract_address, round_id, side))
            except (OwnerReportError, BlobMissing) as exc:
                # [decided] a revealed digest whose blob was never published is the dealer's fault too
                reason = exc.reason if isinstance(exc, OwnerReportError) else WITHHELD
                record = fault_record(self.dep, round_id, side, rs.ciphertext(side), reason)
                return Verdict("fault", self.dep.blobs.put(record), side, reason)
        keys = self._evaluation_keys(terms.evaluation_keys_digest)
        output = self.runner.evaluate(keys, inputs[Side.MM], inputs[Side.RM])
        # every evaluator runs under the fixed FFT plan (crypto/fhe_runtime.py), so an honest evaluator's digest
        # equals every other honest evaluator's, whichever process computed it
        return Verdict("output", self.dep.blobs.put(output))

    def post(self, round_id: int, verdict: Verdict) -> int:
        coord = self.dep.coordinator
        if coord.has_posted_output(round_id, self.dep.address(self.role)):
            return 0
        if verdict.kind == "fault":
            tx = coord.post_fault(self.role, round_id, verdict.side, verdict.digest)
            record_tx(self.dep, self.role, round_id, "post_fault", tx)
        else:
            tx = coord.post_output(self.role, round_id, verdict.digest)
            record_tx(self.dep, self.role, round_id, "post_output", tx)
        return tx.gas_used
