"""Dealer reports: the committed, sealed schedule and hurdle, and the custodian's opening of them."""
from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable

from crypto.encoding import SALT_SIZE, canonical_bytes, commitment, random_salt, to_hex
from crypto.envelope.binding import Binding, exact_int, normalize_contract, report_binding
from crypto.envelope.sealed import SealedReport, open_envelope, parse_envelope, plaintext_bytes, seal_message
from crypto.errors import BindingMismatchError, ReportValueError
from crypto.identity import IdentityKeys, PublicIdentity
from market.terms import report_offsets, validate_report

if TYPE_CHECKING:
    from crypto.envelope.replay import ReplayCache

DEALER_SIDES = {"dealer_mm": "mm", "dealer_rm": "rm"}  # dealer role -> side of market.terms.validate_report
REPORT_VALUE_LIMIT = 2**32  # [decided] structural bound on offsets/hurdles; the terms bound them tighter
_REPORT_FIELDS = ("role", "round", "chain_id", "contract", "schedule", "hurdle", "salt")


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

    Secret to the dealer and the custodian: ``repr`` hides ``schedule``, ``hurdle`` and ``salt``.
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
        if self.role not in DEALER_SIDES:
            raise ReportValueError(f"report.role: {self.role!r} is not a dealer role {sorted(DEALER_SIDES)}")
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

    @classmethod
    def from_rates(
        cls,
        terms,
        *,
        role: str,
        round: int,
        chain_id: int,
        contract: str,
        rates: Iterable[int],
        hurdle: int,
        salt: bytes | None = None,
    ) -> "DealerReport":
        """Report from a schedule in bp (MM's ``b`` or RM's ``a``): validated against ``terms``
        (``market.terms.MarketTerms``) and converted to offsets ``rate - terms.base_rate``."""
        if role not in DEALER_SIDES:
            raise ReportValueError(f"report.role: {role!r} is not a dealer role {sorted(DEALER_SIDES)}")

        try:
            validate_report(terms, DEALER_SIDES[role], rates, hurdle)
            offsets = report_offsets(terms, DEALER_SIDES[role], rates)
        except ValueError as error:
            raise ReportValueError(f"{role} report of round {round}: {error}") from None
        return cls.create(
            role=role, round=round, chain_id=chain_id, contract=contract,
            schedule=[int(v) for v in offsets], hurdle=int(hurdle), salt=salt,
        )

    @property
    def side(self) -> str:
        """``"mm"`` or ``"rm"``."""
        return DEALER_SIDES[self.role]

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

    @classmethod
    def from_dict(cls, data: Any) -> "DealerReport":
        if not isinstance(data, dict) or set(data) != set(_REPORT_FIELDS):
            raise ReportValueError(f"report: expected exactly the fields {sorted(_REPORT_FIELDS)}")
        if not isinstance(data["schedule"], list):
            raise ReportValueError("report.schedule: expected a list of ints")
        for index, value in enumerate(data["schedule"]):
            if type(value) is not int:
                raise ReportValueError(f"report.schedule[{index}]: {type(value).__name__} is not an int")
        if type(data["hurdle"]) is not int:
            raise ReportValueError(f"report.hurdle: {type(data['hurdle']).__name__} is not an int")
        return cls(**{name: data[name] for name in _REPORT_FIELDS})

    def to_bytes(self) -> bytes:
        return canonical_bytes(self.as_dict(), name="report")

    def commitment_message(self) -> bytes:
        """The committed message: the canonical report without its salt."""
        content = self.as_dict()
        del content["salt"]
        return canonical_bytes(content, name="report")

    @property
    def commitment(self) -> bytes:
        """``commitment(canonical(report without salt), salt)``: the bytes32 the dealer posts on chain."""
        return commitment(self.commitment_message(), self.salt)

    def binding(self, custodian_role: str = "custodian") -> Binding:
        return report_binding(
            chain_id=self.chain_id,
            contract=self.contract,
            round=self.round,
            dealer_role=self.role,
            custodian_role=custodian_role,
        )

    def rates(self, terms) -> list[int]:
        """The schedule as rates in bp (offset + ``terms.base_rate``)."""
        return [offset + terms.base_rate for offset in self.schedule]

    def validate(self, terms) -> None:
        """Check against published terms with ``market.terms.validate_report`` (length N+1, monotone,
        offsets and hurdle within their bit widths); raises :class:`ReportValueError`."""
        try:
            validate_report(terms, self.side, self.rates(terms), self.hurdle)
        except ValueError as error:
            raise ReportValueError(f"{self.role} report of round {self.round}: {error}") from None

    def _padded_size(self) -> int:
        """Plaintext length of the widest report with the same public fields: a function of public
        data only (grid size, round, chain, contract, role), so every report of a round seals to the
        same length."""
        widest = DealerReport(
            self.role,
            self.round,
            self.chain_id,
            self.contract,
            (REPORT_VALUE_LIMIT - 1,) * len(self.schedule),
            REPORT_VALUE_LIMIT - 1,
            self.salt,
        )
        return len(plaintext_bytes(widest.as_dict(), bytes(64), 0))

    def __repr__(self) -> str:
        return (
            f"DealerReport(role={self.role!r}, round={self.round}, chain_id={self.chain_id}, "
            f"contract={self.contract!r}, grid={len(self.schedule) - 1}, schedule=<hidden>, "
            f"hurdle=<hidden>, salt=<hidden>)"
        )

    __str__ = __repr__


