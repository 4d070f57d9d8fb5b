"""Canonical encoding, digests and commitments.

Every message the project hashes, signs, seals or puts on chain is first turned into bytes by
:func:`canonical_bytes`, so "the same message" always means "the same bytes" and a digest names exactly
one message.

The encoding: a small typed TLV  [decided]
-------------------------------------------
Each value is ``tag ‖ length ‖ payload``: a 1-byte ASCII tag, the payload length as an 8-byte unsigned
big-endian integer, then the payload::

    tag  type   payload
    'n'  None   empty
    'b'  bool   one byte, 0x00 (false) or 0x01 (true)
    'i'  int    ASCII decimal: "0" or an optional "-" then [1-9][0-9]*   (|value| < 2**256)
    's'  str    UTF-8
    'x'  bytes  the raw bytes
    'l'  list   the concatenated encodings of the items, in order
    'd'  dict   for each entry: encoding of the key (a str, tag 's') then encoding of the value;
                entries sorted by the key's UTF-8 bytes (bytewise ascending), keys unique

Why not canonical JSON: JSON has no bytes type (a tagged hex form ``{"$hex": ...}`` collides with a
dict that happens to have that key, so it is not injective unless such keys are banned), big integers
lose precision in common JSON parsers (> 2**53), and string escaping rules differ between libraries,
so an auditor's re-implementation would need to copy Python's ``json`` escaping exactly. The TLV has
no escaping and no number formats beyond plain decimal; it is a prefix-free code (the tag fixes the
type and the length fixes the extent), hence injective, and :func:`canonical_loads` decodes it
strictly (every non-canonical form is rejected), so ``canonical_bytes(canonical_loads(b)) == b``.
An independent implementation is about 30 lines in any language; the test-suite pins known vectors.

Only these types are allowed: ``dict`` with ``str`` keys, ``list``/``tuple`` (both encode as a list),
``str``, ``int``, ``bool``, ``None``, ``bytes``/``bytearray``. Floats are rejected (rates are
integer basis points; a float has no single decimal form), as is anything else (numpy scalars,
enums, sets): convert explicitly first. The error names the path, e.g.
``report.schedule[3]: float 1.5 not allowed``.

Digests and commitments
-----------------------
``digest(data) = SHA-256(data)`` (32 bytes, fits a Solidity/Vyper ``bytes32``).
``commitment(message, salt) = SHA-256(COMMITMENT_DOMAIN ‖ message ‖ salt)`` with a 32-byte salt
(hiding: the salt is uniformly random; binding: SHA-256 collision resistance). The domain prefix is
a fixed constant and the salt has a fixed length, so the concatenation parses uniquely; the prefix
keeps a commitment from ever equalling the plain digest of some other protocol message.
"""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from typing import Any

from common.hex import from_hex, to_hex
from crypto.errors import EncodingError

__all__ = [
    "COMMITMENT_DOMAIN",
    "SALT_SIZE",
    "canonical_bytes",
    "canonical_loads",
    "canonical_digest",
    "digest",
    "commitment",
    "verify_commitment",
    "random_salt",
    "to_hex",
    "from_hex",
    "constant_time_equal",
]

SALT_SIZE = 32
COMMITMENT_DOMAIN = b"repo-market:commitment:v1"

INT_LIMIT = 2**256  # |int| must be below this: every on-chain integer is a uint256 [decided]
MAX_DEPTH = 64  # nesting limit: no message of the protocol comes close; stops runaway recursion

_LENGTH_BYTES = 8
_TAG_NONE, _TAG_BOOL, _TAG_INT, _TAG_STR, _TAG_BYTES, _TAG_LIST, _TAG_DICT = b"nbisxld"
_INT_PATTERN = re.compile(rb"\A(0|-?[1-9][0-9]*)\Z")
_IDENTIFIER = re.compile(r"\A[A-Za-z_][A-Za-z0-9_]*\Z")


# --- encoding -------------------------------------------------------------------------------------------


def canonical_bytes(obj: Any, *, name: str = "value") -> bytes:
    """The canonical encoding of ``obj`` (see the module docstring for the format).

    ``name`` labels the root in error messages (``canonical_bytes(report, name="report")`` reports
    ``report.schedule[3]: float 1.5 not allowed``).

    Raises TypeError for a type that is not allowed and ValueError for an allowed type with a value
    that cannot be encoded (an int of 2**256 or more, a str with a lone surrogate); nothing is returned
    in part.
    """
    out = bytearray()
    _encode(obj, name, 0, out)
    return bytes(out)


