"""Dealer reports as committed on chain: the schedule and hurdle a dealer commits to, salted.

The report itself never travels: the dealer encrypts its digits under the market's public key
(:mod:`crypto.tfhers`) and posts ``commitment`` (:attr:`DealerReport.commitment`) on chain.
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any, Iterable

from common.vocabulary import DEALER_ROLES, Side, side_of
from crypto.encoding import SALT_SIZE, canonical_bytes, commitment, random_salt
from crypto.envelope.binding import exact_int, normalize_contract
from crypto.errors import ReportValueError

REPORT_VALUE_LIMIT = 2**32  # [decided] structural bound on offsets/hurdles; the terms bound them tighter


def _report_value(value: Any, field: str) -> int:
    # numpy integers are accepted here (schedules are numpy arrays in market/), bools are not.
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ReportValueError(f"{field}: {value!r} is not an integer")
    value = int(value)
    if not 0 <= value < REPORT_VALUE_LIMIT:
        raise ReportValueError(f"{field}: {value} outside [0, 2**32)")
    return value


@dataclass(frozen=True, repr=False)
class DealerReport:
    """A dealer's report: its client's schedule as rate offsets from the base rate, and its hurdle.

    Secret to the dealer until the outcome: ``repr`` hides ``schedule``, ``hurdle`` and ``salt``.
    Build with :meth:`create`, which validates the structure and draws a fresh salt.
    """

    role: str
    round: int
    chain_id: int
    contract: str
    schedule: tuple[int, ...]
    hurdle: int
    salt: bytes

    def __post_init__(self) -> None:
        if self.role not in DEALER_ROLES:
            raise ReportValueError(f"report.role: {self.role!r} is not a dealer role {sorted(DEALER_ROLES)}")
        try:
            exact_int(self.round, "report.round", 0, 2**256)
            exact_int(self.chain_id, "report.chain_id", 1, 2**256)
            object.__setattr__(self, "contract", normalize_contract(self.contract))
        except (TypeError, ValueError) as error:
            raise ReportValueError(str(error)) from None
        if isinstance(self.schedule, (str, bytes)) or not hasattr(self.schedule, "__iter__"):
            raise ReportValueError(f"report.schedule: expected a sequence of ints, got {type(self.schedule).__name__}")
        schedule = tuple(_report_value(v, f"report.schedule[{i}]") for i, v in enumerate(self.schedule))
        if len(schedule) < 2:
            raise ReportValueError(f"report.schedule: {len(schedule)} offsets; the grid 0..N needs N >= 1")
        object.__setattr__(self, "schedule", schedule)
        object.__setattr__(self, "hurdle", _report_value(self.hurdle, "report.hurdle"))
        if not isinstance(self.salt, (bytes, bytearray)) or len(self.salt) != SALT_SIZE:
            raise ReportValueError(f"report.salt: expected {SALT_SIZE} bytes")
        object.__setattr__(self, "salt", bytes(self.salt))

    @classmethod
    def create(
        cls,
        *,
        role: str,
        round: int,
        chain_id: int,
        contract: str,
        schedule: Iterable[int],
        hurdle: int,
        salt: bytes | None = None,
    ) -> "DealerReport":
        """Validated report with a fresh random salt unless one is given."""
        return cls(role, round, chain_id, contract, schedule, hurdle, random_salt() if salt is None else salt)

    @property
    def side(self) -> Side:
        """The dealer's side (``Side.MM`` or ``Side.RM``)."""
        return side_of(self.role)

    def as_dict(self) -> dict[str, Any]:
        """Canonical-encodable form (contract as 20 raw bytes)."""
        return {
            "role": self.role,
            "round": self.round,
            "chain_id": self.chain_id,
            "contract": bytes.fromhex(self.contract[2:]),
            "schedule": list(self.schedule),
            "hurdle": self.hurdle,
            "salt": self.salt,
        }

    def commitment_message(self) -> bytes:
        """The committed message: the canonical report without its salt."""
        content = self.as_dict()
        del content["salt"]
        return canonical_bytes(content, name="report")

    @property
    def commitment(self) -> bytes:
        """``commitment(canonical(report without salt), salt)``: the bytes32 the dealer posts on chain."""
        return commitment(self.commitment_message(), self.salt)

    def __repr__(self) -> str:
        return (
            f"DealerReport(role={self.role!r}, round={self.round}, chain_id={self.chain_id}, "
            f"contract={self.contract!r}, grid={len(self.schedule) - 1}, schedule=<hidden>, "
            f"hurdle=<hidden>, salt=<hidden>)"
        )

    __str__ = __repr__
