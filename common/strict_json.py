"""JSON as the project reads it: one meaning per document.

Every JSON the project reads from a file, a user or another process goes through :func:`loads`:

* a key repeated in one object is refused (``json.loads`` would silently keep the last one, so two readers
  of the same bytes could disagree about what they say);
* an integer longer than ``MAX_INT_DIGITS`` digits is refused by name (Python's own limit would raise a
  ``ValueError`` that names neither the value nor the file).

Errors are :class:`JsonInputError` (a ``ValueError``) whose message names the key or the value;
``json.JSONDecodeError`` passes through unchanged for text that is not JSON at all.
"""
from __future__ import annotations

import json

__all__ = ["JsonInputError", "MAX_INT_DIGITS", "loads"]

MAX_INT_DIGITS = 1000  # [decided] far above any integer the project stores (uint256: 78 digits)


class JsonInputError(ValueError):
    """A JSON document with a repeated key or an over-long integer; the message names it."""


def _unique_keys(pairs: list[tuple[str, object]]) -> dict:
    out: dict = {}
    for key, value in pairs:
        if key in out:
            raise JsonInputError(f"duplicate key {key!r} in one JSON object")
        out[key] = value
    return out


def _bounded_int(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > MAX_INT_DIGITS:
        raise JsonInputError(f"an integer of {digits} digits ({text[:20]}...); at most {MAX_INT_DIGITS} digits")
    return int(text)


def loads(text: str | bytes | bytearray):
    """``json.loads`` that refuses repeated keys and over-long integers (see the module docstring)."""
    return json.loads(text, object_pairs_hook=_unique_keys, parse_int=_bounded_int)
