"""docs/AUDIT.md's reference tables are computed, not typed: events and topic hashes from the ABI, storage and
code layout from the compiler, the state word from chain.coordinator.StateWord, the TLV example from
crypto.encoding. This test fails when a generated section differs from what the code gives today;
``python -m tests.chain.test_audit_doc`` rewrites the sections in place."""
from __future__ import annotations

import re
import sys
from pathlib import Path

from eth_utils import keccak

DOC = Path(__file__).resolve().parents[2] / "docs" / "AUDIT.md"
_SECTION = re.compile(r"(<!-- generated:(\w+)[^>]*-->\n)(.*?)(<!-- /generated:\2 -->)", re.S)


def _build():
    from chain.artifacts import build_record

    return build_record("Coordinator")


def events_table(build) -> str:
    rows = ["| event | topic 0 = keccak256(signature) | indexed (topics 1..3) | data (32-byte words, in order) |",
            "|---|---|---|---|"]
    for entry in build["abi"]:
        if entry.get("type") != "event":
            continue
        signature = f"{entry['name']}({','.join(i['type'] for i in entry['inputs'])})"
        topic = "0x" + keccak(text=signature).hex()
        assert build["event_topics"][signature] == topic
        indexed = ", ".join(f"`{i['name']}` {i['type']}" for i in entry["inputs"] if i["indexed"]) or "—"
        data = ", ".join(f"`{i['name']}` {i['type']}" for i in entry["inputs"] if not i["indexed"]) or "—"
        rows.append(f"| `{signature}` | `{topic}` | {indexed} | {data} |")
    return "\n".join(rows) + "\n"


def storage_table(build) -> str:
    storage = build["layout"]["storage_layout"]
    how = {
        "evaluators": "slot 0: length; slot 1 + i: `evaluators[i]`",
        "evaluator_slot": "`keccak256(17 ‖ address)`: 1 + index of an evaluator, 0 for anyone else",
        "current_round": "the value",
        "rounds": "`keccak256(19 ‖ round_id)` + member index (table below)",
        "dissent": "`keccak256(keccak256(20 ‖ round_id) ‖ digest)`: evaluators behind a non-leading output",
        "deposits": "`keccak256(21 ‖ address)`: wei on deposit",
        "withdrawable": "`keccak256(22 ‖ address)`: wei credited by forfeits, paid by `withdraw()`",
        "holders": "slot 23: length; slot 24 + i: `holders[i]` (key holders)",
        "holder_slot": "`keccak256(40 ‖ address)`: 1 + index of a key holder, 0 for anyone else",
    }
    rows = ["| slot | variable | type | where the value is |", "|---|---|---|---|"]
    for name, entry in sorted(storage.items(), key=lambda kv: kv[1]["slot"]):
        rows.append(f"| {entry['slot']} | `{name}` | `{entry['type']}` | {how[name]} |")
    rows.append("")
    rows.append("`Round` members (word offset from `keccak256(19 ‖ round_id)`):")
    rows.append("")
    rows.append("| offset | member | type |")
    rows.append("|---|---|---|")
    getter = next(e for e in build["abi"] if e.get("type") == "function" and e["name"] == "rounds")
    for i, member in enumerate(getter["outputs"][0]["components"]):
        rows.append(f"| {i} | `{member['name']}` | `{member['type']}` |")
    return "\n".join(rows) + "\n"


def immutables_table(build) -> str:
    rows = ["| bytes after the runtime code | immutable (public getter of the same name) | type |", "|---|---|---|"]
    for name, entry in sorted(build["layout"]["code_layout"].items(), key=lambda kv: kv[1]["offset"]):
        rows.append(f"| {entry['offset']}..{entry['offset'] + entry['length'] - 1} | `{name}` | `{entry['type']}` |")
    return "\n".join(rows) + "\n"


