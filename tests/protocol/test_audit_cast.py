"""docs/AUDIT.md's cast walkthrough, run as written against a fresh demo market on anvil (simulate backend),
each step's output checked against the node and the published files, so the document cannot rot.

Skips only when CI is unset and anvil or cast is absent; with CI set both must be there (scripts/setup.sh
--with-anvil installs them). ``python -m tests.protocol.test_audit_cast URL DIR`` runs the steps against the
exported market DIR on the node URL and pastes their outputs into the document.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from protocol.layout import DataDir

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "AUDIT.md"
CAST_ENV = "REPO_MARKET_CAST"
DEFAULT_CAST = ROOT / ".tools" / "node_modules" / "@foundry-rs" / "cast-linux-amd64" / "bin" / "cast"
_STEP = re.compile(r"```sh\n# step: (\w+)\n(.*?)```\n(?:\n(?:[^`\n][^\n]*\n|\n)*?```text\n(.*?)```\n)?", re.S)

pytestmark = pytest.mark.anvil


def cast_binary() -> Path:
    return Path(os.environ.get(CAST_ENV) or DEFAULT_CAST)


def doc_steps(text: str | None = None) -> list[tuple[str, str]]:
    """(name, script) of every walkthrough step, in document order."""
    return [(m.group(1), m.group(2)) for m in _STEP.finditer(text if text is not None else DOC.read_text())]


def run_steps(url: str, export_dir: Path, names: list[str] | None = None, cwd: Path | None = None) -> dict[str, str]:
    """Run the document's steps in one bash session (setup first); returns name -> stdout."""
    steps = doc_steps()
    script = ["set -o pipefail"]
    for name, body in steps:
        if names is None or name in names or name == "setup":
            script += [f"echo '=== step {name}'", body]
    env = dict(os.environ, ETH_RPC_URL=url, X=str(export_dir),
               PATH=f"{cast_binary().parent}:{os.environ['PATH']}")
    out = subprocess.run(["bash", "-c", "\n".join(script)], capture_output=True, text=True, env=env,
                         cwd=cwd or export_dir.parent, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stderr == "", out.stderr[-3000:]
    parts = re.split(r"^=== step (\w+)\n", out.stdout, flags=re.M)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts), 2)}


def paste_outputs(outputs: dict[str, str]) -> None:
    """Replace the ```text block after each step with its output."""
    text = DOC.read_text()

    def fill(m):
        name = m.group(1)
        if name == "setup":
            return m.group(0)
        block = m.group(0)
        head = block[: block.rindex("```text\n")]
        return f"{head}```text\n{outputs[name]}```\n"

    DOC.write_text(_STEP.sub(fill, text))


# ---------------------------------------------------------------- the truth, from the node and the files

def _lines(text: str) -> list[str]:
    return text.rstrip("\n").split("\n")


class Truth:
    def __init__(self, export_dir: Path, url: str):
        from protocol.deployment import open_market

        self.dir = export_dir
        self.dep = open_market(export_dir, url)
        self.market = json.loads(DataDir(export_dir).market_file.read_text())
        self.coord = self.dep.coordinator
        self.w3 = self.dep.chain.w3

    def role_of(self, address: str) -> str:
        return {a.lower(): r for r, a in self.market["addresses"].items()}[address.lower()]


