"""Connect to a chain (embedded py-evm or a JSON-RPC node) and send signed transactions.

``connect(data_dir)`` opens the embedded chain persisted in ``data_dir/chain/`` (see journal.py);
``connect(data_dir, "http://127.0.0.1:8545")`` talks to a node. Both return a :class:`Chain` whose
``send``/``call``/``deploy``/``events`` behave the same; every refusal becomes :class:`ChainError`
carrying the contract's revert string. What differs between the two chains is a backend's
(backends.py), so nothing here asks which one it has.
"""
from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Sequence

from eth_utils import to_checksum_address

from common.hex import hex0x

from .accounts import DEPLOYER, DEV_SEED, ChainAccount, account_for, check_role
from .artifacts import compile_contract
from .backends import open_embedded, open_embedded_read_only, open_node
from .errors import ChainError, ChainInputError, JournalError, as_chain_error
from .events import EventDecoder, raw_log
from .paths import ARTIFACTS_DIR, chain_dir

if TYPE_CHECKING:
    from .artifacts import Artifact
    from .backends import JournaledBackend, NodeBackend
    from .events import EventRecord

ETHER = 10**18
# [decided] Fixed EIP-1559 fees: local chains' base fee stays near or below 1 gwei, and fixed fees save
# a round trip per transaction and keep a replayed journal byte-identical.
MAX_FEE_PER_GAS = 50 * 10**9
PRIORITY_FEE_PER_GAS = 10**9
FUND_AMOUNT = 1_000 * ETHER
FUND_FLOOR = 10 * ETHER


@dataclass(frozen=True)
class TxResult:
    """A mined transaction: hash, block, gas used and the events it emitted (decoded)."""

    tx_hash: str
    block_number: int
    gas_used: int
    events: tuple[EventRecord, ...]
    contract_address: str | None = None
    block_hash: str = ""  # the block's hash as the node reported it (a history anchor; see anchor())

    def anchor(self) -> dict:
        """What a role records of its own transaction so that an auditor can check the history:
        {"tx": hash, "block": number, "block_hash": hash}."""
        return {"tx": self.tx_hash, "block": self.block_number, "block_hash": self.block_hash}

    def event(self, name: str) -> EventRecord:
        """The single event called ``name`` (raises LookupError if absent or repeated)."""
        found = [e for e in self.events if e.name == name]
        if len(found) != 1:
            raise LookupError(f"expected one {name} event, found {len(found)}")
        return found[0]


