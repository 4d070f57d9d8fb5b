"""Input proofs on (`--input-proofs`): the protocol's open step checks every dealer's proof with the market's CRS
and refuses a proof made for another round, contract, dealer or key before anything is computed.

Every evaluator (``protocol/roles.py`` ``Evaluator``: ``EvaluatorSide(backend, circuit, dep.public_key(),
dep.crs(), dep.owner_parameters)``) and the auditor's replay (``protocol/audit.py`` ``Auditor._runner_for``:
``EvaluatorSide(backend, circuit, published public key, published CRS, dep.owner_parameters)``) open a revealed
blob with :meth:`protocol.backend.EvaluatorSide.open_report` and the binding of
:func:`protocol.backend.report_binding`; these tests drive that exact object, built the way both call sites
build it, with real TFHE-rs keys, a real CRS and real proofs (node-tfhe).

Why no whole fhe round with proofs: the production CRS takes tens of minutes to generate, and the TEST-ONLY
parameter set (32-dimension keys, a CRS in seconds, at most 8 proven digits per list) cannot feed the concrete
circuit (its ciphertexts do not import, and the smallest grid needs 11 digits). So the circuit slot holds a
recorder with an 8-digit shape: it shows which inputs reach the circuit, and that nothing does when a blob is
refused. The last test runs the rest for real: a simulate-terms market on the embedded chain whose dealers
commit and reveal proven blobs, the Evaluator agents' ``evaluate``/``post`` and the full ``Auditor.run``, with
only their open step replaced by the one a proofs-on fhe market builds (``Evaluator.runner``,
``Auditor._runner``).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest

from chain import ForfeitReason, RoundPhase, blob_commitment
from crypto.encoding import canonical_loads, digest
from crypto.tfhers import (
    TEST_ONLY_FLAG,
    TEST_ONLY_PARAMETERS,
    OwnerReportError,
    TestOnlyParametersError,
    decrypt_import_buffer,
    seal_owner_report,
)
from protocol.attestation import fault_record
from protocol.audit import Auditor
from protocol.backend import EvaluatorSide, report_binding
from protocol.blobstore import atomic_write
from protocol.deployment import open_market
from protocol.layout import read_json, write_json
from protocol.roles import DealerAgent, Evaluator
from protocol.rounds import RoundDriver, next_round_id
from protocol.scenario import deal_inputs, demo_plans
from tests.crypto.owner_inputs import (  # noqa: F401 -- fixtures: the TEST-ONLY market's material
    allow_test_only_parameters,
    crs,
    keys,
    other_keys,
    require_node_tfhe,
)
from tests.crypto.owner_inputs import reencode as _reencode

from .conftest import SIM_GRID

require_node_tfhe()

CHAIN_ID = 1337
CONTRACT = "0x" + "5a" * 20
ROUND = 3
# each dealer's digits (a proof covers [0, 16) per digit); as many as one TEST-ONLY proof covers
DIGITS = {"mm": [1, 15, 8, 4, 13, 10, 2, 0], "rm": [3, 5, 7, 9, 11, 12, 14, 6]}
EVALUATION_KEYS = b"evaluation keys (unused: the recorder never computes)"


@dataclass(frozen=True)
class _Shape:
    digit_count: int


@dataclass
class RecordingCircuit:
    """The circuit slot of :class:`EvaluatorSide`: records every evaluation it is asked for."""

    shape: _Shape = field(default_factory=lambda: _Shape(len(DIGITS["mm"])))
    calls: list = field(default_factory=list)

    def evaluate(self, evaluation_keys, input_mm, input_rm):
        self.calls.append((evaluation_keys, input_mm, input_rm))
        return b"output"


def _binding(side="mm", round_id=ROUND, contract=CONTRACT, chain_id=CHAIN_ID):
    return report_binding(chain_id, contract, round_id, side)


def _seal(public_key, side="mm", crs=None, **where):
    """A dealer's blob, sealed as DealerSide.seal_digits seals it."""
    return seal_owner_report(public_key, DIGITS[side], _binding(side, **where), crs=crs,
                             parameters=TEST_ONLY_PARAMETERS)


