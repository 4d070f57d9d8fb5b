"""What a sealed message is bound to: :class:`Binding` ``(purpose, chain_id, contract, round, sender,
recipient)`` (see :mod:`crypto.envelope`)."""
from __future__ import annotations

import re
from dataclasses import dataclass, fields
from typing import Any

from crypto.encoding import canonical_bytes, digest, to_hex
from crypto.identity import validate_role

INSTRUCTION_PURPOSE = "instruction"
_PURPOSE = re.compile(r"\A[a-z][a-z0-9_-]{0,31}\Z")
_ADDRESS = re.compile(r"\A0x[0-9a-fA-F]{40}\Z")


def exact_int(value: Any, field: str, low: int, high: int) -> int:
    if type(value) is not int:
        raise TypeError(f"{field}: expected an int, got {type(value).__name__} {value!r}")
    if not low <= value < high:
        raise ValueError(f"{field}: {value} outside [{low}, {high})")
    return value


def normalize_contract(value: Any) -> str:
    """``0x`` + 40 lowercase hex. Accepts 20 raw bytes or a hex address; a mixed-case address must
    carry a valid EIP-55 checksum (a typo in it would otherwise bind to a wrong contract)."""
    if isinstance(value, (bytes, bytearray)):
        if len(value) != 20:
            raise ValueError(f"contract: expected 20 bytes, got {len(value)}")
        return to_hex(value, prefix=True)
    if not isinstance(value, str) or not _ADDRESS.match(value):
        raise ValueError(f"contract: {value!r} is not a 0x-prefixed 20-byte hex address")
    body = value[2:]
    if body != body.lower() and body != body.upper():
        # lazy: crypto loads before repo-market's restart (protocol/entry.py) and eth_utils takes 0.17 s
        from eth_utils import is_checksum_address

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
        exact_int(self.chain_id, "chain_id", 1, 2**256)
        exact_int(self.round, "round", 0, 2**256)
        object.__setattr__(self, "contract", normalize_contract(self.contract))
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


def require_binding(value: Any, field: str = "binding") -> "Binding":
    if not isinstance(value, Binding):
        raise TypeError(f"{field}: expected a Binding, got {type(value).__name__}")
    return value
