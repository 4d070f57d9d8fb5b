"""Signed statements anchored on chain: the custodian's decryption attestation and a dealer's execution record.

One module builds, signs, opens and checks both, for the roles that make them (``protocol/roles.py``) and
for the auditor (``protocol/audit.py``).

* **Decryption attestation** (custodian, after opening the agreed output): its digest is posted by
  ``post_instruction`` (or by ``report_invalid_input``). It names the sealed instructions, which have no slot
  on chain, so every blob of a round's compute/decrypt steps is reachable from the chain [decided], the
  opened per-dealer invalid flags (``invalid_mm``, ``invalid_rm``) and the key holders' share digests it
  combined (``mask_shares``, ``table_shares``, in chain order; empty without holders).
* **Fault record** (an evaluator that refuses a dealer's revealed blob): unsigned (the evaluator's
  transaction is its signature), deterministic, so every honest evaluator posts the same ``post_fault`` digest.
* **Execution record** (each dealer, when it executes its leg): names the sealed offer it sent to its
  client and the sealed acceptance it got back, with the (rate, volume) it records. Its digest is the
  ``evidence`` argument of ``execute_mm_leg`` / ``execute_rm_leg`` and is in the ``LegExecuted`` event
  [decided]: so the offer and acceptance blobs are anchored as well.

A statement's blob is ``canonical_bytes({"body": body, "signature": sign(canonical_bytes(body))})``; the
body's ``context`` string separates the two kinds (a signature over one is never valid as the other).
"""
from __future__ import annotations

from typing import Any

from common.vocabulary import SIDES, Side, dealer_of
from crypto.encoding import canonical_bytes, canonical_loads
from protocol.errors import ProtocolPackageError

__all__ = ["ATTESTATION_CONTEXT", "EXECUTION_CONTEXT", "FAULT_CONTEXT", "StatementError", "attestation_body",
           "fault_record",
           "execution_record_body", "sign_statement", "open_statement", "expected_attestation",
           "expected_execution_record", "mismatches", "attested_invalid"]

ATTESTATION_CONTEXT = "repo-market:decryption-attestation:v3"
FAULT_CONTEXT = "repo-market:report-fault:v1"
WITHHELD = "withheld"  # [decided] the fault reason of a revealed digest whose blob was never published
EXECUTION_CONTEXT = "repo-market:execution-record:v1"


class StatementError(ProtocolPackageError):
    """A statement blob does not parse, or its signature does not verify under the signer's key."""


def _market_fields(chain_id: int, contract: str, round_id: int) -> dict:
    return {"chain_id": int(chain_id), "contract": bytes.fromhex(contract[2:]), "round": int(round_id)}


def _dealer_fields(side: Side | str) -> dict:
    """``{"dealer", "side"}`` of a statement about one dealer, as plain strings (the canonical encoding takes exact
    ``str`` only)."""
    side = Side.of(side)
    return {"dealer": dealer_of(side), "side": side.value}


def attested_invalid(body: dict) -> tuple[str, ...]:
    """The sides an attestation body flags invalid (``invalid_mm``, ``invalid_rm``): names, in the contract's order."""
    return tuple(side.value for side in SIDES if body.get(f"invalid_{side}"))


def attestation_body(dep, round_id: int, *, ciphertexts: dict, output: bytes, instruction_commitment: bytes,
                     trade: bool, sealed_instructions: dict, invalid, shares: dict | None = None) -> dict:
    """What the custodian signs after opening (sides keyed "mm"/"rm"; ``invalid``: the flagged sides;
    ``shares``: {"mask": [digest], "table": [digest]} it combined). An invalid-input attestation has a zero
    instruction commitment and no sealed instructions."""
    shares = shares or {}
    return {
        "context": ATTESTATION_CONTEXT,
        **_market_fields(dep.chain_id, dep.contract_address, round_id),
        "circuit_digest": dep.digest("circuit"),
        "evaluation_keys_digest": dep.digest("evaluation_keys"),
        "ciphertext_digest_mm": ciphertexts["mm"],
        "ciphertext_digest_rm": ciphertexts["rm"],
        "output_digest": output,
        "invalid_mm": Side.MM in invalid,
        "invalid_rm": Side.RM in invalid,
        "instruction_commitment": instruction_commitment,
        "trade": bool(trade),
        "sealed_instruction_mm": sealed_instructions["mm"],
        "sealed_instruction_rm": sealed_instructions["rm"],
        "mask_shares": [bytes(d) for d in shares.get("mask", [])],
        "table_shares": [bytes(d) for d in shares.get("table", [])],
    }


