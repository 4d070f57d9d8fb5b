"""verify beside a writer: the audit reads one block (the cut) and leaves rounds in progress out, never
reporting them as tampering, while tampering of closed rounds is still reported.

* a real writer: ``repo-market demo`` (simulate backend) runs in a subprocess and the auditor audits the same
  directory over and over meanwhile; no audit fails, some audit saw the writer, the final one is clean;
* one unit test per in-progress state, made by letting the "writer" (the full journal) append after the
  auditor pinned its block: a round open at the cut whose transcript is written after it, a round opened
  after the cut (with and without its transcript), a closed round whose transcript is not written yet while
  the writer lock is held, a transcript whose recorded head is after the cut;
* the same states without a writer (nothing appended after the cut) are still failures, and a tampered
  transcript of a closed round fails while a writer is active.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from chain.paths import JOURNAL_FILE, chain_dir
from protocol.audit import Auditor
from protocol.deployment import open_market
from protocol.layout import DataDir, data_dir_lock, writer_active
from protocol.roles import Verdict

from .conftest import SIM_GRID

ROOT = Path(__file__).resolve().parents[2]


def _journal(path: Path) -> Path:
    return chain_dir(path) / JOURNAL_FILE


def _closing_block(path: Path, round_id: int) -> int:
    t = json.loads(DataDir(path).transcript(round_id).read_text())
    return max(a["block"] for a in t["transactions"])


def _audit_with_writer(path: Path, keep_below: int, *, writer_appends: bool = True, rounds=None) -> dict:
    """Audit ``path`` as if the chain's head were the last journal entry below block ``keep_below`` when the
    auditor pinned its block, and the writer appended the rest right after (``writer_appends``)."""
    journal = _journal(path)
    full = journal.read_bytes()
    lines = full.splitlines(keepends=True)
    journal.write_bytes(b"".join(line for line in lines if json.loads(line)["block"] < keep_below))
    dep = open_market(path, read_only=True)
    chain = dep.coordinator.chain
    pin = chain.pin

    def pin_then_write():
        block = pin()
        if writer_appends:
            journal.write_bytes(full)
        return block

    chain.pin = pin_then_write
    return Auditor(dep).run(rounds).as_dict()


def _left_out(report: dict) -> dict[int, str]:
    return {x["round"]: x["reason"] for x in report["cut"]["left_out"]}


def test_a_round_open_at_the_cut_whose_transcript_is_written_after_it_is_left_out(demo_copy):
    closing = _closing_block(demo_copy, 4)
    report = _audit_with_writer(demo_copy, closing)
    assert report["ok"], report["failures"]
    assert report["cut"]["block"] < closing
    assert "closed after block" in _left_out(report)[4]
    checked = {c["check"] for r in report["rounds"] if r["round"] == 4 for c in r["checks"]}
    assert "storage.round" in checked and "transcript" not in checked  # its steps so far, not its transcript


def test_the_same_transcript_without_a_writer_is_tampering(demo_copy):
    report = _audit_with_writer(demo_copy, _closing_block(demo_copy, 4), writer_appends=False)
    assert not report["ok"] and not report["cut"]["left_out"]
    found = {(f["round"], f["check"]): f["detail"] for f in report["failures"]}
    assert "transcript phase FORFEITED" in found[(4, "transcript")], report["failures"]
    # the fixture wrote every transcript at the final head, which the cut-back chain has not reached
    assert "rolled back" in found[(1, "transcript.anchors")]


def test_a_round_opened_after_the_cut_is_left_out_with_or_without_its_transcript(demo_copy):
    first_of_4 = min(a["block"] for a in json.loads(DataDir(demo_copy).transcript(4).read_text())["transactions"])
    report = _audit_with_writer(demo_copy, first_of_4)
    assert report["ok"], report["failures"]
    assert 4 in _left_out(report) and report["cut"]["block"] < first_of_4
    DataDir(demo_copy).transcript(4).unlink()
    report = _audit_with_writer(demo_copy, first_of_4)
    assert report["ok"], report["failures"]
    assert "opened after block" in _left_out(report)[4]


def test_a_transcript_of_a_round_the_chain_never_had_is_still_tampering(demo_copy):
    report = _audit_with_writer(demo_copy, min(
        a["block"] for a in json.loads(DataDir(demo_copy).transcript(4).read_text())["transactions"]),
        writer_appends=False)
    orphan = [f for f in report["failures"] if f["round"] == 4 and f["check"] == "transcript"]
    assert orphan and "transcript present, chain has no such round" in orphan[0]["detail"], report["failures"]


def test_a_closed_round_without_its_transcript_is_left_out_only_while_a_writer_holds_the_lock(demo_copy):
    DataDir(demo_copy).transcript(4).unlink()
    with data_dir_lock(demo_copy, "demo"):
        assert writer_active(demo_copy).startswith(f"pid {os.getpid()} (demo)")
        report = Auditor(open_market(demo_copy, read_only=True)).run().as_dict()
    assert report["ok"], report["failures"]
    assert report["cut"]["writer"].startswith(f"pid {os.getpid()}")
    assert "its transcript is not written yet" in _left_out(report)[4]
    assert any(n["check"] == "cut" and "while a writer is active" in n["detail"] for n in report["notices"])
    assert writer_active(demo_copy) is None  # released: the writer is gone, the missing transcript is an error
    report = Auditor(open_market(demo_copy, read_only=True)).run().as_dict()
    assert [(f["round"], f["check"]) for f in report["failures"]] == [(4, "transcript")]


def test_a_transcript_head_after_the_cut_is_checked_against_the_latest_chain(demo_copy):
    """Round 4 closed before the cut, but its transcript was written after a few more blocks."""
    from protocol.report import write_transcript

    dep = open_market(demo_copy)
    closed_at = dep.chain.block_number
    dep.chain.mine(3)
    write_transcript(dep, 4, {})
    assert json.loads(DataDir(demo_copy).transcript(4).read_text())["chain_head"]["block"] == closed_at + 3
    report = _audit_with_writer(demo_copy, closed_at + 1)
    assert report["ok"], report["failures"]
    assert report["cut"]["block"] == closed_at and not report["cut"]["left_out"]
    rolled_back = _audit_with_writer(demo_copy, closed_at + 1, writer_appends=False)
    assert [f["check"] for f in rolled_back["failures"]] == ["transcript.anchors"]
    assert "rolled back" in rolled_back["failures"][0]["detail"]


def test_tampering_with_a_closed_round_is_reported_while_a_writer_is_active(demo_copy):
    path = DataDir(demo_copy).transcript(2)
    t = json.loads(path.read_text())
    t["trade"] = not t["trade"]
    path.write_text(json.dumps(t))
    with data_dir_lock(demo_copy, "demo"):
        report = _audit_with_writer(demo_copy, _closing_block(demo_copy, 4))
    assert report["cut"]["writer"] is not None and 4 in _left_out(report)
    assert [(f["round"], f["check"]) for f in report["failures"]] == [(2, "transcript")], report["failures"]


def test_verify_beside_a_running_demo_never_reports_tampering(fresh_market):
    """A real writer: `repo-market demo` appends rounds in a subprocess while the auditor audits again and
    again; every audit passes, at least one saw the writer or left a round out, the last one is complete."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    writer = subprocess.Popen(
        [sys.executable, "-m", "protocol", "demo", "--data-dir", str(fresh_market), "--backend", "simulate",
         "--grid", str(SIM_GRID), "--rounds", "5", "--no-verify", "--json"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    reports = []
    try:
        while writer.poll() is None:
            reports.append(Auditor(open_market(fresh_market, read_only=True)).run().as_dict())
            assert reports[-1]["ok"], (len(reports), reports[-1]["cut"], reports[-1]["failures"])
        out, err = writer.communicate(timeout=600)
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()
    assert writer.returncode == 0, err[-2000:]
    assert len(reports) >= 2, "the writer finished before the auditor could run beside it"
    assert any(r["cut"]["writer"] or r["cut"]["left_out"] for r in reports), [r["cut"] for r in reports]
    final = subprocess.run([sys.executable, "-m", "protocol", "verify", "--data-dir", str(fresh_market),
                            "--json"], capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
    report = json.loads(final.stdout)
    assert final.returncode == 0 and report["ok"], report["failures"]
    assert report["cut"] == {"block": report["cut"]["block"], "writer": None, "left_out": []}
    assert DataDir(fresh_market).transcript_rounds() == {1, 2, 3, 4, 5}
    assert report["notices"] == []


def test_a_round_with_a_vote_but_no_agreement_yet_is_in_progress_not_tampering(fresh_market):
    """The state a writer leaves between two evaluators' posts: one vote, no agreed output digest. The replay
    is compared with the vote; the round is left out as open; a wrong vote is still named."""
    from protocol.rounds import RoundDriver
    from protocol.scenario import deal_inputs, demo_plans

    dep = open_market(fresh_market)
    deal_inputs(dep, 1, demo_plans(SIM_GRID, 1, seed=0)[0])
    driver = RoundDriver(dep, dep.circuit())
    dealers = [driver.agent(r) for r in ("dealer_mm", "dealer_rm")]
    for d in dealers:
        d.prepare_report(1)
        d.ensure_deposit()
    for d in dealers:
        d.commit(1)
    for d in dealers:  # each dealer publishes its own encrypted report, then reveals its digest
        d.publish(1)
    for d in dealers:
        d.reveal(1)
    first = driver.agent(dep.evaluators[0])
    first.post(1, first.evaluate(1))
    report = Auditor(open_market(fresh_market, read_only=True)).run().as_dict()
    assert report["ok"], report["failures"]
    checks = {c["check"]: c for r in report["rounds"] if r["round"] == 1 for c in r["checks"]}
    assert checks["evaluation.replay"]["ok"] and "no agreed output digest yet" in checks["evaluation.replay"]["detail"]
    assert checks[f"evaluation.vote.{dep.evaluators[0]}"]["ok"]
    assert "open at block" in _left_out(report)[1]
    driver.agent(dep.evaluators[1]).post(1, Verdict("output", bytes([7]) * 32))  # a wrong vote: no agreement, named
    report = Auditor(open_market(fresh_market, read_only=True)).run().as_dict()
    assert [f["check"] for f in report["failures"]] == [f"evaluation.vote.{dep.evaluators[1]}"], report["failures"]


def test_a_round_past_its_deadline_is_in_progress_while_a_writer_holds_the_lock(fresh_market):
    """The writer mines out the challenge window, then settles: between the two a round is past its deadline.
    While the writer lock is held that is work in progress; at rest it is a liveness failure."""
    from protocol.rounds import RoundDriver
    from protocol.scenario import deal_inputs, demo_plans

    dep = open_market(fresh_market)
    deal_inputs(dep, 1, demo_plans(SIM_GRID, 1, seed=0)[0])
    driver = RoundDriver(dep, dep.circuit())
    for role in ("dealer_mm", "dealer_rm"):
        driver.agent(role).ensure_deposit()
    driver.agent("dealer_mm").commit(1)
    dep.chain.mine(dep.onchain_terms.windows.report + 1)
    with data_dir_lock(fresh_market, "demo"):
        report = Auditor(open_market(fresh_market, read_only=True)).run().as_dict()
    assert report["ok"], report["failures"]
    assert 1 in _left_out(report)
    report = Auditor(open_market(fresh_market, read_only=True)).run().as_dict()
    assert [f["check"] for f in report["failures"]] == ["round.deadline"]
