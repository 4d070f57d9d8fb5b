"""``market.json`` as one typed, frozen value: :class:`MarketDescriptor`.

``create_market`` writes the file (its format is unchanged: ``repo-market-market-v1``); ``Deployment.market``
parses and checks it once, and every reader (the roles, the auditor, the report, the export) asks the descriptor
for a fact instead of looking keys up in the raw JSON. A malformed file is refused when the market is opened,
with a :class:`~protocol.errors.DeploymentError` naming the file, the field and the value.

Not checked here, on purpose [decided]: the public identities and the phase-window names. Each is parsed where it
is used (``Deployment.identity``, ``published_coordinator_terms``), so the auditor reports a swapped key or a
malformed window as a failed check rather than refusing to look.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from types import MappingProxyType
from typing import Any

from market.errors import MarketError
from market.selection import HurdleMode
from market.terms import MarketTerms
from protocol.backend import BACKENDS
from protocol.errors import DeploymentError

__all__ = ["MarketDescriptor", "MARKET_FORMAT", "terms_from_dict"]

MARKET_FORMAT = "repo-market-market-v1"
_ADDRESS = re.compile(r"\A0x[0-9a-fA-F]{40}\Z")
_DIGEST = re.compile(r"\A[0-9a-f]{64}\Z")


def terms_from_dict(data: dict):
    """The market terms (``market.terms.MarketTerms``) from market.json's ``terms``."""
    return MarketTerms(grid=data["grid"], base_rate=data["base_rate"], rate_bits=data["rate_bits"],
                       hurdle_bits=data["hurdle_bits"], hurdle_mode=HurdleMode(data["hurdle_mode"]))


class _Reader:
    """Field access into the parsed JSON that names the file, the field and the value on every refusal."""

    _MISSING = object()

    def __init__(self, doc: Any, source: str):
        self.doc, self.source = doc, source

    def fail(self, path: str, value: Any, why: str) -> DeploymentError:
        shown = repr(value)
        return DeploymentError(f"{self.source}: {path} = {shown[:80]}{'…' if len(shown) > 80 else ''}: {why}")

    def get(self, path: str, default: Any = _MISSING) -> Any:
        node = self.doc
        for part in path.split("."):
            if not isinstance(node, dict) or part not in node:
                if default is not self._MISSING:
                    return default
                raise DeploymentError(f"{self.source}: {path} is missing")
            node = node[part]
        return node

    def object(self, path: str, default: Any = _MISSING) -> dict:
        value = self.get(path, default)
        if not isinstance(value, dict):
            raise self.fail(path, value, "expected a JSON object")
        return value

    def integer(self, path: str, default: Any = _MISSING, minimum: int = 0) -> int:
        value = self.get(path, default)
        if type(value) is not int or value < minimum:
            raise self.fail(path, value, f"expected an integer >= {minimum}")
        return value

    def text(self, path: str, default: Any = _MISSING, *, optional: bool = False) -> str | None:
        value = self.get(path, default)
        if value is None and optional:
            return None
        if not isinstance(value, str):
            raise self.fail(path, value, "expected a string" + (" or null" if optional else ""))
        return value

    def roles(self, path: str, default: Any = _MISSING) -> tuple[str, ...]:
        value = self.get(path, default)
        if not isinstance(value, list) or not all(isinstance(r, str) for r in value) or len(set(value)) != len(value):
            raise self.fail(path, value, "expected a list of distinct role names")
        return tuple(value)

    def digest(self, path: str, value: Any) -> bytes | None:
        if value is None:
            return None
        if not isinstance(value, str) or not _DIGEST.match(value):
            raise self.fail(path, value, "expected a SHA-256 digest (64 lowercase hex digits) or null")
        return bytes.fromhex(value)

    def address(self, path: str, value: Any) -> str:
        if not isinstance(value, str) or not _ADDRESS.match(value):
            raise self.fail(path, value, "expected an address (0x and 40 hex digits)")
        return value


