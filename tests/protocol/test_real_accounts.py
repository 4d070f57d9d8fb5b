"""Real accounts on a node: a demo on anvil with a keystore and a key file, market.json's
``accounts`` record, the dev-key warning, and a reused market that refuses to fall back to dev keys."""
from __future__ import annotations

import copy
import dataclasses
import json
import os

import pytest
from eth_account import Account

from protocol.layout import DataDir
from protocol.cli import main
from protocol.deployment import DEV_KEYS_WARNING, accounts_record, identities_digest, identities_mismatch, open_market

pytestmark = pytest.mark.anvil

KEY_MM = "0x" + "44" * 32
KEY_CUSTODIAN = "0x" + "55" * 32


def _demo(data_dir, url, *extra):
    return main(["demo", "--data-dir", str(data_dir), "--rpc", url, "--backend", "simulate", "--grid", "6",
                 "--rounds", "1", "--no-verify", "--json", *extra])


def test_demo_with_keystore_and_key_file(scratch, anvil_url, monkeypatch, capsys):
    keystore = scratch / "dealer_mm.json"
    keystore.write_text(json.dumps(Account.encrypt(KEY_MM, "pw-mm", kdf="scrypt", iterations=2**10)))
    key_file = scratch / "custodian.key"
    key_file.write_text(KEY_CUSTODIAN + "\n")
    os.chmod(key_file, 0o600)
    monkeypatch.setenv("MM_PASSWORD", "pw-mm")
    data = scratch / "market"
    assert _demo(data, anvil_url, "--keystore", f"dealer_mm={keystore}", "--keystore-password-env",
                 "dealer_mm=MM_PASSWORD", "--key-file", f"custodian={key_file}") == 0
    capsys.readouterr()
    market = json.loads(DataDir(data).market_file.read_text())
    assert market["addresses"]["dealer_mm"] == Account.from_key(KEY_MM).address
    assert market["addresses"]["custodian"] == Account.from_key(KEY_CUSTODIAN).address
    assert market["accounts"]["kind"] == "mixed"
    assert market["accounts"]["roles"]["dealer_mm"] == "keystore"
    assert market["accounts"]["roles"]["custodian"] == "key-file"
    assert market["accounts"]["roles"]["dealer_rm"] == "dev-seed"
    assert "dealer_rm" in market["accounts"]["warning"] and "dealer_mm" not in market["accounts"]["warning"]
    dep = open_market(data)
    assert dep.coordinator.terms().dealer_mm == Account.from_key(KEY_MM).address
    # the signing identities are committed on chain, and the check sees a swapped key
    assert dep.coordinator.terms().identities_digest == identities_digest(market["identities"])
    assert identities_mismatch(dep) is None
    forged = copy.deepcopy(dep.descriptor)  # market.json is parsed once per Deployment: a forged copy is another one
    forged["identities"]["custodian"]["signing_key"] = "00" * 32
    assert "not the ones committed on chain" in identities_mismatch(dataclasses.replace(dep, descriptor=forged))

    # a second run without the keystore must not fall back to dev keys (they would be the wrong accounts)
    with pytest.raises(SystemExit) as info:
        _demo(data, anvil_url)
    assert info.value.code == 2
    assert "dealer_mm" in capsys.readouterr().err
    # and a keystore of another account is refused before anything is sent
    other = scratch / "other.json"
    other.write_text(json.dumps(Account.encrypt("0x" + "66" * 32, "x", kdf="scrypt", iterations=2**10)))
    (scratch / "pw").write_text("x\n")
    with pytest.raises(SystemExit):
        _demo(data, anvil_url, "--keystore", f"dealer_mm={other}", "--keystore-password-file", f"dealer_mm={scratch / 'pw'}",
              "--key-file", f"custodian={key_file}")
    assert "the market's dealer_mm is" in capsys.readouterr().err


def test_dev_keys_are_said_in_plain_words():
    record = accounts_record({"custodian": "dev-seed", "dealer_mm": "dev-seed"})
    assert record == {"kind": "dev-seed", "roles": {"custodian": "dev-seed", "dealer_mm": "dev-seed"},
                      "warning": DEV_KEYS_WARNING}
    assert "anyone who knows the seed can sign" in DEV_KEYS_WARNING
    assert "warning" not in accounts_record({"custodian": "keystore"})
    assert accounts_record({"custodian": "keystore"})["kind"] == "external"


def test_embedded_market_says_dev_seed(sim_template):
    market = json.loads(DataDir(sim_template).market_file.read_text())
    assert market["accounts"]["kind"] == "dev-seed" and market["accounts"]["warning"] == DEV_KEYS_WARNING


def test_key_options_need_rpc(scratch, capsys):
    with pytest.raises(SystemExit) as info:
        main(["demo", "--data-dir", str(scratch / "m"), "--backend", "simulate", "--grid", "6",
              "--key-file", f"custodian={scratch / 'k'}"])
    assert info.value.code == 2 and "only with --rpc" in capsys.readouterr().err
    assert not (scratch / "m").exists()


@pytest.mark.parametrize("extra, needle", [([], "plain backend uses no chain"),
                                           (["--backend", "simulate"], "only with --rpc"),
                                           (["--backend", "simulate", "--rpc", "http://127.0.0.1:9"], "file not found")])
def test_simulate_checks_key_options_first(scratch, capsys, extra, needle):
    with pytest.raises(SystemExit) as info:
        main(["simulate", "--data-dir", str(scratch / "m"), "--rounds", "2", "--grid", "6",
              "--key-file", f"custodian={scratch / 'missing.key'}", *extra])
    assert info.value.code == 2 and needle in capsys.readouterr().err
    assert not (scratch / "m").exists()
