"""k-of-n key holders in the round, real FHE (one shared market: grid 4, 2-of-3 holders, two demo rounds).

The custodian deals the key at setup and keeps no secret file; each round's agreed output is opened from the
holders' public shares (mask stage, then table stage; digests on chain, blobs in the blob store); that opening
equals concrete's own decryption with the keyset the test kept before it was destroyed; shares for another
round or ciphertext, from an unregistered holder, duplicated or truncated are refused naming the holder, the
round and the reason, and nothing opens from fewer than k. The demo's other rounds open from k of the n holders,
holders that miss the deadline cancel the round like any missed step, and a market without slots left refuses a
round.
"""
from __future__ import annotations

import stat

import numpy as np
import pytest

from chain import RoundPhase, ShareStage
from crypto.circuit import SelectionOutput
from crypto.errors import KeyFileError
from crypto.fhe_keys import SECRET_FILES, CustodianFheKeys
from crypto.threshold import (
    DuplicateShareError, ShareBlob, TooFewSharesError, TruncatedShareError, UnregisteredHolderError,
    WrongCiphertextError, WrongRoundError, read_secret_key,
)
from protocol.audit import Auditor
from protocol.deployment import open_market
from protocol.opening import PostedShare, open_output, output_value, posted_shares
from protocol.roles import DealerAgent, KeyHolderAgent, ProtocolError

from .conftest import FHE_GRID

pytestmark = [pytest.mark.fhe, pytest.mark.slow]

HOLDERS = ["key_holder_1", "key_holder_2", "key_holder_3"]


def _concrete_decrypt(dep, keyset: bytes, value: bytes) -> np.ndarray:
    from concrete import fhe

    client = fhe.Client(dep.circuit().client_specs)
    client.keys = fhe.Keys.deserialize(keyset)
    return np.asarray(client.decrypt(fhe.Value.deserialize(value)))


def test_every_round_opens_from_public_shares_to_concretes_own_decryption(fhe_threshold_market):
    path, runs, keyset = fhe_threshold_market
    dep = open_market(path)
    setup = dep.threshold_setup()
    assert setup.params.holders == tuple(HOLDERS) and setup.params.threshold == 2
    assert setup.encoding.shape[0] == 6  # six output rows of base-8 digits (SelectionOutput)
    assert [r["phase"] for _, _, r in runs] == ["SETTLED", "SETTLED"]
    for rid, _, _ in runs:
        rs = dep.coordinator.round(rid)
        shares = posted_shares(dep, rid)
        # every holder posted both stages, mask shares first, each digest a blob of the store
        assert [s.holder for s in shares[ShareStage.MASK]] == HOLDERS == [s.holder for s in shares[ShareStage.TABLE]]
        assert max(s.block for s in shares[ShareStage.MASK]) <= min(s.block for s in shares[ShareStage.TABLE])
        assert (rs.mask_shares, rs.table_shares) == (3, 3)
        value = output_value(dep, rs.output_digest)
        opened = open_output(dep, setup, rid, value, shares)
        concrete = _concrete_decrypt(dep, keyset, value)
        assert np.array_equal(opened.decryption.values.reshape(-1), concrete.reshape(-1))
        selection = SelectionOutput.from_values(opened.decryption.values)
        instruction = selection.instruction(dep.terms)
        got = DealerAgent(dep, "dealer_mm").instruction(rid)
        assert (got["volume"], got["r_mm"], got["r_rm"], got["r_bd_x2"]) == (
            int(instruction.volume), int(instruction.r_mm), int(instruction.r_rm), int(instruction.r_bd_x2))
        assert (rs.mm_record.rate, rs.mm_record.volume) == (got["r_mm"], got["volume"])
        # the attestation names exactly the shares the chain names
        from crypto.encoding import canonical_loads

        body = canonical_loads(dep.blobs.get(rs.attestation_digest))["body"]
        assert body["mask_shares"] == [s.digest for s in shares[ShareStage.MASK]]
        assert body["table_shares"] == [s.digest for s in shares[ShareStage.TABLE]]


def test_the_custodian_keeps_no_secret_key_after_setup(fhe_threshold_market):
    path, _, keyset = fhe_threshold_market
    dep = open_market(path)
    assert not [p for name in SECRET_FILES for p in path.rglob(name)]  # nowhere in the data directory
    with pytest.raises(KeyFileError):
        CustodianFheKeys.load(dep.circuit(), dep.data_dir.fhe_keys_dir("custodian"))
    needle = read_secret_key(keyset, dep.threshold_setup().encoding).astype("<u8").tobytes()
    custodian = [p for p in dep.data_dir.role("custodian").rglob("*") if p.is_file()]
    assert custodian and not [p for p in custodian if needle in p.read_bytes()]
    # each holder's shares are private: 0700 folders, 0600 files, only under its own role folder
    for holder in HOLDERS:
        folder = dep.data_dir.holder_dir(holder)
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
        secret = [p for p in folder.rglob("*") if p.is_file() and p.name != "threshold-setup.bin"]
        assert secret and all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in secret)
    # the holders and k are terms on chain; the setup record's digest is inside the terms digest
    onchain = dep.coordinator.terms()
    assert [a.lower() for a in onchain.holders] == [dep.address(h).lower() for h in HOLDERS]
    assert onchain.holder_threshold == 2 and dep.terms_digest() == onchain.terms_digest


