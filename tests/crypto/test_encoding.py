"""Canonical encoding, digests, commitments and hex helpers (crypto/encoding.py)."""
from __future__ import annotations

import hashlib
import random

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from crypto.encoding import (
    COMMITMENT_DOMAIN,
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
from crypto.errors import EncodingError

# --- an independent re-implementation, as an outside auditor would write it from the docstring -----------


def auditor_encode(value) -> bytes:
    def frame(tag: bytes, payload: bytes) -> bytes:
        return tag + len(payload).to_bytes(8, "big") + payload

    if value is None:
        return frame(b"n", b"")
    if value is True or value is False:
        return frame(b"b", bytes([int(value)]))
    if isinstance(value, int):
        return frame(b"i", b"%d" % value)
    if isinstance(value, str):
        return frame(b"s", value.encode())
    if isinstance(value, bytes):
        return frame(b"x", value)
    if isinstance(value, (list, tuple)):
        return frame(b"l", b"".join(auditor_encode(v) for v in value))
    items = sorted((k.encode(), v) for k, v in value.items())
    return frame(b"d", b"".join(frame(b"s", k) + auditor_encode(v) for k, v in items))


def typed(value):
    """A type-aware normal form: True and 1, b"a" and "a", (1,) and [1] are told apart where the
    encoding tells them apart (lists and tuples are one type by design)."""
    if value is None:
        return ("n",)
    if type(value) is bool:
        return ("b", value)
    if type(value) is int:
        return ("i", value)
    if type(value) is str:
        return ("s", value)
    if type(value) in (bytes, bytearray):
        return ("x", bytes(value))
    if type(value) in (list, tuple):
        return ("l", tuple(typed(v) for v in value))
    return ("d", tuple(sorted((k, typed(v)) for k, v in value.items())))


scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**256) + 1, max_value=2**256 - 1)
    | st.integers(min_value=-3, max_value=3)
    | st.text(max_size=12)
    | st.binary(max_size=12)
)
values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=20,
)


# --- known vectors --------------------------------------------------------------------------------------


def test_known_vectors():
    assert canonical_bytes(None) == b"n" + bytes(8)
    assert canonical_bytes(True) == b"b" + (1).to_bytes(8, "big") + b"\x01"
    assert canonical_bytes(False) == b"b" + (1).to_bytes(8, "big") + b"\x00"
    assert canonical_bytes(-45) == b"i" + (3).to_bytes(8, "big") + b"-45"
    assert canonical_bytes(0) == b"i" + (1).to_bytes(8, "big") + b"0"
    assert canonical_bytes("é") == b"s" + (2).to_bytes(8, "big") + b"\xc3\xa9"
    assert canonical_bytes(b"\x00\xff") == b"x" + (2).to_bytes(8, "big") + b"\x00\xff"
    assert canonical_bytes([1, "a"]).hex() == (
        "6c" "0000000000000014" "69" "0000000000000001" "31" "73" "0000000000000001" "61"
    )
    assert canonical_bytes({"b": 1, "a": None}).hex() == (
        "64" "0000000000000027"
        "73" "0000000000000001" "61" "6e" "0000000000000000"
        "73" "0000000000000001" "62" "69" "0000000000000001" "31"
    )


def test_dict_keys_sorted_by_utf8_bytes_not_by_insertion():
    # "Z" (0x5a) < "a" (0x61) < "é" (0xc3 0xa9): bytewise order of the UTF-8 encodings.
    one = canonical_bytes({"é": 1, "a": 2, "Z": 3})
    two = canonical_bytes({"Z": 3, "a": 2, "é": 1})
    assert one == two
    assert one.index(b"Z") < one.index(b"a") < one.index("é".encode())


@given(values)
def test_matches_independent_reimplementation(value):
    assert canonical_bytes(value) == auditor_encode(value)


@given(values)
def test_round_trip_and_canonical_decoding(value):
    encoded = canonical_bytes(value)
    decoded = canonical_loads(encoded)
    assert typed(decoded) == typed(value)
    assert canonical_bytes(decoded) == encoded


