"""The audit's tamper table on anvil: each row must be caught, and named for what it is.

A four-round market (simulate backend) runs on the session's anvil node. Every test works on a copy of the
data directory and takes an ``evm_snapshot`` first, reverting the node afterwards, so the tampers do not leak.

| tamper | caught by |
|---|---|
| flip a byte of a dealer's report blob | blob.report_mm |
| ``anvil_setStorageAt`` rewrites a round's revealed blob digest | storage.round only (not the evaluators or the attestation) |
| flip a byte of an offer / acceptance blob | blob.offer_mm / blob.acceptance_rm |
| ``anvil_setStorageAt`` credit for an outsider, it withdraws everything, a deposit slot zeroed | money.withdrawals, money.balance, storage.balances |
| ``anvil_setCode`` with patched challenge window and deposit minimum, or patched runtime code | code.identity |
| ``anvil_rollback`` + ``anvil_mine`` erase the last round | transcript (round 4: transcript present, chain has no such round) |
| edit of the cached event index under the data directory | nothing: a healthy chain still verifies |
| ether forced into the contract | nothing (a money.surplus notice) |
"""
from __future__ import annotations

import json
import shutil

import pytest
from eth_utils import keccak, to_checksum_address

from protocol.layout import DataDir
from chain.paths import INDEX_DIR, chain_dir
from protocol.audit import Auditor
from protocol.deployment import create_market, open_market

from .conftest import SIM_GRID, run_plans

pytestmark = pytest.mark.anvil

ROUNDS_SLOT, DEPOSITS_SLOT, WITHDRAWABLE_SLOT = 19, 21, 22  # Coordinator.vy storage layout (vyper -f layout)
CIPHERTEXT_MM_FIELD = 5  # Round struct: state, commitment_mm/rm, blob_commitment_mm/rm, ciphertext_digest_mm, ...


@pytest.fixture(scope="module")
def anvil_market(anvil_url, protocol_root):
    from market.terms import MarketTerms
    from protocol.report import write_transcript
    from protocol.scenario import DEFAULT_BASE_RATE, demo_plans

    path = protocol_root / "anvil-audit" / "market"
    dep = create_market(path, MarketTerms(grid=SIM_GRID, base_rate=DEFAULT_BASE_RATE), backend="simulate",
                        evaluators=2, threshold=2, rpc_url=anvil_url)
    runs, _ = run_plans(dep, demo_plans(SIM_GRID, 4, seed=0))
    for rid, _, run in runs:
        write_transcript(dep, rid, run)
    return path


@pytest.fixture
def market(anvil_market, scratch):
    """A copy of the anvil market; the node is reverted to its state before the test afterwards."""
    target = scratch / "market"
    shutil.copytree(anvil_market, target, symlinks=True)
    dep = open_market(target)
    snapshot = _rpc(dep, "evm_snapshot", [])
    yield target
    if (target / "rolled-back").exists():
        return  # anvil_rollback drops the snapshots; that test runs last in this module
    assert _rpc(dep, "evm_revert", [snapshot]) is True


def _rpc(dep, method: str, params: list):
    response = dep.chain.w3.provider.make_request(method, params)
    assert "error" not in response, response
    return response["result"]


def _audit(path, rounds=None) -> dict:
    return Auditor(open_market(path, read_only=True)).run(rounds).as_dict()


def _word(value: int) -> str:
    return "0x" + value.to_bytes(32, "big").hex()


def _map_slot(dep, slot: int, key: bytes, known: int | None = None) -> int:
    """keccak256(slot . key) (vyper's HashMap layout), checked against a known value when given."""
    located = int.from_bytes(keccak(slot.to_bytes(32, "big") + key.rjust(32, b"\0")), "big")
    if known is not None:
        stored = int(_rpc(dep, "eth_getStorageAt", [dep.contract_address, hex(located), "latest"]), 16)
        assert stored == known, "the storage layout assumed by the test is wrong"
    return located


def _flip(path, digest: bytes) -> None:
    blob = DataDir(path).blobs / digest.hex()
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 1
    blob.write_bytes(bytes(data))