def _frozen(mapping: Mapping) -> Mapping:
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True)
class MarketDescriptor:
    """What ``market.json`` publishes, checked: the backend, terms, contract and chain, the published digests,
    the owner-encryption parameter record, the evaluators and key holders, every role's address and public
    identity, how each account is kept, the deposit minimum, the phase windows and the endowment."""

    backend: str
    terms: Any                                   # market.terms.MarketTerms
    contract: str
    chain_id: int
    seed: int
    rpc_url: str | None
    digests: Mapping[str, bytes | None]          # name -> SHA-256 (None: not published, e.g. no CRS)
    owner_parameters: str                        # the TFHE-rs parameter record's name ("simulate" there)
    owner_parameters_sha256: bytes | None
    evaluators: tuple[str, ...]
    threshold: int
    holders: tuple[str, ...]                     # key holder roles, in the contract's order (none: simulate)
    holder_threshold: int
    slots: int
    addresses: Mapping[str, str]                 # role -> chain address, as published
    identities: Mapping[str, Mapping[str, Any]]  # role -> crypto.identity.PublicIdentity.as_dict(), as published
    account_sources: Mapping[str, str]           # role -> "dev-seed" | "key-file" | "keystore"
    deposit_minimum_wei: int
    windows: Mapping[str, int] | None            # window name -> blocks (None: not published)
    endowment: Mapping[str, int]

    @classmethod
    def from_dict(cls, doc: Any, source: str = "market.json") -> "MarketDescriptor":
        """Parse and check a market descriptor; DeploymentError names ``source``, the field and the value."""
        read = _Reader(doc, source)
        if not isinstance(doc, dict):
            raise DeploymentError(f"{source}: not a market descriptor (a JSON {type(doc).__name__})")
        if doc.get("format") != MARKET_FORMAT:
            raise DeploymentError(f"{source}: format {doc.get('format')!r} is not {MARKET_FORMAT!r}")
        backend = read.text("backend")
        if backend not in BACKENDS:
            raise read.fail("backend", backend, f"expected one of {', '.join(BACKENDS)}")
        try:
            terms = terms_from_dict(read.object("terms"))
        except (KeyError, TypeError, ValueError, MarketError) as exc:
            raise read.fail("terms", doc["terms"], f"not market terms ({type(exc).__name__}: {exc})") from None
        digests = {name: read.digest(f"digests.{name}", value) for name, value in read.object("digests").items()}
        owner = read.object("owner_encryption")
        addresses = {role: read.address(f"addresses.{role}", a) for role, a in read.object("addresses").items()}
        identities = read.object("identities")
        for role, identity in identities.items():
            if not isinstance(identity, dict):
                raise read.fail(f"identities.{role}", identity, "expected a JSON object (a public identity)")
        recorded = read.object("accounts", {}).get("roles")
        sources = dict(recorded) if recorded else {role: "dev-seed" for role in addresses}  # older: all dev-seed
        evaluators = read.roles("evaluators.roles")
        holders = read.roles("key_holders.roles", [])
        for path, roles in (("evaluators.roles", evaluators), ("key_holders.roles", holders)):
            unknown = [r for r in roles if r not in addresses]
            if unknown:
                raise read.fail(path, unknown, "roles without an address in addresses")
        windows = (None if read.get("windows", None) is None
                   else {name: read.integer(f"windows.{name}") for name in read.object("windows")})
        return cls(
            backend=backend, terms=terms, contract=read.address("contract", read.get("contract")),
            chain_id=read.integer("chain.chain_id"), seed=read.integer("chain.seed"),
            rpc_url=read.text("chain.rpc_url", None, optional=True),
            digests=_frozen(digests), owner_parameters=read.text("owner_encryption.parameters"),
            owner_parameters_sha256=read.digest("owner_encryption.parameters_sha256", owner.get("parameters_sha256")),
            evaluators=evaluators, threshold=read.integer("evaluators.threshold"),
            holders=holders, holder_threshold=read.integer("key_holders.threshold", 0),
            slots=read.integer("key_holders.slots", 0),
            addresses=_frozen(addresses), identities=_frozen({r: _frozen(i) for r, i in identities.items()}),
            account_sources=_frozen(sources), deposit_minimum_wei=read.integer("deposit.minimum_wei"),
            windows=None if windows is None else _frozen(windows),
            endowment=_frozen({k: read.integer(f"endowment.{k}") for k in read.object("endowment", {})}),
        )

    def digest(self, name: str) -> bytes:
        """The published digest ``name``; DeploymentError if market.json publishes none."""
        value = self.digests.get(name)
        if value is None:
            raise DeploymentError(f"market.json publishes no {name} digest")
        return value

    def address(self, role: str) -> str:
        try:
            return self.addresses[role]
        except KeyError:
            raise DeploymentError(f"market.json has no address for role {role!r}") from None

    def role_of(self, address: str) -> str | None:
        """The role whose published address is ``address`` (compared case-insensitively: checksummed or not);
        None for an address that is no role's. Callers that show an address keep it when this is None."""
        return self._roles_by_address.get(str(address).lower())

    @cached_property
    def _roles_by_address(self) -> Mapping[str, str]:
        return {a.lower(): role for role, a in self.addresses.items()}

    def published_identities(self) -> dict[str, dict]:
        """The public identities as market.json publishes them (role -> PublicIdentity.as_dict()), as plain dicts."""
        return {role: dict(identity) for role, identity in self.identities.items()}

    @property
    def input_proofs(self) -> bool:
        """Whether dealers prove their encrypted reports (a CRS digest is published)."""
        return self.digests.get("crs") is not None
