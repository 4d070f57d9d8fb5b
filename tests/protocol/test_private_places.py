"""Where secrets live: a market's private values are only under the documented private places
(``protocol.layout.PRIVATE_PLACES``: ``roles/`` and ``private/``), whose folders are 0700 and whose files
holding those values are 0600; no other file of the data directory, and no file of the export-audit kit,
holds any of them.

The private values of a demo: every round's true schedules (b and a, in bp), hurdles and theta (the narrator's
plans), and the custodian's instruction salts (except where a deviation proof published the preimage on chain,
by design). Files are searched as bytes with all whitespace removed, for the schedules as comma-separated
lists, the hurdles and theta as ``"key":value`` pairs, and the salts as hex and as raw bytes. [decided] On the
simulate backend the input blobs carry the reports (offsets from the base rate) in plain -- that backend has
no confidentiality -- which this search (bp lists, keyed values) does not count.
"""
from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

from protocol.layout import PRIVATE_PLACES, DataDir

from .conftest import SIM_GRID

ROOT = Path(__file__).resolve().parents[2]
_SPACE = re.compile(rb"\s+")


def _private_values(data: Path) -> dict[bytes, str]:
    """pattern -> what it is, for every private value of the demo in ``data``."""
    from chain import ForfeitReason
    from protocol.deployment import open_market

    out: dict[bytes, str] = {}
    plans = sorted((data / "private" / "plans").glob("round-*.plan.json"))
    assert len(plans) == 4, plans
    for path in plans:
        plan = json.loads(path.read_text())
        rid = path.name.split(".")[0]
        for side in ("b", "a"):
            out[",".join(str(v) for v in plan[side]).encode()] = f"{rid} schedule {side}"
        for key in ("hurdle_mm", "hurdle_rm", "theta_mm", "theta_rm"):
            out[f'"{key}":{plan[key]}'.encode()] = f"{rid} {key}"
        for side in ("mm", "rm"):
            out[f'"hurdle":{plan[f"hurdle_{side}"]},"schedule":'.encode()] = f"{rid} hurdle of dealer_{side}"
    coord = open_market(data, read_only=True).coordinator
    proven = {int(e.args["round_id"]) for e in coord.events("Forfeited")
              if int(e.args["reason"]) != int(ForfeitReason.MISSED_DEADLINE)}
    salts = 0
    for path in sorted(DataDir(data).roles.glob("custodian/rounds/*.json")):
        doc = json.loads(path.read_text())
        if isinstance(doc, dict) and isinstance(doc.get("instruction"), dict) and "salt" in doc["instruction"]:
            rid = int(path.name.split(".")[0])
            if rid in proven:  # the deviation proof put the instruction's preimage on chain: public by design
                continue
            salt = doc["instruction"]["salt"]
            out[salt.encode()] = out[bytes.fromhex(salt)] = f"round {rid} instruction salt"
            salts += 1
    assert salts >= 2, "no unpublished salt to look for"
    return out


def _files(root: Path):
    for p in sorted(root.rglob("*")):
        if p.is_file() and not p.is_symlink():
            yield p


def test_private_values_live_only_in_the_private_places_with_private_modes(fresh_market, scratch):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    demo = subprocess.run([sys.executable, "-m", "protocol", "demo", "--data-dir", str(fresh_market),
                           "--backend", "simulate", "--grid", str(SIM_GRID), "--rounds", "4", "--no-verify",
                           "--json"], capture_output=True, text=True, cwd=ROOT, env=env, timeout=900)
    assert demo.returncode == 0, demo.stderr[-3000:]
    kit = scratch / "kit"
    export = subprocess.run([sys.executable, "-m", "protocol", "export-audit", str(kit), "--data-dir",
                             str(fresh_market), "--json"], capture_output=True, text=True, cwd=ROOT, env=env,
                            timeout=600)
    assert export.returncode == 0, export.stderr[-3000:]
    patterns = _private_values(fresh_market)

    private_roots = [fresh_market / place for place in PRIVATE_PLACES]
    found_in_private: dict[str, set[str]] = {}
    leaks = []
    searched = 0
    for root, label in ((fresh_market, "data dir"), (kit, "export kit")):
        for path in _files(root):
            data = _SPACE.sub(b"", path.read_bytes())
            hits = {what for pattern, what in patterns.items() if pattern in data}
            if root == fresh_market and any(path.is_relative_to(p) for p in private_roots):
                if hits:
                    found_in_private[str(path.relative_to(root))] = hits
                continue
            searched += 1
            leaks += [f"{label}: {path.relative_to(root)} holds {what}" for what in sorted(hits)]
    assert searched > 50, searched
    assert not leaks, leaks
    # the search can fail: the private places do hold every value
    assert set(patterns.values()) <= set().union(*found_in_private.values()), \
        set(patterns.values()) - set().union(*found_in_private.values())

    for place in private_roots:
        for folder in [place, *(p for p in place.rglob("*") if p.is_dir())]:
            assert stat.S_IMODE(folder.stat().st_mode) == 0o700, f"{folder} is {oct(folder.stat().st_mode)}"
    for rel in found_in_private:
        mode = stat.S_IMODE((fresh_market / rel).stat().st_mode)
        assert mode == 0o600, f"{rel} holds private values and is {oct(mode)}"
    assert not (fresh_market / "demo").exists()  # the narrator's plans are under private/plans/
