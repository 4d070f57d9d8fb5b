"""All pure equilibria of the dealer game on a rate grid, by exhaustive best responses (MODEL.md §4).

For a grid of rates ``R`` the game is an ``|R| × |R|`` bimatrix (rows: BDmm's ``r_mm``, columns: BDrm's
``r_rm``; payoffs from :func:`market.game.play`, exact doubled integers). A profile is a pure Nash
equilibrium iff each payoff equals its best response: ``2u_mm[i, j] = max_i' 2u_mm[i', j]`` and
``2u_rm[i, j] = max_j' 2u_rm[i, j']``. All of it is vectorised numpy.

[derived] Grid sufficiency. For a fixed accepted volume BDmm's payoff falls in ``r_mm`` and BDrm's rises
in ``r_rm``, so every best response sits at a schedule breakpoint (the lowest rate of a ``D`` step, the
highest of an ``S`` step) or at a rate where its client trades nothing. :func:`rate_grid` — every integer
from one bp below the lowest breakpoint to one bp above the highest — therefore contains every best
response over all integer rates: the equilibria found on it are exactly those of the integer-rate game
restricted to that range.

Classification: trade equilibria (Q > 0; Prop. 2.1 says they are matched: ``D = S = Q``), no-trade
profiles (D4), the joint-profit maximum JPM (D3), the largest equilibrium volume, and the Pareto ranking by
``J`` (D6: at every trade equilibrium each dealer earns ``J/2``, so ranking by J ranks both payoffs).
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING

import numpy as np

from market.game import play
from market.schedules import as_exact_fraction
from market.selection import NO_TRADE, Instruction

if TYPE_CHECKING:
    from market.game import Play
    from market.schedules import Schedules

__all__ = [
    "EquilibriumSet",
    "rate_grid",
    "payoff_matrices",
    "all_equilibria",
    "LinearClosedForm",
    "linear_closed_form",
]


def rate_grid(schedules: Schedules) -> np.ndarray:
    """Every integer rate from one bp below the lowest schedule breakpoint to one bp above the highest.

    [decided] Rates stay positive (a zero rate would make carrying inventory free), so the grid starts at
    1 bp at the lowest; the bp below the lowest breakpoint exists whenever every rate is at least 2 bp.
    """
    lo = int(min(schedules.b.min(), schedules.a.min())) - 1
    hi = int(max(schedules.b.max(), schedules.a.max())) + 1
    return np.arange(max(lo, 1), hi + 1, dtype=np.int64)


def payoff_matrices(schedules: Schedules, rates: np.ndarray) -> Play:
    """The game on ``rates × rates``: element ``[i, j]`` is the play at ``(r_mm, r_rm) = (rates[i], rates[j])``."""
    rates = np.asarray(rates, dtype=np.int64)
    return play(schedules, rates[:, None], rates[None, :])


@dataclass(frozen=True, eq=False)
class EquilibriumSet:
    """Every pure equilibrium on a rate grid; profile arrays are aligned, ordered by volume then rates."""

    rates: np.ndarray         # the rate grid searched
    r_mm: np.ndarray          # per equilibrium profile
    r_rm: np.ndarray
    volume: np.ndarray
    lend: np.ndarray          # D(r_mm)
    borrow: np.ndarray        # S(r_rm)
    payoff_mm_x2: np.ndarray
    payoff_rm_x2: np.ndarray
    best_joint_x2: int        # max over ALL grid profiles of 2u_mm + 2u_rm (for D3)

    def __len__(self) -> int:
        return int(self.volume.size)

    @property
    def joint_profit(self) -> np.ndarray:
        """``J = (r_rm - r_mm)·Q`` per profile, bp·units: the dealers' joint payoff at a matched profile."""
        return (self.r_rm - self.r_mm) * self.volume

    @property
    def joint_payoff_x2(self) -> np.ndarray:
        """``2u_mm + 2u_rm`` per profile (differs from 2J only at a profile with unmatched inventory)."""
        return self.payoff_mm_x2 + self.payoff_rm_x2

    @property
    def trade(self) -> np.ndarray:
        return self.volume > 0

    @property
    def no_trade_count(self) -> int:
        """Number of no-trade equilibrium profiles (D4: never zero on a grid from rate_grid)."""
        return int(np.count_nonzero(self.volume == 0))

    @property
    def volumes(self) -> np.ndarray:
        """Distinct equilibrium volumes, ascending (0 when some no-trade profile is an equilibrium)."""
        return np.unique(self.volume)

    @property
    def largest_volume(self) -> int:
        return int(self.volume.max()) if len(self) else 0

    @property
    def all_matched(self) -> bool:
        """Prop. 2.1: no equilibrium leaves a dealer with unmatched inventory."""
        return bool(np.all((self.lend == self.volume) & (self.borrow == self.volume)))

    def at_volume(self, volume: int) -> Instruction:
        """The equilibrium profile of a trade volume as an :class:`Instruction` (KeyError if none)."""
        idx = np.flatnonzero(self.volume == volume)
        if volume == 0 or idx.size == 0:
            if volume == 0 and self.no_trade_count:
                return NO_TRADE
            raise KeyError(f"volume {volume} is not an equilibrium volume")
        i = int(idx[0])
        r_mm, r_rm = int(self.r_mm[i]), int(self.r_rm[i])
        return Instruction(True, int(volume), r_mm, r_rm, r_mm + r_rm, (r_rm - r_mm) * int(volume))

    @property
    def jpm(self) -> Instruction:
        """The joint-profit-maximising equilibrium (ties to the larger volume); no trade if none trades."""
        if not self.trade.any():
            return NO_TRADE
        joint = np.where(self.trade, self.joint_profit, np.iinfo(np.int64).min)
        best = np.flatnonzero(joint == joint.max())
        return self.at_volume(int(self.volume[best].max()))

    def pareto_ranking(self) -> list[tuple[int, int]]:
        """``(volume, J)`` of the distinct equilibrium volumes, best J first (ties: larger volume first)."""
        pairs = {(int(q), int(j)) for q, j in zip(self.volume, self.joint_profit)}
        return sorted(pairs, key=lambda p: (-p[1], -p[0]))

    def profiles(self) -> list[dict]:
        """JSON rows ``{"r_mm", "r_rm", "volume"}``, one per equilibrium profile."""
        return [
            {"r_mm": int(m), "r_rm": int(r), "volume": int(q)}
            for m, r, q in zip(self.r_mm, self.r_rm, self.volume)
        ]


