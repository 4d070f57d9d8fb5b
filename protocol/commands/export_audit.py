"""`repo-market export-audit DIR`: everything public an auditor needs, in one folder, and nothing secret.

DIR gets the layout ``repo-market verify --data-dir DIR`` reads (``market.json``, ``blobs/``,
``transcripts/``, and for the embedded chain ``chain/journal.jsonl`` + ``chain/config.json``) plus:

  contracts/<Name>.vy, contracts/build/<Name>.json   the sources and their checked-in ABI and bytecode
  identities.json     every signer's public identity and fingerprint, their digest and the contract's copy
  chain.json          chain id, contract, code hash, head block and genesis, read from the node at export
  MANIFEST.json       sha256 of every file above, and what was left out and why (written last)

Left out [decided]: ``roles/`` (private keys, the key holders' shares and slots, private inputs, inboxes), ``private/`` (the
narrator's true schedules) and ``report.json``/``plots/`` (the demo's report), ``cache/`` (rebuilt from the
circuit blob), the chain's index, snapshot and anvil state (caches of what the journal or the node holds). The folder is
built next to DIR and renamed into place, so a failure leaves no partial export; DIR must not exist yet.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

from eth_utils import keccak

from chain.artifacts import BUILD_DIR, CONTRACT_NAMES, CONTRACTS_DIR, compile_contract
from chain.paths import CONFIG_FILE, JOURNAL_FILE, chain_dir
from crypto.fhe_keys import EVALUATION_KEYS_FILE
from crypto.identity import PUBLIC_IDENTITY_FILE, PublicIdentity
from crypto.tfhers.owner_encryption import CRS_FILE, PUBLIC_KEY_FILE
from crypto.tfhers.owner_encryption import MANIFEST_FILE as OWNER_MANIFEST_FILE
from crypto.threshold.dealer import SETUP_FILE
from protocol.cli import UsageError, check_output_dir
from protocol.deployment import DeploymentError, identities_digest, open_market
from protocol.layout import PRIVATE_DIR, DataDir, write_json

HELP = "write everything public an auditor needs (blobs, transcripts, ABI, terms, signer digests) into DIR"
DESCRIPTION = __doc__
EXPORT_FORMAT = "repo-market-audit-export-v1"
IDENTITIES_FILE = "identities.json"
CHAIN_INFO_FILE = "chain.json"
MANIFEST_FILE = "MANIFEST.json"
_BLOB_NAME = re.compile(r"\A[0-9a-f]{64}\Z")
EXCLUDED = {
    "roles/": "each role's private folder: identity keys, key holders' shares and slots, private inputs, inboxes",
    "private/": "the narrator's plans and report: true schedules, hurdles, theta (not protocol data)",
    "report.json, plots/": "the demo's report, computed from the true schedules",
    "cache/": "compiled circuit cache, rebuilt from the circuit blob named on chain",
    "chain/index/, chain/snapshot.bin, chain/anvil/, chain/artifacts/": "caches of the journal or the node",
}


def configure(parser) -> None:
    parser.add_argument("out_dir", type=Path, metavar="DIR", help="folder to create (must not exist)")
    parser.add_argument("--rpc", metavar="URL", default=None, help="JSON-RPC node instead of the one in market.json")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)
    os.chmod(dst, 0o644)


def _chain_info(dep) -> dict:
    chain = dep.chain
    w3 = chain.w3
    chain.sync()
    code = bytes(w3.eth.get_code(dep.contract_address))
    head = w3.eth.get_block("latest")
    runtime = compile_contract("Coordinator").runtime_bytecode
    return {
        "backend": chain.backend, "rpc_url": dep.rpc_url, "chain_id": chain.chain_id,
        "contract": dep.contract_address,
        "code_keccak256": "0x" + keccak(code).hex(), "code_bytes": len(code),
        "code_is_source": len(runtime) > 0 and code.startswith(runtime),
        "head": {"number": int(head["number"]), "hash": "0x" + bytes(head["hash"]).hex()},
        "genesis_hash": "0x" + bytes(w3.eth.get_block(0)["hash"]).hex(),
        "balance_wei": int(w3.eth.get_balance(dep.contract_address)),
    }


def _identities(dep) -> dict:
    published = dep.market.published_identities()
    roles = {}
    for role, data in sorted(published.items()):
        identity = PublicIdentity.from_dict(data)
        roles[role] = {**identity.as_dict(), "fingerprint": identity.fingerprint.hex(),
                       "chain_address": dep.market.addresses.get(role)}
    return {"digest": identities_digest(published).hex(),
            "onchain_identities_digest": dep.coordinator.terms().identities_digest.hex(),
            "roles": roles}


def export_audit(data_dir: Path, out_dir: Path, rpc_url: str | None = None) -> dict:
    """Write the export (see the module docstring); returns the manifest."""
    dep = open_market(data_dir, rpc_url)
    root = dep.data_dir.root
    out_dir = Path(out_dir)
    if out_dir.exists():
        raise UsageError(f"DIR {out_dir}: exists; export-audit writes a new folder")
    if out_dir.resolve().is_relative_to(root.resolve()):
        raise UsageError(f"DIR {out_dir}: inside the data directory {root}; choose a folder outside it")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    export = DataDir(work)  # the layout verify reads, plus the files below
    try:
        _copy(dep.data_dir.market_file, export.market_file)
        blobs = sorted(p for p in dep.data_dir.blobs.iterdir() if _BLOB_NAME.match(p.name)) \
            if dep.data_dir.blobs.is_dir() else []
        for blob in blobs:
            _copy(blob, export.blobs / blob.name)  # copied as found: verify re-hashes every one
        if dep.data_dir.transcripts.is_dir():
            for path in sorted(dep.data_dir.transcripts.glob("*.json")):
                _copy(path, export.transcripts / path.name)
        if dep.rpc_url is None:  # the embedded chain is its journal of signed transactions
            for name in (JOURNAL_FILE, CONFIG_FILE):
                if (chain_dir(root) / name).is_file():
                    _copy(chain_dir(root) / name, chain_dir(work) / name)
        for name in CONTRACT_NAMES:
            _copy(CONTRACTS_DIR / f"{name}.vy", work / CONTRACTS_DIR.name / f"{name}.vy")
            _copy(BUILD_DIR / f"{name}.json", work / CONTRACTS_DIR.name / BUILD_DIR.name / f"{name}.json")
        write_json(work / IDENTITIES_FILE, _identities(dep))
        write_json(work / CHAIN_INFO_FILE, _chain_info(dep))
        files = {str(p.relative_to(work)): _sha256(p) for p in sorted(work.rglob("*")) if p.is_file()}
        _refuse_secrets(root, work, files)
        manifest = {"format": EXPORT_FORMAT, "contract": dep.contract_address, "chain_id": dep.chain_id,
                    "files": files, "excluded": EXCLUDED,
                    "verify": "repo-market verify --data-dir <this folder> [--rpc URL]"}
        write_json(work / MANIFEST_FILE, manifest)
        os.chmod(work, 0o755)
        work.rename(out_dir)
        return manifest
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise


# PEM keys, FHE secret key, keystores, a key holder's key shares, slots and spent-slot records
SECRET_MARKERS = (b"PRIVATE KEY-----", b"RMFHESK", b'"kdfparams"', b"RMTHKEY1", b"RMTHSLT1", b"RMTHSPT1")


def private_files(root: Path) -> dict[str, Path]:
    """sha256 -> path of every private file of the market (roles/ except the files that are public by design,
    their bytes published as they are; the narrator's private/ folder)."""
    # the custodian's public key material (the public key and CRS are published blobs) and each key holder's
    # copy of the public threshold setup record (a published blob too)
    public_role_files = (PUBLIC_IDENTITY_FILE, EVALUATION_KEYS_FILE, PUBLIC_KEY_FILE, CRS_FILE, OWNER_MANIFEST_FILE,
                         SETUP_FILE)
    out = {}
    for folder in (DataDir(root).roles, Path(root) / PRIVATE_DIR):
        if folder.is_dir():
            for p in folder.rglob("*"):
                if p.is_file() and p.name not in public_role_files:
                    out[_sha256(p)] = p
    return out


def _refuse_secrets(root: Path, work: Path, files: dict[str, str]) -> None:
    """Last guard before publishing: no exported file equals a private file, none holds key material."""
    private = private_files(root)
    for rel, sha in files.items():
        data = (work / rel).read_bytes()
        if sha in private or any(marker in data for marker in SECRET_MARKERS):
            raise RuntimeError(f"export-audit: {rel} matches private data; nothing was exported")


def validate(args) -> None:
    check_output_dir("DIR", args.out_dir)


def run(args) -> int:
    if args.rpc is not None and not args.rpc.startswith(("http://", "https://")):
        raise UsageError(f"--rpc {args.rpc!r}: must be an http(s) URL")
    try:
        manifest = export_audit(args.data_dir, args.out_dir, args.rpc)
    except DeploymentError as exc:
        raise UsageError(f"--data-dir {args.data_dir}: {exc}") from None
    summary = {"out_dir": str(args.out_dir), "files": len(manifest["files"]) + 1, "contract": manifest["contract"]}
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"exported {summary['files']} files to {args.out_dir} (verify with: repo-market verify "
              f"--data-dir {args.out_dir})", file=sys.stderr)
    return 0
