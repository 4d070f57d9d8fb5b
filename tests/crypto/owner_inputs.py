"""Test helpers (not a test module): a dealer's digits encrypted under the market's compact public key, as the
import buffer an evaluator feeds the circuit, crafted buffers (byte layout: docs/OWNER_ENCRYPTION.md §5, §6),
and the TEST-ONLY market's material shared by the modules that test input proofs.

* :func:`require_node_tfhe`: called at module level, skips the module when node-tfhe is absent and CI is unset
  (with CI set it fails);
* fixtures (import them into a test module; module scope): ``allow_test_only_parameters`` (autouse),
  ``crs``, ``keys``, ``other_keys`` -- a CRS of the TEST-ONLY parameter set (seconds to make), a market's
  custodian material under it and another market's;
* :func:`reencode`: a sealed blob with some of its fields replaced.
"""
from __future__ import annotations

import os

import numpy as np
import pytest

from crypto.encoding import canonical_bytes, canonical_loads
from crypto.tfhers import (
    TEST_ONLY_FLAG,
    TEST_ONLY_PARAMETERS,
    PublicKeyMaterial,
    encrypt_unproven_digits,
    expand_unproven_digits,
    generate_crs,
    generate_public_key_material,
    node_tfhe_available,
)
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


def require_node_tfhe() -> None:
    """Skip the calling test module when node-tfhe is absent and CI is unset; with CI set, fail it."""
    if not node_tfhe_available():
        if os.environ.get("CI"):
            raise RuntimeError("CI: node-tfhe 0.10.0 (scripts/setup.sh) and node are required")
        pytest.skip("node-tfhe 0.10.0 not installed (scripts/setup.sh) and CI unset", allow_module_level=True)


@pytest.fixture(scope="module", autouse=True)
def allow_test_only_parameters():
    """The TEST-ONLY parameter set is refused unless its flag is set: set for the importing module."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(TEST_ONLY_FLAG, "1")
        yield


@pytest.fixture(scope="module")
def crs(allow_test_only_parameters) -> bytes:
    """A CRS of the TEST-ONLY parameter set: seconds (bench_owner_encryption.json, section test_only)."""
    return generate_crs(TEST_ONLY_PARAMETERS)


@pytest.fixture(scope="module")
def keys(tmp_path_factory, crs) -> PublicKeyMaterial:
    """A TEST-ONLY market's custodian material: client key, compact public key, CRS (what create_market
    publishes)."""
    return generate_public_key_material(tmp_path_factory.mktemp("test-only-custodian"), seed=7, crs=crs,
                                        parameters=TEST_ONLY_PARAMETERS)


@pytest.fixture(scope="module")
def other_keys(tmp_path_factory, crs) -> PublicKeyMaterial:
    """Another TEST-ONLY market's custodian material, under the same CRS."""
    return generate_public_key_material(tmp_path_factory.mktemp("test-only-other-custodian"), seed=8, crs=crs,
                                        parameters=TEST_ONLY_PARAMETERS)


def reencode(blob: bytes, **changes) -> bytes:
    """A sealed blob (canonical encoding) with the fields ``changes`` names replaced."""
    data = canonical_loads(blob)
    data.update(changes)
    return canonical_bytes(data)
