"""Owner encryption: dealers seal their own reports under the market's TFHE-rs compact public key (node-tfhe
0.10); evaluators open them, with every check before anything is computed, and import them into concrete
with the custodian's TFHE-rs secret key.

Two markets run every blob check through the same code:
- ``unproven``: the production parameters without input proofs (the default market; no CRS needed);
- ``proven``: the TEST-ONLY parameter set with input proofs, whose CRS generates in seconds. The production
  CRS takes tens of minutes (benchmarks/bench_owner_encryption.py), so no test needs it, and nothing is read from
  or written to a user cache.
The production parameters are also tested for everything that needs no CRS: keys, unproven lists, the import
into concrete and the key injection.
"""
from __future__ import annotations

import os
import shutil
import stat
from dataclasses import dataclass

import numpy as np
import pytest

from crypto.encoding import canonical_bytes, canonical_loads, digest, to_hex
from crypto.tfhers import (
    PRODUCTION_PARAMETERS,
    TEST_ONLY_FLAG,
    TEST_ONLY_PARAMETERS,
    OwnerReportError,
    PublicKeyMaterial,
    TestOnlyParametersError,
    decrypt_import_buffer,
    decrypt_phases,
    encrypt_unproven_digits,
    expand_unproven_digits,
    generate_crs,
    generate_public_key_material,
    load_public_key_material,
    open_owner_report,
    owner_report_binding,
    parameters_by_name,
    seal_owner_report,
)
from crypto.tfhers.owner_encryption import (
    MANIFEST_FILE,
    CryptoError,
    _concrete_key,
    _glwe_coefficients,
    phase_errors,
)
from tests.crypto.owner_inputs import (  # noqa: F401 -- fixtures: the TEST-ONLY market's material
    allow_test_only_parameters,
    crs,
    keys,
    other_keys,
    reencode,
    require_node_tfhe,
)

require_node_tfhe()

DIGITS = [0, 15, 7, 3, 12, 9, 1, 14]  # as many as the TEST-ONLY CRS proves in one list
CONTRACT = "0x" + "5a" * 20
MARKETS = ("unproven", "proven")


def _binding(round=3, dealer="dealer_mm", chain_id=1337, contract=CONTRACT):
    return owner_report_binding(chain_id=chain_id, contract=contract, round=round, dealer_role=dealer)


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    return tmp_path_factory.mktemp("tfhers")


@pytest.fixture(scope="module")
def prod_keys(folders):
    return generate_public_key_material(folders / "custodian", seed=5)


@pytest.fixture(scope="module")
def prod_other_keys(folders):
    return generate_public_key_material(folders / "other", seed=6)


@dataclass(frozen=True)
class Market:
    """One market's view: its keys, its CRS (None: proofs off), its parameters, and an honest blob."""

    keys: PublicKeyMaterial
    other_keys: PublicKeyMaterial
    crs: bytes | None
    blob: bytes

    @property
    def parameters(self):
        return self.keys.parameters

    def open(self, blob, expected=None, digit_count=len(DIGITS), **kw):
        return open_owner_report(blob, public_key=self.keys.public_key_bytes(), expected=expected or _binding(),
                                 digit_count=digit_count, crs=self.crs, parameters=self.parameters, **kw)


@pytest.fixture(scope="module")
def unproven(prod_keys, prod_other_keys):
    blob = seal_owner_report(prod_keys.public_key_bytes(), DIGITS, _binding())
    return Market(prod_keys, prod_other_keys, None, blob)


@pytest.fixture(scope="module")
def proven(keys, other_keys, crs):
    blob = seal_owner_report(keys.public_key_bytes(), DIGITS, _binding(), crs=crs,
                             parameters=TEST_ONLY_PARAMETERS)
    return Market(keys, other_keys, crs, blob)


@pytest.fixture(params=MARKETS)
def market(request) -> Market:
    return request.getfixturevalue(request.param)


def _list(blob: bytes) -> bytearray:
    return bytearray(canonical_loads(blob)["list"])