def _frame(tag: int, payload: bytes | bytearray) -> bytes:
    return bytes((tag,)) + len(payload).to_bytes(_LENGTH_BYTES, "big") + bytes(payload)


def _child(path: str, key: str) -> str:
    return f"{path}.{key}" if _IDENTIFIER.match(key) else f"{path}[{key!r}]"


def _encode(obj: Any, path: str, depth: int, out: bytearray) -> None:
    if depth > MAX_DEPTH:
        raise ValueError(f"{path}: nesting deeper than {MAX_DEPTH} levels")
    kind = type(obj)  # exact types: subclasses (bool of int, enums of str/int) would be ambiguous
    if obj is None:
        out += _frame(_TAG_NONE, b"")
    elif kind is bool:
        out += _frame(_TAG_BOOL, b"\x01" if obj else b"\x00")
    elif kind is int:
        if not -INT_LIMIT < obj < INT_LIMIT:
            raise ValueError(f"{path}: int out of range (|value| must be below 2**256)")
        out += _frame(_TAG_INT, str(obj).encode("ascii"))
    elif kind is str:
        try:
            payload = obj.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(f"{path}: str is not valid Unicode (lone surrogate)") from None
        out += _frame(_TAG_STR, payload)
    elif kind is bytes or kind is bytearray:
        out += _frame(_TAG_BYTES, obj)
    elif kind is list or kind is tuple:
        inner = bytearray()
        for index, item in enumerate(obj):
            _encode(item, f"{path}[{index}]", depth + 1, inner)
        out += _frame(_TAG_LIST, inner)
    elif kind is dict:
        entries = []
        for key in obj:
            if type(key) is not str:
                raise TypeError(
                    f"{path}: dict key {key!r} ({type(key).__name__}) not allowed; keys must be str"
                )
            try:
                key_bytes = key.encode("utf-8")
            except UnicodeEncodeError:
                raise ValueError(f"{path}: dict key is not valid Unicode (lone surrogate)") from None
            entries.append((key_bytes, key))
        entries.sort()
        inner = bytearray()
        for key_bytes, key in entries:
            inner += _frame(_TAG_STR, key_bytes)
            _encode(obj[key], _child(path, key), depth + 1, inner)
        out += _frame(_TAG_DICT, inner)
    else:
        shown = repr(obj) if kind is float else f"value of type {kind.__module__}.{kind.__qualname__}"
        hint = "" if kind is float else "; convert it to int/str/bytes/list/dict first"
        kind_name = "float " if kind is float else ""
        raise TypeError(f"{path}: {kind_name}{shown} not allowed{hint}")


# --- strict decoding ------------------------------------------------------------------------------------


