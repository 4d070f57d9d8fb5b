"""Hex text of bytes and back: lowercase, with or without ``0x`` (the chain's form)."""
from __future__ import annotations

import re
from typing import Any

__all__ = ["to_hex", "from_hex", "hex0x"]

_HEX = re.compile(r"\A[0-9a-fA-F]*\Z")


def to_hex(data: bytes, *, prefix: bool = False) -> str:
    """Lowercase hex of ``data``; ``prefix=True`` adds ``0x`` (the form the chain layer uses)."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"data: expected bytes, got {type(data).__name__}")
    text = bytes(data).hex()
    return "0x" + text if prefix else text


def from_hex(text: str, *, name: str = "value", length: int | None = None) -> bytes:
    """Parse hex (optional ``0x`` prefix, either case); ``length`` checks the byte count.

    Errors name ``name`` and show the value (only call this on public data: digests, public keys,
    addresses; a secret never travels as hex).
    """
    if not isinstance(text, str):
        raise TypeError(f"{name}: expected a hex str, got {type(text).__name__}")
    body = text[2:] if text[:2] in ("0x", "0X") else text
    if len(body) % 2 or not _HEX.match(body):
        raise ValueError(f"{name}: not a hex string: {text!r}")
    data = bytes.fromhex(body)
    if length is not None and len(data) != length:
        raise ValueError(f"{name}: expected {length} bytes, got {len(data)} ({text!r})")
    return data


def hex0x(value: Any) -> str:
    """``0x``-prefixed lowercase hex of bytes, HexBytes or an already-hex string."""
    if isinstance(value, (bytes, bytearray)):
        return to_hex(value, prefix=True)
    if hasattr(value, "to_0x_hex"):
        return value.to_0x_hex()
    text = str(value)
    return text if text.startswith("0x") else "0x" + text
