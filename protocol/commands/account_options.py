"""Options shared by the commands that sign on a chain: each role's own key instead of a dev key.

  --key-file ROLE=PATH                 hex secp256k1 private key, one line, file mode 0600
  --keystore ROLE=PATH                 encrypted keystore (Web3 Secret Storage v3 JSON; geth, cast wallet)
  --keystore-password-file ROLE=PATH   its password (first line of the file)
  --keystore-password-env ROLE=VAR     its password from the environment variable VAR

Only with --rpc. Roles without one sign with keys derived from --seed, which only the embedded chain and a
local anvil accept; market.json records which roles use which (``accounts``) and warns about dev keys.
Everything is loaded and checked (files, modes, keystore format, password, one source per role, distinct
accounts) before anything is created, encrypted, signed or sent.
"""
from __future__ import annotations

from chain.accounts import external_accounts
from chain.errors import ChainInputError
from protocol.cli import UsageError

__all__ = ["add_account_options", "signers_from_args"]

_OPTIONS = (("--key-file", "key_files", "hex private key file (0600) of ROLE's chain account"),
            ("--keystore", "keystores", "encrypted keystore JSON of ROLE's chain account"),
            ("--keystore-password-file", "password_files", "file whose first line is the password of ROLE's keystore"),
            ("--keystore-password-env", "password_envs", "environment variable holding the password of ROLE's keystore"))


def add_account_options(parser) -> None:
    group = parser.add_argument_group("chain accounts (with --rpc; default: dev keys from --seed)")
    for option, dest, text in _OPTIONS:
        group.add_argument(option, dest=dest, action="append", default=[], metavar="ROLE=VALUE", help=text)


def _pairs(option: str, values: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for value in values:
        role, sep, rest = value.partition("=")
        if not sep or not role or not rest:
            raise UsageError(f"{option} {value!r}: expected ROLE=VALUE, e.g. {option} dealer_mm=keys/dealer_mm.json")
        if role in out:
            raise UsageError(f"{option} {role}=...: given twice")
        out[role] = rest
    return out


def signers_from_args(args, roles: tuple[str, ...] | None = None) -> dict:
    """role -> ChainAccount from the options (empty if none); UsageError names the option, role and path.
    ``roles``: the roles that may be named (others are refused by name)."""
    specs = {dest: _pairs(option, getattr(args, dest, []) or []) for option, dest, _ in _OPTIONS}
    if not any(specs.values()):
        return {}
    if getattr(args, "rpc", None) is None:
        raise UsageError("--key-file/--keystore: only with --rpc (the embedded chain always uses dev keys)")
    try:
        return external_accounts(**specs, roles=roles)
    except ChainInputError as exc:
        raise UsageError(str(exc)) from None