def canonical_loads(data: bytes, *, name: str = "data") -> Any:
    """Decode canonical bytes back into Python values (lists come back as lists, bytes as bytes).

    Strict: raises :class:`crypto.errors.EncodingError` naming ``name`` and the byte offset for
    truncated input, trailing bytes, unknown tags, non-canonical integers, invalid UTF-8, unsorted or
    duplicate dict keys, bad booleans, or nesting beyond ``MAX_DEPTH``. Never allocates more than the
    input's size.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"{name}: expected bytes, got {type(data).__name__}")
    view = bytes(data)
    value, end = _decode(view, 0, len(view), name, 0)
    if end != len(view):
        raise EncodingError(f"{name}: {len(view) - end} trailing byte(s) after the value at offset {end}")
    return value


def _decode(data: bytes, pos: int, limit: int, name: str, depth: int) -> tuple[Any, int]:
    if depth > MAX_DEPTH:
        raise EncodingError(f"{name}: nesting deeper than {MAX_DEPTH} levels at offset {pos}")
    header_end = pos + 1 + _LENGTH_BYTES
    if header_end > limit:
        raise EncodingError(f"{name}: truncated header at offset {pos}")
    tag = data[pos]
    length = int.from_bytes(data[pos + 1 : header_end], "big")
    end = header_end + length
    if end > limit:
        raise EncodingError(
            f"{name}: truncated value at offset {pos} (length {length}, only {limit - header_end} left)"
        )
    payload = data[header_end:end]
    if tag == _TAG_NONE:
        if length:
            raise EncodingError(f"{name}: None with a non-empty payload at offset {pos}")
        return None, end
    if tag == _TAG_BOOL:
        if payload not in (b"\x00", b"\x01"):
            raise EncodingError(f"{name}: bool payload must be 0x00 or 0x01 at offset {pos}")
        return payload == b"\x01", end
    if tag == _TAG_INT:
        if length > 80 or not _INT_PATTERN.match(payload):
            raise EncodingError(f"{name}: non-canonical int at offset {pos}")
        value = int(payload)
        if not -INT_LIMIT < value < INT_LIMIT:
            raise EncodingError(f"{name}: int out of range at offset {pos}")
        return value, end
    if tag == _TAG_STR:
        return _utf8(payload, name, pos), end
    if tag == _TAG_BYTES:
        return payload, end
    if tag == _TAG_LIST:
        items = []
        cursor = header_end
        while cursor < end:
            item, cursor = _decode(data, cursor, end, name, depth + 1)
            items.append(item)
        return items, end
    if tag == _TAG_DICT:
        result: dict[str, Any] = {}
        previous: bytes | None = None
        cursor = header_end
        while cursor < end:
            if data[cursor] != _TAG_STR:
                raise EncodingError(f"{name}: dict key is not a str at offset {cursor}")
            key_start = cursor
            key, cursor = _decode(data, cursor, end, name, depth + 1)
            key_bytes = key.encode("utf-8")
            if previous is not None and key_bytes <= previous:
                raise EncodingError(f"{name}: dict keys unsorted or duplicate at offset {key_start}")
            previous = key_bytes
            if cursor >= end:
                raise EncodingError(f"{name}: dict key without a value at offset {key_start}")
            result[key], cursor = _decode(data, cursor, end, name, depth + 1)
        return result, end
    raise EncodingError(f"{name}: unknown tag 0x{tag:02x} at offset {pos}")


def _utf8(payload: bytes, name: str, pos: int) -> str:
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError:
        raise EncodingError(f"{name}: invalid UTF-8 in str at offset {pos}") from None


# --- digests, commitments, salts --------------------------------------------------------------------------


def _require_bytes(value: Any, field: str) -> bytes:
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise TypeError(f"{field}: expected bytes, got {type(value).__name__}")
    return bytes(value)


def digest(data: bytes) -> bytes:
    """SHA-256 of ``data``: 32 bytes (a ``bytes32`` on chain)."""
    return hashlib.sha256(_require_bytes(data, "data")).digest()


def canonical_digest(obj: Any, *, name: str = "value") -> bytes:
    """``digest(canonical_bytes(obj))``: the digest of a structured message."""
    return digest(canonical_bytes(obj, name=name))


def random_salt() -> bytes:
    """A fresh uniformly random 32-byte salt from the OS CSPRNG.

    [decided] Salts are never derived from the run's ``--seed``: a predictable salt would let anyone
    brute-force the small report space behind a commitment.
    """
    return secrets.token_bytes(SALT_SIZE)


def commitment(message: bytes, salt: bytes) -> bytes:
    """``SHA-256(COMMITMENT_DOMAIN ‖ message ‖ salt)``, 32 bytes; ``salt`` must be 32 bytes."""
    message = _require_bytes(message, "message")
    salt = _require_bytes(salt, "salt")
    if len(salt) != SALT_SIZE:
        raise ValueError(f"salt: expected {SALT_SIZE} bytes, got {len(salt)}")
    return hashlib.sha256(COMMITMENT_DOMAIN + message + salt).digest()


def verify_commitment(message: bytes, salt: bytes, expected: bytes) -> bool:
    """Whether ``commitment(message, salt)`` equals ``expected`` (compared in constant time)."""
    return constant_time_equal(commitment(message, salt), _require_bytes(expected, "expected"))


def constant_time_equal(a: bytes, b: bytes) -> bool:
    """Compare two byte strings without an early exit (for MACs, digests of secrets, commitments)."""
    return hmac.compare_digest(_require_bytes(a, "a"), _require_bytes(b, "b"))

