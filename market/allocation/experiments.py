"""The experiments of Cha et al. §5 as pure functions returning data (ALLOCATION.md §3).

Each function takes a seeded ``numpy.random.Generator`` and plain parameters and returns a dict of numpy
arrays and numbers; plotting and JSON writing live in ``protocol`` (``repo-market experiment NAME``).
Replications are a batch axis, so every experiment runs vectorised.

[decided] choices the paper leaves open, used here and stated in ``docs/ALLOCATION_RESULTS.md``:

- dynamic experiments (shocks, random walks, regret, step sweep) use ``m = 50`` by default: at the paper's
  ``m = 100`` capacity is slack in most draws and the price never moves;
- Algorithm 1 in experiments: constant step ``η = 1/L`` (half the safe bound 2/L), proximal weight
  ``γ = 0.5``, exact reports, ``μ^0 = 0``, ``x^0 = 0`` (the shocks come after 50 rounds of warm-up); the
  random-walk experiments start at the initial equilibrium so they measure tracking, not the start-up; the
  regret experiment uses ``η_t = η0/√t``, η0 = 1/L;
- per-round efficiency is measured on the allocation the agents choose in that round (which may exceed
  capacity while the price is adjusting);
- recovery time: rounds after the shock until ``|μ^t - μ*_new| <= ε·max(1, μ*_new)`` holds for good
  (ε = 0.01); resilience ``R = mean Eff after / mean Eff before`` the shock;
- dynamic regret: ``Σ_t D_t(μ^t) - D_t(μ*_t)`` with D_t the dual function of round t's environment.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from .adjustment import StepRule, lipschitz_bound, price_update, proximal_best_response
from .agents import DEFAULTS, AgentFamily, AllocationInputError, LogLinear, draw_log_linear
from .baselines import (
    equal_split,
    flat_contract,
    no_enforcement,
    planner_optimum,
    proportional_rationing,
    proposed,
)
from .equilibrium import dual_function, solve_equilibrium
from .metrics import efficiency, gini, participation, price_of_fairness

__all__ = [
    "EXPERIMENTS",
    "fee_sweep",
    "dashboard",
    "pareto_frontier",
    "fee_shock",
    "participation_shock",
    "dynamic_demand",
    "fee_volatility",
    "regret",
    "step_sweep",
    "pareto_mask",
    "loglog_slope",
]

DYNAMIC_M = 50.0
GAMMA = 0.5
EPSILON = 0.01


def _check_replications(replications: int) -> int:
    if int(replications) < 1:
        raise AllocationInputError(f"replications = {replications!r}: must be at least 1")
    return int(replications)


def _summary(values: np.ndarray, axis: int = -1) -> dict:
    """Mean, standard deviation and a normal 95% half-width over the replication axis."""
    r = values.shape[axis]
    sd = values.std(axis=axis, ddof=1) if r > 1 else np.zeros_like(values.mean(axis=axis))
    return {"mean": values.mean(axis=axis), "std": sd, "ci95": 1.96 * sd / np.sqrt(r)}


# ---- static experiments ----------------------------------------------------------------------------------

def fee_sweep(rng: np.random.Generator, *, replications: int = 100, taus=None, g: float = DEFAULTS.g,
              m: float = DEFAULTS.m, n: int = DEFAULTS.n, centralized: bool = True) -> dict:
    """Every baseline's metrics for τ over [0, 2] (21 points), averaged over replications of the agents.

    Shapes: metrics are (len(taus), replications) before summarising; the returned summaries are per τ.
    """
    r = _check_replications(replications)
    taus = np.linspace(0.0, 2.0, 21) if taus is None else np.asarray(taus, dtype=float)
    agents = draw_log_linear(rng, n, (r,))
    tau_col = taus[:, None]
    outcomes = {
        "no_enforcement": no_enforcement(agents, m),
        "proportional": proportional_rationing(agents, m),
        "flat": flat_contract(agents, tau_col, g, m),
        "proposed": proposed(agents, tau_col, g, m),
    }
    if centralized:
        outcomes["centralized"] = planner_optimum(agents, tau_col, g, m)
    fair = equal_split(agents, tau_col, g, m)
    out: dict = {"taus": taus, "g": g, "m": m, "n": n, "replications": r, "baselines": {}}
    for name, oc in outcomes.items():
        met = oc.metrics
        shape = (len(taus), r)
        row = {}
        for metric in ("efficiency", "gross_surplus", "gini", "jain", "participation", "average_private_cost",
                       "average_total_cost", "total"):
            row[metric] = _summary(np.broadcast_to(getattr(met, metric), shape))
        row["over_capacity_share"] = np.broadcast_to(met.over_capacity, shape).mean(axis=-1)
        row["mu"] = _summary(np.broadcast_to(oc.mu, shape))
        out["baselines"][name] = row
    if centralized:
        pof = price_of_fairness(outcomes["centralized"].metrics.efficiency, fair.metrics.efficiency)
        out["price_of_fairness"] = _summary(pof)
    out["binding_share"] = (outcomes["proposed"].mu > 0).mean(axis=-1)
    return out


def dashboard(rng: np.random.Generator, *, replications: int = 50, taus=None, gs=None,
              m: float = DEFAULTS.m, n: int = DEFAULTS.n) -> dict:
    """(τ, g) grid of the proposed equilibrium: efficiency surface, fairness (1 - Gini) and its gradient,
    participation, and the fee elasticity of aggregate demand ``(τ/S)·dS/dτ`` (finite differences)."""
    r = _check_replications(replications)
    taus = np.linspace(0.0, 2.0, 21) if taus is None else np.asarray(taus, dtype=float)
    gs = np.linspace(0.0, 5.0, 11) if gs is None else np.asarray(gs, dtype=float)
    agents = draw_log_linear(rng, n, (r,))
    eq = solve_equilibrium(agents, taus[:, None, None], gs[None, :, None], m)
    eff = efficiency(agents, eq.x, taus[:, None, None], gs[None, :, None]).mean(axis=-1)
    fairness = (1.0 - gini(eq.x)).mean(axis=-1)
    part = participation(eq.x).mean(axis=-1)
    total = eq.x.sum(axis=-1).mean(axis=-1)
    d_fair_dtau, d_fair_dg = np.gradient(fairness, taus, gs)
    d_total_dtau = np.gradient(total, taus, axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        elasticity = np.where(total > 0, taus[:, None] * d_total_dtau / total, 0.0)
    return {
        "taus": taus, "gs": gs, "m": m, "n": n, "replications": r,
        "efficiency": eff, "fairness": fairness, "fairness_gradient_tau": d_fair_dtau,
        "fairness_gradient_g": d_fair_dg, "participation": part, "total": total,
        "elasticity_tau": elasticity, "mu": eq.mu.mean(axis=-1),
    }


def pareto_mask(efficiency_values, fairness_values) -> np.ndarray:
    """True where no other point has both efficiency and fairness at least as high, one strictly."""
    e = np.asarray(efficiency_values, dtype=float)
    f = np.asarray(fairness_values, dtype=float)
    ge = (e[None, :] >= e[:, None]) & (f[None, :] >= f[:, None])
    gt = (e[None, :] > e[:, None]) | (f[None, :] > f[:, None])
    return ~np.any(ge & gt, axis=1)


def pareto_frontier(rng: np.random.Generator, *, replications: int = 100, taus=None, g: float = DEFAULTS.g,
                    m: float = DEFAULTS.m, n: int = DEFAULTS.n) -> dict:
    """Efficiency vs (1 - Gini) of the proposed equilibrium as τ runs over [0, 2]; the non-dominated τ."""
    r = _check_replications(replications)
    taus = np.linspace(0.0, 2.0, 41) if taus is None else np.asarray(taus, dtype=float)
    agents = draw_log_linear(rng, n, (r,))
    eq = solve_equilibrium(agents, taus[:, None], g, m)
    eff = efficiency(agents, eq.x, taus[:, None], g).mean(axis=-1)
    fair = (1.0 - gini(eq.x)).mean(axis=-1)
    return {"taus": taus, "g": g, "m": m, "n": n, "replications": r, "efficiency": eff, "fairness": fair,
            "participation": participation(eq.x).mean(axis=-1), "frontier": pareto_mask(eff, fair)}


# ---- dynamic experiments (Algorithm 1 in a changing environment) -------------------------------------------

Environment = Callable[[int], tuple[AgentFamily, np.ndarray, np.ndarray]]


def _run_dynamic(env: Environment, rounds: int, g, m, step: StepRule, gamma: float, batch: tuple[int, ...],
                 n: int, warm_start: bool = False) -> dict:
    """Algorithm 1 against environment ``env(t) -> (agents, τ_t, present mask)`` for t = 0..rounds-1.

    Starts from μ = 0, x = 0, or (``warm_start``) from the equilibrium of ``env(0)``. Records, per round: the
    broadcast μ^t, the equilibrium μ*_t of that round's environment, the chosen allocation's efficiency and
    participation, the equilibrium's efficiency, and the dual gap ``D_t(μ^t) - D_t(μ*_t) >= 0``.
    """
    mu = np.zeros(batch)
    x = np.zeros(batch + (n,))
    if warm_start:
        agents0, tau0, present0 = env(0)
        eq0 = solve_equilibrium(_Masked(agents0, present0), tau0, g, m)
        mu, x = eq0.mu.copy(), eq0.x.copy()
    rec = {k: [] for k in ("mu", "mu_star", "eff", "eff_star", "participation", "total", "dual_gap")}
    cache: dict = {}  # the environment is often piecewise constant: solve each one once
    for t in range(rounds):
        agents, tau, present = env(t)
        x = proximal_best_response(agents, mu, tau, g, x, gamma) * present
        total = x.sum(axis=-1)
        active = _Masked(agents, present)
        key = (id(agents), np.asarray(tau).tobytes(), id(present))
        if key not in cache:
            eq = solve_equilibrium(active, tau, g, m)
            cache = {key: (eq, dual_function(active, eq.mu, tau, g, m))}
        eq, d_star = cache[key]
        gap = dual_function(active, mu, tau, g, m) - d_star
        rec["mu"].append(mu.copy())
        rec["mu_star"].append(eq.mu)
        rec["eff"].append(efficiency(agents, x, tau, g))
        rec["eff_star"].append(efficiency(agents, eq.x, tau, g))
        rec["participation"].append(participation(x))
        rec["total"].append(total)
        rec["dual_gap"].append(np.maximum(gap, 0.0))
        mu = price_update(mu, total, m, step.eta(t + 1))
    return {k: np.array(v) for k, v in rec.items()}  # each (rounds,) + batch


class _Masked:
    """An agent family with absent agents (mask False) removed from demand: their demand is 0."""

    def __init__(self, agents: AgentFamily, present: np.ndarray):
        self._a = agents
        self._p = np.asarray(present, dtype=float)

    @property
    def n(self) -> int:
        return self._a.n

    def net_value(self, x):
        return self._a.net_value(x) * self._p

    def net_marginal(self, x):
        return np.where(self._p > 0, self._a.net_marginal(x), -np.inf)

    def demand(self, q):
        return self._a.demand(q) * self._p

    def demand_slope(self, q):
        return self._a.demand_slope(q) * self._p

    def cost(self, x):
        return self._a.cost(x) * self._p

    def value(self, x):
        return self._a.value(x) * self._p


def _default_step(agents: AgentFamily, tau) -> StepRule:
    """η = 1/L, half the safe constant step 2/L, with L taken over the replications (worst case)."""
    return StepRule("constant", float(1.0 / np.max(lipschitz_bound(agents, tau))))


def _recovery_time(mu: np.ndarray, mu_star_new: np.ndarray, shock_at: int, eps: float) -> np.ndarray:
    """Rounds after the shock until μ stays within ε·max(1, μ*) of μ*_new; -1 if it never settles."""
    after = mu[shock_at:]
    ok = np.abs(after - mu_star_new) <= eps * np.maximum(1.0, np.abs(mu_star_new))
    # last violation index; settled from the next round on
    bad = ~ok
    rounds = after.shape[0]
    last_bad = np.where(bad.any(axis=0), rounds - 1 - np.argmax(bad[::-1], axis=0), -1)
    return np.where(last_bad >= rounds - 1, -1, last_bad + 1)


def _shock_summary(rec: dict, shock_at: int, eps: float) -> dict:
    before = rec["eff"][:shock_at].mean(axis=0)
    after = rec["eff"][shock_at:].mean(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        resilience = after / before
    recovery = _recovery_time(rec["mu"], rec["mu_star"][-1], shock_at, eps)
    return {
        "resilience": _summary(resilience),
        # over the replications that settled; the share that did is reported beside it
        "recovery_time": _summary(recovery[recovery >= 0].astype(float)) if np.any(recovery >= 0) else None,
        "recovered_share": float((recovery >= 0).mean()),
        "dynamic_regret": _summary(rec["dual_gap"].sum(axis=0)),
    }


def _paths(rec: dict) -> dict:
    return {k: _summary(v, axis=-1) for k, v in rec.items()}


def fee_shock(rng: np.random.Generator, *, replications: int = 50, rounds: int = 100, shock_at: int = 50,
              tau_before: float = 0.5, tau_after: float = 1.5, g: float = DEFAULTS.g, m: float = DYNAMIC_M,
              n: int = DEFAULTS.n, gamma: float = GAMMA, eps: float = EPSILON) -> dict:
    """τ jumps from 0.5 to 1.5 at t = 50 of 100; Algorithm 1 tracks the new equilibrium."""
    r = _check_replications(replications)
    agents = draw_log_linear(rng, n, (r,))
    present = np.ones((r, n), dtype=bool)
    step = _default_step(agents, min(tau_before, tau_after))

    def env(t):
        return agents, np.full(r, tau_before if t < shock_at else tau_after), present

    rec = _run_dynamic(env, rounds, g, m, step, gamma, (r,), n)
    return {"rounds": rounds, "shock_at": shock_at, "tau_before": tau_before, "tau_after": tau_after,
            "g": g, "m": m, "n": n, "replications": r, "eta": step.eta0, "gamma": gamma,
            "paths": _paths(rec), **_shock_summary(rec, shock_at, eps)}


def participation_shock(rng: np.random.Generator, *, replications: int = 50, rounds: int = 100,
                        shock_at: int = 50, fraction: float = 0.25, mode: str = "leave",
                        tau: float = DEFAULTS.tau, g: float = DEFAULTS.g, m: float = DYNAMIC_M,
                        n: int = DEFAULTS.n, gamma: float = GAMMA, eps: float = EPSILON) -> dict:
    """A random ``fraction`` of the agents leaves (``mode='leave'``) or joins (``'join'``) at ``shock_at``."""
    r = _check_replications(replications)
    if mode not in ("leave", "join"):
        raise AllocationInputError(f"mode = {mode!r}: must be 'leave' or 'join'")
    if not 0 < fraction < 1:
        raise AllocationInputError(f"fraction = {fraction!r}: must lie in (0, 1)")
    agents = draw_log_linear(rng, n, (r,))
    k = max(1, int(round(fraction * n)))
    movers = np.argsort(rng.random((r, n)), axis=-1)[:, :k]
    moving = np.zeros((r, n), dtype=bool)
    np.put_along_axis(moving, movers, True, axis=-1)
    everyone = np.ones((r, n), dtype=bool)
    before, after = (everyone, ~moving) if mode == "leave" else (~moving, everyone)
    step = _default_step(agents, tau)

    def env(t):
        return agents, np.full(r, tau), (before if t < shock_at else after)

    rec = _run_dynamic(env, rounds, g, m, step, gamma, (r,), n)
    return {"rounds": rounds, "shock_at": shock_at, "fraction": fraction, "mode": mode, "movers": k,
            "tau": tau, "g": g, "m": m, "n": n, "replications": r, "eta": step.eta0, "gamma": gamma,
            "paths": _paths(rec), **_shock_summary(rec, shock_at, eps)}


def _tracking_summary(rec: dict) -> dict:
    err = np.abs(rec["mu"] - rec["mu_star"])
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = rec["eff"].sum(axis=0) / rec["eff_star"].sum(axis=0)
    return {"tracking_error": _summary(err.mean(axis=0)), "efficiency_ratio": _summary(ratio),
            "dynamic_regret": _summary(rec["dual_gap"].sum(axis=0))}


def dynamic_demand(rng: np.random.Generator, *, replications: int = 50, rounds: int = 100,
                   sigma: float = 0.3, tau: float = DEFAULTS.tau, g: float = DEFAULTS.g, m: float = DYNAMIC_M,
                   n: int = DEFAULTS.n, gamma: float = GAMMA) -> dict:
    """α_i follows a Gaussian random walk (step σ) reflected into [5, 20] [decided]; β fixed."""
    r = _check_replications(replications)
    agents = draw_log_linear(rng, n, (r,))
    lo, hi = DEFAULTS.alpha_low, DEFAULTS.alpha_high
    steps = sigma * rng.standard_normal((rounds, r, n))
    walk = agents.alpha + np.cumsum(steps, axis=0)
    span = hi - lo
    walk = lo + np.abs(((walk - lo) + span) % (2 * span) - span)  # reflection into [lo, hi]
    present = np.ones((r, n), dtype=bool)
    step = _default_step(agents, tau)
    families = [LogLinear(walk[t], agents.beta) for t in range(rounds)]

    def env(t):
        return families[t], np.full(r, tau), present

    rec = _run_dynamic(env, rounds, g, m, step, gamma, (r,), n, warm_start=True)
    return {"rounds": rounds, "sigma": sigma, "tau": tau, "g": g, "m": m, "n": n, "replications": r,
            "eta": step.eta0, "gamma": gamma, "paths": _paths(rec), **_tracking_summary(rec)}


def fee_volatility(rng: np.random.Generator, *, replications: int = 50, rounds: int = 100,
                   sigma: float = 0.1, tau0: float = DEFAULTS.tau, g: float = DEFAULTS.g, m: float = DYNAMIC_M,
                   n: int = DEFAULTS.n, gamma: float = GAMMA) -> dict:
    """τ follows a Gaussian random walk (step σ) clipped to [0, 2], one path per replication."""
    r = _check_replications(replications)
    agents = draw_log_linear(rng, n, (r,))
    taus = np.clip(tau0 + np.cumsum(sigma * rng.standard_normal((rounds, r)), axis=0), 0.0, 2.0)
    present = np.ones((r, n), dtype=bool)
    step = _default_step(agents, 0.0)

    def env(t):
        return agents, taus[t], present

    rec = _run_dynamic(env, rounds, g, m, step, gamma, (r,), n, warm_start=True)
    return {"rounds": rounds, "sigma": sigma, "tau0": tau0, "g": g, "m": m, "n": n, "replications": r,
            "eta": step.eta0, "gamma": gamma, "tau_path": _summary(taus, axis=-1), "paths": _paths(rec),
            **_tracking_summary(rec)}


def loglog_slope(horizons, values) -> float:
    """Least-squares slope of log(values) on log(horizons)."""
    return float(np.polyfit(np.log(np.asarray(horizons, float)), np.log(np.asarray(values, float)), 1)[0])


def regret(rng: np.random.Generator, *, replications: int = 20, horizons=(50, 100, 200, 400, 800, 1600),
           tau_before: float = 0.5, tau_after: float = 1.5, g: float = 0.0, m: float = DYNAMIC_M,
           n: int = DEFAULTS.n, gamma: float = 0.0, step_kind: str = "sqrt") -> dict:
    """Dynamic regret of Algorithm 1 with ``η_t = η0/√t`` (η0 = 1/L) against a piecewise-stationary
    environment: τ jumps 0.5 → 1.5 at T/2, for each horizon T [decided: bounded path length, where theory
    gives O(√T)]. Returns regret per horizon and its log-log slope (theory: <= 1/2)."""
    r = _check_replications(replications)
    agents = draw_log_linear(rng, n, (r,))
    present = np.ones((r, n), dtype=bool)
    base = _default_step(agents, min(tau_before, tau_after))
    step = StepRule(step_kind, base.eta0)
    totals = []
    for horizon in horizons:
        def env(t, h=horizon):
            return agents, np.full(r, tau_before if t < h // 2 else tau_after), present
        rec = _run_dynamic(env, int(horizon), g, m, step, gamma, (r,), n)
        totals.append(rec["dual_gap"].sum(axis=0))
    totals = np.array(totals)  # (horizons, replications)
    mean = totals.mean(axis=-1)
    return {"horizons": np.asarray(horizons), "regret": _summary(totals), "slope": loglog_slope(horizons, mean),
            "step": step.kind, "eta0": step.eta0, "g": g, "m": m, "n": n, "replications": r, "gamma": gamma}


def step_sweep(rng: np.random.Generator, *, replications: int = 20, multiples=None, rounds: int = 400,
               tau: float = DEFAULTS.tau, g: float = 0.0, m: float = DYNAMIC_M, n: int = DEFAULTS.n,
               tol: float = 1e-6) -> dict:
    """Constant step η = c·(2/L) for c on a log grid: where the price converges, oscillates or diverges.

    Classification per run (γ = 0) [decided]: *converges* if the last dual residual ``|μ^T - μ^{T-1}|`` is
    below tol, or if over the last quarter ``μ^t - μ*`` keeps its sign and ``|μ^t - μ*|`` never grows (a slow
    monotone approach); *diverges* if over the last quarter the iterate strays further from μ* than it started
    (``max |μ^t - μ*| > |μ^0 - μ*|``, i.e. the projected map is expansive there); *oscillates* otherwise.
    Also reports the local bound ``2/ℓ*`` with ``ℓ* = |S'(μ*)|``, beyond the global ``2/L``.
    """
    r = _check_replications(replications)
    multiples = np.logspace(-1.5, 1.5, 25) if multiples is None else np.asarray(multiples, dtype=float)
    agents = draw_log_linear(rng, n, (r,))
    big_l = lipschitz_bound(agents, tau)  # (r,)
    eq = solve_equilibrium(agents, tau, g, m)
    local = -(agents.demand_slope(tau + eq.mu[:, None]) * (eq.x > 0)).sum(axis=-1)
    etas = multiples[:, None] * (2.0 / big_l)[None, :]  # (k, r)
    mu = np.zeros(etas.shape)
    dist0 = np.abs(mu - eq.mu)
    path = []
    prev = mu
    for t in range(rounds):
        x = proximal_best_response(agents, mu, tau, g, 0.0, 0.0)
        prev, mu = mu, price_update(mu, x.sum(axis=-1), m, etas)
        path.append(mu - eq.mu)
    tail = np.array(path)[-(rounds // 4):]
    last = np.abs(tail).max(axis=0)
    one_sided = np.all(tail > 0, axis=0) | np.all(tail < 0, axis=0)
    shrinking = np.all(np.diff(np.abs(tail), axis=0) <= 0, axis=0)
    converged = (np.abs(mu - prev) < tol) | (one_sided & shrinking)
    diverged = ~converged & (last > dist0 + tol)
    oscillating = ~converged & ~diverged
    with np.errstate(divide="ignore"):
        local_bound = np.where(local > 0, 2.0 / np.where(local > 0, local, 1.0), np.inf)
    return {
        "multiples_of_2_over_L": multiples, "rounds": rounds, "tau": tau, "g": g, "m": m, "n": n,
        "replications": r, "converged_share": converged.mean(axis=-1), "oscillating_share": oscillating.mean(axis=-1),
        "diverged_share": diverged.mean(axis=-1), "final_distance": _summary(np.abs(mu - eq.mu)),
        "local_bound_over_global": _summary(local_bound * big_l / 2.0), "binding_share": float((eq.mu > 0).mean()),
    }


EXPERIMENTS = {
    "fee-sweep": fee_sweep,
    "dashboard": dashboard,
    "pareto": pareto_frontier,
    "fee-shock": fee_shock,
    "participation-shock": participation_shock,
    "dynamic-demand": dynamic_demand,
    "fee-volatility": fee_volatility,
    "regret": regret,
    "step-sweep": step_sweep,
}
