"""Layout of a market's data directory -- one place that names every path.

```
<data-dir>/
  market.json                 public market descriptor: contract, chain, terms, role public keys, backend
  blobs/<sha256 hex>          content-addressed public blobs (blobstore.BlobStore)
  chain/                      the chain's files (chain.connect; chain/paths.py names them)
  cache/                      compiled circuit artefacts, keyed by the terms digest (public; or
                              $REPO_MARKET_CIRCUIT_CACHE, see protocol.deployment.circuit_cache)
    artifacts/<sha256>/         an artefact loaded from its blob (circuit_artifact_dir)
  roles/<role>/               each role's private folder (0700, and every folder in it):
    identity/                   its identity keys (crypto.identity names the files)
    rounds/<n>[.<kind>].json    its private per-round state (its inputs: schedule, hurdle; the custodian's
                                instruction and salt), 0600
    inbox/round-<n>-<kind>.json blobs announced to it ({"blob": digest hex}; INBOX_KINDS)
    replay-cache.json           the custodian's accepted envelopes (crypto.envelope.ReplayCache)
    fhe/                        the custodian's FHE keys (public ones only, once a market with key holders
                                has dealt its key; its secret files are destroyed at setup)
    threshold/                  a key holder's (roles/key_holder_<i>/): its key shares and one-time slots
                                (crypto.threshold names the files; 0600 in 0700 folders)
  private/                    the demo narrator's private folder (0700, files 0600):
    plans/round-<n>.plan.json   its plan of round n: true schedules, hurdles, theta, behaviours
    report.json                 its view of the demo (the same, next to the outcomes)
  transcripts/round-<n>.json  public transcript of round n: digests, gas, timings (rebuildable from chain+blobs)
  transcripts/round-<n>.journal.json   the phases of round n done so far (protocol.phases.PhaseJournal)
  report.json, plots/*.png    the demo's public report (no private inputs)
  writer.lock                 the exclusive lock of the one process writing here (pid inside)
```
Private data live only under ``roles/`` and ``private/`` (PRIVATE_PLACES); everything else here is public
(on the simulate backend the input blobs hold the reports in plain: that backend has no confidentiality).
``repo-market export-audit`` writes a folder of this layout (market.json, blobs/, transcripts/, the
journal) plus the files its own module docstring lists.
A role object is given its own folder and the public parts only; it never opens another role's folder.
The auditor (``verify``) reads ``market.json``, ``blobs/``, ``cache/`` and the chain -- never ``roles/``.
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import shutil
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from chain.node import NodeError, save_node_state
from common import strict_json
from common.vocabulary import CUSTODIAN, INSTRUCTION, OFFER
from protocol.blobstore import atomic_write
from protocol.errors import ProtocolPackageError

__all__ = ["DataDir", "read_json", "write_json", "DataDirLocked",
           "DataDirError", "data_dir_lock", "LOCK_NAME", "check_market_file", "writer_active", "save_own_node", "PRIVATE_PLACES"]

LOCK_NAME = "writer.lock"
PRIVATE_DIR = "private"  # the narrator's private folder (DataDir.private)
PRIVATE_REPORT = f"{PRIVATE_DIR}/report.json"  # relative to the data directory (DataDir.private_report_file)
PRIVATE_PLACES = ("roles", PRIVATE_DIR)  # the only folders of a data directory that hold private data
ROUNDS_PLOT, TIMINGS_PLOT = "rounds.png", "timings.png"  # in plots/ (protocol.report.write_plots)
# What a role may find in its inbox: the custodian's sealed instruction for a dealer, a dealer's offer for its
# client. The custodian's inbox receives nothing: dealers publish their own encrypted reports.
INBOX_KINDS = (INSTRUCTION, OFFER)
_TRANSCRIPT = re.compile(r"\Around-([0-9]+)\.json\Z")


def write_json(path: Path, obj, mode: int = 0o644) -> None:
    atomic_write(Path(path), (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode(), mode)


def read_json(path: Path):
    """A JSON file of the data directory (repeated keys refused: common.strict_json)."""
    return strict_json.loads(Path(path).read_text())


class DataDirError(ProtocolPackageError):
    """The data directory cannot be used (not a directory, not writable); the message names it."""


class DataDirLocked(DataDirError):
    """Another process holds the data directory's writer lock; the message names the directory and its pid."""


