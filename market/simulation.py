"""Many market rounds with client shocks: the contract's selection versus no coordination (MODEL.md §2–6).

Each round draws base client schedules (a random linear schedule, or a random weakly monotone table with flat steps),
shifts them by private client shocks ``theta_mm``, ``theta_rm`` (:func:`market.schedules.apply_theta`),
draws the dealers' hurdle spreads, and plays two mechanisms on the same draw:

* ``contract`` — truthful reports, the contract's instruction from a *selector* (by default the plaintext
  reference :func:`market.selection.select_equilibrium`; the protocol plugs in its FHE backends through the
  same signature), executed in sequence;
* ``none`` — no coordination [decided]: each dealer independently picks the rate of an equilibrium volume,
  uniformly among those whose margin clears its own hurdle (no trade if none), or
  (``baseline="dynamics"``) alternating best responses from a random rate pair.

Per round it records the equilibrium set, the JPM, each mechanism's rates, client volumes, dealer profits
and client surplus. Everything is a pure function of the config and the seed.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from fractions import Fraction
from typing import Callable, Literal

import numpy as np

from common.vocabulary import Side
from market.errors import MarketError
from market.game import client_surplus, play
from market.locus import equilibrium_volumes, joint_profit_maximiser
from market.schedules import Schedules, apply_theta, linear_schedules, make_schedules
from market.selection import HurdleMode, Instruction, select_equilibrium
from market.sequential import best_response_dynamics

__all__ = [
    "Selector",
    "SimulationConfig",
    "MechanismOutcome",
    "RoundResult",
    "SimulationResult",
    "draw_schedules",
    "simulate",
    "MECHANISMS",
]

Selector = Callable[[Schedules, int, int, HurdleMode], Instruction]
MECHANISMS = ("contract", "none")


class SimulationConfigError(MarketError):
    """A simulation parameter is out of range; the message names it and its value."""


@dataclass(frozen=True)
class SimulationConfig:
    """Parameters of the simulated market (integers in bp and units); the default ranges are [decided]."""

    rounds: int = 200
    grid: int = 40                         # volume grid 0..N
    family: Literal["linear", "tabular"] = "linear"
    r_lo: tuple[int, int] = (300, 500)     # MM's base reservation rate range (bp)
    delta: tuple[int, int] = (20, 120)     # r_hi - r_lo range (bp)
    inverse_slopes: tuple[int, ...] = (1, 2, 3)  # bp per unit: alpha = 1/k keeps schedules strictly monotone
    theta: int = 10                        # client shocks uniform on -theta..theta (bp)
    hurdle_max: int = 10                   # hurdles uniform on 0..hurdle_max (bp)
    hurdle_mode: HurdleMode = HurdleMode.MARGIN
    baseline: Literal["independent", "dynamics"] = "independent"

    def __post_init__(self) -> None:
        checks = {
            "rounds": self.rounds >= 1,
            "grid": self.grid >= 1,
            "r_lo": 2 <= self.r_lo[0] <= self.r_lo[1],
            "delta": 1 <= self.delta[0] <= self.delta[1],
            "inverse_slopes": len(self.inverse_slopes) > 0 and min(self.inverse_slopes) >= 1,
            "theta": self.theta >= 0 and self.theta < self.r_lo[0] - 1,
            "hurdle_max": self.hurdle_max >= 0,
            "family": self.family in ("linear", "tabular"),
            "baseline": self.baseline in ("independent", "dynamics"),
        }
        for name, ok in checks.items():
            if not ok:
                raise SimulationConfigError(f"{name} = {getattr(self, name)!r} is out of range")
        object.__setattr__(self, "hurdle_mode", HurdleMode(self.hurdle_mode))

    def as_dict(self) -> dict:
        d = asdict(self)
        d["hurdle_mode"] = self.hurdle_mode.value
        d["r_lo"], d["delta"], d["inverse_slopes"] = list(self.r_lo), list(self.delta), list(self.inverse_slopes)
        return d


@dataclass(frozen=True)
class MechanismOutcome:
    """What one mechanism produced in one round (profits in bp·units; halves are exact in binary)."""

    trade: bool
    r_mm: int
    r_rm: int
    lend: int               # MM's accepted volume
    borrow: int             # RM's accepted volume
    volume: int             # inter-dealer volume
    profit_mm: float
    profit_rm: float
    surplus_mm: int         # client surplus, bp·units
    surplus_rm: int
    matched: bool           # no dealer left with inventory
    at_jpm: bool            # the joint-profit maximum was reached

    @property
    def dealer_profit(self) -> float:
        return self.profit_mm + self.profit_rm

    @property
    def total_surplus(self) -> float:
        return self.dealer_profit + self.surplus_mm + self.surplus_rm


@dataclass(frozen=True)
class RoundResult:
    round: int
    theta_mm: int
    theta_rm: int
    hurdle_mm: int
    hurdle_rm: int
    equilibrium_volumes: tuple[int, ...]
    jpm_volume: int
    jpm_joint_profit: int
    contract: MechanismOutcome
    none: MechanismOutcome

    def as_dict(self) -> dict:
        d = asdict(self)
        d["equilibrium_volumes"] = list(self.equilibrium_volumes)
        for name in MECHANISMS:
            d[name]["dealer_profit"] = getattr(self, name).dealer_profit
            d[name]["total_surplus"] = getattr(self, name).total_surplus
        return d


@dataclass(frozen=True)
class SimulationResult:
    config: SimulationConfig
    seed: int
    rounds: tuple[RoundResult, ...] = field(repr=False)

    def column(self, mechanism: str, name: str) -> np.ndarray:
        """One metric of one mechanism over the rounds (e.g. ``column("none", "total_surplus")``)."""
        return np.asarray([getattr(getattr(r, mechanism), name) for r in self.rounds], dtype=float)

    def summary(self) -> dict[str, dict[str, float]]:
        """Per mechanism: means over rounds and the rates of trade, matching and reaching the JPM."""
        out = {}
        for m in MECHANISMS:
            out[m] = {
                "trade_rate": float(self.column(m, "trade").mean()),
                "jpm_rate": float(self.column(m, "at_jpm").mean()),
                "matched_rate": float(self.column(m, "matched").mean()),
                "mean_volume": float(self.column(m, "volume").mean()),
                "mean_profit_mm": float(self.column(m, "profit_mm").mean()),
                "mean_profit_rm": float(self.column(m, "profit_rm").mean()),
                "mean_client_surplus": float(
                    (self.column(m, "surplus_mm") + self.column(m, "surplus_rm")).mean()
                ),
                "mean_total_surplus": float(self.column(m, "total_surplus").mean()),
            }
        jpm = np.asarray([r.jpm_joint_profit for r in self.rounds], dtype=float)
        out["contract"]["mean_dealer_welfare_lost"] = float((jpm - self.column("contract", "dealer_profit")).mean())
        out["none"]["mean_dealer_welfare_lost"] = float((jpm - self.column("none", "dealer_profit")).mean())
        return out

    def as_dict(self) -> dict:
        return {
            "config": self.config.as_dict(),
            "seed": self.seed,
            "summary": self.summary(),
            "rounds": [r.as_dict() for r in self.rounds],
        }


def draw_schedules(config: SimulationConfig, rng: np.random.Generator) -> Schedules:
    """Base client schedules (before shocks) of one round."""
    r_lo = int(rng.integers(config.r_lo[0], config.r_lo[1] + 1))
    delta = int(rng.integers(config.delta[0], config.delta[1] + 1))
    k_d, k_s = (int(k) for k in rng.choice(config.inverse_slopes, size=2))
    if config.family == "linear":
        return linear_schedules(r_lo, r_lo + delta, Fraction(1, k_d), Fraction(1, k_s), config.grid)
    # tabular: weakly monotone random steps around the linear slopes; a quarter of the steps are flat (runs of
    # equal rates: several units at one rate), the rest 1..2k bp [decided]
    n = config.grid
    b_steps = np.where(rng.random(n) < 0.25, 0, rng.integers(1, 2 * k_d + 1, size=n))
    a_steps = np.where(rng.random(n) < 0.25, 0, rng.integers(1, 2 * k_s + 1, size=n))
    b = r_lo + np.concatenate([[0], np.cumsum(b_steps)])
    a = r_lo + delta - np.concatenate([[0], np.cumsum(a_steps)])
    a = a - min(0, int(a.min()) - config.theta - 2)  # keep rates positive after any shock
    return make_schedules(b, a)


def _outcome(schedules: Schedules, r_mm: int, r_rm: int, jpm_joint_profit: int, offers: bool) -> MechanismOutcome:
    """Clients accept the offered rates with their true schedules; ``offers=False``: nobody quotes."""
    if not offers:
        return MechanismOutcome(False, 0, 0, 0, 0, 0, 0.0, 0.0, 0, 0, True, jpm_joint_profit == 0)
    p = play(schedules, r_mm, r_rm)
    s_mm, s_rm = client_surplus(schedules, r_mm, r_rm)
    matched = int(p.lend) == int(p.volume) == int(p.borrow)
    return MechanismOutcome(
        trade=int(p.volume) > 0,
        r_mm=int(r_mm),
        r_rm=int(r_rm),
        lend=int(p.lend),
        borrow=int(p.borrow),
        volume=int(p.volume),
        profit_mm=int(p.payoff_mm_x2) / 2,
        profit_rm=int(p.payoff_rm_x2) / 2,
        surplus_mm=int(s_mm),
        surplus_rm=int(s_rm),
        matched=matched,
        at_jpm=matched and int(p.payoff_mm_x2) + int(p.payoff_rm_x2) == 2 * jpm_joint_profit,
    )


def _independent_pick(
    schedules: Schedules, volumes: np.ndarray, hurdle: int, mode: HurdleMode, rng: np.random.Generator
) -> int:
    """An equilibrium trade volume clearing the dealer's own hurdle, uniformly; 0 if none."""
    threshold = 2 * hurdle if mode is HurdleMode.MARGIN else hurdle
    ok = volumes[(volumes > 0) & (schedules.spread[volumes] >= threshold)]
    return int(rng.choice(ok)) if ok.size else 0


