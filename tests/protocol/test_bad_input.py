"""Bad-input catalogue: malformed, replayed, forged or out-of-range reports, unknown rounds, steps out of
order, a node that is down, bad CLI input.  Each case must fail with a clear error naming the field/value
and leave nothing half-recorded: no new blob, no custodian state, no replay-cache entry, no chain change.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from chain import ChainError, ChainUnavailable, RoundPhase
from crypto.envelope import DealerReport, SealedReport, seal_report
from crypto.errors import (BindingMismatchError, MalformedEnvelopeError, ReplayError, TamperedEnvelopeError,
                           WrongSignerError)
from crypto.identity import IdentityKeys
from market.terms import ReportError
from protocol.blobstore import BlobCorrupt
from protocol.deployment import open_market
from protocol.roles import Behaviour, Custodian, DealerAgent, ProtocolError, post_inbox
from protocol.scenario import deal_inputs, demo_plans

from .conftest import SIM_GRID

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def committed(sim_template, protocol_root):
    """Round 1 in phase Committed: both dealers deposited and committed; envelopes in the custodian's inbox."""
    path = protocol_root / "bad-input" / "market"
    shutil.copytree(sim_template, path, symlinks=True)
    dep = open_market(path)
    deal_inputs(dep, 1, demo_plans(SIM_GRID, 1, seed=0)[0])
    _commit_both(dep)
    assert dep.coordinator.phase(1) == RoundPhase.COMMITTED
    return path


def _commit_both(dep):
    dealers = [DealerAgent(dep, role) for role in ("dealer_mm", "dealer_rm")]
    for d in dealers:
        d.ensure_deposit()
    for d in dealers:
        d.commit(1)


def snapshot(path: Path) -> dict:
    dep = open_market(path)
    replay = dep.data_dir.replay_cache("custodian")
    files = lambda d: {p.name: p.read_bytes() for p in d.glob("*")}  # noqa: E731
    rs = dep.coordinator.round(1) if dep.coordinator.current_round() >= 1 else None
    return {"blobs": sorted(p.name for p in dep.data_dir.blobs.iterdir()),
            "custodian_rounds": files(dep.data_dir.rounds_dir("custodian")),
            "replay": replay.read_bytes() if replay.exists() else b"",
            "block": dep.chain.block_number, "round": rs}


@contextlib.contextmanager
def refused_leaving_no_trace(path: Path, error, match):
    """The block raises ``error`` (its message matching ``match``) and the market at ``path`` is as it was."""
    before = snapshot(path)
    with pytest.raises(error, match=match):
        yield
    assert snapshot(path) == before


def _sealed(dep, *, role="dealer_mm", round_id=1, contract=None, keys=None, recipient="custodian", schedule=None):
    keys = keys or IdentityKeys.load(dep.data_dir.identity_dir(role), role=role)
    offsets = schedule or ([100 + q for q in range(SIM_GRID + 1)] if role == "dealer_mm"
                           else [100 + 2 * SIM_GRID - q for q in range(SIM_GRID + 1)])
    report = DealerReport.create(role=role, round=round_id, chain_id=dep.chain_id,
                                 contract=contract or dep.contract_address, schedule=offsets, hurdle=0)
    return seal_report(report, dealer=keys, custodian=dep.identity(recipient)).to_bytes()


def _deliver(dep, side, data: bytes):
    post_inbox(dep, "custodian", 1, "report", dep.blobs.put(data), side=side)


def _restore_inbox(dep, side):
    state = json.loads(dep.data_dir.round_file(f"dealer_{side}", 1, "report").read_text())
    post_inbox(dep, "custodian", 1, "report", bytes.fromhex(state["envelope"]), side=side)


# --- dealer side: invalid reports are refused before anything is signed, sealed or sent ------------------

GOOD_B = [400 + q for q in range(SIM_GRID + 1)]
GOOD_A = [412 - q for q in range(SIM_GRID + 1)]
REPORT_CASES = [
    ("short schedule", "dealer_mm", GOOD_B[:-1], 0, ReportError, "7 rates"),
    ("long schedule", "dealer_mm", GOOD_B + [407], 0, ReportError, "volume grid"),
    ("b not increasing", "dealer_mm", [400, 402, 401, 403, 404, 405, 406], 0, ReportError, "b[2] = 401"),
    ("a not decreasing", "dealer_rm", [412, 411, 412, 409, 408, 407, 406], 0, ReportError, "a[2] = 412"),
    ("rate below base rate", "dealer_mm", [299] + GOOD_B[1:], 0, ReportError, "b[0] = 299"),
    ("rate above range", "dealer_rm", [2000] + GOOD_A[1:], 0, ReportError, "a[0] = 2000"),
    ("negative hurdle", "dealer_mm", GOOD_B, -1, ReportError, "hurdle = -1"),
    ("hurdle above range", "dealer_rm", GOOD_A, 256, ReportError, "hurdle = 256"),
    ("float rate", "dealer_mm", [400.5] + GOOD_B[1:], 0, ReportError, "400.5"),
    ("string hurdle", "dealer_mm", GOOD_B, "5", ReportError, "hurdle = '5'"),
    ("bool rate", "dealer_rm", [True] + GOOD_A[1:], 0, ReportError, "True"),
]


