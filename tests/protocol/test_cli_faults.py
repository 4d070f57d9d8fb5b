"""Faults at the command line: exit status and one clean line after concrete has run, the data
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
    return subprocess.run([sys.executable, "-m", "protocol", *args], capture_output=True, text=True,
                          cwd=cwd, env=_env(), timeout=600)


def test_two_demos_on_one_fresh_directory_one_refuses_at_once(scratch):
    """Two concurrent `demo` processes on a fresh directory: exactly one builds the market, the other refuses
    at once naming the directory and the holder's pid; market.json names the one contract deployed."""
    data = scratch / "market"
    cmd = [sys.executable, "-m", "protocol", "demo", "--data-dir", str(data), "--backend", "simulate",
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
    (shadow / "protocol" / "__main__.py").write_text(FAKE_AUDITOR)
    # the old way of starting the auditor runs the stand-in
    old = subprocess.run([sys.executable, "-m", "protocol", "verify", "--data-dir", str(sim_demo[0]), "--json"],
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


# --- the environment: unreadable caches, no HOME, a read-only data directory, a full disk -----------------

def _as_plain_user() -> list[str]:
    """A command prefix under which file permissions bind. As root they would not (CAP_DAC_OVERRIDE), so
    root runs the command with that capability (and CAP_DAC_READ_SEARCH) dropped from its bounding set:
    chmod 000 then really stops the process, as it stops any user."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.fail("running as root needs setpriv (util-linux) to drop CAP_DAC_OVERRIDE for this test")
    return [setpriv, "--bounding-set=-dac_override,-dac_read_search"]


def _read_only_checkout(tmp: Path) -> Path:
    """A copy of the project's packages in a folder this process cannot write (as an installed package is),
    so the fixed FFT plan library is looked for in the user cache, not in <checkout>/.tools."""
    checkout = tmp / "checkout"
    checkout.mkdir()
    for name in ("common", "market", "crypto", "protocol", "chain"):
        shutil.copytree(ROOT / name, checkout / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", checkout / "pyproject.toml")
    checkout.chmod(0o555)
    return checkout


def _plain_env(home: Path | None, tmpdir: Path, pythonpath: Path) -> dict[str, str]:
    env = {k: v for k, v in _env().items() if k not in ("HOME", "XDG_CACHE_HOME", "XDG_CONFIG_HOME", "MPLCONFIGDIR",
                                                      "REPO_MARKET_FIXED_FFT_PLAN_REEXEC")}
    # start without the library preloaded, as a user's shell does
    env["LD_PRELOAD"] = " ".join(p for p in env.get("LD_PRELOAD", "").split() if "fixed_fft_plan" not in p)
    env.update(TMPDIR=str(tmpdir), PYTHONPATH=str(pythonpath))
    if home is not None:
        env["HOME"] = str(home)
    return env


PLAN_ACTIVE = ("import sys; from protocol.entry import preload_fixed_fft_plan; preload_fixed_fft_plan(); "
               "from crypto.fhe_runtime import fixed_plan_active, library_path; "
               "import ctypes; print(fixed_plan_active())")


@pytest.fixture
def unreadable_cache(scratch):
    """A HOME whose ~/.cache/repo-market cannot be read (chmod 000), and a checkout that cannot be written."""
    home = scratch / "home"
    cache = home / ".cache" / "repo-market"
    cache.mkdir(parents=True)
    tmpdir = scratch / "tmp"
    tmpdir.mkdir()
    checkout = _read_only_checkout(scratch)
    cache.chmod(0o000)
    yield home, tmpdir, checkout
    cache.chmod(0o700)
    checkout.chmod(0o755)


def test_an_unreadable_cache_gives_one_warning_and_a_working_fixed_plan(unreadable_cache, scratch):
    home, tmpdir, checkout = unreadable_cache
    env = _plain_env(home, tmpdir, checkout)
    probe = subprocess.run([*_as_plain_user(), sys.executable, "-c", "import os; os.listdir(os.environ['HOME'] + "
                            "'/.cache/repo-market')"], env=env, capture_output=True, text=True, timeout=60)
    assert "PermissionError" in probe.stderr, "the cache must really be unreadable to this process"
    out = subprocess.run([*_as_plain_user(), sys.executable, "-m", "protocol", "equilibria", "--linear", "400",
                          "460", "1", "1", "--grid", "10", "--json", "--data-dir", str(scratch / "d")],
                         env=env, capture_output=True, text=True, timeout=300, cwd=scratch)
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr[-2000:]
    assert json.loads(out.stdout)["grid"] == 10
    lines = out.stderr.strip().splitlines()
    fallback = tmpdir / f"repo-market-{os.getuid()}"
    assert len(lines) == 1 and lines[0].startswith("repo-market: warning: ") and "Permission denied" in lines[0]
    assert str(fallback) in lines[0], lines
    library = next(fallback.glob("libfixed_fft_plan-*.so"))
    assert oct(fallback.stat().st_mode & 0o777) == "0o700" and library.stat().st_uid == os.getuid()
    # the fallback library really is preloaded after the restart
    active = subprocess.run([*_as_plain_user(), sys.executable, "-c", PLAN_ACTIVE], env=env, capture_output=True,
                            text=True, timeout=120)
    assert active.stdout.strip() == "True" and "Traceback" not in active.stderr, active.stderr


def test_nowhere_to_build_the_library_is_one_warning_and_commands_that_do_not_evaluate_still_work(
        unreadable_cache, scratch):
    home, tmpdir, checkout = unreadable_cache
    (tmpdir / f"repo-market-{os.getuid()}").write_text("a file where the fallback folder would go")
    out = subprocess.run([*_as_plain_user(), sys.executable, "-m", "protocol", "select", "--schedules",
                          str(_good_schedules(scratch)), "--backend", "plain", "--json", "--data-dir",
                          str(scratch / "d")], env=_plain_env(home, tmpdir, checkout), capture_output=True,
                         text=True, timeout=300, cwd=scratch)
    assert out.returncode == 0 and json.loads(out.stdout)["selected"]["volume"] == 3, out.stderr[-2000:]
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "warning" in lines[0] and "fallback" in lines[0] and "Traceback" not in out.stderr


def _good_schedules(scratch: Path) -> Path:
    path = scratch / "good.json"
    path.write_text(json.dumps({"b": [300, 301, 302, 303, 304], "a": [310, 309, 308, 307, 306]}))
    return path


def test_no_home_at_all(scratch):
    """HOME unset: the library and matplotlib's cache are found or made elsewhere; nothing is printed."""
    tmpdir = scratch / "tmp"
    tmpdir.mkdir()
    env = _plain_env(None, tmpdir, ROOT)
    out = subprocess.run([sys.executable, "-m", "protocol", "equilibria", "--linear", "400", "460", "1", "1",
                          "--grid", "10", "--plot", str(scratch / "map.png"), "--json"], env=env,
                         capture_output=True, text=True, timeout=300, cwd=scratch)
    assert out.returncode == 0 and out.stderr == "", out.stderr[-2000:]
    assert json.loads(out.stdout)["plot"] == str(scratch / "map.png") and (scratch / "map.png").stat().st_size > 0
    active = subprocess.run([sys.executable, "-c", PLAN_ACTIVE], env=env, capture_output=True, text=True, timeout=120)
    assert active.stdout.strip() == "True", active.stderr


def test_an_unwritable_home_leaves_no_matplotlib_warning_or_folder(scratch):
    home, tmpdir = scratch / "home", scratch / "tmp"
    home.mkdir()
    tmpdir.mkdir()
    home.chmod(0o555)
    try:
        out = subprocess.run([*_as_plain_user(), sys.executable, "-m", "protocol", "equilibria", "--linear",
                              "400", "460", "1", "1", "--grid", "10", "--plot", str(scratch / "map.png"), "--json",
                              "--data-dir", str(scratch / "d")], env=_plain_env(home, tmpdir, ROOT),
                             capture_output=True, text=True, timeout=300, cwd=scratch)
    finally:
        home.chmod(0o755)
    assert out.returncode == 0 and out.stderr == "", out.stderr[-2000:]
    assert [p.name for p in tmpdir.iterdir()] == [f"repo-market-{os.getuid()}"]  # no matplotlib-XXXX leftovers


def test_a_read_only_data_directory_refuses_writers_in_one_line_and_verify_still_reads_it(sim_demo, scratch):
    data = scratch / "market"
    shutil.copytree(sim_demo[0], data, symlinks=True)
    (data / LOCK_NAME).unlink(missing_ok=True)
    before = {str(p.relative_to(data)): p.stat().st_mtime_ns for p in data.rglob("*")}
    modes = {p: p.stat().st_mode for p in [data, *data.rglob("*")] if p.is_dir()}
    for folder in modes:
        folder.chmod(0o555)
    try:
        for command in (["demo", "--backend", "simulate", "--grid", str(SIM_GRID), "--rounds", "1"],
                        ["chain", "status"], ["select", "--schedules", str(_good_schedules(scratch)),
                                              "--backend", "simulate"]):
            out = subprocess.run([*_as_plain_user(), sys.executable, "-m", "protocol", *command, "--data-dir",
                                  str(data), "--json"], capture_output=True, text=True, env=_env(), timeout=300)
            assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr[-2000:]
            assert out.stderr.strip().splitlines() == [f"repo-market {command[0]}: error: --data-dir {data}: cannot "
                                                       f"open its lock file {data / LOCK_NAME} (Permission denied)"]
            assert json.loads(out.stdout) == {"ok": False, "error": "error",
                                              "detail": out.stderr.split(": error: ", 1)[1].strip()}
        verify = subprocess.run([*_as_plain_user(), sys.executable, "-m", "protocol", "verify", "--data-dir",
                                 str(data), "--json"], capture_output=True, text=True, env=_env(), timeout=600)
        assert verify.returncode == 0 and json.loads(verify.stdout)["ok"], verify.stderr[-2000:]
    finally:
        for folder, mode in modes.items():
            folder.chmod(mode)
    assert {str(p.relative_to(data)): p.stat().st_mtime_ns for p in data.rglob("*")} == before


def test_a_full_disk_is_one_line_naming_the_file_and_leaves_no_partial_output(scratch):
    """RLIMIT_FSIZE makes every write past 4 KB fail with EFBIG, as a full disk fails with ENOSPC."""
    import resource

    out_dir = scratch / "out"

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))

    out = subprocess.run([sys.executable, "-m", "protocol", "experiment", "fee-sweep", "--replications", "2",
                          "--out", str(out_dir), "--json", "--data-dir", str(scratch / "d")], capture_output=True,
                         text=True, env=_env(), timeout=300, cwd=scratch, preexec_fn=limit)
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr[-2000:]
    line = f"repo-market experiment: error: cannot write {out_dir / 'fee-sweep.json'}: File too large"
    assert out.stderr.strip() == line
    assert json.loads(out.stdout) == {"ok": False, "error": "error", "detail": line.split(": error: ", 1)[1]}
    assert not out_dir.exists() and not (scratch / "d").exists()