def simulate(
    config: SimulationConfig,
    seed: int = 0,
    selector: Selector = select_equilibrium,
    progress: Callable[[int, int], None] | None = None,
) -> SimulationResult:
    """Run ``config.rounds`` rounds; ``selector`` computes the contract's instruction from the reports."""
    rng = np.random.default_rng(seed)
    results = []
    for t in range(config.rounds):
        base = draw_schedules(config, rng)
        theta_mm, theta_rm = (int(x) for x in rng.integers(-config.theta, config.theta + 1, size=2))
        true = apply_theta(apply_theta(base, Side.MM, theta_mm), Side.RM, theta_rm)
        h_mm, h_rm = (int(x) for x in rng.integers(0, config.hurdle_max + 1, size=2))
        volumes = equilibrium_volumes(true)
        q_star = joint_profit_maximiser(true)
        j_star = int(true.joint_profit[q_star]) if q_star else 0

        instruction = selector(true, h_mm, h_rm, config.hurdle_mode)
        contract = _outcome(true, instruction.r_mm, instruction.r_rm, j_star, offers=instruction.trade)

        if config.baseline == "independent":
            q_mm = _independent_pick(true, volumes, h_mm, config.hurdle_mode, rng)
            q_rm = _independent_pick(true, volumes, h_rm, config.hurdle_mode, rng)
            # a dealer that picks no trade quotes its client a rate at which it trades nothing
            r_mm = int(true.b[q_mm]) if q_mm else int(true.b[0]) - 1
            r_rm = int(true.a[q_rm]) if q_rm else int(true.a[0]) + 1
            none = _outcome(true, r_mm, r_rm, j_star, offers=True)
        else:
            dyn = best_response_dynamics(true, rng, starts=1)
            none = _outcome(true, int(dyn.final_r_mm[0]), int(dyn.final_r_rm[0]), j_star, offers=True)

        results.append(
            RoundResult(t, theta_mm, theta_rm, h_mm, h_rm, tuple(int(v) for v in volumes), q_star, j_star, contract, none)
        )
        if progress is not None:
            progress(t + 1, config.rounds)
    return SimulationResult(config, int(seed), tuple(results))
