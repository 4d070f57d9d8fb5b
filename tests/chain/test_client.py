"""Client pieces: one error type, deterministic accounts, artifact cache, mining, event index windows."""
from __future__ import annotations

import json

import pytest
from eth_tester.exceptions import TransactionFailed
from web3.exceptions import ContractLogicError

from chain import (AUDITOR, DEALER_MM, ChainError, ChainInputError, InstructionPreimage, compile_contract,
                   instruction_commitment)
from chain import events as events_module
from chain.accounts import account_for, role_key
from chain.errors import as_chain_error, revert_reason

from .helpers import INSTRUCTION, digest


def test_revert_reason_is_the_same_whatever_the_backend_exception():
    assert as_chain_error(TransactionFailed("execution reverted: deadline passed")).reason == "deadline passed"
    assert as_chain_error(ContractLogicError("execution reverted: deadline passed", data="0x08c3")).reason \
        == "deadline passed"
    assert revert_reason("execution reverted") == ""
    assert as_chain_error(KeyError("x")) is None


def test_revert_on_both_backends_is_chain_error(market):
    with pytest.raises(ChainError) as excinfo:
        market.coord.withdraw(AUDITOR)
    assert excinfo.value.reason == "nothing to withdraw"
    assert str(excinfo.value) == "nothing to withdraw"


def test_role_accounts_are_deterministic_and_distinct(chain):
    assert chain.address(DEALER_MM) == account_for(0, DEALER_MM).address
    assert account_for(1, DEALER_MM).address != account_for(0, DEALER_MM).address
    roles = ["dealer_mm", "dealer_rm", "custodian", "evaluator_0", "auditor", "client_mm"]
    assert len({chain.address(r) for r in roles}) == len(roles)
    acct = chain.account("some_new_role")  # not in genesis: funded on first use
    assert chain.balance(acct.address) >= 10 * 10**18
    key_hex = role_key(0, DEALER_MM).hex()
    assert key_hex not in repr(chain.account(DEALER_MM)) and key_hex not in str(chain.account(DEALER_MM))


@pytest.mark.parametrize("bad", ["Dealer", "", "a b", "x" * 65, 3])
def test_bad_role_names_rejected(chain, bad):
    with pytest.raises(ChainInputError, match="role"):
        chain.account(bad)


def test_mine_advances_blocks_on_both_backends(chain):
    head = chain.block_number
    assert chain.mine(3) == head + 3 == chain.block_number
    with pytest.raises(ChainInputError, match="blocks"):
        chain.mine(0)


def test_artifacts_cached_by_source_digest(tmp_path):
    first = compile_contract("Coordinator", tmp_path)
    files = list(tmp_path.glob("*.json"))
    assert [f.stem for f in files] == [first.source_digest]
    cached = json.loads(files[0].read_text())
    assert bytes.fromhex(cached["bytecode"]) == first.bytecode
    second = compile_contract("Coordinator", tmp_path)
    assert second == first
    with pytest.raises(FileNotFoundError, match="NoSuchContract"):
        compile_contract("NoSuchContract", tmp_path)


def test_instruction_commitment_encoding():
    # sha256 over five 32-byte big-endian words: volume, r_mm, r_rm, r_bd_x2, salt.
    import hashlib

    words = b"".join(v.to_bytes(32, "big") for v in (15, 415, 445, 860)) + INSTRUCTION.salt
    assert len(INSTRUCTION.encode()) == 160 and INSTRUCTION.encode() == words
    assert INSTRUCTION.commitment() == hashlib.sha256(words).digest()
    assert instruction_commitment(15, 415, 445, 860, INSTRUCTION.salt) == INSTRUCTION.commitment()
    with pytest.raises(ChainInputError, match="salt"):
        InstructionPreimage(15, 415, 445, 860, b"short")
    with pytest.raises(ChainInputError, match="r_mm"):
        InstructionPreimage(15, -415, 445, 860, INSTRUCTION.salt)
    assert "salt" not in repr(INSTRUCTION).split("r_bd_x2")[1]


