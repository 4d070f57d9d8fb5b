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
"""
from __future__ import annotations

import numpy as np

__all__ = ["MAX_RATE_BP", "MIN_RATE_BITS", "MAX_RATE_BITS", "MIN_MARKET_GRID", "MAX_MARKET_GRID",
           "MAX_ANALYSIS_GRID", "MAX_SEED", "MAX_SHOCK_BP", "MAX_DEMO_ROUNDS", "MAX_SIM_ROUNDS", "MAX_PROTOCOL_SIM_ROUNDS",
           "LimitError", "check_range"]

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


class LimitError(ValueError):
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
