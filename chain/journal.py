"""The embedded chain's journal: the signed raw transactions and explicit mines, in order.

py-evm keeps its state in memory, so the embedded chain persists as this append-only log and is
rebuilt by replaying it. eth-tester mines each transaction in its own block and contracts count
deadlines in blocks, so a replay reaches the same block numbers, transaction hashes, contract
addresses and decisions (block timestamps and hashes differ; nothing here depends on them).

One JSON object per line:
    {"op": "tx", "raw": "0x…", "hash": "0x…", "block": 12}
    {"op": "mine", "n": 5, "block": 17}
``block`` is the head after the entry, checked on replay. Writers hold an exclusive ``flock`` on
``journal.lock`` and first replay what other processes appended, so several processes can share one
data directory, one at a time per write. snapshot.py spares reopening a long journal.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
from pathlib import Path
from typing import Iterator

from common import strict_json

from .errors import JournalError
from .paths import JOURNAL_FILE, JOURNAL_LOCK_FILE


class Journal:
    """``read_only``: an auditor's view -- nothing is created, locked or appended (the directory may be
    read-only); a line still being written by another process is not read yet (see ``unread``)."""

    def __init__(self, directory: Path, *, read_only: bool = False) -> None:
        self.directory = Path(directory)
        self.read_only = read_only
        if not read_only:
            self.directory.mkdir(parents=True, exist_ok=True)
        self.path = self.directory / JOURNAL_FILE
        self._lock_path = self.directory / JOURNAL_LOCK_FILE
        self.offset = 0  # bytes of the journal already applied by this process
        self.entries_applied = 0

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        if self.read_only:
            yield
            return
        with open(self._lock_path, "a") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)

    def size(self) -> int:
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    def unread(self) -> list[dict]:
        """Entries appended since ``offset`` (by this or another process); advances ``offset``."""
        if self.size() <= self.offset:
            return []
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            data = f.read()
        # A line without its newline is a write cut short by a crash: it never happened.
        complete = data[: data.rfind(b"\n") + 1]
        entries = []
        for number, line in enumerate(complete.splitlines(), start=self.entries_applied + 1):
            try:
                entries.append(strict_json.loads(line))
            except (json.JSONDecodeError, strict_json.JsonInputError) as exc:
                raise JournalError(f"{self.path}: entry {number} is not JSON: {exc}") from None
        self.offset += len(complete)
        self.entries_applied += len(entries)
        return entries

    def append(self, entry: dict) -> None:
        """Append one entry durably (write, flush, fsync). Caller holds ``locked()``."""
        if self.read_only:
            raise JournalError(f"{self.path}: opened read-only (an auditor's view); nothing may be appended")
        line = (json.dumps(entry, separators=(",", ":"), sort_keys=True) + "\n").encode()
        with open(self.path, "r+b" if self.path.exists() else "w+b") as f:
            f.seek(self.offset)
            tail = f.read()
            if b"\n" in tail:
                raise JournalError(f"{self.path} has entries not replayed (expected {self.offset} bytes)")
            if tail:  # a write torn by a crash: it never happened
                f.truncate(self.offset)
            f.seek(self.offset)
            f.write(line)
            f.flush()
            os.fsync(f.fileno())
        self.offset += len(line)
        self.entries_applied += 1
