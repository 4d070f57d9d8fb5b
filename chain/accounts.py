"""Role accounts: deterministic development keys, or keys supplied from outside.

Development keys. Every role of a market (``dealer_mm``, ``dealer_rm``, ``custodian``, ``evaluator_0`` ...,
``key_holder_1`` ..., ``client_mm``, ``client_rm``, ``auditor``, ``deployer``) signs with its own key, derived from the
chain's seed: ``key = keccak256("repo-market/chain/account/v1" ‖ seed (8 bytes, big-endian) ‖ role)``.
These are development keys for local chains (embedded, anvil): anyone who knows the seed can sign
for every role. [decided] They are for the embedded chain and local dev nodes (anvil) only.

Real accounts. With ``--rpc`` any role may sign with a key of its own instead:

* a key file: the 32-byte secp256k1 private key as 64 hex digits (optional ``0x``), on one line, in a file
  of mode 0600 or stricter (``load_key_file``);
* an encrypted keystore: the Web3 Secret Storage JSON (version 3) that ``eth_account.Account.encrypt``,
  geth and ``cast wallet`` write, with its password read from a file or from an environment variable
  (``load_keystore``).

``external_accounts`` validates a whole set of such sources up front (missing file, loose mode, malformed
key or keystore, wrong password, a role given twice, two roles on one address) and raises
:class:`ChainInputError` naming the role, the option and the path; no key material is ever in a message.
"""
from __future__ import annotations

import json
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from eth_account import Account
from eth_utils import keccak

from common import strict_json
from common.vocabulary import (AUDITOR, CLIENT_MM, CLIENT_RM, CUSTODIAN, DEALER_MM, DEALER_RM,  # noqa: F401 (re-exported)
                               DEPLOYER, EVALUATOR_PREFIX, KEY_HOLDER_PREFIX)

from .errors import ChainInputError

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

_ROLE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_SECP256K1_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_DOMAIN = b"repo-market/chain/account/v1"


def evaluator_role(index: int) -> str:
    """Role name of the index-th evaluator (0-based)."""
    if not isinstance(index, int) or isinstance(index, bool) or index < 0:
        raise ChainInputError(f"evaluator index must be a non-negative int, got {index!r}")
    return f"{EVALUATOR_PREFIX}{index}"


def key_holder_role(number: int) -> str:
    """Role name of the number-th key holder, counted from 1 (``key_holder_1``, as crypto.threshold names them)."""
    if not isinstance(number, int) or isinstance(number, bool) or number < 1:
        raise ChainInputError(f"key holder number must be an int >= 1, got {number!r}")
    return f"{KEY_HOLDER_PREFIX}{number}"


def check_role(role: str) -> str:
    if not isinstance(role, str) or not _ROLE.match(role):
        raise ChainInputError(f"role must match [a-z][a-z0-9_]*, got {role!r}")
    return role


def role_key(seed: int, role: str) -> bytes:
    """The 32-byte secp256k1 private key of ``role`` under ``seed`` (see module docstring)."""
    check_role(role)
    if not isinstance(seed, int) or not 0 <= seed < 2**64:
        raise ChainInputError(f"seed must be an int in [0, 2**64), got {seed!r}")
    material = _DOMAIN + seed.to_bytes(8, "big") + role.encode()
    while True:  # rejection sampling; a second round happens with probability ~2**-128
        key = keccak(material)
        if 0 < int.from_bytes(key, "big") < _SECP256K1_ORDER:
            return key
        material = key


@dataclass(frozen=True)
class ChainAccount:
    """A role's address and its signer. The key never appears in repr or logs."""

    role: str
    address: str
    _signer: LocalAccount = field(repr=False, compare=False)
    source: str = "dev-seed"  # "dev-seed" | "key-file" | "keystore" | "node" (a node's pre-funded key)

    def sign_transaction(self, tx: dict):
        return self._signer.sign_transaction(tx)


def account_for(seed: int, role: str) -> ChainAccount:
    signer = Account.from_key(role_key(seed, role))
    return ChainAccount(role=role, address=signer.address, _signer=signer)


def account_from_key(role: str, key: bytes | str) -> ChainAccount:
    """A ChainAccount for a key supplied from outside (e.g. a node's pre-funded account)."""
    signer = Account.from_key(key)
    return ChainAccount(role=role, address=signer.address, _signer=signer, source="node")


DEV_SEED = "dev-seed"
KEY_FILE = "key-file"
KEYSTORE = "keystore"
_HEX_KEY = re.compile(r"\A(0x)?[0-9a-fA-F]{64}\Z")


def _signer_from_key(role: str, key: bytes, where: str, source: str) -> ChainAccount:
    if not 0 < int.from_bytes(key, "big") < _SECP256K1_ORDER:
        raise ChainInputError(f"{where}: not a valid secp256k1 private key for role {role!r} (out of range)")
    signer = Account.from_key(key)
    return ChainAccount(role=role, address=signer.address, _signer=signer, source=source)


