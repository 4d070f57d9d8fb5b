"""The D2 equilibrium filter as two per-volume thresholds, one from each dealer's report [derived].

Why: with flat steps the shortcut D10 (argmax J over the hurdle prefix is an equilibrium) fails, so the
contract must apply the D2 filter; written as below it costs the contract two comparisons per volume, and
each threshold is a function of ONE report, so it can be computed where that report is encoded.

[derived] No-cut spreads. Let Q > 0 be attainable (``Schedules.attainable``), ``s = s(Q) = a[Q] − b[Q]``,
and for ``q < Q`` let ``Δb(q, Q) = b[Q] − b[q] >= 0`` and ``Δa(q, Q) = a[q] − a[Q] >= 0`` (weakly monotone
reports). The D2 test (:mod:`market.locus`) is, for every ``q < Q``::

    BDmm:  Q·s >= q·(a[Q] − b[q]) = q·(s + Δb)   <=>   (Q − q)·s >= q·Δb   <=>   s >= q·Δb / (Q − q)
    BDrm:  Q·s >= q·(a[q] − b[Q]) = q·(s + Δa)   <=>   (Q − q)·s >= q·Δa   <=>   s >= q·Δa / (Q − q)

(``Q − q > 0``; ``q = 0`` gives ``s >= 0``). ``s`` is an integer, so ``s >= x`` iff ``s >= ceil(x)``. Hence
Q passes D2 iff ``s(Q) >= σ_mm(Q)`` and ``s(Q) >= σ_rm(Q)`` with the *no-cut spreads*::

    σ_mm(Q) = max(0, max_{0<q<Q} ceil(q·(b[Q] − b[q]) / (Q − q)))     (from MM's schedule b only)
    σ_rm(Q) = max(0, max_{0<q<Q} ceil(q·(a[q] − a[Q]) / (Q − q)))     (from RM's schedule a only)

σ_mm(Q) is the smallest spread at which BDmm does not gain by cutting the volume from Q (its client's
rate falls by Δb, it keeps the rest of the spread on fewer units), whatever RM's schedule is; σ_rm likewise.
The hurdle filter is ``s(Q) >= c·max(h_mm, h_rm)`` (c = 2 margin, 1 spread) = ``s >= c·h_mm`` and ``s >= c·h_rm``,
so the whole survivor test of MODEL.md §5 steps 2-3 is

    Q attainable  and  s(Q) >= τ_mm(Q)  and  s(Q) >= τ_rm(Q),    τ_side(Q) = max(c·h_side, σ_side(Q)),

each τ a function of one dealer's report (schedule and hurdle) alone. The selection is then ``argmax J`` over
the survivors (ties to the larger Q, none: no trade), exactly :func:`market.selection.select_equilibrium`
with the filter on; ``tests/market/test_no_cut.py`` checks this against the exhaustive best-response
enumeration (:func:`market.equilibria.all_equilibria`), not only against D2. The set of survivors is no
longer a prefix of the grid when steps are flat (the circuit's argmax must not assume it).

For strictly monotone reports the thresholds never change the selection (D10), which is why the strict
contract could skip them.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from common.vocabulary import SIDES, Side
from market.selection import NO_TRADE, HurdleMode, Instruction, hurdle_mask

if TYPE_CHECKING:
    from market.schedules import Schedules

__all__ = ["no_cut_spread", "survivor_thresholds", "select_by_thresholds"]


def no_cut_spread(rates, side: Side) -> np.ndarray:
    """σ_side(Q) for Q = 0..N from ONE schedule (``side="mm"``: MM's b; ``"rm"``: RM's a), exact integers.

    Vectorised over the lower triangle ``0 < q < Q``: O(N²) integer work. Defined for any integer vector
    (a decreasing step just contributes nothing), so a packer can call it before the circuit's checks.

    >>> no_cut_spread([2, 2, 2], "rm").tolist(), no_cut_spread([3, 3, 2], "rm").tolist()
    ([0, 0, 0], [0, 0, 1])
    """
    if side not in SIDES:
        raise ValueError(f"side = {side!r}: must be 'mm' or 'rm'")
    x = np.asarray(rates, dtype=np.int64)
    n1 = x.size
    big_q = np.arange(n1)[:, None]
    q = np.arange(n1)[None, :]
    rise = x[:, None] - x[None, :] if side == Side.MM else x[None, :] - x[:, None]  # [Q, q]: Δb or Δa
    lower = (q >= 1) & (q < big_q)
    span = np.where(lower, big_q - q, 1)
    need = -((-(q * rise)) // span)  # ceil(q·Δ / (Q − q)) in integers
    return np.maximum(np.where(lower, need, 0).max(axis=1), 0)


def survivor_thresholds(rates, hurdle: int, side: Side, mode=HurdleMode.MARGIN) -> np.ndarray:
    """τ_side(Q) = max(c·h_side, σ_side(Q)), Q = 0..N: one dealer's whole share of the survivor test."""
    factor = 2 if HurdleMode(mode) is HurdleMode.MARGIN else 1
    return np.maximum(no_cut_spread(rates, side), factor * int(hurdle))


def select_by_thresholds(schedules: Schedules, hurdle_mm: int, hurdle_rm: int, mode=HurdleMode.MARGIN) -> Instruction:
    """The contract's selection from the per-volume thresholds (module docstring): attainable Q with
    ``s(Q) >= τ_mm(Q)`` and ``s(Q) >= τ_rm(Q)``, argmax J, ties to the larger Q, none -> no trade.

    >>> from market.schedules import make_schedules
    >>> select_by_thresholds(make_schedules([2, 2, 2], [3, 3, 2]), 0, 0) == NO_TRADE  # BDrm would cut to 1
    True
    """
    hurdle_mask(schedules.spread, hurdle_mm, hurdle_rm, mode)  # validates hurdles and mode, names the field
    spread = schedules.spread
    keep = (
        schedules.attainable
        & (spread >= survivor_thresholds(schedules.b, hurdle_mm, Side.MM, mode))
        & (spread >= survivor_thresholds(schedules.a, hurdle_rm, Side.RM, mode))
    )
    keep[0] = False
    if not keep.any():
        return NO_TRADE
    joint = np.where(keep, schedules.joint_profit, np.iinfo(np.int64).min)
    return Instruction.at_volume(schedules, int(np.flatnonzero(joint == joint.max())[-1]))
