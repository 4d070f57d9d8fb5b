"""A local anvil node for a data directory: start, stop, status.

anvil comes from the project-local npm install (scripts/setup.sh --with-anvil); ``REPO_MARKET_ANVIL``
overrides the path. The node listens on 127.0.0.1 only, on a free port, with
``--state data_dir/chain/anvil/state.json`` (loaded at start, dumped on exit, with the states of past
blocks: ``--preserve-historical-states``), so its chain, and the auditor's balance checks at past blocks,
survive a restart. ``node.json`` next to it records url, pid and a random token for ``stop``/``status``.

When the state is saved [decided]: on exit (``chain down``), and by ``save_node_state`` when a command that
holds the data directory's writer lock finishes (``protocol.layout.data_dir_lock``), so a node killed
later loses nothing the project wrote. Not periodically: the file holds every past block's state (about
80 kB per block), and anvil's ``--state-interval`` rewrote all of it every interval, so an idle node's
CPU grew with its chain (benchmarks/bench_node.py measures both).

Which process is this directory's node [decided]: the recorded pid counts only if its command line names
this directory's absolute ``--state`` path *and* its environment carries the recorded token
(``REPO_MARKET_NODE_TOKEN``, set at start). A copied data directory names another path, so ``chain down``
there never stops the original directory's anvil; a recycled pid carries no token.
"""
from __future__ import annotations

import gzip
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

from web3 import HTTPProvider

from common import strict_json

from .errors import ChainPackageError
from .paths import NODE_INFO_FILE, NODE_LOG_FILE, NODE_STATE_FILE, node_dir


ANVIL_ENV = "REPO_MARKET_ANVIL"
DEFAULT_ANVIL = (Path(__file__).resolve().parents[1] / ".tools" / "node_modules" / "@foundry-rs"
                 / "anvil-linux-amd64" / "bin" / "anvil")
TOKEN_ENV = "REPO_MARKET_NODE_TOKEN"
STOP_TIMEOUT_SECONDS = 120.0  # anvil writes its whole state file on SIGTERM: ~3 s per 1,000 blocks measured
SAVE_TIMEOUT_SECONDS = 600.0


class NodeError(ChainPackageError, RuntimeError):
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


MAX_RPC_REPLY_BYTES = 64 << 20  # [decided] far above any reply the project asks for (a block's logs)