def fault_record(dep, round_id: int, side: str, blob_digest: bytes, reason: str) -> bytes:
    """The blob an evaluator posts the digest of when it refuses ``side``'s revealed blob (``reason``: the
    OwnerReportError reason). No free text: honest evaluators write byte-identical records."""
    return canonical_bytes({"context": FAULT_CONTEXT, **_market_fields(dep.chain_id, dep.contract_address, round_id),
                            **_dealer_fields(side), "blob_digest": bytes(blob_digest),
                            "reason": str(reason)}, name="fault record")


def execution_record_body(dep, round_id: int, side: str, *, rate: int, volume: int, offer: bytes,
                          acceptance: bytes) -> dict:
    """What a dealer signs when it records its leg: the offer and acceptance blobs and the record."""
    return {
        "context": EXECUTION_CONTEXT,
        **_market_fields(dep.chain_id, dep.contract_address, round_id),
        **_dealer_fields(side),
        "rate": int(rate),
        "volume": int(volume),
        "offer": offer,
        "acceptance": acceptance,
    }


def sign_statement(keys, body: dict, *, name: str) -> bytes:
    """The statement blob: ``body`` and the signer's signature over its canonical bytes."""
    signature = keys.sign(canonical_bytes(body, name=name))
    return canonical_bytes({"body": body, "signature": signature}, name=name)


def open_statement(raw: bytes, signer, *, name: str, context: str) -> dict:
    """The body of a statement blob, after checking the signature under ``signer`` (a PublicIdentity)."""
    try:
        outer = canonical_loads(raw, name=name)
        body, signature = outer["body"], outer["signature"]
        if not isinstance(body, dict) or body.get("context") != context:
            raise StatementError(f"{name}: context is not {context!r}")
        signer.verify(signature, canonical_bytes(body, name=name))
    except StatementError:
        raise
    except Exception as exc:
        raise StatementError(f"{name} does not verify: {type(exc).__name__}: {exc}") from None
    return body


def expected_attestation(dep, onchain_terms, rs, invalid_side: str | None = None) -> dict:
    """The attestation fields the chain fixes for round ``rs`` (the rest name blobs checked by hash);
    ``invalid_side``: the side of the round's InputInvalid event, if any."""
    extra = {} if invalid_side is None else {f"invalid_{s}": invalid_side == s for s in SIDES}
    return {
        **extra,
        "context": ATTESTATION_CONTEXT,
        **_market_fields(dep.chain_id, dep.contract_address, rs.round_id),
        "circuit_digest": onchain_terms.circuit_digest,
        "evaluation_keys_digest": onchain_terms.evaluation_keys_digest,
        "ciphertext_digest_mm": rs.ciphertext_digest_mm, "ciphertext_digest_rm": rs.ciphertext_digest_rm,
        "output_digest": rs.output_digest, "instruction_commitment": rs.instruction_commitment,
        "trade": rs.trade,
    }


def expected_execution_record(dep, round_id: int, side: str, rate: int, volume: int) -> dict:
    """The execution-record fields the chain fixes (from the LegExecuted event of ``side``)."""
    return {"context": EXECUTION_CONTEXT, **_market_fields(dep.chain_id, dep.contract_address, round_id),
            **_dealer_fields(side), "rate": int(rate), "volume": int(volume)}


def mismatches(body: dict, expected: dict[str, Any]) -> list[str]:
    """The names of the fields of ``body`` that differ from ``expected``."""
    return [k for k, v in expected.items() if body.get(k) != v]
