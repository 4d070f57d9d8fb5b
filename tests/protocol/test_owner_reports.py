"""Dealers encrypt their own reports: the custodian never holds one, and every bad report ends in its dealer's
forfeit by code -- a withheld reveal (deadline), a blob the evaluators refuse (k faults), an input the circuit
flags invalid (the custodian's decrypted flag) -- with an audit that passes on every such round."""
from __future__ import annotations

import json

import numpy as np
import pytest

from chain import ForfeitReason, RoundPhase
from crypto.encoding import canonical_bytes
from protocol.deployment import open_market
from protocol.scenario import deal_inputs, demo_plans

from .conftest import SIM_GRID, audit


def _run(dep, plan, behaviours=None):
    from protocol.rounds import RoundDriver, next_round_id

    rid = next_round_id(dep)
    deal_inputs(dep, rid, plan)
    for role, kind in (behaviours or {}).items():
        path = dep.data_dir.round_file(role, rid, "input")
        data = json.loads(path.read_text())
        data["behaviour"] = {"kind": kind}
        path.write_text(json.dumps(data))
    return rid, RoundDriver(dep, dep.circuit()).run_round(rid)


def _forfeit(dep, rid):
    events = dep.coordinator.events("Forfeited", round_id=rid)
    assert len(events) == 1
    a = events[0].args
    return dep.role_of(a["offender"]), dep.role_of(a["beneficiary"]), ForfeitReason(a["reason"])


@pytest.mark.parametrize("role", ["dealer_mm", "dealer_rm"])
def test_a_withheld_reveal_forfeits_that_dealer(fresh_market, role):
    dep = open_market(fresh_market)
    rid, run = _run(dep, demo_plans(SIM_GRID, 1, seed=0)[0], {role: "skip_reveal"})
    other = "dealer_rm" if role == "dealer_mm" else "dealer_mm"
    assert run["phase"] == "FORFEITED"
    assert _forfeit(dep, rid) == (role, other, ForfeitReason.MISSED_DEADLINE)
    rs = dep.coordinator.round(rid)
    assert rs.ciphertext(role[-2:]) == bytes(32) and rs.ciphertext(other[-2:]) != bytes(32)
    # the withheld blob was never published
    withheld = bytes.fromhex(json.loads(dep.data_dir.round_file(role, rid, "report").read_text())["blob_digest"])
    assert not dep.blobs.path(withheld).exists()
    report = audit(fresh_market)
    assert report["ok"], report["failures"]


@pytest.mark.parametrize("role", ["dealer_mm", "dealer_rm"])
def test_a_malformed_blob_is_refused_by_k_evaluators_and_forfeits(fresh_market, role):
    dep = open_market(fresh_market)
    rid, run = _run(dep, demo_plans(SIM_GRID, 1, seed=0)[0], {role: "malformed_report"})
    other = "dealer_rm" if role == "dealer_mm" else "dealer_mm"
    assert run["phase"] == "FORFEITED"
    assert _forfeit(dep, rid) == (role, other, ForfeitReason.INVALID_REPORT)
    faults = dep.coordinator.events("FaultPosted", round_id=rid)
    assert [f.args["side"] for f in faults] == [0 if role == "dealer_mm" else 1] * dep.threshold
    assert len({f.args["fault_digest"] for f in faults}) == 1  # honest evaluators write the same record
    record = dep.blobs.get(faults[0].args["fault_digest"])
    assert b"truncated" in record and role.encode() in record
    assert dep.coordinator.output_votes(rid) == {}  # nothing was computed
    report = audit(fresh_market)
    assert report["ok"], report["failures"]
    checks = {c["check"] for r in report["rounds"] for c in r["checks"]}
    assert {f"report.{role[-2:]}", "evaluation.fault.evaluator_0", "evaluation.fault.evaluator_1"} <= checks


def test_a_revealed_but_unpublished_blob_is_named_by_the_evaluators_and_forfeits(fresh_market):
    dep = open_market(fresh_market)
    rid, run = _run(dep, demo_plans(SIM_GRID, 1, seed=0)[0], {"dealer_rm": "withhold_blob"})
    assert run["phase"] == "FORFEITED"
    assert _forfeit(dep, rid) == ("dealer_rm", "dealer_mm", ForfeitReason.INVALID_REPORT)
    assert not dep.blobs.path(dep.coordinator.round(rid).ciphertext("rm")).exists()
    record = dep.blobs.get(dep.coordinator.events("FaultPosted", round_id=rid)[0].args["fault_digest"])
    assert b"withheld" in record
    report = audit(fresh_market)
    assert report["ok"], report["failures"]


def test_both_dealers_withholding_cancels_and_the_audit_passes(fresh_market):
    dep = open_market(fresh_market)
    rid, run = _run(dep, demo_plans(SIM_GRID, 1, seed=0)[0],
                    {"dealer_mm": "skip_reveal", "dealer_rm": "skip_reveal"})
    assert run["phase"] == "CANCELLED" and not dep.coordinator.events("Forfeited", round_id=rid)
    report = audit(fresh_market)
    assert report["ok"], report["failures"]