def _failing(report) -> set[str]:
    return {f["check"] for f in report["failures"]}


def test_the_honest_anvil_market_verifies(market):
    report = _audit(market)
    assert report["ok"], report["failures"]
    assert report["notices"] == []


def test_flipped_report_blob(market):
    rs = open_market(market).coordinator.round(1)
    _flip(market, rs.ciphertext_digest_mm)
    report = _audit(market)
    assert "blob.report_mm" in _failing(report)


def test_storage_rewrite_of_a_ciphertext_digest_is_named_storage_vs_events(market):
    dep = open_market(market)
    rs = dep.coordinator.round(1)
    base = _map_slot(dep, ROUNDS_SLOT, (1).to_bytes(32, "big"))
    slot = base + CIPHERTEXT_MM_FIELD
    assert _rpc(dep, "eth_getStorageAt", [dep.contract_address, hex(slot), "latest"]) == "0x" + rs.ciphertext_digest_mm.hex()
    _rpc(dep, "anvil_setStorageAt", [dep.contract_address, hex(slot), "0x" + "ab" * 32])
    report = _audit(market)
    assert [(f["round"], f["check"]) for f in report["failures"]] == [(1, "storage.round")], report["failures"]
    detail = report["failures"][0]["detail"]
    assert "storage disagrees with the events" in detail and "ciphertext_digest_mm" in detail
    assert "ab" * 32 in detail and rs.ciphertext_digest_mm.hex() in detail


@pytest.mark.parametrize("kind", ["offer_mm", "acceptance_mm", "offer_rm", "acceptance_rm"])
def test_flipped_offer_or_acceptance_blob(market, kind):
    from crypto.encoding import canonical_loads

    dep = open_market(market)
    side, what = kind.split("_")[1], kind.split("_")[0]
    leg = [e for e in dep.coordinator.events("LegExecuted", round_id=1) if e.args["side"] == (0 if side == "mm" else 1)][0]
    record = canonical_loads(dep.blobs.get(leg.args["evidence"]))["body"]
    _flip(market, record[what])
    report = _audit(market, [1])
    named = [f for f in report["failures"] if f["check"] == f"blob.{kind}"]
    assert named and record[what].hex() in named[0]["detail"], report["failures"]


def test_outsider_credit_withdrawal_and_zeroed_deposit(market):
    dep = open_market(market)
    coord = dep.coordinator
    outsider = dep.chain.account("auditor")  # a funded account that is owed nothing
    balance = coord.balance()
    role = max(("dealer_mm", "dealer_rm"), key=lambda r: coord.deposit_of(dep.address(r)))
    dealer = dep.address(role)
    assert coord.deposit_of(dealer) > 0
    deposit_slot = _map_slot(dep, DEPOSITS_SLOT, bytes.fromhex(dealer[2:]), known=coord.deposit_of(dealer))
    credit_slot = _map_slot(dep, WITHDRAWABLE_SLOT, bytes.fromhex(outsider.address[2:]), known=0)
    _rpc(dep, "anvil_setStorageAt", [dep.contract_address, hex(credit_slot), _word(balance)])
    _rpc(dep, "anvil_setStorageAt", [dep.contract_address, hex(deposit_slot), _word(0)])
    tx = coord.withdraw(outsider)
    assert tx.event("Withdrawn").args["amount"] == balance
    report = _audit(market)
    failing = _failing(report)
    assert {"money.withdrawals", "money.balance", "money.balance.head", "storage.balances"} <= failing, failing
    details = " ".join(f["detail"] for f in report["failures"])
    assert f"withdrawal of {balance} wei to {outsider.address.lower()}" in details
    assert f"balance short by {balance} wei after block {tx.block_number}" in details
    assert f"deposits[{role}] = 0 wei in storage" in details


