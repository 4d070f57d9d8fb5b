# pragma version ~=0.4.3
"""
@title Repo-market coordinator (one market, many rounds)
@notice Holds the two dealers' deposits, sequences one round at a time through
        Committed -> Revealing -> Reported -> Computed -> Instructed -> MmLegDone -> RmLegDone ->
        Settled, records a digest of every step, and forfeits the deposit of a dealer that misses a
        deadline, whose encrypted report is found invalid, or that is proven to have deviated from
        its committed instruction. Each dealer encrypts its own report: it commits to the digest of
        its ciphertext blob (bound to its side, the round and this contract) and reveals the digest
        only once both dealers are bound.
        Once k evaluators agree, k-of-n key holders open the agreed output inside phase Computed:
        each posts the digest of its mask share, then of its table share, and the custodian may post
        the instruction only once holder_threshold table shares are on chain (a market without
        holders, holder_threshold = 0, skips this step).
        Terms are fixed at deployment. Deadlines are counted in blocks, never in seconds,
        so an embedded chain replayed from its journal reaches identical decisions.
@dev Layout and encodings are documented in chain/README.md; events, storage slots and the audit
     walkthrough in docs/AUDIT.md. Payments are pull-only (withdraw); every state change emits
     an event.
"""

# ---------------------------------------------------------------- constants

MAX_EVALUATORS: constant(uint256) = 16
MAX_HOLDERS: constant(uint256) = 16

# Round phases; chain/coordinator.py RoundPhase mirrors these numbers.
PHASE_NONE: constant(uint8) = 0
PHASE_COMMITTED: constant(uint8) = 1
PHASE_REVEALING: constant(uint8) = 2
PHASE_REPORTED: constant(uint8) = 3
PHASE_COMPUTED: constant(uint8) = 4
PHASE_INSTRUCTED: constant(uint8) = 5
PHASE_MM_LEG_DONE: constant(uint8) = 6
PHASE_RM_LEG_DONE: constant(uint8) = 7
PHASE_SETTLED: constant(uint8) = 8
PHASE_FORFEITED: constant(uint8) = 9
PHASE_CANCELLED: constant(uint8) = 10

SIDE_MM: constant(uint8) = 0
SIDE_RM: constant(uint8) = 1

# Key holders' share stages; chain/coordinator.py ShareStage mirrors these numbers.
SHARE_MASK: constant(uint8) = 0
SHARE_TABLE: constant(uint8) = 1

REASON_MISSED_DEADLINE: constant(uint8) = 1
REASON_DEVIATION: constant(uint8) = 2
REASON_INVALID_REPORT: constant(uint8) = 3   # k evaluators found the revealed blob malformed
REASON_INVALID_INPUT: constant(uint8) = 4    # the circuit's invalid flag for the dealer's input

HURDLE_MARGIN: constant(uint8) = 0
HURDLE_SPREAD: constant(uint8) = 1

# [decided] for gas (a fresh storage slot costs 22k): an execution record packs (rate, volume) into
# one slot as rate << 128 | volume, and a round's state packs, from the low bits up:
# phase (bits 0..7), phase_block (8..71), trade (72), evaluator i posted its output (80 + i),
# number of evaluators that posted the leading output digest (96..103), outputs agreed (104),
# evaluators that found dealer_mm's revealed report invalid (112..119), dealer_rm's (120..127),
# mask shares posted (128..135), table shares posted (136..143), key holder i posted its mask share
# (144 + i), its table share (160 + i).
# The leading digest is the first one posted (or a dissenting one once it reaches the threshold), so in
# the usual case (all evaluators agree) votes after the first write no new storage slot.
HALF: constant(uint256) = 2**128
BLOCK_SHIFT: constant(uint256) = 2**8
TRADE_BIT: constant(uint256) = 2**72
VOTED_BASE: constant(uint256) = 2**80
LEAD_COUNT_BASE: constant(uint256) = 2**96
AGREED_BIT: constant(uint256) = 2**104
FAULT_MM_BASE: constant(uint256) = 2**112
FAULT_RM_BASE: constant(uint256) = 2**120
MASK_COUNT_BASE: constant(uint256) = 2**128
TABLE_COUNT_BASE: constant(uint256) = 2**136
MASK_POSTED_BASE: constant(uint256) = 2**144
TABLE_POSTED_BASE: constant(uint256) = 2**160

# ---------------------------------------------------------------- events

event Deposited:
    dealer: indexed(address)
    amount: uint256
    total: uint256

event Withdrawn:
    account: indexed(address)
    amount: uint256

event PhaseChanged:
    round_id: indexed(uint256)
    phase: uint8
    deadline: uint256

event ReportCommitted:
    round_id: indexed(uint256)
    dealer: indexed(address)
    commitment: bytes32
    blob_commitment: bytes32

event ReportRevealed:
    round_id: indexed(uint256)
    dealer: indexed(address)
    side: uint8
    blob_digest: bytes32

event FaultPosted:
    round_id: indexed(uint256)
    evaluator: indexed(address)
    side: uint8
    fault_digest: bytes32
    votes: uint256

event InputInvalid:
    round_id: indexed(uint256)
    side: uint8
    attestation_digest: bytes32

event OutputPosted:
    round_id: indexed(uint256)
    evaluator: indexed(address)
    output_digest: bytes32
    votes: uint256

event SharePosted:
    round_id: indexed(uint256)
    holder: indexed(address)
    stage: uint8
    share_digest: bytes32
    count: uint256

event InstructionPosted:
    round_id: indexed(uint256)
    attestation_digest: bytes32
    instruction_commitment: bytes32
    trade: bool

event LegExecuted:
    round_id: indexed(uint256)
    dealer: indexed(address)
    side: uint8
    rate: uint256
    volume: uint256
    evidence: bytes32

