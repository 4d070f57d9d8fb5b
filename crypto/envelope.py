"""Sealed, signed and bound messages between roles: dealer reports, custodian receipts, instructions.

One mechanism for every private message of the protocol (:func:`seal_message` / :func:`open_message`);
dealer reports (:func:`seal_report` / :func:`open_report`) and the custodian's instructions to each dealer
are uses of it with a ``purpose`` label.

Binding
-------
Every sealed message is bound to a :class:`Binding` ``(purpose, chain_id, contract, round, sender,
recipient)``: the market it belongs to (chain id + contract address), the round, and who speaks to whom
for what. The binding is signed together with the payload, enters the key derivation (HKDF ``info``)
and is authenticated as AEAD associated data, so an envelope cannot be replayed to another round,
contract, chain, role or purpose. Within one binding, :class:`ReplayCache` rejects a second submission.

Construction (all primitives from ``cryptography``; nothing hand-rolled)
------------------------------------------------------------------------
Sender ``S`` (Ed25519 key ``sk_S``), recipient ``R`` (X25519 public key ``pk_R``), payload ``P``::

    signature  = Ed25519.sign(sk_S, canonical({"context": "repo-market:sealed-message:v1",
                                               "binding": B, "payload": P}))
    plaintext  = canonical({"padding": 0x00 * n, "payload": P, "signature": signature})
    e, pk_e    = fresh X25519 key pair (ephemeral, discarded after sealing)
    key        = HKDF-SHA256(IKM = X25519(e, pk_R), salt = pk_e ‖ pk_R,
                             info = "repo-market:seal:v1" ‖ canonical(B), length = 32)
    nonce      = 12 random bytes
    header     = canonical({"binding": B, "ephemeral_key": pk_e, "nonce": nonce, "version": 1})
    ciphertext = ChaCha20-Poly1305(key).encrypt(nonce, plaintext, associated_data = header)
    envelope   = canonical({"binding": B, "ciphertext": ciphertext, "ephemeral_key": pk_e,
                            "nonce": nonce, "version": 1})

This is the ECIES / HPKE-base pattern (RFC 9180 in spirit: DH with an ephemeral key, KDF bound to both
public keys and the context, AEAD) with a sign-then-encrypt inner layer so the recipient learns who
wrote the payload and a third party who sees only the envelope learns nothing of it. The ``padding``
makes the ciphertext length independent of the secret values: for a report, every envelope of a grid
has the same length ([decided]: decimal integers in the canonical encoding vary in length, which would
otherwise leak digit counts of the offsets and the hurdle).

Opening checks, in order, each with its own exception (all subclasses of ``EnvelopeError``):
parse (:class:`MalformedEnvelopeError`), AEAD under the envelope's own header
(:class:`TamperedEnvelopeError`: any changed byte of header, ephemeral key, nonce, ciphertext or tag),
the now authentic binding against the expected one (:class:`BindingMismatchError`: replay elsewhere),
the signature under the registered sender key (:class:`WrongSignerError`), the report's values
(:class:`ReportValueError`), and finally the replay cache (:class:`ReplayError`). Nothing is recorded
unless every check passes.

Reports and commitments
-----------------------
A :class:`DealerReport` holds ``{role, round, chain_id, contract, schedule (rate offsets from the
published base rate), hurdle, salt}``. Its commitment, which goes on chain, is
``commitment(canonical(report without salt), salt)`` = ``H(domain ‖ report ‖ salt)`` (see
:mod:`crypto.encoding`). The custodian acknowledges an accepted report with a signed
:class:`ReportReceipt` over ``{binding, envelope_digest, ciphertext_digest, commitment}``: the dealer can
check that what the custodian encrypted (``ciphertext_digest`` names the FHE ciphertext in the blob
store) comes from its envelope and its committed report. [decided] ``envelope_digest`` is an addition
to the issue's field list: it ties the receipt to the exact envelope the dealer sent.

Plaintext hygiene
-----------------
:func:`open_report` returns the report for immediate encryption; the caller must not persist it,
log it or keep it after encrypting. Nothing in this module writes a plaintext report anywhere, and the
``repr`` of :class:`DealerReport` hides the schedule and the hurdle.
"""
from __future__ import annotations

