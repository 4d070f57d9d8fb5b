"""Layout of a market's data directory -- one place that names every path.

```
<data-dir>/
  market.json                 public market descriptor: contract, chain, terms, role public keys, backend
  blobs/<sha256 hex>          content-addressed public blobs (blobstore.BlobStore)
  chain/                      embedded chain state (chain.connect; absent with --rpc)
  cache/                      compiled circuit artefacts, keyed by the terms digest (public)
  roles/<role>/               each role's private folder: its identity keys, its private inputs, its inbox
                              (secret FHE keys only under roles/custodian/)
  transcripts/round-<n>.json  public transcript of round n: digests, gas, timings (rebuildable from chain+blobs)
  report.json, plots/*.png    the demo's public report (no private inputs)
  private/report.json         the demo's narrator view (true schedules, hurdles, theta), 0600 in a 0700 folder
  writer.lock                 the exclusive lock of the one process writing here (pid inside)
```
A role object is given its own folder and the public parts only; it never opens another role's folder.
The auditor (``verify``) reads ``market.json``, ``blobs/``, ``cache/`` and the chain -- never ``roles/``.
"""
from __future__ import annotations

import errno
import json
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from protocol.blobstore import atomic_write

__all__ = ["DataDir", "ROLE_NAMES", "DEALER_ROLES", "CLIENT_ROLES", "read_json", "write_json", "DataDirLocked",
           "DataDirError", "data_dir_lock", "LOCK_NAME", "check_market_file"]

LOCK_NAME = "writer.lock"

# Role names are the ones crypto/ (identity, envelope bindings) and chain/ (accounts) use.
DEALER_ROLES = ("dealer_mm", "dealer_rm")
CLIENT_ROLES = ("client_mm", "client_rm")
ROLE_NAMES = ("custodian", *DEALER_ROLES, *CLIENT_ROLES)  # evaluators: "evaluator_<i>" (chain.evaluator_role)


def write_json(path: Path, obj, mode: int = 0o644) -> None:
    atomic_write(Path(path), (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode(), mode)


def read_json(path: Path):
    return json.loads(Path(path).read_text())


class DataDirError(Exception):
    """The data directory cannot be used (not a directory, not writable); the message names it."""


class DataDirLocked(DataDirError):
    """Another process holds the data directory's writer lock; the message names the directory and its pid."""


MARKET_KEYS = ("format", "backend", "chain", "contract", "terms", "addresses", "identities", "evaluators")


def check_market_file(root: Path) -> None:
    """If ``root/market.json`` exists it must be a UTF-8 JSON object with the descriptor's keys; else a
    DataDirError naming the file (checked before a command opens or reuses the market)."""
    path = Path(root) / "market.json"
    if not path.is_file():
        return
    try:
        doc = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise DataDirError(f"--data-dir {root}: {path} is not a market descriptor "
                           f"({type(exc).__name__}: {' '.join(str(exc).split())[:200]})") from None
    if not isinstance(doc, dict):
        raise DataDirError(f"--data-dir {root}: {path} is not a market descriptor (a JSON {type(doc).__name__})")
    missing = [k for k in MARKET_KEYS if k not in doc]
    if missing:
        raise DataDirError(f"--data-dir {root}: {path} is not a market descriptor (missing {', '.join(missing)})")


@contextmanager
def data_dir_lock(root: Path, command: str = "command"):
    """Hold the exclusive writer lock of ``root`` (``fcntl.flock`` on ``root/writer.lock``) while the block runs.

    Taken before anything else is created there; a second writer fails at once (no waiting) with the
    holder's pid. Readers (verify) take no lock. If ``root`` did not exist and the block fails having
    created nothing but the lock file, the directory is removed again: a command that wrote nothing (a
    refused one, or one that did not need the data directory after all) leaves no trace.
    """
    import fcntl

    root = Path(root)
    if root.exists() and not root.is_dir():
        raise DataDirError(f"--data-dir {root}: exists and is not a directory")
    created = not root.exists()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataDirError(f"--data-dir {root}: cannot create it ({exc.strerror})") from None
    path = root / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise DataDirError(f"--data-dir {root}: cannot open its lock file {path} ({exc.strerror})") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "unknown"
            raise DataDirLocked(f"--data-dir {root}: another repo-market process is writing here "
                                f"({holder}); wait for it to finish or use another --data-dir") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} ({command})\n".encode(), 0)
        try:
            yield
        finally:
            if created and {p.name for p in root.iterdir()} <= {LOCK_NAME}:
                path.unlink(missing_ok=True)
                root.rmdir()
    finally:
        os.close(fd)


@dataclass(frozen=True)
class DataDir:
    root: Path

    @property
    def market_file(self) -> Path:
        return self.root / "market.json"

    @property
    def blobs(self) -> Path:
        return self.root / "blobs"

    @property
    def cache(self) -> Path:
        return self.root / "cache"

    @property
    def transcripts(self) -> Path:
        return self.root / "transcripts"

    @property
    def plots(self) -> Path:
        return self.root / "plots"

    @property
    def report_file(self) -> Path:
        return self.root / "report.json"

    @property
    def private_report_file(self) -> Path:
        """The narrator's view of the demo (private inputs), 0600 in a 0700 folder."""
        folder = self.root / "private"
        folder.mkdir(mode=0o700, exist_ok=True)
        os.chmod(folder, 0o700)
        return folder / "report.json"

    def role(self, name: str) -> Path:
        """The private folder of a role, created 0700 (it holds key files)."""
        path = self.root / "roles" / name
        path.mkdir(parents=True, exist_ok=True)
        os.chmod(path, 0o700)
        return path

    def inbox(self, name: str) -> Path:
        path = self.role(name) / "inbox"
        path.mkdir(exist_ok=True)
        return path

    def round_file(self, role: str, round_id: int, kind: str | None = None) -> Path:
        """A role's private per-round file ``rounds/<round>[.<kind>].json`` (the folder created 0700)."""
        folder = self.role(role) / "rounds"
        folder.mkdir(mode=0o700, exist_ok=True)
        return folder / (f"{round_id}.{kind}.json" if kind else f"{round_id}.json")

    def transcript(self, round_id: int) -> Path:
        return self.transcripts / f"round-{round_id}.json"

    def exists(self) -> bool:
        return self.market_file.exists()
