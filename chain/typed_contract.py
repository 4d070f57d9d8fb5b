"""What every typed contract wrapper (coordinator.py, clearing.py) shares: binding to a deployed contract of
``chain/contracts/<NAME>.vy``, views, events, and deploying one from its typed terms."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .accounts import ChainAccount
from .errors import ChainInputError

if TYPE_CHECKING:
    from .client import Chain, TxResult
    from .events import EventRecord

Sender = str | ChainAccount


class TypedContract:
    """A deployed contract called by name; subclasses add one typed method per contract function
    (transactions take the sender first and validate their arguments before signing)."""

    NAME = ""  # the contract's source name under chain/contracts/

    def __init__(self, chain: Chain, address: str) -> None:
        self.chain = chain
        self.artifact = chain.compile(self.NAME)
        self.contract = chain.contract(address, self.artifact)
        self.address = self.contract.address
        self.deployment: TxResult | None = None  # set by deploy()

    def __repr__(self) -> str:
        return f"{self.NAME}({self.address} on {self.chain!r})"

    def _view(self, fn: str, *args: Any) -> Any:
        return self.chain.call(self.contract, fn, *args)

    def events(self, name: str | None = None, **match: Any) -> list[EventRecord]:
        """This contract's events in chain order, e.g. ``events("PhaseChanged", round_id=2)``."""
        return self.chain.events(self.address, name, **match)

    @classmethod
    def deploy(cls, chain: Chain, terms: Any, terms_type: type, sender: Sender):
        """Compile (cached) and deploy the contract with ``terms`` (a ``terms_type``: its
        ``constructor_args()``); returns the wrapper, its ``deployment`` the deploying transaction."""
        if not isinstance(terms, terms_type):
            raise ChainInputError(f"terms must be {terms_type.__name__}, got {type(terms).__name__}")
        contract, result = chain.deploy(chain.compile(cls.NAME), terms.constructor_args(), sender)
        wrapper = cls(chain, contract.address)
        wrapper.deployment = result
        return wrapper
