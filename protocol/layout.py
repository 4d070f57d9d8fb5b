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
  report.json, plots/*.png    the demo's report
```
A role object is given its own folder and the public parts only; it never opens another role's folder.
The auditor (``verify``) reads ``market.json``, ``blobs/``, ``cache/`` and the chain -- never ``roles/``.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from protocol.blobstore import atomic_write

__all__ = ["DataDir", "ROLE_NAMES", "DEALER_ROLES", "CLIENT_ROLES", "read_json", "write_json"]

# Role names are the ones crypto/ (identity, envelope bindings) and chain/ (accounts) use.
DEALER_ROLES = ("dealer_mm", "dealer_rm")
CLIENT_ROLES = ("client_mm", "client_rm")
ROLE_NAMES = ("custodian", *DEALER_ROLES, *CLIENT_ROLES)  # evaluators: "evaluator_<i>" (chain.evaluator_role)


def write_json(path: Path, obj, mode: int = 0o644) -> None:
    atomic_write(Path(path), (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode(), mode)


def read_json(path: Path):
    return json.loads(Path(path).read_text())


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
