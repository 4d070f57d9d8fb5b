"""Crash and resume: the coordinating process killed at every phase resumes from the chain + blob store.

The coordinating process is ``repo-market demo`` (simulation backend) in a subprocess; the hook
``REPO_MARKET_CRASH_AFTER=<round>:<point>`` makes it ``os._exit(86)`` right after that point (after the
phase's chain transaction, or with ``.blobs`` after its blobs were written and before the chain saw
anything).  ``demo --rounds 0`` then only resumes the open round.  The final state must equal an
uninterrupted run's: phase, trade flag, execution records, ciphertext and output digests (deterministic
in the simulation backend), ledger, deposits -- and the auditor must pass.  Commitments, attestations and
sealed envelopes use fresh salts / ephemeral keys by design, so they differ between two runs; the test
checks instead that what the crashed process posted is exactly what the round ended with.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from protocol.deployment import open_market
from protocol.phases import CRASH_ENV, CRASH_EXIT_CODE, PHASES
from protocol.rounds import rebuild_ledger

from .conftest import SIM_GRID

ROOT = Path(__file__).resolve().parents[2]
POINTS = ["commit", "report.blobs", "report", "compute", "decrypt.blobs", "decrypt", "mm_leg", "rm_leg", "settle"]


def _demo(data_dir: Path, rounds: int, crash: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != CRASH_ENV}
    if crash:
        env[CRASH_ENV] = crash
    cmd = [sys.executable, "-m", "protocol", "demo", "--data-dir", str(data_dir), "--backend", "simulate",
           "--grid", str(SIM_GRID), "--rounds", str(rounds), "--no-verify", "--json"]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)


def _state(path: Path) -> dict:
    dep = open_market(path)
    coord = dep.coordinator
    rs = coord.round(1)
    ledger, _ = rebuild_ledger(dep)
    return {
        "current_round": coord.current_round(),
        "phase": rs.phase.name, "trade": rs.trade,
        "ciphertexts": (rs.ciphertext_digest_mm.hex(), rs.ciphertext_digest_rm.hex()),
        "output": rs.output_digest.hex(),
        "records": (rs.mm_record, rs.rm_record),
        "offender": rs.offender,
        "ledger": ledger.snapshot(),
        "deposits": {r: coord.deposit_of(dep.address(r)) for r in ("dealer_mm", "dealer_rm")},
        "balance": coord.balance(),
    }


@pytest.fixture(scope="module")
def uninterrupted(sim_template, protocol_root):
    path = protocol_root / "uninterrupted" / "market"
    shutil.copytree(sim_template, path, symlinks=True)
    out = _demo(path, 1)
    assert out.returncode == 0, out.stderr[-3000:]
    return _state(path)


def test_crash_points_cover_every_phase():
    assert set(PHASES) <= set(POINTS)


def test_killed_after_every_phase_in_turn_resumes_to_the_uninterrupted_state(fresh_market, uninterrupted):
    """One round, killed after each point in turn (10 processes), each resuming the previous one's work."""
    first = _demo(fresh_market, 1, crash=f"1:{POINTS[0]}")
    assert first.returncode == CRASH_EXIT_CODE, first.stderr[-3000:]
    posted = {}
    for point in POINTS[1:]:
        before = open_market(fresh_market).coordinator.round(1)
        posted.setdefault("commitments", (before.report_commitment_mm, before.report_commitment_rm))
        out = _demo(fresh_market, 0, crash=f"1:{point}")
        expected = CRASH_EXIT_CODE if point != "settle" or before.phase.name != "SETTLED" else 0
        assert out.returncode == expected, (point, out.stderr[-3000:])
        assert f"exiting after round 1 {point}" in out.stderr
    final = _demo(fresh_market, 0)
    assert final.returncode == 0, final.stderr[-3000:]
    assert _state(fresh_market) == uninterrupted
    # nothing lost: the commitments posted by the first (killed) process are the round's commitments
    rs = open_market(fresh_market).coordinator.round(1)
    assert (rs.report_commitment_mm, rs.report_commitment_rm) == posted["commitments"]
    verify = subprocess.run([sys.executable, "-m", "protocol", "verify", "--data-dir", str(fresh_market), "--json"],
                            capture_output=True, text=True, cwd=ROOT, timeout=600)
    report = json.loads(verify.stdout)
    assert verify.returncode == 0 and report["ok"], report["failures"]


@pytest.mark.parametrize("point", ["report.blobs", "decrypt"])
def test_single_crash_then_resume_equals_uninterrupted(fresh_market, uninterrupted, point):
    out = _demo(fresh_market, 1, crash=f"1:{point}")
    assert out.returncode == CRASH_EXIT_CODE, out.stderr[-3000:]
    assert open_market(fresh_market).coordinator.phase(1).name not in ("SETTLED", "FORFEITED")
    resumed = _demo(fresh_market, 0)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    rounds = json.loads(resumed.stdout)["rounds"]
    assert [r["round"] for r in rounds] == [1]
    assert _state(fresh_market) == uninterrupted
