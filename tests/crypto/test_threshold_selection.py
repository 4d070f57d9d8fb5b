"""The project's selection circuit (N = 3, real FHE): 2-of-3 threshold opening equals the custodian's decryption,
and after dealing no file left in the custodian's folder can decrypt.
"""
from __future__ import annotations

import numpy as np
import pytest

from crypto.circuit import SelectionOutput, report_digits, unwrap_blob
from crypto.errors import KeyFileError
from crypto.fhe_keys import SECRET_FILES, CustodianFheKeys, FheKeyError
from crypto.threshold import (
    ConcreteLayoutError, KeyHolder, ThresholdParams, combine, deal_key, deal_slots, read_output,
    read_secret_key,
)
from tests.crypto.owner_inputs import import_buffer

HOLDERS = ("key_holder_1", "key_holder_2", "key_holder_3")
CASES = [  # (b offsets, a offsets, h_mm, h_rm), as in test_fhe_roundtrip
    ([0, 10, 20, 30], [90, 80, 70, 60], 0, 0),
    ([0, 10, 20, 30], [90, 80, 70, 60], 0, 46),  # nothing survives
    ([0, 1, 2, 3], [1023, 1022, 1021, 1020], 255, 255),
]


@pytest.fixture(scope="module")
def threshold_market(selection_circuit, tmp_path_factory):
    from concrete import fhe

    custodian_dir = tmp_path_factory.mktemp("custodian_threshold")
    custodian = CustodianFheKeys.generate(selection_circuit, custodian_dir)
    evaluation_keys = custodian.evaluation_keys_bytes()
    runs = []
    for b, a, hm, hr in CASES:
        shape = selection_circuit.shape
        out = selection_circuit.evaluate(evaluation_keys,  # each dealer's own encryption, as in a round
                                         import_buffer(custodian.public_key_bytes(), report_digits(shape, "mm", b, hm)),
                                         import_buffer(custodian.public_key_bytes(), report_digits(shape, "rm", a, hr)))
        value = unwrap_blob("ciphertext_out", out)
        raw = np.asarray(custodian._client.decrypt(fhe.Value.deserialize(value)))  # concrete's own decryption
        runs.append((value, custodian.decrypt_output(out), raw))
    keyset = custodian.keyset_bytes()  # the dealer's input
    params = ThresholdParams.named("2of3", HOLDERS)
    holder_root = tmp_path_factory.mktemp("holders")
    dirs = {h: holder_root / h for h in HOLDERS}
    setup = deal_key(keyset, read_output(runs[0][0]).encoding, params, dirs)
    deal_slots(setup, dirs, range(len(CASES)))
    key = read_secret_key(keyset, setup.encoding)
    custodian.destroy_secret_keys()
    with pytest.raises(FheKeyError):
        custodian.keyset_bytes()
    del keyset, custodian
    return setup, dirs, runs, custodian_dir, key, selection_circuit


def test_threshold_opening_equals_custodian_decryption(threshold_market):
    setup, dirs, runs, _, _, _ = threshold_market
    holders = {h: KeyHolder.load(dirs[h], h, setup_digest=setup.digest()) for h in HOLDERS}
    assert setup.encoding.shape[0] == 6 and setup.encoding.width == 4  # six rows of base-8 digits (SelectionOutput)
    for round_, (value, expected, raw) in enumerate(runs):
        present = HOLDERS[round_ % 3], HOLDERS[(round_ + 1) % 3]  # a different pair each round
        masks = [holders[h].mask_share(value, round=round_, slot=round_) for h in present]
        tables = [holders[h].table_share(value, masks, round=round_, slot=round_) for h in present]
        result = combine(setup, read_output(value), masks, tables, round=round_, slot=round_)
        assert np.array_equal(result.values.reshape(-1), raw.reshape(-1))
        assert SelectionOutput.from_values(result.values) == expected
    assert any(expected.trade for _, expected, _ in runs) and any(not expected.trade for _, expected, _ in runs)


def test_no_file_of_the_custodian_can_decrypt_after_dealing(threshold_market):
    setup, _, runs, custodian_dir, key, circuit = threshold_market
    remaining = sorted(p for p in custodian_dir.rglob("*") if p.is_file())
    assert remaining and not set(SECRET_FILES) & {p.name for p in remaining}  # the TFHE-rs client key too
    with pytest.raises(KeyFileError):
        CustodianFheKeys.load(circuit, custodian_dir)
    needle = key.astype("<u8").tobytes()
    for path in remaining:
        data = path.read_bytes()
        assert needle not in data, path  # the key's coefficients appear nowhere, in any layout offset
        for start in (0, 54, 104):  # raw, after the blob header, after the secret-file header
            with pytest.raises(ConcreteLayoutError):
                read_secret_key(data[start:], setup.encoding)