def check_code(out: str, t: Truth) -> None:
    from eth_abi import encode

    from chain.artifacts import load_build

    build = load_build("Coordinator")
    lines = _lines(out)
    assert lines[0] == f"contract {t.market['contract']} on chain {t.dep.chain_id}, head block {t.w3.eth.block_number}"
    runtime = bytes.fromhex(build["runtime_bytecode"][2:])
    assert lines[1] == f"runtime code = build JSON ({len(runtime)} bytes)"
    code = bytes(t.w3.eth.get_code(t.market["contract"]))
    assert code.startswith(runtime)
    terms = t.coord.terms()
    values = {"hurdle_mode": terms.hurdle_mode_code, **{n: getattr(terms, n) for n in (
        "grid", "base_rate", "rate_bits", "deposit_minimum", "terms_digest", "circuit_digest",
        "evaluation_keys_digest", "identities_digest", "dealer_mm", "dealer_rm", "custodian", "threshold",
        "holder_threshold")},
        **{f"{name}_window": blocks for name, blocks in terms.windows.as_dict().items()}}
    layout = sorted(build["layout"]["code_layout"].items(), key=lambda kv: kv[1]["offset"])
    expected = [f"{name} {encode([entry['type']], [values[name]]).hex()}" for name, entry in layout]
    assert lines[2:2 + len(expected)] == expected
    assert len(expected) == 21 and values["grid"] == t.market["terms"]["grid"]
    sha = hashlib.sha256((ROOT / "chain" / "contracts" / "Coordinator.vy").read_bytes()).hexdigest()
    assert lines[2 + len(expected)] == f"source sha256 {sha}, build JSON says {sha}"
    assert len(lines) == 3 + len(expected)


def check_identities(out: str, t: Truth) -> None:
    from crypto.identity import PublicIdentity

    lines = _lines(out)
    roles = sorted(t.market["identities"])
    assert lines[:len(roles)] == [f"{r} {PublicIdentity.from_dict(t.market['identities'][r]).fingerprint.hex()}"
                                  for r in roles]
    onchain = t.coord.terms().identities_digest.hex()
    assert onchain == t.market["digests"]["identities"]
    assert lines[len(roles):] == [f"recomputed {onchain}", f"on chain   {onchain}"]


def check_terms(out: str, t: Truth) -> None:
    terms = t.coord.terms()
    d = t.market["digests"]
    assert terms.terms_digest.hex() == d["terms"]
    assert terms.terms_digest == t.dep.terms_digest()
    assert _lines(out) == [
        f"terms recomputed {d['terms']}", f"terms on chain   {d['terms']}",
        f"public_key: market.json {d['public_key']}, blob sha256 {d['public_key']}",
        f"circuit: on chain {terms.circuit_digest.hex()}, blob sha256 {d['circuit']}",
        f"evaluation_keys: on chain {terms.evaluation_keys_digest.hex()}, blob sha256 {d['evaluation_keys']}"]
    assert terms.circuit_digest.hex() == d["circuit"]
    assert hashlib.sha256((DataDir(t.dir).blobs / d["circuit"]).read_bytes()).hexdigest() == d["circuit"]


def check_storage(out: str, t: Truth) -> None:
    from eth_utils import keccak

    from chain.coordinator import StateWord

    base = int.from_bytes(keccak((19).to_bytes(32, "big") + (1).to_bytes(32, "big")), "big")
    word = int.from_bytes(t.w3.eth.get_storage_at(t.market["contract"], base), "big")
    s, rs = StateWord(word), t.coord.round(1)
    assert s.phase == rs.phase and s.phase_block == rs.phase_block and s.trade == rs.trade
    voted = sum(1 << i for i in range(16) if s.posted(i))
    lines = _lines(out)
    assert lines[0] == f"state word 0x{word:064x}"
    assert lines[1] == (f"phase {int(s.phase):02x} phase_block {s.phase_block} trade {int(s.trade):02x} "
                        f"posted-bitmap {voted:04x} lead-votes {s.lead_votes:02x} agreed {int(s.agreed):02x}")
    assert lines[2] == f"views: phase {int(rs.phase)} phase_block {rs.phase_block} trade {str(rs.trade).lower()}"
    assert lines[3] == f"ciphertext_digest_mm (member 5) 0x{rs.ciphertext_digest_mm.hex()}"
    assert lines[4] == f"mm_record (member 10)           0x{(rs.mm_record.rate << 128 | rs.mm_record.volume):064x}"
    assert lines[5] == f"execution_record(1, 0) = {rs.mm_record.rate} {rs.mm_record.volume}"
    assert len(lines) == 6


