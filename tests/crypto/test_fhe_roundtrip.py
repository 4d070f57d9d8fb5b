"""Real TFHE: custodian keys (TFHE-rs compact public key + concrete keys from the same secret), dealers'
digits encrypted under the public key, evaluation from public data, replay, decryption, crafted inputs.

Honest report pairs run encrypted (N = 3) and must equal the plaintext reference; crafted ciphertexts (a set
padding bit, digits 16..31 or above a digit's width, all zeros, random bodies, another public key) must end
in that dealer's invalid flag and no trade; the evaluator's output must be byte-identical on replay; key files
are 0600 and fail clearly when wrong, truncated or foreign. Real FHE is slow: the wide parity runs in
simulation (test_circuit_parity.py).
"""
from __future__ import annotations

import os
import stat
import subprocess
import sys

import numpy as np
import pytest

from crypto.circuit import CircuitError, SelectionOutput, report_digits
from crypto.errors import KeyFileError, KeyPermissionError
from crypto.tfhers import decrypt_import_buffer, generate_public_key_material
from crypto.tfhers.owner_encryption import phase_errors
from market.schedules import make_schedules
from market.selection import select_equilibrium
from tests.crypto.owner_inputs import DELTA, add_to_bodies, import_buffer, replace_lwes, require_node_tfhe
from tests.market.oracle import enumerated_selection

require_node_tfhe()

BASE = 100

CASES = [  # (b offsets, a offsets, h_mm, h_rm) for N = 3
    ([0, 10, 20, 30], [90, 80, 70, 60], 1, 2),  # also the honest pair the crafted inputs replace a side of
    ([0, 1, 2, 3], [1023, 1022, 1021, 1020], 255, 255),  # max values
    ([0, 0, 7, 20], [60, 60, 45, 45], 0, 0),  # flat steps: the attainable J-argmax Q = 3 fails D2: Q = 1
    ([0, 5, 14, 32], [60, 60, 55, 55], 3, 1),  # the same with hurdles
    ([0, 5, 4, 9], [90, 80, 70, 60], 0, 0),  # invalid: b decreases (MM's fault)
    ([0, 5, 6, 9], [90, 80, 85, 60], 0, 0),  # invalid: a increases (RM's fault)
]


def _reference(b, a, hm, hr, terms):
    return select_equilibrium(make_schedules(np.array(b) + BASE, np.array(a) + BASE), hm, hr, terms.hurdle_mode)


@pytest.fixture(scope="module")
def public_key(custodian_keys) -> bytes:
    return custodian_keys.public_key_bytes()


@pytest.fixture(scope="module")
def encrypted_runs(selection_circuit, public_key, evaluation_keys):
    runs = []
    for b, a, hm, hr in CASES:
        mm = import_buffer(public_key, report_digits(selection_circuit.shape, "mm", b, hm))
        rm = import_buffer(public_key, report_digits(selection_circuit.shape, "rm", a, hr))
        runs.append((mm, rm, selection_circuit.evaluate(evaluation_keys, mm, rm)))
    return runs


def test_real_fhe_matches_reference_on_all_cases(encrypted_runs, custodian_keys, fhe_terms):
    for (b, a, hm, hr), (_, _, out) in zip(CASES, encrypted_runs):
        got = custodian_keys.decrypt_output(out)
        bad_mm, bad_rm = bool(np.any(np.diff(b) < 0)), bool(np.any(np.diff(a) > 0))
        assert (got.invalid_mm, got.invalid_rm) == (bad_mm, bad_rm), (b, a)
        if bad_mm or bad_rm:
            assert not got.trade and got.volume == 0
            continue
        s = make_schedules(np.array(b) + BASE, np.array(a) + BASE)
        want = enumerated_selection(s, hm, hr, fhe_terms.hurdle_mode.value)
        assert want == _reference(b, a, hm, hr, fhe_terms)
        assert got.instruction(fhe_terms) == want, (b, a, hm, hr, got)
    assert [custodian_keys.decrypt_output(r[2]).volume for r in encrypted_runs[2:4]] == [1, 1]  # D2 bites


def test_replay_is_byte_identical(selection_circuit, evaluation_keys, encrypted_runs):
    mm, rm, out = encrypted_runs[0]
    assert selection_circuit.evaluate(evaluation_keys, mm, rm) == out