event Forfeited:
    round_id: indexed(uint256)
    offender: indexed(address)
    beneficiary: indexed(address)
    amount: uint256
    reason: uint8

# ---------------------------------------------------------------- terms (fixed at deployment)

grid: public(immutable(uint256))
base_rate: public(immutable(uint256))
rate_bits: public(immutable(uint256))
hurdle_mode: public(immutable(uint8))
deposit_minimum: public(immutable(uint256))
terms_digest: public(immutable(bytes32))
circuit_digest: public(immutable(bytes32))
evaluation_keys_digest: public(immutable(bytes32))
identities_digest: public(immutable(bytes32))
dealer_mm: public(immutable(address))
dealer_rm: public(immutable(address))
custodian: public(immutable(address))
threshold: public(immutable(uint256))
holder_threshold: public(immutable(uint256))
report_window: public(immutable(uint256))
reveal_window: public(immutable(uint256))
compute_window: public(immutable(uint256))
instruct_window: public(immutable(uint256))
mm_leg_window: public(immutable(uint256))
rm_leg_window: public(immutable(uint256))
challenge_window: public(immutable(uint256))

evaluators: public(DynArray[address, MAX_EVALUATORS])
evaluator_slot: HashMap[address, uint256]   # 1 + index in evaluators; 0 for anyone else

# ---------------------------------------------------------------- state

struct Round:
    state: uint256                      # phase, phase_block, trade, votes, faults (see TRADE_BIT above)
    report_commitment_mm: bytes32
    report_commitment_rm: bytes32
    blob_commitment_mm: bytes32         # sha256(abi_encode(blob digest, side, round_id, this contract))
    blob_commitment_rm: bytes32
    ciphertext_digest_mm: bytes32       # the revealed blob digest (sha256 of dealer_mm's ciphertext blob)
    ciphertext_digest_rm: bytes32
    leading_output: bytes32             # the agreed output digest once agreed (view output_digest)
    attestation_digest: bytes32
    instruction_commitment: bytes32
    mm_record: uint256                  # rate << 128 | volume
    rm_record: uint256
    offender: address
    beneficiary: address
    forfeited_amount: uint256

current_round: public(uint256)          # 0 before the first round; rounds are numbered from 1
rounds: public(HashMap[uint256, Round])
dissent: HashMap[uint256, HashMap[bytes32, uint256]]   # round -> non-leading digest -> evaluators for it

deposits: public(HashMap[address, uint256])
withdrawable: public(HashMap[address, uint256])

# Declared after the round state so that the slots above keep their numbers (docs/AUDIT.md).
holders: public(DynArray[address, MAX_HOLDERS])
holder_slot: HashMap[address, uint256]      # 1 + index in holders; 0 for anyone else


@deploy
def __init__(
    _grid: uint256,
    _base_rate: uint256,
    _rate_bits: uint256,
    _hurdle_mode: uint8,
    _deposit_minimum: uint256,
    _terms_digest: bytes32,
    _circuit_digest: bytes32,
    _evaluation_keys_digest: bytes32,
    _identities_digest: bytes32,
    _dealer_mm: address,
    _dealer_rm: address,
    _custodian: address,
    _evaluators: DynArray[address, MAX_EVALUATORS],
    _threshold: uint256,
    _holders: DynArray[address, MAX_HOLDERS],
    _holder_threshold: uint256,
    _windows: uint256[7],
):
    """
    @notice Fixes the market's terms, roles and phase windows for the life of the contract.
    @dev Every argument becomes an immutable with a public getter of the same name (without the
         leading underscore); the evaluators are also stored in `evaluators` (their index + 1 in
         `evaluator_slot`), the key holders in `holders` (index + 1 in `holder_slot`). Reverts on a
         zero or repeated address, a dealer acting as custodian, a threshold outside
         1..len(evaluators), a key holder that is a dealer, the custodian or an evaluator, a holder
         threshold outside 1..len(holders) (or non-zero without holders) or a zero-length window.
    @param _grid Volume grid size N (volumes 0..N), at least 1.
    @param _base_rate Base rate of the rate grid, in bp.
    @param _rate_bits Bits of a rate offset, 1..64.
    @param _hurdle_mode 0 = margin hurdles, 1 = spread hurdles.
    @param _deposit_minimum Wei each dealer must hold on deposit to open a round (> 0).
    @param _terms_digest sha256 of the TLV encoding of the market terms (docs/AUDIT.md).
    @param _circuit_digest sha256 of the compiled selection circuit blob.
    @param _evaluation_keys_digest sha256 of the custodian's FHE evaluation-keys blob.
    @param _identities_digest sha256 of the TLV map role -> Ed25519/X25519 identity fingerprint of
           every off-chain signer (custodian, dealers, clients, evaluators).
    @param _dealer_mm Account of the dealer facing the money-market fund (MM).
    @param _dealer_rm Account of the dealer facing the repo borrower (RM).
    @param _custodian Account of the custodian (opens the agreed output from the key holders'
           shares, or decrypts it when there are none; posts the instruction).
    @param _evaluators Accounts of the evaluators, 1..MAX_EVALUATORS distinct addresses.
    @param _threshold k, the number of evaluators that must post the same output digest.
    @param _holders Accounts of the key holders that open the agreed output, 0..MAX_HOLDERS
           distinct addresses; empty for a market without FHE keys (simulated backend).
    @param _holder_threshold k of the key holders: table shares needed before the custodian posts
           the instruction; 0 exactly when there are no holders. The threshold setup record's
           digest is part of _terms_digest.
    @param _windows Phase lengths in blocks: report, reveal, compute, instruct, mm leg, rm leg,
           challenge.
    """
    assert _grid >= 1, "grid must be at least 1"
    assert _rate_bits >= 1 and _rate_bits <= 64, "rate_bits out of range"
    assert _hurdle_mode <= HURDLE_SPREAD, "unknown hurdle mode"
    assert _deposit_minimum > 0, "deposit minimum must be positive"
    assert _dealer_mm != empty(address) and _dealer_rm != empty(address), "zero dealer address"
    assert _dealer_mm != _dealer_rm, "dealers must differ"
    assert _custodian != empty(address), "zero custodian address"
    assert _custodian != _dealer_mm and _custodian != _dealer_rm, "custodian must not be a dealer"
    assert len(_evaluators) >= 1, "no evaluators"
    assert _threshold >= 1 and _threshold <= len(_evaluators), "threshold out of range"
    for w: uint256 in _windows:
        assert w >= 1, "window must be at least one block"
    for i: uint256 in range(len(_evaluators), bound=MAX_EVALUATORS):
        e: address = _evaluators[i]
        assert e != empty(address), "zero evaluator address"
        assert self.evaluator_slot[e] == 0, "duplicate evaluator"
        self.evaluator_slot[e] = i + 1
    self.evaluators = _evaluators
    if len(_holders) == 0:
        assert _holder_threshold == 0, "holder threshold without holders"
    else:
        assert _holder_threshold >= 1 and _holder_threshold <= len(_holders), "holder threshold out of range"
    for i: uint256 in range(len(_holders), bound=MAX_HOLDERS):
        h: address = _holders[i]
        assert h != empty(address), "zero holder address"
        assert self.holder_slot[h] == 0, "duplicate holder"
        assert h != _dealer_mm and h != _dealer_rm, "holder must not be a dealer"
        assert h != _custodian, "holder must not be the custodian"
        assert self.evaluator_slot[h] == 0, "holder must not be an evaluator"
        self.holder_slot[h] = i + 1
    self.holders = _holders

    grid = _grid
    base_rate = _base_rate
    rate_bits = _rate_bits
    hurdle_mode = _hurdle_mode
    deposit_minimum = _deposit_minimum
    terms_digest = _terms_digest
    circuit_digest = _circuit_digest
    evaluation_keys_digest = _evaluation_keys_digest
    identities_digest = _identities_digest
    dealer_mm = _dealer_mm
    dealer_rm = _dealer_rm
    custodian = _custodian
    threshold = _threshold
    holder_threshold = _holder_threshold
    report_window = _windows[0]
    reveal_window = _windows[1]
    compute_window = _windows[2]
    instruct_window = _windows[3]
    mm_leg_window = _windows[4]
    rm_leg_window = _windows[5]
    challenge_window = _windows[6]