@pytest.fixture(scope="module")
def honest(keys, crs):
    return {side: _seal(keys.public_key_bytes(), side, crs) for side in ("mm", "rm")}


def _runner(keys, crs, circuit):
    """The EvaluatorSide a proofs-on fhe market gives its evaluators and its auditor."""
    return EvaluatorSide("fhe", circuit, keys.public_key_bytes(), crs, TEST_ONLY_PARAMETERS.name)


def _run_round(runner, blobs, round_id=ROUND):
    """What ``Evaluator.evaluate`` does with a round's two revealed blobs: open mm, then rm, then compute; a
    refused blob ends it with (side, reason) for the fault record. Returns ("output", bytes) or ("fault", error)."""
    inputs = {}
    for side in ("mm", "rm"):
        try:
            inputs[side] = runner.open_report(blobs[side], _binding(side, round_id=round_id))
        except OwnerReportError as error:
            return "fault", error
    return "output", runner.evaluate(EVALUATION_KEYS, inputs["mm"], inputs["rm"])


def _refused(runner, circuit, blobs, side, reason, round_id=ROUND) -> OwnerReportError:
    kind, error = _run_round(runner, blobs, round_id)
    assert kind == "fault", "a refused blob must not reach the circuit"
    assert isinstance(error, OwnerReportError)
    assert (error.dealer, error.round, error.reason) == (f"dealer_{side}", round_id, reason), str(error)
    assert str(error).startswith(f"owner report of dealer_{side} for round {round_id} rejected ({reason}): ")
    assert circuit.calls == []  # nothing computed
    return error


def test_honest_proven_blobs_open_to_the_dealers_digits_and_reach_the_circuit(keys, crs, honest):
    circuit = RecordingCircuit()
    runner = _runner(keys, crs, circuit)
    kind, output = _run_round(runner, honest)
    assert (kind, output) == ("output", b"output")
    assert len(circuit.calls) == 1
    evaluation_keys, input_mm, input_rm = circuit.calls[0]
    assert evaluation_keys == EVALUATION_KEYS
    client_key = keys.client_key_path.read_bytes()
    # the circuit gets the verified import buffers, and they hold exactly each dealer's digits
    assert decrypt_import_buffer(client_key, input_mm, parameters=TEST_ONLY_PARAMETERS) == DIGITS["mm"]
    assert decrypt_import_buffer(client_key, input_rm, parameters=TEST_ONLY_PARAMETERS) == DIGITS["rm"]
    assert canonical_loads(honest["mm"])["proven"] is True


@pytest.mark.parametrize("where", [{"round_id": ROUND + 1}, {"contract": "0x" + "77" * 20}, {"chain_id": 1}],
                         ids=["another-round", "another-contract", "another-chain"])
def test_a_proof_made_elsewhere_is_refused_before_computing(keys, crs, honest, where):
    circuit = RecordingCircuit()
    runner = _runner(keys, crs, circuit)
    elsewhere = _seal(keys.public_key_bytes(), "rm", crs, **where)
    # replayed as it is: its header names where it was made
    error = _refused(runner, circuit, {"mm": honest["mm"], "rm": elsewhere}, "rm", "binding-mismatch")
    assert "made for" in error.detail
    # relabelled to this round and contract: only the proof, checked against the CRS, can tell
    relabelled = _reencode(elsewhere, binding=_binding("rm").as_dict())
    _refused(runner, circuit, {"mm": honest["mm"], "rm": relabelled}, "rm", "proof-rejected")