# --- a failed command on a fresh data directory leaves it exactly as it was ----------------------------------

@pytest.mark.parametrize("fresh", ["absent", "empty", "nested-absent"])
@pytest.mark.parametrize("command", [
    ["chain", "up"],
    ["demo", "--backend", "simulate", "--grid", str(SIM_GRID), "--rounds", "1", "--rpc", "@down-after-check"],
    ["experiment", "fee-sweep", "--replications", "1", "--out", "@unwritable"],
    ["bench", "no-such-benchmark"],
    ["allocate", "--alpha", "10", "--beta", "1", "--method", "onchain", "--rpc", "@down-after-check"],
], ids=["chain-up", "demo", "experiment", "bench", "allocate-onchain"])
def test_a_failed_command_leaves_a_fresh_directory_as_it_was(command, fresh, scratch):
    data = {"absent": scratch / "data", "empty": scratch / "data", "nested-absent": scratch / "a" / "b" / "data"}[fresh]
    if fresh == "empty":
        data.mkdir()
    node = _AnswersOnce()
    unwritable = scratch / "file-not-folder"
    unwritable.write_text("x")
    argv = [{"@down-after-check": node.url, "@unwritable": str(unwritable / "out")}.get(a, a) for a in command]
    try:
        common = ["--json", "--data-dir", str(data)]
        full = [argv[0], *common, *argv[1:]] if argv[0] == "bench" else [*argv, *common]  # bench: NAME ARGS... last
        out = subprocess.run([sys.executable, "-m", "protocol", *full],
                             capture_output=True, text=True, cwd=scratch, timeout=600,
                             env=_env(REPO_MARKET_ANVIL="/bin/false"))
    finally:
        node.close()
    assert out.returncode in (1, 2) and "Traceback" not in out.stderr, out.stderr[-2000:]
    doc = json.loads(out.stdout)
    assert set(doc) == {"ok", "error", "detail"} and doc["ok"] is False
    if fresh == "empty":
        assert list(data.iterdir()) == []
    else:
        assert not data.exists() and sorted(p.name for p in scratch.iterdir()) == ["file-not-folder"]


