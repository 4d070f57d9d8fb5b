"""Deterministic role accounts.

Every role of a market (``dealer_mm``, ``dealer_rm``, ``custodian``, ``evaluator_0`` ...,
``client_mm``, ``client_rm``, ``auditor``, ``deployer``) signs with its own key, derived from the
chain's seed: ``key = keccak256("repo-market/chain/account/v1" ‖ seed (8 bytes, big-endian) ‖ role)``.
These are development keys for local chains (embedded, anvil): anyone who knows the seed can sign
for every role. [decided]
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak

from .errors import ChainInputError

DEALER_MM = "dealer_mm"
DEALER_RM = "dealer_rm"
CUSTODIAN = "custodian"
AUDITOR = "auditor"
DEPLOYER = "deployer"
CLIENT_MM = "client_mm"
CLIENT_RM = "client_rm"

_ROLE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_SECP256K1_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_DOMAIN = b"repo-market/chain/account/v1"


def evaluator_role(index: int) -> str:
    """Role name of the index-th evaluator (0-based)."""
    if not isinstance(index, int) or isinstance(index, bool) or index < 0:
        raise ChainInputError(f"evaluator index must be a non-negative int, got {index!r}")
    return f"evaluator_{index}"


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

    def sign_transaction(self, tx: dict):
        return self._signer.sign_transaction(tx)


def account_for(seed: int, role: str) -> ChainAccount:
    signer = Account.from_key(role_key(seed, role))
    return ChainAccount(role=role, address=signer.address, _signer=signer)


def account_from_key(role: str, key: bytes | str) -> ChainAccount:
    """A ChainAccount for a key supplied from outside (e.g. a node's pre-funded account)."""
    signer = Account.from_key(key)
    return ChainAccount(role=role, address=signer.address, _signer=signer)
