"""Exceptions of the ``crypto`` package.

One module so every crypto component (encodings, identity keys, envelopes, FHE keys) raises from one
hierarchy and callers can catch :class:`CryptoError` for "anything cryptographic went wrong".

Rule for every message here: name the field, the file or the role, and the offending *public* value;
never key bytes, shared secrets, plaintexts of sealed messages or anything derived from them.
"""
from __future__ import annotations


class CryptoError(Exception):
    """Base class of every error raised by ``crypto``."""


class EncodingError(CryptoError, ValueError):
    """Bytes are not a canonical encoding (truncated, trailing data, unsorted keys, unknown tag, ...)."""


# --- key files -------------------------------------------------------------------------------------------


class KeyFileError(CryptoError):
    """A key file cannot be used: missing, unsafe permissions, wrong type, wrong length, corrupt."""


class KeyPermissionError(KeyFileError):
    """A private key file is readable or writable by group/others (mode looser than 0600), or not a file."""


class KeyFormatError(KeyFileError):
    """A key file has the wrong type, wrong length or is truncated/corrupt."""


# --- sealed envelopes --------------------------------------------------------------------------------------


class EnvelopeError(CryptoError):
    """Base class of the distinct rejection paths of a sealed envelope."""


class TamperedEnvelopeError(EnvelopeError):
    """Authenticated decryption failed: some byte of the envelope (header, ephemeral key, nonce,
    ciphertext or tag) was changed, or it was sealed to another recipient key."""


class MalformedEnvelopeError(TamperedEnvelopeError):
    """The envelope bytes do not even parse (truncated, bad structure, wrong version/field lengths).

    A subclass of :class:`TamperedEnvelopeError`: to the recipient both mean "these are not the bytes
    that were sealed".
    """


class BindingMismatchError(EnvelopeError):
    """An authentic envelope is bound to another (purpose, chain id, contract, round, sender, recipient)
    than the one expected: a replay to another round/contract/chain/role."""


class ReplayError(EnvelopeError):
    """The same envelope (or a second report for the same binding) was presented twice."""


class WrongSignerError(EnvelopeError):
    """The signature does not verify under the public key registered for the claimed role."""


class ReportValueError(EnvelopeError, ValueError):
    """A report's values are malformed (not integers, or outside their structural bounds)."""