def all_equilibria(schedules: Schedules, rates: np.ndarray | None = None) -> EquilibriumSet:
    """Exhaustive best-response enumeration on ``rates`` (default :func:`rate_grid`).

    O(|R|²) integer work in numpy; ``bench-results/bench_equilibria.json`` times it by ``rate_points``
    (``exhaustive_median_s``).
    """
    rates = rate_grid(schedules) if rates is None else np.unique(np.asarray(rates, dtype=np.int64))
    game = payoff_matrices(schedules, rates)
    mm_best = game.payoff_mm_x2 == game.payoff_mm_x2.max(axis=0, keepdims=True)
    rm_best = game.payoff_rm_x2 == game.payoff_rm_x2.max(axis=1, keepdims=True)
    i, j = np.nonzero(mm_best & rm_best)
    volume = game.volume[i, j]
    order = np.lexsort((rates[j], rates[i], volume))
    i, j = i[order], j[order]
    best_joint_x2 = int((game.payoff_mm_x2 + game.payoff_rm_x2).max())
    return EquilibriumSet(
        rates=rates,
        r_mm=rates[i],
        r_rm=rates[j],
        volume=game.volume[i, j],
        lend=game.lend[i, 0],      # D depends on the row only (shape |R| × 1)
        borrow=game.borrow[0, j],  # S on the column only (shape 1 × |R|)
        payoff_mm_x2=game.payoff_mm_x2[i, j],
        payoff_rm_x2=game.payoff_rm_x2[i, j],
        best_joint_x2=best_joint_x2,
    )


@dataclass(frozen=True)
class LinearClosedForm:
    """Closed forms of the continuous linear model [derived], exact rationals (bp, units, bp·units)."""

    delta: Fraction          # Δ = r_hi - r_lo
    k: Fraction              # 1/alpha_d + 1/alpha_s
    q_star: Fraction         # JPM volume Δ/(2k)
    s_star: Fraction         # JPM spread Δ/2
    j_star: Fraction         # JPM joint profit Δ²/(4k)
    q_bar: Fraction          # largest equilibrium volume Δ/(k + max(1/alpha_d, 1/alpha_s))
    q_competitive: Fraction  # spread closes: Δ/k


def linear_closed_form(r_lo: int, r_hi: int, alpha_d, alpha_s) -> LinearClosedForm:
    """MODEL.md §4 linear closed forms. Equilibrium volumes are the interval ``[0, q_bar]``."""
    inv_d = 1 / as_exact_fraction("alpha_d", alpha_d)
    inv_s = 1 / as_exact_fraction("alpha_s", alpha_s)
    delta = Fraction(int(r_hi) - int(r_lo))
    k = inv_d + inv_s
    return LinearClosedForm(
        delta=delta,
        k=k,
        q_star=delta / (2 * k),
        s_star=delta / 2,
        j_star=delta * delta / (4 * k),
        q_bar=delta / (k + max(inv_d, inv_s)),
        q_competitive=delta / k,
    )
