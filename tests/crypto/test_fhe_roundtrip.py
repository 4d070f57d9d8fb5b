"""Real TFHE: custodian keys, encryption per dealer, evaluation from public blobs, replay, decryption.

>= 10 report pairs run encrypted (N = 3) and must equal the plaintext reference; the evaluator's output
must be byte-identical on replay; key files are 0600 and fail clearly when wrong, truncated or foreign.
"""
from __future__ import annotations

import os
import stat
import subprocess
import sys

import numpy as np
import pytest

from crypto.circuit import CircuitError, SelectionOutput
from crypto.errors import KeyFileError, KeyPermissionError
from market.schedules import make_schedules
from market.selection import select_equilibrium

BASE = 100

CASES = [  # (b offsets, a offsets, h_mm, h_rm) for N = 3
    ([0, 10, 20, 30], [90, 80, 70, 60], 0, 0),
    ([0, 10, 20, 30], [90, 80, 70, 60], 20, 0),
    ([0, 10, 20, 30], [90, 80, 70, 60], 0, 46),  # nothing survives
    ([0, 1, 2, 3], [1023, 1022, 1021, 1020], 255, 255),  # max values
    ([0, 10, 20, 30], [130, 110, 50, 31], 0, 0),  # tie J(1) = J(2)? s = 100, 30, 1 -> J = 100, 60, 3
    ([0, 10, 20, 30], [130, 60, 40, 30], 0, 0),  # s = 50, 20, 0: zero spread at Q = 3
    ([5, 6, 7, 8], [12, 11, 10, 9], 1, 1),  # small spreads, hurdle filters all but Q = 1
    ([100, 200, 300, 400], [900, 700, 500, 300], 7, 3),
    ([0, 5, 4, 9], [90, 80, 70, 60], 0, 0),  # invalid: b decreases
    ([0, 5, 6, 9], [90, 80, 85, 60], 0, 0),  # invalid: a increases
]
FLAT_CASES = [  # weakly monotone, runs of equal values (issue 14): each checked against the exhaustive enumeration
    ([0, 5, 6, 9], [90, 80, 80, 60], 0, 0),  # flat a: Q = 1 not attainable
    ([0, 0, 0, 0], [1, 1, 1, 0], 0, 0),  # only Q = 3 attainable, BDrm cuts: no trade
    ([0, 0, 7, 20], [60, 60, 45, 45], 0, 0),  # the attainable J-argmax Q = 3 fails D2: Q = 1
    ([0, 5, 14, 32], [60, 60, 55, 55], 3, 1),  # the same with hurdles
    ([0, 10, 10, 30], [90, 90, 70, 60], 0, 0),  # Q = 2
    ([0, 0, 8, 8], [30, 30, 29, 29], 3, 3),  # flat runs on both sides, Q = 3
]
CASES += FLAT_CASES


def _reference(b, a, hm, hr, terms):
    if not (np.all(np.diff(b) >= 0) and np.all(np.diff(a) <= 0)):
        return None
    return select_equilibrium(make_schedules(np.array(b) + BASE, np.array(a) + BASE), hm, hr, terms.hurdle_mode)


@pytest.fixture(scope="module")
def encrypted_runs(selection_circuit, custodian_keys, evaluation_keys):
    runs = []
    for b, a, hm, hr in CASES:
        ct_mm = custodian_keys.encrypt_mm(b, hm)
        ct_rm = custodian_keys.encrypt_rm(a, hr)
        out = selection_circuit.evaluate(evaluation_keys, ct_mm, ct_rm)
        runs.append((ct_mm, ct_rm, out))
    return runs


def test_real_fhe_matches_reference_on_all_cases(encrypted_runs, custodian_keys, fhe_terms):
    assert len(encrypted_runs) >= 10
    for (b, a, hm, hr), (_, _, out) in zip(CASES, encrypted_runs):
        got = custodian_keys.decrypt_output(out)
        reference = _reference(b, a, hm, hr, fhe_terms)
        if reference is None:
            assert got.invalid and not got.trade
        else:
            assert not got.invalid
            assert got.instruction(fhe_terms) == reference, (b, a, hm, hr, got)


def test_real_fhe_on_flat_steps_equals_the_exhaustive_enumeration(encrypted_runs, custodian_keys, fhe_terms):
    from tests.market.test_no_cut import enumerated_selection

    offset = len(CASES) - len(FLAT_CASES)
    volumes = []
    for (b, a, hm, hr), (_, _, out) in zip(FLAT_CASES, encrypted_runs[offset:]):
        s = make_schedules(np.array(b) + BASE, np.array(a) + BASE)
        assert not s.strict
        got = custodian_keys.decrypt_output(out)
        assert not got.invalid
        assert got.instruction(fhe_terms) == enumerated_selection(s, hm, hr, fhe_terms.hurdle_mode.value), (b, a)
        volumes.append(got.volume)
    assert volumes[1] == 0 and volumes[2] == 1  # no trade, and the D2 filter biting


def test_replay_is_byte_identical(selection_circuit, evaluation_keys, encrypted_runs):
    ct_mm, ct_rm, out = encrypted_runs[0]
    again = selection_circuit.evaluate(evaluation_keys, ct_mm, ct_rm)
    assert again == out


def test_evaluator_checks_blobs_before_deserializing(selection_circuit, evaluation_keys, encrypted_runs):
    from crypto.encoding import digest

    ct_mm, ct_rm, _ = encrypted_runs[0]
    corrupt = bytearray(ct_mm)
    corrupt[-100] ^= 1
    with pytest.raises(CircuitError, match="ciphertext_mm: payload does not match"):
        selection_circuit.evaluate(evaluation_keys, bytes(corrupt), ct_rm)
    with pytest.raises(CircuitError, match="ciphertext_mm: blob holds a 'ciphertext_rm'"):
        selection_circuit.evaluate(evaluation_keys, ct_rm, ct_rm)
    with pytest.raises(CircuitError, match="evaluation_keys: not a repo-market FHE blob"):
        selection_circuit.evaluate(b"short", ct_mm, ct_rm)
    with pytest.raises(CircuitError, match="rm: SHA-256"):
        selection_circuit.evaluate(evaluation_keys, ct_mm, ct_rm, digests={"rm": digest(b"other")})


def test_secret_key_file_is_0600_and_reloads(selection_circuit, custodian_keys, custodian_dir, encrypted_runs):
    from crypto.fhe_keys import SECRET_KEY_FILE, CustodianFheKeys

    path = custodian_dir / SECRET_KEY_FILE
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    reloaded = CustodianFheKeys.load(selection_circuit, custodian_dir)
    assert reloaded.decrypt_output(encrypted_runs[0][2]) == custodian_keys.decrypt_output(encrypted_runs[0][2])
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


def test_encrypt_rejects_out_of_range_before_encrypting(custodian_keys):
    with pytest.raises(CircuitError, match=r"h_mm = 300"):
        custodian_keys.encrypt_mm([0, 1, 2, 3], 300)
    with pytest.raises(CircuitError, match=r"a_offsets\[1\] = -1"):
        custodian_keys.encrypt_rm([5, -1, 2, 1], 0)


def test_output_consistency_checks():
    assert SelectionOutput.from_values([0, 1, 0, 0, 0]).invalid
    with pytest.raises(CircuitError):
        SelectionOutput.from_values([1, 0, 3, 10, 101])  # J = 101 - 1 not a multiple of Q
    with pytest.raises(CircuitError, match="trade = 1 with invalid = 1"):
        SelectionOutput.from_values([1, 1, 3, 10, 99])


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