@given(values, values)
def test_injective(first, second):
    if typed(first) != typed(second):
        assert canonical_bytes(first) != canonical_bytes(second)
    else:
        assert canonical_bytes(first) == canonical_bytes(second)


@given(st.dictionaries(st.text(max_size=5), st.integers(), max_size=8), st.randoms())
def test_deterministic_under_key_order(mapping, rng):
    keys = list(mapping)
    rng.shuffle(keys)
    assert canonical_bytes({k: mapping[k] for k in keys}) == canonical_bytes(mapping)


@pytest.mark.parametrize(
    "first, second",
    [(True, 1), (False, 0), (b"a", "a"), ([], {}), (None, []), ("1", 1), ([[1], 2], [[1, 2]]), ({"a": [1]}, {"a": 1})],
)
def test_distinct_types_give_distinct_bytes(first, second):
    assert canonical_bytes(first) != canonical_bytes(second)


def test_tuples_encode_as_lists_and_bytearray_as_bytes():
    assert canonical_bytes((1, 2)) == canonical_bytes([1, 2])
    assert canonical_bytes(bytearray(b"ab")) == canonical_bytes(b"ab")


# --- rejections (encoding) ------------------------------------------------------------------------------


def test_float_rejected_with_path():
    report = {"schedule": [1, 2, 3, 1.5], "hurdle": 3}
    with pytest.raises(TypeError) as info:
        canonical_bytes(report, name="report")
    assert str(info.value) == "report.schedule[3]: float 1.5 not allowed"


@pytest.mark.parametrize(
    "value, fragment",
    [
        ({"a b": {"c": [0.0]}}, "value['a b'].c[0]: float 0.0 not allowed"),
        ([np.int64(3)], "value[0]: value of type numpy.int64 not allowed"),
        ([np.float64(2.0)], "value[0]: value of type numpy.float64 not allowed"),
        ({1: 2}, "value: dict key 1 (int) not allowed"),
        ({"s": {1, 2}}, "value.s: value of type builtins.set not allowed"),
        (float("nan"), "value: float nan not allowed"),
    ],
)
def test_other_types_rejected_with_path(value, fragment):
    with pytest.raises(TypeError) as info:
        canonical_bytes(value)
    assert fragment in str(info.value)


def test_subclasses_of_allowed_types_rejected():
    import enum

    class Mode(str, enum.Enum):
        MARGIN = "margin"

    with pytest.raises(TypeError, match="Mode"):
        canonical_bytes({"mode": Mode.MARGIN})
    assert canonical_bytes({"mode": Mode.MARGIN.value}) == canonical_bytes({"mode": "margin"})


@pytest.mark.parametrize("value", [2**256, -(2**256), 10**100])
def test_ints_beyond_uint256_rejected(value):
    with pytest.raises(ValueError, match=r"value\[0\]: int out of range"):
        canonical_bytes([value])


def test_lone_surrogate_rejected():
    with pytest.raises(ValueError, match=r"value.k: str is not valid Unicode"):
        canonical_bytes({"k": "\ud800"})


def test_nesting_limit():
    deep = []
    for _ in range(100):
        deep = [deep]
    with pytest.raises(ValueError, match="nesting deeper"):
        canonical_bytes(deep)


# --- rejections (strict decoding) -----------------------------------------------------------------------


def frame(tag: bytes, payload: bytes) -> bytes:
    return tag + len(payload).to_bytes(8, "big") + payload


