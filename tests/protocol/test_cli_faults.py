"""Faults at the command line (issue 15): exit status and one clean line after concrete has run, the data
directory's writer lock between concurrent processes, the isolated auditor, one evaluator bound."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from protocol.layout import LOCK_NAME, PRIVATE_REPORT, DataDir

from .conftest import SIM_GRID

ROOT = Path(__file__).resolve().parents[2]

# A real `repo-market verify` process whose subcommand first runs the compiled circuit (so concrete's native
# runtime is loaded and has run) and then raises the given error.
FAILING_AFTER_CIRCUIT = """
import sys
from protocol import cli
from protocol.commands import verify

KIND = sys.argv.pop(1)


def run(args):
    from crypto.circuit import SelectionCircuit
    from market.terms import MarketTerms

    circuit = SelectionCircuit.simulation_only(MarketTerms(grid=4, base_rate=300))
    circuit.simulate([1, 2, 3, 4, 5], 0, [9, 8, 7, 6, 5], 0)
    from chain import ChainError
    from crypto.errors import BindingMismatchError
    from market.terms import ReportError
    from protocol.roles import ProtocolError

    raise {"chain": ChainError("execution reverted: deadline passed"),
           "binding": BindingMismatchError("envelope bound to round 2, expected round 1"),
           "report": ReportError("b[3] = 7: not increasing"),
           "protocol": ProtocolError("round 1: stopped in phase REPORTED"),
           "unexpected": KeyError("surprise")}[KIND]


verify.run = run
verify.validate = None
cli.main()
"""


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in ("REPO_MARKET_DEBUG", "REPO_MARKET_CRASH_AFTER")}
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


@pytest.mark.parametrize("kind,message,as_json", [
    ("chain", "execution reverted: deadline passed", False),
    ("chain", "execution reverted: deadline passed", True),
    ("binding", "envelope bound to round 2", False),
    ("binding", "envelope bound to round 2", True),
    ("report", "b[3] = 7", False),
    ("protocol", "stopped in phase REPORTED", True),
    ("unexpected", "internal error: KeyError: 'surprise' (rerun with REPO_MARKET_DEBUG=1", False),
])
def test_an_error_after_the_circuit_ran_exits_non_zero_with_one_line(tmp_path, kind, message, as_json):
    script = tmp_path / "failing.py"
    script.write_text(FAILING_AFTER_CIRCUIT)
    args = [sys.executable, str(script), kind, "verify", "--data-dir", str(tmp_path)] + (["--json"] if as_json else [])
    out = subprocess.run(args, capture_output=True, text=True, cwd=tmp_path, env=_env(), timeout=300)
    assert out.returncode == 1, (out.returncode, out.stderr[-2000:])
    assert "Traceback" not in out.stderr + out.stdout
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("repo-market verify: ") and message in lines[0], out.stderr
    if as_json:
        doc = json.loads(out.stdout)  # exactly one JSON document
        assert doc["ok"] is False and message.split(" (rerun")[0].split(": ", 1)[-1] in doc["detail"]
    else:
        assert out.stdout == ""


def test_the_debug_variable_shows_the_traceback(tmp_path):
    script = tmp_path / "failing.py"
    script.write_text(FAILING_AFTER_CIRCUIT)
    out = subprocess.run([sys.executable, str(script), "unexpected", "verify", "--data-dir", str(tmp_path)],
                         capture_output=True, text=True, env=_env(REPO_MARKET_DEBUG="1"), timeout=300)
    assert out.returncode == 1 and "Traceback" in out.stderr and "KeyError" in out.stderr


# --- one writer per data directory ---------------------------------------------------------------------

HOLD_LOCK = """
import sys, time
from pathlib import Path
from protocol.layout import data_dir_lock
with data_dir_lock(Path(sys.argv[1]), "holder"):
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def _cli(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "protocol.cli", *args], capture_output=True, text=True,
                          cwd=cwd, env=_env(), timeout=600)