@pytest.mark.parametrize("name,role,schedule,hurdle,error,match", REPORT_CASES, ids=[c[0] for c in REPORT_CASES])
def test_invalid_report_is_refused_before_sealing(committed, name, role, schedule, hurdle, error, match):
    dep = open_market(committed)
    path = dep.data_dir.round_file(role, 7, "input")
    path.write_text(json.dumps({"schedule": schedule, "hurdle": hurdle, "behaviour": {"kind": "honest"}}))
    with refused_leaving_no_trace(committed, error, match=re.escape(match)):
        DealerAgent(dep, role).prepare_report(7)
    assert not dep.data_dir.round_file(role, 7, "report").exists()


# --- custodian side: malformed, tampered, replayed, forged envelopes -------------------------------------

def _flip(data: bytes, at: int = -5) -> bytes:
    b = bytearray(data)
    b[at] ^= 0x01
    return bytes(b)


def _envelope_cases():
    def tampered(dep):
        state = json.loads(dep.data_dir.round_file("dealer_mm", 1, "report").read_text())
        sealed = SealedReport.from_bytes(dep.blobs.get(bytes.fromhex(state["envelope"])))
        return "mm", dataclasses.replace(sealed, ciphertext=_flip(sealed.ciphertext, 7)).to_bytes()

    return [
        ("tampered envelope", tampered, TamperedEnvelopeError, "authentication failed"),
        ("garbage bytes", lambda dep: ("mm", b"not an envelope"), MalformedEnvelopeError, "envelope: truncated value"),
        ("sealed for another round", lambda dep: ("mm", _sealed(dep, round_id=2)), BindingMismatchError, "round"),
        ("sealed for another contract",
         lambda dep: ("mm", _sealed(dep, contract="0x" + "11" * 20)), BindingMismatchError, "contract"),
        ("forged signer", lambda dep: ("mm", _sealed(dep, keys=IdentityKeys.generate("dealer_mm"))),
         WrongSignerError, "dealer_mm"),
        ("dealer_rm's report in dealer_mm's slot", lambda dep: ("mm", _sealed(dep, role="dealer_rm")),
         BindingMismatchError, "sender"),
        ("sealed to another recipient", lambda dep: ("mm", _sealed(dep, recipient="dealer_rm")),
         TamperedEnvelopeError, "sealed to another key"),
        ("report that does not open the commitment on chain",
         lambda dep: ("mm", _sealed(dep, schedule=[101 + q for q in range(SIM_GRID + 1)])),
         ProtocolError, "does not open its commitment"),
    ]


@pytest.mark.parametrize("name,make,error,match", _envelope_cases(), ids=[c[0] for c in _envelope_cases()])
def test_custodian_refuses_bad_envelopes_and_records_nothing(committed, name, make, error, match):
    dep = open_market(committed)
    side, data = make(dep)
    _deliver(dep, side, data)
    try:
        with refused_leaving_no_trace(committed, error, match=match):
            Custodian(dep, dep.circuit()).accept_report(1, side)
    finally:
        _restore_inbox(dep, side)


def test_replayed_envelope_and_second_envelope_are_refused(fresh_market):
    dep = open_market(fresh_market)
    deal_inputs(dep, 1, demo_plans(SIM_GRID, 1, seed=0)[0])
    _commit_both(dep)
    custodian = Custodian(dep, dep.circuit())
    entry = custodian.accept_report(1, "mm")
    assert custodian.accept_report(1, "mm") == entry  # same request again: idempotent, not re-encrypted
    # the custodian lost its round state (crash) but keeps its replay cache: the same envelope resumes ...
    dep.data_dir.round_file("custodian", 1).unlink()
    assert Custodian(dep, dep.circuit()).accept_report(1, "mm")["envelope"] == entry["envelope"]
    # ... while a different envelope for the same (round, dealer) is a replay
    dep.data_dir.round_file("custodian", 1).unlink()
    _deliver(dep, "mm", _sealed(dep))
    with pytest.raises((ReplayError, ProtocolError)):
        Custodian(dep, dep.circuit()).accept_report(1, "mm")


