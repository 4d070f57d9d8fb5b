"""The contract's selection rule, plaintext reference (MODEL.md §5; Aronoff & Townsend v2, hurdle spreads).

Given the dealers' reports (schedules ``b̂``, ``â`` and hurdle spreads ``h_mm``, ``h_rm`` in bp) the contract

1. builds the matched locus from the reports;
2. keeps the attainable Q > 0 that pass the D2 equilibrium test on the reports (:mod:`market.locus`);
3. keeps the Q whose margins clear both hurdles — ``MARGIN`` (default, interpretation A): per-dealer margin
   ``s(Q)/2 >= max(h_mm, h_rm)``, computed as ``s(Q) >= 2·max(h)``; ``SPREAD`` (option B):
   ``s(Q) >= max(h_mm, h_rm)``; both weak inequalities;
4. selects ``argmax J`` over the survivors, ties to the larger Q; no survivor means no trade;
5. outputs the instruction ``(Q_sel, r_mm_sel, r_rm_sel, r_bd_sel)`` with ``r_bd = (r_mm + r_rm)/2``.

[derived] D10: for monotone reports ``s(Q)`` is non-increasing, so the hurdle keeps a prefix and the
J-argmax over it passes D2; the equilibrium filter is then implied. ``equilibrium_filter=False`` runs the
rule without it (what a circuit may compute); the tests check that both agree for strictly monotone reports
(:attr:`Schedules.strict`), which :func:`market.terms.validate_report` requires. With flat runs the
shortcut can pick a non-equilibrium (the attainable argmax may fail D2), so keep the filter there;
:mod:`market.no_cut` writes the filter as two per-volume thresholds, one from each report (what the
circuit computes), and the tests check it equals this reference and the exhaustive enumeration.

[decided] Only attainable volumes (``D(b[Q]) = S(a[Q]) = Q``, see :attr:`Schedules.attainable`) are
candidates: inside a flat run of a schedule the client would accept more than Q at the instructed rate and a
dealer would be left with inventory. Strictly monotone reports make every volume attainable.
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass
from enum import Enum

import numpy as np

from market.errors import MarketError
from market.locus import d2_mask
from market.schedules import Schedules

__all__ = ["HurdleMode", "Instruction", "NO_TRADE", "hurdle_mask", "select_equilibrium", "HurdleError"]


class HurdleMode(str, Enum):
    """How a hurdle spread is compared with the client spread (a published contract term)."""

    MARGIN = "margin"  # interpretation A: each dealer's margin s(Q)/2 clears the larger hurdle
    SPREAD = "spread"  # option B: the whole spread s(Q) clears the larger hurdle


class HurdleError(MarketError):
    """A hurdle spread or hurdle mode is invalid; the message names the field and the value."""


@dataclass(frozen=True)
class Instruction:
    """The contract's output for one round (integers; ``r_bd`` is carried doubled so it stays an integer)."""

    trade: bool
    volume: int        # Q_sel, 0 when no trade
    r_mm: int          # BDmm's rate to MM (bp), 0 when no trade
    r_rm: int          # BDrm's rate to RM (bp), 0 when no trade
    r_bd_x2: int       # 2·r_bd = r_mm + r_rm
    joint_profit: int  # J = (r_rm - r_mm)·Q, bp·units

    @property
    def r_bd(self) -> float:
        """Inter-dealer rate ``(r_mm + r_rm)/2`` in bp (may be a half bp)."""
        return self.r_bd_x2 / 2

    def as_dict(self) -> dict:
        """The JSON ``selected`` object; ``r_bd`` is an int when whole, else a float ending in .5."""
        r_bd = self.r_bd_x2 // 2 if self.r_bd_x2 % 2 == 0 else self.r_bd_x2 / 2
        return {
            "trade": self.trade,
            "volume": self.volume,
            "r_mm": self.r_mm,
            "r_rm": self.r_rm,
            "r_bd": r_bd,
            "joint_profit": self.joint_profit,
        }

    @classmethod
    def at_volume(cls, schedules: Schedules, volume: int) -> "Instruction":
        """The matched point of ``volume`` on the locus of ``schedules`` (no trade for volume 0)."""
        if volume == 0:
            return NO_TRADE
        r_mm, r_rm = int(schedules.b[volume]), int(schedules.a[volume])
        return cls(True, int(volume), r_mm, r_rm, r_mm + r_rm, (r_rm - r_mm) * int(volume))


NO_TRADE = Instruction(trade=False, volume=0, r_mm=0, r_rm=0, r_bd_x2=0, joint_profit=0)


def _check_hurdle(name: str, value) -> int:
    if not isinstance(value, (numbers.Integral, np.integer)) or isinstance(value, (bool, np.bool_)):
        raise HurdleError(f"{name} = {value!r}: hurdle spreads are integers in bp")
    if value < 0:
        raise HurdleError(f"{name} = {value}: hurdle spreads are nonnegative bp")
    return int(value)


def _check_mode(mode) -> HurdleMode:
    try:
        return HurdleMode(mode)
    except ValueError:
        raise HurdleError(f"hurdle mode = {mode!r}: must be one of margin, spread") from None


def hurdle_mask(spread: np.ndarray, hurdle_mm: int, hurdle_rm: int, mode=HurdleMode.MARGIN) -> np.ndarray:
    """Per Q: the margin clears both hurdles (weak inequality), in exact integers."""
    hurdle = max(_check_hurdle("hurdle_mm", hurdle_mm), _check_hurdle("hurdle_rm", hurdle_rm))
    mode = _check_mode(mode)
    threshold = 2 * hurdle if mode is HurdleMode.MARGIN else hurdle
    return np.asarray(spread) >= threshold


def select_equilibrium(
    schedules: Schedules,
    hurdle_mm: int,
    hurdle_rm: int,
    mode: HurdleMode = HurdleMode.MARGIN,
    *,
    equilibrium_filter: bool = True,
) -> Instruction:
    """The contract's instruction for reports ``schedules`` and hurdles (module docstring, steps 1–5).

    >>> from market.schedules import linear_schedules
    >>> s = linear_schedules(400, 460, 1, 1, 30)
    >>> select_equilibrium(s, 20, 20).as_dict()
    {'trade': True, 'volume': 10, 'r_mm': 410, 'r_rm': 450, 'r_bd': 430, 'joint_profit': 400}
    """
    if not isinstance(schedules, Schedules):
        raise TypeError(f"schedules must be a Schedules, got {type(schedules).__name__}")
    keep = hurdle_mask(schedules.spread, hurdle_mm, hurdle_rm, mode) & schedules.attainable
    if equilibrium_filter:
        keep &= d2_mask(schedules)
    keep[0] = False
    if not keep.any():
        return NO_TRADE
    joint = np.where(keep, schedules.joint_profit, np.iinfo(np.int64).min)
    volume = int(np.flatnonzero(joint == joint.max())[-1])
    return Instruction.at_volume(schedules, volume)
