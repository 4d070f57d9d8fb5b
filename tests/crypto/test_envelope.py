"""Sealed, signed, bound messages; dealer reports' commitments; replay cache (crypto/envelope/).

Every rejection path has its own exception class, and each test asserts the exact class (not just a
common base), so a check that silently moved to another path would fail here.
"""
from __future__ import annotations

import hashlib
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crypto.encoding import canonical_bytes, digest, random_salt
from crypto.envelope import (INSTRUCTION_PURPOSE, Binding, DealerReport, ReplayCache, SealedMessage, open_message,
                             seal_message)
from crypto.errors import (
    BindingMismatchError,
    EnvelopeError,
    MalformedEnvelopeError,
    ReplayError,
    ReportValueError,
    TamperedEnvelopeError,
    WrongSignerError,
)
from crypto.identity import IdentityKeys

CHAIN_ID = 1337
CONTRACT = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"  # EIP-55 checksummed
OTHER_CONTRACT = "0x" + "ab" * 20
ROUND = 3
PURPOSE = "message"  # any lowercase label: the mechanism is the same for every purpose
SECRET_SALT = bytes(range(32))
PAYLOAD = {"schedule": [0, 5, 10, 20, 30], "hurdle": 7, "salt": SECRET_SALT}


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


def binding_of(sender="dealer_mm", round=ROUND, chain_id=CHAIN_ID, contract=CONTRACT, purpose=PURPOSE):
    return Binding(purpose, chain_id, contract, round, sender, "custodian")


def seal_from(ids, sender="dealer_mm", payload=PAYLOAD, recipient="custodian", **where):
    """``payload`` signed by ``ids[sender]`` (whatever role its keys claim) and sealed to ``ids[recipient]``."""
    keys = ids[sender]
    return seal_message(payload, sender=keys, recipient=ids[recipient].public, binding=binding_of(keys.role, **where))


def open_as_custodian(ids, sealed, *, dealer="dealer_mm", round=ROUND, chain_id=CHAIN_ID, contract=CONTRACT,
                      cache=None):
    return open_message(sealed, recipient=ids["custodian"], sender=ids[dealer].public,
                        expected=binding_of(dealer, round, chain_id, contract), replay_cache=cache)


@pytest.fixture
def sealed_mm(ids):
    return seal_from(ids)


# --- round trip -----------------------------------------------------------------------------------------


def test_round_trip(ids, sealed_mm):
    data = sealed_mm.to_bytes()
    assert open_as_custodian(ids, data) == PAYLOAD
    assert sealed_mm.digest == digest(data)


def test_both_dealers(ids):
    for role in ("dealer_mm", "dealer_rm"):
        payload = {"from": role}
        assert open_as_custodian(ids, seal_from(ids, role, payload), dealer=role) == payload


def test_wire_format_is_canonical(sealed_mm):
    data = sealed_mm.to_bytes()
    parsed = SealedMessage.from_bytes(data)
    assert parsed == sealed_mm and parsed.to_bytes() == data
    binding = sealed_mm.binding
    assert binding == Binding(PURPOSE, CHAIN_ID, CONTRACT.lower(), ROUND, "dealer_mm", "custodian")
    assert binding.contract == CONTRACT.lower()


def test_numpy_schedule_accepted_and_normalised(ids):
    report = make_report(schedule=np.array([0, 5, 10, 20, 30], dtype=np.int64), hurdle=np.int64(7))
    assert report.schedule == (0, 5, 10, 20, 30) and type(report.schedule[0]) is int
    assert report == replace(make_report(), salt=report.salt)


def test_sealing_is_randomised_and_hides_the_plaintext(ids, sealed_mm):
    second = seal_from(ids)
    assert sealed_mm.ephemeral_key != second.ephemeral_key and sealed_mm.ciphertext != second.ciphertext
    assert open_as_custodian(ids, second) == PAYLOAD
    data = sealed_mm.to_bytes()
    assert SECRET_SALT not in data
    assert canonical_bytes([0, 5, 10, 20, 30]) not in data


def test_commitment_is_hash_of_report_and_salt():
    report = make_report()
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
        "header_purpose": data.index(PURPOSE.encode()),
        "ephemeral_key": data.index(sealed.ephemeral_key) + 5,
        "nonce": data.index(sealed.nonce) + 3,
        "ciphertext": ciphertext_at + 10,
        "tag": ciphertext_at + len(sealed.ciphertext) - 1,
    }


@pytest.mark.parametrize(
    "region", ["header_role", "header_round", "header_purpose", "ephemeral_key", "nonce", "ciphertext", "tag"]
)
def test_tampered_region_is_rejected(ids, sealed_mm, region):
    sealed = sealed_mm
    data = sealed.to_bytes()
    index = regions(sealed)[region]
    tampered = flip(data, index)
    assert SealedMessage.from_bytes(tampered) != sealed  # still parses: the AEAD must catch it
    with pytest.raises(TamperedEnvelopeError) as info:
        open_as_custodian(ids, tampered)
    assert type(info.value) is TamperedEnvelopeError
    assert "authentication failed" in str(info.value)