class _AnswersOnce:
    """A node that answers the up-front eth_chainId check, then closes its port: the command fails at
    run time, after it has taken the data directory's lock."""

    def __init__(self):
        import http.server
        import threading

        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                data = json.dumps({"jsonrpc": "2.0", "id": request["id"], "result": "0x7a69"}).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                threading.Thread(target=owner.close, daemon=True).start()

            def log_message(self, *args):
                pass

        self.server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._closed = False
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        if not self._closed:
            self._closed = True
            self.server.shutdown()
            self.server.server_close()


def test_a_failed_audit_carries_the_failure_documents_keys(demo_copy):
    """verify's report stays whole (rounds, checks, failures), and a failed one also has "error" and
    "detail" like every other failure document; the table says the same in one line."""
    transcript = DataDir(demo_copy).transcript(2)
    doc = json.loads(transcript.read_text())
    doc["phase"] = "INSTRUCTED" if doc["phase"] != "INSTRUCTED" else "SETTLED"
    transcript.write_text(json.dumps(doc))
    out = _cli("verify", "--data-dir", str(demo_copy), "--json", "--round", "2")
    report = json.loads(out.stdout)
    assert out.returncode == 1 and report["ok"] is False and report["error"] == "verification failed"
    first = report["failures"][0]
    assert report["detail"].startswith(f"{len(report['failures'])} failed check(s); first: round {first['round']} "
                                       f"{first['check']}: ")
    assert "Traceback" not in out.stderr


