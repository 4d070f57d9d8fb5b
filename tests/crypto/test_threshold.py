"""Threshold decryption in real FHE: concrete's outputs read as LWE, k-of-n opening equals concrete's decrypt.

One small circuit (two outputs: an unsigned 4-bit tensor and a signed 6-bit tensor) is compiled once with
``mono`` parameters; a second, with two lookup precisions under ``multi`` parameters, puts its outputs under
two different secret keys (partitions). The layout reader must agree with concrete's own decryption on every
value, and refuse wrong layouts loudly.
"""
from __future__ import annotations

import json
import os
import stat
from itertools import combinations

import numpy as np
import pytest

from crypto.threshold import (
    ConcreteLayoutError, DuplicateShareError, HolderFileError, InconsistentSharesError, KeyHolder,
    MalformedShareError, SlotSpentError, ThresholdParams, ThresholdSetupError, TooFewSharesError,
    TruncatedShareError, UnregisteredHolderError, WrongCiphertextError, WrongOpeningError, WrongRoundError,
    WrongSlotError, combine, deal_key, deal_slots, decode_phase, lwe_phase, read_output, read_output_encoding,
    read_secret_key, to_signed,
)
from crypto.threshold.capnp_wire import Message
from crypto.threshold.shares import ShareBlob

HOLDERS = ("key_holder_1", "key_holder_2", "key_holder_3")
INPUTS = [(np.array([0, 5, 9, 15]), np.array([7, 0, 3, 1])), (np.array([1, 2, 14, 8]), np.array([0, 7, 7, 2]))]


def _small(x, y):
    return (x * 3) % 16, x + y - 8


@pytest.fixture(scope="module")
def small_circuit():
    from concrete import fhe

    config = fhe.Configuration(parameter_selection_strategy="mono", show_progress=False)
    inputset = [(np.array([i % 16] * 4), np.array([(3 * i) % 8] * 4)) for i in range(16)]
    circuit = fhe.Compiler(_small, {"x": "encrypted", "y": "encrypted"}).compile(inputset, config)
    circuit.keys.generate(secret_seed=int.from_bytes(os.urandom(16), "big"),
                          encryption_seed=int.from_bytes(os.urandom(16), "big"))
    return circuit


@pytest.fixture(scope="module")
def keyset(small_circuit) -> bytes:
    return small_circuit.keys.serialize()


@pytest.fixture(scope="module")
def outputs(small_circuit):
    """Per input pair: the serialized output values and concrete's own decryption of each."""
    runs = []
    for x, y in INPUTS:
        result = small_circuit.server.run(*small_circuit.encrypt(x, y), evaluation_keys=small_circuit.keys.evaluation)
        clear = small_circuit.decrypt(*result)
        runs.append([(value.serialize(), np.asarray(plain)) for value, plain in zip(result, clear)])
    return runs


def _decrypt_as_lwe(value: bytes, keyset: bytes) -> np.ndarray:
    cts = read_output(value)
    m = decode_phase(lwe_phase(cts, read_secret_key(keyset, cts.encoding)), cts.encoding.width)
    return (to_signed(m, cts.encoding.width) if cts.encoding.is_signed else m).reshape(cts.encoding.shape)


# 1. concrete's bytes as LWE ------------------------------------------------------------------------------------


def test_lwe_layout_matches_concrete_decrypt_mono(small_circuit, keyset, outputs):
    info = small_circuit.client.specs.program_info.serialize()
    seen = set()
    for run in outputs:
        for index, (value, plain) in enumerate(run):
            cts = read_output(value)
            assert cts.encoding == read_output_encoding(info, output=index)  # binary capnp == concrete's JSON
            assert np.array_equal(_decrypt_as_lwe(value, keyset), plain)
            seen.add((cts.encoding.width, cts.encoding.is_signed, cts.encoding.count))
    assert seen == {(4, False, 4), (6, True, 4)}
    assert len(Message(keyset, name="keyset").segments) > 1  # the keyset spans segments: far pointers were followed
    assert any(np.any(plain < 0) for run in outputs for _, plain in run)  # the signed path is exercised


