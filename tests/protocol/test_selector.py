"""`repo-market simulate --backend simulate`: whole protocol rounds give the plaintext reference's outcomes."""
from __future__ import annotations

from market.simulation import SimulationConfig, simulate
from protocol.selector import ProtocolSelector


def test_protocol_rounds_match_the_plain_backend(scratch):
    config = SimulationConfig(rounds=3, grid=6, theta=5, hurdle_max=6)
    plain = simulate(config, seed=3)
    selector = ProtocolSelector(scratch, "simulate", base_rate=300 - config.theta - 1, rate_bits=9)
    through_protocol = simulate(config, seed=3, selector=selector)
    assert [r.contract for r in through_protocol.rounds] == [r.contract for r in plain.rounds]
    assert [r["phase"] for r in selector.rounds] == ["SETTLED"] * 3
    assert through_protocol.summary() == plain.summary()


def test_protocol_rounds_accept_reports_with_flat_steps(scratch):
    """Tabular draws have flat steps; the protocol (custodian validation, circuit simulation, chain)
    accepts them and gives the plaintext reference's outcomes."""
    import numpy as np

    from market.simulation import draw_schedules

    config = SimulationConfig(rounds=3, grid=6, theta=5, hurdle_max=6, family="tabular")
    draws = [draw_schedules(config, np.random.default_rng(k)) for k in range(20)]
    assert sum(not s.strict for s in draws) >= 10
    plain = simulate(config, seed=5)
    selector = ProtocolSelector(scratch, "simulate", base_rate=300 - config.theta - 1, rate_bits=9)
    through_protocol = simulate(config, seed=5, selector=selector)
    assert [r.contract for r in through_protocol.rounds] == [r.contract for r in plain.rounds]
    assert [r["phase"] for r in selector.rounds] == ["SETTLED"] * 3