def check_events(out: str, t: Truth) -> None:
    expected = [f"round {e.args['round_id']} block {e.block_number} phase {e.args['phase']} deadline {e.args['deadline']}"
                for e in t.coord.events("PhaseChanged")]
    assert _lines(out) == expected
    assert len(expected) >= 24 and expected[-1].endswith("phase 9 deadline 0")  # the demo's round 4 forfeits


def check_senders(out: str, t: Truth) -> None:
    names = ("Deposited", "ReportCommitted", "ReportRevealed", "OutputPosted", "SharePosted", "InstructionPosted",
             "LegExecuted", "Forfeited", "Withdrawn")
    lines = []
    for name in names:
        txs = {e.tx_hash for e in t.coord.events(name)}
        count = Counter(t.role_of(t.w3.eth.get_transaction(tx)["from"]) for tx in txs)
        lines.append(f"{name}: sent by" + ",".join(f" {n} {r}" for r, n in sorted(count.items())))
    assert _lines(out) == lines
    assert "ReportRevealed: sent by 4 dealer_mm, 4 dealer_rm" in lines and "Deposited: sent by 1 dealer_mm, 1 dealer_rm" in lines


def check_holders(out: str, t: Truth) -> None:
    from eth_utils import keccak

    from chain import ShareStage
    from chain.coordinator import StateWord

    terms = t.coord.terms()
    lines = [f"holder_threshold {terms.holder_threshold} of {len(terms.holders)} key holders"]
    roles = {a.lower(): r for r, a in t.market["addresses"].items()}
    lines += [f"holders({i}) {h} {roles.get(h.lower(), '')}" for i, h in enumerate(terms.holders)]
    lines += [f"round {e.args['round_id']} block {e.block_number} {roles.get(e.args['holder'].lower(), '')} stage "
              f"{e.args['stage']} count {e.args['count']} share {e.args['share_digest'].hex()}"
              for e in t.coord.events("SharePosted")]
    base = int.from_bytes(keccak((19).to_bytes(32, "big") + (1).to_bytes(32, "big")), "big")
    word = StateWord(int.from_bytes(t.w3.eth.get_storage_at(t.market["contract"], base), "big"))
    mask, table = (word.share_count(s) for s in ShareStage)
    assert (mask, table) == (t.coord.share_count(1, ShareStage.MASK), t.coord.share_count(1, ShareStage.TABLE))
    lines.append(f"round 1 state word: mask shares {mask} table shares {table}; views {mask} {table}")
    assert _lines(out) == lines


def check_blobs(out: str, t: Truth) -> None:
    blobs = sorted(p.name for p in DataDir(t.dir).blobs.iterdir())
    bad = sum(hashlib.sha256((DataDir(t.dir).blobs / b).read_bytes()).hexdigest() != b for b in blobs)
    named = set()
    for e in t.coord.events():
        for key in ("blob_digest", "output_digest", "share_digest", "attestation_digest", "evidence"):
            if key in e.args:
                named.add(e.args[key].hex())
    missing = len(named - set(blobs))
    assert _lines(out) == [f"{len(blobs)} blobs, {bad} whose name is not the sha256 of their bytes",
                           f"{len(named)} blob digests named by events; missing from blobs/: {missing}"]


def check_money(out: str, t: Truth) -> None:
    deposited = sum(e.args["amount"] for e in t.coord.events("Deposited"))
    withdrawn = sum(e.args["amount"] for e in t.coord.events("Withdrawn"))
    balance = t.coord.balance()
    lines = [f"deposited {deposited} - withdrawn {withdrawn} = {deposited - withdrawn}", f"balance   {balance}"]
    owed = 0
    for role in ("dealer_mm", "dealer_rm"):
        a = t.market["addresses"][role]
        d, w = t.coord.deposit_of(a), t.coord.withdrawable_of(a)
        lines.append(f"{role} deposit {d} withdrawable {w}")
        owed += d + w
    lines.append(f"owed      {owed}")
    assert _lines(out) == lines


