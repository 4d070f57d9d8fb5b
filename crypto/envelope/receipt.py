"""The custodian's signed receipt for an accepted report, and the dealer's check of it."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from crypto.encoding import canonical_bytes, canonical_loads, constant_time_equal, to_hex
from crypto.envelope.binding import Binding, require_binding
from crypto.envelope.report import DealerReport, OpenedReport
from crypto.envelope.sealed import SealedMessage
from crypto.errors import ReceiptError, WrongSignerError
from crypto.identity import IdentityKeys, PublicIdentity

_RECEIPT_CONTEXT = "repo-market:report-receipt:v1"
_RECEIPT_FIELDS = {"binding", "envelope_digest", "ciphertext_digest", "commitment", "signature"}


def _digest32(value: Any, field: str) -> bytes:
    if not isinstance(value, (bytes, bytearray)) or len(value) != 32:
        raise ValueError(f"{field}: expected 32 bytes")
    return bytes(value)


@dataclass(frozen=True)
class ReportReceipt:
    """The custodian's signed acknowledgement of an accepted report.

    Signs ``canonical({"context": "repo-market:report-receipt:v1", "binding", "envelope_digest",
    "ciphertext_digest", "commitment"})``; the signer is ``binding.recipient`` (the custodian).
    """

    binding: Binding
    envelope_digest: bytes
    ciphertext_digest: bytes
    commitment: bytes
    signature: bytes

    def __post_init__(self) -> None:
        require_binding(self.binding)
        for name in ("envelope_digest", "ciphertext_digest", "commitment"):
            object.__setattr__(self, name, _digest32(getattr(self, name), name))
        if not isinstance(self.signature, (bytes, bytearray)) or len(self.signature) != 64:
            raise ValueError("signature: expected 64 bytes")
        object.__setattr__(self, "signature", bytes(self.signature))

    @staticmethod
    def _acknowledged(binding: Binding, envelope_digest: bytes, ciphertext_digest: bytes, commitment: bytes) -> dict:
        return {"binding": binding.as_dict(), "envelope_digest": envelope_digest,
                "ciphertext_digest": ciphertext_digest, "commitment": commitment}

    @staticmethod
    def signed_bytes(binding: Binding, envelope_digest: bytes, ciphertext_digest: bytes, commitment: bytes) -> bytes:
        return canonical_bytes({"context": _RECEIPT_CONTEXT, **ReportReceipt._acknowledged(
            binding, envelope_digest, ciphertext_digest, commitment)})

    def to_bytes(self) -> bytes:
        acknowledged = self._acknowledged(self.binding, self.envelope_digest, self.ciphertext_digest, self.commitment)
        return canonical_bytes({**acknowledged, "signature": self.signature})  # keys encode sorted

    @classmethod
    def from_bytes(cls, data: bytes) -> "ReportReceipt":
        try:
            value = canonical_loads(data, name="receipt")
            if not isinstance(value, dict) or set(value) != _RECEIPT_FIELDS:
                raise ValueError(f"receipt: expected exactly the fields {sorted(_RECEIPT_FIELDS)}")
            return cls(
                Binding.from_dict(value["binding"]),
                value["envelope_digest"],
                value["ciphertext_digest"],
                value["commitment"],
                value["signature"],
            )
        except (TypeError, ValueError) as error:
            raise ReceiptError(f"receipt does not parse: {error}") from None

    def as_json(self) -> dict[str, Any]:
        """Hex form for transcripts and ``--json`` output."""
        return {
            "binding": self.binding.as_json(),
            "envelope_digest": to_hex(self.envelope_digest, prefix=True),
            "ciphertext_digest": to_hex(self.ciphertext_digest, prefix=True),
            "commitment": to_hex(self.commitment, prefix=True),
            "signature": to_hex(self.signature, prefix=True),
        }

    def verify(
        self,
        custodian: PublicIdentity,
        *,
        sealed: SealedMessage | None = None,
        report: DealerReport | None = None,
        ciphertext_digest: bytes | None = None,
    ) -> None:
        """Dealer side: check the custodian's signature and (when given) that the receipt names the
        envelope the dealer sent, the commitment of its report and the expected ciphertext digest.

        Raises :class:`WrongSignerError` or :class:`ReceiptError` naming the field that differs.
        """
        if custodian.role != self.binding.recipient:
            raise WrongSignerError(
                f"receipt is for recipient {self.binding.recipient!r}, checked against {custodian.role!r}'s key"
            )
        custodian.verify(
            self.signature,
            self.signed_bytes(self.binding, self.envelope_digest, self.ciphertext_digest, self.commitment),
        )
        if sealed is not None:
            differences = self.binding.mismatches(sealed.binding)
            if differences:
                raise ReceiptError(f"receipt binding: {'; '.join(differences)}")
            if not constant_time_equal(self.envelope_digest, sealed.digest):
                raise ReceiptError(
                    f"receipt.envelope_digest: {to_hex(self.envelope_digest)} is not the digest of the "
                    f"sent envelope {to_hex(sealed.digest)}"
                )
        if report is not None:
            differences = self.binding.mismatches(report.binding(self.binding.recipient))
            if differences:
                raise ReceiptError(f"receipt binding vs report: {'; '.join(differences)}")
            if not constant_time_equal(self.commitment, report.commitment):
                raise ReceiptError("receipt.commitment: differs from the commitment of the dealer's report")
        if ciphertext_digest is not None and not constant_time_equal(self.ciphertext_digest, ciphertext_digest):
            raise ReceiptError(
                f"receipt.ciphertext_digest: {to_hex(self.ciphertext_digest)}, expected {to_hex(ciphertext_digest)}"
            )


def issue_receipt(custodian: IdentityKeys, opened: OpenedReport, ciphertext_digest: bytes) -> ReportReceipt:
    """Custodian side: sign a receipt for an opened report and the digest of its FHE ciphertext."""
    if opened.binding.recipient != custodian.role:
        raise ValueError(f"opened.binding.recipient: {opened.binding.recipient!r}, signing as {custodian.role!r}")
    ciphertext_digest = _digest32(ciphertext_digest, "ciphertext_digest")
    signed = ReportReceipt.signed_bytes(opened.binding, opened.envelope_digest, ciphertext_digest, opened.commitment)
    return ReportReceipt(opened.binding, opened.envelope_digest, ciphertext_digest, opened.commitment, custodian.sign(signed))
