"""Round plans: the "world" that hands each role its private inputs before a round.

A :class:`RoundPlan` fixes the TRUE client schedules of a round (after the clients' theta shocks), each
dealer's hurdle and behaviour.  :func:`deal_inputs` writes each role only what it knows: a client its own
schedule, a dealer its client's schedule and its hurdle (MODEL.md §7: theta is known only to that
client's dealer).  The plan itself is the narrator's knowledge, used by the demo report to compare the
outcome with the market's equilibrium set -- never by a role.

Demo rounds [decided], on the linear family ``b[Q] = r_lo + Q``, ``a[Q] = r_hi - Q`` (alpha = 1, so
reports are strictly monotone and every volume is attainable), grid N:
  1. "jpm":       no hurdles -> the unconstrained joint-profit maximum Q* = argmax J.
  2. "hurdle":    hurdles above Q*'s margin -> volume below Q* (the largest Q whose margin clears them).
  3. "no-trade":  hurdles above every margin -> no trade.
  4. "deviation": dealer_mm offers MM one bp more than instructed -> dealer_rm proves the deviation on
                  chain and receives dealer_mm's deposit.
Rounds beyond 4 draw theta shocks and hurdles from the seeded generator.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from common.vocabulary import CLIENT_MM, CLIENT_RM, DEALER_MM, DEALER_RM, Side
from market.schedules import apply_theta, linear_schedules, make_schedules
from market.selection import select_equilibrium
from protocol.layout import write_json

if TYPE_CHECKING:
    from protocol.deployment import Deployment

__all__ = ["RoundPlan", "demo_plans", "deal_inputs", "DEFAULT_BASE_RATE", "R_LO"]

DEFAULT_BASE_RATE = 300
R_LO = 400


@dataclass(frozen=True)
class RoundPlan:
    label: str
    b: tuple          # MM's true inverse schedule (bp), theta applied
    a: tuple          # RM's true inverse schedule (bp), theta applied
    theta_mm: int
    theta_rm: int
    hurdle_mm: int
    hurdle_rm: int
    behaviour_mm: dict = field(default_factory=lambda: {"kind": "honest"})
    behaviour_rm: dict = field(default_factory=lambda: {"kind": "honest"})

    def schedules(self):
        return make_schedules(list(self.b), list(self.a))

    def as_dict(self) -> dict:
        return {"label": self.label, "b": list(self.b), "a": list(self.a), "theta_mm": self.theta_mm,
                "theta_rm": self.theta_rm, "hurdle_mm": self.hurdle_mm, "hurdle_rm": self.hurdle_rm,
                "behaviour_mm": dict(self.behaviour_mm), "behaviour_rm": dict(self.behaviour_rm)}

    @classmethod
    def from_dict(cls, d: dict) -> "RoundPlan":
        return cls(d["label"], tuple(d["b"]), tuple(d["a"]), d["theta_mm"], d["theta_rm"], d["hurdle_mm"],
                   d["hurdle_rm"], dict(d["behaviour_mm"]), dict(d["behaviour_rm"]))


def _plan(label, grid, spread_width, theta_mm, theta_rm, h_mm, h_rm, **behaviour) -> RoundPlan:
    s = linear_schedules(R_LO, R_LO + spread_width, 1, 1, grid)
    s = apply_theta(apply_theta(s, Side.MM, theta_mm), Side.RM, theta_rm)
    return RoundPlan(label, tuple(int(v) for v in s.b), tuple(int(v) for v in s.a), theta_mm, theta_rm,
                     h_mm, h_rm, **behaviour)


def demo_plans(grid: int, rounds: int, seed: int) -> list[RoundPlan]:
    """The demo's rounds (module docstring); ``grid >= 4`` so the four stories are distinct."""
    if grid < 4:
        raise ValueError(f"grid must be at least 4 for the demo's rounds, got {grid}")
    width = 2 * grid  # spread s(Q) = 2N - 2Q at theta 0: Q* = N/2, margin at Q is N - Q
    plans = [
        _plan("jpm", grid, width, 0, 0, 0, 0),
        # margin (s/2) must reach h: Q <= N + (theta_rm - theta_mm)/2 - h; aim at about N/4
        _plan("hurdle", grid, width + 2, -2, 0, grid - grid // 4 + 2, grid // 4),
        _plan("no-trade", grid, width, 0, 3, grid + 2, grid + 2),
        _plan("deviation", grid, width, 1, -1, 1, 0, behaviour_mm={"kind": "offer_rate", "rate_delta": 1}),
    ]
    rng = np.random.default_rng(seed)
    for i in range(4, rounds):
        theta_mm, theta_rm = (int(v) for v in rng.integers(-3, 4, size=2))
        h_mm, h_rm = (int(v) for v in rng.integers(0, grid, size=2))
        plans.append(_plan(f"random-{i + 1}", grid, width, theta_mm, theta_rm, h_mm, h_rm))
    return plans[:rounds]


def deal_inputs(dep: Deployment, round_id: int, plan: RoundPlan) -> None:
    """Write each role's private input for the round into that role's folder (0600).

    A dealer's "offer_rate" behaviour with ``rate_delta`` is resolved against the plaintext selection
    here -- the narrator scripts the deviation; the dealer itself only ever sees its instruction.
    """
    behaviours = {DEALER_MM: dict(plan.behaviour_mm), DEALER_RM: dict(plan.behaviour_rm)}
    for role, beh in behaviours.items():
        if beh.get("kind") == "offer_rate" and "rate_delta" in beh:
            sel = select_equilibrium(plan.schedules(), plan.hurdle_mm, plan.hurdle_rm, dep.terms.hurdle_mode)
            base = sel.r_mm if role == DEALER_MM else sel.r_rm
            behaviours[role] = {"kind": "offer_rate", "rate": int(base + beh["rate_delta"])}
    for role, schedule, hurdle in ((DEALER_MM, plan.b, plan.hurdle_mm), (DEALER_RM, plan.a, plan.hurdle_rm)):
        write_json(dep.data_dir.round_file(role, round_id, "input"),
                   {"schedule": [int(v) for v in schedule], "hurdle": int(hurdle), "behaviour": behaviours[role]},
                   mode=0o600)
    for role, schedule in ((CLIENT_MM, plan.b), (CLIENT_RM, plan.a)):
        write_json(dep.data_dir.round_file(role, round_id, "schedule"), {"rates": [int(v) for v in schedule]},
                   mode=0o600)
