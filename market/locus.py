"""The matched locus of the dealer game and the exact equilibrium test D2 on it (MODEL.md §4).

Proposition 2.1 (Aronoff & Townsend): in equilibrium neither dealer carries excess inventory, so every trade
equilibrium sits on the matched locus ``r_mm = b[Q]``, ``r_rm = a[Q]`` with spread ``s(Q) = a[Q] - b[Q]`` and
joint profit ``J(Q) = s(Q)·Q``, split equally.

[derived] D2. A matched, attainable Q is a Nash equilibrium iff neither dealer gains by cutting volume:
for all ``q <= Q``::

    Q·s(Q) >= q·(a[Q] - b[q])      (BDmm lowers r_mm to b[q]; RM still borrows Q, BDrm carries the rest)
    Q·s(Q) >= q·(a[q] - b[Q])      (BDrm raises r_rm to a[q])

Raising volume never pays: the deviator itself then carries unmatched inventory at a worse rate.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from market.schedules import Schedules

__all__ = ["d2_mask", "equilibrium_volumes", "joint_profit_maximiser"]


def d2_mask(schedules: Schedules) -> np.ndarray:
    """Boolean per Q = 0..N: the two D2 inequalities hold (attainability is checked separately).

    Vectorised over the lower triangle ``q <= Q``: O(N²) integer products, no floats.
    """
    b, a = schedules.b, schedules.a
    q = schedules.volumes
    joint = schedules.joint_profit
    lower = q[None, :] <= q[:, None]                       # [Q, q]: q <= Q
    mm_deviation = q[None, :] * (a[:, None] - b[None, :])  # q·(a[Q] - b[q])
    rm_deviation = q[None, :] * (a[None, :] - b[:, None])  # q·(a[q] - b[Q])
    mm_ok = np.all(~lower | (joint[:, None] >= mm_deviation), axis=1)
    rm_ok = np.all(~lower | (joint[:, None] >= rm_deviation), axis=1)
    return mm_ok & rm_ok


def equilibrium_volumes(schedules: Schedules) -> np.ndarray:
    """All equilibrium volumes by the D2 test: 0 (no trade, always an equilibrium: D4) and every attainable
    Q > 0 that passes D2, ascending."""
    ok = d2_mask(schedules) & schedules.attainable
    ok[0] = True
    return np.flatnonzero(ok).astype(np.int64)


def joint_profit_maximiser(schedules: Schedules) -> int:
    """``Q* = argmax J(Q)`` over the attainable locus (Q = 0 included), ties to the larger Q.

    [derived] D3: Q* passes D2, so the joint-profit-maximising profile is an equilibrium.
    """
    joint = np.where(schedules.attainable, schedules.joint_profit, np.iinfo(np.int64).min)
    joint[0] = 0
    best = joint.max()
    return int(np.flatnonzero(joint == best)[-1])
