"""Figures for people: the payoff map and the simulation plots, as matplotlib figures (``market`` writes no
files: ``common.plotting.save_figure`` or ``fig.savefig`` does)."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from common.plotting import pyplot
from market.equilibria import payoff_matrices

if TYPE_CHECKING:
    from market.equilibria import EquilibriumSet
    from market.schedules import Schedules
    from market.selection import Instruction

__all__ = ["payoff_map_figure", "simulation_figures", "SIMULATION_FIGURES"]

# file names of simulation_figures(), in order
SIMULATION_FIGURES = ("simulation_surplus.png", "simulation_volume.png")


def payoff_map_figure(schedules: Schedules, equilibria: EquilibriumSet, selected: Instruction):
    """Joint dealer payoff over (r_mm, r_rm) with the equilibria, the JPM and the contract's selection."""
    plt = pyplot()
    rates = equilibria.rates
    game = payoff_matrices(schedules, rates)
    joint = (game.payoff_mm_x2 + game.payoff_rm_x2) / 2
    from matplotlib.colors import SymLogNorm

    fig, ax = plt.subplots(figsize=(7, 6))
    # inventory losses dwarf margins: a symmetric-log scale keeps both visible
    jmax = max(float(equilibria.jpm.joint_profit), 1.0)
    worst = max(-float(joint.min()), jmax)
    image = ax.imshow(
        joint.T, origin="lower", cmap="RdYlGn", norm=SymLogNorm(linthresh=max(jmax / 10, 1.0), vmin=-worst, vmax=worst),
        aspect="auto", extent=(rates[0] - 0.5, rates[-1] + 0.5, rates[0] - 0.5, rates[-1] + 0.5),
    )
    fig.colorbar(image, ax=ax, label="joint dealer payoff u_mm + u_rm (bp·units, symlog)")
    ax.plot(schedules.b, schedules.a, color="0.3", lw=0.8, label="matched locus (b[Q], a[Q])")
    trade = equilibria.trade
    ax.scatter(equilibria.r_mm[trade], equilibria.r_rm[trade], s=14, c="k", label="trade equilibria")
    ax.scatter(equilibria.r_mm[~trade], equilibria.r_rm[~trade], s=14, marker="x", c="0.4", label="no-trade equilibria")
    jpm = equilibria.jpm
    if jpm.trade:
        ax.scatter([jpm.r_mm], [jpm.r_rm], s=160, marker="*", c="gold", edgecolors="k", label=f"JPM Q={jpm.volume}", zorder=3)
    if selected.trade:
        ax.scatter([selected.r_mm], [selected.r_rm], s=140, facecolors="none", edgecolors="blue", lw=2,
                   label=f"contract's selection Q={selected.volume}", zorder=4)
    ax.set_xlabel("r_mm: BDmm's rate to MM (bp)")
    ax.set_ylabel("r_rm: BDrm's rate to RM (bp)")
    ax.set_title("Dealer game: payoff map and equilibria")
    ax.legend(loc="lower left", fontsize=8)
    return fig


def simulation_figures(result) -> dict:
    """Per-round welfare of contract vs no coordination, and the volume each mechanism reached: one figure per
    name of ``SIMULATION_FIGURES``."""
    plt = pyplot()
    surplus_name, volume_name = SIMULATION_FIGURES
    figures = {}

    fig, ax = plt.subplots(figsize=(7, 4))
    for mechanism, colour in (("contract", "tab:blue"), ("none", "tab:red")):
        ax.plot(np.cumsum(result.column(mechanism, "total_surplus")), color=colour, label=mechanism)
    ax.set_xlabel("round")
    ax.set_ylabel("cumulative total surplus (bp·units)")
    ax.set_title("Contract vs no coordination: dealers' profit + clients' surplus")
    ax.legend()
    figures[surplus_name] = fig

    fig, ax = plt.subplots(figsize=(5, 5))
    jpm = np.asarray([r.jpm_volume for r in result.rounds])
    ax.scatter(jpm, result.column("none", "volume"), s=10, alpha=0.5, c="tab:red", label="none")
    ax.scatter(jpm, result.column("contract", "volume"), s=10, alpha=0.5, c="tab:blue", label="contract")
    top = max(1, int(jpm.max()))
    ax.plot([0, top], [0, top], color="0.5", lw=0.8)
    ax.set_xlabel("JPM volume Q*")
    ax.set_ylabel("inter-dealer volume reached")
    ax.legend()
    figures[volume_name] = fig
    return figures
