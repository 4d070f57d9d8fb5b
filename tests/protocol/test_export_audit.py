"""`repo-market export-audit DIR`: every public file an auditor needs, nothing secret, and a
layout that `verify` reads."""
from __future__ import annotations

import hashlib
import json
import re
import shutil

import pytest

from crypto.identity import SIGNING_KEY_FILE
from crypto.tfhers.owner_encryption import CRS_FILE, MANIFEST_FILE, PUBLIC_KEY_FILE
from protocol.layout import DataDir
from protocol.cli import main
from protocol.commands.export_audit import CHAIN_INFO_FILE, IDENTITIES_FILE, export_audit

_HEX64 = re.compile(r"\A[0-9a-f]{64}\Z")


@pytest.fixture
def exported(sim_demo, scratch):
    data = scratch / "market"
    shutil.copytree(sim_demo[0], data, symlinks=True)
    out = scratch / "export"
    assert main(["export-audit", str(out), "--data-dir", str(data), "--json"]) == 0
    return data, out


def _files(root):
    return {str(p.relative_to(root)): p for p in sorted(root.rglob("*")) if p.is_file()}


def test_export_lists_exactly_the_public_files(exported):
    data, out = exported
    files = _files(out)
    blobs = sorted(p.name for p in DataDir(data).blobs.iterdir())
    transcripts = sorted(p.name for p in DataDir(data).transcripts.iterdir())
    expected = {"MANIFEST.json", "market.json", "identities.json", "chain.json", "chain/journal.jsonl",
                "chain/config.json", "contracts/Coordinator.vy", "contracts/Clearing.vy",
                "contracts/build/Coordinator.json", "contracts/build/Clearing.json",
                *(f"blobs/{b}" for b in blobs), *(f"transcripts/{t}" for t in transcripts)}
    assert set(files) == expected
    assert len(blobs) > 20 and all(_HEX64.match(b) for b in blobs)
    for name in blobs:  # blob naming: blobs/<sha256 hex of the bytes>
        assert hashlib.sha256((DataDir(out).blobs / name).read_bytes()).hexdigest() == name
    manifest = json.loads((out / "MANIFEST.json").read_text())
    assert set(manifest["files"]) == expected - {"MANIFEST.json"}
    for rel, sha in manifest["files"].items():
        assert hashlib.sha256(files[rel].read_bytes()).hexdigest() == sha


# published as they are (the custodian's public key and CRS are blobs named by market.json)
PUBLIC_IN_ROLES = ("identity.json", "fhe-evaluation.keys", PUBLIC_KEY_FILE, CRS_FILE, MANIFEST_FILE,
                   "threshold-setup.bin")


def assert_nothing_secret(data, out):
    """Every file under roles/ (but the public ones) and the narrator's plans: none exported, under any name."""
    private = {}
    for folder in ("roles", "demo"):
        for p in (data / folder).rglob("*") if (data / folder).is_dir() else ():
            if p.is_file() and p.name not in PUBLIC_IN_ROLES:
                private[hashlib.sha256(p.read_bytes()).hexdigest()] = str(p.relative_to(data))
    assert any(k.endswith("identity/signing.key") for k in private.values())
    private_names = {p.name for p in DataDir(data).roles.rglob("*") if p.is_file() and p.suffix == ".key"}
    assert "signing.key" in private_names and "sealing.key" in private_names
    for rel, path in _files(out).items():
        blob = path.read_bytes()
        assert hashlib.sha256(blob).hexdigest() not in private, f"{rel} is a copy of {private.get(rel)}"
        assert b"PRIVATE KEY" not in blob, rel
        assert b"RMFHESK" not in blob, rel  # the FHE secret key file's magic
        assert not any(m in blob for m in (b"RMTHKEY1", b"RMTHSLT1", b"RMTHSPT1")), rel  # holders' secret files
        assert b'"kdfparams"' not in blob, rel  # no keystore
        assert not any(rel.endswith(n) for n in private_names - {"fhe-evaluation.keys"}), rel
        assert not rel.startswith(("roles/", "private/", "cache/", "plots/")) and rel != "report.json", rel
    return private


