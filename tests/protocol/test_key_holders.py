"""Key holders without FHE: the simulate backend has none, and bad holder terms are refused before anything exists.

The real-FHE market with 2-of-3 holders is tested in test_threshold_round.py.
"""
from __future__ import annotations

import pytest

from crypto.encoding import canonical_loads
from market.terms import MarketTerms
from protocol.deployment import DeploymentError, create_market, open_market
from protocol.scenario import DEFAULT_BASE_RATE

from .conftest import audit


def test_a_simulate_market_has_no_key_holders(sim_demo):
    path, runs = sim_demo
    dep = open_market(path)
    assert dep.descriptor["key_holders"] == {"roles": [], "threshold": 0, "slots": 0}
    assert dep.descriptor["digests"]["threshold_setup"] is None
    onchain = dep.coordinator.terms()
    assert onchain.holders == () and onchain.holder_threshold == 0 and dep.coordinator.holder_count() == 0
    for rid, _, _ in runs:
        rs = dep.coordinator.round(rid)
        assert (rs.mask_shares, rs.table_shares) == (0, 0)
        if rs.attestation_digest != bytes(32):  # the custodian decoded the plaintext output: no shares named
            body = canonical_loads(dep.blobs.get(rs.attestation_digest))["body"]
            assert body["mask_shares"] == body["table_shares"] == []
    report = audit(path)
    checks = {c["check"]: c for r in report["rounds"] for c in r["checks"]}
    assert report["ok"] and checks["key_holders"]["ok"] and "opening" not in checks


@pytest.mark.parametrize("holders, holder_threshold, slots, match", [
    (3, 4, 32, r"--holders 3 --holder-threshold 4: threshold: k = 4 with n = 3 holders"),
    (3, 1, 32, r"--holders 3 --holder-threshold 1: threshold: k = 1"),
    (17, 2, 32, r"--holders 17 --holder-threshold 2: threshold: k = 2 with n = 17 holders"),
    (3, 2, 0, r"slots must be in 1\.\.1000, got 0"),
    (3, 2, 1001, r"slots must be in 1\.\.1000, got 1001"),
])
def test_bad_holder_terms_are_refused_before_anything_exists(scratch, holders, holder_threshold, slots, match):
    path = scratch / "market"
    with pytest.raises(DeploymentError, match=match):
        create_market(path, MarketTerms(grid=4, base_rate=DEFAULT_BASE_RATE), backend="fhe", evaluators=1,
                      threshold=1, holders=holders, holder_threshold=holder_threshold, slots=slots)
    assert not path.exists()
