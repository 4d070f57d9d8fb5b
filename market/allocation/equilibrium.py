"""Best responses, aggregate demand and the KKT equilibrium of the clearing mechanism.

Source: Cha et al., arXiv 2510.05504, §3; decisions of ALLOCATION.md §1.

- Best response at shadow price μ (charge ``q = τ + μ``): ``x_i = argmax_x W_i(x) - q·x`` and the
  participation (g) test: **[decided]** the agent takes ``x_i`` only if its payoff there is ``> 0``; a tie
  gives 0.
- Aggregate demand ``S(μ) = Σ_i BR_i(μ)`` is non-increasing in μ.
- **[decided] Equilibrium = KKT form**: ``x = BR(μ*)``, ``μ* >= 0``, ``S(μ*) <= m``, ``μ*·(m - S(μ*)) = 0``.
  With ``g > 0`` S jumps down where an agent drops out, and we take ``μ* = inf{μ >= 0 : S(μ) <= m}``;
  the infimum is attained because a tie drops the agent, and the slack ``m - S(μ*)`` is reported.

Shapes: agents on the last axis; ``tau``, ``g``, ``m`` (and returned ``mu``) are scalars or arrays over the
leading batch axes, so one call solves many instances at once.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .agents import AllocationInputError

if TYPE_CHECKING:
    from .agents import AgentFamily

__all__ = [
    "Equilibrium",
    "best_response",
    "participation_payoff",
    "aggregate_demand",
    "price_upper_bound",
    "solve_equilibrium",
    "dual_function",
    "capacity_sensitivity",
    "fee_sensitivity",
    "validate_market",
]

BISECTION_TOL = 1e-12


def _col(v) -> np.ndarray:
    """A batch-shaped parameter as a column against the agent axis."""
    return np.asarray(v, dtype=float)[..., None]


def validate_market(tau, g, m) -> None:
    """Raise :class:`AllocationInputError` naming the field unless ``τ >= 0``, ``g >= 0``, ``m > 0``."""
    for name, v, strict in (("tau", tau, False), ("g", g, False), ("m", m, True)):
        arr = np.asarray(v, dtype=float)
        bad = ~np.isfinite(arr) | ((arr <= 0) if strict else (arr < 0))
        if bad.any():
            rule = "positive" if strict else "non-negative"
            shown = arr[tuple(np.argwhere(bad)[0])] if arr.ndim else float(arr)
            raise AllocationInputError(f"{name} = {shown!r}: must be {rule} and finite")


def participation_payoff(agents: AgentFamily, x, q, g):
    """``U_i(x; μ) = W_i(x) - q·x - g·1{x > 0}`` with ``q = τ + μ`` (arrays over the agent axis)."""
    return agents.net_value(x) - q * x - g * (x > 0)


def best_response(agents: AgentFamily, mu, tau, g) -> np.ndarray:
    """``BR_i(μ)``: the closed-form demand at ``q = τ + μ`` if its payoff is ``> 0``, else 0 [decided]."""
    q = _col(tau) + _col(mu)
    x = agents.demand(q)
    keep = participation_payoff(agents, x, q, _col(g)) > 0
    return np.where(keep, x, 0.0)


def aggregate_demand(agents: AgentFamily, mu, tau, g) -> np.ndarray:
    """``S(μ) = Σ_i BR_i(μ)`` over the agent axis."""
    return best_response(agents, mu, tau, g).sum(axis=-1)


def price_upper_bound(agents: AgentFamily, tau) -> np.ndarray:
    """``max_i (V_i'(0) - C_i'(0)) - τ``, floored at 0: the charge above which nobody demands anything.

    Fact (ALLOCATION.md §1): ``0 <= μ* < max_i(V_i'(0) - C_i'(0)) - τ`` whenever ``μ* > 0``.
    """
    return np.maximum(0.0, agents.net_marginal(0.0).max(axis=-1) - np.asarray(tau, dtype=float))


@dataclass(frozen=True)
class Equilibrium:
    """KKT equilibrium (arrays over the batch axes; ``x`` has the agents last).

    ``binding``: ``μ* > 0`` and capacity is (numerically) exhausted; ``jump``: ``μ* > 0`` but S jumped over
    m at μ* (only when ``g > 0``), so ``slack > 0`` although the price is positive.
    """

    mu: np.ndarray
    x: np.ndarray
    demand: np.ndarray
    slack: np.ndarray
    binding: np.ndarray
    jump: np.ndarray
    iterations: int
    bracket: np.ndarray  # width of the final bisection bracket (0 where μ* = 0 exactly)


def solve_equilibrium(agents: AgentFamily, tau, g, m, *, tol: float = BISECTION_TOL,
                      max_iter: int = 200) -> Equilibrium:
    """μ* = inf{μ >= 0 : S(μ) <= m} by bisection on ``[0, price_upper_bound]``.

    S is non-increasing, so the invariant ``S(lo) > m >= S(hi)`` is kept; the returned μ is ``hi`` (always
    feasible). With ``g = 0``, S is continuous and ``|μ - μ*| <= tol``; with ``g > 0`` a jump at μ* leaves
    a slack, reported. All batch instances share one iteration count (vectorised).
    """
    validate_market(tau, g, m)
    tau_a = np.asarray(tau, dtype=float)
    g_a = np.asarray(g, dtype=float)
    m_a = np.asarray(m, dtype=float)
    batch = np.broadcast_shapes(agents.net_marginal(0.0).shape[:-1], tau_a.shape, g_a.shape, m_a.shape)
    demand_at = _fast_aggregate_demand(agents, tau_a, g_a)
    lo = np.zeros(batch)
    hi = np.broadcast_to(price_upper_bound(agents, tau_a), batch).astype(float)
    # Already feasible at μ = 0: μ* = 0 (complementary slackness with slack capacity).
    slack_at_zero = demand_at(lo) <= m_a
    hi = np.where(slack_at_zero, 0.0, hi)
    iterations = 0
    while iterations < max_iter and np.any(hi - lo > tol):
        mid = 0.5 * (lo + hi)
        feasible = demand_at(mid) <= m_a
        hi = np.where(feasible, mid, hi)
        lo = np.where(feasible, lo, mid)
        iterations += 1
    x = best_response(agents, hi, tau_a, g_a)
    s = x.sum(axis=-1)
    # The fast path decides participation from precomputed thresholds; the direct payoff test above is
    # authoritative. Where the two disagree at round-off level, step μ up until S(μ) <= m holds directly.
    for _ in range(64):
        over = s > m_a
        if not np.any(over):
            break
        hi = np.where(over, hi + np.maximum(tol, 4e-16 * hi), hi)
        x = best_response(agents, hi, tau_a, g_a)
        s = x.sum(axis=-1)
    slack = m_a - s
    positive = hi > 0
    # Capacity counts as exhausted up to 1e-9 relative: far above the demand change over a 1e-12 bracket for
    # the families here, far below the smallest jump (one agent's demand at its exit price).
    cap_tol = 1e-9 * np.maximum(1.0, m_a)
    jump = positive & (slack > cap_tol) & (g_a > 0)
    binding = positive & ~jump
    return Equilibrium(mu=hi, x=x, demand=s, slack=slack, binding=binding, jump=jump,
                       iterations=iterations, bracket=hi - lo)


def _fast_aggregate_demand(agents: AgentFamily, tau, g):
    """``μ -> S(μ)`` for the bisection.

    A family that knows its participation thresholds (``participation_threshold(g)``: it takes part iff
    ``τ + μ < q_exit``) and can write its demand in place (``demand_into``) gets an allocation-free loop
    without logarithms (``bisection_1e6`` in ``bench-results/bench_allocation.json`` times it at n = 10^6);
    any other family sums its direct best responses.
    """
    threshold = getattr(agents, "participation_threshold", None)
    demand_into = getattr(agents, "demand_into", None)
    if threshold is None or demand_into is None:
        return lambda mu: aggregate_demand(agents, mu, tau, g)
    tau_c = _col(tau)
    g_c = _col(g)
    masked = bool(np.any(g_c > 0))  # with g = 0 the demand's own max(0, .) is the participation test
    mu_exit = threshold(g_c) - tau_c if masked else None  # the agent is active iff μ < mu_exit
    shape = np.broadcast_shapes(agents.net_marginal(0.0).shape, tau_c.shape, g_c.shape)
    buffer = np.empty(shape)
    active = np.empty(shape, dtype=bool) if masked else None

    def total(mu):
        mu_c = _col(mu)
        out = buffer if mu_c.shape[:-1] == shape[:-1] or mu_c.size == 1 else np.empty(
            np.broadcast_shapes(shape, mu_c.shape))
        demand_into(tau_c + mu_c, out)
        if masked:
            act = active if out is buffer else np.empty(out.shape, dtype=bool)
            np.less(mu_c, mu_exit, out=act)
            np.multiply(out, act, out=out)
        return out.sum(axis=-1)

    return total


def dual_function(agents: AgentFamily, mu, tau, g, m) -> np.ndarray:
    """``D(μ) = Σ_i max(0, max_x W_i(x) - (τ + μ)x - g) + μ·m``.

    D is convex in μ (a maximum of affine functions) and, for every ``μ >= 0``, an upper bound of the planner's
    value ``max {Eff(x) : Σx <= m}`` (weak duality); with ``g = 0`` the bound is tight at μ*.
    """
    q = _col(tau) + _col(mu)
    x = best_response(agents, mu, tau, g)
    payoff = np.where(x > 0, participation_payoff(agents, x, q, _col(g)), 0.0)
    return payoff.sum(axis=-1) + np.asarray(mu, dtype=float) * np.asarray(m, dtype=float)


def capacity_sensitivity(agents: AgentFamily, mu, tau, g) -> np.ndarray:
    """``dμ*/dm = 1 / S'(μ*) = 1 / Σ_{active} d x_i/dq`` (implicit function theorem on ``S(μ*) = m``).

    Negative when capacity binds (active agents have strictly decreasing demand); meaningful only where the
    equilibrium is binding (not at a g-jump, where μ* is locally constant in m). Returns ``-inf`` if no agent
    is active.
    """
    q = _col(tau) + _col(mu)
    active = best_response(agents, mu, tau, g) > 0
    slope = np.where(active, agents.demand_slope(q), 0.0).sum(axis=-1)
    with np.errstate(divide="ignore"):
        return np.where(slope < 0, 1.0 / np.where(slope < 0, slope, -1.0), -np.inf)


def fee_sensitivity(binding) -> np.ndarray:
    """``dμ*/dτ``: -1 where capacity binds (only ``q = τ + μ`` enters demand, so q* is pinned), else 0.

    [derived] from the KKT conditions for a fixed active set; at a g-jump μ* moves with the drop-out threshold
    instead and this local statement does not apply.
    """
    return np.where(np.asarray(binding), -1.0, 0.0)

