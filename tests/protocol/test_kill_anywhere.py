"""Kill anywhere: >= 20 kills at seeded random points, each resumed, end in the state of an
uninterrupted run with every round's public transcript present.

Each kill is a `repo-market demo --backend simulate` process (one round per run; ``--rounds 0`` while a
round is open) ended either by the crash hook at a random point still ahead in the open round, or by
SIGKILL after a random delay (anywhere: start-up, a blob write, a transaction, a transcript write). After
every kill the next process resumes. The reference is the same rounds driven without interruption.
"""
from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from protocol.layout import DataDir
from protocol.deployment import open_market
from protocol.phases import CRASH_ENV, CRASH_EXIT_CODE
from protocol.rounds import rebuild_ledger

from .conftest import SIM_GRID, run_plans

ROOT = Path(__file__).resolve().parents[2]
POINTS = ["commit", "report.blobs", "report", "compute", "decrypt.blobs", "decrypt", "mm_leg", "rm_leg", "settle"]
# first crash point a run can still reach from each phase of the open round
AHEAD = {"NONE": 0, "COMMITTED": 0, "REVEALING": 1, "REPORTED": 3, "COMPUTED": 4, "INSTRUCTED": 6, "MM_LEG_DONE": 7, "RM_LEG_DONE": 8}
KILLS = 20
SEED = 15


def _cmd(data_dir: Path, rounds: int) -> list[str]:
    return [sys.executable, "-m", "protocol", "demo", "--data-dir", str(data_dir), "--backend", "simulate",
            "--grid", str(SIM_GRID), "--rounds", str(rounds), "--no-verify", "--json"]


def _open_round(data_dir: Path) -> tuple[int, str] | None:
    coord = open_market(data_dir).coordinator
    rid = coord.current_round()
    if rid and not coord.phase(rid).terminal:
        return rid, coord.phase(rid).name
    plan = DataDir(data_dir).demo_plan(rid + 1)
    return (rid + 1, "NONE") if plan.exists() else None


def _state(data_dir: Path) -> dict:
    dep = open_market(data_dir)
    coord = dep.coordinator
    rounds = []
    for rid in range(1, coord.current_round() + 1):
        rs = coord.round(rid)
        rounds.append((rs.phase.name, rs.trade, rs.ciphertext_digest_mm.hex(), rs.ciphertext_digest_rm.hex(),
                       rs.output_digest.hex(), rs.mm_record, rs.rm_record, rs.offender))
    ledger, _ = rebuild_ledger(dep)
    return {"rounds": rounds, "ledger": ledger.snapshot(), "balance": coord.balance(),
            "deposits": {r: coord.deposit_of(dep.address(r)) for r in ("dealer_mm", "dealer_rm")}}


def test_killed_at_20_random_points_resumes_to_the_uninterrupted_state(sim_template, scratch):
    rng = random.Random(SEED)
    data = scratch / "killed"
    shutil.copytree(sim_template, data, symlinks=True)
    env = {k: v for k, v in os.environ.items() if k != CRASH_ENV}
    kills, log = 0, []
    while kills < KILLS:
        open_round = _open_round(data)
        rounds = 0 if open_round else 1
        rid, phase = open_round or (open_market(data).coordinator.current_round() + 1, "NONE")
        if rng.random() < 0.6:  # the crash hook at a point still ahead
            point = rng.choice(POINTS[AHEAD[phase]:])
            out = subprocess.run(_cmd(data, rounds), capture_output=True, text=True, cwd=ROOT, timeout=600,
                                 env={**env, CRASH_ENV: f"{rid}:{point}"})
            assert out.returncode == CRASH_EXIT_CODE, (point, out.stderr[-3000:])
            kills += 1
            log.append(f"round {rid} hook {point}")
        else:  # SIGKILL anywhere
            delay = rng.uniform(0.5, 8.0)
            proc = subprocess.Popen(_cmd(data, rounds), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                    cwd=ROOT, env=env, start_new_session=True)
            try:
                proc.wait(timeout=delay)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                kills += 1
                log.append(f"round {rid} SIGKILL after {delay:.2f} s")
            else:
                assert proc.returncode == 0, proc.stderr.read()[-3000:]
            proc.stderr.close()
        time.sleep(0.05)
    # resume (at least once: the last kill may have hit between a round's close and its transcript)
    while True:
        out = subprocess.run(_cmd(data, 0), capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
        assert out.returncode == 0, out.stderr[-3000:]
        if not _open_round(data):
            break

    n = open_market(data).coordinator.current_round()
    assert n >= 2, log
    reference = scratch / "uninterrupted"
    shutil.copytree(sim_template, reference, symlinks=True)
    from protocol.scenario import demo_plans

    run_plans(open_market(reference), [demo_plans(SIM_GRID, 1, seed=0)[0]] * n)
    assert _state(data) == _state(reference), log

    # every closed round's public transcript is there and says what the chain says
    coord = open_market(data).coordinator
    for rid in range(1, n + 1):
        transcript = json.loads(DataDir(data).transcript(rid).read_text())
        assert transcript["round"] == rid and transcript["phase"] == coord.phase(rid).name, log
    verify = subprocess.run([sys.executable, "-m", "protocol", "verify", "--data-dir", str(data), "--json"],
                            capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert verify.returncode == 0 and json.loads(verify.stdout)["ok"], verify.stdout[-3000:]
