"""The contract-clearing allocation mechanism of Cha et al. (arXiv 2510.05504).

Pure economics (numpy/scipy, no I/O): agent families (:mod:`.agents`), best responses and the KKT
equilibrium (:mod:`.equilibrium`), the decentralized price adjustment of Algorithm 1 (:mod:`.adjustment`),
metrics (:mod:`.metrics`), baselines (:mod:`.baselines`), experiments as pure functions returning data
(:mod:`.experiments`) and the paper's reported tables (:mod:`.paper`). Specification and the items we
decided: ``docs/ALLOCATION.md``; every such item is labelled "[decided]" in the docstrings.
"""
from .adjustment import AdjustmentResult, StepRule, adjust_prices, lipschitz_bound, price_update, proximal_best_response
from .agents import DEFAULTS, AgentFamily, AllocationInputError, LogLinear, QuadraticLinear, draw_log_linear
from .baselines import BASELINES, centralized_optimum, compare, equal_split, planner_optimum
from .equilibrium import (
    Equilibrium,
    aggregate_demand,
    best_response,
    capacity_sensitivity,
    dual_function,
    fee_sensitivity,
    price_upper_bound,
    solve_equilibrium,
)
from .metrics import efficiency, gini, jain, measure, participation, price_of_fairness
from . import experiments  # noqa: E402 -- the experiments as data (after the modules it builds on)

__all__ = [
    "AgentFamily", "AllocationInputError", "LogLinear", "QuadraticLinear", "DEFAULTS", "draw_log_linear",
    "Equilibrium", "best_response", "aggregate_demand", "solve_equilibrium", "price_upper_bound",
    "dual_function", "capacity_sensitivity", "fee_sensitivity",
    "StepRule", "AdjustmentResult", "adjust_prices", "lipschitz_bound", "price_update",
    "proximal_best_response",
    "efficiency", "gini", "jain", "participation", "measure", "price_of_fairness",
    "BASELINES", "compare", "centralized_optimum", "planner_optimum", "equal_split",
    "experiments",
]
