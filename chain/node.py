"""A local anvil node for a data directory: start, stop, status.

anvil comes from the project-local npm install (scripts/setup.sh --with-anvil); ``REPO_MARKET_ANVIL``
overrides the path. The node listens on 127.0.0.1 only, on a free port, with
``--state data_dir/chain/anvil/state.json`` (loaded at start, dumped on exit and every few seconds, with the
states of past blocks: ``--preserve-historical-states``), so its chain, and the auditor's balance checks at
past blocks, survive a restart. ``node.json`` next to it records url, pid and a random token for
``stop``/``status``.

Which process is this directory's node [decided]: the recorded pid counts only if its command line names
this directory's absolute ``--state`` path *and* its environment carries the recorded token
(``REPO_MARKET_NODE_TOKEN``, set at start). A copied data directory names another path, so ``chain down``
there never stops the original directory's anvil; a recycled pid carries no token.
"""
from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

from .paths import NODE_INFO_FILE, NODE_LOG_FILE, NODE_STATE_FILE, node_dir
from ._io import loads_json

ANVIL_ENV = "REPO_MARKET_ANVIL"
DEFAULT_ANVIL = (Path(__file__).resolve().parents[1] / ".tools" / "node_modules" / "@foundry-rs"
                 / "anvil-linux-amd64" / "bin" / "anvil")
TOKEN_ENV = "REPO_MARKET_NODE_TOKEN"
STATE_INTERVAL_SECONDS = 2  # periodic dump, so a node killed without SIGTERM loses at most one interval


class NodeError(RuntimeError):
    """The local node cannot be started or stopped; the message says why and where."""


@dataclass(frozen=True)
class NodeInfo:
    url: str
    pid: int
    port: int
    state_path: str
    log_path: str
    token: str = ""


def anvil_binary() -> Path:
    """The anvil executable: $REPO_MARKET_ANVIL, else the project-local npm install."""
    return Path(os.environ.get(ANVIL_ENV) or DEFAULT_ANVIL)


def node_info_path(data_dir: Path) -> Path:
    return node_dir(data_dir) / NODE_INFO_FILE


def node_state_path(data_dir: Path) -> Path:
    return node_dir(data_dir) / NODE_STATE_FILE


def rpc_request(url: str, method: str, params: list | None = None, timeout: float = 2.0):
    """One JSON-RPC call with the standard library (no web3 import needed to probe a node)."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []}).encode()
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        reply = json.loads(resp.read())
    if "error" in reply:
        raise NodeError(f"{method} at {url}: {reply['error']}")
    return reply["result"]


def _answers(url: str) -> bool:
    try:
        rpc_request(url, "eth_chainId", timeout=1.0)
        return True
    except (OSError, urllib.error.URLError, NodeError, ValueError):
        return False


def _pid_is_node(pid: int, state_path: str, token: str) -> bool:
    """``pid`` runs with ``state_path`` on its command line and ``token`` in its environment."""
    if not token or not state_path:
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False
    return os.fsencode(state_path) in cmdline and os.fsencode(f"{TOKEN_ENV}={token}") in environ


def _is_ours(info: "NodeInfo", data_dir: Path) -> bool:
    expected = str(node_state_path(data_dir))
    return info.state_path == expected and _pid_is_node(info.pid, expected, info.token)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read_node(data_dir: Path) -> NodeInfo | None:
    """The node recorded for data_dir if its process is still that node (state path and token), else None."""
    path = node_info_path(data_dir)
    if not path.is_file():
        return None
    try:
        info = NodeInfo(**loads_json(path.read_text()))
    except (ValueError, TypeError) as exc:
        raise NodeError(f"{path}: not a node record ({exc}); remove it") from None
    return info if _is_ours(info, data_dir) else None


def start_anvil(data_dir: Path, *, binary: Path | None = None, timeout: float = 30.0) -> NodeInfo:
    """Start anvil for data_dir (or return the one already running) once it answers JSON-RPC."""
    running = read_node(data_dir)
    if running is not None:
        for _ in range(20):  # a node that was just started may need a moment
            if _answers(running.url):
                return running
            time.sleep(0.1)
        # Starting a second node on the same --state file would let two processes dump over each other.
        raise NodeError(f"anvil (pid {running.pid}) of {data_dir} does not answer on {running.url}; "
                        "stop it first (repo-market chain down)")
    binary = Path(binary) if binary else anvil_binary()
    if not binary.is_file() or not os.access(binary, os.X_OK):
        raise NodeError(f"anvil binary not found or not executable: {binary} "
                        f"(run scripts/setup.sh --with-anvil or set {ANVIL_ENV})")
    directory = node_dir(data_dir)
    directory.mkdir(parents=True, exist_ok=True)
    state = node_state_path(data_dir)
    log = directory / NODE_LOG_FILE
    last_error = ""
    token = secrets.token_hex(16)
    env = {**os.environ, TOKEN_ENV: token}
    for _attempt in range(3):  # a free port can be taken between probing and binding
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        with open(log, "ab") as log_file:
            proc = subprocess.Popen(
                # historical states are dumped too: the auditor reads balances at past blocks, which a
                # restarted node could not answer from the latest state alone
                [str(binary), "--host", "127.0.0.1", "--port", str(port), "--state", str(state),
                 "--state-interval", str(STATE_INTERVAL_SECONDS), "--preserve-historical-states", "--silent"],
                stdin=subprocess.DEVNULL, stdout=log_file, stderr=log_file, start_new_session=True, env=env,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and proc.poll() is None:
            if _answers(url):
                info = NodeInfo(url=url, pid=proc.pid, port=port, state_path=str(state), log_path=str(log),
                                token=token)
                node_info_path(data_dir).write_text(json.dumps(asdict(info)))
                return info
            time.sleep(0.05)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
            raise NodeError(f"anvil did not answer on {url} within {timeout} s (log: {log})")
        last_error = f"exited with status {proc.returncode} at start: {_tail(log) or 'it printed nothing'}"
    raise NodeError(f"anvil {binary} {last_error}")


def stop_anvil(data_dir: Path, timeout: float = 15.0) -> NodeInfo | None:
    """Stop the node of data_dir (SIGTERM: anvil dumps its state on exit). Returns what was stopped."""
    info = read_node(data_dir)
    node_info_path(data_dir).unlink(missing_ok=True)
    if info is None:
        return None
    os.kill(info.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _is_ours(info, data_dir):
        _reap(info.pid)
        time.sleep(0.05)
    if _is_ours(info, data_dir):
        os.kill(info.pid, signal.SIGKILL)
    _reap(info.pid)
    return info


def node_status(data_dir: Path) -> dict:
    """{"running": bool, "url", "pid", "block_number", "chain_id", "state_path"} for data_dir's node."""
    info = read_node(data_dir)
    status: dict = {"running": False, "url": None, "pid": None, "block_number": None, "chain_id": None,
                    "state_path": str(node_state_path(data_dir))}
    if info is None:
        return status
    status.update(url=info.url, pid=info.pid)
    try:
        status["block_number"] = int(rpc_request(info.url, "eth_blockNumber"), 16)
        status["chain_id"] = int(rpc_request(info.url, "eth_chainId"), 16)
        status["running"] = True
    except (OSError, urllib.error.URLError, NodeError, ValueError):
        pass
    return status


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)  # only our own children can be reaped; others: ChildProcessError
    except ChildProcessError:
        pass


def _tail(path: Path, lines: int = 5) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").strip().splitlines()[-lines:])
    except OSError:
        return ""