import json
import numbers
import re
import secrets
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Iterable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from crypto.encoding import (
    SALT_SIZE,
    canonical_bytes,
    canonical_loads,
    commitment,
    constant_time_equal,
    digest,
    from_hex,
    random_salt,
    to_hex,
)
from crypto.errors import (
    BindingMismatchError,
    EncodingError,
    MalformedEnvelopeError,
    ReceiptError,
    ReplayError,
    ReportValueError,
    TamperedEnvelopeError,
    WrongSignerError,
)
from crypto.identity import IdentityKeys, PublicIdentity, validate_role, write_public_file

__all__ = [
    "Binding",
    "SealedMessage",
    "SealedReport",
    "DealerReport",
    "OpenedReport",
    "ReportReceipt",
    "ReplayCache",
    "seal_message",
    "open_message",
    "seal_report",
    "open_report",
    "issue_receipt",
    "report_binding",
    "DEALER_SIDES",
    "REPORT_PURPOSE",
    "INSTRUCTION_PURPOSE",
]

ENVELOPE_VERSION = 1
NONCE_SIZE = 12
KEY_SIZE = 32
TAG_SIZE = 16
REPORT_PURPOSE = "report"
INSTRUCTION_PURPOSE = "instruction"
DEALER_SIDES = {"dealer_mm": "mm", "dealer_rm": "rm"}  # dealer role -> side of market.terms.validate_report
REPORT_VALUE_LIMIT = 2**32  # [decided] structural bound on offsets/hurdles; the terms bound them tighter
PAD_BLOCK = 256  # [decided] default padding granularity of generic messages

_SEAL_INFO = b"repo-market:seal:v1"
_MESSAGE_CONTEXT = "repo-market:sealed-message:v1"
_RECEIPT_CONTEXT = "repo-market:report-receipt:v1"
_PURPOSE = re.compile(r"\A[a-z][a-z0-9_-]{0,31}\Z")
_ADDRESS = re.compile(r"\A0x[0-9a-fA-F]{40}\Z")


# --- binding --------------------------------------------------------------------------------------------


def _exact_int(value: Any, field: str, low: int, high: int) -> int:
    if type(value) is not int:
        raise TypeError(f"{field}: expected an int, got {type(value).__name__} {value!r}")
    if not low <= value < high:
        raise ValueError(f"{field}: {value} outside [{low}, {high})")
    return value


def _normalize_contract(value: Any) -> str:
    """``0x`` + 40 lowercase hex. Accepts 20 raw bytes or a hex address; a mixed-case address must
    carry a valid EIP-55 checksum (a typo in it would otherwise bind to a wrong contract)."""
    if isinstance(value, (bytes, bytearray)):
        if len(value) != 20:
            raise ValueError(f"contract: expected 20 bytes, got {len(value)}")
        return "0x" + bytes(value).hex()
    if not isinstance(value, str) or not _ADDRESS.match(value):
        raise ValueError(f"contract: {value!r} is not a 0x-prefixed 20-byte hex address")
    body = value[2:]
    if body != body.lower() and body != body.upper():
        from eth_utils import is_checksum_address  # web3's own dependency; only needed for this check

        if not is_checksum_address(value):
            raise ValueError(f"contract: {value!r} has an invalid EIP-55 checksum")
    return "0x" + body.lower()


