"""The auditor on the embedded chain: history anchoring, read-only audits, liveness, and random legitimate markets.

* dropping or tearing the last lines of the embedded chain's journal (an earlier state) is caught by the
  transcripts' anchors and field comparison; a deleted transcript is an error;
* verify writes nothing into the data directory and works on a read-only copy;
* a round left open past its deadline is reported; an audit with 0 checks fails;
* storage, code and the money are checked (a report on an honest market carries those checks);
* property: random sequences of legitimate protocol rounds (honest, deviating or silent dealers, deposits
  withdrawn between rounds, idle blocks) always verify.
"""
from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol.layout import DataDir
from chain.paths import JOURNAL_FILE, chain_dir
from protocol.audit import AuditReport
from protocol.deployment import open_market

from .conftest import SIM_GRID, audit as _audit, run_plans

ROOT = Path(__file__).resolve().parents[2]



def _checks(report: dict) -> set[str]:
    return {f["check"] for f in report["failures"]}



def _tree(path: Path) -> dict:
    return {str(p.relative_to(path)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(path.rglob("*"))}


def test_an_honest_market_runs_the_history_storage_code_and_money_checks(demo_copy):
    report = _audit(demo_copy)
    assert report["ok"], report["failures"]
    market = {c["check"]: c for c in report["rounds"][0]["checks"]}
    for name in ("code.identity", "money.balance", "money.withdrawals", "storage.balances",
                 "storage.current_round", "round.deadline"):
        assert market[name]["ok"], market[name]
    for r in report["rounds"][1:]:
        names = {c["check"] for c in r["checks"]}
        assert {"storage.round", "phase.order", "history.senders", "history.deadlines", "transcript",
                "transcript.anchors"} <= names, names
    trades = [r for r in report["rounds"][1:] if any(c["check"] == "execution.mm" for c in r["checks"])]
    assert trades, "no round executed a leg: the execution records went unchecked"
    assert report["notices"] == [], report["notices"]


def _journal(path: Path) -> Path:
    return chain_dir(path) / JOURNAL_FILE


@pytest.mark.parametrize("drop", [1, 3, 12])
def test_dropping_the_last_journal_lines_is_caught(demo_copy, drop):
    journal = _journal(demo_copy)
    lines = journal.read_bytes().splitlines(keepends=True)
    journal.write_bytes(b"".join(lines[:-drop]))
    report = _audit(demo_copy)
    assert not report["ok"]
    assert _checks(report) & {"transcript", "transcript.anchors"}, report["failures"]


def test_tearing_the_last_journal_line_is_caught(demo_copy):
    journal = _journal(demo_copy)
    data = journal.read_bytes()
    last = data.rstrip(b"\n").rfind(b"\n") + 1
    journal.write_bytes(data[: last + (len(data) - last) // 2])  # the last entry cut in half
    report = _audit(demo_copy)
    assert not report["ok"]
    assert _checks(report) & {"transcript", "transcript.anchors"}, report["failures"]


def test_rolling_back_a_whole_round_names_the_orphan_transcript(demo_copy):
    """Cut the journal back to the end of round 3: round 4's transcript names a round the chain lacks."""
    t3 = json.loads(DataDir(demo_copy).transcript(3).read_text())
    last_block = max(a["block"] for a in t3["transactions"])
    journal = _journal(demo_copy)
    kept = [line for line in journal.read_bytes().splitlines(keepends=True) if json.loads(line)["block"] <= last_block]
    journal.write_bytes(b"".join(kept))
    report = _audit(demo_copy)
    orphan = [f for f in report["failures"] if f["round"] == 4 and f["check"] == "transcript"]
    assert orphan and "round 4: transcript present, chain has no such round" in orphan[0]["detail"], report["failures"]


def test_a_deleted_transcript_is_an_error(demo_copy):
    DataDir(demo_copy).transcript(2).unlink()
    report = _audit(demo_copy)
    assert [(f["round"], f["check"]) for f in report["failures"]] == [(2, "transcript")]
    assert "missing" in report["failures"][0]["detail"]


@pytest.mark.parametrize("field,value", [("phase", "SETTLED"), ("trade", False), ("forfeited", None),
                                         ("votes", {}), ("records", {"mm": None, "rm": None})])
def test_every_transcript_field_is_compared_with_the_chain(demo_copy, field, value):
    path = DataDir(demo_copy).transcript(4)  # round 4 is forfeited: each field differs from value
    t = json.loads(path.read_text())
    assert t[field] != value
    t[field] = value
    path.write_text(json.dumps(t))
    report = _audit(demo_copy, [4])
    assert [f["check"] for f in report["failures"]] == ["transcript"], report["failures"]
    assert field in report["failures"][0]["detail"]


def test_verify_writes_nothing_and_works_on_a_read_only_copy(demo_copy):
    before = _tree(demo_copy)
    for p in [demo_copy, *demo_copy.rglob("*")]:
        if not p.is_symlink():
            p.chmod(p.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    try:
        out = subprocess.run([sys.executable, "-m", "protocol", "verify", "--data-dir", str(demo_copy),
                              "--json"], capture_output=True, text=True, cwd=ROOT, timeout=600,
                             env={**os.environ, "PYTHONPATH": str(ROOT)})
    finally:
        for p in [demo_copy, *demo_copy.rglob("*")]:
            if not p.is_symlink():
                p.chmod(p.stat().st_mode | stat.S_IWUSR)
    report = json.loads(out.stdout)
    assert out.returncode == 0 and report["ok"], (out.stderr[-2000:], report.get("failures"))
    assert report["checks"] > 100
    assert _tree(demo_copy) == before


def test_a_round_left_open_past_its_deadline_is_reported(fresh_market):
    from protocol.rounds import RoundDriver
    from protocol.scenario import deal_inputs, demo_plans

    dep = open_market(fresh_market)
    deal_inputs(dep, 1, demo_plans(SIM_GRID, 1, seed=0)[0])
    driver = RoundDriver(dep, dep.circuit())
    for role in ("dealer_mm", "dealer_rm"):
        driver.agent(role).ensure_deposit()
    driver.agent("dealer_mm").commit(1)  # dealer_rm never commits, nobody enforces the deadline
    assert _audit(fresh_market)["ok"]
    dep.chain.mine(dep.onchain_terms.windows.report + 1)
    report = _audit(fresh_market)
    stuck = [f for f in report["failures"] if f["check"] == "round.deadline"]
    assert stuck and "round 1 left open in phase Committed past its deadline" in stuck[0]["detail"], report
    assert "enforce_deadline(1)" in stuck[0]["detail"]


def test_an_audit_with_no_checks_fails():
    report = AuditReport()
    assert not report.ok
    assert report.as_dict()["failures"] == [{"round": 0, "check": "audit.checks", "detail": "the audit ran 0 checks"}]


def test_an_unanchored_blob_is_reported_not_failed(demo_copy):
    stray = DataDir(demo_copy).blobs
    import hashlib

    data = b"a blob nothing names"
    (stray / hashlib.sha256(data).hexdigest()).write_bytes(data)
    report = _audit(demo_copy)
    assert report["ok"], report["failures"]
    assert [n["check"] for n in report["notices"]] == ["blobs.unanchored"]
    assert hashlib.sha256(data).hexdigest()[:16] in report["notices"][0]["detail"]


BEHAVIOUR = st.sampled_from([{"kind": "honest"}, {"kind": "offer_rate", "rate_delta": 1},
                             {"kind": "offer_rate", "rate_delta": -2}, {"kind": "skip"}])


@settings(max_examples=4, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(rounds=st.lists(st.tuples(BEHAVIOUR, BEHAVIOUR, st.booleans(), st.integers(0, 3)), min_size=1, max_size=3),
       seed=st.integers(0, 50))
def test_random_legitimate_markets_always_verify(sim_template, scratch, rounds, seed):
    import dataclasses

    from protocol.report import write_transcript
    from protocol.scenario import demo_plans

    path = Path(scratch) / f"market-{seed}-{len(rounds)}-{abs(hash(str(rounds))) % 10**8}"
    shutil.copytree(sim_template, path, symlinks=True)
    dep = open_market(path)
    plans = demo_plans(SIM_GRID, len(rounds), seed=seed)
    circuit = dep.circuit()
    for plan, (mm, rm, withdraw, idle) in zip(plans, rounds):
        plan = dataclasses.replace(plan, behaviour_mm=dict(mm), behaviour_rm=dict(rm))
        [(rid, _, run)], _ = run_plans(dep, [plan], circuit)
        write_transcript(dep, rid, run)
        if withdraw:  # deposits unlock between rounds: a dealer takes its money out (the next round re-deposits)
            for role in ("dealer_mm", "dealer_rm"):
                owed = dep.coordinator.deposit_of(dep.address(role)) + dep.coordinator.withdrawable_of(dep.address(role))
                if owed:
                    dep.coordinator.withdraw(role)
        if idle:
            dep.chain.mine(idle)
    report = _audit(path)
    assert report["ok"], (rounds, report["failures"])
    shutil.rmtree(path, ignore_errors=True)


def test_every_role_keeps_the_anchor_of_its_own_transactions(sim_demo):
    """Each role's folder holds, per round, the block number and hash of each of its transactions."""
    path, _ = sim_demo
    dep = open_market(path, read_only=True)
    events = {e.tx_hash: e for e in dep.coordinator.events(round_id=1)}
    expected = {"dealer_mm": {"commit_report", "reveal_report", "execute_mm_leg"},
                "dealer_rm": {"commit_report", "reveal_report", "execute_rm_leg"},
                "custodian": {"post_instruction"}, "evaluator_0": {"post_output"}}
    for role, steps in expected.items():
        txs = json.loads(DataDir(path).round_file(role, 1, "txs").read_text())
        assert steps <= set(txs), (role, txs)
        for step in steps:
            anchor = txs[step]
            assert events[anchor["tx"]].block_number == anchor["block"]
            assert anchor["block_hash"].startswith("0x") and len(anchor["block_hash"]) == 66
