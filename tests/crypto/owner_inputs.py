"""Test helpers (not a test module): a dealer's digits encrypted under the market's compact public key, as the
import buffer an evaluator feeds the circuit, and crafted buffers (byte layout: docs/OWNER_ENCRYPTION.md §5, §6)."""
from __future__ import annotations

import numpy as np

from crypto.tfhers import encrypt_unproven_digits, expand_unproven_digits
from crypto.tfhers.owner_encryption import LWE_SIZE, _TRAILER

DELTA = 2**58  # one packed digit's step in the 64-bit phase (message 4 x carry 8, padding bit 2**63)
_VALUE_BYTES = 16 + 8 * LWE_SIZE + _TRAILER  # per value: block count, LWE size, the LWE words, FheUint2 fields


def import_buffer(public_key: bytes, digits) -> bytes:
    """What a dealer publishes, opened by an evaluator: an unproven compact list of ``digits``, expanded."""
    digits = [int(d) for d in digits]
    return expand_unproven_digits(encrypt_unproven_digits(public_key, digits), len(digits))


def _words(buffer: bytearray, index: int) -> np.ndarray:
    offset = 8 + index * _VALUE_BYTES + 16
    return np.frombuffer(buffer, dtype="<u8", count=LWE_SIZE, offset=offset)


def add_to_bodies(buffer: bytes, shifts: dict[int, int]) -> bytes:
    """``buffer`` with ``shifts[k]`` (mod 2**64) added to the body of LWE k: the phase moves by it, e.g.
    ``16 * DELTA`` (a digit 16 above), ``2**63`` (the padding bit)."""
    out = bytearray(buffer)
    for k, shift in shifts.items():
        words = _words(out, k).copy()
        words[-1] = (int(words[-1]) + shift) % 2**64
        offset = 8 + k * _VALUE_BYTES + 16
        out[offset : offset + 8 * LWE_SIZE] = words.astype("<u8").tobytes()
    return bytes(out)


def replace_lwes(buffer: bytes, make) -> bytes:
    """Every LWE replaced by ``make(k) -> (mask words, body)`` with the structure (counts, trailers) kept."""
    out = bytearray(buffer)
    count = int.from_bytes(out[:8], "little")
    for k in range(count):
        mask, body = make(k)
        words = np.append(np.asarray(mask, dtype=np.uint64), np.uint64(body))
        offset = 8 + k * _VALUE_BYTES + 16
        out[offset : offset + 8 * LWE_SIZE] = words.astype("<u8").tobytes()
    return bytes(out)
