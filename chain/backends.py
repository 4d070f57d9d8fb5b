"""The two chains under :class:`chain.client.Chain`: a JSON-RPC node, and the embedded py-evm with its journal.

One concern per layer (web3.py's middleware idea): the client signs, sends and decodes the same way on
both; what differs -- who keeps the chain, how a write is serialised and recorded, how gas is limited,
where events come from, how a dev account is topped up -- is a backend's. :class:`NodeBackend` keeps
nothing (the node is the record); :class:`JournaledBackend` journals every write and replays what other
processes appended (journal.py), and feeds the event index from the receipts it sees.
"""
from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Iterator

from web3 import Web3

from ._io import hex0x, loads_json
from .accounts import (AUDITOR, CLIENT_MM, CLIENT_RM, CUSTODIAN, DEALER_MM, DEALER_RM, DEPLOYER, ChainAccount,
                       account_for, account_from_key, evaluator_role,
                       key_holder_role)
from .errors import ChainInputError, ChainUnavailable, JournalError
from .events import EventIndex
from .journal import Journal
from .paths import CONFIG_FILE, INDEX_DIR, JOURNAL_FILE, chain_dir
from .snapshot import SNAPSHOT_EVERY, load_snapshot, save_snapshot, snapshot_path

GAS_MARGIN = 1.25  # gas limit = estimate * margin: estimates are exact for our contracts, margin is cheap
EMBEDDED_CALL_GAS_CAP = 2_000_000
EMBEDDED_DEPLOY_GAS_CAP = 10_000_000
# eth-tester's genesis funds the keys 1..10 with 1e6 ether each; key 1 is the embedded faucet.
EMBEDDED_FAUCET_KEY = (1).to_bytes(32, "big")
# anvil's default mnemonic, account 0 (public test key); used only if anvil_setBalance is refused.
ANVIL_FAUCET_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
# Roles funded in the embedded chain's genesis, so that funding never spends a block inside a phase
# window; any other role is funded by a journaled transfer on first use.
GENESIS_ROLES = (DEPLOYER, DEALER_MM, DEALER_RM, CUSTODIAN, AUDITOR, CLIENT_MM, CLIENT_RM) + tuple(
    evaluator_role(i) for i in range(16)) + tuple(key_holder_role(i) for i in range(1, 17))


class NodeBackend:
    """A JSON-RPC node: it keeps the chain. Events are read from it in windows into ``index`` (persisted
    under ``index_dir`` unless None); seed-derived dev keys are allowed only on anvil."""

    name = "rpc"

    def __init__(self, w3: Web3, url: str, *, is_anvil: bool, index_dir: Path | None = None,
                 faucet: ChainAccount | None = None) -> None:
        self.w3, self.url, self.is_anvil = w3, url, is_anvil
        self.dev_keys_allowed = is_anvil  # [decided] seed-derived keys only where they are harmless
        self.faucet = faucet or account_from_key("faucet", ANVIL_FAUCET_KEY)
        self.index = EventIndex(index_dir)

    @contextlib.contextmanager
    def write_lock(self) -> Iterator[None]:
        yield  # the node orders the transactions it is sent

    def sync(self) -> None:
        """Nothing to catch up on: every read goes to the node."""

    def mine(self, blocks: int) -> int:
        if self.is_anvil:
            self.w3.provider.make_request("anvil_mine", [hex(blocks)])
        else:
            for _ in range(blocks):  # generic dev nodes: one block per call
                self.w3.provider.make_request("evm_mine", [])
        return int(self.w3.eth.block_number)

    def gas_limit(self, tx: dict) -> int:
        """The node's estimate against the block the tx will land in ("pending": deadlines compare
        block.number), with a margin; raises if the tx would revert."""
        return int(self.w3.eth.estimate_gas(tx, "pending") * GAS_MARGIN)

    def recorded(self, raw_transaction: bytes, tx_hash: bytes, receipt) -> None:
        """Nothing to record: the node is the record, and ``catch_up`` reads its events."""

    def catch_up(self, address: str, genesis_hash: str) -> None:
        self.index.catch_up(self.w3, address, genesis_hash)

    def top_up(self, address: str, wei: int) -> bool:
        """anvil sets a dev balance directly (no transaction); elsewhere False: send from the faucet."""
        if not self.is_anvil:
            return False
        self.w3.provider.make_request("anvil_setBalance", [address, hex(wei)])
        return True