def state_word_table(_build) -> str:
    from chain.coordinator import MAX_EVALUATORS, MAX_HOLDERS, RoundPhase, StateWord as S

    def hexdigits(low: int, bits: int) -> str:
        # 0x + 64 hex digits, most significant first: bit b sits in hex digit 63 - b // 4 (0-based after 0x)
        first, last = 63 - (low + bits - 1) // 4, 63 - low // 4
        return f"{first + 2}..{last + 2}"

    phases = ", ".join(f"{p.value} {p.name}" for p in RoundPhase)
    rows = ["| bits | field | characters of `cast storage` output (0-based, `0x` = 0..1) |", "|---|---|---|",
            f"| 0..{S.PHASE_BITS - 1} | phase ({phases}) | {hexdigits(0, S.PHASE_BITS)} |",
            f"| {S.BLOCK_SHIFT}..{S.BLOCK_SHIFT + S.BLOCK_BITS - 1} | block in which the phase began | "
            f"{hexdigits(S.BLOCK_SHIFT, S.BLOCK_BITS)} |",
            f"| {S.TRADE_SHIFT} | trade instruction posted | {hexdigits(S.TRADE_SHIFT, 8)} (the byte) |",
            f"| {S.VOTED_SHIFT}..{S.VOTED_SHIFT + MAX_EVALUATORS - 1} | evaluator i posted its output or a fault (bit "
            f"{S.VOTED_SHIFT} + i) | {hexdigits(S.VOTED_SHIFT, MAX_EVALUATORS)} |",
            f"| {S.LEAD_COUNT_SHIFT}..{S.LEAD_COUNT_SHIFT + S.LEAD_COUNT_BITS - 1} | evaluators behind the leading "
            f"output digest | {hexdigits(S.LEAD_COUNT_SHIFT, S.LEAD_COUNT_BITS)} |",
            f"| {S.AGREED_SHIFT} | threshold reached (`output_digest()` is the leading one) | "
            f"{hexdigits(S.AGREED_SHIFT, 8)} (the byte) |",
            f"| {S.FAULT_MM_SHIFT}..{S.FAULT_MM_SHIFT + S.FAULT_BITS - 1} | evaluators that posted a fault naming "
            f"dealer_mm's revealed blob | {hexdigits(S.FAULT_MM_SHIFT, S.FAULT_BITS)} |",
            f"| {S.FAULT_RM_SHIFT}..{S.FAULT_RM_SHIFT + S.FAULT_BITS - 1} | evaluators that posted a fault naming "
            f"dealer_rm's revealed blob | {hexdigits(S.FAULT_RM_SHIFT, S.FAULT_BITS)} |",
            f"| {S.MASK_COUNT_SHIFT}..{S.MASK_COUNT_SHIFT + S.SHARE_COUNT_BITS - 1} | key holders that posted their "
            f"mask share (`share_count(r, 0)`) | {hexdigits(S.MASK_COUNT_SHIFT, S.SHARE_COUNT_BITS)} |",
            f"| {S.TABLE_COUNT_SHIFT}..{S.TABLE_COUNT_SHIFT + S.SHARE_COUNT_BITS - 1} | key holders that posted their "
            f"table share (`share_count(r, 1)`) | {hexdigits(S.TABLE_COUNT_SHIFT, S.SHARE_COUNT_BITS)} |",
            f"| {S.MASK_POSTED_SHIFT}..{S.MASK_POSTED_SHIFT + MAX_HOLDERS - 1} | key holder i posted its mask share "
            f"(bit {S.MASK_POSTED_SHIFT} + i) | {hexdigits(S.MASK_POSTED_SHIFT, MAX_HOLDERS)} |",
            f"| {S.TABLE_POSTED_SHIFT}..{S.TABLE_POSTED_SHIFT + MAX_HOLDERS - 1} | key holder i posted its table "
            f"share (bit {S.TABLE_POSTED_SHIFT} + i) | {hexdigits(S.TABLE_POSTED_SHIFT, MAX_HOLDERS)} |"]
    return "\n".join(rows) + "\n"


TLV_EXAMPLE = {"round": 3, "ok": True, "role": "custodian", "salt": b"\x01\x02", "list": [None, -7]}


def _frames(data: bytes, pos: int, end: int, depth: int, out: list[str]) -> None:
    names = {ord("n"): "None", ord("b"): "bool", ord("i"): "int", ord("s"): "str", ord("x"): "bytes",
             ord("l"): "list", ord("d"): "dict"}
    while pos < end:
        tag, length = data[pos], int.from_bytes(data[pos + 1:pos + 9], "big")
        payload = data[pos + 9:pos + 9 + length]
        head = f"{'  ' * depth}{data[pos:pos + 1].hex()} {data[pos + 1:pos + 9].hex()}"
        if tag in (ord("l"), ord("d")):
            out.append(f"{head}{'':<{max(1, 40 - len(head))}}{names[tag]}, {length} payload bytes:")
            _frames(data, pos + 9, pos + 9 + length, depth + 1, out)
        else:
            shown = {ord("n"): "", ord("b"): " " + str(payload == b"\x01").lower(), ord("i"): " " + payload.decode(),
                     ord("s"): f" {payload.decode()!r}", ord("x"): f" 0x{payload.hex()}"}[tag]
            line = f"{head} {payload.hex()}"
            out.append(f"{line}{'':<{max(1, 62 - len(line))}}{names[tag]}{shown}")
        pos += 9 + length


