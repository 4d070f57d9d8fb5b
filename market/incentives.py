"""Dealers' reporting and execution strategies under the contract, and the incentive check (MODEL.md §6, D9).

A dealer reports its client's schedule and its hurdle spread, the contract selects an instruction from the
reports (:func:`market.selection.select_equilibrium`), then each dealer offers its client rate and the
clients, price-takers with their TRUE schedules, accept ``D(r_mm)`` and ``S(r_rm)``. Realised payoffs are
MODEL.md §3's at the executed rates (``r_bd`` their midpoint, ``settle="executed"``) [decided]; deposits and
forfeiture come on top. ``settle="instructed"`` settles the inter-dealer leg at the instructed ``r_bd`` as
the protocol does (MODEL.md §6). Then a :class:`Deviate` can pay before forfeiture [derived]: BDmm cutting
volume to q keeps the instructed ``r_bd`` on every unit, ``2u = (a[Q] + b[Q] - 2 b[q])·q``, which may exceed
``J(Q)`` when MM's schedule is steep (example in the tests); the gain is bounded by ``r_max·Q_max``, the
deposit rule. Misreports do not change the settlement rate (instructed = executed midpoint).

Strategies of one dealer: :data:`TRUTHFUL`, :class:`MisreportSchedule` (report another monotone schedule
for its own client), :class:`MisreportHurdle`, :class:`Deviate` (report truthfully, then offer another rate).

[derived] D9. No dealer earns more than ``J(Q)/2`` at any rate pair with inter-dealer volume Q, so truthful
reporting is a best response: a misreport never raises a dealer's realised payoff when the other reports
truthfully. Hurdles are participation thresholds, not payoff deductions: an outcome whose margin is below
the dealer's TRUE hurdle is one it would not accept, so it does not count as a gain [decided: this is what
makes "never raises" true for hurdles — a dealer whose own hurdle binds could otherwise shade it down].
:func:`profitable_misreport` searches a strategy list for a counterexample.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterable, Literal, Union

import numpy as np

from common.vocabulary import Side
from market.game import play
from market.schedules import Schedules
from market.selection import HurdleMode, select_equilibrium

if TYPE_CHECKING:
    from market.selection import Instruction

__all__ = [
    "Truthful",
    "TRUTHFUL",
    "MisreportSchedule",
    "MisreportHurdle",
    "Deviate",
    "Strategy",
    "Realised",
    "realise",
    "profitable_misreport",
]


@dataclass(frozen=True)
class Truthful:
    """Report the true schedule and hurdle; execute the instruction."""


TRUTHFUL = Truthful()


@dataclass(frozen=True, eq=False)
class MisreportSchedule:
    """Report ``schedule`` (the dealer's own side: ``b`` for BDmm, ``a`` for BDrm) instead of the truth."""

    schedule: np.ndarray = field(repr=False)


@dataclass(frozen=True)
class MisreportHurdle:
    """Report ``hurdle`` (bp) instead of the true hurdle."""

    hurdle: int


@dataclass(frozen=True)
class Deviate:
    """Report truthfully, then offer ``rate`` (bp) to the own client instead of the instructed rate."""

    rate: int


Strategy = Union[Truthful, MisreportSchedule, MisreportHurdle, Deviate]


@dataclass(frozen=True)
class Realised:
    """The instruction computed from the reports and what happened with the true schedules."""

    instruction: Instruction
    r_mm: int              # executed rates (0 when no trade)
    r_rm: int
    lend: int              # MM's accepted volume D(r_mm) under its true schedule
    borrow: int            # RM's accepted volume S(r_rm)
    volume: int
    payoff_mm_x2: int
    payoff_rm_x2: int
    admissible_mm: bool    # no trade, or the realised margin clears BDmm's TRUE hurdle
    admissible_rm: bool

    def payoff_x2(self, side: Side) -> int:
        return self.payoff_mm_x2 if side == Side.MM else self.payoff_rm_x2

    def admissible(self, side: Side) -> bool:
        return self.admissible_mm if side == Side.MM else self.admissible_rm


def _report(true: Schedules, side: Side, strategy: Strategy, hurdle: int) -> tuple[np.ndarray, int]:
    own = true.b if side == Side.MM else true.a
    if isinstance(strategy, MisreportSchedule):
        return np.asarray(strategy.schedule, dtype=np.int64), hurdle
    if isinstance(strategy, MisreportHurdle):
        return own, int(strategy.hurdle)
    return own, hurdle


def _clears(spread: int, hurdle: int, mode: HurdleMode) -> bool:
    return spread >= (2 * hurdle if mode is HurdleMode.MARGIN else hurdle)


def realise(
    true: Schedules,
    hurdle_mm: int,
    hurdle_rm: int,
    mode: HurdleMode | str = HurdleMode.MARGIN,
    strategy_mm: Strategy = TRUTHFUL,
    strategy_rm: Strategy = TRUTHFUL,
    settle: Literal["executed", "instructed"] = "executed",
) -> Realised:
    """Play one round: reports → contract's instruction → offers → clients accept with TRUE schedules."""
    if settle not in ("executed", "instructed"):
        raise ValueError(f"settle = {settle!r}: must be 'executed' or 'instructed'")
    mode = HurdleMode(mode)
    b_rep, h_mm_rep = _report(true, Side.MM, strategy_mm, hurdle_mm)
    a_rep, h_rm_rep = _report(true, Side.RM, strategy_rm, hurdle_rm)
    instruction = select_equilibrium(Schedules(b=b_rep, a=a_rep), h_mm_rep, h_rm_rep, mode)
    if not instruction.trade:
        return Realised(instruction, 0, 0, 0, 0, 0, 0, 0, True, True)
    r_mm = strategy_mm.rate if isinstance(strategy_mm, Deviate) else instruction.r_mm
    r_rm = strategy_rm.rate if isinstance(strategy_rm, Deviate) else instruction.r_rm
    p = play(true, r_mm, r_rm, instruction.r_bd_x2 if settle == "instructed" else None)
    spread = r_rm - r_mm
    return Realised(
        instruction=instruction,
        r_mm=int(r_mm),
        r_rm=int(r_rm),
        lend=int(p.lend),
        borrow=int(p.borrow),
        volume=int(p.volume),
        payoff_mm_x2=int(p.payoff_mm_x2),
        payoff_rm_x2=int(p.payoff_rm_x2),
        admissible_mm=_clears(spread, hurdle_mm, mode),
        admissible_rm=_clears(spread, hurdle_rm, mode),
    )


def profitable_misreport(
    true: Schedules,
    hurdle_mm: int,
    hurdle_rm: int,
    side: Side,
    strategies: Iterable[Strategy],
    mode: HurdleMode | str = HurdleMode.MARGIN,
) -> Strategy | None:
    """First strategy of ``side`` that beats truth-telling (other dealer truthful), or None.

    A strategy beats truth-telling if its realised outcome is admissible for the dealer's true hurdle and its
    realised payoff (true schedules) is strictly higher.
    """
    def outcome(strategy: Strategy) -> Realised:
        pair = {"strategy_mm": strategy} if side == Side.MM else {"strategy_rm": strategy}
        return realise(true, hurdle_mm, hurdle_rm, mode, **pair)

    honest = outcome(TRUTHFUL).payoff_x2(side)
    for strategy in strategies:
        result = outcome(strategy)
        if result.admissible(side) and result.payoff_x2(side) > honest:
            return strategy
    return None