def test_swapped_code_with_patched_challenge_window_and_deposit_minimum(market):
    from chain.coordinator import IMMUTABLES

    dep = open_market(market)
    code = bytearray(dep.chain.code_at(dep.contract_address))
    names = [n for n, _ in IMMUTABLES]
    tail = len(code) - 32 * len(names)
    for name, value in (("challenge_window", 1), ("deposit_minimum", 1)):
        i = tail + 32 * names.index(name)
        code[i: i + 32] = value.to_bytes(32, "big")
    _rpc(dep, "anvil_setCode", [dep.contract_address, "0x" + bytes(code).hex()])
    report = _audit(market)
    named = [f for f in report["failures"] if f["check"] == "code.identity"]
    assert named and "immutables differ from the published terms in ['deposit_minimum', 'challenge_window']" in \
        named[0]["detail"], report["failures"]


def test_swapped_runtime_code_is_named(market):
    dep = open_market(market)
    code = bytearray(dep.chain.code_at(dep.contract_address))
    code[len(code) // 3] ^= 0xFF
    _rpc(dep, "anvil_setCode", [dep.contract_address, "0x" + bytes(code).hex()])
    report = _audit(market)
    named = [f for f in report["failures"] if f["check"] == "code.identity"]
    assert named and "contract code differs from source" in named[0]["detail"], report["failures"]


def test_an_edited_event_index_does_not_fail_a_healthy_chain(market):
    index = list((chain_dir(market) / INDEX_DIR).rglob("*.json"))
    assert index, "the writers persisted no event index: nothing to edit"
    for path in index:
        data = json.loads(path.read_text())
        data["logs"] = data["logs"][: len(data["logs"]) // 2]  # half the history gone from the cache
        path.write_text(json.dumps(data))
    report = _audit(market)
    assert report["ok"], report["failures"]


def test_forced_ether_is_a_surplus_not_a_failure(market):
    dep = open_market(market)
    balance = dep.coordinator.balance()
    _rpc(dep, "anvil_setBalance", [to_checksum_address(dep.contract_address), hex(balance + 1)])
    report = _audit(market)
    assert report["ok"], report["failures"]
    assert [n["check"] for n in report["notices"]] == ["money.surplus"]
    assert "1 wei more than it owes" in report["notices"][0]["detail"]


def test_a_round_run_on_the_node_after_the_audit_pinned_its_block_is_left_out(market):
    """verify beside a writer, on a node: a fifth round runs between the auditor's pin and its reads; the
    audit reads the node at the pinned block, leaves round 5 out as in progress, and the next audit checks it."""
    from protocol.report import write_transcript
    from protocol.scenario import demo_plans

    writer = open_market(market)
    reader = open_market(market, read_only=True)
    chain = reader.coordinator.chain
    pin = chain.pin

    def pin_then_write():
        block = pin()
        [(rid, _, run)], _ = run_plans(writer, demo_plans(SIM_GRID, 5, seed=0)[4:])
        write_transcript(writer, rid, run)
        return block

    chain.pin = pin_then_write
    report = Auditor(reader).run().as_dict()
    assert report["ok"], report["failures"]
    assert [x["round"] for x in report["cut"]["left_out"]] == [5], report["cut"]
    assert report["cut"]["block"] < writer.chain.block_number
    assert [r["round"] for r in report["rounds"]] == [0, 1, 2, 3, 4]
    after = _audit(market)
    assert after["ok"] and not after["cut"]["left_out"], after["failures"]
    assert 5 in [r["round"] for r in after["rounds"]]


def test_rollback_erasing_the_last_round_and_its_forfeit(market):
    """Last in the module: anvil_rollback invalidates the node's snapshots, so the node is not restored."""
    dep = open_market(market)
    t4 = json.loads(DataDir(market).transcript(4).read_text())
    head = dep.chain.block_number
    assert dep.coordinator.events("Forfeited", round_id=4)
    depth = head - min(a["block"] for a in t4["transactions"]) + 1  # from round 4's first transaction on
    (market / "rolled-back").touch()
    _rpc(dep, "anvil_rollback", [depth])
    _rpc(dep, "anvil_mine", [hex(depth)])
    assert dep.chain.block_number == head and dep.coordinator.current_round() == 3
    report = _audit(market)
    orphan = [f for f in report["failures"] if f["round"] == 4 and f["check"] == "transcript"]
    assert orphan and "round 4: transcript present, chain has no such round" in orphan[0]["detail"], report["failures"]
