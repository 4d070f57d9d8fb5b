"""Bad-input catalogue: out-of-range reports, crafted report blobs, reveals out of order, late or not
matching, unknown rounds, steps out of order, a node that is down, bad CLI input.  Each case must fail with a
clear error naming the field/value (for a report: the dealer, the round and the reason) and leave nothing
half-recorded: no new blob, no custodian state, no chain change.
"""
from __future__ import annotations

import contextlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from chain import ChainError, ChainUnavailable, RoundPhase
from crypto.encoding import canonical_bytes
from market.terms import ReportError
from protocol.blobstore import BlobCorrupt
from protocol.deployment import open_market
from protocol.backend import digit_count
from protocol.roles import Behaviour, Custodian, DealerAgent, ProtocolError
from protocol.scenario import deal_inputs, demo_plans

from .conftest import SIM_GRID

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def committed(sim_template, protocol_root):
    """Round 1 in phase Revealing: both dealers deposited and committed; no blob published yet."""
    path = protocol_root / "bad-input" / "market"
    shutil.copytree(sim_template, path, symlinks=True)
    dep = open_market(path)
    deal_inputs(dep, 1, demo_plans(SIM_GRID, 1, seed=0)[0])
    _commit_both(dep)
    assert dep.coordinator.phase(1) == RoundPhase.REVEALING
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


# --- reveal: before both commitments, late, not matching the commitment ----------------------------------

def test_reveal_before_both_commitments_names_dealer_round_and_reason(fresh_market):
    dep = open_market(fresh_market)
    deal_inputs(dep, 1, demo_plans(SIM_GRID, 1, seed=0)[0])
    mm = DealerAgent(dep, "dealer_mm")
    for role in ("dealer_mm", "dealer_rm"):
        DealerAgent(dep, role).ensure_deposit()
    mm.commit(1)
    with refused_leaving_no_trace(fresh_market, ProtocolError,
                                  match=r"round 1: dealer_mm cannot reveal its report: the other dealer has not "
                                        r"committed"):
        mm.reveal(1)
    blob = bytes.fromhex(mm.prepare_report(1)["blob_digest"])
    assert not dep.blobs.path(blob).exists()  # never published before both commitments are bound


def test_late_reveal_is_refused_before_sending(fresh_market):
    dep = open_market(fresh_market)
    deal_inputs(dep, 1, demo_plans(SIM_GRID, 1, seed=0)[0])
    _commit_both(dep)
    dep.chain.mine(dep.coordinator.deadline(1) - dep.chain.block_number)
    with refused_leaving_no_trace(fresh_market, ProtocolError,
                                  match=r"round 1: dealer_rm cannot reveal its report: late, the reveal deadline"):
        DealerAgent(dep, "dealer_rm").reveal(1)


def test_reveal_of_another_blob_is_refused_before_sending(fresh_market):
    dep = open_market(fresh_market)
    deal_inputs(dep, 1, demo_plans(SIM_GRID, 1, seed=0)[0])
    _commit_both(dep)
    path = dep.data_dir.round_file("dealer_mm", 1, "blob")
    blob = bytes.fromhex(json.loads(path.read_text())["blob"])
    path.write_text(json.dumps({"blob": _flip(blob).hex()}))
    with refused_leaving_no_trace(fresh_market, ProtocolError,
                                  match=r"round 1: dealer_mm cannot reveal its report: its blob hashes to"):
        DealerAgent(dep, "dealer_mm").reveal(1)


# --- evaluator side: crafted report blobs are refused before anything is computed --------------------------

def _flip(data: bytes, at: int = -5) -> bytes:
    b = bytearray(data)
    b[at] ^= 0x01
    return bytes(b)


def _blob_cases():
    from protocol.backend import MAX_SIMULATE_BLOB_BYTES, report_binding, seal_simulated_report

    def sealed(dep, *, round_id=1, contract=None, side="mm", key=None, digits=None):
        count = digit_count(dep.circuit())
        binding = report_binding(dep.chain_id, contract or dep.contract_address, round_id, side)
        return seal_simulated_report(key or dep.public_key(), digits or [1] * count, binding)

    return [
        ("truncated", lambda dep: sealed(dep)[:-9], "truncated"),
        ("garbage bytes", lambda dep: b"\xff not a report", "truncated"),
        ("a TLV list, not a report", lambda dep: canonical_bytes(["not", "a", "report"]), "malformed"),
        ("oversized", lambda dep: b"d" + bytes(MAX_SIMULATE_BLOB_BYTES), "oversized"),
        ("bound to another round", lambda dep: sealed(dep, round_id=2), "binding-mismatch"),
        ("bound to another contract", lambda dep: sealed(dep, contract="0x" + "11" * 20), "binding-mismatch"),
        ("dealer_rm's binding in dealer_mm's slot", lambda dep: sealed(dep, side="rm"), "binding-mismatch"),
        ("sealed for another public key", lambda dep: sealed(dep, key=b"another key"), "other-public-key"),
        ("wrong digit count", lambda dep: sealed(dep, digits=[1] * (digit_count(dep.circuit()) + 1)),
         "wrong-digit-count"),
        ("digit wider than a block", lambda dep: sealed(dep, digits=[40] + [1] * (digit_count(dep.circuit()) - 1)),
         "wrong-block-width"),
    ]


@pytest.mark.parametrize("name,make,reason", _blob_cases(), ids=[c[0] for c in _blob_cases()])
def test_evaluator_refuses_crafted_blobs_naming_dealer_round_and_reason(committed, name, make, reason):
    from crypto.tfhers import OwnerReportError
    from protocol.backend import report_binding
    from protocol.roles import Evaluator

    dep = open_market(committed)
    runner = Evaluator(dep, "evaluator_0", dep.circuit()).runner
    with refused_leaving_no_trace(committed, OwnerReportError,
                                  match=rf"owner report of dealer_mm for round 1 rejected \({reason}\)"):
        runner.open_report(make(dep), report_binding(dep.chain_id, dep.contract_address, 1, "mm"))


# --- chain: unknown rounds, steps out of order, wrong callers, node down -------------------------------------

def test_unknown_round_is_refused_on_chain(committed):
    dep = open_market(committed)
    with refused_leaving_no_trace(committed, ChainError, match="unknown round"):
        dep.coordinator.commit_report("dealer_mm", 5, b"\x01" * 32, b"\x02" * 32)


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
    with refused_leaving_no_trace(committed, ProtocolError, match="refusing to open any output"):
        Custodian(dep, dep.circuit()).prepare_instruction(1)


def test_node_down_is_a_clear_error(scratch):
    from chain import connect

    with pytest.raises(ChainUnavailable, match="127.0.0.1:9"):
        connect(scratch, "http://127.0.0.1:9")


def test_evaluator_refuses_a_corrupted_blob_and_posts_nothing(fresh_market):
    from protocol.roles import Evaluator

    dep = open_market(fresh_market)
    deal_inputs(dep, 1, demo_plans(SIM_GRID, 1, seed=0)[0])
    _commit_both(dep)
    for role in ("dealer_mm", "dealer_rm"):
        DealerAgent(dep, role).reveal(1)
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
    return subprocess.run([sys.executable, "-m", "protocol", *args], capture_output=True, text=True, cwd=ROOT,
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
