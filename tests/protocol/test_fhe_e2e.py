"""Real TFHE end to end (small grid): on the embedded chain with 2-of-2 evaluators, and on anvil.

Every step is the real one: each dealer encrypts its own report under the market's TFHE-rs public key and
commits to it before revealing it, two evaluators open both lists and run the compiled circuit on them and
must agree byte for byte, 2-of-3 key holders open only the agreed output (the custodian keeps no secret key),
and an independent auditor replays the evaluation from the published lists and recombines the opening from the
holders' public shares. The custodian's folders never hold a report (canary search).
"""
from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from market.terms import MarketTerms
from protocol.audit import Auditor
from protocol.report import write_transcript
from protocol.deployment import create_market, open_market
from protocol.roles import DealerAgent
from protocol.scenario import DEFAULT_BASE_RATE, demo_plans

from .conftest import run_plans

pytestmark = [pytest.mark.fhe, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
FHE_GRID = 4


def _reference(dep, plan):
    from market.selection import select_equilibrium

    return select_equilibrium(plan.schedules(), plan.hurdle_mm, plan.hurdle_rm, dep.terms.hurdle_mode)


def test_real_fhe_rounds_on_the_embedded_chain(fhe_threshold_market):
    """The shared real-FHE market (2-of-2 evaluators, 2-of-3 key holders, two demo rounds; its threshold
    openings and audit: test_threshold_round.py)."""
    path, runs, _ = fhe_threshold_market
    dep = open_market(path)
    assert [r["phase"] for _, _, r in runs] == ["SETTLED", "SETTLED"]
    for rid, plan, _ in runs:
        ref = _reference(dep, plan)
        instr = DealerAgent(dep, "dealer_mm").instruction(rid)
        assert (instr["volume"], instr["r_mm"], instr["r_rm"], instr["r_bd_x2"]) == (ref.volume, ref.r_mm, ref.r_rm,
                                                                                     ref.r_bd_x2)
        rs = dep.coordinator.round(rid)
        # both evaluators posted the same digest; the dealers' blobs are real TFHE-rs lists, not plaintext
        assert set(dep.coordinator.output_votes(rid).values()) == {rs.output_digest}
        assert len(dep.coordinator.output_votes(rid)) == 2
        from crypto.encoding import canonical_loads

        blob = canonical_loads(dep.blobs.get(rs.ciphertext_digest_mm))
        assert blob["proven"] is False and isinstance(blob["list"], bytes) and "values" not in blob
        # the custodian's folders and inbox never held this round's reports, in any form
        from .test_owner_reports import _canaries

        canaries = _canaries(dep, rid)
        held = b"".join(p.read_bytes() for folder in (dep.data_dir.role("custodian"), dep.data_dir.inbox("custodian"))
                        for p in folder.rglob("*") if p.is_file())
        assert [name for name, encs in canaries.items() for enc in encs if len(enc) >= 8 and enc in held] == []
    # no secret key file anywhere: the custodian dealt its key to the holders and destroyed it
    assert not list(path.rglob("fhe-secret.key")) and not list(path.rglob("client_key.bin"))


@pytest.mark.anvil
def test_real_fhe_rounds_on_anvil_with_an_independent_verify(scratch, anvil_url):
    path = scratch / "market"
    dep = create_market(path, MarketTerms(grid=FHE_GRID, base_rate=DEFAULT_BASE_RATE), backend="fhe",
                        evaluators=1, threshold=1, rpc_url=anvil_url)
    plans = demo_plans(FHE_GRID, 2, seed=0)  # the JPM round and the hurdle round
    runs, _ = run_plans(dep, plans)
    assert [r["phase"] for _, _, r in runs] == ["SETTLED", "SETTLED"]
    for rid, plan, _ in runs:
        ref = _reference(dep, plan)
        rs = dep.coordinator.round(rid)
        assert (rs.mm_record.rate, rs.mm_record.volume, rs.rm_record.rate) == (ref.r_mm, ref.volume, ref.r_rm)
    for rid, _, run in runs:
        write_transcript(dep, rid, run)
    # in process, the replay is byte-identical to the evaluator's output
    report = Auditor(open_market(path, anvil_url, read_only=True)).run().as_dict()
    assert report["ok"], report["failures"]
    # an independent process checks everything from public data, the TFHE replay byte for byte: it runs under
    # the same fixed FFT plan as the evaluator (crypto/fhe_runtime.py), so nothing may fail
    out = subprocess.run([sys.executable, "-m", "protocol", "verify", "--data-dir", str(path), "--rpc", anvil_url,
                          "--json"], capture_output=True, text=True, cwd=ROOT, timeout=900)
    independent = json.loads(out.stdout)
    assert independent["failures"] == [] and independent["ok"] is True
    assert out.returncode == 0
    checks = {c["check"] for r in independent["rounds"] for c in r["checks"]}
    assert {"evaluation.replay", "attestation.signature", "report.mm", "report.rm", "commit_reveal.match",
            "money.balance", "code.identity", "storage.round", "execution.mm", "transcript.anchors"} <= checks