def rpc_request(url: str, method: str, params: list | None = None, timeout: float = 2.0):
    """One JSON-RPC call with the standard library (no web3 import needed to probe a node); the reply is
    checked like every node reply (:func:`check_rpc_reply`)."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []}).encode()
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        raw = resp.read(MAX_RPC_REPLY_BYTES + 1)
    try:
        reply = strict_json.loads(raw)
    except strict_json.JsonInputError as exc:
        raise RpcReplyError(f"{url}: {method} answered ambiguous JSON ({exc})") from None
    except (ValueError, RecursionError) as exc:
        raise RpcReplyError(f"{url}: {method} answered something that is not JSON-RPC "
                            f"({type(exc).__name__}: {_short(raw)})") from None
    return check_rpc_reply(url, method, reply)


# --- every value read from a node is checked where it is read ------------------------------------------

class RpcReplyError(NodeError):
    """A node answered a JSON-RPC call with something malformed; the message names the node, the method
    and the value. A ChainError too when chain.errors is importable (see :func:`_as_chain_error`)."""


def _short(value, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


_QUANTITY = re.compile(r"\A0x[0-9a-fA-F]{1,64}\Z")  # at most 2**256 - 1
_DATA = re.compile(r"\A0x(?:[0-9a-fA-F]{2})*\Z")
MAX_DATA_HEX = 2 * (1 << 20)  # 1 MiB of returned data or code [decided]


def _quantity(value) -> bool:
    return isinstance(value, str) and bool(_QUANTITY.match(value))


def _small(value) -> bool:
    """A quantity below 2**63: chain ids, block numbers, nonces, timestamps, gas, log indices [decided]."""
    return _quantity(value) and int(value, 16) < 1 << 63


def _data(value, size: int | None = None) -> bool:
    if not isinstance(value, str) or len(value) > MAX_DATA_HEX + 2 or not _DATA.match(value):
        return False
    return size is None or len(value) == 2 + 2 * size


def _opt(check):
    return lambda v: v is None or check(v)


def _hash(v) -> bool:
    return _data(v, 32)


def _address(v) -> bool:
    return _data(v, 20)


def _log(v) -> bool:
    return (isinstance(v, dict) and _address(v.get("address")) and isinstance(v.get("topics"), list)
            and len(v["topics"]) <= 4 and all(_hash(t) for t in v["topics"]) and _data(v.get("data"))
            and _opt(_small)(v.get("blockNumber")) and _opt(_hash)(v.get("blockHash"))
            and _opt(_hash)(v.get("transactionHash")) and _opt(_small)(v.get("logIndex")))


def _fields(**checks):
    """A JSON object whose named fields pass their checks (other fields are not read)."""
    def check(v) -> bool:
        return isinstance(v, dict) and all(name in v and ok(v[name]) for name, ok in checks.items())
    return check


_BLOCK = _fields(number=_small, hash=_hash, parentHash=_hash, timestamp=_small,
                 transactions=lambda v: isinstance(v, list))
_RECEIPT = _fields(transactionHash=_hash, blockNumber=_small, blockHash=_hash, gasUsed=_small,
                   status=lambda v: v in ("0x0", "0x1"), logs=lambda v: isinstance(v, list) and all(_log(x) for x in v),
                   contractAddress=_opt(_address))
_TRANSACTION = _fields(hash=_hash, nonce=_small, blockNumber=_opt(_small),
                       input=_data, value=_quantity)

# method -> (check of the result, what it should be); methods not listed are not read by the project
RPC_RESULT_CHECKS = {
    "eth_chainId": (lambda v: _small(v) and int(v, 16) > 0, "a hex quantity in 1..2**63-1"),
    "eth_blockNumber": (_small, "a hex quantity below 2**63"),
    "eth_getBalance": (_quantity, "a hex quantity"),
    "eth_getTransactionCount": (_small, "a hex quantity below 2**63"),
    "eth_estimateGas": (_small, "a hex quantity below 2**63"),
    "eth_gasPrice": (_quantity, "a hex quantity"),
    "eth_maxPriorityFeePerGas": (_quantity, "a hex quantity"),
    "eth_getCode": (_data, "hex data"),
    "eth_call": (_data, "hex data"),
    "eth_sendRawTransaction": (_hash, "a 32-byte transaction hash"),
    "eth_getBlockByNumber": (_opt(_BLOCK), "a block (number, hash, parentHash, timestamp, transactions)"),
    "eth_getBlockByHash": (_opt(_BLOCK), "a block (number, hash, parentHash, timestamp, transactions)"),
    "eth_getTransactionReceipt": (_opt(_RECEIPT), "a receipt (transactionHash, blockNumber, blockHash, "
                                                  "gasUsed, status, logs, contractAddress)"),
    "eth_getTransactionByHash": (_opt(_TRANSACTION), "a transaction (hash, nonce, blockNumber, input, value)"),
    "eth_getLogs": (lambda v: isinstance(v, list) and all(_log(x) for x in v), "a list of logs"),
    "web3_clientVersion": (lambda v: isinstance(v, str) and 0 < len(v) <= 1000, "a client version string"),
    "eth_accounts": (lambda v: isinstance(v, list) and all(_address(x) for x in v), "a list of addresses"),
}


def check_rpc_reply(url: str, method: str, reply, *, raise_node_errors: bool = True):
    """The ``result`` of a JSON-RPC ``reply`` to ``method`` once its shape and value are right; a
    :class:`NodeError` for the node's own (well-formed) error object unless ``raise_node_errors`` is False
    (web3 turns those into revert reasons itself), a :class:`RpcReplyError` for anything malformed."""
    if not isinstance(reply, dict) or ("result" in reply) == ("error" in reply):
        raise RpcReplyError(f"{url}: {method} answered {_short(reply)}, not a JSON-RPC reply")
    if "error" in reply:
        error = reply["error"]
        if not (isinstance(error, dict) and isinstance(error.get("code", 0), int)
                and isinstance(error.get("message", ""), str)):
            raise RpcReplyError(f"{url}: {method} answered the malformed error {_short(error)}")
        if raise_node_errors:
            raise NodeError(f"{method} at {url}: {error}")
        return None
    result = reply["result"]
    check = RPC_RESULT_CHECKS.get(method)
    if check is not None and not check[0](result):
        raise RpcReplyError(f"{url}: {method} answered {_short(result)}; expected {check[1]}")
    return result


def checked_web3_provider(url: str, **kwargs):
    """web3's HTTPProvider whose every reply passes :func:`check_rpc_reply` before web3 reads it (a
    malformed reply becomes one error naming the node, the method and the value, not a decoding error
    deep inside web3)."""
    class CheckedHTTPProvider(HTTPProvider):
        def make_request(self, method, params):
            reply = super().make_request(method, params)
            check_rpc_reply(url, str(method), reply, raise_node_errors=False)
            return reply

        def decode_rpc_response(self, raw_response: bytes):
            if len(raw_response) > MAX_RPC_REPLY_BYTES:
                raise RpcReplyError(f"{url}: a reply of {len(raw_response)} bytes; at most {MAX_RPC_REPLY_BYTES}")
            try:
                return strict_json.loads(raw_response)
            except strict_json.JsonInputError as exc:
                raise RpcReplyError(f"{url}: answered ambiguous JSON ({exc})") from None
            except (ValueError, RecursionError) as exc:
                raise RpcReplyError(f"{url}: answered something that is not JSON-RPC "
                                    f"({type(exc).__name__}: {_short(raw_response)})") from None

    return CheckedHTTPProvider(url, **kwargs)


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
        info = NodeInfo(**strict_json.loads(path.read_text()))
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
                 "--preserve-historical-states", "--silent"],
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


def save_node_state(data_dir: Path, timeout: float = SAVE_TIMEOUT_SECONDS) -> int | None:
    """Write the running node's state (with the states of past blocks) to its ``--state`` file now, atomically
    (anvil_dumpState, then a rename). Returns the bytes written, None when data_dir has no node of ours."""
    info = read_node(data_dir)
    if info is None:
        return None
    dumped = rpc_request(info.url, "anvil_dumpState", [True], timeout=timeout)
    if not isinstance(dumped, str) or not dumped.startswith("0x"):
        raise NodeError(f"anvil_dumpState at {info.url}: not a hex string")
    try:
        data = gzip.decompress(bytes.fromhex(dumped[2:]))
    except (ValueError, OSError, EOFError) as exc:
        raise NodeError(f"anvil_dumpState at {info.url}: not a gzip-compressed state ({exc})") from None
    state = Path(info.state_path)
    partial = state.with_name(state.name + ".partial")
    with open(partial, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(partial, state)
    return len(data)


def stop_anvil(data_dir: Path, timeout: float = STOP_TIMEOUT_SECONDS, *, save: bool = True) -> NodeInfo | None:
    """Stop the node of data_dir (SIGTERM: anvil dumps its state on exit). Returns what was stopped.
    ``save=False`` throws the chain away (SIGKILL, no dump): for nodes nobody restarts, e.g. a test session's."""
    info = read_node(data_dir)
    node_info_path(data_dir).unlink(missing_ok=True)
    if info is None:
        return None
    os.kill(info.pid, signal.SIGTERM if save else signal.SIGKILL)
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
