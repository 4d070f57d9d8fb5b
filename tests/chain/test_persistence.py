"""Persistence: another process sees the chain (embedded journal; anvil across a restart with --state)."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from chain.paths import JOURNAL_FILE, chain_dir
from chain import (CUSTODIAN, DEALER_MM, DEALER_RM, ChainError, ChainUnavailable, Coordinator, JournalError,
                   RoundPhase, connect, deploy_coordinator)
from chain.node import start_anvil, stop_anvil

from tests.anvil import require_anvil

from .helpers import DEPOSIT, Market, commit, digest, make_terms, reveal

ROOT = Path(__file__).resolve().parents[2]

PEER = textwrap.dedent("""
    import json, sys, hashlib
    from pathlib import Path
    from chain import Coordinator, blob_commitment, connect, DEALER_RM
    data_dir, url, address, action = sys.argv[1], sys.argv[2] or None, sys.argv[3], sys.argv[4]
    chain = connect(Path(data_dir), url)
    coord = Coordinator(chain, address)
    rid = coord.current_round()
    if action == "commit_rm":
        blob = hashlib.sha256(b"blob-dealer_rm-%d" % rid).digest()
        coord.commit_report(DEALER_RM, rid, hashlib.sha256(b"peer-report").digest(),
                            blob_commitment(blob, "rm", rid, address))
    state = coord.round(rid)
    print(json.dumps({
        "round": rid, "phase": state.phase.name, "block": chain.block_number,
        "commit_mm": state.report_commitment_mm.hex(), "commit_rm": state.report_commitment_rm.hex(),
        "deposit_mm": coord.deposit_of(chain.address("dealer_mm")),
        "events": [e.name for e in coord.events()],
    }))