def test_export_holds_nothing_secret(exported):
    assert_nothing_secret(*exported)


@pytest.mark.fhe
@pytest.mark.slow
def test_export_of_a_real_fhe_market_leaves_the_holders_shares_out(fhe_threshold_market, scratch):
    """The key holders' shares and slots exist only in their role folders; the evaluation keys and the threshold
    setup record (public) are exported as blobs."""
    data = fhe_threshold_market[0]
    out = scratch / "fhe-export"
    export_audit(data, out)
    private = assert_nothing_secret(data, out)
    shares = [p for p in private.values() if p.endswith("threshold-key.share")]
    assert len(shares) == 3, sorted(private.values())
    market = json.loads(DataDir(out).market_file.read_text())
    for name in ("evaluation_keys", "public_key", "threshold_setup"):
        assert (DataDir(out).blobs / market["digests"][name]).is_file()


def test_export_identities_match_the_chain(exported):
    _, out = exported
    identities = json.loads((out / IDENTITIES_FILE).read_text())
    market = json.loads(DataDir(out).market_file.read_text())
    assert identities["digest"] == identities["onchain_identities_digest"] == market["digests"]["identities"]
    assert set(identities["roles"]) == set(market["identities"])
    chain = json.loads((out / CHAIN_INFO_FILE).read_text())
    assert chain["code_is_source"] is True and chain["contract"] == market["contract"]


def test_verify_runs_on_the_export(exported):
    from protocol.audit import Auditor
    from protocol.deployment import open_market

    _, out = exported
    report = Auditor(open_market(out)).run().as_dict()
    assert report["ok"], report["failures"]
    assert len(report["rounds"]) >= 5  # round 0 (market-wide) and the four demo rounds
    assert not DataDir(out).roles.exists()


def test_export_refuses_an_existing_folder_and_leaves_nothing(sim_demo, scratch, capsys):
    out = scratch / "exists"
    out.mkdir()
    with pytest.raises(SystemExit) as info:
        main(["export-audit", str(out), "--data-dir", str(sim_demo[0])])
    assert info.value.code == 2 and "exists" in capsys.readouterr().err
    assert list(out.iterdir()) == []
    with pytest.raises(SystemExit):
        main(["export-audit", str(sim_demo[0] / "inside"), "--data-dir", str(sim_demo[0])])
    assert not (sim_demo[0] / "inside").exists()
    assert not [p for p in scratch.iterdir() if ".tmp-" in p.name]


def test_export_refuses_a_private_file_planted_in_the_blob_store(sim_demo, scratch):
    data = scratch / "market"
    shutil.copytree(sim_demo[0], data, symlinks=True)
    key = (DataDir(data).identity_dir("custodian") / SIGNING_KEY_FILE).read_bytes()
    (DataDir(data).blobs / hashlib.sha256(key).hexdigest()).write_bytes(key)
    with pytest.raises(RuntimeError, match="matches private data"):
        export_audit(data, scratch / "out")
    assert not (scratch / "out").exists()


def test_verify_on_the_export_sees_a_swapped_signing_key(exported):
    """The identities digest is an immutable: a key swapped in market.json no longer matches the contract."""
    from protocol.audit import Auditor
    from protocol.deployment import identities_mismatch, open_market

    _, out = exported
    market = json.loads(DataDir(out).market_file.read_text())
    market["identities"]["dealer_rm"]["signing_key"] = "22" * 32
    DataDir(out).market_file.write_text(json.dumps(market))
    dep = open_market(out)
    assert "not the ones committed on chain" in identities_mismatch(dep)
    report = Auditor(open_market(out)).run().as_dict()
    assert not report["ok"]
    assert any("identities_digest" in f["detail"] for f in report["failures"]), report["failures"]