class Chain:
    """A connection to one chain, with role accounts that sign locally.

    Attributes: ``w3`` (web3 instance), ``backend`` ("embedded" or "rpc"), ``url`` (node URL or
    None), ``data_dir``, ``seed`` (derives role keys), ``chain_id``.
    """

    def __init__(self, backend: NodeBackend | JournaledBackend, *, data_dir: Path, seed: int,
                 read_only: bool = False, accounts: dict[str, ChainAccount] | None = None,
                 external_roles: tuple[str, ...] = ()) -> None:
        self._backend = backend
        self.w3 = backend.w3
        self.backend = backend.name
        self.url = backend.url
        self.data_dir = Path(data_dir)
        self.seed = seed
        self.chain_id = int(self.w3.eth.chain_id)
        self.read_only = read_only  # an auditor's connection: sends nothing, writes nothing to data_dir
        self.artifact_dir = None if read_only else chain_dir(self.data_dir) / ARTIFACTS_DIR
        self._faucet = backend.faucet
        self._external = dict(accounts or {})  # role -> key file / keystore account
        for role, acct in self._external.items():
            if not isinstance(acct, ChainAccount) or acct.role != check_role(role):
                raise ChainInputError(f"accounts[{role!r}] must be the ChainAccount of role {role!r}")
        self.dev_keys_allowed = backend.dev_keys_allowed  # the embedded chain and a local anvil
        self._needs_external = frozenset(external_roles)  # roles a market recorded with their own keys
        self._accounts: dict[str, ChainAccount] = dict(self._external)
        self._funded: set[str] = set()
        self._decoders: dict[str, EventDecoder] = {}
        self._genesis_hash = hex0x(self.w3.eth.get_block(0)["hash"])
        self._pinned: int | None = None  # see pin()

    def __repr__(self) -> str:
        where = self.url if self.url else str(chain_dir(self.data_dir))
        return f"Chain({self.backend}, {where}, chain_id={self.chain_id})"

    # ------------------------------------------------------------------ accounts
    def account(self, role: str) -> ChainAccount:
        """The role's account (its key file / keystore, else the dev key from the seed), funded on first use
        on a dev chain; an external account on another node must hold its own ether."""
        acct = self._role_account(role)
        if acct.address not in self._funded:
            if role not in self._external or self.dev_keys_allowed:
                self._ensure_funded(acct.address)
            self._funded.add(acct.address)
        return acct

    def address(self, role: str) -> str:
        """The role's address, without funding it."""
        return self._role_account(role).address

    def account_source(self, role: str) -> str:
        """Where the role's key comes from: "key-file", "keystore" or "dev-seed"."""
        acct = self._external.get(check_role(role))
        return acct.source if acct is not None else DEV_SEED

    def _role_account(self, role: str) -> ChainAccount:
        acct = self._accounts.get(check_role(role))
        if acct is None:
            if role in self._needs_external:
                raise ChainInputError(
                    f"role {role!r} signs with its own key in this market (market.json accounts); give "
                    f"--key-file {role}=PATH or --keystore {role}=PATH again")
            if not self.dev_keys_allowed:
                raise ChainInputError(
                    f"role {role!r} has no key: {self.url} is not a dev chain, so seed-derived dev keys are "
                    f"refused; give --key-file {role}=PATH or --keystore {role}=PATH")
            acct = account_for(self.seed, role)
            self._accounts[role] = acct
        return acct

    @property
    def accounts(self) -> dict[str, str]:
        """role -> address of every role used so far by this process."""
        return {role: acct.address for role, acct in self._accounts.items()}

    def balance(self, address: str) -> int:
        self.sync()
        with self._mapped():
            return int(self.w3.eth.get_balance(to_checksum_address(address), self._at))

    def _ensure_funded(self, address: str) -> None:
        if self.read_only or self.balance(address) >= FUND_FLOOR:
            return
        with contextlib.suppress(Exception):
            if self._backend.top_up(address, FUND_AMOUNT * 10) and self.balance(address) >= FUND_FLOOR:
                return
        self._send_signed(self._faucet, {"to": address, "value": FUND_AMOUNT, "gas": 21_000})

    # ------------------------------------------------------------------ blocks
    @property
    def block_number(self) -> int:
        if self._pinned is not None:
            return self._pinned
        self.sync()
        with self._mapped():
            return int(self.w3.eth.block_number)

    def mine(self, blocks: int = 1) -> int:
        """Mine ``blocks`` empty blocks; returns the new head. Works on both backends."""
        self._refuse_if_read_only("mine")
        if not isinstance(blocks, int) or isinstance(blocks, bool) or blocks < 1:
            raise ChainInputError(f"blocks must be a positive int, got {blocks!r}")
        with self._backend.write_lock(), self._mapped():
            return self._backend.mine(blocks)

    # ------------------------------------------------------------------ transactions
    def send(self, sender: str | ChainAccount, contract: Any = None, fn_name: str | None = None,
             args: Sequence[Any] = (), *, value: int = 0) -> TxResult:
        """Sign and send ``contract.fn_name(*args)`` (with ``value`` wei) from ``sender``.

        Raises ChainError(reason) if the chain refuses it; nothing is sent or journaled then.
        """
        self._refuse_if_read_only(f"sending {fn_name}")
        acct = self.account(sender) if isinstance(sender, str) else sender
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ChainInputError(f"value must be a non-negative int (wei), got {value!r}")
        data = contract.encode_abi(fn_name, args=list(args))
        return self._send_signed(acct, {"to": contract.address, "value": value, "data": data})

    def deploy(self, artifact: Artifact, args: Sequence[Any], sender: str | ChainAccount = DEPLOYER):
        """Deploy ``artifact`` with constructor ``args``; returns (web3 contract, TxResult)."""
        acct = self.account(sender) if isinstance(sender, str) else sender
        factory = self.w3.eth.contract(abi=list(artifact.abi), bytecode=artifact.bytecode)
        try:
            data = factory._encode_constructor_data(*args)
        except Exception as exc:  # web3 validates argument types before encoding
            raise ChainInputError(f"constructor arguments of {artifact.name} rejected: {exc}") from None
        result = self._send_signed(acct, {"data": data, "value": 0})
        return self.contract(result.contract_address, artifact), result

    def contract(self, address: str, artifact: Artifact):
        """A web3 contract bound to ``address``; its events become queryable with ``events``."""
        address = to_checksum_address(address)
        self._decoders[address] = EventDecoder(self.w3.codec, artifact.abi)
        return self.w3.eth.contract(address=address, abi=list(artifact.abi))

    def _refuse_if_read_only(self, what: str) -> None:
        if self.read_only:
            raise ChainError(f"{what} refused: this connection is read-only (an auditor's)")

    def code_at(self, address: str, block: int | str = "latest") -> bytes:
        """The runtime code at ``address`` (eth_getCode)."""
        self.sync()
        with self._mapped():
            return bytes(self.w3.eth.get_code(to_checksum_address(address), self._at if block == "latest" else block))

    def balance_at(self, address: str, block: int) -> int:
        """Wei held by ``address`` after block ``block`` (eth_getBalance at that block)."""
        self.sync()
        with self._mapped():
            return int(self.w3.eth.get_balance(to_checksum_address(address), block))

    def transaction(self, tx_hash: str) -> dict | None:
        """{"from", "to", "block", "block_hash", "input"} of a mined transaction, None if the node has none."""
        self.sync()
        with self._mapped():
            try:
                tx = self.w3.eth.get_transaction(tx_hash)
            except Exception as exc:  # web3 raises TransactionNotFound (eth-tester: its own error)
                if "not found" in str(exc).lower() or type(exc).__name__ == "TransactionNotFound":
                    return None
                raise
        if tx is None or tx.get("blockNumber") is None:
            return None
        return {"from": to_checksum_address(tx["from"]), "to": tx.get("to"), "block": int(tx["blockNumber"]),
                "block_hash": hex0x(tx["blockHash"]), "input": hex0x(tx["input"])}

    def block_hash(self, number: int) -> str | None:
        """The hash of block ``number`` on this chain, None beyond the head."""
        self.sync()
        with self._mapped():
            if number > int(self.w3.eth.block_number):
                return None
            return hex0x(self.w3.eth.get_block(number)["hash"])

    def code_matches(self, address: str, artifact: Artifact) -> bool:
        """Whether the code at ``address`` is ``artifact``'s runtime code (plus the immutables vyper
        appends at deployment): an auditor's check that the contract is the published source."""
        self.sync()
        with self._mapped():
            code = bytes(self.w3.eth.get_code(to_checksum_address(address)))
        return len(artifact.runtime_bytecode) > 0 and code.startswith(artifact.runtime_bytecode)

    def call(self, contract: Any, fn_name: str, *args: Any) -> Any:
        """Call a view function (no transaction); revert -> ChainError."""
        self.sync()
        with self._mapped():
            # An explicit "from" spares web3's eth-tester middleware from listing every account per call.
            return getattr(contract.functions, fn_name)(*args).call({"from": self._faucet.address}, self._at)

    def compile(self, name_or_path: str | Path) -> Artifact:
        """Compile a contract (cached in ``data_dir/chain/artifacts`` by source digest)."""
        return compile_contract(name_or_path, self.artifact_dir)

    def _send_signed(self, acct: ChainAccount, tx: dict) -> TxResult:
        with self._backend.write_lock():
            with self._mapped():
                tx = dict(tx, chainId=self.chain_id, type=2,
                          maxFeePerGas=MAX_FEE_PER_GAS, maxPriorityFeePerGas=PRIORITY_FEE_PER_GAS)
                tx["from"] = acct.address
                tx["nonce"] = self.w3.eth.get_transaction_count(acct.address, "pending")
                if "gas" not in tx:
                    tx["gas"] = self._backend.gas_limit(tx)  # raises (mapped) if it would revert
                del tx["from"]
                signed = acct.sign_transaction(tx)
                tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
                receipt = self._receipt(tx_hash)
            self._backend.recorded(signed.raw_transaction, tx_hash, receipt)
        result = self._result(receipt)
        if receipt["status"] != 1:
            raise ChainError("transaction reverted", detail=result.tx_hash)
        return result

    def _receipt(self, tx_hash) -> Any:
        # Local nodes mine on send; poll briefly instead of web3's 0.1 s default interval.
        deadline = time.monotonic() + 120
        delay = 0.002
        while True:
            with contextlib.suppress(Exception):
                receipt = self.w3.eth.get_transaction_receipt(tx_hash)
                if receipt is not None:
                    return receipt
            if time.monotonic() > deadline:
                raise ChainError("transaction not mined", detail=hex0x(tx_hash))
            time.sleep(delay)
            delay = min(delay * 2, 0.05)

    def _result(self, receipt: Any) -> TxResult:
        events = []
        for log in receipt["logs"]:
            decoded = self._decode(log)
            if decoded is not None:
                events.append(decoded)
        created = receipt.get("contractAddress")
        return TxResult(
            tx_hash=hex0x(receipt["transactionHash"]),
            block_number=int(receipt["blockNumber"]),
            gas_used=int(receipt["gasUsed"]),
            events=tuple(events),
            contract_address=to_checksum_address(created) if created else None,
            block_hash=hex0x(receipt["blockHash"]) if receipt.get("blockHash") is not None else "",
        )

    def _decode(self, log: Any) -> EventRecord | None:
        entry = raw_log(log)
        decoder = self._decoders.get(entry["address"])
        return decoder.decode(entry) if decoder else None

    # ------------------------------------------------------------------ events
    def events(self, address: str, name: str | None = None, **match: Any) -> list[EventRecord]:
        """Events of the contract at ``address`` in chain order, optionally only ``name`` and
        those whose args equal ``match`` (e.g. ``round_id=3``). Never scans long block ranges."""
        address = to_checksum_address(address)
        decoder = self._decoders.get(address)
        if decoder is None:
            raise ChainInputError(f"address {address} is not a contract opened with Chain.contract")
        self.sync()
        with self._mapped():
            self._backend.catch_up(address, self._genesis_hash)
        out = []
        for log in self._backend.index.logs(address):
            record = decoder.decode(log)
            if record is None or (name is not None and record.name != name):
                continue
            if self._pinned is not None and record.block_number > self._pinned:
                continue
            if all(record.args.get(k) == v for k, v in match.items()):
                out.append(record)
        return out

    # ------------------------------------------------------------------ persistence
    def sync(self) -> None:
        """Embedded backend: apply what other processes appended to the journal (not while pinned). No-op
        on a node."""
        if self._pinned is None:
            self._backend.sync()

    # ------------------------------------------------------------------ a consistent cut (the auditor)
    def pin(self) -> int:
        """From now until ``unpin``, read the chain as of its current head: views, balances, code, events
        and ``block_number`` answer at that block while other processes keep writing (the embedded chain
        stops replaying their journal entries; a node is asked at that block number). Returns the block.
        ``transaction`` and ``block_hash`` still see later blocks on a node (the caller compares numbers)."""
        self._pinned = None
        self._pinned = self.block_number
        return self._pinned

    def unpin(self) -> None:
        """Read the latest state again (the embedded chain catches up with the journal on the next read)."""
        self._pinned = None

    @property
    def pinned(self) -> int | None:
        """The block ``pin`` fixed, None when reading the latest state."""
        return self._pinned

    @property
    def _at(self) -> int | str:
        """The block identifier reads use: the pinned block, else "latest"."""
        return "latest" if self._pinned is None else self._pinned

    @contextlib.contextmanager
    def _mapped(self) -> Iterator[None]:
        try:
            yield
        except (ChainError, ChainInputError, JournalError):
            raise
        except Exception as exc:
            mapped = as_chain_error(exc, self.url)
            if mapped is None:
                raise
            raise mapped from exc