# ---------------------------------------------------------------- internal helpers

@internal
@view
def _window(phase: uint8) -> uint256:
    if phase == PHASE_COMMITTED:
        return report_window
    if phase == PHASE_REVEALING:
        return reveal_window
    if phase == PHASE_REPORTED:
        return compute_window
    if phase == PHASE_COMPUTED:
        return instruct_window
    if phase == PHASE_INSTRUCTED:
        return mm_leg_window
    if phase == PHASE_MM_LEG_DONE:
        return rm_leg_window
    if phase == PHASE_RM_LEG_DONE:
        return challenge_window
    return 0


@internal
@view
def _is_terminal(phase: uint8) -> bool:
    return phase == PHASE_NONE or phase >= PHASE_SETTLED


@internal
@view
def _round_open() -> bool:
    return not self._is_terminal(self._phase(self.current_round))


@internal
@view
def _phase(round_id: uint256) -> uint8:
    return convert(self.rounds[round_id].state % BLOCK_SHIFT, uint8)


@internal
@view
def _phase_block(round_id: uint256) -> uint256:
    return (self.rounds[round_id].state // BLOCK_SHIFT) % (TRADE_BIT // BLOCK_SHIFT)


@internal
def _enter(round_id: uint256, phase: uint8):
    state: uint256 = self.rounds[round_id].state
    kept: uint256 = state - state % TRADE_BIT   # trade flag, evaluator bitmap, votes and faults
    self.rounds[round_id].state = kept | (block.number * BLOCK_SHIFT) | convert(phase, uint256)
    deadline: uint256 = 0
    if not self._is_terminal(phase):
        deadline = block.number + self._window(phase)
    log PhaseChanged(round_id=round_id, phase=phase, deadline=deadline)


@internal
@view
def _require_current(round_id: uint256):
    current: uint256 = self.current_round
    assert round_id != 0 and round_id <= current, "unknown round"
    assert round_id == current, "round closed"


@internal
@view
def _require_step(round_id: uint256, phase: uint8, caller: address, phase_name: String[32]):
    """Reverts unless round_id is the current round, in `phase`, the deadline not passed, by `caller`."""
    self._require_current(round_id)
    assert msg.sender == caller, "wrong caller"
    assert self._phase(round_id) == phase, concat("round not in phase ", phase_name)
    assert block.number <= self._phase_block(round_id) + self._window(phase), "deadline passed"


@internal
@view
def _share_count(round_id: uint256, stage: uint8) -> uint256:
    base: uint256 = MASK_COUNT_BASE
    if stage == SHARE_TABLE:
        base = TABLE_COUNT_BASE
    return (self.rounds[round_id].state // base) % 256


@internal
@view
def _require_opened(round_id: uint256):
    """Reverts unless holder_threshold key holders posted their table shares (true without holders)."""
    assert self._share_count(round_id, SHARE_TABLE) >= holder_threshold, "too few table shares"


@internal
def _forfeit(round_id: uint256, offender: address, beneficiary: address, reason: uint8):
    amount: uint256 = self.deposits[offender]
    self.deposits[offender] = 0
    self.withdrawable[beneficiary] += amount
    self.rounds[round_id].offender = offender
    self.rounds[round_id].beneficiary = beneficiary
    self.rounds[round_id].forfeited_amount = amount
    log Forfeited(round_id=round_id, offender=offender, beneficiary=beneficiary, amount=amount, reason=reason)
    self._enter(round_id, PHASE_FORFEITED)


@internal
@pure
def _pack(rate: uint256, volume: uint256) -> uint256:
    assert rate < HALF and volume < HALF, "rate or volume out of range"
    return rate * HALF + volume


# ---------------------------------------------------------------- deposits (pull payments)

@external
@payable
def deposit():
    """
    @notice A dealer adds msg.value to its deposit; its total must reach deposit_minimum.
    @dev Emits Deposited(dealer, amount, total). Only dealer_mm or dealer_rm may call it.
    """
    assert msg.sender == dealer_mm or msg.sender == dealer_rm, "only a dealer may deposit"
    assert msg.value > 0, "zero deposit"
    total: uint256 = self.deposits[msg.sender] + msg.value
    assert total >= deposit_minimum, "deposit below minimum"
    self.deposits[msg.sender] = total
    log Deposited(dealer=msg.sender, amount=msg.value, total=total)


@external
@nonreentrant
def withdraw():
    """
    @notice Pays the caller everything owed to it: forfeits credited to it, and its own deposit
            unless a round is open (deposits are locked while a round is open).
    @dev Checks-effects-interactions: both balances are zeroed and Withdrawn is emitted before the
         transfer; nonreentrant. Reverts "nothing to withdraw" when nothing is owed.
    """
    amount: uint256 = self.withdrawable[msg.sender]
    own: uint256 = self.deposits[msg.sender]
    if own > 0 and not self._round_open():
        amount += own
        self.deposits[msg.sender] = 0
    assert amount > 0, "nothing to withdraw"
    self.withdrawable[msg.sender] = 0
    log Withdrawn(account=msg.sender, amount=amount)
    ok: bool = raw_call(msg.sender, b"", value=amount, revert_on_failure=False)
    assert ok, "transfer failed"


# ---------------------------------------------------------------- the round

@external
def commit_report(round_id: uint256, commitment: bytes32, blob_commitment: bytes32):
    """
    @notice A dealer commits to its report, H(report || salt), and to the ciphertext blob it
            encrypted itself, sha256(abi_encode(blob_digest, side, round_id, this contract)). The
            first commitment of a new round (round_id == current_round + 1, previous round closed)
            opens it; both dealers' deposits must then be at least deposit_minimum. The second
            moves the round to Revealing.
    @dev Emits PhaseChanged(round_id, 1, deadline) when it opens the round, then ReportCommitted,
         then PhaseChanged(round_id, 2, deadline) when it is the second commitment.
    @param round_id The round to commit to: current_round + 1 opens a new round, current_round
           joins the open one (second dealer).
    @param commitment The dealer's report commitment (crypto/encoding.py commitment), non-zero.
    @param blob_commitment The dealer's commitment to its ciphertext blob's digest, non-zero;
           bound to its side, the round and this contract so that it cannot be copied.
    """
    assert msg.sender == dealer_mm or msg.sender == dealer_rm, "only a dealer may commit a report"
    assert commitment != empty(bytes32) and blob_commitment != empty(bytes32), "zero commitment"
    if round_id == self.current_round + 1:
        assert not self._round_open(), "previous round still open"
        assert self.deposits[dealer_mm] >= deposit_minimum, "dealer_mm deposit below minimum"
        assert self.deposits[dealer_rm] >= deposit_minimum, "dealer_rm deposit below minimum"
        self.current_round = round_id
        self._enter(round_id, PHASE_COMMITTED)
    else:
        self._require_step(round_id, PHASE_COMMITTED, msg.sender, "Committed")
    if msg.sender == dealer_mm:
        assert self.rounds[round_id].report_commitment_mm == empty(bytes32), "report already committed"
        self.rounds[round_id].report_commitment_mm = commitment
        self.rounds[round_id].blob_commitment_mm = blob_commitment
    else:
        assert self.rounds[round_id].report_commitment_rm == empty(bytes32), "report already committed"
        self.rounds[round_id].report_commitment_rm = commitment
        self.rounds[round_id].blob_commitment_rm = blob_commitment
    log ReportCommitted(round_id=round_id, dealer=msg.sender, commitment=commitment, blob_commitment=blob_commitment)
    if self.rounds[round_id].report_commitment_mm != empty(bytes32) and self.rounds[round_id].report_commitment_rm != empty(bytes32):
        self._enter(round_id, PHASE_REVEALING)


@external
def reveal_report(round_id: uint256, blob_digest: bytes32):
    """
    @notice A dealer reveals the digest of the ciphertext blob it published, once both dealers
            committed. The digest must open the dealer's blob commitment. Once both revealed, the
            round moves to Reported and the evaluators compute on the two blobs.
    @dev Emits ReportRevealed(round_id, dealer, side, blob_digest), then PhaseChanged(round_id, 3,
         deadline) on the second reveal. A reveal in phase Committed (the other dealer has not
         committed), after the reveal deadline, a second reveal or one that does not open the
         commitment reverts; a dealer that never reveals forfeits through enforce_deadline.
    @param round_id The current round, in phase Revealing.
    @param blob_digest sha256 of the dealer's ciphertext blob; sha256(abi_encode(blob_digest, side,
           round_id, this contract)) must equal its blob commitment.
    """
    assert msg.sender == dealer_mm or msg.sender == dealer_rm, "only a dealer may reveal a report"
    self._require_current(round_id)
    phase: uint8 = self._phase(round_id)
    assert phase != PHASE_COMMITTED, "both dealers must commit before a reveal"
    assert phase == PHASE_REVEALING, "round not in phase Revealing"
    assert block.number <= self._phase_block(round_id) + reveal_window, "deadline passed"
    assert blob_digest != empty(bytes32), "zero digest"
    side: uint8 = SIDE_MM
    committed: bytes32 = self.rounds[round_id].blob_commitment_mm
    if msg.sender == dealer_rm:
        side = SIDE_RM
        committed = self.rounds[round_id].blob_commitment_rm
        assert self.rounds[round_id].ciphertext_digest_rm == empty(bytes32), "report already revealed"
    else:
        assert self.rounds[round_id].ciphertext_digest_mm == empty(bytes32), "report already revealed"
    assert sha256(abi_encode(blob_digest, side, round_id, self)) == committed, "reveal does not match commitment"
    if side == SIDE_MM:
        self.rounds[round_id].ciphertext_digest_mm = blob_digest
    else:
        self.rounds[round_id].ciphertext_digest_rm = blob_digest
    log ReportRevealed(round_id=round_id, dealer=msg.sender, side=side, blob_digest=blob_digest)
    if self.rounds[round_id].ciphertext_digest_mm != empty(bytes32) and self.rounds[round_id].ciphertext_digest_rm != empty(bytes32):
        self._enter(round_id, PHASE_REPORTED)


@external
def post_output(round_id: uint256, output_digest: bytes32):
    """
    @notice An evaluator posts the digest of the circuit output it computed. Once `threshold`
            evaluators posted the same digest the round moves to Computed and that digest is the
            only output the custodian may decrypt.
    @dev Each evaluator posts once per round (bit 80 + index of the state word). OutputPosted
         carries the running count for the posted digest.
    @param round_id The current round, in phase Reported.
    @param output_digest sha256 of the blob holding the encrypted circuit output, non-zero.
    """
    slot: uint256 = self.evaluator_slot[msg.sender]
    assert slot != 0, "only an evaluator may post an output"
    self._require_step(round_id, PHASE_REPORTED, msg.sender, "Reported")
    assert output_digest != empty(bytes32), "zero digest"
    voted: uint256 = VOTED_BASE << (slot - 1)
    state: uint256 = self.rounds[round_id].state
    assert state & voted == 0, "evaluator already posted"
    state |= voted
    leading: bytes32 = self.rounds[round_id].leading_output
    agreeing: uint256 = 0
    if leading == empty(bytes32) or leading == output_digest:
        if leading == empty(bytes32):
            self.rounds[round_id].leading_output = output_digest
        state += LEAD_COUNT_BASE
        agreeing = (state // LEAD_COUNT_BASE) % 256
    else:
        agreeing = self.dissent[round_id][output_digest] + 1
        self.dissent[round_id][output_digest] = agreeing
    if agreeing >= threshold:
        if output_digest != leading:
            # A dissenting digest wins: it becomes the leading one; the old leader's count moves out.
            self.dissent[round_id][leading] = (state // LEAD_COUNT_BASE) % 256
            self.dissent[round_id][output_digest] = 0
            self.rounds[round_id].leading_output = output_digest
            state = state % LEAD_COUNT_BASE + agreeing * LEAD_COUNT_BASE
        state |= AGREED_BIT
    self.rounds[round_id].state = state
    log OutputPosted(round_id=round_id, evaluator=msg.sender, output_digest=output_digest, votes=agreeing)
    if agreeing >= threshold:
        self._enter(round_id, PHASE_COMPUTED)


@external
def post_fault(round_id: uint256, side: uint8, fault_digest: bytes32):
    """
    @notice An evaluator reports, instead of an output, that a dealer's revealed blob fails the
            structural (or proof) check every evaluator runs before computing. Once `threshold`
            evaluators named the same side, that dealer's deposit goes to the other dealer and the
            round closes as Forfeited (reason 3).
    @dev Shares the evaluator's one post per round with post_output (bit 80 + index). The count
         per side is bits 112..119 (mm) and 120..127 (rm) of the state word. [decided] An evaluator
         checks mm's blob first, so honest evaluators name the same side when both are bad.
    @param round_id The current round, in phase Reported.
    @param side 0 = dealer_mm's blob, 1 = dealer_rm's blob.
    @param fault_digest sha256 of the evaluator's fault record blob (names the blob and the reason).
    """
    slot: uint256 = self.evaluator_slot[msg.sender]
    assert slot != 0, "only an evaluator may post a fault"
    self._require_step(round_id, PHASE_REPORTED, msg.sender, "Reported")
    assert side <= SIDE_RM, "unknown side"
    assert fault_digest != empty(bytes32), "zero digest"
    voted: uint256 = VOTED_BASE << (slot - 1)
    state: uint256 = self.rounds[round_id].state
    assert state & voted == 0, "evaluator already posted"
    base: uint256 = FAULT_MM_BASE
    if side == SIDE_RM:
        base = FAULT_RM_BASE
    state = (state | voted) + base
    votes: uint256 = (state // base) % 256
    self.rounds[round_id].state = state
    log FaultPosted(round_id=round_id, evaluator=msg.sender, side=side, fault_digest=fault_digest, votes=votes)
    if votes >= threshold:
        if side == SIDE_MM:
            self._forfeit(round_id, dealer_mm, dealer_rm, REASON_INVALID_REPORT)
        else:
            self._forfeit(round_id, dealer_rm, dealer_mm, REASON_INVALID_REPORT)


@external
def post_share(round_id: uint256, stage: uint8, share_digest: bytes32):
    """
    @notice A key holder posts the digest of its share blob for the round's agreed output: first its
            mask share (stage 0), then, once holder_threshold mask shares are on chain, its table
            share (stage 1). The blobs are public, named by their sha256; anyone combines
            holder_threshold table shares into the decoded output.
    @dev Each holder posts each stage once per round (bits 144 + index and 160 + index of the state
         word); the counts per stage are bits 128..135 and 136..143. Emits SharePosted with the
         count of that stage so far. A holder that misses the instruct deadline lets anyone cancel
         the round (enforce_deadline), as a silent custodian does.
    @param round_id The current round, in phase Computed.
    @param stage 0 = mask share, 1 = table share.
    @param share_digest sha256 of the holder's share blob, non-zero.
    """
    slot: uint256 = self.holder_slot[msg.sender]
    assert slot != 0, "only a key holder may post a share"
    self._require_step(round_id, PHASE_COMPUTED, msg.sender, "Computed")
    assert stage <= SHARE_TABLE, "unknown share stage"
    assert share_digest != empty(bytes32), "zero digest"
    state: uint256 = self.rounds[round_id].state
    mask_posted: uint256 = MASK_POSTED_BASE << (slot - 1)
    count: uint256 = 0
    if stage == SHARE_MASK:
        assert state & mask_posted == 0, "mask share already posted"
        state = (state | mask_posted) + MASK_COUNT_BASE
        count = (state // MASK_COUNT_BASE) % 256
    else:
        table_posted: uint256 = TABLE_POSTED_BASE << (slot - 1)
        assert state & table_posted == 0, "table share already posted"
        assert state & mask_posted != 0, "own mask share not posted"
        assert (state // MASK_COUNT_BASE) % 256 >= holder_threshold, "too few mask shares"
        state = (state | table_posted) + TABLE_COUNT_BASE
        count = (state // TABLE_COUNT_BASE) % 256
    self.rounds[round_id].state = state
    log SharePosted(round_id=round_id, holder=msg.sender, stage=stage, share_digest=share_digest, count=count)


@external
def post_instruction(round_id: uint256, attestation_digest: bytes32, instruction_commitment: bytes32, trade: bool):
    """
    @notice The custodian posts the digest of its signed decryption attestation and the commitment
            sha256(abi_encode(volume, r_mm, r_rm, r_bd_x2, salt)) to the instruction. A no-trade
            instruction settles the round at once. With key holders, holder_threshold of them must
            have posted their table shares first.
    @param round_id The current round, in phase Computed.
    @param attestation_digest sha256 of the attestation blob (the custodian's signed decryption).
    @param instruction_commitment sha256(abi_encode(volume, r_mm, r_rm, r_bd_x2, salt)).
    @param trade True if the instruction is a trade (round moves to Instructed), False for no trade
           (round moves to Settled).
    """
    self._require_step(round_id, PHASE_COMPUTED, custodian, "Computed")
    assert attestation_digest != empty(bytes32) and instruction_commitment != empty(bytes32), "zero digest"
    self._require_opened(round_id)
    self.rounds[round_id].attestation_digest = attestation_digest
    self.rounds[round_id].instruction_commitment = instruction_commitment
    if trade:
        self.rounds[round_id].state |= TRADE_BIT
    log InstructionPosted(round_id=round_id, attestation_digest=attestation_digest, instruction_commitment=instruction_commitment, trade=trade)
    if trade:
        self._enter(round_id, PHASE_INSTRUCTED)
    else:
        self._enter(round_id, PHASE_SETTLED)


@external
def report_invalid_input(round_id: uint256, attestation_digest: bytes32, side: uint8):
    """
    @notice The custodian reports that the agreed output's invalid flag names one dealer's input
            (the circuit's per-dealer flag, decrypted). That dealer's deposit goes to the other and
            the round closes as Forfeited (reason 4). [decided] When both flags are set neither
            dealer is the harmed party: the custodian posts a no-trade instruction instead. With key
            holders, holder_threshold of them must have posted their table shares first.
    @dev Emits InputInvalid(round_id, side, attestation_digest), Forfeited and PhaseChanged(9).
    @param round_id The current round, in phase Computed.
    @param attestation_digest sha256 of the custodian's signed attestation naming the agreed
           output digest and both decrypted invalid flags.
    @param side 0 = dealer_mm's input is invalid, 1 = dealer_rm's.
    """
    self._require_step(round_id, PHASE_COMPUTED, custodian, "Computed")
    assert side <= SIDE_RM, "unknown side"
    assert attestation_digest != empty(bytes32), "zero digest"
    self._require_opened(round_id)
    self.rounds[round_id].attestation_digest = attestation_digest
    log InputInvalid(round_id=round_id, side=side, attestation_digest=attestation_digest)
    if side == SIDE_MM:
        self._forfeit(round_id, dealer_mm, dealer_rm, REASON_INVALID_INPUT)
    else:
        self._forfeit(round_id, dealer_rm, dealer_mm, REASON_INVALID_INPUT)


@external
def execute_mm_leg(round_id: uint256, rate: uint256, volume: uint256, evidence: bytes32):
    """
    @notice dealer_mm records, from its own account, the rate it offered MM and the volume MM
            accepted. This signed record is what a deviation proof is checked against.
    @param round_id The current round, in phase Instructed.
    @param rate The rate dealer_mm offered its client, in bp (< 2**128).
    @param volume The volume its client accepted, in grid units (< 2**128).
    @param evidence sha256 of dealer_mm's signed execution record, which names the offer and the
           acceptance blobs [decided]: it anchors them, so an auditor can check them. Kept in the
           event only (the history), not in storage.
    """
    self._require_step(round_id, PHASE_INSTRUCTED, dealer_mm, "Instructed")
    assert evidence != empty(bytes32), "zero digest"
    self.rounds[round_id].mm_record = self._pack(rate, volume)
    log LegExecuted(round_id=round_id, dealer=msg.sender, side=SIDE_MM, rate=rate, volume=volume, evidence=evidence)
    self._enter(round_id, PHASE_MM_LEG_DONE)


@external
def execute_rm_leg(round_id: uint256, rate: uint256, volume: uint256, evidence: bytes32):
    """
    @notice dealer_rm records the rate it offered RM and the volume RM accepted.
    @param round_id The current round, in phase MmLegDone.
    @param rate The rate dealer_rm offered its client, in bp (< 2**128).
    @param volume The volume its client accepted, in grid units (< 2**128).
    @param evidence sha256 of dealer_rm's signed execution record (see execute_mm_leg).
    """
    self._require_step(round_id, PHASE_MM_LEG_DONE, dealer_rm, "MmLegDone")
    assert evidence != empty(bytes32), "zero digest"
    self.rounds[round_id].rm_record = self._pack(rate, volume)
    log LegExecuted(round_id=round_id, dealer=msg.sender, side=SIDE_RM, rate=rate, volume=volume, evidence=evidence)
    self._enter(round_id, PHASE_RM_LEG_DONE)


@external
def settle(round_id: uint256):
    """
    @notice Anyone closes an executed round once its challenge window has passed; deposits unlock.
    @param round_id The current round, in phase RmLegDone, challenge window passed.
    """
    self._require_current(round_id)
    assert self._phase(round_id) == PHASE_RM_LEG_DONE, "round not in phase RmLegDone"
    assert block.number > self._phase_block(round_id) + challenge_window, "challenge window still open"
    self._enter(round_id, PHASE_SETTLED)


@external
def enforce_deadline(round_id: uint256):
    """
    @notice Anyone acts on a missed deadline. A dealer at fault forfeits its deposit to the other
            dealer: the second dealer not committing its report, a dealer not revealing its blob
            digest (or never revealing one that opens its commitment) while the other did,
            dealer_mm not executing its leg, dealer_rm not executing its leg. If neither dealer
            revealed, or the custodian or the evaluators missed their step, the round is cancelled
            and deposits unlock [decided].
    @dev A forfeit emits Forfeited(reason 1) and PhaseChanged(9); a cancellation PhaseChanged(10).
    @param round_id The current round, open, its current step's deadline passed.
    """
    self._require_current(round_id)
    phase: uint8 = self._phase(round_id)
    assert not self._is_terminal(phase), "round closed"
    assert phase != PHASE_RM_LEG_DONE, "round executed: settle it"
    assert block.number > self._phase_block(round_id) + self._window(phase), "deadline not passed"
    if phase == PHASE_COMMITTED:
        if self.rounds[round_id].report_commitment_mm == empty(bytes32):
            self._forfeit(round_id, dealer_mm, dealer_rm, REASON_MISSED_DEADLINE)
        else:
            self._forfeit(round_id, dealer_rm, dealer_mm, REASON_MISSED_DEADLINE)
    elif phase == PHASE_REVEALING:
        mm_revealed: bool = self.rounds[round_id].ciphertext_digest_mm != empty(bytes32)
        rm_revealed: bool = self.rounds[round_id].ciphertext_digest_rm != empty(bytes32)
        if mm_revealed:
            self._forfeit(round_id, dealer_rm, dealer_mm, REASON_MISSED_DEADLINE)
        elif rm_revealed:
            self._forfeit(round_id, dealer_mm, dealer_rm, REASON_MISSED_DEADLINE)
        else:
            self._enter(round_id, PHASE_CANCELLED)
    elif phase == PHASE_INSTRUCTED:
        self._forfeit(round_id, dealer_mm, dealer_rm, REASON_MISSED_DEADLINE)
    elif phase == PHASE_MM_LEG_DONE:
        self._forfeit(round_id, dealer_rm, dealer_mm, REASON_MISSED_DEADLINE)
    else:
        self._enter(round_id, PHASE_CANCELLED)


@external
def prove_deviation(round_id: uint256, side: uint8, volume: uint256, r_mm: uint256, r_rm: uint256, r_bd_x2: uint256, salt: bytes32):
    """
    @notice Anyone proves that a dealer's own execution record departs from the committed
            instruction by revealing the instruction's preimage. The offender's deposit goes to
            the other dealer and the round closes as Forfeited (one forfeiture per round [decided]).
    @dev Accepted from the leg's execution until the end of the challenge window. Emits
         Forfeited(reason 2) and PhaseChanged(9).
    @param round_id The current round.
    @param side 0 = dealer_mm's record, 1 = dealer_rm's record.
    @param volume The instruction's volume (preimage field 1).
    @param r_mm The instruction's rate for MM (preimage field 2).
    @param r_rm The instruction's rate for RM (preimage field 3).
    @param r_bd_x2 Twice the instruction's inter-dealer rate (preimage field 4).
    @param salt The instruction commitment's salt (preimage field 5).
    """
    self._require_current(round_id)
    assert side <= SIDE_RM, "unknown side"
    phase: uint8 = self._phase(round_id)
    assert not self._is_terminal(phase), "round closed"
    record: uint256 = 0
    offender: address = dealer_mm
    beneficiary: address = dealer_rm
    rate: uint256 = r_mm
    if side == SIDE_MM:
        assert phase == PHASE_MM_LEG_DONE or phase == PHASE_RM_LEG_DONE, "mm leg not executed"
        record = self.rounds[round_id].mm_record
    else:
        assert phase == PHASE_RM_LEG_DONE, "rm leg not executed"
        record = self.rounds[round_id].rm_record
        offender = dealer_rm
        beneficiary = dealer_mm
        rate = r_rm
    if phase == PHASE_RM_LEG_DONE:
        assert block.number <= self._phase_block(round_id) + challenge_window, "challenge window closed"
    preimage_digest: bytes32 = sha256(abi_encode(volume, r_mm, r_rm, r_bd_x2, salt))
    assert preimage_digest == self.rounds[round_id].instruction_commitment, "preimage does not match commitment"
    assert record != self._pack(rate, volume), "no deviation"
    self._forfeit(round_id, offender, beneficiary, REASON_DEVIATION)


# ---------------------------------------------------------------- views for auditors

@external
@view
def deadline(round_id: uint256) -> uint256:
    """
    @notice Last block in which the round's current step may be taken (0 once the round is closed).
    @param round_id The round.
    @return The deadline block number, or 0 for a closed or unknown round.
    """
    phase: uint8 = self._phase(round_id)
    if self._is_terminal(phase):
        return 0
    return self._phase_block(round_id) + self._window(phase)


@external
@view
def phase(round_id: uint256) -> uint8:
    """
    @notice The round's phase (0 None, 1 Committed, 2 Revealing, 3 Reported, 4 Computed,
            5 Instructed, 6 MmLegDone, 7 RmLegDone, 8 Settled, 9 Forfeited, 10 Cancelled).
    @param round_id The round.
    @return The phase code, bits 0..7 of the round's state word.
    """
    return self._phase(round_id)


@external
@view
def phase_block(round_id: uint256) -> uint256:
    """
    @notice Block in which the round entered its current phase.
    @param round_id The round.
    @return The block number, bits 8..71 of the round's state word.
    """
    return self._phase_block(round_id)


@external
@view
def trade(round_id: uint256) -> bool:
    """
    @notice Whether the custodian's instruction for the round is a trade.
    @param round_id The round.
    @return True once a trade instruction was posted (bit 72 of the state word).
    """
    return self.rounds[round_id].state & TRADE_BIT != 0


@external
@view
def round_open() -> bool:
    """
    @notice Whether the current round is open (phases Committed..RmLegDone): deposits are locked.
    @return True while the current round is in a non-terminal phase.
    """
    return self._round_open()


@external
@view
def execution_record(round_id: uint256, side: uint8) -> (uint256, uint256):
    """
    @notice (rate, volume) recorded by the dealer of `side` (0 = mm, 1 = rm); (0, 0) if none.
    @param round_id The round.
    @param side 0 = dealer_mm's record, 1 = dealer_rm's record.
    @return The recorded rate (bp) and volume (grid units).
    """
    packed: uint256 = self.rounds[round_id].mm_record
    if side == SIDE_RM:
        packed = self.rounds[round_id].rm_record
    return packed // HALF, packed % HALF


@external
@view
def output_digest(round_id: uint256) -> bytes32:
    """
    @notice The output digest k evaluators agreed on (the only output the custodian may decrypt);
            zero until they agree.
    @param round_id The round.
    @return The agreed output digest, or bytes32(0) before agreement.
    """
    if self.rounds[round_id].state & AGREED_BIT == 0:
        return empty(bytes32)
    return self.rounds[round_id].leading_output


@external
@view
def tally(round_id: uint256, output_digest: bytes32) -> uint256:
    """
    @notice How many evaluators posted `output_digest` in the round.
    @param round_id The round.
    @param output_digest The output digest to count.
    @return The number of evaluators that posted it.
    """
    if output_digest != empty(bytes32) and output_digest == self.rounds[round_id].leading_output:
        return (self.rounds[round_id].state // LEAD_COUNT_BASE) % 256
    return self.dissent[round_id][output_digest]


@external
@view
def is_evaluator(account: address) -> bool:
    """
    @notice Whether `account` is one of the evaluators fixed at deployment.
    @param account The account to test.
    @return True if it is an evaluator.
    """
    return self.evaluator_slot[account] != 0


@external
@view
def has_posted_output(round_id: uint256, evaluator: address) -> bool:
    """
    @notice Whether `evaluator` posted in the round: an output digest (OutputPosted) or a fault
            (FaultPosted); each evaluator posts once per round.
    @param round_id The round.
    @param evaluator The evaluator's account.
    @return True if it posted; False for an account that is not an evaluator.
    """
    slot: uint256 = self.evaluator_slot[evaluator]
    if slot == 0:
        return False
    return self.rounds[round_id].state & (VOTED_BASE << (slot - 1)) != 0


@external
@view
def evaluator_count() -> uint256:
    """
    @notice n, the number of evaluators (threshold() of them must agree).
    @return The length of `evaluators`.
    """
    return len(self.evaluators)


@external
@view
def holder_count() -> uint256:
    """
    @notice n of the key holders (holder_threshold() of them open an output); 0 without holders.
    @return The length of `holders`.
    """
    return len(self.holders)


@external
@view
def is_holder(account: address) -> bool:
    """
    @notice Whether `account` is one of the key holders fixed at deployment.
    @param account The account to test.
    @return True if it is a key holder.
    """
    return self.holder_slot[account] != 0


@external
@view
def share_count(round_id: uint256, stage: uint8) -> uint256:
    """
    @notice How many key holders posted a share of `stage` in the round.
    @param round_id The round.
    @param stage 0 = mask shares, 1 = table shares.
    @return The count (bits 128..135 of the state word for masks, 136..143 for tables).
    """
    assert stage <= SHARE_TABLE, "unknown share stage"
    return self._share_count(round_id, stage)


@external
@view
def has_posted_share(round_id: uint256, holder: address, stage: uint8) -> bool:
    """
    @notice Whether `holder` posted its share of `stage` in the round (SharePosted).
    @param round_id The round.
    @param holder The key holder's account.
    @param stage 0 = mask share, 1 = table share.
    @return True if it posted; False for an account that is not a key holder.
    """
    assert stage <= SHARE_TABLE, "unknown share stage"
    slot: uint256 = self.holder_slot[holder]
    if slot == 0:
        return False
    base: uint256 = MASK_POSTED_BASE
    if stage == SHARE_TABLE:
        base = TABLE_POSTED_BASE
    return self.rounds[round_id].state & (base << (slot - 1)) != 0
