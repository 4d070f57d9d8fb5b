"""Sequential play (leader/follower) versus the simultaneous game's coordination failure (MODEL.md §4, §6).

[derived] D8. If one dealer moves first and the other observes the leader's rate (hence its client's accepted
volume) before choosing, the follower matches whenever matching pays (the D2 condition on its side), and the
leader — who never earns more than ``J(Q)/2`` at any rate pair (D9) — picks the volume with the largest J
that the follower will match: Q*. Either order yields the joint-profit maximum. :func:`sequential_play`
computes the subgame-perfect outcome by backward induction on the payoff matrices of a rate grid.

The simultaneous game has every volume of ``[0, Q̄]`` as an equilibrium (D6: Pareto-ranked by J), so
without coordination the dealers may miss Q*. Two baselines measure the welfare lost:

* :func:`independent_equilibrium_picks` — each dealer independently picks the rate of an equilibrium
  volume, uniformly [decided]; exact expectation over all pairs of picks;
* :func:`best_response_dynamics` — alternating best responses from random starting rates until a rest point.
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING

import numpy as np

from common.vocabulary import SIDES, Side
from market.equilibria import payoff_matrices, rate_grid
from market.game import play
from market.locus import equilibrium_volumes, joint_profit_maximiser

if TYPE_CHECKING:
    from market.schedules import Schedules

__all__ = [
    "Outcome",
    "sequential_play",
    "CoordinationFailure",
    "independent_equilibrium_picks",
    "DynamicsResult",
    "best_response_dynamics",
]


@dataclass(frozen=True)
class Outcome:
    """Executed rates, inter-dealer volume and doubled payoffs (exact integers)."""

    r_mm: int
    r_rm: int
    volume: int
    payoff_mm_x2: int
    payoff_rm_x2: int

    @property
    def joint_payoff_x2(self) -> int:
        """``2u_mm + 2u_rm``, bp·units (equals ``2J`` at a matched profile)."""
        return self.payoff_mm_x2 + self.payoff_rm_x2

    @classmethod
    def at(cls, schedules: Schedules, r_mm: int, r_rm: int) -> "Outcome":
        p = play(schedules, r_mm, r_rm)
        return cls(int(r_mm), int(r_rm), int(p.volume), int(p.payoff_mm_x2), int(p.payoff_rm_x2))


def _argmax_last(values: np.ndarray, tiebreak: np.ndarray) -> int:
    """Index of the maximum of ``values``; ties go to the largest ``tiebreak`` (then the lowest index)."""
    best = np.flatnonzero(values == values.max())
    return int(best[np.argmax(tiebreak[best])])


def sequential_play(
    schedules: Schedules, leader: Side, rates: np.ndarray | None = None
) -> Outcome:
    """Subgame-perfect outcome when ``leader`` sets its rate first and the other dealer follows.

    [decided] Ties: the follower breaks ties in the leader's favour, then towards the larger volume; the
    leader breaks ties towards the larger volume (the contract's tie rule).
    """
    if leader not in SIDES:
        raise ValueError(f"leader = {leader!r}: must be 'mm' or 'rm'")
    rates = rate_grid(schedules) if rates is None else np.asarray(rates, dtype=np.int64)
    game = payoff_matrices(schedules, rates)
    volume = np.broadcast_to(game.volume, game.payoff_mm_x2.shape)
    if leader == Side.MM:   # rows: leader's rates; follower BDrm picks a column per row
        lead, follow = game.payoff_mm_x2, game.payoff_rm_x2
    else:                # transpose so that rows are always the leader's rates
        lead, follow, volume = game.payoff_rm_x2.T, game.payoff_mm_x2.T, volume.T
    # follower's reply to each leader rate: its best responses, ties by (leader's payoff, volume)
    is_best = follow == follow.max(axis=1, keepdims=True)
    key = lead * (int(volume.max()) + 1) + volume
    reply = np.argmax(np.where(is_best, key, np.iinfo(np.int64).min), axis=1)
    rows = np.arange(rates.size)
    i = _argmax_last(lead[rows, reply], volume[rows, reply])
    j = int(reply[i])
    r_mm, r_rm = (rates[i], rates[j]) if leader == Side.MM else (rates[j], rates[i])
    return Outcome.at(schedules, int(r_mm), int(r_rm))


@dataclass(frozen=True)
class CoordinationFailure:
    """Simultaneous play without coordination, each dealer picking an equilibrium rate independently."""

    jpm_joint_profit: int                # J*
    expected_joint_profit: Fraction      # E[u_mm + u_rm] over independent uniform picks
    p_coordinated: Fraction              # both picked the same volume
    p_jpm: Fraction                      # both picked Q*
    p_unmatched: Fraction                # some dealer is left with inventory

    @property
    def welfare_lost(self) -> Fraction:
        """J* minus the expected joint dealer profit (bp·units)."""
        return self.jpm_joint_profit - self.expected_joint_profit


def independent_equilibrium_picks(schedules: Schedules, include_no_trade: bool = False) -> CoordinationFailure:
    """Exact expectation when BDmm picks ``b[Q1]`` and BDrm picks ``a[Q2]`` for independent uniform
    equilibrium volumes Q1, Q2 (trade equilibria; optionally no trade too, played at ``b[0] - 1``/``a[0] + 1``).
    """
    volumes = equilibrium_volumes(schedules)
    if not include_no_trade:
        volumes = volumes[volumes > 0]
    q_star = joint_profit_maximiser(schedules)
    j_star = int(schedules.joint_profit[q_star]) if q_star else 0
    if volumes.size == 0:
        return CoordinationFailure(j_star, Fraction(0), Fraction(1), Fraction(1), Fraction(0))
    r_mm = np.where(volumes > 0, schedules.b[volumes], schedules.b[0] - 1)
    r_rm = np.where(volumes > 0, schedules.a[volumes], schedules.a[0] + 1)
    p = play(schedules, r_mm[:, None], r_rm[None, :])
    cells = volumes.size**2
    unmatched = (p.lend != p.volume) | (p.borrow != p.volume)
    return CoordinationFailure(
        jpm_joint_profit=j_star,
        expected_joint_profit=Fraction(int((p.payoff_mm_x2 + p.payoff_rm_x2).sum()), 2 * cells),
        p_coordinated=Fraction(volumes.size, cells),
        p_jpm=Fraction(int(np.count_nonzero(volumes == q_star)) ** 2, cells),
        p_unmatched=Fraction(int(np.count_nonzero(unmatched)), cells),
    )


@dataclass(frozen=True, eq=False)
class DynamicsResult:
    """Rest points of alternating best-response dynamics from random starts."""

    final_r_mm: np.ndarray              # per start: rest-point rates (bp)
    final_r_rm: np.ndarray
    final_volume: np.ndarray            # per start
    final_joint_payoff_x2: np.ndarray   # per start, 2u_mm + 2u_rm (bp·units)
    converged: np.ndarray               # per start: reached a mutual best response within max_rounds
    jpm_joint_profit: int

    @property
    def p_jpm(self) -> float:
        """Share of starts that come to rest at the joint-profit maximum."""
        return float(np.mean(self.final_joint_payoff_x2 == 2 * self.jpm_joint_profit))

    @property
    def mean_welfare_lost(self) -> float:
        """J* minus the mean joint dealer payoff at the rest points (bp·units)."""
        return float(self.jpm_joint_profit - self.final_joint_payoff_x2.mean() / 2)


def best_response_dynamics(
    schedules: Schedules, rng: np.random.Generator, starts: int = 100, max_rounds: int = 100
) -> DynamicsResult:
    """From ``starts`` uniform random rate pairs on :func:`rate_grid`, BDmm then BDrm best-respond in turn
    until neither moves [decided: a dealer already at a best response stays; otherwise it takes the best
    response with the largest volume]. All starts advance together (vectorised)."""
    rates = rate_grid(schedules)
    game = payoff_matrices(schedules, rates)
    pm, pr = game.payoff_mm_x2, game.payoff_rm_x2
    n = rates.size
    lend = np.broadcast_to(game.lend, (n, n))
    borrow = np.broadcast_to(game.borrow, (n, n))
    # best responses as lookup tables: column j -> BDmm's row; row i -> BDrm's column
    mm_is_best = pm == pm.max(axis=0, keepdims=True)
    rm_is_best = pr == pr.max(axis=1, keepdims=True)
    mm_reply = np.argmax(np.where(mm_is_best, lend, -1), axis=0)
    rm_reply = np.argmax(np.where(rm_is_best, borrow, -1), axis=1)
    i = rng.integers(0, n, size=starts)
    j = rng.integers(0, n, size=starts)
    converged = np.zeros(starts, dtype=bool)
    for _ in range(max_rounds):
        i = np.where(mm_is_best[i, j], i, mm_reply[j])
        j = np.where(rm_is_best[i, j], j, rm_reply[i])
        converged = mm_is_best[i, j] & rm_is_best[i, j]
        if converged.all():
            break
    q_star = joint_profit_maximiser(schedules)
    return DynamicsResult(
        final_r_mm=rates[i],
        final_r_rm=rates[j],
        final_volume=game.volume[i, j],
        final_joint_payoff_x2=pm[i, j] + pr[i, j],
        converged=converged,
        jpm_joint_profit=int(schedules.joint_profit[q_star]) if q_star else 0,
    )