def test_header_round_tamper_is_not_mistaken_for_a_replay(ids, sealed_mm):
    # Editing the round in the header to the expected one must fail authentication, not pass.
    sealed = sealed_mm
    data = sealed.to_bytes()
    index = regions(sealed)["header_round"]
    assert data[index : index + 1] == b"3"
    edited = data[:index] + b"4" + data[index + 1 :]
    with pytest.raises(TamperedEnvelopeError):
        open_as_custodian(ids, edited, round=4)


def test_every_single_byte_change_is_rejected(ids, sealed_mm):
    sealed = sealed_mm
    data = sealed.to_bytes()
    for index in range(len(data)):
        with pytest.raises(TamperedEnvelopeError):  # or its subclass MalformedEnvelopeError
            open_as_custodian(ids, flip(data, index, 0x80 if index % 2 else 0x01))


@pytest.mark.parametrize("cut", [0, 1, 9, 100, -17, -1])
def test_truncated_envelope_is_malformed(ids, sealed_mm, cut):
    sealed = sealed_mm
    data = sealed.to_bytes()
    with pytest.raises(MalformedEnvelopeError):
        open_as_custodian(ids, data[:cut])
    with pytest.raises(MalformedEnvelopeError):
        open_as_custodian(ids, data + b"\x00")


def test_envelope_for_another_custodian_key(ids):
    sealed = seal_from(ids, recipient="other_custodian")
    with pytest.raises(TamperedEnvelopeError, match="sealed to another key"):
        open_as_custodian(ids, sealed)


def test_wrong_version_is_malformed(sealed_mm):
    sealed = sealed_mm
    data = sealed.to_bytes()
    at = data.index(canonical_bytes("version")) + len(canonical_bytes("version"))
    assert data[at:] == canonical_bytes(1)
    with pytest.raises(MalformedEnvelopeError, match="envelope.version: 2"):
        SealedMessage.from_bytes(data[:at] + canonical_bytes(2))


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
    sealed = sealed_mm
    with pytest.raises(BindingMismatchError) as info:
        open_as_custodian(ids, sealed, **where)
    assert type(info.value) is BindingMismatchError
    assert fragment in str(info.value)


def test_another_purpose_is_a_binding_mismatch(ids):
    sealed = seal_from(ids, purpose=INSTRUCTION_PURPOSE)
    with pytest.raises(BindingMismatchError, match="purpose: envelope is bound to 'instruction', expected 'message'"):
        open_as_custodian(ids, sealed.to_bytes())


# --- wrong signer ---------------------------------------------------------------------------------------


def test_wrong_signer(ids):
    forged = seal_from(ids, "mallory")
    with pytest.raises(WrongSignerError) as info:
        open_as_custodian(ids, forged)
    assert type(info.value) is WrongSignerError
    assert "role 'dealer_mm'" in str(info.value)


def test_genuine_envelope_of_the_other_dealer_is_misdirected(ids):
    # dealer_rm's genuine envelope presented as dealer_mm's message: bound to the other role.
    sealed = seal_from(ids, "dealer_rm")
    with pytest.raises(BindingMismatchError, match="sender: envelope is bound to 'dealer_rm'"):
        open_as_custodian(ids, sealed, dealer="dealer_mm")


# --- values ---------------------------------------------------------------------------------------------

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
    with pytest.raises(ValueError, match="binding.sender: 'dealer_mm', but the signing keys are 'dealer_rm'"):
        seal_message(PAYLOAD, sender=ids["dealer_rm"], recipient=ids["custodian"].public, binding=binding_of())
    binding = Binding("instruction", CHAIN_ID, CONTRACT, ROUND, "custodian", "dealer_rm")
    with pytest.raises(ValueError, match="binding.recipient: 'dealer_rm', but sealing to 'dealer_mm'"):
        seal_message({}, sender=ids["custodian"], recipient=ids["dealer_mm"].public, binding=binding)
    with pytest.raises(TypeError, match=r"message.payload.x: float 0.5 not allowed"):
        seal_message({"x": 0.5}, sender=ids["custodian"], recipient=ids["dealer_rm"].public, binding=binding)


# --- replay cache ---------------------------------------------------------------------------------------


def test_same_envelope_twice_is_a_replay(ids, sealed_mm):
    sealed = sealed_mm
    cache = ReplayCache()
    open_as_custodian(ids, sealed, cache=cache)
    with pytest.raises(ReplayError, match="already accepted") as info:
        open_as_custodian(ids, sealed, cache=cache)
    assert type(info.value) is ReplayError


