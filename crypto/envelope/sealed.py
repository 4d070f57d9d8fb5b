"""Sealing and opening: sign-then-encrypt to one recipient's X25519 key, bound to a :class:`Binding`
(the construction is in :mod:`crypto.envelope`)."""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from crypto.encoding import canonical_bytes, canonical_loads, digest
from crypto.envelope.binding import Binding, require_binding
from crypto.errors import BindingMismatchError, EncodingError, MalformedEnvelopeError, TamperedEnvelopeError
from crypto.identity import IdentityKeys, PublicIdentity

if TYPE_CHECKING:
    from crypto.envelope.replay import ReplayCache

ENVELOPE_VERSION = 1
NONCE_SIZE = 12
KEY_SIZE = 32
TAG_SIZE = 16
PAD_BLOCK = 256  # [decided] default padding granularity of generic messages

_SEAL_INFO = b"repo-market:seal:v1"
_MESSAGE_CONTEXT = "repo-market:sealed-message:v1"

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
        require_binding(self.binding)
        for name, size in (("ephemeral_key", KEY_SIZE), ("nonce", NONCE_SIZE)):
            value = getattr(self, name)
            if not isinstance(value, (bytes, bytearray)) or len(value) != size:
                raise ValueError(f"{name}: expected {size} bytes")
            object.__setattr__(self, name, bytes(value))
        if not isinstance(self.ciphertext, (bytes, bytearray)) or len(self.ciphertext) < TAG_SIZE:
            raise ValueError(f"ciphertext: expected bytes of at least the {TAG_SIZE}-byte tag")
        object.__setattr__(self, "ciphertext", bytes(self.ciphertext))

    def _header(self) -> dict[str, Any]:
        return {"binding": self.binding.as_dict(), "ephemeral_key": self.ephemeral_key, "nonce": self.nonce,
                "version": ENVELOPE_VERSION}

    def header_bytes(self) -> bytes:
        """The AEAD associated data: everything in the envelope except the ciphertext."""
        return canonical_bytes(self._header())

    def to_bytes(self) -> bytes:
        return canonical_bytes({**self._header(), "ciphertext": self.ciphertext})  # keys encode sorted

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
        """SHA-256 of :meth:`to_bytes` (what the replay cache and the blob store name it by)."""
        return digest(self.to_bytes())


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


def plaintext_bytes(payload: Any, signature: bytes, padding: int) -> bytes:
    return canonical_bytes({"padding": bytes(padding), "payload": payload, "signature": signature})


def seal_message(
    payload: Any,
    *,
    sender: IdentityKeys,
    recipient: PublicIdentity,
    binding: Binding,
    pad_to: int | None = None,
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
    require_binding(binding)
    if binding.sender != sender.role:
        raise ValueError(f"binding.sender: {binding.sender!r}, but the signing keys are {sender.role!r}'s")
    if binding.recipient != recipient.role:
        raise ValueError(f"binding.recipient: {binding.recipient!r}, but sealing to {recipient.role!r}")
    signed = _signed_bytes(binding, payload)  # raises TypeError/ValueError for a non-encodable payload
    signature = sender.sign(signed)
    unpadded = len(plaintext_bytes(payload, signature, 0))
    if pad_to is None:
        target = -(-unpadded // PAD_BLOCK) * PAD_BLOCK
    else:
        if type(pad_to) is not int or pad_to < unpadded:
            raise ValueError(f"pad_to: {pad_to!r} is below the message's unpadded length {unpadded}")
        target = pad_to
    plaintext = plaintext_bytes(payload, signature, target - unpadded)

    ephemeral = X25519PrivateKey.generate()
    ephemeral_public = ephemeral.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    key = _derive_key(
        ephemeral.exchange(_x25519_public(recipient)), ephemeral_public, recipient.sealing_key, binding
    )
    nonce = secrets.token_bytes(NONCE_SIZE)
    # The header is fixed before encryption: the ciphertext field is the only part not in the AD.
    shell = SealedMessage(binding, ephemeral_public, nonce, bytes(TAG_SIZE))
    ciphertext = ChaCha20Poly1305(key).encrypt(nonce, plaintext, shell.header_bytes())
    return SealedMessage(binding, ephemeral_public, nonce, ciphertext)


def _x25519_public(identity: PublicIdentity) -> X25519PublicKey:
    return X25519PublicKey.from_public_bytes(identity.sealing_key)


def parse_envelope(sealed: SealedMessage | bytes) -> SealedMessage:
    if isinstance(sealed, SealedMessage):
        return sealed
    if isinstance(sealed, (bytes, bytearray, memoryview)):
        return SealedMessage.from_bytes(bytes(sealed))
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


def open_envelope(
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
    sealed = parse_envelope(sealed)
    payload = open_envelope(sealed, recipient=recipient, sender=sender, expected=expected)
    if replay_cache is not None:
        replay_cache.record(sealed.binding, sealed.digest)
    return payload
