"""A malicious receiver (a dealer that is a contract) tries to re-enter withdraw(); it gets paid once."""
from __future__ import annotations

from pathlib import Path

import pytest

from chain import AUDITOR, DEALER_MM, DEALER_RM, ChainError, Coordinator, deploy_coordinator

from .helpers import DEPOSIT, Market, digest, make_terms

ATTACKER_SOURCE = Path(__file__).parent / "contracts" / "ReentrantDealer.vy"


def setup_attack(chain, strict: bool):
    artifact = chain.compile(ATTACKER_SOURCE)
    attacker, _ = chain.deploy(artifact, [strict], DEALER_MM)
    coord = deploy_coordinator(chain, make_terms(chain, dealer_mm=attacker.address))
    chain.send(DEALER_MM, attacker, "set_target", (coord.address,))
    chain.send(DEALER_MM, attacker, "fund_deposit", value=DEPOSIT)
    coord.deposit(DEALER_RM, DEPOSIT)
    assert coord.deposit_of(attacker.address) == DEPOSIT
    return attacker, coord


def view(chain, contract, name):
    return chain.call(contract, name)


def test_reentrant_withdraw_pays_once(chain):
    attacker, coord = setup_attack(chain, strict=False)
    chain.send(DEALER_MM, attacker, "attack")
    assert view(chain, attacker, "reentry_attempts") == 1
    assert view(chain, attacker, "reentry_succeeded") is False
    assert view(chain, attacker, "received") == DEPOSIT
    assert chain.balance(attacker.address) == DEPOSIT
    assert coord.deposit_of(attacker.address) == 0
    assert coord.balance() == DEPOSIT  # only dealer_rm's deposit is left
    with pytest.raises(ChainError) as excinfo:
        chain.send(DEALER_MM, attacker, "attack")
    assert excinfo.value.reason == "nothing to withdraw"


def test_receiver_that_reverts_blocks_only_its_own_withdrawal(chain):
    attacker, coord = setup_attack(chain, strict=True)
    with pytest.raises(ChainError) as excinfo:
        chain.send(DEALER_MM, attacker, "attack")
    assert excinfo.value.reason == "transfer failed"
    assert coord.deposit_of(attacker.address) == DEPOSIT  # nothing changed
    assert coord.balance() == 2 * DEPOSIT
    assert chain.balance(attacker.address) == 0
    coord.withdraw(DEALER_RM)  # the honest dealer is unaffected
    assert coord.balance() == DEPOSIT


def test_reentrant_beneficiary_collects_forfeit_once(chain):
    attacker, coord = setup_attack(chain, strict=False)
    market = Market(chain, Coordinator(chain, coord.address), coord.terms())
    chain.send(DEALER_MM, attacker, "open_round", (1, digest("report"), digest("blob commitment")))
    market.round_id = 1
    market.pass_deadline()
    coord.enforce_deadline(AUDITOR, 1)  # dealer_rm never committed: its deposit goes to the attacker
    assert coord.withdrawable_of(attacker.address) == DEPOSIT
    chain.send(DEALER_MM, attacker, "attack")
    assert view(chain, attacker, "received") == 2 * DEPOSIT
    assert view(chain, attacker, "reentry_succeeded") is False
    assert coord.balance() == 0