def connect(data_dir: Path | str, rpc_url: str | None = None, *, seed: int = 0, read_only: bool = False,
            accounts: dict[str, ChainAccount] | None = None, external_roles: tuple[str, ...] = ()) -> Chain:
    """Open a chain. ``rpc_url`` None: the embedded EVM persisted in ``data_dir/chain/`` (replays its
    journal); otherwise the JSON-RPC node at ``rpc_url`` (raises ChainUnavailable if it is down).

    ``read_only`` (the auditor): nothing is written under ``data_dir`` (no lock, snapshot, artifact or
    event-index cache) and nothing can be sent. The embedded chain is then rebuilt from the whole journal,
    never from the snapshot, and a node's events are read from the node, never from the persisted index:
    the auditor trusts no cache it has not checked itself. [decided]

    ``accounts``: role -> external account (chain.accounts.external_accounts), only with ``rpc_url``; other
    roles get seed-derived dev keys, which only the embedded chain and anvil accept; ``external_roles`` must
    not fall back to them (a market created with their own keys)."""
    data_dir = Path(data_dir)
    if accounts and rpc_url is None:
        raise ChainInputError("key files and keystores are for --rpc nodes; the embedded chain uses dev keys "
                              f"(given for {', '.join(sorted(accounts))})")
    if rpc_url is None:
        backend = open_embedded_read_only(data_dir, seed) if read_only else open_embedded(data_dir, seed)
        return Chain(backend, data_dir=data_dir, seed=seed, read_only=read_only)
    return Chain(open_node(rpc_url, data_dir, read_only=read_only), data_dir=data_dir, seed=seed,
                 read_only=read_only, accounts=accounts, external_roles=tuple(external_roles))