def test_the_writer_lock_cleans_a_fresh_directory_only_until_a_market_exists(scratch):
    from protocol.layout import data_dir_lock

    plain, with_market, existing = scratch / "a" / "b", scratch / "m", scratch / "e"
    with pytest.raises(RuntimeError):
        with data_dir_lock(plain, "test"):
            (plain / "blobs").mkdir()
            (plain / "blobs" / "x").write_bytes(b"1")
            raise RuntimeError("failed after writing")
    assert not (scratch / "a").exists()  # the folders it created, parents included, are gone
    with pytest.raises(RuntimeError):
        with data_dir_lock(with_market, "test"):
            (with_market / "simulate-simulate-N6").mkdir()
            (with_market / "simulate-simulate-N6" / "market.json").write_text("{}")
            raise RuntimeError("failed after a market was made")
    assert (with_market / "simulate-simulate-N6" / "market.json").exists()  # kept: it can be resumed
    existing.mkdir()
    (existing / "notes.txt").write_text("mine")
    with pytest.raises(RuntimeError):
        with data_dir_lock(existing, "test"):
            (existing / "blobs").mkdir()
            raise RuntimeError("failed in a directory that was not fresh")
    assert sorted(p.name for p in existing.iterdir()) == ["blobs", "notes.txt", LOCK_NAME]  # not fresh: kept


@pytest.mark.parametrize("command", [
    ["equilibria", "--linear", "400", "460", "1", "1", "--grid", "400", "--json"],
    ["allocate", "--alpha", *["5"] * 200, "--beta", *["1"] * 200],
    ["simulate", "--rounds", "5", "--grid", "10", "--json"],
], ids=["equilibria-json", "allocate-table", "simulate-json"])
def test_a_reader_that_goes_away_is_no_traceback(command, scratch):
    """stdout closed early (`| head -c 1`): the command stops quietly, never with a BrokenPipeError traceback."""
    import shlex

    line = " ".join(shlex.quote(w) for w in [sys.executable, "-m", "protocol", *command, "--data-dir",
                                             str(scratch / "d")])
    out = subprocess.run(["bash", "-c", f"{line} 2>{scratch / 'err'} | head -c 1 >/dev/null; "
                                        "echo ${PIPESTATUS[0]}"], capture_output=True, text=True, cwd=ROOT,
                         env=_env(), timeout=300)
    err = (scratch / "err").read_text()
    assert "Traceback" not in err and "BrokenPipe" not in err and err.strip() == "", err[-2000:]
    assert int(out.stdout.strip()) in (0, 1, 141)
    assert not (scratch / "d").exists()


@pytest.mark.parametrize("command,target", [
    (["equilibria", "--linear", "400", "460", "1", "1", "--grid", "10", "--plot", "@/map.png"], "@/map.png"),
    (["simulate", "--rounds", "3", "--grid", "10", "--plot", "@/plots"], "@/plots"),
    (["experiment", "fee-sweep", "--replications", "1", "--out", "@/out"], "@/out"),
], ids=["equilibria-plot", "simulate-plot", "experiment-out"])
def test_a_read_only_output_folder_is_one_line_naming_the_path(command, target, scratch):
    folder = scratch / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    argv = [w.replace("@", str(folder)) for w in command]
    try:
        out = subprocess.run([*_as_plain_user(), sys.executable, "-m", "protocol", *argv, "--json", "--data-dir",
                              str(scratch / "d")], capture_output=True, text=True, cwd=ROOT, env=_env(), timeout=300)
    finally:
        folder.chmod(0o755)
    path = target.replace("@", str(folder))
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr[-2000:]
    doc = json.loads(out.stdout)
    assert doc["ok"] is False and doc["detail"].startswith(f"cannot write {path}") and "Permission denied" in doc["detail"]
    assert out.stderr.strip() == f"repo-market {command[0]}: error: {doc['detail']}"
    assert list(folder.iterdir()) == [] and not (scratch / "d").exists()
