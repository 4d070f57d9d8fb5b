"""Decoded contract events and an index that never scans long block ranges.

Embedded backend: every receipt (sent here or replayed from the journal) feeds the index, so
queries never call ``eth_getLogs`` (slow on eth-tester).
JSON-RPC backend: the index catches up with ``eth_getLogs`` in windows of ``WINDOW`` blocks from
the last block it scanned, and persists what it found (``data_dir/chain/index/``), so a later
process starts where the previous one stopped. A different genesis or a changed block hash at the
scanned head (node reset) discards the persisted index.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from eth_utils import event_abi_to_log_topic, to_checksum_address
from web3._utils.events import get_event_data

from common import strict_json
from common.hex import hex0x

from ._io import write_atomic

WINDOW = 2_000


@dataclass(frozen=True)
class EventRecord:
    """One decoded log. ``args`` holds ints, bools, checksum addresses and ``bytes`` (bytes32)."""

    address: str
    name: str
    args: dict
    block_number: int
    tx_hash: str
    log_index: int

    def as_dict(self) -> dict:
        return {
            "address": self.address,
            "name": self.name,
            "args": {k: ("0x" + v.hex()) if isinstance(v, bytes) else v for k, v in self.args.items()},
            "block_number": self.block_number,
            "tx_hash": self.tx_hash,
            "log_index": self.log_index,
        }


def raw_log(log: Any) -> dict:
    """A log as plain JSON-able data (topics and data as 0x hex)."""
    return {
        "address": to_checksum_address(log["address"]),
        "topics": [hex0x(t) for t in log["topics"]],
        "data": hex0x(log["data"]),
        "block_number": int(log["blockNumber"]),
        "tx_hash": hex0x(log["transactionHash"]),
        "log_index": int(log["logIndex"]),
    }


class EventDecoder:
    """Decodes raw logs of one ABI by topic0."""

    def __init__(self, codec, abi: Iterable[dict]) -> None:
        self._codec = codec
        self._by_topic = {
            "0x" + event_abi_to_log_topic(item).hex(): item for item in abi if item.get("type") == "event"
        }

    def decode(self, log: dict) -> EventRecord | None:
        item = self._by_topic.get(log["topics"][0]) if log["topics"] else None
        if item is None:
            return None
        web3_log = {
            "address": log["address"],
            "topics": [bytes.fromhex(t[2:]) for t in log["topics"]],
            "data": bytes.fromhex(log["data"][2:]),
            "blockNumber": log["block_number"],
            "transactionHash": bytes.fromhex(log["tx_hash"][2:]),
            "logIndex": log["log_index"],
            "transactionIndex": 0,
            "blockHash": b"\x00" * 32,
        }
        data = get_event_data(self._codec, item, web3_log)
        return EventRecord(
            address=log["address"],
            name=data["event"],
            args=dict(data["args"]),
            block_number=log["block_number"],
            tx_hash=log["tx_hash"],
            log_index=log["log_index"],
        )


class EventIndex:
    """Raw logs per contract address, in chain order."""

    def __init__(self, persist_dir: Path | None = None) -> None:
        self._logs: dict[str, list[dict]] = {}
        self._scanned: dict[str, tuple[int, str]] = {}  # address -> (last scanned block, its hash)
        self._persist_dir = persist_dir

    # --- fed from receipts (embedded backend)
    def ingest(self, logs: Iterable[Any]) -> None:
        for log in logs:
            entry = raw_log(log)
            self._logs.setdefault(entry["address"], []).append(entry)

    def dump(self) -> dict[str, list[dict]]:
        """All raw logs (for an embedded-chain snapshot)."""
        return {address: list(logs) for address, logs in self._logs.items()}

    def restore(self, logs: dict[str, list[dict]]) -> None:
        self._logs = {address: list(entries) for address, entries in logs.items()}

    def logs(self, address: str) -> list[dict]:
        return list(self._logs.get(to_checksum_address(address), ()))

    # --- windowed catch-up (JSON-RPC backend)
    def catch_up(self, w3, address: str, genesis_hash: str) -> None:
        address = to_checksum_address(address)
        if address not in self._scanned:
            self._load(address, genesis_hash)
        head = w3.eth.block_number
        last, last_hash = self._scanned.get(address, (-1, ""))
        if last >= 0:
            if last > head or hex0x(w3.eth.get_block(last)["hash"]) != last_hash:
                self._logs[address], last = [], -1  # node was reset: rescan
        if last >= head:
            return
        found = self._logs.setdefault(address, [])
        start = last + 1
        while start <= head:
            stop = min(start + WINDOW - 1, head)
            for log in w3.eth.get_logs({"address": address, "fromBlock": start, "toBlock": stop}):
                found.append(raw_log(log))
            start = stop + 1
        self._scanned[address] = (head, hex0x(w3.eth.get_block(head)["hash"]))
        self._save(address, genesis_hash)

    def _file(self, address: str, genesis_hash: str) -> Path | None:
        if self._persist_dir is None:
            return None
        return self._persist_dir / f"{genesis_hash[2:18]}-{address}.json"

    def _load(self, address: str, genesis_hash: str) -> None:
        path = self._file(address, genesis_hash)
        if path is None or not path.is_file():
            return
        data = strict_json.loads(path.read_text())
        self._logs[address] = data["logs"]
        self._scanned[address] = (data["scanned_to"], data["scanned_hash"])

    def _save(self, address: str, genesis_hash: str) -> None:
        path = self._file(address, genesis_hash)
        if path is None:
            return
        last, last_hash = self._scanned[address]
        text = json.dumps({"scanned_to": last, "scanned_hash": last_hash, "logs": self._logs[address]})
        write_atomic(path, text.encode())