# --- crafted inputs: every one ends in that dealer's invalid flag ---------------------------------------


@pytest.fixture(scope="module")
def honest(selection_circuit, encrypted_runs):
    """The first case's digits and buffers (each evaluation at N = 3 costs seconds: the suite shares them)."""
    b, a, hm, hr = CASES[0]
    shape = selection_circuit.shape
    digits = {"mm": report_digits(shape, "mm", b, hm), "rm": report_digits(shape, "rm", a, hr)}
    mm, rm, _ = encrypted_runs[0]
    return digits, {"mm": mm, "rm": rm}


@pytest.fixture(scope="module")
def honest_output(encrypted_runs) -> bytes:
    return encrypted_runs[0][2]


def _crafted(crafted: dict, honest, selection_circuit, evaluation_keys, custodian_keys):
    """Evaluate with the ``crafted`` side(s) replacing the honest buffers: exactly those dealers are flagged.

    Crafting both sides in one evaluation checks two inputs at the cost of one: the flags are per dealer."""
    _, buffers = honest
    inputs = dict(buffers, **crafted)
    got = custodian_keys.decrypt_output(selection_circuit.evaluate(evaluation_keys, inputs["mm"], inputs["rm"]))
    assert (got.invalid_mm, got.invalid_rm) == ("mm" in crafted, "rm" in crafted), got
    assert not got.trade and (got.volume, got.r_mm_offset, got.joint_profit) == (0, 0, 0)
    return got


def test_a_set_padding_bit_ends_in_the_dealers_invalid_flag(honest, selection_circuit, evaluation_keys,
                                                            custodian_keys):
    digits, buffers = honest
    crafted = add_to_bodies(buffers["mm"], {0: 2**63, 5: 2**63 + 3 * DELTA})
    errors = phase_errors(custodian_keys.client_key_path.read_bytes(), crafted, digits["mm"])
    assert abs(abs(errors[0]) - 2**63) < 2**20 and abs(errors[1]) < 2**20  # what was crafted: the padding bit
    _crafted({"mm": crafted}, honest, selection_circuit, evaluation_keys, custodian_keys)


def test_digits_16_to_31_and_above_a_digits_width_end_in_the_invalid_flag(honest, selection_circuit, public_key,
                                                                         evaluation_keys, custodian_keys):
    digits, buffers = honest
    client_key = custodian_keys.client_key_path.read_bytes()
    crafted = add_to_bodies(buffers["rm"], {2: 16 * DELTA, 7: 23 * DELTA})
    values = decrypt_import_buffer(client_key, crafted)
    assert values[2] == digits["rm"][2] + 16 and values[7] >= 16
    # an honest TFHE-rs digit (< 16) above the field: the 1-bit top digit of an offset set to 3, or 12 in a 3-bit one
    wide = {}
    for k, value in ((3, 3), (1, 12)):
        wide[k] = list(digits["mm"])
        wide[k][k] = value
    _crafted({"rm": crafted, "mm": import_buffer(public_key, wide[3])}, honest, selection_circuit, evaluation_keys,
             custodian_keys)
    _crafted({"mm": import_buffer(public_key, wide[1])}, honest, selection_circuit, evaluation_keys, custodian_keys)


def test_all_zero_and_random_ciphertexts_end_in_the_invalid_flag(honest, selection_circuit, evaluation_keys,
                                                                 custodian_keys):
    _, buffers = honest
    zeros = replace_lwes(buffers["mm"], lambda k: (np.zeros(4096, dtype=np.uint64), 0))
    assert set(decrypt_import_buffer(custodian_keys.client_key_path.read_bytes(), zeros)) == {0}
    rng = np.random.default_rng(11)
    noise = replace_lwes(buffers["rm"], lambda k: (rng.integers(0, 2**63, 4096, dtype=np.uint64) * 2,
                                                   int(rng.integers(0, 2**63)) * 2 + 1))
    _crafted({"mm": zeros, "rm": noise}, honest, selection_circuit, evaluation_keys, custodian_keys)


