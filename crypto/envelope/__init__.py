"""Sealed, signed and bound messages between roles, and the dealer reports' commitments.

One mechanism for every private message of the protocol (:func:`seal_message` / :func:`open_message`): the
custodian's instructions to each dealer, the dealers' offers and the clients' acceptances are uses of it with
a ``purpose`` label. Dealer reports are not sealed to anyone: each dealer encrypts its own report under the
market's public key (:mod:`crypto.tfhers`) and commits to it (:class:`DealerReport`).

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
rounds the plaintext up to a block (or to a length the caller derives from public data), so the
ciphertext length does not follow the digit counts of the integers inside [decided].

Opening checks, in order, each with its own exception (all subclasses of ``EnvelopeError``):
parse (:class:`MalformedEnvelopeError`), AEAD under the envelope's own header
(:class:`TamperedEnvelopeError`: any changed byte of header, ephemeral key, nonce, ciphertext or tag),
the now authentic binding against the expected one (:class:`BindingMismatchError`: replay elsewhere),
the signature under the registered sender key (:class:`WrongSignerError`), and finally the replay cache
(:class:`ReplayError`). Nothing is recorded unless every check passes.

Reports and commitments
-----------------------
A :class:`DealerReport` holds ``{role, round, chain_id, contract, schedule (rate offsets from the
published base rate), hurdle, salt}``. Its commitment, which goes on chain, is
``commitment(canonical(report without salt), salt)`` = ``H(domain ‖ report ‖ salt)`` (see
:mod:`crypto.encoding`); the ``repr`` of :class:`DealerReport` hides the schedule, the hurdle and the salt.

Modules
-------
:mod:`~crypto.envelope.binding` (:class:`Binding`), :mod:`~crypto.envelope.sealed` (the construction
above), :mod:`~crypto.envelope.report` (dealer reports' commitments) and :mod:`~crypto.envelope.replay` (the
replay cache). Import from ``crypto.envelope``: the names below are the surface; the modules' other names
are primitives underneath.
"""
from crypto.envelope.binding import INSTRUCTION_PURPOSE, Binding
from crypto.envelope.replay import ReplayCache
from crypto.envelope.report import DealerReport
from crypto.envelope.sealed import SealedMessage, open_message, seal_message

__all__ = [
    "Binding",
    "SealedMessage",
    "DealerReport",
    "ReplayCache",
    "seal_message",
    "open_message",
    "INSTRUCTION_PURPOSE",
]
