"""The Clearing contract and the agents that answer its prices: agreement with the float reference
over 20 agents x 50 rounds, the contract's rules, convergence, step rules, fixed point."""
from __future__ import annotations

import math

import numpy as np
import pytest

from chain import ChainError, ChainInputError, connect
from chain.clearing import WAD, ClearingTerms, StepRuleCode, deploy_clearing, from_wad, to_wad
from market.allocation import LogLinear, draw_log_linear, lipschitz_bound, solve_equilibrium
from protocol.clearing_agents import FIXED_POINT_BOUND, agent_role, run_onchain_clearing


def test_twenty_agents_fifty_rounds_match_the_float_reference(anvil_url, tmp_path):
    agents = draw_log_linear(np.random.default_rng(0), 20)
    eta = float(1.0 / lipschitz_bound(agents, 0.5))
    chain = connect(tmp_path / "data", anvil_url)
    run = run_onchain_clearing(agents, tau=0.5, g=1.0, m=50.0, eta=eta, gamma=0.5, max_rounds=50, chain=chain)
    assert run.rounds == 50 and len(run.mu_path_wad) == 51
    chain_mu = np.array([from_wad(v) for v in run.mu_path_wad])
    assert np.max(np.abs(chain_mu - run.mu_path_float)) <= FIXED_POINT_BOUND
    assert run.max_deviation <= FIXED_POINT_BOUND
    # the price really moved and approached the KKT equilibrium
    eq = solve_equilibrium(agents, 0.5, 1.0, 50.0)
    assert chain_mu[0] == 0.0 and chain_mu.max() > 0.1
    assert abs(run.mu - float(eq.mu)) < 1e-4
    # every report and every update is on chain as an event
    from chain.clearing import Clearing

    clearing = Clearing(chain, run.contract)
    assert len(clearing.events("PriceUpdated")) == 50
    assert len(clearing.events("DemandReported", round_id=17)) == 20
    updates = clearing.events("PriceUpdated")
    assert [int(e.args["mu_after"]) for e in updates] == list(run.mu_path_wad[1:])
    assert len(run.gas_per_round) == 50 and all(g > 20 * 21_000 for g in run.gas_per_round)


@pytest.fixture
def small(tmp_path):
    chain = connect(tmp_path / "data")
    terms = ClearingTerms(capacity=to_wad(5), eta0=to_wad(0.5), report_window=10)
    clearing = deploy_clearing(chain, terms, "clearing_owner")
    roles = [agent_role(i) for i in range(3)]
    for role in roles:
        clearing.register("clearing_owner", chain.account(role).address)
    return chain, clearing, roles


def test_contract_rules(small):
    chain, clearing, roles = small
    with pytest.raises(ChainError) as err:
        clearing.report(roles[0], 1, to_wad(1))
    assert err.value.reason == "wrong round"  # not started yet
    with pytest.raises(ChainError) as err:
        clearing.start(roles[0])
    assert err.value.reason == "wrong caller"
    opened = clearing.start("clearing_owner").event("RoundOpened").args
    assert opened["round_id"] == 1 and opened["mu"] == 0
    with pytest.raises(ChainError) as err:
        clearing.register("clearing_owner", chain.address("late_agent"))
    assert err.value.reason == "already started"
    with pytest.raises(ChainError) as err:
        clearing.report("outsider", 1, to_wad(1))
    assert err.value.reason == "not an agent"
    clearing.report(roles[0], 1, to_wad(4))
    with pytest.raises(ChainError) as err:
        clearing.report(roles[0], 1, to_wad(4))
    assert err.value.reason == "already reported"
    with pytest.raises(ChainError) as err:
        clearing.report(roles[1], 2, to_wad(4))
    assert err.value.reason == "wrong round"
    with pytest.raises(ChainError) as err:
        clearing.close_round("outsider", 1)
    assert err.value.reason == "window still open"
    chain.mine(11)
    with pytest.raises(ChainError) as err:
        clearing.report(roles[1], 1, to_wad(1))
    assert err.value.reason == "deadline passed"
    # after the window anyone closes the round; missing reports count as zero demand [decided]
    result = clearing.close_round("outsider", 1)
    update = result.event("PriceUpdated").args
    assert update["reports"] == 1 and update["reported_total"] == to_wad(4)
    assert update["mu_after"] == 0  # S = 4 < m = 5: the price stays projected at 0
    assert result.event("RoundOpened").args["round_id"] == 2
    assert clearing.state().round_id == 2


def test_update_in_fixed_point(small):
    chain, clearing, roles = small
    clearing.start("clearing_owner")
    for role, d in zip(roles, ("1.25", "3.5", "2.000000000000000001")):
        result = clearing.report(role, 1, to_wad(d))
    update = result.event("PriceUpdated").args
    total = to_wad("6.750000000000000001")
    assert update["reported_total"] == total
    # μ' = 0 + η (S - m) = 0.5 * 1.750000000000000001, floored to 1e-18
    assert update["mu_after"] == to_wad(0.5) * (total - to_wad(5)) // WAD == 875000000000000000
    assert update["dual_residual"] == update["mu_after"]
    assert update["primal_residual"] == total - to_wad(5)


def test_contract_declares_convergence_on_worked_example_1(tmp_path):
    agents = LogLinear([10.0, 15.0, 20.0], [1.0, 1.0, 1.0])
    run = run_onchain_clearing(agents, tau=0.5, g=0.0, m=5.0, eta=0.5, gamma=0.0, tol=1e-9, max_rounds=60,
                               data_dir=tmp_path / "data")
    assert run.converged and run.rounds < 60
    assert run.mu == pytest.approx(4.125, abs=1e-8)
    np.testing.assert_allclose(run.x, [7 / 9, 5 / 3, 23 / 9], atol=1e-8)
    assert run.max_deviation <= FIXED_POINT_BOUND
    assert run.residuals["primal"] <= 1e-9 and run.residuals["dual"] <= 1e-9


def test_step_rules_on_chain(tmp_path):
    chain = connect(tmp_path / "data")
    eta0 = to_wad(0.3)
    sqrt_rule = deploy_clearing(chain, ClearingTerms(capacity=WAD, eta0=eta0, step_rule=StepRuleCode.SQRT))
    harmonic = deploy_clearing(chain, ClearingTerms(capacity=WAD, eta0=eta0, step_rule=StepRuleCode.HARMONIC))
    assert sqrt_rule.step_size(1) == eta0 and sqrt_rule.step_size(4) == eta0 // 2
    assert sqrt_rule.step_size(7) == eta0 * WAD // math.isqrt(7 * WAD * WAD)  # integer square root
    assert abs(from_wad(sqrt_rule.step_size(7)) - 0.3 / np.sqrt(7)) < 1e-16
    assert harmonic.step_size(3) == eta0 // 3
    assert sqrt_rule.terms().step_rule == StepRuleCode.SQRT


def test_terms_and_fixed_point_inputs_are_checked_before_sending():
    with pytest.raises(ChainInputError, match="capacity must be positive"):
        ClearingTerms(capacity=0, eta0=1)
    with pytest.raises(ChainInputError, match="step_rule must be 0, 1 or 2"):
        ClearingTerms(capacity=1, eta0=1, step_rule=7)
    with pytest.raises(ChainInputError, match="eta0 must be an int"):
        ClearingTerms(capacity=1, eta0=0.5)
    with pytest.raises(ChainInputError, match="demand must be non-negative"):
        to_wad(-1.0, "demand")
    assert to_wad(0.1) == 10**17 and to_wad("2.5") == 25 * 10**17
