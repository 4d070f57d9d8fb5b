"""Snapshots of the embedded chain, so reopening does not replay the whole journal.

Replaying re-executes every transaction (``bench-results/bench_chain.json`` ``embedded_reopen``: a
full replay against a reopen from the snapshot); a snapshot is py-evm's in-memory key-value store (state
tries, blocks, receipts) plus the event index, taken at a journal offset. Opening loads the latest
snapshot, makes its head block canonical, and replays only the journal entries after it; the usual
per-entry checks (transaction hash, block number) then confirm the restored chain continues the
journal exactly. Any failure to load falls back to a full replay: a snapshot is an optimisation, the
journal stays the record. [decided]

File ``data_dir/chain/snapshot.bin``: one JSON header line (offset, entries, head block number and
hash, seed, event index), then records ``len(key) (4 bytes BE) ‖ len(value) (4 bytes BE) ‖ key ‖ value``.
No pickle: loading never executes code from the data directory.
"""
from __future__ import annotations

import json
import struct
from pathlib import Path

from common import strict_json

from ._io import write_atomic
from .paths import SNAPSHOT_FILE

SNAPSHOT_EVERY = 100  # journal entries replayed beyond the last snapshot before a new one is written
_RECORD = struct.Struct(">II")


def snapshot_path(chain_dir: Path) -> Path:
    return Path(chain_dir) / SNAPSHOT_FILE


def save_snapshot(path: Path, w3, *, offset: int, entries: int, seed: int, index_logs: dict) -> None:
    """Write the embedded chain's database at journal ``offset`` (caller holds the journal lock)."""
    backend = w3.provider.ethereum_tester.backend
    store = backend.chain.chaindb.db.wrapped_db.kv_store
    latest = w3.eth.get_block("latest")
    header = {"version": 1, "offset": offset, "entries": entries, "block": int(latest["number"]),
              "hash": "0x" + bytes(latest["hash"]).hex(), "seed": seed, "logs": index_logs}
    parts = [json.dumps(header, separators=(",", ":")).encode(), b"\n"]
    for key, value in store.items():
        parts += [_RECORD.pack(len(key), len(value)), key, value]
    write_atomic(path, b"".join(parts))


def load_snapshot(path: Path, w3, seed: int) -> dict:
    """Load a snapshot into a fresh embedded chain; returns its header. Raises on any inconsistency."""
    from eth_tester.backends.pyevm.main import GENESIS_PARENT_HASH

    data = Path(path).read_bytes()
    newline = data.index(b"\n")
    header = strict_json.loads(data[:newline])
    if header.get("version") != 1 or header.get("seed") != seed:
        raise ValueError(f"snapshot {path} is for another format or seed")
    backend = w3.provider.ethereum_tester.backend
    db = backend.chain.chaindb.db
    pos = newline + 1
    while pos < len(data):
        key_len, value_len = _RECORD.unpack_from(data, pos)
        pos += _RECORD.size
        key = data[pos : pos + key_len]
        pos += key_len
        value = data[pos : pos + value_len]
        pos += value_len
        if len(value) != value_len:
            raise ValueError(f"snapshot {path} is truncated")
        db[key] = value
    block = backend.chain.get_block_by_hash(bytes.fromhex(header["hash"][2:]))
    backend.chain.chaindb._set_as_canonical_chain_head(db, block.header, GENESIS_PARENT_HASH)
    backend.chain.import_block(block)  # makes it the head and builds the pending block on top
    latest = w3.eth.get_block("latest")
    if int(latest["number"]) != header["block"] or "0x" + bytes(latest["hash"]).hex() != header["hash"]:
        raise ValueError(f"snapshot {path} did not restore its head block")
    return header