def test_events_filter_by_name_and_args(market):
    market.to_computed()
    posted = market.coord.events("OutputPosted", round_id=1)
    assert [e.args["votes"] for e in posted] == [1, 2]
    assert market.coord.events("OutputPosted", round_id=2) == []
    assert all(e.address == market.coord.address for e in market.coord.events())
    assert [e.block_number for e in market.coord.events()] == sorted(e.block_number for e in market.coord.events())


def test_event_index_never_scans_long_ranges(market, monkeypatch):
    if market.chain.backend == "embedded":  # fed from receipts: eth_getLogs is never called
        monkeypatch.setattr(market.chain.w3.eth, "get_logs", lambda params: pytest.fail("eth_getLogs called"))
        assert len(market.coord.events("Deposited")) == 2
        market.chain.mine(2)
        assert len(market.coord.events()) == 2
        return
    calls = []
    real = market.chain.w3.eth.get_logs

    def spy(params):
        calls.append((params["fromBlock"], params["toBlock"]))
        return real(params)

    monkeypatch.setattr(events_module, "WINDOW", 5)
    monkeypatch.setattr(market.chain.w3.eth, "get_logs", spy)
    market.chain._backend.index = events_module.EventIndex(None)  # forget what was scanned
    head = market.chain.block_number
    assert len(market.coord.events("Deposited")) == 2
    assert calls and all(hi - lo < 5 for lo, hi in calls) and calls[-1][1] == head
    assert [lo for lo, _ in calls] == list(range(0, head + 1, 5))
    calls.clear()
    market.coord.events()  # nothing new: no scan at all
    assert calls == []
    market.chain.mine(2)
    market.coord.events()
    assert calls == [(head + 1, head + 2)]


def test_bytes32_and_uint_arguments_checked_before_signing(market):
    head = market.chain.block_number
    for call in (lambda: market.coord.post_output("evaluator_0", 1, digest("x")[:31]),
                 lambda: market.coord.deposit(DEALER_MM, -1),
                 lambda: market.coord.commit_report(DEALER_MM, "1", digest("x"), digest("y")),
                 lambda: market.coord.commit_report(DEALER_MM, 1, digest("x"), b"short"),
                 lambda: market.coord.reveal_report(DEALER_MM, 1, b"short"),
                 lambda: market.coord.post_fault("evaluator_0", 1, "xx", digest("f")),
                 lambda: market.coord.report_invalid_input("custodian", 1, digest("a"), 2),
                 lambda: market.coord.post_instruction("custodian", 1, digest("a"), digest("b"), 1)):
        with pytest.raises(ChainInputError):
            call()
    assert market.chain.block_number == head


def test_a_pinned_chain_reads_one_block_while_another_connection_writes(market):
    """The auditor's consistent cut: after ``pin`` every view, balance, code read, event list and the block
    number answer as of the pinned block, however much another connection writes; ``unpin`` reads on."""
    from chain import Coordinator, connect

    reader = connect(market.chain.data_dir, market.chain.url, read_only=True)
    coord = Coordinator(reader, market.coord.address)
    dealer = market.chain.address(DEALER_MM)

    def view():
        return (reader.block_number, coord.current_round(), coord.balance(), coord.deposit_of(dealer),
                [e.name for e in coord.events()], coord.round(1).phase.name, len(reader.code_at(coord.address)))

    before = view()
    block = reader.pin()
    assert block == before[0] and reader.pinned == block
    market.to_reported()  # another connection (the writer) opens round 1 and takes it to Reported
    market.coord.deposit(DEALER_MM, 7)
    assert view() == before
    reader.unpin()
    after = view()
    assert after[0] > block and after[1] == 1 and after[2] == before[2] + 7 and after[3] == before[3] + 7
    assert after[5] == "REPORTED" and after[4].count("ReportRevealed") == 2
