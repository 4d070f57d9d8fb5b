"""Decentralized price adjustment — Algorithm 1 of Cha et al. (arXiv 2510.05504, §4); ALLOCATION.md §2.

Round t: the contract broadcasts μ^t; each agent privately solves the proximal best response

    x_i^{t+1} = argmax_{x >= 0} U_i(x; μ^t) - (γ/2)(x - x_i^t)²

in its closed form ``y`` (the stationary point, ALLOCATION.md §2). [decided] The fixed fee enters as the
participation test of the best response *at the broadcast price*: the agent takes ``y`` iff its payoff at
``BR(μ^t)`` is > 0 (ties ⇒ 0), otherwise 0. The proximal term regularises the quantity, not the decision to
take part. The literal argmax (compare ``U(y) - (γ/2)(y - x^t)²`` with ``-(γ/2)(x^t)²``) has hysteresis: an
active agent stays in even at a negative payoff, because leaving costs ``(γ/2)(x^t)²``, so its fixed points
need not be equilibria (we measured Algorithm 1 settling at μ = 0.210 instead of μ* = 0.262 in 3 of 50 fee-shock
replications). With the test at the price, every fixed point is the KKT equilibrium's best response.
It reports its demand, optionally as the mean of M noisy reports; the contract sets

    μ^{t+1} = [μ^t + η_t (Ŝ^t - m)]_+ .

Stopping rule [decided]: primal residual ``|min(μ^{t+1}, m - Ŝ^t)|`` and dual residual ``|μ^{t+1} - μ^t|``
both below ``tol``, or ``max_iter`` rounds. [decided] A third test, the change of the reported total
``|Ŝ^t - Ŝ^{t-1}|`` below ``tol``, is added: with proximal responses (γ > 0) started at x^0 = 0 the price
can sit at 0 with both residuals 0 while demand is still growing towards capacity; the contract sees the
reports, so it can check this. Step rules: constant η (converges for η ∈ (0, 2/L), Fejér monotone
when γ = 0), ``η_0/√t`` (dynamic regret O(√T)), ``η_0/t`` (Robbins–Monro, for noisy reports). For the log/linear
family ``L <= Σ_{active} α_i/(β_i + τ)²`` (:func:`lipschitz_bound`).

The contract's side (:func:`price_update`) is the one the on-chain clearing contract reproduces in fixed point.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from .agents import AllocationInputError
from .equilibrium import _col, participation_payoff, validate_market

if TYPE_CHECKING:
    from .agents import AgentFamily

__all__ = [
    "StepRule",
    "AdjustmentHistory",
    "AdjustmentResult",
    "lipschitz_bound",
    "proximal_best_response",
    "price_update",
    "residuals",
    "adjust_prices",
]

STEP_KINDS = ("constant", "sqrt", "harmonic")


@dataclass(frozen=True)
class StepRule:
    """``constant``: η_t = η0; ``sqrt``: η_t = η0/√t; ``harmonic``: η_t = η0/t (t = 1, 2, ...)."""

    kind: str = "constant"
    eta0: float = 0.05

    def __post_init__(self) -> None:
        if self.kind not in STEP_KINDS:
            raise AllocationInputError(f"step kind = {self.kind!r}: must be one of {', '.join(STEP_KINDS)}")
        if not (np.isfinite(self.eta0) and self.eta0 > 0):
            raise AllocationInputError(f"eta0 = {self.eta0!r}: must be positive and finite")

    def eta(self, t: int) -> float:
        if self.kind == "constant":
            return self.eta0
        if self.kind == "sqrt":
            return self.eta0 / np.sqrt(t)
        return self.eta0 / t


def lipschitz_bound(agents: AgentFamily, tau) -> np.ndarray:
    """``L = Σ_i sup_{μ>=0} |d x_i/dμ|``; for log/linear ``Σ_{active at μ=0} α_i/(β_i + τ)²``."""
    return agents.curvature_bound(_col(tau)).sum(axis=-1)


def proximal_best_response(agents: AgentFamily, mu, tau, g, anchor, gamma: float) -> np.ndarray:
    """Proximal step ``y = argmax_{x>=0} W(x) - qx - (γ/2)(x - anchor)²``; with a fixed fee only for agents
    that pass the g test at the broadcast price (payoff at ``BR(μ)`` > 0) [decided, see the module
    docstring], 0 for the others."""
    q = _col(tau) + _col(mu)
    g_c = _col(g)
    y = agents.proximal_demand(q, anchor, gamma)
    if not np.any(g_c > 0):
        return y  # no fixed fee: the closed form is the exact argmax
    target = agents.demand(q)
    takes_part = (g_c <= 0) | (participation_payoff(agents, target, q, g_c) > 0)
    return np.where(takes_part, y, 0.0)


def price_update(mu, reported_total, m, eta) -> np.ndarray:
    """The contract's projected step ``[μ + η(Ŝ - m)]_+``."""
    return np.maximum(0.0, np.asarray(mu, dtype=float) + eta * (np.asarray(reported_total) - np.asarray(m)))


