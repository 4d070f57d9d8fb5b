"""The auditor: passes on an honest market and names the item when any published byte or digest changes.

Each tamper case flips one byte of one blob kind (or one digest of a public transcript) in a copy of the
four-round demo market and checks that verification fails on that item -- blob kinds: circuit artefact,
evaluation keys, the market's public key, both dealers' report blobs, the output, the attestation, both sealed
instructions, both dealers' execution records and the offers and acceptances they name.  A swapped report
blob is named, and so are forged histories the contract would refuse (a reveal before both commitments, a late
reveal, a reveal that does not open its commitment).  A dishonest evaluator (2-of-3: it posts a wrong digest, the honest two carry the round)
is named as well.  The auditor never reads roles/ (the test hides it).
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from protocol.layout import DataDir
from crypto.encoding import canonical_loads
from protocol.deployment import create_market, open_market
from protocol.scenario import demo_plans

from .conftest import SIM_GRID, audit as _audit

ROOT = Path(__file__).resolve().parents[2]




def _blob_digests(path: Path, round_id: int) -> dict[str, bytes]:
    """kind -> digest of every published blob of a round, found from the chain (as the auditor does)."""
    dep = open_market(path)
    terms = dep.coordinator.terms()
    rs = dep.coordinator.round(round_id)
    body = canonical_loads(dep.blobs.get(rs.attestation_digest))["body"]
    out = {"circuit": terms.circuit_digest, "evaluation_keys": terms.evaluation_keys_digest,
           "public_key": dep.digest("public_key"),
           "report_mm": rs.ciphertext_digest_mm, "report_rm": rs.ciphertext_digest_rm,
           "output": rs.output_digest, "attestation": rs.attestation_digest}
    for side in ("mm", "rm"):
        out[f"sealed_instruction_{side}"] = body[f"sealed_instruction_{side}"]
    for leg in dep.coordinator.events("LegExecuted", round_id=round_id):  # execution records anchor the rest
        side = "mm" if leg.args["side"] == 0 else "rm"
        out[f"execution_record_{side}"] = leg.args["evidence"]
        record = canonical_loads(dep.blobs.get(leg.args["evidence"]))["body"]
        out[f"offer_{side}"], out[f"acceptance_{side}"] = record["offer"], record["acceptance"]
    return out


BLOB_KINDS = ["circuit", "evaluation_keys", "public_key", "report_mm", "report_rm", "output", "attestation",
              "sealed_instruction_mm", "sealed_instruction_rm", "execution_record_mm", "execution_record_rm", "offer_mm", "offer_rm",
              "acceptance_mm", "acceptance_rm"]


def test_honest_market_verifies_from_public_data_only(demo_copy):
    hidden = demo_copy.parent / "roles-hidden"
    DataDir(demo_copy).roles.rename(hidden)  # the auditor must not need any role's folder
    try:
        report = _audit(demo_copy)
    finally:
        hidden.rename(DataDir(demo_copy).roles)
    assert report["ok"], report["failures"]
    rounds = {r["round"]: {c["check"] for c in r["checks"]} for r in report["rounds"]}
    assert set(rounds) == {0, 1, 2, 3, 4}
    for rid in (1, 2, 4):
        assert {"phase.order", "commit_reveal.order", "commit_reveal.match", "report.mm", "report.rm",
                "evaluation.replay", "attestation.signature", "attestation.flags", "sealed_instruction.rm"} <= rounds[rid]
    assert "forfeiture" in rounds[4] and "execution.no_trade" in rounds[3]


@pytest.mark.parametrize("kind", BLOB_KINDS)
def test_flipping_a_byte_of_any_blob_kind_fails_and_names_it(demo_copy, kind):
    digest = _blob_digests(demo_copy, 1)[kind]
    blob = DataDir(demo_copy).blobs / digest.hex()
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0x01
    blob.write_bytes(bytes(data))
    report = _audit(demo_copy, [1])
    assert not report["ok"]
    named = [f for f in report["failures"] if f["check"] == f"blob.{kind}"]
    assert named and digest.hex() in named[0]["detail"], report["failures"]


def test_a_changed_digest_in_a_public_transcript_is_named(demo_copy):
    path = DataDir(demo_copy).transcript(2)
    t = json.loads(path.read_text())
    t["digests"]["output"] = "00" * 32
    path.write_text(json.dumps(t))
    report = _audit(demo_copy, [2])
    assert [f["check"] for f in report["failures"]] == ["transcript"]
    assert "output" in report["failures"][0]["detail"]


def test_a_missing_blob_is_named(demo_copy):
    digest = _blob_digests(demo_copy, 2)["report_rm"]
    (DataDir(demo_copy).blobs / digest.hex()).unlink()
    report = _audit(demo_copy, [2])
    assert any(f["check"] == "blob.report_rm" and digest.hex() in f["detail"] for f in report["failures"])


def test_a_swapped_report_blob_is_named(demo_copy):
    """dealer_rm's published blob replaced by dealer_mm's (a valid report, bound to the other dealer)."""
    digests = _blob_digests(demo_copy, 1)
    blobs = DataDir(demo_copy).blobs
    (blobs / digests["report_rm"].hex()).write_bytes((blobs / digests["report_mm"].hex()).read_bytes())
    report = _audit(demo_copy, [1])
    named = [f for f in report["failures"] if f["check"] == "blob.report_rm"]
    assert named and digests["report_rm"].hex() in named[0]["detail"], report["failures"]


def _forged_history(path: Path, forge):
    """read_history over round 1's real events after ``forge(events)`` rewrote them (a history the contract
    would refuse, as a forged node could serve it)."""
    import dataclasses

    from protocol.audit_history import read_history
    from protocol.deployment import published_coordinator_terms

    dep = open_market(path, read_only=True)
    real = dep.coordinator

    class Node:  # the real node, except that a forged future block shows the head's balance
        transaction = staticmethod(real.chain.transaction)

        @staticmethod
        def balance_at(address, block):
            return real.chain.balance_at(address, min(block, real.chain.block_number))

    class Forged:
        chain, address = Node, real.address

        @staticmethod
        def events(*_a, **_k):
            return forge([e for e in real.events() if e.args.get("round_id", 1) == 1], dataclasses.replace)

    return read_history(dep, Forged, published_coordinator_terms(dep)).rounds[1].problems


def test_a_forged_reveal_before_both_commitments_is_named(demo_copy):
    def forge(events, replace):
        commits = [i for i, e in enumerate(events) if e.name == "ReportCommitted"]
        reveal = next(i for i, e in enumerate(events) if e.name == "ReportRevealed")
        moved = replace(events[reveal], block_number=events[commits[0]].block_number,
                        log_index=events[commits[0]].log_index + 1)
        return events[:commits[1]] + [moved] + [e for i, e in enumerate(events[commits[1]:], commits[1]) if i != reveal]

    problems = _forged_history(demo_copy, forge)
    assert any("revealed" in p and "before both dealers committed" in p for p in problems["commit_reveal.order"]), problems


def test_a_forged_late_reveal_is_named(demo_copy):
    def forge(events, replace):  # dealer_rm's reveal, and everything after it, 1000 blocks later
        late = next(i for i, e in enumerate(events) if e.name == "ReportRevealed" and e.args["side"] == 1)
        return events[:late] + [replace(e, block_number=e.block_number + 1000) for e in events[late:]]

    problems = _forged_history(demo_copy, forge)
    assert any("ReportRevealed" in p and "after the Revealing deadline" in p for p in problems["history.deadlines"]), problems


def test_a_forged_reveal_of_another_blob_is_named(demo_copy):
    def forge(events, replace):
        return [replace(e, args={**e.args, "blob_digest": b"\x77" * 32}) if e.name == "ReportRevealed"
                and e.args["side"] == 0 else e for e in events]

    problems = _forged_history(demo_copy, forge)
    assert any("dealer_mm's reveal 7777" in p and "does not open its blob commitment" in p
               for p in problems["commit_reveal.match"]), problems


def test_a_dishonest_evaluator_is_named(scratch):
    from market.terms import MarketTerms
    from protocol.rounds import RoundDriver
    from protocol.scenario import DEFAULT_BASE_RATE, deal_inputs

    path = scratch / "market"
    dep = create_market(path, MarketTerms(grid=SIM_GRID, base_rate=DEFAULT_BASE_RATE), backend="simulate",
                        evaluators=3, threshold=2)
    plan = demo_plans(SIM_GRID, 1, seed=0)[0]
    deal_inputs(dep, 1, plan)
    driver = RoundDriver(dep, dep.circuit())
    # run up to Reported by crashing nothing: drive the commit/report steps through the agents
    for role in ("dealer_mm", "dealer_rm"):
        driver.agent(role).ensure_deposit()
    for role in ("dealer_mm", "dealer_rm"):
        driver.agent(role).commit(1)
    for role in ("dealer_mm", "dealer_rm"):
        driver.agent(role).reveal(1)
    dep.coordinator.post_output("evaluator_0", 1, b"\xee" * 32)  # a wrong digest
    result = driver.run_round(1)
    assert result["phase"] == "SETTLED"
    from protocol.report import write_transcript

    write_transcript(dep, 1, result)
    report = _audit(path, [1])
    assert [f["check"] for f in report["failures"]] == ["evaluation.vote.evaluator_0"]
    assert "ee" * 32 in report["failures"][0]["detail"]


def test_verify_cli_exit_status_and_json(demo_copy):
    ok = subprocess.run([sys.executable, "-m", "protocol", "verify", "--data-dir", str(demo_copy), "--json",
                         "--round", "3"], capture_output=True, text=True, cwd=ROOT, timeout=600)
    report = json.loads(ok.stdout)
    assert ok.returncode == 0 and report["ok"], report["failures"]
    assert [r["round"] for r in report["rounds"]] == [0, 3]
    digest = _blob_digests(demo_copy, 3)["attestation"]
    blob = DataDir(demo_copy).blobs / digest.hex()
    blob.write_bytes(blob.read_bytes()[:-1] + bytes([blob.read_bytes()[-1] ^ 1]))
    bad = subprocess.run([sys.executable, "-m", "protocol", "verify", "--data-dir", str(demo_copy), "--json",
                          "--round", "3"], capture_output=True, text=True, cwd=ROOT, timeout=600)
    report = json.loads(bad.stdout)
    assert bad.returncode == 1 and not report["ok"]
    assert {"round": 3, "check": "blob.attestation"} == {k: report["failures"][0][k] for k in ("round", "check")}


# --- key holders (real FHE market, 2-of-3 holders: tests/protocol/conftest.py fhe_threshold_market) -------------

def _holder_shares(path: Path, round_id: int):
    from protocol.opening import posted_shares

    return posted_shares(open_market(path), round_id)


@pytest.mark.fhe
@pytest.mark.slow
def test_a_missing_share_blob_is_named_with_its_holder(fhe_threshold_copy):
    table = _holder_shares(fhe_threshold_copy, 1)[1][1]  # key_holder_2's table share of round 1
    (DataDir(fhe_threshold_copy).blobs / table.digest.hex()).unlink()
    report = _audit(fhe_threshold_copy, [1])
    failed = {f["check"]: f["detail"] for f in report["failures"]}
    assert set(failed) == {"blob.share_table", "opening.share.key_holder_2"}, report["failures"]
    assert table.digest.hex() in failed["blob.share_table"]
    assert failed["opening.share.key_holder_2"].startswith("round 1: share from holder key_holder_2")
    checks = {c["check"]: c for r in report["rounds"] for c in r["checks"] if r["round"] == 1}
    assert checks["opening"]["ok"] and "key_holder_1, key_holder_3" in checks["opening"]["detail"]


def _audit_with_events(path: Path, forge, rounds=(1,)):
    """The auditor's report when the node serves ``forge(events, replace)`` instead of the real events."""
    import dataclasses

    from protocol.audit import Auditor

    dep = open_market(path, read_only=True)
    real = dep.coordinator.events
    dep.coordinator.events = lambda *a, **k: forge(real(*a, **k), dataclasses.replace)
    return Auditor(dep).run(list(rounds)).as_dict()


