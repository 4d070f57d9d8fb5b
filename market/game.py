"""The simultaneous rate-setting game between the two broker-dealers (MODEL.md §2–3; paper v1).

BDmm sets ``r_mm`` (its rate to MM), BDrm sets ``r_rm`` (its rate to RM). The clients are price-takers: MM
lends ``D(r_mm)``, RM borrows ``S(r_rm)``; the inter-dealer leg clears ``Q = min(D, S)`` at
``r_bd = (r_mm + r_rm)/2``. Payoffs, doubled so that every quantity is an exact integer::

    2·u_mm = (r_rm - r_mm)·Q - 2·max(0, D(r_mm) - Q)·r_mm          (unmatched cash carried at r_mm)
    2·u_rm = (r_rm - r_mm)·Q -   max(0, S(r_rm) - Q)·(r_mm + r_rm)  (unmatched collateral at r_bd)

Everything broadcasts: pass ``r_mm[:, None]`` and ``r_rm[None, :]`` for the payoff matrices of a rate grid.
Client surplus (for welfare) is the sum over accepted units of the gap to the client's reservation rate.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from market.schedules import Schedules

__all__ = ["Play", "play", "client_surplus"]


@dataclass(frozen=True, eq=False)
class Play:
    """Outcome of rate pairs (arrays broadcast from the inputs); payoffs doubled (exact integers)."""

    lend: np.ndarray          # D(r_mm): what MM lends
    borrow: np.ndarray        # S(r_rm): what RM borrows
    volume: np.ndarray        # Q = min(D, S): inter-dealer volume
    payoff_mm_x2: np.ndarray  # 2·u_mm, bp·units
    payoff_rm_x2: np.ndarray  # 2·u_rm, bp·units


def play(schedules: Schedules, r_mm, r_rm, r_bd_x2=None) -> Play:
    """Volumes and doubled payoffs at the rate pairs ``(r_mm, r_rm)`` (numpy broadcasting).

    ``r_bd_x2`` (doubled inter-dealer rate) defaults to the game's ``r_mm + r_rm``. The protocol settles
    the inter-dealer leg at the *instructed* ``r_bd`` even when a dealer offers another client rate; pass
    it here to get those payoffs: ``2u_mm = (r_bd_x2 - 2 r_mm)·Q - 2(D - Q)·r_mm``,
    ``2u_rm = (2 r_rm - r_bd_x2)·Q - (S - Q)·r_bd_x2``.
    """
    r_mm = np.asarray(r_mm, dtype=np.int64)
    r_rm = np.asarray(r_rm, dtype=np.int64)
    r_bd_x2 = r_mm + r_rm if r_bd_x2 is None else np.asarray(r_bd_x2, dtype=np.int64)
    lend = schedules.lend_volume(r_mm)
    borrow = schedules.borrow_volume(r_rm)
    volume = np.minimum(lend, borrow)
    payoff_mm_x2 = (r_bd_x2 - 2 * r_mm) * volume - 2 * (lend - volume) * r_mm
    payoff_rm_x2 = (2 * r_rm - r_bd_x2) * volume - (borrow - volume) * r_bd_x2
    return Play(lend, borrow, volume, payoff_mm_x2, payoff_rm_x2)


def client_surplus(schedules: Schedules, r_mm, r_rm) -> tuple[np.ndarray, np.ndarray]:
    """(MM's, RM's) surplus in bp·units at the offered rates [derived from the inverse schedules].

    MM lends unit q (1 <= q <= D(r_mm)) at r_mm with reservation rate b[q]: surplus ``Σ (r_mm - b[q])``;
    RM borrows unit q at r_rm with reservation rate a[q]: surplus ``Σ (a[q] - r_rm)``.
    """
    r_mm = np.asarray(r_mm, dtype=np.int64)
    r_rm = np.asarray(r_rm, dtype=np.int64)
    lend = schedules.lend_volume(r_mm)
    borrow = schedules.borrow_volume(r_rm)
    cum_b = np.concatenate([[0], np.cumsum(schedules.b[1:])])  # Σ_{q=1..Q} b[q]
    cum_a = np.concatenate([[0], np.cumsum(schedules.a[1:])])
    return lend * r_mm - cum_b[lend], cum_a[borrow] - borrow * r_rm
