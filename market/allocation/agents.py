"""Agent families of the contract-clearing mechanism (Cha et al., arXiv 2510.05504, §2).

An agent ``i`` values an allocation ``x >= 0`` at ``V_i(x)`` and bears a private cost ``C_i(x)``; the net value
is ``W_i(x) = V_i(x) - C_i(x)``. Facing a per-unit charge ``q = τ + μ`` and a fixed fee ``g`` its payoff is

    U_i(x; μ) = W_i(x) - q·x - g·1{x > 0}.

A family is any object with the small interface of :class:`AgentFamily`: values, the net marginal, the
unconstrained demand ``argmax_x W(x) - q·x`` and the proximal demand
``argmax_x W(x) - q·x - (γ/2)(x - anchor)²`` (both over ``x >= 0``, before the participation test). Every
array has the agents on its **last** axis; leading axes are a batch (replications, grid points) and broadcast
against ``q``.

Families shipped:

- :class:`LogLinear` — ``V = α·log(1 + x)``, ``C = β·x`` (the paper's simulation family);
- :class:`QuadraticLinear` — ``V = a·x - (b/2)·x²``, ``C = c·x`` [decided: a second concave family to show
  the interface; not in the paper].
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from market.errors import MarketError

__all__ = [
    "AgentFamily",
    "AllocationInputError",
    "LogLinear",
    "QuadraticLinear",
    "draw_log_linear",
    "DEFAULTS",
]


class AllocationInputError(MarketError):
    """Bad model input; the message names the field, the index where relevant, and the value."""


@runtime_checkable
class AgentFamily(Protocol):
    """The interface a concave value / convex cost family provides (vectorised over the last axis)."""

    @property
    def n(self) -> int: ...

    def value(self, x: np.ndarray) -> np.ndarray: ...

    def cost(self, x: np.ndarray) -> np.ndarray: ...

    def net_value(self, x: np.ndarray) -> np.ndarray: ...

    def net_marginal(self, x: np.ndarray) -> np.ndarray: ...

    def demand(self, q: np.ndarray) -> np.ndarray: ...

    def demand_slope(self, q: np.ndarray) -> np.ndarray: ...

    def proximal_demand(self, q: np.ndarray, anchor: np.ndarray, gamma: float) -> np.ndarray: ...

    def curvature_bound(self, q: np.ndarray) -> np.ndarray: ...

    def select(self, mask: np.ndarray) -> "AgentFamily": ...


def _as_parameter(name: str, values, *, positive: bool) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    if arr.ndim == 0 or arr.shape[-1] == 0:
        raise AllocationInputError(f"{name}: need at least one agent, got {values!r}")
    bad = ~np.isfinite(arr) | ((arr <= 0) if positive else (arr < 0))
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        idx_txt = idx[0] if len(idx) == 1 else idx
        rule = "positive and finite" if positive else "non-negative and finite"
        raise AllocationInputError(f"{name}[{idx_txt}] = {arr[idx]!r}: must be {rule}")
    return arr


@dataclass(frozen=True)
class LogLinear:
    """``V_i(x) = α_i·log(1 + x)``, ``C_i(x) = β_i·x``.

    Demand at charge ``q`` (first-order condition ``α/(1 + x) = β + q``): ``x = max(0, α/(β + q) - 1)``.
    Proximal demand solves ``α/(1 + x) - p - γ(x - x_t) = 0`` with ``p = β + q``; with
    ``B = p - γ(1 + x_t)``: ``1 + x = (-B + sqrt(B² + 4γα)) / (2γ)`` (ALLOCATION.md §2).
    """

    alpha: np.ndarray
    beta: np.ndarray

    def __post_init__(self) -> None:
        alpha = _as_parameter("alpha", self.alpha, positive=True)
        # β > 0 keeps demand finite at μ = τ = 0 (the paper draws β from U(0.5, 5)).
        beta = _as_parameter("beta", self.beta, positive=True)
        try:
            alpha, beta = np.broadcast_arrays(alpha, beta)
        except ValueError:
            raise AllocationInputError(
                f"alpha/beta: shapes {alpha.shape} and {beta.shape} differ (one entry per agent each)"
            ) from None
        object.__setattr__(self, "alpha", np.array(alpha))
        object.__setattr__(self, "beta", np.array(beta))

    @property
    def n(self) -> int:
        return int(self.alpha.shape[-1])

    def value(self, x):
        return self.alpha * np.log1p(x)

    def cost(self, x):
        return self.beta * x

    def net_value(self, x):
        return self.alpha * np.log1p(x) - self.beta * x

    def net_marginal(self, x):
        return self.alpha / (1.0 + x) - self.beta

    def demand(self, q):
        return np.maximum(0.0, self.alpha / (self.beta + q) - 1.0)

    def demand_into(self, q, out: np.ndarray) -> np.ndarray:
        """:meth:`demand` written into ``out`` without temporaries (the bisection's inner loop)."""
        np.add(self.beta, q, out=out)
        np.divide(self.alpha, out, out=out)
        out -= 1.0
        return np.maximum(out, 0.0, out=out)

    def demand_slope(self, q):
        """``d demand / dq = -α/(β + q)²`` where demand is positive, else 0."""
        p = self.beta + q
        return np.where(self.alpha > p, -self.alpha / (p * p), 0.0)

    def proximal_demand(self, q, anchor, gamma: float):
        if gamma == 0:
            return self.demand(q)
        b = self.beta + q - gamma * (1.0 + anchor)
        one_plus_y = (-b + np.sqrt(b * b + 4.0 * gamma * self.alpha)) / (2.0 * gamma)
        return np.maximum(0.0, one_plus_y - 1.0)

    def participation_threshold(self, g):
        """The charge ``q_exit`` at which the optimal payoff falls to g: the agent takes part iff ``q < q_exit``.

        With ``p = β + q`` and ``u = p/α`` the payoff at the demand is ``α(u - log u - 1)``, so the threshold
        solves ``u - log u = 1 + g/α`` on ``(0, 1]``. Newton's method from the lower bound
        ``max(e^{-c}, 1 - sqrt(2(c - 1)))`` increases monotonically to the root (φ(u) = u - log u - c is
        convex and decreasing there). [derived] ``g = 0`` gives ``q_exit = α - β`` (where demand hits 0).
        """
        alpha = self.alpha
        g = np.asarray(g, dtype=float)
        if not np.any(g > 0):
            return alpha - self.beta
        # Beyond c = 700 the root u < e^-700 would underflow (log(0) = -inf); α·u is then below 1e-295
        # (α <= 1e9, market.limits), so capping c leaves q_exit = α·u - β unchanged in float64.
        c = np.minimum(1.0 + g / alpha, 700.0)
        u = np.maximum(np.exp(-c), 1.0 - np.sqrt(2.0 * (c - 1.0)))
        positive = c > 1.0
        u = np.where(positive, u, 0.5)  # placeholder where g = 0; replaced by u = 1 below
        # Quadratic convergence from the lower bound: <= 6 steps to round-off for every c >= 1 tried; near
        # c = 1 round-off in φ keeps relative steps at ~1e-11 (the payoff there is flat, error ~1e-15).
        for _ in range(8):
            step = u * (u - np.log(u) - c) / (u - 1.0)
            u = np.minimum(u - step, 1.0 - 1e-16)
            if np.all(np.abs(step) <= 1e-13 * u):
                break
        u = np.where(positive, u, 1.0)
        return alpha * u - self.beta

    def curvature_bound(self, q):
        """Upper bound of ``|d demand/dq|`` for charges >= q: ``α/(β + q)²`` (the L of §2, per agent)."""
        p = self.beta + q
        return np.where(self.alpha > p, self.alpha / (p * p), 0.0)

    def select(self, mask) -> "LogLinear":
        return LogLinear(self.alpha[..., mask], self.beta[..., mask])


@dataclass(frozen=True)
class QuadraticLinear:
    """``V_i(x) = a_i·x - (b_i/2)·x²``, ``C_i(x) = c_i·x`` [decided: extra family, not in the paper].

    Demand: ``x = max(0, (a - c - q)/b)``; proximal: ``x = max(0, (a - c - q + γ·x_t)/(b + γ))``.
    """

    a: np.ndarray
    b: np.ndarray
    c: np.ndarray

    def __post_init__(self) -> None:
        a = _as_parameter("a", self.a, positive=True)
        b = _as_parameter("b", self.b, positive=True)
        c = _as_parameter("c", self.c, positive=False)
        try:
            a, b, c = np.broadcast_arrays(a, b, c)
        except ValueError:
            raise AllocationInputError(f"a/b/c: shapes {a.shape}, {b.shape}, {c.shape} differ") from None
        for name, arr in (("a", a), ("b", b), ("c", c)):
            object.__setattr__(self, name, np.array(arr))

    @property
    def n(self) -> int:
        return int(self.a.shape[-1])

    def value(self, x):
        return self.a * x - 0.5 * self.b * x * x

    def cost(self, x):
        return self.c * x

    def net_value(self, x):
        return (self.a - self.c) * x - 0.5 * self.b * x * x

    def net_marginal(self, x):
        return self.a - self.c - self.b * x

    def demand(self, q):
        return np.maximum(0.0, (self.a - self.c - q) / self.b)

    def demand_into(self, q, out: np.ndarray) -> np.ndarray:
        np.subtract(self.a - self.c, q, out=out)
        np.divide(out, self.b, out=out)
        return np.maximum(out, 0.0, out=out)

    def demand_slope(self, q):
        return np.where(self.a - self.c > q, -1.0 / self.b, 0.0)

    def proximal_demand(self, q, anchor, gamma: float):
        return np.maximum(0.0, (self.a - self.c - q + gamma * anchor) / (self.b + gamma))

    def participation_threshold(self, g):
        """Payoff at the demand is ``(a - c - q)²/(2b)``, above g iff ``q < a - c - sqrt(2bg)`` [derived]."""
        return self.a - self.c - np.sqrt(2.0 * self.b * np.asarray(g, dtype=float))

    def curvature_bound(self, q):
        return np.where(self.a - self.c > q, 1.0 / self.b, 0.0)

    def select(self, mask) -> "QuadraticLinear":
        return QuadraticLinear(self.a[..., mask], self.b[..., mask], self.c[..., mask])


@dataclass(frozen=True)
class Defaults:
    """Simulation defaults of ALLOCATION.md §1 (the paper's §5 set-up)."""

    n: int = 20
    m: float = 100.0
    alpha_low: float = 5.0
    alpha_high: float = 20.0
    beta_low: float = 0.5
    beta_high: float = 5.0
    tau: float = 0.5
    g: float = 1.0


DEFAULTS = Defaults()


def draw_log_linear(rng: np.random.Generator, n: int = DEFAULTS.n, batch: tuple[int, ...] = (),
                    defaults: Defaults = DEFAULTS) -> LogLinear:
    """Draw ``α ~ U(5, 20)``, ``β ~ U(0.5, 5)`` for ``batch + (n,)`` agents (α drawn first, then β)."""
    if int(n) < 1:
        raise AllocationInputError(f"n = {n!r}: need at least one agent")
    shape = tuple(batch) + (int(n),)
    alpha = rng.uniform(defaults.alpha_low, defaults.alpha_high, size=shape)
    beta = rng.uniform(defaults.beta_low, defaults.beta_high, size=shape)
    return LogLinear(alpha, beta)