@dataclass(frozen=True)
class Binding:
    """What a sealed message is bound to; see the module docstring."""

    purpose: str  # "report", "instruction", ...: a lowercase label
    chain_id: int
    contract: str  # normalised to 0x + 40 lowercase hex
    round: int
    sender: str  # role
    recipient: str  # role

    def __post_init__(self) -> None:
        if type(self.purpose) is not str or not _PURPOSE.match(self.purpose):
            raise ValueError(f"purpose: {self.purpose!r} is not a label (lowercase, [a-z0-9_-], <= 32)")
        _exact_int(self.chain_id, "chain_id", 1, 2**256)
        _exact_int(self.round, "round", 0, 2**256)
        object.__setattr__(self, "contract", _normalize_contract(self.contract))
        validate_role(self.sender)
        validate_role(self.recipient)

    def as_dict(self) -> dict[str, Any]:
        """Canonical-encodable form (contract as its 20 raw bytes)."""
        return {
            "purpose": self.purpose,
            "chain_id": self.chain_id,
            "contract": bytes.fromhex(self.contract[2:]),
            "round": self.round,
            "sender": self.sender,
            "recipient": self.recipient,
        }

    @classmethod
    def from_dict(cls, data: Any) -> "Binding":
        names = {f.name for f in fields(cls)}
        if not isinstance(data, dict) or set(data) != names:
            raise ValueError(f"binding: expected exactly the fields {sorted(names)}")
        return cls(**data)

    def to_bytes(self) -> bytes:
        return canonical_bytes(self.as_dict(), name="binding")

    def as_json(self) -> dict[str, Any]:
        """JSON form for transcripts and ``--json`` output (contract as its 0x hex address)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @property
    def key(self) -> str:
        """Hex digest of the canonical binding: a stable key for caches and file names."""
        return to_hex(digest(self.to_bytes()))

    def mismatches(self, expected: "Binding") -> list[str]:
        """Human-readable differences ``field: envelope is bound to X, expected Y`` (public values)."""
        return [
            f"{f.name}: envelope is bound to {getattr(self, f.name)!r}, expected {getattr(expected, f.name)!r}"
            for f in fields(self)
            if getattr(self, f.name) != getattr(expected, f.name)
        ]

    def describe(self) -> str:
        return f"{self.purpose} of round {self.round} from {self.sender} to {self.recipient}"


def report_binding(
    *, chain_id: int, contract: str, round: int, dealer_role: str, custodian_role: str = "custodian"
) -> Binding:
    """The binding of a dealer's report to the custodian."""
    return Binding(REPORT_PURPOSE, chain_id, contract, round, dealer_role, custodian_role)


# --- sealed envelope ------------------------------------------------------------------------------------

_ENVELOPE_FIELDS = {"binding", "ciphertext", "ephemeral_key", "nonce", "version"}


@dataclass(frozen=True)
class SealedMessage:
    """A sealed envelope (see the module docstring for the construction).

    ``ciphertext`` is the ChaCha20-Poly1305 output: encrypted plaintext followed by the 16-byte tag.
    All fields are public: the envelope can travel over any channel or sit in the blob store.
    """

    binding: Binding
    ephemeral_key: bytes
    nonce: bytes
    ciphertext: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.binding, Binding):
            raise TypeError(f"binding: expected a Binding, got {type(self.binding).__name__}")
        for name, size in (("ephemeral_key", KEY_SIZE), ("nonce", NONCE_SIZE)):
            value = getattr(self, name)
            if not isinstance(value, (bytes, bytearray)) or len(value) != size:
                raise ValueError(f"{name}: expected {size} bytes")
            object.__setattr__(self, name, bytes(value))
        if not isinstance(self.ciphertext, (bytes, bytearray)) or len(self.ciphertext) < TAG_SIZE:
            raise ValueError(f"ciphertext: expected bytes of at least the {TAG_SIZE}-byte tag")
        object.__setattr__(self, "ciphertext", bytes(self.ciphertext))

    def header_bytes(self) -> bytes:
        """The AEAD associated data: everything in the envelope except the ciphertext."""
        return canonical_bytes(
            {
                "binding": self.binding.as_dict(),
                "ephemeral_key": self.ephemeral_key,
                "nonce": self.nonce,
                "version": ENVELOPE_VERSION,
            }
        )

    def to_bytes(self) -> bytes:
        return canonical_bytes(
            {
                "binding": self.binding.as_dict(),
                "ciphertext": self.ciphertext,
                "ephemeral_key": self.ephemeral_key,
                "nonce": self.nonce,
                "version": ENVELOPE_VERSION,
            }
        )

    @classmethod
    def from_bytes(cls, data: bytes):
        """Parse canonical envelope bytes; raises :class:`MalformedEnvelopeError` naming the problem."""
        try:
            value = canonical_loads(data, name="envelope")
        except (EncodingError, TypeError) as error:
            raise MalformedEnvelopeError(str(error)) from None
        if not isinstance(value, dict) or set(value) != _ENVELOPE_FIELDS:
            raise MalformedEnvelopeError(f"envelope: expected exactly the fields {sorted(_ENVELOPE_FIELDS)}")
        if value["version"] != ENVELOPE_VERSION:
            raise MalformedEnvelopeError(
                f"envelope.version: {value['version']!r}, this implementation reads {ENVELOPE_VERSION}"
            )
        try:
            binding = Binding.from_dict(value["binding"])
            return cls(binding, value["ephemeral_key"], value["nonce"], value["ciphertext"])
        except (TypeError, ValueError) as error:
            raise MalformedEnvelopeError(f"envelope: {error}") from None

    @property
    def digest(self) -> bytes:
        """SHA-256 of :meth:`to_bytes` (what receipts, caches and the blob store name it by)."""
        return digest(self.to_bytes())