def test_lwe_layout_matches_concrete_decrypt_multi(tmp_path):
    """Two lookup precisions under ``multi``: outputs under two different keys (partitions), both read right."""
    from concrete import fhe

    def two_precisions(x, y):
        return fhe.univariate(lambda v: (v * 3) % 4)(x), fhe.univariate(lambda v: (v * 5) % 32)(y)

    config = fhe.Configuration(parameter_selection_strategy="multi", show_progress=False)
    inputset = [(np.array([i % 4] * 3), np.array([(7 * i) % 32] * 3)) for i in range(40)]
    circuit = fhe.Compiler(two_precisions, {"x": "encrypted", "y": "encrypted"}).compile(inputset, config)
    circuit.keys.generate(secret_seed=int.from_bytes(os.urandom(16), "big"))
    keys = circuit.keys.serialize()
    info = circuit.client.specs.program_info.serialize()
    assert len(json.loads(info)["keyset"]["lweSecretKeys"]) > 1
    key_ids, opened = set(), []
    for x, y in [(np.array([0, 1, 3]), np.array([7, 30, 31])), (np.array([2, 2, 1]), np.array([0, 1, 16]))]:
        result = circuit.server.run(*circuit.encrypt(x, y), evaluation_keys=circuit.keys.evaluation)
        for index, (value, plain) in enumerate(zip(result, circuit.decrypt(*result))):
            cts = read_output(value.serialize())
            assert cts.encoding == read_output_encoding(info, output=index)
            assert np.array_equal(_decrypt_as_lwe(value.serialize(), keys), plain)
            key_ids.add(cts.encoding.key_id)
            opened.append((value.serialize(), np.asarray(plain)))
    assert len(key_ids) == 2  # each output partition's own key was found and used
    # threshold opening of each partition's output, one setup per output encoding
    for index, (value, plain) in enumerate(opened[:2]):
        params = ThresholdParams.named("2of3", HOLDERS)
        dirs = {h: tmp_path / f"out{index}" / h for h in HOLDERS}
        setup = deal_key(keys, read_output(value).encoding, params, dirs)
        deal_slots(setup, dirs, [0])
        holders = {h: KeyHolder.load(dirs[h], h) for h in HOLDERS}
        _, _, result = _open(setup, holders, value, round_=0, slot=0, who=HOLDERS[1:])
        assert np.array_equal(result.values, plain)


def test_wrong_layout_fails_loudly(keyset, outputs):
    value = outputs[0][0][0]
    with pytest.raises(ConcreteLayoutError):
        read_output(value[:-8])  # truncated payload
    with pytest.raises(ConcreteLayoutError):
        read_output(value + b"\0" * 8)  # trailing bytes
    with pytest.raises(ConcreteLayoutError):
        read_output(b"\x05\0\0\0" + value[4:])  # a wrong segment count
    with pytest.raises(ConcreteLayoutError):
        read_output(keyset[:4096])  # a keyset is not an output value
    with pytest.raises(ConcreteLayoutError):
        read_output(b"{}")
    one_word = (0).to_bytes(4, "little") + (1).to_bytes(4, "little")
    with pytest.raises(ConcreteLayoutError, match="far pointer lands on another far pointer"):
        read_output(one_word + (2).to_bytes(8, "little"))  # a far pointer to itself: refused, not a loop
    with pytest.raises(ConcreteLayoutError, match="out of bounds"):
        read_output(one_word + ((5 << 2) | (1 << 32)).to_bytes(8, "little"))  # a struct beyond the segment
    encoding = read_output(value).encoding
    with pytest.raises(ConcreteLayoutError, match="key id"):
        read_secret_key(keyset, type(encoding)(99, encoding.lwe_dimension, encoding.width, False, encoding.shape))
    with pytest.raises(ConcreteLayoutError, match="dimension"):
        read_secret_key(keyset, type(encoding)(encoding.key_id, 1024, encoding.width, False, encoding.shape))
    with pytest.raises(ConcreteLayoutError):
        read_secret_key(value, encoding)  # a value is not a keyset
    with pytest.raises(ConcreteLayoutError):
        read_output_encoding(b"\x00garbage")


# 2-3. dealing and opening ---------------------------------------------------------------------------------------


def _holders(tmp_path, params):
    return {h: tmp_path / h for h in params.holders}


@pytest.fixture()
def dealt(tmp_path, keyset, outputs):
    """2-of-3 setup for the unsigned output, slots 0..3."""
    params = ThresholdParams.named("2of3", HOLDERS)
    dirs = _holders(tmp_path, params)
    setup = deal_key(keyset, read_output(outputs[0][0][0]).encoding, params, dirs)
    deal_slots(setup, dirs, range(4))
    holders = {h: KeyHolder.load(dirs[h], h, setup_digest=setup.digest()) for h in params.holders}
    return setup, dirs, holders


