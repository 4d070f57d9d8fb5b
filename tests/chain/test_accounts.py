"""Real accounts: key files and keystores per role with --rpc, checked up front; dev keys only
on dev chains; market.json says which roles use dev keys."""
from __future__ import annotations

import json
import os

import pytest
from eth_account import Account

from chain import connect
from chain.accounts import (DEV_SEED, KEY_FILE, KEYSTORE, external_accounts, load_key_file, load_keystore,
                            read_password)
from chain.errors import ChainInputError

KEY_A = "0x" + "22" * 32
KEY_B = "0x" + "33" * 32


def _key_file(path, key=KEY_A, mode=0o600):
    path.write_text(key + "\n")
    os.chmod(path, mode)
    return path


def _keystore(path, key=KEY_A, password="hunter2"):
    path.write_text(json.dumps(Account.encrypt(key, password, kdf="scrypt", iterations=2**10)))
    return path


def test_key_file_gives_the_account_and_names_its_source(tmp_path):
    acct = load_key_file("custodian", _key_file(tmp_path / "k"))
    assert acct.address == Account.from_key(KEY_A).address
    assert acct.source == KEY_FILE
    assert KEY_A[2:] not in repr(acct) and "22222222" not in repr(acct)


@pytest.mark.parametrize("content, needle", [("abc", "64 hex digits"), ("0x" + "zz" * 32, "64 hex digits"),
                                             ("0x" + "00" * 32, "out of range")])
def test_malformed_key_file_is_refused(tmp_path, content, needle):
    with pytest.raises(ChainInputError, match=needle) as info:
        load_key_file("custodian", _key_file(tmp_path / "k", content))
    assert "custodian=" in str(info.value)


def test_key_file_readable_by_others_is_refused(tmp_path):
    with pytest.raises(ChainInputError, match="mode 0644"):
        load_key_file("dealer_mm", _key_file(tmp_path / "k", mode=0o644))


def test_missing_key_file_is_named(tmp_path):
    with pytest.raises(ChainInputError, match=r"--key-file dealer_rm=.*missing: file not found"):
        load_key_file("dealer_rm", tmp_path / "missing")


def test_keystore_with_the_right_password(tmp_path):
    acct = load_keystore("dealer_mm", _keystore(tmp_path / "ks.json"), b"hunter2")
    assert acct.address == Account.from_key(KEY_A).address and acct.source == KEYSTORE


def test_keystore_wrong_password(tmp_path):
    with pytest.raises(ChainInputError, match="wrong password"):
        load_keystore("dealer_mm", _keystore(tmp_path / "ks.json"), b"nope")


@pytest.mark.parametrize("text, needle", [("not json", "not JSON"), ('{"version": 3}', "malformed keystore"),
                                          ('[1, 2]', "malformed keystore")])
def test_malformed_keystore(tmp_path, text, needle):
    path = tmp_path / "ks.json"
    path.write_text(text)
    with pytest.raises(ChainInputError, match=needle):
        load_keystore("dealer_mm", path, b"pw")


def test_keystore_with_a_tampered_ciphertext_is_refused(tmp_path):
    path = _keystore(tmp_path / "ks.json")
    data = json.loads(path.read_text())
    data["crypto"]["ciphertext"] = "00" + data["crypto"]["ciphertext"][2:]
    path.write_text(json.dumps(data))
    with pytest.raises(ChainInputError, match="wrong password"):  # the MAC covers the ciphertext
        load_keystore("dealer_mm", path, b"hunter2")


def test_password_sources(tmp_path, monkeypatch):
    (tmp_path / "pw").write_text("s3cret\nignored\n")
    assert read_password("r", password_file=tmp_path / "pw") == b"s3cret"
    monkeypatch.setenv("KS_PW", "fromenv")
    assert read_password("r", password_env="KS_PW") == b"fromenv"
    with pytest.raises(ChainInputError, match="unset or empty"):
        read_password("r", password_env="KS_PW_UNSET")
    with pytest.raises(ChainInputError, match="exactly one"):
        read_password("r")
    (tmp_path / "empty").write_text("")
    with pytest.raises(ChainInputError, match="empty"):
        read_password("r", password_file=tmp_path / "empty")


def test_external_accounts_checks_the_whole_set(tmp_path):
    a, b = _key_file(tmp_path / "a"), _key_file(tmp_path / "b", KEY_A)
    ks = _keystore(tmp_path / "ks.json", KEY_B)
    (tmp_path / "pw").write_text("hunter2\n")
    got = external_accounts(key_files={"custodian": str(a)}, keystores={"dealer_mm": str(ks)},
                            password_files={"dealer_mm": str(tmp_path / "pw")})
    assert {r: x.address for r, x in got.items()} == {"custodian": Account.from_key(KEY_A).address,
                                                      "dealer_mm": Account.from_key(KEY_B).address}
    with pytest.raises(ChainInputError, match="same account"):
        external_accounts(key_files={"custodian": str(a), "dealer_rm": str(b)})
    with pytest.raises(ChainInputError, match="both --key-file and --keystore"):
        external_accounts(key_files={"dealer_mm": str(a)}, keystores={"dealer_mm": str(ks)},
                          password_files={"dealer_mm": str(tmp_path / "pw")})
    with pytest.raises(ChainInputError, match="no --keystore custodian"):
        external_accounts(key_files={"custodian": str(a)}, password_files={"custodian": str(tmp_path / "pw")})
    with pytest.raises(ChainInputError, match="unknown role 'banker'"):
        external_accounts(key_files={"banker": str(a)}, roles=("custodian",))


def test_embedded_chain_refuses_external_keys(tmp_path):
    acct = load_key_file("custodian", _key_file(tmp_path / "k"))
    with pytest.raises(ChainInputError, match="for --rpc nodes"):
        connect(tmp_path / "data", accounts={"custodian": acct})


def test_embedded_chain_uses_dev_keys(tmp_path):
    chain = connect(tmp_path / "data")
    assert chain.dev_keys_allowed and chain.account_source("dealer_mm") == DEV_SEED


def test_a_node_that_is_not_a_dev_chain_refuses_dev_keys(tmp_path):
    """Seed-derived keys are for the embedded chain and anvil only: elsewhere a role needs its own key."""
    from eth_tester import EthereumTester, PyEVMBackend
    from web3 import EthereumTesterProvider, Web3

    from chain.accounts import account_from_key
    from chain.backends import NodeBackend
    from chain.client import Chain

    acct = load_key_file("custodian", _key_file(tmp_path / "k"))
    node = NodeBackend(Web3(EthereumTesterProvider(EthereumTester(PyEVMBackend()))), "http://node.invalid",
                       is_anvil=False, faucet=account_from_key("faucet", (1).to_bytes(32, "big")))
    chain = Chain(node, data_dir=tmp_path, seed=0, accounts={"custodian": acct})
    assert not chain.dev_keys_allowed
    assert chain.address("custodian") == acct.address and chain.account_source("custodian") == KEY_FILE
    with pytest.raises(ChainInputError, match="role 'dealer_mm' has no key: .* not a dev chain"):
        chain.address("dealer_mm")