MARKET_KEYS = ("format", "backend", "chain", "contract", "terms", "addresses", "identities", "evaluators")


def check_market_file(root: Path) -> None:
    """If ``root/market.json`` exists it must be a UTF-8 JSON object with the descriptor's keys; else a
    DataDirError naming the file (checked before a command opens or reuses the market)."""
    path = DataDir(Path(root)).market_file
    if not path.is_file():
        return
    try:
        doc = strict_json.loads(path.read_bytes().decode("utf-8"))
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
    holder's pid. Readers (verify) take no lock. A directory that did not exist, or was empty, is left as it
    was when the block wrote nothing but the lock file (a command that did not need it after all), and when
    the block fails before a market was created there (no ``market.json`` in it or below: a failed command on
    a fresh directory leaves no trace) [decided]; once a ``market.json`` exists a failure keeps everything,
    since the market's keys and chain state are needed to resume it.
    """
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise DataDirError(f"--data-dir {root}: exists and is not a directory")
    created = not root.exists()
    top = root  # the outermost folder this call creates (mkdir parents=True), removed again when unused
    while created and not top.parent.exists() and top.parent != top:
        top = top.parent
    try:
        was_empty = created or not any(root.iterdir())
    except OSError as exc:
        raise DataDirError(f"--data-dir {root}: cannot read it ({exc.strerror})") from None
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
        except BaseException:
            if was_empty and not any(root.rglob("market.json")):  # simulate keeps its markets in subfolders
                _remove_all_but(root, LOCK_NAME)  # a failed command leaves a fresh directory as it was
            raise
        finally:
            if command != "chain":  # chain up/status/down: nothing new to save, or the node dumps on exit
                save_own_node(root)
            if created and {p.name for p in root.iterdir()} <= {LOCK_NAME}:
                path.unlink(missing_ok=True)
                folder = root
                while True:
                    folder.rmdir()
                    if folder == top:
                        break
                    folder = folder.parent
            elif was_empty and {p.name for p in root.iterdir()} == {LOCK_NAME}:
                path.unlink(missing_ok=True)
    finally:
        os.close(fd)


def save_own_node(root: Path) -> None:
    """When a writer finishes: save the state of the data directory's own anvil (``chain up``), which dumps
    its chain only on exit otherwise (chain/node.py says why). A failure is one warning line: the node still
    dumps on exit."""
    if not (Path(root) / "chain").is_dir():  # no chain files here: nothing to import chain/ for
        return

    try:
        save_node_state(root)
    except (OSError, NodeError, ValueError) as exc:
        print(f"repo-market: warning: the local node's state was not saved now ({exc}); it is saved when the "
              f"node stops (repo-market chain down)", file=sys.stderr)


def writer_active(root: Path) -> str | None:
    """Who holds ``root``'s writer lock right now ("pid N (command)"), None if nobody does.

    A reader must not take the lock, not even shared for an instant: a writer starting in that instant
    would fail at once (``data_dir_lock`` never waits). So the holder is looked up in the kernel's lock table
    (``/proc/locks``: an exclusive ``FLOCK`` on the lock file's device and inode). The lock file's text
    names the last holder, which is the one holding it when the lock is held. Opens nothing for writing.
    """
    path = Path(root) / LOCK_NAME
    try:
        st = path.stat()
        table = Path("/proc/locks").read_text()
    except OSError:
        return None
    dev = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    for line in table.splitlines():
        fields = line.split()
        if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5] == dev:
            try:
                return path.read_text(errors="replace").strip()[:200] or f"pid {fields[4]}"
            except OSError:
                return f"pid {fields[4]}"
    return None


def _remove_all_but(root: Path, keep: str) -> None:
    """Remove everything in ``root`` except the entry named ``keep`` (best effort: the error being raised
    matters more than a leftover)."""
    for entry in root.iterdir():
        if entry.name == keep:
            continue
        try:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        except OSError:
            pass


def circuit_artifact_dir(cache: Path, artifact_digest_hex: str) -> Path:
    """Where a circuit artefact read from its blob is unpacked in a circuit cache (the auditor's replay)."""
    return Path(cache) / "artifacts" / artifact_digest_hex


def _private_folder(path: Path) -> Path:
    """``path`` created if needed, and 0700 whatever the umask or an older version left."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def _entry(name: str, doc: str | None = None) -> property:
    """A path directly under the data directory's root (nothing is created)."""
    return property(lambda self: self.root / name, doc=doc)


@dataclass(frozen=True)
class DataDir:
    root: Path

    market_file = _entry("market.json")
    blobs = _entry("blobs")
    cache = _entry("cache")
    transcripts = _entry("transcripts")
    plots = _entry("plots")
    report_file = _entry("report.json")
    roles = _entry("roles", "The folder of every role's private folder (never read by the auditor).")

    @property
    def private(self) -> Path:
        """The demo narrator's private folder (true schedules; never read by the auditor), created 0700."""
        return _private_folder(self.root / PRIVATE_DIR)

    @property
    def private_report_file(self) -> Path:
        """The narrator's view of the demo (private inputs), 0600 in a 0700 folder."""
        self.private  # noqa: B018 -- creates the folder 0700
        return self.root / PRIVATE_REPORT

    def demo_plan(self, round_id: int) -> Path:
        """The narrator's plan of a round (true schedules, hurdles, theta), 0600 in a 0700 folder."""
        return _private_folder(self.private / "plans") / f"round-{round_id}.plan.json"

    def role(self, name: str) -> Path:
        """The private folder of a role, created 0700 (it holds key files)."""
        _private_folder(self.roles)
        return _private_folder(self.roles / name)

    def identity_dir(self, role: str) -> Path:
        """Where the role's identity keys are saved (crypto.identity.IdentityKeys.save)."""
        return self.role(role) / "identity"

    def fhe_keys_dir(self, role: str) -> Path:
        return self.role(role) / "fhe"

    def holder_dir(self, holder: str) -> Path:
        """A key holder's threshold folder (key shares, one-time slots), created 0700."""
        return _private_folder(self.role(holder) / "threshold")

    def replay_cache(self, role: str) -> Path:
        return self.role(role) / "replay-cache.json"

    def inbox(self, name: str) -> Path:
        return _private_folder(self.role(name) / "inbox")

    def inbox_message(self, recipient: str, round_id: int, kind: str, side: str | None = None) -> Path:
        """``recipient``'s announcement of round ``round_id``: ``inbox/round-<n>-<kind>[-<side>].json``."""
        if kind not in INBOX_KINDS:
            raise ValueError(f"inbox message kind {kind!r}: expected one of {', '.join(INBOX_KINDS)}")
        return self.inbox(recipient) / (f"round-{round_id}-{kind}-{side}.json" if side else
                                         f"round-{round_id}-{kind}.json")

    def rounds_dir(self, role: str) -> Path:
        """A role's private per-round files (created 0700)."""
        return _private_folder(self.role(role) / "rounds")

    def round_file(self, role: str, round_id: int, kind: str | None = None) -> Path:
        """A role's private per-round file ``rounds/<round>[.<kind>].json``."""
        return self.rounds_dir(role) / (f"{round_id}.{kind}.json" if kind else f"{round_id}.json")

    def transcript(self, round_id: int) -> Path:
        return self.transcripts / f"round-{round_id}.json"

    def phase_journal(self, round_id: int) -> Path:
        """The phases of ``round_id`` done so far, with their gas and timings (protocol.phases.PhaseJournal)."""
        return self.transcripts / f"round-{round_id}.journal.json"

    def transcript_rounds(self) -> set[int]:
        """The rounds that have a transcript here."""
        if not self.transcripts.is_dir():
            return set()
        return {int(m.group(1)) for p in self.transcripts.iterdir() if (m := _TRANSCRIPT.match(p.name))}

    def exists(self) -> bool:
        return self.market_file.exists()

    def select_keys_dir(self, artifact_digest: bytes) -> Path:
        """The custodian's FHE keys of ``repo-market select`` for one circuit, apart from a market's own:
        ``roles/custodian/select/<first 16 hex of the artefact digest>/`` (0700 up to it)."""
        return _private_folder(self.role(CUSTODIAN) / "select") / artifact_digest.hex()[:16]