# --- chain: unknown rounds, steps out of order, wrong callers, node down -------------------------------------

def test_unknown_round_is_refused_on_chain(committed):
    dep = open_market(committed)
    with refused_leaving_no_trace(committed, ChainError, match="unknown round"):
        dep.coordinator.commit_report("dealer_mm", 5, b"\x01" * 32)


def test_non_evaluator_cannot_post_an_output(committed):
    dep = open_market(committed)
    with refused_leaving_no_trace(committed, ChainError, match="only an evaluator"):
        dep.coordinator.post_output("dealer_mm", 1, b"\x02" * 32)


def test_leg_before_instruction_is_refused(committed):
    dep = open_market(committed)
    with refused_leaving_no_trace(committed, ChainError, match="Instructed"):
        dep.coordinator.execute_mm_leg("dealer_mm", 1, 404, 4, b"\x05" * 32)


def test_deposit_from_a_non_dealer_is_refused(committed):
    dep = open_market(committed)
    with pytest.raises(ChainError, match="only a dealer"):
        dep.coordinator.deposit("client_mm", 10**15)


def test_custodian_refuses_to_decrypt_without_an_agreed_output(committed):
    dep = open_market(committed)
    with refused_leaving_no_trace(committed, ProtocolError, match="refusing to decrypt"):
        Custodian(dep, dep.circuit()).prepare_instruction(1)


def test_node_down_is_a_clear_error(scratch):
    from chain import connect

    with pytest.raises(ChainUnavailable, match="127.0.0.1:9"):
        connect(scratch, "http://127.0.0.1:9")


def test_evaluator_refuses_a_corrupted_ciphertext_and_posts_nothing(fresh_market):
    from protocol.roles import Evaluator

    dep = open_market(fresh_market)
    deal_inputs(dep, 1, demo_plans(SIM_GRID, 1, seed=0)[0])
    _commit_both(dep)
    custodian = Custodian(dep, dep.circuit())
    custodian.accept_report(1, "mm")
    custodian.accept_report(1, "rm")
    custodian.post_ciphertexts(1)
    rs = dep.coordinator.round(1)
    blob = dep.blobs.path(rs.ciphertext_digest_rm)
    blob.write_bytes(_flip(blob.read_bytes(), 3))
    with pytest.raises(BlobCorrupt, match=rs.ciphertext_digest_rm.hex()):
        Evaluator(dep, "evaluator_0", dep.circuit()).evaluate(1)
    assert dep.coordinator.output_votes(1) == {} and dep.coordinator.phase(1) == RoundPhase.REPORTED


def test_unknown_behaviour_is_refused():
    with pytest.raises(ProtocolError, match="'bribe'"):
        Behaviour.from_dict({"kind": "bribe"})
    with pytest.raises(ProtocolError, match="behaviour.rate"):
        Behaviour.from_dict({"kind": "offer_rate", "rate": "high"})


# --- command line ------------------------------------------------------------------------------------------

def _cli(*args):
    return subprocess.run([sys.executable, "-m", "protocol.cli", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=300)


@pytest.mark.parametrize("args,match", [
    (["verify", "--round", "0"], "--round 0"),
    (["demo", "--grid", "2"], "--grid 2"),
    (["demo", "--evaluators", "2", "--threshold", "3"], "--threshold 3"),
    (["demo", "--rpc", "ftp://x"], "--rpc 'ftp://x'"),
    (["verify", "--rpc", "nohost"], "--rpc 'nohost'"),
], ids=["verify-round-0", "demo-grid-2", "demo-threshold", "demo-rpc-scheme", "verify-rpc-scheme"])
def test_cli_rejects_bad_options_naming_them(scratch, args, match):
    out = _cli(*args, "--data-dir", str(scratch / "none"))
    assert out.returncode == 2 and match in out.stderr, out.stderr
    assert not (scratch / "none").exists()


def test_verify_on_a_directory_without_a_market(scratch):
    out = _cli("verify", "--data-dir", str(scratch), "--json")
    assert out.returncode == 2 and "no market here" in out.stderr


def test_demo_on_an_existing_market_with_another_grid_is_refused(committed):
    out = _cli("demo", "--data-dir", str(committed), "--grid", str(SIM_GRID + 2), "--backend", "simulate")
    assert out.returncode == 2 and f"--grid {SIM_GRID + 2}" in out.stderr and f"grid {SIM_GRID}" in out.stderr
