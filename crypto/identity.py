"""Identity keys of the protocol's roles: an Ed25519 signing key and an X25519 sealing key per role.

Every role (``dealer_mm``, ``dealer_rm``, ``custodian``, ``evaluator_1``, ...) holds one
:class:`IdentityKeys`; the others hold its :class:`PublicIdentity` (two 32-byte public keys and the
role name). Signatures authenticate who said something; sealing (see :mod:`crypto.envelope`) makes it
readable only by the holder of the X25519 private key.

On disk, ``IdentityKeys.save(directory)`` writes::

    directory/signing.key    Ed25519 private key, PKCS#8 PEM, mode 0600 (optionally password-encrypted)
    directory/sealing.key    X25519 private key, PKCS#8 PEM, mode 0600 (optionally password-encrypted)
    directory/identity.json  the PublicIdentity (role + hex public keys), mode 0644, written last

PKCS#8 PEM is a standard container (``openssl pkey -in signing.key -noout -text`` reads it), carries the
key type, so a key of the wrong type is caught on load. ``load`` refuses private key files whose mode
allows group/other access, files of the wrong key type, truncated or corrupt files, and a public file
that does not match the private keys. Each write goes to a temporary file in the same directory, is
fsynced, then renamed over the target (atomic on POSIX), and the directory is fsynced.

Nothing here ever prints, logs or puts into an exception message any private key material; ``repr``
and ``str`` of the keys show the role and a fingerprint of the public keys only, and pickling is
refused so keys cannot leak into caches by accident.
"""
from __future__ import annotations

import json
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from common import strict_json
from common.files import write_file_atomic
from crypto.encoding import canonical_bytes, canonical_loads, digest, from_hex, to_hex
from crypto.errors import (
    EncodingError,
    KeyFileError,
    KeyFormatError,
    KeyPermissionError,
    WrongSignerError,
)

__all__ = [
    "IdentityKeys",
    "PublicIdentity",
    "validate_role",
    "write_file_atomic",
    "write_private_file",
    "write_public_file",
    "read_private_file",
    "SIGNING_KEY_FILE",
    "SEALING_KEY_FILE",
    "PUBLIC_IDENTITY_FILE",
]

PUBLIC_KEY_SIZE = 32
SIGNATURE_SIZE = 64
SIGNING_KEY_FILE = "signing.key"
SEALING_KEY_FILE = "sealing.key"
PUBLIC_IDENTITY_FILE = "identity.json"
_PUBLIC_FORMAT = "repo-market-public-identity-v1"
_ROLE = re.compile(r"\A[a-z][a-z0-9_]{0,47}\Z")


def validate_role(role: Any) -> str:
    """Return ``role`` if it is a role name: lowercase ASCII letter, then up to 47 of ``[a-z0-9_]``."""
    if type(role) is not str or not _ROLE.match(role):
        raise ValueError(
            f"role: {role!r} is not a role name (lowercase letter then [a-z0-9_], e.g. 'dealer_mm')"
        )
    return role


# --- files ----------------------------------------------------------------------------------------------


def write_private_file(path: Path, data: bytes, *, overwrite: bool = False) -> None:
    """Atomically write a secret file with mode 0600 (temp file in the same directory, fsync, rename).

    Shared by every crypto component that stores a secret (identity keys, FHE secret keys).
    """
    write_file_atomic(Path(path), bytes(data), mode=0o600, overwrite=overwrite)


def write_public_file(path: Path, data: bytes, *, overwrite: bool = False) -> None:
    """Atomically write a public file with mode 0644."""
    write_file_atomic(Path(path), bytes(data), mode=0o644, overwrite=overwrite)


