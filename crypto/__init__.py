"""Cryptography of the repo-market coordinator.

- :mod:`crypto.encoding` — canonical bytes of every message, SHA-256 digests, salted commitments, hex.
- :mod:`crypto.identity` — per-role Ed25519 signing + X25519 sealing keys, 0600 key files.
- :mod:`crypto.envelope` — sealed (X25519 + HKDF-SHA256 + ChaCha20-Poly1305), signed and bound messages
  between roles (instructions, offers, acceptances); dealer reports' commitments; replay cache.
- :mod:`crypto.circuit`, :mod:`crypto.fhe_keys` — the selection rule as a TFHE circuit (concrete-python)
  and the custodian's FHE keys. Not imported here: importing concrete pulls in torch (slow, large).
- :mod:`crypto.fhe_runtime` — the fixed FFT plan (``fixed_fft_plan.c``, preloaded) that makes every FHE
  evaluation byte-identical across processes, so anyone can replay an evaluator's output exactly.
- :mod:`crypto.errors` — one exception hierarchy (:class:`CryptoError`).

Everything re-exported below is cheap to import (``cryptography`` only).
"""
from crypto.encoding import (
    canonical_bytes,
    canonical_digest,
    canonical_loads,
    commitment,
    constant_time_equal,
    digest,
    from_hex,
    random_salt,
    to_hex,
    verify_commitment,
)
from crypto.envelope import (
    Binding,
    DealerReport,
    ReplayCache,
    SealedMessage,
    open_message,
    seal_message,
)
from crypto.errors import (
    BindingMismatchError,
    CryptoError,
    EncodingError,
    EnvelopeError,
    KeyFileError,
    KeyFormatError,
    KeyPermissionError,
    MalformedEnvelopeError,
    ReplayError,
    ReportValueError,
    TamperedEnvelopeError,
    WrongSignerError,
)
from crypto.identity import IdentityKeys, PublicIdentity

__all__ = [
    "canonical_bytes",
    "canonical_digest",
    "canonical_loads",
    "commitment",
    "constant_time_equal",
    "digest",
    "from_hex",
    "random_salt",
    "to_hex",
    "verify_commitment",
    "Binding",
    "DealerReport",
    "ReplayCache",
    "SealedMessage",
    "open_message",
    "seal_message",
    "BindingMismatchError",
    "CryptoError",
    "EncodingError",
    "EnvelopeError",
    "KeyFileError",
    "KeyFormatError",
    "KeyPermissionError",
    "MalformedEnvelopeError",
    "ReplayError",
    "ReportValueError",
    "TamperedEnvelopeError",
    "WrongSignerError",
    "IdentityKeys",
    "PublicIdentity",
]
