# pragma version ~=0.4.3
"""
@title Contract-clearing price (Cha et al., arXiv 2510.05504, Algorithm 1, contract side)
@notice Holds the shadow price mu in 18-decimal fixed point (WAD) and runs the projected price update
        mu <- max(0, mu + eta_t * (S - m)) once per round, where S is the sum of the demands the
        registered agents report for that round. Each registered agent reports at most once per round,
        from its own account. The update runs when the last agent reports, or, after the round's
        report window (in blocks), when anyone closes the round; a missing report counts as zero
        demand [decided]. Every state change emits an event; opening a round broadcasts its price.
@dev    Fixed point: every quantity (mu, m, demands, eta, tau, g) is an integer number of 1e-18 units.
        Step rules (t = round number, from 1): 0 constant eta0; 1 eta0 / sqrt(t); 2 eta0 / t.
        tau and g are published terms the agents price in; this contract moves no ether, so it needs
        neither payments nor withdrawals.
"""

WAD: constant(uint256) = 10**18
MAX_AGENTS: constant(uint256) = 1024

STEP_CONSTANT: constant(uint8) = 0
STEP_SQRT: constant(uint8) = 1
STEP_HARMONIC: constant(uint8) = 2

# ---------------------------------------------------------------- events

event AgentRegistered:
    agent: indexed(address)
    index: uint256

event RoundOpened:
    round_id: indexed(uint256)
    mu: uint256
    deadline: uint256

event DemandReported:
    round_id: indexed(uint256)
    agent: indexed(address)
    demand: uint256
    reported_total: uint256

event PriceUpdated:
    round_id: indexed(uint256)
    reported_total: uint256
    reports: uint256
    eta: uint256
    mu_before: uint256
    mu_after: uint256
    primal_residual: uint256
    dual_residual: uint256

event Converged:
    round_id: indexed(uint256)
    mu: uint256

# ---------------------------------------------------------------- terms (fixed at deployment)

owner: public(immutable(address))
capacity: public(immutable(uint256))
eta0: public(immutable(uint256))
step_rule: public(immutable(uint8))
report_window: public(immutable(uint256))
tolerance: public(immutable(uint256))
fee_per_unit: public(immutable(uint256))
fixed_fee: public(immutable(uint256))

# ---------------------------------------------------------------- state

mu: public(uint256)
round_id: public(uint256)
round_start: public(uint256)
reported_total: public(uint256)
report_count: public(uint256)
previous_total: public(uint256)
converged: public(bool)
agent_count: public(uint256)
is_agent: public(HashMap[address, bool])
last_report_round: public(HashMap[address, uint256])


@deploy
def __init__(_capacity: uint256, _eta0: uint256, _step_rule: uint8, _report_window: uint256,
             _tolerance: uint256, _fee_per_unit: uint256, _fixed_fee: uint256, _mu0: uint256):
    """
    @notice Fixes the clearing terms; the deployer becomes the owner that registers agents.
    @param _capacity m in WAD (> 0)
    @param _eta0 step size eta0 in WAD (> 0)
    @param _step_rule 0 constant, 1 eta0/sqrt(t), 2 eta0/t
    @param _report_window blocks after a round opens during which reports are accepted (> 0)
    @param _tolerance stop when primal, dual and report-change residuals are all <= this (0: never)
    @param _fee_per_unit tau in WAD (published for the agents)
    @param _fixed_fee g in WAD (published for the agents)
    @param _mu0 initial price in WAD
    """
    assert _capacity > 0, "zero capacity"
    assert _eta0 > 0, "zero step"
    assert _step_rule <= STEP_HARMONIC, "unknown step rule"
    assert _report_window > 0, "zero window"
    owner = msg.sender
    capacity = _capacity
    eta0 = _eta0
    step_rule = _step_rule
    report_window = _report_window
    tolerance = _tolerance
    fee_per_unit = _fee_per_unit
    fixed_fee = _fixed_fee
    self.mu = _mu0


