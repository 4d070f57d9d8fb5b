"""The economics of the repo market (Aronoff & Townsend, arXiv 2505.22940): pure functions on numpy/int.

Schedules, the dealer game and all its equilibria, the contract's selection rule (plaintext reference),
the sequential protocol, incentives, the multi-round simulation and its figures. No I/O except reading a
schedule file in :func:`load_schedules`: :mod:`market.plots` returns matplotlib figures (imported only then) and
the caller shows or saves them; no crypto, no chain. The allocation mechanism lives in
:mod:`market.allocation`. A walk through the API: docs/QUICKSTART.md.
"""
from market.equilibria import (
    EquilibriumSet,
    LinearClosedForm,
    all_equilibria,
    linear_closed_form,
    payoff_matrices,
    rate_grid,
)
from market.errors import MarketError
from market.game import Play, client_surplus, play
from market.incentives import (
    TRUTHFUL,
    Deviate,
    MisreportHurdle,
    MisreportSchedule,
    Realised,
    profitable_misreport,
    realise,
)
from market.locus import d2_mask, equilibrium_volumes, joint_profit_maximiser
from market.plots import SIMULATION_FIGURES, payoff_map_figure, simulation_figures
from market.schedules import (
    ScheduleError,
    Schedules,
    apply_theta,
    linear_schedules,
    load_schedules,
    make_schedules,
)
from market.selection import NO_TRADE, HurdleError, HurdleMode, Instruction, select_equilibrium
from market.sequential import (
    CoordinationFailure,
    best_response_dynamics,
    independent_equilibrium_picks,
    sequential_play,
)
from market.simulation import SimulationConfig, SimulationConfigError, SimulationResult, simulate
from market.terms import MarketTerms, ReportError, report_offsets, validate_report

__all__ = [
    "MarketError",
    "ScheduleError",
    "Schedules",
    "make_schedules",
    "linear_schedules",
    "load_schedules",
    "apply_theta",
    "d2_mask",
    "equilibrium_volumes",
    "joint_profit_maximiser",
    "HurdleMode",
    "HurdleError",
    "Instruction",
    "NO_TRADE",
    "select_equilibrium",
    "MarketTerms",
    "ReportError",
    "validate_report",
    "report_offsets",
    "Play",
    "play",
    "client_surplus",
    "EquilibriumSet",
    "all_equilibria",
    "rate_grid",
    "payoff_matrices",
    "LinearClosedForm",
    "linear_closed_form",
    "sequential_play",
    "CoordinationFailure",
    "independent_equilibrium_picks",
    "best_response_dynamics",
    "TRUTHFUL",
    "MisreportSchedule",
    "MisreportHurdle",
    "Deviate",
    "Realised",
    "realise",
    "profitable_misreport",
    "SimulationConfig",
    "SimulationConfigError",
    "SimulationResult",
    "simulate",
    "SIMULATION_FIGURES",
    "payoff_map_figure",
    "simulation_figures",
]