def test_a_proof_made_for_this_round_is_refused_in_the_next(keys, crs, honest):
    circuit = RecordingCircuit()
    runner = _runner(keys, crs, circuit)
    next_round = {side: _reencode(blob, binding=_binding(side, round_id=ROUND + 1).as_dict())
                  for side, blob in honest.items()}
    _refused(runner, circuit, next_round, "mm", "proof-rejected", round_id=ROUND + 1)


def test_a_proof_made_for_the_other_dealer_is_refused(keys, crs, honest):
    circuit = RecordingCircuit()
    runner = _runner(keys, crs, circuit)
    # dealer_rm publishes a copy of dealer_mm's list, first as it is, then relabelled as its own
    _refused(runner, circuit, {"mm": honest["mm"], "rm": honest["mm"]}, "rm", "binding-mismatch")
    copied = _reencode(honest["mm"], binding=_binding("rm").as_dict())
    _refused(runner, circuit, {"mm": honest["mm"], "rm": copied}, "rm", "proof-rejected")


def test_a_proof_made_under_another_key_is_refused(keys, other_keys, crs, honest):
    circuit = RecordingCircuit()
    runner = _runner(keys, crs, circuit)
    foreign = _seal(other_keys.public_key_bytes(), "mm", crs)
    _refused(runner, circuit, {"mm": foreign, "rm": honest["rm"]}, "mm", "other-public-key")
    relabelled = _reencode(foreign, public_key_sha256=digest(keys.public_key_bytes()))
    _refused(runner, circuit, {"mm": relabelled, "rm": honest["rm"]}, "mm", "proof-rejected")


def test_an_unproven_blob_is_refused_when_proofs_are_on(keys, crs, honest):
    circuit = RecordingCircuit()
    runner = _runner(keys, crs, circuit)
    unproven = _seal(keys.public_key_bytes(), "rm", None)
    error = _refused(runner, circuit, {"mm": honest["mm"], "rm": unproven}, "rm", "proof-missing")
    assert "requires input proofs" in error.detail


def test_an_altered_ciphertext_fails_its_proof(keys, crs, honest):
    circuit = RecordingCircuit()
    runner = _runner(keys, crs, circuit)
    listing = bytearray(canonical_loads(honest["mm"])["list"])
    listing[8 + 8 + 8 * (32 + 2)] ^= 0x40  # a body word of the third digit (layout: docs/OWNER_ENCRYPTION.md)
    altered = _reencode(honest["mm"], list=bytes(listing))
    _refused(runner, circuit, {"mm": altered, "rm": honest["rm"]}, "mm", "proof-rejected")


def test_the_crs_is_what_turns_proofs_on(keys, honest):
    """An open step built without the CRS would not check proofs: it refuses proven blobs instead, so a market
    whose evaluators dropped the CRS would fault every honest dealer rather than compute unchecked."""
    circuit = RecordingCircuit()
    runner = _runner(keys, None, circuit)
    _refused(runner, circuit, honest, "mm", "unexpected-proof")


def test_test_only_parameters_are_refused_without_the_flag(keys, crs, honest, monkeypatch):
    monkeypatch.delenv(TEST_ONLY_FLAG)
    circuit = RecordingCircuit()
    with pytest.raises(TestOnlyParametersError, match=TEST_ONLY_FLAG):
        _run_round(_runner(keys, crs, circuit), honest)
    assert circuit.calls == []


# --- a real round: the Evaluator agents fault a refused proof, the auditor's replay agrees -----------------