def load_key_file(role: str, path: str | Path, option: str = "--key-file") -> ChainAccount:
    """The account of ``role`` from a hex private-key file (mode 0600 or stricter)."""
    check_role(role)
    path = Path(path)
    where = f"{option} {role}={path}"
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise ChainInputError(f"{where}: file not found") from None
    if not stat.S_ISREG(mode):
        raise ChainInputError(f"{where}: not a regular file")
    if mode & 0o077:
        raise ChainInputError(f"{where}: mode {stat.S_IMODE(mode):04o} lets others read the key; chmod 600 it")
    text = path.read_text(errors="replace").strip()
    if not _HEX_KEY.match(text):
        raise ChainInputError(f"{where}: expected one line of 64 hex digits (a secp256k1 private key), "
                              f"found {len(text)} characters")
    return _signer_from_key(role, bytes.fromhex(text.removeprefix("0x")), where, KEY_FILE)


def read_password(role: str, *, password_file: str | Path | None = None, password_env: str | None = None) -> bytes:
    """A keystore password from a file (its first line) or from the environment variable named."""
    if (password_file is None) == (password_env is None):
        raise ChainInputError(f"keystore of role {role!r}: give exactly one of --keystore-password-file "
                              f"{role}=PATH or --keystore-password-env {role}=VAR")
    if password_file is not None:
        path = Path(password_file)
        try:
            text = path.read_text()
        except FileNotFoundError:
            raise ChainInputError(f"--keystore-password-file {role}={path}: file not found") from None
        password = text.splitlines()[0] if text else ""
        if not password:
            raise ChainInputError(f"--keystore-password-file {role}={path}: the file is empty")
        return password.encode()
    if not re.match(r"\A[A-Za-z_][A-Za-z0-9_]*\Z", password_env or ""):
        raise ChainInputError(f"--keystore-password-env {role}={password_env!r}: not an environment variable name")
    value = os.environ.get(password_env)
    if not value:
        raise ChainInputError(f"--keystore-password-env {role}={password_env}: the variable is unset or empty")
    return value.encode()


def load_keystore(role: str, path: str | Path, password: bytes) -> ChainAccount:
    """The account of ``role`` from an encrypted keystore (Web3 Secret Storage v3 JSON)."""
    check_role(role)
    path = Path(path)
    where = f"--keystore {role}={path}"
    try:
        data = strict_json.loads(path.read_text())
    except FileNotFoundError:
        raise ChainInputError(f"{where}: file not found") from None
    except strict_json.JsonInputError as exc:
        raise ChainInputError(f"{where}: {exc}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ChainInputError(f"{where}: not JSON ({type(exc).__name__}); expected a keystore file") from None
    crypto = data.get("crypto", data.get("Crypto")) if isinstance(data, dict) else None
    if not isinstance(crypto, dict) or data.get("version") != 3 or not {"cipher", "ciphertext", "kdf", "mac"} <= set(crypto):
        raise ChainInputError(f"{where}: malformed keystore (expected version 3 with crypto.cipher, "
                              "ciphertext, kdf, mac)")
    try:
        key = Account.decrypt(data, password)
    except ValueError as exc:
        if "MAC mismatch" in str(exc):
            raise ChainInputError(f"{where}: wrong password (the keystore's MAC does not match)") from None
        raise ChainInputError(f"{where}: malformed keystore ({type(exc).__name__})") from None
    except (KeyError, TypeError) as exc:
        raise ChainInputError(f"{where}: malformed keystore (missing or bad field {exc})") from None
    account = _signer_from_key(role, bytes(key), where, KEYSTORE)
    recorded = data.get("address")
    if recorded and str(recorded).lower().removeprefix("0x") != account.address.lower()[2:]:
        raise ChainInputError(f"{where}: the keystore says address {recorded}, its key is {account.address}")
    return account


def external_accounts(*, key_files: dict[str, str] | None = None, keystores: dict[str, str] | None = None,
                      password_files: dict[str, str] | None = None, password_envs: dict[str, str] | None = None,
                      roles: tuple[str, ...] | None = None) -> dict[str, ChainAccount]:
    """Load every role's key file or keystore, checking the whole set before returning any account.

    ``roles`` (if given) are the roles that may be named; each role has at most one source; a password is
    only accepted for a role with a keystore; no two roles share an address.
    """
    key_files, keystores = dict(key_files or {}), dict(keystores or {})
    password_files, password_envs = dict(password_files or {}), dict(password_envs or {})
    for option, mapping in (("--key-file", key_files), ("--keystore", keystores),
                            ("--keystore-password-file", password_files), ("--keystore-password-env", password_envs)):
        for role in mapping:
            check_role(role)
            if roles is not None and role not in roles:
                raise ChainInputError(f"{option} {role}=...: unknown role {role!r}; roles of this market: "
                                      f"{', '.join(roles)}")
    for role in set(key_files) & set(keystores):
        raise ChainInputError(f"role {role!r}: both --key-file and --keystore given; choose one")
    for role in (set(password_files) | set(password_envs)) - set(keystores):
        raise ChainInputError(f"role {role!r}: a keystore password is given but no --keystore {role}=PATH")
    accounts = {role: load_key_file(role, path) for role, path in key_files.items()}
    for role, path in keystores.items():
        password = read_password(role, password_file=password_files.get(role), password_env=password_envs.get(role))
        accounts[role] = load_keystore(role, path, password)
    by_address: dict[str, str] = {}
    for role, account in accounts.items():
        other = by_address.setdefault(account.address, role)
        if other != role:
            raise ChainInputError(f"roles {other!r} and {role!r} use the same account {account.address}; "
                                  "every role needs its own")
    return accounts
