"""Published market terms that fix the selection circuit and the encoding of a dealer's report.

A report is one client schedule on the volume grid ``Q = 0..N`` (BDmm reports MM's ``b``, BDrm reports RM's
``a``) plus the dealer's hurdle spread. It is sent as offsets ``rate - base_rate`` that must fit
``rate_bits`` bits, the hurdle must fit ``hurdle_bits`` bits: encrypted integers overflow silently, so
:func:`validate_report` runs before anything is encrypted, signed or sent.
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

from common.vocabulary import SIDES, Side
from market.errors import MarketError
from market.limits import MAX_MARKET_GRID, MAX_RATE_BITS, MAX_RATE_BP, MIN_RATE_BITS
from market.selection import HurdleMode

__all__ = ["MarketTerms", "ReportError", "validate_report", "report_offsets"]



class ReportError(MarketError):
    """A dealer report does not fit the published terms; the message names field, index and value."""


def _is_int(value) -> bool:
    return isinstance(value, (numbers.Integral, np.integer)) and not isinstance(value, (bool, np.bool_))


@dataclass(frozen=True)
class MarketTerms:
    """Terms fixed at deployment; :meth:`as_dict` is hashed, so it holds ints and strings only."""

    grid: int                 # N: volume grid 0..N
    base_rate: int            # bp; reports are offsets rate - base_rate
    rate_bits: int = 10       # offsets lie in [0, 2**rate_bits - 1]
    hurdle_bits: int = 8      # hurdles lie in [0, 2**hurdle_bits - 1]
    hurdle_mode: HurdleMode = HurdleMode.MARGIN

    def __post_init__(self) -> None:
        for name in ("grid", "base_rate", "rate_bits", "hurdle_bits"):
            value = getattr(self, name)
            if not _is_int(value):
                raise ReportError(f"terms.{name} = {value!r}: must be an integer")
            object.__setattr__(self, name, int(value))
        if not 1 <= self.grid <= MAX_MARKET_GRID:
            raise ReportError(f"terms.grid = {self.grid}: must be in 1..{MAX_MARKET_GRID} (market.limits)")
        for name in ("rate_bits", "hurdle_bits"):
            if not MIN_RATE_BITS <= getattr(self, name) <= MAX_RATE_BITS:
                raise ReportError(f"terms.{name} = {getattr(self, name)}: must be in {MIN_RATE_BITS}..{MAX_RATE_BITS} "
                                  f"(the circuit's widest offset, market.limits)")
        if not 0 <= self.base_rate <= MAX_RATE_BP - self.max_offset:
            raise ReportError(f"terms.base_rate = {self.base_rate}: must be in 0..{MAX_RATE_BP - self.max_offset} bp "
                              f"(every rate below {MAX_RATE_BP + 1} bp, market.limits)")
        try:
            object.__setattr__(self, "hurdle_mode", HurdleMode(self.hurdle_mode))
        except ValueError:
            raise ReportError(f"terms.hurdle_mode = {self.hurdle_mode!r}: must be margin or spread") from None

    @property
    def max_offset(self) -> int:
        return (1 << self.rate_bits) - 1

    @property
    def max_hurdle(self) -> int:
        return (1 << self.hurdle_bits) - 1

    @property
    def max_rate(self) -> int:
        """Highest reportable rate in bp."""
        return self.base_rate + self.max_offset

    def as_dict(self) -> dict:
        return {
            "grid": self.grid,
            "base_rate": self.base_rate,
            "rate_bits": self.rate_bits,
            "hurdle_bits": self.hurdle_bits,
            "hurdle_mode": self.hurdle_mode.value,
        }


def validate_report(terms: MarketTerms, side: Side, schedule, hurdle: int) -> None:
    """Check one dealer's report against the terms; raise :class:`ReportError` at the first problem.

    ``side="mm"``: ``schedule`` is MM's ``b`` (rates in bp, nondecreasing); ``side="rm"``: RM's ``a``
    (nonincreasing). Checks: side, integers, length N+1, positive rates, weakly monotone, offsets in
    ``[0, 2**rate_bits - 1]``, hurdle an integer in ``[0, 2**hurdle_bits - 1]``.
    """
    if side not in SIDES:
        raise ReportError(f"side = {side!r}: must be 'mm' or 'rm'")
    field = "b" if side == Side.MM else "a"
    if isinstance(schedule, np.ndarray):
        if schedule.ndim != 1:
            raise ReportError(f"{field}: expected a one-dimensional schedule, got shape {schedule.shape}")
        items = schedule.tolist() if schedule.dtype.kind not in "iu" else [int(v) for v in schedule]
    else:
        try:
            items = list(schedule)
        except TypeError:
            raise ReportError(f"{field}: expected a list of integer rates, got {type(schedule).__name__}") from None
    for q, value in enumerate(items):
        if not _is_int(value):
            raise ReportError(f"{field}[{q}] = {value!r}: rates must be integers in bp")
    if len(items) != terms.grid + 1:
        raise ReportError(
            f"{field}: {len(items)} rates, but the terms fix the volume grid Q = 0..{terms.grid} ({terms.grid + 1} rates)"
        )
    rates = np.asarray(items, dtype=np.int64)
    for q, rate in enumerate(rates):
        if rate <= 0:
            raise ReportError(f"{field}[{q}] = {int(rate)}: rates must be positive bp")
        if not terms.base_rate <= rate <= terms.max_rate:
            raise ReportError(
                f"{field}[{q}] = {int(rate)}: offset {int(rate) - terms.base_rate} from base_rate "
                f"{terms.base_rate} is outside [0, {terms.max_offset}] ({terms.rate_bits} bits)"
            )
    # Reports are weakly monotone, like every schedule (flat runs allowed): the contract treats only the
    # attainable volumes as candidates and applies the D2 filter exactly (market.no_cut).
    steps = np.diff(rates) if side == Side.MM else -np.diff(rates)
    bad = np.flatnonzero(steps < 0)
    if bad.size:
        q = int(bad[0]) + 1
        word = "nondecreasing" if side == Side.MM else "nonincreasing"
        raise ReportError(
            f"{field}[{q}] = {int(rates[q])} after {field}[{q - 1}] = {int(rates[q - 1])}: reported {field} must "
            f"be {word} in Q"
        )
    if not _is_int(hurdle):
        raise ReportError(f"hurdle = {hurdle!r}: must be an integer in bp")
    if not 0 <= hurdle <= terms.max_hurdle:
        raise ReportError(f"hurdle = {hurdle}: outside [0, {terms.max_hurdle}] ({terms.hurdle_bits} bits)")


def report_offsets(terms: MarketTerms, side: Side, schedule) -> np.ndarray:
    """The validated schedule as int64 offsets ``rate - base_rate`` (what gets encrypted)."""
    validate_report(terms, side, schedule, 0)
    return np.asarray(schedule, dtype=np.int64) - terms.base_rate