def test_two_demos_on_one_fresh_directory_one_refuses_at_once(scratch):
    """Two concurrent `demo` processes on a fresh directory: exactly one builds the market, the other refuses
    at once naming the directory and the holder's pid; market.json names the one contract deployed."""
    data = scratch / "market"
    cmd = [sys.executable, "-m", "protocol.cli", "demo", "--data-dir", str(data), "--backend", "simulate",
           "--grid", str(SIM_GRID), "--rounds", "0", "--no-verify", "--json"]
    first = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=_env())
    try:
        lock = data / LOCK_NAME
        for _ in range(600):
            if lock.exists() and lock.read_text().strip():
                break
            time.sleep(0.05)
        assert lock.read_text().startswith(f"pid {first.pid} ")
        started = time.perf_counter()
        second = _cli(*cmd[3:])
        assert time.perf_counter() - started < 60  # refused at once, not after building anything
        assert second.returncode == 1 and "Traceback" not in second.stderr
        assert str(data) in second.stderr and f"pid {first.pid}" in second.stderr, second.stderr
        assert first.poll() is None, "the first demo should still be building its market"
    finally:
        out, err = first.communicate(timeout=600)
    assert first.returncode == 0, err[-3000:]
    from protocol.deployment import open_market

    dep = open_market(data)
    assert dep.coordinator.code_matches_source()
    assert _contract_creations(dep) == [dep.contract_address.lower()]


def _contract_creations(dep) -> list[str]:
    """Addresses of every contract created on the chain, from its blocks and receipts."""
    w3 = dep.chain.w3
    out = []
    for n in range(0, int(w3.eth.block_number) + 1):
        for tx in w3.eth.get_block(n, full_transactions=True)["transactions"]:
            if not tx.get("to"):
                out.append(w3.eth.get_transaction_receipt(tx["hash"])["contractAddress"].lower())
    return out


def test_a_second_writer_refuses_while_verify_stays_concurrent(sim_demo, scratch):
    data = scratch / "market"
    shutil.copytree(sim_demo[0], data, symlinks=True)
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(data), "120"], stdout=subprocess.PIPE,
                              text=True, env=_env())
    try:
        assert holder.stdout.readline().strip() == "locked"
        for command in (["demo", "--backend", "simulate", "--grid", str(SIM_GRID), "--rounds", "1"],
                        ["chain", "status"]):
            out = _cli(*command, "--data-dir", str(data))
            assert out.returncode == 1, out.stderr
            assert re.search(rf"--data-dir {re.escape(str(data))}: another repo-market process is writing here "
                             rf"\(pid {holder.pid} \(holder\)\)", out.stderr), out.stderr
        verify = _cli("verify", "--data-dir", str(data), "--json")  # the reader takes no lock
        assert verify.returncode == 0 and json.loads(verify.stdout)["ok"], verify.stdout[-2000:]
    finally:
        holder.kill()
        holder.wait()
    out = _cli("chain", "status", "--data-dir", str(data), "--json")  # the lock died with its holder
    assert out.returncode == 0 and json.loads(out.stdout)["running"] is False


def test_a_refused_command_leaves_no_directory_behind(scratch):
    data = scratch / "a" / "b"
    out = _cli("demo", "--data-dir", str(data), "--grid", "2")
    assert out.returncode == 2 and not data.exists()
    out = _cli("chain", "status", "--data-dir", str(data), "--json")  # needed nothing: leaves nothing
    assert out.returncode == 0 and not data.exists()


# --- the auditor cannot be shadowed --------------------------------------------------------------------

FAKE_AUDITOR = 'import json; print(json.dumps({"ok": True, "rounds": [], "failures": []}))\n'