def seal_report(
    report: DealerReport, *, dealer: IdentityKeys, custodian: PublicIdentity, terms=None
) -> SealedReport:
    """Sign ``report`` as ``dealer`` and seal it to the ``custodian``.

    With ``terms`` (a ``market.terms.MarketTerms``) the report is validated against them first, so an
    out-of-range report is refused before anything is signed or encrypted. The sealed length depends
    only on public data (grid size and the binding).
    """
    if not isinstance(report, DealerReport):
        raise TypeError(f"report: expected a DealerReport, got {type(report).__name__}")
    if report.role != dealer.role:
        raise ValueError(f"report.role: {report.role!r}, but the signing keys are {dealer.role!r}'s")
    if terms is not None:
        report.validate(terms)
    return seal_message(
        report.as_dict(),
        sender=dealer,
        recipient=custodian,
        binding=report.binding(custodian.role),
        pad_to=report._padded_size(),
        envelope_type=SealedReport,
    )


@dataclass(frozen=True, repr=False)
class OpenedReport:
    """An accepted report, for immediate encryption. Do not persist or log ``report``."""

    report: DealerReport
    binding: Binding
    envelope_digest: bytes

    @property
    def commitment(self) -> bytes:
        return self.report.commitment

    def __repr__(self) -> str:
        return f"OpenedReport({self.binding.describe()}, envelope={to_hex(self.envelope_digest)[:16]})"


def open_report(
    sealed: SealedReport | bytes,
    *,
    custodian: IdentityKeys,
    dealer: PublicIdentity,
    chain_id: int,
    contract: str,
    round: int,
    terms,
    replay_cache: "ReplayCache | None" = None,
) -> OpenedReport:
    """Custodian side: open and check a dealer's sealed report for ``(chain_id, contract, round)``.

    ``dealer`` is the public identity registered for the dealer role (``dealer.role`` is the role the
    envelope must come from). ``terms`` (``market.terms.MarketTerms``) fixes the ranges; pass ``None``
    only where the terms are checked elsewhere (then only the structure is checked).

    Raises (each distinct): :class:`MalformedEnvelopeError`, :class:`TamperedEnvelopeError`,
    :class:`BindingMismatchError` (another round/contract/chain/role/purpose), :class:`WrongSignerError`,
    :class:`ReportValueError`, :class:`ReplayError`. The replay cache records the envelope only once
    every check has passed.

    The returned report is for immediate encryption: the caller must not write it to disk, log it,
    or keep it after encrypting (the custodian "keeps no plaintext afterwards").
    """
    if dealer.role not in DEALER_SIDES:
        raise ValueError(f"dealer.role: {dealer.role!r} is not a dealer role {sorted(DEALER_SIDES)}")
    expected = report_binding(
        chain_id=chain_id, contract=contract, round=round, dealer_role=dealer.role, custodian_role=custodian.role
    )
    sealed = parse_envelope(sealed, SealedReport)
    payload = open_envelope(sealed, recipient=custodian, sender=dealer, expected=expected)
    report = DealerReport.from_dict(payload)
    # The dealer signed both; they must agree (a mismatch is a dealer bug or a forged re-binding).
    for name in ("role", "round", "chain_id", "contract"):
        signed_value = getattr(report, name)
        bound_value = getattr(expected, {"role": "sender"}.get(name, name))
        if signed_value != bound_value:
            raise BindingMismatchError(f"report.{name}: {signed_value!r} differs from the binding's {bound_value!r}")
    if terms is not None:
        report.validate(terms)
    if replay_cache is not None:
        replay_cache.record(sealed.binding, sealed.digest)
    return OpenedReport(report, sealed.binding, sealed.digest)