def test_an_invalid_digit_forfeits_its_dealer_through_the_circuit_flag(fresh_market):
    """A digit outside the circuit's range passes every structural check; the circuit's per-dealer invalid flag
    names the dealer and the custodian's attested flag forfeits it."""
    from crypto.circuit import SelectionOutput

    if not hasattr(SelectionOutput, "invalid_mm") and "invalid_mm" not in getattr(SelectionOutput, "__dataclass_fields__", {}):
        pytest.fail("the circuit's output has no per-dealer invalid flags (SelectionOutput.invalid_mm/invalid_rm): "
                    "the owner-encrypted circuit is not merged")
    dep = open_market(fresh_market)
    rid, run = _run(dep, demo_plans(SIM_GRID, 1, seed=0)[0], {"dealer_rm": "invalid_digits"})
    assert run["phase"] == "FORFEITED"
    assert _forfeit(dep, rid) == ("dealer_rm", "dealer_mm", ForfeitReason.INVALID_INPUT)
    assert [e.args["side"] for e in dep.coordinator.events("InputInvalid", round_id=rid)] == [1]
    report = audit(fresh_market)
    assert report["ok"], report["failures"]


# --- the custodian never holds a report in any form -----------------------------------------------------------

def _encodings(values) -> set[bytes]:
    """Ways a list of small integers could be written into a file."""
    ints = [int(v) for v in values]
    out = {json.dumps(ints).encode(), json.dumps(ints, separators=(",", ":")).encode(), json.dumps(ints, indent=2).encode(),
           canonical_bytes(ints), np.asarray(ints, dtype=np.int64).tobytes(),
           np.asarray(ints, dtype=np.int32).tobytes(), ", ".join(map(str, ints)).encode()}
    if all(0 <= v < 256 for v in ints):
        out.add(bytes(ints))
        out.add(bytes(ints).hex().encode())
    return out


def _canaries(dep, rid) -> dict[str, set[bytes]]:
    """Every value planted in both dealers' reports of round ``rid``, in every encoding we can think of."""
    from market.terms import report_offsets
    from protocol.backend import DealerSide

    found = {}
    for role in ("dealer_mm", "dealer_rm"):
        side = role[-2:]
        inp = json.loads(dep.data_dir.round_file(role, rid, "input").read_text())
        state = json.loads(dep.data_dir.round_file(role, rid, "report").read_text())
        offsets = [int(v) for v in report_offsets(dep.terms, side, inp["schedule"])]
        digits = DealerSide(dep.backend, dep.circuit(), dep.public_key()).digits(side, offsets, int(inp["hurdle"]))
        salt = bytes.fromhex(state["salt"])
        found[f"{role} schedule"] = _encodings(inp["schedule"])
        found[f"{role} offsets"] = _encodings(offsets)
        found[f"{role} digits"] = _encodings(digits)
        found[f"{role} report"] = {json.dumps({"schedule": inp["schedule"], "hurdle": inp["hurdle"]}).encode(),
                                   canonical_bytes({"schedule": offsets, "hurdle": int(inp["hurdle"])})}
        found[f"{role} salt"] = {salt, salt.hex().encode()}
    return found


def test_the_custodian_never_holds_a_report_in_any_form(fresh_market):
    dep = open_market(fresh_market)
    plans = demo_plans(SIM_GRID, 4, seed=3)
    canaries = {}
    for plan in plans:
        rid, _ = _run(dep, plan)
        canaries.update({f"round {rid} {k}": v for k, v in _canaries(dep, rid).items()})
    folders = [dep.data_dir.role("custodian"), dep.data_dir.inbox("custodian")]
    files = [p for folder in folders if folder.exists() for p in folder.rglob("*") if p.is_file()]
    assert files, "the custodian's folders hold nothing: the search would prove nothing"
    # the canaries are really in the dealers' own folders (the search can find them)
    dealer_bytes = b"".join(b"".join(p.read_bytes().split()) for p in dep.data_dir.role("dealer_mm").rglob("*")
                            if p.is_file())
    assert any(b"".join(enc.split()) in dealer_bytes for enc in canaries["round 1 dealer_mm schedule"])
    assert any(enc in dealer_bytes for enc in canaries["round 1 dealer_mm salt"])
    def contents(p):  # the bytes, and the same with all whitespace removed (JSON written with any indentation)
        data = p.read_bytes()
        return data, b"".join(data.split())

    def hits(paths):
        return [(str(p), name) for p in paths for name, encs in canaries.items() for enc in encs
                if len(enc) >= 8 and any(enc in c or b"".join(enc.split()) in c for c in contents(p))]

    assert hits(files) == []
    # the search does find a leak: a dealer's private report file copied into the custodian's folder
    leak = dep.data_dir.role("custodian") / "leaked.json"
    leak.write_bytes(dep.data_dir.round_file("dealer_rm", 2, "report").read_bytes()
                     + dep.data_dir.round_file("dealer_rm", 2, "input").read_bytes())
    assert {"round 2 dealer_rm salt", "round 2 dealer_rm schedule"} <= {name for _, name in hits([leak])}
    assert not list(dep.data_dir.inbox("custodian").glob("*report*"))
