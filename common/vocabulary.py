"""The market's names, written once: its two sides, the roles that sign, and the purposes of sealed messages.

Every package uses these (``chain`` too, which imports nothing else of the project), so they live in the leaf
package rather than in ``market`` with a mirror in ``chain`` [decided].

* :class:`Side` -- the side of the market a dealer and its client stand on: ``Side.MM`` (the money-market side)
  and ``Side.RM`` (the repo-market side). A ``str`` enum: ``Side.MM == "mm"``, so the names in JSON, dict keys
  and messages stay ``"mm"``/``"rm"``; ``Side.MM.index`` is the contract's number (0, 1).
* role names: :data:`DEALER_MM`, :data:`DEALER_RM`, :data:`CLIENT_MM`, :data:`CLIENT_RM`, :data:`CUSTODIAN`,
  :data:`AUDITOR`, :data:`DEPLOYER`, and the numbered roles ``evaluator_<i>`` (from 0) and ``key_holder_<n>``
  (from 1); :func:`dealer_of`, :func:`client_of` and :func:`side_of` go between a side and its roles.
* purposes of sealed messages (the ``purpose`` of a ``crypto.envelope.Binding``): :data:`OFFER`,
  :data:`ACCEPTANCE`, :data:`INSTRUCTION`, and :data:`OWNER_REPORT` (a dealer's own encrypted report).
"""
from __future__ import annotations

import enum

__all__ = ["Side", "SIDES", "DEALER_MM", "DEALER_RM", "CLIENT_MM", "CLIENT_RM", "DEALER_ROLES", "CLIENT_ROLES",
           "CUSTODIAN", "AUDITOR", "DEPLOYER", "EVALUATOR_PREFIX", "KEY_HOLDER_PREFIX", "EVALUATORS",
           "dealer_of", "client_of", "side_of", "OFFER", "ACCEPTANCE", "INSTRUCTION", "OWNER_REPORT", "PURPOSES"]


class Side(enum.StrEnum):
    """A side of the market; equal to its name (``"mm"``, ``"rm"``), numbered as the contract numbers it."""

    MM = "mm"
    RM = "rm"

    @classmethod
    def of(cls, side: "Side | int | str") -> "Side":
        """The side from a Side, its name ("mm"/"rm") or its number (0/1); ValueError otherwise."""
        if isinstance(side, str):
            try:
                return cls(side)
            except ValueError:
                raise ValueError(f"side must be 'mm' or 'rm', got {side!r}") from None
        if isinstance(side, int) and not isinstance(side, bool) and side in (0, 1):
            return SIDES[side]
        raise ValueError(f"side must be 'mm'/'rm' or 0/1, got {side!r}")

    @property
    def index(self) -> int:
        """The contract's number of the side (``uint8 side``): 0 for mm, 1 for rm."""
        return 0 if self is Side.MM else 1

    @property
    def other(self) -> "Side":
        return Side.RM if self is Side.MM else Side.MM

    @property
    def dealer(self) -> str:
        """The role name of this side's dealer."""
        return DEALER_MM if self is Side.MM else DEALER_RM

    @property
    def client(self) -> str:
        """The role name of this side's client."""
        return CLIENT_MM if self is Side.MM else CLIENT_RM


SIDES: tuple[Side, Side] = (Side.MM, Side.RM)  # in the contract's order (and the order every check goes in)

DEALER_MM = "dealer_mm"
DEALER_RM = "dealer_rm"
CLIENT_MM = "client_mm"
CLIENT_RM = "client_rm"
DEALER_ROLES = (DEALER_MM, DEALER_RM)
CLIENT_ROLES = (CLIENT_MM, CLIENT_RM)
CUSTODIAN = "custodian"
AUDITOR = "auditor"
DEPLOYER = "deployer"
EVALUATOR_PREFIX = "evaluator_"    # evaluator_0, evaluator_1, ... (chain.evaluator_role checks the number)
KEY_HOLDER_PREFIX = "key_holder_"  # key_holder_1, ... (chain.key_holder_role)
EVALUATORS = "evaluator"           # the recipient of a dealer's own report: whichever evaluators open it


def dealer_of(side: "Side | int | str") -> str:
    """The dealer role of ``side``."""
    return Side.of(side).dealer


def client_of(side: "Side | int | str") -> str:
    """The client role of ``side``."""
    return Side.of(side).client


_SIDE_OF_ROLE = {DEALER_MM: Side.MM, DEALER_RM: Side.RM, CLIENT_MM: Side.MM, CLIENT_RM: Side.RM}


def side_of(role: str) -> Side | None:
    """The side of a dealer or client role; None for every other role."""
    return _SIDE_OF_ROLE.get(role)


OFFER = "offer"                # a dealer's sealed offer to its client
ACCEPTANCE = "acceptance"      # the client's sealed acceptance back
INSTRUCTION = "instruction"    # the custodian's sealed instruction to a dealer
OWNER_REPORT = "owner-report"  # a dealer's report, encrypted by itself under the market's public key
PURPOSES = (OFFER, ACCEPTANCE, INSTRUCTION, OWNER_REPORT)
