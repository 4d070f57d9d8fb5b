"""Content-addressed blob store: ``<data-dir>/blobs/<sha256 hex>``.

Every published artefact of a round (dealers' report blobs, fault records, evaluation keys, the circuit artefact,
evaluator outputs, attestations, sealed instructions, execution records) is stored here under the
SHA-256 of its bytes, and the chain records the same digest.  Writes are atomic (temp file, fsync, rename,
fsync of the directory) so a crash never leaves a half-written blob under a valid name; reads re-hash the
bytes and refuse a blob whose content no longer matches its name (a tampered or corrupt file is never
handed to a deserializer -- concrete-python does not detect tampered ciphertexts, TOOLING.md).
"""
from __future__ import annotations

import hashlib
from pathlib import Path

from common.files import write_file_atomic
from protocol.errors import ProtocolPackageError

__all__ = ["BlobStore", "BlobError", "BlobMissing", "BlobCorrupt"]


class BlobError(ProtocolPackageError):
    """A blob could not be read as named."""


class BlobMissing(BlobError):
    """No blob with that digest exists in the store."""


class BlobCorrupt(BlobError):
    """The stored bytes do not hash to the blob's name."""


def _normalise(digest: bytes | str) -> str:
    if isinstance(digest, (bytes, bytearray)):
        if len(digest) != 32:
            raise BlobError(f"digest must be 32 bytes, got {len(digest)}")
        return bytes(digest).hex()
    text = digest.lower().removeprefix("0x")
    if len(text) != 64 or any(c not in "0123456789abcdef" for c in text):
        raise BlobError(f"digest must be 64 hex characters, got {digest!r}")
    return text


def atomic_write(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` so that readers see either the old file or the whole new one."""
    write_file_atomic(path, data, mode=mode, overwrite=True, parents=True)


class BlobStore:
    """Blobs named by the SHA-256 hex of their bytes under one directory."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, digest: bytes | str) -> Path:
        return self.root / _normalise(digest)

    def put(self, data: bytes) -> bytes:
        """Store ``data`` (idempotent) and return its 32-byte SHA-256 digest."""
        if not isinstance(data, (bytes, bytearray)):
            raise TypeError(f"blob data must be bytes, got {type(data).__name__}")
        raw = hashlib.sha256(data).digest()
        target = self.root / raw.hex()
        if not (target.exists() and self._matches(target, raw)):
            atomic_write(target, bytes(data))
        return raw

    def get(self, digest: bytes | str) -> bytes:
        """Return the blob's bytes after checking they hash to ``digest``."""
        name = _normalise(digest)
        target = self.root / name
        try:
            data = target.read_bytes()
        except FileNotFoundError:
            raise BlobMissing(f"blob {name} is not in the store {self.root}") from None
        actual = hashlib.sha256(data).hexdigest()
        if actual != name:
            raise BlobCorrupt(f"blob {name} is corrupt: its bytes hash to {actual}")
        return data

    def has(self, digest: bytes | str) -> bool:
        return (self.root / _normalise(digest)).exists()

    @staticmethod
    def _matches(path: Path, raw: bytes) -> bool:
        return hashlib.sha256(path.read_bytes()).digest() == raw