@pytest.mark.fhe
@pytest.mark.slow
def test_a_cheating_holder_is_attributed(fhe_threshold_copy):
    """key_holder_3 posts a table share whose values are all off by one (both shares it keeps): the copies of
    each replicated share disagree, nothing opens, and the audit names key_holder_3."""
    import numpy as np

    from crypto.threshold import ShareBlob
    from protocol.blobstore import BlobStore

    dep = open_market(fhe_threshold_copy)
    setup = dep.threshold_setup()
    honest = _holder_shares(fhe_threshold_copy, 1)[1][2]
    share = ShareBlob.parse(setup, dep.blobs.get(honest.digest))
    lie = {j: (v.astype(np.int64) + 1) % setup.table_modulus for j, v in share.values.items()}
    cheat = BlobStore(DataDir(fhe_threshold_copy).blobs).put(ShareBlob(
        "table", share.setup_id, share.holder, share.round, share.ciphertext, share.slot, share.opened, lie).to_bytes())

    def forge(events, replace):
        return [replace(e, args={**e.args, "share_digest": cheat}) if e.name == "SharePosted"
                and e.args["share_digest"] == honest.digest else e for e in events]

    report = _audit_with_events(fhe_threshold_copy, forge)
    failed = {f["check"]: f["detail"] for f in report["failures"]}
    assert "cheater: key_holder_3" in failed["opening"], report["failures"]


