"""`repo-market chain up|down|status` as a user runs it (subprocess, --json)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from chain.node import node_state_path, rpc_request

from tests.anvil import require_anvil

ROOT = Path(__file__).resolve().parents[2]


def cli(*args, env=None):
    out = subprocess.run([sys.executable, "-m", "protocol", "chain", *args], capture_output=True, text=True,
                         cwd=ROOT, timeout=120, env=env)
    return out


@pytest.mark.anvil
def test_up_status_down(tmp_path):
    require_anvil()
    data = ["--data-dir", str(tmp_path)]
    up = cli("up", "--json", *data)
    assert up.returncode == 0, up.stderr
    doc = json.loads(up.stdout)  # exactly one JSON document
    assert set(doc) == {"url", "pid"} and doc["url"].startswith("http://127.0.0.1:")
    try:
        assert int(rpc_request(doc["url"], "eth_chainId"), 16) == 31337
        assert json.loads(cli("up", "--json", *data).stdout) == doc  # idempotent: same node
        status = json.loads(cli("status", "--json", *data).stdout)
        assert status["running"] is True and status["url"] == doc["url"] and status["block_number"] == 0
        assert status["state_path"] == str(node_state_path(tmp_path))
    finally:
        down = cli("down", "--json", *data)
    assert down.returncode == 0 and json.loads(down.stdout) == {"stopped": True, "pid": doc["pid"]}
    assert node_state_path(tmp_path).is_file()  # dumped on exit
    status = json.loads(cli("status", "--json", *data).stdout)
    assert status["running"] is False
    assert json.loads(cli("down", "--json", *data).stdout) == {"stopped": False, "pid": None}


@pytest.mark.parametrize("anvil", ["no-such-anvil", "/bin/false", "/bin/true"])
@pytest.mark.parametrize("fresh", ["absent", "empty"])
def test_a_bad_anvil_is_reported_and_leaves_a_fresh_directory_as_it_was(tmp_path, anvil, fresh):
    """A missing binary, or one that exits at once: one failure document, one line, and no writer.lock,
    log or chain/ folder left behind."""
    data = tmp_path / "data"
    if fresh == "empty":
        data.mkdir()
    env = dict(os.environ, REPO_MARKET_ANVIL=anvil if anvil.startswith("/") else str(tmp_path / anvil))
    out = cli("up", "--json", "--data-dir", str(data), env=env)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    doc = json.loads(out.stdout)
    assert set(doc) == {"ok", "error", "detail"} and doc["ok"] is False and doc["error"] == "error"
    assert Path(anvil).name in doc["detail"], doc
    assert out.stderr.strip() == f"repo-market chain: error: {doc['detail']}"
    assert (sorted(data.iterdir()) == [] if fresh == "empty" else not data.exists())


def test_bad_action_names_the_value(tmp_path):
    out = cli("restart", "--data-dir", str(tmp_path / "d"))
    assert out.returncode == 2 and len(out.stderr.splitlines()) == 1
    assert "'restart'" in out.stderr and "up, down, status" in out.stderr and "(see --help)" in out.stderr
    assert not (tmp_path / "d").exists()


def test_anvil_tests_fail_loudly_in_ci_when_the_binary_is_missing(tmp_path, monkeypatch):
    monkeypatch.setenv("REPO_MARKET_ANVIL", str(tmp_path / "no-such-anvil"))
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI must run the anvil tests"):
        require_anvil()
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="CI unset"):
        require_anvil()


def _fake_node(data_dir: Path, token: str):
    """A process that carries data_dir's node identity (state path, token) but serves nothing."""
    import subprocess as sp

    from chain.node import TOKEN_ENV, node_state_path

    state = str(node_state_path(data_dir))
    proc = sp.Popen([sys.executable, "-c", "import time; time.sleep(60)", "--state", state],
                    env={**os.environ, TOKEN_ENV: token})
    for _ in range(200):  # until the child has exec'ed
        if os.fsencode(state) in Path(f"/proc/{proc.pid}/cmdline").read_bytes():
            break
        time.sleep(0.01)
    return proc, state


def test_a_recorded_node_that_does_not_answer_is_not_duplicated(tmp_path):
    from chain.node import NodeError, NodeInfo, node_dir, node_info_path, start_anvil, stop_anvil

    proc, state = _fake_node(tmp_path, "t0ken")
    try:
        node_dir(tmp_path).mkdir(parents=True)
        info = NodeInfo(url="http://127.0.0.1:9", pid=proc.pid, port=9, state_path=state, log_path="", token="t0ken")
        node_info_path(tmp_path).write_text(json.dumps(info.__dict__))
        with pytest.raises(NodeError, match=f"pid {proc.pid}.*does not answer"):
            started = start_anvil(tmp_path)
            stop_anvil(tmp_path)  # only reached if the check failed: leave no node behind
            pytest.fail(f"started a second node {started}")
        assert stop_anvil(tmp_path) == info
        proc.wait(timeout=10)  # stop_anvil may have reaped it already (then wait() reports 0)
        assert not Path(f"/proc/{proc.pid}/cmdline").exists()
    finally:
        proc.kill()


def test_down_on_a_copied_data_directory_leaves_the_original_node_running(tmp_path):
    """node.json copied with its directory names the original's pid and token, but not its state path."""
    import shutil

    from chain.node import NodeInfo, node_dir, node_info_path, node_status, read_node, stop_anvil

    original, copy = tmp_path / "original", tmp_path / "copy"
    proc, state = _fake_node(original, "secret-token")
    try:
        node_dir(original).mkdir(parents=True)
        info = NodeInfo(url="http://127.0.0.1:9", pid=proc.pid, port=9, state_path=state, log_path="",
                        token="secret-token")
        node_info_path(original).write_text(json.dumps(info.__dict__))
        shutil.copytree(original, copy)
        assert read_node(original) == info and read_node(copy) is None
        assert node_status(copy)["pid"] is None
        out = cli("down", "--json", "--data-dir", str(copy))
        assert out.returncode == 0 and json.loads(out.stdout) == {"stopped": False, "pid": None}
        assert stop_anvil(copy) is None
        time.sleep(0.2)
        assert proc.poll() is None  # still running: the copy's down did not touch it
        # a process with the right command line but another token is not the node either
        node_info_path(original).write_text(json.dumps({**info.__dict__, "token": "other"}))
        assert read_node(original) is None
    finally:
        proc.kill()
        proc.wait()