def _open(setup, holders, value, *, round_, slot, who):
    masks = [holders[h].mask_share(value, round=round_, slot=slot) for h in who]
    tables = [holders[h].table_share(value, masks, round=round_, slot=slot) for h in who]
    return masks, tables, combine(setup, read_output(value), masks, tables, round=round_, slot=slot)


def test_threshold_decrypt_equals_concrete_every_pair(dealt, outputs):
    setup, dirs, holders = dealt
    slot = 0
    for who in [*combinations(HOLDERS, 2), HOLDERS]:
        for run in outputs:
            value, plain = run[0]
            _, _, result = _open(setup, holders, value, round_=slot, slot=slot, who=who)
            assert np.array_equal(result.values, plain), who
            assert result.holders == tuple(sorted(who))
            slot += 1
            if slot == 4:
                deal_slots(setup, dirs, range(4, 8))
    assert slot == 8


@pytest.mark.parametrize("name", ["3of3", "2of2"])
def test_threshold_decrypt_signed_output_other_parameter_sets(tmp_path, keyset, outputs, name):
    k, n = {"3of3": (3, 3), "2of2": (2, 2)}[name]
    params = ThresholdParams.named(name, [f"key_holder_{i}" for i in range(1, n + 1)])
    dirs = _holders(tmp_path, params)
    value, plain = outputs[1][1]  # the signed 6-bit output
    setup = deal_key(keyset, read_output(value).encoding, params, dirs)
    deal_slots(setup, dirs, [7])
    holders = {h: KeyHolder.load(dirs[h], h) for h in params.holders}
    _, _, result = _open(setup, holders, value, round_=3, slot=7, who=params.holders)
    assert np.array_equal(result.values, plain) and np.any(plain < 0)


def test_files_are_private_and_bound(dealt, outputs):
    setup, dirs, _ = dealt
    for folder in dirs.values():
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
        assert stat.S_IMODE((folder / "slots").stat().st_mode) == 0o700
        for path in [folder / "threshold-key.share", *sorted((folder / "slots").glob("*.slot"))]:
            assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with pytest.raises(HolderFileError, match="another setup or holder"):
        KeyHolder.load(dirs["key_holder_1"], "key_holder_2")
    key = dirs["key_holder_1"] / "threshold-key.share"
    key.write_bytes(key.read_bytes()[:-10])
    with pytest.raises(HolderFileError, match="truncated"):
        KeyHolder.load(dirs["key_holder_1"], "key_holder_1")
    dirs["key_holder_3"].chmod(0o750)
    with pytest.raises(HolderFileError, match="needs 0700"):
        KeyHolder.load(dirs["key_holder_3"], "key_holder_3")
    dirs["key_holder_3"].chmod(0o700)
    with pytest.raises(HolderFileError, match="published"):
        KeyHolder.load(dirs["key_holder_2"], "key_holder_2", setup_digest=b"\1" * 32)
    slot_file = dirs["key_holder_2"] / "slots" / "0.slot"
    slot_file.write_bytes(slot_file.read_bytes()[:-1])
    holder_2 = KeyHolder.load(dirs["key_holder_2"], "key_holder_2")
    with pytest.raises(HolderFileError, match="truncated"):
        holder_2.mask_share(outputs[0][0][0], round=0, slot=0)
    (dirs["key_holder_2"] / "slots" / "1.slot").write_bytes((dirs["key_holder_3"] / "slots" / "1.slot").read_bytes())
    with pytest.raises(HolderFileError, match="another setup, holder or slot"):
        holder_2.mask_share(outputs[0][0][0], round=1, slot=1)
    with pytest.raises(ThresholdSetupError, match="one setup"):
        deal_key(b"", setup.encoding, setup.params, dirs)  # never overwrite a holder's shares


