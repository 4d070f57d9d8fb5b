"""Typed wrapper over chain/contracts/Clearing.vy: the contract side of the price adjustment
(Algorithm 1 of Cha et al., arXiv 2510.05504) in 18-decimal fixed point.

All quantities cross the boundary as integers in WAD (1e18 units); :func:`to_wad` / :func:`from_wad`
convert. The agents' side (proximal best responses) lives in ``protocol/clearing_agents.py``.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from .accounts import DEPLOYER
from .checks import check_address, check_uint
from .errors import ChainInputError
from .typed_contract import TypedContract

if TYPE_CHECKING:
    from .client import Chain, TxResult
    from .typed_contract import Sender

WAD = 10**18


class StepRuleCode(enum.IntEnum):
    """Mirrors the contract's STEP_* constants."""

    CONSTANT = 0  # eta_t = eta0
    SQRT = 1      # eta_t = eta0 / sqrt(t)  (integer square root of t·WAD²)
    HARMONIC = 2  # eta_t = eta0 / t


def to_wad(value: float | int | str | Decimal, name: str = "value") -> int:
    """A non-negative real to WAD, rounding to nearest (exact decimal conversion of the float)."""
    try:
        d = Decimal(value) if not isinstance(value, float) else Decimal(repr(value))
    except Exception:
        raise ChainInputError(f"{name} must be a number, got {value!r}") from None
    if not d.is_finite() or d < 0:
        raise ChainInputError(f"{name} must be non-negative and finite, got {value!r}")
    return int((d * WAD).to_integral_value())


def from_wad(value: int) -> float:
    return value / WAD


@dataclass(frozen=True)
class ClearingTerms:
    """Constructor arguments, all WAD integers except ``step_rule`` and ``report_window`` (blocks).

    ``tolerance`` 0 never declares convergence; otherwise the contract stops after the first round (> 1)
    whose primal, dual and report-change residuals are all <= tolerance.
    """

    capacity: int
    eta0: int
    step_rule: StepRuleCode = StepRuleCode.CONSTANT
    report_window: int = 50
    tolerance: int = 0
    fee_per_unit: int = 0
    fixed_fee: int = 0
    mu0: int = 0

    def __post_init__(self) -> None:
        for name in ("capacity", "eta0", "report_window", "tolerance", "fee_per_unit", "fixed_fee", "mu0"):
            check_uint(name, getattr(self, name))
        for name in ("capacity", "eta0", "report_window"):
            if getattr(self, name) == 0:
                raise ChainInputError(f"{name} must be positive, got 0")
        try:
            object.__setattr__(self, "step_rule", StepRuleCode(self.step_rule))
        except ValueError:
            raise ChainInputError(f"step_rule must be 0, 1 or 2, got {self.step_rule!r}") from None

    def constructor_args(self) -> list:
        return [self.capacity, self.eta0, int(self.step_rule), self.report_window, self.tolerance,
                self.fee_per_unit, self.fixed_fee, self.mu0]


@dataclass(frozen=True)
class ClearingState:
    round_id: int
    mu: int
    round_start: int
    reported_total: int
    report_count: int
    agent_count: int
    converged: bool


class Clearing(TypedContract):
    """Typed calls on a deployed Clearing contract; transactions take the sender first, validate their
    arguments (ChainInputError) before signing and return the TxResult; refusals raise ChainError."""

    NAME = "Clearing"

    # ---------------------------------------------------------------- transactions
    def register(self, sender: Sender, agent: str) -> TxResult:
        check_address("agent", agent)
        return self.chain.send(sender, self.contract, "register", (agent,))

    def start(self, sender: Sender) -> TxResult:
        return self.chain.send(sender, self.contract, "start")

    def report(self, sender: Sender, round_id: int, demand_wad: int) -> TxResult:
        check_uint("round_id", round_id)
        check_uint("demand_wad", demand_wad)
        return self.chain.send(sender, self.contract, "report", (round_id, demand_wad))

    def close_round(self, sender: Sender, round_id: int) -> TxResult:
        check_uint("round_id", round_id)
        return self.chain.send(sender, self.contract, "close_round", (round_id,))

    # ---------------------------------------------------------------- views
    def mu(self) -> int:
        return int(self._view("mu"))

    def round_id(self) -> int:
        return int(self._view("round_id"))

    def converged(self) -> bool:
        return bool(self._view("converged"))

    def step_size(self, t: int) -> int:
        check_uint("t", t)
        return int(self._view("step_size", t))

    def is_agent(self, address: str) -> bool:
        check_address("address", address)
        return bool(self._view("is_agent", address))

    def state(self) -> ClearingState:
        v = self._view
        return ClearingState(round_id=int(v("round_id")), mu=int(v("mu")), round_start=int(v("round_start")),
                             reported_total=int(v("reported_total")), report_count=int(v("report_count")),
                             agent_count=int(v("agent_count")), converged=bool(v("converged")))

    def terms(self) -> ClearingTerms:
        v = self._view
        return ClearingTerms(capacity=int(v("capacity")), eta0=int(v("eta0")),
                             step_rule=StepRuleCode(int(v("step_rule"))), report_window=int(v("report_window")),
                             tolerance=int(v("tolerance")), fee_per_unit=int(v("fee_per_unit")),
                             fixed_fee=int(v("fixed_fee")), mu0=0)


def deploy_clearing(chain: Chain, terms: ClearingTerms, sender: Sender = DEPLOYER) -> Clearing:
    """Compile (cached) and deploy a Clearing contract with ``terms``; ``sender`` becomes its owner."""
    return Clearing.deploy(chain, terms, ClearingTerms, sender)