class SealedReport(SealedMessage):
    """A dealer's sealed report (purpose ``"report"``): same wire format as :class:`SealedMessage`."""


def _derive_key(shared: bytes, ephemeral_public: bytes, recipient_public: bytes, binding: Binding) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(),
        length=KEY_SIZE,
        salt=ephemeral_public + recipient_public,
        info=_SEAL_INFO + binding.to_bytes(),
    ).derive(shared)


def _signed_bytes(binding: Binding, payload: Any) -> bytes:
    return canonical_bytes(
        {"context": _MESSAGE_CONTEXT, "binding": binding.as_dict(), "payload": payload}, name="message"
    )


def _plaintext(payload: Any, signature: bytes, padding: int) -> bytes:
    return canonical_bytes({"padding": bytes(padding), "payload": payload, "signature": signature})


def seal_message(
    payload: Any,
    *,
    sender: IdentityKeys,
    recipient: PublicIdentity,
    binding: Binding,
    pad_to: int | None = None,
    envelope_type: type = SealedMessage,
) -> SealedMessage:
    """Sign ``payload`` (any canonical-encodable value) as ``sender`` and seal it to ``recipient``.

    ``binding.sender``/``binding.recipient`` must be the two roles. The plaintext is zero-padded to
    ``pad_to`` bytes if given (it must be at least the unpadded length), else up to the next multiple
    of ``PAD_BLOCK``; pass a ``pad_to`` that depends on public data only when the payload's length
    could reveal a secret. All input is checked before anything is signed or encrypted.
    """
    if not isinstance(sender, IdentityKeys):
        raise TypeError(f"sender: expected IdentityKeys, got {type(sender).__name__}")
    if not isinstance(recipient, PublicIdentity):
        raise TypeError(f"recipient: expected PublicIdentity, got {type(recipient).__name__}")
    if not isinstance(binding, Binding):
        raise TypeError(f"binding: expected a Binding, got {type(binding).__name__}")
    if binding.sender != sender.role:
        raise ValueError(f"binding.sender: {binding.sender!r}, but the signing keys are {sender.role!r}'s")
    if binding.recipient != recipient.role:
        raise ValueError(f"binding.recipient: {binding.recipient!r}, but sealing to {recipient.role!r}")
    signed = _signed_bytes(binding, payload)  # raises TypeError/ValueError for a non-encodable payload
    signature = sender.sign(signed)
    unpadded = len(_plaintext(payload, signature, 0))
    if pad_to is None:
        target = -(-unpadded // PAD_BLOCK) * PAD_BLOCK
    else:
        if type(pad_to) is not int or pad_to < unpadded:
            raise ValueError(f"pad_to: {pad_to!r} is below the message's unpadded length {unpadded}")
        target = pad_to
    plaintext = _plaintext(payload, signature, target - unpadded)

    ephemeral = X25519PrivateKey.generate()
    ephemeral_public = ephemeral.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    key = _derive_key(
        ephemeral.exchange(_x25519_public(recipient)), ephemeral_public, recipient.sealing_key, binding
    )
    nonce = secrets.token_bytes(NONCE_SIZE)
    # The header is fixed before encryption: the ciphertext field is the only part not in the AD.
    shell = envelope_type(binding, ephemeral_public, nonce, bytes(TAG_SIZE))
    ciphertext = ChaCha20Poly1305(key).encrypt(nonce, plaintext, shell.header_bytes())
    return envelope_type(binding, ephemeral_public, nonce, ciphertext)


def _x25519_public(identity: PublicIdentity) -> X25519PublicKey:
    return X25519PublicKey.from_public_bytes(identity.sealing_key)


def _parse(sealed: SealedMessage | bytes, envelope_type: type) -> SealedMessage:
    if isinstance(sealed, SealedMessage):
        return sealed
    if isinstance(sealed, (bytes, bytearray, memoryview)):
        return envelope_type.from_bytes(bytes(sealed))
    raise TypeError(f"sealed: expected a SealedMessage or bytes, got {type(sealed).__name__}")


def _decrypt(sealed: SealedMessage, recipient: IdentityKeys) -> bytes:
    claimed = sealed.binding.describe()
    try:
        shared = recipient.exchange(sealed.ephemeral_key)
    except ValueError:  # low-order point: all-zero shared secret
        raise TamperedEnvelopeError(f"envelope ({claimed}, claimed): invalid ephemeral key") from None
    key = _derive_key(shared, sealed.ephemeral_key, recipient.public.sealing_key, sealed.binding)
    try:
        return ChaCha20Poly1305(key).decrypt(sealed.nonce, sealed.ciphertext, sealed.header_bytes())
    except InvalidTag:
        raise TamperedEnvelopeError(
            f"envelope ({claimed}, claimed): authentication failed; some byte of the header, ephemeral "
            f"key, nonce, ciphertext or tag was changed, or it was sealed to another key than "
            f"{recipient.role!r}'s"
        ) from None


def _open(
    sealed: SealedMessage, *, recipient: IdentityKeys, sender: PublicIdentity, expected: Binding
) -> Any:
    """AEAD, binding and signature checks; returns the payload. No state is touched."""
    if expected.recipient != recipient.role:
        raise ValueError(f"expected.recipient: {expected.recipient!r}, but opening as {recipient.role!r}")
    if expected.sender != sender.role:
        raise ValueError(f"expected.sender: {expected.sender!r}, but the registered key is {sender.role!r}'s")
    plaintext = _decrypt(sealed, recipient)
    # From here on the binding is authentic (it was the associated data).
    differences = sealed.binding.mismatches(expected)
    if differences:
        raise BindingMismatchError(f"envelope replayed or misdirected: {'; '.join(differences)}")
    try:
        inner = canonical_loads(plaintext, name="sealed plaintext")
    except EncodingError as error:
        raise MalformedEnvelopeError(f"{sealed.binding.describe()}: {error}") from None
    if (
        not isinstance(inner, dict)
        or set(inner) != {"padding", "payload", "signature"}
        or not isinstance(inner["padding"], bytes)
        or any(inner["padding"])
        or not isinstance(inner["signature"], bytes)
    ):
        raise MalformedEnvelopeError(f"{sealed.binding.describe()}: plaintext is not a signed message")
    sender.verify(inner["signature"], _signed_bytes(sealed.binding, inner["payload"]))
    return inner["payload"]


def open_message(
    sealed: SealedMessage | bytes,
    *,
    recipient: IdentityKeys,
    sender: PublicIdentity,
    expected: Binding,
    replay_cache: "ReplayCache | None" = None,
) -> Any:
    """Open an envelope sealed to ``recipient`` by the registered ``sender`` for ``expected``.

    Raises, in this order: :class:`MalformedEnvelopeError`, :class:`TamperedEnvelopeError`,
    :class:`BindingMismatchError`, :class:`WrongSignerError`, :class:`ReplayError`. Returns the payload.
    """
    sealed = _parse(sealed, SealedMessage)
    payload = _open(sealed, recipient=recipient, sender=sender, expected=expected)
    if replay_cache is not None:
        replay_cache.record(sealed.binding, sealed.digest)
    return payload


# --- dealer reports -------------------------------------------------------------------------------------

_REPORT_FIELDS = ("role", "round", "chain_id", "contract", "schedule", "hurdle", "salt")


def _report_value(value: Any, field: str) -> int:
    # numpy integers are accepted here (schedules are numpy arrays in market/), bools are not.
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ReportValueError(f"{field}: {value!r} is not an integer")
    value = int(value)
    if not 0 <= value < REPORT_VALUE_LIMIT:
        raise ReportValueError(f"{field}: {value} outside [0, 2**32)")
    return value


@dataclass(frozen=True, repr=False)
class DealerReport:
    """A dealer's report: its client's schedule as rate offsets from the base rate, and its hurdle.

    Secret to the dealer and the custodian: ``repr`` hides ``schedule``, ``hurdle`` and ``salt``.
    Build with :meth:`create`, which validates the structure and draws a fresh salt.
    """

    role: str
    round: int
    chain_id: int
    contract: str
    schedule: tuple[int, ...]
    hurdle: int
    salt: bytes

    def __post_init__(self) -> None:
        if self.role not in DEALER_SIDES:
            raise ReportValueError(f"report.role: {self.role!r} is not a dealer role {sorted(DEALER_SIDES)}")
        try:
            _exact_int(self.round, "report.round", 0, 2**256)
            _exact_int(self.chain_id, "report.chain_id", 1, 2**256)
            object.__setattr__(self, "contract", _normalize_contract(self.contract))
        except (TypeError, ValueError) as error:
            raise ReportValueError(str(error)) from None
        if isinstance(self.schedule, (str, bytes)) or not hasattr(self.schedule, "__iter__"):
            raise ReportValueError(f"report.schedule: expected a sequence of ints, got {type(self.schedule).__name__}")
        schedule = tuple(_report_value(v, f"report.schedule[{i}]") for i, v in enumerate(self.schedule))
        if len(schedule) < 2:
            raise ReportValueError(f"report.schedule: {len(schedule)} offsets; the grid 0..N needs N >= 1")
        object.__setattr__(self, "schedule", schedule)
        object.__setattr__(self, "hurdle", _report_value(self.hurdle, "report.hurdle"))
        if not isinstance(self.salt, (bytes, bytearray)) or len(self.salt) != SALT_SIZE:
            raise ReportValueError(f"report.salt: expected {SALT_SIZE} bytes")
        object.__setattr__(self, "salt", bytes(self.salt))

    @classmethod
    def create(
        cls,
        *,
        role: str,
        round: int,
        chain_id: int,
        contract: str,
        schedule: Iterable[int],
        hurdle: int,
        salt: bytes | None = None,
    ) -> "DealerReport":
        """Validated report with a fresh random salt unless one is given."""
        return cls(role, round, chain_id, contract, schedule, hurdle, random_salt() if salt is None else salt)

    @classmethod
    def from_rates(
        cls,
        terms,
        *,
        role: str,
        round: int,
        chain_id: int,
        contract: str,
        rates: Iterable[int],
        hurdle: int,
        salt: bytes | None = None,
    ) -> "DealerReport":
        """Report from a schedule in bp (MM's ``b`` or RM's ``a``): validated against ``terms``
        (``market.terms.MarketTerms``) and converted to offsets ``rate - terms.base_rate``."""
        if role not in DEALER_SIDES:
            raise ReportValueError(f"report.role: {role!r} is not a dealer role {sorted(DEALER_SIDES)}")
        from market.terms import report_offsets, validate_report

        try:
            validate_report(terms, DEALER_SIDES[role], rates, hurdle)
            offsets = report_offsets(terms, DEALER_SIDES[role], rates)
        except ValueError as error:
            raise ReportValueError(f"{role} report of round {round}: {error}") from None
        return cls.create(
            role=role, round=round, chain_id=chain_id, contract=contract,
            schedule=[int(v) for v in offsets], hurdle=int(hurdle), salt=salt,
        )

    @property
    def side(self) -> str:
        """``"mm"`` or ``"rm"``."""
        return DEALER_SIDES[self.role]

    def as_dict(self) -> dict[str, Any]:
        """Canonical-encodable form (contract as 20 raw bytes)."""
        return {
            "role": self.role,
            "round": self.round,
            "chain_id": self.chain_id,
            "contract": bytes.fromhex(self.contract[2:]),
            "schedule": list(self.schedule),
            "hurdle": self.hurdle,
            "salt": self.salt,
        }

    @classmethod
    def from_dict(cls, data: Any) -> "DealerReport":
        if not isinstance(data, dict) or set(data) != set(_REPORT_FIELDS):
            raise ReportValueError(f"report: expected exactly the fields {sorted(_REPORT_FIELDS)}")
        if not isinstance(data["schedule"], list):
            raise ReportValueError("report.schedule: expected a list of ints")
        for index, value in enumerate(data["schedule"]):
            if type(value) is not int:
                raise ReportValueError(f"report.schedule[{index}]: {type(value).__name__} is not an int")
        if type(data["hurdle"]) is not int:
            raise ReportValueError(f"report.hurdle: {type(data['hurdle']).__name__} is not an int")
        return cls(**{name: data[name] for name in _REPORT_FIELDS})

    def to_bytes(self) -> bytes:
        return canonical_bytes(self.as_dict(), name="report")

    def commitment_message(self) -> bytes:
        """The committed message: the canonical report without its salt."""
        content = self.as_dict()
        del content["salt"]
        return canonical_bytes(content, name="report")

    @property
    def commitment(self) -> bytes:
        """``commitment(canonical(report without salt), salt)``: the bytes32 the dealer posts on chain."""
        return commitment(self.commitment_message(), self.salt)

    def binding(self, custodian_role: str = "custodian") -> Binding:
        return report_binding(
            chain_id=self.chain_id,
            contract=self.contract,
            round=self.round,
            dealer_role=self.role,
            custodian_role=custodian_role,
        )

    def rates(self, terms) -> list[int]:
        """The schedule as rates in bp (offset + ``terms.base_rate``)."""
        return [offset + terms.base_rate for offset in self.schedule]

    def validate(self, terms) -> None:
        """Check against published terms with ``market.terms.validate_report`` (length N+1, monotone,
        offsets and hurdle within their bit widths); raises :class:`ReportValueError`."""
        from market.terms import validate_report

        try:
            validate_report(terms, self.side, self.rates(terms), self.hurdle)
        except ValueError as error:
            raise ReportValueError(f"{self.role} report of round {self.round}: {error}") from None

    def _padded_size(self) -> int:
        """Plaintext length of the widest report with the same public fields: a function of public
        data only (grid size, round, chain, contract, role), so every report of a round seals to the
        same length."""
        widest = DealerReport(
            self.role,
            self.round,
            self.chain_id,
            self.contract,
            (REPORT_VALUE_LIMIT - 1,) * len(self.schedule),
            REPORT_VALUE_LIMIT - 1,
            self.salt,
        )
        return len(_plaintext(widest.as_dict(), bytes(64), 0))

    def __repr__(self) -> str:
        return (
            f"DealerReport(role={self.role!r}, round={self.round}, chain_id={self.chain_id}, "
            f"contract={self.contract!r}, grid={len(self.schedule) - 1}, schedule=<hidden>, "
            f"hurdle=<hidden>, salt=<hidden>)"
        )

    __str__ = __repr__


def seal_report(
    report: DealerReport, *, dealer: IdentityKeys, custodian: PublicIdentity, terms=None
) -> SealedReport:
    """Sign ``report`` as ``dealer`` and seal it to the ``custodian``.

    With ``terms`` (a ``market.terms.MarketTerms``) the report is validated against them first, so an
    out-of-range report is refused before anything is signed or encrypted. The sealed length depends
    only on public data (grid size and the binding).
    """
    if not isinstance(report, DealerReport):
        raise TypeError(f"report: expected a DealerReport, got {type(report).__name__}")
    if report.role != dealer.role:
        raise ValueError(f"report.role: {report.role!r}, but the signing keys are {dealer.role!r}'s")
    if terms is not None:
        report.validate(terms)
    return seal_message(
        report.as_dict(),
        sender=dealer,
        recipient=custodian,
        binding=report.binding(custodian.role),
        pad_to=report._padded_size(),
        envelope_type=SealedReport,
    )


@dataclass(frozen=True, repr=False)
class OpenedReport:
    """An accepted report, for immediate encryption. Do not persist or log ``report``."""

    report: DealerReport
    binding: Binding
    envelope_digest: bytes

    @property
    def commitment(self) -> bytes:
        return self.report.commitment

    def __repr__(self) -> str:
        return f"OpenedReport({self.binding.describe()}, envelope={to_hex(self.envelope_digest)[:16]})"


def open_report(
    sealed: SealedReport | bytes,
    *,
    custodian: IdentityKeys,
    dealer: PublicIdentity,
    chain_id: int,
    contract: str,
    round: int,
    terms,
    replay_cache: "ReplayCache | None" = None,
) -> OpenedReport:
    """Custodian side: open and check a dealer's sealed report for ``(chain_id, contract, round)``.

    ``dealer`` is the public identity registered for the dealer role (``dealer.role`` is the role the
    envelope must come from). ``terms`` (``market.terms.MarketTerms``) fixes the ranges; pass ``None``
    only where the terms are checked elsewhere (then only the structure is checked).

    Raises (each distinct): :class:`MalformedEnvelopeError`, :class:`TamperedEnvelopeError`,
    :class:`BindingMismatchError` (another round/contract/chain/role/purpose), :class:`WrongSignerError`,
    :class:`ReportValueError`, :class:`ReplayError`. The replay cache records the envelope only once
    every check has passed.

    The returned report is for immediate encryption: the caller must not write it to disk, log it,
    or keep it after encrypting (the custodian "keeps no plaintext afterwards").
    """
    if dealer.role not in DEALER_SIDES:
        raise ValueError(f"dealer.role: {dealer.role!r} is not a dealer role {sorted(DEALER_SIDES)}")
    expected = report_binding(
        chain_id=chain_id, contract=contract, round=round, dealer_role=dealer.role, custodian_role=custodian.role
    )
    sealed = _parse(sealed, SealedReport)
    payload = _open(sealed, recipient=custodian, sender=dealer, expected=expected)
    report = DealerReport.from_dict(payload)
    # The dealer signed both; they must agree (a mismatch is a dealer bug or a forged re-binding).
    for name in ("role", "round", "chain_id", "contract"):
        signed_value = getattr(report, name)
        bound_value = getattr(expected, {"role": "sender"}.get(name, name))
        if signed_value != bound_value:
            raise BindingMismatchError(f"report.{name}: {signed_value!r} differs from the binding's {bound_value!r}")
    if terms is not None:
        report.validate(terms)
    if replay_cache is not None:
        replay_cache.record(sealed.binding, sealed.digest)
    return OpenedReport(report, sealed.binding, sealed.digest)


# --- receipts -------------------------------------------------------------------------------------------

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
        if not isinstance(self.binding, Binding):
            raise TypeError(f"binding: expected a Binding, got {type(self.binding).__name__}")
        for name in ("envelope_digest", "ciphertext_digest", "commitment"):
            object.__setattr__(self, name, _digest32(getattr(self, name), name))
        if not isinstance(self.signature, (bytes, bytearray)) or len(self.signature) != 64:
            raise ValueError("signature: expected 64 bytes")
        object.__setattr__(self, "signature", bytes(self.signature))

    @staticmethod
    def signed_bytes(binding: Binding, envelope_digest: bytes, ciphertext_digest: bytes, commitment: bytes) -> bytes:
        return canonical_bytes(
            {
                "context": _RECEIPT_CONTEXT,
                "binding": binding.as_dict(),
                "envelope_digest": envelope_digest,
                "ciphertext_digest": ciphertext_digest,
                "commitment": commitment,
            }
        )

    def to_bytes(self) -> bytes:
        return canonical_bytes(
            {
                "binding": self.binding.as_dict(),
                "envelope_digest": self.envelope_digest,
                "ciphertext_digest": self.ciphertext_digest,
                "commitment": self.commitment,
                "signature": self.signature,
            }
        )

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


# --- replay cache ---------------------------------------------------------------------------------------


class ReplayCache:
    """Accepted envelopes per binding: a second envelope for the same binding is a replay.

    In memory, or persisted to ``path`` (JSON ``{binding key: envelope digest}``, public data only,
    written atomically) so a restarted custodian still rejects replays. One envelope per binding
    [decided]: a dealer reports once per round; a different envelope for an already-used binding is
    refused too, so a report cannot be swapped after its receipt was issued.
    """

    def __init__(self, path: Path | None = None) -> None:
        self._path = Path(path) if path is not None else None
        self._seen: dict[str, str] = {}
        if self._path is not None and self._path.exists():
            data = json.loads(self._path.read_text(encoding="utf-8"))
            if not isinstance(data, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in data.items()
            ):
                raise ValueError(f"{self._path}: not a replay cache (expected {{binding key: digest hex}})")
            self._seen = dict(data)

    def check(self, binding: Binding, envelope_digest: bytes) -> None:
        """Raise :class:`ReplayError` if ``binding`` already has an accepted envelope."""
        previous = self._seen.get(binding.key)
        if previous is None:
            return
        if constant_time_equal(from_hex(previous, name="cached digest"), envelope_digest):
            raise ReplayError(f"envelope {to_hex(envelope_digest)[:16]} was already accepted ({binding.describe()})")
        raise ReplayError(
            f"another envelope ({previous[:16]}) was already accepted for {binding.describe()}; one per binding"
        )

    def record(self, binding: Binding, envelope_digest: bytes) -> None:
        """Check, then remember ``envelope_digest`` for ``binding`` (persisted before returning)."""
        self.check(binding, envelope_digest)
        seen = {**self._seen, binding.key: to_hex(envelope_digest)}
        if self._path is not None:
            text = json.dumps(seen, indent=1, sort_keys=True) + "\n"
            write_public_file(self._path, text.encode("utf-8"), overwrite=True)
        self._seen = seen

    def accepted(self, binding: Binding) -> bytes | None:
        """The digest of the envelope accepted for ``binding``, if any: lets a restarted caller tell
        "I accepted exactly this envelope before crashing" (resume) from a replay."""
        previous = self._seen.get(binding.key)
        return None if previous is None else from_hex(previous, name="cached digest", length=32)

    def __contains__(self, binding: Binding) -> bool:
        return binding.key in self._seen

    def __len__(self) -> int:
        return len(self._seen)