def _with_list(blob: bytes, listing) -> bytes:
    return reencode(blob, list=bytes(listing))


def _rejected(market: Market, reason: str, blob, **kw) -> OwnerReportError:
    with pytest.raises(OwnerReportError) as caught:
        market.open(blob, **kw)
    error = caught.value
    assert error.reason == reason, str(error)
    expected = kw.get("expected") or _binding()
    assert (error.dealer, error.round) == (expected.sender, expected.round)
    assert str(error).startswith(f"owner report of {expected.sender} for round {expected.round} rejected ({reason}): ")
    return error


# --- parameter records ---------------------------------------------------------------------------------


def test_parameter_records_differ_only_in_sizes():
    p, t = PRODUCTION_PARAMETERS, TEST_ONLY_PARAMETERS
    assert (p.encryption_dimension, p.lwe_size, p.proven_digit_limit, p.test_only) == (4096, 4097, 72, False)
    assert (t.encryption_dimension, t.lwe_size, t.proven_digit_limit, t.test_only) == (32, 33, 8, True)
    assert "TEST-ONLY" in t.name and p.digest() != t.digest() and len(p.digest()) == 32
    assert (t.message_modulus, t.carry_modulus, t.packed_degree) == (p.message_modulus, p.carry_modulus, 15)
    assert p.concrete_params_dict()["polynomial_size"] == 4096
    with pytest.raises(TestOnlyParametersError, match="TEST-ONLY"):
        t.concrete_params_dict()


def test_test_only_parameters_are_refused_without_the_flag(keys, monkeypatch, tmp_path):
    monkeypatch.delenv(TEST_ONLY_FLAG)
    t = TEST_ONLY_PARAMETERS
    public_key = keys.public_key_bytes()
    calls = [
        lambda: generate_crs(t),
        lambda: generate_public_key_material(tmp_path / "k", seed=1, parameters=t),
        lambda: seal_owner_report(public_key, DIGITS, _binding(), parameters=t),
        lambda: open_owner_report(b"", public_key=public_key, expected=_binding(), digit_count=8, parameters=t),
        lambda: encrypt_unproven_digits(public_key, DIGITS, parameters=t),
        lambda: expand_unproven_digits(b"", 8, parameters=t),
        lambda: parameters_by_name(t.name),
    ]
    for call in calls:
        with pytest.raises(TestOnlyParametersError, match=f"TEST-ONLY set without security; refused unless {TEST_ONLY_FLAG}=1"):
            call()
    assert not (tmp_path / "k").exists()
    with pytest.raises(CryptoError, match="TEST-ONLY"):
        load_public_key_material(keys.folder)
    with pytest.raises(ValueError, match="not one of"):  # a look-alike record is not a known set
        seal_owner_report(public_key, DIGITS, _binding(), parameters=t.__class__(**{**t.__dict__, "test_only": False}))


# --- custodian ------------------------------------------------------------------------------------------


