"""Agents of the contract-clearing mechanism that respond to the price broadcast by the on-chain
Clearing contract (chain/contracts/Clearing.vy), and a driver that runs Algorithm 1 on chain.

Each :class:`ClearingAgent` knows only its own (α_i, β_i) and reads the published fees τ, g from the
contract; when a round opens (event ``RoundOpened``) it solves its proximal best response at the
broadcast μ in floating point and reports its demand in WAD from its own account. The contract sums the
reports and applies ``μ <- [μ + η_t(Ŝ - m)]_+`` in fixed point.

Agreement with the float reference (:func:`market.allocation.adjust_prices` run with the same, already
quantised, η and m): [decided] the stated bound is ``|μ_chain^t - μ_float^t| <= 1e-9`` for every round t.
Per round the chain's price differs from the float recursion by the rounding of n reported demands to
1e-18 plus float round-off in the agents' responses (about 1e-15·x each), times η, plus at most
1e-18 from the contract's floor division. For η < 2/L the price map is non-expansive, so these add up at
most linearly: over R rounds about ``R·(η·n·1e-15·max x + 2e-18)``, ~1e-13 for n = 20, R = 50 — four
orders of magnitude inside the bound.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from rich.console import Console
from rich.progress import Progress

from chain import connect
from chain.clearing import ClearingTerms, StepRuleCode, deploy_clearing, from_wad, to_wad
from market.allocation import LogLinear, StepRule, adjust_prices, proximal_best_response

if TYPE_CHECKING:
    from chain import Chain

__all__ = ["ClearingAgent", "OnchainRun", "run_onchain_clearing", "FIXED_POINT_BOUND", "agent_role"]

FIXED_POINT_BOUND = 1e-9
OWNER_ROLE = "clearing_owner"
_STEP_CODES = {"constant": StepRuleCode.CONSTANT, "sqrt": StepRuleCode.SQRT, "harmonic": StepRuleCode.HARMONIC}


def agent_role(index: int) -> str:
    return f"alloc_agent_{index}"


@dataclass
class ClearingAgent:
    """One agent: private (α, β), its last allocation (the proximal anchor) and its chain account role."""

    role: str
    alpha: float
    beta: float
    gamma: float
    tau: float
    g: float
    x: float = 0.0

    def respond(self, mu_wad: int) -> int:
        """Proximal best response at the broadcast price; returns the demand in WAD."""
        me = LogLinear([self.alpha], [self.beta])
        self.x = float(proximal_best_response(me, from_wad(mu_wad), self.tau, self.g,
                                              np.array([self.x]), self.gamma)[0])
        return to_wad(self.x, "demand")


@dataclass(frozen=True)
class OnchainRun:
    contract: str
    rounds: int
    mu: float
    x: np.ndarray
    converged: bool
    residuals: dict
    mu_path_wad: tuple[int, ...]
    mu_path_float: np.ndarray
    max_deviation: float
    bound: float
    gas_per_round: list[int]
    seconds: float
    eta_wad: int
    events: dict = field(default_factory=dict)


def run_onchain_clearing(agents: LogLinear, *, tau: float, g: float, m: float, eta: float,
                         step: str = "constant", gamma: float = 0.5, tol: float = 0.0, max_rounds: int = 50,
                         data_dir: Path | None = None, rpc_url: str | None = None, chain: Chain | None = None,
                         progress: bool = False, seed: int = 0) -> OnchainRun:
    """Deploy a Clearing contract, register one account per agent, and run up to ``max_rounds`` rounds
    (fewer if the contract declares convergence at ``tol``; ``tol = 0`` runs them all)."""
    if agents.alpha.ndim != 1:
        raise ValueError("agents: one instance (1-d alpha/beta) is required on chain")
    if step not in _STEP_CODES:
        raise ValueError(f"step = {step!r}: must be one of {', '.join(_STEP_CODES)}")
    if int(max_rounds) < 1:
        raise ValueError(f"max_rounds = {max_rounds!r}: must be at least 1")
    terms = ClearingTerms(capacity=to_wad(m, "m"), eta0=to_wad(eta, "eta"), step_rule=_STEP_CODES[step],
                          report_window=max(10, 4 * agents.n), tolerance=to_wad(tol, "tol"),
                          fee_per_unit=to_wad(tau, "tau"), fixed_fee=to_wad(g, "g"))
    if chain is None:
        chain = connect(Path(data_dir if data_dir is not None else ".repo-market"), rpc_url, seed=seed)
    started = time.perf_counter()
    clearing = deploy_clearing(chain, terms, OWNER_ROLE)
    published = clearing.terms()  # the agents price in the fees published on chain
    crowd = [ClearingAgent(agent_role(i), float(a), float(b), gamma, from_wad(published.fee_per_unit),
                           from_wad(published.fixed_fee)) for i, (a, b) in enumerate(zip(agents.alpha, agents.beta))]
    for agent in crowd:
        clearing.register(OWNER_ROLE, chain.account(agent.role).address)
    opened = clearing.start(OWNER_ROLE).event("RoundOpened").args
    mu_path = [int(opened["mu"])]
    gas_per_round: list[int] = []
    primal = dual = change = None
    converged = False
    bar = _Progress(max_rounds) if progress else None
    for _ in range(int(max_rounds)):
        round_id, mu_wad = int(opened["round_id"]), int(opened["mu"])
        gas = 0
        last = None
        for agent in crowd:
            last = clearing.report(agent.role, round_id, agent.respond(mu_wad))
            gas += last.gas_used
        gas_per_round.append(gas)
        update = last.event("PriceUpdated").args
        mu_path.append(int(update["mu_after"]))
        primal, dual = from_wad(update["primal_residual"]), from_wad(update["dual_residual"])
        if bar:
            bar.advance(round_id, from_wad(update["mu_after"]))
        names = [e.name for e in last.events]
        if "Converged" in names:
            converged = True
            break
        opened = last.event("RoundOpened").args
    if bar:
        bar.close()
    seconds = time.perf_counter() - started
    rounds = len(gas_per_round)
    # float reference with the quantised terms the contract actually uses
    reference = adjust_prices(agents, from_wad(terms.fee_per_unit), from_wad(terms.fixed_fee),
                              from_wad(terms.capacity), step=StepRule(step, from_wad(terms.eta0)), gamma=gamma,
                              max_iter=rounds, stop_early=False)
    mu_float = reference.history.mu[: rounds + 1]
    chain_mu = np.array(mu_path, dtype=object)
    deviation = float(max(abs(from_wad(int(c)) - float(f)) for c, f in zip(chain_mu, mu_float)))
    x = np.array([a.x for a in crowd])
    totals = [from_wad(int(e.args["reported_total"])) for e in clearing.events("PriceUpdated")[-2:]]
    change = abs(totals[-1] - totals[0]) if len(totals) == 2 else float("inf")
    return OnchainRun(
        contract=clearing.address, rounds=rounds, mu=from_wad(mu_path[-1]), x=x, converged=converged,
        residuals={"primal": primal, "dual": dual, "report": change}, mu_path_wad=tuple(mu_path),
        mu_path_float=mu_float, max_deviation=deviation, bound=FIXED_POINT_BOUND, gas_per_round=gas_per_round,
        seconds=seconds, eta_wad=terms.eta0,
    )


class _Progress:
    """A rich progress bar on stderr (never stdout: --json keeps stdout for the one document)."""

    def __init__(self, total: int):
        self._p = Progress(console=Console(file=sys.stderr), transient=True)
        self._p.start()
        self._task = self._p.add_task("clearing rounds on chain", total=total)

    def advance(self, round_id: int, mu: float) -> None:
        self._p.update(self._task, advance=1, description=f"round {round_id}: μ = {mu:.6f}")

    def close(self) -> None:
        self._p.stop()