def _reveal(dep, round_id: int, blobs: dict) -> None:
    """Both dealers commit to and reveal ``blobs`` through the real DealerAgent and contract (their report
    state is re-pointed from the market's own blob to ``blobs[side]`` before anything is committed)."""

    deal_inputs(dep, round_id, demo_plans(SIM_GRID, 1, seed=0)[0])
    dealers = [DealerAgent(dep, f"dealer_{side}") for side in ("mm", "rm")]
    for dealer in dealers:
        dealer.prepare_report(round_id)
        blob = blobs[dealer.side]
        atomic_write(dep.data_dir.round_file(dealer.role, round_id, "blob"),
                     json.dumps({"blob": blob.hex()}).encode(), mode=0o600)
        state_path = dep.data_dir.round_file(dealer.role, round_id, "report")
        state = read_json(state_path)
        state["blob_digest"] = digest(blob).hex()
        state["blob_commitment"] = blob_commitment(digest(blob), dealer.side, round_id, dep.contract_address).hex()
        write_json(state_path, state, mode=0o600)
    for dealer in dealers:
        dealer.ensure_deposit()
    for dealer in dealers:
        dealer.commit(round_id)
    for dealer in dealers:
        dealer.reveal(round_id)
    assert dep.coordinator.phase(round_id) is RoundPhase.REPORTED
    for side in ("mm", "rm"):
        assert dep.coordinator.round(round_id).ciphertext(side) == digest(blobs[side])


def test_evaluators_fault_a_relabelled_proof_and_the_audit_agrees_without_computing(fresh_market, keys, crs):
    """A real market and round (simulate terms on the embedded chain): the dealers commit and reveal proven
    blobs; dealer_rm's proof was made for the next round and relabelled to this one. Every Evaluator agent,
    holding the open step a proofs-on market gives it, refuses it and posts the fault record; the k faults
    forfeit dealer_rm; the auditor's replay, holding the same open step, refuses the same blob for the same
    reason and accepts the faults. The circuit is never called."""

    dep = open_market(fresh_market)
    rid = next_round_id(dep)

    def seal(side, round_id):
        return seal_owner_report(keys.public_key_bytes(), DIGITS[side],
                                 report_binding(dep.chain_id, dep.contract_address, round_id, side), crs=crs,
                                 parameters=TEST_ONLY_PARAMETERS)

    relabelled = _reencode(seal("rm", rid + 1),
                           binding=report_binding(dep.chain_id, dep.contract_address, rid, "rm").as_dict())
    blobs = {"mm": seal("mm", rid), "rm": relabelled}
    _reveal(dep, rid, blobs)
    circuit = RecordingCircuit()
    want = fault_record(dep, rid, "rm", digest(relabelled), "proof-rejected")
    for role in dep.evaluators:
        evaluator = Evaluator(dep, role, dep.circuit())
        evaluator.runner = _runner(keys, crs, circuit)  # what Evaluator.__init__ builds in a proofs-on fhe market
        verdict = evaluator.evaluate(rid)
        assert (verdict.kind, verdict.side, verdict.reason) == ("fault", "rm", "proof-rejected")
        assert dep.blobs.get(verdict.digest) == want
        evaluator.post(rid, verdict)
    assert dep.coordinator.phase(rid) is RoundPhase.FORFEITED
    (event,) = dep.coordinator.events("Forfeited", round_id=rid)
    assert event.args["offender"].lower() == dep.address("dealer_rm").lower()
    assert ForfeitReason(event.args["reason"]) is not ForfeitReason.MISSED_DEADLINE
    assert RoundDriver(dep, dep.circuit()).ensure_transcripts() == [rid]  # the driver's last step for a closed round

    auditor = Auditor(open_market(fresh_market, read_only=True))
    auditor._runner = _runner(keys, crs, circuit)  # what Auditor._runner_for builds in a proofs-on fhe market
    report = auditor.run()
    checks = {c["check"]: c for c in report.rounds[rid]}
    assert checks["report.mm"]["ok"] and "opens" in checks["report.mm"]["detail"]
    assert checks["report.rm"]["ok"] and "refused (proof-rejected)" in checks["report.rm"]["detail"]
    faults = [c for name, c in checks.items() if name.startswith("evaluation.fault.")]
    assert len(faults) == len(dep.evaluators) and all(c["ok"] for c in faults), faults
    assert report.failures == [], report.failures
    assert circuit.calls == []
