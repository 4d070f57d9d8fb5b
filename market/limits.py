"""The one set of range limits shared by the terms, the circuit, the contract's deployment and the command line.

Every command validates its options against these before it creates, encrypts, signs or sends anything, so
no input can reach an int64 overflow, an unbounded loop or a half-built market. The evaluator bound is the
contract's own: ``MAX_EVALUATORS`` in ``chain/contracts/Coordinator.vy``, mirrored once on the Python side as
``chain.coordinator.MAX_EVALUATORS`` (``market`` imports nothing of ``chain``; a test checks the two agree).
The others are [decided]:

* ``MAX_RATE_BP``: rates, hurdles and the base rate are bp below 2**20 (10,485 %). With volumes below
  ``MAX_ANALYSIS_GRID`` every payoff ``Q * (r_rm - r_mm)`` (doubled) stays below 2**34, far inside int64.
* ``MAX_RATE_BITS``: the widest rate offset the selection circuit carries (crypto.circuit).
* ``MAX_MARKET_GRID``: volume grid of a market (the circuit's cost grows linearly with N: the seconds per
  FHE evaluation by grid are ``records[].timings.evaluate_mean`` in ``bench-results/bench_fhe.json``).
* ``MAX_ANALYSIS_GRID``: volume grid of the plaintext analyses (equilibria, simulate --backend plain).
* ``MAX_SEED``: seeds are non-negative 63-bit integers (numpy's generators take any non-negative int;
  63 bits keep them signed-int64 safe wherever they are stored).
* ``MAX_SHOCK_BP``: simulate's theta shocks and hurdles; its schedules sit around 300 bp, so shocks up to
  250 bp keep every rate positive.
* ``MAX_DEMO_ROUNDS`` / ``MAX_SIM_ROUNDS``: bounded runs.
* ``MAX_PROTOCOL_FHE_SIM_GRID``: ``simulate --backend fhe`` runs real TFHE in every one of up to
  ``MAX_PROTOCOL_SIM_ROUNDS`` rounds, so its grid stays small; every other market grid is
  ``MIN_MARKET_GRID..MAX_MARKET_GRID`` (demo, select and simulate alike).
* ``ALLOCATION_MIN`` / ``ALLOCATION_MAX``: the allocation model's real inputs (α, β, m, τ, g, η, γ, the
  noise and the tolerance) lie in [1e-9, 1e9] when positive, or are 0 where 0 is allowed. Demands
  ``α/(β + τ + μ)`` then stay below 1e18 and every sum, log and product of the clearing stays finite in float64
  (and in the Clearing contract's fixed point); the paper's instances sit far inside (α in 5..20, β in 0.5..5).
  Tolerances and step sizes go down to ``ALLOCATION_MIN_STEP``.
"""
from __future__ import annotations

import numpy as np

from market.errors import MarketError

__all__ = ["MAX_RATE_BP", "MIN_RATE_BITS", "MAX_RATE_BITS", "MIN_MARKET_GRID", "MAX_MARKET_GRID",
           "MAX_ANALYSIS_GRID", "MAX_SEED", "MAX_SHOCK_BP", "MAX_DEMO_ROUNDS", "MAX_SIM_ROUNDS", "MAX_PROTOCOL_SIM_ROUNDS",
           "MAX_PROTOCOL_FHE_SIM_GRID", "ALLOCATION_MIN", "ALLOCATION_MAX", "ALLOCATION_MIN_STEP", "LimitError", "check_range",
           "check_real"]

MAX_RATE_BP = (1 << 20) - 1
MIN_RATE_BITS = 1
MAX_RATE_BITS = 14
MIN_MARKET_GRID = 4
MAX_MARKET_GRID = 64
MAX_ANALYSIS_GRID = 4000
MAX_SEED = (1 << 63) - 1
MAX_SHOCK_BP = 250  # simulate: theta shocks and hurdles around the 300 bp base (rates stay positive)
MAX_DEMO_ROUNDS = 1000
MAX_SIM_ROUNDS = 100_000
MAX_PROTOCOL_SIM_ROUNDS = 1000  # simulate --backend simulate/fhe runs a whole protocol round per round
MAX_PROTOCOL_FHE_SIM_GRID = 8
ALLOCATION_MIN = 1e-9
ALLOCATION_MAX = 1e9
ALLOCATION_MIN_STEP = 1e-15  # tolerances and step sizes may be far smaller than the model's inputs


class LimitError(MarketError):
    """A value outside its published range; the message names the field and the value."""


def check_range(name: str, value, low: int, high: int) -> int:
    """``value`` as an int if it is an integer in ``low..high``, else :class:`LimitError` naming ``name``."""
    if isinstance(value, np.integer) and not isinstance(value, np.bool_):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise LimitError(f"{name} {value!r}: must be an integer in {low}..{high}")
    if not low <= value <= high:
        raise LimitError(f"{name} {value}: must be in {low}..{high}")
    return int(value)


def check_real(name: str, value, *, zero_ok: bool, low: float = ALLOCATION_MIN) -> float:
    """``value`` as a float if it is finite and in ``[low, ALLOCATION_MAX]`` (or 0 if ``zero_ok``), else
    :class:`LimitError` naming ``name`` and the value."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise LimitError(f"{name} = {value!r}: must be a number")
    v = float(value)
    if zero_ok and v == 0:
        return 0.0
    if not (low <= v <= ALLOCATION_MAX):  # also refuses nan and inf
        zero = "0 or " if zero_ok else ""
        raise LimitError(f"{name} = {value!r}: must be {zero}in {low:g}..{ALLOCATION_MAX:g}")
    return v
