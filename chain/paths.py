"""The files chain/ keeps under a market's data directory -- one place that names them.

```
<data-dir>/chain/
  journal.jsonl, journal.lock   the embedded chain's journal and its writers' lock (journal.py)
  config.json                   the seed the embedded chain's genesis was built from
  snapshot.bin                  the embedded chain's latest snapshot (snapshot.py; an optimisation only)
  artifacts/                    compiled contracts, cached by source digest (artifacts.py)
  index/<chain id>/             a node's event index, persisted between processes (events.py)
  anvil/node.json, state.json,  a local anvil started by ``repo-market chain up`` (node.py)
        anvil.log
```
"""
from __future__ import annotations

import os
from pathlib import Path

CHAIN_DIR = "chain"
JOURNAL_FILE = "journal.jsonl"
JOURNAL_LOCK_FILE = "journal.lock"
CONFIG_FILE = "config.json"
SNAPSHOT_FILE = "snapshot.bin"
ARTIFACTS_DIR = "artifacts"
INDEX_DIR = "index"
NODE_DIR = "anvil"
NODE_INFO_FILE = "node.json"
NODE_STATE_FILE = "state.json"
NODE_LOG_FILE = "anvil.log"


def chain_dir(data_dir: Path | str) -> Path:
    return Path(data_dir) / CHAIN_DIR


def node_dir(data_dir: Path | str) -> Path:
    """The local anvil's folder (absolute: the node is started with its state path)."""
    return Path(os.path.abspath(data_dir)) / CHAIN_DIR / NODE_DIR