def test_one_holder_alone_cannot_decrypt(dealt, keyset, outputs):
    """The key shares one holder keeps sum to s − s_i: uniform, decrypting to noise, not to the message."""
    setup, dirs, holders = dealt
    value, plain = outputs[0][0]
    cts = read_output(value)
    key = read_secret_key(keyset, cts.encoding)
    for holder in holders.values():
        partial = sum(holder._key_shares.values()).astype(np.uint64)
        assert not np.array_equal(partial, key)
        assert np.count_nonzero(partial > 1) > cts.encoding.lwe_dimension // 2  # not a binary key
        guess = decode_phase(lwe_phase(cts, partial), cts.encoding.width)
        assert not np.array_equal(guess, plain)


# 3. one-time slots ------------------------------------------------------------------------------------------------


def test_slots_are_one_time(dealt, outputs):
    setup, dirs, holders = dealt
    first, second = outputs[0][0][0], outputs[1][0][0]
    h1, h2 = holders["key_holder_1"], holders["key_holder_2"]
    masks = [h1.mask_share(first, round=5, slot=0), h2.mask_share(first, round=5, slot=0)]
    assert h1.mask_share(first, round=5, slot=0) == masks[0]  # a retransmission, same bytes
    with pytest.raises(SlotSpentError, match="slot 0 is spent on round 5"):
        h1.mask_share(second, round=5, slot=0)  # another ciphertext under the same mask
    with pytest.raises(SlotSpentError, match="spent on round 5"):
        h1.mask_share(first, round=6, slot=0)
    table = h1.table_share(first, masks, round=5, slot=0)
    assert h1.table_share(first, masks, round=5, slot=0) == table  # same answer, never a second lookup
    assert not (dirs["key_holder_1"] / "slots" / "0.slot").exists()  # the slot's secrets are gone
    with pytest.raises(SlotSpentError, match="already opened"):
        h1.mask_share(first, round=5, slot=0)
    with pytest.raises(SlotSpentError, match="never dealt"):
        h1.mask_share(first, round=9, slot=99)
    with pytest.raises(ThresholdSetupError, match="one-time"):
        deal_slots(setup, dirs, [0])
    # only the output the chain authorised, and never from fewer than k mask shares
    with pytest.raises(WrongCiphertextError, match="key_holder_3 for round 6: output .* is not the authorised"):
        holders["key_holder_3"].mask_share(second, round=6, slot=1, authorised=read_output(first).digest)
    assert not (dirs["key_holder_3"] / "slots" / "1.spent").exists()  # refused before the slot was bound
    alone = holders["key_holder_3"].mask_share(second, round=6, slot=1, authorised=read_output(second).digest)
    with pytest.raises(TooFewSharesError, match="1 valid mask shares, 2 needed"):
        holders["key_holder_3"].table_share(second, [alone], round=6, slot=1)
    assert (dirs["key_holder_3"] / "slots" / "1.slot").exists()  # nothing was looked up or spent


# 4. refusals and cheating -------------------------------------------------------------------------------------------


def _resign(setup, blob: bytes, **changes) -> bytes:
    share = ShareBlob.parse(setup, blob)
    fields = {f: getattr(share, f) for f in ("kind", "setup_id", "holder", "round", "ciphertext", "slot", "opened", "values")}
    fields.update(changes)
    return ShareBlob(**fields).to_bytes()


