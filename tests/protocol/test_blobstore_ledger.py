"""Blob store (content addressing, atomic writes, hash check on read) and the balance ledger."""
from __future__ import annotations

import hashlib

import pytest

from protocol.blobstore import BlobCorrupt, BlobError, BlobMissing, BlobStore
from protocol.ledger import (CASH_PER_UNIT, LedgerError, Transfer, first_leg_transfers, initial_ledger,
                             second_leg_transfers)


def test_put_names_blob_by_sha256_and_get_roundtrips(tmp_path):
    store = BlobStore(tmp_path / "blobs")
    digest = store.put(b"hello")
    assert digest == hashlib.sha256(b"hello").digest()
    assert (tmp_path / "blobs" / digest.hex()).read_bytes() == b"hello"
    assert store.get(digest) == b"hello"
    assert store.get("0x" + digest.hex()) == b"hello"
    assert store.put(b"hello") == digest  # idempotent
    assert sorted(p.name for p in (tmp_path / "blobs").iterdir()) == [digest.hex()]  # no temp files left


def test_get_refuses_a_flipped_byte_and_names_the_blob(tmp_path):
    store = BlobStore(tmp_path)
    digest = store.put(b"ciphertext bytes")
    path = store.path(digest)
    data = bytearray(path.read_bytes())
    data[3] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(BlobCorrupt, match=digest.hex()):
        store.get(digest)
    # put of the true content repairs it
    store.put(b"ciphertext bytes")
    assert store.get(digest) == b"ciphertext bytes"


def test_missing_and_malformed_digests(tmp_path):
    store = BlobStore(tmp_path)
    with pytest.raises(BlobMissing, match="0" * 64):
        store.get("00" * 32)
    with pytest.raises(BlobError, match="64 hex"):
        store.get("abc")
    with pytest.raises(BlobError, match="32 bytes"):
        store.get(b"\x00" * 5)
    with pytest.raises(TypeError):
        store.put("text")


def test_matched_round_conserves_and_pays_each_dealer_half_the_joint_profit():
    ledger = initial_ledger(cash_units=100, collateral_units=100)
    q, r_mm, r_rm = 15, 415, 445
    r_bd_x2 = r_mm + r_rm
    before = ledger.snapshot()
    ledger.apply_all(first_leg_transfers(q, q, q))
    ledger.check_conservation()
    # after the first leg MM holds the collateral, RM the cash
    assert ledger.balances["MM"]["collateral"] == before["MM"]["collateral"] + q
    assert ledger.balances["RM"]["cash"] == before["RM"]["cash"] + q * CASH_PER_UNIT
    ledger.apply_all(second_leg_transfers(q, q, q, r_mm, r_rm, r_bd_x2))
    ledger.check_conservation()
    after = ledger.snapshot()
    gain = {p: after[p]["cash"] - before[p]["cash"] for p in after}
    # half-bp units: J = (445-415)*15 = 450 bp·units -> each dealer 225 bp·units = 450 half-bp units
    assert gain["BDmm"] == gain["BDrm"] == 2 * 225
    assert gain["MM"] == 2 * 415 * 15 and gain["RM"] == -2 * 445 * 15
    assert all(after[p]["collateral"] == before[p]["collateral"] for p in after)


def test_unmatched_cash_costs_bdmm_its_interest():
    ledger = initial_ledger(100, 100)
    before = ledger.snapshot()
    # BDmm borrowed 20 from MM at 420 but only 15 matched at r_bd = 430
    ledger.apply_all(first_leg_transfers(20, 15, 15))
    ledger.apply_all(second_leg_transfers(20, 15, 15, 420, 445, 865))
    ledger.check_conservation()
    gain = ledger.balances["BDmm"]["cash"] - before["BDmm"]["cash"]
    assert gain == 15 * (865 - 840) - 5 * 840   # Q·(r_bd - r_mm) - (D - Q)·r_mm, in half-bp units


def test_ledger_rejects_bad_transfers_and_detects_non_conservation():
    ledger = initial_ledger(10, 10)
    with pytest.raises(LedgerError, match="'XX'"):
        ledger.apply(Transfer("cash", "XX", "MM", 1, "bad"))
    with pytest.raises(LedgerError, match="-1"):
        ledger.apply(Transfer("cash", "RM", "MM", -1, "bad"))
    with pytest.raises(LedgerError, match="gold"):
        ledger.apply(Transfer("gold", "RM", "MM", 1, "bad"))
    ledger.balances["MM"]["cash"] += 1
    with pytest.raises(LedgerError, match="not conserved"):
        ledger.check_conservation()