def test_key_material_without_proofs(prod_keys):
    assert stat.S_IMODE(os.stat(prod_keys.client_key_path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(prod_keys.folder).st_mode) == 0o700
    assert sorted(p.name for p in prod_keys.folder.iterdir()) == ["client_key.bin", "compact_public_key.bin",
                                                                   "manifest.json"]
    public_key = prod_keys.public_key_bytes()
    assert prod_keys.public_key_digest == to_hex(digest(public_key)) and len(public_key) > 60_000
    assert prod_keys.crs_digest is None and prod_keys.crs_path is None and not prod_keys.input_proofs
    manifest = (prod_keys.folder / MANIFEST_FILE).read_text()
    assert prod_keys.public_key_digest in manifest and PRODUCTION_PARAMETERS.name in manifest
    assert repr(prod_keys) == (f"PublicKeyMaterial(folder={str(prod_keys.folder)!r}, parameters="
                               f"'{PRODUCTION_PARAMETERS.name}', public_key_digest='{prod_keys.public_key_digest}', "
                               f"crs_digest=None)")
    terms = prod_keys.terms
    assert terms.as_dict() == {"parameters": PRODUCTION_PARAMETERS.name,
                               "parameters_sha256": PRODUCTION_PARAMETERS.digest(),
                               "public_key_sha256": digest(public_key), "crs_sha256": None}
    assert not terms.input_proofs
    canonical_bytes(terms.as_dict())  # goes into the terms digest as it is
    assert load_public_key_material(prod_keys.folder) == prod_keys


def test_key_material_with_proofs(keys, crs):
    assert keys.crs_path.read_bytes() == crs and keys.crs_digest == to_hex(digest(crs))
    assert keys.terms.crs_sha256 == digest(crs) and keys.terms.input_proofs
    assert crs.hex()[:64] not in repr(keys) and keys.crs_digest in repr(keys)
    assert load_public_key_material(keys.folder) == keys


def test_load_refuses_a_file_that_does_not_match_the_manifest(keys, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(keys.folder, copy)
    (copy / "crs.bin").write_bytes(b"another crs")
    with pytest.raises(CryptoError, match="crs.bin: missing or not the file the manifest's digest names"):
        load_public_key_material(copy)


def test_load_refuses_a_broken_manifest(prod_keys, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(prod_keys.folder, copy)
    manifest = (copy / MANIFEST_FILE).read_text()
    (copy / MANIFEST_FILE).write_text(manifest.replace(PRODUCTION_PARAMETERS.name, "homemade"))
    with pytest.raises(CryptoError, match="parameters: unknown set 'homemade'"):
        load_public_key_material(copy)
    (copy / MANIFEST_FILE).write_text("{")
    with pytest.raises(CryptoError, match="manifest.json"):
        load_public_key_material(copy)


def test_key_material_refuses_to_overwrite_or_bad_arguments(prod_keys, tmp_path):
    with pytest.raises(FileExistsError, match="client_key.bin"):
        generate_public_key_material(prod_keys.folder, seed=5)
    with pytest.raises(ValueError, match="seed: -1"):
        generate_public_key_material(tmp_path / "a", seed=-1)
    with pytest.raises(ValueError, match="crs: expected the CRS bytes"):
        generate_public_key_material(tmp_path / "a", seed=1, crs=b"")
    with pytest.raises(ValueError, match="crs: unusable with parameters"):  # not a placeholder for 'no proofs'
        generate_public_key_material(tmp_path / "a", seed=1, crs=b"-")
    assert not (tmp_path / "a").exists()


def test_client_key_layout_is_checked(prod_keys, keys):
    client_key = prod_keys.client_key_path.read_bytes()
    coefficients = _glwe_coefficients(client_key)
    assert coefficients.shape == (4096,) and set(np.unique(coefficients)) <= {0, 1}
    assert _glwe_coefficients(keys.client_key_path.read_bytes(), TEST_ONLY_PARAMETERS).shape == (32,)
    broken = bytearray(client_key)
    broken[8 + 8 * 5] = 7  # a non-binary coefficient
    with pytest.raises(CryptoError, match="not a binary key"):
        _glwe_coefficients(bytes(broken))
    with pytest.raises(CryptoError, match="GLWE key length"):
        _glwe_coefficients(b"\x00" * 8 + client_key[8:])
    with pytest.raises(CryptoError, match="GLWE key length 32 at offset 0, expected 4096"):
        _glwe_coefficients(keys.client_key_path.read_bytes() + bytes(8 * 4096))


def test_concrete_key_template_layout_is_checked():
    coefficients = np.ones(4096, dtype=np.uint64)
    template = b"head" + (4096).to_bytes(8, "little") + bytes(8 * 4096)
    key = _concrete_key(template, coefficients)
    assert key[:12] == template[:12] and key[12:] == coefficients.astype("<u8").tobytes()
    with pytest.raises(CryptoError, match="4096-coefficient key"):
        _concrete_key(b"head" + (4095).to_bytes(8, "little") + bytes(8 * 4096), coefficients)


# --- unproven lists under the production parameters ------------------------------------------------------


def test_unproven_digits_decrypt_with_the_client_key(prod_keys):
    digits = list(range(16)) + [15, 0]
    buffer = expand_unproven_digits(encrypt_unproven_digits(prod_keys.public_key_bytes(), digits), len(digits))
    client_key = prod_keys.client_key_path.read_bytes()
    assert decrypt_import_buffer(client_key, buffer) == digits
    noise = phase_errors(client_key, buffer, digits)
    assert all(abs(e) < 2**16 for e in noise) and any(e != 0 for e in noise)  # fresh, small, not zero


def test_another_client_key_does_not_decrypt(prod_keys, prod_other_keys):
    digits = [(5 * i + 1) % 16 for i in range(24)]
    buffer = expand_unproven_digits(encrypt_unproven_digits(prod_keys.public_key_bytes(), digits), len(digits))
    assert decrypt_import_buffer(prod_other_keys.client_key_path.read_bytes(), buffer) != digits


# --- sealing: bad input is refused before anything is encrypted --------------------------------------------


@pytest.mark.parametrize("digits, proofs, match", [
    ([16], False, r"digits\[0\]: 16"), ([-1], False, r"digits\[0\]: -1"), ([True], False, r"digits\[0\]: True"),
    ([1.0], False, r"digits\[0\]: 1.0"), ([], False, "0 digits, expected 1..4096"),
    ([1] * 4097, False, "4097 digits, expected 1..4096"), ([1] * 73, True, "73 digits, expected 1..72"),
])
def test_seal_rejects_bad_digits_before_encrypting(prod_keys, digits, proofs, match):
    with pytest.raises(ValueError, match=match):
        seal_owner_report(prod_keys.public_key_bytes(), digits, _binding(), crs=b"not even a crs" if proofs else None)


def test_seal_rejects_a_bad_binding_key_or_crs(prod_keys, keys):
    from crypto.envelope import INSTRUCTION_PURPOSE, Binding

    wrong = Binding(INSTRUCTION_PURPOSE, 1, CONTRACT, 1, "dealer_mm", "evaluator")  # another purpose
    with pytest.raises(ValueError, match="binding: .* is not an owner-report binding"):
        seal_owner_report(prod_keys.public_key_bytes(), [1], wrong)
    with pytest.raises(ValueError, match="public_key: expected"):
        seal_owner_report(b"", [1], _binding())
    with pytest.raises(ValueError, match="public_key: unusable with parameters 'concrete-interop-tuniform4'"):
        seal_owner_report(b"garbage", [1], _binding())
    with pytest.raises(ValueError, match="crs: unusable with parameters 'TEST-ONLY"):
        seal_owner_report(keys.public_key_bytes(), [1], _binding(), crs=b"garbage", parameters=TEST_ONLY_PARAMETERS)
    with pytest.raises(ValueError, match="digits: 9 digits, expected 1..8"):  # the TEST-ONLY CRS's capacity
        seal_owner_report(keys.public_key_bytes(), [1] * 9, _binding(), crs=b"-", parameters=TEST_ONLY_PARAMETERS)


# --- opening: the accepted paths ----------------------------------------------------------------------------


def test_honest_blob_opens_and_decrypts(market):
    report = market.open(market.blob)
    assert (report.digit_count, report.proven) == (len(DIGITS), market.crs is not None)
    assert report.blob_digest == to_hex(digest(market.blob))
    client_key = market.keys.client_key_path.read_bytes()
    assert decrypt_import_buffer(client_key, report.import_buffer, parameters=market.parameters) == DIGITS
    assert canonical_loads(market.blob)["proven"] is (market.crs is not None)


def test_proof_with_the_verify_compute_load_is_refused_before_verifying(proven):
    blob = seal_owner_report(proven.keys.public_key_bytes(), DIGITS, _binding(), crs=proven.crs,
                             parameters=TEST_ONLY_PARAMETERS, compute_load="verify")
    assert len(blob) == len(proven.blob) - (1051 - 527)  # the smaller of the two proof sizes
    error = _rejected(proven, "proof-rejected", blob)
    assert "ZkComputeLoad.Verify: refused" in error.detail


def test_unproven_blob_size(unproven):
    # one shared mask of 4096 words plus one body per digit, and the header
    assert 8 * (4096 + len(DIGITS)) < len(unproven.blob) < 8 * (4096 + len(DIGITS)) + 1000


def test_open_refuses_bad_verifier_arguments(unproven):
    for count, match in ((0, r"digit_count: 0 is not an int in \[1, 4096\]"), (True, "digit_count: True")):
        with pytest.raises(ValueError, match=match):
            unproven.open(unproven.blob, digit_count=count)
    with pytest.raises(ValueError, match="expected: .* is not an owner-report binding"):
        unproven.open(unproven.blob, expected=_binding().__class__("report", 1337, CONTRACT, 3, "dealer_mm", "evaluator"))
    with pytest.raises(ValueError, match="crs: unusable"):  # a proofs-on verifier with a broken CRS file
        open_owner_report(reencode(unproven.blob, proven=True), public_key=unproven.keys.public_key_bytes(),
                          expected=_binding(), digit_count=len(DIGITS), crs=b"garbage")


# --- opening: every rejection, in both markets, naming dealer, round and reason ------------------------------


def test_oversized_truncated_and_malformed_blobs(market):
    blob = market.blob
    _rejected(market, "oversized", blob, max_bytes=len(blob) - 1)
    _rejected(market, "oversized", bytes(4 * 1024 * 1024 + 1))
    _rejected(market, "truncated", blob[:-100])
    _rejected(market, "truncated", blob[: len(blob) // 2])
    _rejected(market, "malformed", blob + b"\x00")  # trailing bytes
    _rejected(market, "malformed", b"\xff" + blob[1:])
    _rejected(market, "malformed", canonical_bytes([1, 2]))
    _rejected(market, "malformed", "not bytes")
    _rejected(market, "malformed", reencode(blob, version=1))
    _rejected(market, "malformed", reencode(blob, proven=1))
    _rejected(market, "malformed", reencode(blob, list="text"))
    data = canonical_loads(blob)
    del data["proven"]
    _rejected(market, "malformed", canonical_bytes(data))
    listing = _list(blob)
    _rejected(market, "truncated", _with_list(blob, listing[: len(listing) // 2]))
    _rejected(market, "truncated", _with_list(blob, listing[:-3]))
    _rejected(market, "malformed", _with_list(blob, listing[:-8] + b"\x01" * 8))  # a non-empty tag


def test_header_rejections_run_no_node_process(market, monkeypatch):
    """Rejections decided from the header come before any ciphertext is parsed, expanded or verified."""
    from crypto.envelope import INSTRUCTION_PURPOSE, Binding
    from crypto.tfhers import owner_encryption

    def no_node(*args, **kwargs):
        raise AssertionError("the node tool ran for a blob the header already rejects")

    monkeypatch.setattr(owner_encryption, "_run_tool", no_node)
    other_purpose = Binding(INSTRUCTION_PURPOSE, 1337, CONTRACT, 3, "dealer_mm", "evaluator")
    cases = [
        ("oversized", market.blob, {"max_bytes": 100}),
        ("malformed", reencode(market.blob, version=3), {}),
        ("binding-mismatch", market.blob, {"expected": _binding(round=9)}),
        ("binding-mismatch", reencode(market.blob, binding=other_purpose.as_dict()), {}),
        ("other-public-key", reencode(market.blob, public_key_sha256=bytes(32)), {}),
        ("wrong-digit-count", market.blob, {"digit_count": 2}),
        ("proof-missing" if market.crs is not None else "unexpected-proof",
         reencode(market.blob, proven=market.crs is None), {}),
    ]
    for reason, blob, kw in cases:
        _rejected(market, reason, blob, **kw)


def test_binding_mismatch_is_named(market):
    error = _rejected(market, "binding-mismatch", market.blob, expected=_binding(round=4))
    assert "round: made for 3, expected 4" in str(error)
    error = _rejected(market, "binding-mismatch", market.blob, expected=_binding(dealer="dealer_rm"))
    assert "sender: made for 'dealer_mm', expected 'dealer_rm'" in str(error)


def test_list_for_another_public_key_is_named_by_its_header(market):
    other_blob_header = reencode(market.blob, public_key_sha256=digest(market.other_keys.public_key_bytes()))
    error = _rejected(market, "other-public-key", other_blob_header)
    assert "public key other than the published one" in error.detail


def test_wrong_digit_count(market):
    _rejected(market, "wrong-digit-count", market.blob, digit_count=len(DIGITS) - 1)
    forged = reencode(market.blob, digits=len(DIGITS) - 1)  # the header agrees with the terms, the list does not
    error = _rejected(market, "wrong-digit-count", forged, digit_count=len(DIGITS) - 1)
    assert f"holds {len(DIGITS)} LWE bodies, expected {len(DIGITS) - 1}" in error.detail


def _degree_offset(market: Market) -> int:
    """Where the list's degree sits: [sub-list count,] data length, data, lwe_size, count, modulus (3 words)."""
    start = 8 if market.crs is not None else 0
    return start + 8 + 8 * (market.parameters.encryption_dimension + len(DIGITS)) + 8 + 8 + 24


def test_wrong_block_width(market):
    listing = _list(market.blob)
    # the value descriptions sit before the empty tag: (u32 kind, u64 blocks) per digit
    first_blocks = len(listing) - 8 - 12 * len(DIGITS) + 4
    assert int.from_bytes(listing[first_blocks : first_blocks + 8], "little") == 2
    narrow = bytearray(listing)
    narrow[first_blocks : first_blocks + 8] = (1).to_bytes(8, "little")  # a 2-bit value, not a digit
    error = _rejected(market, "wrong-block-width", _with_list(market.blob, narrow))
    assert "value 0 is not an unsigned 4-bit digit" in error.detail
    degree = _degree_offset(market)
    assert int.from_bytes(listing[degree : degree + 8], "little") == 15
    unpacked = bytearray(listing)
    unpacked[degree : degree + 8] = (3).to_bytes(8, "little")  # one 2-bit block per LWE
    error = _rejected(market, "wrong-block-width", _with_list(market.blob, unpacked))
    assert "degree 3: not one packed 4-bit digit per LWE" in error.detail


def test_wrong_parameters(market, unproven, keys):
    listing = _list(market.blob)
    moduli = _degree_offset(market) + 8
    altered = bytearray(listing)
    altered[moduli : moduli + 8] = (8).to_bytes(8, "little")
    error = _rejected(market, "wrong-parameters", _with_list(market.blob, altered))
    assert "message/carry modulus 8/8, expected 4/8" in error.detail
    if market is unproven:  # a list made with the TEST-ONLY set, its header claiming this market's key
        foreign = seal_owner_report(keys.public_key_bytes(), DIGITS, _binding(), parameters=TEST_ONLY_PARAMETERS)
        foreign = reencode(foreign, public_key_sha256=digest(market.keys.public_key_bytes()))
        error = _rejected(market, "wrong-parameters", foreign)
        assert "lwe_size 33, expected 4097" in error.detail


def test_proofs_on_refuses_an_unproven_blob_and_proofs_off_a_proven_one(unproven, proven, keys):
    unproven_test_blob = seal_owner_report(keys.public_key_bytes(), DIGITS, _binding(),
                                           parameters=TEST_ONLY_PARAMETERS)
    error = _rejected(proven, "proof-missing", unproven_test_blob)
    assert "requires input proofs" in error.detail
    proofs_off = Market(proven.keys, proven.other_keys, None, proven.blob)
    error = _rejected(proofs_off, "unexpected-proof", proven.blob)
    assert "without input proofs" in error.detail
    # claiming the other kind in the header does not help: the list is parsed as the kind the market expects
    error = _rejected(proofs_off, "malformed", reencode(proven.blob, proven=False))
    assert "not a compact ciphertext list of the expected kind" in error.detail
    error = _rejected(proven, "malformed", reencode(unproven_test_blob, proven=True))
    assert "40 proved sub-lists, expected exactly 1" in error.detail


# --- proofs (TEST-ONLY parameters, same code as production) --------------------------------------------------


def test_proof_for_another_round_contract_dealer_or_chain_is_rejected(proven):
    for other in (_binding(round=4), _binding(contract="0x" + "77" * 20), _binding(dealer="dealer_rm"),
                  _binding(chain_id=1)):
        # the header says what the verifier expects; the proof was made for round 3 of dealer_mm on 1337
        forged = reencode(proven.blob, binding=other.as_dict())
        error = _rejected(proven, "proof-rejected", forged, expected=other)
        assert other.sender in str(error) and f"round {other.round}" in str(error)


def test_proof_for_another_key_is_rejected(proven):
    other_public_key = proven.other_keys.public_key_bytes()
    blob = seal_owner_report(other_public_key, DIGITS, _binding(), crs=proven.crs, parameters=TEST_ONLY_PARAMETERS)
    _rejected(proven, "other-public-key", blob)
    # re-labelled with this market's key digest: only the proof can tell (no secret key needed)
    relabelled = reencode(blob, public_key_sha256=digest(proven.keys.public_key_bytes()))
    _rejected(proven, "proof-rejected", relabelled)


def test_altered_ciphertext_fails_the_proof(proven):
    listing = _list(proven.blob)
    listing[8 + 8 + 8 * (32 + 2)] ^= 0x40  # a body word of the third digit
    _rejected(proven, "proof-rejected", _with_list(proven.blob, listing))


def test_unproven_list_under_another_key_is_left_to_the_circuit(unproven):
    """Without proofs nothing public tells a list made under another key from an honest one (that would break
    the encryption's security): open accepts it, and under the market's key its plaintexts are spread over
    all 64 six-bit values, which the circuit's first lookups map to the dealer's invalid flag (crypto/circuit)."""
    digits = [(7 * i + 3) % 16 for i in range(32)]
    blob = seal_owner_report(unproven.other_keys.public_key_bytes(), digits, _binding())
    relabelled = reencode(blob, public_key_sha256=digest(unproven.keys.public_key_bytes()))
    report = unproven.open(relabelled, digit_count=len(digits))
    values = decrypt_phases(unproven.keys.client_key_path.read_bytes(), report.import_buffer)
    assert values != digits
    assert sum(v >= 16 for v in values) >= 8  # ~3/4 of them are out of the honest range; all 32 in range: 2^-64


# --- the concrete side: shared key, import, decryption through a circuit -------------------------------


@pytest.mark.fhe
def test_circuit_decrypts_owner_encrypted_digits_with_the_injected_key(unproven):
    from concrete import fhe
    from concrete.fhe import tfhers

    from crypto.tfhers import digit_type, inject_client_key, to_native_digits

    table = fhe.LookupTable([(9 * v + 4) % 32 for v in range(32)])

    def first_lookup(x):
        return fhe.hint(table[to_native_digits(x)], bit_width=5)

    inputset = [tfhers.TFHERSInteger(digit_type(), np.full((len(DIGITS),), v)) for v in range(4)]
    circuit = fhe.Compiler(first_lookup, {"x": "encrypted"}).compile(
        inputset, fhe.Configuration(parameter_selection_strategy="multi"))
    bridge = tfhers.new_bridge(circuit)
    report = unproven.open(unproven.blob)
    expected = [(9 * d + 4) % 32 for d in DIGITS]

    inject_client_key(bridge, unproven.keys.client_key_path, [0], seed=3)
    out = circuit.server.run(bridge.import_value(report.import_buffer, 0),
                             evaluation_keys=circuit.client.evaluation_keys)
    assert list(circuit.client.decrypt(out)) == expected

    # a wrong key is detected by decrypting known digits: another custodian's key gives garbage
    inject_client_key(bridge, unproven.other_keys.client_key_path, [0], seed=3)
    out = circuit.server.run(bridge.import_value(report.import_buffer, 0),
                             evaluation_keys=circuit.client.evaluation_keys)
    assert list(circuit.client.decrypt(out)) != expected
