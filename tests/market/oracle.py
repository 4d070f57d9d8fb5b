"""Shared test oracles (imported by test modules; not a test module itself)."""
from __future__ import annotations

from market import NO_TRADE, Instruction
from market.equilibria import all_equilibria


def enumerated_selection(s, h_mm: int, h_rm: int, mode: str) -> Instruction:
    """The selection read off the exhaustive enumeration: matched trade equilibria (D = S = Q, the profiles a
    contract can instruct) that clear the hurdle, argmax J, ties to the larger Q; none: no trade."""
    eq = all_equilibria(s)
    threshold = max(h_mm, h_rm) * (2 if mode == "margin" else 1)
    best = None
    for r_mm, r_rm, q, lend, borrow in zip(eq.r_mm, eq.r_rm, eq.volume, eq.lend, eq.borrow):
        if q == 0 or lend != q or borrow != q or r_rm - r_mm < threshold:
            continue
        key = (int((r_rm - r_mm) * q), int(q))
        if best is None or key > best[0]:
            best = (key, int(r_mm), int(r_rm))
    if best is None:
        return NO_TRADE
    (joint, q), r_mm, r_rm = best
    return Instruction(True, q, r_mm, r_rm, r_mm + r_rm, joint)