class JournaledBackend:
    """The embedded py-evm chain persisted as ``journal`` (journal.py): every write is journaled under the
    journal's lock after replaying what other processes appended; ``index`` is fed from the receipts."""

    name = "embedded"
    url = None
    dev_keys_allowed = True

    def __init__(self, w3: Web3, journal: Journal) -> None:
        self.w3, self.journal = w3, journal
        self.faucet = account_from_key("faucet", EMBEDDED_FAUCET_KEY)
        self.index = EventIndex(None)

    @contextlib.contextmanager
    def write_lock(self) -> Iterator[None]:
        with self.journal.locked():
            self.replay(self.journal.unread())
            yield

    def sync(self) -> None:
        """Apply what other processes appended to the journal."""
        if self.journal.size() > self.journal.offset:
            with self.journal.locked():
                self.replay(self.journal.unread())

    def mine(self, blocks: int) -> int:
        """Mine under ``write_lock`` (the caller holds it) and journal it."""
        self.w3.testing.mine(blocks)
        head = int(self.w3.eth.block_number)
        self.journal.append({"op": "mine", "n": blocks, "block": head})
        return head

    def gas_limit(self, tx: dict) -> int:
        """eth-tester's estimate is a binary search of ~15 executions and refuses a block argument, so one
        eth_call against "pending" checks for a revert and a fixed cap is the limit (gas used, not the
        limit, is what is charged and reported). [decided]"""
        self.w3.eth.call(tx, "pending")
        return EMBEDDED_CALL_GAS_CAP if tx.get("to") else EMBEDDED_DEPLOY_GAS_CAP

    def recorded(self, raw_transaction: bytes, tx_hash: bytes, receipt) -> None:
        """Journal a mined transaction (the caller holds ``write_lock``) and index its logs."""
        self.journal.append({"op": "tx", "raw": hex0x(raw_transaction), "hash": hex0x(tx_hash),
                             "block": int(receipt["blockNumber"])})
        self.index.ingest(receipt["logs"])

    def catch_up(self, address: str, genesis_hash: str) -> None:
        """Nothing to scan: the index already holds every receipt's logs."""

    def top_up(self, address: str, wei: int) -> bool:
        return False  # a journaled transfer from the faucet: replays reach the same state

    def replay(self, entries: list[dict]) -> None:
        for entry in entries:
            if entry["op"] == "tx":
                tx_hash = self.w3.eth.send_raw_transaction(entry["raw"])
                receipt = self.w3.eth.get_transaction_receipt(tx_hash)
                self.index.ingest(receipt["logs"])
                got = (hex0x(tx_hash), int(receipt["blockNumber"]))
                if got != (entry["hash"], entry["block"]):
                    raise JournalError(f"replay diverged: journal has {entry['hash']} in block "
                                       f"{entry['block']}, replay gave {got[0]} in block {got[1]}")
            elif entry["op"] == "mine":
                self.w3.testing.mine(int(entry["n"]))
                if int(self.w3.eth.block_number) != entry["block"]:
                    raise JournalError(f"replay diverged after mining to block {entry['block']}")
            else:
                raise JournalError(f"unknown journal entry {entry!r}")