def check_signatures(out: str, t: Truth) -> None:
    from protocol.attestation import ATTESTATION_CONTEXT, EXECUTION_CONTEXT, open_statement

    ok = "Signature Verified Successfully"
    lines = []
    for e in t.coord.events("InstructionPosted"):
        open_statement((DataDir(t.dir).blobs / e.args["attestation_digest"].hex()).read_bytes(),
                       t.dep.identity("custodian"), name="attestation", context=ATTESTATION_CONTEXT)
        lines.append(f"round {e.args['round_id']} attestation by custodian: {ok}")
    for e in t.coord.events("LegExecuted"):
        role = t.role_of(e.args["dealer"])
        open_statement((DataDir(t.dir).blobs / e.args["evidence"].hex()).read_bytes(), t.dep.identity(role),
                       name="execution record", context=EXECUTION_CONTEXT)
        lines.append(f"round {e.args['round_id']} execution record by {role}: {ok}")
    assert _lines(out) == lines and len(lines) >= 8


CHECKS = {"code": check_code, "identities": check_identities, "terms": check_terms, "storage": check_storage,
          "events": check_events, "senders": check_senders, "holders": check_holders,
          "blobs": check_blobs, "money": check_money,
          "signatures": check_signatures}


# ---------------------------------------------------------------- the test

@pytest.fixture(scope="module")
def cast_market(protocol_root, anvil_url):
    """A demo market on anvil (simulate backend, grid 6, the four stories) and its export-audit folder."""
    if not cast_binary().is_file():
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but the cast binary is missing: {cast_binary()} (scripts/setup.sh --with-anvil)")
        pytest.skip(f"cast binary absent ({cast_binary()}) and CI unset")
    from protocol.cli import main

    data = protocol_root / "cast-demo" / "market"
    assert main(["demo", "--data-dir", str(data), "--rpc", anvil_url, "--backend", "simulate", "--grid", "6",
                 "--no-verify", "--json"]) == 0
    out = protocol_root / "cast-demo" / "audit"
    assert main(["export-audit", str(out), "--data-dir", str(data), "--json"]) == 0
    return out


def test_every_step_has_a_check_and_an_output():
    steps = doc_steps()
    assert [n for n, _ in steps][0] == "setup"
    assert {n for n, _ in steps} - {"setup"} == set(CHECKS)
    outputs = {m.group(1): m.group(3) for m in _STEP.finditer(DOC.read_text())}
    for name in CHECKS:
        assert outputs.get(name), f"docs/AUDIT.md step {name} shows no output"


def test_the_documented_cast_walkthrough(cast_market, anvil_url, capsys):
    capsys.readouterr()
    outputs = run_steps(anvil_url, cast_market)
    truth = Truth(cast_market, anvil_url)
    assert set(outputs) == {"setup", *CHECKS}
    for name, check in CHECKS.items():
        check(outputs[name], truth)


def test_the_walkthrough_catches_a_flipped_blob_byte(cast_market, anvil_url, tmp_path):
    copy = tmp_path / "audit"
    shutil.copytree(cast_market, copy)
    victim = sorted(DataDir(copy).blobs.iterdir())[0]
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 1
    victim.write_bytes(bytes(data))
    out = run_steps(anvil_url, copy, ["blobs"])["blobs"]
    assert _lines(out)[0].endswith(" blobs, 1 whose name is not the sha256 of their bytes")


