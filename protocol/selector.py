"""The contract's instruction computed by the real round machinery, as a ``market.simulation`` selector.

``repo-market simulate --backend simulate|fhe`` passes a :class:`ProtocolSelector` where the plaintext
backend passes ``market.selection.select_equilibrium``: each call deals the round's true schedules and
hurdles to the roles (truthful dealers), runs a whole round -- dealers' own encryption, commit and reveal, k-of-n
evaluation, attested decryption, sealed instructions, offers and acceptances, settlement on chain -- and
returns the instruction the dealers received.  The market lives in ``<data-dir>/simulate-<backend>-N<grid>``
and is reused by later runs with the same terms [decided]; 1-of-1 evaluators by default, for speed. A new
``fhe`` market gets 2-of-3 key holders with ``slots`` one-time decryption slots (one per round; a reused
market without slots left refuses the next round and says so).
"""
from __future__ import annotations

from pathlib import Path

from common.vocabulary import DEALER_MM
from market.selection import NO_TRADE, HurdleMode, Instruction
from market.terms import MarketTerms
from protocol.deployment import DEFAULT_SLOTS, create_market, open_market
from protocol.errors import ProtocolPackageError
from protocol.layout import DataDir
from protocol.roles import DealerAgent
from protocol.rounds import RoundDriver, next_round_id
from protocol.scenario import RoundPlan, deal_inputs

__all__ = ["ProtocolSelector", "SelectorError"]


class SelectorError(ProtocolPackageError, ValueError):
    """The schedules do not fit the market this selector runs (names the field and value)."""


class ProtocolSelector:
    def __init__(self, data_dir: Path, backend: str, *, base_rate: int, rate_bits: int = 10,
                 evaluators: int = 1, threshold: int = 1, rpc_url: str | None = None, seed: int = 0,
                 signers: dict | None = None, slots: int = DEFAULT_SLOTS):
        self.data_dir, self.backend = Path(data_dir), backend
        self.base_rate, self.rate_bits = base_rate, rate_bits
        self.evaluators, self.threshold, self.rpc_url, self.seed = evaluators, threshold, rpc_url, seed
        self.signers = dict(signers or {})  # role -> ChainAccount (key files / keystores, --rpc only)
        self.slots = slots
        self._dep = None
        self._driver = None
        self.rounds: list[dict] = []

    def _market(self, grid: int, mode):
        if self._dep is not None:
            if self._dep.terms.grid != grid:
                raise SelectorError(f"grid = {grid}: this selector's market has grid {self._dep.terms.grid}")
            return self._dep
        terms = MarketTerms(grid=grid, base_rate=self.base_rate, rate_bits=self.rate_bits,
                            hurdle_mode=HurdleMode(mode))
        path = self.data_dir / f"simulate-{self.backend}-N{grid}"
        if DataDir(path).exists():
            dep = open_market(path, self.rpc_url, signers=self.signers)
            if dep.terms != terms:
                raise SelectorError(f"{path}: holds a market with terms {dep.terms.as_dict()}, "
                                    f"not {terms.as_dict()}; use another --data-dir")
        else:
            dep = create_market(path, terms, backend=self.backend, evaluators=self.evaluators,
                                threshold=self.threshold, rpc_url=self.rpc_url, seed=self.seed, signers=self.signers,
                                slots=self.slots)
        self._dep, self._driver = dep, RoundDriver(dep, dep.circuit())
        return dep

    def __call__(self, schedules, hurdle_mm: int, hurdle_rm: int, mode):
        dep = self._market(schedules.grid, mode)
        plan = RoundPlan("simulate", tuple(int(v) for v in schedules.b), tuple(int(v) for v in schedules.a),
                         0, 0, int(hurdle_mm), int(hurdle_rm))
        rid = next_round_id(dep)
        deal_inputs(dep, rid, plan)
        run = self._driver.run_round(rid)
        ins = DealerAgent(dep, DEALER_MM).instruction(rid)
        self.rounds.append({"round": rid, "phase": run["phase"], "timings": run["timings"], "gas": run["gas"]})
        if not ins["trade"]:
            return NO_TRADE
        q, r_mm, r_rm = ins["volume"], ins["r_mm"], ins["r_rm"]
        return Instruction(True, q, r_mm, r_rm, ins["r_bd_x2"], (r_rm - r_mm) * q)