def test_verify_recombines_every_opened_outcome(fhe_threshold_market):
    path, runs, _ = fhe_threshold_market
    report = Auditor(open_market(path, read_only=True)).run().as_dict()
    assert report["ok"], report["failures"]
    checks = {r["round"]: {c["check"]: c for c in r["checks"]} for r in report["rounds"]}
    assert checks[0]["threshold.setup"]["ok"] and checks[0]["key_holders"]["ok"]
    for rid, _, _ in runs:
        assert "opened from the public shares of key_holder_1, key_holder_2, key_holder_3" in \
            checks[rid]["opening"]["detail"]
        assert {"attestation.shares", "attestation.flags", "opening.instruction"} <= set(checks[rid])


def _shares(dep, rid):
    shares = posted_shares(dep, rid)
    return {stage: [dep.blobs.get(s.digest) for s in shares[stage]] for stage in shares}, shares


def test_bad_shares_are_refused_naming_holder_round_and_reason(fhe_threshold_market):
    path, _, _ = fhe_threshold_market
    dep = open_market(path)
    setup = dep.threshold_setup()
    value2 = output_value(dep, dep.coordinator.round(2).output_digest)
    blobs1, shares1 = _shares(dep, 1)
    blobs2, shares2 = _shares(dep, 2)

    def opened(masks, tables, value=value2, rid=2, mask_holders=None):
        """open_output of these blobs, posted (as the chain would name them) by ``mask_holders`` and, for the
        tables, by the holders in order."""
        posted = lambda holders, stage: [PostedShare(h, "", stage, b"\0" * 32, 0, 0) for h in holders]  # noqa: E731
        fetched = iter([*masks, *tables])
        shares = {ShareStage.MASK: posted(mask_holders or HOLDERS[:len(masks)], ShareStage.MASK),
                  ShareStage.TABLE: posted(HOLDERS[:len(tables)], ShareStage.TABLE)}
        return open_output(dep, setup, rid, value, shares, blob=lambda kind, d: next(fetched))

    masks2, tables2 = blobs2[ShareStage.MASK], blobs2[ShareStage.TABLE]
    with pytest.raises(WrongRoundError, match=r"holder key_holder_1 for round 1: share is for round 1, not round 2"):
        opened(blobs1[ShareStage.MASK], tables2)  # round 1's shares offered for round 2
    with pytest.raises(WrongCiphertextError, match=r"key_holder_1 for round 1: share is for ciphertext"):
        opened(blobs1[ShareStage.MASK], blobs1[ShareStage.TABLE], value=value2, rid=1)  # round 1's, round 2's output
    with pytest.raises(DuplicateShareError, match=r"key_holder_1 for round 2: a second mask share from key_holder_1"):
        opened([masks2[0], masks2[0], masks2[1]], tables2, mask_holders=["key_holder_1", "key_holder_1", "key_holder_2"])
    with pytest.raises(TruncatedShareError, match=r"key_holder_2 for round \?: body does not match its SHA-256"):
        opened([masks2[0], masks2[1][:-9]], tables2)
    forged = ShareBlob.parse(setup, masks2[2])
    stranger = ShareBlob("mask", forged.setup_id, "key_holder_9", 2, forged.ciphertext, forged.slot, forged.opened,
                         forged.values).to_bytes()
    with pytest.raises(UnregisteredHolderError, match=r"key_holder_9 for round 2: holder 'key_holder_9' is not registered"):
        opened([masks2[0], stranger], tables2)
    with pytest.raises(TooFewSharesError, match=r"round 2: 1 valid table shares, 2 needed .*; nothing opened"):
        opened(masks2, tables2[:1])
    # the honest shares open (strict) once more: nothing above changed the blob store
    assert open_output(dep, setup, 2, value2, shares2).decryption.holders == tuple(HOLDERS)


def test_a_holder_answers_only_in_the_opening_of_the_agreed_output(fhe_threshold_market):
    path, _, _ = fhe_threshold_market
    dep = open_market(path)
    holder = KeyHolderAgent(dep, "key_holder_1")
    before = dep.chain.block_number
    with pytest.raises(ProtocolError, match=r"round 2: key_holder_1 refuses: the round is in phase Settled"):
        holder._authorised(2)  # closed round: nothing computed
    with pytest.raises(ProtocolError, match=r"round 9: key_holder_1 refuses: the chain has no such round"):
        holder.post_mask(9)
    assert holder.post_mask(1) == 0  # already posted: idempotent, no transaction
    with pytest.raises(ProtocolError, match=r"evaluator_0: not a key holder of this market"):
        KeyHolderAgent(dep, "evaluator_0")
    assert dep.chain.block_number == before


