"""Cash and collateral balances of the four parties of a repo round, with a conservation check.

Units [decided]: collateral in volume units of the security T; cash in *half-basis-point units*,
``CASH_PER_UNIT = 20_000`` per volume unit, so that interest at any rate in bp -- including the
inter-dealer rate ``r_bd = (r_mm + r_rm) / 2``, which may be a half bp -- is an exact integer:
interest on ``Q`` units at ``r_x2 = 2·r`` is ``Q · r_x2``.

First leg (MODEL.md §1): T moves RM → BDrm → BDmm → MM and cash the other way.  Second leg (maturity):
the same links unwind with interest at each link's rate.  Every movement is a transfer between two
parties, so the per-asset totals are invariant; :meth:`Ledger.check_conservation` raises if they are not
(it is called after every round).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from protocol.errors import ProtocolPackageError

__all__ = [
    "CASH_PER_UNIT",
    "PARTIES",
    "LedgerError",
    "Transfer",
    "Ledger",
    "initial_ledger",
    "first_leg_transfers",
    "second_leg_transfers",
]

CASH_PER_UNIT = 20_000
PARTIES = ("MM", "BDmm", "BDrm", "RM")
ASSETS = ("cash", "collateral")


class LedgerError(ProtocolPackageError):
    """A transfer is malformed or the balances are not conserved."""


@dataclass(frozen=True)
class Transfer:
    asset: str        # "cash" | "collateral"
    payer: str
    payee: str
    amount: int       # >= 0; cash in half-bp units, collateral in volume units
    memo: str

    def as_dict(self) -> dict:
        return {"asset": self.asset, "payer": self.payer, "payee": self.payee,
                "amount": self.amount, "memo": self.memo}


@dataclass
class Ledger:
    """Balances per party and asset; ``initial`` fixes the totals that must be conserved."""

    balances: dict[str, dict[str, int]]
    initial_totals: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.initial_totals:
            self.initial_totals = self.totals()

    def totals(self) -> dict[str, int]:
        return {a: sum(b[a] for b in self.balances.values()) for a in ASSETS}

    def apply(self, transfer: Transfer) -> None:
        if transfer.asset not in ASSETS:
            raise LedgerError(f"asset must be one of {ASSETS}, got {transfer.asset!r}")
        for who in (transfer.payer, transfer.payee):
            if who not in self.balances:
                raise LedgerError(f"unknown party {who!r} in transfer {transfer.memo!r}")
        if not isinstance(transfer.amount, int) or transfer.amount < 0:
            raise LedgerError(f"amount must be a non-negative int, got {transfer.amount!r} ({transfer.memo})")
        self.balances[transfer.payer][transfer.asset] -= transfer.amount
        self.balances[transfer.payee][transfer.asset] += transfer.amount

    def apply_all(self, transfers) -> None:
        for t in transfers:
            self.apply(t)

    def check_conservation(self) -> dict[str, int]:
        now = self.totals()
        if now != self.initial_totals:
            raise LedgerError(f"balances not conserved: totals {now} != initial {self.initial_totals}")
        return now

    def snapshot(self) -> dict[str, dict[str, int]]:
        return {p: dict(b) for p, b in self.balances.items()}

    def as_dict(self) -> dict:
        return {"balances": self.snapshot(), "initial_totals": dict(self.initial_totals)}

    @classmethod
    def from_dict(cls, data: dict) -> "Ledger":
        return cls({p: dict(b) for p, b in data["balances"].items()}, dict(data["initial_totals"]))


def initial_ledger(cash_units: int, collateral_units: int) -> Ledger:
    """Every party starts with the same endowment [decided]: dealers can fund unmatched inventory."""
    return Ledger({p: {"cash": cash_units * CASH_PER_UNIT, "collateral": collateral_units} for p in PARTIES})


def first_leg_transfers(q_mm: int, q_rm: int, q_bd: int) -> list[Transfer]:
    """Opening leg: MM lends ``q_mm`` to BDmm, BDrm lends ``q_rm`` to RM, BDmm lends ``q_bd`` to BDrm.

    Cash goes lender → borrower, collateral borrower → lender, both at par (one cash unit per unit of T).
    """
    out = []
    for lender, borrower, q, link in (("MM", "BDmm", q_mm, "mm"), ("BDrm", "RM", q_rm, "rm"),
                                      ("BDmm", "BDrm", q_bd, "bd")):
        if q:
            out.append(Transfer("cash", lender, borrower, q * CASH_PER_UNIT, f"leg1 {link} cash"))
            out.append(Transfer("collateral", borrower, lender, q, f"leg1 {link} collateral"))
    return out


def second_leg_transfers(q_mm: int, q_rm: int, q_bd: int, r_mm: int, r_rm: int, r_bd_x2: int) -> list[Transfer]:
    """Maturity: each link unwinds, the borrower repays principal plus interest at the link's rate."""
    out = []
    for lender, borrower, q, r_x2, link in (("MM", "BDmm", q_mm, 2 * r_mm, "mm"), ("BDrm", "RM", q_rm, 2 * r_rm, "rm"),
                                            ("BDmm", "BDrm", q_bd, r_bd_x2, "bd")):
        if q:
            out.append(Transfer("cash", borrower, lender, q * CASH_PER_UNIT + q * r_x2, f"leg2 {link} cash+interest"))
            out.append(Transfer("collateral", lender, borrower, q, f"leg2 {link} collateral"))
    return out