""")


def run_peer(data_dir: Path, url: str | None, address: str, action: str = "read") -> dict:
    out = subprocess.run([sys.executable, "-c", PEER, str(data_dir), url or "", address, action],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout)


def open_round(chain) -> Market:
    coord = deploy_coordinator(chain, make_terms(chain))
    m = Market(chain, coord, coord.terms())
    m.fund_deposits()
    m.open()
    return m


def test_embedded_chain_is_shared_between_processes(tmp_path):
    data_dir = tmp_path / "data"
    chain = connect(data_dir)
    m = open_round(chain)

    seen = run_peer(data_dir, None, m.coord.address)
    assert seen["round"] == 1 and seen["phase"] == "COMMITTED"
    assert seen["commit_mm"] == digest("report-mm-1").hex() and seen["commit_rm"] == "00" * 32
    assert seen["deposit_mm"] == DEPOSIT
    assert seen["block"] == chain.block_number
    assert seen["events"] == [e.name for e in m.coord.events()]

    # The peer writes; this process (still open, its in-memory EVM now stale) catches up and goes on.
    wrote = run_peer(data_dir, None, m.coord.address, "commit_rm")
    assert wrote["commit_rm"] == digest("peer-report").hex()
    assert m.coord.round(1).report_commitment_rm == digest("peer-report")
    reveal(m.coord, DEALER_MM, 1)
    reveal(m.coord, DEALER_RM, 1)
    assert m.coord.phase(1) is RoundPhase.REPORTED

    # A third, fresh process-equivalent replays everything, events included.
    again = connect(data_dir)
    coord = Coordinator(again, m.coord.address)
    assert coord.round(1) == m.coord.round(1)
    assert [e.as_dict() for e in coord.events()] == [e.as_dict() for e in m.coord.events()]
    assert again.block_number == chain.block_number


def test_embedded_snapshot_restores_and_continues(tmp_path, monkeypatch):
    import shutil

    from chain import backends as backends_module
    from chain.snapshot import snapshot_path

    monkeypatch.setattr(backends_module, "SNAPSHOT_EVERY", 3)
    data_dir = tmp_path / "data"
    m = open_round(connect(data_dir))
    snap = snapshot_path(chain_dir(data_dir))
    assert not snap.exists()
    connect(data_dir)  # replays >= 3 entries: writes a snapshot
    assert snap.is_file()
    restored = connect(data_dir)  # loads it, replays nothing
    coord = Coordinator(restored, m.coord.address)
    assert coord.round(1) == m.coord.round(1)
    commit(coord, DEALER_RM, 1, "after-snapshot")
    reveal(coord, DEALER_MM, 1)
    reveal(coord, DEALER_RM, 1)

    # The same data directory without the snapshot (full replay) and with a corrupt one (fallback) agree.
    for name, damage in (("full", lambda p: p.unlink()), ("corrupt", lambda p: p.write_bytes(p.read_bytes()[:-7]))):
        copy = tmp_path / name
        shutil.copytree(data_dir, copy)
        damage(snapshot_path(chain_dir(copy)))
        other = connect(copy)
        other_coord = Coordinator(other, m.coord.address)
        assert other.block_number == restored.block_number
        assert other_coord.round(1) == coord.round(1) and coord.phase(1) is RoundPhase.REPORTED
        assert [e.as_dict() for e in other_coord.events()] == [e.as_dict() for e in coord.events()]


def test_embedded_journal_ignores_a_torn_last_line(tmp_path):
    data_dir = tmp_path / "data"
    chain = connect(data_dir)
    m = open_round(chain)
    journal = chain_dir(data_dir) / JOURNAL_FILE
    with open(journal, "a") as f:
        f.write('{"op": "tx", "raw": "0xdead')  # a crash mid-append: no newline
    again = connect(data_dir)
    coord = Coordinator(again, m.coord.address)
    assert coord.phase(1) is RoundPhase.COMMITTED
    commit(coord, DEALER_RM, 1, "after-crash")  # the torn tail is dropped, not appended to
    assert journal.read_text().endswith("\n") and "0xdead" not in journal.read_text()
    assert Coordinator(connect(data_dir), m.coord.address).round(1).report_commitment_rm == digest("after-crash")


def test_embedded_journal_divergence_is_detected(tmp_path):
    data_dir = tmp_path / "data"
    chain = connect(data_dir)
    open_round(chain)
    journal = chain_dir(data_dir) / JOURNAL_FILE
    lines = journal.read_text().splitlines()
    entry = json.loads(lines[-1])
    entry["block"] += 1
    journal.write_text("\n".join(lines[:-1] + [json.dumps(entry)]) + "\n")
    with pytest.raises(JournalError, match="replay diverged"):
        connect(data_dir)


def test_embedded_refuses_another_seed(tmp_path):
    connect(tmp_path / "data", seed=1)
    with pytest.raises(JournalError, match="seed 1"):
        connect(tmp_path / "data", seed=2)


@pytest.mark.anvil
def test_anvil_state_survives_restart(tmp_path):
    require_anvil()
    node_data = tmp_path / "node"
    data_dir = tmp_path / "data"
    first = start_anvil(node_data)
    try:
        chain = connect(data_dir, first.url)
        m = open_round(chain)
        head = chain.block_number
        events_before = [e.as_dict() for e in m.coord.events()]
        past = head - 1  # the auditor reconciles balances at past event blocks (protocol/audit_history.py)
        balance_then = chain.balance_at(m.coord.address, past)
    finally:
        stop_anvil(node_data)
    with pytest.raises(ChainUnavailable) as excinfo:
        m.coord.phase(1)
    assert excinfo.value.url == first.url

    second = start_anvil(node_data)
    try:
        assert second.pid != first.pid
        seen = run_peer(data_dir, second.url, m.coord.address)
        assert seen["round"] == 1 and seen["phase"] == "COMMITTED"
        assert seen["commit_mm"] == digest("report-mm-1").hex()
        assert seen["block"] >= head
        chain = connect(data_dir, second.url)
        coord = Coordinator(chain, m.coord.address)
        assert [e.as_dict() for e in coord.events()] == events_before
        assert chain.balance_at(m.coord.address, past) == balance_then  # a past block's state survives too
        commit(coord, DEALER_RM, 1, "after-restart")
        reveal(coord, DEALER_MM, 1)
        reveal(coord, DEALER_RM, 1)
        assert coord.phase(1) is RoundPhase.REPORTED
        assert coord.deposit_of(chain.address(DEALER_MM)) == DEPOSIT
    finally:
        stop_anvil(node_data)


@pytest.mark.anvil
def test_an_idle_node_does_not_rewrite_its_state_file(tmp_path):
    """No periodic dump: an idle node leaves its state file alone (anvil's --state-interval rewrote the whole
    file, every past block's state included, every interval)."""
    import time

    from chain.node import node_state_path, read_node, rpc_request

    require_anvil()
    info = start_anvil(tmp_path)
    try:
        cmdline = Path(f"/proc/{info.pid}/cmdline").read_bytes().split(b"\0")
        assert b"--state-interval" not in cmdline and b"--preserve-historical-states" in cmdline
        rpc_request(info.url, "anvil_mine", [hex(50)])
        time.sleep(3)
        assert not node_state_path(tmp_path).exists()
        assert read_node(tmp_path) is not None
    finally:
        stop_anvil(tmp_path)
    assert node_state_path(tmp_path).is_file()  # dumped on exit


@pytest.mark.anvil
def test_a_writer_command_saves_the_node_state_so_a_killed_node_loses_nothing(tmp_path):
    """A command holding the writer lock saves its data directory's own node when it finishes
    (protocol.layout.data_dir_lock); a node killed afterwards (SIGKILL: no exit dump) restarts with that chain,
    past blocks' states included (the auditor reads balances there)."""
    import os
    import signal

    from chain.node import node_state_path, read_node
    from protocol.layout import data_dir_lock

    require_anvil()
    first = start_anvil(tmp_path)
    try:
        with data_dir_lock(tmp_path, "test"):
            chain = connect(tmp_path, first.url)
            m = open_round(chain)
            head = chain.block_number
            past = head - 1
            balance_then = chain.balance_at(m.coord.address, past)
        assert node_state_path(tmp_path).is_file()
    finally:
        os.kill(first.pid, signal.SIGKILL)
    for _ in range(100):
        if read_node(tmp_path) is None:
            break
        os.waitpid(first.pid, os.WNOHANG)
    second = start_anvil(tmp_path)
    try:
        assert second.pid != first.pid
        chain = connect(tmp_path, second.url)
        coord = Coordinator(chain, m.coord.address)
        assert chain.block_number == head and coord.phase(1) is RoundPhase.COMMITTED
        assert chain.balance_at(m.coord.address, past) == balance_then
    finally:
        stop_anvil(tmp_path, save=False)


def test_unreachable_node_raises_chain_unavailable(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound but not listening: connections are refused
        url = f"http://127.0.0.1:{port}"
        with pytest.raises(ChainUnavailable) as excinfo:
            connect(tmp_path, url)
    assert excinfo.value.url == url and url in str(excinfo.value)
    assert isinstance(excinfo.value, ChainError)