def read_private_file(path: Path) -> bytes:
    """Read a secret file, refusing anything but a regular file of mode 0600 or stricter.

    Raises :class:`KeyFileError` (missing), :class:`KeyPermissionError` (a symlink, not a regular
    file, or group/other permission bits set). The check is made on the opened descriptor, so the
    file cannot be swapped between check and read.
    """
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        raise KeyFileError(f"{path}: key file not found") from None
    except OSError as error:  # ELOOP for a symlink under O_NOFOLLOW, EACCES, ...
        raise KeyPermissionError(f"{path}: cannot open key file safely ({error.strerror})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise KeyPermissionError(f"{path}: not a regular file")
        loose = stat.S_IMODE(info.st_mode) & 0o077
        if loose:
            raise KeyPermissionError(
                f"{path}: permissions {stat.S_IMODE(info.st_mode):04o} are too open for a private key; "
                f"expected 0600 (run: chmod 600 {path})"
            )
        chunks = []
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


# --- public identity ------------------------------------------------------------------------------------


def _public_key_bytes(value: Any, field: str) -> bytes:
    if not isinstance(value, (bytes, bytearray)):
        raise TypeError(f"{field}: expected {PUBLIC_KEY_SIZE} bytes, got {type(value).__name__}")
    if len(value) != PUBLIC_KEY_SIZE:
        raise ValueError(f"{field}: expected {PUBLIC_KEY_SIZE} bytes, got {len(value)}")
    return bytes(value)


@dataclass(frozen=True)
class PublicIdentity:
    """The public half of a role's identity: what other roles register and check against.

    ``signing_key`` is the raw 32-byte Ed25519 public key, ``sealing_key`` the raw 32-byte X25519 public
    key (RFC 8032 / RFC 7748 encodings).
    """

    role: str
    signing_key: bytes
    sealing_key: bytes

    def __post_init__(self) -> None:
        validate_role(self.role)
        signing = _public_key_bytes(self.signing_key, "signing_key")
        sealing = _public_key_bytes(self.sealing_key, "sealing_key")
        try:
            Ed25519PublicKey.from_public_bytes(signing)
        except ValueError:
            raise ValueError(f"signing_key: not a valid Ed25519 public key (role {self.role})") from None
        object.__setattr__(self, "signing_key", signing)
        object.__setattr__(self, "sealing_key", sealing)

    # encodings
    def as_dict(self) -> dict[str, str]:
        """JSON-friendly form: role and lowercase hex public keys."""
        return {
            "format": _PUBLIC_FORMAT,
            "role": self.role,
            "signing_key": to_hex(self.signing_key),
            "sealing_key": to_hex(self.sealing_key),
        }

    @classmethod
    def from_dict(cls, data: Any) -> "PublicIdentity":
        if not isinstance(data, dict):
            raise ValueError(f"public identity: expected an object, got {type(data).__name__}")
        if data.get("format") != _PUBLIC_FORMAT:
            raise ValueError(f"public identity: format {data.get('format')!r}, expected {_PUBLIC_FORMAT!r}")
        missing = {"role", "signing_key", "sealing_key"} - set(data)
        if missing:
            raise ValueError(f"public identity: missing field(s) {sorted(missing)}")
        return cls(
            role=data["role"],
            signing_key=from_hex(data["signing_key"], name="signing_key", length=PUBLIC_KEY_SIZE),
            sealing_key=from_hex(data["sealing_key"], name="sealing_key", length=PUBLIC_KEY_SIZE),
        )

    def to_bytes(self) -> bytes:
        """Canonical bytes (what :attr:`fingerprint` hashes)."""
        return canonical_bytes(
            {
                "format": _PUBLIC_FORMAT,
                "role": self.role,
                "signing_key": self.signing_key,
                "sealing_key": self.sealing_key,
            }
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> "PublicIdentity":
        value = canonical_loads(data, name="public identity")
        if not isinstance(value, dict) or set(value) != {"format", "role", "signing_key", "sealing_key"}:
            raise EncodingError("public identity: expected fields format, role, signing_key, sealing_key")
        if value["format"] != _PUBLIC_FORMAT:
            raise EncodingError(f"public identity: format {value['format']!r}, expected {_PUBLIC_FORMAT!r}")
        return cls(value["role"], value["signing_key"], value["sealing_key"])

    @property
    def fingerprint(self) -> bytes:
        """SHA-256 of the canonical bytes: a short, stable name for this identity."""
        return digest(self.to_bytes())

    def save(self, path: Path, *, overwrite: bool = True) -> Path:
        """Write the JSON form (mode 0644). ``path`` may be a directory (then ``identity.json`` in it)."""
        path = Path(path)
        if path.is_dir():
            path = path / PUBLIC_IDENTITY_FILE
        text = json.dumps(self.as_dict(), indent=2, sort_keys=True) + "\n"
        write_public_file(path, text.encode("utf-8"), overwrite=overwrite)
        return path

    @classmethod
    def load(cls, path: Path) -> "PublicIdentity":
        """Read a JSON public identity; ``path`` may be the role's directory."""
        path = Path(path)
        if path.is_dir():
            path = path / PUBLIC_IDENTITY_FILE
        try:
            data = strict_json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise KeyFileError(f"{path}: public identity file not found") from None
        except (UnicodeDecodeError, json.JSONDecodeError, strict_json.JsonInputError) as error:
            raise KeyFormatError(f"{path}: not a JSON public identity ({error})") from None
        try:
            return cls.from_dict(data)
        except (TypeError, ValueError) as error:
            raise KeyFormatError(f"{path}: {error}") from None

    # signatures
    def verify(self, signature: bytes, message: bytes) -> None:
        """Check an Ed25519 signature by this identity; raise :class:`WrongSignerError` if it fails."""
        if not isinstance(signature, (bytes, bytearray)) or len(signature) != SIGNATURE_SIZE:
            raise WrongSignerError(f"signature: expected {SIGNATURE_SIZE} bytes for role {self.role}")
        try:
            Ed25519PublicKey.from_public_bytes(self.signing_key).verify(bytes(signature), bytes(message))
        except InvalidSignature:
            raise WrongSignerError(
                f"signature does not verify under the key registered for role {self.role!r} "
                f"(fingerprint {to_hex(self.fingerprint)[:16]})"
            ) from None

    def __repr__(self) -> str:
        return f"PublicIdentity(role={self.role!r}, fingerprint={to_hex(self.fingerprint)[:16]!r})"


# --- private identity -----------------------------------------------------------------------------------


def _raw_public(key: Ed25519PrivateKey | X25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


class IdentityKeys:
    """A role's private identity: Ed25519 signing key + X25519 sealing key.

    The private keys never leave this object except as 0600 files through :meth:`save`. Use
    :meth:`sign` to sign, :attr:`public` to publish, and (inside :mod:`crypto.envelope` only)
    :meth:`exchange` for the X25519 key agreement that opens envelopes sealed to this role.
    """

    __slots__ = ("_role", "_signing", "_sealing")

    def __init__(self, role: str, signing: Ed25519PrivateKey, sealing: X25519PrivateKey) -> None:
        if not isinstance(signing, Ed25519PrivateKey):
            raise TypeError(f"signing: expected an Ed25519 private key, got {type(signing).__name__}")
        if not isinstance(sealing, X25519PrivateKey):
            raise TypeError(f"sealing: expected an X25519 private key, got {type(sealing).__name__}")
        self._role = validate_role(role)
        self._signing = signing
        self._sealing = sealing

    @classmethod
    def generate(cls, role: str) -> "IdentityKeys":
        """Fresh keys from the OS CSPRNG. [decided] Never from the run's ``--seed``."""
        return cls(validate_role(role), Ed25519PrivateKey.generate(), X25519PrivateKey.generate())

    @property
    def role(self) -> str:
        return self._role

    @property
    def public(self) -> PublicIdentity:
        return PublicIdentity(self._role, _raw_public(self._signing), _raw_public(self._sealing))

    def sign(self, message: bytes) -> bytes:
        """Ed25519 signature (64 bytes) over ``message``."""
        if not isinstance(message, (bytes, bytearray, memoryview)):
            raise TypeError(f"message: expected bytes, got {type(message).__name__}")
        return self._signing.sign(bytes(message))

    def exchange(self, peer_sealing_key: bytes) -> bytes:
        """X25519 shared secret with a peer's public sealing key (raw 32 bytes).

        Raises ValueError for a low-order peer key (all-zero shared secret). Feed the result to a KDF;
        never use or store it directly.
        """
        peer = X25519PublicKey.from_public_bytes(_public_key_bytes(peer_sealing_key, "peer_sealing_key"))
        return self._sealing.exchange(peer)

    # files
    def save(self, directory: Path, *, password: bytes | None = None, overwrite: bool = False) -> Path:
        """Write ``signing.key``, ``sealing.key`` (0600) and ``identity.json`` (0644) into ``directory``.

        The directory is created with mode 0700 if missing. Refuses to overwrite existing files unless
        ``overwrite``; checks all targets before writing any. ``password`` encrypts the PEM files
        (PKCS#8 with the best available scheme of the ``cryptography`` library).
        """
        directory = Path(directory)
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        targets = [directory / SIGNING_KEY_FILE, directory / SEALING_KEY_FILE, directory / PUBLIC_IDENTITY_FILE]
        if not overwrite:
            existing = [str(path) for path in targets if path.exists()]
            if existing:
                raise FileExistsError(f"{', '.join(existing)}: exists; refusing to overwrite keys")
        if password is not None and (not isinstance(password, bytes) or not password):
            raise ValueError("password: expected non-empty bytes or None")
        encryption = (
            serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
        )
        for path, key in ((targets[0], self._signing), (targets[1], self._sealing)):
            pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
            write_private_file(path, pem, overwrite=True)
        # The public file goes last: its presence marks a complete save.
        self.public.save(targets[2], overwrite=True)
        return directory

    @classmethod
    def load(
        cls, directory: Path, *, role: str | None = None, password: bytes | None = None
    ) -> "IdentityKeys":
        """Load the keys that :meth:`save` wrote; ``role`` (if given) must match the stored role.

        Raises :class:`KeyPermissionError` for a private key file looser than 0600,
        :class:`KeyFormatError` for a wrong key type, truncated/corrupt file or a public file that does
        not match the private keys, :class:`KeyFileError` for a missing file.
        """
        directory = Path(directory)
        public = PublicIdentity.load(directory / PUBLIC_IDENTITY_FILE)
        if role is not None and public.role != validate_role(role):
            raise KeyFormatError(f"{directory}: holds the keys of role {public.role!r}, expected {role!r}")
        signing = _load_private_key(directory / SIGNING_KEY_FILE, Ed25519PrivateKey, "Ed25519", password)
        sealing = _load_private_key(directory / SEALING_KEY_FILE, X25519PrivateKey, "X25519", password)
        keys = cls(public.role, signing, sealing)
        if keys.public != public:
            raise KeyFormatError(
                f"{directory}: private keys do not match {PUBLIC_IDENTITY_FILE} (mismatched key files)"
            )
        return keys

    # no leaks
    def __repr__(self) -> str:
        return f"IdentityKeys(role={self._role!r}, fingerprint={to_hex(self.public.fingerprint)[:16]!r})"

    __str__ = __repr__

    def __reduce__(self):  # pickle/copy would serialise the private keys somewhere unprotected
        raise TypeError("IdentityKeys cannot be pickled; use save(directory) (0600 files)")


def _load_private_key(path: Path, expected: type, type_name: str, password: bytes | None):
    data = read_private_file(path)
    try:
        key = serialization.load_pem_private_key(data, password=password)
    except TypeError:
        # Raised both for "encrypted but no password" and "password given but not encrypted".
        hint = "is password-protected; pass password=" if password is None else "is not password-protected"
        raise KeyFormatError(f"{path}: {hint}") from None
    except (ValueError, UnsupportedAlgorithm):
        raise KeyFormatError(
            f"{path}: not a valid PKCS#8 PEM private key ({len(data)} bytes; truncated, corrupt "
            f"or wrong password)"
        ) from None
    if not isinstance(key, expected):
        found = type(key).__name__.replace("PrivateKey", "").lstrip("_")
        raise KeyFormatError(f"{path}: holds a key of type {found}, expected {type_name}")
    return key