@pytest.mark.fhe
@pytest.mark.slow
def test_forged_share_events_are_named(fhe_threshold_copy):
    from protocol.audit_history import read_history
    from protocol.deployment import published_coordinator_terms

    dep = open_market(fhe_threshold_copy, read_only=True)
    dealer = dep.address("dealer_mm")
    events = [e for e in dep.coordinator.events() if e.args.get("round_id", 1) == 1]

    def problems(forged):
        class Forged:
            chain, address = dep.coordinator.chain, dep.coordinator.address

            @staticmethod
            def events(*_a, **_k):
                return forged

        return read_history(dep, Forged, published_coordinator_terms(dep)).rounds[1].problems

    masks = [i for i, e in enumerate(events) if e.name == "SharePosted" and e.args["stage"] == 0]
    # only one mask share on chain before the table shares (the other two dropped)
    early = problems([e for i, e in enumerate(events) if i not in masks[1:]])
    assert any("table share" in p and "before its own mask share or before 2 mask shares" in p
               for p in early["phase.order"]), early
    # the instruction before k table shares (every table share dropped)
    untabled = problems([e for e in events if not (e.name == "SharePosted" and e.args["stage"] == 1)])
    assert any("InstructionPosted" in p and "after 0 table shares, the terms need 2" in p
               for p in untabled["phase.order"]), untabled
    # a share posted in the name of an account that is no key holder
    import dataclasses

    stranger = problems([dataclasses.replace(e, args={**e.args, "holder": dealer}) if i == masks[0] else e
                         for i, e in enumerate(events)])
    assert any("SharePosted" in p and "not by a key holder" in p for p in stranger["history.senders"]), stranger


@pytest.mark.fhe
@pytest.mark.slow
def test_a_round_still_opening_is_in_progress_not_tampering(fhe_threshold_copy):
    """Round 1 as the events would tell it in the middle of its opening: in phase Computed, the three mask
    shares on chain, no table share and no attestation yet."""
    from chain import RoundPhase
    from protocol.audit import Auditor
    from protocol.audit_history import read_history
    from protocol.deployment import published_coordinator_terms

    dep = open_market(fhe_threshold_copy, read_only=True)
    auditor = Auditor(dep)  # only its opening check runs: no replay
    h = read_history(dep, dep.coordinator, published_coordinator_terms(dep)).rounds[1]
    h.shares = {0: h.shares[0]}
    h.phase = RoundPhase.COMPUTED
    auditor.check_opening(h, h.state(), None)
    assert auditor.report.failures == [] or auditor.report.failures[0]["check"] == "audit.checks"
    [opening] = auditor.report.rounds[1]
    assert opening["ok"] and opening["detail"].startswith("in progress: 3 mask and 0 table shares on chain")