@pytest.mark.parametrize(
    "data, fragment",
    [
        (frame(b"i", b"007"), "non-canonical int"),
        (frame(b"i", b"-0"), "non-canonical int"),
        (frame(b"i", b"+5"), "non-canonical int"),
        (frame(b"i", b" 5"), "non-canonical int"),
        (frame(b"i", b""), "non-canonical int"),
        (frame(b"i", str(2**256).encode()), "int out of range"),
        (frame(b"b", b"\x02"), "bool payload"),
        (frame(b"b", b""), "bool payload"),
        (frame(b"n", b"\x00"), "None with a non-empty payload"),
        (frame(b"s", b"\xff"), "invalid UTF-8"),
        (frame(b"f", b""), "unknown tag 0x66"),
        (frame(b"d", frame(b"s", b"b") + frame(b"n", b"") + frame(b"s", b"a") + frame(b"n", b"")), "unsorted"),
        (frame(b"d", frame(b"s", b"a") + frame(b"n", b"") + frame(b"s", b"a") + frame(b"n", b"")), "duplicate"),
        (frame(b"d", frame(b"i", b"1") + frame(b"n", b"")), "dict key is not a str"),
        (frame(b"d", frame(b"s", b"a")), "dict key without a value"),
        (canonical_bytes(1) + b"\x00", "1 trailing byte"),
        (b"i" + (2**63).to_bytes(8, "big") + b"1", "truncated value"),
        (b"", "truncated header"),
    ],
)
def test_strict_decoder_rejects_non_canonical(data, fragment):
    with pytest.raises(EncodingError, match=fragment):
        canonical_loads(data)


def test_every_truncation_rejected():
    encoded = canonical_bytes({"schedule": [0, 5, 10], "hurdle": 7, "salt": bytes(32), "role": "dealer_mm"})
    for cut in range(len(encoded)):
        with pytest.raises(EncodingError):
            canonical_loads(encoded[:cut])


def test_random_garbage_never_escapes_as_another_exception():
    rng = random.Random(7)
    base = canonical_bytes({"a": [1, b"xy", None, True, {"k": "v"}]})
    for _ in range(2000):
        mutated = bytearray(base)
        mutated[rng.randrange(len(mutated))] = rng.randrange(256)
        try:
            canonical_loads(bytes(mutated))
        except EncodingError:
            pass


def test_loads_requires_bytes():
    with pytest.raises(TypeError, match="expected bytes"):
        canonical_loads("n")


# --- digests, commitments, salts, hex -------------------------------------------------------------------


def test_digest_is_sha256():
    assert digest(b"abc") == hashlib.sha256(b"abc").digest()
    assert len(digest(b"")) == 32
    assert canonical_digest({"a": 1}) == hashlib.sha256(canonical_bytes({"a": 1})).digest()
    with pytest.raises(TypeError, match="data: expected bytes"):
        digest("abc")


def test_commitment_definition_and_domain_separation():
    message, salt = b"report", bytes(range(32))
    expected = hashlib.sha256(b"repo-market:commitment:v1" + message + salt).digest()
    assert COMMITMENT_DOMAIN == b"repo-market:commitment:v1"
    assert commitment(message, salt) == expected
    assert commitment(message, salt) != digest(message + salt)
    assert verify_commitment(message, salt, expected)
    assert not verify_commitment(b"repore", salt, expected)
    assert not verify_commitment(message, bytes(32), expected)


def test_commitment_hides_behind_distinct_salts():
    salts = {random_salt() for _ in range(50)}
    assert len(salts) == 50 and all(len(s) == 32 for s in salts)
    assert len({commitment(b"same", s) for s in salts}) == 50


@pytest.mark.parametrize("salt", [b"", bytes(31), bytes(33)])
def test_commitment_salt_length(salt):
    with pytest.raises(ValueError, match=f"salt: expected 32 bytes, got {len(salt)}"):
        commitment(b"m", salt)


def test_constant_time_equal():
    assert constant_time_equal(b"abc", b"abc")
    assert not constant_time_equal(b"abc", b"abd")
    assert not constant_time_equal(b"abc", b"ab")


def test_hex_helpers():
    data = bytes(range(20))
    assert to_hex(data) == data.hex()
    assert to_hex(data, prefix=True) == "0x" + data.hex()
    assert from_hex(to_hex(data, prefix=True)) == data
    assert from_hex(data.hex().upper(), length=20) == data
    with pytest.raises(ValueError, match=r"contract: expected 32 bytes, got 20"):
        from_hex(data.hex(), name="contract", length=32)
    with pytest.raises(ValueError, match=r"digest: not a hex string: '0xzz'"):
        from_hex("0xzz", name="digest")
    with pytest.raises(ValueError, match=r"not a hex string"):
        from_hex("abc")
