"""Small helpers shared by the chain package: crash-safe file writes, 0x-hex rendering, strict JSON."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a crash leaves either the old file or the new one:
    temp file in the same directory, fsync, rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.filename is None:  # a full disk (ENOSPC, EFBIG) names no file
            raise OSError(exc.errno, exc.strerror, str(path)) from None
        raise


def hex0x(value: Any) -> str:
    """``0x``-prefixed lowercase hex of bytes, HexBytes or an already-hex string."""
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    if hasattr(value, "to_0x_hex"):
        return value.to_0x_hex()
    text = str(value)
    return text if text.startswith("0x") else "0x" + text


# The chain package imports nothing of the project, so it keeps its own copy of market/strict_json.py's
# rules (tests/protocol/test_bad_input_catalogue.py checks that the two refuse the same documents alike).
MAX_JSON_INT_DIGITS = 1000


class JsonInputError(ValueError):
    """A JSON document with a repeated key or an over-long integer; the message names it."""


def _unique_keys(pairs):
    out: dict = {}
    for key, value in pairs:
        if key in out:
            raise JsonInputError(f"duplicate key {key!r} in one JSON object")
        out[key] = value
    return out


def _bounded_int(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > MAX_JSON_INT_DIGITS:
        raise JsonInputError(f"an integer of {digits} digits ({text[:20]}...); at most {MAX_JSON_INT_DIGITS} digits")
    return int(text)


def loads_json(text):
    """``json.loads`` that refuses repeated keys and over-long integers."""
    return json.loads(text, object_pairs_hook=_unique_keys, parse_int=_bounded_int)
