"""Efficiency and fairness metrics of an allocation (ALLOCATION.md §3).

All functions take allocations with the agents on the last axis and reduce over it, so a batch of
allocations is measured in one call.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .agents import AgentFamily

__all__ = [
    "efficiency",
    "gini",
    "jain",
    "participation",
    "average_private_cost",
    "average_total_cost",
    "price_of_fairness",
    "AllocationMetrics",
    "measure",
]


def efficiency(agents: AgentFamily, x, tau, g) -> np.ndarray:
    """``Eff = Σ_i (V_i(x_i) - C_i(x_i)) - τ·Σx - g·#{x_i > 0}``.

    The shadow-price payment μ·x is a transfer between agents and the contract, so it is not deducted;
    τ and g are deducted as the paper does (they are treated as resource costs of execution).
    """
    x = np.asarray(x, dtype=float)
    tau = np.asarray(tau, dtype=float)
    g = np.asarray(g, dtype=float)
    return agents.net_value(x).sum(axis=-1) - tau * x.sum(axis=-1) - g * (x > 0).sum(axis=-1)


def gini(x) -> np.ndarray:
    """``Gini = Σ_i Σ_j |x_i - x_j| / (2 n² x̄)`` over all n agents, zeros included.

    Computed in O(n log n) from the sorted allocation: ``Σ_i Σ_j |x_i - x_j| = 2 Σ_k (2k - n - 1) x_(k)``
    (k = 1..n). [decided] An all-zero allocation has Gini 0 (nobody is treated differently).
    """
    x = np.sort(np.asarray(x, dtype=float), axis=-1)
    n = x.shape[-1]
    k = np.arange(1, n + 1, dtype=float)
    pair_sum = 2.0 * ((2.0 * k - n - 1.0) * x).sum(axis=-1)
    total = x.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, pair_sum / (2.0 * n * np.where(total > 0, total, 1.0)), 0.0)


def jain(x) -> np.ndarray:
    """Jain's index ``(Σx)² / (n·Σx²)`` in ``[1/n, 1]``; [decided] 1 for an all-zero allocation."""
    x = np.asarray(x, dtype=float)
    n = x.shape[-1]
    sq = (x * x).sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(sq > 0, x.sum(axis=-1) ** 2 / (n * np.where(sq > 0, sq, 1.0)), 1.0)


def participation(x) -> np.ndarray:
    """Share of agents with ``x_i > 0``."""
    return (np.asarray(x) > 0).mean(axis=-1)


def average_private_cost(agents: AgentFamily, x) -> np.ndarray:
    """Mean over all agents of ``C_i(x_i)``."""
    return agents.cost(np.asarray(x, dtype=float)).mean(axis=-1)


def average_total_cost(agents: AgentFamily, x, tau, g, mu) -> np.ndarray:
    """Mean over all agents of ``C_i(x_i) + (τ + μ)·x_i + g·1{x_i > 0}`` (private cost plus everything paid
    to the contract) [decided: μ·x counts here since the agent pays it, though Eff nets it out]."""
    x = np.asarray(x, dtype=float)
    q = np.asarray(tau, dtype=float)[..., None] + np.asarray(mu, dtype=float)[..., None]
    paid = agents.cost(x) + q * x + np.asarray(g, dtype=float)[..., None] * (x > 0)
    return paid.mean(axis=-1)


def price_of_fairness(eff_optimum, eff_fair) -> np.ndarray:
    """``PoF = (Eff_opt - Eff_fair) / |Eff_opt|`` (Bertsimas, Farias & Trichakis 2011).

    [decided] The fair reference is the equal split ``x_i = m/n`` charged the same τ and g.
    """
    eff_optimum = np.asarray(eff_optimum, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (eff_optimum - np.asarray(eff_fair, dtype=float)) / np.abs(eff_optimum)


@dataclass(frozen=True)
class AllocationMetrics:
    """Every metric of §3 for one allocation (or a batch); ``gross_surplus`` is ``Σ(V_i - C_i)``, the
    efficiency before fees [decided: reported beside Eff so mechanisms with and without fees compare]."""

    efficiency: np.ndarray
    gross_surplus: np.ndarray
    gini: np.ndarray
    jain: np.ndarray
    participation: np.ndarray
    average_private_cost: np.ndarray
    average_total_cost: np.ndarray
    total: np.ndarray
    over_capacity: np.ndarray

    def as_dict(self) -> dict:
        return {k: np.asarray(v).tolist() for k, v in self.__dict__.items()}


def measure(agents: AgentFamily, x, tau, g, mu, m) -> AllocationMetrics:
    x = np.asarray(x, dtype=float)
    total = x.sum(axis=-1)
    return AllocationMetrics(
        efficiency=efficiency(agents, x, tau, g),
        gross_surplus=agents.net_value(x).sum(axis=-1),
        gini=gini(x),
        jain=jain(x),
        participation=participation(x),
        average_private_cost=average_private_cost(agents, x),
        average_total_cost=average_total_cost(agents, x, tau, g, mu),
        total=total,
        over_capacity=total > np.asarray(m, dtype=float) * (1 + 1e-12),
    )