@external
def register(agent: address):
    """
    @notice Register an agent account (owner only, before the first round).
    @dev Emits AgentRegistered(agent, index); at most MAX_AGENTS agents.
    @param agent The agent's account (non-zero, not yet registered).
    """
    assert msg.sender == owner, "wrong caller"
    assert self.round_id == 0, "already started"
    assert agent != empty(address), "zero address"
    assert not self.is_agent[agent], "already registered"
    assert self.agent_count < MAX_AGENTS, "too many agents"
    self.is_agent[agent] = True
    log AgentRegistered(agent=agent, index=self.agent_count)
    self.agent_count += 1


@external
def start():
    """
    @notice Open round 1 at the initial price (owner only, at least one agent registered).
    @dev Emits RoundOpened(1, mu, deadline).
    """
    assert msg.sender == owner, "wrong caller"
    assert self.round_id == 0, "already started"
    assert self.agent_count > 0, "no agents"
    self._open(1)


@external
def report(_round_id: uint256, demand: uint256):
    """
    @notice Report this agent's demand (WAD) for the open round; the last report applies the update.
    @dev Emits DemandReported; the last agent's report also emits PriceUpdated and RoundOpened (or
         Converged).
    @param _round_id The open round (round_id()).
    @param demand The agent's demand in WAD.
    """
    assert self.is_agent[msg.sender], "not an agent"
    assert not self.converged, "converged"
    assert _round_id == self.round_id and _round_id > 0, "wrong round"
    assert block.number <= self.round_start + report_window, "deadline passed"
    assert self.last_report_round[msg.sender] != _round_id, "already reported"
    self.last_report_round[msg.sender] = _round_id
    total: uint256 = self.reported_total + demand
    self.reported_total = total
    self.report_count += 1
    log DemandReported(round_id=_round_id, agent=msg.sender, demand=demand, reported_total=total)
    if self.report_count == self.agent_count:
        self._clear(_round_id)


@external
def close_round(_round_id: uint256):
    """
    @notice After the report window, apply the update with the reports received (missing ones count 0).
    @param _round_id The open round (round_id()), its report window passed.
    """
    assert not self.converged, "converged"
    assert _round_id == self.round_id and _round_id > 0, "wrong round"
    assert block.number > self.round_start + report_window, "window still open"
    self._clear(_round_id)


@view
@external
def step_size(t: uint256) -> uint256:
    """
    @notice eta_t in WAD for round t >= 1.
    @param t The round number (from 1).
    @return The step size eta_t in WAD under the deployed step rule.
    """
    return self._step(t)


@view
@internal
def _step(t: uint256) -> uint256:
    if step_rule == STEP_SQRT:
        return eta0 * WAD // isqrt(t * WAD * WAD)
    if step_rule == STEP_HARMONIC:
        return eta0 // t
    return eta0


@internal
def _clear(r: uint256):
    total: uint256 = self.reported_total
    eta: uint256 = self._step(r)
    mu_before: uint256 = self.mu
    mu_after: uint256 = 0
    if total >= capacity:
        mu_after = mu_before + eta * (total - capacity) // WAD
    else:
        down: uint256 = eta * (capacity - total) // WAD
        if mu_before > down:
            mu_after = mu_before - down
    # residuals: primal |min(mu', m - S)|, dual |mu' - mu|, report change |S - S_prev|
    primal: uint256 = 0
    if total > capacity:
        primal = total - capacity
    else:
        primal = min(mu_after, capacity - total)
    dual: uint256 = 0
    if mu_after >= mu_before:
        dual = mu_after - mu_before
    else:
        dual = mu_before - mu_after
    change: uint256 = 0
    if total >= self.previous_total:
        change = total - self.previous_total
    else:
        change = self.previous_total - total
    # effects
    self.mu = mu_after
    self.previous_total = total
    log PriceUpdated(round_id=r, reported_total=total, reports=self.report_count, eta=eta,
                     mu_before=mu_before, mu_after=mu_after, primal_residual=primal, dual_residual=dual)
    if tolerance > 0 and r > 1 and primal <= tolerance and dual <= tolerance and change <= tolerance:
        self.converged = True
        log Converged(round_id=r, mu=mu_after)
        return
    self._open(r + 1)


@internal
def _open(r: uint256):
    self.round_id = r
    self.round_start = block.number
    self.reported_total = 0
    self.report_count = 0
    log RoundOpened(round_id=r, mu=self.mu, deadline=block.number + report_window)