def _offline(monkeypatch, present: set[str]) -> None:
    """Only the holders in ``present`` answer; the others refuse every share (as a holder that is down)."""
    for step in ("post_mask", "post_table"):
        real = getattr(KeyHolderAgent, step)

        def answer(agent, round_id, real=real):
            if agent.role not in present:
                raise ProtocolError(f"round {round_id}: {agent.role} is offline")
            return real(agent, round_id)

        monkeypatch.setattr(KeyHolderAgent, step, answer)


def test_the_other_demo_rounds_open_from_k_holders_and_late_holders_cancel_a_round(fhe_threshold_market,
                                                                                  fhe_threshold_copy, monkeypatch):
    """Demo rounds 3 (no trade) and 4 (a deviating dealer) with key_holder_3 down: the two others open each
    output, equal to concrete's own decryption. Round 5 with only key_holder_1: the output cannot open (k = 2),
    the custodian posts nothing and the driver stops naming the round; once the Computed deadline passes a
    resumed driver has the contract cancel it like any other missed step (deposits unlocked, nobody forfeits).
    Its slot is spent: with five slots dealt, round 6 is refused before anything is sent. The audit verifies."""
    from protocol.rounds import RoundDriver
    from protocol.scenario import deal_inputs, demo_plans

    keyset = fhe_threshold_market[2]
    dep = open_market(fhe_threshold_copy)
    coord = dep.coordinator
    assert dep.slots == 5 and coord.current_round() == 2
    plans = demo_plans(FHE_GRID, 5, seed=0)

    _offline(monkeypatch, {"key_holder_1", "key_holder_2"})
    for rid in (3, 4):
        deal_inputs(dep, rid, plans[rid - 1])
        assert RoundDriver(dep, dep.circuit()).run_round(rid)["phase"] in ("SETTLED", "FORFEITED")
        shares = posted_shares(dep, rid)
        assert [s.holder for s in shares[ShareStage.TABLE]] == HOLDERS[:2]
        value = output_value(dep, coord.round(rid).output_digest)
        opened = open_output(dep, dep.threshold_setup(), rid, value, shares)
        assert np.array_equal(opened.decryption.values.reshape(-1),
                              _concrete_decrypt(dep, keyset, value).reshape(-1))
    assert coord.phase(4) is RoundPhase.FORFEITED  # the demo's deviating dealer

    monkeypatch.undo()
    _offline(monkeypatch, {"key_holder_1"})
    deal_inputs(dep, 5, plans[4])
    events = []
    driver = RoundDriver(dep, dep.circuit(), progress=lambda kind, **kw: events.append((kind, kw)))
    with pytest.raises(ProtocolError, match=r"round 5: 0 table shares on chain, 2 needed; the custodian cannot open"):
        driver.run_round(5)
    refused = {(kw["holder"], kw["stage"]) for kind, kw in events if kind == "share_refused"}
    assert {(h, s) for h in HOLDERS[1:] for s in ("mask", "table")} <= refused
    assert ("key_holder_1", "mask") not in refused  # it answered; its table waits for k masks
    assert coord.phase(5) is RoundPhase.COMPUTED
    assert [s.holder for s in posted_shares(dep, 5)[ShareStage.MASK]] == ["key_holder_1"]
    deposits = {r: coord.deposit_of(dep.address(r)) for r in ("dealer_mm", "dealer_rm")}

    dep.chain.mine(coord.deadline(5) + 1 - dep.chain.block_number)  # nobody drove the round in time
    monkeypatch.undo()
    result = RoundDriver(dep, dep.circuit()).run_round(5)
    assert result["phase"] == "CANCELLED" and coord.phase(5) is RoundPhase.CANCELLED
    assert not coord.events("Forfeited", round_id=5)
    assert {r: coord.deposit_of(dep.address(r)) for r in deposits} == deposits  # unlocked, not taken

    with pytest.raises(ProtocolError, match=r"round 6: the market has no decryption slot left .*5 one-time slots"):
        RoundDriver(dep, dep.circuit()).run_round(6)
    assert coord.current_round() == 5
    # rounds 1 and 2 are the shared market's, audited by test_verify_recombines_every_opened_outcome
    report = Auditor(open_market(fhe_threshold_copy, read_only=True)).run([3, 4, 5]).as_dict()
    assert report["ok"] and [r["round"] for r in report["rounds"] if r["round"]] == [3, 4, 5], report["failures"]