def test_refusals_name_holder_round_and_reason(dealt, outputs):
    setup, dirs, holders = dealt
    value = outputs[0][0][0]
    cts = read_output(value)
    masks = [holders[h].mask_share(value, round=2, slot=1) for h in HOLDERS]
    tables = [holders[h].table_share(value, masks, round=2, slot=1) for h in HOLDERS[:2]]
    cases = [
        (WrongRoundError, [_resign(setup, masks[0], round=3)], "key_holder_1 for round 3: share is for round 3, not round 2"),
        (WrongCiphertextError, [_resign(setup, masks[0], ciphertext=b"\7" * 32)], "key_holder_1 for round 2: share is for ciphertext"),
        (WrongSlotError, [_resign(setup, masks[0], slot=2)], "key_holder_1 for round 2: share uses slot 2"),
        (UnregisteredHolderError, [_resign(setup, masks[0], holder="key_holder_9")], "key_holder_9 for round 2: holder 'key_holder_9' is not registered"),
        (DuplicateShareError, [masks[0], masks[0]], "key_holder_1 for round 2: a second mask share"),
        (TruncatedShareError, [masks[0][:-5]], "truncated"),
        (MalformedShareError, [tables[0]], "key_holder_1 for round 2: a table share where a mask share"),
        (MalformedShareError, [_resign(setup, masks[0], kind="table", opened=np.zeros(4, np.uint32))], "outside Z_32"),
    ]
    for error, bad, text in cases:
        with pytest.raises(error, match=text):
            combine(setup, cts, bad + masks[1:], tables, round=2, slot=1)
    with pytest.raises(TruncatedShareError, match="holder key_holder_3 for round \\?: body does not match"):
        combine(setup, cts, [masks[2][:40], *masks[:2]], tables, round=2, slot=1,
                mask_senders=["key_holder_3", "key_holder_1", "key_holder_2"])
    # non-strict: refused blobs are set aside; k valid ones still open, fewer never do
    result = combine(setup, cts, [masks[0][:-5], *masks[1:]], tables, round=2, slot=1, strict=False)
    assert np.array_equal(result.values, outputs[0][0][1]) and len(result.refused) == 1
    with pytest.raises(TooFewSharesError, match="1 valid mask shares, 2 needed"):
        combine(setup, cts, [masks[0][:-5], masks[1]], tables, round=2, slot=1, strict=False)
    with pytest.raises(TooFewSharesError, match="1 valid table shares, 2 needed"):
        combine(setup, cts, masks, tables[:1], round=2, slot=1, strict=False)
    with pytest.raises(WrongOpeningError, match="key_holder_2 for round 2"):
        combine(setup, cts, masks, [tables[0], _resign(setup, tables[1], opened=(ShareBlob.parse(setup, tables[1]).opened + 1) % 8192)],
                round=2, slot=1)


def _tamper(setup, blob, share):
    parsed = ShareBlob.parse(setup, blob)
    values = dict(parsed.values)
    values[share] = (values[share] + 1) % (1 << setup.switch_bits if parsed.kind == "mask" else setup.table_modulus)
    return _resign(setup, blob, values=values)


def test_cheating_is_detected_and_attributed_where_possible(dealt, outputs):
    setup, dirs, holders = dealt
    value = outputs[0][0][0]
    cts = read_output(value)
    masks = [holders[h].mask_share(value, round=1, slot=2) for h in HOLDERS]
    shares_1 = setup.params.shares_of("key_holder_1")  # the two shares holder 1 keeps
    # one wrong share with all three present: detected, pinned to a pair, not attributable to one holder
    with pytest.raises(InconsistentSharesError) as caught:
        combine(setup, cts, [_tamper(setup, masks[0], shares_1[0]), *masks[1:]], [], round=1, slot=2)
    assert caught.value.attributed is None and "key_holder_1" in caught.value.suspects and len(caught.value.suspects) == 2
    # both of its shares wrong: every conflict involves it, so it is attributed
    both = _tamper(setup, _tamper(setup, masks[0], shares_1[0]), shares_1[1])
    with pytest.raises(InconsistentSharesError) as caught:
        combine(setup, cts, [both, *masks[1:]], [], round=1, slot=2)
    assert caught.value.attributed == "key_holder_1"
    # an honest holder checks the shares it keeps itself, blames the other holder and gives no table share
    shares_2 = setup.params.shares_of("key_holder_2")
    common = next(j for j in shares_1 if j in shares_2)
    with pytest.raises(InconsistentSharesError) as caught:
        holders["key_holder_2"].table_share(value, [_tamper(setup, masks[0], common), masks[1]], round=1, slot=2)
    assert caught.value.attributed == "key_holder_1"
    # a wrong table share is detected when its other holder also answers
    tables = [holders[h].table_share(value, masks, round=1, slot=2) for h in HOLDERS]
    with pytest.raises(InconsistentSharesError, match="table shares inconsistent"):
        combine(setup, cts, masks, [_tamper(setup, tables[0], shares_1[0]), *tables[1:]], round=1, slot=2)
    assert np.array_equal(combine(setup, cts, masks, tables, round=1, slot=2).values, outputs[0][0][1])
    # the limit (docs/THRESHOLD.md): with only k = 2 present, the share that only the cheater of the two keeps
    # is checked by nobody, so a shifted c goes unnoticed
    unchecked = next(j for j in shares_1 if j not in shares_2)
    honest = combine(setup, cts, masks, tables, round=1, slot=2).opening.c
    from crypto.threshold import open_mask
    shifted = open_mask(setup, cts, [_tamper(setup, masks[0], unchecked), masks[1]], round=1, slot=2)
    assert not np.array_equal(shifted.c, honest)
