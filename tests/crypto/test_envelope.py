"""Sealed, signed, bound reports and messages; receipts; replay cache (crypto/envelope/).

Every rejection path has its own exception class, and each test asserts the exact class (not just a
common base), so a check that silently moved to another path would fail here.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crypto.encoding import canonical_bytes, digest, random_salt, to_hex
from crypto.envelope import (
    INSTRUCTION_PURPOSE,
    Binding,
    DealerReport,
    ReplayCache,
    ReportReceipt,
    SealedMessage,
    SealedReport,
    issue_receipt,
    open_message,
    open_report,
    seal_message,
    seal_report,
)
from crypto.errors import (
    BindingMismatchError,
    EnvelopeError,
    MalformedEnvelopeError,
    ReceiptError,
    ReplayError,
    ReportValueError,
    TamperedEnvelopeError,
    WrongSignerError,
)
from crypto.identity import IdentityKeys
from market.terms import MarketTerms

CHAIN_ID = 1337
CONTRACT = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"  # EIP-55 checksummed
OTHER_CONTRACT = "0x" + "ab" * 20
ROUND = 3
TERMS = MarketTerms(grid=4, base_rate=400, rate_bits=10, hurdle_bits=8)


@pytest.fixture(scope="module")
def ids():
    return {
        "custodian": IdentityKeys.generate("custodian"),
        "dealer_mm": IdentityKeys.generate("dealer_mm"),
        "dealer_rm": IdentityKeys.generate("dealer_rm"),
        "mallory": IdentityKeys.generate("dealer_mm"),  # claims the dealer_mm role with her own keys
        "other_custodian": IdentityKeys.generate("custodian"),
    }


def make_report(role="dealer_mm", round=ROUND, schedule=(0, 5, 10, 20, 30), hurdle=7, **changes):
    if role == "dealer_rm" and schedule == (0, 5, 10, 20, 30):
        schedule = (60, 50, 40, 30, 20)
    fields = dict(role=role, round=round, chain_id=CHAIN_ID, contract=CONTRACT, schedule=schedule, hurdle=hurdle)
    fields.update(changes)
    return DealerReport.create(**fields)


def open_as_custodian(ids, sealed, *, dealer="dealer_mm", round=ROUND, chain_id=CHAIN_ID, contract=CONTRACT,
                      cache=None, terms=TERMS):
    return open_report(
        sealed,
        custodian=ids["custodian"],
        dealer=ids[dealer].public,
        chain_id=chain_id,
        contract=contract,
        round=round,
        terms=terms,
        replay_cache=cache,
    )


@pytest.fixture
def sealed_mm(ids):
    report = make_report()
    return report, seal_report(report, dealer=ids["dealer_mm"], custodian=ids["custodian"].public, terms=TERMS)


# --- round trip -----------------------------------------------------------------------------------------


def test_round_trip(ids, sealed_mm):
    report, sealed = sealed_mm
    opened = open_as_custodian(ids, sealed.to_bytes())
    assert opened.report == report
    assert opened.report.schedule == (0, 5, 10, 20, 30) and opened.report.hurdle == 7
    assert opened.report.salt == report.salt
    assert opened.commitment == report.commitment
    assert opened.envelope_digest == digest(sealed.to_bytes()) == sealed.digest
    assert opened.binding == report.binding()
    assert opened.report.rates(TERMS) == [400, 405, 410, 420, 430]


def test_both_dealers(ids):
    for role in ("dealer_mm", "dealer_rm"):
        report = make_report(role)
        sealed = seal_report(report, dealer=ids[role], custodian=ids["custodian"].public, terms=TERMS)
        assert open_as_custodian(ids, sealed, dealer=role).report == report


def test_wire_format_is_canonical(sealed_mm):
    _, sealed = sealed_mm
    data = sealed.to_bytes()
    parsed = SealedReport.from_bytes(data)
    assert isinstance(parsed, SealedReport) and parsed == sealed
    assert parsed.to_bytes() == data
    binding = sealed.binding
    assert binding == Binding("report", CHAIN_ID, CONTRACT.lower(), ROUND, "dealer_mm", "custodian")
    assert binding.contract == CONTRACT.lower()


def test_numpy_schedule_accepted_and_normalised(ids):
    report = make_report(schedule=np.array([0, 5, 10, 20, 30], dtype=np.int64), hurdle=np.int64(7))
    assert report.schedule == (0, 5, 10, 20, 30) and type(report.schedule[0]) is int
    assert report == replace(make_report(), salt=report.salt)


def test_sealing_is_randomised_and_hides_the_plaintext(ids, sealed_mm):
    report, first = sealed_mm
    second = seal_report(report, dealer=ids["dealer_mm"], custodian=ids["custodian"].public)
    assert first.ephemeral_key != second.ephemeral_key and first.ciphertext != second.ciphertext
    assert open_as_custodian(ids, second).report == report
    data = first.to_bytes()
    assert report.salt not in data
    assert canonical_bytes([0, 5, 10, 20, 30]) not in data


def test_length_depends_only_on_public_data(ids):
    custodian = ids["custodian"].public
    sizes = {
        len(seal_report(make_report(schedule=s, hurdle=h), dealer=ids["dealer_mm"], custodian=custodian).to_bytes())
        for s, h in [((0, 0, 0, 0, 0), 0), ((0, 5, 10, 20, 30), 7), ((999, 1000, 1020, 1023, 1023), 255)]
    }
    assert len(sizes) == 1


def test_commitment_is_hash_of_report_and_salt(sealed_mm):
    report, _ = sealed_mm
    content = {
        "role": "dealer_mm",
        "round": ROUND,
        "chain_id": CHAIN_ID,
        "contract": bytes.fromhex(CONTRACT[2:]),
        "schedule": [0, 5, 10, 20, 30],
        "hurdle": 7,
    }
    expected = hashlib.sha256(b"repo-market:commitment:v1" + canonical_bytes(content) + report.salt).digest()
    assert report.commitment == expected
    assert replace(report, salt=random_salt()).commitment != expected
    assert replace(report, hurdle=8).commitment != expected


# --- tampering: every byte region -----------------------------------------------------------------------


def flip(data: bytes, index: int, mask: int = 0x01) -> bytes:
    mutated = bytearray(data)
    mutated[index] ^= mask
    return bytes(mutated)


def regions(sealed: SealedMessage) -> dict[str, int]:
    data = sealed.to_bytes()
    ciphertext_at = data.index(sealed.ciphertext)
    return {
        "header_role": data.index(b"dealer_mm") + 8,  # 'm' -> 'l': still a valid role name
        "header_round": data.index(canonical_bytes("round")) + 9 + 5 + 9,  # the round's digit
        "header_purpose": data.index(b"report"),
        "ephemeral_key": data.index(sealed.ephemeral_key) + 5,
        "nonce": data.index(sealed.nonce) + 3,
        "ciphertext": ciphertext_at + 10,
        "tag": ciphertext_at + len(sealed.ciphertext) - 1,
    }


@pytest.mark.parametrize(
    "region", ["header_role", "header_round", "header_purpose", "ephemeral_key", "nonce", "ciphertext", "tag"]
)
def test_tampered_region_is_rejected(ids, sealed_mm, region):
    _, sealed = sealed_mm
    data = sealed.to_bytes()
    index = regions(sealed)[region]
    tampered = flip(data, index)
    assert SealedReport.from_bytes(tampered) != sealed  # still parses: the AEAD must catch it
    with pytest.raises(TamperedEnvelopeError) as info:
        open_as_custodian(ids, tampered)
    assert type(info.value) is TamperedEnvelopeError
    assert "authentication failed" in str(info.value)


def test_header_round_tamper_is_not_mistaken_for_a_replay(ids, sealed_mm):
    # Editing the round in the header to the expected one must fail authentication, not pass.
    _, sealed = sealed_mm
    data = sealed.to_bytes()
    index = regions(sealed)["header_round"]
    assert data[index : index + 1] == b"3"
    edited = data[:index] + b"4" + data[index + 1 :]
    with pytest.raises(TamperedEnvelopeError):
        open_as_custodian(ids, edited, round=4)


def test_every_single_byte_change_is_rejected(ids, sealed_mm):
    _, sealed = sealed_mm
    data = sealed.to_bytes()
    for index in range(len(data)):
        with pytest.raises(TamperedEnvelopeError):  # or its subclass MalformedEnvelopeError
            open_as_custodian(ids, flip(data, index, 0x80 if index % 2 else 0x01))


@pytest.mark.parametrize("cut", [0, 1, 9, 100, -17, -1])
def test_truncated_envelope_is_malformed(ids, sealed_mm, cut):
    _, sealed = sealed_mm
    data = sealed.to_bytes()
    with pytest.raises(MalformedEnvelopeError):
        open_as_custodian(ids, data[:cut])
    with pytest.raises(MalformedEnvelopeError):
        open_as_custodian(ids, data + b"\x00")


def test_envelope_for_another_custodian_key(ids):
    sealed = seal_report(make_report(), dealer=ids["dealer_mm"], custodian=ids["other_custodian"].public)
    with pytest.raises(TamperedEnvelopeError, match="sealed to another key"):
        open_as_custodian(ids, sealed)


def test_wrong_version_is_malformed(sealed_mm):
    _, sealed = sealed_mm
    data = sealed.to_bytes()
    at = data.index(canonical_bytes("version")) + len(canonical_bytes("version"))
    assert data[at:] == canonical_bytes(1)
    with pytest.raises(MalformedEnvelopeError, match="envelope.version: 2"):
        SealedReport.from_bytes(data[:at] + canonical_bytes(2))


# --- replay to another round / contract / chain / role / purpose -----------------------------------------


@pytest.mark.parametrize(
    "where, fragment",
    [
        ({"round": ROUND + 1}, "round: envelope is bound to 3, expected 4"),
        ({"round": ROUND - 1}, "round: envelope is bound to 3, expected 2"),
        ({"contract": OTHER_CONTRACT}, "contract: envelope is bound to"),
        ({"chain_id": 31337}, "chain_id: envelope is bound to 1337, expected 31337"),
        ({"dealer": "dealer_rm"}, "sender: envelope is bound to 'dealer_mm', expected 'dealer_rm'"),
    ],
)
def test_replay_elsewhere_is_a_binding_mismatch(ids, sealed_mm, where, fragment):
    _, sealed = sealed_mm
    with pytest.raises(BindingMismatchError) as info:
        open_as_custodian(ids, sealed, **where)
    assert type(info.value) is BindingMismatchError
    assert fragment in str(info.value)


def test_instruction_envelope_is_not_a_report(ids):
    binding = Binding("instruction", CHAIN_ID, CONTRACT, ROUND, "dealer_mm", "custodian")
    sealed = seal_message(
        make_report().as_dict(), sender=ids["dealer_mm"], recipient=ids["custodian"].public, binding=binding
    )
    with pytest.raises(BindingMismatchError, match="purpose: envelope is bound to 'instruction', expected 'report'"):
        open_as_custodian(ids, sealed.to_bytes())


def test_report_fields_must_agree_with_the_binding(ids):
    # Signed by the real dealer, but the report inside says another round than the envelope.
    report = make_report(round=ROUND)
    binding = Binding("report", CHAIN_ID, CONTRACT, ROUND + 1, "dealer_mm", "custodian")
    sealed = seal_message(report.as_dict(), sender=ids["dealer_mm"], recipient=ids["custodian"].public, binding=binding)
    with pytest.raises(BindingMismatchError, match="report.round: 3 differs from the binding's 4"):
        open_as_custodian(ids, sealed, round=ROUND + 1)


# --- wrong signer ---------------------------------------------------------------------------------------


def test_wrong_signer(ids):
    forged = seal_report(make_report(), dealer=ids["mallory"], custodian=ids["custodian"].public, terms=TERMS)
    with pytest.raises(WrongSignerError) as info:
        open_as_custodian(ids, forged)
    assert type(info.value) is WrongSignerError
    assert "role 'dealer_mm'" in str(info.value)


def test_genuine_envelope_of_the_other_dealer_is_misdirected(ids):
    # dealer_rm's genuine envelope presented as dealer_mm's report: bound to the other role.
    sealed = seal_report(make_report("dealer_rm"), dealer=ids["dealer_rm"], custodian=ids["custodian"].public)
    with pytest.raises(BindingMismatchError, match="sender: envelope is bound to 'dealer_rm'"):
        open_as_custodian(ids, sealed, dealer="dealer_mm")


# --- values ---------------------------------------------------------------------------------------------

OUT_OF_RANGE = [
    ({"schedule": (0, 5, 10, 20, 1024)}, "b[4] = 1424: offset 1024"),
    ({"schedule": (0, 5, 10, 20)}, "4 rates, but the terms fix the volume grid"),
    ({"schedule": (0, 5, 10, 20, 30, 40)}, "6 rates"),
    ({"schedule": (0, 5, 4, 20, 30)}, "b[2] = 404 after b[1] = 405"),  # not monotone
    ({"hurdle": 256}, "hurdle = 256: outside [0, 255]"),
]


@pytest.mark.parametrize("change, fragment", OUT_OF_RANGE)
def test_out_of_range_refused_before_sealing(ids, change, fragment):
    report = make_report(**change)
    with pytest.raises(ReportValueError, match=fragment.replace("[", r"\[").replace("]", r"\]")):
        seal_report(report, dealer=ids["dealer_mm"], custodian=ids["custodian"].public, terms=TERMS)


@pytest.mark.parametrize("change, fragment", OUT_OF_RANGE)
def test_out_of_range_refused_by_the_custodian(ids, change, fragment):
    # A dealer that skips the check (terms=None) still cannot get the report accepted.
    sealed = seal_report(make_report(**change), dealer=ids["dealer_mm"], custodian=ids["custodian"].public)
    cache = ReplayCache()
    with pytest.raises(ReportValueError) as info:
        open_as_custodian(ids, sealed, cache=cache)
    assert type(info.value) is ReportValueError
    assert "dealer_mm report of round 3" in str(info.value)
    assert len(cache) == 0  # nothing recorded for a rejected report


def test_rm_side_uses_its_own_monotonicity(ids):
    report = make_report("dealer_rm", schedule=(20, 30, 40, 50, 60))  # increasing: wrong for RM's a
    with pytest.raises(ReportValueError, match=r"a\[1\] = 430 after a\[0\] = 420"):
        seal_report(report, dealer=ids["dealer_rm"], custodian=ids["custodian"].public, terms=TERMS)


@pytest.mark.parametrize(
    "change, fragment",
    [
        ({"schedule": (0, 1.5, 2, 3, 4)}, r"report.schedule\[1\]: 1.5 is not an integer"),
        ({"schedule": (0, True, 2, 3, 4)}, r"report.schedule\[1\]: True is not an integer"),
        ({"schedule": (0, -1, 2, 3, 4)}, r"report.schedule\[1\]: -1 outside"),
        ({"schedule": (0,)}, "the grid 0..N needs N >= 1"),
        ({"schedule": "01234"}, "expected a sequence of ints"),
        ({"hurdle": 2**32}, "report.hurdle: 4294967296 outside"),
        ({"hurdle": "7"}, "report.hurdle: '7' is not an integer"),
        ({"role": "custodian"}, "report.role: 'custodian' is not a dealer role"),
        ({"round": -1}, "report.round: -1 outside"),
        ({"chain_id": 0}, "report.chain_id: 0 outside"),
        ({"contract": "0x1234"}, "contract: '0x1234' is not a 0x-prefixed 20-byte hex address"),
        ({"contract": "0x5AAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"}, "invalid EIP-55 checksum"),
        ({"salt": b"short"}, "report.salt: expected 32 bytes"),
    ],
)
def test_malformed_report_structure(change, fragment):
    with pytest.raises(ReportValueError, match=fragment):
        make_report(**change)


def test_seal_refuses_inconsistent_roles(ids):
    with pytest.raises(ValueError, match="report.role: 'dealer_mm', but the signing keys are 'dealer_rm'"):
        seal_report(make_report(), dealer=ids["dealer_rm"], custodian=ids["custodian"].public)
    binding = Binding("instruction", CHAIN_ID, CONTRACT, ROUND, "custodian", "dealer_rm")
    with pytest.raises(ValueError, match="binding.recipient: 'dealer_rm', but sealing to 'dealer_mm'"):
        seal_message({}, sender=ids["custodian"], recipient=ids["dealer_mm"].public, binding=binding)
    with pytest.raises(TypeError, match=r"message.payload.x: float 0.5 not allowed"):
        seal_message({"x": 0.5}, sender=ids["custodian"], recipient=ids["dealer_rm"].public, binding=binding)


# --- replay cache ---------------------------------------------------------------------------------------


def test_same_envelope_twice_is_a_replay(ids, sealed_mm):
    _, sealed = sealed_mm
    cache = ReplayCache()
    open_as_custodian(ids, sealed, cache=cache)
    with pytest.raises(ReplayError, match="already accepted") as info:
        open_as_custodian(ids, sealed, cache=cache)
    assert type(info.value) is ReplayError


def test_second_report_for_the_same_round_is_refused(ids, sealed_mm):
    _, sealed = sealed_mm
    cache = ReplayCache()
    open_as_custodian(ids, sealed, cache=cache)
    again = seal_report(make_report(hurdle=9), dealer=ids["dealer_mm"], custodian=ids["custodian"].public)
    with pytest.raises(ReplayError, match="another envelope .* one per binding"):
        open_as_custodian(ids, again, cache=cache)
    # other rounds and the other dealer are unaffected
    next_round = seal_report(make_report(round=ROUND + 1), dealer=ids["dealer_mm"], custodian=ids["custodian"].public)
    open_as_custodian(ids, next_round, round=ROUND + 1, cache=cache)
    rm = seal_report(make_report("dealer_rm"), dealer=ids["dealer_rm"], custodian=ids["custodian"].public)
    open_as_custodian(ids, rm, dealer="dealer_rm", cache=cache)
    assert len(cache) == 3


def test_rejected_envelopes_leave_no_trace_in_the_cache(ids, sealed_mm):
    _, sealed = sealed_mm
    cache = ReplayCache()
    forged = seal_report(make_report(), dealer=ids["mallory"], custodian=ids["custodian"].public)
    for bad in (flip(sealed.to_bytes(), 200), forged):
        with pytest.raises(EnvelopeError):
            open_as_custodian(ids, bad, cache=cache)
    assert len(cache) == 0
    open_as_custodian(ids, sealed, cache=cache)  # the genuine one is still accepted


def test_cache_persists_across_restarts(ids, sealed_mm, tmp_path):
    _, sealed = sealed_mm
    path = tmp_path / "custodian" / "replay.json"
    path.parent.mkdir()
    open_as_custodian(ids, sealed, cache=ReplayCache(path))
    restarted = ReplayCache(path)
    assert sealed.binding in restarted
    assert restarted.accepted(sealed.binding) == sealed.digest
    assert restarted.accepted(replace(sealed.binding, round=ROUND + 1)) is None
    with pytest.raises(ReplayError):
        open_as_custodian(ids, sealed, cache=restarted)
    assert report_free(path.read_bytes(), sealed_mm[0])


def report_free(data: bytes, report: DealerReport) -> bool:
    return report.salt.hex() not in data.decode() and report.salt not in data


# --- receipts -------------------------------------------------------------------------------------------


@pytest.fixture
def receipt(ids, sealed_mm):
    _, sealed = sealed_mm
    opened = open_as_custodian(ids, sealed)
    return issue_receipt(ids["custodian"], opened, digest(b"fhe ciphertext"))


def test_receipt_round_trip_and_verify(ids, sealed_mm, receipt):
    report, sealed = sealed_mm
    parsed = ReportReceipt.from_bytes(receipt.to_bytes())
    assert parsed == receipt and parsed.to_bytes() == receipt.to_bytes()
    parsed.verify(ids["custodian"].public, sealed=sealed, report=report, ciphertext_digest=digest(b"fhe ciphertext"))
    assert receipt.commitment == report.commitment
    assert receipt.envelope_digest == sealed.digest
    assert receipt.as_json()["commitment"] == to_hex(report.commitment, prefix=True)
    assert receipt.as_json()["binding"] == {
        "purpose": "report", "chain_id": CHAIN_ID, "contract": CONTRACT.lower(), "round": ROUND,
        "sender": "dealer_mm", "recipient": "custodian",
    }
    json.dumps(receipt.as_json())


def test_receipt_by_another_key(ids, receipt):
    with pytest.raises(WrongSignerError):
        receipt.verify(ids["other_custodian"].public)


@pytest.mark.parametrize("field", ["envelope_digest", "ciphertext_digest", "commitment"])
def test_receipt_field_altered_after_signing(ids, receipt, field):
    altered = replace(receipt, **{field: digest(b"other")})
    with pytest.raises(WrongSignerError):
        ReportReceipt.from_bytes(altered.to_bytes()).verify(ids["custodian"].public)


def test_receipt_for_something_else(ids, sealed_mm, receipt):
    report, sealed = sealed_mm
    other_report = replace(report, hurdle=8)
    with pytest.raises(ReceiptError, match="receipt.commitment"):
        receipt.verify(ids["custodian"].public, report=other_report)
    other_envelope = seal_report(report, dealer=ids["dealer_mm"], custodian=ids["custodian"].public)
    with pytest.raises(ReceiptError, match="receipt.envelope_digest"):
        receipt.verify(ids["custodian"].public, sealed=other_envelope)
    with pytest.raises(ReceiptError, match="receipt.ciphertext_digest"):
        receipt.verify(ids["custodian"].public, ciphertext_digest=digest(b"another ciphertext"))
    with pytest.raises(ReceiptError, match="round: envelope is bound to 3, expected 4"):
        receipt.verify(ids["custodian"].public, report=replace(report, round=4))


def test_receipt_garbage(receipt):
    with pytest.raises(ReceiptError, match="does not parse"):
        ReportReceipt.from_bytes(receipt.to_bytes()[:-3])


# --- generic sealed messages (the custodian's instruction to a dealer) ----------------------------------


def instruction_binding(dealer="dealer_mm", round=ROUND):
    return Binding(INSTRUCTION_PURPOSE, CHAIN_ID, CONTRACT, round, "custodian", dealer)


def test_instruction_round_trip(ids):
    instruction = {"trade": True, "volume": 15, "r_own": 415, "r_bd_x2": 860, "salt": random_salt()}
    sealed = seal_message(
        instruction, sender=ids["custodian"], recipient=ids["dealer_mm"].public, binding=instruction_binding()
    )
    data = sealed.to_bytes()
    assert SealedMessage.from_bytes(data) == sealed
    opened = open_message(data, recipient=ids["dealer_mm"], sender=ids["custodian"].public, expected=instruction_binding())
    assert opened == instruction
    cache = ReplayCache()
    open_message(sealed, recipient=ids["dealer_mm"], sender=ids["custodian"].public, expected=instruction_binding(),
                 replay_cache=cache)
    with pytest.raises(ReplayError):
        open_message(sealed, recipient=ids["dealer_mm"], sender=ids["custodian"].public,
                     expected=instruction_binding(), replay_cache=cache)


def test_instruction_checks(ids):
    sealed = seal_message(
        {"volume": 15}, sender=ids["custodian"], recipient=ids["dealer_mm"].public, binding=instruction_binding()
    )
    # the other dealer cannot read it
    with pytest.raises(TamperedEnvelopeError):
        open_message(sealed, recipient=ids["dealer_rm"], sender=ids["custodian"].public,
                     expected=instruction_binding("dealer_rm"))
    # it is not valid for another round
    with pytest.raises(BindingMismatchError, match="round"):
        open_message(sealed, recipient=ids["dealer_mm"], sender=ids["custodian"].public,
                     expected=instruction_binding(round=ROUND + 1))
    # a forged instruction from someone else's custodian key
    forged = seal_message(
        {"volume": 30}, sender=ids["other_custodian"], recipient=ids["dealer_mm"].public, binding=instruction_binding()
    )
    with pytest.raises(WrongSignerError):
        open_message(forged, recipient=ids["dealer_mm"], sender=ids["custodian"].public, expected=instruction_binding())


def test_padding_hides_value_lengths_of_generic_messages(ids):
    sizes = {
        len(seal_message({"volume": v}, sender=ids["custodian"], recipient=ids["dealer_mm"].public,
                         binding=instruction_binding()).ciphertext)
        for v in (0, 7, 15, 999_999)
    }
    assert sizes == {256 + 16}
    padded = seal_message({"volume": 1}, sender=ids["custodian"], recipient=ids["dealer_mm"].public,
                          binding=instruction_binding(), pad_to=1000)
    assert len(padded.ciphertext) == 1000 + 16
    with pytest.raises(ValueError, match="pad_to: 10 is below"):
        seal_message({"volume": 1}, sender=ids["custodian"], recipient=ids["dealer_mm"].public,
                     binding=instruction_binding(), pad_to=10)


# --- distinct paths, no secrets in messages and reprs ---------------------------------------------------


def test_each_rejection_path_has_its_own_class(ids, sealed_mm):
    _, sealed = sealed_mm
    data = sealed.to_bytes()
    cache = ReplayCache()
    open_as_custodian(ids, data, cache=cache)
    attempts = {
        "malformed": lambda: open_as_custodian(ids, data[:50]),
        "tampered": lambda: open_as_custodian(ids, flip(data, regions(sealed)["tag"])),
        "replayed elsewhere": lambda: open_as_custodian(ids, data, round=ROUND + 1),
        "wrong signer": lambda: open_as_custodian(
            ids, seal_report(make_report(), dealer=ids["mallory"], custodian=ids["custodian"].public)
        ),
        "out of range": lambda: open_as_custodian(
            ids, seal_report(make_report(hurdle=999), dealer=ids["dealer_mm"], custodian=ids["custodian"].public)
        ),
        "replayed twice": lambda: open_as_custodian(ids, data, cache=cache),
    }
    raised = {}
    for name, attempt in attempts.items():
        with pytest.raises(EnvelopeError) as info:
            attempt()
        raised[name] = type(info.value)
    assert raised == {
        "malformed": MalformedEnvelopeError,
        "tampered": TamperedEnvelopeError,
        "replayed elsewhere": BindingMismatchError,
        "wrong signer": WrongSignerError,
        "out of range": ReportValueError,
        "replayed twice": ReplayError,
    }


def test_no_secret_in_reprs_or_error_messages(ids, sealed_mm, tmp_path):
    report, sealed = sealed_mm
    custodian = ids["custodian"]
    custodian.save(tmp_path / "custodian")
    from cryptography.hazmat.primitives import serialization

    secrets = [report.salt.hex(), repr(report.salt)]
    for name in ("signing.key", "sealing.key"):
        key = serialization.load_pem_private_key((tmp_path / "custodian" / name).read_bytes(), password=None)
        raw = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                serialization.NoEncryption())
        secrets += [raw.hex(), repr(raw)]
    texts = [repr(report), str(report), repr(open_as_custodian(ids, sealed))]
    data = sealed.to_bytes()
    for attempt in (
        lambda: open_as_custodian(ids, flip(data, 300)),
        lambda: open_as_custodian(ids, data, round=9),
        lambda: open_as_custodian(ids, seal_report(report, dealer=ids["mallory"], custodian=custodian.public)),
    ):
        with pytest.raises(EnvelopeError) as info:
            attempt()
        texts += [str(info.value), repr(info.value)]
    for text in texts:
        for secret in secrets:
            assert secret not in text
    assert "schedule=<hidden>" in repr(report) and "(0, 5, 10" not in repr(report)


# --- reports from rates; low-order keys; random reports --------------------------------------------------


def test_report_from_rates(ids):
    report = DealerReport.from_rates(
        TERMS, role="dealer_rm", round=ROUND, chain_id=CHAIN_ID, contract=CONTRACT,
        rates=np.array([460, 450, 440, 430, 420]), hurdle=10,
    )
    assert report.schedule == (60, 50, 40, 30, 20) and report.hurdle == 10
    assert report.rates(TERMS) == [460, 450, 440, 430, 420]
    with pytest.raises(ReportValueError, match=r"dealer_mm report of round 3: b\[0\] = 399"):
        DealerReport.from_rates(TERMS, role="dealer_mm", round=ROUND, chain_id=CHAIN_ID, contract=CONTRACT,
                                rates=[399, 405, 410, 420, 430], hurdle=0)


@pytest.mark.parametrize("point", [bytes(32), (1).to_bytes(32, "little")])
def test_low_order_ephemeral_key_is_rejected(ids, sealed_mm, point):
    _, sealed = sealed_mm
    forged = replace(sealed, ephemeral_key=point)
    with pytest.raises(TamperedEnvelopeError):
        open_as_custodian(ids, forged.to_bytes())


@settings(max_examples=40)
@given(
    steps=st.lists(st.integers(min_value=1, max_value=60), min_size=TERMS.grid, max_size=TERMS.grid),
    start=st.integers(min_value=0, max_value=700),
    hurdle=st.integers(min_value=0, max_value=TERMS.max_hurdle),
    round=st.integers(min_value=0, max_value=10**6),
)
def test_random_valid_reports_round_trip(ids, steps, start, hurdle, round):
    schedule = [start]
    for step in steps:
        schedule.append(schedule[-1] + step)
    report = make_report(round=round, schedule=tuple(min(v, 1023) for v in schedule), hurdle=hurdle)
    try:
        report.validate(TERMS)
    except ReportValueError:
        return  # out of range (flat runs at the clip are valid reports)
    sealed = seal_report(report, dealer=ids["dealer_mm"], custodian=ids["custodian"].public, terms=TERMS)
    opened = open_as_custodian(ids, SealedReport.from_bytes(sealed.to_bytes()), round=round)
    assert opened.report == report and opened.commitment == report.commitment