def open_node(rpc_url: str, data_dir: Path, *, read_only: bool) -> NodeBackend:
    """The node at ``rpc_url`` (ChainUnavailable if it does not answer); its event index persists under
    ``data_dir/chain/index/<chain id>/`` unless ``read_only`` (the auditor reads events from the node)."""
    if not isinstance(rpc_url, str) or not rpc_url.startswith(("http://", "https://")):
        raise ChainInputError(f"rpc_url must be an http(s) URL, got {rpc_url!r}")
    from .node import RpcReplyError, checked_web3_provider

    provider = checked_web3_provider(rpc_url, request_kwargs={"timeout": 30}, exception_retry_configuration=None)
    w3 = Web3(provider)
    try:
        version = str(w3.client_version)
    except RpcReplyError:
        raise
    except Exception as exc:
        raise ChainUnavailable(rpc_url, detail=type(exc).__name__) from None
    index_dir = None if read_only else chain_dir(data_dir) / INDEX_DIR / str(int(w3.eth.chain_id))
    return NodeBackend(w3, rpc_url, is_anvil=version.lower().startswith("anvil"), index_dir=index_dir)


def open_embedded(data_dir: Path, seed: int) -> JournaledBackend:
    """The embedded chain of ``data_dir/chain/``: its latest snapshot, then the journal after it (a new
    snapshot once enough entries were replayed beyond the last)."""
    journal = Journal(chain_dir(data_dir))
    _check_seed(chain_dir(data_dir) / CONFIG_FILE, seed)
    with journal.locked():
        backend, logs, snapshot_entries = JournaledBackend(_fresh_evm(seed), journal), {}, 0
        path = snapshot_path(journal.directory)
        if path.is_file():
            try:
                header = load_snapshot(path, backend.w3, seed)
                if header["offset"] > journal.size():
                    raise ValueError("snapshot is ahead of the journal")
                journal.offset, journal.entries_applied = header["offset"], header["entries"]
                logs, snapshot_entries = header["logs"], header["entries"]
            except Exception:  # an optimisation only: replay the whole journal instead
                backend, logs, snapshot_entries = JournaledBackend(_fresh_evm(seed), journal), {}, 0
                journal.offset = journal.entries_applied = 0
        backend.index.restore(logs)
        backend.replay(journal.unread())
        if journal.entries_applied - snapshot_entries >= SNAPSHOT_EVERY:
            save_snapshot(path, backend.w3, offset=journal.offset, entries=journal.entries_applied, seed=seed,
                          index_logs=backend.index.dump())
    return backend


def open_embedded_read_only(data_dir: Path, seed: int) -> JournaledBackend:
    """The embedded chain replayed from its whole journal, in memory only (see chain.client.connect)."""
    directory = chain_dir(data_dir)
    if not (directory / JOURNAL_FILE).is_file():
        raise JournalError(f"{directory}: no embedded chain journal here")
    recorded = _recorded_seed(directory / CONFIG_FILE)
    if recorded is not None and recorded != seed:
        raise JournalError(f"{directory} was created with seed {recorded}, not {seed}")
    backend = JournaledBackend(_fresh_evm(seed), Journal(directory, read_only=True))
    backend.replay(backend.journal.unread())
    return backend


def _fresh_evm(seed: int) -> Web3:
    from eth_tester import EthereumTester, PyEVMBackend
    from web3 import EthereumTesterProvider

    return Web3(EthereumTesterProvider(EthereumTester(PyEVMBackend(genesis_state=_genesis_state(seed)))))


def _genesis_state(seed: int) -> dict:
    from eth_tester import PyEVMBackend
    from eth_tester.backends.pyevm.main import get_default_account_state
    from eth_utils import to_canonical_address

    state = dict(PyEVMBackend.generate_genesis_state(num_accounts=1))  # key 1: the faucet
    for role in GENESIS_ROLES:
        state[to_canonical_address(account_for(seed, role).address)] = get_default_account_state()
    return state


def _recorded_seed(path: Path) -> int | None:
    return loads_json(path.read_text())["seed"] if path.is_file() else None


def _check_seed(path: Path, seed: int) -> None:
    """The embedded chain's genesis depends on the seed: refuse to replay a journal under another."""
    recorded = _recorded_seed(path)
    if recorded is not None:
        if recorded != seed:
            raise JournalError(f"{path.parent} was created with seed {recorded}, not {seed}")
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"seed": seed}))