def tlv_example(_build) -> str:
    from crypto.encoding import canonical_bytes, canonical_digest

    data = canonical_bytes(TLV_EXAMPLE)
    lines: list[str] = []
    _frames(data, 0, len(data), 0, lines)
    return ("```text\n" + f"canonical_bytes({TLV_EXAMPLE!r})\n"
            + "tag length-------------- payload\n" + "\n".join(lines) + "\n"
            + f"{len(data)} bytes; sha256 = {canonical_digest(TLV_EXAMPLE).hex()}\n```\n")


GENERATORS = {"events": events_table, "storage": storage_table, "immutables": immutables_table,
              "stateword": state_word_table, "tlv": tlv_example}


def rendered(text: str) -> str:
    build = _build()

    def fill(match):
        return match.group(1) + GENERATORS[match.group(2)](build) + match.group(4)

    return _SECTION.sub(fill, text)


def test_generated_sections_match_the_code():
    text = DOC.read_text()
    found = {m.group(2) for m in _SECTION.finditer(text)}
    assert found == set(GENERATORS), f"docs/AUDIT.md sections {sorted(found)}, expected {sorted(GENERATORS)}"
    assert rendered(text) == text, "docs/AUDIT.md is stale: run `python -m tests.chain.test_audit_doc`"


def test_the_tlv_example_decodes_back():
    from crypto.encoding import canonical_bytes, canonical_loads

    data = canonical_bytes(TLV_EXAMPLE)
    assert canonical_loads(data) == TLV_EXAMPLE
    assert data[:1] == b"d" and data[9:10] == b"s"  # a dict whose first key is a str
    assert data[10:18] == (4).to_bytes(8, "big") and data[18:22] == b"list"  # keys sorted: list < ok < role ...


def test_the_doc_links_stay_inside_the_repository():
    assert "http" not in re.sub(r"http://127\.0\.0\.1:\d+", "", DOC.read_text())


if __name__ == "__main__":
    DOC.write_text(rendered(DOC.read_text()))
    print(f"rewrote the generated sections of {DOC}", file=sys.stderr)


def test_mapping_slots_are_where_the_doc_says(tmp_path):
    """The documented slot formulas (Vyper: keccak256(slot ‖ key), nested maps hashed again) read the values
    the views return, on a round where one evaluator dissents."""
    from chain import CUSTODIAN, DEALER_MM, DEALER_RM, connect, deploy_coordinator, evaluator_role, key_holder_role

    from .helpers import DEPOSIT, blob_of, commit, digest, make_terms, reveal

    chain = connect(tmp_path / "data")
    coord = deploy_coordinator(chain, make_terms(chain, evaluators=3, threshold=2, holders=3, holder_threshold=2))
    coord.deposit(DEALER_MM, DEPOSIT)
    coord.deposit(DEALER_RM, DEPOSIT)
    rid = coord.next_round_id()
    commit(coord, DEALER_MM, rid, "r-mm")
    commit(coord, DEALER_RM, rid, "r-rm")
    reveal(coord, DEALER_MM, rid)
    reveal(coord, DEALER_RM, rid)
    coord.post_output(evaluator_role(0), rid, digest("lead"))
    coord.post_output(evaluator_role(1), rid, digest("dissent"))

    def word(slot: int) -> int:
        return int.from_bytes(chain.w3.eth.get_storage_at(coord.address, slot), "big")

    def at(slot: int, *keys: bytes) -> int:
        for key in keys:
            slot = int.from_bytes(keccak(slot.to_bytes(32, "big") + key.rjust(32, b"\0")), "big")
        return slot

    address = bytes.fromhex
    e1 = chain.address(evaluator_role(1))
    assert word(0) == 3 and word(2) == int(e1, 16)                       # evaluators: length, then items
    assert word(at(17, address(e1[2:]))) == 2                             # evaluator_slot: 1 + index
    assert word(18) == rid                                                # current_round
    assert word(at(19, rid.to_bytes(32, "big")) + 5) == int.from_bytes(blob_of(DEALER_MM, rid), "big")
    assert word(at(19, rid.to_bytes(32, "big")) + 3) == int.from_bytes(coord.round(rid).blob_commitment_mm, "big")
    assert word(at(20, rid.to_bytes(32, "big"), digest("dissent"))) == coord.tally(rid, digest("dissent")) == 1
    mm = chain.address(DEALER_MM)
    assert word(at(21, address(mm[2:]))) == coord.deposit_of(mm) == DEPOSIT
    assert word(at(22, address(mm[2:]))) == coord.withdrawable_of(mm) == 0
    h3 = chain.address(key_holder_role(3))
    assert word(23) == coord.holder_count() == 3 and word(24 + 2) == int(h3, 16)   # holders: length, then items
    assert word(at(40, address(h3[2:]))) == 3                             # holder_slot: 1 + index