def test_a_protocol_folder_in_the_working_directory_cannot_replace_the_auditor(sim_demo, scratch, monkeypatch):
    from protocol.demo import run_verify_process

    shadow = scratch / "cwd"
    (shadow / "protocol").mkdir(parents=True)
    (shadow / "protocol" / "__init__.py").write_text("")
    (shadow / "protocol" / "cli.py").write_text(FAKE_AUDITOR)
    # the old way of starting the auditor runs the stand-in
    old = subprocess.run([sys.executable, "-m", "protocol.cli", "verify", "--data-dir", str(sim_demo[0]), "--json"],
                         capture_output=True, text=True, cwd=shadow, timeout=300)
    assert json.loads(old.stdout)["rounds"] == []
    monkeypatch.chdir(shadow)
    monkeypatch.setenv("PYTHONPATH", str(shadow))  # ignored by the isolated interpreter
    result = run_verify_process(Path(os.path.relpath(sim_demo[0], shadow)), None)
    checks = sum(len(r["checks"]) for r in result["rounds"])
    assert result["ok"] and result["exit_status"] == 0 and checks > 20, result.get("failures")


def test_a_verify_result_with_no_checks_is_a_failure(sim_demo, scratch, monkeypatch):
    import protocol.demo as demo

    fake = scratch / "fake_auditor.py"
    fake.write_text(FAKE_AUDITOR)
    monkeypatch.setattr(demo, "auditor_command", lambda data_dir: [sys.executable, str(fake)])
    result = demo.run_verify_process(sim_demo[0], None)
    assert result["ok"] is False and "0 checks" in result["failures"][-1]["detail"]


# --- one evaluator bound ---------------------------------------------------------------------------------

def test_the_evaluator_bound_is_the_contracts():
    from chain.coordinator import MAX_EVALUATORS

    source = (ROOT / "chain" / "contracts" / "Coordinator.vy").read_text()
    assert int(re.search(r"^MAX_EVALUATORS: constant\(uint256\) = (\d+)$", source, re.M).group(1)) == MAX_EVALUATORS
    out = _cli("demo", "--evaluators", str(MAX_EVALUATORS + 1), "--data-dir", "/nonexistent/x")
    assert out.returncode == 2 and f"--evaluators {MAX_EVALUATORS + 1}: must be in 1..{MAX_EVALUATORS}" in out.stderr


# --- transcripts as rounds close; report.json public, the narrator's part 0600 ------------------------------

def test_a_rounds_transcript_is_written_when_it_closes(fresh_market):
    from protocol.deployment import open_market
    from protocol.rounds import RoundDriver
    from protocol.scenario import deal_inputs, demo_plans

    dep = open_market(fresh_market)
    deal_inputs(dep, 1, demo_plans(SIM_GRID, 1, seed=0)[0])
    run = RoundDriver(dep, dep.circuit()).run_round(1)
    transcript = json.loads(dep.data_dir.transcript(1).read_text())
    assert transcript["phase"] == run["phase"] == "SETTLED" and transcript["gas"] == run["gas"]


def test_report_json_holds_no_private_inputs(fresh_market):
    import stat

    from protocol.demo import PRIVATE_ROUND_KEYS, run_demo

    report = run_demo(fresh_market, rounds=2, grid=SIM_GRID, backend="simulate", verify=False)
    public_path, private_path = DataDir(fresh_market).report_file, fresh_market / PRIVATE_REPORT
    public = json.loads(public_path.read_text())
    assert [r["round"] for r in public["rounds"]] == [1, 2]
    for r in public["rounds"]:
        assert not set(PRIVATE_ROUND_KEYS) & set(r)
    text = public_path.read_text()
    for r in report["rounds"]:  # the true schedules' hurdles and theta appear nowhere in the public file
        assert "theta_mm" not in text and "hurdle_mm" not in text and '"equilibria"' not in text
        assert r["inputs"]["theta_mm"] is not None
    private = json.loads(private_path.read_text())
    assert private["rounds"][0]["inputs"] == report["rounds"][0]["inputs"]
    assert stat.S_IMODE(private_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(private_path.parent.stat().st_mode) == 0o700