def test_the_walkthrough_catches_a_forged_attestation(cast_market, anvil_url, tmp_path):
    """One byte of an attestation's body changed (the file keeps its name): its signature no longer verifies."""
    from protocol.deployment import open_market

    copy = tmp_path / "audit"
    shutil.copytree(cast_market, copy)
    first = open_market(cast_market, anvil_url).coordinator.events("InstructionPosted")[0]
    blob = DataDir(copy).blobs / first.args["attestation_digest"].hex()
    data = bytearray(blob.read_bytes())
    data[40] ^= 1  # inside the body's first entry
    blob.write_bytes(bytes(data))
    lines = _lines(run_steps(anvil_url, copy, ["signatures"])["signatures"])
    assert lines[0].startswith(f"round {first.args['round_id']} attestation by custodian: ")
    assert "Verified Successfully" not in lines[0] and "Failure" in lines[0]
    assert all(line.endswith("Signature Verified Successfully") for line in lines[1:])


def test_the_walkthrough_catches_a_swapped_signing_key(cast_market, anvil_url, tmp_path):
    copy = tmp_path / "audit"
    shutil.copytree(cast_market, copy)
    market = json.loads(DataDir(copy).market_file.read_text())
    market["identities"]["custodian"]["signing_key"] = "11" * 32
    DataDir(copy).market_file.write_text(json.dumps(market))
    lines = _lines(run_steps(anvil_url, copy, ["identities"])["identities"])
    recomputed, onchain = lines[-2].split()[-1], lines[-1].split()[-1]
    assert recomputed != onchain


def test_the_holders_step_on_a_market_with_key_holders(anvil_url, tmp_path):
    """The demo market above has no key holders (simulate backend): run the holders step on a 2-of-3 holder market
    deployed here, whose holders posted 3 mask and 2 table shares, against the contract's own events and views."""
    from chain import ShareStage, connect, deploy_coordinator

    from tests.chain.helpers import Market, make_terms

    if not cast_binary().is_file():
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but the cast binary is missing: {cast_binary()} (scripts/setup.sh --with-anvil)")
        pytest.skip(f"cast binary absent ({cast_binary()}) and CI unset")
    chain = connect(tmp_path / "data", anvil_url)
    coord = deploy_coordinator(chain, make_terms(chain, evaluators=3, holders=3, holder_threshold=2))
    market = Market(chain, coord, coord.terms())
    market.fund_deposits()
    market.to_computed()
    market.post_shares(ShareStage.MASK, market.holders())
    market.post_shares(ShareStage.TABLE, market.holders()[1:])
    folder = tmp_path / "audit"
    folder.mkdir()
    roles = ["dealer_mm", "dealer_rm", "custodian", *market.evaluators(), *market.holders()]
    (folder / "market.json").write_text(json.dumps({"contract": coord.address,
                                                    "addresses": {r: chain.address(r) for r in roles}}))
    lines = _lines(run_steps(anvil_url, folder, ["senders", "holders"], cwd=tmp_path)["holders"])
    rid = market.round_id
    assert lines[:4] == ["holder_threshold 2 of 3 key holders"] + [
        f"holders({i}) {chain.address(r)} {r}" for i, r in enumerate(market.holders())]
    role = {chain.address(r): r for r in market.holders()}
    assert lines[4:9] == [f"round {rid} block {e.block_number} {role[e.args['holder']]} stage {e.args['stage']} "
                          f"count {e.args['count']} share {e.args['share_digest'].hex()}"
                          for e in coord.events("SharePosted")]
    assert [line.split(" stage ")[1][:9] for line in lines[4:9]] == ["0 count 1", "0 count 2", "0 count 3",
                                                                     "1 count 1", "1 count 2"]
    assert lines[9:] == [f"round {rid} state word: mask shares 3 table shares 2; views 3 2"]


if __name__ == "__main__":  # python -m tests.protocol.test_audit_cast URL EXPORT_DIR
    url, folder = sys.argv[1], Path(sys.argv[2]).resolve()
    results = run_steps(url, folder)
    truth = Truth(folder, url)
    for step, check in CHECKS.items():
        check(results[step], truth)  # never paste an output that fails its check
    paste_outputs(results)
    print(f"pasted {len(CHECKS)} step outputs into {DOC}", file=sys.stderr)