def residuals(mu_next, mu, reported_total, m) -> tuple[np.ndarray, np.ndarray]:
    """(primal, dual) = (``|min(μ^{t+1}, m - Ŝ)|``, ``|μ^{t+1} - μ^t|``) [decided]."""
    primal = np.abs(np.minimum(mu_next, np.asarray(m, dtype=float) - reported_total))
    return primal, np.abs(np.asarray(mu_next) - np.asarray(mu))


@dataclass(frozen=True)
class AdjustmentHistory:
    """Iterates for plots: ``mu[t]`` for t = 0..T, per-round reported totals and residuals for t = 1..T,
    and (if recorded) ``x[t]`` the allocations after round t."""

    mu: np.ndarray
    reported: np.ndarray
    primal: np.ndarray
    dual: np.ndarray
    report: np.ndarray
    eta: np.ndarray
    x: np.ndarray | None = None


@dataclass(frozen=True)
class AdjustmentResult:
    mu: np.ndarray
    x: np.ndarray
    iterations: int
    converged: np.ndarray
    primal_residual: np.ndarray
    dual_residual: np.ndarray
    report_residual: np.ndarray
    history: AdjustmentHistory = field(repr=False)


def adjust_prices(agents: AgentFamily, tau, g, m, *, step: StepRule = StepRule(), gamma: float = 0.0,
                  reports: int = 1, noise_std: float = 0.0, rng: np.random.Generator | None = None,
                  tol: float = 1e-8, max_iter: int = 1000, mu0=0.0, x0=None,
                  record_allocations: bool = False, stop_early: bool = True) -> AdjustmentResult:
    """Run Algorithm 1 from ``(μ^0, x^0)`` (default 0 and 0 [decided]) for up to ``max_iter`` rounds.

    ``reports`` = M noisy reports per agent per round, each ``x_i + N(0, noise_std²)``, averaged
    (unbiased, not clipped [decided]). Batch axes run in lockstep; the run stops when every instance meets
    the stopping rule (``stop_early``), else after ``max_iter`` rounds.
    """
    validate_market(tau, g, m)
    if not (np.isfinite(gamma) and gamma >= 0):
        raise AllocationInputError(f"gamma = {gamma!r}: must be non-negative and finite")
    if int(reports) < 1:
        raise AllocationInputError(f"reports (M) = {reports!r}: must be at least 1")
    if not (np.isfinite(noise_std) and noise_std >= 0):
        raise AllocationInputError(f"noise_std = {noise_std!r}: must be non-negative and finite")
    if int(max_iter) < 1:
        raise AllocationInputError(f"max_iter = {max_iter!r}: must be at least 1")
    if noise_std > 0 and rng is None:
        raise AllocationInputError("rng: a numpy Generator is required when noise_std > 0 (seeded runs)")
    shape = np.broadcast_shapes(agents.net_marginal(0.0).shape, np.shape(tau) + (1,), np.shape(g) + (1,),
                                np.shape(m) + (1,), np.shape(mu0) + (1,))
    mu = np.broadcast_to(np.asarray(mu0, dtype=float), shape[:-1]).copy()
    if np.any(mu < 0):
        raise AllocationInputError(f"mu0 = {mu0!r}: must be non-negative")
    x = np.zeros(shape) if x0 is None else np.broadcast_to(np.asarray(x0, dtype=float), shape).copy()
    m_a = np.asarray(m, dtype=float)

    mus, totals, primals, duals, changes, etas, xs = [mu.copy()], [], [], [], [], [], []
    iterations = 0
    primal = dual = change = np.full(shape[:-1], np.inf)
    previous_total = change
    for t in range(1, int(max_iter) + 1):
        x = proximal_best_response(agents, mu, tau, g, x, gamma)
        if noise_std > 0:
            noisy = x + noise_std * rng.standard_normal((int(reports),) + x.shape)
            total = noisy.mean(axis=0).sum(axis=-1)
        else:
            total = x.sum(axis=-1)
        eta = step.eta(t)
        mu_next = price_update(mu, total, m_a, eta)
        primal, dual = residuals(mu_next, mu, total, m_a)
        change = np.abs(total - previous_total)
        previous_total = total
        mu = mu_next
        iterations = t
        mus.append(mu.copy()); totals.append(total); primals.append(primal); duals.append(dual)
        changes.append(change)
        etas.append(eta)
        if record_allocations:
            xs.append(x.copy())
        if stop_early and np.all((primal < tol) & (dual < tol) & (change < tol)):
            break
    history = AdjustmentHistory(
        mu=np.array(mus), reported=np.array(totals), primal=np.array(primals), dual=np.array(duals),
        report=np.array(changes), eta=np.array(etas), x=np.array(xs) if record_allocations else None,
    )
    return AdjustmentResult(mu=mu, x=x, iterations=iterations,
                            converged=(primal < tol) & (dual < tol) & (change < tol),
                            primal_residual=primal, dual_residual=dual, report_residual=change,
                            history=history)