def test_second_message_for_the_same_binding_is_refused(ids, sealed_mm):
    sealed = sealed_mm
    cache = ReplayCache()
    open_as_custodian(ids, sealed, cache=cache)
    again = seal_from(ids, payload={**PAYLOAD, "hurdle": 9})
    with pytest.raises(ReplayError, match="another envelope .* one per binding"):
        open_as_custodian(ids, again, cache=cache)
    # other rounds and the other dealer are unaffected
    next_round = seal_from(ids, round=ROUND + 1)
    open_as_custodian(ids, next_round, round=ROUND + 1, cache=cache)
    rm = seal_from(ids, "dealer_rm")
    open_as_custodian(ids, rm, dealer="dealer_rm", cache=cache)
    assert len(cache) == 3


def test_rejected_envelopes_leave_no_trace_in_the_cache(ids, sealed_mm):
    sealed = sealed_mm
    cache = ReplayCache()
    forged = seal_from(ids, "mallory")
    for bad in (flip(sealed.to_bytes(), 200), forged):
        with pytest.raises(EnvelopeError):
            open_as_custodian(ids, bad, cache=cache)
    assert len(cache) == 0
    open_as_custodian(ids, sealed, cache=cache)  # the genuine one is still accepted


def test_cache_persists_across_restarts(ids, sealed_mm, tmp_path):
    sealed = sealed_mm
    path = tmp_path / "custodian" / "replay.json"
    path.parent.mkdir()
    open_as_custodian(ids, sealed, cache=ReplayCache(path))
    restarted = ReplayCache(path)
    assert sealed.binding in restarted
    assert restarted.accepted(sealed.binding) == sealed.digest
    assert restarted.accepted(replace(sealed.binding, round=ROUND + 1)) is None
    with pytest.raises(ReplayError):
        open_as_custodian(ids, sealed, cache=restarted)
    data = path.read_bytes()  # public data only: the payload's secret is not in it
    assert SECRET_SALT.hex() not in data.decode() and SECRET_SALT not in data


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
    sealed = sealed_mm
    data = sealed.to_bytes()
    cache = ReplayCache()
    open_as_custodian(ids, data, cache=cache)
    attempts = {
        "malformed": lambda: open_as_custodian(ids, data[:50]),
        "tampered": lambda: open_as_custodian(ids, flip(data, regions(sealed)["tag"])),
        "replayed elsewhere": lambda: open_as_custodian(ids, data, round=ROUND + 1),
        "wrong signer": lambda: open_as_custodian(ids, seal_from(ids, "mallory")),
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
        "replayed twice": ReplayError,
    }


def test_no_secret_in_reprs_or_error_messages(ids, sealed_mm, tmp_path):
    report, sealed = make_report(), sealed_mm
    custodian = ids["custodian"]
    custodian.save(tmp_path / "custodian")
    from cryptography.hazmat.primitives import serialization

    secrets = [report.salt.hex(), repr(report.salt), SECRET_SALT.hex(), repr(SECRET_SALT)]
    for name in ("signing.key", "sealing.key"):
        key = serialization.load_pem_private_key((tmp_path / "custodian" / name).read_bytes(), password=None)
        raw = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                serialization.NoEncryption())
        secrets += [raw.hex(), repr(raw)]
    texts = [repr(report), str(report), repr(sealed)]
    data = sealed.to_bytes()
    for attempt in (
        lambda: open_as_custodian(ids, flip(data, 300)),
        lambda: open_as_custodian(ids, data, round=9),
        lambda: open_as_custodian(ids, seal_from(ids, "mallory")),
    ):
        with pytest.raises(EnvelopeError) as info:
            attempt()
        texts += [str(info.value), repr(info.value)]
    for text in texts:
        for secret in secrets:
            assert secret not in text
    assert "schedule=<hidden>" in repr(report) and "(0, 5, 10" not in repr(report)


# --- low-order keys; random payloads -------------------------------------------------------------------


@pytest.mark.parametrize("point", [bytes(32), (1).to_bytes(32, "little")])
def test_low_order_ephemeral_key_is_rejected(ids, sealed_mm, point):
    sealed = sealed_mm
    forged = replace(sealed, ephemeral_key=point)
    with pytest.raises(TamperedEnvelopeError):
        open_as_custodian(ids, forged.to_bytes())


@settings(max_examples=40)
@given(
    schedule=st.lists(st.integers(min_value=0, max_value=2**32 - 1), min_size=2, max_size=65),
    hurdle=st.integers(min_value=0, max_value=255),
    round=st.integers(min_value=0, max_value=10**6),
)
def test_random_payloads_round_trip(ids, schedule, hurdle, round):
    payload = {"schedule": schedule, "hurdle": hurdle}
    sealed = seal_from(ids, payload=payload, round=round)
    assert open_as_custodian(ids, SealedMessage.from_bytes(sealed.to_bytes()), round=round) == payload