def test_a_list_under_another_public_key_ends_in_the_invalid_flag(honest, selection_circuit, evaluation_keys,
                                                                  custodian_keys, tmp_path):
    digits, _ = honest
    other = generate_public_key_material(tmp_path / "other", seed=77)
    foreign = import_buffer(other.public_key_path.read_bytes(), digits["mm"])
    assert decrypt_import_buffer(other.client_key_path.read_bytes(), foreign) == digits["mm"]
    _crafted({"mm": foreign}, honest, selection_circuit, evaluation_keys, custodian_keys)


def test_evaluator_checks_inputs_before_running(selection_circuit, evaluation_keys, honest):
    from crypto.encoding import digest

    mm, rm = honest[1]["mm"], honest[1]["rm"]
    with pytest.raises(CircuitError, match="evaluation_keys: not a repo-market FHE blob"):
        selection_circuit.evaluate(b"short", mm, rm)
    with pytest.raises(CircuitError, match="import_rm: SHA-256"):
        selection_circuit.evaluate(evaluation_keys, mm, rm, digests={"rm": digest(b"other")})
    with pytest.raises(CircuitError, match="import_mm: not 19 TFHE-rs digits"):
        selection_circuit.evaluate(evaluation_keys, mm[: len(mm) // 2], rm)
    broken = bytearray(rm)
    broken[8] = 2  # the first value claims two blocks
    with pytest.raises(CircuitError, match="import_rm: not 19 TFHE-rs digits .*value 0: 2 blocks"):
        selection_circuit.evaluate(evaluation_keys, mm, bytes(broken))
    with pytest.raises(CircuitError, match="import_rm: expected bytes"):
        selection_circuit.evaluate(evaluation_keys, mm, "rm")


def test_secret_key_file_is_0600_and_reloads(selection_circuit, custodian_keys, custodian_dir, honest_output):
    from crypto.fhe_keys import SECRET_KEY_FILE, CustodianFheKeys

    path = custodian_dir / SECRET_KEY_FILE
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(custodian_keys.client_key_path).st_mode) == 0o600  # the TFHE-rs secret
    reloaded = CustodianFheKeys.load(selection_circuit, custodian_dir)
    assert reloaded.public_key_digest == custodian_keys.public_key_digest
    assert reloaded.decrypt_output(honest_output) == custodian_keys.decrypt_output(honest_output)
    assert reloaded.decrypt_output(honest_output).volume == 2  # s(Q) = 70, 50, 30: J = 70, 100, 90
    assert "secret" not in repr(reloaded).lower() or SECRET_KEY_FILE not in repr(reloaded)


def test_bad_key_files_fail_clearly(selection_circuit, custodian_dir, tmp_path):
    from crypto.fhe_keys import SECRET_KEY_FILE, CustodianFheKeys, FheKeyError

    data = (custodian_dir / SECRET_KEY_FILE).read_bytes()

    def write(name, content, mode=0o600):
        folder = tmp_path / name
        folder.mkdir()
        target = folder / SECRET_KEY_FILE
        target.write_bytes(content)
        os.chmod(target, mode)
        return folder

    with pytest.raises(KeyFileError, match="not found"):
        CustodianFheKeys.load(selection_circuit, tmp_path / "nowhere")
    with pytest.raises(KeyPermissionError, match="too open"):
        CustodianFheKeys.load(selection_circuit, write("loose", data, 0o644))
    with pytest.raises(FheKeyError, match="truncated or corrupt"):
        CustodianFheKeys.load(selection_circuit, write("truncated", data[: len(data) // 2]))
    with pytest.raises(FheKeyError, match="not a repo-market FHE secret key"):
        CustodianFheKeys.load(selection_circuit, write("garbage", b"\x00" * 40))
    foreign = bytearray(data)
    foreign[10] ^= 0xFF  # inside the bound circuit digest: a key of another market's circuit
    with pytest.raises(FheKeyError, match="belongs to circuit"):
        CustodianFheKeys.load(selection_circuit, write("foreign", bytes(foreign)))


def test_error_messages_and_reprs_hold_no_key_material(selection_circuit, custodian_keys, custodian_dir):
    from crypto.fhe_keys import SECRET_KEY_FILE

    data = (custodian_dir / SECRET_KEY_FILE).read_bytes()
    text = repr(custodian_keys) + repr(selection_circuit)
    assert data[100:116].hex() not in text
    assert len(text) < 400


def test_report_digits_reject_out_of_range_before_encrypting(selection_circuit):
    with pytest.raises(CircuitError, match=r"h_mm = 300"):
        report_digits(selection_circuit.shape, "mm", [0, 1, 2, 3], 300)
    with pytest.raises(CircuitError, match=r"a_offsets\[1\] = -1"):
        report_digits(selection_circuit.shape, "rm", [5, -1, 2, 1], 0)


def test_output_consistency_checks():
    assert SelectionOutput.from_values([0, 1, 0, 0, 0, 0]).invalid_mm
    with pytest.raises(CircuitError):
        SelectionOutput.from_values([1, 0, 0, 3, 10, 101])  # J = 101 - 1 not a multiple of Q
    with pytest.raises(CircuitError, match="trade = 1 with an invalid flag"):
        SelectionOutput.from_values([1, 0, 1, 3, 10, 99])


def test_importing_crypto_does_not_import_concrete():
    code = "import crypto, crypto.circuit, crypto.fhe_keys, sys; print('concrete' in sys.modules, 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False False"


def test_no_keyless_client_can_be_built(selection_circuit, tmp_path):
    """concrete's Client.encrypt silently generates a fresh secret key when none is loaded (TOOLING.md);
    CustodianFheKeys refuses to exist without a generated or loaded keyset."""
    from concrete import fhe

    from crypto.fhe_keys import CustodianFheKeys, FheKeyError

    with pytest.raises(FheKeyError, match="needs a generated or loaded keyset"):
        CustodianFheKeys(selection_circuit, None, tmp_path)
    with pytest.raises(FheKeyError, match="needs a generated or loaded keyset"):
        CustodianFheKeys(selection_circuit, fhe.Keys(selection_circuit.client_specs), tmp_path)


def test_secret_key_is_bound_to_its_published_evaluation_keys(selection_circuit, custodian_keys, custodian_dir,
                                                              evaluation_keys):
    """A secret key regenerated after its evaluation keys were published would make every output decrypt to
    garbage without an error: load() checks the published digest; generate() refuses before writing."""
    from crypto.encoding import digest
    from crypto.fhe_keys import EVALUATION_KEYS_FILE, CustodianFheKeys, FheKeyError

    published = digest(evaluation_keys)
    assert custodian_keys.evaluation_keys_digest == published
    assert digest((custodian_dir / EVALUATION_KEYS_FILE).read_bytes()) == published
    assert stat.S_IMODE(os.stat(custodian_dir).st_mode) == 0o700
    loaded = CustodianFheKeys.load(selection_circuit, custodian_dir, evaluation_keys_digest=published)
    assert loaded.evaluation_keys_digest == published
    with pytest.raises(FheKeyError, match="regenerated after publication"):
        CustodianFheKeys.load(selection_circuit, custodian_dir, evaluation_keys_digest=digest(b"other keys"))
    assert custodian_keys.public_key_digest == digest(custodian_keys.public_key_bytes())
    with pytest.raises(FheKeyError, match="not to the published"):
        CustodianFheKeys.load(selection_circuit, custodian_dir, public_key_digest=digest(b"other public key"))

    def files():
        return {p.name: (p.stat().st_mtime_ns, p.stat().st_size) for p in custodian_dir.iterdir()}

    before = files()
    with pytest.raises(FheKeyError, match="refusing to overwrite"):
        CustodianFheKeys.generate(selection_circuit, custodian_dir)
    assert files() == before


def test_cost_report_counts_the_pbs_of_every_step_of_the_rule(selection_circuit):
    """Every PBS of the compiled circuit runs under one of the rule's fhe.tag steps (CostReport.pbs_per_tag,
    in rule order), so the per-step table of docs/CIRCUIT.md adds up to the PBS count."""
    from crypto.circuit.radix import STEPS

    cost = selection_circuit.cost_report()
    assert list(cost.pbs_per_tag) == [tag for tag in STEPS if tag in cost.pbs_per_tag]
    assert sum(cost.pbs_per_tag.values()) == cost.pbs_count
    assert all(cost.pbs_per_tag.values())
